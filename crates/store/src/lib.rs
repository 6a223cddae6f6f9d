//! # skiff-store: the versioned key-value store with watch
//!
//! One logical keyspace per data dir, one global, monotonically increasing revision (like etcd).
//! Kubernetes objects use it as their `resourceVersion`; AWS resources live in the same keyspace.
//!
//! Keys: `/aws/<account>/<region>/<service>/<type>/<id>` and
//! `/k8s/<cluster-id>/<group>/<resource>/<namespace>/<name>` (cluster-scoped: no namespace segment).
//!
//! Must not depend on: any other skiff crate, anything that knows AWS or Kubernetes.
//!
//! Start at [`Store`]: the narrow interface every backend implements and every user codes against,
//! and [`open`], which picks a backend from the `--store` spec. Backends live in `backend/`
//! ([`EmbeddedStore`] on redb, [`EtcdStore`] on etcd v3); `tests/contract.rs` runs one suite
//! against each. [`watch`] holds the watch hub (ring of recent events, fan-out, slow-watcher policy)
//! the embedded backend uses; `txn.rs` holds the op validation and precondition rules both share.
//! [`RangeStream`] reads a whole prefix at one revision a page at a time (LIST without holding
//! every object in memory), on any backend.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;

/// The store's global revision. Starts at 1 for an empty store; every committed write transaction
/// increments it by exactly one. A transaction that writes nothing (only deletes of absent keys, or
/// no ops) commits without a new revision and reports the current one, as etcd does. Revision 0
/// names the empty state before any write (readable until the store is first compacted).
pub type Revision = i64;

/// One stored key with its value and revisions (etcd `mvccpb.KeyValue`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision of the transaction that created this key (since its last deletion).
    pub create_revision: Revision,
    /// Revision of the transaction that last wrote this key.
    pub mod_revision: Revision,
}

/// A guard checked atomically with the write (kine: writes are appends guarded by a revision compare).
#[doc(alias = "Compare")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Write unconditionally.
    None,
    /// The key must not exist (create).
    MustNotExist,
    /// The key must exist, with any revision.
    MustExist,
    /// The key must exist with exactly this `mod_revision` (optimistic concurrency).
    ModRevision(Revision),
}

/// One operation of a transaction.
#[derive(Clone, Debug)]
pub enum Op {
    Put {
        key: String,
        value: Bytes,
        precondition: Precondition,
    },
    Delete {
        key: String,
        precondition: Precondition,
    },
}

/// What a committed transaction did.
#[derive(Clone, Debug)]
pub struct TxnResult {
    /// The revision of this transaction (every op in it carries it as `mod_revision`).
    pub revision: Revision,
    /// For each op, in order: the value before the op (None if absent).
    pub previous: Vec<Option<KeyValue>>,
}

/// Options for a range read.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Read at this revision (consistent snapshot); None = latest. Older than the compaction
    /// point -> [`StoreError::Compacted`].
    pub at_revision: Option<Revision>,
    /// Start strictly after this key (paging).
    pub start_after: Option<String>,
    /// At most this many items; 0 = all.
    pub limit: usize,
}

/// A page of a range read.
#[derive(Clone, Debug)]
pub struct ListResult {
    pub items: Vec<KeyValue>,
    /// The revision the read was served at (pass it back as `at_revision` to keep paging consistent).
    pub revision: Revision,
    /// True when more keys with the prefix follow the last item.
    pub more: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// A change seen by a watcher.
#[derive(Clone, Debug)]
pub struct WatchEvent {
    pub kind: EventKind,
    /// For `Put`: the new value. For `Delete`: key, empty value, `mod_revision` = the deleting revision,
    /// `create_revision` 0 (etcd's tombstone).
    pub kv: KeyValue,
    /// The value before this change (always present for `Delete`; for `Put`, present when it was an update).
    pub prev: Option<KeyValue>,
}

/// A watch: events with `kv.mod_revision > from_revision`, in revision order, never skipping or repeating one.
/// The stream ends with `Err(StoreError::Compacted)` or `Err(StoreError::WatcherTooSlow)` if the
/// watcher fell behind the retained history; the caller then relists.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, StoreError>> + Send>>;

#[derive(Debug, thiserror::Error, Clone)]
pub enum StoreError {
    #[error("precondition failed on key {key}")]
    PreconditionFailed {
        key: String,
        /// The key's current state, to build a precise error (AlreadyExists vs Conflict vs NotFound).
        current: Option<KeyValue>,
    },
    #[error("revision {requested} has been compacted (oldest available {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    #[error("revision {requested} is in the future (current {current})")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    #[error("watcher fell too far behind and was cut off")]
    WatcherTooSlow,
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store I/O error: {0}")]
    Io(String),
    /// The request itself is malformed (empty key, the same key twice in one transaction, an
    /// unknown store spec). etcd answers these with gRPC `InvalidArgument`; nothing was changed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// The narrow store interface (etcd `kv.go` shape). Every backend passes `tests/contract.rs`.
///
/// Contract:
/// - `txn` is atomic and durable (fsynced) before it returns `Ok`; it either applies every op or none.
///   A failed precondition returns `PreconditionFailed` and changes nothing (no revision consumed).
/// - Reads are linearizable with respect to acknowledged writes.
/// - `watch` delivers every change to keys under `prefix` after `from_revision`, in order.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;
    /// Keys starting with `prefix`, sorted by key.
    #[doc(alias = "Range")]
    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StoreError>;
    /// Number of keys under `prefix` (for quota and `remainingItemCount`).
    #[doc(alias = "count_only")]
    async fn count(&self, prefix: &str) -> Result<u64, StoreError>;
    #[doc(alias = "Txn")]
    async fn txn(&self, ops: Vec<Op>) -> Result<TxnResult, StoreError>;
    async fn watch(&self, prefix: &str, from_revision: Revision)
    -> Result<WatchStream, StoreError>;
    /// The latest committed revision.
    async fn current_revision(&self) -> Result<Revision, StoreError>;
    /// The oldest revision a watch or read may still start from.
    async fn compacted_revision(&self) -> Result<Revision, StoreError>;

    /// Forget history at and before `revision`: reads at older revisions and watches from older
    /// revisions get [`StoreError::Compacted`] afterwards. Compacting to a revision at or below the
    /// current compaction point is a no-op (several processes may compact one etcd); a revision
    /// above the current one is [`StoreError::FutureRevision`]. Backends also compact on their own
    /// to keep a window (see each backend's options).
    ///
    /// The default exists so test doubles need not implement it; both real backends override it.
    #[doc(alias = "Compact")]
    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        Err(StoreError::Unavailable(format!(
            "this store cannot compact (asked for revision {revision})"
        )))
    }
}

pub mod backend;
mod key;
pub mod range;
mod txn;
pub mod watch;

pub use backend::embedded::{EmbeddedOptions, EmbeddedStore};
pub use backend::etcd::{EtcdOptions, EtcdStore};
pub use key::prefix_end;
pub use range::RangeStream;

/// Opens the store named by a `--store` spec.
///
/// - `""` or `"embedded"`: the embedded backend in `data_dir/store.redb` (the directory is created).
/// - `"etcd://h1:2379,h2:2379"`: the etcd v3 backend on those endpoints (plain HTTP/2).
pub async fn open(spec: &str, data_dir: &Path) -> Result<Arc<dyn Store>, StoreError> {
    match spec {
        "" | "embedded" => {
            let path = data_dir.join("store.redb");
            let dir = data_dir.to_path_buf();
            let store = tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| StoreError::Io(format!("creating {}: {e}", dir.display())))?;
                EmbeddedStore::open(&path, EmbeddedOptions::default())
            })
            .await
            .map_err(|e| StoreError::Io(format!("opening the embedded store: {e}")))??;
            Ok(Arc::new(store))
        }
        _ => match spec.strip_prefix("etcd://") {
            Some(hosts) => {
                let endpoints = backend::etcd::parse_endpoints(hosts)?;
                let store = EtcdStore::connect(&endpoints, EtcdOptions::default()).await?;
                Ok(Arc::new(store))
            }
            None => Err(StoreError::InvalidArgument(format!(
                "unknown store spec {spec:?}: expected \"embedded\" or etcd://host:port[,host:port...]"
            ))),
        },
    }
}
