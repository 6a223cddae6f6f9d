//! Policy simulation: SimulateCustomPolicy and SimulatePrincipalPolicy run Skiff's evaluator
//! (`crate::policy`) over the given or stored policies, so users can check a policy before relying
//! on `--enforce-iam`.

use serde_json::{Value, json};

use super::common::*;
use super::identity;
use super::policy_document::{self, MANAGED_POLICY_MAX};
use crate::context::RequestContext;
use crate::policy::{ContextMap, Decision, EvalPrincipal, EvalRequest, PolicyDocument, evaluate};

fn documents(input: &Value, member: &str) -> IamResult<Vec<PolicyDocument>> {
    str_list(input, member)
        .iter()
        .map(|t| policy_document::validate_permissions(t, "PolicySize", MANAGED_POLICY_MAX))
        .collect()
}

/// `ContextEntries` into evaluation context keys.
fn context_of(input: &Value) -> IamResult<ContextMap> {
    let mut ctx = ContextMap::new();
    if let Some(Value::Array(entries)) = input.get("ContextEntries") {
        for e in entries {
            let name = e
                .get("ContextKeyName")
                .and_then(Value::as_str)
                .ok_or_else(|| IamError::InvalidInput("Context key name is missing.".into()))?;
            let values = e
                .get("ContextKeyValues")
                .and_then(Value::as_array)
                .map(|vs| {
                    vs.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            ctx.insert_many(name, values);
        }
    }
    Ok(ctx)
}

fn decision_name(d: Decision) -> &'static str {
    match d {
        Decision::Allow => "allowed",
        Decision::ExplicitDeny => "explicitDeny",
        Decision::ImplicitDeny => "implicitDeny",
    }
}

/// One result per (action, resource), paged like IAM.
fn simulate(
    input: &Value,
    principal: &EvalPrincipal,
    identity: &[PolicyDocument],
    boundary: Option<&PolicyDocument>,
    context: &ContextMap,
) -> IamResult<Value> {
    let actions = str_list(input, "ActionNames");
    if actions.is_empty() {
        return Err(IamError::Validation(
            "1 validation error detected: Value null at 'actionNames' failed to satisfy constraint: Member must not be null".into(),
        ));
    }
    let mut resources = str_list(input, "ResourceArns");
    if resources.is_empty() {
        resources.push("*".into());
    }
    let resource_policy = match opt_str(input, "ResourcePolicy") {
        Some(t) => {
            Some(PolicyDocument::parse_str(t).map_err(|e| IamError::MalformedPolicyDocument(e.0))?)
        }
        None => None,
    };
    let refs: Vec<&PolicyDocument> = identity.iter().collect();
    let mut results = Vec::new();
    for action in &actions {
        for resource in &resources {
            let req = EvalRequest {
                principal,
                action,
                resource,
                context,
            };
            let d = evaluate(&req, &refs, resource_policy.as_ref(), boundary);
            results.push(json!({
                "EvalActionName": action,
                "EvalResourceName": resource,
                "EvalDecision": decision_name(d),
            }));
        }
    }
    page("EvaluationResults", results, input)
}

#[doc(alias = "SimulateCustomPolicy")]
pub async fn simulate_custom_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let policies = documents(&input, "PolicyInputList")?;
    if policies.is_empty() {
        return Err(IamError::Validation(
            "1 validation error detected: Value null at 'policyInputList' failed to satisfy constraint: Member must not be null".into(),
        ));
    }
    let boundary = documents(&input, "PermissionsBoundaryPolicyInputList")?;
    let caller = opt_str(&input, "CallerArn")
        .unwrap_or(&ctx.caller.arn)
        .to_string();
    let principal = EvalPrincipal::Aws {
        arn: caller,
        account: ctx.account_id.clone(),
        role_arn: None,
    };
    simulate(
        &input,
        &principal,
        &policies,
        boundary.first(),
        &context_of(&input)?,
    )
}

#[doc(alias = "SimulatePrincipalPolicy")]
pub async fn simulate_principal_policy(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let source = req_str(&input, "PolicySourceArn")?;
    let kind = source.splitn(6, ':').nth(5).unwrap_or_default();
    let known = kind == "root"
        || ["user/", "group/", "role/"]
            .iter()
            .any(|p| kind.starts_with(p));
    if !source.starts_with(&format!("arn:aws:iam::{}:", ctx.account_id)) || !known {
        return Err(IamError::InvalidInput(format!("Invalid ARN: {source}")));
    }
    let (mut policies, boundary, user_name) = match identity::load_arn(
        &*ctx.store,
        &ctx.account_id,
        source,
    )
    .await?
    {
        // The root's simulation holds no policies to evaluate: everything is allowed.
        None => {
            let refs = vec![
                    PolicyDocument::parse_str(
                        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
                    )
                    .map_err(|e| IamError::MalformedPolicyDocument(e.0))?,
                ];
            (refs, None, None)
        }
        Some(id) => (id.policies, id.boundary, id.user_name),
    };
    let name = source.rsplit('/').next().unwrap_or_default();
    let exists = match kind.split('/').next() {
        Some("user") => find::<super::users::UserRecord>(&*ctx.store, &ctx.account_id, name)
            .await?
            .is_some(),
        Some("group") => find::<super::groups::GroupRecord>(&*ctx.store, &ctx.account_id, name)
            .await?
            .is_some(),
        Some("role") => find::<super::roles::RoleRecord>(&*ctx.store, &ctx.account_id, name)
            .await?
            .is_some(),
        _ => true,
    };
    if !exists {
        return Err(IamError::NoSuchEntity(format!(
            "The entity {source} cannot be found."
        )));
    }
    policies.extend(documents(&input, "PolicyInputList")?);
    let extra_boundary = documents(&input, "PermissionsBoundaryPolicyInputList")?;
    let boundary = extra_boundary.into_iter().next().or(boundary);
    let mut context = context_of(&input)?;
    if let Some(u) = user_name {
        context.insert("aws:username", u);
    }
    let principal = EvalPrincipal::Aws {
        arn: source.to_string(),
        account: ctx.account_id.clone(),
        role_arn: kind.starts_with("role/").then(|| source.to_string()),
    };
    simulate(&input, &principal, &policies, boundary.as_ref(), &context)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::iam::test_support::*;

    #[tokio::test]
    async fn custom_and_principal() {
        let ctx = root_ctx();
        let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::secret/*"}]}"#;
        let out = iam(
            &ctx,
            "SimulateCustomPolicy",
            json!({
                "PolicyInputList": [S3_READ, deny],
                "ActionNames": ["s3:GetObject", "s3:PutObject"],
                "ResourceArns": ["arn:aws:s3:::pub/a", "arn:aws:s3:::secret/b"],
            }),
        )
        .await
        .unwrap();
        let decisions: Vec<&str> = out["EvaluationResults"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["EvalDecision"].as_str().unwrap())
            .collect();
        assert_eq!(
            decisions,
            ["allowed", "explicitDeny", "implicitDeny", "implicitDeny"]
        );

        let cond = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:RunInstances","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"}}}]}"#;
        let out = iam(&ctx, "SimulateCustomPolicy", json!({
            "PolicyInputList": [cond], "ActionNames": ["ec2:RunInstances"],
            "ContextEntries": [{"ContextKeyName": "aws:RequestedRegion", "ContextKeyValues": ["us-east-1"], "ContextKeyType": "string"}],
        }))
        .await
        .unwrap();
        assert_eq!(out["EvaluationResults"][0]["EvalDecision"], "allowed");

        iam(
            &ctx,
            "CreateRole",
            json!({"RoleName": "node", "AssumeRolePolicyDocument": EC2_TRUST}),
        )
        .await
        .unwrap();
        iam(&ctx, "AttachRolePolicy", json!({"RoleName": "node", "PolicyArn": "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"})).await.unwrap();
        let out = iam(
            &ctx,
            "SimulatePrincipalPolicy",
            json!({
                "PolicySourceArn": "arn:aws:iam::000000000000:role/node",
                "ActionNames": ["ec2:AssignPrivateIpAddresses", "ec2:TerminateInstances"],
            }),
        )
        .await
        .unwrap();
        assert_eq!(out["EvaluationResults"][0]["EvalDecision"], "allowed");
        assert_eq!(out["EvaluationResults"][1]["EvalDecision"], "implicitDeny");
        let e = iam(&ctx, "SimulatePrincipalPolicy", json!({"PolicySourceArn": "arn:aws:iam::000000000000:user/ghost", "ActionNames": ["s3:GetObject"]}))
            .await
            .unwrap_err();
        assert_eq!(e.code, "NoSuchEntity");
    }
}
