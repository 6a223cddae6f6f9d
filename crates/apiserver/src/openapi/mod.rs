//! The OpenAPI documents kubectl reads: `/openapi/v2` (swagger 2.0, one document) and `/openapi/v3`
//! (an index plus one document per group-version), derived from k8s-openapi's `schemars` schemas
//! (which carry the field descriptions `kubectl explain` prints), the kinds table (paths, GVKs), and
//! `skiff_k8s_core::patch_meta` (the strategic-merge extensions). Built once, on first use: they are large.
//!
//! kubectl decides whether the server validates fields (`--validate=strict` without client-side schema
//! work) by finding, in the v3 document of a group-version, the PATCH operation whose
//! `x-kubernetes-group-version-kind` is the object's and looking for a `fieldValidation` parameter on it.

pub mod custom_resources;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ListMeta, Status};
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};
use sha2::Digest;
use skiff_k8s_core::patch_meta;

use crate::kinds::{self, SchemaFn};
use crate::registry::strategy::ResourceInfo;

/// One served document: its JSON and the hash clients put in `?hash=` (and get back as ETag).
pub struct Document {
    pub value: Value,
    pub json: Vec<u8>,
    pub hash: String,
}

impl Document {
    fn new(value: Value) -> Self {
        let json = serde_json::to_vec(&value).expect("a JSON value serializes");
        let hash = hex::encode_upper(sha2::Sha512::digest(&json));
        Self { value, json, hash }
    }
}

struct Documents {
    v2: Document,
    /// Keyed by `api/v1`, `apis/apps/v1`.
    v3: BTreeMap<String, Document>,
    v3_index: Document,
}

static DOCS: LazyLock<Documents> = LazyLock::new(build);

/// The swagger 2.0 document of `/openapi/v2`.
pub fn v2() -> &'static Document {
    &DOCS.v2
}

/// `/openapi/v3`: `{"paths": {"apis/apps/v1": {"serverRelativeURL": "/openapi/v3/apis/apps/v1?hash=…"}}}`.
pub fn v3_index() -> &'static Document {
    &DOCS.v3_index
}

/// The v3 document of one group-version, by its path after `/openapi/v3/` (`api/v1`, `apis/apps/v1`).
pub fn v3(path: &str) -> Option<&'static Document> {
    DOCS.v3.get(path.trim_matches('/'))
}

const DEFS_V2: &str = "#/definitions/";
const DEFS_V3: &str = "#/components/schemas/";

fn build() -> Documents {
    let table = kinds::schemas();
    let mut generator = SchemaSettings::draft07()
        .with(|s| {
            s.definitions_path = "/definitions".into();
            s.meta_schema = None;
            s.transforms = Vec::new();
        })
        .into_generator();
    // Definitions every group-version document refers to from its operations.
    let common: Vec<String> = [
        generator.subschema_for::<Status>(),
        generator.subschema_for::<DeleteOptions>(),
        generator.subschema_for::<ListMeta>(),
        generator.subschema_for::<Scale>(),
    ]
    .iter()
    .filter_map(|s| ref_name(s.as_value()))
    .collect();
    let mut roots: Vec<(ResourceInfo, String)> = Vec::new();
    for (info, schema_fn) in &table {
        let f: &SchemaFn = schema_fn;
        let r = f(&mut generator);
        if let Some(name) = ref_name(r.as_value()) {
            roots.push((info.clone(), name));
        }
    }
    let mut defs = generator.take_definitions(false);
    for (info, name) in &roots {
        add_gvk(&mut defs, name, info, &info.kind);
        add_list(&mut defs, name, info, &common);
        if let Some(facts) = patch_meta::schema_for(&info.group, &info.kind) {
            annotate(&mut defs, name, facts, 0);
        }
    }

    let mut v2_paths = Map::new();
    for (info, name) in &roots {
        for (path, item) in paths(info, name, Flavor::V2) {
            v2_paths.insert(path, item);
        }
    }
    let v2 = json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": v2_paths,
        "definitions": defs,
    });

    let mut by_gv: BTreeMap<String, Vec<&(ResourceInfo, String)>> = BTreeMap::new();
    for r in &roots {
        by_gv.entry(gv_path(&r.0)).or_default().push(r);
    }
    let mut v3 = BTreeMap::new();
    let mut index = Map::new();
    for (gv, members) in by_gv {
        let mut paths_v3 = Map::new();
        let mut wanted: Vec<String> = common.clone();
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
            "info": {"title": "Kubernetes", "version": "v1.33.0"},
            "paths": paths_v3,
            "components": {"schemas": schemas},
        }));
        index.insert(
            gv.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={}", doc.hash)}),
        );
        v3.insert(gv, doc);
    }
    Documents {
        v2: Document::new(v2),
        v3,
        v3_index: Document::new(json!({"paths": index})),
    }
}

/// `api/v1` or `apis/<group>/<version>`.
fn gv_path(info: &ResourceInfo) -> String {
    if info.group.is_empty() {
        format!("api/{}", info.version)
    } else {
        format!("apis/{}/{}", info.group, info.version)
    }
}

fn ref_name(v: &Value) -> Option<String> {
    v.get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix(DEFS_V2))
        .map(str::to_string)
}

fn gvk(info: &ResourceInfo, kind: &str) -> Value {
    json!([{"group": info.group, "kind": kind, "version": info.version}])
}

fn add_gvk(defs: &mut Map<String, Value>, name: &str, info: &ResourceInfo, kind: &str) {
    if let Some(d) = defs.get_mut(name).and_then(Value::as_object_mut) {
        d.insert("x-kubernetes-group-version-kind".into(), gvk(info, kind));
    }
}

/// `<Kind>List`, which k8s-openapi has as a generic type without a schema.
fn add_list(defs: &mut Map<String, Value>, name: &str, info: &ResourceInfo, common: &[String]) {
    let list_meta = common
        .iter()
        .find(|c| c.ends_with(".ListMeta"))
        .cloned()
        .unwrap_or_default();
    let kind = &info.kind;
    defs.insert(
        format!("{name}List"),
        json!({
            "description": format!("{kind}List is a list of {kind} objects."),
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": {"description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources", "type": "string"},
                "items": {"description": format!("items is the list of {kind} objects."), "type": "array", "items": {"$ref": format!("{DEFS_V2}{name}")}},
                "kind": {"description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds", "type": "string"},
                "metadata": {"$ref": format!("{DEFS_V2}{list_meta}"), "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"},
            },
            "x-kubernetes-group-version-kind": gvk(info, &format!("{kind}List")),
        }),
    );
}

/// The definition a property points at (directly, or through `items`/`allOf`).
fn target_of(prop: &Value) -> Option<String> {
    ref_name(prop)
        .or_else(|| prop.get("items").and_then(ref_name))
        .or_else(|| {
            prop.get("allOf")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(ref_name)
        })
}

/// Write the `patch_meta` facts onto the definition `name` and, following the facts' tree, onto the
/// definitions its fields reference.
fn annotate(defs: &mut Map<String, Value>, name: &str, facts: &patch_meta::Schema, depth: usize) {
    if depth > 8 {
        return;
    }
    let mut children = Vec::new();
    let Some(props) = defs
        .get_mut(name)
        .and_then(|d| d.get_mut("properties"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for field in facts.fields {
        let Some(prop) = props.get_mut(field.name).and_then(Value::as_object_mut) else {
            continue;
        };
        match field.strategy {
            patch_meta::Strategy::MergeByKey { key, map_keys } => {
                prop.insert("x-kubernetes-patch-strategy".into(), json!("merge"));
                prop.insert("x-kubernetes-patch-merge-key".into(), json!(key));
                prop.insert("x-kubernetes-list-type".into(), json!("map"));
                prop.insert("x-kubernetes-list-map-keys".into(), json!(map_keys));
            }
            patch_meta::Strategy::MergePrimitive => {
                prop.insert("x-kubernetes-patch-strategy".into(), json!("merge"));
                prop.insert("x-kubernetes-list-type".into(), json!("set"));
            }
            patch_meta::Strategy::Replace => {
                prop.insert("x-kubernetes-patch-strategy".into(), json!("replace"));
            }
            patch_meta::Strategy::AtomicStruct => {
                prop.insert("x-kubernetes-map-type".into(), json!("atomic"));
            }
            patch_meta::Strategy::Default => {}
        }
        if let (Some(elem), Some(target)) = (field.elem, target_of(&Value::Object(prop.clone()))) {
            children.push((target, elem));
        }
    }
    for (target, elem) in children {
        annotate(defs, &target, elem, depth + 1);
    }
}

/// Every definition reachable from `roots` through `$ref`s.
fn reachable(defs: &Map<String, Value>, roots: Vec<String>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = roots;
    while let Some(n) = stack.pop() {
        if !seen.insert(n.clone()) {
            continue;
        }
        if let Some(d) = defs.get(&n) {
            collect_refs(d, &mut stack);
        }
    }
    seen
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(DEFS_V2))
            {
                out.push(r.to_string());
            }
            m.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

/// Swagger 2 schema → OpenAPI 3: refs move to `components/schemas`, and a `$ref` with siblings
/// (a description) becomes `allOf: [{$ref}]` with the siblings, as upstream's v3 documents have it.
fn to_v3(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            let mut reference = None;
            for (k, x) in m {
                if k == "$ref" && x.is_string() {
                    let r = x.as_str().unwrap_or("").replacen(DEFS_V2, DEFS_V3, 1);
                    reference = Some(Value::String(r));
                } else if matches!(
                    k.as_str(),
                    "properties" | "definitions" | "patternProperties"
                ) && let Value::Object(fields) = x
                {
                    // A map of names to schemas: the names are not keywords (JSONSchemaProps has
                    // fields called `$ref` and `allOf`).
                    let fields = fields.into_iter().map(|(n, s)| (n, to_v3(s))).collect();
                    out.insert(k, Value::Object(fields));
                } else {
                    out.insert(k, to_v3(x));
                }
            }
            match reference {
                Some(r) if out.is_empty() => json!({"$ref": r}),
                Some(r) => {
                    out.insert("allOf".into(), json!([{"$ref": r}]));
                    Value::Object(out)
                }
                None => Value::Object(out),
            }
        }
        Value::Array(a) => Value::Array(a.into_iter().map(to_v3).collect()),
        other => other,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Flavor {
    V2,
    V3,
}

/// `CoreV1`, `AppsV1`, `RbacAuthorizationV1` (upstream operation id infix).
fn gv_camel(info: &ResourceInfo) -> String {
    let group = if info.group.is_empty() {
        "core"
    } else {
        info.group.trim_end_matches(".k8s.io")
    };
    let mut out = String::new();
    for part in group
        .split('.')
        .chain(std::iter::once(info.version.as_str()))
    {
        let mut c = part.chars();
        if let Some(f) = c.next() {
            out.push(f.to_ascii_uppercase());
            out.push_str(c.as_str());
        }
    }
    out
}

fn tag(info: &ResourceInfo) -> String {
    let group = if info.group.is_empty() {
        "core"
    } else {
        info.group.trim_end_matches(".k8s.io")
    };
    format!("{}_{}", group.replace('.', "_"), info.version)
}

fn param(f: Flavor, name: &str, location: &str, description: &str, required: bool) -> Value {
    let mut p =
        json!({"name": name, "in": location, "description": description, "uniqueItems": true});
    if required {
        p["required"] = json!(true);
    }
    match f {
        Flavor::V2 => p["type"] = json!("string"),
        Flavor::V3 => p["schema"] = json!({"type": "string", "uniqueItems": true}),
    }
    p
}

const FIELD_VALIDATION: &str = "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.";
const DRY_RUN: &str = "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed";
const FIELD_MANAGER: &str = "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.";

fn response(f: Flavor, def: &str) -> Value {
    match f {
        Flavor::V2 => {
            json!({"200": {"description": "OK", "schema": {"$ref": format!("{DEFS_V2}{def}")}}, "401": {"description": "Unauthorized"}})
        }
        Flavor::V3 => json!({"200": {"description": "OK", "content": {
            "application/json": {"schema": {"$ref": format!("{DEFS_V3}{def}")}},
            "application/yaml": {"schema": {"$ref": format!("{DEFS_V3}{def}")}}}},
            "401": {"description": "Unauthorized"}}),
    }
}

/// One operation with the GVK extension kubectl matches on.
fn op(
    f: Flavor,
    info: &ResourceInfo,
    id: &str,
    action: &str,
    params: Vec<Value>,
    body: Option<(&str, &[&str])>,
    resp: &str,
) -> Value {
    let mut params = params;
    let mut o = json!({
        "operationId": id,
        "tags": [tag(info)],
        "description": format!("{action} {}", info.kind),
        "responses": response(f, resp),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": info.group, "kind": info.kind, "version": info.version},
    });
    if let Some((def, types)) = body {
        match f {
            Flavor::V2 => {
                params.insert(0, json!({"name": "body", "in": "body", "required": true, "schema": {"$ref": format!("{DEFS_V2}{def}")}}));
                o["consumes"] = json!(types);
            }
            Flavor::V3 => {
                let content: Map<String, Value> = types
                    .iter()
                    .map(|t| {
                        (
                            t.to_string(),
                            json!({"schema": {"$ref": format!("{DEFS_V3}{def}")}}),
                        )
                    })
                    .collect();
                o["requestBody"] = json!({"content": content, "required": true});
            }
        }
    }
    o["parameters"] = Value::Array(params);
    o
}

const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

/// The paths of one resource: collection, item, all-namespaces list, `/status`, `/scale`.
fn paths(info: &ResourceInfo, def: &str, f: Flavor) -> Vec<(String, Value)> {
    let base = format!("/{}", gv_path(info));
    let ns = if info.namespaced { "Namespaced" } else { "" };
    let camel = gv_camel(info);
    let kind = &info.kind;
    let collection = if info.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", info.plural)
    } else {
        format!("{base}/{}", info.plural)
    };
    let item = format!("{collection}/{{name}}");
    let write_params = |f: Flavor| {
        vec![
            param(f, "dryRun", "query", DRY_RUN, false),
            param(f, "fieldManager", "query", FIELD_MANAGER, false),
            param(f, "fieldValidation", "query", FIELD_VALIDATION, false),
        ]
    };
    let mut common = vec![param(
        f,
        "pretty",
        "query",
        "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line tool (curl and kubectl) are making the request.",
        false,
    )];
    if info.namespaced {
        common.push(param(
            f,
            "namespace",
            "path",
            "object name and auth scope, such as for teams and projects",
            true,
        ));
    }
    let mut item_common = vec![param(
        f,
        "name",
        "path",
        &format!("name of the {kind}"),
        true,
    )];
    item_common.extend(common.clone());
    let list = format!("{def}List");
    let status = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
    let mut out = Vec::new();
    out.push((
        collection.clone(),
        json!({
            "get": op(f, info, &format!("list{camel}{ns}{kind}"), "list", vec![], None, &list),
            "post": op(f, info, &format!("create{camel}{ns}{kind}"), "post", write_params(f), Some((def, &["*/*"])), def),
            "delete": op(f, info, &format!("deletecollection{camel}{ns}{kind}"), "deletecollection", vec![param(f, "dryRun", "query", DRY_RUN, false)], None, status),
            "parameters": common,
        }),
    ));
    let mut item_ops = json!({
        "get": op(f, info, &format!("read{camel}{ns}{kind}"), "get", vec![], None, def),
        "put": op(f, info, &format!("replace{camel}{ns}{kind}"), "put", write_params(f), Some((def, &["*/*"])), def),
        "patch": op(f, info, &format!("patch{camel}{ns}{kind}"), "patch", {
            let mut p = write_params(f);
            p.push(param(f, "force", "query", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.", false));
            p
        }, Some(("io.k8s.apimachinery.pkg.apis.meta.v1.Patch", PATCH_TYPES)), def),
        "delete": op(f, info, &format!("delete{camel}{ns}{kind}"), "delete", vec![param(f, "dryRun", "query", DRY_RUN, false)], None, status),
        "parameters": item_common.clone(),
    });
    if f == Flavor::V2 {
        // Swagger 2 patch bodies are free-form objects.
        item_ops["patch"]["parameters"][0]["schema"] = json!({"type": "object"});
    } else {
        for t in PATCH_TYPES {
            item_ops["patch"]["requestBody"]["content"][*t] = json!({"schema": {"type": "object"}});
        }
    }
    out.push((item.clone(), item_ops));
    if info.namespaced {
        out.push((
            format!("{base}/{}", info.plural),
            json!({"get": op(f, info, &format!("list{camel}{kind}ForAllNamespaces"), "list", vec![], None, &list), "parameters": [param(f, "pretty", "query", "If 'true', then the output is pretty printed.", false)]}),
        ));
    }
    let mut sub = |name: &str, id: &str, resp_def: &str| {
        let mut patch_params = write_params(f);
        patch_params.push(param(
            f,
            "force",
            "query",
            "Force is going to \"force\" Apply requests.",
            false,
        ));
        let mut ops = json!({
            "get": op(f, info, &format!("read{camel}{ns}{kind}{id}"), "get", vec![], None, resp_def),
            "put": op(f, info, &format!("replace{camel}{ns}{kind}{id}"), "put", write_params(f), Some((resp_def, &["*/*"])), resp_def),
            "patch": op(f, info, &format!("patch{camel}{ns}{kind}{id}"), "patch", patch_params, Some((resp_def, PATCH_TYPES)), resp_def),
            "parameters": item_common.clone(),
        });
        if f == Flavor::V2 {
            ops["patch"]["parameters"][0]["schema"] = json!({"type": "object"});
        }
        if name == "scale" {
            // The scale subresource speaks autoscaling/v1 Scale, and says so to kubectl.
            for verb in ["get", "put", "patch"] {
                ops[verb]["x-kubernetes-group-version-kind"] =
                    json!({"group": "autoscaling", "kind": "Scale", "version": "v1"});
            }
        }
        out.push((format!("{item}/{name}"), ops));
    };
    if info.has_status {
        sub("status", "Status", def);
    }
    if info.scale.is_some() {
        sub("scale", "Scale", "io.k8s.api.autoscaling.v1.Scale");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
        &doc["components"]["schemas"][name]
    }

    #[test]
    fn v3_apps_has_descriptions_gvk_and_field_validation() {
        let doc = &v3("apis/apps/v1").expect("apps/v1 document").value;
        let spec = schema(doc, "io.k8s.api.apps.v1.DeploymentSpec");
        let template = &spec["properties"]["template"];
        assert!(
            template["description"]
                .as_str()
                .unwrap()
                .starts_with("Template describes the pods")
        );
        assert_eq!(
            template["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.PodTemplateSpec"
        );
        let d = schema(doc, "io.k8s.api.apps.v1.Deployment");
        assert_eq!(
            d["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
        );
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(
            doc["paths"]
                .get("/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale")
                .is_some()
        );
        // Every $ref resolves inside the document.
        let mut refs = Vec::new();
        collect_v3_refs(doc, &mut refs);
        for r in refs {
            let name = r.strip_prefix(DEFS_V3).unwrap();
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "dangling {r}"
            );
        }
    }

    fn collect_v3_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                    out.push(r.to_string());
                }
                m.values().for_each(|x| collect_v3_refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| collect_v3_refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn patch_extensions_follow_patch_meta() {
        let doc = &v3("api/v1").expect("core document").value;
        let containers = &schema(doc, "io.k8s.api.core.v1.PodSpec")["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        let ports = &schema(doc, "io.k8s.api.core.v1.Container")["properties"]["ports"];
        assert_eq!(
            ports["x-kubernetes-list-map-keys"],
            json!(["containerPort", "protocol"])
        );
        let fin = &schema(doc, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")["properties"]["finalizers"];
        assert_eq!(fin["x-kubernetes-list-type"], "set");
    }

    #[test]
    fn index_and_v2() {
        let index = &v3_index().value;
        let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        assert_eq!(
            url,
            format!(
                "/openapi/v3/apis/apps/v1?hash={}",
                v3("apis/apps/v1").unwrap().hash
            )
        );
        assert!(index["paths"].get("api/v1").is_some());
        assert!(
            index["paths"]
                .get("apis/rbac.authorization.k8s.io/v1")
                .is_some()
        );
        let v2 = &v2().value;
        assert_eq!(v2["swagger"], "2.0");
        let d = &v2["definitions"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["template"];
        assert_eq!(
            d["$ref"],
            "#/definitions/io.k8s.api.core.v1.PodTemplateSpec"
        );
        assert!(d["description"].is_string());
        assert_eq!(
            v2["definitions"]["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"][0]["kind"],
            "Pod"
        );
        assert!(
            v2["definitions"]
                .get("io.k8s.api.core.v1.PodList")
                .is_some()
        );
        let post = &v2["paths"]["/api/v1/namespaces/{namespace}/pods"]["post"];
        assert_eq!(post["operationId"], "createCoreV1NamespacedPod");
        assert!(
            post["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(v2["paths"].get("/api/v1/nodes/{name}/status").is_some());
    }
}
