//! The embedded backend (the default): one redb file, one group-commit writer thread, the watch hub.
//!
//! # Tables
//!
//! | table | key -> value | why |
//! |---|---|---|
//! | `kv` | key -> `create_revision, mod_revision, value` | the current state; reads are redb read transactions (MVCC snapshots), so they never wait for the writer |
//! | `log` | revision -> the events of that revision, with previous values | watch catch-up and resume after restart, and reads at older revisions (undo the newer events) |
//! | `meta` | `revision`, `compacted` | the global revision and the compaction point, committed with the data they describe |
//! | `counts` | directory prefix (`""`, `/k8s/`, `/k8s/c1/`, ...) -> keys under it | [`Store::count`] of a directory is one read |
//!
//! # Writes: group commit
//!
//! Every [`Store::txn`] is queued to one writer thread. The writer takes everything queued (up to
//! [`EmbeddedOptions::max_batch`] transactions), applies them in order inside one redb write
//! transaction committed with `Durability::Immediate` (one fsync for the whole batch), and only then
//! answers each caller and publishes the events. Preconditions are checked per transaction against
//! the state left by the transactions before it in the batch; a transaction whose precondition fails
//! changes nothing, consumes no revision and does not disturb the others. If the commit itself fails,
//! every transaction of the batch gets the error and nothing of it is visible.
//!
//! # History window
//!
//! The log keeps the last [`EmbeddedOptions::history_window`] revisions (default 100,000). Reads at a
//! revision inside the window are served by undoing the newer log entries over the current state
//! (cost: the writes since that revision); watches from a revision inside the window replay the
//! log, then the in-memory ring, then live events. Older revisions get [`StoreError::Compacted`].
//! The writer trims the log in the same transaction as the writes, as many rows as the batch
//! added, so the cost is spread evenly over the commits.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use bytes::Bytes;
use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, Table, TableDefinition,
    WriteTransaction,
};
use tokio::sync::oneshot;

use super::record::{decode_events, decode_events_where, decode_row, encode_events, encode_row};
use crate::key::{dir_prefixes, is_dir_prefix};
use crate::watch::{History, HubOptions, WatchHub};
use crate::{
    EventKind, KeyValue, ListOptions, ListResult, Op, Revision, Store, StoreError, TxnResult,
    WatchEvent, WatchStream, txn,
};

const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
const LOG: TableDefinition<i64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
const COUNTS: TableDefinition<&str, u64> = TableDefinition::new("counts");

const META_REVISION: &str = "revision";
const META_COMPACTED: &str = "compacted";

/// The revision of an empty store (etcd's too): the first write gets revision 2.
const INITIAL_REVISION: Revision = 1;

/// Tuning of the embedded backend.
#[derive(Clone, Copy, Debug)]
pub struct EmbeddedOptions {
    /// Revisions of history kept for watches and reads at older revisions.
    pub history_window: Revision,
    /// Most transactions applied per group commit.
    pub max_batch: usize,
    /// Ring and per-watcher buffer sizes (see [`crate::watch`]).
    pub hub: HubOptions,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            history_window: 100_000,
            max_batch: 1024,
            hub: HubOptions::default(),
        }
    }
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

enum Request {
    Txn {
        ops: Vec<Op>,
        reply: oneshot::Sender<Result<TxnResult, StoreError>>,
    },
    Compact {
        revision: Revision,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// Revision counters the writer publishes for lock-free reads.
struct Shared {
    revision: AtomicI64,
    compacted: AtomicI64,
}

/// The embedded store on one redb file. See the module docs for layout and guarantees.
pub struct EmbeddedStore {
    db: Arc<Database>,
    queue: Option<std_mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    hub: Arc<WatchHub>,
    shared: Arc<Shared>,
}

impl EmbeddedStore {
    /// Opens (or creates) the store file at `path`. Blocking: it may replay redb's recovery after a
    /// crash; call it from `spawn_blocking` (as [`crate::open`] does).
    pub fn open(path: &Path, opts: EmbeddedOptions) -> Result<Self, StoreError> {
        let db = Database::create(path)
            .map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))?;
        let db = Arc::new(db);
        let (revision, compacted) = init_tables(&db)?;
        let shared = Arc::new(Shared {
            revision: AtomicI64::new(revision),
            compacted: AtomicI64::new(compacted),
        });
        let history = Arc::new(LogHistory {
            db: Arc::downgrade(&db),
        });
        let hub = Arc::new(WatchHub::new(revision, history, opts.hub));
        let (queue, rx) = std_mpsc::channel();
        let writer = Writer {
            db: db.clone(),
            rx,
            hub: hub.clone(),
            shared: shared.clone(),
            window: opts.history_window.max(1),
            max_batch: opts.max_batch.max(1),
            revision,
            compacted,
        };
        let writer = std::thread::Builder::new()
            .name("skiff-store-writer".into())
            .spawn(move || writer.run())
            .map_err(io)?;
        Ok(EmbeddedStore {
            db,
            queue: Some(queue),
            writer: Some(writer),
            hub,
            shared,
        })
    }

    /// The watch hub (for metrics: live watchers).
    pub fn hub(&self) -> &WatchHub {
        &self.hub
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Request,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let queue = self
            .queue
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("the store is closed".into()))?;
        queue
            .send(make(reply))
            .map_err(|_| StoreError::Unavailable("the store writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the store writer has stopped".into()))?
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        self.db.begin_read().map_err(io)
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued and exit; joining it releases the
        // file before a reopen in the same process.
        self.queue.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn init_tables(db: &Database) -> Result<(Revision, Revision), StoreError> {
    let mut wtx = db.begin_write().map_err(io)?;
    wtx.set_durability(Durability::Immediate).map_err(io)?;
    let (revision, compacted);
    {
        wtx.open_table(KV).map_err(io)?;
        wtx.open_table(LOG).map_err(io)?;
        wtx.open_table(COUNTS).map_err(io)?;
        let mut meta = wtx.open_table(META).map_err(io)?;
        revision = match meta.get(META_REVISION).map_err(io)? {
            Some(v) => v.value(),
            None => INITIAL_REVISION,
        };
        compacted = match meta.get(META_COMPACTED).map_err(io)? {
            Some(v) => v.value(),
            None => 0,
        };
        meta.insert(META_REVISION, revision).map_err(io)?;
        meta.insert(META_COMPACTED, compacted).map_err(io)?;
    }
    wtx.commit().map_err(io)?;
    Ok((revision, compacted))
}

fn meta_of(rtx: &ReadTransaction) -> Result<(Revision, Revision), StoreError> {
    let meta = rtx.open_table(META).map_err(io)?;
    let get = |k: &str| -> Result<Revision, StoreError> {
        Ok(meta
            .get(k)
            .map_err(io)?
            .map(|v| v.value())
            .unwrap_or_default())
    };
    Ok((get(META_REVISION)?, get(META_COMPACTED)?))
}

/// The group-commit writer (runs on its own thread).
struct Writer {
    db: Arc<Database>,
    rx: std_mpsc::Receiver<Request>,
    hub: Arc<WatchHub>,
    shared: Arc<Shared>,
    window: Revision,
    max_batch: usize,
    revision: Revision,
    compacted: Revision,
}

/// What one queued request turned into, before the commit decides whether it stands.
enum Outcome {
    Txn(
        oneshot::Sender<Result<TxnResult, StoreError>>,
        Result<TxnResult, StoreError>,
    ),
    Compact(
        oneshot::Sender<Result<(), StoreError>>,
        Result<(), StoreError>,
    ),
}

/// The tables of one write transaction.
struct Tables<'t> {
    kv: Table<'t, &'static str, &'static [u8]>,
    log: Table<'t, i64, &'static [u8]>,
    /// Per-directory count changes of this batch, applied once at the end.
    deltas: HashMap<String, i64>,
}

impl Writer {
    fn run(mut self) {
        while let Ok(first) = self.rx.recv() {
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                match self.rx.try_recv() {
                    Ok(req) => batch.push(req),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
        }
        self.hub.close();
    }

    fn commit_batch(&mut self, batch: Vec<Request>) {
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut events = Vec::new();
        let (mut revision, mut compacted) = (self.revision, self.compacted);
        let committed = self.db.begin_write().map_err(io).and_then(|mut wtx| {
            wtx.set_durability(Durability::Immediate).map_err(io)?;
            self.apply(
                &wtx,
                batch,
                &mut outcomes,
                &mut events,
                &mut revision,
                &mut compacted,
            )?;
            wtx.commit().map_err(io)
        });
        match committed {
            Ok(()) => {
                self.revision = revision;
                self.compacted = compacted;
                self.shared.revision.store(revision, Ordering::Release);
                self.shared.compacted.store(compacted, Ordering::Release);
                // Answer first, then fan out: with many watchers publishing is the slower half,
                // and a caller's ack need not wait for it. Safe for a watch the caller starts
                // right after its ack: the hub has not published the batch yet, so that watch
                // registers for it live (see `watch.rs`, "Ordering argument").
                for outcome in outcomes {
                    match outcome {
                        Outcome::Txn(reply, result) => {
                            let _ = reply.send(result);
                        }
                        Outcome::Compact(reply, result) => {
                            let _ = reply.send(result);
                        }
                    }
                }
                self.hub.publish(events);
            }
            Err(err) => {
                tracing::error!(error = %err, "store commit failed; the batch is refused");
                for outcome in outcomes {
                    match outcome {
                        Outcome::Txn(reply, _) => {
                            let _ = reply.send(Err(err.clone()));
                        }
                        Outcome::Compact(reply, _) => {
                            let _ = reply.send(Err(err.clone()));
                        }
                    }
                }
            }
        }
    }

    /// Applies a batch inside `wtx`. An `Err` aborts the whole batch (a storage failure); a refused
    /// transaction is an `Ok` with its error in `outcomes`.
    fn apply(
        &self,
        wtx: &WriteTransaction,
        batch: Vec<Request>,
        outcomes: &mut Vec<Outcome>,
        events: &mut Vec<WatchEvent>,
        revision: &mut Revision,
        compacted: &mut Revision,
    ) -> Result<(), StoreError> {
        let mut t = Tables {
            kv: wtx.open_table(KV).map_err(io)?,
            log: wtx.open_table(LOG).map_err(io)?,
            deltas: HashMap::new(),
        };
        for req in batch {
            match req {
                Request::Txn { ops, reply } => {
                    let result = apply_txn(&mut t, &ops, revision, events)?;
                    outcomes.push(Outcome::Txn(reply, result));
                }
                Request::Compact {
                    revision: target,
                    reply,
                } => {
                    let result = if target > *revision {
                        Err(StoreError::FutureRevision {
                            requested: target,
                            current: *revision,
                        })
                    } else {
                        trim_log(&mut t.log, compacted, target)?;
                        Ok(())
                    };
                    outcomes.push(Outcome::Compact(reply, result));
                }
            }
        }
        // Keep the window exactly: each batch drops as many old rows as it added, so no single
        // commit (and none of its callers) pays for deleting thousands of rows at once.
        if *revision - *compacted > self.window {
            trim_log(&mut t.log, compacted, *revision - self.window)?;
        }
        if !t.deltas.is_empty() {
            let mut counts = wtx.open_table(COUNTS).map_err(io)?;
            for (dir, delta) in t.deltas.drain() {
                let old = counts
                    .get(dir.as_str())
                    .map_err(io)?
                    .map(|v| v.value())
                    .unwrap_or(0);
                let new = old.saturating_add_signed(delta);
                if new == 0 {
                    counts.remove(dir.as_str()).map_err(io)?;
                } else {
                    counts.insert(dir.as_str(), new).map_err(io)?;
                }
            }
        }
        let mut meta = wtx.open_table(META).map_err(io)?;
        meta.insert(META_REVISION, *revision).map_err(io)?;
        meta.insert(META_COMPACTED, *compacted).map_err(io)?;
        Ok(())
    }
}

/// Deletes log rows at and below `target` and moves the compaction point there.
fn trim_log(
    log: &mut Table<'_, i64, &'static [u8]>,
    compacted: &mut Revision,
    target: Revision,
) -> Result<(), StoreError> {
    if target <= *compacted {
        return Ok(());
    }
    log.retain_in(..=target, |_, _| false).map_err(io)?;
    *compacted = target;
    Ok(())
}

/// Applies one transaction. Outer `Err`: storage failure. Inner `Err`: refused, nothing changed.
fn apply_txn(
    t: &mut Tables<'_>,
    ops: &[Op],
    revision: &mut Revision,
    events: &mut Vec<WatchEvent>,
) -> Result<Result<TxnResult, StoreError>, StoreError> {
    let mut previous = Vec::with_capacity(ops.len());
    for op in ops {
        let current = match t.kv.get(op.key()).map_err(io)? {
            Some(row) => Some(decode_row(op.key(), row.value())?),
            None => None,
        };
        if !op.precondition().holds(current.as_ref()) {
            return Ok(Err(StoreError::PreconditionFailed {
                key: op.key().to_string(),
                current,
            }));
        }
        previous.push(current);
    }
    let changes = ops
        .iter()
        .zip(&previous)
        .any(|(op, prev)| matches!(op, Op::Put { .. }) || prev.is_some());
    if !changes {
        // Deleting only absent keys writes nothing; like etcd, the revision does not move.
        return Ok(Ok(TxnResult {
            revision: *revision,
            previous,
        }));
    }
    let rev = *revision + 1;
    let first_event = events.len();
    for (op, prev) in ops.iter().zip(&previous) {
        match op {
            Op::Put { key, value, .. } => {
                let create = prev.as_ref().map_or(rev, |p| p.create_revision);
                t.kv.insert(key.as_str(), encode_row(create, rev, value).as_slice())
                    .map_err(io)?;
                if prev.is_none() {
                    count(&mut t.deltas, key, 1);
                }
                events.push(WatchEvent {
                    kind: EventKind::Put,
                    kv: KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        create_revision: create,
                        mod_revision: rev,
                    },
                    prev: prev.clone(),
                });
            }
            Op::Delete { key, .. } => {
                if prev.is_none() {
                    continue;
                }
                t.kv.remove(key.as_str()).map_err(io)?;
                count(&mut t.deltas, key, -1);
                events.push(WatchEvent {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        key: key.clone(),
                        value: Bytes::new(),
                        create_revision: 0,
                        mod_revision: rev,
                    },
                    prev: prev.clone(),
                });
            }
        }
    }
    t.log
        .insert(rev, encode_events(&events[first_event..]).as_slice())
        .map_err(io)?;
    *revision = rev;
    Ok(Ok(TxnResult {
        revision: rev,
        previous,
    }))
}

fn count(deltas: &mut HashMap<String, i64>, key: &str, delta: i64) {
    for dir in dir_prefixes(key) {
        match deltas.get_mut(dir) {
            Some(d) => *d += delta,
            None => {
                deltas.insert(dir.to_string(), delta);
            }
        }
    }
}

/// Catch-up reads from the `log` table. Holds the database weakly so that open watch streams do not
/// keep the file open after the store is dropped.
struct LogHistory {
    db: Weak<Database>,
}

impl History for LogHistory {
    fn read(&self, after: Revision, upto: Revision) -> Result<Vec<WatchEvent>, StoreError> {
        let db = self
            .db
            .upgrade()
            .ok_or_else(|| StoreError::Unavailable("the store is closed".into()))?;
        let rtx = db.begin_read().map_err(io)?;
        let (_, compacted) = meta_of(&rtx)?;
        if after < compacted {
            return Err(StoreError::Compacted {
                requested: after,
                compacted,
            });
        }
        let log = rtx.open_table(LOG).map_err(io)?;
        let mut events = Vec::new();
        for row in log.range(after + 1..=upto).map_err(io)? {
            let (rev, row) = row.map_err(io)?;
            events.extend(decode_events(rev.value(), row.value())?);
        }
        let kv = rtx.open_table(KV).map_err(io)?;
        fill_put_values(&mut events, upto, &kv, &log)?;
        Ok(events)
    }
}

/// Gives the puts of a history read their values, which the log does not repeat (see
/// `record.rs`): the value a put wrote is the previous value of the next event on its key, found
/// walking the read backwards; for the last put on a key in the read, it is the `kv` row if the
/// key still has that revision, and otherwise the previous value of the key's first event after
/// `upto`, found by scanning forward until every such key is resolved.
fn fill_put_values(
    events: &mut [WatchEvent],
    upto: Revision,
    kv: &impl ReadableTable<&'static str, &'static [u8]>,
    log: &impl ReadableTable<i64, &'static [u8]>,
) -> Result<(), StoreError> {
    let mut next_prev: HashMap<String, Bytes> = HashMap::new();
    let mut overwritten_later: HashMap<String, usize> = HashMap::new();
    for i in (0..events.len()).rev() {
        let e = &mut events[i];
        if e.kind == EventKind::Put {
            if let Some(value) = next_prev.get(&e.kv.key) {
                e.kv.value = value.clone();
            } else {
                let current = match kv.get(e.kv.key.as_str()).map_err(io)? {
                    Some(row) => Some(decode_row(&e.kv.key, row.value())?),
                    None => None,
                };
                match current {
                    Some(row) if row.mod_revision == e.kv.mod_revision => e.kv.value = row.value,
                    _ => {
                        overwritten_later.insert(e.kv.key.clone(), i);
                    }
                }
            }
        }
        // Before this event the key held its previous value (absent: nothing a put could need).
        match &e.prev {
            Some(p) => next_prev.insert(e.kv.key.clone(), p.value.clone()),
            None => next_prev.remove(&e.kv.key),
        };
    }
    if overwritten_later.is_empty() {
        return Ok(());
    }
    for row in log.range(upto + 1..).map_err(io)? {
        let (rev, row) = row.map_err(io)?;
        for later in decode_events(rev.value(), row.value())? {
            if let Some(i) = overwritten_later.remove(&later.kv.key) {
                let prev = later.prev.ok_or_else(|| {
                    StoreError::Io(format!(
                        "embedded store log: {} at revision {} has no previous value",
                        later.kv.key,
                        rev.value()
                    ))
                })?;
                events[i].kv.value = prev.value;
            }
        }
        if overwritten_later.is_empty() {
            return Ok(());
        }
    }
    Err(StoreError::Io(format!(
        "embedded store log: the value written to {:?} is nowhere (damaged file?)",
        overwritten_later.keys().next()
    )))
}

/// A range read inside one snapshot: the current rows, with the keys written after `at` replaced by
/// their state at `at` (taken from the log's previous values).
fn list_blocking(
    db: &Database,
    prefix: &str,
    opts: &ListOptions,
) -> Result<ListResult, StoreError> {
    let rtx = db.begin_read().map_err(io)?;
    let (current, compacted) = meta_of(&rtx)?;
    let at = opts.at_revision.unwrap_or(current);
    if at > current {
        return Err(StoreError::FutureRevision {
            requested: at,
            current,
        });
    }
    if at < compacted {
        return Err(StoreError::Compacted {
            requested: at,
            compacted,
        });
    }
    let start_after = opts.start_after.as_deref().filter(|s| *s >= prefix);
    let after_start = |key: &str| start_after.is_none_or(|s| key > s);

    // State at `at` of every key under the prefix written since: the previous value of its first
    // later event.
    let mut undo: BTreeMap<String, Option<KeyValue>> = BTreeMap::new();
    if at < current {
        let log = rtx.open_table(LOG).map_err(io)?;
        for row in log.range(at + 1..=current).map_err(io)? {
            let (rev, row) = row.map_err(io)?;
            let wanted = |key: &str| key.starts_with(prefix) && after_start(key);
            for e in decode_events_where(rev.value(), row.value(), wanted)? {
                undo.entry(e.kv.key).or_insert(e.prev);
            }
        }
    }

    let kv = rtx.open_table(KV).map_err(io)?;
    let lower = match start_after {
        Some(s) => Bound::Excluded(s),
        None => Bound::Included(prefix),
    };
    let mut rows = kv
        .range::<&str>((lower, Bound::Unbounded))
        .map_err(io)?
        .map(|r| r.map_err(io))
        .take_while(|r| {
            r.as_ref()
                .map_or(true, |(k, _)| k.value().starts_with(prefix))
        })
        .peekable();
    let mut undo = undo.into_iter().peekable();
    let want = if opts.limit == 0 {
        usize::MAX
    } else {
        opts.limit
    };
    let mut items = Vec::new();
    let mut more = false;
    loop {
        // Merge the two key-ordered sources; an undo entry wins over the current row of its key.
        let next_row_key = match rows.peek() {
            Some(Ok((k, _))) => Some(k.value().to_string()),
            Some(Err(_)) => {
                return Err(rows
                    .next()
                    .and_then(Result::err)
                    .unwrap_or_else(|| io("range")));
            }
            None => None,
        };
        let next_undo_key = undo.peek().map(|(k, _)| k.clone());
        let item = match (next_row_key, next_undo_key) {
            (None, None) => break,
            (Some(r), Some(u)) if u <= r => {
                if u == r {
                    rows.next();
                }
                undo.next().and_then(|(_, v)| v)
            }
            (Some(_), _) => match rows.next() {
                Some(Ok((k, v))) => Some(decode_row(k.value(), v.value())?),
                _ => None,
            },
            (None, Some(_)) => undo.next().and_then(|(_, v)| v),
        };
        let Some(item) = item else { continue };
        if items.len() == want {
            more = true;
            break;
        }
        items.push(item);
    }
    Ok(ListResult {
        items,
        revision: at,
        more,
    })
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let rtx = self.read()?;
        let kv = rtx.open_table(KV).map_err(io)?;
        match kv.get(key).map_err(io)? {
            Some(row) => Ok(Some(decode_row(key, row.value())?)),
            None => Ok(None),
        }
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StoreError> {
        let db = self.db.clone();
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || list_blocking(&db, &prefix, &opts))
            .await
            .map_err(io)?
    }

    async fn count(&self, prefix: &str) -> Result<u64, StoreError> {
        let rtx = self.read()?;
        if is_dir_prefix(prefix) {
            let counts = rtx.open_table(COUNTS).map_err(io)?;
            return Ok(counts
                .get(prefix)
                .map_err(io)?
                .map(|v| v.value())
                .unwrap_or(0));
        }
        let kv = rtx.open_table(KV).map_err(io)?;
        let mut n = 0;
        for row in kv.range(prefix..).map_err(io)? {
            let (k, _) = row.map_err(io)?;
            if !k.value().starts_with(prefix) {
                break;
            }
            n += 1;
        }
        Ok(n)
    }

    async fn txn(&self, ops: Vec<Op>) -> Result<TxnResult, StoreError> {
        txn::validate(&ops)?;
        self.request(|reply| Request::Txn { ops, reply }).await
    }

    async fn watch(
        &self,
        prefix: &str,
        from_revision: Revision,
    ) -> Result<WatchStream, StoreError> {
        let compacted = self.shared.compacted.load(Ordering::Acquire);
        if from_revision < compacted {
            return Err(StoreError::Compacted {
                requested: from_revision,
                compacted,
            });
        }
        Ok(self.hub.watch(prefix, from_revision))
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.shared.revision.load(Ordering::Acquire))
    }

    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.shared.compacted.load(Ordering::Acquire))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.request(|reply| Request::Compact { revision, reply })
            .await
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::Precondition;

    fn put(key: &str, value: &str) -> Op {
        Op::Put {
            key: key.into(),
            value: Bytes::from(value.to_string()),
            precondition: Precondition::None,
        }
    }

    fn open(dir: &Path, window: Revision) -> EmbeddedStore {
        let opts = EmbeddedOptions {
            history_window: window,
            ..EmbeddedOptions::default()
        };
        EmbeddedStore::open(&dir.join("store.redb"), opts).unwrap()
    }

    #[tokio::test]
    async fn state_and_history_survive_a_clean_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), 1000);
        store.txn(vec![put("/a/1", "x")]).await.unwrap();
        let r = store
            .txn(vec![put("/a/1", "y"), put("/a/2", "z")])
            .await
            .unwrap();
        assert_eq!(r.revision, 3);
        drop(store);
        let store = open(dir.path(), 1000);
        assert_eq!(store.current_revision().await.unwrap(), 3);
        assert_eq!(store.count("/a/").await.unwrap(), 2);
        assert_eq!(store.get("/a/1").await.unwrap().unwrap().mod_revision, 3);
        let mut w = store.watch("/a/", 0).await.unwrap();
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(w.next().await.unwrap().unwrap().kv.mod_revision);
        }
        assert_eq!(got, vec![2, 3, 3]);
        assert_eq!(store.txn(vec![put("/a/3", "w")]).await.unwrap().revision, 4);
    }

    #[tokio::test]
    async fn replay_from_the_log_restores_every_value_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), 100_000);
        let del = |k: &str| Op::Delete {
            key: k.into(),
            precondition: Precondition::None,
        };
        // /v/a: written, overwritten, deleted, recreated; /v/b: written once, overwritten only after
        // more than one history chunk (1,024 revisions); /v/c: written once, never again.
        let mut expected = Vec::new();
        for (op, value) in [
            (put("/v/a", "a1"), "a1"),
            (put("/v/b", "b1"), "b1"),
            (put("/v/a", "a2"), "a2"),
            (del("/v/a"), ""),
            (put("/v/a", "a3"), "a3"),
            (put("/v/c", "c1"), "c1"),
        ] {
            let key = op.key().to_string();
            let r = store.txn(vec![op]).await.unwrap();
            expected.push((r.revision, key, value.to_string()));
        }
        for i in 0..1100 {
            store
                .txn(vec![put(&format!("/filler/{i}"), "f")])
                .await
                .unwrap();
        }
        for (op, value) in [(put("/v/b", "b2"), "b2"), (put("/v/a", "a4"), "a4")] {
            let key = op.key().to_string();
            let r = store.txn(vec![op]).await.unwrap();
            expected.push((r.revision, key, value.to_string()));
        }
        drop(store);
        // Reopened, the ring is empty: everything comes from the log.
        let store = open(dir.path(), 100_000);
        let mut w = store.watch("/v/", 0).await.unwrap();
        let mut got = Vec::new();
        for _ in 0..expected.len() {
            let e = w.next().await.unwrap().unwrap();
            got.push((
                e.kv.mod_revision,
                e.kv.key,
                String::from_utf8(e.kv.value.to_vec()).unwrap(),
            ));
        }
        assert_eq!(got, expected);
    }

    /// The shape of the durability test's last transaction before a kill: a two-key create as the
    /// newest revision. After a reopen the log alone must replay both events, with their values,
    /// and a read at that revision must hold both keys.
    #[tokio::test]
    async fn a_multi_key_txn_at_the_tail_replays_whole_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), 1000);
        store.txn(vec![put("/s/1", "/s/1")]).await.unwrap();
        let last = store
            .txn(vec![put("/s/2", "/s/2"), put("/s/2t", "/s/2t")])
            .await
            .unwrap()
            .revision;
        drop(store);
        let store = open(dir.path(), 1000);
        assert_eq!(store.current_revision().await.unwrap(), last);
        let history = LogHistory {
            db: Arc::downgrade(&store.db),
        };
        let events: Vec<_> = history
            .read(last - 1, last)
            .unwrap()
            .into_iter()
            .map(|e| (e.kv.mod_revision, e.kv.key, e.kv.value))
            .collect();
        assert_eq!(
            events,
            vec![
                (last, "/s/2".to_string(), Bytes::from_static(b"/s/2")),
                (last, "/s/2t".to_string(), Bytes::from_static(b"/s/2t")),
            ]
        );
        // Through the watch too, and nothing after them until the next write.
        let mut w = store.watch("/s/", last - 1).await.unwrap();
        for key in ["/s/2", "/s/2t"] {
            assert_eq!(w.next().await.unwrap().unwrap().kv.key, key);
        }
        let more = tokio::time::timeout(std::time::Duration::from_millis(50), w.next()).await;
        assert!(more.is_err(), "no event beyond the last revision");
        let page = store
            .list(
                "/s/",
                ListOptions {
                    at_revision: Some(last),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let keys: Vec<_> = page.items.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["/s/1", "/s/2", "/s/2t"]);
    }

    /// Acks go out before the hub publishes the batch: a watch started right after an ack, from
    /// just before the acked revision, must still get that revision (live, not skipped).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_watch_started_right_after_an_ack_sees_the_acked_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open(dir.path(), 1000));
        // Other writers keep batches forming, so acks and publishes interleave.
        let noise = {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..2000 {
                    store
                        .txn(vec![put(&format!("/noise/{i}"), "n")])
                        .await
                        .unwrap();
                }
            })
        };
        for i in 0..200 {
            let key = format!("/acked/{i}");
            let rev = store.txn(vec![put(&key, "v")]).await.unwrap().revision;
            let mut w = store.watch("/acked/", rev - 1).await.unwrap();
            let e = tokio::time::timeout(std::time::Duration::from_secs(5), w.next())
                .await
                .expect("the acked write never reached the watch")
                .unwrap()
                .unwrap();
            assert_eq!((e.kv.key, e.kv.mod_revision), (key, rev));
        }
        noise.abort();
    }

    #[tokio::test]
    async fn the_writer_trims_history_to_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), 32);
        for i in 0..100 {
            store.txn(vec![put(&format!("/k/{i}"), "v")]).await.unwrap();
        }
        let current = store.current_revision().await.unwrap();
        let compacted = store.compacted_revision().await.unwrap();
        assert_eq!(current, 101);
        assert!(
            compacted > 0 && current - compacted >= 32 && current - compacted < 32 + 2,
            "{compacted}"
        );
        let err = store
            .list(
                "/k/",
                ListOptions {
                    at_revision: Some(compacted - 1),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Compacted { .. }));
        assert!(store.watch("/k/", compacted - 1).await.is_err());
        // The whole window is still readable and replayable.
        let page = store
            .list(
                "/k/",
                ListOptions {
                    at_revision: Some(compacted),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.items.len() as i64, compacted - 1);
        let mut w = store.watch("/k/", compacted).await.unwrap();
        assert_eq!(
            w.next().await.unwrap().unwrap().kv.mod_revision,
            compacted + 1
        );
        // Rows older than the window are gone from the file.
        let rtx = store.db.begin_read().unwrap();
        let log = rtx.open_table(LOG).unwrap();
        assert_eq!(log.first().unwrap().unwrap().0.value(), compacted + 1);
    }

    #[tokio::test]
    async fn a_refused_txn_in_a_batch_does_not_disturb_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open(dir.path(), 1000));
        store.txn(vec![put("/x", "0")]).await.unwrap();
        // Many concurrent writers so that batches form; half of them are stale creates.
        let mut tasks = Vec::new();
        for i in 0..200 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let op = if i % 2 == 0 {
                    Op::Put {
                        key: "/x".into(),
                        value: Bytes::from_static(b"dup"),
                        precondition: Precondition::MustNotExist,
                    }
                } else {
                    put(&format!("/y/{i}"), "v")
                };
                store.txn(vec![op]).await
            }));
        }
        let mut revs = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(r) => {
                    assert!(i % 2 == 1);
                    revs.push(r.revision);
                }
                Err(StoreError::PreconditionFailed { key, current }) => {
                    assert_eq!(key, "/x");
                    assert_eq!(current.unwrap().mod_revision, 2);
                }
                Err(e) => panic!("{e}"),
            }
        }
        revs.sort();
        assert_eq!(
            revs,
            (3..103).collect::<Vec<_>>(),
            "refused txns consume no revision"
        );
        assert_eq!(store.count("/y/").await.unwrap(), 100);
        assert_eq!(store.count("").await.unwrap(), 101);
    }

    #[tokio::test]
    async fn count_of_a_non_directory_prefix_scans() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), 1000);
        store
            .txn(vec![put("/p/ab", "1"), put("/p/ac", "1"), put("/p/b", "1")])
            .await
            .unwrap();
        assert_eq!(store.count("/p/a").await.unwrap(), 2);
        assert_eq!(store.count("/p/").await.unwrap(), 3);
        store
            .txn(vec![Op::Delete {
                key: "/p/ab".into(),
                precondition: Precondition::None,
            }])
            .await
            .unwrap();
        assert_eq!(store.count("/p/a").await.unwrap(), 1);
        assert_eq!(store.count("/p/").await.unwrap(), 2);
        assert_eq!(store.count("/nothing/").await.unwrap(), 0);
    }
}
