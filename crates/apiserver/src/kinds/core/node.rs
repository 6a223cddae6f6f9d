//! Node (`nodes`, `no`): allocatable defaults to capacity, the STATUS/ROLES/VERSION printer and the
//! `spec.unschedulable` field selector.

use k8s_openapi::api::core::v1::Node as Object;
use serde_json::Value;
use skiff_k8s_core::status::FieldError;

use crate::kinds::typed::{Kind, age_cell, age_column, arr, col, name_cell, name_column, s};
use crate::kinds::validation::immutable;
use crate::registry::strategy::Column;

pub(crate) struct Node;

impl Kind for Node {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["no"];
    const STATUS: bool = true;
    /// Nodes register with their status (the kubelet creates them whole).
    const KEEP_STATUS_ON_CREATE: bool = true;

    fn defaults(obj: &mut Value) {
        if let Some(st) = obj.get_mut("status").and_then(Value::as_object_mut)
            && st.get("allocatable").is_none_or(Value::is_null)
            && let Some(cap) = st.get("capacity").cloned()
        {
            st.insert("allocatable".into(), cap);
        }
    }

    fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
        if !s(old, "/spec/podCIDR").is_empty() {
            return immutable(new, old, "/spec/podCIDR", "spec.podCIDR");
        }
        Vec::new()
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col("Status", "string", "The status of the node", 0),
            col("Roles", "string", "The roles of the node", 0),
            age_column(),
            col(
                "Version",
                "string",
                "Kubelet Version reported by the node.",
                0,
            ),
            col(
                "Internal-IP",
                "string",
                "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).",
                1,
            ),
            col(
                "External-IP",
                "string",
                "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).",
                1,
            ),
            col(
                "OS-Image",
                "string",
                "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
                1,
            ),
            col(
                "Kernel-Version",
                "string",
                "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
                1,
            ),
            col(
                "Container-Runtime",
                "string",
                "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
                1,
            ),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let addr = |ty: &str| {
            arr(obj, "/status/addresses")
                .iter()
                .find(|a| a.get("type").and_then(Value::as_str) == Some(ty))
                .and_then(|a| a.get("address"))
                .and_then(Value::as_str)
                .unwrap_or("<none>")
                .to_string()
        };
        let unknown = |v: &str| Value::from(if v.is_empty() { "<unknown>" } else { v });
        vec![
            name_cell(obj),
            Value::from(node_status(obj)),
            Value::from(node_roles(obj)),
            age_cell(obj, now),
            Value::from(s(obj, "/status/nodeInfo/kubeletVersion")),
            Value::from(addr("InternalIP")),
            Value::from(addr("ExternalIP")),
            unknown(s(obj, "/status/nodeInfo/osImage")),
            unknown(s(obj, "/status/nodeInfo/kernelVersion")),
            unknown(s(obj, "/status/nodeInfo/containerRuntimeVersion")),
        ]
    }

    fn field_value(obj: &Value, field: &str) -> Option<String> {
        (field == "spec.unschedulable").then(|| {
            obj.pointer("/spec/unschedulable")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string()
        })
    }
}

fn node_status(obj: &Value) -> String {
    let mut out = Vec::new();
    if let Some(c) = arr(obj, "/status/conditions")
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
    {
        out.push(if c.get("status").and_then(Value::as_str) == Some("True") {
            "Ready"
        } else {
            "NotReady"
        });
    }
    if out.is_empty() {
        out.push("Unknown");
    }
    if obj.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        out.push("SchedulingDisabled");
    }
    out.join(",")
}

/// `node-role.kubernetes.io/<role>` labels and the `kubernetes.io/role` value, sorted.
fn node_roles(obj: &Value) -> String {
    let mut roles: Vec<String> = Vec::new();
    for (k, v) in obj
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let Some(r) = k.strip_prefix("node-role.kubernetes.io/") {
            if !r.is_empty() {
                roles.push(r.to_string());
            }
        } else if k == "kubernetes.io/role"
            && let Some(r) = v.as_str().filter(|r| !r.is_empty())
        {
            roles.push(r.to_string());
        }
    }
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;
    use serde_json::json;

    #[test]
    fn row_and_fields() {
        let st = Typed::<Node>::new();
        let mut n = json!({"metadata": {"name": "ip-10-0-1-5.ec2.internal", "labels": {"node-role.kubernetes.io/worker": ""}},
            "spec": {"unschedulable": true},
            "status": {"capacity": {"cpu": "2"}, "conditions": [{"type": "Ready", "status": "True"}], "addresses": [{"type": "InternalIP", "address": "10.0.1.5"}],
                "nodeInfo": {"kubeletVersion": "v1.33.0-eks", "osImage": "Amazon Linux 2023", "kernelVersion": "6.1", "containerRuntimeVersion": "containerd://1.7"}}});
        st.prepare_for_create(&mut n);
        assert_eq!(n["status"]["allocatable"], json!({"cpu": "2"}));
        let row = st.row(&n, jiff::Timestamp::now());
        assert_eq!(
            row[1..3],
            [json!("Ready,SchedulingDisabled"), json!("worker")]
        );
        assert_eq!(row[4], "v1.33.0-eks");
        assert_eq!(row[5..7], [json!("10.0.1.5"), json!("<none>")]);
        assert_eq!(
            st.field_value(&n, "spec.unschedulable").as_deref(),
            Some("true")
        );
    }
}
