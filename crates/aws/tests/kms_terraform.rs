//! A real `terraform apply` / empty `plan` / `destroy` (hashicorp/aws from the local mirror) of a stack
//! over the four services of this group: a KMS key with an alias that seals a Secrets Manager secret,
//! an ECR repository with a lifecycle policy, and a Route 53 zone with a record.

mod support;
use support::{Gw, TfStack};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terraform_stack_applies_plans_clean_and_destroys() {
    let gw = Gw::start().await;
    let tf = TfStack::init(&gw, MAIN_TF, &[]).await;
    tf.apply_and_plan_clean().await;
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
    tf.destroy().await;
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
