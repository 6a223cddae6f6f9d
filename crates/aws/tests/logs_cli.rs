//! CloudWatch Logs through the real aws CLI and terraform's `aws_cloudwatch_log_group` against the
//! gateway on 127.0.0.1:0: groups with retention, KMS and tags; streams; events put, read and filtered.

mod support;

use serde_json::json;
use support::{Gw, TfStack, s};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_streams_and_events_with_the_aws_cli() {
    let gw = Gw::start().await;
    let g = "/aws/eks/prod/cluster";
    gw.ok(&[
        "logs",
        "create-log-group",
        "--log-group-name",
        g,
        "--tags",
        "team=platform",
    ])
    .await;
    let dup = gw
        .err(&["logs", "create-log-group", "--log-group-name", g])
        .await;
    assert!(dup.contains("ResourceAlreadyExistsException"), "{dup}");
    let bad = gw
        .err(&[
            "logs",
            "put-retention-policy",
            "--log-group-name",
            g,
            "--retention-in-days",
            "2",
        ])
        .await;
    assert!(bad.contains("InvalidParameterException"), "{bad}");
    gw.ok(&[
        "logs",
        "put-retention-policy",
        "--log-group-name",
        g,
        "--retention-in-days",
        "30",
    ])
    .await;
    let groups = gw
        .ok(&[
            "logs",
            "describe-log-groups",
            "--log-group-name-prefix",
            "/aws/eks",
        ])
        .await;
    assert_eq!(groups["logGroups"][0]["logGroupName"], g);
    assert_eq!(groups["logGroups"][0]["retentionInDays"], 30);
    let tags = gw
        .ok(&["logs", "list-tags-log-group", "--log-group-name", g])
        .await;
    assert_eq!(tags["tags"], json!({"team": "platform"}));

    gw.ok(&[
        "logs",
        "create-log-stream",
        "--log-group-name",
        g,
        "--log-stream-name",
        "kube-apiserver-1",
    ])
    .await;
    let t = now_ms();
    let events = json!([
        {"timestamp": t - 2, "message": "GET /api 200"},
        {"timestamp": t - 1, "message": "GET /apis 500"},
    ])
    .to_string();
    let args = [
        "logs",
        "put-log-events",
        "--log-group-name",
        g,
        "--log-stream-name",
        "kube-apiserver-1",
        "--log-events",
        &events,
    ];
    let put = gw.ok(&args).await;
    assert!(put["nextSequenceToken"].is_string(), "{put}");
    let got = gw
        .ok(&[
            "logs",
            "get-log-events",
            "--log-group-name",
            g,
            "--log-stream-name",
            "kube-apiserver-1",
            "--start-from-head",
        ])
        .await;
    let messages: Vec<&str> = got["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["message"].as_str().expect("message"))
        .collect();
    assert_eq!(messages, ["GET /api 200", "GET /apis 500"]);
    // The CLI's paginator follows nextToken to the end.
    let hits = gw
        .ok(&[
            "logs",
            "filter-log-events",
            "--log-group-name",
            g,
            "--filter-pattern",
            "500",
        ])
        .await;
    assert_eq!(hits["events"].as_array().expect("events").len(), 1);
    assert_eq!(hits["events"][0]["logStreamName"], "kube-apiserver-1");
    let missing = gw
        .err(&[
            "logs",
            "get-log-events",
            "--log-group-name",
            g,
            "--log-stream-name",
            "nope",
        ])
        .await;
    assert!(
        missing.contains("The specified log stream does not exist."),
        "{missing}"
    );
    gw.ok(&["logs", "delete-log-group", "--log-group-name", g])
        .await;
    let gone = gw
        .err(&["logs", "delete-log-group", "--log-group-name", g])
        .await;
    assert!(gone.contains("ResourceNotFoundException"), "{gone}");
    gw.stop().await;
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
    cloudwatchlogs = var.endpoint
    kms            = var.endpoint
    sts            = var.endpoint
  }
}
resource "aws_kms_key" "logs" {
  description             = "eks control plane logs"
  deletion_window_in_days = 7
}
resource "aws_cloudwatch_log_group" "cluster" {
  name              = "/aws/eks/prod/cluster"
  retention_in_days = 7
  kms_key_id        = aws_kms_key.logs.arn
  tags              = { team = "platform" }
}
resource "aws_cloudwatch_log_stream" "audit" {
  name           = "kube-apiserver-audit-1"
  log_group_name = aws_cloudwatch_log_group.cluster.name
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terraform_log_group_applies_plans_clean_and_destroys() {
    let gw = Gw::start().await;
    let tf = TfStack::init(&gw, MAIN_TF, &[]).await;
    tf.apply_and_plan_clean().await;
    let groups = gw.ok(&["logs", "describe-log-groups"]).await;
    let group = &groups["logGroups"][0];
    assert_eq!(group["retentionInDays"], 7);
    assert!(s(&group["kmsKeyId"]).starts_with("arn:aws:kms:us-east-1:000000000000:key/"));
    tf.destroy().await;
    let groups = gw.ok(&["logs", "describe-log-groups"]).await;
    assert_eq!(groups["logGroups"], json!([]));
    gw.stop().await;
}
