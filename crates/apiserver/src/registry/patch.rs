//! PATCH and server-side apply over the generic registry. The patch algebra itself (JSON patch,
//! merge patch, strategic merge with the upstream list-merge facts, apply and `managedFields`)
//! lives in `skiff_k8s_core::{patch, apply}`; this file reads the live object, runs it, and hands
//! the result to the ordinary update path.

use std::sync::Arc;

use serde_json::Value;
use skiff_k8s_core::apply::{self as ssa, ManagerInfo};
use skiff_k8s_core::patch::{PatchType, apply_patch};
use skiff_k8s_core::patch_meta::schema_for;
use skiff_k8s_core::status::ApiError;

use super::meta::{meta_mut, meta_str};
use super::strategy::{ResourceInfo, Strategy};
use super::write::{WriteOptions, Written};
use super::{Registry, api_version};

/// The fields the main resource of a kind with a status subresource resets (and so never owns).
const MAIN_RESETS: &[&str] = &["status"];

/// Top-level fields a write through `subresource` resets: `status` on the main resource of kinds
/// with a status subresource; everything but `status` (and type/object metadata) on `/status`.
pub(crate) fn reset_fields(info: &ResourceInfo, subresource: &str, obj: &Value) -> Vec<String> {
    match subresource {
        "" if info.has_status => MAIN_RESETS.iter().map(|s| s.to_string()).collect(),
        "status" => obj
            .as_object()
            .map(|o| {
                o.keys()
                    .filter(|k| {
                        !matches!(k.as_str(), "status" | "metadata" | "apiVersion" | "kind")
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Runs `f` with the [`ManagerInfo`] of a write by `manager` on `info`/`subresource`; `resets`
/// comes from [`reset_fields`].
pub(crate) fn with_manager<T>(
    info: &ResourceInfo,
    manager: &str,
    subresource: &str,
    resets: Vec<String>,
    f: impl FnOnce(&ManagerInfo<'_>) -> T,
) -> T {
    let resets: Vec<&str> = resets.iter().map(String::as_str).collect();
    let av = api_version(info);
    f(&ManagerInfo {
        manager,
        api_version: &av,
        subresource,
        reset_fields: &resets,
        now: jiff::Timestamp::now(),
    })
}

impl Registry {
    /// PATCH on the object or a subresource (`""`, `"status"`). Apply patches create a missing
    /// object and go through server-side apply (conflicts, ownership, pruning); the others are
    /// JSON/merge/strategic patches recorded as the manager's `Update`.
    #[allow(
        clippy::too_many_arguments,
        reason = "mirrors the PATCH request's parameters"
    )]
    pub async fn patch(
        &self,
        kind: &Arc<dyn Strategy>,
        namespace: Option<&str>,
        name: &str,
        patch: Value,
        pt: PatchType,
        subresource: &str,
        force: bool,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let info = kind.info();
        if pt == PatchType::Apply {
            if opts.field_manager.is_empty() {
                return Err(ApiError::BadRequest(
                    "PATCH, application/apply-patch+yaml requests must have a fieldManager parameter"
                        .into(),
                ));
            }
            if !patch.is_object() {
                return Err(ApiError::BadRequest(
                    "error decoding YAML: not an object".into(),
                ));
            }
            let pname = meta_str(&patch, "name");
            if !pname.is_empty() && pname != name {
                return Err(ApiError::BadRequest(format!(
                    "the name of the object ({pname}) does not match the name on the URL ({name})"
                )));
            }
            let apply_opts = WriteOptions {
                apply: true,
                ..opts.clone()
            };
            let schema = schema_for(&info.group, &info.kind);
            if self.get_kv(info, namespace, name).await?.is_none() && subresource.is_empty() {
                let resets = reset_fields(info, "", &patch);
                let mut obj = with_manager(info, &opts.field_manager, "", resets, |who| {
                    ssa::apply(None, &patch, schema, who, force)
                })?;
                meta_mut(&mut obj).insert("name".into(), name.into());
                return self.create(kind, namespace, obj, &apply_opts).await;
            }
            return self
                .update_with(kind, namespace, name, subresource, &apply_opts, |cur| {
                    let resets = reset_fields(info, subresource, cur);
                    let mut new =
                        with_manager(info, &opts.field_manager, subresource, resets, |who| {
                            ssa::apply(Some(cur), &patch, schema, who, force)
                        })?;
                    let m = meta_mut(&mut new);
                    m.insert("name".into(), name.into());
                    m.remove("resourceVersion");
                    Ok(new)
                })
                .await;
        }
        self.update_with(kind, namespace, name, subresource, opts, |cur| {
            let mut new = apply_patch(cur, pt, &patch, &info.group, &info.kind)?;
            // A patch may not move the object; its resourceVersion, when set, is a precondition.
            meta_mut(&mut new).insert("name".into(), name.into());
            if meta_str(&patch, "resourceVersion").is_empty() {
                meta_mut(&mut new).remove("resourceVersion");
            }
            Ok(new)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn info(has_status: bool) -> ResourceInfo {
        ResourceInfo {
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
            plural: "deployments".into(),
            singular: "deployment".into(),
            namespaced: true,
            short_names: vec![],
            categories: vec![],
            verbs: vec![],
            has_status,
            scale: None,
        }
    }

    #[test]
    fn resets_follow_the_endpoint() {
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {},
            "spec": {}, "status": {}});
        assert_eq!(reset_fields(&info(true), "", &obj), ["status"]);
        assert!(reset_fields(&info(false), "", &obj).is_empty());
        assert_eq!(reset_fields(&info(true), "status", &obj), ["spec"]);
    }

    #[test]
    fn a_status_write_owns_status_only() {
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"}, "spec": {"replicas": 1}});
        let mut new = live.clone();
        new["spec"]["replicas"] = json!(3);
        new["status"] = json!({"replicas": 3});
        let resets = reset_fields(&info(true), "status", &new);
        let out = with_manager(&info(true), "ctl", "status", resets, |who| {
            ssa::track_update(Some(&live), new, schema_for("apps", "Deployment"), who)
        })
        .unwrap();
        let mf = &out["metadata"]["managedFields"][0];
        assert_eq!(
            (&mf["manager"], &mf["operation"], &mf["subresource"]),
            (&json!("ctl"), &json!("Update"), &json!("status"))
        );
        assert_eq!(
            mf["fieldsV1"],
            json!({"f:status": {"f:replicas": {}}}),
            "spec is not the status writer's"
        );
    }
}
