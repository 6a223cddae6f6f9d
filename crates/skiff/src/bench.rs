//! `skiff bench api`: end-to-end figures of one cluster API on the embedded store (design.md §7).
//!
//! Runs in-process: a fresh data dir, the real embedded store (fsync per group commit), the real API
//! server over loopback HTTP (TLS and RBAC off, so the figures are the registry, store and HTTP path),
//! and a hyper client. Prints one line per figure.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use skiff_apiserver::server::ClusterApiConfig;

use crate::cli::BenchArgs;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(api(args))
}

fn pod(name: &str) -> Bytes {
    Bytes::from(
        serde_json::to_vec(&serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
        }))
        .expect("pod serializes"),
    )
}

async fn send(
    client: &HttpClient,
    method: &str,
    uri: &str,
    body: Bytes,
) -> anyhow::Result<(u16, Bytes)> {
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Full::new(body))?;
    let resp = client.request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Create `count` pods from `clients` concurrent clients; returns (elapsed, sorted latencies).
async fn create_pods(
    client: &HttpClient,
    base: &str,
    prefix: &str,
    count: usize,
    clients: usize,
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    let per = count.div_ceil(clients);
    for c in 0..clients {
        let client = client.clone();
        let uri = format!("{base}/api/v1/namespaces/default/pods");
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per);
            for i in 0..per {
                let n = c * per + i;
                if n >= count {
                    break;
                }
                let t = Instant::now();
                let (status, body) =
                    send(&client, "POST", &uri, pod(&format!("{prefix}-{n}"))).await?;
                anyhow::ensure!(
                    status == 201,
                    "create answered {status}: {}",
                    String::from_utf8_lossy(&body)
                );
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all = Vec::with_capacity(count);
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = started.elapsed();
    all.sort();
    Ok((elapsed, all))
}

async fn api(args: BenchArgs) -> anyhow::Result<()> {
    let tmp = std::env::temp_dir().join(format!("skiff-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let result = api_in(&tmp, &args).await;
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

async fn api_in(dir: &std::path::Path, args: &BenchArgs) -> anyhow::Result<()> {
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(512)
        .build_http();

    // Start-up: open the store, start the API, first answered request.
    let t0 = Instant::now();
    let store = skiff_store::open("embedded", dir)
        .await
        .context("opening the store")?;
    let cfg = ClusterApiConfig::new("bench", "127.0.0.1:0".parse()?);
    let api = skiff_apiserver::server::start(store.clone(), cfg).await?;
    let base = format!("http://{}", api.local_addr);
    let (status, _) = send(
        &client,
        "GET",
        &format!("{base}/api/v1/namespaces"),
        Bytes::new(),
    )
    .await?;
    anyhow::ensure!(status == 200, "namespaces answered {status}");
    println!(
        "startup_to_first_answer_ms {:.1}",
        t0.elapsed().as_secs_f64() * 1e3
    );

    let (elapsed, lat) = create_pods(&client, &base, "one", args.creates_single, 1).await?;
    println!(
        "create_pod_1_client per_s {:.0} p50_ms {:.2} p99_ms {:.2}",
        lat.len() as f64 / elapsed.as_secs_f64(),
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3
    );
    let (elapsed, lat) = create_pods(&client, &base, "many", args.creates, args.clients).await?;
    println!(
        "create_pod_{}_clients per_s {:.0} p50_ms {:.2} p99_ms {:.2}",
        args.clients,
        lat.len() as f64 / elapsed.as_secs_f64(),
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3
    );

    // GET of one object, 64 concurrent clients.
    let gets = 20_000usize;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let client = client.clone();
        let uri = format!("{base}/api/v1/namespaces/default/pods/one-0");
        tasks.push(tokio::spawn(async move {
            for _ in 0..gets / 64 {
                let (status, _) = send(&client, "GET", &uri, Bytes::new()).await?;
                anyhow::ensure!(status == 200, "get answered {status}");
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    println!(
        "get_pod_64_clients per_s {:.0}",
        (gets / 64 * 64) as f64 / t.elapsed().as_secs_f64()
    );

    // LIST every pod, JSON, with the extra RSS it costs.
    let total = args.creates_single + args.creates;
    let rss_before = rss_kib();
    let t = Instant::now();
    let (status, body) = send(
        &client,
        "GET",
        &format!("{base}/api/v1/namespaces/default/pods"),
        Bytes::new(),
    )
    .await?;
    anyhow::ensure!(status == 200, "list answered {status}");
    let list_ms = t.elapsed().as_secs_f64() * 1e3;
    let rss_after = rss_kib();
    println!(
        "list_pods items {total} ms {list_ms:.0} bytes {} extra_rss_mib {:.1}",
        body.len(),
        rss_after.saturating_sub(rss_before) as f64 / 1024.0
    );
    drop(body);

    api.shutdown().await;
    drop(store);
    Ok(())
}
