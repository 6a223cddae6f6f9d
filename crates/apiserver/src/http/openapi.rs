//! `/openapi/v2` and `/openapi/v3[/apis/<g>/<v>]`: the documents come from `crate::openapi`, built
//! once and served as stored bytes. kubectl asks for protobuf first: a request that accepts only
//! protobuf gets 406, JSON is always served.

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use skiff_k8s_core::status::ApiError;

use super::{Reply, full, not_found_path};
use crate::openapi::custom_resources::CustomDocuments;
use crate::openapi::{self, Document};
use crate::registry::Registry;

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

/// The document of a path after `/openapi/` (`v2`, `v3`, `v3/apis/apps/v1`): the built-in one, or
/// the one including custom resources while CRDs are served.
fn document(parts: &[&str], custom: Option<&CustomDocuments>) -> Option<Bytes> {
    let stat = |d: &'static Document| Bytes::from_static(d.json.as_slice());
    let owned = |d: &Document| Bytes::from(d.json.clone());
    match (parts, custom) {
        (["v2"], Some(c)) => Some(owned(&c.v2)),
        (["v2"], None) => Some(stat(openapi::v2())),
        (["v3"], Some(c)) => Some(owned(&c.v3_index)),
        (["v3"], None) => Some(stat(openapi::v3_index())),
        (["v3", rest @ ..], c) => {
            let path = rest.join("/");
            if let Some(d) = c.and_then(|c| c.v3.get(path.trim_matches('/'))) {
                return Some(owned(d));
            }
            openapi::v3(&path).map(stat)
        }
        _ => None,
    }
}

pub(crate) fn serve(
    parts: &[&str],
    headers: &HeaderMap,
    registry: &Registry,
) -> Result<Reply, ApiError> {
    if !accepts_json(headers) {
        return Err(ApiError::NotAcceptable {
            accepted: vec!["application/json".into()],
        });
    }
    let custom = registry.custom_openapi();
    match document(parts, custom.as_deref()) {
        Some(body) => Ok(Reply {
            status: StatusCode::OK,
            body: full(body),
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
