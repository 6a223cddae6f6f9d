//! Endpoints (`endpoints`, `ep`): created on update (the controller PUTs), the ENDPOINTS column.

use k8s_openapi::api::core::v1::Endpoints as Object;
use serde_json::Value;

use crate::kinds::typed::{Kind, age_cell, age_column, arr, col, name_cell, name_column};
use crate::registry::strategy::Column;

pub(crate) struct Endpoints;

impl Kind for Endpoints {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["ep"];
    const CREATE_ON_UPDATE: bool = true;

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col("Endpoints", "string", "Endpoints of the service", 0),
            age_column(),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            name_cell(obj),
            Value::from(format_endpoints(obj)),
            age_cell(obj, now),
        ]
    }
}

/// Upstream `formatEndpoints` with max 3: `ip:port,ip:port + N more...`, `<none>` when empty.
fn format_endpoints(obj: &Value) -> String {
    let mut list = Vec::new();
    let mut count = 0;
    for subset in arr(obj, "/subsets") {
        let ports = subset
            .get("ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for addr in subset
            .get("addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ip = addr.get("ip").and_then(Value::as_str).unwrap_or("");
            if ports.is_empty() {
                if list.len() < 3 {
                    list.push(ip.to_string());
                }
                count += 1;
            }
            for p in &ports {
                if list.len() < 3 {
                    list.push(format!(
                        "{ip}:{}",
                        p.get("port").and_then(Value::as_i64).unwrap_or(0)
                    ));
                }
                count += 1;
            }
        }
    }
    if list.is_empty() {
        return "<none>".into();
    }
    let mut out = list.join(",");
    if count > list.len() {
        out.push_str(&format!(" + {} more...", count - list.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn endpoints_cell() {
        let ep = json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}], "ports": [{"port": 80}]}]});
        assert_eq!(
            format_endpoints(&ep),
            "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more..."
        );
        assert_eq!(format_endpoints(&json!({})), "<none>");
    }
}
