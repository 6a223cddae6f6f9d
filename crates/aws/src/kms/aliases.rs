//! Aliases: CreateAlias, DeleteAlias, ListAliases, UpdateAlias.
//!
//! Names start with `alias/`; `alias/aws/` is reserved for AWS managed keys; each alias points at one
//! customer key in the same account and region.

use serde_json::{Value, json};
use skiff_store::Precondition;

use super::common::{
    AliasRecord, KmsError, KmsResult, alias_arn, alias_key, now, opt_str, page, paged, req_str,
    resolve,
};
use crate::context::RequestContext;
use crate::resources;

fn check_alias_name(name: &str) -> KmsResult<()> {
    let Some(rest) = name.strip_prefix("alias/") else {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{name}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$"
        )));
    };
    if rest.starts_with("aws/") {
        return Err(KmsError::NotAuthorized(
            "Cannot create alias with prefix 'alias/aws/'".into(),
        ));
    }
    let ok = !rest.is_empty()
        && name.len() <= 256
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_-".contains(c));
    if !ok {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{name}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$"
        )));
    }
    Ok(())
}

/// The target must be a key id or key ARN, never another alias.
async fn target(ctx: &RequestContext, target: &str) -> KmsResult<String> {
    if target.starts_with("alias/") || target.contains(":alias/") {
        return Err(KmsError::Validation(format!(
            "Aliases must refer to keys. Not aliases. TargetKeyId: {target}"
        )));
    }
    let (key, _) = resolve(ctx, target).await?;
    key.not_pending_deletion()?;
    Ok(key.key_id)
}

#[doc(alias = "CreateAlias")]
pub async fn create_alias(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    let name = req_str(&input, "AliasName")?;
    check_alias_name(name)?;
    let key_id = target(ctx, req_str(&input, "TargetKeyId")?).await?;
    let at = now();
    let record = AliasRecord {
        name: name.to_string(),
        arn: alias_arn(ctx, name),
        target_key_id: key_id,
        created: at.clone(),
        updated: at,
    };
    let op = resources::put_op(&alias_key(ctx, name), &record, Precondition::MustNotExist);
    match resources::commit(&*ctx.store, vec![op]).await {
        Ok(_) => Ok(json!({})),
        Err(None) => Err(KmsError::AlreadyExists(format!(
            "An alias with the name {} already exists",
            record.arn
        ))),
        Err(Some(e)) => Err(e.into()),
    }
}

async fn load(ctx: &RequestContext, name: &str) -> KmsResult<(AliasRecord, skiff_store::Revision)> {
    if name
        .strip_prefix("alias/")
        .is_none_or(|r| r.starts_with("aws/"))
    {
        check_alias_name(name)?;
    }
    resources::get(&*ctx.store, &alias_key(ctx, name))
        .await?
        .ok_or_else(|| KmsError::NotFound(format!("Alias {} is not found.", alias_arn(ctx, name))))
}

#[doc(alias = "UpdateAlias")]
pub async fn update_alias(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    let name = req_str(&input, "AliasName")?;
    let (mut record, rev) = load(ctx, name).await?;
    record.target_key_id = target(ctx, req_str(&input, "TargetKeyId")?).await?;
    record.updated = now();
    let op = resources::put_op(
        &alias_key(ctx, name),
        &record,
        Precondition::ModRevision(rev),
    );
    resources::commit(&*ctx.store, vec![op])
        .await
        .map_err(|e| {
            KmsError::NotFound(
                e.map(|e| e.message)
                    .unwrap_or_else(|| format!("Alias {} is not found.", record.arn)),
            )
        })?;
    Ok(json!({}))
}

#[doc(alias = "DeleteAlias")]
pub async fn delete_alias(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    let name = req_str(&input, "AliasName")?;
    let (record, _) = load(ctx, name).await?;
    resources::commit(
        &*ctx.store,
        vec![resources::delete_op(&alias_key(ctx, name))],
    )
    .await
    .map_err(|_| KmsError::NotFound(format!("Alias {} is not found.", record.arn)))?;
    Ok(json!({}))
}

#[doc(alias = "ListAliases")]
pub async fn list_aliases(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    let filter = match opt_str(&input, "KeyId") {
        Some(k) => Some(resolve(ctx, k).await?.0.key_id),
        None => None,
    };
    let prefix = resources::prefix_of(&alias_key(ctx, "alias/x"));
    let all: Vec<AliasRecord> = resources::list(&*ctx.store, &prefix).await?;
    let entries: Vec<Value> = all
        .iter()
        .filter(|a| filter.as_ref().is_none_or(|k| *k == a.target_key_id))
        .map(|a| {
            json!({"AliasName": a.name, "AliasArn": a.arn, "TargetKeyId": a.target_key_id,
                   "CreationDate": a.created, "LastUpdatedDate": a.updated})
        })
        .collect();
    let (items, next) = page(&entries, &input, 50)?;
    Ok(paged(json!({ "Aliases": items }), next))
}
