//! Contract of EKS on Fargate (issue 4) against a real control plane and store: a Fargate profile
//! goes `CREATING` → `ACTIVE`; pods it selects are handed to `fargate-scheduler` at admission and
//! each gets its own `fargate-ip-…` Node (taint, labels, size from its requests) and an ENI in the
//! profile's subnet whose address is the pod's IP; pods it does not select stay with the default
//! scheduler; deleting the pods removes Nodes and ENIs; DeleteCluster is refused while a profile
//! remains; DeleteFargateProfile → `DELETING` → gone.

mod nodegroups_support;

use std::time::Duration;

use nodegroups_support::{Env, wait_for};
use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, DeleteOptions, ListOptions, ResourceRef, WriteOptions};

const T: Duration = Duration::from_secs(60);

async fn fargate_nodes(c: &dyn ApiClient) -> Vec<Value> {
    c.list(
        &ResourceRef::new("", "v1", "nodes"),
        &ListOptions {
            label_selector: Some("eks.amazonaws.com/compute-type=fargate".into()),
            ..ListOptions::default()
        },
    )
    .await
    .unwrap()
    .items
}

async fn pods_in(c: &dyn ApiClient, ns: &str) -> Vec<Value> {
    c.list(
        &ResourceRef::new("", "v1", "pods").in_namespace(ns),
        &ListOptions::default(),
    )
    .await
    .unwrap()
    .items
}

async fn enis(env: &Env) -> Vec<Value> {
    env.call(
        "ec2",
        "DescribeNetworkInterfaces",
        json!({"Filters": [{"Name": "tag-key", "Values": ["eks:fargate-pod-uid"]}]}),
    )
    .await["NetworkInterfaces"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fargate_profile_pods_get_their_own_nodes_and_enis() {
    let env = Env::start().await;
    let (subnets, role) = env
        .cluster(
            "prod",
            &[("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")],
        )
        .await;
    let created = env
        .call(
            "eks",
            "CreateFargateProfile",
            json!({"clusterName": "prod", "fargateProfileName": "fp",
                "podExecutionRoleArn": role, "subnets": [subnets[0]],
                "selectors": [{"namespace": "serverless"}]}),
        )
        .await;
    assert_eq!(created["fargateProfile"]["status"], "CREATING");
    let profile = || async {
        env.call(
            "eks",
            "DescribeFargateProfile",
            json!({"clusterName": "prod", "fargateProfileName": "fp"}),
        )
        .await["fargateProfile"]
            .clone()
    };
    wait_for("profile ACTIVE", T, || async {
        profile().await["status"] == "ACTIVE"
    })
    .await;

    let c = env.client("prod").await;
    c.create(
        &ResourceRef::new("", "v1", "namespaces"),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "serverless"}}),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    c.create(
        &ResourceRef::new("apps", "v1", "deployments").in_namespace("serverless"),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx",
                        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]}}}}),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    let c2 = c.clone();
    wait_for("2 Running fargate pods", T, || {
        let c = c2.clone();
        async move {
            let pods = pods_in(&*c, "serverless").await;
            pods.len() == 2
                && pods
                    .iter()
                    .all(|p| p["status"]["phase"] == "Running" && p["status"]["podIP"].is_string())
        }
    })
    .await;
    let pods = pods_in(&*c, "serverless").await;
    let nodes = fargate_nodes(&*c).await;
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    let interfaces = enis(&env).await;
    assert_eq!(interfaces.len(), 2);
    for p in &pods {
        assert_eq!(p["spec"]["schedulerName"], "fargate-scheduler");
        assert_eq!(
            p["metadata"]["labels"]["eks.amazonaws.com/fargate-profile"],
            "fp"
        );
        // 0.5 vCPU and 1 GiB + 256 MB overhead: the 0.5 vCPU / 2 GB size.
        assert_eq!(
            p["metadata"]["annotations"]["CapacityProvisioned"],
            "0.5vCPU 2GB"
        );
        let node_name = p["spec"]["nodeName"].as_str().unwrap();
        assert!(node_name.starts_with("fargate-ip-10-0-1-"), "{node_name}");
        assert!(node_name.ends_with(".ec2.internal"), "{node_name}");
        let node = nodes
            .iter()
            .find(|n| n["metadata"]["name"] == node_name)
            .unwrap();
        let ip = p["status"]["podIP"].as_str().unwrap();
        assert_eq!(node["status"]["addresses"][0]["address"], ip);
        assert_eq!(
            node_name,
            format!("fargate-ip-{}.ec2.internal", ip.replace('.', "-"))
        );
        assert!(
            interfaces
                .iter()
                .any(|e| e["PrivateIpAddress"] == ip && e["SubnetId"] == subnets[0].as_str()),
            "no ENI holds {ip}"
        );
        let labels = &node["metadata"]["labels"];
        assert_eq!(labels["eks.amazonaws.com/compute-type"], "fargate");
        assert_eq!(labels["eks.amazonaws.com/fargate-profile"], "fp");
        assert_eq!(labels["topology.kubernetes.io/zone"], "us-east-1a");
        assert_eq!(
            node["spec"]["taints"],
            json!([{"key": "eks.amazonaws.com/compute-type", "value": "fargate",
                "effect": "NoSchedule"}])
        );
        assert_eq!(node["status"]["capacity"]["cpu"], "500m");
        assert_eq!(node["status"]["capacity"]["memory"], "2048Mi");
    }
    // A pod outside the profile's namespace is left to the default scheduler.
    let plain = c
        .create(
            &ResourceRef::new("", "v1", "pods").in_namespace("default"),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain"},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(plain["spec"]["schedulerName"], "default-scheduler");

    // DeleteCluster is refused while the profile exists.
    let busy = skiff_aws::dispatch(&env.ctx, "eks", "DeleteCluster", json!({"name": "prod"}))
        .await
        .unwrap_err();
    assert_eq!(busy.code, "ResourceInUseException");

    // The Deployment goes: its pods, their Nodes and ENIs go.
    c.delete(
        &ResourceRef::new("apps", "v1", "deployments").in_namespace("serverless"),
        "web",
        &DeleteOptions::default(),
    )
    .await
    .unwrap();
    let c3 = c.clone();
    wait_for("fargate nodes gone", T, || {
        let c = c3.clone();
        async move { fargate_nodes(&*c).await.is_empty() }
    })
    .await;
    wait_for("ENIs gone", T, || async { enis(&env).await.is_empty() }).await;

    let deleting = env
        .call(
            "eks",
            "DeleteFargateProfile",
            json!({"clusterName": "prod", "fargateProfileName": "fp"}),
        )
        .await;
    assert_eq!(deleting["fargateProfile"]["status"], "DELETING");
    wait_for("profile gone", T, || async {
        skiff_aws::dispatch(
            &env.ctx,
            "eks",
            "DescribeFargateProfile",
            json!({"clusterName": "prod", "fargateProfileName": "fp"}),
        )
        .await
        .is_err_and(|e| e.code == "ResourceNotFoundException")
    })
    .await;
}
