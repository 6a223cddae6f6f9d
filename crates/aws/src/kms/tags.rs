//! Key tags: TagResource, UntagResource, ListResourceTags (KMS spells them `TagKey`/`TagValue`).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::common::{KmsError, KmsResult, page, paged, req_str, resolve, save_key};
use crate::context::RequestContext;

/// `Tags: [{TagKey, TagValue}]` of CreateKey/TagResource.
pub fn from_input(input: &Value) -> KmsResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for t in input["Tags"].as_array().into_iter().flatten() {
        let (Some(k), Some(v)) = (t["TagKey"].as_str(), t["TagValue"].as_str()) else {
            return Err(KmsError::Tag(
                "Tags must have a TagKey and a TagValue".into(),
            ));
        };
        if k.starts_with("aws:") {
            return Err(KmsError::Tag(
                "Tags beginning with aws: are reserved".into(),
            ));
        }
        out.insert(k.to_string(), v.to_string());
    }
    if out.len() > 50 {
        return Err(KmsError::Tag("A key can have at most 50 tags".into()));
    }
    Ok(out)
}

#[doc(alias = "TagResource")]
pub async fn tag_resource(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    let (mut key, rev) = resolve(ctx, req_str(&input, "KeyId")?).await?;
    key.not_pending_deletion()?;
    key.tags.extend(from_input(&input)?);
    if key.tags.len() > 50 {
        return Err(KmsError::Tag("A key can have at most 50 tags".into()));
    }
    save_key(ctx, &key, rev).await?;
    Ok(json!({}))
}

#[doc(alias = "UntagResource")]
pub async fn untag_resource(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    let (mut key, rev) = resolve(ctx, req_str(&input, "KeyId")?).await?;
    key.not_pending_deletion()?;
    for k in input["TagKeys"].as_array().into_iter().flatten() {
        if let Some(k) = k.as_str() {
            key.tags.remove(k);
        }
    }
    save_key(ctx, &key, rev).await?;
    Ok(json!({}))
}

#[doc(alias = "ListResourceTags")]
pub async fn list_resource_tags(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    let (key, _) = resolve(ctx, req_str(&input, "KeyId")?).await?;
    let tags: Vec<Value> = key
        .tags
        .iter()
        .map(|(k, v)| json!({"TagKey": k, "TagValue": v}))
        .collect();
    let (items, next) = page(&tags, &input, 50)?;
    Ok(paged(json!({ "Tags": items }), next))
}
