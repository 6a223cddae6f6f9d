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
    pub _store: Arc<dyn Store>,
    dir: PathBuf,
}

impl Gw {
    pub async fn start() -> Self {
        Self::start_with(GatewayConfig::default()).await
    }

    /// A gateway with `cfg` (its `listen` is replaced by a free loopback port).
    pub async fn start_with(cfg: GatewayConfig) -> Self {
        let dir = std::env::temp_dir().join(format!("skiff-aws-cli-{}", uuid::Uuid::new_v4()));
        let store = skiff_store::open("embedded", &dir).await.expect("store");
        let cfg = GatewayConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            ..cfg
        };
        let gw = gateway::serve(store.clone(), cfg).await.expect("gateway");
        Gw {
            gw: Some(gw),
            _store: store,
            dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.gw.as_ref().expect("running").local_addr)
    }

    /// `aws <args>`: Ok(parsed stdout, or the raw text for `--output text`) or Err(stderr).
    pub async fn aws(&self, args: &[&str]) -> Result<Value, String> {
        self.aws_as(("test", "test"), args).await
    }

    /// `aws <args>` signed with another (access key id, secret) pair.
    pub async fn aws_as(&self, keys: (&str, &str), args: &[&str]) -> Result<Value, String> {
        self.aws_session((keys.0, keys.1, None), args).await
    }

    /// `aws <args>` signed with (access key id, secret, session token).
    pub async fn aws_session(
        &self,
        key: (&str, &str, Option<&str>),
        args: &[&str],
    ) -> Result<Value, String> {
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
        Ok(serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.trim().to_string())))
    }

    pub async fn ok(&self, args: &[&str]) -> Value {
        match self.aws(args).await {
            Ok(v) => v,
            Err(e) => panic!("aws {args:?} failed: {e}"),
        }
    }

    pub async fn err(&self, args: &[&str]) -> String {
        match self.aws(args).await {
            Ok(v) => panic!("aws {args:?} unexpectedly succeeded: {v}"),
            Err(e) => e,
        }
    }

    /// This gateway's scratch directory (removed by [`Gw::stop`]).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub async fn stop(mut self) {
        if let Some(gw) = self.gw.take() {
            gw.shutdown().await.expect("clean shutdown");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where the hashicorp/aws provider is mirrored on this machine (`terraform init -plugin-dir`).
pub const TF_PLUGINS: &str = "/opt/tf-plugins";

/// `terraform <args>` in `dir` with `var.endpoint` = the gateway: (succeeded, stdout + stderr).
pub async fn terraform(dir: &std::path::Path, args: &[&str], endpoint: &str) -> (bool, String) {
    let out = tokio::process::Command::new("terraform")
        .args(args)
        .current_dir(dir)
        .env("TF_VAR_endpoint", endpoint)
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .await
        .expect("terraform runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

pub fn s(v: &Value) -> String {
    v.as_str().expect("string").to_string()
}

/// A VPC with subnets in us-east-1a, us-east-1b and us-east-1a again: (vpc, subnets).
pub async fn network(g: &Gw) -> (String, Vec<String>) {
    let vpc = s(&g
        .ok(&["ec2", "create-vpc", "--cidr-block", "10.0.0.0/16"])
        .await["Vpc"]["VpcId"]);
    let mut subnets = Vec::new();
    for (cidr, az) in [
        ("10.0.1.0/24", "us-east-1a"),
        ("10.0.2.0/24", "us-east-1b"),
        ("10.0.3.0/24", "us-east-1a"),
    ] {
        let out = g
            .ok(&[
                "ec2",
                "create-subnet",
                "--vpc-id",
                &vpc,
                "--cidr-block",
                cidr,
                "--availability-zone",
                az,
            ])
            .await;
        subnets.push(s(&out["Subnet"]["SubnetId"]));
    }
    (vpc, subnets)
}

/// A terraform working directory holding `main_tf`, initialised from the local provider mirror,
/// with `var.endpoint` = the gateway and any extra `-var`s: the apply / empty plan / destroy round
/// trip every terraform test makes, each step asserted with terraform's own output.
pub struct TfStack {
    dir: std::path::PathBuf,
    url: String,
    vars: Vec<String>,
}

impl TfStack {
    pub async fn init(gw: &Gw, main_tf: &str, vars: &[(&str, &str)]) -> Self {
        assert!(
            std::path::Path::new(TF_PLUGINS).exists(),
            "the terraform AWS provider mirror {TF_PLUGINS} is missing"
        );
        let dir = gw.dir().join("tf");
        std::fs::create_dir_all(&dir).expect("tf dir");
        std::fs::write(dir.join("main.tf"), main_tf).expect("write main.tf");
        let url = gw.url();
        let plugin_dir = format!("-plugin-dir={TF_PLUGINS}");
        let (ok, out) = terraform(&dir, &["init", "-input=false", &plugin_dir], &url).await;
        assert!(ok, "terraform init: {out}");
        let vars = vars.iter().map(|(k, v)| format!("-var={k}={v}")).collect();
        Self { dir, url, vars }
    }

    async fn run(&self, args: &[&str], what: &str) {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-input=false", "-no-color"]);
        all.extend(self.vars.iter().map(String::as_str));
        let (ok, out) = terraform(&self.dir, &all, &self.url).await;
        assert!(ok, "{what}: {out}");
    }

    /// `apply`, then a `plan -detailed-exitcode` that must find nothing to change.
    pub async fn apply_and_plan_clean(&self) {
        self.run(&["apply", "-auto-approve"], "terraform apply")
            .await;
        self.run(
            &["plan", "-detailed-exitcode"],
            "plan after apply is not empty",
        )
        .await;
    }

    pub async fn destroy(&self) {
        self.run(&["destroy", "-auto-approve"], "terraform destroy")
            .await;
    }
}
