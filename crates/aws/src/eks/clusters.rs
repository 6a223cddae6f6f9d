//! CreateCluster, DescribeCluster, ListClusters, DeleteCluster, and the domain functions the EKS layer
//! (`crates/eks`) calls to move a cluster through its life (`set_cluster_active`, `set_cluster_status`).
//!
//! These handlers only validate and record, as real EKS answers `CREATING` long before the control
//! plane exists. Nothing here marks a cluster `ACTIVE`: the EKS layer does, once its API server answers.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::{Precondition, Store};

use super::common::{
    error, in_use, invalid, key_in, load, not_found, now, page_names, public, req_str, str_list,
    tags_of,
};
use crate::context::RequestContext;
use crate::resources;

/// The version a cluster gets when CreateCluster names none (EKS's default at the time of writing).
pub const DEFAULT_VERSION: &str = "1.33";
/// Kubernetes minor versions EKS offers (standard and extended support).
pub const SUPPORTED_VERSIONS: &[&str] = &["1.28", "1.29", "1.30", "1.31", "1.32", "1.33", "1.34"];

/// The platform version EKS reports for a version (`eks.N`).
pub fn platform_version(version: &str) -> &'static str {
    match version {
        "1.34" => "eks.4",
        "1.33" => "eks.13",
        "1.32" => "eks.19",
        _ => "eks.30",
    }
}

fn cluster_key(ctx: &RequestContext, name: &str) -> String {
    key_in(&ctx.account_id, &ctx.region, "cluster", name)
}

pub(crate) fn no_cluster(name: &str) -> AwsError {
    not_found(format!("No cluster found for name: {name}."))
}

/// The cluster record and its revision, or EKS's `ResourceNotFoundException`.
pub(crate) async fn load_cluster(
    ctx: &RequestContext,
    name: &str,
) -> Result<(Value, skiff_store::Revision), AwsError> {
    load(&*ctx.store, &cluster_key(ctx, name))
        .await?
        .ok_or_else(|| no_cluster(name))
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    (1..=100).contains(&name.len())
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The role named by an IAM role ARN must exist in this account's IAM.
pub(crate) async fn check_role(ctx: &RequestContext, arn: &str) -> Result<(), AwsError> {
    let name = arn
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.split_once(":role/"))
        .map(|(_, path_name)| path_name.rsplit('/').next().unwrap_or(path_name));
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Err(invalid(format!("Invalid role arn: {arn}")));
    };
    let found = crate::iam::common::find::<crate::iam::roles::RoleRecord>(
        &*ctx.store,
        &ctx.account_id,
        name,
    )
    .await
    .map_err(AwsError::from)?;
    match found {
        Some((role, _)) if role.arn == arn => Ok(()),
        _ => Err(invalid(format!(
            "Role with arn: {arn}, does not exist. (Service: AmazonIdentityManagement; Status Code: 404; Error Code: NoSuchEntity)"
        ))),
    }
}

/// Subnets, read through EC2's own DescribeSubnets: (subnet id, vpc id, availability zone).
pub(crate) async fn subnets(
    ctx: &RequestContext,
    ids: &[String],
) -> Result<Vec<(String, String, String)>, AwsError> {
    let out = crate::ec2::dispatch(ctx, "DescribeSubnets", json!({ "SubnetIds": ids }))
        .await
        .map_err(|e| {
            let id = ids
                .iter()
                .find(|id| e.message.contains(id.as_str()))
                .cloned()
                .unwrap_or_default();
            invalid(format!(
                "The subnet ID '{id}' does not exist (Service: AmazonEC2; Status Code: 400; Error Code: {}; Request ID: {})",
                e.code, ctx.request_id
            ))
        })?;
    Ok(out["Subnets"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["SubnetId"].as_str().unwrap_or_default().to_string(),
                        s["VpcId"].as_str().unwrap_or_default().to_string(),
                        s["AvailabilityZone"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default())
}

/// `https://oidc.eks.<region>.amazonaws.com/id/<32 upper-case hex>`: the id is also the cluster's
/// endpoint prefix, as on AWS.
fn oidc_id() -> String {
    use rand::Rng;
    let n: u128 = rand::rng().random();
    format!("{n:032X}")
}

#[doc(alias = "CreateCluster")]
pub async fn create_cluster(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let name = req_str(&input, "name")?;
    if !valid_name(name) {
        return Err(invalid(format!(
            "The cluster name {name} is invalid. Cluster names must start with an alphanumeric character and contain only alphanumeric characters, hyphens and underscores, up to 100 characters."
        )));
    }
    let version = input["version"].as_str().unwrap_or(DEFAULT_VERSION);
    if !SUPPORTED_VERSIONS.contains(&version) {
        return Err(invalid(format!("unsupported Kubernetes version {version}")));
    }
    let role_arn = req_str(&input, "roleArn")?;
    let key = cluster_key(ctx, name);
    if load(&*ctx.store, &key).await?.is_some() {
        return Err(in_use(format!("Cluster already exists with name: {name}")));
    }
    check_role(ctx, role_arn).await?;
    if !input["encryptionConfig"].is_null() {
        super::updates::check_encryption_config(ctx, &input["encryptionConfig"]).await?;
    }
    let vpc_in = &input["resourcesVpcConfig"];
    let subnet_ids = str_list(&vpc_in["subnetIds"]);
    if subnet_ids.is_empty() {
        return Err(invalid(
            "Subnets specified must be in at least two different AZs",
        ));
    }
    let found = subnets(ctx, &subnet_ids).await?;
    let mut zones: Vec<&str> = found.iter().map(|s| s.2.as_str()).collect();
    zones.sort_unstable();
    zones.dedup();
    if zones.len() < 2 {
        return Err(error(
            "InvalidParameterException",
            "Subnets specified must be in at least two different AZs",
        ));
    }
    let vpc_id = found[0].1.clone();
    if found.iter().any(|s| s.1 != vpc_id) {
        return Err(invalid("Subnets specified must belong to the same VPC"));
    }
    let sg_ids = str_list(&vpc_in["securityGroupIds"]);
    if !sg_ids.is_empty() {
        crate::ec2::dispatch(ctx, "DescribeSecurityGroups", json!({ "GroupIds": sg_ids }))
            .await
            .map_err(|e| {
                invalid(format!(
                    "{} (Service: AmazonEC2; Error Code: {})",
                    e.message, e.code
                ))
            })?;
    }
    let service_cidr = input["kubernetesNetworkConfig"]["serviceIpv4Cidr"]
        .as_str()
        .unwrap_or("10.100.0.0/16");
    let parsed: ipnet::Ipv4Net = service_cidr.parse().map_err(|_| {
        invalid(format!(
            "serviceIpv4Cidr {service_cidr} is not a valid CIDR"
        ))
    })?;
    if !(12..=24).contains(&parsed.prefix_len()) {
        return Err(invalid(
            "serviceIpv4Cidr must have a prefix length between /12 and /24",
        ));
    }
    let tags = tags_of(&input)?;
    let auth_mode = input["accessConfig"]["authenticationMode"]
        .as_str()
        .unwrap_or("API_AND_CONFIG_MAP");
    let bootstrap_admin = input["accessConfig"]["bootstrapClusterCreatorAdminPermissions"]
        .as_bool()
        .unwrap_or(true);

    // The cluster security group EKS creates in the cluster's VPC, through EC2's own API.
    let sg_name = format!(
        "eks-cluster-sg-{name}-{}",
        rand::random::<u32>() % 1_000_000_000
    );
    let sg = crate::ec2::dispatch(
        ctx,
        "CreateSecurityGroup",
        json!({
            "GroupName": sg_name,
            "Description": "EKS created security group applied to ENI that is attached to EKS Control Plane master nodes, as well as any managed workloads.",
            "VpcId": vpc_id,
            "TagSpecifications": [{"ResourceType": "security-group", "Tags": [
                {"Key": "Name", "Value": sg_name},
                {"Key": format!("kubernetes.io/cluster/{name}"), "Value": "owned"}]}]
        }),
    )
    .await?;
    let sg_id = sg["GroupId"].as_str().unwrap_or_default().to_string();
    // As EKS makes it: all traffic among members (control plane ENIs, managed nodes, pods with
    // the group) is allowed by a rule referencing the group itself; egress is EC2's default.
    crate::ec2::dispatch(
        ctx,
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": sg_id, "IpPermissions": [
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": sg_id}]}]}),
    )
    .await?;

    let id = oidc_id();
    let mut logging = input["logging"].clone();
    if logging.is_null() {
        logging = json!({"clusterLogging": [{"types": ["api", "audit", "authenticator", "controllerManager", "scheduler"], "enabled": false}]});
    }
    let mut cluster = json!({
        "name": name,
        "arn": format!("arn:aws:eks:{}:{}:cluster/{name}", ctx.region, ctx.account_id),
        "createdAt": now(),
        "version": version,
        "roleArn": role_arn,
        "resourcesVpcConfig": {
            "subnetIds": subnet_ids,
            "securityGroupIds": sg_ids,
            "clusterSecurityGroupId": sg_id,
            "vpcId": vpc_id,
            "endpointPublicAccess": vpc_in["endpointPublicAccess"].as_bool().unwrap_or(true),
            "endpointPrivateAccess": vpc_in["endpointPrivateAccess"].as_bool().unwrap_or(false),
            "publicAccessCidrs": if vpc_in["publicAccessCidrs"].is_array() { vpc_in["publicAccessCidrs"].clone() } else { json!(["0.0.0.0/0"]) },
        },
        "kubernetesNetworkConfig": {
            "serviceIpv4Cidr": parsed.trunc().to_string(),
            "ipFamily": input["kubernetesNetworkConfig"]["ipFamily"].as_str().unwrap_or("ipv4"),
            "elasticLoadBalancing": {"enabled": false},
        },
        "logging": logging,
        "identity": {"oidc": {"issuer": format!("https://oidc.eks.{}.amazonaws.com/id/{id}", ctx.region)}},
        "status": "CREATING",
        "platformVersion": platform_version(version),
        "tags": tags,
        "health": {"issues": []},
        "accessConfig": {
            "authenticationMode": auth_mode,
            "bootstrapClusterCreatorAdminPermissions": bootstrap_admin,
        },
        "upgradePolicy": {"supportType": input["upgradePolicy"]["supportType"].as_str().unwrap_or("EXTENDED")},
        "deletionProtection": input["deletionProtection"].as_bool().unwrap_or(false),
        // Who created it: the EKS layer grants this principal cluster-admin when bootstrap is on.
        "_creatorArn": ctx.caller.arn,
        // EKS installs aws-node, kube-proxy and CoreDNS itself unless asked not to.
        "bootstrapSelfManagedAddons": input["bootstrapSelfManagedAddons"].as_bool().unwrap_or(true),
    });
    for member in [
        "encryptionConfig",
        "clientRequestToken",
        "zonalShiftConfig",
        "computeConfig",
        "storageConfig",
        "remoteNetworkConfig",
    ] {
        if !input[member].is_null() {
            cluster[member] = input[member].clone();
        }
    }
    let mut ops = vec![resources::put_op(
        &key,
        &cluster,
        Precondition::MustNotExist,
    )];
    if bootstrap_admin && auth_mode != "CONFIG_MAP" {
        ops.push(super::access_entries::bootstrap_op(ctx, name));
    }
    if let Err(e) = resources::commit(&*ctx.store, ops).await.map_err(|e| {
        e.unwrap_or_else(|| in_use(format!("Cluster already exists with name: {name}")))
    }) {
        // Lost a race with another CreateCluster of the same name: do not leave our group behind.
        let _ = crate::ec2::dispatch(ctx, "DeleteSecurityGroup", json!({"GroupId": sg_id})).await;
        return Err(e);
    }
    Ok(json!({ "cluster": public(&cluster) }))
}

#[doc(alias = "DescribeCluster")]
pub async fn describe_cluster(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let name = req_str(&input, "name")?;
    let (cluster, _) = load_cluster(ctx, name).await?;
    Ok(json!({ "cluster": public(&cluster) }))
}

#[doc(alias = "ListClusters")]
pub async fn list_clusters(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let prefix = key_in(&ctx.account_id, &ctx.region, "cluster", "");
    let all: Vec<Value> = resources::list(&*ctx.store, &prefix).await?;
    let names = all
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    page_names(names, &input, "clusters")
}

/// Removes the record at once and answers `DELETING`: the EKS layer sees the delete in its watch and
/// stops the control plane; terraform's wait for `ResourceNotFoundException` ends right away.
#[doc(alias = "DeleteCluster")]
pub async fn delete_cluster(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let name = req_str(&input, "name")?;
    let (mut cluster, rev) = load_cluster(ctx, name).await?;
    if cluster["deletionProtection"].as_bool() == Some(true) {
        return Err(error(
            "InvalidRequestException",
            format!("Cluster {name} has deletion protection enabled; disable it before deleting"),
        ));
    }
    let ng_prefix = key_in(
        &ctx.account_id,
        &ctx.region,
        "nodegroup",
        &format!("{name}/"),
    );
    let nodegroups: Vec<Value> = resources::list(&*ctx.store, &ng_prefix).await?;
    if !nodegroups.is_empty() {
        return Err(in_use("Cluster has nodegroups attached"));
    }
    let fp_prefix = key_in(
        &ctx.account_id,
        &ctx.region,
        "fargateprofile",
        &format!("{name}/"),
    );
    let profiles: Vec<Value> = resources::list(&*ctx.store, &fp_prefix).await?;
    if !profiles.is_empty() {
        return Err(in_use("Cluster has fargate profiles attached"));
    }
    // Everything recorded under the cluster (updates, add-ons, access entries …) goes with it.
    let mut ops = vec![skiff_store::Op::Delete {
        key: cluster_key(ctx, name),
        precondition: Precondition::ModRevision(rev),
    }];
    for kind in [
        "update",
        "addon",
        "accessentry",
        "identityproviderconfig",
        "podidentity",
    ] {
        let prefix = key_in(&ctx.account_id, &ctx.region, kind, &format!("{name}/"));
        let page = ctx
            .store
            .list(&prefix, skiff_store::ListOptions::default())
            .await
            .map_err(resources::internal)?;
        ops.extend(page.items.iter().map(|kv| resources::delete_op(&kv.key)));
    }
    resources::commit(&*ctx.store, ops)
        .await
        .map_err(|e| e.unwrap_or_else(|| in_use("The cluster was modified concurrently; retry")))?;
    if let Some(sg) = cluster["resourcesVpcConfig"]["clusterSecurityGroupId"].as_str() {
        // Best effort, as EKS: a group still referenced by user resources stays behind.
        let _ = crate::ec2::dispatch(ctx, "DeleteSecurityGroup", json!({"GroupId": sg})).await;
    }
    cluster["status"] = json!("DELETING");
    Ok(json!({ "cluster": public(&cluster) }))
}

// ---- domain functions for the EKS layer --------------------------------------------------------

/// The recorded cluster (public members only), as DescribeCluster would answer.
pub async fn get_cluster(
    store: &dyn Store,
    account: &str,
    region: &str,
    name: &str,
) -> Result<Option<Value>, AwsError> {
    Ok(load(store, &key_in(account, region, "cluster", name))
        .await?
        .map(|(c, _)| public(&c)))
}

/// The ARN of the principal that called CreateCluster (gets cluster-admin when
/// `bootstrapClusterCreatorAdminPermissions` is true).
pub async fn cluster_creator(
    store: &dyn Store,
    account: &str,
    region: &str,
    name: &str,
) -> Result<Option<String>, AwsError> {
    Ok(load(store, &key_in(account, region, "cluster", name))
        .await?
        .and_then(|(c, _)| c["_creatorArn"].as_str().map(str::to_string)))
}

/// Set a cluster's `status` (`CREATING`, `ACTIVE`, `UPDATING`, `DELETING`, `FAILED`).
pub async fn set_cluster_status(
    store: &dyn Store,
    account: &str,
    region: &str,
    name: &str,
    status: &str,
) -> Result<(), AwsError> {
    update_record(store, account, region, name, |c| {
        c["status"] = json!(status)
    })
    .await
}

/// The control plane answers: record `ACTIVE`, its endpoint (`https://127.0.0.1:<port>`) and the base64
/// PEM of its CA (`certificateAuthority.data`, what `aws eks update-kubeconfig` writes).
pub async fn set_cluster_active(
    store: &dyn Store,
    account: &str,
    region: &str,
    name: &str,
    endpoint: &str,
    ca_data: &str,
) -> Result<(), AwsError> {
    update_record(store, account, region, name, |c| {
        c["status"] = json!("ACTIVE");
        c["endpoint"] = json!(endpoint);
        c["certificateAuthority"] = json!({ "data": ca_data });
    })
    .await
}

async fn update_record(
    store: &dyn Store,
    account: &str,
    region: &str,
    name: &str,
    change: impl Fn(&mut Value),
) -> Result<(), AwsError> {
    let key = key_in(account, region, "cluster", name);
    // Retry a few times: a handler may write the same record between our read and our write.
    for _ in 0..5 {
        let (mut cluster, rev) = load(store, &key).await?.ok_or_else(|| no_cluster(name))?;
        change(&mut cluster);
        match resources::commit(
            store,
            vec![resources::put_op(
                &key,
                &cluster,
                Precondition::ModRevision(rev),
            )],
        )
        .await
        {
            Ok(_) => return Ok(()),
            Err(Some(e)) => return Err(e),
            Err(None) => continue,
        }
    }
    Err(in_use("The cluster was modified concurrently; retry"))
}
