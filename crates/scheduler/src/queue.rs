//! The scheduling queue (upstream `PriorityQueue`): an active heap in PrioritySort order
//! (higher `spec.priority` first, then older), a backoff heap for pods that just failed, and an
//! unschedulable set that cluster events (node added, pod deleted, claim bound) or the periodic
//! flush (5 minutes) move back.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use crate::model::{PodKey, PodRef};

/// Upstream `podInitialBackoffDuration`.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Upstream `podMaxBackoffDuration`.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Upstream `podMaxInUnschedulablePodsDuration`.
pub const MAX_UNSCHEDULABLE: Duration = Duration::from_secs(5 * 60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Active(u64),
    Backoff(Instant),
    Unschedulable(Instant),
    /// Popped and being scheduled or bound.
    InFlight,
}

struct Queued {
    pod: PodRef,
    attempts: u32,
    /// When the last failed attempt ended (backoff counts from it).
    failed_at: Option<Instant>,
    place: Place,
}

/// Heap order: priority, then older creation, then arrival.
type ActiveKey = (i32, Reverse<String>, Reverse<u64>, PodKey);

#[derive(Default)]
#[doc(alias = "PriorityQueue")]
pub struct SchedulingQueue {
    pods: HashMap<PodKey, Queued>,
    active: BinaryHeap<ActiveKey>,
    backoff: BinaryHeap<Reverse<(Instant, PodKey)>>,
    seq: u64,
}

impl SchedulingQueue {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    /// Number of pods ready to pop.
    pub fn active_len(&self) -> usize {
        self.pods
            .values()
            .filter(|q| matches!(q.place, Place::Active(_)))
            .count()
    }

    fn backoff_of(q: &Queued) -> Duration {
        let shift = q.attempts.saturating_sub(1).min(10);
        (INITIAL_BACKOFF * (1u32 << shift)).min(MAX_BACKOFF)
    }

    fn push_active(&mut self, key: &PodKey) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(q) = self.pods.get_mut(key) {
            q.place = Place::Active(seq);
            self.active.push((
                q.pod.priority,
                Reverse(q.pod.creation.clone()),
                Reverse(seq),
                key.clone(),
            ));
        }
    }

    /// To active, or to backoff while the pod's backoff since its last failure runs.
    fn activate_or_backoff(&mut self, key: &PodKey, now: Instant) {
        let Some(q) = self.pods.get_mut(key) else {
            return;
        };
        if let Some(at) = q.failed_at {
            let until = at + Self::backoff_of(q);
            if until > now {
                q.place = Place::Backoff(until);
                self.backoff.push(Reverse((until, key.clone())));
                return;
            }
        }
        self.push_active(key);
    }

    /// A pending pod was added or changed. A changed unschedulable pod gets another try.
    pub fn add_or_update(&mut self, pod: PodRef, now: Instant) {
        let key = pod.key();
        match self.pods.get_mut(&key) {
            Some(q) => {
                let priority_changed = q.pod.priority != pod.priority;
                q.pod = pod;
                match q.place {
                    Place::Unschedulable(_) => self.activate_or_backoff(&key, now),
                    Place::Active(_) if priority_changed => self.push_active(&key),
                    _ => {}
                }
            }
            None => {
                self.pods.insert(
                    key.clone(),
                    Queued {
                        pod,
                        attempts: 0,
                        failed_at: None,
                        place: Place::InFlight,
                    },
                );
                self.push_active(&key);
            }
        }
    }

    /// The pod is gone or no longer pending.
    pub fn remove(&mut self, key: &str) {
        self.pods.remove(key);
    }

    pub fn contains(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }

    /// Moves due backoff entries to active, then pops the best active pod.
    pub fn pop(&mut self, now: Instant) -> Option<PodRef> {
        while let Some(Reverse((until, key))) = self.backoff.peek().cloned() {
            if until > now {
                break;
            }
            self.backoff.pop();
            if self
                .pods
                .get(&key)
                .is_some_and(|q| q.place == Place::Backoff(until))
            {
                self.push_active(&key);
            }
        }
        while let Some((_, _, Reverse(seq), key)) = self.active.pop() {
            if let Some(q) = self.pods.get_mut(&key)
                && q.place == Place::Active(seq)
            {
                q.place = Place::InFlight;
                return Some(q.pod.clone());
            }
        }
        None
    }

    /// The attempt found no node: park the pod until something changes.
    pub fn unschedulable(&mut self, key: &str, now: Instant) {
        if let Some(q) = self.pods.get_mut(key) {
            q.attempts += 1;
            q.failed_at = Some(now);
            q.place = Place::Unschedulable(now);
        }
    }

    /// The attempt failed for a transient reason (bind error): retry after backoff.
    pub fn retry(&mut self, key: &str, now: Instant) {
        if let Some(q) = self.pods.get_mut(key) {
            q.attempts += 1;
            q.failed_at = Some(now);
            let key = key.to_string();
            self.activate_or_backoff(&key, now);
        }
    }

    /// A cluster event that may make parked pods schedulable (upstream
    /// `MoveAllToActiveOrBackoffQueue`).
    pub fn move_all_to_active(&mut self, now: Instant) {
        let parked: Vec<PodKey> = self
            .pods
            .iter()
            .filter(|(_, q)| matches!(q.place, Place::Unschedulable(_)))
            .map(|(k, _)| k.clone())
            .collect();
        for k in parked {
            self.activate_or_backoff(&k, now);
        }
    }

    /// Periodic flush: pods parked longer than [`MAX_UNSCHEDULABLE`] get another try.
    pub fn flush_unschedulable(&mut self, now: Instant) {
        let stale: Vec<PodKey> = self
            .pods
            .iter()
            .filter(|(_, q)| {
                matches!(q.place, Place::Unschedulable(t) if now.duration_since(t) >= MAX_UNSCHEDULABLE)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            self.activate_or_backoff(&k, now);
        }
    }

    /// When the earliest backoff ends.
    pub fn next_backoff(&self) -> Option<Instant> {
        self.backoff.peek().map(|Reverse((t, _))| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PodInfo;
    use serde_json::json;
    use std::sync::Arc;

    fn p(name: &str, prio: i64, created: &str) -> PodRef {
        Arc::new(PodInfo::parse(&json!({
            "metadata": {"name": name, "namespace": "d", "creationTimestamp": created},
            "spec": {"priority": prio, "containers": []}})))
    }

    #[test]
    fn priority_then_creation_order() {
        let mut q = SchedulingQueue::new();
        let now = Instant::now();
        q.add_or_update(p("late", 0, "2026-01-01T00:00:02Z"), now);
        q.add_or_update(p("early", 0, "2026-01-01T00:00:01Z"), now);
        q.add_or_update(p("vip", 1000, "2026-01-01T00:00:09Z"), now);
        let order: Vec<String> = std::iter::from_fn(|| q.pop(now))
            .map(|p| p.name.clone())
            .collect();
        assert_eq!(order, ["vip", "early", "late"]);
    }

    #[test]
    fn unschedulable_pods_wait_for_events_then_backoff() {
        let mut q = SchedulingQueue::new();
        let t0 = Instant::now();
        q.add_or_update(p("a", 0, "x"), t0);
        assert!(q.pop(t0).is_some());
        q.unschedulable("d/a", t0);
        assert!(q.pop(t0).is_none());
        // An event within the backoff parks it in backoff, due after 1 s.
        q.move_all_to_active(t0 + Duration::from_millis(100));
        assert!(q.pop(t0 + Duration::from_millis(500)).is_none());
        assert_eq!(q.next_backoff(), Some(t0 + INITIAL_BACKOFF));
        assert_eq!(q.pop(t0 + INITIAL_BACKOFF).unwrap().name, "a");
        // Second failure: 2 s backoff; the flush only acts after 5 minutes.
        let t1 = t0 + Duration::from_secs(2);
        q.unschedulable("d/a", t1);
        q.flush_unschedulable(t1 + Duration::from_secs(60));
        assert!(q.pop(t1 + Duration::from_secs(60)).is_none());
        q.flush_unschedulable(t1 + MAX_UNSCHEDULABLE);
        assert!(q.pop(t1 + MAX_UNSCHEDULABLE).is_some());
    }

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let mut q = SchedulingQueue::new();
        let t = Instant::now();
        q.add_or_update(p("a", 0, "x"), t);
        for want in [1, 2, 4, 8, 10, 10] {
            q.pop(t + Duration::from_secs(1000));
            q.retry("d/a", t);
            assert_eq!(q.next_backoff(), Some(t + Duration::from_secs(want)));
            q.backoff.clear();
        }
    }

    #[test]
    fn removed_pods_never_pop() {
        let mut q = SchedulingQueue::new();
        let t = Instant::now();
        q.add_or_update(p("a", 0, "x"), t);
        q.remove("d/a");
        assert!(q.pop(t).is_none());
        assert!(q.is_empty());
    }
}
