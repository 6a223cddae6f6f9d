//! Field-rule helpers the kind files share, with upstream wording. Name, label and annotation rules come
//! from `skiff_k8s_core::validation`; what is here is what only kinds need (config keys, immutability,
//! causes rendered the way upstream renders them).

use serde_json::{Value, json};
use skiff_k8s_core::status::{FieldError, FieldErrorKind};

const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
pub(crate) use skiff_k8s_core::validation::{
    is_dns1123_label as dns1123_label, is_dns1123_subdomain as dns1123_subdomain,
};

/// `IsConfigMapKey` (ConfigMap and Secret data keys).
pub(crate) fn config_key(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 253 {
        out.push("must be no more than 253 characters".to_string());
    }
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        out.push(CONFIG_KEY_MSG.to_string());
    }
    if s == "." {
        out.push("must not be '.'".to_string());
    } else if s == ".." {
        out.push("must not be '..'".to_string());
    } else if s.starts_with("..") {
        out.push("must not start with '..'".to_string());
    }
    out
}

/// One `Invalid value` error per message.
pub(crate) fn invalid_each(path: &str, value: &str, msgs: Vec<String>) -> Vec<FieldError> {
    msgs.into_iter()
        .map(|m| FieldError::invalid(path, Value::from(value), m))
        .collect()
}

pub(crate) fn not_supported(path: &str, value: &Value, supported: &[&str]) -> FieldError {
    FieldError {
        path: path.to_string(),
        kind: FieldErrorKind::NotSupported(supported.iter().map(|s| s.to_string()).collect()),
        value: Some(value.clone()),
        detail: String::new(),
    }
}

pub(crate) fn duplicate(path: &str, value: Value) -> FieldError {
    FieldError {
        path: path.to_string(),
        kind: FieldErrorKind::Duplicate,
        value: Some(value),
        detail: String::new(),
    }
}

pub(crate) fn too_long(path: &str, detail: impl Into<String>) -> FieldError {
    FieldError {
        path: path.to_string(),
        kind: FieldErrorKind::TooLong,
        value: None,
        detail: detail.into(),
    }
}

/// `ValidateLabels` and `ValidateAnnotations` on a nested `metadata` (pod templates, PVC templates)
/// under `path` (`spec.template.metadata`).
pub(crate) fn nested_meta(meta: Option<&Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(m) = meta {
        skiff_k8s_core::validation::validate_labels(m, &format!("{path}.labels"), &mut errs);
        skiff_k8s_core::validation::validate_annotations(
            m,
            &format!("{path}.annotations"),
            &mut errs,
        );
    }
    errs
}

/// `ValidateNonnegativeField`.
pub(crate) fn non_negative(obj: &Value, ptr: &str, path: &str) -> Vec<FieldError> {
    match obj.pointer(ptr).and_then(Value::as_i64) {
        Some(v) if v < 0 => vec![FieldError::invalid(
            path,
            json!(v),
            "must be greater than or equal to 0",
        )],
        _ => Vec::new(),
    }
}

/// `field is immutable` when the value at `ptr` changed between `old` and `new`.
pub(crate) fn immutable(new: &Value, old: &Value, ptr: &str, path: &str) -> Vec<FieldError> {
    let (n, o) = (new.pointer(ptr), old.pointer(ptr));
    if n == o {
        return Vec::new();
    }
    vec![FieldError::invalid(
        path,
        n.cloned().unwrap_or(Value::Null),
        "field is immutable",
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_meta() {
        assert!(config_key("KEY_name.1").is_empty());
        assert!(!config_key("a/b").is_empty());
        assert_eq!(config_key(".."), vec!["must not be '..'".to_string()]);
        let e = nested_meta(
            Some(&json!({"labels": {"k": "bad value"}})),
            "spec.template.metadata",
        );
        assert_eq!(e[0].path, "spec.template.metadata.labels");
        assert!(
            immutable(&json!({"a": 1}), &json!({"a": 2}), "/a", "a")[0].detail
                == "field is immutable"
        );
    }
}
