//! Ingress (`ingresses`, `ing`): backend/rules required, pathType rules, the CLASS/HOSTS/ADDRESS/PORTS printer.

use k8s_openapi::api::networking::v1::Ingress as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use crate::kinds::typed::{Kind, age_cell, age_column, arr, col, name_cell, name_column, s};
use crate::kinds::validation::not_supported;
use crate::registry::strategy::Column;

pub(crate) struct Ingress;

const PATH_TYPES: &[&str] = &["Exact", "ImplementationSpecific", "Prefix"];

impl Kind for Ingress {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["ing"];
    const STATUS: bool = true;
    const GENERATION: bool = true;

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let rules = arr(obj, "/spec/rules");
        if rules.is_empty()
            && obj
                .pointer("/spec/defaultBackend")
                .is_none_or(Value::is_null)
        {
            errs.push(FieldError::invalid(
                "spec",
                obj.get("spec").cloned().unwrap_or(Value::Null),
                "either `defaultBackend` or `rules` must be specified",
            ));
        }
        for (ri, r) in rules.iter().enumerate() {
            if let Some(h) = r.get("host").and_then(Value::as_str) {
                let bare = h.strip_prefix("*.").unwrap_or(h);
                for m in skiff_k8s_core::validation::is_dns1123_subdomain(bare) {
                    errs.push(FieldError::invalid(
                        format!("spec.rules[{ri}].host"),
                        json!(h),
                        m,
                    ));
                }
            }
            for (pi, p) in r
                .pointer("/http/paths")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let path = format!("spec.rules[{ri}].http.paths[{pi}]");
                match p.get("pathType") {
                    None | Some(Value::Null) => errs.push(FieldError::required(
                        format!("{path}.pathType"),
                        "pathType must be specified",
                    )),
                    Some(t) if !t.as_str().is_some_and(|t| PATH_TYPES.contains(&t)) => {
                        errs.push(not_supported(&format!("{path}.pathType"), t, PATH_TYPES))
                    }
                    _ => {}
                }
                let pv = p.get("path").and_then(Value::as_str).unwrap_or("");
                if p.get("pathType").and_then(Value::as_str) != Some("ImplementationSpecific")
                    && !pv.starts_with('/')
                {
                    errs.push(FieldError::invalid(
                        format!("{path}.path"),
                        json!(pv),
                        "must be an absolute path",
                    ));
                }
                if p.get("backend").is_none_or(Value::is_null) {
                    errs.push(FieldError::required(format!("{path}.backend"), ""));
                }
            }
        }
        errs
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col(
                "Class",
                "string",
                "The name of the IngressClass resource that should be used",
                0,
            ),
            col(
                "Hosts",
                "string",
                "Hosts that incoming requests are matched against before the ingress rule",
                0,
            ),
            col(
                "Address",
                "string",
                "Address is a list containing ingress points for the load-balancer",
                0,
            ),
            col(
                "Ports",
                "string",
                "Ports of TLS configurations that open",
                0,
            ),
            age_column(),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let class = s(obj, "/spec/ingressClassName");
        let mut hosts: Vec<&str> = arr(obj, "/spec/rules")
            .iter()
            .filter_map(|r| r.get("host").and_then(Value::as_str))
            .filter(|h| !h.is_empty())
            .collect();
        let hosts = if hosts.is_empty() {
            "*".to_string()
        } else if hosts.len() > 3 {
            let more = hosts.len() - 3;
            hosts.truncate(3);
            format!("{} + {more} more...", hosts.join(","))
        } else {
            hosts.join(",")
        };
        let address: Vec<&str> = arr(obj, "/status/loadBalancer/ingress")
            .iter()
            .filter_map(|i| {
                i.get("ip")
                    .or_else(|| i.get("hostname"))
                    .and_then(Value::as_str)
            })
            .collect();
        let ports = if arr(obj, "/spec/tls").is_empty() {
            "80"
        } else {
            "80, 443"
        };
        vec![
            name_cell(obj),
            json!(if class.is_empty() { "<none>" } else { class }),
            json!(hosts),
            json!(address.join(",")),
            json!(ports),
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
    fn validation_and_row() {
        let st = Typed::<Ingress>::new();
        let ing = json!({"metadata": {"name": "web", "namespace": "d"}, "spec": {"ingressClassName": "alb", "rules": [{"host": "a.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}});
        assert!(st.validate(&ing).is_empty(), "{:?}", st.validate(&ing));
        assert_eq!(
            st.row(&ing, jiff::Timestamp::now())[1..5],
            [json!("alb"), json!("a.example.com"), json!(""), json!("80")]
        );
        let mut bad = ing.clone();
        bad["spec"]["rules"][0]["http"]["paths"][0]
            .as_object_mut()
            .unwrap()
            .remove("pathType");
        let e = st.validate(&bad);
        assert_eq!(e[0].path, "spec.rules[0].http.paths[0].pathType");
        assert_eq!(e[0].detail, "pathType must be specified");
        assert_eq!(
            st.validate(&json!({"spec": {}}))[0].detail,
            "either `defaultBackend` or `rules` must be specified"
        );
    }
}
