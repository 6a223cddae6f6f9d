//! End-to-end: EKS clusters come alive (issue "EKS clusters come alive", Clusters) with the real aws CLI
//! and kubectl: create-cluster → ACTIVE, update-kubeconfig + `aws eks get-token`, IAM principals mapped
//! (or refused), restart keeps the cluster, delete-cluster stops its API.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::{Skiff, fails, json, kubectl, ok, text};

/// kubectl with the AWS environment its `aws eks get-token` exec plugin inherits.
fn kubectl_as(skiff: &Skiff, kubeconfig: &Path, akid: &str, secret: &str, args: &[&str]) -> Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--request-timeout=20s")
        .args(args)
        .env("AWS_ENDPOINT_URL", &skiff.gateway)
        .env("AWS_ACCESS_KEY_ID", akid)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_PAGER", "")
        .output()
        .expect("kubectl is installed")
}

/// VPC, two subnets in two AZs, the cluster role; then `aws eks create-cluster --name <name>`.
/// Returns the time from the create call to `wait cluster-active` returning.
fn create_cluster(skiff: &Skiff, name: &str) -> Duration {
    let vpc = text(
        skiff,
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
            skiff,
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
    let role = text(
        skiff,
        &[
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
        ],
    );
    let start = Instant::now();
    let status = text(
        skiff,
        &[
            "eks",
            "create-cluster",
            "--name",
            name,
            "--role-arn",
            &role,
            "--resources-vpc-config",
            &format!("subnetIds={},{}", subnets[0], subnets[1]),
            "--query",
            "cluster.status",
            "--output",
            "text",
        ],
    );
    assert_eq!(status, "CREATING");
    ok(skiff.aws(&["eks", "wait", "cluster-active", "--name", name]));
    start.elapsed()
}

#[test]
fn eks_cluster_lifecycle_with_aws_cli_and_kubectl() {
    let mut skiff = Skiff::start(&[]);
    let took = create_cluster(&skiff, "prod");
    // The waiter polls every 30 s: returning at all within 30 s means ACTIVE on its first poll.
    assert!(
        took < Duration::from_secs(20),
        "create → ACTIVE took {took:?}"
    );
    let endpoint = text(
        &skiff,
        &[
            "eks",
            "describe-cluster",
            "--name",
            "prod",
            "--query",
            "cluster.endpoint",
            "--output",
            "text",
        ],
    );
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");
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

    let kc = skiff.data_dir.join("kubeconfig-prod-eks");
    ok(skiff.aws(&[
        "eks",
        "update-kubeconfig",
        "--name",
        "prod",
        "--kubeconfig",
        kc.to_str().unwrap(),
    ]));
    let ns = ok(kubectl_as(
        &skiff,
        &kc,
        "test",
        "test",
        &["get", "ns", "-o", "name"],
    ));
    assert!(ns.contains("namespace/default"), "{ns}");
    let who = ok(kubectl_as(
        &skiff,
        &kc,
        "test",
        "test",
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    ));
    assert_eq!(who, "arn:aws:iam::000000000000:root");

    // ServiceAccount tokens carry the EKS issuer, and its discovery is on the gateway.
    ok(kubectl_as(
        &skiff,
        &kc,
        "test",
        "test",
        &["create", "serviceaccount", "app"],
    ));
    let token = ok(kubectl_as(
        &skiff,
        &kc,
        "test",
        "test",
        &["create", "token", "app"],
    ));
    let claims = token.trim().split('.').nth(1).unwrap().to_string();
    let claims = String::from_utf8(base64_url_decode(&claims)).unwrap();
    assert!(
        claims.contains(&format!("\"iss\":\"{issuer}\"")),
        "{claims}"
    );
    let id = issuer.rsplit('/').next().unwrap();
    let disc = Command::new("curl")
        .args([
            "-sf",
            &format!(
                "{}/_skiff/oidc/us-east-1/id/{id}/.well-known/openid-configuration",
                skiff.gateway
            ),
        ])
        .output()
        .unwrap();
    let disc = ok(disc);
    assert!(disc.contains(&issuer), "{disc}");
    let keys = ok(Command::new("curl")
        .args([
            "-sf",
            &format!("{}/_skiff/oidc/us-east-1/id/{id}/keys", skiff.gateway),
        ])
        .output()
        .unwrap());
    assert!(keys.contains("\"kty\":\"RSA\""), "{keys}");

    // Another IAM user is not mapped: 401.
    ok(skiff.aws(&["iam", "create-user", "--user-name", "bob"]));
    let key = text(
        &skiff,
        &[
            "iam",
            "create-access-key",
            "--user-name",
            "bob",
            "--query",
            "[AccessKey.AccessKeyId,AccessKey.SecretAccessKey]",
            "--output",
            "text",
        ],
    );
    let (bob_id, bob_secret) = key.split_once(char::is_whitespace).unwrap();
    let bob_secret = bob_secret.trim();
    let err = fails(kubectl_as(
        &skiff,
        &kc,
        bob_id,
        bob_secret,
        &["get", "pods"],
    ));
    assert!(err.contains("You must be logged in to the server"), "{err}");
    // A wrong secret is refused too.
    let err = fails(kubectl_as(
        &skiff,
        &kc,
        bob_id,
        "not-the-secret",
        &["get", "pods"],
    ));
    assert!(err.contains("You must be logged in to the server"), "{err}");

    // An access entry with the view policy (cluster scope): read, not write.
    let bob_arn = "arn:aws:iam::000000000000:user/bob";
    ok(skiff.aws(&[
        "eks",
        "create-access-entry",
        "--cluster-name",
        "prod",
        "--principal-arn",
        bob_arn,
    ]));
    ok(skiff.aws(&[
        "eks",
        "associate-access-policy",
        "--cluster-name",
        "prod",
        "--principal-arn",
        bob_arn,
        "--policy-arn",
        "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy",
        "--access-scope",
        "type=cluster",
    ]));
    ok(kubectl_as(
        &skiff,
        &kc,
        bob_id,
        bob_secret,
        &["get", "pods"],
    ));
    let err = fails(kubectl_as(
        &skiff,
        &kc,
        bob_id,
        bob_secret,
        &["delete", "pod", "web"],
    ));
    assert!(err.contains("Forbidden") && err.contains(bob_arn), "{err}");
    // Edit scoped to one namespace: writes there, nowhere else.
    ok(kubectl_as(
        &skiff,
        &kc,
        "test",
        "test",
        &["create", "namespace", "team"],
    ));
    ok(skiff.aws(&[
        "eks",
        "associate-access-policy",
        "--cluster-name",
        "prod",
        "--principal-arn",
        bob_arn,
        "--policy-arn",
        "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy",
        "--access-scope",
        "type=namespace,namespaces=team",
    ]));
    ok(kubectl_as(
        &skiff,
        &kc,
        bob_id,
        bob_secret,
        &["create", "configmap", "c", "-n", "team"],
    ));
    let err = fails(kubectl_as(
        &skiff,
        &kc,
        bob_id,
        bob_secret,
        &["create", "configmap", "c", "-n", "default"],
    ));
    assert!(err.to_lowercase().contains("forbidden"), "{err}");

    // Restart: the cluster stays ACTIVE, on the same endpoint, with its objects.
    ok(kubectl_as(
        &skiff,
        &kc,
        "test",
        "test",
        &["create", "namespace", "keepme"],
    ));
    skiff.kill9();
    let dir = skiff.data_dir.clone();
    let restarted = Skiff::start_in(&dir, &[]);
    let status = text(
        &restarted,
        &[
            "eks",
            "describe-cluster",
            "--name",
            "prod",
            "--query",
            "cluster.status",
            "--output",
            "text",
        ],
    );
    assert_eq!(status, "ACTIVE");
    ok(kubectl_as(
        &restarted,
        &kc,
        "test",
        "test",
        &["get", "ns", "keepme"],
    ));

    // Delete: the API stops answering.
    ok(restarted.aws(&["eks", "delete-cluster", "--name", "prod"]));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = kubectl_as(
            &restarted,
            &kc,
            "test",
            "test",
            &["get", "ns", "--request-timeout=2s"],
        );
        if !out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the API still answers after delete-cluster"
        );
        #[allow(
            clippy::disallowed_methods,
            reason = "a synchronous test thread, no runtime"
        )]
        std::thread::sleep(Duration::from_millis(100));
    }
    let err = fails(restarted.aws(&["eks", "describe-cluster", "--name", "prod"]));
    assert!(err.contains("ResourceNotFoundException"), "{err}");
    assert!(
        !dir.join("clusters/prod").exists(),
        "cluster files left behind"
    );
    drop(skiff);
}

fn base64_url_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c).expect("base64url") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// An OIDC identity provider associated with a cluster logs its users in: here the provider is another
/// Skiff cluster's service-account issuer (no network needed; an external issuer's keys are fetched
/// over HTTPS, covered by the eks crate's tests), its tokens minted with `kubectl create token`.
#[test]
fn oidc_identity_provider_tokens_log_in_and_rbac_applies() {
    let skiff = Skiff::start(&[]);
    create_cluster(&skiff, "idp");
    create_cluster(&skiff, "apps");
    let issuer = text(
        &skiff,
        &[
            "eks",
            "describe-cluster",
            "--name",
            "idp",
            "--query",
            "cluster.identity.oidc.issuer",
            "--output",
            "text",
        ],
    );
    let idp_admin = skiff.kubeconfig("idp");
    ok(kubectl(&idp_admin, &["create", "serviceaccount", "alice"]));
    let token = |audience: &str| {
        ok(kubectl(
            &idp_admin,
            &["create", "token", "alice", "--audience", audience],
        ))
        .trim()
        .to_string()
    };
    let good = token("apps-client");
    let wrong_audience = token("someone-else");

    // A token-only kubeconfig for cluster `apps`.
    let apps_admin = skiff.kubeconfig("apps");
    let view = |path: &str| {
        ok(kubectl(
            &apps_admin,
            &[
                "config",
                "view",
                "--raw",
                "--minify",
                "-o",
                &format!("jsonpath={path}"),
            ],
        ))
    };
    let (server, ca) = (
        view("{.clusters[0].cluster.server}"),
        view("{.clusters[0].cluster.certificate-authority-data}"),
    );
    let as_token = |t: &str, args: &[&str]| {
        let cfg = skiff.data_dir.join("token-kubeconfig");
        std::fs::write(
            &cfg,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: u\n  user:\n    token: {t}\ncontexts:\n- name: c\n  context: {{cluster: a, user: u}}\ncurrent-context: c\n"
            ),
        )
        .unwrap();
        kubectl(&cfg, args)
    };
    // Before the association the issuer means nothing to `apps`.
    let err = fails(as_token(&good, &["auth", "whoami"]));
    assert!(err.contains("Unauthorized"), "{err}");

    let update = json(
        &skiff,
        &[
            "eks",
            "associate-identity-provider-config",
            "--cluster-name",
            "apps",
            "--oidc",
            &format!(
                "identityProviderConfigName=corp,issuerUrl={issuer},clientId=apps-client,usernameClaim=sub,usernamePrefix=oidc:"
            ),
        ],
    );
    assert_eq!(update["update"]["type"], "AssociateIdentityProviderConfig");
    let who = ok(as_token(
        &good,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
        ],
    ));
    assert_eq!(
        who,
        r#"oidc:system:serviceaccount:default:alice ["system:authenticated"]"#
    );
    // Authenticated is not authorized: RBAC decides, as for any user.
    let err = fails(as_token(&good, &["get", "pods"]));
    assert!(
        err.contains(
            r#"User "oidc:system:serviceaccount:default:alice" cannot list resource "pods""#
        ),
        "{err}"
    );
    ok(kubectl(
        &apps_admin,
        &[
            "create",
            "clusterrolebinding",
            "alice-view",
            "--clusterrole",
            "view",
            "--user",
            "oidc:system:serviceaccount:default:alice",
        ],
    ));
    ok(as_token(&good, &["get", "pods", "-A"]));
    // A token for another client id is refused.
    let err = fails(as_token(&wrong_audience, &["get", "pods"]));
    assert!(err.contains("Unauthorized"), "{err}");
    // Disassociated: the provider's tokens stop working.
    ok(skiff.aws(&[
        "eks",
        "disassociate-identity-provider-config",
        "--cluster-name",
        "apps",
        "--identity-provider-config",
        "type=oidc,name=corp",
    ]));
    let err = fails(as_token(&good, &["get", "pods"]));
    assert!(err.contains("Unauthorized"), "{err}");
}
