//! Repositories: CreateRepository, DescribeRepositories, DeleteRepository, PutImageTagMutability,
//! PutImageScanningConfiguration.

use serde_json::{Value, json};
use skiff_store::Precondition;

use super::common::{
    EcrError, EcrResult, Repository, check_registry, load, not_found, now, opt_bool, opt_str, page,
    repo_key, req_str, save, tags_of, with_token,
};
use crate::context::RequestContext;
use crate::resources;

/// `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`, 2..=256 characters.
fn valid_name(name: &str) -> bool {
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
            && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
            && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
            && !c.contains("..")
            && !c.contains("--")
            && !c.contains("__")
    };
    (2..=256).contains(&name.len()) && name.split('/').all(component_ok)
}

fn mutability(input: &Value) -> EcrResult<String> {
    match opt_str(input, "imageTagMutability").unwrap_or("MUTABLE") {
        m @ ("MUTABLE" | "IMMUTABLE") => Ok(m.to_string()),
        other => Err(EcrError::InvalidParameter(format!(
            "Invalid parameter at 'imageTagMutability' failed to satisfy constraint: 'Member must satisfy enum value set: [MUTABLE, IMMUTABLE]' (got {other})"
        ))),
    }
}

#[doc(alias = "CreateRepository")]
pub async fn create_repository(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    check_registry(ctx, &input)?;
    let name = req_str(&input, "repositoryName")?;
    if !valid_name(name) {
        return Err(EcrError::InvalidParameter(format!(
            "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*'' (got {name})"
        )));
    }
    let encryption = match input.get("encryptionConfiguration") {
        Some(e) => {
            let t = e["encryptionType"].as_str().unwrap_or("AES256");
            if t == "KMS" {
                json!({"encryptionType": "KMS", "kmsKey": e["kmsKey"].as_str().map(str::to_string).unwrap_or_else(|| format!("arn:aws:kms:{}:{}:alias/aws/ecr", ctx.region, ctx.account_id))})
            } else {
                json!({"encryptionType": t})
            }
        }
        None => json!({"encryptionType": "AES256"}),
    };
    let repo = Repository {
        name: name.to_string(),
        arn: format!(
            "arn:aws:ecr:{}:{}:repository/{name}",
            ctx.region, ctx.account_id
        ),
        registry_id: ctx.account_id.clone(),
        uri: format!(
            "{}.dkr.ecr.{}.amazonaws.com/{name}",
            ctx.account_id, ctx.region
        ),
        created: now(),
        tag_mutability: mutability(&input)?,
        scan_on_push: input["imageScanningConfiguration"]["scanOnPush"]
            .as_bool()
            .unwrap_or(false),
        encryption,
        tags: tags_of(&input),
        lifecycle_policy: None,
        repository_policy: None,
        images: Default::default(),
    };
    let op = resources::put_op(&repo_key(ctx, name), &repo, Precondition::MustNotExist);
    match resources::commit(&*ctx.store, vec![op]).await {
        Ok(_) => Ok(json!({ "repository": repo.describe(ctx) })),
        Err(None) => Err(EcrError::RepositoryAlreadyExists(format!(
            "The repository with name '{name}' already exists in the registry with id '{}'",
            ctx.account_id
        ))),
        Err(Some(e)) => Err(e.into()),
    }
}

#[doc(alias = "DescribeRepositories")]
pub async fn describe_repositories(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    check_registry(ctx, &input)?;
    let names: Vec<&str> = input["repositoryNames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let repos: Vec<Value> = if names.is_empty() {
        let prefix = resources::prefix_of(&repo_key(ctx, "x"));
        let all: Vec<Repository> = resources::list(&*ctx.store, &prefix).await?;
        all.iter().map(|r| r.describe(ctx)).collect()
    } else {
        let mut out = Vec::new();
        for n in names {
            match resources::get::<Repository>(&*ctx.store, &repo_key(ctx, n)).await? {
                Some((r, _)) => out.push(r.describe(ctx)),
                None => return Err(not_found(ctx, n)),
            }
        }
        out
    };
    let (items, next) = page(&repos, &input, 1000)?;
    Ok(with_token(json!({ "repositories": items }), next))
}

#[doc(alias = "DeleteRepository")]
pub async fn delete_repository(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    let (repo, rev) = load(ctx, &input).await?;
    if !repo.images.is_empty() && !opt_bool(&input, "force") {
        return Err(EcrError::RepositoryNotEmpty(format!(
            "The repository with name '{}' in registry with id '{}' cannot be deleted because it still contains images",
            repo.name, ctx.account_id
        )));
    }
    let mut ops = vec![skiff_store::Op::Delete {
        key: repo_key(ctx, &repo.name),
        precondition: Precondition::ModRevision(rev),
    }];
    // The repository's claims on registry blobs go with it (the files stay, shared by digest).
    let links = super::registry_blobs::links_prefix(ctx, &repo.name);
    let listed = ctx
        .store
        .list(&links, skiff_store::ListOptions::default())
        .await
        .map_err(resources::internal)?;
    ops.extend(listed.items.into_iter().map(|kv| skiff_store::Op::Delete {
        key: kv.key,
        precondition: Precondition::None,
    }));
    resources::commit(&*ctx.store, ops).await.map_err(|e| {
        e.map(EcrError::Internal)
            .unwrap_or_else(|| not_found(ctx, &repo.name))
    })?;
    // Blobs only this repository held are garbage now.
    if let Some(b) = super::layers::current_blobs() {
        b.request_gc();
    }
    Ok(json!({ "repository": repo.describe(ctx) }))
}

#[doc(alias = "PutImageTagMutability")]
pub async fn put_image_tag_mutability(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    let (mut repo, rev) = load(ctx, &input).await?;
    repo.tag_mutability = mutability(&input)?;
    save(ctx, &repo, rev).await?;
    Ok(
        json!({"registryId": repo.registry_id, "repositoryName": repo.name,
              "imageTagMutability": repo.tag_mutability}),
    )
}

#[doc(alias = "PutImageScanningConfiguration")]
pub async fn put_image_scanning_configuration(
    ctx: &RequestContext,
    input: Value,
) -> EcrResult<Value> {
    let (mut repo, rev) = load(ctx, &input).await?;
    repo.scan_on_push = input["imageScanningConfiguration"]["scanOnPush"]
        .as_bool()
        .unwrap_or(false);
    save(ctx, &repo, rev).await?;
    Ok(
        json!({"registryId": repo.registry_id, "repositoryName": repo.name,
              "imageScanningConfiguration": {"scanOnPush": repo.scan_on_push}}),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn repository_names_follow_the_pattern() {
        assert!(super::valid_name("team/app-1"));
        assert!(super::valid_name("ab"));
        assert!(!super::valid_name("Upper"));
        assert!(!super::valid_name("a"));
        assert!(!super::valid_name("a//b"));
        assert!(!super::valid_name("-ab"));
    }
}
