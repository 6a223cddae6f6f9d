//! End-to-end: EKS on Fargate (issue 4) with the real aws CLI and kubectl: a Fargate profile for
//! namespace `serverless` → a Deployment of 2 there → 2 `fargate-ip-…` Nodes, pods Running with VPC
//! addresses that `aws ec2 describe-network-interfaces` shows as ENIs; deleting the Deployment
//! removes the Nodes and ENIs; delete-cluster is refused while the profile remains.

mod support;

use serde_json::Value;
use support::{Skiff, fails, json, kubectl, ok, role, text, wait};

fn fargate_nodes(kc: &std::path::Path) -> Vec<Value> {
    let out = ok(kubectl(
        kc,
        &[
            "get",
            "nodes",
            "-l",
            "eks.amazonaws.com/compute-type=fargate",
            "-o",
            "json",
        ],
    ));
    serde_json::from_str::<Value>(&out).unwrap()["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn fargate_profile_runs_pods_on_their_own_nodes() {
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
    let pod_role = role(&skiff, "prod-fargate", "eks-fargate-pods.amazonaws.com");
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
            "create-fargate-profile",
            "--cluster-name",
            "prod",
            "--fargate-profile-name",
            "fp",
            "--pod-execution-role-arn",
            &pod_role,
            "--subnets",
            &subnets[0],
            &subnets[1],
            "--selectors",
            "namespace=serverless",
            "--query",
            "fargateProfile.status",
            "--output",
            "text",
        ],
    );
    assert_eq!(status, "CREATING");
    wait("profile ACTIVE", || {
        text(
            &skiff,
            &[
                "eks",
                "describe-fargate-profile",
                "--cluster-name",
                "prod",
                "--fargate-profile-name",
                "fp",
                "--query",
                "fargateProfile.status",
                "--output",
                "text",
            ],
        ) == "ACTIVE"
    });

    let kc = skiff.kubeconfig("prod");
    ok(kubectl(&kc, &["create", "namespace", "serverless"]));
    ok(kubectl(
        &kc,
        &[
            "-n",
            "serverless",
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "--replicas=2",
        ],
    ));
    let mut pods = Vec::new();
    wait("2 Running pods on Fargate", || {
        let out = ok(kubectl(
            &kc,
            &["-n", "serverless", "get", "pods", "-o", "json"],
        ));
        pods = serde_json::from_str::<Value>(&out).unwrap()["items"]
            .as_array()
            .unwrap()
            .clone();
        pods.len() == 2
            && pods
                .iter()
                .all(|p| p["status"]["phase"] == "Running" && p["status"]["podIP"].is_string())
    });
    let nodes = fargate_nodes(&kc);
    assert_eq!(nodes.len(), 2);
    let enis = json(
        &skiff,
        &[
            "ec2",
            "describe-network-interfaces",
            "--filters",
            &format!("Name=vpc-id,Values={vpc}"),
        ],
    );
    for p in &pods {
        let ip = p["status"]["podIP"].as_str().unwrap();
        assert!(
            ip.starts_with("10.0.1.") || ip.starts_with("10.0.2."),
            "{ip}"
        );
        let node = p["spec"]["nodeName"].as_str().unwrap();
        assert_eq!(
            node,
            format!("fargate-ip-{}.ec2.internal", ip.replace('.', "-"))
        );
        assert_eq!(
            p["metadata"]["annotations"]["CapacityProvisioned"],
            "0.25vCPU 0.5GB"
        );
        assert!(
            enis["NetworkInterfaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["PrivateIpAddress"] == ip),
            "no ENI holds {ip}: {enis}"
        );
    }
    let wide = ok(kubectl(&kc, &["get", "nodes", "-o", "wide"]));
    assert!(wide.contains("fargate-ip-"), "{wide}");

    // delete-cluster waits for the profile to go.
    let refused = fails(skiff.aws(&["eks", "delete-cluster", "--name", "prod"]));
    assert!(refused.contains("ResourceInUseException"), "{refused}");

    ok(kubectl(
        &kc,
        &["-n", "serverless", "delete", "deployment", "web"],
    ));
    wait("Fargate nodes gone", || fargate_nodes(&kc).is_empty());
    wait("ENIs gone", || {
        let enis = json(
            &skiff,
            &[
                "ec2",
                "describe-network-interfaces",
                "--filters",
                "Name=tag-key,Values=eks:fargate-pod-uid",
            ],
        );
        enis["NetworkInterfaces"].as_array().unwrap().is_empty()
    });
    ok(skiff.aws(&[
        "eks",
        "delete-fargate-profile",
        "--cluster-name",
        "prod",
        "--fargate-profile-name",
        "fp",
    ]));
    ok(skiff.aws(&[
        "eks",
        "wait",
        "fargate-profile-deleted",
        "--cluster-name",
        "prod",
        "--fargate-profile-name",
        "fp",
    ]));
}
