//! GetSessionToken: temporary credentials for the calling user or root, standing for the same
//! identity. Sessions may not mint further sessions.

use serde_json::{Value, json};

use super::{StsError, StsResult, duration, issue};
use crate::context::RequestContext;

/// Users: 15 minutes to 36 hours (default 12 hours); root: at most one hour.
pub const DEFAULT_SECONDS: i64 = 43_200;
pub const MAX_SECONDS: i64 = 129_600;
pub const ROOT_MAX_SECONDS: i64 = 3_600;

#[doc(alias = "GetSessionToken")]
pub async fn get_session_token(ctx: &RequestContext, input: Value) -> StsResult<Value> {
    let c = &ctx.caller;
    if c.arn.starts_with("arn:aws:sts::") {
        return Err(StsError::AccessDenied(
            "Cannot call GetSessionToken with session credentials".into(),
        ));
    }
    let max = if c.arn.ends_with(":root") {
        ROOT_MAX_SECONDS
    } else {
        MAX_SECONDS
    };
    let seconds = duration(
        &input,
        DEFAULT_SECONDS,
        900,
        max,
        &format!(
            "1 validation error detected: Value '{}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to {max}",
            input.get("DurationSeconds").cloned().unwrap_or_default()
        ),
    )?;
    let creds = issue(ctx, &c.account_id, &c.arn, &c.user_id, seconds, Vec::new()).await?;
    Ok(json!({ "Credentials": creds }))
}
