//! PriorityClass (`priorityclasses`, `pc`): preemptionPolicy default, reserved `system-` names, immutable value.

use k8s_openapi::api::scheduling::v1::PriorityClass as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use crate::kinds::typed::{
    Kind, age_cell, age_column, col, default_field, i, name_cell, name_column, s,
};
use crate::registry::strategy::Column;

pub(crate) struct PriorityClass;

/// Upstream `HighestUserDefinablePriority`.
const MAX_USER_PRIORITY: i64 = 1_000_000_000;

impl Kind for PriorityClass {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["pc"];

    fn defaults(obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            default_field(m, "preemptionPolicy", "PreemptLowerPriority");
        }
    }

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let name = s(obj, "/metadata/name");
        let system = name == "system-node-critical" || name == "system-cluster-critical";
        if name.starts_with("system-") && !system {
            errs.push(FieldError::invalid(
                "metadata.name",
                json!(name),
                "priority class names with 'system-' prefix are reserved",
            ));
        }
        let v = i(obj, "/value");
        if !system && v > MAX_USER_PRIORITY {
            errs.push(FieldError::forbidden(
                "value",
                format!("maximum allowed value of a user defined priority is {MAX_USER_PRIORITY}"),
            ));
        }
        errs
    }

    fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
        if new.get("value") != old.get("value") {
            return vec![FieldError::forbidden(
                "value",
                "may not be changed in an update.",
            )];
        }
        Vec::new()
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col(
                "Value",
                "integer",
                "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec.",
                0,
            ),
            col(
                "Global-Default",
                "boolean",
                "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority.",
                0,
            ),
            age_column(),
            col(
                "PreemptionPolicy",
                "string",
                "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset.",
                0,
            ),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            name_cell(obj),
            json!(i(obj, "/value")),
            json!(
                obj.get("globalDefault")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            ),
            age_cell(obj, now),
            json!(s(obj, "/preemptionPolicy")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;

    #[test]
    fn rules() {
        let st = Typed::<PriorityClass>::new();
        let mut pc = json!({"metadata": {"name": "high"}, "value": 1000});
        st.prepare_for_create(&mut pc);
        assert_eq!(pc["preemptionPolicy"], "PreemptLowerPriority");
        assert!(st.validate(&pc).is_empty());
        assert_eq!(
            st.validate(&json!({"metadata": {"name": "system-x"}, "value": 1}))[0].path,
            "metadata.name"
        );
        let n = json!({"metadata": {"name": "high"}, "value": 2000});
        assert_eq!(
            st.validate_update(&n, &pc)[0].detail,
            "may not be changed in an update."
        );
    }
}
