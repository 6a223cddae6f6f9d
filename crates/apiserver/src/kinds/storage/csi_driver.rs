//! CSIDriver (`csidrivers`): upstream defaults (attachRequired true, Persistent lifecycle, FS group
//! policy) and the ATTACHREQUIRED/PODINFOONMOUNT/… printer.

use k8s_openapi::api::storage::v1::CSIDriver as Object;
use serde_json::{Value, json};

use crate::kinds::typed::{
    Kind, age_cell, age_column, arr, child_map, col, default_field, name_cell, name_column,
};
use crate::registry::strategy::Column;

#[doc(alias = "CSIDriver")]
pub(crate) struct CsiDriver;

impl Kind for CsiDriver {
    type Object = Object;

    fn defaults(obj: &mut Value) {
        let spec = child_map(obj, "spec");
        default_field(spec, "attachRequired", true);
        default_field(spec, "podInfoOnMount", false);
        default_field(spec, "requiresRepublish", false);
        default_field(spec, "storageCapacity", false);
        default_field(spec, "seLinuxMount", false);
        default_field(spec, "fsGroupPolicy", "ReadWriteOnceWithFSType");
        default_field(spec, "volumeLifecycleModes", json!(["Persistent"]));
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col(
                "AttachRequired",
                "boolean",
                "Indicates this CSI volume driver requires an attach operation, and that Kubernetes should call attach and wait for any attach operation to complete before proceeding to mount.",
                0,
            ),
            col(
                "PodInfoOnMount",
                "boolean",
                "Indicates that this CSI volume driver requires additional pod information (like podName, podUID, etc.) during mount operations.",
                0,
            ),
            col(
                "StorageCapacity",
                "boolean",
                "Indicates that the CSI volume driver wants pod scheduling to consider the storage capacity that the driver deployment will report by creating CSIStorageCapacity objects with capacity information.",
                0,
            ),
            col(
                "TokenRequests",
                "string",
                "Indicates the CSI driver needs pods' service account tokens it is mounting volume for to do necessary authentication.",
                0,
            ),
            col(
                "RequiresRepublish",
                "boolean",
                "Indicates the CSI driver wants `NodePublishVolume` being periodically called to reflect any possible change in the mounted volume.",
                0,
            ),
            col(
                "Modes",
                "string",
                "Defines the supported volume lifecycle modes.",
                0,
            ),
            age_column(),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let b = |f: &str| {
            json!(
                obj.pointer(&format!("/spec/{f}"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            )
        };
        let tokens: Vec<&str> = arr(obj, "/spec/tokenRequests")
            .iter()
            .filter_map(|t| t.get("audience").and_then(Value::as_str))
            .collect();
        let modes: Vec<&str> = arr(obj, "/spec/volumeLifecycleModes")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        vec![
            name_cell(obj),
            b("attachRequired"),
            b("podInfoOnMount"),
            b("storageCapacity"),
            json!(if tokens.is_empty() {
                "<unset>".to_string()
            } else {
                tokens.join(",")
            }),
            b("requiresRepublish"),
            json!(modes.join(",")),
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
    fn defaults_row() {
        let st = Typed::<CsiDriver>::new();
        let mut d = json!({"metadata": {"name": "ebs.csi.aws.com"}, "spec": {}});
        st.prepare_for_create(&mut d);
        let row = st.row(&d, jiff::Timestamp::now());
        assert_eq!(
            row[1..7],
            [
                json!(true),
                json!(false),
                json!(false),
                json!("<unset>"),
                json!(false),
                json!("Persistent")
            ]
        );
    }
}
