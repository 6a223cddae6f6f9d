//! One timer structure for every pending stage, lease renewal and status report: a binary heap of
//! (deadline, sequence, key) with lazy cancellation, plus a map key → live entry. Thousands of
//! nodes and 100k pods share one task and one sleep instead of a task or a `sleep` each
//! (`tokio_util::time::DelayQueue` has the same shape; this one is keyed, so rescheduling a pod is
//! one insert and stale heap entries are skipped when they surface).
//!
//! Time is a type parameter: the runtime uses `tokio::time::Instant`, the tests plain integers,
//! which is the injected clock of the unit tests.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;

/// Keyed timers: at most one live deadline per key.
#[doc(alias = "DelayQueue")]
pub struct TimerQueue<K, T> {
    heap: BinaryHeap<Reverse<(T, u64, K)>>,
    live: HashMap<K, (T, u64)>,
    seq: u64,
}

impl<K, T> Default for TimerQueue<K, T> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            live: HashMap::new(),
            seq: 0,
        }
    }
}

impl<K: Clone + Eq + Hash + Ord, T: Copy + Ord> TimerQueue<K, T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to fire at `at`, replacing any earlier setting.
    pub fn schedule(&mut self, key: K, at: T) {
        self.seq += 1;
        self.live.insert(key.clone(), (at, self.seq));
        self.heap.push(Reverse((at, self.seq, key)));
        self.compact_if_needed();
    }

    /// Sets `key` to fire at `at` unless it is already set (keeps the earlier plan).
    pub fn schedule_if_absent(&mut self, key: K, at: T) {
        if let Entry::Vacant(_) = self.live.entry(key.clone()) {
            self.schedule(key, at);
        }
    }

    /// Cancels `key`; true if it was set.
    pub fn cancel(&mut self, key: &K) -> bool {
        self.live.remove(key).is_some()
    }

    /// When `key` fires, if set.
    pub fn deadline(&self, key: &K) -> Option<T> {
        self.live.get(key).map(|(t, _)| *t)
    }

    /// The earliest live deadline.
    pub fn next_deadline(&mut self) -> Option<T> {
        self.drop_stale_top();
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Removes and returns the keys due at `now`, earliest first, at most `max`.
    pub fn pop_due(&mut self, now: T, max: usize) -> Vec<K> {
        let mut out = Vec::new();
        while out.len() < max {
            self.drop_stale_top();
            match self.heap.peek() {
                Some(Reverse((t, _, _))) if *t <= now => {
                    let Some(Reverse((_, _, key))) = self.heap.pop() else {
                        break;
                    };
                    self.live.remove(&key);
                    out.push(key);
                }
                _ => break,
            }
        }
        out
    }

    /// Number of live timers.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    fn drop_stale_top(&mut self) {
        while let Some(Reverse((_, seq, key))) = self.heap.peek() {
            match self.live.get(key) {
                Some((_, live_seq)) if live_seq == seq => return,
                _ => {
                    self.heap.pop();
                }
            }
        }
    }

    /// Rebuilds the heap when cancelled or replaced entries outnumber live ones, so memory stays
    /// proportional to the live timers however often pods are rescheduled.
    fn compact_if_needed(&mut self) {
        if self.heap.len() > 1024 && self.heap.len() > 4 * self.live.len() {
            let mut entries: Vec<_> = self
                .live
                .iter()
                .map(|(k, (t, s))| Reverse((*t, *s, k.clone())))
                .collect();
            entries.shrink_to_fit();
            self.heap = BinaryHeap::from(entries);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_deadline_order_with_an_injected_clock() {
        let mut q: TimerQueue<&str, u64> = TimerQueue::new();
        q.schedule("b", 20);
        q.schedule("a", 10);
        q.schedule("c", 30);
        assert_eq!(q.next_deadline(), Some(10));
        assert_eq!(q.pop_due(5, 10), Vec::<&str>::new());
        assert_eq!(q.pop_due(20, 10), vec!["a", "b"]);
        assert_eq!(q.len(), 1);
        assert_eq!(q.next_deadline(), Some(30));
        assert_eq!(q.pop_due(100, 10), vec!["c"]);
        assert!(q.is_empty());
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn reschedule_and_cancel_leave_no_ghost() {
        let mut q: TimerQueue<u32, u64> = TimerQueue::new();
        q.schedule(1, 10);
        q.schedule(1, 50);
        q.schedule(2, 20);
        assert!(q.cancel(&2));
        assert!(!q.cancel(&2));
        assert_eq!(q.next_deadline(), Some(50));
        assert_eq!(q.pop_due(40, 10), Vec::<u32>::new());
        assert_eq!(q.deadline(&1), Some(50));
        q.schedule_if_absent(1, 5);
        assert_eq!(q.deadline(&1), Some(50), "an existing plan is kept");
        q.schedule_if_absent(3, 5);
        assert_eq!(q.pop_due(60, 10), vec![3, 1]);
    }

    #[test]
    fn pop_due_respects_the_batch_limit_and_ties_are_fifo() {
        let mut q: TimerQueue<u32, u64> = TimerQueue::new();
        for k in 0..10 {
            q.schedule(k, 7);
        }
        assert_eq!(q.pop_due(7, 4), vec![0, 1, 2, 3]);
        assert_eq!(q.pop_due(7, 100), vec![4, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn heap_is_compacted_under_churn() {
        let mut q: TimerQueue<u32, u64> = TimerQueue::new();
        for round in 0..100u64 {
            for k in 0..100u32 {
                q.schedule(k, round * 1000 + u64::from(k));
            }
        }
        assert_eq!(q.len(), 100);
        assert!(q.heap.len() <= 4 * 100 + 1024, "heap {}", q.heap.len());
        let due = q.pop_due(u64::MAX, usize::MAX);
        assert_eq!(due, (0..100).collect::<Vec<_>>());
    }
}
