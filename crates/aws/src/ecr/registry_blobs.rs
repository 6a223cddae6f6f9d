//! Registry blobs: HEAD/GET by digest, and uploads (POST, chunked PATCH, PUT with the digest,
//! monolithic POST, cross-repository mount, status, cancel).
//!
//! Blobs are files, `<dir>/blobs/sha256/<hex>`, not store values: layers run to hundreds of MB, and
//! the store keeps every value in its watch ring and history (and etcd refuses values over 1.5 MiB).
//! A blob is content-addressed, so one file serves every repository and account that holds it; a
//! store record per repository (`/aws/<account>/<region>/ecr/layer/<repo>@<digest>`) says which
//! repositories may read it, as ECR scopes layers to repositories. An upload streams into
//! `<dir>/uploads/<id>` while its SHA-256 is computed; on the final PUT the digest is compared,
//! the file fsynced and renamed into place, the directory fsynced, and the link committed — all before
//! the 201, so an acknowledged blob survives a crash. Uploads in flight live in memory: after a
//! restart a client gets `BLOB_UPLOAD_UNKNOWN` and starts the blob again, as the spec allows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use skiff_store::Precondition;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::registry::{RegistryError, RegistryResult, query_param, repository, upload_range};
use crate::context::RequestContext;
use crate::resources;

/// The blob files and the uploads in flight.
pub struct Blobs {
    dir: PathBuf,
    uploads: Mutex<UploadMap>,
    /// Pushes hold it shared from "is the file there" to "link committed"; garbage collection holds
    /// it exclusively from "which digests are linked" to "files removed", so a push never links a
    /// blob that collection is deleting ([`super::registry_gc`]).
    pub(super) gc_lock: tokio::sync::RwLock<()>,
    /// Wakes the collector after an image deletion.
    pub(super) gc_wanted: tokio::sync::Notify,
    /// Signs `GetDownloadUrlForLayer` URLs; per process, so URLs die with it (ECR's last an hour).
    pub(super) url_key: [u8; 32],
}

/// Uploads in flight by id.
type UploadMap = HashMap<String, (Owner, Arc<tokio::sync::Mutex<Upload>>)>;

/// Whose an upload is: (account, region, repository).
type Owner = (String, String, String);

/// One upload in flight: how far it got, and the running hash of what arrived.
pub(super) struct Upload {
    pub(super) size: u64,
    hasher: Sha256,
    pub(super) path: PathBuf,
    /// Last time a part arrived: uploads idle longer than the configured age are expired.
    pub(super) touched: std::time::Instant,
}

/// A repository's claim on a blob.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerLink {
    pub size: u64,
    pub pushed_at: String,
}

pub fn link_key(ctx: &RequestContext, repo: &str, digest: &str) -> String {
    resources::key(ctx, "ecr", "layer", &format!("{repo}@{digest}"))
}

/// The prefix of every blob link of `repo` (`@` cannot occur in repository names).
pub fn links_prefix(ctx: &RequestContext, repo: &str) -> String {
    resources::key(ctx, "ecr", "layer", &format!("{repo}@"))
}

/// The hex part of a `sha256:<64 hex>` digest; other algorithms and malformed digests are refused.
pub fn sha256_hex(digest: &str) -> RegistryResult<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .ok_or_else(|| RegistryError::DigestInvalid(digest.to_string()))
}

fn io(e: std::io::Error) -> RegistryError {
    RegistryError::Internal(format!("blob storage: {e}"))
}

impl Blobs {
    /// Uploads live in memory only, so files left in `<dir>/uploads` by an earlier process are
    /// abandoned by definition and removed here.
    pub fn new(dir: PathBuf) -> Self {
        let _ = std::fs::remove_dir_all(dir.join("uploads"));
        Self {
            dir,
            uploads: Mutex::new(HashMap::new()),
            gc_lock: tokio::sync::RwLock::new(()),
            gc_wanted: tokio::sync::Notify::new(),
            url_key: rand::random(),
        }
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Ask the collector to run soon (after images were deleted).
    pub fn request_gc(&self) {
        self.gc_wanted.notify_one();
    }

    /// Ids of the uploads in flight with their owner and entry (for expiry).
    pub(super) fn upload_entries(&self) -> Vec<(String, Arc<tokio::sync::Mutex<Upload>>)> {
        self.uploads()
            .iter()
            .map(|(id, (_, u))| (id.clone(), u.clone()))
            .collect()
    }

    pub(super) fn blob_path(&self, hex: &str) -> PathBuf {
        self.dir.join("blobs").join("sha256").join(hex)
    }

    fn uploads(&self) -> std::sync::MutexGuard<'_, UploadMap> {
        self.uploads.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The upload `id` if it belongs to this caller's account, region and repository.
    pub(super) fn upload(
        &self,
        ctx: &RequestContext,
        repo: &str,
        id: &str,
    ) -> RegistryResult<Arc<tokio::sync::Mutex<Upload>>> {
        let owner = (ctx.account_id.clone(), ctx.region.clone(), repo.to_string());
        self.uploads()
            .get(id)
            .filter(|(o, _)| *o == owner)
            .map(|(_, u)| u.clone())
            .ok_or_else(|| RegistryError::BlobUploadUnknown(id.to_string()))
    }

    pub(super) async fn create_upload(
        &self,
        ctx: &RequestContext,
        repo: &str,
    ) -> RegistryResult<String> {
        let id = uuid::Uuid::new_v4().to_string();
        let dir = self.dir.join("uploads");
        tokio::fs::create_dir_all(&dir).await.map_err(io)?;
        let path = dir.join(&id);
        tokio::fs::File::create(&path).await.map_err(io)?;
        let owner = (ctx.account_id.clone(), ctx.region.clone(), repo.to_string());
        let upload = Upload {
            size: 0,
            hasher: Sha256::new(),
            path,
            touched: std::time::Instant::now(),
        };
        self.uploads().insert(
            id.clone(),
            (owner, Arc::new(tokio::sync::Mutex::new(upload))),
        );
        Ok(id)
    }

    pub(super) async fn drop_upload(&self, id: &str, path: &Path) {
        self.uploads().remove(id);
        let _ = tokio::fs::remove_file(path).await;
    }
}

/// Stream `body` onto the end of the upload's file, hashing as it goes.
async fn append(up: &mut Upload, body: Body) -> RegistryResult<()> {
    let mut file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(&up.path)
        .await
        .map_err(io)?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| RegistryError::BlobUploadInvalid(e.to_string()))?;
        file.write_all(&chunk).await.map_err(io)?;
        up.hasher.update(&chunk);
        up.size += chunk.len() as u64;
    }
    file.flush().await.map_err(io)?;
    up.touched = std::time::Instant::now();
    Ok(())
}

/// Append one part given whole (the ECR API's `UploadLayerPart`).
pub(super) async fn append_bytes(up: &mut Upload, bytes: &[u8]) -> RegistryResult<()> {
    let mut file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(&up.path)
        .await
        .map_err(io)?;
    file.write_all(bytes).await.map_err(io)?;
    file.flush().await.map_err(io)?;
    up.hasher.update(bytes);
    up.size += bytes.len() as u64;
    up.touched = std::time::Instant::now();
    Ok(())
}

fn upload_response(status: StatusCode, name: &str, id: &str, size: u64) -> Response {
    Response::builder()
        .status(status)
        .header(header::LOCATION, format!("/v2/{name}/blobs/uploads/{id}"))
        .header(header::RANGE, upload_range(size))
        .header("docker-upload-uuid", id)
        .header(header::CONTENT_LENGTH, "0")
        .body(Body::empty())
        .unwrap_or_default()
}

fn created(name: &str, digest: &str) -> Response {
    Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{name}/blobs/{digest}"))
        .header("docker-content-digest", digest)
        .header(header::CONTENT_LENGTH, "0")
        .body(Body::empty())
        .unwrap_or_default()
}

pub(super) async fn put_link(
    ctx: &RequestContext,
    repo: &str,
    digest: &str,
    size: u64,
) -> RegistryResult<()> {
    let link = LayerLink {
        size,
        pushed_at: super::common::now(),
    };
    let op = resources::put_op(&link_key(ctx, repo, digest), &link, Precondition::None);
    resources::commit(&*ctx.store, vec![op])
        .await
        .map(|_| ())
        .map_err(|e| RegistryError::Internal(e.map(|e| e.message).unwrap_or_default()))
}

/// The link of `digest` in `repo`, if the repository holds that blob.
pub async fn linked(
    ctx: &RequestContext,
    repo: &str,
    digest: &str,
) -> RegistryResult<Option<LayerLink>> {
    Ok(resources::get(&*ctx.store, &link_key(ctx, repo, digest))
        .await?
        .map(|(l, _)| l))
}

/// Why an upload could not become a blob.
#[derive(Debug)]
pub(super) enum FinishError {
    /// The digest is not `sha256:<hex>` (the upload is dropped).
    BadDigest,
    /// The bytes hash to something else (the upload is dropped).
    Mismatch,
    Other(RegistryError),
}

/// Verify, fsync, move into place and link: the upload becomes blob `digest` of `name`. The upload
/// is gone afterwards whatever the outcome, except on I/O or store failures.
pub(super) async fn finish_blob(
    ctx: &RequestContext,
    blobs: &Blobs,
    name: &str,
    id: &str,
    up: &mut Upload,
    digest: &str,
) -> Result<(), FinishError> {
    let Ok(hex) = sha256_hex(digest) else {
        blobs.drop_upload(id, &up.path).await;
        return Err(FinishError::BadDigest);
    };
    let actual = hex::encode(up.hasher.clone().finalize());
    if actual != hex {
        blobs.drop_upload(id, &up.path).await;
        return Err(FinishError::Mismatch);
    }
    let other = |e| FinishError::Other(io(e));
    let file = tokio::fs::File::open(&up.path).await.map_err(other)?;
    file.sync_all().await.map_err(other)?;
    drop(file);
    let target = blobs.blob_path(hex);
    let parent = target.parent().unwrap_or(&blobs.dir).to_path_buf();
    tokio::fs::create_dir_all(&parent).await.map_err(other)?;
    // Shared with other pushes, exclusive of the collector: the file cannot vanish before the link
    // that keeps it is committed.
    let _guard = blobs.gc_lock.read().await;
    if tokio::fs::try_exists(&target).await.unwrap_or(false) {
        // Same bytes by construction (same SHA-256): keep the file already there.
        let _ = tokio::fs::remove_file(&up.path).await;
    } else {
        tokio::fs::rename(&up.path, &target).await.map_err(other)?;
        let d = tokio::fs::File::open(&parent).await.map_err(other)?;
        d.sync_all().await.map_err(other)?;
    }
    blobs.uploads().remove(id);
    put_link(ctx, name, digest, up.size)
        .await
        .map_err(FinishError::Other)
}

async fn commit_upload(
    ctx: &RequestContext,
    blobs: &Blobs,
    name: &str,
    id: &str,
    up: &mut Upload,
    digest: &str,
) -> RegistryResult<Response> {
    match finish_blob(ctx, blobs, name, id, up, digest).await {
        Ok(()) => Ok(created(name, digest)),
        Err(FinishError::BadDigest | FinishError::Mismatch) => {
            Err(RegistryError::DigestInvalid(digest.to_string()))
        }
        Err(FinishError::Other(e)) => Err(e),
    }
}

/// `POST /v2/<name>/blobs/uploads/`: a mount (`?mount=&from=`), a monolithic upload (`?digest=`),
/// or the start of a chunked one (202 with its `Location`).
pub async fn start_upload(
    ctx: &RequestContext,
    blobs: &Blobs,
    name: &str,
    uri: &Uri,
    body: Body,
) -> RegistryResult<Response> {
    repository(ctx, name).await?;
    if let (Some(digest), Some(from)) = (query_param(uri, "mount"), query_param(uri, "from")) {
        let hex = sha256_hex(&digest)?;
        // A mount from a repository we cannot see (or without the blob) is a plain upload start.
        let _guard = blobs.gc_lock.read().await;
        if repository(ctx, &from).await.is_ok()
            && let Some(link) = linked(ctx, &from, &digest).await?
            && tokio::fs::try_exists(blobs.blob_path(hex))
                .await
                .unwrap_or(false)
        {
            put_link(ctx, name, &digest, link.size).await?;
            return Ok(created(name, &digest));
        }
    }
    let id = blobs.create_upload(ctx, name).await?;
    let Some(digest) = query_param(uri, "digest") else {
        return Ok(upload_response(StatusCode::ACCEPTED, name, &id, 0));
    };
    let upload = blobs.upload(ctx, name, &id)?;
    let mut up = upload.lock().await;
    if let Err(e) = append(&mut up, body).await {
        blobs.drop_upload(&id, &up.path).await;
        return Err(e);
    }
    commit_upload(ctx, blobs, name, &id, &mut up, &digest).await
}

/// `PATCH`: one chunk; a `Content-Range` must start where the upload ends.
pub async fn patch_upload(
    ctx: &RequestContext,
    blobs: &Blobs,
    name: &str,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> RegistryResult<Response> {
    let upload = blobs.upload(ctx, name, id)?;
    let mut up = upload.lock().await;
    if let Some(range) = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
    {
        let start = range
            .trim_start_matches("bytes ")
            .split('-')
            .next()
            .and_then(|s| s.trim().parse::<u64>().ok());
        if start != Some(up.size) {
            return Err(RegistryError::RangeInvalid {
                upload_size: up.size,
            });
        }
    }
    append(&mut up, body).await?;
    Ok(upload_response(StatusCode::ACCEPTED, name, id, up.size))
}

/// `PUT ?digest=`: the last chunk (maybe empty), then the blob is committed.
pub async fn finish_upload(
    ctx: &RequestContext,
    blobs: &Blobs,
    name: &str,
    id: &str,
    uri: &Uri,
    body: Body,
) -> RegistryResult<Response> {
    let digest = query_param(uri, "digest")
        .ok_or_else(|| RegistryError::DigestInvalid("the digest parameter is required".into()))?;
    let upload = blobs.upload(ctx, name, id)?;
    let mut up = upload.lock().await;
    append(&mut up, body).await?;
    commit_upload(ctx, blobs, name, id, &mut up, &digest).await
}

/// `GET` of an upload: how much has arrived (204 with `Range`).
pub async fn upload_status(
    ctx: &RequestContext,
    blobs: &Blobs,
    name: &str,
    id: &str,
) -> RegistryResult<Response> {
    let upload = blobs.upload(ctx, name, id)?;
    let size = upload.lock().await.size;
    Ok(upload_response(StatusCode::NO_CONTENT, name, id, size))
}

/// `DELETE` of an upload: abandon it.
pub async fn cancel_upload(
    ctx: &RequestContext,
    blobs: &Blobs,
    name: &str,
    id: &str,
) -> RegistryResult<Response> {
    let upload = blobs.upload(ctx, name, id)?;
    let up = upload.lock().await;
    blobs.drop_upload(id, &up.path).await;
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .unwrap_or_default())
}

/// `bytes=<a>-<b>` (or `<a>-`) within `size`: the inclusive range.
fn byte_range(headers: &HeaderMap, size: u64) -> Option<(u64, u64)> {
    let spec = headers
        .get(header::RANGE)?
        .to_str()
        .ok()?
        .strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start: u64 = a.trim().parse().ok()?;
    let end = match b.trim() {
        "" => size.checked_sub(1)?,
        e => e.parse::<u64>().ok()?.min(size.checked_sub(1)?),
    };
    (start <= end).then_some((start, end))
}

/// `HEAD`/`GET /v2/<name>/blobs/<digest>`, streamed from disk; a single `Range` gives 206.
pub async fn get_blob(
    ctx: &RequestContext,
    blobs: &Blobs,
    name: &str,
    digest: &str,
    headers: &HeaderMap,
    head: bool,
) -> RegistryResult<Response> {
    repository(ctx, name).await?;
    let hex = sha256_hex(digest)?;
    let unknown = || RegistryError::BlobUnknown(digest.to_string());
    linked(ctx, name, digest).await?.ok_or_else(unknown)?;
    let path = blobs.blob_path(hex);
    let mut file = tokio::fs::File::open(&path).await.map_err(|_| unknown())?;
    let size = file.metadata().await.map_err(io)?.len();
    let builder = Response::builder()
        .header("docker-content-digest", digest)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, format!("\"{digest}\""));
    let (status, start, len, builder) = match byte_range(headers, size).filter(|_| !head) {
        Some((a, b)) => (
            StatusCode::PARTIAL_CONTENT,
            a,
            b - a + 1,
            builder.header(header::CONTENT_RANGE, format!("bytes {a}-{b}/{size}")),
        ),
        None => (StatusCode::OK, 0, size, builder),
    };
    let builder = builder
        .status(status)
        .header(header::CONTENT_LENGTH, len.to_string());
    if head {
        return Ok(builder.body(Body::empty()).unwrap_or_default());
    }
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(io)?;
    let stream = futures::stream::unfold((Some(file), len), |(file, left)| async move {
        let mut f = file?;
        if left == 0 {
            return None;
        }
        let mut buf = vec![0u8; (64 * 1024).min(left as usize)];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), (Some(f), left - n as u64)))
            }
            Err(e) => Some((Err(e), (None, 0))),
        }
    });
    Ok(builder.body(Body::from_stream(stream)).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_must_be_sha256_hex() {
        let good = format!("sha256:{}", "a".repeat(64));
        assert_eq!(sha256_hex(&good).unwrap(), "a".repeat(64));
        assert!(sha256_hex("sha512:00").is_err());
        assert!(sha256_hex(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(sha256_hex("sha256:../../etc/passwd").is_err());
    }

    #[test]
    fn ranges_clip_to_the_blob() {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, "bytes=2-".parse().unwrap());
        assert_eq!(byte_range(&h, 10), Some((2, 9)));
        h.insert(header::RANGE, "bytes=2-100".parse().unwrap());
        assert_eq!(byte_range(&h, 10), Some((2, 9)));
        h.insert(header::RANGE, "bytes=5-2".parse().unwrap());
        assert_eq!(byte_range(&h, 10), None);
        assert_eq!(byte_range(&h, 0), None);
    }
}
