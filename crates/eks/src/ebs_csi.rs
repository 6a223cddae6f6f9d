//! The Amazon EBS CSI driver (the `aws-ebs-csi-driver` add-on), built in: its controller half
//! (external-provisioner, external-attacher, external-resizer sidecars plus the driver's
//! CreateVolume / ControllerPublishVolume), the node half's registration (a CSINode per Node and
//! the `topology.ebs.csi.aws.com/zone` label), and the attach/detach controller's share of
//! kube-controller-manager (a VolumeAttachment per (volume, node) in use by a pod).
//!
//! Everything AWS-side goes through the EC2 operations a user sees (`aws ec2 describe-volumes`),
//! in the cluster's account and region. Volumes are found again by their `CSIVolumeName` tag, so a
//! retried or restarted provision never creates a second volume.
//!
//! One work queue carries every kind of work, keyed `setup`, `node:<name>`, `pvc:<ns>/<name>`,
//! `pv:<name>`, `va:<name>` and `attach` (recompute the wanted VolumeAttachments).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_controllers::runtime::informer::{Change, key_of};
use skiff_controllers::runtime::queue::WorkQueue;
use skiff_controllers::runtime::reconcile::{self, Action, Error, Reconciler};
use skiff_k8s_core::client::{ApiClient, ListOptions, ResourceRef, WriteOptions};
use skiff_k8s_core::quantity::Quantity;
use skiff_k8s_core::status::ApiError;
use skiff_store::Store;
use tokio::sync::watch;

use crate::cluster_dir::EksBinding;

/// The driver name (CSIDriver object, `provisioner`, `spec.csi.driver`, VolumeAttachment attacher).
pub const DRIVER: &str = "ebs.csi.aws.com";
/// The in-tree provisioner of EKS's `gp2` class, migrated to this driver (CSIMigrationAWS).
pub const IN_TREE: &str = "kubernetes.io/aws-ebs";
/// The identity the controller acts as, as the add-on installs it.
pub const CONTROLLER_USER: &str = "system:serviceaccount:kube-system:ebs-csi-controller-sa";
/// The topology key the node plugin reports.
pub const ZONE_KEY: &str = "topology.ebs.csi.aws.com/zone";
/// The well-known zone label (PV node affinity; Nodes carry it).
pub const WELL_KNOWN_ZONE: &str = "topology.kubernetes.io/zone";
/// external-provisioner's finalizer on PVs it provisioned (HonorPVReclaimPolicy): a deleted PV
/// of policy Delete keeps existing until its EBS volume is gone.
pub const PV_FINALIZER: &str = "external-provisioner.volume.kubernetes.io/finalizer";
/// external-attacher's finalizer on VolumeAttachments it attached.
pub const ATTACHER_FINALIZER: &str = "external-attacher/ebs-csi-aws-com";
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
pub const MIGRATED_TO: &str = "pv.kubernetes.io/migrated-to";
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
pub const DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
/// Field manager of every write.
pub const NAME: &str = "ebs-csi-controller";
const GIB: i64 = 1 << 30;
/// Look again this often while waiting on something without an event (a detach before delete).
const RETRY: Duration = Duration::from_secs(1);

fn r(group: &str, version: &str, plural: &str) -> ResourceRef {
    ResourceRef::new(group, version, plural)
}
pub fn nodes() -> ResourceRef {
    r("", "v1", "nodes")
}
pub fn pods() -> ResourceRef {
    r("", "v1", "pods")
}
pub fn pvcs() -> ResourceRef {
    r("", "v1", "persistentvolumeclaims")
}
pub fn pvs() -> ResourceRef {
    r("", "v1", "persistentvolumes")
}
pub fn storage_classes() -> ResourceRef {
    r("storage.k8s.io", "v1", "storageclasses")
}
pub fn csi_drivers() -> ResourceRef {
    r("storage.k8s.io", "v1", "csidrivers")
}
pub fn csi_nodes() -> ResourceRef {
    r("storage.k8s.io", "v1", "csinodes")
}
pub fn volume_attachments() -> ResourceRef {
    r("storage.k8s.io", "v1", "volumeattachments")
}

/// Why a reconcile stopped.
#[derive(Debug, thiserror::Error)]
pub enum EbsError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("{}: {}", .0.code, .0.message)]
    Aws(AwsError),
}

impl From<AwsError> for EbsError {
    fn from(e: AwsError) -> Self {
        EbsError::Aws(e)
    }
}

impl From<EbsError> for Error {
    fn from(e: EbsError) -> Self {
        match e {
            EbsError::Api(a) => Error::Api(a),
            EbsError::Aws(a) => Error::Invalid(format!("{}: {}", a.code, a.message)),
        }
    }
}

type Result<T> = std::result::Result<T, EbsError>;

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn opts() -> WriteOptions {
    WriteOptions {
        field_manager: Some(NAME.into()),
        dry_run: false,
    }
}

/// The CSIDriver object the add-on installs.
pub fn csi_driver_object() -> Value {
    json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
        "metadata": {"name": DRIVER, "labels": {"app.kubernetes.io/name": "aws-ebs-csi-driver",
            "app.kubernetes.io/managed-by": "EKS"}},
        "spec": {"attachRequired": true, "podInfoOnMount": false, "fsGroupPolicy": "File",
            "requiresRepublish": false, "storageCapacity": false,
            "volumeLifecycleModes": ["Persistent"]}})
}

/// EKS's `gp2` StorageClass: in-tree provisioner (served by this driver through CSI migration),
/// the cluster default only before Kubernetes 1.30 (EKS dropped the annotation from 1.30 on).
pub fn gp2_storage_class(kubernetes_version: &str) -> Value {
    let mut sc = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": "gp2"},
        "provisioner": IN_TREE, "parameters": {"type": "gp2", "fsType": "ext4"},
        "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"});
    let minor = kubernetes_version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse::<u32>().ok())
        .unwrap_or(u32::MAX);
    if minor < 30 {
        sc["metadata"]["annotations"] = json!({DEFAULT_CLASS: "true"});
    }
    sc
}

/// How many EBS volumes the node plugin reports it can attach (`allocatable.count`): Nitro
/// instances share 28 attachment slots with ENIs (one at boot) and the root volume; Xen families
/// have 39 for volumes alone, less the root volume.
pub fn attach_limit(instance_type: &str) -> i64 {
    let family = instance_type.split('.').next().unwrap_or_default();
    const XEN: &[&str] = &[
        "t1", "t2", "m1", "m2", "m3", "m4", "c1", "c3", "c4", "r3", "r4", "i2", "i3", "d2", "x1",
        "x1e", "g2", "g3", "p2", "p3", "h1", "f1",
    ];
    if XEN.contains(&family) {
        39 - 1
    } else {
        28 - 1 - 1
    }
}

/// `csi-<sha256(volumeHandle + attacher + node)>`, the attach/detach controller's name.
pub fn attachment_name(volume_handle: &str, node: &str) -> String {
    let digest =
        skiff_aws_model::sigv4::sha256_hex(format!("{volume_handle}{DRIVER}{node}").as_bytes());
    format!("csi-{digest}")
}

/// The EBS volume id of a PersistentVolume this driver serves (CSI or migrated in-tree).
pub fn volume_id(pv: &Value) -> Option<String> {
    if pv["spec"]["csi"]["driver"] == DRIVER {
        return pv["spec"]["csi"]["volumeHandle"]
            .as_str()
            .map(str::to_string);
    }
    let id = pv["spec"]["awsElasticBlockStore"]["volumeID"].as_str()?;
    // `aws://us-east-1a/vol-…` or the bare id.
    id.rsplit('/')
        .next()
        .filter(|v| v.starts_with("vol-"))
        .map(str::to_string)
}

/// Size in GiB, rounded up, at least 1 (the driver's `RoundUpBytes`).
pub fn round_up_gib(request: &str) -> Option<i64> {
    let q = Quantity::parse(request).ok()?;
    let bytes = q.value();
    if bytes < 0 {
        return None;
    }
    Some(((bytes + GIB - 1) / GIB).max(1))
}

/// The CreateVolume request of a claim (parameters as the driver reads them).
pub fn create_volume_input(
    class: &Value,
    size_gib: i64,
    zone: &str,
    tags: &[(String, String)],
) -> std::result::Result<Value, String> {
    let params = class["parameters"].as_object().cloned().unwrap_or_default();
    let mut input = json!({"AvailabilityZone": zone, "Size": size_gib, "VolumeType": "gp3"});
    let mut tags: Vec<(String, String)> = tags.to_vec();
    for (k, v) in &params {
        let v = v.as_str().unwrap_or_default();
        match k.to_ascii_lowercase().as_str() {
            "type" => input["VolumeType"] = json!(v),
            "iops" => {
                input["Iops"] = json!(
                    v.parse::<i64>()
                        .map_err(|_| format!("Could not parse invalid iops: {v}"))?
                )
            }
            "iopspergb" => {
                let per: i64 = v
                    .parse()
                    .map_err(|_| format!("Could not parse invalid iopsPerGB: {v}"))?;
                input["Iops"] = json!(per * size_gib);
            }
            "throughput" => {
                input["Throughput"] = json!(
                    v.parse::<i64>()
                        .map_err(|_| format!("Could not parse invalid throughput: {v}"))?
                )
            }
            "encrypted" => input["Encrypted"] = json!(v == "true"),
            "kmskeyid" => input["KmsKeyId"] = json!(v),
            k if k.starts_with("tagspecification") => {
                if let Some((tk, tv)) = v.split_once('=') {
                    tags.push((tk.to_string(), tv.to_string()));
                }
            }
            _ => {}
        }
    }
    input["TagSpecifications"] = json!([{"ResourceType": "volume",
        "Tags": tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()}]);
    Ok(input)
}

/// The filesystem type a class asks for (`csi.storage.k8s.io/fstype`, `fsType`), ext4 by default.
fn fs_type(class: &Value) -> String {
    let p = &class["parameters"];
    p["csi.storage.k8s.io/fstype"]
        .as_str()
        .or_else(|| p["fsType"].as_str())
        .or_else(|| p["fstype"].as_str())
        .unwrap_or("ext4")
        .to_string()
}

/// Devices the driver hands out: `/dev/xvdba` … `/dev/xvdbz`, then `/dev/xvdca` ….
pub fn next_device(used: &BTreeSet<String>) -> Option<String> {
    ('b'..='c')
        .flat_map(|a| ('a'..='z').map(move |b| format!("/dev/xvd{a}{b}")))
        .find(|d| !used.contains(d))
}

/// Runs the driver's controller half for one cluster until `shutdown` flips.
pub async fn run(
    client: Arc<dyn ApiClient>,
    store: Arc<dyn Store>,
    binding: EksBinding,
    kubernetes_version: String,
    shutdown: watch::Receiver<bool>,
) {
    let mut informers = skiff_controllers::Informers::new(client.clone());
    let queue = WorkQueue::new();
    let ctl = Arc::new(EbsCsiController {
        client: client.clone(),
        store,
        binding,
        kubernetes_version,
    });
    let handler = |prefix: &'static str, attach: bool| {
        let q = queue.clone();
        Arc::new(move |c: &Change| {
            if !prefix.is_empty() {
                q.add(&format!("{prefix}:{}", key_of(c.object())));
            }
            if attach {
                q.add("attach");
            }
        })
    };
    informers.get(nodes()).add_handler(handler("node", true));
    informers.get(pvcs()).add_handler(handler("pvc", true));
    informers.get(pvs()).add_handler(handler("pv", true));
    informers.get(pods()).add_handler(handler("", true));
    informers
        .get(volume_attachments())
        .add_handler(handler("va", true));
    let informer_tasks = informers.start(shutdown.clone()).await;
    queue.add("setup");
    reconcile::run(ctl, queue, 2, shutdown).await;
    for t in informer_tasks {
        let _ = t.await;
    }
}

/// The reconciler behind [`run`].
pub struct EbsCsiController {
    client: Arc<dyn ApiClient>,
    store: Arc<dyn Store>,
    binding: EksBinding,
    kubernetes_version: String,
}

impl EbsCsiController {
    pub fn new(
        client: Arc<dyn ApiClient>,
        store: Arc<dyn Store>,
        binding: EksBinding,
        kubernetes_version: String,
    ) -> Self {
        Self {
            client,
            store,
            binding,
            kubernetes_version,
        }
    }

    async fn ec2(&self, op: &str, input: Value) -> std::result::Result<Value, AwsError> {
        let mut ctx = crate::service_context::service_context(
            self.store.clone(),
            &self.binding.account,
            &self.binding.region,
        );
        ctx.caller.arn = format!(
            "arn:aws:sts::{}:assumed-role/AmazonEKS_EBS_CSI_DriverRole/ebs-csi-controller",
            self.binding.account
        );
        skiff_aws::dispatch(&ctx, "ec2", op, input).await
    }

    async fn create_if_absent(&self, res: &ResourceRef, obj: Value) -> Result<()> {
        match self.client.create(res, obj, &opts()).await {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The CSIDriver object and EKS's StorageClass.
    async fn setup(&self) -> Result<()> {
        self.create_if_absent(&csi_drivers(), csi_driver_object())
            .await?;
        self.create_if_absent(
            &storage_classes(),
            gp2_storage_class(&self.kubernetes_version),
        )
        .await
    }

    /// Node registration: CSINode with the driver, and the driver's zone label on the Node.
    async fn sync_node(&self, name: &str) -> Result<()> {
        let Some(node) = self.client.get_opt(&nodes(), name).await? else {
            return Ok(());
        };
        let provider = s(&node, "/spec/providerID");
        let Some(instance) = crate::node_object::instance_of_provider_id(provider) else {
            return Ok(()); // not an EC2 node (Fargate, a hand-made Node)
        };
        let labels = &node["metadata"]["labels"];
        let zone = labels[WELL_KNOWN_ZONE]
            .as_str()
            .map(str::to_string)
            .or_else(|| {
                provider
                    .strip_prefix("aws:///")
                    .and_then(|r| r.split('/').next())
                    .map(str::to_string)
            })
            .unwrap_or_default();
        if labels[ZONE_KEY].as_str() != Some(zone.as_str()) && !zone.is_empty() {
            let mut n = node.clone();
            n["metadata"]["labels"][ZONE_KEY] = json!(zone);
            self.client.update(&nodes(), n, &opts()).await?;
        }
        let count = attach_limit(
            labels["node.kubernetes.io/instance-type"]
                .as_str()
                .unwrap_or_default(),
        );
        let driver = json!({"name": DRIVER, "nodeID": instance, "topologyKeys": [ZONE_KEY],
            "allocatable": {"count": count}});
        match self.client.get_opt(&csi_nodes(), name).await? {
            None => {
                let obj = json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
                    "metadata": {"name": name, "ownerReferences": [{"apiVersion": "v1",
                        "kind": "Node", "name": name, "uid": node["metadata"]["uid"]}]},
                    "spec": {"drivers": [driver]}});
                self.create_if_absent(&csi_nodes(), obj).await
            }
            Some(mut cn) => {
                let drivers = cn["spec"]["drivers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if drivers.iter().any(|d| d["name"] == DRIVER) {
                    return Ok(());
                }
                let mut drivers = drivers;
                drivers.push(driver);
                cn["spec"]["drivers"] = json!(drivers);
                self.client.update(&csi_nodes(), cn, &opts()).await?;
                Ok(())
            }
        }
    }

    /// The zone a claim's volume goes to: the selected node's, the class's allowed topology,
    /// else one of the cluster's subnet zones (chosen by the claim's uid, to spread claims).
    async fn zone_for(&self, claim: &Value, class: &Value) -> Result<Option<String>> {
        let selected = s(
            claim,
            &format!("/metadata/annotations/{}", SELECTED_NODE.replace('/', "~1")),
        );
        if !selected.is_empty() {
            let Some(node) = self.client.get_opt(&nodes(), selected).await? else {
                return Ok(None);
            };
            let l = &node["metadata"]["labels"];
            return Ok(l[ZONE_KEY]
                .as_str()
                .or_else(|| l[WELL_KNOWN_ZONE].as_str())
                .map(str::to_string));
        }
        for term in class["allowedTopologies"].as_array().into_iter().flatten() {
            for e in term["matchLabelExpressions"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if (e["key"] == ZONE_KEY || e["key"] == WELL_KNOWN_ZONE)
                    && let Some(z) = e["values"][0].as_str()
                {
                    return Ok(Some(z.to_string()));
                }
            }
        }
        let cluster = skiff_aws::eks::get_cluster(
            &*self.store,
            &self.binding.account,
            &self.binding.region,
            &self.binding.name,
        )
        .await?;
        let subnets = cluster
            .as_ref()
            .and_then(|c| c["resourcesVpcConfig"]["subnetIds"].as_array().cloned())
            .unwrap_or_default();
        if subnets.is_empty() {
            return Ok(None);
        }
        let out = self
            .ec2("DescribeSubnets", json!({"SubnetIds": subnets}))
            .await?;
        let zones: BTreeSet<String> = out["Subnets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["AvailabilityZone"].as_str().map(str::to_string))
            .collect();
        let zones: Vec<String> = zones.into_iter().collect();
        if zones.is_empty() {
            return Ok(None);
        }
        let uid = s(claim, "/metadata/uid");
        let pick = uid.bytes().fold(0usize, |a, b| a.wrapping_add(b as usize)) % zones.len();
        Ok(Some(zones[pick].clone()))
    }

    /// The volume tagged for `pv_name`, if an earlier attempt created it.
    async fn existing_volume(&self, pv_name: &str) -> Result<Option<Value>> {
        let out = self
            .ec2(
                "DescribeVolumes",
                json!({"Filters": [{"Name": "tag:CSIVolumeName", "Values": [pv_name]}]}),
            )
            .await?;
        Ok(out["Volumes"].get(0).cloned())
    }

    async fn claim_class(&self, claim: &Value) -> Result<Option<Value>> {
        let name = claim["spec"]["storageClassName"]
            .as_str()
            .or_else(|| {
                claim["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-class"].as_str()
            })
            .unwrap_or_default();
        if name.is_empty() {
            return Ok(None);
        }
        Ok(self.client.get_opt(&storage_classes(), name).await?)
    }

    /// external-provisioner + CreateVolume for one claim; then expansion for a bound one.
    async fn sync_claim(&self, key: &str) -> Result<Action> {
        let (ns, name) = key.split_once('/').unwrap_or(("", key));
        let res = pvcs().in_namespace(ns);
        let Some(claim) = self.client.get_opt(&res, name).await? else {
            return Ok(Action::AwaitChange);
        };
        if claim["metadata"]["deletionTimestamp"].is_string() {
            return Ok(Action::AwaitChange);
        }
        let Some(class) = self.claim_class(&claim).await? else {
            return Ok(Action::AwaitChange);
        };
        let provisioner = class["provisioner"].as_str().unwrap_or_default();
        if provisioner != DRIVER && provisioner != IN_TREE {
            return Ok(Action::AwaitChange);
        }
        let bound = s(&claim, "/spec/volumeName");
        if !bound.is_empty() {
            return self.expand(&claim, &class, bound).await;
        }
        let wffc = class["volumeBindingMode"] == "WaitForFirstConsumer";
        let selected = claim["metadata"]["annotations"][SELECTED_NODE].is_string();
        if wffc && !selected {
            return Ok(Action::AwaitChange);
        }
        let uid = s(&claim, "/metadata/uid");
        let pv_name = format!("pvc-{uid}");
        if self.client.get_opt(&pvs(), &pv_name).await?.is_some() {
            return Ok(Action::AwaitChange); // the binder completes the binding
        }
        let request = s(&claim, "/spec/resources/requests/storage");
        let Some(size) = round_up_gib(request) else {
            return Err(EbsError::Aws(AwsError::new(
                "InvalidParameterValue",
                format!("claim {key}: invalid storage request {request:?}"),
            )));
        };
        let volume = match self.existing_volume(&pv_name).await? {
            Some(v) => v,
            None => {
                let Some(zone) = self.zone_for(&claim, &class).await? else {
                    return Ok(Action::Requeue(RETRY));
                };
                let tags = vec![
                    ("CSIVolumeName".to_string(), pv_name.clone()),
                    ("ebs.csi.aws.com/cluster".to_string(), "true".to_string()),
                    (
                        format!("kubernetes.io/cluster/{}", self.binding.name),
                        "owned".to_string(),
                    ),
                    (
                        "kubernetes.io/created-for/pvc/name".to_string(),
                        name.to_string(),
                    ),
                    (
                        "kubernetes.io/created-for/pvc/namespace".to_string(),
                        ns.to_string(),
                    ),
                    (
                        "kubernetes.io/created-for/pv/name".to_string(),
                        pv_name.clone(),
                    ),
                ];
                let input = create_volume_input(&class, size, &zone, &tags)
                    .map_err(|m| EbsError::Aws(AwsError::new("InvalidParameterValue", m)))?;
                self.ec2("CreateVolume", input).await?
            }
        };
        let vol_id = volume["VolumeId"].as_str().unwrap_or_default().to_string();
        let zone = volume["AvailabilityZone"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let size = volume["Size"].as_i64().unwrap_or(size);
        let pv = self.pv_object(&claim, &class, &pv_name, &vol_id, &zone, size);
        self.create_if_absent(&pvs(), pv).await?;
        Ok(Action::AwaitChange)
    }

    fn pv_object(
        &self,
        claim: &Value,
        class: &Value,
        pv_name: &str,
        vol_id: &str,
        zone: &str,
        size_gib: i64,
    ) -> Value {
        let in_tree = class["provisioner"] == IN_TREE;
        let mut annotations = json!({PROVISIONED_BY: if in_tree { IN_TREE } else { DRIVER },
            "volume.kubernetes.io/provisioner-deletion-secret-name": "",
            "volume.kubernetes.io/provisioner-deletion-secret-namespace": ""});
        let (source_key, source, zone_key) = if in_tree {
            annotations[MIGRATED_TO] = json!(DRIVER);
            (
                "awsElasticBlockStore",
                json!({"volumeID": format!("aws://{zone}/{vol_id}"), "fsType": fs_type(class)}),
                WELL_KNOWN_ZONE,
            )
        } else {
            (
                "csi",
                json!({"driver": DRIVER, "volumeHandle": vol_id, "fsType": fs_type(class),
                    "volumeAttributes": {"storage.kubernetes.io/csiProvisionerIdentity": format!("{}-{DRIVER}", self.binding.name)}}),
                WELL_KNOWN_ZONE,
            )
        };
        let mut spec = json!({
            "accessModes": claim["spec"]["accessModes"],
            "capacity": {"storage": format!("{size_gib}Gi")},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "namespace": claim["metadata"]["namespace"], "name": claim["metadata"]["name"],
                "uid": claim["metadata"]["uid"], "resourceVersion": claim["metadata"]["resourceVersion"]},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": zone_key, "operator": "In", "values": [zone]}]}]}},
            "persistentVolumeReclaimPolicy": class["reclaimPolicy"].as_str().unwrap_or("Delete"),
            "storageClassName": class["metadata"]["name"],
            "volumeMode": claim["spec"]["volumeMode"].as_str().unwrap_or("Filesystem"),
        });
        spec[source_key] = source;
        if let Some(m) = class["mountOptions"].as_array() {
            spec["mountOptions"] = json!(m);
        }
        let mut pv = json!({"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": pv_name, "annotations": annotations}, "spec": spec});
        if pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete" {
            pv["metadata"]["finalizers"] = json!([PV_FINALIZER]);
        }
        pv
    }

    /// external-resizer: a bound claim asking for more than its volume has → ModifyVolume, the PV's
    /// capacity raised, the claim marked `FileSystemResizePending` until a node grows the
    /// filesystem (done here at once when the volume is attached: the simulated kubelet's share).
    async fn expand(&self, claim: &Value, class: &Value, pv_name: &str) -> Result<Action> {
        let Some(mut pv) = self.client.get_opt(&pvs(), pv_name).await? else {
            return Ok(Action::AwaitChange);
        };
        let Some(vol_id) = volume_id(&pv) else {
            return Ok(Action::AwaitChange);
        };
        let want = round_up_gib(s(claim, "/spec/resources/requests/storage")).unwrap_or(0);
        let have = round_up_gib(s(&pv, "/spec/capacity/storage")).unwrap_or(0);
        let ns = s(claim, "/metadata/namespace").to_string();
        let res = pvcs().in_namespace(&ns);
        if want > have {
            if class["allowVolumeExpansion"] != true {
                return Ok(Action::AwaitChange);
            }
            // A retry after a failed PV write finds the volume grown already.
            let current = self
                .ec2("DescribeVolumes", json!({"VolumeIds": [vol_id]}))
                .await?;
            if current["Volumes"][0]["Size"].as_i64().unwrap_or(0) < want {
                self.ec2("ModifyVolume", json!({"VolumeId": vol_id, "Size": want}))
                    .await?;
            }
            pv["spec"]["capacity"]["storage"] = json!(format!("{want}Gi"));
            self.client.update(&pvs(), pv, &opts()).await?;
            let mut c = claim.clone();
            c["status"]["allocatedResources"] = json!({"storage": format!("{want}Gi")});
            c["status"]["conditions"] = json!([{"type": "FileSystemResizePending", "status": "True",
                "lastTransitionTime": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "message": "Waiting for user to (re-)start a pod to finish file system resize of volume on node."}]);
            self.client.update_status(&res, c, &opts()).await?;
            return Ok(Action::Requeue(RETRY));
        }
        // Node expansion: once the volume is attached somewhere, the filesystem grows.
        let pending = claim["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "FileSystemResizePending");
        if pending {
            let attached = self
                .client
                .list(&volume_attachments(), &ListOptions::default())
                .await?
                .items
                .iter()
                .any(|va| {
                    s(va, "/spec/source/persistentVolumeName") == pv_name
                        && va["status"]["attached"] == true
                });
            if attached {
                let mut c = claim.clone();
                c["status"]["capacity"]["storage"] = json!(format!("{have}Gi"));
                c["status"]["conditions"] = json!([]);
                self.client.update_status(&res, c, &opts()).await?;
            }
        }
        Ok(Action::AwaitChange)
    }

    /// Deletes the EBS volume of a Released volume whose policy is Delete, then the PV.
    async fn sync_volume(&self, name: &str) -> Result<Action> {
        let Some(pv) = self.client.get_opt(&pvs(), name).await? else {
            return Ok(Action::AwaitChange);
        };
        let ours = matches!(
            s(
                &pv,
                &format!(
                    "/metadata/annotations/{}",
                    PROVISIONED_BY.replace('/', "~1")
                )
            ),
            DRIVER | IN_TREE
        );
        let delete_policy = s(&pv, "/spec/persistentVolumeReclaimPolicy") == "Delete";
        let deleting = pv["metadata"]["deletionTimestamp"].is_string();
        let finalizers: Vec<String> = pv["metadata"]["finalizers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect();
        let held = finalizers.iter().any(|f| f == PV_FINALIZER);
        // A deleted PV is reclaimed once its claim is gone (the phase may never leave Bound: the
        // binder leaves deleted volumes alone).
        let claim_gone = match pv["spec"]["claimRef"]["name"].as_str() {
            Some(claim) => {
                let res = pvcs().in_namespace(s(&pv, "/spec/claimRef/namespace"));
                self.client
                    .get_opt(&res, claim)
                    .await?
                    .is_none_or(|c| c["metadata"]["uid"] != pv["spec"]["claimRef"]["uid"])
            }
            None => true,
        };
        if ours && deleting && held && delete_policy && !claim_gone {
            return Ok(Action::Requeue(RETRY));
        }
        let reclaim =
            (s(&pv, "/status/phase") == "Released" || (deleting && held)) && delete_policy;
        if !ours || !reclaim {
            if deleting && held && !delete_policy {
                return self.release_finalizer(pv, finalizers).await;
            }
            return Ok(Action::AwaitChange);
        }
        if let Some(vol) = volume_id(&pv) {
            match self.ec2("DeleteVolume", json!({"VolumeId": vol})).await {
                Ok(_) => {}
                Err(e) if e.code == "InvalidVolume.NotFound" => {}
                // Still attached: the detach is under way.
                Err(e) if e.code == "VolumeInUse" => return Ok(Action::Requeue(RETRY)),
                Err(e) => return Err(e.into()),
            }
        }
        if held {
            self.release_finalizer(pv, finalizers).await?;
        }
        if !deleting {
            match self.client.delete(&pvs(), name, &Default::default()).await {
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Action::AwaitChange)
    }

    /// Drops the provisioner's finalizer from a PV.
    async fn release_finalizer(&self, mut pv: Value, finalizers: Vec<String>) -> Result<Action> {
        let kept: Vec<String> = finalizers
            .into_iter()
            .filter(|f| f != PV_FINALIZER)
            .collect();
        pv["metadata"]["finalizers"] = json!(kept);
        match self.client.update(&pvs(), pv, &opts()).await {
            Ok(_) | Err(ApiError::NotFound { .. }) => Ok(Action::AwaitChange),
            Err(e) => Err(e.into()),
        }
    }

    /// The attach/detach controller: a VolumeAttachment per (volume of this driver, node) that a
    /// pod on that node uses; the others are deleted (the attacher detaches them).
    async fn sync_attachments(&self) -> Result<Action> {
        let all = ListOptions::default();
        let pods = self.client.list(&pods(), &all).await?.items;
        let claims: BTreeMap<String, Value> = self
            .client
            .list(&pvcs(), &all)
            .await?
            .items
            .into_iter()
            .map(|c| (key_of(&c), c))
            .collect();
        let volumes: BTreeMap<String, Value> = self
            .client
            .list(&pvs(), &all)
            .await?
            .items
            .into_iter()
            .map(|v| (key_of(&v), v))
            .collect();
        let mut want: BTreeMap<String, (String, String)> = BTreeMap::new();
        for pod in &pods {
            let node = s(pod, "/spec/nodeName");
            let phase = s(pod, "/status/phase");
            if node.is_empty() || phase == "Succeeded" || phase == "Failed" {
                continue;
            }
            let ns = s(pod, "/metadata/namespace");
            for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
                let Some(claim) = v["persistentVolumeClaim"]["claimName"].as_str() else {
                    continue;
                };
                let Some(c) = claims.get(&format!("{ns}/{claim}")) else {
                    continue;
                };
                let pv_name = s(c, "/spec/volumeName");
                let Some(pv) = volumes.get(pv_name) else {
                    continue;
                };
                if let Some(handle) = volume_id(pv) {
                    want.insert(
                        attachment_name(&handle, node),
                        (pv_name.to_string(), node.to_string()),
                    );
                }
            }
        }
        let existing = self.client.list(&volume_attachments(), &all).await?.items;
        for va in &existing {
            let name = key_of(va);
            if va["spec"]["attacher"] == DRIVER
                && !want.contains_key(&name)
                && !va["metadata"]["deletionTimestamp"].is_string()
            {
                match self
                    .client
                    .delete(&volume_attachments(), &name, &Default::default())
                    .await
                {
                    Ok(_) | Err(ApiError::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        for (name, (pv, node)) in want {
            if existing.iter().any(|va| key_of(va) == name) {
                continue;
            }
            let va = json!({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
                "metadata": {"name": name},
                "spec": {"attacher": DRIVER, "nodeName": node, "source": {"persistentVolumeName": pv}}});
            self.create_if_absent(&volume_attachments(), va).await?;
        }
        Ok(Action::AwaitChange)
    }

    /// external-attacher + ControllerPublish/Unpublish for one VolumeAttachment.
    async fn sync_attachment(&self, name: &str) -> Result<Action> {
        let Some(mut va) = self.client.get_opt(&volume_attachments(), name).await? else {
            return Ok(Action::AwaitChange);
        };
        if va["spec"]["attacher"] != DRIVER {
            return Ok(Action::AwaitChange);
        }
        let finalizers: Vec<String> = va["metadata"]["finalizers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect();
        let pv_name = s(&va, "/spec/source/persistentVolumeName").to_string();
        let node_name = s(&va, "/spec/nodeName").to_string();
        let pv = self.client.get_opt(&pvs(), &pv_name).await?;
        let vol = pv.as_ref().and_then(volume_id);
        let node = self.client.get_opt(&nodes(), &node_name).await?;
        let instance = node
            .as_ref()
            .and_then(|n| crate::node_object::instance_of_provider_id(s(n, "/spec/providerID")))
            .map(str::to_string);
        if va["metadata"]["deletionTimestamp"].is_string() {
            if !finalizers.iter().any(|f| f == ATTACHER_FINALIZER) {
                return Ok(Action::AwaitChange);
            }
            if let (Some(vol), Some(inst)) = (&vol, &instance) {
                match self
                    .ec2("DetachVolume", json!({"VolumeId": vol, "InstanceId": inst}))
                    .await
                {
                    Ok(_) => {}
                    // Already detached or gone: nothing left to undo.
                    Err(e)
                        if matches!(
                            e.code.as_str(),
                            "IncorrectState"
                                | "InvalidAttachment.NotFound"
                                | "InvalidVolume.NotFound"
                                | "InvalidInstanceID.NotFound"
                        ) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let kept: Vec<String> = finalizers
                .into_iter()
                .filter(|f| f != ATTACHER_FINALIZER)
                .collect();
            va["metadata"]["finalizers"] = json!(kept);
            match self.client.update(&volume_attachments(), va, &opts()).await {
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            return Ok(Action::AwaitChange);
        }
        if va["status"]["attached"] == true {
            return Ok(Action::AwaitChange);
        }
        let (Some(vol), Some(inst)) = (vol, instance) else {
            return Ok(Action::Requeue(RETRY));
        };
        if !finalizers.iter().any(|f| f == ATTACHER_FINALIZER) {
            let mut f = finalizers.clone();
            f.push(ATTACHER_FINALIZER.to_string());
            va["metadata"]["finalizers"] = json!(f);
            va = self
                .client
                .update(&volume_attachments(), va, &opts())
                .await?;
        }
        let described = self
            .ec2("DescribeVolumes", json!({"VolumeIds": [vol]}))
            .await?;
        let current = described["Volumes"][0]["Attachments"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["InstanceId"] == inst.as_str())
            .and_then(|a| a["Device"].as_str().map(str::to_string));
        let device = match current {
            Some(d) => d,
            None => {
                let on_instance = self
                    .ec2(
                        "DescribeVolumes",
                        json!({"Filters": [{"Name": "attachment.instance-id", "Values": [inst]}]}),
                    )
                    .await?;
                let used: BTreeSet<String> = on_instance["Volumes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|v| v["Attachments"].as_array().cloned().unwrap_or_default())
                    .filter(|a| a["InstanceId"] == inst.as_str())
                    .filter_map(|a| a["Device"].as_str().map(str::to_string))
                    .collect();
                let Some(device) = next_device(&used) else {
                    return Err(EbsError::Aws(AwsError::new(
                        "AttachmentLimitExceeded",
                        format!("no device name left on instance {inst}"),
                    )));
                };
                let attached = self
                    .ec2(
                        "AttachVolume",
                        json!({"VolumeId": vol, "InstanceId": inst, "Device": device}),
                    )
                    .await;
                if let Err(e) = attached {
                    // external-attacher reports the failure on the object, then retries.
                    va["status"] = json!({"attached": false, "attachError": {
                        "time": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                        "message": format!("rpc error: code = Internal desc = Could not attach volume {vol:?} to node {inst:?}: {}: {}", e.code, e.message)}});
                    self.client
                        .update_status(&volume_attachments(), va, &opts())
                        .await?;
                    return Err(e.into());
                }
                device
            }
        };
        va["status"] = json!({"attached": true, "attachmentMetadata": {"devicePath": device}});
        self.client
            .update_status(&volume_attachments(), va, &opts())
            .await?;
        Ok(Action::AwaitChange)
    }
}

#[async_trait::async_trait]
impl Reconciler for EbsCsiController {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &str) -> std::result::Result<Action, Error> {
        let out = match key.split_once(':') {
            _ if key == "setup" => self.setup().await.map(|_| Action::AwaitChange),
            _ if key == "attach" => self.sync_attachments().await,
            Some(("node", n)) => self.sync_node(n).await.map(|_| Action::AwaitChange),
            Some(("pvc", k)) => self.sync_claim(k).await,
            Some(("pv", n)) => self.sync_volume(n).await,
            Some(("va", n)) => self.sync_attachment(n).await,
            _ => Ok(Action::AwaitChange),
        };
        out.map_err(Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_gib() {
        assert_eq!(round_up_gib("1Gi"), Some(1));
        assert_eq!(round_up_gib("1G"), Some(1));
        assert_eq!(round_up_gib("1500Mi"), Some(2));
        assert_eq!(round_up_gib("1"), Some(1));
        assert_eq!(round_up_gib("4Ti"), Some(4096));
        assert_eq!(round_up_gib("lots"), None);
    }

    #[test]
    fn create_volume_reads_class_parameters() {
        let class = json!({"parameters": {"type": "io2", "iopsPerGB": "50", "encrypted": "true",
            "kmsKeyId": "arn:aws:kms:us-east-1:000000000000:key/k", "tagSpecification_1": "team=data"}});
        let tags = vec![("CSIVolumeName".to_string(), "pvc-1".to_string())];
        let input = create_volume_input(&class, 10, "us-east-1b", &tags).unwrap();
        assert_eq!(input["VolumeType"], "io2");
        assert_eq!(input["Iops"], 500);
        assert_eq!(input["Encrypted"], true);
        assert_eq!(
            input["KmsKeyId"],
            "arn:aws:kms:us-east-1:000000000000:key/k"
        );
        assert_eq!(input["AvailabilityZone"], "us-east-1b");
        let tags = &input["TagSpecifications"][0]["Tags"];
        assert_eq!(tags[0], json!({"Key": "CSIVolumeName", "Value": "pvc-1"}));
        assert_eq!(tags[1], json!({"Key": "team", "Value": "data"}));
        let gp3 = create_volume_input(&json!({}), 1, "z", &[]).unwrap();
        assert_eq!(gp3["VolumeType"], "gp3");
        assert!(create_volume_input(&json!({"parameters": {"iops": "x"}}), 1, "z", &[]).is_err());
    }

    #[test]
    fn gp2_is_default_only_before_1_30() {
        assert_eq!(
            gp2_storage_class("1.29")["metadata"]["annotations"][DEFAULT_CLASS],
            "true"
        );
        assert!(
            gp2_storage_class("1.33")["metadata"]
                .get("annotations")
                .is_none()
        );
    }

    #[test]
    fn names_devices_and_limits() {
        let a = attachment_name("vol-1", "n1");
        assert!(a.starts_with("csi-") && a.len() == 4 + 64);
        assert_ne!(a, attachment_name("vol-1", "n2"));
        let mut used = BTreeSet::new();
        assert_eq!(next_device(&used).unwrap(), "/dev/xvdba");
        used.insert("/dev/xvdba".to_string());
        assert_eq!(next_device(&used).unwrap(), "/dev/xvdbb");
        assert_eq!(attach_limit("t3.medium"), 26);
        assert_eq!(attach_limit("m4.large"), 38);
        let pv = json!({"spec": {"awsElasticBlockStore": {"volumeID": "aws://us-east-1a/vol-9"}}});
        assert_eq!(volume_id(&pv).as_deref(), Some("vol-9"));
        let pv = json!({"spec": {"csi": {"driver": DRIVER, "volumeHandle": "vol-8"}}});
        assert_eq!(volume_id(&pv).as_deref(), Some("vol-8"));
    }
}
