//! End-to-end (issue 6) with `skiff up`, the aws CLI and kubectl: a cluster created with
//! `--encryption-config` stores its Secrets sealed with a KMS data key (the data dir holds no
//! plaintext, the store value is a KMS v2 envelope), reads fail once the key is disabled; and a
//! Secrets Manager value reaches a synced Kubernetes Secret through a SecretProviderClass volume.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::{Skiff, fails, kubectl, ok, role, text, wait};

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

/// Every file under `dir`, concatenated (the whole data dir as an attacker would read it).
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_bytes(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.extend(bytes);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn secrets_encrypted_with_kms_and_mounted_from_secrets_manager() {
    let mut skiff = Skiff::start(&[]);
    let q = |s: &Skiff, args: &[&str]| text(s, args);
    let key_arn = q(
        &skiff,
        &[
            "kms",
            "create-key",
            "--description",
            "eks secrets",
            "--query",
            "KeyMetadata.Arn",
            "--output",
            "text",
        ],
    );
    let vpc = q(
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
        subnets.push(q(
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
    let cluster_role = role(&skiff, "sec-cluster", "eks.amazonaws.com");
    ok(skiff.aws(&[
        "eks",
        "create-cluster",
        "--name",
        "sec",
        "--role-arn",
        &cluster_role,
        "--resources-vpc-config",
        &format!("subnetIds={},{}", subnets[0], subnets[1]),
        "--encryption-config",
        &format!("resources=secrets,provider={{keyArn={key_arn}}}"),
    ]));
    ok(skiff.aws(&["eks", "wait", "cluster-active", "--name", "sec"]));
    let described = q(
        &skiff,
        &[
            "eks",
            "describe-cluster",
            "--name",
            "sec",
            "--query",
            "cluster.encryptionConfig[0].provider.keyArn",
            "--output",
            "text",
        ],
    );
    assert_eq!(described, key_arn);
    let kc = skiff.kubeconfig("sec");

    // Secrets round-trip through the API.
    ok(kubectl(
        &kc,
        &[
            "create",
            "secret",
            "generic",
            "s",
            "--from-literal=password=hunter2",
        ],
    ));
    let got = ok(kubectl(
        &kc,
        &["get", "secret", "s", "-o", "jsonpath={.data.password}"],
    ));
    assert_eq!(got.trim(), "aHVudGVyMg==");

    // Secrets Store CSI: a Secrets Manager value, an IRSA role allowed to read it, a class that
    // syncs it to a Secret, and a pod (bound to a node name: the driver acts on bound pods).
    ok(skiff.aws(&[
        "secretsmanager",
        "create-secret",
        "--name",
        "prod/api-key",
        "--secret-string",
        "s3cr3t-from-asm",
    ]));
    let reader = role(&skiff, "api-reader", "eks.amazonaws.com");
    ok(skiff.aws(&[
        "iam",
        "put-role-policy",
        "--role-name",
        "api-reader",
        "--policy-name",
        "read",
        "--policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#,
    ]));
    ok(kubectl(&kc, &["create", "serviceaccount", "api"]));
    ok(kubectl(
        &kc,
        &[
            "annotate",
            "serviceaccount",
            "api",
            &format!("eks.amazonaws.com/role-arn={reader}"),
        ],
    ));
    wait("SecretProviderClass CRD", || {
        kubectl(&kc, &["get", "secretproviderclasses"])
            .status
            .success()
    });
    ok(kubectl_apply(
        &kc,
        r#"apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: api
spec:
  provider: aws
  parameters:
    objects: |
      - objectName: "prod/api-key"
        objectType: "secretsmanager"
        objectAlias: apikey
  secretObjects:
  - secretName: api-key
    type: Opaque
    data:
    - objectName: apikey
      key: key
---
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  serviceAccountName: api
  nodeName: ip-10-0-1-9.ec2.internal
  containers:
  - name: app
    image: nginx
    volumeMounts:
    - name: secrets-store-inline
      mountPath: /mnt/secrets-store
      readOnly: true
  volumes:
  - name: secrets-store-inline
    csi:
      driver: secrets-store.csi.k8s.io
      readOnly: true
      volumeAttributes:
        secretProviderClass: api
"#,
    ));
    wait("synced Secret api-key", || {
        kubectl(&kc, &["get", "secret", "api-key"]).status.success()
    });
    let synced = ok(kubectl(
        &kc,
        &["get", "secret", "api-key", "-o", "jsonpath={.data.key}"],
    ));
    assert_eq!(synced.trim(), "czNjcjN0LWZyb20tYXNt");
    let label = ok(kubectl(
        &kc,
        &[
            "get",
            "secret",
            "api-key",
            "-o",
            "jsonpath={.metadata.labels.secrets-store\\.csi\\.k8s\\.io/managed}",
        ],
    ));
    assert_eq!(label.trim(), "true");
    let mounted = ok(kubectl(
        &kc,
        &[
            "get",
            "secretproviderclasspodstatus",
            "web-default-secrets-store-inline",
            "-o",
            "jsonpath={.status.mounted}",
        ],
    ));
    assert_eq!(mounted.trim(), "true");

    // A disabled key: Secret reads fail with an internal error naming KMS; enabled again, they work.
    ok(skiff.aws(&["kms", "disable-key", "--key-id", &key_arn]));
    let err = fails(kubectl(&kc, &["get", "secret", "s"]));
    assert!(
        err.contains("InternalError") || err.contains("Internal error"),
        "{err}"
    );
    assert!(err.contains("KMS DisabledException"), "{err}");
    ok(kubectl(&kc, &["get", "configmaps"]));
    ok(skiff.aws(&["kms", "enable-key", "--key-id", &key_arn]));
    ok(kubectl(&kc, &["get", "secret", "s"]));

    // At rest: stop skiff and read its data dir and store directly.
    skiff.kill9();
    let raw = all_bytes(&skiff.data_dir);
    assert!(contains(&raw, "k8s:enc:kms:v2:aws-encryption-provider:"));
    for plaintext in ["hunter2", "aHVudGVyMg==", "czNjcjN0LWZyb20tYXNt"] {
        assert!(
            !contains(&raw, plaintext),
            "{plaintext} found in the data dir"
        );
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let values = rt.block_on(async {
        let store = skiff_store::open("embedded", &skiff.data_dir)
            .await
            .unwrap();
        let all = store
            .list("/k8s/", skiff_store::ListOptions::default())
            .await
            .unwrap();
        all.items
            .into_iter()
            .filter(|kv| kv.key.contains("/core/secrets/default/"))
            .map(|kv| (kv.key, kv.value))
            .collect::<Vec<_>>()
    });
    assert!(
        values
            .iter()
            .any(|(k, _)| k.ends_with("/core/secrets/default/s"))
    );
    for (key, value) in &values {
        assert!(value.starts_with(b"k8s:enc:kms:v2:"), "{key} is not sealed");
    }

    // Restart: the values open again (data keys recovered with KMS Decrypt).
    let skiff = Skiff::start_in(&skiff.data_dir.clone(), &[]);
    let kc = skiff.kubeconfig("sec");
    wait("secret readable after restart", || {
        kubectl(&kc, &["get", "secret", "s"]).status.success()
    });
    let got = ok(kubectl(
        &kc,
        &["get", "secret", "s", "-o", "jsonpath={.data.password}"],
    ));
    assert_eq!(got.trim(), "aHVudGVyMg==");
}
