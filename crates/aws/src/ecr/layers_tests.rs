//! The ECR layer API over the registry's blob store, garbage collection and upload expiry, through
//! the operation table on an in-memory store.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::layers::with_blobs;
use super::registry_blobs::Blobs;
use super::registry_gc::{collect, expire_uploads};
use crate::context::RequestContext;
use crate::iam::test_support::root_ctx;

async fn ecr(
    ctx: &RequestContext,
    op: &str,
    input: Value,
) -> Result<Value, skiff_aws_model::AwsError> {
    super::dispatch(ctx, op, input).await
}

fn digest(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Upload `bytes` in two parts through the API; returns the upload id.
async fn upload(ctx: &RequestContext, repo: &str, bytes: &[u8]) -> String {
    let id = ecr(ctx, "InitiateLayerUpload", json!({"repositoryName": repo}))
        .await
        .unwrap()["uploadId"]
        .as_str()
        .unwrap()
        .to_string();
    let mid = bytes.len() / 2;
    for (first, part) in [(0, &bytes[..mid]), (mid, &bytes[mid..])] {
        let r = ecr(ctx, "UploadLayerPart", json!({"repositoryName": repo, "uploadId": id,
            "partFirstByte": first, "partLastByte": first + part.len() - 1, "layerPartBlob": b64(part)}))
            .await
            .unwrap();
        assert_eq!(r["lastByteReceived"], json!(first + part.len() - 1));
    }
    id
}

fn blob_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("blobs/sha256")).map_or(0, |d| d.count())
}

#[tokio::test]
async fn layers_upload_check_download_put_image_and_collect() {
    let ctx = root_ctx();
    let dir = std::env::temp_dir().join(format!("skiff-ecr-layers-{}", uuid::Uuid::new_v4()));
    let blobs = Arc::new(Blobs::new(dir.clone()));
    let b = blobs.clone();
    let d = dir.clone();
    with_blobs(Some(blobs.clone()), "127.0.0.1:4566".into(), async move {
        let dir = d;
        ecr(&ctx, "CreateRepository", json!({"repositoryName": "app"})).await.unwrap();
        let layer = b"layer bytes of some length".to_vec();
        let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
        let (ld, cd) = (digest(&layer), digest(&config));

        // A part that does not continue the upload is refused with the upload's last valid byte.
        let id = upload(&ctx, "app", &layer).await;
        let err = ecr(&ctx, "UploadLayerPart", json!({"repositoryName": "app", "uploadId": id,
            "partFirstByte": 0, "partLastByte": 1, "layerPartBlob": b64(b"ab")}))
            .await
            .unwrap_err();
        assert_eq!(err.code, "InvalidLayerPartException");
        assert!(err.message.contains(&format!("{}", layer.len() - 1)), "{}", err.message);
        // A wrong digest: InvalidLayerException, and the upload is gone.
        let err = ecr(&ctx, "CompleteLayerUpload", json!({"repositoryName": "app", "uploadId": id,
            "layerDigests": [cd]})).await.unwrap_err();
        assert_eq!(err.code, "InvalidLayerException");
        let err = ecr(&ctx, "CompleteLayerUpload", json!({"repositoryName": "app", "uploadId": id,
            "layerDigests": [ld]})).await.unwrap_err();
        assert_eq!(err.code, "UploadNotFoundException");
        // An empty upload cannot complete.
        let empty = ecr(&ctx, "InitiateLayerUpload", json!({"repositoryName": "app"})).await.unwrap();
        let err = ecr(&ctx, "CompleteLayerUpload", json!({"repositoryName": "app",
            "uploadId": empty["uploadId"], "layerDigests": [ld]})).await.unwrap_err();
        assert_eq!(err.code, "EmptyUploadException");

        for (bytes, d) in [(&layer, &ld), (&config, &cd)] {
            let id = upload(&ctx, "app", bytes).await;
            let done = ecr(&ctx, "CompleteLayerUpload", json!({"repositoryName": "app",
                "uploadId": id, "layerDigests": [d]})).await.unwrap();
            assert_eq!(done["layerDigest"], json!(d));
        }
        let id = upload(&ctx, "app", &layer).await;
        let err = ecr(&ctx, "CompleteLayerUpload", json!({"repositoryName": "app", "uploadId": id,
            "layerDigests": [ld]})).await.unwrap_err();
        assert_eq!(err.code, "LayerAlreadyExistsException");

        let missing = format!("sha256:{}", "0".repeat(64));
        let check = ecr(&ctx, "BatchCheckLayerAvailability", json!({"repositoryName": "app",
            "layerDigests": [ld, missing, "nope"]})).await.unwrap();
        assert_eq!(check["layers"][0]["layerAvailability"], "AVAILABLE");
        assert_eq!(check["layers"][0]["layerSize"], json!(layer.len()));
        assert_eq!(check["failures"][0]["failureCode"], "MissingLayerDigest");
        assert_eq!(check["failures"][1]["failureCode"], "InvalidLayerDigest");

        let url = ecr(&ctx, "GetDownloadUrlForLayer", json!({"repositoryName": "app", "layerDigest": ld}))
            .await.unwrap()["downloadUrl"].as_str().unwrap().to_string();
        assert!(url.starts_with(&format!("http://127.0.0.1:4566/_skiff/ecr/layer/000000000000/us-east-1/{ld}?repository=app&expires=")), "{url}");
        let err = ecr(&ctx, "GetDownloadUrlForLayer", json!({"repositoryName": "app", "layerDigest": missing}))
            .await.unwrap_err();
        assert_eq!(err.code, "LayersNotFoundException");

        // PutImage needs every layer it names.
        let manifest = |layers: Vec<&String>| json!({"schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config.len(), "digest": cd},
            "layers": layers.iter().map(|d| json!({"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1, "digest": d})).collect::<Vec<_>>()}).to_string();
        let err = ecr(&ctx, "PutImage", json!({"repositoryName": "app", "imageTag": "v1",
            "imageManifest": manifest(vec![&ld, &missing])})).await.unwrap_err();
        assert_eq!(err.code, "LayersNotFoundException");
        assert!(err.message.contains(&missing), "{}", err.message);
        ecr(&ctx, "PutImage", json!({"repositoryName": "app", "imageTag": "v1",
            "imageManifest": manifest(vec![&ld])})).await.unwrap();

        // Within the grace nothing goes; with none, only what no image needs.
        let report = collect(&*ctx.store, &b, Duration::from_secs(3600)).await.unwrap();
        assert_eq!((report.links_removed, report.blobs_removed), (0, 0));
        assert_eq!(blob_count(&dir), 2);
        let report = collect(&*ctx.store, &b, Duration::ZERO).await.unwrap();
        assert_eq!((report.links_removed, report.blobs_removed), (0, 0));
        ecr(&ctx, "BatchDeleteImage", json!({"repositoryName": "app", "imageIds": [{"imageTag": "v1"}]}))
            .await.unwrap();
        let report = collect(&*ctx.store, &b, Duration::ZERO).await.unwrap();
        assert_eq!((report.links_removed, report.blobs_removed), (2, 2));
        assert_eq!(blob_count(&dir), 0);
        let check = ecr(&ctx, "BatchCheckLayerAvailability", json!({"repositoryName": "app",
            "layerDigests": [ld]})).await.unwrap();
        assert_eq!(check["failures"][0]["failureCode"], "MissingLayerDigest");

        // Idle uploads expire (this one and the empty one above): their ids are unknown afterwards.
        let id = upload(&ctx, "app", &layer).await;
        assert_eq!(expire_uploads(&b, Duration::from_secs(3600)).await, 0);
        assert_eq!(expire_uploads(&b, Duration::ZERO).await, 2, "the empty upload and this one");
        let err = ecr(&ctx, "CompleteLayerUpload", json!({"repositoryName": "app", "uploadId": id,
            "layerDigests": [ld]})).await.unwrap_err();
        assert_eq!(err.code, "UploadNotFoundException");
        assert_eq!(std::fs::read_dir(dir.join("uploads")).unwrap().count(), 0);
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn blobs_shared_by_two_accounts_survive_one_deleting() {
    let ctx = root_ctx();
    let mut other = ctx.clone();
    other.account_id = "111111111111".into();
    other.caller.account_id = "111111111111".into();
    let dir = std::env::temp_dir().join(format!("skiff-ecr-layers-{}", uuid::Uuid::new_v4()));
    let blobs = Arc::new(Blobs::new(dir.clone()));
    let b = blobs.clone();
    let d = dir.clone();
    with_blobs(Some(blobs), "h".into(), async move {
        let dir = d;
        let layer = b"shared".to_vec();
        let ld = digest(&layer);
        for c in [&ctx, &other] {
            ecr(c, "CreateRepository", json!({"repositoryName": "app"}))
                .await
                .unwrap();
            let id = upload(c, "app", &layer).await;
            ecr(
                c,
                "CompleteLayerUpload",
                json!({"repositoryName": "app", "uploadId": id,
                "layerDigests": [ld]}),
            )
            .await
            .unwrap();
        }
        ecr(&ctx, "DeleteRepository", json!({"repositoryName": "app"}))
            .await
            .unwrap();
        // The other account's link is young: kept with a grace, and its blob with it.
        let report = collect(&*ctx.store, &b, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(report.blobs_removed, 0);
        assert_eq!(blob_count(&dir), 1);
        let check = ecr(
            &other,
            "BatchCheckLayerAvailability",
            json!({"repositoryName": "app",
            "layerDigests": [ld]}),
        )
        .await
        .unwrap();
        assert_eq!(check["layers"][0]["layerAvailability"], "AVAILABLE");
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn without_registry_storage_layer_calls_are_server_errors() {
    let ctx = root_ctx();
    ecr(&ctx, "CreateRepository", json!({"repositoryName": "app"}))
        .await
        .unwrap();
    let err = ecr(
        &ctx,
        "InitiateLayerUpload",
        json!({"repositoryName": "app"}),
    )
    .await
    .unwrap_err();
    assert_eq!((err.code.as_str(), err.status), ("ServerException", 500));
    let err = ecr(
        &ctx,
        "InitiateLayerUpload",
        json!({"repositoryName": "nope"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "RepositoryNotFoundException");
}
