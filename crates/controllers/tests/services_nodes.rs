//! Node lifecycle and taint eviction against a real API server registry, time driven by a fake
//! clock: a Node whose Lease stops being renewed goes Ready=Unknown with the unreachable taints,
//! its Pods turn not ready, the Pod admission gave 300 s tolerations is evicted once they run
//! out, one tolerating it for 0 s at once, and the taints go when the kubelet is back.

mod support;
use support::eventually;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use skiff_apiserver::client::RegistryClient;
use skiff_apiserver::server::{ClusterApiConfig, start};
use skiff_controllers::endpoints_pods::nodes;
use skiff_controllers::node_lifecycle::{self, NODE_LEASE_NAMESPACE, TAINT_UNREACHABLE, leases};
use skiff_controllers::node_lifecycle_taint_eviction;
use skiff_controllers::replicaset::pods;
use skiff_controllers::runtime::FakeClock;
use skiff_controllers::runtime::informer::Cache;
use skiff_controllers::runtime::queue::WorkQueue;
use skiff_k8s_core::client::{ApiClient, WriteOptions};

/// Waits until `cache` shows `key` at the API's current resourceVersion.
async fn synced(
    cache: &Cache,
    c: &dyn ApiClient,
    r: &skiff_k8s_core::client::ResourceRef,
    key: &str,
) {
    let name = key.rsplit('/').next().unwrap_or(key);
    let want = c
        .get_opt(r, name)
        .await
        .unwrap()
        .map(|o| o["metadata"]["resourceVersion"].clone());
    eventually(key, || async {
        let have = cache
            .get(key)
            .map(|o| o["metadata"]["resourceVersion"].clone());
        (have == want).then_some(Value::Null)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_node_is_tainted_its_pods_evicted_and_untainted_on_return() {
    let dir = tempfile::tempdir().unwrap();
    let store = skiff_store::open("embedded", dir.path()).await.unwrap();
    let api = start(
        store,
        ClusterApiConfig::new("c1", "127.0.0.1:0".parse().unwrap()),
    )
    .await
    .unwrap();
    let client: Arc<dyn ApiClient> = Arc::new(RegistryClient::new(
        api.registry.clone(),
        "system:kube-controller-manager",
    ));
    let c = client.as_ref();
    let w = WriteOptions::default();
    c.create(
        &nodes(),
        json!({"metadata": {"name": "n1"}, "status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady",
             "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}),
        &w,
    )
    .await
    .unwrap();
    let lease_r = leases().in_namespace(NODE_LEASE_NAMESPACE);
    c.create(
        &lease_r,
        json!({"metadata": {"name": "n1"},
            "spec": {"holderIdentity": "n1", "renewTime": "2026-01-01T00:00:00.000000Z"}}),
        &w,
    )
    .await
    .unwrap();
    let pods_r = pods().in_namespace("default");
    for (name, tolerations) in [
        ("defaulted", json!([])),
        (
            "impatient",
            json!([{"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
                "tolerationSeconds": 0}]),
        ),
    ] {
        let mut p = c
            .create(
                &pods_r,
                json!({"metadata": {"name": name}, "spec": {"nodeName": "n1",
                    "tolerations": tolerations,
                    "containers": [{"name": "c", "image": "nginx"}]}}),
                &w,
            )
            .await
            .unwrap();
        p["status"] =
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]});
        c.update_status(&pods_r, p, &w).await.unwrap();
    }
    // DefaultTolerationSeconds admission: not-ready/unreachable for 300 s, but only where the
    // Pod does not already tolerate them (the intolerant one's `other` toleration does not).
    let defaulted = c.get(&pods_r, "defaulted").await.unwrap();
    assert_eq!(
        defaulted["spec"]["tolerations"].as_array().unwrap().len(),
        2
    );

    // The two controllers as the table builds them, driven by hand with a fake clock.
    let clock = FakeClock::new("2026-01-01T00:00:00Z".parse().unwrap());
    let mut inf = skiff_controllers::Informers::new(client.clone());
    let lifecycle =
        node_lifecycle::setup(&mut inf, client.clone(), clock.clone(), WorkQueue::new());
    let eviction = node_lifecycle_taint_eviction::setup(
        &mut inf,
        client.clone(),
        clock.clone(),
        WorkQueue::new(),
    );
    let node_cache = inf.cache(nodes());
    let pod_cache = inf.cache(pods());
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let informer_tasks = inf.start(shutdown).await;

    lifecycle.reconcile("n1").await.unwrap();
    clock.advance(Duration::from_secs(41));
    lifecycle.reconcile("n1").await.unwrap();
    let node = c.get(&nodes(), "n1").await.unwrap();
    let ready = &node["status"]["conditions"][0];
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("Unknown"), Some("NodeStatusUnknown"))
    );
    let taints: Vec<String> = node["spec"]["taints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}:{}",
                t["key"].as_str().unwrap(),
                t["effect"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        taints,
        [
            format!("{TAINT_UNREACHABLE}:NoSchedule"),
            format!("{TAINT_UNREACHABLE}:NoExecute")
        ]
    );
    for name in ["defaulted", "impatient"] {
        let p = c.get(&pods_r, name).await.unwrap();
        assert_eq!(p["status"]["conditions"][0]["status"], "False", "{name}");
    }

    // Eviction: the impatient Pod at once, the other after its 300 s.
    synced(&node_cache, c, &nodes(), "n1").await;
    synced(&pod_cache, c, &pods_r, "default/defaulted").await;
    synced(&pod_cache, c, &pods_r, "default/impatient").await;
    eviction.reconcile("n1").await.unwrap();
    let gone =
        |p: Option<Value>| p.is_none_or(|p| p["metadata"].get("deletionTimestamp").is_some());
    assert!(gone(c.get_opt(&pods_r, "impatient").await.unwrap()));
    assert!(!gone(c.get_opt(&pods_r, "defaulted").await.unwrap()));
    clock.advance(Duration::from_secs(300));
    synced(&pod_cache, c, &pods_r, "default/defaulted").await;
    synced(&pod_cache, c, &pods_r, "default/impatient").await;
    eviction.reconcile("n1").await.unwrap();
    let p = c.get_opt(&pods_r, "defaulted").await.unwrap();
    assert!(gone(p.clone()));
    if let Some(p) = p {
        let reasons: Vec<_> = p["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["reason"].as_str().unwrap_or("").to_string())
            .collect();
        assert!(
            reasons.contains(&"DeletionByTaintManager".to_string()),
            "{reasons:?}"
        );
    }

    // The kubelet is back: Ready again, taints removed.
    let mut node = c.get(&nodes(), "n1").await.unwrap();
    node["status"]["conditions"][0] = json!({"type": "Ready", "status": "True", "reason": "KubeletReady",
        "lastHeartbeatTime": "2026-01-01T00:05:42Z", "lastTransitionTime": "2026-01-01T00:05:42Z"});
    c.update_status(&nodes(), node, &w).await.unwrap();
    synced(&node_cache, c, &nodes(), "n1").await;
    lifecycle.reconcile("n1").await.unwrap();
    let node = c.get(&nodes(), "n1").await.unwrap();
    assert!(
        node["spec"]
            .get("taints")
            .is_none_or(|t| t.as_array().is_some_and(Vec::is_empty)),
        "{node}"
    );

    stop.send(true).unwrap();
    for t in informer_tasks {
        t.await.unwrap();
    }
    api.shutdown().await;
}
