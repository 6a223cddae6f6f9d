//! The controller runtime, in kube-runtime's shape: [`informer`] (list + watch into a cache),
//! [`queue`] (deduplicating work queue with requeue-after), [`reconcile`] (the loop that pops keys
//! and calls a reconciler), [`expectations`], plus the [`Clock`] controllers read time from.

pub mod events;
pub mod expectations;
pub mod informer;
pub mod queue;
pub mod reconcile;

use std::sync::{Arc, Mutex};

/// Where controllers read "now" (availability after `minReadySeconds`, progress deadlines,
/// condition timestamps). Injected so tests can freeze or advance time.
pub trait Clock: Send + Sync {
    fn now(&self) -> jiff::Timestamp;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}

/// A clock that moves only when told to.
pub struct FakeClock(Mutex<jiff::Timestamp>);

impl FakeClock {
    pub fn new(at: jiff::Timestamp) -> Arc<Self> {
        Arc::new(Self(Mutex::new(at)))
    }
    pub fn advance(&self, by: std::time::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t = t
            .checked_add(jiff::SignedDuration::try_from(by).unwrap_or_default())
            .unwrap_or(*t);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> jiff::Timestamp {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `metav1.Time` as the wire writes it: RFC 3339, whole seconds, `Z`.
pub fn rfc3339(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses a `metav1.Time`.
pub fn parse_time(s: &str) -> Option<jiff::Timestamp> {
    s.parse().ok()
}
