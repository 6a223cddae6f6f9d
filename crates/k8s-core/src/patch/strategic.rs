//! Strategic merge patch (`application/strategic-merge-patch+json`) as kube-apiserver applies it
//! (apimachinery `strategicpatch.StrategicMergeMapPatchUsingLookupPatchMeta` with
//! `MergeParallelList` and `IgnoreUnmatchedNulls`).
//!
//! Maps merge key by key and `null` deletes. Lists tagged in [`crate::patch_meta`] merge: object
//! lists by their merge key, scalar lists as sets; untagged lists are replaced. Directives:
//! `$patch: replace|delete` (in a map or as a list element; `merge` is refused like upstream),
//! `$retainKeys`, `$deleteFromPrimitiveList/<field>`, `$setElementOrder/<field>`.
//!
//! Order follows upstream too: items named in the patch keep the patch's order, items only on the
//! server keep theirs, and the two are interleaved by server position — so an item new to the list
//! lands first, the quirk kubectl users see when they add an env var with `kubectl patch`.

use serde_json::{Map, Value};

use crate::patch_meta::{EMPTY, Schema, Strategy};
use crate::status::ApiError;

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";

/// Upstream sorts strategic-merge failures into three answers (`interpretStrategicMergePatchError`).
#[derive(Debug)]
enum SmpError {
    /// Malformed directives: 400.
    BadRequest(&'static str),
    /// Lists of lists: 422 with the generic message.
    Unprocessable(String),
    /// Everything else (missing merge key, unknown `$patch` value): upstream lets it surface as 500.
    Internal(String),
}

impl From<SmpError> for ApiError {
    fn from(e: SmpError) -> Self {
        match e {
            SmpError::BadRequest(m) => ApiError::BadRequest(m.into()),
            SmpError::Unprocessable(m) => ApiError::PatchRejected(m),
            SmpError::Internal(m) => ApiError::InternalError(m),
        }
    }
}

type Result<T> = std::result::Result<T, SmpError>;

/// Applies a strategic merge `patch` to a copy of `original`, using `schema` (from
/// [`crate::patch_meta::schema_for`]) for list strategies.
#[doc(alias = "StrategicMergeMapPatch")]
pub fn apply(
    original: &Value,
    patch: &Value,
    schema: &'static Schema,
) -> std::result::Result<Value, ApiError> {
    let Value::Object(p) = patch else {
        return Err(ApiError::BadRequest(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            super::go_json_type(patch)
        )));
    };
    let o = match original {
        Value::Object(o) => o.clone(),
        _ => Map::new(),
    };
    Ok(Value::Object(merge_map(o, p.clone(), schema)?))
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    schema: &'static Schema,
) -> Result<Map<String, Value>> {
    if let Some(d) = patch.shift_remove(DIRECTIVE) {
        return match d.as_str() {
            // The patch's content is the new map (minus its own directives and nulls).
            Some("replace") => merge_map(Map::new(), patch, schema),
            Some("delete") => Ok(Map::new()),
            _ => Err(SmpError::Internal(format!(
                "unknown patch type: {} in map: {}",
                display(&d),
                Value::Object(patch)
            ))),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;
    apply_set_element_order(&mut original, &mut patch, schema)?;

    for (k, pv) in patch {
        if let Some(field) = k.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            let Value::Array(to_delete) = pv else {
                return Err(SmpError::BadRequest(
                    "invalid patch format of primitive list",
                ));
            };
            if let Some(Value::Array(list)) = original.get_mut(field) {
                list.retain(|v| !to_delete.contains(v));
            }
            continue;
        }
        if pv.is_null() {
            original.shift_remove(&k);
            continue;
        }
        let (strategy, sub) = schema.field(&k);
        let sub = sub.unwrap_or(&EMPTY);
        let merged = match (original.shift_remove_entry(&k), pv) {
            (Some((_, Value::Object(o))), Value::Object(p)) if strategy != Strategy::Replace => {
                Some(Value::Object(merge_map(o, p, sub)?))
            }
            (Some((_, Value::Array(o))), Value::Array(p)) if is_merge(strategy) => {
                Some(Value::Array(merge_list(o, p, strategy, sub)?))
            }
            // Absent, of another type, or replaced by strategy: the patch value, cleaned.
            (_, pv) => clean(pv, strategy, sub)?,
        };
        if let Some(v) = merged {
            original.insert(k, v);
        }
    }
    Ok(original)
}

fn is_merge(s: Strategy) -> bool {
    matches!(s, Strategy::MergeByKey { .. } | Strategy::MergePrimitive)
}

/// A patch value taken as-is for a field the original lacks: its directives are applied against
/// nothing and its nulls dropped. `None` when it deletes itself (`{"$patch": "delete"}`).
fn clean(v: Value, strategy: Strategy, schema: &'static Schema) -> Result<Option<Value>> {
    Ok(match v {
        Value::Object(p) => {
            if p.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                return Ok(None);
            }
            Some(Value::Object(merge_map(Map::new(), p, schema)?))
        }
        Value::Array(p) if is_merge(strategy) => {
            Some(Value::Array(merge_list(Vec::new(), p, strategy, schema)?))
        }
        Value::Array(p) => {
            let mut out = Vec::with_capacity(p.len());
            for e in p {
                if let Some(e) = clean(e, Strategy::Default, schema)? {
                    out.push(e);
                }
            }
            Some(Value::Array(out))
        }
        other => Some(other),
    })
}

/// `$retainKeys`: keys of the original not listed are dropped; the patch may only set listed keys.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<()> {
    let Some(list) = patch.shift_remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(list) = list else {
        return Err(SmpError::BadRequest("invalid patch format of retainKeys"));
    };
    let keep = |k: &str| list.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !keep(k) {
            return Err(SmpError::BadRequest("invalid patch format of retainKeys"));
        }
    }
    original.retain(|k, _| keep(k));
    Ok(())
}

/// `$setElementOrder/<field>`: merge the field's list now, then order it as the directive says.
fn apply_set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    schema: &'static Schema,
) -> Result<()> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for key in keys {
        let order = patch.shift_remove(&key).unwrap_or(Value::Null);
        let Value::Array(order) = order else {
            return Err(SmpError::BadRequest(
                "invalid patch format of setElementOrder list",
            ));
        };
        let field = &key[SET_ELEMENT_ORDER.len()..];
        if field.is_empty() {
            return Err(SmpError::BadRequest(
                "invalid patch format of setElementOrder list",
            ));
        }
        let (strategy, sub) = schema.field(field);
        let sub = sub.unwrap_or(&EMPTY);
        let merge_key = match strategy {
            Strategy::MergeByKey { key, .. } => Some(key),
            _ => None,
        };
        let orig = match original.get(field) {
            Some(Value::Array(a)) => Some(a.clone()),
            Some(_) => return Err(SmpError::Internal(format!("expected a list at {field}"))),
            None => None,
        };
        let pl = match patch.shift_remove(field) {
            Some(Value::Array(a)) => Some(a),
            Some(_) => {
                return Err(SmpError::BadRequest(
                    "invalid patch format of setElementOrder list",
                ));
            }
            None => None,
        };
        if let Some(pl) = &pl {
            validate_order(pl, &order, merge_key)?;
        }
        let orig_for_order = orig.clone().unwrap_or_default();
        let merged = match (orig, pl) {
            (Some(o), None) => o,
            (None, Some(p)) => match clean(Value::Array(p), strategy, sub)? {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            },
            (Some(o), Some(p)) if is_merge(strategy) => merge_list(o, p, strategy, sub)?,
            (Some(_), Some(p)) => match clean(Value::Array(p), strategy, sub)? {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            },
            (None, None) => continue,
        };
        let (in_order, server_only) = partition(merged, &order, merge_key)?;
        let both = normalize_order(in_order, server_only, &order, &orig_for_order, merge_key)?;
        original.insert(field.to_string(), Value::Array(both));
    }
    Ok(())
}

/// The patch list's items (deletions aside) must appear in the `$setElementOrder` list in order.
fn validate_order(patch: &[Value], order: &[Value], key: Option<&str>) -> Result<()> {
    let items: Vec<&Value> = patch
        .iter()
        .filter(|v| v.get(DIRECTIVE).is_none())
        .collect();
    let (mut pi, mut oi) = (0, 0);
    while pi < items.len() && oi < order.len() {
        if same_item(items[pi], &order[oi], key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < items.len() {
        return Err(SmpError::Internal(format!(
            "the order in patch list:\n{}\n doesn't match $setElementOrder list:\n{}",
            Value::Array(patch.to_vec()),
            Value::Array(order.to_vec())
        )));
    }
    Ok(())
}

fn key_of<'a>(v: &'a Value, key: &str) -> Result<&'a Value> {
    v.get(key).ok_or_else(|| {
        SmpError::Internal(format!(
            "map: {} does not contain declared merge key: {key}",
            display(v)
        ))
    })
}

fn same_item(a: &Value, b: &Value, key: Option<&str>) -> Result<bool> {
    Ok(match key {
        None => a == b,
        Some(k) => key_of(a, k)? == key_of(b, k)?,
    })
}

/// Position of `item` in `list` (by merge key for maps), as upstream's `index`.
fn index_in(list: &[Value], item: &Value, key: Option<&str>) -> Option<usize> {
    match key {
        None => list.iter().position(|v| v == item),
        Some(k) => {
            let want = item.get(k)?;
            list.iter().position(|v| v.get(k) == Some(want))
        }
    }
}

fn partition(
    merged: Vec<Value>,
    by: &[Value],
    key: Option<&str>,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let (mut inside, mut outside) = (Vec::new(), Vec::new());
    for v in merged {
        if let Some(k) = key {
            key_of(&v, k)?;
        }
        if index_in(by, &v, key).is_some() {
            inside.push(v);
        } else {
            outside.push(v);
        }
    }
    Ok((inside, outside))
}

/// Sorts `patch_items` by `patch_order` and `server_only` by `server_order`, then interleaves them
/// (`normalizeElementOrder` + `mergeSortedSlice`).
fn normalize_order(
    mut patch_items: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Result<Vec<Value>> {
    // Upstream drops items the order list marks for deletion.
    if key.is_some() {
        let deleted: Vec<&Value> = patch_order
            .iter()
            .filter(|v| v.get(DIRECTIVE).and_then(Value::as_str) == Some("delete"))
            .collect();
        if !deleted.is_empty() {
            let k = key.unwrap_or_default();
            patch_items.retain(|v| !deleted.iter().any(|d| d.get(k) == v.get(k)));
        }
    }
    patch_items.sort_by_key(|v| index_in(patch_order, v, key).unwrap_or(usize::MAX));
    server_only.sort_by_key(|v| index_in(server_order, v, key).unwrap_or(usize::MAX));
    let (left, right) = (server_only, patch_items);
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut li, mut ri) = (left.into_iter().peekable(), right.into_iter().peekable());
    loop {
        match (li.peek(), ri.peek()) {
            (None, None) => break,
            (Some(_), None) => out.extend(li.by_ref()),
            (None, Some(_)) => out.extend(ri.by_ref()),
            (Some(l), Some(r)) => {
                let take_left = matches!(
                    (index_in(server_order, l, key), index_in(server_order, r, key)),
                    (Some(a), Some(b)) if a < b
                );
                let next = if take_left { li.next() } else { ri.next() };
                out.extend(next);
            }
        }
    }
    Ok(out)
}

/// Merges two lists of a `merge` field (`mergeSlice`).
fn merge_list(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    strategy: Strategy,
    schema: &'static Schema,
) -> Result<Vec<Value>> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let all = original.iter().chain(patch.iter());
    if all.clone().any(Value::is_array) {
        return Err(SmpError::Unprocessable(
            "lists of lists are not supported".into(),
        ));
    }
    let maps = all.clone().filter(|v| v.is_object()).count();
    let n = original.len() + patch.len();
    if maps != 0 && maps != n {
        return Err(SmpError::Internal(
            "mismatched element types in list".into(),
        ));
    }
    let patch_order = patch.clone();
    if maps == 0 {
        // A set of scalars: union, keeping first occurrences.
        let mut merged: Vec<Value> = Vec::with_capacity(n);
        for v in original.iter().chain(patch.iter()) {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        let (in_patch, server_only) = partition(merged, &patch_order, None)?;
        return normalize_order(in_patch, server_only, &patch_order, &original, None);
    }
    let Strategy::MergeByKey { key, .. } = strategy else {
        return Err(SmpError::Internal(format!(
            "cannot merge lists without merge key for {}",
            schema.name
        )));
    };
    // Special elements first: `$patch: delete` removes by key, `$patch: replace` discards the server list.
    let mut items = Vec::with_capacity(patch.len());
    let mut replace = false;
    for v in patch {
        match v.get(DIRECTIVE) {
            None => items.push(v),
            Some(d) => match d.as_str() {
                Some("delete") => {
                    let want = key_of(&v, key)?.clone();
                    original.retain(|o| o.get(key) != Some(&want));
                }
                Some("replace") => replace = true,
                Some("merge") => {
                    return Err(SmpError::Internal(
                        "merging lists cannot yet be specified in the patch".into(),
                    ));
                }
                _ => {
                    return Err(SmpError::Internal(format!(
                        "unknown patch type: {} in map: {}",
                        display(d),
                        display(&v)
                    )));
                }
            },
        }
    }
    if replace {
        let mut out = Vec::with_capacity(items.len());
        for v in items {
            if let Some(v) = clean(v, Strategy::Default, schema)? {
                out.push(v);
            }
        }
        return Ok(out);
    }
    let server_order = original.clone();
    for v in items {
        let want = key_of(&v, key)?.clone();
        let Value::Object(p) = v else { continue };
        match original.iter().position(|o| o.get(key) == Some(&want)) {
            Some(i) => {
                let Value::Object(o) = std::mem::take(&mut original[i]) else {
                    return Err(SmpError::Internal("list element is not a map".into()));
                };
                original[i] = Value::Object(merge_map(o, p, schema)?);
            }
            None => original.push(Value::Object(merge_map(Map::new(), p, schema)?)),
        }
    }
    let (in_patch, server_only) = partition(original, &patch_order, Some(key))?;
    normalize_order(
        in_patch,
        server_only,
        &patch_order,
        &server_order,
        Some(key),
    )
}

/// Renders a value the way Go's `%v` would for a scalar (strings unquoted), JSON otherwise.
fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch_meta::schema_for;
    use serde_json::json;

    fn pod(original: Value, patch: Value) -> Value {
        apply(&original, &patch, schema_for("", "Pod").unwrap())
            .unwrap_or_else(|e| panic!("{patch}: {e}"))
    }
    fn pod_err(original: Value, patch: Value) -> ApiError {
        apply(&original, &patch, schema_for("", "Pod").unwrap()).unwrap_err()
    }

    #[test]
    fn maps_merge_and_null_deletes() {
        let got = pod(
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"nodeName": "n"}}),
            json!({"metadata": {"labels": {"a": null, "c": "3"}}, "spec": {"hostname": "h", "missing": null}}),
        );
        assert_eq!(
            got,
            json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"nodeName": "n", "hostname": "h"}})
        );
    }

    #[test]
    fn containers_merge_by_name_new_items_first() {
        let orig = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"}
        ]}});
        let got = pod(
            orig.clone(),
            json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}}),
        );
        assert_eq!(
            got["spec"]["containers"],
            json!([
                {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
                {"name": "b", "image": "b:2"}
            ])
        );
        // A new element is placed before the server-only ones (upstream's mergeSortedSlice).
        let got = pod(
            orig.clone(),
            json!({"spec": {"containers": [{"name": "c", "image": "c:1"}]}}),
        );
        let names: Vec<&str> = got["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["c", "a", "b"]);
        // Nested env merges by name too.
        let got = pod(
            orig,
            json!({"spec": {"containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "9"}]}]}}),
        );
        assert_eq!(
            got["spec"]["containers"][0]["env"],
            json!([{"name": "Y", "value": "2"}, {"name": "X", "value": "9"}])
        );
    }

    #[test]
    fn atomic_lists_are_replaced() {
        let got = pod(
            json!({"spec": {"tolerations": [{"key": "a"}, {"key": "b"}], "containers": [{"name": "a", "args": ["x", "y"]}]}}),
            json!({"spec": {"tolerations": [{"key": "c"}], "containers": [{"name": "a", "args": ["z"]}]}}),
        );
        assert_eq!(got["spec"]["tolerations"], json!([{"key": "c"}]));
        assert_eq!(got["spec"]["containers"][0]["args"], json!(["z"]));
    }

    #[test]
    fn list_directives() {
        let orig = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}});
        let got = pod(
            orig.clone(),
            json!({"spec": {"containers": [{"name": "b", "$patch": "delete"}]}}),
        );
        assert_eq!(
            got["spec"]["containers"],
            json!([{"name": "a"}, {"name": "c"}])
        );
        let got = pod(
            orig.clone(),
            json!({"spec": {"containers": [{"name": "z", "image": "z"}, {"$patch": "replace"}]}}),
        );
        assert_eq!(
            got["spec"]["containers"],
            json!([{"name": "z", "image": "z"}])
        );
        let e = pod_err(
            orig.clone(),
            json!({"spec": {"containers": [{"$patch": "merge"}]}}),
        );
        assert_eq!(e.code(), 500);
        let e = pod_err(
            orig.clone(),
            json!({"spec": {"containers": [{"image": "x"}]}}),
        );
        assert_eq!(
            e.message(),
            "Internal error occurred: map: {\"image\":\"x\"} does not contain declared merge key: name"
        );
        let e = pod_err(
            orig,
            json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}], "volumes": [[1]]}}),
        );
        assert_eq!(e.code(), 422, "lists of lists");
    }

    #[test]
    fn map_directives() {
        let orig = json!({"spec": {"securityContext": {"runAsUser": 1, "fsGroup": 2}}});
        let got = pod(
            orig.clone(),
            json!({"spec": {"securityContext": {"$patch": "replace", "runAsGroup": 3}}}),
        );
        assert_eq!(got["spec"]["securityContext"], json!({"runAsGroup": 3}));
        let got = pod(
            orig.clone(),
            json!({"spec": {"securityContext": {"$patch": "delete"}}}),
        );
        assert_eq!(got["spec"]["securityContext"], json!({}));
        let e = pod_err(
            orig,
            json!({"spec": {"securityContext": {"$patch": "bogus"}}}),
        );
        assert_eq!(e.code(), 500);
        assert!(e.message().contains("unknown patch type: bogus in map"));
    }

    #[test]
    fn retain_keys() {
        let dep = schema_for("apps", "Deployment").unwrap();
        let orig = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let got = apply(
            &orig,
            &json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            dep,
        )
        .unwrap();
        assert_eq!(got["spec"]["strategy"], json!({"type": "Recreate"}));
        let e = apply(
            &orig,
            &json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}),
            dep,
        )
        .unwrap_err();
        assert_eq!(
            (e.code(), e.message()),
            (400, "invalid patch format of retainKeys".to_string())
        );
        let e = apply(
            &orig,
            &json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
            dep,
        )
        .unwrap_err();
        assert_eq!(e.code(), 400);
    }

    #[test]
    fn primitive_lists() {
        let orig = json!({"metadata": {"finalizers": ["a", "b"]}});
        let got = pod(
            orig.clone(),
            json!({"metadata": {"finalizers": ["c", "a"]}}),
        );
        assert_eq!(got["metadata"]["finalizers"], json!(["c", "a", "b"]));
        let got = pod(
            orig.clone(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        );
        assert_eq!(got["metadata"]["finalizers"], json!(["b"]));
        let got = pod(
            orig.clone(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"], "finalizers": ["c"]}}),
        );
        let mut f: Vec<String> =
            serde_json::from_value(got["metadata"]["finalizers"].clone()).unwrap();
        f.sort();
        assert_eq!(f, ["a", "c"]);
        let e = pod_err(
            orig,
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}),
        );
        assert_eq!(e.code(), 400);
    }

    #[test]
    fn set_element_order() {
        let orig = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}});
        let got = pod(
            orig.clone(),
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "c"}, {"name": "b"}, {"name": "a"}],
                "containers": [{"name": "b", "image": "x"}]
            }}),
        );
        assert_eq!(
            got["spec"]["containers"],
            json!([{"name": "c"}, {"name": "b", "image": "x"}, {"name": "a"}])
        );
        let got = pod(
            json!({"metadata": {"finalizers": ["x", "y"]}}),
            json!({"metadata": {
                "$setElementOrder/finalizers": ["y", "z", "x"], "finalizers": ["z"]
            }}),
        );
        assert_eq!(got["metadata"]["finalizers"], json!(["y", "z", "x"]));
        let e = pod_err(
            orig,
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "a"}],
                "containers": [{"name": "b", "image": "x"}]
            }}),
        );
        assert_eq!(e.code(), 500);
    }

    #[test]
    fn absent_fields_take_cleaned_patch_values() {
        let got = pod(
            json!({"spec": {}}),
            json!({"spec": {
                "containers": [{"name": "a", "image": "a", "args": null}, {"name": "gone", "$patch": "delete"}],
                "affinity": {"$patch": "delete"}
            }}),
        );
        assert_eq!(
            got,
            json!({"spec": {"containers": [{"name": "a", "image": "a"}]}})
        );
    }

    #[test]
    fn errors_for_bad_shapes() {
        let e = apply(&json!({}), &json!([1]), schema_for("", "Pod").unwrap()).unwrap_err();
        assert_eq!(e.code(), 400);
        let e = pod_err(
            json!({"metadata": {"finalizers": [["a"]]}}),
            json!({"metadata": {"finalizers": [["b"]]}}),
        );
        assert_eq!(e.code(), 422);
    }

    #[test]
    fn service_ports_and_node_status() {
        let svc = schema_for("", "Service").unwrap();
        let got = apply(
            &json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}),
            &json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
            svc,
        )
        .unwrap();
        assert_eq!(
            got["spec"]["ports"],
            json!([{"port": 80, "targetPort": 9090}, {"port": 443}])
        );
        let node = schema_for("", "Node").unwrap();
        let got = apply(
            &json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "DiskPressure", "status": "False"}]}}),
            &json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            node,
        ).unwrap();
        assert_eq!(
            got["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "False"}])
        );
    }
}
