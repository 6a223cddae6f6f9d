//! The stage engine on the golden corpus (`stages/pod/testdata/*.input.yaml`): a whole pod life
//! per iteration, and the single hottest call (selecting the stage of a Running pod, which every
//! pod watch event pays).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use skiff_nodes::sim::stage::Profile;
use skiff_nodes::sim::trace::{Case, trace};

fn corpus() -> Vec<(String, Case)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/stages/pod/testdata");
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("testdata dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".input.yaml"))
        .collect();
    entries.sort();
    for p in entries {
        let src = std::fs::read_to_string(&p).expect("read case");
        let case: Case = serde_saphyr::from_str(&src).expect("parse case");
        out.push((p.file_name().unwrap().to_string_lossy().into_owned(), case));
    }
    out
}

fn bench(c: &mut Criterion) {
    let cases = corpus();
    let general = Profile::builtin("general").unwrap();
    let fast = Profile::builtin("fast").unwrap();
    let mut g = c.benchmark_group("pod_lifecycle");
    for (name, case) in &cases {
        let profile = if case.profile == "fast" {
            &fast
        } else {
            &general
        };
        g.bench_function(name.trim_end_matches(".input.yaml"), |b| {
            b.iter(|| black_box(trace(profile, black_box(case))))
        });
    }
    g.finish();
    if let Some((_, case)) = cases.iter().find(|(n, _)| n.starts_with("deployment-pod")) {
        let steps = trace(&general, case);
        let mut running = case.pod.clone();
        for s in &steps {
            if let Some(p) = &s.patch {
                merge(&mut running, p);
            }
        }
        c.bench_function("select_running_pod", |b| {
            b.iter(|| black_box(general.select(black_box(&running))))
        });
    }
}

fn merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match (target, patch) {
        (serde_json::Value::Object(t), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
