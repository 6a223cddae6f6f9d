//! IngressClass (`ingressclasses`): required, immutable controller; CONTROLLER/PARAMETERS printer.

use k8s_openapi::api::networking::v1::IngressClass as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use crate::kinds::typed::{Kind, age_cell, age_column, col, name_cell, name_column, s};
use crate::kinds::validation::immutable;
use crate::registry::strategy::Column;

pub(crate) struct IngressClass;

impl Kind for IngressClass {
    type Object = Object;
    const GENERATION: bool = true;

    fn validate(obj: &Value) -> Vec<FieldError> {
        if s(obj, "/spec/controller").is_empty() {
            return vec![FieldError::required("spec.controller", "")];
        }
        Vec::new()
    }

    fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
        immutable(new, old, "/spec/controller", "spec.controller")
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col(
                "Controller",
                "string",
                "Controller that is responsible for handling this class",
                0,
            ),
            col(
                "Parameters",
                "string",
                "A reference to a resource with additional parameters",
                0,
            ),
            age_column(),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let params = match obj.pointer("/spec/parameters").filter(|p| !p.is_null()) {
            None => "<none>".to_string(),
            Some(p) => {
                let group = s(p, "/apiGroup");
                let kind = s(p, "/kind");
                let gk = if group.is_empty() {
                    kind.to_string()
                } else {
                    format!("{kind}.{group}")
                };
                format!("{gk}/{}", s(p, "/name"))
            }
        };
        vec![
            name_cell(obj),
            json!(s(obj, "/spec/controller")),
            json!(params),
            age_cell(obj, now),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;

    #[test]
    fn controller_rules() {
        let st = Typed::<IngressClass>::new();
        let ic =
            json!({"metadata": {"name": "alb"}, "spec": {"controller": "ingress.k8s.aws/alb"}});
        assert!(st.validate(&ic).is_empty());
        assert!(!st.info().namespaced);
        let mut n = ic.clone();
        n["spec"]["controller"] = json!("other");
        assert_eq!(st.validate_update(&n, &ic)[0].detail, "field is immutable");
        assert_eq!(st.row(&ic, jiff::Timestamp::now())[2], "<none>");
    }
}
