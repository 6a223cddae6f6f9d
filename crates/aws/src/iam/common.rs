//! What every IAM operation group shares: the typed error (turned into the wire error in one place,
//! `From<IamError> for AwsError`), input accessors, record load/save, paging, tags, ARNs and times.
//!
//! IAM names (users, roles, groups, policies, instance profiles) are unique case-insensitively, so
//! records are keyed by the lower-cased name and keep the caller's spelling inside.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value, json};
use skiff_aws_model::AwsError;
use skiff_store::{Precondition, Revision, Store};

use crate::context::RequestContext;
use crate::resources;

/// IAM's modelled errors (codes and statuses from the botocore model's error shapes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IamError {
    #[error("{0}")]
    NoSuchEntity(String),
    #[error("{0}")]
    EntityAlreadyExists(String),
    #[error("{0}")]
    DeleteConflict(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    UnmodifiableEntity(String),
    #[error("{0}")]
    ConcurrentModification(String),
    #[error("{0}")]
    PolicyNotAttachable(String),
    #[error("{0}")]
    Internal(AwsError),
}

impl From<IamError> for AwsError {
    fn from(e: IamError) -> Self {
        let (code, status, msg) = match e {
            IamError::NoSuchEntity(m) => ("NoSuchEntity", 404, m),
            IamError::EntityAlreadyExists(m) => ("EntityAlreadyExists", 409, m),
            IamError::DeleteConflict(m) => ("DeleteConflict", 409, m),
            IamError::LimitExceeded(m) => ("LimitExceeded", 409, m),
            IamError::Validation(m) => ("ValidationError", 400, m),
            IamError::InvalidInput(m) => ("InvalidInput", 400, m),
            IamError::MalformedPolicyDocument(m) => ("MalformedPolicyDocument", 400, m),
            IamError::UnmodifiableEntity(m) => ("UnmodifiableEntity", 400, m),
            IamError::ConcurrentModification(m) => ("ConcurrentModification", 409, m),
            IamError::PolicyNotAttachable(m) => ("PolicyNotAttachable", 400, m),
            IamError::Internal(e) => return e,
        };
        AwsError::new(code, msg).with_status(status)
    }
}

impl From<AwsError> for IamError {
    fn from(e: AwsError) -> Self {
        IamError::Internal(e)
    }
}

pub type IamResult<T> = Result<T, IamError>;

// ---------- input accessors ----------

fn lower_camel(member: &str) -> String {
    let mut c = member.chars();
    match c.next() {
        Some(f) => f.to_ascii_lowercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// A required string member; missing → the model validator's wording.
pub fn req_str<'a>(input: &'a Value, member: &str) -> IamResult<&'a str> {
    match input.get(member) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(IamError::Validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            lower_camel(member)
        ))),
    }
}

pub fn opt_str<'a>(input: &'a Value, member: &str) -> Option<&'a str> {
    input.get(member).and_then(Value::as_str)
}

pub fn opt_i64(input: &Value, member: &str) -> IamResult<Option<i64>> {
    match input.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
            IamError::Validation(format!("Invalid value for {}", lower_camel(member)))
        }),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| {
            IamError::Validation(format!("Invalid value for {}", lower_camel(member)))
        }),
        Some(_) => Err(IamError::Validation(format!(
            "Invalid value for {}",
            lower_camel(member)
        ))),
    }
}

pub fn opt_bool(input: &Value, member: &str) -> bool {
    match input.get(member) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

pub fn str_list(input: &Value, member: &str) -> Vec<String> {
    match input.get(member) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// IAM entity names: `[\w+=,.@-]+`, 1..=max characters.
pub fn check_name(member: &str, name: &str, max: usize) -> IamResult<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(IamError::Validation(format!(
            "1 validation error detected: Value '{name}' at '{}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+",
            lower_camel(member)
        )))
    }
}

/// `Path`: defaults to `/`; must begin and end with `/`.
pub fn path_of(input: &Value) -> IamResult<String> {
    let path = opt_str(input, "Path").unwrap_or("/");
    let ok = path.starts_with('/')
        && path.ends_with('/')
        && path.len() <= 512
        && path.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c));
    if ok {
        Ok(path.to_string())
    } else {
        Err(IamError::Validation(
            "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.".into(),
        ))
    }
}

// ---------- times, ids, ARNs, documents ----------

/// Now, to the second, RFC 3339 (IAM dates carry no fractions).
pub fn now() -> String {
    let secs = jiff::Timestamp::now().as_second();
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

pub fn arn(account: &str, kind: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:{kind}{path}{name}")
}

/// IAM returns policy documents URL-encoded (botocore and terraform decode them).
pub fn encode_document(doc: &str) -> String {
    let mut out = String::with_capacity(doc.len() * 2);
    for b in doc.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------- tags ----------

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// `Tags` of the input; at most 50, keys 1..=128, values ..=256 characters.
pub fn tags_of(input: &Value) -> IamResult<Vec<Tag>> {
    let mut out: Vec<Tag> = Vec::new();
    if let Some(Value::Array(items)) = input.get("Tags") {
        for t in items {
            let key = t.get("Key").and_then(Value::as_str).unwrap_or_default();
            let value = t.get("Value").and_then(Value::as_str).unwrap_or_default();
            if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
                return Err(IamError::InvalidInput(format!(
                    "The specified tag key or value is invalid: {key}"
                )));
            }
            merge_tags(
                &mut out,
                vec![Tag {
                    key: key.into(),
                    value: value.into(),
                }],
            );
        }
    }
    if out.len() > 50 {
        return Err(IamError::LimitExceeded(
            "The number of tags has reached the maximum limit.".into(),
        ));
    }
    Ok(out)
}

/// Add or overwrite tags by key.
pub fn merge_tags(into: &mut Vec<Tag>, new: Vec<Tag>) {
    for t in new {
        match into.iter_mut().find(|x| x.key == t.key) {
            Some(x) => x.value = t.value,
            None => into.push(t),
        }
    }
}

pub fn tags_value(tags: &[Tag]) -> Value {
    serde_json::to_value(tags).unwrap_or(Value::Array(Vec::new()))
}

/// Put `Tags` in an output object only when there are any (as IAM does).
pub fn put_tags(obj: &mut Map<String, Value>, tags: &[Tag]) {
    if !tags.is_empty() {
        obj.insert("Tags".into(), tags_value(tags));
    }
}

// ---------- paging ----------

/// Page `items` by `Marker`/`MaxItems` (default 100). The marker is the offset, opaque to clients.
pub fn page(list_member: &str, items: Vec<Value>, input: &Value) -> IamResult<Value> {
    let max = opt_i64(input, "MaxItems")?.unwrap_or(100);
    if !(1..=1000).contains(&max) {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value '{max}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000"
        )));
    }
    let start = match opt_str(input, "Marker") {
        None => 0,
        Some(m) => m
            .strip_prefix("skiff-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| IamError::InvalidInput("Invalid Marker.".into()))?,
    };
    let end = (start + max as usize).min(items.len());
    let truncated = end < items.len();
    let slice: Vec<Value> = items[start..end].to_vec();
    let mut out = json!({ list_member: slice, "IsTruncated": truncated });
    if truncated {
        out["Marker"] = Value::String(format!("skiff-{end}"));
    }
    Ok(out)
}

/// Keep items whose path starts with `PathPrefix` (default `/`).
pub fn path_prefix_matches(input: &Value, path: &str) -> bool {
    path.starts_with(opt_str(input, "PathPrefix").unwrap_or("/"))
}

// ---------- records ----------

/// The store key of an IAM record: `/aws/<account>/global/iam/<kind>/<id>`.
pub fn iam_key(account: &str, kind: &str, id: &str) -> String {
    format!(
        "/aws/{account}/{}/iam/{kind}/{id}",
        resources::GLOBAL_REGION
    )
}

/// A named IAM record stored under `<KIND>/<lower-cased name>`.
pub trait Entity: Serialize + DeserializeOwned + Send + Sync {
    const KIND: &'static str;
    /// `NoSuchEntity` message for `name`.
    fn not_found(name: &str) -> String;
    fn name(&self) -> &str;
}

/// Users, groups and roles: hold attached managed policies and inline policies.
pub trait PolicyHolder: Entity {
    /// Upstream member naming the holder in inline-policy calls (`RoleName`).
    const NAME_MEMBER: &'static str;
    fn attached(&mut self) -> &mut Vec<String>;
    fn inline(&mut self) -> &mut BTreeMap<String, String>;
    /// Refuse changes to entities only AWS may change (service-linked roles).
    fn guard(&self) -> IamResult<()> {
        Ok(())
    }
}

pub fn entity_key<T: Entity>(account: &str, name: &str) -> String {
    iam_key(account, T::KIND, &name.to_ascii_lowercase())
}

pub async fn find<T: Entity>(
    store: &dyn Store,
    account: &str,
    name: &str,
) -> IamResult<Option<(T, Revision)>> {
    Ok(resources::get(store, &entity_key::<T>(account, name)).await?)
}

pub async fn load<T: Entity>(ctx: &RequestContext, name: &str) -> IamResult<(T, Revision)> {
    find(&*ctx.store, &ctx.account_id, name)
        .await?
        .ok_or_else(|| IamError::NoSuchEntity(T::not_found(name)))
}

pub async fn list_all<T: Entity>(store: &dyn Store, account: &str) -> IamResult<Vec<T>> {
    Ok(resources::list(store, &iam_key(account, T::KIND, "")).await?)
}

/// Commit writes; a lost race is `ConcurrentModification` (the caller may retry).
pub async fn commit(ctx: &RequestContext, ops: Vec<skiff_store::Op>) -> IamResult<()> {
    match resources::commit(&*ctx.store, ops).await {
        Ok(_) => Ok(()),
        Err(None) => Err(IamError::ConcurrentModification(
            "Rate exceeded or a concurrent change to the same entity; retry the request.".into(),
        )),
        Err(Some(e)) => Err(IamError::Internal(e)),
    }
}

/// Write an updated record guarded by the revision it was read at.
pub fn update_op<T: Entity>(account: &str, record: &T, rev: Revision) -> skiff_store::Op {
    resources::put_op(
        &entity_key::<T>(account, record.name()),
        record,
        Precondition::ModRevision(rev),
    )
}

pub fn create_op<T: Entity>(account: &str, record: &T) -> skiff_store::Op {
    resources::put_op(
        &entity_key::<T>(account, record.name()),
        record,
        Precondition::MustNotExist,
    )
}

pub fn delete_op<T: Entity>(account: &str, name: &str) -> skiff_store::Op {
    resources::delete_op(&entity_key::<T>(account, name))
}

/// An `AttachedPermissionsBoundary` output object.
pub fn boundary_value(arn: &str) -> Value {
    json!({ "PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": arn })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_documents_like_iam() {
        assert_eq!(
            encode_document(r#"{"A": "b/c"}"#),
            "%7B%22A%22%3A%20%22b%2Fc%22%7D"
        );
    }

    #[test]
    fn paging() {
        let items: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let p1 = page("L", items.clone(), &json!({"MaxItems": 2})).unwrap();
        assert_eq!(
            p1,
            json!({"L": [0, 1], "IsTruncated": true, "Marker": "skiff-2"})
        );
        let p3 = page(
            "L",
            items.clone(),
            &json!({"MaxItems": 2, "Marker": "skiff-4"}),
        )
        .unwrap();
        assert_eq!(p3, json!({"L": [4], "IsTruncated": false}));
        assert!(matches!(
            page("L", items.clone(), &json!({"Marker": "zzz"})),
            Err(IamError::InvalidInput(_))
        ));
        assert!(matches!(
            page("L", items, &json!({"MaxItems": 0})),
            Err(IamError::Validation(_))
        ));
    }

    #[test]
    fn names_and_paths() {
        assert!(check_name("RoleName", "eks-node_role+=,.@", 64).is_ok());
        assert!(check_name("RoleName", "bad name", 64).is_err());
        assert!(check_name("RoleName", "", 64).is_err());
        assert_eq!(path_of(&json!({})).unwrap(), "/");
        assert!(path_of(&json!({"Path": "nope"})).is_err());
        assert_eq!(path_of(&json!({"Path": "/a/b/"})).unwrap(), "/a/b/");
    }
}
