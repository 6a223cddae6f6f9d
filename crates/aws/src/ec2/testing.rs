//! Test support: a small in-memory [`Store`] with real transaction semantics (preconditions checked
//! before anything applies, one revision per transaction) and a request context around it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use skiff_aws_model::AwsError;
use skiff_store::{
    KeyValue, ListOptions, ListResult, Op, Precondition, Revision, Store, StoreError, TxnResult,
    WatchStream,
};

use crate::context::{Caller, RequestContext};

#[derive(Default)]
pub(crate) struct MemStore {
    inner: Mutex<(Revision, BTreeMap<String, KeyValue>)>,
}

impl MemStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, (Revision, BTreeMap<String, KeyValue>)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn check(map: &BTreeMap<String, KeyValue>, key: &str, p: Precondition) -> Result<(), StoreError> {
    let current = map.get(key);
    let ok = match p {
        Precondition::None => true,
        Precondition::MustNotExist => current.is_none(),
        Precondition::MustExist => current.is_some(),
        Precondition::ModRevision(r) => current.is_some_and(|kv| kv.mod_revision == r),
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::PreconditionFailed {
            key: key.to_string(),
            current: current.cloned(),
        })
    }
}

#[async_trait::async_trait]
impl Store for MemStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        Ok(self.lock().1.get(key).cloned())
    }
    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StoreError> {
        let g = self.lock();
        let mut items: Vec<KeyValue> =
            g.1.range(prefix.to_string()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .filter(|(k, _)| opts.start_after.as_ref().is_none_or(|s| *k > s))
                .map(|(_, v)| v.clone())
                .collect();
        let more = opts.limit > 0 && items.len() > opts.limit;
        if opts.limit > 0 {
            items.truncate(opts.limit);
        }
        Ok(ListResult {
            items,
            revision: g.0,
            more,
        })
    }
    async fn count(&self, prefix: &str) -> Result<u64, StoreError> {
        Ok(self
            .lock()
            .1
            .keys()
            .filter(|k| k.starts_with(prefix))
            .count() as u64)
    }
    async fn txn(&self, ops: Vec<Op>) -> Result<TxnResult, StoreError> {
        let mut g = self.lock();
        for op in &ops {
            match op {
                Op::Put {
                    key, precondition, ..
                }
                | Op::Delete { key, precondition } => check(&g.1, key, *precondition)?,
            }
        }
        g.0 += 1;
        let rev = g.0;
        let mut previous = Vec::new();
        for op in ops {
            match op {
                Op::Put { key, value, .. } => {
                    let create = g.1.get(&key).map_or(rev, |kv| kv.create_revision);
                    previous.push(g.1.insert(
                        key.clone(),
                        KeyValue {
                            key,
                            value,
                            create_revision: create,
                            mod_revision: rev,
                        },
                    ));
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
        Ok(self.lock().0)
    }
    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        Ok(1)
    }
}

pub(crate) fn ctx_in(store: Arc<dyn Store>, region: &str) -> RequestContext {
    RequestContext {
        account_id: "000000000000".into(),
        region: region.into(),
        request_id: "test".into(),
        caller: Caller {
            arn: "arn:aws:iam::000000000000:root".into(),
            user_id: "000000000000".into(),
            account_id: "000000000000".into(),
            access_key_id: "test".into(),
        },
        store,
    }
}

pub(crate) fn ctx() -> RequestContext {
    ctx_in(Arc::new(MemStore::default()), "us-east-1")
}

pub(crate) async fn call(ctx: &RequestContext, op: &str, input: Value) -> Result<Value, AwsError> {
    super::dispatch(ctx, op, input).await
}

/// Call and unwrap, naming the operation on failure.
pub(crate) async fn ok(ctx: &RequestContext, op: &str, input: Value) -> Value {
    match call(ctx, op, input).await {
        Ok(v) => v,
        Err(e) => panic!("{op} failed: {e}"),
    }
}

/// Call expecting an error code.
pub(crate) async fn err(ctx: &RequestContext, op: &str, input: Value) -> AwsError {
    match call(ctx, op, input).await {
        Ok(v) => panic!("{op} unexpectedly succeeded: {v}"),
        Err(e) => e,
    }
}
