//! Routing a request to a service, and the per-request pipeline (auth → decode → handler → encode).
//!
//! The service is picked from what the request carries, never from a fixed port or host:
//! `X-Amz-Target` (json services), else the SigV4 credential scope's service (query, ec2 and REST
//! services: ELBv2 signs as `elasticloadbalancing`), else — for unsigned requests, which only STS
//! `AssumeRoleWithWebIdentity` may make — the query `Version`, or the path (Route 53's `/2013-04-01/`,
//! EKS otherwise).

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::get;
use skiff_aws_model::codec::{encode_error_for, form};
use skiff_aws_model::model::{SERVICES, ServiceInfo};
use skiff_aws_model::sigv4::{self, SigError};
use skiff_aws_model::{AwsError, Protocol, WireRequest, WireResponse};

use super::{GatewayState, auth, health};
use crate::context::RequestContext;

/// The region of requests that carry no credential scope.
const DEFAULT_REGION: &str = "us-east-1";

/// The gateway's routes: health, and every AWS request as the fallback (REST paths are the
/// services' own, so AWS cannot live under a prefix).
pub fn router(state: GatewayState) -> Router {
    let limit = state.config.body_limit;
    // The ECR registry (`/v2/`) streams uploads to disk, so it is merged after the body limit.
    let timing =
        axum::middleware::from_fn_with_state(state.metrics.clone(), super::metrics::time_registry);
    let registry =
        crate::ecr::registry::router_with_blobs(state.store.clone(), state.registry_blobs.clone())
            .layer(timing);
    Router::new()
        .route("/_skiff/health", get(health::health))
        .route("/metrics", get(super::metrics::metrics))
        .fallback(handle)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
        .merge(registry)
}

/// Which service a request is for, or the error (and the protocol to word it in) if none.
fn pick_service(
    headers: &HeaderMap,
    path: &str,
    query: &str,
    body: &[u8],
    signing_name: Option<&str>,
) -> Result<&'static ServiceInfo, (Protocol, AwsError)> {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let prefix = target.split('.').next().unwrap_or_default();
        return skiff_aws_model::service_by_target_prefix(prefix).ok_or_else(|| {
            (
                Protocol::Json,
                AwsError::new(
                    "UnknownOperationException",
                    format!("Unknown target {target}"),
                ),
            )
        });
    }
    if let Some(name) = signing_name {
        return skiff_aws_model::service_by_signing_name(name).ok_or_else(|| {
            (
                Protocol::Query,
                AwsError::new(
                    "UnknownService",
                    format!("Skiff does not serve the service '{name}'"),
                ),
            )
        });
    }
    let by_name = |n: &str| SERVICES.iter().find(|s| s.name == n);
    if path.starts_with("/2013-04-01/") {
        return by_name("route53").ok_or_else(|| missing(Protocol::RestXml));
    }
    let params = form::params(query, body);
    if params.contains_key("Action") {
        let version = params
            .get("Version")
            .map(String::as_str)
            .unwrap_or_default();
        return SERVICES
            .iter()
            .find(|s| {
                matches!(s.protocol, Protocol::Query | Protocol::Ec2) && s.api_version == version
            })
            .ok_or_else(|| missing(Protocol::Query));
    }
    if path.trim_matches('/').is_empty() {
        return Err(missing(Protocol::Query));
    }
    by_name("eks").ok_or_else(|| missing(Protocol::RestJson))
}

fn missing(protocol: Protocol) -> (Protocol, AwsError) {
    (protocol, SigError::Missing.to_aws_error(protocol))
}

fn into_response(w: WireResponse, request_id: &str) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(w.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    for (k, v) in &w.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder = builder
        .header("x-amzn-RequestId", request_id)
        .header("x-amz-request-id", request_id);
    builder.body(Body::from(w.body)).unwrap_or_else(|e| {
        // Only a handler-supplied header value that is not valid HTTP can get here.
        let mut r = Response::new(Body::from(format!("invalid response header: {e}")));
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

fn error_response(
    protocol: Protocol,
    info: Option<&ServiceInfo>,
    err: &AwsError,
    request_id: &str,
) -> Response {
    let model = info.and_then(|i| skiff_aws_model::service(i.name));
    into_response(
        encode_error_for(protocol, model, err, request_id),
        request_id,
    )
}

/// Every AWS call, timed and counted for `/metrics` under the service and operation it named.
async fn handle(
    State(state): State<GatewayState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = std::time::Instant::now();
    let metrics = state.metrics.clone();
    let mut labels = super::metrics::Labels::default();
    let resp = handle_call(state, method, uri, headers, body, &mut labels).await;
    metrics.record(&labels, resp.status().as_u16(), started.elapsed());
    resp
}

async fn handle_call(
    state: GatewayState,
    method: Method,
    uri: Uri,
    mut headers: HeaderMap,
    body: Bytes,
    labels: &mut super::metrics::Labels,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    // HTTP/2 carries the host in `:authority`; SigV4 signed it as `host`.
    if !headers.contains_key(header::HOST)
        && let Some(v) = uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        headers.insert(header::HOST, v);
    }
    let req = WireRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or_default(),
        headers: &headers,
        body: &body,
    };
    let parsed = sigv4::parse(&req);
    let signing_name = parsed.as_ref().ok().map(|a| a.service.as_str());
    let info = match pick_service(&headers, req.path, req.query, req.body, signing_name) {
        Ok(info) => info,
        Err((protocol, err)) => return error_response(protocol, None, &err, &request_id),
    };
    labels.service = info.name.to_string();
    let Some(model) = skiff_aws_model::service(info.name) else {
        let err = AwsError::new("InternalFailure", format!("no model for {}", info.name))
            .with_status(500);
        return error_response(info.protocol, Some(info), &err, &request_id);
    };
    let now = jiff::Timestamp::now();
    let (caller, region) = match &parsed {
        Ok(auth) => {
            match auth::authenticate(&*state.store, state.config.any_credentials, &req, auth, now)
                .await
            {
                Ok(caller) => (caller, auth.region.clone()),
                Err(e) => {
                    tracing::debug!(service = info.name, error = ?e, "authentication failed");
                    return error_response(
                        info.protocol,
                        Some(info),
                        &e.to_aws_error(info.protocol),
                        &request_id,
                    );
                }
            }
        }
        Err(SigError::Missing) => (auth::anonymous_caller(), DEFAULT_REGION.to_string()),
        Err(e) => {
            return error_response(
                info.protocol,
                Some(info),
                &e.to_aws_error(info.protocol),
                &request_id,
            );
        }
    };
    // Unsigned requests get no further than naming an operation that allows it (constraints are
    // checked after, so an unsigned AssumeRoleWithWebIdentity still hears about its bad input).
    if parsed.is_err()
        && !skiff_aws_model::codec::decode_unchecked(model, &req)
            .is_ok_and(|d| d.operation.unsigned)
    {
        let err = SigError::Missing.to_aws_error(info.protocol);
        return error_response(info.protocol, Some(info), &err, &request_id);
    }
    let decoded = match skiff_aws_model::decode(model, &req) {
        Ok(d) => d,
        Err(err) => {
            return into_response(
                skiff_aws_model::encode_error(model, &err, &request_id),
                &request_id,
            );
        }
    };
    let ctx = RequestContext {
        account_id: caller.account_id.clone(),
        region,
        request_id: request_id.clone(),
        caller,
        store: state.store.clone(),
    };
    let op = decoded.operation;
    labels.operation = op.name.to_string();
    tracing::debug!(service = info.name, operation = %op.name, request_id = %request_id, "AWS call");
    if state.config.enforce_iam
        && parsed.is_ok()
        && let Err(err) = super::enforce::authorize(
            &*ctx.store,
            &ctx.caller,
            info.signing_name,
            &op.name,
            &decoded.input,
            &ctx.region,
        )
        .await
    {
        return into_response(
            skiff_aws_model::encode_error(model, &err, &request_id),
            &request_id,
        );
    }
    // ECR URIs name the host this call came in on, when the registry is served here.
    let api_host = (state.config.reachable_registry_uris && info.name == "ecr")
        .then(|| headers.get(header::HOST)?.to_str().ok().map(str::to_string))
        .flatten();
    // ECR layer operations share the registry's blobs; download URLs name the request's host.
    let blobs = (info.name == "ecr")
        .then(|| state.registry_blobs.clone())
        .flatten();
    let request_host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:4566")
        .to_string();
    let dispatched = crate::ecr::layers::with_blobs(
        blobs,
        request_host,
        crate::ecr::common::with_api_host(
            api_host,
            crate::dispatch(&ctx, info.signing_name, &op.name, decoded.input),
        ),
    );
    let wire = match dispatched.await {
        Ok(output) => skiff_aws_model::encode_output(model, op, &output, &request_id),
        Err(err) => {
            tracing::debug!(service = info.name, operation = %op.name, code = %err.code, "AWS error");
            skiff_aws_model::encode_error(model, &err, &request_id)
        }
    };
    into_response(wire, &request_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_services_from_what_the_request_carries() {
        let mut h = HeaderMap::new();
        let pick = |h: &HeaderMap, path: &str, body: &[u8], signing: Option<&str>| {
            pick_service(h, path, "", body, signing)
                .map(|i| i.name)
                .map_err(|(_, e)| e.code)
        };
        assert_eq!(
            pick(&h, "/", b"", Some("elasticloadbalancing")),
            Ok("elbv2")
        );
        assert_eq!(pick(&h, "/", b"", Some("s3")), Err("UnknownService".into()));
        assert_eq!(
            pick(
                &h,
                "/",
                b"Action=AssumeRoleWithWebIdentity&Version=2011-06-15",
                None
            ),
            Ok("sts")
        );
        assert_eq!(pick(&h, "/2013-04-01/hostedzone", b"", None), Ok("route53"));
        assert_eq!(pick(&h, "/clusters", b"", None), Ok("eks"));
        assert_eq!(
            pick(&h, "/", b"", None),
            Err("MissingAuthenticationToken".into())
        );
        h.insert(
            "x-amz-target",
            HeaderValue::from_static("TrentService.ListKeys"),
        );
        assert_eq!(pick(&h, "/", b"", Some("kms")), Ok("kms"));
        h.insert("x-amz-target", HeaderValue::from_static("Nope.ListKeys"));
        assert_eq!(
            pick(&h, "/", b"", Some("kms")),
            Err("UnknownOperationException".into())
        );
    }
}
