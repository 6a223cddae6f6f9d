//! Cordon and drain a Node as `kubectl drain --ignore-daemonsets --delete-emptydir-data --force`
//! does, and as EKS does before it terminates a managed node (DeleteNodegroup, scale-in, rolling
//! updates) and the Cluster Autoscaler before it removes one.
//!
//! Order (kubectl's `drain.Helper`): mark `spec.unschedulable` (cordon), list the node's pods, skip
//! mirror pods (the kubelet owns them) and DaemonSet pods (their controller would recreate them on
//! the same node, and they tolerate `unschedulable`), then evict every other pod through
//! `pods/eviction` so PodDisruptionBudgets are honoured, retrying the budget's 429 with backoff,
//! and finally wait until each evicted pod is gone (its kubelet finishes the graceful deletion).
//! Pods without a controller are evicted too: EKS drains them (kubectl needs `--force` for that).
//!
//! One deadline bounds the whole drain: on expiry the caller gets [`DrainError::Timeout`] naming the
//! pods still there, and decides (EKS fails an update with `PodEvictionFailure`, but terminates the
//! node anyway when deleting a nodegroup). With [`DrainOptions::force`] a budget's refusal is not
//! retried: the pod is deleted directly, as `update-nodegroup-version --force` does.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, DeleteOptions, ListOptions, PatchOptions, ResourceRef};
use skiff_k8s_core::patch::PatchType;
use skiff_k8s_core::status::ApiError;

/// The annotation the kubelet puts on the API copy of a static pod.
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// How long EKS keeps trying to evict a node's pods before it gives up (a rolling update fails
/// with `PodEvictionFailure`; a nodegroup delete or scale-in terminates the node anyway).
pub const EKS_DRAIN_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Knobs of a drain. `Default` is EKS's: 15 minutes, PDBs honoured.
#[derive(Clone, Debug)]
pub struct DrainOptions {
    /// Deadline for the whole drain (cordon, evictions, waiting for the pods to go).
    pub timeout: Duration,
    /// Delete pods whose eviction a PodDisruptionBudget refuses, instead of retrying
    /// (`update-nodegroup-version --force`).
    pub force: bool,
    /// `deleteOptions.gracePeriodSeconds` of each eviction; `None` keeps the pod's own.
    pub grace_period_seconds: Option<i64>,
    /// First wait after a 429; doubled per refusal up to [`DrainOptions::max_backoff`].
    pub initial_backoff: Duration,
    /// kubectl retries every 5 s; so do we at most.
    pub max_backoff: Duration,
    /// How often the wait for evicted pods looks again.
    pub poll_interval: Duration,
}

impl Default for DrainOptions {
    fn default() -> Self {
        Self {
            timeout: EKS_DRAIN_TIMEOUT,
            force: false,
            grace_period_seconds: None,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            poll_interval: Duration::from_millis(50),
        }
    }
}

/// What a finished drain did; pods are `namespace/name`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DrainOutcome {
    /// Evicted through `pods/eviction` and gone.
    pub evicted: Vec<String>,
    /// Deleted directly because a budget refused and [`DrainOptions::force`] was set.
    pub deleted_ignoring_budget: Vec<String>,
    /// Left on the node: DaemonSet-managed.
    pub skipped_daemonset: Vec<String>,
    /// Left on the node: mirror pods of static pods.
    pub skipped_mirror: Vec<String>,
    /// How many 429s the budgets answered along the way.
    pub budget_refusals: u32,
}

/// Why a drain did not finish.
#[derive(Clone, Debug, thiserror::Error)]
pub enum DrainError {
    #[error("nodes \"{0}\" not found")]
    NodeNotFound(String),
    /// The deadline passed with these pods (`namespace/name`) still on the node; `blocked_by_budget`
    /// says a PodDisruptionBudget refused at least one of them.
    #[error(
        "drain of node \"{node}\" timed out after {timeout:?}; pods left: {}{}",
        pending.join(", "),
        if *blocked_by_budget { " (Cannot evict pod as it would violate the pod's disruption budget.)" } else { "" }
    )]
    Timeout {
        node: String,
        timeout: Duration,
        pending: Vec<String>,
        blocked_by_budget: bool,
    },
    #[error("error when evicting pods/\"{pod}\" -n \"{namespace}\": {source}")]
    Eviction {
        namespace: String,
        pod: String,
        source: ApiError,
    },
    #[error(transparent)]
    Api(#[from] ApiError),
}

fn nodes() -> ResourceRef {
    ResourceRef::new("", "v1", "nodes")
}

fn pods(ns: &str) -> ResourceRef {
    ResourceRef::new("", "v1", "pods").in_namespace(ns)
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

/// `kubectl cordon`: marks the node unschedulable (no write when it already is).
pub async fn cordon(client: &dyn ApiClient, node: &str) -> Result<(), DrainError> {
    set_unschedulable(client, node, true).await
}

/// `kubectl uncordon`.
pub async fn uncordon(client: &dyn ApiClient, node: &str) -> Result<(), DrainError> {
    set_unschedulable(client, node, false).await
}

async fn set_unschedulable(
    client: &dyn ApiClient,
    node: &str,
    value: bool,
) -> Result<(), DrainError> {
    let current = client
        .get_opt(&nodes(), node)
        .await?
        .ok_or_else(|| DrainError::NodeNotFound(node.into()))?;
    let now = current
        .pointer("/spec/unschedulable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if now == value {
        return Ok(());
    }
    let patch = json!({"spec": {"unschedulable": if value { json!(true) } else { Value::Null }}});
    match client
        .patch(
            &nodes(),
            node,
            PatchType::Merge,
            patch,
            &PatchOptions::default(),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(ApiError::NotFound { .. }) => Err(DrainError::NodeNotFound(node.into())),
        Err(e) => Err(e.into()),
    }
}

/// Why a pod stays on a drained node, if it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Skip {
    Mirror,
    DaemonSet,
}

fn skip_reason(pod: &Value) -> Option<Skip> {
    if pod
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION))
    {
        return Some(Skip::Mirror);
    }
    let daemon = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|o| o["controller"] == json!(true) && o["kind"] == "DaemonSet");
    daemon.then_some(Skip::DaemonSet)
}

/// A pod chosen for eviction, identified by uid so a replacement with the same name (StatefulSet)
/// does not look like the old one still being there.
#[derive(Clone, Debug)]
struct Target {
    namespace: String,
    name: String,
    uid: String,
}

impl Target {
    fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Cordons `node`, evicts its pods honouring PodDisruptionBudgets and waits for them to go.
#[doc(alias = "kubectl drain")]
pub async fn cordon_and_drain(
    client: &dyn ApiClient,
    node: &str,
    opts: &DrainOptions,
) -> Result<DrainOutcome, DrainError> {
    let deadline = Instant::now() + opts.timeout;
    cordon(client, node).await?;
    let listed = client
        .list(
            &ResourceRef::new("", "v1", "pods"),
            &ListOptions {
                field_selector: Some(format!("spec.nodeName={node}")),
                ..ListOptions::default()
            },
        )
        .await?;
    let mut outcome = DrainOutcome::default();
    let mut targets = Vec::new();
    for pod in &listed.items {
        let t = Target {
            namespace: str_at(pod, "/metadata/namespace").into(),
            name: str_at(pod, "/metadata/name").into(),
            uid: str_at(pod, "/metadata/uid").into(),
        };
        match skip_reason(pod) {
            Some(Skip::Mirror) => outcome.skipped_mirror.push(t.key()),
            Some(Skip::DaemonSet) => outcome.skipped_daemonset.push(t.key()),
            None => targets.push(t),
        }
    }
    // kubectl evicts every pod at once, each retrying on its own.
    let results = futures::future::join_all(
        targets
            .iter()
            .map(|t| evict_until_gone(client, node, t, opts, deadline)),
    )
    .await;
    let mut pending = Vec::new();
    let mut blocked_by_budget = false;
    for (t, r) in targets.iter().zip(results) {
        let r = r?;
        outcome.budget_refusals += r.refusals;
        blocked_by_budget |= r.refusals > 0;
        match r.end {
            End::Gone { forced: false } => outcome.evicted.push(t.key()),
            End::Gone { forced: true } => outcome.deleted_ignoring_budget.push(t.key()),
            End::TimedOut => pending.push(t.key()),
        }
    }
    if !pending.is_empty() {
        return Err(DrainError::Timeout {
            node: node.into(),
            timeout: opts.timeout,
            pending,
            blocked_by_budget,
        });
    }
    Ok(outcome)
}

enum End {
    Gone { forced: bool },
    TimedOut,
}

struct PodResult {
    end: End,
    refusals: u32,
}

fn eviction_body(t: &Target, opts: &DrainOptions) -> Value {
    let mut delete_options = json!({"preconditions": {"uid": t.uid}});
    if let Some(g) = opts.grace_period_seconds {
        delete_options["gracePeriodSeconds"] = json!(g);
    }
    json!({"apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": {"name": t.name, "namespace": t.namespace},
        "deleteOptions": delete_options})
}

/// Evicts one pod (retrying budget refusals until the deadline) and waits until it is gone.
async fn evict_until_gone(
    client: &dyn ApiClient,
    node: &str,
    t: &Target,
    opts: &DrainOptions,
    deadline: Instant,
) -> Result<PodResult, DrainError> {
    let mut refusals = 0;
    let mut backoff = opts.initial_backoff;
    let mut forced = false;
    loop {
        let body = eviction_body(t, opts);
        match client
            .create_subresource(
                &pods(&t.namespace),
                &t.name,
                "eviction",
                body,
                &Default::default(),
            )
            .await
        {
            Ok(_) => break,
            // Gone already, or replaced by a pod of the same name (uid precondition).
            Err(ApiError::NotFound { .. } | ApiError::Conflict { .. }) => {
                return Ok(PodResult {
                    end: End::Gone { forced: false },
                    refusals,
                });
            }
            Err(ApiError::TooManyRequests { .. }) => {
                refusals += 1;
                if opts.force {
                    let del = DeleteOptions {
                        precondition_uid: Some(t.uid.clone()),
                        grace_period_seconds: opts.grace_period_seconds,
                        ..DeleteOptions::default()
                    };
                    match client.delete(&pods(&t.namespace), &t.name, &del).await {
                        Ok(_) | Err(ApiError::NotFound { .. } | ApiError::Conflict { .. }) => {}
                        Err(e) => {
                            return Err(DrainError::Eviction {
                                namespace: t.namespace.clone(),
                                pod: t.name.clone(),
                                source: e,
                            });
                        }
                    }
                    forced = true;
                    break;
                }
                let now = Instant::now();
                if now >= deadline {
                    return Ok(PodResult {
                        end: End::TimedOut,
                        refusals,
                    });
                }
                tracing::debug!(node, pod = %t.key(), ?backoff, "eviction refused by a disruption budget; retrying");
                tokio::time::sleep(backoff.min(deadline - now)).await;
                backoff = (backoff * 2).min(opts.max_backoff);
            }
            Err(e) => {
                return Err(DrainError::Eviction {
                    namespace: t.namespace.clone(),
                    pod: t.name.clone(),
                    source: e,
                });
            }
        }
    }
    // `waitForDelete`: gone, or a different pod under the same name.
    loop {
        match client.get_opt(&pods(&t.namespace), &t.name).await? {
            None => break,
            Some(p) if str_at(&p, "/metadata/uid") != t.uid => break,
            Some(_) => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(PodResult {
                end: End::TimedOut,
                refusals,
            });
        }
        tokio::time::sleep(opts.poll_interval.min(deadline - now)).await;
    }
    Ok(PodResult {
        end: End::Gone { forced },
        refusals,
    })
}

/// The pods `cordon_and_drain` would evict from `node` (`namespace/name`), for callers that only
/// want to know whether a node is empty of workload (the Cluster Autoscaler's scale-down check).
pub async fn evictable_pods(client: &dyn ApiClient, node: &str) -> Result<Vec<String>, ApiError> {
    let listed = client
        .list(
            &ResourceRef::new("", "v1", "pods"),
            &ListOptions {
                field_selector: Some(format!("spec.nodeName={node}")),
                ..ListOptions::default()
            },
        )
        .await?;
    let keys: BTreeSet<String> = listed
        .items
        .iter()
        .filter(|p| skip_reason(p).is_none())
        .map(|p| {
            format!(
                "{}/{}",
                str_at(p, "/metadata/namespace"),
                str_at(p, "/metadata/name")
            )
        })
        .collect();
    Ok(keys.into_iter().collect())
}

/// Where one background drain stands.
#[derive(Debug)]
pub enum DrainPoll {
    Running,
    Finished(Result<DrainOutcome, DrainError>),
}

#[derive(Debug)]
enum Job {
    Running(tokio::task::JoinHandle<()>),
    Finished(Result<DrainOutcome, DrainError>),
}

/// Drains running in the background, one per (cluster, node), so a reconciler that must not block
/// (the nodegroup loop serves every nodegroup) can start a drain and look again later.
#[derive(Default)]
pub struct DrainJobs {
    jobs: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<(String, String), Job>>>,
}

impl DrainJobs {
    /// Starts `cordon_and_drain` of `node` in `cluster` unless one is under way or finished, and says
    /// where it stands. A finished drain's result stays until [`DrainJobs::forget`] (call it once the
    /// node is gone, or to drain it again).
    pub fn poll(
        &self,
        cluster: &str,
        node: &str,
        client: std::sync::Arc<dyn ApiClient>,
        opts: DrainOptions,
    ) -> DrainPoll {
        let key = (cluster.to_string(), node.to_string());
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        match jobs.get_mut(&key) {
            Some(Job::Running(_)) => DrainPoll::Running,
            Some(Job::Finished(result)) => DrainPoll::Finished(result.clone()),
            None => {
                let all = self.jobs.clone();
                let k = key.clone();
                let handle = tokio::spawn(async move {
                    let r = cordon_and_drain(&*client, &k.1, &opts).await;
                    let mut jobs = all.lock().unwrap_or_else(|p| p.into_inner());
                    if jobs.contains_key(&k) {
                        jobs.insert(k, Job::Finished(r));
                    }
                });
                jobs.insert(key, Job::Running(handle));
                DrainPoll::Running
            }
        }
    }

    /// Drops what is known of `node`'s drain (stopping it if it still runs).
    pub fn forget(&self, cluster: &str, node: &str) {
        let key = (cluster.to_string(), node.to_string());
        if let Some(Job::Running(h)) = self
            .jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key)
        {
            h.abort();
        }
    }

    /// Whether a drain of `node` is known (running or finished).
    pub fn knows(&self, cluster: &str, node: &str) -> bool {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&(cluster.to_string(), node.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use skiff_apiserver::client::RegistryClient;
    use skiff_apiserver::server::{ClusterApiConfig, RunningApi, start};
    use skiff_k8s_core::client::WriteOptions;

    use super::*;

    struct Api {
        _dir: tempfile::TempDir,
        _api: RunningApi,
        client: Arc<dyn ApiClient>,
        kubelet: tokio::task::JoinHandle<()>,
    }

    impl Drop for Api {
        fn drop(&mut self) {
            self.kubelet.abort();
        }
    }

    /// A registry on a temp store, one Node `n1`, and a stand-in kubelet that finishes graceful
    /// deletions (what the sim kubelet does once containers stop).
    async fn api() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let store = skiff_store::open("embedded", dir.path()).await.unwrap();
        let api = start(
            store,
            ClusterApiConfig::new("drain", "127.0.0.1:0".parse().unwrap()),
        )
        .await
        .unwrap();
        let client: Arc<dyn ApiClient> =
            Arc::new(RegistryClient::new(api.registry.clone(), "system:admin"));
        client
            .create(
                &nodes(),
                json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
        let c = client.clone();
        let kubelet = tokio::spawn(async move {
            loop {
                let list = c
                    .list(&ResourceRef::new("", "v1", "pods"), &ListOptions::default())
                    .await
                    .unwrap();
                for p in list.items {
                    if !str_at(&p, "/metadata/deletionTimestamp").is_empty() {
                        let del = DeleteOptions {
                            grace_period_seconds: Some(0),
                            ..DeleteOptions::default()
                        };
                        let _ = c
                            .delete(
                                &pods(str_at(&p, "/metadata/namespace")),
                                str_at(&p, "/metadata/name"),
                                &del,
                            )
                            .await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Api {
            _dir: dir,
            _api: api,
            client,
            kubelet,
        }
    }

    async fn running_pod(c: &dyn ApiClient, name: &str, labels: Value, extra_meta: Value) {
        let mut meta = json!({"name": name, "namespace": "default", "labels": labels});
        if let (Some(m), Some(extra)) = (meta.as_object_mut(), extra_meta.as_object()) {
            m.extend(extra.clone());
        }
        let created = c
            .create(
                &pods("default"),
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                    "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}]}}),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
        let mut running = created;
        running["status"] = json!({"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}]});
        c.update_status(&pods("default"), running, &WriteOptions::default())
            .await
            .unwrap();
    }

    /// A budget over `app=db` whose status says `allowed` disruptions are left (no disruption
    /// controller runs here, so the status is written as that controller would).
    async fn budget(c: &dyn ApiClient, allowed: i64) {
        let r = ResourceRef::new("policy", "v1", "poddisruptionbudgets").in_namespace("default");
        let pdb = match c.get_opt(&r, "db").await.unwrap() {
            Some(p) => p,
            None => c
                .create(
                    &r,
                    json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                        "metadata": {"name": "db"},
                        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}}),
                    &WriteOptions::default(),
                )
                .await
                .unwrap(),
        };
        let mut pdb = pdb;
        pdb["status"] = json!({"observedGeneration": pdb["metadata"]["generation"],
            "disruptionsAllowed": allowed, "currentHealthy": 1, "desiredHealthy": 1,
            "expectedPods": 1});
        c.update_status(&r, pdb, &WriteOptions::default())
            .await
            .unwrap();
    }

    fn quick(timeout_ms: u64) -> DrainOptions {
        DrainOptions {
            timeout: Duration::from_millis(timeout_ms),
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(80),
            poll_interval: Duration::from_millis(10),
            ..DrainOptions::default()
        }
    }

    async fn pod_names(c: &dyn ApiClient) -> Vec<String> {
        c.list(&pods("default"), &ListOptions::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|p| str_at(p, "/metadata/name").to_string())
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn drain_cordons_evicts_and_skips_daemonset_and_mirror_pods() {
        let a = api().await;
        let c = &*a.client;
        running_pod(c, "web", json!({"app": "web"}), json!({})).await;
        running_pod(c, "solo", json!({}), json!({})).await;
        // A real owner, or the garbage collector would take the pod for an orphan.
        let ds = c
            .create(
                &ResourceRef::new("apps", "v1", "daemonsets").in_namespace("default"),
                json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
                    "metadata": {"name": "aws-node"},
                    "spec": {"selector": {"matchLabels": {"k8s-app": "aws-node"}},
                        "template": {"metadata": {"labels": {"k8s-app": "aws-node"}},
                            "spec": {"containers": [{"name": "c", "image": "cni"}]}}}}),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
        running_pod(
            c,
            "agent",
            json!({"k8s-app": "aws-node"}),
            json!({"ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet",
                "name": "aws-node", "uid": ds["metadata"]["uid"], "controller": true}]}),
        )
        .await;
        running_pod(
            c,
            "static",
            json!({}),
            json!({"annotations": {MIRROR_POD_ANNOTATION: "abc"}}),
        )
        .await;

        let out = cordon_and_drain(c, "n1", &quick(5_000)).await.unwrap();
        let mut evicted = out.evicted.clone();
        evicted.sort();
        assert_eq!(evicted, ["default/solo", "default/web"]);
        assert_eq!(out.skipped_daemonset, ["default/agent"]);
        assert_eq!(out.skipped_mirror, ["default/static"]);
        assert_eq!(out.budget_refusals, 0);
        let node = c.get(&nodes(), "n1").await.unwrap();
        assert_eq!(node["spec"]["unschedulable"], json!(true));
        let mut left = pod_names(c).await;
        left.sort();
        assert_eq!(left, ["agent", "static"]);
        assert_eq!(evictable_pods(c, "n1").await.unwrap(), Vec::<String>::new());

        uncordon(c, "n1").await.unwrap();
        let node = c.get(&nodes(), "n1").await.unwrap();
        assert!(node["spec"].get("unschedulable").is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_spent_budget_blocks_until_the_deadline() {
        let a = api().await;
        let c = &*a.client;
        running_pod(c, "db-0", json!({"app": "db"}), json!({})).await;
        running_pod(c, "web", json!({"app": "web"}), json!({})).await;
        budget(c, 0).await;

        let err = cordon_and_drain(c, "n1", &quick(400)).await.unwrap_err();
        match &err {
            DrainError::Timeout {
                pending,
                blocked_by_budget,
                ..
            } => {
                assert_eq!(pending, &["default/db-0"]);
                assert!(blocked_by_budget);
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(err.to_string().contains("disruption budget"), "{err}");
        // The unprotected pod went; the protected one stays and the node stays cordoned.
        assert_eq!(pod_names(c).await, ["db-0"]);
        let node = c.get(&nodes(), "n1").await.unwrap();
        assert_eq!(node["spec"]["unschedulable"], json!(true));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refusals_are_retried_until_the_budget_allows() {
        let a = api().await;
        let c = a.client.clone();
        running_pod(&*c, "db-0", json!({"app": "db"}), json!({})).await;
        budget(&*c, 0).await;
        let c2 = c.clone();
        let opener = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            budget(&*c2, 1).await;
        });
        let out = cordon_and_drain(&*c, "n1", &quick(10_000)).await.unwrap();
        opener.await.unwrap();
        assert_eq!(out.evicted, ["default/db-0"]);
        assert!(out.budget_refusals >= 1, "{out:?}");
        assert!(pod_names(&*c).await.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn force_deletes_what_the_budget_protects() {
        let a = api().await;
        let c = &*a.client;
        running_pod(c, "db-0", json!({"app": "db"}), json!({})).await;
        budget(c, 0).await;
        let opts = DrainOptions {
            force: true,
            ..quick(5_000)
        };
        let out = cordon_and_drain(c, "n1", &opts).await.unwrap();
        assert_eq!(out.deleted_ignoring_budget, ["default/db-0"]);
        assert!(out.evicted.is_empty());
        assert!(pod_names(c).await.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unknown_node_is_not_found() {
        let a = api().await;
        let err = cordon_and_drain(&*a.client, "nope", &quick(100))
            .await
            .unwrap_err();
        assert!(matches!(err, DrainError::NodeNotFound(ref n) if n == "nope"));
        assert_eq!(err.to_string(), "nodes \"nope\" not found");
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn drain_jobs_run_in_the_background_and_keep_their_result() {
        let a = api().await;
        running_pod(&*a.client, "db-0", json!({"app": "db"}), json!({})).await;
        budget(&*a.client, 0).await;
        let jobs = DrainJobs::default();
        let opts = quick(300);
        assert!(matches!(
            jobs.poll("c", "n1", a.client.clone(), opts.clone()),
            DrainPoll::Running
        ));
        assert!(jobs.knows("c", "n1"));
        let mut result = None;
        for _ in 0..200 {
            if let DrainPoll::Finished(r) = jobs.poll("c", "n1", a.client.clone(), opts.clone()) {
                result = Some(r);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let result = result.expect("the drain finished");
        assert!(
            matches!(result, Err(DrainError::Timeout { .. })),
            "{result:?}"
        );
        // Polled again: the same answer, no second drain.
        assert!(matches!(
            jobs.poll("c", "n1", a.client.clone(), opts.clone()),
            DrainPoll::Finished(Err(DrainError::Timeout { .. }))
        ));
        jobs.forget("c", "n1");
        assert!(!jobs.knows("c", "n1"));
    }
}
