//! A LIST read one store page at a time ([`skiff_store::RangeStream`] at one revision): items are
//! decoded and filtered a page at a time, so a LIST of 100,000 pods holds one page of objects, not
//! all of them (design.md §7). `limit`/`continue` keep the semantics of [`Registry::list`], which
//! is this stream collected.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};

use serde_json::Value;
use skiff_k8s_core::selector::{FieldSelector, Selector};
use skiff_k8s_core::status::ApiError;
use skiff_store::{RangeStream, StoreError};

use super::{CONTINUE_EXPIRED, ListOptions, SCAN_BATCH, encode_continue, matches};
use crate::registry::strategy::Strategy;
use crate::registry::{Registry, decode, store_error};

/// [`ListStream::into_pages`]: items of a page and the continue token known after it.
pub type ListPages =
    Pin<Box<dyn Stream<Item = Result<(Vec<Value>, Option<String>), ApiError>> + Send>>;

/// A LIST in progress; see the module docs.
pub struct ListStream {
    kind: Arc<dyn Strategy>,
    prefix: String,
    range: RangeStream,
    labels: Selector,
    fields: FieldSelector,
    /// 0 = no limit.
    limit: usize,
    returned: usize,
    /// The last key looked at: where a continue token resumes.
    last_key: Option<String>,
    /// The read started from a continue token (compaction then means an expired token).
    continuing: bool,
    /// The limit was reached with keys left over.
    more: bool,
    done: bool,
}

impl ListStream {
    /// The revision every item is read at: the List's `metadata.resourceVersion`.
    pub fn resource_version(&self) -> i64 {
        self.range.revision()
    }

    /// The items of the next store page that pass the selectors (possibly none); `Ok(None)` at
    /// the end. An error mid-list (the revision compacted between pages) ends it.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Value>>, ApiError> {
        if self.done {
            return Ok(None);
        }
        let page = match self.range.next_page().await {
            Ok(Some(page)) => page,
            Ok(None) => {
                self.done = true;
                return Ok(None);
            }
            Err(e) => {
                self.done = true;
                return Err(self.error(e));
            }
        };
        let n = page.len();
        let mut items = Vec::with_capacity(n);
        for (i, kv) in page.into_iter().enumerate() {
            let obj = decode(&kv)?;
            self.last_key = Some(kv.key);
            if matches(&self.kind, &obj, &self.labels, &self.fields)? {
                items.push(obj);
                self.returned += 1;
            }
            if self.limit > 0 && self.returned >= self.limit {
                self.more = i + 1 < n || self.range.has_more();
                self.done = true;
                break;
            }
        }
        Ok(Some(items))
    }

    /// The `continue` token of this page: set once the stream has ended at the limit with keys
    /// left (call after [`ListStream::next_page`] returned `None`).
    pub fn continue_token(&self) -> Option<String> {
        if !self.more {
            return None;
        }
        let key = self.last_key.as_deref()?;
        Some(encode_continue(
            self.resource_version(),
            &key[self.prefix.len()..],
        ))
    }

    /// The pages as a stream, each with the continue token as known after it (set only on the
    /// last page of a list cut by its limit).
    pub fn into_pages(self) -> ListPages {
        Box::pin(
            futures::stream::unfold(Some(self), |st| async move {
                let mut st = st?;
                match st.next_page().await {
                    Ok(Some(items)) => {
                        let token = st.continue_token();
                        Some((Ok((items, token)), Some(st)))
                    }
                    Ok(None) => None,
                    Err(e) => Some((Err(e), None)),
                }
            })
            // Callers peek at the first page and chain the rest: polling past the end is fine.
            .fuse(),
        )
    }

    fn error(&self, e: StoreError) -> ApiError {
        match e {
            StoreError::Compacted { .. } if self.continuing => {
                ApiError::Expired(CONTINUE_EXPIRED.into())
            }
            other => store_error(other),
        }
    }
}

impl Registry {
    /// Opens a LIST that is read page by page (see [`ListStream`]). Errors known before the first
    /// item (bad parameters, expired token, compacted revision) are returned here.
    pub async fn list_stream(
        &self,
        kind: &Arc<dyn Strategy>,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ListStream, ApiError> {
        let prefix = self.resource_prefix(kind.info(), namespace);
        let (at_revision, start_after) = self.list_start(&prefix, opts).await?;
        let continuing = start_after.is_some();
        // Without selectors a page of `limit` keys is exactly what is needed; with them, scan on.
        let filtered = !opts.label_selector.is_everything() || !opts.field_selector.is_everything();
        let page_size = if opts.limit > 0 && !filtered {
            opts.limit.min(SCAN_BATCH)
        } else {
            SCAN_BATCH
        };
        let range = RangeStream::open_after(
            self.store().clone(),
            &prefix,
            at_revision,
            start_after,
            page_size,
        )
        .await
        .map_err(|e| match e {
            StoreError::Compacted { .. } if continuing => {
                ApiError::Expired(CONTINUE_EXPIRED.into())
            }
            other => store_error(other),
        })?;
        Ok(ListStream {
            kind: kind.clone(),
            prefix,
            range,
            labels: opts.label_selector.clone(),
            fields: opts.field_selector.clone(),
            limit: opts.limit,
            returned: 0,
            last_key: None,
            continuing,
            more: false,
            done: false,
        })
    }
}
