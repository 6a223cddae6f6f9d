//! Target groups: CreateTargetGroup, DescribeTargetGroups, ModifyTargetGroup, DeleteTargetGroup.
//! `LoadBalancerArns` is computed from the listeners and rules that forward to the group.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::attributes::default_tg_attributes;
use super::common::{
    arn, check_name, error, key, list_kind, load_arn, load_tg, new_hex_id, page, put, tags_of,
    tg_not_found, validation,
};
use crate::context::RequestContext;
use crate::resources;

/// Target group ARNs an action list forwards to (`TargetGroupArn` and `ForwardConfig`).
pub(crate) fn forwarded(actions: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for a in actions.as_array().into_iter().flatten() {
        if let Some(t) = a["TargetGroupArn"].as_str() {
            out.push(t.to_string());
        }
        for t in a["ForwardConfig"]["TargetGroups"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(t) = t["TargetGroupArn"].as_str() {
                out.push(t.to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The LB ARNs whose listeners or rules forward to `tg_arn`.
pub(crate) async fn load_balancers_of(
    ctx: &RequestContext,
    tg_arn: &str,
) -> Result<Vec<String>, AwsError> {
    let mut lbs = Vec::new();
    for r in list_kind(ctx, "rule", "").await? {
        if forwarded(&r["Actions"]).iter().any(|t| t == tg_arn)
            && let Some(lb) = r["_loadBalancerArn"].as_str()
        {
            lbs.push(lb.to_string());
        }
    }
    lbs.sort();
    lbs.dedup();
    Ok(lbs)
}

fn is_http(protocol: &str) -> bool {
    matches!(protocol, "HTTP" | "HTTPS")
}

#[doc(alias = "CreateTargetGroup")]
pub async fn create_target_group(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let name = input["Name"].as_str().unwrap_or_default();
    check_name("Target group", name)?;
    let target_type = input["TargetType"].as_str().unwrap_or("instance");
    let lambda = target_type == "lambda";
    let protocol = input["Protocol"].as_str();
    let port = input["Port"].as_i64();
    let vpc = input["VpcId"].as_str();
    if !lambda {
        if protocol.is_none() || port.is_none() || vpc.is_none() {
            return Err(validation(
                "A protocol, port and VPC ID must be specified for target groups of type instance, ip or alb",
            ));
        }
        if !(1..=65535).contains(&port.unwrap_or(0)) {
            return Err(validation("Port must be between 1 and 65535"));
        }
        let v = vpc.unwrap_or_default();
        crate::ec2::dispatch(ctx, "DescribeVpcs", json!({"VpcIds": [v]}))
            .await
            .map_err(|_| validation(format!("The VPC ID '{v}' is not found")))?;
    } else if protocol.is_some() || port.is_some() {
        return Err(validation(
            "A protocol and port cannot be specified for target groups of type lambda",
        ));
    }
    let protocol_s = protocol.unwrap_or_default();
    let http = is_http(protocol_s) || lambda;
    let k = key(ctx, "tg", name);
    let hc_protocol = input["HealthCheckProtocol"].as_str().unwrap_or(if http {
        if protocol_s == "HTTPS" {
            "HTTPS"
        } else {
            "HTTP"
        }
    } else {
        "TCP"
    });
    let hc_http = is_http(hc_protocol);
    let mut tg = json!({
        "TargetGroupArn": arn(ctx, &format!("targetgroup/{name}/{}", new_hex_id())),
        "TargetGroupName": name,
        "HealthCheckEnabled": input["HealthCheckEnabled"].as_bool().unwrap_or(true),
        "HealthCheckIntervalSeconds": input["HealthCheckIntervalSeconds"].as_i64().unwrap_or(if lambda { 35 } else { 30 }),
        "HealthCheckTimeoutSeconds": input["HealthCheckTimeoutSeconds"].as_i64().unwrap_or(if lambda { 30 } else if hc_http && http { 5 } else if hc_http { 6 } else { 10 }),
        "HealthyThresholdCount": input["HealthyThresholdCount"].as_i64().unwrap_or(5),
        "UnhealthyThresholdCount": input["UnhealthyThresholdCount"].as_i64().unwrap_or(2),
        "TargetType": target_type,
        "LoadBalancerArns": [],
        "_tags": tags_of(&input)?,
        "_attributes": default_tg_attributes(protocol_s, target_type),
        "_targets": [],
    });
    if !lambda {
        tg["Protocol"] = json!(protocol_s);
        tg["Port"] = json!(port);
        tg["VpcId"] = json!(vpc);
        tg["HealthCheckProtocol"] = json!(hc_protocol);
        tg["HealthCheckPort"] = json!(input["HealthCheckPort"].as_str().unwrap_or("traffic-port"));
        tg["IpAddressType"] = json!(input["IpAddressType"].as_str().unwrap_or("ipv4"));
        if is_http(protocol_s) {
            tg["ProtocolVersion"] = json!(input["ProtocolVersion"].as_str().unwrap_or("HTTP1"));
        }
    }
    if hc_http {
        tg["HealthCheckPath"] = json!(input["HealthCheckPath"].as_str().unwrap_or("/"));
        tg["Matcher"] = if input["Matcher"].is_object() {
            input["Matcher"].clone()
        } else {
            json!({"HttpCode": "200"})
        };
    }
    if let Some((existing, _)) = resources::get::<Value>(&*ctx.store, &k).await? {
        // Idempotent for identical settings, as on AWS.
        if existing["Protocol"] == tg["Protocol"]
            && existing["Port"] == tg["Port"]
            && existing["VpcId"] == tg["VpcId"]
            && existing["TargetType"] == tg["TargetType"]
        {
            return Ok(json!({ "TargetGroups": [existing] }));
        }
        return Err(error(
            "DuplicateTargetGroupName",
            format!(
                "A target group with the same name '{name}' exists, but with different settings"
            ),
        ));
    }
    put(ctx, &k, &tg, None).await.map_err(|_| {
        error(
            "DuplicateTargetGroupName",
            format!(
                "A target group with the same name '{name}' exists, but with different settings"
            ),
        )
    })?;
    Ok(json!({ "TargetGroups": [tg] }))
}

#[doc(alias = "DescribeTargetGroups")]
pub async fn describe_target_groups(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let mut all = list_kind(ctx, "tg", "").await?;
    if let Some(arns) = input["TargetGroupArns"]
        .as_array()
        .filter(|a| !a.is_empty())
    {
        if arns
            .iter()
            .any(|a| !all.iter().any(|t| t["TargetGroupArn"] == *a))
        {
            return Err(tg_not_found());
        }
        all.retain(|t| arns.contains(&t["TargetGroupArn"]));
    }
    if let Some(names) = input["Names"].as_array().filter(|a| !a.is_empty()) {
        if names
            .iter()
            .any(|n| !all.iter().any(|t| t["TargetGroupName"] == *n))
        {
            return Err(error(
                "TargetGroupNotFound",
                format!(
                    "Target groups '[{}]' not found",
                    names
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        all.retain(|t| names.contains(&t["TargetGroupName"]));
    }
    for tg in &mut all {
        let arn = tg["TargetGroupArn"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        tg["LoadBalancerArns"] = json!(load_balancers_of(ctx, &arn).await?);
    }
    if let Some(lb) = input["LoadBalancerArn"].as_str() {
        if load_arn(ctx, lb, "LoadBalancerArn").await?.is_none() {
            return Err(super::common::lb_not_found());
        }
        all.retain(|t| {
            t["LoadBalancerArns"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == lb))
        });
    }
    page(all, &input, "TargetGroups")
}

#[doc(alias = "ModifyTargetGroup")]
pub async fn modify_target_group(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let (mut tg, rev) = load_tg(ctx, input["TargetGroupArn"].as_str().unwrap_or_default()).await?;
    for m in [
        "HealthCheckProtocol",
        "HealthCheckPort",
        "HealthCheckPath",
        "HealthCheckEnabled",
        "HealthCheckIntervalSeconds",
        "HealthCheckTimeoutSeconds",
        "HealthyThresholdCount",
        "UnhealthyThresholdCount",
        "Matcher",
    ] {
        if !input[m].is_null() {
            tg[m] = input[m].clone();
        }
    }
    if let Some(i) = tg["HealthCheckIntervalSeconds"].as_i64()
        && !(5..=300).contains(&i)
    {
        return Err(validation(
            "Health check interval must be between 5 and 300 seconds",
        ));
    }
    let name = tg["TargetGroupName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    put(ctx, &key(ctx, "tg", &name), &tg, Some(rev)).await?;
    let arn = tg["TargetGroupArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    tg["LoadBalancerArns"] = json!(load_balancers_of(ctx, &arn).await?);
    Ok(json!({ "TargetGroups": [tg] }))
}

#[doc(alias = "DeleteTargetGroup")]
pub async fn delete_target_group(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let arn = input["TargetGroupArn"].as_str().unwrap_or_default();
    let Some((tg, rev)) = load_arn(ctx, arn, "TargetGroupArn").await? else {
        return Ok(json!({}));
    };
    if !load_balancers_of(ctx, arn).await?.is_empty() {
        return Err(error(
            "ResourceInUse",
            format!("Target group '{arn}' is currently in use by a listener or a rule"),
        ));
    }
    let name = tg["TargetGroupName"].as_str().unwrap_or_default();
    super::common::commit(
        ctx,
        vec![skiff_store::Op::Delete {
            key: key(ctx, "tg", name),
            precondition: skiff_store::Precondition::ModRevision(rev),
        }],
    )
    .await?;
    Ok(json!({}))
}
