//! The scheduler's compact view of Pods and Nodes, parsed once from wire JSON when an informer
//! event arrives, so filters and scores never touch `serde_json::Value` in the hot loop.
//!
//! Anything malformed in a client-written object degrades to "absent" (a request that does not
//! parse counts as zero, as the API server would have refused it anyway); parsing never panics.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use skiff_k8s_core::quantity::Quantity;
use skiff_k8s_core::selector::Selector;

/// Default CPU request (millicores) counted for scoring when a container asks for none
/// (upstream `DefaultMilliCPURequest`), so BestEffort pods still spread.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Default memory request counted for scoring (upstream `DefaultMemoryRequest`, 200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Requested or allocatable resources. CPU is in millicores, the rest in base units.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[doc(alias = "framework.Resource")]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// Extended and hugepages resources (`nvidia.com/gpu`, `hugepages-2Mi`), by name.
    pub scalar: BTreeMap<String, i64>,
}

impl Resources {
    /// Parses a `requests`/`allocatable` map. `pods` is skipped (it is a count, not a request).
    pub fn from_map(map: Option<&Value>) -> Self {
        let mut r = Resources::default();
        let Some(map) = map.and_then(Value::as_object) else {
            return r;
        };
        for (name, q) in map {
            let Some(q) = q.as_str().and_then(|s| Quantity::parse(s).ok()) else {
                continue;
            };
            match name.as_str() {
                "cpu" => r.milli_cpu = q.milli_value(),
                "memory" => r.memory = q.value(),
                "ephemeral-storage" => r.ephemeral_storage = q.value(),
                "pods" => {}
                other => {
                    r.scalar.insert(other.to_string(), q.value());
                }
            }
        }
        r
    }

    pub fn add(&mut self, o: &Resources) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.ephemeral_storage += o.ephemeral_storage;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    pub fn sub(&mut self, o: &Resources) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.ephemeral_storage -= o.ephemeral_storage;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// Element-wise maximum (init containers run one at a time).
    fn max_with(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }
}

/// A node taint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taint {
    pub key: String,
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// A pod toleration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Toleration {
    pub key: String,
    /// `Equal` (default) or `Exists`.
    pub operator: String,
    pub value: String,
    /// Empty tolerates every effect.
    pub effect: String,
}

impl Toleration {
    /// `ToleratesTaint`: an empty key with `Exists` tolerates everything.
    pub fn tolerates(&self, t: &Taint) -> bool {
        if !self.effect.is_empty() && self.effect != t.effect {
            return false;
        }
        if !self.key.is_empty() && self.key != t.key {
            return false;
        }
        match self.operator.as_str() {
            "Exists" => true,
            "" | "Equal" => self.value == t.value,
            _ => false,
        }
    }
}

/// One node selector requirement (`matchExpressions` / `matchFields` entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRequirement {
    pub key: String,
    pub operator: String,
    pub values: Vec<String>,
}

impl NodeRequirement {
    fn matches_value(&self, v: Option<&str>) -> bool {
        match (self.operator.as_str(), v) {
            ("In", Some(v)) => self.values.iter().any(|x| x == v),
            ("In", None) => false,
            ("NotIn", Some(v)) => !self.values.iter().any(|x| x == v),
            ("NotIn", None) => true,
            ("Exists", v) => v.is_some(),
            ("DoesNotExist", v) => v.is_none(),
            ("Gt" | "Lt", Some(v)) => {
                let (Ok(have), Some(Ok(want))) = (
                    v.parse::<i64>(),
                    self.values.first().map(|s| s.parse::<i64>()),
                ) else {
                    return false;
                };
                if self.operator == "Gt" {
                    have > want
                } else {
                    have < want
                }
            }
            _ => false,
        }
    }
}

/// A `nodeSelectorTerm`: every expression and field requirement must hold. A term with no
/// requirement matches nothing (upstream `nodeSelectorTerms` semantics).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeSelectorTerm {
    pub expressions: Vec<NodeRequirement>,
    /// `matchFields`: only `metadata.name` is defined.
    pub fields: Vec<NodeRequirement>,
}

impl NodeSelectorTerm {
    /// Parses one term (`{matchExpressions, matchFields}`).
    pub fn parse(v: &Value) -> Self {
        let reqs = |k: &str| {
            v.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|e| NodeRequirement {
                            key: str_at(e, "key").to_string(),
                            operator: str_at(e, "operator").to_string(),
                            values: strings(e.get("values")),
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        NodeSelectorTerm {
            expressions: reqs("matchExpressions"),
            fields: reqs("matchFields"),
        }
    }

    pub fn matches(&self, node_name: &str, labels: &BTreeMap<String, String>) -> bool {
        if self.expressions.is_empty() && self.fields.is_empty() {
            return false;
        }
        self.expressions
            .iter()
            .all(|r| r.matches_value(labels.get(&r.key).map(String::as_str)))
            && self
                .fields
                .iter()
                .all(|r| r.key == "metadata.name" && r.matches_value(Some(node_name)))
    }
}

/// A pod (anti-)affinity term: pods matching `selector` in `namespaces` (or in namespaces
/// matching `namespace_selector`) within the same `topology_key` domain.
#[derive(Clone, Debug)]
pub struct AffinityTerm {
    pub selector: Selector,
    /// Explicit namespaces; with no `namespace_selector`, empty means the pod's own namespace.
    pub namespaces: Vec<String>,
    pub namespace_selector: Option<Selector>,
    pub topology_key: String,
    /// Preferred terms only (1..100).
    pub weight: i64,
}

impl AffinityTerm {
    fn parse(v: &Value, own_ns: &str, weight: i64) -> Option<Self> {
        let selector =
            Selector::from_label_selector(v.get("labelSelector").unwrap_or(&Value::Null)).ok()?;
        let namespace_selector = match v.get("namespaceSelector") {
            None | Some(Value::Null) => None,
            Some(s) => Some(Selector::from_label_selector(s).ok()?),
        };
        let mut namespaces = strings(v.get("namespaces"));
        if namespaces.is_empty() && namespace_selector.is_none() {
            namespaces.push(own_ns.to_string());
        }
        Some(AffinityTerm {
            selector,
            namespaces,
            namespace_selector,
            topology_key: str_at(v, "topologyKey").to_string(),
            weight,
        })
    }

    /// Whether `pod` (in a namespace labelled `ns_labels`) is selected by this term.
    pub fn matches_pod(&self, pod: &PodInfo, ns_labels: Option<&BTreeMap<String, String>>) -> bool {
        let ns_ok = self.namespaces.contains(&pod.namespace)
            || self
                .namespace_selector
                .as_ref()
                .is_some_and(|s| ns_labels.is_some_and(|l| s.matches(l)));
        ns_ok && self.selector.matches(&pod.labels)
    }
}

/// One `topologySpreadConstraints` entry.
#[derive(Clone, Debug)]
pub struct SpreadConstraint {
    pub max_skew: i64,
    pub topology_key: String,
    /// `true` for `DoNotSchedule`, `false` for `ScheduleAnyway`.
    pub hard: bool,
    pub selector: Selector,
    pub min_domains: Option<i64>,
    /// Matching pods are counted by their controller owner instead of by `selector` (the
    /// default system constraints, whose selector upstream derives from the owning workload).
    pub by_owner: Option<String>,
    /// `nodeAffinityPolicy: Honor` (default): nodes the pod cannot go to are not domains.
    pub honor_node_affinity: bool,
    /// `nodeTaintsPolicy: Honor`: tainted nodes the pod does not tolerate are not domains.
    pub honor_taints: bool,
}

/// A hostPort a container asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub protocol: String,
    /// `0.0.0.0` when unset.
    pub ip: String,
    pub port: i64,
}

impl HostPort {
    /// Upstream `HostPortInfo` conflict rule: same protocol and port, and the same IP or either
    /// side on the wildcard address.
    pub fn conflicts(&self, o: &HostPort) -> bool {
        self.port == o.port
            && self.protocol == o.protocol
            && (self.ip == o.ip || self.ip == "0.0.0.0" || o.ip == "0.0.0.0")
    }
}

/// Everything the scheduler needs of a Pod.
#[derive(Clone, Debug)]
#[doc(alias = "framework.PodInfo")]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    pub labels: BTreeMap<String, String>,
    pub priority: i32,
    /// RFC 3339; sorts lexicographically in time order for one format.
    pub creation: String,
    pub scheduler_name: String,
    pub node_name: String,
    pub nominated_node_name: String,
    /// Terminal pods (`Succeeded`/`Failed`) hold no resources.
    pub terminal: bool,
    pub deleting: bool,
    /// Effective request: max(sum of containers, each init container) + overhead.
    pub requests: Resources,
    /// [`Self::requests`] with upstream's defaults for unset CPU/memory, for scoring.
    pub non_zero_cpu: i64,
    pub non_zero_mem: i64,
    pub node_selector: BTreeMap<String, String>,
    pub required_node_affinity: Option<Vec<NodeSelectorTerm>>,
    pub preferred_node_affinity: Vec<(i64, NodeSelectorTerm)>,
    pub tolerations: Vec<Toleration>,
    pub host_ports: Vec<HostPort>,
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<AffinityTerm>,
    pub preferred_anti_affinity: Vec<AffinityTerm>,
    pub spread_constraints: Vec<SpreadConstraint>,
    /// UID of the controller owner (ReplicaSet, StatefulSet, …), for default spreading.
    pub controller_uid: Option<String>,
    /// `persistentVolumeClaim.claimName` of each volume.
    pub pvcs: Vec<String>,
    /// `preemptionPolicy: Never`.
    pub never_preempt: bool,
    /// `spec.schedulingGates` is not empty: the pod waits outside the queue (upstream
    /// SchedulingGates PreEnqueue plugin).
    pub gated: bool,
}

/// Shared handle: the cache, the queue and node infos hold the same parsed pod.
pub type PodRef = Arc<PodInfo>;

/// `namespace/name`.
pub type PodKey = String;

impl PodInfo {
    pub fn key(&self) -> PodKey {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Whether this scheduler owns the pod (`default-scheduler` or unset).
    pub fn is_ours(&self) -> bool {
        self.scheduler_name.is_empty() || self.scheduler_name == crate::SCHEDULER_NAME
    }

    pub fn has_affinity(&self) -> bool {
        !self.required_affinity.is_empty()
            || !self.preferred_affinity.is_empty()
            || !self.required_anti_affinity.is_empty()
            || !self.preferred_anti_affinity.is_empty()
    }

    /// Parses a Pod in wire shape.
    pub fn parse(pod: &Value) -> PodInfo {
        let meta = pod.get("metadata").unwrap_or(&Value::Null);
        let spec = pod.get("spec").unwrap_or(&Value::Null);
        let namespace = str_at(meta, "namespace").to_string();

        let mut sum = Resources::default();
        for c in array(spec.get("containers")) {
            sum.add(&Resources::from_map(
                c.get("resources").and_then(|r| r.get("requests")),
            ));
        }
        let mut requests = sum.clone();
        let mut non_zero_cpu = 0;
        let mut non_zero_mem = 0;
        for c in array(spec.get("containers")) {
            let r = Resources::from_map(c.get("resources").and_then(|r| r.get("requests")));
            non_zero_cpu += if has_request(c, "cpu") {
                r.milli_cpu
            } else {
                DEFAULT_MILLI_CPU_REQUEST
            };
            non_zero_mem += if has_request(c, "memory") {
                r.memory
            } else {
                DEFAULT_MEMORY_REQUEST
            };
        }
        // Sidecars (restartPolicy: Always init containers) keep running, so they add to every
        // later init container and to the main containers; plain init containers run alone.
        let mut sidecars = Resources::default();
        for c in array(spec.get("initContainers")) {
            let r = Resources::from_map(c.get("resources").and_then(|r| r.get("requests")));
            if str_at(c, "restartPolicy") == "Always" {
                sidecars.add(&r);
                requests.add(&r);
            } else {
                let mut during = r.clone();
                during.add(&sidecars);
                requests.max_with(&during);
            }
        }
        let overhead = Resources::from_map(spec.get("overhead"));
        requests.add(&overhead);
        non_zero_cpu += overhead.milli_cpu;
        non_zero_mem += overhead.memory;

        let affinity = spec.get("affinity").unwrap_or(&Value::Null);
        let node_aff = affinity.get("nodeAffinity").unwrap_or(&Value::Null);
        let required_node_affinity = node_aff
            .get("requiredDuringSchedulingIgnoredDuringExecution")
            .and_then(|r| r.get("nodeSelectorTerms"))
            .and_then(Value::as_array)
            .map(|terms| terms.iter().map(NodeSelectorTerm::parse).collect());
        let preferred_node_affinity =
            array(node_aff.get("preferredDuringSchedulingIgnoredDuringExecution"))
                .iter()
                .map(|p| {
                    (
                        p.get("weight").and_then(Value::as_i64).unwrap_or(0),
                        NodeSelectorTerm::parse(p.get("preference").unwrap_or(&Value::Null)),
                    )
                })
                .collect();

        let terms = |kind: &str, preferred: bool| -> Vec<AffinityTerm> {
            let node = affinity.get(kind).unwrap_or(&Value::Null);
            if preferred {
                array(node.get("preferredDuringSchedulingIgnoredDuringExecution"))
                    .iter()
                    .filter_map(|w| {
                        AffinityTerm::parse(
                            w.get("podAffinityTerm").unwrap_or(&Value::Null),
                            &namespace,
                            w.get("weight").and_then(Value::as_i64).unwrap_or(0),
                        )
                    })
                    .collect()
            } else {
                array(node.get("requiredDuringSchedulingIgnoredDuringExecution"))
                    .iter()
                    .filter_map(|t| AffinityTerm::parse(t, &namespace, 1))
                    .collect()
            }
        };

        let tolerations = array(spec.get("tolerations"))
            .iter()
            .map(|t| Toleration {
                key: str_at(t, "key").to_string(),
                operator: str_at(t, "operator").to_string(),
                value: str_at(t, "value").to_string(),
                effect: str_at(t, "effect").to_string(),
            })
            .collect();

        let mut host_ports = Vec::new();
        for c in array(spec.get("containers"))
            .iter()
            .chain(array(spec.get("initContainers")))
        {
            for p in array(c.get("ports")) {
                let port = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
                if port > 0 {
                    let ip = str_at(p, "hostIP");
                    let proto = str_at(p, "protocol");
                    host_ports.push(HostPort {
                        protocol: if proto.is_empty() { "TCP" } else { proto }.to_string(),
                        ip: if ip.is_empty() { "0.0.0.0" } else { ip }.to_string(),
                        port,
                    });
                }
            }
        }

        let labels = string_map(meta.get("labels"));
        let controller_uid = array(meta.get("ownerReferences"))
            .iter()
            .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
            .map(|o| str_at(o, "uid").to_string());

        let spread_constraints = array(spec.get("topologySpreadConstraints"))
            .iter()
            .filter_map(|c| {
                let mut selector =
                    Selector::from_label_selector(c.get("labelSelector").unwrap_or(&Value::Null))
                        .ok()?;
                // matchLabelKeys: the pod's own values for those keys join the selector.
                let keys = strings(c.get("matchLabelKeys"));
                if !keys.is_empty() {
                    let extra: Vec<String> = keys
                        .iter()
                        .filter_map(|k| labels.get(k).map(|v| format!("{k}={v}")))
                        .collect();
                    let base = selector.to_string();
                    let joined = std::iter::once(base)
                        .filter(|s| !s.is_empty())
                        .chain(extra)
                        .collect::<Vec<_>>()
                        .join(",");
                    selector = Selector::parse(&joined).ok()?;
                }
                Some(SpreadConstraint {
                    max_skew: c.get("maxSkew").and_then(Value::as_i64).unwrap_or(1),
                    topology_key: str_at(c, "topologyKey").to_string(),
                    hard: str_at(c, "whenUnsatisfiable") != "ScheduleAnyway",
                    selector,
                    min_domains: c.get("minDomains").and_then(Value::as_i64),
                    by_owner: None,
                    honor_node_affinity: str_at(c, "nodeAffinityPolicy") != "Ignore",
                    honor_taints: str_at(c, "nodeTaintsPolicy") == "Honor",
                })
            })
            .collect();

        let status = pod.get("status").unwrap_or(&Value::Null);
        let phase = str_at(status, "phase");
        PodInfo {
            name: str_at(meta, "name").to_string(),
            uid: str_at(meta, "uid").to_string(),
            resource_version: str_at(meta, "resourceVersion").to_string(),
            labels,
            priority: spec
                .get("priority")
                .and_then(Value::as_i64)
                .and_then(|p| i32::try_from(p).ok())
                .unwrap_or(0),
            creation: str_at(meta, "creationTimestamp").to_string(),
            scheduler_name: str_at(spec, "schedulerName").to_string(),
            node_name: str_at(spec, "nodeName").to_string(),
            nominated_node_name: str_at(status, "nominatedNodeName").to_string(),
            terminal: phase == "Succeeded" || phase == "Failed",
            deleting: meta.get("deletionTimestamp").is_some_and(|v| !v.is_null()),
            requests,
            non_zero_cpu,
            non_zero_mem,
            node_selector: string_map(spec.get("nodeSelector")),
            required_node_affinity,
            preferred_node_affinity,
            tolerations,
            host_ports,
            required_affinity: terms("podAffinity", false),
            required_anti_affinity: terms("podAntiAffinity", false),
            preferred_affinity: terms("podAffinity", true),
            preferred_anti_affinity: terms("podAntiAffinity", true),
            spread_constraints,
            controller_uid,
            pvcs: array(spec.get("volumes"))
                .iter()
                .filter_map(|v| {
                    v.get("persistentVolumeClaim")
                        .map(|c| str_at(c, "claimName").to_string())
                })
                .collect(),
            never_preempt: str_at(spec, "preemptionPolicy") == "Never",
            gated: !array(spec.get("schedulingGates")).is_empty(),
            namespace,
        }
    }
}

/// Everything the scheduler needs of a Node.
#[derive(Clone, Debug, Default)]
pub struct NodeSpec {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `topology.kubernetes.io/zone`, looked up once: spreading reads it per node per pod.
    pub zone: Option<String>,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub allocatable: Resources,
    /// `status.allocatable.pods` (upstream default 110 when the kubelet reports none).
    pub max_pods: i64,
}

impl NodeSpec {
    pub fn parse(node: &Value) -> NodeSpec {
        let meta = node.get("metadata").unwrap_or(&Value::Null);
        let spec = node.get("spec").unwrap_or(&Value::Null);
        let alloc = node.get("status").and_then(|s| s.get("allocatable"));
        let labels = string_map(meta.get("labels"));
        NodeSpec {
            name: str_at(meta, "name").to_string(),
            zone: labels.get("topology.kubernetes.io/zone").cloned(),
            labels,
            taints: array(spec.get("taints"))
                .iter()
                .map(|t| Taint {
                    key: str_at(t, "key").to_string(),
                    value: str_at(t, "value").to_string(),
                    effect: str_at(t, "effect").to_string(),
                })
                .collect(),
            unschedulable: spec.get("unschedulable").and_then(Value::as_bool) == Some(true),
            allocatable: Resources::from_map(alloc),
            max_pods: alloc
                .and_then(|a| a.get("pods"))
                .and_then(Value::as_str)
                .and_then(|s| Quantity::parse(s).ok())
                .map_or(110, |q| q.value()),
        }
    }
}

fn has_request(c: &Value, name: &str) -> bool {
    c.get("resources")
        .and_then(|r| r.get("requests"))
        .and_then(|r| r.get(name))
        .is_some()
}

pub(crate) fn str_at<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

pub(crate) fn array(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    array(v)
        .iter()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect()
}

pub(crate) fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_take_init_max_sidecars_and_overhead() {
        let p = PodInfo::parse(&json!({
            "metadata": {"name": "p", "namespace": "d"},
            "spec": {
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "1Gi"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "200m", "nvidia.com/gpu": "1"}}},
                ],
                "initContainers": [
                    {"name": "i", "resources": {"requests": {"cpu": "1", "memory": "10Mi"}}},
                ],
                "overhead": {"cpu": "50m"},
            }
        }));
        assert_eq!(p.requests.milli_cpu, 1050);
        assert_eq!(p.requests.memory, 1 << 30);
        assert_eq!(p.requests.scalar["nvidia.com/gpu"], 1);
        // Container b sets no memory: the default is counted for scoring only.
        assert_eq!(p.non_zero_mem, (1 << 30) + DEFAULT_MEMORY_REQUEST);
        assert_eq!(p.non_zero_cpu, 350);
    }

    #[test]
    fn best_effort_pod_and_malformed_quantities_count_zero() {
        let p = PodInfo::parse(&json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "lots"}}}]}
        }));
        assert!(p.requests.is_zero());
        assert_eq!(
            p.non_zero_cpu, 0,
            "a set (if malformed) cpu request is not defaulted"
        );
        assert_eq!(p.non_zero_mem, DEFAULT_MEMORY_REQUEST);
    }

    #[test]
    fn toleration_table() {
        let t = |k: &str, v: &str, e: &str| Taint {
            key: k.into(),
            value: v.into(),
            effect: e.into(),
        };
        let tol = |k: &str, op: &str, v: &str, e: &str| Toleration {
            key: k.into(),
            operator: op.into(),
            value: v.into(),
            effect: e.into(),
        };
        let cases = [
            (
                tol("a", "Equal", "1", "NoSchedule"),
                t("a", "1", "NoSchedule"),
                true,
            ),
            (tol("a", "", "1", ""), t("a", "1", "NoExecute"), true),
            (tol("a", "Equal", "2", ""), t("a", "1", "NoSchedule"), false),
            (
                tol("a", "Exists", "", "NoSchedule"),
                t("a", "x", "NoSchedule"),
                true,
            ),
            (
                tol("a", "Exists", "", "NoSchedule"),
                t("a", "x", "NoExecute"),
                false,
            ),
            (tol("", "Exists", "", ""), t("any", "x", "NoExecute"), true),
            (tol("b", "Exists", "", ""), t("a", "", "NoSchedule"), false),
        ];
        for (i, (tol, taint, want)) in cases.iter().enumerate() {
            assert_eq!(tol.tolerates(taint), *want, "case {i}");
        }
    }

    #[test]
    fn node_selector_terms() {
        let labels: BTreeMap<String, String> = [
            ("zone".to_string(), "a".to_string()),
            ("n".to_string(), "5".to_string()),
        ]
        .into();
        let term = |e: Value| NodeSelectorTerm::parse(&e);
        let cases = [
            (
                json!({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "n", "operator": "Gt", "values": ["4"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "n", "operator": "Lt", "values": ["4"]}]}),
                false,
            ),
            (
                json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}),
                true,
            ),
            (
                json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}),
                false,
            ),
            (json!({}), false),
        ];
        for (i, (t, want)) in cases.into_iter().enumerate() {
            assert_eq!(term(t).matches("n1", &labels), want, "case {i}");
        }
    }

    #[test]
    fn host_port_conflicts() {
        let hp = |ip: &str, port| HostPort {
            protocol: "TCP".into(),
            ip: ip.into(),
            port,
        };
        assert!(hp("0.0.0.0", 80).conflicts(&hp("10.0.0.1", 80)));
        assert!(!hp("10.0.0.2", 80).conflicts(&hp("10.0.0.1", 80)));
        assert!(!hp("0.0.0.0", 81).conflicts(&hp("0.0.0.0", 80)));
        let mut udp = hp("0.0.0.0", 80);
        udp.protocol = "UDP".into();
        assert!(!udp.conflicts(&hp("0.0.0.0", 80)));
    }
}
