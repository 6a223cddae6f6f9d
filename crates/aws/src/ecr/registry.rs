//! The ECR registry: the OCI distribution API (v2) a pusher or puller (docker, skopeo, containerd)
//! speaks, on the gateway under `/v2/`.
//!
//! Auth is ECR's: `docker login -u AWS -p $(aws ecr get-login-password)`, sent as HTTP Basic; the
//! password names its account and region ([`super::auth::resolve_password`]), so a request becomes a
//! [`RequestContext`] of that account and region like a signed API call. Manifests are the same image
//! records the ECR API shows ([`super::images::add_image`]); blobs are files on disk
//! ([`super::registry_blobs`]), linked to the repositories they were pushed to by store records.
//! Errors are the distribution spec's JSON (`{"errors":[{"code","message","detail"}]}`), built in
//! one place, [`RegistryError::into_response`].

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::any;
use base64::Engine;
use serde_json::{Value, json};
use skiff_store::Store;

use super::registry_blobs::Blobs;
use crate::context::{Caller, RequestContext};

/// Every registry response says which API it speaks (clients check it on `GET /v2/`).
const API_VERSION: (&str, &str) = ("docker-distribution-api-version", "registry/2.0");

/// The registry's typed errors; [`RegistryError::into_response`] is the one place they become the
/// distribution spec's JSON with its status codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No, unknown, forged or expired credentials: 401 with a Basic challenge, so clients log in.
    #[error("authentication required")]
    Unauthorized,
    #[error("repository name not known to registry")]
    NameUnknown(String),
    #[error("invalid repository name")]
    NameInvalid(String),
    #[error("blob unknown to registry")]
    BlobUnknown(String),
    #[error("blob upload unknown to registry")]
    BlobUploadUnknown(String),
    #[error("blob upload invalid: {0}")]
    BlobUploadInvalid(String),
    /// A chunk that does not start where the upload ends (416, with the upload's `Range`).
    #[error("requested range not satisfiable")]
    RangeInvalid { upload_size: u64 },
    #[error("provided digest did not match uploaded content")]
    DigestInvalid(String),
    #[error("manifest unknown")]
    ManifestUnknown(String),
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    #[error("manifest blob unknown to registry")]
    ManifestBlobUnknown(String),
    /// ECR's IMMUTABLE repositories refuse to move a tag with this code and ECR's own message.
    #[error("{0}")]
    TagInvalid(String),
    #[error("provided length did not match content length")]
    SizeInvalid(String),
    #[error("The operation is unsupported: {0}")]
    Unsupported(String),
    #[error("{0}")]
    Internal(String),
}

impl RegistryError {
    fn parts(&self) -> (StatusCode, &'static str, Value) {
        use RegistryError as E;
        let detail = |s: &String| json!(s);
        match self {
            E::Unauthorized => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED", Value::Null),
            E::NameUnknown(n) => (StatusCode::NOT_FOUND, "NAME_UNKNOWN", json!({"name": n})),
            E::NameInvalid(n) => (StatusCode::BAD_REQUEST, "NAME_INVALID", json!({"name": n})),
            E::BlobUnknown(d) => (StatusCode::NOT_FOUND, "BLOB_UNKNOWN", json!({"digest": d})),
            E::BlobUploadUnknown(u) => (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN", detail(u)),
            E::BlobUploadInvalid(_) => {
                (StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID", Value::Null)
            }
            E::RangeInvalid { .. } => (
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UPLOAD_INVALID",
                Value::Null,
            ),
            E::DigestInvalid(d) => (StatusCode::BAD_REQUEST, "DIGEST_INVALID", detail(d)),
            E::ManifestUnknown(r) => (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", detail(r)),
            E::ManifestInvalid(_) => (StatusCode::BAD_REQUEST, "MANIFEST_INVALID", Value::Null),
            E::ManifestBlobUnknown(d) => (
                StatusCode::BAD_REQUEST,
                "MANIFEST_BLOB_UNKNOWN",
                json!({"digest": d}),
            ),
            E::TagInvalid(_) => (StatusCode::BAD_REQUEST, "TAG_INVALID", Value::Null),
            E::SizeInvalid(d) => (StatusCode::BAD_REQUEST, "SIZE_INVALID", detail(d)),
            E::Unsupported(_) => (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", Value::Null),
            E::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", Value::Null),
        }
    }

    pub fn into_response(self) -> Response {
        let (status, code, detail) = self.parts();
        let mut entry = json!({"code": code, "message": self.to_string()});
        if !detail.is_null() {
            entry["detail"] = detail;
        }
        let body = json!({ "errors": [entry] }).to_string();
        let mut b = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
            .header(API_VERSION.0, API_VERSION.1);
        match self {
            Self::Unauthorized => {
                b = b.header(
                    header::WWW_AUTHENTICATE,
                    r#"Basic realm="https://ecr.amazonaws.com/",service="ecr.amazonaws.com""#,
                );
            }
            Self::RangeInvalid { upload_size } => {
                b = b.header(header::RANGE, upload_range(upload_size));
            }
            _ => {}
        }
        b.body(Body::from(body)).unwrap_or_default()
    }
}

impl From<skiff_aws_model::AwsError> for RegistryError {
    fn from(e: skiff_aws_model::AwsError) -> Self {
        Self::Internal(e.message)
    }
}

pub type RegistryResult<T> = Result<T, RegistryError>;

/// `Range` of an upload holding `size` bytes (`0-0` when empty, as distribution answers).
pub fn upload_range(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

/// What one registry instance shares: the store, and the blob files with the uploads in flight.
pub struct Registry {
    pub(super) store: Arc<dyn Store>,
    pub(super) blobs: Option<Arc<Blobs>>,
}

/// The `/v2/` routes, with their own state; the gateway merges them before its AWS fallback.
/// `dir: None` leaves the registry answering `UNSUPPORTED` (no place for blobs). Housekeeping
/// ([`super::registry_gc`]) runs with its default ages.
pub fn router(store: Arc<dyn Store>, dir: Option<std::path::PathBuf>) -> Router {
    let blobs = dir.map(|d| Arc::new(Blobs::new(d)));
    if let Some(b) = &blobs {
        super::registry_gc::spawn(store.clone(), Arc::downgrade(b), Default::default());
    }
    router_with_blobs(store, blobs)
}

/// The `/v2/` routes over blobs the caller shares with the ECR API ([`super::layers::with_blobs`]),
/// plus the layer download URLs `GetDownloadUrlForLayer` hands out.
pub fn router_with_blobs(store: Arc<dyn Store>, blobs: Option<Arc<Blobs>>) -> Router {
    let downloads = match &blobs {
        Some(b) => Router::new()
            .route(
                "/_skiff/ecr/layer/{account}/{region}/{digest}",
                axum::routing::get(super::layers::download),
            )
            .with_state((store.clone(), b.clone())),
        None => Router::new(),
    };
    let registry = Arc::new(Registry { store, blobs });
    Router::new()
        .route("/v2", any(handle))
        .route("/v2/", any(handle))
        .route("/v2/{*rest}", any(handle))
        .with_state(registry)
        .merge(downloads)
}

/// What a `/v2/...` path names. Repository names may contain `/`, references and digests never do,
/// so the last marker segment splits name from the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Base,
    Tags { name: String },
    Manifest { name: String, reference: String },
    Blob { name: String, digest: String },
    Uploads { name: String },
    Upload { name: String, id: String },
}

pub fn parse_path(path: &str) -> Option<Target> {
    let rest = path.strip_prefix("/v2")?;
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Some(Target::Base);
    }
    let split = |marker: &str| -> Option<(String, String)> {
        let i = rest.rfind(marker)?;
        let tail = &rest[i + marker.len()..];
        (!tail.contains('/') && i > 0).then(|| (rest[..i].to_string(), percent_decode(tail)))
    };
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Target::Tags {
            name: name.to_string(),
        });
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Some(Target::Uploads {
            name: name.to_string(),
        });
    }
    if let Some((name, id)) = split("/blobs/uploads/") {
        return Some(Target::Upload { name, id });
    }
    if let Some((name, reference)) = split("/manifests/") {
        return Some(Target::Manifest { name, reference });
    }
    if let Some((name, digest)) = split("/blobs/") {
        return Some(Target::Blob { name, digest });
    }
    None
}

/// The registry operation a request is, in the distribution spec's words, for `/metrics` labels.
pub fn operation_name(method: &Method, path: &str) -> &'static str {
    match (parse_path(path), method.as_str()) {
        (Some(Target::Base), _) => "Base",
        (Some(Target::Tags { .. }), _) => "ListTags",
        (Some(Target::Manifest { .. }), "PUT") => "PutManifest",
        (Some(Target::Manifest { .. }), "DELETE") => "DeleteManifest",
        (Some(Target::Manifest { .. }), "HEAD") => "HeadManifest",
        (Some(Target::Manifest { .. }), _) => "GetManifest",
        (Some(Target::Blob { .. }), "HEAD") => "HeadBlob",
        (Some(Target::Blob { .. }), _) => "GetBlob",
        (Some(Target::Uploads { .. }), _) => "StartUpload",
        (Some(Target::Upload { .. }), "PATCH") => "PatchUpload",
        (Some(Target::Upload { .. }), "PUT") => "FinishUpload",
        (Some(Target::Upload { .. }), "DELETE") => "CancelUpload",
        (Some(Target::Upload { .. }), _) => "UploadStatus",
        (None, _) => "-",
    }
}

/// `%XX` escapes (clients may send the `:` of a digest as `%3A`); anything malformed stays as is.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// One query parameter, decoded.
pub fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(&v.replace('+', " ")))
    })
}

/// The request's caller from `Authorization: Basic base64(AWS:<password>)`.
async fn authenticate(
    store: &Arc<dyn Store>,
    headers: &HeaderMap,
) -> RegistryResult<RequestContext> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
        })
        .ok_or(RegistryError::Unauthorized)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(basic)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(RegistryError::Unauthorized)?;
    let Some(("AWS", password)) = decoded.split_once(':') else {
        return Err(RegistryError::Unauthorized);
    };
    let id = super::auth::resolve_password(&**store, password, jiff::Timestamp::now())
        .await?
        .ok_or(RegistryError::Unauthorized)?;
    Ok(RequestContext {
        account_id: id.account_id.clone(),
        region: id.region,
        request_id: uuid::Uuid::new_v4().to_string(),
        caller: Caller {
            arn: id.principal,
            user_id: String::new(),
            account_id: id.account_id,
            access_key_id: String::new(),
        },
        store: store.clone(),
    })
}

async fn handle(
    State(reg): State<Arc<Registry>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = route(&reg, &method, &uri, &headers, body).await;
    let mut resp = result.unwrap_or_else(RegistryError::into_response);
    resp.headers_mut()
        .insert(API_VERSION.0, HeaderValue::from_static(API_VERSION.1));
    resp
}

async fn route(
    reg: &Registry,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> RegistryResult<Response> {
    let ctx = authenticate(&reg.store, headers).await?;
    let target =
        parse_path(uri.path()).ok_or_else(|| RegistryError::NameInvalid(uri.path().to_string()))?;
    if target == Target::Base {
        return Ok(json_response(StatusCode::OK, &json!({})));
    }
    let blobs = reg
        .blobs
        .as_ref()
        .ok_or_else(|| RegistryError::Unsupported("registry storage is not configured".into()))?;
    use super::registry_blobs as b;
    use super::registry_manifests as m;
    match (target, method.as_str()) {
        (Target::Tags { name }, "GET") => m::list_tags(&ctx, &name, uri).await,
        (Target::Manifest { name, reference }, "GET" | "HEAD") => {
            m::get_manifest(&ctx, &name, &reference, method == Method::HEAD).await
        }
        (Target::Manifest { name, reference }, "PUT") => {
            m::put_manifest(&ctx, &name, &reference, headers, body).await
        }
        (Target::Manifest { name, reference }, "DELETE") => {
            let r = m::delete_manifest(&ctx, &name, &reference).await;
            // The image's layers may be garbage now.
            blobs.request_gc();
            r
        }
        (Target::Blob { name, digest }, "GET" | "HEAD") => {
            b::get_blob(&ctx, blobs, &name, &digest, headers, method == Method::HEAD).await
        }
        (Target::Uploads { name }, "POST") => b::start_upload(&ctx, blobs, &name, uri, body).await,
        (Target::Upload { name, id }, "PATCH") => {
            b::patch_upload(&ctx, blobs, &name, &id, headers, body).await
        }
        (Target::Upload { name, id }, "PUT") => {
            b::finish_upload(&ctx, blobs, &name, &id, uri, body).await
        }
        (Target::Upload { name, id }, "GET") => b::upload_status(&ctx, blobs, &name, &id).await,
        (Target::Upload { name, id }, "DELETE") => b::cancel_upload(&ctx, blobs, &name, &id).await,
        (_, m) => Err(RegistryError::Unsupported(format!(
            "{m} {} is not part of the registry API",
            uri.path()
        ))),
    }
}

pub fn json_response(status: StatusCode, v: &Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(Body::from(v.to_string()))
        .unwrap_or_default()
}

/// The repository a registry request names (`NAME_UNKNOWN` if the ECR API never created it).
pub async fn repository(
    ctx: &RequestContext,
    name: &str,
) -> RegistryResult<(super::common::Repository, skiff_store::Revision)> {
    crate::resources::get(&*ctx.store, &super::common::repo_key(ctx, name))
        .await?
        .ok_or_else(|| RegistryError::NameUnknown(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_name_from_the_last_marker() {
        let t = |p: &str| parse_path(p);
        assert_eq!(t("/v2/"), Some(Target::Base));
        assert_eq!(t("/v2"), Some(Target::Base));
        assert_eq!(
            t("/v2/team/app/manifests/v1"),
            Some(Target::Manifest {
                name: "team/app".into(),
                reference: "v1".into()
            })
        );
        assert_eq!(
            t("/v2/a/manifests/b/manifests/sha256%3Aab"),
            Some(Target::Manifest {
                name: "a/manifests/b".into(),
                reference: "sha256:ab".into()
            })
        );
        assert_eq!(
            t("/v2/app/blobs/uploads/"),
            Some(Target::Uploads { name: "app".into() })
        );
        assert_eq!(
            t("/v2/x/app/blobs/uploads/123-abc"),
            Some(Target::Upload {
                name: "x/app".into(),
                id: "123-abc".into()
            })
        );
        assert_eq!(
            t("/v2/app/blobs/sha256:00"),
            Some(Target::Blob {
                name: "app".into(),
                digest: "sha256:00".into()
            })
        );
        assert_eq!(
            t("/v2/app/tags/list"),
            Some(Target::Tags { name: "app".into() })
        );
        assert_eq!(t("/v2/app/other"), None);
        assert_eq!(t("/v2/manifests/v1"), None);
    }

    #[test]
    fn errors_render_as_the_distribution_spec_json() {
        let r = RegistryError::BlobUnknown("sha256:00".into()).into_response();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = RegistryError::Unauthorized.into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(
            r.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Basic realm=")
        );
        let r = RegistryError::RangeInvalid { upload_size: 10 }.into_response();
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(r.headers()[header::RANGE], "0-9");
    }

    #[test]
    fn percent_escapes_decode() {
        assert_eq!(percent_decode("sha256%3Aab"), "sha256:ab");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
