//! The scheduler task: informers feed one channel; a single loop owns the cache and the queue,
//! schedules one pod at a time (no locks on the hot path), assumes it on its node, and hands the
//! API writes (binding, PVC annotation, status, events, preemption deletes) to spawned tasks
//! whose outcomes come back on a second channel.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use skiff_k8s_core::client::{
    ApiClient, DeleteOptions, ListOptions, PatchOptions, ResourceRef, WatchEvent, WatchOptions,
    WriteOptions,
};
use skiff_k8s_core::patch::PatchType;
use skiff_k8s_core::status::ApiError;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::cache::Cache;
use crate::framework::Profile;
use crate::model::{NodeSpec, PodInfo, PodKey, PodRef, string_map};
use crate::plugins::volume_binding::{SELECTED_NODE, claims_to_select};
use crate::queue::SchedulingQueue;
use crate::{SCHEDULER_NAME, preemption};

/// What an informer watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Pod,
    Node,
    Namespace,
    Pvc,
    Pv,
    StorageClass,
    Pdb,
    CsiNode,
}

impl Kind {
    const ALL: [Kind; 8] = [
        Kind::Pod,
        Kind::Node,
        Kind::Namespace,
        Kind::Pvc,
        Kind::Pv,
        Kind::StorageClass,
        Kind::Pdb,
        Kind::CsiNode,
    ];

    fn resource(self) -> ResourceRef {
        match self {
            Kind::Pod => ResourceRef::new("", "v1", "pods"),
            Kind::Node => ResourceRef::new("", "v1", "nodes"),
            Kind::Namespace => ResourceRef::new("", "v1", "namespaces"),
            Kind::Pvc => ResourceRef::new("", "v1", "persistentvolumeclaims"),
            Kind::Pv => ResourceRef::new("", "v1", "persistentvolumes"),
            Kind::StorageClass => ResourceRef::new("storage.k8s.io", "v1", "storageclasses"),
            Kind::Pdb => ResourceRef::new("policy", "v1", "poddisruptionbudgets"),
            Kind::CsiNode => ResourceRef::new("storage.k8s.io", "v1", "csinodes"),
        }
    }
}

/// Informer output.
#[derive(Debug)]
pub enum Event {
    /// A (re)list: the full current set of this kind.
    Reset(Kind, Vec<Value>),
    Upsert(Kind, Value),
    Delete(Kind, Value),
}

/// Outcome of a spawned API write.
#[derive(Debug)]
enum Done {
    Bound(PodKey),
    BindFailed(PodKey, ApiError),
}

fn key_of(v: &Value) -> String {
    let ns = v
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = v
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if ns.is_empty() {
        name.to_string()
    } else {
        format!("{ns}/{name}")
    }
}

/// List then watch one kind forever, relisting when the watch ends or expires.
#[doc(alias = "reflector")]
pub async fn informer(client: Arc<dyn ApiClient>, kind: Kind, tx: mpsc::UnboundedSender<Event>) {
    let r = kind.resource();
    loop {
        let list = match client.list(&r, &ListOptions::default()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(?kind, error = %e, "scheduler list failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let rv = list.resource_version.clone();
        if tx.send(Event::Reset(kind, list.items)).is_err() {
            return;
        }
        let opts = WatchOptions {
            resource_version: Some(rv),
            allow_bookmarks: true,
            ..WatchOptions::default()
        };
        let mut stream = match client.watch(&r, &opts).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(?kind, error = %e, "scheduler watch failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        while let Some(ev) = stream.next().await {
            let sent = match ev {
                WatchEvent::Added(o) | WatchEvent::Modified(o) => tx.send(Event::Upsert(kind, o)),
                WatchEvent::Deleted(o) => tx.send(Event::Delete(kind, o)),
                WatchEvent::Bookmark(_) => Ok(()),
                WatchEvent::Error(e) => {
                    tracing::debug!(?kind, error = %e, "scheduler watch ended; relisting");
                    break;
                }
            };
            if sent.is_err() {
                return;
            }
        }
        // The server closed the watch: relist, without spinning if it keeps doing so.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The scheduler's state, owned by one task.
pub struct Scheduler {
    client: Arc<dyn ApiClient>,
    pub profile: Profile,
    pub cache: Cache,
    pub queue: SchedulingQueue,
    synced: HashSet<Kind>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    writes: Arc<Semaphore>,
    /// Last FailedScheduling event per pod, to aggregate repeats as upstream's recorder does.
    last_failure: HashMap<PodKey, (String, Instant)>,
    /// Pending pods known to the informer, for Reset reconciliation.
    known_pods: HashSet<PodKey>,
}

/// Concurrent API writes (bindings, events) in flight.
const MAX_WRITES: usize = 256;

impl Scheduler {
    pub fn new(client: Arc<dyn ApiClient>) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Scheduler {
            client,
            profile: crate::plugins::default_profile(),
            cache: Cache::new(),
            queue: SchedulingQueue::new(),
            synced: HashSet::new(),
            done_tx,
            done_rx,
            writes: Arc::new(Semaphore::new(MAX_WRITES)),
            last_failure: HashMap::new(),
            known_pods: HashSet::new(),
        }
    }

    fn all_synced(&self) -> bool {
        Kind::ALL.iter().all(|k| self.synced.contains(k))
    }

    /// Applies one informer event to the cache and queue.
    pub fn handle(&mut self, ev: Event) {
        let now = Instant::now();
        match ev {
            Event::Reset(kind, items) => {
                self.synced.insert(kind);
                match kind {
                    Kind::Pod => {
                        let present: HashSet<String> = items.iter().map(key_of).collect();
                        let gone: Vec<String> =
                            self.known_pods.difference(&present).cloned().collect();
                        for k in gone {
                            self.forget_pod(&k);
                        }
                        for it in items {
                            self.upsert_pod(&it, now);
                        }
                    }
                    Kind::Node => {
                        let present: HashSet<String> = items.iter().map(key_of).collect();
                        let gone: Vec<String> = self
                            .cache
                            .node_infos()
                            .iter()
                            .filter(|n| n.node.is_some() && !present.contains(&n.name))
                            .map(|n| n.name.clone())
                            .collect();
                        for n in gone {
                            self.cache.remove_node(&n);
                        }
                        for it in items {
                            self.cache.upsert_node(NodeSpec::parse(&it));
                        }
                        self.queue.move_all_to_active(now);
                    }
                    _ => {
                        let map = self.map_of(kind);
                        map.clear();
                        for it in items {
                            map.insert(key_of(&it), it);
                        }
                        self.refresh_namespaces(kind);
                        self.queue.move_all_to_active(now);
                    }
                }
            }
            Event::Upsert(Kind::Pod, v) => self.upsert_pod(&v, now),
            Event::Delete(Kind::Pod, v) => self.forget_pod(&key_of(&v)),
            Event::Upsert(Kind::Node, v) => {
                self.cache.upsert_node(NodeSpec::parse(&v));
                self.queue.move_all_to_active(now);
            }
            Event::Delete(Kind::Node, v) => self.cache.remove_node(&key_of(&v)),
            // Budgets only matter to preemption: no pod becomes schedulable by them.
            Event::Upsert(Kind::Pdb, v) => {
                self.cache.pdbs.insert(key_of(&v), v);
            }
            Event::Upsert(kind, v) => {
                self.map_of(kind).insert(key_of(&v), v);
                self.refresh_namespaces(kind);
                self.queue.move_all_to_active(now);
            }
            Event::Delete(kind, v) => {
                self.map_of(kind).remove(&key_of(&v));
                self.refresh_namespaces(kind);
            }
        }
    }

    fn map_of(&mut self, kind: Kind) -> &mut HashMap<String, Value> {
        match kind {
            Kind::Pvc => &mut self.cache.pvcs,
            Kind::Pv => &mut self.cache.pvs,
            Kind::StorageClass => &mut self.cache.storage_classes,
            Kind::Pdb => &mut self.cache.pdbs,
            Kind::CsiNode => &mut self.cache.csi_nodes,
            // Namespaces are kept as raw objects until turned into label maps.
            _ => &mut self.cache.pvs_scratch,
        }
    }

    fn refresh_namespaces(&mut self, kind: Kind) {
        if kind == Kind::Namespace {
            self.cache.namespaces = self
                .cache
                .pvs_scratch
                .iter()
                .map(|(k, v)| (k.clone(), string_map(v.pointer("/metadata/labels"))))
                .collect();
        }
    }

    fn upsert_pod(&mut self, v: &Value, now: Instant) {
        let pod = Arc::new(PodInfo::parse(v));
        let key = pod.key();
        self.known_pods.insert(key.clone());
        // Bound, gone or re-nominated pods update the nominations.
        self.cache.set_nominated(
            &pod,
            if pod.node_name.is_empty() && !pod.deleting && !pod.terminal {
                &pod.nominated_node_name
            } else {
                ""
            },
        );
        if !pod.node_name.is_empty() {
            self.queue.remove(&key);
            self.last_failure.remove(&key);
            if pod.terminal {
                if self.cache.remove_pod(&key).is_some() {
                    self.queue.move_all_to_active(now);
                }
            } else {
                let node = pod.node_name.clone();
                self.cache.add_pod(pod, &node, false);
            }
            return;
        }
        if !pod.is_ours() || pod.deleting || pod.terminal || pod.gated {
            self.queue.remove(&key);
            return;
        }
        if self.cache.is_assumed(&key) {
            // Our binding is in flight; the watch has not caught up yet.
            return;
        }
        self.queue.add_or_update(pod, now);
    }

    fn forget_pod(&mut self, key: &str) {
        if let Some((ns, name)) = key.split_once('/') {
            let mut gone = PodInfo::parse(&json!({"metadata": {"namespace": ns, "name": name}}));
            gone.priority = i32::MAX;
            self.cache.set_nominated(&Arc::new(gone), "");
        }
        self.known_pods.remove(key);
        self.queue.remove(key);
        self.last_failure.remove(key);
        if self.cache.remove_pod(key).is_some() {
            self.queue.move_all_to_active(Instant::now());
        }
    }

    fn on_done(&mut self, d: Done) {
        match d {
            // The assumption stays until the watch shows the pod bound (`upsert_pod`), so a
            // stale unbound event in between does not requeue it.
            Done::Bound(key) => tracing::trace!(pod = %key, "bound"),
            Done::BindFailed(key, e) => {
                tracing::info!(pod = %key, error = %e, "binding failed");
                let pod = self.cache.remove_pod(&key);
                if let Some(pod) = pod
                    && !matches!(e, ApiError::NotFound { .. })
                    && self.known_pods.contains(&key)
                {
                    let now = Instant::now();
                    self.queue.add_or_update(pod, now);
                    self.queue.retry(&key, now);
                }
            }
        }
    }

    /// Schedules the next pod, if any is ready. Returns whether a pod was processed.
    #[doc(alias = "scheduleOne")]
    pub fn schedule_one(&mut self) -> bool {
        self.schedule_one_at(Instant::now())
    }

    /// [`Self::schedule_one`] with the queue's clock given (tests step over backoffs).
    pub fn schedule_one_at(&mut self, now: Instant) -> bool {
        if !self.all_synced() {
            return false;
        }
        let Some(pod) = self.queue.pop(now) else {
            return false;
        };
        let key = pod.key();
        match self.profile.schedule(&pod, &self.cache) {
            Ok(res) => {
                let claims = claims_to_select(&pod, &self.cache);
                self.cache.set_nominated(&pod, "");
                self.cache.add_pod(pod.clone(), &res.node, true);
                self.queue.remove(&key);
                self.last_failure.remove(&key);
                self.spawn_bind(pod, res.node, claims);
            }
            Err(mut fit) => {
                match preemption::preempt(&self.profile, &pod, &self.cache, &fit) {
                    Ok(c) => {
                        self.cache.set_nominated(&pod, &c.node);
                        self.spawn_preemption(pod.clone(), c);
                    }
                    Err(msg) => fit.post_filter_msg = Some(msg),
                }
                let msg = fit.message();
                self.queue.unschedulable(&key, now);
                self.report_unschedulable(pod, msg, now);
            }
        }
        true
    }

    fn spawn_bind(&self, pod: PodRef, node: String, claims: Vec<String>) {
        let client = self.client.clone();
        let done = self.done_tx.clone();
        let permits = self.writes.clone();
        tokio::spawn(async move {
            let _permit = permits.acquire_owned().await;
            let key = pod.key();
            let r = bind(client.as_ref(), &pod, &node, &claims).await;
            let _ = done.send(match r {
                Ok(()) => Done::Bound(key),
                Err(e) => Done::BindFailed(key, e),
            });
        });
    }

    fn spawn_preemption(&self, pod: PodRef, c: preemption::Candidate) {
        let client = self.client.clone();
        tokio::spawn(async move {
            let pods = ResourceRef::new("", "v1", "pods").in_namespace(&pod.namespace);
            let _ = client
                .patch(
                    &pods,
                    &pod.name,
                    PatchType::Merge,
                    json!({"status": {"nominatedNodeName": c.node}}),
                    &PatchOptions {
                        subresource: Some("status".into()),
                        field_manager: Some(SCHEDULER_NAME.into()),
                        ..PatchOptions::default()
                    },
                )
                .await;
            let scheduler = if pod.scheduler_name.is_empty() {
                SCHEDULER_NAME
            } else {
                pod.scheduler_name.as_str()
            };
            for v in c.victims {
                let r = ResourceRef::new("", "v1", "pods").in_namespace(&v.namespace);
                // The victim learns why it goes (`DisruptionTarget`), as upstream's preemption
                // writes before deleting; a Job's podFailurePolicy can match on it.
                let marked = client
                    .patch(
                        &r,
                        &v.name,
                        PatchType::Strategic,
                        json!({"status": {"conditions": [{
                            "type": "DisruptionTarget", "status": "True",
                            "reason": "PreemptionByScheduler",
                            "message": format!(
                                "{scheduler}: preempting to accommodate a higher priority pod"
                            ),
                            "lastTransitionTime": jiff::Timestamp::now()
                                .round(jiff::Unit::Second)
                                .unwrap_or_else(|_| jiff::Timestamp::now())
                                .to_string(),
                        }]}}),
                        &PatchOptions {
                            subresource: Some("status".into()),
                            field_manager: Some(SCHEDULER_NAME.into()),
                            ..PatchOptions::default()
                        },
                    )
                    .await;
                if let Err(e) = marked {
                    tracing::debug!(victim = %v.key(), error = %e, "DisruptionTarget not written");
                }
                let opts = DeleteOptions {
                    precondition_uid: (!v.uid.is_empty()).then(|| v.uid.clone()),
                    ..DeleteOptions::default()
                };
                match client.delete(&r, &v.name, &opts).await {
                    Ok(_) => {
                        let msg = format!(
                            "Preempted by pod {} on node {}",
                            if pod.uid.is_empty() {
                                &pod.name
                            } else {
                                &pod.uid
                            },
                            c.node
                        );
                        emit_event(
                            client.as_ref(),
                            &v,
                            "Normal",
                            "Preempted",
                            &msg,
                            "Preempting",
                        )
                        .await;
                    }
                    Err(e) => {
                        tracing::info!(victim = %v.key(), error = %e, "preemption delete failed")
                    }
                }
            }
        });
    }

    fn report_unschedulable(&mut self, pod: PodRef, msg: String, now: Instant) {
        let key = pod.key();
        let repeat = self
            .last_failure
            .get(&key)
            .is_some_and(|(m, t)| *m == msg && now.duration_since(*t) < Duration::from_secs(60));
        if repeat {
            return;
        }
        self.last_failure.insert(key, (msg.clone(), now));
        let client = self.client.clone();
        let permits = self.writes.clone();
        tokio::spawn(async move {
            let _permit = permits.acquire_owned().await;
            let pods = ResourceRef::new("", "v1", "pods").in_namespace(&pod.namespace);
            let cond = json!({"status": {"conditions": [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": msg, "lastProbeTime": null,
                "lastTransitionTime": jiff::Timestamp::now().to_string()}]}});
            if let Err(e) = client
                .patch(
                    &pods,
                    &pod.name,
                    PatchType::Strategic,
                    cond,
                    &PatchOptions {
                        subresource: Some("status".into()),
                        field_manager: Some(SCHEDULER_NAME.into()),
                        ..PatchOptions::default()
                    },
                )
                .await
            {
                tracing::debug!(pod = %pod.key(), error = %e, "status update failed");
            }
            emit_event(
                client.as_ref(),
                &pod,
                "Warning",
                "FailedScheduling",
                &msg,
                "Scheduling",
            )
            .await;
        });
    }

    /// Runs until `shutdown` flips.
    pub async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Event>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut last_flush = Instant::now();
        loop {
            if *shutdown.borrow() {
                return;
            }
            // Take in everything the informers and writers have said before deciding.
            while let Ok(ev) = rx.try_recv() {
                self.handle(ev);
            }
            while let Ok(d) = self.done_rx.try_recv() {
                self.on_done(d);
            }
            let now = Instant::now();
            if now.duration_since(last_flush) >= Duration::from_secs(30) {
                self.queue.flush_unschedulable(now);
                last_flush = now;
            }
            // Schedule a batch, then look at the channels again.
            let mut did = 0;
            while did < 64 && self.schedule_one() {
                did += 1;
            }
            if did > 0 {
                tokio::task::yield_now().await;
                continue;
            }
            let wake = self
                .queue
                .next_backoff()
                .unwrap_or(now + Duration::from_secs(30))
                .min(last_flush + Duration::from_secs(30));
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) => self.handle(ev),
                    None => return,
                },
                Some(d) = self.done_rx.recv() => self.on_done(d),
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// PVC annotations, the `pods/binding` call and the `Scheduled` event.
async fn bind(
    client: &dyn ApiClient,
    pod: &PodInfo,
    node: &str,
    claims: &[String],
) -> Result<(), ApiError> {
    for c in claims {
        let (ns, name) = c.split_once('/').unwrap_or(("", c));
        let r = ResourceRef::new("", "v1", "persistentvolumeclaims").in_namespace(ns);
        client
            .patch(
                &r,
                name,
                PatchType::Merge,
                json!({"metadata": {"annotations": {SELECTED_NODE: node}}}),
                &PatchOptions {
                    field_manager: Some(SCHEDULER_NAME.into()),
                    ..PatchOptions::default()
                },
            )
            .await?;
    }
    let pods = ResourceRef::new("", "v1", "pods").in_namespace(&pod.namespace);
    let mut meta = json!({"name": pod.name, "namespace": pod.namespace});
    if !pod.uid.is_empty() {
        meta["uid"] = json!(pod.uid);
    }
    let body = json!({
        "apiVersion": "v1", "kind": "Binding", "metadata": meta,
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    });
    client
        .create_subresource(
            &pods,
            &pod.name,
            "binding",
            body,
            &WriteOptions {
                field_manager: Some(SCHEDULER_NAME.into()),
                ..WriteOptions::default()
            },
        )
        .await?;
    let msg = format!(
        "Successfully assigned {}/{} to {node}",
        pod.namespace, pod.name
    );
    emit_event(client, pod, "Normal", "Scheduled", &msg, "Binding").await;
    Ok(())
}

/// Records a core/v1 Event about a pod, as kube-scheduler's recorder does (`kubectl describe
/// pod` and `kubectl get events` read these).
pub async fn emit_event(
    client: &dyn ApiClient,
    pod: &PodInfo,
    ty: &str,
    reason: &str,
    msg: &str,
    action: &str,
) {
    let now = jiff::Timestamp::now();
    let ev = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{}.{:x}", pod.name, now.as_nanosecond()), "namespace": pod.namespace},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": pod.namespace,
                           "name": pod.name, "uid": pod.uid, "resourceVersion": pod.resource_version},
        "reason": reason, "message": msg, "type": ty, "action": action,
        "source": {"component": SCHEDULER_NAME},
        "reportingComponent": SCHEDULER_NAME, "reportingInstance": format!("{SCHEDULER_NAME}-skiff"),
        "firstTimestamp": now.to_string(), "lastTimestamp": now.to_string(), "count": 1,
    });
    let r = ResourceRef::new("", "v1", "events").in_namespace(&pod.namespace);
    if let Err(e) = client.create(&r, ev, &WriteOptions::default()).await {
        tracing::debug!(pod = %pod.key(), error = %e, "event not recorded");
    }
}

/// Starts the informers and the scheduling loop.
pub async fn run(client: Arc<dyn ApiClient>, shutdown: watch::Receiver<bool>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let tasks: Vec<_> = Kind::ALL
        .iter()
        .map(|k| tokio::spawn(informer(client.clone(), *k, tx.clone())))
        .collect();
    drop(tx);
    Scheduler::new(client).run(rx, shutdown).await;
    for t in tasks {
        t.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_k8s_core::client::{DeleteOutcome, ObjectList, WatchStream};
    use std::sync::Mutex;

    /// Records writes as `"<verb> <resource> <ns>/<name>"`; bindings fail while `refuse_binds`.
    #[derive(Default)]
    struct Fake {
        writes: Mutex<Vec<(String, Value)>>,
        refuse_binds: Mutex<u32>,
    }

    impl Fake {
        fn log(&self, what: String, body: Value) {
            self.writes.lock().unwrap().push((what, body));
        }
        fn writes(&self) -> Vec<(String, Value)> {
            self.writes.lock().unwrap().clone()
        }
    }

    #[async_trait::async_trait]
    impl ApiClient for Fake {
        async fn get(&self, r: &ResourceRef, name: &str) -> Result<Value, ApiError> {
            Err(ApiError::not_found(&r.group, &r.resource, name))
        }
        async fn list(&self, _: &ResourceRef, _: &ListOptions) -> Result<ObjectList, ApiError> {
            Ok(ObjectList {
                resource_version: "1".into(),
                continue_token: None,
                remaining_item_count: None,
                items: vec![],
            })
        }
        async fn create(
            &self,
            r: &ResourceRef,
            v: Value,
            _: &WriteOptions,
        ) -> Result<Value, ApiError> {
            self.log(
                format!(
                    "create {} {}",
                    r.resource,
                    v["reason"].as_str().unwrap_or("")
                ),
                v.clone(),
            );
            Ok(v)
        }
        async fn update(
            &self,
            _: &ResourceRef,
            v: Value,
            _: &WriteOptions,
        ) -> Result<Value, ApiError> {
            Ok(v)
        }
        async fn update_status(
            &self,
            _: &ResourceRef,
            v: Value,
            _: &WriteOptions,
        ) -> Result<Value, ApiError> {
            Ok(v)
        }
        async fn patch(
            &self,
            r: &ResourceRef,
            n: &str,
            _: PatchType,
            p: Value,
            o: &PatchOptions,
        ) -> Result<Value, ApiError> {
            let sub = o
                .subresource
                .as_deref()
                .map(|s| format!("/{s}"))
                .unwrap_or_default();
            self.log(format!("patch {}{sub} {n}", r.resource), p.clone());
            Ok(p)
        }
        async fn delete(
            &self,
            r: &ResourceRef,
            n: &str,
            _: &DeleteOptions,
        ) -> Result<DeleteOutcome, ApiError> {
            self.log(format!("delete {} {n}", r.resource), Value::Null);
            Ok(DeleteOutcome::Deleted(Value::Null))
        }
        async fn watch(&self, _: &ResourceRef, _: &WatchOptions) -> Result<WatchStream, ApiError> {
            Ok(futures::stream::pending().boxed())
        }
        async fn create_subresource(
            &self,
            _: &ResourceRef,
            name: &str,
            sub: &str,
            body: Value,
            _: &WriteOptions,
        ) -> Result<Value, ApiError> {
            let mut refuse = self.refuse_binds.lock().unwrap();
            if *refuse > 0 {
                *refuse -= 1;
                return Err(ApiError::BadRequest("pod is being bound".into()));
            }
            drop(refuse);
            self.log(format!("create pods/{sub} {name}"), body);
            Ok(json!({"kind": "Status", "status": "Success"}))
        }
    }

    fn node(name: &str, cpu: &str) -> Value {
        json!({"metadata": {"name": name}, "status": {"allocatable": {"cpu": cpu, "memory": "4Gi", "pods": "10"}}})
    }

    fn pod(name: &str, prio: i64, cpu: &str, node: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                            "creationTimestamp": "2026-01-01T00:00:00Z"},
               "spec": {"priority": prio, "nodeName": node,
                        "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}})
    }

    fn synced(s: &mut Scheduler, nodes: Vec<Value>, pods: Vec<Value>) {
        for k in Kind::ALL {
            let items = match k {
                Kind::Node => nodes.clone(),
                Kind::Pod => pods.clone(),
                _ => vec![],
            };
            s.handle(Event::Reset(k, items));
        }
    }

    async fn settle(s: &mut Scheduler, fake: &Fake, want_writes: usize) {
        for _ in 0..200 {
            while let Ok(d) = s.done_rx.try_recv() {
                s.on_done(d);
            }
            if fake.writes().len() >= want_writes {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("writes so far: {:?}", fake.writes());
    }

    #[tokio::test]
    async fn binds_then_records_the_scheduled_event() {
        let fake = Arc::new(Fake::default());
        let mut s = Scheduler::new(fake.clone());
        synced(&mut s, vec![node("n1", "1")], vec![pod("p", 0, "500m", "")]);
        assert!(s.schedule_one());
        settle(&mut s, &fake, 2).await;
        let w = fake.writes();
        assert_eq!(w[0].0, "create pods/binding p");
        assert_eq!(
            w[0].1["target"],
            json!({"apiVersion": "v1", "kind": "Node", "name": "n1"})
        );
        assert_eq!(w[0].1["metadata"]["uid"], "uid-p");
        assert_eq!(w[1].0, "create events Scheduled");
        assert_eq!(w[1].1["message"], "Successfully assigned default/p to n1");
        assert_eq!(w[1].1["type"], "Normal");
        // The pod is assumed: the watch showing it still unbound does not requeue it.
        s.handle(Event::Upsert(Kind::Pod, pod("p", 0, "500m", "")));
        assert!(!s.schedule_one());
        assert_eq!(s.cache.node("n1").unwrap().requested.milli_cpu, 500);

        // A gated pod waits outside the queue until its gates are removed.
        let mut gated = pod("g", 0, "100m", "");
        gated["spec"]["schedulingGates"] = json!([{"name": "example.com/wait"}]);
        s.handle(Event::Upsert(Kind::Pod, gated.clone()));
        assert!(!s.schedule_one());
        gated["spec"]["schedulingGates"] = json!([]);
        s.handle(Event::Upsert(Kind::Pod, gated));
        assert!(s.schedule_one());
    }

    #[tokio::test]
    async fn failed_binding_forgets_the_assumption_and_retries() {
        let fake = Arc::new(Fake::default());
        *fake.refuse_binds.lock().unwrap() = 1;
        let mut s = Scheduler::new(fake.clone());
        synced(&mut s, vec![node("n1", "1")], vec![pod("p", 0, "500m", "")]);
        assert!(s.schedule_one());
        for _ in 0..200 {
            if let Ok(d) = s.done_rx.try_recv() {
                s.on_done(d);
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(s.cache.node("n1").unwrap().requested.milli_cpu, 0);
        assert!(s.queue.contains("default/p"));
        assert!(s.queue.next_backoff().is_some(), "retried after backoff");
    }

    #[tokio::test]
    async fn preempts_a_lower_priority_pod() {
        let fake = Arc::new(Fake::default());
        let mut s = Scheduler::new(fake.clone());
        synced(
            &mut s,
            vec![node("n1", "1")],
            vec![pod("low", 0, "800m", "n1"), pod("high", 1000, "500m", "")],
        );
        assert!(s.schedule_one());
        settle(&mut s, &fake, 5).await;
        let w: Vec<String> = fake.writes().into_iter().map(|(w, _)| w).collect();
        assert!(w.contains(&"patch pods/status high".to_string()), "{w:?}");
        assert!(w.contains(&"delete pods low".to_string()), "{w:?}");
        assert!(w.contains(&"create events Preempted".to_string()), "{w:?}");
        assert!(
            w.contains(&"create events FailedScheduling".to_string()),
            "{w:?}"
        );
        let nominated = fake
            .writes()
            .into_iter()
            .find(|(w, b)| {
                w == "patch pods/status high" && b["status"].get("nominatedNodeName").is_some()
            })
            .unwrap();
        assert_eq!(nominated.1["status"]["nominatedNodeName"], "n1");
        // The victim's deletion arrives: the preemptor is retried and placed.
        s.handle(Event::Delete(Kind::Pod, pod("low", 0, "800m", "n1")));
        // The room is kept for the nominated pod: a lower-priority pod does not get it.
        let sneak = PodInfo::parse(&pod("sneak", 0, "600m", ""));
        assert!(s.profile.schedule(&sneak, &s.cache).is_err());
        let small = PodInfo::parse(&pod("small", 0, "400m", ""));
        assert!(s.profile.schedule(&small, &s.cache).is_ok());
        assert!(s.schedule_one_at(Instant::now() + Duration::from_secs(2)));
        assert_eq!(s.cache.node_of("default/high"), Some("n1"));
    }

    #[tokio::test]
    async fn unschedulable_status_and_event_are_not_repeated() {
        let fake = Arc::new(Fake::default());
        let mut s = Scheduler::new(fake.clone());
        synced(&mut s, vec![node("n1", "1")], vec![pod("big", 0, "2", "")]);
        assert!(s.schedule_one());
        settle(&mut s, &fake, 2).await;
        let w = fake.writes();
        let msg = "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are \
                   available: 1 No preemption victims found for incoming pod..";
        assert_eq!(w[0].0, "patch pods/status big");
        let cond = &w[0].1["status"]["conditions"][0];
        assert_eq!(cond["type"], "PodScheduled");
        assert_eq!(cond["reason"], "Unschedulable");
        assert_eq!(cond["message"], msg);
        assert_eq!(w[1].0, "create events FailedScheduling");
        assert_eq!(w[1].1["type"], "Warning");
        assert_eq!(w[1].1["source"]["component"], "default-scheduler");
        // The same failure again within a minute is not reported again; a new one is.
        let p = Arc::new(PodInfo::parse(&pod("big", 0, "2", "")));
        s.report_unschedulable(p.clone(), msg.to_string(), Instant::now());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(fake.writes().len(), 2);
        s.report_unschedulable(p, "other".into(), Instant::now());
        settle(&mut s, &fake, 4).await;
    }
}
