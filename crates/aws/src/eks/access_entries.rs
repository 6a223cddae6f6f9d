//! Access entries and access policies: Create/Describe/List/Update/DeleteAccessEntry,
//! Associate/DisassociateAccessPolicy, ListAssociatedAccessPolicies, ListAccessPolicies, and the
//! creator's admin entry CreateCluster records when `bootstrapClusterCreatorAdminPermissions` is on.
//! The EKS layer's authenticator maps IAM principals to Kubernetes users through these records
//! (`list_access_entry_records`).

use serde_json::{Value, json};
use sha2::Digest;
use skiff_aws_model::AwsError;
use skiff_store::{Op, Precondition, Store};

use super::clusters::load_cluster;
use super::common::{
    error, in_use, invalid, key_in, load, not_found, now, public, req_str, str_list, tags_of,
};
use crate::context::RequestContext;
use crate::resources;

/// The access policies EKS offers (`arn:aws:eks::aws:cluster-access-policy/<name>`).
pub const ACCESS_POLICIES: &[&str] = &[
    "AmazonAIOpsAssistantPolicy",
    "AmazonEKSAdminPolicy",
    "AmazonEKSAdminViewPolicy",
    "AmazonEKSAutoNodePolicy",
    "AmazonEKSBlockStorageClusterPolicy",
    "AmazonEKSBlockStoragePolicy",
    "AmazonEKSClusterAdminPolicy",
    "AmazonEKSComputeClusterPolicy",
    "AmazonEKSComputePolicy",
    "AmazonEKSEditPolicy",
    "AmazonEKSHybridPolicy",
    "AmazonEKSLoadBalancingClusterPolicy",
    "AmazonEKSLoadBalancingPolicy",
    "AmazonEKSNetworkingClusterPolicy",
    "AmazonEKSNetworkingPolicy",
    "AmazonEKSViewPolicy",
    "AmazonEMRJobPolicy",
    "AmazonSagemakerHyperpodClusterPolicy",
    "AmazonSagemakerHyperpodControllerPolicy",
    "AmazonSagemakerHyperpodSystemNamespacePolicy",
];

pub fn access_policy_arn(name: &str) -> String {
    format!("arn:aws:eks::aws:cluster-access-policy/{name}")
}

fn entry_key(account: &str, region: &str, cluster: &str, principal: &str) -> String {
    // Principal ARNs hold '/' and ':'; a digest keeps the key one segment.
    let digest = hex::encode(&sha2::Sha256::digest(principal.as_bytes())[..16]);
    key_in(
        account,
        region,
        "accessentry",
        &format!("{cluster}/{digest}"),
    )
}

fn no_entry() -> AwsError {
    not_found(
        "The specified principalArn could not be found. You can view your available access entries with 'list-access-entries'.",
    )
}

/// An assumed-role session ARN names its role: access entries are keyed by the role's IAM ARN.
pub(crate) fn principal_of(arn: &str) -> String {
    if let Some(rest) = arn.strip_prefix("arn:aws:sts::")
        && let Some((account, tail)) = rest.split_once(":assumed-role/")
    {
        let role = tail.split('/').next().unwrap_or_default();
        return format!("arn:aws:iam::{account}:role/{role}");
    }
    arn.to_string()
}

fn default_username(principal: &str, kind: &str) -> String {
    match kind {
        "EC2_LINUX" | "EC2_WINDOWS" | "HYBRID_LINUX" => {
            "system:node:{{EC2PrivateDNSName}}".to_string()
        }
        "FARGATE_LINUX" => "system:node:{{SessionName}}".to_string(),
        _ => match principal.split_once(":role/") {
            Some((head, role)) => format!(
                "{}:assumed-role/{}/{{{{SessionName}}}}",
                head.replace("arn:aws:iam::", "arn:aws:sts::"),
                role.rsplit('/').next().unwrap_or(role)
            ),
            None => principal.to_string(),
        },
    }
}

fn new_entry(
    ctx: &RequestContext,
    cluster: &str,
    principal: &str,
    kind: &str,
    username: Option<&str>,
    groups: Vec<String>,
    tags: Value,
) -> Value {
    let account = &ctx.account_id;
    let at = now();
    let name = principal.rsplit(['/', ':']).next().unwrap_or_default();
    json!({
        "clusterName": cluster,
        "principalArn": principal,
        "kubernetesGroups": groups,
        "accessEntryArn": format!("arn:aws:eks:{}:{account}:access-entry/{cluster}/{}/{account}/{name}/{}", ctx.region,
            if principal.contains(":role/") { "role" } else { "user" }, uuid::Uuid::new_v4()),
        "createdAt": at,
        "modifiedAt": at,
        "tags": tags,
        "username": username.map(str::to_string).unwrap_or_else(|| default_username(principal, kind)),
        "type": kind,
        "_policies": [],
    })
}

/// CreateCluster's bootstrap: the creator gets an entry with AmazonEKSClusterAdminPolicy (cluster scope).
pub(crate) fn bootstrap_op(ctx: &RequestContext, cluster: &str) -> Op {
    let principal = principal_of(&ctx.caller.arn);
    let mut entry = new_entry(
        ctx,
        cluster,
        &principal,
        "STANDARD",
        None,
        Vec::new(),
        json!({}),
    );
    let at = now();
    entry["_policies"] = json!([{"policyArn": access_policy_arn("AmazonEKSClusterAdminPolicy"),
        "accessScope": {"type": "cluster", "namespaces": []}, "associatedAt": at, "modifiedAt": at}]);
    resources::put_op(
        &entry_key(&ctx.account_id, &ctx.region, cluster, &principal),
        &entry,
        Precondition::MustNotExist,
    )
}

async fn api_cluster(ctx: &RequestContext, name: &str) -> Result<(), AwsError> {
    let (cluster, _) = load_cluster(ctx, name).await?;
    if cluster["accessConfig"]["authenticationMode"] == "CONFIG_MAP" {
        return Err(error(
            "InvalidRequestException",
            "The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] to perform this operation.",
        ));
    }
    Ok(())
}

async fn check_principal(ctx: &RequestContext, principal: &str) -> Result<(), AwsError> {
    let bad = || invalid("The specified principalArn is invalid: invalid principal.");
    let rest = principal.strip_prefix("arn:aws:iam::").ok_or_else(bad)?;
    let (account, tail) = rest.split_once(':').ok_or_else(bad)?;
    if account != ctx.account_id {
        return Ok(()); // Another account's principal: EKS cannot see it either.
    }
    let name = tail.rsplit('/').next().unwrap_or_default();
    let exists = if tail.starts_with("role/") {
        crate::iam::common::find::<crate::iam::roles::RoleRecord>(&*ctx.store, account, name)
            .await
            .map_err(AwsError::from)?
            .is_some()
    } else if tail.starts_with("user/") {
        crate::iam::common::find::<crate::iam::users::UserRecord>(&*ctx.store, account, name)
            .await
            .map_err(AwsError::from)?
            .is_some()
    } else {
        false
    };
    if exists { Ok(()) } else { Err(bad()) }
}

async fn load_entry(
    ctx: &RequestContext,
    cluster: &str,
    principal: &str,
) -> Result<(String, Value, skiff_store::Revision), AwsError> {
    let key = entry_key(&ctx.account_id, &ctx.region, cluster, principal);
    let (v, rev) = load(&*ctx.store, &key).await?.ok_or_else(no_entry)?;
    Ok((key, v, rev))
}

async fn write(
    ctx: &RequestContext,
    key: &str,
    v: &Value,
    pre: Precondition,
    conflict: &str,
) -> Result<(), AwsError> {
    super::common::save(&*ctx.store, key, v, pre, conflict).await
}

#[doc(alias = "CreateAccessEntry")]
pub async fn create_access_entry(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    let principal = req_str(&input, "principalArn")?;
    api_cluster(ctx, cluster).await?;
    check_principal(ctx, principal).await?;
    let kind = input["type"].as_str().unwrap_or("STANDARD");
    let groups = str_list(&input["kubernetesGroups"]);
    if kind != "STANDARD" && (!groups.is_empty() || input["username"].is_string()) {
        return Err(invalid(format!(
            "The kubernetesGroups and username parameters can't be specified for access entries of type {kind}"
        )));
    }
    if groups.iter().any(|g| g.starts_with("system:")) {
        return Err(invalid(
            "The kubernetesGroups parameter can't contain groups starting with system:",
        ));
    }
    let conflict = "The specified access entry resource is already in use on this cluster.";
    let key = entry_key(&ctx.account_id, &ctx.region, cluster, principal);
    if load(&*ctx.store, &key).await?.is_some() {
        return Err(in_use(conflict));
    }
    let entry = new_entry(
        ctx,
        cluster,
        principal,
        kind,
        input["username"].as_str(),
        groups,
        json!(tags_of(&input)?),
    );
    write(ctx, &key, &entry, Precondition::MustNotExist, conflict).await?;
    Ok(json!({ "accessEntry": public(&entry) }))
}

#[doc(alias = "DescribeAccessEntry")]
pub async fn describe_access_entry(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    load_cluster(ctx, cluster).await?;
    let (_, e, _) = load_entry(ctx, cluster, req_str(&input, "principalArn")?).await?;
    Ok(json!({ "accessEntry": public(&e) }))
}

#[doc(alias = "UpdateAccessEntry")]
pub async fn update_access_entry(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    api_cluster(ctx, cluster).await?;
    let (key, mut e, rev) = load_entry(ctx, cluster, req_str(&input, "principalArn")?).await?;
    if input["kubernetesGroups"].is_array() {
        e["kubernetesGroups"] = json!(str_list(&input["kubernetesGroups"]));
    }
    if let Some(u) = input["username"].as_str() {
        e["username"] = json!(u);
    }
    e["modifiedAt"] = json!(now());
    write(
        ctx,
        &key,
        &e,
        Precondition::ModRevision(rev),
        "The access entry was modified concurrently; retry",
    )
    .await?;
    Ok(json!({ "accessEntry": public(&e) }))
}

#[doc(alias = "DeleteAccessEntry")]
pub async fn delete_access_entry(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    load_cluster(ctx, cluster).await?;
    let (key, _, rev) = load_entry(ctx, cluster, req_str(&input, "principalArn")?).await?;
    resources::commit(
        &*ctx.store,
        vec![Op::Delete {
            key,
            precondition: Precondition::ModRevision(rev),
        }],
    )
    .await
    .map_err(|e| {
        e.unwrap_or_else(|| in_use("The access entry was modified concurrently; retry"))
    })?;
    Ok(json!({}))
}

#[doc(alias = "ListAccessEntries")]
pub async fn list_access_entries(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    load_cluster(ctx, cluster).await?;
    let mut all: Vec<Value> = resources::list(
        &*ctx.store,
        &key_in(
            &ctx.account_id,
            &ctx.region,
            "accessentry",
            &format!("{cluster}/"),
        ),
    )
    .await?;
    if let Some(p) = input["associatedPolicyArn"].as_str() {
        all.retain(|e| {
            e["_policies"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|x| x["policyArn"] == p))
        });
    }
    let mut names: Vec<String> = all
        .iter()
        .filter_map(|e| e["principalArn"].as_str().map(str::to_string))
        .collect();
    names.sort();
    super::common::page_names(names, &input, "accessEntries")
}

#[doc(alias = "AssociateAccessPolicy")]
pub async fn associate_access_policy(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    let principal = req_str(&input, "principalArn")?;
    let policy = req_str(&input, "policyArn")?;
    api_cluster(ctx, cluster).await?;
    if !ACCESS_POLICIES
        .iter()
        .any(|n| access_policy_arn(n) == policy)
    {
        return Err(invalid(format!(
            "The specified policyArn is invalid: {policy}"
        )));
    }
    let scope = &input["accessScope"];
    let namespaces = str_list(&scope["namespaces"]);
    match scope["type"].as_str() {
        Some("cluster") if namespaces.is_empty() => {}
        Some("namespace") if !namespaces.is_empty() => {}
        Some("cluster") => {
            return Err(invalid(
                "Namespaces can't be specified for an access scope of type cluster",
            ));
        }
        _ => {
            return Err(invalid(
                "An access scope of type namespace requires at least one namespace",
            ));
        }
    }
    let (key, mut e, rev) = load_entry(ctx, cluster, principal).await?;
    if e["type"] != "STANDARD" {
        return Err(invalid(
            "Access policies can only be associated with access entries of type STANDARD",
        ));
    }
    let at = now();
    let mut policies: Vec<Value> = e["_policies"].as_array().cloned().unwrap_or_default();
    let associated_at = policies
        .iter()
        .find(|p| p["policyArn"] == policy)
        .map(|p| p["associatedAt"].clone())
        .unwrap_or(json!(at));
    policies.retain(|p| p["policyArn"] != policy);
    let assoc = json!({"policyArn": policy, "accessScope": {"type": scope["type"], "namespaces": namespaces}, "associatedAt": associated_at, "modifiedAt": at});
    policies.push(assoc.clone());
    e["_policies"] = json!(policies);
    write(
        ctx,
        &key,
        &e,
        Precondition::ModRevision(rev),
        "The access entry was modified concurrently; retry",
    )
    .await?;
    Ok(json!({"clusterName": cluster, "principalArn": principal, "associatedAccessPolicy": assoc}))
}

#[doc(alias = "DisassociateAccessPolicy")]
pub async fn disassociate_access_policy(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    let policy = req_str(&input, "policyArn")?;
    api_cluster(ctx, cluster).await?;
    let (key, mut e, rev) = load_entry(ctx, cluster, req_str(&input, "principalArn")?).await?;
    let mut policies: Vec<Value> = e["_policies"].as_array().cloned().unwrap_or_default();
    let before = policies.len();
    policies.retain(|p| p["policyArn"] != policy);
    if policies.len() == before {
        return Err(not_found(format!(
            "The specified policy {policy} is not associated with the access entry"
        )));
    }
    e["_policies"] = json!(policies);
    write(
        ctx,
        &key,
        &e,
        Precondition::ModRevision(rev),
        "The access entry was modified concurrently; retry",
    )
    .await?;
    Ok(json!({}))
}

#[doc(alias = "ListAssociatedAccessPolicies")]
pub async fn list_associated_access_policies(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    let principal = req_str(&input, "principalArn")?;
    load_cluster(ctx, cluster).await?;
    let (_, e, _) = load_entry(ctx, cluster, principal).await?;
    Ok(
        json!({"clusterName": cluster, "principalArn": principal, "associatedAccessPolicies": e["_policies"]}),
    )
}

#[doc(alias = "ListAccessPolicies")]
pub async fn list_access_policies(_ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let names: Vec<String> = ACCESS_POLICIES.iter().map(|s| s.to_string()).collect();
    let mut page = super::common::page_names(names, &input, "accessPolicies")?;
    let items: Vec<Value> = page["accessPolicies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|n| json!({"name": n, "arn": access_policy_arn(n)}))
        .collect();
    page["accessPolicies"] = json!(items);
    Ok(page)
}

/// Every access entry of a cluster with its associated policies (`associatedAccessPolicies`), for the
/// EKS layer's authenticator and authorizer.
pub async fn list_access_entry_records(
    store: &dyn Store,
    account: &str,
    region: &str,
    cluster: &str,
) -> Result<Vec<Value>, AwsError> {
    let all: Vec<Value> = resources::list(
        store,
        &key_in(account, region, "accessentry", &format!("{cluster}/")),
    )
    .await?;
    Ok(all
        .iter()
        .map(|e| {
            let mut p = public(e);
            p["associatedAccessPolicies"] = e["_policies"].clone();
            p
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_map_to_their_role_and_usernames_follow_eks() {
        assert_eq!(
            principal_of("arn:aws:sts::000000000000:assumed-role/Admin/alice"),
            "arn:aws:iam::000000000000:role/Admin"
        );
        assert_eq!(
            principal_of("arn:aws:iam::000000000000:user/bob"),
            "arn:aws:iam::000000000000:user/bob"
        );
        assert_eq!(
            default_username("arn:aws:iam::000000000000:role/path/Admin", "STANDARD"),
            "arn:aws:sts::000000000000:assumed-role/Admin/{{SessionName}}"
        );
        assert_eq!(
            default_username("arn:aws:iam::000000000000:role/Node", "EC2_LINUX"),
            "system:node:{{EC2PrivateDNSName}}"
        );
    }
}
