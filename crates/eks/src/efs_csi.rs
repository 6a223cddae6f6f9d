//! The Amazon EFS CSI driver (the `aws-efs-csi-driver` add-on), built in: dynamic provisioning in
//! `efs-ap` mode (one EFS access point per claim, with a POSIX user from the class's GID range and a
//! root directory under `basePath`), deletion of that access point when a `Delete` volume is
//! released, the CSIDriver object (`attachRequired: false`: EFS volumes mount over NFS, no
//! VolumeAttachment) and each EC2 node's CSINode registration.
//!
//! EFS volumes are ReadWriteMany and zone-free: a PV carries no node affinity, so pods on any node of
//! the VPC mount it. Everything AWS-side goes through the EFS operations a user sees
//! (`aws efs describe-access-points`), in the cluster's account and region; the access point's
//! client token is the PV name, so a retried provision never makes a second one.
//!
//! Work queue keys: `setup`, `node:<name>`, `pvc:<ns>/<name>`, `pv:<name>`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_controllers::runtime::SystemClock;
use skiff_controllers::runtime::events::{EventRecorder, EventType};
use skiff_controllers::runtime::informer::{Change, key_of};
use skiff_controllers::runtime::queue::WorkQueue;
use skiff_controllers::runtime::reconcile::{self, Action, Error, Reconciler};
use skiff_k8s_core::client::{ApiClient, WriteOptions};
use skiff_k8s_core::status::ApiError;
use skiff_store::Store;
use tokio::sync::watch;

use crate::cluster_dir::EksBinding;
use crate::ebs_csi::{csi_drivers, csi_nodes, nodes, pvcs, pvs, storage_classes};

/// The driver name (CSIDriver object, `provisioner`, `spec.csi.driver`).
pub const DRIVER: &str = "efs.csi.aws.com";
/// The controller's Kubernetes identity (its ServiceAccount on EKS).
pub const CONTROLLER_USER: &str = "system:serviceaccount:kube-system:efs-csi-controller-sa";
pub const NAME: &str = "efs-csi-controller";
const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
const PV_FINALIZER: &str = "external-provisioner.volume.kubernetes.io/finalizer";
/// The driver's default GID range for access point POSIX users.
const DEFAULT_GID_RANGE: (i64, i64) = (50_000, 7_000_000);
const RETRY: Duration = Duration::from_secs(2);

/// The CSI drivers share one error type: a Kubernetes API error or an AWS one.
use crate::ebs_csi::EbsError as EfsCsiError;

type Result<T> = std::result::Result<T, EfsCsiError>;

fn opts() -> WriteOptions {
    WriteOptions {
        field_manager: Some(NAME.into()),
        dry_run: false,
    }
}

/// The CSIDriver object the add-on installs.
pub fn csi_driver_object() -> Value {
    json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
        "metadata": {"name": DRIVER, "labels": {"app.kubernetes.io/name": "aws-efs-csi-driver",
            "app.kubernetes.io/managed-by": "EKS"}},
        "spec": {"attachRequired": false, "podInfoOnMount": false, "fsGroupPolicy": "ReadWriteOnceWithFSType",
            "requiresRepublish": false, "storageCapacity": false,
            "volumeLifecycleModes": ["Persistent"]}})
}

/// What an `efs-ap` StorageClass asks for, checked as the driver checks it (its error wording).
#[derive(Debug, PartialEq)]
pub struct ClassParameters {
    pub file_system_id: String,
    pub directory_perms: String,
    pub gid_range: (i64, i64),
    /// A fixed uid/gid for every access point instead of one from the range.
    pub uid: Option<i64>,
    pub gid: Option<i64>,
    pub base_path: String,
    pub ensure_unique_directory: bool,
}

pub fn class_parameters(class: &Value) -> std::result::Result<ClassParameters, String> {
    let p = &class["parameters"];
    let get = |k: &str| p[k].as_str().filter(|v| !v.is_empty());
    match get("provisioningMode") {
        None => return Err("Missing provisioningMode parameter".into()),
        Some("efs-ap") => {}
        Some(other) => return Err(format!("Provisioning mode {other} is not supported.")),
    }
    let file_system_id = get("fileSystemId").ok_or("Missing fileSystemId parameter")?;
    let directory_perms = get("directoryPerms").ok_or("Missing directoryPerms parameter")?;
    if !(3..=4).contains(&directory_perms.len())
        || !directory_perms.chars().all(|c| ('0'..='7').contains(&c))
    {
        return Err(format!(
            "Invalid directoryPerms {directory_perms}: must be octal such as 700"
        ));
    }
    let num = |k: &str| -> std::result::Result<Option<i64>, String> {
        get(k)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| format!("Failed to parse invalid {k}: {v}"))
            })
            .transpose()
    };
    let start = num("gidRangeStart")?.unwrap_or(DEFAULT_GID_RANGE.0);
    let end = num("gidRangeEnd")?.unwrap_or(DEFAULT_GID_RANGE.1);
    if start <= 0 || end <= start {
        return Err(format!(
            "gidRangeStart ({start}) must be positive and below gidRangeEnd ({end})"
        ));
    }
    let base_path = get("basePath")
        .unwrap_or("")
        .trim_end_matches('/')
        .to_string();
    if !base_path.is_empty() && !base_path.starts_with('/') {
        return Err(format!("basePath {base_path} must be an absolute path"));
    }
    Ok(ClassParameters {
        file_system_id: file_system_id.to_string(),
        directory_perms: directory_perms.to_string(),
        gid_range: (start, end),
        uid: num("uid")?,
        gid: num("gid")?,
        base_path,
        ensure_unique_directory: get("ensureUniqueDirectory") != Some("false"),
    })
}

/// The lowest GID in `range` that no access point of the file system uses yet.
pub fn next_gid(used: &[i64], range: (i64, i64)) -> Option<i64> {
    let mut used: Vec<i64> = used
        .iter()
        .copied()
        .filter(|g| (range.0..=range.1).contains(g))
        .collect();
    used.sort_unstable();
    let mut candidate = range.0;
    for g in used {
        if g == candidate {
            candidate += 1;
        } else if g > candidate {
            break;
        }
    }
    (candidate <= range.1).then_some(candidate)
}

pub async fn run(
    client: Arc<dyn ApiClient>,
    store: Arc<dyn Store>,
    binding: EksBinding,
    shutdown: watch::Receiver<bool>,
) {
    let mut informers = skiff_controllers::Informers::new(client.clone());
    let queue = WorkQueue::new();
    let events = EventRecorder::new(client.clone(), NAME, Arc::new(SystemClock));
    let ctl = Arc::new(EfsCsiController {
        client: client.clone(),
        store,
        binding,
        events,
        allocation: tokio::sync::Mutex::new(()),
    });
    let handler = |prefix: &'static str| {
        let q = queue.clone();
        Arc::new(move |c: &Change| q.add(&format!("{prefix}:{}", key_of(c.object()))))
    };
    informers.get(nodes()).add_handler(handler("node"));
    informers.get(pvcs()).add_handler(handler("pvc"));
    informers.get(pvs()).add_handler(handler("pv"));
    let informer_tasks = informers.start(shutdown.clone()).await;
    queue.add("setup");
    reconcile::run(ctl, queue, 2, shutdown).await;
    for t in informer_tasks {
        let _ = t.await;
    }
}

/// The reconciler behind [`run`].
pub struct EfsCsiController {
    client: Arc<dyn ApiClient>,
    store: Arc<dyn Store>,
    binding: EksBinding,
    events: Arc<EventRecorder>,
    /// Held from picking a GID to creating its access point, so parallel claims never share one
    /// (the driver's own GID allocator is locked the same way).
    allocation: tokio::sync::Mutex<()>,
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

impl EfsCsiController {
    async fn efs(&self, op: &str, input: Value) -> std::result::Result<Value, AwsError> {
        let mut ctx = crate::service_context::service_context(
            self.store.clone(),
            &self.binding.account,
            &self.binding.region,
        );
        ctx.caller.arn = format!(
            "arn:aws:sts::{}:assumed-role/AmazonEKS_EFS_CSI_DriverRole/efs-csi-controller",
            self.binding.account
        );
        skiff_aws::dispatch(&ctx, "elasticfilesystem", op, input).await
    }

    async fn setup(&self) -> Result<()> {
        match self
            .client
            .create(&csi_drivers(), csi_driver_object(), &opts())
            .await
        {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The node plugin's registration: the driver in the Node's CSINode (made by the EBS driver's
    /// registration when it is absent).
    async fn sync_node(&self, name: &str) -> Result<Action> {
        let Some(node) = self.client.get_opt(&nodes(), name).await? else {
            return Ok(Action::AwaitChange);
        };
        let Some(instance) =
            crate::node_object::instance_of_provider_id(s(&node, "/spec/providerID"))
        else {
            return Ok(Action::AwaitChange); // Fargate or hand-made: no EFS node plugin
        };
        let Some(mut csi_node) = self.client.get_opt(&csi_nodes(), name).await? else {
            return Ok(Action::Requeue(RETRY));
        };
        let mut drivers = csi_node["spec"]["drivers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if drivers.iter().any(|d| d["name"] == DRIVER) {
            return Ok(Action::AwaitChange);
        }
        drivers.push(json!({"name": DRIVER, "nodeID": instance, "topologyKeys": null}));
        csi_node["spec"]["drivers"] = json!(drivers);
        match self.client.update(&csi_nodes(), csi_node, &opts()).await {
            Ok(_) => Ok(Action::AwaitChange),
            // Raced the EBS registration: read again.
            Err(ApiError::Conflict { .. }) => Ok(Action::Requeue(Duration::ZERO)),
            Err(e) => Err(e.into()),
        }
    }

    /// The access point a PV name already has (the client token is the PV name).
    async fn existing_access_point(&self, fs: &str, pv_name: &str) -> Result<Option<Value>> {
        let out = self
            .efs("DescribeAccessPoints", json!({"FileSystemId": fs}))
            .await?;
        Ok(out["AccessPoints"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["ClientToken"] == pv_name)
            .cloned())
    }

    async fn used_gids(&self, fs: &str) -> Result<Vec<i64>> {
        let out = self
            .efs("DescribeAccessPoints", json!({"FileSystemId": fs}))
            .await?;
        Ok(out["AccessPoints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["PosixUser"]["Gid"].as_i64())
            .collect())
    }

    /// external-provisioner + CreateVolume (an access point) for one claim of an EFS class.
    async fn sync_claim(&self, key: &str) -> Result<Action> {
        let (ns, name) = key.split_once('/').unwrap_or(("", key));
        let Some(claim) = self.client.get_opt(&pvcs().in_namespace(ns), name).await? else {
            return Ok(Action::AwaitChange);
        };
        if claim["metadata"]["deletionTimestamp"].is_string()
            || !s(&claim, "/spec/volumeName").is_empty()
        {
            return Ok(Action::AwaitChange);
        }
        let class_name = s(&claim, "/spec/storageClassName");
        if class_name.is_empty() {
            return Ok(Action::AwaitChange);
        }
        let Some(class) = self.client.get_opt(&storage_classes(), class_name).await? else {
            return Ok(Action::AwaitChange);
        };
        if class["provisioner"] != DRIVER {
            return Ok(Action::AwaitChange);
        }
        let pv_name = format!("pvc-{}", s(&claim, "/metadata/uid"));
        if self.client.get_opt(&pvs(), &pv_name).await?.is_some() {
            return Ok(Action::AwaitChange); // the binder completes the binding
        }
        let fail = |message: String| {
            self.events.record(
                &claim,
                EventType::Warning,
                "ProvisioningFailed",
                &format!(
                    "failed to provision volume with StorageClass \"{class_name}\": rpc error: code = InvalidArgument desc = {message}"
                ),
            );
            Ok(Action::Requeue(Duration::from_secs(10)))
        };
        let params = match class_parameters(&class) {
            Ok(p) => p,
            Err(m) => return fail(m),
        };
        let _allocating = self.allocation.lock().await;
        let ap = match self
            .existing_access_point(&params.file_system_id, &pv_name)
            .await
        {
            Ok(Some(ap)) => ap,
            Ok(None) => {
                let gid = match params.gid {
                    Some(g) => g,
                    None => {
                        let used = self.used_gids(&params.file_system_id).await?;
                        match next_gid(&used, params.gid_range) {
                            Some(g) => g,
                            None => {
                                return fail(format!(
                                    "Failed to locate a free GID for given file system: {}",
                                    params.file_system_id
                                ));
                            }
                        }
                    }
                };
                let uid = params.uid.unwrap_or(gid);
                let mut dir = format!("{}/{pv_name}", params.base_path);
                if params.ensure_unique_directory {
                    dir = format!("{dir}-{}", uuid::Uuid::new_v4());
                }
                let input = json!({
                    "ClientToken": pv_name,
                    "FileSystemId": params.file_system_id,
                    "PosixUser": {"Uid": uid, "Gid": gid},
                    "RootDirectory": {"Path": dir, "CreationInfo": {
                        "OwnerUid": uid, "OwnerGid": gid, "Permissions": params.directory_perms}},
                    "Tags": [{"Key": "efs.csi.aws.com/cluster", "Value": "true"},
                             {"Key": format!("kubernetes.io/cluster/{}", self.binding.name), "Value": "owned"}],
                });
                match self.efs("CreateAccessPoint", input).await {
                    Ok(ap) if params.gid.is_none() => {
                        // Another provisioner (a second control plane on this file system) may
                        // have taken the same GID at the same moment: the access point with the
                        // smaller id keeps it, ours is removed and the claim retried.
                        let others = self
                            .efs(
                                "DescribeAccessPoints",
                                json!({"FileSystemId": params.file_system_id}),
                            )
                            .await?;
                        let mine = s(&ap, "/AccessPointId").to_string();
                        let clash =
                            others["AccessPoints"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .any(|o| {
                                    o["PosixUser"]["Gid"] == ap["PosixUser"]["Gid"]
                                        && o["AccessPointId"]
                                            .as_str()
                                            .is_some_and(|id| id < mine.as_str())
                                });
                        if clash {
                            self.efs("DeleteAccessPoint", json!({"AccessPointId": mine}))
                                .await?;
                            return Ok(Action::Requeue(Duration::ZERO));
                        }
                        ap
                    }
                    Ok(ap) => ap,
                    Err(e) if e.code == "FileSystemNotFound" => {
                        return fail(format!(
                            "File System does not exist: Resource was not found ({})",
                            params.file_system_id
                        ));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(EfsCsiError::Aws(e)) if e.code == "FileSystemNotFound" => {
                return fail(format!(
                    "File System does not exist: Resource was not found ({})",
                    params.file_system_id
                ));
            }
            Err(e) => return Err(e),
        };
        let handle = format!("{}::{}", params.file_system_id, s(&ap, "/AccessPointId"));
        let pv = pv_object(&claim, &class, &pv_name, &handle);
        match self.client.create(&pvs(), pv, &opts()).await {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(Action::AwaitChange),
            Err(e) => Err(e.into()),
        }
    }

    /// external-provisioner's DeleteVolume: a released (or deleted) `Delete` PV of this driver loses
    /// its access point, then the provisioner's finalizer.
    async fn sync_volume(&self, name: &str) -> Result<Action> {
        let Some(mut pv) = self.client.get_opt(&pvs(), name).await? else {
            return Ok(Action::AwaitChange);
        };
        let ours = s(
            &pv,
            &format!(
                "/metadata/annotations/{}",
                PROVISIONED_BY.replace('/', "~1")
            ),
        ) == DRIVER;
        let delete_policy = s(&pv, "/spec/persistentVolumeReclaimPolicy") == "Delete";
        let deleting = pv["metadata"]["deletionTimestamp"].is_string();
        let released = s(&pv, "/status/phase") == "Released";
        let claim_gone = match pv["spec"]["claimRef"]["name"].as_str() {
            Some(claim) => self
                .client
                .get_opt(
                    &pvcs().in_namespace(s(&pv, "/spec/claimRef/namespace")),
                    claim,
                )
                .await?
                .is_none_or(|c| c["metadata"]["uid"] != pv["spec"]["claimRef"]["uid"]),
            None => true,
        };
        if !ours || !delete_policy || !(released || (deleting && claim_gone)) {
            return Ok(Action::AwaitChange);
        }
        if let Some((_, ap)) = s(&pv, "/spec/csi/volumeHandle").split_once("::") {
            match self
                .efs("DeleteAccessPoint", json!({"AccessPointId": ap}))
                .await
            {
                Ok(_) => {}
                Err(e) if e.code == "AccessPointNotFound" => {}
                Err(e) => return Err(e.into()),
            }
        }
        let finalizers: Vec<Value> = pv["metadata"]["finalizers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f.as_str() != Some(PV_FINALIZER))
            .cloned()
            .collect();
        pv["metadata"]["finalizers"] = json!(finalizers);
        match self.client.update(&pvs(), pv, &opts()).await {
            Ok(_) | Err(ApiError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if !deleting {
            match self.client.delete(&pvs(), name, &Default::default()).await {
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Action::AwaitChange)
    }
}

/// The PV the provisioner makes: CSI source `fs-…::fsap-…`, the claim's modes and size (EFS is
/// elastic: the figure is only what was asked), no node affinity.
pub fn pv_object(claim: &Value, class: &Value, pv_name: &str, handle: &str) -> Value {
    let mut spec = json!({
        "accessModes": claim["spec"]["accessModes"],
        "capacity": {"storage": claim["spec"]["resources"]["requests"]["storage"]},
        "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "namespace": claim["metadata"]["namespace"], "name": claim["metadata"]["name"],
            "uid": claim["metadata"]["uid"], "resourceVersion": claim["metadata"]["resourceVersion"]},
        "csi": {"driver": DRIVER, "volumeHandle": handle,
            "volumeAttributes": {"storage.kubernetes.io/csiProvisionerIdentity": format!("{DRIVER}-skiff")}},
        "persistentVolumeReclaimPolicy": class["reclaimPolicy"].as_str().unwrap_or("Delete"),
        "storageClassName": class["metadata"]["name"],
        "volumeMode": claim["spec"]["volumeMode"].as_str().unwrap_or("Filesystem"),
    });
    if let Some(m) = class["mountOptions"].as_array() {
        spec["mountOptions"] = json!(m);
    }
    let mut pv = json!({"apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": pv_name, "annotations": {PROVISIONED_BY: DRIVER}}, "spec": spec});
    if pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete" {
        pv["metadata"]["finalizers"] = json!([PV_FINALIZER]);
    }
    pv
}

#[async_trait::async_trait]
impl Reconciler for EfsCsiController {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &str) -> std::result::Result<Action, Error> {
        let out = match key.split_once(':') {
            _ if key == "setup" => self.setup().await.map(|_| Action::AwaitChange),
            Some(("node", n)) => self.sync_node(n).await,
            Some(("pvc", k)) => self.sync_claim(k).await,
            Some(("pv", n)) => self.sync_volume(n).await,
            _ => Ok(Action::AwaitChange),
        };
        out.map_err(Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_parameters_are_checked_like_the_driver() {
        let class = |p: Value| json!({"parameters": p});
        let ok = class_parameters(&class(json!({"provisioningMode": "efs-ap",
            "fileSystemId": "fs-1", "directoryPerms": "700", "basePath": "/dynamic/",
            "gidRangeStart": "1000", "gidRangeEnd": "2000"})))
        .unwrap();
        assert_eq!(ok.gid_range, (1000, 2000));
        assert_eq!(ok.base_path, "/dynamic");
        assert!(ok.ensure_unique_directory);
        for (params, want) in [
            (json!({}), "Missing provisioningMode parameter"),
            (
                json!({"provisioningMode": "efs-ap"}),
                "Missing fileSystemId parameter",
            ),
            (
                json!({"provisioningMode": "efs-ap", "fileSystemId": "fs-1"}),
                "Missing directoryPerms parameter",
            ),
            (
                json!({"provisioningMode": "efs-ap", "fileSystemId": "fs-1", "directoryPerms": "700", "gidRangeStart": "x"}),
                "Failed to parse invalid gidRangeStart: x",
            ),
        ] {
            assert_eq!(class_parameters(&class(params)).unwrap_err(), want);
        }
        assert!(class_parameters(&class(json!({"provisioningMode": "efs-ap", "fileSystemId": "fs-1", "directoryPerms": "999"}))).is_err());
    }

    #[test]
    fn gids_fill_the_lowest_gap() {
        assert_eq!(next_gid(&[], (10, 12)), Some(10));
        assert_eq!(next_gid(&[10, 11], (10, 12)), Some(12));
        assert_eq!(next_gid(&[11, 10, 5, 99], (10, 12)), Some(12));
        assert_eq!(next_gid(&[10, 12], (10, 12)), Some(11));
        assert_eq!(next_gid(&[10, 11, 12], (10, 12)), None);
    }

    #[test]
    fn pvs_are_zone_free_and_carry_the_access_point() {
        let claim = json!({"metadata": {"name": "c", "namespace": "default", "uid": "u"},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "5Gi"}}}});
        let class = json!({"metadata": {"name": "efs-sc"}, "reclaimPolicy": "Delete"});
        let pv = pv_object(&claim, &class, "pvc-u", "fs-1::fsap-2");
        assert_eq!(pv["spec"]["csi"]["volumeHandle"], "fs-1::fsap-2");
        assert_eq!(pv["spec"]["accessModes"], json!(["ReadWriteMany"]));
        assert!(pv["spec"]["nodeAffinity"].is_null());
        assert_eq!(pv["metadata"]["finalizers"], json!([PV_FINALIZER]));
    }
}
