//! secretsmanager: the operation table. One file per operation group; each arm names the handler.
//!
//! Regional: secrets live under `/aws/<account>/<region>/secretsmanager/secret/<name>`, their versions
//! inside. Handlers return [`common::SmError`]; this table is the one place it becomes the wire error.
//! Values of secrets that name a KMS key are sealed with [`crate::kms::encrypt`].

pub mod common;
pub mod policies;
pub mod secrets;
pub mod tags;
pub mod values;

use serde_json::Value;
use skiff_aws_model::AwsError;

use crate::context::RequestContext;

/// Route one secretsmanager operation to its handler.
pub async fn dispatch(
    ctx: &RequestContext,
    operation: &str,
    input: Value,
) -> Result<Value, AwsError> {
    use secrets as s;
    use tags as t;
    use values as v;
    let result = match operation {
        // secrets.rs
        "CreateSecret" => s::create_secret(ctx, input).await,
        "DescribeSecret" => s::describe_secret(ctx, input).await,
        "ListSecrets" => s::list_secrets(ctx, input).await,
        "UpdateSecret" => s::update_secret(ctx, input).await,
        "DeleteSecret" => s::delete_secret(ctx, input).await,
        "RestoreSecret" => s::restore_secret(ctx, input).await,
        // values.rs
        "GetSecretValue" => v::get_secret_value(ctx, input).await,
        "PutSecretValue" => v::put_secret_value(ctx, input).await,
        "ListSecretVersionIds" => v::list_secret_version_ids(ctx, input).await,
        "UpdateSecretVersionStage" => v::update_secret_version_stage(ctx, input).await,
        // policies.rs
        "GetResourcePolicy" => policies::get_resource_policy(ctx, input).await,
        "PutResourcePolicy" => policies::put_resource_policy(ctx, input).await,
        "DeleteResourcePolicy" => policies::delete_resource_policy(ctx, input).await,
        "ValidateResourcePolicy" => policies::validate_resource_policy(ctx, input).await,
        // tags.rs
        "TagResource" => t::tag_resource(ctx, input).await,
        "UntagResource" => t::untag_resource(ctx, input).await,
        _ => return Err(crate::not_implemented("secretsmanager", operation)),
    };
    result.map_err(AwsError::from)
}

#[cfg(test)]
mod tests;
