//! RegisterTargets, DeregisterTargets, DescribeTargetHealth, and `set_target_health` for the code
//! that really knows whether a target serves (the EKS load-balancer integration, pod readiness).
//!
//! Health without an override is derived on read, as AWS's health checker would report it: `unused`
//! while no load balancer routes to the group, `initial` for the first health-check interval after
//! registration, `unhealthy`/`unused` for instances EC2 reports not running, else `healthy`.
//! Deregistered targets show `draining` for the group's deregistration delay.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::Precondition;

use super::common::{commit, error, key, load_tg, validation};
use super::target_groups::load_balancers_of;
use crate::context::RequestContext;
use crate::resources;

fn same_target(a: &Value, b: &Value) -> bool {
    a["Id"] == b["Id"] && a["Port"] == b["Port"]
}

fn with_port(t: &Value, tg: &Value) -> Value {
    let mut t = json!({"Id": t["Id"], "Port": t["Port"].as_i64().or(tg["Port"].as_i64()), "AvailabilityZone": t["AvailabilityZone"]});
    if t["AvailabilityZone"].is_null() {
        t.as_object_mut().map(|o| o.remove("AvailabilityZone"));
    }
    if t["Port"].is_null() {
        t.as_object_mut().map(|o| o.remove("Port"));
    }
    t
}

#[doc(alias = "RegisterTargets")]
pub async fn register_targets(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let (mut tg, rev) = load_tg(ctx, input["TargetGroupArn"].as_str().unwrap_or_default()).await?;
    let new: Vec<Value> = input["Targets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| with_port(t, &tg))
        .collect();
    if tg["TargetType"] == "instance" {
        let ids: Vec<String> = new
            .iter()
            .filter_map(|t| t["Id"].as_str().map(str::to_string))
            .collect();
        let found = crate::ec2::describe_instances_internal(ctx, &ids)
            .await
            .map_err(|_| {
                error(
                    "InvalidTarget",
                    format!(
                        "The following targets are not valid instances: '{}'",
                        ids.join("', '")
                    ),
                )
            })?;
        let not_running: Vec<&str> = found
            .iter()
            .filter(|i| i["State"]["Name"] != "running" && i["State"]["Name"] != "pending")
            .filter_map(|i| i["InstanceId"].as_str())
            .collect();
        if !not_running.is_empty() {
            return Err(error(
                "InvalidTarget",
                format!(
                    "The following targets are not in a running state and can not be registered: '{}'",
                    not_running.join("', '")
                ),
            ));
        }
        let outside: Vec<&str> = found
            .iter()
            .filter(|i| i["VpcId"] != tg["VpcId"])
            .filter_map(|i| i["InstanceId"].as_str())
            .collect();
        if !outside.is_empty() {
            return Err(error(
                "InvalidTarget",
                format!(
                    "The following targets are not in the target group VPC '{}': '{}'",
                    tg["VpcId"].as_str().unwrap_or_default(),
                    outside.join("', '")
                ),
            ));
        }
    } else if tg["TargetType"] == "ip" {
        for t in &new {
            if t["Id"]
                .as_str()
                .and_then(|s| s.parse::<std::net::IpAddr>().ok())
                .is_none()
            {
                return Err(error(
                    "InvalidTarget",
                    format!(
                        "The IP address '{}' is not valid",
                        t["Id"].as_str().unwrap_or_default()
                    ),
                ));
            }
        }
    }
    let mut targets: Vec<Value> = tg["_targets"].as_array().cloned().unwrap_or_default();
    let at = jiff::Timestamp::now().as_millisecond();
    for t in new {
        if targets.len() >= 1000 {
            return Err(error(
                "TooManyTargets",
                "You've reached the limit on the number of targets",
            ));
        }
        targets.retain(|x| !same_target(x, &t));
        let mut t = t;
        t["_registeredAt"] = json!(at);
        targets.push(t);
    }
    tg["_targets"] = json!(targets);
    let name = tg["TargetGroupName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    commit(
        ctx,
        vec![resources::put_op(
            &key(ctx, "tg", &name),
            &tg,
            Precondition::ModRevision(rev),
        )],
    )
    .await?;
    Ok(json!({}))
}

#[doc(alias = "DeregisterTargets")]
pub async fn deregister_targets(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let (mut tg, rev) = load_tg(ctx, input["TargetGroupArn"].as_str().unwrap_or_default()).await?;
    let gone: Vec<Value> = input["Targets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| with_port(t, &tg))
        .collect();
    let mut targets: Vec<Value> = tg["_targets"].as_array().cloned().unwrap_or_default();
    let at = jiff::Timestamp::now().as_millisecond();
    for g in &gone {
        let Some(t) = targets
            .iter_mut()
            .find(|t| same_target(t, g) && t["_deregisteredAt"].is_null())
        else {
            return Err(error(
                "InvalidTarget",
                format!(
                    "The target '{}' is not registered with this target group",
                    g["Id"].as_str().unwrap_or_default()
                ),
            ));
        };
        t["_deregisteredAt"] = json!(at);
    }
    tg["_targets"] = json!(targets);
    let name = tg["TargetGroupName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    commit(
        ctx,
        vec![resources::put_op(
            &key(ctx, "tg", &name),
            &tg,
            Precondition::ModRevision(rev),
        )],
    )
    .await?;
    Ok(json!({}))
}

fn health(state: &str, reason: Option<&str>, description: Option<&str>) -> Value {
    let mut h = json!({"State": state});
    if let Some(r) = reason {
        h["Reason"] = json!(r);
    }
    if let Some(d) = description {
        h["Description"] = json!(d);
    }
    h
}

#[doc(alias = "DescribeTargetHealth")]
pub async fn describe_target_health(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let (tg, _) = load_tg(ctx, input["TargetGroupArn"].as_str().unwrap_or_default()).await?;
    let arn = tg["TargetGroupArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let in_use = !load_balancers_of(ctx, &arn).await?.is_empty();
    let now = jiff::Timestamp::now().as_millisecond();
    let delay_ms = tg["_attributes"]["deregistration_delay.timeout_seconds"]
        .as_str()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(300)
        * 1000;
    let interval_ms = tg["HealthCheckIntervalSeconds"].as_i64().unwrap_or(30) * 1000;
    let registered: Vec<Value> = tg["_targets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|t| {
            t["_deregisteredAt"]
                .as_i64()
                .is_none_or(|d| now < d + delay_ms)
        })
        .collect();
    let wanted: Vec<Value> = match input["Targets"].as_array() {
        Some(list) if !list.is_empty() => list.iter().map(|t| with_port(t, &tg)).collect(),
        _ => registered.iter().map(|t| with_port(t, &tg)).collect(),
    };
    let instance_ids: Vec<String> = if tg["TargetType"] == "instance" {
        registered
            .iter()
            .filter_map(|t| t["Id"].as_str().map(str::to_string))
            .collect()
    } else {
        Vec::new()
    };
    let instances = if instance_ids.is_empty() {
        Vec::new()
    } else {
        crate::ec2::describe_instances_internal(ctx, &instance_ids)
            .await
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for w in wanted {
        let Some(t) = registered.iter().find(|t| same_target(t, &w)) else {
            out.push(json!({"Target": w, "TargetHealth": health("unused", Some("Target.NotRegistered"), Some("Target is not registered to the target group"))}));
            continue;
        };
        let state = if t["_deregisteredAt"].is_i64() {
            health(
                "draining",
                Some("Target.DeregistrationInProgress"),
                Some("Target deregistration is in progress"),
            )
        } else if !in_use {
            health(
                "unused",
                Some("Target.NotInUse"),
                Some("Target group is not configured to receive traffic from the load balancer"),
            )
        } else if let Some(i) = instances
            .iter()
            .find(|i| i["InstanceId"] == t["Id"])
            .filter(|i| i["State"]["Name"] != "running")
        {
            let s = i["State"]["Name"].as_str().unwrap_or_default();
            health(
                "unused",
                Some("Target.InvalidState"),
                Some(&format!("Target is in the {s} state")),
            )
        } else if let Some(h) = t.get("_health").filter(|h| h.is_object()) {
            h.clone()
        } else if now < t["_registeredAt"].as_i64().unwrap_or(0) + interval_ms {
            health(
                "initial",
                Some("Elb.RegistrationInProgress"),
                Some("Target registration is in progress"),
            )
        } else {
            health("healthy", None, None)
        };
        out.push(json!({"Target": w, "HealthCheckPort": tg["HealthCheckPort"].as_str().filter(|p| *p != "traffic-port").map(str::to_string).unwrap_or_else(|| w["Port"].as_i64().map(|p| p.to_string()).unwrap_or_default()), "TargetHealth": state}));
    }
    Ok(json!({ "TargetHealthDescriptions": out }))
}

/// Record what a target's health check sees (`healthy`, `unhealthy` with reason
/// `Target.FailedHealthChecks`, …); `None` returns the target to the derived health.
pub async fn set_target_health(
    ctx: &RequestContext,
    target_group_arn: &str,
    target_id: &str,
    port: Option<i64>,
    state: Option<(&str, Option<&str>, Option<&str>)>,
) -> Result<(), AwsError> {
    let (mut tg, rev) = load_tg(ctx, target_group_arn).await?;
    let default_port = tg["Port"].as_i64();
    let mut found = false;
    for t in tg["_targets"].as_array_mut().into_iter().flatten() {
        if t["Id"] == target_id && t["Port"].as_i64() == port.or(default_port) {
            found = true;
            match state {
                Some((s, r, d)) => t["_health"] = health(s, r, d),
                None => {
                    t.as_object_mut().map(|o| o.remove("_health"));
                }
            }
        }
    }
    if !found {
        return Err(validation(format!(
            "The target '{target_id}' is not registered with this target group"
        )));
    }
    let name = tg["TargetGroupName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    commit(
        ctx,
        vec![resources::put_op(
            &key(ctx, "tg", &name),
            &tg,
            Precondition::ModRevision(rev),
        )],
    )
    .await
}
