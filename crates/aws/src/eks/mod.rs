//! eks: the operation table. One file per operation group; each arm names the handler.
//!
//! The handlers validate and record; `crates/eks` watches the records under
//! `/aws/<account>/<region>/eks/…` and makes clusters and nodegroups real, reporting back through the
//! domain functions re-exported at the bottom (`set_cluster_active`, `set_nodegroup_status`, …).

use serde_json::Value;
use skiff_aws_model::AwsError;

use crate::context::RequestContext;

mod common;

pub mod clusters;
pub mod nodegroups;
mod tags;
pub mod updates;

/// Route one eks operation to its handler.
pub async fn dispatch(
    ctx: &RequestContext,
    operation: &str,
    input: Value,
) -> Result<Value, AwsError> {
    match operation {
        // clusters.rs
        "CreateCluster" => clusters::create_cluster(ctx, input).await,
        "DescribeCluster" => clusters::describe_cluster(ctx, input).await,
        "ListClusters" => clusters::list_clusters(ctx, input).await,
        "DeleteCluster" => clusters::delete_cluster(ctx, input).await,
        // nodegroups.rs
        "CreateNodegroup" => nodegroups::create_nodegroup(ctx, input).await,
        "DescribeNodegroup" => nodegroups::describe_nodegroup(ctx, input).await,
        "ListNodegroups" => nodegroups::list_nodegroups(ctx, input).await,
        "UpdateNodegroupConfig" => nodegroups::update_nodegroup_config(ctx, input).await,
        "UpdateNodegroupVersion" => nodegroups::update_nodegroup_version(ctx, input).await,
        "DeleteNodegroup" => nodegroups::delete_nodegroup(ctx, input).await,
        // updates.rs
        "UpdateClusterVersion" => updates::update_cluster_version(ctx, input).await,
        "UpdateClusterConfig" => updates::update_cluster_config(ctx, input).await,
        "DescribeUpdate" => updates::describe_update(ctx, input).await,
        "ListUpdates" => updates::list_updates(ctx, input).await,
        // tags.rs
        "TagResource" => tags::tag_resource(ctx, input).await,
        "UntagResource" => tags::untag_resource(ctx, input).await,
        "ListTagsForResource" => tags::list_tags_for_resource(ctx, input).await,
        _ => Err(crate::not_implemented("eks", operation)),
    }
}

pub use clusters::{
    DEFAULT_VERSION, cluster_creator, get_cluster, set_cluster_active, set_cluster_status,
};
pub use nodegroups::{list_nodegroup_records, set_nodegroup_status};
pub use updates::complete_update;

#[cfg(test)]
mod tests;
