//! EKS through the real aws CLI against the gateway on 127.0.0.1:0: create-cluster (and its
//! validation errors as the CLI prints them), describe-cluster reporting exactly what is recorded,
//! list-clusters, create-nodegroup once the (stand-in) EKS layer has marked the cluster ACTIVE,
//! delete-cluster refused while nodegroups remain, then deleted.

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
        let dir = std::env::temp_dir().join(format!("skiff-eks-cli-{}", uuid::Uuid::new_v4()));
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

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_and_nodegroup_lifecycle() {
    let g = Gw::start().await;
    let role = s(&g
        .ok(&[
            "iam",
            "create-role",
            "--role-name",
            "eks-cluster",
            "--assume-role-policy-document",
            TRUST,
        ])
        .await["Role"]["Arn"]);
    let (_, subnets) = network(&g).await;
    let vpc_cfg = format!("subnetIds={},{}", subnets[0], subnets[1]);

    let e = g
        .err(&[
            "eks",
            "create-cluster",
            "--name",
            "demo",
            "--role-arn",
            &role,
            "--resources-vpc-config",
            &format!("subnetIds={},{}", subnets[0], subnets[2]),
        ])
        .await;
    assert!(
        e.contains("(InvalidParameterException)")
            && e.contains("Subnets specified must be in at least two different AZs"),
        "{e}"
    );
    let e = g
        .err(&[
            "eks",
            "create-cluster",
            "--name",
            "demo",
            "--role-arn",
            "arn:aws:iam::000000000000:role/missing",
            "--resources-vpc-config",
            &vpc_cfg,
        ])
        .await;
    assert!(e.contains("(InvalidParameterException)"), "{e}");

    let c = g
        .ok(&[
            "eks",
            "create-cluster",
            "--name",
            "demo",
            "--role-arn",
            &role,
            "--resources-vpc-config",
            &vpc_cfg,
            "--tags",
            "team=platform",
        ])
        .await;
    assert_eq!(c["cluster"]["status"], "CREATING");
    assert_eq!(
        c["cluster"]["kubernetesNetworkConfig"]["serviceIpv4Cidr"],
        "10.100.0.0/16"
    );
    assert_eq!(
        c["cluster"]["accessConfig"]["authenticationMode"],
        "API_AND_CONFIG_MAP"
    );
    assert!(c["cluster"]["createdAt"].is_string() || c["cluster"]["createdAt"].is_number());
    let sg = s(&c["cluster"]["resourcesVpcConfig"]["clusterSecurityGroupId"]);
    let groups = g
        .ok(&["ec2", "describe-security-groups", "--group-ids", &sg])
        .await;
    assert!(s(&groups["SecurityGroups"][0]["GroupName"]).starts_with("eks-cluster-sg-demo-"));

    let e = g
        .err(&[
            "eks",
            "create-cluster",
            "--name",
            "demo",
            "--role-arn",
            &role,
            "--resources-vpc-config",
            &vpc_cfg,
        ])
        .await;
    assert!(
        e.contains("(ResourceInUseException)")
            && e.contains("Cluster already exists with name: demo"),
        "{e}"
    );

    let d = g.ok(&["eks", "describe-cluster", "--name", "demo"]).await;
    assert_eq!(d["cluster"]["status"], "CREATING", "nothing fakes ACTIVE");
    assert!(
        d["cluster"]["identity"]["oidc"]["issuer"]
            .as_str()
            .unwrap()
            .starts_with("https://oidc.eks.us-east-1.amazonaws.com/id/")
    );
    assert_eq!(d["cluster"]["tags"]["team"], "platform");
    let e = g.err(&["eks", "describe-cluster", "--name", "nope"]).await;
    assert!(
        e.contains("(ResourceNotFoundException)") && e.contains("No cluster found for name: nope."),
        "{e}"
    );
    assert_eq!(
        g.ok(&["eks", "list-clusters"]).await["clusters"],
        serde_json::json!(["demo"])
    );

    let ng_args = [
        "eks",
        "create-nodegroup",
        "--cluster-name",
        "demo",
        "--nodegroup-name",
        "ng",
        "--node-role",
        &role,
        "--subnets",
        &subnets[0],
        &subnets[1],
        "--scaling-config",
        "minSize=1,maxSize=3,desiredSize=2",
        "--instance-types",
        "m5.large",
        "--labels",
        "tier=web",
        "--taints",
        "key=dedicated,value=web,effect=NO_SCHEDULE",
    ];
    let e = g.err(&ng_args).await;
    assert!(e.contains("not in ACTIVE status"), "{e}");
    // What the EKS layer does once the control plane answers.
    skiff_aws::eks::set_cluster_active(
        &*g._store,
        "000000000000",
        "us-east-1",
        "demo",
        "https://127.0.0.1:6443",
        "LS0tLS1CRUdJTg==",
    )
    .await
    .unwrap();
    let d = g.ok(&["eks", "describe-cluster", "--name", "demo"]).await;
    assert_eq!(
        (
            d["cluster"]["status"].as_str(),
            d["cluster"]["endpoint"].as_str()
        ),
        (Some("ACTIVE"), Some("https://127.0.0.1:6443"))
    );

    let ng = g.ok(&ng_args).await;
    assert_eq!(ng["nodegroup"]["status"], "CREATING");
    assert_eq!(ng["nodegroup"]["scalingConfig"]["desiredSize"], 2);
    assert_eq!(ng["nodegroup"]["taints"][0]["effect"], "NO_SCHEDULE");
    let e = g
        .err(&[
            "eks",
            "create-nodegroup",
            "--cluster-name",
            "demo",
            "--nodegroup-name",
            "ng2",
            "--node-role",
            &role,
            "--subnets",
            &subnets[0],
            "--scaling-config",
            "minSize=3,maxSize=2,desiredSize=2",
        ])
        .await;
    assert!(e.contains("(InvalidParameterException)"), "{e}");
    assert_eq!(
        g.ok(&["eks", "list-nodegroups", "--cluster-name", "demo"])
            .await["nodegroups"],
        serde_json::json!(["ng"])
    );

    let e = g.err(&["eks", "delete-cluster", "--name", "demo"]).await;
    assert!(
        e.contains("(ResourceInUseException)") && e.contains("Cluster has nodegroups attached"),
        "{e}"
    );
    assert_eq!(
        g.ok(&[
            "eks",
            "delete-nodegroup",
            "--cluster-name",
            "demo",
            "--nodegroup-name",
            "ng"
        ])
        .await["nodegroup"]["status"],
        "DELETING"
    );
    assert_eq!(
        g.ok(&["eks", "delete-cluster", "--name", "demo"]).await["cluster"]["status"],
        "DELETING"
    );
    assert_eq!(
        g.ok(&["eks", "list-clusters"]).await["clusters"],
        serde_json::json!([])
    );
    g.stop().await;
}
