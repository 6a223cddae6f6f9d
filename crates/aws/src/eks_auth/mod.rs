//! eks-auth: EKS Pod Identity's credential exchange, the one call the Pod Identity Agent makes
//! (`POST /clusters/{clusterName}/assume-role-for-pod-identity`, REST-JSON, signed as `eks-auth`).
//!
//! The operation table and the service's typed error ([`EksAuthError`], turned into the wire error
//! here and nowhere else); the exchange itself is [`pod_identity`].

pub mod pod_identity;

use serde_json::Value;
use skiff_aws_model::AwsError;

use crate::context::RequestContext;

/// eks-auth's modelled errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EksAuthError {
    /// Not a token of this cluster: bad signature, issuer, audience or subject.
    #[error("{0}")]
    InvalidToken(String),
    #[error("{0}")]
    ExpiredToken(String),
    /// The role's trust policy does not let `pods.eks.amazonaws.com` assume it.
    #[error("{0}")]
    AccessDenied(String),
    /// No such cluster, or no association for the token's ServiceAccount.
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    Internal(AwsError),
}

impl From<EksAuthError> for AwsError {
    fn from(e: EksAuthError) -> Self {
        let (code, msg) = match e {
            EksAuthError::InvalidToken(m) => ("InvalidTokenException", m),
            EksAuthError::ExpiredToken(m) => ("ExpiredTokenException", m),
            EksAuthError::AccessDenied(m) => ("AccessDeniedException", m),
            EksAuthError::ResourceNotFound(m) => ("ResourceNotFoundException", m),
            EksAuthError::InvalidParameter(m) => ("InvalidParameterException", m),
            EksAuthError::Internal(e) => return e,
        };
        AwsError::modeled("eks-auth", code, msg)
    }
}

impl From<AwsError> for EksAuthError {
    fn from(e: AwsError) -> Self {
        EksAuthError::Internal(e)
    }
}

pub type EksAuthResult<T> = Result<T, EksAuthError>;

/// Route one eks-auth operation to its handler.
pub async fn dispatch(
    ctx: &RequestContext,
    operation: &str,
    input: Value,
) -> Result<Value, AwsError> {
    let result = match operation {
        // pod_identity.rs
        "AssumeRoleForPodIdentity" => pod_identity::assume_role_for_pod_identity(ctx, input).await,
        _ => return Err(crate::not_implemented("eks-auth", operation)),
    };
    result.map_err(AwsError::from)
}
