//! The watch cache (kube-apiserver's `Cacher`): one store watch per resource feeds a bounded ring
//! of recent raw events and a broadcast of decoded events to every API watch of that resource.
//!
//! Why: without it every API watch opens its own store watch and decodes every event itself, so
//! 1,000 watchers cost 1,000 JSON decodes per write. Here an event is decoded once, its JSON
//! encoding is made once ([`SharedObject::json`]) and every watcher gets an `Arc`.
//!
//! Semantics kept from the store watch (never miss or repeat an event):
//! - a watch from revision `R` is served here when `R` is at or after the oldest revision the ring
//!   still covers; the ring's events after `R` are replayed, then live events follow. The replay
//!   snapshot and the broadcast subscription are taken under one lock, so nothing falls between.
//! - `R` older than the ring, or older than the store's compaction point: the caller falls back to
//!   a store watch, which serves it from the store's history or ends it with 410 as before.
//! - `R` newer than the cache has seen (the store acknowledges a write before it publishes it):
//!   events at or before `R` are skipped when they arrive.
//! - a watcher that falls more than [`CacheOptions::lag`] events behind the newest one is cut off
//!   (`WatcherTooSlow`, the API answers 410 and clients relist), so a slow client costs no memory.
//!
//! Lifetime: the process-wide table holds `Weak` references; every API watch holds the `Arc`. The
//! feeding task stops (and its store watch closes) when the last watcher of a resource goes.
//!
//! Configuration (read once per process): `SKIFF_WATCH_CACHE=off` disables the cache,
//! `SKIFF_WATCH_CACHE_EVENTS=N` sets the ring window (default 8,192 events, at most 64 MiB of
//! stored values), `SKIFF_WATCH_CACHE_LAG=N` the cut-off distance (default 4,096 events).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, Weak};

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use skiff_store::{EventKind, KeyValue, Revision, Store, StoreError, WatchEvent};
use tokio::sync::{broadcast, oneshot};

/// Sizes of one resource's cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CacheOptions {
    /// Events kept for watches that start from a past resourceVersion.
    pub window: usize,
    /// ... holding at most this many bytes of keys and values.
    pub window_bytes: usize,
    /// How many events a watcher may be behind the newest before it is cut off.
    pub lag: usize,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            window: 8_192,
            window_bytes: 64 << 20,
            lag: 4_096,
        }
    }
}

/// Process-wide options: None when the cache is switched off.
fn process_options() -> Option<CacheOptions> {
    static OPTS: LazyLock<Option<CacheOptions>> = LazyLock::new(|| {
        let var = |k: &str| std::env::var(k).ok();
        if var("SKIFF_WATCH_CACHE").is_some_and(|v| v == "off" || v == "0" || v == "false") {
            return None;
        }
        let num = |k: &str, d: usize| {
            var(k)
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|n| *n > 0)
                .unwrap_or(d)
        };
        let d = CacheOptions::default();
        Some(CacheOptions {
            window: num("SKIFF_WATCH_CACHE_EVENTS", d.window),
            window_bytes: d.window_bytes,
            lag: num("SKIFF_WATCH_CACHE_LAG", d.lag),
        })
    });
    *OPTS
}

/// A decoded object shared by every watcher that sends it, with its JSON made at most once.
#[derive(Debug)]
pub struct SharedObject {
    value: Value,
    json: OnceLock<Bytes>,
}

impl SharedObject {
    pub fn new(value: Value) -> Arc<Self> {
        Arc::new(Self {
            value,
            json: OnceLock::new(),
        })
    }

    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The object's JSON, encoded by the first watcher that asks.
    pub fn json(&self) -> &Bytes {
        self.json
            .get_or_init(|| Bytes::from(serde_json::to_vec(&self.value).unwrap_or_default()))
    }

    /// The value, without a copy when nobody else holds it.
    pub fn into_value(self: Arc<Self>) -> Value {
        match Arc::try_unwrap(self) {
            Ok(s) => s.value,
            Err(shared) => shared.value.clone(),
        }
    }
}

/// A store event decoded once for every watcher.
#[derive(Debug)]
pub(crate) struct CachedEvent {
    pub rev: Revision,
    pub key: String,
    pub kind: EventKind,
    /// Put: the new object. Delete: the last state, resourceVersion = the deleting revision (what
    /// upstream sends with DELETED). Err: the stored bytes did not decode.
    pub object: Result<Arc<SharedObject>, String>,
    /// The state before a Put, decoded only when a watcher with a selector asks.
    prev_raw: Option<KeyValue>,
    prev: OnceLock<Option<Result<Value, String>>>,
}

fn decode_kv(kv: &KeyValue) -> Result<Value, String> {
    crate::registry::decode(kv).map_err(|e| e.message())
}

impl CachedEvent {
    pub fn from_store(ev: WatchEvent) -> Self {
        let rev = ev.kv.mod_revision;
        let object = match ev.kind {
            EventKind::Put => decode_kv(&ev.kv).map(SharedObject::new),
            EventKind::Delete => match &ev.prev {
                Some(p) => decode_kv(p).map(|mut v| {
                    crate::registry::set_resource_version(&mut v, rev);
                    SharedObject::new(v)
                }),
                None => Err(format!(
                    "delete of {} without its previous value",
                    ev.kv.key
                )),
            },
        };
        Self {
            rev,
            key: ev.kv.key,
            kind: ev.kind,
            object,
            prev_raw: if ev.kind == EventKind::Put {
                ev.prev
            } else {
                None
            },
            prev: OnceLock::new(),
        }
    }

    /// For a Put: the state before it (None when the Put created the key).
    pub fn prev(&self) -> Option<Result<&Value, String>> {
        self.prev
            .get_or_init(|| self.prev_raw.as_ref().map(decode_kv))
            .as_ref()
            .map(|r| r.as_ref().map_err(Clone::clone))
    }

    pub fn had_prev(&self) -> bool {
        self.prev_raw.is_some()
    }
}

/// Bytes a raw event holds, for the ring's byte bound.
fn event_bytes(ev: &WatchEvent) -> usize {
    let kv = |k: &KeyValue| k.key.len() + k.value.len() + 64;
    kv(&ev.kv) + ev.prev.as_ref().map_or(0, kv)
}

struct State {
    ring: VecDeque<WatchEvent>,
    ring_bytes: usize,
    /// Watches from this revision or later are served here (the ring holds every event after it).
    oldest: Revision,
    /// The newest revision the cache has seen.
    last: Revision,
    /// None once the store watch failed; receivers then see `Closed` and read `failure`.
    tx: Option<broadcast::Sender<Arc<CachedEvent>>>,
    failure: Option<StoreError>,
}

/// The cache of one resource prefix (every namespace).
pub(crate) struct Cacher {
    opts: CacheOptions,
    state: Mutex<State>,
    /// Dropped with the cacher: tells the feeding task to stop.
    _stop: oneshot::Sender<()>,
}

/// One API watch's view of a [`Cacher`]: the replayed past, then live events.
pub(crate) struct Subscription {
    cacher: Arc<Cacher>,
    replay: VecDeque<WatchEvent>,
    rx: broadcast::Receiver<Arc<CachedEvent>>,
    /// Events at or before this revision were already seen (or precede the watch).
    after: Revision,
}

impl Cacher {
    /// Starts caching `prefix` from the store's current revision.
    pub async fn start(
        store: &Arc<dyn Store>,
        prefix: &str,
        opts: CacheOptions,
    ) -> Result<Arc<Self>, StoreError> {
        let from = store.current_revision().await?;
        let events = store.watch(prefix, from).await?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let (tx, _) = broadcast::channel(opts.lag.max(1));
        let cacher = Arc::new(Self {
            opts,
            state: Mutex::new(State {
                ring: VecDeque::new(),
                ring_bytes: 0,
                oldest: from,
                last: from,
                tx: Some(tx),
                failure: None,
            }),
            _stop: stop_tx,
        });
        tokio::spawn(feed(Arc::downgrade(&cacher), events, stop_rx));
        Ok(cacher)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the store watch behind this cache still runs.
    pub fn healthy(&self) -> bool {
        self.lock().failure.is_none()
    }

    /// A watch of every event after `from`; None when the ring no longer reaches back that far
    /// (or the cache failed): the caller watches the store instead.
    pub fn subscribe(self: &Arc<Self>, from: Revision) -> Option<Subscription> {
        let st = self.lock();
        let tx = st.tx.as_ref()?;
        if from < st.oldest {
            return None;
        }
        let replay = if from < st.last {
            // The ring is in revision order: skip what the watcher has already seen.
            let start = st.ring.partition_point(|e| e.kv.mod_revision <= from);
            st.ring.range(start..).cloned().collect()
        } else {
            VecDeque::new()
        };
        Some(Subscription {
            cacher: self.clone(),
            replay,
            rx: tx.subscribe(),
            after: from,
        })
    }

    fn publish(&self, ev: WatchEvent) {
        let cached = Arc::new(CachedEvent::from_store(ev.clone()));
        let mut st = self.lock();
        st.last = st.last.max(cached.rev);
        st.ring_bytes += event_bytes(&ev);
        st.ring.push_back(ev);
        while st.ring.len() > self.opts.window
            || (st.ring_bytes > self.opts.window_bytes && st.ring.len() > 1)
        {
            let Some(old) = st.ring.pop_front() else {
                break;
            };
            st.ring_bytes -= event_bytes(&old);
            // Events of this revision may remain, but a watch from it skips them anyway.
            st.oldest = st.oldest.max(old.kv.mod_revision);
        }
        if let Some(tx) = &st.tx {
            // No receivers is fine: the ring still serves later watches.
            let _ = tx.send(cached);
        }
    }

    fn fail(&self, e: StoreError) {
        let mut st = self.lock();
        st.failure = Some(e);
        // Dropping the sender wakes every receiver with `Closed`.
        st.tx = None;
    }

    fn failure(&self) -> StoreError {
        self.lock()
            .failure
            .clone()
            .unwrap_or_else(|| StoreError::Unavailable("the watch cache stopped".into()))
    }
}

async fn feed(
    cacher: Weak<Cacher>,
    mut events: skiff_store::WatchStream,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        let ev = tokio::select! {
            _ = &mut stop => return,
            ev = events.next() => ev,
        };
        let Some(c) = cacher.upgrade() else { return };
        match ev {
            Some(Ok(ev)) => c.publish(ev),
            Some(Err(e)) => return c.fail(e),
            None => {
                return c.fail(StoreError::Unavailable(
                    "the store ended the watch cache's watch".into(),
                ));
            }
        }
    }
}

impl Subscription {
    /// The next event after the watch's start revision; `Err` ends the watch (`WatcherTooSlow`
    /// when it fell too far behind, the store's error when the cache's own watch failed).
    pub async fn next(&mut self) -> Result<Arc<CachedEvent>, StoreError> {
        if let Some(ev) = self.replay.pop_front() {
            self.after = ev.kv.mod_revision;
            return Ok(Arc::new(CachedEvent::from_store(ev)));
        }
        loop {
            match self.rx.recv().await {
                Ok(ev) if ev.rev <= self.after => continue,
                Ok(ev) => return Ok(ev),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Err(StoreError::WatcherTooSlow);
                }
                Err(broadcast::error::RecvError::Closed) => return Err(self.cacher.failure()),
            }
        }
    }
}

type CacheKey = (usize, String);

/// Every live cache of the process, by store and resource prefix.
static CACHERS: LazyLock<Mutex<HashMap<CacheKey, Weak<Cacher>>>> = LazyLock::new(Mutex::default);

fn table() -> std::sync::MutexGuard<'static, HashMap<CacheKey, Weak<Cacher>>> {
    CACHERS.lock().unwrap_or_else(|p| p.into_inner())
}

/// The cache of `prefix` on `store`, started on first use; None when caching is off or the store
/// refused the watch (the caller then watches the store directly).
pub(crate) async fn cacher_for(store: &Arc<dyn Store>, prefix: &str) -> Option<Arc<Cacher>> {
    let opts = process_options()?;
    cacher_with(store, prefix, opts).await
}

pub(crate) async fn cacher_with(
    store: &Arc<dyn Store>,
    prefix: &str,
    opts: CacheOptions,
) -> Option<Arc<Cacher>> {
    // A live cacher holds the store, so its address cannot be reused while the entry upgrades.
    let key = (Arc::as_ptr(store) as *const () as usize, prefix.to_string());
    let live = |w: &Weak<Cacher>| w.upgrade().filter(|c| c.healthy() && c.opts == opts);
    if let Some(c) = table().get(&key).and_then(live) {
        return Some(c);
    }
    let fresh = Cacher::start(store, prefix, opts).await.ok()?;
    let mut t = table();
    if let Some(c) = t.get(&key).and_then(live) {
        // Another watch started one meanwhile; ours stops when dropped here.
        return Some(c);
    }
    t.retain(|_, w| w.strong_count() > 0);
    t.insert(key, Arc::downgrade(&fresh));
    Some(fresh)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use skiff_store::{EmbeddedOptions, EmbeddedStore, Op, Precondition};

    use super::*;

    fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let s =
            EmbeddedStore::open(&dir.path().join("s.redb"), EmbeddedOptions::default()).unwrap();
        (dir, Arc::new(s))
    }

    async fn put(s: &Arc<dyn Store>, key: &str, n: i64) -> Revision {
        let v = serde_json::json!({"metadata": {"name": key, "labels": {"n": n.to_string()}}});
        s.txn(vec![Op::Put {
            key: key.into(),
            value: Bytes::from(v.to_string()),
            precondition: Precondition::None,
        }])
        .await
        .unwrap()
        .revision
    }

    async fn next(sub: &mut Subscription) -> Arc<CachedEvent> {
        tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("event in time")
            .expect("no error")
    }

    fn small() -> CacheOptions {
        CacheOptions {
            window: 4,
            window_bytes: 1 << 20,
            lag: 8,
        }
    }

    #[tokio::test]
    async fn replays_the_window_then_follows_live_without_gaps_or_repeats() {
        let (_d, s) = store();
        let c = cacher_with(&s, "/r/", small()).await.unwrap();
        let _keep = c.subscribe(s.current_revision().await.unwrap()).unwrap();
        let mut revs = Vec::new();
        for i in 0..6 {
            revs.push(put(&s, &format!("/r/k{i}"), i).await);
        }
        // Wait until the cache has seen every write.
        let mut tail = c.subscribe(revs[4]).unwrap();
        assert_eq!(next(&mut tail).await.rev, revs[5]);
        // The window keeps 4 events: revs[2..6]; a watch from revs[1] replays exactly those.
        let mut sub = c.subscribe(revs[1]).expect("inside the window");
        for want in &revs[2..] {
            assert_eq!(next(&mut sub).await.rev, *want);
        }
        // From before the window: the caller must go to the store.
        assert!(c.subscribe(revs[0]).is_none());
        let r = put(&s, "/r/k9", 9).await;
        let ev = next(&mut sub).await;
        assert_eq!((ev.rev, ev.key.as_str()), (r, "/r/k9"));
        assert_eq!(
            ev.object.as_ref().unwrap().value()["metadata"]["resourceVersion"],
            r.to_string()
        );
    }

    #[tokio::test]
    async fn a_watch_from_a_revision_the_cache_has_not_seen_skips_up_to_it() {
        let (_d, s) = store();
        let c = cacher_with(&s, "/r/", small()).await.unwrap();
        let start = s.current_revision().await.unwrap();
        let a = put(&s, "/r/a", 1).await;
        let b = put(&s, "/r/b", 2).await;
        // Subscribing "from b" may happen before the cache has published a or b.
        let mut sub = c.subscribe(b).unwrap();
        let mut all = c.subscribe(start).unwrap();
        let d = put(&s, "/r/d", 3).await;
        assert_eq!(next(&mut sub).await.rev, d);
        let got = [
            next(&mut all).await.rev,
            next(&mut all).await.rev,
            next(&mut all).await.rev,
        ];
        assert_eq!(got, [a, b, d]);
    }

    #[tokio::test]
    async fn a_watcher_that_falls_behind_is_cut_off_and_others_go_on() {
        let (_d, s) = store();
        let c = cacher_with(&s, "/r/", small()).await.unwrap();
        let from = s.current_revision().await.unwrap();
        let mut slow = c.subscribe(from).unwrap();
        let mut fast = c.subscribe(from).unwrap();
        let mut last = 0;
        for i in 0..20 {
            last = put(&s, &format!("/r/k{i}"), i).await;
            assert_eq!(next(&mut fast).await.rev, last);
        }
        let r = tokio::time::timeout(Duration::from_secs(5), slow.next())
            .await
            .unwrap();
        assert!(matches!(r, Err(StoreError::WatcherTooSlow)), "{r:?}");
        let _ = last;
    }

    #[tokio::test]
    async fn deletes_carry_the_last_state_and_prev_decodes_on_demand() {
        let (_d, s) = store();
        let c = cacher_with(&s, "/r/", small()).await.unwrap();
        let mut sub = c.subscribe(s.current_revision().await.unwrap()).unwrap();
        put(&s, "/r/a", 1).await;
        put(&s, "/r/a", 2).await;
        let del = s
            .txn(vec![Op::Delete {
                key: "/r/a".into(),
                precondition: Precondition::MustExist,
            }])
            .await
            .unwrap()
            .revision;
        let created = next(&mut sub).await;
        assert!(!created.had_prev() && created.prev().is_none());
        let updated = next(&mut sub).await;
        assert_eq!(
            updated.prev().unwrap().unwrap()["metadata"]["labels"]["n"],
            "1"
        );
        let deleted = next(&mut sub).await;
        assert_eq!(deleted.kind, EventKind::Delete);
        let obj = deleted.object.as_ref().unwrap();
        assert_eq!(obj.value()["metadata"]["labels"]["n"], "2");
        assert_eq!(obj.value()["metadata"]["resourceVersion"], del.to_string());
        assert!(obj.json().starts_with(b"{"));
    }

    #[tokio::test]
    async fn one_cacher_per_store_and_prefix_while_watched() {
        let (_d, s) = store();
        let a = cacher_with(&s, "/r/", small()).await.unwrap();
        let b = cacher_with(&s, "/r/", small()).await.unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let other = cacher_with(&s, "/q/", small()).await.unwrap();
        assert!(!Arc::ptr_eq(&a, &other));
        let weak = Arc::downgrade(&a);
        drop((a, b));
        assert!(weak.upgrade().is_none(), "nobody watching: the cacher goes");
    }
}
