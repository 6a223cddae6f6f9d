//! The Pod garbage collector (`pkg/controller/podgc`): every 20 s it force-deletes finished Pods
//! beyond `--terminated-pod-gc-threshold` (oldest first), Pods bound to a Node that has been gone
//! for the 40 s quarantine (first marked Failed with `DisruptionTarget`/`DeletionByPodGC`), and
//! terminating Pods that were never scheduled (no kubelet will ever finish them).
//!
//! It has no object to reconcile: the one work item is [`KEY`], re-queued every period.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, DeleteOptions, WriteOptions};
use skiff_k8s_core::status::ApiError;

use crate::endpoints_pods::nodes;
use crate::ownership::{self, is_deleting, str_at};
use crate::replicaset::pods;
use crate::runtime::informer::Cache;
use crate::runtime::queue::WorkQueue;
use crate::runtime::reconcile::{Action, Error, Reconciler};
use crate::runtime::{Clock, rfc3339};

pub const NAME: &str = "pod-garbage-collector";
/// The single work item.
pub const KEY: &str = "pod-gc";
/// `gcCheckPeriod`.
pub const GC_PERIOD: Duration = Duration::from_secs(20);
/// `--terminated-pod-gc-threshold` default.
pub const TERMINATED_POD_GC_THRESHOLD: usize = 12500;
/// How long a Node must be missing before its Pods go (`quarantineTime`).
pub const QUARANTINE: Duration = Duration::from_secs(40);

pub struct PodGc {
    client: Arc<dyn ApiClient>,
    pods: Cache,
    nodes: Cache,
    clock: Arc<dyn Clock>,
    threshold: usize,
    /// Node name → when its absence was first seen.
    missing_since: Mutex<HashMap<String, jiff::Timestamp>>,
}

impl PodGc {
    pub fn new(
        client: Arc<dyn ApiClient>,
        pods: Cache,
        nodes: Cache,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client,
            pods,
            nodes,
            clock,
            threshold: TERMINATED_POD_GC_THRESHOLD,
            missing_since: Mutex::new(HashMap::new()),
        }
    }

    pub fn with_threshold(mut self, n: usize) -> Self {
        self.threshold = n;
        self
    }

    async fn force_delete(&self, pod: &Value) -> Result<(), ApiError> {
        let r = pods().in_namespace(ownership::namespace(pod));
        let opts = DeleteOptions {
            grace_period_seconds: Some(0),
            precondition_uid: Some(ownership::uid(pod).to_string()),
            ..Default::default()
        };
        match self.client.delete(&r, ownership::name(pod), &opts).await {
            Ok(_) | Err(ApiError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `markFailedAndDeletePodWithCondition`.
    async fn fail_and_delete(&self, pod: &Value, message: &str) -> Result<(), ApiError> {
        let mut p = pod.clone();
        let phase = str_at(pod, "/status/phase");
        if phase != "Succeeded" && phase != "Failed" {
            p["status"]["phase"] = json!("Failed");
        }
        let mut conds: Vec<Value> = p["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| str_at(c, "/type") != "DisruptionTarget")
            .collect();
        conds.push(json!({"type": "DisruptionTarget", "status": "True",
            "reason": "DeletionByPodGC", "message": message,
            "lastTransitionTime": rfc3339(self.clock.now())}));
        p["status"]["conditions"] = Value::Array(conds);
        let opts = WriteOptions {
            field_manager: Some(NAME.into()),
            ..Default::default()
        };
        let r = pods().in_namespace(ownership::namespace(pod));
        match self.client.update_status(&r, p, &opts).await {
            Ok(_) => {}
            Err(ApiError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        }
        self.force_delete(pod).await
    }

    async fn gc_terminated(&self, all: &[Value]) -> Result<(), ApiError> {
        let mut done: Vec<&Value> = all
            .iter()
            .filter(|p| {
                let phase = str_at(p, "/status/phase");
                (phase == "Succeeded" || phase == "Failed") && !is_deleting(p)
            })
            .collect();
        if done.len() <= self.threshold {
            return Ok(());
        }
        done.sort_by(|a, b| {
            str_at(a, "/metadata/creationTimestamp")
                .cmp(str_at(b, "/metadata/creationTimestamp"))
                .then_with(|| ownership::name(a).cmp(ownership::name(b)))
        });
        let excess = done.len() - self.threshold;
        for p in done.into_iter().take(excess) {
            self.force_delete(p).await?;
        }
        Ok(())
    }

    async fn gc_orphaned(&self, all: &[Value]) -> Result<(), ApiError> {
        let now = self.clock.now();
        let mut gone = Vec::new();
        {
            let mut missing = self.missing_since.lock().unwrap_or_else(|e| e.into_inner());
            missing.retain(|n, _| self.nodes.get(n).is_none());
            for p in all {
                let node = str_at(p, "/spec/nodeName");
                if node.is_empty() || self.nodes.get(node).is_some() {
                    continue;
                }
                let since = *missing.entry(node.to_string()).or_insert(now);
                let quiet: Duration = now.duration_since(since).try_into().unwrap_or_default();
                if quiet >= QUARANTINE && !gone.contains(&node.to_string()) {
                    gone.push(node.to_string());
                }
            }
        }
        for node in gone {
            // The cache may lag: ask the API before deleting anything.
            if self.client.get_opt(&nodes(), &node).await?.is_some() {
                continue;
            }
            for p in all.iter().filter(|p| str_at(p, "/spec/nodeName") == node) {
                self.fail_and_delete(p, "PodGC: node no longer exists")
                    .await?;
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Reconciler for PodGc {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, _key: &str) -> Result<Action, Error> {
        let all = self.pods.list(None);
        self.gc_terminated(&all).await?;
        self.gc_orphaned(&all).await?;
        for p in &all {
            if is_deleting(p) && str_at(p, "/spec/nodeName").is_empty() {
                self.force_delete(p).await?;
            }
        }
        Ok(Action::Requeue(GC_PERIOD))
    }
}

/// Builds the collector and queues its first run (the [`crate::CONTROLLERS`] entry).
pub fn setup(
    inf: &mut crate::Informers,
    client: Arc<dyn ApiClient>,
    clock: Arc<dyn Clock>,
    q: WorkQueue,
) -> Arc<dyn Reconciler> {
    let c = PodGc::new(client, inf.cache(pods()), inf.cache(nodes()), clock);
    q.add(KEY);
    Arc::new(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::FakeClock;
    use crate::testing::FakeClient;

    fn pod(name: &str, node: &str, phase: &str, created: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns", "creationTimestamp": created},
            "spec": {"nodeName": node}, "status": {"phase": phase}})
    }

    #[tokio::test]
    async fn terminated_over_threshold_oldest_first_and_unscheduled_terminating() {
        let fake = Arc::new(FakeClient::default());
        let clock = FakeClock::new("2026-01-01T00:00:00Z".parse().unwrap());
        let c =
            PodGc::new(fake.clone(), Cache::default(), Cache::default(), clock).with_threshold(1);
        c.nodes.insert(json!({"metadata": {"name": "n1"}}));
        let mut stuck = pod("stuck", "", "Pending", "2026-01-01T00:00:00Z");
        stuck["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        for p in [
            pod("new", "n1", "Succeeded", "2026-01-01T00:00:03Z"),
            pod("old", "n1", "Failed", "2026-01-01T00:00:01Z"),
            pod("mid", "n1", "Succeeded", "2026-01-01T00:00:02Z"),
            pod("running", "n1", "Running", "2026-01-01T00:00:00Z"),
            stuck,
        ] {
            c.pods.insert(fake.seed(&pods(), p));
        }
        assert_eq!(c.reconcile(KEY).await.unwrap(), Action::Requeue(GC_PERIOD));
        assert_eq!(
            fake.writes(),
            [
                "delete pods ns/old",
                "delete pods ns/mid",
                "delete pods ns/stuck"
            ]
        );
    }

    #[tokio::test]
    async fn orphans_go_after_the_quarantine() {
        let fake = Arc::new(FakeClient::default());
        let clock = FakeClock::new("2026-01-01T00:00:00Z".parse().unwrap());
        let c = PodGc::new(
            fake.clone(),
            Cache::default(),
            Cache::default(),
            clock.clone(),
        );
        c.pods.insert(fake.seed(
            &pods(),
            pod("lost", "gone", "Running", "2026-01-01T00:00:00Z"),
        ));
        c.reconcile(KEY).await.unwrap();
        clock.advance(Duration::from_secs(39));
        c.reconcile(KEY).await.unwrap();
        assert!(fake.writes().is_empty(), "still in quarantine");
        clock.advance(Duration::from_secs(1));
        c.reconcile(KEY).await.unwrap();
        assert_eq!(
            fake.writes(),
            ["update_status pods ns/lost", "delete pods ns/lost"]
        );
    }

    #[tokio::test]
    async fn a_node_the_cache_missed_saves_its_pods() {
        let fake = Arc::new(FakeClient::default());
        let clock = FakeClock::new("2026-01-01T00:00:00Z".parse().unwrap());
        fake.seed(&nodes(), json!({"metadata": {"name": "late"}}));
        let c = PodGc::new(
            fake.clone(),
            Cache::default(),
            Cache::default(),
            clock.clone(),
        );
        c.pods
            .insert(fake.seed(&pods(), pod("p", "late", "Running", "2026-01-01T00:00:00Z")));
        c.reconcile(KEY).await.unwrap();
        clock.advance(QUARANTINE);
        c.reconcile(KEY).await.unwrap();
        assert!(fake.writes().is_empty());
    }
}
