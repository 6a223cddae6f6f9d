//! TaintToleration: `NoSchedule`/`NoExecute` taints the pod does not tolerate refuse the node;
//! untolerated `PreferNoSchedule` taints lower its score.

use crate::cache::{Cache, NodeInfo};
use crate::framework::{CycleState, Plugin, Status, default_normalize};
use crate::model::PodInfo;

pub struct TaintToleration;

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    fn filter(
        &self,
        pod: &PodInfo,
        node: &NodeInfo,
        _: &Cache,
        _: &CycleState,
    ) -> Result<(), Status> {
        let untolerated = node.spec().taints.iter().find(|t| {
            (t.effect == "NoSchedule" || t.effect == "NoExecute")
                && !pod.tolerations.iter().any(|tol| tol.tolerates(t))
        });
        match untolerated {
            None => Ok(()),
            Some(t) => Err(Status::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t.key, t.value
            ))),
        }
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo, _: &Cache, _: &CycleState) -> Option<i64> {
        // Only tolerations that apply to PreferNoSchedule (or every effect) count.
        let count = node
            .spec()
            .taints
            .iter()
            .filter(|t| t.effect == "PreferNoSchedule")
            .filter(|t| {
                !pod.tolerations.iter().any(|tol| {
                    (tol.effect.is_empty() || tol.effect == "PreferNoSchedule") && tol.tolerates(t)
                })
            })
            .count();
        Some(count as i64)
    }

    fn normalize(&self, scores: &mut [i64], _: &CycleState) {
        default_normalize(scores, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{filter, node, pod, score_all};
    use serde_json::json;

    #[test]
    fn filter_table() {
        let tainted = node(json!({"metadata": {"name": "n"}, "spec": {"taints": [
            {"key": "dedicated", "value": "jenkins", "effect": "NoSchedule"}]}}));
        let soft = node(json!({"metadata": {"name": "n"}, "spec": {"taints": [
            {"key": "spot", "value": "", "effect": "PreferNoSchedule"}]}}));
        let cases = [
            (
                pod(json!({})),
                &tainted,
                Err(Status::unresolvable(
                    "node(s) had untolerated taint {dedicated: jenkins}",
                )),
            ),
            (
                pod(
                    json!({"tolerations": [{"key": "dedicated", "value": "jenkins", "effect": "NoSchedule"}]}),
                ),
                &tainted,
                Ok(()),
            ),
            (
                pod(json!({"tolerations": [{"key": "dedicated", "operator": "Exists"}]})),
                &tainted,
                Ok(()),
            ),
            (
                pod(json!({"tolerations": [{"key": "dedicated", "value": "other"}]})),
                &tainted,
                Err(Status::unresolvable(
                    "node(s) had untolerated taint {dedicated: jenkins}",
                )),
            ),
            (pod(json!({})), &soft, Ok(())),
        ];
        for (i, (p, n, want)) in cases.into_iter().enumerate() {
            assert_eq!(filter(&TaintToleration, &p, n), want, "case {i}");
        }
    }

    #[test]
    fn prefer_no_schedule_lowers_the_score() {
        let nodes = [
            node(json!({"metadata": {"name": "a"}})),
            node(json!({"metadata": {"name": "b"}, "spec": {"taints": [
                {"key": "spot", "effect": "PreferNoSchedule"}]}})),
            node(json!({"metadata": {"name": "c"}, "spec": {"taints": [
                {"key": "spot", "effect": "PreferNoSchedule"}, {"key": "old", "effect": "PreferNoSchedule"}]}})),
        ];
        assert_eq!(
            score_all(&TaintToleration, &pod(json!({})), &nodes),
            vec![100, 50, 0]
        );
        let tolerant = pod(
            json!({"tolerations": [{"key": "spot", "operator": "Exists", "effect": "PreferNoSchedule"}]}),
        );
        assert_eq!(
            score_all(&TaintToleration, &tolerant, &nodes),
            vec![100, 100, 0]
        );
    }
}
