//! AssumeRoleWithWebIdentity (IRSA): an unsigned request carrying a JWT.
//!
//! The token's `iss` must match an IAM OIDC provider in the role's account; its RS256 signature is
//! verified against the issuer's JWKS, which Skiff's own EKS clusters publish into the store through
//! [`register_oidc_issuer_keys`] (record `/aws/global/oidc-jwks/<url-encoded issuer>`; no network
//! fetch, the issuers are local). Then `aud` must be one of the provider's client ids, `exp` in the
//! future, and the role's trust policy must allow `sts:AssumeRoleWithWebIdentity` for
//! `Federated: <provider ARN>` with the `<host/path>:sub`/`:aud` condition keys.

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::{Precondition, Store};

use super::assume_role::session_policies;
use super::{StsError, StsResult, duration, issue, role_parts, session_name};
use crate::context::RequestContext;
use crate::iam::{oidc_providers, roles};
use crate::policy::{ContextMap, EvalPrincipal, EvalRequest, PolicyDocument, evaluate};
use crate::resources;

/// The store key of an issuer's JWKS.
pub fn jwks_key(issuer_url: &str) -> String {
    let normalized = issuer_url.trim_end_matches('/');
    format!(
        "/aws/global/oidc-jwks/{}",
        crate::iam::common::encode_document(normalized)
    )
}

/// Publish (or replace) the signing keys of an OIDC issuer (a cluster's service-account issuer).
/// `jwks` is a JWK Set document: `{"keys": [{"kty": "RSA", "kid": …, "n": …, "e": …}]}`.
pub async fn register_oidc_issuer_keys(
    store: &dyn Store,
    issuer_url: &str,
    jwks: Value,
) -> Result<(), AwsError> {
    serde_json::from_value::<JwkSet>(jwks.clone())
        .map_err(|e| AwsError::new("InvalidParameterValue", format!("not a JWK Set: {e}")))?;
    resources::commit(
        store,
        vec![resources::put_op(
            &jwks_key(issuer_url),
            &jwks,
            Precondition::None,
        )],
    )
    .await
    .map_err(|e| e.unwrap_or_else(|| AwsError::new("InternalFailure", "store").with_status(500)))?;
    Ok(())
}

/// Forget an issuer's keys (its cluster was deleted). Absent keys are not an error.
pub async fn remove_oidc_issuer_keys(store: &dyn Store, issuer_url: &str) -> Result<(), AwsError> {
    let key = jwks_key(issuer_url);
    if resources::get::<Value>(store, &key).await?.is_some() {
        resources::commit(store, vec![resources::delete_op(&key)])
            .await
            .map_err(|e| {
                e.unwrap_or_else(|| AwsError::new("InternalFailure", "store").with_status(500))
            })?;
    }
    Ok(())
}

fn invalid(msg: &str) -> StsError {
    StsError::InvalidIdentityToken(msg.to_string())
}

const NOT_A_JWT: &str = "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)";
const NO_KEY: &str = "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements";

/// The claims before verification (to find the issuer whose keys verify them).
fn unverified_claims(token: &str) -> StsResult<Value> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(NOT_A_JWT));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| invalid(NOT_A_JWT))?;
    serde_json::from_slice(&bytes).map_err(|_| invalid(NOT_A_JWT))
}

/// `aud` may be a string or an array.
fn audiences(claims: &Value) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn verify_signature(token: &str, jwks: &JwkSet) -> StsResult<()> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| invalid(NOT_A_JWT))?;
    if header.alg != Algorithm::RS256 {
        return Err(invalid(
            "Unsupported signing algorithm; tokens must be signed with RS256",
        ));
    }
    let candidates: Vec<_> = match &header.kid {
        Some(kid) => jwks.find(kid).into_iter().collect(),
        None => jwks.keys.iter().collect(),
    };
    if candidates.is_empty() {
        return Err(invalid(NO_KEY));
    }
    let mut validation = Validation::new(Algorithm::RS256);
    // exp and aud are checked by the caller, to answer with STS's own errors.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    for jwk in candidates {
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        if jsonwebtoken::decode::<Value>(token, &key, &validation).is_ok() {
            return Ok(());
        }
    }
    Err(invalid("Signature verification failed"))
}

#[doc(alias = "AssumeRoleWithWebIdentity")]
pub async fn assume_role_with_web_identity(ctx: &RequestContext, input: Value) -> StsResult<Value> {
    let role_arn = input
        .get("RoleArn")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            StsError::Validation("1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null".into())
        })?;
    let session = session_name(&input)?;
    let session_policies = session_policies(ctx, &input).await?;
    let token = input
        .get("WebIdentityToken")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(NOT_A_JWT))?;
    let claims = unverified_claims(token)?;
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(NOT_A_JWT))?;
    let denied =
        || StsError::AccessDenied("Not authorized to perform sts:AssumeRoleWithWebIdentity".into());
    let (account, _) = role_parts(role_arn).ok_or_else(denied)?;
    let provider = oidc_providers::find_by_issuer(&*ctx.store, account, issuer)
        .await?
        .ok_or_else(|| {
            invalid(&format!(
                "No OpenIDConnect provider found in your account for {issuer}"
            ))
        })?;
    let jwks: JwkSet = resources::get::<Value>(&*ctx.store, &jwks_key(issuer))
        .await?
        .and_then(|(v, _)| serde_json::from_value(v).ok())
        .ok_or_else(|| invalid(NO_KEY))?;
    verify_signature(token, &jwks)?;
    let now = jiff::Timestamp::now().as_second();
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid(NOT_A_JWT))?;
    if exp <= now {
        let fmt = |s: i64| {
            jiff::Timestamp::from_second(s)
                .map(|t| t.strftime("%a %b %d %H:%M:%S UTC %Y").to_string())
                .unwrap_or_default()
        };
        return Err(StsError::ExpiredToken(format!(
            "Token expired: current date/time {} must be before the expiration date/time {}",
            fmt(now),
            fmt(exp)
        )));
    }
    let auds = audiences(&claims);
    let aud = auds
        .iter()
        .find(|a| provider.client_ids.contains(a))
        .cloned()
        .ok_or_else(|| invalid("Incorrect token audience"))?;
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();

    let role = roles::by_arn(&*ctx.store, role_arn)
        .await?
        .ok_or_else(denied)?;
    let trust = PolicyDocument::parse_str(&role.trust_policy).map_err(|_| denied())?;
    let principal = EvalPrincipal::Federated(provider.arn.clone());
    let mut context = ContextMap::new();
    context.insert(&format!("{}:sub", provider.url), sub.clone());
    context.insert(&format!("{}:aud", provider.url), aud.clone());
    if let Some(azp) = claims.get("azp").and_then(Value::as_str) {
        context.insert(&format!("{}:azp", provider.url), azp.to_string());
    }
    context.insert("sts:RoleSessionName", session.clone());
    context.insert("aws:FederatedProvider", provider.arn.clone());
    let req = EvalRequest {
        principal: &principal,
        action: "sts:AssumeRoleWithWebIdentity",
        resource: &role.arn,
        context: &context,
    };
    if !evaluate(&req, &[], Some(&trust), None).is_allowed() {
        return Err(denied());
    }
    let seconds = duration(
        &input,
        3600,
        900,
        role.max_session_duration,
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
    )?;
    let arn = format!(
        "arn:aws:sts::{account}:assumed-role/{}/{session}",
        role.role_name
    );
    let user_id = format!("{}:{session}", role.role_id);
    let creds = issue(ctx, account, &arn, &user_id, seconds, session_policies).await?;
    roles::mark_used(ctx, &role, &ctx.region).await;
    Ok(json!({
        "Credentials": creds,
        "SubjectFromWebIdentityToken": sub,
        "AssumedRoleUser": { "AssumedRoleId": user_id, "Arn": arn },
        "Provider": provider.arn,
        "Audience": aud,
    }))
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
    use base64::Engine;
    use serde_json::{Value, json};

    use super::*;
    use crate::iam::test_support::*;

    const ISSUER: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/CLUSTER1";
    const HOST_PATH: &str = "oidc.eks.us-east-1.amazonaws.com/id/CLUSTER1";

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    struct Signer(KeyPair);

    impl Signer {
        fn new() -> Self {
            Signer(KeyPair::generate(KeySize::Rsa2048).unwrap())
        }
        fn jwks(&self, kid: &str) -> Value {
            let pk = self.0.public_key();
            json!({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
                "n": b64(pk.modulus().big_endian_without_leading_zero()),
                "e": b64(pk.exponent().big_endian_without_leading_zero())}]})
        }
        fn token(&self, kid: &str, claims: Value) -> String {
            let head = b64(json!({"alg": "RS256", "typ": "JWT", "kid": kid})
                .to_string()
                .as_bytes());
            let body = b64(claims.to_string().as_bytes());
            let msg = format!("{head}.{body}");
            let mut sig = vec![0u8; self.0.public_modulus_len()];
            self.0
                .sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    msg.as_bytes(),
                    &mut sig,
                )
                .unwrap();
            format!("{msg}.{}", b64(&sig))
        }
    }

    fn claims(sub: &str, aud: &str, exp_in: i64) -> Value {
        let now = jiff::Timestamp::now().as_second();
        json!({"iss": ISSUER, "sub": sub, "aud": [aud], "iat": now, "exp": now + exp_in})
    }

    #[tokio::test]
    async fn irsa_flow_and_refusals() {
        let ctx = root_ctx();
        let signer = Signer::new();
        let provider = iam(
            &ctx,
            "CreateOpenIDConnectProvider",
            json!({"Url": ISSUER, "ClientIDList": ["sts.amazonaws.com"]}),
        )
        .await
        .unwrap();
        let provider_arn = provider["OpenIDConnectProviderArn"]
            .as_str()
            .unwrap()
            .to_string();
        let trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {
            "StringEquals": {format!("{HOST_PATH}:aud"): "sts.amazonaws.com"},
            "StringLike": {format!("{HOST_PATH}:sub"): "system:serviceaccount:kube-system:*"}
        }}]})
        .to_string();
        let role = iam(
            &ctx,
            "CreateRole",
            json!({"RoleName": "ebs-csi", "AssumeRolePolicyDocument": trust}),
        )
        .await
        .unwrap();
        let role_arn = role["Role"]["Arn"].clone();
        let call = |token: String| {
            let ctx = ctx.clone();
            let role_arn = role_arn.clone();
            async move {
                sts(&ctx, "AssumeRoleWithWebIdentity", json!({"RoleArn": role_arn, "RoleSessionName": "pod", "WebIdentityToken": token})).await
            }
        };
        let good = signer.token(
            "k1",
            claims(
                "system:serviceaccount:kube-system:ebs-csi-controller-sa",
                "sts.amazonaws.com",
                600,
            ),
        );

        // No keys published for the issuer yet.
        let e = call(good.clone()).await.unwrap_err();
        assert_eq!(e.code, "InvalidIdentityToken");
        register_oidc_issuer_keys(&*ctx.store, ISSUER, signer.jwks("k1"))
            .await
            .unwrap();

        let out = call(good.clone()).await.unwrap();
        assert_eq!(
            out["AssumedRoleUser"]["Arn"],
            "arn:aws:sts::000000000000:assumed-role/ebs-csi/pod"
        );
        assert_eq!(
            out["SubjectFromWebIdentityToken"],
            "system:serviceaccount:kube-system:ebs-csi-controller-sa"
        );
        assert_eq!(out["Audience"], "sts.amazonaws.com");
        assert_eq!(out["Provider"], provider_arn);
        assert!(
            out["Credentials"]["AccessKeyId"]
                .as_str()
                .unwrap()
                .starts_with("ASIA")
        );

        let wrong_sub = signer.token(
            "k1",
            claims(
                "system:serviceaccount:default:app",
                "sts.amazonaws.com",
                600,
            ),
        );
        let e = call(wrong_sub).await.unwrap_err();
        assert_eq!((e.code.as_str(), e.status), ("AccessDenied", 403));
        let wrong_aud = signer.token(
            "k1",
            claims("system:serviceaccount:kube-system:x", "other", 600),
        );
        assert_eq!(
            call(wrong_aud).await.unwrap_err().message,
            "Incorrect token audience"
        );
        let expired = signer.token(
            "k1",
            claims(
                "system:serviceaccount:kube-system:x",
                "sts.amazonaws.com",
                -60,
            ),
        );
        assert_eq!(
            call(expired).await.unwrap_err().code,
            "ExpiredTokenException"
        );
        let forged = Signer::new().token(
            "k1",
            claims(
                "system:serviceaccount:kube-system:x",
                "sts.amazonaws.com",
                600,
            ),
        );
        assert_eq!(call(forged).await.unwrap_err().code, "InvalidIdentityToken");
        let unknown_kid = signer.token(
            "k2",
            claims(
                "system:serviceaccount:kube-system:x",
                "sts.amazonaws.com",
                600,
            ),
        );
        assert_eq!(
            call(unknown_kid).await.unwrap_err().code,
            "InvalidIdentityToken"
        );
        assert_eq!(
            call("not-a-jwt".into()).await.unwrap_err().code,
            "InvalidIdentityToken"
        );
        let mut other_iss = claims(
            "system:serviceaccount:kube-system:x",
            "sts.amazonaws.com",
            600,
        );
        other_iss["iss"] = json!("https://elsewhere.example/id/1");
        let e = call(signer.token("k1", other_iss)).await.unwrap_err();
        assert_eq!(
            e.message,
            "No OpenIDConnect provider found in your account for https://elsewhere.example/id/1"
        );

        remove_oidc_issuer_keys(&*ctx.store, ISSUER).await.unwrap();
        assert_eq!(call(good).await.unwrap_err().code, "InvalidIdentityToken");
    }
}
