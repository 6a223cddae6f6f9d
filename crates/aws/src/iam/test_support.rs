//! Test fixtures for IAM and STS unit tests: a small in-memory [`Store`] and request contexts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use skiff_store::{
    KeyValue, ListOptions, ListResult, Op, Precondition, Revision, Store, StoreError, TxnResult,
    WatchStream,
};

use crate::context::{Caller, RequestContext};

/// Enough of the store contract for handlers: atomic preconditioned transactions, ordered lists.
#[derive(Default)]
pub struct MemStore {
    inner: Mutex<(Revision, BTreeMap<String, KeyValue>)>,
}

#[async_trait::async_trait]
impl Store for MemStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        Ok(self.inner.lock().unwrap().1.get(key).cloned())
    }
    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StoreError> {
        use std::ops::Bound;
        let g = self.inner.lock().unwrap();
        // Paging as the real stores page: strictly after `start_after`, at most `limit` (0 = all).
        let from = match opts.start_after {
            Some(k) if k.as_str() >= prefix => Bound::Excluded(k),
            _ => Bound::Included(prefix.to_string()),
        };
        let mut matching =
            g.1.range((from, Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(_, v)| v.clone());
        let items: Vec<KeyValue> = if opts.limit == 0 {
            matching.by_ref().collect()
        } else {
            matching.by_ref().take(opts.limit).collect()
        };
        let more = matching.next().is_some();
        Ok(ListResult {
            items,
            revision: g.0,
            more,
        })
    }
    async fn count(&self, prefix: &str) -> Result<u64, StoreError> {
        Ok(self.list(prefix, ListOptions::default()).await?.items.len() as u64)
    }
    async fn txn(&self, ops: Vec<Op>) -> Result<TxnResult, StoreError> {
        let mut g = self.inner.lock().unwrap();
        for op in &ops {
            let (key, pre) = match op {
                Op::Put {
                    key, precondition, ..
                }
                | Op::Delete {
                    key, precondition, ..
                } => (key, precondition),
            };
            let cur = g.1.get(key);
            let ok = match pre {
                Precondition::None => true,
                Precondition::MustNotExist => cur.is_none(),
                Precondition::MustExist => cur.is_some(),
                Precondition::ModRevision(r) => cur.is_some_and(|c| c.mod_revision == *r),
            };
            if !ok {
                return Err(StoreError::PreconditionFailed {
                    key: key.clone(),
                    current: cur.cloned(),
                });
            }
        }
        g.0 += 1;
        let rev = g.0;
        let mut previous = Vec::new();
        for op in ops {
            match op {
                Op::Put { key, value, .. } => {
                    let prev = g.1.get(&key).cloned();
                    let create_revision = prev.as_ref().map_or(rev, |p| p.create_revision);
                    g.1.insert(
                        key.clone(),
                        KeyValue {
                            key,
                            value,
                            create_revision,
                            mod_revision: rev,
                        },
                    );
                    previous.push(prev);
                }
                Op::Delete { key, .. } => previous.push(g.1.remove(&key)),
            }
        }
        Ok(TxnResult {
            revision: rev,
            previous,
        })
    }
    async fn watch(&self, _prefix: &str, _from: Revision) -> Result<WatchStream, StoreError> {
        Err(StoreError::Unavailable(
            "the test store does not watch".into(),
        ))
    }
    async fn current_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.inner.lock().unwrap().0)
    }
    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        Ok(0)
    }
}

pub const ACCOUNT: &str = "000000000000";

pub fn root() -> Caller {
    Caller {
        arn: format!("arn:aws:iam::{ACCOUNT}:root"),
        user_id: ACCOUNT.into(),
        account_id: ACCOUNT.into(),
        access_key_id: "test".into(),
    }
}

pub fn ctx_with(store: Arc<dyn Store>, caller: Caller) -> RequestContext {
    RequestContext {
        account_id: caller.account_id.clone(),
        region: "us-east-1".into(),
        request_id: "req".into(),
        caller,
        store,
    }
}

/// A fresh store and a root context on it.
pub fn root_ctx() -> RequestContext {
    ctx_with(Arc::new(MemStore::default()), root())
}

/// The caller a stored credential stands for (what the gateway's verifier would build).
pub fn caller_of(cred: &crate::credentials::StoredCredential) -> Caller {
    Caller {
        arn: cred.arn.clone(),
        user_id: cred.user_id.clone(),
        account_id: cred.account_id.clone(),
        access_key_id: cred.access_key_id.clone(),
    }
}

/// Run one IAM operation through the table.
pub async fn iam(
    ctx: &RequestContext,
    op: &str,
    input: serde_json::Value,
) -> Result<serde_json::Value, skiff_aws_model::AwsError> {
    crate::iam::dispatch(ctx, op, input).await
}

/// Run one STS operation through the table.
pub async fn sts(
    ctx: &RequestContext,
    op: &str,
    input: serde_json::Value,
) -> Result<serde_json::Value, skiff_aws_model::AwsError> {
    crate::sts::dispatch(ctx, op, input).await
}

/// Decode an URL-encoded policy document from an output.
pub fn decode_document(v: &serde_json::Value) -> serde_json::Value {
    let s = v.as_str().expect("document string");
    let mut bytes = Vec::new();
    let raw = s.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' && i + 2 < raw.len() + 1 {
            let h = std::str::from_utf8(&raw[i + 1..i + 3]).unwrap();
            bytes.push(u8::from_str_radix(h, 16).unwrap());
            i += 3;
        } else {
            bytes.push(raw[i]);
            i += 1;
        }
    }
    serde_json::from_slice(&bytes).unwrap()
}

pub const EC2_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
pub const ACCOUNT_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}"#;
pub const S3_READ: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:Get*","s3:List*"],"Resource":"*"}]}"#;
