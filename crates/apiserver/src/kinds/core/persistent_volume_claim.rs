//! PersistentVolumeClaim (`persistentvolumeclaims`, `pvc`): volumeMode Filesystem, phase Pending, required
//! access modes and storage request, spec immutable except storage growth and binding fields.

use k8s_openapi::api::core::v1::PersistentVolumeClaim as Object;
use serde_json::{Value, json};
use skiff_k8s_core::quantity::Quantity;
use skiff_k8s_core::status::FieldError;

use super::persistent_volume::{access_modes, access_modes_short};
use crate::kinds::typed::{
    Kind, age_cell, age_column, arr, child_map, col, default_field, name_cell, name_column, s,
};
use crate::registry::strategy::Column;

pub(crate) struct PersistentVolumeClaim;

impl Kind for PersistentVolumeClaim {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["pvc"];
    const STATUS: bool = true;

    fn defaults(obj: &mut Value) {
        default_field(child_map(obj, "spec"), "volumeMode", "Filesystem");
    }

    fn on_create(obj: &mut Value) {
        obj["status"] = json!({"phase": "Pending"});
    }

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = access_modes(obj, "spec.accessModes");
        match obj.pointer("/spec/resources/requests/storage") {
            None => errs.push(FieldError::required("spec.resources[storage]", "")),
            Some(q) => {
                let text = q
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| q.to_string());
                match Quantity::parse(&text) {
                    Ok(v) if v.is_zero() || v.nanos() < 0 => errs.push(FieldError::invalid(
                        "spec.resources.requests[storage]",
                        json!(text),
                        "must be greater than zero",
                    )),
                    Ok(_) => {}
                    Err(e) => errs.push(FieldError::invalid(
                        "spec.resources.requests[storage]",
                        json!(text),
                        e.to_string(),
                    )),
                }
            }
        }
        errs
    }

    fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
        let strip = |v: &Value| {
            let mut spec = v.get("spec").cloned().unwrap_or(Value::Null);
            if let Some(m) = spec.as_object_mut() {
                m.remove("resources");
                m.remove("volumeAttributesClassName");
                // Binding fills these once.
                if old.pointer("/spec/volumeName").is_none_or(|v| v == "") {
                    m.remove("volumeName");
                }
                if old
                    .pointer("/spec/storageClassName")
                    .is_none_or(Value::is_null)
                {
                    m.remove("storageClassName");
                }
            }
            spec
        };
        let mut errs = Vec::new();
        if strip(new) != strip(old) {
            errs.push(FieldError::forbidden(
                "spec",
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
            ));
        }
        let q = |v: &Value| {
            v.pointer("/spec/resources/requests/storage")
                .and_then(|q| Quantity::parse(q.as_str().unwrap_or("")).ok())
                .map(|q| q.nanos())
        };
        if let (Some(n), Some(o)) = (q(new), q(old))
            && n < o
        {
            errs.push(FieldError::forbidden(
                "spec.resources.requests.storage",
                "field can not be less than previous value",
            ));
        }
        errs
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col(
                "Status",
                "string",
                "phase represents the current phase of PersistentVolumeClaim.",
                0,
            ),
            col(
                "Volume",
                "string",
                "volumeName is the binding reference to the PersistentVolume backing this claim.",
                0,
            ),
            col(
                "Capacity",
                "string",
                "capacity represents the actual resources of the underlying volume.",
                0,
            ),
            col(
                "Access Modes",
                "string",
                "accessModes contains the desired access modes the volume should have. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1",
                0,
            ),
            col("StorageClass", "string", "StorageClass of the pvc", 0),
            col(
                "VolumeAttributesClass",
                "string",
                "VolumeAttributesClass of the pvc",
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
        let phase = if obj
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|v| !v.is_null())
        {
            "Terminating"
        } else {
            s(obj, "/status/phase")
        };
        let vac = s(obj, "/spec/volumeAttributesClassName");
        let bound = !s(obj, "/spec/volumeName").is_empty();
        vec![
            name_cell(obj),
            json!(phase),
            json!(s(obj, "/spec/volumeName")),
            json!(if bound {
                s(obj, "/status/capacity/storage")
            } else {
                ""
            }),
            json!(if bound {
                access_modes_short(arr(obj, "/status/accessModes"))
            } else {
                String::new()
            }),
            json!(s(obj, "/spec/storageClassName")),
            json!(if vac.is_empty() { "<unset>" } else { vac }),
            age_cell(obj, now),
            json!(s(obj, "/spec/volumeMode")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;

    #[test]
    fn defaults_and_update_rules() {
        let st = Typed::<PersistentVolumeClaim>::new();
        let mut pvc = json!({"metadata": {"name": "data", "namespace": "d"}, "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "gp3",
            "resources": {"requests": {"storage": "1Gi"}}}});
        st.prepare_for_create(&mut pvc);
        assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
        assert_eq!(pvc["status"]["phase"], "Pending");
        assert!(st.validate(&pvc).is_empty(), "{:?}", st.validate(&pvc));
        let mut grow = pvc.clone();
        grow["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        grow["spec"]["volumeName"] = json!("pv-1");
        assert!(st.validate_update(&grow, &pvc).is_empty());
        let mut shrink = pvc.clone();
        shrink["spec"]["resources"]["requests"]["storage"] = json!("512Mi");
        assert_eq!(
            st.validate_update(&shrink, &pvc)[0].path,
            "spec.resources.requests.storage"
        );
        let mut other = pvc.clone();
        other["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        assert_eq!(st.validate_update(&other, &pvc)[0].path, "spec");
        assert_eq!(
            st.validate(&json!({"spec": {"accessModes": ["ReadWriteOnce"]}}))[0].path,
            "spec.resources[storage]"
        );
    }
}
