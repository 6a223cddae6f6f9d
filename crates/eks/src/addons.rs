//! EKS add-ons in the cluster: the self-managed defaults every new cluster gets, and the add-ons
//! the EKS add-on API manages.
//!
//! **Bootstrap.** When a cluster first answers and `bootstrapSelfManagedAddons` is not false, EKS
//! installs the VPC CNI (`aws-node` DaemonSet), `kube-proxy` (DaemonSet + ConfigMaps) and CoreDNS
//! (`coredns` Deployment + `kube-dns` Service at the tenth address of the service CIDR) in
//! `kube-system`, as plain objects written by the field manager [`BOOTSTRAP_MANAGER`]. It does so
//! once: the `kube-system` Namespace then carries [`BOOTSTRAPPED_ANNOTATION`], so a restart does not
//! recreate anything and objects a user deleted stay deleted, as on EKS.
//!
//! **Managed add-ons.** The EKS API (`skiff_aws::eks::addons`) records add-ons; this loop makes
//! them true. `CREATING`/`UPDATING` records are applied with server-side apply as field manager
//! [`FIELD_MANAGER`], so `resolveConflicts` means what it means on EKS: `NONE` fails on fields
//! another manager set to other values (the self-managed objects after a user's edit, or a
//! different version), `OVERWRITE` takes them, `PRESERVE` leaves them as they are. A record becomes
//! `ACTIVE` once its DaemonSets/Deployments are rolled out (an UpdateAddon's update then turns
//! `Successful`), `DEGRADED` with `InsufficientNumberOfReplicas` while they cannot be (no nodes, or
//! not available after [`DEGRADED_AFTER`]), `CREATE_FAILED`/`UPDATE_FAILED` with
//! `ConfigurationConflict` when the apply is refused. `DELETING` records have their objects removed
//! (kept with `preserve`) and then the record.
//!
//! Every object comes from the data in [`crate::addons_manifests`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use skiff_aws::eks::addons::{
    AddonReport, SELF_MANAGED, addon_states, bootstrap_addon_version, record_addon_state,
    remove_addon_record,
};
use skiff_k8s_core::client::{
    ApiClient, DeleteOptions, ListOptions, PatchOptions, PropagationPolicy, ResourceRef,
    WriteOptions,
};
use skiff_k8s_core::patch::PatchType;
use skiff_k8s_core::status::ApiError;
use skiff_store::Store;
use tokio::sync::watch;

use crate::addons_manifests::{self, NAMESPACE, Target};
use crate::cluster_dir::EksBinding;

/// The Kubernetes identity the add-on manager acts as (EKS's own user name for it).
pub const ADDON_MANAGER_USER: &str = "eks:addon-manager";
/// Field manager of managed add-on applies.
pub const FIELD_MANAGER: &str = "eks";
/// Field manager of the self-managed defaults: another manager than [`FIELD_MANAGER`], so moving to
/// a managed add-on meets the same conflicts as on EKS.
pub const BOOTSTRAP_MANAGER: &str = "eks-bootstrap";
/// Set on the `kube-system` Namespace once the self-managed defaults were installed.
pub const BOOTSTRAPPED_ANNOTATION: &str = "skiff.dev/self-managed-addons";
/// How long a workload may stay unavailable (with nodes present) before the add-on is `DEGRADED`.
pub const DEGRADED_AFTER: Duration = Duration::from_secs(60);
/// With no schedulable node at all nothing can come up; EKS reports that quickly.
const DEGRADED_WITHOUT_NODES_AFTER: Duration = Duration::from_secs(2);
/// Poll interval while some add-on is on its way, and when all are settled.
const BUSY_TICK: Duration = Duration::from_millis(250);
const IDLE_TICK: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum AddonError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("recording the add-on: {0}")]
    Record(String),
    #[error(transparent)]
    Manifest(#[from] addons_manifests::ManifestError),
    #[error("{0}: not a manifest object")]
    Object(String),
}

impl From<skiff_aws_model::AwsError> for AddonError {
    fn from(e: skiff_aws_model::AwsError) -> Self {
        Self::Record(e.message)
    }
}

/// Runs the add-on manager of one cluster until `shutdown` flips.
pub async fn run(
    client: Arc<dyn ApiClient>,
    store: Arc<dyn Store>,
    binding: EksBinding,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut manager = AddonManager::new(client, store, binding);
    let mut bootstrapped = false;
    loop {
        let busy = match manager.cluster().await {
            Some(cluster) => {
                if !bootstrapped {
                    match manager.bootstrap(&cluster).await {
                        Ok(()) => bootstrapped = true,
                        Err(e) => {
                            tracing::warn!(cluster = %manager.binding.name, error = %e, "bootstrapping add-ons")
                        }
                    }
                }
                match manager.reconcile_all(&cluster).await {
                    Ok(busy) => busy,
                    Err(e) => {
                        tracing::warn!(cluster = %manager.binding.name, error = %e, "reconciling add-ons");
                        true
                    }
                }
            }
            None => true,
        };
        let tick = if busy || !bootstrapped {
            BUSY_TICK
        } else {
            IDLE_TICK
        };
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// The facts of the EKS cluster record the manager works from.
#[derive(Clone, Debug)]
pub struct ClusterFacts {
    pub target: Target,
    pub kubernetes_version: String,
    pub bootstrap: bool,
}

/// The add-on manager of one cluster. Public so tests can drive single passes.
pub struct AddonManager {
    client: Arc<dyn ApiClient>,
    store: Arc<dyn Store>,
    binding: EksBinding,
    /// Since when each add-on's workloads have been seen unavailable.
    unavailable_since: HashMap<String, Instant>,
}

impl AddonManager {
    pub fn new(client: Arc<dyn ApiClient>, store: Arc<dyn Store>, binding: EksBinding) -> Self {
        Self {
            client,
            store,
            binding,
            unavailable_since: HashMap::new(),
        }
    }

    /// The cluster's record once it is `ACTIVE` with an endpoint (kube-proxy's kubeconfig names it).
    pub async fn cluster(&self) -> Option<ClusterFacts> {
        let b = &self.binding;
        let rec = skiff_aws::eks::get_cluster(&*self.store, &b.account, &b.region, &b.name)
            .await
            .ok()
            .flatten()?;
        let endpoint = rec["endpoint"].as_str().filter(|e| !e.is_empty())?;
        if rec["status"] != "ACTIVE" && rec["status"] != "UPDATING" {
            return None;
        }
        Some(ClusterFacts {
            target: Target {
                cluster: b.name.clone(),
                region: b.region.clone(),
                endpoint: endpoint.to_string(),
                service_cidr: rec["kubernetesNetworkConfig"]["serviceIpv4Cidr"]
                    .as_str()
                    .unwrap_or("10.100.0.0/16")
                    .to_string(),
                vpc_id: rec["resourcesVpcConfig"]["vpcId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            },
            kubernetes_version: rec["version"]
                .as_str()
                .unwrap_or(crate::control_plane::DEFAULT_KUBERNETES_VERSION)
                .to_string(),
            // CreateCluster's `bootstrapSelfManagedAddons`, true unless the caller said false.
            bootstrap: rec["bootstrapSelfManagedAddons"].as_bool().unwrap_or(true),
        })
    }

    /// Install the self-managed defaults once per cluster (see the module doc).
    pub async fn bootstrap(&self, cluster: &ClusterFacts) -> Result<(), AddonError> {
        let ns_ref = ResourceRef::new("", "v1", "namespaces");
        let ns = self.client.get(&ns_ref, NAMESPACE).await?;
        if ns["metadata"]["annotations"][BOOTSTRAPPED_ANNOTATION].is_string() {
            return Ok(());
        }
        if cluster.bootstrap {
            let b = &self.binding;
            let managed: Vec<String> = addon_states(&*self.store, &b.account, &b.region, &b.name)
                .await?
                .iter()
                .filter_map(|a| a["addonName"].as_str().map(str::to_string))
                .collect();
            for addon in SELF_MANAGED {
                // An add-on created before the cluster answered is installed the managed way.
                if managed.iter().any(|m| m == addon) {
                    continue;
                }
                let Some(version) = bootstrap_addon_version(addon, &cluster.kubernetes_version)
                else {
                    continue;
                };
                let objects =
                    addons_manifests::render(addon, version, &cluster.target, &Value::Null, None)?;
                for mut obj in objects {
                    // Self-managed objects are not EKS-managed.
                    if let Some(l) = obj["metadata"]["labels"].as_object_mut() {
                        l.remove("app.kubernetes.io/managed-by");
                    }
                    let r = resource(&obj)?;
                    let opts = WriteOptions {
                        field_manager: Some(BOOTSTRAP_MANAGER.into()),
                        dry_run: false,
                    };
                    match self.client.create(&r, obj, &opts).await {
                        Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        let mark = json!({"metadata": {"annotations": {BOOTSTRAPPED_ANNOTATION: if cluster.bootstrap { "installed" } else { "skipped" }}}});
        self.client
            .patch(
                &ns_ref,
                NAMESPACE,
                PatchType::Merge,
                mark,
                &PatchOptions::default(),
            )
            .await?;
        tracing::info!(cluster = %self.binding.name, bootstrap = cluster.bootstrap, "self-managed add-ons done");
        Ok(())
    }

    /// One pass over every add-on record of the cluster. Returns whether any is still on its way
    /// (the caller then looks again soon).
    pub async fn reconcile_all(&mut self, cluster: &ClusterFacts) -> Result<bool, AddonError> {
        let b = &self.binding;
        let records = addon_states(&*self.store, &b.account, &b.region, &b.name).await?;
        let mut busy = false;
        for rec in &records {
            let name = rec["addonName"].as_str().unwrap_or_default().to_string();
            match self.reconcile(rec, cluster).await {
                Ok(b) => busy |= b,
                Err(e) => {
                    tracing::warn!(addon = %name, error = %e, "add-on reconcile failed");
                    busy = true;
                }
            }
        }
        self.unavailable_since
            .retain(|k, _| records.iter().any(|r| r["addonName"] == k.as_str()));
        Ok(busy)
    }

    async fn report(&self, addon: &str, report: AddonReport) -> Result<(), AddonError> {
        let b = &self.binding;
        record_addon_state(&*self.store, &b.account, &b.region, &b.name, addon, &report).await?;
        Ok(())
    }

    /// Reconcile one record; returns whether it is still on its way.
    async fn reconcile(&mut self, rec: &Value, cluster: &ClusterFacts) -> Result<bool, AddonError> {
        let name = rec["addonName"].as_str().unwrap_or_default();
        let status = rec["status"].as_str().unwrap_or_default();
        let version = rec["addonVersion"].as_str().unwrap_or_default();
        let config = rec["configurationValues"]
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            .unwrap_or(Value::Null);
        let role = rec["serviceAccountRoleArn"].as_str();
        let objects = addons_manifests::render(name, version, &cluster.target, &config, role)?;
        match status {
            "DELETING" => {
                if rec["_preserve"].as_bool() != Some(true) {
                    self.delete_objects(&objects).await?;
                }
                let b = &self.binding;
                remove_addon_record(&*self.store, &b.account, &b.region, &b.name, name).await?;
                tracing::info!(addon = %name, "add-on deleted");
                return Ok(false);
            }
            "CREATE_FAILED" | "UPDATE_FAILED" => return Ok(false),
            _ => {}
        }
        let desired = json!({"version": version, "config": config, "role": role}).to_string();
        let in_flight = status == "CREATING" || status == "UPDATING";
        if in_flight && rec["_applied"].as_str() != Some(desired.as_str()) {
            let mode = rec["_resolveConflicts"].as_str().unwrap_or("NONE");
            let taken_over = rec["_applied"].is_string();
            match self.apply(&objects, mode, taken_over).await {
                Ok(()) => {
                    self.unavailable_since
                        .insert(name.to_string(), Instant::now());
                    self.report(
                        name,
                        AddonReport {
                            status: status.to_string(),
                            issues: vec![],
                            applied: Some(desired),
                        },
                    )
                    .await?;
                }
                Err(ApplyFailure::Conflicts(lines, ids)) => {
                    let failed = if status == "CREATING" {
                        "CREATE_FAILED"
                    } else {
                        "UPDATE_FAILED"
                    };
                    let issue = json!({"code": "ConfigurationConflict",
                        "message": format!("Conflicts found when trying to apply. Will not continue due to resolve conflicts mode. Conflicts:\n{}", lines.join("\n")),
                        "resourceIds": ids});
                    self.report(
                        name,
                        AddonReport {
                            status: failed.into(),
                            issues: vec![issue],
                            applied: None,
                        },
                    )
                    .await?;
                    return Ok(false);
                }
                Err(ApplyFailure::Other(e)) => return Err(e),
            }
        }
        let ready = self.rolled_out(&objects).await?;
        let since = *self
            .unavailable_since
            .entry(name.to_string())
            .or_insert_with(Instant::now);
        let next = if ready {
            self.unavailable_since.remove(name);
            "ACTIVE"
        } else {
            let nodes = self.schedulable_nodes().await?;
            let waited = since.elapsed();
            if waited >= DEGRADED_AFTER || (nodes == 0 && waited >= DEGRADED_WITHOUT_NODES_AFTER) {
                "DEGRADED"
            } else {
                status
            }
        };
        let issues = if next == "DEGRADED" {
            vec![json!({"code": "InsufficientNumberOfReplicas",
                "message": "The add-on is unhealthy because it doesn't have the desired number of replicas.",
                "resourceIds": []})]
        } else {
            vec![]
        };
        if next != status || rec["health"]["issues"].as_array().map(Vec::len) != Some(issues.len())
        {
            self.report(
                name,
                AddonReport {
                    status: next.to_string(),
                    issues,
                    applied: None,
                },
            )
            .await?;
            if next != status {
                tracing::info!(addon = %name, from = status, to = next, "add-on status");
            }
        }
        Ok(next != "ACTIVE")
    }

    /// Server-side apply every object as [`FIELD_MANAGER`]. A dry run of all objects comes first,
    /// so `NONE` fails before anything is written, listing every conflict as EKS does.
    ///
    /// `taken_over`: the add-on was applied before (an update), so conflicts with nothing but
    /// [`BOOTSTRAP_MANAGER`] are overridden.
    async fn apply(
        &self,
        objects: &[Value],
        mode: &str,
        taken_over: bool,
    ) -> Result<(), ApplyFailure> {
        let mut planned = Vec::with_capacity(objects.len());
        let mut lines = Vec::new();
        let mut ids = Vec::new();
        for obj in objects {
            let r = resource(obj).map_err(ApplyFailure::Other)?;
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let mut obj = obj.clone();
            let mut force = mode == "OVERWRITE";
            let mut attempts = 0;
            loop {
                let opts = PatchOptions {
                    field_manager: Some(FIELD_MANAGER.into()),
                    force,
                    dry_run: true,
                    subresource: None,
                };
                match self
                    .client
                    .patch(&r, &name, PatchType::Apply, obj.clone(), &opts)
                    .await
                {
                    Ok(_) => break,
                    // Once the add-on took the objects over, the self-managed install's leftover
                    // co-ownership is not a user's change: EKS manages those fields now.
                    Err(ApiError::ApplyConflict { causes, .. })
                        if taken_over
                            && !force
                            && causes.iter().all(|(who, _)| {
                                who.contains(&format!("\"{BOOTSTRAP_MANAGER}\""))
                            }) =>
                    {
                        force = true;
                    }
                    Err(ApiError::ApplyConflict { causes, .. })
                        if mode == "PRESERVE" && attempts < 3 =>
                    {
                        // Keep what others set: leave their fields out of our configuration.
                        for (_, field) in &causes {
                            remove_path(&mut obj, field);
                        }
                        attempts += 1;
                    }
                    Err(ApiError::ApplyConflict { causes, .. }) => {
                        let kind = qualified_kind(&obj);
                        for (_, field) in causes {
                            lines.push(format!("{kind} {name} - {field}"));
                        }
                        ids.push(format!("{NAMESPACE}/{name}"));
                        break;
                    }
                    Err(e) => return Err(ApplyFailure::Other(e.into())),
                }
            }
            planned.push((r, name, obj, force));
        }
        if !lines.is_empty() {
            ids.dedup();
            return Err(ApplyFailure::Conflicts(lines, ids));
        }
        for (r, name, obj, force) in planned {
            let opts = PatchOptions {
                field_manager: Some(FIELD_MANAGER.into()),
                force,
                dry_run: false,
                subresource: None,
            };
            self.client
                .patch(&r, &name, PatchType::Apply, obj, &opts)
                .await
                .map_err(|e| ApplyFailure::Other(e.into()))?;
        }
        Ok(())
    }

    async fn delete_objects(&self, objects: &[Value]) -> Result<(), AddonError> {
        for obj in objects.iter().rev() {
            let r = resource(obj)?;
            let name = obj["metadata"]["name"].as_str().unwrap_or_default();
            let opts = DeleteOptions {
                propagation_policy: Some(PropagationPolicy::Background),
                ..Default::default()
            };
            match self.client.delete(&r, name, &opts).await {
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Whether every DaemonSet and Deployment of the add-on has rolled out and is available.
    async fn rolled_out(&self, objects: &[Value]) -> Result<bool, AddonError> {
        for obj in objects {
            let kind = obj["kind"].as_str().unwrap_or_default();
            if kind != "DaemonSet" && kind != "Deployment" {
                continue;
            }
            let name = obj["metadata"]["name"].as_str().unwrap_or_default();
            let Some(live) = self.client.get_opt(&resource(obj)?, name).await? else {
                return Ok(false);
            };
            if !workload_available(&live) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Ready Nodes that take pods.
    async fn schedulable_nodes(&self) -> Result<usize, AddonError> {
        let nodes = self
            .client
            .list(
                &ResourceRef::new("", "v1", "nodes"),
                &ListOptions::default(),
            )
            .await?;
        Ok(nodes
            .items
            .iter()
            .filter(|n| n["spec"]["unschedulable"].as_bool() != Some(true))
            .filter(|n| {
                n["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
            .count())
    }
}

enum ApplyFailure {
    /// `Kind.group name - field` lines and the objects they are in.
    Conflicts(Vec<String>, Vec<String>),
    Other(AddonError),
}

fn resource(obj: &Value) -> Result<ResourceRef, AddonError> {
    addons_manifests::resource_of(obj)
        .ok_or_else(|| AddonError::Object(obj["kind"].as_str().unwrap_or_default().to_string()))
}

/// `DaemonSet.apps`, `ConfigMap`: how EKS names the object in conflict messages.
fn qualified_kind(obj: &Value) -> String {
    let kind = obj["kind"].as_str().unwrap_or_default();
    match obj["apiVersion"].as_str().and_then(|v| v.split_once('/')) {
        Some((group, _)) => format!("{kind}.{group}"),
        None => kind.to_string(),
    }
}

/// A DaemonSet or Deployment whose controller has seen the current spec and whose pods are all
/// updated and available (what `kubectl rollout status` waits for).
pub fn workload_available(w: &Value) -> bool {
    let st = &w["status"];
    let n = |v: &Value| v.as_i64().unwrap_or(0);
    if n(&st["observedGeneration"]) < n(&w["metadata"]["generation"]) {
        return false;
    }
    match w["kind"].as_str() {
        Some("DaemonSet") => {
            let desired = n(&st["desiredNumberScheduled"]);
            n(&st["updatedNumberScheduled"]) >= desired && n(&st["numberAvailable"]) >= desired
        }
        Some("Deployment") => {
            let want = w["spec"]["replicas"].as_i64().unwrap_or(1);
            n(&st["updatedReplicas"]) >= want
                && n(&st["availableReplicas"]) >= want
                && n(&st["replicas"]) <= want
        }
        _ => true,
    }
}

/// Remove the field at an apply path (`.spec.template.spec.containers[name="aws-node"].image`)
/// from `v`. Map keys are matched as `.key`; list items by the keys Kubernetes lists are keyed
/// with (`[name="x"]`, `[mountPath="/x"]`, `[containerPort=53,protocol="UDP"]`, …) or by index.
/// Returns whether something was removed.
pub fn remove_path(v: &mut Value, path: &str) -> bool {
    match v {
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let seg = format!(".{k}");
                let Some(rest) = path.strip_prefix(seg.as_str()) else {
                    continue;
                };
                if rest.is_empty() {
                    m.remove(&k);
                    return true;
                }
                if (rest.starts_with('.') || rest.starts_with('['))
                    && let Some(child) = m.get_mut(&k)
                    && remove_path(child, rest)
                {
                    return true;
                }
            }
            false
        }
        Value::Array(items) => {
            for i in 0..items.len() {
                for cand in element_keys(&items[i], i) {
                    let Some(rest) = path.strip_prefix(cand.as_str()) else {
                        continue;
                    };
                    if rest.is_empty() {
                        items.remove(i);
                        return true;
                    }
                    if remove_path(&mut items[i], rest) {
                        return true;
                    }
                }
            }
            false
        }
        _ => false,
    }
}

/// The ways an apply path may name list item `i`.
fn element_keys(item: &Value, i: usize) -> Vec<String> {
    let mut out = vec![format!("[{i}]")];
    let field = |k: &str| item.get(k).map(|v| format!("{k}={v}"));
    for keys in [
        &["name"][..],
        &["mountPath"],
        &["key"],
        &["devicePath"],
        &["containerPort", "protocol"],
        &["port", "protocol"],
    ] {
        let parts: Option<Vec<String>> = keys.iter().map(|k| field(k)).collect();
        if let Some(parts) = parts {
            out.push(format!("[{}]", parts.join(",")));
        }
    }
    if !item.is_object() {
        out.push(format!("[={item}]"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_paths_remove_the_named_field() {
        let mut d = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "a", "image": "x", "ports": [{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 53, "protocol": "TCP"}]},
            {"name": "b", "image": "y"}]}}}});
        assert!(remove_path(
            &mut d,
            ".spec.template.spec.containers[name=\"b\"].image"
        ));
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][1],
            json!({"name": "b"})
        );
        assert!(remove_path(
            &mut d,
            ".spec.template.spec.containers[name=\"a\"].ports[containerPort=53,protocol=\"TCP\"]"
        ));
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 53, "protocol": "UDP"}])
        );
        assert!(remove_path(&mut d, ".spec.replicas"));
        assert!(d["spec"].get("replicas").is_none());
        assert!(!remove_path(&mut d, ".spec.nothing"));
        let mut l = json!({"metadata": {"labels": {"app.kubernetes.io/name": "x", "k": "v"}}});
        assert!(remove_path(
            &mut l,
            ".metadata.labels.app.kubernetes.io/name"
        ));
        assert_eq!(l["metadata"]["labels"], json!({"k": "v"}));
    }

    #[test]
    fn availability_follows_the_workload_status() {
        let ds = |desired: i64, avail: i64, gen_seen: i64| {
            json!({"kind": "DaemonSet", "metadata": {"generation": 2},
                "status": {"observedGeneration": gen_seen, "desiredNumberScheduled": desired,
                    "updatedNumberScheduled": desired, "numberAvailable": avail}})
        };
        assert!(workload_available(&ds(2, 2, 2)));
        assert!(workload_available(&ds(0, 0, 2)));
        assert!(!workload_available(&ds(2, 1, 2)));
        assert!(!workload_available(&ds(2, 2, 1)));
        let dep = |replicas: i64, avail: i64, total: i64| {
            json!({"kind": "Deployment", "metadata": {"generation": 1}, "spec": {"replicas": replicas},
                "status": {"observedGeneration": 1, "updatedReplicas": avail, "availableReplicas": avail, "replicas": total}})
        };
        assert!(workload_available(&dep(3, 3, 3)));
        assert!(!workload_available(&dep(3, 2, 3)));
        // An old ReplicaSet's pods still running: the rollout is not finished.
        assert!(!workload_available(&dep(3, 3, 4)));
        assert_eq!(
            qualified_kind(&json!({"apiVersion": "apps/v1", "kind": "DaemonSet"})),
            "DaemonSet.apps"
        );
        assert_eq!(
            qualified_kind(&json!({"apiVersion": "v1", "kind": "ConfigMap"})),
            "ConfigMap"
        );
    }
}
