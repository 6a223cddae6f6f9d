//! Layers through the ECR API: InitiateLayerUpload, UploadLayerPart, CompleteLayerUpload,
//! BatchCheckLayerAvailability, GetDownloadUrlForLayer.
//!
//! These share the registry's blob store ([`super::registry_blobs`]): a layer uploaded here is a
//! blob `skopeo` can pull from `/v2/`, and a blob pushed there is AVAILABLE here. The gateway hands
//! the handlers its [`Blobs`] through a task-local ([`with_blobs`]), as handlers get no gateway state;
//! without one (no `registry_dir`) the layer operations answer `ServerException`.
//!
//! `GetDownloadUrlForLayer` answers a URL on the gateway itself (`/_skiff/ecr/layer/...`), signed
//! with a per-process key and valid for an hour, as ECR's S3 URLs are: the client GETs it unsigned.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::common::{EcrError, EcrResult, load, req_str};
use super::registry::RegistryError;
use super::registry_blobs::{self as rb, Blobs, FinishError, sha256_hex};
use crate::context::{Caller, RequestContext};

/// What an ECR API request may use of the registry: its blobs, and the host the call came in on
/// (download URLs name it).
#[derive(Clone)]
struct LayerEnv {
    blobs: Arc<Blobs>,
    host: String,
}

tokio::task_local! {
    static LAYER_ENV: LayerEnv;
}

/// Run `f` (an ECR API call) with the registry's blobs; `None` runs it without.
pub async fn with_blobs<F: std::future::Future>(
    blobs: Option<Arc<Blobs>>,
    host: String,
    f: F,
) -> F::Output {
    match blobs {
        Some(blobs) => LAYER_ENV.scope(LayerEnv { blobs, host }, f).await,
        None => f.await,
    }
}

/// The registry's blobs, when this request has them (PutImage checks layers only then).
pub fn current_blobs() -> Option<Arc<Blobs>> {
    LAYER_ENV.try_with(|e| e.blobs.clone()).ok()
}

fn env() -> EcrResult<LayerEnv> {
    LAYER_ENV.try_with(Clone::clone).map_err(|_| {
        EcrError::Internal(
            skiff_aws_model::AwsError::new(
                "ServerException",
                "This Skiff gateway has no registry storage (start it with a data directory)",
            )
            .with_status(500),
        )
    })
}

/// The size a client should cut layers into. Parts travel base64 in a JSON body, and the gateway
/// refuses bodies over 3 MiB, so 2 MiB parts (2.7 MiB encoded) are the largest that fit.
const PART_SIZE: u64 = 2 * 1024 * 1024;

/// How long a download URL works (ECR's are valid for an hour).
const URL_TTL_SECS: i64 = 3600;

fn internal(e: RegistryError) -> EcrError {
    EcrError::Internal(
        skiff_aws_model::AwsError::new("ServerException", e.to_string()).with_status(500),
    )
}

fn upload_not_found(id: &str, repo: &str, registry: &str) -> EcrError {
    EcrError::UploadNotFound(format!(
        "The upload with id '{id}' does not exist in the repository with name '{repo}' in the registry with id '{registry}'"
    ))
}

#[doc(alias = "InitiateLayerUpload")]
pub async fn initiate_layer_upload(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    let (repo, _) = load(ctx, &input).await?;
    let env = env()?;
    let id = env
        .blobs
        .create_upload(ctx, &repo.name)
        .await
        .map_err(internal)?;
    Ok(json!({"uploadId": id, "partSize": PART_SIZE}))
}

#[doc(alias = "UploadLayerPart")]
pub async fn upload_layer_part(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    let (repo, _) = load(ctx, &input).await?;
    let env = env()?;
    let id = req_str(&input, "uploadId")?;
    let upload = env
        .blobs
        .upload(ctx, &repo.name, id)
        .map_err(|_| upload_not_found(id, &repo.name, &repo.registry_id))?;
    let blob = req_str(&input, "layerPartBlob")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|_| {
            EcrError::InvalidParameter(
                "Invalid parameter at 'layerPartBlob' failed to satisfy constraint: 'Member must be base64 encoded'".into(),
            )
        })?;
    let first = input["partFirstByte"].as_u64();
    let last = input["partLastByte"].as_u64();
    let mut up = upload.lock().await;
    // Parts come in order, each starting right after the last, and say exactly how long they are.
    let fits = matches!((first, last), (Some(f), Some(l))
        if f == up.size && l >= f && l - f + 1 == bytes.len() as u64);
    if !fits {
        return Err(EcrError::InvalidLayerPart(format!(
            "The layer part size is not valid, or the first byte specified is not consecutive to the last byte of a previous layer part upload. Last valid byte received: {}",
            up.size as i64 - 1
        )));
    }
    rb::append_bytes(&mut up, &bytes).await.map_err(internal)?;
    Ok(json!({
        "registryId": repo.registry_id,
        "repositoryName": repo.name,
        "uploadId": id,
        "lastByteReceived": up.size - 1,
    }))
}

#[doc(alias = "CompleteLayerUpload")]
pub async fn complete_layer_upload(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    let (repo, _) = load(ctx, &input).await?;
    let env = env()?;
    let id = req_str(&input, "uploadId")?;
    let digests: Vec<&str> = input["layerDigests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let [digest] = digests.as_slice() else {
        return Err(EcrError::InvalidParameter(
            "Invalid parameter at 'layerDigests' failed to satisfy constraint: 'Member must have length less than or equal to 1'".into(),
        ));
    };
    let upload = env
        .blobs
        .upload(ctx, &repo.name, id)
        .map_err(|_| upload_not_found(id, &repo.name, &repo.registry_id))?;
    let mut up = upload.lock().await;
    if up.size == 0 {
        return Err(EcrError::EmptyUpload(format!(
            "The specified layer upload does not contain any layer parts. Upload id '{id}'"
        )));
    }
    if rb::linked(ctx, &repo.name, digest)
        .await
        .map_err(internal)?
        .is_some()
    {
        env.blobs.drop_upload(id, &up.path).await;
        return Err(EcrError::LayerAlreadyExists(format!(
            "The layer with digest '{digest}' already exists in the repository with name '{}' in registry with id '{}'",
            repo.name, repo.registry_id
        )));
    }
    match rb::finish_blob(ctx, &env.blobs, &repo.name, id, &mut up, digest).await {
        Ok(()) => Ok(json!({
            "registryId": repo.registry_id,
            "repositoryName": repo.name,
            "uploadId": id,
            "layerDigest": digest,
        })),
        Err(FinishError::BadDigest | FinishError::Mismatch) => {
            Err(EcrError::InvalidLayer(format!(
                "The layer digest calculation performed by Amazon ECR upon receipt of the image layer does not match the digest specified: '{digest}'"
            )))
        }
        Err(FinishError::Other(e)) => Err(internal(e)),
    }
}

#[doc(alias = "BatchCheckLayerAvailability")]
pub async fn batch_check_layer_availability(
    ctx: &RequestContext,
    input: Value,
) -> EcrResult<Value> {
    let (repo, _) = load(ctx, &input).await?;
    let env = env()?;
    let mut layers = Vec::new();
    let mut failures = Vec::new();
    for d in input["layerDigests"].as_array().into_iter().flatten() {
        let digest = d.as_str().unwrap_or_default();
        let fail = |code: &str, reason: &str| json!({"layerDigest": digest, "failureCode": code, "failureReason": reason});
        let Ok(hex) = sha256_hex(digest) else {
            failures.push(fail("InvalidLayerDigest", "Invalid layer digest"));
            continue;
        };
        let link = rb::linked(ctx, &repo.name, digest)
            .await
            .map_err(internal)?;
        match link {
            Some(l) if env.blobs.blob_path(hex).exists() => layers.push(json!({
                "layerDigest": digest,
                "layerAvailability": "AVAILABLE",
                "layerSize": l.size,
            })),
            _ => failures.push(fail("MissingLayerDigest", "Could not find layer")),
        }
    }
    Ok(json!({"layers": layers, "failures": failures}))
}

fn mac(key: &[u8; 32], parts: &[&str]) -> Hmac<Sha256> {
    #[expect(clippy::expect_used, reason = "HMAC takes keys of any length")]
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(parts.join("\n").as_bytes());
    mac
}

fn sign(key: &[u8; 32], parts: &[&str]) -> String {
    hex::encode(mac(key, parts).finalize().into_bytes())
}

#[doc(alias = "GetDownloadUrlForLayer")]
pub async fn get_download_url_for_layer(ctx: &RequestContext, input: Value) -> EcrResult<Value> {
    let (repo, _) = load(ctx, &input).await?;
    let env = env()?;
    let digest = req_str(&input, "layerDigest")?;
    let not_found = || {
        EcrError::LayersNotFound(format!(
            "The specified layer '{digest}' could not be found in the repository with name '{}' in the registry with id '{}'",
            repo.name, repo.registry_id
        ))
    };
    let hex = sha256_hex(digest).map_err(|_| {
        EcrError::InvalidParameter(format!(
            "Invalid parameter at 'layerDigest' failed to satisfy constraint: 'Invalid digest {digest}'"
        ))
    })?;
    if rb::linked(ctx, &repo.name, digest)
        .await
        .map_err(internal)?
        .is_none()
        || !env.blobs.blob_path(hex).exists()
    {
        return Err(not_found());
    }
    let expires = (jiff::Timestamp::now().as_second() + URL_TTL_SECS).to_string();
    let signature = sign(
        &env.blobs.url_key,
        &[&ctx.account_id, &ctx.region, &repo.name, digest, &expires],
    );
    // Repository names are `[a-z0-9._/-]`: nothing a query needs to escape.
    let repo_q = &repo.name;
    let url = format!(
        "http://{}/_skiff/ecr/layer/{}/{}/{digest}?repository={repo_q}&expires={expires}&signature={signature}",
        env.host, ctx.account_id, ctx.region
    );
    Ok(json!({"downloadUrl": url, "layerDigest": digest}))
}

/// The query of a download URL.
#[derive(serde::Deserialize)]
pub struct DownloadQuery {
    repository: String,
    expires: String,
    signature: String,
}

fn denied(message: &str) -> Response {
    // The client expects S3's answer to a bad presigned URL.
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>{message}</Message></Error>"
    );
    Response::builder()
        .status(StatusCode::FORBIDDEN)
        .header(header::CONTENT_TYPE, "application/xml")
        .body(Body::from(body))
        .unwrap_or_default()
}

/// `GET /_skiff/ecr/layer/<account>/<region>/<digest>?repository=&expires=&signature=`: a layer by
/// a URL `GetDownloadUrlForLayer` signed; the blob is read as the registry reads it.
pub async fn download(
    State((store, blobs)): State<(Arc<dyn skiff_store::Store>, Arc<Blobs>)>,
    method: Method,
    Path((account, region, digest)): Path<(String, String, String)>,
    Query(q): Query<DownloadQuery>,
    headers: HeaderMap,
) -> Response {
    let parts = [&*account, &*region, &*q.repository, &*digest, &*q.expires];
    // `verify_slice` compares in constant time.
    let genuine = hex::decode(&q.signature)
        .is_ok_and(|sig| mac(&blobs.url_key, &parts).verify_slice(&sig).is_ok());
    if !genuine {
        return denied(
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    if q.expires
        .parse::<i64>()
        .map_or(true, |e| e < jiff::Timestamp::now().as_second())
    {
        return denied("Request has expired");
    }
    let ctx = RequestContext {
        account_id: account.clone(),
        region,
        request_id: uuid::Uuid::new_v4().to_string(),
        caller: Caller {
            arn: format!("arn:aws:iam::{account}:root"),
            user_id: account.clone(),
            account_id: account,
            access_key_id: String::new(),
        },
        store,
    };
    rb::get_blob(
        &ctx,
        &blobs,
        &q.repository,
        &digest,
        &headers,
        method == Method::HEAD,
    )
    .await
    .unwrap_or_else(RegistryError::into_response)
}

/// PutImage with the registry served: every blob the manifest names must be a layer of the
/// repository (`LayersNotFoundException`, as ECR answers a manifest pushed before its layers).
pub async fn check_manifest_layers(
    ctx: &RequestContext,
    repo: &super::common::Repository,
    manifest: &Value,
) -> EcrResult<()> {
    if current_blobs().is_none() || manifest.get("manifests").is_some() {
        return Ok(());
    }
    let mut missing = Vec::new();
    for d in super::registry_gc::manifest_blobs(manifest) {
        if rb::linked(ctx, &repo.name, d)
            .await
            .map_err(internal)?
            .is_none()
        {
            missing.push(d.to_string());
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(EcrError::LayersNotFound(format!(
        "Layers with digests '[{}]' required for pushing image into repository with name '{}' in registry with id '{}' do not exist",
        missing.join(", "),
        repo.name,
        repo.registry_id
    )))
}
