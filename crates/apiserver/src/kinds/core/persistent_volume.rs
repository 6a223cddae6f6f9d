//! PersistentVolume (`persistentvolumes`, `pv`): reclaim policy Retain, volumeMode Filesystem, phase
//! Pending on create, required capacity/access modes/source, and the CAPACITY/ACCESS MODES/CLAIM printer.

use k8s_openapi::api::core::v1::PersistentVolume as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use crate::kinds::typed::{
    Kind, age_cell, age_column, arr, child_map, col, default_field, name_cell, name_column, s,
};
use crate::kinds::validation::not_supported;
use crate::registry::strategy::Column;

pub(crate) struct PersistentVolume;

pub(crate) const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

impl Kind for PersistentVolume {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["pv"];
    const STATUS: bool = true;

    fn defaults(obj: &mut Value) {
        let spec = child_map(obj, "spec");
        default_field(spec, "persistentVolumeReclaimPolicy", "Retain");
        default_field(spec, "volumeMode", "Filesystem");
    }

    fn on_create(obj: &mut Value) {
        obj["status"] = json!({"phase": "Pending"});
    }

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if obj.pointer("/spec/capacity/storage").is_none() {
            errs.push(FieldError::required("spec.capacity", ""));
        }
        errs.extend(access_modes(obj, "spec.accessModes"));
        let sources = obj
            .get("spec")
            .and_then(Value::as_object)
            .map(|m| {
                m.keys()
                    .filter(|k| VOLUME_SOURCES.contains(&k.as_str()))
                    .count()
            })
            .unwrap_or(0);
        if sources == 0 {
            errs.push(FieldError::required("spec", "must specify a volume type"));
        } else if sources > 1 {
            errs.push(FieldError::forbidden(
                "spec",
                "may not specify more than 1 volume type",
            ));
        }
        let rp = obj
            .pointer("/spec/persistentVolumeReclaimPolicy")
            .unwrap_or(&Value::Null);
        if let Some(r) = rp.as_str()
            && !["Delete", "Recycle", "Retain"].contains(&r)
        {
            errs.push(not_supported(
                "spec.persistentVolumeReclaimPolicy",
                rp,
                &["Delete", "Recycle", "Retain"],
            ));
        }
        errs
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col(
                "Capacity",
                "string",
                "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity",
                0,
            ),
            col(
                "Access Modes",
                "string",
                "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes",
                0,
            ),
            col(
                "Reclaim Policy",
                "string",
                "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming",
                0,
            ),
            col(
                "Status",
                "string",
                "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase",
                0,
            ),
            col(
                "Claim",
                "string",
                "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding",
                0,
            ),
            col("StorageClass", "string", "StorageClass of the pv", 0),
            col(
                "VolumeAttributesClass",
                "string",
                "VolumeAttributesClass of the pv",
                0,
            ),
            col(
                "Reason",
                "string",
                "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.",
                0,
            ),
            age_column(),
            col(
                "VolumeMode",
                "string",
                "Indicates if a raw block device or a filesystem should be used.",
                1,
            ),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let claim = match (
            s(obj, "/spec/claimRef/namespace"),
            s(obj, "/spec/claimRef/name"),
        ) {
            (_, "") => String::new(),
            (ns, n) => format!("{ns}/{n}"),
        };
        let vac = s(obj, "/spec/volumeAttributesClassName");
        vec![
            name_cell(obj),
            json!(s(obj, "/spec/capacity/storage")),
            json!(access_modes_short(arr(obj, "/spec/accessModes"))),
            json!(s(obj, "/spec/persistentVolumeReclaimPolicy")),
            json!(s(obj, "/status/phase")),
            json!(claim),
            json!(s(obj, "/spec/storageClassName")),
            json!(if vac.is_empty() { "<unset>" } else { vac }),
            json!(s(obj, "/status/reason")),
            age_cell(obj, now),
            json!(s(obj, "/spec/volumeMode")),
        ]
    }
}

/// Every PV source field of `PersistentVolumeSource`.
const VOLUME_SOURCES: &[&str] = &[
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "csi",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "glusterfs",
    "hostPath",
    "iscsi",
    "local",
    "nfs",
    "photonPersistentDisk",
    "portworxVolume",
    "quobyte",
    "rbd",
    "scaleIO",
    "storageos",
    "vsphereVolume",
];

/// Required, supported access modes (PV and PVC).
pub(crate) fn access_modes(obj: &Value, path: &str) -> Vec<FieldError> {
    let modes = arr(obj, "/spec/accessModes");
    if modes.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    modes
        .iter()
        .filter(|m| !m.as_str().is_some_and(|m| ACCESS_MODES.contains(&m)))
        .map(|m| not_supported(path, m, ACCESS_MODES))
        .collect()
}

/// `RWO,ROX,RWX,RWOP` as upstream's `GetAccessModesAsString`.
pub(crate) fn access_modes_short(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    let mut out = Vec::new();
    for (long, short) in [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ] {
        if has(long) {
            out.push(short);
        }
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;

    #[test]
    fn defaults_validation_row() {
        let st = Typed::<PersistentVolume>::new();
        let mut pv = json!({"metadata": {"name": "pv1"}, "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/data"},
            "claimRef": {"namespace": "d", "name": "data"}}});
        st.prepare_for_create(&mut pv);
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(pv["status"]["phase"], "Pending");
        assert!(st.validate(&pv).is_empty(), "{:?}", st.validate(&pv));
        let row = st.row(&pv, jiff::Timestamp::now());
        assert_eq!(
            row[1..6],
            [
                json!("10Gi"),
                json!("RWO"),
                json!("Retain"),
                json!("Pending"),
                json!("d/data")
            ]
        );
        let e = st.validate(&json!({"spec": {}}));
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, vec!["spec.capacity", "spec.accessModes", "spec"]);
    }
}
