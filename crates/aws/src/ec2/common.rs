//! What every EC2 operation group shares: records in the store, one write transaction per operation,
//! reading the input `Value`, and the generic Describe (ids, filters, paging).
//!
//! Records are stored as the resource's own output shape (`Vpc`, `Subnet`, …) so Describe answers are
//! the stored JSON minus bookkeeping members, which start with `_` and never leave this module's
//! [`public`].

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::{Map, Value, json};
use skiff_aws_model::AwsError;
use skiff_store::{ListOptions, Op, Precondition, Revision};

use super::errors::{self, error};
use super::{filters, pagination};
use crate::context::RequestContext;
use crate::resources;

pub(crate) const SERVICE: &str = "ec2";

pub(crate) fn key(ctx: &RequestContext, kind: &str, id: &str) -> String {
    resources::key(ctx, SERVICE, kind, id)
}

pub(crate) fn kind_prefix(ctx: &RequestContext, kind: &str) -> String {
    resources::prefix_of(&key(ctx, kind, "x"))
}

/// One record and the revision it was read at (the precondition of its update).
pub(crate) async fn load(
    ctx: &RequestContext,
    kind: &str,
    id: &str,
) -> Result<Option<(Value, Revision)>, AwsError> {
    resources::get::<Value>(ctx.store.as_ref(), &key(ctx, kind, id)).await
}

/// Like [`load`], answering `code` (`InvalidVpcID.NotFound`, …) when absent.
pub(crate) async fn load_or(
    ctx: &RequestContext,
    kind: &str,
    id: &str,
    code: &str,
) -> Result<(Value, Revision), AwsError> {
    load(ctx, kind, id)
        .await?
        .ok_or_else(|| errors::not_found(code, id))
}

/// Every record of a kind in this account and region, in id order.
pub(crate) async fn load_all(ctx: &RequestContext, kind: &str) -> Result<Vec<Value>, AwsError> {
    resources::list::<Value>(ctx.store.as_ref(), &kind_prefix(ctx, kind)).await
}

/// The writes of one operation, committed atomically at the end (nothing changes on error).
#[derive(Default)]
pub(crate) struct Txn {
    ops: Vec<Op>,
}

impl Txn {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn create(&mut self, ctx: &RequestContext, kind: &str, id: &str, v: &Value) {
        self.ops.push(resources::put_op(
            &key(ctx, kind, id),
            v,
            Precondition::MustNotExist,
        ));
    }
    pub fn update(&mut self, ctx: &RequestContext, kind: &str, id: &str, v: &Value, rev: Revision) {
        self.ops.push(resources::put_op(
            &key(ctx, kind, id),
            v,
            Precondition::ModRevision(rev),
        ));
    }
    pub fn delete(&mut self, ctx: &RequestContext, kind: &str, id: &str) {
        self.ops.push(resources::delete_op(&key(ctx, kind, id)));
    }
    /// Write whether or not the record exists (index entries, markers).
    pub fn put(&mut self, ctx: &RequestContext, kind: &str, id: &str, v: &Value) {
        self.ops.push(resources::put_op(
            &key(ctx, kind, id),
            v,
            Precondition::None,
        ));
    }
    /// Delete if present.
    pub fn remove(&mut self, ctx: &RequestContext, kind: &str, id: &str) {
        self.ops.push(Op::Delete {
            key: key(ctx, kind, id),
            precondition: Precondition::None,
        });
    }
    pub async fn commit(self, ctx: &RequestContext) -> Result<(), AwsError> {
        if self.ops.is_empty() {
            return Ok(());
        }
        match resources::commit(ctx.store.as_ref(), self.ops).await {
            Ok(_) => Ok(()),
            Err(Some(e)) => Err(e),
            Err(None) => Err(error("ConcurrentModification", &[])),
        }
    }
}

/// EC2 writes check invariants across records (subnet overlap, free IPs, dependencies) that no single
/// key's precondition can guard, so writers of one account and region take turns in this process.
/// Revision preconditions on every update still catch a writer in another process (etcd backend).
pub(crate) async fn write_lock(ctx: &RequestContext) -> tokio::sync::OwnedMutexGuard<()> {
    static LOCKS: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
        LazyLock::new(Default::default);
    let lock = {
        let mut map = LOCKS.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(format!("{}/{}", ctx.account_id, ctx.region))
            .or_default()
            .clone()
    };
    lock.lock_owned().await
}

/// The record as the client sees it: bookkeeping members (`_…`) removed.
pub(crate) fn public(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('_'))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Map<String, Value>>(),
        ),
        other => other.clone(),
    }
}

/// RFC 3339 with milliseconds, as EC2 prints times.
pub(crate) fn now() -> String {
    let ts = jiff::Timestamp::now();
    format!("{ts:.3}")
}

pub(crate) fn arn(ctx: &RequestContext, resource: &str) -> String {
    format!("arn:aws:ec2:{}:{}:{resource}", ctx.region, ctx.account_id)
}

// ---- reading the input Value -------------------------------------------------------------------

pub(crate) fn opt_str<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

pub(crate) fn req_str<'a>(input: &'a Value, name: &str) -> Result<&'a str, AwsError> {
    match opt_str(input, name) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(errors::missing(name)),
    }
}

pub(crate) fn opt_bool(input: &Value, name: &str) -> Option<bool> {
    match input.get(name)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// `{"Value": true}` (AttributeBooleanValue) or a bare boolean.
pub(crate) fn opt_attr_bool(input: &Value, name: &str) -> Option<bool> {
    match input.get(name)? {
        Value::Object(m) => m.get("Value").and_then(|v| match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }),
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

pub(crate) fn opt_i64(input: &Value, name: &str) -> Option<i64> {
    match input.get(name)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

pub(crate) fn str_list(input: &Value, name: &str) -> Vec<String> {
    match input.get(name) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

pub(crate) fn array<'a>(input: &'a Value, name: &str) -> &'a [Value] {
    input
        .get(name)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// True when `id` looks like `prefix-` followed by 8 or 17 lowercase hex digits.
pub(crate) fn well_formed(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|hex| {
            (hex.len() == 8 || hex.len() == 17)
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

// ---- the generic Describe ----------------------------------------------------------------------

/// What differs between Describe operations: where records live, how ids are named and checked, and
/// which filters the operation documents (filter name -> dotted path into the record; see [`filters`]).
pub(crate) struct Describe {
    pub kind: &'static str,
    pub id_field: &'static str,
    /// Input member listing ids (`VpcIds`).
    pub ids_member: &'static str,
    pub id_prefix: &'static str,
    pub not_found: &'static str,
    pub malformed: &'static str,
    pub tags_field: &'static str,
    pub filters: &'static [(&'static str, &'static str)],
    /// MaxResults bounds documented for the operation.
    pub max_results: (i64, i64),
}

/// Describe* semantics: explicit ids must all exist (else `…NotFound` naming the missing ones),
/// then `Filters`, then `MaxResults`/`NextToken` paging over id order. Records are returned as stored
/// (callers pass them through [`public`] or reshape them).
pub(crate) async fn describe(
    ctx: &RequestContext,
    input: &Value,
    d: &Describe,
) -> Result<(Vec<Value>, Option<String>), AwsError> {
    let ids = str_list(input, d.ids_member);
    for id in &ids {
        if !well_formed(id, d.id_prefix) {
            return Err(error(d.malformed, &[("id", id)]));
        }
    }
    let filters = filters::parse(input, d.filters)?;
    let keep = |r: &Value| filters::matches(r, &filters, d.filters, d.tags_field);
    if !ids.is_empty() {
        // Explicit ids: read those records only, not the whole kind.
        let mut found = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in &ids {
            match load(ctx, d.kind, id).await? {
                Some((r, _)) if r[d.id_field] == id.as_str() => found.push(r),
                _ => missing.push(id.as_str()),
            }
        }
        if !missing.is_empty() {
            return Err(errors::not_found(d.not_found, &missing.join(", ")));
        }
        found.sort_by(|a, b| a[d.id_field].as_str().cmp(&b[d.id_field].as_str()));
        found.dedup_by(|a, b| a[d.id_field] == b[d.id_field]);
        found.retain(keep);
        return pagination::page(found, d.id_field, input, d.max_results);
    }
    // Everything of the kind: walk the store in id order from the token, decoding a page at a time,
    // and stop once one record past the page is found (the answer's `NextToken`).
    let limit = pagination::limit(input, d.max_results)?;
    let mut start_after = pagination::after(input)?.map(|id| key(ctx, d.kind, &id));
    let prefix = kind_prefix(ctx, d.kind);
    let mut out = Vec::new();
    let mut at_revision = None;
    loop {
        let page = ctx
            .store
            .list(
                &prefix,
                ListOptions {
                    at_revision,
                    start_after: start_after.take(),
                    limit: DESCRIBE_SCAN_PAGE,
                },
            )
            .await
            .map_err(resources::internal)?;
        at_revision = Some(page.revision);
        let exhausted = page.items.len() < DESCRIBE_SCAN_PAGE;
        start_after = page.items.last().map(|kv| kv.key.clone());
        for kv in &page.items {
            let r: Value = serde_json::from_slice(&kv.value).map_err(|e| {
                AwsError::new("InternalFailure", format!("corrupt record {}: {e}", kv.key))
                    .with_status(500)
            })?;
            if keep(&r) {
                out.push(r);
                if limit.is_some_and(|l| out.len() > l) {
                    return pagination::page(out, d.id_field, &strip_token(input), d.max_results);
                }
            }
        }
        if exhausted {
            return pagination::page(out, d.id_field, &strip_token(input), d.max_results);
        }
    }
}

/// Records decoded per store read while a Describe walks a kind.
const DESCRIBE_SCAN_PAGE: usize = 256;

/// The input without `NextToken`: the walk already started after it.
fn strip_token(input: &Value) -> Value {
    let mut v = input.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("NextToken");
    }
    v
}

/// Wrap described records under the output member, with `NextToken` when more remain.
pub(crate) fn listing(member: &str, items: Vec<Value>, next: Option<String>) -> Value {
    let mut out = Map::new();
    out.insert(
        member.to_string(),
        Value::Array(items.iter().map(public).collect()),
    );
    if let Some(t) = next {
        out.insert("NextToken".into(), Value::String(t));
    }
    Value::Object(out)
}

pub(crate) fn return_true() -> Value {
    json!({"Return": true})
}
