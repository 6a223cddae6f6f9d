//! AutoScaling through the real aws CLI: a group launches real EC2 instances (seen by
//! `ec2 describe-instances` with the `aws:autoscaling:groupName` tag), set-desired-capacity scales,
//! terminate-instance-in-auto-scaling-group replaces, activities use AWS's wording.

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
        let dir =
            std::env::temp_dir().join(format!("skiff-autoscaling-cli-{}", uuid::Uuid::new_v4()));
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

    fn url(&self) -> String {
        format!("http://{}", self.gw.as_ref().expect("running").local_addr)
    }

    /// `aws <args>`: Ok(parsed stdout, or the raw text for `--output text`) or Err(stderr).
    async fn aws(&self, args: &[&str]) -> Result<Value, String> {
        let out = tokio::process::Command::new("aws")
            .args(["--endpoint-url", &self.url(), "--output", "json"])
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
        Ok(serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.trim().to_string())))
    }

    async fn ok(&self, args: &[&str]) -> Value {
        match self.aws(args).await {
            Ok(v) => v,
            Err(e) => panic!("aws {args:?} failed: {e}"),
        }
    }

    async fn err(&self, args: &[&str]) -> String {
        match self.aws(args).await {
            Ok(v) => panic!("aws {args:?} unexpectedly succeeded: {v}"),
            Err(e) => e,
        }
    }

    async fn stop(mut self) {
        if let Some(gw) = self.gw.take() {
            gw.shutdown().await.expect("clean shutdown");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn s(v: &Value) -> String {
    v.as_str().expect("string").to_string()
}

/// A VPC with subnets in us-east-1a, us-east-1b and us-east-1a again: (vpc, subnets).
async fn network(g: &Gw) -> (String, Vec<String>) {
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

async fn group_instances(g: &Gw) -> Vec<String> {
    let out = g
        .ok(&[
            "ec2",
            "describe-instances",
            "--filters",
            "Name=tag:aws:autoscaling:groupName,Values=web",
            "Name=instance-state-name,Values=pending,running",
            "--query",
            "Reservations[].Instances[].InstanceId",
        ])
        .await;
    let mut ids: Vec<String> = out.as_array().unwrap().iter().map(s).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_scales_with_real_instances() {
    let g = Gw::start().await;
    let (_, subnets) = network(&g).await;
    g.ok(&[
        "ec2",
        "create-launch-template",
        "--launch-template-name",
        "web-lt",
        "--launch-template-data",
        r#"{"ImageId":"ami-0123456789abcdef0","InstanceType":"t3.small"}"#,
    ])
    .await;
    let zone_ids = format!("{},{}", subnets[0], subnets[1]);
    let e = g
        .err(&[
            "autoscaling",
            "create-auto-scaling-group",
            "--auto-scaling-group-name",
            "web",
            "--launch-template",
            "LaunchTemplateName=web-lt,Version=$Latest",
            "--min-size",
            "1",
            "--max-size",
            "2",
            "--desired-capacity",
            "5",
            "--vpc-zone-identifier",
            &zone_ids,
        ])
        .await;
    assert!(
        e.contains("(ValidationError)")
            && e.contains(
                "Desired capacity:5 must be between the specified min size:1 and max size:2"
            ),
        "{e}"
    );

    g.ok(&[
        "autoscaling",
        "create-auto-scaling-group",
        "--auto-scaling-group-name",
        "web",
        "--launch-template",
        "LaunchTemplateName=web-lt,Version=$Latest",
        "--min-size",
        "1",
        "--max-size",
        "4",
        "--desired-capacity",
        "2",
        "--vpc-zone-identifier",
        &zone_ids,
    ])
    .await;
    assert_eq!(group_instances(&g).await.len(), 2);
    let d = g
        .ok(&[
            "autoscaling",
            "describe-auto-scaling-groups",
            "--auto-scaling-group-names",
            "web",
        ])
        .await;
    let grp = &d["AutoScalingGroups"][0];
    assert_eq!(grp["Instances"].as_array().unwrap().len(), 2);
    assert_eq!(
        grp["AvailabilityZones"],
        serde_json::json!(["us-east-1a", "us-east-1b"])
    );

    g.ok(&[
        "autoscaling",
        "set-desired-capacity",
        "--auto-scaling-group-name",
        "web",
        "--desired-capacity",
        "3",
    ])
    .await;
    assert_eq!(group_instances(&g).await.len(), 3);

    let victim = group_instances(&g).await[0].clone();
    let a = g
        .ok(&[
            "autoscaling",
            "terminate-instance-in-auto-scaling-group",
            "--instance-id",
            &victim,
            "--no-should-decrement-desired-capacity",
        ])
        .await;
    assert_eq!(
        s(&a["Activity"]["Description"]),
        format!("Terminating EC2 instance: {victim}")
    );
    let now = group_instances(&g).await;
    assert_eq!(now.len(), 3);
    assert!(!now.contains(&victim));

    let acts = g
        .ok(&[
            "autoscaling",
            "describe-scaling-activities",
            "--auto-scaling-group-name",
            "web",
        ])
        .await;
    let launches = acts["Activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["Description"]
                .as_str()
                .unwrap()
                .starts_with("Launching a new EC2 instance: i-")
        })
        .count();
    assert_eq!(launches, 4);

    let e = g
        .err(&[
            "autoscaling",
            "delete-auto-scaling-group",
            "--auto-scaling-group-name",
            "web",
        ])
        .await;
    assert!(e.contains("(ResourceInUse)"), "{e}");
    g.ok(&[
        "autoscaling",
        "delete-auto-scaling-group",
        "--auto-scaling-group-name",
        "web",
        "--force-delete",
    ])
    .await;
    assert!(group_instances(&g).await.is_empty());
    g.stop().await;
}
