//! Account-wide views: GetAccountSummary (entity counts and IAM's default quotas).

use serde_json::{Map, Value, json};

use super::common::*;
use super::groups::GroupRecord;
use super::instance_profiles::InstanceProfileRecord;
use super::policies::{ATTACHED_PER_ENTITY, MAX_VERSIONS, PolicyRecord};
use super::roles::RoleRecord;
use super::users::UserRecord;
use crate::context::RequestContext;
use crate::resources;

#[doc(alias = "GetAccountSummary")]
pub async fn get_account_summary(ctx: &RequestContext, _input: Value) -> IamResult<Value> {
    let store = &*ctx.store;
    let acct = &ctx.account_id;
    let users = list_all::<UserRecord>(store, acct).await?;
    let roles = list_all::<RoleRecord>(store, acct).await?;
    let groups = list_all::<GroupRecord>(store, acct).await?;
    let policies = list_all::<PolicyRecord>(store, acct).await?;
    let profiles = list_all::<InstanceProfileRecord>(store, acct).await?;
    let providers = store
        .count(&iam_key(acct, "oidc-provider", ""))
        .await
        .map_err(resources::internal)?;
    let versions: usize = policies.iter().map(|p| p.versions.len()).sum();
    let mut m = Map::new();
    let mut put = |k: &str, v: usize| {
        m.insert(k.to_string(), json!(v));
    };
    put("Users", users.len());
    put("UsersQuota", 5000);
    put("Groups", groups.len());
    put("GroupsQuota", 300);
    put("GroupsPerUserQuota", 10);
    put("Roles", roles.len());
    put("RolesQuota", 1000);
    put("Policies", policies.len());
    put("PoliciesQuota", 1500);
    put("PolicyVersionsInUse", versions);
    put("PolicyVersionsInUseQuota", 10000);
    put("VersionsPerPolicyQuota", MAX_VERSIONS);
    put(
        "PolicySizeQuota",
        super::policy_document::MANAGED_POLICY_MAX,
    );
    put("AttachedPoliciesPerUserQuota", ATTACHED_PER_ENTITY);
    put("AttachedPoliciesPerRoleQuota", ATTACHED_PER_ENTITY);
    put("AttachedPoliciesPerGroupQuota", ATTACHED_PER_ENTITY);
    put("InstanceProfiles", profiles.len());
    put("InstanceProfilesQuota", 1000);
    put("AccessKeysPerUserQuota", super::access_keys::KEYS_PER_USER);
    put("AccountAccessKeysPresent", 0);
    put("AccountMFAEnabled", 0);
    put("Providers", providers as usize);
    put("MFADevices", 0);
    put("MFADevicesInUse", 0);
    put("ServerCertificates", 0);
    put("ServerCertificatesQuota", 20);
    put(
        "UserPolicySizeQuota",
        super::policy_document::USER_INLINE_MAX,
    );
    put(
        "GroupPolicySizeQuota",
        super::policy_document::GROUP_INLINE_MAX,
    );
    put(
        "AssumeRolePolicySizeQuota",
        super::policy_document::TRUST_POLICY_MAX,
    );
    put("SigningCertificatesPerUserQuota", 2);
    put("GlobalEndpointTokenVersion", 1);
    Ok(json!({ "SummaryMap": m }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::iam::test_support::*;

    #[tokio::test]
    async fn counts_entities() {
        let ctx = root_ctx();
        iam(&ctx, "CreateUser", json!({"UserName": "u"}))
            .await
            .unwrap();
        iam(
            &ctx,
            "CreateRole",
            json!({"RoleName": "r", "AssumeRolePolicyDocument": EC2_TRUST}),
        )
        .await
        .unwrap();
        iam(
            &ctx,
            "CreatePolicy",
            json!({"PolicyName": "p", "PolicyDocument": S3_READ}),
        )
        .await
        .unwrap();
        let s = iam(&ctx, "GetAccountSummary", json!({})).await.unwrap();
        let m = &s["SummaryMap"];
        assert_eq!(
            (
                m["Users"].as_u64(),
                m["Roles"].as_u64(),
                m["Policies"].as_u64()
            ),
            (Some(1), Some(1), Some(1))
        );
        assert_eq!(m["PolicyVersionsInUse"], 1);
        assert_eq!(m["Groups"], 0);
    }
}
