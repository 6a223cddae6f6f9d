//! iam: the operation table. One file per operation group; each arm names the handler.
//!
//! IAM is global: records live under `/aws/<account>/global/iam/<kind>/<name>`. Handlers return
//! [`common::IamError`]; this table is the one place it becomes the wire error.

pub mod access_keys;
pub mod account;
pub mod common;
pub mod groups;
pub mod identity;
pub mod inline_policies;
pub mod instance_profiles;
pub mod managed_policies;
pub mod oidc_providers;
pub mod policies;
pub mod policy_document;
pub mod roles;
pub mod service_linked_roles;
pub mod simulate;
pub mod tags;
pub mod users;

#[cfg(test)]
pub mod test_support;

use serde_json::Value;
use skiff_aws_model::AwsError;

use crate::context::RequestContext;

/// Route one iam operation to its handler.
pub async fn dispatch(
    ctx: &RequestContext,
    operation: &str,
    input: Value,
) -> Result<Value, AwsError> {
    use access_keys as ak;
    use groups as g;
    use inline_policies as ip;
    use instance_profiles as prof;
    use oidc_providers as oidc;
    use policies as p;
    use roles as r;
    use service_linked_roles as slr;
    use tags as t;
    use users as u;
    let result = match operation {
        // account.rs
        "GetAccountSummary" => account::get_account_summary(ctx, input).await,
        // roles.rs
        "CreateRole" => r::create_role(ctx, input).await,
        "GetRole" => r::get_role(ctx, input).await,
        "ListRoles" => r::list_roles(ctx, input).await,
        "DeleteRole" => r::delete_role(ctx, input).await,
        "UpdateRole" => r::update_role(ctx, input).await,
        "UpdateRoleDescription" => r::update_role_description(ctx, input).await,
        "UpdateAssumeRolePolicy" => r::update_assume_role_policy(ctx, input).await,
        "PutRolePermissionsBoundary" => r::put_role_permissions_boundary(ctx, input).await,
        "DeleteRolePermissionsBoundary" => r::delete_role_permissions_boundary(ctx, input).await,
        // service_linked_roles.rs
        "CreateServiceLinkedRole" => slr::create_service_linked_role(ctx, input).await,
        "DeleteServiceLinkedRole" => slr::delete_service_linked_role(ctx, input).await,
        "GetServiceLinkedRoleDeletionStatus" => {
            slr::get_service_linked_role_deletion_status(ctx, input).await
        }
        // users.rs
        "CreateUser" => u::create_user(ctx, input).await,
        "GetUser" => u::get_user(ctx, input).await,
        "ListUsers" => u::list_users(ctx, input).await,
        "DeleteUser" => u::delete_user(ctx, input).await,
        "PutUserPermissionsBoundary" => u::put_user_permissions_boundary(ctx, input).await,
        "DeleteUserPermissionsBoundary" => u::delete_user_permissions_boundary(ctx, input).await,
        // groups.rs
        "CreateGroup" => g::create_group(ctx, input).await,
        "GetGroup" => g::get_group(ctx, input).await,
        "ListGroups" => g::list_groups(ctx, input).await,
        "DeleteGroup" => g::delete_group(ctx, input).await,
        "AddUserToGroup" => g::add_user_to_group(ctx, input).await,
        "RemoveUserFromGroup" => g::remove_user_from_group(ctx, input).await,
        "ListGroupsForUser" => g::list_groups_for_user(ctx, input).await,
        // access_keys.rs
        "CreateAccessKey" => ak::create_access_key(ctx, input).await,
        "ListAccessKeys" => ak::list_access_keys(ctx, input).await,
        "UpdateAccessKey" => ak::update_access_key(ctx, input).await,
        "DeleteAccessKey" => ak::delete_access_key(ctx, input).await,
        "GetAccessKeyLastUsed" => ak::get_access_key_last_used(ctx, input).await,
        // policies.rs
        "CreatePolicy" => p::create_policy(ctx, input).await,
        "GetPolicy" => p::get_policy(ctx, input).await,
        "ListPolicies" => p::list_policies(ctx, input).await,
        "DeletePolicy" => p::delete_policy(ctx, input).await,
        "CreatePolicyVersion" => p::create_policy_version(ctx, input).await,
        "GetPolicyVersion" => p::get_policy_version(ctx, input).await,
        "ListPolicyVersions" => p::list_policy_versions(ctx, input).await,
        "DeletePolicyVersion" => p::delete_policy_version(ctx, input).await,
        "SetDefaultPolicyVersion" => p::set_default_policy_version(ctx, input).await,
        "AttachRolePolicy" => p::attach_role_policy(ctx, input).await,
        "AttachUserPolicy" => p::attach_user_policy(ctx, input).await,
        "AttachGroupPolicy" => p::attach_group_policy(ctx, input).await,
        "DetachRolePolicy" => p::detach_role_policy(ctx, input).await,
        "DetachUserPolicy" => p::detach_user_policy(ctx, input).await,
        "DetachGroupPolicy" => p::detach_group_policy(ctx, input).await,
        "ListAttachedRolePolicies" => p::list_attached_role_policies(ctx, input).await,
        "ListAttachedUserPolicies" => p::list_attached_user_policies(ctx, input).await,
        "ListAttachedGroupPolicies" => p::list_attached_group_policies(ctx, input).await,
        "ListEntitiesForPolicy" => p::list_entities_for_policy(ctx, input).await,
        // inline_policies.rs
        "PutRolePolicy" => ip::put_role_policy(ctx, input).await,
        "PutUserPolicy" => ip::put_user_policy(ctx, input).await,
        "PutGroupPolicy" => ip::put_group_policy(ctx, input).await,
        "GetRolePolicy" => ip::get_role_policy(ctx, input).await,
        "GetUserPolicy" => ip::get_user_policy(ctx, input).await,
        "GetGroupPolicy" => ip::get_group_policy(ctx, input).await,
        "ListRolePolicies" => ip::list_role_policies(ctx, input).await,
        "ListUserPolicies" => ip::list_user_policies(ctx, input).await,
        "ListGroupPolicies" => ip::list_group_policies(ctx, input).await,
        "DeleteRolePolicy" => ip::delete_role_policy(ctx, input).await,
        "DeleteUserPolicy" => ip::delete_user_policy(ctx, input).await,
        "DeleteGroupPolicy" => ip::delete_group_policy(ctx, input).await,
        // instance_profiles.rs
        "CreateInstanceProfile" => prof::create_instance_profile(ctx, input).await,
        "GetInstanceProfile" => prof::get_instance_profile(ctx, input).await,
        "ListInstanceProfiles" => prof::list_instance_profiles(ctx, input).await,
        "ListInstanceProfilesForRole" => prof::list_instance_profiles_for_role(ctx, input).await,
        "DeleteInstanceProfile" => prof::delete_instance_profile(ctx, input).await,
        "AddRoleToInstanceProfile" => prof::add_role_to_instance_profile(ctx, input).await,
        "RemoveRoleFromInstanceProfile" => {
            prof::remove_role_from_instance_profile(ctx, input).await
        }
        // oidc_providers.rs
        "CreateOpenIDConnectProvider" => oidc::create_open_id_connect_provider(ctx, input).await,
        "GetOpenIDConnectProvider" => oidc::get_open_id_connect_provider(ctx, input).await,
        "ListOpenIDConnectProviders" => oidc::list_open_id_connect_providers(ctx, input).await,
        "DeleteOpenIDConnectProvider" => oidc::delete_open_id_connect_provider(ctx, input).await,
        "AddClientIDToOpenIDConnectProvider" => {
            oidc::add_client_id_to_open_id_connect_provider(ctx, input).await
        }
        "RemoveClientIDFromOpenIDConnectProvider" => {
            oidc::remove_client_id_from_open_id_connect_provider(ctx, input).await
        }
        "UpdateOpenIDConnectProviderThumbprint" => {
            oidc::update_open_id_connect_provider_thumbprint(ctx, input).await
        }
        // simulate.rs
        "SimulateCustomPolicy" => simulate::simulate_custom_policy(ctx, input).await,
        "SimulatePrincipalPolicy" => simulate::simulate_principal_policy(ctx, input).await,
        // tags.rs
        "TagRole" => t::tag_role(ctx, input).await,
        "UntagRole" => t::untag_role(ctx, input).await,
        "ListRoleTags" => t::list_role_tags(ctx, input).await,
        "TagUser" => t::tag_user(ctx, input).await,
        "UntagUser" => t::untag_user(ctx, input).await,
        "ListUserTags" => t::list_user_tags(ctx, input).await,
        "TagPolicy" => t::tag_policy(ctx, input).await,
        "UntagPolicy" => t::untag_policy(ctx, input).await,
        "ListPolicyTags" => t::list_policy_tags(ctx, input).await,
        "TagInstanceProfile" => t::tag_instance_profile(ctx, input).await,
        "UntagInstanceProfile" => t::untag_instance_profile(ctx, input).await,
        "ListInstanceProfileTags" => t::list_instance_profile_tags(ctx, input).await,
        "TagOpenIDConnectProvider" => t::tag_open_id_connect_provider(ctx, input).await,
        "UntagOpenIDConnectProvider" => t::untag_open_id_connect_provider(ctx, input).await,
        "ListOpenIDConnectProviderTags" => t::list_open_id_connect_provider_tags(ctx, input).await,
        _ => return Err(crate::not_implemented("iam", operation)),
    };
    result.map_err(AwsError::from)
}
