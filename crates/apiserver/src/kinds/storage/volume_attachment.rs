//! VolumeAttachment (`volumeattachments`): required attacher/node/source, immutable spec, ATTACHER/PV/NODE/ATTACHED.

use k8s_openapi::api::storage::v1::VolumeAttachment as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use crate::kinds::typed::{Kind, age_cell, age_column, col, name_cell, name_column, s};
use crate::kinds::validation::immutable;
use crate::registry::strategy::Column;

pub(crate) struct VolumeAttachment;

impl Kind for VolumeAttachment {
    type Object = Object;
    const STATUS: bool = true;

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        for (ptr, path) in [
            ("/spec/attacher", "spec.attacher"),
            ("/spec/nodeName", "spec.nodeName"),
        ] {
            if s(obj, ptr).is_empty() {
                errs.push(FieldError::required(path, ""));
            }
        }
        errs
    }

    fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
        immutable(new, old, "/spec", "spec")
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col(
                "Attacher",
                "string",
                "Attacher indicates the name of the volume driver that MUST handle this request. This is the name returned by GetPluginName().",
                0,
            ),
            col(
                "PV",
                "string",
                "Name of the persistent volume to attach.",
                0,
            ),
            col(
                "Node",
                "string",
                "The node that the volume should be attached to.",
                0,
            ),
            col(
                "Attached",
                "boolean",
                "Indicates the volume is successfully attached. This field must only be set by the entity completing the attach operation, i.e. the external-attacher.",
                0,
            ),
            age_column(),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            name_cell(obj),
            json!(s(obj, "/spec/attacher")),
            json!(s(obj, "/spec/source/persistentVolumeName")),
            json!(s(obj, "/spec/nodeName")),
            json!(
                obj.pointer("/status/attached")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            ),
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
    fn rules_and_row() {
        let st = Typed::<VolumeAttachment>::new();
        let va = json!({"metadata": {"name": "csi-1"}, "spec": {"attacher": "ebs.csi.aws.com", "nodeName": "n1", "source": {"persistentVolumeName": "pv1"}}});
        assert!(st.validate(&va).is_empty());
        assert_eq!(
            st.row(&va, jiff::Timestamp::now())[1..5],
            [
                json!("ebs.csi.aws.com"),
                json!("pv1"),
                json!("n1"),
                json!(false)
            ]
        );
        assert_eq!(st.validate(&json!({"spec": {}})).len(), 2);
    }
}
