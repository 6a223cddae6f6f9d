//! The ReplicaSet controller (`pkg/controller/replicaset`): keeps `spec.replicas` active Pods
//! matching the selector, created from the template with a controller reference, adopting matching
//! orphans and releasing Pods that stopped matching, and reports counts in `status`.

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, DeleteOptions, ResourceRef, WriteOptions};
use skiff_k8s_core::status::ApiError;

use crate::ownership::{self, claim, controller_key, is_deleting, new_controller_ref, str_at};
use crate::runtime::events::{EventRecorder, EventType};
use crate::runtime::expectations::Expectations;
use crate::runtime::informer::{Cache, Change, key_of};
use crate::runtime::queue::WorkQueue;
use crate::runtime::reconcile::{Action, Error, Reconciler};
use crate::runtime::{Clock, parse_time};

pub const NAME: &str = "replicaset-controller";

/// At most this many pods are created or deleted per sync (upstream `burstReplicas`).
const BURST_REPLICAS: i64 = 500;

pub fn replicasets() -> ResourceRef {
    ResourceRef::new("apps", "v1", "replicasets")
}

pub fn pods() -> ResourceRef {
    ResourceRef::new("", "v1", "pods")
}

/// A Pod counts unless it finished or is being deleted (`controller.IsPodActive`).
pub fn is_pod_active(p: &Value) -> bool {
    let phase = str_at(p, "/status/phase");
    phase != "Succeeded" && phase != "Failed" && !is_deleting(p)
}

/// The Ready condition's status and last transition time.
fn ready_since(p: &Value) -> Option<jiff::Timestamp> {
    let conds = p.pointer("/status/conditions")?.as_array()?;
    let c = conds
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))?;
    if c.get("status").and_then(Value::as_str) != Some("True") {
        return None;
    }
    Some(
        c.get("lastTransitionTime")
            .and_then(Value::as_str)
            .and_then(parse_time)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
    )
}

pub fn is_pod_ready(p: &Value) -> bool {
    ready_since(p).is_some()
}

/// Ready for at least `min_ready` (`podutil.IsPodAvailable`).
pub fn is_pod_available(p: &Value, min_ready: i64, now: jiff::Timestamp) -> bool {
    match ready_since(p) {
        None => false,
        Some(_) if min_ready <= 0 => true,
        Some(t) => t
            .checked_add(jiff::SignedDuration::from_secs(min_ready))
            .is_ok_and(|until| until <= now),
    }
}

/// Which pods to delete first (`controller.ActivePods` ordering): unscheduled before scheduled,
/// Pending before Unknown before Running, not ready before ready, newer before older.
fn deletion_order(a: &Value, b: &Value) -> Ordering {
    let scheduled = |p: &Value| !str_at(p, "/spec/nodeName").is_empty();
    let phase = |p: &Value| match str_at(p, "/status/phase") {
        "Pending" | "" => 0,
        "Unknown" => 1,
        _ => 2,
    };
    scheduled(a)
        .cmp(&scheduled(b))
        .then(phase(a).cmp(&phase(b)))
        .then(is_pod_ready(a).cmp(&is_pod_ready(b)))
        .then_with(|| {
            str_at(b, "/metadata/creationTimestamp").cmp(str_at(a, "/metadata/creationTimestamp"))
        })
}

pub struct ReplicaSetController {
    client: Arc<dyn ApiClient>,
    /// `SuccessfulCreate` / `SuccessfulDelete` events; none in unit tests that assert writes.
    events: Option<Arc<EventRecorder>>,
    replicasets: Cache,
    pods: Cache,
    expectations: Arc<Expectations>,
    clock: Arc<dyn Clock>,
}

impl ReplicaSetController {
    pub fn new(
        client: Arc<dyn ApiClient>,
        replicasets: Cache,
        pods: Cache,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client,
            events: None,
            replicasets,
            pods,
            expectations: Arc::new(Expectations::new(clock.clone())),
            clock,
        }
    }

    /// Records events as upstream's controller does.
    pub fn with_events(mut self, events: Arc<EventRecorder>) -> Self {
        self.events = Some(events);
        self
    }

    /// Informer handler for ReplicaSets: every change queues the ReplicaSet.
    pub fn on_replicaset(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| queue.add(&key_of(c.object()))
    }

    /// Informer handler for Pods: queues the owning ReplicaSet (or, for orphans, every
    /// ReplicaSet whose selector matches) and records observed creations and deletions.
    pub fn on_pod(&self, queue: WorkQueue) -> impl Fn(&Change) + Send + Sync + use<> {
        let exp = self.expectations.clone();
        let rss = self.replicasets.clone();
        move |c| {
            let pod = c.object();
            let pod_key = key_of(pod);
            match controller_key(pod, "ReplicaSet") {
                Some(owner) => {
                    match c {
                        Change::Added(p) if !is_deleting(p) => exp.creation_observed(&owner),
                        Change::Deleted(_) => exp.deletion_observed(&owner, &pod_key),
                        _ if is_deleting(pod) => exp.deletion_observed(&owner, &pod_key),
                        _ => {}
                    }
                    queue.add(&owner);
                }
                None if !matches!(c, Change::Deleted(_)) => {
                    for rs in rss.list(Some(ownership::namespace(pod))) {
                        if ownership::selector_of(&rs).is_ok_and(|s| s.matches_object(pod)) {
                            queue.add(&key_of(&rs));
                        }
                    }
                }
                None => {}
            }
        }
    }

    async fn create_pods(&self, rs: &Value, key: &str, n: i64) -> Result<(), ApiError> {
        let ns = ownership::namespace(rs);
        let tmpl = &rs["spec"]["template"];
        let mut meta = json!({
            "generateName": format!("{}-", ownership::name(rs)),
            "namespace": ns,
            "ownerReferences": [new_controller_ref(rs, "apps/v1", "ReplicaSet")],
        });
        for f in ["labels", "annotations"] {
            if let Some(v) = tmpl.pointer(&format!("/metadata/{f}")) {
                meta[f] = v.clone();
            }
        }
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": tmpl.get("spec").cloned().unwrap_or(json!({})),
        });
        let r = pods().in_namespace(ns);
        let opts = WriteOptions {
            field_manager: Some(NAME.into()),
            ..Default::default()
        };
        self.expectations.expect(key, n, vec![]);
        // Slow start (`slowStartBatch`): 1, 2, 4, … so a template that cannot be created
        // fails once, not `n` times.
        let (mut done, mut batch) = (0, 1);
        while done < n {
            let size = batch.min(n - done);
            let mut failed = None;
            for _ in 0..size {
                match self.client.create(&r, pod.clone(), &opts).await {
                    Ok(created) => {
                        if let Some(ev) = &self.events {
                            let msg = format!("Created pod: {}", ownership::name(&created));
                            ev.record(rs, EventType::Normal, "SuccessfulCreate", &msg);
                        }
                    }
                    Err(e) => {
                        if let Some(ev) = &self.events {
                            let msg = format!("Error creating: {}", e.message());
                            ev.record(rs, EventType::Warning, "FailedCreate", &msg);
                        }
                        self.expectations.creation_observed(key);
                        failed.get_or_insert(e);
                    }
                }
            }
            done += size;
            if let Some(e) = failed {
                // The creations never attempted will not be observed either.
                for _ in done..n {
                    self.expectations.creation_observed(key);
                }
                return Err(e);
            }
            batch *= 2;
        }
        Ok(())
    }

    async fn delete_pods(
        &self,
        rs: &Value,
        key: &str,
        mut victims: Vec<Value>,
        n: i64,
    ) -> Result<(), ApiError> {
        victims.sort_by(deletion_order);
        victims.truncate(n as usize);
        self.expectations
            .expect(key, 0, victims.iter().map(key_of).collect());
        let mut first_err = None;
        for p in &victims {
            let r = pods().in_namespace(ownership::namespace(p));
            let opts = DeleteOptions {
                precondition_uid: Some(ownership::uid(p).to_string()),
                ..Default::default()
            };
            match self.client.delete(&r, ownership::name(p), &opts).await {
                Ok(_) => {
                    if let Some(ev) = &self.events {
                        let msg = format!("Deleted pod: {}", ownership::name(p));
                        ev.record(rs, EventType::Normal, "SuccessfulDelete", &msg);
                    }
                }
                Err(e) => {
                    self.expectations.deletion_observed(key, &key_of(p));
                    if !matches!(e, ApiError::NotFound { .. }) {
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn status(&self, rs: &Value, pods: &[Value]) -> Value {
        let min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        let now = self.clock.now();
        let tmpl_labels = rs
            .pointer("/spec/template/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let fully_labeled = pods
            .iter()
            .filter(|p| {
                tmpl_labels
                    .iter()
                    .all(|(k, v)| p.pointer("/metadata/labels").and_then(|l| l.get(k)) == Some(v))
            })
            .count();
        let ready = pods.iter().filter(|p| is_pod_ready(p)).count();
        let available = pods
            .iter()
            .filter(|p| is_pod_available(p, min_ready, now))
            .count();
        let mut status = rs.get("status").cloned().unwrap_or(json!({}));
        status["replicas"] = json!(pods.len());
        status["fullyLabeledReplicas"] = json!(fully_labeled);
        status["readyReplicas"] = json!(ready);
        status["availableReplicas"] = json!(available);
        status["observedGeneration"] = rs["metadata"]["generation"].clone();
        status
    }
}

#[async_trait::async_trait]
impl Reconciler for ReplicaSetController {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &str) -> Result<Action, Error> {
        let Some(rs) = self.replicasets.get(key) else {
            self.expectations.forget(key);
            return Ok(Action::AwaitChange);
        };
        let selector = ownership::selector_of(&rs).map_err(Error::Invalid)?;
        let ns = ownership::namespace(&rs).to_string();
        let needs_sync = self.expectations.satisfied(key);
        let candidates: Vec<Value> = self
            .pods
            .list(Some(&ns))
            .into_iter()
            .filter(is_pod_active)
            .collect();
        let owned = claim(
            self.client.as_ref(),
            &pods().in_namespace(&ns),
            &rs,
            new_controller_ref(&rs, "apps/v1", "ReplicaSet"),
            &selector,
            candidates,
            NAME,
        )
        .await?;

        let mut manage_err = None;
        if needs_sync && !is_deleting(&rs) {
            let want = rs["spec"]["replicas"].as_i64().unwrap_or(1);
            let diff = owned.len() as i64 - want;
            let res = match diff.cmp(&0) {
                Ordering::Less => {
                    self.create_pods(&rs, key, (-diff).min(BURST_REPLICAS))
                        .await
                }
                Ordering::Greater => {
                    self.delete_pods(&rs, key, owned.clone(), diff.min(BURST_REPLICAS))
                        .await
                }
                Ordering::Equal => Ok(()),
            };
            manage_err = res.err();
        }

        let status = self.status(&rs, &owned);
        if rs.get("status") != Some(&status) {
            let mut updated = rs.clone();
            updated["status"] = status.clone();
            let opts = WriteOptions {
                field_manager: Some(NAME.into()),
                ..Default::default()
            };
            self.client
                .update_status(&replicasets().in_namespace(&ns), updated, &opts)
                .await?;
        }
        if let Some(e) = manage_err {
            return Err(e.into());
        }
        // Pods that are ready but not yet available become available with time alone.
        let min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        if min_ready > 0 && status["readyReplicas"] != status["availableReplicas"] {
            return Ok(Action::Requeue(Duration::from_secs(min_ready as u64)));
        }
        Ok(Action::AwaitChange)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::FakeClock;
    use crate::testing::FakeClient;

    fn rs(replicas: i64) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web", "namespace": "ns", "generation": 2},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}},
                             "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
            },
        })
    }

    fn setup(replicas: i64) -> (Arc<FakeClient>, ReplicaSetController, Value) {
        let fake = Arc::new(FakeClient::default());
        let rs = fake.seed(&replicasets(), rs(replicas));
        let c = ReplicaSetController::new(
            fake.clone(),
            Cache::default(),
            Cache::default(),
            FakeClock::new(jiff::Timestamp::UNIX_EPOCH),
        );
        c.replicasets.insert(rs.clone());
        (fake, c, rs)
    }

    #[tokio::test]
    async fn creates_missing_pods_from_the_template_and_reports_status() {
        let (fake, c, _) = setup(3);
        assert_eq!(c.reconcile("ns/web").await.unwrap(), Action::AwaitChange);
        assert_eq!(
            fake.writes(),
            [
                "create pods ns/web-00002",
                "create pods ns/web-00003",
                "create pods ns/web-00004",
                "update_status replicasets ns/web",
            ]
        );
        let pod = fake.object(&pods(), "ns/web-00002").unwrap();
        assert_eq!(pod["metadata"]["labels"]["tier"], "fe");
        assert_eq!(pod["spec"]["containers"][0]["image"], "nginx");
        let r = &pod["metadata"]["ownerReferences"][0];
        assert_eq!(
            (
                r["kind"].as_str(),
                r["controller"].as_bool(),
                r["blockOwnerDeletion"].as_bool()
            ),
            (Some("ReplicaSet"), Some(true), Some(true))
        );
        // A stale cached ReplicaSet loses the status write (retried later, as upstream).
        assert!(matches!(
            c.reconcile("ns/web").await,
            Err(Error::Api(ApiError::Conflict { .. }))
        ));
        // The pod cache has not seen the pods yet: expectations stop a second round of creates.
        c.replicasets
            .insert(fake.object(&replicasets(), "ns/web").unwrap());
        assert_eq!(c.reconcile("ns/web").await.unwrap(), Action::AwaitChange);
        assert_eq!(fake.writes().len(), 4);
        let status = fake.object(&replicasets(), "ns/web").unwrap()["status"].clone();
        assert_eq!(status["replicas"], 0, "counts what the cache shows");
        assert_eq!(status["observedGeneration"], 2);
    }

    #[tokio::test]
    async fn deletes_surplus_pods_unscheduled_first_and_counts_ready_ones() {
        let (fake, c, rs) = setup(1);
        let owner = new_controller_ref(&rs, "apps/v1", "ReplicaSet");
        let ready = json!([{"type": "Ready", "status": "True", "lastTransitionTime": "1970-01-01T00:00:00Z"}]);
        for (name, node, conds) in [
            ("a", "n1", ready.clone()),
            ("b", "", json!([])),
            ("c", "n1", json!([])),
        ] {
            let p = fake.seed(
                &pods(),
                json!({"metadata": {"name": name, "namespace": "ns", "labels": {"app": "web", "tier": "fe"},
                        "ownerReferences": [owner.clone()]},
                       "spec": {"nodeName": node}, "status": {"phase": "Running", "conditions": conds}}),
            );
            c.pods.insert(p);
        }
        c.reconcile("ns/web").await.unwrap();
        assert_eq!(
            fake.writes(),
            [
                "delete pods ns/b",
                "delete pods ns/c",
                "update_status replicasets ns/web"
            ]
        );
        let status = fake.object(&replicasets(), "ns/web").unwrap()["status"].clone();
        assert_eq!(status["readyReplicas"], 1);
        assert_eq!(status["availableReplicas"], 1);
        assert_eq!(status["fullyLabeledReplicas"], 3);
    }

    #[tokio::test]
    async fn adopts_a_matching_orphan_instead_of_creating() {
        let (fake, c, _) = setup(1);
        let p = fake.seed(
            &pods(),
            json!({"metadata": {"name": "stray", "namespace": "ns", "labels": {"app": "web"}}}),
        );
        c.pods.insert(p);
        c.reconcile("ns/web").await.unwrap();
        assert_eq!(
            fake.writes(),
            ["patch pods ns/stray", "update_status replicasets ns/web"]
        );
        let stray = fake.object(&pods(), "ns/stray").unwrap();
        assert_eq!(stray["metadata"]["ownerReferences"][0]["name"], "web");
        let status = fake.object(&replicasets(), "ns/web").unwrap()["status"].clone();
        assert_eq!(status["fullyLabeledReplicas"], 0, "lacks the tier label");
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let p = json!({"status": {"conditions": [{"type": "Ready", "status": "True",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
        let t0: jiff::Timestamp = "2026-01-01T00:00:05Z".parse().unwrap();
        assert!(is_pod_available(&p, 0, t0));
        assert!(!is_pod_available(&p, 10, t0));
        assert!(is_pod_available(&p, 5, t0));
        assert!(!is_pod_active(&json!({"status": {"phase": "Failed"}})));
    }
}
