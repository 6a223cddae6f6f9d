//! Resource usage of simulated Pods and Nodes: one model for every reader (the HPA controller and
//! the `metrics.k8s.io` API behind `kubectl top`), since no kubelet measures anything in Skiff.
//!
//! A Pod's usage of `cpu`/`memory` is its annotation `skiff.dev/cpu-usage` / `skiff.dev/memory-usage`
//! when set (any quantity), else half its requests; a Pod that is not Running has no sample (as
//! metrics-server has none). Container figures split the Pod's usage in proportion to the
//! containers' requests (evenly when none request the resource). A Node's usage is the sum over its
//! Running Pods plus what the node's own daemons use ([`NODE_OVERHEAD`]), or the Node's annotation.
//! `docs/hpa.md` documents this for users.

use serde_json::Value;

use crate::quantity::Quantity;

pub const CPU_USAGE_ANNOTATION: &str = "skiff.dev/cpu-usage";
pub const MEMORY_USAGE_ANNOTATION: &str = "skiff.dev/memory-usage";

/// What kubelet, the container runtime and the OS use on every node: (cpu milli-cores, memory
/// milli-bytes), the order of magnitude metrics-server reports for an idle EKS node.
pub const NODE_OVERHEAD: (i64, i64) = (40, 380 * 1024 * 1024 * 1000);

fn annotation(resource: &str) -> Option<&'static str> {
    match resource {
        "cpu" => Some(CPU_USAGE_ANNOTATION),
        "memory" => Some(MEMORY_USAGE_ANNOTATION),
        _ => None,
    }
}

fn milli(v: &Value) -> Option<i64> {
    let text = v
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string());
    Quantity::parse(&text).ok().map(|q| q.milli_value())
}

fn annotated(obj: &Value, resource: &str) -> Option<i64> {
    let key = annotation(resource)?;
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        .and_then(|v| Quantity::parse(v).ok())
        .map(|q| q.milli_value())
}

fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// A container's request of `resource` in milli-units (0 when it asks for none).
fn request(container: &Value, resource: &str) -> i64 {
    container
        .pointer(&format!("/resources/requests/{resource}"))
        .and_then(milli)
        .unwrap_or(0)
}

pub fn is_running(pod: &Value) -> bool {
    pod.pointer("/status/phase").and_then(Value::as_str) == Some("Running")
}

/// The Pod's usage of `resource` in milli-units, `None` when it has no sample.
pub fn pod_usage(pod: &Value, resource: &str) -> Option<i64> {
    if !is_running(pod) {
        return None;
    }
    annotation(resource)?;
    if let Some(v) = annotated(pod, resource) {
        return Some(v);
    }
    Some(containers(pod).map(|c| request(c, resource)).sum::<i64>() / 2)
}

/// Per container `(name, usage in milli-units)` of `resource`; empty without a sample.
pub fn container_usage(pod: &Value, resource: &str) -> Vec<(String, i64)> {
    let Some(total) = pod_usage(pod, resource) else {
        return Vec::new();
    };
    let cs: Vec<(&str, i64)> = containers(pod)
        .map(|c| {
            (
                c.get("name").and_then(Value::as_str).unwrap_or_default(),
                request(c, resource),
            )
        })
        .collect();
    if cs.is_empty() {
        return Vec::new();
    }
    let requested: i64 = cs.iter().map(|(_, r)| r).sum();
    let n = cs.len() as i64;
    let mut out: Vec<(String, i64)> = cs
        .iter()
        .map(|(name, r)| {
            let share = if requested > 0 {
                (total as i128 * *r as i128 / requested as i128) as i64
            } else {
                total / n
            };
            (name.to_string(), share)
        })
        .collect();
    // Rounding leftovers go to the first container so the parts add up to the Pod's figure.
    let assigned: i64 = out.iter().map(|(_, v)| v).sum();
    out[0].1 += total - assigned;
    out
}

/// The Node's usage of `resource` in milli-units given the Pods bound to it.
pub fn node_usage<'a>(
    node: &Value,
    pods: impl IntoIterator<Item = &'a Value>,
    resource: &str,
) -> i64 {
    if let Some(v) = annotated(node, resource) {
        return v;
    }
    let overhead = match resource {
        "cpu" => NODE_OVERHEAD.0,
        "memory" => NODE_OVERHEAD.1,
        _ => 0,
    };
    overhead
        + pods
            .into_iter()
            .filter_map(|p| pod_usage(p, resource))
            .sum::<i64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(annotations: Value, phase: &str) -> Value {
        json!({"metadata": {"annotations": annotations}, "status": {"phase": phase},
            "spec": {"containers": [
                {"name": "app", "resources": {"requests": {"cpu": "300m", "memory": "128Mi"}}},
                {"name": "sidecar", "resources": {"requests": {"cpu": "100m"}}}]}})
    }

    #[test]
    fn half_the_requests_or_the_annotation() {
        let p = pod(json!({}), "Running");
        assert_eq!(pod_usage(&p, "cpu"), Some(200));
        assert_eq!(pod_usage(&p, "memory"), Some(64 * 1024 * 1024 * 1000));
        let hot = pod(json!({"skiff.dev/cpu-usage": "1"}), "Running");
        assert_eq!(pod_usage(&hot, "cpu"), Some(1000));
        assert_eq!(pod_usage(&pod(json!({}), "Pending"), "cpu"), None);
        assert_eq!(pod_usage(&p, "nvidia.com/gpu"), None);
    }

    #[test]
    fn containers_share_in_proportion_to_requests() {
        let hot = pod(json!({"skiff.dev/cpu-usage": "1"}), "Running");
        assert_eq!(
            container_usage(&hot, "cpu"),
            [("app".to_string(), 750), ("sidecar".to_string(), 250)]
        );
        let mem = container_usage(
            &pod(json!({"skiff.dev/memory-usage": "100Mi"}), "Running"),
            "memory",
        );
        assert_eq!(mem[1].1, 0, "the sidecar requests no memory");
        assert_eq!(mem[0].1, 100 * 1024 * 1024 * 1000);
    }

    #[test]
    fn nodes_add_their_pods_to_their_overhead() {
        let pods = [pod(json!({}), "Running"), pod(json!({}), "Succeeded")];
        assert_eq!(node_usage(&json!({}), &pods, "cpu"), NODE_OVERHEAD.0 + 200);
        let pinned = json!({"metadata": {"annotations": {"skiff.dev/cpu-usage": "3"}}});
        assert_eq!(node_usage(&pinned, &pods, "cpu"), 3000);
    }
}
