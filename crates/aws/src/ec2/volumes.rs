//! EBS volumes and snapshots: Create/Describe/Delete/Attach/Detach/ModifyVolume,
//! DescribeVolumesModifications, Create/Describe/DeleteSnapshot, plus the domain functions the EBS CSI
//! integration calls ([`create_volume_internal`] and friends).
//!
//! Lifecycle: CreateVolume answers `creating` and the volume is `available` from the next read;
//! AttachVolume answers `attaching` and the volume is `in-use` (attachment `attached`) from then on;
//! DetachVolume answers `detaching` and the volume is `available` again. Snapshots answer `pending`
//! and read back `completed`. Every transition is one transaction; nothing waits on a timer.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::common::{self, Describe, Txn, array, opt_bool, opt_i64, opt_str, req_str, str_list};
use super::errors::{error, invalid_value, missing};
use super::{regions, tags};
use crate::context::RequestContext;
use crate::resources::new_id;

pub(crate) const DESCRIBE: Describe = Describe {
    kind: "volume",
    id_field: "VolumeId",
    ids_member: "VolumeIds",
    id_prefix: "vol",
    not_found: "InvalidVolume.NotFound",
    malformed: "InvalidVolumeID.Malformed",
    tags_field: "Tags",
    filters: &[
        ("attachment.attach-time", "Attachments.AttachTime"),
        (
            "attachment.delete-on-termination",
            "Attachments.DeleteOnTermination",
        ),
        ("attachment.device", "Attachments.Device"),
        ("attachment.instance-id", "Attachments.InstanceId"),
        ("attachment.status", "Attachments.State"),
        ("availability-zone", "AvailabilityZone"),
        ("availability-zone-id", "AvailabilityZoneId"),
        ("create-time", "CreateTime"),
        ("encrypted", "Encrypted"),
        ("multi-attach-enabled", "MultiAttachEnabled"),
        ("size", "Size"),
        ("snapshot-id", "SnapshotId"),
        ("status", "State"),
        ("volume-id", "VolumeId"),
        ("volume-type", "VolumeType"),
    ],
    max_results: (5, 500),
};

const DESCRIBE_SNAPSHOTS: Describe = Describe {
    kind: "snapshot",
    id_field: "SnapshotId",
    ids_member: "SnapshotIds",
    id_prefix: "snap",
    not_found: "InvalidSnapshot.NotFound",
    malformed: "InvalidSnapshotID.Malformed",
    tags_field: "Tags",
    filters: &[
        ("description", "Description"),
        ("encrypted", "Encrypted"),
        ("owner-id", "OwnerId"),
        ("progress", "Progress"),
        ("snapshot-id", "SnapshotId"),
        ("start-time", "StartTime"),
        ("status", "State"),
        ("volume-id", "VolumeId"),
        ("volume-size", "VolumeSize"),
    ],
    max_results: (5, 1000),
};

/// Size bounds (GiB) per volume type.
fn size_bounds(volume_type: &str) -> Option<(i64, i64)> {
    Some(match volume_type {
        "gp2" | "gp3" => (1, 16384),
        "io1" => (4, 16384),
        "io2" => (4, 65536),
        "st1" | "sc1" => (125, 16384),
        "standard" => (1, 1024),
        _ => return None,
    })
}

/// Validate type, size, IOPS and throughput; return the volume's performance members.
fn performance(
    volume_type: &str,
    size: i64,
    iops: Option<i64>,
    throughput: Option<i64>,
) -> Result<Value, AwsError> {
    let (min, max) = size_bounds(volume_type).ok_or_else(|| {
        invalid_value(format!(
            "Value ({volume_type}) for parameter volumeType is invalid."
        ))
    })?;
    if size < min || size > max {
        return Err(invalid_value(format!(
            "Volume of {size}GiB is too {} for {volume_type}; minimum is {min}GiB, maximum is {max}GiB",
            if size < min { "small" } else { "large" }
        )));
    }
    Ok(match volume_type {
        "gp2" => {
            if iops.is_some() {
                return Err(invalid_value(
                    "The parameter iops is not supported for gp2 volumes.",
                ));
            }
            json!({"Iops": (3 * size).clamp(100, 16000)})
        }
        "gp3" => {
            let iops = iops.unwrap_or(3000);
            let tp = throughput.unwrap_or(125);
            if !(3000..=16000).contains(&iops) {
                return Err(invalid_value(format!(
                    "Value ({iops}) for parameter iops is invalid. Expected a value between 3000 and 16000."
                )));
            }
            if !(125..=1000).contains(&tp) {
                return Err(invalid_value(format!(
                    "Value ({tp}) for parameter throughput is invalid. Expected a value between 125 and 1000."
                )));
            }
            json!({"Iops": iops, "Throughput": tp})
        }
        "io1" | "io2" => {
            let iops = iops.ok_or_else(|| missing("iops"))?;
            if !(100..=64000).contains(&iops) {
                return Err(invalid_value(format!(
                    "Value ({iops}) for parameter iops is invalid."
                )));
            }
            json!({"Iops": iops})
        }
        _ => json!({}),
    })
}

/// Build (not store) a volume.
#[allow(clippy::too_many_arguments, reason = "mirrors CreateVolume's members")]
pub(crate) fn build(
    ctx: &RequestContext,
    zone: &str,
    size: i64,
    volume_type: &str,
    iops: Option<i64>,
    throughput: Option<i64>,
    encrypted: bool,
    snapshot_id: &str,
    tags: Vec<Value>,
) -> Result<Value, AwsError> {
    let zone_id = regions::zone_id(&ctx.region, zone)
        .ok_or_else(|| error("InvalidZone.NotFound", &[("name", zone)]))?;
    let mut v = json!({
        "VolumeId": new_id("vol"),
        "Size": size,
        "SnapshotId": snapshot_id,
        "AvailabilityZone": zone,
        "AvailabilityZoneId": zone_id,
        "State": "available",
        "CreateTime": common::now(),
        "Attachments": [],
        "Encrypted": encrypted,
        "VolumeType": volume_type,
        "MultiAttachEnabled": false,
        "Tags": tags,
    });
    if encrypted {
        v["KmsKeyId"] = json!(format!(
            "arn:aws:kms:{}:{}:alias/aws/ebs",
            ctx.region, ctx.account_id
        ));
    }
    if let Value::Object(perf) = performance(volume_type, size, iops, throughput)? {
        for (k, val) in perf {
            v[k] = val;
        }
    }
    Ok(v)
}

#[doc(alias = "CreateVolume")]
pub(crate) async fn create_volume(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let zone = match (
        opt_str(&input, "AvailabilityZone"),
        opt_str(&input, "AvailabilityZoneId"),
    ) {
        (Some(z), _) => z.to_string(),
        (None, Some(id)) => regions::zones(&ctx.region)
            .into_iter()
            .find(|(_, zid)| zid == id)
            .map(|(n, _)| n)
            .ok_or_else(|| error("InvalidZone.NotFound", &[("name", id)]))?,
        _ => return Err(missing("AvailabilityZone")),
    };
    let volume_type = opt_str(&input, "VolumeType").unwrap_or("gp2");
    let tags = tags::for_create(&input, "volume")?;
    let snapshot_id = opt_str(&input, "SnapshotId").unwrap_or("");
    let mut encrypted = opt_bool(&input, "Encrypted").unwrap_or(false);
    let size = match (opt_i64(&input, "Size"), snapshot_id) {
        (size, "") => size.ok_or_else(|| missing("size or snapshotId"))?,
        (size, snap) => {
            let (s, _) = common::load_or(ctx, "snapshot", snap, "InvalidSnapshot.NotFound").await?;
            let snap_size = s["VolumeSize"].as_i64().unwrap_or(1);
            encrypted |= s["Encrypted"] == true;
            match size {
                Some(n) if n < snap_size => {
                    return Err(invalid_value(format!(
                        "Volume of size {n}GiB is smaller than snapshot '{snap}', expect size >= {snap_size}GiB"
                    )));
                }
                Some(n) => n,
                None => snap_size,
            }
        }
    };
    let vol = build(
        ctx,
        &zone,
        size,
        volume_type,
        opt_i64(&input, "Iops"),
        opt_i64(&input, "Throughput"),
        encrypted,
        snapshot_id,
        tags,
    )?;
    let mut txn = Txn::new();
    txn.create(
        ctx,
        "volume",
        vol["VolumeId"].as_str().unwrap_or_default(),
        &vol,
    );
    txn.commit(ctx).await?;
    let mut out = common::public(&vol);
    out["State"] = json!("creating");
    Ok(out)
}

#[doc(alias = "DescribeVolumes")]
pub(crate) async fn describe_volumes(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let (items, next) = common::describe(ctx, &input, &DESCRIBE).await?;
    Ok(common::listing("Volumes", items, next))
}

#[doc(alias = "DeleteVolume")]
pub(crate) async fn delete_volume(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let id = req_str(&input, "VolumeId")?;
    if !common::well_formed(id, "vol") {
        return Err(error("InvalidVolumeID.Malformed", &[("id", id)]));
    }
    let _guard = common::write_lock(ctx).await;
    let (vol, _) = common::load_or(ctx, "volume", id, "InvalidVolume.NotFound").await?;
    if let Some(a) = array(&vol, "Attachments").first() {
        return Err(error(
            "VolumeInUse",
            &[(
                "message",
                &format!(
                    "Volume {id} is currently attached to {}",
                    a["InstanceId"].as_str().unwrap_or_default()
                ),
            )],
        ));
    }
    let mut txn = Txn::new();
    txn.delete(ctx, "volume", id);
    txn.commit(ctx).await?;
    Ok(json!({}))
}

/// Record an attachment on a volume (used by AttachVolume and by RunInstances for root volumes).
pub(crate) fn attach(
    vol: &mut Value,
    instance_id: &str,
    device: &str,
    delete_on_termination: bool,
) -> Value {
    let attachment = json!({"AttachTime": common::now(), "Device": device, "InstanceId": instance_id,
                            "State": "attached", "VolumeId": vol["VolumeId"],
                            "DeleteOnTermination": delete_on_termination});
    vol["Attachments"] = json!([attachment.clone()]);
    vol["State"] = json!("in-use");
    attachment
}

#[doc(alias = "AttachVolume")]
pub(crate) async fn attach_volume(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let id = req_str(&input, "VolumeId")?;
    let instance_id = req_str(&input, "InstanceId")?;
    let device = req_str(&input, "Device")?;
    let _guard = common::write_lock(ctx).await;
    let (mut vol, rev) = common::load_or(ctx, "volume", id, "InvalidVolume.NotFound").await?;
    let (inst, _) =
        common::load_or(ctx, "instance", instance_id, "InvalidInstanceID.NotFound").await?;
    let state = inst["State"]["Name"].as_str().unwrap_or_default();
    if !["running", "stopped", "pending"].contains(&state) {
        return Err(error(
            "IncorrectInstanceState",
            &[("id", instance_id), ("action", "attached to")],
        ));
    }
    if !array(&vol, "Attachments").is_empty() {
        return Err(error(
            "VolumeInUse",
            &[(
                "message",
                &format!("{id} is already attached to an instance"),
            )],
        ));
    }
    if inst["Placement"]["AvailabilityZone"] != vol["AvailabilityZone"] {
        return Err(error(
            "InvalidVolume.ZoneMismatch",
            &[("id", id), ("instance", instance_id)],
        ));
    }
    let taken = common::load_all(ctx, "volume").await?.iter().any(|v| {
        array(v, "Attachments")
            .iter()
            .any(|a| a["InstanceId"] == instance_id && a["Device"] == device)
    });
    if taken {
        return Err(invalid_value(format!(
            "Invalid value '{device}' for unixDevice. Attachment point {device} is already in use"
        )));
    }
    let mut attachment = attach(&mut vol, instance_id, device, false);
    let mut txn = Txn::new();
    txn.update(ctx, "volume", id, &vol, rev);
    txn.commit(ctx).await?;
    attachment["State"] = json!("attaching");
    Ok(attachment)
}

#[doc(alias = "DetachVolume")]
pub(crate) async fn detach_volume(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let id = req_str(&input, "VolumeId")?;
    let _guard = common::write_lock(ctx).await;
    let (mut vol, rev) = common::load_or(ctx, "volume", id, "InvalidVolume.NotFound").await?;
    let Some(mut attachment) = array(&vol, "Attachments").first().cloned() else {
        return Err(error("IncorrectState.VolumeNotAttached", &[("id", id)]));
    };
    let instance_id = attachment["InstanceId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if let Some(wanted) = opt_str(&input, "InstanceId")
        && wanted != instance_id
    {
        return Err(error(
            "InvalidAttachment.NotFound",
            &[("id", id), ("instance", wanted)],
        ));
    }
    if let Some((inst, _)) = common::load(ctx, "instance", &instance_id).await?
        && inst["RootDeviceName"] == attachment["Device"]
        && inst["State"]["Name"] != "stopped"
        && opt_bool(&input, "Force") != Some(true)
    {
        return Err(error(
            "IncorrectState",
            &[(
                "message",
                &format!("Unable to detach root volume '{id}' from instance '{instance_id}'"),
            )],
        ));
    }
    vol["Attachments"] = json!([]);
    vol["State"] = json!("available");
    let mut txn = Txn::new();
    txn.update(ctx, "volume", id, &vol, rev);
    txn.commit(ctx).await?;
    attachment["State"] = json!("detaching");
    Ok(attachment)
}

#[doc(alias = "ModifyVolume")]
pub(crate) async fn modify_volume(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let id = req_str(&input, "VolumeId")?;
    let _guard = common::write_lock(ctx).await;
    let (mut vol, rev) = common::load_or(ctx, "volume", id, "InvalidVolume.NotFound").await?;
    let old_size = vol["Size"].as_i64().unwrap_or(0);
    let size = opt_i64(&input, "Size").unwrap_or(old_size);
    if size < old_size {
        return Err(invalid_value(format!(
            "New size cannot be smaller than existing size of {old_size}GiB"
        )));
    }
    let old_type = vol["VolumeType"].as_str().unwrap_or("gp2").to_string();
    let new_type = opt_str(&input, "VolumeType")
        .unwrap_or(&old_type)
        .to_string();
    let keep_iops = if new_type == old_type && new_type != "gp2" {
        vol["Iops"].as_i64()
    } else {
        None
    };
    let keep_tp = if new_type == old_type {
        vol["Throughput"].as_i64()
    } else {
        None
    };
    let perf = performance(
        &new_type,
        size,
        opt_i64(&input, "Iops").or(keep_iops),
        opt_i64(&input, "Throughput").or(keep_tp),
    )?;
    let modification = json!({
        "VolumeId": id, "ModificationState": "modifying", "Progress": 0, "StartTime": common::now(),
        "TargetSize": size, "TargetVolumeType": new_type, "TargetIops": perf["Iops"],
        "TargetThroughput": perf["Throughput"], "TargetMultiAttachEnabled": false,
        "OriginalSize": old_size, "OriginalVolumeType": old_type, "OriginalIops": vol["Iops"],
        "OriginalThroughput": vol["Throughput"], "OriginalMultiAttachEnabled": false,
    });
    if let Some(m) = vol.as_object_mut() {
        m.remove("Iops");
        m.remove("Throughput");
    }
    vol["Size"] = json!(size);
    vol["VolumeType"] = json!(new_type);
    if let Value::Object(p) = perf {
        for (k, v) in p {
            vol[k] = v;
        }
    }
    // The change applies at once; DescribeVolumesModifications then reports it completed.
    let mut done = modification.clone();
    done["ModificationState"] = json!("completed");
    done["Progress"] = json!(100);
    done["EndTime"] = json!(common::now());
    vol["_modification"] = strip_nulls(done);
    let mut txn = Txn::new();
    txn.update(ctx, "volume", id, &vol, rev);
    txn.commit(ctx).await?;
    Ok(json!({ "VolumeModification": strip_nulls(modification) }))
}

fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    }
}

#[doc(alias = "DescribeVolumesModifications")]
pub(crate) async fn describe_volumes_modifications(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let ids = str_list(&input, "VolumeIds");
    let mut out = Vec::new();
    for id in &ids {
        let (vol, _) = common::load_or(ctx, "volume", id, "InvalidVolume.NotFound").await?;
        match vol.get("_modification") {
            Some(m) => out.push(m.clone()),
            None => {
                return Err(error(
                    "InvalidVolumeModification.NotFound",
                    &[(
                        "message",
                        &format!("Modification for volume '{id}' does not exist."),
                    )],
                ));
            }
        }
    }
    if ids.is_empty() {
        out = common::load_all(ctx, "volume")
            .await?
            .iter()
            .filter_map(|v| v.get("_modification").cloned())
            .collect();
    }
    Ok(json!({ "VolumesModifications": out }))
}

#[doc(alias = "CreateSnapshot")]
pub(crate) async fn create_snapshot(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let volume_id = req_str(&input, "VolumeId")?;
    let tags = tags::for_create(&input, "snapshot")?;
    let (vol, _) = common::load_or(ctx, "volume", volume_id, "InvalidVolume.NotFound").await?;
    let snap = json!({
        "SnapshotId": new_id("snap"), "VolumeId": volume_id, "State": "completed", "Progress": "100%",
        "StartTime": common::now(), "OwnerId": ctx.account_id,
        "Description": opt_str(&input, "Description").unwrap_or(""), "VolumeSize": vol["Size"],
        "Encrypted": vol["Encrypted"], "StorageTier": "standard", "Tags": tags,
    });
    let mut txn = Txn::new();
    txn.create(
        ctx,
        "snapshot",
        snap["SnapshotId"].as_str().unwrap_or_default(),
        &snap,
    );
    txn.commit(ctx).await?;
    let mut out = common::public(&snap);
    out["State"] = json!("pending");
    out["Progress"] = json!("");
    Ok(out)
}

#[doc(alias = "DescribeSnapshots")]
pub(crate) async fn describe_snapshots(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let owners = str_list(&input, "OwnerIds");
    let (mut items, next) = common::describe(ctx, &input, &DESCRIBE_SNAPSHOTS).await?;
    if !owners.is_empty() {
        // Every snapshot here is the caller's own; "amazon" or other accounts own none of them.
        let mine = owners.iter().any(|o| o == "self" || *o == ctx.account_id);
        if !mine {
            items.clear();
        }
    }
    Ok(common::listing("Snapshots", items, next))
}

#[doc(alias = "DeleteSnapshot")]
pub(crate) async fn delete_snapshot(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let id = req_str(&input, "SnapshotId")?;
    if !common::well_formed(id, "snap") {
        return Err(error("InvalidSnapshotID.Malformed", &[("id", id)]));
    }
    let _guard = common::write_lock(ctx).await;
    common::load_or(ctx, "snapshot", id, "InvalidSnapshot.NotFound").await?;
    let mut txn = Txn::new();
    txn.delete(ctx, "snapshot", id);
    txn.commit(ctx).await?;
    Ok(json!({}))
}

// ---- domain functions for the EBS CSI integration ----------------------------------------------

/// What the CSI controller asks for when a PersistentVolumeClaim is provisioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    pub availability_zone: String,
    pub size_gib: i64,
    /// `gp3` when the StorageClass says nothing.
    pub volume_type: String,
    pub iops: Option<i64>,
    pub throughput: Option<i64>,
    pub encrypted: bool,
    pub snapshot_id: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// CreateVolume; returns the `Volume` shape.
#[doc(alias = "CreateVolume")]
pub async fn create_volume_internal(
    ctx: &RequestContext,
    spec: &VolumeSpec,
) -> Result<Value, AwsError> {
    let mut input = json!({
        "AvailabilityZone": spec.availability_zone, "Size": spec.size_gib,
        "VolumeType": spec.volume_type, "Encrypted": spec.encrypted,
        "TagSpecifications": [{"ResourceType": "volume",
            "Tags": spec.tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()}],
    });
    if let Some(i) = spec.iops {
        input["Iops"] = json!(i);
    }
    if let Some(t) = spec.throughput {
        input["Throughput"] = json!(t);
    }
    if let Some(s) = &spec.snapshot_id {
        input["SnapshotId"] = json!(s);
    }
    create_volume(ctx, input).await
}

/// AttachVolume; returns the `VolumeAttachment` shape.
#[doc(alias = "AttachVolume")]
pub async fn attach_volume_internal(
    ctx: &RequestContext,
    volume_id: &str,
    instance_id: &str,
    device: &str,
) -> Result<Value, AwsError> {
    attach_volume(
        ctx,
        json!({"VolumeId": volume_id, "InstanceId": instance_id, "Device": device}),
    )
    .await
}

/// DetachVolume from the given instance; returns the `VolumeAttachment` shape.
#[doc(alias = "DetachVolume")]
pub async fn detach_volume_internal(
    ctx: &RequestContext,
    volume_id: &str,
    instance_id: &str,
) -> Result<Value, AwsError> {
    detach_volume(
        ctx,
        json!({"VolumeId": volume_id, "InstanceId": instance_id}),
    )
    .await
}

/// DeleteVolume.
#[doc(alias = "DeleteVolume")]
pub async fn delete_volume_internal(ctx: &RequestContext, volume_id: &str) -> Result<(), AwsError> {
    delete_volume(ctx, json!({"VolumeId": volume_id}))
        .await
        .map(|_| ())
}

/// The `Volume` shape of one volume.
#[doc(alias = "DescribeVolumes")]
pub async fn describe_volume_internal(
    ctx: &RequestContext,
    volume_id: &str,
) -> Result<Value, AwsError> {
    let (vol, _) = common::load_or(ctx, "volume", volume_id, "InvalidVolume.NotFound").await?;
    Ok(common::public(&vol))
}

/// ModifyVolume to a larger size (volume expansion); returns the `VolumeModification` shape.
#[doc(alias = "ModifyVolume")]
pub async fn resize_volume_internal(
    ctx: &RequestContext,
    volume_id: &str,
    size_gib: i64,
) -> Result<Value, AwsError> {
    modify_volume(ctx, json!({"VolumeId": volume_id, "Size": size_gib})).await
}

#[cfg(test)]
mod tests {
    use super::super::testing::{ctx, err, ok};
    use super::*;

    #[tokio::test]
    async fn volume_lifecycle_and_csi_entry_points() {
        let c = ctx();
        let r = ok(
            &c,
            "RunInstances",
            json!({"ImageId": "ami-12345678", "MinCount": 1, "MaxCount": 1,
            "Placement": {"AvailabilityZone": "us-east-1b"}}),
        )
        .await;
        let inst = r["Instances"][0]["InstanceId"]
            .as_str()
            .unwrap()
            .to_string();
        let v = ok(
            &c,
            "CreateVolume",
            json!({"AvailabilityZone": "us-east-1b", "Size": 10, "VolumeType": "gp3"}),
        )
        .await;
        assert_eq!(
            (
                v["State"].clone(),
                v["Iops"].clone(),
                v["Throughput"].clone()
            ),
            (json!("creating"), json!(3000), json!(125))
        );
        let id = v["VolumeId"].as_str().unwrap().to_string();
        let a = ok(
            &c,
            "AttachVolume",
            json!({"VolumeId": id, "InstanceId": inst, "Device": "/dev/xvdf"}),
        )
        .await;
        assert_eq!(a["State"], "attaching");
        let e = err(
            &c,
            "AttachVolume",
            json!({"VolumeId": id, "InstanceId": inst, "Device": "/dev/xvdg"}),
        )
        .await;
        assert_eq!(e.code, "VolumeInUse");
        let e = err(&c, "DeleteVolume", json!({"VolumeId": id})).await;
        assert_eq!(
            (e.code.as_str(), e.message.clone()),
            (
                "VolumeInUse",
                format!("Volume {id} is currently attached to {inst}")
            )
        );
        let d = ok(&c, "DescribeInstances", json!({"InstanceIds": [inst]})).await;
        assert_eq!(
            d["Reservations"][0]["Instances"][0]["BlockDeviceMappings"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let m = ok(&c, "ModifyVolume", json!({"VolumeId": id, "Size": 20})).await;
        assert_eq!(
            (
                m["VolumeModification"]["OriginalSize"].clone(),
                m["VolumeModification"]["TargetSize"].clone()
            ),
            (json!(10), json!(20))
        );
        let e = err(&c, "ModifyVolume", json!({"VolumeId": id, "Size": 5})).await;
        assert_eq!(e.code, "InvalidParameterValue");
        let mods = ok(
            &c,
            "DescribeVolumesModifications",
            json!({"VolumeIds": [id]}),
        )
        .await;
        assert_eq!(
            mods["VolumesModifications"][0]["ModificationState"],
            "completed"
        );
        let d = ok(&c, "DetachVolume", json!({"VolumeId": id})).await;
        assert_eq!(d["State"], "detaching");
        let e = err(&c, "DetachVolume", json!({"VolumeId": id})).await;
        assert_eq!(e.code, "IncorrectState");
        let snap = ok(
            &c,
            "CreateSnapshot",
            json!({"VolumeId": id, "Description": "backup"}),
        )
        .await;
        assert_eq!(snap["State"], "pending");
        let s = ok(&c, "DescribeSnapshots", json!({"OwnerIds": ["self"]})).await;
        assert_eq!(s["Snapshots"][0]["State"], "completed");
        let from_snap = ok(
            &c,
            "CreateVolume",
            json!({"AvailabilityZone": "us-east-1a", "SnapshotId": snap["SnapshotId"]}),
        )
        .await;
        assert_eq!(from_snap["Size"], 20);
        ok(&c, "DeleteVolume", json!({"VolumeId": id})).await;
        let e = err(&c, "DescribeVolumes", json!({"VolumeIds": [id]})).await;
        assert_eq!(e.message, format!("The volume '{id}' does not exist."));

        // The CSI path: zone mismatch is refused, the rest works through typed calls.
        let spec = VolumeSpec {
            availability_zone: "us-east-1c".into(),
            size_gib: 4,
            volume_type: "gp3".into(),
            iops: None,
            throughput: None,
            encrypted: true,
            snapshot_id: None,
            tags: vec![("kubernetes.io/created-for/pvc/name".into(), "data".into())],
        };
        let v = create_volume_internal(&c, &spec).await.unwrap();
        let vid = v["VolumeId"].as_str().unwrap();
        assert_eq!(v["Tags"][0]["Value"], "data");
        let e = attach_volume_internal(&c, vid, &inst, "/dev/xvdba")
            .await
            .unwrap_err();
        assert_eq!(e.code, "InvalidVolume.ZoneMismatch");
        delete_volume_internal(&c, vid).await.unwrap();
        let e = err(
            &c,
            "CreateVolume",
            json!({"AvailabilityZone": "us-east-1a", "Size": 0}),
        )
        .await;
        assert_eq!(e.code, "InvalidParameterValue");
    }
}
