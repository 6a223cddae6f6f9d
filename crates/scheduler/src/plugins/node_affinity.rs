//! NodeAffinity: `nodeSelector` and required node affinity filter; preferred terms score by the
//! sum of matching weights.

use crate::cache::{Cache, NodeInfo};
use crate::framework::{CycleState, Plugin, Status, default_normalize};
use crate::model::PodInfo;

pub struct NodeAffinity;

/// Whether the node satisfies the pod's `nodeSelector` and required node affinity (any term).
pub fn required_matches(pod: &PodInfo, node: &NodeInfo) -> bool {
    let spec = node.spec();
    let selector_ok = pod
        .node_selector
        .iter()
        .all(|(k, v)| spec.labels.get(k) == Some(v));
    selector_ok
        && pod
            .required_node_affinity
            .as_ref()
            .is_none_or(|terms| terms.iter().any(|t| t.matches(&spec.name, &spec.labels)))
}

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    fn filter(
        &self,
        pod: &PodInfo,
        node: &NodeInfo,
        _: &Cache,
        _: &CycleState,
    ) -> Result<(), Status> {
        if required_matches(pod, node) {
            Ok(())
        } else {
            Err(Status::unresolvable(
                "node(s) didn't match Pod's node affinity/selector",
            ))
        }
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo, _: &Cache, _: &CycleState) -> Option<i64> {
        if pod.preferred_node_affinity.is_empty() {
            return None;
        }
        let spec = node.spec();
        Some(
            pod.preferred_node_affinity
                .iter()
                .filter(|(_, t)| t.matches(&spec.name, &spec.labels))
                .map(|(w, _)| *w)
                .sum(),
        )
    }

    fn normalize(&self, scores: &mut [i64], _: &CycleState) {
        default_normalize(scores, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{filter, node, pod, score_all};
    use serde_json::json;

    #[test]
    fn selector_and_required_terms() {
        let n = node(json!({"metadata": {"name": "n1", "labels": {"zone": "a", "disk": "ssd"}}}));
        let refused = Err(Status::unresolvable(
            "node(s) didn't match Pod's node affinity/selector",
        ));
        let req = |terms: serde_json::Value| json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}});
        let cases = [
            (json!({}), Ok(())),
            (json!({"nodeSelector": {"zone": "a"}}), Ok(())),
            (json!({"nodeSelector": {"zone": "b"}}), refused.clone()),
            (
                req(
                    json!([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
                        {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}]),
                ),
                Ok(()),
            ),
            (
                req(
                    json!([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]),
                ),
                refused.clone(),
            ),
            (req(json!([])), refused),
        ];
        for (i, (spec, want)) in cases.into_iter().enumerate() {
            assert_eq!(filter(&NodeAffinity, &pod(spec), &n), want, "case {i}");
        }
    }

    #[test]
    fn preferred_terms_score_by_weight() {
        let nodes = [
            node(json!({"metadata": {"name": "a", "labels": {"zone": "a"}}})),
            node(json!({"metadata": {"name": "b", "labels": {"zone": "b", "gpu": "1"}}})),
            node(json!({"metadata": {"name": "c"}})),
        ];
        let p = pod(
            json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
                {"weight": 30, "preference": {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}},
            ]}}}),
        );
        assert_eq!(score_all(&NodeAffinity, &p, &nodes), vec![33, 100, 0]);
    }
}
