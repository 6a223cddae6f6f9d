//! [`RegistryClient`]: the in-process [`ApiClient`] controllers, the scheduler and node agents use.
//!
//! Calls go straight to [`Registry`], so they skip HTTP authentication and authorization (the
//! caller is a trusted component of this process) but run everything a write through HTTP runs:
//! strategies, admission, validation, resourceVersion checks, managedFields. The identity is kept
//! to name the field manager, as kube-controller-manager's clients do with their user agent.

use std::sync::Arc;

use futures::StreamExt;
use serde_json::Value;
use skiff_k8s_core::client::{
    ApiClient, DeleteOptions, DeleteOutcome, ListOptions, ObjectList, PatchOptions,
    PropagationPolicy, ResourceRef, ResourceVersionMatch, WatchEvent, WatchOptions, WatchStream,
    WriteOptions,
};
use skiff_k8s_core::patch::PatchType;
use skiff_k8s_core::selector::{FieldSelector, Selector};
use skiff_k8s_core::status::ApiError;

use crate::registry::strategy::Strategy;
use crate::registry::{self, Registry};

/// An [`ApiClient`] over one cluster's registry, acting as `user`.
pub struct RegistryClient {
    reg: Arc<Registry>,
    user: String,
}

impl RegistryClient {
    /// A client acting as `user` (`system:kube-controller-manager`,
    /// `system:serviceaccount:kube-system:deployment-controller`, `system:node:<name>`).
    pub fn new(reg: Arc<Registry>, user: impl Into<String>) -> Self {
        Self {
            reg,
            user: user.into(),
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// The strategy behind `r`; an unknown resource or version is upstream's bare 404.
    fn kind(&self, r: &ResourceRef) -> Result<Arc<dyn Strategy>, ApiError> {
        self.reg
            .kind(&r.group, &r.resource)
            .filter(|k| k.info().version == r.version)
            .ok_or_else(|| ApiError::not_found(&r.group, &r.resource, ""))
    }

    /// The manager named in `managedFields`: the caller's, else the user's short name (the last
    /// `:`-separated part, as `system:serviceaccount:kube-system:deployment-controller` shows).
    fn manager(&self, given: &Option<String>) -> String {
        match given {
            Some(m) if !m.is_empty() => m.clone(),
            _ => self.user.rsplit(':').next().unwrap_or_default().to_string(),
        }
    }

    fn write_opts(&self, opts: &WriteOptions) -> registry::WriteOptions {
        registry::WriteOptions {
            dry_run: opts.dry_run,
            field_manager: self.manager(&opts.field_manager),
            ..Default::default()
        }
    }
}

fn parse_labels(s: &Option<String>) -> Result<Selector, ApiError> {
    match s.as_deref() {
        None | Some("") => Ok(Selector::everything()),
        Some(s) => Selector::parse(s).map_err(ApiError::BadRequest),
    }
}

fn parse_fields(s: &Option<String>) -> Result<FieldSelector, ApiError> {
    match s.as_deref() {
        None | Some("") => Ok(FieldSelector::everything()),
        Some(s) => FieldSelector::parse(s).map_err(ApiError::BadRequest),
    }
}

/// Turns a watch `ERROR` event's `Status` back into the [`ApiError`] it was made from (the
/// registry only emits 410s and 500s mid-stream).
fn error_from_status(status: &Value) -> ApiError {
    let message = status
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match (
        status.get("code").and_then(Value::as_u64),
        status.get("reason").and_then(Value::as_str),
    ) {
        (Some(410), Some("Expired")) => ApiError::Expired(message),
        (Some(410), _) => ApiError::Gone(message),
        (Some(503), _) => ApiError::ServiceUnavailable(message),
        _ => ApiError::InternalError(message),
    }
}

fn name_of(obj: &Value) -> String {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

#[async_trait::async_trait]
impl ApiClient for RegistryClient {
    async fn get(&self, r: &ResourceRef, name: &str) -> Result<Value, ApiError> {
        let kind = self.kind(r)?;
        self.reg.get(&kind, r.namespace.as_deref(), name).await
    }

    async fn list(&self, r: &ResourceRef, opts: &ListOptions) -> Result<ObjectList, ApiError> {
        let kind = self.kind(r)?;
        let page = self
            .reg
            .list(
                &kind,
                r.namespace.as_deref(),
                &registry::ListOptions {
                    label_selector: parse_labels(&opts.label_selector)?,
                    field_selector: parse_fields(&opts.field_selector)?,
                    limit: opts.limit.unwrap_or(0) as usize,
                    continue_token: opts.continue_token.clone(),
                    resource_version: opts.resource_version.clone(),
                    resource_version_match: opts.resource_version_match.map(|m| {
                        match m {
                            ResourceVersionMatch::Exact => "Exact",
                            ResourceVersionMatch::NotOlderThan => "NotOlderThan",
                        }
                        .to_string()
                    }),
                },
            )
            .await?;
        Ok(ObjectList {
            resource_version: page.resource_version.to_string(),
            continue_token: page.continue_token,
            remaining_item_count: None,
            items: page.items,
        })
    }

    async fn create(
        &self,
        r: &ResourceRef,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let kind = self.kind(r)?;
        let w = self
            .reg
            .create(&kind, r.namespace.as_deref(), obj, &self.write_opts(opts))
            .await?;
        Ok(w.object)
    }

    async fn update(
        &self,
        r: &ResourceRef,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let kind = self.kind(r)?;
        let name = name_of(&obj);
        let w = self
            .reg
            .update(
                &kind,
                r.namespace.as_deref(),
                &name,
                obj,
                "",
                &self.write_opts(opts),
            )
            .await?;
        Ok(w.object)
    }

    async fn update_status(
        &self,
        r: &ResourceRef,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let kind = self.kind(r)?;
        if !kind.info().has_status {
            return Err(ApiError::not_found(&r.group, &r.resource, &name_of(&obj)));
        }
        let name = name_of(&obj);
        let w = self
            .reg
            .update(
                &kind,
                r.namespace.as_deref(),
                &name,
                obj,
                "status",
                &self.write_opts(opts),
            )
            .await?;
        Ok(w.object)
    }

    async fn patch(
        &self,
        r: &ResourceRef,
        name: &str,
        patch_type: PatchType,
        patch: Value,
        opts: &PatchOptions,
    ) -> Result<Value, ApiError> {
        let kind = self.kind(r)?;
        let wopts = registry::WriteOptions {
            dry_run: opts.dry_run,
            // Apply demands an explicit manager (400 without one), as over HTTP.
            field_manager: if patch_type == PatchType::Apply {
                opts.field_manager.clone().unwrap_or_default()
            } else {
                self.manager(&opts.field_manager)
            },
            ..Default::default()
        };
        let w = self
            .reg
            .patch(
                &kind,
                r.namespace.as_deref(),
                name,
                patch,
                patch_type,
                opts.subresource.as_deref().unwrap_or(""),
                opts.force,
                &wopts,
            )
            .await?;
        Ok(w.object)
    }

    async fn delete(
        &self,
        r: &ResourceRef,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<DeleteOutcome, ApiError> {
        let kind = self.kind(r)?;
        let ropts = registry::DeleteOptions {
            propagation_policy: opts.propagation_policy.map(|p| {
                match p {
                    PropagationPolicy::Orphan => "Orphan",
                    PropagationPolicy::Background => "Background",
                    PropagationPolicy::Foreground => "Foreground",
                }
                .to_string()
            }),
            precondition_uid: opts.precondition_uid.clone(),
            precondition_resource_version: opts.precondition_resource_version.clone(),
            grace_period_seconds: opts.grace_period_seconds,
            dry_run: opts.dry_run,
        };
        Ok(
            match self
                .reg
                .delete(&kind, r.namespace.as_deref(), name, &ropts)
                .await?
            {
                registry::DeleteOutcome::Deleted(v) => DeleteOutcome::Deleted(v),
                registry::DeleteOutcome::Pending(v) => DeleteOutcome::Pending(v),
            },
        )
    }

    /// `pods/binding` and `pods/eviction`, through the same code as their HTTP routes.
    async fn create_subresource(
        &self,
        r: &ResourceRef,
        name: &str,
        subresource: &str,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let kind = self.kind(r)?;
        let info = kind.info();
        let ns = r.namespace.as_deref().unwrap_or_default();
        match (info.group.as_str(), info.plural.as_str(), subresource) {
            ("", "pods", "binding") => {
                registry::pod_binding::bind(&self.reg, ns, name, body, opts.dry_run).await
            }
            ("", "pods", "eviction") => {
                registry::eviction::evict(&self.reg, ns, name, body, opts.dry_run).await
            }
            _ => Err(ApiError::MethodNotSupported {
                group: r.group.clone(),
                resource: format!("{}/{subresource}", r.resource),
                action: "create".into(),
            }),
        }
    }

    async fn watch(&self, r: &ResourceRef, opts: &WatchOptions) -> Result<WatchStream, ApiError> {
        let kind = self.kind(r)?;
        let ropts = registry::WatchOptions {
            label_selector: parse_labels(&opts.label_selector)?,
            field_selector: parse_fields(&opts.field_selector)?,
            resource_version: opts.resource_version.clone(),
            allow_bookmarks: opts.allow_bookmarks,
            send_initial_events: opts.send_initial_events.then_some(true),
            ..Default::default()
        };
        let stream = self.reg.watch(&kind, r.namespace.as_deref(), ropts).await?;
        Ok(stream
            .filter_map(|ev| async move {
                Some(match ev.type_ {
                    "ADDED" => WatchEvent::Added(ev.object),
                    "MODIFIED" => WatchEvent::Modified(ev.object),
                    "DELETED" => WatchEvent::Deleted(ev.object),
                    "BOOKMARK" => WatchEvent::Bookmark(ev.object),
                    "ERROR" => WatchEvent::Error(error_from_status(&ev.object)),
                    _ => return None,
                })
            })
            .boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn client() -> (RegistryClient, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = skiff_store::open("embedded", dir.path()).await.unwrap();
        let reg = Registry::new(
            store,
            "c1",
            crate::kinds::builtin(),
            "10.100.0.0/16",
            30000..=32767,
        )
        .unwrap();
        crate::registry::namespace_lifecycle::ensure_system_namespaces(&reg)
            .await
            .unwrap();
        (
            RegistryClient::new(
                Arc::new(reg),
                "system:serviceaccount:kube-system:test-controller",
            ),
            dir,
        )
    }

    fn cms() -> ResourceRef {
        ResourceRef::new("", "v1", "configmaps").in_namespace("default")
    }

    #[tokio::test]
    async fn writes_run_registry_rules_and_name_the_manager() {
        let (c, _d) = client().await;
        let created = c
            .create(
                &cms(),
                json!({"metadata": {"name": "a"}, "data": {"k": "v"}}),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(created["kind"], "ConfigMap");
        assert_eq!(
            created["metadata"]["managedFields"][0]["manager"],
            "test-controller"
        );
        let e = c
            .create(
                &cms(),
                json!({"metadata": {"name": "a"}}),
                &WriteOptions::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), 409);
        // A stale resourceVersion is the optimistic-lock conflict.
        let mut stale = created.clone();
        stale["metadata"]["resourceVersion"] = json!("1");
        stale["data"]["k"] = json!("w");
        let e = c
            .update(&cms(), stale, &WriteOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e, ApiError::optimistic_lock("", "configmaps", "a"), "{e}");
        let got = c.get(&cms(), "a").await.unwrap();
        assert_eq!(got["data"]["k"], "v");
        let patched = c
            .patch(
                &cms(),
                "a",
                PatchType::Merge,
                json!({"data": {"k": "z"}}),
                &PatchOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(patched["data"]["k"], "z");
        let bad = c
            .create(
                &cms(),
                json!({"metadata": {"name": "Not_Valid"}}),
                &WriteOptions::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(bad.code(), 422);
        assert!(matches!(
            c.delete(&cms(), "a", &DeleteOptions::default()).await,
            Ok(DeleteOutcome::Deleted(_))
        ));
        assert_eq!(c.get_opt(&cms(), "a").await, Ok(None));
        let unknown = ResourceRef::new("", "v1", "widgets");
        assert_eq!(c.get(&unknown, "x").await.unwrap_err().code(), 404);
    }

    #[tokio::test]
    async fn list_and_watch_follow_selectors_and_versions() {
        let (c, _d) = client().await;
        for (n, app) in [("a", "x"), ("b", "y")] {
            c.create(
                &cms(),
                json!({"metadata": {"name": n, "labels": {"app": app}}}),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
        }
        let l = c
            .list(
                &cms(),
                &ListOptions {
                    label_selector: Some("app=x".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(l.items.len(), 1);
        assert_eq!(l.items[0]["metadata"]["name"], "a");
        let mut w = c
            .watch(
                &cms(),
                &WatchOptions {
                    resource_version: Some(l.resource_version.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        c.delete(&cms(), "b", &DeleteOptions::default())
            .await
            .unwrap();
        match w.next().await {
            Some(WatchEvent::Deleted(o)) => assert_eq!(o["metadata"]["name"], "b"),
            other => panic!("unexpected {other:?}"),
        }
        let e = c
            .list(
                &cms(),
                &ListOptions {
                    label_selector: Some("app in (".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), 400);
    }

    #[test]
    fn watch_errors_keep_their_reason() {
        let e = ApiError::too_old_resource_version(3, 9);
        assert_eq!(error_from_status(&e.to_status()), e);
    }
}
