//! ec2: the operation table. One file per operation group; each arm names the handler.

use serde_json::Value;
use skiff_aws_model::AwsError;

use crate::context::RequestContext;

/// Route one ec2 operation to its handler.
pub async fn dispatch(
    _ctx: &RequestContext,
    operation: &str,
    _input: Value,
) -> Result<Value, AwsError> {
    #[allow(
        clippy::match_single_binding,
        reason = "the table grows one arm per implemented operation"
    )]
    match operation {
        _ => Err(crate::not_implemented("ec2", operation)),
    }
}
