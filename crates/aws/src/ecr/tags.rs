//! Repository tags: TagResource, UntagResource, ListTagsForResource (by repository ARN).

use serde_json::{Value, json};

use super::common::{EcrError, EcrResult, Repository, repo_key, req_str, save, tags_of};
use crate::context::RequestContext;
use crate::resources;

async fn by_arn(
    ctx: &RequestContext,
    input: &Value,
) -> EcrResult<(Repository, skiff_store::Revision)> {
    let arn = req_str(input, "resourceArn")?;
    let prefix = format!("arn:aws:ecr:{}:{}:repository/", ctx.region, ctx.account_id);
    let invalid = || {
        EcrError::InvalidParameter(format!(
            "Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN' ({arn})"
        ))
    };
    let name = arn.strip_prefix(&prefix).ok_or_else(invalid)?;
    resources::get(&*ctx.store, &repo_key(ctx, name))
        .await?
        .ok_or_else(|| super::common::not_found(ctx, name))
}

#[doc(alias = "TagResource")]
pub async fn tag_resource(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    let (mut repo, rev) = by_arn(ctx, &input).await?;
    for (k, v) in tags_of(&input) {
        if k.starts_with("aws:") {
            return Err(EcrError::InvalidTagParameter(
                "Tag keys starting with 'aws:' are reserved".into(),
            ));
        }
        match repo.tags.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => repo.tags.push((k, v)),
        }
    }
    save(ctx, &repo, rev).await?;
    Ok(json!({}))
}

#[doc(alias = "UntagResource")]
pub async fn untag_resource(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    let (mut repo, rev) = by_arn(ctx, &input).await?;
    let keys: Vec<&str> = input["tagKeys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    repo.tags.retain(|(k, _)| !keys.contains(&k.as_str()));
    save(ctx, &repo, rev).await?;
    Ok(json!({}))
}

#[doc(alias = "ListTagsForResource")]
pub async fn list_tags_for_resource(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    let (repo, _) = by_arn(ctx, &input).await?;
    let tags: Vec<Value> = repo
        .tags
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    Ok(json!({ "tags": tags }))
}
