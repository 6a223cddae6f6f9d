//! NetworkPolicy (`networkpolicies`, `netpol`): policyTypes defaulted from the rules, POD-SELECTOR printer.

use k8s_openapi::api::networking::v1::NetworkPolicy as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use crate::kinds::core::pod_template::selector_string;
use crate::kinds::typed::{
    Kind, age_cell, age_column, arr, child_map, col, name_cell, name_column,
};
use crate::kinds::validation::not_supported;
use crate::registry::strategy::Column;

pub(crate) struct NetworkPolicy;

impl Kind for NetworkPolicy {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["netpol"];
    const GENERATION: bool = true;

    fn defaults(obj: &mut Value) {
        let has_egress = !arr(obj, "/spec/egress").is_empty();
        let spec = child_map(obj, "spec");
        if spec
            .get("policyTypes")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            let mut types = vec![json!("Ingress")];
            if has_egress {
                types.push(json!("Egress"));
            }
            spec.insert("policyTypes".into(), Value::Array(types));
        }
    }

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if obj.pointer("/spec/podSelector").is_none() {
            errs.push(FieldError::required("spec.podSelector", ""));
        }
        for (i, t) in arr(obj, "/spec/policyTypes").iter().enumerate() {
            if !t.as_str().is_some_and(|t| t == "Ingress" || t == "Egress") {
                errs.push(not_supported(
                    &format!("spec.policyTypes[{i}]"),
                    t,
                    &["Egress", "Ingress"],
                ));
            }
        }
        errs
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col(
                "Pod-Selector",
                "string",
                "podSelector selects the pods to which this NetworkPolicy object applies. The array of rules is applied to any pods selected by this field. An empty selector matches all pods in the policy's namespace. Multiple network policies can select the same set of pods. In this case, the ingress rules for each are combined additively. This field is optional. If it is not specified, it defaults to an empty selector.",
                0,
            ),
            age_column(),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            name_cell(obj),
            json!(selector_string(obj.pointer("/spec/podSelector"))),
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
    fn policy_types_default() {
        let st = Typed::<NetworkPolicy>::new();
        let mut np = json!({"metadata": {"name": "deny", "namespace": "d"}, "spec": {"podSelector": {}, "egress": [{}]}});
        st.prepare_for_create(&mut np);
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert!(st.validate(&np).is_empty());
        assert_eq!(st.row(&np, jiff::Timestamp::now())[1], "<none>");
    }
}
