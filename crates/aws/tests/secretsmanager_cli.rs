//! Secrets Manager through the real aws CLI against the gateway on 127.0.0.1:0: create, get, put
//! (staging labels move), list, delete with a recovery window, restore.

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
        let dir = std::env::temp_dir().join(format!("skiff-awsrest-cli-{}", uuid::Uuid::new_v4()));
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

    /// `aws <args>` as the root test credentials; Ok(parsed stdout) or Err(stderr).
    async fn aws(&self, args: &[&str]) -> Result<Value, String> {
        let url = format!("http://{}", self.gw.as_ref().expect("running").local_addr);
        let out = tokio::process::Command::new("aws")
            .args(["--endpoint-url", &url, "--output", "json"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_SESSION_TOKEN")
            .output()
            .await
            .expect("aws CLI runs");
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| format!("bad JSON {e}: {text}"))
    }

    async fn stop(mut self) {
        if let Some(gw) = self.gw.take() {
            gw.shutdown().await.expect("clean shutdown");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_put_list_delete_restore() {
    let gw = Gw::start().await;
    let created = gw
        .aws(&[
            "secretsmanager",
            "create-secret",
            "--name",
            "app/db",
            "--secret-string",
            "s3cr3t",
            "--tags",
            "Key=team,Value=core",
        ])
        .await
        .expect("create-secret");
    let arn = created["ARN"].as_str().expect("arn").to_string();
    assert!(
        arn.starts_with("arn:aws:secretsmanager:us-east-1:000000000000:secret:app/db-"),
        "{arn}"
    );
    let err = gw
        .aws(&[
            "secretsmanager",
            "create-secret",
            "--name",
            "app/db",
            "--secret-string",
            "x",
        ])
        .await
        .expect_err("duplicate refused");
    assert!(err.contains("(ResourceExistsException)"), "{err}");

    let got = gw
        .aws(&["secretsmanager", "get-secret-value", "--secret-id", &arn])
        .await
        .expect("get");
    assert_eq!(got["SecretString"], "s3cr3t");
    assert_eq!(got["VersionStages"], serde_json::json!(["AWSCURRENT"]));
    gw.aws(&[
        "secretsmanager",
        "put-secret-value",
        "--secret-id",
        "app/db",
        "--secret-string",
        "n3w",
    ])
    .await
    .expect("put");
    let cur = gw
        .aws(&[
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            "app/db",
        ])
        .await
        .expect("get");
    assert_eq!(cur["SecretString"], "n3w");
    let prev = gw
        .aws(&[
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            "app/db",
            "--version-stage",
            "AWSPREVIOUS",
        ])
        .await
        .expect("get previous");
    assert_eq!(prev["SecretString"], "s3cr3t");

    let listed = gw
        .aws(&[
            "secretsmanager",
            "list-secrets",
            "--filters",
            "Key=tag-key,Values=team",
        ])
        .await
        .expect("list");
    assert_eq!(listed["SecretList"][0]["Name"], "app/db");
    assert_eq!(listed["SecretList"][0]["Tags"][0]["Value"], "core");

    let deleted = gw
        .aws(&[
            "secretsmanager",
            "delete-secret",
            "--secret-id",
            "app/db",
            "--recovery-window-in-days",
            "7",
        ])
        .await
        .expect("delete");
    assert!(deleted["DeletionDate"].is_number() || deleted["DeletionDate"].is_string());
    let err = gw
        .aws(&[
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            "app/db",
        ])
        .await
        .expect_err("deleted secret refused");
    assert!(
        err.contains("(InvalidRequestException)") && err.contains("marked for deletion"),
        "{err}"
    );
    let described = gw
        .aws(&["secretsmanager", "describe-secret", "--secret-id", "app/db"])
        .await
        .expect("describe");
    assert!(described.get("DeletedDate").is_some());
    gw.aws(&["secretsmanager", "restore-secret", "--secret-id", "app/db"])
        .await
        .expect("restore");
    let back = gw
        .aws(&[
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            "app/db",
        ])
        .await
        .expect("get");
    assert_eq!(back["SecretString"], "n3w");
    gw.aws(&[
        "secretsmanager",
        "delete-secret",
        "--secret-id",
        "app/db",
        "--force-delete-without-recovery",
    ])
    .await
    .expect("force delete");
    let err = gw
        .aws(&["secretsmanager", "describe-secret", "--secret-id", "app/db"])
        .await
        .expect_err("gone");
    assert!(
        err.contains("(ResourceNotFoundException)")
            && err.contains("Secrets Manager can't find the specified secret."),
        "{err}"
    );
    gw.stop().await;
}
