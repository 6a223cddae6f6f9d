//! NodeResourcesBalancedAllocation: prefers nodes where CPU and memory would be used in equal
//! fractions after placing the pod (score = (1 - standard deviation of the fractions) × 100).

use crate::cache::{Cache, NodeInfo};
use crate::framework::{CycleState, MAX_NODE_SCORE, Plugin};
use crate::model::PodInfo;

pub struct BalancedAllocation;

fn fraction(requested: i64, capacity: i64) -> f64 {
    if capacity <= 0 {
        return 1.0;
    }
    (requested as f64 / capacity as f64).min(1.0)
}

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        "NodeResourcesBalancedAllocation"
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo, _: &Cache, _: &CycleState) -> Option<i64> {
        let alloc = &node.spec().allocatable;
        let cpu = fraction(
            node.requested.milli_cpu + pod.requests.milli_cpu,
            alloc.milli_cpu,
        );
        let mem = fraction(node.requested.memory + pod.requests.memory, alloc.memory);
        // Population standard deviation of two values is half their distance.
        let std = (cpu - mem).abs() / 2.0;
        Some(((1.0 - std) * MAX_NODE_SCORE as f64) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{node_with_pods, pod, score_all};
    use serde_json::json;

    #[test]
    fn balanced_nodes_score_higher() {
        let req = |cpu: &str, mem: &str| {
            pod(
                json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}),
            )
        };
        let n = |pods| {
            node_with_pods(
                json!({"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "4", "memory": "4Gi"}}}),
                pods,
            )
        };
        let nodes = [n(vec![]), n(vec![req("2", "0")]), n(vec![req("0", "2Gi")])];
        // Incoming 1 cpu / 1Gi: a = 0.25/0.25 → 100; b = 0.75/0.25 → 75; c = 0.25/0.75 → 75.
        assert_eq!(
            score_all(&BalancedAllocation, &req("1", "1Gi"), &nodes),
            vec![100, 75, 75]
        );
    }
}
