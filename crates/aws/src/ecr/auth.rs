//! GetAuthorizationToken: a `docker login` credential, `base64("AWS:<password>")`, valid 12 hours.
//!
//! The password is self-describing like ECR's own (base64 of a JSON document): it names the account
//! and region it was issued in, so the registry endpoint (`/v2/`, which carries no SigV4 scope) knows
//! where to look. Only its SHA-256 is stored (`/aws/<account>/<region>/ecr/token/<sha256>`), so a
//! password edited to name another account or region hashes to a key that does not exist;
//! [`resolve_password`] is that check.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use skiff_store::{Precondition, Store};

use super::common::{EcrError, EcrResult, proxy_endpoint};
use crate::context::RequestContext;
use crate::resources;

#[derive(Debug, Serialize, Deserialize)]
struct TokenRecord {
    principal: String,
    expires_at: String,
}

/// What the password's JSON says (the `payload` is the random secret part).
#[derive(Debug, Serialize, Deserialize)]
struct PasswordDoc {
    payload: String,
    #[serde(rename = "accountId")]
    account_id: String,
    region: String,
    expiration: i64,
}

/// Who a live registry password stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIdentity {
    pub account_id: String,
    pub region: String,
    /// The ARN of the principal that called GetAuthorizationToken.
    pub principal: String,
}

fn token_key(account: &str, region: &str, password: &str) -> String {
    format!(
        "/aws/{account}/{region}/ecr/token/{}",
        hex::encode(Sha256::digest(password.as_bytes()))
    )
}

#[doc(alias = "GetAuthorizationToken")]
pub async fn get_authorization_token(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    for r in input["registryIds"].as_array().into_iter().flatten() {
        if r.as_str() != Some(ctx.account_id.as_str()) {
            return Err(EcrError::InvalidParameter(format!(
                "Invalid parameter at 'registryIds' failed to satisfy constraint: 'registry {} is not accessible'",
                r.as_str().unwrap_or_default()
            )));
        }
    }
    let mut raw = [0u8; 48];
    rand::rng().fill_bytes(&mut raw);
    let expires = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(12))
        .unwrap_or(jiff::Timestamp::MAX);
    let doc = PasswordDoc {
        payload: B64.encode(raw),
        account_id: ctx.account_id.clone(),
        region: ctx.region.clone(),
        expiration: expires.as_second(),
    };
    let password = B64.encode(serde_json::to_vec(&doc).unwrap_or_default());
    let record = TokenRecord {
        principal: ctx.caller.arn.clone(),
        expires_at: expires.to_string(),
    };
    let key = token_key(&ctx.account_id, &ctx.region, &password);
    let op = resources::put_op(&key, &record, Precondition::None);
    resources::commit(&*ctx.store, vec![op])
        .await
        .map_err(|e| {
            EcrError::Internal(e.unwrap_or_else(|| {
                skiff_aws_model::AwsError::new("ServerException", "token not stored")
                    .with_status(500)
            }))
        })?;
    Ok(json!({"authorizationData": [{
        "authorizationToken": B64.encode(format!("AWS:{password}")),
        "expiresAt": expires.to_string(),
        "proxyEndpoint": proxy_endpoint(ctx),
    }]}))
}

/// The account, region and principal a `docker login` password (the part after `AWS:`) stands for,
/// if it is one we issued and it has not expired. `Ok(None)` for anything else, forged or garbled.
pub async fn resolve_password(
    store: &dyn Store,
    password: &str,
    now: jiff::Timestamp,
) -> Result<Option<TokenIdentity>, skiff_aws_model::AwsError> {
    let Some(doc) = B64
        .decode(password.trim())
        .ok()
        .and_then(|b| serde_json::from_slice::<PasswordDoc>(&b).ok())
    else {
        return Ok(None);
    };
    // The names become store key segments: refuse anything that could step outside them.
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !segment_ok(&doc.account_id) || !segment_ok(&doc.region) {
        return Ok(None);
    }
    let key = token_key(&doc.account_id, &doc.region, password.trim());
    let Some((rec, _)) = resources::get::<TokenRecord>(store, &key).await? else {
        return Ok(None);
    };
    let live = rec
        .expires_at
        .parse::<jiff::Timestamp>()
        .is_ok_and(|t| t > now);
    Ok(live.then_some(TokenIdentity {
        account_id: doc.account_id,
        region: doc.region,
        principal: rec.principal,
    }))
}

/// The principal ARN a password stands for, if it is a live token of `ctx`'s account and region.
pub async fn verify_token(
    ctx: &RequestContext,
    password: &str,
) -> Result<Option<String>, skiff_aws_model::AwsError> {
    Ok(
        resolve_password(&*ctx.store, password, jiff::Timestamp::now())
            .await?
            .filter(|id| id.account_id == ctx.account_id && id.region == ctx.region)
            .map(|id| id.principal),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::test_support::root_ctx;

    fn password_of(out: &Value) -> String {
        let text = B64
            .decode(
                out["authorizationData"][0]["authorizationToken"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        String::from_utf8(text)
            .unwrap()
            .strip_prefix("AWS:")
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn passwords_resolve_to_their_account_and_region_only() {
        let ctx = root_ctx();
        let out = get_authorization_token(&ctx, json!({})).await.unwrap();
        let pw = password_of(&out);
        let now = jiff::Timestamp::now();
        let id = resolve_password(&*ctx.store, &pw, now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(id.account_id, ctx.account_id);
        assert_eq!(id.region, ctx.region);
        assert_eq!(id.principal, ctx.caller.arn);
        // The same secret relabelled to another region is not a token we issued.
        let mut doc: PasswordDoc = serde_json::from_slice(&B64.decode(&pw).unwrap()).unwrap();
        doc.region = "eu-west-1".into();
        let forged = B64.encode(serde_json::to_vec(&doc).unwrap());
        assert!(
            resolve_password(&*ctx.store, &forged, now)
                .await
                .unwrap()
                .is_none()
        );
        doc.region = "../../x".into();
        let forged = B64.encode(serde_json::to_vec(&doc).unwrap());
        assert!(
            resolve_password(&*ctx.store, &forged, now)
                .await
                .unwrap()
                .is_none()
        );
        // Expired: 13 hours later.
        let later = now
            .checked_add(jiff::SignedDuration::from_hours(13))
            .unwrap();
        assert!(
            resolve_password(&*ctx.store, &pw, later)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            resolve_password(&*ctx.store, "not base64!", now)
                .await
                .unwrap()
                .is_none()
        );
    }
}
