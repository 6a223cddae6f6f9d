//! Authorization: may this user do this verb on this resource (`authorizer.Attributes`).

use crate::authn::UserInfo;

pub mod aggregation;
pub mod bootstrap_policy;
pub mod rbac;

#[derive(Clone, Debug, Default)]
pub struct Attributes {
    pub user: UserInfo,
    /// `get list watch create update patch delete deletecollection` (or `impersonate`, `bind`, `escalate`, ...).
    /// Non-resource requests use the lower-case HTTP method (`get`).
    pub verb: String,
    pub resource_request: bool,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// Request path, for non-resource requests (`/healthz`, `/apis`).
    pub path: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Explicit deny: stop evaluating.
    Deny(String),
    /// No rule matched; the next authorizer is asked, and 403 if none allows.
    NoOpinion(String),
}

#[async_trait::async_trait]
pub trait Authorizer: Send + Sync + 'static {
    async fn authorize(&self, attrs: &Attributes) -> Decision;
}
