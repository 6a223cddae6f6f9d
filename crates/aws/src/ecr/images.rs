//! Images: PutImage, BatchGetImage, DescribeImages, ListImages, BatchDeleteImage.
//!
//! An image is its manifest; its digest is `sha256:` + the hex SHA-256 of the manifest bytes, as a
//! registry computes it. Tags are unique within a repository: under `MUTABLE` a push moves the tag,
//! under `IMMUTABLE` it is refused with `ImageTagAlreadyExistsException`.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::common::{
    EcrError, EcrResult, Image, Repository, load, now, opt_str, page, req_str, save, with_token,
};
use crate::context::RequestContext;

const DEFAULT_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";

pub fn digest_of(manifest: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(manifest)))
}

fn image_id(digest: &str, tag: Option<&str>) -> Value {
    let mut id = json!({"imageDigest": digest});
    if let Some(t) = tag {
        id["imageTag"] = json!(t);
    }
    id
}

#[doc(alias = "PutImage")]
pub async fn put_image(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    let (mut repo, rev) = load(ctx, &input).await?;
    let manifest = req_str(&input, "imageManifest")?;
    let parsed: Value = serde_json::from_str(manifest).map_err(|_| {
        EcrError::InvalidParameter(
            "Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Invalid JSON syntax'".into(),
        )
    })?;
    let digest = digest_of(manifest.as_bytes());
    if let Some(given) = opt_str(&input, "imageDigest")
        && given != digest
    {
        return Err(EcrError::ImageDigestDoesNotMatch(format!(
            "Invalid parameter at 'imageDigest' failed to satisfy constraint: 'Manifest digest {digest} does not match the provided digest {given}'"
        )));
    }
    let media_type = opt_str(&input, "imageManifestMediaType")
        .or_else(|| parsed["mediaType"].as_str())
        .unwrap_or(DEFAULT_MEDIA_TYPE)
        .to_string();
    let tag = opt_str(&input, "imageTag");
    super::layers::check_manifest_layers(ctx, &repo, &parsed).await?;
    add_image(&mut repo, manifest, &parsed, &media_type, tag)?;
    save(ctx, &repo, rev).await?;
    Ok(json!({"image": {
        "registryId": repo.registry_id,
        "repositoryName": repo.name,
        "imageId": image_id(&digest, tag),
        "imageManifest": manifest,
        "imageManifestMediaType": media_type,
    }}))
}

/// Record `manifest` (already parsed as `parsed`) in `repo`, optionally under `tag`, by ECR's tag
/// rules; returns its digest. PutImage and the registry's manifest PUT both come through here.
/// `ImageAlreadyExists` when nothing would change (the registry treats that as success).
pub fn add_image(
    repo: &mut Repository,
    manifest: &str,
    parsed: &Value,
    media_type: &str,
    tag: Option<&str>,
) -> EcrResult<String> {
    let digest = digest_of(manifest.as_bytes());
    if let Some(t) = tag {
        if t.is_empty() || t.len() > 300 {
            return Err(EcrError::InvalidParameter(
                "Invalid parameter at 'imageTag' failed to satisfy constraint: 'Member must have length between 1 and 300'".into(),
            ));
        }
        match repo.digest_of_tag(t) {
            Some(d) if d == digest => {
                return Err(EcrError::ImageAlreadyExists(format!(
                    "Image with digest '{digest}' and tag '{t}' already exists in the repository with name '{}' in registry with id '{}'",
                    repo.name, repo.registry_id
                )));
            }
            Some(_) if repo.tag_mutability == "IMMUTABLE" => {
                return Err(EcrError::ImageTagAlreadyExists(format!(
                    "The image tag '{t}' already exists in the '{}' repository and cannot be overwritten because the repository is immutable.",
                    repo.name
                )));
            }
            Some(_) => {
                for img in repo.images.values_mut() {
                    img.tags.retain(|x| x != t);
                }
            }
            None => {}
        }
    } else if repo.images.contains_key(&digest) {
        return Err(EcrError::ImageAlreadyExists(format!(
            "Image with digest '{digest}' and tag 'null' already exists in the repository with name '{}' in registry with id '{}'",
            repo.name, repo.registry_id
        )));
    }
    let size = parsed["config"]["size"].as_i64().unwrap_or(0)
        + parsed["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["size"].as_i64())
            .sum::<i64>();
    let image = repo.images.entry(digest.clone()).or_insert_with(|| Image {
        digest: digest.clone(),
        manifest: manifest.to_string(),
        media_type: media_type.to_string(),
        tags: Vec::new(),
        pushed_at: now(),
        size,
    });
    if let Some(t) = tag {
        image.tags.push(t.to_string());
    }
    Ok(digest)
}

/// Resolve an `imageId` (digest and/or tag) to a digest, or the failure entry ECR reports.
fn resolve_id(repo: &Repository, id: &Value) -> Result<String, Value> {
    let digest = id["imageDigest"].as_str();
    let tag = id["imageTag"].as_str();
    let fail = |code: &str, reason: &str| json!({"imageId": id, "failureCode": code, "failureReason": reason});
    match (digest, tag) {
        (None, None) => Err(fail(
            "MissingDigestAndTag",
            "Invalid request parameters: both tag and digest cannot be null",
        )),
        (Some(d), _) if !d.starts_with("sha256:") || d.len() != 71 => Err(fail(
            "InvalidImageDigest",
            "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'",
        )),
        (Some(d), t) => match repo.images.get(d) {
            None => Err(fail("ImageNotFound", "Requested image not found")),
            Some(img) if t.is_some_and(|t| !img.tags.iter().any(|x| x == t)) => Err(fail(
                "ImageTagDoesNotMatchDigest",
                "Invalid request parameters: image tag does not match digest",
            )),
            Some(_) => Ok(d.to_string()),
        },
        (None, Some(t)) => repo
            .digest_of_tag(t)
            .map(str::to_string)
            .ok_or_else(|| fail("ImageNotFound", "Requested image not found")),
    }
}

#[doc(alias = "BatchGetImage")]
pub async fn batch_get_image(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    let (repo, _) = load(ctx, &input).await?;
    let mut images = Vec::new();
    let mut failures = Vec::new();
    for id in input["imageIds"].as_array().into_iter().flatten() {
        match resolve_id(&repo, id) {
            Ok(d) => {
                let img = &repo.images[&d];
                let tag = id["imageTag"].as_str();
                images.push(json!({
                    "registryId": repo.registry_id,
                    "repositoryName": repo.name,
                    "imageId": image_id(&d, tag),
                    "imageManifest": img.manifest,
                    "imageManifestMediaType": img.media_type,
                }));
            }
            Err(f) => failures.push(f),
        }
    }
    Ok(json!({"images": images, "failures": failures}))
}

fn tag_status_ok(img: &Image, input: &Value) -> bool {
    match input["filter"]["tagStatus"].as_str() {
        Some("TAGGED") => !img.tags.is_empty(),
        Some("UNTAGGED") => img.tags.is_empty(),
        _ => true,
    }
}

fn detail(repo: &Repository, img: &Image) -> Value {
    let mut d = json!({
        "registryId": repo.registry_id,
        "repositoryName": repo.name,
        "imageDigest": img.digest,
        "imageSizeInBytes": img.size,
        "imagePushedAt": img.pushed_at,
        "imageManifestMediaType": img.media_type,
    });
    if !img.tags.is_empty() {
        d["imageTags"] = json!(img.tags);
    }
    d
}

#[doc(alias = "DescribeImages")]
pub async fn describe_images(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    let (repo, _) = load(ctx, &input).await?;
    let details: Vec<Value> = match input["imageIds"].as_array() {
        Some(ids) => {
            let mut out = Vec::new();
            for id in ids {
                let d = resolve_id(&repo, id).map_err(|_| {
                    EcrError::ImageNotFound(format!(
                        "The image with imageId {{imageDigest:'{}', imageTag:'{}'}} does not exist within the repository with name '{}' in the registry with id '{}'",
                        id["imageDigest"].as_str().unwrap_or("null"),
                        id["imageTag"].as_str().unwrap_or("null"),
                        repo.name, repo.registry_id
                    ))
                })?;
                out.push(detail(&repo, &repo.images[&d]));
            }
            out
        }
        None => {
            let mut imgs: Vec<&Image> = repo
                .images
                .values()
                .filter(|i| tag_status_ok(i, &input))
                .collect();
            imgs.sort_by(|a, b| a.pushed_at.cmp(&b.pushed_at).then(a.digest.cmp(&b.digest)));
            imgs.into_iter().map(|i| detail(&repo, i)).collect()
        }
    };
    let (items, next) = page(&details, &input, 1000)?;
    Ok(with_token(json!({ "imageDetails": items }), next))
}

#[doc(alias = "ListImages")]
pub async fn list_images(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    let (repo, _) = load(ctx, &input).await?;
    let mut imgs: Vec<&Image> = repo
        .images
        .values()
        .filter(|i| tag_status_ok(i, &input))
        .collect();
    imgs.sort_by(|a, b| a.pushed_at.cmp(&b.pushed_at).then(a.digest.cmp(&b.digest)));
    // One entry per tag; an untagged image appears once, by digest only.
    let ids: Vec<Value> = imgs
        .iter()
        .flat_map(|i| {
            if i.tags.is_empty() {
                vec![image_id(&i.digest, None)]
            } else {
                i.tags
                    .iter()
                    .map(|t| image_id(&i.digest, Some(t)))
                    .collect()
            }
        })
        .collect();
    let (items, next) = page(&ids, &input, 1000)?;
    Ok(with_token(json!({ "imageIds": items }), next))
}

/// By digest: the image and all its tags go. By tag alone: the tag goes, and the image with it once it
/// has no tag left.
#[doc(alias = "BatchDeleteImage")]
pub async fn batch_delete_image(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    let (mut repo, rev) = load(ctx, &input).await?;
    let mut deleted = Vec::new();
    let mut failures = Vec::new();
    for id in input["imageIds"].as_array().into_iter().flatten() {
        match resolve_id(&repo, id) {
            Ok(d) => {
                let by_tag_only = id["imageDigest"].as_str().is_none();
                let tag = id["imageTag"].as_str();
                if by_tag_only
                    && let Some(t) = tag
                    && let Some(img) = repo.images.get_mut(&d)
                {
                    img.tags.retain(|x| x != t);
                    if img.tags.is_empty() {
                        repo.images.remove(&d);
                    }
                    deleted.push(image_id(&d, Some(t)));
                } else if let Some(img) = repo.images.remove(&d) {
                    if img.tags.is_empty() {
                        deleted.push(image_id(&d, None));
                    }
                    for t in &img.tags {
                        deleted.push(image_id(&d, Some(t)));
                    }
                }
            }
            Err(f) => failures.push(f),
        }
    }
    if !deleted.is_empty() {
        save(ctx, &repo, rev).await?;
        // Their layers may be garbage now.
        if let Some(b) = super::layers::current_blobs() {
            b.request_gc();
        }
    }
    Ok(json!({"imageIds": deleted, "failures": failures}))
}
