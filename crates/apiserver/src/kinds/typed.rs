//! The generic strategy: one [`Kind`] impl per kind file supplies the facts and the kind's own rules; [`Typed`]
//! turns it into a [`Strategy`] with the behaviour every built-in kind shares (decode through the
//! k8s-openapi type, status split, generation bump, metadata validation), so simple kinds are a few lines.

use std::any::TypeId;
use std::marker::PhantomData;

use k8s_openapi::{NamespaceResourceScope, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use skiff_k8s_core::status::FieldError;

use crate::registry::strategy::{Column, ResourceInfo, ScalePaths, Strategy};

/// Verbs of an ordinary stored resource, as discovery lists them.
pub(crate) const FULL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

pub(crate) use skiff_k8s_core::validation::NameRule;

/// One built-in kind: facts plus the rules that differ from the shared behaviour. Every method defaults
/// to "nothing special", so a kind file overrides only what upstream's strategy does for that kind.
pub(crate) trait Kind: Send + Sync + 'static {
    /// The k8s-openapi type the object decodes into (schema, unknown-field detection, apiVersion/kind).
    type Object: DeserializeOwned + Serialize + Resource + schemars::JsonSchema + 'static;

    const SHORT_NAMES: &'static [&'static str] = &[];
    const CATEGORIES: &'static [&'static str] = &[];
    /// Has a `status` subresource: main updates keep the stored status, create resets it.
    const STATUS: bool = false;
    /// Create keeps the client's status (Nodes register with theirs) although the kind has `/status`.
    const KEEP_STATUS_ON_CREATE: bool = false;
    /// Has a `scale` subresource (replicas at `spec.replicas`, `status.replicas`).
    const SCALE: bool = false;
    /// Upstream sets `metadata.generation` to 1 on create and bumps it when the spec changes.
    const GENERATION: bool = false;
    const VERBS: &'static [&'static str] = FULL_VERBS;
    const NAME_RULE: NameRule = NameRule::Dns1123Subdomain;
    /// A PUT to a missing name creates it (Endpoints, Leases).
    const CREATE_ON_UPDATE: bool = false;

    /// Defaulted fields (upstream `SetDefaults_*`), applied on create and on every update.
    fn defaults(_obj: &mut Value) {}
    /// Server-owned fields on create after status reset (e.g. Pod `status.phase: Pending`).
    fn on_create(_obj: &mut Value) {}
    /// Extra carry-over from the stored object on a main-resource update (Namespace keeps
    /// `spec.finalizers`, Service keeps its allocated `clusterIP`); runs before defaults.
    fn on_update(_new: &mut Value, _old: &Value) {}
    /// The kind's own validation (metadata is already checked by [`Typed`]).
    fn validate(_obj: &Value) -> Vec<FieldError> {
        Vec::new()
    }
    /// Immutable-field checks on update; the create rules run as well.
    fn validate_update(_new: &Value, _old: &Value) -> Vec<FieldError> {
        Vec::new()
    }
    fn warnings(_obj: &Value) -> Vec<String> {
        Vec::new()
    }
    fn columns() -> Vec<Column> {
        vec![name_column(), age_column()]
    }
    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![name_cell(obj), age_cell(obj, now)]
    }
    fn field_value(_obj: &Value, _field: &str) -> Option<String> {
        None
    }
    /// `CheckGracefulDelete`: Some(seconds) when a DELETE only marks the object.
    fn graceful_deletion_seconds(_obj: &Value) -> Option<i64> {
        None
    }
}

/// A [`Strategy`] over a [`Kind`].
pub(crate) struct Typed<K: Kind> {
    info: ResourceInfo,
    _kind: PhantomData<fn() -> K>,
}

impl<K: Kind> Typed<K> {
    pub(crate) fn new() -> Self {
        let t = K::Object::URL_PATH_SEGMENT;
        let info = ResourceInfo {
            group: K::Object::GROUP.to_string(),
            version: K::Object::VERSION.to_string(),
            kind: K::Object::KIND.to_string(),
            plural: t.to_string(),
            singular: K::Object::KIND.to_ascii_lowercase(),
            namespaced: TypeId::of::<<K::Object as Resource>::Scope>()
                == TypeId::of::<NamespaceResourceScope>(),
            short_names: K::SHORT_NAMES.iter().map(|s| s.to_string()).collect(),
            categories: K::CATEGORIES.iter().map(|s| s.to_string()).collect(),
            verbs: K::VERBS.iter().map(|s| s.to_string()).collect(),
            has_status: K::STATUS,
            scale: K::SCALE.then(|| ScalePaths {
                spec_replicas: ".spec.replicas".to_string(),
                status_replicas: ".status.replicas".to_string(),
                // Built-in kinds keep a structured `LabelSelector` here, not the string form CRDs use.
                label_selector: Some(".spec.selector".to_string()),
            }),
        };
        Self {
            info,
            _kind: PhantomData,
        }
    }
}

impl<K: Kind> Strategy for Typed<K> {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    fn canonicalize(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        canonicalize::<K::Object>(obj)
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        let Some(map) = obj.as_object_mut() else {
            return;
        };
        if K::STATUS && !K::KEEP_STATUS_ON_CREATE {
            map.remove("status");
        }
        if K::GENERATION {
            meta_mut(obj).insert("generation".into(), Value::from(1));
        }
        K::defaults(obj);
        K::on_create(obj);
    }

    /// Object metadata is checked by the registry with [`Strategy::name_rule`]; this is the kind's part.
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        K::validate(obj)
    }

    fn name_rule(&self) -> NameRule {
        K::NAME_RULE
    }

    fn allow_create_on_update(&self) -> bool {
        K::CREATE_ON_UPDATE
    }

    fn warnings_on_create(&self, obj: &Value) -> Vec<String> {
        K::warnings(obj)
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        if K::STATUS {
            set_or_remove(new, "status", old.get("status"));
        }
        K::on_update(new, old);
        K::defaults(new);
        if K::GENERATION {
            let old_gen = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let changed = without_meta_status(new) != without_meta_status(old);
            let gen_ = if changed { old_gen + 1 } else { old_gen };
            meta_mut(new).insert("generation".into(), Value::from(gen_));
        }
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        errs.extend(K::validate_update(new, old));
        errs
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        status_update(new, old);
    }

    fn columns(&self) -> Vec<Column> {
        K::columns()
    }

    fn row(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        K::row(obj, now)
    }

    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        K::field_value(obj, field)
    }

    fn graceful_deletion_seconds(&self, obj: &Value) -> Option<i64> {
        K::graceful_deletion_seconds(obj)
    }
}

/// Decode into `T`, collecting unknown fields, and re-encode. apiVersion and kind missing from the body
/// are filled in (the URL already names the kind); a different one is refused as upstream does.
pub(crate) fn canonicalize<T>(mut obj: Value) -> Result<(Value, Vec<String>), String>
where
    T: DeserializeOwned + Serialize + Resource,
{
    let Some(map) = obj.as_object_mut() else {
        return Err(format!(
            "{} in version \"{}\" cannot be handled as a {}: the object is not a JSON object",
            T::KIND,
            T::VERSION,
            T::KIND
        ));
    };
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), Value::from(T::API_VERSION));
        }
        Some(v) if v != T::API_VERSION => {
            return Err(format!(
                "the API version in the data ({v}) does not match the expected API version ({})",
                T::API_VERSION
            ));
        }
        Some(_) => {}
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), Value::from(T::KIND));
        }
        Some(k) if k != T::KIND => {
            return Err(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                T::KIND
            ));
        }
        Some(_) => {}
    }
    let mut unknown = Vec::new();
    let typed: T = serde_ignored::deserialize(obj, |path| unknown.push(field_path(&path)))
        .map_err(|e| {
            format!(
                "{} in version \"{}\" cannot be handled as a {}: {e}",
                T::KIND,
                T::VERSION,
                T::KIND
            )
        })?;
    let out = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    Ok((out, unknown))
}

/// `spec.?.containers.?.0.imagePullPolcy` (serde_ignored) → `spec.containers[0].imagePullPolcy` (upstream).
fn field_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => {
            let p = field_path(parent);
            if p.is_empty() {
                key.clone()
            } else {
                format!("{p}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => field_path(parent),
    }
}

/// `ResetObjectMetaForStatus` plus "everything but status comes from the stored object".
pub(crate) fn status_update(new: &mut Value, old: &Value) {
    let status = new.get("status").cloned();
    let mut meta = new.get("metadata").cloned().unwrap_or(Value::Null);
    let mut merged = old.clone();
    if let (Some(m), Some(old_meta)) = (meta.as_object_mut(), old.get("metadata")) {
        for key in [
            "deletionTimestamp",
            "generation",
            "selfLink",
            "labels",
            "annotations",
            "finalizers",
            "ownerReferences",
        ] {
            match old_meta.get(key) {
                Some(v) => {
                    m.insert(key.into(), v.clone());
                }
                None => {
                    m.remove(key);
                }
            }
        }
        merged["metadata"] = meta;
    }
    set_or_remove(&mut merged, "status", status.as_ref());
    *new = merged;
}

fn set_or_remove(obj: &mut Value, key: &str, v: Option<&Value>) {
    if let Some(map) = obj.as_object_mut() {
        match v {
            Some(v) => {
                map.insert(key.into(), v.clone());
            }
            None => {
                map.remove(key);
            }
        }
    }
}

fn without_meta_status(obj: &Value) -> Map<String, Value> {
    let mut m = obj.as_object().cloned().unwrap_or_default();
    m.remove("metadata");
    m.remove("status");
    m
}

/// `metadata` as a map, created when absent.
pub(crate) fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    child_map(obj, "metadata")
}

/// The object at `key` inside `obj`, created (and `obj` made an object) when absent or not an object.
pub(crate) fn child_map<'a>(obj: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let map = obj.as_object_mut().expect("made an object above");
    let entry = map
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut().expect("made an object above")
}

/// The object at `key` inside a map, created when absent or not an object.
pub(crate) fn sub_map<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let e = m
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !e.is_object() {
        *e = Value::Object(Map::new());
    }
    e.as_object_mut().expect("made an object above")
}

/// Insert `v` at `key` when absent or null.
pub(crate) fn default_field(map: &mut Map<String, Value>, key: &str, v: impl Into<Value>) {
    match map.get(key) {
        Some(x) if !x.is_null() => {}
        _ => {
            map.insert(key.to_string(), v.into());
        }
    }
}

pub(crate) fn name_column() -> Column {
    Column {
        name: "Name",
        type_: "string",
        format: "name",
        description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
        priority: 0,
    }
}

pub(crate) fn age_column() -> Column {
    Column {
        name: "Age",
        type_: "string",
        format: "",
        description: "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
        priority: 0,
    }
}

/// A column other than NAME/AGE.
pub(crate) const fn col(
    name: &'static str,
    type_: &'static str,
    description: &'static str,
    priority: i32,
) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority,
    }
}

pub(crate) fn name_cell(obj: &Value) -> Value {
    obj.pointer("/metadata/name")
        .cloned()
        .unwrap_or(Value::from(""))
}

pub(crate) fn age_cell(obj: &Value, now: jiff::Timestamp) -> Value {
    Value::String(crate::registry::age(obj, now))
}

/// String at a JSON pointer, or "".
pub(crate) fn s<'a>(obj: &'a Value, ptr: &str) -> &'a str {
    obj.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// Integer at a JSON pointer, or 0.
pub(crate) fn i(obj: &Value, ptr: &str) -> i64 {
    obj.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

/// Array at a JSON pointer, or empty.
pub(crate) fn arr<'a>(obj: &'a Value, ptr: &str) -> &'a [Value] {
    obj.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Number of keys of the object at a JSON pointer.
pub(crate) fn len_map(obj: &Value, ptr: &str) -> usize {
    obj.pointer(ptr)
        .and_then(Value::as_object)
        .map_or(0, Map::len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use serde_json::json;

    #[test]
    fn unknown_fields_get_upstream_paths() {
        let (out, unknown) = canonicalize::<k8s_openapi::api::core::v1::Pod>(json!({
            "metadata": {"name": "p", "bogus": 1},
            "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolcy": "x"}]}
        }))
        .unwrap();
        assert_eq!(
            unknown,
            vec![
                "metadata.bogus".to_string(),
                "spec.containers[0].imagePullPolcy".to_string()
            ]
        );
        assert_eq!(out["apiVersion"], "v1");
        assert_eq!(out["kind"], "Pod");
        assert!(out["metadata"].get("bogus").is_none());
    }

    #[test]
    fn wrong_version_and_type_errors_are_refused() {
        let e = canonicalize::<ConfigMap>(json!({"apiVersion": "v2", "kind": "ConfigMap"}))
            .unwrap_err();
        assert!(
            e.contains("does not match the expected API version (v1)"),
            "{e}"
        );
        let e = canonicalize::<ConfigMap>(json!({"kind": "Secret"})).unwrap_err();
        assert!(e.contains("expected kind (ConfigMap)"), "{e}");
        let e = canonicalize::<ConfigMap>(json!({"data": {"a": 1}})).unwrap_err();
        assert!(
            e.starts_with("ConfigMap in version \"v1\" cannot be handled as a ConfigMap"),
            "{e}"
        );
    }

    #[test]
    fn status_update_keeps_everything_but_status() {
        let old = json!({"metadata": {"name": "a", "labels": {"x": "1"}, "resourceVersion": "5"}, "spec": {"a": 1}, "status": {"s": 1}});
        let mut new = json!({"metadata": {"name": "a", "labels": {"y": "2"}, "resourceVersion": "5"}, "spec": {"a": 2}, "status": {"s": 2}});
        status_update(&mut new, &old);
        assert_eq!(new["spec"]["a"], 1);
        assert_eq!(new["status"]["s"], 2);
        assert_eq!(new["metadata"]["labels"], json!({"x": "1"}));
    }
}
