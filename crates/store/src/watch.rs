//! The watch hub: fans committed events out to watchers and lets a watcher that starts at an older
//! revision catch up without a gap or a duplicate (the embedded backend's watch; etcd has its own).
//!
//! # Buffers and drop policy
//!
//! - **Ring.** The hub keeps the most recent committed batches in memory, up to
//!   [`HubOptions::ring_events`] events (default 16,384) and [`HubOptions::ring_bytes`] bytes of keys
//!   and values (default 64 MiB), whichever is reached first. A watcher starting at a revision the ring
//!   still covers catches up from memory; an older one reads the backend's durable history
//!   ([`History`], the embedded event log) in chunks of 1,024 revisions, then continues from the ring.
//! - **Per-watcher buffer.** Each watcher has a bounded queue of [`HubOptions::watcher_buffer`] batches
//!   (default 1,024; a batch is one group commit, so one or many revisions). Batches are shared
//!   (`Arc`), so a queued batch costs a pointer per watcher, not a copy. A watcher only receives
//!   batches that hold at least one key under its prefix.
//! - **Drop policy.** Publishing never waits: when a watcher's queue is full the hub drops that
//!   watcher at once (etcd's "victim" watchers are parked and retried; we cut them off instead, because
//!   parking needs the same memory the cut-off protects). The watcher's stream then yields the events
//!   it already had queued, ends with [`StoreError::WatcherTooSlow`], and the caller relists and
//!   watches again from the list's revision (Kubernetes reflectors do exactly this on `410 Gone`).
//! - **Compaction.** A watcher whose catch-up position falls behind the compaction point of the
//!   durable history ends with [`StoreError::Compacted`].
//! - **Close.** When the store shuts down every live stream ends with [`StoreError::Unavailable`].
//!
//! Ordering argument: registration happens under the hub lock, which `publish` also takes. At that
//! moment every revision up to `published` is committed (so readable from the history or ring) and
//! every later revision will arrive in the watcher's queue; the catch-up is bounded by `published`,
//! the queue starts after it, so nothing is delivered twice or skipped.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use crate::{Revision, StoreError, WatchEvent, WatchStream};

/// Revisions read from durable history per catch-up step.
const HISTORY_CHUNK: Revision = 1024;

/// Sizes of the hub's buffers (see the module docs for the policy).
#[derive(Clone, Copy, Debug)]
pub struct HubOptions {
    /// Events kept in memory for catch-up of new watchers.
    pub ring_events: usize,
    /// Bytes (keys, values and previous values) kept in memory for catch-up of new watchers.
    pub ring_bytes: usize,
    /// Batches queued per watcher before it is cut off with [`StoreError::WatcherTooSlow`].
    pub watcher_buffer: usize,
}

impl Default for HubOptions {
    fn default() -> Self {
        HubOptions {
            ring_events: 16_384,
            ring_bytes: 64 << 20,
            watcher_buffer: 1024,
        }
    }
}

/// Durable, revision-ordered history that a backend offers for catch-up older than the ring.
pub trait History: Send + Sync + 'static {
    /// Every event with revision in `(after, upto]`, in revision order. Blocking (called from
    /// `spawn_blocking`). Fails with [`StoreError::Compacted`] if part of the range is gone.
    fn read(&self, after: Revision, upto: Revision) -> Result<Vec<WatchEvent>, StoreError>;
}

type Batch = Arc<[WatchEvent]>;

struct Slot {
    tx: mpsc::Sender<Batch>,
    cut_off: Arc<AtomicBool>,
}

struct Inner {
    /// The last revision handed to `publish`.
    published: Revision,
    ring: VecDeque<Batch>,
    ring_len: usize,
    ring_bytes: usize,
    /// Every event with a revision above this is in the ring.
    ring_floor: Revision,
    /// Watchers grouped by prefix, so a batch is matched once per distinct prefix.
    groups: HashMap<String, Vec<Slot>>,
}

/// The fan-out point between the committing writer and the watchers.
#[doc(alias = "watchableStore")]
#[doc(alias = "watch cache")]
pub struct WatchHub {
    inner: Mutex<Inner>,
    opts: HubOptions,
    history: Arc<dyn History>,
    closed: Arc<AtomicBool>,
}

impl WatchHub {
    /// A hub whose history ends at `current` (nothing newer has been committed yet).
    pub fn new(current: Revision, history: Arc<dyn History>, opts: HubOptions) -> Self {
        WatchHub {
            inner: Mutex::new(Inner {
                published: current,
                ring: VecDeque::new(),
                ring_len: 0,
                ring_bytes: 0,
                ring_floor: current,
                groups: HashMap::new(),
            }),
            opts: HubOptions {
                watcher_buffer: opts.watcher_buffer.max(1),
                ..opts
            },
            history,
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every step is a push or a pop), so
        // a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands one committed batch (events in revision order, all newer than the last batch) to the
    /// ring and to every watcher whose prefix it touches. Never blocks on a watcher.
    pub fn publish(&self, events: Vec<WatchEvent>) {
        let Some(last) = events.last().map(|e| e.kv.mod_revision) else {
            return;
        };
        let batch: Batch = events.into();
        let mut inner = self.lock();
        inner.published = last;
        inner.ring_len += batch.len();
        inner.ring_bytes += batch_bytes(&batch);
        inner.ring.push_back(batch.clone());
        while inner.ring_len > self.opts.ring_events || inner.ring_bytes > self.opts.ring_bytes {
            let Some(old) = inner.ring.pop_front() else {
                break;
            };
            inner.ring_len -= old.len();
            inner.ring_bytes -= batch_bytes(&old);
            if let Some(e) = old.last() {
                inner.ring_floor = e.kv.mod_revision;
            }
        }
        inner.groups.retain(|prefix, slots| {
            if !batch.iter().any(|e| e.kv.key.starts_with(prefix.as_str())) {
                return true;
            }
            slots.retain(|slot| match slot.tx.try_send(batch.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    slot.cut_off.store(true, Ordering::Release);
                    tracing::warn!(prefix = %prefix, "watcher too slow, cut off");
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
            !slots.is_empty()
        });
    }

    /// Ends every watch stream (the store is shutting down).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.lock().groups.clear();
    }

    /// The last published revision.
    pub fn published(&self) -> Revision {
        self.lock().published
    }

    /// Live watchers (for metrics and tests).
    pub fn watcher_count(&self) -> usize {
        self.lock().groups.values().map(Vec::len).sum()
    }

    /// A stream of every event under `prefix` with revision above `from`. The caller has already
    /// refused a `from` older than the compaction point.
    pub fn watch(&self, prefix: &str, from: Revision) -> WatchStream {
        let (tx, rx) = mpsc::channel(self.opts.watcher_buffer);
        let cut_off = Arc::new(AtomicBool::new(false));
        let mut cursor = Cursor {
            prefix: prefix.to_string(),
            from,
            pending: VecDeque::new(),
            history_after: from,
            history_upto: from,
            ring: VecDeque::new(),
            history: self.history.clone(),
            rx,
            cut_off: cut_off.clone(),
            closed: self.closed.clone(),
            done: false,
        };
        {
            let mut inner = self.lock();
            if from < inner.published {
                if from < inner.ring_floor {
                    cursor.history_upto = inner.ring_floor;
                }
                cursor.ring = inner
                    .ring
                    .iter()
                    .filter(|b| b.last().is_some_and(|e| e.kv.mod_revision > from))
                    .cloned()
                    .collect();
            }
            if !self.closed.load(Ordering::Acquire) {
                inner
                    .groups
                    .entry(prefix.to_string())
                    .or_default()
                    .push(Slot { tx, cut_off });
            }
        }
        Box::pin(futures::stream::unfold(cursor, Cursor::next))
    }
}

/// What a batch holds in memory, for the ring's byte bound.
fn batch_bytes(batch: &[WatchEvent]) -> usize {
    batch
        .iter()
        .map(|e| e.kv.key.len() + e.kv.value.len() + e.prev.as_ref().map_or(0, |p| p.value.len()))
        .sum()
}

/// One watcher's position: durable history first, then the ring snapshot, then the live queue.
struct Cursor {
    prefix: String,
    from: Revision,
    pending: VecDeque<WatchEvent>,
    history_after: Revision,
    history_upto: Revision,
    ring: VecDeque<Batch>,
    history: Arc<dyn History>,
    rx: mpsc::Receiver<Batch>,
    cut_off: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
    done: bool,
}

impl Cursor {
    fn take(&mut self, events: &[WatchEvent]) {
        let (from, prefix) = (self.from, self.prefix.as_str());
        self.pending.extend(
            events
                .iter()
                .filter(|e| e.kv.mod_revision > from && e.kv.key.starts_with(prefix))
                .cloned(),
        );
    }

    async fn next(mut self) -> Option<(Result<WatchEvent, StoreError>, Self)> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some((Ok(ev), self));
            }
            if self.done {
                return None;
            }
            if self.history_after < self.history_upto {
                let after = self.history_after;
                let upto = self.history_upto.min(after.saturating_add(HISTORY_CHUNK));
                let history = self.history.clone();
                let read = tokio::task::spawn_blocking(move || history.read(after, upto))
                    .await
                    .unwrap_or_else(|e| Err(StoreError::Io(format!("history reader: {e}"))));
                match read {
                    Ok(events) => {
                        self.take(&events);
                        self.history_after = upto;
                    }
                    Err(err) => {
                        self.done = true;
                        let err = match err {
                            StoreError::Compacted { compacted, .. } => StoreError::Compacted {
                                requested: self.from,
                                compacted,
                            },
                            other => other,
                        };
                        return Some((Err(err), self));
                    }
                }
                continue;
            }
            if let Some(batch) = self.ring.pop_front() {
                self.take(&batch);
                continue;
            }
            match self.rx.recv().await {
                Some(batch) => self.take(&batch),
                None => {
                    self.done = true;
                    let err = if self.cut_off.load(Ordering::Acquire) {
                        StoreError::WatcherTooSlow
                    } else if self.closed.load(Ordering::Acquire) {
                        StoreError::Unavailable("the store is shutting down".into())
                    } else {
                        StoreError::Unavailable("watch hub dropped".into())
                    };
                    return Some((Err(err), self));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use futures::StreamExt;

    use super::*;
    use crate::{EventKind, KeyValue};

    /// History backed by a plain vector (what the embedded log does on disk).
    struct VecHistory(Mutex<Vec<WatchEvent>>, Revision);

    impl History for VecHistory {
        fn read(&self, after: Revision, upto: Revision) -> Result<Vec<WatchEvent>, StoreError> {
            if after < self.1 {
                return Err(StoreError::Compacted {
                    requested: after,
                    compacted: self.1,
                });
            }
            let all = self.0.lock().unwrap();
            Ok(all
                .iter()
                .filter(|e| e.kv.mod_revision > after && e.kv.mod_revision <= upto)
                .cloned()
                .collect())
        }
    }

    fn put(key: &str, rev: Revision) -> WatchEvent {
        WatchEvent {
            kind: EventKind::Put,
            kv: KeyValue {
                key: key.into(),
                value: Bytes::from(rev.to_string()),
                create_revision: rev,
                mod_revision: rev,
            },
            prev: None,
        }
    }

    /// Commits revisions `range` (one key each, alternating prefixes) to both history and hub.
    fn commit(hub: &WatchHub, hist: &VecHistory, range: std::ops::RangeInclusive<Revision>) {
        for rev in range {
            let key = if rev % 2 == 0 {
                format!("/a/{rev}")
            } else {
                format!("/b/{rev}")
            };
            let ev = put(&key, rev);
            hist.0.lock().unwrap().push(ev.clone());
            hub.publish(vec![ev]);
        }
    }

    async fn revs(stream: &mut WatchStream, n: usize) -> Vec<Revision> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(stream.next().await.unwrap().unwrap().kv.mod_revision);
        }
        out
    }

    #[tokio::test]
    async fn catch_up_from_history_then_ring_then_live_without_gap_or_duplicate() {
        let hist = Arc::new(VecHistory(Mutex::new(Vec::new()), 0));
        let opts = HubOptions {
            ring_events: 10,
            watcher_buffer: 64,
            ..HubOptions::default()
        };
        let hub = WatchHub::new(1, hist.clone(), opts);
        commit(&hub, &hist, 2..=3000); // ring now holds only the last 10
        let mut all = hub.watch("", 1);
        let mut only_a = hub.watch("/a/", 1500);
        commit(&hub, &hist, 3001..=3010);
        assert_eq!(revs(&mut all, 3009).await, (2..=3010).collect::<Vec<_>>());
        let expect: Vec<_> = (1501..=3010).filter(|r| r % 2 == 0).collect();
        assert_eq!(revs(&mut only_a, expect.len()).await, expect);
    }

    #[tokio::test]
    async fn the_ring_is_bounded_by_bytes_too() {
        let hist = Arc::new(VecHistory(Mutex::new(Vec::new()), 0));
        let opts = HubOptions {
            ring_bytes: 100,
            ..HubOptions::default()
        };
        let hub = WatchHub::new(1, hist.clone(), opts);
        commit(&hub, &hist, 2..=200);
        {
            let inner = hub.lock();
            assert!(
                inner.ring_bytes <= 100 && inner.ring.len() < 20,
                "{}",
                inner.ring_bytes
            );
            assert_eq!(inner.ring_floor + inner.ring.len() as Revision, 200);
        }
        // Older history still replays, from the durable side.
        let mut w = hub.watch("", 1);
        assert_eq!(revs(&mut w, 199).await, (2..=200).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn watcher_from_the_future_sees_only_later_events() {
        let hist = Arc::new(VecHistory(Mutex::new(Vec::new()), 0));
        let hub = WatchHub::new(1, hist.clone(), HubOptions::default());
        let mut w = hub.watch("", 5);
        commit(&hub, &hist, 2..=7);
        assert_eq!(revs(&mut w, 2).await, vec![6, 7]);
    }

    #[tokio::test]
    async fn slow_watcher_is_cut_off_without_blocking_the_writer() {
        let hist = Arc::new(VecHistory(Mutex::new(Vec::new()), 0));
        let opts = HubOptions {
            ring_events: 100,
            watcher_buffer: 4,
            ..HubOptions::default()
        };
        let hub = WatchHub::new(1, hist.clone(), opts);
        let mut slow = hub.watch("", 1);
        let mut other_prefix = hub.watch("/zzz/", 1);
        commit(&hub, &hist, 2..=20); // returns although nobody reads: publish never waits
        assert_eq!(
            hub.watcher_count(),
            1,
            "only the idle /zzz/ watcher is left"
        );
        assert_eq!(revs(&mut slow, 4).await, vec![2, 3, 4, 5]);
        assert!(matches!(
            slow.next().await,
            Some(Err(StoreError::WatcherTooSlow))
        ));
        assert!(slow.next().await.is_none());
        hub.close();
        assert!(matches!(
            other_prefix.next().await,
            Some(Err(StoreError::Unavailable(_)))
        ));
    }

    #[tokio::test]
    async fn compacted_history_ends_the_stream() {
        let hist = Arc::new(VecHistory(Mutex::new(Vec::new()), 50));
        let opts = HubOptions {
            ring_events: 1,
            watcher_buffer: 8,
            ..HubOptions::default()
        };
        let hub = WatchHub::new(1, hist.clone(), opts);
        commit(&hub, &hist, 2..=100);
        let mut w = hub.watch("", 10);
        assert!(matches!(
            w.next().await,
            Some(Err(StoreError::Compacted { compacted: 50, .. }))
        ));
        assert!(w.next().await.is_none());
    }

    #[tokio::test]
    async fn dropped_watchers_are_pruned_on_the_next_publish() {
        let hist = Arc::new(VecHistory(Mutex::new(Vec::new()), 0));
        let hub = WatchHub::new(1, hist.clone(), HubOptions::default());
        drop(hub.watch("", 1));
        assert_eq!(hub.watcher_count(), 1);
        commit(&hub, &hist, 2..=2);
        assert_eq!(hub.watcher_count(), 0);
    }
}
