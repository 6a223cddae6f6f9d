//! logs (CloudWatch Logs): the operation table. One file per operation group; each arm names the
//! handler. Handlers return [`common::LogsError`]; this table is the one place it becomes the wire
//! error. EKS control plane logging writes through [`events::append`].

pub mod common;
pub mod events;
pub mod filter_pattern;
pub mod groups;
pub mod streams;
pub mod tags;

use serde_json::Value;
use skiff_aws_model::AwsError;

use crate::context::RequestContext;

/// Route one CloudWatch Logs operation to its handler.
pub async fn dispatch(
    ctx: &RequestContext,
    operation: &str,
    input: Value,
) -> Result<Value, AwsError> {
    use events as e;
    use groups as g;
    use streams as s;
    use tags as t;
    let result = match operation {
        // groups.rs
        "CreateLogGroup" => g::create_log_group(ctx, input).await,
        "DescribeLogGroups" => g::describe_log_groups(ctx, input).await,
        "DeleteLogGroup" => g::delete_log_group(ctx, input).await,
        "PutRetentionPolicy" => g::put_retention_policy(ctx, input).await,
        "DeleteRetentionPolicy" => g::delete_retention_policy(ctx, input).await,
        "AssociateKmsKey" => g::associate_kms_key(ctx, input).await,
        "DisassociateKmsKey" => g::disassociate_kms_key(ctx, input).await,
        // streams.rs
        "CreateLogStream" => s::create_log_stream(ctx, input).await,
        "DescribeLogStreams" => s::describe_log_streams(ctx, input).await,
        "DeleteLogStream" => s::delete_log_stream(ctx, input).await,
        // events.rs
        "PutLogEvents" => e::put_log_events(ctx, input).await,
        "GetLogEvents" => e::get_log_events(ctx, input).await,
        "FilterLogEvents" => e::filter_log_events(ctx, input).await,
        // tags.rs
        "TagResource" => t::tag_resource(ctx, input).await,
        "UntagResource" => t::untag_resource(ctx, input).await,
        "ListTagsForResource" => t::list_tags_for_resource(ctx, input).await,
        "TagLogGroup" => t::tag_log_group(ctx, input).await,
        "UntagLogGroup" => t::untag_log_group(ctx, input).await,
        "ListTagsLogGroup" => t::list_tags_log_group(ctx, input).await,
        _ => return Err(crate::not_implemented("logs", operation)),
    };
    result.map_err(AwsError::from)
}

#[cfg(test)]
mod tests;
