//! Repository policies and lifecycle policies: SetRepositoryPolicy, GetRepositoryPolicy,
//! DeleteRepositoryPolicy, PutLifecyclePolicy, GetLifecyclePolicy, DeleteLifecyclePolicy.

use serde_json::{Value, json};

use super::common::{EcrError, EcrResult, json_object, load, now, req_str, save};
use crate::context::RequestContext;

fn lifecycle_invalid(why: &str) -> EcrError {
    EcrError::InvalidParameter(format!(
        "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: {why}'"
    ))
}

/// The lifecycle policy grammar: `rules[]` each with a unique `rulePriority`, a `selection`
/// (`tagStatus` tagged/untagged/any, `countType` imageCountMoreThan/sinceImagePushed, `countNumber` > 0,
/// `tagPrefixList` or `tagPatternList` required for tagged) and `action.type` = `expire`.
pub fn validate_lifecycle(text: &str) -> EcrResult<()> {
    let doc = json_object(text, "LifecyclePolicyText")?;
    let rules = doc["rules"]
        .as_array()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| lifecycle_invalid("object has missing required properties ([\"rules\"])"))?;
    let mut priorities = Vec::new();
    for rule in rules {
        let p = rule["rulePriority"]
            .as_i64()
            .filter(|p| *p >= 1)
            .ok_or_else(|| lifecycle_invalid("rulePriority must be an integer >= 1"))?;
        if priorities.contains(&p) {
            return Err(lifecycle_invalid(&format!(
                "rulePriority {p} is not unique"
            )));
        }
        priorities.push(p);
        let sel = &rule["selection"];
        let status = sel["tagStatus"].as_str().unwrap_or_default();
        if !["tagged", "untagged", "any"].contains(&status) {
            return Err(lifecycle_invalid(
                "tagStatus must be one of tagged, untagged, any",
            ));
        }
        if status == "tagged"
            && sel["tagPrefixList"].as_array().is_none_or(Vec::is_empty)
            && sel["tagPatternList"].as_array().is_none_or(Vec::is_empty)
        {
            return Err(lifecycle_invalid(
                "tagPrefixList or tagPatternList is required when tagStatus is tagged",
            ));
        }
        match sel["countType"].as_str() {
            Some("imageCountMoreThan") => {}
            Some("sinceImagePushed") => {
                if sel["countUnit"].as_str() != Some("days") {
                    return Err(lifecycle_invalid(
                        "countUnit must be days for sinceImagePushed",
                    ));
                }
            }
            _ => {
                return Err(lifecycle_invalid(
                    "countType must be one of imageCountMoreThan, sinceImagePushed",
                ));
            }
        }
        if sel["countNumber"].as_i64().is_none_or(|n| n < 1) {
            return Err(lifecycle_invalid("countNumber must be an integer >= 1"));
        }
        if rule["action"]["type"].as_str() != Some("expire") {
            return Err(lifecycle_invalid("action type must be expire"));
        }
    }
    Ok(())
}

#[doc(alias = "PutLifecyclePolicy")]
pub async fn put_lifecycle_policy(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    let (mut repo, rev) = load(ctx, &input).await?;
    let text = req_str(&input, "lifecyclePolicyText")?;
    validate_lifecycle(text)?;
    repo.lifecycle_policy = Some(text.to_string());
    save(ctx, &repo, rev).await?;
    Ok(
        json!({"registryId": repo.registry_id, "repositoryName": repo.name, "lifecyclePolicyText": text}),
    )
}

fn no_lifecycle(repo: &super::common::Repository) -> EcrError {
    EcrError::LifecyclePolicyNotFound(format!(
        "Lifecycle policy does not exist for the repository with name '{}' in the registry with id '{}'",
        repo.name, repo.registry_id
    ))
}

#[doc(alias = "GetLifecyclePolicy")]
pub async fn get_lifecycle_policy(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    let (repo, _) = load(ctx, &input).await?;
    let text = repo
        .lifecycle_policy
        .clone()
        .ok_or_else(|| no_lifecycle(&repo))?;
    Ok(
        json!({"registryId": repo.registry_id, "repositoryName": repo.name,
              "lifecyclePolicyText": text, "lastEvaluatedAt": now()}),
    )
}

#[doc(alias = "DeleteLifecyclePolicy")]
pub async fn delete_lifecycle_policy(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    let (mut repo, rev) = load(ctx, &input).await?;
    let text = repo
        .lifecycle_policy
        .take()
        .ok_or_else(|| no_lifecycle(&repo))?;
    save(ctx, &repo, rev).await?;
    Ok(
        json!({"registryId": repo.registry_id, "repositoryName": repo.name,
              "lifecyclePolicyText": text, "lastEvaluatedAt": now()}),
    )
}

fn no_policy(repo: &super::common::Repository) -> EcrError {
    EcrError::RepositoryPolicyNotFound(format!(
        "Repository policy does not exist for the repository with name '{}' in the registry with id '{}'",
        repo.name, repo.registry_id
    ))
}

#[doc(alias = "SetRepositoryPolicy")]
pub async fn set_repository_policy(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    let (mut repo, rev) = load(ctx, &input).await?;
    let text = req_str(&input, "policyText")?;
    let doc = json_object(text, "PolicyText")?;
    if doc.get("Statement").is_none() {
        return Err(EcrError::InvalidParameter(
            "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'".into(),
        ));
    }
    repo.repository_policy = Some(text.to_string());
    save(ctx, &repo, rev).await?;
    Ok(json!({"registryId": repo.registry_id, "repositoryName": repo.name, "policyText": text}))
}

#[doc(alias = "GetRepositoryPolicy")]
pub async fn get_repository_policy(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    let (repo, _) = load(ctx, &input).await?;
    let text = repo
        .repository_policy
        .clone()
        .ok_or_else(|| no_policy(&repo))?;
    Ok(json!({"registryId": repo.registry_id, "repositoryName": repo.name, "policyText": text}))
}

#[doc(alias = "DeleteRepositoryPolicy")]
pub async fn delete_repository_policy(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    let (mut repo, rev) = load(ctx, &input).await?;
    let text = repo
        .repository_policy
        .take()
        .ok_or_else(|| no_policy(&repo))?;
    save(ctx, &repo, rev).await?;
    Ok(json!({"registryId": repo.registry_id, "repositoryName": repo.name, "policyText": text}))
}
