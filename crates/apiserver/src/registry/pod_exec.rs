//! `pods/exec`, `pods/attach` and `pods/portforward` on Skiff's simulated nodes. Upstream the API
//! server proxies these streams to the kubelet, which joins a running container's process. A
//! simulated node runs no process, so there is nothing to join: the request is refused with a
//! 400 `BadRequest` Status that says so, after the same checks upstream makes first (the pod
//! exists, the container is one of its own, the pod has a node), so the error a user sees names
//! the real reason.

use std::sync::Arc;

use serde_json::Value;
use skiff_k8s_core::status::ApiError;

use super::Registry;

/// The streaming pod subresources; none can work without a container process.
#[doc(alias = "ExecREST")]
#[doc(alias = "AttachREST")]
#[doc(alias = "PortForwardREST")]
pub const STREAMING_SUBRESOURCES: &[&str] = &["exec", "attach", "portforward"];

/// Why the stream cannot be opened, for a pod that exists.
pub fn refusal(pod: &Value, subresource: &str, container: Option<&str>) -> ApiError {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
    if subresource != "portforward" {
        // ExecLocation/AttachLocation: an explicit container must be the pod's own; without one a
        // single-container pod's container is meant (kubectl always names one).
        if let Some(c) = container.filter(|c| !c.is_empty()) {
            let known = ["containers", "initContainers", "ephemeralContainers"]
                .iter()
                .filter_map(|k| pod["spec"][k].as_array())
                .flatten()
                .any(|x| x["name"] == c);
            if !known {
                return ApiError::BadRequest(format!("container {c} is not valid for pod {name}"));
            }
        }
    }
    if node.is_empty() {
        return ApiError::BadRequest(format!("pod {name} does not have a host assigned"));
    }
    let what = match subresource {
        "exec" => "there is no process to exec into",
        "attach" => "there is no process to attach to",
        _ => "nothing listens on the pod's ports to forward to",
    };
    ApiError::BadRequest(format!(
        "pod {name} runs on simulated node {node}: Skiff's simulated kubelet starts no containers, \
         so {what}; `kubectl logs` shows the containers' lifecycle instead"
    ))
}

/// Answers `GET`/`POST …/pods/{name}/{exec,attach,portforward}`: always an error.
pub async fn refuse(
    reg: &Arc<Registry>,
    ns: &str,
    name: &str,
    subresource: &str,
    container: Option<&str>,
) -> ApiError {
    let Some(pods) = reg.kind("", "pods") else {
        return ApiError::not_found("", "pods", name);
    };
    match reg.get(&pods, Some(ns), name).await {
        Ok(pod) => refusal(&pod, subresource, container),
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(node: &str) -> Value {
        json!({"metadata": {"name": "web-0", "namespace": "default"},
               "spec": {"nodeName": node, "containers": [{"name": "nginx"}],
                        "initContainers": [{"name": "setup"}]}})
    }

    #[test]
    fn exec_is_refused_with_a_bad_request_that_explains_the_simulated_node() {
        let e = refusal(&pod("ip-10-0-1-23.ec2.internal"), "exec", Some("nginx"));
        assert_eq!(e.code(), 400);
        assert_eq!(e.reason(), "BadRequest");
        let m = e.message();
        assert!(m.starts_with("pod web-0 runs on simulated node ip-10-0-1-23.ec2.internal"));
        assert!(m.contains("no process to exec into"), "{m}");
        let pf = refusal(&pod("n1"), "portforward", None).message();
        assert!(
            pf.contains("so nothing listens on the pod's ports to forward to"),
            "{pf}"
        );
        assert!(
            refusal(&pod("n1"), "attach", Some("setup"))
                .message()
                .contains("attach to")
        );
    }

    #[test]
    fn upstream_checks_come_first() {
        assert_eq!(
            refusal(&pod("n1"), "exec", Some("redis")).message(),
            "container redis is not valid for pod web-0"
        );
        assert_eq!(
            refusal(&pod(""), "exec", Some("nginx")).message(),
            "pod web-0 does not have a host assigned"
        );
    }
}
