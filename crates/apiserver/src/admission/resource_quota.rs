//! `ResourceQuota`: object-count and compute quotas per namespace (`pods`, `services`,
//! `configmaps`, `count/deployments.apps`, `requests.cpu`, `limits.memory`, …), with upstream's
//! refusals (`exceeded quota: rq-1, requested: pods=1, used: pods=2, limited: pods=2`,
//! `failed quota: rq-1: must specify limits.cpu for: nginx`).
//!
//! Upstream charges a quota by updating its status with a resourceVersion precondition before the
//! object is stored, and a controller repairs drift later. Here the charge is a set of store
//! operations, each guarded by the quota's revision, that the registry commits in the same
//! transaction as the object: concurrent creates cannot both take the last unit (one of them
//! fails its precondition and is charged again on the new usage), and a failed write charges
//! nothing. `status.hard/used` are also recounted from the namespace's objects whenever a quota is
//! created or updated, so `kubectl describe quota` is right from the start.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use skiff_k8s_core::quantity::{Format, Quantity};
use skiff_k8s_core::status::ApiError;
use skiff_store::{Op, Precondition};

use super::{Operation, Request, encode, resource_list};
use crate::registry::strategy::ResourceInfo;
use crate::registry::{ListOptions, Registry};

/// Usage of one object, by quota resource name.
type Usage = BTreeMap<String, Quantity>;

/// Quota status writes to commit with the object (empty when no quota is concerned or on dry-run).
#[derive(Debug, Default)]
pub struct Charge {
    ops: Vec<Op>,
}

impl Charge {
    /// The store operations, each guarded by its quota's revision.
    pub fn ops(&self) -> Vec<Op> {
        self.ops.clone()
    }

    /// True when `key` (from a failed precondition) is one of the charged quotas: the charge is
    /// stale and must be computed again.
    pub fn covers(&self, key: &str) -> bool {
        self.ops.iter().any(|op| match op {
            Op::Put { key: k, .. } | Op::Delete { key: k, .. } => k == key,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// How many times a create retries its charge when a quota moved underneath it.
pub const MAX_RECHARGES: usize = 16;

/// Resources whose requests/limits every container must state once a quota covers them.
const COMPUTE: [&str; 6] = [
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

/// Core resources with a legacy object-count name (`pods` aside: it counts live pods only).
const LEGACY_COUNTS: [&str; 6] = [
    "services",
    "configmaps",
    "secrets",
    "persistentvolumeclaims",
    "replicationcontrollers",
    "resourcequotas",
];

fn one() -> Quantity {
    Quantity::from_value(1, Format::DecimalSi)
}

/// `quota.Add` on one entry: a zero takes the other's format, as Go's `Quantity.Add` does.
fn add_to(u: &mut Usage, k: &str, q: &Quantity) {
    match u.get_mut(k) {
        Some(t) if !t.is_zero() => t.add(q),
        Some(t) => *t = *q,
        None => {
            u.insert(k.to_string(), *q);
        }
    }
}

fn is_pod(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.plural == "pods"
}

/// `count/<resource>[.<group>]`.
fn count_name(info: &ResourceInfo) -> String {
    if info.group.is_empty() {
        format!("count/{}", info.plural)
    } else {
        format!("count/{}.{}", info.plural, info.group)
    }
}

/// `QuotaV1Pod`: terminal pods and pods past their deletion grace stop using compute quota.
fn pod_is_live(pod: &Value) -> bool {
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return false;
    }
    if let Some(ts) = pod
        .pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
    {
        return jiff::Timestamp::now() < ts;
    }
    true
}

/// Compute usage of a pod's requests and limits (`podComputeUsageHelper`).
fn pod_compute(spec: &Value) -> Usage {
    let mut u = Usage::new();
    u.insert("pods".into(), one());
    for (k, q) in super::limit_ranger::pod_total(spec, "requests") {
        match k.as_str() {
            "cpu" | "memory" | "ephemeral-storage" => {
                add_to(&mut u, &format!("requests.{k}"), &q);
                add_to(&mut u, &k, &q);
            }
            other if other.starts_with("hugepages-") => {
                add_to(&mut u, &format!("requests.{k}"), &q);
            }
            _ => {}
        }
    }
    for (k, q) in super::limit_ranger::pod_total(spec, "limits") {
        if matches!(k.as_str(), "cpu" | "memory" | "ephemeral-storage") {
            add_to(&mut u, &format!("limits.{k}"), &q);
        }
    }
    u
}

/// What one object uses of every quota resource it can be charged to (`Evaluator.Usage`).
pub fn usage(info: &ResourceInfo, obj: &Value) -> Usage {
    let mut u = Usage::new();
    u.insert(count_name(info), one());
    if !info.group.is_empty() {
        return u;
    }
    match info.plural.as_str() {
        "pods" if pod_is_live(obj) => {
            for (k, q) in pod_compute(obj.get("spec").unwrap_or(&Value::Null)) {
                add_to(&mut u, &k, &q);
            }
        }
        "pods" => {}
        "services" => {
            u.insert("services".into(), one());
            let t = obj
                .pointer("/spec/type")
                .and_then(Value::as_str)
                .unwrap_or("ClusterIP");
            let ports = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map_or(0, Vec::len) as i64;
            if t == "LoadBalancer" {
                u.insert("services.loadbalancers".into(), one());
            }
            let node_ports = t == "NodePort"
                || (t == "LoadBalancer"
                    && obj
                        .pointer("/spec/allocateLoadBalancerNodePorts")
                        .and_then(Value::as_bool)
                        != Some(false));
            u.insert(
                "services.nodeports".into(),
                Quantity::from_value(if node_ports { ports } else { 0 }, Format::DecimalSi),
            );
        }
        "persistentvolumeclaims" => {
            u.insert("persistentvolumeclaims".into(), one());
            if let Some((_, q)) = resource_list(obj.pointer("/spec/resources/requests"))
                .into_iter()
                .find(|(k, _)| k == "storage")
            {
                u.insert("requests.storage".into(), q);
                if let Some(class) = obj
                    .pointer("/spec/storageClassName")
                    .and_then(Value::as_str)
                {
                    u.insert(
                        format!("{class}.storageclass.storage.k8s.io/requests.storage"),
                        q,
                    );
                    u.insert(
                        format!("{class}.storageclass.storage.k8s.io/persistentvolumeclaims"),
                        one(),
                    );
                }
            }
        }
        p if LEGACY_COUNTS.contains(&p) => {
            u.insert(p.into(), one());
        }
        _ => {}
    }
    u
}

/// Does a quota with these `spec.scopes` cover `obj` (`Terminating`, `NotTerminating`,
/// `BestEffort`, `NotBestEffort`)? Scoped quotas cover pods only.
fn scopes_match(quota: &Value, info: &ResourceInfo, obj: &Value) -> bool {
    let scopes: Vec<&str> = quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if scopes.is_empty() {
        return true;
    }
    if !is_pod(info) {
        return false;
    }
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let best_effort = crate::kinds::core::pod::qos_class(spec) == "BestEffort";
    let terminating = spec.get("activeDeadlineSeconds").is_some();
    scopes.iter().all(|s| match *s {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => best_effort,
        "NotBestEffort" => !best_effort,
        _ => false,
    })
}

/// `failed quota: <name>: must specify limits.cpu for: a,b; requests.cpu for: a`.
fn constraints(spec: &Value, hard: &Usage) -> Option<String> {
    let required: Vec<&str> = COMPUTE
        .iter()
        .copied()
        .filter(|k| hard.contains_key(*k))
        .collect();
    if required.is_empty() {
        return None;
    }
    let mut missing: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for list in ["containers", "initContainers"] {
        for c in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let one = json!({"containers": [c]});
            let has = pod_compute(&one);
            for k in &required {
                if !has.contains_key(*k) {
                    let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
                    missing.entry(k).or_default().push(name.to_string());
                }
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    let parts: Vec<String> = missing
        .into_iter()
        .map(|(k, mut names)| {
            names.sort();
            names.dedup();
            format!("{k} for: {}", names.join(","))
        })
        .collect();
    Some(format!("must specify {}", parts.join("; ")))
}

fn quantities(v: Option<&Value>) -> Usage {
    resource_list(v).into_iter().collect()
}

/// `prettyPrint`: `k=v` sorted by name, joined with commas.
fn pretty(u: &Usage, keys: &[String]) -> String {
    keys.iter()
        .filter_map(|k| u.get(k).map(|q| format!("{k}={q}")))
        .collect::<Vec<_>>()
        .join(",")
}

async fn quotas(reg: &Registry, ns: &str) -> Result<Vec<Value>, ApiError> {
    let Some(kind) = reg.kind("", "resourcequotas") else {
        return Ok(Vec::new());
    };
    Ok(reg
        .list(&kind, Some(ns), &ListOptions::default())
        .await?
        .items)
}

/// The status writes of one write: `obj` is the object after it (None when it leaves the store);
/// the object before it is `req.old`. Refuses with upstream's messages when a quota would be
/// exceeded or a pod lacks requests/limits a quota needs.
pub async fn charge(
    reg: &Registry,
    req: &Request<'_>,
    obj: Option<&Value>,
) -> Result<Charge, ApiError> {
    let info = req.info;
    if !info.namespaced || !req.subresource.is_empty() && req.subresource != "status" {
        return Ok(Charge::default());
    }
    let before = match req.operation {
        Operation::Create => None,
        _ => req.old,
    };
    if before.is_none() && obj.is_none() {
        return Ok(Charge::default());
    }
    if let (Some(b), Some(a)) = (before, obj)
        && usage(info, b) == usage(info, a)
        && b.pointer("/spec/activeDeadlineSeconds").is_some()
            == a.pointer("/spec/activeDeadlineSeconds").is_some()
    {
        // Most updates (status writes, labels) change no usage and no scope: no quota read.
        return Ok(Charge::default());
    }
    let quotas = quotas(reg, req.ns()).await?;
    if quotas.is_empty() {
        return Ok(Charge::default());
    }
    let Some(rq_kind) = reg.kind("", "resourcequotas") else {
        return Ok(Charge::default());
    };
    let mut ops = Vec::new();
    for quota in quotas {
        let qname = quota
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if req.is("", "resourcequotas") && qname == req.name {
            // A quota never charges itself (its own key is the write's).
            continue;
        }
        let hard = match quota.pointer("/status/hard") {
            Some(h) if h.as_object().is_some_and(|m| !m.is_empty()) => quantities(Some(h)),
            _ => quantities(quota.pointer("/spec/hard")),
        };
        let after_usage = obj
            .filter(|o| scopes_match(&quota, info, o))
            .map(|o| usage(info, o))
            .unwrap_or_default();
        let before_usage = before
            .filter(|o| scopes_match(&quota, info, o))
            .map(|o| usage(info, o))
            .unwrap_or_default();
        // Per hard key: the change this write makes.
        let mut delta = Usage::new();
        for k in hard.keys() {
            let mut d = after_usage.get(k).copied().unwrap_or(Quantity::ZERO);
            if let Some(b) = before_usage.get(k) {
                d.sub(b);
            }
            if !d.is_zero() {
                delta.insert(k.clone(), d);
            }
        }
        if req.operation == Operation::Create
            && is_pod(info)
            && let Some(o) = obj
            && scopes_match(&quota, info, o)
            && let Some(msg) = constraints(o.get("spec").unwrap_or(&Value::Null), &hard)
        {
            return Err(req.forbidden(format!("failed quota: {qname}: {msg}")));
        }
        if delta.is_empty() {
            continue;
        }
        let used = quantities(quota.pointer("/status/used"));
        let mut new_used = used.clone();
        let mut exceeded = Vec::new();
        for (k, d) in &delta {
            let mut n = used.get(k).copied().unwrap_or(Quantity::ZERO);
            if n.is_zero() {
                n = *d;
            } else {
                n.add(d);
            }
            if n < Quantity::ZERO {
                n = Quantity::ZERO;
            }
            if *d > Quantity::ZERO && hard.get(k).is_some_and(|h| n > *h) {
                exceeded.push(k.clone());
            }
            new_used.insert(k.clone(), n);
        }
        if !exceeded.is_empty() {
            return Err(req.forbidden(format!(
                "exceeded quota: {qname}, requested: {}, used: {}, limited: {}",
                pretty(&delta, &exceeded),
                pretty(&used, &exceeded),
                pretty(&hard, &exceeded)
            )));
        }
        if req.dry_run {
            continue;
        }
        let rev: i64 = quota
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut updated = quota.clone();
        set_status(&mut updated, &hard, &new_used);
        ops.push(Op::Put {
            key: reg.key(rq_kind.info(), Some(req.ns()), &qname),
            value: encode(&updated)?,
            precondition: Precondition::ModRevision(rev),
        });
    }
    Ok(Charge { ops })
}

fn to_map(u: &Usage) -> Map<String, Value> {
    u.iter()
        .map(|(k, q)| (k.clone(), Value::String(q.to_string())))
        .collect()
}

fn set_status(quota: &mut Value, hard: &Usage, used: &Usage) {
    if let Some(o) = quota.as_object_mut() {
        let status = o.entry("status").or_insert_with(|| json!({}));
        if !status.is_object() {
            *status = json!({});
        }
        status["hard"] = Value::Object(to_map(hard));
        status["used"] = Value::Object(to_map(used));
    }
}

/// The kinds whose objects can be charged to `key`.
fn kinds_for(key: &str) -> Vec<(String, String)> {
    if let Some(res) = key.strip_prefix("count/") {
        let (plural, group) = res.split_once('.').unwrap_or((res, ""));
        return vec![(group.to_string(), plural.to_string())];
    }
    let core = |p: &str| vec![(String::new(), p.to_string())];
    match key {
        "requests.storage" => core("persistentvolumeclaims"),
        k if k.contains(".storageclass.storage.k8s.io/") => core("persistentvolumeclaims"),
        k if k == "services" || k.starts_with("services.") => core("services"),
        k if LEGACY_COUNTS.contains(&k) => core(k),
        _ => core("pods"),
    }
}

/// Recounts a ResourceQuota's `status` from what its namespace holds when it is created or its
/// main resource is updated (upstream's quota controller does this a moment later).
pub async fn mutate(reg: &Registry, req: &Request<'_>, obj: &mut Value) -> Result<(), ApiError> {
    if !req.is("", "resourcequotas") || req.operation == Operation::Delete {
        return Ok(());
    }
    let hard = quantities(obj.pointer("/spec/hard"));
    let mut used: Usage = hard.keys().map(|k| (k.clone(), Quantity::ZERO)).collect();
    let mut kinds: Vec<(String, String)> = hard.keys().flat_map(|k| kinds_for(k)).collect();
    kinds.sort();
    kinds.dedup();
    for (group, plural) in kinds {
        let Some(kind) = reg.kind(&group, &plural) else {
            continue;
        };
        let items = reg
            .list(&kind, Some(req.ns()), &ListOptions::default())
            .await?
            .items;
        for item in items {
            if !scopes_match(obj, kind.info(), &item) {
                continue;
            }
            for (k, q) in usage(kind.info(), &item) {
                if hard.contains_key(&k) {
                    add_to(&mut used, &k, &q);
                }
            }
        }
    }
    set_status(obj, &hard, &used);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pods() -> ResourceInfo {
        crate::kinds::builtin()
            .into_iter()
            .find(|k| k.info().plural == "pods")
            .unwrap()
            .info()
            .clone()
    }

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    #[test]
    fn pod_usage_counts_requests_limits_and_the_pod() {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}, "limits": {"memory": "200Mi"}}},
            {"name": "b", "resources": {"requests": {"cpu": "200m"}}}]}, "status": {"phase": "Running"}});
        let u = usage(&pods(), &pod);
        assert_eq!(u["pods"], one());
        assert_eq!(u["count/pods"], one());
        assert_eq!(u["requests.cpu"], q("300m"));
        assert_eq!(u["cpu"], q("300m"));
        assert_eq!(u["requests.memory"], q("100Mi"));
        assert_eq!(u["limits.memory"].to_string(), "200Mi");
        assert!(!u.contains_key("limits.cpu"));
        let done = json!({"spec": pod["spec"], "status": {"phase": "Succeeded"}});
        let u = usage(&pods(), &done);
        assert_eq!(u.len(), 1, "{u:?}");
        assert!(u.contains_key("count/pods"));
    }

    #[test]
    fn must_specify_lists_containers_per_resource() {
        let hard: Usage = [
            ("limits.cpu".to_string(), q("2")),
            ("requests.cpu".into(), q("1")),
            ("pods".into(), q("4")),
        ]
        .into_iter()
        .collect();
        let spec = json!({"containers": [{"name": "nginx"}, {"name": "side", "resources": {"requests": {"cpu": "1m"}}}]});
        assert_eq!(
            constraints(&spec, &hard).unwrap(),
            "must specify limits.cpu for: nginx,side; requests.cpu for: nginx"
        );
        let ok = json!({"containers": [{"name": "x", "resources": {"requests": {"cpu": "1m"}, "limits": {"cpu": "1m"}}}]});
        assert_eq!(constraints(&ok, &hard), None);
    }

    #[test]
    fn count_names_and_kinds_agree() {
        let svc = crate::kinds::builtin()
            .into_iter()
            .find(|k| k.info().plural == "deployments")
            .unwrap()
            .info()
            .clone();
        assert_eq!(count_name(&svc), "count/deployments.apps");
        assert_eq!(
            kinds_for("count/deployments.apps"),
            vec![("apps".to_string(), "deployments".to_string())]
        );
        assert_eq!(
            kinds_for("limits.memory"),
            vec![(String::new(), "pods".into())]
        );
        assert_eq!(
            kinds_for("services.nodeports"),
            vec![(String::new(), "services".into())]
        );
    }

    #[test]
    fn adding_to_zero_takes_the_other_format() {
        let mut u = Usage::new();
        u.insert("m".into(), Quantity::ZERO);
        add_to(&mut u, "m", &q("100Mi"));
        add_to(&mut u, "m", &q("100Mi"));
        assert_eq!(u["m"].to_string(), "200Mi");
    }
}
