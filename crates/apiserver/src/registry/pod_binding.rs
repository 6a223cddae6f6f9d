//! `pods/binding` (and the legacy `bindings` collection): the scheduler's write that puts a Pod on a
//! node (`BindingREST` in kube-apiserver's pod storage). `spec.nodeName` is set once, together
//! with the `PodScheduled=True` condition and the Binding's annotations; a pod already assigned or
//! being deleted is a 409 on `pods/binding`. The write goes straight to the store under the pod's
//! revision, as upstream's `GuaranteedUpdate` does: the Pod strategy's update rules (which forbid
//! spec changes) are for clients, not for the binding.

use std::sync::Arc;

use serde_json::{Value, json};
use skiff_k8s_core::status::{ApiError, FieldError};
use skiff_store::{Op, Precondition, StoreError};

use super::hooks::{CreateOnlyResource, HookError, HookRequest, SubresourceHandler};
use super::strategy::ResourceInfo;
use super::{Registry, decode, meta, store_error};

/// `metav1.Status` Success as the binding and eviction subresources answer (201).
pub fn success_status() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
}

/// The one place a subresource's [`ApiError`] becomes a [`HookError`] for the HTTP layer.
///
/// `HookError` has no variant for 409 and 429 yet (see the report of this change): those travel
/// as `Internal` with their full message until `HookError` can carry an `ApiError` as is.
/// In-process callers ([`crate::client::RegistryClient`]) get the exact `ApiError`.
pub fn hook_error(e: ApiError) -> HookError {
    match e {
        ApiError::BadRequest(m) => HookError::BadRequest(m),
        ApiError::NotFound { resource, name, .. } => HookError::NotFound { resource, name },
        ApiError::Forbidden { detail, .. } => HookError::Forbidden(detail),
        ApiError::Invalid { causes, .. } => HookError::Invalid(causes),
        ApiError::InternalError(m) => HookError::Internal(m),
        other => HookError::Api(other),
    }
}

/// `ValidatePodBinding`.
fn validate(binding: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let kind = binding
        .pointer("/target/kind")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !kind.is_empty() && kind != "Node" {
        errs.push(FieldError::not_supported(
            "target.kind",
            json!(kind),
            &["Node", "<empty>"],
        ));
    }
    if binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        errs.push(FieldError::required("target.name", ""));
    }
    errs
}

/// Sets `PodScheduled=True` (kept in place when the condition exists, appended otherwise).
fn set_scheduled(pod: &mut Value) {
    let now = meta::now_rfc3339();
    let Some(o) = pod.as_object_mut() else { return };
    let status = o.entry("status").or_insert_with(|| json!({}));
    if !status.is_object() {
        *status = json!({});
    }
    let conds = status
        .as_object_mut()
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    let Some(list) = conds.and_then(Value::as_array_mut) else {
        return;
    };
    let cond = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null,
        "lastTransitionTime": now});
    match list
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("PodScheduled"))
    {
        Some(c) => {
            let probe = c.get("lastProbeTime").cloned().unwrap_or(Value::Null);
            *c = cond;
            c["lastProbeTime"] = probe;
        }
        None => list.push(cond),
    }
}

/// Binds pod `name` in `namespace` as `binding` (a `v1` `Binding`) says. Returns the `Status`.
#[doc(alias = "BindingREST")]
pub async fn bind(
    reg: &Registry,
    namespace: &str,
    name: &str,
    binding: Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    if !binding.is_object() {
        return Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    }
    match binding.get("kind").and_then(Value::as_str) {
        None | Some("" | "Binding") => {}
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({other}) does not match the expected kind (Binding)"
            )));
        }
    }
    let body_name = binding
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if body_name != name {
        return Err(ApiError::BadRequest(
            "the name of the object does not match the name on the URL".into(),
        ));
    }
    if let Some(ns) = binding
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        && !ns.is_empty()
        && ns != namespace
    {
        return Err(ApiError::BadRequest(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        ));
    }
    let errs = validate(&binding);
    if !errs.is_empty() {
        return Err(ApiError::invalid("", "Binding", name, errs));
    }
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let want_uid = binding
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    let want_rv = binding
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let annotations = binding
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let pods = reg
        .kind("", "pods")
        .ok_or_else(|| ApiError::not_found("", "pods", name))?;
    let conflict = |detail: String| ApiError::Conflict {
        group: String::new(),
        resource: "pods/binding".into(),
        name: name.into(),
        detail,
    };
    for _ in 0..8 {
        let Some(kv) = reg.get_kv(pods.info(), Some(namespace), name).await? else {
            return Err(ApiError::not_found("", "pods", name));
        };
        let mut pod = decode(&kv)?;
        let uid = meta::meta_str(&pod, "uid").to_string();
        if !want_uid.is_empty() && want_uid != uid {
            return Err(conflict(format!(
                "Precondition failed: UID in precondition: {want_uid}, UID in object meta: {uid}"
            )));
        }
        if !want_rv.is_empty() && want_rv != kv.mod_revision.to_string() {
            return Err(ApiError::optimistic_lock("", "pods", name));
        }
        if !meta::meta_str(&pod, "deletionTimestamp").is_empty() {
            return Err(conflict(format!(
                "pod {name} is being deleted, cannot be assigned to a host"
            )));
        }
        let current = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !current.is_empty() {
            return Err(conflict(format!(
                "pod {name} is already assigned to node {current:?}"
            )));
        }
        if pod
            .pointer("/spec/schedulingGates")
            .and_then(Value::as_array)
            .is_some_and(|g| !g.is_empty())
        {
            return Err(conflict(format!(
                "pod {name} has non-empty .spec.schedulingGates"
            )));
        }
        if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("nodeName".into(), json!(node));
        }
        if !annotations.is_empty() {
            let m = meta::meta_mut(&mut pod);
            let a = m.entry("annotations").or_insert_with(|| json!({}));
            if let Some(a) = a.as_object_mut() {
                a.extend(annotations.clone());
            }
        }
        set_scheduled(&mut pod);
        if dry_run {
            return Ok(success_status());
        }
        let value = crate::admission::encode(&pod)?;
        match reg
            .store()
            .txn(vec![Op::Put {
                key: reg.key(pods.info(), Some(namespace), name),
                value,
                precondition: Precondition::ModRevision(kv.mod_revision),
            }])
            .await
        {
            Ok(_) => return Ok(success_status()),
            // Someone else wrote the pod meanwhile: read it again and re-check.
            Err(StoreError::PreconditionFailed { .. }) => continue,
            Err(e) => return Err(store_error(e)),
        }
    }
    Err(ApiError::optimistic_lock("", "pods", name))
}

/// `POST …/pods/<name>/binding`.
pub struct PodBinding {
    reg: Arc<Registry>,
}

impl PodBinding {
    pub fn new(reg: Arc<Registry>) -> Self {
        Self { reg }
    }
}

#[async_trait::async_trait]
impl SubresourceHandler for PodBinding {
    fn parent(&self) -> (&str, &str) {
        ("pods", "")
    }
    fn subresource(&self) -> &str {
        "binding"
    }
    fn kind(&self) -> (&str, &str, &str) {
        ("Binding", "", "v1")
    }
    async fn create(&self, req: &HookRequest<'_>, body: Value) -> Result<Value, HookError> {
        bind(
            &self.reg,
            req.namespace.unwrap_or_default(),
            req.name.unwrap_or_default(),
            body,
            req.dry_run,
        )
        .await
        .map_err(hook_error)
    }
}

/// The legacy `POST /api/v1/namespaces/<ns>/bindings` (the pod named by the Binding's name).
pub struct LegacyBindings {
    reg: Arc<Registry>,
    info: ResourceInfo,
}

impl LegacyBindings {
    pub fn new(reg: Arc<Registry>) -> Self {
        Self {
            reg,
            info: ResourceInfo {
                group: String::new(),
                version: "v1".into(),
                kind: "Binding".into(),
                plural: "bindings".into(),
                singular: "binding".into(),
                namespaced: true,
                short_names: Vec::new(),
                categories: Vec::new(),
                verbs: vec!["create".into()],
                has_status: false,
                scale: None,
            },
        }
    }
}

#[async_trait::async_trait]
impl CreateOnlyResource for LegacyBindings {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }
    async fn create(&self, req: &HookRequest<'_>, body: Value) -> Result<Value, HookError> {
        let name = body
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        bind(
            &self.reg,
            req.namespace.unwrap_or_default(),
            &name,
            body,
            req.dry_run,
        )
        .await
        .map_err(hook_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_validation_words() {
        let e = validate(&json!({"target": {"kind": "Pod"}}));
        let msgs: Vec<String> = e.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            vec![
                "target.kind: Unsupported value: \"Pod\": supported values: \"Node\", \"<empty>\"",
                "target.name: Required value",
            ]
        );
        assert!(validate(&json!({"target": {"name": "n1"}})).is_empty());
    }

    #[test]
    fn scheduled_condition_replaces_in_place() {
        let mut pod = json!({"status": {"conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "lastProbeTime": null}]}});
        set_scheduled(&mut pod);
        let c = pod["status"]["conditions"].as_array().unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0]["status"], "True");
        assert!(c[0].get("reason").is_none());
    }
}
