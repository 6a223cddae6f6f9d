//! A slot for bearer tokens of other kinds, recognised by prefix: the EKS layer plugs its
//! `k8s-aws-v1.` (presigned STS GetCallerIdentity) verifier in here without the apiserver knowing AWS.

use std::sync::Arc;

use super::{Authenticator, AuthnError, AuthnRequest, UserInfo, bearer_token};

/// Verifies one kind of bearer token. `Ok(None)`: not recognised (the next authenticator is tried).
#[async_trait::async_trait]
pub trait TokenAuthenticator: Send + Sync + 'static {
    async fn authenticate_token(&self, token: &str) -> Result<Option<UserInfo>, AuthnError>;
}

/// Routes `Authorization: Bearer <prefix>...` to a [`TokenAuthenticator`]; other requests are not
/// its business.
pub struct PrefixedTokenAuthenticator {
    prefix: String,
    inner: Arc<dyn TokenAuthenticator>,
}

impl PrefixedTokenAuthenticator {
    pub fn new(prefix: impl Into<String>, inner: Arc<dyn TokenAuthenticator>) -> Self {
        Self {
            prefix: prefix.into(),
            inner,
        }
    }

    /// The verifier for a bare token (TokenReview reuses it).
    pub async fn authenticate_token(&self, token: &str) -> Result<Option<UserInfo>, AuthnError> {
        if !token.starts_with(&self.prefix) {
            return Ok(None);
        }
        Ok(self
            .inner
            .authenticate_token(token)
            .await?
            .map(super::with_authenticated_group))
    }
}

#[async_trait::async_trait]
impl Authenticator for PrefixedTokenAuthenticator {
    async fn authenticate(&self, req: &AuthnRequest<'_>) -> Result<Option<UserInfo>, AuthnError> {
        match bearer_token(req.headers) {
            Some(token) => self.authenticate_token(token).await,
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    #[async_trait::async_trait]
    impl TokenAuthenticator for Fixed {
        async fn authenticate_token(&self, token: &str) -> Result<Option<UserInfo>, AuthnError> {
            if token == "k8s-aws-v1.good" {
                Ok(Some(UserInfo {
                    name: "arn:aws:iam::000000000000:root".into(),
                    ..Default::default()
                }))
            } else {
                Err(AuthnError("bad signature".into()))
            }
        }
    }

    fn headers(v: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[tokio::test]
    async fn routes_by_prefix_only() {
        let a = PrefixedTokenAuthenticator::new("k8s-aws-v1.", Arc::new(Fixed));
        let auth = |h: &http::HeaderMap| {
            let req = AuthnRequest {
                headers: h,
                peer_certificates: None,
            };
            let fut = a.authenticate(&req);
            futures::executor::block_on(fut)
        };
        let u = auth(&headers("Bearer k8s-aws-v1.good")).unwrap().unwrap();
        assert_eq!(u.groups, vec!["system:authenticated"]);
        assert!(auth(&headers("bearer k8s-aws-v1.bad")).is_err());
        assert_eq!(auth(&headers("Bearer eyJhbGciOi.x.y")).unwrap(), None);
        assert_eq!(auth(&headers("Basic abc")).unwrap(), None);
        assert_eq!(auth(&http::HeaderMap::new()).unwrap(), None);
    }
}
