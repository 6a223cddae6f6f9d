//! A measurement, not a gate (ignored by default): N sim nodes and M pods bound to them directly
//! (no scheduler), `fast` profile, through the real registry on the embedded store. The pods are
//! created before the kubelet starts; reported is the time from its start until every pod is
//! Running (its Node status and Lease writes included).
//!
//! `SKIFF_SIM_NODES=500 SKIFF_SIM_PODS=10000 cargo test -p skiff-nodes --test scale -- --ignored --nocapture`

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use skiff_apiserver::client::RegistryClient;
use skiff_apiserver::server::{ClusterApiConfig, start};
use skiff_k8s_core::client::{ApiClient, ResourceRef, WriteOptions};
use skiff_nodes::sim::{CidrPodNetwork, SimConfig, spawn_sim};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run by hand with --ignored --nocapture"]
async fn pods_reach_running_at_scale() {
    let n_nodes = env("SKIFF_SIM_NODES", 200);
    let n_pods = env("SKIFF_SIM_PODS", 4000);
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
    let nodes = ResourceRef::new("", "v1", "nodes");
    let pods = ResourceRef::new("", "v1", "pods").in_namespace("default");

    let t0 = Instant::now();
    futures::stream::iter(0..n_nodes)
        .map(|i| {
            let c = client.clone();
            let nodes = nodes.clone();
            async move {
                c.create(
                    &nodes,
                    json!({"apiVersion": "v1", "kind": "Node",
                           "metadata": {"name": format!("n{i}"),
                                        "annotations": {"skiff.dev/node-agent": "sim"}},
                           "spec": {"podCIDR": format!("10.{}.{}.0/24", 100 + i / 256, i % 256)}}),
                    &WriteOptions::default(),
                )
                .await
                .unwrap();
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    eprintln!("{n_nodes} nodes created in {:?}", t0.elapsed());
    let config = SimConfig {
        profile: "fast".into(),
        max_in_flight: env("SKIFF_SIM_IN_FLIGHT", 64),
        ..SimConfig::default()
    };
    // Pods first, with no kubelet running, so the figure below is the kubelet's alone.
    let t1 = Instant::now();
    futures::stream::iter(0..n_pods)
        .map(|i| {
            let c = client.clone();
            let pods = pods.clone();
            async move {
                c.create(
                    &pods,
                    json!({"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": format!("p{i}")},
                           "spec": {"nodeName": format!("n{}", i % n_nodes),
                                    "containers": [{"name": "c", "image": "nginx"}]}}),
                    &WriteOptions::default(),
                )
                .await
                .unwrap();
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    eprintln!("{n_pods} pods created in {:?}", t1.elapsed());

    let t2 = Instant::now();
    let (_h, task) = spawn_sim(
        client.clone(),
        Arc::new(CidrPodNetwork::new()),
        config,
        shutdown,
    );
    // Counted by listing every 2 s (each list of every pod costs CPU beside the kubelet).
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let list = client
            .list(
                &pods,
                &skiff_k8s_core::client::ListOptions {
                    field_selector: Some("status.phase=Running".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        if list.items.len() == n_pods {
            break;
        }
        assert!(Instant::now() < deadline, "all pods Running within 10 min");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let all_running = t2.elapsed();
    eprintln!(
        "sim: {n_nodes} nodes, {n_pods} pods all Running {all_running:?} after start ({:.0} pods/s)",
        n_pods as f64 / all_running.as_secs_f64()
    );
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// What one pod status write costs through the registry (the kubelet's unit of work), sequential
/// and 64 at a time, next to a pod create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run by hand with --ignored --nocapture"]
async fn pod_status_patch_cost() {
    let n = env("SKIFF_SIM_PODS", 500);
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
    let pods = ResourceRef::new("", "v1", "pods").in_namespace("default");
    let t = Instant::now();
    for i in 0..n {
        client
            .create(
                &pods,
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("p{i}")},
                       "spec": {"nodeName": "n0", "containers": [{"name": "c", "image": "nginx"}]}}),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
    }
    eprintln!("create, sequential: {:?}/op", t.elapsed() / n as u32);
    let patch = |i: usize, phase: &str| {
        let c = client.clone();
        let pods = pods.clone();
        let phase = phase.to_string();
        async move {
            c.patch(
                &pods,
                &format!("p{i}"),
                skiff_k8s_core::patch::PatchType::Strategic,
                json!({"status": {"phase": phase, "podIP": "10.0.0.1",
                       "conditions": [{"type": "Ready", "status": "True"}]}}),
                &skiff_k8s_core::client::PatchOptions {
                    field_manager: Some("kubelet".into()),
                    subresource: Some("status".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        }
    };
    let t = Instant::now();
    for i in 0..n {
        patch(i, "Running").await;
    }
    eprintln!("status patch, sequential: {:?}/op", t.elapsed() / n as u32);
    let t = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| patch(i, "Succeeded"))
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    eprintln!(
        "status patch, 64 at a time: {:?}/op",
        t.elapsed() / n as u32
    );

    // The kubelet's real patch (fast profile, bound -> Running) on fresh pods.
    let profile = skiff_nodes::sim::stage::Profile::builtin("fast").unwrap();
    let mut made = Vec::new();
    for i in 0..n {
        made.push(
            client
                .create(
                    &pods,
                    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("q{i}")},
                           "spec": {"nodeName": "n0", "containers": [{"name": "c", "image": "nginx"}]}}),
                    &WriteOptions::default(),
                )
                .await
                .unwrap(),
        );
    }
    let present = |_: &str| false;
    let patches: Vec<(String, serde_json::Value)> = made
        .iter()
        .map(|p| {
            let (_, stage) = profile.select(p).unwrap();
            let ctx = skiff_nodes::sim::engine::PodContext {
                now: jiff::Timestamp::now(),
                node_name: "n0",
                node_ip: "10.0.0.1",
                pod_ip: Some("10.1.0.5"),
                image_present: &present,
                waited: Duration::ZERO,
            };
            let t = skiff_nodes::sim::engine::apply(stage, p, &ctx);
            (
                p["metadata"]["name"].as_str().unwrap().to_string(),
                t.patch.unwrap(),
            )
        })
        .collect();
    let t = Instant::now();
    futures::stream::iter(patches)
        .map(|(name, body)| {
            let c = client.clone();
            let pods = pods.clone();
            async move {
                c.patch(
                    &pods,
                    &name,
                    skiff_k8s_core::patch::PatchType::Strategic,
                    body,
                    &skiff_k8s_core::client::PatchOptions {
                        field_manager: Some("kubelet".into()),
                        subresource: Some("status".into()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    eprintln!(
        "kubelet Running patch, 64 at a time: {:?}/op",
        t.elapsed() / n as u32
    );
}
