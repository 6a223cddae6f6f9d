//! ControllerRevision (`controllerrevisions`): immutable `data`, CONTROLLER and REVISION columns.

use k8s_openapi::api::apps::v1::ControllerRevision as Object;
use serde_json::Value;
use skiff_k8s_core::status::FieldError;

use crate::kinds::typed::{Kind, age_cell, age_column, arr, col, i, name_cell, name_column};
use crate::kinds::validation::{immutable, non_negative};
use crate::registry::strategy::Column;

pub(crate) struct ControllerRevision;

impl Kind for ControllerRevision {
    type Object = Object;

    fn validate(obj: &Value) -> Vec<FieldError> {
        non_negative(obj, "/revision", "revision")
    }

    fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
        immutable(new, old, "/data", "data")
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col("Controller", "string", "Controller of the object", 0),
            col(
                "Revision",
                "integer",
                "Revision indicates the revision of the state represented by Data.",
                0,
            ),
            age_column(),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let controller = arr(obj, "/metadata/ownerReferences")
            .iter()
            .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
            .map(|o| {
                let api = o.get("apiVersion").and_then(Value::as_str).unwrap_or("");
                let group = api.split_once('/').map_or("", |(g, _)| g);
                let kind = o
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_ascii_lowercase();
                let name = o.get("name").and_then(Value::as_str).unwrap_or("");
                if group.is_empty() {
                    format!("{kind}/{name}")
                } else {
                    format!("{kind}.{group}/{name}")
                }
            })
            .unwrap_or_else(|| "<none>".to_string());
        vec![
            name_cell(obj),
            Value::from(controller),
            Value::from(i(obj, "/revision")),
            age_cell(obj, now),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;
    use serde_json::json;

    #[test]
    fn controller_cell() {
        let st = Typed::<ControllerRevision>::new();
        let cr = json!({"metadata": {"name": "web-1", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": true}]}, "revision": 2});
        let row = st.row(&cr, jiff::Timestamp::now());
        assert_eq!(row[1..3], [json!("statefulset.apps/web"), json!(2)]);
    }
}
