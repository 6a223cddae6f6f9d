//! PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7396) and strategic merge patch,
//! each turning its failures into the `Status` kube-apiserver answers with
//! (`staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go`).
//!
//! Server-side apply (`application/apply-patch+yaml`) lives in [`crate::apply`].

pub mod json;
pub mod merge;
pub mod strategic;

use serde_json::Value;

use crate::status::ApiError;

/// The PATCH flavours, by `Content-Type` (`types.PatchType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// Parses a `Content-Type` header value (parameters such as `; charset=utf-8` are ignored).
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or_default().trim();
        match base.to_ascii_lowercase().as_str() {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" => Some(Self::Apply),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json-patch+json",
            Self::Merge => "application/merge-patch+json",
            Self::Strategic => "application/strategic-merge-patch+json",
            Self::Apply => "application/apply-patch+yaml",
        }
    }

    /// The patch types a kind accepts, in upstream's order; custom resources lack strategic.
    pub fn accepted_for(group: &str, kind: &str) -> Vec<PatchType> {
        let mut v = vec![Self::Json, Self::Merge];
        if crate::patch_meta::supports_strategic_merge(group, kind) {
            v.push(Self::Strategic);
        }
        v.push(Self::Apply);
        v
    }

    /// The 415 for a content type this kind does not accept.
    pub fn unsupported(group: &str, kind: &str) -> ApiError {
        ApiError::UnsupportedMediaType {
            accepted: Self::accepted_for(group, kind)
                .into_iter()
                .map(|t| t.content_type().to_string())
                .collect(),
        }
    }
}

/// Applies a JSON, merge or strategic patch to `original` for an object of `group`/`kind`.
/// Apply patches go through [`crate::apply`] instead and are refused here with 415.
pub fn apply_patch(
    original: &Value,
    patch_type: PatchType,
    patch: &Value,
    group: &str,
    kind: &str,
) -> Result<Value, ApiError> {
    match patch_type {
        PatchType::Json => json::apply(original, patch),
        PatchType::Merge => merge::apply(original, patch),
        PatchType::Strategic => match crate::patch_meta::schema_for(group, kind) {
            Some(schema) => strategic::apply(original, patch, schema),
            None => Err(PatchType::unsupported(group, kind)),
        },
        PatchType::Apply => Err(PatchType::unsupported(group, kind)),
    }
}

/// Go's name for a JSON value's type in `json: cannot unmarshal X into …` messages.
pub(crate) fn go_json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types() {
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
        for t in [
            PatchType::Json,
            PatchType::Merge,
            PatchType::Strategic,
            PatchType::Apply,
        ] {
            assert_eq!(PatchType::from_content_type(t.content_type()), Some(t));
        }
    }

    #[test]
    fn strategic_refused_for_custom_resources() {
        let err = apply_patch(
            &json!({}),
            PatchType::Strategic,
            &json!({}),
            "example.com",
            "Widget",
        )
        .unwrap_err();
        assert_eq!(err.code(), 415);
        assert_eq!(
            err.message(),
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
        );
        let ok = apply_patch(
            &json!({"data": {"a": "1"}}),
            PatchType::Strategic,
            &json!({"data": {"b": "2"}}),
            "",
            "ConfigMap",
        )
        .unwrap();
        assert_eq!(ok, json!({"data": {"a": "1", "b": "2"}}));
    }
}
