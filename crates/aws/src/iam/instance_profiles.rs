//! Instance profiles: CreateInstanceProfile, GetInstanceProfile, ListInstanceProfiles,
//! DeleteInstanceProfile, AddRoleToInstanceProfile, RemoveRoleFromInstanceProfile,
//! ListInstanceProfilesForRole. A profile holds at most one role (IAM's quota); EC2 instances and
//! nodegroups name the profile, and the role is what their credentials stand for.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::common::*;
use super::roles::RoleRecord;
use crate::context::RequestContext;
use crate::resources::new_iam_id;

/// IAM allows one role per instance profile.
pub const ROLES_PER_PROFILE: usize = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceProfileRecord {
    pub instance_profile_name: String,
    pub instance_profile_id: String,
    pub path: String,
    pub arn: String,
    pub create_date: String,
    /// Role names.
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl Entity for InstanceProfileRecord {
    const KIND: &'static str = "instance-profile";
    fn not_found(name: &str) -> String {
        format!("Instance Profile {name} cannot be found.")
    }
    fn name(&self) -> &str {
        &self.instance_profile_name
    }
}

impl InstanceProfileRecord {
    /// The `InstanceProfile` shape, with its roles in full.
    pub async fn to_wire(&self, ctx: &RequestContext) -> IamResult<Value> {
        let mut roles = Vec::new();
        for r in &self.roles {
            if let Some((role, _)) = find::<RoleRecord>(&*ctx.store, &ctx.account_id, r).await? {
                roles.push(role.to_wire(false));
            }
        }
        let mut o = Map::new();
        o.insert("Path".into(), json!(self.path));
        o.insert(
            "InstanceProfileName".into(),
            json!(self.instance_profile_name),
        );
        o.insert("InstanceProfileId".into(), json!(self.instance_profile_id));
        o.insert("Arn".into(), json!(self.arn));
        o.insert("CreateDate".into(), json!(self.create_date));
        o.insert("Roles".into(), Value::Array(roles));
        put_tags(&mut o, &self.tags);
        Ok(Value::Object(o))
    }
}

#[doc(alias = "CreateInstanceProfile")]
pub async fn create_instance_profile(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let name = req_str(&input, "InstanceProfileName")?;
    check_name("InstanceProfileName", name, 128)?;
    let path = path_of(&input)?;
    let profile = InstanceProfileRecord {
        instance_profile_name: name.to_string(),
        instance_profile_id: new_iam_id("AIPA"),
        arn: arn(&ctx.account_id, "instance-profile", &path, name),
        path,
        create_date: now(),
        roles: Vec::new(),
        tags: tags_of(&input)?,
    };
    let exists =
        || IamError::EntityAlreadyExists(format!("Instance Profile {name} already exists."));
    if find::<InstanceProfileRecord>(&*ctx.store, &ctx.account_id, name)
        .await?
        .is_some()
    {
        return Err(exists());
    }
    commit(ctx, vec![create_op(&ctx.account_id, &profile)])
        .await
        .map_err(|e| match e {
            IamError::ConcurrentModification(_) => exists(),
            other => other,
        })?;
    Ok(json!({ "InstanceProfile": profile.to_wire(ctx).await? }))
}

#[doc(alias = "GetInstanceProfile")]
pub async fn get_instance_profile(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let (p, _) =
        load::<InstanceProfileRecord>(ctx, req_str(&input, "InstanceProfileName")?).await?;
    Ok(json!({ "InstanceProfile": p.to_wire(ctx).await? }))
}

#[doc(alias = "ListInstanceProfiles")]
pub async fn list_instance_profiles(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let mut items = Vec::new();
    for p in list_all::<InstanceProfileRecord>(&*ctx.store, &ctx.account_id).await? {
        if path_prefix_matches(&input, &p.path) {
            items.push(p.to_wire(ctx).await?);
        }
    }
    page("InstanceProfiles", items, &input)
}

#[doc(alias = "ListInstanceProfilesForRole")]
pub async fn list_instance_profiles_for_role(
    ctx: &RequestContext,
    input: Value,
) -> IamResult<Value> {
    let role = req_str(&input, "RoleName")?;
    load::<RoleRecord>(ctx, role).await?;
    let mut items = Vec::new();
    for p in list_all::<InstanceProfileRecord>(&*ctx.store, &ctx.account_id).await? {
        if p.roles.iter().any(|r| r.eq_ignore_ascii_case(role)) {
            items.push(p.to_wire(ctx).await?);
        }
    }
    page("InstanceProfiles", items, &input)
}

#[doc(alias = "DeleteInstanceProfile")]
pub async fn delete_instance_profile(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let name = req_str(&input, "InstanceProfileName")?;
    let (p, rev) = load::<InstanceProfileRecord>(ctx, name).await?;
    if !p.roles.is_empty() {
        return Err(IamError::DeleteConflict(
            "Cannot delete entity, must remove roles from instance profile first.".into(),
        ));
    }
    commit(
        ctx,
        vec![skiff_store::Op::Delete {
            key: entity_key::<InstanceProfileRecord>(&ctx.account_id, name),
            precondition: skiff_store::Precondition::ModRevision(rev),
        }],
    )
    .await?;
    Ok(json!({}))
}

#[doc(alias = "AddRoleToInstanceProfile")]
pub async fn add_role_to_instance_profile(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let (mut p, rev) =
        load::<InstanceProfileRecord>(ctx, req_str(&input, "InstanceProfileName")?).await?;
    let (role, _) = load::<RoleRecord>(ctx, req_str(&input, "RoleName")?).await?;
    if p.roles
        .iter()
        .any(|r| r.eq_ignore_ascii_case(&role.role_name))
    {
        return Err(IamError::LimitExceeded(format!(
            "Cannot exceed quota for InstanceSessionsPerInstanceProfile: {ROLES_PER_PROFILE}"
        )));
    }
    if p.roles.len() >= ROLES_PER_PROFILE {
        return Err(IamError::LimitExceeded(format!(
            "Cannot exceed quota for InstanceSessionsPerInstanceProfile: {ROLES_PER_PROFILE}"
        )));
    }
    p.roles.push(role.role_name);
    commit(ctx, vec![update_op(&ctx.account_id, &p, rev)]).await?;
    Ok(json!({}))
}

#[doc(alias = "RemoveRoleFromInstanceProfile")]
pub async fn remove_role_from_instance_profile(
    ctx: &RequestContext,
    input: Value,
) -> IamResult<Value> {
    let (mut p, rev) =
        load::<InstanceProfileRecord>(ctx, req_str(&input, "InstanceProfileName")?).await?;
    let role = req_str(&input, "RoleName")?;
    if !p.roles.iter().any(|r| r.eq_ignore_ascii_case(role)) {
        return Err(IamError::NoSuchEntity(format!(
            "The role with name {role} cannot be found."
        )));
    }
    p.roles.retain(|r| !r.eq_ignore_ascii_case(role));
    commit(ctx, vec![update_op(&ctx.account_id, &p, rev)]).await?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::iam::test_support::*;

    #[tokio::test]
    async fn profiles_hold_one_role() {
        let ctx = root_ctx();
        iam(
            &ctx,
            "CreateRole",
            json!({"RoleName": "node", "AssumeRolePolicyDocument": EC2_TRUST}),
        )
        .await
        .unwrap();
        iam(
            &ctx,
            "CreateRole",
            json!({"RoleName": "other", "AssumeRolePolicyDocument": EC2_TRUST}),
        )
        .await
        .unwrap();
        let p = iam(
            &ctx,
            "CreateInstanceProfile",
            json!({"InstanceProfileName": "node-profile", "Path": "/eks/"}),
        )
        .await
        .unwrap();
        assert_eq!(
            p["InstanceProfile"]["Arn"],
            "arn:aws:iam::000000000000:instance-profile/eks/node-profile"
        );
        assert!(
            p["InstanceProfile"]["InstanceProfileId"]
                .as_str()
                .unwrap()
                .starts_with("AIPA")
        );
        assert_eq!(p["InstanceProfile"]["Roles"], json!([]));
        let e = iam(
            &ctx,
            "CreateInstanceProfile",
            json!({"InstanceProfileName": "node-profile"}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "EntityAlreadyExists");
        iam(
            &ctx,
            "AddRoleToInstanceProfile",
            json!({"InstanceProfileName": "node-profile", "RoleName": "node"}),
        )
        .await
        .unwrap();
        let e = iam(
            &ctx,
            "AddRoleToInstanceProfile",
            json!({"InstanceProfileName": "node-profile", "RoleName": "other"}),
        )
        .await
        .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            (
                "LimitExceeded",
                "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1"
            )
        );
        let got = iam(
            &ctx,
            "GetInstanceProfile",
            json!({"InstanceProfileName": "node-profile"}),
        )
        .await
        .unwrap();
        assert_eq!(got["InstanceProfile"]["Roles"][0]["RoleName"], "node");
        let for_role = iam(
            &ctx,
            "ListInstanceProfilesForRole",
            json!({"RoleName": "node"}),
        )
        .await
        .unwrap();
        assert_eq!(for_role["InstanceProfiles"].as_array().unwrap().len(), 1);
        let none = iam(
            &ctx,
            "ListInstanceProfilesForRole",
            json!({"RoleName": "other"}),
        )
        .await
        .unwrap();
        assert_eq!(none["InstanceProfiles"], json!([]));
        let e = iam(
            &ctx,
            "DeleteInstanceProfile",
            json!({"InstanceProfileName": "node-profile"}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "DeleteConflict");
        iam(
            &ctx,
            "RemoveRoleFromInstanceProfile",
            json!({"InstanceProfileName": "node-profile", "RoleName": "node"}),
        )
        .await
        .unwrap();
        let e = iam(
            &ctx,
            "RemoveRoleFromInstanceProfile",
            json!({"InstanceProfileName": "node-profile", "RoleName": "node"}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "NoSuchEntity");
        iam(
            &ctx,
            "DeleteInstanceProfile",
            json!({"InstanceProfileName": "node-profile"}),
        )
        .await
        .unwrap();
        let list = iam(&ctx, "ListInstanceProfiles", json!({})).await.unwrap();
        assert_eq!(list["InstanceProfiles"], json!([]));
    }
}
