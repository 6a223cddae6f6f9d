//! The disruption controller (`pkg/controller/disruption`): keeps each PodDisruptionBudget's
//! status — `expectedPods`, `currentHealthy`, `desiredHealthy`, `disruptionsAllowed` and the
//! `DisruptionAllowed` condition — from the Pods its selector matches. `minAvailable` as a number
//! counts the Pods themselves; percentages and `maxUnavailable` are taken of the replicas the
//! Pods' controllers ask for (a ReplicaSet's Deployment, a StatefulSet, a ReplicationController),
//! rounding up, as upstream. Eviction (`pods/eviction`) reads this status and records the Pods it
//! let go in `disruptedPods`, which this controller ages out after two minutes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use skiff_k8s_core::client::{ApiClient, ResourceRef, WriteOptions};
use skiff_k8s_core::selector::Selector;
use skiff_k8s_core::status::ApiError;

use crate::ownership::{self, controller_ref, is_deleting, str_at};
use crate::replicaset::is_pod_ready;
use crate::runtime::events::{EventRecorder, EventType, Recorder};
use crate::runtime::informer::{Cache, Change, key_of};
use crate::runtime::queue::WorkQueue;
use crate::runtime::reconcile::{Action, Error, Reconciler};
use crate::runtime::{Clock, parse_time, rfc3339};

pub const NAME: &str = "disruption-controller";

/// How long an eviction's entry in `disruptedPods` is trusted (`DeletionTimeout`).
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

#[doc(alias = "policy/v1")]
pub fn pod_disruption_budgets() -> ResourceRef {
    ResourceRef::new("policy", "v1", "poddisruptionbudgets")
}

/// A PDB's selector: in policy/v1 an empty selector selects every Pod of the namespace, an
/// absent one none.
fn pdb_selector(pdb: &Value) -> Result<Selector, String> {
    match pdb.pointer("/spec/selector") {
        None | Some(Value::Null) => Ok(Selector::nothing()),
        Some(s) => Selector::from_label_selector(s),
    }
}

/// `intstr.GetScaledValueFromIntOrPercent(v, total, roundUp=true)`.
fn scaled(v: &Value, total: i64) -> Result<i64, String> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| format!("invalid value {v}")),
        Value::String(s) => {
            let pct = s
                .strip_suffix('%')
                .and_then(|p| p.parse::<i64>().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            Ok((pct * total + 99) / 100)
        }
        _ => Err(format!("invalid value {v}")),
    }
}

pub struct DisruptionController {
    client: Arc<dyn ApiClient>,
    pdbs: Cache,
    pods: Cache,
    clock: Arc<dyn Clock>,
    /// `NoPods` / `CalculateExpectedPodCountFailed` Events; none in unit tests that assert writes.
    events: Option<Arc<EventRecorder>>,
}

/// The computed status before it is written.
struct Counts {
    expected: i64,
    healthy: i64,
    desired: i64,
    disrupted: Map<String, Value>,
}

impl DisruptionController {
    pub fn new(
        client: Arc<dyn ApiClient>,
        pdbs: Cache,
        pods: Cache,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client,
            pdbs,
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

    pub fn on_pdb(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| queue.add(&key_of(c.object()))
    }

    /// A Pod change queues the budgets selecting it.
    pub fn on_pod(&self, queue: WorkQueue) -> impl Fn(&Change) + Send + Sync + use<> {
        let pdbs = self.pdbs.clone();
        move |c| {
            let pod = c.object();
            for pdb in pdbs.list(Some(ownership::namespace(pod))) {
                if pdb_selector(&pdb).is_ok_and(|s| s.matches_object(pod)) {
                    queue.add(&key_of(&pdb));
                }
            }
        }
    }

    /// The replicas a Pod's controller wants, keyed by controller UID
    /// (`getPodReplicaSet`/`getPodDeployment`/`getPodStatefulSet`/`getPodReplicationController`).
    async fn controller_scale(&self, pod: &Value) -> Result<Option<(String, i64)>, String> {
        let Some(r) = controller_ref(pod) else {
            return Ok(None);
        };
        let ns = ownership::namespace(pod);
        let (group, resource) = match (str_at(r, "/apiVersion"), str_at(r, "/kind")) {
            (v, "ReplicaSet") if v.starts_with("apps/") => ("apps", "replicasets"),
            (v, "StatefulSet") if v.starts_with("apps/") => ("apps", "statefulsets"),
            ("v1", "ReplicationController") => ("", "replicationcontrollers"),
            _ => {
                return Err(format!(
                    "found no controllers for pod {:?}",
                    ownership::name(pod)
                ));
            }
        };
        let get = |g: &str, res: &str, name: &str| {
            let rr = ResourceRef::new(g, "v1", res).in_namespace(ns);
            let name = name.to_string();
            async move { self.client.get_opt(&rr, &name).await }
        };
        let owner = get(group, resource, str_at(r, "/name"))
            .await
            .map_err(|e| e.to_string())?
            .filter(|o| ownership::uid(o) == str_at(r, "/uid"));
        let Some(owner) = owner else {
            return Err(format!(
                "found no controllers for pod {:?}",
                ownership::name(pod)
            ));
        };
        // A Deployment's ReplicaSet scales with the Deployment.
        if resource == "replicasets"
            && let Some(dr) = controller_ref(&owner)
            && str_at(dr, "/kind") == "Deployment"
            && let Some(d) = get("apps", "deployments", str_at(dr, "/name"))
                .await
                .map_err(|e| e.to_string())?
                .filter(|d| ownership::uid(d) == str_at(dr, "/uid"))
        {
            return Ok(Some((
                ownership::uid(&d).to_string(),
                d.pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1),
            )));
        }
        Ok(Some((
            ownership::uid(&owner).to_string(),
            owner
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1),
        )))
    }

    async fn expected_scale(&self, pods: &[Value]) -> Result<i64, String> {
        let mut by_controller: BTreeMap<String, i64> = BTreeMap::new();
        for p in pods {
            // Pods without a controller do not count towards the scale (upstream logs them).
            if let Some((uid, n)) = self.controller_scale(p).await? {
                by_controller.insert(uid, n);
            }
        }
        Ok(by_controller.values().sum())
    }

    async fn counts(&self, pdb: &Value, pods: &[Value]) -> Result<Counts, String> {
        let now = self.clock.now();
        let spec = pdb.get("spec").cloned().unwrap_or(json!({}));
        let (expected, desired) = if let Some(mu) = spec.get("maxUnavailable") {
            let expected = self.expected_scale(pods).await?;
            let max = scaled(mu, expected)?;
            (expected, (expected - max).max(0))
        } else if let Some(ma) = spec.get("minAvailable") {
            if ma.is_number() {
                (pods.len() as i64, scaled(ma, 0)?)
            } else {
                let expected = self.expected_scale(pods).await?;
                (expected, scaled(ma, expected)?)
            }
        } else {
            (pods.len() as i64, 0)
        };
        // Evictions seen but not yet carried out stay counted as disrupted for a while.
        let old = pdb
            .pointer("/status/disruptedPods")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut disrupted = Map::new();
        let mut healthy = 0;
        for p in pods {
            if is_deleting(p) {
                continue;
            }
            if let Some(at) = old.get(ownership::name(p))
                && let Some(t) = at.as_str().and_then(parse_time)
                && t.checked_add(
                    jiff::SignedDuration::try_from(DELETION_TIMEOUT).unwrap_or_default(),
                )
                .is_ok_and(|exp| exp > now)
            {
                disrupted.insert(ownership::name(p).to_string(), at.clone());
                continue;
            }
            if is_pod_ready(p) {
                healthy += 1;
            }
        }
        Ok(Counts {
            expected,
            healthy,
            desired,
            disrupted,
        })
    }

    fn condition(&self, pdb: &Value, status: &str, reason: &str, message: &str) -> Value {
        let prev = pdb
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find(|c| str_at(c, "/type") == "DisruptionAllowed"));
        let since = match prev {
            Some(c) if str_at(c, "/status") == status => c["lastTransitionTime"].clone(),
            _ => json!(rfc3339(self.clock.now())),
        };
        json!({"type": "DisruptionAllowed", "status": status, "reason": reason, "message": message,
            "observedGeneration": pdb.pointer("/metadata/generation").cloned().unwrap_or(json!(0)),
            "lastTransitionTime": since})
    }
}

#[async_trait::async_trait]
impl Reconciler for DisruptionController {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &str) -> Result<Action, Error> {
        let Some(pdb) = self.pdbs.get(key) else {
            return Ok(Action::AwaitChange);
        };
        let ns = ownership::namespace(&pdb).to_string();
        let sel = pdb_selector(&pdb);
        let pods: Vec<Value> = match &sel {
            Ok(s) => self
                .pods
                .list(Some(&ns))
                .into_iter()
                .filter(|p| s.matches_object(p))
                .collect(),
            Err(_) => vec![],
        };
        if sel.is_ok() && pods.is_empty() {
            self.events
                .event(&pdb, EventType::Normal, "NoPods", "No matching pods found");
        }
        let computed = match sel {
            Ok(_) => self.counts(&pdb, &pods).await,
            Err(e) => Err(e),
        };
        if let Err(msg) = &computed {
            self.events.event(
                &pdb,
                EventType::Warning,
                "CalculateExpectedPodCountFailed",
                &format!("Failed to calculate the number of expected pods: {msg}"),
            );
        }
        let mut status = pdb.get("status").cloned().unwrap_or(json!({}));
        if !status.is_object() {
            status = json!({});
        }
        status["observedGeneration"] = pdb
            .pointer("/metadata/generation")
            .cloned()
            .unwrap_or(json!(0));
        let mut requeue = None;
        match computed {
            Ok(c) => {
                let allowed = (c.healthy - c.desired).max(0);
                status["expectedPods"] = json!(c.expected);
                status["currentHealthy"] = json!(c.healthy);
                status["desiredHealthy"] = json!(c.desired);
                status["disruptionsAllowed"] = json!(allowed);
                if !c.disrupted.is_empty() {
                    requeue = Some(DELETION_TIMEOUT);
                }
                status["disruptedPods"] = Value::Object(c.disrupted);
                status["conditions"] = json!([if allowed > 0 {
                    self.condition(&pdb, "True", "SufficientPods", "")
                } else {
                    self.condition(&pdb, "False", "InsufficientPods", "")
                }]);
            }
            // `failSafe`: no disruptions while the budget cannot be computed.
            Err(msg) => {
                status["disruptionsAllowed"] = json!(0);
                status["conditions"] = json!([self.condition(&pdb, "False", "SyncFailed", &msg)]);
                requeue = Some(Duration::from_secs(30));
            }
        }
        if pdb.get("status") != Some(&status) {
            let mut upd = pdb.clone();
            upd["status"] = status;
            let opts = WriteOptions {
                field_manager: Some(NAME.into()),
                ..Default::default()
            };
            match self
                .client
                .update_status(&pod_disruption_budgets().in_namespace(&ns), upd, &opts)
                .await
            {
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(requeue.map_or(Action::AwaitChange, Action::Requeue))
    }
}

/// Registers the informer handlers and builds the controller (the [`crate::CONTROLLERS`] entry).
pub fn setup(
    inf: &mut crate::Informers,
    client: Arc<dyn ApiClient>,
    clock: Arc<dyn Clock>,
    q: WorkQueue,
) -> Arc<dyn Reconciler> {
    let pods = crate::replicaset::pods();
    // Upstream's disruption controller records as `controllermanager`.
    let events = EventRecorder::new(client.clone(), "controllermanager", clock.clone());
    let c = DisruptionController::new(
        client,
        inf.cache(pod_disruption_budgets()),
        inf.cache(pods.clone()),
        clock,
    )
    .with_events(events);
    inf.get(pod_disruption_budgets())
        .add_handler(Arc::new(DisruptionController::on_pdb(q.clone())));
    inf.get(pods).add_handler(Arc::new(c.on_pod(q)));
    Arc::new(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ownership::new_controller_ref;
    use crate::runtime::FakeClock;
    use crate::testing::FakeClient;

    fn world(spec: Value) -> (Arc<FakeClient>, DisruptionController) {
        let fake = Arc::new(FakeClient::default());
        let d = fake.seed(
            &ResourceRef::new("apps", "v1", "deployments"),
            json!({"metadata": {"name": "web", "namespace": "ns"}, "spec": {"replicas": 4}}),
        );
        let mut rs = json!({"metadata": {"name": "web-1", "namespace": "ns",
            "ownerReferences": [new_controller_ref(&d, "apps/v1", "Deployment")]},
            "spec": {"replicas": 3}});
        rs = fake.seed(&ResourceRef::new("apps", "v1", "replicasets"), rs);
        let pdb = fake.seed(
            &pod_disruption_budgets(),
            json!({"metadata": {"name": "web", "namespace": "ns", "generation": 1},
                "spec": spec}),
        );
        let c = DisruptionController::new(
            fake.clone(),
            Cache::default(),
            Cache::default(),
            FakeClock::new("2026-01-01T00:00:00Z".parse().unwrap()),
        );
        c.pdbs.insert(pdb);
        for (name, ready) in [("a", true), ("b", true), ("c", false)] {
            c.pods.insert(json!({"metadata": {"name": name, "namespace": "ns",
                    "labels": {"app": "web"},
                    "ownerReferences": [new_controller_ref(&rs, "apps/v1", "ReplicaSet")]},
                "status": {"conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}}));
        }
        (fake, c)
    }

    fn status(fake: &FakeClient) -> Value {
        fake.object(&pod_disruption_budgets(), "ns/web").unwrap()["status"].clone()
    }

    #[tokio::test]
    async fn min_available_count_uses_the_pods() {
        let (fake, c) =
            world(json!({"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}));
        c.reconcile("ns/web").await.unwrap();
        assert_eq!(fake.writes(), ["update_status poddisruptionbudgets ns/web"]);
        let s = status(&fake);
        assert_eq!(
            (
                &s["expectedPods"],
                &s["currentHealthy"],
                &s["desiredHealthy"],
                &s["disruptionsAllowed"]
            ),
            (&json!(3), &json!(2), &json!(1), &json!(1))
        );
        assert_eq!(s["conditions"][0]["status"], "True");
        assert_eq!(s["conditions"][0]["reason"], "SufficientPods");
        assert_eq!(s["observedGeneration"], 1);
    }

    #[tokio::test]
    async fn percentages_and_max_unavailable_scale_with_the_deployment() {
        let (fake, c) =
            world(json!({"maxUnavailable": "30%", "selector": {"matchLabels": {"app": "web"}}}));
        c.reconcile("ns/web").await.unwrap();
        let s = status(&fake);
        // 4 replicas wanted; 30% rounds up to 2 unavailable; 2 healthy ≥ 2 desired → 0 allowed.
        assert_eq!(s["expectedPods"], 4);
        assert_eq!(s["desiredHealthy"], 2);
        assert_eq!(s["disruptionsAllowed"], 0);
        assert_eq!(s["conditions"][0]["reason"], "InsufficientPods");

        let (fake, c) =
            world(json!({"minAvailable": "25%", "selector": {"matchLabels": {"app": "web"}}}));
        c.reconcile("ns/web").await.unwrap();
        let s = status(&fake);
        assert_eq!(
            (&s["desiredHealthy"], &s["disruptionsAllowed"]),
            (&json!(1), &json!(1))
        );
    }

    #[tokio::test]
    async fn no_pods_and_uncountable_pods_are_reported() {
        let clock = FakeClock::new("2026-01-01T00:00:00Z".parse().unwrap());
        let (fake, c) =
            world(json!({"maxUnavailable": 1, "selector": {"matchLabels": {"app": "db"}}}));
        let c = c.with_events(EventRecorder::new(
            fake.clone(),
            "controllermanager",
            clock.clone(),
        ));
        c.reconcile("ns/web").await.unwrap();
        let (fake2, c2) =
            world(json!({"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}));
        let c2 = c2.with_events(EventRecorder::new(
            fake2.clone(),
            "controllermanager",
            clock,
        ));
        c2.pods.insert(
            json!({"metadata": {"name": "d", "namespace": "ns", "labels": {"app": "web"},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "j1",
                "controller": true}]}}),
        );
        c2.reconcile("ns/web").await.unwrap();
        let n = |t: &str, r: &str, m: &str| (t.to_string(), r.to_string(), m.to_string());
        assert_eq!(
            fake.events().await,
            [n("Normal", "NoPods", "No matching pods found")]
        );
        assert_eq!(
            fake2.events().await,
            [n(
                "Warning",
                "CalculateExpectedPodCountFailed",
                "Failed to calculate the number of expected pods: found no controllers for pod \"d\""
            )]
        );
    }

    #[tokio::test]
    async fn unknown_controllers_fail_safe_and_disrupted_pods_do_not_count() {
        let (fake, c) =
            world(json!({"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}));
        c.pods.insert(
            json!({"metadata": {"name": "d", "namespace": "ns", "labels": {"app": "web"},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "j1",
                "controller": true}]}}),
        );
        c.reconcile("ns/web").await.unwrap();
        let s = status(&fake);
        assert_eq!(s["disruptionsAllowed"], 0);
        assert_eq!(s["conditions"][0]["reason"], "SyncFailed");
        assert_eq!(
            s["conditions"][0]["message"],
            "found no controllers for pod \"d\""
        );

        let (fake, c) =
            world(json!({"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}));
        let mut pdb = c.pdbs.get("ns/web").unwrap();
        pdb["status"] =
            json!({"disruptedPods": {"a": "2025-12-31T23:59:30Z", "b": "2025-12-31T23:50:00Z"}});
        c.pdbs.insert(fake.seed(&pod_disruption_budgets(), pdb));
        assert_eq!(
            c.reconcile("ns/web").await.unwrap(),
            Action::Requeue(DELETION_TIMEOUT)
        );
        let s = status(&fake);
        assert_eq!(s["currentHealthy"], 1, "a was just evicted");
        assert_eq!(
            s["disruptedPods"],
            json!({"a": "2025-12-31T23:59:30Z"}),
            "b's entry expired"
        );
        assert_eq!(s["disruptionsAllowed"], 0);
    }
}
