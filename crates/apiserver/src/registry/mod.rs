//! The generic registry: CRUD, list, watch, patch, apply, dry-run, finalizers and cascading delete,
//! implemented once over the [`strategy::Strategy`] of each kind (kube-apiserver `registry/generic`).
//!
//! Objects live in the store as JSON without `metadata.resourceVersion`: the store's `mod_revision`
//! is the resourceVersion and is put back on every read, as etcd3's versioner does. Keys are
//! `/k8s/<cluster>/<group or "core">/<plural>/<namespace>/<name>` (cluster-scoped: no namespace).
//!
//! Order of a write, fixed here once: decode → canonicalize (unknown fields) → metadata rules →
//! strategy prepare → admission → validation → store transaction (guarded by revision).

pub mod custom_resources;
pub(crate) mod custom_resources_schema;
pub mod eviction;
pub mod garbage_collector;
pub mod hooks;
mod list;
pub(crate) mod meta;
pub mod namespace_lifecycle;
pub(crate) mod patch;
pub mod pod_binding;
pub mod pod_exec;
pub mod pod_log;
mod scale;
pub mod service_allocator;
pub mod strategy;
mod watch;
mod write;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;
use skiff_k8s_core::status::ApiError;
use skiff_store::{KeyValue, Store, StoreError};

pub use list::{ListOptions, ListPage, ListStream};
pub use meta::manager_from_user_agent;
pub use scale::scale_of;
pub use skiff_k8s_core::patch::PatchType;
pub use watch::{SharedObject, SharedWatchEvent, WatchEventOut, WatchOptions, WatchStream};
pub use write::{DeleteOptions, DeleteOutcome, FieldValidation, WriteOptions, Written};

use strategy::{ResourceInfo, Strategy};

/// The namespaces every cluster has from the start; they cannot be deleted.
pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// How objects of one served version relate to the stored form (kube-apiserver's version
/// conversion): the HTTP layer converts request bodies in and every object it answers with out.
pub trait Conversion: Send + Sync {
    /// A whole request body of this version → what [`Served::kind`] accepts.
    fn to_internal(&self, obj: Value) -> Result<Value, ApiError>;
    /// A (partial) server-side apply configuration of this version → the storage version's.
    fn apply_config_to_storage(&self, obj: Value) -> Result<Value, ApiError>;
    /// A stored object → this version.
    fn to_external(&self, obj: Value) -> Value;
}

/// One served group-version-resource.
#[derive(Clone)]
pub struct Served {
    /// What discovery and OpenAPI show for this version.
    pub info: ResourceInfo,
    /// The strategy creates and updates of this version go through (after `to_internal`); its
    /// columns are this version's Table columns.
    pub kind: Arc<dyn Strategy>,
    /// The strategy of the stored form: reads, deletes, patches and apply.
    pub storage: Arc<dyn Strategy>,
    /// None when this version is the stored form.
    pub conversion: Option<Arc<dyn Conversion>>,
}

impl Served {
    /// A kind served only in its own (storage) version.
    pub fn direct(kind: Arc<dyn Strategy>) -> Self {
        Self {
            info: kind.info().clone(),
            kind: kind.clone(),
            storage: kind,
            conversion: None,
        }
    }

    /// A stored object as this version shows it.
    pub fn external(&self, obj: Value) -> Value {
        match &self.conversion {
            Some(c) => c.to_external(obj),
            None => obj,
        }
    }
}

/// The registry of one cluster: every kind's strategy over one store prefix.
pub struct Registry {
    store: Arc<dyn Store>,
    prefix: String,
    kinds: Vec<Arc<dyn Strategy>>,
    by_resource: HashMap<(String, String), usize>,
    /// Built-in kinds served in more than one version (autoscaling/v1 HPA): the extra versions.
    alternate_versions: Vec<Served>,
    /// Custom resources of established CRDs; shared with the CRD watch task.
    custom: Arc<RwLock<custom_resources::CustomKinds>>,
    cleanup_resumed: AtomicBool,
    /// OpenAPI documents with the custom resources, for the CRD generation they were built at.
    openapi: Mutex<Option<(u64, Arc<crate::openapi::custom_resources::CustomDocuments>)>>,
    services: service_allocator::ServiceAllocator,
    /// Mutating admission beyond the built-in plugins (where upstream calls mutating webhooks):
    /// the EKS pod identity webhook.
    external_mutators: Vec<Arc<dyn crate::admission::ExternalMutator>>,
}

impl Registry {
    /// A registry over `/k8s/<cluster_id>/`. `service_cidr` and `node_ports` feed the Service allocator,
    /// which is loaded from the store by [`Registry::load`].
    pub fn new(
        store: Arc<dyn Store>,
        cluster_id: &str,
        kinds: Vec<Arc<dyn Strategy>>,
        service_cidr: &str,
        node_ports: std::ops::RangeInclusive<u16>,
    ) -> Result<Self, String> {
        let mut by_resource = HashMap::new();
        for (i, k) in kinds.iter().enumerate() {
            let info = k.info();
            by_resource
                .entry((info.group.clone(), info.plural.clone()))
                .or_insert(i);
        }
        let alternate_versions = crate::kinds::alternate_versions(&kinds);
        Ok(Self {
            store,
            prefix: format!("/k8s/{cluster_id}/"),
            kinds,
            by_resource,
            alternate_versions,
            custom: Arc::default(),
            cleanup_resumed: AtomicBool::new(false),
            openapi: Mutex::new(None),
            services: service_allocator::ServiceAllocator::new(service_cidr, node_ports)?,
            external_mutators: Vec::new(),
        })
    }

    /// Adds mutating admission that runs after the built-in plugins, in the given order.
    pub fn with_external_mutators(
        mut self,
        mutators: Vec<Arc<dyn crate::admission::ExternalMutator>>,
    ) -> Self {
        self.external_mutators = mutators;
        self
    }

    /// The mutators added by [`Registry::with_external_mutators`].
    pub fn external_mutators(&self) -> &[Arc<dyn crate::admission::ExternalMutator>] {
        &self.external_mutators
    }

    /// Reads what allocators need from the store (Services' cluster IPs and node ports) and the
    /// CustomResourceDefinitions to serve (a watch keeps them current from then on).
    pub async fn load(&self) -> Result<(), ApiError> {
        self.load_custom_resources().await?;
        if let Some(svc) = self.kind("", "services") {
            let page = self.list(&svc, None, &ListOptions::default()).await?;
            for obj in &page.items {
                self.services.observe(obj);
            }
        }
        Ok(())
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Every resource once (built-in kinds, then custom resources), as the strategy of its stored
    /// form, in discovery order.
    pub fn kinds(&self) -> Vec<Arc<dyn Strategy>> {
        let mut out = self.kinds.clone();
        out.extend(self.custom_read().all().map(|c| c.storage.clone()));
        out
    }

    /// The strategy of the stored form of `group`/`plural` (`""`/`configmaps`), custom resources
    /// included.
    pub fn kind(&self, group: &str, plural: &str) -> Option<Arc<dyn Strategy>> {
        if let Some(&i) = self
            .by_resource
            .get(&(group.to_string(), plural.to_string()))
        {
            return Some(self.kinds[i].clone());
        }
        self.custom_read()
            .lookup(group, plural)
            .map(|c| c.storage.clone())
    }

    /// The strategy for an `apiVersion` + `kind` pair (owner references, `kubectl apply` bodies).
    pub fn kind_of(&self, api_version: &str, kind: &str) -> Option<Arc<dyn Strategy>> {
        let (group, _) = split_api_version(api_version);
        if let Some(k) = self
            .kinds
            .iter()
            .find(|k| k.info().kind == kind && k.info().group == group)
        {
            return Some(k.clone());
        }
        self.custom_read()
            .all()
            .find(|c| c.kind == kind && c.group == group)
            .map(|c| c.storage.clone())
    }

    /// `group`/`version`/`plural` as served over HTTP, with its conversion from the stored form.
    pub fn served(&self, group: &str, version: &str, plural: &str) -> Option<Served> {
        if let Some(&i) = self
            .by_resource
            .get(&(group.to_string(), plural.to_string()))
        {
            let k = &self.kinds[i];
            if k.info().version == version {
                return Some(Served::direct(k.clone()));
            }
            return self
                .alternate_versions
                .iter()
                .find(|s| {
                    s.info.group == group && s.info.plural == plural && s.info.version == version
                })
                .cloned();
        }
        let custom = self.custom_read();
        let c = custom.lookup(group, plural)?;
        c.versions
            .iter()
            .find(|(s, _)| s.info.version == version)
            .map(|(s, _)| s.clone())
    }

    /// Every served group-version-resource: built-in kinds (preferred version first), then custom
    /// resources (highest version priority first).
    pub fn served_versions(&self) -> Vec<Served> {
        let mut out: Vec<Served> = Vec::new();
        for k in &self.kinds {
            out.push(Served::direct(k.clone()));
            let info = k.info();
            out.extend(
                self.alternate_versions
                    .iter()
                    .filter(|s| s.info.group == info.group && s.info.plural == info.plural)
                    .cloned(),
            );
        }
        for c in self.custom_read().all() {
            out.extend(c.versions.iter().map(|(s, _)| s.clone()));
        }
        out
    }

    /// The served custom resource versions with their `openAPIV3Schema`s, and a counter that moves
    /// whenever they change (the OpenAPI documents are rebuilt then).
    pub fn custom_schemas(&self) -> (u64, Vec<(ResourceInfo, Value)>) {
        let c = self.custom_read();
        let list = c
            .all()
            .flat_map(|crd| {
                crd.versions
                    .iter()
                    .map(|(s, schema)| (s.info.clone(), schema.clone()))
            })
            .collect();
        (c.generation, list)
    }

    /// True when `group`/`plural` is a custom resource whose CRD is being deleted (creates are
    /// refused then, as upstream does).
    pub fn custom_resource_terminating(&self, group: &str, plural: &str) -> bool {
        self.custom_read()
            .lookup(group, plural)
            .is_some_and(|c| c.terminating)
    }

    /// The OpenAPI documents including the served custom resources; None while no CRD is served
    /// (the built-in documents are then the whole answer).
    pub fn custom_openapi(&self) -> Option<Arc<crate::openapi::custom_resources::CustomDocuments>> {
        let (generation, schemas) = self.custom_schemas();
        if schemas.is_empty() {
            return None;
        }
        let mut cache = self.openapi.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((g, docs)) = cache.as_ref()
            && *g == generation
        {
            return Some(docs.clone());
        }
        let docs = Arc::new(crate::openapi::custom_resources::build(&schemas));
        *cache = Some((generation, docs.clone()));
        Some(docs)
    }

    fn custom_read(&self) -> RwLockReadGuard<'_, custom_resources::CustomKinds> {
        self.custom.read().unwrap_or_else(|e| e.into_inner())
    }

    fn custom_write(&self) -> RwLockWriteGuard<'_, custom_resources::CustomKinds> {
        self.custom.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn services(&self) -> &service_allocator::ServiceAllocator {
        &self.services
    }

    /// Prefix of every key of this cluster.
    pub fn cluster_prefix(&self) -> &str {
        &self.prefix
    }

    /// Prefix of a resource's keys, narrowed to one namespace when given.
    pub fn resource_prefix(&self, info: &ResourceInfo, namespace: Option<&str>) -> String {
        let group = if info.group.is_empty() {
            "core"
        } else {
            &info.group
        };
        match namespace {
            Some(ns) if info.namespaced && !ns.is_empty() => {
                format!("{}{group}/{}/{ns}/", self.prefix, info.plural)
            }
            _ => format!("{}{group}/{}/", self.prefix, info.plural),
        }
    }

    /// The store key of one object.
    pub fn key(&self, info: &ResourceInfo, namespace: Option<&str>, name: &str) -> String {
        let mut k = self.resource_prefix(info, namespace);
        k.push_str(name);
        k
    }

    /// Reads one object, resourceVersion filled in.
    pub async fn get(
        &self,
        kind: &Arc<dyn Strategy>,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let info = kind.info();
        let kv = self
            .store
            .get(&self.key(info, namespace, name))
            .await
            .map_err(store_error)?;
        match kv {
            Some(kv) => decode(&kv),
            None => Err(ApiError::not_found(&info.group, &info.plural, name)),
        }
    }

    pub(crate) async fn get_kv(
        &self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<KeyValue>, ApiError> {
        self.store
            .get(&self.key(info, namespace, name))
            .await
            .map_err(store_error)
    }
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (`""`, `v1`).
pub fn split_api_version(av: &str) -> (&str, &str) {
    match av.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", av),
    }
}

/// The `apiVersion` string of a resource.
pub fn api_version(info: &ResourceInfo) -> String {
    if info.group.is_empty() {
        info.version.clone()
    } else {
        format!("{}/{}", info.group, info.version)
    }
}

/// Stored bytes → object with `metadata.resourceVersion` = the key's `mod_revision`.
pub(crate) fn decode(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut v: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::InternalError(format!("decoding {}: {e}", kv.key)))?;
    set_resource_version(&mut v, kv.mod_revision);
    Ok(v)
}

pub(crate) fn set_resource_version(v: &mut Value, rev: i64) {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rev.to_string()));
    }
}

/// Store failures that are not precondition failures (those the caller words itself).
pub(crate) fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Compacted {
            requested,
            compacted,
        } => ApiError::too_old_resource_version(requested.max(0) as u64, compacted.max(0) as u64),
        StoreError::FutureRevision { requested, .. } => ApiError::Timeout {
            message: format!("Too large resource version: {requested}"),
            retry_after_seconds: 1,
        },
        StoreError::Unavailable(m) => ApiError::ServiceUnavailable(m),
        other => ApiError::InternalError(other.to_string()),
    }
}

/// Human age as `kubectl get` prints it (`5s`, `3m12s`, `4h`, `2d3h`, `400d`).
pub fn age(obj: &serde_json::Value, now: jiff::Timestamp) -> String {
    let Some(created) = obj
        .pointer("/metadata/creationTimestamp")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
    else {
        return "<unknown>".to_string();
    };
    let secs = (now.as_second() - created.as_second()).max(0);
    human_duration(secs)
}

/// apimachinery `duration.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 60 * 2 {
        format!("{secs}s")
    } else if m < 10 {
        let s = secs % 60;
        if s == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{s}s")
        }
    } else if m < 60 * 3 {
        format!("{m}m")
    } else if h < 8 {
        let mm = m % 60;
        if mm == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{mm}m")
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        let hh = h % 24;
        if hh == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{hh}h")
        }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else if h < 24 * 365 * 8 {
        let y = d / 365;
        let dd = d % 365;
        if dd == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{dd}d")
        }
    } else {
        format!("{}y", d / 365)
    }
}
