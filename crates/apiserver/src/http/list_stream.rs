//! Writing a LIST as it is read: the `List` (or `Table`) JSON goes out a store page at a time
//! from a [`ListStream`], so the body is never whole in memory (design.md §7: LIST of 100,000
//! pods within 64 MiB). The body is pulled by hyper: a page is read only when the client has
//! taken the previous one.
//!
//! The status line is sent before the first page is read, so a failure afterwards (the revision
//! compacted under a long read) cannot become a `Status`: the body ends with an error and hyper
//! aborts the response, which is what kube-apiserver's clients see too (a broken stream, never a
//! truncated list that parses).

use bytes::Bytes;
use futures::stream;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use skiff_k8s_core::status::ApiError;

use super::table::{self, IncludeObject};
use super::{Body, BoxError};
use crate::registry::{Served, api_version};

/// One page of a LIST: its items and the continue token known after it.
type Page = Result<(Vec<Value>, Option<String>), ApiError>;

/// A LIST's pages (`Registry::list_stream`).
type Pages = std::pin::Pin<Box<dyn futures::Stream<Item = Page> + Send>>;

/// How one LIST is written.
pub(crate) struct ListWriter {
    pub served: Served,
    /// Some: a `meta.k8s.io/v1` Table with this `includeObject`.
    pub table: Option<IncludeObject>,
    /// Write `metadata` after the items: with a `limit` the continue token is known only then.
    pub metadata_last: bool,
}

enum Phase {
    Head,
    Items,
    Tail,
    Done,
}

struct State {
    w: ListWriter,
    pages: Pages,
    resource_version: i64,
    continue_token: Option<String>,
    phase: Phase,
    /// No item written yet (no comma before the next).
    first: bool,
}

impl ListWriter {
    fn metadata(resource_version: i64, continue_token: Option<&str>) -> Value {
        let mut meta = json!({"resourceVersion": resource_version.to_string()});
        if let Some(c) = continue_token {
            meta["continue"] = c.into();
        }
        meta
    }

    fn head(&self, resource_version: i64) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        let (kind, api_version, items) = match self.table {
            Some(_) => ("Table".to_string(), "meta.k8s.io/v1".to_string(), "rows"),
            None => (
                format!("{}List", self.served.kind.info().kind),
                api_version(&self.served.info),
                "items",
            ),
        };
        out.extend_from_slice(b"{\"kind\":");
        push_json(&mut out, &Value::String(kind));
        out.extend_from_slice(b",\"apiVersion\":");
        push_json(&mut out, &Value::String(api_version));
        if !self.metadata_last {
            out.extend_from_slice(b",\"metadata\":");
            push_json(&mut out, &Self::metadata(resource_version, None));
        }
        if self.table.is_some() {
            out.extend_from_slice(b",\"columnDefinitions\":");
            push_json(&mut out, &Value::Array(table::columns(&self.served.kind)));
        }
        out.extend_from_slice(format!(",\"{items}\":[").as_bytes());
        out
    }

    /// One page of items (or rows), each preceded by a comma unless it is the first.
    fn page(&self, items: Vec<Value>, first: &mut bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(items.len() * 1024);
        let mut push = |v: &Value| {
            if !*first {
                out.push(b',');
            }
            *first = false;
            push_json(&mut out, v);
        };
        match self.table {
            Some(include) => {
                let mut rows =
                    table::rows(&self.served.kind, &items, include, jiff::Timestamp::now());
                for row in &mut rows {
                    if include == IncludeObject::Object
                        && self.served.conversion.is_some()
                        && let Some(o) = row.get_mut("object")
                    {
                        *o = self.served.external(o.take());
                    }
                    push(row);
                }
            }
            None => {
                for item in items {
                    push(&self.served.external(item));
                }
            }
        }
        out
    }

    fn tail(&self, resource_version: i64, continue_token: Option<&str>) -> Vec<u8> {
        let mut out = b"]".to_vec();
        if self.metadata_last {
            out.extend_from_slice(b",\"metadata\":");
            push_json(&mut out, &Self::metadata(resource_version, continue_token));
        }
        out.push(b'}');
        out
    }

    /// The response body: head, a chunk per store page, tail; an error aborts it.
    pub fn body(self, resource_version: i64, pages: Pages) -> Body {
        let state = State {
            w: self,
            pages,
            resource_version,
            continue_token: None,
            phase: Phase::Head,
            first: true,
        };
        let chunks = stream::unfold(state, |mut st| async move {
            loop {
                match st.phase {
                    Phase::Head => {
                        st.phase = Phase::Items;
                        let head = st.w.head(st.resource_version);
                        return Some((Ok(Bytes::from(head)), st));
                    }
                    Phase::Items => match futures::StreamExt::next(&mut st.pages).await {
                        Some(Ok((items, token))) => {
                            st.continue_token = token;
                            if items.is_empty() {
                                continue;
                            }
                            let chunk = st.w.page(items, &mut st.first);
                            return Some((Ok(Bytes::from(chunk)), st));
                        }
                        None => st.phase = Phase::Tail,
                        Some(Err(e)) => {
                            st.phase = Phase::Done;
                            tracing::debug!(error = %e, "LIST aborted mid-stream");
                            let err: BoxError = Box::new(e);
                            return Some((Err(err), st));
                        }
                    },
                    Phase::Tail => {
                        st.phase = Phase::Done;
                        let tail = st.w.tail(st.resource_version, st.continue_token.as_deref());
                        return Some((Ok(Bytes::from(tail)), st));
                    }
                    Phase::Done => return None,
                }
            }
        });
        let frames = futures::StreamExt::map(chunks, |c| c.map(Frame::data));
        StreamBody::new(frames).boxed_unsync()
    }
}

fn push_json(out: &mut Vec<u8>, v: &Value) {
    // Writing a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;
    use crate::registry::Served;

    fn configmaps() -> Served {
        let kind = crate::kinds::builtin()
            .into_iter()
            .find(|k| k.info().group.is_empty() && k.info().plural == "configmaps")
            .expect("configmaps");
        Served::direct(kind)
    }

    fn cm(name: &str) -> Value {
        json!({"metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"}})
    }

    async fn write(w: ListWriter, pages: Vec<Page>) -> Result<Value, String> {
        let body = w.body(7, Box::pin(futures::stream::iter(pages)));
        let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn pages_become_one_list_with_the_token_at_the_end() {
        let w = ListWriter {
            served: configmaps(),
            table: None,
            metadata_last: true,
        };
        let v = write(
            w,
            vec![
                Ok((vec![cm("a"), cm("b")], None)),
                Ok((vec![], None)),
                Ok((vec![cm("c")], Some("tok".into()))),
            ],
        )
        .await
        .unwrap();
        assert_eq!(v["kind"], "ConfigMapList");
        assert_eq!(
            v["metadata"],
            json!({"resourceVersion": "7", "continue": "tok"})
        );
        assert_eq!(v["items"].as_array().unwrap().len(), 3);
        let empty = ListWriter {
            served: configmaps(),
            table: Some(IncludeObject::None),
            metadata_last: false,
        };
        let v = write(empty, vec![]).await.unwrap();
        assert_eq!(v["rows"], json!([]));
        assert_eq!(v["columnDefinitions"][0]["name"], "Name");
        assert_eq!(v["metadata"]["resourceVersion"], "7");
    }

    #[tokio::test]
    async fn an_error_after_the_first_page_aborts_the_body() {
        let w = ListWriter {
            served: configmaps(),
            table: None,
            metadata_last: false,
        };
        let r = write(
            w,
            vec![
                Ok((vec![cm("a")], None)),
                Err(ApiError::Expired("gone".into())),
            ],
        )
        .await;
        let err = r.expect_err("a broken body, not a shorter list");
        assert!(err.contains("gone"), "{err}");
    }
}
