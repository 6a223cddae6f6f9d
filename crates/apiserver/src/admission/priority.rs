//! `Priority`: a new Pod's `priorityClassName` becomes its `priority` (and `preemptionPolicy`);
//! without a name the `globalDefault` class applies, else 0; an unknown class is refused
//! (`no PriorityClass with name x was found`). `system-node-critical` and
//! `system-cluster-critical` are created as objects at start-up ([`SYSTEM_CLASSES`]) and also
//! resolve when those objects are missing.

use serde_json::{Value, json};
use skiff_k8s_core::status::ApiError;

use super::{Operation, Request};
use crate::registry::{ListOptions, Registry};

/// The built-in classes kube-apiserver creates: (name, value, description).
pub const SYSTEM_CLASSES: [(&str, i64, &str); 2] = [
    (
        "system-node-critical",
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

/// The `PriorityClass` objects of [`SYSTEM_CLASSES`].
pub fn system_class_objects() -> Vec<Value> {
    SYSTEM_CLASSES
        .iter()
        .map(|(name, value, description)| {
            json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": name}, "value": value, "description": description,
                "preemptionPolicy": "PreemptLowerPriority"})
        })
        .collect()
}

/// (class name, priority, preemption policy) for the pod.
async fn resolve(
    reg: &Registry,
    req: &Request<'_>,
    class: &str,
) -> Result<(String, i64, Option<String>), ApiError> {
    let Some(kind) = reg.kind("scheduling.k8s.io", "priorityclasses") else {
        return Ok((class.to_string(), 0, None));
    };
    let policy = |pc: &Value| {
        pc.get("preemptionPolicy")
            .and_then(Value::as_str)
            .map(String::from)
    };
    let value = |pc: &Value| pc.get("value").and_then(Value::as_i64).unwrap_or(0);
    if class.is_empty() {
        // `getDefaultPriority`: the global default with the lowest value, if any.
        let all = reg.list(&kind, None, &ListOptions::default()).await?.items;
        let default = all
            .iter()
            .filter(|pc| pc.get("globalDefault").and_then(Value::as_bool) == Some(true))
            .min_by_key(|pc| value(pc));
        return Ok(match default {
            Some(pc) => (
                pc.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                value(pc),
                policy(pc),
            ),
            None => (String::new(), 0, None),
        });
    }
    match reg.get(&kind, None, class).await {
        Ok(pc) => Ok((class.to_string(), value(&pc), policy(&pc))),
        Err(ApiError::NotFound { .. }) => match SYSTEM_CLASSES.iter().find(|c| c.0 == class) {
            Some((_, v, _)) => Ok((class.to_string(), *v, Some("PreemptLowerPriority".into()))),
            None => Err(req.forbidden(format!("no PriorityClass with name {class} was found"))),
        },
        Err(e) => Err(e),
    }
}

pub async fn mutate(reg: &Registry, req: &Request<'_>, obj: &mut Value) -> Result<(), ApiError> {
    if !req.is("", "pods") || req.operation != Operation::Create {
        return Ok(());
    }
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return Ok(());
    };
    let class = spec
        .get("priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let (name, priority, policy) = resolve(reg, req, &class).await?;
    // The Pod strategy defaults `priority: 0` before admission, so only a non-zero value can be
    // one the client set itself.
    if let Some(given) = spec.get("priority").and_then(Value::as_i64)
        && given != 0
        && given != priority
    {
        return Err(req.forbidden(format!(
            "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
        )));
    }
    if !name.is_empty() {
        spec["priorityClassName"] = json!(name);
    }
    spec["priority"] = json!(priority);
    if let Some(p) = policy {
        spec["preemptionPolicy"] = json!(p);
    }
    Ok(())
}
