//! RoleBinding: roleRef and subjects validated as upstream, roleRef immutable, ROLE/USERS/GROUPS columns.

use k8s_openapi::api::rbac::v1::RoleBinding as Object;
use serde_json::Value;
use skiff_k8s_core::status::FieldError;

use super::{binding_columns, binding_row, role_ref_immutable, validate_binding};
use crate::kinds::typed::{Kind, NameRule};
use crate::registry::strategy::Column;

pub(crate) struct RoleBinding;

impl Kind for RoleBinding {
    type Object = Object;
    const NAME_RULE: NameRule = NameRule::PathSegment;

    fn validate(obj: &Value) -> Vec<FieldError> {
        validate_binding(obj, false)
    }

    fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
        role_ref_immutable(new, old)
    }

    fn columns() -> Vec<Column> {
        binding_columns()
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        binding_row(obj, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;
    use serde_json::json;

    #[test]
    fn binding_rules() {
        let st = Typed::<RoleBinding>::new();
        let b = json!({"metadata": {"name": "b"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "d"}, {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}]});
        assert!(st.validate(&b).is_empty(), "{:?}", st.validate(&b));
        let row = st.row(&b, jiff::Timestamp::now());
        assert_eq!(row[1], "ClusterRole/view");
        assert_eq!(row[3..6], [json!("alice"), json!(""), json!("d/default")]);
        let mut n = b.clone();
        n["roleRef"]["name"] = json!("edit");
        assert_eq!(
            st.validate_update(&n, &b).last().unwrap().detail,
            "cannot change roleRef"
        );
        let e = st.validate(&json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "x"}, "subjects": [{"kind": "Robot", "name": "r"}]}));
        assert_eq!(e[0].path, "subjects[0].kind");
    }
}
