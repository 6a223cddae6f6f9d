//! ConfigMap (`configmaps`, `cm`): key rules, the 1 MiB limit, and `immutable: true`.

use k8s_openapi::api::core::v1::ConfigMap as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use crate::kinds::typed::{Kind, age_cell, age_column, col, len_map, name_cell, name_column};
use crate::kinds::validation::{config_key, invalid_each, too_long};
use crate::registry::strategy::Column;

pub(crate) struct ConfigMap;

/// apimachinery `MaxSecretSize`, also the ConfigMap limit.
pub(crate) const MAX_DATA_SIZE: usize = 1024 * 1024;

impl Kind for ConfigMap {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["cm"];

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let mut size = 0;
        for field in ["data", "binaryData"] {
            for (k, v) in obj
                .get(field)
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                errs.extend(invalid_each(&format!("{field}[{k}]"), k, config_key(k)));
                size += v.as_str().map_or(0, str::len);
                if field == "binaryData"
                    && obj
                        .pointer(&format!(
                            "/data/{}",
                            k.replace('~', "~0").replace('/', "~1")
                        ))
                        .is_some()
                {
                    errs.push(FieldError::invalid(
                        format!("{field}[{k}]"),
                        json!(k),
                        "duplicate of key present in data",
                    ));
                }
            }
        }
        if size > MAX_DATA_SIZE {
            errs.push(too_long(
                "",
                format!("must have at most {MAX_DATA_SIZE} bytes"),
            ));
        }
        errs
    }

    fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
        immutable_data(new, old, &["data", "binaryData"])
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col("Data", "integer", "Number of data entries", 0),
            age_column(),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            name_cell(obj),
            Value::from(len_map(obj, "/data") + len_map(obj, "/binaryData")),
            age_cell(obj, now),
        ]
    }
}

/// The `immutable: true` rule ConfigMaps and Secrets share.
pub(crate) fn immutable_data(new: &Value, old: &Value, fields: &[&str]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return errs;
    }
    if new.get("immutable").and_then(Value::as_bool) != Some(true) {
        errs.push(FieldError::forbidden(
            "immutable",
            "field is immutable when `immutable` is set",
        ));
    }
    for f in fields {
        if new.get(*f) != old.get(*f) {
            errs.push(FieldError::forbidden(
                *f,
                "field is immutable when `immutable` is set",
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;

    #[test]
    fn keys_immutable_and_row() {
        let st = Typed::<ConfigMap>::new();
        let cm = json!({"metadata": {"name": "c", "namespace": "d"}, "data": {"a.b": "1", "bad/key": "2"}, "binaryData": {"x": "AA=="}});
        let e = st.validate(&cm);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].path, "data[bad/key]");
        assert_eq!(st.row(&cm, jiff::Timestamp::now())[1], 3);
        let old = json!({"immutable": true, "data": {"a": "1"}});
        let new = json!({"immutable": true, "data": {"a": "2"}});
        let e = st.validate_update(&new, &old);
        assert_eq!(e.last().unwrap().path, "data");
        assert_eq!(
            e.last().unwrap().detail,
            "field is immutable when `immutable` is set"
        );
    }
}
