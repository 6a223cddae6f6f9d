//! EndpointSlice (`endpointslices`): address type required and immutable, at most 1000 endpoints, the
//! ADDRESSTYPE/PORTS/ENDPOINTS printer.

use k8s_openapi::api::discovery::v1::EndpointSlice as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use crate::kinds::typed::{Kind, age_cell, age_column, arr, col, name_cell, name_column, s};
use crate::kinds::validation::{immutable, not_supported};
use crate::registry::strategy::Column;

pub(crate) struct EndpointSlice;

const ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];

impl Kind for EndpointSlice {
    type Object = Object;
    const GENERATION: bool = true;

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let at = obj.get("addressType").unwrap_or(&Value::Null);
        match at.as_str() {
            None | Some("") => errs.push(FieldError::required("addressType", "")),
            Some(a) if !ADDRESS_TYPES.contains(&a) => {
                errs.push(not_supported("addressType", at, ADDRESS_TYPES))
            }
            _ => {}
        }
        let eps = arr(obj, "/endpoints");
        if eps.len() > 1000 {
            errs.push(FieldError {
                path: "endpoints".into(),
                kind: skiff_k8s_core::status::FieldErrorKind::TooMany,
                value: Some(json!(eps.len())),
                detail: "must have at most 1000 items".into(),
            });
        }
        for (i, e) in eps.iter().enumerate() {
            if arr(e, "/addresses").is_empty() {
                errs.push(FieldError::required(
                    format!("endpoints[{i}].addresses"),
                    "must contain at least 1 address",
                ));
            }
        }
        errs
    }

    fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
        immutable(new, old, "/addressType", "addressType")
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col("AddressType", "string", "The IP protocol for this slice", 0),
            col("Ports", "string", "The ports for this slice", 0),
            col("Endpoints", "string", "The endpoints for this slice", 0),
            age_column(),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let ports: Vec<String> = arr(obj, "/ports")
            .iter()
            .map(|p| {
                p.get("port")
                    .and_then(Value::as_i64)
                    .map_or("<unset>".to_string(), |p| p.to_string())
            })
            .collect();
        let ports = if ports.is_empty() {
            "<unset>".to_string()
        } else {
            ports.join(",")
        };
        let mut addrs = Vec::new();
        let mut count = 0;
        for e in arr(obj, "/endpoints") {
            for a in arr(e, "/addresses").iter().filter_map(Value::as_str) {
                if addrs.len() < 3 {
                    addrs.push(a.to_string());
                }
                count += 1;
            }
        }
        let mut endpoints = if addrs.is_empty() {
            "<unset>".to_string()
        } else {
            addrs.join(",")
        };
        if count > addrs.len() {
            endpoints.push_str(&format!(" + {} more...", count - addrs.len()));
        }
        vec![
            name_cell(obj),
            json!(s(obj, "/addressType")),
            json!(ports),
            json!(endpoints),
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
        let st = Typed::<EndpointSlice>::new();
        let es = json!({"metadata": {"name": "web-abc"}, "addressType": "IPv4", "ports": [{"port": 80}], "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]});
        assert!(st.validate(&es).is_empty());
        assert_eq!(
            st.row(&es, jiff::Timestamp::now())[1..4],
            [json!("IPv4"), json!("80"), json!("10.0.0.1,10.0.0.2")]
        );
        assert_eq!(st.validate(&json!({}))[0].path, "addressType");
    }
}
