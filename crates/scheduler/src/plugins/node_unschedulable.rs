//! NodeUnschedulable: cordoned nodes (`spec.unschedulable`) take only pods tolerating the
//! `node.kubernetes.io/unschedulable:NoSchedule` taint.

use crate::cache::{Cache, NodeInfo};
use crate::framework::{CycleState, Plugin, Status};
use crate::model::{PodInfo, Taint};

pub struct NodeUnschedulable;

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        "NodeUnschedulable"
    }

    fn filter(
        &self,
        pod: &PodInfo,
        node: &NodeInfo,
        _: &Cache,
        _: &CycleState,
    ) -> Result<(), Status> {
        if !node.spec().unschedulable {
            return Ok(());
        }
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            value: String::new(),
            effect: "NoSchedule".into(),
        };
        if pod.tolerations.iter().any(|t| t.tolerates(&taint)) {
            return Ok(());
        }
        Err(Status::unresolvable("node(s) were unschedulable"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{filter, node, pod};
    use serde_json::json;

    #[test]
    fn cordoned_nodes_refuse_pods_without_the_toleration() {
        let cordoned = node(json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}}));
        let open = node(json!({"metadata": {"name": "n"}}));
        let plain = pod(json!({}));
        let tolerating = pod(
            json!({"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}),
        );
        let cases = [
            (&plain, &open, Ok(())),
            (
                &plain,
                &cordoned,
                Err(Status::unresolvable("node(s) were unschedulable")),
            ),
            (&tolerating, &cordoned, Ok(())),
        ];
        for (i, (p, n, want)) in cases.into_iter().enumerate() {
            assert_eq!(filter(&NodeUnschedulable, p, n), want, "case {i}");
        }
    }
}
