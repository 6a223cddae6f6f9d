//! efs (Amazon EFS): the operation table. One file per operation group; each arm names the handler.
//! Handlers return [`common::EfsError`]; this table is the one place it becomes the wire error.
//! The EFS CSI driver (in the `eks` layer) provisions volumes as access points through this table.

pub mod access_points;
pub mod common;
pub mod file_systems;
pub mod mount_targets;
pub mod tags;

use serde_json::Value;
use skiff_aws_model::AwsError;

use crate::context::RequestContext;

/// Route one EFS operation to its handler.
pub async fn dispatch(
    ctx: &RequestContext,
    operation: &str,
    input: Value,
) -> Result<Value, AwsError> {
    use access_points as ap;
    use file_systems as fs;
    use mount_targets as mt;
    use tags as t;
    let result = match operation {
        // file_systems.rs
        "CreateFileSystem" => fs::create_file_system(ctx, input).await,
        "DescribeFileSystems" => fs::describe_file_systems(ctx, input).await,
        "DeleteFileSystem" => fs::delete_file_system(ctx, input).await,
        "UpdateFileSystem" => fs::update_file_system(ctx, input).await,
        "UpdateFileSystemProtection" => fs::update_file_system_protection(ctx, input).await,
        "PutLifecycleConfiguration" => fs::put_lifecycle_configuration(ctx, input).await,
        "DescribeLifecycleConfiguration" => fs::describe_lifecycle_configuration(ctx, input).await,
        "PutBackupPolicy" => fs::put_backup_policy(ctx, input).await,
        "DescribeBackupPolicy" => fs::describe_backup_policy(ctx, input).await,
        "PutFileSystemPolicy" => fs::put_file_system_policy(ctx, input).await,
        "DescribeFileSystemPolicy" => fs::describe_file_system_policy(ctx, input).await,
        "DeleteFileSystemPolicy" => fs::delete_file_system_policy(ctx, input).await,
        // mount_targets.rs
        "CreateMountTarget" => mt::create_mount_target(ctx, input).await,
        "DescribeMountTargets" => mt::describe_mount_targets(ctx, input).await,
        "DeleteMountTarget" => mt::delete_mount_target(ctx, input).await,
        "DescribeMountTargetSecurityGroups" => {
            mt::describe_mount_target_security_groups(ctx, input).await
        }
        "ModifyMountTargetSecurityGroups" => {
            mt::modify_mount_target_security_groups(ctx, input).await
        }
        // access_points.rs
        "CreateAccessPoint" => ap::create_access_point(ctx, input).await,
        "DescribeAccessPoints" => ap::describe_access_points(ctx, input).await,
        "DeleteAccessPoint" => ap::delete_access_point(ctx, input).await,
        // tags.rs
        "TagResource" => t::tag_resource(ctx, input).await,
        "UntagResource" => t::untag_resource(ctx, input).await,
        "ListTagsForResource" => t::list_tags_for_resource(ctx, input).await,
        "CreateTags" => t::create_tags(ctx, input).await,
        "DeleteTags" => t::delete_tags(ctx, input).await,
        "DescribeTags" => t::describe_tags(ctx, input).await,
        _ => return Err(crate::not_implemented("efs", operation)),
    };
    result.map_err(AwsError::from)
}

#[cfg(test)]
mod tests;
