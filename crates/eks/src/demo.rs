//! `skiff up --demo`: the demo environment made the way a user would make it on AWS, through the
//! same EC2, IAM and EKS operations: a VPC `10.0.0.0/16`, three subnets in three zones tagged for
//! load balancers, a cluster role and a node role, EKS cluster `demo`, and nodegroup `demo-ng` of
//! three `t3.medium` nodes. Every step looks first, so a restart with `--demo` changes nothing.
//!
//! Two calls, because the nodegroup needs an `ACTIVE` cluster: [`ensure_cluster`], then (once the
//! cluster reconciler has started the control plane) [`ensure_nodegroup`].

use std::sync::Arc;

use serde_json::{Value, json};
use skiff_aws::context::RequestContext;
use skiff_aws::credentials::DEFAULT_ACCOUNT_ID;
use skiff_aws_model::AwsError;
use skiff_store::Store;

use crate::service_context::service_context;

pub const CLUSTER: &str = "demo";
pub const NODEGROUP: &str = "demo-ng";
pub const REGION: &str = "us-east-1";
const VPC_NAME: &str = "skiff-demo";
const SUBNETS: [(&str, &str); 3] = [
    ("10.0.1.0/24", "us-east-1a"),
    ("10.0.2.0/24", "us-east-1b"),
    ("10.0.3.0/24", "us-east-1c"),
];
const CLUSTER_ROLE: &str = "skiff-demo-cluster-role";
const NODE_ROLE: &str = "skiff-demo-node-role";

fn ctx(store: Arc<dyn Store>) -> RequestContext {
    let mut c = service_context(store, DEFAULT_ACCOUNT_ID, REGION);
    // The demo is made by the account's root user (the cluster creator becomes its admin).
    c.caller.arn = format!("arn:aws:iam::{DEFAULT_ACCOUNT_ID}:root");
    c.caller.user_id = DEFAULT_ACCOUNT_ID.to_string();
    c
}

async fn ec2(c: &RequestContext, op: &str, input: Value) -> Result<Value, AwsError> {
    skiff_aws::ec2::dispatch(c, op, input).await
}

async fn iam(c: &RequestContext, op: &str, input: Value) -> Result<Value, AwsError> {
    skiff_aws::iam::dispatch(c, op, input).await
}

async fn eks(c: &RequestContext, op: &str, input: Value) -> Result<Value, AwsError> {
    skiff_aws::eks::dispatch(c, op, input).await
}

/// The demo VPC's id, created if missing.
async fn ensure_vpc(c: &RequestContext) -> Result<String, AwsError> {
    let found = ec2(
        c,
        "DescribeVpcs",
        json!({"Filters": [{"Name": "tag:Name", "Values": [VPC_NAME]}]}),
    )
    .await?;
    if let Some(id) = found["Vpcs"][0]["VpcId"].as_str() {
        return Ok(id.to_string());
    }
    let v = ec2(
        c,
        "CreateVpc",
        json!({"CidrBlock": "10.0.0.0/16", "TagSpecifications": [{"ResourceType": "vpc",
            "Tags": [{"Key": "Name", "Value": VPC_NAME}]}]}),
    )
    .await?;
    let id = v["Vpc"]["VpcId"].as_str().unwrap_or_default().to_string();
    for attr in ["EnableDnsSupport", "EnableDnsHostnames"] {
        ec2(
            c,
            "ModifyVpcAttribute",
            json!({"VpcId": id, attr: {"Value": true}}),
        )
        .await?;
    }
    Ok(id)
}

/// The three demo subnets, created if missing, tagged for public load balancers and the cluster.
async fn ensure_subnets(c: &RequestContext, vpc: &str) -> Result<Vec<String>, AwsError> {
    let found = ec2(
        c,
        "DescribeSubnets",
        json!({"Filters": [{"Name": "vpc-id", "Values": [vpc]}]}),
    )
    .await?;
    let mut ids = Vec::new();
    for (cidr, az) in SUBNETS {
        let existing = found["Subnets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["CidrBlock"] == cidr)
            .and_then(|s| s["SubnetId"].as_str());
        let id = match existing {
            Some(id) => id.to_string(),
            None => {
                let s = ec2(
                    c,
                    "CreateSubnet",
                    json!({"VpcId": vpc, "CidrBlock": cidr, "AvailabilityZone": az,
                        "TagSpecifications": [{"ResourceType": "subnet", "Tags": [
                            {"Key": "Name", "Value": format!("{VPC_NAME}-{az}")},
                            {"Key": "kubernetes.io/role/elb", "Value": "1"},
                            {"Key": "kubernetes.io/role/internal-elb", "Value": "1"},
                            {"Key": format!("kubernetes.io/cluster/{CLUSTER}"), "Value": "shared"}]}]}),
                )
                .await?;
                s["Subnet"]["SubnetId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            }
        };
        ids.push(id);
    }
    Ok(ids)
}

/// A role trusted by `service`, with AWS managed policies attached; returns its ARN.
async fn ensure_role(
    c: &RequestContext,
    name: &str,
    service: &str,
    policies: &[&str],
) -> Result<String, AwsError> {
    if let Ok(r) = iam(c, "GetRole", json!({"RoleName": name})).await {
        return Ok(r["Role"]["Arn"].as_str().unwrap_or_default().to_string());
    }
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]});
    let r = iam(
        c,
        "CreateRole",
        json!({"RoleName": name, "AssumeRolePolicyDocument": trust.to_string()}),
    )
    .await?;
    for p in policies {
        iam(
            c,
            "AttachRolePolicy",
            json!({"RoleName": name, "PolicyArn": format!("arn:aws:iam::aws:policy/{p}")}),
        )
        .await?;
    }
    Ok(r["Role"]["Arn"].as_str().unwrap_or_default().to_string())
}

/// VPC, subnets, roles and the EKS cluster `demo` (left `CREATING` for the cluster reconciler).
pub async fn ensure_cluster(store: Arc<dyn Store>) -> Result<(), AwsError> {
    let c = ctx(store);
    let vpc = ensure_vpc(&c).await?;
    let subnets = ensure_subnets(&c, &vpc).await?;
    let role = ensure_role(
        &c,
        CLUSTER_ROLE,
        "eks.amazonaws.com",
        &["AmazonEKSClusterPolicy"],
    )
    .await?;
    match eks(&c, "DescribeCluster", json!({"name": CLUSTER})).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == "ResourceNotFoundException" => eks(
            &c,
            "CreateCluster",
            json!({"name": CLUSTER, "roleArn": role,
                       "resourcesVpcConfig": {"subnetIds": subnets}}),
        )
        .await
        .map(|_| ()),
        Err(e) => Err(e),
    }
}

/// The node role and nodegroup `demo-ng` (3 × t3.medium over the three subnets). Needs the cluster
/// `ACTIVE`; the nodegroup reconciler takes it from `CREATING`.
pub async fn ensure_nodegroup(store: Arc<dyn Store>) -> Result<(), AwsError> {
    let c = ctx(store);
    let vpc = ensure_vpc(&c).await?;
    let subnets = ensure_subnets(&c, &vpc).await?;
    let role = ensure_role(
        &c,
        NODE_ROLE,
        "ec2.amazonaws.com",
        &[
            "AmazonEKSWorkerNodePolicy",
            "AmazonEKS_CNI_Policy",
            "AmazonEC2ContainerRegistryReadOnly",
        ],
    )
    .await?;
    let input = json!({"clusterName": CLUSTER, "nodegroupName": NODEGROUP});
    match eks(&c, "DescribeNodegroup", input).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == "ResourceNotFoundException" => eks(
            &c,
            "CreateNodegroup",
            json!({"clusterName": CLUSTER, "nodegroupName": NODEGROUP, "nodeRole": role,
                       "subnets": subnets, "instanceTypes": ["t3.medium"],
                       "scalingConfig": {"minSize": 1, "maxSize": 6, "desiredSize": 3}}),
        )
        .await
        .map(|_| ()),
        Err(e) => Err(e),
    }
}
