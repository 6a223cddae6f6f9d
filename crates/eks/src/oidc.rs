//! OIDC discovery for each EKS cluster's ServiceAccount issuer, served on the AWS gateway.
//!
//! A cluster's issuer is `https://oidc.eks.<region>.amazonaws.com/id/<ID>` (as on AWS), which cannot
//! resolve locally; the same documents are served on the gateway under
//! `/_skiff/oidc/<region>/id/<ID>/.well-known/openid-configuration` and `/_skiff/oidc/<region>/id/<ID>/keys`.
//! The discovery document names the issuer unchanged (tokens carry it) and points `jwks_uri` at the
//! gateway path of the request's own host, so an OIDC client can follow it. The keys are the ones
//! the control plane published with `skiff_aws::sts::register_oidc_issuer_keys`; STS verifies IRSA
//! tokens against that same record, so what is served here is exactly what is trusted.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use skiff_store::Store;

/// Gateway path prefix of the discovery routes.
pub const OIDC_PATH_PREFIX: &str = "/_skiff/oidc";

/// The issuer URL of `(region, id)`.
pub fn issuer_url(region: &str, id: &str) -> String {
    format!("https://oidc.eks.{region}.amazonaws.com/id/{id}")
}

/// `(region, id)` of an EKS issuer URL.
pub fn parse_issuer(issuer: &str) -> Option<(&str, &str)> {
    let rest = issuer.strip_prefix("https://oidc.eks.")?;
    let (region, id) = rest.split_once(".amazonaws.com/id/")?;
    (!region.is_empty() && !id.is_empty() && !id.contains('/')).then_some((region, id))
}

/// The gateway path of an issuer's discovery document (for docs and tests).
pub fn discovery_path(issuer: &str) -> Option<String> {
    let (region, id) = parse_issuer(issuer)?;
    Some(format!(
        "{OIDC_PATH_PREFIX}/{region}/id/{id}/.well-known/openid-configuration"
    ))
}

/// Routes to merge into the gateway router.
pub fn router(store: Arc<dyn Store>) -> Router {
    Router::new()
        .route(
            "/_skiff/oidc/{region}/id/{id}/.well-known/openid-configuration",
            get(discovery),
        )
        .route("/_skiff/oidc/{region}/id/{id}/keys", get(keys))
        .with_state(store)
}

async fn load_keys(store: &dyn Store, issuer: &str) -> Result<Option<Value>, Response> {
    let key = skiff_aws::sts::web_identity::jwks_key(issuer);
    match store.get(&key).await {
        Ok(Some(kv)) => Ok(serde_json::from_slice(&kv.value).ok()),
        Ok(None) => Ok(None),
        Err(e) => Err((StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()),
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not Found").into_response()
}

async fn discovery(
    State(store): State<Arc<dyn Store>>,
    Path((region, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let issuer = issuer_url(&region, &id);
    match load_keys(&*store, &issuer).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found(),
        Err(r) => return r,
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let doc = skiff_apiserver::authn::service_account_token::openid_configuration_with_jwks_uri(
        &issuer,
        &format!("http://{host}{OIDC_PATH_PREFIX}/{region}/id/{id}/keys"),
    );
    let mut doc = doc;
    doc["claims_supported"] = json!(["sub", "iss"]);
    axum::Json(doc).into_response()
}

async fn keys(
    State(store): State<Arc<dyn Store>>,
    Path((region, id)): Path<(String, String)>,
) -> Response {
    match load_keys(&*store, &issuer_url(&region, &id)).await {
        Ok(Some(jwks)) => axum::Json(jwks).into_response(),
        Ok(None) => not_found(),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_urls_round_trip() {
        let iss = issuer_url("eu-west-1", "ABC123");
        assert_eq!(parse_issuer(&iss), Some(("eu-west-1", "ABC123")));
        assert_eq!(
            discovery_path(&iss).unwrap(),
            "/_skiff/oidc/eu-west-1/id/ABC123/.well-known/openid-configuration"
        );
        assert_eq!(parse_issuer("https://127.0.0.1:6443"), None);
    }
}
