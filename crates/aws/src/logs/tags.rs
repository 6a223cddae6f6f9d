//! Tags on log groups: TagResource/UntagResource/ListTagsForResource (by ARN) and the older
//! TagLogGroup/UntagLogGroup/ListTagsLogGroup (by name) that terraform and the CLI still use.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use skiff_store::Precondition;

use super::common::{LogGroup, LogsError, LogsResult, group_key, load_group, req_str, tags_of};
use crate::context::RequestContext;
use crate::resources;

/// The group an ARN names; only log-group ARNs of this account and region are taggable here.
fn group_of_arn(ctx: &RequestContext, arn: &str) -> LogsResult<String> {
    let own = format!("arn:aws:logs:{}:{}:log-group:", ctx.region, ctx.account_id);
    arn.strip_prefix(&own)
        .map(|rest| rest.strip_suffix(":*").unwrap_or(rest).to_string())
        .filter(|n| !n.is_empty() && !n.contains(":log-stream:"))
        .ok_or_else(|| LogsError::InvalidParameter(format!("Invalid resource arn: {arn}")))
}

async fn change_tags(
    ctx: &RequestContext,
    group: &str,
    change: impl Fn(&mut BTreeMap<String, String>),
) -> LogsResult<()> {
    loop {
        let (mut g, rev): (LogGroup, _) = load_group(ctx, group).await?;
        change(&mut g.tags);
        if g.tags.len() > 50 {
            return Err(LogsError::InvalidParameter(
                "A log group can have at most 50 tags.".into(),
            ));
        }
        let op = resources::put_op(&group_key(ctx, group), &g, Precondition::ModRevision(rev));
        match resources::commit(&*ctx.store, vec![op]).await {
            Ok(_) => return Ok(()),
            Err(None) => continue,
            Err(Some(e)) => return Err(e.into()),
        }
    }
}

fn keys_of(input: &Value, member: &str) -> Vec<String> {
    input
        .get(member)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

#[doc(alias = "TagResource")]
pub async fn tag_resource(ctx: &RequestContext, input: Value) -> LogsResult<Value> {
    let group = group_of_arn(ctx, req_str(&input, "resourceArn")?)?;
    let new = tags_of(&input, "tags");
    change_tags(ctx, &group, |t| t.extend(new.clone())).await?;
    Ok(json!({}))
}

#[doc(alias = "UntagResource")]
pub async fn untag_resource(ctx: &RequestContext, input: Value) -> LogsResult<Value> {
    let group = group_of_arn(ctx, req_str(&input, "resourceArn")?)?;
    let gone = keys_of(&input, "tagKeys");
    change_tags(ctx, &group, |t| t.retain(|k, _| !gone.contains(k))).await?;
    Ok(json!({}))
}

#[doc(alias = "ListTagsForResource")]
pub async fn list_tags_for_resource(ctx: &RequestContext, input: Value) -> LogsResult<Value> {
    let group = group_of_arn(ctx, req_str(&input, "resourceArn")?)?;
    let (g, _) = load_group(ctx, &group).await?;
    Ok(json!({ "tags": g.tags }))
}

#[doc(alias = "TagLogGroup")]
pub async fn tag_log_group(ctx: &RequestContext, input: Value) -> LogsResult<Value> {
    let group = req_str(&input, "logGroupName")?.to_string();
    let new = tags_of(&input, "tags");
    change_tags(ctx, &group, |t| t.extend(new.clone())).await?;
    Ok(json!({}))
}

#[doc(alias = "UntagLogGroup")]
pub async fn untag_log_group(ctx: &RequestContext, input: Value) -> LogsResult<Value> {
    let group = req_str(&input, "logGroupName")?.to_string();
    let gone = keys_of(&input, "tags");
    change_tags(ctx, &group, |t| t.retain(|k, _| !gone.contains(k))).await?;
    Ok(json!({}))
}

#[doc(alias = "ListTagsLogGroup")]
pub async fn list_tags_log_group(ctx: &RequestContext, input: Value) -> LogsResult<Value> {
    let (g, _) = load_group(ctx, req_str(&input, "logGroupName")?).await?;
    Ok(json!({ "tags": g.tags }))
}
