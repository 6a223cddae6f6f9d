//! Which nodes a DaemonSet's Pod belongs on (`NodeShouldRunDaemonPod`): the template's
//! `nodeName`, `nodeSelector` and required node affinity must match the node, and every
//! NoSchedule/NoExecute taint must be tolerated, counting the tolerations the controller adds to
//! every daemon Pod (`AddOrUpdateDaemonPodTolerations`). A Pod already running on a node whose
//! untolerated taints are only NoSchedule may stay; a NoExecute one evicts it.

use serde_json::{Value, json};

use crate::ownership::str_at;

/// Tolerations every daemon Pod gets, so node conditions never evict or block it.
pub fn daemon_tolerations(host_network: bool) -> Vec<Value> {
    let mut t: Vec<Value> = [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ]
    .iter()
    .map(|(k, e)| json!({"key": k, "operator": "Exists", "effect": e}))
    .collect();
    // Host-network daemons (CNI plugins) are what makes the network available.
    if host_network {
        t.push(
            json!({"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                      "effect": "NoSchedule"}),
        );
    }
    t
}

/// The template's tolerations plus the daemon ones it lacks.
pub fn with_daemon_tolerations(spec: &Value) -> Vec<Value> {
    let mut t: Vec<Value> = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    for d in daemon_tolerations(host_network) {
        let present = t.iter().any(|x| {
            str_at(x, "/key") == str_at(&d, "/key") && str_at(x, "/effect") == str_at(&d, "/effect")
        });
        if !present {
            t.push(d);
        }
    }
    t
}

/// The verdict for one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// A daemon Pod should be created here.
    pub should_run: bool,
    /// An existing daemon Pod may stay here.
    pub should_continue: bool,
}

fn tolerates(t: &Value, taint: &Value) -> bool {
    let effect = str_at(t, "/effect");
    if !effect.is_empty() && effect != str_at(taint, "/effect") {
        return false;
    }
    let key = str_at(t, "/key");
    match str_at(t, "/operator") {
        "Exists" => key.is_empty() || key == str_at(taint, "/key"),
        "" | "Equal" => {
            key == str_at(taint, "/key") && str_at(t, "/value") == str_at(taint, "/value")
        }
        _ => false,
    }
}

fn requirement_matches(req: &Value, get: &dyn Fn(&str) -> Option<String>) -> bool {
    let key = str_at(req, "/key");
    let values: Vec<&str> = req
        .get("values")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let v = get(key);
    match str_at(req, "/operator") {
        "In" => v.is_some_and(|v| values.contains(&v.as_str())),
        "NotIn" => v.is_none_or(|v| !values.contains(&v.as_str())),
        "Exists" => v.is_some(),
        "DoesNotExist" => v.is_none(),
        op @ ("Gt" | "Lt") => {
            let (Some(v), Some(bound)) = (
                v.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if op == "Gt" { v > bound } else { v < bound }
        }
        _ => false,
    }
}

/// Required node affinity (terms ORed, requirements within a term ANDed; an empty term matches
/// nothing, as upstream).
pub fn affinity_matches(spec: &Value, node: &Value) -> bool {
    let Some(terms) = spec
        .pointer("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
        .and_then(Value::as_array)
    else {
        return true;
    };
    let label = |k: &str| {
        node.pointer("/metadata/labels")
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
            .map(String::from)
    };
    let field =
        |k: &str| (k == "metadata.name").then(|| str_at(node, "/metadata/name").to_string());
    terms.iter().any(|t| {
        let exprs = t.get("matchExpressions").and_then(Value::as_array);
        let fields = t.get("matchFields").and_then(Value::as_array);
        if exprs.is_none_or(Vec::is_empty) && fields.is_none_or(Vec::is_empty) {
            return false;
        }
        exprs
            .into_iter()
            .flatten()
            .all(|r| requirement_matches(r, &label))
            && fields
                .into_iter()
                .flatten()
                .all(|r| requirement_matches(r, &field))
    })
}

/// Whether the DaemonSet's template belongs on `node`.
pub fn evaluate(template_spec: &Value, node: &Value) -> Verdict {
    let no = Verdict {
        should_run: false,
        should_continue: false,
    };
    let node_name = str_at(node, "/metadata/name");
    let pinned = str_at(template_spec, "/nodeName");
    if !pinned.is_empty() && pinned != node_name {
        return no;
    }
    if let Some(sel) = template_spec.get("nodeSelector").and_then(Value::as_object) {
        let ok = sel
            .iter()
            .all(|(k, v)| node.pointer("/metadata/labels").and_then(|l| l.get(k)) == Some(v));
        if !ok {
            return no;
        }
    }
    if !affinity_matches(template_spec, node) {
        return no;
    }
    let tolerations = with_daemon_tolerations(template_spec);
    let mut v = Verdict {
        should_run: true,
        should_continue: true,
    };
    for taint in node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let effect = str_at(taint, "/effect");
        if effect != "NoSchedule" && effect != "NoExecute" {
            continue;
        }
        if tolerations.iter().any(|t| tolerates(t, taint)) {
            continue;
        }
        v.should_run = false;
        if effect == "NoExecute" {
            v.should_continue = false;
        }
    }
    v
}

/// Pins a Pod spec to `node` the way upstream does since 1.12: the required node affinity's
/// terms become one `metadata.name In [node]` field term, and the scheduler binds it.
pub fn pin_to_node(spec: &mut Value, node: &str) {
    let term =
        json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]});
    if !spec["affinity"].is_object() {
        spec["affinity"] = json!({});
    }
    if !spec["affinity"]["nodeAffinity"].is_object() {
        spec["affinity"]["nodeAffinity"] = json!({});
    }
    spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] =
        json!({"nodeSelectorTerms": [term]});
}

/// The node a daemon Pod is bound or pinned to (`GetTargetNodeName`).
pub fn target_node(pod: &Value) -> Option<String> {
    let bound = str_at(pod, "/spec/nodeName");
    if !bound.is_empty() {
        return Some(bound.to_string());
    }
    let terms = pod
        .pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")?
        .as_array()?;
    terms.iter().find_map(|t| {
        t.get("matchFields")?.as_array()?.iter().find_map(|f| {
            (str_at(f, "/key") == "metadata.name" && str_at(f, "/operator") == "In")
                .then(|| f.pointer("/values/0")?.as_str().map(String::from))
                .flatten()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(labels: Value, taints: Value) -> Value {
        json!({"metadata": {"name": "n1", "labels": labels}, "spec": {"taints": taints}})
    }

    #[test]
    fn selectors_affinity_and_taints_decide() {
        let any = json!({});
        assert!(evaluate(&any, &node(json!({}), json!([]))).should_run);
        let sel = json!({"nodeSelector": {"disk": "ssd"}});
        assert!(!evaluate(&sel, &node(json!({"disk": "hdd"}), json!([]))).should_run);
        assert!(evaluate(&sel, &node(json!({"disk": "ssd"}), json!([]))).should_run);
        let aff = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]},
                                   {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}});
        assert!(
            evaluate(&aff, &node(json!({"zone": "a"}), json!([]))).should_run,
            "second term"
        );
        let gt = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [{"key": "cpus", "operator": "Gt", "values": ["4"]}]}]}}}});
        assert!(!evaluate(&gt, &node(json!({"cpus": "2"}), json!([]))).should_run);
        // Condition taints are tolerated by every daemon; a user NoSchedule taint blocks new
        // pods but keeps running ones; NoExecute evicts.
        let cond = json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
                          {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]);
        assert!(evaluate(&any, &node(json!({}), cond)).should_run);
        let ns = json!([{"key": "gpu", "value": "true", "effect": "NoSchedule"}]);
        let v = evaluate(&any, &node(json!({}), ns.clone()));
        assert_eq!((v.should_run, v.should_continue), (false, true));
        let tol = json!({"tolerations": [{"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]});
        assert!(evaluate(&tol, &node(json!({}), ns)).should_run);
        let ne = json!([{"key": "dedicated", "effect": "NoExecute"}]);
        assert!(!evaluate(&any, &node(json!({}), ne)).should_continue);
        assert!(!evaluate(&any, &node(json!({}), json!([{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]))).should_run);
        assert!(evaluate(&json!({"hostNetwork": true}), &node(json!({}), json!([{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]))).should_run);
    }

    #[test]
    fn pins_with_a_name_field_term() {
        let mut spec = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}});
        pin_to_node(&mut spec, "n7");
        let terms = &spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"];
        assert_eq!(
            terms,
            &json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n7"]}]}])
        );
        assert_eq!(target_node(&json!({"spec": spec})).as_deref(), Some("n7"));
        assert_eq!(
            target_node(&json!({"spec": {"nodeName": "n2"}})).as_deref(),
            Some("n2")
        );
    }
}
