//! The HTTP layer: authentication, authorization, routing and the wire form of every answer.
//! Handlers return `Result<Reply, ApiError>`; [`error_response`] is the one place an `ApiError`
//! becomes a `Status` body.

pub mod discovery;
pub mod health;
mod list_stream;
pub mod openapi;
pub mod request_info;
mod resource;
pub mod table;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use serde_json::Value;
use skiff_k8s_core::status::{ApiError, Denial, go_quote};

use crate::authn::{Authenticator, AuthnRequest, UserInfo};
use crate::authz::{Attributes, Authorizer, Decision};
use crate::registry::Registry;
use crate::registry::hooks::{CreateOnlyResource, SubresourceHandler};
use request_info::RequestInfo;

/// Response body: whole JSON documents or a watch/list stream. A streamed body that fails after
/// its status line went out yields an error, and hyper aborts the response (HTTP/1.1: the
/// connection closes before the last chunk; HTTP/2: the stream is reset), as kube-apiserver does.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// The error of a response body that could not be finished.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Request bodies above this are refused with 413 (design.md §8).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Everything a request handler needs; one per cluster API server.
pub struct Api {
    pub registry: Arc<Registry>,
    pub authenticators: Vec<Arc<dyn Authenticator>>,
    /// Empty = allow everything (tests without RBAC).
    pub authorizers: Vec<Arc<dyn Authorizer>>,
    pub create_only: Vec<Arc<dyn CreateOnlyResource>>,
    pub subresources: Vec<Arc<dyn SubresourceHandler>>,
    /// `host:port` in `/api`'s `serverAddressByClientCIDRs`.
    pub server_address: String,
    /// The `/version` document.
    pub version: Value,
    /// Where each request's audit event goes (none: no events are built).
    pub audit: Option<Arc<dyn crate::audit::AuditSink>>,
}

/// A successful answer before it is put on the wire.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: Body,
    pub content_type: &'static str,
    pub warnings: Vec<String>,
}

impl Reply {
    pub fn json(status: StatusCode, v: &Value) -> Self {
        let bytes = serde_json::to_vec(v).unwrap_or_default();
        Self {
            status,
            body: full(bytes),
            content_type: "application/json",
            warnings: Vec::new(),
        }
    }

    pub fn text(status: StatusCode, s: String) -> Self {
        Self {
            status,
            body: full(s.into_bytes()),
            content_type: "text/plain; charset=utf-8",
            warnings: Vec::new(),
        }
    }
}

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The one conversion of an error into its wire form: a `metav1.Status` with the upstream code.
pub fn error_response(e: &ApiError) -> Response<Body> {
    let status = match e {
        // A path nobody serves: upstream's generic 404 (`NewGenericServerResponse`).
        ApiError::NotFound {
            group,
            resource,
            name,
        } if group.is_empty() && resource.is_empty() && name.is_empty() => {
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "the server could not find the requested resource", "reason": "NotFound",
                "details": {}, "code": 404})
        }
        other => other.to_status(),
    };
    let mut r = Response::new(full(serde_json::to_vec(&status).unwrap_or_default()));
    *r.status_mut() = StatusCode::from_u16(e.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let ApiError::TooManyRequests {
        retry_after_seconds,
        ..
    }
    | ApiError::Timeout {
        retry_after_seconds,
        ..
    } = e
        && *retry_after_seconds > 0
        && let Ok(v) = HeaderValue::from_str(&retry_after_seconds.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// The 404 kube-apiserver gives for a path it does not serve.
pub(crate) fn not_found_path() -> ApiError {
    ApiError::not_found("", "", "")
}

/// Parsed query string (last value wins, as Go's `Get`).
pub(crate) struct Query(HashMap<String, String>);

impl Query {
    fn parse(q: Option<&str>) -> Self {
        Self(
            form_urlencoded::parse(q.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }
    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }
}

/// The request as handlers see it.
pub(crate) struct Ctx<'a> {
    pub info: &'a RequestInfo,
    pub query: &'a Query,
    pub headers: &'a http::HeaderMap,
    pub user: &'a UserInfo,
    pub body: Bytes,
}

impl Api {
    /// Serves one request. `peer` is the verified client certificate chain (TLS only).
    pub async fn serve<B>(
        self: Arc<Self>,
        req: Request<B>,
        peer: Option<&[rustls_pki_types::CertificateDer<'static>]>,
    ) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send,
        B::Error: std::fmt::Display
            + Send
            + Sync
            + 'static
            + Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let received = jiff::Timestamp::now();
        let (parts, body) = req.into_parts();
        let query = Query::parse(parts.uri.query());
        let path = parts.uri.path().to_string();
        let info = request_info::parse(parts.method.as_str(), &path, query.flag("watch"));

        let user = match self.authenticate(&parts.headers, peer).await {
            Ok(u) => u,
            Err(e) => {
                let r = error_response(&e);
                self.audit(&info, &parts, None, r.status(), received);
                return r;
            }
        };
        let response = self.respond(&info, &query, &parts, &user, body).await;
        self.audit(&info, &parts, Some(&user), response.status(), received);
        response
    }

    /// Hands the request's audit event to the sink, if the cluster has one.
    fn audit(
        &self,
        info: &RequestInfo,
        parts: &http::request::Parts,
        user: Option<&UserInfo>,
        status: StatusCode,
        received: jiff::Timestamp,
    ) {
        let Some(sink) = self.audit.as_ref().filter(|s| s.enabled()) else {
            return;
        };
        let uri = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_string(), ToString::to_string);
        sink.record(crate::audit::event(&crate::audit::Request {
            info,
            uri: &uri,
            user,
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok()),
            code: status.as_u16(),
            received,
        }));
    }

    /// Everything after authentication: authorization, the body, the handler.
    async fn respond<B>(
        &self,
        info: &RequestInfo,
        query: &Query,
        parts: &http::request::Parts,
        user: &UserInfo,
        body: B,
    ) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send,
        B::Error: std::fmt::Display
            + Send
            + Sync
            + 'static
            + Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if let Err(e) = self.authorize(info, user).await {
            return error_response(&e);
        }
        if let Some(len) = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            && len > MAX_BODY_BYTES
        {
            return error_response(&too_large());
        }
        let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    return error_response(&too_large());
                }
                return error_response(&ApiError::BadRequest(format!(
                    "error reading request body: {e}"
                )));
            }
        };
        let ctx = Ctx {
            info,
            query,
            headers: &parts.headers,
            user,
            body,
        };
        let result = if info.is_resource {
            self.resource(&ctx).await
        } else {
            self.non_resource(&ctx, parts.method.as_str()).await
        };
        match result {
            Ok(reply) => {
                let mut r = Response::new(reply.body);
                *r.status_mut() = reply.status;
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(reply.content_type),
                );
                for w in reply.warnings {
                    if let Ok(v) = HeaderValue::from_str(&format!("299 - {}", go_quote(&w))) {
                        r.headers_mut().append(header::WARNING, v);
                    }
                }
                r
            }
            Err(e) => error_response(&e),
        }
    }

    /// Union authentication: first authenticator with an answer wins; none → anonymous.
    async fn authenticate(
        &self,
        headers: &http::HeaderMap,
        peer: Option<&[rustls_pki_types::CertificateDer<'static>]>,
    ) -> Result<UserInfo, ApiError> {
        let req = AuthnRequest {
            headers,
            peer_certificates: peer,
        };
        for a in &self.authenticators {
            match a.authenticate(&req).await {
                Ok(Some(mut u)) => {
                    if !u.groups.iter().any(|g| g == "system:authenticated")
                        && u.name != "system:anonymous"
                    {
                        u.groups.push("system:authenticated".into());
                    }
                    return Ok(u);
                }
                Ok(None) => {}
                Err(_) => return Err(ApiError::Unauthorized),
            }
        }
        Ok(UserInfo {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
            ..Default::default()
        })
    }

    /// First Allow wins; a Deny or no Allow at all is 403 with RBAC's wording.
    async fn authorize(&self, info: &RequestInfo, user: &UserInfo) -> Result<(), ApiError> {
        if self.authorizers.is_empty() {
            return Ok(());
        }
        let attrs = Attributes {
            user: user.clone(),
            verb: info.verb.clone(),
            resource_request: info.is_resource,
            api_group: info.group.clone(),
            api_version: info.version.clone(),
            resource: info.resource.clone(),
            subresource: info.subresource.clone(),
            namespace: info.namespace.clone(),
            name: info.name.clone(),
            path: info.path.clone(),
        };
        let mut reason = String::new();
        for a in &self.authorizers {
            match a.authorize(&attrs).await {
                Decision::Allow => return Ok(()),
                Decision::Deny(r) => {
                    reason = r;
                    break;
                }
                Decision::NoOpinion(r) => {
                    if reason.is_empty() {
                        reason = r;
                    }
                }
            }
        }
        let resource = if info.subresource.is_empty() {
            info.resource.clone()
        } else {
            format!("{}/{}", info.resource, info.subresource)
        };
        let denial = Denial {
            user: user.name.clone(),
            verb: info.verb.clone(),
            resource,
            group: info.group.clone(),
            // `/namespaces/x` is cluster-scoped even though the path names a namespace.
            namespace: {
                let namespace_object = info.resource == "namespaces" && info.group.is_empty();
                (!info.namespace.is_empty() && !namespace_object).then(|| info.namespace.clone())
            },
            path: (!info.is_resource).then(|| info.path.clone()),
        };
        let mut err = ApiError::forbidden_by_rbac(&denial, &info.name);
        if !reason.is_empty()
            && let ApiError::Forbidden { detail, .. } = &mut err
        {
            detail.push_str(": ");
            detail.push_str(&reason);
        }
        Err(err)
    }

    /// Discovery, version, health and OpenAPI.
    async fn non_resource(&self, ctx: &Ctx<'_>, method: &str) -> Result<Reply, ApiError> {
        if method != "GET" && method != "HEAD" {
            return Err(not_found_path());
        }
        let path = ctx.info.path.trim_end_matches('/');
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let ok = |v: Value| Ok(Reply::json(StatusCode::OK, &v));
        match parts.as_slice() {
            ["version"] => ok(self.version.clone()),
            ["api"] => Ok(self.discovery_root(ctx.headers, true)),
            ["api", v] => self
                .api_resource_list("", v)
                .map_or_else(|| Err(not_found_path()), ok),
            ["apis"] => Ok(self.discovery_root(ctx.headers, false)),
            ["apis", g] => self.api_group(g).map_or_else(|| Err(not_found_path()), ok),
            ["apis", g, v] => self
                .api_resource_list(g, v)
                .map_or_else(|| Err(not_found_path()), ok),
            [check @ ("healthz" | "livez" | "readyz"), rest @ ..] => {
                self.health(
                    check,
                    rest.first().copied(),
                    ctx.query.get("verbose").is_some(),
                )
                .await
            }
            ["openapi", ..] => openapi::serve(&parts[1..], ctx.headers, &self.registry),
            [] => ok(serde_json::json!({"paths": self.root_paths()})),
            _ => Err(not_found_path()),
        }
    }

    /// `GET /`: the paths served, as kube-apiserver's index lists them.
    fn root_paths(&self) -> Vec<String> {
        let mut p = vec!["/api".to_string(), "/api/v1".into(), "/apis".into()];
        for (g, v) in self.group_versions() {
            if !g.is_empty() {
                p.push(format!("/apis/{g}"));
                p.push(format!("/apis/{g}/{v}"));
            }
        }
        p.extend(
            [
                "/healthz",
                "/livez",
                "/openapi/v2",
                "/openapi/v3",
                "/readyz",
                "/version",
            ]
            .map(String::from),
        );
        p.dedup();
        p
    }
}

fn too_large() -> ApiError {
    ApiError::RequestEntityTooLarge(format!("limit is {MAX_BODY_BYTES}"))
}
