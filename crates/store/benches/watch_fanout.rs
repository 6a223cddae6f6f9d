//! Watch fan-out of the embedded store: 1,000 watchers on one prefix, 1 or 8 concurrent writers
//! committing durable events (each writer waits for its ack, so the write rate is what group commit
//! allows and every event reaches every watcher).
//!
//! `cargo bench -p skiff-store --bench watch_fanout`. Criterion reports committed events/s (one
//! element = one event delivered to all 1,000 watchers); the write-to-delivery latency of every
//! delivery (clock read just before `txn`, again when a watcher receives the event) is printed as
//! percentiles, with deliveries/s. Target (design.md §7): 1,000 watchers p99 <= 10 ms.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use skiff_store::{EmbeddedOptions, EmbeddedStore, Op, Precondition, Store};

const WATCHERS: usize = 1000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn bench_fanout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        EmbeddedStore::open(&dir.path().join("store.redb"), EmbeddedOptions::default()).unwrap(),
    );
    let base = Instant::now();
    let mut group = c.benchmark_group("watch_fanout");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(8));
    for writers in [1u64, 8] {
        let latencies = Arc::new(Mutex::new(Vec::<Duration>::new()));
        let deliveries = Arc::new(Mutex::new((0u64, Duration::ZERO)));
        group.bench_function(format!("{WATCHERS}_watchers_{writers}_writers"), |b| {
            b.iter_custom(|iters| {
                let (store, latencies, deliveries) =
                    (store.clone(), latencies.clone(), deliveries.clone());
                rt.block_on(async move {
                    let from = store.current_revision().await.unwrap();
                    let mut watchers = Vec::with_capacity(WATCHERS);
                    for _ in 0..WATCHERS {
                        let mut w = store.watch("/k8s/bench/pods/", from).await.unwrap();
                        watchers.push(tokio::spawn(async move {
                            let mut mine = Vec::with_capacity(iters as usize);
                            for _ in 0..iters {
                                let e = match w.next().await {
                                    Some(Ok(e)) => e,
                                    other => panic!(
                                        "watcher ended: {other:?} (too slow for this write rate)"
                                    ),
                                };
                                let sent = u64::from_le_bytes(e.kv.value[..8].try_into().unwrap());
                                mine.push(
                                    base.elapsed().saturating_sub(Duration::from_nanos(sent)),
                                );
                            }
                            mine
                        }));
                    }
                    let start = Instant::now();
                    let mut tasks = Vec::new();
                    for wr in 0..writers {
                        let n = iters / writers + u64::from(wr < iters % writers);
                        let store = store.clone();
                        tasks.push(tokio::spawn(async move {
                            for i in 0..n {
                                let sent = base.elapsed().as_nanos() as u64;
                                let mut value = sent.to_le_bytes().to_vec();
                                value.resize(512, b'x');
                                let op = Op::Put {
                                    key: format!("/k8s/bench/pods/default/w{wr}-{i}"),
                                    value: Bytes::from(value),
                                    precondition: Precondition::None,
                                };
                                store.txn(vec![op]).await.unwrap();
                            }
                        }));
                    }
                    for w in tasks {
                        w.await.unwrap();
                    }
                    let mut all = Vec::with_capacity(WATCHERS * iters as usize);
                    for w in watchers {
                        all.extend(w.await.unwrap());
                    }
                    let elapsed = start.elapsed();
                    let mut d = deliveries.lock().unwrap();
                    d.0 += all.len() as u64;
                    d.1 += elapsed;
                    latencies.lock().unwrap().extend(all);
                    elapsed
                })
            });
        });
        let mut l = std::mem::take(&mut *latencies.lock().unwrap());
        l.sort();
        let (n, t) = *deliveries.lock().unwrap();
        eprintln!(
            "watch_fanout/{WATCHERS}_watchers_{writers}_writers: {n} deliveries, {:.0} deliveries/s, write-to-delivery latency p50 {:?} p90 {:?} p99 {:?} max {:?}",
            n as f64 / t.as_secs_f64(),
            percentile(&l, 0.50),
            percentile(&l, 0.90),
            percentile(&l, 0.99),
            l.last().copied().unwrap_or_default()
        );
    }
    group.finish();
}

criterion_group!(benches, bench_fanout);
criterion_main!(benches);
