//! What every ECR operation group shares: the typed error (turned into the wire error in one place,
//! `From<EcrError> for AwsError`), the repository record (its images, policies and tags inside, so
//! a tag move is one atomic write), paging and times.
//!
//! Repositories live under `/aws/<account>/<region>/ecr/repository/<name>`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::{Precondition, Revision};

use crate::context::RequestContext;
use crate::resources;

/// ECR's modelled errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EcrError {
    #[error("{0}")]
    RepositoryNotFound(String),
    #[error("{0}")]
    RepositoryAlreadyExists(String),
    #[error("{0}")]
    RepositoryNotEmpty(String),
    #[error("{0}")]
    RepositoryPolicyNotFound(String),
    #[error("{0}")]
    LifecyclePolicyNotFound(String),
    #[error("{0}")]
    ImageNotFound(String),
    #[error("{0}")]
    ImageAlreadyExists(String),
    #[error("{0}")]
    ImageTagAlreadyExists(String),
    #[error("{0}")]
    ImageDigestDoesNotMatch(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    InvalidTagParameter(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    UploadNotFound(String),
    #[error("{0}")]
    InvalidLayerPart(String),
    #[error("{0}")]
    InvalidLayer(String),
    #[error("{0}")]
    LayerAlreadyExists(String),
    #[error("{0}")]
    LayersNotFound(String),
    #[error("{0}")]
    EmptyUpload(String),
    /// A concurrent writer changed the repository record first (callers may retry).
    #[error("The repository was modified concurrently; retry")]
    Conflict,
    #[error("{0}")]
    Internal(AwsError),
}

impl From<EcrError> for AwsError {
    fn from(e: EcrError) -> Self {
        let (code, msg) = match e {
            EcrError::RepositoryNotFound(m) => ("RepositoryNotFoundException", m),
            EcrError::RepositoryAlreadyExists(m) => ("RepositoryAlreadyExistsException", m),
            EcrError::RepositoryNotEmpty(m) => ("RepositoryNotEmptyException", m),
            EcrError::RepositoryPolicyNotFound(m) => ("RepositoryPolicyNotFoundException", m),
            EcrError::LifecyclePolicyNotFound(m) => ("LifecyclePolicyNotFoundException", m),
            EcrError::ImageNotFound(m) => ("ImageNotFoundException", m),
            EcrError::ImageAlreadyExists(m) => ("ImageAlreadyExistsException", m),
            EcrError::ImageTagAlreadyExists(m) => ("ImageTagAlreadyExistsException", m),
            EcrError::ImageDigestDoesNotMatch(m) => ("ImageDigestDoesNotMatchException", m),
            EcrError::InvalidParameter(m) => ("InvalidParameterException", m),
            EcrError::InvalidTagParameter(m) => ("InvalidTagParameterException", m),
            EcrError::Validation(m) => ("ValidationException", m),
            EcrError::UploadNotFound(m) => ("UploadNotFoundException", m),
            EcrError::InvalidLayerPart(m) => ("InvalidLayerPartException", m),
            EcrError::InvalidLayer(m) => ("InvalidLayerException", m),
            EcrError::LayerAlreadyExists(m) => ("LayerAlreadyExistsException", m),
            EcrError::LayersNotFound(m) => ("LayersNotFoundException", m),
            EcrError::EmptyUpload(m) => ("EmptyUploadException", m),
            EcrError::Conflict => {
                return AwsError::new(
                    "ServerException",
                    "The repository was modified concurrently; retry",
                )
                .with_status(500);
            }
            EcrError::Internal(e) => return e,
        };
        AwsError::modeled("ecr", code, msg)
    }
}

impl From<AwsError> for EcrError {
    fn from(e: AwsError) -> Self {
        EcrError::Internal(e)
    }
}

pub type EcrResult<T> = Result<T, EcrError>;

/// One image (manifest) in a repository.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image {
    pub digest: String,
    pub manifest: String,
    pub media_type: String,
    pub tags: Vec<String>,
    pub pushed_at: String,
    pub size: i64,
}

/// One repository as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Repository {
    pub name: String,
    pub arn: String,
    pub registry_id: String,
    pub uri: String,
    pub created: String,
    pub tag_mutability: String,
    pub scan_on_push: bool,
    pub encryption: Value,
    pub tags: Vec<(String, String)>,
    pub lifecycle_policy: Option<String>,
    pub repository_policy: Option<String>,
    /// By digest.
    pub images: BTreeMap<String, Image>,
}

impl Repository {
    /// The API form; `repositoryUri` is computed per request ([`registry_host`]), the stored `uri`
    /// is AWS's form and kept for records written before URIs became reachable.
    pub fn describe(&self, ctx: &RequestContext) -> Value {
        json!({
            "repositoryArn": self.arn,
            "registryId": self.registry_id,
            "repositoryName": self.name,
            "repositoryUri": format!("{}/{}", registry_host(ctx), self.name),
            "createdAt": self.created,
            "imageTagMutability": self.tag_mutability,
            "imageScanningConfiguration": {"scanOnPush": self.scan_on_push},
            "encryptionConfiguration": self.encryption,
        })
    }

    pub fn digest_of_tag(&self, tag: &str) -> Option<&str> {
        self.images
            .values()
            .find(|i| i.tags.iter().any(|t| t == tag))
            .map(|i| i.digest.as_str())
    }
}

pub fn repo_key(ctx: &RequestContext, name: &str) -> String {
    resources::key(ctx, "ecr", "repository", name)
}

tokio::task_local! {
    /// The `Host` an API request came in on, when the gateway names reachable registry URIs
    /// (`GatewayConfig::reachable_registry_uris`). A task-local because the URI is a property of
    /// how the client reached us, not of the stored repository, and handlers get no headers.
    static API_HOST: String;
}

/// Run `f` with ECR URIs naming `host` (the gateway's router does this per request).
pub async fn with_api_host<F: std::future::Future>(host: Option<String>, f: F) -> F::Output {
    match host {
        Some(h) => API_HOST.scope(h, f).await,
        None => f.await,
    }
}

/// Where clients push: the API request's host (`127.0.0.1:4566`) when the gateway names reachable
/// URIs, else AWS's `<account>.dkr.ecr.<region>.amazonaws.com`.
pub fn registry_host(ctx: &RequestContext) -> String {
    API_HOST
        .try_with(Clone::clone)
        .unwrap_or_else(|_| format!("{}.dkr.ecr.{}.amazonaws.com", ctx.account_id, ctx.region))
}

/// `proxyEndpoint`: plain HTTP when the registry is the gateway itself (it serves no TLS).
pub fn proxy_endpoint(ctx: &RequestContext) -> String {
    match API_HOST.try_with(Clone::clone) {
        Ok(h) => format!("http://{h}"),
        Err(_) => format!("https://{}", registry_host(ctx)),
    }
}

pub fn now() -> String {
    let ms = jiff::Timestamp::now().as_millisecond();
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

pub fn req_str<'a>(input: &'a Value, member: &str) -> EcrResult<&'a str> {
    input.get(member).and_then(Value::as_str).ok_or_else(|| {
        EcrError::InvalidParameter(format!("Invalid parameter: '{member}' must be given"))
    })
}

pub fn opt_str<'a>(input: &'a Value, member: &str) -> Option<&'a str> {
    input.get(member).and_then(Value::as_str)
}

pub fn opt_bool(input: &Value, member: &str) -> bool {
    match input.get(member) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// `registryId`, when given, must be the caller's account.
pub fn check_registry(ctx: &RequestContext, input: &Value) -> EcrResult<()> {
    match opt_str(input, "registryId") {
        Some(r) if r != ctx.account_id => Err(EcrError::RepositoryNotFound(format!(
            "The repository with name '{}' does not exist in the registry with id '{r}'",
            opt_str(input, "repositoryName").unwrap_or_default()
        ))),
        _ => Ok(()),
    }
}

pub fn not_found(ctx: &RequestContext, name: &str) -> EcrError {
    EcrError::RepositoryNotFound(format!(
        "The repository with name '{name}' does not exist in the registry with id '{}'",
        ctx.account_id
    ))
}

pub async fn load(ctx: &RequestContext, input: &Value) -> EcrResult<(Repository, Revision)> {
    check_registry(ctx, input)?;
    let name = req_str(input, "repositoryName")?;
    resources::get(&*ctx.store, &repo_key(ctx, name))
        .await?
        .ok_or_else(|| not_found(ctx, name))
}

pub async fn save(ctx: &RequestContext, repo: &Repository, rev: Revision) -> EcrResult<()> {
    let op = resources::put_op(
        &repo_key(ctx, &repo.name),
        repo,
        Precondition::ModRevision(rev),
    );
    resources::commit(&*ctx.store, vec![op])
        .await
        .map(|_| ())
        .map_err(|e| e.map_or(EcrError::Conflict, EcrError::Internal))
}

/// One page after `nextToken` (an index we handed out); `maxResults` within `1..=max`.
pub fn page<T: Clone>(items: &[T], input: &Value, max: i64) -> EcrResult<(Vec<T>, Option<String>)> {
    let limit = match input.get("maxResults") {
        Some(v) => v.as_i64().unwrap_or(0),
        None => max,
    };
    if !(1..=max).contains(&limit) {
        return Err(EcrError::InvalidParameter(format!(
            "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value less than or equal to {max}'"
        )));
    }
    let start = match opt_str(input, "nextToken") {
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|&i| i <= items.len())
            .ok_or_else(|| EcrError::InvalidParameter("Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid token'".into()))?,
        None => 0,
    };
    let end = (start + limit as usize).min(items.len());
    Ok((
        items[start..end].to_vec(),
        (end < items.len()).then(|| end.to_string()),
    ))
}

pub fn with_token(mut out: Value, next: Option<String>) -> Value {
    if let Some(t) = next {
        out["nextToken"] = json!(t);
    }
    out
}

/// A policy text must be a JSON object.
pub fn json_object(text: &str, member: &str) -> EcrResult<Value> {
    serde_json::from_str::<Value>(text)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            EcrError::InvalidParameter(format!(
                "Invalid parameter at '{member}' failed to satisfy constraint: 'Invalid JSON syntax'"
            ))
        })
}

pub fn tags_of(input: &Value) -> Vec<(String, String)> {
    input["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some((
                t["Key"].as_str()?.to_string(),
                t["Value"].as_str().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}
