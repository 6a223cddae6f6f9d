//! Resources that are not stored objects: create-only reviews (`SubjectAccessReview`, `TokenReview`,
//! `SelfSubjectAccessReview`, `SelfSubjectRulesReview`) and subresources with their own logic
//! (`serviceaccounts/token`, later `pods/eviction`). The HTTP layer routes POSTs on them here after
//! authentication and authorization; the implementations live next to the feature they belong to.

use serde_json::Value;
use skiff_k8s_core::status::FieldError;

use super::strategy::ResourceInfo;
use crate::authn::UserInfo;

/// The error a hook returns; the HTTP layer turns it into a `Status`.
#[derive(Debug, Clone)]
pub enum HookError {
    BadRequest(String),
    NotFound {
        resource: String,
        name: String,
    },
    Forbidden(String),
    Invalid(Vec<FieldError>),
    Internal(String),
    /// Any other API error, passed through as is (a binding's 409, an eviction's 429).
    Api(skiff_k8s_core::status::ApiError),
}

/// Who asks, and where.
pub struct HookRequest<'a> {
    pub user: &'a UserInfo,
    pub namespace: Option<&'a str>,
    /// The parent object's name, for subresources.
    pub name: Option<&'a str>,
    pub dry_run: bool,
}

/// A resource that is not stored: create-only reviews (POST returns the evaluated object) and
/// computed read-only resources (`metrics.k8s.io`: GET and LIST answer from other objects).
#[async_trait::async_trait]
pub trait CreateOnlyResource: Send + Sync + 'static {
    fn info(&self) -> &ResourceInfo;
    /// The verbs discovery shows and the HTTP layer routes here.
    fn verbs(&self) -> &'static [&'static str] {
        &["create"]
    }
    async fn create(&self, req: &HookRequest<'_>, body: Value) -> Result<Value, HookError>;
    /// GET of one object (`name`), for resources whose [`Self::verbs`] include `get`.
    async fn get(&self, _req: &HookRequest<'_>, name: &str) -> Result<Value, HookError> {
        Err(HookError::NotFound {
            resource: self.info().plural.clone(),
            name: name.to_string(),
        })
    }
    /// LIST with an optional label selector, for resources whose [`Self::verbs`] include `list`.
    async fn list(
        &self,
        _req: &HookRequest<'_>,
        _label_selector: Option<&str>,
    ) -> Result<Value, HookError> {
        Err(HookError::BadRequest(format!(
            "{} cannot be listed",
            self.info().plural
        )))
    }
}

/// A POST-able subresource of a stored resource (`serviceaccounts/token`).
#[async_trait::async_trait]
pub trait SubresourceHandler: Send + Sync + 'static {
    /// Parent resource plural and API group (`serviceaccounts`, `""`).
    fn parent(&self) -> (&str, &str);
    /// Subresource name (`token`).
    fn subresource(&self) -> &str;
    /// Kind of the request/response body for discovery (`TokenRequest`, group `authentication.k8s.io`, `v1`).
    fn kind(&self) -> (&str, &str, &str);
    async fn create(&self, req: &HookRequest<'_>, body: Value) -> Result<Value, HookError>;
}
