//! Inline policies: Put/Get/List/Delete{User,Group,Role}Policy. The documents live inside the
//! holder's record, so deleting the holder and its policies can never drift apart.

use serde_json::{Value, json};

use super::common::*;
use super::groups::GroupRecord;
use super::policy_document::{self, GROUP_INLINE_MAX, ROLE_INLINE_MAX, USER_INLINE_MAX};
use super::roles::RoleRecord;
use super::users::UserRecord;
use crate::context::RequestContext;

fn quota<T: PolicyHolder>() -> (&'static str, usize) {
    match T::KIND {
        "user" => ("PolicySize", USER_INLINE_MAX),
        "group" => ("PolicySize", GROUP_INLINE_MAX),
        _ => ("PolicySize", ROLE_INLINE_MAX),
    }
}

async fn put<T: PolicyHolder>(ctx: &RequestContext, input: &Value) -> IamResult<Value> {
    let (mut holder, rev) = load::<T>(ctx, req_str(input, T::NAME_MEMBER)?).await?;
    holder.guard()?;
    let name = req_str(input, "PolicyName")?;
    check_name("PolicyName", name, 128)?;
    let doc = req_str(input, "PolicyDocument")?;
    let (quota_name, max) = quota::<T>();
    policy_document::validate_permissions(doc, quota_name, max)?;
    holder.inline().insert(name.to_string(), doc.to_string());
    commit(ctx, vec![update_op(&ctx.account_id, &holder, rev)]).await?;
    Ok(json!({}))
}

fn not_found<T: PolicyHolder>(policy: &str) -> IamError {
    IamError::NoSuchEntity(format!(
        "The {} policy with name {policy} cannot be found.",
        T::KIND
    ))
}

async fn get<T: PolicyHolder>(ctx: &RequestContext, input: &Value) -> IamResult<Value> {
    let holder_name = req_str(input, T::NAME_MEMBER)?;
    let (mut holder, _) = load::<T>(ctx, holder_name).await?;
    let name = req_str(input, "PolicyName")?;
    let doc = holder
        .inline()
        .get(name)
        .cloned()
        .ok_or_else(|| not_found::<T>(name))?;
    Ok(json!({
        T::NAME_MEMBER: holder.name(),
        "PolicyName": name,
        "PolicyDocument": encode_document(&doc),
    }))
}

async fn list<T: PolicyHolder>(ctx: &RequestContext, input: &Value) -> IamResult<Value> {
    let (mut holder, _) = load::<T>(ctx, req_str(input, T::NAME_MEMBER)?).await?;
    let names = holder.inline().keys().map(|k| json!(k)).collect();
    page("PolicyNames", names, input)
}

async fn delete<T: PolicyHolder>(ctx: &RequestContext, input: &Value) -> IamResult<Value> {
    let (mut holder, rev) = load::<T>(ctx, req_str(input, T::NAME_MEMBER)?).await?;
    holder.guard()?;
    let name = req_str(input, "PolicyName")?;
    if holder.inline().remove(name).is_none() {
        return Err(not_found::<T>(name));
    }
    commit(ctx, vec![update_op(&ctx.account_id, &holder, rev)]).await?;
    Ok(json!({}))
}

#[doc(alias = "PutRolePolicy")]
pub async fn put_role_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    put::<RoleRecord>(ctx, &input).await
}
#[doc(alias = "PutUserPolicy")]
pub async fn put_user_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    put::<UserRecord>(ctx, &input).await
}
#[doc(alias = "PutGroupPolicy")]
pub async fn put_group_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    put::<GroupRecord>(ctx, &input).await
}
#[doc(alias = "GetRolePolicy")]
pub async fn get_role_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    get::<RoleRecord>(ctx, &input).await
}
#[doc(alias = "GetUserPolicy")]
pub async fn get_user_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    get::<UserRecord>(ctx, &input).await
}
#[doc(alias = "GetGroupPolicy")]
pub async fn get_group_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    get::<GroupRecord>(ctx, &input).await
}
#[doc(alias = "ListRolePolicies")]
pub async fn list_role_policies(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    list::<RoleRecord>(ctx, &input).await
}
#[doc(alias = "ListUserPolicies")]
pub async fn list_user_policies(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    list::<UserRecord>(ctx, &input).await
}
#[doc(alias = "ListGroupPolicies")]
pub async fn list_group_policies(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    list::<GroupRecord>(ctx, &input).await
}
#[doc(alias = "DeleteRolePolicy")]
pub async fn delete_role_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    delete::<RoleRecord>(ctx, &input).await
}
#[doc(alias = "DeleteUserPolicy")]
pub async fn delete_user_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    delete::<UserRecord>(ctx, &input).await
}
#[doc(alias = "DeleteGroupPolicy")]
pub async fn delete_group_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    delete::<GroupRecord>(ctx, &input).await
}
