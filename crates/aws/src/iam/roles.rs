//! Roles: CreateRole, GetRole, ListRoles, DeleteRole, UpdateRole, UpdateRoleDescription,
//! UpdateAssumeRolePolicy, Put/DeleteRolePermissionsBoundary.
//!
//! A role's trust policy (`AssumeRolePolicyDocument`) is what STS evaluates on `AssumeRole*`; the
//! attached and inline permission policies are what `--enforce-iam` evaluates for its sessions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::common::*;
use super::{instance_profiles::InstanceProfileRecord, policy_document};
use crate::context::RequestContext;
use crate::resources::new_iam_id;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RoleRecord {
    pub role_name: String,
    pub role_id: String,
    pub path: String,
    pub arn: String,
    pub create_date: String,
    pub trust_policy: String,
    #[serde(default)]
    pub description: Option<String>,
    pub max_session_duration: i64,
    #[serde(default)]
    pub permissions_boundary: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub attached_policies: Vec<String>,
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
    /// When and in which region a session of this role was last issued (`RoleLastUsed`).
    #[serde(default)]
    pub last_used: Option<(String, String)>,
}

impl Entity for RoleRecord {
    const KIND: &'static str = "role";
    fn not_found(name: &str) -> String {
        format!("The role with name {name} cannot be found.")
    }
    fn name(&self) -> &str {
        &self.role_name
    }
}

impl PolicyHolder for RoleRecord {
    const NAME_MEMBER: &'static str = "RoleName";
    fn attached(&mut self) -> &mut Vec<String> {
        &mut self.attached_policies
    }
    fn inline(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.inline_policies
    }
    fn guard(&self) -> IamResult<()> {
        self.guard_modifiable()
    }
}

impl RoleRecord {
    /// Service-linked roles live under `/aws-service-role/` and only AWS may change them.
    pub fn is_service_linked(&self) -> bool {
        self.path.starts_with("/aws-service-role/")
    }

    pub fn guard_modifiable(&self) -> IamResult<()> {
        if self.is_service_linked() {
            return Err(IamError::UnmodifiableEntity(format!(
                "Cannot perform the operation on the protected role '{}' - this role is only modifiable by AWS",
                self.role_name
            )));
        }
        Ok(())
    }

    /// The `Role` output shape. `full` adds what only GetRole/CreateRole return.
    pub fn to_wire(&self, full: bool) -> Value {
        let mut o = Map::new();
        o.insert("Path".into(), json!(self.path));
        o.insert("RoleName".into(), json!(self.role_name));
        o.insert("RoleId".into(), json!(self.role_id));
        o.insert("Arn".into(), json!(self.arn));
        o.insert("CreateDate".into(), json!(self.create_date));
        o.insert(
            "AssumeRolePolicyDocument".into(),
            json!(encode_document(&self.trust_policy)),
        );
        if let Some(d) = &self.description {
            o.insert("Description".into(), json!(d));
        }
        o.insert(
            "MaxSessionDuration".into(),
            json!(self.max_session_duration),
        );
        if full {
            if let Some(b) = &self.permissions_boundary {
                o.insert("PermissionsBoundary".into(), boundary_value(b));
            }
            put_tags(&mut o, &self.tags);
            let last = match &self.last_used {
                Some((date, region)) => json!({"LastUsedDate": date, "Region": region}),
                None => json!({}),
            };
            o.insert("RoleLastUsed".into(), last);
        }
        Value::Object(o)
    }
}

/// Find a role by its ARN (`arn:aws:iam::<acct>:role/<path><name>`) in the ARN's account.
pub async fn by_arn(
    store: &dyn skiff_store::Store,
    role_arn: &str,
) -> IamResult<Option<RoleRecord>> {
    let Some(rest) = role_arn.strip_prefix("arn:aws:iam::") else {
        return Ok(None);
    };
    let Some((account, resource)) = rest.split_once(':') else {
        return Ok(None);
    };
    let Some(path_name) = resource.strip_prefix("role/") else {
        return Ok(None);
    };
    let name = path_name.rsplit('/').next().unwrap_or(path_name);
    Ok(find::<RoleRecord>(store, account, name)
        .await?
        .map(|(r, _)| r)
        .filter(|r| r.arn == role_arn))
}

fn max_session(input: &Value) -> IamResult<Option<i64>> {
    let v = opt_i64(input, "MaxSessionDuration")?;
    if let Some(d) = v
        && !(3600..=43200).contains(&d)
    {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value '{d}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value less than or equal to 43200"
        )));
    }
    Ok(v)
}

/// A boundary must name an existing managed policy.
pub async fn check_boundary(ctx: &RequestContext, arn: &str) -> IamResult<()> {
    super::policies::resolve(ctx, arn)
        .await
        .map(|_| ())
        .map_err(|_| IamError::InvalidInput(format!("ARN {arn} is not valid.")))
}

/// Make a role record (shared with service-linked roles).
pub fn new_record(
    ctx: &RequestContext,
    name: &str,
    path: &str,
    trust_policy: &str,
    description: Option<String>,
) -> RoleRecord {
    RoleRecord {
        role_name: name.to_string(),
        role_id: new_iam_id("AROA"),
        path: path.to_string(),
        arn: arn(&ctx.account_id, "role", path, name),
        create_date: now(),
        trust_policy: trust_policy.to_string(),
        description,
        max_session_duration: 3600,
        permissions_boundary: None,
        tags: Vec::new(),
        attached_policies: Vec::new(),
        inline_policies: BTreeMap::new(),
        last_used: None,
    }
}

/// Record that a session of `role` was just issued. Best effort: losing a race to another writer
/// only loses this timestamp, never the other change.
pub async fn mark_used(ctx: &RequestContext, role: &RoleRecord, region: &str) {
    if let Ok(Some((mut r, rev))) =
        find::<RoleRecord>(&*ctx.store, &ctx.account_id, &role.role_name).await
        && r.role_id == role.role_id
    {
        r.last_used = Some((now(), region.to_string()));
        let _ = commit(ctx, vec![update_op(&ctx.account_id, &r, rev)]).await;
    }
}

#[doc(alias = "CreateRole")]
pub async fn create_role(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let name = req_str(&input, "RoleName")?;
    check_name("RoleName", name, 64)?;
    let path = path_of(&input)?;
    let trust = req_str(&input, "AssumeRolePolicyDocument")?;
    policy_document::validate_trust(trust)?;
    let mut role = new_record(
        ctx,
        name,
        &path,
        trust,
        opt_str(&input, "Description").map(str::to_string),
    );
    if let Some(d) = max_session(&input)? {
        role.max_session_duration = d;
    }
    if let Some(b) = opt_str(&input, "PermissionsBoundary") {
        check_boundary(ctx, b).await?;
        role.permissions_boundary = Some(b.to_string());
    }
    role.tags = tags_of(&input)?;
    if find::<RoleRecord>(&*ctx.store, &ctx.account_id, name)
        .await?
        .is_some()
    {
        return Err(IamError::EntityAlreadyExists(format!(
            "Role with name {name} already exists."
        )));
    }
    commit(ctx, vec![create_op(&ctx.account_id, &role)])
        .await
        .map_err(|e| match e {
            IamError::ConcurrentModification(_) => {
                IamError::EntityAlreadyExists(format!("Role with name {name} already exists."))
            }
            other => other,
        })?;
    Ok(json!({ "Role": role.to_wire(true) }))
}

#[doc(alias = "GetRole")]
pub async fn get_role(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let (role, _) = load::<RoleRecord>(ctx, req_str(&input, "RoleName")?).await?;
    Ok(json!({ "Role": role.to_wire(true) }))
}

#[doc(alias = "ListRoles")]
pub async fn list_roles(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let roles = list_all::<RoleRecord>(&*ctx.store, &ctx.account_id).await?;
    let items = roles
        .iter()
        .filter(|r| path_prefix_matches(&input, &r.path))
        .map(|r| r.to_wire(false))
        .collect();
    page("Roles", items, &input)
}

#[doc(alias = "DeleteRole")]
pub async fn delete_role(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let name = req_str(&input, "RoleName")?;
    let (role, rev) = load::<RoleRecord>(ctx, name).await?;
    role.guard_modifiable()?;
    if !role.attached_policies.is_empty() {
        return Err(IamError::DeleteConflict(
            "Cannot delete entity, must detach all policies first.".into(),
        ));
    }
    if !role.inline_policies.is_empty() {
        return Err(IamError::DeleteConflict(
            "Cannot delete entity, must delete policies first.".into(),
        ));
    }
    let profiles = list_all::<InstanceProfileRecord>(&*ctx.store, &ctx.account_id).await?;
    if profiles
        .iter()
        .any(|p| p.roles.iter().any(|r| r.eq_ignore_ascii_case(name)))
    {
        return Err(IamError::DeleteConflict(
            "Cannot delete entity, must remove roles from instance profile first.".into(),
        ));
    }
    delete_record(ctx, &role, rev).await?;
    Ok(json!({}))
}

/// Delete guarded by revision (shared with service-linked role deletion).
pub async fn delete_record(
    ctx: &RequestContext,
    role: &RoleRecord,
    rev: skiff_store::Revision,
) -> IamResult<()> {
    commit(
        ctx,
        vec![skiff_store::Op::Delete {
            key: entity_key::<RoleRecord>(&ctx.account_id, &role.role_name),
            precondition: skiff_store::Precondition::ModRevision(rev),
        }],
    )
    .await
}

async fn modify(
    ctx: &RequestContext,
    name: &str,
    allow_service_linked: bool,
    f: impl FnOnce(&mut RoleRecord) -> IamResult<()>,
) -> IamResult<RoleRecord> {
    let (mut role, rev) = load::<RoleRecord>(ctx, name).await?;
    if !allow_service_linked {
        role.guard_modifiable()?;
    }
    f(&mut role)?;
    commit(ctx, vec![update_op(&ctx.account_id, &role, rev)]).await?;
    Ok(role)
}

#[doc(alias = "UpdateRole")]
pub async fn update_role(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let d = max_session(&input)?;
    let desc = opt_str(&input, "Description").map(str::to_string);
    modify(ctx, req_str(&input, "RoleName")?, true, |r| {
        if let Some(d) = d {
            r.max_session_duration = d;
        }
        if desc.is_some() {
            r.description = desc;
        }
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

#[doc(alias = "UpdateRoleDescription")]
pub async fn update_role_description(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let desc = req_str(&input, "Description")?.to_string();
    let role = modify(ctx, req_str(&input, "RoleName")?, true, |r| {
        r.description = Some(desc);
        Ok(())
    })
    .await?;
    Ok(json!({ "Role": role.to_wire(true) }))
}

#[doc(alias = "UpdateAssumeRolePolicy")]
pub async fn update_assume_role_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let doc = req_str(&input, "PolicyDocument")?.to_string();
    policy_document::validate_trust(&doc)?;
    modify(ctx, req_str(&input, "RoleName")?, false, |r| {
        r.trust_policy = doc;
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

#[doc(alias = "PutRolePermissionsBoundary")]
pub async fn put_role_permissions_boundary(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let b = req_str(&input, "PermissionsBoundary")?.to_string();
    check_boundary(ctx, &b).await?;
    modify(ctx, req_str(&input, "RoleName")?, false, |r| {
        r.permissions_boundary = Some(b);
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

#[doc(alias = "DeleteRolePermissionsBoundary")]
pub async fn delete_role_permissions_boundary(
    ctx: &RequestContext,
    input: Value,
) -> IamResult<Value> {
    modify(ctx, req_str(&input, "RoleName")?, false, |r| {
        r.permissions_boundary = None;
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::iam::test_support::*;

    #[tokio::test]
    async fn create_get_list_update_delete() {
        let ctx = root_ctx();
        let out = iam(
            &ctx,
            "CreateRole",
            json!({
                "RoleName": "eks-cluster", "Path": "/eks/", "AssumeRolePolicyDocument": EC2_TRUST,
                "Description": "cluster role", "MaxSessionDuration": 7200,
                "Tags": [{"Key": "team", "Value": "a"}],
            }),
        )
        .await
        .unwrap();
        let role = &out["Role"];
        assert_eq!(
            role["Arn"],
            "arn:aws:iam::000000000000:role/eks/eks-cluster"
        );
        assert!(role["RoleId"].as_str().unwrap().starts_with("AROA"));
        assert_eq!(role["MaxSessionDuration"], 7200);
        assert_eq!(
            decode_document(&role["AssumeRolePolicyDocument"])["Statement"][0]["Principal"]["Service"],
            "ec2.amazonaws.com"
        );
        let dup = iam(
            &ctx,
            "CreateRole",
            json!({"RoleName": "EKS-CLUSTER", "AssumeRolePolicyDocument": EC2_TRUST}),
        )
        .await
        .unwrap_err();
        assert_eq!(
            (dup.code.as_str(), dup.status),
            ("EntityAlreadyExists", 409)
        );
        assert_eq!(dup.message, "Role with name EKS-CLUSTER already exists.");

        let got = iam(&ctx, "GetRole", json!({"RoleName": "eks-cluster"}))
            .await
            .unwrap();
        assert_eq!(got["Role"]["Tags"], json!([{"Key": "team", "Value": "a"}]));
        iam(
            &ctx,
            "UpdateRole",
            json!({"RoleName": "eks-cluster", "MaxSessionDuration": 3600}),
        )
        .await
        .unwrap();
        let got = iam(&ctx, "GetRole", json!({"RoleName": "eks-cluster"}))
            .await
            .unwrap();
        assert_eq!(got["Role"]["MaxSessionDuration"], 3600);

        iam(
            &ctx,
            "CreateRole",
            json!({"RoleName": "other", "AssumeRolePolicyDocument": EC2_TRUST}),
        )
        .await
        .unwrap();
        let all = iam(&ctx, "ListRoles", json!({})).await.unwrap();
        assert_eq!(all["Roles"].as_array().unwrap().len(), 2);
        let eks = iam(&ctx, "ListRoles", json!({"PathPrefix": "/eks/"}))
            .await
            .unwrap();
        assert_eq!(eks["Roles"].as_array().unwrap().len(), 1);
        let p1 = iam(&ctx, "ListRoles", json!({"MaxItems": 1}))
            .await
            .unwrap();
        assert_eq!(p1["IsTruncated"], true);
        let p2 = iam(
            &ctx,
            "ListRoles",
            json!({"MaxItems": 1, "Marker": p1["Marker"]}),
        )
        .await
        .unwrap();
        assert_eq!(p2["IsTruncated"], false);
        assert_ne!(p1["Roles"][0]["RoleName"], p2["Roles"][0]["RoleName"]);

        iam(&ctx, "DeleteRole", json!({"RoleName": "eks-cluster"}))
            .await
            .unwrap();
        let gone = iam(&ctx, "GetRole", json!({"RoleName": "eks-cluster"}))
            .await
            .unwrap_err();
        assert_eq!((gone.code.as_str(), gone.status), ("NoSuchEntity", 404));
        assert_eq!(
            gone.message,
            "The role with name eks-cluster cannot be found."
        );
    }

    #[tokio::test]
    async fn invalid_trust_and_bounds() {
        let ctx = root_ctx();
        let e = iam(
            &ctx,
            "CreateRole",
            json!({"RoleName": "r", "AssumeRolePolicyDocument": S3_READ}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "MalformedPolicyDocument");
        assert_eq!(e.message, "Missing required field Principal");
        let e = iam(
            &ctx,
            "CreateRole",
            json!({"RoleName": "r", "AssumeRolePolicyDocument": "{"}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.message, "This policy contains invalid Json");
        let e = iam(&ctx, "CreateRole", json!({"RoleName": "r", "AssumeRolePolicyDocument": EC2_TRUST, "MaxSessionDuration": 60}))
            .await
            .unwrap_err();
        assert_eq!(e.code, "ValidationError");
        let e = iam(
            &ctx,
            "CreateRole",
            json!({"RoleName": "bad name", "AssumeRolePolicyDocument": EC2_TRUST}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "ValidationError");
        let e = iam(
            &ctx,
            "CreateRole",
            json!({"AssumeRolePolicyDocument": EC2_TRUST}),
        )
        .await
        .unwrap_err();
        assert!(e.message.contains("'roleName'"), "{}", e.message);
        let e = iam(&ctx, "CreateRole", json!({"RoleName": "r", "AssumeRolePolicyDocument": EC2_TRUST, "PermissionsBoundary": "arn:aws:iam::000000000000:policy/nope"}))
            .await
            .unwrap_err();
        assert_eq!(e.code, "InvalidInput");
    }

    #[tokio::test]
    async fn delete_conflicts() {
        let ctx = root_ctx();
        iam(
            &ctx,
            "CreateRole",
            json!({"RoleName": "node", "AssumeRolePolicyDocument": EC2_TRUST}),
        )
        .await
        .unwrap();
        iam(&ctx, "AttachRolePolicy", json!({"RoleName": "node", "PolicyArn": "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy"})).await.unwrap();
        let e = iam(&ctx, "DeleteRole", json!({"RoleName": "node"}))
            .await
            .unwrap_err();
        assert_eq!((e.code.as_str(), e.status), ("DeleteConflict", 409));
        assert_eq!(
            e.message,
            "Cannot delete entity, must detach all policies first."
        );
        iam(&ctx, "DetachRolePolicy", json!({"RoleName": "node", "PolicyArn": "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy"})).await.unwrap();
        iam(
            &ctx,
            "PutRolePolicy",
            json!({"RoleName": "node", "PolicyName": "s3", "PolicyDocument": S3_READ}),
        )
        .await
        .unwrap();
        let e = iam(&ctx, "DeleteRole", json!({"RoleName": "node"}))
            .await
            .unwrap_err();
        assert_eq!(
            e.message,
            "Cannot delete entity, must delete policies first."
        );
        iam(
            &ctx,
            "DeleteRolePolicy",
            json!({"RoleName": "node", "PolicyName": "s3"}),
        )
        .await
        .unwrap();
        iam(
            &ctx,
            "CreateInstanceProfile",
            json!({"InstanceProfileName": "node"}),
        )
        .await
        .unwrap();
        iam(
            &ctx,
            "AddRoleToInstanceProfile",
            json!({"InstanceProfileName": "node", "RoleName": "node"}),
        )
        .await
        .unwrap();
        let e = iam(&ctx, "DeleteRole", json!({"RoleName": "node"}))
            .await
            .unwrap_err();
        assert_eq!(
            e.message,
            "Cannot delete entity, must remove roles from instance profile first."
        );
        iam(
            &ctx,
            "RemoveRoleFromInstanceProfile",
            json!({"InstanceProfileName": "node", "RoleName": "node"}),
        )
        .await
        .unwrap();
        iam(&ctx, "DeleteRole", json!({"RoleName": "node"}))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn trust_policy_and_boundary_updates() {
        let ctx = root_ctx();
        iam(
            &ctx,
            "CreateRole",
            json!({"RoleName": "r", "AssumeRolePolicyDocument": EC2_TRUST}),
        )
        .await
        .unwrap();
        iam(
            &ctx,
            "UpdateAssumeRolePolicy",
            json!({"RoleName": "r", "PolicyDocument": ACCOUNT_TRUST}),
        )
        .await
        .unwrap();
        let b = "arn:aws:iam::aws:policy/ReadOnlyAccess";
        iam(
            &ctx,
            "PutRolePermissionsBoundary",
            json!({"RoleName": "r", "PermissionsBoundary": b}),
        )
        .await
        .unwrap();
        let got = iam(&ctx, "GetRole", json!({"RoleName": "r"}))
            .await
            .unwrap();
        assert_eq!(
            decode_document(&got["Role"]["AssumeRolePolicyDocument"])["Statement"][0]["Principal"]
                ["AWS"],
            "arn:aws:iam::000000000000:root"
        );
        assert_eq!(
            got["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"],
            b
        );
        let pol = iam(&ctx, "GetPolicy", json!({"PolicyArn": b}))
            .await
            .unwrap();
        assert_eq!(pol["Policy"]["PermissionsBoundaryUsageCount"], 1);
        iam(
            &ctx,
            "DeleteRolePermissionsBoundary",
            json!({"RoleName": "r"}),
        )
        .await
        .unwrap();
        let got = iam(&ctx, "GetRole", json!({"RoleName": "r"}))
            .await
            .unwrap();
        assert!(got["Role"].get("PermissionsBoundary").is_none());
    }
}
