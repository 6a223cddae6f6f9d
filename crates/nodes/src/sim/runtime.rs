//! The simulated kubelets of one cluster in one task: a Node watch (every Node annotated
//! `skiff.dev/node-agent: sim`), one Pod watch for pods bound to any node
//! (`spec.nodeName!=`), one [`TimerQueue`] for every pending pod stage, Lease renewal and status
//! report, and writes run as spawned tasks with at most [`SimConfig::max_in_flight`] at once.
//!
//! Per pod the loop keeps a small record; the full object only while a stage is pending, so a
//! cluster of 100k Running pods costs little. A pod has at most one write in flight; watch events
//! that arrive meanwhile only refresh the record and the pod is re-evaluated when the write ends
//! (with the object the write returned, so a stage never fires twice on a stale copy).
//!
//! Node shutdown: [`SimHandle::stop_node`] stops a node's heartbeats (Lease and status) and its
//! pod work, as a kubelet that died; the node lifecycle controller then sees the Lease expire and
//! marks the Node `Unknown`. [`SimHandle::start_node`] brings it back.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use serde_json::{Value, json};
use skiff_k8s_core::client::{
    ApiClient, DeleteOptions, ListOptions, PatchOptions, ResourceRef, WatchEvent, WatchOptions,
    WatchStream, WriteOptions,
};
use skiff_k8s_core::patch::PatchType;
use skiff_k8s_core::status::ApiError;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::sim::engine::{self, PodContext, PodEvent, Transition};
use crate::sim::hash::hash64;
use crate::sim::node::{self, NODE_LEASE_NAMESPACE, NodeIdentity};
use crate::sim::stage::{DEFAULT_PROFILE, Profile};
use crate::sim::timer::TimerQueue;
use crate::{NODE_AGENT_ANNOTATION, NodeRef, PodNetwork, SIM_AGENT};

/// Wall-clock time for the timestamps the kubelet writes (scheduling uses tokio's clock).
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// How the simulated kubelets behave.
#[derive(Clone)]
pub struct SimConfig {
    /// Pod stage profile: `general` (every step and event upstream shows) or `fast` (one write
    /// per pod to Running, no events; for thousands of nodes).
    pub profile: String,
    /// `nodeInfo` the nodes report where their creator set none.
    pub identity: NodeIdentity,
    /// Lease renewal period (kubelet: 10 s).
    #[doc(alias = "renewInterval")]
    pub lease_renew_interval: Duration,
    /// Unconditional status report period (kubelet `nodeStatusReportFrequency`: 5 min).
    #[doc(alias = "nodeStatusReportFrequency")]
    pub status_report_interval: Duration,
    /// Writes in flight at once, across all nodes.
    pub max_in_flight: usize,
    /// Source of the timestamps written.
    pub clock: Arc<dyn Clock>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            profile: DEFAULT_PROFILE.into(),
            identity: NodeIdentity::default(),
            lease_renew_interval: Duration::from_secs(10),
            status_report_interval: Duration::from_secs(300),
            max_in_flight: 64,
            clock: Arc::new(SystemClock),
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("profile", &self.profile)
            .field("identity", &self.identity)
            .field("lease_renew_interval", &self.lease_renew_interval)
            .field("status_report_interval", &self.status_report_interval)
            .field("max_in_flight", &self.max_in_flight)
            .finish()
    }
}

enum Command {
    Stop(String),
    Start(String),
}

/// Control of a running simulation.
#[derive(Clone)]
pub struct SimHandle {
    tx: mpsc::UnboundedSender<Command>,
}

impl SimHandle {
    /// Stops heartbeating `node` (no Lease renewals, no status posts) and stops working its pods,
    /// as when its kubelet dies; the Node goes `Unknown` once the node lifecycle controller's
    /// grace period passes. Unknown names are remembered and apply when the Node appears.
    #[doc(alias = "shutdown_node")]
    pub fn stop_node(&self, name: &str) {
        let _ = self.tx.send(Command::Stop(name.to_string()));
    }

    /// Resumes a stopped node: Lease and status at once (Ready again), then its pods.
    pub fn start_node(&self, name: &str) {
        let _ = self.tx.send(Command::Start(name.to_string()));
    }
}

#[doc(alias = "kubelet")]
/// Starts the simulated kubelets of one cluster on the current tokio runtime; they run until
/// `shutdown` flips to true. An unknown profile is logged and the default profile used.
pub fn spawn_sim(
    client: Arc<dyn ApiClient>,
    network: Arc<dyn PodNetwork>,
    config: SimConfig,
    shutdown: watch::Receiver<bool>,
) -> (SimHandle, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let profile = match Profile::builtin(&config.profile) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "falling back to the default pod stage profile");
            builtin_default()
        }
    };
    let rt = Runtime::new(client, network, config, profile);
    let task = tokio::spawn(rt.run(rx, shutdown));
    (SimHandle { tx }, task)
}

fn builtin_default() -> Profile {
    // The embedded files are checked by unit tests; an empty profile would only idle.
    Profile::builtin(DEFAULT_PROFILE).unwrap_or_else(|_| Profile {
        name: DEFAULT_PROFILE.into(),
        stages: Vec::new(),
    })
}

pub(crate) fn pods_ref() -> ResourceRef {
    ResourceRef::new("", "v1", "pods")
}
fn nodes_ref() -> ResourceRef {
    ResourceRef::new("", "v1", "nodes")
}
fn leases_ref() -> ResourceRef {
    ResourceRef::new("coordination.k8s.io", "v1", "leases").in_namespace(NODE_LEASE_NAMESPACE)
}
fn events_ref(ns: &str) -> ResourceRef {
    ResourceRef::new("", "v1", "events").in_namespace(ns)
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Pod(String),
    Lease(String),
    Status(String),
}

struct SimNode {
    node_ref: NodeRef,
    uid: String,
    obj: Value,
    stopped: bool,
    images: HashSet<String>,
    lease_exists: bool,
    /// Last status write that carried the conditions (the heartbeat).
    last_report: Option<Instant>,
    /// Last status write of any kind; corrections wait [`MIN_STATUS_GAP`] after it, so a field
    /// the server will not keep cannot make us write in a loop.
    last_post: Option<Instant>,
    busy: bool,
}

/// Least time between two status writes of one node outside the heartbeat.
const MIN_STATUS_GAP: Duration = Duration::from_secs(1);

struct PodRec {
    node: String,
    namespace: String,
    name: String,
    rv: u64,
    /// The full object while a stage is pending or a write runs.
    obj: Option<Value>,
    /// (stage index, when it was planned).
    stage: Option<(usize, Instant)>,
    busy: bool,
    /// The resourceVersion at which the chosen stage changed nothing; wait for a newer one.
    noop_rv: Option<u64>,
}

enum Done {
    Pod {
        uid: String,
        outcome: PodOutcome,
    },
    Lease {
        node: String,
        ok: bool,
    },
    Status {
        node: String,
        obj: Option<Value>,
        /// The write carried the conditions (a heartbeat).
        beat: bool,
    },
}

enum PodOutcome {
    Applied {
        obj: Option<Value>,
        pulled: Vec<String>,
        deleted: bool,
    },
    Noop,
    Gone,
    Retry(Duration),
}

struct Runtime {
    client: Arc<dyn ApiClient>,
    network: Arc<dyn PodNetwork>,
    cfg: SimConfig,
    profile: Arc<Profile>,
    nodes: HashMap<String, SimNode>,
    /// Node names seen without the sim annotation (their pods are not ours).
    foreign: HashSet<String>,
    stop_requested: HashSet<String>,
    pods: HashMap<String, PodRec>,
    node_pods: HashMap<String, HashSet<String>>,
    timers: TimerQueue<Key, Instant>,
    ready: VecDeque<Key>,
    in_flight: usize,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    /// Set when pod objects we dropped are needed again (a node came back).
    pods_relist_wanted: bool,
}

/// A list-then-watch feed (client-go's reflector, without a cache of its own).
struct Feed {
    r: ResourceRef,
    field_selector: Option<String>,
    /// Events of the current watch, decoded by a forwarding task (see [`forward`]); `None`
    /// when a relist is due.
    stream: Option<mpsc::Receiver<WatchEvent>>,
}

/// Events buffered between a watch's forwarding task and the loop.
const FEED_BUFFER: usize = 4096;

/// Polls `stream` on its own task: the API's watch stream decodes and filters each event as it is
/// polled, and that work belongs on another worker thread rather than in the control loop. The
/// channel is bounded, so a slow loop slows the watch, which the API server then cuts off and we
/// relist.
fn forward(mut stream: WatchStream) -> mpsc::Receiver<WatchEvent> {
    let (tx, rx) = mpsc::channel(FEED_BUFFER);
    tokio::spawn(async move {
        while let Some(ev) = stream.next().await {
            if tx.send(ev).await.is_err() {
                return;
            }
        }
    });
    rx
}

enum Wake {
    Shutdown,
    Command(Option<Command>),
    Node(Option<WatchEvent>),
    Pod(Option<WatchEvent>),
    Done(Done),
    Timer,
}

async fn next_event(feed: &mut Feed) -> Option<WatchEvent> {
    match feed.stream.as_mut() {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

fn rv_of(obj: &Value) -> u64 {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn s<'a>(obj: &'a Value, ptr: &str) -> &'a str {
    obj.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

impl Runtime {
    fn new(
        client: Arc<dyn ApiClient>,
        network: Arc<dyn PodNetwork>,
        cfg: SimConfig,
        profile: Profile,
    ) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Runtime {
            client,
            network,
            cfg,
            profile: Arc::new(profile),
            nodes: HashMap::new(),
            foreign: HashSet::new(),
            stop_requested: HashSet::new(),
            pods: HashMap::new(),
            node_pods: HashMap::new(),
            timers: TimerQueue::new(),
            ready: VecDeque::new(),
            in_flight: 0,
            done_tx,
            done_rx,
            pods_relist_wanted: false,
        }
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut nodes = Feed {
            r: nodes_ref(),
            field_selector: None,
            stream: None,
        };
        let mut pods = Feed {
            r: pods_ref(),
            field_selector: Some("spec.nodeName!=".into()),
            stream: None,
        };
        if !self.resync_nodes(&mut nodes, &mut shutdown).await
            || !self.resync_pods(&mut pods, &mut shutdown).await
        {
            return;
        }
        let mut commands_open = true;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let deadline = self.timers.next_deadline();
            let wake = tokio::select! {
                r = shutdown.changed() => match r {
                    Ok(()) if !*shutdown.borrow() => continue,
                    _ => Wake::Shutdown,
                },
                c = commands.recv(), if commands_open => Wake::Command(c),
                e = next_event(&mut nodes) => Wake::Node(e),
                e = next_event(&mut pods) => Wake::Pod(e),
                Some(d) = self.done_rx.recv() => Wake::Done(d),
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => Wake::Timer,
            };
            match wake {
                Wake::Shutdown => return,
                // Every handle is gone: keep running; nobody can stop nodes any more.
                Wake::Command(None) => commands_open = false,
                Wake::Command(Some(Command::Stop(n))) => self.stop_node(&n),
                Wake::Command(Some(Command::Start(n))) => {
                    self.start_node(&n);
                    // Its pods' records are slim; a relist brings their objects back.
                    self.pods_relist_wanted = true;
                }
                Wake::Node(Some(ev)) => self.on_node_event(ev, &mut nodes),
                Wake::Node(None) => {
                    nodes.stream = None;
                }
                Wake::Pod(Some(ev)) => self.on_pod_event(ev, &mut pods),
                Wake::Pod(None) => {
                    pods.stream = None;
                }
                Wake::Done(d) => self.on_done(d),
                Wake::Timer => self.fire_due(),
            }
            if nodes.stream.is_none() && !self.resync_nodes(&mut nodes, &mut shutdown).await {
                return;
            }
            if std::mem::take(&mut self.pods_relist_wanted) {
                pods.stream = None;
            }
            if pods.stream.is_none() && !self.resync_pods(&mut pods, &mut shutdown).await {
                return;
            }
            self.pump();
        }
    }

    // ---- feeds ----

    /// Lists and starts watching; retries every second until it works or shutdown (false).
    async fn list_and_watch(
        &self,
        feed: &mut Feed,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<Vec<Value>> {
        loop {
            if *shutdown.borrow() {
                return None;
            }
            let listed = self
                .client
                .list(
                    &feed.r,
                    &ListOptions {
                        field_selector: feed.field_selector.clone(),
                        ..Default::default()
                    },
                )
                .await;
            let result = match listed {
                Ok(list) => self
                    .client
                    .watch(
                        &feed.r,
                        &WatchOptions {
                            field_selector: feed.field_selector.clone(),
                            resource_version: Some(list.resource_version.clone()),
                            ..Default::default()
                        },
                    )
                    .await
                    .map(|w| (list.items, w)),
                Err(e) => Err(e),
            };
            match result {
                Ok((items, stream)) => {
                    feed.stream = Some(forward(stream));
                    return Some(items);
                }
                Err(e) => {
                    tracing::warn!(resource = %feed.r.resource, error = %e, "sim kubelet: list/watch failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
    }

    async fn resync_nodes(
        &mut self,
        feed: &mut Feed,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let Some(items) = self.list_and_watch(feed, shutdown).await else {
            return false;
        };
        let seen: HashSet<String> = items
            .iter()
            .map(|n| node::node_name(n).to_string())
            .collect();
        let gone: Vec<String> = self
            .nodes
            .keys()
            .filter(|n| !seen.contains(*n))
            .cloned()
            .collect();
        for n in gone {
            self.node_gone(&n);
        }
        for n in items {
            self.on_node(n);
        }
        true
    }

    async fn resync_pods(&mut self, feed: &mut Feed, shutdown: &mut watch::Receiver<bool>) -> bool {
        let Some(items) = self.list_and_watch(feed, shutdown).await else {
            return false;
        };
        let seen: HashSet<String> = items
            .iter()
            .map(|p| s(p, "/metadata/uid").to_string())
            .collect();
        let gone: Vec<String> = self
            .pods
            .keys()
            .filter(|u| !seen.contains(*u))
            .cloned()
            .collect();
        for uid in gone {
            self.pod_gone(&uid);
        }
        for p in items {
            self.on_pod(p);
        }
        true
    }

    fn on_node_event(&mut self, ev: WatchEvent, feed: &mut Feed) {
        match ev {
            WatchEvent::Added(n) | WatchEvent::Modified(n) => self.on_node(n),
            WatchEvent::Deleted(n) => self.node_gone(node::node_name(&n)),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => {
                tracing::debug!(error = %e, "sim kubelet: node watch ended; relisting");
                feed.stream = None;
            }
        }
    }

    fn on_pod_event(&mut self, ev: WatchEvent, feed: &mut Feed) {
        match ev {
            WatchEvent::Added(p) | WatchEvent::Modified(p) => self.on_pod(p),
            WatchEvent::Deleted(p) => {
                let uid = s(&p, "/metadata/uid").to_string();
                self.pod_gone(&uid);
            }
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => {
                tracing::debug!(error = %e, "sim kubelet: pod watch ended; relisting");
                feed.stream = None;
            }
        }
    }

    // ---- nodes ----

    fn on_node(&mut self, obj: Value) {
        let name = node::node_name(&obj).to_string();
        if name.is_empty() {
            return;
        }
        let is_sim = obj
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(NODE_AGENT_ANNOTATION))
            .and_then(Value::as_str)
            == Some(SIM_AGENT);
        if !is_sim {
            if self.nodes.contains_key(&name) {
                self.node_gone(&name);
            }
            self.foreign.insert(name.clone());
            self.drop_objects_on(&name);
            return;
        }
        self.foreign.remove(&name);
        let node_ref = NodeRef {
            name: name.clone(),
            provider_id: obj
                .pointer("/spec/providerID")
                .and_then(Value::as_str)
                .map(str::to_string),
            internal_ip: Some(node::node_ip(&obj)),
        };
        self.network.observe_node(
            &node_ref,
            obj.pointer("/spec/podCIDR").and_then(Value::as_str),
        );
        let now = Instant::now();
        let is_new = !self.nodes.contains_key(&name);
        let stopped = self.stop_requested.contains(&name);
        let entry = self.nodes.entry(name.clone()).or_insert_with(|| SimNode {
            node_ref: node_ref.clone(),
            uid: String::new(),
            obj: Value::Null,
            stopped,
            images: HashSet::new(),
            lease_exists: false,
            last_report: None,
            last_post: None,
            busy: false,
        });
        entry.node_ref = node_ref;
        entry.uid = s(&obj, "/metadata/uid").to_string();
        let needs_post = !entry.stopped
            && node::status_patch(&obj, &self.cfg.identity, self.cfg.clock.now(), false).is_some();
        entry.obj = obj;
        if entry.stopped {
            return;
        }
        if is_new {
            self.timers.schedule(Key::Lease(name.clone()), now);
            self.timers.schedule(Key::Status(name.clone()), now);
            self.evaluate_node_pods(&name);
        } else if needs_post {
            let at = entry
                .last_post
                .map_or(now, |t| (t + MIN_STATUS_GAP).max(now));
            let key = Key::Status(name.clone());
            if self.timers.deadline(&key).is_none_or(|d| d > at) {
                self.timers.schedule(key, at);
            }
        }
    }

    fn node_gone(&mut self, name: &str) {
        if self.nodes.remove(name).is_some() {
            self.timers.cancel(&Key::Lease(name.to_string()));
            self.timers.cancel(&Key::Status(name.to_string()));
            self.drop_objects_on(name);
        }
    }

    /// Pods of a node that is not (or no longer) ours: forget their plans and objects.
    fn drop_objects_on(&mut self, name: &str) {
        let uids: Vec<String> = self
            .node_pods
            .get(name)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for uid in uids {
            self.timers.cancel(&Key::Pod(uid.clone()));
            if let Some(p) = self.pods.get_mut(&uid) {
                p.stage = None;
                if !p.busy {
                    p.obj = None;
                }
            }
        }
    }

    fn evaluate_node_pods(&mut self, name: &str) {
        let uids: Vec<String> = self
            .node_pods
            .get(name)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for uid in uids {
            // A record without its object (the node was gone or foreign before) needs a fresh
            // copy; a relist brings it.
            if self
                .pods
                .get(&uid)
                .is_some_and(|p| p.obj.is_none() && !p.busy)
            {
                self.pods_relist_wanted = true;
            }
            self.evaluate(&uid);
        }
    }

    fn stop_node(&mut self, name: &str) {
        self.stop_requested.insert(name.to_string());
        if let Some(n) = self.nodes.get_mut(name) {
            n.stopped = true;
            self.timers.cancel(&Key::Lease(name.to_string()));
            self.timers.cancel(&Key::Status(name.to_string()));
            self.drop_objects_on(name);
        }
    }

    fn start_node(&mut self, name: &str) {
        self.stop_requested.remove(name);
        if let Some(n) = self.nodes.get_mut(name) {
            n.stopped = false;
            n.last_report = None;
            let now = Instant::now();
            self.timers.schedule(Key::Lease(name.to_string()), now);
            self.timers.schedule(Key::Status(name.to_string()), now);
        }
    }

    // ---- pods ----

    fn on_pod(&mut self, obj: Value) {
        let uid = s(&obj, "/metadata/uid").to_string();
        let node = s(&obj, "/spec/nodeName").to_string();
        if uid.is_empty() || node.is_empty() {
            return;
        }
        let rv = rv_of(&obj);
        let rec = self.pods.entry(uid.clone()).or_insert_with(|| PodRec {
            node: node.clone(),
            namespace: s(&obj, "/metadata/namespace").to_string(),
            name: s(&obj, "/metadata/name").to_string(),
            rv: 0,
            obj: None,
            stage: None,
            busy: false,
            noop_rv: None,
        });
        if rv != 0 && rv < rec.rv {
            return;
        }
        let first_sight = rec.rv == 0;
        rec.rv = rv;
        if first_sight {
            self.node_pods
                .entry(node.clone())
                .or_default()
                .insert(uid.clone());
            // An address a pod already holds (Skiff restarted) is not handed out again.
            if let (Some(n), Some(ip)) = (
                self.nodes.get(&node),
                obj.pointer("/status/podIP").and_then(Value::as_str),
            ) && !engine::host_network(&obj)
            {
                self.network.observe_pod_ip(&n.node_ref, &uid, ip);
            }
        }
        rec.obj = Some(obj);
        if !rec.busy {
            self.evaluate(&uid);
        }
    }

    fn pod_gone(&mut self, uid: &str) {
        self.timers.cancel(&Key::Pod(uid.to_string()));
        let Some(rec) = self.pods.remove(uid) else {
            return;
        };
        if let Some(set) = self.node_pods.get_mut(&rec.node) {
            set.remove(uid);
            if set.is_empty() {
                self.node_pods.remove(&rec.node);
            }
        }
        if let Some(n) = self.nodes.get(&rec.node) {
            let network = self.network.clone();
            let node_ref = n.node_ref.clone();
            let uid = uid.to_string();
            tokio::spawn(async move { network.release(&node_ref, &uid).await });
        }
    }

    /// Picks the pod's stage and (re)plans it; drops the object when nothing is left to do.
    fn evaluate(&mut self, uid: &str) {
        let Some(rec) = self.pods.get_mut(uid) else {
            return;
        };
        let key = Key::Pod(uid.to_string());
        match self.nodes.get(&rec.node) {
            Some(n) if !n.stopped => {}
            Some(_) => {
                self.timers.cancel(&key);
                rec.stage = None;
                rec.obj = None;
                return;
            }
            None => {
                self.timers.cancel(&key);
                rec.stage = None;
                // Foreign nodes never need the object; unknown ones may turn out to be ours.
                if self.foreign.contains(&rec.node) {
                    rec.obj = None;
                }
                return;
            }
        }
        let Some(obj) = rec.obj.as_ref() else {
            return;
        };
        if rec.noop_rv == Some(rec.rv) {
            return;
        }
        match self.profile.select(obj) {
            None => {
                self.timers.cancel(&key);
                rec.stage = None;
                rec.obj = None;
            }
            Some((idx, stage)) => {
                if rec.stage.map(|(i, _)| i) == Some(idx) && self.timers.deadline(&key).is_some() {
                    return;
                }
                let now = Instant::now();
                let delay = stage.delay.for_pod(obj, &stage.name);
                rec.stage = Some((idx, now));
                self.timers.schedule(key, now + delay);
            }
        }
    }

    // ---- timers and writes ----

    fn fire_due(&mut self) {
        let due = self.timers.pop_due(Instant::now(), usize::MAX);
        self.ready.extend(due);
    }

    fn pump(&mut self) {
        while self.in_flight < self.cfg.max_in_flight.max(1) {
            let Some(key) = self.ready.pop_front() else {
                return;
            };
            match key {
                Key::Pod(uid) => self.start_pod_write(uid),
                Key::Lease(node) => self.start_lease_write(node),
                Key::Status(node) => self.start_status_write(node),
            }
        }
    }

    fn start_pod_write(&mut self, uid: String) {
        let Some(rec) = self.pods.get_mut(&uid) else {
            return;
        };
        let (Some(obj), Some((idx, planned))) = (rec.obj.clone(), rec.stage) else {
            return;
        };
        let Some(node) = self.nodes.get(&rec.node).filter(|n| !n.stopped) else {
            return;
        };
        // The pod may have changed since the plan; act only if the same stage still holds.
        match self.profile.select(&obj) {
            Some((i, _)) if i == idx => {}
            _ => {
                rec.stage = None;
                self.evaluate(&uid);
                return;
            }
        }
        rec.busy = true;
        rec.stage = None;
        self.in_flight += 1;
        let job = PodJob {
            client: self.client.clone(),
            network: self.network.clone(),
            profile: self.profile.clone(),
            clock: self.cfg.clock.clone(),
            stage: idx,
            waited: planned.elapsed(),
            node_ref: node.node_ref.clone(),
            node_ip: node::node_ip(&node.obj),
            present: images_present(&obj, &node.images),
            namespace: rec.namespace.clone(),
            name: rec.name.clone(),
            uid: uid.clone(),
            obj,
        };
        let tx = self.done_tx.clone();
        tokio::spawn(async move {
            let outcome = job.run().await;
            let _ = tx.send(Done::Pod { uid, outcome });
        });
    }

    fn start_lease_write(&mut self, name: String) {
        let Some(n) = self.nodes.get(&name).filter(|n| !n.stopped) else {
            return;
        };
        self.in_flight += 1;
        let client = self.client.clone();
        let now = self.cfg.clock.now();
        let exists = n.lease_exists;
        let lease = node::lease(&name, &n.uid, now);
        let tx = self.done_tx.clone();
        tokio::spawn(async move {
            let ok = renew_lease(client.as_ref(), &name, lease, exists, now).await;
            let _ = tx.send(Done::Lease { node: name, ok });
        });
    }

    fn start_status_write(&mut self, name: String) {
        let report = self.cfg.status_report_interval;
        let Some(n) = self.nodes.get_mut(&name).filter(|n| !n.stopped) else {
            return;
        };
        if n.busy {
            // One status write per node at a time; look again when it ends.
            return;
        }
        let heartbeat = n.last_report.is_none_or(|t| t.elapsed() >= report);
        let Some(patch) =
            node::status_patch(&n.obj, &self.cfg.identity, self.cfg.clock.now(), heartbeat)
        else {
            let next = n.last_report.map_or_else(Instant::now, |t| t + report);
            self.timers.schedule(Key::Status(name), next);
            return;
        };
        n.busy = true;
        n.last_post = Some(Instant::now());
        let beat = patch.pointer("/status/conditions").is_some();
        self.in_flight += 1;
        let client = self.client.clone();
        let tx = self.done_tx.clone();
        tokio::spawn(async move {
            let r = client
                .patch(
                    &nodes_ref(),
                    &name,
                    PatchType::Strategic,
                    patch,
                    &PatchOptions {
                        field_manager: Some("kubelet".into()),
                        subresource: Some("status".into()),
                        ..Default::default()
                    },
                )
                .await;
            let obj = match r {
                Ok(o) => Some(o),
                Err(e) => {
                    tracing::warn!(node = %name, error = %e, "sim kubelet: node status update failed");
                    None
                }
            };
            let _ = tx.send(Done::Status {
                node: name,
                obj,
                beat,
            });
        });
    }

    fn on_done(&mut self, done: Done) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let now = Instant::now();
        match done {
            Done::Lease { node, ok } => {
                let interval = self.cfg.lease_renew_interval;
                if let Some(n) = self.nodes.get_mut(&node).filter(|n| !n.stopped) {
                    let next = if ok && !n.lease_exists {
                        n.lease_exists = true;
                        // Spread the renewals of nodes created together over one interval.
                        let frac = (hash64(&[&node], 3) % 1000) as u32;
                        now + interval / 2 + interval * frac / 1000
                    } else if ok {
                        now + interval
                    } else {
                        n.lease_exists = false;
                        now + Duration::from_secs(1).min(interval)
                    };
                    self.timers.schedule(Key::Lease(node), next);
                }
            }
            Done::Status { node, obj, beat } => {
                let report = self.cfg.status_report_interval;
                if let Some(n) = self.nodes.get_mut(&node) {
                    n.busy = false;
                    let ok = obj.is_some();
                    if let Some(o) = obj
                        && rv_of(&o) >= rv_of(&n.obj)
                    {
                        n.obj = o;
                    }
                    if ok && beat {
                        n.last_report = Some(now);
                    }
                    if !n.stopped {
                        let still_differs = node::status_patch(
                            &n.obj,
                            &self.cfg.identity,
                            self.cfg.clock.now(),
                            false,
                        )
                        .is_some();
                        let next = if !ok || still_differs {
                            now + MIN_STATUS_GAP
                        } else {
                            n.last_report.map_or(now, |t| t + report)
                        };
                        self.timers.schedule(Key::Status(node), next);
                    }
                }
            }
            Done::Pod { uid, outcome } => {
                let Some(rec) = self.pods.get_mut(&uid) else {
                    return;
                };
                rec.busy = false;
                match outcome {
                    PodOutcome::Applied {
                        obj,
                        pulled,
                        deleted,
                    } => {
                        if let Some(n) = self.nodes.get_mut(&rec.node) {
                            n.images.extend(pulled);
                        }
                        if deleted {
                            self.pod_gone(&uid);
                            return;
                        }
                        if let Some(o) = obj
                            && rv_of(&o) >= rec.rv
                        {
                            rec.rv = rv_of(&o);
                            rec.obj = Some(o);
                        }
                    }
                    PodOutcome::Noop => rec.noop_rv = Some(rec.rv),
                    PodOutcome::Gone => {
                        self.pod_gone(&uid);
                        return;
                    }
                    PodOutcome::Retry(after) => {
                        if let Some(o) = rec.obj.as_ref()
                            && let Some((idx, _)) = self.profile.select(o)
                        {
                            rec.stage = Some((idx, now));
                            self.timers.schedule(Key::Pod(uid), now + after);
                        }
                        return;
                    }
                }
                self.evaluate(&uid);
            }
        }
    }
}

fn images_present(pod: &Value, node_images: &HashSet<String>) -> HashSet<String> {
    ["initContainers", "containers"]
        .iter()
        .flat_map(|l| crate::sim::stage::containers(pod, l))
        .filter_map(|c| c.get("image").and_then(Value::as_str))
        .filter(|i| node_images.contains(*i))
        .map(str::to_string)
        .collect()
}

async fn renew_lease(
    client: &dyn ApiClient,
    name: &str,
    lease: Value,
    exists: bool,
    now: Timestamp,
) -> bool {
    let renew = || async {
        client
            .patch(
                &leases_ref(),
                name,
                PatchType::Merge,
                node::lease_renewal(name, now),
                &PatchOptions {
                    field_manager: Some("kubelet".into()),
                    ..Default::default()
                },
            )
            .await
    };
    let create = || async {
        client
            .create(
                &leases_ref(),
                lease.clone(),
                &WriteOptions {
                    field_manager: Some("kubelet".into()),
                    ..Default::default()
                },
            )
            .await
    };
    let r = if exists {
        match renew().await {
            Err(ApiError::NotFound { .. }) => create().await,
            other => other,
        }
    } else {
        match create().await {
            Err(ApiError::AlreadyExists { .. }) => renew().await,
            other => other,
        }
    };
    match r {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(node = %name, error = %e, "sim kubelet: lease renewal failed");
            false
        }
    }
}

/// Everything one pod write needs, moved into its task.
struct PodJob {
    client: Arc<dyn ApiClient>,
    network: Arc<dyn PodNetwork>,
    profile: Arc<Profile>,
    clock: Arc<dyn Clock>,
    stage: usize,
    waited: Duration,
    node_ref: NodeRef,
    node_ip: String,
    present: HashSet<String>,
    namespace: String,
    name: String,
    uid: String,
    obj: Value,
}

/// Retry delay after a failed pod write or an exhausted network.
const POD_RETRY: Duration = Duration::from_secs(2);
/// Retry delay when the network has no address for the pod (each try records a
/// `FailedCreatePodSandBox` event, so not too often).
const NETWORK_RETRY: Duration = Duration::from_secs(10);

impl PodJob {
    async fn run(self) -> PodOutcome {
        let Some(stage) = self.profile.stages.get(self.stage) else {
            return PodOutcome::Noop;
        };
        let mut pod_ip = None;
        if engine::needs_pod_ip(stage, &self.obj) {
            match self.network.assign(&self.node_ref, &self.uid).await {
                Ok(ip) => pod_ip = Some(ip),
                Err(e) => {
                    let ev = PodEvent {
                        type_: "Warning",
                        reason: "FailedCreatePodSandBox",
                        message: format!(
                            "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"{}\": {e}",
                            crate::sim::hash::hex_id(&[&self.uid, "sandbox"], 64)
                        ),
                        field_path: String::new(),
                        ago: Duration::ZERO,
                    };
                    self.record(&[ev], self.clock.now()).await;
                    return PodOutcome::Retry(NETWORK_RETRY);
                }
            }
        }
        let now = self.clock.now();
        let present = &self.present;
        let image_present = |i: &str| present.contains(i);
        let ctx = PodContext {
            now,
            node_name: &self.node_ref.name,
            node_ip: &self.node_ip,
            pod_ip: pod_ip.as_deref(),
            image_present: &image_present,
            waited: self.waited,
        };
        let t: Transition = engine::apply(stage, &self.obj, &ctx);
        if t.is_noop() {
            return PodOutcome::Noop;
        }
        // The kubelet's Events come before the status that sums them up, as the runtime does the
        // steps before the status manager reports them: a reader who sees the new status also
        // sees every event that led to it (a followed `kubectl logs` relies on that order).
        self.record(&t.events, now).await;
        let pods = pods_ref().in_namespace(&self.namespace);
        let mut new_obj = None;
        if let Some(patch) = t.patch.clone() {
            match self
                .client
                .patch(
                    &pods,
                    &self.name,
                    PatchType::Strategic,
                    patch,
                    &PatchOptions {
                        field_manager: Some("kubelet".into()),
                        subresource: Some("status".into()),
                        ..Default::default()
                    },
                )
                .await
            {
                Ok(o) if s(&o, "/metadata/uid") == self.uid => new_obj = Some(o),
                Ok(_) | Err(ApiError::NotFound { .. }) => {
                    self.release_if_assigned(pod_ip.is_some()).await;
                    return PodOutcome::Gone;
                }
                Err(e) => {
                    tracing::warn!(pod = %self.name, namespace = %self.namespace, error = %e, "sim kubelet: pod status update failed");
                    return PodOutcome::Retry(POD_RETRY);
                }
            }
        }
        if t.release_ip {
            self.network.release(&self.node_ref, &self.uid).await;
        }
        let mut deleted = false;
        if t.delete {
            match self
                .client
                .delete(
                    &pods,
                    &self.name,
                    &DeleteOptions {
                        grace_period_seconds: Some(0),
                        precondition_uid: Some(self.uid.clone()),
                        ..Default::default()
                    },
                )
                .await
            {
                Ok(skiff_k8s_core::client::DeleteOutcome::Deleted(_))
                | Err(ApiError::NotFound { .. }) => deleted = true,
                // Finalizers hold it; the watch tells us when it goes.
                Ok(skiff_k8s_core::client::DeleteOutcome::Pending(o)) => new_obj = Some(o),
                Err(e) => {
                    tracing::warn!(pod = %self.name, error = %e, "sim kubelet: pod delete failed");
                    return PodOutcome::Retry(POD_RETRY);
                }
            }
        }
        PodOutcome::Applied {
            obj: new_obj,
            pulled: t.pulled_images,
            deleted,
        }
    }

    async fn release_if_assigned(&self, assigned: bool) {
        if assigned {
            self.network.release(&self.node_ref, &self.uid).await;
        }
    }

    /// Writes the events as the kubelet's recorder does (core/v1, source kubelet + host).
    async fn record(&self, events: &[PodEvent], now: Timestamp) {
        for ev in events {
            let obj = event_object(
                ev,
                &self.namespace,
                &self.name,
                &self.uid,
                &self.node_ref.name,
                now,
            );
            if let Err(e) = self
                .client
                .create(&events_ref(&self.namespace), obj, &WriteOptions::default())
                .await
            {
                tracing::debug!(pod = %self.name, error = %e, "sim kubelet: event not recorded");
            }
        }
    }
}

static EVENT_SEQ: AtomicU64 = AtomicU64::new(0);

/// A core/v1 Event about a pod, named `<pod>.<hex nanos>` as client-go's recorder names them.
pub fn event_object(
    ev: &PodEvent,
    namespace: &str,
    pod: &str,
    uid: &str,
    node: &str,
    now: Timestamp,
) -> Value {
    let at = now
        .checked_sub(jiff::SignedDuration::try_from(ev.ago).unwrap_or_default())
        .unwrap_or(now);
    let nanos = at.as_nanosecond() as u64 + EVENT_SEQ.fetch_add(1, Ordering::Relaxed);
    let stamp = engine::rfc3339(at);
    let mut involved = json!({"apiVersion": "v1", "kind": "Pod", "name": pod,
                              "namespace": namespace, "uid": uid});
    if !ev.field_path.is_empty() {
        involved["fieldPath"] = json!(ev.field_path);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{pod}.{nanos:x}"), "namespace": namespace},
        "involvedObject": involved,
        "reason": ev.reason,
        "message": ev.message,
        "source": {"component": "kubelet", "host": node},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "type": ev.type_,
        "reportingComponent": "kubelet",
        "reportingInstance": node,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_look_like_the_kubelets() {
        let now: Timestamp = "2026-01-01T00:00:10Z".parse().unwrap();
        let ev = PodEvent {
            type_: "Normal",
            reason: "Pulling",
            message: "Pulling image \"nginx\"".into(),
            field_path: "spec.containers{nginx}".into(),
            ago: Duration::from_secs(2),
        };
        let a = event_object(&ev, "default", "web", "uid-1", "n1", now);
        let b = event_object(&ev, "default", "web", "uid-1", "n1", now);
        assert_ne!(
            a["metadata"]["name"], b["metadata"]["name"],
            "names never collide"
        );
        assert!(a["metadata"]["name"].as_str().unwrap().starts_with("web."));
        assert_eq!(
            a["firstTimestamp"], "2026-01-01T00:00:08Z",
            "dated back by `ago`"
        );
        assert_eq!(a["source"], json!({"component": "kubelet", "host": "n1"}));
        assert_eq!(a["involvedObject"]["fieldPath"], "spec.containers{nginx}");
        assert_eq!(a["involvedObject"]["uid"], "uid-1");
        assert_eq!(a["reportingComponent"], "kubelet");
        assert_eq!(a["count"], 1);
    }

    #[test]
    fn only_the_images_already_on_the_node_count_as_present() {
        let pod = json!({"spec": {"initContainers": [{"image": "busybox"}],
                                  "containers": [{"image": "nginx"}, {"image": "redis"}]}});
        let node: HashSet<String> = ["busybox", "redis", "other"].map(String::from).into();
        let got = images_present(&pod, &node);
        assert_eq!(got, ["busybox", "redis"].map(String::from).into());
    }
}
