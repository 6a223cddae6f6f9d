//! CSINode (`csinodes`): the DRIVERS column.

use k8s_openapi::api::storage::v1::CSINode as Object;
use serde_json::{Value, json};

use crate::kinds::typed::{Kind, age_cell, age_column, arr, col, name_cell, name_column};
use crate::registry::strategy::Column;

#[doc(alias = "CSINode")]
pub(crate) struct CsiNode;

impl Kind for CsiNode {
    type Object = Object;

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col(
                "Drivers",
                "integer",
                "Drivers indicates the number of CSI drivers registered on the node",
                0,
            ),
            age_column(),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            name_cell(obj),
            json!(arr(obj, "/spec/drivers").len()),
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
    fn drivers_cell() {
        let st = Typed::<CsiNode>::new();
        assert_eq!(st.row(&json!({"metadata": {"name": "n"}, "spec": {"drivers": [{"name": "a", "nodeID": "n"}]}}), jiff::Timestamp::now())[1], 1);
        assert!(!st.info().namespaced);
    }
}
