//! The instances of groups: DescribeAutoScalingInstances and TerminateInstanceInAutoScalingGroup.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::activities::activity_op;
use super::common::{group_key, now, page, validation};
use super::groups::reconcile_group;
use crate::context::RequestContext;
use crate::resources;

#[doc(alias = "DescribeAutoScalingInstances")]
pub async fn describe_auto_scaling_instances(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let groups: Vec<Value> = resources::list(&*ctx.store, &group_key(ctx, "")).await?;
    let wanted = input["InstanceIds"].as_array().filter(|a| !a.is_empty());
    let mut all = Vec::new();
    for g in &groups {
        for i in g["Instances"].as_array().into_iter().flatten() {
            if wanted.is_some_and(|w| !w.contains(&i["InstanceId"])) {
                continue;
            }
            let mut d = i.clone();
            d["AutoScalingGroupName"] = g["AutoScalingGroupName"].clone();
            all.push(d);
        }
    }
    let (items, next) = page(all, &input, 50, 50)?;
    let mut out = json!({ "AutoScalingInstances": items });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

#[doc(alias = "TerminateInstanceInAutoScalingGroup")]
pub async fn terminate_instance_in_auto_scaling_group(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let id = input["InstanceId"].as_str().unwrap_or_default().to_string();
    let decrement = input["ShouldDecrementDesiredCapacity"]
        .as_bool()
        .unwrap_or(false);
    // Serialised with the group reconcile, and the group is committed before the instance goes:
    // a reconcile must never see the terminated instance still listed and launch a replacement.
    let guard = super::groups::RECONCILE.lock().await;
    let groups: Vec<(Value, skiff_store::Revision)> = {
        let page = ctx
            .store
            .list(&group_key(ctx, ""), skiff_store::ListOptions::default())
            .await
            .map_err(resources::internal)?;
        page.items
            .iter()
            .filter_map(|kv| {
                serde_json::from_slice(&kv.value)
                    .ok()
                    .map(|v| (v, kv.mod_revision))
            })
            .collect()
    };
    let Some((mut group, rev)) = groups.into_iter().find(|(g, _)| {
        g["Instances"]
            .as_array()
            .is_some_and(|a| a.iter().any(|i| i["InstanceId"] == id.as_str()))
    }) else {
        return Err(validation(format!(
            "Instance Id not found - No managed instance found for instance ID: {id}"
        )));
    };
    let name = group["AutoScalingGroupName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let desired = group["DesiredCapacity"].as_i64().unwrap_or(0);
    let min = group["MinSize"].as_i64().unwrap_or(0);
    if decrement && desired - 1 < min {
        return Err(validation(format!(
            "Currently, desired capacity is {desired} and min size is {min}. Terminating instance without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size."
        )));
    }
    if let Some(list) = group["Instances"].as_array_mut() {
        list.retain(|i| i["InstanceId"] != id.as_str());
    }
    let new_desired = if decrement { desired - 1 } else { desired };
    group["DesiredCapacity"] = json!(new_desired);
    let at = now();
    let cause = if decrement {
        format!(
            "At {at} instance {id} was taken out of service in response to a user request, shrinking the capacity from {desired} to {new_desired}."
        )
    } else {
        format!("At {at} instance {id} was taken out of service in response to a user request.")
    };
    let op = activity_op(
        ctx,
        &group,
        format!("Terminating EC2 instance: {id}"),
        cause,
    );
    let activity: Value = match &op {
        skiff_store::Op::Put { value, .. } => serde_json::from_slice(value).unwrap_or_default(),
        skiff_store::Op::Delete { .. } => Value::Null,
    };
    resources::commit(
        &*ctx.store,
        vec![
            resources::put_op(
                &group_key(ctx, &name),
                &group,
                skiff_store::Precondition::ModRevision(rev),
            ),
            op,
        ],
    )
    .await
    .map_err(|e| {
        e.unwrap_or_else(|| {
            super::common::fault(
                "ResourceContention",
                "You already have a pending update to an Auto Scaling resource.",
            )
            .with_status(500)
        })
    })?;
    crate::ec2::terminate_instances_internal(ctx, std::slice::from_ref(&id)).await?;
    drop(guard);
    if !decrement {
        reconcile_group(ctx, &name, "a user request replaced a terminated instance").await?;
    }
    Ok(json!({ "Activity": activity }))
}
