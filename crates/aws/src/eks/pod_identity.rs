//! EKS Pod Identity associations: Create/Describe/List/Update/DeletePodIdentityAssociation.
//! The EKS layer's pod identity agent reads them (`list_pod_identity_records`) to hand pods
//! credentials for the associated role.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::{Precondition, Store};

use super::clusters::{check_role, load_cluster};
use super::common::{
    in_use, invalid, key_in, load, not_found, now, public, req_str, save, tags_of,
};
use crate::context::RequestContext;
use crate::resources;

fn assoc_key(account: &str, region: &str, cluster: &str, id: &str) -> String {
    key_in(account, region, "podidentity", &format!("{cluster}/{id}"))
}

/// `a-` and 17 lower-case alphanumerics, as EKS's association ids.
fn new_association_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..17)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("a-{tail}")
}

fn no_association(id: &str) -> AwsError {
    not_found(format!("Association not found: {id}"))
}

fn summary(a: &Value) -> Value {
    json!({"clusterName": a["clusterName"], "namespace": a["namespace"], "serviceAccount": a["serviceAccount"],
        "associationArn": a["associationArn"], "associationId": a["associationId"]})
}

#[doc(alias = "CreatePodIdentityAssociation")]
pub async fn create_pod_identity_association(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    let namespace = req_str(&input, "namespace")?;
    let sa = req_str(&input, "serviceAccount")?;
    let role = req_str(&input, "roleArn")?;
    load_cluster(ctx, cluster).await?;
    check_role(ctx, role).await?;
    if let Some(t) = input["targetRoleArn"].as_str() {
        check_role(ctx, t).await?;
    }
    let prefix = key_in(
        &ctx.account_id,
        &ctx.region,
        "podidentity",
        &format!("{cluster}/"),
    );
    let all: Vec<Value> = resources::list(&*ctx.store, &prefix).await?;
    if let Some(existing) = all
        .iter()
        .find(|a| a["namespace"] == namespace && a["serviceAccount"] == sa)
    {
        return Err(in_use(format!(
            "Association already exists: {}",
            existing["associationId"].as_str().unwrap_or_default()
        )));
    }
    let id = new_association_id();
    let at = now();
    let mut a = json!({
        "clusterName": cluster, "namespace": namespace, "serviceAccount": sa, "roleArn": role,
        "associationArn": format!("arn:aws:eks:{}:{}:podidentityassociation/{cluster}/{id}", ctx.region, ctx.account_id),
        "associationId": id, "tags": tags_of(&input)?, "createdAt": at, "modifiedAt": at,
        "disableSessionTags": input["disableSessionTags"].as_bool().unwrap_or(false),
    });
    for m in ["targetRoleArn", "policy"] {
        if !input[m].is_null() {
            a[m] = input[m].clone();
        }
    }
    if input["policy"]
        .as_str()
        .is_some_and(|p| serde_json::from_str::<Value>(p).is_err())
    {
        return Err(invalid("The policy is not a valid JSON document"));
    }
    save(
        &*ctx.store,
        &assoc_key(&ctx.account_id, &ctx.region, cluster, &id),
        &a,
        Precondition::MustNotExist,
        "Association already exists",
    )
    .await?;
    Ok(json!({ "association": public(&a) }))
}

async fn load_assoc(
    ctx: &RequestContext,
    input: &Value,
) -> Result<(String, Value, skiff_store::Revision), AwsError> {
    let cluster = req_str(input, "clusterName")?;
    let id = req_str(input, "associationId")?;
    load_cluster(ctx, cluster).await?;
    let key = assoc_key(&ctx.account_id, &ctx.region, cluster, id);
    let (a, rev) = load(&*ctx.store, &key)
        .await?
        .ok_or_else(|| no_association(id))?;
    Ok((key, a, rev))
}

#[doc(alias = "DescribePodIdentityAssociation")]
pub async fn describe_pod_identity_association(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let (_, a, _) = load_assoc(ctx, &input).await?;
    Ok(json!({ "association": public(&a) }))
}

#[doc(alias = "UpdatePodIdentityAssociation")]
pub async fn update_pod_identity_association(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let (key, mut a, rev) = load_assoc(ctx, &input).await?;
    if let Some(r) = input["roleArn"].as_str() {
        check_role(ctx, r).await?;
        a["roleArn"] = json!(r);
    }
    for m in ["disableSessionTags", "targetRoleArn", "policy"] {
        if !input[m].is_null() {
            a[m] = input[m].clone();
        }
    }
    a["modifiedAt"] = json!(now());
    save(
        &*ctx.store,
        &key,
        &a,
        Precondition::ModRevision(rev),
        "The association was modified concurrently; retry",
    )
    .await?;
    Ok(json!({ "association": public(&a) }))
}

#[doc(alias = "DeletePodIdentityAssociation")]
pub async fn delete_pod_identity_association(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let (key, a, rev) = load_assoc(ctx, &input).await?;
    resources::commit(
        &*ctx.store,
        vec![skiff_store::Op::Delete {
            key,
            precondition: Precondition::ModRevision(rev),
        }],
    )
    .await
    .map_err(|e| e.unwrap_or_else(|| in_use("The association was modified concurrently; retry")))?;
    Ok(json!({ "association": public(&a) }))
}

#[doc(alias = "ListPodIdentityAssociations")]
pub async fn list_pod_identity_associations(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    load_cluster(ctx, cluster).await?;
    let mut all: Vec<Value> = resources::list(
        &*ctx.store,
        &key_in(
            &ctx.account_id,
            &ctx.region,
            "podidentity",
            &format!("{cluster}/"),
        ),
    )
    .await?;
    all.retain(|a| {
        input["namespace"]
            .as_str()
            .is_none_or(|n| a["namespace"] == n)
            && input["serviceAccount"]
                .as_str()
                .is_none_or(|s| a["serviceAccount"] == s)
    });
    all.sort_by(|x, y| {
        x["associationId"]
            .as_str()
            .cmp(&y["associationId"].as_str())
    });
    let ids: Vec<String> = all
        .iter()
        .filter_map(|a| a["associationId"].as_str().map(str::to_string))
        .collect();
    let page = super::common::page_names(ids, &input, "ids")?;
    let chosen: Vec<Value> = page["ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|id| all.iter().find(|a| a["associationId"] == *id))
        .map(summary)
        .collect();
    let mut out = json!({ "associations": chosen });
    if let Some(t) = page.get("nextToken") {
        out["nextToken"] = t.clone();
    }
    Ok(out)
}

/// Every association of a cluster (public members), for the pod identity agent.
pub async fn list_pod_identity_records(
    store: &dyn Store,
    account: &str,
    region: &str,
    cluster: &str,
) -> Result<Vec<Value>, AwsError> {
    let all: Vec<Value> = resources::list(
        store,
        &key_in(account, region, "podidentity", &format!("{cluster}/")),
    )
    .await?;
    Ok(all.iter().map(public).collect())
}
