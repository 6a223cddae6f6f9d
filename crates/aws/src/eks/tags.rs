//! TagResource, UntagResource, ListTagsForResource on clusters and nodegroups, found by ARN.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::Precondition;

use super::common::{error, in_use, key_in, load, req_str, str_list, tags_of};
use crate::context::RequestContext;
use crate::resources;

/// The store key an EKS ARN of this account and region names (`cluster/<c>`, `nodegroup/<c>/<ng>/<uuid>`).
fn key_of_arn(ctx: &RequestContext, arn: &str) -> Result<String, AwsError> {
    let prefix = format!("arn:aws:eks:{}:{}:", ctx.region, ctx.account_id);
    let bad = || {
        error(
            "BadRequestException",
            format!("{arn} is not a valid resource ARN"),
        )
    };
    let rest = arn.strip_prefix(&prefix).ok_or_else(bad)?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["cluster", c] => Ok(key_in(&ctx.account_id, &ctx.region, "cluster", c)),
        ["nodegroup", c, ng, _] => Ok(key_in(
            &ctx.account_id,
            &ctx.region,
            "nodegroup",
            &format!("{c}/{ng}"),
        )),
        _ => Err(bad()),
    }
}

async fn load_tagged(
    ctx: &RequestContext,
    arn: &str,
) -> Result<(String, Value, skiff_store::Revision), AwsError> {
    let key = key_of_arn(ctx, arn)?;
    match load(&*ctx.store, &key).await? {
        // The uuid in a nodegroup ARN tells a recreated nodegroup from the one the caller meant.
        Some((r, rev)) if r["arn"] == arn || r["nodegroupArn"] == arn => Ok((key, r, rev)),
        _ => Err(error(
            "NotFoundException",
            format!("Resource not found: {arn}"),
        )),
    }
}

#[doc(alias = "TagResource")]
pub async fn tag_resource(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let arn = req_str(&input, "resourceArn")?;
    let add = tags_of(&input)?;
    let (key, mut record, rev) = load_tagged(ctx, arn).await?;
    let mut tags = record["tags"].as_object().cloned().unwrap_or_default();
    tags.extend(add);
    if tags.len() > 50 {
        return Err(error(
            "BadRequestException",
            "The number of tags must be less than or equal to 50",
        ));
    }
    record["tags"] = Value::Object(tags);
    resources::commit(
        &*ctx.store,
        vec![resources::put_op(
            &key,
            &record,
            Precondition::ModRevision(rev),
        )],
    )
    .await
    .map_err(|e| e.unwrap_or_else(|| in_use("The resource was modified concurrently; retry")))?;
    Ok(json!({}))
}

#[doc(alias = "UntagResource")]
pub async fn untag_resource(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let arn = req_str(&input, "resourceArn")?;
    let keys = str_list(&input["tagKeys"]);
    let (key, mut record, rev) = load_tagged(ctx, arn).await?;
    if let Some(tags) = record["tags"].as_object_mut() {
        for k in &keys {
            tags.remove(k);
        }
    }
    resources::commit(
        &*ctx.store,
        vec![resources::put_op(
            &key,
            &record,
            Precondition::ModRevision(rev),
        )],
    )
    .await
    .map_err(|e| e.unwrap_or_else(|| in_use("The resource was modified concurrently; retry")))?;
    Ok(json!({}))
}

#[doc(alias = "ListTagsForResource")]
pub async fn list_tags_for_resource(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let arn = req_str(&input, "resourceArn")?;
    let (_, record, _) = load_tagged(ctx, arn).await?;
    Ok(
        json!({ "tags": if record["tags"].is_object() { record["tags"].clone() } else { json!({}) } }),
    )
}
