//! A small in-memory `Store` for tests: full history (so reads at a revision and watches from a
//! revision work), compaction on demand, and a broadcast fan-out for watches.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bytes::Bytes;
use futures::StreamExt;
use skiff_store::{
    EventKind, KeyValue, ListOptions, ListResult, Op, Precondition, Revision, Store, StoreError,
    TxnResult, WatchEvent, WatchStream,
};
use tokio::sync::broadcast;

struct Inner {
    rev: Revision,
    compacted: Revision,
    /// key → versions (revision, value-or-tombstone), oldest first.
    versions: BTreeMap<String, Vec<(Revision, Option<KeyValue>)>>,
    history: Vec<WatchEvent>,
}

pub struct MemStore {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<WatchEvent>,
}

impl Default for MemStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemStore {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(65536);
        Self {
            inner: Mutex::new(Inner {
                rev: 1,
                compacted: 0,
                versions: BTreeMap::new(),
                history: Vec::new(),
            }),
            tx,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets history up to `rev` (reads and watches before it get `Compacted`).
    pub fn compact_to(&self, rev: Revision) {
        let mut g = self.lock();
        g.compacted = rev;
        g.history.retain(|e| e.kv.mod_revision > rev);
    }
}

fn current(versions: &[(Revision, Option<KeyValue>)], at: Revision) -> Option<&KeyValue> {
    versions
        .iter()
        .rev()
        .find(|(r, _)| *r <= at)
        .and_then(|(_, v)| v.as_ref())
}

#[async_trait::async_trait]
impl Store for MemStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let g = self.lock();
        Ok(g.versions.get(key).and_then(|v| current(v, g.rev)).cloned())
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StoreError> {
        let g = self.lock();
        let at = opts.at_revision.unwrap_or(g.rev);
        if at < g.compacted {
            return Err(StoreError::Compacted {
                requested: at,
                compacted: g.compacted,
            });
        }
        if at > g.rev {
            return Err(StoreError::FutureRevision {
                requested: at,
                current: g.rev,
            });
        }
        let mut items = Vec::new();
        let mut more = false;
        for (k, v) in g.versions.range(prefix.to_string()..) {
            if !k.starts_with(prefix) {
                break;
            }
            if opts.start_after.as_deref().is_some_and(|s| k.as_str() <= s) {
                continue;
            }
            if let Some(kv) = current(v, at) {
                if opts.limit > 0 && items.len() == opts.limit {
                    more = true;
                    break;
                }
                items.push(kv.clone());
            }
        }
        Ok(ListResult {
            items,
            revision: at,
            more,
        })
    }

    async fn count(&self, prefix: &str) -> Result<u64, StoreError> {
        Ok(self.list(prefix, ListOptions::default()).await?.items.len() as u64)
    }

    async fn txn(&self, ops: Vec<Op>) -> Result<TxnResult, StoreError> {
        let mut g = self.lock();
        for op in &ops {
            let (key, pre) = match op {
                Op::Put {
                    key, precondition, ..
                }
                | Op::Delete { key, precondition } => (key, *precondition),
            };
            let cur = g.versions.get(key).and_then(|v| current(v, g.rev)).cloned();
            let ok = match pre {
                Precondition::None => true,
                Precondition::MustNotExist => cur.is_none(),
                Precondition::MustExist => cur.is_some(),
                Precondition::ModRevision(r) => cur.as_ref().is_some_and(|c| c.mod_revision == r),
            };
            if !ok {
                return Err(StoreError::PreconditionFailed {
                    key: key.clone(),
                    current: cur,
                });
            }
        }
        let rev = g.rev + 1;
        g.rev = rev;
        let mut previous = Vec::new();
        let mut events = Vec::new();
        for op in ops {
            match op {
                Op::Put { key, value, .. } => {
                    let prev = g.versions.get(&key).and_then(|v| current(v, rev)).cloned();
                    let kv = KeyValue {
                        key: key.clone(),
                        value,
                        create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
                        mod_revision: rev,
                    };
                    g.versions
                        .entry(key)
                        .or_default()
                        .push((rev, Some(kv.clone())));
                    events.push(WatchEvent {
                        kind: EventKind::Put,
                        kv,
                        prev: prev.clone(),
                    });
                    previous.push(prev);
                }
                Op::Delete { key, .. } => {
                    let prev = g.versions.get(&key).and_then(|v| current(v, rev)).cloned();
                    if prev.is_some() {
                        g.versions.entry(key.clone()).or_default().push((rev, None));
                        events.push(WatchEvent {
                            kind: EventKind::Delete,
                            kv: KeyValue {
                                key,
                                value: Bytes::new(),
                                create_revision: 0,
                                mod_revision: rev,
                            },
                            prev: prev.clone(),
                        });
                    }
                    previous.push(prev);
                }
            }
        }
        for e in events {
            g.history.push(e.clone());
            let _ = self.tx.send(e);
        }
        Ok(TxnResult {
            revision: rev,
            previous,
        })
    }

    async fn watch(
        &self,
        prefix: &str,
        from_revision: Revision,
    ) -> Result<WatchStream, StoreError> {
        let g = self.lock();
        if from_revision < g.compacted {
            return Err(StoreError::Compacted {
                requested: from_revision,
                compacted: g.compacted,
            });
        }
        let backlog: Vec<WatchEvent> = g
            .history
            .iter()
            .filter(|e| e.kv.mod_revision > from_revision && e.kv.key.starts_with(prefix))
            .cloned()
            .collect();
        let last = backlog.last().map_or(from_revision, |e| e.kv.mod_revision);
        let rx = self.tx.subscribe();
        drop(g);
        let prefix = prefix.to_string();
        let live = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |r| {
            let prefix = prefix.clone();
            async move {
                match r {
                    Ok(e) if e.kv.key.starts_with(&prefix) && e.kv.mod_revision > last => {
                        Some(Ok(e))
                    }
                    Ok(_) => None,
                    Err(_) => Some(Err(StoreError::WatcherTooSlow)),
                }
            }
        });
        Ok(Box::pin(
            futures::stream::iter(backlog.into_iter().map(Ok)).chain(live),
        ))
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.lock().rev)
    }

    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.lock().compacted)
    }
}
