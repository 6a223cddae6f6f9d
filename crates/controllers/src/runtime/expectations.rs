//! Controller expectations (`controller_utils.go` `ControllerExpectations`): after a controller
//! creates or deletes pods it waits until its informer has seen those changes before acting on the
//! cache again, so a lagging cache never makes it create or delete twice.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::Clock;

/// How long unmet expectations are trusted before the controller acts anyway (upstream: 5 min).
const TTL: jiff::SignedDuration = jiff::SignedDuration::from_secs(300);

struct Entry {
    adds: i64,
    /// Keys of the objects whose deletion has not been seen yet (UID-tracking expectations).
    deletes: HashSet<String>,
    at: jiff::Timestamp,
}

/// Per-owner outstanding creations and deletions.
pub struct Expectations {
    map: Mutex<HashMap<String, Entry>>,
    clock: Arc<dyn Clock>,
}

impl Expectations {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True when `owner` may act: nothing outstanding, or the expectation went stale.
    pub fn satisfied(&self, owner: &str) -> bool {
        match self.lock().get(owner) {
            None => true,
            Some(e) => {
                (e.adds <= 0 && e.deletes.is_empty()) || self.clock.now().duration_since(e.at) > TTL
            }
        }
    }

    /// Records that `owner` is about to create `adds` objects and delete `deletes`.
    pub fn expect(&self, owner: &str, adds: i64, deletes: Vec<String>) {
        self.lock().insert(
            owner.to_string(),
            Entry {
                adds,
                deletes: deletes.into_iter().collect(),
                at: self.clock.now(),
            },
        );
    }

    /// One creation was seen (or will never happen because the call failed).
    pub fn creation_observed(&self, owner: &str) {
        if let Some(e) = self.lock().get_mut(owner) {
            e.adds -= 1;
        }
    }

    /// The deletion of `key` was seen (or failed).
    pub fn deletion_observed(&self, owner: &str, key: &str) {
        if let Some(e) = self.lock().get_mut(owner) {
            e.deletes.remove(key);
        }
    }

    /// The owner is gone.
    pub fn forget(&self, owner: &str) {
        self.lock().remove(owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::FakeClock;

    #[test]
    fn waits_for_observations_or_expiry() {
        let clock = FakeClock::new(jiff::Timestamp::UNIX_EPOCH);
        let x = Expectations::new(clock.clone());
        assert!(x.satisfied("ns/rs"));
        x.expect("ns/rs", 2, vec!["ns/p1".into()]);
        x.creation_observed("ns/rs");
        x.creation_observed("ns/rs");
        assert!(!x.satisfied("ns/rs"), "a deletion is outstanding");
        x.deletion_observed("ns/rs", "ns/other");
        assert!(!x.satisfied("ns/rs"));
        x.deletion_observed("ns/rs", "ns/p1");
        assert!(x.satisfied("ns/rs"));
        x.expect("ns/rs", 1, vec![]);
        assert!(!x.satisfied("ns/rs"));
        clock.advance(std::time::Duration::from_secs(301));
        assert!(x.satisfied("ns/rs"), "stale expectations stop blocking");
        x.forget("ns/rs");
        assert!(x.satisfied("ns/rs"));
    }
}
