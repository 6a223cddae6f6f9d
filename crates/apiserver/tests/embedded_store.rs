//! The same API over the real embedded store backend (durable, on disk): CRUD, paging, watch from
//! a resourceVersion, garbage collection, and a restart that keeps everything.

mod support;

use std::sync::Arc;

use serde_json::json;
use support::{eventually, next_event, server_on_backend};

#[tokio::test]
async fn api_over_the_embedded_store_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = skiff_store::open("embedded", dir.path())
        .await
        .expect("embedded store opens");
    let s = server_on_backend(store.clone(), support::config()).await;
    let p = "/api/v1/namespaces/default/configmaps";
    let rv = s
        .post(p, &json!({"metadata": {"name": "a"}, "data": {"k": "v"}}))
        .await
        .body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut w = s
        .watch(&format!("{p}?watch=1&resourceVersion={rv}"), &[])
        .await;
    for i in 0..5 {
        assert_eq!(
            s.post(p, &json!({"metadata": {"name": format!("b{i}")}}))
                .await
                .status
                .as_u16(),
            201
        );
    }
    for i in 0..5 {
        let ev = next_event(&mut w).await;
        assert_eq!(
            (
                ev["type"].as_str(),
                ev["object"]["metadata"]["name"].as_str()
            ),
            (Some("ADDED"), Some(format!("b{i}").as_str()))
        );
    }
    let r = s.get(&format!("{p}?limit=4")).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 4);
    let tok = r.body["metadata"]["continue"].as_str().unwrap().to_string();
    let r = s.get(&format!("{p}?limit=4&continue={tok}")).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    let uid = s.get(&format!("{p}/a")).await.body["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    s.post(p, &json!({"metadata": {"name": "dep", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "a", "uid": uid}]}}))
        .await;
    s.delete(&format!("{p}/a")).await;
    eventually(|| async { s.get(&format!("{p}/dep")).await.status.as_u16() == 404 }).await;
    s.api.shutdown().await;

    let s = server_on_backend(store as Arc<dyn skiff_store::Store>, support::config()).await;
    let r = s.get(p).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 5, "{}", r.text);
    assert_eq!(
        s.get("/api/v1/namespaces/default/services/kubernetes")
            .await
            .status
            .as_u16(),
        200
    );
    s.api.shutdown().await;
}
