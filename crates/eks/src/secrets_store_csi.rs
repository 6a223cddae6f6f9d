//! The Secrets Store CSI driver (`secrets-store.csi.k8s.io`) with its AWS provider, as EKS users
//! install them (add-on or Helm chart with `syncSecret.enabled=true`): Secrets Manager values mounted
//! into pods through a `SecretProviderClass`, and optionally synced to Kubernetes Secrets.
//!
//! What the node plugin does on a kubelet's `NodePublishVolume`, done here once a pod using a
//! `csi` volume of the driver is bound to a node: resolve the pod's `SecretProviderClass`
//! (`volumeAttributes.secretProviderClass`, same namespace, `provider: aws`), fetch its objects from
//! Secrets Manager ([`crate::secrets_store_csi_provider`]), record a `SecretProviderClassPodStatus`
//! `<pod>-<namespace>-<volume>` (owned by the pod; `objects` with their versions, `mounted: true`),
//! and write each `secretObjects` entry as a Secret labelled `secrets-store.csi.k8s.io/managed=true`
//! owned by that pod status (the driver's secret sync controller). No file is written: Skiff runs no
//! containers. A failure (missing class, missing secret, denied permission) is the kubelet's
//! Warning `FailedMount` event in the driver's words, retried with the kubelet's back-off. The
//! simulated kubelet does not yet wait for the mount, so the pod still goes Running (see
//! `docs/secrets.md`). Rotation is not polled: a mount happens once per pod volume.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use futures::StreamExt;
use serde_json::{Value, json};
use skiff_controllers::runtime::SystemClock;
use skiff_controllers::runtime::events::{EventRecorder, EventType};
use skiff_k8s_core::client::{
    ApiClient, ListOptions, ResourceRef, WatchEvent, WatchOptions, WriteOptions,
};
use skiff_k8s_core::status::ApiError;
use skiff_store::Store;
use tokio::sync::watch;

use crate::cluster_dir::EksBinding;
use crate::secrets_store_csi_provider::{self as provider, MountedFile};

/// The CSI driver name pods' `csi` volumes name.
pub const DRIVER_NAME: &str = "secrets-store.csi.k8s.io";
/// The CRDs' API group.
pub const GROUP: &str = "secrets-store.csi.x-k8s.io";
/// The driver's ServiceAccount (the chart's `secrets-store-csi-driver` in kube-system).
pub const CONTROLLER_USER: &str = "system:serviceaccount:kube-system:secrets-store-csi-driver";
/// The label the driver puts on Secrets it syncs.
pub const MANAGED_LABEL: &str = "secrets-store.csi.k8s.io/managed";
/// The label naming the node on a pod status.
pub const NODE_LABEL: &str = "secrets-store.csi.k8s.io/node-name";
/// The kubelet's volume-mount retry back-off: first and longest wait.
const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(120);

fn crds() -> ResourceRef {
    ResourceRef::new("apiextensions.k8s.io", "v1", "customresourcedefinitions")
}

fn pods() -> ResourceRef {
    ResourceRef::new("", "v1", "pods")
}

fn classes(ns: &str) -> ResourceRef {
    ResourceRef::new(GROUP, "v1", "secretproviderclasses").in_namespace(ns)
}

fn pod_statuses(ns: &str) -> ResourceRef {
    ResourceRef::new(GROUP, "v1", "secretproviderclasspodstatuses").in_namespace(ns)
}

fn secrets(ns: &str) -> ResourceRef {
    ResourceRef::new("", "v1", "secrets").in_namespace(ns)
}

/// A namespaced CRD of the group served at v1 (and v1alpha1, as the chart does), whose `spec` and
/// `status` keep what they are given (the chart's schemas are wide open in the same places).
fn crd(kind: &str, plural: &str, spec_props: Value, status_props: Value) -> Value {
    let schema = json!({"openAPIV3Schema": {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": spec_props,
                     "x-kubernetes-preserve-unknown-fields": true},
            "status": {"type": "object", "properties": status_props,
                       "x-kubernetes-preserve-unknown-fields": true},
        }
    }});
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{GROUP}"),
                     "labels": {"app.kubernetes.io/name": "secrets-store-csi-driver"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": kind, "listKind": format!("{kind}List"), "plural": plural,
                      "singular": kind.to_lowercase()},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "schema": schema},
                {"name": "v1alpha1", "served": true, "storage": false, "deprecated": true,
                 "schema": schema},
            ]
        }
    })
}

/// The `SecretProviderClass` CRD.
pub fn secret_provider_class_crd() -> Value {
    crd(
        "SecretProviderClass",
        "secretproviderclasses",
        json!({
            "provider": {"type": "string"},
            "parameters": {"type": "object", "additionalProperties": {"type": "string"}},
            "secretObjects": {"type": "array", "items": {
                "type": "object", "x-kubernetes-preserve-unknown-fields": true}},
        }),
        json!({}),
    )
}

/// The `SecretProviderClassPodStatus` CRD.
pub fn secret_provider_class_pod_status_crd() -> Value {
    crd(
        "SecretProviderClassPodStatus",
        "secretproviderclasspodstatuses",
        json!({}),
        json!({
            "podName": {"type": "string"},
            "secretProviderClassName": {"type": "string"},
            "mounted": {"type": "boolean"},
            "targetPath": {"type": "string"},
            "objects": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "string"}, "version": {"type": "string"}}}},
        }),
    )
}

/// Installs both CRDs; existing ones are left as they are (idempotent).
pub async fn ensure_crds(client: &dyn ApiClient) -> Result<(), ApiError> {
    for crd in [
        secret_provider_class_crd(),
        secret_provider_class_pod_status_crd(),
    ] {
        let opts = WriteOptions {
            field_manager: Some("secrets-store-csi-driver".into()),
            dry_run: false,
        };
        match client.create(&crds(), crd, &opts).await {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The driver's volumes of a pod: (volume name, SecretProviderClass name or "").
pub fn csi_volumes(pod: &Value) -> Vec<(String, String)> {
    pod["spec"]["volumes"]
        .as_array()
        .map(|vols| {
            vols.iter()
                .filter(|v| v["csi"]["driver"].as_str() == Some(DRIVER_NAME))
                .map(|v| {
                    (
                        v["name"].as_str().unwrap_or_default().to_string(),
                        v["csi"]["volumeAttributes"]["secretProviderClass"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A pod the driver should act on: bound, not finished, not being deleted, with one of its volumes.
fn wants_mount(pod: &Value) -> bool {
    pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty())
        && pod["metadata"]["deletionTimestamp"].is_null()
        && !matches!(
            pod["status"]["phase"].as_str(),
            Some("Succeeded") | Some("Failed")
        )
        && !csi_volumes(pod).is_empty()
}

/// What `NodePublishVolume` failed with, for the FailedMount event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountFailure {
    pub volume: String,
    pub message: String,
}

impl MountFailure {
    /// The kubelet's event message for it.
    pub fn event_message(&self, pod: &Value) -> String {
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        format!(
            "MountVolume.SetUp failed for volume \"{}\" : rpc error: code = Unknown desc = failed to mount secrets store objects for pod {ns}/{name}, err: rpc error: code = Unknown desc = {}",
            self.volume, self.message
        )
    }
}

/// The role the provider acts as: the pod's IRSA role, else its node's nodegroup role.
async fn pod_role(
    client: &dyn ApiClient,
    store: &Arc<dyn Store>,
    binding: &EksBinding,
    pod: &Value,
) -> Result<String, String> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let sa = pod["spec"]["serviceAccountName"]
        .as_str()
        .unwrap_or("default");
    let sa_obj = client
        .get_opt(
            &ResourceRef::new("", "v1", "serviceaccounts").in_namespace(ns),
            sa,
        )
        .await
        .map_err(|e| e.message())?;
    if let Some(role) = sa_obj
        .as_ref()
        .and_then(|s| s["metadata"]["annotations"][crate::irsa::ROLE_ARN_ANNOTATION].as_str())
    {
        return Ok(role.to_string());
    }
    let node_name = pod["spec"]["nodeName"].as_str().unwrap_or_default();
    let node = client
        .get_opt(&ResourceRef::new("", "v1", "nodes"), node_name)
        .await
        .map_err(|e| e.message())?;
    let nodegroup = node
        .as_ref()
        .and_then(|n| n["metadata"]["labels"]["eks.amazonaws.com/nodegroup"].as_str())
        .map(str::to_string);
    if let Some(ng) = nodegroup {
        let ctx = crate::service_context::service_context(
            store.clone(),
            &binding.account,
            &binding.region,
        );
        let out = skiff_aws::eks::dispatch(
            &ctx,
            "DescribeNodegroup",
            json!({"clusterName": binding.name, "nodegroupName": ng}),
        )
        .await
        .map_err(|e| e.message)?;
        if let Some(role) = out["nodegroup"]["nodeRole"].as_str() {
            return Ok(role.to_string());
        }
    }
    Err(format!(
        "An IAM role must be associated with service account {sa} (namespace: {ns})"
    ))
}

/// Mounts every driver volume of `pod` not mounted yet. `Ok(())` once all are.
pub async fn mount_pod(
    client: &dyn ApiClient,
    store: &Arc<dyn Store>,
    binding: &EksBinding,
    pod: &Value,
) -> Result<(), MountFailure> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    for (volume, class_name) in csi_volumes(pod) {
        let fail = |message: String| MountFailure {
            volume: volume.clone(),
            message,
        };
        let status_name = format!("{name}-{ns}-{volume}");
        if client
            .get_opt(&pod_statuses(ns), &status_name)
            .await
            .map_err(|e| fail(e.message()))?
            .is_some()
        {
            continue;
        }
        if class_name.is_empty() {
            return Err(fail("secretProviderClass is not set".into()));
        }
        let class = client
            .get_opt(&classes(ns), &class_name)
            .await
            .map_err(|e| fail(e.message()))?
            .ok_or_else(|| {
                fail(format!(
                    "failed to get secretproviderclass {ns}/{class_name}, error: secretproviderclasses.{GROUP} \"{class_name}\" not found"
                ))
            })?;
        let provider_name = class["spec"]["provider"].as_str().unwrap_or_default();
        if provider_name != "aws" {
            return Err(fail(format!(
                "failed to mount objects, error: provider not found: provider \"{provider_name}\""
            )));
        }
        let params = &class["spec"]["parameters"];
        let objects = provider::parse_objects(params["objects"].as_str().unwrap_or_default())
            .map_err(fail)?;
        let region = params["region"]
            .as_str()
            .filter(|r| !r.is_empty())
            .unwrap_or(&binding.region);
        let role = pod_role(client, store, binding, pod).await.map_err(fail)?;
        let ctx = provider::role_context(store.clone(), &binding.account, region, &role);
        let files = provider::fetch(&ctx, &objects).await.map_err(fail)?;

        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
        let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
        let status = json!({
            "apiVersion": format!("{GROUP}/v1"),
            "kind": "SecretProviderClassPodStatus",
            "metadata": {
                "name": status_name,
                "namespace": ns,
                "labels": {NODE_LABEL: node},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid}],
            },
            "status": {
                "podName": name,
                "secretProviderClassName": class_name,
                "mounted": true,
                "targetPath": format!("/var/lib/kubelet/pods/{uid}/volumes/kubernetes.io~csi/{volume}/mount"),
                "objects": files.iter().map(|f| json!({"id": f.name, "version": f.version})).collect::<Vec<_>>(),
            }
        });
        let opts = WriteOptions {
            field_manager: Some("secrets-store-csi-driver".into()),
            dry_run: false,
        };
        let created = match client.create(&pod_statuses(ns), status, &opts).await {
            Ok(s) => s,
            Err(ApiError::AlreadyExists { .. }) => continue,
            Err(e) => return Err(fail(e.message())),
        };
        sync_secrets(client, ns, &class, &created, &files)
            .await
            .map_err(fail)?;
    }
    Ok(())
}

/// The driver's sync: each `secretObjects` entry becomes (or updates) a Secret built from the
/// mounted files, labelled as managed and owned by the pod status.
async fn sync_secrets(
    client: &dyn ApiClient,
    ns: &str,
    class: &Value,
    owner: &Value,
    files: &[MountedFile],
) -> Result<(), String> {
    let Some(objects) = class["spec"]["secretObjects"].as_array() else {
        return Ok(());
    };
    let owner_ref = json!({
        "apiVersion": format!("{GROUP}/v1"),
        "kind": "SecretProviderClassPodStatus",
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
    });
    for so in objects {
        let secret_name = so["secretName"].as_str().unwrap_or_default();
        let secret_type = so["type"].as_str().unwrap_or("Opaque");
        if secret_name.is_empty() {
            return Err("secretName is not set in secretObjects".into());
        }
        let mut data = serde_json::Map::new();
        for d in so["data"].as_array().into_iter().flatten() {
            let object = d["objectName"].as_str().unwrap_or_default();
            let key = d["key"].as_str().unwrap_or_default();
            let file = files
                .iter()
                .find(|f| f.name == object)
                .ok_or_else(|| format!("file matching objectName {object} not found in the pod"))?;
            data.insert(key.to_string(), json!(B64.encode(&file.content)));
        }
        let mut labels = so["labels"].as_object().cloned().unwrap_or_default();
        labels.insert(MANAGED_LABEL.into(), json!("true"));
        let annotations = so["annotations"].as_object().cloned().unwrap_or_default();
        let secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret_name, "namespace": ns, "labels": labels,
                         "annotations": annotations, "ownerReferences": [owner_ref.clone()]},
            "type": secret_type,
            "data": data,
        });
        let opts = WriteOptions {
            field_manager: Some("secrets-store-csi-driver".into()),
            dry_run: false,
        };
        match client.create(&secrets(ns), secret, &opts).await {
            Ok(_) => {}
            Err(ApiError::AlreadyExists { .. }) => {
                // Another pod of the class synced it first: add this owner, refresh the data.
                let mut existing = client
                    .get(&secrets(ns), secret_name)
                    .await
                    .map_err(|e| e.message())?;
                let refs = existing["metadata"]["ownerReferences"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if !refs.iter().any(|r| r["uid"] == owner_ref["uid"]) {
                    let mut refs = refs;
                    refs.push(owner_ref.clone());
                    existing["metadata"]["ownerReferences"] = json!(refs);
                }
                existing["data"] = Value::Object(data);
                client
                    .update(&secrets(ns), existing, &opts)
                    .await
                    .map_err(|e| e.message())?;
            }
            Err(e) => return Err(e.message()),
        }
    }
    Ok(())
}

/// A pod waiting for a retry of its mount.
struct Retry {
    pod: Value,
    at: Instant,
    backoff: Duration,
}

/// The integration row: install the CRDs, then mount the driver's volumes of every bound pod
/// (list, then watch; failed mounts retried with back-off), until `shutdown` flips.
pub async fn run(
    client: Arc<dyn ApiClient>,
    store: Arc<dyn Store>,
    binding: EksBinding,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        match ensure_crds(&*client).await {
            Ok(()) => break,
            Err(e) => tracing::warn!(error = %e, "installing the Secrets Store CSI CRDs"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
    }
    let events = EventRecorder::new(client.clone(), "kubelet", Arc::new(SystemClock));
    let mut retries: HashMap<String, Retry> = HashMap::new();
    // Pods whose volumes are all mounted, by uid: not looked at again.
    let mut mounted: std::collections::HashSet<String> = std::collections::HashSet::new();
    let selector = Some("spec.nodeName!=".to_string());
    loop {
        let listed = client
            .list(
                &pods(),
                &ListOptions {
                    field_selector: selector.clone(),
                    ..ListOptions::default()
                },
            )
            .await;
        let list = match listed {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "secrets-store-csi: listing pods");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        };
        for pod in list.items {
            consider(
                &*client,
                &store,
                &binding,
                &events,
                &mut retries,
                &mut mounted,
                pod,
            )
            .await;
        }
        let stream = client
            .watch(
                &pods(),
                &WatchOptions {
                    field_selector: selector.clone(),
                    resource_version: Some(list.resource_version),
                    ..WatchOptions::default()
                },
            )
            .await;
        let Ok(mut stream) = stream else {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                _ = shutdown.changed() => return,
            }
        };
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                ev = stream.next() => match ev {
                    Some(WatchEvent::Added(pod)) | Some(WatchEvent::Modified(pod)) => {
                        consider(&*client, &store, &binding, &events, &mut retries, &mut mounted, pod).await;
                    }
                    Some(WatchEvent::Deleted(pod)) => {
                        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
                        retries.remove(uid);
                        mounted.remove(uid);
                    }
                    Some(WatchEvent::Bookmark(_)) => {}
                    Some(WatchEvent::Error(_)) | None => break,
                },
                _ = tick.tick() => {
                    let now = Instant::now();
                    let due: Vec<String> = retries
                        .iter()
                        .filter(|(_, r)| r.at <= now)
                        .map(|(k, _)| k.clone())
                        .collect();
                    for uid in due {
                        let Some(r) = retries.remove(&uid) else { continue };
                        attempt(&*client, &store, &binding, &events, &mut retries, &mut mounted, r.pod, r.backoff).await;
                    }
                }
            }
        }
    }
}

/// Looks at a pod from the list or the watch.
async fn consider(
    client: &dyn ApiClient,
    store: &Arc<dyn Store>,
    binding: &EksBinding,
    events: &Arc<EventRecorder>,
    retries: &mut HashMap<String, Retry>,
    mounted: &mut std::collections::HashSet<String>,
    pod: Value,
) {
    let uid = pod["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !wants_mount(&pod) || mounted.contains(&uid) {
        return;
    }
    if let Some(r) = retries.get_mut(&uid) {
        // Already waiting for its back-off: keep the newest copy.
        r.pod = pod;
        return;
    }
    attempt(
        client,
        store,
        binding,
        events,
        retries,
        mounted,
        pod,
        BACKOFF_START,
    )
    .await;
}

#[allow(
    clippy::too_many_arguments,
    reason = "the loop's state, passed down as is"
)]
async fn attempt(
    client: &dyn ApiClient,
    store: &Arc<dyn Store>,
    binding: &EksBinding,
    events: &Arc<EventRecorder>,
    retries: &mut HashMap<String, Retry>,
    mounted: &mut std::collections::HashSet<String>,
    pod: Value,
    backoff: Duration,
) {
    let uid = pod["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    match mount_pod(client, store, binding, &pod).await {
        Ok(()) => {
            mounted.insert(uid);
        }
        Err(failure) => {
            events.record(
                &pod,
                EventType::Warning,
                "FailedMount",
                &failure.event_message(&pod),
            );
            retries.insert(
                uid,
                Retry {
                    pod,
                    at: Instant::now() + backoff,
                    backoff: (backoff * 2).min(BACKOFF_MAX),
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drivers_volumes_are_found_and_only_bound_live_pods_are_mounted() {
        let pod = json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "u"},
            "spec": {"nodeName": "n1", "volumes": [
                {"name": "cfg", "configMap": {"name": "c"}},
                {"name": "secrets-store-inline", "csi": {"driver": DRIVER_NAME, "readOnly": true,
                    "volumeAttributes": {"secretProviderClass": "aws-secrets"}}},
            ]},
            "status": {"phase": "Pending"}
        });
        assert_eq!(
            csi_volumes(&pod),
            [(
                "secrets-store-inline".to_string(),
                "aws-secrets".to_string()
            )]
        );
        assert!(wants_mount(&pod));
        let mut unbound = pod.clone();
        unbound["spec"]["nodeName"] = Value::Null;
        assert!(!wants_mount(&unbound));
        let mut done = pod.clone();
        done["status"]["phase"] = json!("Succeeded");
        assert!(!wants_mount(&done));
        let msg = MountFailure {
            volume: "secrets-store-inline".into(),
            message: "boom".into(),
        }
        .event_message(&pod);
        assert!(msg.starts_with("MountVolume.SetUp failed for volume \"secrets-store-inline\" : rpc error: code = Unknown desc = failed to mount secrets store objects for pod default/p, err:"));
    }

    #[test]
    fn crds_name_the_group_and_versions() {
        let spc = secret_provider_class_crd();
        assert_eq!(
            spc["metadata"]["name"],
            "secretproviderclasses.secrets-store.csi.x-k8s.io"
        );
        assert_eq!(spc["spec"]["versions"][0]["name"], "v1");
        let ps = secret_provider_class_pod_status_crd();
        assert_eq!(ps["spec"]["names"]["kind"], "SecretProviderClassPodStatus");
    }
}
