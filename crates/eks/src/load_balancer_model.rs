//! What the AWS Load Balancer Controller would build for a Service, as plain data: the NLB's name
//! and scheme, one target group and listener per port, the subnets it picks, the targets it wants.
//! Kept free of I/O so every rule is a unit test; [`crate::load_balancer`] applies the model
//! through the ELBv2 API.

use std::collections::BTreeMap;

use serde_json::Value;

/// `service.beta.kubernetes.io/aws-load-balancer-type`: `external`/`nlb`/`nlb-ip` (absent: the
/// LBC still takes the Service, as on EKS with the controller as the only LB implementation).
pub const TYPE_ANNOTATION: &str = "service.beta.kubernetes.io/aws-load-balancer-type";
pub const SCHEME_ANNOTATION: &str = "service.beta.kubernetes.io/aws-load-balancer-scheme";
pub const TARGET_TYPE_ANNOTATION: &str =
    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type";
/// `loadBalancerClass` the LBC claims; any other class belongs to someone else.
pub const LOAD_BALANCER_CLASS: &str = "service.k8s.aws/nlb";
/// Held on a Service while AWS resources exist for it, so deletion waits for their clean-up.
pub const FINALIZER: &str = "service.k8s.aws/resources";
pub const CLUSTER_TAG: &str = "elbv2.k8s.aws/cluster";
pub const STACK_TAG: &str = "service.k8s.aws/stack";
pub const RESOURCE_TAG: &str = "service.k8s.aws/resource";
/// Nodes carrying this label are never registered as instance targets (upstream's service
/// controller and the LBC agree on it).
pub const EXCLUDE_NODE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// Internal (default) or internet-facing: which subnets and which DNS name the NLB gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Internal,
    InternetFacing,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Internal => "internal",
            Scheme::InternetFacing => "internet-facing",
        }
    }
    /// The subnet role tag the LBC discovers subnets by.
    pub fn role_tag(self) -> &'static str {
        match self {
            Scheme::Internal => "kubernetes.io/role/internal-elb",
            Scheme::InternetFacing => "kubernetes.io/role/elb",
        }
    }
}

/// `instance` (nodes on the NodePort) or `ip` (pod IPs on the target port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetType {
    Instance,
    Ip,
}

impl TargetType {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::Instance => "instance",
            TargetType::Ip => "ip",
        }
    }
}

/// One Service port as the NLB serves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortModel {
    /// The Service port's name (`""` for a single unnamed port); Endpoints ports match on it.
    pub name: String,
    pub port: i64,
    /// `TCP` or `UDP`, the listener's and target group's protocol.
    pub protocol: String,
    pub node_port: Option<i64>,
    /// Numeric targetPort, when the Service gives one.
    pub target_port: Option<i64>,
    pub target_group_name: String,
}

/// The NLB of one Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceModel {
    pub namespace: String,
    pub name: String,
    pub scheme: Scheme,
    pub target_type: TargetType,
    pub load_balancer_name: String,
    pub ports: Vec<PortModel>,
    /// `externalTrafficPolicy: Local`: only nodes with a ready local endpoint are healthy.
    pub local_traffic: bool,
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

fn annotation<'a>(svc: &'a Value, key: &str) -> Option<&'a str> {
    svc.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// Whether the LBC owns this Service: `type: LoadBalancer`, and no `loadBalancerClass` other
/// than its own.
pub fn wants_nlb(svc: &Value) -> bool {
    str_at(svc, "/spec/type") == Some("LoadBalancer")
        && str_at(svc, "/spec/loadBalancerClass").is_none_or(|c| c == LOAD_BALANCER_CLASS)
}

pub fn has_finalizer(obj: &Value, finalizer: &str) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x == finalizer))
}

pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// Drops characters the LBC strips from names (anything not alphanumeric or `-`).
fn sanitize(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

fn short(s: &str, n: usize) -> &str {
    &s[..s.len().min(n)]
}

/// `k8s-<ns:8>-<name:8>-<hash:10>`: the LBC's naming, hashed over what makes the LB distinct
/// (a scheme change therefore means a new LB, as upstream).
#[doc(alias = "buildLoadBalancerName")]
pub fn load_balancer_name(cluster: &str, namespace: &str, name: &str, scheme: Scheme) -> String {
    let hash = skiff_aws_model::sigv4::sha256_hex(
        format!("{cluster}\0{namespace}\0{name}\0{}", scheme.as_str()).as_bytes(),
    );
    format!(
        "k8s-{}-{}-{}",
        short(&sanitize(namespace), 8),
        short(&sanitize(name), 8),
        &hash[..10]
    )
}

/// `k8s-<ns:8>-<name:8>-<hash:10>` for the target group of one port; the target type and
/// protocol are in the hash, so changing them swaps in a new group.
#[doc(alias = "buildTargetGroupName")]
pub fn target_group_name(
    cluster: &str,
    namespace: &str,
    name: &str,
    port: i64,
    protocol: &str,
    target_type: TargetType,
) -> String {
    let hash = skiff_aws_model::sigv4::sha256_hex(
        format!(
            "{cluster}\0{namespace}\0{name}\0{port}\0{protocol}\0{}",
            target_type.as_str()
        )
        .as_bytes(),
    );
    format!(
        "k8s-{}-{}-{}",
        short(&sanitize(namespace), 8),
        short(&sanitize(name), 8),
        &hash[..10]
    )
}

impl ServiceModel {
    /// The model of `svc` in `cluster`; `Err` is the message of the LBC's `FailedBuildModel` event.
    pub fn build(cluster: &str, svc: &Value) -> Result<ServiceModel, String> {
        let namespace = str_at(svc, "/metadata/namespace")
            .unwrap_or("default")
            .to_string();
        let name = str_at(svc, "/metadata/name")
            .unwrap_or_default()
            .to_string();
        let scheme = match annotation(svc, SCHEME_ANNOTATION) {
            None | Some("internal") => Scheme::Internal,
            Some("internet-facing") => Scheme::InternetFacing,
            Some(other) => return Err(format!("unknown scheme: {other}")),
        };
        let lb_type = annotation(svc, TYPE_ANNOTATION);
        let target_type = match (annotation(svc, TARGET_TYPE_ANNOTATION), lb_type) {
            (Some("ip"), _) | (None, Some("nlb-ip")) => TargetType::Ip,
            (Some("instance"), _) | (None, _) => TargetType::Instance,
            (Some(other), _) => return Err(format!("unsupported target type \"{other}\"")),
        };
        let mut ports = Vec::new();
        for p in svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let port = p["port"].as_i64().unwrap_or_default();
            let protocol = p["protocol"].as_str().unwrap_or("TCP");
            if !matches!(protocol, "TCP" | "UDP") {
                return Err(format!("unsupported listener protocol: {protocol}"));
            }
            let node_port = p["nodePort"].as_i64();
            if target_type == TargetType::Instance && node_port.is_none() {
                return Err(format!(
                    "service port {port} has no nodePort, required by target type instance"
                ));
            }
            ports.push(PortModel {
                name: p["name"].as_str().unwrap_or_default().to_string(),
                port,
                protocol: protocol.to_string(),
                node_port,
                target_port: p["targetPort"].as_i64().or(if p["targetPort"].is_null() {
                    Some(port)
                } else {
                    None
                }),
                target_group_name: target_group_name(
                    cluster,
                    &namespace,
                    &name,
                    port,
                    protocol,
                    target_type,
                ),
            });
        }
        let mut numbers: Vec<i64> = ports.iter().map(|p| p.port).collect();
        numbers.sort_unstable();
        if let Some(w) = numbers.windows(2).find(|w| w[0] == w[1]) {
            // One NLB listener per port: TCP and UDP on one port would need TCP_UDP.
            return Err(format!(
                "port {} is used with two protocols; TCP_UDP listeners are not supported",
                w[0]
            ));
        }
        if ports.is_empty() {
            return Err("service has no ports".to_string());
        }
        Ok(ServiceModel {
            load_balancer_name: load_balancer_name(cluster, &namespace, &name, scheme),
            namespace,
            name,
            scheme,
            target_type,
            ports,
            local_traffic: str_at(svc, "/spec/externalTrafficPolicy") == Some("Local"),
        })
    }

    /// `<ns>/<name>`, the `service.k8s.aws/stack` tag.
    pub fn stack(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

fn tag<'a>(tags: &'a Value, key: &str) -> Option<&'a str> {
    tags.as_array()
        .into_iter()
        .flatten()
        .find(|t| t["Key"] == key)
        .and_then(|t| t["Value"].as_str())
}

/// Subnets of the VPC (EC2 `Subnet` shapes) the LBC would put an NLB of `scheme` in: tagged with
/// the scheme's role (value `1` or empty), not claimed only by other clusters, one per zone (the
/// one tagged for this cluster first, then the lowest id). Ids, sorted by zone.
#[doc(alias = "subnet auto-discovery")]
pub fn pick_subnets(subnets: &[Value], cluster: &str, scheme: Scheme) -> Vec<String> {
    let ours = format!("kubernetes.io/cluster/{cluster}");
    let mut by_zone: BTreeMap<String, (bool, String)> = BTreeMap::new();
    for s in subnets {
        let tags = &s["Tags"];
        if !matches!(tag(tags, scheme.role_tag()), Some("1" | "")) {
            continue;
        }
        let cluster_tags: Vec<&str> = tags
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["Key"].as_str())
            .filter(|k| k.starts_with("kubernetes.io/cluster/"))
            .collect();
        let tagged_ours = cluster_tags.contains(&ours.as_str());
        if !cluster_tags.is_empty() && !tagged_ours {
            continue;
        }
        let (Some(zone), Some(id)) = (s["AvailabilityZone"].as_str(), s["SubnetId"].as_str())
        else {
            continue;
        };
        let better = match by_zone.get(zone) {
            None => true,
            Some((t, cur)) => (tagged_ours, std::cmp::Reverse(id)) > (*t, std::cmp::Reverse(cur)),
        };
        if better {
            by_zone.insert(zone.to_string(), (tagged_ours, id.to_string()));
        }
    }
    by_zone.into_values().map(|(_, id)| id).collect()
}

/// What one target should report: healthy, or failing its health check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    Healthy,
    Unhealthy,
}

/// A target of one group: instance id or IP, port, and the health it should show.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    pub id: String,
    pub port: i64,
    pub health: Health,
}

fn node_ready(node: &Value) -> bool {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Ready and not-ready pod addresses of `port` in an Endpoints object: `(ip, port, ready, node)`.
fn endpoint_addresses(
    endpoints: Option<&Value>,
    port: &PortModel,
) -> Vec<(String, i64, bool, String)> {
    let mut out = Vec::new();
    for subset in endpoints
        .and_then(|e| e.get("subsets"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(ep_port) = subset["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"].as_str().unwrap_or_default() == port.name)
            .and_then(|p| p["port"].as_i64())
        else {
            continue;
        };
        for (field, ready) in [("addresses", true), ("notReadyAddresses", false)] {
            for a in subset[field].as_array().into_iter().flatten() {
                if let Some(ip) = a["ip"].as_str() {
                    let node = a["nodeName"].as_str().unwrap_or_default().to_string();
                    out.push((ip.to_string(), ep_port, ready, node));
                }
            }
        }
    }
    out
}

/// The targets one port's group should hold. Instance mode: every Node with an EC2 providerID
/// (not excluded, not being deleted) on the NodePort, healthy when Ready (and, with
/// `externalTrafficPolicy: Local`, hosting a ready endpoint). IP mode: every pod address of the
/// Service's Endpoints on its resolved port, healthy when the pod is ready.
pub fn desired_targets(
    model: &ServiceModel,
    port: &PortModel,
    nodes: &[Value],
    endpoints: Option<&Value>,
) -> Vec<Target> {
    let addresses = endpoint_addresses(endpoints, port);
    let mut out: Vec<Target> = match model.target_type {
        TargetType::Ip => addresses
            .iter()
            .map(|(ip, p, ready, _)| Target {
                id: ip.clone(),
                port: *p,
                health: if *ready {
                    Health::Healthy
                } else {
                    Health::Unhealthy
                },
            })
            .collect(),
        TargetType::Instance => {
            let Some(node_port) = port.node_port else {
                return Vec::new();
            };
            nodes
                .iter()
                .filter(|n| !is_deleting(n))
                .filter(|n| {
                    n.pointer("/metadata/labels")
                        .and_then(|l| l.get(EXCLUDE_NODE_LABEL))
                        .is_none()
                })
                .filter_map(|n| {
                    let id = crate::node_object::instance_of_provider_id(str_at(
                        n,
                        "/spec/providerID",
                    )?)?;
                    let node_name = str_at(n, "/metadata/name").unwrap_or_default();
                    let serving = !model.local_traffic
                        || addresses
                            .iter()
                            .any(|(_, _, ready, node)| *ready && node == node_name);
                    Some(Target {
                        id: id.to_string(),
                        port: node_port,
                        health: if node_ready(n) && serving {
                            Health::Healthy
                        } else {
                            Health::Unhealthy
                        },
                    })
                })
                .collect()
        }
    };
    out.sort();
    out.dedup_by(|a, b| a.id == b.id && a.port == b.port);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(annotations: Value) -> Value {
        json!({"metadata": {"name": "web-frontend", "namespace": "shop", "annotations": annotations},
               "spec": {"type": "LoadBalancer", "ports": [
                   {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": 30080}]}})
    }

    #[test]
    fn names_follow_the_lbc_pattern_and_depend_on_scheme() {
        let a = load_balancer_name("prod", "shop", "web-frontend", Scheme::Internal);
        let b = load_balancer_name("prod", "shop", "web-frontend", Scheme::InternetFacing);
        assert!(a.starts_with("k8s-shop-webfront-"), "{a}");
        assert_eq!(a.len(), "k8s-shop-webfront-".len() + 10);
        assert_ne!(a, b);
        assert_eq!(
            a,
            load_balancer_name("prod", "shop", "web-frontend", Scheme::Internal)
        );
        let tg = target_group_name("prod", "shop", "web-frontend", 80, "TCP", TargetType::Ip);
        assert!(tg.len() <= 32 && tg.starts_with("k8s-shop-webfront-"));
        assert_ne!(
            tg,
            target_group_name(
                "prod",
                "shop",
                "web-frontend",
                80,
                "TCP",
                TargetType::Instance
            )
        );
    }

    #[test]
    fn model_defaults_to_internal_instance_and_reads_annotations() {
        let m = ServiceModel::build("prod", &svc(json!({}))).unwrap();
        assert_eq!(m.scheme, Scheme::Internal);
        assert_eq!(m.target_type, TargetType::Instance);
        assert_eq!(m.ports[0].node_port, Some(30080));
        assert_eq!(m.ports[0].target_port, Some(8080));
        let m = ServiceModel::build(
            "prod",
            &svc(
                json!({SCHEME_ANNOTATION: "internet-facing", TARGET_TYPE_ANNOTATION: "ip",
                        TYPE_ANNOTATION: "external"}),
            ),
        )
        .unwrap();
        assert_eq!(m.scheme, Scheme::InternetFacing);
        assert_eq!(m.target_type, TargetType::Ip);
        let m = ServiceModel::build("prod", &svc(json!({TYPE_ANNOTATION: "nlb-ip"}))).unwrap();
        assert_eq!(m.target_type, TargetType::Ip);
        assert_eq!(
            ServiceModel::build("prod", &svc(json!({SCHEME_ANNOTATION: "public"}))).unwrap_err(),
            "unknown scheme: public"
        );
    }

    #[test]
    fn load_balancer_class_decides_ownership() {
        let mut s = svc(json!({}));
        assert!(wants_nlb(&s));
        s["spec"]["loadBalancerClass"] = json!("service.k8s.aws/nlb");
        assert!(wants_nlb(&s));
        s["spec"]["loadBalancerClass"] = json!("example.com/other");
        assert!(!wants_nlb(&s));
        s["spec"]["loadBalancerClass"] = Value::Null;
        s["spec"]["type"] = json!("ClusterIP");
        assert!(!wants_nlb(&s));
    }

    fn subnet(id: &str, zone: &str, tags: &[(&str, &str)]) -> Value {
        json!({"SubnetId": id, "AvailabilityZone": zone,
               "Tags": tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()})
    }

    #[test]
    fn subnets_by_role_tag_cluster_tag_and_one_per_zone() {
        let subnets = [
            subnet("subnet-b", "us-east-1a", &[("kubernetes.io/role/elb", "1")]),
            subnet(
                "subnet-c",
                "us-east-1a",
                &[
                    ("kubernetes.io/role/elb", "1"),
                    ("kubernetes.io/cluster/prod", "shared"),
                ],
            ),
            subnet("subnet-d", "us-east-1b", &[("kubernetes.io/role/elb", "")]),
            subnet(
                "subnet-e",
                "us-east-1c",
                &[
                    ("kubernetes.io/role/elb", "1"),
                    ("kubernetes.io/cluster/other", "owned"),
                ],
            ),
            subnet(
                "subnet-f",
                "us-east-1d",
                &[("kubernetes.io/role/internal-elb", "1")],
            ),
        ];
        assert_eq!(
            pick_subnets(&subnets, "prod", Scheme::InternetFacing),
            ["subnet-c", "subnet-d"]
        );
        assert_eq!(
            pick_subnets(&subnets, "prod", Scheme::Internal),
            ["subnet-f"]
        );
        assert!(pick_subnets(&subnets[..1], "x", Scheme::Internal).is_empty());
    }

    fn node(name: &str, id: &str, ready: bool) -> Value {
        json!({"metadata": {"name": name}, "spec": {"providerID": format!("aws:///us-east-1a/{id}")},
               "status": {"conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    #[test]
    fn targets_from_nodes_and_endpoints() {
        let eps = json!({"subsets": [{"ports": [{"name": "http", "port": 8080}],
            "addresses": [{"ip": "10.0.1.5", "nodeName": "n1"}],
            "notReadyAddresses": [{"ip": "10.0.1.6", "nodeName": "n2"}]}]});
        let mut m = ServiceModel::build("prod", &svc(json!({}))).unwrap();
        let mut excluded = node("n3", "i-3", true);
        excluded["metadata"]["labels"] = json!({EXCLUDE_NODE_LABEL: ""});
        let nodes = [
            node("n1", "i-1", true),
            node("n2", "i-2", false),
            excluded,
            json!({"metadata": {"name": "kwok"}, "spec": {"providerID": "kwok://x"}}),
        ];
        let p = m.ports[0].clone();
        let t = desired_targets(&m, &p, &nodes, Some(&eps));
        assert_eq!(
            t,
            [
                Target {
                    id: "i-1".into(),
                    port: 30080,
                    health: Health::Healthy
                },
                Target {
                    id: "i-2".into(),
                    port: 30080,
                    health: Health::Unhealthy
                },
            ]
        );
        m.local_traffic = true;
        let nodes = [node("n1", "i-1", true), node("n2", "i-2", true)];
        let t = desired_targets(&m, &p, &nodes, Some(&eps));
        assert_eq!(t[1].health, Health::Unhealthy, "no ready endpoint on n2");
        m.target_type = TargetType::Ip;
        let t = desired_targets(&m, &p, &nodes, Some(&eps));
        assert_eq!(
            t,
            [
                Target {
                    id: "10.0.1.5".into(),
                    port: 8080,
                    health: Health::Healthy
                },
                Target {
                    id: "10.0.1.6".into(),
                    port: 8080,
                    health: Health::Unhealthy
                },
            ]
        );
        assert!(desired_targets(&m, &p, &nodes, None).is_empty());
    }
}
