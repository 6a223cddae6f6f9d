//! End-to-end: managed nodegroups become Nodes (issue 4, "Nodegroups and nodes") with the real aws
//! CLI and kubectl: create-nodegroup → `wait nodegroup-active` → `kubectl get nodes` shows one Node
//! per instance, in the subnets' addresses, with EKS's labels; AutoScaling and EC2 agree; scaling to 5
//! adds Nodes; delete-nodegroup removes them. And `skiff up --demo` makes its 3 nodes the same way;
//! pods scheduled onto them get VPC addresses from the nodes' interfaces, released on deletion.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Skiff, json, kubectl, ok, role, text};

fn nodes(kc: &std::path::Path) -> Vec<Value> {
    let out = ok(kubectl(kc, &["get", "nodes", "-o", "json"]));
    let v: Value = serde_json::from_str(&out).unwrap();
    v["items"].as_array().unwrap().clone()
}

#[allow(
    clippy::disallowed_methods,
    reason = "a plain test thread polling a child process"
)]
fn wait_nodes(kc: &std::path::Path, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let got = nodes(kc);
        if got.len() == n {
            return got;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "expected {n} nodes, have {}",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Pods matching `selector`, once `n` of them are Running with an IP.
#[allow(
    clippy::disallowed_methods,
    reason = "a plain test thread polling a child process"
)]
fn wait_running(kc: &std::path::Path, selector: &str, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let out = ok(kubectl(kc, &["get", "pods", "-l", selector, "-o", "json"]));
        let v: Value = serde_json::from_str(&out).unwrap();
        let items = v["items"].as_array().unwrap().clone();
        let running = items
            .iter()
            .filter(|p| p["status"]["phase"] == "Running" && p["status"]["podIP"].is_string())
            .count();
        if running == n && items.len() == n {
            return items;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "expected {n} Running pods, have:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn nodegroup_to_nodes_with_aws_cli_and_kubectl() {
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
    let cluster_role = role(&skiff, "prod-cluster", "eks.amazonaws.com");
    let node_role = role(&skiff, "prod-node", "ec2.amazonaws.com");
    ok(skiff.aws(&[
        "eks",
        "create-cluster",
        "--name",
        "prod",
        "--role-arn",
        &cluster_role,
        "--resources-vpc-config",
        &format!("subnetIds={},{}", subnets[0], subnets[1]),
    ]));
    ok(skiff.aws(&["eks", "wait", "cluster-active", "--name", "prod"]));
    let status = text(
        &skiff,
        &[
            "eks",
            "create-nodegroup",
            "--cluster-name",
            "prod",
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
            "minSize=1,maxSize=6,desiredSize=3",
            "--labels",
            "team=web",
            "--query",
            "nodegroup.status",
            "--output",
            "text",
        ],
    );
    assert_eq!(status, "CREATING");
    let waited = Instant::now();
    ok(skiff.aws(&[
        "eks",
        "wait",
        "nodegroup-active",
        "--cluster-name",
        "prod",
        "--nodegroup-name",
        "ng",
    ]));
    // The waiter polls every 30 s: returning sooner means ACTIVE on its first poll.
    assert!(waited.elapsed() < Duration::from_secs(20));

    eprintln!("nodegroup-active after {:?}", waited.elapsed());
    let kc = skiff.kubeconfig("prod");
    let wide = ok(kubectl(&kc, &["get", "nodes", "-o", "wide"]));
    assert_eq!(wide.lines().count(), 4, "{wide}");
    for line in wide.lines().skip(1) {
        assert!(line.contains(" Ready "), "{line}");
        assert!(
            line.contains(" 10.0.1.") || line.contains(" 10.0.2."),
            "INTERNAL-IP outside the subnets: {line}"
        );
    }
    let listed = nodes(&kc);
    assert_eq!(listed.len(), 3);
    for n in &listed {
        let l = &n["metadata"]["labels"];
        assert_eq!(l["eks.amazonaws.com/nodegroup"], "ng");
        assert_eq!(l["node.kubernetes.io/instance-type"], "t3.medium");
        assert_eq!(l["team"], "web");
        assert!(
            n["metadata"]["name"]
                .as_str()
                .unwrap()
                .ends_with(".ec2.internal")
        );
    }
    let provider_ids: BTreeSet<String> = listed
        .iter()
        .map(|n| {
            n["spec"]["providerID"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();

    // AutoScaling and EC2 tell the same story as the Nodes.
    let asg = text(
        &skiff,
        &[
            "eks",
            "describe-nodegroup",
            "--cluster-name",
            "prod",
            "--nodegroup-name",
            "ng",
            "--query",
            "nodegroup.resources.autoScalingGroups[0].name",
            "--output",
            "text",
        ],
    );
    let groups = json(
        &skiff,
        &[
            "autoscaling",
            "describe-auto-scaling-groups",
            "--auto-scaling-group-names",
            &asg,
        ],
    );
    let members: BTreeSet<String> = groups["AutoScalingGroups"][0]["Instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["InstanceId"].as_str().unwrap().to_string())
        .collect();
    let reservations = json(
        &skiff,
        &[
            "ec2",
            "describe-instances",
            "--filters",
            "Name=tag:eks:nodegroup-name,Values=ng",
            "Name=instance-state-name,Values=running",
        ],
    );
    let running: BTreeSet<String> = reservations["Reservations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["Instances"].as_array().unwrap().clone())
        .map(|i| i["InstanceId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(members, running);
    assert_eq!(members, provider_ids);

    // Scale to 5.
    ok(skiff.aws(&[
        "eks",
        "update-nodegroup-config",
        "--cluster-name",
        "prod",
        "--nodegroup-name",
        "ng",
        "--scaling-config",
        "desiredSize=5",
    ]));
    ok(skiff.aws(&[
        "eks",
        "wait",
        "nodegroup-active",
        "--cluster-name",
        "prod",
        "--nodegroup-name",
        "ng",
    ]));
    eprintln!("scaled to 5 after {:?}", waited.elapsed());
    wait_nodes(&kc, 5);

    // The cluster cannot go while it has a nodegroup.
    let refused = support::fails(skiff.aws(&["eks", "delete-cluster", "--name", "prod"]));
    assert!(
        refused.contains("ResourceInUseException")
            && refused.contains("Cluster has nodegroups attached"),
        "{refused}"
    );

    // Delete: the nodes go with the instances.
    ok(skiff.aws(&[
        "eks",
        "delete-nodegroup",
        "--cluster-name",
        "prod",
        "--nodegroup-name",
        "ng",
    ]));
    let deleting = Instant::now();
    ok(skiff.aws(&[
        "eks",
        "wait",
        "nodegroup-deleted",
        "--cluster-name",
        "prod",
        "--nodegroup-name",
        "ng",
    ]));
    eprintln!("delete-nodegroup waited {:?}", deleting.elapsed());
    wait_nodes(&kc, 0);
    let left = text(
        &skiff,
        &[
            "autoscaling",
            "describe-auto-scaling-groups",
            "--query",
            "length(AutoScalingGroups)",
        ],
    );
    assert_eq!(left, "0");
}

#[test]
fn demo_has_three_ready_nodes_and_a_restart_keeps_them() {
    let mut skiff = Skiff::start(&["--demo"]);
    let kc = skiff.kubeconfig("demo");
    let listed = wait_nodes(&kc, 3);
    let names: BTreeSet<String> = listed
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let zones: BTreeSet<&str> = listed
        .iter()
        .map(|n| {
            n["metadata"]["labels"]["topology.kubernetes.io/zone"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(zones.len(), 3, "one node per zone: {zones:?}");
    let ng = text(
        &skiff,
        &[
            "eks",
            "describe-nodegroup",
            "--cluster-name",
            "demo",
            "--nodegroup-name",
            "demo-ng",
            "--query",
            "nodegroup.status",
            "--output",
            "text",
        ],
    );
    assert_eq!(ng, "ACTIVE");

    // Pods schedule onto the nodes and get addresses from the nodes' interfaces (VPC CNI model).
    let manifest = skiff.data_dir.join("web.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 3\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx}]\n",
    )
    .unwrap();
    ok(kubectl(&kc, &["apply", "-f", manifest.to_str().unwrap()]));
    let pods = wait_running(&kc, "app=web", 3);
    for p in &pods {
        let ip = p["status"]["podIP"].as_str().unwrap();
        assert!(ip.starts_with("10.0."), "pod IP {ip} outside the VPC");
        assert!(names.contains(p["spec"]["nodeName"].as_str().unwrap()));
        let eni = json(
            &skiff,
            &[
                "ec2",
                "describe-network-interfaces",
                "--filters",
                &format!("Name=addresses.private-ip-address,Values={ip}"),
            ],
        );
        assert_eq!(
            eni["NetworkInterfaces"].as_array().unwrap().len(),
            1,
            "{ip} is not on an interface"
        );
    }

    // Scaling in gives the deleted pods' addresses back to the subnet.
    ok(kubectl(
        &kc,
        &["scale", "deployment", "web", "--replicas", "1"],
    ));
    let kept = wait_running(&kc, "app=web", 1);
    let kept_ip = kept[0]["status"]["podIP"].as_str().unwrap().to_string();
    for p in &pods {
        let ip = p["status"]["podIP"].as_str().unwrap();
        if ip == kept_ip {
            continue;
        }
        let eni = json(
            &skiff,
            &[
                "ec2",
                "describe-network-interfaces",
                "--filters",
                &format!("Name=addresses.private-ip-address,Values={ip}"),
            ],
        );
        assert_eq!(eni["NetworkInterfaces"], serde_json::json!([]), "{ip} kept");
    }

    skiff.kill9();
    let dir = skiff.data_dir.clone();
    let again = Skiff::start_in(&dir, &["--demo"]);
    let kc = again.kubeconfig("demo");
    let after: BTreeSet<String> = wait_nodes(&kc, 3)
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, after, "the same nodes, none twice");
    let vpcs = text(
        &again,
        &[
            "ec2",
            "describe-vpcs",
            "--filters",
            "Name=tag:Name,Values=skiff-demo",
            "--query",
            "length(Vpcs)",
        ],
    );
    assert_eq!(vpcs, "1");
    drop(skiff);
}
