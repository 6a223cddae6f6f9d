//! eks: the operation table. One file per operation group; each arm names the handler.
//!
//! The handlers validate and record; `crates/eks` watches the records under
//! `/aws/<account>/<region>/eks/…` and makes clusters and nodegroups real, reporting back through the
//! domain functions re-exported at the bottom (`set_cluster_active`, `set_nodegroup_status`, …).

use serde_json::Value;
use skiff_aws_model::AwsError;

use crate::context::RequestContext;

pub mod access_entries;
pub mod addons;
mod common;
pub mod fargate_profiles;
pub mod identity_providers;

pub mod clusters;
pub mod nodegroups;
pub mod pod_identity;
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
        // addons.rs
        "CreateAddon" => addons::create_addon(ctx, input).await,
        "DescribeAddon" => addons::describe_addon(ctx, input).await,
        "ListAddons" => addons::list_addons(ctx, input).await,
        "UpdateAddon" => addons::update_addon(ctx, input).await,
        "DeleteAddon" => addons::delete_addon(ctx, input).await,
        "DescribeAddonVersions" => addons::describe_addon_versions(ctx, input).await,
        "DescribeAddonConfiguration" => addons::describe_addon_configuration(ctx, input).await,
        // access_entries.rs
        "CreateAccessEntry" => access_entries::create_access_entry(ctx, input).await,
        "DescribeAccessEntry" => access_entries::describe_access_entry(ctx, input).await,
        "UpdateAccessEntry" => access_entries::update_access_entry(ctx, input).await,
        "DeleteAccessEntry" => access_entries::delete_access_entry(ctx, input).await,
        "ListAccessEntries" => access_entries::list_access_entries(ctx, input).await,
        "AssociateAccessPolicy" => access_entries::associate_access_policy(ctx, input).await,
        "DisassociateAccessPolicy" => access_entries::disassociate_access_policy(ctx, input).await,
        "ListAssociatedAccessPolicies" => {
            access_entries::list_associated_access_policies(ctx, input).await
        }
        "ListAccessPolicies" => access_entries::list_access_policies(ctx, input).await,
        // fargate_profiles.rs
        "CreateFargateProfile" => fargate_profiles::create_fargate_profile(ctx, input).await,
        "DescribeFargateProfile" => fargate_profiles::describe_fargate_profile(ctx, input).await,
        "ListFargateProfiles" => fargate_profiles::list_fargate_profiles(ctx, input).await,
        "DeleteFargateProfile" => fargate_profiles::delete_fargate_profile(ctx, input).await,
        // pod_identity.rs
        "CreatePodIdentityAssociation" => {
            pod_identity::create_pod_identity_association(ctx, input).await
        }
        "DescribePodIdentityAssociation" => {
            pod_identity::describe_pod_identity_association(ctx, input).await
        }
        "UpdatePodIdentityAssociation" => {
            pod_identity::update_pod_identity_association(ctx, input).await
        }
        "DeletePodIdentityAssociation" => {
            pod_identity::delete_pod_identity_association(ctx, input).await
        }
        "ListPodIdentityAssociations" => {
            pod_identity::list_pod_identity_associations(ctx, input).await
        }
        // updates.rs
        "AssociateIdentityProviderConfig" => {
            identity_providers::associate_identity_provider_config(ctx, input).await
        }
        "DescribeIdentityProviderConfig" => {
            identity_providers::describe_identity_provider_config(ctx, input).await
        }
        "ListIdentityProviderConfigs" => {
            identity_providers::list_identity_provider_configs(ctx, input).await
        }
        "DisassociateIdentityProviderConfig" => {
            identity_providers::disassociate_identity_provider_config(ctx, input).await
        }
        "UpdateClusterVersion" => updates::update_cluster_version(ctx, input).await,
        "UpdateClusterConfig" => updates::update_cluster_config(ctx, input).await,
        "AssociateEncryptionConfig" => updates::associate_encryption_config(ctx, input).await,
        "DescribeUpdate" => updates::describe_update(ctx, input).await,
        "ListUpdates" => updates::list_updates(ctx, input).await,
        // tags.rs
        "TagResource" => tags::tag_resource(ctx, input).await,
        "UntagResource" => tags::untag_resource(ctx, input).await,
        "ListTagsForResource" => tags::list_tags_for_resource(ctx, input).await,
        _ => Err(crate::not_implemented("eks", operation)),
    }
}

pub use access_entries::list_access_entry_records;
pub use addons::{list_addon_records, set_addon_status};
pub use clusters::{
    DEFAULT_VERSION, cluster_creator, get_cluster, set_cluster_active, set_cluster_status,
};
pub use fargate_profiles::{list_fargate_profile_records, set_fargate_profile_status};
pub use identity_providers::list_identity_provider_records;
pub use nodegroups::{list_nodegroup_records, set_nodegroup_status};
pub use pod_identity::list_pod_identity_records;
pub use updates::complete_update;

#[cfg(test)]
mod tests;
