//! Key policies and rotation: GetKeyPolicy, PutKeyPolicy, ListKeyPolicies, GetKeyRotationStatus,
//! EnableKeyRotation, DisableKeyRotation, RotateKeyOnDemand, ListKeyRotations. A key has exactly one
//! policy, named `default`. Rotation makes new material for new blobs and keeps the old material
//! for decrypting, as KMS does.

use serde_json::{Value, json};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;

use super::common::{
    KmsError, KmsResult, check_policy, now, opt_i64, opt_str, page, paged, req_str, resolve,
    save_key,
};
use crate::context::RequestContext;

fn policy_name(input: &Value) -> KmsResult<()> {
    match opt_str(input, "PolicyName") {
        None | Some("default") => Ok(()),
        Some(other) => Err(KmsError::NotFound(format!(
            "No such policy exists: {other}"
        ))),
    }
}

#[doc(alias = "GetKeyPolicy")]
pub async fn get_key_policy(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    policy_name(&input)?;
    let (key, _) = resolve(ctx, req_str(&input, "KeyId")?).await?;
    Ok(json!({"Policy": key.policy, "PolicyName": "default"}))
}

#[doc(alias = "PutKeyPolicy")]
pub async fn put_key_policy(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    policy_name(&input)?;
    let (mut key, rev) = resolve(ctx, req_str(&input, "KeyId")?).await?;
    key.not_pending_deletion()?;
    let policy = req_str(&input, "Policy")?;
    check_policy(policy)?;
    key.policy = policy.to_string();
    save_key(ctx, &key, rev).await?;
    Ok(json!({}))
}

#[doc(alias = "ListKeyPolicies")]
pub async fn list_key_policies(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    resolve(ctx, req_str(&input, "KeyId")?).await?;
    Ok(json!({"PolicyNames": ["default"], "Truncated": false}))
}

#[doc(alias = "GetKeyRotationStatus")]
pub async fn get_key_rotation_status(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    let (key, _) = resolve(ctx, req_str(&input, "KeyId")?).await?;
    let mut out = json!({"KeyRotationEnabled": key.rotation_enabled, "KeyId": key.arn});
    if key.rotation_enabled {
        out["RotationPeriodInDays"] = json!(key.rotation_period_days);
    }
    Ok(out)
}

#[doc(alias = "EnableKeyRotation")]
pub async fn enable_key_rotation(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    let (mut key, rev) = resolve(ctx, req_str(&input, "KeyId")?).await?;
    key.usable()?;
    let days = opt_i64(&input, "RotationPeriodInDays").unwrap_or(365);
    if !(90..=2560).contains(&days) {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{days}' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value greater than or equal to 90"
        )));
    }
    key.rotation_enabled = true;
    key.rotation_period_days = days;
    save_key(ctx, &key, rev).await?;
    Ok(json!({}))
}

#[doc(alias = "DisableKeyRotation")]
pub async fn disable_key_rotation(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    let (mut key, rev) = resolve(ctx, req_str(&input, "KeyId")?).await?;
    key.usable()?;
    key.rotation_enabled = false;
    save_key(ctx, &key, rev).await?;
    Ok(json!({}))
}

#[doc(alias = "RotateKeyOnDemand")]
pub async fn rotate_key_on_demand(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    let (mut key, rev) = resolve(ctx, req_str(&input, "KeyId")?).await?;
    key.usable()?;
    let mut fresh = [0u8; 32];
    rand::rng().fill_bytes(&mut fresh);
    let old = std::mem::replace(&mut key.material, B64.encode(fresh));
    key.retired_material.push(old);
    key.rotations.push((now(), "ON_DEMAND".into()));
    save_key(ctx, &key, rev).await?;
    Ok(json!({ "KeyId": key.key_id }))
}

#[doc(alias = "ListKeyRotations")]
pub async fn list_key_rotations(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    let (key, _) = resolve(ctx, req_str(&input, "KeyId")?).await?;
    let entries: Vec<Value> = key
        .rotations
        .iter()
        .map(
            |(date, kind)| json!({"KeyId": key.key_id, "RotationDate": date, "RotationType": kind}),
        )
        .collect();
    let (items, next) = page(&entries, &input, 100)?;
    Ok(paged(json!({ "Rotations": items }), next))
}
