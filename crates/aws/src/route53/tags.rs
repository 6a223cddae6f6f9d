//! Tags: ChangeTagsForResource, ListTagsForResource (hosted zones; health checks are not served).

use serde_json::{Value, json};

use super::common::{R53Error, R53Result, commit, load, req_str, save_op, tags_value};
use crate::context::RequestContext;

fn check_type(input: &Value) -> R53Result<()> {
    match req_str(input, "ResourceType")? {
        "hostedzone" => Ok(()),
        other => Err(R53Error::InvalidInput(format!(
            "Skiff serves tags of hosted zones only, not of {other}"
        ))),
    }
}

#[doc(alias = "ChangeTagsForResource")]
pub async fn change_tags_for_resource(ctx: &RequestContext, input: Value) -> R53Result<Value> {
    check_type(&input)?;
    let (mut zone, rev) = load(ctx, req_str(&input, "ResourceId")?).await?;
    for t in input["AddTags"].as_array().into_iter().flatten() {
        let Some(k) = t["Key"].as_str() else { continue };
        let v = t["Value"].as_str().unwrap_or_default().to_string();
        match zone.tags.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v,
            None => zone.tags.push((k.to_string(), v)),
        }
    }
    let remove: Vec<&str> = input["RemoveTagKeys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    zone.tags.retain(|(k, _)| !remove.contains(&k.as_str()));
    if zone.tags.len() > 50 {
        return Err(R53Error::InvalidInput(
            "A resource can have at most 50 tags.".into(),
        ));
    }
    commit(ctx, vec![save_op(ctx, &zone, rev)]).await?;
    Ok(json!({}))
}

#[doc(alias = "ListTagsForResource")]
pub async fn list_tags_for_resource(ctx: &RequestContext, input: Value) -> R53Result<Value> {
    check_type(&input)?;
    let (zone, _) = load(ctx, req_str(&input, "ResourceId")?).await?;
    Ok(
        json!({"ResourceTagSet": {"ResourceType": "hostedzone", "ResourceId": zone.id, "Tags": tags_value(&zone.tags)}}),
    )
}
