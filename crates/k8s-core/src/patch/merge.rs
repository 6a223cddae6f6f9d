//! RFC 7396 JSON merge patch (`application/merge-patch+json`): objects merge key by key, `null`
//! deletes, anything else (lists included) replaces. This is what custom resources get in place of
//! strategic merge patch.

use serde_json::Value;

use crate::status::ApiError;

/// Applies `patch` to a copy of `doc`. A patch that is not a JSON object is refused with 400
/// `Invalid JSON Patch`, as evanphx/json-patch (and so kube-apiserver) does.
pub fn apply(doc: &Value, patch: &Value) -> Result<Value, ApiError> {
    if !patch.is_object() {
        return Err(ApiError::BadRequest("Invalid JSON Patch".into()));
    }
    let mut out = doc.clone();
    json_patch::merge(&mut out, patch);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc7396_examples() {
        // The table from RFC 7396 appendix A, where the patch is an object.
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (doc, patch, want) in cases {
            assert_eq!(apply(&doc, &patch).unwrap(), want, "{doc} + {patch}");
        }
    }

    #[test]
    fn non_object_patch_is_bad_request() {
        for p in [json!([1]), json!("x"), json!(null)] {
            let e = apply(&json!({}), &p).unwrap_err();
            assert_eq!(
                (e.code(), e.message().as_str()),
                (400, "Invalid JSON Patch")
            );
        }
    }
}
