//! StorageClass (`storageclasses`, `sc`): reclaimPolicy Delete, volumeBindingMode Immediate, immutable
//! provisioner/parameters, `(default)` marker in the NAME cell.

use k8s_openapi::api::storage::v1::StorageClass as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use crate::kinds::typed::{Kind, age_cell, age_column, col, default_field, name_column, s};
use crate::kinds::validation::{immutable, not_supported};
use crate::registry::strategy::Column;

pub(crate) struct StorageClass;

const DEFAULT_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";

impl Kind for StorageClass {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["sc"];

    fn defaults(obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            default_field(m, "reclaimPolicy", "Delete");
            default_field(m, "volumeBindingMode", "Immediate");
        }
    }

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let p = s(obj, "/provisioner");
        if p.is_empty() {
            errs.push(FieldError::required("provisioner", ""));
        }
        let rp = obj.get("reclaimPolicy").unwrap_or(&Value::Null);
        if !rp.is_null() && !rp.as_str().is_some_and(|r| r == "Delete" || r == "Retain") {
            errs.push(not_supported("reclaimPolicy", rp, &["Delete", "Retain"]));
        }
        let bm = obj.get("volumeBindingMode").unwrap_or(&Value::Null);
        if !bm.is_null()
            && !bm
                .as_str()
                .is_some_and(|r| r == "Immediate" || r == "WaitForFirstConsumer")
        {
            errs.push(not_supported(
                "volumeBindingMode",
                bm,
                &["Immediate", "WaitForFirstConsumer"],
            ));
        }
        errs
    }

    fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = immutable(new, old, "/provisioner", "provisioner");
        errs.extend(immutable(new, old, "/parameters", "parameters"));
        errs.extend(immutable(new, old, "/reclaimPolicy", "reclaimPolicy"));
        errs.extend(immutable(
            new,
            old,
            "/volumeBindingMode",
            "volumeBindingMode",
        ));
        errs
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col(
                "Provisioner",
                "string",
                "Indicates the type of the provisioner.",
                0,
            ),
            col(
                "ReclaimPolicy",
                "string",
                "Dynamically provisioned PersistentVolumes of this storage class are created with this reclaimPolicy. Defaults to Delete.",
                0,
            ),
            col(
                "VolumeBindingMode",
                "string",
                "VolumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature.",
                0,
            ),
            col(
                "AllowVolumeExpansion",
                "string",
                "AllowVolumeExpansion shows whether the storage class allow volume expand",
                0,
            ),
            age_column(),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let mut name = s(obj, "/metadata/name").to_string();
        let ann = obj.pointer("/metadata/annotations").and_then(|a| {
            a.get(DEFAULT_ANNOTATION)
                .or_else(|| a.get("storageclass.beta.kubernetes.io/is-default-class"))
        });
        if ann.and_then(Value::as_str) == Some("true") {
            name.push_str(" (default)");
        }
        let expand = obj
            .get("allowVolumeExpansion")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        vec![
            json!(name),
            json!(s(obj, "/provisioner")),
            json!(s(obj, "/reclaimPolicy")),
            json!(s(obj, "/volumeBindingMode")),
            json!(expand.to_string()),
            age_cell(obj, now),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;

    #[test]
    fn defaults_and_row() {
        let st = Typed::<StorageClass>::new();
        let mut sc = json!({"metadata": {"name": "gp3", "annotations": {DEFAULT_ANNOTATION: "true"}}, "provisioner": "ebs.csi.aws.com"});
        st.prepare_for_create(&mut sc);
        assert_eq!(sc["reclaimPolicy"], "Delete");
        assert_eq!(sc["volumeBindingMode"], "Immediate");
        assert!(st.validate(&sc).is_empty());
        assert_eq!(
            st.row(&sc, jiff::Timestamp::now())[..5],
            [
                json!("gp3 (default)"),
                json!("ebs.csi.aws.com"),
                json!("Delete"),
                json!("Immediate"),
                json!("false")
            ]
        );
        let mut n = sc.clone();
        n["provisioner"] = json!("x");
        assert_eq!(st.validate_update(&n, &sc)[0].path, "provisioner");
    }
}
