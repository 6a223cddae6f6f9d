//! NodePorts: a container `hostPort` must be free on the node (same protocol and port, and the
//! same or a wildcard host IP, conflict).

use crate::cache::{Cache, NodeInfo};
use crate::framework::{CycleState, Plugin, Status};
use crate::model::PodInfo;

pub struct NodePorts;

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        "NodePorts"
    }

    fn filter(
        &self,
        pod: &PodInfo,
        node: &NodeInfo,
        _: &Cache,
        _: &CycleState,
    ) -> Result<(), Status> {
        let clash = pod
            .host_ports
            .iter()
            .any(|want| node.used_ports.iter().any(|used| used.conflicts(want)));
        if clash {
            Err(Status::unschedulable(
                "node(s) didn't have free ports for the requested pod ports",
            ))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{filter, node_with_pods, pod};
    use serde_json::json;

    #[test]
    fn host_port_table() {
        let port = |p: i64, ip: &str, proto: &str| {
            pod(
                json!({"containers": [{"name": "c", "ports": [{"containerPort": 1, "hostPort": p, "hostIP": ip, "protocol": proto}]}]}),
            )
        };
        let n = node_with_pods(
            json!({"metadata": {"name": "n"}}),
            vec![port(80, "", "TCP")],
        );
        let refused = Err(Status::unschedulable(
            "node(s) didn't have free ports for the requested pod ports",
        ));
        let cases = [
            (port(80, "", "TCP"), refused.clone()),
            (port(80, "10.0.0.1", "TCP"), refused),
            (port(80, "", "UDP"), Ok(())),
            (port(81, "", "TCP"), Ok(())),
            (pod(json!({})), Ok(())),
        ];
        for (i, (p, want)) in cases.into_iter().enumerate() {
            assert_eq!(filter(&NodePorts, &p, &n), want, "case {i}");
        }
    }
}
