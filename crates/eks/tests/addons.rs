//! Contract of the add-on manager (issue 4, "Add-ons exist in-cluster as on EKS") against a real
//! store and control plane: the self-managed defaults appear once per cluster and run on the
//! nodes; the add-on API's CreateAddon/UpdateAddon/DeleteAddon reach the workloads with
//! `resolveConflicts`, `configurationValues` and `serviceAccountRoleArn` honoured, and the record
//! follows the rollout (`CREATING` → `ACTIVE`, `DEGRADED` without nodes, `CREATE_FAILED` on a
//! conflict).

mod nodegroups_support;

use std::sync::Arc;
use std::time::Duration;

use nodegroups_support::{Env, wait_for};
use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, ListOptions, PatchOptions, ResourceRef};
use skiff_k8s_core::patch::PatchType;

const WAIT: Duration = Duration::from_secs(60);

fn r(group: &str, plural: &str) -> ResourceRef {
    let version = "v1";
    ResourceRef::new(group, version, plural).in_namespace("kube-system")
}

async fn get(client: &Arc<dyn ApiClient>, group: &str, plural: &str, name: &str) -> Option<Value> {
    client.get_opt(&r(group, plural), name).await.unwrap()
}

async fn addon(env: &Env, name: &str) -> Option<Value> {
    skiff_aws::eks::dispatch(
        &env.ctx,
        "DescribeAddon",
        json!({"clusterName": "prod", "addonName": name}),
    )
    .await
    .ok()
    .map(|v| v["addon"].clone())
}

async fn wait_addon(env: &Env, name: &str, status: &str) -> Value {
    let what = format!("{name} {status}");
    wait_for(&what, WAIT, || async {
        addon(env, name)
            .await
            .is_some_and(|a| a["status"] == status)
    })
    .await;
    addon(env, name).await.unwrap()
}

async fn nodegroup(env: &Env, subnets: &[String], node_role: &str, size: u32) {
    env.call(
        "eks",
        "CreateNodegroup",
        json!({"clusterName": "prod", "nodegroupName": "ng", "nodeRole": node_role,
               "subnets": subnets, "instanceTypes": ["t3.medium"],
               "scalingConfig": {"minSize": 0, "maxSize": 4, "desiredSize": size}}),
    )
    .await;
    wait_for("nodegroup ACTIVE", WAIT, || async {
        env.nodegroup("prod", "ng")
            .await
            .is_some_and(|n| n["status"] == "ACTIVE")
    })
    .await;
}

/// Wait until the workload's status says it is rolled out and available.
async fn wait_available(client: &Arc<dyn ApiClient>, plural: &str, name: &str) -> Value {
    let what = format!("{plural}/{name} available");
    wait_for(&what, WAIT, || async {
        get(client, "apps", plural, name)
            .await
            .is_some_and(|w| skiff_eks::addons::workload_available(&w))
    })
    .await;
    get(client, "apps", plural, name).await.unwrap()
}

/// Wait until the DaemonSet runs an available pod on each of `n` nodes.
async fn wait_daemons(client: &Arc<dyn ApiClient>, name: &str, n: i64) -> Value {
    let what = format!("daemonset {name} on {n} nodes");
    wait_for(&what, WAIT, || async {
        get(client, "apps", "daemonsets", name)
            .await
            .is_some_and(|w| {
                w["status"]["desiredNumberScheduled"] == n
                    && skiff_eks::addons::workload_available(&w)
            })
    })
    .await;
    get(client, "apps", "daemonsets", name).await.unwrap()
}

async fn pods(client: &Arc<dyn ApiClient>, selector: &str) -> Vec<Value> {
    client
        .list(
            &r("", "pods"),
            &ListOptions {
                label_selector: Some(selector.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items
}

fn image(w: &Value) -> &str {
    w["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_managed_defaults_run_on_the_nodes_and_are_installed_once() {
    let mut env = Env::start().await;
    let (subnets, node_role) = env
        .cluster(
            "prod",
            &[("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")],
        )
        .await;
    nodegroup(&env, &subnets, &node_role, 2).await;
    let c = env.client("prod").await;

    let aws_node = wait_daemons(&c, "aws-node", 2).await;
    assert_eq!(aws_node["status"]["desiredNumberScheduled"], 2);
    assert_eq!(
        image(&aws_node),
        "602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni:v1.19.6-eksbuild.1"
    );
    let kube_proxy = wait_daemons(&c, "kube-proxy", 2).await;
    assert_eq!(kube_proxy["status"]["numberAvailable"], 2);
    assert_eq!(
        image(&kube_proxy),
        "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/kube-proxy:v1.33.3-minimal-eksbuild.6"
    );
    assert_eq!(
        kube_proxy["metadata"]["labels"]["eks.amazonaws.com/component"],
        "kube-proxy"
    );
    let coredns = wait_available(&c, "deployments", "coredns").await;
    assert_eq!(coredns["status"]["availableReplicas"], 2);
    assert_eq!(
        coredns["spec"]["template"]["spec"]["priorityClassName"],
        "system-cluster-critical"
    );
    let svc = get(&c, "", "services", "kube-dns").await.unwrap();
    assert_eq!(svc["spec"]["clusterIP"], "10.100.0.10");
    for name in ["kube-proxy", "kube-proxy-config", "coredns"] {
        assert!(
            get(&c, "", "configmaps", name).await.is_some(),
            "ConfigMap {name}"
        );
    }
    let kubeconfig = get(&c, "", "configmaps", "kube-proxy").await.unwrap();
    assert!(
        kubeconfig["data"]["kubeconfig"]
            .as_str()
            .unwrap()
            .contains("server: https://127.0.0.1:")
    );

    // hostNetwork DaemonSet pods use the node's address, not an ENI secondary IP; CoreDNS pods
    // get VPC addresses of their own.
    for p in pods(&c, "k8s-app=aws-node").await {
        assert_eq!(
            p["status"]["podIP"], p["status"]["hostIP"],
            "{}",
            p["metadata"]["name"]
        );
    }
    let dns_pods = pods(&c, "k8s-app=kube-dns").await;
    assert_eq!(dns_pods.len(), 2);
    for p in &dns_pods {
        assert_ne!(p["status"]["podIP"], p["status"]["hostIP"]);
        assert_eq!(p["status"]["phase"], "Running");
    }
    // The self-managed objects are not add-ons of the API.
    let listed = env
        .call("eks", "ListAddons", json!({"clusterName": "prod"}))
        .await;
    assert_eq!(listed["addons"], json!([]));

    // Deleted by the user, it stays deleted across a restart (EKS bootstraps once).
    c.delete(&r("apps", "deployments"), "coredns", &Default::default())
        .await
        .unwrap();
    env.restart().await;
    let c = env.client("prod").await;
    wait_available(&c, "daemonsets", "aws-node").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(get(&c, "apps", "deployments", "coredns").await.is_none());
    let ns = c
        .get(&ResourceRef::new("", "v1", "namespaces"), "kube-system")
        .await
        .unwrap();
    assert_eq!(
        ns["metadata"]["annotations"][skiff_eks::addons::BOOTSTRAPPED_ANNOTATION],
        "installed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_addons_follow_create_update_and_delete() {
    let env = Env::start().await;
    let (subnets, node_role) = env
        .cluster(
            "prod",
            &[("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")],
        )
        .await;
    let c = env.client("prod").await;
    wait_for("bootstrap", WAIT, || async {
        get(&c, "apps", "deployments", "coredns").await.is_some()
    })
    .await;

    // No nodes: the managed CoreDNS cannot get its replicas and reports it as EKS does.
    let created = env
        .call(
            "eks",
            "CreateAddon",
            json!({"clusterName": "prod", "addonName": "coredns", "resolveConflicts": "OVERWRITE",
                   "configurationValues": "{\"replicaCount\":3}"}),
        )
        .await;
    assert_eq!(created["addon"]["status"], "CREATING");
    let degraded = wait_addon(&env, "coredns", "DEGRADED").await;
    assert_eq!(
        degraded["health"]["issues"][0]["code"],
        "InsufficientNumberOfReplicas"
    );
    let d = get(&c, "apps", "deployments", "coredns").await.unwrap();
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(
        d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "EKS"
    );

    // Nodes arrive: the replicas run and the add-on turns ACTIVE.
    nodegroup(&env, &subnets, &node_role, 2).await;
    let active = wait_addon(&env, "coredns", "ACTIVE").await;
    assert_eq!(active["health"]["issues"], json!([]));
    assert_eq!(pods(&c, "k8s-app=kube-dns").await.len(), 3);

    // NONE against the self-managed CNI of another version: refused with the conflicts listed.
    env.call(
        "eks",
        "CreateAddon",
        json!({"clusterName": "prod", "addonName": "vpc-cni"}),
    )
    .await;
    let failed = wait_addon(&env, "vpc-cni", "CREATE_FAILED").await;
    let issue = &failed["health"]["issues"][0];
    assert_eq!(issue["code"], "ConfigurationConflict");
    let msg = issue["message"].as_str().unwrap();
    assert!(
        msg.contains(
            "DaemonSet.apps aws-node - .spec.template.spec.containers[name=\"aws-node\"].image"
        ),
        "{msg}"
    );
    let ds = get(&c, "apps", "daemonsets", "aws-node").await.unwrap();
    assert!(
        image(&ds).ends_with(":v1.19.6-eksbuild.1"),
        "nothing written"
    );
    // Deleting the failed add-on with preserve leaves the CNI alone.
    env.call(
        "eks",
        "DeleteAddon",
        json!({"clusterName": "prod", "addonName": "vpc-cni", "preserve": true}),
    )
    .await;
    wait_for("vpc-cni record gone", WAIT, || async {
        addon(&env, "vpc-cni").await.is_none()
    })
    .await;
    assert!(get(&c, "apps", "daemonsets", "aws-node").await.is_some());

    // PRESERVE keeps a user's change to the self-managed kube-proxy and still installs the rest.
    c.patch(
        &r("apps", "daemonsets"),
        "kube-proxy",
        PatchType::Strategic,
        json!({"spec": {"template": {"spec": {"containers": [{"name": "kube-proxy",
            "resources": {"requests": {"cpu": "200m"}}}]}}}}),
        &PatchOptions {
            field_manager: Some("kubectl-edit".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    env.call(
        "eks",
        "CreateAddon",
        json!({"clusterName": "prod", "addonName": "kube-proxy", "resolveConflicts": "PRESERVE"}),
    )
    .await;
    wait_addon(&env, "kube-proxy", "ACTIVE").await;
    let ds = get(&c, "apps", "daemonsets", "kube-proxy").await.unwrap();
    assert_eq!(
        ds["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "200m"
    );
    assert_eq!(
        ds["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "EKS"
    );

    // UpdateAddon: a new version rolls a new image out, and the update turns Successful.
    let update = env
        .call(
            "eks",
            "UpdateAddon",
            json!({"clusterName": "prod", "addonName": "coredns", "addonVersion": "v1.12.3-eksbuild.1"}),
        )
        .await;
    let id = update["update"]["id"].as_str().unwrap().to_string();
    wait_for("update Successful", WAIT, || async {
        let u = skiff_aws::eks::dispatch(
            &env.ctx,
            "DescribeUpdate",
            json!({"name": "prod", "updateId": id, "addonName": "coredns"}),
        )
        .await
        .unwrap();
        assert_ne!(u["update"]["status"], "Failed", "{u}");
        u["update"]["status"] == "Successful"
    })
    .await;
    assert_eq!(addon(&env, "coredns").await.unwrap()["status"], "ACTIVE");
    let d = get(&c, "apps", "deployments", "coredns").await.unwrap();
    assert!(
        image(&d).ends_with("/eks/coredns:v1.12.3-eksbuild.1"),
        "{}",
        image(&d)
    );
    // The configuration given at create time still holds.
    assert_eq!(d["spec"]["replicas"], 3);

    // DeleteAddon removes the objects, then the record.
    env.call(
        "eks",
        "DeleteAddon",
        json!({"clusterName": "prod", "addonName": "coredns"}),
    )
    .await;
    wait_for("coredns record gone", WAIT, || async {
        addon(&env, "coredns").await.is_none()
    })
    .await;
    assert!(get(&c, "apps", "deployments", "coredns").await.is_none());
    assert!(get(&c, "", "services", "kube-dns").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ebs_csi_addon_and_a_role_reach_the_cluster() {
    let env = Env::start().await;
    let (subnets, node_role) = env
        .cluster(
            "prod",
            &[("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")],
        )
        .await;
    nodegroup(&env, &subnets, &node_role, 2).await;
    let c = env.client("prod").await;
    let role = env
        .call(
            "iam",
            "CreateRole",
            json!({"RoleName": "ebs-csi", "AssumeRolePolicyDocument": json!({"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
                    "Action": ["sts:AssumeRole", "sts:TagSession"]}]}).to_string()}),
        )
        .await;
    let role = role["Role"]["Arn"].as_str().unwrap().to_string();
    env.call(
        "eks",
        "CreateAddon",
        json!({"clusterName": "prod", "addonName": "aws-ebs-csi-driver",
               "serviceAccountRoleArn": role,
               "configurationValues": "{\"controller\":{\"replicaCount\":1}}"}),
    )
    .await;
    wait_addon(&env, "aws-ebs-csi-driver", "ACTIVE").await;
    let sa = get(&c, "", "serviceaccounts", "ebs-csi-controller-sa")
        .await
        .unwrap();
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        role
    );
    let d = wait_available(&c, "deployments", "ebs-csi-controller").await;
    assert_eq!(d["spec"]["replicas"], 1);
    let ds = wait_daemons(&c, "ebs-csi-node", 2).await;
    assert_eq!(ds["status"]["numberAvailable"], 2);
    // A bad document fails the call itself.
    let bad = skiff_aws::eks::dispatch(
        &env.ctx,
        "CreateAddon",
        json!({"clusterName": "prod", "addonName": "eks-pod-identity-agent",
               "configurationValues": "{\"replicaCount\": 2}"}),
    )
    .await
    .unwrap_err();
    assert_eq!(bad.code, "InvalidParameterException");
}
