//! `TokenReview` (authentication.k8s.io/v1): "who is this bearer token?", asked by webhooks,
//! aggregated API servers and kubelets. Runs the same token authenticators as the server.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{decode_body, review_info, user_info_json};
use crate::authn::service_account_token::ServiceAccountTokenAuthenticator;
use crate::authn::{Authenticator, AuthnRequest, with_authenticated_group};
use crate::registry::hooks::{CreateOnlyResource, HookError, HookRequest};
use crate::registry::strategy::ResourceInfo;

#[doc(alias = "TokenReview")]
pub struct TokenReviewResource {
    info: ResourceInfo,
    service_accounts: Option<Arc<ServiceAccountTokenAuthenticator>>,
    /// Audience-agnostic bearer authenticators (bootstrap tokens, the EKS token hook).
    others: Vec<Arc<dyn Authenticator>>,
    api_audiences: Vec<String>,
}

impl TokenReviewResource {
    pub fn new(
        service_accounts: Option<Arc<ServiceAccountTokenAuthenticator>>,
        others: Vec<Arc<dyn Authenticator>>,
        api_audiences: Vec<String>,
    ) -> Self {
        Self {
            info: review_info(
                "authentication.k8s.io",
                "TokenReview",
                "tokenreviews",
                false,
            ),
            service_accounts,
            others,
            api_audiences,
        }
    }

    /// `(user, audiences)` or the error to report in `status.error`.
    async fn review(
        &self,
        token: &str,
        requested: &[String],
    ) -> Result<Option<(crate::authn::UserInfo, Vec<String>)>, String> {
        let now = jiff::Timestamp::now().as_second();
        let mut first_err = None;
        if let Some(sa) = &self.service_accounts {
            match sa.verify(token, requested, now).await {
                Ok(Some(v)) => return Ok(Some((v.user, v.audiences))),
                Ok(None) => {}
                Err(e) => first_err = Some(e.0),
            }
        }
        // Audience-agnostic tokens are good for the API's own audiences only.
        let audiences: Vec<String> = if requested.is_empty() {
            self.api_audiences.clone()
        } else {
            requested
                .iter()
                .filter(|a| self.api_audiences.contains(a))
                .cloned()
                .collect()
        };
        let mut headers = http::HeaderMap::new();
        let Ok(value) = http::HeaderValue::from_str(&format!("Bearer {token}")) else {
            return Err(first_err.unwrap_or_else(|| "invalid bearer token".into()));
        };
        headers.insert(http::header::AUTHORIZATION, value);
        let req = AuthnRequest {
            headers: &headers,
            peer_certificates: None,
        };
        for a in &self.others {
            match a.authenticate(&req).await {
                Ok(Some(u)) if !audiences.is_empty() => {
                    return Ok(Some((with_authenticated_group(u), audiences)));
                }
                Ok(Some(_)) => {
                    first_err.get_or_insert_with(|| "token audiences are invalid".into());
                }
                Ok(None) => {}
                Err(e) => {
                    first_err.get_or_insert(e.0);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }
}

#[async_trait::async_trait]
impl CreateOnlyResource for TokenReviewResource {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    async fn create(&self, _req: &HookRequest<'_>, body: Value) -> Result<Value, HookError> {
        let mut body = decode_body(body, &self.info)?;
        let token = body
            .pointer("/spec/token")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if token.is_empty() {
            return Err(HookError::BadRequest(
                "token is required for TokenReview in authentication.k8s.io/v1".into(),
            ));
        }
        let requested: Vec<String> = body
            .pointer("/spec/audiences")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        body["status"] = match self.review(&token, &requested).await {
            Ok(Some((user, audiences))) => json!({
                "authenticated": true,
                "user": user_info_json(&user),
                "audiences": audiences,
            }),
            Ok(None) => json!({ "user": {} }),
            Err(e) => json!({ "user": {}, "error": e }),
        };
        Ok(body)
    }
}
