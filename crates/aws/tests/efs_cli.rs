//! EFS through the real aws CLI and terraform (`aws_efs_file_system`, `aws_efs_mount_target`,
//! `aws_efs_access_point`) against the gateway on 127.0.0.1:0.

mod support;

use serde_json::json;
use support::{Gw, TfStack, network, s};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_system_mount_targets_and_access_points_with_the_aws_cli() {
    let gw = Gw::start().await;
    let (_vpc, subnets) = network(&gw).await;
    let fs = gw
        .ok(&[
            "efs",
            "create-file-system",
            "--creation-token",
            "shared",
            "--encrypted",
            "--tags",
            "Key=Name,Value=shared",
        ])
        .await;
    let id = s(&fs["FileSystemId"]);
    assert_eq!(fs["LifeCycleState"], "available");
    let dup = gw
        .err(&["efs", "create-file-system", "--creation-token", "shared"])
        .await;
    assert!(dup.contains("FileSystemAlreadyExists"), "{dup}");
    let mt = gw
        .ok(&[
            "efs",
            "create-mount-target",
            "--file-system-id",
            &id,
            "--subnet-id",
            &subnets[0],
        ])
        .await;
    assert!(s(&mt["IpAddress"]).starts_with("10.0.1."), "{mt}");
    let conflict = gw
        .err(&[
            "efs",
            "create-mount-target",
            "--file-system-id",
            &id,
            "--subnet-id",
            &subnets[2],
        ])
        .await;
    assert!(conflict.contains("MountTargetConflict"), "{conflict}");
    let ap = gw
        .ok(&[
            "efs",
            "create-access-point",
            "--file-system-id",
            &id,
            "--posix-user",
            "Uid=1000,Gid=1000",
            "--root-directory",
            "Path=/data,CreationInfo={OwnerUid=1000,OwnerGid=1000,Permissions=755}",
        ])
        .await;
    assert_eq!(ap["RootDirectory"]["Path"], "/data");
    let in_use = gw
        .err(&["efs", "delete-file-system", "--file-system-id", &id])
        .await;
    assert!(in_use.contains("FileSystemInUse"), "{in_use}");
    gw.ok(&[
        "efs",
        "delete-mount-target",
        "--mount-target-id",
        &s(&mt["MountTargetId"]),
    ])
    .await;
    gw.ok(&["efs", "delete-file-system", "--file-system-id", &id])
        .await;
    let listed = gw.ok(&["efs", "describe-file-systems"]).await;
    assert_eq!(listed["FileSystems"], json!([]));
    gw.stop().await;
}

const MAIN_TF: &str = r#"
variable "endpoint" { type = string }
variable "subnet_id" { type = string }
provider "aws" {
  region                      = "us-east-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  skip_region_validation      = true
  endpoints {
    efs = var.endpoint
    ec2 = var.endpoint
    sts = var.endpoint
  }
}
resource "aws_efs_file_system" "shared" {
  creation_token = "eks-shared"
  encrypted      = true
  lifecycle_policy { transition_to_ia = "AFTER_30_DAYS" }
  tags = { Name = "eks-shared" }
}
resource "aws_efs_mount_target" "a" {
  file_system_id = aws_efs_file_system.shared.id
  subnet_id      = var.subnet_id
}
resource "aws_efs_access_point" "app" {
  file_system_id = aws_efs_file_system.shared.id
  posix_user {
    uid = 1000
    gid = 1000
  }
  root_directory {
    path = "/app"
    creation_info {
      owner_uid   = 1000
      owner_gid   = 1000
      permissions = "750"
    }
  }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terraform_efs_applies_plans_clean_and_destroys() {
    let gw = Gw::start().await;
    let (_vpc, subnets) = network(&gw).await;
    let tf = TfStack::init(&gw, MAIN_TF, &[("subnet_id", &subnets[0])]).await;
    tf.apply_and_plan_clean().await;
    let fss = gw.ok(&["efs", "describe-file-systems"]).await;
    assert_eq!(fss["FileSystems"][0]["NumberOfMountTargets"], 1);
    tf.destroy().await;
    let fss = gw.ok(&["efs", "describe-file-systems"]).await;
    assert_eq!(fss["FileSystems"], json!([]));
    let enis = gw.ok(&["ec2", "describe-network-interfaces"]).await;
    assert_eq!(
        enis["NetworkInterfaces"],
        json!([]),
        "mount target ENIs are gone"
    );
    gw.stop().await;
}
