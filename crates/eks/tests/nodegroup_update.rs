//! Contract of the node lifecycle EKS runs on managed nodegroups (issue 4): UpdateNodegroupVersion
//! rolls every node (surge, wait Ready, cordon + drain honouring PodDisruptionBudgets, terminate),
//! records the new version and completes its update; a budget that blocks fails the update with
//! `PodEvictionFailure` unless `force`; DeleteNodegroup drains first and a blocking budget keeps it
//! `DELETING` until the drain timeout; scale-in drains the nodes it removes.

mod nodegroups_support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nodegroups_support::{Env, root_ctx, wait_for};
use serde_json::{Value, json};
use skiff_eks::cluster_lifecycle::ClusterLifecycle;
use skiff_eks::control_plane::ControlPlanes;
use skiff_eks::nodegroups::NodegroupReconciler;
use skiff_k8s_core::client::{ApiClient, ListOptions, ResourceRef, WriteOptions};

const T: Duration = Duration::from_secs(60);

/// The kit's environment with the nodegroup reconciler's drain timeout set to `drain_timeout`.
async fn env_with_drain_timeout(drain_timeout: Duration) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = skiff_store::open("embedded", dir.path()).await.unwrap();
    let planes = Arc::new(ControlPlanes::new(
        store.clone(),
        dir.path().to_path_buf(),
        0,
    ));
    let mut env = Env {
        ctx: root_ctx(store.clone()),
        planes,
        store,
        dir,
        tasks: Vec::new(),
    };
    let lifecycle = ClusterLifecycle::new(env.store.clone(), env.planes.clone());
    let from = lifecycle.sync().await.unwrap();
    env.tasks.push(tokio::spawn(lifecycle.run(from)));
    let nodegroups = NodegroupReconciler::new(env.store.clone(), env.planes.clone())
        .with_drain_timeout(drain_timeout);
    let from = nodegroups.sync().await.unwrap();
    env.tasks.push(tokio::spawn(nodegroups.run(from)));
    env
}

async fn create_nodegroup(env: &Env, subnets: &[String], role: &str, version: &str, size: i64) {
    env.call(
        "eks",
        "CreateNodegroup",
        json!({"clusterName": "prod", "nodegroupName": "ng", "nodeRole": role,
            "subnets": subnets, "version": version,
            "scalingConfig": {"minSize": 1, "maxSize": size + 1, "desiredSize": size},
            "updateConfig": {"maxUnavailable": 1}}),
    )
    .await;
    wait_status(env, "ACTIVE").await;
}

async fn wait_status(env: &Env, status: &str) -> Value {
    wait_for(&format!("nodegroup {status}"), T, || async move {
        env.nodegroup("prod", "ng")
            .await
            .is_some_and(|n| n["status"] == status)
    })
    .await;
    env.nodegroup("prod", "ng").await.unwrap()
}

async fn update(env: &Env, id: &str) -> Value {
    env.call(
        "eks",
        "DescribeUpdate",
        json!({"name": "prod", "updateId": id, "nodegroupName": "ng"}),
    )
    .await["update"]
        .clone()
}

fn provider_instance(node: &Value) -> String {
    node["spec"]["providerID"]
        .as_str()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A Deployment `app` of `replicas` with a budget allowing `max_unavailable` of them down.
/// Cluster `prod` in two zones with nodegroup `ng` of `size` nodes at `version`, and its client.
async fn prod_nodegroup(
    drain_timeout: Duration,
    version: &str,
    size: i64,
) -> (Env, std::sync::Arc<dyn ApiClient>) {
    let env = env_with_drain_timeout(drain_timeout).await;
    let (subnets, role) = env
        .cluster(
            "prod",
            &[("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")],
        )
        .await;
    create_nodegroup(&env, &subnets, &role, version, size).await;
    let c = env.client("prod").await;
    (env, c)
}

async fn workload(c: &dyn ApiClient, replicas: i64, max_unavailable: i64) {
    c.create(
        &ResourceRef::new("apps", "v1", "deployments").in_namespace("default"),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "app"}},
                "template": {"metadata": {"labels": {"app": "app"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    c.create(
        &ResourceRef::new("policy", "v1", "poddisruptionbudgets").in_namespace("default"),
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "app"},
            "spec": {"maxUnavailable": max_unavailable,
                "selector": {"matchLabels": {"app": "app"}}}}),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
}

async fn running_pods(c: &dyn ApiClient) -> Vec<Value> {
    c.list(
        &ResourceRef::new("", "v1", "pods").in_namespace("default"),
        &ListOptions::default(),
    )
    .await
    .unwrap()
    .items
    .into_iter()
    .filter(|p| p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null())
    .collect()
}

async fn wait_running(env: &Env, n: usize) {
    let c = env.client("prod").await;
    wait_for(&format!("{n} running pods"), T, || {
        let c = c.clone();
        async move { running_pods(&*c).await.len() == n }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_update_rolls_every_node_honouring_budgets() {
    let (env, c) = prod_nodegroup(Duration::from_secs(60), "1.32", 2).await;
    let before: BTreeSet<String> = env
        .nodes("prod")
        .await
        .iter()
        .map(provider_instance)
        .collect();
    assert_eq!(before.len(), 2);
    workload(&*c, 2, 1).await;
    wait_running(&env, 2).await;

    let out = env
        .call(
            "eks",
            "UpdateNodegroupVersion",
            json!({"clusterName": "prod", "nodegroupName": "ng"}),
        )
        .await;
    let id = out["update"]["id"].as_str().unwrap().to_string();
    assert_eq!(out["update"]["type"], "VersionUpdate");
    assert_eq!(out["update"]["status"], "InProgress");
    assert!(
        out["update"]["params"]
            .as_array()
            .unwrap()
            .contains(&json!({"type": "Version", "value": "1.33"}))
    );
    assert_eq!(
        env.nodegroup("prod", "ng").await.unwrap()["status"],
        "UPDATING"
    );

    // While rolling, the budget keeps at least one replica running at every moment we look.
    let deadline = Instant::now() + T;
    loop {
        let ng = env.nodegroup("prod", "ng").await.unwrap();
        if ng["status"] == "ACTIVE" {
            break;
        }
        assert!(Instant::now() < deadline, "update did not finish: {ng}");
        let pods = running_pods(&*c).await;
        assert!(!pods.is_empty(), "the budget was broken mid-update");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ng = env.nodegroup("prod", "ng").await.unwrap();
    assert_eq!(ng["version"], "1.33");
    assert_eq!(ng["releaseVersion"], "1.33.0-20251120");
    assert_eq!(update(&env, &id).await["status"], "Successful");

    let nodes = env.nodes("prod").await;
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    let after: BTreeSet<String> = nodes.iter().map(provider_instance).collect();
    assert!(before.is_disjoint(&after), "{before:?} vs {after:?}");
    let image = skiff_eks::nodegroups::eks_ami_id("AL2023_x86_64_STANDARD", "1.33", "us-east-1");
    for n in &nodes {
        assert_eq!(
            n["status"]["nodeInfo"]["kubeletVersion"],
            "v1.33.0-eks-skiff"
        );
        assert_eq!(
            n["metadata"]["labels"]["eks.amazonaws.com/nodegroup-image"],
            image.as_str()
        );
        assert!(n["spec"]["unschedulable"].is_null(), "{n}");
    }
    // The group is back at the nodegroup's size, and the workload runs on the new nodes.
    let group = env
        .call(
            "autoscaling",
            "DescribeAutoScalingGroups",
            json!({"AutoScalingGroupNames": [ng["resources"]["autoScalingGroups"][0]["name"]]}),
        )
        .await;
    assert_eq!(group["AutoScalingGroups"][0]["DesiredCapacity"], 2);
    assert_eq!(
        group["AutoScalingGroups"][0]["Instances"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    wait_running(&env, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_budget_fails_the_update_unless_forced() {
    let (env, c) = prod_nodegroup(Duration::from_millis(1500), "1.32", 1).await;
    workload(&*c, 1, 0).await;
    wait_running(&env, 1).await;

    let out = env
        .call(
            "eks",
            "UpdateNodegroupVersion",
            json!({"clusterName": "prod", "nodegroupName": "ng"}),
        )
        .await;
    let id = out["update"]["id"].as_str().unwrap().to_string();
    wait_for("the update to fail", T, || {
        let (env, id) = (&env, id.clone());
        async move { update(env, &id).await["status"] == "Failed" }
    })
    .await;
    let failed = update(&env, &id).await;
    assert_eq!(failed["errors"][0]["errorCode"], "PodEvictionFailure");
    assert_eq!(
        failed["errors"][0]["errorMessage"],
        "Reached max retries while trying to evict pods from nodes in node group ng"
    );
    let ng = wait_status(&env, "ACTIVE").await;
    assert_eq!(ng["version"], "1.32");
    wait_running(&env, 1).await;

    let out = env
        .call(
            "eks",
            "UpdateNodegroupVersion",
            json!({"clusterName": "prod", "nodegroupName": "ng", "force": true}),
        )
        .await;
    let id = out["update"]["id"].as_str().unwrap().to_string();
    wait_for("the forced update to succeed", T, || {
        let (env, id) = (&env, id.clone());
        async move { update(env, &id).await["status"] == "Successful" }
    })
    .await;
    let ng = wait_status(&env, "ACTIVE").await;
    assert_eq!(ng["version"], "1.33");
    for n in env.nodes("prod").await {
        assert_eq!(
            n["status"]["nodeInfo"]["kubeletVersion"],
            "v1.33.0-eks-skiff"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_waits_for_the_budget_until_the_drain_timeout() {
    let (env, c) = prod_nodegroup(Duration::from_secs(3), "1.33", 2).await;
    workload(&*c, 1, 0).await;
    wait_running(&env, 1).await;

    let started = Instant::now();
    env.call(
        "eks",
        "DeleteNodegroup",
        json!({"clusterName": "prod", "nodegroupName": "ng"}),
    )
    .await;
    // Every node is cordoned, and the budget holds the nodegroup DELETING with its instances up.
    wait_for("nodes cordoned", T, || async {
        let nodes = env.nodes("prod").await;
        !nodes.is_empty() && nodes.iter().all(|n| n["spec"]["unschedulable"] == true)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        env.nodegroup("prod", "ng").await.unwrap()["status"],
        "DELETING"
    );
    assert_eq!(env.nodes("prod").await.len(), 2);
    assert_eq!(running_pods(&*c).await.len(), 1);
    // After the drain timeout EKS terminates anyway.
    wait_for("nodegroup gone", T, || async {
        env.nodegroup("prod", "ng").await.is_none()
    })
    .await;
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert!(env.nodes("prod").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_in_drains_the_nodes_it_removes() {
    let (env, c) = prod_nodegroup(Duration::from_secs(60), "1.33", 3).await;
    workload(&*c, 3, 1).await;
    wait_running(&env, 3).await;
    env.call(
        "eks",
        "UpdateNodegroupConfig",
        json!({"clusterName": "prod", "nodegroupName": "ng",
            "scalingConfig": {"minSize": 1, "maxSize": 4, "desiredSize": 1}}),
    )
    .await;
    wait_for("one node", T, || async {
        env.nodes("prod").await.len() == 1
    })
    .await;
    wait_status(&env, "ACTIVE").await;
    // The evicted replicas were recreated on the node left.
    wait_running(&env, 3).await;
    let node = env.nodes("prod").await[0]["metadata"]["name"].clone();
    for p in running_pods(&*c).await {
        assert_eq!(p["spec"]["nodeName"], node);
    }
}
