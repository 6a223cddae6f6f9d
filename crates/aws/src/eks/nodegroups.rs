//! Managed nodegroups: CreateNodegroup, DescribeNodegroup, ListNodegroups, UpdateNodegroupConfig,
//! UpdateNodegroupVersion, DeleteNodegroup, and `set_nodegroup_status` for the EKS layer, which turns a
//! `CREATING` nodegroup into an Auto Scaling group, instances and Nodes.

use serde_json::{Map, Value, json};
use skiff_aws_model::AwsError;
use skiff_store::{Precondition, Store};

use super::clusters::{SUPPORTED_VERSIONS, check_role, load_cluster, subnets};
use super::common::{
    error, in_use, invalid, key_in, load, not_found, now, page_names, public, req_str, str_list,
    tags_of,
};
use super::updates::{new_update, record_update};
use crate::context::RequestContext;
use crate::resources;

fn ng_key(account: &str, region: &str, cluster: &str, ng: &str) -> String {
    key_in(account, region, "nodegroup", &format!("{cluster}/{ng}"))
}

/// Where a deleted nodegroup is kept (status `DELETING`) until the EKS layer has removed its Auto
/// Scaling group, instances and Nodes. A separate key, so ListNodegroups and DeleteCluster no longer
/// count it (as the records' removal has always meant here), while DescribeNodegroup still answers
/// `DELETING` and `aws eks wait nodegroup-deleted` waits for the drain.
fn tomb_key(account: &str, region: &str, cluster: &str, ng: &str) -> String {
    key_in(
        account,
        region,
        "nodegroup-deleting",
        &format!("{cluster}/{ng}"),
    )
}

fn no_nodegroup(name: &str) -> AwsError {
    not_found(format!("No node group found for name: {name}."))
}

pub(crate) async fn load_nodegroup(
    ctx: &RequestContext,
    cluster: &str,
    ng: &str,
) -> Result<(Value, skiff_store::Revision), AwsError> {
    load(
        &*ctx.store,
        &ng_key(&ctx.account_id, &ctx.region, cluster, ng),
    )
    .await?
    .ok_or_else(|| no_nodegroup(ng))
}

/// EKS's scaling rules: min ≥ 0, max ≥ 1, min ≤ desired ≤ max.
fn check_scaling(s: &Value) -> Result<(), AwsError> {
    let min = s["minSize"].as_i64().unwrap_or(0);
    let max = s["maxSize"].as_i64().unwrap_or(1);
    let desired = s["desiredSize"].as_i64().unwrap_or(min);
    if min < 0 {
        return Err(invalid(
            "Minimum capacity must be greater than or equal to 0",
        ));
    }
    if max < 1 {
        return Err(invalid(
            "Maximum capacity must be greater than or equal to 1",
        ));
    }
    if min > max {
        return Err(invalid(format!(
            "Minimum capacity {min} can't be greater than maximum capacity {max}"
        )));
    }
    if desired > max {
        return Err(invalid(format!(
            "Desired capacity {desired} can't be greater than max size {max}"
        )));
    }
    if desired < min {
        return Err(invalid(format!(
            "Minimum capacity {min} can't be greater than desired size {desired}"
        )));
    }
    Ok(())
}

/// Taints: key required (≤ 63), value ≤ 63, effect one of the three, at most 50.
fn check_taints(taints: &Value) -> Result<(), AwsError> {
    let Some(list) = taints.as_array() else {
        return Ok(());
    };
    if list.len() > 50 {
        return Err(invalid(
            "The number of taints must be less than or equal to 50",
        ));
    }
    for t in list {
        let key = t["key"].as_str().unwrap_or_default();
        if key.is_empty() || key.len() > 63 || t["value"].as_str().is_some_and(|v| v.len() > 63) {
            return Err(invalid(format!("Taint {t} is invalid")));
        }
        if !matches!(
            t["effect"].as_str(),
            Some("NO_SCHEDULE" | "NO_EXECUTE" | "PREFER_NO_SCHEDULE")
        ) {
            return Err(invalid(format!("Taint effect for key {key} is invalid")));
        }
    }
    Ok(())
}

/// Labels are Kubernetes labels: key ≤ 63 after an optional prefix, value ≤ 63.
fn check_labels(labels: &Value) -> Result<(), AwsError> {
    let Some(map) = labels.as_object() else {
        return Ok(());
    };
    for (k, v) in map {
        let name = k.rsplit('/').next().unwrap_or(k);
        if name.is_empty() || name.len() > 63 || v.as_str().is_none_or(|s| s.len() > 63) {
            return Err(invalid(format!("Label {k} is invalid")));
        }
    }
    Ok(())
}

#[doc(alias = "CreateNodegroup")]
pub async fn create_nodegroup(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let cluster_name = req_str(&input, "clusterName")?;
    let name = req_str(&input, "nodegroupName")?;
    let (cluster, _) = load_cluster(ctx, cluster_name).await?;
    if cluster["status"] != "ACTIVE" {
        return Err(error(
            "InvalidRequestException",
            format!("Cluster '{cluster_name}' is not in ACTIVE status"),
        ));
    }
    let key = ng_key(&ctx.account_id, &ctx.region, cluster_name, name);
    if load(&*ctx.store, &key).await?.is_some() {
        return Err(in_use(format!(
            "NodeGroup already exists with name {name} and cluster name {cluster_name}"
        )));
    }
    let node_role = req_str(&input, "nodeRole")?;
    check_role(ctx, node_role).await?;
    let subnet_ids = str_list(&input["subnets"]);
    if subnet_ids.is_empty() {
        return Err(invalid("Subnets are required"));
    }
    subnets(ctx, &subnet_ids).await?;
    let scaling = if input["scalingConfig"].is_object() {
        let mut s = input["scalingConfig"].clone();
        let min = s["minSize"].as_i64().unwrap_or(1);
        s["minSize"] = json!(min);
        s["maxSize"] = json!(s["maxSize"].as_i64().unwrap_or(min.max(2)));
        s["desiredSize"] = json!(s["desiredSize"].as_i64().unwrap_or(min));
        s
    } else {
        json!({"minSize": 1, "maxSize": 2, "desiredSize": 2})
    };
    check_scaling(&scaling)?;
    check_taints(&input["taints"])?;
    check_labels(&input["labels"])?;
    let launch_template = &input["launchTemplate"];
    let mut instance_types = str_list(&input["instanceTypes"]);
    if launch_template.is_object() {
        if launch_template["id"].is_null() && launch_template["name"].is_null() {
            return Err(invalid(
                "Either launch template ID or name must be specified",
            ));
        }
        if !input["diskSize"].is_null() {
            return Err(invalid(
                "Disk size must be specified within the launch template.",
            ));
        }
    } else if instance_types.is_empty() {
        instance_types = vec!["t3.medium".to_string()];
    }
    for t in &instance_types {
        if crate::ec2::instance_type(t).is_none() {
            return Err(invalid(format!("Instance type {t} is not valid")));
        }
    }
    let version = input["version"]
        .as_str()
        .or(cluster["version"].as_str())
        .unwrap_or(super::clusters::DEFAULT_VERSION)
        .to_string();
    if !SUPPORTED_VERSIONS.contains(&version.as_str()) {
        return Err(invalid(format!(
            "Requested Nodegroup version {version} is invalid"
        )));
    }
    let ami_type = input["amiType"]
        .as_str()
        .unwrap_or("AL2023_x86_64_STANDARD");
    let now = now();
    let mut ng = json!({
        "nodegroupName": name,
        "nodegroupArn": format!("arn:aws:eks:{}:{}:nodegroup/{cluster_name}/{name}/{}",
            ctx.region, ctx.account_id, uuid::Uuid::new_v4()),
        "clusterName": cluster_name,
        "version": version,
        "releaseVersion": input["releaseVersion"].as_str().map(str::to_string)
            .unwrap_or_else(|| format!("{version}.0-20251120")),
        "createdAt": now,
        "modifiedAt": now,
        "status": "CREATING",
        "capacityType": input["capacityType"].as_str().unwrap_or("ON_DEMAND"),
        "scalingConfig": scaling,
        "subnets": subnet_ids,
        "amiType": ami_type,
        "nodeRole": node_role,
        "labels": if input["labels"].is_object() { input["labels"].clone() } else { json!({}) },
        "resources": {"autoScalingGroups": []},
        "health": {"issues": []},
        "updateConfig": if input["updateConfig"].is_object() { input["updateConfig"].clone() } else { json!({"maxUnavailable": 1}) },
        "tags": tags_of(&input)?,
    });
    if !instance_types.is_empty() {
        ng["instanceTypes"] = json!(instance_types);
    }
    if launch_template.is_object() {
        ng["launchTemplate"] = launch_template.clone();
    } else {
        ng["diskSize"] = json!(input["diskSize"].as_i64().unwrap_or(20));
    }
    for member in ["taints", "remoteAccess", "nodeRepairConfig"] {
        if !input[member].is_null() {
            ng[member] = input[member].clone();
        }
    }
    // A new nodegroup of a name still draining replaces its tombstone; the EKS layer tells the old
    // Auto Scaling group from the new one by the ARN's id.
    let mut ops = vec![resources::put_op(&key, &ng, Precondition::MustNotExist)];
    let tomb = tomb_key(&ctx.account_id, &ctx.region, cluster_name, name);
    if load(&*ctx.store, &tomb).await?.is_some() {
        ops.push(skiff_store::Op::Delete {
            key: tomb,
            precondition: Precondition::None,
        });
    }
    resources::commit(&*ctx.store, ops).await.map_err(|e| {
        e.unwrap_or_else(|| {
            in_use(format!(
                "NodeGroup already exists with name {name} and cluster name {cluster_name}"
            ))
        })
    })?;
    Ok(json!({ "nodegroup": public(&ng) }))
}

#[doc(alias = "DescribeNodegroup")]
pub async fn describe_nodegroup(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    let name = req_str(&input, "nodegroupName")?;
    load_cluster(ctx, cluster).await?;
    let ng = match load_nodegroup(ctx, cluster, name).await {
        Ok((ng, _)) => ng,
        Err(e) => {
            let tomb = tomb_key(&ctx.account_id, &ctx.region, cluster, name);
            match load(&*ctx.store, &tomb).await? {
                Some((ng, _)) => ng,
                None => return Err(e),
            }
        }
    };
    let mut ng = ng;
    follow_group_size(ctx, &mut ng).await;
    Ok(json!({ "nodegroup": public(&ng) }))
}

/// An ACTIVE nodegroup's desired size is its Auto Scaling group's: the Cluster Autoscaler (or
/// anyone) calling `SetDesiredCapacity` on the group changes what `describe-nodegroup` shows, as on
/// EKS. While the nodegroup is created or updated, the record leads and the group follows.
async fn follow_group_size(ctx: &RequestContext, ng: &mut Value) {
    if ng["status"] != "ACTIVE" {
        return;
    }
    let Some(group) = ng["resources"]["autoScalingGroups"][0]["name"].as_str() else {
        return;
    };
    let key = resources::key(ctx, "autoscaling", "group", group);
    if let Ok(Some((g, _))) = resources::get::<Value>(&*ctx.store, &key).await
        && let Some(desired) = g["DesiredCapacity"].as_i64()
    {
        ng["scalingConfig"]["desiredSize"] = json!(desired);
    }
}

#[doc(alias = "ListNodegroups")]
pub async fn list_nodegroups(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    load_cluster(ctx, cluster).await?;
    let prefix = key_in(
        &ctx.account_id,
        &ctx.region,
        "nodegroup",
        &format!("{cluster}/"),
    );
    let all: Vec<Value> = resources::list(&*ctx.store, &prefix).await?;
    let names = all
        .iter()
        .filter_map(|n| n["nodegroupName"].as_str().map(str::to_string))
        .collect();
    page_names(names, &input, "nodegroups")
}

/// Scaling, labels and taints change the record now (an `Update` of type `ConfigUpdate`, in progress
/// until the EKS layer has resized the group and calls `complete_update`).
#[doc(alias = "UpdateNodegroupConfig")]
pub async fn update_nodegroup_config(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    let name = req_str(&input, "nodegroupName")?;
    load_cluster(ctx, cluster).await?;
    let (mut ng, rev) = load_nodegroup(ctx, cluster, name).await?;
    if ng["status"] != "ACTIVE" {
        return Err(in_use(format!(
            "Nodegroup {name} is not in ACTIVE state, current state: {}",
            ng["status"].as_str().unwrap_or_default()
        )));
    }
    // Sizes the call leaves out keep what the group has now (it may have been scaled since).
    follow_group_size(ctx, &mut ng).await;
    let mut params = Vec::new();
    if input["scalingConfig"].is_object() {
        let mut s = ng["scalingConfig"].clone();
        for m in ["minSize", "maxSize", "desiredSize"] {
            if let Some(v) = input["scalingConfig"][m].as_i64() {
                s[m] = json!(v);
                let ty = match m {
                    "minSize" => "MinSize",
                    "maxSize" => "MaxSize",
                    _ => "DesiredSize",
                };
                params.push(json!({"type": ty, "value": v.to_string()}));
            }
        }
        check_scaling(&s)?;
        ng["scalingConfig"] = s;
    }
    if input["labels"].is_object() {
        let mut labels: Map<String, Value> = ng["labels"].as_object().cloned().unwrap_or_default();
        let add = &input["labels"]["addOrUpdateLabels"];
        check_labels(add)?;
        if let Some(a) = add.as_object() {
            labels.extend(a.clone());
        }
        for k in str_list(&input["labels"]["removeLabels"]) {
            labels.remove(&k);
        }
        params.push(json!({"type": "LabelsToAdd", "value": add.to_string()}));
        ng["labels"] = Value::Object(labels);
    }
    if input["taints"].is_object() {
        let add = &input["taints"]["addOrUpdateTaints"];
        check_taints(add)?;
        let remove: Vec<Value> = input["taints"]["removeTaints"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut taints: Vec<Value> = ng["taints"].as_array().cloned().unwrap_or_default();
        taints.retain(|t| {
            !remove
                .iter()
                .any(|r| r["key"] == t["key"] && r["effect"] == t["effect"])
        });
        for a in add.as_array().into_iter().flatten() {
            taints.retain(|t| !(t["key"] == a["key"] && t["effect"] == a["effect"]));
            taints.push(a.clone());
        }
        params.push(json!({"type": "TaintsToAdd", "value": add.to_string()}));
        ng["taints"] = json!(taints);
    }
    if input["updateConfig"].is_object() {
        ng["updateConfig"] = input["updateConfig"].clone();
        params.push(json!({"type": "MaxUnavailable", "value": input["updateConfig"].to_string()}));
    }
    if params.is_empty() {
        return Err(invalid("No changes needed"));
    }
    ng["status"] = json!("UPDATING");
    ng["modifiedAt"] = json!(now());
    let update = new_update("ConfigUpdate", "InProgress", params);
    record_update(
        ctx,
        cluster,
        Some(name),
        &update,
        Some((
            &ng_key(&ctx.account_id, &ctx.region, cluster, name),
            &ng,
            rev,
        )),
    )
    .await?;
    Ok(json!({ "update": update }))
}

#[doc(alias = "UpdateNodegroupVersion")]
pub async fn update_nodegroup_version(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let cluster_name = req_str(&input, "clusterName")?;
    let name = req_str(&input, "nodegroupName")?;
    let (cluster, _) = load_cluster(ctx, cluster_name).await?;
    let (mut ng, rev) = load_nodegroup(ctx, cluster_name, name).await?;
    if ng["status"] != "ACTIVE" {
        return Err(in_use(format!(
            "Nodegroup {name} is not in ACTIVE state, current state: {}",
            ng["status"].as_str().unwrap_or_default()
        )));
    }
    let version = input["version"]
        .as_str()
        .or(cluster["version"].as_str())
        .unwrap_or_default()
        .to_string();
    if version.as_str() > cluster["version"].as_str().unwrap_or_default() {
        return Err(invalid(format!(
            "Requested Nodegroup version {version} is not compatible with cluster version {}",
            cluster["version"].as_str().unwrap_or_default()
        )));
    }
    let launch_template = &input["launchTemplate"];
    let mut params = Vec::new();
    if launch_template.is_object() {
        // EKS: a launch template version change is only for nodegroups built from one.
        if !ng["launchTemplate"].is_object() {
            return Err(invalid(
                "You cannot specify a launch template because the nodegroup was not created with a launch template.",
            ));
        }
        if launch_template["id"].is_null() && launch_template["name"].is_null() {
            return Err(invalid(
                "Either launch template ID or name must be specified",
            ));
        }
        let same =
            |m: &str| launch_template[m].is_null() || launch_template[m] == ng["launchTemplate"][m];
        if !same("id") || !same("name") {
            return Err(invalid(
                "You cannot change the launch template of a nodegroup; only its version.",
            ));
        }
        if let Some(n) = ng["launchTemplate"]["name"].as_str() {
            params.push(json!({"type": "LaunchTemplateName", "value": n}));
        }
        let lt_version = launch_template["version"]
            .as_str()
            .unwrap_or("$Default")
            .to_string();
        params.push(json!({"type": "LaunchTemplateVersion", "value": lt_version}));
        let mut target = ng["launchTemplate"].clone();
        target["version"] = json!(lt_version);
        ng["_targetLaunchTemplate"] = target;
    }
    // Without a version or a launch template the nodegroup moves to the cluster's version (and the
    // latest release), which is what `update-nodegroup-version` with no options means.
    let version_given = input["version"].is_string() || !launch_template.is_object();
    let release = input["releaseVersion"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{version}.0-20251120"));
    if version_given {
        params.push(json!({"type": "Version", "value": version}));
        params.push(json!({"type": "ReleaseVersion", "value": release}));
        ng["_targetVersion"] = json!(version);
        ng["_targetReleaseVersion"] = json!(release);
    }
    let force = input["force"].as_bool().unwrap_or(false);
    if force {
        params.push(json!({"type": "Force", "value": "true"}));
    }
    ng["status"] = json!("UPDATING");
    ng["_force"] = json!(force);
    ng["modifiedAt"] = json!(now());
    let update = new_update("VersionUpdate", "InProgress", params);
    ng["_targetUpdateId"] = update["id"].clone();
    record_update(
        ctx,
        cluster_name,
        Some(name),
        &update,
        Some((
            &ng_key(&ctx.account_id, &ctx.region, cluster_name, name),
            &ng,
            rev,
        )),
    )
    .await?;
    Ok(json!({ "update": update }))
}

/// Moves the record to its tombstone (`DELETING`) and answers `DELETING`; the EKS layer sees the
/// delete, drains the group and then forgets the tombstone ([`forget_deleted_nodegroup`]).
#[doc(alias = "DeleteNodegroup")]
pub async fn delete_nodegroup(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    let name = req_str(&input, "nodegroupName")?;
    load_cluster(ctx, cluster).await?;
    let (mut ng, rev) = load_nodegroup(ctx, cluster, name).await?;
    ng["status"] = json!("DELETING");
    ng["modifiedAt"] = json!(now());
    resources::commit(
        &*ctx.store,
        vec![
            skiff_store::Op::Delete {
                key: ng_key(&ctx.account_id, &ctx.region, cluster, name),
                precondition: Precondition::ModRevision(rev),
            },
            resources::put_op(
                &tomb_key(&ctx.account_id, &ctx.region, cluster, name),
                &ng,
                Precondition::None,
            ),
        ],
    )
    .await
    .map_err(|e| e.unwrap_or_else(|| in_use("The nodegroup was modified concurrently; retry")))?;
    Ok(json!({ "nodegroup": public(&ng) }))
}

// ---- domain functions for the EKS layer --------------------------------------------------------

/// Every nodegroup record of a cluster (public members), in name order.
pub async fn list_nodegroup_records(
    store: &dyn Store,
    account: &str,
    region: &str,
    cluster: &str,
) -> Result<Vec<Value>, AwsError> {
    let prefix = key_in(account, region, "nodegroup", &format!("{cluster}/"));
    let all: Vec<Value> = resources::list(store, &prefix).await?;
    Ok(all.iter().map(public).collect())
}

/// One nodegroup record (all members, the ARN included), or None.
pub async fn get_nodegroup_record(
    store: &dyn Store,
    account: &str,
    region: &str,
    cluster: &str,
    nodegroup: &str,
) -> Result<Option<Value>, AwsError> {
    Ok(load(store, &ng_key(account, region, cluster, nodegroup))
        .await?
        .map(|(v, _)| public(&v)))
}

/// Whether a deleted nodegroup is still draining (its tombstone exists).
pub async fn deleted_nodegroup_pending(
    store: &dyn Store,
    account: &str,
    region: &str,
    cluster: &str,
    nodegroup: &str,
) -> Result<bool, AwsError> {
    Ok(load(store, &tomb_key(account, region, cluster, nodegroup))
        .await?
        .is_some())
}

/// The deleted nodegroup is drained (group, instances and Nodes gone): DescribeNodegroup now
/// answers `ResourceNotFoundException`. Absent tombstones are a no-op.
pub async fn forget_deleted_nodegroup(
    store: &dyn Store,
    account: &str,
    region: &str,
    cluster: &str,
    nodegroup: &str,
) -> Result<(), AwsError> {
    let key = tomb_key(account, region, cluster, nodegroup);
    if load(store, &key).await?.is_none() {
        return Ok(());
    }
    resources::commit(
        store,
        vec![skiff_store::Op::Delete {
            key,
            precondition: Precondition::None,
        }],
    )
    .await
    .map(|_| ())
    .map_err(|e| e.unwrap_or_else(|| in_use("The nodegroup was modified concurrently; retry")))
}

/// (account, region, cluster, nodegroup) of a nodegroup record key, or None for any other key.
pub fn parse_nodegroup_key(key: &str) -> Option<(&str, &str, &str, &str)> {
    parse_ng_key(key, "nodegroup")
}

/// (account, region, cluster, nodegroup) of a deleted nodegroup's tombstone key.
pub fn parse_deleted_nodegroup_key(key: &str) -> Option<(&str, &str, &str, &str)> {
    parse_ng_key(key, "nodegroup-deleting")
}

fn parse_ng_key<'a>(key: &'a str, kind: &str) -> Option<(&'a str, &'a str, &'a str, &'a str)> {
    let rest = key.strip_prefix("/aws/")?;
    let mut parts = rest.splitn(6, '/');
    let (account, region, service, k, cluster, ng) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    (service == "eks" && k == kind && !cluster.is_empty() && !ng.is_empty() && !ng.contains('/'))
        .then_some((account, region, cluster, ng))
}

/// Ids of the nodegroup's updates still `InProgress` (UpdateNodegroupConfig / Version), which the EKS
/// layer completes with `complete_update` once the group matches.
pub async fn pending_nodegroup_updates(
    store: &dyn Store,
    account: &str,
    region: &str,
    cluster: &str,
    nodegroup: &str,
) -> Result<Vec<String>, AwsError> {
    let prefix = key_in(account, region, "update", &format!("{cluster}/"));
    let all: Vec<Value> = resources::list(store, &prefix).await?;
    Ok(all
        .iter()
        .filter(|u| u["_nodegroup"] == nodegroup && u["status"] == "InProgress")
        .filter_map(|u| u["id"].as_str().map(str::to_string))
        .collect())
}

/// Record a nodegroup's status (`ACTIVE`, `CREATE_FAILED`, `DEGRADED` …) and the Auto Scaling groups
/// that back it (`resources.autoScalingGroups[].name`). An `UPDATING` nodegroup moved to `ACTIVE` takes
/// its requested version.
pub async fn set_nodegroup_status(
    store: &dyn Store,
    account: &str,
    region: &str,
    cluster: &str,
    nodegroup: &str,
    status: &str,
    auto_scaling_groups: &[String],
) -> Result<(), AwsError> {
    let key = ng_key(account, region, cluster, nodegroup);
    for _ in 0..5 {
        let (mut ng, rev) = load(store, &key)
            .await?
            .ok_or_else(|| no_nodegroup(nodegroup))?;
        if status == "ACTIVE" && ng["status"] == "UPDATING" {
            if let Some(v) = ng.get("_targetVersion").cloned() {
                ng["version"] = v;
                ng["releaseVersion"] = ng["_targetReleaseVersion"].clone();
            }
            if let Some(lt) = ng.get("_targetLaunchTemplate").cloned() {
                ng["launchTemplate"] = lt;
            }
            clear_version_target(&mut ng);
        }
        ng["status"] = json!(status);
        ng["modifiedAt"] = json!(now());
        if !auto_scaling_groups.is_empty() {
            ng["resources"]["autoScalingGroups"] = json!(
                auto_scaling_groups
                    .iter()
                    .map(|n| json!({"name": n}))
                    .collect::<Vec<_>>()
            );
        }
        match resources::commit(
            store,
            vec![resources::put_op(&key, &ng, Precondition::ModRevision(rev))],
        )
        .await
        {
            Ok(_) => return Ok(()),
            Err(Some(e)) => return Err(e),
            Err(None) => continue,
        }
    }
    Err(in_use("The nodegroup was modified concurrently; retry"))
}

fn clear_version_target(ng: &mut Value) {
    if let Some(o) = ng.as_object_mut() {
        for k in [
            "_targetVersion",
            "_targetReleaseVersion",
            "_targetLaunchTemplate",
            "_targetUpdateId",
            "_force",
        ] {
            o.remove(k);
        }
    }
}

/// What an `UpdateNodegroupVersion` in progress asks the nodes to become.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionTarget {
    /// The update's id (DescribeUpdate).
    pub update_id: String,
    /// Kubernetes version of the new nodes (the current one for a launch-template-only update).
    pub version: String,
    pub release_version: String,
    /// The user's launch template (`id`/`name`, `version`) the new nodes come from, when it changes.
    pub launch_template: Option<Value>,
    /// `--force`: PodDisruptionBudgets do not stop the drain.
    pub force: bool,
}

/// The version update a nodegroup is going through, if any (the EKS layer rolls its nodes).
pub async fn nodegroup_version_target(
    store: &dyn Store,
    account: &str,
    region: &str,
    cluster: &str,
    nodegroup: &str,
) -> Result<Option<VersionTarget>, AwsError> {
    let Some((ng, _)) = load(store, &ng_key(account, region, cluster, nodegroup)).await? else {
        return Ok(None);
    };
    let Some(update_id) = ng["_targetUpdateId"].as_str() else {
        return Ok(None);
    };
    if ng["status"] != "UPDATING" {
        return Ok(None);
    }
    let s = |k: &str, fallback: &str| {
        ng[k]
            .as_str()
            .or(ng[fallback].as_str())
            .unwrap_or_default()
            .to_string()
    };
    Ok(Some(VersionTarget {
        update_id: update_id.to_string(),
        version: s("_targetVersion", "version"),
        release_version: s("_targetReleaseVersion", "releaseVersion"),
        launch_template: ng
            .get("_targetLaunchTemplate")
            .filter(|v| v.is_object())
            .cloned(),
        force: ng["_force"].as_bool().unwrap_or(false),
    }))
}

/// An update's `errors[]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateFailure {
    /// `PodEvictionFailure`, `NodeCreationFailure`, …
    pub error_code: String,
    pub message: String,
    /// Node names, instance ids …
    pub resource_ids: Vec<String>,
}

/// A version update that could not finish (EKS: `PodEvictionFailure` when a PodDisruptionBudget kept
/// pods on an old node): the update becomes `Failed` with the error, and the nodegroup `ACTIVE` at
/// its old version, in one transaction.
pub async fn fail_nodegroup_update(
    store: &dyn Store,
    account: &str,
    region: &str,
    cluster: &str,
    nodegroup: &str,
    update_id: &str,
    failure: &UpdateFailure,
) -> Result<(), AwsError> {
    let ukey = key_in(account, region, "update", &format!("{cluster}/{update_id}"));
    let nkey = ng_key(account, region, cluster, nodegroup);
    for _ in 0..5 {
        let (mut update, urev) = load(store, &ukey)
            .await?
            .ok_or_else(|| not_found(format!("No update found for ID: {update_id}")))?;
        let (mut ng, nrev) = load(store, &nkey)
            .await?
            .ok_or_else(|| no_nodegroup(nodegroup))?;
        update["status"] = json!("Failed");
        update["errors"] = json!([{"errorCode": failure.error_code,
            "errorMessage": failure.message, "resourceIds": failure.resource_ids}]);
        ng["status"] = json!("ACTIVE");
        ng["modifiedAt"] = json!(now());
        clear_version_target(&mut ng);
        match resources::commit(
            store,
            vec![
                resources::put_op(&ukey, &update, Precondition::ModRevision(urev)),
                resources::put_op(&nkey, &ng, Precondition::ModRevision(nrev)),
            ],
        )
        .await
        {
            Ok(_) => return Ok(()),
            Err(Some(e)) => return Err(e),
            Err(None) => continue,
        }
    }
    Err(in_use("The nodegroup was modified concurrently; retry"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_rules_match_eks() {
        assert!(check_scaling(&json!({"minSize": 1, "maxSize": 3, "desiredSize": 2})).is_ok());
        let e = check_scaling(&json!({"minSize": 1, "maxSize": 3, "desiredSize": 5})).unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");
        assert!(e.message.contains("Desired capacity 5"));
        assert!(check_scaling(&json!({"minSize": 4, "maxSize": 3, "desiredSize": 3})).is_err());
        assert!(check_scaling(&json!({"minSize": 0, "maxSize": 0, "desiredSize": 0})).is_err());
    }

    #[test]
    fn nodegroup_keys_parse() {
        assert_eq!(
            parse_nodegroup_key("/aws/0/us-east-1/eks/nodegroup/prod/ng"),
            Some(("0", "us-east-1", "prod", "ng"))
        );
        assert_eq!(
            parse_deleted_nodegroup_key("/aws/0/us-east-1/eks/nodegroup-deleting/prod/ng"),
            Some(("0", "us-east-1", "prod", "ng"))
        );
        assert_eq!(
            parse_nodegroup_key("/aws/0/us-east-1/eks/nodegroup-deleting/prod/ng"),
            None
        );
        assert_eq!(
            parse_nodegroup_key("/aws/0/us-east-1/eks/cluster/prod"),
            None
        );
        assert_eq!(
            parse_nodegroup_key("/aws/0/us-east-1/eks/nodegroup/prod/"),
            None
        );
    }

    #[test]
    fn taint_effects_are_checked() {
        assert!(
            check_taints(&json!([{"key": "a", "value": "b", "effect": "NO_SCHEDULE"}])).is_ok()
        );
        assert!(check_taints(&json!([{"key": "a", "effect": "NoSchedule"}])).is_err());
        assert!(check_taints(&json!([{"effect": "NO_EXECUTE"}])).is_err());
    }
}
