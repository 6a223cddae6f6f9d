//! EC2 through the real aws CLI (and boto3 for a terraform-style read-back) against the gateway on
//! 127.0.0.1:0 with an embedded store in a temporary directory: VPCs and subnets with filters and
//! `--query`, the conflict and dependency errors as the CLI prints them, DryRun, instances, the
//! calls the terraform provider makes right after CreateVpc, and a real `terraform apply` / empty
//! `plan` / `destroy` of a VPC stack (`MAIN_TF`, hashicorp/aws from the local mirror).

mod support;
use support::{Gw, TfStack, s};

use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpcs_subnets_filters_query_and_errors() {
    let g = Gw::start().await;
    let vpc = g
        .ok(&[
            "ec2",
            "create-vpc",
            "--cidr-block",
            "10.0.0.0/16",
            "--tag-specifications",
            "ResourceType=vpc,Tags=[{Key=Name,Value=demo}]",
        ])
        .await;
    let vpc_id = s(&vpc["Vpc"]["VpcId"]);
    assert!(vpc_id.starts_with("vpc-") && vpc_id.len() == 21, "{vpc_id}");

    let subnet = g
        .ok(&[
            "ec2",
            "create-subnet",
            "--vpc-id",
            &vpc_id,
            "--cidr-block",
            "10.0.1.0/24",
            "--availability-zone",
            "us-east-1a",
        ])
        .await;
    assert_eq!(subnet["Subnet"]["AvailableIpAddressCount"], 251);
    assert_eq!(subnet["Subnet"]["AvailabilityZoneId"], "use1-az1");
    let subnet_id = s(&subnet["Subnet"]["SubnetId"]);

    // Filters (including tag:Key and wildcards) and --query.
    let ids = g
        .ok(&[
            "ec2",
            "describe-vpcs",
            "--filters",
            "Name=tag:Name,Values=de*",
            "--query",
            "Vpcs[].VpcId",
        ])
        .await;
    assert_eq!(ids, serde_json::json!([vpc_id]));
    let count = g
        .ok(&[
            "ec2",
            "describe-subnets",
            "--filters",
            &format!("Name=vpc-id,Values={vpc_id}"),
            "Name=cidr-block,Values=10.0.1.0/24",
            "--query",
            "Subnets[0].AvailableIpAddressCount",
        ])
        .await;
    assert_eq!(count, 251);
    let text = g
        .ok(&[
            "ec2",
            "describe-vpcs",
            "--vpc-ids",
            &vpc_id,
            "--query",
            "Vpcs[0].CidrBlock",
            "--output",
            "text",
        ])
        .await;
    assert_eq!(text, "10.0.0.0/16");

    // Errors as the CLI prints them.
    let e = g
        .err(&[
            "ec2",
            "create-subnet",
            "--vpc-id",
            &vpc_id,
            "--cidr-block",
            "10.0.1.0/25",
        ])
        .await;
    assert!(
        e.contains("An error occurred (InvalidSubnet.Conflict) when calling the CreateSubnet operation: The CIDR '10.0.1.0/25' conflicts with another subnet"),
        "{e}"
    );
    let e = g.err(&["ec2", "delete-vpc", "--vpc-id", &vpc_id]).await;
    assert!(
        e.contains(&format!("(DependencyViolation) when calling the DeleteVpc operation: The vpc '{vpc_id}' has dependencies and cannot be deleted.")),
        "{e}"
    );
    let e = g
        .err(&["ec2", "describe-vpcs", "--vpc-ids", "vpc-0123456789abcdef0"])
        .await;
    assert!(
        e.contains("(InvalidVpcID.NotFound) when calling the DescribeVpcs operation: The vpc ID 'vpc-0123456789abcdef0' does not exist"),
        "{e}"
    );
    let e = g
        .err(&["ec2", "create-vpc", "--cidr-block", "10.0.0.0/8"])
        .await;
    assert!(e.contains("(InvalidVpc.Range)"), "{e}");
    let e = g
        .err(&[
            "ec2",
            "create-vpc",
            "--cidr-block",
            "10.5.0.0/16",
            "--dry-run",
        ])
        .await;
    assert!(
        e.contains("(DryRunOperation) when calling the CreateVpc operation: Request would have succeeded, but DryRun flag is set."),
        "{e}"
    );

    // Security group rules, then tear everything down in dependency order.
    let sg = g
        .ok(&[
            "ec2",
            "create-security-group",
            "--group-name",
            "web",
            "--description",
            "web",
            "--vpc-id",
            &vpc_id,
        ])
        .await;
    let sg_id = s(&sg["GroupId"]);
    g.ok(&[
        "ec2",
        "authorize-security-group-ingress",
        "--group-id",
        &sg_id,
        "--protocol",
        "tcp",
        "--port",
        "443",
        "--cidr",
        "0.0.0.0/0",
    ])
    .await;
    let e = g
        .err(&[
            "ec2",
            "authorize-security-group-ingress",
            "--group-id",
            &sg_id,
            "--protocol",
            "tcp",
            "--port",
            "443",
            "--cidr",
            "0.0.0.0/0",
        ])
        .await;
    assert!(e.contains("(InvalidPermission.Duplicate)"), "{e}");
    let rules = g
        .ok(&[
            "ec2",
            "describe-security-group-rules",
            "--filters",
            &format!("Name=group-id,Values={sg_id}"),
            "--query",
            "SecurityGroupRules[?IsEgress==`false`].[IpProtocol,FromPort,ToPort,CidrIpv4]",
        ])
        .await;
    assert_eq!(rules, serde_json::json!([["tcp", 443, 443, "0.0.0.0/0"]]));
    g.ok(&["ec2", "delete-security-group", "--group-id", &sg_id])
        .await;
    g.ok(&["ec2", "delete-subnet", "--subnet-id", &subnet_id])
        .await;
    g.ok(&["ec2", "delete-vpc", "--vpc-id", &vpc_id]).await;
    let left = g
        .ok(&[
            "ec2",
            "describe-vpcs",
            "--query",
            "length(Vpcs[?IsDefault==`false`])",
        ])
        .await;
    assert_eq!(left, 0);
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_key_pairs_and_regions() {
    let g = Gw::start().await;
    let zones = g
        .ok(&[
            "ec2",
            "describe-availability-zones",
            "--query",
            "AvailabilityZones[].ZoneName",
        ])
        .await;
    assert_eq!(zones.as_array().map(Vec::len), Some(6));
    let key = g
        .ok(&[
            "ec2",
            "create-key-pair",
            "--key-name",
            "ops",
            "--query",
            "KeyMaterial",
            "--output",
            "text",
        ])
        .await;
    assert!(s(&key).starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
    let run = g
        .ok(&[
            "ec2",
            "run-instances",
            "--image-id",
            "ami-0123456789abcdef0",
            "--instance-type",
            "t3.micro",
            "--count",
            "2",
            "--key-name",
            "ops",
        ])
        .await;
    let instances = run["Instances"].as_array().expect("instances");
    assert_eq!(instances.len(), 2);
    assert_eq!(instances[0]["State"]["Name"], "pending");
    let id = s(&instances[0]["InstanceId"]);
    let dns = s(&instances[0]["PrivateDnsName"]);
    assert!(
        dns.starts_with("ip-172-31-") && dns.ends_with(".ec2.internal"),
        "{dns}"
    );
    let states = g
        .ok(&[
            "ec2",
            "describe-instances",
            "--filters",
            "Name=instance-type,Values=t3.micro",
            "--query",
            "Reservations[].Instances[].State.Name",
        ])
        .await;
    assert_eq!(states, serde_json::json!(["running", "running"]));
    let t = g
        .ok(&["ec2", "terminate-instances", "--instance-ids", &id])
        .await;
    assert_eq!(
        t["TerminatingInstances"][0]["CurrentState"]["Name"],
        "shutting-down"
    );
    let types = g
        .ok(&[
            "ec2", "describe-instance-types", "--instance-types", "m5.large", "--query",
            "InstanceTypes[0].[VCpuInfo.DefaultVCpus,MemoryInfo.SizeInMiB,NetworkInfo.MaximumNetworkInterfaces,NetworkInfo.Ipv4AddressesPerInterface]",
        ])
        .await;
    assert_eq!(types, serde_json::json!([2, 8192, 3, 10]));
    g.stop().await;
}

/// The read-back the terraform provider does after CreateVpc / CreateSubnet (aws_vpc, aws_subnet),
/// through boto3's parser, the same botocore the provider's Go SDK mirrors.
const TERRAFORM_STYLE: &str = r#"
import json, os
import boto3
from botocore.config import Config
ec2 = boto3.client("ec2", endpoint_url=os.environ["SKIFF_URL"], region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test",
                   config=Config(retries={"max_attempts": 1}))
out = {}
vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16",
                     TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "tf"}]}])["Vpc"]
vid = vpc["VpcId"]
ec2.get_waiter("vpc_available").wait(VpcIds=[vid])
ec2.modify_vpc_attribute(VpcId=vid, EnableDnsHostnames={"Value": True})
for attr in ["enableDnsSupport", "enableDnsHostnames", "enableNetworkAddressUsageMetrics"]:
    r = ec2.describe_vpc_attribute(VpcId=vid, Attribute=attr)
    key = attr[0].upper() + attr[1:]
    out[attr] = r[key]["Value"]
f = lambda **kv: [{"Name": k.replace("_", "-").replace("-main", ".main"), "Values": [v]} for k, v in kv.items()]
out["main_rt"] = len(ec2.describe_route_tables(Filters=[{"Name": "association.main", "Values": ["true"]},
                                                        {"Name": "vpc-id", "Values": [vid]}])["RouteTables"])
out["default_acl"] = len(ec2.describe_network_acls(Filters=[{"Name": "default", "Values": ["true"]},
                                                            {"Name": "vpc-id", "Values": [vid]}])["NetworkAcls"])
out["default_sg"] = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]},
                                                          {"Name": "vpc-id", "Values": [vid]}])["SecurityGroups"][0]["GroupName"]
sn = ec2.create_subnet(VpcId=vid, CidrBlock="10.20.1.0/24", AvailabilityZone="us-east-1b")["Subnet"]
ec2.get_waiter("subnet_available").wait(SubnetIds=[sn["SubnetId"]])
ec2.modify_subnet_attribute(SubnetId=sn["SubnetId"], MapPublicIpOnLaunch={"Value": True})
out["map_public"] = ec2.describe_subnets(SubnetIds=[sn["SubnetId"]])["Subnets"][0]["MapPublicIpOnLaunch"]
eip = ec2.allocate_address(Domain="vpc")
nat = ec2.create_nat_gateway(SubnetId=sn["SubnetId"], AllocationId=eip["AllocationId"])["NatGateway"]
ec2.get_waiter("nat_gateway_available").wait(NatGatewayIds=[nat["NatGatewayId"]])
out["nat_public_ip"] = ec2.describe_nat_gateways(NatGatewayIds=[nat["NatGatewayId"]])["NatGateways"][0]["NatGatewayAddresses"][0]["PublicIp"] == eip["PublicIp"]
lt = ec2.create_launch_template(LaunchTemplateName="tf-nodes", LaunchTemplateData={
    "InstanceType": "m5.large", "ImageId": "ami-0123456789abcdef0",
    "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 30, "VolumeType": "gp3"}}]})["LaunchTemplate"]
v = ec2.describe_launch_template_versions(LaunchTemplateId=lt["LaunchTemplateId"], Versions=["$Default"])
out["lt_volume"] = v["LaunchTemplateVersions"][0]["LaunchTemplateData"]["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"]
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terraform_style_read_back_through_boto3() {
    let g = Gw::start().await;
    let out = tokio::process::Command::new("python3")
        .args(["-c", TERRAFORM_STYLE])
        .env("SKIFF_URL", g.url())
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .await
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "boto3 script failed: {stderr}");
    let r: Value = serde_json::from_slice(&out.stdout).expect("script prints JSON");
    assert_eq!(r["enableDnsSupport"], true);
    assert_eq!(r["enableDnsHostnames"], true);
    assert_eq!(r["enableNetworkAddressUsageMetrics"], false);
    assert_eq!(
        (r["main_rt"].clone(), r["default_acl"].clone()),
        (1.into(), 1.into())
    );
    assert_eq!(r["default_sg"], "default");
    assert_eq!(r["map_public"], true);
    assert_eq!(r["nat_public_ip"], true);
    assert_eq!(r["lt_volume"], 30);
    g.stop().await;
}

/// The stack under test.
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
    ec2 = var.endpoint
    sts = var.endpoint
  }
}
resource "aws_vpc" "main" {
  cidr_block           = "10.0.0.0/16"
  enable_dns_hostnames = true
  tags                 = { Name = "tf" }
}
resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.0.1.0/24"
  availability_zone       = "us-east-1a"
  map_public_ip_on_launch = true
}
resource "aws_subnet" "private" {
  vpc_id            = aws_vpc.main.id
  cidr_block        = "10.0.2.0/24"
  availability_zone = "us-east-1b"
}
resource "aws_internet_gateway" "igw" { vpc_id = aws_vpc.main.id }
resource "aws_eip" "nat" { domain = "vpc" }
resource "aws_nat_gateway" "nat" {
  allocation_id = aws_eip.nat.id
  subnet_id     = aws_subnet.public.id
  depends_on    = [aws_internet_gateway.igw]
}
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.igw.id
  }
}
resource "aws_route_table" "private" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.nat.id
  }
}
resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}
resource "aws_route_table_association" "private" {
  subnet_id      = aws_subnet.private.id
  route_table_id = aws_route_table.private.id
}
resource "aws_security_group" "web" {
  name        = "web"
  description = "web"
  vpc_id      = aws_vpc.main.id
  ingress {
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_security_group" "ssh" {
  name        = "ssh"
  description = "rules managed as separate resources"
  vpc_id      = aws_vpc.main.id
}
resource "aws_vpc_security_group_ingress_rule" "ssh" {
  security_group_id = aws_security_group.ssh.id
  cidr_ipv4         = "10.0.0.0/8"
  from_port         = 22
  to_port           = 22
  ip_protocol       = "tcp"
}
resource "aws_launch_template" "nodes" {
  name          = "nodes"
  image_id      = "ami-0123456789abcdef0"
  instance_type = "m5.large"
  vpc_security_group_ids = [aws_security_group.web.id]
  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size = 30
      volume_type = "gp3"
    }
  }
  tag_specifications {
    resource_type = "instance"
    tags          = { team = "a" }
  }
}
resource "aws_default_security_group" "default" {
  vpc_id = aws_vpc.main.id
}
resource "aws_key_pair" "ops" {
  key_name   = "ops"
  public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f ops@skiff"
}
resource "aws_instance" "app" {
  ami                    = "ami-0123456789abcdef0"
  instance_type          = "m5.large"
  subnet_id              = aws_subnet.private.id
  vpc_security_group_ids = [aws_security_group.web.id]
  key_name               = aws_key_pair.ops.key_name
  tags                   = { Name = "app" }
}
resource "aws_ebs_volume" "data" {
  availability_zone = "us-east-1b"
  size              = 10
  type              = "gp3"
}
resource "aws_volume_attachment" "data" {
  device_name = "/dev/xvdf"
  volume_id   = aws_ebs_volume.data.id
  instance_id = aws_instance.app.id
}
"#;

/// A VPC stack as EKS users write it (VPC, public/private subnets, IGW, EIP + NAT, route tables and
/// associations, security group with inline and standalone rules, launch template): apply, an empty
/// plan afterwards, destroy, and nothing left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terraform_vpc_stack_applies_plans_clean_and_destroys() {
    let g = Gw::start().await;
    let tf = TfStack::init(&g, MAIN_TF, &[]).await;
    tf.apply_and_plan_clean().await;
    let nat = g
        .ok(&[
            "ec2",
            "describe-nat-gateways",
            "--query",
            "NatGateways[0].State",
        ])
        .await;
    assert_eq!(nat, "available");
    tf.destroy().await;
    let left = g
        .ok(&[
            "ec2",
            "describe-vpcs",
            "--query",
            "length(Vpcs[?IsDefault==`false`])",
        ])
        .await;
    assert_eq!(left, 0);
    g.stop().await;
}
