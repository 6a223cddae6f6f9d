//! IAM through the real aws CLI against the gateway on 127.0.0.1:0 (embedded store in a temporary
//! directory): roles with trust policies, AWS managed policies, access keys signing requests,
//! IAM's error codes as the CLI reports them.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use skiff_aws::gateway::{self, GatewayConfig, RunningGateway};
use skiff_store::Store;

struct Gw {
    gw: Option<RunningGateway>,
    _store: Arc<dyn Store>,
    dir: PathBuf,
}

impl Gw {
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("skiff-iam-cli-{}", uuid::Uuid::new_v4()));
        let store = skiff_store::open("embedded", &dir).await.expect("store");
        let cfg = GatewayConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            ..GatewayConfig::default()
        };
        let gw = gateway::serve(store.clone(), cfg).await.expect("gateway");
        Gw {
            gw: Some(gw),
            _store: store,
            dir,
        }
    }

    /// `aws <args>` signed with `key` (+ session token); Ok(parsed stdout) or Err(stderr).
    async fn aws(&self, key: (&str, &str, Option<&str>), args: &[&str]) -> Result<Value, String> {
        let url = format!("http://{}", self.gw.as_ref().expect("running").local_addr);
        let mut cmd = tokio::process::Command::new("aws");
        cmd.args(["--endpoint-url", &url, "--output", "json"])
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
        match key.2 {
            Some(t) => cmd.env("AWS_SESSION_TOKEN", t),
            None => cmd.env_remove("AWS_SESSION_TOKEN"),
        };
        let out = cmd.output().await.expect("aws CLI runs");
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| format!("bad JSON {e}: {text}"))
    }

    async fn root(&self, args: &[&str]) -> Result<Value, String> {
        self.aws(("test", "test", None), args).await
    }

    async fn stop(mut self) {
        if let Some(gw) = self.gw.take() {
            gw.shutdown().await.expect("clean shutdown");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const ACCOUNT_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_policies_and_conflicts() {
    let gw = Gw::start().await;
    let role = gw
        .root(&[
            "iam",
            "create-role",
            "--role-name",
            "eks-cluster",
            "--assume-role-policy-document",
            TRUST,
        ])
        .await
        .expect("create-role");
    assert_eq!(
        role["Role"]["Arn"],
        "arn:aws:iam::000000000000:role/eks-cluster"
    );
    // botocore decodes the URL-encoded document back into JSON.
    assert_eq!(
        role["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "eks.amazonaws.com"
    );
    let policy = "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy";
    gw.root(&[
        "iam",
        "attach-role-policy",
        "--role-name",
        "eks-cluster",
        "--policy-arn",
        policy,
    ])
    .await
    .expect("attach");
    let attached = gw
        .root(&[
            "iam",
            "list-attached-role-policies",
            "--role-name",
            "eks-cluster",
        ])
        .await
        .expect("list attached");
    assert_eq!(attached["AttachedPolicies"][0]["PolicyArn"], policy);

    // The evaluator behind --enforce-iam, through the API.
    let sim = gw
        .root(&[
            "iam",
            "simulate-principal-policy",
            "--policy-source-arn",
            "arn:aws:iam::000000000000:role/eks-cluster",
            "--action-names",
            "elasticloadbalancing:CreateLoadBalancer",
            "iam:CreateUser",
        ])
        .await
        .expect("simulate-principal-policy");
    assert_eq!(sim["EvaluationResults"][0]["EvalDecision"], "allowed");
    assert_eq!(sim["EvaluationResults"][1]["EvalDecision"], "implicitDeny");

    let err = gw
        .root(&["iam", "delete-role", "--role-name", "eks-cluster"])
        .await
        .expect_err("delete-role refused");
    assert!(
        err.contains("(DeleteConflict)") && err.contains("must detach all policies first"),
        "{err}"
    );

    let err = gw
        .root(&[
            "iam",
            "create-policy",
            "--policy-name",
            "bad",
            "--policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
        ])
        .await
        .expect_err("malformed refused");
    assert!(
        err.contains("(MalformedPolicyDocument)")
            && err.contains("Policy statement must contain actions."),
        "{err}"
    );

    let err = gw
        .root(&["iam", "get-role", "--role-name", "nope"])
        .await
        .expect_err("missing");
    assert!(
        err.contains("(NoSuchEntity)") && err.contains("The role with name nope cannot be found."),
        "{err}"
    );

    let created = gw
        .root(&["iam", "create-policy", "--policy-name", "s3-read", "--policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#])
        .await
        .expect("create-policy");
    let arn = created["Policy"]["Arn"].as_str().expect("arn").to_string();
    let version = gw
        .root(&[
            "iam",
            "get-policy-version",
            "--policy-arn",
            &arn,
            "--version-id",
            "v1",
        ])
        .await
        .expect("get-policy-version");
    assert_eq!(
        version["PolicyVersion"]["Document"]["Statement"][0]["Action"],
        "s3:GetObject"
    );
    let listed = gw
        .root(&["iam", "list-policies", "--scope", "Local"])
        .await
        .expect("list-policies");
    assert_eq!(listed["Policies"][0]["Arn"], arn.as_str());

    gw.root(&[
        "iam",
        "detach-role-policy",
        "--role-name",
        "eks-cluster",
        "--policy-arn",
        policy,
    ])
    .await
    .expect("detach");
    gw.root(&["iam", "delete-role", "--role-name", "eks-cluster"])
        .await
        .expect("delete-role");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_keys_and_assumed_roles_sign_requests() {
    let gw = Gw::start().await;
    gw.root(&["iam", "create-user", "--user-name", "alice"])
        .await
        .expect("create-user");
    let key = gw
        .root(&["iam", "create-access-key", "--user-name", "alice"])
        .await
        .expect("create-access-key");
    let id = key["AccessKey"]["AccessKeyId"]
        .as_str()
        .expect("id")
        .to_string();
    let secret = key["AccessKey"]["SecretAccessKey"]
        .as_str()
        .expect("secret")
        .to_string();
    let me = gw
        .aws((&id, &secret, None), &["sts", "get-caller-identity"])
        .await
        .expect("caller identity with the user's key");
    assert_eq!(me["Arn"], "arn:aws:iam::000000000000:user/alice");
    assert_eq!(me["Account"], "000000000000");
    assert!(me["UserId"].as_str().expect("user id").starts_with("AIDA"));

    let err = gw
        .root(&["iam", "delete-user", "--user-name", "alice"])
        .await
        .expect_err("conflict");
    assert!(
        err.contains("(DeleteConflict)") && err.contains("must delete access keys first"),
        "{err}"
    );

    gw.root(&[
        "iam",
        "create-role",
        "--role-name",
        "admin",
        "--assume-role-policy-document",
        ACCOUNT_TRUST,
    ])
    .await
    .expect("create-role");
    let assumed = gw
        .aws(
            (&id, &secret, None),
            &[
                "sts",
                "assume-role",
                "--role-arn",
                "arn:aws:iam::000000000000:role/admin",
                "--role-session-name",
                "ci",
            ],
        )
        .await
        .expect("assume-role as alice (account trust)");
    let c = &assumed["Credentials"];
    let session = (
        c["AccessKeyId"].as_str().expect("id"),
        c["SecretAccessKey"].as_str().expect("secret"),
        Some(c["SessionToken"].as_str().expect("token")),
    );
    let me = gw
        .aws(session, &["sts", "get-caller-identity"])
        .await
        .expect("session identity");
    assert_eq!(me["Arn"], "arn:aws:sts::000000000000:assumed-role/admin/ci");
    let roles = gw
        .aws(session, &["iam", "list-roles"])
        .await
        .expect("session calls IAM");
    assert_eq!(roles["Roles"][0]["RoleName"], "admin");

    let err = gw
        .aws(
            (&id, &secret, None),
            &[
                "sts",
                "assume-role",
                "--role-arn",
                "arn:aws:iam::000000000000:role/missing",
                "--role-session-name",
                "ci",
            ],
        )
        .await
        .expect_err("no such role");
    assert!(err.contains("(AccessDenied)") && err.contains("User: arn:aws:iam::000000000000:user/alice is not authorized to perform: sts:AssumeRole"), "{err}");

    // A deleted key stops signing.
    gw.root(&[
        "iam",
        "delete-access-key",
        "--user-name",
        "alice",
        "--access-key-id",
        &id,
    ])
    .await
    .expect("delete-access-key");
    assert!(
        gw.aws((&id, &secret, None), &["sts", "get-caller-identity"])
            .await
            .is_err()
    );
    gw.root(&["iam", "delete-user", "--user-name", "alice"])
        .await
        .expect("delete-user");
    gw.stop().await;
}
