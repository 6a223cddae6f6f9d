//! LimitRange (`limitranges`, `limits`): limit types and quantities, the CREATED AT printer.

use k8s_openapi::api::core::v1::LimitRange as Object;
use serde_json::Value;
use skiff_k8s_core::status::FieldError;

use super::resource_quota::quantities;
use crate::kinds::typed::{Kind, arr, col, name_cell, name_column, s};
use crate::kinds::validation::not_supported;
use crate::registry::strategy::Column;

pub(crate) struct LimitRange;

const TYPES: &[&str] = &["Container", "PersistentVolumeClaim", "Pod"];

impl Kind for LimitRange {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["limits"];

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        for (i, l) in arr(obj, "/spec/limits").iter().enumerate() {
            let path = format!("spec.limits[{i}]");
            let t = l.get("type").unwrap_or(&Value::Null);
            if !t.as_str().is_some_and(|t| TYPES.contains(&t)) {
                errs.push(not_supported(&format!("{path}.type"), t, TYPES));
            }
            for f in [
                "max",
                "min",
                "default",
                "defaultRequest",
                "maxLimitRequestRatio",
            ] {
                errs.extend(quantities(l.get(f), &format!("{path}.{f}")));
            }
        }
        errs
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col(
                "Created At",
                "date",
                "Time when this LimitRange was created",
                0,
            ),
        ]
    }

    fn row(obj: &Value, _now: jiff::Timestamp) -> Vec<Value> {
        vec![
            name_cell(obj),
            Value::from(s(obj, "/metadata/creationTimestamp")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;
    use serde_json::json;

    #[test]
    fn types_and_quantities() {
        let st = Typed::<LimitRange>::new();
        assert!(
            st.validate(
                &json!({"spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}}]}})
            )
            .is_empty()
        );
        let e = st.validate(&json!({"spec": {"limits": [{"type": "Node", "max": {"cpu": "x"}}]}}));
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["spec.limits[0].type", "spec.limits[0].max[cpu]"]
        );
    }
}
