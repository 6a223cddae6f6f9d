//! sts: the operation table, STS's typed error, and the issuing of temporary credentials shared by
//! the operation groups (`ASIA…` keys written as `StoredCredential`s with an expiration).

pub mod assume_role;
pub mod caller_identity;
pub mod session_token;
pub mod web_identity;

pub use web_identity::{register_oidc_issuer_keys, remove_oidc_issuer_keys};

use base64::Engine;
use rand::RngCore;
use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::Precondition;

use crate::context::RequestContext;
use crate::credentials::{StoredCredential, credential_key};
use crate::resources;

/// STS's modelled errors (codes and statuses from the botocore model).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StsError {
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    InvalidIdentityToken(String),
    #[error("{0}")]
    ExpiredToken(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    Internal(AwsError),
}

impl From<StsError> for AwsError {
    fn from(e: StsError) -> Self {
        let (code, status, msg) = match e {
            StsError::AccessDenied(m) => ("AccessDenied", 403, m),
            StsError::Validation(m) => ("ValidationError", 400, m),
            StsError::InvalidIdentityToken(m) => ("InvalidIdentityToken", 400, m),
            StsError::ExpiredToken(m) => ("ExpiredTokenException", 400, m),
            StsError::MalformedPolicyDocument(m) => ("MalformedPolicyDocument", 400, m),
            StsError::Internal(e) => return e,
        };
        AwsError::new(code, msg).with_status(status)
    }
}

impl From<AwsError> for StsError {
    fn from(e: AwsError) -> Self {
        StsError::Internal(e)
    }
}

impl From<crate::iam::common::IamError> for StsError {
    fn from(e: crate::iam::common::IamError) -> Self {
        StsError::Internal(e.into())
    }
}

pub type StsResult<T> = Result<T, StsError>;

/// Route one sts operation to its handler.
pub async fn dispatch(
    ctx: &RequestContext,
    operation: &str,
    input: Value,
) -> Result<Value, AwsError> {
    let result = match operation {
        "GetCallerIdentity" => caller_identity::get_caller_identity(ctx, input).await,
        "AssumeRole" => assume_role::assume_role(ctx, input).await,
        "AssumeRoleWithWebIdentity" => {
            web_identity::assume_role_with_web_identity(ctx, input).await
        }
        "GetSessionToken" => session_token::get_session_token(ctx, input).await,
        _ => return Err(crate::not_implemented("sts", operation)),
    };
    result.map_err(AwsError::from)
}

/// `DurationSeconds` within `[min, max]`, else the validator's wording (`too_long` for the upper bound).
pub fn duration(input: &Value, default: i64, min: i64, max: i64, too_long: &str) -> StsResult<i64> {
    let d = match input.get("DurationSeconds") {
        None | Some(Value::Null) => return Ok(default.min(max)),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| StsError::Validation("Invalid value for durationSeconds".into()))?,
    };
    if d < min {
        return Err(StsError::Validation(format!(
            "1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to {min}"
        )));
    }
    if d > max {
        return Err(StsError::Validation(too_long.to_string()));
    }
    Ok(d)
}

/// `RoleSessionName`: `[\w+=,.@-]*`, 2..=64 characters.
pub fn session_name(input: &Value) -> StsResult<String> {
    let name = input
        .get("RoleSessionName")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            StsError::Validation("1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null".into())
        })?;
    let ok = (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if !ok {
        return Err(StsError::Validation(format!(
            "1 validation error detected: Value '{name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
        )));
    }
    Ok(name.to_string())
}

/// Issue temporary credentials for `arn`/`user_id`, store them for the SigV4 verifier, and return
/// the `Credentials` output shape.
pub async fn issue(
    ctx: &RequestContext,
    account: &str,
    arn: &str,
    user_id: &str,
    seconds: i64,
    session_policies: Vec<String>,
) -> StsResult<Value> {
    let id = crate::resources::new_iam_id("ASIA")[..20].to_string();
    let secret = crate::iam::access_keys::new_secret();
    let mut raw = [0u8; 192];
    rand::rng().fill_bytes(&mut raw);
    let token = format!(
        "IQoJb3JpZ2luX2VjE{}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    );
    let now = jiff::Timestamp::now().as_second();
    let expiration = jiff::Timestamp::from_second(now + seconds)
        .map_err(|e| {
            StsError::Internal(AwsError::new("InternalFailure", e.to_string()).with_status(500))
        })?
        .to_string();
    let cred = StoredCredential {
        access_key_id: id.clone(),
        secret_access_key: secret.clone(),
        session_token: Some(token.clone()),
        account_id: account.to_string(),
        arn: arn.to_string(),
        user_id: user_id.to_string(),
        expiration: Some(expiration.clone()),
        status: "Active".into(),
    };
    let mut ops = vec![resources::put_op(
        &credential_key(&id),
        &cred,
        Precondition::MustNotExist,
    )];
    if !session_policies.is_empty() {
        ops.push(resources::put_op(
            &session_policy_key(&id),
            &json!({ "policies": session_policies }),
            Precondition::None,
        ));
    }
    resources::commit(&*ctx.store, ops).await.map_err(|e| {
        StsError::Internal(e.unwrap_or_else(|| {
            AwsError::new("InternalFailure", "credential id collision").with_status(500)
        }))
    })?;
    Ok(json!({
        "AccessKeyId": id,
        "SecretAccessKey": secret,
        "SessionToken": token,
        "Expiration": expiration,
    }))
}

/// Where the session policies of a temporary credential live (absent when none were passed).
pub fn session_policy_key(access_key_id: &str) -> String {
    format!("/aws/global/sts/session-policy/{access_key_id}")
}

/// The session policy documents (`Policy` and `PolicyArns`) a temporary credential was issued with.
pub async fn session_policies(
    store: &dyn skiff_store::Store,
    access_key_id: &str,
) -> Result<Vec<String>, AwsError> {
    Ok(
        resources::get::<Value>(store, &session_policy_key(access_key_id))
            .await?
            .and_then(|(v, _)| serde_json::from_value(v["policies"].clone()).ok())
            .unwrap_or_default(),
    )
}

/// Delete temporary credentials that expired before `now` (the verifier already refuses them; this
/// keeps the store from growing with every session). Returns how many were removed. The lead's
/// runtime may call it periodically; IAM access keys (no expiration) are never touched.
pub async fn purge_expired_credentials(
    store: &dyn skiff_store::Store,
    now: jiff::Timestamp,
) -> Result<usize, AwsError> {
    let all: Vec<StoredCredential> =
        resources::list(store, &resources::prefix_of(&credential_key("x"))).await?;
    let mut removed = 0;
    for c in all {
        let expired = c
            .expiration
            .as_deref()
            .and_then(|e| e.parse::<jiff::Timestamp>().ok())
            .is_some_and(|e| e < now);
        if expired {
            // A concurrent purge may have removed it already: that is fine.
            let mut ops = vec![resources::delete_op(&credential_key(&c.access_key_id))];
            let policy_key = session_policy_key(&c.access_key_id);
            if resources::get::<Value>(store, &policy_key).await?.is_some() {
                ops.push(resources::delete_op(&policy_key));
            }
            if resources::commit(store, ops).await.is_ok() {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// The role name and account of an IAM role ARN (path dropped, as session ARNs do).
pub fn role_parts(role_arn: &str) -> Option<(&str, &str)> {
    let rest = role_arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let path_name = resource.strip_prefix("role/")?;
    Some((account, path_name.rsplit('/').next()?))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::iam::test_support::*;

    #[tokio::test]
    async fn purge_removes_only_expired_sessions() {
        let ctx = root_ctx();
        iam(&ctx, "CreateUser", json!({"UserName": "u"}))
            .await
            .unwrap();
        let key = iam(&ctx, "CreateAccessKey", json!({"UserName": "u"}))
            .await
            .unwrap();
        let t = sts(&ctx, "GetSessionToken", json!({"DurationSeconds": 900}))
            .await
            .unwrap();
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(1000);
        assert_eq!(
            purge_expired_credentials(&*ctx.store, jiff::Timestamp::now())
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            purge_expired_credentials(&*ctx.store, later).await.unwrap(),
            1
        );
        let gone = t["Credentials"]["AccessKeyId"].as_str().unwrap();
        assert!(
            resources::get::<StoredCredential>(&*ctx.store, &credential_key(gone))
                .await
                .unwrap()
                .is_none()
        );
        let kept = key["AccessKey"]["AccessKeyId"].as_str().unwrap();
        assert!(
            resources::get::<StoredCredential>(&*ctx.store, &credential_key(kept))
                .await
                .unwrap()
                .is_some()
        );
    }
}
