//! `NamespaceLifecycle`: no new objects in a missing or terminating namespace, and the system
//! namespaces cannot be deleted.

use serde_json::Value;
use skiff_k8s_core::status::ApiError;

use crate::registry::strategy::ResourceInfo;
use crate::registry::{Registry, SYSTEM_NAMESPACES};

/// A create in namespace `obj.metadata.namespace`: it must exist and not be terminating.
pub async fn admit_create(
    reg: &Registry,
    info: &ResourceInfo,
    obj: &Value,
) -> Result<(), ApiError> {
    if !info.namespaced {
        return Ok(());
    }
    let Some(ns_kind) = reg.kind("", "namespaces") else {
        return Ok(());
    };
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let namespace = match reg.get(&ns_kind, None, ns).await {
        Ok(n) => n,
        Err(ApiError::NotFound { .. }) => {
            return Err(ApiError::not_found("", "namespaces", ns));
        }
        Err(e) => return Err(e),
    };
    let terminating = namespace.pointer("/metadata/deletionTimestamp").is_some()
        || namespace.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating");
    if terminating {
        return Err(ApiError::Forbidden {
            group: info.group.clone(),
            resource: info.plural.clone(),
            name: name.into(),
            detail: format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
        });
    }
    Ok(())
}

/// A delete: the immortal namespaces stay.
pub fn admit_delete(info: &ResourceInfo, name: &str) -> Result<(), ApiError> {
    if info.group.is_empty() && info.plural == "namespaces" && SYSTEM_NAMESPACES.contains(&name) {
        return Err(ApiError::Forbidden {
            group: String::new(),
            resource: "namespaces".into(),
            name: name.into(),
            detail: "this namespace may not be deleted".into(),
        });
    }
    Ok(())
}
