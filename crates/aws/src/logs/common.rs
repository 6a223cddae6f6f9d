//! What every CloudWatch Logs operation group shares: the typed error (turned into the wire error in
//! one place, `From<LogsError> for AwsError`), the group/stream/event-batch records, store keys and
//! name checks.
//!
//! Layout: `/aws/<account>/<region>/logs/group/<name>`, `…/logs/stream/<group>/<stream>` and one record
//! per accepted `PutLogEvents` batch at `…/logs/events/<group>/<stream>/<seq>`. Names are escaped so
//! that a `/` in a group name (`/aws/eks/prod/cluster`) never nests keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::Revision;

use crate::context::RequestContext;
use crate::resources;

pub const GROUP_NOT_FOUND: &str = "The specified log group does not exist.";
pub const STREAM_NOT_FOUND: &str = "The specified log stream does not exist.";

/// CloudWatch Logs' modelled errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogsError {
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceAlreadyExists(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    Internal(AwsError),
}

impl From<LogsError> for AwsError {
    fn from(e: LogsError) -> Self {
        let (code, msg) = match e {
            LogsError::ResourceNotFound(m) => ("ResourceNotFoundException", m),
            LogsError::ResourceAlreadyExists(m) => ("ResourceAlreadyExistsException", m),
            LogsError::InvalidParameter(m) => ("InvalidParameterException", m),
            LogsError::Internal(e) => return e,
        };
        AwsError::modeled("logs", code, msg)
    }
}

impl From<AwsError> for LogsError {
    fn from(e: AwsError) -> Self {
        LogsError::Internal(e)
    }
}

pub type LogsResult<T> = Result<T, LogsError>;

/// The retention periods PutRetentionPolicy accepts (days).
pub const RETENTION_DAYS: &[i64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// One log group as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogGroup {
    pub name: String,
    pub created_ms: i64,
    pub retention_days: Option<i64>,
    pub kms_key_id: Option<String>,
    /// `STANDARD`, `INFREQUENT_ACCESS` or `DELIVERY`.
    pub class: String,
    pub tags: BTreeMap<String, String>,
}

/// One log stream as stored; the counters move with every accepted batch.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogStream {
    pub group: String,
    pub name: String,
    pub created_ms: i64,
    pub first_event_ms: Option<i64>,
    pub last_event_ms: Option<i64>,
    pub last_ingestion_ms: Option<i64>,
    pub stored_bytes: u64,
    /// Batches accepted so far (the next batch's sequence number).
    pub batches: u64,
}

/// One accepted event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "t")]
    pub timestamp: i64,
    #[serde(rename = "m")]
    pub message: String,
    #[serde(rename = "i")]
    pub ingestion: i64,
}

/// The events one PutLogEvents call stored, in the caller's (chronological) order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventBatch {
    pub seq: u64,
    pub events: Vec<Event>,
}

/// Escape a name for one key segment: `[A-Za-z0-9._-]` stay, every other byte becomes `%XX`.
pub fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn group_key(ctx: &RequestContext, group: &str) -> String {
    resources::key(ctx, "logs", "group", &escape(group))
}

pub fn stream_prefix(ctx: &RequestContext, group: &str) -> String {
    resources::key(ctx, "logs", "stream", &format!("{}/", escape(group)))
}

pub fn stream_key(ctx: &RequestContext, group: &str, stream: &str) -> String {
    format!("{}{}", stream_prefix(ctx, group), escape(stream))
}

pub fn events_prefix(ctx: &RequestContext, group: &str, stream: &str) -> String {
    resources::key(
        ctx,
        "logs",
        "events",
        &format!("{}/{}/", escape(group), escape(stream)),
    )
}

pub fn group_events_prefix(ctx: &RequestContext, group: &str) -> String {
    resources::key(ctx, "logs", "events", &format!("{}/", escape(group)))
}

pub fn batch_key(ctx: &RequestContext, group: &str, stream: &str, seq: u64) -> String {
    format!("{}{seq:016x}", events_prefix(ctx, group, stream))
}

/// `arn:aws:logs:<region>:<account>:log-group:<name>` (DescribeLogGroups' `logGroupArn`; tagging ARN).
pub fn group_arn(ctx: &RequestContext, group: &str) -> String {
    format!(
        "arn:aws:logs:{}:{}:log-group:{group}",
        ctx.region, ctx.account_id
    )
}

pub fn stream_arn(ctx: &RequestContext, group: &str, stream: &str) -> String {
    format!("{}:log-stream:{stream}", group_arn(ctx, group))
}

pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Group names: 1-512 of `[.-_/#A-Za-z0-9]`.
pub fn check_group_name(name: &str) -> LogsResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 512
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/' | b'#'));
    if ok {
        Ok(())
    } else {
        Err(LogsError::InvalidParameter(format!(
            "1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"
        )))
    }
}

/// Stream names: 1-512 characters, no `:` or `*`.
pub fn check_stream_name(name: &str) -> LogsResult<()> {
    if !name.is_empty() && name.len() <= 512 && !name.contains([':', '*']) {
        Ok(())
    } else {
        Err(LogsError::InvalidParameter(format!(
            "1 validation error detected: Value '{name}' at 'logStreamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [^:*]*"
        )))
    }
}

pub fn req_str<'a>(input: &'a Value, member: &str) -> LogsResult<&'a str> {
    input.get(member).and_then(Value::as_str).ok_or_else(|| {
        LogsError::InvalidParameter(format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
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

pub fn opt_bool(input: &Value, member: &str) -> Option<bool> {
    input.get(member).and_then(Value::as_bool)
}

/// The group a request names, by `logGroupName` or `logGroupIdentifier` (a name or an ARN).
pub fn group_of(input: &Value) -> LogsResult<String> {
    let name = opt_str(input, "logGroupName");
    let ident = opt_str(input, "logGroupIdentifier");
    match (name, ident) {
        (Some(_), Some(_)) => Err(LogsError::InvalidParameter(
            "LogGroup name and LogGroup ARN are mutually exclusive parameters.".into(),
        )),
        (Some(n), None) => Ok(n.to_string()),
        (None, Some(i)) => Ok(name_from_identifier(i).to_string()),
        (None, None) => Err(LogsError::InvalidParameter(
            "Either LogGroup name or LogGroup ARN should be provided.".into(),
        )),
    }
}

/// `arn:aws:logs:r:a:log-group:NAME[:*]` or a bare name, to the name.
pub fn name_from_identifier(ident: &str) -> &str {
    match ident.split_once(":log-group:") {
        Some((_, rest)) => rest.strip_suffix(":*").unwrap_or(rest),
        None => ident,
    }
}

pub async fn load_group(ctx: &RequestContext, group: &str) -> LogsResult<(LogGroup, Revision)> {
    resources::get(&*ctx.store, &group_key(ctx, group))
        .await?
        .ok_or_else(|| LogsError::ResourceNotFound(GROUP_NOT_FOUND.into()))
}

pub async fn load_stream(
    ctx: &RequestContext,
    group: &str,
    stream: &str,
) -> LogsResult<(LogStream, Revision)> {
    load_group(ctx, group).await?;
    resources::get(&*ctx.store, &stream_key(ctx, group, stream))
        .await?
        .ok_or_else(|| LogsError::ResourceNotFound(STREAM_NOT_FOUND.into()))
}

/// Tags from a `tags` map member.
pub fn tags_of(input: &Value, member: &str) -> BTreeMap<String, String> {
    input
        .get(member)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Opaque paging token over a sorted list: the offset, so any page boundary resumes exactly.
pub fn token_of(offset: usize) -> String {
    resources::offset_token(offset)
}

pub fn offset_of(token: Option<&str>) -> LogsResult<usize> {
    match token {
        None => Ok(0),
        Some(t) => resources::offset_from_token(t).ok_or_else(|| {
            LogsError::InvalidParameter("The specified nextToken is invalid.".into())
        }),
    }
}

/// The DescribeLogStreams entry.
pub fn describe_stream(ctx: &RequestContext, s: &LogStream) -> Value {
    let mut out = json!({
        "logStreamName": s.name,
        "creationTime": s.created_ms,
        "arn": stream_arn(ctx, &s.group, &s.name),
        "storedBytes": 0,
    });
    if let Some(t) = s.first_event_ms {
        out["firstEventTimestamp"] = json!(t);
    }
    if let Some(t) = s.last_event_ms {
        out["lastEventTimestamp"] = json!(t);
    }
    if let Some(t) = s.last_ingestion_ms {
        out["lastIngestionTime"] = json!(t);
        out["uploadSequenceToken"] = json!(sequence_token(s.batches));
    }
    out
}

/// The legacy sequence token PutLogEvents still returns (ignored on input since 2023, as on AWS).
pub fn sequence_token(batches: u64) -> String {
    format!("{batches:056}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_keys_flat() {
        assert_eq!(
            escape("/aws/eks/prod/cluster"),
            "%2Faws%2Feks%2Fprod%2Fcluster"
        );
        assert_eq!(escape("kube-apiserver-1a.b_c"), "kube-apiserver-1a.b_c");
        assert!(!escape("a/b#c d").contains(['/', '#', ' ']));
    }

    #[test]
    fn identifiers_name_groups() {
        assert_eq!(
            name_from_identifier("arn:aws:logs:us-east-1:000000000000:log-group:/aws/x:*"),
            "/aws/x"
        );
        assert_eq!(name_from_identifier("/aws/x"), "/aws/x");
    }

    #[test]
    fn names_are_checked() {
        assert!(check_group_name("/aws/eks/prod/cluster").is_ok());
        assert!(check_group_name("bad name").is_err());
        assert!(check_group_name("").is_err());
        assert!(check_stream_name("kube-apiserver-abc").is_ok());
        assert!(check_stream_name("a:b").is_err());
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        assert_eq!(offset_of(Some(&token_of(42))).unwrap(), 42);
        assert_eq!(offset_of(None).unwrap(), 0);
        assert!(offset_of(Some("nope")).is_err());
    }
}
