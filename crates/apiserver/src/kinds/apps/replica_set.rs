//! ReplicaSet (`replicasets`, `rs`): replicas default 1, selector/template rules, DESIRED/CURRENT/READY.

use k8s_openapi::api::apps::v1::ReplicaSet as Object;
use serde_json::Value;
use skiff_k8s_core::status::FieldError;

use crate::kinds::core::pod_template::{
    containers_cell, default_template, images_cell, restart_policy_in, selector_string,
    validate_replicas, validate_selector, validate_template,
};
use crate::kinds::typed::{
    Kind, age_cell, age_column, child_map, col, default_field, i, name_cell, name_column,
};
use crate::kinds::validation::{immutable, non_negative};
use crate::registry::strategy::Column;

pub(crate) struct ReplicaSet;

impl Kind for ReplicaSet {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["rs"];
    const CATEGORIES: &'static [&'static str] = &["all"];
    const STATUS: bool = true;
    const SCALE: bool = true;
    const GENERATION: bool = true;

    fn defaults(obj: &mut Value) {
        default_field(child_map(obj, "spec"), "replicas", 1);
        default_template(obj, "/spec/template");
    }

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_replicas(obj);
        errs.extend(validate_selector(obj, "replicaset"));
        if let Some(t) = obj.pointer("/spec/template").filter(|t| !t.is_null()) {
            errs.extend(validate_template(t, "spec.template"));
            errs.extend(restart_policy_in(t, "spec.template", &["Always"]));
        }
        errs.extend(non_negative(
            obj,
            "/spec/minReadySeconds",
            "spec.minReadySeconds",
        ));
        errs
    }

    fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
        immutable(new, old, "/spec/selector", "spec.selector")
    }

    fn columns() -> Vec<Column> {
        workload_columns("replica set")
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            name_cell(obj),
            Value::from(i(obj, "/spec/replicas")),
            Value::from(i(obj, "/status/replicas")),
            Value::from(i(obj, "/status/readyReplicas")),
            age_cell(obj, now),
            containers_cell(obj, "/spec/template/spec"),
            images_cell(obj, "/spec/template/spec"),
            Value::from(selector_string(obj.pointer("/spec/selector"))),
        ]
    }

    fn field_value(obj: &Value, field: &str) -> Option<String> {
        (field == "status.replicas").then(|| i(obj, "/status/replicas").to_string())
    }
}

/// NAME DESIRED CURRENT READY AGE (+ wide CONTAINERS IMAGES SELECTOR), shared with ReplicationController.
pub(crate) fn workload_columns(what: &'static str) -> Vec<Column> {
    let _ = what;
    vec![
        name_column(),
        col(
            "Desired",
            "integer",
            "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller",
            0,
        ),
        col(
            "Current",
            "integer",
            "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller",
            0,
        ),
        col(
            "Ready",
            "integer",
            "The number of ready replicas for this replica set.",
            0,
        ),
        age_column(),
        col(
            "Containers",
            "string",
            "Names of each container in the template.",
            1,
        ),
        col(
            "Images",
            "string",
            "Images referenced by each container in the template.",
            1,
        ),
        col(
            "Selector",
            "string",
            "Selector is a label query over pods that should match the replica count. Label keys and values that must match in order to be controlled by this replica set. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
            1,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;
    use serde_json::json;

    #[test]
    fn defaults_rows_fields() {
        let st = Typed::<ReplicaSet>::new();
        let mut rs = json!({"metadata": {"name": "r", "namespace": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        st.prepare_for_create(&mut rs);
        assert_eq!(rs["spec"]["replicas"], 1);
        assert!(st.validate(&rs).is_empty());
        rs["status"] = json!({"replicas": 1, "readyReplicas": 1});
        let row = st.row(&rs, jiff::Timestamp::now());
        assert_eq!(row[1..4], [json!(1), json!(1), json!(1)]);
        assert_eq!(st.field_value(&rs, "status.replicas").as_deref(), Some("1"));
        let mut bad = rs.clone();
        bad["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        assert_eq!(
            st.validate(&bad)[0].path,
            "spec.template.spec.restartPolicy"
        );
    }
}
