//! Authentication: who is making this request. Each method is one [`Authenticator`]; the server tries
//! them in order and the first `Ok(Some(user))` wins (kube-apiserver's union authenticator).

use std::collections::BTreeMap;

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
