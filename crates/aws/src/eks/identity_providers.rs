//! OIDC identity provider configs: Associate/Describe/List/DisassociateIdentityProviderConfig, and
//! `list_identity_provider_records` for the EKS layer.
//!
//! As on EKS, a cluster has at most one OIDC identity provider config; associating and
//! disassociating are cluster updates (`AssociateIdentityProviderConfig` /
//! `DisassociateIdentityProviderConfig` in ListUpdates). EKS takes minutes to reconfigure the API
//! server; here the record is `ACTIVE` and its update `Successful` as soon as it is stored.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::{Op, Precondition, Store};

use super::clusters::load_cluster;
use super::common::{in_use, invalid, key_in, load, not_found, now, public, req_str, tags_of};
use super::updates::{new_update, record_update};
use crate::context::RequestContext;
use crate::resources;

/// The only identity provider type EKS supports.
const OIDC: &str = "oidc";

fn idp_key(account: &str, region: &str, cluster: &str, name: &str) -> String {
    key_in(
        account,
        region,
        "identityproviderconfig",
        &format!("{cluster}/{name}"),
    )
}

fn no_config(name: &str) -> AwsError {
    not_found(format!(
        "No identity provider config found with name: {name}."
    ))
}

/// The `identityProviderConfig` member: `{type: "oidc", name}`.
fn named_config(input: &Value) -> Result<&str, AwsError> {
    let cfg = &input["identityProviderConfig"];
    let kind = cfg["type"].as_str().unwrap_or_default();
    if kind != OIDC {
        return Err(invalid(format!(
            "Identity provider config type {kind} is not supported. Supported types: [oidc]"
        )));
    }
    cfg["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid("identityProviderConfig.name is required"))
}

/// What EKS checks before accepting an issuer: an `https://` URL without query or fragment.
fn check_oidc(oidc: &Value) -> Result<(), AwsError> {
    let issuer = oidc["issuerUrl"].as_str().unwrap_or_default();
    if !issuer.starts_with("https://") || issuer.contains('?') || issuer.contains('#') {
        return Err(invalid(format!(
            "The issuer URL {issuer} is invalid: it must use the https scheme and have no query or fragment"
        )));
    }
    if oidc["clientId"].as_str().is_none_or(str::is_empty) {
        return Err(invalid("clientId is required"));
    }
    for (member, reserved) in [("usernamePrefix", "system:"), ("groupsPrefix", "system:")] {
        if oidc[member]
            .as_str()
            .is_some_and(|p| p.starts_with(reserved))
        {
            return Err(invalid(format!(
                "{member} cannot start with the reserved prefix {reserved}"
            )));
        }
    }
    if let Some(claims) = oidc["requiredClaims"].as_object()
        && claims.len() > 10
    {
        return Err(invalid("At most 10 required claims may be specified"));
    }
    Ok(())
}

#[doc(alias = "AssociateIdentityProviderConfig")]
pub async fn associate_identity_provider_config(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let cluster_name = req_str(&input, "clusterName")?;
    let (cluster, _) = load_cluster(ctx, cluster_name).await?;
    if cluster["status"] != "ACTIVE" {
        return Err(in_use(format!(
            "Cluster {cluster_name} is not ACTIVE; identity provider configs can only be associated with an ACTIVE cluster"
        )));
    }
    let oidc = &input["oidc"];
    let name = req_str(oidc, "identityProviderConfigName")?;
    check_oidc(oidc)?;
    let existing =
        list_identity_provider_records(&*ctx.store, &ctx.account_id, &ctx.region, cluster_name)
            .await?;
    if !existing.is_empty() {
        return Err(in_use(format!(
            "Cluster {cluster_name} already has an identity provider config associated; only one is supported"
        )));
    }
    let tags = tags_of(&input)?;
    let mut record = json!({
        "identityProviderConfigName": name,
        "identityProviderConfigArn": format!(
            "arn:aws:eks:{}:{}:identityproviderconfig/{cluster_name}/oidc/{name}/{}",
            ctx.region, ctx.account_id, uuid::Uuid::new_v4()
        ),
        "clusterName": cluster_name,
        "issuerUrl": oidc["issuerUrl"],
        "clientId": oidc["clientId"],
        "tags": tags,
        "status": "ACTIVE",
        "_createdAt": now(),
    });
    for member in [
        "usernameClaim",
        "usernamePrefix",
        "groupsClaim",
        "groupsPrefix",
        "requiredClaims",
    ] {
        if !oidc[member].is_null() {
            record[member] = oidc[member].clone();
        }
    }
    let key = idp_key(&ctx.account_id, &ctx.region, cluster_name, name);
    resources::commit(
        &*ctx.store,
        vec![resources::put_op(&key, &record, Precondition::MustNotExist)],
    )
    .await
    .map_err(|e| {
        e.unwrap_or_else(|| in_use(format!("Identity provider config {name} already exists")))
    })?;
    let update = new_update(
        "AssociateIdentityProviderConfig",
        "Successful",
        vec![
            json!({"type": "IdentityProviderConfig", "value": format!("[{{\"type\":\"oidc\",\"name\":\"{name}\"}}]")}),
        ],
    );
    record_update(ctx, cluster_name, None, &update, None).await?;
    Ok(json!({ "update": update, "tags": record["tags"] }))
}

#[doc(alias = "DescribeIdentityProviderConfig")]
pub async fn describe_identity_provider_config(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    load_cluster(ctx, cluster).await?;
    let name = named_config(&input)?;
    let (record, _) = load(
        &*ctx.store,
        &idp_key(&ctx.account_id, &ctx.region, cluster, name),
    )
    .await?
    .ok_or_else(|| no_config(name))?;
    Ok(json!({ "identityProviderConfig": { "oidc": public(&record) } }))
}

#[doc(alias = "ListIdentityProviderConfigs")]
pub async fn list_identity_provider_configs(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    load_cluster(ctx, cluster).await?;
    let all =
        list_identity_provider_records(&*ctx.store, &ctx.account_id, &ctx.region, cluster).await?;
    let names: Vec<String> = all
        .iter()
        .filter_map(|r| r["identityProviderConfigName"].as_str().map(str::to_string))
        .collect();
    let paged = super::common::page_names(names, &input, "names")?;
    let configs: Vec<Value> = paged["names"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| json!({"type": OIDC, "name": n}))
        .collect();
    let mut out = json!({ "identityProviderConfigs": configs });
    if let Some(t) = paged.get("nextToken") {
        out["nextToken"] = t.clone();
    }
    Ok(out)
}

#[doc(alias = "DisassociateIdentityProviderConfig")]
pub async fn disassociate_identity_provider_config(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    load_cluster(ctx, cluster).await?;
    let name = named_config(&input)?;
    let key = idp_key(&ctx.account_id, &ctx.region, cluster, name);
    let (_, rev) = load(&*ctx.store, &key)
        .await?
        .ok_or_else(|| no_config(name))?;
    resources::commit(
        &*ctx.store,
        vec![Op::Delete {
            key,
            precondition: Precondition::ModRevision(rev),
        }],
    )
    .await
    .map_err(|e| {
        e.unwrap_or_else(|| in_use("The identity provider config was modified concurrently; retry"))
    })?;
    let update = new_update(
        "DisassociateIdentityProviderConfig",
        "Successful",
        vec![
            json!({"type": "IdentityProviderConfig", "value": format!("[{{\"type\":\"oidc\",\"name\":\"{name}\"}}]")}),
        ],
    );
    record_update(ctx, cluster, None, &update, None).await?;
    Ok(json!({ "update": update }))
}

/// Every identity provider config of a cluster (public members), for the EKS layer.
pub async fn list_identity_provider_records(
    store: &dyn Store,
    account: &str,
    region: &str,
    cluster: &str,
) -> Result<Vec<Value>, AwsError> {
    let all: Vec<Value> = resources::list(
        store,
        &key_in(
            account,
            region,
            "identityproviderconfig",
            &format!("{cluster}/"),
        ),
    )
    .await?;
    Ok(all.iter().map(public).collect())
}
