//! Test doubles shared by the `auth_*` suites: an in-memory [`Store`] with the real contract's
//! revision, precondition and watch semantics, and object helpers.

#![allow(dead_code, reason = "each suite uses a different subset")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use skiff_store::{
    EventKind, KeyValue, ListOptions, ListResult, Op, Precondition, Revision, Store, StoreError,
    TxnResult, WatchEvent, WatchStream,
};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

struct Inner {
    rev: Revision,
    data: BTreeMap<String, KeyValue>,
    history: Vec<WatchEvent>,
}

pub struct MemStore {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<WatchEvent>,
}

impl MemStore {
    pub fn new() -> Arc<Self> {
        let (tx, _) = broadcast::channel(4096);
        Arc::new(Self {
            inner: Mutex::new(Inner {
                rev: 1,
                data: BTreeMap::new(),
                history: Vec::new(),
            }),
            tx,
        })
    }

    pub async fn put_json(&self, key: &str, v: &serde_json::Value) -> Revision {
        self.txn(vec![Op::Put {
            key: key.into(),
            value: Bytes::from(serde_json::to_vec(v).unwrap()),
            precondition: Precondition::None,
        }])
        .await
        .unwrap()
        .revision
    }

    pub async fn delete(&self, key: &str) -> Revision {
        self.txn(vec![Op::Delete {
            key: key.into(),
            precondition: Precondition::MustExist,
        }])
        .await
        .unwrap()
        .revision
    }

    pub async fn get_json(&self, key: &str) -> Option<serde_json::Value> {
        let kv = self.get(key).await.unwrap()?;
        Some(serde_json::from_slice(&kv.value).unwrap())
    }
}

fn check(pre: &Precondition, key: &str, cur: Option<&KeyValue>) -> Result<(), StoreError> {
    let ok = match pre {
        Precondition::None => true,
        Precondition::MustNotExist => cur.is_none(),
        Precondition::MustExist => cur.is_some(),
        Precondition::ModRevision(r) => cur.is_some_and(|c| c.mod_revision == *r),
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::PreconditionFailed {
            key: key.into(),
            current: cur.cloned(),
        })
    }
}

#[async_trait::async_trait]
impl Store for MemStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        Ok(self.inner.lock().unwrap().data.get(key).cloned())
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StoreError> {
        let g = self.inner.lock().unwrap();
        let items: Vec<KeyValue> = g
            .data
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| opts.start_after.as_ref().is_none_or(|s| *k > s))
            .map(|(_, v)| v.clone())
            .collect();
        Ok(ListResult {
            items,
            revision: g.rev,
            more: false,
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
                | Op::Delete { key, precondition } => (key, precondition),
            };
            check(pre, key, g.data.get(key))?;
        }
        g.rev += 1;
        let rev = g.rev;
        let mut previous = Vec::new();
        for op in ops {
            let ev = match op {
                Op::Put { key, value, .. } => {
                    let prev = g.data.get(&key).cloned();
                    let kv = KeyValue {
                        key: key.clone(),
                        value,
                        create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
                        mod_revision: rev,
                    };
                    g.data.insert(key, kv.clone());
                    previous.push(prev.clone());
                    WatchEvent {
                        kind: EventKind::Put,
                        kv,
                        prev,
                    }
                }
                Op::Delete { key, .. } => {
                    let prev = g.data.remove(&key);
                    previous.push(prev.clone());
                    WatchEvent {
                        kind: EventKind::Delete,
                        kv: KeyValue {
                            key,
                            value: Bytes::new(),
                            create_revision: 0,
                            mod_revision: rev,
                        },
                        prev,
                    }
                }
            };
            g.history.push(ev.clone());
            let _ = self.tx.send(ev);
        }
        Ok(TxnResult {
            revision: rev,
            previous,
        })
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream, StoreError> {
        // Snapshot the history and subscribe under one lock, so no event falls in between.
        let g = self.inner.lock().unwrap();
        let rx = self.tx.subscribe();
        let p = prefix.to_string();
        let past: Vec<_> = g
            .history
            .iter()
            .filter(|e| e.kv.mod_revision > from && e.kv.key.starts_with(&p))
            .cloned()
            .map(Ok)
            .collect();
        let last = g.rev;
        drop(g);
        let p2 = p.clone();
        let live = BroadcastStream::new(rx).filter_map(move |e| {
            let p = p2.clone();
            async move {
                match e {
                    Ok(e) if e.kv.mod_revision > last.max(from) && e.kv.key.starts_with(&p) => {
                        Some(Ok(e))
                    }
                    Ok(_) => None,
                    Err(_) => Some(Err(StoreError::WatcherTooSlow)),
                }
            }
        });
        Ok(Box::pin(futures::stream::iter(past).chain(live)))
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.inner.lock().unwrap().rev)
    }

    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        Ok(1)
    }
}

pub const CLUSTER: &str = "c1";

pub fn key(resource: &str, ns: Option<&str>, name: &str) -> String {
    skiff_apiserver::authn::object_key(CLUSTER, "", resource, ns, name)
}

pub fn rbac_key(resource: &str, ns: Option<&str>, name: &str) -> String {
    skiff_apiserver::authn::object_key(CLUSTER, "rbac.authorization.k8s.io", resource, ns, name)
}

/// A stored object with name, namespace and uid.
pub fn object(kind: &str, ns: &str, name: &str, uid: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": kind,
        "metadata": { "name": name, "namespace": ns, "uid": uid },
    })
}
