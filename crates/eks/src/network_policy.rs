//! NetworkPolicy evaluation (`skiff netcheck`): Skiff has no packets, so instead of enforcing
//! policies it answers "would FROM reach TO:PORT, and which policy decides", with the
//! `networking.k8s.io/v1` semantics Calico and the VPC CNI's network policy agent enforce on EKS.
//!
//! Pure: the input is the cluster's pods, namespaces, NetworkPolicies and Services as wire JSON
//! ([`Inventory`]); [`evaluate`] returns a [`Verdict`]. The rules, as upstream defines them:
//! - a pod is isolated for a direction iff some policy in its namespace selects it with that
//!   policy type (`policyTypes` defaults to `Ingress`, plus `Egress` when `egress` rules exist);
//! - an isolated pod's traffic is allowed iff some rule of some selecting policy allows it (union);
//! - a connection needs both the source's egress and the destination's ingress to allow it;
//! - peers: `podSelector` (policy's namespace), `namespaceSelector`, both in one peer (AND),
//!   `ipBlock` with `except`; ports with `protocol` (TCP default), named ports resolved against the
//!   destination pod's container ports, `endPort` ranges; an empty `from`/`to`/`ports` matches all.
//!
//! Implementation-defined cases, decided as Calico (EKS's documented policy engine) does:
//! - `ipBlock` matches any address, pod IPs included (Calico matches CIDRs on the packet);
//! - host-network pods are not subject to NetworkPolicy, and as peers they are their node's
//!   address: only an `ipBlock` can match them;
//! - traffic to a Service ClusterIP is judged after kube-proxy's DNAT: against each endpoint pod
//!   (the pods the Service selects) on the resolved `targetPort`; it is allowed only if every
//!   endpoint allows it (a denied one breaks some connections).

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;
use serde_json::Value;
use skiff_k8s_core::selector::Selector;

use crate::pod_security_groups::SgCheck;

/// The namespace label the API server sets on every namespace (used by `namespaceSelector`s that
/// pick one namespace by name).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A transport protocol of a NetworkPolicy port (`protocol`, TCP when absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// `TCP`, `udp`, … (case-insensitive); None for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "TCP" => Some(Self::Tcp),
            "UDP" => Some(Self::Udp),
            "SCTP" => Some(Self::Sctp),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
            Self::Sctp => "SCTP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One end of a query as the user names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerRef {
    /// `ns/pod`, or `pod` in `default`.
    Pod { namespace: String, name: String },
    /// `svc/ns/name` or `svc/name` (in `default`): the Service's endpoints.
    Service { namespace: String, name: String },
    /// An address: a pod's or a ClusterIP's is resolved to it, anything else is outside the cluster.
    Ip(IpAddr),
}

impl PeerRef {
    /// Parse the CLI / API form. Names are checked to be non-empty and slash-free only: a name
    /// that exists nowhere is reported as not found, as kubectl would.
    pub fn parse(s: &str) -> Result<Self, NetcheckError> {
        let bad = || {
            NetcheckError::BadRequest(format!(
                "invalid peer {s:?}: expected NAMESPACE/POD, POD, svc/NAMESPACE/NAME, svc/NAME or an IP address"
            ))
        };
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self::Ip(ip));
        }
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let owned = |ns: &str, n: &str| (ns.to_string(), n.to_string());
        match parts.as_slice() {
            ["svc" | "service", ns, name] => {
                let (namespace, name) = owned(ns, name);
                Ok(Self::Service { namespace, name })
            }
            ["svc" | "service", name] => {
                let (namespace, name) = owned("default", name);
                Ok(Self::Service { namespace, name })
            }
            [ns, name] => {
                let (namespace, name) = owned(ns, name);
                Ok(Self::Pod { namespace, name })
            }
            [name] => {
                let (namespace, name) = owned("default", name);
                Ok(Self::Pod { namespace, name })
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for PeerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pod { namespace, name } => write!(f, "{namespace}/{name}"),
            Self::Service { namespace, name } => write!(f, "svc/{namespace}/{name}"),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Why a query could not be answered (a denied connection is a [`Verdict`], not an error).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NetcheckError {
    #[error("{0}")]
    BadRequest(String),
    /// kubectl's wording for a missing object.
    #[error("{resource} \"{name}\" not found in namespace \"{namespace}\"")]
    NotFound {
        resource: &'static str,
        namespace: String,
        name: String,
    },
    #[error("cluster {0} not found")]
    ClusterNotFound(String),
    #[error("reading the cluster: {0}")]
    Internal(String),
}

impl NetcheckError {
    /// The HTTP status the internal API answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::NotFound { .. } | Self::ClusterNotFound(_) => 404,
            Self::Internal(_) => 500,
        }
    }
}

/// A query: can `from` open a connection to `to` on `port`/`protocol`?
#[derive(Clone, Debug)]
pub struct Query {
    pub from: PeerRef,
    pub to: PeerRef,
    pub port: u16,
    pub protocol: Protocol,
}

/// What the evaluator reads: the cluster's objects in wire JSON.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub pods: Vec<Value>,
    pub namespaces: Vec<Value>,
    pub network_policies: Vec<Value>,
    pub services: Vec<Value>,
}

/// One end of a judged path.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct EndpointInfo {
    /// `pod` or `external`.
    pub kind: &'static str,
    /// `ns/name` of a pod, the address otherwise.
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(rename = "hostNetwork", skip_serializing_if = "std::ops::Not::not")]
    pub host_network: bool,
}

/// A rule that allowed traffic: `policy` is `ns/name`, `rule` the index in its ingress/egress list.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RuleRef {
    pub policy: String,
    pub rule: usize,
}

/// One direction's answer (the source's egress or the destination's ingress).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DirectionVerdict {
    pub allowed: bool,
    /// Some policy selects the pod for this direction.
    pub isolated: bool,
    pub reason: String,
    /// The policies selecting the pod for this direction (`ns/name`).
    #[serde(rename = "selectedBy", skip_serializing_if = "Vec::is_empty")]
    pub selected_by: Vec<String>,
    /// Every rule that allows the traffic.
    #[serde(rename = "allowedBy", skip_serializing_if = "Vec::is_empty")]
    pub allowed_by: Vec<RuleRef>,
}

/// One source → destination pod (or address) judgement.
#[derive(Clone, Debug, Serialize)]
pub struct PathVerdict {
    pub source: EndpointInfo,
    pub destination: EndpointInfo,
    /// The port on the destination (a Service port resolved to its `targetPort`).
    pub port: u16,
    pub allowed: bool,
    pub egress: DirectionVerdict,
    pub ingress: DirectionVerdict,
    /// EC2 security groups (security groups for pods, or the nodes' groups), when evaluated.
    #[serde(rename = "securityGroups", skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<SgCheck>,
}

impl PathVerdict {
    /// Both directions and (when evaluated) the security groups allow.
    pub fn recompute(&mut self) {
        self.allowed = self.egress.allowed
            && self.ingress.allowed
            && self.security_groups.as_ref().is_none_or(|s| s.allowed);
    }
}

/// The answer to a [`Query`].
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    pub allowed: bool,
    pub from: String,
    pub to: String,
    pub port: u16,
    pub protocol: Protocol,
    /// One line: what decided.
    pub summary: String,
    /// One entry per destination (several for a Service with several endpoints).
    pub paths: Vec<PathVerdict>,
}

impl Verdict {
    /// Re-derive `allowed` and `summary` after paths changed (security groups added).
    pub fn recompute(&mut self) {
        for p in &mut self.paths {
            p.recompute();
        }
        if self.paths.is_empty() {
            self.allowed = false;
            return;
        }
        self.allowed = self.paths.iter().all(|p| p.allowed);
        let denied = self.paths.iter().filter(|p| !p.allowed).count();
        self.summary = if self.allowed {
            format!("allowed ({} path(s))", self.paths.len())
        } else {
            format!("denied on {denied} of {} path(s)", self.paths.len())
        };
    }
}

/// A pod as the evaluator needs it.
struct PodView<'a> {
    obj: &'a Value,
    namespace: &'a str,
    name: &'a str,
    ip: Option<IpAddr>,
    host_network: bool,
}

impl<'a> PodView<'a> {
    fn new(obj: &'a Value) -> Self {
        let ip = obj["status"]["podIP"].as_str().and_then(|s| s.parse().ok());
        Self {
            obj,
            namespace: obj["metadata"]["namespace"].as_str().unwrap_or("default"),
            name: obj["metadata"]["name"].as_str().unwrap_or_default(),
            ip,
            host_network: obj["spec"]["hostNetwork"].as_bool() == Some(true),
        }
    }

    fn labels(&self) -> &'a Value {
        &self.obj["metadata"]["labels"]
    }

    fn info(&self) -> EndpointInfo {
        EndpointInfo {
            kind: "pod",
            name: format!("{}/{}", self.namespace, self.name),
            ip: self.ip.map(|i| i.to_string()),
            host_network: self.host_network,
        }
    }

    /// The container port named `name` with `protocol` (named ports in policies and targetPorts).
    fn named_port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        let containers = self.obj["spec"]["containers"].as_array()?;
        containers
            .iter()
            .flat_map(|c| c["ports"].as_array().into_iter().flatten())
            .find(|p| {
                p["name"].as_str() == Some(name)
                    && p["protocol"].as_str().unwrap_or("TCP") == protocol.as_str()
            })
            .and_then(|p| p["containerPort"].as_u64())
            .and_then(|p| u16::try_from(p).ok())
    }
}

/// One end of a path: a pod, or an address outside the cluster (or a node's).
enum End<'a> {
    Pod(PodView<'a>),
    External(IpAddr),
}

impl End<'_> {
    fn info(&self) -> EndpointInfo {
        match self {
            End::Pod(p) => p.info(),
            End::External(ip) => EndpointInfo {
                kind: "external",
                name: ip.to_string(),
                ip: Some(ip.to_string()),
                host_network: false,
            },
        }
    }
    fn ip(&self) -> Option<IpAddr> {
        match self {
            End::Pod(p) => p.ip,
            End::External(ip) => Some(*ip),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    fn field(self) -> &'static str {
        match self {
            Self::Ingress => "ingress",
            Self::Egress => "egress",
        }
    }
    fn peers_field(self) -> &'static str {
        match self {
            Self::Ingress => "from",
            Self::Egress => "to",
        }
    }
}

/// Answer `q` over `inv`. Errors only for unknown pods/services; denials are verdicts.
pub fn evaluate(inv: &Inventory, q: &Query) -> Result<Verdict, NetcheckError> {
    let source = resolve_source(inv, &q.from)?;
    let mut verdict = Verdict {
        allowed: false,
        from: q.from.to_string(),
        to: q.to.to_string(),
        port: q.port,
        protocol: q.protocol,
        summary: String::new(),
        paths: Vec::new(),
    };
    let targets = match resolve_destination(inv, &q.to, q.port, q.protocol)? {
        Destinations::Ends(t) => t,
        Destinations::None(reason) => {
            verdict.summary = reason;
            return Ok(verdict);
        }
    };
    for (dest, port) in targets {
        let egress = judge(inv, &source, &dest, port, q.protocol, Direction::Egress);
        let ingress = judge(inv, &dest, &source, port, q.protocol, Direction::Ingress);
        verdict.paths.push(PathVerdict {
            source: source.info(),
            destination: dest.info(),
            port,
            allowed: false,
            egress,
            ingress,
            security_groups: None,
        });
    }
    verdict.recompute();
    Ok(verdict)
}

fn live_pods(inv: &Inventory) -> impl Iterator<Item = PodView<'_>> {
    inv.pods
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(PodView::new)
}

fn find_pod<'a>(inv: &'a Inventory, ns: &str, name: &str) -> Result<PodView<'a>, NetcheckError> {
    live_pods(inv)
        .find(|p| p.namespace == ns && p.name == name)
        .ok_or_else(|| NetcheckError::NotFound {
            resource: "pods",
            namespace: ns.into(),
            name: name.into(),
        })
}

fn find_service<'a>(inv: &'a Inventory, ns: &str, name: &str) -> Result<&'a Value, NetcheckError> {
    inv.services
        .iter()
        .find(|s| {
            s["metadata"]["namespace"].as_str() == Some(ns)
                && s["metadata"]["name"].as_str() == Some(name)
        })
        .ok_or_else(|| NetcheckError::NotFound {
            resource: "services",
            namespace: ns.into(),
            name: name.into(),
        })
}

/// A pod (not host-network: those share their node's address) holding `ip`.
fn pod_by_ip(inv: &Inventory, ip: IpAddr) -> Option<PodView<'_>> {
    live_pods(inv).find(|p| !p.host_network && p.ip == Some(ip))
}

fn service_by_cluster_ip(inv: &Inventory, ip: IpAddr) -> Option<&Value> {
    let s = ip.to_string();
    inv.services.iter().find(|svc| {
        svc["spec"]["clusterIP"].as_str() == Some(&s)
            || svc["spec"]["clusterIPs"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(&s)))
    })
}

fn resolve_source<'a>(inv: &'a Inventory, r: &PeerRef) -> Result<End<'a>, NetcheckError> {
    match r {
        PeerRef::Pod { namespace, name } => Ok(End::Pod(find_pod(inv, namespace, name)?)),
        PeerRef::Ip(ip) => Ok(pod_by_ip(inv, *ip).map_or(End::External(*ip), End::Pod)),
        PeerRef::Service { .. } => Err(NetcheckError::BadRequest(
            "a Service cannot be the source of a connection: name one of its pods".into(),
        )),
    }
}

enum Destinations<'a> {
    Ends(Vec<(End<'a>, u16)>),
    /// Nothing to connect to (a Service without that port or endpoints), and why.
    None(String),
}

fn resolve_destination<'a>(
    inv: &'a Inventory,
    r: &PeerRef,
    port: u16,
    protocol: Protocol,
) -> Result<Destinations<'a>, NetcheckError> {
    match r {
        PeerRef::Pod { namespace, name } => Ok(Destinations::Ends(vec![(
            End::Pod(find_pod(inv, namespace, name)?),
            port,
        )])),
        PeerRef::Service { namespace, name } => {
            service_endpoints(inv, find_service(inv, namespace, name)?, port, protocol)
        }
        PeerRef::Ip(ip) => {
            if let Some(svc) = service_by_cluster_ip(inv, *ip) {
                return service_endpoints(inv, svc, port, protocol);
            }
            Ok(Destinations::Ends(vec![(
                pod_by_ip(inv, *ip).map_or(End::External(*ip), End::Pod),
                port,
            )]))
        }
    }
}

/// A Service port → its endpoint pods and each one's target port (kube-proxy's DNAT).
fn service_endpoints<'a>(
    inv: &'a Inventory,
    svc: &'a Value,
    port: u16,
    protocol: Protocol,
) -> Result<Destinations<'a>, NetcheckError> {
    let ns = svc["metadata"]["namespace"].as_str().unwrap_or("default");
    let name = svc["metadata"]["name"].as_str().unwrap_or_default();
    let Some(sp) = svc["spec"]["ports"].as_array().and_then(|ports| {
        ports.iter().find(|p| {
            p["port"].as_u64() == Some(u64::from(port))
                && p["protocol"].as_str().unwrap_or("TCP") == protocol.as_str()
        })
    }) else {
        return Ok(Destinations::None(format!(
            "service {ns}/{name} has no port {port}/{protocol}: nothing accepts the connection"
        )));
    };
    let selector = &svc["spec"]["selector"];
    let Some(sel) = selector.as_object().filter(|m| !m.is_empty()) else {
        return Ok(Destinations::None(format!(
            "service {ns}/{name} has no selector: its endpoints are not pods Skiff can judge"
        )));
    };
    let mut ends = Vec::new();
    for pod in live_pods(inv).filter(|p| p.namespace == ns && p.ip.is_some()) {
        let labels = pod.labels();
        if !sel
            .iter()
            .all(|(k, v)| labels[k].as_str().is_some() && labels[k] == *v)
        {
            continue;
        }
        let target = match &sp["targetPort"] {
            Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            Value::String(s) => match s.parse::<u16>() {
                Ok(n) => Some(n),
                Err(_) => pod.named_port(s, protocol),
            },
            _ => Some(port),
        };
        // A pod without the named target port is not an endpoint (the endpoints controller skips it).
        if let Some(target) = target {
            ends.push((End::Pod(pod), target));
        }
    }
    if ends.is_empty() {
        return Ok(Destinations::None(format!(
            "service {ns}/{name} has no endpoints for port {port}/{protocol}"
        )));
    }
    ends.sort_by(|a, b| a.0.info().name.cmp(&b.0.info().name));
    Ok(Destinations::Ends(ends))
}

/// `policyTypes` with upstream's defaulting.
fn policy_types(policy: &Value) -> (bool, bool) {
    match policy["spec"]["policyTypes"].as_array() {
        Some(types) if !types.is_empty() => (
            types.iter().any(|t| t == "Ingress"),
            types.iter().any(|t| t == "Egress"),
        ),
        _ => (
            true,
            policy["spec"]["egress"]
                .as_array()
                .is_some_and(|e| !e.is_empty()),
        ),
    }
}

fn policy_name(policy: &Value) -> String {
    format!(
        "{}/{}",
        policy["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default"),
        policy["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// A label selector in JSON form; an invalid one selects nothing (the API server refuses those).
fn selects(sel: &Value, labels: &Value) -> bool {
    Selector::from_label_selector(sel).is_ok_and(|s| s.matches(labels))
}

fn namespace_labels(inv: &Inventory, ns: &str) -> Value {
    let mut labels = inv
        .namespaces
        .iter()
        .find(|n| n["metadata"]["name"].as_str() == Some(ns))
        .map(|n| n["metadata"]["labels"].clone())
        .filter(Value::is_object)
        .unwrap_or_else(|| Value::Object(Default::default()));
    // Set by the API server on every namespace since 1.22; absent only in hand-made inventories.
    if labels[NAMESPACE_NAME_LABEL].is_null() {
        labels[NAMESPACE_NAME_LABEL] = Value::String(ns.to_string());
    }
    labels
}

/// The `subject`'s side of a connection with `peer` in `dir` (egress of the source, ingress of
/// the destination); `port` is the destination's.
fn judge(
    inv: &Inventory,
    subject: &End<'_>,
    peer: &End<'_>,
    port: u16,
    protocol: Protocol,
    dir: Direction,
) -> DirectionVerdict {
    let pod = match subject {
        End::External(_) => {
            return DirectionVerdict {
                allowed: true,
                isolated: false,
                reason: format!("outside the cluster: no {} policy applies", dir.field()),
                selected_by: vec![],
                allowed_by: vec![],
            };
        }
        End::Pod(p) => p,
    };
    if pod.host_network {
        return DirectionVerdict {
            allowed: true,
            isolated: false,
            reason: "host-network pod: NetworkPolicy does not apply to it (Calico)".into(),
            selected_by: vec![],
            allowed_by: vec![],
        };
    }
    let mut policies: Vec<&Value> = inv
        .network_policies
        .iter()
        .filter(|np| {
            np["metadata"]["namespace"].as_str().unwrap_or("default") == pod.namespace
                && selects(&np["spec"]["podSelector"], pod.labels())
                && match dir {
                    Direction::Ingress => policy_types(np).0,
                    Direction::Egress => policy_types(np).1,
                }
        })
        .collect();
    policies.sort_by_key(|np| policy_name(np));
    if policies.is_empty() {
        return DirectionVerdict {
            allowed: true,
            isolated: false,
            reason: "no policy selects the pod (not isolated)".into(),
            selected_by: vec![],
            allowed_by: vec![],
        };
    }
    // The destination pod names the ports (named ports), whichever side is judged.
    let destination = match dir {
        Direction::Ingress => subject,
        Direction::Egress => peer,
    };
    let mut allowed_by = Vec::new();
    for np in &policies {
        let rules = np["spec"][dir.field()].as_array();
        for (i, rule) in rules.into_iter().flatten().enumerate() {
            let ns = np["metadata"]["namespace"].as_str().unwrap_or("default");
            if rule_peers_match(inv, ns, &rule[dir.peers_field()], peer)
                && rule_ports_match(&rule["ports"], port, protocol, destination)
            {
                allowed_by.push(RuleRef {
                    policy: policy_name(np),
                    rule: i,
                });
            }
        }
    }
    let selected_by: Vec<String> = policies.iter().map(|p| policy_name(p)).collect();
    let reason = if allowed_by.is_empty() {
        format!(
            "isolated for {} by {}; no rule allows",
            dir.field(),
            selected_by.join(", ")
        )
    } else {
        let rules: Vec<String> = allowed_by
            .iter()
            .map(|r| format!("{} {} rule {}", r.policy, dir.field(), r.rule))
            .collect();
        format!("allowed by {}", rules.join(", "))
    };
    DirectionVerdict {
        allowed: !allowed_by.is_empty(),
        isolated: true,
        reason,
        selected_by,
        allowed_by,
    }
}

/// `from`/`to` of a rule: absent or empty matches every peer; otherwise any listed peer.
fn rule_peers_match(inv: &Inventory, policy_ns: &str, peers: &Value, peer: &End<'_>) -> bool {
    match peers.as_array() {
        None => true,
        Some(list) if list.is_empty() => true,
        Some(list) => list.iter().any(|p| peer_matches(inv, policy_ns, p, peer)),
    }
}

fn peer_matches(inv: &Inventory, policy_ns: &str, rule_peer: &Value, peer: &End<'_>) -> bool {
    if let Some(block) = rule_peer["ipBlock"].as_object() {
        let Some(ip) = peer.ip() else {
            return false;
        };
        let cidr = block
            .get("cidr")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let excepted = block
            .get("except")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|e| cidr_contains(e, ip));
        return cidr_contains(cidr, ip) && !excepted;
    }
    let pod_sel = &rule_peer["podSelector"];
    let ns_sel = &rule_peer["namespaceSelector"];
    if pod_sel.is_null() && ns_sel.is_null() {
        // An empty peer is refused by validation; it matches nothing.
        return false;
    }
    // Selectors pick pods by labels; host-network pods have their node's address, not a pod's.
    let End::Pod(pod) = peer else {
        return false;
    };
    if pod.host_network {
        return false;
    }
    let ns_ok = if ns_sel.is_null() {
        pod.namespace == policy_ns
    } else {
        selects(ns_sel, &namespace_labels(inv, pod.namespace))
    };
    ns_ok && (pod_sel.is_null() || selects(pod_sel, pod.labels()))
}

/// `ports` of a rule: absent or empty matches every port; otherwise any entry.
fn rule_ports_match(ports: &Value, port: u16, protocol: Protocol, destination: &End<'_>) -> bool {
    let Some(list) = ports.as_array().filter(|l| !l.is_empty()) else {
        return true;
    };
    list.iter().any(|entry| {
        let proto = entry["protocol"].as_str().unwrap_or("TCP");
        if Protocol::parse(proto) != Some(protocol) {
            return false;
        }
        match &entry["port"] {
            Value::Null => true,
            Value::Number(n) => {
                let Some(start) = n.as_u64() else {
                    return false;
                };
                let end = entry["endPort"].as_u64().unwrap_or(start);
                (start..=end).contains(&u64::from(port))
            }
            Value::String(s) => match s.parse::<u64>() {
                Ok(n) => n == u64::from(port),
                // A named port means the destination pod's container port of that name.
                Err(_) => match destination {
                    End::Pod(p) => p.named_port(s, protocol) == Some(port),
                    End::External(_) => false,
                },
            },
            _ => false,
        }
    })
}

/// `ip` is inside `cidr` (`10.0.0.0/16`, `fd00::/8`, or a bare address as a /32 or /128).
/// Families never match each other; a malformed CIDR matches nothing.
pub fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let (addr, len) = match cidr.split_once('/') {
        Some((a, l)) => (a, l.parse::<u32>().ok()),
        None => (cidr, None),
    };
    let Ok(net) = addr.parse::<IpAddr>() else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let len = len.unwrap_or(32);
            if len > 32 {
                return false;
            }
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let len = len.unwrap_or(128);
            if len > 128 {
                return false;
            }
            let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cidrs_contain_like_the_kernel() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(cidr_contains("10.0.0.0/16", ip("10.0.255.1")));
        assert!(!cidr_contains("10.0.0.0/16", ip("10.1.0.1")));
        assert!(cidr_contains("0.0.0.0/0", ip("203.0.113.9")));
        assert!(cidr_contains("10.0.0.5/32", ip("10.0.0.5")));
        assert!(cidr_contains("10.0.0.5", ip("10.0.0.5")));
        assert!(!cidr_contains("10.0.0.0/33", ip("10.0.0.5")));
        assert!(!cidr_contains("::/0", ip("10.0.0.5")));
        assert!(cidr_contains("fd00::/8", ip("fd12::1")));
        assert!(!cidr_contains("garbage", ip("10.0.0.5")));
    }

    #[test]
    fn peers_parse_in_every_documented_form() {
        let pod = |ns: &str, n: &str| PeerRef::Pod {
            namespace: ns.into(),
            name: n.into(),
        };
        assert_eq!(PeerRef::parse("web").unwrap(), pod("default", "web"));
        assert_eq!(PeerRef::parse("prod/web").unwrap(), pod("prod", "web"));
        assert_eq!(
            PeerRef::parse("svc/prod/web").unwrap(),
            PeerRef::Service {
                namespace: "prod".into(),
                name: "web".into()
            }
        );
        assert_eq!(
            PeerRef::parse("10.0.0.1").unwrap(),
            PeerRef::Ip("10.0.0.1".parse().unwrap())
        );
        for bad in ["", "a/", "/b", "a/b/c", "svc/", "x/y/z/w"] {
            assert!(
                matches!(PeerRef::parse(bad), Err(NetcheckError::BadRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_pods_and_service_sources_are_errors() {
        let inv = Inventory::default();
        let q = Query {
            from: PeerRef::parse("ghost").unwrap(),
            to: PeerRef::parse("10.0.0.1").unwrap(),
            port: 80,
            protocol: Protocol::Tcp,
        };
        let e = evaluate(&inv, &q).unwrap_err();
        assert_eq!(
            e.to_string(),
            "pods \"ghost\" not found in namespace \"default\""
        );
        assert_eq!(e.status(), 404);
        let q = Query {
            from: PeerRef::parse("svc/web").unwrap(),
            ..q
        };
        assert_eq!(evaluate(&inv, &q).unwrap_err().status(), 400);
    }

    #[test]
    fn policy_types_default_as_upstream() {
        assert_eq!(policy_types(&json!({"spec": {}})), (true, false));
        assert_eq!(
            policy_types(&json!({"spec": {"egress": [{}]}})),
            (true, true)
        );
        assert_eq!(
            policy_types(&json!({"spec": {"egress": [{}], "policyTypes": ["Egress"]}})),
            (false, true)
        );
    }
}
