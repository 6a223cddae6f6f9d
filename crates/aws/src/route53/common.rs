//! What every Route 53 operation group shares: the typed error (turned into the wire error in one
//! place, `From<R53Error> for AwsError`), the hosted-zone record, DNS name normalisation and ordering,
//! ids and change records.
//!
//! Route 53 is global: zones live under `/aws/<account>/global/route53/hostedzone/<Z…>` with their
//! record sets inside (a change batch is one atomic write, as Route 53 applies batches atomically);
//! `caller-reference/<ref>` guards CreateHostedZone idempotency; `change/<C…>` backs GetChange.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::{Precondition, Revision};

use crate::context::RequestContext;
use crate::resources;

/// Route 53's modelled errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum R53Error {
    #[error("{0}")]
    NoSuchHostedZone(String),
    #[error("{0}")]
    HostedZoneAlreadyExists(String),
    #[error("{0}")]
    HostedZoneNotEmpty(String),
    #[error("{0}")]
    InvalidDomainName(String),
    /// Messages are joined as Route 53 renders them: `[m1, m2]`.
    #[error("[{}]", .0.join(", "))]
    InvalidChangeBatch(Vec<String>),
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    InvalidVpcId(String),
    #[error("{0}")]
    PublicZoneVpcAssociation(String),
    #[error("{0}")]
    VpcAssociationNotFound(String),
    #[error("{0}")]
    LastVpcAssociation(String),
    #[error("{0}")]
    ConflictingDomainExists(String),
    #[error("{0}")]
    NoSuchChange(String),
    #[error("{0}")]
    Internal(AwsError),
}

impl From<R53Error> for AwsError {
    fn from(e: R53Error) -> Self {
        let msg = e.to_string();
        let code = match e {
            R53Error::NoSuchHostedZone(_) => "NoSuchHostedZone",
            R53Error::HostedZoneAlreadyExists(_) => "HostedZoneAlreadyExists",
            R53Error::HostedZoneNotEmpty(_) => "HostedZoneNotEmpty",
            R53Error::InvalidDomainName(_) => "InvalidDomainName",
            R53Error::InvalidChangeBatch(_) => "InvalidChangeBatch",
            R53Error::InvalidInput(_) => "InvalidInput",
            R53Error::InvalidVpcId(_) => "InvalidVPCId",
            R53Error::PublicZoneVpcAssociation(_) => "PublicZoneVPCAssociation",
            R53Error::VpcAssociationNotFound(_) => "VPCAssociationNotFound",
            R53Error::LastVpcAssociation(_) => "LastVPCAssociation",
            R53Error::ConflictingDomainExists(_) => "ConflictingDomainExists",
            R53Error::NoSuchChange(_) => "NoSuchChange",
            R53Error::Internal(e) => return e,
        };
        AwsError::modeled("route53", code, msg)
    }
}

impl From<AwsError> for R53Error {
    fn from(e: AwsError) -> Self {
        R53Error::Internal(e)
    }
}

pub type R53Result<T> = Result<T, R53Error>;

/// One hosted zone as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Zone {
    /// `Z…` without the `/hostedzone/` prefix.
    pub id: String,
    /// Normalised: lower case, trailing dot.
    pub name: String,
    pub caller_reference: String,
    pub comment: Option<String>,
    pub private: bool,
    /// `(VPCRegion, VPCId)`.
    pub vpcs: Vec<(String, String)>,
    pub name_servers: Vec<String>,
    pub tags: Vec<(String, String)>,
    /// `ResourceRecordSet` shapes, names normalised, kept in Route 53's order.
    pub rrsets: Vec<Value>,
}

impl Zone {
    pub fn hosted_zone(&self) -> Value {
        let mut config = json!({"PrivateZone": self.private});
        if let Some(c) = &self.comment {
            config["Comment"] = json!(c);
        }
        json!({
            "Id": format!("/hostedzone/{}", self.id),
            "Name": self.name,
            "CallerReference": self.caller_reference,
            "Config": config,
            "ResourceRecordSetCount": self.rrsets.len(),
        })
    }

    pub fn vpcs(&self) -> Value {
        json!(
            self.vpcs
                .iter()
                .map(|(r, v)| json!({"VPCRegion": r, "VPCId": v}))
                .collect::<Vec<_>>()
        )
    }

    pub fn delegation_set(&self) -> Value {
        json!({ "NameServers": self.name_servers })
    }
}

pub fn zone_key(ctx: &RequestContext, id: &str) -> String {
    resources::global_key(ctx, "route53", "hostedzone", id)
}

pub fn caller_ref_key(ctx: &RequestContext, reference: &str) -> String {
    // Caller references are free text: hex keeps them one key segment.
    resources::global_key(ctx, "route53", "caller-reference", &hex::encode(reference))
}

pub fn change_key(ctx: &RequestContext, id: &str) -> String {
    resources::global_key(ctx, "route53", "change", id)
}

/// `/hostedzone/Z…` or `Z…` → `Z…`.
pub fn bare_zone_id(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

/// Route 53 style id: a letter then 20 upper-case alphanumerics.
pub fn new_id(first: char) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{first}{tail}")
}

pub fn now() -> String {
    let ms = jiff::Timestamp::now().as_millisecond();
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Lower case, trailing dot, `*` as Route 53 escapes it (`\052`).
pub fn normalize_name(name: &str) -> String {
    let mut n = name.trim().to_ascii_lowercase().replace('*', "\\052");
    if !n.ends_with('.') {
        n.push('.');
    }
    n
}

/// Labels right to left (`www.example.com.` → `com`, `example`, `www`): Route 53's listing order.
pub fn reversed_labels(name: &str) -> Vec<String> {
    name.trim_end_matches('.')
        .split('.')
        .rev()
        .map(str::to_string)
        .collect()
}

/// Whether `name` is the zone apex or below it.
pub fn in_zone(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}"))
}

/// A valid domain name: labels of 1..=63 characters, 255 in all.
pub fn valid_domain(name: &str) -> bool {
    let bare = name.trim_end_matches('.');
    !bare.is_empty()
        && name.len() <= 255
        && bare.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_\\*".contains(c))
        })
}

pub fn req_str<'a>(input: &'a Value, member: &str) -> R53Result<&'a str> {
    input
        .get(member)
        .and_then(Value::as_str)
        .ok_or_else(|| R53Error::InvalidInput(format!("{member} is required")))
}

pub fn opt_str<'a>(input: &'a Value, member: &str) -> Option<&'a str> {
    input.get(member).and_then(Value::as_str)
}

/// `MaxItems`: an integer string on the wire, `default` when absent, capped at `cap`.
pub fn max_items(input: &Value, default: usize, cap: usize) -> R53Result<usize> {
    let n = match input.get("MaxItems") {
        None => return Ok(default),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    match n {
        Some(n) if n >= 1 => Ok((n as usize).min(cap)),
        _ => Err(R53Error::InvalidInput(
            "1 validation error detected: Value at 'maxItems' failed to satisfy constraint: Member must be a positive integer".into(),
        )),
    }
}

pub async fn load(ctx: &RequestContext, id: &str) -> R53Result<(Zone, Revision)> {
    let bare = bare_zone_id(id);
    resources::get(&*ctx.store, &zone_key(ctx, bare))
        .await?
        .ok_or_else(|| R53Error::NoSuchHostedZone(format!("No hosted zone found with ID: {bare}")))
}

pub fn save_op(ctx: &RequestContext, zone: &Zone, rev: Revision) -> skiff_store::Op {
    resources::put_op(
        &zone_key(ctx, &zone.id),
        zone,
        Precondition::ModRevision(rev),
    )
}

/// A new change (`PENDING`, as Route 53 answers while it propagates) and the op that records it.
pub fn new_change(ctx: &RequestContext, comment: Option<&str>) -> (Value, skiff_store::Op) {
    let id = new_id('C');
    let mut info =
        json!({"Id": format!("/change/{id}"), "Status": "PENDING", "SubmittedAt": now()});
    if let Some(c) = comment {
        info["Comment"] = json!(c);
    }
    let op = resources::put_op(&change_key(ctx, &id), &info, Precondition::None);
    (info, op)
}

/// Commit ops that include a zone write guarded by its revision.
pub async fn commit(ctx: &RequestContext, ops: Vec<skiff_store::Op>) -> R53Result<()> {
    resources::commit(&*ctx.store, ops)
        .await
        .map(|_| ())
        .map_err(|e| match e {
            Some(e) => R53Error::Internal(e),
            None => R53Error::Internal(AwsError::modeled(
                "route53",
                "PriorRequestNotComplete",
                "The request was rejected because Route 53 was still processing a prior request.",
            )),
        })
}

pub fn tags_value(tags: &[(String, String)]) -> Value {
    json!(
        tags.iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect::<Vec<_>>()
    )
}
