//! File systems: CreateFileSystem, DescribeFileSystems, DeleteFileSystem, UpdateFileSystem,
//! UpdateFileSystemProtection, and the per-file-system settings (lifecycle configuration, backup
//! policy, file system policy).

use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::Precondition;

use super::common::{
    EfsError, EfsResult, FileSystem, access_points_of, ap_key, fs_arn, fs_key, load_fs, marker_of,
    mount_targets_of, offset_of, opt_str, page_size, req_str, tags_list, tags_of,
};
use crate::context::RequestContext;
use crate::resources;

/// Metered size of an empty file system (EFS reports 6 KiB of metadata).
const EMPTY_SIZE: i64 = 6144;

pub fn describe(ctx: &RequestContext, fs: &FileSystem, mount_targets: usize) -> Value {
    let mut out = json!({
        "OwnerId": ctx.account_id,
        "CreationToken": fs.creation_token,
        "FileSystemId": fs.id,
        "FileSystemArn": fs_arn(ctx, &fs.id),
        "CreationTime": fs.created,
        "LifeCycleState": "available",
        "NumberOfMountTargets": mount_targets,
        "SizeInBytes": {"Value": EMPTY_SIZE, "Timestamp": fs.created, "ValueInIA": 0, "ValueInStandard": EMPTY_SIZE, "ValueInArchive": 0},
        "PerformanceMode": fs.performance_mode,
        "Encrypted": fs.encrypted,
        "ThroughputMode": fs.throughput_mode,
        "Tags": tags_list(&fs.tags),
        "FileSystemProtection": {"ReplicationOverwriteProtection": fs.replication_overwrite},
    });
    if let Some(name) = fs.tags.get("Name") {
        out["Name"] = json!(name);
    }
    if let Some(k) = &fs.kms_key_id {
        out["KmsKeyId"] = json!(k);
    }
    if let Some(m) = fs.provisioned_mibps {
        out["ProvisionedThroughputInMibps"] = json!(m);
    }
    if let Some((name, id)) = &fs.availability_zone {
        out["AvailabilityZoneName"] = json!(name);
        out["AvailabilityZoneId"] = json!(id);
    }
    out
}

fn throughput(input: &Value, mode: &str) -> EfsResult<Option<f64>> {
    let mibps = input
        .get("ProvisionedThroughputInMibps")
        .and_then(Value::as_f64);
    match (mode, mibps) {
        ("provisioned", None) => Err(EfsError::BadRequest(
            "ProvisionedThroughputInMibps is required when ThroughputMode is provisioned.".into(),
        )),
        ("provisioned", Some(m)) if m < 1.0 => Err(EfsError::BadRequest(
            "ProvisionedThroughputInMibps must be at least 1.".into(),
        )),
        ("provisioned", m) => Ok(m),
        ("bursting" | "elastic", Some(_)) => Err(EfsError::BadRequest(
            "ProvisionedThroughputInMibps can only be set when ThroughputMode is provisioned."
                .into(),
        )),
        ("bursting" | "elastic", None) => Ok(None),
        (other, _) => Err(EfsError::BadRequest(format!(
            "Invalid ThroughputMode '{other}': must be one of bursting, provisioned, elastic."
        ))),
    }
}

/// The key ARN an encrypted file system uses: the given key (id, alias or ARN, resolved through KMS)
/// or the AWS managed key for EFS.
async fn kms_key(
    ctx: &RequestContext,
    input: &Value,
    encrypted: bool,
) -> EfsResult<Option<String>> {
    match (opt_str(input, "KmsKeyId"), encrypted) {
        (Some(_), false) => Err(EfsError::BadRequest(
            "A KmsKeyId can only be given for an encrypted file system (Encrypted = true).".into(),
        )),
        (Some(k), true) => {
            let (key, _) = crate::kms::common::resolve(ctx, k).await.map_err(|_| {
                EfsError::BadRequest(format!(
                    "The KMS key '{k}' does not exist or is not usable."
                ))
            })?;
            key.usable()
                .map_err(|e| EfsError::BadRequest(e.to_string()))?;
            Ok(Some(key.arn.clone()))
        }
        (None, true) => Ok(Some(format!(
            "arn:aws:kms:{}:{}:alias/aws/elasticfilesystem",
            ctx.region, ctx.account_id
        ))),
        (None, false) => Ok(None),
    }
}

/// A One Zone file system's zone: (name, id), checked against EC2's zones.
async fn zone(ctx: &RequestContext, name: &str) -> EfsResult<(String, String)> {
    let zones = crate::ec2::dispatch(
        ctx,
        "DescribeAvailabilityZones",
        json!({"ZoneNames": [name]}),
    )
    .await
    .map_err(|_| EfsError::BadRequest(format!("Availability zone '{name}' is not supported.")))?;
    let id = zones["AvailabilityZones"][0]["ZoneId"]
        .as_str()
        .ok_or_else(|| {
            EfsError::BadRequest(format!("Availability zone '{name}' is not supported."))
        })?;
    Ok((name.to_string(), id.to_string()))
}

pub async fn all_file_systems(ctx: &RequestContext) -> EfsResult<Vec<FileSystem>> {
    let prefix = resources::prefix_of(&fs_key(ctx, "x"));
    let mut all: Vec<FileSystem> = resources::list(&*ctx.store, &prefix).await?;
    all.sort_by_key(|f| (f.created, f.id.clone()));
    Ok(all)
}

#[doc(alias = "CreateFileSystem")]
pub async fn create_file_system(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let token = req_str(&input, "CreationToken")?;
    if token.len() > 64 {
        return Err(EfsError::BadRequest(
            "CreationToken must be at most 64 characters.".into(),
        ));
    }
    if let Some(existing) = all_file_systems(ctx)
        .await?
        .into_iter()
        .find(|f| f.creation_token == token)
    {
        return Err(EfsError::FileSystemAlreadyExists(format!(
            "File system '{}' already exists with creation token '{token}'",
            existing.id
        )));
    }
    let performance_mode = opt_str(&input, "PerformanceMode").unwrap_or("generalPurpose");
    if !matches!(performance_mode, "generalPurpose" | "maxIO") {
        return Err(EfsError::BadRequest(format!(
            "Invalid PerformanceMode '{performance_mode}': must be generalPurpose or maxIO."
        )));
    }
    let throughput_mode = opt_str(&input, "ThroughputMode").unwrap_or("bursting");
    let provisioned_mibps = throughput(&input, throughput_mode)?;
    let encrypted = input
        .get("Encrypted")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let kms_key_id = kms_key(ctx, &input, encrypted).await?;
    let availability_zone = match opt_str(&input, "AvailabilityZoneName") {
        Some(name) => Some(zone(ctx, name).await?),
        None => None,
    };
    if availability_zone.is_some() && performance_mode == "maxIO" {
        return Err(EfsError::BadRequest(
            "One Zone file systems support only the generalPurpose performance mode.".into(),
        ));
    }
    let backup = input
        .get("Backup")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let fs = FileSystem {
        id: resources::new_id("fs"),
        creation_token: token.to_string(),
        created: jiff::Timestamp::now().as_second(),
        performance_mode: performance_mode.to_string(),
        throughput_mode: throughput_mode.to_string(),
        provisioned_mibps,
        encrypted,
        kms_key_id,
        availability_zone,
        tags: tags_of(&input),
        replication_overwrite: "ENABLED".into(),
        lifecycle: Vec::new(),
        backup: Some(if backup { "ENABLED" } else { "DISABLED" }.into()),
        policy: None,
    };
    let op = resources::put_op(&fs_key(ctx, &fs.id), &fs, Precondition::MustNotExist);
    match resources::commit(&*ctx.store, vec![op]).await {
        Ok(_) => Ok(describe(ctx, &fs, 0)),
        // A random 17-hex-digit id that already exists: ours to retry, not the caller's fault.
        Err(None) => Err(EfsError::Internal(
            AwsError::new("InternalServerError", "file system id collision; retry")
                .with_status(500),
        )),
        Err(Some(e)) => Err(e.into()),
    }
}

#[doc(alias = "DescribeFileSystems")]
pub async fn describe_file_systems(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let id = opt_str(&input, "FileSystemId");
    let token = opt_str(&input, "CreationToken");
    let max = page_size(&input, "MaxItems", 100)?;
    let matching: Vec<FileSystem> = match id {
        Some(id) => vec![load_fs(ctx, id).await?.0],
        None => all_file_systems(ctx)
            .await?
            .into_iter()
            .filter(|f| token.is_none_or(|t| f.creation_token == t))
            .collect(),
    };
    let marker = opt_str(&input, "Marker");
    let start = offset_of(marker)?;
    let mut page = Vec::new();
    for fs in matching.iter().skip(start).take(max) {
        let n = mount_targets_of(ctx, &fs.id).await?.len();
        page.push(describe(ctx, fs, n));
    }
    let mut out = json!({ "FileSystems": page });
    if let Some(m) = marker {
        out["Marker"] = json!(m);
    }
    if start + max < matching.len() {
        out["NextMarker"] = json!(marker_of(start + max));
    }
    Ok(out)
}

#[doc(alias = "DeleteFileSystem")]
pub async fn delete_file_system(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let id = req_str(&input, "FileSystemId")?;
    let (_, rev) = load_fs(ctx, id).await?;
    if !mount_targets_of(ctx, id).await?.is_empty() {
        return Err(EfsError::FileSystemInUse(format!(
            "File system '{id}' has mount targets created in it."
        )));
    }
    // Access points go with their file system.
    let mut ops = vec![skiff_store::Op::Delete {
        key: fs_key(ctx, id),
        precondition: Precondition::ModRevision(rev),
    }];
    for ap in access_points_of(ctx, id).await? {
        ops.push(skiff_store::Op::Delete {
            key: ap_key(ctx, &ap.id),
            precondition: Precondition::None,
        });
    }
    match resources::commit(&*ctx.store, ops).await {
        Ok(_) => Ok(json!({})),
        Err(None) => Err(EfsError::IncorrectFileSystemLifeCycleState(format!(
            "File system '{id}' changed while it was being deleted; retry."
        ))),
        Err(Some(e)) => Err(e.into()),
    }
}

/// Read-modify-write of one file system under optimistic concurrency.
pub async fn update_fs(
    ctx: &RequestContext,
    id: &str,
    change: impl Fn(&mut FileSystem) -> EfsResult<()>,
) -> EfsResult<FileSystem> {
    loop {
        let (mut fs, rev) = load_fs(ctx, id).await?;
        change(&mut fs)?;
        let op = resources::put_op(&fs_key(ctx, id), &fs, Precondition::ModRevision(rev));
        match resources::commit(&*ctx.store, vec![op]).await {
            Ok(_) => return Ok(fs),
            Err(None) => continue,
            Err(Some(e)) => return Err(e.into()),
        }
    }
}

#[doc(alias = "UpdateFileSystem")]
pub async fn update_file_system(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let id = req_str(&input, "FileSystemId")?;
    let (current, _) = load_fs(ctx, id).await?;
    let mode = opt_str(&input, "ThroughputMode")
        .unwrap_or(&current.throughput_mode)
        .to_string();
    let mibps = throughput(&input, &mode).or_else(|e| match (&e, mode.as_str()) {
        // Keeping provisioned mode without restating the figure keeps the figure.
        (EfsError::BadRequest(_), "provisioned") if current.provisioned_mibps.is_some() => {
            Ok(current.provisioned_mibps)
        }
        _ => Err(e),
    })?;
    let fs = update_fs(ctx, id, |fs| {
        fs.throughput_mode = mode.clone();
        fs.provisioned_mibps = mibps;
        Ok(())
    })
    .await?;
    let n = mount_targets_of(ctx, id).await?.len();
    Ok(describe(ctx, &fs, n))
}

#[doc(alias = "UpdateFileSystemProtection")]
pub async fn update_file_system_protection(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let id = req_str(&input, "FileSystemId")?;
    let setting = opt_str(&input, "ReplicationOverwriteProtection").unwrap_or("ENABLED");
    if !matches!(setting, "ENABLED" | "DISABLED" | "REPLICATING") {
        return Err(EfsError::BadRequest(format!(
            "Invalid ReplicationOverwriteProtection '{setting}'."
        )));
    }
    let fs = update_fs(ctx, id, |fs| {
        fs.replication_overwrite = setting.to_string();
        Ok(())
    })
    .await?;
    Ok(json!({"ReplicationOverwriteProtection": fs.replication_overwrite}))
}

const TRANSITIONS: &[(&str, &[&str])] = &[
    (
        "TransitionToIA",
        &[
            "AFTER_1_DAY",
            "AFTER_7_DAYS",
            "AFTER_14_DAYS",
            "AFTER_30_DAYS",
            "AFTER_60_DAYS",
            "AFTER_90_DAYS",
            "AFTER_180_DAYS",
            "AFTER_270_DAYS",
            "AFTER_365_DAYS",
        ],
    ),
    ("TransitionToPrimaryStorageClass", &["AFTER_1_ACCESS"]),
    (
        "TransitionToArchive",
        &[
            "AFTER_1_DAY",
            "AFTER_7_DAYS",
            "AFTER_14_DAYS",
            "AFTER_30_DAYS",
            "AFTER_60_DAYS",
            "AFTER_90_DAYS",
            "AFTER_180_DAYS",
            "AFTER_270_DAYS",
            "AFTER_365_DAYS",
        ],
    ),
];

#[doc(alias = "PutLifecycleConfiguration")]
pub async fn put_lifecycle_configuration(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let id = req_str(&input, "FileSystemId")?;
    let policies: Vec<Value> = input
        .get("LifecyclePolicies")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| EfsError::BadRequest("LifecyclePolicies is required.".into()))?;
    for p in &policies {
        let fields: Vec<(&String, &Value)> = p.as_object().into_iter().flatten().collect();
        if fields.len() != 1 {
            return Err(EfsError::BadRequest(
                "Each lifecycle policy names exactly one transition.".into(),
            ));
        }
        let (name, value) = fields[0];
        let allowed = TRANSITIONS
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| EfsError::BadRequest(format!("Unknown lifecycle transition {name}.")))?;
        if !value.as_str().is_some_and(|v| allowed.contains(&v)) {
            return Err(EfsError::BadRequest(format!(
                "Invalid value {value} for {name}."
            )));
        }
    }
    for (name, _) in TRANSITIONS {
        if policies.iter().filter(|p| p.get(*name).is_some()).count() > 1 {
            return Err(EfsError::BadRequest(format!(
                "{name} may appear in only one lifecycle policy."
            )));
        }
    }
    update_fs(ctx, id, |fs| {
        fs.lifecycle = policies.clone();
        Ok(())
    })
    .await?;
    Ok(json!({"LifecyclePolicies": policies}))
}

#[doc(alias = "DescribeLifecycleConfiguration")]
pub async fn describe_lifecycle_configuration(
    ctx: &RequestContext,
    input: Value,
) -> EfsResult<Value> {
    let (fs, _) = load_fs(ctx, req_str(&input, "FileSystemId")?).await?;
    Ok(json!({"LifecyclePolicies": fs.lifecycle}))
}

#[doc(alias = "PutBackupPolicy")]
pub async fn put_backup_policy(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let id = req_str(&input, "FileSystemId")?;
    let status = input["BackupPolicy"]["Status"].as_str().unwrap_or_default();
    if !matches!(status, "ENABLED" | "DISABLED") {
        return Err(EfsError::BadRequest(
            "BackupPolicy.Status must be ENABLED or DISABLED.".into(),
        ));
    }
    update_fs(ctx, id, |fs| {
        fs.backup = Some(status.to_string());
        Ok(())
    })
    .await?;
    Ok(json!({"BackupPolicy": {"Status": status}}))
}

#[doc(alias = "DescribeBackupPolicy")]
pub async fn describe_backup_policy(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let (fs, _) = load_fs(ctx, req_str(&input, "FileSystemId")?).await?;
    match fs.backup {
        Some(status) => Ok(json!({"BackupPolicy": {"Status": status}})),
        None => Err(EfsError::PolicyNotFound(
            "No backup policy is set for this file system.".into(),
        )),
    }
}

#[doc(alias = "PutFileSystemPolicy")]
pub async fn put_file_system_policy(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let id = req_str(&input, "FileSystemId")?;
    let policy = req_str(&input, "Policy")?.to_string();
    let doc: Value = serde_json::from_str(&policy)
        .map_err(|e| EfsError::InvalidPolicy(format!("Policy is not valid JSON: {e}")))?;
    if doc.get("Statement").is_none() {
        return Err(EfsError::InvalidPolicy("Policy has no Statement.".into()));
    }
    update_fs(ctx, id, |fs| {
        fs.policy = Some(policy.clone());
        Ok(())
    })
    .await?;
    Ok(json!({"FileSystemId": id, "Policy": policy}))
}

#[doc(alias = "DescribeFileSystemPolicy")]
pub async fn describe_file_system_policy(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let id = req_str(&input, "FileSystemId")?;
    let (fs, _) = load_fs(ctx, id).await?;
    match fs.policy {
        Some(p) => Ok(json!({"FileSystemId": id, "Policy": p})),
        None => Err(EfsError::PolicyNotFound("None".into())),
    }
}

#[doc(alias = "DeleteFileSystemPolicy")]
pub async fn delete_file_system_policy(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let id = req_str(&input, "FileSystemId")?;
    update_fs(ctx, id, |fs| {
        fs.policy = None;
        Ok(())
    })
    .await?;
    Ok(json!({}))
}
