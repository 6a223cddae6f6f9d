//! Keys: CreateKey, DescribeKey, ListKeys, EnableKey, DisableKey, UpdateKeyDescription,
//! ScheduleKeyDeletion, CancelKeyDeletion.
//!
//! Only symmetric `SYMMETRIC_DEFAULT` / `ENCRYPT_DECRYPT` keys carry material here (AES-256-GCM); other
//! key specs are refused with `UnsupportedOperationException` rather than created without behaviour.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use serde_json::{Value, json};
use skiff_store::Precondition;

use super::common::{
    KeyRecord, KmsError, KmsResult, default_policy, key_arn, key_key, now, opt_i64, opt_str, page,
    paged, req_str, resolve, save_key,
};
use super::tags;
use crate::context::RequestContext;
use crate::resources;

/// Create and store a symmetric key (the domain function EKS or Secrets Manager may call).
pub async fn create_symmetric_key(
    ctx: &RequestContext,
    description: &str,
) -> Result<KeyRecord, skiff_aws_model::AwsError> {
    let input = json!({ "Description": description });
    Ok(create(ctx, &input).await?)
}

/// The AWS managed key behind `alias/aws/<service>`, made (key and alias in one transaction) on first
/// use; a concurrent maker wins and its key is returned.
pub async fn ensure_aws_managed(
    ctx: &RequestContext,
    alias: &str,
) -> KmsResult<(KeyRecord, skiff_store::Revision)> {
    let service = alias.trim_start_matches("alias/aws/");
    let input = json!({
        "Description": format!("Default key that protects my {service} data when no other key is defined"),
    });
    let mut record = build(ctx, &input)?;
    record.manager = "AWS".into();
    let at = now();
    let alias_record = super::common::AliasRecord {
        name: alias.to_string(),
        arn: super::common::alias_arn(ctx, alias),
        target_key_id: record.key_id.clone(),
        created: at.clone(),
        updated: at,
    };
    let ops = vec![
        resources::put_op(
            &key_key(ctx, &record.key_id),
            &record,
            Precondition::MustNotExist,
        ),
        resources::put_op(
            &super::common::alias_key(ctx, alias),
            &alias_record,
            Precondition::MustNotExist,
        ),
    ];
    match resources::commit(&*ctx.store, ops).await {
        Ok(rev) => Ok((record, rev)),
        Err(None) => Box::pin(resolve(ctx, alias)).await,
        Err(Some(e)) => Err(e.into()),
    }
}

async fn create(ctx: &RequestContext, input: &Value) -> KmsResult<KeyRecord> {
    let record = build(ctx, input)?;
    let op = resources::put_op(
        &key_key(ctx, &record.key_id),
        &record,
        Precondition::MustNotExist,
    );
    resources::commit(&*ctx.store, vec![op])
        .await
        .map_err(|e| {
            KmsError::Internal(e.unwrap_or_else(|| {
                skiff_aws_model::AwsError::new("KMSInternalException", "key id collision")
                    .with_status(500)
            }))
        })?;
    Ok(record)
}

/// A new key record (not stored) from CreateKey's input.
fn build(ctx: &RequestContext, input: &Value) -> KmsResult<KeyRecord> {
    let spec = opt_str(input, "KeySpec")
        .or_else(|| opt_str(input, "CustomerMasterKeySpec"))
        .unwrap_or("SYMMETRIC_DEFAULT");
    let usage = opt_str(input, "KeyUsage").unwrap_or("ENCRYPT_DECRYPT");
    if spec != "SYMMETRIC_DEFAULT" {
        return Err(KmsError::UnsupportedOperation(format!(
            "KeySpec {spec} is not supported by Skiff; only SYMMETRIC_DEFAULT keys are"
        )));
    }
    if usage != "ENCRYPT_DECRYPT" {
        return Err(KmsError::Validation(format!(
            "The operation failed because the KeyUsage value of the CMK is {usage}. To perform this operation, the KeyUsage value must be ENCRYPT_DECRYPT."
        )));
    }
    if let Some(origin) = opt_str(input, "Origin")
        && origin != "AWS_KMS"
    {
        return Err(KmsError::UnsupportedOperation(format!(
            "Origin {origin} is not supported by Skiff"
        )));
    }
    let policy = match opt_str(input, "Policy") {
        Some(p) => {
            super::common::check_policy(p)?;
            p.to_string()
        }
        None => default_policy(&ctx.account_id),
    };
    let key_id = uuid::Uuid::new_v4().to_string();
    let mut material = [0u8; 32];
    rand::rng().fill_bytes(&mut material);
    let record = KeyRecord {
        arn: key_arn(ctx, &key_id),
        key_id,
        account: ctx.account_id.clone(),
        created: now(),
        description: opt_str(input, "Description")
            .unwrap_or_default()
            .to_string(),
        key_usage: usage.to_string(),
        key_spec: spec.to_string(),
        state: "Enabled".into(),
        deletion_date: None,
        pending_window_days: None,
        policy,
        rotation_enabled: false,
        rotation_period_days: 365,
        tags: tags::from_input(input)?,
        material: B64.encode(material),
        retired_material: Vec::new(),
        rotations: Vec::new(),
        manager: "CUSTOMER".into(),
    };
    Ok(record)
}

#[doc(alias = "CreateKey")]
pub async fn create_key(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    let record = create(ctx, &input).await?;
    Ok(json!({ "KeyMetadata": record.metadata() }))
}

#[doc(alias = "DescribeKey")]
pub async fn describe_key(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    let (key, _) = resolve(ctx, req_str(&input, "KeyId")?).await?;
    Ok(json!({ "KeyMetadata": key.metadata() }))
}

#[doc(alias = "ListKeys")]
pub async fn list_keys(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    let prefix = resources::prefix_of(&key_key(ctx, "x"));
    let keys: Vec<KeyRecord> = resources::list(&*ctx.store, &prefix).await?;
    let entries: Vec<Value> = keys
        .iter()
        .map(|k| json!({"KeyId": k.key_id, "KeyArn": k.arn}))
        .collect();
    let (items, next) = page(&entries, &input, 100)?;
    Ok(paged(json!({ "Keys": items }), next))
}

async fn set_state(ctx: &RequestContext, input: &Value, state: &str) -> KmsResult<Value> {
    let (mut key, rev) = resolve(ctx, req_str(input, "KeyId")?).await?;
    key.not_pending_deletion()?;
    if key.state != state {
        key.state = state.to_string();
        save_key(ctx, &key, rev).await?;
    }
    Ok(json!({}))
}

#[doc(alias = "EnableKey")]
pub async fn enable_key(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    set_state(ctx, &input, "Enabled").await
}

#[doc(alias = "DisableKey")]
pub async fn disable_key(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    set_state(ctx, &input, "Disabled").await
}

#[doc(alias = "UpdateKeyDescription")]
pub async fn update_key_description(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    let (mut key, rev) = resolve(ctx, req_str(&input, "KeyId")?).await?;
    key.not_pending_deletion()?;
    key.description = req_str(&input, "Description")?.to_string();
    save_key(ctx, &key, rev).await?;
    Ok(json!({}))
}

#[doc(alias = "ScheduleKeyDeletion")]
pub async fn schedule_key_deletion(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    let (mut key, rev) = resolve(ctx, req_str(&input, "KeyId")?).await?;
    let days = opt_i64(&input, "PendingWindowInDays").unwrap_or(30);
    if !(7..=30).contains(&days) {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value less than or equal to 30 and greater than or equal to 7"
        )));
    }
    key.not_pending_deletion()?;
    let when = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(24 * days))
        .map(|t| t.to_string())
        .unwrap_or_default();
    key.state = "PendingDeletion".into();
    key.deletion_date = Some(when.clone());
    key.pending_window_days = Some(days);
    save_key(ctx, &key, rev).await?;
    Ok(json!({
        "KeyId": key.arn,
        "DeletionDate": when,
        "KeyState": "PendingDeletion",
        "PendingWindowInDays": days,
    }))
}

/// A cancelled deletion leaves the key `Disabled`, as in AWS.
#[doc(alias = "CancelKeyDeletion")]
pub async fn cancel_key_deletion(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    let (mut key, rev) = resolve(ctx, req_str(&input, "KeyId")?).await?;
    if key.state != "PendingDeletion" {
        return Err(KmsError::InvalidState(format!(
            "{} is not pending deletion.",
            key.arn
        )));
    }
    key.state = "Disabled".into();
    key.deletion_date = None;
    key.pending_window_days = None;
    save_key(ctx, &key, rev).await?;
    Ok(json!({ "KeyId": key.arn }))
}
