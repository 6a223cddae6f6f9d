//! ServiceAccount (`serviceaccounts`, `sa`): the SECRETS column.

use k8s_openapi::api::core::v1::ServiceAccount as Object;
use serde_json::Value;

use crate::kinds::typed::{Kind, age_cell, age_column, arr, col, name_cell, name_column};
use crate::registry::strategy::Column;

pub(crate) struct ServiceAccount;

impl Kind for ServiceAccount {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["sa"];

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col(
                "Secrets",
                "string",
                "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
                0,
            ),
            age_column(),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            name_cell(obj),
            Value::from(arr(obj, "/secrets").len()),
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
    fn info_and_row() {
        let st = Typed::<ServiceAccount>::new();
        assert_eq!(st.info().short_names, vec!["sa".to_string()]);
        assert_eq!(
            st.row(
                &json!({"metadata": {"name": "default"}, "secrets": [{"name": "x"}]}),
                jiff::Timestamp::now()
            )[1],
            1
        );
    }
}
