//! PodTopologySpread: `topologySpreadConstraints` with `DoNotSchedule` filter nodes whose domain
//! would exceed `maxSkew` over the least-loaded domain; `ScheduleAnyway` constraints, or the
//! system defaults (zone maxSkew 5, hostname maxSkew 3) for pods with a controller owner and no
//! constraints of their own, score emptier domains higher.
//!
//! Difference from upstream, on purpose: the default constraints count the pods of the same
//! controller owner (incrementally kept in the cache) rather than pods matching the selectors of
//! every Service/ReplicaSet selecting the pod, which needs no extra informers and is the same
//! set for Deployment/StatefulSet pods.

use std::collections::HashMap;

use skiff_k8s_core::selector::Selector;

use crate::cache::{Cache, NodeInfo};
use crate::framework::{CycleState, MAX_NODE_SCORE, Plugin, Status};
use crate::model::{NodeSpec, PodInfo, SpreadConstraint};
use crate::plugins::node_affinity::required_matches;

pub struct PodTopologySpread;

static FILTER_KEY: &str = "PodTopologySpread/filter";
static SCORE_KEY: &str = "PodTopologySpread/score";
pub const ZONE: &str = "topology.kubernetes.io/zone";
pub const HOSTNAME: &str = "kubernetes.io/hostname";

/// The node's value for a topology key; the hostname falls back to the node name (the kubelet
/// sets them equal) so directly registered Nodes still spread.
pub fn topology_value<'a>(node: &'a NodeSpec, key: &str) -> Option<&'a str> {
    if key == ZONE {
        return node.zone.as_deref();
    }
    match node.labels.get(key) {
        Some(v) => Some(v),
        None if key == HOSTNAME => Some(&node.name),
        None => None,
    }
}

fn count_on(pod: &PodInfo, c: &SpreadConstraint, ni: &NodeInfo, cache: &Cache) -> i64 {
    match &c.by_owner {
        Some(uid) => cache.owner_id(uid).map_or(0, |id| ni.owner_pods(id)),
        None => ni
            .pods
            .iter()
            .filter(|p| {
                p.namespace == pod.namespace && !p.deleting && c.selector.matches(&p.labels)
            })
            .count() as i64,
    }
}

fn eligible(pod: &PodInfo, c: &SpreadConstraint, ni: &NodeInfo) -> bool {
    if c.honor_node_affinity && !required_matches(pod, ni) {
        return false;
    }
    if c.honor_taints {
        let spec = ni.spec();
        let ok = spec.taints.iter().all(|t| {
            !(t.effect == "NoSchedule" || t.effect == "NoExecute")
                || pod.tolerations.iter().any(|tol| tol.tolerates(t))
        });
        if !ok {
            return false;
        }
    }
    true
}

/// One scoring constraint with its per-domain counts (per-node ones are counted in `score`).
struct Scored {
    constraint: SpreadConstraint,
    counts: HashMap<String, i64>,
    weight: f64,
    per_node: bool,
    /// Interned owner id for default constraints.
    owner: Option<u32>,
}

struct Counted {
    constraint: SpreadConstraint,
    counts: HashMap<String, i64>,
    min: i64,
    self_match: i64,
}

/// The default system constraints (upstream `systemDefaultConstraints`).
fn default_constraints(owner: &str) -> Vec<SpreadConstraint> {
    [(ZONE, 5), (HOSTNAME, 3)]
        .into_iter()
        .map(|(key, skew)| SpreadConstraint {
            max_skew: skew,
            topology_key: key.into(),
            hard: false,
            selector: Selector::everything(),
            min_domains: None,
            by_owner: Some(owner.to_string()),
            honor_node_affinity: true,
            honor_taints: false,
        })
        .collect()
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        "PodTopologySpread"
    }

    fn pre_filter(
        &self,
        pod: &PodInfo,
        cache: &Cache,
        state: &mut CycleState,
    ) -> Result<(), Status> {
        let hard: Vec<&SpreadConstraint> =
            pod.spread_constraints.iter().filter(|c| c.hard).collect();
        if hard.is_empty() {
            return Ok(());
        }
        let mut counted: Vec<Counted> = hard
            .iter()
            .map(|c| Counted {
                constraint: (*c).clone(),
                counts: HashMap::new(),
                min: 0,
                self_match: i64::from(c.selector.matches(&pod.labels)),
            })
            .collect();
        for ni in cache.node_infos() {
            let Some(spec) = ni.node.as_deref() else {
                continue;
            };
            // A node counts only if it carries every constraint's key.
            if hard
                .iter()
                .any(|c| topology_value(spec, &c.topology_key).is_none())
            {
                continue;
            }
            for k in counted.iter_mut() {
                if !eligible(pod, &k.constraint, ni) {
                    continue;
                }
                let v = topology_value(spec, &k.constraint.topology_key).unwrap_or_default();
                *k.counts.entry(v.to_string()).or_default() +=
                    count_on(pod, &k.constraint, ni, cache);
            }
        }
        for k in counted.iter_mut() {
            k.min = k.counts.values().copied().min().unwrap_or(0);
            if k.constraint
                .min_domains
                .is_some_and(|m| (k.counts.len() as i64) < m)
            {
                k.min = 0;
            }
        }
        state.write(FILTER_KEY, counted);
        Ok(())
    }

    fn filter(
        &self,
        _: &PodInfo,
        node: &NodeInfo,
        _: &Cache,
        state: &CycleState,
    ) -> Result<(), Status> {
        let Some(counted) = state.read::<Vec<Counted>>(FILTER_KEY) else {
            return Ok(());
        };
        for k in counted {
            let Some(v) = topology_value(node.spec(), &k.constraint.topology_key) else {
                return Err(Status::unresolvable(
                    "node(s) didn't match pod topology spread constraints (missing required label)",
                ));
            };
            let skew = k.counts.get(v).copied().unwrap_or(0) + k.self_match - k.min;
            if skew > k.constraint.max_skew {
                return Err(Status::unschedulable(
                    "node(s) didn't match pod topology spread constraints",
                ));
            }
        }
        Ok(())
    }

    fn pre_score(
        &self,
        pod: &PodInfo,
        cache: &Cache,
        feasible: &[&NodeInfo],
        state: &mut CycleState,
    ) {
        let explicit = !pod.spread_constraints.is_empty();
        let soft: Vec<SpreadConstraint> = if explicit {
            pod.spread_constraints
                .iter()
                .filter(|c| !c.hard)
                .cloned()
                .collect()
        } else if let Some(owner) = &pod.controller_uid {
            default_constraints(owner)
        } else {
            Vec::new()
        };
        if soft.is_empty() {
            return;
        }
        let mut scored = Vec::with_capacity(soft.len());
        for c in soft {
            let mut counts: HashMap<String, i64> = HashMap::new();
            let per_node = c.topology_key == HOSTNAME;
            let domains = if per_node {
                // Counted per node in `score`; every feasible node is its own domain.
                feasible.len()
            } else if c.by_owner.is_some() && c.topology_key == ZONE {
                // Kept incrementally by the cache: O(zones), not O(nodes), per pod.
                if let Some(z) = c
                    .by_owner
                    .as_deref()
                    .and_then(|u| cache.owner_zone_counts(u))
                {
                    counts = z.clone();
                }
                cache.num_zones()
            } else {
                // Domains are those of the feasible nodes; pods anywhere in them count.
                for ni in feasible {
                    if let Some(v) = topology_value(ni.spec(), &c.topology_key) {
                        counts.entry(v.to_string()).or_default();
                    }
                }
                for ni in cache.node_infos() {
                    let Some(spec) = ni.node.as_deref() else {
                        continue;
                    };
                    if let Some(v) = topology_value(spec, &c.topology_key)
                        && counts.contains_key(v)
                        && eligible(pod, &c, ni)
                    {
                        let n = count_on(pod, &c, ni, cache);
                        if let Some(e) = counts.get_mut(v) {
                            *e += n;
                        }
                    }
                }
                counts.len()
            };
            // Upstream weighs each constraint by log(domains + 2) so wide topologies matter more.
            let weight = ((domains + 2) as f64).ln();
            let owner = c.by_owner.as_deref().and_then(|u| cache.owner_id(u));
            scored.push(Scored {
                constraint: c,
                counts,
                weight,
                per_node,
                owner,
            });
        }
        state.write(SCORE_KEY, (scored, explicit));
    }

    fn score(
        &self,
        pod: &PodInfo,
        node: &NodeInfo,
        cache: &Cache,
        state: &CycleState,
    ) -> Option<i64> {
        let (scored, explicit) = state.read::<(Vec<Scored>, bool)>(SCORE_KEY)?;
        let mut total = 0.0;
        for s in scored {
            let c = &s.constraint;
            if s.per_node {
                // Every node is its own hostname domain (see `topology_value`).
                let n = match s.owner {
                    Some(id) => node.owner_pods(id),
                    None => count_on(pod, c, node, cache),
                };
                total += n as f64 * s.weight + (c.max_skew - 1) as f64;
                continue;
            }
            match topology_value(node.spec(), &c.topology_key) {
                Some(v) => {
                    let n = s.counts.get(v).copied().unwrap_or(0);
                    total += n as f64 * s.weight + (c.max_skew - 1) as f64;
                }
                // A node missing an explicit constraint's key gets the lowest score.
                None if *explicit => return Some(-1),
                None => {}
            }
        }
        Some(total.round() as i64)
    }

    fn normalize(&self, scores: &mut [i64], _: &CycleState) {
        let valid = scores.iter().copied().filter(|s| *s >= 0);
        let (min, max) = valid.fold((i64::MAX, 0), |(lo, hi), s| (lo.min(s), hi.max(s)));
        for s in scores.iter_mut() {
            *s = if *s < 0 {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *s) / max
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{cache_with, pod};
    use serde_json::json;

    fn zone_node(name: &str, zone: &str) -> serde_json::Value {
        json!({"metadata": {"name": name, "labels": {ZONE: zone}},
               "status": {"allocatable": {"cpu": "10", "memory": "10Gi", "pods": "100"}}})
    }

    fn web(extra: serde_json::Value) -> crate::model::PodRef {
        let mut spec = json!({"containers": [{"name": "c"}]});
        if let Some(o) = extra.as_object() {
            for (k, v) in o {
                spec[k] = v.clone();
            }
        }
        let mut p = crate::model::PodInfo::parse(&json!({
            "metadata": {"name": "w", "namespace": "default", "labels": {"app": "web"},
                         "ownerReferences": [{"uid": "rs1", "controller": true, "kind": "ReplicaSet", "name": "rs", "apiVersion": "apps/v1"}]},
            "spec": spec,
        }));
        p.name = format!("w{}", rand_suffix());
        std::sync::Arc::new(p)
    }

    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }

    fn filter_results(p: &PodInfo, cache: &Cache) -> Vec<(String, Result<(), Status>)> {
        let pl = PodTopologySpread;
        let mut state = CycleState::default();
        pl.pre_filter(p, cache, &mut state).unwrap();
        let mut out: Vec<_> = cache
            .node_infos()
            .iter()
            .map(|ni| (ni.name.clone(), pl.filter(p, ni, cache, &state)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn hard_constraint_enforces_max_skew() {
        let hard = json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": ZONE,
            "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]});
        let cache = cache_with(
            vec![
                zone_node("a1", "a"),
                zone_node("b1", "b"),
                json!({"metadata": {"name": "x"}}),
            ],
            vec![
                ("a1", web(json!({}))),
                ("a1", web(json!({}))),
                ("b1", web(json!({}))),
            ],
        );
        let p = web(hard);
        let res = filter_results(&p, &cache);
        assert_eq!(
            res[0],
            (
                "a1".into(),
                Err(Status::unschedulable(
                    "node(s) didn't match pod topology spread constraints"
                ))
            )
        );
        assert_eq!(res[1], ("b1".into(), Ok(())));
        assert_eq!(
            res[2],
            (
                "x".into(),
                Err(Status::unresolvable(
                    "node(s) didn't match pod topology spread constraints (missing required label)"
                ))
            )
        );
    }

    #[test]
    fn min_domains_treats_missing_domains_as_empty() {
        let hard = json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": ZONE, "minDomains": 3,
            "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]});
        let cache = cache_with(
            vec![zone_node("a1", "a"), zone_node("b1", "b")],
            vec![("a1", web(json!({}))), ("b1", web(json!({})))],
        );
        let res = filter_results(&web(hard), &cache);
        assert!(res.iter().all(|(_, r)| r.is_err()), "{res:?}");
    }

    #[test]
    fn default_constraints_prefer_emptier_zones_and_hosts() {
        let cache = cache_with(
            vec![
                zone_node("a1", "a"),
                zone_node("a2", "a"),
                zone_node("b1", "b"),
            ],
            vec![
                ("a1", web(json!({}))),
                ("a1", web(json!({}))),
                ("a2", web(json!({}))),
            ],
        );
        let p = web(json!({}));
        let feasible: Vec<&NodeInfo> = cache.node_infos().iter().collect();
        let pl = PodTopologySpread;
        let mut state = CycleState::default();
        pl.pre_score(&p, &cache, &feasible, &mut state);
        let mut scores: Vec<i64> = feasible
            .iter()
            .map(|ni| pl.score(&p, ni, &cache, &state).unwrap())
            .collect();
        pl.normalize(&mut scores, &state);
        let by_name: HashMap<&str, i64> = feasible
            .iter()
            .map(|n| n.name.as_str())
            .zip(scores)
            .collect();
        assert_eq!(by_name["b1"], MAX_NODE_SCORE);
        assert!(by_name["a2"] > by_name["a1"], "{by_name:?}");

        // A pod without an owner and without constraints is not scored.
        let lone = pod(json!({}));
        let mut state = CycleState::default();
        pl.pre_score(&lone, &cache, &feasible, &mut state);
        assert_eq!(pl.score(&lone, feasible[0], &cache, &state), None);
    }
}
