//! EKS control plane logging: what a cluster's `logging.clusterLogging` enables is shipped to
//! CloudWatch Logs, as EKS does, into the log group `/aws/eks/<cluster>/cluster` (made when missing)
//! with one stream per component: `kube-apiserver-<id>`, `kube-apiserver-audit-<id>`,
//! `authenticator-<id>`, `kube-controller-manager-<id>`, `kube-scheduler-<id>`.
//!
//! Sources: the API server's audit events (`audit`, and its failed or slow requests for `api`); the
//! EKS token authenticator logs each decision (`authenticator`); the controllers' and the
//! scheduler's Events are logged as those components log them, in klog form (`controllerManager`,
//! `scheduler`). Lines are queued without blocking the component (a full queue drops lines and counts
//! them, rather than slow authentication), batched and appended about once a second; a type that is
//! not enabled at flush time is dropped, so enabling a type ships from then on, as on EKS.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use skiff_controllers::runtime::informer::Change;
use skiff_k8s_core::client::{ApiClient, ResourceRef};
use skiff_store::Store;
use tokio::sync::{mpsc, watch};

use crate::cluster_dir::EksBinding;

/// The integration's identity (its log reads go through the in-process client).
pub const USER: &str = "system:serviceaccount:kube-system:eks-control-plane-logging";
const QUEUE: usize = 10_000;
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// EKS's log types (`logging.clusterLogging[].types`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogType {
    Api,
    Audit,
    Authenticator,
    ControllerManager,
    Scheduler,
}

impl LogType {
    pub fn eks_name(self) -> &'static str {
        match self {
            LogType::Api => "api",
            LogType::Audit => "audit",
            LogType::Authenticator => "authenticator",
            LogType::ControllerManager => "controllerManager",
            LogType::Scheduler => "scheduler",
        }
    }

    pub fn stream_prefix(self) -> &'static str {
        match self {
            LogType::Api => "kube-apiserver",
            LogType::Audit => "kube-apiserver-audit",
            LogType::Authenticator => "authenticator",
            LogType::ControllerManager => "kube-controller-manager",
            LogType::Scheduler => "kube-scheduler",
        }
    }
}

/// The log group EKS ships a cluster's logs to.
pub fn log_group(cluster: &str) -> String {
    format!("/aws/eks/{cluster}/cluster")
}

/// A stream name: the component's prefix and a stable 32-hex-digit id of this control plane.
pub fn stream_name(t: LogType, cluster_id: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cluster_id.as_bytes());
    let id: String = digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}-{id}", t.stream_prefix())
}

/// The log types a cluster record enables.
pub fn enabled_types(cluster: &Value) -> Vec<&str> {
    cluster["logging"]["clusterLogging"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["enabled"] == true)
        .flat_map(|entry| entry["types"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect()
}

/// A klog header: `I1123 23:20:01.123456       1 <file>] ` (severity, date, time, thread, source).
pub fn klog_line(at: jiff::Timestamp, warning: bool, source: &str, text: &str) -> String {
    let t = at.to_zoned(jiff::tz::TimeZone::UTC);
    format!(
        "{}{:02}{:02} {:02}:{:02}:{:02}.{:06}       1 {source}] {text}",
        if warning { 'W' } else { 'I' },
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.subsec_nanosecond() / 1000
    )
}

const ALL_TYPES: [LogType; 5] = [
    LogType::Api,
    LogType::Audit,
    LogType::Authenticator,
    LogType::ControllerManager,
    LogType::Scheduler,
];

fn bit(t: LogType) -> u8 {
    1 << (t as u8)
}

/// A component's handle for queueing log lines (cheap to clone).
#[derive(Clone)]
pub struct LogShipper {
    tx: mpsc::Sender<(LogType, i64, String)>,
    dropped: Arc<AtomicU64>,
    /// The enabled types as bits, refreshed by the flusher every second: lets a busy source (the
    /// audit of every request) skip building lines nobody ships.
    enabled: Arc<AtomicU8>,
}

impl LogShipper {
    /// Starts the flusher for one cluster; it ends once every handle is dropped (after a last flush).
    pub fn start(store: Arc<dyn Store>, binding: EksBinding, cluster_id: String) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let enabled = Arc::new(AtomicU8::new(0));
        tokio::spawn(flush_loop(store, binding, cluster_id, rx, enabled.clone()));
        Self {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            enabled,
        }
    }

    /// Whether the cluster ships `t` (as of the last refresh, at most a second ago).
    pub fn enabled(&self, t: LogType) -> bool {
        self.enabled.load(Ordering::Relaxed) & bit(t) != 0
    }

    pub fn log(&self, t: LogType, line: String) {
        let now = jiff::Timestamp::now().as_millisecond();
        if self.tx.try_send((t, now, line)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn flush_loop(
    store: Arc<dyn Store>,
    binding: EksBinding,
    cluster_id: String,
    mut rx: mpsc::Receiver<(LogType, i64, String)>,
    enabled_bits: Arc<AtomicU8>,
) {
    let key = format!(
        "/aws/{}/{}/eks/cluster/{}",
        binding.account, binding.region, binding.name
    );
    let ctx =
        crate::service_context::service_context(store.clone(), &binding.account, &binding.region);
    let group = log_group(&binding.name);
    let mut open = true;
    while open {
        let mut batch = Vec::new();
        let deadline = tokio::time::sleep(FLUSH_EVERY);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                item = rx.recv() => match item {
                    Some(i) => batch.push(i),
                    None => { open = false; break; }
                },
                _ = &mut deadline => break,
            }
        }
        let enabled: Vec<String> = match store.get(&key).await {
            Ok(Some(kv)) => serde_json::from_slice::<Value>(&kv.value)
                .map(|c| enabled_types(&c).into_iter().map(str::to_string).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let bits = ALL_TYPES
            .iter()
            .filter(|t| enabled.iter().any(|e| e == t.eks_name()))
            .fold(0u8, |acc, t| acc | bit(*t));
        enabled_bits.store(bits, Ordering::Relaxed);
        if batch.is_empty() {
            continue;
        }
        batch.sort_by_key(|(t, at, _)| (*t, *at));
        for t in ALL_TYPES {
            if !enabled.iter().any(|e| e == t.eks_name()) {
                continue;
            }
            let events: Vec<(i64, String)> = batch
                .iter()
                .filter(|(bt, _, _)| *bt == t)
                .map(|(_, at, line)| (*at, line.clone()))
                .collect();
            if events.is_empty() {
                continue;
            }
            let stream = stream_name(t, &cluster_id);
            if let Err(e) = skiff_aws::logs::events::append(&ctx, &group, &stream, events).await {
                tracing::warn!(cluster = %binding.name, %stream, error = %e, "control plane log lines not shipped");
            }
        }
    }
}

/// A request slower than this is logged in the `api` stream, as kube-apiserver traces requests
/// over 500 ms at its default verbosity.
const SLOW_REQUEST_MS: i64 = 500;

/// kube-apiserver's request line (`httplog.go`) for a failed (5xx) or slow request, from its audit
/// event; `None` for the ordinary ones (logged by kube-apiserver only at `-v=3`).
pub fn api_line(event: &Value) -> Option<String> {
    let at = |k: &str| {
        event[k]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    };
    let (received, done) = (at("requestReceivedTimestamp")?, at("stageTimestamp")?);
    let latency = done.as_millisecond() - received.as_millisecond();
    let code = event["responseStatus"]["code"].as_i64().unwrap_or(0);
    if code < 500 && latency < SLOW_REQUEST_MS {
        return None;
    }
    let text = format!(
        "\"HTTP\" verb={:?} URI={:?} latency=\"{latency}ms\" userAgent={:?} audit-ID={:?} resp={code}",
        event["verb"].as_str().unwrap_or_default().to_uppercase(),
        event["requestURI"].as_str().unwrap_or_default(),
        event["userAgent"].as_str().unwrap_or_default(),
        event["auditID"].as_str().unwrap_or_default(),
    );
    Some(klog_line(done, code >= 500, "httplog.go:134", &text))
}

/// The API server's audit events: one JSON line each in the `kube-apiserver-audit` stream, and
/// failed or slow requests as request lines in the `kube-apiserver` (`api`) stream.
impl skiff_apiserver::audit::AuditSink for LogShipper {
    fn enabled(&self) -> bool {
        LogShipper::enabled(self, LogType::Audit) || LogShipper::enabled(self, LogType::Api)
    }
    fn record(&self, event: Value) {
        if LogShipper::enabled(self, LogType::Api)
            && let Some(line) = api_line(&event)
        {
            self.log(LogType::Api, line);
        }
        if LogShipper::enabled(self, LogType::Audit) {
            self.log(LogType::Audit, event.to_string());
        }
    }
}

fn events() -> ResourceRef {
    ResourceRef::new("", "v1", "events")
}

/// The component whose log an Event belongs in: the scheduler's, or the controller manager's.
fn log_type_of(event: &Value) -> Option<LogType> {
    let component = event["source"]["component"]
        .as_str()
        .or_else(|| event["reportingComponent"].as_str())
        .unwrap_or_default();
    match component {
        "default-scheduler" => Some(LogType::Scheduler),
        c if c.ends_with("-controller") || c == "kube-controller-manager" => {
            Some(LogType::ControllerManager)
        }
        _ => None,
    }
}

/// An Event as the component's event broadcaster logs it.
pub fn event_line(event: &Value, at: jiff::Timestamp) -> String {
    let o = &event["involvedObject"];
    let object = match o["namespace"].as_str().filter(|n| !n.is_empty()) {
        Some(ns) => format!("{ns}/{}", o["name"].as_str().unwrap_or_default()),
        None => o["name"].as_str().unwrap_or_default().to_string(),
    };
    let text = format!(
        "\"Event occurred\" object={:?} fieldPath={:?} kind={:?} apiVersion={:?} type={:?} reason={:?} message={:?}",
        object,
        o["fieldPath"].as_str().unwrap_or_default(),
        o["kind"].as_str().unwrap_or_default(),
        o["apiVersion"].as_str().unwrap_or_default(),
        event["type"].as_str().unwrap_or("Normal"),
        event["reason"].as_str().unwrap_or_default(),
        event["message"].as_str().unwrap_or_default(),
    );
    klog_line(at, event["type"] == "Warning", "event.go:389", &text)
}

/// Ships the controllers' and scheduler's Events until `shutdown` flips.
pub async fn run(
    client: Arc<dyn ApiClient>,
    store: Arc<dyn Store>,
    binding: EksBinding,
    cluster_id: String,
    shutdown: watch::Receiver<bool>,
) {
    let shipper = LogShipper::start(store, binding, cluster_id);
    let mut informers = skiff_controllers::Informers::new(client);
    informers
        .get(events())
        .add_handler(Arc::new(move |c: &Change| {
            // A relist reports known Events again as Modified: only new ones are log lines.
            if let Change::Added(e) = c
                && let Some(t) = log_type_of(e)
            {
                shipper.log(t, event_line(e, jiff::Timestamp::now()));
            }
        }));
    let tasks = informers.start(shutdown).await;
    for t in tasks {
        let _ = t.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn failed_and_slow_requests_are_api_lines() {
        let e = |code: i64, end: &str| {
            json!({"verb": "list", "requestURI": "/api/v1/pods", "auditID": "a-1", "userAgent": "kubectl",
                "responseStatus": {"code": code}, "requestReceivedTimestamp": "2026-11-23T23:20:01.000000Z",
                "stageTimestamp": end})
        };
        assert_eq!(api_line(&e(200, "2026-11-23T23:20:01.010000Z")), None);
        let slow = api_line(&e(200, "2026-11-23T23:20:01.700000Z")).unwrap();
        assert!(slow.starts_with("I1123 23:20:01.700000"), "{slow}");
        assert!(
            slow.contains("latency=\"700ms\"") && slow.contains("verb=\"LIST\""),
            "{slow}"
        );
        let failed = api_line(&e(503, "2026-11-23T23:20:01.010000Z")).unwrap();
        assert!(
            failed.starts_with('W') && failed.contains("resp=503"),
            "{failed}"
        );
    }

    #[test]
    fn enabled_types_follow_the_record() {
        let c = json!({"logging": {"clusterLogging": [
            {"types": ["api", "audit"], "enabled": true},
            {"types": ["scheduler"], "enabled": false}]}});
        assert_eq!(enabled_types(&c), ["api", "audit"]);
        assert!(enabled_types(&json!({})).is_empty());
    }

    #[test]
    fn streams_are_stable_per_control_plane() {
        let a = stream_name(LogType::Audit, "prod");
        assert!(a.starts_with("kube-apiserver-audit-"));
        assert_eq!(a.len(), "kube-apiserver-audit-".len() + 32);
        assert_eq!(a, stream_name(LogType::Audit, "prod"));
        assert_ne!(a, stream_name(LogType::Audit, "dev"));
    }

    #[test]
    fn events_read_as_klog_lines() {
        let at: jiff::Timestamp = "2026-11-23T23:20:01.123456Z".parse().unwrap();
        let e = json!({"type": "Normal", "reason": "Scheduled",
            "message": "Successfully assigned default/web-1 to ip-10-0-1-5.ec2.internal",
            "source": {"component": "default-scheduler"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-1", "apiVersion": "v1"}});
        assert_eq!(log_type_of(&e), Some(LogType::Scheduler));
        assert_eq!(
            event_line(&e, at),
            "I1123 23:20:01.123456       1 event.go:389] \"Event occurred\" object=\"default/web-1\" fieldPath=\"\" kind=\"Pod\" apiVersion=\"v1\" type=\"Normal\" reason=\"Scheduled\" message=\"Successfully assigned default/web-1 to ip-10-0-1-5.ec2.internal\""
        );
        let rs = json!({"source": {"component": "replicaset-controller"}});
        assert_eq!(log_type_of(&rs), Some(LogType::ControllerManager));
        assert_eq!(
            log_type_of(&json!({"source": {"component": "kubelet"}})),
            None
        );
    }
}
