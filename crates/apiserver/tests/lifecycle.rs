//! Garbage collection (background, foreground, orphan), namespace deletion and Service IP /
//! NodePort allocation, end to end over HTTP.

mod support;

use bytes::Bytes;
use serde_json::{Value, json};
use support::{TestServer, eventually, server};

const CM: &str = "/api/v1/namespaces/default/configmaps";

async fn owner_and_dependent(s: &TestServer, owner: &str, dep: &str, block: bool) -> String {
    let r = s.post(CM, &json!({"metadata": {"name": owner}})).await;
    let uid = r.body["metadata"]["uid"].as_str().unwrap().to_string();
    let d = json!({"metadata": {"name": dep, "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
        "name": owner, "uid": uid, "blockOwnerDeletion": block}]}});
    let r = s.post(CM, &d).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    uid
}

async fn status_of(s: &TestServer, path: &str) -> u16 {
    s.get(path).await.status.as_u16()
}

#[tokio::test]
async fn background_deletion_collects_dependents() {
    let s = server().await;
    owner_and_dependent(&s, "owner", "dep", false).await;
    assert_eq!(s.delete(&format!("{CM}/owner")).await.status.as_u16(), 200);
    eventually(|| async { status_of(&s, &format!("{CM}/dep")).await == 404 }).await;
    s.api.shutdown().await;
}

#[tokio::test]
async fn foreground_deletion_waits_for_blocking_dependents() {
    let s = server().await;
    owner_and_dependent(&s, "owner", "dep", true).await;
    let body = Bytes::from(json!({"propagationPolicy": "Foreground"}).to_string());
    let r = s
        .req(
            "DELETE",
            &format!("{CM}/owner"),
            Some("application/json"),
            Some(body),
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(
        r.body["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    assert!(r.body["metadata"]["deletionTimestamp"].is_string());
    eventually(|| async { status_of(&s, &format!("{CM}/dep")).await == 404 }).await;
    eventually(|| async { status_of(&s, &format!("{CM}/owner")).await == 404 }).await;
    s.api.shutdown().await;
}

#[tokio::test]
async fn orphan_deletion_keeps_dependents_without_the_reference() {
    let s = server().await;
    owner_and_dependent(&s, "owner", "dep", true).await;
    let r = s
        .delete(&format!("{CM}/owner?propagationPolicy=Orphan"))
        .await;
    assert_eq!(r.body["metadata"]["finalizers"], json!(["orphan"]));
    eventually(|| async { status_of(&s, &format!("{CM}/owner")).await == 404 }).await;
    let dep = s.get(&format!("{CM}/dep")).await;
    assert_eq!(dep.status.as_u16(), 200);
    assert!(
        dep.body["metadata"].get("ownerReferences").is_none(),
        "{}",
        dep.text
    );
    s.api.shutdown().await;
}

#[tokio::test]
async fn namespace_deletion_terminates_then_removes_everything() {
    let s = server().await;
    assert_eq!(
        s.post("/api/v1/namespaces", &json!({"metadata": {"name": "team"}}))
            .await
            .status
            .as_u16(),
        201
    );
    let ns_cm = "/api/v1/namespaces/team/configmaps";
    s.post(ns_cm, &json!({"metadata": {"name": "a"}})).await;
    s.post(
        ns_cm,
        &json!({"metadata": {"name": "held", "finalizers": ["example.com/x"]}}),
    )
    .await;
    let r = s.delete("/api/v1/namespaces/team").await;
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(r.body["status"]["phase"], "Terminating");
    let r = s.post(ns_cm, &json!({"metadata": {"name": "late"}})).await;
    assert_eq!(r.status.as_u16(), 403);
    assert_eq!(
        r.body["message"],
        "configmaps \"late\" is forbidden: unable to create new content in namespace team because it is being terminated"
    );
    eventually(|| async { status_of(&s, &format!("{ns_cm}/a")).await == 404 }).await;
    // The finalizer holds the last object, and with it the namespace.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(status_of(&s, "/api/v1/namespaces/team").await, 200);
    s.patch(
        &format!("{ns_cm}/held"),
        "application/merge-patch+json",
        &json!({"metadata": {"finalizers": null}}),
    )
    .await;
    eventually(|| async { status_of(&s, "/api/v1/namespaces/team").await == 404 }).await;
    s.api.shutdown().await;
}

fn svc(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
}

#[tokio::test]
async fn service_cluster_ips_and_node_ports() {
    let s = server().await;
    let p = "/api/v1/namespaces/default/services";
    let r = s.post(p, &svc("a", json!({"ports": [{"port": 80}]}))).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    assert_eq!(r.body["spec"]["clusterIP"], "10.100.0.2");
    let r = s
        .post(
            p,
            &svc(
                "dns",
                json!({"clusterIP": "10.100.0.10", "ports": [{"port": 53}]}),
            ),
        )
        .await;
    assert_eq!(r.body["spec"]["clusterIPs"], json!(["10.100.0.10"]));
    let r = s
        .post(
            p,
            &svc(
                "np",
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30008}]}),
            ),
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    let r = s
        .post(
            p,
            &svc(
                "np2",
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30008}]}),
            ),
        )
        .await;
    assert_eq!(r.status.as_u16(), 422);
    assert_eq!(
        r.body["message"],
        "Service \"np2\" is invalid: spec.ports[0].nodePort: Invalid value: 30008: provided port is already allocated"
    );
    let r = s
        .post(
            p,
            &svc(
                "auto",
                json!({"type": "LoadBalancer", "ports": [{"port": 80}]}),
            ),
        )
        .await;
    let port = r.body["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&port));
    // Deleting frees the port.
    s.delete(&format!("{p}/np")).await;
    let r = s
        .post(
            p,
            &svc(
                "np3",
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30008}]}),
            ),
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    // An update keeps the allocated IP.
    let r = s
        .patch(
            &format!("{p}/a"),
            "application/merge-patch+json",
            &json!({"metadata": {"labels": {"x": "y"}}}),
        )
        .await;
    assert_eq!(r.body["spec"]["clusterIP"], "10.100.0.2");
    s.api.shutdown().await;
}

#[tokio::test]
async fn allocations_survive_a_restart() {
    let store = std::sync::Arc::new(support::mem_store::MemStore::new());
    let api = skiff_apiserver::server::start(store.clone(), support::config())
        .await
        .unwrap();
    let reg = api.registry.clone();
    let svc_kind = reg.kind("", "services").unwrap();
    let opts = skiff_apiserver::registry::WriteOptions::default();
    reg.create(
        &svc_kind,
        Some("default"),
        svc(
            "np",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30100}]}),
        ),
        &opts,
    )
    .await
    .unwrap();
    api.shutdown().await;
    let api = skiff_apiserver::server::start(store.clone(), support::config())
        .await
        .unwrap();
    let err = api
        .registry
        .create(
            &svc_kind,
            Some("default"),
            svc(
                "np2",
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30100}]}),
            ),
            &opts,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), 422);
    api.shutdown().await;
}
