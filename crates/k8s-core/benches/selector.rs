//! Filtering a 150,000-pod list with label and field selectors, as a `kubectl get pods -A -l …`
//! on a large cluster makes the API server do.
//!
//! `cargo bench -p skiff-k8s-core --bench selector`. One element = one pod tested against the
//! selector (parse happens once, outside the loop).

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use skiff_k8s_core::selector::{FieldSelector, Selector, object_field};

const PODS: usize = 150_000;

fn pods() -> Vec<Value> {
    (0..PODS)
        .map(|i| {
            let tier = ["web", "api", "db"][i % 3];
            json!({
                "metadata": {
                    "name": format!("pod-{i}"),
                    "namespace": format!("ns-{}", i % 50),
                    "labels": {
                        "app": format!("app-{}", i % 100),
                        "tier": tier,
                        "pod-template-hash": format!("{:x}", i * 7919),
                        "app.kubernetes.io/managed-by": "skiff"
                    }
                },
                "spec": {"nodeName": format!("node-{}", i % 1000)},
                "status": {"phase": if i % 10 == 0 { "Pending" } else { "Running" }}
            })
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let pods = pods();
    let mut g = c.benchmark_group("filter_150k_pods");
    g.throughput(Throughput::Elements(PODS as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    // Baseline: just reaching each pod's labels, so selector cost can be read net of memory
    // access (the machine may be shared; compare ratios, not absolute times).
    g.bench_function("baseline read metadata.labels.app", |b| {
        b.iter(|| {
            pods.iter()
                .filter(|p| p["metadata"]["labels"]["app"].as_str() == Some("app-7"))
                .count()
        })
    });
    for sel in [
        "app=app-7",
        "tier in (web,api),app!=app-3,!canary",
        "app.kubernetes.io/managed-by",
    ] {
        let s = Selector::parse(sel).unwrap();
        g.bench_function(format!("label {sel}"), |b| {
            b.iter(|| pods.iter().filter(|p| s.matches_object(p)).count())
        });
    }
    let fs = FieldSelector::parse("spec.nodeName=node-7,status.phase!=Pending").unwrap();
    g.bench_function("field spec.nodeName=node-7,status.phase!=Pending", |b| {
        b.iter(|| {
            pods.iter()
                .filter(|p| {
                    fs.matches(|f| match f {
                        "spec.nodeName" | "status.phase" => {
                            object_field(p, f).and_then(Value::as_str)
                        }
                        _ => None,
                    })
                })
                .count()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
