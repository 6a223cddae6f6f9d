//! GetCallerIdentity: who the request's signature says the caller is. Needs no permission (as on AWS).

use serde_json::{Value, json};

use super::StsResult;
use crate::context::RequestContext;

#[doc(alias = "GetCallerIdentity")]
pub async fn get_caller_identity(ctx: &RequestContext, _input: Value) -> StsResult<Value> {
    let c = &ctx.caller;
    Ok(json!({ "UserId": c.user_id, "Account": c.account_id, "Arn": c.arn }))
}
