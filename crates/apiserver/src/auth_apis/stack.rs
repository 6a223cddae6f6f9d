//! One cluster's whole authentication and authorization stack, built in one call, in the shape
//! `server::ClusterApiConfig` takes: x509 then bearer tokens (ServiceAccount JWT, bootstrap,
//! extra prefixed hooks), RBAC over a watch, the review APIs and TokenRequest, and the bootstrap
//! policy in the store.

use std::sync::Arc;

use skiff_store::{Store, StoreError};

use super::access_review::{SelfSubjectRulesReview, access_reviews};
use super::self_subject_review::SelfSubjectReviewResource;
use super::token_request::TokenRequestHandler;
use super::token_review::TokenReviewResource;
use crate::authn::Authenticator;
use crate::authn::bearer::BearerTokenAuthenticator;
use crate::authn::bootstrap_token::BootstrapTokenAuthenticator;
use crate::authn::service_account_token::{ServiceAccountTokenAuthenticator, TokenSigner};
use crate::authn::x509::X509Authenticator;
use crate::authz::Authorizer;
use crate::authz::bootstrap_policy::ensure_bootstrap_policy;
use crate::authz::rbac::RbacAuthorizer;
use crate::pki::{ClusterPki, PkiError};
use crate::registry::hooks::{CreateOnlyResource, SubresourceHandler};

#[derive(Debug, thiserror::Error)]
pub enum AuthStackError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("auth stack store access: {0}")]
    Store(#[from] StoreError),
}

/// The pieces to put into `ClusterApiConfig` (`authenticators`, `authorizers`, `create_only`,
/// `subresources`), plus handles the rest of the system needs (the signer for IRSA's JWKS and
/// discovery document, the RBAC cache).
pub struct AuthStack {
    pub authenticators: Vec<Arc<dyn Authenticator>>,
    pub authorizers: Vec<Arc<dyn Authorizer>>,
    pub create_only: Vec<Arc<dyn CreateOnlyResource>>,
    pub subresources: Vec<Arc<dyn SubresourceHandler>>,
    pub signer: Arc<TokenSigner>,
    pub rbac: Arc<RbacAuthorizer>,
    pub service_accounts: Arc<ServiceAccountTokenAuthenticator>,
}

impl AuthStack {
    /// `issuer`: the ServiceAccount issuer URL, also the API's audience. `extra_tokens`: more
    /// bearer authenticators (the EKS `k8s-aws-v1.` hook as a `PrefixedTokenAuthenticator`), tried
    /// after ServiceAccount and bootstrap tokens. Creates the missing default RBAC objects and
    /// returns once the RBAC cache holds them.
    pub async fn build(
        store: Arc<dyn Store>,
        cluster_id: &str,
        pki: &ClusterPki,
        issuer: &str,
        extra_tokens: Vec<Arc<dyn Authenticator>>,
    ) -> Result<AuthStack, AuthStackError> {
        let audiences = vec![issuer.to_string()];
        ensure_bootstrap_policy(&*store, cluster_id).await?;
        let rbac = Arc::new(RbacAuthorizer::start(store.clone(), cluster_id).await?);
        let signer = Arc::new(TokenSigner::new(pki, issuer)?);
        let service_accounts = Arc::new(ServiceAccountTokenAuthenticator::new(
            signer.clone(),
            store.clone(),
            cluster_id,
            audiences.clone(),
        ));
        let bootstrap: Arc<dyn Authenticator> =
            Arc::new(BootstrapTokenAuthenticator::new(store.clone(), cluster_id));
        let mut tokens: Vec<Arc<dyn Authenticator>> =
            vec![service_accounts.clone(), bootstrap.clone()];
        tokens.extend(extra_tokens.iter().cloned());
        let authenticators: Vec<Arc<dyn Authenticator>> = vec![
            Arc::new(X509Authenticator::new(pki)?),
            Arc::new(BearerTokenAuthenticator::new(tokens)),
        ];
        let authz: Arc<dyn Authorizer> = rbac.clone();
        let mut create_only = access_reviews(authz.clone());
        create_only.push(Arc::new(SelfSubjectRulesReview::new(rbac.clone())));
        let mut agnostic = vec![bootstrap];
        agnostic.extend(extra_tokens);
        create_only.push(Arc::new(TokenReviewResource::new(
            Some(service_accounts.clone()),
            agnostic,
            audiences.clone(),
        )));
        create_only.push(Arc::new(SelfSubjectReviewResource::default()));
        let subresources: Vec<Arc<dyn SubresourceHandler>> = vec![Arc::new(
            TokenRequestHandler::new(signer.clone(), store, cluster_id, audiences),
        )];
        Ok(AuthStack {
            authenticators,
            authorizers: vec![authz],
            create_only,
            subresources,
            signer,
            rbac,
            service_accounts,
        })
    }
}
