//! A Job's `podFailurePolicy` (`pkg/controller/job/pod_failure_policy.go`): the first rule that
//! matches a failed Pod, by container exit codes or by Pod conditions, decides whether the failure
//! fails the Job, fails the Pod's index (`backoffLimitPerIndex`), is ignored, or counts towards
//! `backoffLimit`.

use serde_json::Value;

use crate::ownership::{name, namespace, str_at};

/// What a matching rule asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyAction {
    /// Fail the whole Job now; the message goes into the `FailureTarget`/`Failed` conditions.
    FailJob(String),
    /// Do not count the failure (`Ignore`): the Pod is replaced without using up `backoffLimit`.
    Ignore,
    /// Count it as usual (`Count`).
    Count,
    /// Mark the Pod's index failed at once, whatever its per-index budget (`FailIndex`; the API
    /// server admits it only with `backoffLimitPerIndex`, elsewhere it counts as a failure).
    FailIndex,
}

/// The action of the first rule matching `pod` (a failed Pod), or `None` when no rule matches
/// (the failure counts). Rules with unknown operators or actions never match, as upstream.
pub fn evaluate(job: &Value, pod: &Value) -> Option<PolicyAction> {
    let rules = job.pointer("/spec/podFailurePolicy/rules")?.as_array()?;
    for (i, rule) in rules.iter().enumerate() {
        let action = str_at(rule, "/action");
        let why = if let Some(req) = rule.get("onExitCodes").filter(|v| !v.is_null()) {
            match exit_code_match(req, pod) {
                Some((container, code)) => format!(
                    "Container {container} for pod {}/{} failed with exit code {code} matching {action} rule at index {i}",
                    namespace(pod),
                    name(pod)
                ),
                None => continue,
            }
        } else if let Some(pats) = rule.get("onPodConditions").and_then(Value::as_array) {
            match condition_match(pats, pod) {
                Some(ty) => format!(
                    "Pod {}/{} has condition {ty} matching {action} rule at index {i}",
                    namespace(pod),
                    name(pod)
                ),
                None => continue,
            }
        } else {
            continue;
        };
        return match action {
            "FailJob" => Some(PolicyAction::FailJob(why)),
            "Ignore" => Some(PolicyAction::Ignore),
            "Count" => Some(PolicyAction::Count),
            "FailIndex" => Some(PolicyAction::FailIndex),
            _ => continue,
        };
    }
    None
}

/// The first terminated container whose exit code satisfies the requirement (exit code 0 never
/// matches: a container that succeeded did not cause the failure).
fn exit_code_match(req: &Value, pod: &Value) -> Option<(String, i64)> {
    let only = req.get("containerName").and_then(Value::as_str);
    let values: Vec<i64> = req
        .get("values")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    let op = str_at(req, "/operator");
    for list in ["initContainerStatuses", "containerStatuses"] {
        let Some(statuses) = pod
            .pointer(&format!("/status/{list}"))
            .and_then(Value::as_array)
        else {
            continue;
        };
        for cs in statuses {
            let cname = str_at(cs, "/name");
            if only.is_some_and(|n| n != cname) {
                continue;
            }
            let Some(code) = cs
                .pointer("/state/terminated/exitCode")
                .and_then(Value::as_i64)
            else {
                continue;
            };
            if code == 0 {
                continue;
            }
            let hit = match op {
                "In" => values.contains(&code),
                "NotIn" => !values.contains(&code),
                _ => false,
            };
            if hit {
                return Some((cname.to_string(), code));
            }
        }
    }
    None
}

fn condition_match(patterns: &[Value], pod: &Value) -> Option<String> {
    let conds = pod.pointer("/status/conditions")?.as_array()?;
    for pat in patterns {
        let ty = str_at(pat, "/type");
        let want = match str_at(pat, "/status") {
            "" => "True",
            s => s,
        };
        if conds
            .iter()
            .any(|c| str_at(c, "/type") == ty && str_at(c, "/status") == want)
        {
            return Some(ty.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job() -> Value {
        json!({"spec": {"podFailurePolicy": {"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1]}},
        ]}}})
    }

    fn failed(name: &str, code: i64, conds: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns"},
               "status": {"phase": "Failed", "conditions": conds,
                          "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": code}}}]}})
    }

    #[test]
    fn first_matching_rule_wins_with_upstream_messages() {
        let j = job();
        assert_eq!(
            evaluate(&j, &failed("p", 42, json!([]))),
            Some(PolicyAction::FailJob(
                "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1"
                    .into()
            ))
        );
        let disrupted = failed(
            "p",
            42,
            json!([{"type": "DisruptionTarget", "status": "True"}]),
        );
        assert_eq!(evaluate(&j, &disrupted), Some(PolicyAction::Ignore));
        assert_eq!(
            evaluate(&j, &failed("p", 3, json!([]))),
            Some(PolicyAction::Count)
        );
        assert_eq!(evaluate(&j, &failed("p", 1, json!([]))), None);
        let fail_index = json!({"spec": {"podFailurePolicy": {"rules": [
            {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [7]}}]}}});
        assert_eq!(
            evaluate(&fail_index, &failed("p", 7, json!([]))),
            Some(PolicyAction::FailIndex)
        );
        assert_eq!(evaluate(&json!({}), &failed("p", 42, json!([]))), None);
    }
}
