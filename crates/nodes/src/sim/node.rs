//! What a simulated kubelet posts about its Node: the four kubelet conditions with upstream
//! reasons and messages, `nodeInfo`, `daemonEndpoints`, and (only when the creator left them
//! out) capacity and addresses; and its `kube-node-lease` Lease. Pure functions of the Node and
//! the time; the runtime decides when to write.
//!
//! Upstream timing kept: the Lease is renewed every 10 s (a quarter of its 40 s duration) and the
//! status is posted when it changes and at least every 5 min (`nodeStatusReportFrequency`), so
//! the node lifecycle controller sees the same signals it sees from a real kubelet.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::sim::engine::rfc3339;
use crate::sim::hash::{hash64, hex_id};

/// Namespace of node Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// `leaseDurationSeconds` the kubelet writes (`nodeLeaseDurationSeconds`).
pub const LEASE_DURATION_SECONDS: i64 = 40;

/// What the simulated kubelets report about themselves (`nodeInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeIdentity {
    /// `v1.33.5-eks-…`; the EKS layer passes the cluster's version.
    pub kubelet_version: String,
    pub container_runtime_version: String,
    pub os_image: String,
    pub kernel_version: String,
}

impl Default for NodeIdentity {
    /// An EKS-optimised Amazon Linux 2023 node of Kubernetes 1.33.
    fn default() -> Self {
        NodeIdentity {
            kubelet_version: "v1.33.5-eks-113cf36".into(),
            container_runtime_version: "containerd://1.7.27".into(),
            os_image: "Amazon Linux 2023.8.20250808".into(),
            kernel_version: "6.1.147-172.266.amzn2023.x86_64".into(),
        }
    }
}

fn kubelet_conditions() -> [(&'static str, &'static str, &'static str, &'static str); 4] {
    [
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        (
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        (
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        (
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ]
}

/// The node's `InternalIP`, or a stable one derived from its name (10.64.0.0/10) when the creator
/// gave none.
pub fn node_ip(node: &Value) -> String {
    node.pointer("/status/addresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|a| a.get("type").and_then(Value::as_str) == Some("InternalIP"))
        .and_then(|a| a.get("address"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| derived_node_ip(node_name(node)))
}

pub(crate) fn derived_node_ip(name: &str) -> String {
    let h = (hash64(&[name], 11) % ((1 << 22) - 2)) as u32 + 1;
    let ip = u32::from(std::net::Ipv4Addr::new(10, 64, 0, 0)) + h;
    std::net::Ipv4Addr::from(ip).to_string()
}

pub(crate) fn node_name(node: &Value) -> &str {
    node.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The strategic-merge patch of `nodes/status` the kubelet would send now, or `None` when the
/// Node already says everything and `heartbeat` is false. With `heartbeat` the conditions are
/// re-sent with a fresh `lastHeartbeatTime` (the periodic report).
pub fn status_patch(
    node: &Value,
    who: &NodeIdentity,
    now: Timestamp,
    heartbeat: bool,
) -> Option<Value> {
    let now_s = rfc3339(now);
    let status = node.get("status").cloned().unwrap_or_else(|| json!({}));
    let mut out = Map::new();

    let existing = status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let find = |t: &str| {
        existing
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(t))
    };
    let stale = kubelet_conditions().iter().any(|(t, st, reason, msg)| {
        find(t).is_none_or(|c| {
            c.get("status").and_then(Value::as_str) != Some(st)
                || c.get("reason").and_then(Value::as_str) != Some(reason)
                || c.get("message").and_then(Value::as_str) != Some(msg)
        })
    });
    if stale || heartbeat {
        let conds: Vec<Value> = kubelet_conditions()
            .iter()
            .map(|(t, st, reason, msg)| {
                let since = find(t)
                    .filter(|c| c.get("status").and_then(Value::as_str) == Some(st))
                    .and_then(|c| c.get("lastTransitionTime").cloned())
                    .unwrap_or_else(|| json!(now_s));
                json!({"type": t, "status": st, "lastHeartbeatTime": now_s,
                       "lastTransitionTime": since, "reason": reason, "message": msg})
            })
            .collect();
        out.insert("conditions".into(), Value::Array(conds));
    }

    let name = node_name(node);
    let arch = node
        .pointer("/metadata/labels/kubernetes.io~1arch")
        .and_then(Value::as_str)
        .unwrap_or("amd64");
    let kernel = if arch == "arm64" {
        who.kernel_version.replace("x86_64", "aarch64")
    } else {
        who.kernel_version.clone()
    };
    let machine_id = hex_id(&["machine", name], 32);
    let system_uuid = {
        let h = hex_id(&["system", name], 29);
        format!(
            "ec2{}-{}-{}-{}-{}",
            &h[0..5],
            &h[5..9],
            &h[9..13],
            &h[13..17],
            &h[17..29]
        )
    };
    let boot_id = {
        let h = hex_id(&["boot", name], 32);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    };
    let wanted = [
        ("architecture", arch.to_string()),
        ("bootID", boot_id),
        (
            "containerRuntimeVersion",
            who.container_runtime_version.clone(),
        ),
        ("kernelVersion", kernel),
        ("kubeProxyVersion", String::new()),
        ("kubeletVersion", who.kubelet_version.clone()),
        ("machineID", machine_id),
        ("operatingSystem", "linux".into()),
        ("osImage", who.os_image.clone()),
        ("systemUUID", system_uuid),
    ];
    let info = status.get("nodeInfo").and_then(Value::as_object);
    let mut fill = Map::new();
    for (k, v) in wanted {
        let have = info.and_then(|i| i.get(k)).and_then(Value::as_str);
        // The creator (the EKS layer) is authoritative for what it set.
        if have.is_none_or(|h| h.is_empty() && !v.is_empty()) {
            fill.insert(k.into(), json!(v));
        }
    }
    if !fill.is_empty() {
        out.insert("nodeInfo".into(), Value::Object(fill));
    }
    if status
        .pointer("/daemonEndpoints/kubeletEndpoint/Port")
        .is_none()
    {
        out.insert(
            "daemonEndpoints".into(),
            json!({"kubeletEndpoint": {"Port": 10250}}),
        );
    }
    if status.get("capacity").is_none_or(Value::is_null) {
        // A kubelet always reports its machine; these are an m5.large's figures.
        let cap = json!({"cpu": "2", "memory": "7910348Ki", "pods": "29",
                         "ephemeral-storage": "20959212Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0"});
        out.insert("capacity".into(), cap);
        if status.get("allocatable").is_none_or(Value::is_null) {
            out.insert(
                "allocatable".into(),
                json!({"cpu": "1930m", "memory": "7220172Ki", "pods": "29",
                       "ephemeral-storage": "18242267924", "hugepages-1Gi": "0", "hugepages-2Mi": "0"}),
            );
        }
    }
    if status
        .get("addresses")
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty())
    {
        out.insert(
            "addresses".into(),
            json!([{"type": "InternalIP", "address": derived_node_ip(name)},
                   {"type": "Hostname", "address": name}]),
        );
    }
    (!out.is_empty()).then(|| json!({ "status": out }))
}

/// `metav1.MicroTime`: RFC 3339 with microseconds, as Lease times are written.
pub fn micro_time(t: Timestamp) -> String {
    format!(
        "{}.{:06}Z",
        t.strftime("%Y-%m-%dT%H:%M:%S"),
        t.subsec_microsecond()
    )
}

/// The node's Lease as the kubelet creates it (owned by the Node so it goes with it).
pub fn lease(node_name: &str, node_uid: &str, now: Timestamp) -> Value {
    let mut owner = json!({"apiVersion": "v1", "kind": "Node", "name": node_name});
    if !node_uid.is_empty() {
        owner["uid"] = json!(node_uid);
    }
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": node_name, "namespace": NODE_LEASE_NAMESPACE,
                     "ownerReferences": if node_uid.is_empty() { json!([]) } else { json!([owner]) }},
        "spec": {"holderIdentity": node_name, "leaseDurationSeconds": LEASE_DURATION_SECONDS,
                 "renewTime": micro_time(now)},
    })
}

/// The renewal: a merge patch of `spec.renewTime`.
pub fn lease_renewal(node_name: &str, now: Timestamp) -> Value {
    json!({"spec": {"holderIdentity": node_name, "renewTime": micro_time(now)}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_bare_node_gets_everything_a_kubelet_reports() {
        let node = json!({"metadata": {"name": "n1", "labels": {"kubernetes.io/arch": "arm64"}}});
        let p = status_patch(&node, &NodeIdentity::default(), t0(), false).unwrap();
        let st = &p["status"];
        let ready = st["conditions"].as_array().unwrap().last().unwrap();
        assert_eq!(ready["type"], "Ready");
        assert_eq!(ready["reason"], "KubeletReady");
        assert_eq!(ready["message"], "kubelet is posting ready status");
        assert_eq!(st["nodeInfo"]["architecture"], "arm64");
        assert!(
            st["nodeInfo"]["kernelVersion"]
                .as_str()
                .unwrap()
                .ends_with("aarch64")
        );
        assert!(
            st["nodeInfo"]["systemUUID"]
                .as_str()
                .unwrap()
                .starts_with("ec2")
        );
        assert_eq!(
            st["nodeInfo"]["containerRuntimeVersion"],
            "containerd://1.7.27"
        );
        assert_eq!(st["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10250);
        assert_eq!(st["addresses"][0]["type"], "InternalIP");
        assert_eq!(st["capacity"]["pods"], "29");
    }

    #[test]
    fn an_up_to_date_node_needs_no_write_until_the_heartbeat() {
        let who = NodeIdentity::default();
        let mut node = json!({"metadata": {"name": "n1"}, "status": {
            "addresses": [{"type": "InternalIP", "address": "10.0.1.5"}],
            "capacity": {"cpu": "4"},
            "nodeInfo": {"kubeletVersion": "v1.31.0-eks-abc"}}});
        let first = status_patch(&node, &who, t0(), false).unwrap();
        assert_eq!(
            first["status"]["nodeInfo"].get("kubeletVersion"),
            None,
            "the creator's version is kept"
        );
        json_merge(&mut node, &first);
        assert_eq!(status_patch(&node, &who, t0(), false), None);
        let later: Timestamp = "2026-01-01T00:05:00Z".parse().unwrap();
        let beat = status_patch(&node, &who, later, true).unwrap();
        let ready = &beat["status"]["conditions"][3];
        assert_eq!(ready["lastHeartbeatTime"], "2026-01-01T00:05:00Z");
        assert_eq!(ready["lastTransitionTime"], "2026-01-01T00:00:00Z");
        assert_eq!(node_ip(&node), "10.0.1.5");
        // NotReady (set by the node lifecycle controller) is corrected at once.
        node["status"]["conditions"][3]["status"] = json!("Unknown");
        let fix = status_patch(&node, &who, later, false).unwrap();
        assert_eq!(fix["status"]["conditions"][3]["status"], "True");
        assert_eq!(
            fix["status"]["conditions"][3]["lastTransitionTime"],
            "2026-01-01T00:05:00Z"
        );
    }

    #[test]
    fn lease_shape() {
        let l = lease("n1", "uid-1", t0());
        assert_eq!(l["spec"]["leaseDurationSeconds"], 40);
        assert_eq!(l["spec"]["renewTime"], "2026-01-01T00:00:00.000000Z");
        assert_eq!(l["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(l["metadata"]["namespace"], "kube-node-lease");
        assert_eq!(derived_node_ip("n1"), derived_node_ip("n1"));
        assert!(derived_node_ip("n1").starts_with("10."));
    }

    fn json_merge(target: &mut Value, patch: &Value) {
        match (target, patch) {
            (Value::Object(t), Value::Object(p)) => {
                for (k, v) in p {
                    json_merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
            (t, p) => *t = p.clone(),
        }
    }
}
