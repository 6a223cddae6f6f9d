//! The node lifecycle controller (`pkg/controller/nodelifecycle`): a Node whose kubelet stops
//! renewing both its Lease (`kube-node-lease`) and its Ready condition for the
//! node-monitor grace period gets its conditions set to Unknown (`NodeStatusUnknown`, "Kubelet
//! stopped posting node status."), its Pods marked not ready, and the taints that keep new Pods
//! off and drive eviction: `node.kubernetes.io/unreachable` (Ready Unknown) or
//! `node.kubernetes.io/not-ready` (Ready False), NoSchedule and NoExecute, plus the NoSchedule
//! taints of pressure conditions and `spec.unschedulable`. Taints go when the condition clears.
//! Eviction itself is [`crate::node_lifecycle_taint_eviction`]'s.
//!
//! Liveness is judged by when this controller *saw* a heartbeat change, not by the timestamps the
//! kubelet wrote, as upstream does, so clock skew between node and controller does not matter.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, ResourceRef, WriteOptions};
use skiff_k8s_core::status::ApiError;

use crate::ownership::{self, str_at};
use crate::runtime::events::{EventRecorder, EventType, Recorder};
use crate::runtime::informer::{Cache, Change, key_of};
use crate::runtime::queue::WorkQueue;
use crate::runtime::reconcile::{Action, Error, Reconciler};
use crate::runtime::{Clock, rfc3339};

pub const NAME: &str = "node-lifecycle-controller";

/// `--node-monitor-grace-period` default.
pub const NODE_MONITOR_GRACE_PERIOD: Duration = Duration::from_secs(40);
/// Grace for a node that never posted a Ready condition (`--node-startup-grace-period`).
pub const NODE_STARTUP_GRACE_PERIOD: Duration = Duration::from_secs(60);
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
/// Condition → NoSchedule taint (`nodeConditionToTaintKeyStatusMap`), besides Ready.
const CONDITION_TAINTS: &[(&str, &str, &str)] = &[
    (
        "MemoryPressure",
        "True",
        "node.kubernetes.io/memory-pressure",
    ),
    ("DiskPressure", "True", "node.kubernetes.io/disk-pressure"),
    ("PIDPressure", "True", "node.kubernetes.io/pid-pressure"),
    (
        "NetworkUnavailable",
        "True",
        "node.kubernetes.io/network-unavailable",
    ),
];
/// The conditions set to Unknown when the kubelet goes quiet.
const MONITORED_CONDITIONS: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

pub fn leases() -> ResourceRef {
    ResourceRef::new("coordination.k8s.io", "v1", "leases")
}

/// A condition's status (`""` when absent).
pub fn condition_status<'a>(node: &'a Value, kind: &str) -> &'a str {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| str_at(c, "/type") == kind)
        .map(|c| str_at(c, "/status"))
        .unwrap_or_default()
}

/// The taints this controller owns; others (user or cloud taints) are left as they are.
fn managed_taint(key: &str) -> bool {
    key == TAINT_UNREACHABLE
        || key == TAINT_NOT_READY
        || key == TAINT_UNSCHEDULABLE
        || CONDITION_TAINTS.iter().any(|(_, _, k)| *k == key)
}

/// The managed taints the node should carry, as (key, effect).
fn desired_taints(node: &Value) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    match condition_status(node, "Ready") {
        "False" => out.extend([
            (TAINT_NOT_READY, "NoSchedule"),
            (TAINT_NOT_READY, "NoExecute"),
        ]),
        "Unknown" => out.extend([
            (TAINT_UNREACHABLE, "NoSchedule"),
            (TAINT_UNREACHABLE, "NoExecute"),
        ]),
        _ => {}
    }
    for (cond, status, key) in CONDITION_TAINTS {
        if condition_status(node, cond) == *status {
            out.push((key, "NoSchedule"));
        }
    }
    if node
        .pointer("/spec/unschedulable")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        out.push((TAINT_UNSCHEDULABLE, "NoSchedule"));
    }
    out
}

/// What was last seen of a node's heartbeats, and when it last changed.
struct Health {
    heartbeat: String,
    lease_renew: String,
    probe: jiff::Timestamp,
}

pub struct NodeLifecycleController {
    client: Arc<dyn ApiClient>,
    nodes: Cache,
    leases: Cache,
    pods: Cache,
    clock: Arc<dyn Clock>,
    grace: Duration,
    startup_grace: Duration,
    health: Mutex<HashMap<String, Health>>,
    /// `RegisteredNode`/`RemovingNode`/`NodeNotReady` Events; none in unit tests that assert writes.
    events: Option<Arc<EventRecorder>>,
}

/// The reference upstream's node events carry: a Node whose UID is its name
/// (`nodeutil.RecordNodeEvent`), so events about a deleted Node can still be written.
fn node_ref(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "uid": name}})
}

fn opts() -> WriteOptions {
    WriteOptions {
        field_manager: Some(NAME.into()),
        ..Default::default()
    }
}

impl NodeLifecycleController {
    pub fn new(
        client: Arc<dyn ApiClient>,
        nodes: Cache,
        leases: Cache,
        pods: Cache,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client,
            nodes,
            leases,
            pods,
            clock,
            grace: NODE_MONITOR_GRACE_PERIOD,
            startup_grace: NODE_STARTUP_GRACE_PERIOD,
            health: Mutex::new(HashMap::new()),
            events: None,
        }
    }

    /// Records events as upstream's controller does.
    pub fn with_events(mut self, events: Arc<EventRecorder>) -> Self {
        self.events = Some(events);
        self
    }

    /// Another node-monitor grace period; the startup grace keeps upstream's 60:40 ratio.
    pub fn with_grace_period(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self.startup_grace = grace.saturating_mul(3) / 2;
        self
    }

    pub fn on_node(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| queue.add(&key_of(c.object()))
    }

    /// A renewed Lease queues its node.
    pub fn on_lease(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| {
            let l = c.object();
            if ownership::namespace(l) == NODE_LEASE_NAMESPACE {
                queue.add(ownership::name(l));
            }
        }
    }

    /// How long since a heartbeat change was seen; records the node's current heartbeats.
    fn since_last_heartbeat(&self, node: &Value) -> Duration {
        let name = ownership::name(node);
        let heartbeat = node
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|c| str_at(c, "/type") == "Ready")
            .map(|c| str_at(c, "/lastHeartbeatTime").to_string())
            .unwrap_or_default();
        let lease_renew = self
            .leases
            .get(&format!("{NODE_LEASE_NAMESPACE}/{name}"))
            .map(|l| str_at(&l, "/spec/renewTime").to_string())
            .unwrap_or_default();
        let now = self.clock.now();
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let e = h.entry(name.to_string()).or_insert(Health {
            heartbeat: heartbeat.clone(),
            lease_renew: lease_renew.clone(),
            probe: now,
        });
        if e.heartbeat != heartbeat || e.lease_renew != lease_renew {
            *e = Health {
                heartbeat,
                lease_renew,
                probe: now,
            };
        }
        now.duration_since(e.probe).try_into().unwrap_or_default()
    }

    /// Sets the monitored conditions to Unknown (`tryUpdateNodeHealth`).
    async fn mark_unknown(&self, node: &Value) -> Result<Value, ApiError> {
        let now = rfc3339(self.clock.now());
        let mut n = node.clone();
        let created = str_at(node, "/metadata/creationTimestamp").to_string();
        let mut conds = n
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for kind in MONITORED_CONDITIONS {
            match conds.iter_mut().find(|c| str_at(c, "/type") == *kind) {
                Some(c) if str_at(c, "/status") != "Unknown" => {
                    c["status"] = json!("Unknown");
                    c["reason"] = json!("NodeStatusUnknown");
                    c["message"] = json!("Kubelet stopped posting node status.");
                    c["lastTransitionTime"] = json!(now);
                }
                Some(_) => {}
                None => conds.push(json!({
                    "type": kind, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                    "message": "Kubelet never posted node status.",
                    "lastHeartbeatTime": created, "lastTransitionTime": now,
                })),
            }
        }
        n["status"]["conditions"] = Value::Array(conds);
        self.client
            .update_status(&crate::endpoints_pods::nodes(), n, &opts())
            .await
    }

    /// `MarkPodsNotReady`: the Pods of an unresponsive node stop receiving traffic.
    async fn mark_pods_not_ready(&self, node: &str) -> Result<(), ApiError> {
        let now = rfc3339(self.clock.now());
        for p in self.pods.list(None) {
            if str_at(&p, "/spec/nodeName") != node {
                continue;
            }
            let mut pod = p.clone();
            let Some(conds) = pod
                .pointer_mut("/status/conditions")
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            let Some(ready) = conds.iter_mut().find(|c| str_at(c, "/type") == "Ready") else {
                continue;
            };
            if str_at(ready, "/status") == "False" {
                continue;
            }
            ready["status"] = json!("False");
            ready["lastTransitionTime"] = json!(now);
            let r = crate::replicaset::pods().in_namespace(ownership::namespace(&p));
            match self.client.update_status(&r, pod, &opts()).await {
                Ok(_) => {
                    self.events
                        .event(&p, EventType::Warning, "NodeNotReady", "Node is not ready")
                }
                Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Brings the managed taints in line with the conditions; NoExecute taints carry the time
    /// they were added (eviction counts tolerationSeconds from it).
    async fn sync_taints(&self, node: &Value) -> Result<(), ApiError> {
        let current: Vec<Value> = node
            .pointer("/spec/taints")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let desired = desired_taints(node);
        let now = rfc3339(self.clock.now());
        let mut next: Vec<Value> = current
            .iter()
            .filter(|t| {
                let key = str_at(t, "/key");
                !managed_taint(key) || desired.contains(&(key, str_at(t, "/effect")))
            })
            .cloned()
            .collect();
        for (key, effect) in &desired {
            if !next
                .iter()
                .any(|t| str_at(t, "/key") == *key && str_at(t, "/effect") == *effect)
            {
                let mut t = json!({"key": key, "effect": effect});
                if *effect == "NoExecute" {
                    t["timeAdded"] = json!(now);
                }
                next.push(t);
            }
        }
        if next == current {
            return Ok(());
        }
        let mut n = node.clone();
        if next.is_empty() {
            if let Some(spec) = n["spec"].as_object_mut() {
                spec.remove("taints");
            }
        } else {
            n["spec"]["taints"] = Value::Array(next);
        }
        self.client
            .update(&crate::endpoints_pods::nodes(), n, &opts())
            .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Reconciler for NodeLifecycleController {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &str) -> Result<Action, Error> {
        let Some(node) = self.nodes.get(key) else {
            let known = self
                .health
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(key)
                .is_some();
            if known {
                self.events.event(
                    &node_ref(key),
                    EventType::Normal,
                    "RemovingNode",
                    &format!("Node {key} event: Removing Node {key} from Controller"),
                );
            }
            return Ok(Action::AwaitChange);
        };
        let new = !self
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(key);
        if new {
            self.events.event(
                &node_ref(key),
                EventType::Normal,
                "RegisteredNode",
                &format!("Node {key} event: Registered Node {key} in Controller"),
            );
        }
        let quiet = self.since_last_heartbeat(&node);
        let ready = condition_status(&node, "Ready");
        let grace = if ready.is_empty() {
            self.startup_grace
        } else {
            self.grace
        };
        let mut node = node.clone();
        if quiet > grace && ready != "Unknown" {
            node = self.mark_unknown(&node).await?;
            if ready == "True" {
                self.events.event(
                    &node_ref(key),
                    EventType::Normal,
                    "NodeNotReady",
                    &format!("Node {key} status is now: NodeNotReady"),
                );
            }
            self.mark_pods_not_ready(key).await?;
        }
        self.sync_taints(&node).await?;
        if condition_status(&node, "Ready") == "Unknown" {
            // Only a heartbeat (a watched change) can bring it back.
            return Ok(Action::AwaitChange);
        }
        // Look again when the grace period would run out without a heartbeat.
        Ok(Action::Requeue(
            grace.saturating_sub(quiet) + Duration::from_secs(1),
        ))
    }
}

/// Registers the informer handlers and builds the controller (the [`crate::CONTROLLERS`] entry).
pub fn setup(
    inf: &mut crate::Informers,
    client: Arc<dyn ApiClient>,
    clock: Arc<dyn Clock>,
    q: WorkQueue,
) -> Arc<dyn Reconciler> {
    let nodes = crate::endpoints_pods::nodes();
    let pods = crate::replicaset::pods();
    // Upstream's recorder names itself `node-controller`.
    let events = EventRecorder::new(client.clone(), "node-controller", clock.clone());
    let c = NodeLifecycleController::new(
        client,
        inf.cache(nodes.clone()),
        inf.cache(leases()),
        inf.cache(pods),
        clock,
    )
    .with_events(events);
    inf.get(nodes)
        .add_handler(Arc::new(NodeLifecycleController::on_node(q.clone())));
    inf.get(leases())
        .add_handler(Arc::new(NodeLifecycleController::on_lease(q)));
    Arc::new(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints_pods::nodes;
    use crate::replicaset::pods;
    use crate::runtime::FakeClock;
    use crate::testing::FakeClient;

    fn node(ready: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "n1", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]},
            "status": {"conditions": [
                {"type": "Ready", "status": ready, "reason": "KubeletReady",
                 "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "MemoryPressure", "status": "False",
                 "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})
    }

    fn setup(n: Value) -> (Arc<FakeClient>, Arc<FakeClock>, NodeLifecycleController) {
        let fake = Arc::new(FakeClient::default());
        let clock = FakeClock::new("2026-01-01T00:00:00Z".parse().unwrap());
        let n = fake.seed(&nodes(), n);
        let c = NodeLifecycleController::new(
            fake.clone(),
            Cache::default(),
            Cache::default(),
            Cache::default(),
            clock.clone(),
        )
        .with_grace_period(Duration::from_secs(10));
        c.nodes.insert(n);
        (fake, clock, c)
    }

    #[tokio::test]
    async fn silent_node_goes_unknown_tainted_and_its_pods_not_ready() {
        let (fake, clock, c) = setup(node("True"));
        let pod = fake.seed(
            &pods(),
            json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": "n1"},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        c.pods.insert(pod);
        // Healthy: look again when the grace would run out.
        assert_eq!(
            c.reconcile("n1").await.unwrap(),
            Action::Requeue(Duration::from_secs(11))
        );
        // The lease keeps being renewed: still healthy however old the Ready heartbeat is.
        clock.advance(Duration::from_secs(8));
        c.leases.insert(
            json!({"metadata": {"name": "n1", "namespace": NODE_LEASE_NAMESPACE},
            "spec": {"renewTime": "2026-01-01T00:00:08.000000Z"}}),
        );
        c.reconcile("n1").await.unwrap();
        clock.advance(Duration::from_secs(8));
        c.reconcile("n1").await.unwrap();
        assert!(fake.writes().is_empty());
        // Silence past the grace period.
        clock.advance(Duration::from_secs(3));
        assert_eq!(c.reconcile("n1").await.unwrap(), Action::AwaitChange);
        assert_eq!(
            fake.writes(),
            [
                "update_status nodes n1",
                "update_status pods ns/p",
                "update nodes n1"
            ]
        );
        let n = fake.object(&nodes(), "n1").unwrap();
        let ready = &n["status"]["conditions"][0];
        assert_eq!(
            (
                ready["status"].as_str(),
                ready["reason"].as_str(),
                ready["message"].as_str()
            ),
            (
                Some("Unknown"),
                Some("NodeStatusUnknown"),
                Some("Kubelet stopped posting node status.")
            )
        );
        assert_eq!(ready["lastHeartbeatTime"], "2026-01-01T00:00:00Z");
        assert_eq!(n["status"]["conditions"][1]["status"], "Unknown");
        assert_eq!(n["status"]["conditions"][2]["type"], "DiskPressure");
        assert_eq!(
            n["status"]["conditions"][2]["reason"],
            "NodeStatusNeverUpdated"
        );
        assert_eq!(
            n["spec"]["taints"],
            json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
                   {"key": TAINT_UNREACHABLE, "effect": "NoSchedule"},
                   {"key": TAINT_UNREACHABLE, "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:19Z"}])
        );
        let p = fake.object(&pods(), "ns/p").unwrap();
        assert_eq!(p["status"]["conditions"][0]["status"], "False");
    }

    #[tokio::test]
    async fn node_and_pod_events_as_the_node_controller_writes_them() {
        let (fake, clock, c) = setup(node("True"));
        let c = c.with_events(EventRecorder::new(
            fake.clone(),
            "node-controller",
            clock.clone(),
        ));
        let pod = fake.seed(
            &pods(),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"},
                "spec": {"nodeName": "n1"},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        c.pods.insert(pod);
        c.reconcile("n1").await.unwrap();
        clock.advance(Duration::from_secs(11));
        c.reconcile("n1").await.unwrap();
        c.nodes.remove("n1");
        c.reconcile("n1").await.unwrap();
        let n = |t: &str, r: &str, m: &str| (t.to_string(), r.to_string(), m.to_string());
        let evs = fake.events().await;
        assert_eq!(
            evs,
            [
                n(
                    "Normal",
                    "RegisteredNode",
                    "Node n1 event: Registered Node n1 in Controller"
                ),
                n(
                    "Normal",
                    "NodeNotReady",
                    "Node n1 status is now: NodeNotReady"
                ),
                n("Warning", "NodeNotReady", "Node is not ready"),
                n(
                    "Normal",
                    "RemovingNode",
                    "Node n1 event: Removing Node n1 from Controller"
                ),
            ]
        );
        let on_pod = fake
            .objects(&ResourceRef::new("", "v1", "events"))
            .into_iter()
            .find(|e| e["involvedObject"]["kind"] == "Pod")
            .unwrap();
        assert_eq!(on_pod["metadata"]["namespace"], "ns");
        assert_eq!(on_pod["source"]["component"], "node-controller");
    }

    #[tokio::test]
    async fn not_ready_taints_and_their_removal_when_the_node_is_back() {
        let (fake, _clock, c) = setup(node("False"));
        c.reconcile("n1").await.unwrap();
        assert_eq!(fake.writes(), ["update nodes n1"]);
        let n = fake.object(&nodes(), "n1").unwrap();
        let keys: Vec<_> = n["spec"]["taints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                format!(
                    "{}:{}",
                    t["key"].as_str().unwrap(),
                    t["effect"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                "dedicated:NoSchedule",
                "node.kubernetes.io/not-ready:NoSchedule",
                "node.kubernetes.io/not-ready:NoExecute"
            ]
        );
        // Ready again: only the user's taint stays.
        let mut back = n;
        back["status"]["conditions"][0]["status"] = json!("True");
        back["status"]["conditions"][0]["lastHeartbeatTime"] = json!("2026-01-01T00:00:05Z");
        c.nodes.insert(back);
        c.reconcile("n1").await.unwrap();
        let n = fake.object(&nodes(), "n1").unwrap();
        assert_eq!(
            n["spec"]["taints"],
            json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
        );
    }

    #[tokio::test]
    async fn unschedulable_and_pressure_taints() {
        let mut n = node("True");
        n["spec"]["unschedulable"] = json!(true);
        n["status"]["conditions"][1]["status"] = json!("True");
        let (fake, _clock, c) = setup(n);
        c.reconcile("n1").await.unwrap();
        let n = fake.object(&nodes(), "n1").unwrap();
        let keys: Vec<_> = n["spec"]["taints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["key"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            keys,
            [
                "dedicated",
                "node.kubernetes.io/memory-pressure",
                TAINT_UNSCHEDULABLE
            ]
        );
    }
}
