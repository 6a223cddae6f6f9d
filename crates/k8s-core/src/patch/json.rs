//! RFC 6902 JSON patch (`application/json-patch+json`), applied atomically by the `json-patch` crate.
//!
//! Error mapping as kube-apiserver: a body that is not a list of objects is 400, more than 10,000
//! operations is 413, and an operation that fails (bad path, failed `test`, unknown `op`) is a 422
//! `Invalid` with upstream's fixed message ([`ApiError::PatchRejected`]).

use serde_json::Value;

use super::go_json_type;
use crate::status::ApiError;

/// `maxJSONPatchOperations` in kube-apiserver.
pub const MAX_OPERATIONS: usize = 10_000;

/// Applies `patch` to a copy of `doc`.
pub fn apply(doc: &Value, patch: &Value) -> Result<Value, ApiError> {
    let ops = match patch {
        Value::Array(ops) => ops,
        other => {
            return Err(ApiError::BadRequest(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
                go_json_type(other)
            )));
        }
    };
    if let Some(bad) = ops.iter().find(|op| !op.is_object()) {
        return Err(ApiError::BadRequest(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
            go_json_type(bad)
        )));
    }
    if ops.len() > MAX_OPERATIONS {
        return Err(ApiError::RequestEntityTooLarge(format!(
            "The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {}",
            ops.len()
        )));
    }
    // Upstream decodes operations lazily, so a malformed one fails at apply time: 422, not 400.
    let parsed: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| ApiError::PatchRejected(e.to_string()))?;
    let mut out = doc.clone();
    json_patch::patch(&mut out, &parsed.0).map_err(|e| ApiError::PatchRejected(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operations_table() {
        let doc =
            json!({"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 1, "list": [1, 2]}});
        let cases = [
            (
                json!([{"op": "replace", "path": "/spec/replicas", "value": 3}]),
                json!(3),
                "/spec/replicas",
            ),
            (
                json!([{"op": "add", "path": "/metadata/labels/b", "value": "2"}]),
                json!("2"),
                "/metadata/labels/b",
            ),
            (
                json!([{"op": "remove", "path": "/metadata/labels/a"}]),
                Value::Null,
                "/metadata/labels/a",
            ),
            (
                json!([{"op": "add", "path": "/spec/list/-", "value": 3}]),
                json!(3),
                "/spec/list/2",
            ),
            (
                json!([{"op": "copy", "from": "/spec/replicas", "path": "/spec/copy"}]),
                json!(1),
                "/spec/copy",
            ),
            (
                json!([{"op": "move", "from": "/spec/replicas", "path": "/spec/moved"}]),
                json!(1),
                "/spec/moved",
            ),
            (
                json!([{"op": "test", "path": "/spec/replicas", "value": 1}, {"op": "replace", "path": "/spec/replicas", "value": 5}]),
                json!(5),
                "/spec/replicas",
            ),
            (
                json!([{"op": "add", "path": "/metadata/labels/x~1y", "value": "z"}]),
                json!("z"),
                "/metadata/labels/x~1y",
            ),
        ];
        for (patch, want, ptr) in cases {
            let out = apply(&doc, &patch).unwrap_or_else(|e| panic!("{patch}: {e}"));
            assert_eq!(
                out.pointer(ptr).cloned().unwrap_or(Value::Null),
                want,
                "{patch}"
            );
        }
    }

    #[test]
    fn failures_map_like_kube_apiserver() {
        let doc = json!({"spec": {"replicas": 1}});
        let e = apply(&doc, &json!({"op": "add"})).unwrap_err();
        assert_eq!(e.code(), 400);
        assert_eq!(
            e.message(),
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        );
        assert_eq!(apply(&doc, &json!(["x"])).unwrap_err().code(), 400);
        for bad in [
            json!([{"op": "test", "path": "/spec/replicas", "value": 2}]),
            json!([{"op": "remove", "path": "/spec/missing"}]),
            json!([{"op": "frobnicate", "path": "/spec"}]),
            json!([{"op": "replace", "path": "/spec/replicas/x/y", "value": 1}]),
        ] {
            let e = apply(&doc, &bad).unwrap_err();
            assert_eq!(e.code(), 422, "{bad}");
            let s = e.to_status();
            assert_eq!(s["reason"], "Invalid");
            assert_eq!(
                s["message"],
                "the server rejected our request due to an error in our request"
            );
            assert_eq!(s["details"], json!({}));
        }
        let many: Vec<Value> = (0..=MAX_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "/spec/replicas", "value": 1}))
            .collect();
        let e = apply(&doc, &Value::Array(many)).unwrap_err();
        assert_eq!(e.code(), 413);
        assert_eq!(
            e.message(),
            "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"
        );
    }

    #[test]
    fn failed_patch_leaves_original_untouched() {
        let doc = json!({"a": 1});
        let patch = json!([{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 9}]);
        assert!(apply(&doc, &patch).is_err());
        assert_eq!(doc, json!({"a": 1}));
    }
}
