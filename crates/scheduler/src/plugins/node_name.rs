//! NodeName: a pod that names its node (`spec.nodeName`) fits only that node. The scheduler
//! never picks up such pods from the queue, but preemption dry runs and tests still use it.

use crate::cache::{Cache, NodeInfo};
use crate::framework::{CycleState, Plugin, Status};
use crate::model::PodInfo;

pub struct NodeName;

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        "NodeName"
    }

    fn filter(
        &self,
        pod: &PodInfo,
        node: &NodeInfo,
        _: &Cache,
        _: &CycleState,
    ) -> Result<(), Status> {
        if pod.node_name.is_empty() || pod.node_name == node.name {
            Ok(())
        } else {
            Err(Status::unresolvable(
                "node(s) didn't match the requested node name",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{filter, node, pod};
    use serde_json::json;

    #[test]
    fn only_the_named_node_fits() {
        let n1 = node(json!({"metadata": {"name": "n1"}}));
        assert_eq!(filter(&NodeName, &pod(json!({})), &n1), Ok(()));
        assert_eq!(
            filter(&NodeName, &pod(json!({"nodeName": "n1"})), &n1),
            Ok(())
        );
        assert_eq!(
            filter(&NodeName, &pod(json!({"nodeName": "n2"})), &n1),
            Err(Status::unresolvable(
                "node(s) didn't match the requested node name"
            ))
        );
    }
}
