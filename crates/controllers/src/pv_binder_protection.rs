//! Storage object in-use protection (`pkg/controller/volume/pvcprotection`, `pvprotection`):
//! every PersistentVolumeClaim carries the `kubernetes.io/pvc-protection` finalizer and every
//! PersistentVolume `kubernetes.io/pv-protection`, so deleting one that is still used only marks
//! it; the finalizer comes off once no Pod that has not finished mounts the claim, or once the
//! volume is no longer Bound. (Upstream's admission plugin adds the finalizers at create time;
//! adding them here too, as the controllers also do, covers objects admitted without it.)

use std::sync::Arc;

use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, PatchOptions, ResourceRef};
use skiff_k8s_core::patch::PatchType;
use skiff_k8s_core::status::ApiError;

use crate::ownership::{self, is_deleting, str_at};
use crate::pv_binder::{persistent_volume_claims, persistent_volumes};
use crate::runtime::informer::{Cache, Change, key_of};
use crate::runtime::queue::WorkQueue;
use crate::runtime::reconcile::{Action, Error, Reconciler};

pub const PVC_NAME: &str = "persistentvolumeclaim-protection-controller";
pub const PV_NAME: &str = "persistentvolume-protection-controller";
pub const PVC_FINALIZER: &str = "kubernetes.io/pvc-protection";
pub const PV_FINALIZER: &str = "kubernetes.io/pv-protection";

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Adds (`want`) or removes `finalizer`, guarded by the cached resourceVersion.
async fn set_finalizer(
    client: &dyn ApiClient,
    r: &ResourceRef,
    obj: &Value,
    finalizer: &str,
    want: bool,
    manager: &str,
) -> Result<(), ApiError> {
    let mut list = finalizers(obj);
    if want == list.iter().any(|f| f == finalizer) {
        return Ok(());
    }
    if want {
        list.push(finalizer.to_string());
    } else {
        list.retain(|f| f != finalizer);
    }
    let patch = json!({"metadata": {"finalizers": list,
        "resourceVersion": str_at(obj, "/metadata/resourceVersion")}});
    let opts = PatchOptions {
        field_manager: Some(manager.into()),
        ..Default::default()
    };
    match client
        .patch(r, ownership::name(obj), PatchType::Merge, patch, &opts)
        .await
    {
        Ok(_) | Err(ApiError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The claims a Pod's volumes name.
fn claims_of(pod: &Value) -> Vec<String> {
    pod.pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.pointer("/persistentVolumeClaim/claimName"))
        .filter_map(Value::as_str)
        .map(String::from)
        .collect()
}

pub struct PvcProtectionController {
    client: Arc<dyn ApiClient>,
    claims: Cache,
    pods: Cache,
}

impl PvcProtectionController {
    pub fn new(client: Arc<dyn ApiClient>, claims: Cache, pods: Cache) -> Self {
        Self {
            client,
            claims,
            pods,
        }
    }

    pub fn on_claim(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| {
            if !matches!(c, Change::Deleted(_)) {
                queue.add(&key_of(c.object()));
            }
        }
    }

    /// A Pod finishing or going frees the claims it mounts.
    pub fn on_pod(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| {
            let pod = c.object();
            for claim in claims_of(pod) {
                queue.add(&format!("{}/{claim}", ownership::namespace(pod)));
            }
        }
    }

    /// `podUsesPVC` over the cache: a Pod mounting the claim that has not finished.
    fn in_use(&self, claim: &Value) -> bool {
        self.pods
            .list(Some(ownership::namespace(claim)))
            .iter()
            .filter(|p| {
                let phase = str_at(p, "/status/phase");
                phase != "Succeeded" && phase != "Failed"
            })
            .any(|p| claims_of(p).iter().any(|c| c == ownership::name(claim)))
    }
}

#[async_trait::async_trait]
impl Reconciler for PvcProtectionController {
    fn name(&self) -> &'static str {
        PVC_NAME
    }

    async fn reconcile(&self, key: &str) -> Result<Action, Error> {
        let Some(claim) = self.claims.get(key) else {
            return Ok(Action::AwaitChange);
        };
        let r = persistent_volume_claims().in_namespace(ownership::namespace(&claim));
        let want = !is_deleting(&claim) || self.in_use(&claim);
        set_finalizer(
            self.client.as_ref(),
            &r,
            &claim,
            PVC_FINALIZER,
            want,
            PVC_NAME,
        )
        .await?;
        Ok(Action::AwaitChange)
    }
}

pub struct PvProtectionController {
    client: Arc<dyn ApiClient>,
    volumes: Cache,
}

impl PvProtectionController {
    pub fn new(client: Arc<dyn ApiClient>, volumes: Cache) -> Self {
        Self { client, volumes }
    }

    pub fn on_volume(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| {
            if !matches!(c, Change::Deleted(_)) {
                queue.add(&key_of(c.object()));
            }
        }
    }
}

#[async_trait::async_trait]
impl Reconciler for PvProtectionController {
    fn name(&self) -> &'static str {
        PV_NAME
    }

    async fn reconcile(&self, key: &str) -> Result<Action, Error> {
        let Some(pv) = self.volumes.get(key) else {
            return Ok(Action::AwaitChange);
        };
        // `isVolumeInUse`: a Bound volume is in use.
        let want = !is_deleting(&pv) || str_at(&pv, "/status/phase") == "Bound";
        set_finalizer(
            self.client.as_ref(),
            &persistent_volumes(),
            &pv,
            PV_FINALIZER,
            want,
            PV_NAME,
        )
        .await?;
        Ok(Action::AwaitChange)
    }
}

/// The [`crate::CONTROLLERS`] entry of the PVC protection controller.
pub fn setup_pvc(
    inf: &mut crate::Informers,
    client: Arc<dyn ApiClient>,
    _clock: Arc<dyn crate::runtime::Clock>,
    q: WorkQueue,
) -> Arc<dyn Reconciler> {
    let pods = crate::replicaset::pods();
    let c = PvcProtectionController::new(
        client,
        inf.cache(persistent_volume_claims()),
        inf.cache(pods.clone()),
    );
    inf.get(persistent_volume_claims())
        .add_handler(Arc::new(PvcProtectionController::on_claim(q.clone())));
    inf.get(pods)
        .add_handler(Arc::new(PvcProtectionController::on_pod(q)));
    Arc::new(c)
}

/// The [`crate::CONTROLLERS`] entry of the PV protection controller.
pub fn setup_pv(
    inf: &mut crate::Informers,
    client: Arc<dyn ApiClient>,
    _clock: Arc<dyn crate::runtime::Clock>,
    q: WorkQueue,
) -> Arc<dyn Reconciler> {
    let c = PvProtectionController::new(client, inf.cache(persistent_volumes()));
    inf.get(persistent_volumes())
        .add_handler(Arc::new(PvProtectionController::on_volume(q)));
    Arc::new(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeClient;

    #[tokio::test]
    async fn claim_finalizer_added_and_kept_while_a_running_pod_mounts_it() {
        let fake = Arc::new(FakeClient::default());
        let claim = fake.seed(
            &persistent_volume_claims(),
            json!({"metadata": {"name": "data", "namespace": "ns"}}),
        );
        let c = PvcProtectionController::new(fake.clone(), Cache::default(), Cache::default());
        c.claims.insert(claim);
        c.reconcile("ns/data").await.unwrap();
        assert_eq!(fake.writes(), ["patch persistentvolumeclaims ns/data"]);
        let mut claim = fake.object(&persistent_volume_claims(), "ns/data").unwrap();
        assert_eq!(claim["metadata"]["finalizers"], json!([PVC_FINALIZER]));

        // Deleted while a pod uses it: the finalizer stays.
        claim["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        let claim = fake.seed(&persistent_volume_claims(), claim);
        c.claims.insert(claim);
        let mut pod = json!({"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]},
            "status": {"phase": "Running"}});
        c.pods.insert(pod.clone());
        c.reconcile("ns/data").await.unwrap();
        assert_eq!(fake.writes().len(), 1);
        // The pod finished: the finalizer comes off.
        pod["status"]["phase"] = json!("Succeeded");
        c.pods.insert(pod);
        c.reconcile("ns/data").await.unwrap();
        assert_eq!(fake.writes().len(), 2);
        let claim = fake.object(&persistent_volume_claims(), "ns/data").unwrap();
        assert_eq!(claim["metadata"]["finalizers"], json!([]));
        let q = WorkQueue::new();
        PvcProtectionController::on_pod(q.clone())(&Change::Deleted(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"volumes": [{"persistentVolumeClaim": {"claimName": "data"}}]}})));
        assert_eq!(q.len(), 1);
    }

    #[tokio::test]
    async fn volume_finalizer_released_once_not_bound() {
        let fake = Arc::new(FakeClient::default());
        let pv = fake.seed(
            &persistent_volumes(),
            json!({"metadata": {"name": "v", "finalizers": [PV_FINALIZER],
                "deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Bound"}}),
        );
        let c = PvProtectionController::new(fake.clone(), Cache::default());
        c.volumes.insert(pv.clone());
        c.reconcile("v").await.unwrap();
        assert!(fake.writes().is_empty(), "bound: kept");
        let mut released = pv;
        released["status"]["phase"] = json!("Released");
        c.volumes.insert(released);
        c.reconcile("v").await.unwrap();
        assert_eq!(fake.writes(), ["patch persistentvolumes v"]);
    }
}
