//! AddTags, RemoveTags, DescribeTags on load balancers, target groups, listeners and rules (by ARN).

use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::Precondition;

use super::common::{
    commit, error, key_of_arn, lb_not_found, listener_not_found, load_arn, rule_not_found,
    tg_not_found,
};
use crate::context::RequestContext;
use crate::resources;

/// The record an ARN names, with its ARN member; the not-found error matches the kind.
async fn load_any(
    ctx: &RequestContext,
    arn: &str,
) -> Result<(Value, skiff_store::Revision), AwsError> {
    let (member, missing): (&str, fn() -> AwsError) = if arn.contains(":loadbalancer/") {
        ("LoadBalancerArn", lb_not_found)
    } else if arn.contains(":targetgroup/") {
        ("TargetGroupArn", tg_not_found)
    } else if arn.contains(":listener-rule/") {
        ("RuleArn", rule_not_found)
    } else if arn.contains(":listener/") {
        ("ListenerArn", listener_not_found)
    } else {
        return Err(AwsError::new(
            "ValidationError",
            format!("'{arn}' is not a valid resource ARN"),
        ));
    };
    load_arn(ctx, arn, member).await?.ok_or_else(missing)
}

fn arns(input: &Value) -> Vec<String> {
    input["ResourceArns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect()
}

#[doc(alias = "AddTags")]
pub async fn add_tags(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let new = super::common::tags_of(&input)?;
    let mut ops = Vec::new();
    for arn in arns(&input) {
        let (mut r, rev) = load_any(ctx, &arn).await?;
        let mut tags: Vec<Value> = r["_tags"].as_array().cloned().unwrap_or_default();
        for t in &new {
            tags.retain(|x| x["Key"] != t["Key"]);
            tags.push(json!({"Key": t["Key"], "Value": t["Value"].as_str().unwrap_or("")}));
        }
        if tags.len() > 50 {
            return Err(error(
                "TooManyTags",
                "The quota for the number of tags that can be assigned to a load balancer has been reached",
            ));
        }
        r["_tags"] = json!(tags);
        ops.push(resources::put_op(
            &key_of_arn(ctx, &arn).unwrap_or_default(),
            &r,
            Precondition::ModRevision(rev),
        ));
    }
    commit(ctx, ops).await?;
    Ok(json!({}))
}

#[doc(alias = "RemoveTags")]
pub async fn remove_tags(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let keys: Vec<Value> = input["TagKeys"].as_array().cloned().unwrap_or_default();
    let mut ops = Vec::new();
    for arn in arns(&input) {
        let (mut r, rev) = load_any(ctx, &arn).await?;
        if let Some(tags) = r["_tags"].as_array_mut() {
            tags.retain(|t| !keys.contains(&t["Key"]));
        }
        ops.push(resources::put_op(
            &key_of_arn(ctx, &arn).unwrap_or_default(),
            &r,
            Precondition::ModRevision(rev),
        ));
    }
    commit(ctx, ops).await?;
    Ok(json!({}))
}

#[doc(alias = "DescribeTags")]
pub async fn describe_tags(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let list = arns(&input);
    if list.len() > 20 {
        return Err(AwsError::new(
            "ValidationError",
            "A maximum of 20 resource ARNs can be described at once",
        ));
    }
    let mut out = Vec::new();
    for arn in list {
        let (r, _) = load_any(ctx, &arn).await?;
        out.push(
            json!({"ResourceArn": arn, "Tags": r["_tags"].as_array().cloned().unwrap_or_default()}),
        );
    }
    Ok(json!({ "TagDescriptions": out }))
}
