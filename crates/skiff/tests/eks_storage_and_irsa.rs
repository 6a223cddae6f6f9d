//! End-to-end (issue 6) with `skiff up`, the aws CLI and kubectl: an EKS cluster's gp3 claim used
//! by a pod on a node becomes an EBS volume in the node's zone, in use by the node's instance, and
//! is deleted with the claim; `kubectl create token --audience sts.amazonaws.com` passes
//! `aws sts assume-role-with-web-identity` for the role trusting the cluster's OIDC provider, and
//! fails for another ServiceAccount or audience.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::{Skiff, fails, kubectl, ok, text, wait};

fn kubectl_apply(kc: &Path, yaml: &str) -> Output {
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kc)
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl is installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// VPC, subnets in us-east-1a/b, cluster role, ACTIVE cluster; returns the subnet ids.
fn create_cluster(skiff: &Skiff, name: &str) -> Vec<String> {
    let q = |args: &[&str]| text(skiff, args);
    let vpc = q(&[
        "ec2",
        "create-vpc",
        "--cidr-block",
        "10.0.0.0/16",
        "--query",
        "Vpc.VpcId",
        "--output",
        "text",
    ]);
    let mut subnets = Vec::new();
    for (cidr, az) in [("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")] {
        subnets.push(q(&[
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
        ]));
    }
    let role = q(&[
        "iam",
        "create-role",
        "--role-name",
        &format!("{name}-cluster"),
        "--assume-role-policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        "--query",
        "Role.Arn",
        "--output",
        "text",
    ]);
    q(&[
        "eks",
        "create-cluster",
        "--name",
        name,
        "--role-arn",
        &role,
        "--resources-vpc-config",
        &format!("subnetIds={},{}", subnets[0], subnets[1]),
    ]);
    ok(skiff.aws(&["eks", "wait", "cluster-active", "--name", name]));
    subnets
}

fn volume_field(skiff: &Skiff, pv: &str, query: &str) -> String {
    text(
        skiff,
        &[
            "ec2",
            "describe-volumes",
            "--filters",
            &format!("Name=tag:CSIVolumeName,Values={pv}"),
            "--query",
            query,
            "--output",
            "text",
        ],
    )
}

#[test]
fn ebs_volumes_and_irsa_with_aws_cli_and_kubectl() {
    let skiff = Skiff::start(&[]);
    let subnets = create_cluster(&skiff, "prod");
    let kc = skiff.kubeconfig("prod");

    // IRSA: the cluster's issuer as an IAM OIDC provider, a role trusting one ServiceAccount.
    let issuer = text(
        &skiff,
        &[
            "eks",
            "describe-cluster",
            "--name",
            "prod",
            "--query",
            "cluster.identity.oidc.issuer",
            "--output",
            "text",
        ],
    );
    let provider = text(
        &skiff,
        &[
            "iam",
            "create-open-id-connect-provider",
            "--url",
            &issuer,
            "--client-id-list",
            "sts.amazonaws.com",
            "--thumbprint-list",
            "9e99a48a9960b14926bb7f3b02e22da2b0ab7280",
            "--query",
            "OpenIDConnectProviderArn",
            "--output",
            "text",
        ],
    );
    let host = issuer.trim_start_matches("https://");
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"{provider}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"{host}:sub":"system:serviceaccount:default:s3-reader","{host}:aud":"sts.amazonaws.com"}}}}}}]}}"#
    );
    let role = text(
        &skiff,
        &[
            "iam",
            "create-role",
            "--role-name",
            "s3-reader",
            "--assume-role-policy-document",
            &trust,
            "--query",
            "Role.Arn",
            "--output",
            "text",
        ],
    );
    ok(kubectl(&kc, &["create", "serviceaccount", "s3-reader"]));
    ok(kubectl(&kc, &["create", "serviceaccount", "other"]));
    let token = |sa: &str, aud: &str| {
        ok(kubectl(&kc, &["create", "token", sa, "--audience", aud]))
            .trim()
            .to_string()
    };
    let assume = |tok: &str| {
        skiff.aws(&[
            "sts",
            "assume-role-with-web-identity",
            "--role-arn",
            &role,
            "--role-session-name",
            "pod",
            "--web-identity-token",
            tok,
            "--query",
            "AssumedRoleUser.Arn",
            "--output",
            "text",
        ])
    };
    let arn = ok(assume(&token("s3-reader", "sts.amazonaws.com")));
    assert_eq!(
        arn.trim(),
        "arn:aws:sts::000000000000:assumed-role/s3-reader/pod"
    );
    let err = fails(assume(&token("other", "sts.amazonaws.com")));
    assert!(err.contains("AccessDenied"), "{err}");
    let err = fails(assume(&token("s3-reader", "other.example.com")));
    assert!(err.contains("InvalidIdentityToken"), "{err}");

    // The pod identity webhook: a pod of the annotated ServiceAccount gets the IRSA env and the
    // projected token volume at creation; a pod of another ServiceAccount is left alone.
    ok(kubectl(
        &kc,
        &[
            "annotate",
            "serviceaccount",
            "s3-reader",
            &format!("eks.amazonaws.com/role-arn={role}"),
        ],
    ));
    ok(kubectl_apply(
        &kc,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: reader\nspec:\n  serviceAccountName: s3-reader\n  containers:\n  - name: app\n    image: amazon/aws-cli\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: plain\nspec:\n  serviceAccountName: other\n  containers:\n  - name: app\n    image: amazon/aws-cli\n",
    ));
    let env = ok(kubectl(
        &kc,
        &[
            "get",
            "pod",
            "reader",
            "-o",
            "jsonpath={range .spec.containers[0].env[*]}{.name}={.value}{\"\\n\"}{end}",
        ],
    ));
    assert!(env.contains(&format!("AWS_ROLE_ARN={role}")), "{env}");
    assert!(
        env.contains(
            "AWS_WEB_IDENTITY_TOKEN_FILE=/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
        ),
        "{env}"
    );
    assert!(env.contains("AWS_STS_REGIONAL_ENDPOINTS=regional"), "{env}");
    let audience = ok(kubectl(
        &kc,
        &[
            "get",
            "pod",
            "reader",
            "-o",
            "jsonpath={.spec.volumes[?(@.name==\"aws-iam-token\")].projected.sources[0].serviceAccountToken.audience}",
        ],
    ));
    assert_eq!(audience.trim(), "sts.amazonaws.com");
    let plain = ok(kubectl(
        &kc,
        &[
            "get",
            "pod",
            "plain",
            "-o",
            "jsonpath={.spec.containers[0].env}",
        ],
    ));
    assert!(!plain.contains("AWS_ROLE_ARN"), "{plain}");

    // EBS: a node of an instance in us-east-1b, a gp3 class, a claim and a pod on the node.
    let inst = text(
        &skiff,
        &[
            "ec2",
            "run-instances",
            "--image-id",
            "ami-0123456789abcdef0",
            "--instance-type",
            "t3.medium",
            "--subnet-id",
            &subnets[1],
            "--query",
            "Instances[0].InstanceId",
            "--output",
            "text",
        ],
    );
    ok(kubectl_apply(
        &kc,
        &format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n  labels:\n    topology.kubernetes.io/zone: us-east-1b\n    node.kubernetes.io/instance-type: t3.medium\nspec:\n  providerID: aws:///us-east-1b/{inst}\n"
        ),
    ));
    ok(kubectl_apply(
        &kc,
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: gp3\nprovisioner: ebs.csi.aws.com\nparameters:\n  type: gp3\nvolumeBindingMode: WaitForFirstConsumer\nreclaimPolicy: Delete\n---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\n  annotations:\n    volume.kubernetes.io/selected-node: n1\nspec:\n  storageClassName: gp3\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 4Gi\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: db\nspec:\n  nodeName: n1\n  containers:\n  - name: c\n    image: postgres\n  volumes:\n  - name: d\n    persistentVolumeClaim:\n      claimName: data\n",
    ));
    wait("claim bound", || {
        kubectl(
            &kc,
            &["get", "pvc", "data", "-o", "jsonpath={.status.phase}"],
        )
        .stdout
            == b"Bound"
    });
    let pv = ok(kubectl(
        &kc,
        &["get", "pvc", "data", "-o", "jsonpath={.spec.volumeName}"],
    ));
    wait("volume in use", || {
        volume_field(&skiff, &pv, "Volumes[0].State") == "in-use"
    });
    assert_eq!(
        volume_field(&skiff, &pv, "Volumes[0].AvailabilityZone"),
        "us-east-1b"
    );
    assert_eq!(volume_field(&skiff, &pv, "Volumes[0].Size"), "4");
    assert_eq!(
        volume_field(&skiff, &pv, "Volumes[0].Attachments[0].InstanceId"),
        inst
    );
    let csinode = ok(kubectl(
        &kc,
        &[
            "get",
            "csinode",
            "n1",
            "-o",
            "jsonpath={.spec.drivers[0].name}",
        ],
    ));
    assert_eq!(csinode, "ebs.csi.aws.com");

    ok(kubectl(
        &kc,
        &["delete", "pod", "db", "--grace-period=0", "--force"],
    ));
    ok(kubectl(&kc, &["delete", "pvc", "data", "--wait=false"]));
    wait("volume deleted", || {
        volume_field(&skiff, &pv, "length(Volumes)") == "0"
    });
}
