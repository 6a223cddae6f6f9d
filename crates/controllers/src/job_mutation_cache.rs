//! A controller's own recent writes, consulted before its informer cache (client-go's
//! `MutationCache`): after a status update the cache lags for a moment, and reconciling from the
//! stale copy would only earn a conflict and a backed-off retry. Used by the Job, CronJob,
//! StatefulSet and DaemonSet controllers, which write their object's status every sync.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

use crate::ownership::{str_at, uid};

fn rv(o: &Value) -> u64 {
    str_at(o, "/metadata/resourceVersion").parse().unwrap_or(0)
}

#[derive(Default)]
pub struct MutationCache {
    written: Mutex<HashMap<String, Value>>,
}

impl MutationCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The newer of the cached object and our last write of it (same UID, higher
    /// resourceVersion); a write the cache has caught up with is forgotten.
    pub fn newest(&self, key: &str, cached: Option<Value>) -> Option<Value> {
        let mut m = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let Some(c) = cached else {
            m.remove(key);
            return None;
        };
        match m.get(key) {
            Some(w) if uid(w) == uid(&c) && rv(w) > rv(&c) => Some(w.clone()),
            Some(_) => {
                m.remove(key);
                Some(c)
            }
            None => Some(c),
        }
    }

    /// Records what a write returned.
    pub fn wrote(&self, key: &str, obj: &Value) {
        self.written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), obj.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prefers_a_newer_write_until_the_cache_catches_up() {
        let mc = MutationCache::new();
        let at = |rv: &str, uid: &str| json!({"metadata": {"resourceVersion": rv, "uid": uid}});
        mc.wrote("ns/a", &at("7", "u"));
        assert_eq!(mc.newest("ns/a", Some(at("5", "u"))), Some(at("7", "u")));
        assert_eq!(
            mc.newest("ns/a", Some(at("5", "other"))),
            Some(at("5", "other"))
        );
        mc.wrote("ns/a", &at("7", "u"));
        assert_eq!(mc.newest("ns/a", Some(at("9", "u"))), Some(at("9", "u")));
        assert_eq!(
            mc.newest("ns/a", Some(at("5", "u"))),
            Some(at("5", "u")),
            "forgotten"
        );
        mc.wrote("ns/a", &at("7", "u"));
        assert_eq!(mc.newest("ns/a", None), None);
    }
}
