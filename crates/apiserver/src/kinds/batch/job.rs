//! Job (`jobs`): upstream defaults (parallelism/completions 1, backoffLimit 6, NonIndexed, suspend false),
//! the generated selector with `batch.kubernetes.io/controller-uid` / `job-name` labels, the immutable
//! selector/template, and the STATUS/COMPLETIONS/DURATION printer.

use k8s_openapi::api::batch::v1::Job as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use crate::kinds::core::pod_template::{
    containers_cell, default_template, images_cell, restart_policy_in, selector_string,
    validate_selector, validate_template,
};
use crate::kinds::typed::{
    Kind, age_cell, age_column, arr, child_map, col, default_field, i, meta_mut, name_cell,
    name_column, s, sub_map,
};
use crate::kinds::validation::{immutable, non_negative, not_supported};
use crate::registry::strategy::Column;

pub(crate) struct Job;

const UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
const NAME_LABEL: &str = "batch.kubernetes.io/job-name";

impl Kind for Job {
    type Object = Object;
    const CATEGORIES: &'static [&'static str] = &["all"];
    const STATUS: bool = true;
    const GENERATION: bool = true;

    fn defaults(obj: &mut Value) {
        let had_restart = obj
            .pointer("/spec/template/spec/restartPolicy")
            .is_some_and(|v| !v.is_null());
        let spec = child_map(obj, "spec");
        if spec.get("completions").is_none_or(Value::is_null)
            && spec.get("parallelism").is_none_or(Value::is_null)
        {
            spec.insert("completions".into(), json!(1));
        }
        default_field(spec, "parallelism", 1);
        if spec
            .get("backoffLimitPerIndex")
            .is_some_and(|v| !v.is_null())
        {
            default_field(spec, "backoffLimit", i32::MAX);
        } else {
            default_field(spec, "backoffLimit", 6);
        }
        default_field(spec, "completionMode", "NonIndexed");
        default_field(spec, "suspend", false);
        default_field(spec, "manualSelector", false);
        if spec.get("podFailurePolicy").is_none_or(Value::is_null) {
            default_field(spec, "podReplacementPolicy", "TerminatingOrFailed");
        }
        default_template(obj, "/spec/template");
        // A Job's template has no restartPolicy default: upstream asks the user to choose.
        if !had_restart
            && let Some(t) = obj
                .pointer_mut("/spec/template/spec")
                .and_then(Value::as_object_mut)
        {
            t.remove("restartPolicy");
        }
    }

    /// The generated selector needs the uid: set one here when the registry has not yet.
    fn on_create(obj: &mut Value) {
        if obj.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true) {
            return;
        }
        let meta = meta_mut(obj);
        let uid = match meta.get("uid").and_then(Value::as_str) {
            Some(u) if !u.is_empty() => u.to_string(),
            _ => {
                let u = uuid::Uuid::new_v4().to_string();
                meta.insert("uid".into(), Value::from(u.clone()));
                u
            }
        };
        let name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let spec = child_map(obj, "spec");
        if spec.get("selector").is_none_or(Value::is_null) {
            spec.insert("selector".into(), json!({"matchLabels": {UID_LABEL: uid}}));
        }
        if let Some(t) = obj.pointer_mut("/spec/template")
            && t.is_object()
        {
            let labels = sub_map(child_map(t, "metadata"), "labels");
            for (k, v) in [
                (UID_LABEL, &uid),
                ("controller-uid", &uid),
                (NAME_LABEL, &name),
                ("job-name", &name),
            ] {
                labels.entry(k).or_insert_with(|| Value::from(v.as_str()));
            }
        }
    }

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        for (ptr, path) in [
            ("/spec/parallelism", "spec.parallelism"),
            ("/spec/completions", "spec.completions"),
            ("/spec/backoffLimit", "spec.backoffLimit"),
            ("/spec/activeDeadlineSeconds", "spec.activeDeadlineSeconds"),
            (
                "/spec/ttlSecondsAfterFinished",
                "spec.ttlSecondsAfterFinished",
            ),
        ] {
            errs.extend(non_negative(obj, ptr, path));
        }
        errs.extend(validate_selector(obj, "job"));
        match obj.pointer("/spec/template").filter(|t| !t.is_null()) {
            Some(t) => {
                errs.extend(validate_template(t, "spec.template"));
                errs.extend(restart_policy_in(
                    t,
                    "spec.template",
                    &["OnFailure", "Never"],
                ));
            }
            None => errs.push(FieldError::required("spec.template", "")),
        }
        let mode = obj.pointer("/spec/completionMode").unwrap_or(&Value::Null);
        if let Some(m) = mode.as_str()
            && m != "NonIndexed"
            && m != "Indexed"
        {
            errs.push(not_supported(
                "spec.completionMode",
                mode,
                &["NonIndexed", "Indexed"],
            ));
        }
        if mode.as_str() == Some("Indexed")
            && obj.pointer("/spec/completions").is_none_or(Value::is_null)
        {
            errs.push(FieldError::required(
                "spec.completions",
                "when completion mode is Indexed",
            ));
        }
        errs
    }

    fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = immutable(new, old, "/spec/selector", "spec.selector");
        // Only scheduling directives of a suspended job may change; the rest of the template is fixed.
        errs.extend(immutable(new, old, "/spec/template", "spec.template"));
        errs.extend(immutable(
            new,
            old,
            "/spec/completionMode",
            "spec.completionMode",
        ));
        if s(new, "/spec/completionMode") != "Indexed" {
            errs.extend(immutable(new, old, "/spec/completions", "spec.completions"));
        }
        errs
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col("Status", "string", "Status of the job.", 0),
            col(
                "Completions",
                "string",
                "The completion status of the job.",
                0,
            ),
            col(
                "Duration",
                "string",
                "Time required to complete the job.",
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
                "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
                1,
            ),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let succeeded = i(obj, "/status/succeeded");
        let completions = match obj.pointer("/spec/completions").and_then(Value::as_i64) {
            Some(c) => format!("{succeeded}/{c}"),
            None => {
                let p = i(obj, "/spec/parallelism");
                if p > 1 {
                    format!("{succeeded}/1 of {p}")
                } else {
                    format!("{succeeded}/1")
                }
            }
        };
        let ts = |p: &str| {
            obj.pointer(p)
                .and_then(Value::as_str)
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        };
        let duration = match (ts("/status/startTime"), ts("/status/completionTime")) {
            (None, _) => String::new(),
            (Some(st), None) => {
                crate::registry::human_duration((now.as_second() - st.as_second()).max(0))
            }
            (Some(st), Some(ct)) => {
                crate::registry::human_duration((ct.as_second() - st.as_second()).max(0))
            }
        };
        vec![
            name_cell(obj),
            Value::from(job_status(obj)),
            Value::from(completions),
            Value::from(duration),
            age_cell(obj, now),
            containers_cell(obj, "/spec/template/spec"),
            images_cell(obj, "/spec/template/spec"),
            Value::from(selector_string(obj.pointer("/spec/selector"))),
        ]
    }

    fn field_value(obj: &Value, field: &str) -> Option<String> {
        (field == "status.successful").then(|| i(obj, "/status/succeeded").to_string())
    }
}

/// Upstream's job STATUS cell: the first true terminal-ish condition, else Running.
fn job_status(obj: &Value) -> &'static str {
    let conds = arr(obj, "/status/conditions");
    let is_true = |t: &str| {
        conds.iter().any(|c| {
            c.get("type").and_then(Value::as_str) == Some(t)
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
    };
    if is_true("Complete") {
        "Complete"
    } else if is_true("Failed") {
        "Failed"
    } else if obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        "Terminating"
    } else if is_true("FailureTarget") {
        "FailureTarget"
    } else if is_true("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else if is_true("Suspended") {
        "Suspended"
    } else {
        "Running"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;

    fn job() -> Value {
        json!({"metadata": {"name": "pi", "namespace": "d", "uid": "u-1"}, "spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl:5.34"}]}}}})
    }

    #[test]
    fn defaults_and_generated_selector() {
        let st = Typed::<Job>::new();
        let mut j = st.canonicalize(job()).unwrap().0;
        st.prepare_for_create(&mut j);
        let spec = &j["spec"];
        assert_eq!(
            (
                spec["completions"].clone(),
                spec["parallelism"].clone(),
                spec["backoffLimit"].clone()
            ),
            (json!(1), json!(1), json!(6))
        );
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["selector"], json!({"matchLabels": {UID_LABEL: "u-1"}}));
        let labels = &spec["template"]["metadata"]["labels"];
        assert_eq!(labels[NAME_LABEL], "pi");
        assert_eq!(labels["controller-uid"], "u-1");
        assert!(st.validate(&j).is_empty(), "{:?}", st.validate(&j));
        let mut changed = j.clone();
        changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5.36");
        assert_eq!(st.validate_update(&changed, &j)[0].path, "spec.template");
    }

    #[test]
    fn restart_policy_required() {
        let st = Typed::<Job>::new();
        let mut j = job();
        j["spec"]["template"]["spec"]
            .as_object_mut()
            .unwrap()
            .remove("restartPolicy");
        st.prepare_for_create(&mut j);
        let e: Vec<_> = st
            .validate(&j)
            .into_iter()
            .filter(|e| e.path == "spec.template.spec.restartPolicy")
            .collect();
        assert_eq!(e[0].detail, "valid values: \"OnFailure\", \"Never\"");
    }

    #[test]
    fn row_cells() {
        let st = Typed::<Job>::new();
        let mut j = job();
        j["spec"]["completions"] = json!(1);
        j["status"] = json!({"succeeded": 1, "startTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T00:00:07Z",
            "conditions": [{"type": "Complete", "status": "True"}]});
        let row = st.row(&j, "2026-01-01T00:01:00Z".parse().unwrap());
        assert_eq!(row[1..4], [json!("Complete"), json!("1/1"), json!("7s")]);
        assert_eq!(
            st.field_value(&j, "status.successful").as_deref(),
            Some("1")
        );
    }
}
