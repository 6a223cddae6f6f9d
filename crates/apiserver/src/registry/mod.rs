//! The generic registry: CRUD, list, watch, patch, apply, dry-run, finalizers and cascading delete,
//! implemented once over the [`strategy::Strategy`] of each kind (kube-apiserver `registry/generic`).
//!
//! Objects live in the store as JSON without `metadata.resourceVersion`: the store's `mod_revision`
//! is the resourceVersion and is put back on every read, as etcd3's versioner does. Keys are
//! `/k8s/<cluster>/<group or "core">/<plural>/<namespace>/<name>` (cluster-scoped: no namespace).
//!
//! Order of a write, fixed here once: decode → canonicalize (unknown fields) → metadata rules →
//! strategy prepare → admission → validation → store transaction (guarded by revision).

pub mod garbage_collector;
pub mod hooks;
mod list;
mod meta;
pub mod namespace_lifecycle;
mod patch;
mod scale;
pub mod service_allocator;
pub mod strategy;
mod watch;
mod write;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use skiff_k8s_core::status::ApiError;
use skiff_store::{KeyValue, Store, StoreError};

pub use list::{ListOptions, ListPage};
pub use meta::manager_from_user_agent;
pub use scale::scale_of;
pub use skiff_k8s_core::patch::PatchType;
pub use watch::{WatchEventOut, WatchOptions, WatchStream};
pub use write::{DeleteOptions, DeleteOutcome, FieldValidation, WriteOptions, Written};

use strategy::{ResourceInfo, Strategy};

/// The namespaces every cluster has from the start; they cannot be deleted.
pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// The registry of one cluster: every kind's strategy over one store prefix.
pub struct Registry {
    store: Arc<dyn Store>,
    prefix: String,
    kinds: Vec<Arc<dyn Strategy>>,
    by_resource: HashMap<(String, String), usize>,
    services: service_allocator::ServiceAllocator,
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
            by_resource.insert((info.group.clone(), info.plural.clone()), i);
        }
        Ok(Self {
            store,
            prefix: format!("/k8s/{cluster_id}/"),
            kinds,
            by_resource,
            services: service_allocator::ServiceAllocator::new(service_cidr, node_ports)?,
        })
    }

    /// Reads what allocators need from the store (Services' cluster IPs and node ports).
    pub async fn load(&self) -> Result<(), ApiError> {
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

    /// Every kind, in discovery order.
    pub fn kinds(&self) -> &[Arc<dyn Strategy>] {
        &self.kinds
    }

    /// The strategy serving `group`/`plural` (`""`/`configmaps`).
    pub fn kind(&self, group: &str, plural: &str) -> Option<Arc<dyn Strategy>> {
        self.by_resource
            .get(&(group.to_string(), plural.to_string()))
            .map(|&i| self.kinds[i].clone())
    }

    /// The strategy for an `apiVersion` + `kind` pair (owner references, `kubectl apply` bodies).
    pub fn kind_of(&self, api_version: &str, kind: &str) -> Option<Arc<dyn Strategy>> {
        let (group, _) = split_api_version(api_version);
        self.kinds
            .iter()
            .find(|k| k.info().kind == kind && k.info().group == group)
            .cloned()
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
