//! Resource policies: GetResourcePolicy, PutResourcePolicy, DeleteResourcePolicy,
//! ValidateResourcePolicy. A policy must be a JSON object with a `Statement`.

use serde_json::{Value, json};

use super::common::{SmError, SmResult, load, req_str, save};
use crate::context::RequestContext;

fn check(policy: &str) -> SmResult<()> {
    let doc: Value = serde_json::from_str(policy).map_err(|_| {
        SmError::MalformedPolicyDocument("This resource policy contains a syntax error.".into())
    })?;
    if !doc.is_object() || doc.get("Statement").is_none() {
        return Err(SmError::MalformedPolicyDocument(
            "This resource policy contains a syntax error.".into(),
        ));
    }
    Ok(())
}

#[doc(alias = "GetResourcePolicy")]
pub async fn get_resource_policy(ctx: &RequestContext, input: Value) -> SmResult<Value> {
    let (secret, _) = load(ctx, req_str(&input, "SecretId")?).await?;
    let mut out = json!({"ARN": secret.arn, "Name": secret.name});
    if let Some(p) = &secret.policy {
        out["ResourcePolicy"] = json!(p);
    }
    Ok(out)
}

#[doc(alias = "PutResourcePolicy")]
pub async fn put_resource_policy(ctx: &RequestContext, input: Value) -> SmResult<Value> {
    let (mut secret, rev) = load(ctx, req_str(&input, "SecretId")?).await?;
    secret.live()?;
    let policy = req_str(&input, "ResourcePolicy")?;
    check(policy)?;
    secret.policy = Some(policy.to_string());
    save(ctx, &secret, rev).await?;
    Ok(json!({"ARN": secret.arn, "Name": secret.name}))
}

#[doc(alias = "DeleteResourcePolicy")]
pub async fn delete_resource_policy(ctx: &RequestContext, input: Value) -> SmResult<Value> {
    let (mut secret, rev) = load(ctx, req_str(&input, "SecretId")?).await?;
    if secret.policy.take().is_some() {
        save(ctx, &secret, rev).await?;
    }
    Ok(json!({"ARN": secret.arn, "Name": secret.name}))
}

#[doc(alias = "ValidateResourcePolicy")]
pub async fn validate_resource_policy(_ctx: &RequestContext, input: Value) -> SmResult<Value> {
    check(req_str(&input, "ResourcePolicy")?)?;
    Ok(json!({"PolicyValidationPassed": true, "ValidationErrors": []}))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::iam::test_support::root_ctx;

    #[tokio::test]
    async fn policies_are_validated_and_kept() {
        let ctx = root_ctx();
        let sm = |op: &'static str, v| {
            let ctx = ctx.clone();
            async move { super::super::dispatch(&ctx, op, v).await }
        };
        sm("CreateSecret", json!({"Name": "p", "SecretString": "v"}))
            .await
            .unwrap();
        let err = sm(
            "PutResourcePolicy",
            json!({"SecretId": "p", "ResourcePolicy": "{"}),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code, "MalformedPolicyDocumentException");
        let doc = r#"{"Version":"2012-10-17","Statement":[]}"#;
        sm(
            "PutResourcePolicy",
            json!({"SecretId": "p", "ResourcePolicy": doc}),
        )
        .await
        .unwrap();
        let got = sm("GetResourcePolicy", json!({"SecretId": "p"}))
            .await
            .unwrap();
        assert_eq!(got["ResourcePolicy"], doc);
        sm("DeleteResourcePolicy", json!({"SecretId": "p"}))
            .await
            .unwrap();
        let got = sm("GetResourcePolicy", json!({"SecretId": "p"}))
            .await
            .unwrap();
        assert!(got.get("ResourcePolicy").is_none());
    }
}
