//! Deployment (`deployments`, `deploy`): upstream defaults (replicas 1, RollingUpdate 25%/25%, history 10,
//! progress deadline 600s), selector/template rules, immutable selector, and the READY/UP-TO-DATE printer.

use k8s_openapi::api::apps::v1::Deployment as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use crate::kinds::core::pod_template::{
    containers_cell, default_template, images_cell, restart_policy_in, selector_string,
    validate_replicas, validate_selector, validate_template,
};
use crate::kinds::typed::{
    Kind, age_cell, age_column, child_map, col, default_field, i, name_cell, name_column,
};
use crate::kinds::validation::{immutable, non_negative, not_supported};
use crate::registry::strategy::Column;

pub(crate) struct Deployment;

impl Kind for Deployment {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["deploy"];
    const CATEGORIES: &'static [&'static str] = &["all"];
    const STATUS: bool = true;
    const SCALE: bool = true;
    const GENERATION: bool = true;

    fn defaults(obj: &mut Value) {
        let spec = child_map(obj, "spec");
        default_field(spec, "replicas", 1);
        default_field(spec, "revisionHistoryLimit", 10);
        default_field(spec, "progressDeadlineSeconds", 600);
        let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
        if let Some(st) = strategy.as_object_mut() {
            default_field(st, "type", "RollingUpdate");
            if st.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                let ru = st.entry("rollingUpdate").or_insert_with(|| json!({}));
                if let Some(ru) = ru.as_object_mut() {
                    default_field(ru, "maxUnavailable", "25%");
                    default_field(ru, "maxSurge", "25%");
                }
            }
        }
        default_template(obj, "/spec/template");
    }

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_replicas(obj);
        errs.extend(validate_selector(obj, "deployment"));
        let t = obj.pointer("/spec/template").unwrap_or(&Value::Null);
        errs.extend(validate_template(t, "spec.template"));
        if !t.is_null() {
            errs.extend(restart_policy_in(t, "spec.template", &["Always"]));
        }
        let ty = obj.pointer("/spec/strategy/type").unwrap_or(&Value::Null);
        if let Some(s) = ty.as_str()
            && s != "Recreate"
            && s != "RollingUpdate"
        {
            errs.push(not_supported(
                "spec.strategy.type",
                ty,
                &["Recreate", "RollingUpdate"],
            ));
        }
        if ty.as_str() == Some("Recreate")
            && obj
                .pointer("/spec/strategy/rollingUpdate")
                .is_some_and(|v| !v.is_null())
        {
            errs.push(FieldError::forbidden(
                "spec.strategy.rollingUpdate",
                "may not be specified when strategy `type` is 'Recreate'",
            ));
        }
        errs.extend(non_negative(
            obj,
            "/spec/minReadySeconds",
            "spec.minReadySeconds",
        ));
        errs.extend(non_negative(
            obj,
            "/spec/revisionHistoryLimit",
            "spec.revisionHistoryLimit",
        ));
        if let Some(p) = obj
            .pointer("/spec/progressDeadlineSeconds")
            .and_then(Value::as_i64)
            && p <= i(obj, "/spec/minReadySeconds")
        {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                json!(p),
                "must be greater than minReadySeconds",
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
            col("Ready", "string", "Number of the pod with ready state", 0),
            col(
                "Up-to-date",
                "integer",
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
                0,
            ),
            col(
                "Available",
                "integer",
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
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
                "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
                1,
            ),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            name_cell(obj),
            Value::from(format!(
                "{}/{}",
                i(obj, "/status/readyReplicas"),
                i(obj, "/spec/replicas")
            )),
            Value::from(i(obj, "/status/updatedReplicas")),
            Value::from(i(obj, "/status/availableReplicas")),
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

    fn deploy(labels: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}}})
    }

    #[test]
    fn defaults_and_generation() {
        let st = Typed::<Deployment>::new();
        let mut d = st.canonicalize(deploy(json!({"app": "web"}))).unwrap().0;
        st.prepare_for_create(&mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert_eq!(d["metadata"]["generation"], 1);
        assert!(st.validate(&d).is_empty(), "{:?}", st.validate(&d));
        let mut old = d.clone();
        old["status"] = json!({"replicas": 1});
        let mut same = d.clone();
        st.prepare_for_update(&mut same, &old);
        assert_eq!(same["metadata"]["generation"], 1);
        assert_eq!(same["status"], json!({"replicas": 1}));
        let mut changed = d.clone();
        changed["spec"]["replicas"] = json!(3);
        st.prepare_for_update(&mut changed, &old);
        assert_eq!(changed["metadata"]["generation"], 2);
        let info = st.info();
        assert_eq!(
            (
                info.group.as_str(),
                info.plural.as_str(),
                info.short_names[0].as_str()
            ),
            ("apps", "deployments", "deploy")
        );
        assert!(info.namespaced && info.has_status && info.scale.is_some());
    }

    #[test]
    fn selector_must_match_and_is_immutable() {
        let st = Typed::<Deployment>::new();
        let e = st.validate(&deploy(json!({"app": "other"})));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].path, "spec.template.metadata.labels");
        let old = deploy(json!({"app": "web"}));
        let mut new = old.clone();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "x": "y"}});
        new["spec"]["template"]["metadata"]["labels"]["x"] = json!("y");
        let e = st.validate_update(&new, &old);
        assert_eq!(e.len(), 1);
        assert_eq!(
            (e[0].path.as_str(), e[0].detail.as_str()),
            ("spec.selector", "field is immutable")
        );
        let mut neg = old.clone();
        neg["spec"]["replicas"] = json!(-1);
        assert_eq!(
            st.validate(&neg)[0].detail,
            "must be greater than or equal to 0"
        );
    }

    #[test]
    fn row_cells() {
        let st = Typed::<Deployment>::new();
        let mut d = deploy(json!({"app": "web"}));
        d["spec"]["replicas"] = json!(3);
        d["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        d["status"] = json!({"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2});
        let row = st.row(&d, "2026-01-01T01:00:00Z".parse().unwrap());
        assert_eq!(
            row,
            vec![
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("60m"),
                json!("nginx"),
                json!("nginx:1.27"),
                json!("app=web")
            ]
        );
        assert_eq!(st.columns().len(), row.len());
    }
}
