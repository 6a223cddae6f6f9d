//! `skiff bench api`: end-to-end figures of one cluster API on the embedded store (design.md §7).
//!
//! Runs in-process: a fresh data dir, the real embedded store (fsync per group commit), the real API
//! server over loopback HTTP (TLS and RBAC off, so the figures are the registry, store and HTTP path),
//! and a hyper client. Prints one line per figure.
//!
//! `--list-pods N` and `--watchers N` measure the two read paths instead: a streamed LIST of N
//! pods (time, peak extra RSS sampled while it streams) and N watchers fanned out from the watch
//! cache (delivery latency from each create's answer, events per second).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    if args.list_pods > 0 || args.watchers > 0 {
        return list_and_watch(dir, args, &client).await;
    }

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

/// Peak VmRSS (KiB) seen by a sampler thread until `stop` is set.
#[allow(
    clippy::disallowed_methods,
    reason = "a dedicated OS thread, not a runtime worker, sleeps between samples"
)]
fn sample_peak_rss(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = rss_kib();
        while !stop.load(Ordering::Relaxed) {
            peak = peak.max(rss_kib());
            std::thread::sleep(Duration::from_millis(2));
        }
        peak.max(rss_kib())
    })
}

/// Writes `count` copies of a pod the API created (defaults and all, so sizes are real) straight
/// into the store, 1,000 per transaction: seeding 100,000 pods through HTTP would take minutes and
/// is not what the LIST figure is about.
async fn seed_pods(
    store: &Arc<dyn skiff_store::Store>,
    client: &HttpClient,
    base: &str,
    count: usize,
) -> anyhow::Result<()> {
    let (status, body) = send(
        client,
        "POST",
        &format!("{base}/api/v1/namespaces/default/pods"),
        pod("template"),
    )
    .await?;
    anyhow::ensure!(status == 201, "template pod answered {status}");
    let mut template: serde_json::Value = serde_json::from_slice(&body)?;
    if let Some(meta) = template
        .get_mut("metadata")
        .and_then(serde_json::Value::as_object_mut)
    {
        meta.remove("resourceVersion");
    }
    let names: Vec<usize> = (0..count).collect();
    for chunk in names.chunks(1_000) {
        let ops = chunk
            .iter()
            .map(|i| {
                let name = format!("seed-{i:06}");
                let mut p = template.clone();
                p["metadata"]["name"] = name.clone().into();
                p["metadata"]["uid"] = format!("00000000-0000-0000-0000-{i:012}").into();
                skiff_store::Op::Put {
                    key: format!("/k8s/bench/core/pods/default/{name}"),
                    value: Bytes::from(serde_json::to_vec(&p).expect("pod serializes")),
                    precondition: skiff_store::Precondition::None,
                }
            })
            .collect();
        store.txn(ops).await.context("seeding pods")?;
    }
    Ok(())
}

/// GETs `uri` and counts the body's bytes as they arrive, keeping none of them.
async fn stream_len(
    client: &HttpClient,
    uri: &str,
    accept: Option<&str>,
) -> anyhow::Result<(u16, usize, Bytes)> {
    let mut req = http::Request::builder().method("GET").uri(uri);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let resp = client.request(req.body(Full::new(Bytes::new()))?).await?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut len = 0;
    let mut tail = Bytes::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            len += data.len();
            tail = data;
        }
    }
    Ok((status, len, tail))
}

async fn list_and_watch(
    dir: &std::path::Path,
    args: &BenchArgs,
    client: &HttpClient,
) -> anyhow::Result<()> {
    let store = skiff_store::open("embedded", dir)
        .await
        .context("opening the store")?;
    let cfg = ClusterApiConfig::new("bench", "127.0.0.1:0".parse()?);
    let api = skiff_apiserver::server::start(store.clone(), cfg).await?;
    let base = format!("http://{}", api.local_addr);
    if args.list_pods > 0 {
        seed_pods(&store, client, &base, args.list_pods).await?;
        let uri = format!("{base}/api/v1/namespaces/default/pods");
        for (label, accept) in [
            ("json", None),
            (
                "table",
                Some("application/json;as=Table;v=v1;g=meta.k8s.io"),
            ),
        ] {
            let before = rss_kib();
            let stop = Arc::new(AtomicBool::new(false));
            let sampler = sample_peak_rss(stop.clone());
            let t = Instant::now();
            let (status, bytes, tail) = stream_len(client, &uri, accept).await?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            stop.store(true, Ordering::Relaxed);
            let peak = sampler.join().unwrap_or(0);
            anyhow::ensure!(status == 200, "list answered {status}");
            anyhow::ensure!(tail.ends_with(b"}"), "list body ended early");
            println!(
                "list_pods_{label} items {} ms {ms:.0} bytes {bytes} peak_extra_rss_mib {:.1}",
                args.list_pods + 1,
                peak.saturating_sub(before) as f64 / 1024.0
            );
        }
    }
    if args.watchers > 0 {
        watch_fanout(client, &base, args.watchers, args.watch_writes).await?;
    }
    api.shutdown().await;
    drop(store);
    Ok(())
}

/// The index in `w-<i>` of the first `"name":"w-` in a watch line.
fn watched_index(line: &[u8]) -> Option<usize> {
    const NEEDLE: &[u8] = b"\"name\":\"w-";
    let at = line.windows(NEEDLE.len()).position(|w| w == NEEDLE)? + NEEDLE.len();
    let digits = line[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&line[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// `watchers` watches of the default namespace's pods while `writes` pods are created by 16
/// clients. Latency: an event's arrival minus the answer to its create (0 when the event won).
async fn watch_fanout(
    client: &HttpClient,
    base: &str,
    watchers: usize,
    writes: usize,
) -> anyhow::Result<()> {
    let (status, body) = send(
        client,
        "GET",
        &format!("{base}/api/v1/namespaces/default/pods?limit=1"),
        Bytes::new(),
    )
    .await?;
    anyhow::ensure!(status == 200, "list answered {status}");
    let rv = serde_json::from_slice::<serde_json::Value>(&body)?["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let t0 = Instant::now();
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..writes).map(|_| AtomicU64::new(0)).collect());
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(watchers);
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let client = client.clone();
        let uri = format!("{base}/api/v1/namespaces/default/pods?watch=1&resourceVersion={rv}");
        let acked = acked.clone();
        let ready = ready_tx.clone();
        tasks.push(tokio::spawn(async move {
            let req = http::Request::builder()
                .uri(uri)
                .body(Full::new(Bytes::new()))?;
            let resp = client.request(req).await?;
            anyhow::ensure!(resp.status() == 200, "watch answered {}", resp.status());
            let _ = ready.send(()).await;
            let mut body = resp.into_body();
            let mut lat = Vec::with_capacity(writes);
            let mut last_ns = 0u64;
            let mut buf = Vec::new();
            while lat.len() < writes {
                let Some(frame) = body.frame().await else {
                    anyhow::bail!("watch ended after {} events", lat.len());
                };
                let Ok(data) = frame?.into_data() else {
                    continue;
                };
                let now = t0.elapsed().as_nanos() as u64;
                buf.extend_from_slice(&data);
                let mut start = 0;
                while let Some(nl) = buf[start..].iter().position(|b| *b == b'\n') {
                    let line = &buf[start..start + nl];
                    start += nl + 1;
                    anyhow::ensure!(
                        !line.starts_with(b"{\"type\":\"ERROR\""),
                        "watch error: {}",
                        String::from_utf8_lossy(line)
                    );
                    if let Some(i) = watched_index(line).filter(|i| *i < writes) {
                        let ack = acked[i].load(Ordering::Acquire);
                        // 0: the event arrived before its create's answer did.
                        lat.push(Duration::from_nanos(if ack == 0 {
                            0
                        } else {
                            now.saturating_sub(ack)
                        }));
                        last_ns = now;
                    }
                }
                buf.drain(..start);
            }
            anyhow::Ok((lat, last_ns))
        }));
    }
    drop(ready_tx);
    for _ in 0..watchers {
        ready_rx.recv().await.context("a watcher failed to start")?;
    }
    let writers = 16;
    let start_ns = t0.elapsed().as_nanos() as u64;
    let mut wtasks = Vec::new();
    for w in 0..writers {
        let client = client.clone();
        let uri = format!("{base}/api/v1/namespaces/default/pods");
        let acked = acked.clone();
        wtasks.push(tokio::spawn(async move {
            for i in (w..writes).step_by(writers) {
                let (status, body) = send(&client, "POST", &uri, pod(&format!("w-{i}"))).await?;
                anyhow::ensure!(
                    status == 201,
                    "create answered {status}: {}",
                    String::from_utf8_lossy(&body)
                );
                acked[i].store(t0.elapsed().as_nanos() as u64, Ordering::Release);
            }
            anyhow::Ok(())
        }));
    }
    for t in wtasks {
        t.await??;
    }
    let writes_done_ns = t0.elapsed().as_nanos() as u64;
    let mut all = Vec::with_capacity(watchers * writes);
    let mut end_ns = 0;
    for t in tasks {
        let (lat, last) = t.await??;
        all.extend(lat);
        end_ns = end_ns.max(last);
    }
    all.sort();
    let secs = (end_ns.saturating_sub(start_ns)) as f64 / 1e9;
    println!(
        "watch_fanout watchers {watchers} writes {writes} deliveries {} write_per_s {:.0} events_per_s {:.0} deliveries_per_s {:.0} p50_ms {:.2} p99_ms {:.2} max_ms {:.2}",
        all.len(),
        writes as f64 / ((writes_done_ns - start_ns) as f64 / 1e9),
        writes as f64 / secs,
        all.len() as f64 / secs,
        percentile(&all, 0.5).as_secs_f64() * 1e3,
        percentile(&all, 0.99).as_secs_f64() * 1e3,
        all.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    Ok(())
}
