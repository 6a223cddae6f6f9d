//! elbv2: the operation table. One file per operation group; each arm names the handler.
//!
//! Application and network load balancers, target groups, listeners (default actions are the
//! listener's default rule), rules, targets and their health, attributes and tags. Records live under
//! `/aws/<account>/<region>/elbv2/{lb,tg,listener,rule}/…`. The EKS load-balancer integration calls
//! these handlers (they are public) and [`targets::set_target_health`].

use serde_json::Value;
use skiff_aws_model::AwsError;

use crate::context::RequestContext;

pub mod attributes;
pub mod capacity;
mod common;
pub mod listeners;
pub mod load_balancers;
pub mod rules;
mod tags;
pub mod target_groups;
pub mod targets;

/// Route one elbv2 operation to its handler.
pub async fn dispatch(
    ctx: &RequestContext,
    operation: &str,
    input: Value,
) -> Result<Value, AwsError> {
    match operation {
        // load_balancers.rs
        "CreateLoadBalancer" => load_balancers::create_load_balancer(ctx, input).await,
        "DescribeLoadBalancers" => load_balancers::describe_load_balancers(ctx, input).await,
        "DeleteLoadBalancer" => load_balancers::delete_load_balancer(ctx, input).await,
        "SetSecurityGroups" => load_balancers::set_security_groups(ctx, input).await,
        "SetSubnets" => load_balancers::set_subnets(ctx, input).await,
        // target_groups.rs
        "CreateTargetGroup" => target_groups::create_target_group(ctx, input).await,
        "DescribeTargetGroups" => target_groups::describe_target_groups(ctx, input).await,
        "ModifyTargetGroup" => target_groups::modify_target_group(ctx, input).await,
        "DeleteTargetGroup" => target_groups::delete_target_group(ctx, input).await,
        // listeners.rs
        "CreateListener" => listeners::create_listener(ctx, input).await,
        "DescribeListeners" => listeners::describe_listeners(ctx, input).await,
        "ModifyListener" => listeners::modify_listener(ctx, input).await,
        "DeleteListener" => listeners::delete_listener(ctx, input).await,
        // rules.rs
        "CreateRule" => rules::create_rule(ctx, input).await,
        "DescribeRules" => rules::describe_rules(ctx, input).await,
        "ModifyRule" => rules::modify_rule(ctx, input).await,
        "DeleteRule" => rules::delete_rule(ctx, input).await,
        "SetRulePriorities" => rules::set_rule_priorities(ctx, input).await,
        // targets.rs
        "RegisterTargets" => targets::register_targets(ctx, input).await,
        "DeregisterTargets" => targets::deregister_targets(ctx, input).await,
        "DescribeTargetHealth" => targets::describe_target_health(ctx, input).await,
        // capacity.rs
        "DescribeCapacityReservation" => capacity::describe_capacity_reservation(ctx, input).await,
        "ModifyCapacityReservation" => capacity::modify_capacity_reservation(ctx, input).await,
        // attributes.rs
        "DescribeLoadBalancerAttributes" => {
            attributes::describe_load_balancer_attributes(ctx, input).await
        }
        "ModifyLoadBalancerAttributes" => {
            attributes::modify_load_balancer_attributes(ctx, input).await
        }
        "DescribeTargetGroupAttributes" => {
            attributes::describe_target_group_attributes(ctx, input).await
        }
        "ModifyTargetGroupAttributes" => {
            attributes::modify_target_group_attributes(ctx, input).await
        }
        "DescribeListenerAttributes" => attributes::describe_listener_attributes(ctx, input).await,
        "ModifyListenerAttributes" => attributes::modify_listener_attributes(ctx, input).await,
        // tags.rs
        "AddTags" => tags::add_tags(ctx, input).await,
        "RemoveTags" => tags::remove_tags(ctx, input).await,
        "DescribeTags" => tags::describe_tags(ctx, input).await,
        _ => Err(crate::not_implemented("elbv2", operation)),
    }
}

pub use load_balancers::canonical_hosted_zone_id;
pub use targets::set_target_health;

#[cfg(test)]
mod tests;
