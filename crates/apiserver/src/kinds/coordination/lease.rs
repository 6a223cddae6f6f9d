//! Lease (`leases`): created on update (leader election PUTs), the HOLDER column.

use k8s_openapi::api::coordination::v1::Lease as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use crate::kinds::typed::{Kind, age_cell, age_column, col, name_cell, name_column, s};
use crate::registry::strategy::Column;

pub(crate) struct Lease;

impl Kind for Lease {
    type Object = Object;
    const CREATE_ON_UPDATE: bool = true;

    fn validate(obj: &Value) -> Vec<FieldError> {
        match obj
            .pointer("/spec/leaseDurationSeconds")
            .and_then(Value::as_i64)
        {
            Some(d) if d <= 0 => vec![FieldError::invalid(
                "spec.leaseDurationSeconds",
                json!(d),
                "must be greater than 0",
            )],
            _ => Vec::new(),
        }
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col("Holder", "string", "The holder of the lease", 0),
            age_column(),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            name_cell(obj),
            json!(s(obj, "/spec/holderIdentity")),
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
    fn holder_and_create_on_update() {
        let st = Typed::<Lease>::new();
        assert!(st.allow_create_on_update());
        let l = json!({"metadata": {"name": "kube-scheduler"}, "spec": {"holderIdentity": "skiff_1", "leaseDurationSeconds": 15}});
        assert!(st.validate(&l).is_empty());
        assert_eq!(st.row(&l, jiff::Timestamp::now())[1], "skiff_1");
    }
}
