//! Auto Scaling launch configurations through the real aws CLI and terraform: create (and
//! `AlreadyExists`), describe, a group launched from one (its instances run the configuration's image
//! and type), `ResourceInUse` while a group uses it, switching the group to a launch template, delete;
//! then `aws_launch_configuration` + `aws_autoscaling_group` apply, plan empty, destroy.

mod support;

use serde_json::json;
use support::{Gw, TF_PLUGINS, network, s, terraform};

async fn instances_of(g: &Gw, group: &str) -> Vec<serde_json::Value> {
    let out = g
        .ok(&[
            "autoscaling",
            "describe-auto-scaling-groups",
            "--auto-scaling-group-names",
            group,
        ])
        .await;
    out["AutoScalingGroups"][0]["Instances"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_launch_from_configurations_until_switched() {
    let g = Gw::start().await;
    let (vpc, subnets) = network(&g).await;
    let sg = s(&g
        .ok(&[
            "ec2",
            "create-security-group",
            "--group-name",
            "web",
            "--description",
            "web",
            "--vpc-id",
            &vpc,
        ])
        .await["GroupId"]);
    let create = |name: &'static str, sg: String| {
        let g = &g;
        async move {
            g.aws(&[
                "autoscaling",
                "create-launch-configuration",
                "--launch-configuration-name",
                name,
                "--image-id",
                "ami-0abcdef1234567890",
                "--instance-type",
                "t3.small",
                "--security-groups",
                &sg,
                "--user-data",
                "echo hello",
            ])
            .await
        }
    };
    create("web-v1", sg.clone()).await.expect("created");
    let e = create("web-v1", sg.clone()).await.unwrap_err();
    assert!(e.contains("(AlreadyExists)"), "{e}");
    let e = create("web-v2", "sg-0000000000000dead".into())
        .await
        .unwrap_err();
    assert!(e.contains("(ValidationError)"), "{e}");

    let described = g
        .ok(&[
            "autoscaling",
            "describe-launch-configurations",
            "--launch-configuration-names",
            "web-v1",
        ])
        .await;
    let lc = &described["LaunchConfigurations"][0];
    assert_eq!(lc["ImageId"], "ami-0abcdef1234567890");
    assert_eq!(lc["InstanceType"], "t3.small");
    assert_eq!(lc["SecurityGroups"], json!([sg]));
    assert_eq!(lc["InstanceMonitoring"], json!({"Enabled": true}));
    assert!(
        s(&lc["LaunchConfigurationARN"])
            .starts_with("arn:aws:autoscaling:us-east-1:000000000000:launchConfiguration:")
    );

    let e = g
        .err(&[
            "autoscaling",
            "create-auto-scaling-group",
            "--auto-scaling-group-name",
            "web",
            "--launch-configuration-name",
            "missing",
            "--min-size",
            "1",
            "--max-size",
            "3",
            "--vpc-zone-identifier",
            &subnets[..2].join(","),
        ])
        .await;
    assert!(
        e.contains("Launch configuration name not found - Launch configuration missing not found"),
        "{e}"
    );
    g.ok(&[
        "autoscaling",
        "create-auto-scaling-group",
        "--auto-scaling-group-name",
        "web",
        "--launch-configuration-name",
        "web-v1",
        "--min-size",
        "1",
        "--max-size",
        "3",
        "--desired-capacity",
        "2",
        "--vpc-zone-identifier",
        &subnets[..2].join(","),
    ])
    .await;
    let group = g
        .ok(&[
            "autoscaling",
            "describe-auto-scaling-groups",
            "--auto-scaling-group-names",
            "web",
        ])
        .await;
    assert_eq!(
        group["AutoScalingGroups"][0]["LaunchConfigurationName"],
        "web-v1"
    );
    assert!(group["AutoScalingGroups"][0]["LaunchTemplate"].is_null());
    let members = instances_of(&g, "web").await;
    assert_eq!(members.len(), 2);
    for m in &members {
        assert_eq!(m["LaunchConfigurationName"], "web-v1", "{m}");
        let id = s(&m["InstanceId"]);
        let i = g
            .ok(&["ec2", "describe-instances", "--instance-ids", &id])
            .await;
        let inst = &i["Reservations"][0]["Instances"][0];
        assert_eq!(inst["ImageId"], "ami-0abcdef1234567890");
        assert_eq!(inst["InstanceType"], "t3.small");
        assert_eq!(inst["SecurityGroups"][0]["GroupId"], sg.as_str());
    }

    let e = g
        .err(&[
            "autoscaling",
            "delete-launch-configuration",
            "--launch-configuration-name",
            "web-v1",
        ])
        .await;
    assert!(
        e.contains("(ResourceInUse)")
            && e.contains("Cannot delete launch configuration web-v1 because it is attached to AutoScalingGroup web"),
        "{e}"
    );

    // Switch to a launch template: new instances come from it, old ones keep their configuration.
    g.ok(&[
        "ec2",
        "create-launch-template",
        "--launch-template-name",
        "web-lt",
        "--launch-template-data",
        r#"{"ImageId":"ami-0fedcba9876543210","InstanceType":"t3.medium"}"#,
    ])
    .await;
    g.ok(&[
        "autoscaling",
        "update-auto-scaling-group",
        "--auto-scaling-group-name",
        "web",
        "--launch-template",
        "LaunchTemplateName=web-lt,Version=$Latest",
        "--desired-capacity",
        "3",
    ])
    .await;
    let group = g
        .ok(&[
            "autoscaling",
            "describe-auto-scaling-groups",
            "--auto-scaling-group-names",
            "web",
        ])
        .await;
    assert!(group["AutoScalingGroups"][0]["LaunchConfigurationName"].is_null());
    assert_eq!(
        group["AutoScalingGroups"][0]["LaunchTemplate"]["LaunchTemplateName"],
        "web-lt"
    );
    let members = instances_of(&g, "web").await;
    assert_eq!(members.len(), 3);
    assert_eq!(
        members
            .iter()
            .filter(|m| m["LaunchConfigurationName"] == "web-v1")
            .count(),
        2
    );
    // And back to the configuration.
    g.ok(&[
        "autoscaling",
        "update-auto-scaling-group",
        "--auto-scaling-group-name",
        "web",
        "--launch-configuration-name",
        "web-v1",
    ])
    .await;
    let group = g
        .ok(&[
            "autoscaling",
            "describe-auto-scaling-groups",
            "--auto-scaling-group-names",
            "web",
        ])
        .await;
    assert_eq!(
        group["AutoScalingGroups"][0]["LaunchConfigurationName"],
        "web-v1"
    );
    assert!(group["AutoScalingGroups"][0]["LaunchTemplate"].is_null());

    g.ok(&[
        "autoscaling",
        "delete-auto-scaling-group",
        "--auto-scaling-group-name",
        "web",
        "--force-delete",
    ])
    .await;
    g.ok(&[
        "autoscaling",
        "delete-launch-configuration",
        "--launch-configuration-name",
        "web-v1",
    ])
    .await;
    let left = g
        .ok(&["autoscaling", "describe-launch-configurations"])
        .await;
    assert_eq!(left["LaunchConfigurations"], json!([]));
    let e = g
        .err(&[
            "autoscaling",
            "delete-launch-configuration",
            "--launch-configuration-name",
            "web-v1",
        ])
        .await;
    assert!(e.contains("(ValidationError)"), "{e}");
    g.stop().await;
}

const MAIN_TF: &str = r##"
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
    ec2         = var.endpoint
    autoscaling = var.endpoint
    sts         = var.endpoint
    iam         = var.endpoint
  }
}
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_subnet" "a" {
  vpc_id            = aws_vpc.main.id
  cidr_block        = "10.0.1.0/24"
  availability_zone = "us-east-1a"
}
resource "aws_subnet" "b" {
  vpc_id            = aws_vpc.main.id
  cidr_block        = "10.0.2.0/24"
  availability_zone = "us-east-1b"
}
resource "aws_security_group" "web" {
  name   = "web"
  vpc_id = aws_vpc.main.id
}
# The provider reads the image's root device on every create and read: a catalog image.
data "aws_ami" "eks_node" {
  most_recent = true
  owners      = ["amazon"]
  filter {
    name   = "name"
    values = ["amazon-eks-node-al2023-x86_64-standard-1.33-*"]
  }
}
resource "aws_launch_configuration" "web" {
  name_prefix     = "web-"
  image_id        = data.aws_ami.eks_node.id
  instance_type   = "t3.small"
  security_groups = [aws_security_group.web.id]
  user_data       = "#!/bin/sh\necho hello\n"
  root_block_device {
    volume_size = 20
    volume_type = "gp3"
  }
  lifecycle { create_before_destroy = true }
}
resource "aws_autoscaling_group" "web" {
  name                 = "web"
  launch_configuration = aws_launch_configuration.web.name
  min_size             = 1
  max_size             = 3
  desired_capacity     = 2
  vpc_zone_identifier  = [aws_subnet.a.id, aws_subnet.b.id]
  force_delete         = true
  tag {
    key                 = "team"
    value               = "web"
    propagate_at_launch = true
  }
}
"##;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terraform_launch_configuration_and_group() {
    use skiff_aws::gateway::{GatewayConfig, GatewayState, router, serve_router};
    assert!(
        std::path::Path::new(TF_PLUGINS).exists(),
        "the terraform AWS provider mirror {TF_PLUGINS} is missing"
    );
    let dir = std::env::temp_dir().join(format!("skiff-lc-tf-{}", uuid::Uuid::new_v4()));
    let store = skiff_store::open("embedded", &dir.join("store"))
        .await
        .expect("store");
    let app = router(GatewayState::new(store, GatewayConfig::default()));
    let gw = serve_router(app, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("gateway");
    let url = format!("http://{}", gw.local_addr);
    let aws = |args: &'static [&'static str]| {
        let url = url.clone();
        async move {
            let out = tokio::process::Command::new("aws")
                .args(["--endpoint-url", &url, "--output", "json"])
                .args(args)
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env("AWS_DEFAULT_REGION", "us-east-1")
                .env("AWS_CONFIG_FILE", "/dev/null")
                .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
                .env_remove("AWS_PROFILE")
                .env_remove("AWS_ENDPOINT_URL")
                .output()
                .await
                .expect("aws CLI runs");
            assert!(
                out.status.success(),
                "aws {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json")
        }
    };
    let tf = dir.join("tf");
    std::fs::create_dir_all(&tf).expect("tf dir");
    std::fs::write(tf.join("main.tf"), MAIN_TF).expect("write main.tf");
    let plugin_dir = format!("-plugin-dir={TF_PLUGINS}");
    let (ok, out) = terraform(&tf, &["init", "-input=false", &plugin_dir], &url).await;
    assert!(ok, "terraform init: {out}");
    let (ok, out) = terraform(
        &tf,
        &["apply", "-auto-approve", "-input=false", "-no-color"],
        &url,
    )
    .await;
    assert!(ok, "terraform apply: {out}");
    let (ok, out) = terraform(
        &tf,
        &["plan", "-detailed-exitcode", "-input=false", "-no-color"],
        &url,
    )
    .await;
    assert!(ok, "plan after apply is not empty: {out}");
    let groups = aws(&[
        "autoscaling",
        "describe-auto-scaling-groups",
        "--auto-scaling-group-names",
        "web",
    ])
    .await;
    let members = groups["AutoScalingGroups"][0]["Instances"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(members.len(), 2, "{groups}");
    assert!(
        s(&members[0]["LaunchConfigurationName"]).starts_with("web-"),
        "{}",
        members[0]
    );
    let lcs = aws(&["autoscaling", "describe-launch-configurations"]).await;
    let lc = &lcs["LaunchConfigurations"][0];
    assert_eq!(lc["BlockDeviceMappings"][0]["DeviceName"], "/dev/xvda");
    assert_eq!(lc["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"], 20);
    let (ok, out) = terraform(
        &tf,
        &["destroy", "-auto-approve", "-input=false", "-no-color"],
        &url,
    )
    .await;
    assert!(ok, "terraform destroy: {out}");
    let left = aws(&["autoscaling", "describe-launch-configurations"]).await;
    assert_eq!(left["LaunchConfigurations"], json!([]));
    let groups = aws(&["autoscaling", "describe-auto-scaling-groups"]).await;
    assert_eq!(groups["AutoScalingGroups"], json!([]));
    gw.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}
