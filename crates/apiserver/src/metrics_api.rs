//! The resource metrics API (`metrics.k8s.io/v1beta1`, what metrics-server serves and `kubectl top`
//! reads): `PodMetrics` and `NodeMetrics`, computed on each read from the Pods and Nodes with the
//! simulated usage model of [`skiff_k8s_core::simulated_usage`], the same figures the HPA acts on.
//! Served through the not-stored resource hook ([`CreateOnlyResource`] with `get`/`list`).

use std::sync::Arc;

use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, ListOptions, ResourceRef};
use skiff_k8s_core::quantity::{Format, Quantity};
use skiff_k8s_core::simulated_usage::{container_usage, node_usage};
use skiff_k8s_core::status::ApiError;

use crate::client::RegistryClient;
use crate::registry::Registry;
use crate::registry::hooks::{CreateOnlyResource, HookError, HookRequest};
use crate::registry::strategy::ResourceInfo;

pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";
/// The window metrics-server reports samples over.
const WINDOW: &str = "20s";
/// Who the reads are made as (metrics-server's ServiceAccount).
const USER: &str = "system:serviceaccount:kube-system:metrics-server";

fn info(kind: &str, plural: &str, namespaced: bool) -> ResourceInfo {
    ResourceInfo {
        group: GROUP.into(),
        version: VERSION.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: String::new(),
        namespaced,
        short_names: Vec::new(),
        categories: Vec::new(),
        verbs: vec!["get".into(), "list".into()],
        has_status: false,
        scale: None,
    }
}

/// CPU as metrics-server writes it (nanocores, `123456789n`).
fn cpu(milli: i64) -> String {
    format!("{}n", milli.saturating_mul(1_000_000))
}

/// Memory as metrics-server writes it (kibibytes, `12345Ki`).
fn memory(milli_bytes: i64) -> String {
    let q = Quantity::from_milli(milli_bytes / 1000 / 1024 * 1024 * 1000, Format::BinarySi);
    q.to_string()
}

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_string()
}

fn hook(e: ApiError) -> HookError {
    HookError::Api(e)
}

fn pods() -> ResourceRef {
    ResourceRef::new("", "v1", "pods")
}

fn nodes() -> ResourceRef {
    ResourceRef::new("", "v1", "nodes")
}

/// `PodMetrics` of one Pod, `None` without a sample (not Running).
pub fn pod_metrics(pod: &Value) -> Option<Value> {
    let cpus = container_usage(pod, "cpu");
    if cpus.is_empty() {
        return None;
    }
    let mems = container_usage(pod, "memory");
    let containers: Vec<Value> = cpus
        .iter()
        .map(|(name, c)| {
            let m = mems.iter().find(|(n, _)| n == name).map_or(0, |(_, m)| *m);
            json!({"name": name, "usage": {"cpu": cpu(*c), "memory": memory(m)}})
        })
        .collect();
    let meta = &pod["metadata"];
    Some(json!({
        "kind": "PodMetrics",
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": {"name": meta["name"], "namespace": meta["namespace"],
            "creationTimestamp": now(), "labels": meta.get("labels").cloned().unwrap_or(json!({}))},
        "timestamp": now(),
        "window": WINDOW,
        "containers": containers,
    }))
}

/// `NodeMetrics` of one Node given the Pods bound to it.
pub fn node_metrics(node: &Value, pods: &[Value]) -> Value {
    let meta = &node["metadata"];
    json!({
        "kind": "NodeMetrics",
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": {"name": meta["name"], "creationTimestamp": now(),
            "labels": meta.get("labels").cloned().unwrap_or(json!({}))},
        "timestamp": now(),
        "window": WINDOW,
        "usage": {"cpu": cpu(node_usage(node, pods, "cpu")),
            "memory": memory(node_usage(node, pods, "memory"))},
    })
}

fn list_of(kind: &str, items: Vec<Value>) -> Value {
    json!({"kind": format!("{kind}List"), "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": {}, "items": items})
}

/// `pods.metrics.k8s.io`.
pub struct PodMetricsResource {
    info: ResourceInfo,
    client: RegistryClient,
}

impl PodMetricsResource {
    pub fn new(reg: Arc<Registry>) -> Self {
        Self {
            info: info("PodMetrics", "pods", true),
            client: RegistryClient::new(reg, USER),
        }
    }
}

#[async_trait::async_trait]
impl CreateOnlyResource for PodMetricsResource {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }
    fn verbs(&self) -> &'static [&'static str] {
        &["get", "list"]
    }
    async fn create(&self, _req: &HookRequest<'_>, _body: Value) -> Result<Value, HookError> {
        Err(HookError::Api(ApiError::MethodNotSupported {
            group: GROUP.into(),
            resource: "pods".into(),
            action: "create".into(),
        }))
    }
    async fn get(&self, req: &HookRequest<'_>, name: &str) -> Result<Value, HookError> {
        let ns = req.namespace.unwrap_or_default();
        let pod = self
            .client
            .get_opt(&pods().in_namespace(ns), name)
            .await
            .map_err(hook)?;
        pod.as_ref()
            .and_then(pod_metrics)
            .ok_or_else(|| HookError::NotFound {
                resource: "pods".into(),
                name: name.to_string(),
            })
    }
    async fn list(
        &self,
        req: &HookRequest<'_>,
        label_selector: Option<&str>,
    ) -> Result<Value, HookError> {
        let r = match req.namespace {
            Some(ns) => pods().in_namespace(ns),
            None => pods(),
        };
        let opts = ListOptions {
            label_selector: label_selector.map(str::to_string),
            ..Default::default()
        };
        let list = self.client.list(&r, &opts).await.map_err(hook)?;
        Ok(list_of(
            "PodMetrics",
            list.items.iter().filter_map(pod_metrics).collect(),
        ))
    }
}

/// `nodes.metrics.k8s.io`.
pub struct NodeMetricsResource {
    info: ResourceInfo,
    client: RegistryClient,
}

impl NodeMetricsResource {
    pub fn new(reg: Arc<Registry>) -> Self {
        Self {
            info: info("NodeMetrics", "nodes", false),
            client: RegistryClient::new(reg, USER),
        }
    }

    async fn pods_on(&self, node: &str) -> Result<Vec<Value>, HookError> {
        let opts = ListOptions {
            field_selector: Some(format!("spec.nodeName={node}")),
            ..Default::default()
        };
        Ok(self.client.list(&pods(), &opts).await.map_err(hook)?.items)
    }
}

#[async_trait::async_trait]
impl CreateOnlyResource for NodeMetricsResource {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }
    fn verbs(&self) -> &'static [&'static str] {
        &["get", "list"]
    }
    async fn create(&self, _req: &HookRequest<'_>, _body: Value) -> Result<Value, HookError> {
        Err(HookError::Api(ApiError::MethodNotSupported {
            group: GROUP.into(),
            resource: "nodes".into(),
            action: "create".into(),
        }))
    }
    async fn get(&self, _req: &HookRequest<'_>, name: &str) -> Result<Value, HookError> {
        let Some(node) = self.client.get_opt(&nodes(), name).await.map_err(hook)? else {
            return Err(HookError::NotFound {
                resource: "nodes".into(),
                name: name.to_string(),
            });
        };
        let pods = self.pods_on(name).await?;
        Ok(node_metrics(&node, &pods))
    }
    async fn list(
        &self,
        _req: &HookRequest<'_>,
        label_selector: Option<&str>,
    ) -> Result<Value, HookError> {
        let opts = ListOptions {
            label_selector: label_selector.map(str::to_string),
            ..Default::default()
        };
        let nodes = self.client.list(&nodes(), &opts).await.map_err(hook)?.items;
        let all_pods = self
            .client
            .list(&pods(), &ListOptions::default())
            .await
            .map_err(hook)?
            .items;
        let items = nodes
            .iter()
            .map(|n| {
                let name = n["metadata"]["name"].as_str().unwrap_or_default();
                let on: Vec<Value> = all_pods
                    .iter()
                    .filter(|p| p["spec"]["nodeName"] == name)
                    .cloned()
                    .collect();
                node_metrics(n, &on)
            })
            .collect();
        Ok(list_of("NodeMetrics", items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_written_as_metrics_server_writes_them() {
        assert_eq!(cpu(250), "250000000n");
        assert_eq!(memory(64 * 1024 * 1024 * 1000), "64Mi");
        assert_eq!(memory(1536 * 1000), "1Ki", "whole kibibytes");
        let pod = json!({"metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "status": {"phase": "Running"},
            "spec": {"containers": [{"name": "nginx", "resources": {"requests": {"cpu": "200m", "memory": "128Mi"}}}]}});
        let m = pod_metrics(&pod).unwrap();
        assert_eq!(m["containers"][0]["usage"]["cpu"], "100000000n");
        assert_eq!(m["containers"][0]["usage"]["memory"], "64Mi");
        assert_eq!(m["metadata"]["labels"]["app"], "web");
        let pending =
            json!({"status": {"phase": "Pending"}, "spec": {"containers": [{"name": "c"}]}});
        assert!(pod_metrics(&pending).is_none());
    }
}
