//! `/openapi/v2` and `/openapi/v3[/apis/<g>/<v>]`: the documents come from `crate::openapi`, built
//! once and served as stored bytes. kubectl asks for protobuf first: a request that accepts only
//! protobuf gets 406, JSON is always served.

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use skiff_k8s_core::status::ApiError;

use super::{Reply, full, not_found_path};
use crate::openapi::{self, Document};

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

/// The document of a path after `/openapi/` (`v2`, `v3`, `v3/apis/apps/v1`).
fn document(parts: &[&str]) -> Option<&'static Document> {
    match parts {
        ["v2"] => Some(openapi::v2()),
        ["v3"] => Some(openapi::v3_index()),
        ["v3", rest @ ..] => openapi::v3(&rest.join("/")),
        _ => None,
    }
}

pub(crate) fn serve(parts: &[&str], headers: &HeaderMap) -> Result<Reply, ApiError> {
    if !accepts_json(headers) {
        return Err(ApiError::NotAcceptable {
            accepted: vec!["application/json".into()],
        });
    }
    match document(parts) {
        Some(doc) => Ok(Reply {
            status: StatusCode::OK,
            body: full(Bytes::from_static(doc.json.as_slice())),
            content_type: "application/json",
            warnings: Vec::new(),
        }),
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
