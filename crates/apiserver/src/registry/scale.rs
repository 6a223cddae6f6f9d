//! The `scale` subresource: an `autoscaling/v1` `Scale` view over the paths a kind names in
//! [`super::strategy::ScalePaths`].

use std::sync::Arc;

use serde_json::{Value, json};
use skiff_k8s_core::status::{ApiError, FieldError};

use super::strategy::{ResourceInfo, ScalePaths, Strategy};
use super::write::{WriteOptions, Written};
use super::{PatchType, Registry};
use skiff_k8s_core::apply::ManagerInfo;
use skiff_k8s_core::patch::apply_patch;
use skiff_k8s_core::selector::Selector;

/// `.spec.replicas` or `/spec/replicas` → JSON pointer.
fn pointer(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{}", path.trim_start_matches('.').replace('.', "/"))
    }
}

fn paths(info: &ResourceInfo) -> Result<&ScalePaths, ApiError> {
    info.scale.as_ref().ok_or_else(|| ApiError::NotFound {
        group: info.group.clone(),
        resource: format!("{}/scale", info.plural),
        name: String::new(),
    })
}

/// The Scale object of `obj`.
pub fn scale_of(info: &ResourceInfo, obj: &Value) -> Result<Value, ApiError> {
    let p = paths(info)?;
    let spec = obj
        .pointer(&pointer(&p.spec_replicas))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let status = obj
        .pointer(&pointer(&p.status_replicas))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let m = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let mut meta = serde_json::Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = m.get(k) {
            meta.insert(k.into(), v.clone());
        }
    }
    let mut st = json!({"replicas": status});
    if let Some(sel_path) = &p.label_selector {
        match obj.pointer(&pointer(sel_path)) {
            Some(Value::String(s)) => st["selector"] = json!(s),
            // `metav1.LabelSelectorAsSelector(..).String()`; validation already accepted the
            // selector, so a conversion error leaves the field unset rather than failing the read.
            Some(sel @ Value::Object(_)) => {
                if let Ok(s) = Selector::from_label_selector(sel) {
                    st["selector"] = json!(s.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(
        json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta,
        "spec": {"replicas": spec}, "status": st}),
    )
}

impl Registry {
    pub async fn get_scale(
        &self,
        kind: &Arc<dyn Strategy>,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        paths(kind.info())?;
        let obj = self.get(kind, ns, name).await?;
        scale_of(kind.info(), &obj)
    }

    /// PUT or PATCH of `/scale`: `change` turns the current Scale into the desired one.
    pub async fn update_scale<F>(
        &self,
        kind: &Arc<dyn Strategy>,
        ns: Option<&str>,
        name: &str,
        opts: &WriteOptions,
        mut change: F,
    ) -> Result<Value, ApiError>
    where
        F: FnMut(Value) -> Result<Value, ApiError> + Send,
    {
        let info = kind.info().clone();
        let p = paths(&info)?.clone();
        let w: Written = self
            .update_with(kind, ns, name, "", opts, |cur| {
                let scale = change(scale_of(&info, cur)?)?;
                let rv = scale.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or_default();
                let cur_rv = cur.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or_default();
                if !rv.is_empty() && rv != cur_rv {
                    return Err(ApiError::optimistic_lock(&info.group, &info.plural, name));
                }
                let replicas = match scale.pointer("/spec/replicas") {
                    None | Some(Value::Null) => 0,
                    Some(v) => v.as_i64().ok_or_else(|| {
                        ApiError::BadRequest("json: cannot unmarshal into Go struct field ScaleSpec.spec.replicas of type int32".into())
                    })?,
                };
                if replicas < 0 {
                    return Err(ApiError::invalid("autoscaling", "Scale", name, vec![FieldError::invalid(
                        "spec.replicas", json!(replicas), "must be greater than or equal to 0")]));
                }
                let mut new = cur.clone();
                let ptr = pointer(&p.spec_replicas);
                set_pointer(&mut new, &ptr, json!(replicas));
                if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                }
                Ok(new)
            })
            .await?;
        scale_of(&info, &w.object)
    }

    pub async fn patch_scale(
        &self,
        kind: &Arc<dyn Strategy>,
        ns: Option<&str>,
        name: &str,
        patch: Value,
        pt: PatchType,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let manager = opts.field_manager.clone();
        self.update_scale(kind, ns, name, opts, |scale| {
            if pt != PatchType::Apply {
                return apply_patch(&scale, pt, &patch, "autoscaling", "Scale");
            }
            // A Scale is a view, not stored: its managedFields would go nowhere, so an apply here
            // merges the configuration with force and keeps no ownership of its own.
            let who = ManagerInfo {
                manager: &manager,
                api_version: "autoscaling/v1",
                subresource: "scale",
                reset_fields: &[],
                now: jiff::Timestamp::now(),
            };
            let mut out = skiff_k8s_core::apply::apply(Some(&scale), &patch, None, &who, true)?;
            if let Some(m) = out.get_mut("metadata").and_then(Value::as_object_mut) {
                m.shift_remove("managedFields");
            }
            Ok(out)
        })
        .await
    }
}

fn set_pointer(v: &mut Value, ptr: &str, new: Value) {
    let mut cur = v;
    let parts: Vec<&str> = ptr.trim_start_matches('/').split('/').collect();
    for (i, p) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Some(o) = cur.as_object_mut() else { return };
        if i + 1 == parts.len() {
            o.insert((*p).to_string(), new);
            return;
        }
        cur = o.entry((*p).to_string()).or_insert_with(|| json!({}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_and_set() {
        assert_eq!(pointer(".spec.replicas"), "/spec/replicas");
        assert_eq!(pointer("/spec/replicas"), "/spec/replicas");
        let mut v = json!({});
        set_pointer(&mut v, "/spec/replicas", json!(3));
        assert_eq!(v, json!({"spec": {"replicas": 3}}));
    }
}
