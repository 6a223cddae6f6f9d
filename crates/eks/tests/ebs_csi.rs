//! Contract of the built-in EBS CSI driver (issue 6) against a real store and a real control plane,
//! through the in-process client and the AWS domain: the add-on's CSIDriver, EKS's gp2 class, a
//! CSINode per Node; a claim of a `gp3` class becomes an EC2 volume in the selected node's zone and
//! a bound PV; a pod on the node attaches it (VolumeAttachment → in-use at `/dev/xvdba`); expansion
//! goes through ModifyVolume; deleting the pod detaches, deleting the claim deletes the volume
//! (Delete) or leaves it Released (Retain).

mod nodegroups_support;

use std::time::Duration;

use nodegroups_support::{Env, wait_for};
use serde_json::{Value, json};
use skiff_eks::ebs_csi::{self, DRIVER};
use skiff_k8s_core::client::{ApiClient, DeleteOptions, ResourceRef, WriteOptions};

const T: Duration = Duration::from_secs(30);

fn ns(r: ResourceRef) -> ResourceRef {
    r.in_namespace("default")
}

async fn get(client: &dyn ApiClient, r: &ResourceRef, name: &str) -> Option<Value> {
    client.get_opt(r, name).await.unwrap()
}

async fn volumes(env: &Env, filters: Value) -> Vec<Value> {
    env.call("ec2", "DescribeVolumes", json!({ "Filters": filters }))
        .await["Volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn volume_of(env: &Env, pv: &str) -> Option<Value> {
    volumes(env, json!([{"Name": "tag:CSIVolumeName", "Values": [pv]}]))
        .await
        .into_iter()
        .next()
}

async fn create(client: &dyn ApiClient, r: &ResourceRef, obj: Value) -> Value {
    client
        .create(r, obj, &WriteOptions::default())
        .await
        .unwrap()
}

async fn claim(client: &dyn ApiClient, name: &str, class: &str, size: &str) -> Value {
    create(
        client,
        &ns(ebs_csi::pvcs()),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "annotations": {ebs_csi::SELECTED_NODE: "n1"}},
            "spec": {"storageClassName": class, "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": size}}}}),
    )
    .await
}

/// Waits for the PV of `claim` to be provisioned and bound; returns (pv name, volume id).
async fn provisioned(env: &Env, client: &dyn ApiClient, claim: &Value) -> (String, String) {
    let pv_name = format!("pvc-{}", claim["metadata"]["uid"].as_str().unwrap());
    let name = claim["metadata"]["name"].as_str().unwrap().to_string();
    wait_for("claim bound", T, || async {
        get(client, &ns(ebs_csi::pvcs()), &name)
            .await
            .is_some_and(|c| {
                c["status"]["phase"] == "Bound" && c["spec"]["volumeName"] == pv_name.as_str()
            })
    })
    .await;
    let vol = volume_of(env, &pv_name)
        .await
        .expect("volume tagged CSIVolumeName");
    (pv_name, vol["VolumeId"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_become_volumes_attached_expanded_and_deleted() {
    let env = Env::start().await;
    let (subnets, _) = env
        .cluster(
            "prod",
            &[("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")],
        )
        .await;
    let inst = env
        .call(
            "ec2",
            "RunInstances",
            json!({"ImageId": "ami-0123456789abcdef0", "MinCount": 1, "MaxCount": 1,
                   "InstanceType": "t3.medium", "SubnetId": subnets[1]}),
        )
        .await["Instances"][0]["InstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    let client = env.client("prod").await;
    let client = &*client;
    create(
        client,
        &ebs_csi::nodes(),
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {
            "topology.kubernetes.io/zone": "us-east-1b", "node.kubernetes.io/instance-type": "t3.medium"}},
            "spec": {"providerID": format!("aws:///us-east-1b/{inst}")}}),
    )
    .await;

    // The add-on's objects and the node registration.
    wait_for("CSINode", T, || async {
        get(client, &ebs_csi::csi_nodes(), "n1").await.is_some()
    })
    .await;
    let csi_node = get(client, &ebs_csi::csi_nodes(), "n1").await.unwrap();
    let d = &csi_node["spec"]["drivers"][0];
    assert_eq!(d["name"], DRIVER);
    assert_eq!(d["nodeID"], inst.as_str());
    assert_eq!(d["topologyKeys"], json!([ebs_csi::ZONE_KEY]));
    assert_eq!(d["allocatable"]["count"], 26);
    let driver = get(client, &ebs_csi::csi_drivers(), DRIVER).await.unwrap();
    assert_eq!(driver["spec"]["attachRequired"], true);
    assert_eq!(driver["spec"]["podInfoOnMount"], false);
    let gp2 = get(client, &ebs_csi::storage_classes(), "gp2")
        .await
        .unwrap();
    assert_eq!(gp2["provisioner"], "kubernetes.io/aws-ebs");
    assert!(gp2["metadata"]["annotations"][ebs_csi::DEFAULT_CLASS].is_null());
    wait_for("node zone label", T, || async {
        get(client, &ebs_csi::nodes(), "n1").await.unwrap()["metadata"]["labels"][ebs_csi::ZONE_KEY]
            == "us-east-1b"
    })
    .await;

    for (name, policy) in [("gp3", "Delete"), ("keep", "Retain")] {
        create(
            client,
            &ebs_csi::storage_classes(),
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": name}, "provisioner": DRIVER,
                "parameters": {"type": "gp3", "iops": "4000", "throughput": "250", "encrypted": "true"},
                "reclaimPolicy": policy, "volumeBindingMode": "WaitForFirstConsumer",
                "allowVolumeExpansion": true}),
        )
        .await;
    }

    // Provisioning: size rounded up, parameters, tags, zone of the selected node.
    let data = claim(client, "data", "gp3", "1500Mi").await;
    let (pv_name, vol) = provisioned(&env, client, &data).await;
    let v = volume_of(&env, &pv_name).await.unwrap();
    assert_eq!(v["Size"], 2);
    assert_eq!(v["VolumeType"], "gp3");
    assert_eq!(v["Iops"], 4000);
    assert_eq!(v["Throughput"], 250);
    assert_eq!(v["Encrypted"], true);
    assert_eq!(v["AvailabilityZone"], "us-east-1b");
    assert_eq!(v["State"], "available");
    let tag = |k: &str| {
        v["Tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["Key"] == k)
            .map(|t| t["Value"].clone())
    };
    assert_eq!(
        tag("kubernetes.io/created-for/pvc/name"),
        Some(json!("data"))
    );
    assert_eq!(
        tag("kubernetes.io/created-for/pvc/namespace"),
        Some(json!("default"))
    );
    assert_eq!(tag("kubernetes.io/cluster/prod"), Some(json!("owned")));
    let pv = get(client, &ebs_csi::pvs(), &pv_name).await.unwrap();
    assert_eq!(pv["spec"]["csi"]["driver"], DRIVER);
    assert_eq!(pv["spec"]["csi"]["volumeHandle"], vol.as_str());
    assert_eq!(pv["spec"]["csi"]["fsType"], "ext4");
    assert_eq!(pv["spec"]["capacity"]["storage"], "2Gi");
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Delete");
    assert_eq!(
        pv["metadata"]["annotations"][ebs_csi::PROVISIONED_BY],
        DRIVER
    );
    assert_eq!(
        pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"],
        json!(["us-east-1b"])
    );

    // A pod on the node: VolumeAttachment, AttachVolume, in-use.
    create(
        client,
        &ns(ebs_csi::pods()),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "db"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "postgres"}],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}}),
    )
    .await;
    let va_name = ebs_csi::attachment_name(&vol, "n1");
    wait_for("attached", T, || async {
        get(client, &ebs_csi::volume_attachments(), &va_name)
            .await
            .is_some_and(|va| va["status"]["attached"] == true)
    })
    .await;
    let va = get(client, &ebs_csi::volume_attachments(), &va_name)
        .await
        .unwrap();
    assert_eq!(
        va["status"]["attachmentMetadata"]["devicePath"],
        "/dev/xvdba"
    );
    assert_eq!(
        va["spec"]["source"]["persistentVolumeName"],
        pv_name.as_str()
    );
    let v = volume_of(&env, &pv_name).await.unwrap();
    assert_eq!(v["State"], "in-use");
    assert_eq!(v["Attachments"][0]["InstanceId"], inst.as_str());
    assert_eq!(v["Attachments"][0]["Device"], "/dev/xvdba");

    // Expansion: ModifyVolume, PV capacity, then the filesystem (the volume is attached).
    let mut c = get(client, &ns(ebs_csi::pvcs()), "data").await.unwrap();
    c["spec"]["resources"]["requests"]["storage"] = json!("5Gi");
    client
        .update(&ns(ebs_csi::pvcs()), c, &WriteOptions::default())
        .await
        .unwrap();
    wait_for("claim capacity 5Gi", T, || async {
        get(client, &ns(ebs_csi::pvcs()), "data").await.unwrap()["status"]["capacity"]["storage"]
            == "5Gi"
    })
    .await;
    assert_eq!(volume_of(&env, &pv_name).await.unwrap()["Size"], 5);
    assert_eq!(
        get(client, &ebs_csi::pvs(), &pv_name).await.unwrap()["spec"]["capacity"]["storage"],
        "5Gi"
    );

    // Pod gone → detached, VolumeAttachment removed; claim gone → volume and PV deleted.
    let now = DeleteOptions {
        grace_period_seconds: Some(0),
        ..DeleteOptions::default()
    };
    client
        .delete(&ns(ebs_csi::pods()), "db", &now)
        .await
        .unwrap();
    wait_for("VolumeAttachment removed", T, || async {
        get(client, &ebs_csi::volume_attachments(), &va_name)
            .await
            .is_none()
    })
    .await;
    assert_eq!(
        volume_of(&env, &pv_name).await.unwrap()["State"],
        "available"
    );
    client
        .delete(&ns(ebs_csi::pvcs()), "data", &DeleteOptions::default())
        .await
        .unwrap();
    wait_for("volume deleted", T, || async {
        volume_of(&env, &pv_name).await.is_none()
    })
    .await;
    wait_for("PV deleted", T, || async {
        get(client, &ebs_csi::pvs(), &pv_name).await.is_none()
    })
    .await;

    // Retain: the PV is Released and the volume stays.
    let kept = claim(client, "kept", "keep", "1Gi").await;
    let (kept_pv, _) = provisioned(&env, client, &kept).await;
    client
        .delete(&ns(ebs_csi::pvcs()), "kept", &DeleteOptions::default())
        .await
        .unwrap();
    wait_for("PV Released", T, || async {
        get(client, &ebs_csi::pvs(), &kept_pv)
            .await
            .is_some_and(|p| p["status"]["phase"] == "Released")
    })
    .await;
    assert!(volume_of(&env, &kept_pv).await.is_some());
    let kept_obj = get(client, &ebs_csi::pvs(), &kept_pv).await.unwrap();
    assert!(
        !kept_obj["metadata"]["finalizers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f == ebs_csi::PV_FINALIZER)
    );

    // EKS's gp2 class (in-tree, migrated): an awsElasticBlockStore PV of a gp2 volume.
    let legacy = claim(client, "legacy", "gp2", "1Gi").await;
    let (legacy_pv, legacy_vol) = provisioned(&env, client, &legacy).await;
    let pv = get(client, &ebs_csi::pvs(), &legacy_pv).await.unwrap();
    assert_eq!(
        pv["spec"]["awsElasticBlockStore"]["volumeID"],
        format!("aws://us-east-1b/{legacy_vol}")
    );
    assert_eq!(pv["metadata"]["annotations"][ebs_csi::MIGRATED_TO], DRIVER);
    assert_eq!(
        volume_of(&env, &legacy_pv).await.unwrap()["VolumeType"],
        "gp2"
    );
    assert_eq!(
        pv["metadata"]["finalizers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| *f == ebs_csi::PV_FINALIZER)
            .count(),
        1
    );

    // A pod on a node in another zone: the attach fails and the VolumeAttachment says why.
    let other = env
        .call(
            "ec2",
            "RunInstances",
            json!({"ImageId": "ami-0123456789abcdef0", "MinCount": 1, "MaxCount": 1,
                   "InstanceType": "t3.medium", "SubnetId": subnets[0]}),
        )
        .await["Instances"][0]["InstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    create(
        client,
        &ebs_csi::nodes(),
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2", "labels": {
            "topology.kubernetes.io/zone": "us-east-1a"}},
            "spec": {"providerID": format!("aws:///us-east-1a/{other}")}}),
    )
    .await;
    create(
        client,
        &ns(ebs_csi::pods()),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stray"},
            "spec": {"nodeName": "n2", "containers": [{"name": "c", "image": "busybox"}],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "legacy"}}]}}),
    )
    .await;
    let stray = ebs_csi::attachment_name(&legacy_vol, "n2");
    wait_for("attach error", T, || async {
        get(client, &ebs_csi::volume_attachments(), &stray)
            .await
            .is_some_and(|va| {
                va["status"]["attachError"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("InvalidVolume.ZoneMismatch"))
            })
    })
    .await;

    // Immediate binding: no node yet, the volume goes to one of the cluster's subnet zones.
    create(
        client,
        &ebs_csi::storage_classes(),
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "now"}, "provisioner": DRIVER, "volumeBindingMode": "Immediate"}),
    )
    .await;
    let now_claim = create(
        client,
        &ns(ebs_csi::pvcs()),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "now"},
            "spec": {"storageClassName": "now", "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}}}}),
    )
    .await;
    let (now_pv, _) = provisioned(&env, client, &now_claim).await;
    let zone = volume_of(&env, &now_pv).await.unwrap()["AvailabilityZone"].clone();
    assert!(zone == "us-east-1a" || zone == "us-east-1b", "{zone}");

    // Deleting the claim, then the PV object by hand, still removes the EBS volume (finalizer).
    client
        .delete(&ns(ebs_csi::pvcs()), "now", &DeleteOptions::default())
        .await
        .unwrap();
    client
        .delete(&ebs_csi::pvs(), &now_pv, &DeleteOptions::default())
        .await
        .unwrap();
    wait_for("volume of a deleted PV deleted", T, || async {
        volume_of(&env, &now_pv).await.is_none()
    })
    .await;
    // Our finalizer is gone (pv-protection, the binder's, is released with the Bound phase).
    wait_for("provisioner finalizer released", T, || async {
        get(client, &ebs_csi::pvs(), &now_pv).await.is_none_or(|p| {
            !p["metadata"]["finalizers"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|f| f == ebs_csi::PV_FINALIZER)
        })
    })
    .await;
}

/// The EFS CSI driver beside the EBS one: its CSIDriver (no attach), its CSINode entry, an `efs-ap`
/// class whose claims become access points with GIDs from the class's range and zone-free RWX PVs,
/// a class missing a parameter gets the driver's ProvisioningFailed event, and a released `Delete`
/// volume loses its access point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn efs_claims_become_access_points_and_go_with_their_volumes() {
    use skiff_eks::efs_csi;
    let env = Env::start().await;
    let (subnets, _) = env.cluster("prod", &[("10.0.1.0/24", "us-east-1a")]).await;
    let inst = env
        .call(
            "ec2",
            "RunInstances",
            json!({"ImageId": "ami-0123456789abcdef0", "MinCount": 1, "MaxCount": 1,
                   "InstanceType": "t3.medium", "SubnetId": subnets[0]}),
        )
        .await["Instances"][0]["InstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    let fs = env
        .call(
            "elasticfilesystem",
            "CreateFileSystem",
            json!({"CreationToken": "shared"}),
        )
        .await["FileSystemId"]
        .as_str()
        .unwrap()
        .to_string();
    let client = env.client("prod").await;
    let client = &*client;
    create(
        client,
        &ebs_csi::nodes(),
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {
            "topology.kubernetes.io/zone": "us-east-1a", "node.kubernetes.io/instance-type": "t3.medium"}},
            "spec": {"providerID": format!("aws:///us-east-1a/{inst}")}}),
    )
    .await;
    wait_for("EFS CSIDriver", T, || async {
        get(client, &ebs_csi::csi_drivers(), efs_csi::DRIVER)
            .await
            .is_some_and(|d| d["spec"]["attachRequired"] == false)
    })
    .await;
    wait_for("EFS in the CSINode", T, || async {
        get(client, &ebs_csi::csi_nodes(), "n1")
            .await
            .is_some_and(|n| {
                n["spec"]["drivers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|d| d["name"] == efs_csi::DRIVER && d["nodeID"] == inst.as_str())
            })
    })
    .await;

    for (name, params) in [
        (
            "efs-sc",
            json!({"provisioningMode": "efs-ap", "fileSystemId": fs, "directoryPerms": "700",
            "gidRangeStart": "1000", "gidRangeEnd": "2000", "basePath": "/dynamic"}),
        ),
        (
            "efs-broken",
            json!({"provisioningMode": "efs-ap", "directoryPerms": "700"}),
        ),
    ] {
        create(
            client,
            &ebs_csi::storage_classes(),
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": name}, "provisioner": efs_csi::DRIVER, "parameters": params,
                "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}),
        )
        .await;
    }
    let rwx = |name: &str, class: &str| {
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"storageClassName": class, "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": "5Gi"}}}})
    };
    let a = create(client, &ns(ebs_csi::pvcs()), rwx("shared-a", "efs-sc")).await;
    let b = create(client, &ns(ebs_csi::pvcs()), rwx("shared-b", "efs-sc")).await;
    let mut gids = Vec::new();
    for claim in [&a, &b] {
        let name = claim["metadata"]["name"].as_str().unwrap().to_string();
        let pv_name = format!("pvc-{}", claim["metadata"]["uid"].as_str().unwrap());
        wait_for("EFS claim bound", T, || async {
            get(client, &ns(ebs_csi::pvcs()), &name)
                .await
                .is_some_and(|c| c["status"]["phase"] == "Bound")
        })
        .await;
        let pv = get(client, &ebs_csi::pvs(), &pv_name).await.unwrap();
        assert!(
            pv["spec"]["nodeAffinity"].is_null(),
            "EFS volumes are zone-free"
        );
        assert_eq!(pv["spec"]["accessModes"], json!(["ReadWriteMany"]));
        let handle = pv["spec"]["csi"]["volumeHandle"]
            .as_str()
            .unwrap()
            .to_string();
        let (fs_of_pv, ap_id) = handle.split_once("::").expect("fs::fsap handle");
        assert_eq!(fs_of_pv, fs);
        let ap = env
            .call(
                "elasticfilesystem",
                "DescribeAccessPoints",
                json!({"AccessPointId": ap_id}),
            )
            .await["AccessPoints"][0]
            .clone();
        assert_eq!(ap["ClientToken"], pv_name.as_str());
        assert!(
            ap["RootDirectory"]["Path"]
                .as_str()
                .unwrap()
                .starts_with(&format!("/dynamic/{pv_name}-"))
        );
        assert_eq!(ap["RootDirectory"]["CreationInfo"]["Permissions"], "700");
        gids.push(ap["PosixUser"]["Gid"].as_i64().unwrap());
    }
    gids.sort_unstable();
    assert_eq!(
        gids,
        [1000, 1001],
        "GIDs come from the class's range, one per claim"
    );

    let broken = create(client, &ns(ebs_csi::pvcs()), rwx("broken", "efs-broken")).await;
    let uid = broken["metadata"]["uid"].as_str().unwrap().to_string();
    wait_for("ProvisioningFailed event", T, || async {
        client
            .list(
                &ns(ResourceRef::new("", "v1", "events")),
                &Default::default(),
            )
            .await
            .unwrap()
            .items
            .iter()
            .any(|e| {
                e["involvedObject"]["uid"] == uid.as_str()
                    && e["reason"] == "ProvisioningFailed"
                    && e["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("Missing fileSystemId parameter"))
            })
    })
    .await;

    client
        .delete(&ns(ebs_csi::pvcs()), "shared-a", &DeleteOptions::default())
        .await
        .unwrap();
    let pv_a = format!("pvc-{}", a["metadata"]["uid"].as_str().unwrap());
    wait_for(
        "released EFS volume deleted with its access point",
        T,
        || async { get(client, &ebs_csi::pvs(), &pv_a).await.is_none() },
    )
    .await;
    let left = env
        .call(
            "elasticfilesystem",
            "DescribeAccessPoints",
            json!({"FileSystemId": fs}),
        )
        .await["AccessPoints"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(left, 1, "only shared-b's access point is left");
}
