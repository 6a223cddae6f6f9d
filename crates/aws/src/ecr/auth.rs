//! GetAuthorizationToken: a `docker login` credential, `base64("AWS:<token>")`, valid 12 hours.
//!
//! The token is stored (`/aws/<account>/<region>/ecr/token/<sha256 of token>`) so the registry
//! endpoint can verify it later; [`verify_token`] is that check.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use skiff_store::Precondition;

use super::common::{EcrError, EcrResult, registry_host};
use crate::context::RequestContext;
use crate::resources;

#[derive(Debug, Serialize, Deserialize)]
struct TokenRecord {
    principal: String,
    expires_at: String,
}

fn token_key(ctx: &RequestContext, token: &str) -> String {
    resources::key(
        ctx,
        "ecr",
        "token",
        &hex::encode(Sha256::digest(token.as_bytes())),
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
    let token = B64.encode(raw);
    let expires = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(12))
        .map(|t| t.to_string())
        .unwrap_or_default();
    let record = TokenRecord {
        principal: ctx.caller.arn.clone(),
        expires_at: expires.clone(),
    };
    let op = resources::put_op(&token_key(ctx, &token), &record, Precondition::None);
    resources::commit(&*ctx.store, vec![op])
        .await
        .map_err(|e| {
            EcrError::Internal(e.unwrap_or_else(|| {
                skiff_aws_model::AwsError::new("ServerException", "token not stored")
                    .with_status(500)
            }))
        })?;
    Ok(json!({"authorizationData": [{
        "authorizationToken": B64.encode(format!("AWS:{token}")),
        "expiresAt": expires,
        "proxyEndpoint": format!("https://{}", registry_host(ctx)),
    }]}))
}

/// The principal ARN a `docker login` password (the part after `AWS:`) stands for, if it is a live token.
pub async fn verify_token(
    ctx: &RequestContext,
    password: &str,
) -> Result<Option<String>, skiff_aws_model::AwsError> {
    let Some((rec, _)) =
        resources::get::<TokenRecord>(&*ctx.store, &token_key(ctx, password)).await?
    else {
        return Ok(None);
    };
    let live = rec
        .expires_at
        .parse::<jiff::Timestamp>()
        .is_ok_and(|t| t > jiff::Timestamp::now());
    Ok(live.then_some(rec.principal))
}
