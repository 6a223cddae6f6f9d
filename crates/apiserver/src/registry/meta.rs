//! Object-metadata helpers shared by every write: timestamps, `generateName`, and `managedFields`
//! bookkeeping for non-apply writes (one `Update` entry per manager, as the field manager keeps).

use rand::Rng;
use serde_json::{Map, Value, json};

/// RFC 3339 with second precision, as `metav1.Time` serializes.
pub fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second())
        .map(|t| t.to_string())
        .unwrap_or_else(|_| now.to_string())
}

/// The 5 random characters `names.SimpleNameGenerator` appends (no vowels, no look-alikes).
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

pub fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    if !obj.get("metadata").is_some_and(Value::is_object)
        && let Some(o) = obj.as_object_mut()
    {
        o.insert("metadata".into(), json!({}));
    }
    #[allow(clippy::expect_used, reason = "metadata was made an object just above")]
    obj.get_mut("metadata")
        .and_then(Value::as_object_mut)
        .expect("metadata is an object")
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    meta(obj)
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

pub fn set_finalizers(obj: &mut Value, f: &[String]) {
    let m = meta_mut(obj);
    if f.is_empty() {
        m.remove("finalizers");
    } else {
        m.insert("finalizers".into(), json!(f));
    }
}

/// The `fieldsV1` set of an object: every leaf and map key as `f:<name>`, lists atomic.
/// Server-owned metadata is left out, as the field manager strips it.
pub fn fields_v1(obj: &Value) -> Value {
    fn walk(v: &Value, top: bool) -> Value {
        let mut out = Map::new();
        if let Value::Object(m) = v {
            if !top {
                out.insert(".".into(), json!({}));
            }
            for (k, child) in m {
                if top && (k == "apiVersion" || k == "kind") {
                    continue;
                }
                let sub = match child {
                    Value::Object(_) => walk(child, false),
                    _ => json!({}),
                };
                out.insert(format!("f:{k}"), sub);
            }
        }
        Value::Object(out)
    }
    let mut stripped = obj.clone();
    if let Some(m) = stripped.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
        ] {
            m.remove(k);
        }
        if m.is_empty() {
            stripped.as_object_mut().map(|o| o.remove("metadata"));
        }
    }
    if let Some(o) = stripped.as_object_mut() {
        o.remove("status");
    }
    walk(&stripped, true)
}

/// Records that `manager` wrote `obj` with `operation` (`Update`/`Apply`), replacing its earlier
/// entry for the same operation; `subresource` is `status`/`scale` or empty.
pub fn track_managed_fields(
    obj: &mut Value,
    manager: &str,
    operation: &str,
    api_version: &str,
    subresource: &str,
) {
    let fields = if subresource == "status" {
        obj.get("status")
            .map(|s| json!({"f:status": fields_v1(&json!({"x": s}))["f:x"].clone()}))
            .unwrap_or_else(|| json!({}))
    } else {
        fields_v1(obj)
    };
    let mut entry = Map::new();
    entry.insert("manager".into(), manager.into());
    entry.insert("operation".into(), operation.into());
    entry.insert("apiVersion".into(), api_version.into());
    entry.insert("time".into(), now_rfc3339().into());
    entry.insert("fieldsType".into(), "FieldsV1".into());
    entry.insert("fieldsV1".into(), fields);
    if !subresource.is_empty() {
        entry.insert("subresource".into(), subresource.into());
    }
    let m = meta_mut(obj);
    let mut list: Vec<Value> = m
        .get("managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    list.retain(|e| {
        !(e.get("manager").and_then(Value::as_str) == Some(manager)
            && e.get("operation").and_then(Value::as_str) == Some(operation)
            && e.get("subresource").and_then(Value::as_str).unwrap_or("") == subresource)
    });
    list.push(Value::Object(entry));
    m.insert("managedFields".into(), Value::Array(list));
}

/// The manager name when the client gave no `fieldManager`: the User-Agent up to its first `/`
/// (`kubectl/v1.32.4 (linux/amd64)` → `kubectl`), as `managedfields.prefixFromUserAgent`.
pub fn manager_from_user_agent(ua: &str) -> String {
    let p = ua.split('/').next().unwrap_or_default();
    if p.is_empty() {
        "unknown".into()
    } else {
        p.chars().take(128).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_suffix_is_five_consonants_or_digits() {
        let s = random_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }

    #[test]
    fn fields_v1_lists_leaves_and_skips_server_fields() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "uid": "u", "labels": {"x": "1"}}, "data": {"k": "v"}});
        assert_eq!(
            fields_v1(&obj),
            json!({"f:metadata": {".": {}, "f:labels": {".": {}, "f:x": {}}}, "f:data": {".": {}, "f:k": {}}})
        );
    }

    #[test]
    fn managed_fields_replace_the_same_managers_entry() {
        let mut obj = json!({"metadata": {"name": "a"}, "data": {"k": "v"}});
        track_managed_fields(&mut obj, "kubectl", "Update", "v1", "");
        track_managed_fields(&mut obj, "kubectl", "Update", "v1", "");
        track_managed_fields(&mut obj, "other", "Update", "v1", "");
        assert_eq!(
            obj["metadata"]["managedFields"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(
            manager_from_user_agent("kubectl/v1.32.4 (linux/amd64)"),
            "kubectl"
        );
    }
}
