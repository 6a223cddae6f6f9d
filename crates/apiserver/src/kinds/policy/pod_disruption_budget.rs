//! PodDisruptionBudget (`poddisruptionbudgets`, `pdb`): minAvailable xor maxUnavailable, the
//! MIN AVAILABLE/MAX UNAVAILABLE/ALLOWED DISRUPTIONS printer.

use k8s_openapi::api::policy::v1::PodDisruptionBudget as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use crate::kinds::typed::{Kind, age_cell, age_column, col, i, name_cell, name_column};
use crate::registry::strategy::Column;

pub(crate) struct PodDisruptionBudget;

impl Kind for PodDisruptionBudget {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["pdb"];
    const STATUS: bool = true;
    const GENERATION: bool = true;

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let set = |f: &str| {
            obj.pointer(&format!("/spec/{f}"))
                .is_some_and(|v| !v.is_null())
        };
        if set("minAvailable") && set("maxUnavailable") {
            errs.push(FieldError::invalid(
                "spec",
                obj["spec"].clone(),
                "minAvailable and maxUnavailable cannot be both set",
            ));
        }
        for f in ["minAvailable", "maxUnavailable"] {
            match obj.pointer(&format!("/spec/{f}")) {
                Some(Value::Number(n)) if n.as_i64().unwrap_or(0) < 0 => {
                    errs.push(FieldError::invalid(
                        format!("spec.{f}"),
                        Value::Number(n.clone()),
                        "must be greater than or equal to 0",
                    ));
                }
                Some(Value::String(p)) => {
                    let ok = p
                        .strip_suffix('%')
                        .and_then(|n| n.parse::<u32>().ok())
                        .is_some_and(|n| n <= 100);
                    if !ok {
                        errs.push(FieldError::invalid(
                            format!("spec.{f}"),
                            json!(p),
                            "must be an integer or percentage (e.g '5%')",
                        ));
                    }
                }
                _ => {}
            }
        }
        errs
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col(
                "Min Available",
                "string",
                "The minimum number of pods that must be available simultaneously.  This can be either an integer or a string specifying a percentage, e.g. \"28%\".",
                0,
            ),
            col(
                "Max Unavailable",
                "string",
                "The maximum number of pods that may be unavailable simultaneously.  This can be either an integer or a string specifying a percentage, e.g. \"28%\".",
                0,
            ),
            col(
                "Allowed Disruptions",
                "integer",
                "Number of pod disruptions that are currently allowed.",
                0,
            ),
            age_column(),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let cell = |f: &str| match obj.pointer(&format!("/spec/{f}")) {
            Some(Value::String(s)) => json!(s),
            Some(Value::Number(n)) => json!(n.to_string()),
            _ => json!("N/A"),
        };
        vec![
            name_cell(obj),
            cell("minAvailable"),
            cell("maxUnavailable"),
            json!(i(obj, "/status/disruptionsAllowed")),
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
        let st = Typed::<PodDisruptionBudget>::new();
        let p = json!({"metadata": {"name": "p"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"a": "b"}}}});
        assert!(st.validate(&p).is_empty());
        assert_eq!(
            st.row(&p, jiff::Timestamp::now())[1..4],
            [json!("2"), json!("N/A"), json!(0)]
        );
        let both = json!({"spec": {"minAvailable": 1, "maxUnavailable": "50%"}});
        assert_eq!(
            st.validate(&both)[0].detail,
            "minAvailable and maxUnavailable cannot be both set"
        );
    }
}
