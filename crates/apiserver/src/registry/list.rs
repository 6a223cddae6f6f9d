//! LIST: selectors, `limit`/`continue` paging consistent at one revision, `resourceVersion` and
//! `resourceVersionMatch` (apiserver `storage/etcd3` `GetList`). A page is decoded, filtered and
//! handed back; callers that serve unbounded lists ask page after page, so memory stays bounded.

use std::sync::Arc;

use base64::Engine;
use serde_json::{Value, json};
use skiff_k8s_core::status::ApiError;

use super::strategy::Strategy;
use super::{Registry, store_error};
use skiff_k8s_core::selector::{FieldSelector, Selector};

/// Upstream text of an expired continue token (410 Expired).
const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// How many keys one store read fetches while filtering.
const SCAN_BATCH: usize = 500;

#[path = "list_stream.rs"]
mod list_stream;
pub use list_stream::ListStream;

/// LIST parameters (`metav1.ListOptions`).
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub label_selector: Selector,
    pub field_selector: FieldSelector,
    /// 0 = no limit.
    pub limit: usize,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

/// One page of a list.
#[derive(Clone, Debug)]
pub struct ListPage {
    pub items: Vec<Value>,
    /// The revision the page was read at (the list's `metadata.resourceVersion`).
    pub resource_version: i64,
    pub continue_token: Option<String>,
}

/// What a continue token carries (same JSON fields as apiserver's `continueToken`).
#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: i64,
    start: String,
}

pub(crate) fn encode_continue(rv: i64, last_relative_key: &str) -> String {
    let t = ContinueToken {
        v: "meta.k8s.io/v1".into(),
        rv,
        start: format!("{last_relative_key}\u{0}"),
    };
    let bytes = serde_json::to_vec(&t).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn decode_continue(token: &str) -> Result<(i64, String), ApiError> {
    let bad = |m: String| ApiError::BadRequest(format!("continue key is not valid: {m}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|e| bad(e.to_string()))?;
    let t: ContinueToken = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if t.v != "meta.k8s.io/v1" {
        return Err(bad(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into(),
        ));
    }
    if t.rv <= 0 {
        return Err(bad(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into(),
        ));
    }
    let start = t.start.trim_end_matches('\u{0}').to_string();
    if start.split('/').any(|seg| seg == ".." || seg == ".") {
        return Err(bad("path traversal attempt detected".into()));
    }
    Ok((t.rv, start))
}

/// Parses a resourceVersion parameter.
pub(crate) fn parse_rv(rv: &str) -> Result<i64, ApiError> {
    rv.parse::<i64>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::BadRequest(format!("invalid resource version {rv:?}")))
}

/// Does `obj` pass both selectors. An unsupported field selector is a 400.
pub(crate) fn matches(
    kind: &Arc<dyn Strategy>,
    obj: &Value,
    labels: &Selector,
    fields: &FieldSelector,
) -> Result<bool, ApiError> {
    if !labels.is_everything() && !labels.matches_object(obj) {
        return Ok(false);
    }
    if fields.is_everything() {
        return Ok(true);
    }
    for f in fields.fields() {
        if f != "metadata.name" && f != "metadata.namespace" && kind.field_value(obj, f).is_none() {
            return Err(ApiError::BadRequest(format!(
                "field label not supported: {f}"
            )));
        }
    }
    Ok(fields.matches(|f| match f {
        "metadata.name" | "metadata.namespace" => obj
            .pointer(&format!("/metadata/{}", &f["metadata.".len()..]))
            .and_then(Value::as_str)
            .map(String::from)
            .or_else(|| Some(String::new())),
        other => kind.field_value(obj, other),
    }))
}

impl Registry {
    /// Where a LIST starts: the revision to read at (None: the latest) and the key to start after,
    /// from `resourceVersion`, `resourceVersionMatch` and `continue` (apiserver `GetList`).
    pub(crate) async fn list_start(
        &self,
        prefix: &str,
        opts: &ListOptions,
    ) -> Result<(Option<i64>, Option<String>), ApiError> {
        if let Some(tok) = opts.continue_token.as_deref().filter(|t| !t.is_empty()) {
            if opts
                .resource_version
                .as_deref()
                .is_some_and(|r| !r.is_empty())
            {
                return Err(ApiError::BadRequest(
                    "specifying resource version is not allowed when using continue".into(),
                ));
            }
            let (rv, start) = decode_continue(tok)?;
            return Ok((Some(rv), Some(format!("{prefix}{start}"))));
        }
        let rv = opts.resource_version.as_deref().unwrap_or("");
        let exact = match opts.resource_version_match.as_deref() {
            None | Some("") => opts.limit > 0 && !rv.is_empty() && rv != "0",
            Some("Exact") => {
                if rv.is_empty() || rv == "0" {
                    return Err(ApiError::BadRequest(
                        "resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"\" or \"0\"".into(),
                    ));
                }
                true
            }
            Some("NotOlderThan") => {
                if rv.is_empty() {
                    return Err(ApiError::BadRequest(
                        "resourceVersionMatch is forbidden unless resourceVersion is provided"
                            .into(),
                    ));
                }
                false
            }
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "invalid resourceVersionMatch {other:?}: must be \"Exact\" or \"NotOlderThan\""
                )));
            }
        };
        if rv.is_empty() || rv == "0" {
            return Ok((None, None));
        }
        let r = parse_rv(rv)?;
        if exact {
            return Ok((Some(r), None));
        }
        let current = self.store().current_revision().await.map_err(store_error)?;
        if r > current {
            return Err(ApiError::Timeout {
                message: format!("Too large resource version: {r}, current: {current}"),
                retry_after_seconds: 1,
            });
        }
        Ok((None, None))
    }

    /// One page of a LIST (every item when `limit` is 0), collected in memory. The HTTP layer
    /// streams instead ([`Registry::list_stream`]); this is for in-process callers.
    pub async fn list(
        &self,
        kind: &Arc<dyn Strategy>,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ListPage, ApiError> {
        let mut stream = self.list_stream(kind, namespace, opts).await?;
        let mut items = Vec::new();
        while let Some(page) = stream.next_page().await? {
            items.extend(page);
        }
        Ok(ListPage {
            items,
            resource_version: stream.resource_version(),
            continue_token: stream.continue_token(),
        })
    }

    /// The `List` object around a page (`ConfigMapList`), as the JSON API returns it.
    pub fn list_object(kind: &Arc<dyn Strategy>, page: ListPage) -> Value {
        let info = kind.info();
        let mut meta = serde_json::Map::new();
        meta.insert(
            "resourceVersion".into(),
            page.resource_version.to_string().into(),
        );
        if let Some(c) = page.continue_token {
            meta.insert("continue".into(), c.into());
        }
        json!({
            "kind": format!("{}List", info.kind),
            "apiVersion": super::api_version(info),
            "metadata": meta,
            "items": page.items,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_token_round_trips_and_rejects_garbage() {
        let t = encode_continue(42, "ns/name");
        assert_eq!(decode_continue(&t).ok(), Some((42, "ns/name".to_string())));
        assert!(matches!(
            decode_continue("!!!"),
            Err(ApiError::BadRequest(_))
        ));
        let evil = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"v":"meta.k8s.io/v1","rv":3,"start":"../x"}"#);
        assert!(decode_continue(&evil).is_err());
    }

    /// The selector cases the registry's own parser used to cover, now run through
    /// `skiff_k8s_core::selector` and the pod strategy's field getter.
    #[test]
    fn selectors_filter_with_the_strategys_fields() {
        let pods = crate::kinds::builtin()
            .into_iter()
            .find(|k| k.info().group.is_empty() && k.info().plural == "pods")
            .unwrap();
        let pod = serde_json::json!({"metadata": {"name": "a", "namespace": "d",
            "labels": {"app": "web", "tier": "front", "n": "5"}},
            "spec": {"nodeName": "n1"}, "status": {"phase": "Pending"}});
        let sel = |l: &str, f: &str| {
            matches(
                &pods,
                &pod,
                &Selector::parse(l).unwrap(),
                &FieldSelector::parse(f).unwrap(),
            )
        };
        for (l, want) in [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (db,web)", true),
            ("app notin (db,web)", false),
            ("tier,!missing", true),
            ("!tier", false),
            ("n>4", true),
            ("n<4", false),
            ("missing!=x", true),
            ("", true),
        ] {
            assert_eq!(sel(l, "").unwrap(), want, "{l}");
        }
        for (f, want) in [
            ("metadata.name=a,status.phase!=Running", true),
            ("metadata.namespace=d,spec.nodeName=n1", true),
            ("spec.nodeName=n2", false),
            ("spec.nodeName!=n2", true),
        ] {
            assert_eq!(sel("", f).unwrap(), want, "{f}");
        }
        assert_eq!(
            sel("", "spec.nope=x").unwrap_err().message(),
            "field label not supported: spec.nope"
        );
        assert!(Selector::parse("app=we b").is_err());
        assert!(Selector::parse("a in b").is_err());
        assert!(FieldSelector::parse("nonsense").is_err());
    }

    #[test]
    fn resource_version_must_be_a_number() {
        assert!(parse_rv("12").is_ok());
        assert!(parse_rv("abc").is_err());
        assert!(parse_rv("-1").is_err());
    }
}
