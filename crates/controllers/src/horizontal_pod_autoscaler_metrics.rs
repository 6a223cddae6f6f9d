//! Where the HPA reads Pod resource usage, and the replica arithmetic over it
//! (`pkg/controller/podautoscaler/replica_calculator.go`).
//!
//! No kubelet reports real usage in Skiff, so [`SimulatedMetrics`] reads it from the Pod: the
//! annotations `skiff.dev/cpu-usage` (`250m`) and `skiff.dev/memory-usage` (`64Mi`), defaulting to
//! half the Pod's requests. A Pod not Running has no sample, as metrics-server has none for it.
//! [`MetricsSource`] is the seam a real metrics pipeline (metrics.k8s.io) replaces it through.
//! `docs/hpa.md` documents this for users.

use std::collections::BTreeMap;

use serde_json::Value;
use skiff_k8s_core::quantity::Quantity;

use crate::ownership::{self, is_deleting, str_at};
use crate::replicaset::is_pod_ready;

pub use skiff_k8s_core::simulated_usage::{CPU_USAGE_ANNOTATION, MEMORY_USAGE_ANNOTATION};

/// `--horizontal-pod-autoscaler-tolerance`: ratios within 10 % of 1 change nothing.
pub const TOLERANCE: f64 = 0.1;

/// A source of Pod resource usage (metrics.k8s.io `PodMetrics`, summed over containers).
pub trait MetricsSource: Send + Sync {
    /// Usage of `resource` (`cpu`, `memory`) by `pod` in milli-units, `None` without a sample.
    fn pod_usage(&self, pod: &Value, resource: &str) -> Option<i64>;
}

/// Usage from the Pod's `skiff.dev/<resource>-usage` annotation, else half its requests.
pub struct SimulatedMetrics;

/// The sum of the Pod's container requests for `resource` in milli-units; `Err(container)` names
/// the first container without one.
pub fn pod_requests(pod: &Value, resource: &str) -> Result<i64, String> {
    let mut total = 0i64;
    for c in pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let q = c
            .pointer(&format!("/resources/requests/{resource}"))
            .and_then(|v| {
                let text = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                Quantity::parse(&text).ok()
            });
        match q {
            Some(q) => total = total.saturating_add(q.milli_value()),
            None => return Err(str_at(c, "/name").to_string()),
        }
    }
    Ok(total)
}

impl MetricsSource for SimulatedMetrics {
    fn pod_usage(&self, pod: &Value, resource: &str) -> Option<i64> {
        // One model for every reader: the same figures `kubectl top` shows.
        skiff_k8s_core::simulated_usage::pod_usage(pod, resource)
    }
}

/// A Resource metric's target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// Percent of the Pods' requests.
    Utilization(i64),
    /// Milli-units per Pod.
    AverageValue(i64),
}

/// What one metric proposes.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposal {
    pub replicas: i64,
    /// Utilization in percent of requests (Utilization targets).
    pub utilization: Option<i64>,
    /// Average usage per Pod, milli-units.
    pub average: i64,
}

/// `GetResourceReplicas` / `GetRawResourceReplicas`: the replica count that brings the Pods'
/// usage to the target. Pending Pods and (for CPU) unready ones are left out, then, when usage
/// moves, filled in conservatively (missing Pods at the target when scaling down, at zero when
/// scaling up) so that they cannot cause a flip or an overshoot.
pub fn resource_replicas(
    source: &dyn MetricsSource,
    pods: &[Value],
    resource: &str,
    target: Target,
    current: i64,
) -> Result<Proposal, String> {
    let mut metrics: BTreeMap<String, i64> = BTreeMap::new();
    let mut requests: BTreeMap<String, i64> = BTreeMap::new();
    let mut unready = Vec::new();
    let mut missing = Vec::new();
    for p in pods {
        let name = ownership::name(p).to_string();
        if is_deleting(p) || str_at(p, "/status/phase") == "Failed" {
            continue;
        }
        if let Target::Utilization(_) = target {
            let req = pod_requests(p, resource).map_err(|c| {
                format!("missing request for {resource} in container {c} of Pod {name}")
            })?;
            requests.insert(name.clone(), req);
        }
        if str_at(p, "/status/phase") == "Pending" {
            unready.push(name);
            continue;
        }
        let Some(usage) = source.pod_usage(p, resource) else {
            missing.push(name);
            continue;
        };
        if resource == "cpu" && !is_pod_ready(p) {
            unready.push(name);
            continue;
        }
        metrics.insert(name, usage);
    }
    if metrics.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let ratio_of = |m: &BTreeMap<String, i64>| -> Result<(f64, Option<i64>, i64), String> {
        let usage: i64 = m.values().sum();
        let average = usage / m.len().max(1) as i64;
        match target {
            Target::Utilization(t) => {
                let req: i64 = m.keys().filter_map(|k| requests.get(k)).sum();
                if req == 0 {
                    return Err("no metrics returned matched known pods".to_string());
                }
                let util = usage * 100 / req;
                Ok((util as f64 / t as f64, Some(util), average))
            }
            Target::AverageValue(t) => {
                Ok((usage as f64 / (t as f64 * m.len() as f64), None, average))
            }
        }
    };
    let (ratio, utilization, average) = ratio_of(&metrics)?;
    let proposal = |replicas| Proposal {
        replicas,
        utilization,
        average,
    };
    let rebalance_unready = !unready.is_empty() && ratio > 1.0;
    if !rebalance_unready && missing.is_empty() {
        if (1.0 - ratio).abs() <= TOLERANCE {
            return Ok(proposal(current));
        }
        return Ok(proposal((ratio * metrics.len() as f64).ceil() as i64));
    }
    let mut filled = metrics.clone();
    for name in &missing {
        let v = if ratio < 1.0 {
            match target {
                Target::Utilization(t) => requests.get(name).copied().unwrap_or(0) * t / 100,
                Target::AverageValue(t) => t,
            }
        } else {
            0
        };
        filled.insert(name.clone(), v);
    }
    if rebalance_unready {
        for name in &unready {
            filled.insert(name.clone(), 0);
        }
    }
    let (new_ratio, _, _) = ratio_of(&filled)?;
    if (1.0 - new_ratio).abs() <= TOLERANCE
        || (ratio < 1.0 && new_ratio > 1.0)
        || (ratio > 1.0 && new_ratio < 1.0)
    {
        return Ok(proposal(current));
    }
    let replicas = (new_ratio * filled.len() as f64).ceil() as i64;
    if (replicas > current && ratio < 1.0) || (replicas < current && ratio > 1.0) {
        return Ok(proposal(current));
    }
    Ok(proposal(replicas))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, cpu_req: &str, usage: Option<&str>, phase: &str, ready: bool) -> Value {
        let mut p = json!({"metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu_req, "memory": "128Mi"}}}]},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}});
        if let Some(u) = usage {
            p["metadata"]["annotations"] = json!({CPU_USAGE_ANNOTATION: u});
        }
        p
    }

    #[test]
    fn simulated_usage_defaults_to_half_the_requests() {
        let m = SimulatedMetrics;
        assert_eq!(
            m.pod_usage(&pod("a", "500m", None, "Running", true), "cpu"),
            Some(250)
        );
        assert_eq!(
            m.pod_usage(&pod("a", "500m", Some("400m"), "Running", true), "cpu"),
            Some(400)
        );
        assert_eq!(
            m.pod_usage(&pod("a", "500m", None, "Running", true), "memory"),
            Some(64 * 1024 * 1024 * 1000)
        );
        assert_eq!(
            m.pod_usage(&pod("a", "500m", None, "Pending", false), "cpu"),
            None
        );
    }

    #[test]
    fn utilization_scales_to_the_target_within_tolerance() {
        let m = SimulatedMetrics;
        let hot = [
            pod("a", "100m", Some("200m"), "Running", true),
            pod("b", "100m", Some("200m"), "Running", true),
        ];
        // 200 % of requests against 50 %: four times as many.
        let p = resource_replicas(&m, &hot, "cpu", Target::Utilization(50), 2).unwrap();
        assert_eq!((p.replicas, p.utilization, p.average), (8, Some(200), 200));
        // 52 % against 50 %: within tolerance, stay.
        let near = [pod("a", "100m", Some("52m"), "Running", true)];
        let p = resource_replicas(&m, &near, "cpu", Target::Utilization(50), 3).unwrap();
        assert_eq!(p.replicas, 3);
        let p = resource_replicas(&m, &hot, "cpu", Target::AverageValue(100), 2).unwrap();
        assert_eq!(p.replicas, 4);
        let no_req = [
            json!({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Running"}}),
        ];
        assert_eq!(
            resource_replicas(&m, &no_req, "cpu", Target::Utilization(50), 1).unwrap_err(),
            "missing request for cpu in container c of Pod x"
        );
    }

    #[test]
    fn unready_and_pending_pods_damp_scale_up() {
        let m = SimulatedMetrics;
        let pods = [
            pod("a", "100m", Some("150m"), "Running", true),
            pod("b", "100m", None, "Pending", false),
            pod("c", "100m", Some("900m"), "Running", false),
        ];
        // Only "a" counts at 150 %; the two others are taken at zero: 150/300 → 0.5 → would
        // flip to a scale-down, so nothing changes.
        let p = resource_replicas(&m, &pods, "cpu", Target::Utilization(100), 3).unwrap();
        assert_eq!(p.replicas, 3);
        assert_eq!(p.utilization, Some(150));
    }
}
