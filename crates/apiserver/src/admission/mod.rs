//! Admission: checks and mutations every write passes after the kind's defaults (kube-apiserver's
//! admission chain). One file per plugin, named as upstream; [`PLUGINS`] is the one ordered table,
//! in kube-apiserver's `AllOrderedPlugins` order.
//!
//! As upstream, every mutating step runs first (in table order), then every validating step (in
//! table order). The registry calls [`mutate`] after the strategy's prepare and before the kind's
//! validation, and [`validate`] after it; ResourceQuota's charge comes back as store operations
//! ([`resource_quota::Charge`]) that the registry commits in the same transaction as the object,
//! so quota usage can neither be over-admitted under concurrent creates nor drift when the object
//! write fails.

pub mod default_storage_class;
pub mod default_toleration_seconds;
pub mod limit_ranger;
pub mod namespace_lifecycle;
pub mod pod_security;
pub mod priority;
pub mod resource_quota;
pub mod service_account;
pub mod service_ip;

use bytes::Bytes;
use serde_json::Value;
use skiff_k8s_core::quantity::Quantity;
use skiff_k8s_core::status::ApiError;

use crate::registry::Registry;
use crate::registry::strategy::ResourceInfo;

/// What the write does (`admission.Operation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// One write as admission sees it (`admission.Attributes`).
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub info: &'a ResourceInfo,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub operation: Operation,
    /// `""`, `status`, …: most plugins look only at main-resource writes.
    pub subresource: &'a str,
    /// The stored object of an update or delete.
    pub old: Option<&'a Value>,
    pub dry_run: bool,
}

impl Request<'_> {
    /// A create, update or delete of the main resource `group`/`plural`.
    pub fn is(&self, group: &str, plural: &str) -> bool {
        self.info.group == group && self.info.plural == plural && self.subresource.is_empty()
    }

    /// `pods "x" is forbidden: <detail>` for this request.
    pub fn forbidden(&self, detail: impl Into<String>) -> ApiError {
        ApiError::Forbidden {
            group: self.info.group.clone(),
            resource: self.info.plural.clone(),
            name: self.name.into(),
            detail: detail.into(),
        }
    }

    pub fn ns(&self) -> &str {
        self.namespace.unwrap_or_default()
    }
}

/// The admission plugins we run, in kube-apiserver's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plugin {
    NamespaceLifecycle,
    LimitRanger,
    ServiceAccount,
    PodSecurity,
    Priority,
    DefaultTolerationSeconds,
    DefaultStorageClass,
    ResourceQuota,
}

/// The chain, ordered as `AllOrderedPlugins` (ResourceQuota last, as upstream requires).
pub const PLUGINS: [Plugin; 8] = [
    Plugin::NamespaceLifecycle,
    Plugin::LimitRanger,
    Plugin::ServiceAccount,
    Plugin::PodSecurity,
    Plugin::Priority,
    Plugin::DefaultTolerationSeconds,
    Plugin::DefaultStorageClass,
    Plugin::ResourceQuota,
];

impl Plugin {
    /// Upstream's plugin name (`--enable-admission-plugins`).
    pub fn name(self) -> &'static str {
        match self {
            Plugin::NamespaceLifecycle => "NamespaceLifecycle",
            Plugin::LimitRanger => "LimitRanger",
            Plugin::ServiceAccount => "ServiceAccount",
            Plugin::PodSecurity => "PodSecurity",
            Plugin::Priority => "Priority",
            Plugin::DefaultTolerationSeconds => "DefaultTolerationSeconds",
            Plugin::DefaultStorageClass => "DefaultStorageClass",
            Plugin::ResourceQuota => "ResourceQuota",
        }
    }

    async fn mutate(
        self,
        reg: &Registry,
        req: &Request<'_>,
        obj: &mut Value,
    ) -> Result<(), ApiError> {
        match self {
            Plugin::NamespaceLifecycle if req.operation == Operation::Create => {
                namespace_lifecycle::admit_create(reg, req.info, obj).await
            }
            Plugin::LimitRanger => limit_ranger::mutate(reg, req, obj).await,
            Plugin::ServiceAccount => service_account::mutate(reg, req, obj).await,
            Plugin::Priority => priority::mutate(reg, req, obj).await,
            Plugin::DefaultTolerationSeconds => {
                default_toleration_seconds::mutate(req, obj);
                Ok(())
            }
            Plugin::DefaultStorageClass => default_storage_class::mutate(reg, req, obj).await,
            Plugin::ResourceQuota => resource_quota::mutate(reg, req, obj).await,
            _ => Ok(()),
        }
    }

    async fn validate(
        self,
        reg: &Registry,
        req: &Request<'_>,
        obj: &Value,
        out: &mut Admitted,
    ) -> Result<(), ApiError> {
        match self {
            Plugin::LimitRanger => limit_ranger::validate(reg, req, obj).await,
            Plugin::PodSecurity => {
                out.warnings
                    .extend(pod_security::validate(reg, req, obj).await?);
                Ok(())
            }
            Plugin::ResourceQuota => {
                out.quota = resource_quota::charge(reg, req, Some(obj)).await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// What the validating phase hands back to the registry.
#[derive(Debug, Default)]
pub struct Admitted {
    /// `Warning:` headers (PodSecurity `warn` mode).
    pub warnings: Vec<String>,
    /// Quota status writes to commit with the object.
    pub quota: resource_quota::Charge,
}

/// The mutating phase of every plugin, in order.
pub async fn mutate(reg: &Registry, req: &Request<'_>, obj: &mut Value) -> Result<(), ApiError> {
    for p in PLUGINS {
        p.mutate(reg, req, obj).await?;
    }
    // Where kube-apiserver calls MutatingAdmissionWebhooks: after the built-in plugins, before
    // validation, so what they add is validated and charged to quota like the rest.
    for m in reg.external_mutators() {
        m.mutate(reg, req, obj).await?;
    }
    Ok(())
}

/// Mutating admission supplied by the embedder (the EKS layer's pod identity webhook), run
/// after the built-in plugins as mutating webhooks are upstream.
#[async_trait::async_trait]
pub trait ExternalMutator: Send + Sync + 'static {
    async fn mutate(
        &self,
        reg: &Registry,
        req: &Request<'_>,
        obj: &mut Value,
    ) -> Result<(), ApiError>;
}

/// The validating phase of every plugin, in order. `obj` is None for a delete.
pub async fn validate(
    reg: &Registry,
    req: &Request<'_>,
    obj: &Value,
) -> Result<Admitted, ApiError> {
    let mut out = Admitted::default();
    for p in PLUGINS {
        p.validate(reg, req, obj, &mut out).await?;
    }
    Ok(out)
}

/// A delete as admission sees it: the quota usage it gives back, as store operations.
pub async fn validate_delete(
    reg: &Registry,
    req: &Request<'_>,
) -> Result<resource_quota::Charge, ApiError> {
    resource_quota::charge(reg, req, None).await
}

/// Every container of a pod spec (init containers after the others), with the upstream
/// resource type word used in LimitRanger's annotation.
pub(crate) fn containers_mut(spec: &mut Value) -> Vec<(&'static str, &mut Value)> {
    let mut out = Vec::new();
    let (mut main, mut init) = (None, None);
    // One pass over the map hands out both lists without borrowing it twice.
    for (k, v) in spec.as_object_mut().into_iter().flatten() {
        match k.as_str() {
            "containers" => main = v.as_array_mut(),
            "initContainers" => init = v.as_array_mut(),
            _ => {}
        }
    }
    for (list, word) in [(main, "container"), (init, "init container")] {
        out.extend(list.into_iter().flatten().map(|c| (word, c)));
    }
    out
}

/// Quantities of a `ResourceList` (`{"cpu": "100m"}`); values that do not parse are skipped
/// (validation has refused them already).
pub(crate) fn resource_list(v: Option<&Value>) -> Vec<(String, Quantity)> {
    let mut out = Vec::new();
    for (k, v) in v.and_then(Value::as_object).into_iter().flatten() {
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if let Ok(q) = Quantity::parse(&text) {
            out.push((k.clone(), q));
        }
    }
    out
}

/// The stored form of an object written by admission itself (quota status): no resourceVersion.
pub(crate) fn encode(obj: &Value) -> Result<Bytes, ApiError> {
    let mut stored = obj.clone();
    if let Some(m) = stored.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    serde_json::to_vec(&stored)
        .map(Bytes::from)
        .map_err(|e| ApiError::InternalError(e.to_string()))
}

/// `utilerrors.NewAggregate(errs).Error()`: one message bare, several in brackets.
pub(crate) fn aggregate(msgs: &[String]) -> String {
    match msgs {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_follows_upstream_with_quota_last() {
        let names: Vec<&str> = PLUGINS.iter().map(|p| p.name()).collect();
        assert_eq!(names.first(), Some(&"NamespaceLifecycle"));
        assert_eq!(names.last(), Some(&"ResourceQuota"));
        let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
        assert!(pos("LimitRanger") < pos("ServiceAccount"));
        assert!(pos("PodSecurity") < pos("Priority"));
        assert!(pos("Priority") < pos("DefaultTolerationSeconds"));
        assert!(pos("DefaultTolerationSeconds") < pos("DefaultStorageClass"));
    }

    #[test]
    fn aggregate_brackets_only_several() {
        assert_eq!(aggregate(&["a".into()]), "a");
        assert_eq!(aggregate(&["a".into(), "b".into()]), "[a, b]");
    }

    #[test]
    fn containers_come_in_upstream_order() {
        let mut spec = serde_json::json!({"initContainers": [{"name": "i"}], "containers": [{"name": "a"}, {"name": "b"}]});
        let names: Vec<(String, &str)> = containers_mut(&mut spec)
            .into_iter()
            .map(|(w, c)| (c["name"].as_str().unwrap().to_string(), w))
            .collect();
        assert_eq!(
            names,
            vec![
                ("a".into(), "container"),
                ("b".into(), "container"),
                ("i".into(), "init container")
            ]
        );
    }
}
