//! A real `terraform apply` / empty `plan` / `destroy` (hashicorp/aws from the local mirror) of a stack
//! over the four services of this group: a KMS key with an alias that seals a Secrets Manager secret,
//! an ECR repository with a lifecycle policy, and a Route 53 zone with a record.

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
        let dir = std::env::temp_dir().join(format!("skiff-awsrest-tf-{}", uuid::Uuid::new_v4()));
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

const MAIN_TF: &str = r#"
variable "endpoint" { type = string }
provider "aws" {
  region                      = "us-east-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  skip_region_validation      = true
  endpoints {
    kms            = var.endpoint
    secretsmanager = var.endpoint
    ecr            = var.endpoint
    route53        = var.endpoint
    sts            = var.endpoint
  }
}
resource "aws_kms_key" "secrets" {
  description             = "eks secrets"
  deletion_window_in_days = 7
  enable_key_rotation     = true
  tags                    = { team = "core" }
}
resource "aws_kms_alias" "secrets" {
  name          = "alias/eks-secrets"
  target_key_id = aws_kms_key.secrets.key_id
}
resource "aws_secretsmanager_secret" "db" {
  name                    = "app/db"
  kms_key_id              = aws_kms_key.secrets.arn
  recovery_window_in_days = 0
  tags                    = { team = "core" }
}
resource "aws_secretsmanager_secret_version" "db" {
  secret_id     = aws_secretsmanager_secret.db.id
  secret_string = "s3cr3t"
}
resource "aws_ecr_repository" "app" {
  name                 = "team/app"
  image_tag_mutability = "IMMUTABLE"
  force_delete         = true
  image_scanning_configuration { scan_on_push = true }
}
resource "aws_ecr_lifecycle_policy" "app" {
  repository = aws_ecr_repository.app.name
  policy = jsonencode({ rules = [{ rulePriority = 1, description = "untagged",
    selection = { tagStatus = "untagged", countType = "sinceImagePushed", countUnit = "days", countNumber = 14 },
    action = { type = "expire" } }] })
}
resource "aws_route53_zone" "main" {
  name = "example.com"
}
resource "aws_route53_record" "www" {
  zone_id = aws_route53_zone.main.zone_id
  name    = "www.example.com"
  type    = "A"
  ttl     = 300
  records = ["10.0.0.1"]
}
"#;

/// Where the hashicorp/aws provider is mirrored on this machine (`terraform init -plugin-dir`).
const TF_PLUGINS: &str = "/opt/tf-plugins";

async fn terraform(dir: &std::path::Path, args: &[&str], endpoint: &str) -> (bool, String) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terraform_stack_applies_plans_clean_and_destroys() {
    assert!(
        std::path::Path::new(TF_PLUGINS).exists(),
        "the terraform AWS provider mirror {TF_PLUGINS} is missing"
    );
    let gw = Gw::start().await;
    let dir = gw.dir.join("tf");
    std::fs::create_dir_all(&dir).expect("tf dir");
    std::fs::write(dir.join("main.tf"), MAIN_TF).expect("write main.tf");
    let url = format!("http://{}", gw.gw.as_ref().expect("running").local_addr);
    let plugin_dir = format!("-plugin-dir={TF_PLUGINS}");
    let (ok, out) = terraform(&dir, &["init", "-input=false", &plugin_dir], &url).await;
    assert!(ok, "terraform init: {out}");
    let (ok, out) = terraform(
        &dir,
        &["apply", "-auto-approve", "-input=false", "-no-color"],
        &url,
    )
    .await;
    assert!(ok, "terraform apply: {out}");
    let (ok, out) = terraform(
        &dir,
        &["plan", "-detailed-exitcode", "-input=false", "-no-color"],
        &url,
    )
    .await;
    assert!(ok, "plan after apply is not empty: {out}");
    let value = gw
        .aws(&[
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            "app/db",
        ])
        .await
        .expect("secret readable");
    assert_eq!(value["SecretString"], "s3cr3t");
    let (ok, out) = terraform(
        &dir,
        &["destroy", "-auto-approve", "-input=false", "-no-color"],
        &url,
    )
    .await;
    assert!(ok, "terraform destroy: {out}");
    let zones = gw
        .aws(&["route53", "list-hosted-zones"])
        .await
        .expect("zones");
    assert_eq!(zones["HostedZones"], serde_json::json!([]));
    let repos = gw
        .aws(&["ecr", "describe-repositories"])
        .await
        .expect("repos");
    assert_eq!(repos["repositories"], serde_json::json!([]));
    gw.stop().await;
}
