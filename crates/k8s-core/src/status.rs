//! Typed API errors and their one conversion into `metav1.Status` (kube-core `reason.rs` shape).

use serde_json::Value;

/// What is wrong with one field (apimachinery `field.ErrorType`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// `FieldValueRequired`: "Required value".
    Required,
    /// `FieldValueInvalid`: "Invalid value".
    Invalid,
    /// `FieldValueNotSupported`: "Unsupported value", with the supported values.
    NotSupported(Vec<String>),
    /// `FieldValueDuplicate`: "Duplicate value".
    Duplicate,
    /// `FieldValueForbidden`: "Forbidden".
    Forbidden,
    /// `FieldValueTooLong`: "Too long".
    TooLong,
    /// `FieldValueTooMany`: "Too many".
    TooMany,
    /// `FieldValueNotFound`: "Not found".
    NotFound,
}

/// One validation failure with its JSON path (`spec.containers[0].name`), as `field.Error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub kind: FieldErrorKind,
    /// The offending value, rendered as upstream renders it (`"Foo"`, `-1`), when the kind shows one.
    pub value: Option<Value>,
    pub detail: String,
}

impl FieldError {
    pub fn required(path: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            kind: FieldErrorKind::Required,
            value: None,
            detail: detail.into(),
        }
    }
    pub fn invalid(path: impl Into<String>, value: Value, detail: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            kind: FieldErrorKind::Invalid,
            value: Some(value),
            detail: detail.into(),
        }
    }
    pub fn forbidden(path: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            kind: FieldErrorKind::Forbidden,
            value: None,
            detail: detail.into(),
        }
    }
}
