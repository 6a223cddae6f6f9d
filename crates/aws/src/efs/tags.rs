//! Tags on file systems and access points: TagResource/UntagResource/ListTagsForResource (by id or
//! ARN) and the older CreateTags/DeleteTags/DescribeTags (file systems by id).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use skiff_store::Precondition;

use super::common::{
    AccessPoint, EfsError, EfsResult, FileSystem, ap_key, fs_key, marker_of, offset_of, opt_str,
    page_size, req_str, tags_list, tags_of,
};
use crate::context::RequestContext;
use crate::resources;

/// The id an id-or-ARN names (`fs-…`, `fsap-…`, or `arn:…:file-system/fs-…`).
fn bare_id(resource: &str) -> &str {
    resource.rsplit('/').next().unwrap_or(resource)
}

/// Change the tags of a file system or access point under optimistic concurrency.
async fn change_tags(
    ctx: &RequestContext,
    resource: &str,
    change: impl Fn(&mut BTreeMap<String, String>),
) -> EfsResult<BTreeMap<String, String>> {
    let id = bare_id(resource);
    loop {
        let (key, mut value, rev) = if id.starts_with("fsap-") {
            let (ap, rev) = super::access_points::load_ap(ctx, id).await?;
            (
                ap_key(ctx, id),
                serde_json::to_value(ap).unwrap_or_default(),
                rev,
            )
        } else if id.starts_with("fs-") {
            let (fs, rev) = super::common::load_fs(ctx, id).await?;
            (
                fs_key(ctx, id),
                serde_json::to_value(fs).unwrap_or_default(),
                rev,
            )
        } else {
            return Err(EfsError::BadRequest(format!(
                "Resource '{resource}' is not a file system or access point."
            )));
        };
        let mut tags: BTreeMap<String, String> =
            serde_json::from_value(value["tags"].take()).unwrap_or_default();
        change(&mut tags);
        if tags.len() > 50 {
            return Err(EfsError::BadRequest(
                "A resource can have at most 50 tags.".into(),
            ));
        }
        value["tags"] = json!(tags);
        // Round-trip through the record type so only valid records are written.
        let op = if id.starts_with("fsap-") {
            let ap: AccessPoint =
                serde_json::from_value(value).map_err(|e| EfsError::BadRequest(e.to_string()))?;
            resources::put_op(&key, &ap, Precondition::ModRevision(rev))
        } else {
            let fs: FileSystem =
                serde_json::from_value(value).map_err(|e| EfsError::BadRequest(e.to_string()))?;
            resources::put_op(&key, &fs, Precondition::ModRevision(rev))
        };
        match resources::commit(&*ctx.store, vec![op]).await {
            Ok(_) => return Ok(tags),
            Err(None) => continue,
            Err(Some(e)) => return Err(e.into()),
        }
    }
}

fn keys_of(input: &Value, member: &str) -> Vec<String> {
    input
        .get(member)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

fn page(
    tags: &BTreeMap<String, String>,
    input: &Value,
    size: &str,
    token: &str,
) -> EfsResult<Value> {
    let all: Vec<(&String, &String)> = tags.iter().collect();
    let max = page_size(input, size, 100)?;
    let start = offset_of(opt_str(input, token))?;
    let list: BTreeMap<String, String> = all
        .iter()
        .skip(start)
        .take(max)
        .map(|(k, v)| ((*k).clone(), (*v).clone()))
        .collect();
    let mut out = json!({ "Tags": tags_list(&list) });
    if start + max < all.len() {
        out[if token == "Marker" {
            "NextMarker"
        } else {
            "NextToken"
        }] = json!(marker_of(start + max));
    }
    Ok(out)
}

#[doc(alias = "TagResource")]
pub async fn tag_resource(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let resource = req_str(&input, "ResourceId")?;
    let new = tags_of(&input);
    change_tags(ctx, resource, |t| t.extend(new.clone())).await?;
    Ok(json!({}))
}

#[doc(alias = "UntagResource")]
pub async fn untag_resource(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let resource = req_str(&input, "ResourceId")?;
    let gone = keys_of(&input, "TagKeys");
    change_tags(ctx, resource, |t| t.retain(|k, _| !gone.contains(k))).await?;
    Ok(json!({}))
}

#[doc(alias = "ListTagsForResource")]
pub async fn list_tags_for_resource(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let resource = req_str(&input, "ResourceId")?;
    let id = bare_id(resource);
    let tags = if id.starts_with("fsap-") {
        super::access_points::load_ap(ctx, id).await?.0.tags
    } else if id.starts_with("fs-") {
        super::common::load_fs(ctx, id).await?.0.tags
    } else {
        return Err(EfsError::BadRequest(format!(
            "Resource '{resource}' is not a file system or access point."
        )));
    };
    page(&tags, &input, "MaxResults", "NextToken")
}

#[doc(alias = "CreateTags")]
pub async fn create_tags(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let id = req_str(&input, "FileSystemId")?;
    let new = tags_of(&input);
    change_tags(ctx, id, |t| t.extend(new.clone())).await?;
    Ok(json!({}))
}

#[doc(alias = "DeleteTags")]
pub async fn delete_tags(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let id = req_str(&input, "FileSystemId")?;
    let gone = keys_of(&input, "TagKeys");
    change_tags(ctx, id, |t| t.retain(|k, _| !gone.contains(k))).await?;
    Ok(json!({}))
}

#[doc(alias = "DescribeTags")]
pub async fn describe_tags(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let id = req_str(&input, "FileSystemId")?;
    let (fs, _) = super::common::load_fs(ctx, id).await?;
    page(&fs.tags, &input, "MaxItems", "Marker")
}
