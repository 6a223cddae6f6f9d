//! Security groups for pods (EKS's `SecurityGroupPolicy`, `vpcresources.k8s.aws/v1beta1`) and the
//! EC2 security group half of `skiff netcheck`.
//!
//! On EKS the VPC resource controller gives a pod selected by a SecurityGroupPolicy (its
//! `podSelector` and/or `serviceAccountSelector`, ANDed when both are set, in the pod's namespace)
//! a branch ENI carrying the policy's groups; every other pod sends and receives through its
//! node's ENI, so the instance's groups apply. [`evaluate`] judges a connection by those groups as
//! EC2 does (stateful, so only the initiating direction counts): some egress rule of some source
//! group must allow the destination, and some ingress rule of some destination group must allow
//! the source (CIDR, referenced group membership, protocol `-1`/number/name, port ranges).
//! Traffic between two pods on the same node through the node's ENI never reaches the ENI's
//! security groups, so it is not judged (branch-ENI pods are, as their traffic leaves on the VLAN).
//!
//! The CRD is installed in every EKS cluster at start ([`run`], a row of
//! [`crate::integrations::INTEGRATIONS`]), as EKS pre-installs it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, ResourceRef, WriteOptions};
use skiff_k8s_core::status::ApiError;
use tokio::sync::watch;

use crate::network_policy::{Protocol, cidr_contains};

pub const GROUP: &str = "vpcresources.k8s.aws";
pub const VERSION: &str = "v1beta1";
pub const PLURAL: &str = "securitygrouppolicies";
/// Who installs the CRD (the VPC resource controller's identity on EKS).
pub const CONTROLLER_USER: &str = "eks:vpc-resource-controller";

/// The SecurityGroupPolicy collection.
pub fn security_group_policies() -> ResourceRef {
    ResourceRef::new(GROUP, VERSION, PLURAL)
}

/// The CRD EKS installs (`securitygrouppolicies.vpcresources.k8s.aws`), with the schema of the
/// VPC resource controller's v1beta1 types.
pub fn crd() -> Value {
    let selector = json!({
        "type": "object",
        "properties": {
            "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
            "matchExpressions": {"type": "array", "items": {
                "type": "object",
                "required": ["key", "operator"],
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"type": "string"},
                    "values": {"type": "array", "items": {"type": "string"}}
                }
            }}
        }
    });
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{PLURAL}.{GROUP}")},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": "SecurityGroupPolicy",
                "listKind": "SecurityGroupPolicyList",
                "plural": PLURAL,
                "singular": "securitygrouppolicy",
                "shortNames": ["sgp"]
            },
            "scope": "Namespaced",
            "versions": [{
                "name": VERSION,
                "served": true,
                "storage": true,
                "additionalPrinterColumns": [{
                    "name": "Security-Group-Ids",
                    "type": "string",
                    "jsonPath": ".spec.securityGroups.groupIds",
                    "description": "The security groups to apply to the selected pods"
                }],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": {
                            "type": "object",
                            "properties": {
                                "podSelector": selector.clone(),
                                "serviceAccountSelector": selector,
                                "securityGroups": {
                                    "type": "object",
                                    "properties": {
                                        "groupIds": {
                                            "type": "array",
                                            "maxItems": 5,
                                            "items": {"type": "string"}
                                        }
                                    }
                                }
                            }
                        }
                    }
                }}
            }]
        }
    })
}

fn crds() -> ResourceRef {
    ResourceRef::new("apiextensions.k8s.io", "v1", "customresourcedefinitions")
}

/// Create the CRD if it is absent (idempotent: an existing one is left as it is).
pub async fn ensure_crd(client: &dyn ApiClient) -> Result<(), ApiError> {
    match client
        .create(
            &crds(),
            crd(),
            &WriteOptions {
                field_manager: Some("vpc-resource-controller".into()),
                dry_run: false,
            },
        )
        .await
    {
        Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The integration row: install the CRD (retrying while the API settles), then idle until shutdown.
pub async fn run(client: Arc<dyn ApiClient>, mut shutdown: watch::Receiver<bool>) {
    loop {
        match ensure_crd(&*client).await {
            Ok(()) => break,
            Err(e) => tracing::warn!(error = %e, "installing the SecurityGroupPolicy CRD"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
    }
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// The SecurityGroupPolicies of `pod`'s namespace that select it, and the union of their groups.
/// `service_accounts` are the namespace's ServiceAccounts (for `serviceAccountSelector`).
pub fn groups_for_pod(
    pod: &Value,
    policies: &[Value],
    service_accounts: &[Value],
) -> Option<(Vec<String>, Vec<String>)> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let sa_name = pod["spec"]["serviceAccountName"]
        .as_str()
        .unwrap_or("default");
    let sa_labels = service_accounts
        .iter()
        .find(|sa| {
            sa["metadata"]["namespace"].as_str() == Some(ns)
                && sa["metadata"]["name"].as_str() == Some(sa_name)
        })
        .map(|sa| sa["metadata"]["labels"].clone())
        .unwrap_or(Value::Null);
    let mut names = Vec::new();
    let mut groups: Vec<String> = Vec::new();
    let mut selecting: Vec<&Value> = policies
        .iter()
        .filter(|p| p["metadata"]["namespace"].as_str().unwrap_or("default") == ns)
        .filter(|p| {
            let pod_sel = &p["spec"]["podSelector"];
            let sa_sel = &p["spec"]["serviceAccountSelector"];
            // Neither selector: the controller selects nothing.
            (!pod_sel.is_null() || !sa_sel.is_null())
                && (pod_sel.is_null() || selects(pod_sel, &pod["metadata"]["labels"]))
                && (sa_sel.is_null() || selects(sa_sel, &sa_labels))
        })
        .collect();
    selecting.sort_by_key(|p| {
        p["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    for p in selecting {
        names.push(format!(
            "{ns}/{}",
            p["metadata"]["name"].as_str().unwrap_or_default()
        ));
        for g in p["spec"]["securityGroups"]["groupIds"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !groups.iter().any(|x| x == g) {
                groups.push(g.to_string());
            }
        }
    }
    (!names.is_empty()).then_some((names, groups))
}

fn selects(sel: &Value, labels: &Value) -> bool {
    skiff_k8s_core::selector::Selector::from_label_selector(sel).is_ok_and(|s| s.matches(labels))
}

/// Which groups an end of a path sends and receives through, and why.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SgEnd {
    pub ip: String,
    pub groups: Vec<String>,
    /// `SecurityGroupPolicy ns/name` or `node NAME (instance i-…)`.
    pub origin: String,
    /// A branch ENI (security groups for pods) rather than the node's ENI.
    #[serde(skip)]
    pub branch: bool,
    /// The node's name, to spot same-node traffic through the node's ENI.
    #[serde(skip)]
    pub node: Option<String>,
}

/// The rule that allowed a direction.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SgRuleRef {
    #[serde(rename = "groupId")]
    pub group_id: String,
    #[serde(rename = "securityGroupRuleId")]
    pub rule_id: String,
}

/// One side's security group answer.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SgDirection {
    pub allowed: bool,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<SgRuleRef>,
}

/// The security group verdict of a path.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SgCheck {
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SgEnd>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<SgEnd>,
    pub egress: SgDirection,
    pub ingress: SgDirection,
}

/// The security group rules by group id, as `DescribeSecurityGroupRules` returns them.
pub type RulesByGroup = BTreeMap<String, Vec<Value>>;

/// Judge a connection from `src` to `dst` (either may be outside the VPC's ENIs: `None`, with its
/// address in `*_ip`) on `port`/`protocol`. None when neither end has security groups, or when the
/// traffic stays on one node's ENI.
pub fn evaluate(
    src: Option<&SgEnd>,
    src_ip: Option<IpAddr>,
    dst: Option<&SgEnd>,
    dst_ip: Option<IpAddr>,
    port: u16,
    protocol: Protocol,
    rules: &RulesByGroup,
) -> Option<SgCheck> {
    if src.is_none() && dst.is_none() {
        return None;
    }
    if let (Some(s), Some(d)) = (src, dst)
        && !s.branch
        && !d.branch
        && s.node.is_some()
        && s.node == d.node
    {
        return None;
    }
    let egress = match src {
        None => SgDirection {
            allowed: true,
            reason: "source has no security groups".into(),
            rule: None,
        },
        Some(s) => judge(s, dst, dst_ip, port, protocol, rules, true),
    };
    let ingress = match dst {
        None => SgDirection {
            allowed: true,
            reason: "destination has no security groups".into(),
            rule: None,
        },
        Some(d) => judge(d, src, src_ip, port, protocol, rules, false),
    };
    Some(SgCheck {
        allowed: egress.allowed && ingress.allowed,
        source: src.cloned(),
        destination: dst.cloned(),
        egress,
        ingress,
    })
}

/// `subject`'s egress (`egress`) or ingress rules against `peer`.
fn judge(
    subject: &SgEnd,
    peer: Option<&SgEnd>,
    peer_ip: Option<IpAddr>,
    port: u16,
    protocol: Protocol,
    rules: &RulesByGroup,
    egress: bool,
) -> SgDirection {
    let word = if egress { "egress" } else { "ingress" };
    for g in &subject.groups {
        for r in rules.get(g).into_iter().flatten() {
            if r["IsEgress"].as_bool() != Some(egress) {
                continue;
            }
            if !protocol_matches(r, port, protocol) {
                continue;
            }
            let peer_ok = if let Some(cidr) = r["CidrIpv4"].as_str().or(r["CidrIpv6"].as_str()) {
                peer_ip.is_some_and(|ip| cidr_contains(cidr, ip))
            } else if let Some(gid) = r["ReferencedGroupInfo"]["GroupId"].as_str() {
                peer.is_some_and(|p| p.groups.iter().any(|x| x == gid))
            } else {
                // Prefix lists name AWS service ranges, never pod addresses.
                false
            };
            if peer_ok {
                let rule_id = r["SecurityGroupRuleId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                return SgDirection {
                    allowed: true,
                    reason: format!("allowed by {g} {word} rule {rule_id} ({})", rule_text(r)),
                    rule: Some(SgRuleRef {
                        group_id: g.clone(),
                        rule_id,
                    }),
                };
            }
        }
    }
    SgDirection {
        allowed: false,
        reason: format!(
            "no {word} rule of {} ({}) allows it",
            subject.groups.join(", "),
            subject.origin
        ),
        rule: None,
    }
}

/// A rule as the console words it: `tcp 80-80 from 10.0.0.0/16`.
fn rule_text(r: &Value) -> String {
    let proto = r["IpProtocol"].as_str().unwrap_or_default();
    let peer = r["CidrIpv4"]
        .as_str()
        .or(r["CidrIpv6"].as_str())
        .or(r["ReferencedGroupInfo"]["GroupId"].as_str())
        .unwrap_or_default();
    if proto == "-1" {
        format!("all traffic, {peer}")
    } else {
        format!("{proto} {}-{}, {peer}", r["FromPort"], r["ToPort"])
    }
}

fn protocol_matches(r: &Value, port: u16, protocol: Protocol) -> bool {
    let proto = r["IpProtocol"].as_str().unwrap_or_default();
    let wanted = match protocol {
        Protocol::Tcp => ["tcp", "6"],
        Protocol::Udp => ["udp", "17"],
        Protocol::Sctp => ["sctp", "132"],
    };
    if proto == "-1" {
        return true;
    }
    if !wanted.contains(&proto) {
        return false;
    }
    // For TCP/UDP the ports bound the range; other protocols (SCTP by number) carry -1: all ports.
    let from = r["FromPort"].as_i64().unwrap_or(-1);
    let to = r["ToPort"].as_i64().unwrap_or(-1);
    if from == -1 && to == -1 {
        return true;
    }
    (from..=to).contains(&i64::from(port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(groups: &[&str], node: &str, branch: bool) -> SgEnd {
        SgEnd {
            ip: "10.0.1.5".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            origin: "test".into(),
            branch,
            node: Some(node.into()),
        }
    }

    fn rule(
        id: &str,
        group: &str,
        egress: bool,
        proto: &str,
        ports: (i64, i64),
        peer: Value,
    ) -> Value {
        let mut r = json!({"SecurityGroupRuleId": id, "GroupId": group, "IsEgress": egress,
            "IpProtocol": proto, "FromPort": ports.0, "ToPort": ports.1});
        for (k, v) in peer.as_object().unwrap() {
            r[k] = v.clone();
        }
        r
    }

    #[test]
    fn both_ends_need_a_rule_and_group_references_mean_membership() {
        let mut rules = RulesByGroup::new();
        rules.insert(
            "sg-client".into(),
            vec![rule(
                "sgr-out",
                "sg-client",
                true,
                "-1",
                (-1, -1),
                json!({"CidrIpv4": "0.0.0.0/0"}),
            )],
        );
        rules.insert(
            "sg-db".into(),
            vec![rule(
                "sgr-in",
                "sg-db",
                false,
                "tcp",
                (5432, 5432),
                json!({"ReferencedGroupInfo": {"GroupId": "sg-client"}}),
            )],
        );
        let client = end(&["sg-client"], "n1", true);
        let db = end(&["sg-db"], "n2", true);
        let ip = "10.0.1.5".parse().ok();
        let ok = evaluate(
            Some(&client),
            ip,
            Some(&db),
            ip,
            5432,
            Protocol::Tcp,
            &rules,
        )
        .unwrap();
        assert!(ok.allowed, "{ok:?}");
        assert_eq!(ok.ingress.rule.as_ref().unwrap().rule_id, "sgr-in");
        assert_eq!(ok.egress.rule.as_ref().unwrap().rule_id, "sgr-out");
        let wrong_port = evaluate(
            Some(&client),
            ip,
            Some(&db),
            ip,
            5433,
            Protocol::Tcp,
            &rules,
        )
        .unwrap();
        assert!(!wrong_port.allowed);
        assert!(
            wrong_port
                .ingress
                .reason
                .starts_with("no ingress rule of sg-db")
        );
        let udp = evaluate(
            Some(&client),
            ip,
            Some(&db),
            ip,
            5432,
            Protocol::Udp,
            &rules,
        )
        .unwrap();
        assert!(!udp.allowed);
        // A stranger (not in sg-client) is refused, though its egress is open.
        let other = end(&["sg-other"], "n3", true);
        rules.insert("sg-other".into(), rules["sg-client"].clone());
        let refused =
            evaluate(Some(&other), ip, Some(&db), ip, 5432, Protocol::Tcp, &rules).unwrap();
        assert!(refused.egress.allowed && !refused.ingress.allowed);
    }

    #[test]
    fn outside_peers_match_by_cidr_and_same_node_traffic_is_not_judged() {
        let mut rules = RulesByGroup::new();
        rules.insert(
            "sg-node".into(),
            vec![rule(
                "sgr-1",
                "sg-node",
                false,
                "tcp",
                (80, 90),
                json!({"CidrIpv4": "192.0.2.0/24"}),
            )],
        );
        let node = end(&["sg-node"], "n1", false);
        let ext = |s: &str| s.parse::<IpAddr>().ok();
        let ok = evaluate(
            None,
            ext("192.0.2.7"),
            Some(&node),
            None,
            85,
            Protocol::Tcp,
            &rules,
        )
        .unwrap();
        assert!(ok.allowed);
        let no = evaluate(
            None,
            ext("198.51.100.7"),
            Some(&node),
            None,
            85,
            Protocol::Tcp,
            &rules,
        )
        .unwrap();
        assert!(!no.allowed);
        assert!(
            evaluate(
                Some(&node),
                None,
                Some(&node),
                None,
                85,
                Protocol::Tcp,
                &rules
            )
            .is_none()
        );
        assert!(evaluate(None, None, None, None, 85, Protocol::Tcp, &rules).is_none());
    }

    #[test]
    fn security_group_policies_select_by_pod_and_service_account_labels() {
        let pod = json!({"metadata": {"namespace": "shop", "name": "db-0", "labels": {"app": "db"}},
            "spec": {"serviceAccountName": "db"}});
        let sas = vec![
            json!({"metadata": {"namespace": "shop", "name": "db", "labels": {"role": "data"}}}),
        ];
        let sgp = |name: &str, spec: Value| json!({"metadata": {"namespace": "shop", "name": name}, "spec": spec});
        let policies = vec![
            sgp(
                "by-pod",
                json!({"podSelector": {"matchLabels": {"app": "db"}}, "securityGroups": {"groupIds": ["sg-1"]}}),
            ),
            sgp(
                "by-sa",
                json!({"serviceAccountSelector": {"matchLabels": {"role": "data"}}, "securityGroups": {"groupIds": ["sg-2", "sg-1"]}}),
            ),
            sgp(
                "both-miss",
                json!({"podSelector": {"matchLabels": {"app": "db"}}, "serviceAccountSelector": {"matchLabels": {"role": "web"}}, "securityGroups": {"groupIds": ["sg-3"]}}),
            ),
            sgp("none", json!({"securityGroups": {"groupIds": ["sg-4"]}})),
        ];
        let (names, groups) = groups_for_pod(&pod, &policies, &sas).unwrap();
        assert_eq!(names, ["shop/by-pod", "shop/by-sa"]);
        assert_eq!(groups, ["sg-1", "sg-2"]);
        let other =
            json!({"metadata": {"namespace": "shop", "name": "x", "labels": {}}, "spec": {}});
        assert!(groups_for_pod(&other, &policies, &sas).is_none());
    }
}
