//! Groups and membership: CreateGroup, GetGroup, ListGroups, DeleteGroup, AddUserToGroup,
//! RemoveUserFromGroup, ListGroupsForUser. Membership is kept on the group (one owner of the fact).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::common::*;
use super::users::UserRecord;
use crate::context::RequestContext;
use crate::resources::new_iam_id;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GroupRecord {
    pub group_name: String,
    pub group_id: String,
    pub path: String,
    pub arn: String,
    pub create_date: String,
    /// Member user names, as the users spell them.
    #[serde(default)]
    pub members: Vec<String>,
    #[serde(default)]
    pub attached_policies: Vec<String>,
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
}

impl Entity for GroupRecord {
    const KIND: &'static str = "group";
    fn not_found(name: &str) -> String {
        format!("The group with name {name} cannot be found.")
    }
    fn name(&self) -> &str {
        &self.group_name
    }
}

impl PolicyHolder for GroupRecord {
    const NAME_MEMBER: &'static str = "GroupName";
    fn attached(&mut self) -> &mut Vec<String> {
        &mut self.attached_policies
    }
    fn inline(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.inline_policies
    }
}

impl GroupRecord {
    pub fn has_member(&self, user: &str) -> bool {
        self.members.iter().any(|m| m.eq_ignore_ascii_case(user))
    }

    pub fn to_wire(&self) -> Value {
        json!({
            "Path": self.path,
            "GroupName": self.group_name,
            "GroupId": self.group_id,
            "Arn": self.arn,
            "CreateDate": self.create_date,
        })
    }
}

/// The groups `user` belongs to.
pub async fn groups_of(
    store: &dyn skiff_store::Store,
    account: &str,
    user: &str,
) -> IamResult<Vec<GroupRecord>> {
    Ok(list_all::<GroupRecord>(store, account)
        .await?
        .into_iter()
        .filter(|g| g.has_member(user))
        .collect())
}

#[doc(alias = "CreateGroup")]
pub async fn create_group(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let name = req_str(&input, "GroupName")?;
    check_name("GroupName", name, 128)?;
    let path = path_of(&input)?;
    let group = GroupRecord {
        group_name: name.to_string(),
        group_id: new_iam_id("AGPA"),
        arn: arn(&ctx.account_id, "group", &path, name),
        path,
        create_date: now(),
        members: Vec::new(),
        attached_policies: Vec::new(),
        inline_policies: BTreeMap::new(),
    };
    let exists =
        || IamError::EntityAlreadyExists(format!("Group with name {name} already exists."));
    if find::<GroupRecord>(&*ctx.store, &ctx.account_id, name)
        .await?
        .is_some()
    {
        return Err(exists());
    }
    commit(ctx, vec![create_op(&ctx.account_id, &group)])
        .await
        .map_err(|e| match e {
            IamError::ConcurrentModification(_) => exists(),
            other => other,
        })?;
    Ok(json!({ "Group": group.to_wire() }))
}

#[doc(alias = "GetGroup")]
pub async fn get_group(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let (group, _) = load::<GroupRecord>(ctx, req_str(&input, "GroupName")?).await?;
    let mut users = Vec::new();
    for m in &group.members {
        if let Some((u, _)) = find::<UserRecord>(&*ctx.store, &ctx.account_id, m).await? {
            users.push(u.to_wire(false));
        }
    }
    let mut out = page("Users", users, &input)?;
    out["Group"] = group.to_wire();
    Ok(out)
}

#[doc(alias = "ListGroups")]
pub async fn list_groups(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let groups = list_all::<GroupRecord>(&*ctx.store, &ctx.account_id).await?;
    let items = groups
        .iter()
        .filter(|g| path_prefix_matches(&input, &g.path))
        .map(GroupRecord::to_wire)
        .collect();
    page("Groups", items, &input)
}

#[doc(alias = "DeleteGroup")]
pub async fn delete_group(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let name = req_str(&input, "GroupName")?;
    let (group, rev) = load::<GroupRecord>(ctx, name).await?;
    if !group.members.is_empty() {
        return Err(IamError::DeleteConflict(
            "Cannot delete entity, must remove users from group first.".into(),
        ));
    }
    if !group.attached_policies.is_empty() {
        return Err(IamError::DeleteConflict(
            "Cannot delete entity, must detach all policies first.".into(),
        ));
    }
    if !group.inline_policies.is_empty() {
        return Err(IamError::DeleteConflict(
            "Cannot delete entity, must delete policies first.".into(),
        ));
    }
    commit(
        ctx,
        vec![skiff_store::Op::Delete {
            key: entity_key::<GroupRecord>(&ctx.account_id, name),
            precondition: skiff_store::Precondition::ModRevision(rev),
        }],
    )
    .await?;
    Ok(json!({}))
}

#[doc(alias = "AddUserToGroup")]
pub async fn add_user_to_group(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let (mut group, rev) = load::<GroupRecord>(ctx, req_str(&input, "GroupName")?).await?;
    let (user, _) = load::<UserRecord>(ctx, req_str(&input, "UserName")?).await?;
    if !group.has_member(&user.user_name) {
        group.members.push(user.user_name);
        commit(ctx, vec![update_op(&ctx.account_id, &group, rev)]).await?;
    }
    Ok(json!({}))
}

#[doc(alias = "RemoveUserFromGroup")]
pub async fn remove_user_from_group(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let (mut group, rev) = load::<GroupRecord>(ctx, req_str(&input, "GroupName")?).await?;
    let user = req_str(&input, "UserName")?;
    load::<UserRecord>(ctx, user).await?;
    if !group.has_member(user) {
        return Err(IamError::NoSuchEntity(format!(
            "User {user} is not in group {}.",
            group.group_name
        )));
    }
    group.members.retain(|m| !m.eq_ignore_ascii_case(user));
    commit(ctx, vec![update_op(&ctx.account_id, &group, rev)]).await?;
    Ok(json!({}))
}

#[doc(alias = "ListGroupsForUser")]
pub async fn list_groups_for_user(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let user = req_str(&input, "UserName")?;
    load::<UserRecord>(ctx, user).await?;
    let items = groups_of(&*ctx.store, &ctx.account_id, user)
        .await?
        .iter()
        .map(GroupRecord::to_wire)
        .collect();
    page("Groups", items, &input)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::iam::test_support::*;

    #[tokio::test]
    async fn group_policies_and_membership_errors() {
        let ctx = root_ctx();
        iam(
            &ctx,
            "CreateGroup",
            json!({"GroupName": "ops", "Path": "/t/"}),
        )
        .await
        .unwrap();
        let e = iam(&ctx, "CreateGroup", json!({"GroupName": "OPS"}))
            .await
            .unwrap_err();
        assert_eq!(e.message, "Group with name OPS already exists.");
        let e = iam(
            &ctx,
            "AddUserToGroup",
            json!({"GroupName": "ops", "UserName": "ghost"}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "NoSuchEntity");
        iam(
            &ctx,
            "AttachGroupPolicy",
            json!({"GroupName": "ops", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
        )
        .await
        .unwrap();
        iam(
            &ctx,
            "PutGroupPolicy",
            json!({"GroupName": "ops", "PolicyName": "s3", "PolicyDocument": S3_READ}),
        )
        .await
        .unwrap();
        let att = iam(
            &ctx,
            "ListAttachedGroupPolicies",
            json!({"GroupName": "ops"}),
        )
        .await
        .unwrap();
        assert_eq!(att["AttachedPolicies"][0]["PolicyName"], "ReadOnlyAccess");
        let names = iam(&ctx, "ListGroupPolicies", json!({"GroupName": "ops"}))
            .await
            .unwrap();
        assert_eq!(names["PolicyNames"], json!(["s3"]));
        let e = iam(&ctx, "DeleteGroup", json!({"GroupName": "ops"}))
            .await
            .unwrap_err();
        assert_eq!(
            e.message,
            "Cannot delete entity, must detach all policies first."
        );
        let listed = iam(&ctx, "ListGroups", json!({"PathPrefix": "/t/"}))
            .await
            .unwrap();
        assert_eq!(
            listed["Groups"][0]["Arn"],
            "arn:aws:iam::000000000000:group/t/ops"
        );
    }
}
