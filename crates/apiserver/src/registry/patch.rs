//! PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch and
//! server-side apply. Strategic merge and apply are written here until `skiff-k8s-core` has them:
//! lists of objects merge by their upstream merge key (`name`, `containerPort`, `port`, `type`,
//! `mountPath`, `ip`, `devicePath`), other lists are replaced; `$patch`, `$retainKeys`,
//! `$deleteFromPrimitiveList` and `$setElementOrder` directives are honoured or dropped.

use std::sync::Arc;

use serde_json::{Map, Value};
use skiff_k8s_core::status::ApiError;

use super::meta::{self, meta_mut, meta_str};
use super::strategy::Strategy;
use super::write::{WriteOptions, Written};
use super::{Registry, api_version};

/// The PATCH content types kube-apiserver accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    #[doc(alias = "application/json-patch+json")]
    Json,
    #[doc(alias = "application/merge-patch+json")]
    Merge,
    #[doc(alias = "application/strategic-merge-patch+json")]
    Strategic,
    #[doc(alias = "application/apply-patch+yaml")]
    Apply,
}

impl PatchType {
    /// From a Content-Type header (parameters ignored).
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or_default().trim() {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }

    pub const ACCEPTED: [&'static str; 4] = [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/apply-patch+yaml",
        "application/strategic-merge-patch+json",
    ];
}

/// Applies a non-apply patch to `current`.
pub fn apply_patch(current: &Value, patch: &Value, pt: PatchType) -> Result<Value, ApiError> {
    let mut doc = current.clone();
    match pt {
        PatchType::Json => {
            let p: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))?;
            json_patch::patch(&mut doc, &p).map_err(|e| ApiError::Invalid {
                group: String::new(),
                kind: String::new(),
                name: String::new(),
                causes: vec![skiff_k8s_core::status::FieldError::invalid(
                    "",
                    Value::Null,
                    e.to_string(),
                )],
            })?;
        }
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(ApiError::BadRequest(
                    "json: cannot unmarshal non-object into Go value of type map[string]interface {}"
                        .into(),
                ));
            }
            json_patch::merge(&mut doc, patch);
        }
        PatchType::Strategic | PatchType::Apply => {
            if !patch.is_object() {
                return Err(ApiError::BadRequest(
                    "json: cannot unmarshal non-object into Go value of type map[string]interface {}"
                        .into(),
                ));
            }
            strategic_merge(&mut doc, patch);
        }
    }
    Ok(doc)
}

const MERGE_KEYS: [&str; 7] = [
    "name",
    "containerPort",
    "port",
    "type",
    "mountPath",
    "ip",
    "devicePath",
];

fn merge_key(items: &[Value]) -> Option<&'static str> {
    MERGE_KEYS.into_iter().find(|k| {
        !items.is_empty()
            && items
                .iter()
                .all(|i| i.get(*k).is_some_and(|v| !v.is_null()))
    })
}

/// Strategic merge of `patch` into `doc`.
pub fn strategic_merge(doc: &mut Value, patch: &Value) {
    let (Some(d), Some(p)) = (doc.as_object_mut(), patch.as_object()) else {
        *doc = strip_directives(patch);
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        *doc = strip_directives(patch);
        return;
    }
    let retain: Option<Vec<String>> = p.get("$retainKeys").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect()
    });
    for (k, pv) in p {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(cur)), Some(del)) = (d.get_mut(field), pv.as_array()) {
                cur.retain(|x| !del.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        match pv {
            Value::Null => {
                d.remove(k);
            }
            Value::Object(po) => {
                if po.get("$patch").and_then(Value::as_str) == Some("delete") {
                    d.remove(k);
                    continue;
                }
                match d.get_mut(k) {
                    Some(existing @ Value::Object(_)) => strategic_merge(existing, pv),
                    _ => {
                        d.insert(k.clone(), strip_directives(pv));
                    }
                }
            }
            Value::Array(pa) => {
                let merged = match d.get(k) {
                    Some(Value::Array(ca)) => merge_lists(ca, pa),
                    _ => strip_directives(pv),
                };
                d.insert(k.clone(), merged);
            }
            other => {
                d.insert(k.clone(), other.clone());
            }
        }
    }
    if let Some(keep) = retain {
        d.retain(|k, _| keep.contains(k));
    }
}

fn merge_lists(cur: &[Value], patch: &[Value]) -> Value {
    let replace = patch
        .iter()
        .any(|p| p.get("$patch").and_then(Value::as_str) == Some("replace"));
    if replace {
        return Value::Array(
            patch
                .iter()
                .filter(|p| p.get("$patch").is_none())
                .map(strip_directives)
                .collect(),
        );
    }
    let Some(key) = merge_key(cur).or_else(|| merge_key(patch)) else {
        return Value::Array(patch.iter().map(strip_directives).collect());
    };
    let mut out: Vec<Value> = cur.to_vec();
    for p in patch {
        let Some(id) = p.get(key) else { continue };
        let pos = out.iter().position(|c| c.get(key) == Some(id));
        if p.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(i) = pos {
                out.remove(i);
            }
            continue;
        }
        match pos {
            Some(i) => strategic_merge(&mut out[i], p),
            None => out.push(strip_directives(p)),
        }
    }
    Value::Array(out)
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut o = Map::new();
            for (k, x) in m {
                if !k.starts_with('$') {
                    o.insert(k.clone(), strip_directives(x));
                }
            }
            Value::Object(o)
        }
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

impl Registry {
    /// PATCH on the object or a subresource (`""`, `"status"`). Apply patches create a missing
    /// object (server-side apply), and record the manager's `Apply` entry in managedFields.
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
            // Without conflict tracking every apply wins, as with force=true.
            let _ = force;
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
            if self.get_kv(info, namespace, name).await?.is_none() && subresource.is_empty() {
                let mut obj = patch.clone();
                meta_mut(&mut obj).insert("name".into(), name.into());
                return self.create(kind, namespace, obj, &apply_opts).await;
            }
            return self
                .apply_update(kind, namespace, name, patch, subresource, &apply_opts)
                .await;
        }
        self.update_with(kind, namespace, name, subresource, opts, |cur| {
            let mut new = apply_patch(cur, &patch, pt)?;
            // A patch may not move the object; its resourceVersion, when set, is a precondition.
            meta_mut(&mut new).insert("name".into(), name.into());
            if meta_str(&patch, "resourceVersion").is_empty() {
                meta_mut(&mut new).remove("resourceVersion");
            }
            Ok(new)
        })
        .await
    }

    /// Server-side apply onto an existing object: the applied configuration is merged in and
    /// the manager's `Apply` entry records the fields it set.
    async fn apply_update(
        &self,
        kind: &Arc<dyn Strategy>,
        namespace: Option<&str>,
        name: &str,
        patch: Value,
        subresource: &str,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let manager = opts.field_manager.clone();
        let av = api_version(kind.info());
        self.update_with(kind, namespace, name, subresource, opts, |cur| {
            let mut new = apply_patch(cur, &patch, PatchType::Apply)?;
            let m = meta_mut(&mut new);
            m.insert("name".into(), name.into());
            m.remove("resourceVersion");
            set_apply_entry(&mut new, &patch, &manager, &av);
            Ok(new)
        })
        .await
    }
}

fn set_apply_entry(obj: &mut Value, applied: &Value, manager: &str, av: &str) {
    let fields = meta::fields_v1(applied);
    let entry = serde_json::json!({
        "manager": manager,
        "operation": "Apply",
        "apiVersion": av,
        "time": meta::now_rfc3339(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    let m = meta_mut(obj);
    let mut list: Vec<Value> = m
        .get("managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    list.retain(|e| {
        !(e.get("manager").and_then(Value::as_str) == Some(manager)
            && e.get("operation").and_then(Value::as_str) == Some("Apply"))
    });
    list.push(entry);
    m.insert("managedFields".into(), Value::Array(list));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let mut doc = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let patch = json!({"spec": {"containers": [{"name": "b", "image": "z"}, {"name": "c", "image": "w"}]}});
        strategic_merge(&mut doc, &patch);
        assert_eq!(
            doc,
            json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "z"}, {"name": "c", "image": "w"}]}})
        );
    }

    #[test]
    fn strategic_merge_directives() {
        let mut doc =
            json!({"a": {"b": 1, "c": 2}, "l": [{"name": "x"}, {"name": "y"}], "f": ["p", "q"]});
        let patch = json!({"a": {"$patch": "replace", "d": 3}, "l": [{"name": "x", "$patch": "delete"}],
            "$deleteFromPrimitiveList/f": ["p"], "$setElementOrder/l": [{"name": "y"}]});
        strategic_merge(&mut doc, &patch);
        assert_eq!(
            doc,
            json!({"a": {"d": 3}, "l": [{"name": "y"}], "f": ["q"]})
        );
    }

    #[test]
    fn json_and_merge_patches() {
        let cur = json!({"data": {"a": "1", "b": "2"}});
        let out = apply_patch(
            &cur,
            &json!({"data": {"a": null, "c": "3"}}),
            PatchType::Merge,
        )
        .unwrap();
        assert_eq!(out, json!({"data": {"b": "2", "c": "3"}}));
        let out = apply_patch(
            &cur,
            &json!([{"op": "replace", "path": "/data/a", "value": "9"}]),
            PatchType::Json,
        )
        .unwrap();
        assert_eq!(out["data"]["a"], "9");
        assert!(
            apply_patch(
                &cur,
                &json!([{"op": "test", "path": "/data/a", "value": "x"}]),
                PatchType::Json
            )
            .is_err()
        );
        assert!(apply_patch(&cur, &json!({"bad": true}), PatchType::Json).is_err());
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
    }
}
