//! InterPodAffinity: required pod affinity (some matching pod in the node's topology domain),
//! required anti-affinity (none there), and the symmetric rule that existing pods' required
//! anti-affinity must not match the incoming pod; preferred terms of both sides score.
//!
//! PreFilter counts matches per `(topologyKey, value)` once per pod, so each node check is a
//! few map lookups. Existing pods' terms come from the cache's index of pods with affinity,
//! not from a scan of every pod.

use std::collections::HashMap;

use crate::cache::{Cache, NodeInfo};
use crate::framework::{CycleState, MAX_NODE_SCORE, Plugin, Status};
use crate::model::{AffinityTerm, PodInfo};

pub struct InterPodAffinity;

static FILTER_KEY: &str = "InterPodAffinity/filter";
static SCORE_KEY: &str = "InterPodAffinity/score";

type Pair = (String, String);

#[derive(Default)]
struct FilterState {
    /// Domains where an existing pod's required anti-affinity matches the incoming pod.
    existing_anti: HashMap<Pair, i64>,
    /// Domains with pods matching all of the incoming pod's required affinity terms.
    affinity: HashMap<Pair, i64>,
    /// Domains with pods matching one of the incoming pod's required anti-affinity terms.
    anti: HashMap<Pair, i64>,
}

fn term_matches(term: &AffinityTerm, pod: &PodInfo, cache: &Cache) -> bool {
    term.matches_pod(pod, cache.namespace_labels(&pod.namespace))
}

fn node_value<'a>(cache: &'a Cache, node: &str, key: &str) -> Option<&'a str> {
    cache
        .node(node)
        .and_then(|ni| ni.node.as_deref())
        .and_then(|n| n.labels.get(key))
        .map(String::as_str)
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        "InterPodAffinity"
    }

    fn pre_filter(
        &self,
        pod: &PodInfo,
        cache: &Cache,
        state: &mut CycleState,
    ) -> Result<(), Status> {
        let mut st = FilterState::default();
        for (other, node) in cache.affinity_pods() {
            for term in &other.required_anti_affinity {
                if term_matches(term, pod, cache)
                    && let Some(v) = node_value(cache, node, &term.topology_key)
                {
                    *st.existing_anti
                        .entry((term.topology_key.clone(), v.to_string()))
                        .or_default() += 1;
                }
            }
        }
        if !pod.required_affinity.is_empty() || !pod.required_anti_affinity.is_empty() {
            for ni in cache.node_infos() {
                let Some(spec) = ni.node.as_deref() else {
                    continue;
                };
                for other in &ni.pods {
                    if other.deleting {
                        continue;
                    }
                    if !pod.required_affinity.is_empty()
                        && pod
                            .required_affinity
                            .iter()
                            .all(|t| term_matches(t, other, cache))
                    {
                        for t in &pod.required_affinity {
                            if let Some(v) = spec.labels.get(&t.topology_key) {
                                *st.affinity
                                    .entry((t.topology_key.clone(), v.clone()))
                                    .or_default() += 1;
                            }
                        }
                    }
                    for t in &pod.required_anti_affinity {
                        if term_matches(t, other, cache)
                            && let Some(v) = spec.labels.get(&t.topology_key)
                        {
                            *st.anti
                                .entry((t.topology_key.clone(), v.clone()))
                                .or_default() += 1;
                        }
                    }
                }
            }
        }
        // Nothing to check on any node: let Filter return at once.
        if !st.existing_anti.is_empty()
            || !pod.required_affinity.is_empty()
            || !pod.required_anti_affinity.is_empty()
        {
            state.write(FILTER_KEY, st);
        }
        Ok(())
    }

    fn filter(
        &self,
        pod: &PodInfo,
        node: &NodeInfo,
        cache: &Cache,
        state: &CycleState,
    ) -> Result<(), Status> {
        let Some(st) = state.read::<FilterState>(FILTER_KEY) else {
            return Ok(());
        };
        let labels = &node.spec().labels;
        let hit = |m: &HashMap<Pair, i64>, key: &str| {
            labels
                .get(key)
                .is_some_and(|v| m.get(&(key.to_string(), v.clone())).is_some_and(|n| *n > 0))
        };
        if !st.existing_anti.is_empty()
            && st
                .existing_anti
                .keys()
                .any(|(k, _)| hit(&st.existing_anti, k))
        {
            return Err(Status::unschedulable(
                "node(s) didn't satisfy existing pods anti-affinity rules",
            ));
        }
        if !pod.required_affinity.is_empty() {
            let all_keys = pod
                .required_affinity
                .iter()
                .all(|t| labels.contains_key(&t.topology_key));
            let satisfied = pod
                .required_affinity
                .iter()
                .all(|t| hit(&st.affinity, &t.topology_key));
            // The first pod of a group that selects itself may go anywhere with the keys.
            let self_ok = st.affinity.is_empty()
                && pod
                    .required_affinity
                    .iter()
                    .all(|t| term_matches(t, pod, cache));
            if !all_keys || !(satisfied || self_ok) {
                return Err(Status::unresolvable(
                    "node(s) didn't match pod affinity rules",
                ));
            }
        }
        if pod
            .required_anti_affinity
            .iter()
            .any(|t| hit(&st.anti, &t.topology_key))
        {
            return Err(Status::unschedulable(
                "node(s) didn't match pod anti-affinity rules",
            ));
        }
        Ok(())
    }

    fn pre_score(&self, pod: &PodInfo, cache: &Cache, _: &[&NodeInfo], state: &mut CycleState) {
        let own = !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
        let mut topo: HashMap<Pair, i64> = HashMap::new();
        let mut add = |key: &str, node: &str, w: i64| {
            if let Some(v) = node_value(cache, node, key) {
                *topo.entry((key.to_string(), v.to_string())).or_default() += w;
            }
        };
        // Existing pods' terms that match the incoming pod (symmetry; required affinity
        // counts with upstream's hardPodAffinityWeight of 1).
        for (other, node) in cache.affinity_pods() {
            for t in &other.required_affinity {
                if term_matches(t, pod, cache) {
                    add(&t.topology_key, node, 1);
                }
            }
            for t in &other.preferred_affinity {
                if term_matches(t, pod, cache) {
                    add(&t.topology_key, node, t.weight);
                }
            }
            for t in &other.preferred_anti_affinity {
                if term_matches(t, pod, cache) {
                    add(&t.topology_key, node, -t.weight);
                }
            }
        }
        if own {
            for ni in cache.node_infos() {
                if ni.node.is_none() {
                    continue;
                }
                for other in &ni.pods {
                    for t in &pod.preferred_affinity {
                        if term_matches(t, other, cache) {
                            add(&t.topology_key, &ni.name, t.weight);
                        }
                    }
                    for t in &pod.preferred_anti_affinity {
                        if term_matches(t, other, cache) {
                            add(&t.topology_key, &ni.name, -t.weight);
                        }
                    }
                }
            }
        }
        if !topo.is_empty() {
            state.write(SCORE_KEY, topo);
        }
    }

    fn score(&self, _: &PodInfo, node: &NodeInfo, _: &Cache, state: &CycleState) -> Option<i64> {
        let topo = state.read::<HashMap<Pair, i64>>(SCORE_KEY)?;
        let labels = &node.spec().labels;
        Some(
            topo.iter()
                .filter(|((k, v), _)| labels.get(k) == Some(v))
                .map(|(_, w)| *w)
                .sum(),
        )
    }

    fn normalize(&self, scores: &mut [i64], _: &CycleState) {
        let min = scores.iter().copied().min().unwrap_or(0);
        let max = scores.iter().copied().max().unwrap_or(0);
        let diff = max - min;
        for s in scores.iter_mut() {
            *s = if diff > 0 {
                MAX_NODE_SCORE * (*s - min) / diff
            } else {
                0
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{cache_with, named_pod};
    use serde_json::json;

    const ZONE: &str = "topology.kubernetes.io/zone";

    fn nodes() -> Vec<serde_json::Value> {
        ["a", "b"]
            .iter()
            .map(|z| json!({"metadata": {"name": format!("n{z}"), "labels": {ZONE: z}}}))
            .collect()
    }

    fn results(p: &PodInfo, cache: &Cache) -> Vec<Result<(), Status>> {
        let pl = InterPodAffinity;
        let mut state = CycleState::default();
        pl.pre_filter(p, cache, &mut state).unwrap();
        let mut infos: Vec<&NodeInfo> = cache.node_infos().iter().collect();
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        infos
            .iter()
            .map(|ni| pl.filter(p, ni, cache, &state))
            .collect()
    }

    fn term(app: &str) -> serde_json::Value {
        json!([{"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": ZONE}])
    }

    #[test]
    fn required_affinity_and_anti_affinity() {
        let db = named_pod("db", json!({"app": "db"}), json!({}));
        let cache = cache_with(nodes(), vec![("na", db)]);
        let with_db = named_pod(
            "w",
            json!({"app": "web"}),
            json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": term("db")}}}),
        );
        assert_eq!(
            results(&with_db, &cache),
            vec![
                Ok(()),
                Err(Status::unresolvable(
                    "node(s) didn't match pod affinity rules"
                )),
            ]
        );
        let away = named_pod(
            "w",
            json!({"app": "web"}),
            json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": term("db")}}}),
        );
        assert_eq!(
            results(&away, &cache),
            vec![
                Err(Status::unschedulable(
                    "node(s) didn't match pod anti-affinity rules"
                )),
                Ok(()),
            ]
        );
        // No pod matches yet, but the pod matches its own term: first of its group.
        let selfish = named_pod(
            "w",
            json!({"app": "web"}),
            json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": term("web")}}}),
        );
        assert_eq!(results(&selfish, &cache), vec![Ok(()), Ok(())]);
    }

    #[test]
    fn existing_pods_anti_affinity_is_symmetric() {
        let loner = named_pod(
            "l",
            json!({"app": "loner"}),
            json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": term("web")}}}),
        );
        let cache = cache_with(nodes(), vec![("nb", loner)]);
        let web = named_pod("w", json!({"app": "web"}), json!({}));
        assert_eq!(
            results(&web, &cache),
            vec![
                Ok(()),
                Err(Status::unschedulable(
                    "node(s) didn't satisfy existing pods anti-affinity rules"
                )),
            ]
        );
        let other = named_pod("o", json!({"app": "other"}), json!({}));
        assert_eq!(results(&other, &cache), vec![Ok(()), Ok(())]);
    }

    #[test]
    fn preferred_terms_score() {
        let db = named_pod("db", json!({"app": "db"}), json!({}));
        let cache = cache_with(nodes(), vec![("nb", db)]);
        let p = named_pod(
            "w",
            json!({"app": "web"}),
            json!({"affinity": {"podAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 50, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": ZONE}}]}}}),
        );
        let pl = InterPodAffinity;
        let mut infos: Vec<&NodeInfo> = cache.node_infos().iter().collect();
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        let mut state = CycleState::default();
        pl.pre_score(&p, &cache, &infos, &mut state);
        let mut scores: Vec<i64> = infos
            .iter()
            .map(|n| pl.score(&p, n, &cache, &state).unwrap())
            .collect();
        pl.normalize(&mut scores, &state);
        assert_eq!(scores, vec![0, 100]);
    }
}
