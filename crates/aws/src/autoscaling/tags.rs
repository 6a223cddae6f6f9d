//! Group tags: CreateOrUpdateTags, DescribeTags, DeleteTags. Tags live on the group record;
//! `PropagateAtLaunch` tags are copied to the instances the group launches afterwards.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::common::{group_key, load_group, page, save_group, validation};
use crate::context::RequestContext;
use crate::resources;

fn group_of(tag: &Value) -> Result<&str, AwsError> {
    if tag["ResourceType"]
        .as_str()
        .is_some_and(|t| t != "auto-scaling-group")
    {
        return Err(validation(
            "Invalid resource type; only auto-scaling-group is supported",
        ));
    }
    tag["ResourceId"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| validation("ResourceId must be specified"))
}

#[doc(alias = "CreateOrUpdateTags")]
pub async fn create_or_update_tags(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    for t in input["Tags"].as_array().into_iter().flatten() {
        let name = group_of(t)?;
        if t["Key"]
            .as_str()
            .is_some_and(|k| k.to_ascii_lowercase().starts_with("aws:"))
        {
            return Err(validation(
                "Tag keys starting with 'aws:' are reserved for internal use",
            ));
        }
        let (mut group, rev) = load_group(ctx, name).await?;
        let mut tags: Vec<Value> = group["Tags"].as_array().cloned().unwrap_or_default();
        tags.retain(|x| x["Key"] != t["Key"]);
        tags.push(json!({"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": t["Key"],
            "Value": t["Value"].as_str().unwrap_or(""), "PropagateAtLaunch": t["PropagateAtLaunch"].as_bool().unwrap_or(false)}));
        if tags.len() > 50 {
            return Err(AwsError::new(
                "LimitExceeded",
                format!("The quota of 50 tags per Auto Scaling group has been reached for {name}"),
            ));
        }
        tags.sort_by(|a, b| a["Key"].as_str().cmp(&b["Key"].as_str()));
        group["Tags"] = json!(tags);
        save_group(ctx, &group, rev).await?;
    }
    Ok(json!({}))
}

#[doc(alias = "DeleteTags")]
pub async fn delete_tags(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    for t in input["Tags"].as_array().into_iter().flatten() {
        let name = group_of(t)?;
        let (mut group, rev) = load_group(ctx, name).await?;
        if let Some(tags) = group["Tags"].as_array_mut() {
            tags.retain(|x| x["Key"] != t["Key"]);
        }
        save_group(ctx, &group, rev).await?;
    }
    Ok(json!({}))
}

#[doc(alias = "DescribeTags")]
pub async fn describe_tags(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let groups: Vec<Value> = resources::list(&*ctx.store, &group_key(ctx, "")).await?;
    let mut all: Vec<Value> = groups
        .iter()
        .flat_map(|g| g["Tags"].as_array().cloned().unwrap_or_default())
        .collect();
    for f in input["Filters"].as_array().into_iter().flatten() {
        let values: Vec<&str> = f["Values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let member = match f["Name"].as_str() {
            Some("auto-scaling-group") => "ResourceId",
            Some("key") => "Key",
            Some("value") => "Value",
            Some("propagate-at-launch") => "PropagateAtLaunch",
            other => {
                return Err(validation(format!(
                    "Filter type {} is not correct. Allowed Filter types are: auto-scaling-group key value propagate-at-launch",
                    other.unwrap_or_default()
                )));
            }
        };
        all.retain(|t| {
            let v = match &t[member] {
                Value::Bool(b) => b.to_string(),
                v => v.as_str().unwrap_or_default().to_string(),
            };
            values.contains(&v.as_str())
        });
    }
    let (items, next) = page(all, &input, 50, 100)?;
    let mut out = json!({ "Tags": items });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}
