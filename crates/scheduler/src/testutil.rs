//! Builders for plugin unit tests: pods and nodes from compact JSON.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::cache::{Cache, NodeInfo};
use crate::framework::{CycleState, Plugin, Status};
use crate::model::{NodeSpec, PodInfo, PodRef};

/// A pod in `default` named `p` with the given spec (containers default to one empty one).
pub fn pod(mut spec: Value) -> PodRef {
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "c"}]);
    }
    Arc::new(PodInfo::parse(
        &json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec}),
    ))
}

/// A pod with a name and labels.
pub fn named_pod(name: &str, labels: Value, mut spec: Value) -> PodRef {
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "c"}]);
    }
    Arc::new(PodInfo::parse(&json!({
        "metadata": {"name": name, "namespace": "default", "labels": labels}, "spec": spec})))
}

pub fn node(v: Value) -> NodeInfo {
    node_with_pods(v, vec![])
}

pub fn node_with_pods(v: Value, pods: Vec<PodRef>) -> NodeInfo {
    let spec = NodeSpec::parse(&v);
    let mut ni = NodeInfo::new(&spec.name.clone(), Some(Arc::new(spec)));
    for p in pods {
        ni.add_pod(p);
    }
    ni
}

/// A cache with these nodes and (node, pod) placements; pod names are made unique.
pub fn cache_with(nodes: Vec<Value>, pods: Vec<(&str, PodRef)>) -> Cache {
    let mut c = Cache::new();
    for n in nodes {
        c.upsert_node(NodeSpec::parse(&n));
    }
    for (i, (node, p)) in pods.into_iter().enumerate() {
        let mut p = (*p).clone();
        p.name = format!("{}-{i}", p.name);
        c.add_pod(Arc::new(p), node, false);
    }
    c
}

/// PreFilter + Filter of one plugin on one node.
pub fn filter(pl: &dyn Plugin, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    let cache = Cache::new();
    let mut st = CycleState::default();
    pl.pre_filter(pod, &cache, &mut st)?;
    pl.filter(pod, node, &cache, &st)
}

/// PreScore + Score + NormalizeScore of one plugin over nodes.
pub fn score_all(pl: &dyn Plugin, pod: &PodInfo, nodes: &[NodeInfo]) -> Vec<i64> {
    let cache = Cache::new();
    let refs: Vec<&NodeInfo> = nodes.iter().collect();
    let mut st = CycleState::default();
    pl.pre_score(pod, &cache, &refs, &mut st);
    let mut s: Vec<i64> = nodes
        .iter()
        .map(|n| pl.score(pod, n, &cache, &st).unwrap_or(0))
        .collect();
    pl.normalize(&mut s, &st);
    s
}
