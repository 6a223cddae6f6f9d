//! Users: CreateUser, GetUser, ListUsers, DeleteUser, Put/DeleteUserPermissionsBoundary.
//!
//! A user may not be deleted while it still has access keys, policies or group memberships
//! (`DeleteConflict`, as IAM answers; the CLI and terraform remove those first).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::access_keys::AccessKeyRecord;
use super::common::*;
use super::groups::GroupRecord;
use crate::context::RequestContext;
use crate::resources::new_iam_id;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    pub user_name: String,
    pub user_id: String,
    pub path: String,
    pub arn: String,
    pub create_date: String,
    #[serde(default)]
    pub permissions_boundary: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub attached_policies: Vec<String>,
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
}

impl Entity for UserRecord {
    const KIND: &'static str = "user";
    fn not_found(name: &str) -> String {
        format!("The user with name {name} cannot be found.")
    }
    fn name(&self) -> &str {
        &self.user_name
    }
}

impl PolicyHolder for UserRecord {
    const NAME_MEMBER: &'static str = "UserName";
    fn attached(&mut self) -> &mut Vec<String> {
        &mut self.attached_policies
    }
    fn inline(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.inline_policies
    }
}

impl UserRecord {
    pub fn to_wire(&self, full: bool) -> Value {
        let mut o = Map::new();
        o.insert("Path".into(), json!(self.path));
        o.insert("UserName".into(), json!(self.user_name));
        o.insert("UserId".into(), json!(self.user_id));
        o.insert("Arn".into(), json!(self.arn));
        o.insert("CreateDate".into(), json!(self.create_date));
        if full {
            if let Some(b) = &self.permissions_boundary {
                o.insert("PermissionsBoundary".into(), boundary_value(b));
            }
            put_tags(&mut o, &self.tags);
        }
        Value::Object(o)
    }
}

/// The user name of an IAM user ARN (`arn:aws:iam::<acct>:user/<path><name>`).
pub fn name_from_arn(arn: &str) -> Option<&str> {
    let (_, resource) = arn.strip_prefix("arn:aws:iam::")?.split_once(':')?;
    let path_name = resource.strip_prefix("user/")?;
    path_name.rsplit('/').next()
}

/// `UserName`, or the calling user's when omitted (IAM's rule for GetUser, CreateAccessKey, …).
pub fn target_user(ctx: &RequestContext, input: &Value) -> IamResult<String> {
    if let Some(n) = opt_str(input, "UserName") {
        return Ok(n.to_string());
    }
    name_from_arn(&ctx.caller.arn)
        .map(str::to_string)
        .ok_or_else(|| {
            IamError::Validation(
                "Must specify userName when calling with non-User credentials".into(),
            )
        })
}

#[doc(alias = "CreateUser")]
pub async fn create_user(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let name = req_str(&input, "UserName")?;
    check_name("UserName", name, 64)?;
    let path = path_of(&input)?;
    let mut user = UserRecord {
        user_name: name.to_string(),
        user_id: new_iam_id("AIDA"),
        arn: arn(&ctx.account_id, "user", &path, name),
        path,
        create_date: now(),
        permissions_boundary: None,
        tags: tags_of(&input)?,
        attached_policies: Vec::new(),
        inline_policies: BTreeMap::new(),
    };
    if let Some(b) = opt_str(&input, "PermissionsBoundary") {
        super::roles::check_boundary(ctx, b).await?;
        user.permissions_boundary = Some(b.to_string());
    }
    let exists = || IamError::EntityAlreadyExists(format!("User with name {name} already exists."));
    if find::<UserRecord>(&*ctx.store, &ctx.account_id, name)
        .await?
        .is_some()
    {
        return Err(exists());
    }
    commit(ctx, vec![create_op(&ctx.account_id, &user)])
        .await
        .map_err(|e| match e {
            IamError::ConcurrentModification(_) => exists(),
            other => other,
        })?;
    Ok(json!({ "User": user.to_wire(true) }))
}

#[doc(alias = "GetUser")]
pub async fn get_user(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    if opt_str(&input, "UserName").is_none() && ctx.caller.arn.ends_with(":root") {
        return Ok(json!({ "User": {
            "Path": "/",
            "UserId": ctx.caller.account_id,
            "Arn": ctx.caller.arn,
            "CreateDate": super::managed_policies::CREATE_DATE,
        }}));
    }
    let name = target_user(ctx, &input)?;
    let (user, _) = load::<UserRecord>(ctx, &name).await?;
    Ok(json!({ "User": user.to_wire(true) }))
}

#[doc(alias = "ListUsers")]
pub async fn list_users(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let users = list_all::<UserRecord>(&*ctx.store, &ctx.account_id).await?;
    let items = users
        .iter()
        .filter(|u| path_prefix_matches(&input, &u.path))
        .map(|u| u.to_wire(false))
        .collect();
    page("Users", items, &input)
}

#[doc(alias = "DeleteUser")]
pub async fn delete_user(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let name = req_str(&input, "UserName")?;
    let (user, rev) = load::<UserRecord>(ctx, name).await?;
    if !AccessKeyRecord::list_for(&*ctx.store, &ctx.account_id, name)
        .await?
        .is_empty()
    {
        return Err(IamError::DeleteConflict(
            "Cannot delete entity, must delete access keys first.".into(),
        ));
    }
    if !user.attached_policies.is_empty() {
        return Err(IamError::DeleteConflict(
            "Cannot delete entity, must detach all policies first.".into(),
        ));
    }
    if !user.inline_policies.is_empty() {
        return Err(IamError::DeleteConflict(
            "Cannot delete entity, must delete policies first.".into(),
        ));
    }
    let groups = list_all::<GroupRecord>(&*ctx.store, &ctx.account_id).await?;
    if groups.iter().any(|g| g.has_member(name)) {
        return Err(IamError::DeleteConflict(
            "Cannot delete entity, must remove users from group first.".into(),
        ));
    }
    commit(
        ctx,
        vec![skiff_store::Op::Delete {
            key: entity_key::<UserRecord>(&ctx.account_id, name),
            precondition: skiff_store::Precondition::ModRevision(rev),
        }],
    )
    .await?;
    Ok(json!({}))
}

#[doc(alias = "PutUserPermissionsBoundary")]
pub async fn put_user_permissions_boundary(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let b = req_str(&input, "PermissionsBoundary")?.to_string();
    super::roles::check_boundary(ctx, &b).await?;
    let (mut user, rev) = load::<UserRecord>(ctx, req_str(&input, "UserName")?).await?;
    user.permissions_boundary = Some(b);
    commit(ctx, vec![update_op(&ctx.account_id, &user, rev)]).await?;
    Ok(json!({}))
}

#[doc(alias = "DeleteUserPermissionsBoundary")]
pub async fn delete_user_permissions_boundary(
    ctx: &RequestContext,
    input: Value,
) -> IamResult<Value> {
    let (mut user, rev) = load::<UserRecord>(ctx, req_str(&input, "UserName")?).await?;
    user.permissions_boundary = None;
    commit(ctx, vec![update_op(&ctx.account_id, &user, rev)]).await?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::credentials::{StoredCredential, credential_key};
    use crate::iam::test_support::*;
    use crate::resources;

    #[tokio::test]
    async fn users_keys_groups_and_delete_conflicts() {
        let ctx = root_ctx();
        let u = iam(
            &ctx,
            "CreateUser",
            json!({"UserName": "alice", "Tags": [{"Key": "k", "Value": "v"}]}),
        )
        .await
        .unwrap();
        assert_eq!(u["User"]["Arn"], "arn:aws:iam::000000000000:user/alice");
        assert!(u["User"]["UserId"].as_str().unwrap().starts_with("AIDA"));
        let k = iam(&ctx, "CreateAccessKey", json!({"UserName": "alice"}))
            .await
            .unwrap();
        let id = k["AccessKey"]["AccessKeyId"].as_str().unwrap().to_string();
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("AKIA"));
        assert_eq!(
            k["AccessKey"]["SecretAccessKey"].as_str().unwrap().len(),
            40
        );
        let (cred, _) = resources::get::<StoredCredential>(&*ctx.store, &credential_key(&id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cred.arn, "arn:aws:iam::000000000000:user/alice");
        assert_eq!(cred.secret_access_key, k["AccessKey"]["SecretAccessKey"]);
        iam(&ctx, "CreateAccessKey", json!({"UserName": "alice"}))
            .await
            .unwrap();
        let e = iam(&ctx, "CreateAccessKey", json!({"UserName": "alice"}))
            .await
            .unwrap_err();
        assert_eq!(e.code, "LimitExceeded");

        // The key's own caller sees itself in GetUser and ListAccessKeys without naming the user.
        let alice = ctx_with(ctx.store.clone(), caller_of(&cred));
        let me = iam(&alice, "GetUser", json!({})).await.unwrap();
        assert_eq!(me["User"]["UserName"], "alice");
        let keys = iam(&alice, "ListAccessKeys", json!({})).await.unwrap();
        assert_eq!(keys["AccessKeyMetadata"].as_array().unwrap().len(), 2);
        iam(
            &ctx,
            "UpdateAccessKey",
            json!({"UserName": "alice", "AccessKeyId": id, "Status": "Inactive"}),
        )
        .await
        .unwrap();
        let (cred, _) = resources::get::<StoredCredential>(&*ctx.store, &credential_key(&id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cred.status, "Inactive");
        let last = iam(&ctx, "GetAccessKeyLastUsed", json!({"AccessKeyId": id}))
            .await
            .unwrap();
        assert_eq!(last["UserName"], "alice");

        let e = iam(&ctx, "DeleteUser", json!({"UserName": "alice"}))
            .await
            .unwrap_err();
        assert_eq!((e.code.as_str(), e.status), ("DeleteConflict", 409));
        assert_eq!(
            e.message,
            "Cannot delete entity, must delete access keys first."
        );
        for m in keys["AccessKeyMetadata"].as_array().unwrap() {
            iam(
                &ctx,
                "DeleteAccessKey",
                json!({"UserName": "alice", "AccessKeyId": m["AccessKeyId"]}),
            )
            .await
            .unwrap();
        }
        assert!(
            resources::get::<StoredCredential>(&*ctx.store, &credential_key(&id))
                .await
                .unwrap()
                .is_none()
        );

        iam(&ctx, "CreateGroup", json!({"GroupName": "devs"}))
            .await
            .unwrap();
        iam(
            &ctx,
            "AddUserToGroup",
            json!({"GroupName": "devs", "UserName": "alice"}),
        )
        .await
        .unwrap();
        let g = iam(&ctx, "GetGroup", json!({"GroupName": "devs"}))
            .await
            .unwrap();
        assert_eq!(g["Users"][0]["UserName"], "alice");
        let gs = iam(&ctx, "ListGroupsForUser", json!({"UserName": "alice"}))
            .await
            .unwrap();
        assert_eq!(gs["Groups"][0]["GroupName"], "devs");
        let e = iam(&ctx, "DeleteUser", json!({"UserName": "alice"}))
            .await
            .unwrap_err();
        assert_eq!(
            e.message,
            "Cannot delete entity, must remove users from group first."
        );
        let e = iam(&ctx, "DeleteGroup", json!({"GroupName": "devs"}))
            .await
            .unwrap_err();
        assert_eq!(e.code, "DeleteConflict");
        iam(
            &ctx,
            "RemoveUserFromGroup",
            json!({"GroupName": "devs", "UserName": "alice"}),
        )
        .await
        .unwrap();
        iam(&ctx, "DeleteGroup", json!({"GroupName": "devs"}))
            .await
            .unwrap();

        iam(
            &ctx,
            "PutUserPolicy",
            json!({"UserName": "alice", "PolicyName": "s3", "PolicyDocument": S3_READ}),
        )
        .await
        .unwrap();
        let e = iam(&ctx, "DeleteUser", json!({"UserName": "alice"}))
            .await
            .unwrap_err();
        assert_eq!(
            e.message,
            "Cannot delete entity, must delete policies first."
        );
        let got = iam(
            &ctx,
            "GetUserPolicy",
            json!({"UserName": "alice", "PolicyName": "s3"}),
        )
        .await
        .unwrap();
        assert_eq!(got["UserName"], "alice");
        assert_eq!(
            decode_document(&got["PolicyDocument"]),
            serde_json::from_str::<serde_json::Value>(S3_READ).unwrap()
        );
        let names = iam(&ctx, "ListUserPolicies", json!({"UserName": "alice"}))
            .await
            .unwrap();
        assert_eq!(names["PolicyNames"], json!(["s3"]));
        iam(
            &ctx,
            "DeleteUserPolicy",
            json!({"UserName": "alice", "PolicyName": "s3"}),
        )
        .await
        .unwrap();
        let e = iam(
            &ctx,
            "GetUserPolicy",
            json!({"UserName": "alice", "PolicyName": "s3"}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "NoSuchEntity");
        iam(&ctx, "DeleteUser", json!({"UserName": "alice"}))
            .await
            .unwrap();
        let e = iam(&ctx, "GetUser", json!({"UserName": "alice"}))
            .await
            .unwrap_err();
        assert_eq!(e.message, "The user with name alice cannot be found.");
    }

    #[tokio::test]
    async fn root_get_user_and_role_caller_needs_a_name() {
        let ctx = root_ctx();
        let me = iam(&ctx, "GetUser", json!({})).await.unwrap();
        assert_eq!(me["User"]["Arn"], "arn:aws:iam::000000000000:root");
        let e = iam(&ctx, "CreateAccessKey", json!({})).await.unwrap_err();
        assert_eq!(
            e.message,
            "Must specify userName when calling with non-User credentials"
        );
    }
}
