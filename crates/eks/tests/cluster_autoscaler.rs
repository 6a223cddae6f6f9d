//! Contract of the built-in Cluster Autoscaler (issue 6) against a real store and control plane:
//! pods left Unschedulable grow the nodegroup's Auto Scaling group through SetDesiredCapacity
//! (visible as scaling activities), never past its max, with `TriggeredScaleUp` /
//! `NotTriggerScaleUp` events; with the work gone, nodes unneeded for the group's
//! `scaledownunneededtime` tag are drained and terminated down to the min; the status ConfigMap
//! tells the sizes; a group at zero is grown from its launch template's instance type and the
//! nodegroup's labels, and a pod no node of the group could hold grows nothing.

mod nodegroups_support;

use std::time::Duration;

use nodegroups_support::{Env, wait_for};
use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, ListOptions, PatchOptions, ResourceRef, WriteOptions};
use skiff_k8s_core::patch::PatchType;

const T: Duration = Duration::from_secs(60);

fn configmaps() -> ResourceRef {
    ResourceRef::new("", "v1", "configmaps").in_namespace("kube-system")
}

fn deployments() -> ResourceRef {
    ResourceRef::new("apps", "v1", "deployments").in_namespace("default")
}

async fn configure(client: &dyn ApiClient, data: Value) {
    client
        .create(
            &configmaps(),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "cluster-autoscaler-config", "namespace": "kube-system"},
                   "data": data}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
}

async fn deployment(client: &dyn ApiClient, name: &str, replicas: i64, cpu: &str, extra: Value) {
    let mut spec = json!({"containers": [{"name": "c", "image": "nginx",
        "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]});
    if let Some(m) = extra.as_object() {
        for (k, v) in m {
            spec[k] = v.clone();
        }
    }
    client
        .create(
            &deployments(),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": name, "namespace": "default"},
                   "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                            "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
}

async fn pods_of(client: &dyn ApiClient, app: &str) -> Vec<Value> {
    client
        .list(
            &ResourceRef::new("", "v1", "pods").in_namespace("default"),
            &ListOptions {
                label_selector: Some(format!("app={app}")),
                ..ListOptions::default()
            },
        )
        .await
        .unwrap()
        .items
}

async fn events(client: &dyn ApiClient, reason: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for ns in ["default", "kube-system"] {
        let l = client
            .list(
                &ResourceRef::new("", "v1", "events").in_namespace(ns),
                &ListOptions::default(),
            )
            .await
            .unwrap();
        out.extend(l.items.into_iter().filter(|e| e["reason"] == reason));
    }
    out
}

async fn group(env: &Env, name: &str) -> Value {
    env.call(
        "autoscaling",
        "DescribeAutoScalingGroups",
        json!({"AutoScalingGroupNames": [name]}),
    )
    .await["AutoScalingGroups"][0]
        .clone()
}

async fn nodegroup(
    env: &Env,
    cluster: &str,
    ng: &str,
    (min, max, desired): (i64, i64, i64),
    labels: Value,
    taints: Value,
) -> String {
    let (subnets, node_role) = env
        .cluster(
            cluster,
            &[("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")],
        )
        .await;
    env.call(
        "eks",
        "CreateNodegroup",
        json!({"clusterName": cluster, "nodegroupName": ng, "nodeRole": node_role,
               "subnets": subnets, "instanceTypes": ["t3.medium"],
               "labels": labels, "taints": taints,
               "scalingConfig": {"minSize": min, "maxSize": max, "desiredSize": desired}}),
    )
    .await;
    let mut asg = String::new();
    for _ in 0..3000 {
        if let Some(n) = env.nodegroup(cluster, ng).await
            && n["status"] == "ACTIVE"
        {
            asg = n["resources"]["autoScalingGroups"][0]["name"]
                .as_str()
                .unwrap()
                .to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!asg.is_empty(), "nodegroup never became ACTIVE");
    asg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grows_for_unschedulable_pods_within_max_then_shrinks_to_min() {
    let env = Env::start().await;
    let asg = nodegroup(&env, "ca", "ng", (1, 4, 1), json!({}), json!([])).await;
    let client = env.client("ca").await;
    configure(
        &*client,
        // A drain that meets a spent budget (the other CoreDNS replica not Ready yet) fails; retry soon.
        json!({"scan-interval": "200ms", "scale-down-delay-after-add": "1s",
               "scale-down-delay-after-failure": "1s"}),
    )
    .await;
    deployment(&*client, "web", 6, "1", json!({})).await;

    // One 1-CPU pod per t3.medium (1930m allocatable): the group goes to its max of 4.
    let c = client.clone();
    wait_for("4 running web pods", T, || {
        let c = c.clone();
        async move {
            pods_of(&*c, "web")
                .await
                .iter()
                .filter(|p| p["status"]["phase"] == "Running")
                .count()
                == 4
        }
    })
    .await;
    let g = group(&env, &asg).await;
    assert_eq!(g["DesiredCapacity"], 4);
    assert_eq!(g["MaxSize"], 4);
    assert_eq!(env.nodes("ca").await.len(), 4);
    let activities = env
        .call(
            "autoscaling",
            "DescribeScalingActivities",
            json!({"AutoScalingGroupName": asg}),
        )
        .await;
    let launches: Vec<&Value> = activities["Activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["Description"]
                .as_str()
                .unwrap()
                .starts_with("Launching a new EC2 instance")
        })
        .collect();
    assert_eq!(launches.len(), 4, "{activities}");
    assert!(
        launches[0]["Cause"]
            .as_str()
            .unwrap()
            .contains("a user request explicitly set group desired capacity"),
        "{activities}"
    );
    // The ReplicaSet creates pods in batches, so the growth may come in more than one step,
    // each told to the pods it helps.
    let triggered = events(&*client, "TriggeredScaleUp").await;
    let prefix = format!("pod triggered scale-up: [{{{asg} ");
    assert!(
        triggered.iter().all(|e| {
            let m = e["message"].as_str().unwrap();
            m.starts_with(&prefix) && m.ends_with(" (max: 4)}]")
        }),
        "{triggered:?}"
    );
    assert!(
        triggered.iter().any(|e| e["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{prefix}1->"))),
        "{triggered:?}"
    );
    assert_eq!(triggered[0]["source"]["component"], "cluster-autoscaler");
    // The two left over are told why.
    let c = client.clone();
    wait_for("NotTriggerScaleUp", T, || {
        let c = c.clone();
        async move {
            events(&*c, "NotTriggerScaleUp").await.iter().any(|e| {
                e["message"] == "pod didn't trigger scale-up: 1 max node group size reached"
            })
        }
    })
    .await;
    let pending = pods_of(&*client, "web")
        .await
        .into_iter()
        .filter(|p| p["status"]["phase"] == "Pending")
        .count();
    assert_eq!(pending, 2);
    // The status ConfigMap as upstream writes it.
    let c = client.clone();
    wait_for("status shows the target", T, || {
        let c = c.clone();
        async move {
            c.get_opt(&configmaps(), "cluster-autoscaler-status")
                .await
                .unwrap()
                .is_some_and(|cm| {
                    cm["data"]["status"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("cloudProviderTarget: 4")
                })
        }
    })
    .await;
    let cm = client
        .get(&configmaps(), "cluster-autoscaler-status")
        .await
        .unwrap();
    let status = cm["data"]["status"].as_str().unwrap();
    assert!(status.contains("autoscalerStatus: Running"), "{status}");
    assert!(status.contains(&format!("  name: {asg}")), "{status}");
    assert!(
        status.contains("    maxSize: 4\n    minSize: 1\n"),
        "{status}"
    );

    // CoreDNS runs in kube-system, whose pods pin their node unless a budget says they may move
    // (upstream's FAQ: add PDBs for kube-system pods).
    client
        .create(
            &ResourceRef::new("policy", "v1", "poddisruptionbudgets").in_namespace("kube-system"),
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                   "metadata": {"name": "coredns", "namespace": "kube-system"},
                   "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"k8s-app": "kube-dns"}}}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    // Scale-down: one second of unneededness is enough for this group.
    env.call(
        "autoscaling",
        "CreateOrUpdateTags",
        json!({"Tags": [{"ResourceId": asg, "ResourceType": "auto-scaling-group",
            "Key": "k8s.io/cluster-autoscaler/node-template/autoscaling-options/scaledownunneededtime",
            "Value": "1s", "PropagateAtLaunch": false}]}),
    )
    .await;
    client
        .patch(
            &deployments(),
            "web",
            PatchType::Merge,
            json!({"spec": {"replicas": 0}}),
            &PatchOptions::default(),
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + T;
    loop {
        let g = group(&env, &asg).await;
        let nodes = env.nodes("ca").await;
        if g["DesiredCapacity"] == 1
            && g["Instances"].as_array().unwrap().len() == 1
            && nodes.len() == 1
        {
            break;
        }
        if std::time::Instant::now() > deadline {
            let cm = client
                .get(&configmaps(), "cluster-autoscaler-status")
                .await
                .unwrap();
            let all: Vec<(Value, Value, Value)> = client
                .list(&ResourceRef::new("", "v1", "pods"), &ListOptions::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|p| {
                    (
                        p["metadata"]["name"].clone(),
                        p["spec"]["nodeName"].clone(),
                        p["status"]["phase"].clone(),
                    )
                })
                .collect();
            let taints: Vec<Value> = nodes
                .iter()
                .map(|n| {
                    json!([
                        n["metadata"]["name"],
                        n["spec"]["taints"],
                        n["spec"]["unschedulable"]
                    ])
                })
                .collect();
            panic!(
                "group not back at min: desired {} instances {} nodes {}\n{}\npods {all:?}\ntaints {taints:?}\nevents {:?}",
                g["DesiredCapacity"],
                g["Instances"].as_array().unwrap().len(),
                nodes.len(),
                cm["data"]["status"].as_str().unwrap(),
                [
                    events(&*client, "ScaleDown").await,
                    events(&*client, "ScaleDownFailed").await
                ]
                .concat()
                .iter()
                .map(|e| e["message"].clone())
                .collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let activities = env
        .call(
            "autoscaling",
            "DescribeScalingActivities",
            json!({"AutoScalingGroupName": asg}),
        )
        .await;
    let terminations = activities["Activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["Description"]
                .as_str()
                .unwrap()
                .starts_with("Terminating EC2 instance")
        })
        .count();
    assert_eq!(terminations, 3, "{activities}");
    let removed = events(&*client, "ScaleDown").await;
    assert!(
        removed
            .iter()
            .filter(|e| e["message"] == "nodes removed by cluster autoscaler")
            .count()
            >= 3,
        "{removed:?}"
    );
    // Never beyond max, never below min.
    let g = group(&env, &asg).await;
    assert_eq!(g["DesiredCapacity"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scales_from_zero_with_the_template_and_refuses_unfit_pods() {
    let env = Env::start().await;
    // Tainted, so the cluster's own CoreDNS pods (which do not tolerate it) cannot grow it.
    let asg = nodegroup(
        &env,
        "zero",
        "ng",
        (0, 2, 0),
        json!({"team": "a"}),
        json!([{"key": "dedicated", "value": "batch", "effect": "NO_SCHEDULE"}]),
    )
    .await;
    let client = env.client("zero").await;
    configure(&*client, json!({"scan-interval": "200ms"})).await;
    let tolerate = json!([{"key": "dedicated", "operator": "Equal", "value": "batch", "effect": "NoSchedule"}]);
    // More CPU than a t3.medium has: nothing grows.
    deployment(&*client, "huge", 1, "3", json!({"tolerations": tolerate})).await;
    let c = client.clone();
    wait_for("NotTriggerScaleUp for the huge pod and CoreDNS", T, || {
        let c = c.clone();
        async move {
            let ev = events(&*c, "NotTriggerScaleUp").await;
            let said = |m: &str| ev.iter().any(|e| e["message"] == m);
            said("pod didn't trigger scale-up: 1 Insufficient cpu")
                && said("pod didn't trigger scale-up: 1 node(s) had untolerated taint {dedicated: batch}")
        }
    })
    .await;
    assert_eq!(group(&env, &asg).await["DesiredCapacity"], 0);
    // A pod that fits the template built from the launch template (t3.medium) and the
    // nodegroup's label and taint grows the group from zero.
    deployment(
        &*client,
        "small",
        1,
        "500m",
        json!({"tolerations": tolerate,
               "nodeSelector": {"team": "a", "node.kubernetes.io/instance-type": "t3.medium"}}),
    )
    .await;
    let c = client.clone();
    wait_for("the small pod running", T, || {
        let c = c.clone();
        async move {
            pods_of(&*c, "small")
                .await
                .iter()
                .any(|p| p["status"]["phase"] == "Running")
        }
    })
    .await;
    let want = format!("pod triggered scale-up: [{{{asg} 0->1 (max: 2)}}]");
    let triggered = events(&*client, "TriggeredScaleUp").await;
    assert!(
        triggered.iter().any(|e| e["message"] == want.as_str()),
        "{triggered:?}"
    );
    assert_eq!(group(&env, &asg).await["DesiredCapacity"], 1);
}
