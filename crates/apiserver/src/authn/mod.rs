//! Authentication: who is making this request. Each method is one [`Authenticator`]; the server tries
//! them in order and the first `Ok(Some(user))` wins (kube-apiserver's union authenticator).

use std::collections::BTreeMap;

pub mod bearer;
pub mod bootstrap_token;
pub mod service_account_token;
pub mod token_hook;
pub mod x509;

/// Group every authenticated user carries (`user.AllAuthenticated`).
pub const ALL_AUTHENTICATED: &str = "system:authenticated";
/// Group of requests no authenticator claimed (`user.AllUnauthenticated`).
pub const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
/// The superuser group RBAC never denies (`user.SystemPrivilegedGroup`).
pub const SYSTEM_MASTERS: &str = "system:masters";

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, as
/// apiserver's bearertoken authenticator), or None when there is no such header or it is empty.
pub fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

/// Adds `system:authenticated` unless present (the apiserver's `AuthenticatedGroupAdder`).
pub fn with_authenticated_group(mut user: UserInfo) -> UserInfo {
    if !user.groups.iter().any(|g| g == ALL_AUTHENTICATED) {
        user.groups.push(ALL_AUTHENTICATED.to_string());
    }
    user
}

/// `user.Info`: what RBAC and audit see.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// What an authenticator may look at.
pub struct AuthnRequest<'a> {
    pub headers: &'a http::HeaderMap,
    /// The verified TLS client chain, leaf first (None when the client sent no certificate).
    pub peer_certificates: Option<&'a [rustls_pki_types::CertificateDer<'static>]>,
}

/// A credential was presented but is not valid: 401 Unauthorized. (`Ok(None)` means "not my kind of
/// credential", and the next authenticator is tried.)
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct AuthnError(pub String);

#[async_trait::async_trait]
pub trait Authenticator: Send + Sync + 'static {
    async fn authenticate(&self, req: &AuthnRequest<'_>) -> Result<Option<UserInfo>, AuthnError>;
}

/// Store key of a Kubernetes object (design.md §4): the core group's segment is `core`;
/// cluster-scoped objects have no namespace segment.
pub fn object_key(
    cluster_id: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
    name: &str,
) -> String {
    let group = if group.is_empty() { "core" } else { group };
    match namespace {
        Some(ns) => format!("/k8s/{cluster_id}/{group}/{resource}/{ns}/{name}"),
        None => format!("/k8s/{cluster_id}/{group}/{resource}/{name}"),
    }
}

/// Reads one stored object as JSON; a value that is not JSON is an error, not an absence.
pub(crate) async fn get_object(
    store: &dyn skiff_store::Store,
    key: &str,
) -> Result<Option<(serde_json::Value, skiff_store::Revision)>, String> {
    let Some(kv) = store.get(key).await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let v = serde_json::from_slice(&kv.value).map_err(|e| format!("decoding {key}: {e}"))?;
    Ok(Some((v, kv.mod_revision)))
}
