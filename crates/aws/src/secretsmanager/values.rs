//! Secret values: GetSecretValue, PutSecretValue, ListSecretVersionIds, UpdateSecretVersionStage.

use serde_json::{Value, json};

use super::common::{
    SecretValue, SmError, SmResult, load, move_stages, new_version, now, open_version, opt_bool,
    opt_i64, opt_str, req_str, save, value_of, version_id,
};
use crate::context::RequestContext;

/// One page of `items` after `NextToken` (an index we handed out), `MaxResults` 1..=100.
pub fn page<T: Clone>(items: &[T], input: &Value) -> SmResult<(Vec<T>, Option<String>)> {
    let max = opt_i64(input, "MaxResults").unwrap_or(100);
    if !(1..=100).contains(&max) {
        return Err(SmError::InvalidParameter(
            "MaxResults must be between 1 and 100.".into(),
        ));
    }
    let start = match opt_str(input, "NextToken") {
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|&i| i <= items.len())
            .ok_or_else(|| SmError::InvalidNextToken("The NextToken value is invalid.".into()))?,
        None => 0,
    };
    let end = (start + max as usize).min(items.len());
    Ok((
        items[start..end].to_vec(),
        (end < items.len()).then(|| end.to_string()),
    ))
}

#[doc(alias = "GetSecretValue")]
pub async fn get_secret_value(ctx: &RequestContext, input: Value) -> SmResult<Value> {
    let (secret, _) = load(ctx, req_str(&input, "SecretId")?).await?;
    secret.live()?;
    let version = match (
        opt_str(&input, "VersionId"),
        opt_str(&input, "VersionStage"),
    ) {
        (Some(id), stage) => secret
            .versions
            .get(id)
            .filter(|v| stage.is_none_or(|s| v.stages.iter().any(|x| x == s)))
            .ok_or_else(|| {
                SmError::ResourceNotFound(format!(
                    "Secrets Manager can't find the specified secret value for VersionId: {id}"
                ))
            })?,
        (None, stage) => {
            let stage = stage.unwrap_or("AWSCURRENT");
            secret.version_with_stage(stage).ok_or_else(|| {
                SmError::ResourceNotFound(format!(
                    "Secrets Manager can't find the specified secret value for staging label: {stage}"
                ))
            })?
        }
    };
    let mut out = json!({
        "ARN": secret.arn,
        "Name": secret.name,
        "VersionId": version.id,
        "VersionStages": version.stages,
        "CreatedDate": version.created,
    });
    match open_version(ctx, &secret, version).await? {
        SecretValue::String(s) => out["SecretString"] = json!(s),
        SecretValue::Binary(b) => out["SecretBinary"] = json!(b),
    }
    Ok(out)
}

#[doc(alias = "PutSecretValue")]
pub async fn put_secret_value(ctx: &RequestContext, input: Value) -> SmResult<Value> {
    let (mut secret, rev) = load(ctx, req_str(&input, "SecretId")?).await?;
    secret.live()?;
    let value = value_of(&input)?.ok_or_else(|| {
        SmError::InvalidRequest("You must provide either SecretString or SecretBinary.".into())
    })?;
    let id = version_id(&input)?;
    let stages: Vec<String> = match input["VersionStages"].as_array() {
        Some(list) => list
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        None => vec!["AWSCURRENT".into()],
    };
    if let Some(existing) = secret.versions.get(&id) {
        // Idempotent retry of the same request; anything else would rewrite a version.
        if open_version(ctx, &secret, existing).await? == value {
            return Ok(
                json!({"ARN": secret.arn, "Name": secret.name, "VersionId": id,
                             "VersionStages": existing.stages}),
            );
        }
        return Err(SmError::ResourceExists(
            "You can't modify an existing version, you can only create a new version.".into(),
        ));
    }
    let v = new_version(ctx, &secret, &id, &value).await?;
    secret.versions.insert(id.clone(), v);
    move_stages(&mut secret, &id, &stages);
    secret.last_changed = now();
    save(ctx, &secret, rev).await?;
    let stages = secret
        .versions
        .get(&id)
        .map(|v| v.stages.clone())
        .unwrap_or_default();
    Ok(json!({"ARN": secret.arn, "Name": secret.name, "VersionId": id, "VersionStages": stages}))
}

#[doc(alias = "ListSecretVersionIds")]
pub async fn list_secret_version_ids(ctx: &RequestContext, input: Value) -> SmResult<Value> {
    let (secret, _) = load(ctx, req_str(&input, "SecretId")?).await?;
    let deprecated = opt_bool(&input, "IncludeDeprecated");
    let mut versions: Vec<_> = secret
        .versions
        .values()
        .filter(|v| deprecated || !v.stages.is_empty())
        .collect();
    versions.sort_by(|a, b| b.created.cmp(&a.created));
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| json!({"VersionId": v.id, "VersionStages": v.stages, "CreatedDate": v.created}))
        .collect();
    let (items, next) = page(&entries, &input)?;
    let mut out = json!({"ARN": secret.arn, "Name": secret.name, "Versions": items});
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

#[doc(alias = "UpdateSecretVersionStage")]
pub async fn update_secret_version_stage(ctx: &RequestContext, input: Value) -> SmResult<Value> {
    let (mut secret, rev) = load(ctx, req_str(&input, "SecretId")?).await?;
    secret.live()?;
    let stage = req_str(&input, "VersionStage")?.to_string();
    let holder = secret.version_with_stage(&stage).map(|v| v.id.clone());
    if let Some(from) = opt_str(&input, "RemoveFromVersionId")
        && holder.as_deref() != Some(from)
    {
        return Err(SmError::InvalidParameter(format!(
            "The staging label {stage} is currently not attached to version {from}."
        )));
    }
    match opt_str(&input, "MoveToVersionId") {
        Some(to) => {
            if !secret.versions.contains_key(to) {
                return Err(SmError::ResourceNotFound(format!(
                    "Secrets Manager can't find the specified secret value for VersionId: {to}"
                )));
            }
            if holder.is_some()
                && holder.as_deref() != Some(to)
                && opt_str(&input, "RemoveFromVersionId").is_none()
            {
                return Err(SmError::InvalidParameter(format!(
                    "The staging label {stage} is currently attached to version {}. You must specify RemoveFromVersionId to move it.",
                    holder.unwrap_or_default()
                )));
            }
            move_stages(&mut secret, to, std::slice::from_ref(&stage));
        }
        None => {
            if stage == "AWSCURRENT" {
                return Err(SmError::InvalidParameter(
                    "You can only move staging label AWSCURRENT to a different secret version. It can't be completely removed.".into(),
                ));
            }
            for v in secret.versions.values_mut() {
                v.stages.retain(|s| *s != stage);
            }
        }
    }
    secret.last_changed = now();
    save(ctx, &secret, rev).await?;
    Ok(json!({"ARN": secret.arn, "Name": secret.name}))
}
