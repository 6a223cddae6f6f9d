//! kms: the operation table. One file per operation group; each arm names the handler.
//!
//! Regional: records live under `/aws/<account>/<region>/kms/{key,alias}/…`. Handlers return
//! [`common::KmsError`]; this table is the one place it becomes the wire error. Other services
//! encrypt through [`crypto::encrypt`] / [`crypto::decrypt`].

pub mod aliases;
pub mod common;
pub mod crypto;
pub mod keys;
pub mod policies;
pub mod tags;

pub use crypto::{DataKey, KeyStatus, decrypt, encrypt, generate_data_key_for, key_status};

use serde_json::Value;
use skiff_aws_model::AwsError;

use crate::context::RequestContext;

/// Route one kms operation to its handler.
pub async fn dispatch(
    ctx: &RequestContext,
    operation: &str,
    input: Value,
) -> Result<Value, AwsError> {
    use aliases as a;
    use crypto as c;
    use keys as k;
    use policies as p;
    use tags as t;
    let result = match operation {
        // keys.rs
        "CreateKey" => k::create_key(ctx, input).await,
        "DescribeKey" => k::describe_key(ctx, input).await,
        "ListKeys" => k::list_keys(ctx, input).await,
        "EnableKey" => k::enable_key(ctx, input).await,
        "DisableKey" => k::disable_key(ctx, input).await,
        "UpdateKeyDescription" => k::update_key_description(ctx, input).await,
        "ScheduleKeyDeletion" => k::schedule_key_deletion(ctx, input).await,
        "CancelKeyDeletion" => k::cancel_key_deletion(ctx, input).await,
        // aliases.rs
        "CreateAlias" => a::create_alias(ctx, input).await,
        "UpdateAlias" => a::update_alias(ctx, input).await,
        "DeleteAlias" => a::delete_alias(ctx, input).await,
        "ListAliases" => a::list_aliases(ctx, input).await,
        // crypto.rs
        "Encrypt" => c::encrypt_op(ctx, input).await,
        "Decrypt" => c::decrypt_op(ctx, input).await,
        "ReEncrypt" => c::re_encrypt(ctx, input).await,
        "GenerateDataKey" => c::generate_data_key(ctx, input).await,
        "GenerateDataKeyWithoutPlaintext" => {
            c::generate_data_key_without_plaintext(ctx, input).await
        }
        "GenerateRandom" => c::generate_random(ctx, input).await,
        // policies.rs
        "GetKeyPolicy" => p::get_key_policy(ctx, input).await,
        "PutKeyPolicy" => p::put_key_policy(ctx, input).await,
        "ListKeyPolicies" => p::list_key_policies(ctx, input).await,
        "GetKeyRotationStatus" => p::get_key_rotation_status(ctx, input).await,
        "EnableKeyRotation" => p::enable_key_rotation(ctx, input).await,
        "DisableKeyRotation" => p::disable_key_rotation(ctx, input).await,
        "RotateKeyOnDemand" => p::rotate_key_on_demand(ctx, input).await,
        "ListKeyRotations" => p::list_key_rotations(ctx, input).await,
        // tags.rs
        "TagResource" => t::tag_resource(ctx, input).await,
        "UntagResource" => t::untag_resource(ctx, input).await,
        "ListResourceTags" => t::list_resource_tags(ctx, input).await,
        _ => return Err(crate::not_implemented("kms", operation)),
    };
    result.map_err(AwsError::from)
}

#[cfg(test)]
mod tests;
