//! `pods/log` over what the simulated kubelet really records: a pod run by the sim shows its
//! lifecycle (Events and status) as its log, a follower sees the container exit and the stream
//! end, and a crash-looping container's previous run ends with its exit code.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use skiff_apiserver::client::RegistryClient;
use skiff_apiserver::registry::Registry;
use skiff_apiserver::registry::pod_log::{LogOptions, pod_log};
use skiff_apiserver::server::{ClusterApiConfig, start};
use skiff_k8s_core::client::{ApiClient, ResourceRef, WriteOptions};
use skiff_nodes::sim::{CidrPodNetwork, SimConfig, spawn_sim};

async fn eventually<F, Fut>(what: &str, mut f: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Value>>,
{
    for _ in 0..800 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

fn pods() -> ResourceRef {
    ResourceRef::new("", "v1", "pods").in_namespace("default")
}

async fn read_log(reg: &Arc<Registry>, name: &str, opts: LogOptions) -> String {
    let stream = pod_log(reg, "default", name, opts).await.unwrap();
    let chunks: Vec<_> = tokio::time::timeout(Duration::from_secs(30), stream.collect())
        .await
        .expect("the log ends");
    chunks
        .iter()
        .map(|b| String::from_utf8_lossy(b).to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_the_lifecycle_the_sim_kubelet_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = skiff_store::open("embedded", dir.path()).await.unwrap();
    let api = start(
        store,
        ClusterApiConfig::new("c1", "127.0.0.1:0".parse().unwrap()),
    )
    .await
    .unwrap();
    let client: Arc<dyn ApiClient> =
        Arc::new(RegistryClient::new(api.registry.clone(), "system:node:sim"));
    let c = client.as_ref();
    let w = WriteOptions::default();
    c.create(
        &ResourceRef::new("", "v1", "nodes"),
        json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "n1", "annotations": {"skiff.dev/node-agent": "sim"}},
            "spec": {"podCIDR": "10.244.1.0/24"},
            "status": {"capacity": {"cpu": "2", "memory": "8Gi", "pods": "29"}}}),
        &w,
    )
    .await
    .unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let (_handle, task) = spawn_sim(
        client.clone(),
        Arc::new(CidrPodNetwork::new()),
        SimConfig::default(),
        shutdown,
    );
    let pod = |name: &str, annotations: Value, restart: &str| {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"nodeName": "n1", "restartPolicy": restart,
                     "containers": [{"name": "main", "image": "busybox:1.36"}]}})
    };
    c.create(
        &pods(),
        pod("once", json!({"skiff.dev/complete-after": "3s"}), "Never"),
        &w,
    )
    .await
    .unwrap();
    c.create(
        &pods(),
        pod("loop", json!({"skiff.dev/crash-loop": "true"}), "Always"),
        &w,
    )
    .await
    .unwrap();

    let reg = api.registry.clone();
    eventually("once Running", || async {
        let p = c.get(&pods(), "once").await.unwrap();
        (p["status"]["phase"] == "Running").then_some(p)
    })
    .await;
    // Running: follow until the container exits (3 s in), then the stream ends by itself.
    let follow = {
        let reg = reg.clone();
        tokio::spawn(async move {
            let opts = LogOptions {
                follow: true,
                ..LogOptions::default()
            };
            read_log(&reg, "once", opts).await
        })
    };
    let log = follow.await.unwrap();
    let lines: Vec<&str> = log.lines().collect();
    // Pulled (and Pulling when the node lacked the image), as the kubelet's Events say.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("kubelet: Pulled: ") && l.contains("\"busybox:1.36\"")),
        "{log}"
    );
    assert!(
        lines.contains(&"kubelet: Created: Created container: main"),
        "{log}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("skiff: container main (containerd://")
                && l.ends_with(
                    "is simulated on node n1: no process runs, so there is no application output"
                )),
        "{log}"
    );
    assert_eq!(
        lines.last(),
        Some(&"skiff: container main exited with code 0 (Completed)"),
        "{log}"
    );
    let again = read_log(&reg, "once", LogOptions::default()).await;
    assert_eq!(again, log, "a finished container's log stays as it was");

    // The crash loop: after the first crash, the previous run ends with its exit code.
    eventually("loop restarted once", || async {
        let p = c.get(&pods(), "loop").await.unwrap();
        (p["status"]["containerStatuses"][0]["restartCount"].as_i64() >= Some(1)).then_some(p)
    })
    .await;
    let previous = read_log(
        &reg,
        "loop",
        LogOptions {
            previous: true,
            timestamps: true,
            ..LogOptions::default()
        },
    )
    .await;
    let last = previous.lines().last().unwrap();
    assert!(
        last.ends_with(" skiff: container main exited with code 1 (Error)"),
        "{previous}"
    );

    stop.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
}
