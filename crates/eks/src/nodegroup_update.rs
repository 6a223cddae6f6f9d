//! UpdateNodegroupVersion made real: the rolling update EKS runs on a managed nodegroup's nodes.
//!
//! EKS's phases (docs "Understand each phase of node updates"): *setup* makes a new launch template
//! version (the new AMI, or the user's new launch template version) and points the Auto Scaling
//! group at it; *scale up* adds up to `updateConfig.maxUnavailable` (or `maxUnavailablePercentage`
//! of the desired size, at least one) new instances and waits for their Nodes; *upgrade* cordons and
//! drains that many old nodes (PodDisruptionBudgets honoured unless `force`) and terminates them,
//! shrinking the group back; repeat until no old instance is left; *scale down* puts the group back
//! at the nodegroup's scaling config, and the nodegroup turns `ACTIVE` at the new `version` /
//! `releaseVersion`, its update `Successful`.
//!
//! A drain that outlasts the drain timeout without `force` fails the update as EKS does:
//! `PodEvictionFailure` on the update, the nodegroup `ACTIVE` at its old version, the old node
//! uncordoned, the group back at its desired size.
//!
//! Each call of [`roll`] takes one step and says whether to look again; it never blocks on a drain
//! (drains run in the background, [`crate::drain::DrainJobs`]), so the nodegroup loop keeps serving
//! other nodegroups. An instance is "new" when it was launched from the update's launch template
//! version (AutoScaling records each member's launch template spec).

use serde_json::{Value, json};
use skiff_aws::context::RequestContext;
use skiff_aws::eks::nodegroups::{self as records, UpdateFailure, VersionTarget};
use skiff_aws_model::AwsError;

use crate::nodegroups::{
    Drained, NodegroupError, NodegroupKey, NodegroupReconciler, Progress, arn_uuid,
    launch_template_data, member_ids, running_instances,
};

/// What [`roll`] left.
#[derive(Debug, PartialEq, Eq)]
pub enum RollStep {
    /// Still rolling (or the update just failed): look again as `Progress` says.
    Step(Progress),
    /// Every instance is new: the caller finishes as for any update (group back at the scaling
    /// config, `ACTIVE`, update `Successful`).
    Finished,
}

/// How many instances the update replaces at a time: `maxUnavailable`, or
/// `maxUnavailablePercentage` of the desired size rounded up, at least one.
pub fn batch_size(update_config: &Value, desired: i64) -> i64 {
    if let Some(n) = update_config["maxUnavailable"].as_i64() {
        return n.max(1);
    }
    if let Some(p) = update_config["maxUnavailablePercentage"].as_i64() {
        return ((desired * p + 99) / 100).max(1);
    }
    1
}

/// The `VersionDescription` marking the launch template version an update made (so a restart or a
/// retried step finds it instead of making another).
fn version_description(update_id: &str) -> String {
    format!("eks-update {update_id}")
}

/// The launch template version of the update (created on first call). Returns (id, version).
async fn ensure_update_template(
    ctx: &RequestContext,
    ng: &Value,
    target: &VersionTarget,
) -> Result<(String, String), AwsError> {
    let name = format!("eks-{}", arn_uuid(ng).unwrap_or_default());
    let versions = skiff_aws::ec2::dispatch(
        ctx,
        "DescribeLaunchTemplateVersions",
        json!({"LaunchTemplateName": name}),
    )
    .await?;
    let mark = version_description(&target.update_id);
    let all = versions["LaunchTemplateVersions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if let Some(v) = all
        .iter()
        .find(|v| v["VersionDescription"] == mark.as_str())
    {
        return Ok((
            v["LaunchTemplateId"].as_str().unwrap_or_default().into(),
            v["VersionNumber"].as_i64().unwrap_or(1).to_string(),
        ));
    }
    let user = target
        .launch_template
        .as_ref()
        .or(ng.get("launchTemplate").filter(|v| v.is_object()))
        .and_then(Value::as_object);
    let data = launch_template_data(ctx, ng, &name, user, &target.version).await?;
    let out = skiff_aws::ec2::dispatch(
        ctx,
        "CreateLaunchTemplateVersion",
        json!({"LaunchTemplateName": name, "LaunchTemplateData": data,
               "VersionDescription": mark}),
    )
    .await?;
    let v = &out["LaunchTemplateVersion"];
    Ok((
        v["LaunchTemplateId"].as_str().unwrap_or_default().into(),
        v["VersionNumber"].as_i64().unwrap_or(1).to_string(),
    ))
}

/// The launch template spec the group launches from (plain or in a mixed instances policy).
fn group_spec(group: &Value) -> &Value {
    if group["LaunchTemplate"].is_object() {
        &group["LaunchTemplate"]
    } else {
        &group["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
    }
}

fn spec_version(spec: &Value) -> String {
    match &spec["Version"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// Points the group at launch template `(id, version)`, keeping a mixed instances policy's
/// overrides.
async fn point_group_at(
    ctx: &RequestContext,
    asg: &str,
    group: &Value,
    lt_id: &str,
    version: &str,
) -> Result<(), AwsError> {
    let spec = json!({"LaunchTemplateId": lt_id, "Version": version});
    let mut input = json!({"AutoScalingGroupName": asg});
    if group["MixedInstancesPolicy"].is_object() {
        let mut policy = group["MixedInstancesPolicy"].clone();
        policy["LaunchTemplate"]["LaunchTemplateSpecification"] = spec;
        input["MixedInstancesPolicy"] = policy;
    } else {
        input["LaunchTemplate"] = spec;
    }
    skiff_aws::autoscaling::dispatch(ctx, "UpdateAutoScalingGroup", input).await?;
    Ok(())
}

/// One step of the rolling update of `key` toward `target`; `group` is its Auto Scaling group.
pub async fn roll(
    rec: &NodegroupReconciler,
    ctx: &RequestContext,
    key: &NodegroupKey,
    ng: &Value,
    target: &VersionTarget,
    group: &Value,
) -> Result<RollStep, NodegroupError> {
    let asg = group["AutoScalingGroupName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (lt_id, new_version) = ensure_update_template(ctx, ng, target).await?;
    if group_spec(group)["LaunchTemplateId"].as_str() != Some(lt_id.as_str())
        || spec_version(group_spec(group)) != new_version
    {
        point_group_at(ctx, &asg, group, &lt_id, &new_version).await?;
        return Ok(RollStep::Step(Progress::Waiting(
            "pointing the group at the new launch template version",
        )));
    }
    let members: Vec<&Value> = group["Instances"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let old: Vec<String> = members
        .iter()
        .filter(|m| spec_version(&m["LaunchTemplate"]) != new_version)
        .filter_map(|m| m["InstanceId"].as_str().map(str::to_string))
        .collect();
    let scaling = &ng["scalingConfig"];
    let desired = scaling["desiredSize"].as_i64().unwrap_or(0);
    if old.is_empty() {
        return Ok(RollStep::Finished);
    }
    let batch = batch_size(&ng["updateConfig"], desired).min(old.len() as i64);
    let group_desired = group["DesiredCapacity"].as_i64().unwrap_or(0);
    let group_max = group["MaxSize"].as_i64().unwrap_or(0);
    // Scale up: the group carries `batch` instances above the nodegroup's size while rolling.
    if group_desired < desired + batch {
        skiff_aws::autoscaling::dispatch(
            ctx,
            "UpdateAutoScalingGroup",
            json!({"AutoScalingGroupName": asg, "DesiredCapacity": desired + batch,
                   "MaxSize": group_max.max(desired + batch)}),
        )
        .await?;
        return Ok(RollStep::Step(Progress::Waiting("launching new instances")));
    }
    // The new instances' Nodes, registered at the target version, before any old node goes.
    let instances = running_instances(ctx, &asg).await?;
    let mut ng_new = ng.clone();
    ng_new["version"] = json!(target.version);
    ng_new["releaseVersion"] = json!(target.release_version);
    let Some(registered) = rec
        .sync_nodes(key, &ng_new, &instances, Some((&lt_id, &new_version)))
        .await?
    else {
        return Ok(RollStep::Step(Progress::Waiting(
            "the cluster's API is not running",
        )));
    };
    let member_count = member_ids(group).len();
    if instances.len() != member_count || registered != instances.len() {
        return Ok(RollStep::Step(Progress::Waiting(
            "new instances or their Nodes missing",
        )));
    }
    // Upgrade: drain `batch` old nodes, then terminate them (the group shrinks back).
    let victims: Vec<(String, String)> = old
        .iter()
        .take(batch as usize)
        .filter_map(|id| {
            let inst = instances.iter().find(|i| i["InstanceId"] == id.as_str())?;
            Some((id.clone(), crate::node_object::node_name(inst)?.to_string()))
        })
        .collect();
    let nodes: Vec<String> = victims.iter().map(|v| v.1.clone()).collect();
    match rec.drain_nodes(key, &nodes, target.force).await {
        Drained::Running => {
            return Ok(RollStep::Step(Progress::Waiting("draining old nodes")));
        }
        Drained::Done(failed) if !failed.is_empty() => {
            let names: Vec<String> = failed.iter().map(|f| f.0.clone()).collect();
            tracing::warn!(cluster = %key.cluster, nodegroup = %key.nodegroup, nodes = ?names, "version update failed: pods could not be evicted");
            if let Some(admin) = rec
                .planes
                .client(&key.plane_name(), crate::nodegroups::NODE_MANAGER_USER)
                .await
            {
                for n in &names {
                    let _ = crate::drain::uncordon(&*admin, n).await;
                }
            }
            skiff_aws::autoscaling::dispatch(
                ctx,
                "UpdateAutoScalingGroup",
                json!({"AutoScalingGroupName": asg, "DesiredCapacity": desired,
                       "MaxSize": scaling["maxSize"].as_i64().unwrap_or(group_max)}),
            )
            .await?;
            records::fail_nodegroup_update(
                &*rec.store,
                &key.account,
                &key.region,
                &key.cluster,
                &key.nodegroup,
                &target.update_id,
                &UpdateFailure {
                    error_code: "PodEvictionFailure".into(),
                    message: format!(
                        "Reached max retries while trying to evict pods from nodes in node group {}",
                        key.nodegroup
                    ),
                    resource_ids: names,
                },
            )
            .await?;
            return Ok(RollStep::Step(Progress::Done));
        }
        Drained::Done(_) | Drained::NoCluster => {}
    }
    for (id, _) in &victims {
        match skiff_aws::autoscaling::dispatch(
            ctx,
            "TerminateInstanceInAutoScalingGroup",
            json!({"InstanceId": id, "ShouldDecrementDesiredCapacity": true}),
        )
        .await
        {
            Ok(_) => {}
            // Gone already (terminated through EC2 meanwhile).
            Err(e) if e.message.contains("Instance Id not found") => {}
            Err(e) => return Err(e.into()),
        }
    }
    tracing::info!(cluster = %key.cluster, nodegroup = %key.nodegroup, replaced = victims.len(), left = old.len() - victims.len(), "rolling update step");
    Ok(RollStep::Step(Progress::Waiting("replacing old instances")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_follows_update_config() {
        assert_eq!(batch_size(&json!({}), 3), 1);
        assert_eq!(batch_size(&json!({"maxUnavailable": 2}), 3), 2);
        assert_eq!(batch_size(&json!({"maxUnavailable": 0}), 3), 1);
        assert_eq!(batch_size(&json!({"maxUnavailablePercentage": 50}), 3), 2);
        assert_eq!(batch_size(&json!({"maxUnavailablePercentage": 10}), 3), 1);
        assert_eq!(batch_size(&json!({"maxUnavailablePercentage": 100}), 4), 4);
    }

    #[test]
    fn group_spec_reads_both_shapes() {
        let plain = json!({"LaunchTemplate": {"LaunchTemplateId": "lt-1", "Version": "3"}});
        assert_eq!(spec_version(group_spec(&plain)), "3");
        let mixed = json!({"MixedInstancesPolicy": {"LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateId": "lt-1", "Version": 2}}}});
        assert_eq!(spec_version(group_spec(&mixed)), "2");
        assert_eq!(spec_version(&json!({})), "");
    }
}
