//! End-to-end: EKS add-ons (issue 4, "Add-ons exist in-cluster as on EKS") with the real aws CLI
//! and kubectl. A new cluster with a nodegroup of 2 runs the self-managed `aws-node` and
//! `kube-proxy` DaemonSets (2/2) and `coredns` (2/2) in kube-system; `create-addon coredns
//! --resolve-conflicts OVERWRITE --configuration-values '{"replicaCount":3}'` → `wait addon-active`
//! → 3 CoreDNS pods; `update-addon` to another version changes the image; `delete-addon` removes
//! the workload; `describe-addon-versions` answers sensibly.

mod support;

use serde_json::Value;
use support::{Skiff, json, kubectl, ok, role, text, wait};

fn kube_json(kc: &std::path::Path, args: &[&str]) -> Value {
    let mut full = args.to_vec();
    full.extend(["-o", "json"]);
    serde_json::from_str(&ok(kubectl(kc, &full))).unwrap()
}

/// Running kube-system pods with `label`.
fn running(kc: &std::path::Path, label: &str) -> Vec<Value> {
    let v = kube_json(kc, &["-n", "kube-system", "get", "pods", "-l", label]);
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null()
        })
        .cloned()
        .collect()
}

#[test]
fn addons_with_aws_cli_and_kubectl() {
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
    ok(skiff.aws(&[
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
        "minSize=1,maxSize=3,desiredSize=2",
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
    let kc = skiff.kubeconfig("prod");

    // The self-managed defaults, scheduled like any other workload.
    wait("aws-node, kube-proxy 2/2 and coredns 2/2", || {
        let v = kube_json(&kc, &["-n", "kube-system", "get", "ds,deploy"]);
        let items = v["items"].as_array().unwrap();
        let ready = |kind: &str, name: &str, field: &str| {
            items.iter().any(|i| {
                i["kind"] == kind && i["metadata"]["name"] == name && i["status"][field] == 2
            })
        };
        ready("DaemonSet", "aws-node", "numberReady")
            && ready("DaemonSet", "kube-proxy", "numberReady")
            && ready("Deployment", "coredns", "readyReplicas")
    });
    let table = ok(kubectl(&kc, &["-n", "kube-system", "get", "ds,deploy,svc"]));
    assert!(table.contains("daemonset.apps/aws-node"), "{table}");
    assert!(table.contains("deployment.apps/coredns"), "{table}");
    assert!(table.contains("2/2"), "{table}");
    let svc = kube_json(&kc, &["-n", "kube-system", "get", "svc", "kube-dns"]);
    assert_eq!(svc["spec"]["clusterIP"], "10.100.0.10");
    assert_eq!(running(&kc, "k8s-app=kube-dns").len(), 2);
    assert_eq!(running(&kc, "k8s-app=aws-node").len(), 2);

    // describe-addon-versions for 1.33: every add-on, each with one default version.
    let versions = json(
        &skiff,
        &[
            "eks",
            "describe-addon-versions",
            "--kubernetes-version",
            "1.33",
        ],
    );
    let addons = versions["addons"].as_array().unwrap();
    for name in [
        "vpc-cni",
        "kube-proxy",
        "coredns",
        "aws-ebs-csi-driver",
        "eks-pod-identity-agent",
    ] {
        let a = addons
            .iter()
            .find(|a| a["addonName"] == name)
            .unwrap_or_else(|| panic!("{name}"));
        let defaults = a["addonVersions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["compatibilities"][0]["defaultVersion"] == true)
            .count();
        assert_eq!(defaults, 1, "{name}");
        for v in a["addonVersions"].as_array().unwrap() {
            assert_eq!(v["compatibilities"][0]["clusterVersion"], "1.33");
        }
    }
    let coredns_versions: Vec<&str> = addons.iter().find(|a| a["addonName"] == "coredns").unwrap()
        ["addonVersions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["addonVersion"].as_str().unwrap())
        .collect();
    assert!(coredns_versions.len() >= 2, "{coredns_versions:?}");

    // The managed CoreDNS takes over the self-managed one with 3 replicas.
    ok(skiff.aws(&[
        "eks",
        "create-addon",
        "--cluster-name",
        "prod",
        "--addon-name",
        "coredns",
        "--addon-version",
        "v1.12.1-eksbuild.2",
        "--resolve-conflicts",
        "OVERWRITE",
        "--configuration-values",
        r#"{"replicaCount":3}"#,
    ]));
    ok(skiff.aws(&[
        "eks",
        "wait",
        "addon-active",
        "--cluster-name",
        "prod",
        "--addon-name",
        "coredns",
    ]));
    wait("3 coredns pods", || {
        running(&kc, "k8s-app=kube-dns").len() == 3
    });
    let described = json(
        &skiff,
        &[
            "eks",
            "describe-addon",
            "--cluster-name",
            "prod",
            "--addon-name",
            "coredns",
        ],
    );
    assert_eq!(described["addon"]["status"], "ACTIVE");
    assert_eq!(
        described["addon"]["configurationValues"],
        r#"{"replicaCount":3}"#
    );

    // A document the schema refuses fails the call.
    let refused = support::fails(skiff.aws(&[
        "eks",
        "update-addon",
        "--cluster-name",
        "prod",
        "--addon-name",
        "coredns",
        "--configuration-values",
        r#"{"replicaCount":"many"}"#,
    ]));
    assert!(refused.contains("InvalidParameterException"), "{refused}");
    // Update to another version: the image changes and the rollout finishes.
    let update_id = text(
        &skiff,
        &[
            "eks",
            "update-addon",
            "--cluster-name",
            "prod",
            "--addon-name",
            "coredns",
            "--addon-version",
            "v1.12.3-eksbuild.1",
            "--query",
            "update.id",
            "--output",
            "text",
        ],
    );
    wait("update Successful", || {
        let u = json(
            &skiff,
            &[
                "eks",
                "describe-update",
                "--name",
                "prod",
                "--update-id",
                &update_id,
                "--addon-name",
                "coredns",
            ],
        );
        u["update"]["status"] == "Successful"
    });
    let deploy = kube_json(&kc, &["-n", "kube-system", "get", "deploy", "coredns"]);
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/coredns:v1.12.3-eksbuild.1"
    );
    wait("3 updated coredns pods", || {
        let pods = running(&kc, "k8s-app=kube-dns");
        pods.len() == 3
            && pods.iter().all(|p| {
                p["spec"]["containers"][0]["image"]
                    .as_str()
                    .is_some_and(|i| i.ends_with(":v1.12.3-eksbuild.1"))
            })
    });

    // Delete: the workload goes, then the add-on.
    ok(skiff.aws(&[
        "eks",
        "delete-addon",
        "--cluster-name",
        "prod",
        "--addon-name",
        "coredns",
    ]));
    ok(skiff.aws(&[
        "eks",
        "wait",
        "addon-deleted",
        "--cluster-name",
        "prod",
        "--addon-name",
        "coredns",
    ]));
    let gone = kubectl(&kc, &["-n", "kube-system", "get", "deploy", "coredns"]);
    assert!(!gone.status.success());
    let listed = json(&skiff, &["eks", "list-addons", "--cluster-name", "prod"]);
    assert_eq!(listed["addons"], serde_json::json!([]));
    // The self-managed DaemonSets were never touched.
    assert_eq!(running(&kc, "k8s-app=kube-proxy").len(), 2);
}
