//! Fargate profiles: Create/Describe/List/DeleteFargateProfile, and `set_fargate_profile_status` for
//! the EKS layer (which schedules matching pods onto Fargate-style nodes).

use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::{Precondition, Store};

use super::clusters::{check_role, load_cluster, subnets};
use super::common::{
    in_use, invalid, key_in, load, not_found, now, page_names, public, req_str, save, str_list,
    tags_of,
};
use crate::context::RequestContext;
use crate::resources;

fn fp_key(account: &str, region: &str, cluster: &str, name: &str) -> String {
    key_in(
        account,
        region,
        "fargateprofile",
        &format!("{cluster}/{name}"),
    )
}

fn no_profile(name: &str) -> AwsError {
    not_found(format!("No Fargate Profile found with name: {name}."))
}

/// 1–5 selectors, each with a namespace and at most 5 labels.
fn check_selectors(selectors: &Value) -> Result<(), AwsError> {
    let list = selectors.as_array().cloned().unwrap_or_default();
    if list.is_empty() || list.len() > 5 {
        return Err(invalid(
            "A Fargate profile must have between 1 and 5 selectors",
        ));
    }
    for s in &list {
        if s["namespace"].as_str().is_none_or(str::is_empty) {
            return Err(invalid(
                "Each Fargate profile selector must specify a namespace",
            ));
        }
        if s["labels"].as_object().is_some_and(|l| l.len() > 5) {
            return Err(invalid(
                "A Fargate profile selector can have at most 5 labels",
            ));
        }
    }
    Ok(())
}

/// Whether a subnet is public: its route table (its own association, else the VPC's main table)
/// sends traffic to an internet gateway. Fargate takes private subnets only.
async fn routes_to_internet_gateway(
    ctx: &RequestContext,
    subnet: &str,
    vpc: &str,
) -> Result<bool, AwsError> {
    let tables = |filters: Value| async move {
        crate::ec2::dispatch(ctx, "DescribeRouteTables", json!({ "Filters": filters }))
            .await
            .map(|out| out["RouteTables"].as_array().cloned().unwrap_or_default())
    };
    let mut found = tables(json!([{"Name": "association.subnet-id", "Values": [subnet]}])).await?;
    if found.is_empty() {
        found = tables(json!([{"Name": "vpc-id", "Values": [vpc]},
                               {"Name": "association.main", "Values": ["true"]}]))
        .await?;
    }
    Ok(found.iter().any(|t| {
        t["Routes"].as_array().is_some_and(|routes| {
            routes.iter().any(|r| {
                r["GatewayId"]
                    .as_str()
                    .is_some_and(|g| g.starts_with("igw-"))
            })
        })
    }))
}

#[doc(alias = "CreateFargateProfile")]
pub async fn create_fargate_profile(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    let name = req_str(&input, "fargateProfileName")?;
    load_cluster(ctx, cluster).await?;
    let key = fp_key(&ctx.account_id, &ctx.region, cluster, name);
    let conflict = "A Fargate Profile already exists with this name in the cluster.";
    if load(&*ctx.store, &key).await?.is_some() {
        return Err(in_use(conflict));
    }
    let role = req_str(&input, "podExecutionRoleArn")?;
    check_role(ctx, role).await?;
    let subnet_ids = str_list(&input["subnets"]);
    if !subnet_ids.is_empty() {
        let found = subnets(ctx, &subnet_ids).await?;
        for (id, vpc, _) in &found {
            if routes_to_internet_gateway(ctx, id, vpc).await? {
                return Err(invalid(format!(
                    "Subnet {id} provided in Fargate Profile is not a private subnet"
                )));
            }
        }
    }
    check_selectors(&input["selectors"])?;
    let profile = json!({
        "fargateProfileName": name,
        "fargateProfileArn": format!("arn:aws:eks:{}:{}:fargateprofile/{cluster}/{name}/{}", ctx.region, ctx.account_id, uuid::Uuid::new_v4()),
        "clusterName": cluster,
        "createdAt": now(),
        "podExecutionRoleArn": role,
        "subnets": subnet_ids,
        "selectors": input["selectors"],
        "status": "CREATING",
        "tags": tags_of(&input)?,
        "health": {"issues": []},
    });
    save(
        &*ctx.store,
        &key,
        &profile,
        Precondition::MustNotExist,
        conflict,
    )
    .await?;
    Ok(json!({ "fargateProfile": public(&profile) }))
}

#[doc(alias = "DescribeFargateProfile")]
pub async fn describe_fargate_profile(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    let name = req_str(&input, "fargateProfileName")?;
    load_cluster(ctx, cluster).await?;
    let (p, _) = load(
        &*ctx.store,
        &fp_key(&ctx.account_id, &ctx.region, cluster, name),
    )
    .await?
    .ok_or_else(|| no_profile(name))?;
    Ok(json!({ "fargateProfile": public(&p) }))
}

#[doc(alias = "ListFargateProfiles")]
pub async fn list_fargate_profiles(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    load_cluster(ctx, cluster).await?;
    let all: Vec<Value> = resources::list(
        &*ctx.store,
        &key_in(
            &ctx.account_id,
            &ctx.region,
            "fargateprofile",
            &format!("{cluster}/"),
        ),
    )
    .await?;
    let names = all
        .iter()
        .filter_map(|p| p["fargateProfileName"].as_str().map(str::to_string))
        .collect();
    page_names(names, &input, "fargateProfileNames")
}

#[doc(alias = "DeleteFargateProfile")]
pub async fn delete_fargate_profile(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    let name = req_str(&input, "fargateProfileName")?;
    load_cluster(ctx, cluster).await?;
    let key = fp_key(&ctx.account_id, &ctx.region, cluster, name);
    let (mut p, rev) = load(&*ctx.store, &key)
        .await?
        .ok_or_else(|| no_profile(name))?;
    if p["status"] == "DELETING" {
        return Err(in_use(format!(
            "Fargate profile {name} is already being deleted"
        )));
    }
    // DELETING until the EKS layer has removed the profile's pods and their Fargate nodes, then
    // [`forget_fargate_profile`].
    p["status"] = json!("DELETING");
    resources::commit(
        &*ctx.store,
        vec![resources::put_op(&key, &p, Precondition::ModRevision(rev))],
    )
    .await
    .map_err(|e| {
        e.unwrap_or_else(|| in_use("The Fargate profile was modified concurrently; retry"))
    })?;
    Ok(json!({ "fargateProfile": public(&p) }))
}

/// The deleted profile's pods and nodes are gone: DescribeFargateProfile now answers
/// `ResourceNotFoundException`. Absent profiles are a no-op.
pub async fn forget_fargate_profile(
    store: &dyn Store,
    account: &str,
    region: &str,
    cluster: &str,
    name: &str,
) -> Result<(), AwsError> {
    let key = fp_key(account, region, cluster, name);
    let Some((_, rev)) = load(store, &key).await? else {
        return Ok(());
    };
    resources::commit(
        store,
        vec![skiff_store::Op::Delete {
            key,
            precondition: Precondition::ModRevision(rev),
        }],
    )
    .await
    .map(|_| ())
    .map_err(|e| {
        e.unwrap_or_else(|| in_use("The Fargate profile was modified concurrently; retry"))
    })
}

/// Every Fargate profile of a cluster (public members), for the EKS layer's scheduler integration.
pub async fn list_fargate_profile_records(
    store: &dyn Store,
    account: &str,
    region: &str,
    cluster: &str,
) -> Result<Vec<Value>, AwsError> {
    let all: Vec<Value> = resources::list(
        store,
        &key_in(account, region, "fargateprofile", &format!("{cluster}/")),
    )
    .await?;
    Ok(all.iter().map(public).collect())
}

/// Record a Fargate profile's status (`ACTIVE`, `CREATE_FAILED`).
pub async fn set_fargate_profile_status(
    store: &dyn Store,
    account: &str,
    region: &str,
    cluster: &str,
    name: &str,
    status: &str,
) -> Result<(), AwsError> {
    let key = fp_key(account, region, cluster, name);
    for _ in 0..5 {
        let (mut p, rev) = load(store, &key).await?.ok_or_else(|| no_profile(name))?;
        if p["status"] == "DELETING" {
            // Deleted meanwhile: the delete wins.
            return Ok(());
        }
        p["status"] = json!(status);
        match resources::commit(
            store,
            vec![resources::put_op(&key, &p, Precondition::ModRevision(rev))],
        )
        .await
        {
            Ok(_) => return Ok(()),
            Err(Some(e)) => return Err(e),
            Err(None) => continue,
        }
    }
    Err(in_use(
        "The Fargate profile was modified concurrently; retry",
    ))
}
