//! What the Endpoints and EndpointSlice controllers share (`pkg/controller/util/endpoint`,
//! `podutil.FindPort`): which Services they manage, which Pods back a Service, which port a
//! Service port lands on in a Pod, and which Services to look at again when a Pod changes.

use serde_json::{Value, json};
use skiff_k8s_core::client::ResourceRef;
use skiff_k8s_core::selector::Selector;

use crate::ownership::{self, is_deleting, str_at};
use crate::runtime::informer::{Cache, key_of};

pub fn services() -> ResourceRef {
    ResourceRef::new("", "v1", "services")
}

pub fn endpoints() -> ResourceRef {
    ResourceRef::new("", "v1", "endpoints")
}

#[doc(alias = "discovery.k8s.io/v1")]
pub fn endpoint_slices() -> ResourceRef {
    ResourceRef::new("discovery.k8s.io", "v1", "endpointslices")
}

pub fn nodes() -> ResourceRef {
    ResourceRef::new("", "v1", "nodes")
}

/// Label marking Endpoints/EndpointSlices of headless Services (`v1.IsHeadlessService`).
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// The Service's pod selector when a controller should compute its endpoints. Services without a
/// selector have hand-written endpoints (the `kubernetes` Service's are the API server's), and
/// ExternalName Services have none: both are left alone.
pub fn managed_selector(svc: &Value) -> Option<Selector> {
    if str_at(svc, "/spec/type") == "ExternalName"
        || (ownership::namespace(svc) == "default" && ownership::name(svc) == "kubernetes")
    {
        return None;
    }
    let sel = svc.pointer("/spec/selector")?.as_object()?;
    if sel.is_empty() {
        return None;
    }
    let labels: std::collections::BTreeMap<String, String> = sel
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    let text = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    Selector::parse(&text).ok()
}

pub fn is_headless(svc: &Value) -> bool {
    str_at(svc, "/spec/clusterIP") == "None"
}

pub fn publishes_not_ready(svc: &Value) -> bool {
    svc.pointer("/spec/publishNotReadyAddresses")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The Pod's IPs, primary first (`status.podIPs`, else `status.podIP`).
pub fn pod_ips(pod: &Value) -> Vec<String> {
    let ips: Vec<String> = pod
        .pointer("/status/podIPs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| p.get("ip").and_then(Value::as_str))
                .filter(|ip| !ip.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if !ips.is_empty() {
        return ips;
    }
    match str_at(pod, "/status/podIP") {
        "" => vec![],
        ip => vec![ip.to_string()],
    }
}

/// `IPv4` or `IPv6`.
pub fn family_of(ip: &str) -> &'static str {
    if ip.contains(':') { "IPv6" } else { "IPv4" }
}

/// `endpointutil.ShouldPodBeInEndpoints`: a Pod with an IP that has not finished; terminating
/// Pods only when asked (EndpointSlices keep them with `terminating: true`).
pub fn should_be_in_endpoints(pod: &Value, include_terminating: bool) -> bool {
    let phase = str_at(pod, "/status/phase");
    if phase == "Succeeded" || phase == "Failed" {
        return false;
    }
    if pod_ips(pod).is_empty() {
        return false;
    }
    include_terminating || !is_deleting(pod)
}

/// `ShouldSetHostname`: a Pod with `hostname` whose `subdomain` names this Service.
pub fn hostname_for(pod: &Value, svc: &Value) -> Option<String> {
    let h = str_at(pod, "/spec/hostname");
    (!h.is_empty()
        && str_at(pod, "/spec/subdomain") == ownership::name(svc)
        && ownership::namespace(pod) == ownership::namespace(svc))
    .then(|| h.to_string())
}

/// `podutil.FindPort`: a numeric `targetPort` as is (absent means `port`), a named one by the
/// container port of that name and protocol; `None` when the Pod has no such port.
pub fn resolve_port(svc_port: &Value, pod: &Value) -> Option<i64> {
    let protocol = svc_port
        .get("protocol")
        .and_then(Value::as_str)
        .unwrap_or("TCP");
    match svc_port.get("targetPort") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(name)) => {
            let containers = pod.pointer("/spec/containers").and_then(Value::as_array)?;
            containers
                .iter()
                .filter_map(|c| c.get("ports").and_then(Value::as_array))
                .flatten()
                .find(|p| {
                    p.get("name").and_then(Value::as_str) == Some(name.as_str())
                        && p.get("protocol").and_then(Value::as_str).unwrap_or("TCP") == protocol
                })
                .and_then(|p| p.get("containerPort").and_then(Value::as_i64))
        }
        _ => svc_port.get("port").and_then(Value::as_i64),
    }
}

/// The endpoint ports (`name`, `port`, `protocol`, `appProtocol`) the Service's ports resolve to
/// on `pod`, in Service port order; unresolvable ports are skipped, as upstream does.
pub fn endpoint_ports(svc: &Value, pod: &Value) -> Vec<Value> {
    let Some(ports) = svc.pointer("/spec/ports").and_then(Value::as_array) else {
        return vec![];
    };
    ports
        .iter()
        .filter_map(|sp| {
            let port = resolve_port(sp, pod)?;
            let mut p = json!({
                "name": sp.get("name").and_then(Value::as_str).unwrap_or(""),
                "port": port,
                "protocol": sp.get("protocol").and_then(Value::as_str).unwrap_or("TCP"),
            });
            if let Some(ap) = sp.get("appProtocol") {
                p["appProtocol"] = ap.clone();
            }
            Some(p)
        })
        .collect()
}

/// The Pods in the Service's namespace its selector matches, by name.
pub fn pods_for(pods: &Cache, svc: &Value, sel: &Selector) -> Vec<Value> {
    pods.list(Some(ownership::namespace(svc)))
        .into_iter()
        .filter(|p| sel.matches_object(p))
        .collect()
}

/// Keys of the managed Services whose selector matches `pod` now.
pub fn services_selecting(services: &Cache, pod: &Value) -> Vec<String> {
    services
        .list(Some(ownership::namespace(pod)))
        .into_iter()
        .filter(|s| managed_selector(s).is_some_and(|sel| sel.matches_object(pod)))
        .map(|s| key_of(&s))
        .collect()
}

/// Whether a `targetRef` (of an Endpoints address or a slice endpoint) names `pod`.
pub fn refers_to(target_ref: &Value, pod: &Value) -> bool {
    str_at(target_ref, "/kind") == "Pod" && str_at(target_ref, "/name") == ownership::name(pod)
}

/// The `targetRef` of a Pod's endpoint.
pub fn target_ref(pod: &Value) -> Value {
    json!({
        "kind": "Pod",
        "namespace": ownership::namespace(pod),
        "name": ownership::name(pod),
        "uid": ownership::uid(pod),
    })
}

/// Labels of a Service's endpoints objects: the Service's own plus the headless marker.
pub fn endpoint_labels(svc: &Value) -> serde_json::Map<String, Value> {
    let mut labels = svc
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if is_headless(svc) {
        labels.insert(HEADLESS_LABEL.into(), json!(""));
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"hostname": "h", "subdomain": "web", "containers": [
                {"name": "a", "ports": [{"name": "http", "containerPort": 8080},
                                        {"name": "dns", "containerPort": 53, "protocol": "UDP"}]}]},
            "status": {"phase": "Running", "podIP": "10.0.0.5"}})
    }

    #[test]
    fn named_target_ports_resolve_by_name_and_protocol() {
        let p = pod();
        assert_eq!(
            resolve_port(&json!({"port": 80, "targetPort": "http"}), &p),
            Some(8080)
        );
        assert_eq!(
            resolve_port(&json!({"port": 53, "targetPort": "dns"}), &p),
            None,
            "TCP port named dns does not exist"
        );
        assert_eq!(
            resolve_port(
                &json!({"port": 53, "targetPort": "dns", "protocol": "UDP"}),
                &p
            ),
            Some(53)
        );
        assert_eq!(
            resolve_port(&json!({"port": 80, "targetPort": 9000}), &p),
            Some(9000)
        );
        assert_eq!(resolve_port(&json!({"port": 80}), &p), Some(80));
    }

    #[test]
    fn managed_services_and_pod_membership() {
        let svc = json!({"metadata": {"name": "web", "namespace": "ns"},
            "spec": {"selector": {"app": "web"}, "clusterIP": "None"}});
        assert!(managed_selector(&svc).is_some());
        assert!(
            managed_selector(&json!({"metadata": {"name": "x"}, "spec": {"selector": {}}}))
                .is_none()
        );
        let kube = json!({"metadata": {"name": "kubernetes", "namespace": "default"},
            "spec": {"selector": {"a": "b"}}});
        assert!(managed_selector(&kube).is_none());
        assert_eq!(hostname_for(&pod(), &svc).as_deref(), Some("h"));
        assert_eq!(endpoint_labels(&svc)[HEADLESS_LABEL], "");
        let mut done = pod();
        done["status"]["phase"] = json!("Succeeded");
        assert!(!should_be_in_endpoints(&done, true));
        let mut gone = pod();
        gone["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert!(!should_be_in_endpoints(&gone, false));
        assert!(should_be_in_endpoints(&gone, true));
        assert_eq!(family_of("fd00::1"), "IPv6");
    }
}
