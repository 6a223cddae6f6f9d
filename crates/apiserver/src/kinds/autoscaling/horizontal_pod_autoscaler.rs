//! HorizontalPodAutoscaler (`horizontalpodautoscalers`, `hpa`, autoscaling/v2): minReplicas 1, the
//! default 80% CPU metric and scaling behaviour, replica bounds, the REFERENCE/TARGETS printer.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use crate::kinds::typed::{
    Kind, age_cell, age_column, arr, child_map, col, default_field, i, name_cell, name_column, s,
    sub_map,
};
use crate::registry::strategy::Column;

pub(crate) struct HorizontalPodAutoscaler;

impl Kind for HorizontalPodAutoscaler {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["hpa"];
    const CATEGORIES: &'static [&'static str] = &["all"];
    const STATUS: bool = true;
    const GENERATION: bool = true;

    fn defaults(obj: &mut Value) {
        let spec = child_map(obj, "spec");
        default_field(spec, "minReplicas", 1);
        if spec
            .get("metrics")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            spec.insert(
                "metrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]),
            );
        }
        let behavior = sub_map(spec, "behavior");
        let up = sub_map(behavior, "scaleUp");
        default_field(up, "stabilizationWindowSeconds", 0);
        default_field(up, "selectPolicy", "Max");
        default_field(
            up,
            "policies",
            json!([{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]),
        );
        let down = sub_map(behavior, "scaleDown");
        default_field(down, "stabilizationWindowSeconds", 300);
        default_field(down, "selectPolicy", "Max");
        default_field(
            down,
            "policies",
            json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]),
        );
    }

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let min = obj
            .pointer("/spec/minReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        if min < 1 {
            errs.push(FieldError::invalid(
                "spec.minReplicas",
                json!(min),
                "must be greater than or equal to 1",
            ));
        }
        let max = i(obj, "/spec/maxReplicas");
        if max < min {
            errs.push(FieldError::invalid(
                "spec.maxReplicas",
                json!(max),
                "must be greater than or equal to `minReplicas`",
            ));
        }
        for f in ["kind", "name"] {
            if s(obj, &format!("/spec/scaleTargetRef/{f}")).is_empty() {
                errs.push(FieldError::required(format!("spec.scaleTargetRef.{f}"), ""));
            }
        }
        errs
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col(
                "Reference",
                "string",
                "reference to scaled resource; horizontal pod autoscaler will learn the current resource consumption and will set the desired number of pods by using its Scale subresource.",
                0,
            ),
            col(
                "Targets",
                "string",
                "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).",
                0,
            ),
            col(
                "MinPods",
                "string",
                "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.",
                0,
            ),
            col(
                "MaxPods",
                "integer",
                "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up.",
                0,
            ),
            col(
                "Replicas",
                "integer",
                "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler.",
                0,
            ),
            age_column(),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let reference = format!(
            "{}/{}",
            s(obj, "/spec/scaleTargetRef/kind"),
            s(obj, "/spec/scaleTargetRef/name")
        );
        let min = obj
            .pointer("/spec/minReplicas")
            .and_then(Value::as_i64)
            .map_or("<unset>".to_string(), |m| m.to_string());
        vec![
            name_cell(obj),
            json!(reference),
            json!(targets(obj)),
            json!(min),
            json!(i(obj, "/spec/maxReplicas")),
            json!(i(obj, "/status/currentReplicas")),
            age_cell(obj, now),
        ]
    }
}

/// Upstream `formatHPAMetrics` for Resource metrics (others show their target value), max 3.
fn targets(obj: &Value) -> String {
    let specs = arr(obj, "/spec/metrics");
    if specs.is_empty() {
        return "<none>".into();
    }
    let current = arr(obj, "/status/currentMetrics");
    let mut list = Vec::new();
    for (idx, m) in specs.iter().enumerate() {
        let ty = m.get("type").and_then(Value::as_str).unwrap_or("");
        let key = match ty {
            "Resource" => "resource",
            "ContainerResource" => "containerResource",
            "Pods" => "pods",
            "Object" => "object",
            "External" => "external",
            _ => continue,
        };
        let spec = &m[key];
        let cur = current.get(idx).map(|c| &c[key]["current"]);
        let target = &spec["target"];
        let text = if let Some(u) = target.get("averageUtilization").and_then(Value::as_i64) {
            let c = cur
                .and_then(|c| c.get("averageUtilization"))
                .and_then(Value::as_i64)
                .map_or("<unknown>".to_string(), |c| format!("{c}%"));
            format!("{c}/{u}%")
        } else {
            let field = if target.get("averageValue").is_some() {
                "averageValue"
            } else {
                "value"
            };
            let t = target
                .get(field)
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .unwrap_or_default();
            let c = cur
                .and_then(|c| c.get(field))
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .unwrap_or_else(|| "<unknown>".to_string());
            let t = if field == "averageValue" && ty != "Pods" {
                format!("{t} (avg)")
            } else {
                t
            };
            format!("{c}/{t}")
        };
        let text = match spec.get("name").and_then(Value::as_str) {
            Some(n) if key == "resource" || key == "containerResource" => format!("{n}: {text}"),
            _ => text,
        };
        list.push(text);
    }
    if list.len() > 3 {
        let more = list.len() - 3;
        list.truncate(3);
        return format!("{} + {more} more...", list.join(", "));
    }
    list.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;

    #[test]
    fn defaults_validation_row() {
        let st = Typed::<HorizontalPodAutoscaler>::new();
        let mut h = json!({"metadata": {"name": "web", "namespace": "d"}, "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5}});
        st.prepare_for_create(&mut h);
        assert_eq!(h["spec"]["minReplicas"], 1);
        assert_eq!(
            h["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );
        assert_eq!(
            h["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
            300
        );
        assert!(st.validate(&h).is_empty());
        let row = st.row(&h, jiff::Timestamp::now());
        assert_eq!(
            row[1..6],
            [
                json!("Deployment/web"),
                json!("cpu: <unknown>/80%"),
                json!("1"),
                json!(5),
                json!(0)
            ]
        );
        h["status"] = json!({"currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 42}}}]});
        assert_eq!(st.row(&h, jiff::Timestamp::now())[2], "cpu: 42%/80%");
        h["spec"]["maxReplicas"] = json!(0);
        assert_eq!(st.validate(&h)[0].path, "spec.maxReplicas");
    }
}
