//! Namespace (`namespaces`, `ns`): `spec.finalizers: [kubernetes]`, `status.phase: Active`, the
//! `kubernetes.io/metadata.name` label kept equal to the name, finalizers changed only via `/finalize`.

use k8s_openapi::api::core::v1::Namespace as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use crate::kinds::typed::{
    Kind, NameRule, age_cell, age_column, child_map, col, name_cell, name_column, s, sub_map,
};
use crate::registry::strategy::Column;

pub(crate) struct Namespace;

/// Upstream `v1.LabelMetadataName`.
const NAME_LABEL: &str = "kubernetes.io/metadata.name";

impl Kind for Namespace {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["ns"];
    const STATUS: bool = true;
    const NAME_RULE: NameRule = NameRule::Dns1123Label;
    const VERBS: &'static [&'static str] = &[
        "create", "delete", "get", "list", "patch", "update", "watch",
    ];

    fn defaults(obj: &mut Value) {
        let name = s(obj, "/metadata/name").to_string();
        if !name.is_empty() {
            let meta = child_map(obj, "metadata");
            sub_map(meta, "labels").insert(NAME_LABEL.into(), Value::from(name));
        }
    }

    fn on_create(obj: &mut Value) {
        let spec = child_map(obj, "spec");
        if spec.get("finalizers").is_none_or(Value::is_null) {
            spec.insert("finalizers".into(), json!(["kubernetes"]));
        }
        obj["status"] = json!({"phase": "Active"});
    }

    fn on_update(new: &mut Value, old: &Value) {
        let finalizers = old.pointer("/spec/finalizers").cloned();
        let spec = child_map(new, "spec");
        match finalizers {
            Some(f) => {
                spec.insert("finalizers".into(), f);
            }
            None => {
                spec.remove("finalizers");
            }
        }
    }

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        for (i, f) in obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let f = f.as_str().unwrap_or("");
            for m in skiff_k8s_core::validation::is_qualified_name(f) {
                errs.push(FieldError::invalid(
                    format!("spec.finalizers[{i}]"),
                    json!(f),
                    m,
                ));
            }
        }
        errs
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col("Status", "string", "The status of the namespace", 0),
            age_column(),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            name_cell(obj),
            Value::from(s(obj, "/status/phase")),
            age_cell(obj, now),
        ]
    }

    fn field_value(obj: &Value, field: &str) -> Option<String> {
        (field == "status.phase").then(|| s(obj, "/status/phase").to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;

    #[test]
    fn create_and_update() {
        let st = Typed::<Namespace>::new();
        let mut ns = json!({"metadata": {"name": "team-a"}});
        st.prepare_for_create(&mut ns);
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(ns["status"]["phase"], "Active");
        assert_eq!(ns["metadata"]["labels"][NAME_LABEL], "team-a");
        let mut upd = json!({"metadata": {"name": "team-a", "labels": {}}, "spec": {}});
        st.prepare_for_update(&mut upd, &ns);
        assert_eq!(upd["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(upd["status"]["phase"], "Active");
        assert_eq!(upd["metadata"]["labels"][NAME_LABEL], "team-a");
        assert_eq!(st.row(&ns, jiff::Timestamp::now())[1], "Active");
        assert_eq!(
            st.field_value(&ns, "status.phase").as_deref(),
            Some("Active")
        );
        assert!(!st.info().verbs.contains(&"deletecollection".to_string()));
    }
}
