//! Role: policy rules validated as upstream (`ValidatePolicyRule`), NAME and CREATED AT columns.

use k8s_openapi::api::rbac::v1::Role as Object;
use serde_json::Value;
use skiff_k8s_core::status::FieldError;

use super::{role_columns, role_row, validate_rules};
use crate::kinds::typed::{Kind, NameRule};
use crate::registry::strategy::Column;

pub(crate) struct Role;

impl Kind for Role {
    type Object = Object;
    const NAME_RULE: NameRule = NameRule::PathSegment;

    fn validate(obj: &Value) -> Vec<FieldError> {
        validate_rules(obj, false)
    }

    fn columns() -> Vec<Column> {
        role_columns()
    }

    fn row(obj: &Value, _now: jiff::Timestamp) -> Vec<Value> {
        role_row(obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;
    use serde_json::json;

    #[test]
    fn rules() {
        let st = Typed::<Role>::new();
        assert!(
            st.validate(
                &json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]})
            )
            .is_empty()
        );
        let e = st.validate(&json!({"rules": [{"apiGroups": [""], "resources": ["pods"]}]}));
        assert_eq!(e[0].path, "rules[0].verbs");
        assert_eq!(e[0].detail, "verbs must contain at least one value");
        assert_eq!(st.name_rule(), NameRule::PathSegment);
        let row = st.row(
            &json!({"metadata": {"name": "r", "creationTimestamp": "2026-01-01T00:00:00Z"}}),
            jiff::Timestamp::now(),
        );
        assert_eq!(row[1], "2026-01-01T00:00:00Z");
    }
}
