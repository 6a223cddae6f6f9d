//! All bearer-token authenticators behind one `Authorization: Bearer` check (apiserver's
//! `bearertoken.Authenticator` over a token union): a token that none of them accepts is a 401
//! ("invalid bearer token"), never a silent fall back to `system:anonymous`.

use std::sync::Arc;

use super::{Authenticator, AuthnError, AuthnRequest, UserInfo, bearer_token};

pub struct BearerTokenAuthenticator {
    tokens: Vec<Arc<dyn Authenticator>>,
}

impl BearerTokenAuthenticator {
    /// `tokens`: ServiceAccount JWTs, bootstrap tokens, the EKS token hook, … in the order tried.
    pub fn new(tokens: Vec<Arc<dyn Authenticator>>) -> Self {
        Self { tokens }
    }
}

#[async_trait::async_trait]
impl Authenticator for BearerTokenAuthenticator {
    async fn authenticate(&self, req: &AuthnRequest<'_>) -> Result<Option<UserInfo>, AuthnError> {
        if bearer_token(req.headers).is_none() {
            return Ok(None);
        }
        // Union: the first that accepts wins, even if an earlier one rejected the token.
        let mut first_err = None;
        for t in &self.tokens {
            match t.authenticate(req).await {
                Ok(Some(u)) => return Ok(Some(u)),
                Ok(None) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or_else(|| AuthnError("invalid bearer token".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Accept(&'static str);
    #[async_trait::async_trait]
    impl Authenticator for Accept {
        async fn authenticate(
            &self,
            req: &AuthnRequest<'_>,
        ) -> Result<Option<UserInfo>, AuthnError> {
            Ok(
                (bearer_token(req.headers) == Some(self.0)).then(|| UserInfo {
                    name: self.0.into(),
                    ..Default::default()
                }),
            )
        }
    }
    struct Reject;
    #[async_trait::async_trait]
    impl Authenticator for Reject {
        async fn authenticate(&self, _: &AuthnRequest<'_>) -> Result<Option<UserInfo>, AuthnError> {
            Err(AuthnError("Token has expired.".into()))
        }
    }

    #[tokio::test]
    async fn unclaimed_tokens_are_errors_and_missing_tokens_are_not() {
        let a = BearerTokenAuthenticator::new(vec![Arc::new(Reject), Arc::new(Accept("good"))]);
        let run = |v: Option<&str>| {
            let mut h = http::HeaderMap::new();
            if let Some(v) = v {
                h.insert(http::header::AUTHORIZATION, v.parse().unwrap());
            }
            let a = &a;
            async move {
                a.authenticate(&AuthnRequest {
                    headers: &h,
                    peer_certificates: None,
                })
                .await
            }
        };
        assert_eq!(
            run(Some("Bearer good")).await.unwrap().unwrap().name,
            "good"
        );
        assert_eq!(
            run(Some("Bearer other")).await.unwrap_err().0,
            "Token has expired."
        );
        assert_eq!(run(None).await.unwrap(), None);
        let only_accept = BearerTokenAuthenticator::new(vec![Arc::new(Accept("good"))]);
        let h = {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::AUTHORIZATION, "Bearer nope".parse().unwrap());
            h
        };
        let err = only_accept
            .authenticate(&AuthnRequest {
                headers: &h,
                peer_certificates: None,
            })
            .await
            .unwrap_err();
        assert_eq!(err.0, "invalid bearer token");
    }
}
