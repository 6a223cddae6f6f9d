//! The taint eviction controller (`pkg/controller/tainteviction`, once the node lifecycle
//! controller's "taint manager"): Pods on a Node with NoExecute taints they do not tolerate are
//! deleted at once; Pods tolerating every such taint stay for the smallest `tolerationSeconds`
//! of the tolerations used (forever without one), counted from when the taint was added. Each
//! deletion is preceded by the `DisruptionTarget` condition (`DeletionByTaintManager`), as
//! upstream does with pod disruption conditions on.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, DeleteOptions, WriteOptions};
use skiff_k8s_core::status::ApiError;

use crate::ownership::{self, is_deleting, str_at};
use crate::runtime::events::{EventRecorder, EventType, Recorder};
use crate::runtime::informer::{Cache, Change, key_of};
use crate::runtime::queue::WorkQueue;
use crate::runtime::reconcile::{Action, Error, Reconciler};
use crate::runtime::{Clock, parse_time, rfc3339};

pub const NAME: &str = "taint-eviction-controller";

/// `v1.Toleration.ToleratesTaint`.
pub fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let effect = str_at(toleration, "/effect");
    if !effect.is_empty() && effect != str_at(taint, "/effect") {
        return false;
    }
    let key = str_at(toleration, "/key");
    if !key.is_empty() && key != str_at(taint, "/key") {
        return false;
    }
    match str_at(toleration, "/operator") {
        "Exists" => true,
        "" | "Equal" => str_at(toleration, "/value") == str_at(taint, "/value"),
        _ => false,
    }
}

/// When a Pod must go given the node's NoExecute taints: `Some(None)` now, `Some(Some(t))` at
/// `t`, `None` never.
fn eviction_time(
    pod: &Value,
    taints: &[Value],
    now: jiff::Timestamp,
) -> Option<Option<jiff::Timestamp>> {
    let tolerations: Vec<Value> = pod
        .pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut used = Vec::new();
    for t in taints {
        let matching: Vec<&Value> = tolerations.iter().filter(|x| tolerates(x, t)).collect();
        if matching.is_empty() {
            return Some(None);
        }
        used.extend(matching);
    }
    // `getMinTolerationTime`: the smallest tolerationSeconds; none means forever.
    let min = used
        .iter()
        .filter_map(|t| t.get("tolerationSeconds").and_then(Value::as_i64))
        .min()?;
    if min <= 0 {
        return Some(None);
    }
    let since = taints
        .iter()
        .filter_map(|t| {
            t.get("timeAdded")
                .and_then(Value::as_str)
                .and_then(parse_time)
        })
        .min()
        .unwrap_or(now);
    Some(since.checked_add(jiff::SignedDuration::from_secs(min)).ok())
}

pub struct TaintEvictionController {
    client: Arc<dyn ApiClient>,
    nodes: Cache,
    pods: Cache,
    clock: Arc<dyn Clock>,
    /// `TaintManagerEviction` Events; none in unit tests that assert writes.
    events: Option<Arc<EventRecorder>>,
}

impl TaintEvictionController {
    pub fn new(
        client: Arc<dyn ApiClient>,
        nodes: Cache,
        pods: Cache,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client,
            nodes,
            pods,
            clock,
            events: None,
        }
    }

    /// Records events as upstream's controller does.
    pub fn with_events(mut self, events: Arc<EventRecorder>) -> Self {
        self.events = Some(events);
        self
    }

    pub fn on_node(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| {
            if !matches!(c, Change::Deleted(_)) {
                queue.add(&key_of(c.object()));
            }
        }
    }

    /// A Pod landing on a node (or changing its tolerations) queues that node.
    pub fn on_pod(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| {
            let node = str_at(c.object(), "/spec/nodeName");
            if !node.is_empty() && !matches!(c, Change::Deleted(_)) {
                queue.add(node);
            }
        }
    }

    async fn evict(&self, pod: &Value) -> Result<(), ApiError> {
        let r = crate::replicaset::pods().in_namespace(ownership::namespace(pod));
        let mut p = pod.clone();
        let cond = json!({"type": "DisruptionTarget", "status": "True",
            "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
            "lastTransitionTime": rfc3339(self.clock.now())});
        let conds = p["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut conds: Vec<Value> = conds
            .into_iter()
            .filter(|c| str_at(c, "/type") != "DisruptionTarget")
            .collect();
        conds.push(cond);
        p["status"]["conditions"] = Value::Array(conds);
        let opts = WriteOptions {
            field_manager: Some(NAME.into()),
            ..Default::default()
        };
        match self.client.update_status(&r, p, &opts).await {
            Ok(_) => {}
            Err(ApiError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        }
        // `emitPodDeletionEvent`, just before the deletion.
        self.events.event(
            pod,
            EventType::Normal,
            "TaintManagerEviction",
            &format!(
                "Marking for deletion Pod {}/{}",
                ownership::namespace(pod),
                ownership::name(pod)
            ),
        );
        let del = DeleteOptions {
            precondition_uid: Some(ownership::uid(pod).to_string()),
            ..Default::default()
        };
        match self.client.delete(&r, ownership::name(pod), &del).await {
            Ok(_) | Err(ApiError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[async_trait::async_trait]
impl Reconciler for TaintEvictionController {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &str) -> Result<Action, Error> {
        let Some(node) = self.nodes.get(key) else {
            return Ok(Action::AwaitChange);
        };
        let taints: Vec<Value> = node
            .pointer("/spec/taints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|t| str_at(t, "/effect") == "NoExecute")
            .cloned()
            .collect();
        if taints.is_empty() {
            return Ok(Action::AwaitChange);
        }
        let now = self.clock.now();
        let mut next: Option<jiff::Timestamp> = None;
        for pod in self.pods.list(None) {
            if str_at(&pod, "/spec/nodeName") != key || is_deleting(&pod) {
                continue;
            }
            let phase = str_at(&pod, "/status/phase");
            if phase == "Succeeded" || phase == "Failed" {
                continue;
            }
            match eviction_time(&pod, &taints, now) {
                None => {}
                Some(Some(at)) if at > now => {
                    next = Some(next.map_or(at, |n| n.min(at)));
                }
                Some(_) => self.evict(&pod).await?,
            }
        }
        Ok(match next {
            Some(at) => Action::Requeue(
                Duration::try_from(at.duration_since(now)).unwrap_or_default()
                    + Duration::from_millis(1),
            ),
            None => Action::AwaitChange,
        })
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
    let events = EventRecorder::new(client.clone(), NAME, clock.clone());
    let c = TaintEvictionController::new(
        client,
        inf.cache(nodes.clone()),
        inf.cache(pods.clone()),
        clock,
    )
    .with_events(events);
    inf.get(nodes)
        .add_handler(Arc::new(TaintEvictionController::on_node(q.clone())));
    inf.get(pods)
        .add_handler(Arc::new(TaintEvictionController::on_pod(q)));
    Arc::new(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replicaset::pods;
    use crate::runtime::FakeClock;
    use crate::testing::FakeClient;

    fn pod(name: &str, tolerations: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns"},
            "spec": {"nodeName": "n1", "tolerations": tolerations},
            "status": {"phase": "Running"}})
    }

    #[tokio::test]
    async fn untolerating_pods_go_now_tolerating_ones_after_their_seconds() {
        let fake = Arc::new(FakeClient::default());
        let clock = FakeClock::new("2026-01-01T00:00:10Z".parse().unwrap());
        let c = TaintEvictionController::new(
            fake.clone(),
            Cache::default(),
            Cache::default(),
            clock.clone(),
        );
        c.nodes.insert(json!({"metadata": {"name": "n1"}, "spec": {"taints": [
            {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z"},
            {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]}}));
        let unreachable_for = |secs: Option<i64>| {
            let mut t = json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                "effect": "NoExecute"});
            if let Some(s) = secs {
                t["tolerationSeconds"] = json!(s);
            }
            json!([t])
        };
        for p in [
            pod("bare", json!([])),
            pod("thirty", unreachable_for(Some(30))),
            pod("forever", unreachable_for(None)),
            pod("everything", json!([{"operator": "Exists"}])),
        ] {
            c.pods.insert(fake.seed(&pods(), p));
        }
        let mut elsewhere = pod("elsewhere", json!([]));
        elsewhere["spec"]["nodeName"] = json!("n2");
        c.pods.insert(fake.seed(&pods(), elsewhere));

        // "thirty" is due at 00:00:30, 20 s from now.
        assert_eq!(
            c.reconcile("n1").await.unwrap(),
            Action::Requeue(Duration::from_millis(20_001))
        );
        assert_eq!(
            fake.writes(),
            ["update_status pods ns/bare", "delete pods ns/bare"]
        );
        let c = TaintEvictionController::new(
            fake.clone(),
            c.nodes.clone(),
            {
                let p = Cache::default();
                fake.objects(&pods()).into_iter().for_each(|o| p.insert(o));
                p
            },
            clock.clone(),
        );
        clock.advance(Duration::from_secs(20));
        assert_eq!(c.reconcile("n1").await.unwrap(), Action::AwaitChange);
        assert_eq!(
            fake.writes()[2..],
            ["update_status pods ns/thirty", "delete pods ns/thirty"]
        );
        assert!(fake.object(&pods(), "ns/forever").is_some());
        assert!(fake.object(&pods(), "ns/everything").is_some());
    }

    #[test]
    fn toleration_matching() {
        let taint = json!({"key": "k", "value": "v", "effect": "NoExecute"});
        assert!(tolerates(&json!({"key": "k", "value": "v"}), &taint));
        assert!(tolerates(
            &json!({"key": "k", "operator": "Exists", "effect": "NoExecute"}),
            &taint
        ));
        assert!(!tolerates(&json!({"key": "k", "value": "w"}), &taint));
        assert!(!tolerates(
            &json!({"key": "k", "operator": "Exists", "effect": "NoSchedule"}),
            &taint
        ));
        assert!(tolerates(&json!({"operator": "Exists"}), &taint));
    }

    #[tokio::test]
    async fn an_eviction_is_announced_on_the_pod() {
        let fake = Arc::new(FakeClient::default());
        let clock = FakeClock::new("2026-01-01T00:00:10Z".parse().unwrap());
        let c = TaintEvictionController::new(
            fake.clone(),
            Cache::default(),
            Cache::default(),
            clock.clone(),
        )
        .with_events(EventRecorder::new(fake.clone(), NAME, clock));
        c.nodes
            .insert(json!({"metadata": {"name": "n1"}, "spec": {"taints": [
            {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute",
             "timeAdded": "2026-01-01T00:00:00Z"}]}}));
        c.pods.insert(fake.seed(&pods(), pod("bare", json!([]))));
        c.reconcile("n1").await.unwrap();
        assert_eq!(
            fake.events().await,
            [(
                "Normal".to_string(),
                "TaintManagerEviction".to_string(),
                "Marking for deletion Pod ns/bare".to_string()
            )]
        );
    }
}
