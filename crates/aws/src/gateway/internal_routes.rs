//! Skiff's own JSON endpoints on the gateway that answer from the running clusters:
//! `GET /_skiff/netcheck?cluster=C&from=ns/pod&to=ns/pod&port=80&protocol=TCP[&region=R]`
//! (`skiff netcheck`). The gateway must not depend on the clusters (`eks` → `aws`, never back), so
//! the answer comes from an injected [`Netcheck`], as health checks are injected ([`crate::gateway::health`]);
//! the binary merges [`routes`] into the gateway's router.
//!
//! Errors are JSON `{"error": {"code", "message"}}` with the status the implementation chose
//! (404 for an unknown cluster, pod or Service, 400 for a malformed query).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// The path of the network policy check.
pub const NETCHECK_PATH: &str = "/_skiff/netcheck";

/// A parsed netcheck query (peers still in their textual form: the implementation owns their syntax).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetcheckRequest {
    /// The EKS cluster name.
    pub cluster: String,
    /// The cluster's region; the implementation picks the default when absent.
    pub region: Option<String>,
    pub from: String,
    pub to: String,
    pub port: u16,
    /// `TCP` unless given.
    pub protocol: String,
}

/// Why a request failed: the HTTP status and a message for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InternalRouteError {
    pub status: u16,
    pub message: String,
}

impl InternalRouteError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for InternalRouteError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let code = match status.as_u16() {
            400 => "BadRequest",
            404 => "NotFound",
            _ => "InternalError",
        };
        (
            status,
            Json(json!({"error": {"code": code, "message": self.message}})),
        )
            .into_response()
    }
}

/// Answers network reachability questions about a cluster (implemented by `skiff-eks`).
#[async_trait::async_trait]
pub trait Netcheck: Send + Sync + 'static {
    /// The verdict as JSON (its shape is the implementation's contract with `skiff netcheck`).
    async fn netcheck(&self, req: NetcheckRequest) -> Result<Value, InternalRouteError>;
}

/// The routes to merge into the gateway's router.
pub fn routes(netcheck: Arc<dyn Netcheck>) -> Router {
    Router::new()
        .route(NETCHECK_PATH, get(netcheck_handler))
        .with_state(netcheck)
}

/// Turn the query string into a request; every problem is a 400 naming the parameter.
pub fn parse_request(q: &HashMap<String, String>) -> Result<NetcheckRequest, InternalRouteError> {
    let required = |name: &str| {
        q.get(name)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| {
                InternalRouteError::new(400, format!("missing required parameter {name:?}"))
            })
    };
    let port_text = required("port")?;
    let port = port_text
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            InternalRouteError::new(
                400,
                format!("invalid port {port_text:?}: expected a number from 1 to 65535"),
            )
        })?;
    Ok(NetcheckRequest {
        cluster: required("cluster")?,
        region: q.get("region").filter(|v| !v.is_empty()).cloned(),
        from: required("from")?,
        to: required("to")?,
        port,
        protocol: q
            .get("protocol")
            .filter(|v| !v.is_empty())
            .cloned()
            .unwrap_or_else(|| "TCP".to_string()),
    })
}

async fn netcheck_handler(
    State(netcheck): State<Arc<dyn Netcheck>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let req = match parse_request(&q) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match netcheck.netcheck(req).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Fixed;

    #[async_trait::async_trait]
    impl Netcheck for Fixed {
        async fn netcheck(&self, req: NetcheckRequest) -> Result<Value, InternalRouteError> {
            if req.cluster == "ghost" {
                return Err(InternalRouteError::new(404, "cluster ghost not found"));
            }
            Ok(json!({"from": req.from, "to": req.to, "port": req.port, "protocol": req.protocol}))
        }
    }

    /// One HTTP/1.1 GET over loopback against the routes served on port 0.
    async fn get_json(uri: &str) -> (u16, Value) {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let server = crate::gateway::serve_router(routes(Arc::new(Fixed)), addr)
            .await
            .unwrap();
        let mut conn = tokio::net::TcpStream::connect(server.local_addr)
            .await
            .unwrap();
        let req = format!("GET {uri} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        conn.write_all(req.as_bytes()).await.unwrap();
        let mut raw = String::new();
        conn.read_to_string(&mut raw).await.unwrap();
        server.shutdown().await.unwrap();
        let status = raw[9..12].parse().unwrap();
        let body = &raw[raw.find("\r\n\r\n").unwrap() + 4..];
        (status, serde_json::from_str(body).unwrap())
    }

    #[tokio::test]
    async fn queries_reach_the_implementation_and_errors_are_json() {
        let (s, v) =
            get_json("/_skiff/netcheck?cluster=c&from=a%2Fb&to=svc%2Fx%2Fy&port=53&protocol=UDP")
                .await;
        assert_eq!(s, 200);
        assert_eq!(
            v,
            json!({"from": "a/b", "to": "svc/x/y", "port": 53, "protocol": "UDP"})
        );
        let (s, v) = get_json("/_skiff/netcheck?cluster=c&from=a&to=b&port=80").await;
        assert_eq!((s, v["protocol"].clone()), (200, json!("TCP")));
        let (s, v) = get_json("/_skiff/netcheck?cluster=ghost&from=a&to=b&port=80").await;
        assert_eq!(s, 404);
        assert_eq!(v["error"]["message"], "cluster ghost not found");
        let (s, v) = get_json("/_skiff/netcheck?cluster=c&from=a&to=b&port=70000").await;
        assert_eq!(s, 400);
        assert_eq!(v["error"]["code"], "BadRequest");
        let (s, v) = get_json("/_skiff/netcheck?cluster=c&to=b&port=80").await;
        assert_eq!(
            (s, v["error"]["message"].clone()),
            (400, json!("missing required parameter \"from\""))
        );
    }
}
