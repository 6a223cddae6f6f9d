//! The in-process Kubernetes client that controllers, the scheduler and node agents write through.
//!
//! Design (style.md §2, "controllers write through the API rules, not around them"): the API
//! server's generic registry implements [`ApiClient`], so every write from inside Skiff runs the
//! same strategies, admission, resourceVersion checks and managedFields tracking as a kubectl
//! request, without an HTTP hop. Informer caches are fed by [`ApiClient::watch`]. Unit tests
//! implement the trait with a recording fake (practice 8).
//!
//! Everything is `serde_json::Value` in the wire shape (`apiVersion`, `kind`, `metadata`, …) so that
//! the client and the HTTP API cannot drift; errors are the same [`ApiError`]s HTTP clients see.

use futures::stream::BoxStream;
use serde_json::Value;

use crate::patch::PatchType;
use crate::status::ApiError;

/// Which collection a call addresses: group/version/resource plus namespace (`None` for
/// cluster-scoped resources, or to list a namespaced resource across all namespaces).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[doc(alias = "GroupVersionResource")]
pub struct ResourceRef {
    /// API group, `""` for the core group.
    pub group: String,
    pub version: String,
    /// Plural resource name (`deployments`).
    pub resource: String,
    pub namespace: Option<String>,
}

impl ResourceRef {
    pub fn new(group: &str, version: &str, resource: &str) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            resource: resource.into(),
            namespace: None,
        }
    }
    /// The same resource in one namespace.
    pub fn in_namespace(mut self, ns: &str) -> Self {
        self.namespace = Some(ns.into());
        self
    }
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// `resourceVersionMatch` for list calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceVersionMatch {
    /// Any version not older than the given one (the default with a non-zero `resourceVersion`).
    NotOlderThan,
    /// Exactly the given version.
    Exact,
}

/// Query of a list call (`metav1.ListOptions`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// String form, parsed with [`crate::selector::Selector::parse`].
    pub label_selector: Option<String>,
    /// String form, parsed with [`crate::selector::FieldSelector::parse`].
    pub field_selector: Option<String>,
    /// `None` or `""`: most recent (quorum read); `"0"`: any cached version.
    pub resource_version: Option<String>,
    pub resource_version_match: Option<ResourceVersionMatch>,
    /// Page size; `None` means everything.
    pub limit: Option<u64>,
    #[doc(alias = "continue")]
    pub continue_token: Option<String>,
}

/// A list answer: the items and the collection's resourceVersion to start a watch from.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectList {
    pub resource_version: String,
    /// Set when `limit` cut the list short.
    pub continue_token: Option<String>,
    /// For paged lists, the number of items left (`remainingItemCount`), when known.
    pub remaining_item_count: Option<u64>,
    pub items: Vec<Value>,
}

/// Options of create/update (`metav1.CreateOptions` / `UpdateOptions`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Recorded in `managedFields`; controllers pass their upstream name (`deployment-controller`).
    pub field_manager: Option<String>,
    /// `dryRun=All`: run every rule, store nothing.
    pub dry_run: bool,
}

/// Options of a patch (`metav1.PatchOptions`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PatchOptions {
    /// Required for [`PatchType::Apply`].
    pub field_manager: Option<String>,
    /// Server-side apply only: take ownership of conflicting fields.
    pub force: bool,
    pub dry_run: bool,
    /// `status`, `scale`, … when patching a subresource.
    pub subresource: Option<String>,
}

/// What happens to dependents on delete (`metav1.DeletionPropagation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropagationPolicy {
    Orphan,
    Background,
    Foreground,
}

/// Options of a delete (`metav1.DeleteOptions`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<PropagationPolicy>,
    /// Precondition: delete only if the object still has this UID.
    pub precondition_uid: Option<String>,
    /// Precondition: delete only at this resourceVersion.
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
}

/// The outcome of a delete: gone now, or marked with `deletionTimestamp` while finalizers or a
/// grace period run (the HTTP API answers 200 with the object in both cases, 202 for the latter
/// with `propagationPolicy=Foreground`).
#[derive(Clone, Debug, PartialEq)]
pub enum DeleteOutcome {
    Deleted(Value),
    Pending(Value),
}

/// Query of a watch (`metav1.ListOptions` with `watch=true`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchOptions {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    /// Start after this version (usually the list's); `None` starts "now". A compacted version
    /// yields an [`WatchEvent::Error`] carrying a 410 `Expired`.
    pub resource_version: Option<String>,
    /// Ask for periodic [`WatchEvent::Bookmark`]s.
    pub allow_bookmarks: bool,
    /// `sendInitialEvents=true`: synthetic `Added` events for the current state, then a bookmark
    /// annotated `k8s.io/initial-events-end`.
    pub send_initial_events: bool,
}

/// One watch event (`metav1.WatchEvent`), the object in wire shape.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent {
    Added(Value),
    Modified(Value),
    /// The object's last state.
    Deleted(Value),
    /// An object carrying only `metadata.resourceVersion` (and annotations).
    Bookmark(Value),
    /// The stream ends after this (410 `Expired` when the start version is gone).
    Error(ApiError),
}

/// A stream of watch events; it ends when the server closes the watch.
pub type WatchStream = BoxStream<'static, WatchEvent>;

/// The API as seen from inside Skiff. All methods act as the identity the implementation was
/// built for (controllers run as `system:kube-controller-manager`, nodes as `system:node:<name>`),
/// so RBAC and admission apply.
#[async_trait::async_trait]
pub trait ApiClient: Send + Sync {
    /// `GET …/{name}`; 404 [`ApiError::NotFound`] when absent.
    async fn get(&self, r: &ResourceRef, name: &str) -> Result<Value, ApiError>;

    /// `GET` collection, filtered by label/field selectors.
    async fn list(&self, r: &ResourceRef, opts: &ListOptions) -> Result<ObjectList, ApiError>;

    /// `POST`; `metadata.generateName` is honoured. 409 `AlreadyExists` on a name clash.
    async fn create(
        &self,
        r: &ResourceRef,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError>;

    /// `PUT` the main resource (status changes are ignored by kinds with a status subresource).
    /// A stale `metadata.resourceVersion` fails with 409 [`ApiError::optimistic_lock`].
    async fn update(
        &self,
        r: &ResourceRef,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError>;

    /// `PUT …/status`: only `status` changes are kept.
    async fn update_status(
        &self,
        r: &ResourceRef,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError>;

    /// `PATCH` with any [`PatchType`] (apply needs `opts.field_manager`); `opts.subresource`
    /// addresses `status` and friends.
    async fn patch(
        &self,
        r: &ResourceRef,
        name: &str,
        patch_type: PatchType,
        patch: Value,
        opts: &PatchOptions,
    ) -> Result<Value, ApiError>;

    /// `DELETE`; finalizers and grace periods make it [`DeleteOutcome::Pending`].
    async fn delete(
        &self,
        r: &ResourceRef,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<DeleteOutcome, ApiError>;

    /// `GET ?watch=true`: events after `opts.resource_version`, in revision order.
    async fn watch(&self, r: &ResourceRef, opts: &WatchOptions) -> Result<WatchStream, ApiError>;

    /// `POST …/{name}/{subresource}` for subresources with their own logic: `pods/binding` (the
    /// scheduler's bind), `pods/eviction` (drains, honouring PodDisruptionBudgets). Returns the
    /// response body (a `Status` for binding and eviction, as upstream). Implementations that
    /// serve no such subresource answer 405 `MethodNotSupported`, which is also the default here.
    async fn create_subresource(
        &self,
        r: &ResourceRef,
        name: &str,
        subresource: &str,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let _ = (name, body, opts);
        Err(ApiError::MethodNotSupported {
            group: r.group.clone(),
            resource: format!("{}/{subresource}", r.resource),
            action: "create".into(),
        })
    }

    /// [`ApiClient::get`] with absence as `None` (reconcilers branch on it constantly).
    async fn get_opt(&self, r: &ResourceRef, name: &str) -> Result<Option<Value>, ApiError> {
        match self.get(r, name).await {
            Ok(v) => Ok(Some(v)),
            Err(ApiError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use serde_json::json;
    use std::sync::Mutex;

    /// A minimal in-memory implementation, proving the trait is object-safe and usable as a seam.
    struct Recorder {
        writes: Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl ApiClient for Recorder {
        async fn get(&self, r: &ResourceRef, name: &str) -> Result<Value, ApiError> {
            Err(ApiError::not_found(&r.group, &r.resource, name))
        }
        async fn list(&self, _: &ResourceRef, _: &ListOptions) -> Result<ObjectList, ApiError> {
            Ok(ObjectList {
                resource_version: "1".into(),
                continue_token: None,
                remaining_item_count: None,
                items: vec![],
            })
        }
        async fn create(
            &self,
            r: &ResourceRef,
            obj: Value,
            _: &WriteOptions,
        ) -> Result<Value, ApiError> {
            self.writes
                .lock()
                .unwrap()
                .push(format!("create {} {}", r.resource, obj["metadata"]["name"]));
            Ok(obj)
        }
        async fn update(
            &self,
            _: &ResourceRef,
            obj: Value,
            _: &WriteOptions,
        ) -> Result<Value, ApiError> {
            Ok(obj)
        }
        async fn update_status(
            &self,
            _: &ResourceRef,
            obj: Value,
            _: &WriteOptions,
        ) -> Result<Value, ApiError> {
            Ok(obj)
        }
        async fn patch(
            &self,
            _: &ResourceRef,
            _: &str,
            t: PatchType,
            p: Value,
            _: &PatchOptions,
        ) -> Result<Value, ApiError> {
            crate::patch::apply_patch(&json!({}), t, &p, "", "ConfigMap")
        }
        async fn delete(
            &self,
            _: &ResourceRef,
            _: &str,
            _: &DeleteOptions,
        ) -> Result<DeleteOutcome, ApiError> {
            Ok(DeleteOutcome::Deleted(json!({})))
        }
        async fn watch(&self, _: &ResourceRef, _: &WatchOptions) -> Result<WatchStream, ApiError> {
            Ok(futures::stream::iter(vec![WatchEvent::Added(json!({"a": 1}))]).boxed())
        }
    }

    #[test]
    fn trait_is_object_safe_and_drives_a_fake() {
        let c: Box<dyn ApiClient> = Box::new(Recorder {
            writes: Mutex::new(vec![]),
        });
        let pods = ResourceRef::new("", "v1", "pods").in_namespace("default");
        assert_eq!(pods.api_version(), "v1");
        assert_eq!(
            ResourceRef::new("apps", "v1", "deployments").api_version(),
            "apps/v1"
        );
        futures::executor::block_on(async {
            let e = c.get(&pods, "x").await.unwrap_err();
            assert_eq!(e.code(), 404);
            assert_eq!(c.get_opt(&pods, "x").await, Ok(None));
            c.create(
                &pods,
                json!({"metadata": {"name": "p"}}),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
            let patched = c
                .patch(
                    &pods,
                    "p",
                    PatchType::Merge,
                    json!({"a": 1}),
                    &PatchOptions::default(),
                )
                .await
                .unwrap();
            assert_eq!(patched, json!({"a": 1}));
            let events: Vec<WatchEvent> = c
                .watch(&pods, &WatchOptions::default())
                .await
                .unwrap()
                .collect()
                .await;
            assert_eq!(events, vec![WatchEvent::Added(json!({"a": 1}))]);
        });
    }
}
