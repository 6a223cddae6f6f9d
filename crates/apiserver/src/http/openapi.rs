//! `/openapi/v2` and `/openapi/v3[/apis/<g>/<v>]`: the documents come from `crate::openapi`
//! (owned by the kinds work); until that module exists these paths answer 404. kubectl asks for
//! protobuf first: a request that accepts only protobuf gets 406, JSON is always served.

use http::{HeaderMap, header};
use serde_json::Value;
use skiff_k8s_core::status::ApiError;

use super::{Reply, not_found_path};

/// True when the Accept header allows JSON (or says nothing / `*/*`).
pub fn accepts_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    accept.split(',').any(|mt| {
        let t = mt.split(';').next().unwrap_or_default().trim();
        t.is_empty() || t == "*/*" || t == "application/*" || t == "application/json"
    })
}

/// Where the documents come from; `None` until `crate::openapi` lands.
fn document(parts: &[&str]) -> Option<Value> {
    let _ = parts;
    None
}

pub(crate) fn serve(parts: &[&str], headers: &HeaderMap) -> Result<Reply, ApiError> {
    if !accepts_json(headers) {
        return Err(ApiError::NotAcceptable {
            accepted: vec!["application/json".into()],
        });
    }
    match document(parts) {
        Some(doc) => Ok(Reply::json(http::StatusCode::OK, &doc)),
        None => Err(not_found_path()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_only_is_not_acceptable() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
                .parse()
                .unwrap(),
        );
        assert!(!accepts_json(&h));
        h.insert(
            header::ACCEPT,
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf, application/json"
                .parse()
                .unwrap(),
        );
        assert!(accepts_json(&h));
        assert!(accepts_json(&HeaderMap::new()));
    }
}
