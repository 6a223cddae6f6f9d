//! Registry manifests (PUT/GET/HEAD/DELETE by tag or digest) and `tags/list`.
//!
//! A pushed manifest is an ECR image record: it goes through [`add_image`], the function behind
//! `PutImage`, so tag rules (IMMUTABLE → `TAG_INVALID` with ECR's message), digests, sizes and push
//! times are the ones `describe-images` shows, and `batch-delete-image` removes what was pushed.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::common::{EcrError, Repository, save};
use super::images::{add_image, digest_of};
use super::registry::{RegistryError, RegistryResult, json_response, query_param, repository};
use super::registry_blobs::linked;
use crate::context::RequestContext;

/// ECR's manifest size limit.
const MAX_MANIFEST: usize = 4 * 1024 * 1024;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Layers a registry never holds (Windows base layers are fetched from their `urls`).
const FOREIGN_LAYERS: [&str; 2] = [
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
];

/// A concurrent push to the same repository makes the record write lose; this many tries win.
const RETRIES: usize = 8;

fn is_digest(reference: &str) -> bool {
    reference.contains(':')
}

/// The distribution spec's tag grammar, with ECR's 300-character limit.
fn valid_tag(tag: &str) -> bool {
    (1..=300).contains(&tag.len())
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// The media type a manifest is stored under: `Content-Type` if it names a manifest, else the
/// document's own `mediaType`.
fn media_type_of(headers: &HeaderMap, parsed: &Value) -> RegistryResult<String> {
    let header = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_string())
        .filter(|v| !v.is_empty() && v != "application/json" && v != "application/octet-stream");
    let mt = header
        .or_else(|| parsed["mediaType"].as_str().map(str::to_string))
        .unwrap_or_else(|| {
            // An OCI document may omit mediaType; `manifests` marks an index.
            if parsed.get("manifests").is_some() {
                OCI_INDEX.to_string()
            } else {
                OCI_MANIFEST.to_string()
            }
        });
    if [
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
        OCI_MANIFEST,
        OCI_INDEX,
    ]
    .contains(&mt.as_str())
    {
        Ok(mt)
    } else {
        Err(RegistryError::ManifestInvalid(format!(
            "unsupported manifest media type {mt}"
        )))
    }
}

/// Every blob an image manifest names must be in the repository already.
async fn check_blobs(ctx: &RequestContext, name: &str, parsed: &Value) -> RegistryResult<()> {
    let config = parsed["config"]["digest"].as_str();
    let layers = parsed["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| !FOREIGN_LAYERS.contains(&l["mediaType"].as_str().unwrap_or_default()))
        .filter_map(|l| l["digest"].as_str());
    for digest in config.into_iter().chain(layers) {
        if linked(ctx, name, digest).await?.is_none() {
            return Err(RegistryError::ManifestBlobUnknown(digest.to_string()));
        }
    }
    Ok(())
}

/// Every manifest an index names must be an image of the repository already.
fn check_children(repo: &Repository, parsed: &Value) -> RegistryResult<()> {
    for m in parsed["manifests"].as_array().into_iter().flatten() {
        let d = m["digest"].as_str().unwrap_or_default();
        if !repo.images.contains_key(d) {
            return Err(RegistryError::ManifestBlobUnknown(d.to_string()));
        }
    }
    Ok(())
}

/// `PUT /v2/<name>/manifests/<tag|digest>`.
pub async fn put_manifest(
    ctx: &RequestContext,
    name: &str,
    reference: &str,
    headers: &HeaderMap,
    body: Body,
) -> RegistryResult<Response> {
    let bytes = axum::body::to_bytes(body, MAX_MANIFEST)
        .await
        .map_err(|_| RegistryError::ManifestInvalid("manifest larger than 4 MiB".into()))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| RegistryError::ManifestInvalid("manifest is not UTF-8 JSON".into()))?;
    let parsed: Value = serde_json::from_str(text)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| RegistryError::ManifestInvalid("manifest is not a JSON object".into()))?;
    let media_type = media_type_of(headers, &parsed)?;
    let digest = digest_of(&bytes);
    let tag = if is_digest(reference) {
        if reference != digest {
            return Err(RegistryError::DigestInvalid(reference.to_string()));
        }
        None
    } else if valid_tag(reference) {
        Some(reference)
    } else {
        return Err(RegistryError::TagInvalid(format!(
            "invalid tag '{reference}'"
        )));
    };
    repository(ctx, name).await?;
    let is_index = parsed.get("manifests").is_some();
    if !is_index {
        check_blobs(ctx, name, &parsed).await?;
    }
    for _ in 0..RETRIES {
        let (mut repo, rev) = repository(ctx, name).await?;
        if is_index {
            check_children(&repo, &parsed)?;
        }
        match add_image(&mut repo, text, &parsed, &media_type, tag) {
            Ok(_) => {}
            // Pushing what is already there is a no-op for a registry client.
            Err(EcrError::ImageAlreadyExists(_)) => return Ok(manifest_created(name, &digest)),
            Err(EcrError::ImageTagAlreadyExists(m) | EcrError::InvalidParameter(m)) => {
                return Err(RegistryError::TagInvalid(m));
            }
            Err(e) => return Err(RegistryError::Internal(e.to_string())),
        }
        match save(ctx, &repo, rev).await {
            Ok(()) => return Ok(manifest_created(name, &digest)),
            Err(EcrError::Conflict) => continue,
            Err(e) => return Err(RegistryError::Internal(e.to_string())),
        }
    }
    Err(RegistryError::Internal(
        "the repository changed too often concurrently; retry".into(),
    ))
}

fn manifest_created(name: &str, digest: &str) -> Response {
    Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{name}/manifests/{digest}"))
        .header("docker-content-digest", digest)
        .header(header::CONTENT_LENGTH, "0")
        .body(Body::empty())
        .unwrap_or_default()
}

/// The digest `reference` (a tag or a digest) names in `repo`.
fn resolve(repo: &Repository, reference: &str) -> RegistryResult<String> {
    let found = if is_digest(reference) {
        repo.images
            .contains_key(reference)
            .then(|| reference.to_string())
    } else {
        repo.digest_of_tag(reference).map(str::to_string)
    };
    found.ok_or_else(|| RegistryError::ManifestUnknown(reference.to_string()))
}

/// `GET`/`HEAD /v2/<name>/manifests/<tag|digest>`: the bytes exactly as pushed.
pub async fn get_manifest(
    ctx: &RequestContext,
    name: &str,
    reference: &str,
    head: bool,
) -> RegistryResult<Response> {
    let (repo, _) = repository(ctx, name).await?;
    let digest = resolve(&repo, reference)?;
    let img = &repo.images[&digest];
    let b = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, img.media_type.as_str())
        .header("docker-content-digest", digest.as_str())
        .header(header::ETAG, format!("\"{digest}\""))
        .header(header::CONTENT_LENGTH, img.manifest.len().to_string());
    let body = if head {
        Body::empty()
    } else {
        Body::from(img.manifest.clone())
    };
    Ok(b.body(body).unwrap_or_default())
}

/// `DELETE /v2/<name>/manifests/<tag|digest>`: by digest the image and its tags go; by tag the tag
/// goes, and the image with its last tag (as `batch-delete-image` by tag does).
pub async fn delete_manifest(
    ctx: &RequestContext,
    name: &str,
    reference: &str,
) -> RegistryResult<Response> {
    for _ in 0..RETRIES {
        let (mut repo, rev) = repository(ctx, name).await?;
        let digest = resolve(&repo, reference)?;
        if is_digest(reference) {
            repo.images.remove(&digest);
        } else if let Some(img) = repo.images.get_mut(&digest) {
            img.tags.retain(|t| t != reference);
            if img.tags.is_empty() {
                repo.images.remove(&digest);
            }
        }
        match save(ctx, &repo, rev).await {
            Ok(()) => {
                return Ok(Response::builder()
                    .status(StatusCode::ACCEPTED)
                    .header(header::CONTENT_LENGTH, "0")
                    .body(Body::empty())
                    .unwrap_or_default());
            }
            Err(EcrError::Conflict) => continue,
            Err(e) => return Err(RegistryError::Internal(e.to_string())),
        }
    }
    Err(RegistryError::Internal(
        "the repository changed too often concurrently; retry".into(),
    ))
}

/// `GET /v2/<name>/tags/list[?n=&last=]`: sorted; a `Link` header points at the next page.
pub async fn list_tags(ctx: &RequestContext, name: &str, uri: &Uri) -> RegistryResult<Response> {
    let (repo, _) = repository(ctx, name).await?;
    let mut tags: Vec<&str> = repo
        .images
        .values()
        .flat_map(|i| i.tags.iter().map(String::as_str))
        .collect();
    tags.sort_unstable();
    if let Some(last) = query_param(uri, "last") {
        tags.retain(|t| *t > last.as_str());
    }
    let n = query_param(uri, "n").and_then(|n| n.parse::<usize>().ok());
    let more = n.is_some_and(|n| tags.len() > n);
    if let Some(n) = n {
        tags.truncate(n);
    }
    let mut resp = json_response(StatusCode::OK, &json!({"name": name, "tags": tags}));
    if more
        && let (Some(n), Some(last)) = (n, tags.last())
        && let Ok(v) = format!("</v2/{name}/tags/list?n={n}&last={last}>; rel=\"next\"").parse()
    {
        resp.headers_mut().insert(header::LINK, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_distribution_grammar() {
        assert!(valid_tag("v1.2_3-rc"));
        assert!(valid_tag("_x"));
        assert!(!valid_tag(".x"));
        assert!(!valid_tag(""));
        assert!(!valid_tag("a/b"));
        assert!(!valid_tag(&"a".repeat(301)));
    }

    #[test]
    fn media_types_come_from_the_header_or_the_document() {
        let mut h = HeaderMap::new();
        assert_eq!(
            media_type_of(&h, &json!({"mediaType": DOCKER_MANIFEST})).unwrap(),
            DOCKER_MANIFEST
        );
        assert_eq!(
            media_type_of(&h, &json!({"manifests": []})).unwrap(),
            OCI_INDEX
        );
        assert_eq!(
            media_type_of(&h, &json!({"layers": []})).unwrap(),
            OCI_MANIFEST
        );
        h.insert(header::CONTENT_TYPE, OCI_MANIFEST.parse().unwrap());
        assert_eq!(
            media_type_of(&h, &json!({"mediaType": DOCKER_MANIFEST})).unwrap(),
            OCI_MANIFEST
        );
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(media_type_of(&h, &json!({})).is_err());
    }
}
