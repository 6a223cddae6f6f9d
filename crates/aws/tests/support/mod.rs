//! Shared kit of the aws CLI tests: a gateway on 127.0.0.1:0 over a fresh embedded store, and the real
//! `aws` CLI pointed at it with the root test credentials.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the kit"
)]

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use skiff_aws::gateway::{self, GatewayConfig, RunningGateway};
use skiff_store::Store;

pub struct Gw {
    gw: Option<RunningGateway>,
    _store: Arc<dyn Store>,
    dir: PathBuf,
}

impl Gw {
    pub async fn start() -> Self {
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
    pub async fn aws(&self, args: &[&str]) -> Result<Value, String> {
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

    pub async fn stop(mut self) {
        if let Some(gw) = self.gw.take() {
            gw.shutdown().await.expect("clean shutdown");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
