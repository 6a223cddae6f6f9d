//! Indexed Jobs' per-index rules, as Kubernetes 1.33 runs them: `backoffLimitPerIndex` and
//! `maxFailedIndexes` (an index whose Pods failed more than its budget, or whose failure matched a
//! `FailIndex` rule, is failed for good and listed in `status.failedIndexes`), and `successPolicy`
//! (the Job succeeds once the succeeded indexes satisfy one rule, even if others never ran).
//!
//! The failures of an index are counted on its Pods, as upstream does, so they survive a
//! controller restart: each replacement Pod carries the count so far in the
//! `batch.kubernetes.io/job-index-failure-count` annotation, and a failed Pod's own failure is that
//! number plus one (an `Ignore`d failure adds to `job-index-ignored-failure-count` instead).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::job_indexes::{self, of_pod};
use crate::job_pod_failure_policy::{self as pfp, PolicyAction};
use crate::ownership::str_at;

/// Failures of the index so far, on each of its Pods.
pub const INDEX_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
/// Failures of the index that a podFailurePolicy `Ignore` rule left uncounted.
pub const INDEX_IGNORED_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-ignored-failure-count";

/// `spec.backoffLimitPerIndex`, for Indexed Jobs that set it.
pub fn limit(job: &Value) -> Option<i64> {
    if str_at(job, "/spec/completionMode") != "Indexed" {
        return None;
    }
    job.pointer("/spec/backoffLimitPerIndex")?.as_i64()
}

fn annotation_count(pod: &Value, key: &str) -> i64 {
    pod.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// What the Pods of each index say about its failures: counted and ignored failures so far (for
/// the next Pod's annotations), and whether a failure matched a `FailIndex` rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexFailures {
    pub counted: i64,
    pub ignored: i64,
    pub fail_index: bool,
}

/// Failures per index over a Job's Pods (`getNewIndexFailureCounts`). `failed` tells whether a Pod
/// counts as failed (phase Failed, or terminating under `podReplacementPolicy: TerminatingOrFailed`).
pub fn failures(
    job: &Value,
    pods: &[Value],
    failed: impl Fn(&Value) -> bool,
) -> BTreeMap<i64, IndexFailures> {
    let mut out: BTreeMap<i64, IndexFailures> = BTreeMap::new();
    for p in pods {
        let Some(i) = of_pod(p) else { continue };
        let (before, ignored_before) = (
            annotation_count(p, INDEX_FAILURE_COUNT),
            annotation_count(p, INDEX_IGNORED_FAILURE_COUNT),
        );
        let e = out.entry(i).or_default();
        if !failed(p) {
            e.counted = e.counted.max(before);
            e.ignored = e.ignored.max(ignored_before);
            continue;
        }
        let verdict = (str_at(p, "/status/phase") == "Failed")
            .then(|| pfp::evaluate(job, p))
            .flatten();
        match verdict {
            Some(PolicyAction::Ignore) => {
                e.counted = e.counted.max(before);
                e.ignored = e.ignored.max(ignored_before + 1);
            }
            Some(PolicyAction::FailIndex) => {
                e.fail_index = true;
                e.counted = e.counted.max(before + 1);
            }
            _ => {
                e.counted = e.counted.max(before + 1);
                e.ignored = e.ignored.max(ignored_before);
            }
        }
    }
    out
}

/// `status.failedIndexes` after these failures: what it held, plus every index past its budget
/// or failed by a `FailIndex` rule.
pub fn failed_indexes(
    status: &Value,
    per_index: &BTreeMap<i64, IndexFailures>,
    limit: i64,
    completed: &BTreeSet<i64>,
) -> BTreeSet<i64> {
    let mut out = job_indexes::parse(str_at(status, "/failedIndexes"));
    for (i, f) in per_index {
        if !completed.contains(i) && (f.fail_index || f.counted > limit) {
            out.insert(*i);
        }
    }
    out
}

/// `successPolicy`: the message of the first rule the succeeded indexes satisfy
/// (`matchSuccessPolicy`: "Matched rules at index N").
pub fn success_policy(job: &Value, completed: &BTreeSet<i64>) -> Option<String> {
    if str_at(job, "/spec/completionMode") != "Indexed" {
        return None;
    }
    let rules = job.pointer("/spec/successPolicy/rules")?.as_array()?;
    for (i, rule) in rules.iter().enumerate() {
        let listed = rule
            .get("succeededIndexes")
            .and_then(Value::as_str)
            .map(job_indexes::parse);
        let count = rule.get("succeededCount").and_then(Value::as_i64);
        let met = match (&listed, count) {
            (Some(want), None) => !want.is_empty() && want.is_subset(completed),
            (Some(want), Some(n)) => want.intersection(completed).count() as i64 >= n,
            (None, Some(n)) => completed.len() as i64 >= n,
            (None, None) => false,
        };
        if met {
            return Some(format!("Matched rules at index {i}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(index: i64, phase: &str, count: i64, exit: i64) -> Value {
        json!({"metadata": {"name": format!("p{index}-{count}"), "namespace": "ns",
                            "annotations": {"batch.kubernetes.io/job-completion-index": index.to_string(),
                                            INDEX_FAILURE_COUNT: count.to_string()}},
               "status": {"phase": phase, "containerStatuses": [
                   {"name": "main", "state": {"terminated": {"exitCode": exit}}}]}})
    }

    fn job(extra: Value) -> Value {
        let mut j = json!({"spec": {"completionMode": "Indexed", "completions": 4,
                                    "backoffLimitPerIndex": 1}});
        for (k, v) in extra.as_object().unwrap() {
            j["spec"][k] = v.clone();
        }
        j
    }

    #[test]
    fn an_index_fails_past_its_own_budget_or_on_a_fail_index_rule() {
        let j = job(json!({"podFailurePolicy": {"rules": [
            {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [42]}},
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [9]}}]}}));
        let pods = [
            pod(0, "Failed", 0, 1),
            pod(0, "Failed", 1, 1),
            pod(1, "Failed", 0, 1),
            pod(2, "Failed", 0, 42),
            pod(3, "Failed", 0, 9),
        ];
        let f = failures(&j, &pods, |p| p["status"]["phase"] == "Failed");
        assert_eq!(f[&0].counted, 2);
        assert_eq!(f[&1].counted, 1);
        assert!(f[&2].fail_index);
        assert_eq!((f[&3].counted, f[&3].ignored), (0, 1));
        let failed = failed_indexes(&json!({}), &f, limit(&j).unwrap(), &BTreeSet::new());
        assert_eq!(job_indexes::format(&failed), "0,2");
        // What was recorded stays failed.
        let kept = failed_indexes(&json!({"failedIndexes": "3"}), &f, 1, &BTreeSet::new());
        assert_eq!(job_indexes::format(&kept), "0,2-3");
        assert_eq!(limit(&json!({"spec": {"backoffLimitPerIndex": 1}})), None);
    }

    #[test]
    fn success_policy_rules_as_upstream() {
        let j = job(json!({"successPolicy": {"rules": [
            {"succeededIndexes": "0,2"},
            {"succeededCount": 3},
            {"succeededIndexes": "1-3", "succeededCount": 2}]}}));
        let set = |v: &[i64]| v.iter().copied().collect::<BTreeSet<i64>>();
        assert_eq!(success_policy(&j, &set(&[0])), None);
        assert_eq!(
            success_policy(&j, &set(&[0, 2])).as_deref(),
            Some("Matched rules at index 0")
        );
        assert_eq!(
            success_policy(&j, &set(&[1, 3])).as_deref(),
            Some("Matched rules at index 2")
        );
        assert_eq!(
            success_policy(&j, &set(&[0, 1, 3])).as_deref(),
            Some("Matched rules at index 1")
        );
    }
}
