//! Typed API errors and their one conversion into `metav1.Status` (kube-core `reason.rs` shape).
//!
//! Every constructor mirrors one of apimachinery's `k8s.io/apimachinery/pkg/api/errors` functions
//! (`NewNotFound`, `NewInvalid`, …): same HTTP code, same `reason`, same `details` and the same message
//! wording, because kubectl and client-go print `message` verbatim and branch on `reason`/`code`.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

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
    /// `FieldValueTypeInvalid`: "Invalid value" (wrong JSON type).
    TypeInvalid,
    /// `InternalError`: "Internal error".
    Internal,
}

impl FieldErrorKind {
    /// The `StatusCause.reason` (Go `field.ErrorType` string value).
    pub fn cause_type(&self) -> &'static str {
        match self {
            Self::Required => "FieldValueRequired",
            Self::Invalid => "FieldValueInvalid",
            Self::NotSupported(_) => "FieldValueNotSupported",
            Self::Duplicate => "FieldValueDuplicate",
            Self::Forbidden => "FieldValueForbidden",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
            Self::NotFound => "FieldValueNotFound",
            Self::TypeInvalid => "FieldValueTypeInvalid",
            Self::Internal => "InternalError",
        }
    }

    /// The human words (`ErrorType.String()`).
    pub fn words(&self) -> &'static str {
        match self {
            Self::Required => "Required value",
            Self::Invalid | Self::TypeInvalid => "Invalid value",
            Self::NotSupported(_) => "Unsupported value",
            Self::Duplicate => "Duplicate value",
            Self::Forbidden => "Forbidden",
            Self::TooLong => "Too long",
            Self::TooMany => "Too many",
            Self::NotFound => "Not found",
            Self::Internal => "Internal error",
        }
    }
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
    /// `field.NotSupported`: detail is `supported values: "a", "b"`.
    pub fn not_supported(path: impl Into<String>, value: Value, supported: &[&str]) -> Self {
        let supported: Vec<String> = supported.iter().map(|s| s.to_string()).collect();
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self {
            path: path.into(),
            kind: FieldErrorKind::NotSupported(supported),
            value: Some(value),
            detail,
        }
    }
    /// `field.Duplicate`.
    pub fn duplicate(path: impl Into<String>, value: Value) -> Self {
        Self {
            path: path.into(),
            kind: FieldErrorKind::Duplicate,
            value: Some(value),
            detail: String::new(),
        }
    }
    /// `field.NotFound`.
    pub fn not_found(path: impl Into<String>, value: Value) -> Self {
        Self {
            path: path.into(),
            kind: FieldErrorKind::NotFound,
            value: Some(value),
            detail: String::new(),
        }
    }
    /// `field.TooLong`: "may not be more than N bytes" (the value is never printed).
    pub fn too_long(path: impl Into<String>, max_bytes: usize) -> Self {
        let unit = if max_bytes == 1 { "byte" } else { "bytes" };
        Self {
            path: path.into(),
            kind: FieldErrorKind::TooLong,
            value: None,
            detail: format!("may not be more than {max_bytes} {unit}"),
        }
    }
    /// `field.TooMany`: "must have at most N items", showing the actual count.
    pub fn too_many(path: impl Into<String>, actual: usize, max: usize) -> Self {
        let unit = if max == 1 { "item" } else { "items" };
        Self {
            path: path.into(),
            kind: FieldErrorKind::TooMany,
            value: Some(Value::from(actual)),
            detail: format!("must have at most {max} {unit}"),
        }
    }
    /// `field.InternalError`.
    pub fn internal(path: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            kind: FieldErrorKind::Internal,
            value: None,
            detail: detail.into(),
        }
    }

    /// `field.Error.ErrorBody()`: the message without the path, used as `StatusCause.message`.
    pub fn body(&self) -> String {
        let words = self.kind.words();
        let shows_value = !matches!(
            self.kind,
            FieldErrorKind::Required
                | FieldErrorKind::Forbidden
                | FieldErrorKind::TooLong
                | FieldErrorKind::Internal
        );
        let mut s = match (&self.value, shows_value) {
            (Some(v), true) => format!("{words}: {}", go_value(v)),
            _ => words.to_string(),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl std::fmt::Display for FieldError {
    /// `field.Error.Error()`: `path: body`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.body())
    }
}

/// Renders a bad value as Go's `%v`/`%q` would in `ErrorBody` (strings quoted, numbers bare).
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

/// Go `strconv.Quote`: printable characters kept, the rest escaped.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `schema.GroupResource.String()`: `deployments.apps`, or `pods` for the core group.
fn group_resource(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

/// The message RBAC writes when it denies a request (`authorizer` `forbiddenMessage`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    pub user: String,
    pub verb: String,
    /// Plural resource, with `/subresource` when there is one; empty for non-resource URLs.
    pub resource: String,
    pub group: String,
    /// Namespace of the request; `None` means cluster scope.
    pub namespace: Option<String>,
    /// For non-resource requests (`/healthz`), the path.
    pub path: Option<String>,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let user = go_quote(&self.user);
        if let Some(path) = &self.path {
            return write!(
                f,
                "User {user} cannot {} path {}",
                self.verb,
                go_quote(path)
            );
        }
        let (res, grp) = (go_quote(&self.resource), go_quote(&self.group));
        match &self.namespace {
            Some(ns) if !ns.is_empty() => write!(
                f,
                "User {user} cannot {} resource {res} in API group {grp} in the namespace {}",
                self.verb,
                go_quote(ns)
            ),
            _ => write!(
                f,
                "User {user} cannot {} resource {res} in API group {grp} at the cluster scope",
                self.verb
            ),
        }
    }
}

/// The detail of the resourceVersion precondition failure (`registry/generic` `OptimisticLockErrorMsg`).
pub const OPTIMISTIC_LOCK_MSG: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

/// An API error as kube-apiserver reports it. One variant per `StatusReason` we answer with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub enum ApiError {
    /// 404 `NotFound`: `pods "x" not found`.
    NotFound {
        group: String,
        resource: String,
        name: String,
    },
    /// 409 `AlreadyExists`: `pods "x" already exists`.
    AlreadyExists {
        group: String,
        resource: String,
        name: String,
    },
    /// 409 `Conflict`: `Operation cannot be fulfilled on deployments.apps "x": <detail>`.
    /// Use [`ApiError::optimistic_lock`] for the resourceVersion mismatch.
    Conflict {
        group: String,
        resource: String,
        name: String,
        detail: String,
    },
    /// 409 `Conflict` from server-side apply (`NewApplyConflict`): causes of type `FieldManagerConflict`.
    ApplyConflict {
        message: String,
        /// (cause message, field path) pairs: (`conflict with "m" using apps/v1`, `.spec.replicas`).
        causes: Vec<(String, String)>,
    },
    /// 422 `Invalid`: `Deployment.apps "x" is invalid: [a: ..., b: ...]`.
    #[doc(alias = "Unprocessable")]
    Invalid {
        group: String,
        kind: String,
        name: String,
        causes: Vec<FieldError>,
    },
    /// 422 `Invalid` with upstream's fixed wording and no causes: a JSON patch that failed to apply
    /// (`NewGenericServerResponse(422, …)`). The detail is for logs only; clients never see it.
    #[doc(alias = "NewGenericServerResponse")]
    PatchRejected(String),
    /// 400 `BadRequest` with a free message.
    BadRequest(String),
    /// 401 `Unauthorized`.
    Unauthorized,
    /// 403 `Forbidden`: `pods is forbidden: <detail>` (`pods "x" is forbidden: ...` with a name).
    Forbidden {
        group: String,
        resource: String,
        name: String,
        detail: String,
    },
    /// 405 `MethodNotAllowed`: `<action> is not supported on resources of kind "pods"`.
    #[doc(alias = "MethodNotAllowed")]
    MethodNotSupported {
        group: String,
        resource: String,
        action: String,
    },
    /// 410 `Gone` with a free message.
    Gone(String),
    /// 410 `Expired`; see [`ApiError::too_old_resource_version`].
    #[doc(alias = "ResourceExpired")]
    Expired(String),
    /// 413 `RequestEntityTooLarge`: `Request entity too large: <detail>`.
    RequestEntityTooLarge(String),
    /// 415 `UnsupportedMediaType`: lists the accepted media types.
    UnsupportedMediaType { accepted: Vec<String> },
    /// 406 `NotAcceptable`: lists the media types we can produce.
    NotAcceptable { accepted: Vec<String> },
    /// 429 `TooManyRequests`.
    TooManyRequests {
        message: String,
        retry_after_seconds: u32,
        /// `(reason, message)` causes, e.g. the eviction API's `DisruptionBudget`.
        causes: Vec<(String, String)>,
    },
    /// 504 `Timeout`: `Timeout: <detail>`.
    Timeout {
        message: String,
        retry_after_seconds: u32,
    },
    /// 500 `InternalError`: `Internal error occurred: <detail>`.
    InternalError(String),
    /// 503 `ServiceUnavailable` with a free message.
    ServiceUnavailable(String),
}

impl ApiError {
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        Self::NotFound {
            group: group.into(),
            resource: resource.into(),
            name: name.into(),
        }
    }
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        Self::AlreadyExists {
            group: group.into(),
            resource: resource.into(),
            name: name.into(),
        }
    }
    /// The resourceVersion precondition failed (update with a stale `metadata.resourceVersion`).
    pub fn optimistic_lock(group: &str, resource: &str, name: &str) -> Self {
        Self::Conflict {
            group: group.into(),
            resource: resource.into(),
            name: name.into(),
            detail: OPTIMISTIC_LOCK_MSG.into(),
        }
    }
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<FieldError>) -> Self {
        Self::Invalid {
            group: group.into(),
            kind: kind.into(),
            name: name.into(),
            causes,
        }
    }
    /// RBAC refusal: `pods is forbidden: User "x" cannot list resource "pods" in API group "" ...`.
    pub fn forbidden_by_rbac(denial: &Denial, name: &str) -> Self {
        let resource = denial.resource.split('/').next().unwrap_or_default();
        Self::Forbidden {
            group: denial.group.clone(),
            resource: resource.to_string(),
            name: name.into(),
            detail: denial.to_string(),
        }
    }
    /// A watch or list asked for a revision already compacted away.
    pub fn too_old_resource_version(requested: u64, oldest: u64) -> Self {
        Self::Expired(format!("too old resource version: {requested} ({oldest})"))
    }

    /// HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            Self::NotFound { .. } => 404,
            Self::AlreadyExists { .. } | Self::Conflict { .. } | Self::ApplyConflict { .. } => 409,
            Self::Invalid { .. } | Self::PatchRejected(_) => 422,
            Self::BadRequest(_) => 400,
            Self::Unauthorized => 401,
            Self::Forbidden { .. } => 403,
            Self::MethodNotSupported { .. } => 405,
            Self::Gone(_) | Self::Expired(_) => 410,
            Self::RequestEntityTooLarge(_) => 413,
            Self::UnsupportedMediaType { .. } => 415,
            Self::NotAcceptable { .. } => 406,
            Self::TooManyRequests { .. } => 429,
            Self::Timeout { .. } => 504,
            Self::InternalError(_) => 500,
            Self::ServiceUnavailable(_) => 503,
        }
    }

    /// `metav1.StatusReason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "NotFound",
            Self::AlreadyExists { .. } => "AlreadyExists",
            Self::Conflict { .. } | Self::ApplyConflict { .. } => "Conflict",
            Self::Invalid { .. } | Self::PatchRejected(_) => "Invalid",
            Self::BadRequest(_) => "BadRequest",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden { .. } => "Forbidden",
            Self::MethodNotSupported { .. } => "MethodNotAllowed",
            Self::Gone(_) => "Gone",
            Self::Expired(_) => "Expired",
            Self::RequestEntityTooLarge(_) => "RequestEntityTooLarge",
            Self::UnsupportedMediaType { .. } => "UnsupportedMediaType",
            Self::NotAcceptable { .. } => "NotAcceptable",
            Self::TooManyRequests { .. } => "TooManyRequests",
            Self::Timeout { .. } => "Timeout",
            Self::InternalError(_) => "InternalError",
            Self::ServiceUnavailable(_) => "ServiceUnavailable",
        }
    }

    /// `Status.message`, worded as apimachinery words it.
    pub fn message(&self) -> String {
        match self {
            Self::NotFound {
                group,
                resource,
                name,
            } => format!(
                "{} {} not found",
                group_resource(group, resource),
                go_quote(name)
            ),
            Self::AlreadyExists {
                group,
                resource,
                name,
            } => format!(
                "{} {} already exists",
                group_resource(group, resource),
                go_quote(name)
            ),
            Self::Conflict {
                group,
                resource,
                name,
                detail,
            } => format!(
                "Operation cannot be fulfilled on {} {}: {detail}",
                group_resource(group, resource),
                go_quote(name)
            ),
            Self::ApplyConflict { message, .. } => message.clone(),
            Self::PatchRejected(_) => {
                "the server rejected our request due to an error in our request".into()
            }
            Self::Invalid {
                group,
                kind,
                name,
                causes,
            } => {
                let gk = if group.is_empty() {
                    kind.clone()
                } else {
                    format!("{kind}.{group}")
                };
                // utilerrors.NewAggregate de-duplicates messages; one keeps no brackets.
                let mut msgs: Vec<String> = Vec::with_capacity(causes.len());
                for c in causes {
                    let m = c.to_string();
                    if !msgs.contains(&m) {
                        msgs.push(m);
                    }
                }
                match msgs.len() {
                    0 => format!("{gk} {} is invalid", go_quote(name)),
                    1 => format!("{gk} {} is invalid: {}", go_quote(name), msgs[0]),
                    _ => format!("{gk} {} is invalid: [{}]", go_quote(name), msgs.join(", ")),
                }
            }
            Self::BadRequest(m) | Self::Gone(m) | Self::Expired(m) => m.clone(),
            Self::ServiceUnavailable(m) => m.clone(),
            Self::Unauthorized => "Unauthorized".into(),
            Self::Forbidden {
                group,
                resource,
                name,
                detail,
            } => {
                if resource.is_empty() && group.is_empty() {
                    format!("forbidden: {detail}")
                } else if name.is_empty() {
                    format!("{} is forbidden: {detail}", group_resource(group, resource))
                } else {
                    format!(
                        "{} {} is forbidden: {detail}",
                        group_resource(group, resource),
                        go_quote(name)
                    )
                }
            }
            Self::MethodNotSupported {
                group,
                resource,
                action,
            } => format!(
                "{action} is not supported on resources of kind {}",
                go_quote(&group_resource(group, resource))
            ),
            Self::RequestEntityTooLarge(m) => format!("Request entity too large: {m}"),
            Self::UnsupportedMediaType { accepted } => format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
            Self::NotAcceptable { accepted } => format!(
                "only the following media types are accepted: {}",
                accepted.join(", ")
            ),
            Self::TooManyRequests { message, .. } => message.clone(),
            Self::Timeout { message, .. } => format!("Timeout: {message}"),
            Self::InternalError(m) => format!("Internal error occurred: {m}"),
        }
    }

    /// `Status.details`, or `None` when upstream sends none.
    fn details(&self) -> Option<Value> {
        let mut d = Map::new();
        let mut put = |k: &str, v: &str| {
            if !v.is_empty() {
                d.insert(k.into(), Value::String(v.into()));
            }
        };
        match self {
            Self::NotFound {
                group,
                resource,
                name,
            }
            | Self::AlreadyExists {
                group,
                resource,
                name,
            }
            | Self::Conflict {
                group,
                resource,
                name,
                ..
            }
            | Self::Forbidden {
                group,
                resource,
                name,
                ..
            } => {
                put("name", name);
                put("group", group);
                put("kind", resource);
            }
            Self::MethodNotSupported {
                group, resource, ..
            } => {
                put("group", group);
                put("kind", resource);
            }
            Self::Invalid {
                group,
                kind,
                name,
                causes,
            } => {
                put("name", name);
                put("group", group);
                put("kind", kind);
                let causes: Vec<Value> = causes
                    .iter()
                    .map(|c| {
                        let mut m = Map::new();
                        m.insert("reason".into(), c.kind.cause_type().into());
                        m.insert("message".into(), c.body().into());
                        if !c.path.is_empty() {
                            m.insert("field".into(), c.path.clone().into());
                        }
                        Value::Object(m)
                    })
                    .collect();
                d.insert("causes".into(), Value::Array(causes));
            }
            Self::ApplyConflict { causes, .. } => {
                let causes: Vec<Value> = causes
                    .iter()
                    .map(|(message, field)| {
                        json!({"reason": "FieldManagerConflict", "message": message, "field": field})
                    })
                    .collect();
                d.insert("causes".into(), Value::Array(causes));
            }
            Self::InternalError(m) => {
                d.insert("causes".into(), json!([{ "message": m }]));
            }
            Self::TooManyRequests {
                retry_after_seconds,
                causes,
                ..
            } => {
                if !causes.is_empty() {
                    let causes: Vec<Value> = causes
                        .iter()
                        .map(|(reason, message)| json!({"reason": reason, "message": message}))
                        .collect();
                    d.insert("causes".into(), Value::Array(causes));
                }
                if *retry_after_seconds > 0 {
                    d.insert("retryAfterSeconds".into(), (*retry_after_seconds).into());
                }
            }
            Self::Timeout {
                retry_after_seconds,
                ..
            } => {
                if *retry_after_seconds > 0 {
                    d.insert("retryAfterSeconds".into(), (*retry_after_seconds).into());
                }
            }
            // Upstream sends an empty, non-nil details object here.
            Self::PatchRejected(_) => return Some(json!({})),
            _ => return None,
        }
        if d.is_empty() {
            None
        } else {
            Some(Value::Object(d))
        }
    }

    /// The full `metav1.Status` body, fields in the order kube-apiserver writes them.
    pub fn to_status(&self) -> Value {
        let mut s = Map::new();
        s.insert("kind".into(), "Status".into());
        s.insert("apiVersion".into(), "v1".into());
        s.insert("metadata".into(), json!({}));
        s.insert("status".into(), "Failure".into());
        s.insert("message".into(), self.message().into());
        s.insert("reason".into(), self.reason().into());
        if let Some(d) = self.details() {
            s.insert("details".into(), d);
        }
        s.insert("code".into(), self.code().into());
        Value::Object(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_error_rendering_matches_apimachinery() {
        let cases: Vec<(FieldError, &str)> = vec![
            (
                FieldError::invalid(
                    "spec.replicas",
                    json!(-1),
                    "must be greater than or equal to 0",
                ),
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                FieldError::invalid("metadata.name", json!("Foo"), "bad"),
                "metadata.name: Invalid value: \"Foo\": bad",
            ),
            (
                FieldError::required("metadata.name", "name or generateName is required"),
                "metadata.name: Required value: name or generateName is required",
            ),
            (
                FieldError::required("spec.selector", ""),
                "spec.selector: Required value",
            ),
            (
                FieldError::forbidden("spec.x", "may not be set"),
                "spec.x: Forbidden: may not be set",
            ),
            (
                FieldError::not_supported(
                    "spec.restartPolicy",
                    json!("Sometimes"),
                    &["Always", "Never"],
                ),
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\"",
            ),
            (
                FieldError::duplicate("spec.ports[1].name", json!("http")),
                "spec.ports[1].name: Duplicate value: \"http\"",
            ),
            (
                FieldError::too_long("metadata.annotations", 262144),
                "metadata.annotations: Too long: may not be more than 262144 bytes",
            ),
            (
                FieldError::too_many("spec.x", 5, 1),
                "spec.x: Too many: 5: must have at most 1 item",
            ),
            (
                FieldError::invalid("a", Value::Null, "x"),
                "a: Invalid value: null: x",
            ),
            (
                FieldError::invalid("a", json!(true), "x"),
                "a: Invalid value: true: x",
            ),
            (
                FieldError::invalid("a", json!("q\"\n"), "x"),
                "a: Invalid value: \"q\\\"\\n\": x",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn invalid_status_single_and_many_causes() {
        let one = ApiError::invalid(
            "apps",
            "Deployment",
            "x",
            vec![FieldError::invalid(
                "spec.replicas",
                json!(-1),
                "must be greater than or equal to 0",
            )],
        );
        assert_eq!(
            one.message(),
            "Deployment.apps \"x\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        let two = ApiError::invalid(
            "",
            "Pod",
            "p",
            vec![
                FieldError::required("spec.containers", ""),
                FieldError::required("spec.containers", ""),
                FieldError::invalid("metadata.name", json!("P"), "bad"),
            ],
        );
        assert_eq!(
            two.message(),
            "Pod \"p\" is invalid: [spec.containers: Required value, metadata.name: Invalid value: \"P\": bad]"
        );
        let s = two.to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["reason"], "Invalid");
        assert_eq!(s["details"]["kind"], "Pod");
        assert!(s["details"].get("group").is_none());
        assert_eq!(s["details"]["causes"].as_array().unwrap().len(), 3);
        assert_eq!(
            s["details"]["causes"][2],
            json!({"reason": "FieldValueInvalid", "message": "Invalid value: \"P\": bad", "field": "metadata.name"})
        );
    }

    #[test]
    fn status_shape_and_codes() {
        let cases: Vec<(ApiError, u16, &str, &str)> = vec![
            (
                ApiError::not_found("", "pods", "x"),
                404,
                "NotFound",
                "pods \"x\" not found",
            ),
            (
                ApiError::already_exists("apps", "deployments", "x"),
                409,
                "AlreadyExists",
                "deployments.apps \"x\" already exists",
            ),
            (
                ApiError::optimistic_lock("apps", "deployments", "x"),
                409,
                "Conflict",
                "Operation cannot be fulfilled on deployments.apps \"x\": the object has been modified; please apply your changes to the latest version and try again",
            ),
            (
                ApiError::forbidden_by_rbac(
                    &Denial {
                        user: "x".into(),
                        verb: "list".into(),
                        resource: "pods".into(),
                        group: "".into(),
                        namespace: Some("default".into()),
                        path: None,
                    },
                    "",
                ),
                403,
                "Forbidden",
                "pods is forbidden: User \"x\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"",
            ),
            (
                ApiError::forbidden_by_rbac(
                    &Denial {
                        user: "x".into(),
                        verb: "get".into(),
                        resource: "nodes/proxy".into(),
                        group: "".into(),
                        namespace: None,
                        path: None,
                    },
                    "n1",
                ),
                403,
                "Forbidden",
                "nodes \"n1\" is forbidden: User \"x\" cannot get resource \"nodes/proxy\" in API group \"\" at the cluster scope",
            ),
            (
                ApiError::forbidden_by_rbac(
                    &Denial {
                        user: "x".into(),
                        verb: "get".into(),
                        resource: "".into(),
                        group: "".into(),
                        namespace: None,
                        path: Some("/healthz".into()),
                    },
                    "",
                ),
                403,
                "Forbidden",
                "forbidden: User \"x\" cannot get path \"/healthz\"",
            ),
            (
                ApiError::MethodNotSupported {
                    group: "".into(),
                    resource: "bindings".into(),
                    action: "list".into(),
                },
                405,
                "MethodNotAllowed",
                "list is not supported on resources of kind \"bindings\"",
            ),
            (
                ApiError::too_old_resource_version(5, 10),
                410,
                "Expired",
                "too old resource version: 5 (10)",
            ),
            (
                ApiError::UnsupportedMediaType {
                    accepted: vec![
                        "application/json-patch+json".into(),
                        "application/merge-patch+json".into(),
                    ],
                },
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json",
            ),
            (
                ApiError::NotAcceptable {
                    accepted: vec!["application/json".into()],
                },
                406,
                "NotAcceptable",
                "only the following media types are accepted: application/json",
            ),
            (ApiError::Unauthorized, 401, "Unauthorized", "Unauthorized"),
            (
                ApiError::InternalError("boom".into()),
                500,
                "InternalError",
                "Internal error occurred: boom",
            ),
            (
                ApiError::Timeout {
                    message: "request did not complete within 60s".into(),
                    retry_after_seconds: 2,
                },
                504,
                "Timeout",
                "Timeout: request did not complete within 60s",
            ),
            (
                ApiError::RequestEntityTooLarge("limit is 3145728".into()),
                413,
                "RequestEntityTooLarge",
                "Request entity too large: limit is 3145728",
            ),
        ];
        for (err, code, reason, msg) in cases {
            let s = err.to_status();
            assert_eq!(err.code(), code, "{err:?}");
            assert_eq!(s["code"], code);
            assert_eq!(s["reason"], reason);
            assert_eq!(s["message"], msg);
            assert_eq!(s["status"], "Failure");
            assert_eq!(s["apiVersion"], "v1");
            assert_eq!(err.to_string(), msg);
        }
    }

    #[test]
    fn details_follow_upstream() {
        let s = ApiError::not_found("apps", "deployments", "web").to_status();
        assert_eq!(
            s["details"],
            json!({"name": "web", "group": "apps", "kind": "deployments"})
        );
        let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "kind",
                "apiVersion",
                "metadata",
                "status",
                "message",
                "reason",
                "details",
                "code"
            ]
        );
        assert!(
            ApiError::BadRequest("x".into())
                .to_status()
                .get("details")
                .is_none()
        );
        let t = ApiError::TooManyRequests {
            message: "slow down".into(),
            retry_after_seconds: 1,
            causes: vec![("DisruptionBudget".into(), "needs 2".into())],
        }
        .to_status();
        assert_eq!(t["details"]["retryAfterSeconds"], 1);
        assert_eq!(t["details"]["causes"][0]["reason"], "DisruptionBudget");
        assert_eq!(t["details"]["causes"][0]["message"], "needs 2");
        let i = ApiError::InternalError("boom".into()).to_status();
        assert_eq!(i["details"]["causes"][0]["message"], "boom");
    }
}
