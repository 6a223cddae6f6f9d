//! Service (`services`, `svc`): upstream defaults (ClusterIP, sessionAffinity None, TCP, targetPort =
//! port, traffic policies, single-stack IPv4), port and type rules, the allocated `clusterIP`/`nodePort`s
//! carried over on update (allocation itself is the registry's), and the TYPE/CLUSTER-IP/EXTERNAL-IP/PORT(S) printer.

use k8s_openapi::api::core::v1::Service as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use super::pod::iana_svc_name;
use crate::kinds::typed::{
    Kind, NameRule, age_cell, age_column, arr, child_map, col, default_field, name_cell,
    name_column, s,
};
use crate::kinds::validation::{duplicate, invalid_each, not_supported};
use crate::registry::strategy::Column;

pub(crate) struct Service;

const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

impl Kind for Service {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["svc"];
    const CATEGORIES: &'static [&'static str] = &["all"];
    const STATUS: bool = true;
    const NAME_RULE: NameRule = NameRule::Dns1035Label;

    fn defaults(obj: &mut Value) {
        let spec = child_map(obj, "spec");
        default_field(spec, "type", "ClusterIP");
        default_field(spec, "sessionAffinity", "None");
        let ty = spec
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                default_field(p, "protocol", "TCP");
                if let Some(port) = p.get("port").cloned() {
                    default_field(p, "targetPort", port);
                }
            }
        }
        if ty == "NodePort" || ty == "LoadBalancer" {
            default_field(spec, "externalTrafficPolicy", "Cluster");
        }
        if ty == "LoadBalancer" {
            default_field(spec, "allocateLoadBalancerNodePorts", true);
        }
        if ty != "ExternalName" {
            default_field(spec, "internalTrafficPolicy", "Cluster");
            default_field(spec, "ipFamilies", json!(["IPv4"]));
            default_field(spec, "ipFamilyPolicy", "SingleStack");
        }
        if spec.get("sessionAffinity").and_then(Value::as_str) == Some("ClientIP") {
            default_field(
                spec,
                "sessionAffinityConfig",
                json!({"clientIP": {"timeoutSeconds": 10800}}),
            );
        }
    }

    fn on_create(obj: &mut Value) {
        obj["status"] = json!({"loadBalancer": {}});
    }

    /// Upstream `patchAllocatedValues` and `dropTypeDependentFields`: a PUT that omits the allocated
    /// IPs and node ports keeps them while the new type still needs them; a switch to a type that
    /// needs no node ports (LoadBalancer → ClusterIP) drops the ones the user left unchanged.
    fn on_update(new: &mut Value, old: &Value) {
        if s(new, "/spec/type") == "ExternalName" {
            return;
        }
        let (old_needs, new_needs) = (needs_node_ports(old), needs_node_ports(new));
        let spec = child_map(new, "spec");
        for key in ["clusterIP", "clusterIPs"] {
            if spec
                .get(key)
                .is_none_or(|v| v.is_null() || v == "" || v == &json!([]))
                && let Some(v) = old.pointer(&format!("/spec/{key}"))
            {
                spec.insert(key.into(), v.clone());
            }
        }
        let old_ports = arr(old, "/spec/ports");
        let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) else {
            return;
        };
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            let same = old_ports.iter().find(|o| {
                o.get("port") == p.get("port")
                    && o.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                        == p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
            });
            let old_np = same
                .and_then(|o| o.get("nodePort"))
                .filter(|v| !v.is_null());
            let given = p.get("nodePort").filter(|v| !v.is_null()).cloned();
            match (old_needs, new_needs, given, old_np) {
                (true, true, None, Some(np)) => {
                    p.insert("nodePort".into(), np.clone());
                }
                (true, false, Some(np), Some(old)) if &np == old => {
                    p.remove("nodePort");
                }
                _ => {}
            }
        }
    }

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let ty_v = obj.pointer("/spec/type").unwrap_or(&Value::Null);
        let ty = ty_v.as_str().unwrap_or("ClusterIP");
        if !TYPES.contains(&ty) {
            errs.push(not_supported("spec.type", ty_v, TYPES));
        }
        let ports = arr(obj, "/spec/ports");
        if ty == "ExternalName" {
            let en = s(obj, "/spec/externalName");
            if en.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                errs.extend(invalid_each(
                    "spec.externalName",
                    en,
                    skiff_k8s_core::validation::is_dns1123_subdomain(en.trim_end_matches('.')),
                ));
            }
        } else if ports.is_empty() && s(obj, "/spec/clusterIP") != "None" {
            errs.push(FieldError::required("spec.ports", ""));
        }
        let mut names: Vec<&str> = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            let path = format!("spec.ports[{i}]");
            let name = p.get("name").and_then(Value::as_str).unwrap_or("");
            if ports.len() > 1 && name.is_empty() {
                errs.push(FieldError::required(format!("{path}.name"), ""));
            } else if !name.is_empty() {
                let msgs = skiff_k8s_core::validation::is_dns1123_label(name);
                if msgs.is_empty() && names.contains(&name) {
                    errs.push(duplicate(&format!("{path}.name"), json!(name)));
                }
                errs.extend(invalid_each(&format!("{path}.name"), name, msgs));
                names.push(name);
            }
            match p.get("port").and_then(Value::as_i64) {
                None => errs.push(FieldError::required(format!("{path}.port"), "")),
                Some(n) if !(1..=65535).contains(&n) => errs.push(FieldError::invalid(
                    format!("{path}.port"),
                    json!(n),
                    "must be between 1 and 65535, inclusive",
                )),
                _ => {}
            }
            let proto = p.get("protocol").unwrap_or(&Value::Null);
            if let Some(pr) = proto.as_str()
                && !["SCTP", "TCP", "UDP"].contains(&pr)
            {
                errs.push(not_supported(
                    &format!("{path}.protocol"),
                    proto,
                    &["SCTP", "TCP", "UDP"],
                ));
            }
            match p.get("targetPort") {
                Some(Value::Number(n)) => {
                    let n = n.as_i64().unwrap_or(0);
                    if !(1..=65535).contains(&n) {
                        errs.push(FieldError::invalid(
                            format!("{path}.targetPort"),
                            json!(n),
                            "must be between 1 and 65535, inclusive",
                        ));
                    }
                }
                Some(Value::String(t)) => errs.extend(invalid_each(
                    &format!("{path}.targetPort"),
                    t,
                    iana_svc_name(t),
                )),
                _ => {}
            }
            if let Some(np) = p
                .get("nodePort")
                .and_then(Value::as_i64)
                .filter(|n| *n != 0)
            {
                if ty == "ClusterIP" || ty == "ExternalName" {
                    errs.push(FieldError::forbidden(
                        format!("{path}.nodePort"),
                        format!("may not be used when `type` is '{ty}'"),
                    ));
                } else if !(1..=65535).contains(&np) {
                    errs.push(FieldError::invalid(
                        format!("{path}.nodePort"),
                        json!(np),
                        "must be between 1 and 65535, inclusive",
                    ));
                }
            }
        }
        let sa = obj.pointer("/spec/sessionAffinity").unwrap_or(&Value::Null);
        if let Some(a) = sa.as_str()
            && a != "ClientIP"
            && a != "None"
        {
            errs.push(not_supported(
                "spec.sessionAffinity",
                sa,
                &["ClientIP", "None"],
            ));
        }
        for key in ["externalTrafficPolicy", "internalTrafficPolicy"] {
            let v = obj.pointer(&format!("/spec/{key}")).unwrap_or(&Value::Null);
            if let Some(p) = v.as_str()
                && p != "Cluster"
                && p != "Local"
            {
                errs.push(not_supported(
                    &format!("spec.{key}"),
                    v,
                    &["Cluster", "Local"],
                ));
            }
        }
        if (ty == "ClusterIP" || ty == "ExternalName")
            && obj
                .pointer("/spec/externalTrafficPolicy")
                .is_some_and(|v| !v.is_null())
        {
            errs.push(FieldError::invalid(
                "spec.externalTrafficPolicy",
                obj["spec"]["externalTrafficPolicy"].clone(),
                "may only be set for externally-accessible services",
            ));
        }
        let cip = s(obj, "/spec/clusterIP");
        if !cip.is_empty() && cip != "None" && cip.parse::<std::net::IpAddr>().is_err() {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                json!(cip),
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        }
        errs
    }

    fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
        let needs_ip = |v: &Value| s(v, "/spec/type") != "ExternalName";
        let (n, o) = (s(new, "/spec/clusterIP"), s(old, "/spec/clusterIP"));
        if needs_ip(new) && needs_ip(old) && !o.is_empty() && n != o {
            return vec![FieldError::invalid(
                "spec.clusterIPs[0]",
                json!(n),
                "may not change once set",
            )];
        }
        Vec::new()
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col(
                "Type",
                "string",
                "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types",
                0,
            ),
            col(
                "Cluster-IP",
                "string",
                "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
                0,
            ),
            col(
                "External-IP",
                "string",
                "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.",
                0,
            ),
            col(
                "Port(s)",
                "string",
                "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
                0,
            ),
            age_column(),
            col(
                "Selector",
                "string",
                "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/",
                1,
            ),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let ty = s(obj, "/spec/type");
        let cip = s(obj, "/spec/clusterIP");
        let ports: Vec<String> = arr(obj, "/spec/ports")
            .iter()
            .map(|p| {
                let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                match p
                    .get("nodePort")
                    .and_then(Value::as_i64)
                    .filter(|n| *n != 0)
                {
                    Some(np) => format!("{port}:{np}/{proto}"),
                    None => format!("{port}/{proto}"),
                }
            })
            .collect();
        let selector = obj
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .map(|m| {
                let mut v: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect();
                v.sort();
                v.join(",")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "<none>".to_string());
        vec![
            name_cell(obj),
            Value::from(ty),
            Value::from(if cip.is_empty() { "<none>" } else { cip }),
            Value::from(external_ip(obj)),
            Value::from(if ports.is_empty() {
                "<none>".to_string()
            } else {
                ports.join(",")
            }),
            age_cell(obj, now),
            Value::from(selector),
        ]
    }
}

/// Upstream `needsNodePort`: NodePort, and LoadBalancer unless `allocateLoadBalancerNodePorts: false`.
fn needs_node_ports(svc: &Value) -> bool {
    match s(svc, "/spec/type") {
        "NodePort" => true,
        "LoadBalancer" => svc
            .pointer("/spec/allocateLoadBalancerNodePorts")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        _ => false,
    }
}

/// Upstream `getServiceExternalIP` (non-wide form).
fn external_ip(obj: &Value) -> String {
    let external: Vec<&str> = arr(obj, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match s(obj, "/spec/type") {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".into()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let mut ips: Vec<&str> = arr(obj, "/status/loadBalancer/ingress")
                .iter()
                .filter_map(|i| {
                    i.get("ip")
                        .or_else(|| i.get("hostname"))
                        .and_then(Value::as_str)
                })
                .collect();
            ips.extend(external);
            if ips.is_empty() {
                "<pending>".into()
            } else {
                ips.join(",")
            }
        }
        "ExternalName" => s(obj, "/spec/externalName").to_string(),
        _ => "<unknown>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;

    fn svc(ty: &str) -> Value {
        json!({"metadata": {"name": "web", "namespace": "d"}, "spec": {"type": ty, "selector": {"app": "web"}, "ports": [{"port": 80}]}})
    }

    #[test]
    fn defaults() {
        let st = Typed::<Service>::new();
        let mut s1 = svc("LoadBalancer");
        st.prepare_for_create(&mut s1);
        let spec = &s1["spec"];
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(
            spec["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(spec["externalTrafficPolicy"], "Cluster");
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
        assert_eq!(s1["status"], json!({"loadBalancer": {}}));
        let mut c =
            json!({"metadata": {"name": "x", "namespace": "d"}, "spec": {"ports": [{"port": 80}]}});
        st.prepare_for_create(&mut c);
        assert_eq!(c["spec"]["type"], "ClusterIP");
        assert!(c["spec"].get("externalTrafficPolicy").is_none());
        assert!(st.validate(&c).is_empty(), "{:?}", st.validate(&c));
    }

    #[test]
    fn validation_and_update() {
        let st = Typed::<Service>::new();
        let e = st.validate(&json!({"spec": {"type": "ExternalName"}}));
        assert_eq!(e, vec![FieldError::required("spec.externalName", "")]);
        let e = st.validate(&json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80, "nodePort": 30001}, {"port": 0, "name": "b"}]}}));
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "spec.ports[0].name",
                "spec.ports[0].nodePort",
                "spec.ports[1].port"
            ]
        );
        assert_eq!(st.validate(&json!({"spec": {}}))[0].path, "spec.ports");
        let mut old = svc("ClusterIP");
        old["spec"]["clusterIP"] = json!("10.96.0.10");
        let mut new = svc("ClusterIP");
        st.prepare_for_update(&mut new, &old);
        assert_eq!(new["spec"]["clusterIP"], "10.96.0.10");
        new["spec"]["clusterIP"] = json!("10.96.0.11");
        assert_eq!(
            st.validate_update(&new, &old)[0].detail,
            "may not change once set"
        );
    }

    #[test]
    fn node_ports_follow_the_type_on_update() {
        let st = Typed::<Service>::new();
        let mut old = svc("LoadBalancer");
        old["spec"]["clusterIP"] = json!("10.96.0.10");
        old["spec"]["ports"][0]["nodePort"] = json!(30080);
        // A PUT that omits the node port keeps it while the type needs one.
        let mut same = svc("LoadBalancer");
        st.prepare_for_update(&mut same, &old);
        assert_eq!(same["spec"]["ports"][0]["nodePort"], 30080);
        // LoadBalancer → ClusterIP, nodePort sent back unchanged (kubectl edit/patch): dropped.
        let mut to_cluster_ip = old.clone();
        to_cluster_ip["spec"]["type"] = json!("ClusterIP");
        st.prepare_for_update(&mut to_cluster_ip, &old);
        assert!(to_cluster_ip["spec"]["ports"][0].get("nodePort").is_none());
        assert!(st.validate_update(&to_cluster_ip, &old).is_empty());
        // … and omitted: not carried over.
        let mut omitted = svc("ClusterIP");
        st.prepare_for_update(&mut omitted, &old);
        assert!(omitted["spec"]["ports"][0].get("nodePort").is_none());
        // A new node port on a ClusterIP Service is the user's mistake: still refused.
        let mut changed = old.clone();
        changed["spec"]["type"] = json!("ClusterIP");
        changed["spec"]["ports"][0]["nodePort"] = json!(30081);
        st.prepare_for_update(&mut changed, &old);
        assert!(!st.validate_update(&changed, &old).is_empty());
    }

    #[test]
    fn rows() {
        let st = Typed::<Service>::new();
        let mut l = svc("LoadBalancer");
        l["spec"]["clusterIP"] = json!("10.96.0.10");
        l["spec"]["ports"][0]["nodePort"] = json!(30080);
        l["spec"]["ports"][0]["protocol"] = json!("TCP");
        let row = st.row(&l, jiff::Timestamp::now());
        assert_eq!(
            row[1..5],
            [
                json!("LoadBalancer"),
                json!("10.96.0.10"),
                json!("<pending>"),
                json!("80:30080/TCP")
            ]
        );
        assert_eq!(row[6], "app=web");
        l["status"] = json!({"loadBalancer": {"ingress": [{"hostname": "a.elb.amazonaws.com"}]}});
        assert_eq!(st.row(&l, jiff::Timestamp::now())[3], "a.elb.amazonaws.com");
    }
}
