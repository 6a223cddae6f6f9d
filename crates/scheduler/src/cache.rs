//! Incremental cluster state: one [`NodeInfo`] per node with the sums the filters need
//! (requested resources, pod count, host ports, affinity counts), updated from pod events in
//! O(pods on that node), never by rescanning every pod for every pod scheduled.
//!
//! Upstream splits this between the scheduler cache and its per-cycle snapshot; Skiff's scheduler
//! is one task that owns the cache, so the cache is its own snapshot.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use crate::model::{HostPort, NodeSpec, PodKey, PodRef, Resources};

/// The well-known zone label default spreading uses.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// One node and the pods placed on it (bound or assumed).
#[derive(Clone, Debug)]
#[doc(alias = "framework.NodeInfo")]
pub struct NodeInfo {
    /// The node's name, also for ghost slots.
    pub name: String,
    /// `None` while pods are known on a node whose Node object is not (yet) seen.
    pub node: Option<Arc<NodeSpec>>,
    pub pods: Vec<PodRef>,
    pub requested: Resources,
    /// Requests with upstream defaults for unset CPU/memory (scoring only).
    pub non_zero_cpu: i64,
    pub non_zero_mem: i64,
    pub used_ports: Vec<HostPort>,
    pub pods_with_affinity: usize,
    pub pods_with_required_anti_affinity: usize,
    /// Pods per interned controller owner here: default spreading reads this for hundreds
    /// of nodes per pod, so it is stored inline (no pointer chase, no hashing).
    pub owners: OwnerCounts,
}

impl NodeInfo {
    pub fn new(name: &str, node: Option<Arc<NodeSpec>>) -> Self {
        NodeInfo {
            name: name.to_string(),
            node,
            pods: Vec::new(),
            requested: Resources::default(),
            non_zero_cpu: 0,
            non_zero_mem: 0,
            used_ports: Vec::new(),
            pods_with_affinity: 0,
            pods_with_required_anti_affinity: 0,
            owners: OwnerCounts::default(),
        }
    }

    /// The node's spec; filters only run on nodes that have one.
    pub fn spec(&self) -> &NodeSpec {
        static EMPTY: std::sync::OnceLock<NodeSpec> = std::sync::OnceLock::new();
        self.node
            .as_deref()
            .unwrap_or_else(|| EMPTY.get_or_init(NodeSpec::default))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Pods of the interned controller owner `id` on this node.
    pub fn owner_pods(&self, id: u32) -> i64 {
        i64::from(self.owners.get(id))
    }

    pub fn add_pod(&mut self, pod: PodRef) {
        self.requested.add(&pod.requests);
        self.non_zero_cpu += pod.non_zero_cpu;
        self.non_zero_mem += pod.non_zero_mem;
        self.used_ports.extend(pod.host_ports.iter().cloned());
        if pod.has_affinity() {
            self.pods_with_affinity += 1;
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity += 1;
        }
        self.pods.push(pod);
    }

    /// Removes the pod with this key; returns it when it was there.
    pub fn remove_pod(&mut self, namespace: &str, name: &str) -> Option<PodRef> {
        let i = self
            .pods
            .iter()
            .position(|p| p.name == name && p.namespace == namespace)?;
        let pod = self.pods.swap_remove(i);
        self.requested.sub(&pod.requests);
        self.non_zero_cpu -= pod.non_zero_cpu;
        self.non_zero_mem -= pod.non_zero_mem;
        for hp in &pod.host_ports {
            if let Some(j) = self.used_ports.iter().position(|u| u == hp) {
                self.used_ports.swap_remove(j);
            }
        }
        if pod.has_affinity() {
            self.pods_with_affinity -= 1;
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity -= 1;
        }
        Some(pod)
    }
}

/// Small map owner id → pod count, the first [`OwnerCounts::INLINE`] entries inline.
#[derive(Clone, Debug, Default)]
pub struct OwnerCounts {
    inline: [(u32, u32); OwnerCounts::INLINE],
    len: usize,
    spill: Vec<(u32, u32)>,
}

impl OwnerCounts {
    const INLINE: usize = 12;

    pub fn get(&self, id: u32) -> u32 {
        let n = self.len.min(Self::INLINE);
        self.inline[..n]
            .iter()
            .chain(self.spill.iter())
            .find(|(o, _)| *o == id)
            .map_or(0, |(_, c)| *c)
    }

    fn entry(&mut self, id: u32) -> Option<&mut (u32, u32)> {
        let n = self.len.min(Self::INLINE);
        self.inline[..n]
            .iter_mut()
            .chain(self.spill.iter_mut())
            .find(|(o, _)| *o == id)
    }

    fn add(&mut self, id: u32) {
        if let Some(e) = self.entry(id) {
            e.1 += 1;
        } else if self.len < Self::INLINE {
            self.inline[self.len] = (id, 1);
            self.len += 1;
        } else {
            self.spill.push((id, 1));
            self.len += 1;
        }
    }

    fn sub(&mut self, id: u32) {
        let n = self.len.min(Self::INLINE);
        if let Some(i) = self.inline[..n].iter().position(|(o, _)| *o == id) {
            self.inline[i].1 -= 1;
            if self.inline[i].1 == 0 {
                // Fill the hole from the spill, or with the last inline entry.
                self.inline[i] = match self.spill.pop() {
                    Some(l) => l,
                    None => self.inline[n - 1],
                };
                self.len -= 1;
            }
        } else if let Some(j) = self.spill.iter().position(|(o, _)| *o == id) {
            self.spill[j].1 -= 1;
            if self.spill[j].1 == 0 {
                self.spill.swap_remove(j);
                self.len -= 1;
            }
        }
    }
}

/// The scheduler's view of the cluster.
#[derive(Default)]
pub struct Cache {
    /// Node infos in a stable order (round-robin start index walks it); `index` maps names.
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    /// Number of entries of `nodes` with a Node object.
    real_nodes: usize,
    /// Placed pods: key → node name.
    placed: HashMap<PodKey, String>,
    /// Pods assumed by this scheduler whose binding is not confirmed by a watch event yet.
    assumed: HashSet<PodKey>,
    /// Pods carrying (anti-)affinity terms, so InterPodAffinity scans only those.
    affinity_pods: HashMap<PodKey, PodRef>,
    /// controller owner UID → node name → placed pods of that owner (default spreading).
    owner_counts: HashMap<String, HashMap<String, i64>>,
    /// controller owner UID → zone → placed pods of that owner (default zone spreading
    /// without walking every node of the owner per pod).
    owner_zone_counts: HashMap<String, HashMap<String, i64>>,
    /// zone → number of nodes in it.
    zones: HashMap<String, usize>,
    /// controller owner UID → small id used in [`NodeInfo::owners`].
    owner_ids: HashMap<String, u32>,
    pub namespaces: HashMap<String, BTreeMap<String, String>>,
    /// `namespace/name` → PVC.
    pub pvcs: HashMap<String, Value>,
    pub pvs: HashMap<String, Value>,
    pub storage_classes: HashMap<String, Value>,
    /// `namespace/name` → PodDisruptionBudget (preemption prefers victims they allow).
    pub pdbs: HashMap<String, Value>,
    /// node name → CSINode (per-driver attach limits for NodeVolumeLimits).
    pub csi_nodes: HashMap<String, Value>,
    /// Raw Namespace objects (their labels are kept in `namespaces`).
    pub(crate) pvs_scratch: HashMap<String, Value>,
    /// Pending pods nominated to a node by preemption: node → pods. Filters count them on
    /// that node for pods of no higher priority, so the room made by evictions is kept.
    nominated: HashMap<String, Vec<PodRef>>,
}

impl Cache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every node info slot, including ones without a Node object (skip those with
    /// [`NodeInfo::node`] `None`).
    pub fn node_infos(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// Number of nodes with a Node object (the "N" of "0/N nodes are available").
    pub fn num_nodes(&self) -> usize {
        self.real_nodes
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|i| &self.nodes[*i])
    }

    pub fn node_of(&self, key: &str) -> Option<&str> {
        self.placed.get(key).map(String::as_str)
    }

    pub fn is_assumed(&self, key: &str) -> bool {
        self.assumed.contains(key)
    }

    pub fn affinity_pods(&self) -> impl Iterator<Item = (&PodRef, &str)> {
        self.affinity_pods
            .values()
            .filter_map(|p| self.placed.get(&p.key()).map(|n| (p, n.as_str())))
    }

    /// Placed pods of a controller owner, per zone (`topology.kubernetes.io/zone`).
    pub fn owner_zone_counts(&self, owner_uid: &str) -> Option<&HashMap<String, i64>> {
        self.owner_zone_counts.get(owner_uid)
    }

    /// The interned id of a controller owner, if any of its pods is placed or was.
    pub fn owner_id(&self, uid: &str) -> Option<u32> {
        self.owner_ids.get(uid).copied()
    }

    /// Number of distinct zones among the nodes.
    pub fn num_zones(&self) -> usize {
        self.zones.len()
    }

    fn zone_of(&self, i: usize) -> Option<String> {
        self.nodes[i]
            .node
            .as_ref()
            .and_then(|n| n.labels.get(ZONE_LABEL).cloned())
    }

    /// Adds `delta` to the owner's count in the zone of slot `i`.
    fn count_zone(&mut self, i: usize, uid: &str, delta: i64) {
        let Some(zone) = self.zone_of(i) else { return };
        let per = self.owner_zone_counts.entry(uid.to_string()).or_default();
        let c = per.entry(zone.clone()).or_default();
        *c += delta;
        if *c <= 0 {
            per.remove(&zone);
        }
        if per.is_empty() {
            self.owner_zone_counts.remove(uid);
        }
    }

    /// Moves every pod of slot `i` in or out of the zone counts (node labels changing).
    fn count_node_zone(&mut self, i: usize, sign: i64) {
        let owners: Vec<String> = self.nodes[i]
            .pods
            .iter()
            .filter_map(|p| p.controller_uid.clone())
            .collect();
        for uid in owners {
            self.count_zone(i, &uid, sign);
        }
        if let Some(z) = self.zone_of(i) {
            if sign > 0 {
                *self.zones.entry(z).or_default() += 1;
            } else if let Some(n) = self.zones.get_mut(&z) {
                *n -= 1;
                if *n == 0 {
                    self.zones.remove(&z);
                }
            }
        }
    }

    /// Placed pods of a controller owner, per node.
    pub fn owner_counts(&self, owner_uid: &str) -> Option<&HashMap<String, i64>> {
        self.owner_counts.get(owner_uid)
    }

    fn slot(&mut self, name: &str) -> usize {
        if let Some(i) = self.index.get(name) {
            return *i;
        }
        self.nodes.push(NodeInfo::new(name, None));
        let i = self.nodes.len() - 1;
        self.index.insert(name.to_string(), i);
        i
    }

    /// Adds or updates a Node.
    pub fn upsert_node(&mut self, node: NodeSpec) {
        let i = self.slot(&node.name.clone());
        if self.nodes[i].node.is_none() {
            self.real_nodes += 1;
        }
        self.count_node_zone(i, -1);
        self.nodes[i].node = Some(Arc::new(node));
        self.count_node_zone(i, 1);
    }

    pub fn remove_node(&mut self, name: &str) {
        let Some(&i) = self.index.get(name) else {
            return;
        };
        self.count_node_zone(i, -1);
        if self.nodes[i].node.take().is_some() {
            self.real_nodes -= 1;
        }
        // Pods still on it keep the slot alive until they are deleted (upstream keeps a
        // "ghost" NodeInfo the same way).
        if self.nodes[i].pods.is_empty() {
            self.drop_slot(i);
        }
    }

    fn drop_slot(&mut self, i: usize) {
        let gone = self.nodes.swap_remove(i);
        self.index.remove(&gone.name);
        if i < self.nodes.len() {
            self.index.insert(self.nodes[i].name.clone(), i);
        }
    }

    /// Places a pod on `node` (a bound pod from the watch, or an assumed one). Replaces any
    /// earlier placement of the same key.
    pub fn add_pod(&mut self, pod: PodRef, node: &str, assumed: bool) {
        let key = pod.key();
        self.remove_pod(&key);
        let i = self.slot(node);
        if let Some(uid) = &pod.controller_uid {
            let next = self.owner_ids.len() as u32;
            let id = *self.owner_ids.entry(uid.clone()).or_insert(next);
            self.nodes[i].owners.add(id);
            self.count_zone(i, uid, 1);
            *self
                .owner_counts
                .entry(uid.clone())
                .or_default()
                .entry(node.to_string())
                .or_default() += 1;
        }
        if pod.has_affinity() {
            self.affinity_pods.insert(key.clone(), pod.clone());
        }
        self.nodes[i].add_pod(pod);
        self.placed.insert(key.clone(), node.to_string());
        if assumed {
            self.assumed.insert(key);
        }
    }

    /// Forgets a placed pod (deleted, terminal, or a failed bind of an assumed pod).
    pub fn remove_pod(&mut self, key: &str) -> Option<PodRef> {
        let node = self.placed.remove(key)?;
        self.assumed.remove(key);
        self.affinity_pods.remove(key);
        let (ns, name) = key.split_once('/').unwrap_or(("", key));
        let i = *self.index.get(&node)?;
        let pod = self.nodes[i].remove_pod(ns, name)?;
        if let Some(uid) = &pod.controller_uid {
            if let Some(id) = self.owner_ids.get(uid).copied() {
                self.nodes[i].owners.sub(id);
            }
            self.count_zone(i, uid, -1);
        }
        if let Some(uid) = &pod.controller_uid
            && let Some(per_node) = self.owner_counts.get_mut(uid)
        {
            if let Some(c) = per_node.get_mut(&node) {
                *c -= 1;
                if *c <= 0 {
                    per_node.remove(&node);
                }
            }
            if per_node.is_empty() {
                self.owner_counts.remove(uid);
            }
        }
        if self.nodes[i].node.is_none() && self.nodes[i].pods.is_empty() {
            // Last pod of a ghost node: drop the slot.
            self.drop_slot(i);
        }
        Some(pod)
    }

    /// Records (or clears, with an empty `node`) where a pending pod is nominated.
    pub fn set_nominated(&mut self, pod: &PodRef, node: &str) {
        let key = pod.key();
        for pods in self.nominated.values_mut() {
            pods.retain(|p| p.key() != key);
        }
        self.nominated.retain(|_, v| !v.is_empty());
        if !node.is_empty() {
            self.nominated
                .entry(node.to_string())
                .or_default()
                .push(pod.clone());
        }
    }

    /// The node a pending pod is nominated to, if any.
    pub fn nominated_node(&self, pod: &crate::model::PodInfo) -> Option<&str> {
        self.nominated
            .iter()
            .find(|(_, ps)| {
                ps.iter()
                    .any(|p| p.name == pod.name && p.namespace == pod.namespace)
            })
            .map(|(n, _)| n.as_str())
    }

    /// Nominated pods on `node` that `pod` must leave room for (same or higher priority).
    pub fn nominated_for<'a>(
        &'a self,
        node: &str,
        pod: &'a crate::model::PodInfo,
    ) -> impl Iterator<Item = &'a PodRef> + 'a {
        self.nominated
            .get(node)
            .into_iter()
            .flatten()
            .filter(move |p| {
                p.priority >= pod.priority && (p.name != pod.name || p.namespace != pod.namespace)
            })
    }

    /// Labels of a namespace (for `namespaceSelector` in affinity terms).
    pub fn namespace_labels(&self, ns: &str) -> Option<&BTreeMap<String, String>> {
        self.namespaces.get(ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PodInfo;
    use serde_json::json;

    fn pod(name: &str, cpu: &str, owner: Option<&str>) -> PodRef {
        let mut meta = json!({"name": name, "namespace": "d"});
        if let Some(o) = owner {
            meta["ownerReferences"] = json!([{"uid": o, "controller": true, "kind": "ReplicaSet", "name": "rs", "apiVersion": "apps/v1"}]);
        }
        Arc::new(PodInfo::parse(&json!({
            "metadata": meta,
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}},
                                     "ports": [{"containerPort": 80, "hostPort": 8080}]}]}
        })))
    }

    fn node(name: &str) -> NodeSpec {
        NodeSpec::parse(&json!({"metadata": {"name": name},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}))
    }

    #[test]
    fn pod_events_update_node_sums_incrementally() {
        let mut c = Cache::new();
        c.upsert_node(node("n1"));
        c.upsert_node(node("n2"));
        c.add_pod(pod("a", "500m", Some("rs1")), "n1", true);
        c.add_pod(pod("b", "250m", Some("rs1")), "n1", false);
        let n1 = c.node("n1").unwrap();
        assert_eq!(n1.requested.milli_cpu, 750);
        assert_eq!(n1.pods.len(), 2);
        assert_eq!(n1.used_ports.len(), 2);
        assert!(c.is_assumed("d/a"));
        assert_eq!(c.owner_counts("rs1").unwrap()["n1"], 2);
        let id = c.owner_id("rs1").unwrap();
        assert_eq!(c.node("n1").unwrap().owner_pods(id), 2);
        assert!(c.owner_zone_counts("rs1").is_none(), "n1 has no zone label");
        // Relabelling a node moves its pods' zone counts.
        let mut zoned = node("n1");
        zoned.labels.insert(ZONE_LABEL.into(), "z1".into());
        c.upsert_node(zoned);
        assert_eq!(c.owner_zone_counts("rs1").unwrap()["z1"], 2);
        assert_eq!(c.num_zones(), 1);
        c.upsert_node(node("n1"));
        assert!(c.owner_zone_counts("rs1").is_none());
        assert_eq!(c.num_zones(), 0);

        // Re-adding moves the pod.
        c.add_pod(pod("a", "500m", Some("rs1")), "n2", false);
        assert_eq!(c.node("n1").unwrap().requested.milli_cpu, 250);
        assert_eq!(c.node("n2").unwrap().requested.milli_cpu, 500);
        assert!(!c.is_assumed("d/a"));

        c.remove_pod("d/b");
        c.remove_pod("d/a");
        assert_eq!(c.node("n1").unwrap().requested.milli_cpu, 0);
        assert!(c.node("n1").unwrap().used_ports.is_empty());
        assert!(c.owner_counts("rs1").is_none());
        assert_eq!(c.num_nodes(), 2);
    }

    #[test]
    fn owner_counts_spill_and_shrink() {
        let mut o = OwnerCounts::default();
        for id in 0..20u32 {
            for _ in 0..=id % 3 {
                o.add(id);
            }
        }
        for id in 0..20u32 {
            assert_eq!(o.get(id), id % 3 + 1, "{id}");
        }
        // Remove every owner in a scattered order; the rest keep their counts.
        let order: Vec<u32> = (0..20).map(|i| (i * 7) % 20).collect();
        for (k, id) in order.iter().enumerate() {
            for _ in 0..=id % 3 {
                o.sub(*id);
            }
            assert_eq!(o.get(*id), 0);
            for other in &order[k + 1..] {
                assert_eq!(o.get(*other), other % 3 + 1, "after removing {id}");
            }
        }
        assert_eq!(o.len, 0);
        assert!(o.spill.is_empty());
    }

    #[test]
    fn ghost_nodes_keep_pods_until_they_go() {
        let mut c = Cache::new();
        c.add_pod(pod("a", "1", None), "later", false);
        assert_eq!(c.num_nodes(), 0);
        c.upsert_node(node("later"));
        assert_eq!(c.num_nodes(), 1);
        assert_eq!(c.node("later").unwrap().requested.milli_cpu, 1000);
        c.upsert_node(node("other"));
        c.remove_node("later");
        assert_eq!(c.num_nodes(), 1);
        assert!(c.node("later").is_some(), "the pod keeps the slot");
        c.remove_pod("d/a");
        assert!(c.node("later").is_none());
        assert_eq!(c.node("other").unwrap().name(), "other");
        assert_eq!(c.num_nodes(), 1);
    }
}
