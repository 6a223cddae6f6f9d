//! The nodegroup reconciler: EKS managed nodegroup records → an Auto Scaling group of EC2 instances
//! → one Node per instance in the cluster.
//!
//! The EKS API (`skiff_aws::eks::nodegroups`) only records nodegroups (`CREATING`, `UPDATING`, a
//! `DELETING` tombstone). For each nodegroup this loop makes what EKS makes:
//! - a launch template `eks-<uuid>` (from the user's template when one is given: its instance type,
//!   security groups, block devices and tags), with an instance profile `eks-<uuid>` for the node role;
//! - an Auto Scaling group `eks-<nodegroup>-<uuid>` (the uuid of the nodegroup ARN) tagged
//!   `eks:cluster-name`, `eks:nodegroup-name` and the cluster-autoscaler tags, propagated to its
//!   instances, which AutoScaling launches in the nodegroup's subnets;
//! - a Node per running instance, registered through the in-process client as `system:node:<name>`
//!   ([`crate::node_object`] has its shape), and removed when its instance is gone.
//!
//! The nodegroup turns `ACTIVE` (with `resources.autoScalingGroups`) once every desired instance has
//! its Node; an `UPDATING` one completes its updates the same way. Scaling an `ACTIVE` nodegroup's
//! group through AutoScaling (or terminating instances through EC2) is followed: Nodes track the
//! group's instances, and a terminated member is replaced as AutoScaling's health check does.
//! A deleted nodegroup's group is force-deleted (instances terminated), its Nodes deleted, its
//! launch template and instance profile removed, then its tombstone forgotten.
//!
//! Driving: [`NodegroupReconciler::sync`] reconciles everything recorded (start-up, and restarts:
//! instances are records and Nodes objects, so re-syncing creates nothing twice);
//! [`NodegroupReconciler::run`] follows the store and reconciles the nodegroups whose records,
//! groups or instances changed, one key at a time, coalescing bursts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use skiff_aws::context::RequestContext;
use skiff_aws::eks::nodegroups as records;
use skiff_aws_model::AwsError;
use skiff_k8s_core::client::{DeleteOptions, ListOptions, PatchOptions, ResourceRef, WriteOptions};
use skiff_k8s_core::patch::PatchType;
use skiff_k8s_core::status::ApiError;
use skiff_store::{EventKind, Revision, Store};
use tokio::sync::Notify;

use crate::cluster_dir::EksBinding;
use crate::control_plane::ControlPlanes;
use crate::drain::{DrainError, DrainJobs, DrainOptions, DrainPoll};
use crate::node_object::{self, NODEGROUP_LABEL, NodeSource};
use crate::service_context::service_context;

const AWS_PREFIX: &str = "/aws/";
const SCAN_PAGE: usize = 1000;
/// Node creates in flight at once: enough to keep the store's group commit full, few enough not to
/// starve the API server's other clients.
const NODE_WRITES_IN_FLIGHT: usize = 32;
/// How soon a nodegroup that is not there yet (cluster API not running, instances pending) is
/// looked at again.
const RETRY: Duration = Duration::from_millis(200);
/// How soon after an error.
const ERROR_RETRY: Duration = Duration::from_secs(2);
/// The identity that deletes Nodes of gone instances (upstream: the cloud node lifecycle controller).
const NODE_LIFECYCLE_USER: &str =
    "system:serviceaccount:kube-system:cloud-node-lifecycle-controller";

#[derive(Debug, thiserror::Error)]
pub enum NodegroupError {
    #[error("{0}")]
    Aws(#[from] AwsError),
    #[error("cluster API: {0}")]
    Api(#[from] ApiError),
    #[error("store: {0}")]
    Store(#[from] skiff_store::StoreError),
}

/// Which nodegroup: (account, region, cluster, nodegroup).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodegroupKey {
    pub account: String,
    pub region: String,
    pub cluster: String,
    pub nodegroup: String,
}

impl NodegroupKey {
    pub fn new(account: &str, region: &str, cluster: &str, nodegroup: &str) -> Self {
        Self {
            account: account.into(),
            region: region.into(),
            cluster: cluster.into(),
            nodegroup: nodegroup.into(),
        }
    }

    /// The control plane serving the nodegroup's cluster.
    pub(crate) fn plane_name(&self) -> String {
        EksBinding {
            account: self.account.clone(),
            region: self.region.clone(),
            name: self.cluster.clone(),
            issuer: String::new(),
        }
        .plane_name()
    }
}

/// What a reconcile left.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// The nodegroup matches its record (or is gone for good).
    Done,
    /// Something is not there yet; look again soon.
    Waiting(&'static str),
}

/// The Auto Scaling group name EKS gives a nodegroup: `eks-<nodegroup>-<uuid of its ARN>`.
pub fn group_name(nodegroup: &Value) -> Option<String> {
    let name = nodegroup["nodegroupName"].as_str()?;
    let uuid = arn_uuid(nodegroup)?;
    Some(format!("eks-{name}-{uuid}"))
}

pub(crate) fn arn_uuid(nodegroup: &Value) -> Option<&str> {
    nodegroup["nodegroupArn"]
        .as_str()?
        .rsplit('/')
        .next()
        .filter(|u| !u.is_empty())
}

/// The nodegroup a group or instance belongs to, from its `eks:` tags (`Tags` of either shape).
fn tagged_nodegroup(record: &Value) -> Option<(String, String)> {
    let tags = record["Tags"].as_array()?;
    let tag = |k: &str| {
        tags.iter()
            .find(|t| t["Key"] == k)
            .and_then(|t| t["Value"].as_str())
            .map(str::to_string)
    };
    Some((tag("eks:cluster-name")?, tag("eks:nodegroup-name")?))
}

/// (account, region, service, kind) of an `/aws/<account>/<region>/<service>/<kind>/…` key.
fn aws_key_parts(key: &str) -> Option<(&str, &str, &str, &str)> {
    let mut parts = key.strip_prefix(AWS_PREFIX)?.splitn(5, '/');
    Some((parts.next()?, parts.next()?, parts.next()?, parts.next()?))
}

/// The nodegroups a changed store key concerns (its record, tombstone, group or instances).
fn keys_of(key: &str, value: &[u8]) -> Vec<NodegroupKey> {
    if let Some((a, r, c, n)) =
        records::parse_nodegroup_key(key).or_else(|| records::parse_deleted_nodegroup_key(key))
    {
        return vec![NodegroupKey::new(a, r, c, n)];
    }
    match aws_key_parts(key) {
        Some((a, r, "ec2", "instance")) | Some((a, r, "autoscaling", "group")) => {
            serde_json::from_slice::<Value>(value)
                .ok()
                .as_ref()
                .and_then(tagged_nodegroup)
                .map(|(c, n)| vec![NodegroupKey::new(a, r, &c, &n)])
                .unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

/// Keys waiting for a reconcile, deduplicated (a burst of instance events is one reconcile).
#[derive(Default)]
struct Queue {
    dirty: std::sync::Mutex<BTreeSet<NodegroupKey>>,
    notify: Notify,
}

impl Queue {
    fn push(&self, key: NodegroupKey) {
        self.dirty
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key);
        self.notify.notify_one();
    }

    fn pop(&self) -> Option<NodegroupKey> {
        self.dirty
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_first()
    }

    fn push_later(self: &Arc<Self>, key: NodegroupKey, after: Duration) {
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            q.push(key);
        });
    }
}

/// The environment variable that shortens how long a node's drain may take before EKS gives up on
/// PodDisruptionBudgets (seconds; default [`crate::drain::EKS_DRAIN_TIMEOUT`], 15 minutes).
pub const DRAIN_TIMEOUT_ENV: &str = "SKIFF_EKS_DRAIN_TIMEOUT_SECONDS";

/// Who drains nodes (EKS's node manager identity).
pub(crate) const NODE_MANAGER_USER: &str = "eks:node-manager";

/// Drives nodegroup records to Auto Scaling groups, instances and Nodes.
pub struct NodegroupReconciler {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) planes: Arc<ControlPlanes>,
    queue: Arc<Queue>,
    pub(crate) drains: Arc<DrainJobs>,
    pub(crate) drain_timeout: Duration,
}

/// Where draining a set of nodes stands.
pub(crate) enum Drained {
    /// Some drain still runs.
    Running,
    /// Every drain ended; the nodes whose drain failed (timeout, budget) with why.
    Done(Vec<(String, DrainError)>),
    /// The cluster's API is not running: nothing to drain.
    NoCluster,
}

impl NodegroupReconciler {
    pub fn new(store: Arc<dyn Store>, planes: Arc<ControlPlanes>) -> Self {
        let drain_timeout = std::env::var(DRAIN_TIMEOUT_ENV)
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map_or(crate::drain::EKS_DRAIN_TIMEOUT, Duration::from_secs_f64);
        Self {
            store,
            planes,
            queue: Arc::new(Queue::default()),
            drains: Arc::new(DrainJobs::default()),
            drain_timeout,
        }
    }

    /// How long a node's drain may take before PodDisruptionBudgets are overridden (nodegroup delete,
    /// scale-in) or the update fails (`PodEvictionFailure`). Tests make it short.
    pub fn with_drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Drains `nodes` of `key`'s cluster in the background (cordon, evictions honouring budgets
    /// unless `force`), reporting where they stand; finished drains are forgotten once reported.
    pub(crate) async fn drain_nodes(
        &self,
        key: &NodegroupKey,
        nodes: &[String],
        force: bool,
    ) -> Drained {
        let plane = key.plane_name();
        let Some(client) = self.planes.client(&plane, NODE_MANAGER_USER).await else {
            return Drained::NoCluster;
        };
        let opts = DrainOptions {
            timeout: self.drain_timeout,
            force,
            ..DrainOptions::default()
        };
        let mut running = false;
        let mut failed = Vec::new();
        for node in nodes {
            match self.drains.poll(&plane, node, client.clone(), opts.clone()) {
                DrainPoll::Running => running = true,
                DrainPoll::Finished(Ok(_) | Err(DrainError::NodeNotFound(_))) => {}
                DrainPoll::Finished(Err(e)) => failed.push((node.clone(), e)),
            }
        }
        if running {
            return Drained::Running;
        }
        for node in nodes {
            self.drains.forget(&plane, node);
        }
        Drained::Done(failed)
    }

    /// Reconcile every nodegroup the store knows of (records, tombstones, and groups or instances
    /// tagged for one). Returns the revision the scan was made at (where [`run`](Self::run)
    /// resumes); nodegroups not finished yet are queued for `run`.
    pub async fn sync(&self) -> Result<Revision, NodegroupError> {
        let mut keys = BTreeSet::new();
        let mut start_after = None;
        let mut at = None;
        loop {
            let page = self
                .store
                .list(
                    AWS_PREFIX,
                    skiff_store::ListOptions {
                        at_revision: at,
                        start_after: start_after.take(),
                        limit: SCAN_PAGE,
                    },
                )
                .await?;
            at = Some(page.revision);
            for kv in &page.items {
                keys.extend(keys_of(&kv.key, &kv.value));
            }
            start_after = page.items.last().map(|kv| kv.key.clone());
            if !page.more || start_after.is_none() {
                break;
            }
        }
        for key in keys {
            self.reconcile_logged(key).await;
        }
        Ok(at.unwrap_or_default())
    }

    /// Follow the store from `from`, reconciling the nodegroups changes concern. Relists (a full
    /// [`sync`](Self::sync)) when the watch ends. Runs until aborted.
    pub async fn run(self, mut from: Revision) {
        let this = Arc::new(self);
        let worker = {
            let this = this.clone();
            tokio::spawn(async move {
                loop {
                    match this.queue.pop() {
                        Some(key) => this.reconcile_logged(key).await,
                        None => this.queue.notify.notified().await,
                    }
                }
            })
        };
        // The worker dies with this task (the caller aborts `run`).
        let _abort = AbortOnDrop(worker);
        loop {
            match this.store.watch(AWS_PREFIX, from).await {
                Ok(mut events) => {
                    while let Some(ev) = events.next().await {
                        let ev = match ev {
                            Ok(ev) => ev,
                            Err(e) => {
                                tracing::warn!(error = %e, "nodegroup watch ended; relisting");
                                break;
                            }
                        };
                        from = ev.kv.mod_revision;
                        let value = match (&ev.kind, &ev.prev) {
                            (EventKind::Delete, Some(prev)) => &prev.value,
                            _ => &ev.kv.value,
                        };
                        for key in keys_of(&ev.kv.key, value) {
                            this.queue.push(key);
                        }
                        // A cluster (re)started: its nodegroups can register Nodes now.
                        if ev.kind == EventKind::Put
                            && let Some((a, r, c)) =
                                crate::cluster_lifecycle::parse_cluster_key(&ev.kv.key)
                        {
                            this.queue_cluster(a, r, c).await;
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "watching nodegroups"),
            }
            tokio::time::sleep(RETRY).await;
            match this.sync().await {
                Ok(rev) => from = rev,
                Err(e) => tracing::warn!(error = %e, "relisting nodegroups"),
            }
        }
    }

    async fn queue_cluster(&self, account: &str, region: &str, cluster: &str) {
        match skiff_aws::eks::list_nodegroup_records(&*self.store, account, region, cluster).await {
            Ok(ngs) => {
                for ng in ngs {
                    if let Some(n) = ng["nodegroupName"].as_str() {
                        self.queue
                            .push(NodegroupKey::new(account, region, cluster, n));
                    }
                }
            }
            Err(e) => tracing::warn!(%cluster, error = %e, "listing nodegroups"),
        }
    }

    async fn reconcile_logged(&self, key: NodegroupKey) {
        match self.reconcile(&key).await {
            Ok(Progress::Done) => {}
            Ok(Progress::Waiting(why)) => {
                tracing::debug!(nodegroup = %key.nodegroup, why, "nodegroup not converged yet");
                self.queue.push_later(key, RETRY);
            }
            Err(e) => {
                tracing::warn!(cluster = %key.cluster, nodegroup = %key.nodegroup, error = %e, "nodegroup reconcile failed");
                self.queue.push_later(key, ERROR_RETRY);
            }
        }
    }

    /// Bring one nodegroup's group, instances and Nodes to what its record says (or remove them
    /// when the record is gone).
    pub async fn reconcile(&self, key: &NodegroupKey) -> Result<Progress, NodegroupError> {
        let ctx = service_context(self.store.clone(), &key.account, &key.region);
        let record = records::get_nodegroup_record(
            &*self.store,
            &key.account,
            &key.region,
            &key.cluster,
            &key.nodegroup,
        )
        .await?;
        let groups = groups_of(&ctx, &key.cluster, &key.nodegroup).await?;
        match record {
            Some(ng)
                if matches!(
                    ng["status"].as_str(),
                    Some("CREATING" | "UPDATING" | "ACTIVE" | "DEGRADED")
                ) =>
            {
                match self.converge(&ctx, key, &ng, groups).await {
                    Err(NodegroupError::Aws(e)) if ng["status"] == "CREATING" => {
                        // As EKS: a nodegroup that cannot be built is CREATE_FAILED, for good.
                        tracing::error!(nodegroup = %key.nodegroup, error = %e, "nodegroup creation failed");
                        records::set_nodegroup_status(
                            &*self.store,
                            &key.account,
                            &key.region,
                            &key.cluster,
                            &key.nodegroup,
                            "CREATE_FAILED",
                            &[],
                        )
                        .await?;
                        Ok(Progress::Done)
                    }
                    other => other,
                }
            }
            Some(_) => Ok(Progress::Done),
            None => self.tear_down(&ctx, key, groups).await,
        }
    }

    async fn converge(
        &self,
        ctx: &RequestContext,
        key: &NodegroupKey,
        ng: &Value,
        groups: Vec<Value>,
    ) -> Result<Progress, NodegroupError> {
        let Some(asg_name) = group_name(ng) else {
            return Ok(Progress::Done);
        };
        // Groups of an earlier nodegroup of the same name (deleted, then re-created) go.
        for g in groups
            .iter()
            .filter(|g| g["AutoScalingGroupName"] != asg_name.as_str())
        {
            delete_group(ctx, g).await?;
        }
        let (lt_id, lt_version) = ensure_launch_template(ctx, ng).await?;
        let status = ng["status"].as_str().unwrap_or_default();
        let scaling = &ng["scalingConfig"];
        let (min, max, desired) = (
            scaling["minSize"].as_i64().unwrap_or(0),
            scaling["maxSize"].as_i64().unwrap_or(1),
            scaling["desiredSize"].as_i64().unwrap_or(0),
        );
        let existing = groups
            .into_iter()
            .find(|g| g["AutoScalingGroupName"] == asg_name.as_str());
        // A version update rolls the nodes first (it owns the group's size meanwhile).
        if status == "UPDATING"
            && let Some(g) = &existing
            && let Some(target) = records::nodegroup_version_target(
                &*self.store,
                &key.account,
                &key.region,
                &key.cluster,
                &key.nodegroup,
            )
            .await?
        {
            match crate::nodegroup_update::roll(self, ctx, key, ng, &target, g).await? {
                crate::nodegroup_update::RollStep::Step(p) => return Ok(p),
                crate::nodegroup_update::RollStep::Finished => {}
            }
        }
        let mut instances = None;
        match &existing {
            None => create_group(ctx, key, ng, &asg_name, &lt_id, &lt_version).await?,
            Some(g) => {
                let current = (
                    g["MinSize"].as_i64().unwrap_or(0),
                    g["MaxSize"].as_i64().unwrap_or(0),
                    g["DesiredCapacity"].as_i64().unwrap_or(0),
                );
                // Scale-in: EKS drains the nodes it takes away before terminating them.
                if status != "ACTIVE" && desired < current.2 {
                    return self
                        .scale_in(ctx, key, g, (min, max, desired), current)
                        .await;
                }
                // The nodegroup's scaling config is pushed while it is being created or updated;
                // an ACTIVE nodegroup follows its group (cluster-autoscaler scales the group).
                if status != "ACTIVE" && current != (min, max, desired) {
                    skiff_aws::autoscaling::dispatch(
                        ctx,
                        "UpdateAutoScalingGroup",
                        json!({"AutoScalingGroupName": asg_name, "MinSize": min,
                               "MaxSize": max, "DesiredCapacity": desired}),
                    )
                    .await?;
                } else {
                    let members = member_ids(g);
                    let live = running_instances(ctx, &asg_name).await?;
                    let all_live = members
                        .iter()
                        .all(|m| live.iter().any(|i| i["InstanceId"] == m.as_str()));
                    if !all_live || members.len() as i64 != current.2 {
                        skiff_aws::autoscaling::reconcile_group(
                            ctx,
                            &asg_name,
                            "an instance was taken out of service in response to an EC2 health check indicating it has been terminated or stopped",
                        )
                        .await?;
                    } else {
                        instances = Some(live);
                    }
                }
            }
        }
        // Re-read what the steps above changed (a converged group is read once).
        let group = match (&existing, &instances) {
            (Some(g), Some(_)) => Some(g.clone()),
            _ => groups_of(ctx, &key.cluster, &key.nodegroup)
                .await?
                .into_iter()
                .find(|g| g["AutoScalingGroupName"] == asg_name.as_str()),
        };
        let Some(group) = group else {
            return Ok(Progress::Waiting("the Auto Scaling group is not there yet"));
        };
        let instances = match instances {
            Some(i) => i,
            None => running_instances(ctx, &asg_name).await?,
        };
        let Some(registered) = self
            .sync_nodes(key, ng, &instances, Some((&lt_id, &lt_version)))
            .await?
        else {
            return Ok(Progress::Waiting("the cluster's API is not running"));
        };
        let group_desired = group["DesiredCapacity"].as_i64().unwrap_or(0) as usize;
        if instances.len() != group_desired || registered != instances.len() {
            return Ok(Progress::Waiting("instances or Nodes missing"));
        }
        let recorded_groups = ng["resources"]["autoScalingGroups"]
            .as_array()
            .map(|a| a.iter().any(|g| g["name"] == asg_name.as_str()))
            .unwrap_or(false);
        if status != "ACTIVE" || !recorded_groups {
            for id in records::pending_nodegroup_updates(
                &*self.store,
                &key.account,
                &key.region,
                &key.cluster,
                &key.nodegroup,
            )
            .await?
            {
                skiff_aws::eks::complete_update(
                    &*self.store,
                    &key.account,
                    &key.region,
                    &key.cluster,
                    &id,
                    true,
                )
                .await?;
            }
            records::set_nodegroup_status(
                &*self.store,
                &key.account,
                &key.region,
                &key.cluster,
                &key.nodegroup,
                "ACTIVE",
                std::slice::from_ref(&asg_name),
            )
            .await?;
            tracing::info!(cluster = %key.cluster, nodegroup = %key.nodegroup, nodes = registered, "nodegroup active");
        }
        Ok(Progress::Done)
    }

    /// Shrinks the group to `want.2` the way EKS does: picks the instances AutoScaling would take
    /// away (from the zone with most members, newest first), drains their nodes (a blocking budget
    /// holds the update until the drain timeout, then the node goes anyway), and terminates them
    /// with the group's desired capacity decremented.
    async fn scale_in(
        &self,
        ctx: &RequestContext,
        key: &NodegroupKey,
        group: &Value,
        want: (i64, i64, i64),
        current: (i64, i64, i64),
    ) -> Result<Progress, NodegroupError> {
        let asg = group["AutoScalingGroupName"].as_str().unwrap_or_default();
        let surplus = (current.2 - want.2).max(0) as usize;
        let victims = scale_in_victims(group, surplus);
        let instances = running_instances(ctx, asg).await?;
        let nodes: Vec<String> = victims
            .iter()
            .filter_map(|id| {
                let inst = instances.iter().find(|i| i["InstanceId"] == id.as_str())?;
                node_object::node_name(inst).map(str::to_string)
            })
            .collect();
        match self.drain_nodes(key, &nodes, false).await {
            Drained::Running => return Ok(Progress::Waiting("draining nodes to scale in")),
            Drained::Done(failed) => {
                for (node, e) in failed {
                    tracing::warn!(cluster = %key.cluster, nodegroup = %key.nodegroup, node, error = %e, "scaling in without a complete drain");
                }
            }
            Drained::NoCluster => {}
        }
        if current.0 > want.0 {
            // Lower the floor first, or decrementing would go below it.
            skiff_aws::autoscaling::dispatch(
                ctx,
                "UpdateAutoScalingGroup",
                json!({"AutoScalingGroupName": asg, "MinSize": want.0}),
            )
            .await?;
        }
        for id in &victims {
            match skiff_aws::autoscaling::dispatch(
                ctx,
                "TerminateInstanceInAutoScalingGroup",
                json!({"InstanceId": id, "ShouldDecrementDesiredCapacity": true}),
            )
            .await
            {
                Ok(_) => {}
                Err(e) if e.message.contains("Instance Id not found") => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Progress::Waiting("scaled in; settling the group"))
    }

    /// Names of the cluster's Nodes labelled for this nodegroup (none when the cluster is stopped).
    pub(crate) async fn nodegroup_node_names(
        &self,
        key: &NodegroupKey,
    ) -> Result<Vec<String>, NodegroupError> {
        let Some(admin) = self
            .planes
            .client(&key.plane_name(), NODE_LIFECYCLE_USER)
            .await
        else {
            return Ok(Vec::new());
        };
        let listed = admin
            .list(
                &ResourceRef::new("", "v1", "nodes"),
                &ListOptions {
                    label_selector: Some(format!("{NODEGROUP_LABEL}={}", key.nodegroup)),
                    ..ListOptions::default()
                },
            )
            .await?;
        Ok(listed
            .items
            .iter()
            .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string))
            .collect())
    }

    /// Make the cluster's Nodes of this nodegroup match `instances`: register missing ones (each as
    /// its kubelet, `system:node:<name>`), bring labels and taints in line, delete Nodes whose
    /// instance is gone. Returns how many instances have their Node, or None when the cluster's API
    /// is not running.
    pub(crate) async fn sync_nodes(
        &self,
        key: &NodegroupKey,
        ng: &Value,
        instances: &[Value],
        launch_template: Option<(&str, &str)>,
    ) -> Result<Option<usize>, NodegroupError> {
        let plane = key.plane_name();
        let Some(admin) = self.planes.client(&plane, NODE_LIFECYCLE_USER).await else {
            return Ok(None);
        };
        let nodes_ref = ResourceRef::new("", "v1", "nodes");
        let listed = admin
            .list(
                &nodes_ref,
                &ListOptions {
                    label_selector: Some(format!("{NODEGROUP_LABEL}={}", key.nodegroup)),
                    ..ListOptions::default()
                },
            )
            .await?;
        let mut nodes: BTreeMap<String, Value> = listed
            .items
            .into_iter()
            .filter_map(|n| Some((n["metadata"]["name"].as_str()?.to_string(), n)))
            .collect();
        let disk_gib = ng["diskSize"].as_u64().unwrap_or(20);
        let mut wanted = BTreeMap::new();
        for inst in instances {
            if let Some(name) = node_object::node_name(inst) {
                wanted.insert(name.to_string(), inst);
            }
        }
        // Nodes of gone instances, or whose name a new instance took over (its address was reused).
        let mut stale = Vec::new();
        for (name, node) in &nodes {
            let keep = wanted.get(name).is_some_and(|inst| {
                node["spec"]["providerID"].as_str()
                    == Some(&node_object::provider_id(
                        inst["Placement"]["AvailabilityZone"]
                            .as_str()
                            .unwrap_or_default(),
                        inst["InstanceId"].as_str().unwrap_or_default(),
                    ))
            });
            if !keep {
                stale.push(name.clone());
            }
        }
        for name in &stale {
            match admin
                .delete(&nodes_ref, name, &DeleteOptions::default())
                .await
            {
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            nodes.remove(name);
        }
        let region = key.region.clone();
        let mut creates = Vec::new();
        let mut patches = Vec::new();
        for (name, inst) in &wanted {
            match nodes.get(name) {
                None => {
                    if let Some(node) = node_object::build_node(&NodeSource {
                        instance: inst,
                        nodegroup: ng,
                        region: &region,
                        launch_template,
                        disk_gib,
                    }) {
                        creates.push((name.clone(), node));
                    }
                }
                Some(node) => {
                    if let Some(p) = node_object::sync_patch(node, ng) {
                        patches.push((name.clone(), p));
                    }
                }
            }
        }
        let mut registered = wanted.len() - creates.len();
        let results: Vec<Result<(), ApiError>> = futures::stream::iter(creates)
            .map(|(name, node)| {
                let planes = self.planes.clone();
                let plane = plane.clone();
                let nodes_ref = nodes_ref.clone();
                async move {
                    let Some(kubelet) = planes.client(&plane, &format!("system:node:{name}")).await
                    else {
                        return Err(ApiError::ServiceUnavailable(format!(
                            "cluster {plane} stopped"
                        )));
                    };
                    match kubelet
                        .create(&nodes_ref, node, &WriteOptions::default())
                        .await
                    {
                        Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
                        Err(e) => Err(e),
                    }
                }
            })
            .buffer_unordered(NODE_WRITES_IN_FLIGHT)
            .collect()
            .await;
        for r in results {
            r?;
            registered += 1;
        }
        for (name, patch) in patches {
            admin
                .patch(
                    &nodes_ref,
                    &name,
                    PatchType::Merge,
                    patch,
                    &PatchOptions {
                        field_manager: Some("eks-nodegroup".into()),
                        ..PatchOptions::default()
                    },
                )
                .await?;
        }
        Ok(Some(registered))
    }

    /// The nodegroup's record is gone: drain its Nodes (EKS cordons and evicts before terminating;
    /// a PodDisruptionBudget holds the nodegroup `DELETING` until the drain timeout, after which the
    /// instances go anyway, as EKS forces), then delete its groups (terminating the instances),
    /// Nodes, launch templates and instance profiles, and forget the tombstone.
    async fn tear_down(
        &self,
        ctx: &RequestContext,
        key: &NodegroupKey,
        groups: Vec<Value>,
    ) -> Result<Progress, NodegroupError> {
        if !groups.is_empty() {
            let nodes = self.nodegroup_node_names(key).await?;
            match self.drain_nodes(key, &nodes, false).await {
                Drained::Running => return Ok(Progress::Waiting("draining the nodegroup's nodes")),
                Drained::Done(failed) => {
                    for (node, e) in failed {
                        tracing::warn!(cluster = %key.cluster, nodegroup = %key.nodegroup, node, error = %e, "terminating the node without a complete drain");
                    }
                }
                Drained::NoCluster => {}
            }
        }
        for g in &groups {
            delete_group(ctx, g).await?;
        }
        let no_instances: Vec<Value> = Vec::new();
        let ng = json!({"nodegroupName": key.nodegroup});
        // No instances left: every Node of the nodegroup is stale. A stopped cluster has none.
        self.sync_nodes(key, &ng, &no_instances, None).await?;
        records::forget_deleted_nodegroup(
            &*self.store,
            &key.account,
            &key.region,
            &key.cluster,
            &key.nodegroup,
        )
        .await?;
        if !groups.is_empty() {
            tracing::info!(cluster = %key.cluster, nodegroup = %key.nodegroup, "nodegroup deleted");
        }
        Ok(Progress::Done)
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The Auto Scaling groups tagged for this nodegroup.
async fn groups_of(
    ctx: &RequestContext,
    cluster: &str,
    nodegroup: &str,
) -> Result<Vec<Value>, AwsError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut input = json!({"Filters": [
            {"Name": "tag:eks:cluster-name", "Values": [cluster]},
            {"Name": "tag:eks:nodegroup-name", "Values": [nodegroup]},
        ], "MaxRecords": 100});
        if let Some(t) = &token {
            input["NextToken"] = json!(t);
        }
        let page =
            skiff_aws::autoscaling::dispatch(ctx, "DescribeAutoScalingGroups", input).await?;
        out.extend(
            page["AutoScalingGroups"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        match page["NextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => return Ok(out),
        }
    }
}

/// The members AutoScaling takes away first when shrinking by `count`: from the zone with most
/// members, the newest first, never those protected from scale-in.
pub fn scale_in_victims(group: &Value, count: usize) -> Vec<String> {
    let mut members: Vec<&Value> = group["Instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["ProtectedFromScaleIn"] != true)
        .collect();
    let mut out = Vec::new();
    while out.len() < count && !members.is_empty() {
        let mut by_zone: BTreeMap<&str, usize> = BTreeMap::new();
        for m in &members {
            *by_zone
                .entry(m["AvailabilityZone"].as_str().unwrap_or_default())
                .or_default() += 1;
        }
        let zone = by_zone
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(z, _)| z.to_string())
            .unwrap_or_default();
        let Some(pos) = members
            .iter()
            .rposition(|m| m["AvailabilityZone"].as_str().unwrap_or_default() == zone)
        else {
            break;
        };
        let m = members.remove(pos);
        if let Some(id) = m["InstanceId"].as_str() {
            out.push(id.to_string());
        }
    }
    out
}

pub(crate) fn member_ids(group: &Value) -> Vec<String> {
    group["Instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["InstanceId"].as_str().map(str::to_string))
        .collect()
}

/// The group's instances EC2 reports pending or running (they register as soon as they run); the
/// instance records, which carry everything a Node needs.
pub(crate) async fn running_instances(
    ctx: &RequestContext,
    group: &str,
) -> Result<Vec<Value>, AwsError> {
    Ok(skiff_aws::ec2::instances::instance_records(ctx)
        .await?
        .into_iter()
        .filter(|i| matches!(i["State"]["Name"].as_str(), Some("pending" | "running")))
        .filter(|i| {
            i["Tags"].as_array().is_some_and(|tags| {
                tags.iter()
                    .any(|t| t["Key"] == "aws:autoscaling:groupName" && t["Value"] == group)
            })
        })
        .collect())
}

/// The AMI id EKS would pick for an AMI type and Kubernetes version in a region (a stable id per
/// triple; the EKS-optimized AMIs' real ids are published through SSM, which Skiff does not serve).
pub fn eks_ami_id(ami_type: &str, version: &str, region: &str) -> String {
    // FNV-1a: stable across runs and builds, unlike the std hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{ami_type}/{version}/{region}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("ami-0{h:016x}")
}

fn is_code(e: &AwsError, codes: &[&str]) -> bool {
    codes.iter().any(|c| e.code == *c)
}

/// The instance profile `eks-<uuid>` holding the node role (EKS makes one per nodegroup). Returns
/// its ARN.
async fn ensure_instance_profile(
    ctx: &RequestContext,
    name: &str,
    node_role_arn: &str,
) -> Result<String, AwsError> {
    let role = node_role_arn.rsplit('/').next().unwrap_or_default();
    let arn = match skiff_aws::iam::dispatch(
        ctx,
        "CreateInstanceProfile",
        json!({"InstanceProfileName": name}),
    )
    .await
    {
        Ok(out) => out["InstanceProfile"]["Arn"].as_str().map(str::to_string),
        Err(e) if is_code(&e, &["EntityAlreadyExists"]) => None,
        Err(e) => return Err(e),
    };
    match skiff_aws::iam::dispatch(
        ctx,
        "AddRoleToInstanceProfile",
        json!({"InstanceProfileName": name, "RoleName": role}),
    )
    .await
    {
        Ok(_) => {}
        Err(e) if is_code(&e, &["LimitExceeded", "EntityAlreadyExists"]) => {}
        Err(e) => return Err(e),
    }
    Ok(arn.unwrap_or_else(|| format!("arn:aws:iam::{}:instance-profile/{name}", ctx.account_id)))
}

/// The EKS-made launch template `eks-<uuid>` of a nodegroup, created on first use from the nodegroup
/// (and the user's launch template, when given). Returns (id, version).
async fn ensure_launch_template(
    ctx: &RequestContext,
    ng: &Value,
) -> Result<(String, String), AwsError> {
    let uuid = arn_uuid(ng).unwrap_or_default();
    let name = format!("eks-{uuid}");
    match skiff_aws::ec2::dispatch(
        ctx,
        "DescribeLaunchTemplates",
        json!({"LaunchTemplateNames": [name]}),
    )
    .await
    {
        Ok(out) => {
            if let Some(lt) = out["LaunchTemplates"].as_array().and_then(|a| a.first()) {
                return Ok((
                    lt["LaunchTemplateId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    lt["LatestVersionNumber"].as_i64().unwrap_or(1).to_string(),
                ));
            }
        }
        Err(e) if e.code.starts_with("InvalidLaunchTemplateName") => {}
        Err(e) => return Err(e),
    }
    let data = launch_template_data(
        ctx,
        ng,
        &name,
        ng["launchTemplate"].as_object(),
        ng["version"].as_str().unwrap_or_default(),
    )
    .await?;
    let cluster = ng["clusterName"].as_str().unwrap_or_default();
    let nodegroup = ng["nodegroupName"].as_str().unwrap_or_default();
    let out = skiff_aws::ec2::dispatch(
        ctx,
        "CreateLaunchTemplate",
        json!({"LaunchTemplateName": name, "LaunchTemplateData": data,
               "TagSpecifications": [{"ResourceType": "launch-template", "Tags": [
                   {"Key": "eks:cluster-name", "Value": cluster},
                   {"Key": "eks:nodegroup-name", "Value": nodegroup}]}]}),
    )
    .await?;
    let lt = &out["LaunchTemplate"];
    Ok((
        lt["LaunchTemplateId"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        lt["LatestVersionNumber"].as_i64().unwrap_or(1).to_string(),
    ))
}

/// The data of the EKS-made launch template of `ng` whose nodes run Kubernetes `version`: from the
/// user's launch template (`id`/`name`, `version`) when given (its instance type, image, security
/// groups, block devices, tags, user data), else the EKS AMI of the version and the nodegroup's
/// instance type and disk.
pub(crate) async fn launch_template_data(
    ctx: &RequestContext,
    ng: &Value,
    name: &str,
    user_template: Option<&serde_json::Map<String, Value>>,
    version: &str,
) -> Result<Value, AwsError> {
    let user = match user_template {
        Some(spec) => {
            let mut s = json!({});
            if let Some(id) = spec.get("id") {
                s["LaunchTemplateId"] = id.clone();
            }
            if let Some(n) = spec.get("name") {
                s["LaunchTemplateName"] = n.clone();
            }
            if let Some(v) = spec.get("version") {
                s["Version"] = v.clone();
            }
            Some(skiff_aws::ec2::resolve_launch_template(ctx, &s).await?.data)
        }
        None => None,
    };
    let user = user.unwrap_or_else(|| json!({}));
    let instance_type = user["InstanceType"]
        .as_str()
        .map(str::to_string)
        .or_else(|| ng["instanceTypes"][0].as_str().map(str::to_string))
        .unwrap_or_else(|| "t3.medium".to_string());
    let image = user["ImageId"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            eks_ami_id(
                ng["amiType"].as_str().unwrap_or_default(),
                version,
                &ctx.region,
            )
        });
    let profile =
        ensure_instance_profile(ctx, name, ng["nodeRole"].as_str().unwrap_or_default()).await?;
    let mut data = json!({
        "ImageId": image,
        "InstanceType": instance_type,
        "IamInstanceProfile": {"Arn": profile},
        "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2},
    });
    let bdm = user["BlockDeviceMappings"].clone();
    data["BlockDeviceMappings"] = if bdm.is_array() {
        bdm
    } else {
        json!([{"DeviceName": "/dev/xvda", "Ebs": {
            "VolumeSize": ng["diskSize"].as_i64().unwrap_or(20), "VolumeType": "gp3",
            "DeleteOnTermination": true}}])
    };
    let mut groups: Vec<Value> = user["SecurityGroupIds"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if groups.is_empty()
        && let Ok(Some(cluster)) = skiff_aws::eks::get_cluster(
            &*ctx.store,
            &ctx.account_id,
            &ctx.region,
            ng["clusterName"].as_str().unwrap_or_default(),
        )
        .await
        && let Some(sg) = cluster["resourcesVpcConfig"]["clusterSecurityGroupId"].as_str()
    {
        // EKS's default: the cluster security group.
        groups.push(json!(sg));
    }
    if !groups.is_empty() {
        data["SecurityGroupIds"] = json!(groups);
    }
    if user["TagSpecifications"].is_array() {
        data["TagSpecifications"] = user["TagSpecifications"].clone();
    }
    if let Some(u) = user["UserData"].as_str() {
        data["UserData"] = json!(u);
    }
    Ok(data)
}

/// CreateAutoScalingGroup for the nodegroup: its subnets, scaling config and EKS's tags (propagated
/// to the instances). AutoScaling launches the instances in the same call.
async fn create_group(
    ctx: &RequestContext,
    key: &NodegroupKey,
    ng: &Value,
    name: &str,
    lt_id: &str,
    lt_version: &str,
) -> Result<(), AwsError> {
    let scaling = &ng["scalingConfig"];
    let subnets: Vec<&str> = ng["subnets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let cluster = key.cluster.as_str();
    let tags: Vec<Value> = [
        ("eks:cluster-name", cluster.to_string()),
        ("eks:nodegroup-name", key.nodegroup.clone()),
        ("k8s.io/cluster-autoscaler/enabled", "true".to_string()),
        (
            &format!("k8s.io/cluster-autoscaler/{cluster}"),
            "owned".to_string(),
        ),
        (
            &format!("kubernetes.io/cluster/{cluster}"),
            "owned".to_string(),
        ),
    ]
    .iter()
    .map(|(k, v)| json!({"Key": k, "Value": v, "PropagateAtLaunch": true}))
    .collect();
    let spec = json!({"LaunchTemplateId": lt_id, "Version": lt_version});
    let mut input = json!({
        "AutoScalingGroupName": name,
        "MinSize": scaling["minSize"].as_i64().unwrap_or(0),
        "MaxSize": scaling["maxSize"].as_i64().unwrap_or(1),
        "DesiredCapacity": scaling["desiredSize"].as_i64().unwrap_or(0),
        "VPCZoneIdentifier": subnets.join(","),
        "Tags": tags,
        "CapacityRebalance": ng["capacityType"] == "SPOT",
    });
    let types: Vec<&str> = ng["instanceTypes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if types.len() > 1 {
        input["MixedInstancesPolicy"] = json!({"LaunchTemplate": {
            "LaunchTemplateSpecification": spec,
            "Overrides": types.iter().map(|t| json!({"InstanceType": t})).collect::<Vec<_>>(),
        }});
    } else {
        input["LaunchTemplate"] = spec;
    }
    match skiff_aws::autoscaling::dispatch(ctx, "CreateAutoScalingGroup", input).await {
        Ok(_) => Ok(()),
        // Created by an earlier pass that failed later: the next pass takes it from there.
        Err(e) if e.code == "AlreadyExists" => Ok(()),
        Err(e) => Err(e),
    }
}

/// Force-delete a group (terminating its instances) and the launch template and instance profile
/// EKS made for it.
async fn delete_group(ctx: &RequestContext, group: &Value) -> Result<(), AwsError> {
    let name = group["AutoScalingGroupName"].as_str().unwrap_or_default();
    match skiff_aws::autoscaling::dispatch(
        ctx,
        "DeleteAutoScalingGroup",
        json!({"AutoScalingGroupName": name, "ForceDelete": true}),
    )
    .await
    {
        Ok(_) => {}
        Err(e) if e.message.contains("not found") => {}
        Err(e) => return Err(e),
    }
    let spec = if group["LaunchTemplate"].is_object() {
        &group["LaunchTemplate"]
    } else {
        &group["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
    };
    if let Some(id) = spec["LaunchTemplateId"].as_str() {
        let lt = skiff_aws::ec2::dispatch(
            ctx,
            "DescribeLaunchTemplates",
            json!({"LaunchTemplateIds": [id]}),
        )
        .await
        .ok();
        let lt_name = lt
            .as_ref()
            .and_then(|o| o["LaunchTemplates"][0]["LaunchTemplateName"].as_str())
            .map(str::to_string);
        if let Some(lt_name) = lt_name.filter(|n| n.starts_with("eks-")) {
            let _ = skiff_aws::ec2::dispatch(
                ctx,
                "DeleteLaunchTemplate",
                json!({"LaunchTemplateId": id}),
            )
            .await;
            // The instance profile shares the template's name.
            if let Ok(p) = skiff_aws::iam::dispatch(
                ctx,
                "GetInstanceProfile",
                json!({"InstanceProfileName": lt_name}),
            )
            .await
            {
                for r in p["InstanceProfile"]["Roles"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let _ = skiff_aws::iam::dispatch(
                        ctx,
                        "RemoveRoleFromInstanceProfile",
                        json!({"InstanceProfileName": lt_name, "RoleName": r["RoleName"]}),
                    )
                    .await;
                }
                let _ = skiff_aws::iam::dispatch(
                    ctx,
                    "DeleteInstanceProfile",
                    json!({"InstanceProfileName": lt_name}),
                )
                .await;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_name_is_eks_nodegroup_uuid() {
        let ng = json!({"nodegroupName": "ng", "nodegroupArn":
            "arn:aws:eks:us-east-1:000000000000:nodegroup/prod/ng/6ac9a1b2-0000-4000-8000-000000000001"});
        assert_eq!(
            group_name(&ng).unwrap(),
            "eks-ng-6ac9a1b2-0000-4000-8000-000000000001"
        );
    }

    #[test]
    fn changed_keys_name_their_nodegroup() {
        let inst = json!({"Tags": [{"Key": "eks:cluster-name", "Value": "prod"},
                                   {"Key": "eks:nodegroup-name", "Value": "ng"}]});
        let bytes = serde_json::to_vec(&inst).unwrap();
        let want = vec![NodegroupKey::new("1", "us-east-1", "prod", "ng")];
        assert_eq!(keys_of("/aws/1/us-east-1/ec2/instance/i-1", &bytes), want);
        assert_eq!(
            keys_of("/aws/1/us-east-1/autoscaling/group/g", &bytes),
            want
        );
        assert_eq!(
            keys_of("/aws/1/us-east-1/eks/nodegroup/prod/ng", b"{}"),
            want
        );
        assert_eq!(
            keys_of("/aws/1/us-east-1/eks/nodegroup-deleting/prod/ng", b"{}"),
            want
        );
        assert!(keys_of("/aws/1/us-east-1/ec2/volume/v-1", &bytes).is_empty());
        assert!(keys_of("/aws/1/us-east-1/ec2/instance/i-2", b"{\"Tags\": []}").is_empty());
    }

    #[test]
    fn ami_ids_are_stable_and_well_formed() {
        let a = eks_ami_id("AL2023_x86_64_STANDARD", "1.33", "us-east-1");
        assert_eq!(a, eks_ami_id("AL2023_x86_64_STANDARD", "1.33", "us-east-1"));
        assert_ne!(a, eks_ami_id("AL2023_ARM_64_STANDARD", "1.33", "us-east-1"));
        assert_eq!(a.len(), "ami-".len() + 17);
    }
}
