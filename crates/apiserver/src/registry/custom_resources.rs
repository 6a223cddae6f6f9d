//! Custom resources (apiextensions-apiserver's `crdHandler`): every established
//! CustomResourceDefinition becomes a served resource with one [`CustomResource`] strategy per served
//! version, learned from the store at [`Registry::load`] and kept current by a store watch on CRDs (and
//! synchronously by the HTTP layer after a CRD write, so `kubectl apply -f crd.yaml -f cr.yaml` works
//! without waiting for the watch).
//!
//! Versions use `conversion: None` semantics: objects are stored with the storage version's
//! `apiVersion` and only the `apiVersion` is rewritten on the way out. Deleting a CRD goes through the
//! `customresourcecleanup.apiextensions.k8s.io` finalizer: its custom resources are deleted through the
//! registry (so their own finalizers are honoured), then the finalizer is removed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use skiff_k8s_core::apply as ssa;
use skiff_k8s_core::patch_meta;
use skiff_k8s_core::status::{ApiError, FieldError};
use skiff_store::{EventKind, Op, Precondition};

use super::custom_resources_schema as schema;
use super::strategy::{Column, ResourceInfo, ScalePaths, Strategy};
use super::write::{DeleteOptions, WriteOptions};
use super::{Conversion, ListOptions, Registry, Served, decode};
use crate::kinds::typed::{FULL_VERBS, status_update};

/// The finalizer that makes a CRD wait for its custom resources to be deleted.
#[doc(alias = "CustomResourceCleanupFinalizer")]
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";
pub const CRD_GROUP: &str = "apiextensions.k8s.io";
pub const CRD_PLURAL: &str = "customresourcedefinitions";
const MANAGER: &str = "kube-apiserver";

/// A printer column with its JSONPath (`additionalPrinterColumns`).
#[derive(Clone, Debug)]
struct PrinterColumn {
    column: Column,
    json_path: String,
}

/// The strategy of one served version of a custom resource.
#[doc(alias = "crdHandler")]
pub struct CustomResource {
    info: ResourceInfo,
    /// `group/<storage version>`: what objects are stored as.
    storage_api_version: String,
    schema: Value,
    columns: Vec<PrinterColumn>,
    /// `selectableFields` as field-selector names (`spec.color`) with their JSONPath.
    selectable: Vec<(String, String)>,
}

impl CustomResource {
    /// The `openAPIV3Schema` this version validates with.
    pub fn schema(&self) -> &Value {
        &self.schema
    }
}

/// Column header strings live as long as the process: `Column` holds `&'static str`, and CRD
/// updates are rare, so each distinct string is leaked once and reused.
fn intern(s: &str) -> &'static str {
    static SEEN: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = seen.iter().find(|x| **x == s) {
        return found;
    }
    let leaked: &'static str = Box::leak(s.to_string().into_boxed_str());
    seen.push(leaked);
    leaked
}

impl Strategy for CustomResource {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    /// Structural pruning and defaulting; the registry has already checked `apiVersion`/`kind`
    /// against this version, and objects are stored as the storage version.
    fn canonicalize(&self, mut obj: Value) -> Result<(Value, Vec<String>), String> {
        let Some(map) = obj.as_object_mut() else {
            return Err(format!(
                "{} in version \"{}\" cannot be handled as a {}: the object is not a JSON object",
                self.info.kind, self.info.version, self.info.kind
            ));
        };
        map.insert(
            "apiVersion".into(),
            Value::String(self.storage_api_version.clone()),
        );
        map.insert("kind".into(), Value::String(self.info.kind.clone()));
        let dropped = schema::prune(&mut obj, &self.schema);
        schema::apply_defaults(&mut obj, &self.schema);
        Ok((obj, dropped))
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if self.info.has_status
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("generation".into(), json!(1));
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        schema::validate(obj, &self.schema)
    }

    /// With a status subresource the main resource keeps the stored status; the generation moves
    /// when anything but metadata (and status, when it is a subresource) changed.
    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        if self.info.has_status
            && let Some(m) = new.as_object_mut()
        {
            match old.get("status") {
                Some(s) => m.insert("status".into(), s.clone()),
                None => m.remove("status"),
            };
        }
        let strip = |v: &Value| {
            let mut m = v.as_object().cloned().unwrap_or_default();
            m.remove("metadata");
            if self.info.has_status {
                m.remove("status");
            }
            m
        };
        let old_gen = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let generation = if strip(new) != strip(old) {
            old_gen + 1
        } else {
            old_gen
        };
        if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("generation".into(), json!(generation));
        }
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        status_update(new, old);
    }

    fn columns(&self) -> Vec<Column> {
        let mut cols = vec![crate::kinds::typed::name_column()];
        cols.extend(self.columns.iter().map(|c| c.column.clone()));
        cols
    }

    /// Upstream's CRD table convertor: one JSONPath result per cell, `date` cells as ages.
    fn row(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let mut cells = vec![obj.pointer("/metadata/name").cloned().unwrap_or(json!(""))];
        for c in &self.columns {
            let found = json_path(obj, &c.json_path);
            let cell = match found.first() {
                None => Value::Null,
                Some(v) => cell_for(c.column.type_, v, now),
            };
            cells.push(cell);
        }
        cells
    }

    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        let (_, path) = self.selectable.iter().find(|(f, _)| f == field)?;
        Some(match json_path(obj, path).first() {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        })
    }
}

/// `cellForJSONValue`: a value of the column's type, or nothing.
fn cell_for(type_: &str, v: &Value, now: jiff::Timestamp) -> Value {
    match (type_, v) {
        ("integer", Value::Number(n)) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0)
                    .map(|f| json!(f as i64))
            })
            .unwrap_or(Value::Null),
        ("number", Value::Number(_)) | ("boolean", Value::Bool(_)) => v.clone(),
        ("date", Value::String(s)) => match s.parse::<jiff::Timestamp>() {
            Ok(t) => json!(super::human_duration(
                (now.as_second() - t.as_second()).max(0)
            )),
            Err(_) => Value::Null,
        },
        ("string", Value::String(_)) => v.clone(),
        ("string", other) => json!(other.to_string()),
        _ => Value::Null,
    }
}

/// The JSONPath subset printer columns and selectable fields use: `.a.b`, `.a[0]`, `.a[*]`,
/// `.a[?(@.type=="Ready")].status`, optionally wrapped in `{}`.
pub fn json_path(obj: &Value, path: &str) -> Vec<Value> {
    let p = path.trim();
    let p = p
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(p);
    let p = p.strip_prefix('$').unwrap_or(p);
    let mut current = vec![obj.clone()];
    let mut rest = p;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            rest = &r[end..];
            if key.is_empty() {
                continue;
            }
            current = current.iter().filter_map(|v| v.get(key).cloned()).collect();
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = find_close(r) else {
                return Vec::new();
            };
            let sel = &r[..end];
            rest = &r[end + 1..];
            current = select(current, sel);
        } else {
            return Vec::new();
        }
    }
    current
}

/// The index of the `]` closing a bracket expression (quotes and parentheses may hold `]`).
fn find_close(s: &str) -> Option<usize> {
    let (mut depth, mut quote) = (0i32, None::<char>);
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ']') if depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

fn select(current: Vec<Value>, sel: &str) -> Vec<Value> {
    let items = |v: &Value| -> Vec<Value> {
        match v {
            Value::Array(a) => a.clone(),
            Value::Object(m) => m.values().cloned().collect(),
            _ => Vec::new(),
        }
    };
    if sel == "*" {
        return current.iter().flat_map(items).collect();
    }
    if let Ok(i) = sel.parse::<i64>() {
        return current
            .iter()
            .filter_map(|v| {
                let a = v.as_array()?;
                let idx = if i < 0 { a.len() as i64 + i } else { i };
                a.get(usize::try_from(idx).ok()?).cloned()
            })
            .collect();
    }
    if let Some(key) = sel
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| sel.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
    {
        return current.iter().filter_map(|v| v.get(key).cloned()).collect();
    }
    if let Some(filter) = sel
        .strip_prefix("?(")
        .and_then(|s| s.strip_suffix(')'))
        .and_then(|s| s.trim().strip_prefix("@."))
    {
        let (field, want) = match filter.split_once("==") {
            Some((f, w)) => (f.trim(), Some(w.trim().trim_matches(['"', '\'']))),
            None => (filter.trim(), None),
        };
        return current
            .iter()
            .flat_map(items)
            .filter(|it| {
                let got = json_path(it, &format!(".{field}"));
                match (got.first(), want) {
                    (None, _) => false,
                    (Some(_), None) => true,
                    (Some(Value::String(s)), Some(w)) => s == w,
                    (Some(v), Some(w)) => serde_json::from_str::<Value>(w).ok().as_ref() == Some(v),
                }
            })
            .collect();
    }
    Vec::new()
}

/// Version priority as kube-aware sorting orders them: GA > beta > alpha > anything else, higher
/// numbers first (`v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > foo`).
pub fn version_priority_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn key(v: &str) -> (u8, u64, u64, String) {
        let parse = || -> Option<(u8, u64, u64)> {
            let rest = v.strip_prefix('v')?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let major: u64 = digits.parse().ok()?;
            let tail = &rest[digits.len()..];
            if tail.is_empty() {
                return Some((3, major, 0));
            }
            for (word, rank) in [("beta", 2u8), ("alpha", 1)] {
                if let Some(n) = tail.strip_prefix(word)
                    && let Ok(minor) = n.parse::<u64>()
                {
                    return Some((rank, major, minor));
                }
            }
            None
        };
        match parse() {
            Some((rank, major, minor)) => (rank, major, minor, String::new()),
            None => (0, 0, 0, v.to_string()),
        }
    }
    let (ka, kb) = (key(a), key(b));
    // Higher rank/numbers first; non-kube versions alphabetically.
    kb.0.cmp(&ka.0)
        .then(kb.1.cmp(&ka.1))
        .then(kb.2.cmp(&ka.2))
        .then(ka.3.cmp(&kb.3))
}

/// Rewrites `apiVersion` between a served version and the storage version (`conversion: None`).
struct ApiVersionRewrite {
    external: String,
    storage: String,
}

impl Conversion for ApiVersionRewrite {
    fn to_internal(&self, obj: Value) -> Result<Value, ApiError> {
        Ok(obj)
    }

    fn apply_config_to_storage(&self, mut obj: Value) -> Result<Value, ApiError> {
        if let Some(m) = obj.as_object_mut() {
            m.insert("apiVersion".into(), Value::String(self.storage.clone()));
        }
        Ok(obj)
    }

    fn to_external(&self, mut obj: Value) -> Value {
        if let Some(m) = obj.as_object_mut() {
            m.insert("apiVersion".into(), Value::String(self.external.clone()));
        }
        obj
    }
}

/// What is served for one CRD.
#[derive(Clone)]
pub(crate) struct CrdServing {
    pub group: String,
    pub plural: String,
    pub kind: String,
    pub storage: Arc<dyn Strategy>,
    /// Served versions, highest priority first, each with its schema (for OpenAPI).
    pub versions: Vec<(Served, Value)>,
    /// Marked for deletion: reads and deletes are served, creates refused.
    pub terminating: bool,
    /// The CRD's resourceVersion this entry was built from (watch and HTTP may race).
    revision: i64,
}

/// Every CRD the registry serves, by CRD name.
#[derive(Default)]
pub(crate) struct CustomKinds {
    by_crd: HashMap<String, CrdServing>,
    /// Deleted CRDs and the last revision seen: an older PUT arriving late is ignored.
    tombstones: HashMap<String, i64>,
    /// Bumped on every change (OpenAPI documents are rebuilt when it moves).
    pub generation: u64,
}

impl CustomKinds {
    pub fn lookup(&self, group: &str, plural: &str) -> Option<&CrdServing> {
        self.by_crd
            .values()
            .find(|c| c.group == group && c.plural == plural)
    }

    pub fn all(&self) -> impl Iterator<Item = &CrdServing> {
        let mut v: Vec<&CrdServing> = self.by_crd.values().collect();
        v.sort_by(|a, b| (&a.group, &a.plural).cmp(&(&b.group, &b.plural)));
        v.into_iter()
    }

    /// Applies one CRD state (a PUT seen at `revision`); a CRD that does not parse is unserved.
    pub fn put(&mut self, crd: &Value, revision: i64) {
        let name = crd
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if self.tombstones.get(&name).is_some_and(|t| *t >= revision)
            || self
                .by_crd
                .get(&name)
                .is_some_and(|c| c.revision > revision)
        {
            return;
        }
        self.tombstones.remove(&name);
        match serving_of(crd, revision) {
            Some(s) => {
                self.by_crd.insert(name, s);
            }
            None => {
                self.by_crd.remove(&name);
            }
        }
        self.generation += 1;
    }

    pub fn remove(&mut self, name: &str, revision: i64) {
        self.by_crd.remove(name);
        self.tombstones.insert(name.to_string(), revision);
        self.generation += 1;
    }
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The served versions of a CRD as strategies; None when it is not established.
fn serving_of(crd: &Value, revision: i64) -> Option<CrdServing> {
    let established = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type") == Some(&json!("Established"))
                    && c.get("status") == Some(&json!("True"))
            })
        });
    if !established {
        return None;
    }
    let spec = crd.get("spec")?;
    let group = spec.get("group")?.as_str()?.to_string();
    // Served under the accepted names (the names the naming controller approved).
    let names = crd
        .pointer("/status/acceptedNames")
        .filter(|n| n.get("plural").is_some())
        .or_else(|| spec.get("names"))?;
    let plural = names.get("plural")?.as_str()?.to_string();
    let kind = names.get("kind")?.as_str()?.to_string();
    let singular = names
        .get("singular")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| kind.to_ascii_lowercase());
    let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
    let versions = spec.get("versions")?.as_array()?;
    let storage_version = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))?
        .get("name")?
        .as_str()?
        .to_string();
    let storage_av = format!("{group}/{storage_version}");
    let build = |v: &Value| -> Option<CustomResource> {
        let version = v.get("name")?.as_str()?.to_string();
        let subresources = v.get("subresources");
        let has_status = subresources.and_then(|s| s.get("status")).is_some();
        let scale = subresources
            .and_then(|s| s.get("scale"))
            .map(|s| ScalePaths {
                spec_replicas: s
                    .get("specReplicasPath")
                    .and_then(Value::as_str)
                    .unwrap_or(".spec.replicas")
                    .to_string(),
                status_replicas: s
                    .get("statusReplicasPath")
                    .and_then(Value::as_str)
                    .unwrap_or(".status.replicas")
                    .to_string(),
                label_selector: s
                    .get("labelSelectorPath")
                    .and_then(Value::as_str)
                    .map(String::from),
            });
        let mut columns: Vec<PrinterColumn> = v
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .filter_map(|c| {
                        Some(PrinterColumn {
                            column: Column {
                                name: intern(c.get("name")?.as_str()?),
                                type_: intern(
                                    c.get("type").and_then(Value::as_str).unwrap_or("string"),
                                ),
                                format: intern(
                                    c.get("format").and_then(Value::as_str).unwrap_or(""),
                                ),
                                description: intern(
                                    c.get("description").and_then(Value::as_str).unwrap_or(""),
                                ),
                                priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0)
                                    as i32,
                            },
                            json_path: c.get("jsonPath")?.as_str()?.to_string(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        if v.get("additionalPrinterColumns").is_none() {
            let age = crate::kinds::typed::age_column();
            columns.push(PrinterColumn {
                column: Column {
                    type_: "date",
                    ..age
                },
                json_path: ".metadata.creationTimestamp".into(),
            });
        }
        let selectable = v
            .get("selectableFields")
            .and_then(Value::as_array)
            .map(|fs| {
                fs.iter()
                    .filter_map(|f| {
                        let p = f.get("jsonPath")?.as_str()?;
                        Some((p.trim_start_matches('.').to_string(), p.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(CustomResource {
            info: ResourceInfo {
                group: group.clone(),
                version,
                kind: kind.clone(),
                plural: plural.clone(),
                singular: singular.clone(),
                namespaced,
                short_names: string_list(names.get("shortNames")),
                categories: string_list(names.get("categories")),
                verbs: FULL_VERBS.iter().map(|s| s.to_string()).collect(),
                has_status,
                scale,
            },
            storage_api_version: storage_av.clone(),
            schema: v
                .pointer("/schema/openAPIV3Schema")
                .cloned()
                .unwrap_or_else(
                    || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
                ),
            columns,
            selectable,
        })
    };
    let storage_v = versions
        .iter()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(storage_version.as_str()))?;
    let storage: Arc<dyn Strategy> = Arc::new(build(storage_v)?);
    let mut served: Vec<(Served, Value)> = Vec::new();
    for v in versions {
        if v.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let cr = build(v)?;
        let schema = cr.schema.clone();
        let is_storage = cr.info.version == storage_version;
        let info = cr.info.clone();
        // Every version rewrites `apiVersion` on the way out, the storage version too: objects written
        // before a storage-version change keep their old `apiVersion` in the store.
        let conversion: Option<Arc<dyn Conversion>> = Some(Arc::new(ApiVersionRewrite {
            external: format!("{group}/{}", cr.info.version),
            storage: storage_av.clone(),
        }));
        let kind: Arc<dyn Strategy> = if is_storage {
            storage.clone()
        } else {
            Arc::new(cr)
        };
        served.push((
            Served {
                info,
                kind,
                storage: storage.clone(),
                conversion,
            },
            schema,
        ));
    }
    served.sort_by(|a, b| version_priority_cmp(&a.0.info.version, &b.0.info.version));
    Some(CrdServing {
        group,
        plural,
        kind,
        storage,
        versions: served,
        terminating: crd.pointer("/metadata/deletionTimestamp").is_some(),
        revision,
    })
}

impl Registry {
    /// Learns a CRD state right after a write (the store watch learns it too; the newer wins).
    pub fn observe_custom_resource_definition(&self, crd: &Value) {
        let rev = crd
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0);
        self.custom_write().put(crd, rev);
    }

    /// Forgets a CRD deleted by a write whose last state was `crd`.
    pub fn forget_custom_resource_definition(&self, crd: &Value) {
        let name = crd
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let rev = crd
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0);
        self.custom_write().remove(name, rev);
    }

    /// Reads every CRD from the store and starts the watch that keeps the served set current.
    pub(crate) async fn load_custom_resources(&self) -> Result<(), ApiError> {
        let Some(crd_kind) = self.kind(CRD_GROUP, CRD_PLURAL) else {
            return Ok(());
        };
        let page = self.list(&crd_kind, None, &ListOptions::default()).await?;
        {
            let mut c = self.custom_write();
            for crd in &page.items {
                let rev = crd
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<i64>().ok())
                    .unwrap_or(0);
                c.put(crd, rev);
            }
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            let prefix = self.resource_prefix(crd_kind.info(), None);
            tokio::spawn(watch_crds(
                Arc::downgrade(&self.custom),
                self.store.clone(),
                self.cluster_prefix().to_string(),
                prefix,
                page.resource_version,
            ));
        }
        Ok(())
    }

    /// DELETE of a CRD as upstream's CRD storage does it: the first delete adds the cleanup finalizer
    /// and the `Terminating` condition; the custom resources are then deleted in the background.
    pub async fn delete_custom_resource_definition(
        self: &Arc<Self>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<super::DeleteOutcome, ApiError> {
        let kind = self
            .kind(CRD_GROUP, CRD_PLURAL)
            .ok_or_else(|| ApiError::not_found(CRD_GROUP, CRD_PLURAL, name))?;
        let current = self.get(&kind, None, name).await?;
        if let Some(uid) = &opts.precondition_uid
            && current.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid.as_str())
        {
            return Err(ApiError::Conflict {
                group: CRD_GROUP.into(),
                resource: CRD_PLURAL.into(),
                name: name.into(),
                detail: format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    current
                        .pointer("/metadata/uid")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                ),
            });
        }
        let wopts = WriteOptions {
            dry_run: opts.dry_run,
            field_manager: MANAGER.into(),
            ..Default::default()
        };
        if current.pointer("/metadata/deletionTimestamp").is_none() && !opts.dry_run {
            self.update_with(&kind, None, name, "", &wopts, |cur| {
                let mut new = cur.clone();
                let fins = new
                    .pointer_mut("/metadata")
                    .and_then(Value::as_object_mut)
                    .map(|m| m.entry("finalizers").or_insert_with(|| json!([])));
                if let Some(Value::Array(f)) = fins
                    && !f.iter().any(|x| x == CLEANUP_FINALIZER)
                {
                    f.push(json!(CLEANUP_FINALIZER));
                }
                Ok(new)
            })
            .await?;
        }
        let out = self.delete(&kind, None, name, opts).await?;
        if let super::DeleteOutcome::Pending(obj) = &out {
            if !opts.dry_run {
                let _ = self
                    .update_with(&kind, None, name, "status", &wopts, |cur| {
                        let mut new = cur.clone();
                        set_condition(
                            &mut new,
                            "Terminating",
                            "True",
                            "InstanceDeletionPending",
                            "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
                        );
                        Ok(new)
                    })
                    .await;
                self.observe_custom_resource_definition(obj);
                spawn_cleanup(Arc::downgrade(self), name.to_string());
            }
        } else if let super::DeleteOutcome::Deleted(obj) = &out
            && !opts.dry_run
        {
            self.forget_custom_resource_definition(obj);
        }
        Ok(out)
    }

    /// Starts the cleanup of every CRD marked for deletion (after a restart). Idempotent.
    pub fn resume_custom_resource_cleanup(self: &Arc<Self>) {
        if self
            .cleanup_resumed
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        let names: Vec<String> = {
            let c = self.custom_read();
            c.by_crd
                .iter()
                .filter(|(_, s)| s.terminating)
                .map(|(n, _)| n.clone())
                .collect()
        };
        for n in names {
            spawn_cleanup(Arc::downgrade(self), n);
        }
    }
}

/// Server-side apply facts from a structural schema: `x-kubernetes-list-type: map` lists merge by
/// their `x-kubernetes-list-map-keys`, `set` lists are sets, `x-kubernetes-map-type: atomic` objects
/// are owned whole; everything else follows the untagged defaults (maps merge, lists are atomic).
/// The facts are `'static` data for `skiff_k8s_core::apply`; each distinct schema is built once.
pub fn apply_facts(schema: &Value) -> &'static patch_meta::Schema {
    static BUILT: Mutex<Vec<(String, &'static patch_meta::Schema)>> = Mutex::new(Vec::new());
    let key = schema.to_string();
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, s)) = built.iter().find(|(k, _)| *k == key) {
        return s;
    }
    let facts = facts_of(schema);
    built.push((key, facts));
    facts
}

fn facts_of(schema: &Value) -> &'static patch_meta::Schema {
    let mut fields = Vec::new();
    for (name, sub) in schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let (strategy, elem) = match sub.get("type").and_then(Value::as_str) {
            Some("array") => {
                let items = sub.get("items");
                let elem = items
                    .filter(|i| i.get("properties").is_some())
                    .map(facts_of);
                let strategy = match sub.get("x-kubernetes-list-type").and_then(Value::as_str) {
                    Some("map") => {
                        let keys: Vec<&'static str> = sub
                            .get("x-kubernetes-list-map-keys")
                            .and_then(Value::as_array)
                            .map(|a| a.iter().filter_map(Value::as_str).map(intern).collect())
                            .unwrap_or_default();
                        match keys.first() {
                            Some(k) => patch_meta::Strategy::MergeByKey {
                                key: k,
                                map_keys: Box::leak(keys.clone().into_boxed_slice()),
                            },
                            None => patch_meta::Strategy::Default,
                        }
                    }
                    Some("set") => patch_meta::Strategy::MergePrimitive,
                    _ => patch_meta::Strategy::Default,
                };
                (strategy, elem)
            }
            Some("object") => {
                let strategy =
                    if sub.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic") {
                        patch_meta::Strategy::AtomicStruct
                    } else {
                        patch_meta::Strategy::Default
                    };
                (strategy, sub.get("properties").map(|_| facts_of(sub)))
            }
            _ => continue,
        };
        if strategy == patch_meta::Strategy::Default && elem.is_none() {
            continue;
        }
        fields.push(patch_meta::Field {
            name: intern(name),
            strategy,
            elem,
        });
    }
    Box::leak(Box::new(patch_meta::Schema {
        name: "custom",
        fields: Box::leak(fields.into_boxed_slice()),
    }))
}

impl Registry {
    /// The server-side apply facts of a custom resource (None for built-in kinds).
    pub fn custom_apply_facts(
        &self,
        group: &str,
        plural: &str,
    ) -> Option<&'static patch_meta::Schema> {
        let c = self.custom_read();
        let crd = c.lookup(group, plural)?;
        let info = crd.storage.info();
        crd.versions
            .iter()
            .find(|(s, _)| s.info.version == info.version)
            .map(|(_, schema)| apply_facts(schema))
    }

    /// Server-side apply of a custom resource with the list semantics of its schema (the generic
    /// [`Registry::patch`] knows only the built-in kinds' facts): same steps, other facts.
    #[allow(
        clippy::too_many_arguments,
        reason = "mirrors the PATCH request's parameters"
    )]
    pub async fn apply_custom_resource(
        &self,
        kind: &Arc<dyn Strategy>,
        facts: &'static patch_meta::Schema,
        namespace: Option<&str>,
        name: &str,
        config: Value,
        subresource: &str,
        force: bool,
        opts: &WriteOptions,
    ) -> Result<super::Written, ApiError> {
        use super::meta::{meta_mut, meta_str};
        use super::patch::{reset_fields, with_manager};
        let info = kind.info();
        if opts.field_manager.is_empty() {
            return Err(ApiError::BadRequest(
                "PATCH, application/apply-patch+yaml requests must have a fieldManager parameter"
                    .into(),
            ));
        }
        if !config.is_object() {
            return Err(ApiError::BadRequest(
                "error decoding YAML: not an object".into(),
            ));
        }
        let pname = meta_str(&config, "name");
        if !pname.is_empty() && pname != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({pname}) does not match the name on the URL ({name})"
            )));
        }
        let apply_opts = WriteOptions {
            apply: true,
            ..opts.clone()
        };
        if self.get_kv(info, namespace, name).await?.is_none() && subresource.is_empty() {
            let resets = reset_fields(info, "", &config);
            let mut obj = with_manager(info, &opts.field_manager, "", resets, |who| {
                ssa::apply(None, &config, Some(facts), who, force)
            })?;
            meta_mut(&mut obj).insert("name".into(), name.into());
            return self.create(kind, namespace, obj, &apply_opts).await;
        }
        let storage_av = super::api_version(info);
        self.update_with(kind, namespace, name, subresource, &apply_opts, |cur| {
            // Stored before a storage-version change: the object is read as the storage version.
            let mut cur = cur.clone();
            if let Some(m) = cur.as_object_mut() {
                m.insert("apiVersion".into(), Value::String(storage_av.clone()));
            }
            let resets = reset_fields(info, subresource, &cur);
            let mut new = with_manager(info, &opts.field_manager, subresource, resets, |who| {
                ssa::apply(Some(&cur), &config, Some(facts), who, force)
            })?;
            let m = meta_mut(&mut new);
            m.insert("name".into(), name.into());
            m.remove("resourceVersion");
            Ok(new)
        })
        .await
    }
}

/// Sets (or replaces) one status condition of a CRD.
fn set_condition(crd: &mut Value, type_: &str, status: &str, reason: &str, message: &str) {
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let cond = json!({"type": type_, "status": status, "lastTransitionTime": now, "reason": reason, "message": message});
    let Some(obj) = crd.as_object_mut() else {
        return;
    };
    let status_obj = obj.entry("status").or_insert_with(|| json!({}));
    let Some(conds) = status_obj
        .as_object_mut()
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])))
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    match conds
        .iter_mut()
        .find(|c| c.get("type") == Some(&json!(type_)))
    {
        Some(c) => *c = cond,
        None => conds.push(cond),
    }
}

/// The finalizer controller for one CRD: deletes its custom resources through the registry until
/// none is left, then removes the finalizer (which completes the CRD's deletion).
fn spawn_cleanup(reg: Weak<Registry>, crd_name: String) {
    tokio::spawn(async move {
        loop {
            let Some(reg) = reg.upgrade() else { return };
            match cleanup_once(&reg, &crd_name).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => tracing::debug!(crd = %crd_name, error = %e, "CRD cleanup retry"),
            }
            drop(reg);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

/// One pass; true when the CRD is gone or released.
async fn cleanup_once(reg: &Arc<Registry>, crd_name: &str) -> Result<bool, ApiError> {
    let Some(crd_kind) = reg.kind(CRD_GROUP, CRD_PLURAL) else {
        return Ok(true);
    };
    let crd = match reg.get(&crd_kind, None, crd_name).await {
        Ok(c) => c,
        Err(ApiError::NotFound { .. }) => return Ok(true),
        Err(e) => return Err(e),
    };
    let has_finalizer = crd
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x == CLEANUP_FINALIZER));
    if crd.pointer("/metadata/deletionTimestamp").is_none() || !has_finalizer {
        return Ok(true);
    }
    let storage = reg
        .custom_read()
        .by_crd
        .get(crd_name)
        .map(|s| s.storage.clone());
    let mut remaining = 0usize;
    if let Some(kind) = storage {
        let page = reg.list(&kind, None, &ListOptions::default()).await?;
        remaining = page.items.len();
        for item in page.items {
            let ns = item
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(String::from);
            let name = item
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if item.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            match reg
                .delete(&kind, ns.as_deref(), &name, &DeleteOptions::default())
                .await
            {
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if remaining > 0 {
            // Re-list next pass: objects with finalizers stay until their controllers release them.
            remaining = reg
                .list(&kind, None, &ListOptions::default())
                .await?
                .items
                .len();
        }
    }
    if remaining > 0 {
        return Ok(false);
    }
    let wopts = WriteOptions {
        field_manager: MANAGER.into(),
        ..Default::default()
    };
    let _ = reg
        .update_with(&crd_kind, None, crd_name, "status", &wopts, |cur| {
            let mut new = cur.clone();
            set_condition(
                &mut new,
                "Terminating",
                "False",
                "InstanceDeletionCompleted",
                "removed all instances",
            );
            Ok(new)
        })
        .await;
    let released = reg
        .update_with(&crd_kind, None, crd_name, "", &wopts, |cur| {
            let mut new = cur.clone();
            if let Some(Value::Array(f)) = new.pointer_mut("/metadata/finalizers") {
                f.retain(|x| x != CLEANUP_FINALIZER);
            }
            Ok(new)
        })
        .await;
    match released {
        Ok(_) | Err(ApiError::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    if let Ok(last) = reg.get(&crd_kind, None, crd_name).await {
        reg.observe_custom_resource_definition(&last);
    }
    Ok(true)
}

/// Keeps [`CustomKinds`] in step with the CRDs in the store. On a CRD deleted without the cleanup
/// finalizer (an in-process delete), whatever custom resources remain are removed from the store so
/// a later CRD of the same name does not resurrect them.
async fn watch_crds(
    custom: Weak<RwLock<CustomKinds>>,
    store: Arc<dyn skiff_store::Store>,
    cluster_prefix: String,
    crd_prefix: String,
    mut from: i64,
) {
    loop {
        let Ok(mut stream) = store.watch(&crd_prefix, from).await else {
            return;
        };
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            let ev = tokio::select! {
                ev = stream.next() => ev,
                _ = tick.tick() => {
                    if custom.strong_count() == 0 { return; }
                    continue;
                }
            };
            let Some(custom) = custom.upgrade() else {
                return;
            };
            match ev {
                None => return,
                Some(Err(_)) => {
                    // Cut off or compacted: relist from the current revision.
                    let Ok(page) = store
                        .list(&crd_prefix, skiff_store::ListOptions::default())
                        .await
                    else {
                        return;
                    };
                    let mut c = custom.write().unwrap_or_else(|e| e.into_inner());
                    for kv in &page.items {
                        if let Ok(v) = decode(kv) {
                            c.put(&v, kv.mod_revision);
                        }
                    }
                    from = page.revision;
                    break;
                }
                Some(Ok(ev)) => match ev.kind {
                    EventKind::Put => {
                        if let Ok(v) = decode(&ev.kv) {
                            custom
                                .write()
                                .unwrap_or_else(|e| e.into_inner())
                                .put(&v, ev.kv.mod_revision);
                        }
                    }
                    EventKind::Delete => {
                        let Some(prev) = ev.prev.as_ref().and_then(|p| decode(p).ok()) else {
                            continue;
                        };
                        let name = prev
                            .pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string();
                        custom
                            .write()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&name, ev.kv.mod_revision);
                        purge_orphans(&*store, &cluster_prefix, &prev, &ev.kv.key).await;
                    }
                },
            }
        }
    }
}

/// Removes the stored custom resources of a deleted CRD unless a CRD of that name exists again.
async fn purge_orphans(
    store: &dyn skiff_store::Store,
    cluster_prefix: &str,
    crd: &Value,
    crd_key: &str,
) {
    if matches!(store.get(crd_key).await, Ok(Some(_))) {
        return;
    }
    let (Some(group), Some(plural)) = (
        crd.pointer("/spec/group").and_then(Value::as_str),
        crd.pointer("/spec/names/plural").and_then(Value::as_str),
    ) else {
        return;
    };
    let prefix = format!("{cluster_prefix}{group}/{plural}/");
    loop {
        let Ok(page) = store
            .list(
                &prefix,
                skiff_store::ListOptions {
                    limit: 500,
                    ..Default::default()
                },
            )
            .await
        else {
            return;
        };
        if page.items.is_empty() {
            return;
        }
        let ops: Vec<Op> = page
            .items
            .iter()
            .map(|kv| Op::Delete {
                key: kv.key.clone(),
                precondition: Precondition::ModRevision(kv.mod_revision),
            })
            .collect();
        if store.txn(ops).await.is_err() && !page.more {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({"metadata": {"name": "certificates.certs.example.com", "resourceVersion": "7"},
            "spec": {"group": "certs.example.com", "scope": "Namespaced",
                "names": {"plural": "certificates", "singular": "certificate", "kind": "Certificate", "shortNames": ["cert"], "categories": ["all"]},
                "versions": [
                    {"name": "v1alpha1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
                    {"name": "v1", "served": true, "storage": true,
                     "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                     "additionalPrinterColumns": [
                        {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                        {"name": "Secret", "type": "string", "jsonPath": ".spec.secretName"},
                        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas", "priority": 1},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
                     "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {"secretName": {"type": "string"}, "replicas": {"type": "integer", "default": 1}}},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]},
            "status": {"conditions": [{"type": "Established", "status": "True"}]}})
    }

    #[test]
    fn serving_follows_the_crd() {
        let s = serving_of(&crd(), 7).expect("established");
        assert_eq!(s.storage.info().version, "v1");
        let versions: Vec<&str> = s
            .versions
            .iter()
            .map(|v| v.0.info.version.as_str())
            .collect();
        assert_eq!(versions, ["v1", "v1alpha1"]);
        assert!(Arc::ptr_eq(&s.versions[0].0.kind, &s.storage));
        let conv = s.versions[1].0.conversion.as_ref().expect("rewrite");
        assert_eq!(
            conv.to_external(json!({"apiVersion": "certs.example.com/v1"}))["apiVersion"],
            "certs.example.com/v1alpha1"
        );
        let info = s.storage.info();
        assert!(info.has_status && info.scale.is_some());
        assert_eq!(info.short_names, ["cert"]);
        let mut unestablished = crd();
        unestablished["status"] = json!({});
        assert!(serving_of(&unestablished, 1).is_none());
    }

    #[test]
    fn canonicalize_prunes_defaults_and_stores_the_storage_version() {
        let s = serving_of(&crd(), 7).unwrap();
        let alpha = &s.versions[1].0.kind;
        let (obj, dropped) = alpha
            .canonicalize(
                json!({"apiVersion": "certs.example.com/v1alpha1", "kind": "Certificate",
                "metadata": {"name": "a"}, "spec": {"x": 1}}),
            )
            .unwrap();
        assert_eq!(obj["apiVersion"], "certs.example.com/v1");
        assert!(dropped.is_empty());
        let (obj, dropped) = s
            .storage
            .canonicalize(json!({"metadata": {"name": "a"}, "spec": {"secretName": "s", "x": 1}}))
            .unwrap();
        assert_eq!(dropped, ["spec.x"]);
        assert_eq!(obj["spec"]["replicas"], 1);
    }

    #[test]
    fn rows_follow_printer_columns() {
        let s = serving_of(&crd(), 7).unwrap();
        let cols: Vec<&str> = s.storage.columns().iter().map(|c| c.name).collect();
        assert_eq!(cols, ["Name", "Ready", "Secret", "Replicas", "Age"]);
        let now = jiff::Timestamp::now();
        let created = (now - jiff::SignedDuration::from_secs(90))
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let obj = json!({"metadata": {"name": "web", "creationTimestamp": created},
            "spec": {"secretName": "web-tls", "replicas": 2},
            "status": {"conditions": [{"type": "Issuing", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        let row = s.storage.row(&obj, now);
        assert_eq!(
            row,
            vec![
                json!("web"),
                json!("True"),
                json!("web-tls"),
                json!(2),
                json!("90s")
            ]
        );
        // A version without printer columns shows upstream's default Name and Age.
        let beta_cols: Vec<&str> = s.versions[1]
            .0
            .kind
            .columns()
            .iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(beta_cols, ["Name", "Age"]);
        assert_eq!(s.versions[1].0.kind.row(&obj, now)[1], json!("90s"));
        let bare = json!({"metadata": {"name": "x"}});
        assert_eq!(s.storage.row(&bare, now)[1], Value::Null);
    }

    #[test]
    fn json_path_subset() {
        let o = json!({"a": {"b": [{"n": 1, "t": "x"}, {"n": 2, "t": "y"}]}});
        assert_eq!(json_path(&o, ".a.b[1].n"), vec![json!(2)]);
        assert_eq!(json_path(&o, "{.a.b[*].n}"), vec![json!(1), json!(2)]);
        assert_eq!(json_path(&o, ".a.b[?(@.t=='y')].n"), vec![json!(2)]);
        assert!(json_path(&o, ".a.c").is_empty());
    }

    #[test]
    fn version_priority() {
        let mut v = vec![
            "v1alpha1", "v1", "foo", "v2beta1", "v2", "v1beta2", "v1beta1",
        ];
        v.sort_by(|a, b| version_priority_cmp(a, b));
        assert_eq!(
            v,
            [
                "v2", "v1", "v2beta1", "v1beta2", "v1beta1", "v1alpha1", "foo"
            ]
        );
    }

    #[test]
    fn older_puts_do_not_undo_newer_state() {
        let mut k = CustomKinds::default();
        k.put(&crd(), 7);
        k.remove("certificates.certs.example.com", 9);
        k.put(&crd(), 7);
        assert!(k.lookup("certs.example.com", "certificates").is_none());
        k.put(&crd(), 10);
        assert!(k.lookup("certs.example.com", "certificates").is_some());
    }

    #[test]
    fn apply_facts_follow_list_and_map_types() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port", "protocol"],
                "items": {"type": "object", "properties": {"port": {"type": "integer"}}}},
            "hosts": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "selector": {"type": "object", "x-kubernetes-map-type": "atomic"},
            "plain": {"type": "array", "items": {"type": "string"}}}}}});
        let facts = apply_facts(&schema);
        assert!(std::ptr::eq(facts, apply_facts(&schema)), "built once");
        let (_, spec) = facts.field("spec");
        let spec = spec.expect("spec has facts");
        assert_eq!(
            spec.field("ports").0,
            patch_meta::Strategy::MergeByKey {
                key: "port",
                map_keys: &["port", "protocol"]
            }
        );
        assert_eq!(spec.field("hosts").0, patch_meta::Strategy::MergePrimitive);
        assert_eq!(spec.field("selector").0, patch_meta::Strategy::AtomicStruct);
        assert_eq!(spec.field("plain").0, patch_meta::Strategy::Default);
    }
}
