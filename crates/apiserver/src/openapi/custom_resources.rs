//! The OpenAPI documents once CRDs are served: the built-in documents plus, per served custom
//! resource version, a definition made from its structural schema (as apiextensions-apiserver's
//! `builder.BuildOpenAPIV2/V3` does: `metadata` points at `ObjectMeta`, `apiVersion`/`kind` get their
//! descriptions, the GVK extension is added) and its paths. Rebuilt only when the set of CRDs changes.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{DEFS_V2, DOCS, Document, Flavor, add_list, gv_path, paths, reachable, to_v3};
use crate::registry::strategy::ResourceInfo;

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const COMMON: [&str; 5] = [
    "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
    "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
    "io.k8s.api.autoscaling.v1.Scale",
];

/// The three documents with custom resources included.
pub struct CustomDocuments {
    pub v2: Document,
    pub v3_index: Document,
    /// Only the custom group-versions; the rest come from the built-in documents.
    pub v3: BTreeMap<String, Document>,
}

/// `certs.example.com` + `v1` + `Certificate` → `com.example.certs.v1.Certificate`.
fn definition_name(info: &ResourceInfo) -> String {
    let mut parts: Vec<&str> = info.group.split('.').collect();
    parts.reverse();
    format!("{}.{}.{}", parts.join("."), info.version, info.kind)
}

/// Swagger 2.0 has no `nullable`, `anyOf`, `oneOf` or `not`; upstream drops them from v2.
fn strip_for_v2(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in ["nullable", "anyOf", "oneOf", "not"] {
                m.remove(k);
            }
            m.values_mut().for_each(strip_for_v2);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_for_v2),
        _ => {}
    }
}

/// The definition of one custom resource version.
fn definition(info: &ResourceInfo, schema: &Value) -> Value {
    let mut d = schema.clone();
    if !d.is_object() {
        d = json!({"type": "object"});
    }
    let props = d
        .as_object_mut()
        .map(|m| m.entry("properties").or_insert_with(|| json!({})));
    if let Some(Value::Object(p)) = props {
        p.insert("apiVersion".into(), json!({"description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources", "type": "string"}));
        p.insert("kind".into(), json!({"description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds", "type": "string"}));
        p.insert("metadata".into(), json!({"$ref": format!("{DEFS_V2}{OBJECT_META}"), "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"}));
    }
    if let Some(m) = d.as_object_mut() {
        m.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([{"group": info.group, "kind": info.kind, "version": info.version}]),
        );
    }
    d
}

/// Builds the documents for the built-in kinds plus `custom` (each served version with its schema).
pub fn build(custom: &[(ResourceInfo, Value)]) -> CustomDocuments {
    let base_v2 = &DOCS.v2.value;
    let mut defs: Map<String, Value> = base_v2
        .get("definitions")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let common: Vec<String> = COMMON.iter().map(|s| s.to_string()).collect();
    let mut roots: Vec<(ResourceInfo, String)> = Vec::new();
    for (info, schema) in custom {
        let name = definition_name(info);
        defs.insert(name.clone(), definition(info, schema));
        add_list(&mut defs, &name, info, &common);
        roots.push((info.clone(), name));
    }

    let mut v2 = base_v2.clone();
    let mut v2_defs = defs.clone();
    for (_, name) in &roots {
        for n in [name.clone(), format!("{name}List")] {
            if let Some(d) = v2_defs.get_mut(&n) {
                strip_for_v2(d);
            }
        }
    }
    if let Some(p) = v2.get_mut("paths").and_then(Value::as_object_mut) {
        for (info, name) in &roots {
            for (path, item) in paths(info, name, Flavor::V2) {
                p.insert(path, item);
            }
        }
    }
    v2["definitions"] = Value::Object(v2_defs);

    let mut by_gv: BTreeMap<String, Vec<&(ResourceInfo, String)>> = BTreeMap::new();
    for r in &roots {
        by_gv.entry(gv_path(&r.0)).or_default().push(r);
    }
    let mut index = DOCS
        .v3_index
        .value
        .get("paths")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut v3 = BTreeMap::new();
    for (gv, members) in by_gv {
        let mut paths_v3 = Map::new();
        let mut wanted: Vec<String> = common.clone();
        wanted.push(OBJECT_META.to_string());
        for (info, name) in members.iter().map(|r| (&r.0, &r.1)) {
            for (path, item) in paths(info, name, Flavor::V3) {
                paths_v3.insert(path, item);
            }
            wanted.push(name.clone());
            wanted.push(format!("{name}List"));
        }
        let mut schemas = Map::new();
        for n in reachable(&defs, wanted) {
            if let Some(s) = defs.get(&n) {
                schemas.insert(n, to_v3(s.clone()));
            }
        }
        let doc = Document::new(json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
            "paths": paths_v3,
            "components": {"schemas": schemas},
        }));
        index.insert(
            gv.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={}", doc.hash)}),
        );
        v3.insert(gv, doc);
    }
    CustomDocuments {
        v2: Document::new(v2),
        v3_index: Document::new(json!({"paths": index})),
        v3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ResourceInfo {
        ResourceInfo {
            group: "certs.example.com".into(),
            version: "v1".into(),
            kind: "Certificate".into(),
            plural: "certificates".into(),
            singular: "certificate".into(),
            namespaced: true,
            short_names: vec![],
            categories: vec![],
            verbs: vec![],
            has_status: true,
            scale: None,
        }
    }

    #[test]
    fn custom_version_gets_a_v3_document_with_gvk_and_field_validation() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "description": "Desired state", "properties": {"secretName": {"type": "string", "nullable": true}}}}});
        let docs = build(&[(info(), schema)]);
        let doc = &docs.v3["apis/certs.example.com/v1"].value;
        let def = &doc["components"]["schemas"]["com.example.certs.v1.Certificate"];
        assert_eq!(def["properties"]["spec"]["description"], "Desired state");
        assert_eq!(
            def["x-kubernetes-group-version-kind"][0]["kind"],
            "Certificate"
        );
        assert!(doc["components"]["schemas"].get(OBJECT_META).is_some());
        let patch = &doc["paths"]["/apis/certs.example.com/v1/namespaces/{namespace}/certificates/{name}"]
            ["patch"];
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(
            docs.v3_index.value["paths"]
                .get("apis/certs.example.com/v1")
                .is_some()
        );
        assert!(docs.v3_index.value["paths"].get("apis/apps/v1").is_some());
        let v2_def = &docs.v2.value["definitions"]["com.example.certs.v1.Certificate"];
        assert!(
            v2_def["properties"]["spec"]["properties"]["secretName"]
                .get("nullable")
                .is_none()
        );
    }

    /// JSONSchemaProps has fields named `$ref` and `allOf`: they stay fields in v3 (kubectl parses
    /// the apiextensions document before it validates a CRD).
    #[test]
    fn schema_keywords_as_field_names_survive_v3() {
        let d = &super::super::v3("apis/apiextensions.k8s.io/v1")
            .unwrap()
            .value;
        let props = &d["components"]["schemas"]["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"]
            ["properties"];
        assert_eq!(props["allOf"]["type"], "array", "{}", props["allOf"]);
        assert_eq!(props["$ref"]["type"], "string");
    }
}
