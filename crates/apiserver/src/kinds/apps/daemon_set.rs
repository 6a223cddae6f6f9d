//! DaemonSet (`daemonsets`, `ds`): RollingUpdate maxUnavailable 1 / maxSurge 0, history 10, the
//! DESIRED/CURRENT/READY/UP-TO-DATE/AVAILABLE/NODE SELECTOR printer.

use k8s_openapi::api::apps::v1::DaemonSet as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use crate::kinds::core::pod_template::{
    containers_cell, default_template, images_cell, restart_policy_in, selector_string,
    validate_selector, validate_template,
};
use crate::kinds::typed::{
    Kind, age_cell, age_column, child_map, col, default_field, i, name_cell, name_column,
};
use crate::kinds::validation::{immutable, not_supported};
use crate::registry::strategy::Column;

pub(crate) struct DaemonSet;

impl Kind for DaemonSet {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["ds"];
    const CATEGORIES: &'static [&'static str] = &["all"];
    const STATUS: bool = true;
    const GENERATION: bool = true;

    fn defaults(obj: &mut Value) {
        let spec = child_map(obj, "spec");
        default_field(spec, "revisionHistoryLimit", 10);
        let us = spec.entry("updateStrategy").or_insert_with(|| json!({}));
        if let Some(us) = us.as_object_mut() {
            default_field(us, "type", "RollingUpdate");
            if us.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                let ru = us.entry("rollingUpdate").or_insert_with(|| json!({}));
                if let Some(ru) = ru.as_object_mut() {
                    default_field(ru, "maxUnavailable", 1);
                    default_field(ru, "maxSurge", 0);
                }
            }
        }
        default_template(obj, "/spec/template");
    }

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_selector(obj, "daemonset");
        if let Some(t) = obj.pointer("/spec/template").filter(|t| !t.is_null()) {
            errs.extend(validate_template(t, "spec.template"));
            errs.extend(restart_policy_in(t, "spec.template", &["Always"]));
        } else {
            errs.push(FieldError::required("spec.template", ""));
        }
        let us = obj
            .pointer("/spec/updateStrategy/type")
            .unwrap_or(&Value::Null);
        if let Some(u) = us.as_str()
            && u != "RollingUpdate"
            && u != "OnDelete"
        {
            errs.push(not_supported(
                "spec.updateStrategy.type",
                us,
                &["OnDelete", "RollingUpdate"],
            ));
        }
        errs
    }

    fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
        immutable(new, old, "/spec/selector", "spec.selector")
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col(
                "Desired",
                "integer",
                "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod).",
                0,
            ),
            col(
                "Current",
                "integer",
                "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
                0,
            ),
            col(
                "Ready",
                "integer",
                "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.",
                0,
            ),
            col(
                "Up-to-date",
                "integer",
                "The total number of nodes that are running updated daemon pod",
                0,
            ),
            col(
                "Available",
                "integer",
                "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
                0,
            ),
            col(
                "Node Selector",
                "string",
                "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/",
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
                "A label query over pods that are managed by the daemon set. Must match in order to be controlled. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
                1,
            ),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let node_selector = obj
            .pointer("/spec/template/spec/nodeSelector")
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
            .unwrap_or_else(|| "<none>".to_string());
        vec![
            name_cell(obj),
            Value::from(i(obj, "/status/desiredNumberScheduled")),
            Value::from(i(obj, "/status/currentNumberScheduled")),
            Value::from(i(obj, "/status/numberReady")),
            Value::from(i(obj, "/status/updatedNumberScheduled")),
            Value::from(i(obj, "/status/numberAvailable")),
            Value::from(node_selector),
            age_cell(obj, now),
            containers_cell(obj, "/spec/template/spec"),
            images_cell(obj, "/spec/template/spec"),
            Value::from(selector_string(obj.pointer("/spec/selector"))),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;

    #[test]
    fn defaults_and_row() {
        let st = Typed::<DaemonSet>::new();
        let mut d = json!({"metadata": {"name": "agent", "namespace": "kube-system"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "c", "image": "i"}]}}}});
        st.prepare_for_create(&mut d);
        assert_eq!(
            d["spec"]["updateStrategy"]["rollingUpdate"],
            json!({"maxUnavailable": 1, "maxSurge": 0})
        );
        assert!(st.validate(&d).is_empty());
        let row = st.row(&d, jiff::Timestamp::now());
        assert_eq!(row[6], "kubernetes.io/os=linux");
        assert_eq!(row.len(), st.columns().len());
    }
}
