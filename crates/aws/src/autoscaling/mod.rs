//! autoscaling: the operation table. One file per operation group; each arm names the handler.
//!
//! Groups launch real EC2 instances through EC2's domain functions (tagged
//! `aws:autoscaling:groupName`); [`reconcile_group`] is the one place capacity is brought to desired,
//! and the EKS layer (nodegroups) and EC2-side terminations call it too.

use serde_json::Value;
use skiff_aws_model::AwsError;

use crate::context::RequestContext;

mod activities;
mod common;
pub mod groups;
mod instances;
pub mod launch_configurations;
mod tags;

/// Route one autoscaling operation to its handler.
pub async fn dispatch(
    ctx: &RequestContext,
    operation: &str,
    input: Value,
) -> Result<Value, AwsError> {
    match operation {
        // groups.rs
        "CreateAutoScalingGroup" => groups::create_auto_scaling_group(ctx, input).await,
        "DescribeAutoScalingGroups" => groups::describe_auto_scaling_groups(ctx, input).await,
        "UpdateAutoScalingGroup" => groups::update_auto_scaling_group(ctx, input).await,
        "DeleteAutoScalingGroup" => groups::delete_auto_scaling_group(ctx, input).await,
        "SetDesiredCapacity" => groups::set_desired_capacity(ctx, input).await,
        // launch_configurations.rs
        "CreateLaunchConfiguration" => {
            launch_configurations::create_launch_configuration(ctx, input).await
        }
        "DescribeLaunchConfigurations" => {
            launch_configurations::describe_launch_configurations(ctx, input).await
        }
        "DeleteLaunchConfiguration" => {
            launch_configurations::delete_launch_configuration(ctx, input).await
        }
        // instances.rs
        "DescribeAutoScalingInstances" => {
            instances::describe_auto_scaling_instances(ctx, input).await
        }
        "TerminateInstanceInAutoScalingGroup" => {
            instances::terminate_instance_in_auto_scaling_group(ctx, input).await
        }
        // activities.rs
        "DescribeScalingActivities" => activities::describe_scaling_activities(ctx, input).await,
        // tags.rs
        "CreateOrUpdateTags" => tags::create_or_update_tags(ctx, input).await,
        "DeleteTags" => tags::delete_tags(ctx, input).await,
        "DescribeTags" => tags::describe_tags(ctx, input).await,
        _ => Err(crate::not_implemented("autoscaling", operation)),
    }
}

pub use groups::reconcile_group;

#[cfg(test)]
mod tests;
