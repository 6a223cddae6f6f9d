//! kube-controller-manager's root CA publisher: every namespace has the ConfigMap `kube-root-ca.crt`
//! holding the cluster CA (`ca.crt`), which the projected token volume of every pod mounts. Made
//! when a namespace appears, put back when deleted, corrected when edited; a namespace being
//! deleted is left alone.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, ResourceRef, WriteOptions};
use skiff_k8s_core::status::ApiError;
use skiff_store::{ListOptions, Store};

/// The ConfigMap's name (`RootCACertConfigMapName`).
pub const CONFIG_MAP: &str = "kube-root-ca.crt";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

fn config_maps(ns: &str) -> ResourceRef {
    ResourceRef::new("", "v1", "configmaps").in_namespace(ns)
}

fn namespaces() -> ResourceRef {
    ResourceRef::new("", "v1", "namespaces")
}

/// The ConfigMap as the publisher writes it.
pub fn config_map(ns: &str, ca_pem: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": CONFIG_MAP, "namespace": ns,
            "annotations": {"kubernetes.io/description": DESCRIPTION}},
        "data": {"ca.crt": ca_pem}})
}

/// Makes or corrects the ConfigMap of one namespace.
pub async fn sync_namespace(
    client: &dyn ApiClient,
    ns: &str,
    ca_pem: &str,
) -> Result<(), ApiError> {
    let Some(namespace) = client.get_opt(&namespaces(), ns).await? else {
        return Ok(());
    };
    if namespace["metadata"]["deletionTimestamp"].is_string() {
        return Ok(());
    }
    let opts = WriteOptions {
        field_manager: Some("root-ca-cert-publisher".into()),
        dry_run: false,
    };
    match client.get_opt(&config_maps(ns), CONFIG_MAP).await? {
        None => match client
            .create(&config_maps(ns), config_map(ns, ca_pem), &opts)
            .await
        {
            // Raced another writer, or the namespace started terminating: nothing to do.
            Ok(_) | Err(ApiError::AlreadyExists { .. }) | Err(ApiError::Forbidden { .. }) => Ok(()),
            Err(e) => Err(e),
        },
        Some(mut cm)
            if cm["data"]["ca.crt"] != ca_pem
                || cm["data"].as_object().map_or(0, |d| d.len()) != 1 =>
        {
            cm["data"] = json!({"ca.crt": ca_pem});
            match client.update(&config_maps(ns), cm, &opts).await {
                Ok(_) | Err(ApiError::Conflict { .. }) | Err(ApiError::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Some(_) => Ok(()),
    }
}

/// The namespace a store key of a namespace or of a `kube-root-ca.crt` ConfigMap names.
fn namespace_of(key: &str, ns_prefix: &str, cm_prefix: &str) -> Option<String> {
    if let Some(ns) = key.strip_prefix(ns_prefix) {
        return Some(ns.to_string());
    }
    let (ns, name) = key.strip_prefix(cm_prefix)?.split_once('/')?;
    (name == CONFIG_MAP).then(|| ns.to_string())
}

/// Runs until the task is dropped; relists after a watch is cut off.
pub async fn run_root_ca_publisher(
    store: Arc<dyn Store>,
    client: Arc<dyn ApiClient>,
    cluster_id: String,
    ca_pem: String,
) {
    let ns_prefix = format!("/k8s/{cluster_id}/core/namespaces/");
    let cm_prefix = format!("/k8s/{cluster_id}/core/configmaps/");
    loop {
        let list = match store.list(&ns_prefix, ListOptions::default()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "root CA publisher list failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for kv in &list.items {
            let ns = &kv.key[ns_prefix.len()..];
            if let Err(e) = sync_namespace(&*client, ns, &ca_pem).await {
                tracing::warn!(error = %e, namespace = ns, "root CA publisher sync failed");
            }
        }
        let (Ok(wn), Ok(wc)) = (
            store.watch(&ns_prefix, list.revision).await,
            store.watch(&cm_prefix, list.revision).await,
        ) else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let mut events = futures::stream::select(wn, wc);
        while let Some(ev) = events.next().await {
            let Ok(ev) = ev else { break };
            let Some(ns) = namespace_of(&ev.kv.key, &ns_prefix, &cm_prefix) else {
                continue;
            };
            if let Err(e) = sync_namespace(&*client, &ns, &ca_pem).await {
                tracing::warn!(error = %e, namespace = %ns, "root CA publisher sync failed");
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_namespace() {
        let (n, c) = ("/k8s/c/core/namespaces/", "/k8s/c/core/configmaps/");
        assert_eq!(
            namespace_of("/k8s/c/core/namespaces/shop", n, c).as_deref(),
            Some("shop")
        );
        assert_eq!(
            namespace_of("/k8s/c/core/configmaps/shop/kube-root-ca.crt", n, c).as_deref(),
            Some("shop")
        );
        assert_eq!(
            namespace_of("/k8s/c/core/configmaps/shop/other", n, c),
            None
        );
    }
}
