//! ELBv2 through the real aws CLI: an ALB, a target group with a registered instance, a listener
//! forwarding to it, a path rule, the errors the CLI prints (PriorityInUse, ResourceInUse,
//! DuplicateLoadBalancerName), and teardown.

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
        let dir = std::env::temp_dir().join(format!("skiff-elbv2-cli-{}", uuid::Uuid::new_v4()));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_listener_rule_flow() {
    let g = Gw::start().await;
    let (vpc, subnets) = network(&g).await;
    let run = g
        .ok(&[
            "ec2",
            "run-instances",
            "--image-id",
            "ami-0123456789abcdef0",
            "--instance-type",
            "t3.micro",
            "--subnet-id",
            &subnets[0],
        ])
        .await;
    let instance = s(&run["Instances"][0]["InstanceId"]);

    let lb = g
        .ok(&[
            "elbv2",
            "create-load-balancer",
            "--name",
            "web",
            "--subnets",
            &subnets[0],
            &subnets[1],
        ])
        .await;
    let lb_arn = s(&lb["LoadBalancers"][0]["LoadBalancerArn"]);
    assert!(s(&lb["LoadBalancers"][0]["DNSName"]).ends_with(".us-east-1.elb.amazonaws.com"));
    let e = g
        .err(&[
            "elbv2",
            "create-load-balancer",
            "--name",
            "web",
            "--type",
            "network",
            "--subnets",
            &subnets[0],
        ])
        .await;
    assert!(e.contains("(DuplicateLoadBalancerName)"), "{e}");
    let d = g
        .ok(&["elbv2", "describe-load-balancers", "--names", "web"])
        .await;
    assert_eq!(d["LoadBalancers"][0]["State"]["Code"], "active");

    let tg = g
        .ok(&[
            "elbv2",
            "create-target-group",
            "--name",
            "web-tg",
            "--protocol",
            "HTTP",
            "--port",
            "80",
            "--vpc-id",
            &vpc,
        ])
        .await;
    let tg_arn = s(&tg["TargetGroups"][0]["TargetGroupArn"]);
    g.ok(&[
        "elbv2",
        "register-targets",
        "--target-group-arn",
        &tg_arn,
        "--targets",
        &format!("Id={instance}"),
    ])
    .await;
    let l = g
        .ok(&[
            "elbv2",
            "create-listener",
            "--load-balancer-arn",
            &lb_arn,
            "--protocol",
            "HTTP",
            "--port",
            "80",
            "--default-actions",
            &format!("Type=forward,TargetGroupArn={tg_arn}"),
        ])
        .await;
    let l_arn = s(&l["Listeners"][0]["ListenerArn"]);
    let h = g
        .ok(&[
            "elbv2",
            "describe-target-health",
            "--target-group-arn",
            &tg_arn,
        ])
        .await;
    assert_eq!(
        h["TargetHealthDescriptions"][0]["TargetHealth"]["State"],
        "initial"
    );
    assert_eq!(
        h["TargetHealthDescriptions"][0]["Target"]["Id"],
        instance.as_str()
    );

    let conditions = r#"[{"Field":"path-pattern","Values":["/api/*"]}]"#;
    let actions = format!(r#"[{{"Type":"forward","TargetGroupArn":"{tg_arn}"}}]"#);
    g.ok(&[
        "elbv2",
        "create-rule",
        "--listener-arn",
        &l_arn,
        "--priority",
        "5",
        "--conditions",
        conditions,
        "--actions",
        &actions,
    ])
    .await;
    let e = g
        .err(&[
            "elbv2",
            "create-rule",
            "--listener-arn",
            &l_arn,
            "--priority",
            "5",
            "--conditions",
            conditions,
            "--actions",
            &actions,
        ])
        .await;
    assert!(
        e.contains("(PriorityInUse)") && e.contains("Priority '5' is currently in use"),
        "{e}"
    );
    let rules = g
        .ok(&["elbv2", "describe-rules", "--listener-arn", &l_arn])
        .await;
    assert_eq!(rules["Rules"].as_array().unwrap().len(), 2);
    let attrs = g
        .ok(&[
            "elbv2",
            "describe-load-balancer-attributes",
            "--load-balancer-arn",
            &lb_arn,
        ])
        .await;
    assert!(
        attrs["Attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["Key"] == "idle_timeout.timeout_seconds" && a["Value"] == "60")
    );

    let e = g
        .err(&[
            "elbv2",
            "delete-target-group",
            "--target-group-arn",
            &tg_arn,
        ])
        .await;
    assert!(e.contains("(ResourceInUse)"), "{e}");
    g.ok(&[
        "elbv2",
        "delete-load-balancer",
        "--load-balancer-arn",
        &lb_arn,
    ])
    .await;
    g.ok(&[
        "elbv2",
        "delete-target-group",
        "--target-group-arn",
        &tg_arn,
    ])
    .await;
    let e = g
        .err(&["elbv2", "describe-target-groups", "--names", "web-tg"])
        .await;
    assert!(e.contains("(TargetGroupNotFound)"), "{e}");
    g.stop().await;
}
