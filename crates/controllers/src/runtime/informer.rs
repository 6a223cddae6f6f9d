//! Informers: list a resource, then follow its watch, keeping a cache keyed by `namespace/name`
//! (client-go's reflector + indexer). A watch that ends or reports an error (a 410 after
//! compaction, a cut-off) leads to a fresh list that replaces the cache, so a controller never
//! acts on a cache that silently missed events.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use skiff_k8s_core::client::{ApiClient, ListOptions, ResourceRef, WatchEvent, WatchOptions};
use tokio::sync::watch;

/// `namespace/name`, or `name` for cluster-scoped objects (client-go `MetaNamespaceKeyFunc`).
pub fn key_of(obj: &Value) -> String {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

/// What an informer tells its handlers.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// New to the cache (a relist reports objects it had not seen as added).
    Added(Value),
    /// Changed, or seen again by a relist.
    Modified(Value),
    /// The object's last known state.
    Deleted(Value),
}

impl Change {
    pub fn object(&self) -> &Value {
        match self {
            Change::Added(v) | Change::Modified(v) | Change::Deleted(v) => v,
        }
    }
}

/// A handler: called for every change, in order, from the informer's task.
pub type Handler = Arc<dyn Fn(&Change) + Send + Sync>;

/// A read-only view of an informer's cache, cheap to clone.
#[derive(Clone, Default)]
pub struct Cache {
    items: Arc<RwLock<BTreeMap<String, Value>>>,
}

impl Cache {
    /// The cached object at `namespace/name` (or `name`).
    pub fn get(&self, key: &str) -> Option<Value> {
        self.read().get(key).cloned()
    }

    /// Every cached object in `namespace` (all of them for `None`).
    pub fn list(&self, namespace: Option<&str>) -> Vec<Value> {
        let items = self.read();
        match namespace {
            None => items.values().cloned().collect(),
            Some(ns) => {
                let prefix = format!("{ns}/");
                items
                    .range(prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .map(|(_, v)| v.clone())
                    .collect()
            }
        }
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Puts an object in the cache directly (unit tests seed caches this way).
    pub fn insert(&self, obj: Value) {
        let k = key_of(&obj);
        self.write().insert(k, obj);
    }

    /// Takes an object out of the cache directly (unit tests simulate a deletion this way).
    pub fn remove(&self, key: &str) -> Option<Value> {
        self.write().remove(key)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Value>> {
        self.items.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Value>> {
        self.items.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// One resource's informer. Register handlers, then [`Informer::run`] it.
pub struct Informer {
    client: Arc<dyn ApiClient>,
    resource: ResourceRef,
    cache: Cache,
    handlers: Vec<Handler>,
    synced_tx: watch::Sender<bool>,
    /// Pause before relisting after a failed list or watch.
    pub retry_delay: Duration,
}

impl Informer {
    pub fn new(client: Arc<dyn ApiClient>, resource: ResourceRef) -> Self {
        Self {
            client,
            resource,
            cache: Cache::default(),
            handlers: Vec::new(),
            synced_tx: watch::channel(false).0,
            retry_delay: Duration::from_millis(500),
        }
    }

    pub fn cache(&self) -> Cache {
        self.cache.clone()
    }

    pub fn add_handler(&mut self, h: Handler) {
        self.handlers.push(h);
    }

    /// Flips to true after the first list has filled the cache (`HasSynced`).
    pub fn synced(&self) -> watch::Receiver<bool> {
        self.synced_tx.subscribe()
    }

    fn notify(&self, c: Change) {
        for h in &self.handlers {
            h(&c);
        }
    }

    /// Lists into the cache, replacing it; objects gone since are reported deleted.
    async fn relist(&self) -> Result<String, skiff_k8s_core::status::ApiError> {
        let list = self
            .client
            .list(&self.resource, &ListOptions::default())
            .await?;
        let fresh: BTreeMap<String, Value> = list
            .items
            .into_iter()
            .map(|o| {
                let o = with_type_meta(o, &self.resource);
                (key_of(&o), o)
            })
            .collect();
        let old = std::mem::replace(&mut *self.cache.write(), fresh.clone());
        let old_keys: BTreeSet<String> = old.keys().cloned().collect();
        for (k, v) in old {
            if !fresh.contains_key(&k) {
                self.notify(Change::Deleted(v));
            }
        }
        for (k, v) in fresh {
            if old_keys.contains(&k) {
                self.notify(Change::Modified(v));
            } else {
                self.notify(Change::Added(v));
            }
        }
        Ok(list.resource_version)
    }

    /// List, then watch from the list's version; relist whenever the watch ends, until `shutdown`.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let rv = match self.relist().await {
                Ok(rv) => rv,
                Err(e) => {
                    tracing::warn!(resource = %self.resource.resource, error = %e, "informer list failed");
                    if wait_or_shutdown(self.retry_delay, &mut shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            self.synced_tx.send_replace(true);
            let opts = WatchOptions {
                resource_version: Some(rv),
                allow_bookmarks: true,
                ..Default::default()
            };
            let mut stream = match self.client.watch(&self.resource, &opts).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(resource = %self.resource.resource, error = %e, "informer watch failed");
                    if wait_or_shutdown(self.retry_delay, &mut shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            loop {
                let ev = tokio::select! {
                    ev = stream.next() => ev,
                    _ = shutdown.changed() => return,
                };
                match ev {
                    Some(WatchEvent::Added(o)) | Some(WatchEvent::Modified(o)) => {
                        let o = with_type_meta(o, &self.resource);
                        let known = self.cache.write().insert(key_of(&o), o.clone()).is_some();
                        self.notify(if known {
                            Change::Modified(o)
                        } else {
                            Change::Added(o)
                        });
                    }
                    Some(WatchEvent::Deleted(o)) => {
                        let o = with_type_meta(o, &self.resource);
                        self.cache.write().remove(&key_of(&o));
                        self.notify(Change::Deleted(o));
                    }
                    Some(WatchEvent::Bookmark(_)) => {}
                    // 410 Expired, a cut-off, or the server closing: start over from a list.
                    Some(WatchEvent::Error(_)) | None => break,
                }
            }
        }
    }
}

/// List items may come without `apiVersion`; owner references need it.
fn with_type_meta(mut o: Value, r: &ResourceRef) -> Value {
    if let Some(m) = o.as_object_mut()
        && !m.contains_key("apiVersion")
    {
        m.insert("apiVersion".into(), r.api_version().into());
    }
    o
}

/// Sleeps `d`; true when shutdown was asked for meanwhile.
async fn wait_or_shutdown(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeClient;
    use serde_json::json;
    use std::sync::Mutex;

    #[tokio::test]
    async fn lists_then_follows_the_watch_and_relists_after_expiry() {
        let fake = Arc::new(FakeClient::default());
        let cms = ResourceRef::new("", "v1", "configmaps");
        fake.seed(&cms, json!({"metadata": {"name": "a", "namespace": "n"}}));
        fake.seed(
            &cms,
            json!({"metadata": {"name": "gone", "namespace": "n"}}),
        );
        let mut inf = Informer::new(fake.clone(), cms.clone());
        inf.retry_delay = Duration::from_millis(1);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        inf.add_handler(Arc::new(move |c: &Change| {
            let tag = match c {
                Change::Added(_) => "add",
                Change::Modified(_) => "modify",
                Change::Deleted(_) => "delete",
            };
            s.lock()
                .unwrap()
                .push(format!("{tag} {}", key_of(c.object())));
        }));
        let cache = inf.cache();
        let mut synced = inf.synced();
        let (tx, rx) = watch::channel(false);
        // First watch: an add, a delete, then 410 Expired.
        fake.script_watch(vec![
            WatchEvent::Added(json!({"metadata": {"name": "b", "namespace": "n"}})),
            WatchEvent::Deleted(json!({"metadata": {"name": "gone", "namespace": "n"}})),
            WatchEvent::Error(skiff_k8s_core::status::ApiError::too_old_resource_version(
                1, 5,
            )),
        ]);
        let task = tokio::spawn(inf.run(rx));
        synced.wait_for(|s| *s).await.unwrap();
        for _ in 0..200 {
            if fake.watch_calls() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            fake.watch_calls() >= 2,
            "relisted and rewatched after the 410"
        );
        // The relist is the truth: "b" never reached the server's list, "gone" is still there.
        assert_eq!(cache.get("n/a").unwrap()["apiVersion"], "v1");
        assert!(cache.get("n/b").is_none());
        assert!(cache.get("n/gone").is_some());
        assert_eq!(cache.list(Some("n")).len(), 2);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            [
                "add n/a",
                "add n/gone",
                "add n/b",
                "delete n/gone",
                "delete n/b",
                "modify n/a",
                "add n/gone"
            ]
        );
        tx.send(true).unwrap();
        task.await.unwrap();
    }
}
