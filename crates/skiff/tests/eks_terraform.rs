//! End-to-end (issue 3's proof): a full EKS stack as platform teams write it in terraform (hashicorp/aws
//! 5.100 from the local mirror) against `skiff up`: VPC, public and private subnets in two AZs, IGW, EIP,
//! NAT, route tables, a security group with rules, a NACL, IAM roles with AWS managed policies, the cluster,
//! a launch template with block devices and tag specifications, two managed nodegroups (one tainted), the
//! OIDC provider and an IRSA role, an access entry with a namespaced policy, an IMMUTABLE ECR
//! repository with a lifecycle policy, a Route 53 zone with an alias record to an ALB with a target group
//! and listener, a KMS key and alias, a secret. `apply`, an empty `plan`, the cluster answers kubectl with
//! the nodegroups' nodes, and `destroy` leaves nothing behind.

mod support;

use std::path::Path;
use std::process::Command;

use support::{Skiff, kubectl, ok};

/// Where the hashicorp/aws provider is mirrored on this machine (`terraform init -plugin-dir`).
const TF_PLUGINS: &str = "/opt/tf-plugins";

const MAIN_TF: &str = r#"
variable "endpoint" { type = string }
provider "aws" {
  region                      = "us-east-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  endpoints {
    ec2 = var.endpoint
    iam = var.endpoint
    sts = var.endpoint
    eks            = var.endpoint
    ecr            = var.endpoint
    route53        = var.endpoint
    elbv2          = var.endpoint
    kms            = var.endpoint
    secretsmanager = var.endpoint
  }
}
data "aws_availability_zones" "available" { state = "available" }
resource "aws_vpc" "main" {
  cidr_block           = "10.0.0.0/16"
  enable_dns_hostnames = true
  enable_dns_support   = true
  tags                 = { Name = "tf-eks" }
}
resource "aws_subnet" "public" {
  count                   = 2
  vpc_id                  = aws_vpc.main.id
  cidr_block              = cidrsubnet(aws_vpc.main.cidr_block, 8, count.index + 101)
  availability_zone       = data.aws_availability_zones.available.names[count.index]
  map_public_ip_on_launch = true
  tags                    = { "kubernetes.io/role/elb" = "1" }
}
resource "aws_subnet" "private" {
  count             = 2
  vpc_id            = aws_vpc.main.id
  cidr_block        = cidrsubnet(aws_vpc.main.cidr_block, 8, count.index + 1)
  availability_zone = data.aws_availability_zones.available.names[count.index]
  tags = {
    "kubernetes.io/role/internal-elb" = "1"
    "kubernetes.io/cluster/tf"        = "shared"
  }
}
resource "aws_internet_gateway" "main" { vpc_id = aws_vpc.main.id }
resource "aws_eip" "nat" { domain = "vpc" }
resource "aws_nat_gateway" "main" {
  allocation_id = aws_eip.nat.id
  subnet_id     = aws_subnet.public[0].id
  depends_on    = [aws_internet_gateway.main]
}
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }
}
resource "aws_route_table" "private" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.main.id
  }
}
resource "aws_route_table_association" "public" {
  count          = 2
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}
resource "aws_route_table_association" "private" {
  count          = 2
  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private.id
}
resource "aws_security_group" "nodes" {
  name        = "tf-eks-nodes"
  description = "EKS nodes"
  vpc_id      = aws_vpc.main.id
}
resource "aws_vpc_security_group_ingress_rule" "self" {
  security_group_id            = aws_security_group.nodes.id
  referenced_security_group_id = aws_security_group.nodes.id
  ip_protocol                  = "-1"
}
resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.nodes.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}
resource "aws_vpc_security_group_ingress_rule" "https" {
  security_group_id = aws_security_group.nodes.id
  cidr_ipv4         = "10.0.0.0/16"
  from_port         = 443
  to_port           = 443
  ip_protocol       = "tcp"
}
resource "aws_network_acl" "private" {
  vpc_id     = aws_vpc.main.id
  subnet_ids = aws_subnet.private[*].id
  ingress {
    protocol   = "-1"
    rule_no    = 100
    action     = "allow"
    cidr_block = "0.0.0.0/0"
    from_port  = 0
    to_port    = 0
  }
  egress {
    protocol   = "-1"
    rule_no    = 100
    action     = "allow"
    cidr_block = "0.0.0.0/0"
    from_port  = 0
    to_port    = 0
  }
}
resource "aws_launch_template" "nodes" {
  name                   = "tf-eks-nodes"
  vpc_security_group_ids = [aws_security_group.nodes.id]
  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size = 40
      volume_type = "gp3"
    }
  }
  tag_specifications {
    resource_type = "instance"
    tags          = { team = "core" }
  }
}
resource "aws_iam_role" "cluster" {
  name = "tf-eks-cluster"
  assume_role_policy = jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow",
    Principal = { Service = "eks.amazonaws.com" }, Action = ["sts:AssumeRole", "sts:TagSession"] }] })
}
resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
}
resource "aws_iam_role" "node" {
  name = "tf-eks-node"
  assume_role_policy = jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow",
    Principal = { Service = "ec2.amazonaws.com" }, Action = "sts:AssumeRole" }] })
}
resource "aws_iam_role_policy_attachment" "node" {
  for_each   = toset(["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"])
  role       = aws_iam_role.node.name
  policy_arn = "arn:aws:iam::aws:policy/${each.value}"
}
resource "aws_iam_role" "dev" {
  name = "tf-dev"
  assume_role_policy = jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow",
    Principal = { AWS = "arn:aws:iam::000000000000:root" }, Action = "sts:AssumeRole" }] })
}
resource "aws_eks_cluster" "main" {
  name     = "tf"
  role_arn = aws_iam_role.cluster.arn
  version  = "1.32"
  vpc_config {
    subnet_ids              = aws_subnet.private[*].id
    endpoint_private_access = true
    endpoint_public_access  = true
  }
  access_config {
    authentication_mode                         = "API_AND_CONFIG_MAP"
    bootstrap_cluster_creator_admin_permissions = true
  }
  tags       = { team = "platform" }
  depends_on = [aws_iam_role_policy_attachment.cluster]
}
resource "aws_iam_openid_connect_provider" "cluster" {
  url             = aws_eks_cluster.main.identity[0].oidc[0].issuer
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = ["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"]
}
resource "aws_eks_node_group" "main" {
  cluster_name    = aws_eks_cluster.main.name
  node_group_name = "ng"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = aws_subnet.private[*].id
  instance_types  = ["t3.medium"]
  labels          = { team = "core" }
  scaling_config {
    desired_size = 2
    min_size     = 1
    max_size     = 3
  }
  depends_on = [aws_iam_role_policy_attachment.node]
}
resource "aws_eks_addon" "coredns" {
  cluster_name                = aws_eks_cluster.main.name
  addon_name                  = "coredns"
  addon_version               = "v1.12.1-eksbuild.2"
  resolve_conflicts_on_create = "OVERWRITE"
  configuration_values        = jsonencode({ replicaCount = 3 })
  depends_on                  = [aws_eks_node_group.main]
}
resource "aws_eks_access_entry" "dev" {
  cluster_name  = aws_eks_cluster.main.name
  principal_arn = aws_iam_role.dev.arn
  type          = "STANDARD"
}
resource "aws_eks_access_policy_association" "dev" {
  cluster_name  = aws_eks_cluster.main.name
  principal_arn = aws_eks_access_entry.dev.principal_arn
  policy_arn    = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
  access_scope {
    type       = "namespace"
    namespaces = ["default"]
  }
}
resource "aws_eks_node_group" "tainted" {
  cluster_name    = aws_eks_cluster.main.name
  node_group_name = "jenkins"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = aws_subnet.private[*].id
  launch_template {
    id      = aws_launch_template.nodes.id
    version = aws_launch_template.nodes.latest_version
  }
  instance_types = ["m5.large"]
  taint {
    key    = "dedicated"
    value  = "jenkins"
    effect = "NO_SCHEDULE"
  }
  scaling_config {
    desired_size = 1
    min_size     = 1
    max_size     = 2
  }
  depends_on = [aws_iam_role_policy_attachment.node]
}
resource "aws_iam_role" "s3_reader" {
  name = "tf-s3-reader"
  assume_role_policy = jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow",
    Principal = { Federated = aws_iam_openid_connect_provider.cluster.arn },
    Action = "sts:AssumeRoleWithWebIdentity",
    Condition = { StringEquals = {
      "${replace(aws_eks_cluster.main.identity[0].oidc[0].issuer, "https://", "")}:sub" = "system:serviceaccount:default:s3-reader"
      "${replace(aws_eks_cluster.main.identity[0].oidc[0].issuer, "https://", "")}:aud" = "sts.amazonaws.com"
  } } }] })
}
resource "aws_ecr_repository" "app" {
  name                 = "tf/app"
  image_tag_mutability = "IMMUTABLE"
  force_delete         = true
}
resource "aws_ecr_lifecycle_policy" "app" {
  repository = aws_ecr_repository.app.name
  policy = jsonencode({ rules = [{ rulePriority = 1, description = "untagged",
    selection = { tagStatus = "untagged", countType = "sinceImagePushed", countUnit = "days", countNumber = 14 },
  action = { type = "expire" } }] })
}
resource "aws_route53_zone" "main" { name = "tf.example.com" }
resource "aws_lb" "web" {
  name               = "tf-web"
  load_balancer_type = "application"
  internal           = false
  subnets            = aws_subnet.public[*].id
  security_groups    = [aws_security_group.nodes.id]
}
resource "aws_lb_target_group" "web" {
  name        = "tf-web"
  port        = 80
  protocol    = "HTTP"
  vpc_id      = aws_vpc.main.id
  target_type = "ip"
}
resource "aws_lb_listener" "web" {
  load_balancer_arn = aws_lb.web.arn
  port              = 80
  protocol          = "HTTP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.web.arn
  }
}
resource "aws_route53_record" "web" {
  zone_id = aws_route53_zone.main.zone_id
  name    = "web.tf.example.com"
  type    = "A"
  alias {
    name                   = aws_lb.web.dns_name
    zone_id                = aws_lb.web.zone_id
    evaluate_target_health = true
  }
}
resource "aws_kms_key" "secrets" {
  description             = "eks secrets"
  deletion_window_in_days = 7
}
resource "aws_kms_alias" "secrets" {
  name          = "alias/tf-eks-secrets"
  target_key_id = aws_kms_key.secrets.key_id
}
resource "aws_secretsmanager_secret" "db" {
  name                    = "tf/db"
  kms_key_id              = aws_kms_key.secrets.arn
  recovery_window_in_days = 0
}
resource "aws_secretsmanager_secret_version" "db" {
  secret_id     = aws_secretsmanager_secret.db.id
  secret_string = "s3cr3t"
}
output "endpoint" { value = aws_eks_cluster.main.endpoint }
output "oidc_arn" { value = aws_iam_openid_connect_provider.cluster.arn }
"#;

fn terraform(dir: &Path, args: &[&str], endpoint: &str) -> (bool, String) {
    let out = Command::new("terraform")
        .args(args)
        .current_dir(dir)
        .env("TF_VAR_endpoint", endpoint)
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("terraform is installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `terraform output -raw NAME` (stdout only: terraform warns about CLI configuration on stderr).
fn terraform_output(dir: &Path, name: &str) -> String {
    let out = Command::new("terraform")
        .args(["output", "-raw", name])
        .current_dir(dir)
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .expect("terraform is installed");
    assert!(out.status.success(), "terraform output {name} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn terraform_eks_stack_applies_answers_kubectl_and_destroys() {
    assert!(
        Path::new(TF_PLUGINS).exists(),
        "the terraform AWS provider mirror {TF_PLUGINS} is missing"
    );
    let skiff = Skiff::start(&[]);
    let dir = skiff.data_dir.join("tf");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.tf"), MAIN_TF).unwrap();
    let url = skiff.gateway.clone();
    let plugin_dir = format!("-plugin-dir={TF_PLUGINS}");
    let (ok_init, out) = terraform(&dir, &["init", "-input=false", &plugin_dir], &url);
    assert!(ok_init, "terraform init failed:\n{out}");
    let (applied, out) = terraform(&dir, &["apply", "-auto-approve", "-input=false"], &url);
    assert!(applied, "terraform apply failed:\n{out}");

    // Nothing drifts: the provider reads back exactly what it wrote.
    let (clean, out) = terraform(&dir, &["plan", "-detailed-exitcode", "-input=false"], &url);
    assert!(clean, "plan after apply is not empty:\n{out}");

    // The cluster terraform made is real: its endpoint answers kubectl with the nodegroup's nodes.
    let endpoint = terraform_output(&dir, "endpoint");
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");
    let kc = skiff.kubeconfig("tf");
    let nodes = ok(kubectl(
        &kc,
        &[
            "get",
            "nodes",
            "-l",
            "eks.amazonaws.com/nodegroup=ng,team=core",
            "-o",
            "name",
        ],
    ));
    assert_eq!(nodes.lines().count(), 2, "{nodes}");
    let taints = ok(kubectl(
        &kc,
        &[
            "get",
            "nodes",
            "-l",
            "eks.amazonaws.com/nodegroup=jenkins",
            "-o",
            "jsonpath={.items[*].spec.taints[*].key}",
        ],
    ));
    assert_eq!(taints.trim(), "dedicated");
    // The managed CoreDNS add-on runs with the configured replicas.
    let coredns = ok(kubectl(
        &kc,
        &[
            "-n",
            "kube-system",
            "get",
            "deployment",
            "coredns",
            "-o",
            "jsonpath={.status.availableReplicas} {.spec.template.spec.containers[0].image}",
        ],
    ));
    assert_eq!(
        coredns.trim(),
        "3 602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/coredns:v1.12.1-eksbuild.2"
    );
    let issuer = ok(skiff.aws(&[
        "eks",
        "describe-cluster",
        "--name",
        "tf",
        "--query",
        "cluster.identity.oidc.issuer",
        "--output",
        "text",
    ]));
    let oidc_arn = terraform_output(&dir, "oidc_arn");
    let host = issuer.trim().trim_start_matches("https://");
    assert!(oidc_arn.ends_with(host), "{oidc_arn} vs {host}");

    let (destroyed, out) = terraform(&dir, &["destroy", "-auto-approve", "-input=false"], &url);
    assert!(destroyed, "terraform destroy failed:\n{out}");
    let clusters = ok(skiff.aws(&[
        "eks",
        "list-clusters",
        "--query",
        "clusters",
        "--output",
        "text",
    ]));
    assert!(clusters.trim().is_empty(), "{clusters}");
    let roles = ok(skiff.aws(&[
        "iam",
        "list-roles",
        "--query",
        "Roles[].RoleName",
        "--output",
        "text",
    ]));
    assert!(!roles.contains("tf-eks"), "{roles}");
}
