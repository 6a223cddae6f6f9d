//! A measurement, not a gate (ignored by default): a Deployment of R replicas on N simulated
//! nodes, through everything a cluster runs — the real registry on the embedded store, the
//! controllers (Deployment → ReplicaSet → Pods), the scheduler (binding through `pods/binding`)
//! and the simulated kubelet (`fast` profile). Reported: time until every pod is bound, until every
//! pod is Running, and the Deployment's `availableReplicas`.
//!
//! `SKIFF_SCALE_NODES=500 SKIFF_SCALE_REPLICAS=10000 cargo test --release -p skiff-nodes \
//!  --test deployment_scale -- --ignored --nocapture` (design.md §7 aims at 100k on 5k nodes).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use skiff_apiserver::client::RegistryClient;
use skiff_apiserver::server::{ClusterApiConfig, start};
use skiff_k8s_core::client::{ApiClient, ListOptions, ResourceRef, WriteOptions};
use skiff_nodes::sim::{CidrPodNetwork, SimConfig, spawn_sim};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run by hand with --ignored --nocapture"]
async fn deployment_replicas_all_running() {
    let n_nodes = env("SKIFF_SCALE_NODES", 50);
    let replicas = env("SKIFF_SCALE_REPLICAS", 1000);
    let dir = tempfile::tempdir().unwrap();
    let store = skiff_store::open("embedded", dir.path()).await.unwrap();
    let api = start(
        store,
        ClusterApiConfig::new("c1", "127.0.0.1:0".parse().unwrap()),
    )
    .await
    .unwrap();
    let client = |user: &str| -> Arc<dyn ApiClient> {
        Arc::new(RegistryClient::new(api.registry.clone(), user))
    };
    let (admin, kubelet, scheduler) = (
        client("system:kube-controller-manager"),
        client("system:node:sim"),
        client("system:kube-scheduler"),
    );
    let nodes = ResourceRef::new("", "v1", "nodes");
    futures::stream::iter(0..n_nodes)
        .map(|i| {
            let c = admin.clone();
            let nodes = nodes.clone();
            async move {
                c.create(
                    &nodes,
                    json!({"apiVersion": "v1", "kind": "Node",
                           "metadata": {"name": format!("n{i}"),
                                        "labels": {"kubernetes.io/hostname": format!("n{i}")},
                                        "annotations": {"skiff.dev/node-agent": "sim"}},
                           "spec": {"podCIDR": format!("10.{}.{}.0/24", 100 + i / 256, i % 256)},
                           "status": {"capacity": {"cpu": "64", "memory": "256Gi", "pods": "250"},
                                      "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "250"}}}),
                    &WriteOptions::default(),
                )
                .await
                .unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let ctl = tokio::spawn(skiff_controllers::run_all(admin.clone(), shutdown.clone()));
    let sched = tokio::spawn(skiff_scheduler::run(scheduler, shutdown.clone()));
    let (_handle, sim) = spawn_sim(
        kubelet,
        Arc::new(CidrPodNetwork::new()),
        SimConfig {
            profile: "fast".into(),
            ..SimConfig::default()
        },
        shutdown,
    );

    let t0 = Instant::now();
    admin
        .create(
            &ResourceRef::new("apps", "v1", "deployments").in_namespace("default"),
            json!({"metadata": {"name": "web"}, "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                    {"name": "c", "image": "nginx",
                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    let pods = ResourceRef::new("", "v1", "pods").in_namespace("default");
    let (mut bound_at, mut running_at) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(1800);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let items = admin
            .list(&pods, &ListOptions::default())
            .await
            .unwrap()
            .items;
        let bound = items
            .iter()
            .filter(|p| p["spec"]["nodeName"].is_string())
            .count();
        let running = items
            .iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .count();
        // Progress every ~10 s: which stage lags (created, bound, Running).
        if t0.elapsed().as_secs() / 10 != (t0.elapsed() - Duration::from_millis(500)).as_secs() / 10
        {
            println!(
                "{:>5.1?}: {} created, {bound} bound, {running} Running",
                t0.elapsed(),
                items.len()
            );
        }
        if bound_at.is_none() && bound == replicas {
            bound_at = Some(t0.elapsed());
        }
        if running == replicas {
            running_at = Some(t0.elapsed());
            break;
        }
    }
    let running_at = running_at.expect("every replica Running within 30 min");
    let d = admin
        .get(
            &ResourceRef::new("apps", "v1", "deployments").in_namespace("default"),
            "web",
        )
        .await
        .unwrap();
    println!(
        "{replicas} replicas on {n_nodes} nodes: all bound in {:.2?}, all Running in {running_at:.2?} \
         ({:.0} pods/s end to end); deployment availableReplicas {}",
        bound_at.unwrap_or(running_at),
        replicas as f64 / running_at.as_secs_f64(),
        d["status"]["availableReplicas"]
    );
    stop.send(true).unwrap();
    for t in [ctl, sched, sim] {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
}
