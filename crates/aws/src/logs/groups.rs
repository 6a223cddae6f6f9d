//! Log groups: CreateLogGroup, DescribeLogGroups, DeleteLogGroup, PutRetentionPolicy,
//! DeleteRetentionPolicy, AssociateKmsKey, DisassociateKmsKey.

use serde_json::{Value, json};
use skiff_store::{ListOptions, Op, Precondition};

use super::common::{
    GROUP_NOT_FOUND, LogGroup, LogStream, LogsError, LogsResult, RETENTION_DAYS, check_group_name,
    group_arn, group_events_prefix, group_key, load_group, now_ms, offset_of, opt_i64, opt_str,
    req_str, stream_prefix, tags_of, token_of,
};
use crate::context::RequestContext;
use crate::resources;

const CLASSES: &[&str] = &["STANDARD", "INFREQUENT_ACCESS", "DELIVERY"];

/// A `kmsKeyId` must be a key ARN of a key that exists and is usable (as CloudWatch Logs checks).
async fn check_kms_key(ctx: &RequestContext, key: &str) -> LogsResult<()> {
    if !key.starts_with("arn:") {
        return Err(LogsError::InvalidParameter(format!(
            "Specified KMS key ARN is not valid: {key}"
        )));
    }
    let (record, _) = crate::kms::common::resolve(ctx, key).await.map_err(|_| {
        LogsError::InvalidParameter(format!(
            "Specified KMS key {key} does not exist or is not allowed to be used."
        ))
    })?;
    record
        .usable()
        .map_err(|e| LogsError::InvalidParameter(e.to_string()))
}

#[doc(alias = "CreateLogGroup")]
pub async fn create_log_group(ctx: &RequestContext, input: Value) -> LogsResult<Value> {
    let name = req_str(&input, "logGroupName")?;
    check_group_name(name)?;
    let class = opt_str(&input, "logGroupClass").unwrap_or("STANDARD");
    if !CLASSES.contains(&class) {
        return Err(LogsError::InvalidParameter(format!(
            "1 validation error detected: Value '{class}' at 'logGroupClass' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, INFREQUENT_ACCESS, DELIVERY]"
        )));
    }
    let kms_key_id = opt_str(&input, "kmsKeyId").map(str::to_string);
    if let Some(k) = &kms_key_id {
        check_kms_key(ctx, k).await?;
    }
    let group = LogGroup {
        name: name.to_string(),
        created_ms: now_ms(),
        retention_days: None,
        kms_key_id,
        class: class.to_string(),
        tags: tags_of(&input, "tags"),
    };
    let op = resources::put_op(&group_key(ctx, name), &group, Precondition::MustNotExist);
    match resources::commit(&*ctx.store, vec![op]).await {
        Ok(_) => Ok(json!({})),
        Err(None) => Err(LogsError::ResourceAlreadyExists(
            "The specified log group already exists".into(),
        )),
        Err(Some(e)) => Err(e.into()),
    }
}

/// Every group of the caller's account and region, by name.
pub async fn all_groups(ctx: &RequestContext) -> LogsResult<Vec<LogGroup>> {
    let prefix = resources::prefix_of(&group_key(ctx, "x"));
    let mut groups: Vec<LogGroup> = resources::list(&*ctx.store, &prefix).await?;
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(groups)
}

/// Bytes stored in a group's streams (what DescribeLogGroups reports as `storedBytes`).
async fn stored_bytes(ctx: &RequestContext, group: &str) -> LogsResult<u64> {
    let streams: Vec<LogStream> = resources::list(&*ctx.store, &stream_prefix(ctx, group)).await?;
    Ok(streams.iter().map(|s| s.stored_bytes).sum())
}

#[doc(alias = "DescribeLogGroups")]
pub async fn describe_log_groups(ctx: &RequestContext, input: Value) -> LogsResult<Value> {
    let prefix = opt_str(&input, "logGroupNamePrefix");
    let pattern = opt_str(&input, "logGroupNamePattern").map(str::to_lowercase);
    if prefix.is_some() && pattern.is_some() {
        return Err(LogsError::InvalidParameter(
            "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters."
                .into(),
        ));
    }
    let identifiers: Option<Vec<String>> = input
        .get("logGroupIdentifiers")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .map(|i| super::common::name_from_identifier(i).to_string())
                .collect()
        });
    if identifiers.is_some() && (prefix.is_some() || pattern.is_some()) {
        return Err(LogsError::InvalidParameter(
            "logGroupIdentifiers is mutually exclusive with logGroupNamePrefix and logGroupNamePattern."
                .into(),
        ));
    }
    let class = opt_str(&input, "logGroupClass");
    let limit = opt_i64(&input, "limit").unwrap_or(50).clamp(1, 50) as usize;
    let matching: Vec<LogGroup> = all_groups(ctx)
        .await?
        .into_iter()
        .filter(|g| prefix.is_none_or(|p| g.name.starts_with(p)))
        .filter(|g| {
            pattern
                .as_deref()
                .is_none_or(|p| g.name.to_lowercase().contains(p))
        })
        .filter(|g| identifiers.as_ref().is_none_or(|ids| ids.contains(&g.name)))
        .filter(|g| class.is_none_or(|c| g.class == c))
        .collect();
    let start = offset_of(opt_str(&input, "nextToken"))?;
    let mut out = Vec::new();
    for g in matching.iter().skip(start).take(limit) {
        let arn = group_arn(ctx, &g.name);
        let mut entry = json!({
            "logGroupName": g.name,
            "creationTime": g.created_ms,
            "metricFilterCount": 0,
            "arn": format!("{arn}:*"),
            "logGroupArn": arn,
            "storedBytes": stored_bytes(ctx, &g.name).await?,
            "logGroupClass": g.class,
        });
        if let Some(d) = g.retention_days {
            entry["retentionInDays"] = json!(d);
        }
        if let Some(k) = &g.kms_key_id {
            entry["kmsKeyId"] = json!(k);
        }
        out.push(entry);
    }
    let mut result = json!({ "logGroups": out });
    if start + limit < matching.len() {
        result["nextToken"] = json!(token_of(start + limit));
    }
    Ok(result)
}

#[doc(alias = "DeleteLogGroup")]
pub async fn delete_log_group(ctx: &RequestContext, input: Value) -> LogsResult<Value> {
    let name = req_str(&input, "logGroupName")?;
    let key = group_key(ctx, name);
    match resources::commit(&*ctx.store, vec![resources::delete_op(&key)]).await {
        Ok(_) => {}
        Err(None) => return Err(LogsError::ResourceNotFound(GROUP_NOT_FOUND.into())),
        Err(Some(e)) => return Err(e.into()),
    }
    // The group is gone for every reader now; its streams and events go after it, page by page.
    for prefix in [stream_prefix(ctx, name), group_events_prefix(ctx, name)] {
        delete_under(ctx, &prefix).await?;
    }
    Ok(json!({}))
}

/// Delete every key under `prefix` in bounded transactions.
pub async fn delete_under(ctx: &RequestContext, prefix: &str) -> LogsResult<()> {
    loop {
        let page = ctx
            .store
            .list(
                prefix,
                ListOptions {
                    limit: 500,
                    ..Default::default()
                },
            )
            .await
            .map_err(resources::internal)?;
        if page.items.is_empty() {
            return Ok(());
        }
        let ops = page
            .items
            .iter()
            .map(|kv| Op::Delete {
                key: kv.key.clone(),
                precondition: Precondition::None,
            })
            .collect();
        ctx.store.txn(ops).await.map_err(resources::internal)?;
    }
}

/// Read-modify-write of one group under optimistic concurrency.
async fn update_group(
    ctx: &RequestContext,
    name: &str,
    change: impl Fn(&mut LogGroup),
) -> LogsResult<()> {
    loop {
        let (mut group, rev) = load_group(ctx, name).await?;
        change(&mut group);
        let op = resources::put_op(
            &group_key(ctx, name),
            &group,
            Precondition::ModRevision(rev),
        );
        match resources::commit(&*ctx.store, vec![op]).await {
            Ok(_) => return Ok(()),
            Err(None) => continue,
            Err(Some(e)) => return Err(e.into()),
        }
    }
}

#[doc(alias = "PutRetentionPolicy")]
pub async fn put_retention_policy(ctx: &RequestContext, input: Value) -> LogsResult<Value> {
    let name = req_str(&input, "logGroupName")?;
    let days = opt_i64(&input, "retentionInDays").ok_or_else(|| {
        LogsError::InvalidParameter(
            "1 validation error detected: Value null at 'retentionInDays' failed to satisfy constraint: Member must not be null".into(),
        )
    })?;
    if !RETENTION_DAYS.contains(&days) {
        let allowed: Vec<String> = RETENTION_DAYS.iter().map(i64::to_string).collect();
        return Err(LogsError::InvalidParameter(format!(
            "1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            allowed.join(", ")
        )));
    }
    update_group(ctx, name, |g| g.retention_days = Some(days)).await?;
    Ok(json!({}))
}

#[doc(alias = "DeleteRetentionPolicy")]
pub async fn delete_retention_policy(ctx: &RequestContext, input: Value) -> LogsResult<Value> {
    let name = req_str(&input, "logGroupName")?;
    update_group(ctx, name, |g| g.retention_days = None).await?;
    Ok(json!({}))
}

#[doc(alias = "AssociateKmsKey")]
pub async fn associate_kms_key(ctx: &RequestContext, input: Value) -> LogsResult<Value> {
    let name = super::common::group_of(&input)?;
    let key = req_str(&input, "kmsKeyId")?.to_string();
    check_kms_key(ctx, &key).await?;
    update_group(ctx, &name, |g| g.kms_key_id = Some(key.clone())).await?;
    Ok(json!({}))
}

#[doc(alias = "DisassociateKmsKey")]
pub async fn disassociate_kms_key(ctx: &RequestContext, input: Value) -> LogsResult<Value> {
    let name = super::common::group_of(&input)?;
    update_group(ctx, &name, |g| g.kms_key_id = None).await?;
    Ok(json!({}))
}
