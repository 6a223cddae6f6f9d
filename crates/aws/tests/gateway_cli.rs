//! The gateway driven by the real aws CLI (botocore signs, serialises and parses), on 127.0.0.1:0
//! with an embedded store in a temporary directory.

use std::path::PathBuf;
use std::sync::Arc;

use skiff_aws::credentials::{StoredCredential, credential_key};
use skiff_aws::gateway::{self, GatewayConfig, RunningGateway};
use skiff_store::{Op, Precondition, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Harness {
    gw: Option<RunningGateway>,
    store: Arc<dyn Store>,
    dir: PathBuf,
}

impl Harness {
    async fn start(any_credentials: bool) -> Self {
        let dir = std::env::temp_dir().join(format!("skiff-gateway-test-{}", uuid::Uuid::new_v4()));
        let store = skiff_store::open("embedded", &dir)
            .await
            .expect("store opens");
        let cfg = GatewayConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            any_credentials,
            ..GatewayConfig::default()
        };
        let gw = gateway::serve(store.clone(), cfg)
            .await
            .expect("gateway starts");
        Self {
            gw: Some(gw),
            store,
            dir,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.gw.as_ref().expect("running").local_addr)
    }

    /// Run `aws <args>` against the gateway with the given key pair; (success, stdout, stderr).
    async fn aws(
        &self,
        key: (&str, &str),
        token: Option<&str>,
        args: &[&str],
    ) -> (bool, String, String) {
        let mut cmd = tokio::process::Command::new("aws");
        cmd.args(["--endpoint-url", &self.url(), "--output", "json"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", key.0)
            .env("AWS_SECRET_ACCESS_KEY", key.1)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL");
        match token {
            Some(t) => cmd.env("AWS_SESSION_TOKEN", t),
            None => cmd.env_remove("AWS_SESSION_TOKEN"),
        };
        let out = cmd.output().await.expect("aws CLI runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A raw HTTP/1.1 exchange (for what the CLI cannot send); returns the status line and the rest.
    async fn raw(&self, request: &[u8]) -> (String, String) {
        let addr = self.gw.as_ref().expect("running").local_addr;
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connects");
        s.write_all(request).await.expect("writes");
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (status, rest) = text.split_once("\r\n").unwrap_or((&text, ""));
        (status.to_string(), rest.to_string())
    }

    async fn put_credential(&self, cred: &StoredCredential) {
        let value = serde_json::to_vec(cred).expect("json");
        self.store
            .txn(vec![Op::Put {
                key: credential_key(&cred.access_key_id),
                value: value.into(),
                precondition: Precondition::None,
            }])
            .await
            .expect("stored");
    }

    async fn stop(mut self) {
        if let Some(gw) = self.gw.take() {
            gw.shutdown().await.expect("clean shutdown");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const ROOT: (&str, &str) = ("test", "test");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_caller_identity_as_root() {
    let h = Harness::start(false).await;
    let (ok, out, err) = h.aws(ROOT, None, &["sts", "get-caller-identity"]).await;
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json output");
    assert_eq!(v["Account"], "000000000000");
    assert_eq!(v["Arn"], "arn:aws:iam::000000000000:root");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_unknown_key_and_unsigned_requests_are_refused() {
    let h = Harness::start(false).await;
    let (ok, _, err) = h
        .aws(
            ("test", "not-the-secret"),
            None,
            &["sts", "get-caller-identity"],
        )
        .await;
    assert!(!ok);
    assert!(err.contains("(SignatureDoesNotMatch)"), "{err}");
    let (ok, _, err) = h
        .aws(
            ("AKIAUNKNOWNKEY000000", "x"),
            None,
            &["sts", "get-caller-identity"],
        )
        .await;
    assert!(!ok);
    assert!(
        err.contains("(InvalidClientTokenId)")
            && err.contains("The security token included in the request is invalid."),
        "{err}"
    );
    // Json protocol words it its own way.
    let (ok, _, err) = h
        .aws(("AKIAUNKNOWNKEY000000", "x"), None, &["kms", "list-keys"])
        .await;
    assert!(!ok);
    assert!(err.contains("(UnrecognizedClientException)"), "{err}");
    let (ok, _, err) = h
        .aws(
            ROOT,
            None,
            &["sts", "get-caller-identity", "--no-sign-request"],
        )
        .await;
    assert!(!ok);
    assert!(err.contains("(MissingAuthenticationToken)"), "{err}");
    // AssumeRoleWithWebIdentity is unsigned by design: it reaches STS, which judges the token.
    let (ok, _, err) = h
        .aws(
            ROOT,
            None,
            &[
                "sts",
                "assume-role-with-web-identity",
                "--no-sign-request",
                "--role-arn",
                "arn:aws:iam::000000000000:role/r",
                "--role-session-name",
                "s1",
                "--web-identity-token",
                "not-a-jwt",
            ],
        )
        .await;
    assert!(!ok);
    assert!(
        err.contains("(InvalidIdentityToken)") || err.contains("(NotImplemented)"),
        "{err}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unimplemented_operation_and_model_validation() {
    let h = Harness::start(false).await;
    let (ok, _, err) = h.aws(ROOT, None, &["ec2", "describe-fpga-images"]).await;
    assert!(!ok);
    assert!(
        err.contains("(NotImplemented)") && err.contains("DescribeFpgaImages"),
        "{err}"
    );
    // The CLI checks lengths but not patterns: this one reaches us, and is answered as IAM would.
    let (ok, _, err) = h
        .aws(ROOT, None, &["iam", "get-role", "--role-name", "bad name!"])
        .await;
    assert!(!ok);
    assert!(
        err.contains("(ValidationError)")
            && err.contains("1 validation error detected: Value 'bad name!' at 'roleName' failed to satisfy constraint: Member must satisfy regular expression pattern"),
        "{err}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_credentials_sign_as_their_principal() {
    let h = Harness::start(false).await;
    let mut cred = StoredCredential {
        access_key_id: "ASIAGATEWAYTEST00001".into(),
        secret_access_key: "s3cr3t".into(),
        session_token: Some("session-token-1".into()),
        account_id: "000000000000".into(),
        arn: "arn:aws:sts::000000000000:assumed-role/deployer/ci".into(),
        user_id: "AROAGATEWAYTEST:ci".into(),
        expiration: Some("2999-01-01T00:00:00Z".into()),
        status: "Active".into(),
    };
    h.put_credential(&cred).await;
    let key = ("ASIAGATEWAYTEST00001", "s3cr3t");
    let (ok, out, err) = h
        .aws(
            key,
            Some("session-token-1"),
            &["sts", "get-caller-identity"],
        )
        .await;
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json output");
    assert_eq!(
        v["Arn"],
        "arn:aws:sts::000000000000:assumed-role/deployer/ci"
    );
    assert_eq!(v["UserId"], "AROAGATEWAYTEST:ci");
    let (ok, _, err) = h
        .aws(key, Some("another-token"), &["sts", "get-caller-identity"])
        .await;
    assert!(!ok && err.contains("(InvalidClientTokenId)"), "{err}");
    cred.expiration = Some("2001-01-01T00:00:00Z".into());
    h.put_credential(&cred).await;
    let (ok, _, err) = h
        .aws(
            key,
            Some("session-token-1"),
            &["sts", "get-caller-identity"],
        )
        .await;
    assert!(!ok && err.contains("(ExpiredToken)"), "{err}");
    h.stop().await;
}

/// Each protocol reaches its service's handler table and the handler's error comes back in the
/// protocol's form: the not-found error once the operation is implemented, `NotImplemented` before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_is_routed_and_its_errors_parsed() {
    let h = Harness::start(false).await;
    let calls: &[(&[&str], &str)] = &[
        (
            &["eks", "describe-cluster", "--name", "nope"],
            "ResourceNotFoundException",
        ),
        (
            &["route53", "get-hosted-zone", "--id", "ZNOPE"],
            "NoSuchHostedZone",
        ),
        (
            &["kms", "describe-key", "--key-id", "alias/nope"],
            "NotFoundException",
        ),
        (
            &["ecr", "describe-repositories", "--repository-names", "nope"],
            "RepositoryNotFoundException",
        ),
        (
            &["secretsmanager", "describe-secret", "--secret-id", "nope"],
            "ResourceNotFoundException",
        ),
        (
            &["elbv2", "describe-load-balancers", "--names", "nope"],
            "LoadBalancerNotFound",
        ),
        (&["iam", "get-role", "--role-name", "nope"], "NoSuchEntity"),
        (
            &["ec2", "describe-vpcs", "--vpc-ids", "vpc-0000000000000000f"],
            "InvalidVpcID.NotFound",
        ),
    ];
    for (args, not_found) in calls {
        let (ok, _, err) = h.aws(ROOT, None, args).await;
        assert!(!ok, "{args:?} succeeded");
        assert!(
            err.contains(&format!("({not_found})")) || err.contains("(NotImplemented)"),
            "{args:?}: {err}"
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_credentials_accepts_unknown_keys_as_root() {
    let h = Harness::start(true).await;
    let (ok, out, err) = h
        .aws(
            ("AKIAWHATEVER", "whatever"),
            None,
            &["sts", "get-caller-identity"],
        )
        .await;
    assert!(ok, "{err}");
    assert!(out.contains("arn:aws:iam::000000000000:root"), "{out}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_request_ids_and_body_limit() {
    let h = Harness::start(false).await;
    let (status, rest) = h
        .raw(b"GET /_skiff/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{rest}");
    assert!(rest.contains("\"status\":\"ok\""), "{rest}");
    // Unsigned query call: refused in the query protocol's XML, with a request id header.
    let body = "Action=GetCallerIdentity&Version=2011-06-15";
    let req = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, rest) = h.raw(req.as_bytes()).await;
    assert_eq!(status, "HTTP/1.1 403 Forbidden", "{rest}");
    assert!(
        rest.to_ascii_lowercase().contains("x-amzn-requestid: "),
        "{rest}"
    );
    assert!(
        rest.contains("<Code>MissingAuthenticationToken</Code>"),
        "{rest}"
    );
    let big = 3 * 1024 * 1024 + 1;
    let head =
        format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {big}\r\nConnection: close\r\n\r\n");
    let mut req = head.into_bytes();
    req.extend(std::iter::repeat_n(b'a', big));
    let (status, _) = h.raw(&req).await;
    assert_eq!(status, "HTTP/1.1 413 Payload Too Large");
    h.stop().await;
}
