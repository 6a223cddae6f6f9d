//! Typed JSON persistence of AWS resources in the shared store, and AWS-style identifiers.
//!
//! Layout: `/aws/<account>/<region>/<service>/<type>/<id>`; global services (IAM, Route 53) use the
//! region segment `global`. Every value is the resource's own serde struct as JSON.

use bytes::Bytes;
use serde::{Serialize, de::DeserializeOwned};
use skiff_aws_model::AwsError;
use skiff_store::{ListOptions, Op, Precondition, Revision, Store, StoreError};

use crate::context::RequestContext;

pub const GLOBAL_REGION: &str = "global";

/// Key of one resource in the caller's account and region.
pub fn key(ctx: &RequestContext, service: &str, kind: &str, id: &str) -> String {
    format!(
        "/aws/{}/{}/{service}/{kind}/{id}",
        ctx.account_id, ctx.region
    )
}

/// Key of one resource of a global service (IAM, Route 53) in the caller's account.
pub fn global_key(ctx: &RequestContext, service: &str, kind: &str, id: &str) -> String {
    format!(
        "/aws/{}/{GLOBAL_REGION}/{service}/{kind}/{id}",
        ctx.account_id
    )
}

/// Prefix under which every resource of one kind lives (ends with `/`).
pub fn prefix_of(key_of_any: &str) -> String {
    match key_of_any.rfind('/') {
        Some(i) => key_of_any[..=i].to_string(),
        None => key_of_any.to_string(),
    }
}

/// A store failure inside a handler is our fault, not the caller's.
pub fn internal(err: StoreError) -> AwsError {
    AwsError::new("InternalFailure", err.to_string()).with_status(500)
}

pub async fn get<T: DeserializeOwned>(
    store: &dyn Store,
    key: &str,
) -> Result<Option<(T, Revision)>, AwsError> {
    let Some(kv) = store.get(key).await.map_err(internal)? else {
        return Ok(None);
    };
    let value = serde_json::from_slice(&kv.value).map_err(|e| {
        AwsError::new("InternalFailure", format!("corrupt record {key}: {e}")).with_status(500)
    })?;
    Ok(Some((value, kv.mod_revision)))
}

/// Every resource under `prefix`, in key order.
pub async fn list<T: DeserializeOwned>(
    store: &dyn Store,
    prefix: &str,
) -> Result<Vec<T>, AwsError> {
    let page = store
        .list(prefix, ListOptions::default())
        .await
        .map_err(internal)?;
    page.items
        .iter()
        .map(|kv| {
            serde_json::from_slice(&kv.value).map_err(|e| {
                AwsError::new("InternalFailure", format!("corrupt record {}: {e}", kv.key))
                    .with_status(500)
            })
        })
        .collect()
}

fn encode<T: Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("resource structs always serialize"))
}

pub fn put_op<T: Serialize>(key: &str, value: &T, precondition: Precondition) -> Op {
    Op::Put {
        key: key.to_string(),
        value: encode(value),
        precondition,
    }
}

pub fn delete_op(key: &str) -> Op {
    Op::Delete {
        key: key.to_string(),
        precondition: Precondition::MustExist,
    }
}

/// Commit a group of writes atomically. A failed precondition means a concurrent writer won: the caller
/// decides which AWS error that is, so it is returned as `Err(None)`.
pub async fn commit(store: &dyn Store, ops: Vec<Op>) -> Result<Revision, Option<AwsError>> {
    match store.txn(ops).await {
        Ok(r) => Ok(r.revision),
        Err(StoreError::PreconditionFailed { .. }) => Err(None),
        Err(e) => Err(Some(internal(e))),
    }
}

/// An opaque paging token for an offset into a sorted listing (services with `NextToken`/`Marker`
/// paging over records they sort themselves).
pub fn offset_token(offset: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("skiff:{offset}"))
}

/// The offset an [`offset_token`] names; `None` for anything else (each service words the error).
pub fn offset_from_token(token: &str) -> Option<usize> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("skiff:").and_then(|n| n.parse().ok()))
}

/// AWS-style resource id: `prefix-` + 17 lowercase hex digits (`vpc-0a1b2c3d4e5f67890`).
pub fn new_id(prefix: &str) -> String {
    use rand::Rng;
    let n: u128 = rand::rng().random();
    format!("{prefix}-{:017x}", n & ((1u128 << 68) - 1))
}

/// IAM-style unique id: a 4-letter prefix (`AIDA`, `AROA`, `AKIA`, `ASIA`, `ANPA`) + 17 upper-case base32 chars.
pub fn new_iam_id(prefix: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rng();
    let tail: String = (0..17)
        .map(|_| ALPHABET[rng.random_range(0..32)] as char)
        .collect();
    format!("{prefix}{tail}")
}
