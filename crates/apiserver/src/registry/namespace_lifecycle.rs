//! Namespace lifecycle (kube-controller-manager's namespace controller, living here until the
//! controllers crate exists): the system namespaces exist at start; a deleted namespace is marked
//! Terminating (see `write.rs`), everything in it is deleted, then its `kubernetes` finalizer is
//! removed and the namespace goes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use skiff_k8s_core::status::ApiError;

use super::write::{DeleteOptions, WriteOptions};
use super::{ListOptions, Registry, SYSTEM_NAMESPACES};

const MANAGER: &str = "namespace-controller";

/// Creates the system namespaces that are missing (idempotent).
pub async fn ensure_system_namespaces(reg: &Registry) -> Result<(), ApiError> {
    let Some(ns_kind) = reg.kind("", "namespaces") else {
        return Ok(());
    };
    for name in SYSTEM_NAMESPACES {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
        match reg
            .create(
                &ns_kind,
                None,
                obj,
                &WriteOptions {
                    field_manager: "skiff".into(),
                    ..Default::default()
                },
            )
            .await
        {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One pass over a terminating namespace. Returns true when the namespace is gone.
pub async fn finalize_namespace(reg: &Registry, name: &str) -> Result<bool, ApiError> {
    let Some(ns_kind) = reg.kind("", "namespaces") else {
        return Ok(true);
    };
    let ns = match reg.get(&ns_kind, None, name).await {
        Ok(ns) => ns,
        Err(ApiError::NotFound { .. }) => return Ok(true),
        Err(e) => return Err(e),
    };
    if ns.pointer("/metadata/deletionTimestamp").is_none() {
        return Ok(false);
    }
    let mut remaining = 0usize;
    for kind in reg.kinds().iter().filter(|k| k.info().namespaced) {
        let page = reg.list(kind, Some(name), &ListOptions::default()).await?;
        for obj in page.items {
            remaining += 1;
            if obj.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let n = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match reg
                .delete(
                    kind,
                    Some(name),
                    n,
                    &DeleteOptions {
                        grace_period_seconds: Some(0),
                        ..Default::default()
                    },
                )
                .await
            {
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    if remaining > 0 {
        // Deleted objects with finalizers are still there; come back once they are gone.
        let left: usize = {
            let mut n = 0;
            for kind in reg.kinds().iter().filter(|k| k.info().namespaced) {
                n += reg
                    .list(kind, Some(name), &ListOptions::default())
                    .await?
                    .items
                    .len();
            }
            n
        };
        if left > 0 {
            return Ok(false);
        }
    }
    // Empty: drop the `kubernetes` finalizer (what `namespaces/finalize` does), then delete.
    let opts = WriteOptions {
        field_manager: MANAGER.into(),
        ..Default::default()
    };
    reg.update_with(&ns_kind, None, name, "finalize", &opts, |cur| {
        let mut o = cur.clone();
        if let Some(f) = o
            .pointer_mut("/spec/finalizers")
            .and_then(Value::as_array_mut)
        {
            f.retain(|x| x != "kubernetes");
        }
        Ok(o)
    })
    .await?;
    match reg
        .delete(&ns_kind, None, name, &DeleteOptions::default())
        .await
    {
        Ok(super::DeleteOutcome::Deleted(_)) | Err(ApiError::NotFound { .. }) => Ok(true),
        Ok(super::DeleteOutcome::Pending(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Runs the controller until `shutdown` flips: namespace events enqueue names, a short tick
/// retries the ones still terminating.
pub fn spawn(
    reg: Arc<Registry>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Some(ns_kind) = reg.kind("", "namespaces") else {
            return;
        };
        let mut pending: BTreeSet<String> = BTreeSet::new();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut events = None;
        loop {
            if events.is_none() {
                match reg
                    .watch(
                        &ns_kind,
                        None,
                        super::WatchOptions {
                            resource_version: Some(String::new()),
                            ..Default::default()
                        },
                    )
                    .await
                {
                    Ok(s) => events = Some(s),
                    Err(e) => tracing::warn!(error = %e, "namespace controller: watch failed"),
                }
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                ev = async { match events.as_mut() { Some(s) => s.next().await, None => futures::future::pending().await } } => {
                    match ev {
                        Some(ev) if ev.type_ == "ERROR" => events = None,
                        Some(ev) => {
                            if ev.object.pointer("/metadata/deletionTimestamp").is_some()
                                && let Some(n) = ev.object.pointer("/metadata/name").and_then(Value::as_str) {
                                    pending.insert(n.to_string());
                                }
                        }
                        None => events = None,
                    }
                }
                _ = tick.tick() => {
                    let names: Vec<String> = pending.iter().cloned().collect();
                    for n in names {
                        match finalize_namespace(&reg, &n).await {
                            Ok(true) => { pending.remove(&n); }
                            Ok(false) => {}
                            Err(e) => tracing::warn!(namespace = %n, error = %e, "namespace controller"),
                        }
                    }
                }
            }
        }
    })
}
