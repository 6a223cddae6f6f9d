//! Secret (`secrets`): type Opaque by default, immutable type, per-type required keys, key rules.

use k8s_openapi::api::core::v1::Secret as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use super::config_map::{MAX_DATA_SIZE, immutable_data};
use crate::kinds::typed::{
    Kind, age_cell, age_column, col, default_field, len_map, name_cell, name_column, s,
};
use crate::kinds::validation::{config_key, immutable, invalid_each, too_long};
use crate::registry::strategy::Column;

pub(crate) struct Secret;

impl Kind for Secret {
    type Object = Object;

    /// `stringData` is write-only: its entries are merged into `data` (base64), winning over `data`,
    /// as the v1 conversion does upstream.
    fn defaults(obj: &mut Value) {
        use base64::Engine;
        if let Some(m) = obj.as_object_mut() {
            default_field(m, "type", "Opaque");
            if let Some(Value::Object(sd)) = m.remove("stringData") {
                let data = m.entry("data").or_insert_with(|| json!({}));
                if !data.is_object() {
                    *data = json!({});
                }
                if let Some(d) = data.as_object_mut() {
                    for (k, v) in sd {
                        let text = v.as_str().unwrap_or_default();
                        d.insert(
                            k,
                            json!(base64::engine::general_purpose::STANDARD.encode(text)),
                        );
                    }
                }
            }
        }
    }

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let mut size = 0;
        for (k, v) in obj
            .get("data")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            errs.extend(invalid_each(&format!("data[{k}]"), k, config_key(k)));
            size += v.as_str().map_or(0, |b| b.len() * 3 / 4);
        }
        if size > MAX_DATA_SIZE {
            errs.push(too_long(
                "data",
                format!("must have at most {MAX_DATA_SIZE} bytes"),
            ));
        }
        let has = |k: &str| obj.get("data").and_then(|d| d.get(k)).is_some();
        let required: &[&str] = match s(obj, "/type") {
            "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
            "kubernetes.io/dockercfg" => &[".dockercfg"],
            "kubernetes.io/tls" => &["tls.crt", "tls.key"],
            "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
            _ => &[],
        };
        for k in required {
            if !has(k) {
                errs.push(FieldError::required(format!("data[{k}]"), ""));
            }
        }
        if s(obj, "/type") == "kubernetes.io/service-account-token"
            && s(
                obj,
                "/metadata/annotations/kubernetes.io~1service-account.name",
            )
            .is_empty()
        {
            errs.push(FieldError::required(
                "metadata.annotations[kubernetes.io/service-account.name]",
                "",
            ));
        }
        if s(obj, "/type") == "kubernetes.io/basic-auth" && !has("username") && !has("password") {
            errs.push(FieldError::required("data[username]", ""));
            errs.push(FieldError::required("data[password]", ""));
        }
        errs
    }

    fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = immutable(new, old, "/type", "type");
        errs.extend(immutable_data(new, old, &["data"]));
        errs
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col("Type", "string", "The type of the secret", 0),
            col("Data", "integer", "The number of entries in the secret", 0),
            age_column(),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            name_cell(obj),
            json!(s(obj, "/type")),
            json!(len_map(obj, "/data")),
            age_cell(obj, now),
        ]
    }

    fn field_value(obj: &Value, field: &str) -> Option<String> {
        (field == "type").then(|| s(obj, "/type").to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;

    #[test]
    fn defaults_types_and_row() {
        let st = Typed::<Secret>::new();
        let (mut sec, _) = st.canonicalize(json!({"metadata": {"name": "s", "namespace": "d"}, "stringData": {"a": "b"}, "data": {"x": "eA=="}})).unwrap();
        st.prepare_for_create(&mut sec);
        assert_eq!(sec["type"], "Opaque");
        assert_eq!(sec["data"], json!({"x": "eA==", "a": "Yg=="}));
        assert!(sec.get("stringData").is_none());
        assert!(st.validate(&sec).is_empty());
        assert_eq!(
            st.row(&sec, jiff::Timestamp::now())[1..3],
            [json!("Opaque"), json!(2)]
        );
        assert_eq!(st.field_value(&sec, "type").as_deref(), Some("Opaque"));
        let tls = json!({"type": "kubernetes.io/tls", "data": {"tls.crt": ""}});
        assert_eq!(
            st.validate(&tls),
            vec![FieldError::required("data[tls.key]", "")]
        );
        let mut new = sec.clone();
        new["type"] = json!("kubernetes.io/tls");
        assert_eq!(
            st.validate_update(&new, &sec)
                .iter()
                .find(|e| e.path == "type")
                .unwrap()
                .detail,
            "field is immutable"
        );
    }
}
