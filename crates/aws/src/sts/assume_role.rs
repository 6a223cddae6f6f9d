//! AssumeRole: the role's trust policy is evaluated against the caller (principal by account, ARN or
//! role, conditions such as `sts:ExternalId`); on success an `ASIA…` session for
//! `arn:aws:sts::<acct>:assumed-role/<role>/<session>` is issued.
//!
//! A role that does not exist answers the same `AccessDenied` as a refused one, as STS does, so the
//! answer does not reveal which roles exist.

use serde_json::{Value, json};

use super::{StsError, StsResult, duration, issue, role_parts, session_name};
use crate::context::RequestContext;
use crate::iam::roles::{self, RoleRecord};
use crate::policy::{ContextMap, EvalPrincipal, EvalRequest, PolicyDocument, evaluate};

/// Role chaining (a session assuming a role) caps sessions at one hour.
pub const CHAINED_MAX_SECONDS: i64 = 3_600;

/// The caller as a `Principal` element sees it, with the role ARN for assumed-role sessions.
pub async fn caller_principal(ctx: &RequestContext) -> StsResult<EvalPrincipal> {
    let c = &ctx.caller;
    let mut role_arn = None;
    if let Some(rest) = c
        .arn
        .strip_prefix(&format!("arn:aws:sts::{}:assumed-role/", c.account_id))
    {
        let name = rest.split('/').next().unwrap_or_default();
        if let Some((r, _)) =
            crate::iam::common::find::<RoleRecord>(&*ctx.store, &c.account_id, name).await?
        {
            role_arn = Some(r.arn);
        }
    }
    Ok(EvalPrincipal::Aws {
        arn: c.arn.clone(),
        account: c.account_id.clone(),
        role_arn,
    })
}

/// Global condition keys describing the caller.
pub fn caller_context(ctx: &RequestContext, principal: &EvalPrincipal) -> ContextMap {
    let c = &ctx.caller;
    let mut m = ContextMap::new();
    let principal_arn = match principal {
        EvalPrincipal::Aws {
            role_arn: Some(r), ..
        } => r.clone(),
        _ => c.arn.clone(),
    };
    m.insert("aws:PrincipalArn", principal_arn);
    m.insert("aws:PrincipalAccount", c.account_id.clone());
    m.insert("aws:userid", c.user_id.clone());
    if let Some(name) = crate::iam::users::name_from_arn(&c.arn) {
        m.insert("aws:username", name.to_string());
    }
    let now = jiff::Timestamp::now();
    m.insert("aws:CurrentTime", now.to_string());
    m.insert("aws:EpochTime", now.as_second().to_string());
    m
}

/// The session policies of an `AssumeRole*` request: the inline `Policy` (validated like a
/// permission policy) and the documents of the managed `PolicyArns`. The session may do only what
/// both these and the role's own policies allow (`policy::is_allowed` intersects them).
pub async fn session_policies(ctx: &RequestContext, input: &Value) -> StsResult<Vec<String>> {
    let mut out = Vec::new();
    if let Some(text) = input.get("Policy").and_then(Value::as_str) {
        crate::iam::policy_document::validate_permissions(text, "PackedPolicySize", 2048)
            .map_err(|e| StsError::MalformedPolicyDocument(e.to_string()))?;
        out.push(text.to_string());
    }
    if let Some(Value::Array(arns)) = input.get("PolicyArns") {
        for a in arns {
            let arn = a.get("arn").and_then(Value::as_str).unwrap_or_default();
            let p = crate::iam::policies::resolve_in(&*ctx.store, &ctx.account_id, arn)
                .await
                .map_err(|_| {
                    StsError::Validation(format!(
                        "The policy {arn} does not exist or is not attachable."
                    ))
                })?;
            out.push(p.default_document());
        }
    }
    Ok(out)
}

#[doc(alias = "AssumeRole")]
pub async fn assume_role(ctx: &RequestContext, input: Value) -> StsResult<Value> {
    let role_arn = input
        .get("RoleArn")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            StsError::Validation("1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null".into())
        })?;
    let session = session_name(&input)?;
    let session_policies = session_policies(ctx, &input).await?;
    let denied = || {
        StsError::AccessDenied(format!(
            "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            ctx.caller.arn
        ))
    };
    let (account, _) = role_parts(role_arn).ok_or_else(denied)?;
    let role = roles::by_arn(&*ctx.store, role_arn)
        .await?
        .ok_or_else(denied)?;
    let trust = PolicyDocument::parse_str(&role.trust_policy).map_err(|_| denied())?;
    let principal = caller_principal(ctx).await?;
    let mut context = caller_context(ctx, &principal);
    context.insert("sts:RoleSessionName", session.clone());
    if let Some(ext) = input.get("ExternalId").and_then(Value::as_str) {
        context.insert("sts:ExternalId", ext.to_string());
    }
    if let Some(src) = input.get("SourceIdentity").and_then(Value::as_str) {
        context.insert("sts:SourceIdentity", src.to_string());
    }
    let req = EvalRequest {
        principal: &principal,
        action: "sts:AssumeRole",
        resource: &role.arn,
        context: &context,
    };
    if !evaluate(&req, &[], Some(&trust), None).is_allowed() {
        return Err(denied());
    }
    let chained = ctx.caller.arn.starts_with("arn:aws:sts::");
    let seconds = if chained {
        duration(
            &input,
            3600,
            900,
            CHAINED_MAX_SECONDS,
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
        )?
    } else {
        duration(
            &input,
            3600,
            900,
            role.max_session_duration,
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        )?
    };
    let arn = format!(
        "arn:aws:sts::{account}:assumed-role/{}/{session}",
        role.role_name
    );
    let user_id = format!("{}:{session}", role.role_id);
    let creds = issue(ctx, account, &arn, &user_id, seconds, session_policies).await?;
    roles::mark_used(ctx, &role, &ctx.region).await;
    let mut out = json!({
        "Credentials": creds,
        "AssumedRoleUser": { "AssumedRoleId": user_id, "Arn": arn },
    });
    if let Some(src) = input.get("SourceIdentity") {
        out["SourceIdentity"] = src.clone();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::credentials::{StoredCredential, credential_key};
    use crate::iam::test_support::*;
    use crate::resources;

    async fn stored(
        ctx: &crate::context::RequestContext,
        id: &serde_json::Value,
    ) -> StoredCredential {
        resources::get::<StoredCredential>(&*ctx.store, &credential_key(id.as_str().unwrap()))
            .await
            .unwrap()
            .unwrap()
            .0
    }

    #[tokio::test]
    async fn assume_identity_and_chain() {
        let ctx = root_ctx();
        let role = iam(&ctx, "CreateRole", json!({"RoleName": "admin", "Path": "/ops/", "AssumeRolePolicyDocument": ACCOUNT_TRUST, "MaxSessionDuration": 7200}))
            .await
            .unwrap();
        let role_arn = role["Role"]["Arn"].clone();
        let role_id = role["Role"]["RoleId"].as_str().unwrap().to_string();
        let out = sts(
            &ctx,
            "AssumeRole",
            json!({"RoleArn": role_arn, "RoleSessionName": "s1", "DurationSeconds": 7200}),
        )
        .await
        .unwrap();
        assert_eq!(
            out["AssumedRoleUser"]["Arn"],
            "arn:aws:sts::000000000000:assumed-role/admin/s1"
        );
        assert_eq!(
            out["AssumedRoleUser"]["AssumedRoleId"],
            format!("{role_id}:s1")
        );
        let c = &out["Credentials"];
        assert!(c["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
        assert_eq!(c["AccessKeyId"].as_str().unwrap().len(), 20);
        let cred = stored(&ctx, &c["AccessKeyId"]).await;
        let got = iam(&ctx, "GetRole", json!({"RoleName": "admin"}))
            .await
            .unwrap();
        assert_eq!(got["Role"]["RoleLastUsed"]["Region"], "us-east-1");
        assert!(got["Role"]["RoleLastUsed"]["LastUsedDate"].is_string());
        assert_eq!(cred.session_token.as_deref(), c["SessionToken"].as_str());
        assert_eq!(cred.expiration.as_deref(), c["Expiration"].as_str());

        // The session's caller identity, as the gateway would build it.
        let session = ctx_with(ctx.store.clone(), caller_of(&cred));
        let me = sts(&session, "GetCallerIdentity", json!({})).await.unwrap();
        assert_eq!(me["Arn"], "arn:aws:sts::000000000000:assumed-role/admin/s1");
        assert_eq!(me["UserId"], format!("{role_id}:s1"));

        // Role chaining: the account trust admits the session, capped at one hour.
        let e = sts(
            &session,
            "AssumeRole",
            json!({"RoleArn": role_arn, "RoleSessionName": "s2", "DurationSeconds": 7200}),
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.message,
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
        );
        sts(
            &session,
            "AssumeRole",
            json!({"RoleArn": role_arn, "RoleSessionName": "s2"}),
        )
        .await
        .unwrap();
        let e = sts(&session, "GetSessionToken", json!({}))
            .await
            .unwrap_err();
        assert_eq!(e.code, "AccessDenied");

        let e = sts(
            &ctx,
            "AssumeRole",
            json!({"RoleArn": role_arn, "RoleSessionName": "s1", "DurationSeconds": 10000}),
        )
        .await
        .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            (
                "ValidationError",
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
            )
        );
        let e = sts(
            &ctx,
            "AssumeRole",
            json!({"RoleArn": role_arn, "RoleSessionName": "x"}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "ValidationError");
    }

    #[tokio::test]
    async fn trust_refusals() {
        let ctx = root_ctx();
        iam(
            &ctx,
            "CreateRole",
            json!({"RoleName": "ec2", "AssumeRolePolicyDocument": EC2_TRUST}),
        )
        .await
        .unwrap();
        let arn = "arn:aws:iam::000000000000:role/ec2";
        let e = sts(
            &ctx,
            "AssumeRole",
            json!({"RoleArn": arn, "RoleSessionName": "sess"}),
        )
        .await
        .unwrap_err();
        assert_eq!((e.code.as_str(), e.status), ("AccessDenied", 403));
        assert_eq!(
            e.message,
            format!(
                "User: arn:aws:iam::000000000000:root is not authorized to perform: sts:AssumeRole on resource: {arn}"
            )
        );
        let e = sts(
            &ctx,
            "AssumeRole",
            json!({"RoleArn": "arn:aws:iam::000000000000:role/missing", "RoleSessionName": "sess"}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "AccessDenied");

        let ext = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"000000000000"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"s3cret"}}}]}"#;
        iam(
            &ctx,
            "CreateRole",
            json!({"RoleName": "partner", "AssumeRolePolicyDocument": ext}),
        )
        .await
        .unwrap();
        let arn = "arn:aws:iam::000000000000:role/partner";
        assert_eq!(
            sts(
                &ctx,
                "AssumeRole",
                json!({"RoleArn": arn, "RoleSessionName": "sess"})
            )
            .await
            .unwrap_err()
            .code,
            "AccessDenied"
        );
        assert_eq!(
            sts(
                &ctx,
                "AssumeRole",
                json!({"RoleArn": arn, "RoleSessionName": "sess", "ExternalId": "wrong"})
            )
            .await
            .unwrap_err()
            .code,
            "AccessDenied"
        );
        sts(
            &ctx,
            "AssumeRole",
            json!({"RoleArn": arn, "RoleSessionName": "sess", "ExternalId": "s3cret"}),
        )
        .await
        .unwrap();

        // A user named in the trust policy, and one who is not.
        let only_bob = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"sts:AssumeRole"}]}"#;
        iam(
            &ctx,
            "CreateRole",
            json!({"RoleName": "bobs", "AssumeRolePolicyDocument": only_bob}),
        )
        .await
        .unwrap();
        for (user, ok) in [("bob", true), ("eve", false)] {
            iam(&ctx, "CreateUser", json!({"UserName": user}))
                .await
                .unwrap();
            let k = iam(&ctx, "CreateAccessKey", json!({"UserName": user}))
                .await
                .unwrap();
            let cred = stored(&ctx, &k["AccessKey"]["AccessKeyId"]).await;
            let uctx = ctx_with(ctx.store.clone(), caller_of(&cred));
            let r = sts(&uctx, "AssumeRole", json!({"RoleArn": "arn:aws:iam::000000000000:role/bobs", "RoleSessionName": "sess"})).await;
            assert_eq!(r.is_ok(), ok, "{user}: {r:?}");
            let st = sts(&uctx, "GetSessionToken", json!({"DurationSeconds": 900}))
                .await
                .unwrap();
            let tcred = stored(&ctx, &st["Credentials"]["AccessKeyId"]).await;
            assert_eq!(tcred.arn, format!("arn:aws:iam::000000000000:user/{user}"));
        }
        let e = sts(&ctx, "GetSessionToken", json!({"DurationSeconds": 7200}))
            .await
            .unwrap_err();
        assert_eq!(e.code, "ValidationError");
        let e = sts(&ctx, "AssumeRole", json!({"RoleArn": arn, "RoleSessionName": "sess", "ExternalId": "s3cret", "Policy": "{"})).await.unwrap_err();
        assert_eq!(e.code, "MalformedPolicyDocument");
    }
}
