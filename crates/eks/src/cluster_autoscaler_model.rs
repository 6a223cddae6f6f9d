//! The Cluster Autoscaler's decisions as pure functions, so each rule is unit-tested without a
//! cluster: options (flags from the `cluster-autoscaler-config` ConfigMap, per-group overrides
//! from ASG tags), node-group discovery by tags, node templates, the scale-up estimate and
//! expander, which pods block a scale-down (the drainability rules, kept as a table), node
//! utilization, and the `cluster-autoscaler-status` document.
//!
//! Scheduling questions ("would this pod fit a new node of that group?", "can these pods move
//! elsewhere?") are answered by `skiff-scheduler`'s own filter plugins over a simulated cache, as
//! upstream's simulator runs kube-scheduler's framework, so the autoscaler and the scheduler never
//! disagree on what fits.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use skiff_scheduler::cache::Cache;
use skiff_scheduler::framework::{CycleState, Profile, Status, histogram};
use skiff_scheduler::model::{NodeSpec, PodInfo};

/// Discovery tag every autoscaled group carries (`--node-group-auto-discovery=asg:tag=…`).
pub const ENABLED_TAG: &str = "k8s.io/cluster-autoscaler/enabled";
/// Prefix of the per-cluster discovery tag `k8s.io/cluster-autoscaler/<cluster>`.
pub const CLUSTER_TAG_PREFIX: &str = "k8s.io/cluster-autoscaler/";
/// Prefix of the node-template tags (`…/label/<k>`, `…/taint/<k>`, `…/resources/<r>`,
/// `…/autoscaling-options/<option>`).
pub const TEMPLATE_TAG_PREFIX: &str = "k8s.io/cluster-autoscaler/node-template/";
/// The taint upstream puts on a node it is removing (value: Unix seconds).
pub const TO_BE_DELETED_TAINT: &str = "ToBeDeletedByClusterAutoscaler";
/// Pod annotation: `"true"` lets an otherwise blocking pod move, `"false"` pins its node.
pub const SAFE_TO_EVICT: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict";
/// Pod annotation: comma-separated local volumes that may be lost.
pub const SAFE_TO_EVICT_LOCAL_VOLUMES: &str =
    "cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes";
/// Pod annotation: treat the pod as a DaemonSet pod.
pub const DAEMONSET_POD: &str = "cluster-autoscaler.kubernetes.io/daemonset-pod";
/// Node annotation: never scale this node down.
pub const SCALE_DOWN_DISABLED: &str = "cluster-autoscaler.kubernetes.io/scale-down-disabled";
/// The status ConfigMap upstream writes in kube-system.
pub const STATUS_CONFIGMAP: &str = "cluster-autoscaler-status";
/// The ConfigMap in kube-system whose keys are the autoscaler's flags (Skiff's stand-in for the
/// Deployment's command line).
pub const CONFIG_CONFIGMAP: &str = "cluster-autoscaler-config";

/// How the group to grow is chosen among those that would help (`--expander`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expander {
    /// The group whose new nodes would leave the least CPU and memory idle; ties go to the group
    /// that helps more pods, then by name (upstream falls back to random).
    LeastWaste,
    /// Any helping group, uniformly (upstream's default).
    Random,
    /// The group that helps the most pods (upstream `most-pods`).
    MostPods,
}

/// The flags the autoscaler honours, with upstream's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub scan_interval: Duration,
    pub expander: Expander,
    pub scale_down_enabled: bool,
    pub scale_down_utilization_threshold: f64,
    pub scale_down_unneeded_time: Duration,
    pub scale_down_delay_after_add: Duration,
    pub scale_down_delay_after_delete: Duration,
    pub scale_down_delay_after_failure: Duration,
    pub skip_nodes_with_local_storage: bool,
    pub skip_nodes_with_system_pods: bool,
    pub ignore_daemonsets_utilization: bool,
    pub max_empty_bulk_delete: usize,
    pub max_graceful_termination: Duration,
    pub new_pod_scale_up_delay: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            scan_interval: Duration::from_secs(10),
            expander: Expander::LeastWaste,
            scale_down_enabled: true,
            scale_down_utilization_threshold: 0.5,
            scale_down_unneeded_time: Duration::from_secs(600),
            scale_down_delay_after_add: Duration::from_secs(600),
            scale_down_delay_after_delete: Duration::ZERO,
            scale_down_delay_after_failure: Duration::from_secs(180),
            skip_nodes_with_local_storage: true,
            skip_nodes_with_system_pods: true,
            ignore_daemonsets_utilization: false,
            max_empty_bulk_delete: 10,
            max_graceful_termination: Duration::from_secs(600),
            new_pod_scale_up_delay: Duration::ZERO,
        }
    }
}

/// Parses a Go `time.Duration` string (`10m`, `1m30s`, `500ms`, `1.5h`, `0`).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return None;
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += n * scale;
    }
    Duration::try_from_secs_f64(total).ok()
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "true" | "True" | "TRUE" | "1" | "t" | "T" => Some(true),
        "false" | "False" | "FALSE" | "0" | "f" | "F" => Some(false),
        _ => None,
    }
}

impl Options {
    /// The options a `cluster-autoscaler-config` ConfigMap's `data` sets (keys are the flag names
    /// without dashes in front: `scan-interval: 1s`). Unknown keys and unparsable values are
    /// reported and leave the default, as a bad flag would stop upstream from starting at all.
    pub fn from_config(data: &Value) -> (Options, Vec<String>) {
        let mut o = Options::default();
        let mut problems = Vec::new();
        let Some(map) = data.as_object() else {
            return (o, problems);
        };
        for (k, v) in map {
            let v = v.as_str().unwrap_or_default();
            let ok = match k.as_str() {
                "scan-interval" => set(&mut o.scan_interval, parse_go_duration(v)),
                "expander" => set(
                    &mut o.expander,
                    match v.trim() {
                        "least-waste" => Some(Expander::LeastWaste),
                        "random" => Some(Expander::Random),
                        "most-pods" => Some(Expander::MostPods),
                        _ => None,
                    },
                ),
                "scale-down-enabled" => set(&mut o.scale_down_enabled, parse_bool(v)),
                "scale-down-utilization-threshold" => set(
                    &mut o.scale_down_utilization_threshold,
                    v.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|f| (0.0..=1.0).contains(f)),
                ),
                "scale-down-unneeded-time" => {
                    set(&mut o.scale_down_unneeded_time, parse_go_duration(v))
                }
                "scale-down-delay-after-add" => {
                    set(&mut o.scale_down_delay_after_add, parse_go_duration(v))
                }
                "scale-down-delay-after-delete" => {
                    set(&mut o.scale_down_delay_after_delete, parse_go_duration(v))
                }
                "scale-down-delay-after-failure" => {
                    set(&mut o.scale_down_delay_after_failure, parse_go_duration(v))
                }
                "skip-nodes-with-local-storage" => {
                    set(&mut o.skip_nodes_with_local_storage, parse_bool(v))
                }
                "skip-nodes-with-system-pods" => {
                    set(&mut o.skip_nodes_with_system_pods, parse_bool(v))
                }
                "ignore-daemonsets-utilization" => {
                    set(&mut o.ignore_daemonsets_utilization, parse_bool(v))
                }
                "max-empty-bulk-delete" => set(
                    &mut o.max_empty_bulk_delete,
                    v.trim().parse::<usize>().ok().filter(|n| *n > 0),
                ),
                "max-graceful-termination-sec" => set(
                    &mut o.max_graceful_termination,
                    v.trim().parse::<u64>().ok().map(Duration::from_secs),
                ),
                "new-pod-scale-up-delay" => {
                    set(&mut o.new_pod_scale_up_delay, parse_go_duration(v))
                }
                _ => {
                    problems.push(format!("unknown flag: --{k}"));
                    continue;
                }
            };
            if !ok {
                problems.push(format!("invalid value \"{v}\" for flag --{k}"));
            }
        }
        // A zero interval would spin.
        o.scan_interval = o.scan_interval.max(Duration::from_millis(10));
        (o, problems)
    }
}

fn set<T>(slot: &mut T, v: Option<T>) -> bool {
    match v {
        Some(v) => {
            *slot = v;
            true
        }
        None => false,
    }
}

/// Per-group overrides read from the group's tags
/// (`k8s.io/cluster-autoscaler/node-template/autoscaling-options/<option>`), as upstream's AWS
/// provider's `GetOptions` reads them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupOptions {
    pub scale_down_utilization_threshold: Option<f64>,
    pub scale_down_unneeded_time: Option<Duration>,
    pub ignore_daemonsets_utilization: Option<bool>,
}

impl GroupOptions {
    pub fn from_tags(tags: &BTreeMap<String, String>) -> Self {
        let opt =
            |name: &str| tags.get(&format!("{TEMPLATE_TAG_PREFIX}autoscaling-options/{name}"));
        GroupOptions {
            scale_down_utilization_threshold: opt("scaledownutilizationthreshold")
                .and_then(|v| v.trim().parse().ok()),
            scale_down_unneeded_time: opt("scaledownunneededtime")
                .and_then(|v| parse_go_duration(v)),
            ignore_daemonsets_utilization: opt("ignoredaemonsetsutilization")
                .and_then(|v| parse_bool(v)),
        }
    }

    pub fn threshold(&self, o: &Options) -> f64 {
        self.scale_down_utilization_threshold
            .unwrap_or(o.scale_down_utilization_threshold)
    }

    pub fn unneeded_time(&self, o: &Options) -> Duration {
        self.scale_down_unneeded_time
            .unwrap_or(o.scale_down_unneeded_time)
    }

    pub fn ignore_daemonsets(&self, o: &Options) -> bool {
        self.ignore_daemonsets_utilization
            .unwrap_or(o.ignore_daemonsets_utilization)
    }
}

/// One autoscaled node group: an Auto Scaling group found by its tags.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeGroup {
    /// The Auto Scaling group's name (upstream's node group id).
    pub name: String,
    pub min: i64,
    pub max: i64,
    /// `DesiredCapacity` (upstream `TargetSize`).
    pub target: i64,
    /// Member instance ids.
    pub instances: Vec<String>,
    pub zones: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub options: GroupOptions,
}

/// The tags of a group record as a map.
pub fn tag_map(group: &Value) -> BTreeMap<String, String> {
    group["Tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some((
                t["Key"].as_str()?.to_string(),
                t["Value"].as_str().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

impl NodeGroup {
    /// The node group of a `DescribeAutoScalingGroups` entry, when it carries both discovery tags
    /// of `cluster` (the tag values do not matter, as with upstream's `asg:tag=` form).
    pub fn discover(group: &Value, cluster: &str) -> Option<NodeGroup> {
        let tags = tag_map(group);
        if !tags.contains_key(ENABLED_TAG)
            || !tags.contains_key(&format!("{CLUSTER_TAG_PREFIX}{cluster}"))
        {
            return None;
        }
        Some(NodeGroup {
            name: group["AutoScalingGroupName"].as_str()?.to_string(),
            min: group["MinSize"].as_i64().unwrap_or(0),
            max: group["MaxSize"].as_i64().unwrap_or(0),
            target: group["DesiredCapacity"].as_i64().unwrap_or(0),
            instances: group["Instances"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i["InstanceId"].as_str().map(str::to_string))
                .collect(),
            zones: group["AvailabilityZones"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|z| z.as_str().map(str::to_string))
                .collect(),
            options: GroupOptions::from_tags(&tags),
            tags,
        })
    }

    /// Labels from `…/node-template/label/<key>` tags.
    pub fn template_labels(&self) -> BTreeMap<String, String> {
        self.template_tags("label/")
    }

    /// Taints from `…/node-template/taint/<key>` tags (`value:Effect`, or `Effect` alone).
    pub fn template_taints(&self) -> Vec<Value> {
        self.template_tags("taint/")
            .into_iter()
            .filter_map(|(k, v)| {
                let (value, effect) = match v.rsplit_once(':') {
                    Some((val, eff)) => (val.to_string(), eff.to_string()),
                    None => (String::new(), v),
                };
                matches!(
                    effect.as_str(),
                    "NoSchedule" | "PreferNoSchedule" | "NoExecute"
                )
                .then(|| json!({"key": k, "value": value, "effect": effect}))
            })
            .collect()
    }

    /// Allocatable overrides from `…/node-template/resources/<name>` tags.
    pub fn template_resources(&self) -> BTreeMap<String, String> {
        self.template_tags("resources/")
    }

    fn template_tags(&self, kind: &str) -> BTreeMap<String, String> {
        let prefix = format!("{TEMPLATE_TAG_PREFIX}{kind}");
        self.tags
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(&prefix)
                    .filter(|k| !k.is_empty())
                    .map(|k| (k.to_string(), v.clone()))
            })
            .collect()
    }
}

/// Turns a Node (a live node of the group, or one built from the group's shape) into the group's
/// template: a fresh name (also as `kubernetes.io/hostname`), the template tags' labels, taints and
/// resources on top, and nothing of the node's own state (cordon, the autoscaler's deletion taint).
pub fn template_node(base: &Value, group: &NodeGroup, name: &str) -> Value {
    let mut node = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": base["metadata"]["labels"].clone()},
        "spec": {},
        "status": {"allocatable": base["status"]["allocatable"].clone(),
                   "capacity": base["status"]["capacity"].clone()},
    });
    if !node["metadata"]["labels"].is_object() {
        node["metadata"]["labels"] = json!({});
    }
    let labels = node["metadata"]["labels"]
        .as_object_mut()
        .expect("labels were just made an object");
    labels.insert("kubernetes.io/hostname".into(), json!(name));
    for (k, v) in group.template_labels() {
        labels.insert(k, json!(v));
    }
    let mut taints: Vec<Value> = base["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| {
            let key = t["key"].as_str().unwrap_or_default();
            key != TO_BE_DELETED_TAINT
                && key != "DeletionCandidateOfClusterAutoscaler"
                && !key.starts_with("node.kubernetes.io/")
        })
        .cloned()
        .collect();
    for t in group.template_taints() {
        taints.retain(|x| x["key"] != t["key"]);
        taints.push(t);
    }
    if !taints.is_empty() {
        node["spec"]["taints"] = json!(taints);
    }
    if !node["status"]["allocatable"].is_object() {
        node["status"]["allocatable"] = json!({});
    }
    for (r, q) in group.template_resources() {
        node["status"]["allocatable"][r.as_str()] = json!(q);
    }
    node
}

/// Is the pod one the scheduler gave up on: Pending, unbound, `PodScheduled=False` with reason
/// `Unschedulable`, and not being deleted.
pub fn is_unschedulable(pod: &Value) -> bool {
    pod["spec"]["nodeName"]
        .as_str()
        .unwrap_or_default()
        .is_empty()
        && pod["metadata"]["deletionTimestamp"].is_null()
        && pod["status"]["phase"].as_str().unwrap_or("Pending") == "Pending"
        && pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                c["type"] == "PodScheduled"
                    && c["status"] == "False"
                    && c["reason"] == "Unschedulable"
            })
}

/// Whether the pod fits the named node of `cache`, with the scheduler's PreFilter and Filter
/// plugins run afresh (their state depends on what the simulation placed so far).
pub fn fits(profile: &Profile, pod: &PodInfo, cache: &Cache, node: &str) -> Result<(), Status> {
    let Some(ni) = cache.node(node) else {
        return Err(Status::unresolvable("node(s) not found"));
    };
    let mut state = CycleState::default();
    profile.run_pre_filter(pod, cache, &mut state)?;
    profile.run_filters(pod, ni, cache, &state)
}

/// The first node of `candidates` the pod fits, placing it there (assumed) when found.
pub fn place(
    profile: &Profile,
    pod: &Arc<PodInfo>,
    cache: &mut Cache,
    candidates: &[String],
) -> Option<String> {
    let node = candidates
        .iter()
        .find(|n| fits(profile, pod, cache, n).is_ok())?
        .clone();
    cache.add_pod(pod.clone(), &node, true);
    Some(node)
}

/// What growing one group would do.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleUpOption {
    pub group: String,
    /// New nodes needed (already capped at the group's max).
    pub nodes: i64,
    /// Pods (`namespace/name`) those nodes would take.
    pub pods: Vec<String>,
    /// Least-waste score: idle fraction of CPU plus idle fraction of memory on the new nodes.
    pub waste: f64,
}

/// Why a group could not help a pod (upstream's skipped/rejected reasons).
pub const MAX_SIZE_REACHED: &str = "max node group size reached";

/// Estimates, for one group, how many new nodes (from `template`) the pods need, binpacking them
/// first-fit in order onto new nodes as upstream's binpacking estimator does. Pods that do not fit
/// an empty template node get that node's refusal in `reasons`. The simulated nodes and pods are
/// removed from `cache` again before returning.
pub fn estimate(
    profile: &Profile,
    cache: &mut Cache,
    group: &NodeGroup,
    template: &Value,
    pods: &[Arc<PodInfo>],
    reasons: &mut BTreeMap<String, Vec<String>>,
) -> Option<ScaleUpOption> {
    let room = group.max - group.target;
    if room <= 0 {
        for p in pods {
            reasons
                .entry(p.key())
                .or_default()
                .push(MAX_SIZE_REACHED.into());
        }
        return None;
    }
    let mut new_nodes: Vec<String> = Vec::new();
    let mut placed: Vec<String> = Vec::new();
    let spec_for = |name: &str| {
        let mut t = template.clone();
        t["metadata"]["name"] = json!(name);
        t["metadata"]["labels"]["kubernetes.io/hostname"] = json!(name);
        NodeSpec::parse(&t)
    };
    // Probe on one empty template node: pods it refuses would not fit any new node of the group.
    let probe = format!("template-node-for-{}-probe", group.name);
    cache.upsert_node(spec_for(&probe));
    let mut candidates = Vec::new();
    for p in pods {
        match fits(profile, p, cache, &probe) {
            Ok(()) => candidates.push(p.clone()),
            Err(s) => reasons
                .entry(p.key())
                .or_default()
                .push(s.reasons.first().cloned().unwrap_or_default()),
        }
    }
    cache.remove_node(&probe);
    for p in &candidates {
        if place(profile, p, cache, &new_nodes).is_some() {
            placed.push(p.key());
            continue;
        }
        if new_nodes.len() as i64 >= room {
            continue;
        }
        let name = format!("template-node-for-{}-{}", group.name, new_nodes.len());
        cache.upsert_node(spec_for(&name));
        new_nodes.push(name);
        if place(profile, p, cache, &new_nodes[new_nodes.len() - 1..]).is_some() {
            placed.push(p.key());
        }
    }
    // Waste over the new nodes, from what the simulation put on them.
    let (mut cpu_alloc, mut cpu_used, mut mem_alloc, mut mem_used) = (0i64, 0i64, 0i64, 0i64);
    for n in &new_nodes {
        if let Some(ni) = cache.node(n) {
            cpu_alloc += ni.spec().allocatable.milli_cpu;
            mem_alloc += ni.spec().allocatable.memory;
            cpu_used += ni.requested.milli_cpu;
            mem_used += ni.requested.memory;
        }
    }
    for key in &placed {
        cache.remove_pod(key);
    }
    for n in &new_nodes {
        cache.remove_node(n);
    }
    if placed.is_empty() {
        return None;
    }
    let idle = |alloc: i64, used: i64| {
        if alloc <= 0 {
            0.0
        } else {
            (alloc - used).max(0) as f64 / alloc as f64
        }
    };
    Some(ScaleUpOption {
        group: group.name.clone(),
        nodes: new_nodes.len() as i64,
        pods: placed,
        waste: idle(cpu_alloc, cpu_used) + idle(mem_alloc, mem_used),
    })
}

/// Picks the option to carry out (`random_pick` is consulted only by [`Expander::Random`]).
pub fn choose(
    expander: Expander,
    options: &[ScaleUpOption],
    random_pick: impl FnOnce(usize) -> usize,
) -> Option<&ScaleUpOption> {
    if options.is_empty() {
        return None;
    }
    match expander {
        Expander::Random => options.get(random_pick(options.len()) % options.len()),
        Expander::MostPods => options
            .iter()
            .min_by(|a, b| b.pods.len().cmp(&a.pods.len()).then(a.group.cmp(&b.group))),
        Expander::LeastWaste => options.iter().min_by(|a, b| {
            a.waste
                .partial_cmp(&b.waste)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(b.pods.len().cmp(&a.pods.len()))
                .then(a.group.cmp(&b.group))
        }),
    }
}

/// `pod triggered scale-up: [{eks-ng-… 1->3 (max: 4)}]`.
pub fn triggered_message(group: &str, from: i64, to: i64, max: i64) -> String {
    format!("pod triggered scale-up: [{{{group} {from}->{to} (max: {max})}}]")
}

/// `pod didn't trigger scale-up: 1 max node group size reached, 2 Insufficient cpu`: each reason
/// counted over the groups that gave it, sorted as upstream sorts the strings.
pub fn not_triggered_message(reasons: &[String]) -> String {
    format!(
        "pod didn't trigger scale-up: {}",
        histogram(reasons.iter()).join(", ")
    )
}

// ---- scale-down ----

/// What the drainability rules say of one pod on a node being considered for removal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Stays or dies with the node and does not block (DaemonSet, mirror, finished pods).
    Skip,
    /// Must be rescheduled elsewhere first.
    Move,
    /// Keeps the node (upstream's `BlockingPodReason`).
    Block(&'static str),
}

/// What the rules read of a pod.
pub struct PodFacts<'a> {
    pub pod: &'a Value,
    /// Whether a PodDisruptionBudget selects the pod.
    pub has_pdb: bool,
}

/// One drainability rule: `None` passes the pod to the next rule.
pub struct Rule {
    pub name: &'static str,
    pub check: fn(&PodFacts<'_>, &Options) -> Option<Verdict>,
}

fn annotation<'a>(pod: &'a Value, k: &str) -> Option<&'a str> {
    pod["metadata"]["annotations"][k].as_str()
}

fn controller_kind(pod: &Value) -> Option<&str> {
    pod["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .and_then(|r| r["kind"].as_str())
}

/// Local volumes upstream will not lose silently: hostPath, and emptyDir not backed by memory.
fn blocking_local_volumes(pod: &Value) -> Vec<String> {
    let allowed: BTreeSet<&str> = annotation(pod, SAFE_TO_EVICT_LOCAL_VOLUMES)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| {
            v["hostPath"].is_object()
                || (v["emptyDir"].is_object() && v["emptyDir"]["medium"] != "Memory")
        })
        .filter_map(|v| v["name"].as_str())
        .filter(|n| !allowed.contains(n))
        .map(str::to_string)
        .collect()
}

/// Upstream's drainability rules, in its order. The first rule with an answer decides.
pub const RULES: &[Rule] = &[
    Rule {
        name: "mirror",
        check: |f, _| annotation(f.pod, crate::drain::MIRROR_POD_ANNOTATION).map(|_| Verdict::Skip),
    },
    Rule {
        name: "terminal",
        check: |f, _| {
            matches!(
                f.pod["status"]["phase"].as_str(),
                Some("Succeeded" | "Failed")
            )
            .then_some(Verdict::Skip)
        },
    },
    Rule {
        name: "daemonset",
        check: |f, _| {
            (controller_kind(f.pod) == Some("DaemonSet")
                || annotation(f.pod, DAEMONSET_POD) == Some("true"))
            .then_some(Verdict::Skip)
        },
    },
    Rule {
        name: "safe-to-evict",
        check: |f, _| match annotation(f.pod, SAFE_TO_EVICT) {
            Some("true") => Some(Verdict::Move),
            Some("false") => Some(Verdict::Block("NotSafeToEvictAnnotation")),
            _ => None,
        },
    },
    Rule {
        name: "replicated",
        check: |f, _| {
            controller_kind(f.pod)
                .is_none()
                .then_some(Verdict::Block("NotReplicated"))
        },
    },
    Rule {
        name: "system",
        check: |f, o| {
            (o.skip_nodes_with_system_pods
                && f.pod["metadata"]["namespace"] == "kube-system"
                && !f.has_pdb)
                .then_some(Verdict::Block("UnmovableKubeSystemPod"))
        },
    },
    Rule {
        name: "local-storage",
        check: |f, o| {
            (o.skip_nodes_with_local_storage && !blocking_local_volumes(f.pod).is_empty())
                .then_some(Verdict::Block("LocalStorageRequested"))
        },
    },
];

/// The verdict of the rules on one pod (no rule answering means it moves).
pub fn judge(facts: &PodFacts<'_>, options: &Options) -> Verdict {
    RULES
        .iter()
        .find_map(|r| (r.check)(facts, options))
        .unwrap_or(Verdict::Move)
}

/// Whether the budgets allow evicting `pods` (each `(pod, the PDBs selecting it)`): every budget
/// must allow as many disruptions as pods of it leave (upstream's `NotEnoughPdb`).
pub fn budgets_allow(pods: &[(&Value, Vec<&Value>)]) -> bool {
    let mut wanted: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (_, pdbs) in pods {
        for pdb in pdbs {
            let key = format!(
                "{}/{}",
                pdb["metadata"]["namespace"].as_str().unwrap_or_default(),
                pdb["metadata"]["name"].as_str().unwrap_or_default()
            );
            let allowed = pdb["status"]["disruptionsAllowed"].as_i64().unwrap_or(0);
            wanted.entry(key).or_insert((0, allowed)).0 += 1;
        }
    }
    wanted.values().all(|(want, allowed)| want <= allowed)
}

/// A node's utilization as upstream computes it: the larger of requested/allocatable for CPU and
/// memory, over the given pods' requests.
pub fn utilization(node: &NodeSpec, pods: &[&PodInfo]) -> f64 {
    let (mut cpu, mut mem) = (0i64, 0i64);
    for p in pods {
        cpu += p.requests.milli_cpu;
        mem += p.requests.memory;
    }
    let frac = |used: i64, alloc: i64| {
        if alloc <= 0 {
            0.0
        } else {
            used as f64 / alloc as f64
        }
    };
    frac(cpu, node.allocatable.milli_cpu).max(frac(mem, node.allocatable.memory))
}

// ---- the status ConfigMap ----

/// Go's `time.Time.String()` in UTC: `2026-10-02 14:29:22.999645779 +0000 UTC`.
pub fn go_time(t: jiff::Timestamp) -> String {
    let nanos = t.subsec_nanosecond();
    let base = t.strftime("%Y-%m-%d %H:%M:%S").to_string();
    if nanos == 0 {
        format!("{base} +0000 UTC")
    } else {
        let frac = format!("{nanos:09}");
        format!("{base}.{} +0000 UTC", frac.trim_end_matches('0'))
    }
}

/// Node counts of a group or the cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub registered: i64,
    pub ready: i64,
    pub not_started: i64,
    pub being_deleted: i64,
    pub unready: i64,
    /// Instances without a Node yet.
    pub unregistered: i64,
}

/// One group's line in the status document.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupStatus {
    pub name: String,
    pub counts: Counts,
    pub target: i64,
    pub min: i64,
    pub max: i64,
    pub scale_up_in_progress: bool,
    pub candidates: usize,
}

/// The whole document's inputs (times are rendered separately so "did it change" ignores them).
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterStatus {
    pub counts: Counts,
    pub healthy: bool,
    pub scale_up_in_progress: bool,
    pub candidates: usize,
    pub groups: Vec<GroupStatus>,
}

fn counts_json(c: &Counts) -> Value {
    let mut registered = json!({
        "total": c.registered, "ready": c.ready, "notStarted": c.not_started,
        "unready": {"total": c.unready, "resourceUnready": 0},
    });
    if c.being_deleted > 0 {
        registered["beingDeleted"] = json!(c.being_deleted);
    }
    json!({"registered": registered, "longUnregistered": 0, "unregistered": c.unregistered})
}

/// The status as `ClusterAutoscalerStatus` (upstream ≥ 1.30's structured form), every condition
/// stamped with `probe`; `since` gives each condition's last transition.
pub fn status_document(
    s: &ClusterStatus,
    probe: jiff::Timestamp,
    since: &dyn Fn(&str, &str) -> jiff::Timestamp,
) -> Value {
    let t = |x: jiff::Timestamp| skiff_controllers::runtime::rfc3339(x);
    let cond = |scope: &str, kind: &str, status: &str| {
        let mut c = Map::new();
        c.insert("status".into(), json!(status));
        c.insert("lastProbeTime".into(), json!(t(probe)));
        c.insert(
            "lastTransitionTime".into(),
            json!(t(since(&format!("{scope}/{kind}"), status))),
        );
        c
    };
    let scale_down = |scope: &str, n: usize| {
        let mut c = cond(
            scope,
            "scaleDown",
            if n > 0 {
                "CandidatesPresent"
            } else {
                "NoCandidates"
            },
        );
        if n > 0 {
            c.insert("candidates".into(), json!(n));
        }
        Value::Object(c)
    };
    let mut health = cond(
        "cluster",
        "health",
        if s.healthy { "Healthy" } else { "Unhealthy" },
    );
    health.insert("nodeCounts".into(), counts_json(&s.counts));
    let groups: Vec<Value> = s
        .groups
        .iter()
        .map(|g| {
            let mut h = cond(&g.name, "health", "Healthy");
            h.insert("nodeCounts".into(), counts_json(&g.counts));
            h.insert("cloudProviderTarget".into(), json!(g.target));
            h.insert("minSize".into(), json!(g.min));
            h.insert("maxSize".into(), json!(g.max));
            let mut up = cond(
                &g.name,
                "scaleUp",
                if g.scale_up_in_progress {
                    "InProgress"
                } else {
                    "NoActivity"
                },
            );
            up.insert("backoffInfo".into(), json!({}));
            json!({"name": g.name, "health": h, "scaleUp": up,
                   "scaleDown": scale_down(&g.name, g.candidates)})
        })
        .collect();
    let mut doc = json!({
        "time": go_time(probe),
        "autoscalerStatus": "Running",
        "clusterWide": {
            "health": health,
            "scaleUp": cond("cluster", "scaleUp",
                if s.scale_up_in_progress { "InProgress" } else { "NoActivity" }),
            "scaleDown": scale_down("cluster", s.candidates),
        },
    });
    if !groups.is_empty() {
        doc["nodeGroups"] = json!(groups);
    }
    doc
}

/// YAML as Go's `sigs.k8s.io/yaml` writes a JSON value: block style, map keys sorted, strings
/// quoted only where YAML would read them as something else.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    emit(v, 0, &mut out);
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let plain = !s.is_empty()
                && !s.contains(": ")
                && !s.contains(" #")
                && !s.ends_with(':')
                && !s.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@` ".contains(c))
                && !matches!(
                    s.to_ascii_lowercase().as_str(),
                    "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~" | "y" | "n"
                )
                && s.parse::<f64>().is_err()
                && !(s.starts_with(|c: char| c.is_ascii_digit())
                    && s.contains('T')
                    && s.ends_with('Z'));
            if plain {
                s.clone()
            } else {
                serde_json::to_string(s).unwrap_or_default()
            }
        }
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn emit(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for k in keys {
                let child = &m[k];
                match child {
                    Value::Object(c) if !c.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        emit(child, indent + 2, out);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        emit(child, indent, out);
                    }
                    Value::Object(_) => out.push_str(&format!("{pad}{k}: {{}}\n")),
                    Value::Array(_) => out.push_str(&format!("{pad}{k}: []\n")),
                    s => out.push_str(&format!("{pad}{k}: {}\n", scalar(s))),
                }
            }
        }
        Value::Array(a) => {
            for item in a {
                let mut inner = String::new();
                emit(item, indent + 2, &mut inner);
                // The first line of the item goes after "- ".
                let body = inner.strip_prefix(&format!("{pad}  ")).unwrap_or(&inner);
                match item {
                    Value::Object(_) | Value::Array(_) => {
                        out.push_str(&format!("{pad}- {body}"));
                    }
                    s => out.push_str(&format!("{pad}- {}\n", scalar(s))),
                }
            }
        }
        s => out.push_str(&format!("{pad}{}\n", scalar(s))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, cpu: &str, mem: &str, labels: Value, taints: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels},
               "spec": {"taints": taints},
               "status": {"allocatable": {"cpu": cpu, "memory": mem, "pods": "17"}}})
    }

    fn pod(name: &str, cpu: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default", "uid": name,
                            "ownerReferences": [{"kind": "ReplicaSet", "name": "rs", "uid": "rs1", "controller": true}]},
               "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "100Mi"}}}]},
               "status": {"phase": "Pending", "conditions": [
                   {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}})
    }

    fn group(name: &str, min: i64, max: i64, target: i64, tags: &[(&str, &str)]) -> NodeGroup {
        let mut all = vec![
            json!({"Key": ENABLED_TAG, "Value": "true"}),
            json!({"Key": "k8s.io/cluster-autoscaler/c1", "Value": "owned"}),
        ];
        all.extend(tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})));
        NodeGroup::discover(
            &json!({"AutoScalingGroupName": name, "MinSize": min, "MaxSize": max,
                    "DesiredCapacity": target, "Tags": all, "Instances": [], "AvailabilityZones": ["us-east-1a"]}),
            "c1",
        )
        .unwrap()
    }

    #[test]
    fn go_durations_parse_as_go_does() {
        assert_eq!(parse_go_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        for bad in ["", "10", "5x", "-1s", "s"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn config_map_sets_flags_and_reports_bad_ones() {
        let (o, problems) = Options::from_config(&json!({
            "scan-interval": "1s", "expander": "random", "scale-down-unneeded-time": "2s",
            "scale-down-utilization-threshold": "0.7", "skip-nodes-with-system-pods": "false",
            "scale-down-delay-after-add": "nonsense", "bogus": "1",
        }));
        assert_eq!(o.scan_interval, Duration::from_secs(1));
        assert_eq!(o.expander, Expander::Random);
        assert_eq!(o.scale_down_unneeded_time, Duration::from_secs(2));
        assert_eq!(o.scale_down_utilization_threshold, 0.7);
        assert!(!o.skip_nodes_with_system_pods);
        assert_eq!(o.scale_down_delay_after_add, Duration::from_secs(600));
        assert_eq!(
            problems,
            vec![
                "invalid value \"nonsense\" for flag --scale-down-delay-after-add".to_string(),
                "unknown flag: --bogus".to_string(),
            ]
        );
    }

    #[test]
    fn discovery_needs_both_tags_and_reads_group_options() {
        let g = group(
            "asg-a",
            1,
            4,
            2,
            &[
                (
                    "k8s.io/cluster-autoscaler/node-template/autoscaling-options/scaledownunneededtime",
                    "1s",
                ),
                (
                    "k8s.io/cluster-autoscaler/node-template/autoscaling-options/scaledownutilizationthreshold",
                    "0.3",
                ),
                ("k8s.io/cluster-autoscaler/node-template/label/team", "a"),
                (
                    "k8s.io/cluster-autoscaler/node-template/taint/dedicated",
                    "gpu:NoSchedule",
                ),
                (
                    "k8s.io/cluster-autoscaler/node-template/taint/bad",
                    "x:Sometimes",
                ),
            ],
        );
        assert_eq!((g.min, g.max, g.target), (1, 4, 2));
        let o = Options::default();
        assert_eq!(g.options.unneeded_time(&o), Duration::from_secs(1));
        assert_eq!(g.options.threshold(&o), 0.3);
        assert_eq!(g.template_labels()["team"], "a");
        assert_eq!(
            g.template_taints(),
            vec![json!({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"})]
        );
        let other_cluster = json!({"AutoScalingGroupName": "x", "Tags": [
            {"Key": ENABLED_TAG, "Value": "true"}, {"Key": "k8s.io/cluster-autoscaler/c2", "Value": "owned"}]});
        assert!(NodeGroup::discover(&other_cluster, "c1").is_none());
    }

    #[test]
    fn template_drops_node_state_and_adds_tag_labels() {
        let g = group(
            "asg-a",
            0,
            3,
            0,
            &[("k8s.io/cluster-autoscaler/node-template/label/team", "a")],
        );
        let live = json!({"metadata": {"name": "ip-1", "labels": {"kubernetes.io/hostname": "ip-1", "x": "y"}},
            "spec": {"unschedulable": true, "taints": [
                {"key": TO_BE_DELETED_TAINT, "value": "1", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                {"key": "gpu", "value": "yes", "effect": "NoSchedule"}]},
            "status": {"allocatable": {"cpu": "1930m"}}});
        let t = template_node(&live, &g, "template-node-for-asg-a");
        assert_eq!(
            t["metadata"]["labels"]["kubernetes.io/hostname"],
            "template-node-for-asg-a"
        );
        assert_eq!(t["metadata"]["labels"]["team"], "a");
        assert_eq!(t["metadata"]["labels"]["x"], "y");
        assert_eq!(
            t["spec"]["taints"],
            json!([{"key": "gpu", "value": "yes", "effect": "NoSchedule"}])
        );
        assert!(t["spec"]["unschedulable"].is_null());
    }

    #[test]
    fn estimate_binpacks_within_max_and_explains_refusals() {
        let profile = skiff_scheduler::plugins::default_profile();
        let mut cache = Cache::new();
        let g = group("asg-a", 1, 4, 1, &[]);
        let template = node(
            "t",
            "1930m",
            "3Gi",
            json!({"kubernetes.io/os": "linux"}),
            json!([]),
        );
        let pods: Vec<Arc<PodInfo>> = (0..6)
            .map(|i| Arc::new(PodInfo::parse(&pod(&format!("p{i}"), "1"))))
            .collect();
        let mut reasons = BTreeMap::new();
        let o = estimate(&profile, &mut cache, &g, &template, &pods, &mut reasons).unwrap();
        // One 1-CPU pod per 1930m node; three nodes of room.
        assert_eq!(o.nodes, 3);
        assert_eq!(o.pods, vec!["default/p0", "default/p1", "default/p2"]);
        assert!(reasons.is_empty());
        assert_eq!(
            cache.num_nodes(),
            0,
            "the simulation leaves the cache as it found it"
        );

        let full = group("asg-b", 1, 2, 2, &[]);
        assert!(
            estimate(
                &profile,
                &mut cache,
                &full,
                &template,
                &pods[..1],
                &mut reasons
            )
            .is_none()
        );
        assert_eq!(reasons["default/p0"], vec![MAX_SIZE_REACHED.to_string()]);

        let tainted = node(
            "t",
            "4",
            "8Gi",
            json!({}),
            json!([{"key": "gpu", "value": "y", "effect": "NoSchedule"}]),
        );
        let mut reasons = BTreeMap::new();
        assert!(estimate(&profile, &mut cache, &g, &tainted, &pods[..1], &mut reasons).is_none());
        assert!(
            reasons["default/p0"][0].contains("untolerated taint"),
            "{reasons:?}"
        );
        assert_eq!(
            not_triggered_message(&[
                MAX_SIZE_REACHED.into(),
                MAX_SIZE_REACHED.into(),
                "Insufficient cpu".into()
            ]),
            "pod didn't trigger scale-up: 1 Insufficient cpu, 2 max node group size reached"
        );
    }

    #[test]
    fn expanders_choose_as_documented() {
        let opt = |g: &str, pods: usize, waste: f64| ScaleUpOption {
            group: g.into(),
            nodes: 1,
            pods: (0..pods).map(|i| format!("p{i}")).collect(),
            waste,
        };
        let options = vec![
            opt("big", 2, 1.2),
            opt("small", 1, 0.4),
            opt("same", 1, 0.4),
        ];
        assert_eq!(
            choose(Expander::LeastWaste, &options, |_| 0).unwrap().group,
            "same"
        );
        assert_eq!(
            choose(Expander::MostPods, &options, |_| 0).unwrap().group,
            "big"
        );
        assert_eq!(
            choose(Expander::Random, &options, |_| 1).unwrap().group,
            "small"
        );
        assert!(choose(Expander::Random, &[], |_| 0).is_none());
        assert_eq!(
            triggered_message("eks-ng-1", 1, 3, 4),
            "pod triggered scale-up: [{eks-ng-1 1->3 (max: 4)}]"
        );
    }

    #[test]
    fn drainability_rules_in_upstream_order() {
        let o = Options::default();
        let verdict = |p: Value, has_pdb: bool| judge(&PodFacts { pod: &p, has_pdb }, &o);
        let mut p = pod("a", "1");
        assert_eq!(verdict(p.clone(), false), Verdict::Move);
        p["metadata"]["ownerReferences"][0]["kind"] = json!("DaemonSet");
        assert_eq!(verdict(p.clone(), false), Verdict::Skip);
        let mut bare = pod("b", "1");
        bare["metadata"]["ownerReferences"] = json!([]);
        assert_eq!(
            verdict(bare.clone(), false),
            Verdict::Block("NotReplicated")
        );
        bare["metadata"]["annotations"] = json!({SAFE_TO_EVICT: "true"});
        assert_eq!(verdict(bare, false), Verdict::Move);
        let mut sys = pod("c", "1");
        sys["metadata"]["namespace"] = json!("kube-system");
        assert_eq!(
            verdict(sys.clone(), false),
            Verdict::Block("UnmovableKubeSystemPod")
        );
        assert_eq!(verdict(sys, true), Verdict::Move);
        let mut local = pod("d", "1");
        local["spec"]["volumes"] = json!([{"name": "scratch", "emptyDir": {}}, {"name": "m", "emptyDir": {"medium": "Memory"}}]);
        assert_eq!(
            verdict(local.clone(), false),
            Verdict::Block("LocalStorageRequested")
        );
        local["metadata"]["annotations"] = json!({SAFE_TO_EVICT_LOCAL_VOLUMES: "scratch"});
        assert_eq!(verdict(local, false), Verdict::Move);
        let mut pinned = pod("e", "1");
        pinned["metadata"]["annotations"] = json!({SAFE_TO_EVICT: "false"});
        assert_eq!(
            verdict(pinned, false),
            Verdict::Block("NotSafeToEvictAnnotation")
        );
        let mut done = pod("f", "1");
        done["status"]["phase"] = json!("Succeeded");
        assert_eq!(verdict(done, false), Verdict::Skip);
    }

    #[test]
    fn budgets_count_every_pod_they_cover() {
        let pdb = json!({"metadata": {"name": "b", "namespace": "default"}, "status": {"disruptionsAllowed": 1}});
        let (a, b) = (pod("a", "1"), pod("b", "1"));
        assert!(budgets_allow(&[(&a, vec![&pdb])]));
        assert!(!budgets_allow(&[(&a, vec![&pdb]), (&b, vec![&pdb])]));
        assert!(budgets_allow(&[(&a, vec![])]));
    }

    #[test]
    fn utilization_is_the_larger_share() {
        let n = NodeSpec::parse(&node("n", "2", "4Gi", json!({}), json!([])));
        let p = PodInfo::parse(&pod("a", "500m"));
        let u = utilization(&n, &[&p]);
        assert!((u - 0.25).abs() < 1e-9, "{u}");
        assert_eq!(utilization(&n, &[]), 0.0);
    }

    #[test]
    fn status_document_renders_as_upstream_yaml() {
        let s = ClusterStatus {
            counts: Counts {
                registered: 2,
                ready: 2,
                ..Counts::default()
            },
            healthy: true,
            scale_up_in_progress: false,
            candidates: 1,
            groups: vec![GroupStatus {
                name: "eks-ng-1".into(),
                counts: Counts {
                    registered: 2,
                    ready: 2,
                    ..Counts::default()
                },
                target: 2,
                min: 1,
                max: 4,
                scale_up_in_progress: false,
                candidates: 1,
            }],
        };
        let at = jiff::Timestamp::from_second(1_790_000_000).unwrap();
        let doc = status_document(&s, at, &|_, _| at);
        let yaml = to_yaml(&doc);
        assert!(
            yaml.starts_with("autoscalerStatus: Running\nclusterWide:\n  health:\n"),
            "{yaml}"
        );
        assert!(yaml.contains("nodeGroups:\n- health:\n    cloudProviderTarget: 2\n    lastProbeTime: \"2026-09-21T"), "{yaml}");
        assert!(yaml.contains("    maxSize: 4\n    minSize: 1\n"), "{yaml}");
        assert!(yaml.contains("  name: eks-ng-1\n"), "{yaml}");
        assert!(yaml.contains("  scaleDown:\n    candidates: 1\n"), "{yaml}");
        assert!(yaml.contains("    backoffInfo: {}\n"), "{yaml}");
        assert!(
            yaml.ends_with("time: 2026-09-21 14:13:20 +0000 UTC\n"),
            "{yaml}"
        );
    }
}
