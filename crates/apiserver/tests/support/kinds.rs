//! Test strategies standing in for the built-in kinds: enough schema to exercise the generic
//! registry (unknown fields, status split, scale, field selectors, namespace lifecycle).

use std::sync::Arc;

use serde_json::{Value, json};
use skiff_apiserver::registry::strategy::{Column, ResourceInfo, ScalePaths, Strategy};
use skiff_k8s_core::status::FieldError;
use skiff_k8s_core::validation::NameRule;

fn verbs() -> Vec<String> {
    [
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ]
    .map(String::from)
    .to_vec()
}

fn info(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    short: &[&str],
) -> ResourceInfo {
    ResourceInfo {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: vec![],
        verbs: verbs(),
        has_status: false,
        scale: None,
    }
}

/// Unknown top-level fields (and under `spec` when `spec_fields` is given).
fn unknown(obj: &Value, top: &[&str], spec_fields: Option<&[&str]>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(o) = obj.as_object() {
        for k in o.keys() {
            if !top.contains(&k.as_str()) {
                out.push(k.clone());
            }
        }
    }
    if let (Some(fields), Some(spec)) = (spec_fields, obj.get("spec").and_then(Value::as_object)) {
        for k in spec.keys() {
            if !fields.contains(&k.as_str()) {
                out.push(format!("spec.{k}"));
            }
        }
    }
    out
}

fn drop_paths(mut obj: Value, paths: &[String]) -> Value {
    for p in paths {
        match p.split_once('.') {
            Some((a, b)) => {
                if let Some(o) = obj.get_mut(a).and_then(Value::as_object_mut) {
                    o.remove(b);
                }
            }
            None => {
                if let Some(o) = obj.as_object_mut() {
                    o.remove(p);
                }
            }
        }
    }
    obj
}

pub struct Namespaces(ResourceInfo);
impl Strategy for Namespaces {
    fn info(&self) -> &ResourceInfo {
        &self.0
    }
    fn name_rule(&self) -> NameRule {
        NameRule::Dns1123Label
    }
    fn prepare_for_create(&self, obj: &mut Value) {
        obj["spec"] = json!({"finalizers": ["kubernetes"]});
        obj["status"] = json!({"phase": "Active"});
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column {
                name: "Name",
                type_: "string",
                format: "name",
                description: "Name",
                priority: 0,
            },
            Column {
                name: "Status",
                type_: "string",
                format: "",
                description: "phase",
                priority: 0,
            },
            Column {
                name: "Age",
                type_: "string",
                format: "",
                description: "Age",
                priority: 0,
            },
        ]
    }
    fn row(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            obj.pointer("/metadata/name")
                .cloned()
                .unwrap_or(Value::Null),
            obj.pointer("/status/phase").cloned().unwrap_or(json!("")),
            json!(skiff_apiserver::registry::age(obj, now)),
        ]
    }
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        (field == "status.phase").then(|| {
            obj.pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        })
    }
}

pub struct ConfigMaps(ResourceInfo);
impl Strategy for ConfigMaps {
    fn info(&self) -> &ResourceInfo {
        &self.0
    }
    fn canonicalize(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        if let Some(d) = obj.get("data")
            && !d.is_object()
            && !d.is_null()
        {
            return Err("json: cannot unmarshal into Go struct field ConfigMap.data of type map[string]string".into());
        }
        let u = unknown(
            &obj,
            &[
                "apiVersion",
                "kind",
                "metadata",
                "data",
                "binaryData",
                "immutable",
            ],
            None,
        );
        Ok((drop_paths(obj, &u), u))
    }
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if let Some(d) = obj.get("data").and_then(Value::as_object) {
            for (k, v) in d {
                if !v.is_string() {
                    errs.push(FieldError::invalid(
                        format!("data[{k}]"),
                        v.clone(),
                        "must be a string",
                    ));
                }
            }
        }
        errs
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column {
                name: "Name",
                type_: "string",
                format: "name",
                description: "Name",
                priority: 0,
            },
            Column {
                name: "Data",
                type_: "string",
                format: "",
                description: "data",
                priority: 0,
            },
            Column {
                name: "Age",
                type_: "string",
                format: "",
                description: "Age",
                priority: 0,
            },
        ]
    }
    fn row(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let n = obj
            .get("data")
            .and_then(Value::as_object)
            .map_or(0, |d| d.len());
        vec![
            obj.pointer("/metadata/name")
                .cloned()
                .unwrap_or(Value::Null),
            json!(n),
            json!(skiff_apiserver::registry::age(obj, now)),
        ]
    }
}

pub struct Deployments(ResourceInfo);
impl Strategy for Deployments {
    fn info(&self) -> &ResourceInfo {
        &self.0
    }
    fn canonicalize(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        let u = unknown(
            &obj,
            &["apiVersion", "kind", "metadata", "spec", "status"],
            Some(&[
                "replicas",
                "selector",
                "template",
                "strategy",
                "minReadySeconds",
                "revisionHistoryLimit",
                "paused",
                "progressDeadlineSeconds",
            ]),
        );
        Ok((drop_paths(obj, &u), u))
    }
    fn prepare_for_create(&self, obj: &mut Value) {
        if obj.pointer("/spec/replicas").is_none()
            && let Some(s) = obj.get_mut("spec").and_then(Value::as_object_mut)
        {
            s.insert("replicas".into(), json!(1));
        }
        if let Some(o) = obj.as_object_mut() {
            o.insert("status".into(), json!({}));
        }
    }
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if obj.pointer("/spec/selector").is_none() {
            errs.push(FieldError::required("spec.selector", ""));
        }
        if let Some(r) = obj.pointer("/spec/replicas").and_then(Value::as_i64)
            && r < 0
        {
            errs.push(FieldError::invalid(
                "spec.replicas",
                json!(r),
                "must be greater than or equal to 0",
            ));
        }
        errs
    }
}

pub struct Services(ResourceInfo);
impl Strategy for Services {
    fn info(&self) -> &ResourceInfo {
        &self.0
    }
    fn name_rule(&self) -> NameRule {
        NameRule::Dns1035Label
    }
}

pub struct Leases(ResourceInfo);
impl Strategy for Leases {
    fn info(&self) -> &ResourceInfo {
        &self.0
    }
    fn allow_create_on_update(&self) -> bool {
        true
    }
}

/// The test kinds table.
pub fn kinds() -> Vec<Arc<dyn Strategy>> {
    let mut ns = info("", "v1", "Namespace", "namespaces", false, &["ns"]);
    ns.has_status = true;
    let mut deploy = info("apps", "v1", "Deployment", "deployments", true, &["deploy"]);
    deploy.has_status = true;
    deploy.categories = vec!["all".into()];
    deploy.scale = Some(ScalePaths {
        spec_replicas: ".spec.replicas".into(),
        status_replicas: ".status.replicas".into(),
        label_selector: Some(".spec.selector".into()),
    });
    let mut svc = info("", "v1", "Service", "services", true, &["svc"]);
    svc.has_status = true;
    vec![
        Arc::new(Namespaces(ns)),
        Arc::new(ConfigMaps(info(
            "",
            "v1",
            "ConfigMap",
            "configmaps",
            true,
            &["cm"],
        ))),
        Arc::new(Services(svc)),
        Arc::new(Deployments(deploy)),
        Arc::new(Leases(info(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            true,
            &[],
        ))),
    ]
}
