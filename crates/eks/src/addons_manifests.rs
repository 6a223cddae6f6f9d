//! What each EKS add-on puts in a cluster, as data: `addon_manifests/<addon>.json` holds the
//! objects (ServiceAccounts, RBAC, ConfigMaps, DaemonSets, Deployments, Services) as EKS installs
//! them, with `{{name}}` placeholders in string values for what differs per cluster (image
//! registry and tags, region, cluster name, endpoint, the DNS service IP). [`render`] fills the
//! placeholders and then applies the add-on's `configurationValues` and `serviceAccountRoleArn`.
//!
//! Placeholders are replaced inside already-parsed JSON strings, never in the source text, so a
//! value (a user's Corefile) can never change the document's structure. The rendered output of
//! every add-on is pinned by golden files in `addon_manifests/testdata/` (regenerate with
//! `SKIFF_UPDATE_GOLDEN=1 cargo test -p skiff-eks addons_manifests`).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use skiff_k8s_core::client::ResourceRef;

/// The add-ons Skiff can install, each with its objects.
const MANIFESTS: &[(&str, &str)] = &[
    ("vpc-cni", include_str!("addon_manifests/vpc-cni.json")),
    (
        "kube-proxy",
        include_str!("addon_manifests/kube-proxy.json"),
    ),
    ("coredns", include_str!("addon_manifests/coredns.json")),
    (
        "aws-ebs-csi-driver",
        include_str!("addon_manifests/aws-ebs-csi-driver.json"),
    ),
    (
        "eks-pod-identity-agent",
        include_str!("addon_manifests/eks-pod-identity-agent.json"),
    ),
];

/// Where every add-on lives.
pub const NAMESPACE: &str = "kube-system";

/// CoreDNS's default Corefile on EKS (the `coredns` ConfigMap; `corefile` in the configuration
/// replaces it).
pub const DEFAULT_COREFILE: &str = ".:53 {
    errors
    health {
        lameduck 5s
      }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
}
";

/// The per-cluster facts a manifest needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub cluster: String,
    pub region: String,
    /// The API endpoint kube-proxy's kubeconfig names (`https://127.0.0.1:<port>` here).
    pub endpoint: String,
    /// `kubernetesNetworkConfig.serviceIpv4Cidr` (`10.100.0.0/16`).
    pub service_cidr: String,
    pub vpc_id: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ManifestError {
    #[error("no manifest for add-on {0}")]
    UnknownAddon(String),
    #[error("manifest of {0} does not parse: {1}")]
    Parse(String, String),
    #[error("service CIDR {0} is not an IPv4 CIDR")]
    ServiceCidr(String),
}

/// Whether Skiff has objects for this add-on.
pub fn known(addon: &str) -> bool {
    MANIFESTS.iter().any(|(n, _)| *n == addon)
}

/// The cluster DNS address: the tenth address of the service CIDR (`10.100.0.10` for EKS's default
/// `10.100.0.0/16`, `172.20.0.10` for `172.20.0.0/16`), as EKS and kubelet's `clusterDNS` use.
pub fn dns_ip(service_cidr: &str) -> Result<String, ManifestError> {
    let bad = || ManifestError::ServiceCidr(service_cidr.to_string());
    let (addr, len) = service_cidr.split_once('/').ok_or_else(bad)?;
    let addr: std::net::Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let len: u32 = len.parse().map_err(|_| bad())?;
    if len > 28 {
        return Err(bad());
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Ok(std::net::Ipv4Addr::from((u32::from(addr) & mask) + 10).to_string())
}

/// The account EKS serves its images from in a region (most regions use 602401143452).
fn registry(region: &str) -> String {
    let account = match region {
        "af-south-1" => "877085696533",
        "ap-east-1" => "800184023465",
        "ap-southeast-3" => "296578399912",
        "eu-south-1" => "590381155156",
        "me-south-1" => "558608220178",
        "me-central-1" => "759879836304",
        "il-central-1" => "066635153087",
        _ => "602401143452",
    };
    format!("{account}.dkr.ecr.{region}.amazonaws.com")
}

/// `v1.12.1-eksbuild.2` → `v1.12.1`.
fn plain(version: &str) -> &str {
    version.split('-').next().unwrap_or(version)
}

/// The aws-network-policy-agent release shipped with a VPC CNI release.
fn network_policy_agent(cni: &str) -> &'static str {
    if cni.starts_with("v1.20") {
        "v1.2.7-eksbuild.1"
    } else if cni.starts_with("v1.19") {
        "v1.2.2-eksbuild.1"
    } else {
        "v1.1.6-eksbuild.1"
    }
}

/// The placeholder values for one add-on version on one cluster, after the configuration's
/// settings that live inside config text (kube-proxy's mode, CoreDNS's Corefile).
fn placeholders(
    version: &str,
    target: &Target,
    config: &Value,
) -> Result<BTreeMap<&'static str, String>, ManifestError> {
    Ok(BTreeMap::from([
        ("registry", registry(&target.region)),
        ("version", version.to_string()),
        ("version_plain", plain(version).to_string()),
        // EKS publishes kube-proxy's add-on versions as `vX-eksbuild.N` and the image as the
        // `minimal` (distroless) build of the same release.
        (
            "kube_proxy_tag",
            version.replacen("-eksbuild", "-minimal-eksbuild", 1),
        ),
        ("npa_version", network_policy_agent(version).to_string()),
        ("agent_tag", format!("{}-eksbuild", plain(version))),
        ("cluster", target.cluster.clone()),
        ("region", target.region.clone()),
        ("endpoint", target.endpoint.to_ascii_lowercase()),
        ("vpc_id", target.vpc_id.clone()),
        ("dns_ip", dns_ip(&target.service_cidr)?),
        (
            "corefile",
            config["corefile"]
                .as_str()
                .unwrap_or(DEFAULT_COREFILE)
                .to_string(),
        ),
        (
            "proxy_mode",
            config["mode"].as_str().unwrap_or("iptables").to_string(),
        ),
        (
            "ipvs_scheduler",
            config["ipvs"]["scheduler"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        ),
    ]))
}

/// Replace every `{{name}}` in the strings of `v` in one left-to-right pass: a value put in is never
/// scanned again, and an unknown name stays as written.
fn fill(v: &mut Value, values: &BTreeMap<&'static str, String>) {
    match v {
        Value::String(s) if s.contains("{{") => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(start) = rest.find("{{") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                match after
                    .find("}}")
                    .and_then(|end| values.get(&after[..end]).map(|val| (end, val)))
                {
                    Some((end, val)) => {
                        out.push_str(val);
                        rest = &after[end + 2..];
                    }
                    None => {
                        out.push_str("{{");
                        rest = after;
                    }
                }
            }
            out.push_str(rest);
            *s = out;
        }
        Value::Array(items) => items.iter_mut().for_each(|i| fill(i, values)),
        Value::Object(m) => m.values_mut().for_each(|i| fill(i, values)),
        _ => {}
    }
}

/// The objects of `addon` at `version` for `target`, with `config` (parsed configurationValues,
/// `Null` for none) and `role_arn` (serviceAccountRoleArn) applied. Order is install order:
/// identities and configuration before the workloads that use them.
pub fn render(
    addon: &str,
    version: &str,
    target: &Target,
    config: &Value,
    role_arn: Option<&str>,
) -> Result<Vec<Value>, ManifestError> {
    let src = MANIFESTS
        .iter()
        .find(|(n, _)| *n == addon)
        .map(|(_, s)| *s)
        .ok_or_else(|| ManifestError::UnknownAddon(addon.to_string()))?;
    let mut objects: Vec<Value> = serde_json::from_str(src)
        .map_err(|e| ManifestError::Parse(addon.to_string(), e.to_string()))?;
    let values = placeholders(version, target, config)?;
    for o in &mut objects {
        fill(o, &values);
        // EKS marks what it manages; the version label tells which release is installed.
        if let Some(labels) = o["metadata"]["labels"].as_object_mut() {
            labels.insert("app.kubernetes.io/managed-by".into(), json!("EKS"));
        }
    }
    configure(addon, &mut objects, config);
    if let Some(role) = role_arn.filter(|r| !r.is_empty())
        && let Some(sa) = service_account(addon)
    {
        for o in objects.iter_mut().filter(|o| is(o, "ServiceAccount", sa)) {
            o["metadata"]["annotations"] = json!({ crate::irsa::ROLE_ARN_ANNOTATION: role });
        }
    }
    Ok(objects)
}

/// The ServiceAccount whose AWS calls `serviceAccountRoleArn` is for.
pub fn service_account(addon: &str) -> Option<&'static str> {
    match addon {
        "vpc-cni" => Some("aws-node"),
        "aws-ebs-csi-driver" => Some("ebs-csi-controller-sa"),
        _ => None,
    }
}

fn is(o: &Value, kind: &str, name: &str) -> bool {
    o["kind"] == kind && o["metadata"]["name"] == name
}

fn workload<'a>(objects: &'a mut [Value], kind: &str, name: &str) -> Option<&'a mut Value> {
    objects.iter_mut().find(|o| is(o, kind, name))
}

/// Settings shared by every workload section of a schema: resources of the main container,
/// tolerations, nodeSelector, affinity, pod labels and annotations.
fn configure_pod(w: &mut Value, container: &str, cfg: &Value) {
    let Some(spec) = w.pointer_mut("/spec/template/spec") else {
        return;
    };
    for (key, member) in [
        ("tolerations", "tolerations"),
        ("nodeSelector", "nodeSelector"),
        ("affinity", "affinity"),
        ("topologySpreadConstraints", "topologySpreadConstraints"),
        ("priorityClassName", "priorityClassName"),
    ] {
        if !cfg[key].is_null() {
            spec[member] = cfg[key].clone();
        }
    }
    if let Some(c) = spec["containers"]
        .as_array_mut()
        .and_then(|cs| cs.iter_mut().find(|c| c["name"] == container))
        && let Some(res) = cfg["resources"].as_object()
    {
        c["resources"] = Value::Object(res.clone());
    }
    for (key, member) in [("podLabels", "labels"), ("podAnnotations", "annotations")] {
        if let Some(extra) = cfg[key].as_object() {
            let meta = &mut w["spec"]["template"]["metadata"][member];
            if !meta.is_object() {
                *meta = Value::Object(Map::new());
            }
            for (k, v) in extra {
                meta[k] = v.clone();
            }
        }
    }
}

/// Set (or add) environment variables of one container, by name.
fn set_env(container: &mut Value, env: &Map<String, Value>) {
    if !container["env"].is_array() {
        container["env"] = json!([]);
    }
    let Some(list) = container["env"].as_array_mut() else {
        return;
    };
    for (name, value) in env {
        match list.iter_mut().find(|e| e["name"] == name.as_str()) {
            Some(e) => *e = json!({"name": name, "value": value}),
            None => list.push(json!({"name": name, "value": value})),
        }
    }
}

fn container<'a>(w: &'a mut Value, list: &str, name: &str) -> Option<&'a mut Value> {
    w.pointer_mut(&format!("/spec/template/spec/{list}"))?
        .as_array_mut()?
        .iter_mut()
        .find(|c| c["name"] == name)
}

/// Apply an add-on's configuration values to its objects (the schema has been checked by the
/// EKS API, `skiff_aws::eks::addons::validate_configuration`).
fn configure(addon: &str, objects: &mut [Value], cfg: &Value) {
    if !cfg.is_object() {
        return;
    }
    match addon {
        "coredns" => {
            if let Some(d) = workload(objects, "Deployment", "coredns") {
                if let Some(n) = cfg["replicaCount"].as_i64() {
                    d["spec"]["replicas"] = json!(n);
                }
                configure_pod(d, "coredns", cfg);
            }
        }
        "kube-proxy" => {
            if let Some(d) = workload(objects, "DaemonSet", "kube-proxy") {
                configure_pod(d, "kube-proxy", cfg);
            }
        }
        "vpc-cni" => {
            if let Some(d) = workload(objects, "DaemonSet", "aws-node") {
                configure_pod(d, "aws-node", cfg);
                if let (Some(c), Some(env)) = (
                    container(d, "containers", "aws-node"),
                    cfg["env"].as_object(),
                ) {
                    set_env(c, env);
                }
                if let (Some(c), Some(env)) = (
                    container(d, "initContainers", "aws-vpc-cni-init"),
                    cfg["init"]["env"].as_object(),
                ) {
                    set_env(c, env);
                }
                let policy = cfg["enableNetworkPolicy"].as_str() == Some("true");
                if let Some(args) = container(d, "containers", "aws-eks-nodeagent")
                    .and_then(|c| c["args"].as_array_mut())
                {
                    for a in args.iter_mut() {
                        if a.as_str()
                            .is_some_and(|s| s.starts_with("--enable-network-policy="))
                        {
                            *a = json!(format!("--enable-network-policy={policy}"));
                        }
                    }
                }
            }
            if let Some(cm) = workload(objects, "ConfigMap", "amazon-vpc-cni") {
                cm["data"]["enable-network-policy-controller"] = json!(policy_flag(cfg));
            }
        }
        "aws-ebs-csi-driver" => {
            for (section, kind, name) in [
                ("controller", "Deployment", "ebs-csi-controller"),
                ("node", "DaemonSet", "ebs-csi-node"),
            ] {
                let part = &cfg[section];
                if let Some(w) = workload(objects, kind, name) {
                    if let Some(n) = part["replicaCount"].as_i64()
                        && kind == "Deployment"
                    {
                        w["spec"]["replicas"] = json!(n);
                    }
                    configure_pod(w, "ebs-plugin", part);
                }
            }
        }
        "eks-pod-identity-agent" => {
            if let Some(d) = workload(objects, "DaemonSet", "eks-pod-identity-agent") {
                configure_pod(d, "eks-pod-identity-agent", cfg);
                if let (Some(args), Some(extra)) = (
                    container(d, "containers", "eks-pod-identity-agent")
                        .and_then(|c| c["args"].as_array_mut()),
                    cfg["agent"]["additionalArgs"].as_object(),
                ) {
                    for (k, v) in extra {
                        args.push(json!(k));
                        args.push(v.clone());
                    }
                }
            }
        }
        _ => {}
    }
}

fn policy_flag(cfg: &Value) -> &'static str {
    if cfg["enableNetworkPolicy"].as_str() == Some("true") {
        "true"
    } else {
        "false"
    }
}

/// The collection an object of a manifest is written to.
pub fn resource_of(obj: &Value) -> Option<ResourceRef> {
    let (group, version) = match obj["apiVersion"].as_str()?.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", obj["apiVersion"].as_str()?),
    };
    let plural = match obj["kind"].as_str()? {
        "ServiceAccount" => "serviceaccounts",
        "ConfigMap" => "configmaps",
        "Service" => "services",
        "DaemonSet" => "daemonsets",
        "Deployment" => "deployments",
        "ClusterRole" => "clusterroles",
        "ClusterRoleBinding" => "clusterrolebindings",
        "Role" => "roles",
        "RoleBinding" => "rolebindings",
        "PodDisruptionBudget" => "poddisruptionbudgets",
        _ => return None,
    };
    let r = ResourceRef::new(group, version, plural);
    Some(match obj["metadata"]["namespace"].as_str() {
        Some(ns) => r.in_namespace(ns),
        None => r,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            cluster: "prod".into(),
            region: "us-west-2".into(),
            endpoint: "https://127.0.0.1:6443".into(),
            service_cidr: "10.100.0.0/16".into(),
            vpc_id: "vpc-0123456789abcdef0".into(),
        }
    }

    /// Every add-on at one version, rendered; compared with `addon_manifests/testdata/`.
    #[test]
    fn rendered_manifests_match_the_golden_files() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/addon_manifests/testdata");
        let update = std::env::var_os("SKIFF_UPDATE_GOLDEN").is_some();
        for (addon, version) in [
            ("vpc-cni", "v1.19.6-eksbuild.1"),
            ("kube-proxy", "v1.33.3-eksbuild.6"),
            ("coredns", "v1.12.1-eksbuild.2"),
            ("aws-ebs-csi-driver", "v1.48.0-eksbuild.2"),
            ("eks-pod-identity-agent", "v1.3.8-eksbuild.2"),
        ] {
            let objects = render(addon, version, &target(), &Value::Null, None).unwrap();
            let text = serde_json::to_string_pretty(&objects).unwrap() + "\n";
            let path = dir.join(format!("{addon}.rendered.json"));
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
            }
            let want = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (SKIFF_UPDATE_GOLDEN=1)", path.display()));
            assert_eq!(text, want, "{addon} differs from {}", path.display());
            assert!(!text.contains("{{"), "{addon}: placeholder left");
        }
    }

    #[test]
    fn images_follow_the_region_and_version() {
        let objs = render(
            "kube-proxy",
            "v1.33.3-eksbuild.6",
            &target(),
            &Value::Null,
            None,
        )
        .unwrap();
        let ds = objs.iter().find(|o| o["kind"] == "DaemonSet").unwrap();
        assert_eq!(
            ds["spec"]["template"]["spec"]["containers"][0]["image"],
            "602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/kube-proxy:v1.33.3-minimal-eksbuild.6"
        );
        assert_eq!(ds["spec"]["template"]["spec"]["hostNetwork"], true);
        let mut t = target();
        t.region = "af-south-1".into();
        let objs = render("coredns", "v1.11.4-eksbuild.14", &t, &Value::Null, None).unwrap();
        let d = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["image"],
            "877085696533.dkr.ecr.af-south-1.amazonaws.com/eks/coredns:v1.11.4-eksbuild.14"
        );
    }

    #[test]
    fn the_dns_address_is_the_tenth_of_the_service_range() {
        assert_eq!(dns_ip("10.100.0.0/16").unwrap(), "10.100.0.10");
        assert_eq!(dns_ip("172.20.0.0/16").unwrap(), "172.20.0.10");
        assert_eq!(dns_ip("192.168.4.0/24").unwrap(), "192.168.4.10");
        assert!(dns_ip("10.100.0.0").is_err());
        assert!(dns_ip("fd00::/108").is_err());
    }

    #[test]
    fn configuration_values_shape_the_workloads() {
        let cfg = json!({"replicaCount": 3, "resources": {"limits": {"memory": "300Mi"}},
            "corefile": ".:53 {\n    forward . 8.8.8.8\n}\n", "podLabels": {"team": "dns"},
            "tolerations": [{"operator": "Exists"}]});
        let objs = render("coredns", "v1.12.1-eksbuild.2", &target(), &cfg, None).unwrap();
        let d = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
        assert_eq!(d["spec"]["replicas"], 3);
        let pod = &d["spec"]["template"];
        assert_eq!(
            pod["spec"]["containers"][0]["resources"],
            json!({"limits": {"memory": "300Mi"}})
        );
        assert_eq!(pod["metadata"]["labels"]["team"], "dns");
        assert_eq!(pod["metadata"]["labels"]["k8s-app"], "kube-dns");
        assert_eq!(pod["spec"]["tolerations"], json!([{"operator": "Exists"}]));
        let cm = objs.iter().find(|o| o["kind"] == "ConfigMap").unwrap();
        assert_eq!(cm["data"]["Corefile"], ".:53 {\n    forward . 8.8.8.8\n}\n");
        // A Corefile that looks like a placeholder stays text.
        let cfg = json!({"corefile": "{{dns_ip}}"});
        let objs = render("coredns", "v1.12.1-eksbuild.2", &target(), &cfg, None).unwrap();
        let cm = objs.iter().find(|o| o["kind"] == "ConfigMap").unwrap();
        assert_eq!(cm["data"]["Corefile"], "{{dns_ip}}");

        let cfg = json!({"env": {"ENABLE_PREFIX_DELEGATION": "true", "NEW_VAR": "x"}, "enableNetworkPolicy": "true"});
        let objs = render(
            "vpc-cni",
            "v1.20.4-eksbuild.1",
            &target(),
            &cfg,
            Some("arn:aws:iam::1:role/cni"),
        )
        .unwrap();
        let ds = objs.iter().find(|o| o["kind"] == "DaemonSet").unwrap();
        let env = ds["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap();
        let get = |n: &str| {
            env.iter()
                .find(|e| e["name"] == n)
                .map(|e| e["value"].clone())
        };
        assert_eq!(get("ENABLE_PREFIX_DELEGATION"), Some(json!("true")));
        assert_eq!(get("NEW_VAR"), Some(json!("x")));
        assert_eq!(get("CLUSTER_NAME"), Some(json!("prod")));
        let args = &ds["spec"]["template"]["spec"]["containers"][1]["args"];
        assert!(
            args.as_array()
                .unwrap()
                .contains(&json!("--enable-network-policy=true"))
        );
        let sa = objs.iter().find(|o| o["kind"] == "ServiceAccount").unwrap();
        assert_eq!(
            sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
            "arn:aws:iam::1:role/cni"
        );
    }

    #[test]
    fn every_object_has_a_collection() {
        for (addon, _) in MANIFESTS {
            for o in render(addon, "v1.0.0-eksbuild.1", &target(), &Value::Null, None).unwrap() {
                let r = resource_of(&o).unwrap_or_else(|| panic!("{addon}: {}", o["kind"]));
                assert_eq!(
                    r.namespace.is_some(),
                    o["metadata"]["namespace"].is_string()
                );
            }
        }
        assert_eq!(
            render("nope", "v1", &target(), &Value::Null, None),
            Err(ManifestError::UnknownAddon("nope".into()))
        );
    }
}
