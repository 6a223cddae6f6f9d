//! Scaling activities: one per instance launched or terminated, with AWS's wording, and
//! DescribeScalingActivities (newest first).

use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::{Op, Precondition};

use super::common::{now, page, validation};
use crate::context::RequestContext;
use crate::resources;

fn activity_prefix(ctx: &RequestContext, group: &str) -> String {
    resources::key(ctx, "autoscaling", "activity", &format!("{group}/"))
}

/// The write of one successful activity; the key sorts by time so listing reads them in order.
pub(crate) fn activity_op(
    ctx: &RequestContext,
    group: &Value,
    description: String,
    cause: String,
) -> Op {
    let name = group["AutoScalingGroupName"].as_str().unwrap_or_default();
    let id = uuid::Uuid::new_v4().to_string();
    let stamp = now();
    let nanos = jiff::Timestamp::now().as_nanosecond();
    let activity = json!({
        "ActivityId": id,
        "AutoScalingGroupName": name,
        "AutoScalingGroupARN": group["AutoScalingGroupARN"],
        "Description": description,
        "Cause": cause,
        "StartTime": stamp,
        "EndTime": stamp,
        "StatusCode": "Successful",
        "Progress": 100,
        "Details": json!({"Subnet ID": "", "Availability Zone": ""}).to_string(),
    });
    resources::put_op(
        &format!("{}{nanos:024}-{id}", activity_prefix(ctx, name)),
        &activity,
        Precondition::MustNotExist,
    )
}

/// The delete ops for every activity of a group (DeleteAutoScalingGroup).
pub(crate) async fn delete_ops(ctx: &RequestContext, group: &str) -> Result<Vec<Op>, AwsError> {
    let page = ctx
        .store
        .list(
            &activity_prefix(ctx, group),
            skiff_store::ListOptions::default(),
        )
        .await
        .map_err(resources::internal)?;
    Ok(page
        .items
        .iter()
        .map(|kv| resources::delete_op(&kv.key))
        .collect())
}

#[doc(alias = "DescribeScalingActivities")]
pub async fn describe_scaling_activities(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let prefix = match input["AutoScalingGroupName"].as_str() {
        Some(g) => activity_prefix(ctx, g),
        None => resources::key(ctx, "autoscaling", "activity", ""),
    };
    let mut all: Vec<Value> = resources::list(&*ctx.store, &prefix).await?;
    if let Some(ids) = input["ActivityIds"].as_array() {
        if ids.len() > 50 {
            return Err(validation("The maximum number of activity IDs is 50"));
        }
        all.retain(|a| ids.contains(&a["ActivityId"]));
    }
    all.reverse();
    let (items, next) = page(all, &input, 100, 100)?;
    let mut out = json!({ "Activities": items });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}
