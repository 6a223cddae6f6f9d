//! Managed policies and their versions, and attaching them: CreatePolicy, GetPolicy, ListPolicies,
//! DeletePolicy, Create/Get/List/DeletePolicyVersion, SetDefaultPolicyVersion,
//! Attach/Detach/ListAttached{User,Group,Role}Policies, ListEntitiesForPolicy.
//!
//! AWS managed policies (`managed_policies.rs`) are data, readable and attachable but never
//! changeable (`UnmodifiableEntity`). Attachment counts are derived from the holders when read, so
//! there is one owner of the attachment fact (the user, group or role record).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use skiff_store::Revision;

use super::common::*;
use super::groups::GroupRecord;
use super::managed_policies::{self, ManagedPolicy};
use super::policy_document::{self, MANAGED_POLICY_MAX};
use super::roles::RoleRecord;
use super::users::UserRecord;
use crate::context::RequestContext;
use crate::resources::new_iam_id;

/// IAM keeps at most five versions of a managed policy.
pub const MAX_VERSIONS: usize = 5;
/// Default quota of managed policies attached to one user, group or role.
pub const ATTACHED_PER_ENTITY: usize = 10;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PolicyVersionRecord {
    pub version_id: String,
    pub document: String,
    pub create_date: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRecord {
    pub policy_name: String,
    pub policy_id: String,
    pub path: String,
    pub arn: String,
    #[serde(default)]
    pub description: Option<String>,
    pub create_date: String,
    pub update_date: String,
    pub default_version_id: String,
    pub versions: Vec<PolicyVersionRecord>,
    /// Version ids are never reused: `v<next_version>` is the next one.
    pub next_version: u32,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl Entity for PolicyRecord {
    const KIND: &'static str = "policy";
    fn not_found(name: &str) -> String {
        format!("Policy {name} does not exist or is not attachable.")
    }
    fn name(&self) -> &str {
        &self.policy_name
    }
}

/// A policy found by ARN: AWS managed (data) or customer managed (a record).
pub enum AnyPolicy {
    Aws(&'static ManagedPolicy),
    Customer(Box<PolicyRecord>, Revision),
}

impl AnyPolicy {
    pub fn arn(&self) -> String {
        match self {
            AnyPolicy::Aws(p) => p.arn(),
            AnyPolicy::Customer(p, _) => p.arn.clone(),
        }
    }
    pub fn name(&self) -> String {
        match self {
            AnyPolicy::Aws(p) => p.name.to_string(),
            AnyPolicy::Customer(p, _) => p.policy_name.clone(),
        }
    }
    pub fn default_document(&self) -> String {
        match self {
            AnyPolicy::Aws(p) => p.document(),
            AnyPolicy::Customer(p, _) => p
                .versions
                .iter()
                .find(|v| v.version_id == p.default_version_id)
                .map(|v| v.document.clone())
                .unwrap_or_default(),
        }
    }
    fn path(&self) -> &str {
        match self {
            AnyPolicy::Aws(p) => p.path,
            AnyPolicy::Customer(p, _) => &p.path,
        }
    }

    fn to_wire(&self, counts: &Counts, full: bool) -> Value {
        let arn = self.arn();
        let (attached, boundaries) = counts.get(&arn).copied().unwrap_or((0, 0));
        let mut o = Map::new();
        match self {
            AnyPolicy::Aws(p) => {
                o.insert("PolicyName".into(), json!(p.name));
                o.insert("PolicyId".into(), json!(p.id()));
                o.insert("Arn".into(), json!(arn));
                o.insert("Path".into(), json!(p.path));
                o.insert("DefaultVersionId".into(), json!("v1"));
                o.insert("AttachmentCount".into(), json!(attached));
                o.insert("PermissionsBoundaryUsageCount".into(), json!(boundaries));
                o.insert(
                    "IsAttachable".into(),
                    json!(!p.path.starts_with("/aws-service-role/")),
                );
                if full {
                    o.insert("Description".into(), json!(p.description));
                }
                o.insert("CreateDate".into(), json!(managed_policies::CREATE_DATE));
                o.insert("UpdateDate".into(), json!(managed_policies::CREATE_DATE));
            }
            AnyPolicy::Customer(p, _) => {
                o.insert("PolicyName".into(), json!(p.policy_name));
                o.insert("PolicyId".into(), json!(p.policy_id));
                o.insert("Arn".into(), json!(arn));
                o.insert("Path".into(), json!(p.path));
                o.insert("DefaultVersionId".into(), json!(p.default_version_id));
                o.insert("AttachmentCount".into(), json!(attached));
                o.insert("PermissionsBoundaryUsageCount".into(), json!(boundaries));
                o.insert("IsAttachable".into(), json!(true));
                if full && let Some(d) = &p.description {
                    o.insert("Description".into(), json!(d));
                }
                o.insert("CreateDate".into(), json!(p.create_date));
                o.insert("UpdateDate".into(), json!(p.update_date));
                if full {
                    put_tags(&mut o, &p.tags);
                }
            }
        }
        Value::Object(o)
    }
}

/// Policy ARN → (attachments, boundary uses).
type Counts = HashMap<String, (u64, u64)>;

async fn counts(ctx: &RequestContext) -> IamResult<Counts> {
    let mut c: Counts = HashMap::new();
    let store = &*ctx.store;
    let acct = &ctx.account_id;
    let mut add = |attached: &[String], boundary: &Option<String>| {
        for a in attached {
            c.entry(a.clone()).or_default().0 += 1;
        }
        if let Some(b) = boundary {
            c.entry(b.clone()).or_default().1 += 1;
        }
    };
    for u in list_all::<UserRecord>(store, acct).await? {
        add(&u.attached_policies, &u.permissions_boundary);
    }
    for r in list_all::<RoleRecord>(store, acct).await? {
        add(&r.attached_policies, &r.permissions_boundary);
    }
    for g in list_all::<GroupRecord>(store, acct).await? {
        add(&g.attached_policies, &None);
    }
    Ok(c)
}

fn customer_name<'a>(account: &str, arn: &'a str) -> Option<&'a str> {
    let rest = arn.strip_prefix(&format!("arn:aws:iam::{account}:policy/"))?;
    rest.rsplit('/').next()
}

/// Look a policy up by ARN in the caller's account or among the AWS managed ones.
pub async fn resolve(ctx: &RequestContext, policy_arn: &str) -> IamResult<AnyPolicy> {
    resolve_in(&*ctx.store, &ctx.account_id, policy_arn).await
}

pub async fn resolve_in(
    store: &dyn skiff_store::Store,
    account: &str,
    policy_arn: &str,
) -> IamResult<AnyPolicy> {
    let missing = || IamError::NoSuchEntity(PolicyRecord::not_found(policy_arn));
    if let Some(p) = managed_policies::by_arn(policy_arn) {
        return Ok(AnyPolicy::Aws(p));
    }
    let name = customer_name(account, policy_arn).ok_or_else(missing)?;
    match find::<PolicyRecord>(store, account, name).await? {
        Some((p, rev)) if p.arn == policy_arn => Ok(AnyPolicy::Customer(Box::new(p), rev)),
        _ => Err(missing()),
    }
}

async fn resolve_customer(
    ctx: &RequestContext,
    policy_arn: &str,
) -> IamResult<(PolicyRecord, Revision)> {
    match resolve(ctx, policy_arn).await? {
        AnyPolicy::Customer(p, rev) => Ok((*p, rev)),
        AnyPolicy::Aws(_) => Err(IamError::UnmodifiableEntity(format!(
            "Cannot modify AWS managed policy {policy_arn}."
        ))),
    }
}

fn version_wire(v: &PolicyVersionRecord, default: &str, with_doc: bool) -> Value {
    let mut o = json!({
        "VersionId": v.version_id,
        "IsDefaultVersion": v.version_id == default,
        "CreateDate": v.create_date,
    });
    if with_doc {
        o["Document"] = json!(encode_document(&v.document));
    }
    o
}

#[doc(alias = "CreatePolicy")]
pub async fn create_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let name = req_str(&input, "PolicyName")?;
    check_name("PolicyName", name, 128)?;
    let path = path_of(&input)?;
    let doc = req_str(&input, "PolicyDocument")?;
    policy_document::validate_permissions(doc, "PolicySize", MANAGED_POLICY_MAX)?;
    let date = now();
    let policy = PolicyRecord {
        policy_name: name.to_string(),
        policy_id: new_iam_id("ANPA"),
        arn: arn(&ctx.account_id, "policy", &path, name),
        path,
        description: opt_str(&input, "Description").map(str::to_string),
        create_date: date.clone(),
        update_date: date.clone(),
        default_version_id: "v1".into(),
        versions: vec![PolicyVersionRecord {
            version_id: "v1".into(),
            document: doc.to_string(),
            create_date: date,
        }],
        next_version: 2,
        tags: tags_of(&input)?,
    };
    let exists = || {
        IamError::EntityAlreadyExists(format!(
            "A policy called {name} already exists. Duplicate names are not allowed."
        ))
    };
    if find::<PolicyRecord>(&*ctx.store, &ctx.account_id, name)
        .await?
        .is_some()
    {
        return Err(exists());
    }
    commit(ctx, vec![create_op(&ctx.account_id, &policy)])
        .await
        .map_err(|e| match e {
            IamError::ConcurrentModification(_) => exists(),
            other => other,
        })?;
    let any = AnyPolicy::Customer(Box::new(policy), 0);
    Ok(json!({ "Policy": any.to_wire(&Counts::new(), true) }))
}

#[doc(alias = "GetPolicy")]
pub async fn get_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let p = resolve(ctx, req_str(&input, "PolicyArn")?).await?;
    Ok(json!({ "Policy": p.to_wire(&counts(ctx).await?, true) }))
}

#[doc(alias = "ListPolicies")]
pub async fn list_policies(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let scope = opt_str(&input, "Scope").unwrap_or("All");
    let only_attached = opt_bool(&input, "OnlyAttached");
    let counts = counts(ctx).await?;
    let mut all: Vec<AnyPolicy> = Vec::new();
    if scope == "All" || scope == "AWS" {
        all.extend(managed_policies::POLICIES.iter().map(AnyPolicy::Aws));
    }
    if scope == "All" || scope == "Local" {
        for p in list_all::<PolicyRecord>(&*ctx.store, &ctx.account_id).await? {
            all.push(AnyPolicy::Customer(Box::new(p), 0));
        }
    }
    let items = all
        .iter()
        .filter(|p| path_prefix_matches(&input, p.path()))
        .filter(|p| !only_attached || counts.get(&p.arn()).is_some_and(|c| c.0 > 0))
        .map(|p| p.to_wire(&counts, false))
        .collect();
    page("Policies", items, &input)
}

#[doc(alias = "DeletePolicy")]
pub async fn delete_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let policy_arn = req_str(&input, "PolicyArn")?;
    let (policy, rev) = resolve_customer(ctx, policy_arn).await?;
    if counts(ctx)
        .await?
        .get(policy_arn)
        .is_some_and(|c| c.0 > 0 || c.1 > 0)
    {
        return Err(IamError::DeleteConflict(
            "Cannot delete a policy attached to entities.".into(),
        ));
    }
    if policy.versions.len() > 1 {
        return Err(IamError::DeleteConflict(
            "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.".into(),
        ));
    }
    commit(
        ctx,
        vec![skiff_store::Op::Delete {
            key: entity_key::<PolicyRecord>(&ctx.account_id, &policy.policy_name),
            precondition: skiff_store::Precondition::ModRevision(rev),
        }],
    )
    .await?;
    Ok(json!({}))
}

#[doc(alias = "CreatePolicyVersion")]
pub async fn create_policy_version(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let (mut policy, rev) = resolve_customer(ctx, req_str(&input, "PolicyArn")?).await?;
    let doc = req_str(&input, "PolicyDocument")?;
    policy_document::validate_permissions(doc, "PolicySize", MANAGED_POLICY_MAX)?;
    if policy.versions.len() >= MAX_VERSIONS {
        return Err(IamError::LimitExceeded(format!(
            "A managed policy can have up to {MAX_VERSIONS} versions. Before you create a new version, you must delete an existing version."
        )));
    }
    let version = PolicyVersionRecord {
        version_id: format!("v{}", policy.next_version),
        document: doc.to_string(),
        create_date: now(),
    };
    policy.next_version += 1;
    policy.versions.push(version.clone());
    if opt_bool(&input, "SetAsDefault") {
        policy.default_version_id = version.version_id.clone();
        policy.update_date = version.create_date.clone();
    }
    commit(ctx, vec![update_op(&ctx.account_id, &policy, rev)]).await?;
    Ok(json!({ "PolicyVersion": version_wire(&version, &policy.default_version_id, false) }))
}

#[doc(alias = "GetPolicyVersion")]
pub async fn get_policy_version(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let policy_arn = req_str(&input, "PolicyArn")?;
    let version_id = req_str(&input, "VersionId")?;
    let missing = || {
        IamError::NoSuchEntity(format!(
            "Policy {policy_arn} version {version_id} does not exist or is not attachable."
        ))
    };
    match resolve(ctx, policy_arn).await? {
        AnyPolicy::Aws(p) => {
            if version_id != "v1" {
                return Err(missing());
            }
            let v = PolicyVersionRecord {
                version_id: "v1".into(),
                document: p.document(),
                create_date: managed_policies::CREATE_DATE.into(),
            };
            Ok(json!({ "PolicyVersion": version_wire(&v, "v1", true) }))
        }
        AnyPolicy::Customer(p, _) => {
            let v = p
                .versions
                .iter()
                .find(|v| v.version_id == version_id)
                .ok_or_else(missing)?;
            Ok(json!({ "PolicyVersion": version_wire(v, &p.default_version_id, true) }))
        }
    }
}

#[doc(alias = "ListPolicyVersions")]
pub async fn list_policy_versions(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let items = match resolve(ctx, req_str(&input, "PolicyArn")?).await? {
        AnyPolicy::Aws(_) => vec![json!({
            "VersionId": "v1", "IsDefaultVersion": true, "CreateDate": managed_policies::CREATE_DATE,
        })],
        AnyPolicy::Customer(p, _) => p
            .versions
            .iter()
            .rev()
            .map(|v| version_wire(v, &p.default_version_id, false))
            .collect(),
    };
    page("Versions", items, &input)
}

#[doc(alias = "DeletePolicyVersion")]
pub async fn delete_policy_version(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let policy_arn = req_str(&input, "PolicyArn")?;
    let version_id = req_str(&input, "VersionId")?;
    let (mut policy, rev) = resolve_customer(ctx, policy_arn).await?;
    if !policy.versions.iter().any(|v| v.version_id == version_id) {
        return Err(IamError::NoSuchEntity(format!(
            "Policy {policy_arn} version {version_id} does not exist or is not deletable."
        )));
    }
    if policy.default_version_id == version_id {
        return Err(IamError::DeleteConflict(
            "Cannot delete the default version of a policy.".into(),
        ));
    }
    policy.versions.retain(|v| v.version_id != version_id);
    commit(ctx, vec![update_op(&ctx.account_id, &policy, rev)]).await?;
    Ok(json!({}))
}

#[doc(alias = "SetDefaultPolicyVersion")]
pub async fn set_default_policy_version(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let policy_arn = req_str(&input, "PolicyArn")?;
    let version_id = req_str(&input, "VersionId")?;
    let (mut policy, rev) = resolve_customer(ctx, policy_arn).await?;
    if !policy.versions.iter().any(|v| v.version_id == version_id) {
        return Err(IamError::NoSuchEntity(format!(
            "Policy {policy_arn} version {version_id} does not exist or is not attachable."
        )));
    }
    policy.default_version_id = version_id.to_string();
    policy.update_date = now();
    commit(ctx, vec![update_op(&ctx.account_id, &policy, rev)]).await?;
    Ok(json!({}))
}

// ---------- attachments ----------

/// Service-linked roles carry their own AWS policy; the `aws-service-role/` ones attach to nothing else.
fn check_attachable(p: &AnyPolicy) -> IamResult<()> {
    if p.path().starts_with("/aws-service-role/") {
        return Err(IamError::PolicyNotAttachable(format!(
            "Policy {} is not attachable.",
            p.arn()
        )));
    }
    Ok(())
}

fn quota_name<T: PolicyHolder>() -> &'static str {
    match T::KIND {
        "user" => "PoliciesPerUser",
        "group" => "PoliciesPerGroup",
        _ => "PoliciesPerRole",
    }
}

async fn attach<T: PolicyHolder>(ctx: &RequestContext, input: &Value) -> IamResult<Value> {
    let (mut holder, rev) = load::<T>(ctx, req_str(input, T::NAME_MEMBER)?).await?;
    holder.guard()?;
    let policy = resolve(ctx, req_str(input, "PolicyArn")?).await?;
    check_attachable(&policy)?;
    let arn = policy.arn();
    let attached = holder.attached();
    if !attached.contains(&arn) {
        if attached.len() >= ATTACHED_PER_ENTITY {
            return Err(IamError::LimitExceeded(format!(
                "Cannot exceed quota for {}: {ATTACHED_PER_ENTITY}",
                quota_name::<T>()
            )));
        }
        attached.push(arn);
        commit(ctx, vec![update_op(&ctx.account_id, &holder, rev)]).await?;
    }
    Ok(json!({}))
}

async fn detach<T: PolicyHolder>(ctx: &RequestContext, input: &Value) -> IamResult<Value> {
    let (mut holder, rev) = load::<T>(ctx, req_str(input, T::NAME_MEMBER)?).await?;
    holder.guard()?;
    let arn = req_str(input, "PolicyArn")?;
    let attached = holder.attached();
    if !attached.iter().any(|a| a == arn) {
        return Err(IamError::NoSuchEntity(format!(
            "Policy {arn} was not found."
        )));
    }
    attached.retain(|a| a != arn);
    commit(ctx, vec![update_op(&ctx.account_id, &holder, rev)]).await?;
    Ok(json!({}))
}

async fn list_attached<T: PolicyHolder>(ctx: &RequestContext, input: &Value) -> IamResult<Value> {
    let (mut holder, _) = load::<T>(ctx, req_str(input, T::NAME_MEMBER)?).await?;
    let mut items = Vec::new();
    for arn in holder.attached().clone() {
        if let Ok(p) = resolve(ctx, &arn).await
            && path_prefix_matches(input, p.path())
        {
            items.push(json!({ "PolicyName": p.name(), "PolicyArn": arn }));
        }
    }
    page("AttachedPolicies", items, input)
}

#[doc(alias = "AttachRolePolicy")]
pub async fn attach_role_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    attach::<RoleRecord>(ctx, &input).await
}
#[doc(alias = "AttachUserPolicy")]
pub async fn attach_user_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    attach::<UserRecord>(ctx, &input).await
}
#[doc(alias = "AttachGroupPolicy")]
pub async fn attach_group_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    attach::<GroupRecord>(ctx, &input).await
}
#[doc(alias = "DetachRolePolicy")]
pub async fn detach_role_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    detach::<RoleRecord>(ctx, &input).await
}
#[doc(alias = "DetachUserPolicy")]
pub async fn detach_user_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    detach::<UserRecord>(ctx, &input).await
}
#[doc(alias = "DetachGroupPolicy")]
pub async fn detach_group_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    detach::<GroupRecord>(ctx, &input).await
}
#[doc(alias = "ListAttachedRolePolicies")]
pub async fn list_attached_role_policies(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    list_attached::<RoleRecord>(ctx, &input).await
}
#[doc(alias = "ListAttachedUserPolicies")]
pub async fn list_attached_user_policies(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    list_attached::<UserRecord>(ctx, &input).await
}
#[doc(alias = "ListAttachedGroupPolicies")]
pub async fn list_attached_group_policies(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    list_attached::<GroupRecord>(ctx, &input).await
}

#[doc(alias = "ListEntitiesForPolicy")]
pub async fn list_entities_for_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let p = resolve(ctx, req_str(&input, "PolicyArn")?).await?;
    let arn = p.arn();
    let filter = opt_str(&input, "EntityFilter").unwrap_or("");
    let want = |kind: &str| filter.is_empty() || filter == kind;
    let store = &*ctx.store;
    let acct = &ctx.account_id;
    let mut users = Vec::new();
    let mut roles = Vec::new();
    let mut groups = Vec::new();
    if want("User") {
        for u in list_all::<UserRecord>(store, acct).await? {
            if u.attached_policies.contains(&arn) && path_prefix_matches(&input, &u.path) {
                users.push(json!({"UserName": u.user_name, "UserId": u.user_id}));
            }
        }
    }
    if want("Role") {
        for r in list_all::<RoleRecord>(store, acct).await? {
            if r.attached_policies.contains(&arn) && path_prefix_matches(&input, &r.path) {
                roles.push(json!({"RoleName": r.role_name, "RoleId": r.role_id}));
            }
        }
    }
    if want("Group") {
        for g in list_all::<GroupRecord>(store, acct).await? {
            if g.attached_policies.contains(&arn) && path_prefix_matches(&input, &g.path) {
                groups.push(json!({"GroupName": g.group_name, "GroupId": g.group_id}));
            }
        }
    }
    Ok(json!({
        "PolicyGroups": groups, "PolicyUsers": users, "PolicyRoles": roles, "IsTruncated": false,
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::iam::test_support::*;

    const V2: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;

    #[tokio::test]
    async fn versions_default_and_limit() {
        let ctx = root_ctx();
        let out = iam(&ctx, "CreatePolicy", json!({"PolicyName": "p", "Path": "/team/", "PolicyDocument": S3_READ, "Description": "d"}))
            .await
            .unwrap();
        let arn = out["Policy"]["Arn"].as_str().unwrap().to_string();
        assert_eq!(arn, "arn:aws:iam::000000000000:policy/team/p");
        assert_eq!(out["Policy"]["DefaultVersionId"], "v1");
        assert!(
            out["Policy"]["PolicyId"]
                .as_str()
                .unwrap()
                .starts_with("ANPA")
        );
        let dup = iam(
            &ctx,
            "CreatePolicy",
            json!({"PolicyName": "p", "PolicyDocument": S3_READ}),
        )
        .await
        .unwrap_err();
        assert_eq!(dup.code, "EntityAlreadyExists");

        for _ in 0..4 {
            iam(
                &ctx,
                "CreatePolicyVersion",
                json!({"PolicyArn": arn, "PolicyDocument": V2}),
            )
            .await
            .unwrap();
        }
        let e = iam(
            &ctx,
            "CreatePolicyVersion",
            json!({"PolicyArn": arn, "PolicyDocument": V2}),
        )
        .await
        .unwrap_err();
        assert_eq!((e.code.as_str(), e.status), ("LimitExceeded", 409));
        let e = iam(
            &ctx,
            "DeletePolicyVersion",
            json!({"PolicyArn": arn, "VersionId": "v1"}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "DeleteConflict");
        iam(
            &ctx,
            "SetDefaultPolicyVersion",
            json!({"PolicyArn": arn, "VersionId": "v3"}),
        )
        .await
        .unwrap();
        iam(
            &ctx,
            "DeletePolicyVersion",
            json!({"PolicyArn": arn, "VersionId": "v1"}),
        )
        .await
        .unwrap();
        let v = iam(
            &ctx,
            "CreatePolicyVersion",
            json!({"PolicyArn": arn, "PolicyDocument": V2, "SetAsDefault": true}),
        )
        .await
        .unwrap();
        assert_eq!(v["PolicyVersion"]["VersionId"], "v6");
        assert_eq!(v["PolicyVersion"]["IsDefaultVersion"], true);
        let list = iam(&ctx, "ListPolicyVersions", json!({"PolicyArn": arn}))
            .await
            .unwrap();
        let ids: Vec<&str> = list["Versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["VersionId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["v6", "v5", "v4", "v3", "v2"]);
        let got = iam(
            &ctx,
            "GetPolicyVersion",
            json!({"PolicyArn": arn, "VersionId": "v6"}),
        )
        .await
        .unwrap();
        assert_eq!(
            decode_document(&got["PolicyVersion"]["Document"])["Statement"][0]["Action"],
            "s3:GetObject"
        );
        let e = iam(
            &ctx,
            "GetPolicyVersion",
            json!({"PolicyArn": arn, "VersionId": "v1"}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "NoSuchEntity");

        let e = iam(&ctx, "DeletePolicy", json!({"PolicyArn": arn}))
            .await
            .unwrap_err();
        assert_eq!(e.code, "DeleteConflict");
        for v in ["v2", "v3", "v4", "v5"] {
            iam(
                &ctx,
                "DeletePolicyVersion",
                json!({"PolicyArn": arn, "VersionId": v}),
            )
            .await
            .unwrap();
        }
        iam(&ctx, "DeletePolicy", json!({"PolicyArn": arn}))
            .await
            .unwrap();
        let e = iam(&ctx, "GetPolicy", json!({"PolicyArn": arn}))
            .await
            .unwrap_err();
        assert_eq!(e.code, "NoSuchEntity");
    }

    #[tokio::test]
    async fn aws_managed_are_read_only_and_attachable() {
        let ctx = root_ctx();
        let arn = "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy";
        let got = iam(&ctx, "GetPolicy", json!({"PolicyArn": arn}))
            .await
            .unwrap();
        assert_eq!(got["Policy"]["PolicyName"], "AmazonEKSClusterPolicy");
        assert_eq!(got["Policy"]["AttachmentCount"], 0);
        let e = iam(
            &ctx,
            "CreatePolicyVersion",
            json!({"PolicyArn": arn, "PolicyDocument": S3_READ}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "UnmodifiableEntity");
        let e = iam(&ctx, "DeletePolicy", json!({"PolicyArn": arn}))
            .await
            .unwrap_err();
        assert_eq!(e.code, "UnmodifiableEntity");
        let v = iam(
            &ctx,
            "GetPolicyVersion",
            json!({"PolicyArn": arn, "VersionId": "v1"}),
        )
        .await
        .unwrap();
        assert!(
            decode_document(&v["PolicyVersion"]["Document"])["Statement"][0]["Action"]
                .as_array()
                .unwrap()
                .contains(&json!("elasticloadbalancing:*"))
        );

        iam(
            &ctx,
            "CreateRole",
            json!({"RoleName": "cluster", "AssumeRolePolicyDocument": EC2_TRUST}),
        )
        .await
        .unwrap();
        iam(
            &ctx,
            "AttachRolePolicy",
            json!({"RoleName": "cluster", "PolicyArn": arn}),
        )
        .await
        .unwrap();
        // Attaching twice is a no-op, as in IAM.
        iam(
            &ctx,
            "AttachRolePolicy",
            json!({"RoleName": "cluster", "PolicyArn": arn}),
        )
        .await
        .unwrap();
        let att = iam(
            &ctx,
            "ListAttachedRolePolicies",
            json!({"RoleName": "cluster"}),
        )
        .await
        .unwrap();
        assert_eq!(
            att["AttachedPolicies"],
            json!([{"PolicyName": "AmazonEKSClusterPolicy", "PolicyArn": arn}])
        );
        let got = iam(&ctx, "GetPolicy", json!({"PolicyArn": arn}))
            .await
            .unwrap();
        assert_eq!(got["Policy"]["AttachmentCount"], 1);
        let ents = iam(&ctx, "ListEntitiesForPolicy", json!({"PolicyArn": arn}))
            .await
            .unwrap();
        assert_eq!(ents["PolicyRoles"][0]["RoleName"], "cluster");
        let attached = iam(&ctx, "ListPolicies", json!({"OnlyAttached": true}))
            .await
            .unwrap();
        assert_eq!(attached["Policies"].as_array().unwrap().len(), 1);
        let aws = iam(
            &ctx,
            "ListPolicies",
            json!({"Scope": "AWS", "PathPrefix": "/service-role/"}),
        )
        .await
        .unwrap();
        assert_eq!(aws["Policies"][0]["PolicyName"], "AmazonEBSCSIDriverPolicy");
        let e = iam(
            &ctx,
            "AttachRolePolicy",
            json!({"RoleName": "cluster", "PolicyArn": "arn:aws:iam::aws:policy/Nope"}),
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.message,
            "Policy arn:aws:iam::aws:policy/Nope does not exist or is not attachable."
        );
        let e = iam(
            &ctx,
            "DetachRolePolicy",
            json!({"RoleName": "cluster", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "NoSuchEntity");
        let e = iam(&ctx, "AttachRolePolicy", json!({"RoleName": "cluster", "PolicyArn": "arn:aws:iam::aws:policy/aws-service-role/AmazonEKSServiceRolePolicy"})).await.unwrap_err();
        assert_eq!(e.code, "PolicyNotAttachable");
    }

    #[tokio::test]
    async fn attachment_quota_and_customer_delete_conflict() {
        let ctx = root_ctx();
        iam(&ctx, "CreateUser", json!({"UserName": "u"}))
            .await
            .unwrap();
        for i in 0..10 {
            let out = iam(
                &ctx,
                "CreatePolicy",
                json!({"PolicyName": format!("p{i}"), "PolicyDocument": S3_READ}),
            )
            .await
            .unwrap();
            iam(
                &ctx,
                "AttachUserPolicy",
                json!({"UserName": "u", "PolicyArn": out["Policy"]["Arn"]}),
            )
            .await
            .unwrap();
        }
        let e = iam(
            &ctx,
            "AttachUserPolicy",
            json!({"UserName": "u", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.message, "Cannot exceed quota for PoliciesPerUser: 10");
        let e = iam(
            &ctx,
            "DeletePolicy",
            json!({"PolicyArn": "arn:aws:iam::000000000000:policy/p0"}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.message, "Cannot delete a policy attached to entities.");
    }
}
