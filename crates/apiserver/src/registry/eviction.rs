//! `pods/eviction` (policy/v1 `Eviction`, `EvictionREST`): deletes a pod unless that would break
//! the PodDisruptionBudget covering it. With a budget, one disruption is taken from
//! `status.disruptionsAllowed` and the pod is recorded in `status.disruptedPods` (so the disruption
//! controller does not count it as healthy) before the pod is deleted; with none left the answer
//! is upstream's 429 `Cannot evict pod as it would violate the pod's disruption budget.`, which
//! `kubectl drain` retries. Pods that are not running (Pending, Succeeded, Failed, already being
//! deleted) and pods without a budget are simply deleted.

use std::sync::Arc;

use serde_json::{Value, json};
use skiff_k8s_core::selector::Selector;
use skiff_k8s_core::status::ApiError;
use skiff_store::{Op, Precondition, StoreError};

use super::hooks::{HookError, HookRequest, SubresourceHandler};
use super::pod_binding::{hook_error, success_status};
use super::{DeleteOptions, ListOptions, Registry, meta, store_error};

/// Above this many unconfirmed evictions the budget refuses more (`MaxDisruptedPodSize`).
const MAX_DISRUPTED_PODS: usize = 2000;

/// `DisruptionBudgetCause`: the cause type upstream attaches to the 429.
pub const DISRUPTION_BUDGET_CAUSE: &str = "DisruptionBudget";

/// The 429 message of a budget with no disruption left.
pub const VIOLATION: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

/// The 429, with the budget's reason as upstream's `DisruptionBudget` cause (`None`: no cause).
fn too_many(retry_after_seconds: u32, cause: Option<String>) -> ApiError {
    ApiError::TooManyRequests {
        message: VIOLATION.into(),
        retry_after_seconds,
        causes: cause
            .map(|m| (DISRUPTION_BUDGET_CAUSE.to_string(), m))
            .into_iter()
            .collect(),
    }
}

/// `canIgnorePDB`: pods that are not running cause no disruption by leaving.
fn can_ignore_budget(pod: &Value) -> bool {
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    matches!(phase, "Succeeded" | "Failed" | "Pending")
        || !meta::meta_str(pod, "deletionTimestamp").is_empty()
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("type").and_then(Value::as_str) == Some("Ready")
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
}

fn int(v: &Value, p: &str) -> i64 {
    v.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

/// `checkAndDecrement`: the budget after taking one disruption for `pod_name`, or the refusal.
pub fn take_disruption(pdb: &Value, pod_name: &str, dry_run: bool) -> Result<Value, ApiError> {
    let name = meta::meta_str(pdb, "name").to_string();
    if int(pdb, "/status/observedGeneration") < int(pdb, "/metadata/generation") {
        // The controller has not looked at the latest spec yet.
        return Err(too_many(
            10,
            Some(format!(
                "The disruption budget {name} is still being processed by the server."
            )),
        ));
    }
    let allowed = int(pdb, "/status/disruptionsAllowed");
    if allowed < 0 {
        return Err(ApiError::Forbidden {
            group: "policy".into(),
            resource: "poddisruptionbudget".into(),
            name,
            detail: "pdb disruptions allowed is negative".into(),
        });
    }
    let disrupted = pdb
        .pointer("/status/disruptedPods")
        .and_then(Value::as_object)
        .map_or(0, |m| m.len());
    if disrupted > MAX_DISRUPTED_PODS {
        return Err(ApiError::Forbidden {
            group: "policy".into(),
            resource: "poddisruptionbudget".into(),
            name,
            detail:
                "DisruptedPods map too big - too many evictions not confirmed by PDB controller"
                    .into(),
        });
    }
    if allowed == 0 {
        return Err(too_many(
            0,
            Some(format!(
                "The disruption budget {name} needs {} healthy pods and has {} currently",
                int(pdb, "/status/desiredHealthy"),
                int(pdb, "/status/currentHealthy")
            )),
        ));
    }
    let mut out = pdb.clone();
    let status = out
        .as_object_mut()
        .map(|o| o.entry("status").or_insert_with(|| json!({})));
    let Some(status) = status.and_then(Value::as_object_mut) else {
        return Err(ApiError::InternalError(
            "malformed PodDisruptionBudget".into(),
        ));
    };
    status.insert("disruptionsAllowed".into(), json!(allowed - 1));
    if allowed - 1 == 0 {
        // `UpdateDisruptionAllowedCondition`.
        let observed = status
            .get("observedGeneration")
            .cloned()
            .unwrap_or(json!(0));
        let conds = status.entry("conditions").or_insert_with(|| json!([]));
        if let Some(list) = conds.as_array_mut() {
            let cond = json!({"type": "DisruptionAllowed", "status": "False",
                "reason": "InsufficientPods", "message": "", "observedGeneration": observed,
                "lastTransitionTime": meta::now_rfc3339()});
            match list
                .iter_mut()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("DisruptionAllowed"))
            {
                Some(c) if c.get("status").and_then(Value::as_str) == Some("False") => {}
                Some(c) => *c = cond,
                None => list.push(cond),
            }
        }
    }
    if !dry_run {
        let pods = status.entry("disruptedPods").or_insert_with(|| json!({}));
        if let Some(m) = pods.as_object_mut() {
            m.insert(pod_name.into(), json!(meta::now_rfc3339()));
        }
    }
    Ok(out)
}

/// Marks the pod `DisruptionTarget=True` before it goes (`addConditionAndDeletePod`), so its
/// controller and kubelet see why.
async fn mark_disruption_target(reg: &Registry, ns: &str, name: &str) -> Result<(), ApiError> {
    let Some(pods) = reg.kind("", "pods") else {
        return Ok(());
    };
    for _ in 0..8 {
        let Some(kv) = reg.get_kv(pods.info(), Some(ns), name).await? else {
            return Ok(());
        };
        let mut pod = super::decode(&kv)?;
        let Some(o) = pod.as_object_mut() else {
            return Ok(());
        };
        let status = o.entry("status").or_insert_with(|| json!({}));
        let Some(conds) = status
            .as_object_mut()
            .map(|s| s.entry("conditions").or_insert_with(|| json!([])))
            .and_then(Value::as_array_mut)
        else {
            return Ok(());
        };
        if conds
            .iter()
            .any(|c| c.get("type").and_then(Value::as_str) == Some("DisruptionTarget"))
        {
            return Ok(());
        }
        conds.push(json!({"type": "DisruptionTarget", "status": "True",
            "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting",
            "lastProbeTime": null, "lastTransitionTime": meta::now_rfc3339()}));
        match reg
            .store()
            .txn(vec![Op::Put {
                key: reg.key(pods.info(), Some(ns), name),
                value: crate::admission::encode(&pod)?,
                precondition: Precondition::ModRevision(kv.mod_revision),
            }])
            .await
        {
            Ok(_) => return Ok(()),
            Err(StoreError::PreconditionFailed { .. }) => continue,
            Err(e) => return Err(store_error(e)),
        }
    }
    Ok(())
}

/// The `deleteOptions` of an Eviction as the registry takes them.
fn delete_options(eviction: &Value, dry_run: bool) -> DeleteOptions {
    let d = eviction.get("deleteOptions").cloned().unwrap_or(json!({}));
    let s = |p: &str| d.pointer(p).and_then(Value::as_str).map(String::from);
    DeleteOptions {
        propagation_policy: s("/propagationPolicy"),
        precondition_uid: s("/preconditions/uid"),
        precondition_resource_version: s("/preconditions/resourceVersion"),
        grace_period_seconds: d.get("gracePeriodSeconds").and_then(Value::as_i64),
        dry_run: dry_run
            || d.get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|x| x.as_str() == Some("All"))),
    }
}

async fn delete_pod(
    reg: &Registry,
    ns: &str,
    name: &str,
    opts: &DeleteOptions,
) -> Result<Value, ApiError> {
    let pods = reg
        .kind("", "pods")
        .ok_or_else(|| ApiError::not_found("", "pods", name))?;
    if !opts.dry_run {
        mark_disruption_target(reg, ns, name).await?;
    }
    reg.delete(&pods, Some(ns), name, opts).await?;
    Ok(success_status())
}

/// Evicts pod `name` in `namespace` as `eviction` (a policy/v1 `Eviction`) asks.
#[doc(alias = "EvictionREST")]
pub async fn evict(
    reg: &Registry,
    namespace: &str,
    name: &str,
    eviction: Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    if !eviction.is_object() {
        return Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    }
    let body_name = eviction
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if body_name != name {
        return Err(ApiError::BadRequest(
            "name in URL does not match name in Eviction object".into(),
        ));
    }
    let opts = delete_options(&eviction, dry_run);
    let pods = reg
        .kind("", "pods")
        .ok_or_else(|| ApiError::not_found("", "pods", name))?;
    let pdb_kind = reg.kind("policy", "poddisruptionbudgets");
    for _ in 0..8 {
        let pod = reg.get(&pods, Some(namespace), name).await?;
        if can_ignore_budget(&pod) {
            return delete_pod(reg, namespace, name, &opts).await;
        }
        let Some(pdb_kind) = &pdb_kind else {
            return delete_pod(reg, namespace, name, &opts).await;
        };
        let budgets: Vec<Value> = reg
            .list(pdb_kind, Some(namespace), &ListOptions::default())
            .await?
            .items
            .into_iter()
            .filter(|pdb| {
                Selector::from_label_selector(pdb.pointer("/spec/selector").unwrap_or(&Value::Null))
                    .is_ok_and(|s| s.matches_object(&pod))
            })
            .collect();
        let pdb = match budgets.as_slice() {
            [] => return delete_pod(reg, namespace, name, &opts).await,
            [one] => one,
            _ => {
                return Err(ApiError::InternalError(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.".into(),
                ));
            }
        };
        if !is_ready(&pod) {
            let policy = pdb
                .pointer("/spec/unhealthyPodEvictionPolicy")
                .and_then(Value::as_str)
                .unwrap_or("IfHealthyBudget");
            let healthy = int(pdb, "/status/currentHealthy");
            let desired = int(pdb, "/status/desiredHealthy");
            // An unhealthy pod does not count toward the budget: no disruption is taken for it.
            if policy == "AlwaysAllow" || (desired > 0 && healthy >= desired) {
                return delete_pod(reg, namespace, name, &opts).await;
            }
        }
        let updated = take_disruption(pdb, name, opts.dry_run)?;
        if opts.dry_run {
            return Ok(success_status());
        }
        let rev: i64 = pdb
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let pdb_name = meta::meta_str(pdb, "name");
        match reg
            .store()
            .txn(vec![Op::Put {
                key: reg.key(pdb_kind.info(), Some(namespace), pdb_name),
                value: crate::admission::encode(&updated)?,
                precondition: Precondition::ModRevision(rev),
            }])
            .await
        {
            Ok(_) => return delete_pod(reg, namespace, name, &opts).await,
            // The budget moved (another eviction, the controller): decide again on its new state.
            Err(StoreError::PreconditionFailed { .. }) => continue,
            Err(e) => return Err(store_error(e)),
        }
    }
    Err(too_many(1, None))
}

/// `POST …/pods/<name>/eviction`.
pub struct PodEviction {
    reg: Arc<Registry>,
}

impl PodEviction {
    pub fn new(reg: Arc<Registry>) -> Self {
        Self { reg }
    }
}

#[async_trait::async_trait]
impl SubresourceHandler for PodEviction {
    fn parent(&self) -> (&str, &str) {
        ("pods", "")
    }
    fn subresource(&self) -> &str {
        "eviction"
    }
    fn kind(&self) -> (&str, &str, &str) {
        ("Eviction", "policy", "v1")
    }
    async fn create(&self, req: &HookRequest<'_>, body: Value) -> Result<Value, HookError> {
        evict(
            &self.reg,
            req.namespace.unwrap_or_default(),
            req.name.unwrap_or_default(),
            body,
            req.dry_run,
        )
        .await
        .map_err(hook_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdb(allowed: i64) -> Value {
        json!({"metadata": {"name": "pdb-1", "generation": 1},
            "status": {"observedGeneration": 1, "disruptionsAllowed": allowed,
                "currentHealthy": 2, "desiredHealthy": 2, "expectedPods": 2}})
    }

    #[test]
    fn a_disruption_is_taken_and_recorded() {
        let out = take_disruption(&pdb(1), "web-1", false).unwrap();
        assert_eq!(out["status"]["disruptionsAllowed"], 0);
        assert!(out["status"]["disruptedPods"]["web-1"].is_string());
        assert_eq!(out["status"]["conditions"][0]["type"], "DisruptionAllowed");
        assert_eq!(out["status"]["conditions"][0]["status"], "False");
        let dry = take_disruption(&pdb(2), "web-1", true).unwrap();
        assert_eq!(dry["status"]["disruptionsAllowed"], 1);
        assert!(dry["status"].get("disruptedPods").is_none());
    }

    #[test]
    fn no_disruption_left_is_429() {
        let e = take_disruption(&pdb(0), "web-1", false).unwrap_err();
        assert_eq!(e.code(), 429);
        assert_eq!(e.message(), VIOLATION);
        let status = e.to_status();
        assert_eq!(status["details"]["causes"][0]["reason"], "DisruptionBudget");
        assert_eq!(
            status["details"]["causes"][0]["message"],
            "The disruption budget pdb-1 needs 2 healthy pods and has 2 currently"
        );
        let mut stale = pdb(3);
        stale["metadata"]["generation"] = json!(2);
        assert_eq!(take_disruption(&stale, "x", false).unwrap_err().code(), 429);
        assert_eq!(
            take_disruption(&pdb(-1), "x", false).unwrap_err().code(),
            403
        );
    }

    #[test]
    fn pods_not_running_skip_the_budget() {
        assert!(can_ignore_budget(&json!({"status": {"phase": "Pending"}})));
        assert!(can_ignore_budget(
            &json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Running"}})
        ));
        assert!(!can_ignore_budget(&json!({"status": {"phase": "Running"}})));
    }
}
