//! Secret tags: TagResource, UntagResource (tags also show in DescribeSecret / ListSecrets).

use serde_json::{Value, json};

use super::common::{SmResult, load, req_str, save, tags_of};
use crate::context::RequestContext;

#[doc(alias = "TagResource")]
pub async fn tag_resource(ctx: &RequestContext, input: Value) -> SmResult<Value> {
    let (mut secret, rev) = load(ctx, req_str(&input, "SecretId")?).await?;
    secret.live()?;
    for (k, v) in tags_of(&input) {
        match secret.tags.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => secret.tags.push((k, v)),
        }
    }
    save(ctx, &secret, rev).await?;
    Ok(json!({}))
}

#[doc(alias = "UntagResource")]
pub async fn untag_resource(ctx: &RequestContext, input: Value) -> SmResult<Value> {
    let (mut secret, rev) = load(ctx, req_str(&input, "SecretId")?).await?;
    secret.live()?;
    let keys: Vec<&str> = input["TagKeys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    secret.tags.retain(|(k, _)| !keys.contains(&k.as_str()));
    save(ctx, &secret, rev).await?;
    Ok(json!({}))
}
