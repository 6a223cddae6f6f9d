//! `LimitRanger`: the namespace's LimitRanges default a new Pod's container requests and limits
//! (`default`, `defaultRequest`) and bound them (`min`, `max`, `maxLimitRequestRatio`, per
//! Container and per Pod), with upstream's messages (`maximum memory usage per Container is
//! 429496729600m, but limit is 1Gi`). As upstream, only Pod creates are touched: containers cannot
//! change afterwards, and checking updates would only block status writes.

use serde_json::{Map, Value, json};
use skiff_k8s_core::quantity::Quantity;
use skiff_k8s_core::status::ApiError;

use super::{Operation, Request, aggregate, containers_mut, resource_list};
use crate::registry::{ListOptions, Registry};

const ANNOTATION: &str = "kubernetes.io/limit-ranger";

fn applies(req: &Request<'_>) -> bool {
    req.is("", "pods") && req.operation == Operation::Create
}

/// The namespace's LimitRanges, read per request: a cache would have to follow their writes, and a
/// namespace holds few.
async fn limit_ranges(reg: &Registry, ns: &str) -> Result<Vec<Value>, ApiError> {
    let Some(kind) = reg.kind("", "limitranges") else {
        return Ok(Vec::new());
    };
    Ok(reg
        .list(&kind, Some(ns), &ListOptions::default())
        .await?
        .items)
}

/// `spec.limits[*]` items of a type, with `SetDefaults_LimitRangeItem` applied for containers
/// (default ← max, defaultRequest ← default, defaultRequest ← min) so objects stored without
/// those defaults behave as upstream's.
fn items<'a>(lr: &'a Value, type_: &'a str) -> impl Iterator<Item = Map<String, Value>> + 'a {
    lr.pointer("/spec/limits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |l| l.get("type").and_then(Value::as_str) == Some(type_))
        .filter_map(|l| l.as_object().cloned())
        .map(move |mut l| {
            if type_ == "Container" {
                for (from, to) in [
                    ("max", "default"),
                    ("default", "defaultRequest"),
                    ("min", "defaultRequest"),
                ] {
                    let src = l.get(from).and_then(Value::as_object).cloned();
                    if let Some(m) = l.entry(to).or_insert_with(|| json!({})).as_object_mut() {
                        for (k, v) in src.into_iter().flatten() {
                            m.entry(k).or_insert(v);
                        }
                    }
                }
            }
            l
        })
}

/// Defaults for containers without requests/limits, and the `kubernetes.io/limit-ranger`
/// annotation that says what was set.
pub async fn mutate(reg: &Registry, req: &Request<'_>, obj: &mut Value) -> Result<(), ApiError> {
    if !applies(req) {
        return Ok(());
    }
    for lr in limit_ranges(reg, req.ns()).await? {
        let mut defaults_req = Map::new();
        let mut defaults_lim = Map::new();
        for item in items(&lr, "Container") {
            for (k, v) in item
                .get("defaultRequest")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                defaults_req.insert(k.clone(), v.clone());
            }
            for (k, v) in item
                .get("default")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                defaults_lim.insert(k.clone(), v.clone());
            }
        }
        if defaults_req.is_empty() && defaults_lim.is_empty() {
            continue;
        }
        let mut notes = Vec::new();
        let Some(spec) = obj.get_mut("spec") else {
            continue;
        };
        for (word, c) in containers_mut(spec) {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let Some(co) = c.as_object_mut() else {
                continue;
            };
            let res = co
                .entry("resources")
                .or_insert_with(|| json!({}))
                .as_object_mut();
            let Some(res) = res else { continue };
            let mut set = |field: &str, defaults: &Map<String, Value>| -> Vec<String> {
                let mut added = Vec::new();
                if defaults.is_empty() {
                    return added;
                }
                if let Some(list) = res
                    .entry(field)
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                {
                    for (k, v) in defaults {
                        if !list.contains_key(k) {
                            list.insert(k.clone(), v.clone());
                            added.push(k.clone());
                        }
                    }
                }
                added.sort();
                added
            };
            let lims = set("limits", &defaults_lim);
            let reqs = set("requests", &defaults_req);
            if !reqs.is_empty() {
                notes.push(format!("{} request for {word} {name}", reqs.join(", ")));
            }
            if !lims.is_empty() {
                notes.push(format!("{} limit for {word} {name}", lims.join(", ")));
            }
        }
        if !notes.is_empty() {
            let meta = obj
                .as_object_mut()
                .map(|o| o.entry("metadata").or_insert_with(|| json!({})));
            if let Some(m) = meta.and_then(Value::as_object_mut) {
                let ann = m.entry("annotations").or_insert_with(|| json!({}));
                if let Some(a) = ann.as_object_mut() {
                    a.insert(
                        ANNOTATION.into(),
                        format!("LimitRanger plugin set: {}", notes.join("; ")).into(),
                    );
                }
            }
        }
    }
    Ok(())
}

fn get<'a>(list: &'a [(String, Quantity)], k: &str) -> Option<&'a Quantity> {
    list.iter().find(|(n, _)| n == k).map(|(_, q)| q)
}

/// `minConstraint`, `maxConstraint` and `limitRequestRatioConstraint` of one item against one
/// container's (or the pod's) requests and limits.
fn check_item(
    item: &Map<String, Value>,
    limit_type: &str,
    requests: &[(String, Quantity)],
    limits: &[(String, Quantity)],
    errs: &mut Vec<String>,
) {
    for (k, enforced) in resource_list(item.get("min")) {
        match (get(requests, &k), get(limits, &k)) {
            (None, _) => errs.push(format!(
                "minimum {k} usage per {limit_type} is {enforced}.  No request is specified"
            )),
            (Some(r), _) if *r < enforced => errs.push(format!(
                "minimum {k} usage per {limit_type} is {enforced}, but request is {r}"
            )),
            (_, Some(l)) if *l < enforced => errs.push(format!(
                "minimum {k} usage per {limit_type} is {enforced}, but limit is {l}"
            )),
            _ => {}
        }
    }
    for (k, enforced) in resource_list(item.get("max")) {
        match (get(requests, &k), get(limits, &k)) {
            (_, None) => errs.push(format!(
                "maximum {k} usage per {limit_type} is {enforced}.  No limit is specified"
            )),
            (_, Some(l)) if *l > enforced => errs.push(format!(
                "maximum {k} usage per {limit_type} is {enforced}, but limit is {l}"
            )),
            (Some(r), _) if *r > enforced => errs.push(format!(
                "maximum {k} usage per {limit_type} is {enforced}, but request is {r}"
            )),
            _ => {}
        }
    }
    for (k, enforced) in resource_list(item.get("maxLimitRequestRatio")) {
        let r = get(requests, &k).filter(|q| !q.is_zero());
        let l = get(limits, &k).filter(|q| !q.is_zero());
        match (r, l) {
            (None, _) => errs.push(format!(
                "{k} max limit to request ratio per {limit_type} is {enforced}, but no request is specified or request is 0"
            )),
            (_, None) => errs.push(format!(
                "{k} max limit to request ratio per {limit_type} is {enforced}, but no limit is specified or limit is 0"
            )),
            (Some(r), Some(l)) => {
                let ratio = l.nanos() as f64 / r.nanos() as f64;
                if ratio > enforced.nanos() as f64 / 1e9 {
                    errs.push(format!(
                        "{k} max limit to request ratio per {limit_type} is {enforced}, but provided ratio is {ratio:.6}"
                    ));
                }
            }
        }
    }
}

/// `max(sum(containers), max(initContainers))` per resource (`resourcehelper.PodRequests`).
pub(crate) fn pod_total(spec: &Value, field: &str) -> Vec<(String, Quantity)> {
    let mut sum: Vec<(String, Quantity)> = Vec::new();
    for c in spec
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for (k, q) in resource_list(c.pointer(&format!("/resources/{field}"))) {
            match sum.iter_mut().find(|(n, _)| *n == k) {
                Some((_, t)) => t.add(&q),
                None => sum.push((k, q)),
            }
        }
    }
    for c in spec
        .get("initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for (k, q) in resource_list(c.pointer(&format!("/resources/{field}"))) {
            match sum.iter_mut().find(|(n, _)| *n == k) {
                Some((_, t)) if *t < q => *t = q,
                Some(_) => {}
                None => sum.push((k, q)),
            }
        }
    }
    sum
}

/// min/max/ratio per Container and per Pod; a refusal is 403 with every violation.
pub async fn validate(reg: &Registry, req: &Request<'_>, obj: &Value) -> Result<(), ApiError> {
    if !applies(req) {
        return Ok(());
    }
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let mut errs = Vec::new();
    for lr in limit_ranges(reg, req.ns()).await? {
        for item in items(&lr, "Container") {
            for list in ["containers", "initContainers"] {
                for c in spec
                    .get(list)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let r = resource_list(c.pointer("/resources/requests"));
                    let l = resource_list(c.pointer("/resources/limits"));
                    check_item(&item, "Container", &r, &l, &mut errs);
                }
            }
        }
        for item in items(&lr, "Pod") {
            let r = pod_total(&spec, "requests");
            let l = pod_total(&spec, "limits");
            check_item(&item, "Pod", &r, &l, &mut errs);
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(req.forbidden(aggregate(&errs)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    #[test]
    fn seed_limit_range_messages() {
        let lr = json!({"spec": {"limits": [{"type": "Container", "min": {"memory": "0.1Gi"},
            "max": {"memory": "0.4Gi"}, "maxLimitRequestRatio": {"memory": 3},
            "defaultRequest": {"memory": "0.1Gi"}, "default": {"memory": "0.2Gi"}}]}});
        let item = items(&lr, "Container").next().unwrap();
        let mut errs = Vec::new();
        check_item(
            &item,
            "Container",
            &[("memory".into(), q("1Gi"))],
            &[("memory".into(), q("1Gi"))],
            &mut errs,
        );
        assert_eq!(
            errs,
            vec!["maximum memory usage per Container is 429496729600m, but limit is 1Gi"]
        );
        errs.clear();
        check_item(
            &item,
            "Container",
            &[("memory".into(), q("120Mi"))],
            &[("memory".into(), q("400Mi"))],
            &mut errs,
        );
        assert_eq!(
            errs,
            vec![
                "memory max limit to request ratio per Container is 3, but provided ratio is 3.333333"
            ]
        );
        errs.clear();
        check_item(&item, "Container", &[], &[], &mut errs);
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].ends_with("No request is specified"));
    }

    #[test]
    fn item_defaults_follow_set_defaults_limit_range_item() {
        let lr = json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"}}]}});
        let item = items(&lr, "Container").next().unwrap();
        assert_eq!(item["default"]["cpu"], "2");
        assert_eq!(item["defaultRequest"]["cpu"], "2");
        assert_eq!(item["defaultRequest"]["memory"], "1Mi");
    }

    #[test]
    fn pod_totals_take_the_larger_of_sum_and_init() {
        let spec = json!({"containers": [{"resources": {"requests": {"cpu": "100m"}}}, {"resources": {"requests": {"cpu": "200m"}}}],
            "initContainers": [{"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]});
        let t = pod_total(&spec, "requests");
        assert_eq!(get(&t, "cpu"), Some(&q("1")));
        assert_eq!(get(&t, "memory"), Some(&q("1Gi")));
    }
}
