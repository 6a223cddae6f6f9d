//! The Node an EKS worker registers: what the kubelet of an EKS AMI would post for one EC2 instance
//! of a managed nodegroup (name, providerID, labels, taints, capacity, allocatable, addresses).
//!
//! Pure functions over the instance and nodegroup records, so the figures are unit-tested here and
//! the reconciler ([`crate::nodegroups`]) only decides *when* to write.

use serde_json::{Map, Value, json};
use skiff_aws::ec2::InstanceTypeInfo;

/// Label naming a Node's managed nodegroup (set by EKS on every node of the group).
pub const NODEGROUP_LABEL: &str = "eks.amazonaws.com/nodegroup";
/// Annotation listing the nodegroup label keys this layer last applied, so a label removed from the
/// nodegroup (UpdateNodegroupConfig `removeLabels`) is removed from the Node and no other label is.
pub const MANAGED_LABELS_ANNOTATION: &str = "skiff.dev/nodegroup-labels";
/// Annotation listing the nodegroup taints (`key:Effect`) last applied, for the same reason.
pub const MANAGED_TAINTS_ANNOTATION: &str = "skiff.dev/nodegroup-taints";

/// The kubelet version an EKS AMI of Kubernetes `version` reports (`v1.33.5-eks-…` on EKS).
pub fn kubelet_version(version: &str) -> String {
    format!("v{version}.0-eks-skiff")
}

/// `aws:///us-east-1a/i-0123…`, as the AWS cloud provider writes `spec.providerID`.
pub fn provider_id(zone: &str, instance_id: &str) -> String {
    format!("aws:///{zone}/{instance_id}")
}

/// The instance id of an `aws:///<az>/<id>` provider id.
pub fn instance_of_provider_id(provider_id: &str) -> Option<&str> {
    provider_id
        .strip_prefix("aws:///")
        .and_then(|rest| rest.rsplit('/').next())
        .filter(|id| id.starts_with("i-"))
}

/// EKS's taint effects (`NO_SCHEDULE`) in Kubernetes' spelling (`NoSchedule`).
pub fn taint_effect(eks: &str) -> &'static str {
    match eks {
        "NO_EXECUTE" => "NoExecute",
        "PREFER_NO_SCHEDULE" => "PreferNoSchedule",
        _ => "NoSchedule",
    }
}

/// The nodegroup's taints as Node taints.
pub fn nodegroup_taints(nodegroup: &Value) -> Vec<Value> {
    nodegroup["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let mut taint = json!({
                "key": t["key"],
                "effect": taint_effect(t["effect"].as_str().unwrap_or_default()),
            });
            if let Some(v) = t["value"].as_str() {
                taint["value"] = json!(v);
            }
            taint
        })
        .collect()
}

fn taint_id(t: &Value) -> String {
    format!(
        "{}:{}",
        t["key"].as_str().unwrap_or_default(),
        t["effect"].as_str().unwrap_or_default()
    )
}

/// CPU the EKS AMI reserves for the kubelet and runtime (millicores): 6 % of the first core, 1 % of
/// the second, 0.5 % of the next two, 0.25 % of every core above four.
pub fn kube_reserved_cpu_millis(vcpus: u32) -> u64 {
    let mut reserved = 0.0_f64;
    for core in 0..u64::from(vcpus) {
        reserved += match core {
            0 => 60.0,
            1 => 10.0,
            2 | 3 => 5.0,
            _ => 2.5,
        };
    }
    reserved as u64
}

/// Memory the EKS AMI reserves (MiB): 11 MiB per pod the node may run, plus 255 MiB.
pub fn kube_reserved_memory_mib(max_pods: u32) -> u64 {
    11 * u64::from(max_pods) + 255
}

/// The kubelet's hard eviction threshold for memory (`memory.available<100Mi`).
const EVICTION_MEMORY_MIB: u64 = 100;
/// kube-reserved ephemeral storage (1 GiB) on EKS AMIs.
const RESERVED_EPHEMERAL_BYTES: u64 = 1 << 30;
/// What the root filesystem loses to metadata (a 20 GiB gp3 root shows 20959212Ki on EKS).
const FILESYSTEM_OVERHEAD_KIB: u64 = 12_308;

/// `status.capacity` and `status.allocatable` of a node of this type with a `disk_gib` root volume.
pub fn capacity_and_allocatable(t: &InstanceTypeInfo, disk_gib: u64) -> (Value, Value) {
    let max_pods = t.max_pods();
    let memory_kib = t.memory_mib * 1024;
    let reserved_kib = (kube_reserved_memory_mib(max_pods) + EVICTION_MEMORY_MIB) * 1024;
    let disk_kib = (disk_gib.max(1) * 1024 * 1024).saturating_sub(FILESYSTEM_OVERHEAD_KIB);
    let disk_bytes = disk_kib * 1024;
    // nodefs.available<10% eviction plus the 1 GiB reservation.
    let ephemeral_allocatable = (disk_bytes / 10 * 9).saturating_sub(RESERVED_EPHEMERAL_BYTES);
    let cpu_millis = u64::from(t.vcpus) * 1000 - kube_reserved_cpu_millis(t.vcpus);
    let mut capacity = json!({
        "cpu": t.vcpus.to_string(),
        "ephemeral-storage": format!("{disk_kib}Ki"),
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": format!("{memory_kib}Ki"),
        "pods": max_pods.to_string(),
    });
    let mut allocatable = json!({
        "cpu": format!("{cpu_millis}m"),
        "ephemeral-storage": ephemeral_allocatable.to_string(),
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": format!("{}Ki", memory_kib.saturating_sub(reserved_kib)),
        "pods": max_pods.to_string(),
    });
    if let Some((count, _, _)) = t.gpus {
        capacity["nvidia.com/gpu"] = json!(count.to_string());
        allocatable["nvidia.com/gpu"] = json!(count.to_string());
    }
    (capacity, allocatable)
}

/// `amd64` or `arm64` from the nodegroup's AMI type (`AL2023_ARM_64_STANDARD`, `BOTTLEROCKET_ARM_64` …).
pub fn architecture(ami_type: &str) -> &'static str {
    if ami_type.contains("ARM_64") {
        "arm64"
    } else {
        "amd64"
    }
}

/// What a Node is made from.
pub struct NodeSource<'a> {
    /// The EC2 `Instance` shape (DescribeInstances).
    pub instance: &'a Value,
    /// The EKS nodegroup record.
    pub nodegroup: &'a Value,
    pub region: &'a str,
    /// The EKS-made launch template (id, version) the instance came from.
    pub launch_template: Option<(&'a str, &'a str)>,
    /// Root volume size, GiB.
    pub disk_gib: u64,
}

/// The Node's name: the instance's private DNS name (`ip-10-0-1-23.ec2.internal`).
pub fn node_name(instance: &Value) -> Option<&str> {
    instance["PrivateDnsName"]
        .as_str()
        .filter(|s| !s.is_empty())
}

/// The labels the nodegroup itself gives (its `labels` map).
fn nodegroup_labels(nodegroup: &Value) -> Map<String, Value> {
    nodegroup["labels"].as_object().cloned().unwrap_or_default()
}

/// The Node object a kubelet of this instance registers, Ready (the kubelet posts its status in the
/// same breath; the simulated kubelet keeps it so).
pub fn build_node(src: &NodeSource<'_>) -> Option<Value> {
    let inst = src.instance;
    let name = node_name(inst)?;
    let instance_id = inst["InstanceId"].as_str()?;
    let zone = inst["Placement"]["AvailabilityZone"].as_str()?;
    let ip = inst["PrivateIpAddress"].as_str()?;
    let instance_type = inst["InstanceType"].as_str().unwrap_or_default();
    let t = skiff_aws::ec2::instance_type(instance_type)?;
    let ng = src.nodegroup;
    let ng_name = ng["nodegroupName"].as_str().unwrap_or_default();
    let arch = architecture(ng["amiType"].as_str().unwrap_or_default());
    let mut labels = Map::new();
    for (k, v) in [
        ("beta.kubernetes.io/arch", arch),
        ("beta.kubernetes.io/instance-type", instance_type),
        ("beta.kubernetes.io/os", "linux"),
        (
            "eks.amazonaws.com/capacityType",
            ng["capacityType"].as_str().unwrap_or("ON_DEMAND"),
        ),
        (NODEGROUP_LABEL, ng_name),
        (
            "eks.amazonaws.com/nodegroup-image",
            inst["ImageId"].as_str().unwrap_or_default(),
        ),
        ("kubernetes.io/arch", arch),
        ("kubernetes.io/hostname", name),
        ("kubernetes.io/os", "linux"),
        ("node.kubernetes.io/instance-type", instance_type),
        ("topology.kubernetes.io/region", src.region),
        ("topology.kubernetes.io/zone", zone),
    ] {
        labels.insert(k.to_string(), json!(v));
    }
    if let Some((id, version)) = src.launch_template {
        labels.insert("eks.amazonaws.com/sourceLaunchTemplateId".into(), json!(id));
        labels.insert(
            "eks.amazonaws.com/sourceLaunchTemplateVersion".into(),
            json!(version),
        );
    }
    let own = nodegroup_labels(ng);
    let managed_keys: Vec<&str> = own.keys().map(String::as_str).collect();
    let taints = nodegroup_taints(ng);
    let taint_ids: Vec<String> = taints.iter().map(taint_id).collect();
    labels.extend(own.clone());
    let (capacity, allocatable) = capacity_and_allocatable(t, src.disk_gib);
    let now = jiff::Timestamp::now().to_string();
    let version = ng["version"].as_str().unwrap_or_default();
    let condition = |ty: &str, status: &str, reason: &str, message: &str| {
        json!({"type": ty, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let mut spec = json!({ "providerID": provider_id(zone, instance_id) });
    if !taints.is_empty() {
        spec["taints"] = json!(taints);
    }
    Some(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                skiff_nodes::NODE_AGENT_ANNOTATION: skiff_nodes::SIM_AGENT,
                "alpha.kubernetes.io/provided-node-ip": ip,
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                MANAGED_LABELS_ANNOTATION: managed_keys.join(","),
                MANAGED_TAINTS_ANNOTATION: taint_ids.join(","),
            },
        },
        "spec": spec,
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "InternalDNS", "address": name},
                {"type": "Hostname", "address": name},
            ],
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": arch,
                "bootID": uuid::Uuid::new_v4().to_string(),
                "containerRuntimeVersion": "containerd://1.7.27",
                "kernelVersion": "6.1.141-155.222.amzn2023.x86_64",
                "kubeProxyVersion": kubelet_version(version),
                "kubeletVersion": kubelet_version(version),
                "machineID": instance_id.trim_start_matches("i-"),
                "operatingSystem": "linux",
                "osImage": "Amazon Linux 2023.8.20250818",
                "systemUUID": format!("ec2{}", &uuid::Uuid::new_v4().simple().to_string()[3..]),
            },
        },
    }))
}

/// The merge patch that brings an existing Node's nodegroup labels and taints to the nodegroup's
/// current ones (None when they already match). Labels and taints the nodegroup did not set
/// (cordons, other controllers) are left alone.
pub fn sync_patch(node: &Value, nodegroup: &Value) -> Option<Value> {
    let annotations = &node["metadata"]["annotations"];
    let split = |v: &Value| -> Vec<String> {
        v.as_str()
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let old_keys = split(&annotations[MANAGED_LABELS_ANNOTATION]);
    let old_taints = split(&annotations[MANAGED_TAINTS_ANNOTATION]);
    let want = nodegroup_labels(nodegroup);
    let have = node["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut label_patch = Map::new();
    for k in &old_keys {
        if !want.contains_key(k) && have.contains_key(k) {
            label_patch.insert(k.clone(), Value::Null);
        }
    }
    for (k, v) in &want {
        if have.get(k) != Some(v) {
            label_patch.insert(k.clone(), v.clone());
        }
    }
    let want_taints = nodegroup_taints(nodegroup);
    let want_ids: Vec<String> = want_taints.iter().map(taint_id).collect();
    let have_taints: Vec<Value> = node["spec"]["taints"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut taints: Vec<Value> = have_taints
        .iter()
        .filter(|t| {
            let id = taint_id(t);
            !old_taints.contains(&id) && !want_ids.contains(&id)
        })
        .cloned()
        .collect();
    taints.extend(want_taints);
    let mut keys: Vec<&String> = want.keys().collect();
    keys.sort();
    let keys = keys
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let taint_list = want_ids.join(",");
    let taints_changed = taints != have_taints;
    let bookkeeping_changed = annotations[MANAGED_LABELS_ANNOTATION]
        .as_str()
        .unwrap_or("")
        != keys
        || annotations[MANAGED_TAINTS_ANNOTATION]
            .as_str()
            .unwrap_or("")
            != taint_list;
    if label_patch.is_empty() && !taints_changed && !bookkeeping_changed {
        return None;
    }
    let mut patch = json!({"metadata": {"annotations": {
        MANAGED_LABELS_ANNOTATION: keys,
        MANAGED_TAINTS_ANNOTATION: taint_list,
    }}});
    if !label_patch.is_empty() {
        patch["metadata"]["labels"] = Value::Object(label_patch);
    }
    if taints_changed {
        patch["spec"] =
            json!({ "taints": if taints.is_empty() { Value::Null } else { json!(taints) } });
    }
    Some(patch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance() -> Value {
        json!({
            "InstanceId": "i-0123456789abcdef0",
            "InstanceType": "t3.medium",
            "ImageId": "ami-0abc",
            "PrivateIpAddress": "10.0.1.23",
            "PrivateDnsName": "ip-10-0-1-23.ec2.internal",
            "Placement": {"AvailabilityZone": "us-east-1a"},
        })
    }

    fn nodegroup() -> Value {
        json!({
            "nodegroupName": "ng", "version": "1.33", "amiType": "AL2023_x86_64_STANDARD",
            "capacityType": "ON_DEMAND", "labels": {"team": "a"},
            "taints": [{"key": "gpu", "value": "yes", "effect": "NO_SCHEDULE"}],
        })
    }

    #[test]
    fn t3_medium_matches_a_real_eks_node() {
        // Real EKS t3.medium: pods 17, allocatable cpu 1930m; memory = capacity − (11·17+255+100) MiB.
        let t = skiff_aws::ec2::instance_type("t3.medium").unwrap();
        let (cap, alloc) = capacity_and_allocatable(t, 20);
        assert_eq!(cap["pods"], "17");
        assert_eq!(cap["cpu"], "2");
        assert_eq!(alloc["cpu"], "1930m");
        assert_eq!(cap["memory"], "4194304Ki");
        assert_eq!(alloc["memory"], format!("{}Ki", 4_194_304 - 542 * 1024));
        assert_eq!(cap["ephemeral-storage"], "20959212Ki");
        // EKS shows 18242267924 for this disk; the formula is the AMI's (90 % − 1 GiB).
        let eph: u64 = alloc["ephemeral-storage"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((18_242_267_000..18_242_268_000).contains(&eph), "{eph}");
        let m5 = skiff_aws::ec2::instance_type("m5.large").unwrap();
        assert_eq!(capacity_and_allocatable(m5, 20).0["pods"], "29");
    }

    #[test]
    fn reserved_cpu_follows_the_eks_ami_steps() {
        assert_eq!(kube_reserved_cpu_millis(1), 60);
        assert_eq!(kube_reserved_cpu_millis(2), 70);
        assert_eq!(kube_reserved_cpu_millis(4), 80);
        assert_eq!(kube_reserved_cpu_millis(8), 90);
        assert_eq!(kube_reserved_cpu_millis(96), 310);
    }

    #[test]
    fn node_has_eks_name_provider_id_labels_and_taints() {
        let (inst, ng) = (instance(), nodegroup());
        let node = build_node(&NodeSource {
            instance: &inst,
            nodegroup: &ng,
            region: "us-east-1",
            launch_template: Some(("lt-1", "1")),
            disk_gib: 20,
        })
        .unwrap();
        assert_eq!(node["metadata"]["name"], "ip-10-0-1-23.ec2.internal");
        assert_eq!(
            node["spec"]["providerID"],
            "aws:///us-east-1a/i-0123456789abcdef0"
        );
        let l = &node["metadata"]["labels"];
        assert_eq!(l[NODEGROUP_LABEL], "ng");
        assert_eq!(l["node.kubernetes.io/instance-type"], "t3.medium");
        assert_eq!(l["topology.kubernetes.io/zone"], "us-east-1a");
        assert_eq!(l["topology.kubernetes.io/region"], "us-east-1");
        assert_eq!(l["eks.amazonaws.com/capacityType"], "ON_DEMAND");
        assert_eq!(l["eks.amazonaws.com/nodegroup-image"], "ami-0abc");
        assert_eq!(l["kubernetes.io/hostname"], "ip-10-0-1-23.ec2.internal");
        assert_eq!(l["team"], "a");
        assert_eq!(
            node["spec"]["taints"],
            json!([{"key": "gpu", "value": "yes", "effect": "NoSchedule"}])
        );
        assert_eq!(
            node["metadata"]["annotations"][skiff_nodes::NODE_AGENT_ANNOTATION],
            "sim"
        );
        assert_eq!(
            node["status"]["addresses"][0],
            json!({"type": "InternalIP", "address": "10.0.1.23"})
        );
        assert_eq!(
            instance_of_provider_id("aws:///us-east-1a/i-0123456789abcdef0"),
            Some("i-0123456789abcdef0")
        );
        assert_eq!(sync_patch(&node, &ng), None, "a fresh node is in sync");
    }

    #[test]
    fn sync_patch_changes_only_what_the_nodegroup_owns() {
        let (inst, ng) = (instance(), nodegroup());
        let mut node = build_node(&NodeSource {
            instance: &inst,
            nodegroup: &ng,
            region: "us-east-1",
            launch_template: None,
            disk_gib: 20,
        })
        .unwrap();
        // A cordon taint someone else set stays.
        node["spec"]["taints"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}));
        node["metadata"]["labels"]["other"] = json!("x");
        let updated = json!({
            "nodegroupName": "ng", "labels": {"env": "prod"},
            "taints": [{"key": "dedicated", "effect": "NO_EXECUTE"}],
        });
        let p = sync_patch(&node, &updated).unwrap();
        assert_eq!(
            p["metadata"]["labels"],
            json!({"team": null, "env": "prod"})
        );
        assert_eq!(
            p["spec"]["taints"],
            json!([
                {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                {"key": "dedicated", "effect": "NoExecute"},
            ])
        );
        assert_eq!(
            p["metadata"]["annotations"][MANAGED_LABELS_ANNOTATION],
            "env"
        );
    }
}
