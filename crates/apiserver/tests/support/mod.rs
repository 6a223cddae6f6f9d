//! Shared test harness: an in-memory store, test kinds, a server on 127.0.0.1:0 and a small
//! HTTP client.
#![allow(
    dead_code,
    reason = "each test file uses a different part of the harness"
)]

pub mod kinds;
pub mod mem_store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use skiff_apiserver::server::{ClusterApiConfig, RunningApi, start};

pub struct TestServer {
    pub api: RunningApi,
    pub store: Arc<mem_store::MemStore>,
    pub base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

pub fn config() -> ClusterApiConfig {
    let mut cfg = ClusterApiConfig::new("test", "127.0.0.1:0".parse::<SocketAddr>().unwrap());
    cfg.kinds = kinds::kinds();
    cfg
}

pub async fn server() -> TestServer {
    server_with(config()).await
}

pub async fn server_with(cfg: ClusterApiConfig) -> TestServer {
    let store = Arc::new(mem_store::MemStore::new());
    server_on(store, cfg).await
}

/// A server over any store; `store` stays the in-memory one for compaction helpers, so tests
/// that pass another backend must not call `compact_to`.
pub async fn server_on_backend(
    backend: Arc<dyn skiff_store::Store>,
    cfg: ClusterApiConfig,
) -> TestServer {
    let api = start(backend, cfg).await.expect("server starts");
    let base = format!("http://{}", api.local_addr);
    TestServer {
        api,
        store: Arc::new(mem_store::MemStore::new()),
        base,
        client: Client::builder(TokioExecutor::new()).build_http(),
    }
}

pub async fn server_on(store: Arc<mem_store::MemStore>, cfg: ClusterApiConfig) -> TestServer {
    let api = start(store.clone(), cfg).await.expect("server starts");
    let base = format!("http://{}", api.local_addr);
    TestServer {
        api,
        store,
        base,
        client: Client::builder(TokioExecutor::new()).build_http(),
    }
}

impl TestServer {
    pub async fn req(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<Bytes>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut b = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(format!("{}{}", self.base, path));
        if let Some(ct) = content_type {
            b = b.header("content-type", ct);
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Full::new(body.unwrap_or_default())).unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(10), self.client.request(req))
            .await
            .expect("no timeout")
            .expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect())
            .await
            .expect("no timeout")
            .expect("body")
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).to_string();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.req("GET", path, None, None, &[]).await
    }

    pub async fn post(&self, path: &str, v: &Value) -> Resp {
        self.req(
            "POST",
            path,
            Some("application/json"),
            Some(Bytes::from(v.to_string())),
            &[],
        )
        .await
    }

    pub async fn put(&self, path: &str, v: &Value) -> Resp {
        self.req(
            "PUT",
            path,
            Some("application/json"),
            Some(Bytes::from(v.to_string())),
            &[],
        )
        .await
    }

    pub async fn patch(&self, path: &str, ct: &str, v: &Value) -> Resp {
        self.req(
            "PATCH",
            path,
            Some(ct),
            Some(Bytes::from(v.to_string())),
            &[],
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.req("DELETE", path, None, None, &[]).await
    }

    /// Opens a watch and returns a receiver of its JSON lines.
    pub async fn watch(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> tokio::sync::mpsc::Receiver<Value> {
        let mut b = Request::builder().uri(format!("{}{}", self.base, path));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Full::new(Bytes::new())).unwrap();
        let resp = self.client.request(req).await.expect("watch request");
        assert_eq!(resp.status(), StatusCode::OK, "watch status");
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let mut body = resp.into_body();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                    while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=i).collect();
                        if let Ok(v) = serde_json::from_slice::<Value>(&line)
                            && tx.send(v).await.is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
        rx
    }
}

/// The next watch event within 5 s.
pub async fn next_event(rx: &mut tokio::sync::mpsc::Receiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("event within 5s")
        .expect("stream open")
}

/// Polls `f` until it returns true (at most 10 s).
pub async fn eventually<F, Fut>(mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not met within 10s");
}
