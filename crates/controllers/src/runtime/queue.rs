//! The work queue (client-go `workqueue`): a key queued twice is processed once; a key being
//! processed and queued again is processed again afterwards, never by two workers at once;
//! [`WorkQueue::add_after`] re-adds later; failures back off per key, exponentially.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Default)]
struct State {
    queue: VecDeque<String>,
    /// Keys waiting in `queue` or to be re-queued when their processing ends.
    dirty: HashSet<String>,
    processing: HashSet<String>,
    failures: HashMap<String, u32>,
    shut_down: bool,
}

/// A deduplicating queue of `namespace/name` keys, cheap to clone.
#[derive(Clone, Default)]
pub struct WorkQueue {
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
}

/// First and largest retry delay of a failing key (client-go's rate limiter: 5ms … 1000s; we cap
/// lower because one process hosts every controller and a minute is already patient).
const BACKOFF_BASE: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

impl WorkQueue {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `key` unless it is already waiting.
    pub fn add(&self, key: &str) {
        let mut st = self.lock();
        if st.shut_down || !st.dirty.insert(key.to_string()) {
            return;
        }
        if !st.processing.contains(key) {
            st.queue.push_back(key.to_string());
            drop(st);
            self.notify.notify_one();
        }
    }

    /// Queues `key` after `delay`.
    pub fn add_after(&self, key: &str, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let q = self.clone();
        let key = key.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(&key);
        });
    }

    /// Queues `key` after its next backoff delay (doubling with each failure in a row).
    pub fn add_rate_limited(&self, key: &str) {
        let n = {
            let mut st = self.lock();
            let n = st.failures.entry(key.to_string()).or_default();
            *n += 1;
            *n
        };
        let delay = BACKOFF_BASE
            .saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(20)))
            .min(BACKOFF_MAX);
        self.add_after(key, delay);
    }

    /// Resets `key`'s backoff after a success.
    pub fn forget(&self, key: &str) {
        self.lock().failures.remove(key);
    }

    /// The next key, waiting for one; `None` once shut down.
    pub async fn get(&self) -> Option<String> {
        loop {
            let notified = self.notify.notified();
            {
                let mut st = self.lock();
                if st.shut_down {
                    return None;
                }
                if let Some(k) = st.queue.pop_front() {
                    st.dirty.remove(&k);
                    st.processing.insert(k.clone());
                    return Some(k);
                }
            }
            notified.await;
        }
    }

    /// Marks `key` processed; if it was added meanwhile it goes back in the queue.
    pub fn done(&self, key: &str) {
        let mut st = self.lock();
        st.processing.remove(key);
        if st.dirty.contains(key) {
            st.queue.push_back(key.to_string());
            drop(st);
            self.notify.notify_one();
        }
    }

    /// Wakes every waiting [`WorkQueue::get`] with `None`.
    pub fn shut_down(&self) {
        self.lock().shut_down = true;
        self.notify.notify_waiters();
    }

    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deduplicates_and_never_hands_out_a_key_twice_at_once() {
        let q = WorkQueue::new();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.len(), 2);
        assert_eq!(q.get().await.unwrap(), "a");
        // Re-added while processing: held back until done.
        q.add("a");
        assert_eq!(q.get().await.unwrap(), "b");
        assert!(q.is_empty());
        q.done("a");
        assert_eq!(q.get().await.unwrap(), "a");
        q.done("a");
        q.done("b");
        assert!(q.is_empty());
        q.shut_down();
        assert_eq!(q.get().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn add_after_and_backoff_delay_the_key() {
        let q = WorkQueue::new();
        q.add_after("late", Duration::from_secs(30));
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert!(q.is_empty());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(q.get().await.unwrap(), "late");
        q.done("late");
        q.add_rate_limited("f");
        q.add_rate_limited("f");
        q.add_rate_limited("f");
        assert_eq!(q.lock().failures["f"], 3);
        tokio::time::sleep(Duration::from_millis(25)).await;
        assert_eq!(q.len(), 1, "every retry landed on the one queued key");
        q.forget("f");
        assert!(q.lock().failures.is_empty());
    }
}
