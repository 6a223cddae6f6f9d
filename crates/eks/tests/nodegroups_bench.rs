//! Benchmark (design.md §7: "managed nodegroup of 100: ACTIVE and 100 Nodes Ready <= 500 ms, 1,000
//! <= 2 s"): CreateNodegroup → ACTIVE with every Node registered, on a real embedded store.
//! Ignored by default (timings are reported, never asserted in unit tests):
//!
//! ```text
//! cargo test --release -p skiff-eks --test nodegroups_bench -- --ignored --nocapture
//! SKIFF_BENCH_NODES=1000 cargo test --release -p skiff-eks --test nodegroups_bench -- --ignored --nocapture
//! ```

mod nodegroups_support;

use std::time::{Duration, Instant};

use nodegroups_support::{Env, wait_for};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture (release)"]
async fn nodegroup_of_n_to_active_with_n_nodes() {
    let n: usize = std::env::var("SKIFF_BENCH_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let env = Env::start().await;
    let (subnets, node_role) = env
        .cluster(
            "prod",
            &[
                ("10.0.16.0/20", "us-east-1a"),
                ("10.0.32.0/20", "us-east-1b"),
                ("10.0.48.0/20", "us-east-1c"),
            ],
        )
        .await;
    let start = Instant::now();
    env.call(
        "eks",
        "CreateNodegroup",
        json!({"clusterName": "prod", "nodegroupName": "big", "nodeRole": node_role,
               "subnets": subnets, "instanceTypes": ["m5.large"],
               "scalingConfig": {"minSize": 0, "maxSize": n, "desiredSize": n}}),
    )
    .await;
    let answered = start.elapsed();
    wait_for("ACTIVE", Duration::from_secs(600), || async {
        env.nodegroup("prod", "big")
            .await
            .is_some_and(|g| g["status"] == "ACTIVE")
    })
    .await;
    let active = start.elapsed();
    let nodes = env.nodes("prod").await;
    assert_eq!(nodes.len(), n);
    eprintln!(
        "nodegroup of {n}: CreateNodegroup answered in {answered:?}, ACTIVE with {} Nodes in {active:?}",
        nodes.len()
    );
}
