//! The permission policies that apply to a caller, for `policy::is_allowed` (`--enforce-iam`).

use skiff_aws_model::AwsError;
use skiff_store::Store;

use super::common::{IamError, find};
use super::groups::groups_of;
use super::policies::resolve_in;
use super::roles::RoleRecord;
use super::users::UserRecord;
use crate::context::Caller;
use crate::policy::PolicyDocument;

/// What IAM knows about a non-root caller.
#[derive(Debug, Default)]
pub struct Identity {
    /// Set for IAM users (the `aws:username` key).
    pub user_name: Option<String>,
    /// Set for assumed-role sessions: the role's own ARN (with its path).
    pub role_arn: Option<String>,
    pub policies: Vec<PolicyDocument>,
    pub boundary: Option<PolicyDocument>,
}

fn to_aws(e: IamError) -> AwsError {
    e.into()
}

async fn documents(
    store: &dyn Store,
    account: &str,
    attached: &[String],
    inline: impl Iterator<Item = &String>,
    out: &mut Vec<PolicyDocument>,
) -> Result<(), AwsError> {
    for arn in attached {
        // A policy deleted out from under an attachment grants nothing.
        if let Ok(p) = resolve_in(store, account, arn).await
            && let Ok(doc) = PolicyDocument::parse_str(&p.default_document())
        {
            out.push(doc);
        }
    }
    for text in inline {
        if let Ok(doc) = PolicyDocument::parse_str(text) {
            out.push(doc);
        }
    }
    Ok(())
}

async fn boundary(
    store: &dyn Store,
    account: &str,
    arn: &Option<String>,
) -> Result<Option<PolicyDocument>, AwsError> {
    let Some(arn) = arn else { return Ok(None) };
    // A boundary that no longer resolves allows nothing (an empty document).
    let text = match resolve_in(store, account, arn).await {
        Ok(p) => p.default_document(),
        Err(_) => r#"{"Version":"2012-10-17","Statement":[]}"#.to_string(),
    };
    Ok(Some(PolicyDocument::parse_str(&text).unwrap_or(
        PolicyDocument {
            version: None,
            statements: Vec::new(),
        },
    )))
}

/// `None` for the account root (allowed everything); otherwise the caller's policies. An unknown
/// user or role yields no policies at all (so everything is implicitly denied).
pub async fn load(store: &dyn Store, caller: &Caller) -> Result<Option<Identity>, AwsError> {
    load_arn(store, &caller.account_id, &caller.arn).await
}

/// Like [`load`], for any principal ARN: root, `user/…`, `group/…`, `role/…` (IAM ARNs) or an
/// `assumed-role/…` session (STS ARN).
pub async fn load_arn(
    store: &dyn Store,
    account: &str,
    arn: &str,
) -> Result<Option<Identity>, AwsError> {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or_default();
    if resource == "root" {
        return Ok(None);
    }
    let mut id = Identity::default();
    if let Some(path_name) = resource.strip_prefix("user/") {
        let name = path_name.rsplit('/').next().unwrap_or(path_name);
        id.user_name = Some(name.to_string());
        if let Some((user, _)) = find::<UserRecord>(store, account, name)
            .await
            .map_err(to_aws)?
        {
            documents(
                store,
                account,
                &user.attached_policies,
                user.inline_policies.values(),
                &mut id.policies,
            )
            .await?;
            for g in groups_of(store, account, name).await.map_err(to_aws)? {
                documents(
                    store,
                    account,
                    &g.attached_policies,
                    g.inline_policies.values(),
                    &mut id.policies,
                )
                .await?;
            }
            id.boundary = boundary(store, account, &user.permissions_boundary).await?;
        }
    } else if let Some(path_name) = resource.strip_prefix("group/") {
        let name = path_name.rsplit('/').next().unwrap_or(path_name);
        if let Some((g, _)) = find::<super::groups::GroupRecord>(store, account, name)
            .await
            .map_err(to_aws)?
        {
            documents(
                store,
                account,
                &g.attached_policies,
                g.inline_policies.values(),
                &mut id.policies,
            )
            .await?;
        }
    } else if let Some(role_name) = resource
        .strip_prefix("assumed-role/")
        .and_then(|rest| rest.split('/').next())
        .or_else(|| {
            resource
                .strip_prefix("role/")
                .and_then(|p| p.rsplit('/').next())
        })
        && let Some((role, _)) = find::<RoleRecord>(store, account, role_name)
            .await
            .map_err(to_aws)?
    {
        id.role_arn = Some(role.arn.clone());
        documents(
            store,
            account,
            &role.attached_policies,
            role.inline_policies.values(),
            &mut id.policies,
        )
        .await?;
        id.boundary = boundary(store, account, &role.permissions_boundary).await?;
    }
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::credentials::{StoredCredential, credential_key};
    use crate::iam::test_support::*;
    use crate::policy::{ContextMap, Decision, is_allowed};
    use crate::resources;

    #[tokio::test]
    async fn enforcement_reads_users_groups_roles_and_boundaries() {
        let ctx = root_ctx();
        let store = ctx.store.clone();
        let none = ContextMap::new();
        assert_eq!(
            is_allowed(&*store, &root(), "iam:DeleteUser", "*", &none)
                .await
                .unwrap(),
            Decision::Allow
        );

        iam(&ctx, "CreateUser", json!({"UserName": "alice"}))
            .await
            .unwrap();
        let k = iam(&ctx, "CreateAccessKey", json!({"UserName": "alice"}))
            .await
            .unwrap();
        let (cred, _) = resources::get::<StoredCredential>(
            &*store,
            &credential_key(k["AccessKey"]["AccessKeyId"].as_str().unwrap()),
        )
        .await
        .unwrap()
        .unwrap();
        let alice = caller_of(&cred);
        let check = |action: &'static str, resource: &'static str| {
            let store = store.clone();
            let alice = alice.clone();
            async move {
                is_allowed(&*store, &alice, action, resource, &ContextMap::new())
                    .await
                    .unwrap()
            }
        };
        assert_eq!(check("ec2:DescribeVpcs", "*").await, Decision::ImplicitDeny);
        iam(
            &ctx,
            "AttachUserPolicy",
            json!({"UserName": "alice", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
        )
        .await
        .unwrap();
        assert_eq!(check("ec2:DescribeVpcs", "*").await, Decision::Allow);
        assert_eq!(check("ec2:RunInstances", "*").await, Decision::ImplicitDeny);

        iam(&ctx, "CreateGroup", json!({"GroupName": "no-ec2"}))
            .await
            .unwrap();
        iam(&ctx, "PutGroupPolicy", json!({"GroupName": "no-ec2", "PolicyName": "deny", "PolicyDocument":
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"ec2:*","Resource":"*"}]}"#})).await.unwrap();
        iam(
            &ctx,
            "AddUserToGroup",
            json!({"GroupName": "no-ec2", "UserName": "alice"}),
        )
        .await
        .unwrap();
        assert_eq!(check("ec2:DescribeVpcs", "*").await, Decision::ExplicitDeny);
        assert_eq!(check("eks:ListClusters", "*").await, Decision::Allow);

        // ${aws:username} is filled in from the caller.
        iam(&ctx, "PutUserPolicy", json!({"UserName": "alice", "PolicyName": "own", "PolicyDocument":
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:CreateAccessKey","Resource":"arn:aws:iam::*:user/${aws:username}"}]}"#})).await.unwrap();
        assert_eq!(
            check(
                "iam:CreateAccessKey",
                "arn:aws:iam::000000000000:user/alice"
            )
            .await,
            Decision::Allow
        );
        assert_eq!(
            check("iam:CreateAccessKey", "arn:aws:iam::000000000000:user/bob").await,
            Decision::ImplicitDeny
        );

        // A boundary caps what the policies grant.
        iam(&ctx, "PutUserPermissionsBoundary", json!({"UserName": "alice", "PermissionsBoundary": "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"})).await.unwrap();
        assert_eq!(check("eks:ListClusters", "*").await, Decision::ImplicitDeny);
        assert_eq!(check("s3:GetObject", "*").await, Decision::Allow);

        // Sessions get their role's policies.
        iam(
            &ctx,
            "CreateRole",
            json!({"RoleName": "cluster", "AssumeRolePolicyDocument": ACCOUNT_TRUST}),
        )
        .await
        .unwrap();
        iam(&ctx, "AttachRolePolicy", json!({"RoleName": "cluster", "PolicyArn": "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"})).await.unwrap();
        let s = sts(
            &ctx,
            "AssumeRole",
            json!({"RoleArn": "arn:aws:iam::000000000000:role/cluster", "RoleSessionName": "x1"}),
        )
        .await
        .unwrap();
        let (scred, _) = resources::get::<StoredCredential>(
            &*store,
            &credential_key(s["Credentials"]["AccessKeyId"].as_str().unwrap()),
        )
        .await
        .unwrap()
        .unwrap();
        let session = caller_of(&scred);
        assert_eq!(
            is_allowed(
                &*store,
                &session,
                "elasticloadbalancing:CreateLoadBalancer",
                "*",
                &none
            )
            .await
            .unwrap(),
            Decision::Allow
        );
        assert_eq!(
            is_allowed(&*store, &session, "iam:CreateUser", "*", &none)
                .await
                .unwrap(),
            Decision::ImplicitDeny
        );

        // A session policy narrows the role's permissions for that session only.
        let narrow = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"elasticloadbalancing:Describe*","Resource":"*"}]}"#;
        let s = sts(&ctx, "AssumeRole", json!({"RoleArn": "arn:aws:iam::000000000000:role/cluster", "RoleSessionName": "x2", "Policy": narrow}))
            .await
            .unwrap();
        let (ncred, _) = resources::get::<StoredCredential>(
            &*store,
            &credential_key(s["Credentials"]["AccessKeyId"].as_str().unwrap()),
        )
        .await
        .unwrap()
        .unwrap();
        let narrowed = caller_of(&ncred);
        let d = |a: &'static str| {
            let store = store.clone();
            let who = narrowed.clone();
            async move {
                is_allowed(&*store, &who, a, "*", &ContextMap::new())
                    .await
                    .unwrap()
            }
        };
        assert_eq!(
            d("elasticloadbalancing:DescribeLoadBalancers").await,
            Decision::Allow
        );
        assert_eq!(
            d("elasticloadbalancing:CreateLoadBalancer").await,
            Decision::ImplicitDeny
        );
        // …but never beyond the role's own policies.
        assert_eq!(d("iam:CreateUser").await, Decision::ImplicitDeny);
        let e = sts(&ctx, "AssumeRole", json!({"RoleArn": "arn:aws:iam::000000000000:role/cluster", "RoleSessionName": "x3", "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/Nope"}]}))
            .await
            .unwrap_err();
        assert_eq!(e.code, "ValidationError");
    }
}
