//! The AWS Load Balancer Controller's Ingress half: Ingresses of class `alb` (by
//! `spec.ingressClassName` or the legacy `kubernetes.io/ingress.class` annotation) become an
//! application load balancer per ingress group (`alb.ingress.kubernetes.io/group.name`, else one
//! per Ingress), with listeners from `listen-ports` (default `HTTP:80`; HTTPS with
//! `certificate-arn`), one rule per host/path (Prefix and Exact), and one HTTP target group per
//! backend Service port (`target-type` instance or ip). Members get the ALB's hostname in their
//! status and the finalizer `ingress.k8s.aws/resources`; a group with no members left loses its
//! ALB and groups. Targets and health are kept exactly as for Services
//! ([`crate::load_balancer`]), whose AWS helpers this reuses.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use skiff_controllers::runtime::informer::Cache;
use skiff_controllers::runtime::reconcile::{Action, Error, Reconciler};
use skiff_k8s_core::client::{ApiClient, ResourceRef, WriteOptions};

use crate::load_balancer::{LbError, LoadBalancerController, arr, first, s, tags_json};
use crate::load_balancer_model::{
    CLUSTER_TAG, PortModel, RESOURCE_TAG, Scheme, ServiceModel, TargetType, desired_targets,
    has_finalizer, is_deleting, pick_subnets,
};

pub const INGRESS_CLASS: &str = "alb";
pub const CONTROLLER: &str = "ingress.k8s.aws/alb";
pub const FINALIZER: &str = "ingress.k8s.aws/resources";
pub const STACK_TAG: &str = "ingress.k8s.aws/stack";
const PREFIX: &str = "alb.ingress.kubernetes.io/";

pub fn ingresses() -> ResourceRef {
    ResourceRef::new("networking.k8s.io", "v1", "ingresses")
}

fn ann<'a>(obj: &'a Value, name: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(format!("{PREFIX}{name}")))
        .and_then(Value::as_str)
}

/// Whether the Ingress is the ALB controller's.
pub fn is_alb(ing: &Value) -> bool {
    ing.pointer("/spec/ingressClassName")
        .and_then(Value::as_str)
        == Some(INGRESS_CLASS)
        || ing
            .pointer("/metadata/annotations")
            .and_then(|a| a.get("kubernetes.io/ingress.class"))
            .and_then(Value::as_str)
            == Some(INGRESS_CLASS)
}

/// The group an Ingress belongs to: the explicit `group.name`, else `<ns>/<name>` alone.
pub fn group_of(ing: &Value) -> String {
    match ann(ing, "group.name") {
        Some(g) if !g.is_empty() => g.to_string(),
        _ => format!(
            "{}/{}",
            ing["metadata"]["namespace"].as_str().unwrap_or("default"),
            ing["metadata"]["name"].as_str().unwrap_or_default()
        ),
    }
}

/// `[{"HTTP": 80}, {"HTTPS": 443}]` → `[("HTTP", 80), ("HTTPS", 443)]`; default HTTP:80.
pub fn listen_ports(ing: &Value) -> Result<Vec<(String, i64)>, String> {
    let Some(raw) = ann(ing, "listen-ports") else {
        return Ok(vec![("HTTP".into(), 80)]);
    };
    let parsed: Value = serde_json::from_str(raw)
        .map_err(|e| format!("failed to parse json annotation, {PREFIX}listen-ports: {e}"))?;
    let mut out = Vec::new();
    for entry in parsed.as_array().into_iter().flatten() {
        for (proto, port) in entry.as_object().into_iter().flatten() {
            let Some(port) = port.as_i64().filter(|p| (1..=65535).contains(p)) else {
                return Err(format!("invalid port in listen-ports: {port}"));
            };
            if !matches!(proto.as_str(), "HTTP" | "HTTPS") {
                return Err(format!("invalid protocol in listen-ports: {proto}"));
            }
            out.push((proto.clone(), port));
        }
    }
    if out.is_empty() {
        return Err("listen-ports must name at least one port".into());
    }
    Ok(out)
}

/// A backend Service port of the group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Backend {
    pub namespace: String,
    pub service: String,
    /// `spec.rules[].http.paths[].backend.service.port`: a number or a name.
    pub port: String,
}

fn backend_of(namespace: &str, b: &Value) -> Option<Backend> {
    let svc = b.pointer("/service")?;
    let port = svc
        .pointer("/port/number")
        .map(|n| n.to_string())
        .or_else(|| svc.pointer("/port/name")?.as_str().map(str::to_string))?;
    Some(Backend {
        namespace: namespace.to_string(),
        service: svc["name"].as_str()?.to_string(),
        port,
    })
}

/// One listener rule: host (optional), path patterns, and where it forwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleModel {
    pub host: Option<String>,
    pub paths: Vec<String>,
    pub backend: Backend,
}

/// Path patterns of an Ingress path: Prefix `/api` matches `/api` and `/api/*`, Exact only itself.
pub fn path_patterns(path: &str, path_type: &str) -> Vec<String> {
    match path_type {
        "Exact" => vec![path.to_string()],
        "Prefix" if path == "/" || path.is_empty() => vec!["/*".to_string()],
        "Prefix" => {
            let p = path.trim_end_matches('/');
            vec![p.to_string(), format!("{p}/*")]
        }
        _ => vec![path.to_string()],
    }
}

/// Rules of the group's members, in member order (namespace/name) then rule order, and the
/// default backend (the first member's).
pub fn rules_of(members: &[Value]) -> (Vec<RuleModel>, Option<Backend>) {
    let mut rules = Vec::new();
    let mut default = None;
    for ing in members {
        let ns = ing["metadata"]["namespace"].as_str().unwrap_or("default");
        if default.is_none()
            && let Some(b) = ing.pointer("/spec/defaultBackend")
        {
            default = backend_of(ns, b);
        }
        for r in ing
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let host = r["host"].as_str().map(str::to_string);
            for p in r
                .pointer("/http/paths")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(backend) = backend_of(ns, &p["backend"]) else {
                    continue;
                };
                rules.push(RuleModel {
                    host: host.clone(),
                    paths: path_patterns(
                        p["path"].as_str().unwrap_or("/"),
                        p["pathType"].as_str().unwrap_or("Prefix"),
                    ),
                    backend,
                });
            }
        }
    }
    (rules, default)
}

/// `k8s-<group:17>-<hash10>` for explicit groups, `k8s-<ns:8>-<name:8>-<hash10>` otherwise.
pub fn alb_name(cluster: &str, group: &str, scheme: Scheme) -> String {
    let hash = skiff_aws_model::sigv4::sha256_hex(
        format!("{cluster}\0{group}\0{}", scheme.as_str()).as_bytes(),
    );
    let clean = |s: &str, n: usize| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(n)
            .collect()
    };
    match group.split_once('/') {
        Some((ns, name)) => format!("k8s-{}-{}-{}", clean(ns, 8), clean(name, 8), &hash[..10]),
        None => format!("k8s-{}-{}", clean(group, 17), &hash[..10]),
    }
}

/// Reconciles ingress groups (keys: the group name, or `<ns>/<name>` for implicit groups).
pub struct IngressController {
    lb: Arc<LoadBalancerController>,
    ingresses: Cache,
}

impl IngressController {
    pub fn new(lb: Arc<LoadBalancerController>, ingresses: Cache) -> Self {
        Self { lb, ingresses }
    }

    /// Creates the IngressClass `alb` the Helm chart installs, if missing.
    pub async fn ensure_ingress_class(client: &dyn ApiClient) {
        let class = json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": INGRESS_CLASS}, "spec": {"controller": CONTROLLER}});
        let r = ResourceRef::new("networking.k8s.io", "v1", "ingressclasses");
        if let Err(e) = client.create(&r, class, &WriteOptions::default()).await
            && !matches!(e, skiff_k8s_core::status::ApiError::AlreadyExists { .. })
        {
            tracing::warn!(error = %e, "IngressClass alb not created");
        }
    }

    async fn set_finalizer(&self, ing: &Value, present: bool) -> Result<Value, LbError> {
        let mut ing = ing.clone();
        let mut list: Vec<Value> = ing["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        list.retain(|f| f != FINALIZER);
        if present {
            list.push(json!(FINALIZER));
        }
        ing["metadata"]["finalizers"] = json!(list);
        let ns = ing["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        Ok(self
            .lb
            .client
            .update(&ingresses().in_namespace(&ns), ing, &self.lb.write_opts())
            .await?)
    }

    async fn set_hostname(&self, ing: &Value, hostname: &str) -> Result<(), LbError> {
        let want = json!({"ingress": [{"hostname": hostname}]});
        if ing.pointer("/status/loadBalancer") == Some(&want) {
            return Ok(());
        }
        let mut ing = ing.clone();
        ing["status"]["loadBalancer"] = want;
        let ns = ing["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        self.lb
            .client
            .update_status(&ingresses().in_namespace(&ns), ing, &self.lb.write_opts())
            .await?;
        Ok(())
    }

    /// The target group of one backend, created if missing; its targets synced.
    async fn backend_group(
        &self,
        ing: &Value,
        group: &str,
        b: &Backend,
        target_type: TargetType,
        vpc: &str,
    ) -> Result<Option<String>, LbError> {
        let key = format!("{}/{}", b.namespace, b.service);
        let Some(svc) = self.lb.services.get(&key) else {
            self.lb
                .event(
                    ing,
                    "Warning",
                    "FailedBuildModel",
                    &format!(
                        "Failed build model due to Service \"{}\" not found",
                        b.service
                    ),
                )
                .await;
            return Ok(None);
        };
        let Some(p) = svc["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| {
                p["port"].as_i64().is_some_and(|n| n.to_string() == b.port)
                    || p["name"] == b.port.as_str()
            })
        else {
            return Ok(None);
        };
        let port = p["port"].as_i64().unwrap_or_default();
        let tg_name = crate::load_balancer_model::target_group_name(
            self.lb.cluster(),
            &b.namespace,
            &b.service,
            port,
            "HTTP",
            target_type,
        );
        let pm = PortModel {
            name: p["name"].as_str().unwrap_or_default().to_string(),
            port,
            protocol: "HTTP".into(),
            node_port: p["nodePort"].as_i64(),
            target_port: p["targetPort"].as_i64().or(Some(port)),
            target_group_name: tg_name.clone(),
        };
        if target_type == TargetType::Instance && pm.node_port.is_none() {
            self.lb
                .event(
                    ing,
                    "Warning",
                    "FailedBuildModel",
                    &format!(
                        "Failed build model due to expect service type to be NodePort or LoadBalancer with instance targetType: {}",
                        b.service
                    ),
                )
                .await;
            return Ok(None);
        }
        let tg_arn = match self
            .lb
            .aws
            .call(
                "elasticloadbalancing",
                "DescribeTargetGroups",
                json!({"Names": [tg_name]}),
            )
            .await
        {
            Ok(out) => s(&first(&out, "TargetGroups"), "TargetGroupArn"),
            Err(e) if e.code == "TargetGroupNotFound" => {
                let tg_port = match target_type {
                    TargetType::Instance => pm.node_port,
                    TargetType::Ip => pm.target_port,
                }
                .unwrap_or(1);
                let tags = tags_json(&[
                    (CLUSTER_TAG, self.lb.cluster().to_string()),
                    (STACK_TAG, group.to_string()),
                    (RESOURCE_TAG, format!("{key}:{port}")),
                ]);
                let out = self
                    .lb
                    .aws
                    .call(
                        "elasticloadbalancing",
                        "CreateTargetGroup",
                        json!({"Name": tg_name, "Protocol": "HTTP", "Port": tg_port, "VpcId": vpc,
                           "TargetType": target_type.as_str(), "Tags": tags}),
                    )
                    .await?;
                s(&first(&out, "TargetGroups"), "TargetGroupArn")
            }
            Err(e) => return Err(e.into()),
        };
        let model = ServiceModel {
            namespace: b.namespace.clone(),
            name: b.service.clone(),
            scheme: Scheme::Internal,
            target_type,
            load_balancer_name: String::new(),
            ports: vec![pm.clone()],
            local_traffic: svc.pointer("/spec/externalTrafficPolicy") == Some(&json!("Local")),
        };
        let want = desired_targets(
            &model,
            &pm,
            &self.lb.nodes.list(None),
            self.lb.endpoints.get(&key).as_ref(),
        );
        self.lb.sync_targets(ing, &tg_arn, &want).await?;
        Ok(Some(tg_arn))
    }

    /// Listener rules as desired: `(conditions, target group)` in priority order. Replaces the
    /// listener's rules when they differ (priorities are positional, as the LBC assigns them).
    async fn sync_rules(
        &self,
        listener_arn: &str,
        desired: &[(Value, String)],
    ) -> Result<(), LbError> {
        let have = arr(
            &self
                .lb
                .aws
                .call(
                    "elasticloadbalancing",
                    "DescribeRules",
                    json!({"ListenerArn": listener_arn}),
                )
                .await?,
            "Rules",
        );
        let current: Vec<(Value, String)> = have
            .iter()
            .filter(|r| r["IsDefault"] != true)
            .map(|r| {
                let conds: Vec<Value> = arr(r, "Conditions")
                    .iter()
                    .map(|c| json!({"Field": c["Field"], "Values": c["Values"]}))
                    .collect();
                (json!(conds), s(&first(r, "Actions"), "TargetGroupArn"))
            })
            .collect();
        let wanted: Vec<(Value, String)> = desired
            .iter()
            .map(|(c, tg)| {
                let conds: Vec<Value> = c
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| json!({"Field": c["Field"], "Values": c["Values"]}))
                    .collect();
                (json!(conds), tg.clone())
            })
            .collect();
        if current == wanted {
            return Ok(());
        }
        for r in have.iter().filter(|r| r["IsDefault"] != true) {
            self.lb
                .aws
                .call(
                    "elasticloadbalancing",
                    "DeleteRule",
                    json!({"RuleArn": r["RuleArn"]}),
                )
                .await?;
        }
        for (i, (conds, tg)) in desired.iter().enumerate() {
            self.lb
                .aws
                .call(
                    "elasticloadbalancing",
                    "CreateRule",
                    json!({"ListenerArn": listener_arn, "Priority": i + 1, "Conditions": conds,
                       "Actions": [{"Type": "forward", "TargetGroupArn": tg}]}),
                )
                .await?;
        }
        Ok(())
    }

    async fn reconcile_group(&self, group: &str) -> Result<Action, LbError> {
        let mut members: Vec<Value> = self
            .ingresses
            .list(None)
            .into_iter()
            .filter(|i| group_of(i) == group && (is_alb(i) || has_finalizer(i, FINALIZER)))
            .collect();
        members.sort_by_key(skiff_controllers::runtime::informer::key_of);
        let (leaving, active): (Vec<Value>, Vec<Value>) = members
            .into_iter()
            .partition(|i| is_deleting(i) || !is_alb(i));
        if active.is_empty() {
            self.lb
                .delete_stale(STACK_TAG, group, None, &BTreeSet::new())
                .await?;
        }
        let Some(lead) = active.first() else {
            for i in &leaving {
                if has_finalizer(i, FINALIZER) {
                    self.set_finalizer(i, false).await?;
                }
            }
            return Ok(Action::AwaitChange);
        };
        let scheme = match ann(lead, "scheme") {
            None | Some("internal") => Scheme::Internal,
            Some("internet-facing") => Scheme::InternetFacing,
            Some(other) => {
                self.lb
                    .event(
                        lead,
                        "Warning",
                        "FailedBuildModel",
                        &format!("Failed build model due to unknown scheme: {other}"),
                    )
                    .await;
                return Ok(Action::AwaitChange);
            }
        };
        let target_type = match ann(lead, "target-type") {
            Some("ip") => TargetType::Ip,
            _ => TargetType::Instance,
        };
        let listen = match listen_ports(lead) {
            Ok(l) => l,
            Err(msg) => {
                self.lb
                    .event(
                        lead,
                        "Warning",
                        "FailedBuildModel",
                        &format!("Failed build model due to {msg}"),
                    )
                    .await;
                return Ok(Action::AwaitChange);
            }
        };
        let cert = active.iter().find_map(|i| ann(i, "certificate-arn"));
        let mut fresh = Vec::new();
        for i in &active {
            fresh.push(if has_finalizer(i, FINALIZER) {
                i.clone()
            } else {
                self.set_finalizer(i, true).await?
            });
        }
        let vpc = self.lb.cluster_vpc().await?;
        let subnets = arr(
            &self
                .lb
                .aws
                .call(
                    "ec2",
                    "DescribeSubnets",
                    json!({"Filters": [{"Name": "vpc-id", "Values": [vpc]}]}),
                )
                .await?,
            "Subnets",
        );
        let picked = pick_subnets(&subnets, self.lb.cluster(), scheme);
        if picked.len() < 2 {
            self.lb
                .event(
                    lead,
                    "Warning",
                    "FailedBuildModel",
                    &format!(
                        "Failed build model due to couldn't auto-discover subnets: unable to resolve at least 2 subnets ({} match VPC and tags: [{}])",
                        picked.len(),
                        scheme.role_tag()
                    ),
                )
                .await;
            return Ok(Action::Requeue(Duration::from_secs(30)));
        }
        let name = alb_name(self.lb.cluster(), group, scheme);
        let lb = match self
            .lb
            .aws
            .call(
                "elasticloadbalancing",
                "DescribeLoadBalancers",
                json!({"Names": [name]}),
            )
            .await
        {
            Ok(out) => first(&out, "LoadBalancers"),
            Err(e) if e.code == "LoadBalancerNotFound" => {
                let tags = tags_json(&[
                    (CLUSTER_TAG, self.lb.cluster().to_string()),
                    (STACK_TAG, group.to_string()),
                    (RESOURCE_TAG, "LoadBalancer".to_string()),
                ]);
                let out = self
                    .lb
                    .aws
                    .call(
                        "elasticloadbalancing",
                        "CreateLoadBalancer",
                        json!({"Name": name, "Type": "application", "Scheme": scheme.as_str(),
                           "Subnets": picked, "Tags": tags}),
                    )
                    .await?;
                first(&out, "LoadBalancers")
            }
            Err(e) => return Err(e.into()),
        };
        let lb_arn = s(&lb, "LoadBalancerArn");
        let (rules, default_backend) = rules_of(&active);
        let mut groups: BTreeMap<Backend, String> = BTreeMap::new();
        let backends: BTreeSet<Backend> = rules
            .iter()
            .map(|r| r.backend.clone())
            .chain(default_backend.clone())
            .collect();
        for b in backends {
            let owner = active
                .iter()
                .find(|i| i["metadata"]["namespace"] == b.namespace.as_str())
                .unwrap_or(lead);
            if let Some(arn) = self
                .backend_group(owner, group, &b, target_type, &vpc)
                .await?
            {
                groups.insert(b, arn);
            }
        }
        let desired_rules: Vec<(Value, String)> = rules
            .iter()
            .filter_map(|r| {
                let tg = groups.get(&r.backend)?;
                let mut conds = Vec::new();
                if let Some(h) = &r.host {
                    conds.push(json!({"Field": "host-header", "Values": [h]}));
                }
                conds.push(json!({"Field": "path-pattern", "Values": r.paths}));
                Some((json!(conds), tg.clone()))
            })
            .collect();
        let default_action = match default_backend.as_ref().and_then(|b| groups.get(b)) {
            Some(tg) => json!([{"Type": "forward", "TargetGroupArn": tg}]),
            None => json!([{"Type": "fixed-response", "FixedResponseConfig": {
                "StatusCode": "404", "ContentType": "text/plain"}}]),
        };
        let listeners = arr(
            &self
                .lb
                .aws
                .call(
                    "elasticloadbalancing",
                    "DescribeListeners",
                    json!({"LoadBalancerArn": lb_arn}),
                )
                .await?,
            "Listeners",
        );
        for (proto, port) in &listen {
            let mut input =
                json!({"Protocol": proto, "Port": port, "DefaultActions": default_action});
            if proto == "HTTPS" {
                if let Some(c) = cert {
                    input["Certificates"] = json!([{"CertificateArn": c}]);
                } else {
                    self.lb
                        .event(
                            lead,
                            "Warning",
                            "FailedBuildModel",
                            "Failed build model due to no certificate found for HTTPS listener",
                        )
                        .await;
                    continue;
                }
            }
            let arn = match listeners.iter().find(|l| l["Port"] == *port) {
                Some(l) => {
                    input["ListenerArn"] = l["ListenerArn"].clone();
                    self.lb
                        .aws
                        .call("elasticloadbalancing", "ModifyListener", input)
                        .await?;
                    s(l, "ListenerArn")
                }
                None => {
                    input["LoadBalancerArn"] = json!(lb_arn);
                    let out = self
                        .lb
                        .aws
                        .call("elasticloadbalancing", "CreateListener", input)
                        .await?;
                    s(&first(&out, "Listeners"), "ListenerArn")
                }
            };
            self.sync_rules(&arn, &desired_rules).await?;
        }
        for l in &listeners {
            if !listen.iter().any(|(_, p)| l["Port"] == *p) {
                self.lb
                    .aws
                    .call(
                        "elasticloadbalancing",
                        "DeleteListener",
                        json!({"ListenerArn": l["ListenerArn"]}),
                    )
                    .await?;
            }
        }
        let keep: BTreeSet<String> = self
            .lb
            .tagged("tg", STACK_TAG, group)
            .await?
            .into_iter()
            .filter(|(_, arn)| groups.values().any(|g| g == arn))
            .map(|(tg, _)| s(&tg, "TargetGroupName"))
            .collect();
        self.lb
            .delete_stale(STACK_TAG, group, Some(&name), &keep)
            .await?;
        let dns = s(&lb, "DNSName");
        for i in &fresh {
            self.set_hostname(i, &dns).await?;
        }
        for i in &leaving {
            if has_finalizer(i, FINALIZER) {
                self.set_finalizer(i, false).await?;
            }
        }
        if lead.pointer("/status/loadBalancer/ingress/0/hostname") != Some(&json!(dns)) {
            self.lb
                .event(
                    lead,
                    "Normal",
                    "SuccessfullyReconciled",
                    "Successfully reconciled",
                )
                .await;
        }
        Ok(Action::Requeue(Duration::from_secs(300)))
    }
}

#[async_trait::async_trait]
impl Reconciler for IngressController {
    fn name(&self) -> &'static str {
        "aws-load-balancer-controller-ingress"
    }

    async fn reconcile(&self, key: &str) -> Result<Action, Error> {
        self.reconcile_group(key).await.map_err(Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_group_and_listen_ports() {
        let ing = json!({"metadata": {"name": "web", "namespace": "shop", "annotations": {
            "kubernetes.io/ingress.class": "alb",
            "alb.ingress.kubernetes.io/listen-ports": "[{\"HTTP\": 80}, {\"HTTPS\": 443}]"}}});
        assert!(is_alb(&ing));
        assert_eq!(group_of(&ing), "shop/web");
        assert_eq!(
            listen_ports(&ing).unwrap(),
            [("HTTP".to_string(), 80), ("HTTPS".to_string(), 443)]
        );
        let grouped = json!({"metadata": {"name": "a", "namespace": "x", "annotations": {
            "alb.ingress.kubernetes.io/group.name": "shared",
            "alb.ingress.kubernetes.io/listen-ports": "[{\"FTP\": 21}]"}},
            "spec": {"ingressClassName": "nginx"}});
        assert!(!is_alb(&grouped));
        assert_eq!(group_of(&grouped), "shared");
        assert!(listen_ports(&grouped).is_err());
        assert_eq!(
            listen_ports(&json!({})).unwrap(),
            [("HTTP".to_string(), 80)]
        );
        assert!(alb_name("prod", "shared", Scheme::Internal).starts_with("k8s-shared-"));
        assert!(alb_name("prod", "shop/web", Scheme::Internal).starts_with("k8s-shop-web-"));
    }

    #[test]
    fn paths_and_rules() {
        assert_eq!(path_patterns("/api/", "Prefix"), ["/api", "/api/*"]);
        assert_eq!(path_patterns("/", "Prefix"), ["/*"]);
        assert_eq!(path_patterns("/exact", "Exact"), ["/exact"]);
        let ing = json!({"metadata": {"name": "web", "namespace": "shop"}, "spec": {
            "defaultBackend": {"service": {"name": "fallback", "port": {"number": 80}}},
            "rules": [{"host": "a.example.com", "http": {"paths": [
                {"path": "/api", "pathType": "Prefix",
                 "backend": {"service": {"name": "api", "port": {"name": "http"}}}}]}}]}});
        let (rules, default) = rules_of(&[ing]);
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].host.as_deref(), Some("a.example.com"));
        assert_eq!(rules[0].backend.port, "http");
        assert_eq!(default.unwrap().service, "fallback");
    }
}
