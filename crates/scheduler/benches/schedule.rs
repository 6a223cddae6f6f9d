//! The scheduling core without I/O: 5,000 nodes in 4 zones, Deployment-like pods (requests,
//! owner for default spreading). `full_50k` schedules 50,000 pods from empty and reports the
//! throughput the design target (§7: >= 5,000 pods/s incl. binding) is measured against.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use skiff_scheduler::cache::Cache;
use skiff_scheduler::model::{NodeSpec, PodInfo};
use skiff_scheduler::plugins::default_profile;

const NODES: usize = 5_000;

fn cluster() -> Cache {
    let mut c = Cache::new();
    for i in 0..NODES {
        c.upsert_node(NodeSpec::parse(&json!({
            "metadata": {"name": format!("node-{i}"), "labels": {
                "topology.kubernetes.io/zone": format!("zone-{}", i % 4),
                "kubernetes.io/hostname": format!("node-{i}")}},
            "status": {"allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"}},
        })));
    }
    c
}

fn pod(i: usize) -> Arc<PodInfo> {
    Arc::new(PodInfo::parse(&json!({
        "metadata": {"name": format!("web-{i}"), "namespace": "default",
                     "labels": {"app": format!("app-{}", i % 50)},
                     "creationTimestamp": "2026-01-01T00:00:00Z",
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                          "uid": format!("rs-{}", i % 50), "controller": true}]},
        "spec": {"containers": [{"name": "c", "image": "nginx",
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]},
    })))
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("schedule");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));

    // One pod into a cluster already holding 25,000 pods.
    let mut cache = cluster();
    let mut profile = default_profile();
    for i in 0..25_000 {
        let p = pod(i);
        let node = profile.schedule(&p, &cache).expect("fits").node;
        cache.add_pod(p, &node, false);
    }
    let mut n = 25_000;
    g.bench_function("one_pod_5k_nodes_25k_pods", |b| {
        b.iter(|| {
            let p = pod(n);
            n += 1;
            let node = profile.schedule(&p, &cache).expect("fits").node;
            cache.add_pod(p.clone(), &node, true);
            cache.remove_pod(&p.key());
        })
    });

    g.bench_function("full_50k_pods_5k_nodes", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut cache = cluster();
                let mut profile = default_profile();
                let pods: Vec<_> = (0..50_000).map(pod).collect();
                let t = Instant::now();
                for p in pods {
                    let node = profile.schedule(&p, &cache).expect("fits").node;
                    cache.add_pod(p, &node, true);
                }
                let dt = t.elapsed();
                eprintln!(
                    "50,000 pods on 5,000 nodes: {:.0} pods/s",
                    50_000.0 / dt.as_secs_f64()
                );
                total += dt;
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
