//! Access points: CreateAccessPoint, DescribeAccessPoints, DeleteAccessPoint. The EFS CSI driver
//! makes one per dynamically provisioned volume.

use serde_json::{Value, json};
use skiff_store::{Precondition, Revision};

use super::common::{
    AccessPoint, EfsError, EfsResult, access_points_of, ap_arn, ap_key, load_fs, marker_of,
    offset_of, opt_str, page_size, req_str, tags_list, tags_of,
};
use crate::context::RequestContext;
use crate::resources;

/// Access points per file system (EFS's quota).
pub const LIMIT_PER_FILE_SYSTEM: usize = 10_000;

pub fn describe(ctx: &RequestContext, ap: &AccessPoint) -> Value {
    let mut out = json!({
        "ClientToken": ap.client_token,
        "Tags": tags_list(&ap.tags),
        "AccessPointId": ap.id,
        "AccessPointArn": ap_arn(ctx, &ap.id),
        "FileSystemId": ap.file_system_id,
        "RootDirectory": ap.root_directory,
        "OwnerId": ctx.account_id,
        "LifeCycleState": "available",
    });
    if let Some(name) = ap.tags.get("Name") {
        out["Name"] = json!(name);
    }
    if let Some(user) = &ap.posix_user {
        out["PosixUser"] = user.clone();
    }
    out
}

pub async fn load_ap(ctx: &RequestContext, id: &str) -> EfsResult<(AccessPoint, Revision)> {
    resources::get(&*ctx.store, &ap_key(ctx, id))
        .await?
        .ok_or_else(|| EfsError::AccessPointNotFound(id.to_string()))
}

fn check_posix_user(user: &Value) -> EfsResult<()> {
    let id_ok = |v: &Value| v.as_i64().is_some_and(|n| (0..=4_294_967_295).contains(&n));
    if !id_ok(&user["Uid"]) || !id_ok(&user["Gid"]) {
        return Err(EfsError::BadRequest(
            "PosixUser needs Uid and Gid between 0 and 4294967295.".into(),
        ));
    }
    Ok(())
}

fn root_directory(input: &Value) -> EfsResult<Value> {
    let mut root = input.get("RootDirectory").cloned().unwrap_or(json!({}));
    let path = root["Path"].as_str().unwrap_or("/").to_string();
    if !path.starts_with('/') || path.len() > 100 || path.contains("//") {
        return Err(EfsError::BadRequest(format!(
            "RootDirectory.Path '{path}' must be an absolute path of at most 100 characters."
        )));
    }
    root["Path"] = json!(path);
    if let Some(info) = root.get("CreationInfo") {
        let perms = info["Permissions"].as_str().unwrap_or_default();
        let octal =
            (3..=4).contains(&perms.len()) && perms.chars().all(|c| ('0'..='7').contains(&c));
        if !octal || info["OwnerUid"].as_i64().is_none() || info["OwnerGid"].as_i64().is_none() {
            return Err(EfsError::BadRequest(
                "RootDirectory.CreationInfo needs OwnerUid, OwnerGid and octal Permissions (e.g. 0755).".into(),
            ));
        }
    }
    Ok(root)
}

#[doc(alias = "CreateAccessPoint")]
pub async fn create_access_point(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let fs_id = req_str(&input, "FileSystemId")?;
    let token = req_str(&input, "ClientToken")?;
    load_fs(ctx, fs_id).await?;
    let existing = access_points_of(ctx, fs_id).await?;
    if let Some(same) = existing.iter().find(|a| a.client_token == token) {
        return Err(EfsError::AccessPointAlreadyExists(format!(
            "Access point '{}' already exists with client token '{token}'",
            same.id
        )));
    }
    if existing.len() >= LIMIT_PER_FILE_SYSTEM {
        return Err(EfsError::AccessPointLimitExceeded(format!(
            "File system '{fs_id}' already has {LIMIT_PER_FILE_SYSTEM} access points."
        )));
    }
    let posix_user = input.get("PosixUser").cloned();
    if let Some(u) = &posix_user {
        check_posix_user(u)?;
    }
    let ap = AccessPoint {
        id: resources::new_id("fsap"),
        file_system_id: fs_id.to_string(),
        client_token: token.to_string(),
        posix_user,
        root_directory: root_directory(&input)?,
        tags: tags_of(&input),
    };
    let op = resources::put_op(&ap_key(ctx, &ap.id), &ap, Precondition::MustNotExist);
    match resources::commit(&*ctx.store, vec![op]).await {
        Ok(_) => Ok(describe(ctx, &ap)),
        Err(None) => Err(EfsError::AccessPointAlreadyExists(format!(
            "Access point '{}' already exists",
            ap.id
        ))),
        Err(Some(e)) => Err(e.into()),
    }
}

#[doc(alias = "DescribeAccessPoints")]
pub async fn describe_access_points(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let mut matching = match (
        opt_str(&input, "AccessPointId"),
        opt_str(&input, "FileSystemId"),
    ) {
        (Some(_), Some(_)) => {
            return Err(EfsError::BadRequest(
                "AccessPointId and FileSystemId are mutually exclusive.".into(),
            ));
        }
        (Some(id), None) => vec![load_ap(ctx, id).await?.0],
        (None, Some(fs)) => {
            load_fs(ctx, fs).await?;
            access_points_of(ctx, fs).await?
        }
        (None, None) => {
            resources::list(&*ctx.store, &resources::prefix_of(&ap_key(ctx, "x"))).await?
        }
    };
    matching.sort_by(|a, b| a.id.cmp(&b.id));
    let max = page_size(&input, "MaxResults", 100)?;
    let start = offset_of(opt_str(&input, "NextToken"))?;
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(max)
        .map(|a| describe(ctx, a))
        .collect();
    let mut out = json!({ "AccessPoints": page });
    if start + max < matching.len() {
        out["NextToken"] = json!(marker_of(start + max));
    }
    Ok(out)
}

#[doc(alias = "DeleteAccessPoint")]
pub async fn delete_access_point(ctx: &RequestContext, input: Value) -> EfsResult<Value> {
    let id = req_str(&input, "AccessPointId")?;
    match resources::commit(&*ctx.store, vec![resources::delete_op(&ap_key(ctx, id))]).await {
        Ok(_) => Ok(json!({})),
        Err(None) => Err(EfsError::AccessPointNotFound(id.to_string())),
        Err(Some(e)) => Err(e.into()),
    }
}
