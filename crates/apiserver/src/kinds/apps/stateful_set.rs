//! StatefulSet (`statefulsets`, `sts`): upstream defaults (OrderedReady, RollingUpdate partition 0, PVC
//! retention Retain/Retain), and the rule that only replicas, template, update strategy, retention policy,
//! ordinals and minReadySeconds may change.

use k8s_openapi::api::apps::v1::StatefulSet as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use crate::kinds::core::pod_template::{
    containers_cell, default_template, images_cell, restart_policy_in, validate_replicas,
    validate_selector, validate_template,
};
use crate::kinds::typed::{
    Kind, age_cell, age_column, child_map, col, default_field, i, name_cell, name_column,
};
use crate::kinds::validation::not_supported;
use crate::registry::strategy::Column;

pub(crate) struct StatefulSet;

impl Kind for StatefulSet {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["sts"];
    const CATEGORIES: &'static [&'static str] = &["all"];
    const STATUS: bool = true;
    const SCALE: bool = true;
    const GENERATION: bool = true;

    fn defaults(obj: &mut Value) {
        let spec = child_map(obj, "spec");
        default_field(spec, "replicas", 1);
        default_field(spec, "podManagementPolicy", "OrderedReady");
        default_field(spec, "revisionHistoryLimit", 10);
        default_field(
            spec,
            "persistentVolumeClaimRetentionPolicy",
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
        );
        let us = spec.entry("updateStrategy").or_insert_with(|| json!({}));
        if let Some(us) = us.as_object_mut() {
            default_field(us, "type", "RollingUpdate");
            if us.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                let ru = us.entry("rollingUpdate").or_insert_with(|| json!({}));
                if let Some(ru) = ru.as_object_mut() {
                    default_field(ru, "partition", 0);
                }
            }
        }
        if let Some(pvcs) = spec
            .get_mut("volumeClaimTemplates")
            .and_then(Value::as_array_mut)
        {
            for p in pvcs.iter_mut() {
                let s = child_map(p, "spec");
                default_field(s, "volumeMode", "Filesystem");
                let st = child_map(p, "status");
                default_field(st, "phase", "Pending");
            }
        }
        default_template(obj, "/spec/template");
    }

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_replicas(obj);
        errs.extend(validate_selector(obj, "statefulset"));
        if let Some(t) = obj.pointer("/spec/template").filter(|t| !t.is_null()) {
            errs.extend(validate_template(t, "spec.template"));
            errs.extend(restart_policy_in(t, "spec.template", &["Always"]));
        } else {
            errs.push(FieldError::required("spec.template", ""));
        }
        let pmp = obj
            .pointer("/spec/podManagementPolicy")
            .unwrap_or(&Value::Null);
        if let Some(p) = pmp.as_str()
            && p != "OrderedReady"
            && p != "Parallel"
        {
            errs.push(not_supported(
                "spec.podManagementPolicy",
                pmp,
                &["OrderedReady", "Parallel"],
            ));
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
        let strip = |v: &Value| {
            let mut s = v.get("spec").cloned().unwrap_or(Value::Null);
            if let Some(m) = s.as_object_mut() {
                for k in [
                    "replicas",
                    "ordinals",
                    "template",
                    "updateStrategy",
                    "persistentVolumeClaimRetentionPolicy",
                    "minReadySeconds",
                ] {
                    m.remove(k);
                }
            }
            s
        };
        if strip(new) != strip(old) {
            return vec![FieldError::forbidden(
                "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            )];
        }
        Vec::new()
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col("Ready", "string", "Number of the pod with ready state", 0),
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
            age_cell(obj, now),
            containers_cell(obj, "/spec/template/spec"),
            images_cell(obj, "/spec/template/spec"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;

    #[test]
    fn defaults_and_forbidden_updates() {
        let st = Typed::<StatefulSet>::new();
        let mut s = json!({"metadata": {"name": "db", "namespace": "d"}, "spec": {"serviceName": "db", "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}});
        st.prepare_for_create(&mut s);
        assert_eq!(s["spec"]["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            s["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(
            s["spec"]["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(
            s["spec"]["volumeClaimTemplates"][0]["spec"]["volumeMode"],
            "Filesystem"
        );
        assert!(st.validate(&s).is_empty(), "{:?}", st.validate(&s));
        let mut n = s.clone();
        n["spec"]["replicas"] = json!(5);
        assert!(st.validate_update(&n, &s).is_empty());
        n["spec"]["serviceName"] = json!("other");
        assert_eq!(st.validate_update(&n, &s)[0].path, "spec");
        assert_eq!(st.row(&s, jiff::Timestamp::now())[1], "0/1");
    }
}
