//! HorizontalPodAutoscaler served as `autoscaling/v1` over the `autoscaling/v2` stored form
//! (upstream `pkg/apis/autoscaling/v1/conversion.go`): `targetCPUUtilizationPercentage` is the CPU
//! `Utilization` metric, `currentCPUUtilizationPercentage` its current value. What v1 cannot express
//! (other metrics, behavior, conditions) rides in the `autoscaling.alpha.kubernetes.io/*` annotations,
//! as upstream does, so a v1 read-modify-write keeps it.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use skiff_k8s_core::status::ApiError;

use crate::registry::strategy::{ResourceInfo, Strategy};
use crate::registry::{Conversion, Served};

const METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";

/// The `autoscaling/v1` view of the v2 HPA strategy `v2`.
pub(crate) fn served(v2: Arc<dyn Strategy>) -> Served {
    let info = ResourceInfo {
        version: "v1".into(),
        ..v2.info().clone()
    };
    Served {
        info,
        kind: v2.clone(),
        storage: v2,
        conversion: Some(Arc::new(V1)),
    }
}

struct V1;

fn is_cpu_utilization(m: &Value) -> bool {
    m.get("type") == Some(&json!("Resource"))
        && m.pointer("/resource/name") == Some(&json!("cpu"))
        && m.pointer("/resource/target/type") == Some(&json!("Utilization"))
}

fn annotations(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let meta = obj
        .as_object_mut()?
        .entry("metadata")
        .or_insert_with(|| json!({}));
    let ann = meta
        .as_object_mut()?
        .entry("annotations")
        .or_insert_with(|| json!({}));
    ann.as_object_mut()
}

fn take_annotation(obj: &mut Value, key: &str) -> Option<Value> {
    let ann = obj
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)?;
    let raw = ann.remove(key)?;
    let out = raw.as_str().and_then(|s| serde_json::from_str(s).ok());
    if ann.is_empty()
        && let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut)
    {
        m.remove("annotations");
    }
    out
}

/// v1 (whole object or apply configuration) → v2: only fields present are mapped.
pub(crate) fn to_v2(mut obj: Value) -> Result<Value, ApiError> {
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    };
    map.insert("apiVersion".into(), json!("autoscaling/v2"));
    let extra_metrics = take_annotation(&mut obj, METRICS);
    let behavior = take_annotation(&mut obj, BEHAVIOR);
    let current_extra = take_annotation(&mut obj, CURRENT_METRICS);
    let conditions = take_annotation(&mut obj, CONDITIONS);
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        let mut metrics = Vec::new();
        if let Some(cpu) = spec.remove("targetCPUUtilizationPercentage")
            && !cpu.is_null()
        {
            metrics.push(json!({"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": cpu}}}));
        }
        if let Some(Value::Array(more)) = extra_metrics {
            metrics.extend(more);
        }
        if !metrics.is_empty() {
            spec.insert("metrics".into(), Value::Array(metrics));
        }
        if let Some(b) = behavior {
            spec.insert("behavior".into(), b);
        }
    }
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        let mut current = Vec::new();
        if let Some(cpu) = status.remove("currentCPUUtilizationPercentage")
            && !cpu.is_null()
        {
            current.push(json!({"type": "Resource", "resource": {"name": "cpu",
                "current": {"averageUtilization": cpu}}}));
        }
        if let Some(Value::Array(more)) = current_extra {
            current.extend(more);
        }
        if !current.is_empty() {
            status.insert("currentMetrics".into(), Value::Array(current));
        }
        if let Some(c) = conditions {
            status.insert("conditions".into(), c);
        }
    }
    Ok(obj)
}

/// Stored v2 → v1.
pub(crate) fn to_v1(mut obj: Value) -> Value {
    let mut stash: Vec<(&str, Value)> = Vec::new();
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), json!("autoscaling/v1"));
    }
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        if let Some(Value::Array(metrics)) = spec.remove("metrics") {
            let (cpu, other): (Vec<Value>, Vec<Value>) =
                metrics.into_iter().partition(is_cpu_utilization);
            if let Some(u) = cpu
                .first()
                .and_then(|m| m.pointer("/resource/target/averageUtilization"))
            {
                spec.insert("targetCPUUtilizationPercentage".into(), u.clone());
            }
            if !other.is_empty() {
                stash.push((METRICS, Value::Array(other)));
            }
        }
        if let Some(b) = spec.remove("behavior") {
            stash.push((BEHAVIOR, b));
        }
    }
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        if let Some(Value::Array(current)) = status.remove("currentMetrics") {
            let mut other = Vec::new();
            for m in current {
                let cpu = m.get("type") == Some(&json!("Resource"))
                    && m.pointer("/resource/name") == Some(&json!("cpu"));
                match m.pointer("/resource/current/averageUtilization") {
                    Some(u) if cpu => {
                        status.insert("currentCPUUtilizationPercentage".into(), u.clone());
                    }
                    _ => other.push(m),
                }
            }
            if !other.is_empty() {
                stash.push((CURRENT_METRICS, Value::Array(other)));
            }
        }
        if let Some(c) = status.remove("conditions") {
            stash.push((CONDITIONS, c));
        }
    }
    if !stash.is_empty()
        && let Some(ann) = annotations(&mut obj)
    {
        for (k, v) in stash {
            ann.insert(k.into(), json!(v.to_string()));
        }
    }
    obj
}

impl Conversion for V1 {
    fn to_internal(&self, obj: Value) -> Result<Value, ApiError> {
        to_v2(obj)
    }

    fn apply_config_to_storage(&self, obj: Value) -> Result<Value, ApiError> {
        to_v2(obj)
    }

    fn to_external(&self, obj: Value) -> Value {
        to_v1(obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_target_converts_both_ways() {
        let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50},
            "status": {"currentReplicas": 2, "currentCPUUtilizationPercentage": 30}});
        let v2 = to_v2(v1.clone()).unwrap();
        assert_eq!(v2["apiVersion"], "autoscaling/v2");
        assert_eq!(
            v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            50
        );
        assert_eq!(
            v2["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
            30
        );
        assert!(v2["spec"].get("targetCPUUtilizationPercentage").is_none());
        assert_eq!(to_v1(v2), v1);
    }

    #[test]
    fn what_v1_cannot_say_survives_in_annotations() {
        let v2 = json!({"apiVersion": "autoscaling/v2", "metadata": {"name": "web"},
            "spec": {"maxReplicas": 5, "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}}}],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}}},
            "status": {"conditions": [{"type": "AbleToScale", "status": "True"}]}});
        let v1 = to_v1(v2.clone());
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 70);
        assert!(
            v1["metadata"]["annotations"][METRICS]
                .as_str()
                .unwrap()
                .contains("memory")
        );
        assert!(v1["status"].get("conditions").is_none());
        assert_eq!(to_v2(v1).unwrap(), v2);
    }
}
