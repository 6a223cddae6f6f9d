//! The PersistentVolume binder (`pkg/controller/volume/persistentvolume`, the
//! `persistentvolume-binder` controller): binds each PersistentVolumeClaim to the smallest
//! Available PersistentVolume that satisfies it (storage class, access modes, volume mode,
//! capacity, label selector; a volume pre-bound to the claim wins), records the binding on both
//! sides (`claimRef` + `spec.volumeName`, `pv.kubernetes.io/bind-completed`,
//! `pv.kubernetes.io/bound-by-controller`) and keeps phases right: claims Pending/Bound/Lost,
//! volumes Available/Bound/Released/Failed.
//!
//! Dynamic provisioning is handed off, not done: a claim of a StorageClass whose provisioner is
//! external (`ebs.csi.aws.com`) gets the `volume.kubernetes.io/storage-provisioner` annotations
//! and waits for that provisioner to create the volume. `WaitForFirstConsumer` classes wait for
//! the scheduler's `volume.kubernetes.io/selected-node` annotation, then only volumes whose node
//! affinity admits that node match. When a bound claim goes, Retain leaves the volume Released;
//! Delete of a provisioned volume is its provisioner's job, and a volume no plugin here can delete
//! is marked Failed with upstream's message.
//!
//! One queue holds both kinds of work: `pvc:<namespace>/<name>` and `pv:<name>` (upstream runs a
//! claim queue and a volume queue in one controller).

use std::sync::Arc;

use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, ResourceRef, WriteOptions};
use skiff_k8s_core::quantity::Quantity;
use skiff_k8s_core::selector::Selector;
use skiff_k8s_core::status::ApiError;

use crate::ownership::{self, is_deleting, str_at};
use crate::runtime::events::{EventRecorder, EventType, Recorder};
use crate::runtime::informer::{Cache, Change, key_of};
use crate::runtime::queue::WorkQueue;
use crate::runtime::reconcile::{Action, Error, Reconciler};

pub const NAME: &str = "persistentvolume-binder-controller";

pub const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
pub const BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
pub const STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
pub const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";
pub const DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
/// The provisioner of classes that never provision (local volumes).
pub const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";

pub fn persistent_volumes() -> ResourceRef {
    ResourceRef::new("", "v1", "persistentvolumes")
}

pub fn persistent_volume_claims() -> ResourceRef {
    ResourceRef::new("", "v1", "persistentvolumeclaims")
}

pub fn storage_classes() -> ResourceRef {
    ResourceRef::new("storage.k8s.io", "v1", "storageclasses")
}

fn annotation<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `storage.GetPersistentVolumeClaimClass`: the beta annotation wins over the field.
pub fn claim_class(claim: &Value) -> String {
    let beta = annotation(claim, BETA_STORAGE_CLASS);
    if !beta.is_empty() {
        return beta.to_string();
    }
    str_at(claim, "/spec/storageClassName").to_string()
}

pub fn volume_class(pv: &Value) -> String {
    let beta = annotation(pv, BETA_STORAGE_CLASS);
    if !beta.is_empty() {
        return beta.to_string();
    }
    str_at(pv, "/spec/storageClassName").to_string()
}

fn quantity(v: Option<&Value>) -> Option<Quantity> {
    let v = v?;
    let text = v
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string());
    Quantity::parse(&text).ok()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the volume's `claimRef` names this claim (by UID once the claim's UID is recorded).
pub fn is_bound_to(pv: &Value, claim: &Value) -> bool {
    let Some(r) = pv.pointer("/spec/claimRef").filter(|r| r.is_object()) else {
        return false;
    };
    if str_at(r, "/name") != ownership::name(claim)
        || str_at(r, "/namespace") != ownership::namespace(claim)
    {
        return false;
    }
    let uid = str_at(r, "/uid");
    uid.is_empty() || uid == ownership::uid(claim)
}

/// Whether the node's labels and name satisfy the volume's required node affinity (a volume
/// without one fits every node).
pub fn node_affinity_admits(pv: &Value, node: &Value) -> bool {
    let Some(terms) = pv
        .pointer("/spec/nodeAffinity/required/nodeSelectorTerms")
        .and_then(Value::as_array)
    else {
        return true;
    };
    let labels = node.pointer("/metadata/labels");
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    let req_ok = |r: &Value, value: Option<&str>| {
        let values = strings(r.get("values"));
        match str_at(r, "/operator") {
            "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
            "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            op @ ("Gt" | "Lt") => {
                let (Some(v), Some(x)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    values.first().and_then(|x| x.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if op == "Gt" { v > x } else { v < x }
            }
            _ => false,
        }
    };
    terms.iter().any(|t| {
        let exprs = t.get("matchExpressions").and_then(Value::as_array);
        let fields = t.get("matchFields").and_then(Value::as_array);
        if exprs.is_none_or(Vec::is_empty) && fields.is_none_or(Vec::is_empty) {
            return false;
        }
        exprs
            .into_iter()
            .flatten()
            .all(|r| req_ok(r, label(str_at(r, "/key"))))
            && fields.into_iter().flatten().all(|r| {
                let v = (str_at(r, "/key") == "metadata.name").then(|| ownership::name(node));
                req_ok(r, v)
            })
    })
}

/// `findMatchingVolume`: the volume pre-bound to `claim` if any, else the smallest Available,
/// unclaimed volume of the claim's class with enough capacity, every requested access mode, the
/// same volume mode and labels the claim's selector accepts. With delayed binding, unclaimed
/// volumes are considered only once a node is chosen, and must admit it.
pub fn find_best_match<'a>(
    claim: &Value,
    volumes: &'a [Value],
    delay_binding: bool,
    node: Option<&Value>,
) -> Option<&'a Value> {
    let want = quantity(claim.pointer("/spec/resources/requests/storage"))?;
    let want_modes = strings(claim.pointer("/spec/accessModes"));
    let mode = |v: &Value| match str_at(v, "/spec/volumeMode") {
        "" => "Filesystem".to_string(),
        m => m.to_string(),
    };
    let selector = match claim.pointer("/spec/selector") {
        None | Some(Value::Null) => Selector::everything(),
        Some(s) => Selector::from_label_selector(s).ok()?,
    };
    let class = claim_class(claim);
    let mut best: Option<(&Value, Quantity)> = None;
    for pv in volumes {
        if is_deleting(pv) || mode(pv) != mode(claim) {
            continue;
        }
        let Some(cap) = quantity(pv.pointer("/spec/capacity/storage")) else {
            continue;
        };
        let modes = strings(pv.pointer("/spec/accessModes"));
        if cap < want || !want_modes.iter().all(|m| modes.contains(m)) {
            continue;
        }
        let affinity_ok = node.is_none_or(|n| node_affinity_admits(pv, n));
        if is_bound_to(pv, claim) {
            return affinity_ok.then_some(pv);
        }
        if (delay_binding && node.is_none())
            || str_at(pv, "/status/phase") != "Available"
            || pv.pointer("/spec/claimRef").is_some_and(|r| !r.is_null())
            || !selector.matches_object(pv)
            || volume_class(pv) != class
            || !affinity_ok
        {
            continue;
        }
        if best.as_ref().is_none_or(|(_, q)| cap < *q) {
            best = Some((pv, cap));
        }
    }
    best.map(|(pv, _)| pv)
}

pub struct PvBinder {
    client: Arc<dyn ApiClient>,
    claims: Cache,
    volumes: Cache,
    classes: Cache,
    nodes: Cache,
    /// `WaitForFirstConsumer`, `ExternalProvisioning`, `FailedBinding` Events on claims; none in
    /// unit tests that assert writes.
    events: Option<Arc<EventRecorder>>,
}

fn opts() -> WriteOptions {
    WriteOptions {
        field_manager: Some(NAME.into()),
        ..Default::default()
    }
}

impl PvBinder {
    pub fn new(
        client: Arc<dyn ApiClient>,
        claims: Cache,
        volumes: Cache,
        classes: Cache,
        nodes: Cache,
    ) -> Self {
        Self {
            client,
            claims,
            volumes,
            classes,
            nodes,
            events: None,
        }
    }

    /// Records events as upstream's `persistentvolume-controller` does.
    pub fn with_events(mut self, events: Arc<EventRecorder>) -> Self {
        self.events = Some(events);
        self
    }

    /// A claim change queues the claim and the volume it names; a deleted claim also queues the
    /// volumes whose `claimRef` points at it (they become Released).
    pub fn on_claim(&self, queue: WorkQueue) -> impl Fn(&Change) + Send + Sync + use<> {
        let volumes = self.volumes.clone();
        move |c| {
            let claim = c.object();
            queue.add(&format!("pvc:{}", key_of(claim)));
            let v = str_at(claim, "/spec/volumeName");
            if !v.is_empty() {
                queue.add(&format!("pv:{v}"));
            }
            if matches!(c, Change::Deleted(_)) {
                for pv in volumes.list(None) {
                    if is_bound_to(&pv, claim) {
                        queue.add(&format!("pv:{}", ownership::name(&pv)));
                    }
                }
            }
        }
    }

    /// A volume change queues the volume and its claim; a volume free to bind queues every
    /// pending claim (upstream finds them on its 15 s resync; a new volume is the only event
    /// that can unblock them).
    pub fn on_volume(&self, queue: WorkQueue) -> impl Fn(&Change) + Send + Sync + use<> {
        let claims = self.claims.clone();
        move |c| {
            let pv = c.object();
            queue.add(&format!("pv:{}", ownership::name(pv)));
            match pv.pointer("/spec/claimRef").filter(|r| r.is_object()) {
                Some(r) => queue.add(&format!(
                    "pvc:{}/{}",
                    str_at(r, "/namespace"),
                    str_at(r, "/name")
                )),
                None if !matches!(c, Change::Deleted(_)) => {
                    for claim in claims.list(None) {
                        if str_at(&claim, "/spec/volumeName").is_empty() {
                            queue.add(&format!("pvc:{}", key_of(&claim)));
                        }
                    }
                }
                None => {}
            }
        }
    }

    /// A new default StorageClass or provisioner queues the claims still without a volume.
    pub fn on_class(&self, queue: WorkQueue) -> impl Fn(&Change) + Send + Sync + use<> {
        let claims = self.claims.clone();
        move |c| {
            if matches!(c, Change::Deleted(_)) {
                return;
            }
            for claim in claims.list(None) {
                if str_at(&claim, "/spec/volumeName").is_empty() {
                    queue.add(&format!("pvc:{}", key_of(&claim)));
                }
            }
        }
    }

    /// The default StorageClass (the newest of several, as upstream picks).
    fn default_class(&self) -> Option<Value> {
        self.classes
            .list(None)
            .into_iter()
            .filter(|c| annotation(c, DEFAULT_CLASS) == "true")
            .max_by(|a, b| {
                str_at(a, "/metadata/creationTimestamp")
                    .cmp(str_at(b, "/metadata/creationTimestamp"))
                    .then_with(|| ownership::name(b).cmp(ownership::name(a)))
            })
    }

    async fn set_claim_phase(&self, claim: &Value, phase: &str) -> Result<(), ApiError> {
        if str_at(claim, "/status/phase") == phase {
            return Ok(());
        }
        let mut c = claim.clone();
        c["status"]["phase"] = json!(phase);
        let r = persistent_volume_claims().in_namespace(ownership::namespace(claim));
        self.client.update_status(&r, c, &opts()).await?;
        Ok(())
    }

    async fn set_volume_phase(
        &self,
        pv: &Value,
        phase: &str,
        message: Option<&str>,
    ) -> Result<Value, ApiError> {
        if str_at(pv, "/status/phase") == phase
            && pv.pointer("/status/message").and_then(Value::as_str) == message
        {
            return Ok(pv.clone());
        }
        let mut v = pv.clone();
        v["status"]["phase"] = json!(phase);
        match message {
            Some(m) => v["status"]["message"] = json!(m),
            None => {
                if let Some(s) = v["status"].as_object_mut() {
                    s.remove("message");
                }
            }
        }
        self.client
            .update_status(&persistent_volumes(), v, &opts())
            .await
    }

    /// Binds both sides, each step written only when missing, in upstream's order: volume
    /// `claimRef`, volume phase, claim `volumeName` + annotations, claim phase.
    async fn bind(&self, pv: &Value, claim: &Value) -> Result<(), ApiError> {
        let mut pv = pv.clone();
        let claim_uid = ownership::uid(claim);
        if str_at(&pv, "/spec/claimRef/uid") != claim_uid {
            let by_controller = pv.pointer("/spec/claimRef").is_none_or(Value::is_null);
            pv["spec"]["claimRef"] = json!({
                "kind": "PersistentVolumeClaim", "apiVersion": "v1",
                "namespace": ownership::namespace(claim), "name": ownership::name(claim),
                "uid": claim_uid,
                "resourceVersion": str_at(claim, "/metadata/resourceVersion"),
            });
            if by_controller {
                pv["metadata"]["annotations"][BOUND_BY_CONTROLLER] = json!("yes");
            }
            pv = self
                .client
                .update(&persistent_volumes(), pv, &opts())
                .await?;
        }
        self.set_volume_phase(&pv, "Bound", None).await?;

        let r = persistent_volume_claims().in_namespace(ownership::namespace(claim));
        let mut claim = claim.clone();
        let pv_name = ownership::name(&pv);
        if str_at(&claim, "/spec/volumeName") != pv_name
            || annotation(&claim, BIND_COMPLETED) != "yes"
        {
            if str_at(&claim, "/spec/volumeName").is_empty() {
                claim["spec"]["volumeName"] = json!(pv_name);
                claim["metadata"]["annotations"][BOUND_BY_CONTROLLER] = json!("yes");
            }
            claim["metadata"]["annotations"][BIND_COMPLETED] = json!("yes");
            claim = self.client.update(&r, claim, &opts()).await?;
        }
        let status = json!({
            "phase": "Bound",
            "accessModes": pv.pointer("/spec/accessModes").cloned().unwrap_or(json!([])),
            "capacity": pv.pointer("/spec/capacity").cloned().unwrap_or(json!({})),
        });
        let cur = claim.get("status").cloned().unwrap_or(json!({}));
        if ["phase", "accessModes", "capacity"]
            .iter()
            .any(|k| cur.get(*k) != status.get(*k))
        {
            let mut c = claim.clone();
            for k in ["phase", "accessModes", "capacity"] {
                c["status"][k] = status[k].clone();
            }
            self.client.update_status(&r, c, &opts()).await?;
        }
        Ok(())
    }

    async fn sync_claim(&self, key: &str) -> Result<Action, Error> {
        let Some(claim) = self.claims.get(key) else {
            return Ok(Action::AwaitChange);
        };
        if is_deleting(&claim) {
            return Ok(Action::AwaitChange);
        }
        let r = persistent_volume_claims().in_namespace(ownership::namespace(&claim));
        // A claim created before any default class existed gets it now (retroactive default
        // StorageClass assignment); `storageClassName: ""` means "no class" and stays.
        if claim
            .pointer("/spec/storageClassName")
            .is_none_or(Value::is_null)
            && annotation(&claim, BETA_STORAGE_CLASS).is_empty()
            && str_at(&claim, "/spec/volumeName").is_empty()
            && let Some(class) = self.default_class()
        {
            let mut c = claim.clone();
            c["spec"]["storageClassName"] = json!(ownership::name(&class));
            self.client.update(&r, c, &opts()).await?;
            return Ok(Action::AwaitChange);
        }
        if annotation(&claim, BIND_COMPLETED) == "yes" {
            // Bound before: the volume must still be ours.
            let volume = self.volumes.get(str_at(&claim, "/spec/volumeName"));
            match volume {
                Some(pv)
                    if pv.pointer("/spec/claimRef").is_none_or(Value::is_null)
                        || str_at(&pv, "/spec/claimRef/uid") == ownership::uid(&claim) =>
                {
                    self.bind(&pv, &claim).await?
                }
                _ => self.set_claim_phase(&claim, "Lost").await?,
            }
            return Ok(Action::AwaitChange);
        }
        let volume_name = str_at(&claim, "/spec/volumeName");
        if !volume_name.is_empty() {
            // Pre-bound by the user to a named volume.
            match self.volumes.get(volume_name) {
                Some(pv)
                    if pv.pointer("/spec/claimRef").is_none_or(Value::is_null)
                        || is_bound_to(&pv, &claim) =>
                {
                    self.bind(&pv, &claim).await?
                }
                _ => self.set_claim_phase(&claim, "Pending").await?,
            }
            return Ok(Action::AwaitChange);
        }
        let class_name = claim_class(&claim);
        let class = (!class_name.is_empty())
            .then(|| self.classes.get(&class_name))
            .flatten();
        let delay = class
            .as_ref()
            .is_some_and(|c| str_at(c, "/volumeBindingMode") == "WaitForFirstConsumer");
        let selected = annotation(&claim, SELECTED_NODE);
        let node = (!selected.is_empty())
            .then(|| self.nodes.get(selected))
            .flatten()
            // A chosen node not in the cache still counts as chosen (no affinity check possible).
            .or_else(|| (!selected.is_empty()).then(|| json!({"metadata": {"name": selected}})));
        let volumes = self.volumes.list(None);
        if let Some(pv) = find_best_match(&claim, &volumes, delay, node.as_ref()) {
            self.bind(pv, &claim).await?;
            return Ok(Action::AwaitChange);
        }
        // No volume fits: provision when the class can, after the consumer is scheduled when
        // binding is delayed.
        let provisioner = class
            .as_ref()
            .map(|c| str_at(c, "/provisioner").to_string())
            .unwrap_or_default();
        let external = !provisioner.is_empty()
            && provisioner != NO_PROVISIONER
            && (!delay || !selected.is_empty());
        if delay && selected.is_empty() {
            self.events.event(
                &claim,
                EventType::Normal,
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding",
            );
        } else if external {
            // `provisionClaimOperationExternal`: said on every sync until the volume exists.
            self.events.event(
                &claim,
                EventType::Normal,
                "ExternalProvisioning",
                &format!(
                    "Waiting for a volume to be created either by the external provisioner '{provisioner}' \
                     or manually by the system administrator. If volume creation is delayed, please verify \
                     that the provisioner is running and correctly registered."
                ),
            );
        } else if class_name.is_empty() {
            self.events.event(
                &claim,
                EventType::Warning,
                "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set",
            );
        }
        if external
            && (annotation(&claim, STORAGE_PROVISIONER) != provisioner
                || annotation(&claim, BETA_STORAGE_PROVISIONER) != provisioner)
        {
            let mut c = claim.clone();
            c["metadata"]["annotations"][STORAGE_PROVISIONER] = json!(provisioner);
            c["metadata"]["annotations"][BETA_STORAGE_PROVISIONER] = json!(provisioner);
            let c = self.client.update(&r, c, &opts()).await?;
            self.set_claim_phase(&c, "Pending").await?;
            return Ok(Action::AwaitChange);
        }
        self.set_claim_phase(&claim, "Pending").await?;
        Ok(Action::AwaitChange)
    }

    async fn sync_volume(&self, name: &str) -> Result<Action, Error> {
        let Some(pv) = self.volumes.get(name) else {
            return Ok(Action::AwaitChange);
        };
        if is_deleting(&pv) {
            return Ok(Action::AwaitChange);
        }
        let Some(claim_ref) = pv.pointer("/spec/claimRef").filter(|r| r.is_object()) else {
            self.set_volume_phase(&pv, "Available", None).await?;
            return Ok(Action::AwaitChange);
        };
        let ref_uid = str_at(claim_ref, "/uid");
        if ref_uid.is_empty() {
            // Pre-bound by the user, waiting for its claim.
            self.set_volume_phase(&pv, "Available", None).await?;
            return Ok(Action::AwaitChange);
        }
        let claim_key = format!(
            "{}/{}",
            str_at(claim_ref, "/namespace"),
            str_at(claim_ref, "/name")
        );
        let claim = self
            .claims
            .get(&claim_key)
            .filter(|c| ownership::uid(c) == ref_uid);
        let Some(claim) = claim else {
            // The claim is gone: release, then reclaim.
            let phase = str_at(&pv, "/status/phase");
            let pv = if phase != "Released" && phase != "Failed" {
                self.set_volume_phase(&pv, "Released", None).await?
            } else {
                pv.clone()
            };
            self.reclaim(&pv).await?;
            return Ok(Action::AwaitChange);
        };
        let bound_to = str_at(&claim, "/spec/volumeName");
        if bound_to.is_empty() {
            // The claim's own sync finishes the binding.
            return Ok(Action::AwaitChange);
        }
        if bound_to == name {
            self.set_volume_phase(&pv, "Bound", None).await?;
            return Ok(Action::AwaitChange);
        }
        // The claim is bound to another volume: unbind this one (`unbindVolume`).
        let mut v = pv.clone();
        if annotation(&pv, BOUND_BY_CONTROLLER) == "yes" {
            v["spec"]["claimRef"] = Value::Null;
            if let Some(a) = v["metadata"]["annotations"].as_object_mut() {
                a.remove(BOUND_BY_CONTROLLER);
            }
        } else {
            v["spec"]["claimRef"]["uid"] = json!("");
        }
        let v = self
            .client
            .update(&persistent_volumes(), v, &opts())
            .await?;
        self.set_volume_phase(&v, "Available", None).await?;
        Ok(Action::AwaitChange)
    }

    /// `reclaimVolume` for a Released volume.
    async fn reclaim(&self, pv: &Value) -> Result<(), ApiError> {
        if str_at(pv, "/status/phase") != "Released" {
            return Ok(());
        }
        let name = ownership::name(pv);
        match str_at(pv, "/spec/persistentVolumeReclaimPolicy") {
            "Delete" => {
                // A provisioned (or CSI) volume is deleted by its provisioner.
                if !annotation(pv, PROVISIONED_BY).is_empty() || pv.pointer("/spec/csi").is_some() {
                    return Ok(());
                }
                let msg = format!(
                    "error getting deleter volume plugin for volume \"{name}\": no deletable volume plugin matched"
                );
                self.set_volume_phase(pv, "Failed", Some(&msg)).await?;
            }
            "Recycle" => {
                let msg = format!(
                    "error getting recycler volume plugin for volume \"{name}\": no volume plugin matched"
                );
                self.set_volume_phase(pv, "Failed", Some(&msg)).await?;
            }
            // Retain: an administrator reclaims it by hand.
            _ => {}
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Reconciler for PvBinder {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &str) -> Result<Action, Error> {
        if let Some(k) = key.strip_prefix("pvc:") {
            self.sync_claim(k).await
        } else if let Some(k) = key.strip_prefix("pv:") {
            self.sync_volume(k).await
        } else {
            Err(Error::Invalid(format!("unknown work item {key:?}")))
        }
    }
}

/// Registers the informer handlers and builds the binder (the [`crate::CONTROLLERS`] entry).
pub fn setup(
    inf: &mut crate::Informers,
    client: Arc<dyn ApiClient>,
    clock: Arc<dyn crate::runtime::Clock>,
    q: WorkQueue,
) -> Arc<dyn Reconciler> {
    // Upstream's recorder names itself `persistentvolume-controller`.
    let events = EventRecorder::new(client.clone(), "persistentvolume-controller", clock);
    let c = PvBinder::new(
        client,
        inf.cache(persistent_volume_claims()),
        inf.cache(persistent_volumes()),
        inf.cache(storage_classes()),
        inf.cache(crate::endpoints_pods::nodes()),
    )
    .with_events(events);
    inf.get(persistent_volume_claims())
        .add_handler(Arc::new(c.on_claim(q.clone())));
    inf.get(persistent_volumes())
        .add_handler(Arc::new(c.on_volume(q.clone())));
    inf.get(storage_classes())
        .add_handler(Arc::new(c.on_class(q)));
    Arc::new(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeClient;

    fn pv(name: &str, size: &str, class: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": {"disk": "ssd"}},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                "storageClassName": class, "volumeMode": "Filesystem",
                "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": "/tmp"}},
            "status": {"phase": "Available"}})
    }

    fn pvc(name: &str, size: &str, class: Option<&str>) -> Value {
        let mut c = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                "resources": {"requests": {"storage": size}}},
            "status": {"phase": "Pending"}});
        if let Some(cl) = class {
            c["spec"]["storageClassName"] = json!(cl);
        }
        c
    }

    /// Seeds the fake and builds a binder whose caches show what the fake holds.
    fn binder(fake: &Arc<FakeClient>) -> PvBinder {
        let cache = |r: ResourceRef| {
            let c = Cache::default();
            fake.objects(&r).into_iter().for_each(|o| c.insert(o));
            c
        };
        PvBinder::new(
            fake.clone(),
            cache(persistent_volume_claims()),
            cache(persistent_volumes()),
            cache(storage_classes()),
            cache(crate::endpoints_pods::nodes()),
        )
    }

    #[tokio::test]
    async fn binds_the_smallest_fit_and_annotates_both_sides() {
        let fake = Arc::new(FakeClient::default());
        fake.seed(&persistent_volumes(), pv("big", "10Gi", "manual"));
        fake.seed(&persistent_volumes(), pv("small", "1Gi", "manual"));
        fake.seed(&persistent_volumes(), pv("fit", "2Gi", "manual"));
        fake.seed(&persistent_volumes(), pv("other-class", "2Gi", "fast"));
        let mut rwx = pv("rwx-only", "2Gi", "manual");
        rwx["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        fake.seed(&persistent_volumes(), rwx);
        let claim = fake.seed(
            &persistent_volume_claims(),
            pvc("data", "1500Mi", Some("manual")),
        );
        let b = binder(&fake);
        assert_eq!(
            b.reconcile("pvc:ns/data").await.unwrap(),
            Action::AwaitChange
        );
        assert_eq!(
            fake.writes(),
            [
                "update persistentvolumes fit",
                "update_status persistentvolumes fit",
                "update persistentvolumeclaims ns/data",
                "update_status persistentvolumeclaims ns/data",
            ]
        );
        let v = fake.object(&persistent_volumes(), "fit").unwrap();
        assert_eq!(v["spec"]["claimRef"]["uid"], claim["metadata"]["uid"]);
        assert_eq!(v["spec"]["claimRef"]["name"], "data");
        assert_eq!(v["metadata"]["annotations"][BOUND_BY_CONTROLLER], "yes");
        assert_eq!(v["status"]["phase"], "Bound");
        let c = fake.object(&persistent_volume_claims(), "ns/data").unwrap();
        assert_eq!(c["spec"]["volumeName"], "fit");
        assert_eq!(c["metadata"]["annotations"][BIND_COMPLETED], "yes");
        assert_eq!(c["metadata"]["annotations"][BOUND_BY_CONTROLLER], "yes");
        assert_eq!(c["status"]["phase"], "Bound");
        assert_eq!(c["status"]["capacity"]["storage"], "2Gi");
        assert_eq!(c["status"]["accessModes"], json!(["ReadWriteOnce"]));
        // Synced again with fresh caches: nothing to do.
        let n = fake.writes().len();
        let b = binder(&fake);
        b.reconcile("pvc:ns/data").await.unwrap();
        b.reconcile("pv:fit").await.unwrap();
        assert_eq!(fake.writes().len(), n);
    }

    #[tokio::test]
    async fn selector_and_prebound_volumes() {
        let fake = Arc::new(FakeClient::default());
        fake.seed(&persistent_volumes(), pv("ssd", "5Gi", ""));
        let mut hdd = pv("hdd", "1Gi", "");
        hdd["metadata"]["labels"]["disk"] = json!("hdd");
        fake.seed(&persistent_volumes(), hdd);
        let mut c = pvc("sel", "1Gi", Some(""));
        c["spec"]["selector"] = json!({"matchLabels": {"disk": "ssd"}});
        fake.seed(&persistent_volume_claims(), c);
        // A volume pre-bound to a claim (no UID yet) goes to that claim even if bigger.
        let mut pre = pv("reserved", "50Gi", "");
        pre["spec"]["claimRef"] = json!({"namespace": "ns", "name": "wants"});
        fake.seed(&persistent_volumes(), pre);
        fake.seed(&persistent_volume_claims(), pvc("wants", "1Gi", Some("")));
        let b = binder(&fake);
        b.reconcile("pvc:ns/sel").await.unwrap();
        b.reconcile("pvc:ns/wants").await.unwrap();
        let sel = fake.object(&persistent_volume_claims(), "ns/sel").unwrap();
        assert_eq!(sel["spec"]["volumeName"], "ssd");
        let wants = fake
            .object(&persistent_volume_claims(), "ns/wants")
            .unwrap();
        assert_eq!(wants["spec"]["volumeName"], "reserved");
        let reserved = fake.object(&persistent_volumes(), "reserved").unwrap();
        assert!(
            reserved["metadata"].get("annotations").is_none(),
            "claimRef was the user's"
        );
        assert_eq!(
            fake.object(&persistent_volumes(), "hdd").unwrap()["status"]["phase"],
            "Available"
        );
    }

    #[tokio::test]
    async fn external_provisioner_hand_off_and_wait_for_first_consumer() {
        let fake = Arc::new(FakeClient::default());
        fake.seed(
            &storage_classes(),
            json!({"metadata": {"name": "gp2", "annotations": {DEFAULT_CLASS: "true"}},
                "provisioner": "ebs.csi.aws.com", "volumeBindingMode": "WaitForFirstConsumer"}),
        );
        fake.seed(
            &storage_classes(),
            json!({"metadata": {"name": "io"}, "provisioner": "ebs.csi.aws.com",
                "volumeBindingMode": "Immediate"}),
        );
        fake.seed(&persistent_volume_claims(), pvc("now", "1Gi", Some("io")));
        fake.seed(
            &persistent_volume_claims(),
            pvc("later", "1Gi", Some("gp2")),
        );
        fake.seed(&persistent_volume_claims(), pvc("classless", "1Gi", None));
        let b = binder(&fake);
        b.reconcile("pvc:ns/now").await.unwrap();
        b.reconcile("pvc:ns/later").await.unwrap();
        b.reconcile("pvc:ns/classless").await.unwrap();
        assert_eq!(
            fake.writes(),
            [
                "update persistentvolumeclaims ns/now",
                "update persistentvolumeclaims ns/classless",
            ]
        );
        let now = fake.object(&persistent_volume_claims(), "ns/now").unwrap();
        assert_eq!(
            now["metadata"]["annotations"][STORAGE_PROVISIONER],
            "ebs.csi.aws.com"
        );
        assert_eq!(
            now["metadata"]["annotations"][BETA_STORAGE_PROVISIONER],
            "ebs.csi.aws.com"
        );
        let classless = fake
            .object(&persistent_volume_claims(), "ns/classless")
            .unwrap();
        assert_eq!(
            classless["spec"]["storageClassName"], "gp2",
            "default class assigned"
        );
        // The scheduler picks a node: now the WaitForFirstConsumer claim is handed off.
        let mut later = fake
            .object(&persistent_volume_claims(), "ns/later")
            .unwrap();
        later["metadata"]["annotations"] = json!({SELECTED_NODE: "n1"});
        fake.seed(&persistent_volume_claims(), later);
        binder(&fake).reconcile("pvc:ns/later").await.unwrap();
        let later = fake
            .object(&persistent_volume_claims(), "ns/later")
            .unwrap();
        assert_eq!(
            later["metadata"]["annotations"][STORAGE_PROVISIONER],
            "ebs.csi.aws.com"
        );
    }

    #[tokio::test]
    async fn claim_events_say_what_the_claim_waits_for() {
        let fake = Arc::new(FakeClient::default());
        fake.seed(
            &storage_classes(),
            json!({"metadata": {"name": "gp2"}, "provisioner": "ebs.csi.aws.com",
                "volumeBindingMode": "WaitForFirstConsumer"}),
        );
        fake.seed(
            &storage_classes(),
            json!({"metadata": {"name": "io"}, "provisioner": "ebs.csi.aws.com",
                "volumeBindingMode": "Immediate"}),
        );
        fake.seed(
            &persistent_volume_claims(),
            pvc("later", "1Gi", Some("gp2")),
        );
        fake.seed(&persistent_volume_claims(), pvc("now", "1Gi", Some("io")));
        fake.seed(&persistent_volume_claims(), pvc("none", "1Gi", Some("")));
        let clock = crate::runtime::FakeClock::new("2026-01-01T00:00:00Z".parse().unwrap());
        let b = binder(&fake).with_events(EventRecorder::new(
            fake.clone(),
            "persistentvolume-controller",
            clock,
        ));
        for k in ["pvc:ns/later", "pvc:ns/now", "pvc:ns/none"] {
            b.reconcile(k).await.unwrap();
        }
        let n = |t: &str, r: &str, m: &str| (t.to_string(), r.to_string(), m.to_string());
        assert_eq!(
            fake.events().await,
            [
                n(
                    "Normal",
                    "WaitForFirstConsumer",
                    "waiting for first consumer to be created before binding"
                ),
                n(
                    "Normal",
                    "ExternalProvisioning",
                    "Waiting for a volume to be created either by the external provisioner \
                     'ebs.csi.aws.com' or manually by the system administrator. If volume creation \
                     is delayed, please verify that the provisioner is running and correctly registered."
                ),
                n(
                    "Warning",
                    "FailedBinding",
                    "no persistent volumes available for this claim and no storage class is set"
                ),
            ]
        );
    }

    #[tokio::test]
    async fn wait_for_first_consumer_matches_volumes_admitting_the_node() {
        let fake = Arc::new(FakeClient::default());
        fake.seed(
            &storage_classes(),
            json!({"metadata": {"name": "local"}, "provisioner": NO_PROVISIONER,
                "volumeBindingMode": "WaitForFirstConsumer"}),
        );
        fake.seed(
            &crate::endpoints_pods::nodes(),
            json!({"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}}),
        );
        for (name, host) in [("on-n2", "n2"), ("on-n1", "n1")] {
            let mut v = pv(name, "1Gi", "local");
            v["spec"]["nodeAffinity"] = json!({"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}]}]}});
            fake.seed(&persistent_volumes(), v);
        }
        fake.seed(&persistent_volume_claims(), pvc("c", "1Gi", Some("local")));
        binder(&fake).reconcile("pvc:ns/c").await.unwrap();
        assert!(fake.writes().is_empty(), "waits for the consumer");
        let mut c = fake.object(&persistent_volume_claims(), "ns/c").unwrap();
        c["metadata"]["annotations"] = json!({SELECTED_NODE: "n1"});
        fake.seed(&persistent_volume_claims(), c);
        binder(&fake).reconcile("pvc:ns/c").await.unwrap();
        let c = fake.object(&persistent_volume_claims(), "ns/c").unwrap();
        assert_eq!(c["spec"]["volumeName"], "on-n1");
    }

    #[tokio::test]
    async fn deleted_claims_release_retained_volumes_and_lost_claims() {
        let fake = Arc::new(FakeClient::default());
        let mut retained = pv("kept", "1Gi", "");
        retained["spec"]["claimRef"] = json!({"namespace": "ns", "name": "gone", "uid": "old"});
        retained["status"]["phase"] = json!("Bound");
        fake.seed(&persistent_volumes(), retained);
        let mut del = pv("manual-delete", "1Gi", "");
        del["spec"]["persistentVolumeReclaimPolicy"] = json!("Delete");
        del["spec"]["claimRef"] = json!({"namespace": "ns", "name": "gone", "uid": "old"});
        fake.seed(&persistent_volumes(), del);
        let mut csi = pv("ebs", "1Gi", "gp2");
        csi["spec"]["persistentVolumeReclaimPolicy"] = json!("Delete");
        csi["metadata"]["annotations"] = json!({PROVISIONED_BY: "ebs.csi.aws.com"});
        csi["spec"]["claimRef"] = json!({"namespace": "ns", "name": "gone", "uid": "old"});
        fake.seed(&persistent_volumes(), csi);
        let mut lost = pvc("lost", "1Gi", Some(""));
        lost["spec"]["volumeName"] = json!("vanished");
        lost["metadata"]["annotations"] = json!({BIND_COMPLETED: "yes"});
        lost["status"]["phase"] = json!("Bound");
        fake.seed(&persistent_volume_claims(), lost);
        let b = binder(&fake);
        for k in ["pv:kept", "pv:manual-delete", "pv:ebs", "pvc:ns/lost"] {
            b.reconcile(k).await.unwrap();
        }
        let phase = |n: &str| fake.object(&persistent_volumes(), n).unwrap()["status"].clone();
        assert_eq!(phase("kept")["phase"], "Released");
        assert_eq!(
            phase("ebs")["phase"],
            "Released",
            "its provisioner deletes it"
        );
        assert_eq!(phase("manual-delete")["phase"], "Failed");
        assert_eq!(
            phase("manual-delete")["message"],
            "error getting deleter volume plugin for volume \"manual-delete\": no deletable volume plugin matched"
        );
        let lost = fake.object(&persistent_volume_claims(), "ns/lost").unwrap();
        assert_eq!(lost["status"]["phase"], "Lost");
        // A Released volume is not offered to new claims.
        fake.seed(&persistent_volume_claims(), pvc("new", "1Gi", Some("")));
        binder(&fake).reconcile("pvc:ns/new").await.unwrap();
        let new = fake.object(&persistent_volume_claims(), "ns/new").unwrap();
        assert!(new["spec"].get("volumeName").is_none());
    }

    #[test]
    fn node_affinity_operators() {
        let node = json!({"metadata": {"name": "n1", "labels": {"zone": "a", "gen": "5"}}});
        let pv = |expr: Value| json!({"spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [expr]}}}});
        let e = |k: &str, op: &str, v: Value| json!({"matchExpressions": [{"key": k, "operator": op, "values": v}]});
        assert!(node_affinity_admits(
            &pv(e("zone", "In", json!(["a"]))),
            &node
        ));
        assert!(!node_affinity_admits(
            &pv(e("zone", "NotIn", json!(["a"]))),
            &node
        ));
        assert!(node_affinity_admits(
            &pv(e("gen", "Gt", json!(["4"]))),
            &node
        ));
        assert!(!node_affinity_admits(
            &pv(e("x", "Exists", json!([]))),
            &node
        ));
        assert!(node_affinity_admits(
            &pv(
                json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]})
            ),
            &node
        ));
        assert!(node_affinity_admits(&json!({"spec": {}}), &node));
    }
}
