//! Crate contract: the flows the API server and controllers run through skiff-k8s-core, end to end
//! over its public API only.

use serde_json::{Value, json};
use skiff_k8s_core::apply::{ManagerInfo, apply, managed_fields, track_update};
use skiff_k8s_core::patch::{PatchType, apply_patch};
use skiff_k8s_core::patch_meta::schema_for;
use skiff_k8s_core::quantity::Quantity;
use skiff_k8s_core::selector::{FieldSelector, Selector};
use skiff_k8s_core::status::{ApiError, FieldError};
use skiff_k8s_core::validation::{NameRule, validate_object_meta};

fn pod(name: &str, node: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx",
            "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}}]},
        "status": {"phase": "Running"}
    })
}

/// `kubectl get pods -l app=web,tier!=db --field-selector spec.nodeName=n1` over a list.
#[test]
fn list_filtering_with_label_and_field_selectors() {
    let pods = [
        pod("a", "n1", json!({"app": "web"})),
        pod("b", "n2", json!({"app": "web"})),
        pod("c", "n1", json!({"app": "web", "tier": "db"})),
        pod("d", "n1", json!({"app": "api"})),
    ];
    let ls = Selector::parse("app=web,tier!=db").unwrap();
    let fs = FieldSelector::parse("spec.nodeName=n1").unwrap();
    let names: Vec<&str> = pods
        .iter()
        .filter(|p| ls.matches_object(p))
        .filter(|p| {
            fs.matches(|f| match f {
                "spec.nodeName" => p["spec"]["nodeName"].as_str(),
                "metadata.name" => p["metadata"]["name"].as_str(),
                _ => None,
            })
        })
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a"]);
}

/// A Deployment's `spec.selector` must select its template: the controller converts the
/// `LabelSelector` and checks the template labels.
#[test]
fn label_selector_object_selects_template() {
    let dep = json!({"spec": {
        "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "track", "operator": "NotIn", "values": ["canary"]}]},
        "template": {"metadata": {"labels": {"app": "web", "track": "stable"}}}
    }});
    let sel = Selector::from_label_selector(&dep["spec"]["selector"]).unwrap();
    assert!(sel.matches(&dep["spec"]["template"]["metadata"]["labels"]));
    assert!(!sel.matches(&json!({"app": "web", "track": "canary"})));
}

/// A create that fails validation is answered with a 422 Status carrying field causes.
#[test]
fn validation_errors_become_a_422_status() {
    let meta = json!({"name": "Bad_Name", "namespace": "default", "labels": {"ok": "yes"}});
    let mut causes = validate_object_meta(&meta, true, NameRule::Dns1123Subdomain);
    causes.push(FieldError::invalid(
        "spec.replicas",
        json!(-1),
        "must be greater than or equal to 0",
    ));
    let status = ApiError::invalid("apps", "Deployment", "Bad_Name", causes).to_status();
    assert_eq!(status["code"], 422);
    assert_eq!(status["details"]["causes"].as_array().unwrap().len(), 2);
    assert_eq!(status["details"]["causes"][1]["field"], "spec.replicas");
    let msg = status["message"].as_str().unwrap();
    assert!(msg.starts_with("Deployment.apps \"Bad_Name\" is invalid: [metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{msg}");
    assert!(
        msg.ends_with(", spec.replicas: Invalid value: -1: must be greater than or equal to 0]"),
        "{msg}"
    );
}

/// `kubectl patch` of each type on a Pod, then update tracking in managedFields.
#[test]
fn patch_types_and_update_tracking() {
    let live = pod("a", "n1", json!({"app": "web"}));
    let strategic = apply_patch(
        &live,
        PatchType::Strategic,
        &json!({"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}),
        "",
        "Pod",
    )
    .unwrap();
    assert_eq!(strategic["spec"]["containers"][0]["image"], "nginx:2");
    assert_eq!(
        strategic["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "250m"
    );
    let merge = apply_patch(
        &live,
        PatchType::Merge,
        &json!({"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}),
        "",
        "Pod",
    )
    .unwrap();
    assert!(
        merge["spec"]["containers"][0].get("resources").is_none(),
        "merge patch replaces lists"
    );
    let jp = apply_patch(
        &live,
        PatchType::Json,
        &json!([{"op": "replace", "path": "/metadata/labels/app", "value": "api"}]),
        "",
        "Pod",
    )
    .unwrap();
    assert_eq!(jp["metadata"]["labels"]["app"], "api");

    let who = ManagerInfo {
        manager: "kubectl-patch",
        api_version: "v1",
        subresource: "",
        reset_fields: &["status"],
        now: "2026-11-23T12:00:00Z".parse().unwrap(),
    };
    let tracked = track_update(Some(&live), strategic, schema_for("", "Pod"), &who).unwrap();
    let mf = managed_fields(&tracked).unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager, "kubectl-patch");
    assert_eq!(
        mf[0].fields.to_fields_v1(),
        json!({"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {"f:image": {}}}}})
    );
}

/// `kubectl apply --server-side` twice by two managers, the second conflicting.
#[test]
fn server_side_apply_conflict_then_force() {
    let cfg = |image: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": image}]}})
    };
    let who = |m: &'static str| ManagerInfo {
        manager: m,
        api_version: "v1",
        subresource: "",
        reset_fields: &["status"],
        now: "2026-11-23T12:00:00Z".parse().unwrap(),
    };
    let s = schema_for("", "Pod");
    let first = apply(None, &cfg("nginx:1"), s, &who("kubectl"), false).unwrap();
    let err = apply(Some(&first), &cfg("nginx:2"), s, &who("helm"), false).unwrap_err();
    assert_eq!(
        err.message(),
        "Apply failed with 1 conflict: conflict with \"kubectl\": .spec.containers[name=\"app\"].image"
    );
    let forced = apply(Some(&first), &cfg("nginx:2"), s, &who("helm"), true).unwrap();
    assert_eq!(forced["spec"]["containers"][0]["image"], "nginx:2");
    let managers: Vec<String> = managed_fields(&forced)
        .unwrap()
        .into_iter()
        .map(|e| e.manager)
        .collect();
    assert_eq!(managers, ["helm", "kubectl"]);
}

/// Scheduler arithmetic: sum pod requests and compare to allocatable.
#[test]
fn quantities_sum_requests() {
    let mut cpu = Quantity::ZERO;
    for r in ["250m", "0.5", "1"] {
        cpu.add(&r.parse().unwrap());
    }
    assert_eq!(cpu.to_string(), "1750m");
    assert!(cpu < "2".parse().unwrap());
    let mem: Quantity = "64Mi".parse().unwrap();
    assert_eq!(mem.value(), 64 * 1024 * 1024);
}
