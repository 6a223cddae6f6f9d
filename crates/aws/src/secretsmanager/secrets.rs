//! Secrets: CreateSecret, DescribeSecret, ListSecrets, UpdateSecret, DeleteSecret, RestoreSecret.

use serde_json::{Value, json};
use skiff_store::Precondition;

use super::common::{
    SecretRecord, SmError, SmResult, load, move_stages, new_arn, new_version, now, opt_bool,
    opt_i64, opt_str, req_str, save, secret_key, tags_of, value_of, version_id,
};
use super::values;
use crate::context::RequestContext;
use crate::resources;

/// Resolve a `KmsKeyId` through KMS now, so a bad key fails the call that names it.
async fn kms_key(ctx: &RequestContext, input: &Value) -> SmResult<Option<String>> {
    match opt_str(input, "KmsKeyId") {
        None => Ok(None),
        Some(k) => {
            let (key, _) = crate::kms::common::resolve(ctx, k).await.map_err(|_| {
                SmError::InvalidParameter(format!("The KMS key {k} is not valid or not found."))
            })?;
            key.usable()
                .map_err(|e| SmError::InvalidRequest(e.to_string()))?;
            Ok(Some(k.to_string()))
        }
    }
}

#[doc(alias = "CreateSecret")]
pub async fn create_secret(ctx: &RequestContext, input: Value) -> SmResult<Value> {
    let name = req_str(&input, "Name")?;
    let value = value_of(&input)?;
    let version = version_id(&input)?;
    if let Some((existing, _)) = super::common::find(ctx, name).await? {
        if existing.deleted.is_some() {
            return Err(SmError::InvalidRequest(
                "You can't create this secret because a secret with this name is already scheduled for deletion.".into(),
            ));
        }
        return Err(SmError::ResourceExists(format!(
            "The operation failed because the secret {name} already exists."
        )));
    }
    let at = now();
    let mut secret = SecretRecord {
        name: name.to_string(),
        arn: new_arn(ctx, name),
        description: opt_str(&input, "Description").map(str::to_string),
        kms_key_id: kms_key(ctx, &input).await?,
        created: at.clone(),
        last_changed: at,
        deleted: None,
        tags: tags_of(&input),
        versions: Default::default(),
        policy: None,
    };
    let mut out = json!({"ARN": secret.arn, "Name": name});
    if let Some(value) = &value {
        let v = new_version(ctx, &secret, &version, value).await?;
        secret.versions.insert(version.clone(), v);
        move_stages(&mut secret, &version, &["AWSCURRENT".into()]);
        out["VersionId"] = json!(version);
    }
    let op = resources::put_op(&secret_key(ctx, name), &secret, Precondition::MustNotExist);
    match resources::commit(&*ctx.store, vec![op]).await {
        Ok(_) => Ok(out),
        Err(None) => Err(SmError::ResourceExists(format!(
            "The operation failed because the secret {name} already exists."
        ))),
        Err(Some(e)) => Err(e.into()),
    }
}

#[doc(alias = "DescribeSecret")]
pub async fn describe_secret(ctx: &RequestContext, input: Value) -> SmResult<Value> {
    let (secret, _) = load(ctx, req_str(&input, "SecretId")?).await?;
    Ok(secret.describe())
}

/// A filter value matches by prefix; a leading `!` negates it.
fn matches(candidates: &[&str], value: &str) -> bool {
    match value.strip_prefix('!') {
        Some(v) => !candidates.iter().any(|c| c.starts_with(v)),
        None => candidates.iter().any(|c| c.starts_with(value)),
    }
}

fn filter_ok(s: &SecretRecord, filter: &Value) -> SmResult<bool> {
    let key = filter["Key"].as_str().unwrap_or_default();
    let values: Vec<&str> = filter["Values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let tag_keys: Vec<&str> = s.tags.iter().map(|(k, _)| k.as_str()).collect();
    let tag_values: Vec<&str> = s.tags.iter().map(|(_, v)| v.as_str()).collect();
    let description = s.description.as_deref().unwrap_or_default();
    let candidates: Vec<&str> = match key {
        "name" => vec![&s.name],
        "description" => vec![description],
        "tag-key" => tag_keys,
        "tag-value" => tag_values,
        "primary-region" | "owning-service" => Vec::new(),
        "all" => {
            let mut all = vec![s.name.as_str(), description];
            all.extend(tag_keys);
            all.extend(tag_values);
            all
        }
        other => {
            return Err(SmError::InvalidParameter(format!(
                "Invalid filter key: {other}"
            )));
        }
    };
    Ok(values.iter().any(|v| matches(&candidates, v)))
}

#[doc(alias = "ListSecrets")]
pub async fn list_secrets(ctx: &RequestContext, input: Value) -> SmResult<Value> {
    let prefix = resources::prefix_of(&secret_key(ctx, "x"));
    let all: Vec<SecretRecord> = resources::list(&*ctx.store, &prefix).await?;
    let include_deleted = opt_bool(&input, "IncludePlannedDeletion");
    let filters: Vec<Value> = input["Filters"].as_array().cloned().unwrap_or_default();
    let mut picked = Vec::new();
    for s in all {
        if s.deleted.is_some() && !include_deleted {
            continue;
        }
        let mut ok = true;
        for f in &filters {
            ok &= filter_ok(&s, f)?;
        }
        if ok {
            picked.push(s);
        }
    }
    picked.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
    if opt_str(&input, "SortOrder") == Some("desc") {
        picked.reverse();
    }
    let entries: Vec<Value> = picked.iter().map(SecretRecord::describe).collect();
    let (items, next) = values::page(&entries, &input)?;
    let mut out = json!({ "SecretList": items });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

#[doc(alias = "UpdateSecret")]
pub async fn update_secret(ctx: &RequestContext, input: Value) -> SmResult<Value> {
    let (mut secret, rev) = load(ctx, req_str(&input, "SecretId")?).await?;
    secret.live()?;
    if let Some(d) = opt_str(&input, "Description") {
        secret.description = Some(d.to_string());
    }
    if input.get("KmsKeyId").is_some() {
        secret.kms_key_id = kms_key(ctx, &input).await?;
    }
    let mut out = json!({"ARN": secret.arn, "Name": secret.name});
    if let Some(value) = value_of(&input)? {
        let version = version_id(&input)?;
        if secret.versions.contains_key(&version) {
            return Err(SmError::ResourceExists(
                "You can't modify an existing version, you can only create a new version.".into(),
            ));
        }
        let v = new_version(ctx, &secret, &version, &value).await?;
        secret.versions.insert(version.clone(), v);
        move_stages(&mut secret, &version, &["AWSCURRENT".into()]);
        out["VersionId"] = json!(version);
    }
    secret.last_changed = now();
    save(ctx, &secret, rev).await?;
    Ok(out)
}

#[doc(alias = "DeleteSecret")]
pub async fn delete_secret(ctx: &RequestContext, input: Value) -> SmResult<Value> {
    let (mut secret, rev) = load(ctx, req_str(&input, "SecretId")?).await?;
    let force = opt_bool(&input, "ForceDeleteWithoutRecovery");
    let window = opt_i64(&input, "RecoveryWindowInDays");
    if force && window.is_some() {
        return Err(SmError::InvalidParameter(
            "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."
                .into(),
        ));
    }
    let days = window.unwrap_or(30);
    if !(7..=30).contains(&days) {
        return Err(SmError::InvalidParameter(
            "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).".into(),
        ));
    }
    if force {
        let op = skiff_store::Op::Delete {
            key: secret_key(ctx, &secret.name),
            precondition: Precondition::ModRevision(rev),
        };
        resources::commit(&*ctx.store, vec![op])
            .await
            .map_err(|e| {
                e.map(SmError::Internal)
                    .unwrap_or_else(|| SmError::ResourceNotFound(super::common::NOT_FOUND.into()))
            })?;
        return Ok(json!({"ARN": secret.arn, "Name": secret.name, "DeletionDate": now()}));
    }
    if secret.deleted.is_some() {
        return Err(SmError::InvalidRequest(
            "You can't perform this operation on the secret because it was already scheduled for deletion.".into(),
        ));
    }
    let when = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(24 * days))
        .map(|t| t.to_string())
        .unwrap_or_default();
    secret.deleted = Some(when.clone());
    save(ctx, &secret, rev).await?;
    Ok(json!({"ARN": secret.arn, "Name": secret.name, "DeletionDate": when}))
}

#[doc(alias = "RestoreSecret")]
pub async fn restore_secret(ctx: &RequestContext, input: Value) -> SmResult<Value> {
    let (mut secret, rev) = load(ctx, req_str(&input, "SecretId")?).await?;
    if secret.deleted.take().is_some() {
        save(ctx, &secret, rev).await?;
    }
    Ok(json!({"ARN": secret.arn, "Name": secret.name}))
}
