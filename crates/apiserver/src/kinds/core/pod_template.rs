//! PodTemplate (`podtemplates`), and the pod-template rules every workload kind shares: template
//! defaults, template validation, selector-vs-labels matching, and the CONTAINERS/IMAGES/SELECTOR cells.

use k8s_openapi::api::core::v1::PodTemplate as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use super::pod::{default_pod_spec, validate_pod_spec};
use crate::kinds::typed::{
    Kind, age_cell, age_column, arr, child_map, col, name_cell, name_column,
};
use crate::kinds::validation::{self, not_supported};
use crate::registry::strategy::Column;

pub(crate) struct PodTemplate;

impl Kind for PodTemplate {
    type Object = Object;

    fn defaults(obj: &mut Value) {
        default_template(obj, "/template");
    }

    fn validate(obj: &Value) -> Vec<FieldError> {
        validate_template(obj.get("template").unwrap_or(&Value::Null), "template")
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col(
                "Containers",
                "string",
                "Names of each container in the template.",
                0,
            ),
            col(
                "Images",
                "string",
                "Images referenced by each container in the template.",
                0,
            ),
            col(
                "Pod Labels",
                "string",
                "The labels for the pod template.",
                0,
            ),
            age_column(),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let labels = obj
            .pointer("/template/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| {
                let mut v: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect();
                v.sort();
                v.join(",")
            })
            .unwrap_or_default();
        vec![
            name_cell(obj),
            containers_cell(obj, "/template/spec"),
            images_cell(obj, "/template/spec"),
            Value::from(if labels.is_empty() {
                "<none>".to_string()
            } else {
                labels
            }),
            age_cell(obj, now),
        ]
    }
}

/// Pod-spec defaults on the template at `ptr` (`/spec/template`), when there is one.
pub(crate) fn default_template(obj: &mut Value, ptr: &str) {
    if let Some(t) = obj.pointer_mut(ptr)
        && t.is_object()
    {
        default_pod_spec(child_map(t, "spec"));
    }
}

/// `ValidatePodTemplateSpec`: template labels and the pod spec under `path` (`spec.template`).
pub(crate) fn validate_template(t: &Value, path: &str) -> Vec<FieldError> {
    if t.is_null() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = validation::nested_meta(t.get("metadata"), &format!("{path}.metadata"));
    errs.extend(validate_pod_spec(
        t.get("spec").unwrap_or(&Value::Null),
        &format!("{path}.spec"),
    ));
    errs
}

/// The template's restartPolicy must be one of `allowed` (Always for Deployments, OnFailure/Never for Jobs).
pub(crate) fn restart_policy_in(t: &Value, path: &str, allowed: &[&str]) -> Vec<FieldError> {
    match t.pointer("/spec/restartPolicy") {
        Some(v) if v.as_str().is_some_and(|r| allowed.contains(&r)) => Vec::new(),
        Some(v) if !v.is_null() => vec![not_supported(
            &format!("{path}.spec.restartPolicy"),
            v,
            allowed,
        )],
        // Unset means the pod default, Always.
        _ if allowed.contains(&"Always") => Vec::new(),
        _ => {
            let quoted: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
            vec![FieldError::required(
                format!("{path}.spec.restartPolicy"),
                format!("valid values: {}", quoted.join(", ")),
            )]
        }
    }
}

/// Workload selector rules: required, non-empty, and matching the template labels.
pub(crate) fn validate_selector(obj: &Value, kind_lower: &str) -> Vec<FieldError> {
    let Some(sel) = obj.pointer("/spec/selector").filter(|v| !v.is_null()) else {
        return vec![FieldError::required("spec.selector", "")];
    };
    let empty = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(|m| m.is_empty())
        && sel
            .get("matchExpressions")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
    if empty {
        return vec![FieldError::invalid(
            "spec.selector",
            sel.clone(),
            format!("empty selector is invalid for {kind_lower}"),
        )];
    }
    let labels = obj.pointer("/spec/template/metadata/labels");
    if !selector_matches(sel, labels) {
        return vec![FieldError::invalid(
            "spec.template.metadata.labels",
            labels.cloned().unwrap_or(Value::Null),
            "`selector` does not match template `labels`",
        )];
    }
    Vec::new()
}

/// Whether a `LabelSelector` selects `labels`.
pub(crate) fn selector_matches(sel: &Value, labels: Option<&Value>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    let labels_ok = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(k, v)| get(k) == v.as_str());
    let exprs_ok = sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .all(|e| {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => get(key).is_some_and(|v| values.contains(&v)),
                "NotIn" => get(key).is_none_or(|v| !values.contains(&v)),
                "Exists" => get(key).is_some(),
                "DoesNotExist" => get(key).is_none(),
                _ => false,
            }
        });
    labels_ok && exprs_ok
}

/// `metav1.LabelSelectorAsSelector(...).String()`: `a=b,c in (x,y),!d`, sorted by key.
pub(crate) fn selector_string(sel: Option<&Value>) -> String {
    let Some(sel) = sel.filter(|v| !v.is_null()) else {
        return "<none>".to_string();
    };
    let mut parts: Vec<(String, String)> = Vec::new();
    for (k, v) in sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        parts.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
    }
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        values.sort();
        let text = match e.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.clone(),
            "DoesNotExist" => format!("!{key}"),
            _ => continue,
        };
        parts.push((key, text));
    }
    if parts.is_empty() {
        return "<none>".to_string();
    }
    parts.sort_by(|a, b| a.0.cmp(&b.0));
    parts.into_iter().map(|p| p.1).collect::<Vec<_>>().join(",")
}

/// Comma-joined container names of the pod spec at `ptr`.
pub(crate) fn containers_cell(obj: &Value, ptr: &str) -> Value {
    join_containers(obj, ptr, "name")
}

/// Comma-joined container images of the pod spec at `ptr`.
pub(crate) fn images_cell(obj: &Value, ptr: &str) -> Value {
    join_containers(obj, ptr, "image")
}

fn join_containers(obj: &Value, ptr: &str, field: &str) -> Value {
    let v: Vec<&str> = arr(obj, &format!("{ptr}/containers"))
        .iter()
        .map(|c| c.get(field).and_then(Value::as_str).unwrap_or(""))
        .collect();
    Value::from(v.join(","))
}

/// The common "replicas must not be negative" rule.
pub(crate) fn validate_replicas(obj: &Value) -> Vec<FieldError> {
    validation::non_negative(obj, "/spec/replicas", "spec.replicas")
}

/// The one-line JSON of a value, for immutable-field causes.
#[allow(dead_code)]
pub(crate) fn compact(v: &Value) -> Value {
    json!(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_rules() {
        let sel = json!({"matchLabels": {"app": "a"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}, {"key": "x", "operator": "DoesNotExist"}]});
        assert!(selector_matches(
            &sel,
            Some(&json!({"app": "a", "tier": "web"}))
        ));
        assert!(!selector_matches(
            &sel,
            Some(&json!({"app": "a", "tier": "db"}))
        ));
        assert_eq!(selector_string(Some(&sel)), "app=a,tier in (api,web),!x");
        let bad = json!({"spec": {"selector": {"matchLabels": {"app": "a"}}, "template": {"metadata": {"labels": {"app": "b"}}}}});
        let e = validate_selector(&bad, "deployment");
        assert_eq!(e[0].path, "spec.template.metadata.labels");
        assert_eq!(e[0].value, Some(json!({"app": "b"})));
        assert_eq!(e[0].detail, "`selector` does not match template `labels`");
        assert_eq!(
            validate_selector(&json!({"spec": {}}), "deployment")[0],
            FieldError::required("spec.selector", "")
        );
    }
}
