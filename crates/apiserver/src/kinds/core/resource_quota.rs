//! ResourceQuota (`resourcequotas`, `quota`): hard quantities parse and are non-negative; the
//! REQUEST/LIMIT printer (`cpu: 100m/1, pods: 2/10`).

use k8s_openapi::api::core::v1::ResourceQuota as Object;
use serde_json::{Value, json};
use skiff_k8s_core::quantity::Quantity;
use skiff_k8s_core::status::FieldError;

use crate::kinds::typed::{Kind, age_cell, age_column, col, name_cell, name_column, s};
use crate::registry::strategy::Column;

pub(crate) struct ResourceQuota;

impl Kind for ResourceQuota {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["quota"];
    const STATUS: bool = true;

    fn validate(obj: &Value) -> Vec<FieldError> {
        quantities(obj.pointer("/spec/hard"), "spec.hard")
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            age_column(),
            col(
                "Request",
                "string",
                "Request represents a minimum amount of cpu/memory that a container may consume.",
                0,
            ),
            col(
                "Limit",
                "string",
                "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
                0,
            ),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let mut keys: Vec<&String> = obj
            .pointer("/spec/hard")
            .and_then(Value::as_object)
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        keys.sort();
        let cell = |k: &str| {
            let esc = k.replace('~', "~0").replace('/', "~1");
            let used = s(obj, &format!("/status/used/{esc}"));
            let hard = s(obj, &format!("/status/hard/{esc}"));
            let hard = if hard.is_empty() {
                s(obj, &format!("/spec/hard/{esc}"))
            } else {
                hard
            };
            format!("{k}: {}/{hard}", if used.is_empty() { "0" } else { used })
        };
        let (limits, requests): (Vec<&String>, Vec<&String>) =
            keys.into_iter().partition(|k| k.starts_with("limits."));
        vec![
            name_cell(obj),
            age_cell(obj, now),
            json!(
                requests
                    .iter()
                    .map(|k| cell(k))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            json!(
                limits
                    .iter()
                    .map(|k| cell(k))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ]
    }
}

/// Every value of the map at `m` parses as a non-negative quantity (`spec.hard[cpu]` paths).
pub(crate) fn quantities(m: Option<&Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in m.and_then(Value::as_object).into_iter().flatten() {
        let text = v
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string());
        match Quantity::parse(&text) {
            Err(e) => errs.push(FieldError::invalid(
                format!("{path}[{k}]"),
                json!(text),
                e.to_string(),
            )),
            Ok(q) if q.nanos() < 0 => errs.push(FieldError::invalid(
                format!("{path}[{k}]"),
                json!(text),
                "must be greater than or equal to 0",
            )),
            Ok(_) => {}
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;

    #[test]
    fn quantities_and_row() {
        let st = Typed::<ResourceQuota>::new();
        let q = json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "10", "limits.cpu": "2", "requests.cpu": "1"}}, "status": {"used": {"pods": "3"}}});
        assert!(st.validate(&q).is_empty());
        let row = st.row(&q, jiff::Timestamp::now());
        assert_eq!(row[2], "pods: 3/10, requests.cpu: 0/1");
        assert_eq!(row[3], "limits.cpu: 0/2");
        let e = st.validate(&json!({"spec": {"hard": {"cpu": "lots", "memory": "-1"}}}));
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].path, "spec.hard[cpu]");
    }
}
