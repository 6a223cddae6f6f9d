//! The NetworkPolicy golden table (`network_policy_cases.yaml`): each case's objects, query and
//! expected verdict with its exact reasons, run through the pure evaluator.

use serde_json::Value;
use skiff_eks::network_policy::{Inventory, PeerRef, Protocol, Query, evaluate};

fn inventory(objects: impl Iterator<Item = Value>) -> Inventory {
    let mut inv = Inventory::default();
    for o in objects {
        match o["kind"].as_str() {
            Some("Pod") => inv.pods.push(o),
            Some("Namespace") => inv.namespaces.push(o),
            Some("NetworkPolicy") => inv.network_policies.push(o),
            Some("Service") => inv.services.push(o),
            other => panic!("unexpected kind {other:?} in the golden table"),
        }
    }
    inv
}

#[test]
fn golden_cases() {
    let table: Value = serde_saphyr::from_str(include_str!("network_policy_cases.yaml")).unwrap();
    let base = table["base"].as_array().unwrap();
    let cases = table["cases"].as_array().unwrap();
    assert!(cases.len() >= 30, "the table lost cases");
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let own = case["objects"].as_array().cloned().unwrap_or_default();
        let inv = inventory(base.iter().cloned().chain(own));
        let q = &case["query"];
        let query = Query {
            from: PeerRef::parse(q["from"].as_str().unwrap()).unwrap(),
            to: PeerRef::parse(q["to"].as_str().unwrap()).unwrap(),
            port: u16::try_from(q["port"].as_u64().unwrap()).unwrap(),
            protocol: Protocol::parse(q["protocol"].as_str().unwrap_or("TCP")).unwrap(),
        };
        let verdict = match evaluate(&inv, &query) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{name}: error {e}"));
                continue;
            }
        };
        let want = &case["expect"];
        let mut check = |what: &str, got: Value, expected: &Value| {
            if !expected.is_null() && got != *expected {
                failures.push(format!("{name}: {what} = {got}, expected {expected}"));
            }
        };
        check("allowed", Value::Bool(verdict.allowed), &want["allowed"]);
        check("paths", verdict.paths.len().into(), &want["paths"]);
        check("summary", verdict.summary.clone().into(), &want["summary"]);
        if let Some(p) = verdict.paths.first() {
            check("egress", p.egress.reason.clone().into(), &want["egress"]);
            check("ingress", p.ingress.reason.clone().into(), &want["ingress"]);
            check("port", p.port.into(), &want["port"]);
            check(
                "destination",
                p.destination.name.clone().into(),
                &want["destination"],
            );
        } else if want["paths"] != 0 {
            failures.push(format!("{name}: no path judged ({})", verdict.summary));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The verdict JSON is the contract `skiff netcheck` prints from: pin its shape.
#[test]
fn verdict_json_names_the_deciding_rules() {
    let table: Value = serde_saphyr::from_str(include_str!("network_policy_cases.yaml")).unwrap();
    let mut objects: Vec<Value> = table["base"].as_array().unwrap().clone();
    objects.push(serde_json::json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"namespace": "default", "name": "web"},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"from": [{"podSelector": {}}]}]}}));
    let inv = inventory(objects.into_iter());
    let v = evaluate(
        &inv,
        &Query {
            from: PeerRef::parse("client").unwrap(),
            to: PeerRef::parse("svc/default/web").unwrap(),
            port: 80,
            protocol: Protocol::Tcp,
        },
    )
    .unwrap();
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["allowed"], true);
    assert_eq!(json["from"], "default/client");
    assert_eq!(json["to"], "svc/default/web");
    assert_eq!(json["protocol"], "TCP");
    let path = &json["paths"][0];
    assert_eq!(path["destination"]["name"], "default/web");
    assert_eq!(path["destination"]["ip"], "10.0.1.20");
    assert_eq!(path["port"], 8080);
    assert_eq!(path["ingress"]["isolated"], true);
    assert_eq!(
        path["ingress"]["selectedBy"],
        serde_json::json!(["default/web"])
    );
    assert_eq!(
        path["ingress"]["allowedBy"],
        serde_json::json!([{"policy": "default/web", "rule": 0}])
    );
    assert_eq!(path["egress"]["isolated"], false);
    assert!(path.get("securityGroups").is_none());
}
