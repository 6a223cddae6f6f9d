//! The Cluster Autoscaler, built into every EKS cluster as upstream's AWS provider runs it with
//! `--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/<cluster>`:
//! the Auto Scaling groups carrying both tags (every managed nodegroup's group does) are the node
//! groups, sized within their `MinSize`/`MaxSize`.
//!
//! Each scan (`scan-interval`, 10 s) it
//! - grows a group with `SetDesiredCapacity` when pods the scheduler marked `Unschedulable` would
//!   fit new nodes of that group (the scheduler's own filters over a simulated cache, template
//!   nodes from a live node of the group or, from zero, the launch template's instance type and the
//!   nodegroup's labels and taints plus the `node-template` tags), the group chosen by the expander;
//!   pods get `TriggeredScaleUp` or `NotTriggerScaleUp`;
//! - removes a node whose requests stay below `scale-down-utilization-threshold` for
//!   `scale-down-unneeded-time` and whose pods can all go elsewhere (the drainability rules of
//!   [`crate::cluster_autoscaler_model::RULES`], PodDisruptionBudgets): taint
//!   `ToBeDeletedByClusterAutoscaler`, [`crate::drain::cordon_and_drain`], then
//!   `TerminateInstanceInAutoScalingGroup --should-decrement-desired-capacity`;
//! - writes `kube-system/cluster-autoscaler-status`.
//!
//! Everything it does to AWS is an AutoScaling call a user can see in
//! `describe-scaling-activities`. Options come from the ConfigMap
//! `kube-system/cluster-autoscaler-config` (keys are upstream's flag names) and per group from
//! the `…/node-template/autoscaling-options/*` tags; `docs/cluster-autoscaler.md` lists them.
//!
//! Cost when idle: informer handlers only raise a flag; with nothing changed, nothing pending and
//! no node being watched for scale-down a scan is skipped, except once a minute to refresh the
//! status ConfigMap.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use skiff_aws::context::RequestContext;
use skiff_aws::eks::nodegroups as ng_records;
use skiff_aws_model::AwsError;
use skiff_controllers::runtime::SystemClock;
use skiff_controllers::runtime::events::{EventRecorder, EventType};
use skiff_controllers::runtime::informer::{Cache as ObjectCache, Change, key_of};
use skiff_k8s_core::client::{ApiClient, ResourceRef, WriteOptions};
use skiff_k8s_core::selector::Selector;
use skiff_k8s_core::status::ApiError;
use skiff_scheduler::cache::Cache;
use skiff_scheduler::framework::Profile;
use skiff_scheduler::model::{NodeSpec, PodInfo};
use skiff_store::Store;
use tokio::sync::{Notify, watch};

use crate::cluster_autoscaler_model::{
    self as model, CONFIG_CONFIGMAP, ClusterStatus, Counts, GroupStatus, NodeGroup, Options,
    PodFacts, SCALE_DOWN_DISABLED, STATUS_CONFIGMAP, TO_BE_DELETED_TAINT, Verdict,
};
use crate::cluster_dir::EksBinding;
use crate::drain::{self, DrainOptions};
use crate::node_object;

/// The identity it acts as (its ServiceAccount in the Helm chart).
pub const USER: &str = "system:serviceaccount:kube-system:cluster-autoscaler";
/// Event source.
pub const COMPONENT: &str = "cluster-autoscaler";
/// The status ConfigMap is rewritten at least this often even when nothing changed.
const STATUS_REFRESH: Duration = Duration::from_secs(60);

fn pods() -> ResourceRef {
    ResourceRef::new("", "v1", "pods")
}
fn nodes() -> ResourceRef {
    ResourceRef::new("", "v1", "nodes")
}
fn configmaps() -> ResourceRef {
    ResourceRef::new("", "v1", "configmaps")
}
fn pdbs() -> ResourceRef {
    ResourceRef::new("policy", "v1", "poddisruptionbudgets")
}
fn pvcs() -> ResourceRef {
    ResourceRef::new("", "v1", "persistentvolumeclaims")
}
fn pvs() -> ResourceRef {
    ResourceRef::new("", "v1", "persistentvolumes")
}
fn storage_classes() -> ResourceRef {
    ResourceRef::new("storage.k8s.io", "v1", "storageclasses")
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum AutoscalerError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("{}: {}", .0.code, .0.message)]
    Aws(AwsError),
    #[error(transparent)]
    Drain(#[from] drain::DrainError),
}

impl From<AwsError> for AutoscalerError {
    fn from(e: AwsError) -> Self {
        AutoscalerError::Aws(e)
    }
}

/// What the informers hold.
#[derive(Clone)]
pub struct Caches {
    pub pods: ObjectCache,
    pub nodes: ObjectCache,
    pub configmaps: ObjectCache,
    pub pdbs: ObjectCache,
    pub pvcs: ObjectCache,
    pub pvs: ObjectCache,
    pub storage_classes: ObjectCache,
}

/// Timers and in-flight work shared by the scan loop and the node deletions it spawns.
#[derive(Default)]
struct Shared {
    /// Nodes being drained and terminated → their group.
    deleting: BTreeMap<String, String>,
    last_delete: Option<Instant>,
    last_failure: Option<Instant>,
}

/// One cluster's autoscaler.
pub struct Autoscaler {
    client: Arc<dyn ApiClient>,
    store: Arc<dyn Store>,
    binding: EksBinding,
    caches: Caches,
    events: Arc<EventRecorder>,
    profile: Profile,
    /// Set by informer handlers when something that matters changed.
    dirty: Arc<AtomicBool>,
    shared: Arc<Mutex<Shared>>,
    /// Node → when it was first seen unneeded.
    unneeded_since: HashMap<String, Instant>,
    last_scale_up: Option<Instant>,
    /// Condition key → (status, since) for `lastTransitionTime`.
    transitions: HashMap<String, (String, jiff::Timestamp)>,
    last_status: Option<(ClusterStatus, Instant)>,
    /// The last scan left unschedulable pods no group could help: keep scanning (a group's max
    /// may be raised through AutoScaling, which no informer sees).
    pods_waiting: bool,
    rng: u64,
}

/// What one scan did (for tests and logs).
#[derive(Debug, Default, PartialEq)]
pub struct ScanOutcome {
    /// `(group, from, to)` of a scale-up.
    pub scaled_up: Option<(String, i64, i64)>,
    /// Nodes whose removal started.
    pub removing: Vec<String>,
    /// Nodes currently unneeded.
    pub unneeded: Vec<String>,
}

fn with_kind(obj: &Value, kind: &str) -> Value {
    let mut o = obj.clone();
    o["kind"] = json!(kind);
    if o["apiVersion"].is_null() {
        o["apiVersion"] = json!("v1");
    }
    o
}

fn is_ready(node: &Value) -> bool {
    node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn has_taint(node: &Value, key: &str) -> bool {
    node["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["key"] == key)
}

fn instance_of(node: &Value) -> Option<&str> {
    node["spec"]["providerID"]
        .as_str()
        .and_then(node_object::instance_of_provider_id)
}

/// What of a Node matters to the autoscaler (heartbeats do not).
fn node_fingerprint(n: &Value) -> String {
    format!(
        "{}|{}|{}|{}|{}|{}",
        n["metadata"]["labels"],
        n["spec"]["taints"],
        n["spec"]["unschedulable"],
        n["status"]["allocatable"],
        is_ready(n),
        n["spec"]["providerID"]
    )
}

/// Registers the informers the autoscaler reads; handlers only raise `dirty` (and `wake` for a
/// configuration change, so a new `scan-interval` applies at once).
pub fn register(
    informers: &mut skiff_controllers::Informers,
    dirty: Arc<AtomicBool>,
    wake: Arc<Notify>,
) -> Caches {
    let caches = Caches {
        pods: informers.cache(pods()),
        nodes: informers.cache(nodes()),
        configmaps: informers.cache(configmaps()),
        pdbs: informers.cache(pdbs()),
        pvcs: informers.cache(pvcs()),
        pvs: informers.cache(pvs()),
        storage_classes: informers.cache(storage_classes()),
    };
    for r in [pods(), pdbs(), pvcs(), pvs(), storage_classes()] {
        let d = dirty.clone();
        informers
            .get(r)
            .add_handler(Arc::new(move |_: &Change| d.store(true, Ordering::Release)));
    }
    let d = dirty.clone();
    let seen: Mutex<HashMap<String, String>> = Default::default();
    informers
        .get(nodes())
        .add_handler(Arc::new(move |c: &Change| {
            let print = match c {
                Change::Deleted(_) => String::new(),
                _ => node_fingerprint(c.object()),
            };
            let before = seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key_of(c.object()), print.clone());
            if before.as_deref() != Some(print.as_str()) {
                d.store(true, Ordering::Release);
            }
        }));
    informers
        .get(configmaps())
        .add_handler(Arc::new(move |c: &Change| {
            if key_of(c.object()) == format!("kube-system/{CONFIG_CONFIGMAP}") {
                dirty.store(true, Ordering::Release);
                wake.notify_one();
            }
        }));
    caches
}

/// Runs the autoscaler of one cluster until `shutdown` flips.
pub async fn run(
    client: Arc<dyn ApiClient>,
    store: Arc<dyn Store>,
    binding: EksBinding,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut informers = skiff_controllers::Informers::new(client.clone());
    let dirty = Arc::new(AtomicBool::new(true));
    let wake = Arc::new(Notify::new());
    let caches = register(&mut informers, dirty.clone(), wake.clone());
    let tasks = informers.start(shutdown.clone()).await;
    let mut ca = Autoscaler::new(client, store, binding, caches, dirty);
    loop {
        let interval = ca.options().scan_interval;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = wake.notified() => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        if !ca.has_work() {
            continue;
        }
        if let Err(e) = ca.scan().await {
            tracing::warn!(cluster = %ca.binding.name, error = %e, "cluster-autoscaler scan failed");
        }
    }
    for t in tasks {
        t.abort();
    }
}

impl Autoscaler {
    pub fn new(
        client: Arc<dyn ApiClient>,
        store: Arc<dyn Store>,
        binding: EksBinding,
        caches: Caches,
        dirty: Arc<AtomicBool>,
    ) -> Self {
        let events = EventRecorder::new(client.clone(), COMPONENT, Arc::new(SystemClock));
        Self {
            client,
            store,
            binding,
            caches,
            events,
            profile: skiff_scheduler::plugins::default_profile(),
            dirty,
            shared: Default::default(),
            unneeded_since: HashMap::new(),
            last_scale_up: None,
            transitions: HashMap::new(),
            last_status: None,
            pods_waiting: false,
            rng: 0x2545_F491_4F6C_DD1D,
        }
    }

    /// The options of the `cluster-autoscaler-config` ConfigMap (defaults without one).
    pub fn options(&self) -> Options {
        let data = self
            .caches
            .configmaps
            .get(&format!("kube-system/{CONFIG_CONFIGMAP}"))
            .map(|cm| cm["data"].clone())
            .unwrap_or(Value::Null);
        let (o, problems) = Options::from_config(&data);
        for p in problems {
            tracing::debug!(cluster = %self.binding.name, "cluster-autoscaler-config: {p}");
        }
        o
    }

    /// Whether a scan could do anything: something changed, a node is being watched for
    /// scale-down or removed, or the status is due for a refresh.
    fn has_work(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
            || self.pods_waiting
            || !self.unneeded_since.is_empty()
            || !self.lock().deleting.is_empty()
            || self
                .last_status
                .as_ref()
                .is_none_or(|(_, at)| at.elapsed() >= STATUS_REFRESH)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn aws(&self) -> RequestContext {
        let mut ctx = crate::service_context::service_context(
            self.store.clone(),
            &self.binding.account,
            &self.binding.region,
        );
        ctx.caller.arn = format!(
            "arn:aws:sts::{}:assumed-role/AmazonEKSClusterAutoscalerRole/cluster-autoscaler",
            self.binding.account
        );
        ctx
    }

    async fn call(&self, op: &str, input: Value) -> Result<Value, AwsError> {
        skiff_aws::autoscaling::dispatch(&self.aws(), op, input).await
    }

    /// The tagged groups of this cluster, with their raw records (for templates from zero).
    async fn discover(&self) -> Result<Vec<(NodeGroup, Value)>, AwsError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut input = json!({"Filters": [
                {"Name": "tag-key", "Values": [model::ENABLED_TAG]},
                {"Name": "tag-key", "Values": [format!("{}{}", model::CLUSTER_TAG_PREFIX, self.binding.name)]},
            ], "MaxRecords": 100});
            if let Some(t) = &token {
                input["NextToken"] = json!(t);
            }
            let page = self.call("DescribeAutoScalingGroups", input).await?;
            for g in page["AutoScalingGroups"].as_array().into_iter().flatten() {
                if let Some(ng) = NodeGroup::discover(g, &self.binding.name) {
                    out.push((ng, g.clone()));
                }
            }
            match page["NextToken"].as_str() {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        Ok(out)
    }

    /// A template Node for a group with no live node: the launch template's instance type with
    /// the nodegroup's labels and taints, as upstream's AWS provider builds it from
    /// DescribeLaunchTemplateVersions and DescribeNodegroup.
    async fn template_from_zero(
        &self,
        group: &NodeGroup,
        record: &Value,
        name: &str,
    ) -> Option<Value> {
        let ctx = self.aws();
        let spec = if record["LaunchTemplate"].is_object() {
            record["LaunchTemplate"].clone()
        } else {
            record["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"].clone()
        };
        let override_type =
            record["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"][0]["InstanceType"]
                .as_str()
                .map(str::to_string);
        let resolved = skiff_aws::ec2::resolve_launch_template(&ctx, &spec)
            .await
            .ok();
        let instance_type = override_type.or_else(|| {
            resolved
                .as_ref()
                .and_then(|r| r.data["InstanceType"].as_str().map(str::to_string))
        })?;
        let nodegroup = match group.tags.get("eks:nodegroup-name") {
            Some(ng) => ng_records::get_nodegroup_record(
                &*self.store,
                &self.binding.account,
                &self.binding.region,
                &self.binding.name,
                ng,
            )
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| json!({"nodegroupName": ng})),
            None => json!({}),
        };
        let zone = group.zones.first().cloned().unwrap_or_default();
        let instance = json!({
            "InstanceId": "i-00000000000000000",
            "PrivateDnsName": name,
            "PrivateIpAddress": "0.0.0.0",
            "InstanceType": instance_type,
            "ImageId": resolved.as_ref().map(|r| r.data["ImageId"].clone()).unwrap_or_default(),
            "Placement": {"AvailabilityZone": zone},
        });
        let mut node = node_object::build_node(&node_object::NodeSource {
            instance: &instance,
            nodegroup: &nodegroup,
            region: &self.binding.region,
            launch_template: None,
            disk_gib: nodegroup["diskSize"].as_u64().unwrap_or(20),
        })?;
        if let Some(labels) = node["metadata"]["labels"].as_object_mut()
            && labels
                .get(node_object::NODEGROUP_LABEL)
                .is_some_and(|v| v == "")
        {
            labels.remove(node_object::NODEGROUP_LABEL);
        }
        Some(model::template_node(&node, group, name))
    }

    /// One scan: scale up for unschedulable pods, else look for nodes to remove; then the status.
    pub async fn scan(&mut self) -> Result<ScanOutcome, AutoscalerError> {
        self.dirty.store(false, Ordering::Release);
        let options = self.options();
        let now = Instant::now();
        let groups = self.discover().await?;
        let nodes = self.caches.nodes.list(None);
        let all_pods = self.caches.pods.list(None);
        let deleting: BTreeMap<String, String> = self.lock().deleting.clone();

        // Which group each node belongs to, by its instance.
        let mut group_of_instance: HashMap<&str, usize> = HashMap::new();
        for (i, (g, _)) in groups.iter().enumerate() {
            for id in &g.instances {
                group_of_instance.insert(id.as_str(), i);
            }
        }
        let mut group_nodes: Vec<Vec<&Value>> = vec![Vec::new(); groups.len()];
        let mut node_group: HashMap<String, usize> = HashMap::new();
        for n in &nodes {
            if let Some(gi) = instance_of(n).and_then(|id| group_of_instance.get(id)) {
                group_nodes[*gi].push(n);
                node_group.insert(
                    n["metadata"]["name"].as_str().unwrap_or_default().into(),
                    *gi,
                );
            }
        }

        // The simulated cluster: usable nodes and the pods bound to them.
        let mut cache = Cache::new();
        for pvc in self.caches.pvcs.list(None) {
            cache.pvcs.insert(key_of(&pvc), pvc);
        }
        for pv in self.caches.pvs.list(None) {
            cache.pvs.insert(key_of(&pv), pv);
        }
        for sc in self.caches.storage_classes.list(None) {
            cache.storage_classes.insert(key_of(&sc), sc);
        }
        let mut usable: Vec<String> = Vec::new();
        for n in &nodes {
            let name = n["metadata"]["name"].as_str().unwrap_or_default();
            if is_ready(n) && !has_taint(n, TO_BE_DELETED_TAINT) && !deleting.contains_key(name) {
                cache.upsert_node(NodeSpec::parse(n));
                usable.push(name.to_string());
            }
        }
        let mut pods_by_node: HashMap<String, Vec<&Value>> = HashMap::new();
        let mut pending: Vec<&Value> = Vec::new();
        for p in &all_pods {
            let node = p["spec"]["nodeName"].as_str().unwrap_or_default();
            if node.is_empty() {
                if model::is_unschedulable(p) {
                    pending.push(p);
                }
                continue;
            }
            if matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")) {
                continue;
            }
            pods_by_node.entry(node.to_string()).or_default().push(p);
            if usable.iter().any(|u| u == node) {
                cache.add_pod(Arc::new(PodInfo::parse(p)), node, false);
            }
        }

        // Templates, and the nodes each group still owes (upstream's "upcoming" nodes).
        let mut templates: Vec<Option<Value>> = Vec::new();
        let mut upcoming_total = 0;
        let mut counts: Vec<Counts> = Vec::new();
        for (gi, (g, record)) in groups.iter().enumerate() {
            let name = format!("template-node-for-{}", g.name);
            let live = group_nodes[gi]
                .iter()
                .find(|n| is_ready(n) && !has_taint(n, TO_BE_DELETED_TAINT));
            let template = match live {
                Some(n) => {
                    let mut t = model::template_node(n, g, &name);
                    let node_name = n["metadata"]["name"].as_str().unwrap_or_default();
                    subtract_daemonset_pods(&mut t, pods_by_node.get(node_name));
                    Some(t)
                }
                None => self.template_from_zero(g, record, &name).await,
            };
            let mut c = Counts::default();
            for n in &group_nodes[gi] {
                c.registered += 1;
                let name = n["metadata"]["name"].as_str().unwrap_or_default();
                if deleting.contains_key(name) || has_taint(n, TO_BE_DELETED_TAINT) {
                    c.being_deleted += 1;
                }
                if is_ready(n) {
                    c.ready += 1;
                } else {
                    c.unready += 1;
                }
            }
            c.unregistered = (g.instances.len() as i64 - c.registered).max(0);
            let upcoming = (g.target - c.registered + c.being_deleted).max(0);
            if let Some(t) = &template {
                for i in 0..upcoming {
                    let mut u = t.clone();
                    let n = format!("{name}-upcoming-{i}");
                    u["metadata"]["name"] = json!(n);
                    u["metadata"]["labels"]["kubernetes.io/hostname"] = json!(n);
                    cache.upsert_node(NodeSpec::parse(&u));
                    usable.push(n);
                }
            }
            upcoming_total += upcoming;
            counts.push(c);
            templates.push(template);
        }

        let mut outcome = ScanOutcome::default();
        // ---- scale-up ----
        pending.sort_by(|a, b| {
            let prio = |p: &Value| p["spec"]["priority"].as_i64().unwrap_or(0);
            prio(b).cmp(&prio(a)).then_with(|| {
                a["metadata"]["creationTimestamp"]
                    .as_str()
                    .cmp(&b["metadata"]["creationTimestamp"].as_str())
            })
        });
        let young = |p: &Value| {
            options.new_pod_scale_up_delay > Duration::ZERO
                && p["metadata"]["creationTimestamp"]
                    .as_str()
                    .and_then(|s| s.parse::<jiff::Timestamp>().ok())
                    .is_some_and(|t| {
                        jiff::Timestamp::now().duration_since(t).as_secs_f64()
                            < options.new_pod_scale_up_delay.as_secs_f64()
                    })
        };
        let mut unhelped: Vec<(Arc<PodInfo>, &Value)> = Vec::new();
        for p in pending.iter().copied().filter(|p| !young(p)) {
            let info = Arc::new(PodInfo::parse(p));
            // Pods that fit an existing or upcoming node need no new node (upstream's
            // FilterOutSchedulable): the scheduler will place them.
            if model::place(&self.profile, &info, &mut cache, &usable).is_none() {
                unhelped.push((info, p));
            }
        }
        self.pods_waiting = !unhelped.is_empty();
        if !unhelped.is_empty() {
            let infos: Vec<Arc<PodInfo>> = unhelped.iter().map(|(i, _)| i.clone()).collect();
            let mut reasons: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut candidates = Vec::new();
            for (gi, (g, _)) in groups.iter().enumerate() {
                let Some(t) = &templates[gi] else {
                    for p in &infos {
                        reasons
                            .entry(p.key())
                            .or_default()
                            .push("node group has no node template".into());
                    }
                    continue;
                };
                if let Some(o) =
                    model::estimate(&self.profile, &mut cache, g, t, &infos, &mut reasons)
                {
                    candidates.push(o);
                }
            }
            let helped: BTreeSet<&String> = candidates.iter().flat_map(|o| o.pods.iter()).collect();
            for (info, pod) in &unhelped {
                if !helped.contains(&info.key()) {
                    let why = reasons.get(&info.key()).cloned().unwrap_or_default();
                    self.events.record(
                        &with_kind(pod, "Pod"),
                        EventType::Normal,
                        "NotTriggerScaleUp",
                        &model::not_triggered_message(&why),
                    );
                }
            }
            let rng = &mut self.rng;
            let chosen = model::choose(options.expander, &candidates, |n| {
                *rng ^= *rng << 13;
                *rng ^= *rng >> 7;
                *rng ^= *rng << 17;
                (*rng % n as u64) as usize
            })
            .cloned();
            if let Some(o) = chosen
                && let Some((g, _)) = groups.iter().find(|(g, _)| g.name == o.group)
            {
                let to = (g.target + o.nodes).min(g.max);
                self.scale_up(g, to, &o.pods, &unhelped).await;
                outcome.scaled_up = Some((g.name.clone(), g.target, to));
                self.last_scale_up = Some(now);
            }
        }

        // ---- scale-down ----
        let mut candidates_per_group: Vec<usize> = vec![0; groups.len()];
        if options.scale_down_enabled && outcome.scaled_up.is_none() && upcoming_total == 0 {
            let unneeded = self.find_unneeded(
                &options,
                &groups,
                &nodes,
                &node_group,
                &pods_by_node,
                &deleting,
                &mut cache,
                &usable,
            );
            let seen: BTreeSet<&String> = unneeded.iter().map(|u| &u.node).collect();
            self.unneeded_since.retain(|n, _| seen.contains(n));
            for u in &unneeded {
                self.unneeded_since.entry(u.node.clone()).or_insert(now);
                candidates_per_group[u.group] += 1;
            }
            outcome.unneeded = unneeded.iter().map(|u| u.node.clone()).collect();
            let cooldown = {
                let s = self.lock();
                self.last_scale_up
                    .is_some_and(|t| now.duration_since(t) < options.scale_down_delay_after_add)
                    || s.last_failure.is_some_and(|t| {
                        now.duration_since(t) < options.scale_down_delay_after_failure
                    })
                    || s.last_delete.is_some_and(|t| {
                        now.duration_since(t) < options.scale_down_delay_after_delete
                    })
            };
            if !cooldown {
                outcome.removing =
                    self.remove_unneeded(&options, &groups, unneeded, &deleting, now);
            }
        } else {
            self.unneeded_since.clear();
        }

        // ---- status ----
        let mut total = Counts::default();
        let mut statuses = Vec::new();
        for (gi, (g, _)) in groups.iter().enumerate() {
            let c = counts[gi];
            total.registered += c.registered;
            total.ready += c.ready;
            total.unready += c.unready;
            total.being_deleted += c.being_deleted;
            total.unregistered += c.unregistered;
            let target = match &outcome.scaled_up {
                Some((name, _, to)) if *name == g.name => *to,
                _ => g.target,
            };
            statuses.push(GroupStatus {
                name: g.name.clone(),
                counts: c,
                target,
                min: g.min,
                max: g.max,
                scale_up_in_progress: target > c.registered - c.being_deleted,
                candidates: candidates_per_group[gi],
            });
        }
        // Nodes outside any group count cluster-wide too.
        for n in &nodes {
            let name = n["metadata"]["name"].as_str().unwrap_or_default();
            if !node_group.contains_key(name) {
                total.registered += 1;
                if is_ready(n) {
                    total.ready += 1;
                } else {
                    total.unready += 1;
                }
            }
        }
        let status = ClusterStatus {
            counts: total,
            // Upstream: unhealthy when more than 3 nodes and 45 % are unready.
            healthy: !(total.unready > 3 && total.unready * 100 > total.registered * 45),
            scale_up_in_progress: statuses.iter().any(|g| g.scale_up_in_progress),
            candidates: candidates_per_group.iter().sum(),
            groups: statuses,
        };
        let due = self
            .last_status
            .as_ref()
            .is_none_or(|(s, at)| *s != status || at.elapsed() >= STATUS_REFRESH);
        if due {
            self.write_status(&status).await?;
            self.last_status = Some((status, Instant::now()));
        }
        Ok(outcome)
    }

    /// SetDesiredCapacity, then the events upstream writes on the pods and the status ConfigMap.
    async fn scale_up(
        &self,
        g: &NodeGroup,
        to: i64,
        helped: &[String],
        pods: &[(Arc<PodInfo>, &Value)],
    ) {
        let status_cm = self.status_configmap().await;
        if let Some(cm) = &status_cm {
            self.events.record(
                cm,
                EventType::Normal,
                "ScaledUpGroup",
                &format!(
                    "Scale-up: setting group {} size to {to} instead of {} (max: {})",
                    g.name, g.target, g.max
                ),
            );
        }
        let result = self
            .call(
                "SetDesiredCapacity",
                json!({"AutoScalingGroupName": g.name, "DesiredCapacity": to, "HonorCooldown": false}),
            )
            .await;
        match result {
            Ok(_) => {
                tracing::info!(cluster = %self.binding.name, group = %g.name, from = g.target, to, "cluster-autoscaler scale-up");
                if let Some(cm) = &status_cm {
                    self.events.record(
                        cm,
                        EventType::Normal,
                        "ScaledUpGroup",
                        &format!(
                            "Scale-up: group {} size set to {to} instead of {} (max: {})",
                            g.name, g.target, g.max
                        ),
                    );
                }
                let msg = model::triggered_message(&g.name, g.target, to, g.max);
                for (info, pod) in pods {
                    if helped.contains(&info.key()) {
                        self.events.record(
                            &with_kind(pod, "Pod"),
                            EventType::Normal,
                            "TriggeredScaleUp",
                            &msg,
                        );
                    }
                }
            }
            Err(e) => {
                tracing::warn!(cluster = %self.binding.name, group = %g.name, error = %e.message, "scale-up failed");
                if let Some(cm) = &status_cm {
                    self.events.record(
                        cm,
                        EventType::Warning,
                        "FailedToScaleUpGroup",
                        &format!("Scale-up failed for group {}: {}", g.name, e.message),
                    );
                }
            }
        }
    }

    /// Nodes that could go now: in a group above its min, under the utilization threshold,
    /// not protected, and whose movable pods fit on the remaining nodes (the simulation keeps
    /// each accepted node's pods where it put them, so two nodes never count on the same room).
    #[allow(clippy::too_many_arguments)]
    fn find_unneeded(
        &self,
        options: &Options,
        groups: &[(NodeGroup, Value)],
        nodes: &[Value],
        node_group: &HashMap<String, usize>,
        pods_by_node: &HashMap<String, Vec<&Value>>,
        deleting: &BTreeMap<String, String>,
        cache: &mut Cache,
        usable: &[String],
    ) -> Vec<Unneeded> {
        let pdbs = self.caches.pdbs.list(None);
        let mut out: Vec<Unneeded> = Vec::new();
        let mut removed: BTreeSet<String> = deleting.keys().cloned().collect();
        for n in nodes {
            let name = n["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let Some(&gi) = node_group.get(&name) else {
                continue;
            };
            let g = &groups[gi].0;
            if removed.contains(&name)
                || !is_ready(n)
                || has_taint(n, TO_BE_DELETED_TAINT)
                || n["metadata"]["annotations"][SCALE_DOWN_DISABLED] == "true"
            {
                continue;
            }
            let on_node: Vec<&Value> = pods_by_node.get(&name).cloned().unwrap_or_default();
            let mut to_move: Vec<&Value> = Vec::new();
            let mut counted: Vec<PodInfo> = Vec::new();
            let mut blocked = false;
            let mut with_budgets: Vec<(&Value, Vec<&Value>)> = Vec::new();
            let ignore_ds = g.options.ignore_daemonsets(options);
            for p in &on_node {
                let covering: Vec<&Value> = pdbs
                    .iter()
                    .filter(|b| b["metadata"]["namespace"] == p["metadata"]["namespace"])
                    .filter(|b| {
                        let sel = match b.pointer("/spec/selector") {
                            None | Some(Value::Null) => Ok(Selector::everything()),
                            Some(s) => Selector::from_label_selector(s),
                        };
                        sel.is_ok_and(|s| s.matches_object(p))
                    })
                    .collect();
                let verdict = model::judge(
                    &PodFacts {
                        pod: p,
                        has_pdb: !covering.is_empty(),
                    },
                    options,
                );
                let is_ds = verdict == Verdict::Skip;
                // Finished pods were left out of `pods_by_node`.
                if !(is_ds && ignore_ds) {
                    counted.push(PodInfo::parse(p));
                }
                match verdict {
                    Verdict::Skip => {}
                    Verdict::Move => {
                        to_move.push(p);
                        with_budgets.push((p, covering));
                    }
                    Verdict::Block(_) => blocked = true,
                }
            }
            let util = model::utilization(&NodeSpec::parse(n), &counted.iter().collect::<Vec<_>>());
            if blocked
                || util >= g.options.threshold(options)
                || !model::budgets_allow(&with_budgets)
            {
                continue;
            }
            // Simulate: take the node out, put its movable pods on the other usable nodes.
            let keys: Vec<String> = on_node
                .iter()
                .map(|p| {
                    format!(
                        "{}/{}",
                        p["metadata"]["namespace"].as_str().unwrap_or_default(),
                        p["metadata"]["name"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            let saved: Vec<_> = keys.iter().filter_map(|k| cache.remove_pod(k)).collect();
            let spec = cache.node(&name).and_then(|ni| ni.node.clone());
            cache.remove_node(&name);
            let targets: Vec<String> = usable
                .iter()
                .filter(|u| {
                    **u != name && !removed.contains(*u) && !u.starts_with("template-node-for-")
                })
                .cloned()
                .collect();
            let mut placed = Vec::new();
            let mut all_fit = true;
            for p in &to_move {
                let info = Arc::new(PodInfo::parse(p));
                match model::place(&self.profile, &info, cache, &targets) {
                    Some(_) => placed.push(info.key()),
                    None => {
                        all_fit = false;
                        break;
                    }
                }
            }
            if !all_fit {
                for k in &placed {
                    cache.remove_pod(k);
                }
                if let Some(s) = spec {
                    cache.upsert_node((*s).clone());
                }
                for p in saved {
                    cache.add_pod(p, &name, false);
                }
                continue;
            }
            removed.insert(name.clone());
            out.push(Unneeded {
                node: name,
                group: gi,
                utilization: util,
                pods: to_move
                    .iter()
                    .map(|p| {
                        format!(
                            "{}/{}",
                            p["metadata"]["namespace"].as_str().unwrap_or_default(),
                            p["metadata"]["name"].as_str().unwrap_or_default()
                        )
                    })
                    .collect(),
                node_object: n.clone(),
            });
        }
        out
    }

    /// Starts removing the unneeded nodes whose time has come: empty ones in bulk (up to
    /// `max-empty-bulk-delete`), else one node with pods to move, never taking a group below
    /// its min. Each removal runs in its own task.
    fn remove_unneeded(
        &self,
        options: &Options,
        groups: &[(NodeGroup, Value)],
        unneeded: Vec<Unneeded>,
        deleting: &BTreeMap<String, String>,
        now: Instant,
    ) -> Vec<String> {
        let mut room: Vec<i64> = groups
            .iter()
            .map(|(g, _)| {
                let in_flight = deleting.values().filter(|d| **d == g.name).count() as i64;
                g.target - in_flight - g.min
            })
            .collect();
        let draining_busy = !deleting.is_empty();
        let mut empty = Vec::new();
        let mut busy = None;
        for u in unneeded {
            let g = &groups[u.group].0;
            let since = self.unneeded_since.get(&u.node).copied().unwrap_or(now);
            if now.duration_since(since) < g.options.unneeded_time(options) || room[u.group] <= 0 {
                continue;
            }
            if u.pods.is_empty() {
                if empty.len() < options.max_empty_bulk_delete {
                    room[u.group] -= 1;
                    empty.push(u);
                }
            } else if busy.is_none() && !draining_busy && empty.is_empty() {
                room[u.group] -= 1;
                busy = Some(u);
            }
        }
        let chosen: Vec<Unneeded> = empty.into_iter().chain(busy).collect();
        let mut started = Vec::new();
        for u in chosen {
            let group = groups[u.group].0.name.clone();
            self.lock().deleting.insert(u.node.clone(), group.clone());
            started.push(u.node.clone());
            let task = Removal {
                client: self.client.clone(),
                ctx: self.aws(),
                events: self.events.clone(),
                shared: self.shared.clone(),
                drain_timeout: options.max_graceful_termination + Duration::from_secs(60),
            };
            tokio::spawn(task.run(u, group));
        }
        started
    }

    async fn status_configmap(&self) -> Option<Value> {
        self.client
            .get_opt(&configmaps().in_namespace("kube-system"), STATUS_CONFIGMAP)
            .await
            .ok()
            .flatten()
            .map(|cm| with_kind(&cm, "ConfigMap"))
    }

    /// Writes `kube-system/cluster-autoscaler-status` (creating it the first time).
    async fn write_status(&mut self, status: &ClusterStatus) -> Result<(), ApiError> {
        let now = jiff::Timestamp::now();
        let transitions = &mut self.transitions;
        let mut changed: Vec<(String, String)> = Vec::new();
        let doc = {
            let since = |key: &str, value: &str| match transitions.get(key) {
                Some((v, t)) if v == value => *t,
                _ => {
                    changed.push((key.to_string(), value.to_string()));
                    now
                }
            };
            // `since` is Fn: collect transitions through a RefCell-free two-step.
            let cell = std::cell::RefCell::new(since);
            model::status_document(status, now, &|k, v| (cell.borrow_mut())(k, v))
        };
        for (k, v) in changed {
            transitions.insert(k, (v, now));
        }
        let data = json!({"status": model::to_yaml(&doc)});
        let annotations =
            json!({"cluster-autoscaler.kubernetes.io/last-updated": model::go_time(now)});
        let cms = configmaps().in_namespace("kube-system");
        for _ in 0..3 {
            match self.client.get_opt(&cms, STATUS_CONFIGMAP).await? {
                None => {
                    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": STATUS_CONFIGMAP, "namespace": "kube-system",
                                     "annotations": annotations},
                        "data": data});
                    match self.client.create(&cms, cm, &WriteOptions::default()).await {
                        Ok(_) => return Ok(()),
                        Err(ApiError::AlreadyExists { .. }) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Some(mut cm) => {
                    cm["data"] = data.clone();
                    if !cm["metadata"]["annotations"].is_object() {
                        cm["metadata"]["annotations"] = json!({});
                    }
                    cm["metadata"]["annotations"]["cluster-autoscaler.kubernetes.io/last-updated"] =
                        annotations["cluster-autoscaler.kubernetes.io/last-updated"].clone();
                    match self.client.update(&cms, cm, &WriteOptions::default()).await {
                        Ok(_) => return Ok(()),
                        Err(ApiError::Conflict { .. }) => continue,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(())
    }
}

/// DaemonSet pods run on every new node too: their requests are not room for pending pods.
fn subtract_daemonset_pods(template: &mut Value, pods: Option<&Vec<&Value>>) {
    let Some(pods) = pods else { return };
    let mut used = skiff_scheduler::model::Resources::default();
    let mut count = 0i64;
    for p in pods {
        let ds = p["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["controller"] == true && r["kind"] == "DaemonSet");
        if ds {
            used.add(&PodInfo::parse(p).requests);
            count += 1;
        }
    }
    if count == 0 {
        return;
    }
    let spec = NodeSpec::parse(template);
    let alloc = &mut template["status"]["allocatable"];
    alloc["cpu"] = json!(format!(
        "{}m",
        (spec.allocatable.milli_cpu - used.milli_cpu).max(0)
    ));
    alloc["memory"] = json!(format!(
        "{}",
        (spec.allocatable.memory - used.memory).max(0)
    ));
    alloc["pods"] = json!(format!("{}", (spec.max_pods - count).max(0)));
}

/// A node found unneeded in this scan.
#[derive(Clone, Debug)]
pub struct Unneeded {
    pub node: String,
    group: usize,
    pub utilization: f64,
    /// Pods that must move (`namespace/name`).
    pub pods: Vec<String>,
    node_object: Value,
}

/// Terminations are serialised in the process, as upstream holds a group's lock to delete nodes.
static TERMINATE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One node's removal: taint, drain, terminate (upstream's actuator).
struct Removal {
    client: Arc<dyn ApiClient>,
    ctx: RequestContext,
    events: Arc<EventRecorder>,
    shared: Arc<Mutex<Shared>>,
    drain_timeout: Duration,
}

impl Removal {
    async fn run(self, u: Unneeded, group: String) {
        let result = self.remove(&u, &group).await;
        let mut s = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        s.deleting.remove(&u.node);
        match result {
            Ok(()) => {
                s.last_delete = Some(Instant::now());
                tracing::info!(node = %u.node, group = %group, "cluster-autoscaler removed node");
            }
            Err(e) => {
                s.last_failure = Some(Instant::now());
                tracing::warn!(node = %u.node, group = %group, error = %e, "cluster-autoscaler scale-down failed");
            }
        }
    }

    /// `SetDesiredCapacity` one lower (not below the min).
    async fn decrement(&self, group: &str) -> Result<Value, AwsError> {
        let g = skiff_aws::autoscaling::dispatch(
            &self.ctx,
            "DescribeAutoScalingGroups",
            json!({"AutoScalingGroupNames": [group]}),
        )
        .await?;
        let g = &g["AutoScalingGroups"][0];
        let (desired, min) = (
            g["DesiredCapacity"].as_i64().unwrap_or(0),
            g["MinSize"].as_i64().unwrap_or(0),
        );
        if desired <= min {
            return Ok(json!({}));
        }
        skiff_aws::autoscaling::dispatch(
            &self.ctx,
            "SetDesiredCapacity",
            json!({"AutoScalingGroupName": group, "DesiredCapacity": desired - 1, "HonorCooldown": false}),
        )
        .await
    }

    async fn remove(&self, u: &Unneeded, group: &str) -> Result<(), AutoscalerError> {
        let node = with_kind(&u.node_object, "Node");
        let stamp = jiff::Timestamp::now().as_second().to_string();
        set_taint(&*self.client, &u.node, Some(&stamp)).await?;
        self.events.record(
            &node,
            EventType::Normal,
            "ScaleDown",
            "marked the node as toBeDeleted/unschedulable",
        );
        if let Some(cm) = self
            .client
            .get_opt(&configmaps().in_namespace("kube-system"), STATUS_CONFIGMAP)
            .await
            .ok()
            .flatten()
        {
            let cm = with_kind(&cm, "ConfigMap");
            if u.pods.is_empty() {
                self.events.record(
                    &cm,
                    EventType::Normal,
                    "ScaleDownEmpty",
                    &format!("Scale-down: removing empty node \"{}\"", u.node),
                );
            } else {
                self.events.record(
                    &cm,
                    EventType::Normal,
                    "ScaleDown",
                    &format!(
                        "Scale-down: removing node {}, utilization: {:.2}, pods to reschedule: {}",
                        u.node,
                        u.utilization,
                        u.pods.join(",")
                    ),
                );
            }
        }
        for key in &u.pods {
            let (ns, name) = key.split_once('/').unwrap_or(("", key));
            if let Ok(Some(p)) = self.client.get_opt(&pods().in_namespace(ns), name).await {
                self.events.record(
                    &with_kind(&p, "Pod"),
                    EventType::Normal,
                    "ScaleDown",
                    "deleting pod for node scale down",
                );
            }
        }
        let opts = DrainOptions {
            timeout: self.drain_timeout,
            ..DrainOptions::default()
        };
        if let Err(e) = drain::cordon_and_drain(&*self.client, &u.node, &opts).await {
            self.events.record(
                &node,
                EventType::Warning,
                "ScaleDownFailed",
                &format!("failed to drain the node, aborting ScaleDown: {e}"),
            );
            let _ = set_taint(&*self.client, &u.node, None).await;
            let _ = drain::uncordon(&*self.client, &u.node).await;
            return Err(e.into());
        }
        let Some(instance) = instance_of(&u.node_object) else {
            return Ok(());
        };
        // One termination at a time (upstream deletes a group's nodes under the group's lock);
        // a concurrent write to the group record is retried.
        let r = {
            let _one = TERMINATE.lock().await;
            let mut attempt = 0;
            loop {
                let r = skiff_aws::autoscaling::dispatch(
                    &self.ctx,
                    "TerminateInstanceInAutoScalingGroup",
                    json!({"InstanceId": instance, "ShouldDecrementDesiredCapacity": true}),
                )
                .await;
                match r {
                    Err(e) if e.code == "ResourceContention" && attempt < 10 => {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
                    }
                    // The instance was terminated but the group record lost the race to the
                    // nodegroup reconciler, which forgot the instance and launched a replacement
                    // without lowering the desired capacity: lower it as the call would have.
                    Err(e) if attempt > 0 && e.message.starts_with("Instance Id not found") => {
                        break self.decrement(group).await;
                    }
                    other => break other,
                }
            }
        };
        if let Err(e) = r {
            self.events.record(
                &node,
                EventType::Warning,
                "ScaleDownFailed",
                &format!("failed to delete the node: {}", e.message),
            );
            let _ = set_taint(&*self.client, &u.node, None).await;
            let _ = drain::uncordon(&*self.client, &u.node).await;
            return Err(e.into());
        }
        self.events.record(
            &node,
            EventType::Normal,
            "ScaleDown",
            "nodes removed by cluster autoscaler",
        );
        Ok(())
    }
}

/// Adds (`Some(value)`) or removes (`None`) the `ToBeDeletedByClusterAutoscaler` taint.
async fn set_taint(
    client: &dyn ApiClient,
    node: &str,
    value: Option<&str>,
) -> Result<(), ApiError> {
    for _ in 0..5 {
        let Some(mut n) = client.get_opt(&nodes(), node).await? else {
            return Ok(());
        };
        let mut taints: Vec<Value> = n["spec"]["taints"].as_array().cloned().unwrap_or_default();
        let had = taints.iter().any(|t| t["key"] == TO_BE_DELETED_TAINT);
        taints.retain(|t| t["key"] != TO_BE_DELETED_TAINT);
        match value {
            Some(v) => {
                taints.push(json!({"key": TO_BE_DELETED_TAINT, "value": v, "effect": "NoSchedule"}))
            }
            None if !had => return Ok(()),
            None => {}
        }
        n["spec"]["taints"] = json!(taints);
        match client.update(&nodes(), n, &WriteOptions::default()).await {
            Ok(_) => return Ok(()),
            Err(ApiError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
