//! Auto Scaling groups: Create/Describe/Update/Delete, SetDesiredCapacity, and [`reconcile_group`],
//! which launches or terminates real EC2 instances (through EC2's domain functions) until the group
//! runs its desired capacity, spread over the zones of its subnets.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::Precondition;

use super::activities::{activity_op, delete_ops};
use super::common::{fault, group_key, load_group, now, page, save_group, validation};
use crate::context::RequestContext;
use crate::ec2::LaunchRequest;
use crate::resources;

/// Reconciles are serialised in the process: two at once could both launch for the same shortfall.
pub(super) static RECONCILE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn check_bounds(min: i64, max: i64, desired: i64) -> Result<(), AwsError> {
    if min < 0 || max < 0 {
        return Err(validation(
            "Min and max bounds must be greater than or equal to 0",
        ));
    }
    if max < min {
        return Err(validation(format!(
            "Max bound, {max}, must be greater than or equal to min bound, {min}"
        )));
    }
    if desired < min || desired > max {
        return Err(validation(format!(
            "Desired capacity:{desired} must be between the specified min size:{min} and max size:{max}"
        )));
    }
    Ok(())
}

/// The launch template spec of a group: its own, or its mixed-instances policy's.
fn template_spec(group: &Value) -> Value {
    if group["LaunchTemplate"].is_object() {
        group["LaunchTemplate"].clone()
    } else {
        group["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"].clone()
    }
}

/// Subnets of `VPCZoneIdentifier` with their zones, read through EC2's DescribeSubnets.
async fn subnet_zones(ctx: &RequestContext, ids: &str) -> Result<Vec<(String, String)>, AwsError> {
    let ids: Vec<String> = ids
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let out = crate::ec2::dispatch(ctx, "DescribeSubnets", json!({ "SubnetIds": ids }))
        .await
        .map_err(|e| {
            let id = ids
                .iter()
                .find(|i| e.message.contains(i.as_str()))
                .cloned()
                .unwrap_or_default();
            validation(format!("The subnet ID '{id}' does not exist"))
        })?;
    Ok(out["Subnets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["SubnetId"].as_str().unwrap_or_default().to_string(),
                s["AvailabilityZone"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect())
}

fn tags_of(name: &str, input: &Value) -> Vec<Value> {
    input["Tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            json!({"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": t["Key"],
                "Value": t["Value"].as_str().unwrap_or(""), "PropagateAtLaunch": t["PropagateAtLaunch"].as_bool().unwrap_or(false)})
        })
        .collect()
}

#[doc(alias = "CreateAutoScalingGroup")]
pub async fn create_auto_scaling_group(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let name = input["AutoScalingGroupName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let key = group_key(ctx, &name);
    if resources::get::<Value>(&*ctx.store, &key).await?.is_some() {
        return Err(fault(
            "AlreadyExists",
            format!(
                "AutoScalingGroup by this name already exists - A group with the name {name} already exists"
            ),
        ));
    }
    let launch_config = super::launch_configurations::for_create(ctx, &input).await?;
    if input["LaunchTemplate"].is_null()
        && input["MixedInstancesPolicy"].is_null()
        && launch_config.is_none()
    {
        return Err(validation(
            "Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.",
        ));
    }
    let min = input["MinSize"].as_i64().unwrap_or(0);
    let max = input["MaxSize"].as_i64().unwrap_or(0);
    let desired = input["DesiredCapacity"].as_i64().unwrap_or(min);
    check_bounds(min, max, desired)?;
    let mut group = json!({
        "AutoScalingGroupName": name,
        "LaunchTemplate": input["LaunchTemplate"],
        "MixedInstancesPolicy": input["MixedInstancesPolicy"],
    });
    let spec = template_spec(&group);
    if launch_config.is_none() {
        crate::ec2::resolve_launch_template(ctx, &spec).await.map_err(|_| {
            let which = spec["LaunchTemplateName"].as_str().map(|n| format!("template name {n}"))
                .or_else(|| spec["LaunchTemplateId"].as_str().map(|i| format!("id {i}")))
                .unwrap_or_default();
            validation(format!(
                "You must use a valid fully-formed launch template. The specified launch template, with {which}, does not exist."
            ))
        })?;
    }
    let vpc_zone = input["VPCZoneIdentifier"].as_str().unwrap_or_default();
    let subnets = subnet_zones(ctx, vpc_zone).await?;
    let mut zones: Vec<String> = subnets.iter().map(|s| s.1.clone()).collect();
    if zones.is_empty() {
        zones.extend(
            input["AvailabilityZones"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|z| z.as_str().map(str::to_string)),
        );
    }
    if zones.is_empty() {
        return Err(validation(
            "At least one Availability Zone or VPC Subnet is required.",
        ));
    }
    zones.sort();
    zones.dedup();
    group = json!({
        "AutoScalingGroupName": name,
        "AutoScalingGroupARN": format!("arn:aws:autoscaling:{}:{}:autoScalingGroup:{}:autoScalingGroupName/{name}", ctx.region, ctx.account_id, uuid::Uuid::new_v4()),
        "MinSize": min,
        "MaxSize": max,
        "DesiredCapacity": desired,
        "DefaultCooldown": input["DefaultCooldown"].as_i64().unwrap_or(300),
        "AvailabilityZones": zones,
        "LoadBalancerNames": input["LoadBalancerNames"].as_array().cloned().unwrap_or_default(),
        "TargetGroupARNs": input["TargetGroupARNs"].as_array().cloned().unwrap_or_default(),
        "HealthCheckType": input["HealthCheckType"].as_str().unwrap_or("EC2"),
        "HealthCheckGracePeriod": input["HealthCheckGracePeriod"].as_i64().unwrap_or(300),
        "Instances": [],
        "CreatedTime": now(),
        "SuspendedProcesses": [],
        "VPCZoneIdentifier": vpc_zone,
        "EnabledMetrics": [],
        "Tags": tags_of(&name, &input),
        "TerminationPolicies": input["TerminationPolicies"].as_array().cloned().unwrap_or_else(|| vec![json!("Default")]),
        "NewInstancesProtectedFromScaleIn": input["NewInstancesProtectedFromScaleIn"].as_bool().unwrap_or(false),
        "ServiceLinkedRoleARN": format!("arn:aws:iam::{}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling", ctx.account_id),
        "CapacityRebalance": input["CapacityRebalance"].as_bool().unwrap_or(false),
        "TrafficSources": [],
    });
    for member in [
        "LaunchTemplate",
        "MixedInstancesPolicy",
        "LaunchConfigurationName",
        "MaxInstanceLifetime",
        "DeletionProtection",
        "DefaultInstanceWarmup",
    ] {
        if !input[member].is_null() {
            group[member] = input[member].clone();
        }
    }
    resources::commit(&*ctx.store, vec![resources::put_op(&key, &group, Precondition::MustNotExist)])
        .await
        .map_err(|e| e.unwrap_or_else(|| fault("AlreadyExists", format!(
            "AutoScalingGroup by this name already exists - A group with the name {name} already exists"))))?;
    reconcile_group(ctx, &name, "a user request created an AutoScalingGroup").await?;
    Ok(json!({}))
}

#[doc(alias = "DescribeAutoScalingGroups")]
pub async fn describe_auto_scaling_groups(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let mut all: Vec<Value> = resources::list(&*ctx.store, &group_key(ctx, "")).await?;
    if let Some(names) = input["AutoScalingGroupNames"]
        .as_array()
        .filter(|a| !a.is_empty())
    {
        all.retain(|g| names.contains(&g["AutoScalingGroupName"]));
    }
    for f in input["Filters"].as_array().into_iter().flatten() {
        let values: Vec<&str> = f["Values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let fname = f["Name"].as_str().unwrap_or_default();
        all.retain(|g| {
            let tags = g["Tags"].as_array().cloned().unwrap_or_default();
            match fname.strip_prefix("tag:") {
                Some(k) => tags.iter().any(|t| {
                    t["Key"] == k && values.contains(&t["Value"].as_str().unwrap_or_default())
                }),
                None if fname == "tag-key" => tags
                    .iter()
                    .any(|t| values.contains(&t["Key"].as_str().unwrap_or_default())),
                None if fname == "tag-value" => tags
                    .iter()
                    .any(|t| values.contains(&t["Value"].as_str().unwrap_or_default())),
                None => true,
            }
        });
    }
    let (items, next) = page(all, &input, 50, 100)?;
    let mut out = json!({ "AutoScalingGroups": items });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

#[doc(alias = "UpdateAutoScalingGroup")]
pub async fn update_auto_scaling_group(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let name = input["AutoScalingGroupName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (mut group, rev) = load_group(ctx, &name).await?;
    let min = input["MinSize"]
        .as_i64()
        .or(group["MinSize"].as_i64())
        .unwrap_or(0);
    let max = input["MaxSize"]
        .as_i64()
        .or(group["MaxSize"].as_i64())
        .unwrap_or(0);
    // As AWS: a new min above, or max below, the current desired capacity moves desired with it.
    let mut desired = input["DesiredCapacity"]
        .as_i64()
        .unwrap_or_else(|| group["DesiredCapacity"].as_i64().unwrap_or(0));
    if input["DesiredCapacity"].is_null() {
        desired = desired.clamp(min.min(max), max.max(min));
    }
    check_bounds(min, max, desired)?;
    group["MinSize"] = json!(min);
    group["MaxSize"] = json!(max);
    group["DesiredCapacity"] = json!(desired);
    if input["LaunchTemplate"].is_object() || input["MixedInstancesPolicy"].is_object() {
        let candidate = json!({"LaunchTemplate": input["LaunchTemplate"], "MixedInstancesPolicy": input["MixedInstancesPolicy"]});
        crate::ec2::resolve_launch_template(ctx, &template_spec(&candidate))
            .await
            .map_err(|_| validation("You must use a valid fully-formed launch template."))?;
        let o = group.as_object_mut().expect("group records are objects");
        o.remove("LaunchTemplate");
        o.remove("MixedInstancesPolicy");
        for m in ["LaunchTemplate", "MixedInstancesPolicy"] {
            if input[m].is_object() {
                o.insert(m.to_string(), input[m].clone());
            }
        }
    }
    super::launch_configurations::switch(ctx, &input, &mut group).await?;
    if let Some(v) = input["VPCZoneIdentifier"].as_str() {
        let subnets = subnet_zones(ctx, v).await?;
        let mut zones: Vec<String> = subnets.into_iter().map(|s| s.1).collect();
        zones.sort();
        zones.dedup();
        group["VPCZoneIdentifier"] = json!(v);
        group["AvailabilityZones"] = json!(zones);
    }
    for member in [
        "DefaultCooldown",
        "HealthCheckType",
        "HealthCheckGracePeriod",
        "TerminationPolicies",
        "NewInstancesProtectedFromScaleIn",
        "MaxInstanceLifetime",
        "CapacityRebalance",
        "DeletionProtection",
        "DefaultInstanceWarmup",
    ] {
        if !input[member].is_null() {
            group[member] = input[member].clone();
        }
    }
    save_group(ctx, &group, rev).await?;
    reconcile_group(
        ctx,
        &name,
        "a user request update of AutoScalingGroup constraints",
    )
    .await?;
    Ok(json!({}))
}

#[doc(alias = "SetDesiredCapacity")]
pub async fn set_desired_capacity(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let name = input["AutoScalingGroupName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let desired = input["DesiredCapacity"].as_i64().unwrap_or(0);
    let (mut group, rev) = load_group(ctx, &name).await?;
    let (min, max) = (
        group["MinSize"].as_i64().unwrap_or(0),
        group["MaxSize"].as_i64().unwrap_or(0),
    );
    if desired > max {
        return Err(validation(format!(
            "New SetDesiredCapacity value {desired} is above max value {max} for the AutoScalingGroup."
        )));
    }
    if desired < min {
        return Err(validation(format!(
            "New SetDesiredCapacity value {desired} is below min value {min} for the AutoScalingGroup."
        )));
    }
    group["DesiredCapacity"] = json!(desired);
    save_group(ctx, &group, rev).await?;
    reconcile_group(
        ctx,
        &name,
        "a user request explicitly set group desired capacity",
    )
    .await?;
    Ok(json!({}))
}

#[doc(alias = "DeleteAutoScalingGroup")]
pub async fn delete_auto_scaling_group(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let name = input["AutoScalingGroupName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let force = input["ForceDelete"].as_bool().unwrap_or(false);
    let _guard = RECONCILE.lock().await;
    let (group, rev) = load_group(ctx, &name).await?;
    if group["DeletionProtection"]
        .as_str()
        .is_some_and(|p| p != "none")
    {
        return Err(validation(format!(
            "AutoScalingGroup {name} has deletion protection enabled"
        )));
    }
    let ids: Vec<String> = group["Instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["InstanceId"].as_str().map(str::to_string))
        .collect();
    let live = live_instances(ctx, &ids).await?;
    if !live.is_empty() && !force {
        return Err(fault(
            "ResourceInUse",
            "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.",
        ));
    }
    if !live.is_empty() {
        let ids: Vec<String> = live.iter().map(|i| i.0.clone()).collect();
        crate::ec2::terminate_instances_internal(ctx, &ids).await?;
    }
    let mut ops = vec![skiff_store::Op::Delete {
        key: group_key(ctx, &name),
        precondition: Precondition::ModRevision(rev),
    }];
    ops.extend(delete_ops(ctx, &name).await?);
    resources::commit(&*ctx.store, ops).await.map_err(|e| {
        e.unwrap_or_else(|| {
            fault(
                "ResourceContention",
                "You already have a pending update to an Auto Scaling resource.",
            )
            .with_status(500)
        })
    })?;
    Ok(json!({}))
}

/// (instance id, zone) of the given instances that EC2 still reports pending or running (an id EC2
/// no longer knows is simply gone). Reads the instance records only: a group of 1,000 is checked
/// without assembling every instance's interfaces and volumes.
async fn live_instances(
    ctx: &RequestContext,
    ids: &[String],
) -> Result<Vec<(String, String)>, AwsError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let wanted: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let all = crate::ec2::instances::instance_records(ctx).await?;
    Ok(all
        .iter()
        .filter(|i| {
            i["InstanceId"]
                .as_str()
                .is_some_and(|id| wanted.contains(id))
        })
        .filter(|i| matches!(i["State"]["Name"].as_str(), Some("pending" | "running")))
        .map(|i| {
            (
                i["InstanceId"].as_str().unwrap_or_default().to_string(),
                i["Placement"]["AvailabilityZone"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect())
}

/// Bring the group to its desired capacity: forget instances EC2 reports gone (terminated through
/// EC2, for instance), launch replacements in the zone with fewest instances, terminate the surplus
/// from the zone with most (newest first). Each launch and termination is an activity. `cause` is the
/// "a user request …" phrase of the activity's cause.
pub async fn reconcile_group(
    ctx: &RequestContext,
    name: &str,
    cause: &str,
) -> Result<(), AwsError> {
    let _guard = RECONCILE.lock().await;
    let (mut group, rev) = load_group(ctx, name).await?;
    let desired = group["DesiredCapacity"].as_i64().unwrap_or(0).max(0) as usize;
    let recorded: Vec<Value> = group["Instances"].as_array().cloned().unwrap_or_default();
    let ids: Vec<String> = recorded
        .iter()
        .filter_map(|i| i["InstanceId"].as_str().map(str::to_string))
        .collect();
    let live: std::collections::HashSet<String> = live_instances(ctx, &ids)
        .await?
        .into_iter()
        .map(|l| l.0)
        .collect();
    let mut members: Vec<Value> = recorded
        .into_iter()
        .filter(|i| i["InstanceId"].as_str().is_some_and(|id| live.contains(id)))
        .collect();
    let before = members.len();
    let mut ops = Vec::new();
    let at = now();
    let subnets =
        subnet_zones(ctx, group["VPCZoneIdentifier"].as_str().unwrap_or_default()).await?;
    let spec = template_spec(&group);
    let launch_config = super::launch_configurations::of_group(ctx, &group).await?;
    let overrides: Vec<String> = group["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["InstanceType"].as_str().map(str::to_string))
        .collect();
    let mut tags = vec![("aws:autoscaling:groupName".to_string(), name.to_string())];
    for t in group["Tags"].as_array().into_iter().flatten() {
        if t["PropagateAtLaunch"].as_bool() == Some(true) {
            tags.push((
                t["Key"].as_str().unwrap_or_default().to_string(),
                t["Value"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    // Plan every missing member first (the subnet whose zone has the fewest members, the override
    // type in turn), then launch each (subnet, type) batch with one RunInstances: a group of 1,000
    // is a handful of store transactions, not 1,000.
    let mut per_zone: std::collections::BTreeMap<String, usize> = Default::default();
    for m in &members {
        *per_zone
            .entry(
                m["AvailabilityZone"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
            .or_default() += 1;
    }
    let mut batches: Vec<(Option<String>, Option<String>, usize)> = Vec::new();
    for slot in members.len()..desired {
        let subnet = subnets
            .iter()
            .min_by_key(|s| per_zone.get(&s.1).copied().unwrap_or(0))
            .cloned();
        if let Some(s) = &subnet {
            *per_zone.entry(s.1.clone()).or_default() += 1;
        }
        let subnet_id = subnet.map(|s| s.0);
        let instance_type =
            (!overrides.is_empty()).then(|| overrides[slot % overrides.len()].clone());
        match batches
            .iter_mut()
            .find(|b| b.0 == subnet_id && b.1 == instance_type)
        {
            Some(b) => b.2 += 1,
            None => batches.push((subnet_id, instance_type, 1)),
        }
    }
    for (subnet_id, instance_type, count) in batches {
        let mut req = LaunchRequest {
            launch_template: Some(spec.clone()),
            instance_type,
            subnet_id,
            count,
            tags: tags.clone(),
            ..LaunchRequest::default()
        };
        if let Some(lc) = &launch_config {
            super::launch_configurations::fill_launch(lc, &mut req);
        }
        let launched = crate::ec2::run_instances_internal(ctx, &req).await?;
        for i in launched {
            let id = i["InstanceId"].as_str().unwrap_or_default().to_string();
            members.push(json!({
                "InstanceId": id,
                "InstanceType": i["InstanceType"],
                "AvailabilityZone": i["Placement"]["AvailabilityZone"],
                "LifecycleState": "InService",
                "HealthStatus": "Healthy",
                "LaunchTemplate": spec,
                "ProtectedFromScaleIn": group["NewInstancesProtectedFromScaleIn"].as_bool().unwrap_or(false),
            }));
            ops.push(activity_op(ctx, &group, format!("Launching a new EC2 instance: {id}"), format!(
                "At {at} {cause} changing the desired capacity from {before} to {desired}.  At {at} an instance was started in response to a difference between desired and running capacity, increasing the capacity from {before} to {desired}."
            )));
        }
    }
    let mut surplus = Vec::new();
    while members.len() > desired {
        let mut by_zone: std::collections::BTreeMap<String, usize> = Default::default();
        for m in &members {
            *by_zone
                .entry(
                    m["AvailabilityZone"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
                .or_default() += 1;
        }
        let zone = by_zone
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(z, _)| z)
            .unwrap_or_default();
        let Some(pos) = members.iter().rposition(|m| {
            m["AvailabilityZone"] == zone.as_str() && m["ProtectedFromScaleIn"] != true
        }) else {
            break;
        };
        let m = members.remove(pos);
        let id = m["InstanceId"].as_str().unwrap_or_default().to_string();
        ops.push(activity_op(ctx, &group, format!("Terminating EC2 instance: {id}"), format!(
            "At {at} {cause} changing the desired capacity from {before} to {desired}.  At {at} an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity from {before} to {desired}."
        )));
        surplus.push(id);
    }
    if !surplus.is_empty() {
        crate::ec2::terminate_instances_internal(ctx, &surplus).await?;
    }
    if let Some(lc) = &launch_config {
        super::launch_configurations::mark_members(lc, &mut members);
    }
    group["Instances"] = json!(members);
    ops.insert(
        0,
        resources::put_op(
            &group_key(ctx, name),
            &group,
            Precondition::ModRevision(rev),
        ),
    );
    resources::commit(&*ctx.store, ops).await.map_err(|e| {
        e.unwrap_or_else(|| {
            fault(
                "ResourceContention",
                "You already have a pending update to an Auto Scaling resource.",
            )
            .with_status(500)
        })
    })?;
    Ok(())
}
