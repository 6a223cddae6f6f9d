//! Cluster updates: UpdateClusterVersion, UpdateClusterConfig, DescribeUpdate, ListUpdates, and
//! `complete_update` for the EKS layer.
//!
//! A version update needs the control plane to change, so it stays `InProgress` (cluster `UPDATING`)
//! until the EKS layer calls [`complete_update`]. A config update (logging, endpoint access, access
//! config) changes only what this record says, so it is applied and `Successful` at once.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::{Precondition, Revision, Store};

use super::clusters::{SUPPORTED_VERSIONS, load_cluster};
use super::common::{in_use, invalid, key_in, load, not_found, now, public, req_str};
use crate::context::RequestContext;
use crate::resources;

/// A new `Update` shape.
pub(crate) fn new_update(kind: &str, status: &str, params: Vec<Value>) -> Value {
    json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "status": status,
        "type": kind,
        "params": params,
        "createdAt": now(),
        "errors": [],
    })
}

fn update_key(account: &str, region: &str, cluster: &str, id: &str) -> String {
    key_in(account, region, "update", &format!("{cluster}/{id}"))
}

/// Store an update (tagged with its nodegroup, if any) together with the changed owner record, in one
/// transaction guarded by the owner's revision.
pub(crate) async fn record_update(
    ctx: &RequestContext,
    cluster: &str,
    nodegroup: Option<&str>,
    update: &Value,
    owner: Option<(&str, &Value, Revision)>,
) -> Result<(), AwsError> {
    let mut stored = update.clone();
    if let Some(ng) = nodegroup {
        stored["_nodegroup"] = json!(ng);
    }
    let id = update["id"].as_str().unwrap_or_default();
    let mut ops = vec![resources::put_op(
        &update_key(&ctx.account_id, &ctx.region, cluster, id),
        &stored,
        Precondition::MustNotExist,
    )];
    if let Some((key, record, rev)) = owner {
        ops.push(resources::put_op(
            key,
            record,
            Precondition::ModRevision(rev),
        ));
    }
    resources::commit(&*ctx.store, ops)
        .await
        .map(|_| ())
        .map_err(|e| e.unwrap_or_else(|| in_use("The resource was modified concurrently; retry")))
}

/// An update belongs to the cluster itself, or to the nodegroup / add-on the request names.
fn owned_by(update: &Value, input: &Value) -> bool {
    update["_nodegroup"].as_str() == input["nodegroupName"].as_str()
        && update["_addon"].as_str() == input["addonName"].as_str()
}

fn require_active(cluster: &Value) -> Result<(), AwsError> {
    if cluster["status"] != "ACTIVE" {
        return Err(in_use(format!(
            "Cluster {} is currently being {}. Please wait until it is ACTIVE.",
            cluster["name"].as_str().unwrap_or_default(),
            cluster["status"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase()
        )));
    }
    Ok(())
}

#[doc(alias = "UpdateClusterVersion")]
pub async fn update_cluster_version(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let name = req_str(&input, "name")?;
    let version = req_str(&input, "version")?;
    let (mut cluster, rev) = load_cluster(ctx, name).await?;
    require_active(&cluster)?;
    let current = cluster["version"].as_str().unwrap_or_default().to_string();
    let idx = |v: &str| SUPPORTED_VERSIONS.iter().position(|s| *s == v);
    match (idx(&current), idx(version)) {
        (Some(c), Some(n)) if n == c + 1 => {}
        _ => {
            return Err(invalid(format!(
                "Unsupported Kubernetes minor version update from {current} to {version}"
            )));
        }
    }
    cluster["status"] = json!("UPDATING");
    let update = new_update(
        "VersionUpdate",
        "InProgress",
        vec![
            json!({"type": "Version", "value": version}),
            json!({"type": "PlatformVersion", "value": super::clusters::platform_version(version)}),
        ],
    );
    let key = key_in(&ctx.account_id, &ctx.region, "cluster", name);
    record_update(ctx, name, None, &update, Some((&key, &cluster, rev))).await?;
    Ok(json!({ "update": update }))
}

#[doc(alias = "UpdateClusterConfig")]
pub async fn update_cluster_config(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let name = req_str(&input, "name")?;
    let (mut cluster, rev) = load_cluster(ctx, name).await?;
    require_active(&cluster)?;
    let mut params = Vec::new();
    let (kind, mut touched) = ("ConfigUpdate", false);
    if input["logging"].is_object() {
        cluster["logging"] = input["logging"].clone();
        params.push(json!({"type": "ClusterLogging", "value": input["logging"].to_string()}));
        touched = true;
    }
    let vpc = &input["resourcesVpcConfig"];
    if vpc.is_object() {
        for (member, param) in [
            ("endpointPublicAccess", "EndpointPublicAccess"),
            ("endpointPrivateAccess", "EndpointPrivateAccess"),
        ] {
            if let Some(b) = vpc[member].as_bool() {
                cluster["resourcesVpcConfig"][member] = json!(b);
                params.push(json!({"type": param, "value": b.to_string()}));
            }
        }
        if vpc["publicAccessCidrs"].is_array() {
            cluster["resourcesVpcConfig"]["publicAccessCidrs"] = vpc["publicAccessCidrs"].clone();
            params.push(
                json!({"type": "PublicAccessCidrs", "value": vpc["publicAccessCidrs"].to_string()}),
            );
        }
        let public_on =
            cluster["resourcesVpcConfig"]["endpointPublicAccess"].as_bool() == Some(true);
        let private_on =
            cluster["resourcesVpcConfig"]["endpointPrivateAccess"].as_bool() == Some(true);
        if !public_on && !private_on {
            return Err(invalid(
                "Cluster must have either private or public endpoint access or both",
            ));
        }
        touched = true;
    }
    if let Some(mode) = input["accessConfig"]["authenticationMode"].as_str() {
        let current = cluster["accessConfig"]["authenticationMode"]
            .as_str()
            .unwrap_or_default();
        // EKS only moves towards API: CONFIG_MAP → API_AND_CONFIG_MAP → API.
        let rank = |m: &str| match m {
            "CONFIG_MAP" => 0,
            "API_AND_CONFIG_MAP" => 1,
            _ => 2,
        };
        if rank(mode) < rank(current) {
            return Err(invalid(format!(
                "Unsupported authentication mode update from {current} to {mode}"
            )));
        }
        cluster["accessConfig"]["authenticationMode"] = json!(mode);
        params.push(json!({"type": "AuthenticationMode", "value": mode}));
        touched = true;
    }
    if input["upgradePolicy"].is_object() {
        cluster["upgradePolicy"] = input["upgradePolicy"].clone();
        params.push(json!({"type": "UpgradePolicySupportType", "value": input["upgradePolicy"]["supportType"].as_str().unwrap_or_default()}));
        touched = true;
    }
    if let Some(b) = input["deletionProtection"].as_bool() {
        cluster["deletionProtection"] = json!(b);
        params.push(json!({"type": "DeletionProtection", "value": b.to_string()}));
        touched = true;
    }
    if !touched {
        return Err(invalid("No changes needed"));
    }
    let update = new_update(kind, "Successful", params);
    let key = key_in(&ctx.account_id, &ctx.region, "cluster", name);
    record_update(ctx, name, None, &update, Some((&key, &cluster, rev))).await?;
    Ok(json!({ "update": update }))
}

/// EKS's checks on `encryptionConfig`: exactly one entry, resources `["secrets"]`, and a KMS key
/// that exists and is enabled in the caller's account.
pub(crate) async fn check_encryption_config(
    ctx: &RequestContext,
    config: &Value,
) -> Result<(), AwsError> {
    let entries = config.as_array().map(Vec::as_slice).unwrap_or_default();
    let [entry] = entries else {
        return Err(invalid("Exactly one encryptionConfig entry is supported"));
    };
    let resources = entry["resources"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if resources.len() != 1 || resources[0] != "secrets" {
        return Err(invalid(
            "Encryption is only supported for resources [secrets]",
        ));
    }
    let key_arn = entry["provider"]["keyArn"]
        .as_str()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| invalid("encryptionConfig.provider.keyArn is required"))?;
    crate::kms::key_status(ctx, key_arn).await.map_err(|e| {
        invalid(format!(
            "Provided KMS key {key_arn} is not usable for encryption: {}",
            e.message
        ))
    })?;
    Ok(())
}

#[doc(alias = "AssociateEncryptionConfig")]
pub async fn associate_encryption_config(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let name = req_str(&input, "clusterName")?;
    let (mut cluster, rev) = load_cluster(ctx, name).await?;
    require_active(&cluster)?;
    if cluster["encryptionConfig"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        return Err(invalid(format!(
            "Cluster {name} already has encryption enabled; it cannot be changed"
        )));
    }
    check_encryption_config(ctx, &input["encryptionConfig"]).await?;
    cluster["encryptionConfig"] = input["encryptionConfig"].clone();
    // The EKS layer seals the Secrets already stored once the record names the key.
    let update = new_update(
        "AssociateEncryptionConfig",
        "Successful",
        vec![json!({"type": "EncryptionConfig", "value": input["encryptionConfig"].to_string()})],
    );
    let key = key_in(&ctx.account_id, &ctx.region, "cluster", name);
    record_update(ctx, name, None, &update, Some((&key, &cluster, rev))).await?;
    Ok(json!({ "update": update }))
}

#[doc(alias = "DescribeUpdate")]
pub async fn describe_update(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let name = req_str(&input, "name")?;
    let id = req_str(&input, "updateId")?;
    load_cluster(ctx, name).await?;
    let (update, _) = load(
        &*ctx.store,
        &update_key(&ctx.account_id, &ctx.region, name, id),
    )
    .await?
    .filter(|(u, _)| owned_by(u, &input))
    .ok_or_else(|| not_found(format!("No update found for ID: {id}")))?;
    Ok(json!({ "update": public(&update) }))
}

#[doc(alias = "ListUpdates")]
pub async fn list_updates(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let name = req_str(&input, "name")?;
    load_cluster(ctx, name).await?;
    let prefix = key_in(&ctx.account_id, &ctx.region, "update", &format!("{name}/"));
    let mut all: Vec<Value> = resources::list(&*ctx.store, &prefix).await?;
    all.retain(|u| owned_by(u, &input));
    all.sort_by(|a, b| a["createdAt"].as_str().cmp(&b["createdAt"].as_str()));
    let ids = all
        .iter()
        .filter_map(|u| u["id"].as_str().map(str::to_string))
        .collect::<Vec<_>>();
    // Ids are random, so the token is a position rather than a name.
    let max = input["maxResults"].as_i64().unwrap_or(100).clamp(1, 100) as usize;
    let start: usize = input["nextToken"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let slice: Vec<&String> = ids.iter().skip(start).take(max).collect();
    let mut out = json!({ "updateIds": slice });
    if start + slice.len() < ids.len() {
        out["nextToken"] = json!((start + slice.len()).to_string());
    }
    Ok(out)
}

/// The EKS layer finished (or failed) an update: record `Successful`/`Failed`; a cluster version update
/// that succeeded takes the new version, and the cluster returns to `ACTIVE` either way; an add-on
/// update returns the add-on to `ACTIVE` (or `DEGRADED`). Nodegroup updates end with
/// `set_nodegroup_status`.
pub async fn complete_update(
    store: &dyn Store,
    account: &str,
    region: &str,
    cluster: &str,
    update_id: &str,
    success: bool,
) -> Result<(), AwsError> {
    let ukey = update_key(account, region, cluster, update_id);
    let ckey = key_in(account, region, "cluster", cluster);
    for _ in 0..5 {
        let (mut update, urev) = load(store, &ukey)
            .await?
            .ok_or_else(|| not_found(format!("No update found for ID: {update_id}")))?;
        let (mut c, crev) = load(store, &ckey)
            .await?
            .ok_or_else(|| super::clusters::no_cluster(cluster))?;
        update["status"] = json!(if success { "Successful" } else { "Failed" });
        let mut ops = vec![resources::put_op(
            &ukey,
            &update,
            Precondition::ModRevision(urev),
        )];
        if let Some(addon) = update["_addon"].as_str() {
            let akey = key_in(account, region, "addon", &format!("{cluster}/{addon}"));
            if let Some((mut a, arev)) = load(store, &akey).await? {
                a["status"] = json!(if success { "ACTIVE" } else { "DEGRADED" });
                ops.push(resources::put_op(
                    &akey,
                    &a,
                    Precondition::ModRevision(arev),
                ));
            }
        } else if update.get("_nodegroup").is_none() {
            if success && update["type"] == "VersionUpdate" {
                for p in update["params"].as_array().into_iter().flatten() {
                    match p["type"].as_str() {
                        Some("Version") => c["version"] = p["value"].clone(),
                        Some("PlatformVersion") => c["platformVersion"] = p["value"].clone(),
                        _ => {}
                    }
                }
            }
            c["status"] = json!("ACTIVE");
            ops.push(resources::put_op(
                &ckey,
                &c,
                Precondition::ModRevision(crev),
            ));
        }
        match resources::commit(store, ops).await {
            Ok(_) => return Ok(()),
            Err(Some(e)) => return Err(e),
            Err(None) => continue,
        }
    }
    Err(in_use("The update was modified concurrently; retry"))
}
