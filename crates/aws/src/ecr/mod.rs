//! ecr: the operation table. One file per operation group; each arm names the handler.
//!
//! Regional: repositories live under `/aws/<account>/<region>/ecr/repository/<name>` with their
//! images inside. Handlers return [`common::EcrError`]; this table is the one place it becomes the wire
//! error. Repository URIs are `<account>.dkr.ecr.<region>.amazonaws.com/<name>`, or the gateway's own
//! host when it serves the registry (`registry*.rs`, OCI distribution v2 under `/v2/`; `docs/ecr.md`).

pub mod auth;
pub mod common;
pub mod images;
pub mod layers;
pub mod policies;
pub mod registry;
pub mod registry_blobs;
pub mod registry_gc;
pub mod registry_manifests;
pub mod repositories;
pub mod tags;

use serde_json::Value;
use skiff_aws_model::AwsError;

use crate::context::RequestContext;

/// Route one ecr operation to its handler.
pub async fn dispatch(
    ctx: &RequestContext,
    operation: &str,
    input: Value,
) -> Result<Value, AwsError> {
    use images as i;
    use policies as p;
    use repositories as r;
    use tags as t;
    let result = match operation {
        // repositories.rs
        "CreateRepository" => r::create_repository(ctx, input).await,
        "DescribeRepositories" => r::describe_repositories(ctx, input).await,
        "DeleteRepository" => r::delete_repository(ctx, input).await,
        "PutImageTagMutability" => r::put_image_tag_mutability(ctx, input).await,
        "PutImageScanningConfiguration" => r::put_image_scanning_configuration(ctx, input).await,
        // images.rs
        "PutImage" => i::put_image(ctx, input).await,
        "BatchGetImage" => i::batch_get_image(ctx, input).await,
        "DescribeImages" => i::describe_images(ctx, input).await,
        "ListImages" => i::list_images(ctx, input).await,
        "BatchDeleteImage" => i::batch_delete_image(ctx, input).await,
        // layers.rs
        "InitiateLayerUpload" => layers::initiate_layer_upload(ctx, input).await,
        "UploadLayerPart" => layers::upload_layer_part(ctx, input).await,
        "CompleteLayerUpload" => layers::complete_layer_upload(ctx, input).await,
        "BatchCheckLayerAvailability" => layers::batch_check_layer_availability(ctx, input).await,
        "GetDownloadUrlForLayer" => layers::get_download_url_for_layer(ctx, input).await,
        // policies.rs
        "PutLifecyclePolicy" => p::put_lifecycle_policy(ctx, input).await,
        "GetLifecyclePolicy" => p::get_lifecycle_policy(ctx, input).await,
        "DeleteLifecyclePolicy" => p::delete_lifecycle_policy(ctx, input).await,
        "SetRepositoryPolicy" => p::set_repository_policy(ctx, input).await,
        "GetRepositoryPolicy" => p::get_repository_policy(ctx, input).await,
        "DeleteRepositoryPolicy" => p::delete_repository_policy(ctx, input).await,
        // auth.rs
        "GetAuthorizationToken" => auth::get_authorization_token(ctx, input).await,
        // tags.rs
        "TagResource" => t::tag_resource(ctx, input).await,
        "UntagResource" => t::untag_resource(ctx, input).await,
        "ListTagsForResource" => t::list_tags_for_resource(ctx, input).await,
        _ => return Err(crate::not_implemented("ecr", operation)),
    };
    result.map_err(AwsError::from)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod layers_tests;
