//! Who is calling: the access key of a SigV4 request resolved to its secret and principal.
//!
//! The root key (`test`/`test`, account 000000000000) is built in; every other key is a
//! [`StoredCredential`] that IAM (`CreateAccessKey`) or STS (`AssumeRole*`, `GetSessionToken`) wrote at
//! [`credential_key`]. The EKS token authenticator reuses [`lookup`] before calling
//! `skiff_aws_model::sigv4::verify_presigned_get_caller_identity`.

use skiff_aws_model::sigv4::{self, ParsedAuth, SigError, SigningSecret};
use skiff_aws_model::{AwsError, Protocol, WireRequest};
use skiff_store::Store;

use crate::context::Caller;
use crate::credentials::{
    DEFAULT_ACCOUNT_ID, ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, StoredCredential,
    credential_key,
};

/// Why authentication failed: the client's fault (a SigV4 error) or ours (the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    Sig(SigError),
    Internal(String),
}

impl From<SigError> for AuthError {
    fn from(e: SigError) -> Self {
        Self::Sig(e)
    }
}

impl AuthError {
    pub fn to_aws_error(&self, protocol: Protocol) -> AwsError {
        match self {
            Self::Sig(e) => e.to_aws_error(protocol),
            Self::Internal(m) => AwsError::new("InternalFailure", m.clone()).with_status(500),
        }
    }
}

/// The root principal of the default account, as STS reports it.
pub fn root_caller(access_key_id: &str) -> Caller {
    Caller {
        arn: format!("arn:aws:iam::{DEFAULT_ACCOUNT_ID}:root"),
        user_id: DEFAULT_ACCOUNT_ID.to_string(),
        account_id: DEFAULT_ACCOUNT_ID.to_string(),
        access_key_id: access_key_id.to_string(),
    }
}

/// The caller of unsigned operations (`AssumeRoleWithWebIdentity`): no key, the default account.
pub fn anonymous_caller() -> Caller {
    Caller {
        arn: String::new(),
        user_id: String::new(),
        account_id: DEFAULT_ACCOUNT_ID.to_string(),
        access_key_id: String::new(),
    }
}

/// Resolve an access key id. `Ok(None)`: no such key (the caller decides between
/// `InvalidClientTokenId` and `--any-credentials`).
pub async fn lookup(
    store: &dyn Store,
    access_key_id: &str,
    now: jiff::Timestamp,
) -> Result<Option<(SigningSecret, Caller)>, AuthError> {
    if access_key_id == ROOT_ACCESS_KEY_ID {
        let secret = SigningSecret {
            secret_access_key: ROOT_SECRET_ACCESS_KEY.to_string(),
            session_token: None,
        };
        return Ok(Some((secret, root_caller(access_key_id))));
    }
    let Some(kv) = store
        .get(&credential_key(access_key_id))
        .await
        .map_err(|e| AuthError::Internal(e.to_string()))?
    else {
        return Ok(None);
    };
    let cred: StoredCredential = serde_json::from_slice(&kv.value).map_err(|e| {
        AuthError::Internal(format!("corrupt credential record {access_key_id}: {e}"))
    })?;
    if cred.status != "Active" {
        return Err(SigError::UnknownKey.into());
    }
    if let Some(exp) = &cred.expiration
        && exp.parse::<jiff::Timestamp>().is_ok_and(|t| t <= now)
    {
        return Err(SigError::ExpiredToken.into());
    }
    let caller = Caller {
        arn: cred.arn,
        user_id: cred.user_id,
        account_id: cred.account_id,
        access_key_id: cred.access_key_id,
    };
    let secret = SigningSecret {
        secret_access_key: cred.secret_access_key,
        session_token: cred.session_token,
    };
    Ok(Some((secret, caller)))
}

/// Verify a signed request and name its caller.
pub async fn authenticate(
    store: &dyn Store,
    any_credentials: bool,
    req: &WireRequest<'_>,
    auth: &ParsedAuth,
    now: jiff::Timestamp,
) -> Result<Caller, AuthError> {
    match lookup(store, &auth.access_key_id, now).await? {
        // Any-credentials mode takes the root key whatever secret signed it.
        Some((_, caller)) if any_credentials && auth.access_key_id == ROOT_ACCESS_KEY_ID => {
            Ok(caller)
        }
        Some((secret, caller)) => {
            sigv4::verify(req, auth, &secret, now)?;
            Ok(caller)
        }
        None if any_credentials => Ok(root_caller(&auth.access_key_id)),
        None => Err(SigError::UnknownKey.into()),
    }
}
