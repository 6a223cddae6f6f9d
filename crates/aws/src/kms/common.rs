//! What every KMS operation group shares: the typed error (turned into the wire error in one place,
//! `From<KmsError> for AwsError`), the key record, key-id resolution (id, key ARN, alias name, alias
//! ARN), paging and times.
//!
//! Keys live under `/aws/<account>/<region>/kms/key/<uuid>`, aliases under `.../kms/alias/<name>` (the
//! name without `alias/`). Key material is kept in the key record, base64, and never leaves it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::{Precondition, Revision};

use crate::context::RequestContext;
use crate::resources;

/// KMS's modelled errors; the code is the model's error shape name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KmsError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Disabled(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidAliasName(String),
    #[error("{0}")]
    InvalidCiphertext(String),
    #[error("{0}")]
    IncorrectKey(String),
    #[error("{0}")]
    InvalidKeyUsage(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    UnsupportedOperation(String),
    #[error("{0}")]
    NotAuthorized(String),
    #[error("{0}")]
    InvalidMarker(String),
    #[error("{0}")]
    Tag(String),
    /// Constraint failures KMS answers as `ValidationException` (not in the model, sent by the service).
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Internal(AwsError),
}

impl From<KmsError> for AwsError {
    fn from(e: KmsError) -> Self {
        let (code, msg) = match e {
            KmsError::NotFound(m) => ("NotFoundException", m),
            KmsError::Disabled(m) => ("DisabledException", m),
            KmsError::InvalidState(m) => ("KMSInvalidStateException", m),
            KmsError::AlreadyExists(m) => ("AlreadyExistsException", m),
            KmsError::InvalidAliasName(m) => ("InvalidAliasNameException", m),
            KmsError::InvalidCiphertext(m) => ("InvalidCiphertextException", m),
            KmsError::IncorrectKey(m) => ("IncorrectKeyException", m),
            KmsError::InvalidKeyUsage(m) => ("InvalidKeyUsageException", m),
            KmsError::MalformedPolicyDocument(m) => ("MalformedPolicyDocumentException", m),
            KmsError::UnsupportedOperation(m) => ("UnsupportedOperationException", m),
            KmsError::NotAuthorized(m) => ("NotAuthorizedException", m),
            KmsError::InvalidMarker(m) => ("InvalidMarkerException", m),
            KmsError::Tag(m) => ("TagException", m),
            KmsError::Validation(m) => return AwsError::new("ValidationException", m),
            KmsError::Internal(e) => return e,
        };
        AwsError::modeled("kms", code, msg)
    }
}

impl From<AwsError> for KmsError {
    fn from(e: AwsError) -> Self {
        KmsError::Internal(e)
    }
}

pub type KmsResult<T> = Result<T, KmsError>;

/// One KMS key as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key_id: String,
    pub arn: String,
    pub account: String,
    pub created: String,
    pub description: String,
    pub key_usage: String,
    pub key_spec: String,
    /// `Enabled`, `Disabled` or `PendingDeletion`.
    pub state: String,
    pub deletion_date: Option<String>,
    pub pending_window_days: Option<i64>,
    pub policy: String,
    pub rotation_enabled: bool,
    pub rotation_period_days: i64,
    pub tags: BTreeMap<String, String>,
    /// 32 random bytes, base64: the current AES-256-GCM key.
    pub material: String,
    /// Earlier materials, oldest first, kept so blobs sealed before a rotation still open: a blob's
    /// generation `g` names `retired_material[g]`, or `material` when `g == retired_material.len()`.
    #[serde(default)]
    pub retired_material: Vec<String>,
    /// `(RotationDate, RotationType)` of each rotation, oldest first.
    #[serde(default)]
    pub rotations: Vec<(String, String)>,
    /// `CUSTOMER`, or `AWS` for the `alias/aws/<service>` keys made on first use.
    #[serde(default = "customer")]
    pub manager: String,
}

fn customer() -> String {
    "CUSTOMER".into()
}

impl KeyRecord {
    /// `KeyMetadata` as DescribeKey/CreateKey answer it.
    pub fn metadata(&self) -> Value {
        let mut m = json!({
            "AWSAccountId": self.account,
            "KeyId": self.key_id,
            "Arn": self.arn,
            "CreationDate": self.created,
            "Enabled": self.state == "Enabled",
            "Description": self.description,
            "KeyUsage": self.key_usage,
            "KeyState": self.state,
            "Origin": "AWS_KMS",
            "KeyManager": self.manager,
            "CustomerMasterKeySpec": self.key_spec,
            "KeySpec": self.key_spec,
            "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
            "MultiRegion": false,
        });
        if let Some(d) = &self.deletion_date {
            m["DeletionDate"] = json!(d);
            m["PendingDeletionWindowInDays"] = json!(self.pending_window_days);
        }
        m
    }

    /// The material of generation `g`, if there is one.
    pub fn material_of(&self, g: usize) -> Option<&str> {
        match g.cmp(&self.retired_material.len()) {
            std::cmp::Ordering::Less => Some(&self.retired_material[g]),
            std::cmp::Ordering::Equal => Some(&self.material),
            std::cmp::Ordering::Greater => None,
        }
    }

    /// Usable for cryptographic operations, or the error KMS gives for this state.
    pub fn usable(&self) -> KmsResult<()> {
        match self.state.as_str() {
            "Enabled" => Ok(()),
            "Disabled" => Err(KmsError::Disabled(format!("{} is disabled.", self.arn))),
            _ => Err(KmsError::InvalidState(format!(
                "{} is pending deletion.",
                self.arn
            ))),
        }
    }

    /// Not pending deletion (what management operations such as Enable/PutKeyPolicy need).
    pub fn not_pending_deletion(&self) -> KmsResult<()> {
        if self.state == "PendingDeletion" {
            Err(KmsError::InvalidState(format!(
                "{} is pending deletion.",
                self.arn
            )))
        } else {
            Ok(())
        }
    }
}

/// One alias as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AliasRecord {
    /// With the `alias/` prefix.
    pub name: String,
    pub arn: String,
    pub target_key_id: String,
    pub created: String,
    pub updated: String,
}

pub fn key_key(ctx: &RequestContext, id: &str) -> String {
    resources::key(ctx, "kms", "key", id)
}

pub fn alias_key(ctx: &RequestContext, name: &str) -> String {
    resources::key(
        ctx,
        "kms",
        "alias",
        name.strip_prefix("alias/").unwrap_or(name),
    )
}

pub fn key_arn(ctx: &RequestContext, id: &str) -> String {
    format!("arn:aws:kms:{}:{}:key/{id}", ctx.region, ctx.account_id)
}

pub fn alias_arn(ctx: &RequestContext, name: &str) -> String {
    format!("arn:aws:kms:{}:{}:{name}", ctx.region, ctx.account_id)
}

/// Now, to the millisecond, RFC 3339.
pub fn now() -> String {
    let ms = jiff::Timestamp::now().as_millisecond();
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

pub fn req_str<'a>(input: &'a Value, member: &str) -> KmsResult<&'a str> {
    input.get(member).and_then(Value::as_str).ok_or_else(|| {
        KmsError::Validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            lower_camel(member)
        ))
    })
}

pub fn opt_str<'a>(input: &'a Value, member: &str) -> Option<&'a str> {
    input.get(member).and_then(Value::as_str)
}

pub fn opt_i64(input: &Value, member: &str) -> Option<i64> {
    match input.get(member) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
}

pub fn opt_bool(input: &Value, member: &str) -> bool {
    match input.get(member) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn lower_camel(member: &str) -> String {
    let mut c = member.chars();
    c.next()
        .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// `aws/<service>` with a plain service name (`aws/ebs`, `aws/secretsmanager`).
pub fn is_aws_managed_alias(alias: &str) -> bool {
    alias.strip_prefix("aws/").is_some_and(|svc| {
        !svc.is_empty()
            && svc.len() <= 64
            && svc.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

/// Resolve what a caller passed as `KeyId` (key id, key ARN, `alias/name`, alias ARN) to the key record.
pub async fn resolve(ctx: &RequestContext, key_id: &str) -> KmsResult<(KeyRecord, Revision)> {
    let own_prefix = format!("arn:aws:kms:{}:{}:", ctx.region, ctx.account_id);
    let short = key_id.strip_prefix(&own_prefix).unwrap_or(key_id);
    if key_id.starts_with("arn:") && short == key_id {
        // An ARN of another account or region: not visible here.
        return Err(KmsError::NotFound(format!("Invalid arn {key_id}")));
    }
    let id = if let Some(alias) = short.strip_prefix("alias/") {
        match resources::get::<AliasRecord>(&*ctx.store, &alias_key(ctx, alias)).await? {
            Some((a, _)) => a.target_key_id,
            // AWS makes `alias/aws/<service>` keys the first time a service names them.
            None if is_aws_managed_alias(alias) => {
                return super::keys::ensure_aws_managed(ctx, short).await;
            }
            None => {
                return Err(KmsError::NotFound(format!(
                    "Alias {} is not found.",
                    alias_arn(ctx, short)
                )));
            }
        }
    } else if let Some(id) = short.strip_prefix("key/") {
        id.to_string()
    } else if key_id.starts_with("arn:") {
        return Err(KmsError::NotFound(format!("Invalid arn {key_id}")));
    } else {
        short.to_string()
    };
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(KmsError::NotFound(format!("Invalid keyId '{key_id}'")));
    }
    match resources::get::<KeyRecord>(&*ctx.store, &key_key(ctx, &id)).await? {
        Some(found) => Ok(found),
        None => Err(KmsError::NotFound(format!(
            "Key '{}' does not exist",
            key_arn(ctx, &id)
        ))),
    }
}

/// Write back a key read at `rev`; a concurrent writer makes the caller retry (KMS would answer 500).
pub async fn save_key(ctx: &RequestContext, key: &KeyRecord, rev: Revision) -> KmsResult<()> {
    let op = resources::put_op(
        &key_key(ctx, &key.key_id),
        key,
        Precondition::ModRevision(rev),
    );
    resources::commit(&*ctx.store, vec![op])
        .await
        .map(|_| ())
        .map_err(|e| {
            KmsError::Internal(e.unwrap_or_else(|| {
                AwsError::new("KMSInternalException", "The key was modified concurrently")
                    .with_status(500)
            }))
        })
}

/// One page of `items` after `marker` (an index we handed out), at most `limit` (1..=1000, default 100).
pub fn page<T: Clone>(
    items: &[T],
    input: &Value,
    default_limit: usize,
) -> KmsResult<(Vec<T>, Option<String>)> {
    let limit = opt_i64(input, "Limit").unwrap_or(default_limit as i64);
    if !(1..=1000).contains(&limit) {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 1000"
        )));
    }
    let start = match opt_str(input, "Marker") {
        Some(m) => m
            .parse::<usize>()
            .ok()
            .filter(|&i| i <= items.len())
            .ok_or_else(|| KmsError::InvalidMarker("Invalid marker".to_string()))?,
        None => 0,
    };
    let end = (start + limit as usize).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((items[start..end].to_vec(), next))
}

/// `{..., "Truncated": bool, "NextMarker"?}`.
pub fn paged(mut out: Value, next: Option<String>) -> Value {
    out["Truncated"] = json!(next.is_some());
    if let Some(m) = next {
        out["NextMarker"] = json!(m);
    }
    out
}

/// The policy a key gets when CreateKey names none: the account root may do everything.
pub fn default_policy(account: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
            "Action": "kms:*",
            "Resource": "*",
        }],
    })
    .to_string()
}

/// Key policies must be JSON objects with a `Statement`.
pub fn check_policy(policy: &str) -> KmsResult<()> {
    let doc: Value = serde_json::from_str(policy).map_err(|_| {
        KmsError::MalformedPolicyDocument("The key policy is not a valid JSON document.".into())
    })?;
    if !doc.is_object() || doc.get("Statement").is_none() {
        return Err(KmsError::MalformedPolicyDocument(
            "The key policy must contain a Statement.".into(),
        ));
    }
    Ok(())
}
