//! Tags on roles, users, customer managed policies, instance profiles and OIDC providers:
//! Tag*/Untag*/List*Tags. At most 50 tags per entity; tagging an existing key overwrites its value.

use serde_json::{Value, json};

use super::common::*;
use super::instance_profiles::InstanceProfileRecord;
use super::oidc_providers;
use super::policies::{AnyPolicy, PolicyRecord, resolve};
use super::roles::RoleRecord;
use super::users::UserRecord;
use crate::context::RequestContext;

/// IAM's per-entity tag quota.
pub const MAX_TAGS: usize = 50;

trait Taggable: Entity {
    const NAME_MEMBER: &'static str;
    fn tags_mut(&mut self) -> &mut Vec<Tag>;
}

impl Taggable for RoleRecord {
    const NAME_MEMBER: &'static str = "RoleName";
    fn tags_mut(&mut self) -> &mut Vec<Tag> {
        &mut self.tags
    }
}
impl Taggable for UserRecord {
    const NAME_MEMBER: &'static str = "UserName";
    fn tags_mut(&mut self) -> &mut Vec<Tag> {
        &mut self.tags
    }
}
impl Taggable for InstanceProfileRecord {
    const NAME_MEMBER: &'static str = "InstanceProfileName";
    fn tags_mut(&mut self) -> &mut Vec<Tag> {
        &mut self.tags
    }
}
impl Taggable for PolicyRecord {
    const NAME_MEMBER: &'static str = "PolicyName";
    fn tags_mut(&mut self) -> &mut Vec<Tag> {
        &mut self.tags
    }
}

/// Apply `TagX`/`UntagX` to a tag list.
fn apply(tags: &mut Vec<Tag>, input: &Value, untag: bool) -> IamResult<()> {
    if untag {
        let keys = str_list(input, "TagKeys");
        tags.retain(|t| !keys.contains(&t.key));
        return Ok(());
    }
    let new = tags_of(input)?;
    let mut merged = tags.clone();
    merge_tags(&mut merged, new);
    if merged.len() > MAX_TAGS {
        return Err(IamError::LimitExceeded(format!(
            "The number of tags has reached the maximum limit of {MAX_TAGS}."
        )));
    }
    *tags = merged;
    Ok(())
}

async fn change<T: Taggable>(ctx: &RequestContext, input: &Value, untag: bool) -> IamResult<Value> {
    let (mut e, rev) = load::<T>(ctx, req_str(input, T::NAME_MEMBER)?).await?;
    apply(e.tags_mut(), input, untag)?;
    commit(ctx, vec![update_op(&ctx.account_id, &e, rev)]).await?;
    Ok(json!({}))
}

async fn list<T: Taggable>(ctx: &RequestContext, input: &Value) -> IamResult<Value> {
    let (mut e, _) = load::<T>(ctx, req_str(input, T::NAME_MEMBER)?).await?;
    page(
        "Tags",
        e.tags_mut().iter().map(|t| json!(t)).collect(),
        input,
    )
}

#[doc(alias = "TagRole")]
pub async fn tag_role(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    change::<RoleRecord>(ctx, &input, false).await
}
#[doc(alias = "UntagRole")]
pub async fn untag_role(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    change::<RoleRecord>(ctx, &input, true).await
}
#[doc(alias = "ListRoleTags")]
pub async fn list_role_tags(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    list::<RoleRecord>(ctx, &input).await
}
#[doc(alias = "TagUser")]
pub async fn tag_user(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    change::<UserRecord>(ctx, &input, false).await
}
#[doc(alias = "UntagUser")]
pub async fn untag_user(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    change::<UserRecord>(ctx, &input, true).await
}
#[doc(alias = "ListUserTags")]
pub async fn list_user_tags(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    list::<UserRecord>(ctx, &input).await
}
#[doc(alias = "TagInstanceProfile")]
pub async fn tag_instance_profile(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    change::<InstanceProfileRecord>(ctx, &input, false).await
}
#[doc(alias = "UntagInstanceProfile")]
pub async fn untag_instance_profile(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    change::<InstanceProfileRecord>(ctx, &input, true).await
}
#[doc(alias = "ListInstanceProfileTags")]
pub async fn list_instance_profile_tags(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    list::<InstanceProfileRecord>(ctx, &input).await
}

async fn customer_policy(
    ctx: &RequestContext,
    input: &Value,
) -> IamResult<(PolicyRecord, skiff_store::Revision)> {
    let arn = req_str(input, "PolicyArn")?;
    match resolve(ctx, arn).await? {
        AnyPolicy::Customer(p, rev) => Ok((*p, rev)),
        AnyPolicy::Aws(_) => Err(IamError::InvalidInput(format!(
            "Cannot tag AWS managed policy {arn}."
        ))),
    }
}

#[doc(alias = "TagPolicy")]
pub async fn tag_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let (mut p, rev) = customer_policy(ctx, &input).await?;
    apply(&mut p.tags, &input, false)?;
    commit(ctx, vec![update_op(&ctx.account_id, &p, rev)]).await?;
    Ok(json!({}))
}
#[doc(alias = "UntagPolicy")]
pub async fn untag_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let (mut p, rev) = customer_policy(ctx, &input).await?;
    apply(&mut p.tags, &input, true)?;
    commit(ctx, vec![update_op(&ctx.account_id, &p, rev)]).await?;
    Ok(json!({}))
}
#[doc(alias = "ListPolicyTags")]
pub async fn list_policy_tags(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let tags = match resolve(ctx, req_str(&input, "PolicyArn")?).await? {
        AnyPolicy::Customer(p, _) => p.tags,
        AnyPolicy::Aws(_) => Vec::new(),
    };
    page("Tags", tags.iter().map(|t| json!(t)).collect(), &input)
}

#[doc(alias = "TagOpenIDConnectProvider")]
pub async fn tag_open_id_connect_provider(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let (mut p, rev) =
        oidc_providers::load_by_arn(ctx, req_str(&input, "OpenIDConnectProviderArn")?).await?;
    apply(&mut p.tags, &input, false)?;
    oidc_providers::save(ctx, &p, rev).await?;
    Ok(json!({}))
}
#[doc(alias = "UntagOpenIDConnectProvider")]
pub async fn untag_open_id_connect_provider(
    ctx: &RequestContext,
    input: Value,
) -> IamResult<Value> {
    let (mut p, rev) =
        oidc_providers::load_by_arn(ctx, req_str(&input, "OpenIDConnectProviderArn")?).await?;
    apply(&mut p.tags, &input, true)?;
    oidc_providers::save(ctx, &p, rev).await?;
    Ok(json!({}))
}
#[doc(alias = "ListOpenIDConnectProviderTags")]
pub async fn list_open_id_connect_provider_tags(
    ctx: &RequestContext,
    input: Value,
) -> IamResult<Value> {
    let (p, _) =
        oidc_providers::load_by_arn(ctx, req_str(&input, "OpenIDConnectProviderArn")?).await?;
    page("Tags", p.tags.iter().map(|t| json!(t)).collect(), &input)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::iam::test_support::*;

    #[tokio::test]
    async fn tag_untag_list() {
        let ctx = root_ctx();
        iam(&ctx, "CreateRole", json!({"RoleName": "r", "AssumeRolePolicyDocument": EC2_TRUST, "Tags": [{"Key": "a", "Value": "1"}]})).await.unwrap();
        iam(&ctx, "TagRole", json!({"RoleName": "r", "Tags": [{"Key": "a", "Value": "2"}, {"Key": "b", "Value": "3"}]})).await.unwrap();
        let t = iam(&ctx, "ListRoleTags", json!({"RoleName": "r"}))
            .await
            .unwrap();
        assert_eq!(
            t["Tags"],
            json!([{"Key": "a", "Value": "2"}, {"Key": "b", "Value": "3"}])
        );
        iam(
            &ctx,
            "UntagRole",
            json!({"RoleName": "r", "TagKeys": ["a"]}),
        )
        .await
        .unwrap();
        let t = iam(&ctx, "ListRoleTags", json!({"RoleName": "r"}))
            .await
            .unwrap();
        assert_eq!(t["Tags"], json!([{"Key": "b", "Value": "3"}]));
        let many: Vec<_> = (0..50)
            .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
            .collect();
        let e = iam(&ctx, "TagRole", json!({"RoleName": "r", "Tags": many}))
            .await
            .unwrap_err();
        assert_eq!(e.code, "LimitExceeded");

        let p = iam(
            &ctx,
            "CreatePolicy",
            json!({"PolicyName": "p", "PolicyDocument": S3_READ}),
        )
        .await
        .unwrap();
        iam(
            &ctx,
            "TagPolicy",
            json!({"PolicyArn": p["Policy"]["Arn"], "Tags": [{"Key": "x", "Value": "y"}]}),
        )
        .await
        .unwrap();
        let t = iam(
            &ctx,
            "ListPolicyTags",
            json!({"PolicyArn": p["Policy"]["Arn"]}),
        )
        .await
        .unwrap();
        assert_eq!(t["Tags"], json!([{"Key": "x", "Value": "y"}]));
        let e = iam(&ctx, "TagPolicy", json!({"PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess", "Tags": [{"Key": "x", "Value": "y"}]})).await.unwrap_err();
        assert_eq!(e.code, "InvalidInput");
        iam(&ctx, "CreateUser", json!({"UserName": "u"}))
            .await
            .unwrap();
        iam(
            &ctx,
            "TagUser",
            json!({"UserName": "u", "Tags": [{"Key": "x", "Value": "y"}]}),
        )
        .await
        .unwrap();
        let t = iam(&ctx, "ListUserTags", json!({"UserName": "u"}))
            .await
            .unwrap();
        assert_eq!(t["Tags"][0]["Key"], "x");
    }
}
