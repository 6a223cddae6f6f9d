//! Durable put throughput and latency of the embedded store (group commit, one fsync per batch).
//!
//! `cargo bench -p skiff-store --bench put`. Criterion reports writes/s (one element = one
//! acknowledged, fsynced create of a 1 KiB value); the latency percentiles of every write measured
//! are printed after each group. Targets (design.md §7): 256 clients >= 10,000 writes/s with
//! p99 <= 25 ms; 1 client p50 <= 1 ms.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use skiff_store::{EmbeddedOptions, EmbeddedStore, Op, Precondition, Store};

const VALUE_SIZE: usize = 1024;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn report(name: &str, latencies: &Mutex<Vec<Duration>>) {
    let mut l = std::mem::take(&mut *latencies.lock().unwrap());
    l.sort();
    eprintln!(
        "{name}: {} writes, latency p50 {:?} p90 {:?} p99 {:?} max {:?}",
        l.len(),
        percentile(&l, 0.50),
        percentile(&l, 0.90),
        percentile(&l, 0.99),
        l.last().copied().unwrap_or_default()
    );
}

fn bench_puts(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        EmbeddedStore::open(&dir.path().join("store.redb"), EmbeddedOptions::default()).unwrap(),
    );
    let value = Bytes::from(vec![b'x'; VALUE_SIZE]);
    let next_key = Arc::new(std::sync::atomic::AtomicU64::new(0));

    let mut group = c.benchmark_group("durable_put");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for clients in [1usize, 256] {
        let latencies = Arc::new(Mutex::new(Vec::new()));
        group.bench_function(format!("{clients}_clients"), |b| {
            b.iter_custom(|iters| {
                let (store, value, next_key, latencies) = (
                    store.clone(),
                    value.clone(),
                    next_key.clone(),
                    latencies.clone(),
                );
                rt.block_on(async move {
                    let start = Instant::now();
                    let mut tasks = Vec::new();
                    for c in 0..clients as u64 {
                        // Spread `iters` writes over the clients.
                        let n = iters / clients as u64 + u64::from(c < iters % clients as u64);
                        let (store, value, next_key, latencies) = (
                            store.clone(),
                            value.clone(),
                            next_key.clone(),
                            latencies.clone(),
                        );
                        tasks.push(tokio::spawn(async move {
                            let mut mine = Vec::with_capacity(n as usize);
                            for _ in 0..n {
                                let id =
                                    next_key.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                let op = Op::Put {
                                    key: format!("/k8s/bench/core/pods/default/pod-{id}"),
                                    value: value.clone(),
                                    precondition: Precondition::MustNotExist,
                                };
                                let t = Instant::now();
                                store.txn(vec![op]).await.unwrap();
                                mine.push(t.elapsed());
                            }
                            latencies.lock().unwrap().extend(mine);
                        }));
                    }
                    for t in tasks {
                        t.await.unwrap();
                    }
                    start.elapsed()
                })
            });
        });
        report(&format!("durable_put/{clients}_clients"), &latencies);
    }
    group.finish();
}

criterion_group!(benches, bench_puts);
criterion_main!(benches);
