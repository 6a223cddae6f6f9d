//! ReplicationController (`replicationcontrollers`, `rc`): replicas 1 and the selector defaulted from
//! the template labels, selector/template rules, the DESIRED/CURRENT/READY printer.

use k8s_openapi::api::core::v1::ReplicationController as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use super::pod_template::{containers_cell, default_template, images_cell, validate_template};
use crate::kinds::apps::replica_set::workload_columns;
use crate::kinds::typed::{Kind, age_cell, child_map, default_field, i, name_cell};
use crate::kinds::validation::non_negative;
use crate::registry::strategy::Column;

pub(crate) struct ReplicationController;

impl Kind for ReplicationController {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["rc"];
    const CATEGORIES: &'static [&'static str] = &["all"];
    const STATUS: bool = true;
    const SCALE: bool = true;
    const GENERATION: bool = true;

    fn defaults(obj: &mut Value) {
        let labels = obj.pointer("/spec/template/metadata/labels").cloned();
        let spec = child_map(obj, "spec");
        default_field(spec, "replicas", 1);
        if spec
            .get("selector")
            .is_none_or(|s| s.as_object().is_none_or(|m| m.is_empty()))
            && let Some(l) = labels
        {
            spec.insert("selector".into(), l);
        }
        default_template(obj, "/spec/template");
    }

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = non_negative(obj, "/spec/replicas", "spec.replicas");
        let sel = obj.pointer("/spec/selector").and_then(Value::as_object);
        if sel.is_none_or(|m| m.is_empty()) {
            errs.push(FieldError::required("spec.selector", ""));
        }
        match obj.pointer("/spec/template").filter(|t| !t.is_null()) {
            Some(t) => {
                let labels = t.pointer("/metadata/labels");
                let matches = sel
                    .into_iter()
                    .flatten()
                    .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
                if !matches {
                    errs.push(FieldError::invalid(
                        "spec.template.metadata.labels",
                        labels.cloned().unwrap_or(Value::Null),
                        "`selector` does not match template `labels`",
                    ));
                }
                errs.extend(validate_template(t, "spec.template"));
            }
            None => errs.push(FieldError::required("spec.template", "")),
        }
        errs
    }

    fn columns() -> Vec<Column> {
        workload_columns("replication controller")
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let sel = obj
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .map(|m| {
                let mut v: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect();
                v.sort();
                v.join(",")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "<none>".into());
        vec![
            name_cell(obj),
            json!(i(obj, "/spec/replicas")),
            json!(i(obj, "/status/replicas")),
            json!(i(obj, "/status/readyReplicas")),
            age_cell(obj, now),
            containers_cell(obj, "/spec/template/spec"),
            images_cell(obj, "/spec/template/spec"),
            json!(sel),
        ]
    }

    fn field_value(obj: &Value, field: &str) -> Option<String> {
        (field == "status.replicas").then(|| i(obj, "/status/replicas").to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;

    #[test]
    fn selector_defaults_from_template() {
        let st = Typed::<ReplicationController>::new();
        let mut rc = json!({"metadata": {"name": "rc", "namespace": "d"}, "spec": {"template": {"metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        st.prepare_for_create(&mut rc);
        assert_eq!(rc["spec"]["selector"], json!({"app": "x"}));
        assert_eq!(rc["spec"]["replicas"], 1);
        assert!(st.validate(&rc).is_empty(), "{:?}", st.validate(&rc));
        assert_eq!(st.row(&rc, jiff::Timestamp::now())[7], "app=x");
    }
}
