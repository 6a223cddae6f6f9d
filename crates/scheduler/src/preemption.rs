//! DefaultPreemption (PostFilter): when no node fits, find nodes where evicting pods of lower
//! priority would let the pod fit, keep as many of those pods as still fit ("reprieve": first
//! the pods whose eviction would break a PodDisruptionBudget, then the others, higher priority
//! first), and pick the node whose victims matter least: fewest budget violations first, as
//! upstream. The caller marks the victims `DisruptionTarget`, deletes them and sets the pod's
//! `status.nominatedNodeName`.

use std::collections::BTreeMap;

use serde_json::Value;
use skiff_k8s_core::selector::Selector;

use crate::cache::{Cache, NodeInfo};
use crate::framework::{Code, CycleState, FitError, Profile, Status};
use crate::model::{PodInfo, PodRef};

/// A node and the pods to evict there.
#[derive(Debug)]
pub struct Candidate {
    pub node: String,
    pub victims: Vec<PodRef>,
    /// How many victims' evictions a PodDisruptionBudget does not allow.
    pub pdb_violations: usize,
}

/// One budget as preemption reads it: where it applies and how many evictions it still allows.
struct Budget {
    namespace: String,
    selector: Selector,
    allowed: i64,
    /// Pods already being evicted under this budget (`status.disruptedPods`).
    disrupted: Vec<String>,
}

fn budgets(cache: &Cache) -> Vec<Budget> {
    cache
        .pdbs
        .values()
        .filter_map(|pdb| {
            let sel = pdb.pointer("/spec/selector")?;
            let selector = Selector::from_label_selector(sel).ok()?;
            // A budget with an empty selector matches nothing (upstream's policy/v1 rule).
            if selector.is_everything() {
                return None;
            }
            Some(Budget {
                namespace: pdb
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                selector,
                allowed: pdb
                    .pointer("/status/disruptionsAllowed")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
                disrupted: pdb
                    .pointer("/status/disruptedPods")
                    .and_then(Value::as_object)
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Upstream's `filterPodsWithPDBViolation`: walking `pods` in order, each matching budget is
/// spent one eviction per pod; a pod that overdraws one is violating.
fn split_by_budgets(pods: Vec<PodRef>, budgets: &[Budget]) -> (Vec<PodRef>, Vec<PodRef>) {
    let mut left: Vec<i64> = budgets.iter().map(|b| b.allowed).collect();
    let (mut violating, mut fine) = (Vec::new(), Vec::new());
    for p in pods {
        let mut violated = false;
        if !p.labels.is_empty() {
            for (i, b) in budgets.iter().enumerate() {
                if b.namespace != p.namespace
                    || !b.selector.matches(&p.labels)
                    || b.disrupted.contains(&p.name)
                {
                    continue;
                }
                left[i] -= 1;
                violated |= left[i] < 0;
            }
        }
        if violated {
            violating.push(p);
        } else {
            fine.push(p);
        }
    }
    (violating, fine)
}

const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

fn fits(
    profile: &Profile,
    pod: &PodInfo,
    ni: &NodeInfo,
    cache: &Cache,
    state: &CycleState,
) -> Result<(), Status> {
    profile.run_filters(pod, ni, cache, state)
}

/// Dry run on one node: the minimal victim set and how many of them a budget protects, or why
/// preemption cannot help there.
fn select_victims(
    profile: &Profile,
    pod: &PodInfo,
    ni: &NodeInfo,
    cache: &Cache,
    state: &CycleState,
    budgets: &[Budget],
) -> Result<(Vec<PodRef>, usize), Status> {
    let mut lower: Vec<PodRef> = ni
        .pods
        .iter()
        .filter(|p| p.priority < pod.priority && !p.deleting)
        .cloned()
        .collect();
    if lower.is_empty() {
        return Err(Status::unresolvable(NO_VICTIMS));
    }
    let mut trial = ni.clone();
    for v in &lower {
        trial.remove_pod(&v.namespace, &v.name);
    }
    fits(profile, pod, &trial, cache, state)?;
    // Reprieve the most important pods first; whoever no longer fits is a victim.
    lower.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.creation.cmp(&b.creation))
    });
    // Pods a budget protects get the first chance to stay.
    let (violating, fine) = split_by_budgets(lower, budgets);
    let mut victims = Vec::new();
    let mut violations = 0;
    for (protected, group) in [(true, violating), (false, fine)] {
        for p in group {
            trial.add_pod(p.clone());
            if fits(profile, pod, &trial, cache, state).is_err() {
                trial.remove_pod(&p.namespace, &p.name);
                victims.push(p);
                violations += usize::from(protected);
            }
        }
    }
    Ok((victims, violations))
}

/// Runs preemption for `pod` after `fit` found no node. `Err` carries the post-filter message
/// (`preemption: 0/N nodes are available: …`).
pub fn preempt(
    profile: &Profile,
    pod: &PodInfo,
    cache: &Cache,
    fit: &FitError,
) -> Result<Candidate, String> {
    if pod.never_preempt {
        return Err("not eligible due to preemptionPolicy=Never.".into());
    }
    // Victims of an earlier round still terminating on the nominated node: wait for them
    // rather than evicting more (upstream `PodEligibleToPreemptOthers`).
    let nominated = Some(pod.nominated_node_name.as_str())
        .filter(|n| !n.is_empty())
        .or_else(|| cache.nominated_node(pod));
    if let Some(ni) = nominated.and_then(|n| cache.node(n))
        && ni
            .pods
            .iter()
            .any(|p| p.deleting && p.priority < pod.priority)
    {
        return Err("not eligible due to a terminating pod on the nominated node.".into());
    }
    let mut state = CycleState::default();
    let pre_ok = profile.run_pre_filter(pod, cache, &mut state);
    let mut statuses: BTreeMap<String, Status> = BTreeMap::new();
    let mut best: Option<(Candidate, (usize, i32, i64, usize))> = None;
    let budgets = budgets(cache);
    for ni in cache.node_infos() {
        if ni.node.is_none() {
            continue;
        }
        if fit
            .node_statuses
            .get(&ni.name)
            .is_some_and(|s| s.code == Code::UnschedulableAndUnresolvable)
        {
            statuses.insert(ni.name.clone(), Status::unresolvable(NOT_HELPFUL));
            continue;
        }
        let outcome = match &pre_ok {
            Ok(()) => select_victims(profile, pod, ni, cache, &state, &budgets),
            Err(s) => {
                if ni.pods.iter().any(|p| p.priority < pod.priority) {
                    Err(s.clone())
                } else {
                    Err(Status::unresolvable(NO_VICTIMS))
                }
            }
        };
        match outcome {
            Ok((victims, pdb_violations)) => {
                // Upstream `pickOneNodeForPreemption`: fewest budget violations, then lowest
                // highest-victim priority, then lowest priority sum, then fewest victims.
                let rank = (
                    pdb_violations,
                    victims.iter().map(|v| v.priority).max().unwrap_or(i32::MIN),
                    victims.iter().map(|v| i64::from(v.priority)).sum::<i64>(),
                    victims.len(),
                );
                if best.as_ref().is_none_or(|(_, r)| rank < *r) {
                    best = Some((
                        Candidate {
                            node: ni.name.clone(),
                            victims,
                            pdb_violations,
                        },
                        rank,
                    ));
                }
            }
            Err(s) => {
                statuses.insert(ni.name.clone(), s);
            }
        }
    }
    if let Some((c, _)) = best {
        return Ok(c);
    }
    let e = FitError {
        num_all_nodes: cache.num_nodes(),
        pre_filter_msg: None,
        node_statuses: statuses,
        post_filter_msg: None,
    };
    Err(format!("preemption: {}", e.message()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::default_profile;
    use crate::testutil::cache_with;
    use serde_json::json;
    use std::sync::Arc;

    fn pod(name: &str, prio: i64, cpu: &str) -> PodRef {
        Arc::new(PodInfo::parse(&json!({
            "metadata": {"name": name, "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"priority": prio, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}})))
    }

    fn node(name: &str, taint: bool) -> serde_json::Value {
        let mut n = json!({"metadata": {"name": name}, "status": {"allocatable": {"cpu": "2", "memory": "1Gi", "pods": "10"}}});
        if taint {
            n["spec"] = json!({"taints": [{"key": "dedicated", "value": "jenkins", "effect": "NoSchedule"}]});
        }
        n
    }

    #[test]
    fn evicts_the_fewest_lowest_priority_pods() {
        let cache = cache_with(
            vec![node("n1", false), node("n2", false)],
            vec![
                ("n1", pod("a", 100, "1")),
                ("n1", pod("b", 10, "1")),
                ("n2", pod("c", 500, "1")),
                ("n2", pod("d", 5, "1")),
            ],
        );
        let mut profile = default_profile();
        let big = pod("big", 1000, "1");
        let fit = profile.schedule(&big, &cache).unwrap_err();
        let c = preempt(&profile, &big, &cache, &fit).unwrap();
        // n1 needs to lose b (priority 10); n2 would lose d (5) but its highest victim is lower.
        assert_eq!(c.node, "n2");
        assert_eq!(
            c.victims
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>(),
            ["d-3"]
        );
    }

    fn labelled(name: &str, app: &str) -> PodRef {
        Arc::new(PodInfo::parse(&json!({
            "metadata": {"name": name, "namespace": "default", "labels": {"app": app},
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"priority": 0, "containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}})))
    }

    #[test]
    fn victims_a_budget_protects_are_spared_when_another_node_will_do() {
        let mut cache = cache_with(
            vec![node("n1", false), node("n2", false)],
            vec![("n1", labelled("db", "db")), ("n2", labelled("web", "web"))],
        );
        let mut profile = default_profile();
        let vip = pod("vip", 100, "1");
        let fit = profile.schedule(&vip, &cache).unwrap_err();
        let without = preempt(&profile, &vip, &cache, &fit).unwrap();
        assert_eq!(
            (without.node.as_str(), without.pdb_violations),
            ("n1", 0),
            "a tie goes to the first node"
        );
        // db's budget allows no disruption: n2's victim breaks none.
        cache.pdbs.insert(
            "default/db".into(),
            json!({"metadata": {"name": "db", "namespace": "default"},
                "spec": {"selector": {"matchLabels": {"app": "db"}}},
                "status": {"disruptionsAllowed": 0}}),
        );
        let c = preempt(&profile, &vip, &cache, &fit).unwrap();
        assert_eq!((c.node.as_str(), c.pdb_violations), ("n2", 0));
        // Budgets are best effort: with every candidate protected, preemption still happens,
        // counting the violation.
        cache.pdbs.insert(
            "default/web".into(),
            json!({"metadata": {"name": "web", "namespace": "default"},
                "spec": {"selector": {"matchLabels": {"app": "web"}}},
                "status": {"disruptionsAllowed": 0}}),
        );
        let c = preempt(&profile, &vip, &cache, &fit).unwrap();
        assert_eq!(c.pdb_violations, 1);
        // A budget with room is spent, not violated; a pod already being disrupted spends none.
        cache.pdbs.insert(
            "default/web".into(),
            json!({"metadata": {"name": "web", "namespace": "default"},
                "spec": {"selector": {"matchLabels": {"app": "web"}}},
                "status": {"disruptionsAllowed": 1}}),
        );
        assert_eq!(preempt(&profile, &vip, &cache, &fit).unwrap().node, "n2");
    }

    #[test]
    fn budgets_are_spent_in_victim_order() {
        let b = budgets(&{
            let mut c = cache_with(vec![], vec![]);
            c.pdbs.insert(
                "default/db".into(),
                json!({"metadata": {"name": "db", "namespace": "default"},
                    "spec": {"selector": {"matchLabels": {"app": "db"}}},
                    "status": {"disruptionsAllowed": 1, "disruptedPods": {"db-0": "2026-01-01T00:00:00Z"}}}),
            );
            c.pdbs.insert(
                "default/all".into(),
                json!({"metadata": {"name": "all", "namespace": "default"},
                    "spec": {"selector": {}}, "status": {"disruptionsAllowed": 0}}),
            );
            c
        });
        assert_eq!(b.len(), 1, "an empty selector matches nothing");
        let (violating, fine) = split_by_budgets(
            vec![
                labelled("db-0", "db"),
                labelled("db-1", "db"),
                labelled("db-2", "db"),
                labelled("x", "web"),
            ],
            &b,
        );
        let names = |v: &[PodRef]| v.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&fine), ["db-0", "db-1", "x"]);
        assert_eq!(names(&violating), ["db-2"]);
    }

    #[test]
    fn explains_why_preemption_cannot_help() {
        let cache = cache_with(
            vec![
                node("t", true),
                node("a", false),
                node("b", false),
                node("c", false),
            ],
            vec![
                ("a", pod("x", 0, "2")),
                ("b", pod("y", 0, "2")),
                ("c", pod("z", 0, "2")),
            ],
        );
        let mut profile = default_profile();
        let p = pod("p", 0, "1");
        let mut fit = profile.schedule(&p, &cache).unwrap_err();
        let post = preempt(&profile, &p, &cache, &fit).unwrap_err();
        fit.post_filter_msg = Some(post);
        assert_eq!(
            fit.message(),
            "0/4 nodes are available: 1 node(s) had untolerated taint {dedicated: jenkins}, \
             3 Insufficient cpu. preemption: 0/4 nodes are available: 1 Preemption is not \
             helpful for scheduling, 3 No preemption victims found for incoming pod.."
        );
        // A victim still terminating on the nominated node: no second round of evictions.
        let mut cache = cache_with(vec![node("n1", false)], vec![("n1", pod("low", 0, "2"))]);
        let mut dying = (*pod("dying", 0, "1")).clone();
        dying.deleting = true;
        cache.add_pod(Arc::new(dying), "n1", false);
        let mut vip = (*pod("vip", 100, "1")).clone();
        vip.nominated_node_name = "n1".into();
        let fit = profile.schedule(&vip, &cache).unwrap_err();
        assert_eq!(
            preempt(&profile, &vip, &cache, &fit).unwrap_err(),
            "not eligible due to a terminating pod on the nominated node."
        );

        let mut never = (*pod("p", 0, "1")).clone();
        never.never_preempt = true;
        assert_eq!(
            preempt(&profile, &never, &cache, &fit).unwrap_err(),
            "not eligible due to preemptionPolicy=Never."
        );
    }
}
