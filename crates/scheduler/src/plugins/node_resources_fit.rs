//! NodeResourcesFit: the pod's effective requests (containers, the largest init container,
//! overhead, extended resources) must fit the node's allocatable minus what placed pods
//! request, and the node must have a pod slot left (`status.allocatable.pods`). Scores with
//! the `LeastAllocated` strategy over CPU and memory (weight 1 each).

use crate::cache::{Cache, NodeInfo};
use crate::framework::{CycleState, MAX_NODE_SCORE, Plugin, Status};
use crate::model::PodInfo;

pub struct NodeResourcesFit;

/// The reasons the pod does not fit the node's free resources (empty: it fits).
pub fn insufficient(pod: &PodInfo, node: &NodeInfo) -> Vec<String> {
    let spec = node.spec();
    let mut out = Vec::new();
    if node.pods.len() as i64 + 1 > spec.max_pods {
        out.push("Too many pods".to_string());
    }
    let want = &pod.requests;
    if want.is_zero() {
        return out;
    }
    let have = &spec.allocatable;
    let used = &node.requested;
    if want.milli_cpu > 0 && want.milli_cpu > have.milli_cpu - used.milli_cpu {
        out.push("Insufficient cpu".into());
    }
    if want.memory > 0 && want.memory > have.memory - used.memory {
        out.push("Insufficient memory".into());
    }
    if want.ephemeral_storage > 0
        && want.ephemeral_storage > have.ephemeral_storage - used.ephemeral_storage
    {
        out.push("Insufficient ephemeral-storage".into());
    }
    for (name, q) in &want.scalar {
        if *q == 0 {
            continue;
        }
        let cap = have.scalar.get(name).copied().unwrap_or(0);
        let in_use = used.scalar.get(name).copied().unwrap_or(0);
        if *q > cap - in_use {
            out.push(format!("Insufficient {name}"));
        }
    }
    out
}

fn least_allocated(requested: i64, capacity: i64) -> i64 {
    if capacity <= 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    fn filter(
        &self,
        pod: &PodInfo,
        node: &NodeInfo,
        _: &Cache,
        _: &CycleState,
    ) -> Result<(), Status> {
        let reasons = insufficient(pod, node);
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(Status {
                code: crate::framework::Code::Unschedulable,
                reasons,
            })
        }
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo, _: &Cache, _: &CycleState) -> Option<i64> {
        let alloc = &node.spec().allocatable;
        let cpu = least_allocated(node.non_zero_cpu + pod.non_zero_cpu, alloc.milli_cpu);
        let mem = least_allocated(node.non_zero_mem + pod.non_zero_mem, alloc.memory);
        Some((cpu + mem) / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{filter, node_with_pods, pod, score_all};
    use serde_json::json;

    fn req(cpu: &str, mem: &str) -> serde_json::Value {
        json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]})
    }

    #[test]
    fn fit_table() {
        let node = |pods| {
            node_with_pods(
                json!({"metadata": {"name": "n"}, "status": {"allocatable": {
                    "cpu": "2", "memory": "4Gi", "pods": "3", "example.com/gpu": "1"}}}),
                pods,
            )
        };
        let half = || pod(req("1", "1Gi"));
        let err = |r: &[&str]| {
            Err(Status {
                code: crate::framework::Code::Unschedulable,
                reasons: r.iter().map(|s| s.to_string()).collect(),
            })
        };
        let gpu = |n: &str| {
            pod(
                json!({"containers": [{"name": "c", "resources": {"requests": {"example.com/gpu": n}}}]}),
            )
        };
        let init = pod(json!({
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1500m"}}}]}));
        let cases = [
            (half(), node(vec![half()]), Ok(())),
            (
                half(),
                node(vec![half(), half()]),
                err(&["Insufficient cpu"]),
            ),
            (
                pod(req("1", "4Gi")),
                node(vec![half()]),
                err(&["Insufficient memory"]),
            ),
            (
                pod(req("3", "5Gi")),
                node(vec![]),
                err(&["Insufficient cpu", "Insufficient memory"]),
            ),
            (
                pod(json!({})),
                node(vec![pod(json!({})), pod(json!({})), pod(json!({}))]),
                err(&["Too many pods"]),
            ),
            (gpu("1"), node(vec![]), Ok(())),
            (
                gpu("2"),
                node(vec![]),
                err(&["Insufficient example.com/gpu"]),
            ),
            (init.clone(), node(vec![half()]), err(&["Insufficient cpu"])),
            (init, node(vec![]), Ok(())),
        ];
        for (i, (p, n, want)) in cases.into_iter().enumerate() {
            assert_eq!(filter(&NodeResourcesFit, &p, &n), want, "case {i}");
        }
    }

    #[test]
    fn least_allocated_prefers_emptier_nodes() {
        let n = |pods| {
            node_with_pods(
                json!({"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "4", "memory": "4Gi"}}}),
                pods,
            )
        };
        let nodes = [
            n(vec![]),
            n(vec![pod(req("2", "2Gi"))]),
            n(vec![pod(req("3", "1Gi"))]),
        ];
        // Incoming pod: 1 cpu, 1Gi. Node a: (75 + 75)/2; b: (25+25)/2; c: (0 + 50)/2.
        assert_eq!(
            score_all(&NodeResourcesFit, &pod(req("1", "1Gi")), &nodes),
            vec![75, 25, 25]
        );
    }
}
