//! The authentication and authorization APIs: reviews that evaluate and answer without storing
//! anything (`SelfSubjectAccessReview`, `SubjectAccessReview`, `LocalSubjectAccessReview`,
//! `SelfSubjectRulesReview`, `TokenReview`, `SelfSubjectReview`), `serviceaccounts/token`
//! (TokenRequest), and the legacy token controller that fills ServiceAccount token Secrets.
//!
//! The HTTP layer reaches the reviews through [`crate::registry::hooks::CreateOnlyResource`] and
//! TokenRequest through [`crate::registry::hooks::SubresourceHandler`]; wire them with
//! [`access_review::access_reviews`], [`token_review::TokenReviewResource`],
//! [`self_subject_review::SelfSubjectReviewResource`] and [`token_request::TokenRequestHandler`].

use serde_json::{Value, json};

use crate::authn::UserInfo;
use crate::registry::hooks::HookError;
use crate::registry::strategy::ResourceInfo;

pub mod access_review;
pub mod root_ca_publisher;
pub mod self_subject_review;
pub mod stack;
pub mod token_controller;
pub mod token_request;
pub mod token_review;

/// Discovery facts of a create-only review resource.
pub(crate) fn review_info(group: &str, kind: &str, plural: &str, namespaced: bool) -> ResourceInfo {
    ResourceInfo {
        group: group.to_string(),
        version: "v1".to_string(),
        kind: kind.to_string(),
        plural: plural.to_string(),
        singular: kind.to_ascii_lowercase(),
        namespaced,
        short_names: Vec::new(),
        categories: Vec::new(),
        verbs: vec!["create".to_string()],
        has_status: false,
        scale: None,
    }
}

/// `authentication.k8s.io/v1` `UserInfo` (`username`, `uid`, `groups`, `extra`; empty fields omitted).
pub(crate) fn user_info_json(u: &UserInfo) -> Value {
    let mut o = json!({ "username": u.name });
    if !u.uid.is_empty() {
        o["uid"] = json!(u.uid);
    }
    if !u.groups.is_empty() {
        o["groups"] = json!(u.groups);
    }
    if !u.extra.is_empty() {
        o["extra"] = json!(u.extra);
    }
    o
}

/// Checks the body's `apiVersion`/`kind` (when given) and makes sure it is an object with a
/// `metadata` map, as the generic decoder would.
pub(crate) fn decode_body(mut body: Value, info: &ResourceInfo) -> Result<Value, HookError> {
    let Some(o) = body.as_object_mut() else {
        return Err(HookError::BadRequest(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml; expected {}",
            info.kind
        )));
    };
    let api_version = format!("{}/{}", info.group, info.version);
    if let Some(k) = o.get("kind").and_then(Value::as_str)
        && k != info.kind
    {
        return Err(HookError::BadRequest(format!(
            "{k} in version \"{}\" cannot be handled as a {}: the kind is not {}",
            info.version, info.kind, info.kind
        )));
    }
    o.insert("kind".into(), json!(info.kind));
    o.insert("apiVersion".into(), json!(api_version));
    let meta = o.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    // Reviews are not stored: upstream answers with a null creationTimestamp.
    meta["creationTimestamp"] = Value::Null;
    Ok(body)
}
