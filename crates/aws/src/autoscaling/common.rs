//! Shared pieces of the AutoScaling handlers: errors in the service's words, keys, group loading.

use serde_json::Value;
use skiff_aws_model::AwsError;
use skiff_store::{Precondition, Revision};

use crate::context::RequestContext;
use crate::resources;

/// AutoScaling's generic client error (`ValidationError`, 400, Sender).
pub fn validation(message: impl Into<String>) -> AwsError {
    AwsError::new("ValidationError", message)
}

/// A modelled fault by its wire code (`AlreadyExists`, `ResourceInUse`, `ScalingActivityInProgress`).
pub fn fault(code: &str, message: impl Into<String>) -> AwsError {
    AwsError::new(code, message)
}

pub fn group_key(ctx: &RequestContext, name: &str) -> String {
    resources::key(ctx, "autoscaling", "group", name)
}

pub fn group_not_found(name: &str) -> AwsError {
    validation(format!(
        "AutoScalingGroup name not found - AutoScalingGroup {name} not found"
    ))
}

pub async fn load_group(ctx: &RequestContext, name: &str) -> Result<(Value, Revision), AwsError> {
    resources::get::<Value>(&*ctx.store, &group_key(ctx, name))
        .await?
        .ok_or_else(|| group_not_found(name))
}

pub async fn save_group(
    ctx: &RequestContext,
    group: &Value,
    rev: Revision,
) -> Result<(), AwsError> {
    let name = group["AutoScalingGroupName"].as_str().unwrap_or_default();
    resources::commit(
        &*ctx.store,
        vec![resources::put_op(&group_key(ctx, name), group, Precondition::ModRevision(rev))],
    )
    .await
    .map(|_| ())
    .map_err(|e| {
        e.unwrap_or_else(|| {
            fault("ResourceContention", "You already have a pending update to an Auto Scaling resource (for example, a group, instance, or load balancer).").with_status(500)
        })
    })
}

pub fn now() -> String {
    let ms = jiff::Timestamp::now().as_millisecond();
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Opaque paging over an already ordered list: `NextToken` is the index of the next item.
pub fn page(
    items: Vec<Value>,
    input: &Value,
    default_max: usize,
    max_max: usize,
) -> Result<(Vec<Value>, Option<String>), AwsError> {
    let max = input["MaxRecords"]
        .as_u64()
        .map_or(default_max, |n| (n as usize).clamp(1, max_max));
    let start = match input["NextToken"].as_str() {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| fault("InvalidNextToken", "The token is invalid"))?,
    };
    let slice: Vec<Value> = items.iter().skip(start).take(max).cloned().collect();
    let next = (start + slice.len() < items.len()).then(|| (start + slice.len()).to_string());
    Ok((slice, next))
}
