//! What every EFS operation group shares: the typed error (turned into the wire error in one place,
//! `From<EfsError> for AwsError`), the file system / mount target / access point records and keys.
//!
//! Layout: `/aws/<account>/<region>/efs/{file-system,mount-target,access-point}/<id>`. A file system is
//! `available` as soon as it is created (Skiff has no capacity to wait for); its bytes live nowhere:
//! pods that mount it through the EFS CSI driver are simulated like every other volume.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::Revision;

use crate::context::RequestContext;
use crate::resources;

/// EFS's modelled errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EfsError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    FileSystemAlreadyExists(String),
    #[error("File system '{0}' does not exist.")]
    FileSystemNotFound(String),
    #[error("{0}")]
    FileSystemInUse(String),
    #[error("{0}")]
    IncorrectFileSystemLifeCycleState(String),
    #[error("{0}")]
    MountTargetConflict(String),
    #[error("Mount target '{0}' does not exist.")]
    MountTargetNotFound(String),
    #[error("{0}")]
    SubnetNotFound(String),
    #[error("{0}")]
    SecurityGroupNotFound(String),
    #[error("{0}")]
    IpAddressInUse(String),
    #[error("{0}")]
    NoFreeAddressesInSubnet(String),
    #[error("Access point '{0}' does not exist.")]
    AccessPointNotFound(String),
    #[error("{0}")]
    AccessPointAlreadyExists(String),
    #[error("{0}")]
    AccessPointLimitExceeded(String),
    #[error("{0}")]
    PolicyNotFound(String),
    #[error("{0}")]
    InvalidPolicy(String),
    #[error("{0}")]
    Internal(AwsError),
}

impl From<EfsError> for AwsError {
    fn from(e: EfsError) -> Self {
        let msg = e.to_string();
        let code = match e {
            EfsError::BadRequest(_) => "BadRequest",
            EfsError::FileSystemAlreadyExists(_) => "FileSystemAlreadyExists",
            EfsError::FileSystemNotFound(_) => "FileSystemNotFound",
            EfsError::FileSystemInUse(_) => "FileSystemInUse",
            EfsError::IncorrectFileSystemLifeCycleState(_) => "IncorrectFileSystemLifeCycleState",
            EfsError::MountTargetConflict(_) => "MountTargetConflict",
            EfsError::MountTargetNotFound(_) => "MountTargetNotFound",
            EfsError::SubnetNotFound(_) => "SubnetNotFound",
            EfsError::SecurityGroupNotFound(_) => "SecurityGroupNotFound",
            EfsError::IpAddressInUse(_) => "IpAddressInUse",
            EfsError::NoFreeAddressesInSubnet(_) => "NoFreeAddressesInSubnet",
            EfsError::AccessPointNotFound(_) => "AccessPointNotFound",
            EfsError::AccessPointAlreadyExists(_) => "AccessPointAlreadyExists",
            EfsError::AccessPointLimitExceeded(_) => "AccessPointLimitExceeded",
            EfsError::PolicyNotFound(_) => "PolicyNotFound",
            EfsError::InvalidPolicy(_) => "InvalidPolicyException",
            EfsError::Internal(e) => return e,
        };
        AwsError::modeled("efs", code, msg)
    }
}

impl From<AwsError> for EfsError {
    fn from(e: AwsError) -> Self {
        EfsError::Internal(e)
    }
}

pub type EfsResult<T> = Result<T, EfsError>;

/// One file system as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileSystem {
    pub id: String,
    pub creation_token: String,
    pub created: i64,
    pub performance_mode: String,
    pub throughput_mode: String,
    pub provisioned_mibps: Option<f64>,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    /// One Zone file systems name their zone.
    pub availability_zone: Option<(String, String)>,
    pub tags: BTreeMap<String, String>,
    pub replication_overwrite: String,
    /// PutLifecycleConfiguration's policies, as given.
    pub lifecycle: Vec<Value>,
    /// `ENABLED` / `DISABLED` (PutBackupPolicy).
    pub backup: Option<String>,
    /// The resource policy (PutFileSystemPolicy), JSON text.
    pub policy: Option<String>,
}

/// One mount target as stored (its ENI lives in EC2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountTarget {
    pub id: String,
    pub file_system_id: String,
    pub subnet_id: String,
    pub vpc_id: String,
    pub ip: String,
    pub eni_id: String,
    pub az: String,
    pub az_id: String,
    pub security_groups: Vec<String>,
}

/// One access point as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessPoint {
    pub id: String,
    pub file_system_id: String,
    pub client_token: String,
    pub posix_user: Option<Value>,
    pub root_directory: Value,
    pub tags: BTreeMap<String, String>,
}

pub fn fs_key(ctx: &RequestContext, id: &str) -> String {
    resources::key(ctx, "efs", "file-system", id)
}
pub fn mt_key(ctx: &RequestContext, id: &str) -> String {
    resources::key(ctx, "efs", "mount-target", id)
}
pub fn ap_key(ctx: &RequestContext, id: &str) -> String {
    resources::key(ctx, "efs", "access-point", id)
}

pub fn fs_arn(ctx: &RequestContext, id: &str) -> String {
    format!(
        "arn:aws:elasticfilesystem:{}:{}:file-system/{id}",
        ctx.region, ctx.account_id
    )
}
pub fn ap_arn(ctx: &RequestContext, id: &str) -> String {
    format!(
        "arn:aws:elasticfilesystem:{}:{}:access-point/{id}",
        ctx.region, ctx.account_id
    )
}

pub fn req_str<'a>(input: &'a Value, member: &str) -> EfsResult<&'a str> {
    input
        .get(member)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| EfsError::BadRequest(format!("{member} is required.")))
}

pub fn opt_str<'a>(input: &'a Value, member: &str) -> Option<&'a str> {
    input.get(member).and_then(Value::as_str)
}

/// Tags from a `Tags` list of `{Key, Value}`.
pub fn tags_of(input: &Value) -> BTreeMap<String, String> {
    input
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some((
                t["Key"].as_str()?.to_string(),
                t["Value"].as_str()?.to_string(),
            ))
        })
        .collect()
}

pub fn tags_list(tags: &BTreeMap<String, String>) -> Value {
    json!(
        tags.iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect::<Vec<_>>()
    )
}

pub async fn load_fs(ctx: &RequestContext, id: &str) -> EfsResult<(FileSystem, Revision)> {
    resources::get(&*ctx.store, &fs_key(ctx, id))
        .await?
        .ok_or_else(|| EfsError::FileSystemNotFound(id.to_string()))
}

pub async fn mount_targets_of(ctx: &RequestContext, fs_id: &str) -> EfsResult<Vec<MountTarget>> {
    let all: Vec<MountTarget> =
        resources::list(&*ctx.store, &resources::prefix_of(&mt_key(ctx, "x"))).await?;
    Ok(all
        .into_iter()
        .filter(|m| m.file_system_id == fs_id)
        .collect())
}

pub async fn access_points_of(ctx: &RequestContext, fs_id: &str) -> EfsResult<Vec<AccessPoint>> {
    let all: Vec<AccessPoint> =
        resources::list(&*ctx.store, &resources::prefix_of(&ap_key(ctx, "x"))).await?;
    Ok(all
        .into_iter()
        .filter(|a| a.file_system_id == fs_id)
        .collect())
}

/// Opaque paging marker: the offset into a sorted listing.
pub fn marker_of(offset: usize) -> String {
    resources::offset_token(offset)
}

pub fn offset_of(marker: Option<&str>) -> EfsResult<usize> {
    match marker {
        None => Ok(0),
        Some(m) => resources::offset_from_token(m)
            .ok_or_else(|| EfsError::BadRequest("The marker is invalid.".into())),
    }
}

/// `MaxItems`/`MaxResults` (sent as query strings: numbers or text).
pub fn page_size(input: &Value, member: &str, default: usize) -> EfsResult<usize> {
    let n = match input.get(member) {
        None | Some(Value::Null) => return Ok(default),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    match n {
        Some(n) if n >= 1 => Ok(n as usize),
        _ => Err(EfsError::BadRequest(format!(
            "{member} must be a positive integer."
        ))),
    }
}
