//! `GET /metrics` on the gateway, read with curl after real aws CLI calls (one failing) and an
//! unauthenticated registry request: counters by service/operation/status, a consistent latency
//! histogram, process RSS, all in Prometheus' text format.

mod support;

use skiff_aws::gateway::GatewayConfig;
use support::Gw;

async fn curl(url: &str) -> (String, String) {
    let out = tokio::process::Command::new("curl")
        .args(["-s", "-S", "-D", "/dev/stderr", url])
        .output()
        .await
        .expect("curl runs");
    assert!(out.status.success());
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The value of the sample whose name-and-labels part is exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_calls_by_service_operation_and_status() {
    let blobs = std::env::temp_dir().join(format!("skiff-metrics-{}", uuid::Uuid::new_v4()));
    let g = Gw::start_with(GatewayConfig {
        registry_dir: Some(blobs.clone()),
        ..GatewayConfig::default()
    })
    .await;
    for _ in 0..3 {
        g.ok(&["ec2", "create-vpc", "--cidr-block", "10.0.0.0/16"])
            .await;
    }
    g.err(&["ec2", "create-vpc", "--cidr-block", "10.0.0.0/99"])
        .await;
    g.ok(&["sts", "get-caller-identity"]).await;
    let (_, _) = curl(&format!("{}/v2/", g.url())).await;

    let (headers, text) = curl(&format!("{}/metrics", g.url())).await;
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{headers}"
    );
    let ok = r#"skiff_aws_requests_total{service="ec2",operation="CreateVpc",status="200"}"#;
    let bad = r#"skiff_aws_requests_total{service="ec2",operation="CreateVpc",status="400"}"#;
    assert_eq!(sample(&text, ok), Some(3.0), "{text}");
    assert_eq!(sample(&text, bad), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"skiff_aws_requests_total{service="sts",operation="GetCallerIdentity",status="200"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"skiff_aws_requests_total{service="ecr-registry",operation="Base",status="401"}"#
        ),
        Some(1.0)
    );
    let h = r#"service="ec2",operation="CreateVpc""#;
    let count = sample(
        &text,
        &format!("skiff_aws_request_duration_seconds_count{{{h}}}"),
    );
    assert_eq!(count, Some(4.0));
    let inf = sample(
        &text,
        &format!("skiff_aws_request_duration_seconds_bucket{{{h},le=\"+Inf\"}}"),
    );
    assert_eq!(inf, Some(4.0));
    let sum = sample(
        &text,
        &format!("skiff_aws_request_duration_seconds_sum{{{h}}}"),
    )
    .unwrap();
    assert!(sum > 0.0 && sum < 60.0, "{sum}");
    // Buckets are cumulative: never decreasing.
    let buckets: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(&format!("skiff_aws_request_duration_seconds_bucket{{{h},")))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert_eq!(buckets.len(), 15);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    let rss = sample(&text, "process_resident_memory_bytes").expect("rss");
    assert!(rss > 1e6, "{rss}");
    assert!(text.contains("# TYPE skiff_aws_request_duration_seconds histogram"));
    let _ = std::fs::remove_dir_all(&blobs);
    g.stop().await;
}
