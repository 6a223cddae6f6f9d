//! The scheduling framework: the plugin trait (PreFilter → Filter → PreScore → Score →
//! NormalizeScore), the profile that runs plugins in table order, the node sampling of
//! `percentageOfNodesToScore`, and the `FitError` whose text users read in `kubectl describe`.

use std::any::Any;
use std::collections::BTreeMap;

use crate::cache::{Cache, NodeInfo};
use crate::model::PodInfo;

/// Highest score a plugin gives a node (upstream `MaxNodeScore`).
pub const MAX_NODE_SCORE: i64 = 100;

/// Why a plugin refused a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// Evicting pods could make the node fit (resources, ports, anti-affinity).
    Unschedulable,
    /// Nothing on the node can change that (selector, taint, node name): preemption skips it.
    UnschedulableAndUnresolvable,
}

/// A plugin's refusal: a code and the user-facing reasons (one per reason; the message
/// histogram counts each).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<String>,
}

impl Status {
    pub fn unschedulable(reason: impl Into<String>) -> Self {
        Status {
            code: Code::Unschedulable,
            reasons: vec![reason.into()],
        }
    }
    pub fn unresolvable(reason: impl Into<String>) -> Self {
        Status {
            code: Code::UnschedulableAndUnresolvable,
            reasons: vec![reason.into()],
        }
    }
}

/// Per-pod data computed once in PreFilter/PreScore and read per node, keyed by plugin name.
/// A short vector, not a map: a handful of entries read thousands of times per pod, where
/// hashing the key cost more than the plugins themselves. Keys are compared by address, so
/// each plugin names its entries with a `static` (not a `const`, which has no fixed address).
#[derive(Default)]
pub struct CycleState {
    data: Vec<(&'static str, Box<dyn Any + Send + Sync>)>,
}

impl CycleState {
    pub fn write<T: Any + Send + Sync>(&mut self, key: &'static str, v: T) {
        match self.data.iter_mut().find(|(k, _)| std::ptr::eq(*k, key)) {
            Some(slot) => slot.1 = Box::new(v),
            None => self.data.push((key, Box::new(v))),
        }
    }
    pub fn read<T: Any>(&self, key: &'static str) -> Option<&T> {
        self.data
            .iter()
            .find(|(k, _)| std::ptr::eq(*k, key))
            .and_then(|(_, b)| b.downcast_ref())
    }
}

/// One scheduling plugin. Every phase has a default that does nothing, so a plugin implements
/// only the extension points it has upstream.
pub trait Plugin: Send + Sync {
    /// The upstream plugin name (`NodeResourcesFit`).
    fn name(&self) -> &'static str;

    /// Once per pod before any node; an error rejects the pod on every node.
    fn pre_filter(
        &self,
        _pod: &PodInfo,
        _cache: &Cache,
        _state: &mut CycleState,
    ) -> Result<(), Status> {
        Ok(())
    }

    /// Whether the pod may run on this node.
    fn filter(
        &self,
        _pod: &PodInfo,
        _node: &NodeInfo,
        _cache: &Cache,
        _state: &CycleState,
    ) -> Result<(), Status> {
        Ok(())
    }

    /// Once per pod before scoring, with the nodes that passed the filters.
    fn pre_score(
        &self,
        _pod: &PodInfo,
        _cache: &Cache,
        _feasible: &[&NodeInfo],
        _state: &mut CycleState,
    ) {
    }

    /// A score for the node, `None` if this plugin does not score.
    fn score(
        &self,
        _pod: &PodInfo,
        _node: &NodeInfo,
        _cache: &Cache,
        _state: &CycleState,
    ) -> Option<i64> {
        None
    }

    /// Maps raw scores onto 0..=[`MAX_NODE_SCORE`].
    fn normalize(&self, _scores: &mut [i64], _state: &CycleState) {}
}

/// Rescales scores to 0..=100 by the maximum (upstream `DefaultNormalizeScore`); `reverse`
/// makes the lowest raw score the best.
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = MAX_NODE_SCORE * *s / max;
        *s = if reverse { MAX_NODE_SCORE - v } else { v };
    }
}

/// A plugin and its score weight in the profile (0 = filter only).
pub struct Entry {
    pub plugin: Box<dyn Plugin>,
    pub weight: i64,
}

/// Why no node was picked: the histogram of filter reasons, formatted as upstream's
/// `FitError.Error()`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FitError {
    pub num_all_nodes: usize,
    /// A PreFilter rejection replaces the per-node histogram.
    pub pre_filter_msg: Option<String>,
    /// Node name → the first refusing plugin's status.
    pub node_statuses: BTreeMap<String, Status>,
    /// The preemption outcome appended after the filter reasons.
    pub post_filter_msg: Option<String>,
}

impl FitError {
    /// Upstream's text: `0/4 nodes are available: 1 node(s) had untolerated taint {k: v}, 3
    /// Insufficient cpu. preemption: …`: reasons counted, then sorted as strings.
    pub fn message(&self) -> String {
        let mut msg = format!("0/{} nodes are available:", self.num_all_nodes);
        if let Some(pre) = &self.pre_filter_msg {
            msg.push_str(&format!(" {pre}."));
        } else {
            let hist = histogram(self.node_statuses.values().flat_map(|s| s.reasons.iter()));
            if !hist.is_empty() {
                msg.push_str(&format!(" {}.", hist.join(", ")));
            }
        }
        if let Some(post) = &self.post_filter_msg {
            msg.push_str(&format!(" {post}."));
        }
        msg
    }
}

/// `"<count> <reason>"` strings sorted as Go's `sort.Strings` does.
pub fn histogram<'a>(reasons: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in reasons {
        *counts.entry(r.as_str()).or_default() += 1;
    }
    let mut out: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    out.sort();
    out
}

/// How many feasible nodes to find before scoring (upstream adaptive `percentageOfNodesToScore`:
/// 50% minus 1% per 125 nodes, at least 5%, and at least 100 nodes).
pub fn num_feasible_nodes_to_find(num_all: usize) -> usize {
    const MIN_FEASIBLE: usize = 100;
    if num_all < MIN_FEASIBLE {
        return num_all;
    }
    let pct = 50usize.saturating_sub(num_all / 125).max(5);
    (num_all * pct / 100).max(MIN_FEASIBLE)
}

/// The plugins of one profile, in upstream's order.
pub struct Profile {
    pub entries: Vec<Entry>,
    /// Where the next pod's node search starts, so sampling rotates over all nodes.
    next_start: usize,
    rng: u64,
}

/// Where a pod goes, and how many nodes were looked at.
#[derive(Debug, PartialEq, Eq)]
pub struct ScheduleResult {
    pub node: String,
    pub evaluated: usize,
    pub feasible: usize,
}

impl Profile {
    pub fn new(entries: Vec<Entry>) -> Self {
        Profile {
            entries,
            next_start: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*: tie-breaking only, no need for a crate.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Runs PreFilter; a rejection is the FitError's pre-filter message.
    pub fn run_pre_filter(
        &self,
        pod: &PodInfo,
        cache: &Cache,
        state: &mut CycleState,
    ) -> Result<(), Status> {
        for e in &self.entries {
            e.plugin.pre_filter(pod, cache, state)?;
        }
        Ok(())
    }

    /// Runs every Filter on one node, stopping at the first refusal.
    pub fn run_filters(
        &self,
        pod: &PodInfo,
        node: &NodeInfo,
        cache: &Cache,
        state: &CycleState,
    ) -> Result<(), Status> {
        if node.node.is_none() {
            return Err(Status::unresolvable("node(s) not found"));
        }
        // Room promised to nominated pods of no lower priority counts as taken (upstream
        // `RunFilterPluginsWithNominatedPods`); the common case clones nothing.
        let mut nominated = cache.nominated_for(&node.name, pod).peekable();
        if nominated.peek().is_some() {
            let mut with = node.clone();
            for p in nominated {
                with.add_pod(p.clone());
            }
            for e in &self.entries {
                e.plugin.filter(pod, &with, cache, state)?;
            }
        }
        for e in &self.entries {
            e.plugin.filter(pod, node, cache, state)?;
        }
        Ok(())
    }

    /// Picks a node for `pod` or says why none fits (before preemption).
    #[doc(alias = "schedulePod")]
    pub fn schedule(&mut self, pod: &PodInfo, cache: &Cache) -> Result<ScheduleResult, FitError> {
        let num_all = cache.num_nodes();
        let mut err = FitError {
            num_all_nodes: num_all,
            ..FitError::default()
        };
        if num_all == 0 {
            return Err(err);
        }
        let mut state = CycleState::default();
        if let Err(s) = self.run_pre_filter(pod, cache, &mut state) {
            err.pre_filter_msg = Some(s.reasons.join(", "));
            return Err(err);
        }
        let infos = cache.node_infos();
        let want = num_feasible_nodes_to_find(num_all);
        let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(want.min(infos.len()));
        let n = infos.len();
        let start = self.next_start % n;
        let mut evaluated = 0;
        // A pod nominated by preemption tries its nominated node first (upstream
        // `evaluateNominatedNode`).
        if !pod.nominated_node_name.is_empty()
            && let Some(ni) = cache.node(&pod.nominated_node_name)
            && self.run_filters(pod, ni, cache, &state).is_ok()
        {
            return Ok(ScheduleResult {
                node: ni.name.clone(),
                evaluated: 1,
                feasible: 1,
            });
        }
        for k in 0..n {
            let ni = &infos[(start + k) % n];
            if ni.node.is_none() {
                continue;
            }
            evaluated += 1;
            match self.run_filters(pod, ni, cache, &state) {
                Ok(()) => {
                    feasible.push(ni);
                    if feasible.len() >= want {
                        break;
                    }
                }
                Err(s) => {
                    err.node_statuses.insert(ni.name.clone(), s);
                }
            }
        }
        self.next_start = (start + evaluated) % n.max(1);
        if feasible.is_empty() {
            return Err(err);
        }
        if feasible.len() == 1 {
            return Ok(ScheduleResult {
                node: feasible[0].name.clone(),
                evaluated,
                feasible: 1,
            });
        }
        let totals = self.score(pod, cache, &feasible, &mut state);
        // Highest total; ties broken uniformly at random (reservoir sampling, as upstream).
        let mut best = 0;
        let mut ties = 0u64;
        for (i, t) in totals.iter().enumerate() {
            if *t > totals[best] {
                best = i;
                ties = 1;
            } else if *t == totals[best] {
                ties += 1;
                if self.next_rand().is_multiple_of(ties) {
                    best = i;
                }
            }
        }
        Ok(ScheduleResult {
            node: feasible[best].name.clone(),
            evaluated,
            feasible: feasible.len(),
        })
    }

    /// Weighted sum of normalized plugin scores per feasible node.
    pub fn score(
        &self,
        pod: &PodInfo,
        cache: &Cache,
        feasible: &[&NodeInfo],
        state: &mut CycleState,
    ) -> Vec<i64> {
        for e in &self.entries {
            if e.weight > 0 {
                e.plugin.pre_score(pod, cache, feasible, state);
            }
        }
        let mut totals = vec![0i64; feasible.len()];
        let mut scores = vec![0i64; feasible.len()];
        for e in &self.entries {
            if e.weight == 0 {
                continue;
            }
            let mut any = false;
            for (i, ni) in feasible.iter().enumerate() {
                match e.plugin.score(pod, ni, cache, state) {
                    Some(s) => {
                        scores[i] = s;
                        any = true;
                    }
                    None => scores[i] = 0,
                }
            }
            if !any {
                continue;
            }
            e.plugin.normalize(&mut scores, state);
            for (t, s) in totals.iter_mut().zip(&scores) {
                *t += s.clamp(&0, &MAX_NODE_SCORE) * e.weight;
            }
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unschedulable_message_matches_upstream_text() {
        let mut e = FitError {
            num_all_nodes: 4,
            ..FitError::default()
        };
        e.node_statuses.insert(
            "n1".into(),
            Status::unresolvable("node(s) had untolerated taint {dedicated: jenkins}"),
        );
        for n in ["n2", "n3", "n4"] {
            e.node_statuses
                .insert(n.into(), Status::unschedulable("Insufficient cpu"));
        }
        e.post_filter_msg = Some(
            "preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling."
                .into(),
        );
        assert_eq!(
            e.message(),
            "0/4 nodes are available: 1 node(s) had untolerated taint {dedicated: jenkins}, \
             3 Insufficient cpu. preemption: 0/4 nodes are available: 4 Preemption is not \
             helpful for scheduling.."
        );

        // Two reasons on one node count separately; Go sorts the strings, counts first.
        let mut e = FitError {
            num_all_nodes: 12,
            ..FitError::default()
        };
        e.node_statuses.insert(
            "a".into(),
            Status {
                code: Code::Unschedulable,
                reasons: vec!["Insufficient cpu".into(), "Insufficient memory".into()],
            },
        );
        for i in 0..11 {
            e.node_statuses.insert(
                format!("b{i}"),
                Status::unresolvable("node(s) didn't match Pod's node affinity/selector"),
            );
        }
        assert_eq!(
            e.message(),
            "0/12 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, \
             11 node(s) didn't match Pod's node affinity/selector."
        );

        let e = FitError {
            num_all_nodes: 3,
            pre_filter_msg: Some("persistentvolumeclaim \"data\" not found".into()),
            ..FitError::default()
        };
        assert_eq!(
            e.message(),
            "0/3 nodes are available: persistentvolumeclaim \"data\" not found."
        );
    }

    #[test]
    fn feasible_node_sampling_is_adaptive() {
        for (all, want) in [
            (0, 0),
            (50, 50),
            (100, 100),
            (500, 230),
            (1000, 420),
            (5000, 500),
            (10_000, 500),
            (100_000, 5000),
        ] {
            assert_eq!(num_feasible_nodes_to_find(all), want, "{all} nodes");
        }
    }

    #[test]
    fn normalize_by_max() {
        let mut s = vec![0, 5, 10];
        default_normalize(&mut s, false);
        assert_eq!(s, vec![0, 50, 100]);
        let mut s = vec![0, 5, 10];
        default_normalize(&mut s, true);
        assert_eq!(s, vec![100, 50, 0]);
        let mut s = vec![0, 0];
        default_normalize(&mut s, true);
        assert_eq!(s, vec![100, 100]);
    }
}
