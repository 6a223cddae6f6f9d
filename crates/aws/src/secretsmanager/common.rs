//! What every Secrets Manager operation group shares: the typed error (turned into the wire error in
//! one place, `From<SmError> for AwsError`), the secret record, `SecretId` resolution (name, full ARN,
//! or ARN without the random suffix), value sealing with KMS, and times.
//!
//! Secrets live under `/aws/<account>/<region>/secretsmanager/secret/<name>`; versions live inside the
//! secret record so staging-label moves are one atomic write.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::{Precondition, Revision};

use crate::context::RequestContext;
use crate::resources;

pub const NOT_FOUND: &str = "Secrets Manager can't find the specified secret.";
pub const MARKED_FOR_DELETION: &str =
    "You can't perform this operation on the secret because it was marked for deletion.";

/// Secrets Manager's modelled errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmError {
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceExists(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    InvalidNextToken(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    Internal(AwsError),
}

impl From<SmError> for AwsError {
    fn from(e: SmError) -> Self {
        let (code, msg) = match e {
            SmError::ResourceNotFound(m) => ("ResourceNotFoundException", m),
            SmError::ResourceExists(m) => ("ResourceExistsException", m),
            SmError::InvalidRequest(m) => ("InvalidRequestException", m),
            SmError::InvalidParameter(m) => ("InvalidParameterException", m),
            SmError::InvalidNextToken(m) => ("InvalidNextTokenException", m),
            SmError::MalformedPolicyDocument(m) => ("MalformedPolicyDocumentException", m),
            SmError::Internal(e) => return e,
        };
        AwsError::modeled("secretsmanager", code, msg)
    }
}

impl From<AwsError> for SmError {
    fn from(e: AwsError) -> Self {
        SmError::Internal(e)
    }
}

pub type SmResult<T> = Result<T, SmError>;

/// One version of a secret's value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Version {
    pub id: String,
    pub stages: Vec<String>,
    pub created: String,
    /// Plaintext when the secret names no KMS key.
    pub string: Option<String>,
    /// Base64, plaintext when the secret names no KMS key.
    pub binary: Option<String>,
    /// Base64 KMS ciphertext of `S<string>` or `B<bytes>` when the secret names a KMS key.
    pub sealed: Option<String>,
}

/// One secret as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretRecord {
    pub name: String,
    pub arn: String,
    pub description: Option<String>,
    pub kms_key_id: Option<String>,
    pub created: String,
    pub last_changed: String,
    /// When the deletion takes effect; set = scheduled for deletion.
    pub deleted: Option<String>,
    pub tags: Vec<(String, String)>,
    pub versions: BTreeMap<String, Version>,
    /// The resource policy (PutResourcePolicy), JSON text.
    #[serde(default)]
    pub policy: Option<String>,
}

impl SecretRecord {
    /// Refuse value operations on a secret scheduled for deletion, with AWS's wording.
    pub fn live(&self) -> SmResult<()> {
        match self.deleted {
            Some(_) => Err(SmError::InvalidRequest(MARKED_FOR_DELETION.into())),
            None => Ok(()),
        }
    }

    pub fn version_with_stage(&self, stage: &str) -> Option<&Version> {
        self.versions
            .values()
            .find(|v| v.stages.iter().any(|s| s == stage))
    }

    /// `VersionIdsToStages` (versions with no label are deprecated and not shown).
    pub fn version_stages(&self) -> Value {
        let map: serde_json::Map<String, Value> = self
            .versions
            .values()
            .filter(|v| !v.stages.is_empty())
            .map(|v| (v.id.clone(), json!(v.stages)))
            .collect();
        Value::Object(map)
    }

    /// The DescribeSecret / ListSecrets entry.
    pub fn describe(&self) -> Value {
        let mut out = json!({
            "ARN": self.arn,
            "Name": self.name,
            "RotationEnabled": false,
            "LastChangedDate": self.last_changed,
            "CreatedDate": self.created,
            "VersionIdsToStages": self.version_stages(),
            "SecretVersionsToStages": self.version_stages(),
        });
        if let Some(d) = &self.description {
            out["Description"] = json!(d);
        }
        if let Some(k) = &self.kms_key_id {
            out["KmsKeyId"] = json!(k);
        }
        if let Some(d) = &self.deleted {
            out["DeletedDate"] = json!(d);
        }
        if !self.tags.is_empty() {
            out["Tags"] = json!(
                self.tags
                    .iter()
                    .map(|(k, v)| json!({"Key": k, "Value": v}))
                    .collect::<Vec<_>>()
            );
        }
        out
    }
}

pub fn secret_key(ctx: &RequestContext, name: &str) -> String {
    resources::key(ctx, "secretsmanager", "secret", name)
}

/// `arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 random chars>`.
pub fn new_arn(ctx: &RequestContext, name: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    let suffix: String = (0..6)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!(
        "arn:aws:secretsmanager:{}:{}:secret:{name}-{suffix}",
        ctx.region, ctx.account_id
    )
}

/// Now, to the millisecond, RFC 3339.
pub fn now() -> String {
    let ms = jiff::Timestamp::now().as_millisecond();
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

pub fn req_str<'a>(input: &'a Value, member: &str) -> SmResult<&'a str> {
    input.get(member).and_then(Value::as_str).ok_or_else(|| {
        SmError::InvalidParameter(format!("Invalid parameter: {member} must be given."))
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

/// A secret whose recovery window has passed is gone: purge it and answer as if it never existed.
async fn expire(
    ctx: &RequestContext,
    s: SecretRecord,
    rev: Revision,
) -> SmResult<Option<(SecretRecord, Revision)>> {
    let passed = s
        .deleted
        .as_deref()
        .and_then(|d| d.parse::<jiff::Timestamp>().ok())
        .is_some_and(|d| d <= jiff::Timestamp::now());
    if !passed {
        return Ok(Some((s, rev)));
    }
    let op = skiff_store::Op::Delete {
        key: secret_key(ctx, &s.name),
        precondition: Precondition::ModRevision(rev),
    };
    // A concurrent writer (restore) wins; either way this secret is not ours to show now.
    let _ = resources::commit(&*ctx.store, vec![op]).await;
    Ok(None)
}

/// Find by name, full ARN, or ARN without its random suffix.
pub async fn find(
    ctx: &RequestContext,
    secret_id: &str,
) -> SmResult<Option<(SecretRecord, Revision)>> {
    let own = format!(
        "arn:aws:secretsmanager:{}:{}:secret:",
        ctx.region, ctx.account_id
    );
    let found = if let Some(rest) = secret_id.strip_prefix(&own) {
        let mut candidates = vec![rest.to_string()];
        if let Some((name, suffix)) = rest.rsplit_once('-')
            && suffix.len() == 6
        {
            candidates.insert(0, name.to_string());
        }
        let mut hit = None;
        for name in candidates {
            if let Some((s, rev)) =
                resources::get::<SecretRecord>(&*ctx.store, &secret_key(ctx, &name)).await?
                && (s.arn == secret_id || format!("{own}{}", s.name) == secret_id)
            {
                hit = Some((s, rev));
                break;
            }
        }
        hit
    } else if secret_id.starts_with("arn:") {
        None
    } else {
        resources::get::<SecretRecord>(&*ctx.store, &secret_key(ctx, secret_id)).await?
    };
    match found {
        Some((s, rev)) => expire(ctx, s, rev).await,
        None => Ok(None),
    }
}

pub async fn load(ctx: &RequestContext, secret_id: &str) -> SmResult<(SecretRecord, Revision)> {
    find(ctx, secret_id)
        .await?
        .ok_or_else(|| SmError::ResourceNotFound(NOT_FOUND.into()))
}

/// Write back a secret read at `rev`.
pub async fn save(ctx: &RequestContext, s: &SecretRecord, rev: Revision) -> SmResult<()> {
    let op = resources::put_op(&secret_key(ctx, &s.name), s, Precondition::ModRevision(rev));
    resources::commit(&*ctx.store, vec![op])
        .await
        .map(|_| ())
        .map_err(|e| match e {
            Some(e) => SmError::Internal(e),
            None => SmError::InvalidRequest(
                "The secret was modified concurrently; retry the request.".into(),
            ),
        })
}

/// The value a request carries: exactly one of `SecretString` / `SecretBinary`, or none.
#[derive(Debug, Clone, PartialEq)]
pub enum SecretValue {
    String(String),
    /// Base64 as the wire carries it.
    Binary(String),
}

pub fn value_of(input: &Value) -> SmResult<Option<SecretValue>> {
    match (opt_str(input, "SecretString"), opt_str(input, "SecretBinary")) {
        (Some(_), Some(_)) => Err(SmError::InvalidParameter(
            "You can't specify both a binary secret value and a string secret value in the same secret.".into(),
        )),
        (Some(s), None) => Ok(Some(SecretValue::String(s.to_string()))),
        (None, Some(b)) => Ok(Some(SecretValue::Binary(b.to_string()))),
        (None, None) => Ok(None),
    }
}

fn seal_context(arn: &str, version: &str) -> BTreeMap<String, String> {
    // The context AWS binds for secret values.
    BTreeMap::from([
        ("SecretARN".to_string(), arn.to_string()),
        ("SecretVersionId".to_string(), version.to_string()),
    ])
}

/// A new version holding `value`, sealed with the secret's KMS key when it names one.
pub async fn new_version(
    ctx: &RequestContext,
    secret: &SecretRecord,
    id: &str,
    value: &SecretValue,
) -> SmResult<Version> {
    let mut v = Version {
        id: id.to_string(),
        stages: Vec::new(),
        created: now(),
        string: None,
        binary: None,
        sealed: None,
    };
    match &secret.kms_key_id {
        Some(key) => {
            let mut plain = Vec::new();
            match value {
                SecretValue::String(s) => {
                    plain.push(b'S');
                    plain.extend_from_slice(s.as_bytes());
                }
                SecretValue::Binary(b) => {
                    plain.push(b'B');
                    plain.extend_from_slice(&B64.decode(b).map_err(|_| {
                        SmError::InvalidParameter("SecretBinary is not valid base64.".into())
                    })?);
                }
            }
            let (blob, _) = crate::kms::encrypt(ctx, key, &plain, &seal_context(&secret.arn, id))
                .await
                .map_err(|e| {
                    SmError::InvalidRequest(format!("Access to KMS is not allowed: {}", e.message))
                })?;
            v.sealed = Some(B64.encode(blob));
        }
        None => match value {
            SecretValue::String(s) => v.string = Some(s.clone()),
            SecretValue::Binary(b) => v.binary = Some(b.clone()),
        },
    }
    Ok(v)
}

/// The plaintext value of a version (unsealing with KMS when needed).
pub async fn open_version(
    ctx: &RequestContext,
    secret: &SecretRecord,
    v: &Version,
) -> SmResult<SecretValue> {
    if let Some(s) = &v.string {
        return Ok(SecretValue::String(s.clone()));
    }
    if let Some(b) = &v.binary {
        return Ok(SecretValue::Binary(b.clone()));
    }
    let blob = v
        .sealed
        .as_deref()
        .and_then(|s| B64.decode(s).ok())
        .ok_or_else(|| {
            SmError::Internal(
                AwsError::new("InternalServiceError", "corrupt secret version").with_status(500),
            )
        })?;
    let (plain, _) = crate::kms::decrypt(ctx, &blob, &seal_context(&secret.arn, &v.id))
        .await
        .map_err(|e| {
            SmError::InvalidRequest(format!("Access to KMS is not allowed: {}", e.message))
        })?;
    match plain.split_first() {
        Some((b'S', rest)) => Ok(SecretValue::String(
            String::from_utf8_lossy(rest).into_owned(),
        )),
        Some((b'B', rest)) => Ok(SecretValue::Binary(B64.encode(rest))),
        _ => Err(SmError::Internal(
            AwsError::new("InternalServiceError", "corrupt secret version").with_status(500),
        )),
    }
}

/// Give `stages` to version `id`, taking them from whichever version held them; when AWSCURRENT moves,
/// the version that lost it becomes AWSPREVIOUS (and the old AWSPREVIOUS loses that label).
pub fn move_stages(secret: &mut SecretRecord, id: &str, stages: &[String]) {
    let old_current = secret
        .version_with_stage("AWSCURRENT")
        .map(|v| v.id.clone())
        .filter(|old| old != id);
    for v in secret.versions.values_mut() {
        if v.id != id {
            v.stages.retain(|s| !stages.contains(s));
        }
    }
    if let Some(v) = secret.versions.get_mut(id) {
        for s in stages {
            if !v.stages.contains(s) {
                v.stages.push(s.clone());
            }
        }
    }
    if stages.iter().any(|s| s == "AWSCURRENT")
        && let Some(old) = old_current
    {
        for v in secret.versions.values_mut() {
            v.stages.retain(|s| s != "AWSPREVIOUS");
        }
        if let Some(v) = secret.versions.get_mut(&old) {
            v.stages.push("AWSPREVIOUS".into());
        }
    }
    // AWS keeps about 100 versions: drop the oldest deprecated (unlabelled) ones beyond that.
    while secret.versions.len() > 100 {
        let Some(oldest) = secret
            .versions
            .values()
            .filter(|v| v.stages.is_empty())
            .min_by(|a, b| a.created.cmp(&b.created))
            .map(|v| v.id.clone())
        else {
            break;
        };
        secret.versions.remove(&oldest);
    }
}

/// `ClientRequestToken` or a fresh UUID; an existing token is idempotent only for the same value.
pub fn version_id(input: &Value) -> SmResult<String> {
    match opt_str(input, "ClientRequestToken") {
        Some(t) if (32..=64).contains(&t.len()) => Ok(t.to_string()),
        Some(_) => Err(SmError::InvalidParameter(
            "ClientRequestToken must be 32-64 characters long.".into(),
        )),
        None => Ok(uuid::Uuid::new_v4().to_string()),
    }
}

pub fn tags_of(input: &Value) -> Vec<(String, String)> {
    input["Tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some((
                t["Key"].as_str()?.to_string(),
                t["Value"].as_str().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}
