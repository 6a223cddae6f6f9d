//! Mount targets: CreateMountTarget, DescribeMountTargets, DeleteMountTarget,
//! DescribeMountTargetSecurityGroups, ModifyMountTargetSecurityGroups. Each mount target owns an EC2
//! network interface in its subnet (made through the EC2 operation table, so its IP, security groups
//! and errors are EC2's own), as on AWS.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::{Op, Precondition};

use super::common::{
    EfsError, EfsResult, MountTarget, load_fs, marker_of, mount_targets_of, mt_key, offset_of,
    opt_str, page_size, req_str,
};
use crate::context::RequestContext;
use crate::resources;

pub fn describe(ctx: &RequestContext, mt: &MountTarget) -> Value {
    json!({
        "OwnerId": ctx.account_id,
        "MountTargetId": mt.id,
        "FileSystemId": mt.file_system_id,
        "SubnetId": mt.subnet_id,
        "LifeCycleState": "available",
        "IpAddress": mt.ip,
        "NetworkInterfaceId": mt.eni_id,
        "AvailabilityZoneId": mt.az_id,
        "AvailabilityZoneName": mt.az,
        "VpcId": mt.vpc_id,
    })
}

/// One mount target per zone per file system: a guard key written with the mount target.
fn zone_guard_key(ctx: &RequestContext, fs_id: &str, az: &str) -> String {
    resources::key(ctx, "efs", "mount-target-zone", &format!("{fs_id}.{az}"))
}

/// An EC2 error met while making or changing the ENI, in EFS's terms.
fn from_ec2(e: AwsError) -> EfsError {
    match e.code.as_str() {
        "InvalidSubnetID.NotFound" => EfsError::SubnetNotFound(e.message),
        "InvalidGroup.NotFound" | "InvalidGroupId.Malformed" => {
            EfsError::SecurityGroupNotFound(e.message)
        }
        "InvalidIPAddress.InUse" => EfsError::IpAddressInUse(e.message),
        "InsufficientFreeAddressesInSubnet" => EfsError::NoFreeAddressesInSubnet(e.message),
        "InvalidParameterValue" | "InvalidParameterCombination" => EfsError::BadRequest(e.message),
        _ => EfsError::Internal(e),
    }
}

async fn load_mt(
    ctx: &RequestContext,
    id: &str,
) -> EfsResult<(MountTarget, skiff_store::Revision)> {
    resources::get(&*ctx.store, &mt_key(ctx, id))
        .await?
        .ok_or_else(|| EfsError::MountTargetNotFound(id.to_string()))
}

fn security_groups_of(input: &Value) -> EfsResult<Vec<String>> {
    let groups: Vec<String> = input
        .get("SecurityGroups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    if groups.len() > 5 {
        return Err(EfsError::BadRequest(
            "A mount target can have at most 5 security groups.".into(),
        ));
    }
    Ok(groups)
}

#[doc(alias = "CreateMountTarget")]
pub async fn create_mount_target(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let fs_id = req_str(&input, "FileSystemId")?;
    let subnet_id = req_str(&input, "SubnetId")?;
    let (fs, _) = load_fs(ctx, fs_id).await?;
    let subnets = crate::ec2::dispatch(ctx, "DescribeSubnets", json!({"SubnetIds": [subnet_id]}))
        .await
        .map_err(from_ec2)?;
    let subnet = &subnets["Subnets"][0];
    let (vpc_id, az, az_id) = match (
        subnet["VpcId"].as_str(),
        subnet["AvailabilityZone"].as_str(),
        subnet["AvailabilityZoneId"].as_str(),
    ) {
        (Some(v), Some(a), Some(i)) => (v.to_string(), a.to_string(), i.to_string()),
        _ => {
            return Err(EfsError::SubnetNotFound(format!(
                "The subnet ID '{subnet_id}' does not exist"
            )));
        }
    };
    if let Some((zone, _)) = &fs.availability_zone
        && *zone != az
    {
        return Err(EfsError::BadRequest(format!(
            "One Zone file system '{fs_id}' lives in {zone}; subnet '{subnet_id}' is in {az}."
        )));
    }
    let existing = mount_targets_of(ctx, fs_id).await?;
    if let Some(other) = existing.iter().find(|m| m.vpc_id != vpc_id) {
        return Err(EfsError::MountTargetConflict(format!(
            "All mount targets of file system '{fs_id}' must be in one VPC; '{}' is in {}.",
            other.id, other.vpc_id
        )));
    }
    if existing.iter().any(|m| m.az == az) {
        return Err(EfsError::MountTargetConflict(
            "mount target already exists in this AZ".into(),
        ));
    }
    let mut groups = security_groups_of(&input)?;
    if groups.is_empty() {
        // As on AWS: the VPC's default security group.
        let sgs = crate::ec2::dispatch(ctx, "DescribeSecurityGroups",
            json!({"Filters": [{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]}),
        )
        .await
        .map_err(from_ec2)?;
        groups.extend(
            sgs["SecurityGroups"][0]["GroupId"]
                .as_str()
                .map(str::to_string),
        );
    }
    let id = resources::new_id("fsmt");
    let mut eni_input = json!({
        "SubnetId": subnet_id,
        "Groups": groups,
        "Description": format!("EFS mount target for {fs_id} ({id})"),
    });
    if let Some(ip) = opt_str(&input, "IpAddress") {
        eni_input["PrivateIpAddress"] = json!(ip);
    }
    let eni = crate::ec2::dispatch(ctx, "CreateNetworkInterface", eni_input)
        .await
        .map_err(from_ec2)?;
    let eni = &eni["NetworkInterface"];
    let mt = MountTarget {
        id: id.clone(),
        file_system_id: fs_id.to_string(),
        subnet_id: subnet_id.to_string(),
        vpc_id,
        ip: eni["PrivateIpAddress"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        eni_id: eni["NetworkInterfaceId"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        az: az.clone(),
        az_id,
        security_groups: groups,
    };
    let ops = vec![
        resources::put_op(&mt_key(ctx, &id), &mt, Precondition::MustNotExist),
        resources::put_op(
            &zone_guard_key(ctx, fs_id, &az),
            &id,
            Precondition::MustNotExist,
        ),
    ];
    match resources::commit(&*ctx.store, ops).await {
        Ok(_) => Ok(describe(ctx, &mt)),
        Err(failed) => {
            // Lost a race for the zone: give the ENI back.
            let _ = crate::ec2::dispatch(
                ctx,
                "DeleteNetworkInterface",
                json!({"NetworkInterfaceId": mt.eni_id}),
            )
            .await;
            Err(match failed {
                None => {
                    EfsError::MountTargetConflict("mount target already exists in this AZ".into())
                }
                Some(e) => e.into(),
            })
        }
    }
}

#[doc(alias = "DescribeMountTargets")]
pub async fn describe_mount_targets(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let by_fs = opt_str(&input, "FileSystemId");
    let by_id = opt_str(&input, "MountTargetId");
    let by_ap = opt_str(&input, "AccessPointId");
    let given = [by_fs, by_id, by_ap].iter().filter(|x| x.is_some()).count();
    if given != 1 {
        return Err(EfsError::BadRequest(
            "Exactly one of FileSystemId, MountTargetId or AccessPointId must be given.".into(),
        ));
    }
    let mut matching = match (by_fs, by_id, by_ap) {
        (Some(fs), _, _) => {
            load_fs(ctx, fs).await?;
            mount_targets_of(ctx, fs).await?
        }
        (_, Some(id), _) => vec![load_mt(ctx, id).await?.0],
        (_, _, Some(ap)) => {
            let (ap, _) = super::access_points::load_ap(ctx, ap).await?;
            mount_targets_of(ctx, &ap.file_system_id).await?
        }
        _ => Vec::new(),
    };
    matching.sort_by(|a, b| a.id.cmp(&b.id));
    let max = page_size(&input, "MaxItems", 10)?;
    let marker = opt_str(&input, "Marker");
    let start = offset_of(marker)?;
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(max)
        .map(|m| describe(ctx, m))
        .collect();
    let mut out = json!({ "MountTargets": page });
    if let Some(m) = marker {
        out["Marker"] = json!(m);
    }
    if start + max < matching.len() {
        out["NextMarker"] = json!(marker_of(start + max));
    }
    Ok(out)
}

#[doc(alias = "DeleteMountTarget")]
pub async fn delete_mount_target(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let id = req_str(&input, "MountTargetId")?;
    let (mt, rev) = load_mt(ctx, id).await?;
    let ops = vec![
        Op::Delete {
            key: mt_key(ctx, id),
            precondition: Precondition::ModRevision(rev),
        },
        Op::Delete {
            key: zone_guard_key(ctx, &mt.file_system_id, &mt.az),
            precondition: Precondition::None,
        },
    ];
    match resources::commit(&*ctx.store, ops).await {
        Ok(_) => {}
        Err(None) => return Err(EfsError::MountTargetNotFound(id.to_string())),
        Err(Some(e)) => return Err(e.into()),
    }
    crate::ec2::dispatch(
        ctx,
        "DeleteNetworkInterface",
        json!({"NetworkInterfaceId": mt.eni_id}),
    )
    .await
    .or_else(|e| match e.code.as_str() {
        // Someone deleted the ENI by hand: the mount target is gone either way.
        "InvalidNetworkInterfaceID.NotFound" => Ok(Value::Null),
        _ => Err(EfsError::Internal(e)),
    })?;
    Ok(json!({}))
}

#[doc(alias = "DescribeMountTargetSecurityGroups")]
pub async fn describe_mount_target_security_groups(
    ctx: &RequestContext,
    input: Value,
) -> EfsResult<Value> {
    let (mt, _) = load_mt(ctx, req_str(&input, "MountTargetId")?).await?;
    Ok(json!({"SecurityGroups": mt.security_groups}))
}

#[doc(alias = "ModifyMountTargetSecurityGroups")]
pub async fn modify_mount_target_security_groups(
    ctx: &RequestContext,
    input: Value,
) -> EfsResult<Value> {
    let id = req_str(&input, "MountTargetId")?;
    let groups = security_groups_of(&input)?;
    let (mut mt, rev) = load_mt(ctx, id).await?;
    crate::ec2::dispatch(
        ctx,
        "ModifyNetworkInterfaceAttribute",
        json!({"NetworkInterfaceId": mt.eni_id, "Groups": groups}),
    )
    .await
    .map_err(from_ec2)?;
    mt.security_groups = groups;
    let op = resources::put_op(&mt_key(ctx, id), &mt, Precondition::ModRevision(rev));
    match resources::commit(&*ctx.store, vec![op]).await {
        Ok(_) => Ok(json!({})),
        Err(None) => Err(EfsError::MountTargetNotFound(id.to_string())),
        Err(Some(e)) => Err(e.into()),
    }
}
