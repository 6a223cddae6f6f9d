//! `GET /metrics`: the gateway's Prometheus text exposition (format 0.0.4).
//!
//! - `skiff_aws_requests_total{service,operation,status}`: every AWS API call and ECR registry
//!   request, by the HTTP status it got (errors included: a 400 is a request too).
//! - `skiff_aws_request_duration_seconds{service,operation}`: a latency histogram, from the request
//!   reaching the router to the response being built (body streaming not included).
//! - `process_resident_memory_bytes`, `process_start_time_seconds`: read from `/proc/self`.
//!
//! One mutex around a map: a request holds it for a map lookup and a few additions, far below the
//! cost of the request itself; a sharded or lock-free map can replace it if it ever shows in a profile.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::GatewayState;

/// Histogram bucket bounds in seconds (upper, inclusive), Prometheus' defaults with a finer low end:
/// most gateway calls finish in well under a millisecond.
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What a request was, filled in as the router learns it (`-` while unknown, e.g. an unsigned
/// request for no service).
#[derive(Clone, Debug)]
pub struct Labels {
    pub service: String,
    pub operation: String,
}

impl Default for Labels {
    fn default() -> Self {
        Self {
            service: "-".into(),
            operation: "-".into(),
        }
    }
}

#[derive(Default)]
struct OpStats {
    by_status: BTreeMap<u16, u64>,
    /// Non-cumulative counts per bucket; the last slot is `+Inf`.
    buckets: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

/// The gateway's request counters and latency histograms, shared by every request.
pub struct Metrics {
    ops: Mutex<BTreeMap<(String, String), OpStats>>,
    started: jiff::Timestamp,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            ops: Mutex::new(BTreeMap::new()),
            started: jiff::Timestamp::now(),
        }
    }
}

impl Metrics {
    pub fn record(&self, labels: &Labels, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        let mut ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        let s = ops
            .entry((labels.service.clone(), labels.operation.clone()))
            .or_default();
        *s.by_status.entry(status).or_default() += 1;
        s.buckets[slot] += 1;
        s.sum += secs;
        s.count += 1;
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        out.push_str("# HELP skiff_aws_requests_total AWS API and ECR registry requests by service, operation and HTTP status.\n");
        out.push_str("# TYPE skiff_aws_requests_total counter\n");
        for ((service, op), s) in ops.iter() {
            for (status, n) in &s.by_status {
                let _ = writeln!(
                    out,
                    "skiff_aws_requests_total{{service=\"{}\",operation=\"{}\",status=\"{status}\"}} {n}",
                    escape(service),
                    escape(op)
                );
            }
        }
        out.push_str("# HELP skiff_aws_request_duration_seconds Time from routing to response, by service and operation.\n");
        out.push_str("# TYPE skiff_aws_request_duration_seconds histogram\n");
        for ((service, op), s) in ops.iter() {
            let labels = format!(
                "service=\"{}\",operation=\"{}\"",
                escape(service),
                escape(op)
            );
            let mut cumulative = 0;
            for (i, n) in s.buckets.iter().enumerate() {
                cumulative += n;
                let le = BUCKETS
                    .get(i)
                    .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
                let _ = writeln!(
                    out,
                    "skiff_aws_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "skiff_aws_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "skiff_aws_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        drop(ops);
        if let Some(rss) = resident_bytes() {
            out.push_str("# HELP process_resident_memory_bytes Resident memory size in bytes.\n");
            out.push_str("# TYPE process_resident_memory_bytes gauge\n");
            let _ = writeln!(out, "process_resident_memory_bytes {rss}");
        }
        out.push_str(
            "# HELP process_start_time_seconds Start time of the gateway since the Unix epoch in seconds.\n",
        );
        out.push_str("# TYPE process_start_time_seconds gauge\n");
        let _ = writeln!(
            out,
            "process_start_time_seconds {}",
            self.started.as_second()
        );
        out
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `VmRSS` of `/proc/self/status` (kB) in bytes; `None` where there is no procfs.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Middleware around the ECR registry's routes: the same counters, service `ecr-registry`.
pub async fn time_registry(
    State(metrics): State<Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let labels = Labels {
        service: "ecr-registry".into(),
        operation: crate::ecr::registry::operation_name(req.method(), req.uri().path()).into(),
    };
    let started = Instant::now();
    let resp = next.run(req).await;
    metrics.record(&labels, resp.status().as_u16(), started.elapsed());
    resp
}

pub async fn metrics(State(state): State<GatewayState>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_cumulative_buckets() {
        let m = Metrics::default();
        let l = Labels {
            service: "ec2".into(),
            operation: "CreateVpc".into(),
        };
        m.record(&l, 200, Duration::from_micros(300));
        m.record(&l, 200, Duration::from_millis(3));
        m.record(&l, 400, Duration::from_secs(20));
        let text = m.render();
        assert!(text.contains(
            "skiff_aws_requests_total{service=\"ec2\",operation=\"CreateVpc\",status=\"200\"} 2\n"
        ));
        assert!(text.contains(
            "skiff_aws_requests_total{service=\"ec2\",operation=\"CreateVpc\",status=\"400\"} 1\n"
        ));
        let b = |le: &str| {
            format!(
                "skiff_aws_request_duration_seconds_bucket{{service=\"ec2\",operation=\"CreateVpc\",le=\"{le}\"}} "
            )
        };
        assert!(text.contains(&format!("{}1\n", b("0.0005"))));
        assert!(text.contains(&format!("{}1\n", b("0.001"))));
        assert!(text.contains(&format!("{}2\n", b("0.005"))));
        assert!(text.contains(&format!("{}2\n", b("10"))));
        assert!(text.contains(&format!("{}3\n", b("+Inf"))));
        assert!(text.contains(
            "skiff_aws_request_duration_seconds_count{service=\"ec2\",operation=\"CreateVpc\"} 3\n"
        ));
        assert!(text.contains("process_resident_memory_bytes "));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn resident_memory_is_read_from_procfs() {
        assert!(resident_bytes().is_some_and(|b| b > 1024 * 1024));
    }
}
