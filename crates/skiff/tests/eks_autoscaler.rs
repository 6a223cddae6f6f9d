//! End-to-end: the built-in Cluster Autoscaler (issue 6) with the real aws CLI and kubectl. A
//! nodegroup of t3.medium (min 1, max 4, desired 1) and a Deployment of 6 pods asking 1 CPU each:
//! the group grows to its max (TriggeredScaleUp events, `describe-scaling-activities` shows the
//! launches, four Nodes, four pods Running), the two left Pending say NotTriggerScaleUp, and
//! `kubectl describe cm cluster-autoscaler-status` shows the sizes. With the Deployment at zero and
//! the group's `scaledownunneededtime` tag at 1 s, the extra nodes are drained and terminated back
//! to the min.

mod support;

use serde_json::Value;
use support::{Skiff, json, kubectl, ok, role, text, wait};

fn pods(kc: &std::path::Path, selector: &str) -> Vec<Value> {
    let out = ok(kubectl(kc, &["get", "pods", "-l", selector, "-o", "json"]));
    let v: Value = serde_json::from_str(&out).unwrap();
    v["items"].as_array().unwrap().clone()
}

fn phase_count(kc: &std::path::Path, selector: &str, phase: &str) -> usize {
    pods(kc, selector)
        .iter()
        .filter(|p| p["status"]["phase"] == phase)
        .count()
}

fn node_count(kc: &std::path::Path) -> usize {
    let out = ok(kubectl(kc, &["get", "nodes", "-o", "json"]));
    let v: Value = serde_json::from_str(&out).unwrap();
    v["items"].as_array().unwrap().len()
}

fn events(kc: &std::path::Path, reason: &str) -> Vec<Value> {
    let out = ok(kubectl(
        kc,
        &[
            "get",
            "events",
            "-A",
            "--field-selector",
            &format!("reason={reason}"),
            "-o",
            "json",
        ],
    ));
    let v: Value = serde_json::from_str(&out).unwrap();
    v["items"].as_array().unwrap().clone()
}

fn desired(skiff: &Skiff, asg: &str) -> i64 {
    text(
        skiff,
        &[
            "autoscaling",
            "describe-auto-scaling-groups",
            "--auto-scaling-group-names",
            asg,
            "--query",
            "AutoScalingGroups[0].DesiredCapacity",
            "--output",
            "text",
        ],
    )
    .parse()
    .unwrap()
}

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: burst
spec:
  replicas: 6
  selector:
    matchLabels: {app: burst}
  template:
    metadata:
      labels: {app: burst}
    spec:
      containers:
      - name: c
        image: public.ecr.aws/nginx/nginx:latest
        resources:
          requests: {cpu: "1", memory: 128Mi}
"#;

#[test]
fn pending_pods_grow_the_nodegroup_and_idle_nodes_go() {
    let skiff = Skiff::start(&[]);
    let vpc = text(
        &skiff,
        &[
            "ec2",
            "create-vpc",
            "--cidr-block",
            "10.0.0.0/16",
            "--query",
            "Vpc.VpcId",
            "--output",
            "text",
        ],
    );
    let mut subnets = Vec::new();
    for (cidr, az) in [("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")] {
        subnets.push(text(
            &skiff,
            &[
                "ec2",
                "create-subnet",
                "--vpc-id",
                &vpc,
                "--cidr-block",
                cidr,
                "--availability-zone",
                az,
                "--query",
                "Subnet.SubnetId",
                "--output",
                "text",
            ],
        ));
    }
    let cluster_role = role(&skiff, "ca-cluster", "eks.amazonaws.com");
    let node_role = role(&skiff, "ca-node", "ec2.amazonaws.com");
    ok(skiff.aws(&[
        "eks",
        "create-cluster",
        "--name",
        "ca",
        "--role-arn",
        &cluster_role,
        "--resources-vpc-config",
        &format!("subnetIds={},{}", subnets[0], subnets[1]),
    ]));
    ok(skiff.aws(&["eks", "wait", "cluster-active", "--name", "ca"]));
    ok(skiff.aws(&[
        "eks",
        "create-nodegroup",
        "--cluster-name",
        "ca",
        "--nodegroup-name",
        "ng",
        "--node-role",
        &node_role,
        "--subnets",
        &subnets[0],
        &subnets[1],
        "--instance-types",
        "t3.medium",
        "--scaling-config",
        "minSize=1,maxSize=4,desiredSize=1",
    ]));
    ok(skiff.aws(&[
        "eks",
        "wait",
        "nodegroup-active",
        "--cluster-name",
        "ca",
        "--nodegroup-name",
        "ng",
    ]));
    let asg = text(
        &skiff,
        &[
            "eks",
            "describe-nodegroup",
            "--cluster-name",
            "ca",
            "--nodegroup-name",
            "ng",
            "--query",
            "nodegroup.resources.autoScalingGroups[0].name",
            "--output",
            "text",
        ],
    );
    let kc = skiff.kubeconfig("ca");
    // The autoscaler's flags, as its Deployment's command line would carry them.
    ok(kubectl(
        &kc,
        &[
            "-n",
            "kube-system",
            "create",
            "configmap",
            "cluster-autoscaler-config",
            "--from-literal=scan-interval=500ms",
            "--from-literal=scale-down-delay-after-add=1s",
            "--from-literal=scale-down-delay-after-failure=1s",
        ],
    ));
    let manifest = std::env::temp_dir().join(format!("skiff-ca-{}.yaml", std::process::id()));
    std::fs::write(&manifest, DEPLOYMENT).unwrap();
    ok(kubectl(&kc, &["apply", "-f", manifest.to_str().unwrap()]));

    wait("4 burst pods Running", || {
        phase_count(&kc, "app=burst", "Running") == 4
    });
    assert_eq!(desired(&skiff, &asg), 4);
    assert_eq!(node_count(&kc), 4);
    let activities = json(
        &skiff,
        &[
            "autoscaling",
            "describe-scaling-activities",
            "--auto-scaling-group-name",
            &asg,
        ],
    );
    let launches = activities["Activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["Description"]
                .as_str()
                .unwrap()
                .starts_with("Launching a new EC2 instance")
        })
        .count();
    assert_eq!(launches, 4, "{activities}");
    let triggered = events(&kc, "TriggeredScaleUp");
    assert!(
        triggered.iter().any(|e| {
            let m = e["message"].as_str().unwrap();
            m.starts_with(&format!("pod triggered scale-up: [{{{asg} 1->"))
                && m.ends_with("(max: 4)}]")
        }),
        "{triggered:?}"
    );
    wait("NotTriggerScaleUp at max", || {
        events(&kc, "NotTriggerScaleUp")
            .iter()
            .any(|e| e["message"] == "pod didn't trigger scale-up: 1 max node group size reached")
    });
    assert_eq!(phase_count(&kc, "app=burst", "Pending"), 2);
    let described = ok(kubectl(
        &kc,
        &[
            "-n",
            "kube-system",
            "describe",
            "cm",
            "cluster-autoscaler-status",
        ],
    ));
    assert!(
        described.contains("autoscalerStatus: Running"),
        "{described}"
    );
    assert!(described.contains("cloudProviderTarget: 4"), "{described}");
    assert!(described.contains(&format!("name: {asg}")), "{described}");
    // A pending pod's describe carries both the scheduler's and the autoscaler's word.
    let pending = pods(&kc, "app=burst")
        .into_iter()
        .find(|p| p["status"]["phase"] == "Pending")
        .unwrap();
    let name = pending["metadata"]["name"].as_str().unwrap().to_string();
    let d = ok(kubectl(&kc, &["describe", "pod", &name]));
    assert!(
        d.contains("cluster-autoscaler") && d.contains("NotTriggerScaleUp"),
        "{d}"
    );

    // Scale-down to the min. CoreDNS's kube-system pods pin their nodes without a budget
    // (upstream's FAQ: give kube-system pods PDBs).
    ok(kubectl(
        &kc,
        &[
            "-n",
            "kube-system",
            "create",
            "poddisruptionbudget",
            "coredns",
            "--selector=k8s-app=kube-dns",
            "--max-unavailable=1",
        ],
    ));
    ok(skiff.aws(&[
        "autoscaling", "create-or-update-tags", "--tags",
        &format!(
            "ResourceId={asg},ResourceType=auto-scaling-group,Key=k8s.io/cluster-autoscaler/node-template/autoscaling-options/scaledownunneededtime,Value=1s,PropagateAtLaunch=false"
        ),
    ]));
    ok(kubectl(
        &kc,
        &["scale", "deployment", "burst", "--replicas=0"],
    ));
    wait("group back at min with one node", || {
        desired(&skiff, &asg) == 1 && node_count(&kc) == 1
    });
    let activities = json(
        &skiff,
        &[
            "autoscaling",
            "describe-scaling-activities",
            "--auto-scaling-group-name",
            &asg,
        ],
    );
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
    let removed = events(&kc, "ScaleDown");
    assert!(
        removed
            .iter()
            .filter(|e| e["message"] == "nodes removed by cluster autoscaler")
            .count()
            >= 3,
        "{removed:?}"
    );
    let _ = std::fs::remove_file(&manifest);
}
