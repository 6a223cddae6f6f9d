//! The store contract, run against every backend: the embedded one in a temp dir, and etcd started
//! from `/usr/bin/etcd` (or `$ETCD_BIN`) on free loopback ports with a temp data dir. If etcd is not
//! installed the etcd half fails loudly: CI installs it, and a silent pass would hide a regression.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use skiff_store::{
    EmbeddedOptions, EmbeddedStore, EtcdOptions, EtcdStore, EventKind, ListOptions, Op,
    Precondition, RangeStream, Revision, Store, StoreError, WatchEvent, WatchStream,
};

/// A store under test plus whatever must live as long as it (temp dir, etcd process).
struct Backend {
    store: Arc<dyn Store>,
    /// The etcd client URL, for the etcd backend.
    endpoint: Option<String>,
    _guard: Box<dyn Send>,
}

async fn embedded() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("store.redb"), EmbeddedOptions::default())
        .expect("open embedded store");
    Backend {
        store: Arc::new(store),
        endpoint: None,
        _guard: Box::new(dir),
    }
}

/// An etcd server for one test; killed and its data dir removed on drop.
struct EtcdServer {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn etcd() -> Backend {
    let bin = std::env::var_os("ETCD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/etcd"));
    assert!(
        bin.exists(),
        "etcd not found at {}: install it (Debian: apt-get install etcd-server) or set ETCD_BIN; \
         the etcd backend's contract tests cannot run without it",
        bin.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let (client, peer) = (free_port(), free_port());
    let client_url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let log = std::fs::File::create(dir.path().join("etcd.log")).unwrap();
    let child = Command::new(&bin)
        .arg("--name=skiff-test")
        .arg(format!("--data-dir={}", dir.path().join("data").display()))
        .arg(format!("--listen-client-urls={client_url}"))
        .arg(format!("--advertise-client-urls={client_url}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=skiff-test={peer_url}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    let server = EtcdServer { child, _dir: dir };
    let opts = EtcdOptions {
        compact_interval: None,
        timeout: Duration::from_secs(2),
        ..EtcdOptions::default()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match EtcdStore::connect(std::slice::from_ref(&client_url), opts).await {
            Ok(store) => {
                return Backend {
                    store: Arc::new(store),
                    endpoint: Some(client_url),
                    _guard: Box::new(server),
                };
            }
            Err(e) if Instant::now() > deadline => {
                let log = std::fs::read_to_string(server._dir.path().join("etcd.log"))
                    .unwrap_or_default();
                panic!("etcd on {client_url} did not answer in 20 s: {e}\n{log}");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn put(key: &str, value: &str, precondition: Precondition) -> Op {
    Op::Put {
        key: key.into(),
        value: Bytes::from(value.to_string()),
        precondition,
    }
}

fn delete(key: &str, precondition: Precondition) -> Op {
    Op::Delete {
        key: key.into(),
        precondition,
    }
}

fn set(key: &str, value: &str) -> Op {
    put(key, value, Precondition::None)
}

async fn next(w: &mut WatchStream) -> WatchEvent {
    tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("watch event within 10 s")
        .expect("stream still open")
        .expect("event, not error")
}

/// Everything a list returns, paging with `limit` at one revision.
async fn list_all(
    s: &dyn Store,
    prefix: &str,
    at: Option<Revision>,
    limit: usize,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut opts = ListOptions {
        at_revision: at,
        start_after: None,
        limit,
    };
    loop {
        let page = s.list(prefix, opts.clone()).await.unwrap();
        opts.at_revision = Some(page.revision);
        out.extend(page.items.iter().map(|kv| {
            (
                kv.key.clone(),
                String::from_utf8(kv.value.to_vec()).unwrap(),
            )
        }));
        if !page.more {
            return out;
        }
        opts.start_after = Some(page.items.last().unwrap().key.clone());
    }
}

async fn empty_store_starts_at_revision_one(s: Arc<dyn Store>) {
    assert_eq!(s.current_revision().await.unwrap(), 1);
    assert_eq!(s.compacted_revision().await.unwrap(), 0);
    let page = s.list("", ListOptions::default()).await.unwrap();
    assert!(page.items.is_empty() && !page.more);
    assert_eq!(page.revision, 1);
    let mut w = s.watch("", 0).await.unwrap();
    let r = s.txn(vec![set("/a", "1")]).await.unwrap();
    assert_eq!(r.revision, 2);
    assert_eq!(next(&mut w).await.kv.mod_revision, 2);
    // Revision 0 is the state before any write, on both backends.
    let at0 = s
        .list(
            "",
            ListOptions {
                at_revision: Some(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(at0.items.is_empty());
    assert_eq!(at0.revision, 0);
}

async fn create_if_absent(s: Arc<dyn Store>) {
    let r = s
        .txn(vec![put("/c/a", "v1", Precondition::MustNotExist)])
        .await
        .unwrap();
    assert_eq!(r.previous, vec![None]);
    let got = s.get("/c/a").await.unwrap().unwrap();
    assert_eq!(
        (got.create_revision, got.mod_revision),
        (r.revision, r.revision)
    );
    assert_eq!(got.value, Bytes::from_static(b"v1"));
    match s
        .txn(vec![put("/c/a", "v2", Precondition::MustNotExist)])
        .await
    {
        Err(StoreError::PreconditionFailed { key, current }) => {
            assert_eq!(key, "/c/a");
            assert_eq!(current, Some(got.clone()));
        }
        other => panic!("expected PreconditionFailed, got {other:?}"),
    }
    assert_eq!(
        s.current_revision().await.unwrap(),
        r.revision,
        "a refused txn consumes no revision"
    );
    assert_eq!(s.get("/c/a").await.unwrap(), Some(got));
    assert!(s.get("/c/missing").await.unwrap().is_none());
}

async fn update_if_revision(s: Arc<dyn Store>) {
    let created = s.txn(vec![set("/u/a", "v1")]).await.unwrap().revision;
    let updated = s
        .txn(vec![put("/u/a", "v2", Precondition::ModRevision(created))])
        .await
        .unwrap();
    assert_eq!(updated.revision, created + 1);
    assert_eq!(
        updated.previous[0].as_ref().unwrap().value,
        Bytes::from_static(b"v1")
    );
    let now = s.get("/u/a").await.unwrap().unwrap();
    assert_eq!(
        (now.create_revision, now.mod_revision),
        (created, updated.revision)
    );
    match s
        .txn(vec![put("/u/a", "v3", Precondition::ModRevision(created))])
        .await
    {
        Err(StoreError::PreconditionFailed { key, current }) => {
            assert_eq!(key, "/u/a");
            assert_eq!(current.unwrap().mod_revision, updated.revision);
        }
        other => panic!("stale update must fail, got {other:?}"),
    }
    match s.txn(vec![put("/u/b", "x", Precondition::MustExist)]).await {
        Err(StoreError::PreconditionFailed { key, current: None }) => assert_eq!(key, "/u/b"),
        other => panic!("update of an absent key must fail, got {other:?}"),
    }
    // ModRevision(0) never matches an absent key.
    assert!(
        s.txn(vec![put("/u/b", "x", Precondition::ModRevision(0))])
            .await
            .is_err()
    );
    assert!(s.get("/u/b").await.unwrap().is_none());
    assert!(
        s.txn(vec![put("/u/a", "v4", Precondition::MustExist)])
            .await
            .is_ok()
    );
}

async fn delete_preconditions(s: Arc<dyn Store>) {
    let r = s.txn(vec![set("/d/a", "v")]).await.unwrap().revision;
    assert!(matches!(
        s.txn(vec![delete("/d/a", Precondition::ModRevision(r - 1))])
            .await,
        Err(StoreError::PreconditionFailed {
            current: Some(_),
            ..
        })
    ));
    assert!(matches!(
        s.txn(vec![delete("/d/none", Precondition::MustExist)])
            .await,
        Err(StoreError::PreconditionFailed { current: None, .. })
    ));
    let del = s
        .txn(vec![delete("/d/a", Precondition::ModRevision(r))])
        .await
        .unwrap();
    assert_eq!(del.revision, r + 1);
    assert_eq!(del.previous[0].as_ref().unwrap().mod_revision, r);
    assert!(s.get("/d/a").await.unwrap().is_none());
    // Deleting what is absent succeeds and, writing nothing, does not move the revision.
    let noop = s
        .txn(vec![delete("/d/a", Precondition::None)])
        .await
        .unwrap();
    assert_eq!((noop.revision, noop.previous.clone()), (r + 1, vec![None]));
    assert_eq!(s.current_revision().await.unwrap(), r + 1);
}

async fn multi_op_txn_is_atomic(s: Arc<dyn Store>) {
    let base = s.txn(vec![set("/m/b", "old")]).await.unwrap().revision;
    match s
        .txn(vec![
            put("/m/a", "new", Precondition::MustNotExist),
            put("/m/b", "new", Precondition::MustNotExist),
        ])
        .await
    {
        Err(StoreError::PreconditionFailed { key, .. }) => assert_eq!(key, "/m/b"),
        other => panic!("expected PreconditionFailed, got {other:?}"),
    }
    assert!(
        s.get("/m/a").await.unwrap().is_none(),
        "nothing of a refused txn is applied"
    );
    assert_eq!(s.current_revision().await.unwrap(), base);
    let r = s
        .txn(vec![
            put("/m/a", "1", Precondition::MustNotExist),
            put("/m/b", "2", Precondition::ModRevision(base)),
            delete("/m/c", Precondition::None),
        ])
        .await
        .unwrap();
    assert_eq!(r.revision, base + 1);
    assert_eq!(r.previous.len(), 3);
    assert!(r.previous[0].is_none() && r.previous[2].is_none());
    assert_eq!(
        r.previous[1].as_ref().unwrap().value,
        Bytes::from_static(b"old")
    );
    for key in ["/m/a", "/m/b"] {
        assert_eq!(s.get(key).await.unwrap().unwrap().mod_revision, base + 1);
    }
    // The same key twice is refused (etcd: "duplicate key given in txn request").
    assert!(matches!(
        s.txn(vec![set("/m/a", "x"), delete("/m/a", Precondition::None)])
            .await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert_eq!(s.current_revision().await.unwrap(), base + 1);
}

async fn revision_moves_by_one_per_txn(s: Arc<dyn Store>) {
    let start = s.current_revision().await.unwrap();
    for i in 1..=10 {
        let r = s.txn(vec![set(&format!("/r/{i}"), "v")]).await.unwrap();
        assert_eq!(r.revision, start + i);
    }
    let mut tasks = Vec::new();
    for i in 0..64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.txn(vec![
                set(&format!("/r/c{i}"), "v"),
                set(&format!("/r/d{i}"), "v"),
            ])
            .await
            .unwrap()
            .revision
        }));
    }
    let mut revs = Vec::new();
    for t in tasks {
        revs.push(t.await.unwrap());
    }
    revs.sort();
    assert_eq!(revs, ((start + 11)..=(start + 74)).collect::<Vec<_>>());
    assert_eq!(s.current_revision().await.unwrap(), start + 74);
}

async fn paged_list_is_consistent_while_writes_go_on(s: Arc<dyn Store>) {
    for i in 0..50 {
        s.txn(vec![set(&format!("/l/{i:03}"), "orig")])
            .await
            .unwrap();
    }
    s.txn(vec![set("/m/outside", "x")]).await.unwrap();
    let expected: Vec<_> = (0..50)
        .map(|i| (format!("/l/{i:03}"), "orig".to_string()))
        .collect();

    let first = s
        .list(
            "/l/",
            ListOptions {
                limit: 7,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(first.items.len(), 7);
    assert!(first.more);
    let at = first.revision;
    // Concurrent churn: updates, deletes and creates across the range, before and after the cursor.
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 0..50 {
                let key = format!("/l/{i:03}");
                if i % 3 == 0 {
                    s.txn(vec![delete(&key, Precondition::None)]).await.unwrap();
                } else {
                    s.txn(vec![set(&key, "changed")]).await.unwrap();
                }
                s.txn(vec![set(&format!("/l/{i:03}x"), "new")])
                    .await
                    .unwrap();
            }
        })
    };
    let mut got: Vec<_> = first
        .items
        .iter()
        .map(|kv| {
            (
                kv.key.clone(),
                String::from_utf8(kv.value.to_vec()).unwrap(),
            )
        })
        .collect();
    let mut cursor = first.items.last().unwrap().key.clone();
    loop {
        let page = s
            .list(
                "/l/",
                ListOptions {
                    at_revision: Some(at),
                    start_after: Some(cursor.clone()),
                    limit: 7,
                },
            )
            .await
            .unwrap();
        assert_eq!(page.revision, at);
        got.extend(page.items.iter().map(|kv| {
            (
                kv.key.clone(),
                String::from_utf8(kv.value.to_vec()).unwrap(),
            )
        }));
        if !page.more {
            break;
        }
        cursor = page.items.last().unwrap().key.clone();
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    assert_eq!(got, expected);
    // After the churn the same revision still reads the same; latest reads the new state.
    assert_eq!(list_all(&*s, "/l/", Some(at), 5).await, expected);
    let latest = list_all(&*s, "/l/", None, 0).await;
    assert_eq!(latest.len(), 50 - 17 + 50);
    assert!(latest.iter().all(|(k, _)| k.starts_with("/l/")));
    // A future revision is refused.
    let current = s.current_revision().await.unwrap();
    match s
        .list(
            "/l/",
            ListOptions {
                at_revision: Some(current + 10),
                ..Default::default()
            },
        )
        .await
    {
        Err(StoreError::FutureRevision { requested, .. }) => assert_eq!(requested, current + 10),
        other => panic!("expected FutureRevision, got {other:?}"),
    }
}

/// `RangeStream` reads the whole prefix at the revision of its first page, a page at a time, while
/// writes go on; a compaction past that revision between pages ends it with `Compacted`.
async fn range_stream_reads_one_revision_in_pages(s: Arc<dyn Store>) {
    for i in 0..120 {
        s.txn(vec![set(&format!("/rs/{i:03}"), "orig")])
            .await
            .unwrap();
    }
    s.txn(vec![set("/rt/outside", "x")]).await.unwrap();
    let mut range = RangeStream::open(s.clone(), "/rs/", None, 16)
        .await
        .unwrap();
    let at = range.revision();
    assert_eq!(at, s.current_revision().await.unwrap());
    let mut got = Vec::new();
    let mut pages = 0;
    while let Some(page) = range.next_page().await.unwrap() {
        assert!(page.len() <= 16);
        pages += 1;
        got.extend(
            page.into_iter()
                .map(|kv| (kv.key, kv.value, kv.mod_revision)),
        );
        // Churn between pages, on both sides of the cursor.
        let i = pages * 7;
        s.txn(vec![
            delete(&format!("/rs/{i:03}"), Precondition::None),
            set(&format!("/rs/{:03}", i + 1), "changed"),
            set(&format!("/rs/{i:03}x"), "new"),
        ])
        .await
        .unwrap();
    }
    assert_eq!(pages, 8);
    let expected: Vec<_> = (0..120).map(|i| format!("/rs/{i:03}")).collect::<Vec<_>>();
    assert_eq!(
        got.iter().map(|(k, _, _)| k.clone()).collect::<Vec<_>>(),
        expected
    );
    assert!(
        got.iter()
            .all(|(_, v, rev)| &v[..] == b"orig" && *rev <= at)
    );
    // The item stream gives the same at the same revision.
    let items: Vec<_> = RangeStream::open(s.clone(), "/rs/", Some(at), 50)
        .await
        .unwrap()
        .into_stream()
        .map(|kv| kv.unwrap().key)
        .collect()
        .await;
    assert_eq!(items, expected);

    // Compaction past the revision between two pages.
    let mut range = RangeStream::open(s.clone(), "/rs/", Some(at), 10)
        .await
        .unwrap();
    range.next_page().await.unwrap().unwrap();
    let current = s.current_revision().await.unwrap();
    s.compact(current).await.unwrap();
    let mut ended = None;
    for _ in 0..20 {
        match range.next_page().await {
            Ok(Some(_)) => continue,
            other => {
                ended = Some(other);
                break;
            }
        }
    }
    assert!(
        matches!(ended, Some(Err(StoreError::Compacted { .. }))),
        "{ended:?}"
    );
}

async fn count_follows_creates_and_deletes(s: Arc<dyn Store>) {
    for i in 0..5 {
        s.txn(vec![set(&format!("/k8s/c1/pods/ns1/p{i}"), "v")])
            .await
            .unwrap();
    }
    for i in 0..3 {
        s.txn(vec![set(&format!("/k8s/c1/pods/ns2/p{i}"), "v")])
            .await
            .unwrap();
    }
    s.txn(vec![set("/k8s/c1/pods/ns1/p0", "updated")])
        .await
        .unwrap();
    assert_eq!(s.count("/k8s/c1/pods/").await.unwrap(), 8);
    assert_eq!(s.count("/k8s/c1/pods/ns1/").await.unwrap(), 5);
    assert_eq!(s.count("/k8s/c1/pods/ns1/p").await.unwrap(), 5);
    s.txn(vec![delete("/k8s/c1/pods/ns1/p0", Precondition::None)])
        .await
        .unwrap();
    assert_eq!(s.count("/k8s/c1/pods/ns1/").await.unwrap(), 4);
    assert_eq!(s.count("/k8s/").await.unwrap(), 7);
    assert_eq!(s.count("").await.unwrap(), 7);
    assert_eq!(s.count("/k8s/c2/").await.unwrap(), 0);
}

async fn watch_from_a_past_revision_has_no_gap_or_duplicate(s: Arc<dyn Store>) {
    let mut expected = Vec::new();
    for i in 0..20 {
        let key = format!("/w/{}", i % 7);
        let r = s.txn(vec![set(&key, &i.to_string())]).await.unwrap();
        expected.push((r.revision, key));
        s.txn(vec![set(&format!("/other/{i}"), "x")]).await.unwrap();
    }
    let from = expected[9].0;
    let mut w = s.watch("/w/", from).await.unwrap();
    // Writes continue while the watcher catches up.
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            let mut out = Vec::new();
            for i in 20..120 {
                let key = format!("/w/{}", i % 7);
                let r = s.txn(vec![set(&key, &i.to_string())]).await.unwrap();
                out.push((r.revision, key));
            }
            out
        })
    };
    let mut got = Vec::new();
    for _ in 0..110 {
        let e = next(&mut w).await;
        assert_eq!(e.kind, EventKind::Put);
        got.push((e.kv.mod_revision, e.kv.key));
    }
    expected.extend(writer.await.unwrap());
    assert_eq!(got, expected[10..]);
    // Nothing more is pending.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), w.next())
            .await
            .is_err()
    );
}

async fn watch_delivers_prev_on_update_and_delete(s: Arc<dyn Store>) {
    let start = s.current_revision().await.unwrap();
    let mut w = s.watch("/p/", start).await.unwrap();
    let created = s.txn(vec![set("/p/a", "one")]).await.unwrap().revision;
    let updated = s.txn(vec![set("/p/a", "two")]).await.unwrap().revision;
    let deleted = s
        .txn(vec![delete("/p/a", Precondition::None)])
        .await
        .unwrap()
        .revision;

    let e = next(&mut w).await;
    assert_eq!(
        (e.kind, e.kv.mod_revision, e.kv.create_revision),
        (EventKind::Put, created, created)
    );
    assert!(e.prev.is_none(), "a create has no previous value");
    let e = next(&mut w).await;
    assert_eq!(
        (e.kind, e.kv.mod_revision, e.kv.create_revision),
        (EventKind::Put, updated, created)
    );
    assert_eq!(e.prev.unwrap().value, Bytes::from_static(b"one"));
    let e = next(&mut w).await;
    assert_eq!(
        (e.kind, e.kv.key.as_str(), e.kv.mod_revision),
        (EventKind::Delete, "/p/a", deleted)
    );
    assert!(e.kv.value.is_empty());
    let prev = e.prev.expect("a delete carries the deleted value");
    assert_eq!(
        (prev.value, prev.mod_revision),
        (Bytes::from_static(b"two"), updated)
    );
}

async fn compacted_history_is_refused(s: Arc<dyn Store>) {
    let mut revs = Vec::new();
    for i in 0..6 {
        revs.push(
            s.txn(vec![set(&format!("/z/{i}"), "v")])
                .await
                .unwrap()
                .revision,
        );
    }
    let point = revs[2];
    s.compact(point).await.unwrap();
    s.compact(point - 1).await.unwrap(); // behind the point: a no-op, not an error
    assert_eq!(s.compacted_revision().await.unwrap(), point);
    match s
        .list(
            "/z/",
            ListOptions {
                at_revision: Some(point - 1),
                ..Default::default()
            },
        )
        .await
    {
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!((requested, compacted), (point - 1, point));
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    match s.watch("/z/", point - 1).await {
        Err(StoreError::Compacted { compacted, .. }) => assert_eq!(compacted, point),
        Err(e) => panic!("expected Compacted, got {e:?}"),
        Ok(_) => panic!("expected Compacted, got a stream"),
    }
    // The compaction point itself is still readable and watchable.
    let at = list_all(&*s, "/z/", Some(point), 0).await;
    assert_eq!(at.len(), 3);
    let mut w = s.watch("/z/", point).await.unwrap();
    for r in &revs[3..] {
        assert_eq!(next(&mut w).await.kv.mod_revision, *r);
    }
    let current = s.current_revision().await.unwrap();
    assert!(matches!(
        s.compact(current + 5).await,
        Err(StoreError::FutureRevision { .. })
    ));
}

macro_rules! contract_suite {
    ($backend:ident: $($test:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let backend = super::$backend().await;
                    super::$test(backend.store.clone()).await;
                }
            )*
        }
    };
}

macro_rules! contract {
    ($($backend:ident),*) => {
        $(
            contract_suite!($backend:
                empty_store_starts_at_revision_one,
                create_if_absent,
                update_if_revision,
                delete_preconditions,
                multi_op_txn_is_atomic,
                revision_moves_by_one_per_txn,
                paged_list_is_consistent_while_writes_go_on,
                range_stream_reads_one_revision_in_pages,
                count_follows_creates_and_deletes,
                watch_from_a_past_revision_has_no_gap_or_duplicate,
                watch_delivers_prev_on_update_and_delete,
                compacted_history_is_refused,
            );
        )*
    };
}

contract!(embedded, etcd);

/// Both backends, same script, same answers (revisions included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_agree_on_a_mixed_history() {
    async fn script(s: Arc<dyn Store>) -> BTreeMap<String, (String, Revision, Revision)> {
        s.txn(vec![set("/x/a", "1"), set("/x/b", "1")])
            .await
            .unwrap();
        s.txn(vec![delete("/x/a", Precondition::MustExist)])
            .await
            .unwrap();
        let _ = s
            .txn(vec![put("/x/b", "2", Precondition::ModRevision(99))])
            .await;
        s.txn(vec![delete("/x/zz", Precondition::None)])
            .await
            .unwrap();
        s.txn(vec![
            put("/x/b", "3", Precondition::ModRevision(2)),
            set("/x/c", "1"),
        ])
        .await
        .unwrap();
        let page = s.list("/x/", ListOptions::default()).await.unwrap();
        let mut out: BTreeMap<_, _> = page
            .items
            .into_iter()
            .map(|kv| {
                let v = String::from_utf8(kv.value.to_vec()).unwrap();
                (kv.key, (v, kv.create_revision, kv.mod_revision))
            })
            .collect();
        out.insert("revision".into(), (String::new(), page.revision, 0));
        out
    }
    let (e, d) = (embedded().await, etcd().await);
    assert_eq!(script(e.store.clone()).await, script(d.store.clone()).await);
}

/// `open` picks the backend from the `--store` spec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_picks_the_backend_from_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    {
        let s = skiff_store::open("", &data).await.unwrap();
        s.txn(vec![set("/o/a", "1")]).await.unwrap();
    }
    assert!(data.join("store.redb").exists());
    // "embedded" is the same file, with the write still there.
    let s = skiff_store::open("embedded", &data).await.unwrap();
    assert_eq!(s.get("/o/a").await.unwrap().unwrap().mod_revision, 2);
    drop(s);

    let server = etcd().await;
    let url = server.endpoint.clone().unwrap();
    let spec = format!("etcd://{}", url.trim_start_matches("http://"));
    let s = skiff_store::open(&spec, dir.path()).await.unwrap();
    let r = s.txn(vec![set("/o/b", "1")]).await.unwrap();
    assert_eq!(
        server
            .store
            .get("/o/b")
            .await
            .unwrap()
            .unwrap()
            .mod_revision,
        r.revision
    );

    for bad in ["sqlite://x", "etcd://", "etcd:// , "] {
        match skiff_store::open(bad, dir.path()).await {
            Err(StoreError::InvalidArgument(_)) => {}
            Err(e) => panic!("{bad}: expected InvalidArgument, got {e:?}"),
            Ok(_) => panic!("{bad}: expected InvalidArgument, got a store"),
        }
    }
    // Nothing listens here: a clear Unavailable, not a hang.
    let port = free_port();
    match skiff_store::open(&format!("etcd://127.0.0.1:{port}"), dir.path()).await {
        Err(StoreError::Unavailable(_)) => {}
        Err(e) => panic!("expected Unavailable, got {e:?}"),
        Ok(_) => panic!("expected Unavailable, got a store"),
    }
}
