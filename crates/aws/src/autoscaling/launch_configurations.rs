//! Launch configurations: Create/Describe/DeleteLaunchConfiguration, and what groups need of them
//! ([`for_create`], [`switch`], [`fill_launch`], [`mark_members`]): a group launched from a
//! configuration runs instances with its image, type, security groups and user data.
//!
//! Records live under `/aws/<account>/<region>/autoscaling/launch-configuration/<name>`, stored as the
//! `LaunchConfiguration` output shape. They are immutable, as on AWS: no update call exists.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::Precondition;

use super::common::{fault, group_key, now, page, validation};
use crate::context::RequestContext;
use crate::ec2::LaunchRequest;
use crate::resources;

pub fn config_key(ctx: &RequestContext, name: &str) -> String {
    resources::key(ctx, "autoscaling", "launch-configuration", name)
}

fn not_found(name: &str) -> AwsError {
    validation(format!(
        "Launch configuration name not found - Launch configuration {name} not found"
    ))
}

/// A stored configuration, or AWS's "not found" ValidationError.
pub async fn load(ctx: &RequestContext, name: &str) -> Result<Value, AwsError> {
    resources::get::<Value>(&*ctx.store, &config_key(ctx, name))
        .await?
        .map(|(v, _)| v)
        .ok_or_else(|| not_found(name))
}

/// Security groups may be named by id (VPC) or by name (default VPC); ids must exist.
async fn check_security_groups(ctx: &RequestContext, groups: &[Value]) -> Result<(), AwsError> {
    let ids: Vec<&str> = groups
        .iter()
        .filter_map(Value::as_str)
        .filter(|g| g.starts_with("sg-"))
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    crate::ec2::dispatch(ctx, "DescribeSecurityGroups", json!({ "GroupIds": ids }))
        .await
        .map(|_| ())
        .map_err(|e| {
            let id = ids
                .iter()
                .find(|i| e.message.contains(*i))
                .copied()
                .unwrap_or_default();
            validation(format!("The security group '{id}' does not exist"))
        })
}

#[doc(alias = "CreateLaunchConfiguration")]
pub async fn create_launch_configuration(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let name = input["LaunchConfigurationName"]
        .as_str()
        .unwrap_or_default();
    if !input["InstanceId"].is_null() {
        return Err(validation(
            "Creating a launch configuration from an instance (InstanceId) is not supported by Skiff; give ImageId and InstanceType",
        ));
    }
    let image = input["ImageId"].as_str().ok_or_else(|| {
        validation("Valid requests must contain either the ImageId or the InstanceId parameter.")
    })?;
    let instance_type = input["InstanceType"].as_str().ok_or_else(|| {
        validation(
            "Valid requests must contain either the InstanceType or the InstanceId parameter.",
        )
    })?;
    if crate::ec2::instance_type(instance_type).is_none() {
        return Err(validation(format!(
            "Invalid instance type: {instance_type}"
        )));
    }
    let security_groups = input["SecurityGroups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    check_security_groups(ctx, &security_groups).await?;
    let mut lc = json!({
        "LaunchConfigurationName": name,
        "LaunchConfigurationARN": format!(
            "arn:aws:autoscaling:{}:{}:launchConfiguration:{}:launchConfigurationName/{name}",
            ctx.region, ctx.account_id, uuid::Uuid::new_v4()
        ),
        "ImageId": image,
        "KeyName": input["KeyName"].as_str().unwrap_or_default(),
        "SecurityGroups": security_groups,
        "ClassicLinkVPCSecurityGroups": [],
        "UserData": input["UserData"].as_str().unwrap_or_default(),
        "InstanceType": instance_type,
        "KernelId": input["KernelId"].as_str().unwrap_or_default(),
        "RamdiskId": input["RamdiskId"].as_str().unwrap_or_default(),
        "BlockDeviceMappings": input["BlockDeviceMappings"].as_array().cloned().unwrap_or_default(),
        "InstanceMonitoring": {"Enabled": input["InstanceMonitoring"]["Enabled"].as_bool().unwrap_or(true)},
        "CreatedTime": now(),
        "EbsOptimized": input["EbsOptimized"].as_bool().unwrap_or(false),
    });
    for member in [
        "SpotPrice",
        "IamInstanceProfile",
        "AssociatePublicIpAddress",
        "PlacementTenancy",
        "MetadataOptions",
        "ClassicLinkVPCId",
    ] {
        if !input[member].is_null() {
            lc[member] = input[member].clone();
        }
    }
    let exists = || {
        fault(
            "AlreadyExists",
            format!(
                "Launch Configuration by this name already exists - A launch configuration already exists with the name {name}"
            ),
        )
    };
    resources::commit(
        &*ctx.store,
        vec![resources::put_op(
            &config_key(ctx, name),
            &lc,
            Precondition::MustNotExist,
        )],
    )
    .await
    .map_err(|e| e.unwrap_or_else(exists))?;
    Ok(json!({}))
}

#[doc(alias = "DescribeLaunchConfigurations")]
pub async fn describe_launch_configurations(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let mut all: Vec<Value> =
        resources::list(&*ctx.store, &resources::prefix_of(&config_key(ctx, "x"))).await?;
    if let Some(names) = input["LaunchConfigurationNames"]
        .as_array()
        .filter(|a| !a.is_empty())
    {
        all.retain(|c| names.contains(&c["LaunchConfigurationName"]));
    }
    let (items, next) = page(all, &input, 50, 100)?;
    let mut out = json!({ "LaunchConfigurations": items });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

#[doc(alias = "DeleteLaunchConfiguration")]
pub async fn delete_launch_configuration(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let name = input["LaunchConfigurationName"]
        .as_str()
        .unwrap_or_default();
    let (_, rev) = resources::get::<Value>(&*ctx.store, &config_key(ctx, name))
        .await?
        .ok_or_else(|| not_found(name))?;
    let groups: Vec<Value> = resources::list(&*ctx.store, &group_key(ctx, "")).await?;
    if let Some(g) = groups.iter().find(|g| g["LaunchConfigurationName"] == name) {
        return Err(fault(
            "ResourceInUse",
            format!(
                "Cannot delete launch configuration {name} because it is attached to AutoScalingGroup {}",
                g["AutoScalingGroupName"].as_str().unwrap_or_default()
            ),
        ));
    }
    resources::commit(
        &*ctx.store,
        vec![skiff_store::Op::Delete {
            key: config_key(ctx, name),
            precondition: Precondition::ModRevision(rev),
        }],
    )
    .await
    .map_err(|e| {
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

/// CreateAutoScalingGroup's `LaunchConfigurationName`: the configuration, which must exist and be
/// the group's only launch source. `None` when the group is launched from a template.
pub async fn for_create(ctx: &RequestContext, input: &Value) -> Result<Option<Value>, AwsError> {
    let Some(name) = input["LaunchConfigurationName"].as_str() else {
        return Ok(None);
    };
    if !input["LaunchTemplate"].is_null() || !input["MixedInstancesPolicy"].is_null() {
        return Err(validation(
            "Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.",
        ));
    }
    load(ctx, name).await.map(Some)
}

/// UpdateAutoScalingGroup switching sources: a `LaunchConfigurationName` replaces the group's
/// template (and must exist); a template replaces its configuration. Instances already running keep
/// what they were launched from, as on AWS.
pub async fn switch(
    ctx: &RequestContext,
    input: &Value,
    group: &mut Value,
) -> Result<(), AwsError> {
    let Some(o) = group.as_object_mut() else {
        return Ok(());
    };
    if let Some(name) = input["LaunchConfigurationName"].as_str() {
        if !input["LaunchTemplate"].is_null() || !input["MixedInstancesPolicy"].is_null() {
            return Err(validation(
                "Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.",
            ));
        }
        load(ctx, name).await?;
        o.remove("LaunchTemplate");
        o.remove("MixedInstancesPolicy");
        o.insert("LaunchConfigurationName".into(), json!(name));
    } else if input["LaunchTemplate"].is_object() || input["MixedInstancesPolicy"].is_object() {
        o.remove("LaunchConfigurationName");
    }
    Ok(())
}

/// The configuration a group launches from, if it has one.
pub async fn of_group(ctx: &RequestContext, group: &Value) -> Result<Option<Value>, AwsError> {
    match group["LaunchConfigurationName"].as_str() {
        Some(name) => load(ctx, name).await.map(Some),
        None => Ok(None),
    }
}

/// Launch from `lc` instead of a template.
pub fn fill_launch(lc: &Value, req: &mut LaunchRequest) {
    let text = |m: &str| lc[m].as_str().filter(|s| !s.is_empty()).map(str::to_string);
    req.launch_template = None;
    req.image_id = text("ImageId");
    req.instance_type = text("InstanceType");
    req.user_data = text("UserData");
    req.security_group_ids = lc["SecurityGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g.as_str().map(str::to_string))
        .collect();
}

/// Members launched from `lc` say so (`LaunchConfigurationName`) rather than naming a template.
pub fn mark_members(lc: &Value, members: &mut [Value]) {
    for m in members {
        if let Some(o) = m.as_object_mut()
            && o.get("LaunchTemplate").is_some_and(Value::is_null)
        {
            o.remove("LaunchTemplate");
            o.insert(
                "LaunchConfigurationName".into(),
                lc["LaunchConfigurationName"].clone(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launches_take_the_configurations_image_type_groups_and_user_data() {
        let lc = json!({"LaunchConfigurationName": "web", "ImageId": "ami-1", "InstanceType": "t3.small",
            "SecurityGroups": ["sg-1"], "UserData": "", "KeyName": ""});
        let mut req = LaunchRequest {
            launch_template: Some(json!({"LaunchTemplateName": "x"})),
            ..LaunchRequest::default()
        };
        fill_launch(&lc, &mut req);
        assert!(req.launch_template.is_none());
        assert_eq!(req.image_id.as_deref(), Some("ami-1"));
        assert_eq!(req.instance_type.as_deref(), Some("t3.small"));
        assert_eq!(req.security_group_ids, vec!["sg-1".to_string()]);
        assert!(req.user_data.is_none());
        let mut members = vec![
            json!({"InstanceId": "i-1", "LaunchTemplate": null}),
            json!({"InstanceId": "i-2", "LaunchConfigurationName": "old"}),
        ];
        mark_members(&lc, &mut members);
        assert_eq!(members[0]["LaunchConfigurationName"], "web");
        assert!(members[0].get("LaunchTemplate").is_none());
        assert_eq!(members[1]["LaunchConfigurationName"], "old");
    }
}
