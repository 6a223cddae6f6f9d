//! The etcd v3 backend (`--store etcd://h1:2379,h2:2379`): several Skiff processes share one keyspace.
//!
//! Keys map 1:1 to etcd keys and revisions are etcd's own (an empty etcd is at revision 1, like the
//! embedded store). A transaction is one etcd `Txn`: each precondition becomes compares
//! (`MustNotExist`: `version = 0`; `MustExist`: `version > 0`; `ModRevision(r)`: `version > 0` and
//! `mod_revision = r`), the success branch holds the writes with `prev_kv`, and the failure branch
//! reads the guarded keys, so a refused transaction reports the key's current state in the same round
//! trip. Watches are etcd watches with `prev_kv` from `from_revision + 1`.
//!
//! Differences from the embedded backend that the contract allows: a slow watcher is never cut off
//! with `WatcherTooSlow` (etcd buffers it server-side and gRPC flow control pushes back), and
//! [`Store::compacted_revision`] is found by probing reads (etcd does not report it directly).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, KvClient,
    PutOptions, Txn, TxnOp, TxnOpResponse, WatchOptions, WatchRequestSender, WatchResponseStream,
};

use crate::key::prefix_end;
use crate::{
    EventKind, KeyValue, ListOptions, ListResult, Op, Precondition, Revision, Store, StoreError,
    TxnResult, WatchEvent, WatchStream, txn,
};

/// Tuning of the etcd backend.
#[derive(Clone, Copy, Debug)]
pub struct EtcdOptions {
    /// Revisions of history the periodic compactor keeps (as the embedded backend's window).
    pub history_window: Revision,
    /// How often to compact (kube-apiserver's default is 5 minutes); `None` disables it, for
    /// deployments where something else (another process, etcd's `--auto-compaction-*`) compacts.
    pub compact_interval: Option<Duration>,
    /// Timeout of each request and of the initial connection.
    pub timeout: Duration,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        EtcdOptions {
            history_window: 100_000,
            compact_interval: Some(Duration::from_secs(300)),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Turns `h1:2379,h2:2379` (the part after `etcd://`) into endpoint URLs.
pub(crate) fn parse_endpoints(hosts: &str) -> Result<Vec<String>, StoreError> {
    let endpoints: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| {
            if h.contains("://") {
                h.to_string()
            } else {
                format!("http://{h}")
            }
        })
        .collect();
    if endpoints.is_empty() {
        return Err(StoreError::InvalidArgument(format!(
            "etcd://{hosts}: no endpoints (expected etcd://host:port[,host:port...])"
        )));
    }
    Ok(endpoints)
}

/// The store on an etcd v3 cluster.
pub struct EtcdStore {
    client: Client,
    /// The highest compaction point seen; compaction only moves forward, so probes start here.
    known_compacted: Arc<AtomicI64>,
    compactor: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        if let Some(task) = self.compactor.take() {
            task.abort();
        }
    }
}

const COMPACTED_MSG: &str = "required revision has been compacted";
const FUTURE_MSG: &str = "required revision is a future revision";

/// Which etcd refusal an error is, for the callers that map it with numbers they know.
enum Refusal {
    Compacted,
    Future,
    Other(StoreError),
}

fn classify(e: etcd_client::Error) -> Refusal {
    match e {
        etcd_client::Error::GRpcStatus(status) => {
            let msg = status.message();
            if msg.contains(COMPACTED_MSG) {
                Refusal::Compacted
            } else if msg.contains(FUTURE_MSG) {
                Refusal::Future
            } else {
                Refusal::Other(match status.code() as i32 {
                    tonic_code::INVALID_ARGUMENT => StoreError::InvalidArgument(msg.to_string()),
                    _ => StoreError::Unavailable(format!("etcd: {msg}")),
                })
            }
        }
        other => Refusal::Other(StoreError::Unavailable(format!("etcd: {other}"))),
    }
}

/// The gRPC status codes we distinguish (tonic is not a direct dependency; the code enum is
/// reachable through etcd-client's error).
mod tonic_code {
    pub const INVALID_ARGUMENT: i32 = 3;
}

fn other(e: etcd_client::Error) -> StoreError {
    match classify(e) {
        Refusal::Compacted => StoreError::Io(format!("etcd: {COMPACTED_MSG}")),
        Refusal::Future => StoreError::Io(format!("etcd: {FUTURE_MSG}")),
        Refusal::Other(e) => e,
    }
}

fn to_kv(kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
    let key = std::str::from_utf8(kv.key())
        .map_err(|_| StoreError::Io(format!("etcd key {:?} is not UTF-8", kv.key())))?;
    Ok(KeyValue {
        key: key.to_string(),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    })
}

/// The etcd range `[start, end)` of keys under `prefix`, after `start_after` when given. etcd has no
/// empty key, so the empty prefix starts at `"\0"`; `"\0"` as range end means "no upper bound".
fn range_of(prefix: &str, start_after: Option<&str>) -> (Vec<u8>, Vec<u8>) {
    let start = match start_after.filter(|s| *s >= prefix) {
        Some(s) => {
            let mut k = s.as_bytes().to_vec();
            k.push(0);
            k
        }
        None if prefix.is_empty() => vec![0],
        None => prefix.as_bytes().to_vec(),
    };
    let end = match prefix_end(prefix.as_bytes()) {
        e if e.is_empty() => vec![0],
        e => e,
    };
    (start, end)
}

/// A key nothing stores (etcd keys under Skiff start with `/`), for reads that only want a header.
const PROBE_KEY: &[u8] = b"\0skiff-probe";

impl EtcdStore {
    /// Connects and checks that the cluster answers.
    pub async fn connect(endpoints: &[String], opts: EtcdOptions) -> Result<Self, StoreError> {
        let options = ConnectOptions::new()
            .with_connect_timeout(opts.timeout)
            .with_timeout(opts.timeout)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let client = Client::connect(endpoints, Some(options))
            .await
            .map_err(|e| StoreError::Unavailable(format!("etcd {endpoints:?}: {e}")))?;
        let mut store = EtcdStore {
            client,
            known_compacted: Arc::new(AtomicI64::new(0)),
            compactor: None,
        };
        store.current_revision().await?;
        if let Some(every) = opts.compact_interval {
            store.compactor = Some(tokio::spawn(compact_periodically(
                store.client.kv_client(),
                store.known_compacted.clone(),
                opts.history_window.max(1),
                every,
            )));
        }
        Ok(store)
    }

    fn kv(&self) -> KvClient {
        self.client.kv_client()
    }

    /// Whether a read at `revision` is still possible (false: compacted). A future revision counts as
    /// readable: it is not compacted.
    async fn readable_at(&self, revision: Revision) -> Result<bool, StoreError> {
        let opts = GetOptions::new().with_count_only().with_revision(revision);
        match self.kv().get(PROBE_KEY, Some(opts)).await {
            Ok(_) => Ok(true),
            Err(e) => match classify(e) {
                Refusal::Compacted => Ok(false),
                Refusal::Future => Ok(true),
                Refusal::Other(e) => Err(e),
            },
        }
    }

    /// The `Compacted` error for a refused read or watch at `requested`, with the current point.
    async fn compacted_error(&self, requested: Revision) -> StoreError {
        match self.compacted_revision().await {
            Ok(compacted) => StoreError::Compacted {
                requested,
                compacted,
            },
            Err(e) => e,
        }
    }
}

async fn compact_periodically(
    mut kv: KvClient,
    known: Arc<AtomicI64>,
    window: Revision,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let current = match kv
            .get(PROBE_KEY, Some(GetOptions::new().with_count_only()))
            .await
        {
            Ok(resp) => resp.header().map_or(0, |h| h.revision()),
            Err(e) => {
                tracing::warn!(error = %e, "etcd compactor: cannot read the revision");
                continue;
            }
        };
        let target = current - window;
        if target <= known.load(Ordering::Acquire) {
            continue;
        }
        match kv.compact(target, None).await {
            Ok(_) => {
                known.fetch_max(target, Ordering::AcqRel);
            }
            Err(e) => match classify(e) {
                // Another process compacted further already.
                Refusal::Compacted => {}
                Refusal::Future => {}
                Refusal::Other(e) => {
                    tracing::warn!(error = %e, "etcd compactor: compaction failed")
                }
            },
        }
    }
}

impl Precondition {
    fn compares(self, key: &str, out: &mut Vec<Compare>) {
        match self {
            Precondition::None => {}
            Precondition::MustNotExist => out.push(Compare::version(key, CompareOp::Equal, 0)),
            Precondition::MustExist => out.push(Compare::version(key, CompareOp::Greater, 0)),
            Precondition::ModRevision(rev) => {
                // An absent key has mod_revision 0 in etcd; the version compare keeps
                // ModRevision(0) from matching it (the embedded backend's meaning).
                out.push(Compare::version(key, CompareOp::Greater, 0));
                out.push(Compare::mod_revision(key, CompareOp::Equal, rev));
            }
        }
    }
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        if key.is_empty() {
            return Ok(None);
        }
        let resp = self.kv().get(key, None).await.map_err(other)?;
        resp.kvs().first().map(to_kv).transpose()
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StoreError> {
        // Revision 0 means "latest" to etcd; to us it is the (empty) state before any write, which
        // etcd keeps as revision 1.
        let etcd_rev = match opts.at_revision {
            None => 0,
            Some(r) if r < 0 => return Err(self.compacted_error(r).await),
            Some(r) => r.max(1),
        };
        let (start, end) = range_of(prefix, opts.start_after.as_deref());
        let mut get = GetOptions::new().with_range(end).with_revision(etcd_rev);
        if opts.limit > 0 {
            get = get.with_limit(i64::try_from(opts.limit).unwrap_or(i64::MAX));
        }
        let resp = match self.kv().get(start, Some(get)).await {
            Ok(resp) => resp,
            Err(e) => {
                let requested = opts.at_revision.unwrap_or_default();
                return Err(match classify(e) {
                    Refusal::Compacted => self.compacted_error(requested).await,
                    Refusal::Future => StoreError::FutureRevision {
                        requested,
                        current: self.current_revision().await?,
                    },
                    Refusal::Other(e) => e,
                });
            }
        };
        let items = resp
            .kvs()
            .iter()
            .map(to_kv)
            .collect::<Result<Vec<_>, _>>()?;
        let revision = match opts.at_revision {
            Some(r) => r,
            None => resp.header().map_or(0, |h| h.revision()),
        };
        Ok(ListResult {
            items,
            revision,
            more: resp.more(),
        })
    }

    async fn count(&self, prefix: &str) -> Result<u64, StoreError> {
        let (start, end) = range_of(prefix, None);
        let opts = GetOptions::new().with_range(end).with_count_only();
        let resp = self.kv().get(start, Some(opts)).await.map_err(other)?;
        Ok(u64::try_from(resp.count()).unwrap_or(0))
    }

    async fn txn(&self, ops: Vec<Op>) -> Result<TxnResult, StoreError> {
        txn::validate(&ops)?;
        if ops.is_empty() {
            return Ok(TxnResult {
                revision: self.current_revision().await?,
                previous: Vec::new(),
            });
        }
        let mut compares = Vec::new();
        let mut writes = Vec::with_capacity(ops.len());
        let mut guarded = Vec::new();
        for op in &ops {
            op.precondition().compares(op.key(), &mut compares);
            if op.precondition() != Precondition::None {
                guarded.push(op);
            }
            writes.push(match op {
                Op::Put { key, value, .. } => TxnOp::put(
                    key.as_str(),
                    value.to_vec(),
                    Some(PutOptions::new().with_prev_key()),
                ),
                Op::Delete { key, .. } => {
                    TxnOp::delete(key.as_str(), Some(DeleteOptions::new().with_prev_key()))
                }
            });
        }
        let reads: Vec<TxnOp> = guarded
            .iter()
            .map(|op| TxnOp::get(op.key(), None))
            .collect();
        let request = Txn::new().when(compares).and_then(writes).or_else(reads);
        let resp = self.kv().txn(request).await.map_err(other)?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let responses = resp.op_responses();
        if resp.succeeded() {
            let previous = responses
                .iter()
                .map(|r| match r {
                    TxnOpResponse::Put(p) => p.prev_key().map(to_kv).transpose(),
                    TxnOpResponse::Delete(d) => d.prev_kvs().first().map(to_kv).transpose(),
                    _ => Ok(None),
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(TxnResult { revision, previous });
        }
        for (op, r) in guarded.iter().zip(&responses) {
            let current = match r {
                TxnOpResponse::Get(g) => g.kvs().first().map(to_kv).transpose()?,
                _ => None,
            };
            if !op.precondition().holds(current.as_ref()) {
                return Err(StoreError::PreconditionFailed {
                    key: op.key().to_string(),
                    current,
                });
            }
        }
        Err(StoreError::Io(
            "etcd refused the transaction but every precondition holds".into(),
        ))
    }

    async fn watch(
        &self,
        prefix: &str,
        from_revision: Revision,
    ) -> Result<WatchStream, StoreError> {
        if from_revision < 0 || !self.readable_at(from_revision.max(1)).await? {
            return Err(self.compacted_error(from_revision).await);
        }
        let (start, end) = range_of(prefix, None);
        let opts = WatchOptions::new()
            .with_range(end)
            .with_start_revision(from_revision + 1)
            .with_prev_key();
        let (sender, responses) = self
            .client
            .watch_client()
            .watch(start, Some(opts))
            .await
            .map_err(other)?
            .split();
        let state = EtcdWatch {
            _sender: sender,
            responses,
            pending: VecDeque::new(),
            from: from_revision,
            done: false,
        };
        Ok(Box::pin(futures::stream::unfold(state, EtcdWatch::next)))
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        let opts = GetOptions::new().with_count_only();
        let resp = self.kv().get(PROBE_KEY, Some(opts)).await.map_err(other)?;
        resp.header()
            .map(|h| h.revision())
            .ok_or_else(|| StoreError::Io("etcd answered without a header".into()))
    }

    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        // Reads at the compaction point succeed and reads below it fail: find the boundary by
        // bisection between the last known point and the current revision (about 20 cheap reads
        // at a million revisions; only asked when a client fell behind).
        let known = self.known_compacted.load(Ordering::Acquire);
        if self.readable_at(known.max(1)).await? {
            return Ok(known);
        }
        let (mut lo, mut hi) = (known.max(1), self.current_revision().await?);
        // Invariant: not readable at lo, readable at hi.
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.readable_at(mid).await? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        self.known_compacted.fetch_max(hi, Ordering::AcqRel);
        Ok(hi)
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        match self.kv().compact(revision, None).await {
            Ok(_) => {
                self.known_compacted.fetch_max(revision, Ordering::AcqRel);
                Ok(())
            }
            Err(e) => match classify(e) {
                Refusal::Compacted => Ok(()),
                Refusal::Future => Err(StoreError::FutureRevision {
                    requested: revision,
                    current: self.current_revision().await?,
                }),
                Refusal::Other(e) => Err(e),
            },
        }
    }
}

/// One etcd watch turned into our stream.
struct EtcdWatch {
    /// Dropping the request side would end the gRPC stream; it lives as long as the watch.
    _sender: WatchRequestSender,
    responses: WatchResponseStream,
    pending: VecDeque<WatchEvent>,
    from: Revision,
    done: bool,
}

impl EtcdWatch {
    async fn next(mut self) -> Option<(Result<WatchEvent, StoreError>, Self)> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some((Ok(ev), self));
            }
            if self.done {
                return None;
            }
            let resp = match self.responses.message().await {
                Ok(Some(resp)) => resp,
                Ok(None) => {
                    self.done = true;
                    let err = StoreError::Unavailable("etcd closed the watch stream".into());
                    return Some((Err(err), self));
                }
                Err(e) => {
                    self.done = true;
                    return Some((Err(other(e)), self));
                }
            };
            if resp.canceled() {
                self.done = true;
                let err = if resp.compact_revision() > 0 {
                    StoreError::Compacted {
                        requested: self.from,
                        compacted: resp.compact_revision(),
                    }
                } else {
                    StoreError::Unavailable(format!(
                        "etcd cancelled the watch: {}",
                        resp.cancel_reason()
                    ))
                };
                return Some((Err(err), self));
            }
            for event in resp.events() {
                let Some(kv) = event.kv() else { continue };
                let prev = match event.prev_kv() {
                    Some(p) => match to_kv(p) {
                        Ok(p) => Some(p),
                        Err(e) => return Some((Err(e), self)),
                    },
                    None => None,
                };
                let mut kv = match to_kv(kv) {
                    Ok(kv) => kv,
                    Err(e) => return Some((Err(e), self)),
                };
                let kind = match event.event_type() {
                    EventType::Put => EventKind::Put,
                    EventType::Delete => {
                        kv.create_revision = 0;
                        kv.value = Bytes::new();
                        EventKind::Delete
                    }
                };
                self.pending.push_back(WatchEvent { kind, kv, prev });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_from_the_spec() {
        assert_eq!(
            parse_endpoints("h1:2379, h2:2379").unwrap(),
            ["http://h1:2379", "http://h2:2379"]
        );
        assert_eq!(parse_endpoints("https://h:1").unwrap(), ["https://h:1"]);
        assert!(matches!(
            parse_endpoints(" , "),
            Err(StoreError::InvalidArgument(_))
        ));
    }

    #[test]
    fn ranges_cover_the_prefix_after_the_cursor() {
        assert_eq!(range_of("/a/", None), (b"/a/".to_vec(), b"/a0".to_vec()));
        assert_eq!(
            range_of("/a/", Some("/a/x")),
            (b"/a/x\0".to_vec(), b"/a0".to_vec())
        );
        // A cursor before the prefix does not widen the range.
        assert_eq!(
            range_of("/a/", Some("/0")),
            (b"/a/".to_vec(), b"/a0".to_vec())
        );
        assert_eq!(range_of("", None), (vec![0], vec![0]));
    }
}
