//! Streamed range reads: every key under a prefix at one revision, fetched a page at a time, so that
//! LIST of 100,000 pods holds one page in memory instead of the whole result (design.md §7: LIST
//! 100k pods within 64 MiB of extra memory).
//!
//! Built only on [`Store::list`] (`at_revision` + `start_after` + `limit`), so it works on every
//! backend: the first page fixes the revision, every later page is read at it, which is how
//! Kubernetes' `limit`/`continue` paging stays consistent while writes go on. A caller that must
//! write the revision before the items (a List's `metadata.resourceVersion`) reads
//! [`RangeStream::revision`] after [`RangeStream::open`], which has fetched the first page.
//!
//! Compaction: if the store compacts past the stream's revision between two pages, the next page
//! fails with [`StoreError::Compacted`] (as a `continue` token does); the caller restarts the read.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::Stream;

use crate::{KeyValue, ListOptions, Revision, Store, StoreError};

/// Keys fetched per page when the caller passes 0.
pub const DEFAULT_PAGE_SIZE: usize = 500;

/// A range read in progress. See the module docs.
#[doc(alias = "Range")]
#[doc(alias = "pager")]
pub struct RangeStream {
    store: Arc<dyn Store>,
    prefix: String,
    revision: Revision,
    page_size: usize,
    /// Items of the current page not yet handed out.
    page: VecDeque<KeyValue>,
    /// The last key fetched: the next page starts after it.
    last_key: Option<String>,
    /// The store said more keys follow the last page.
    more: bool,
}

impl RangeStream {
    /// Starts a range read of `prefix` at `at_revision` (None: the latest revision) and fetches the
    /// first page of `page_size` keys (0: [`DEFAULT_PAGE_SIZE`]). Errors are those of
    /// [`Store::list`]: [`StoreError::Compacted`], [`StoreError::FutureRevision`], ...
    pub async fn open(
        store: Arc<dyn Store>,
        prefix: &str,
        at_revision: Option<Revision>,
        page_size: usize,
    ) -> Result<Self, StoreError> {
        Self::open_after(store, prefix, at_revision, None, page_size).await
    }

    /// [`RangeStream::open`] starting strictly after the key `start_after` (a LIST `continue`
    /// token's position).
    pub async fn open_after(
        store: Arc<dyn Store>,
        prefix: &str,
        at_revision: Option<Revision>,
        start_after: Option<String>,
        page_size: usize,
    ) -> Result<Self, StoreError> {
        let page_size = if page_size == 0 {
            DEFAULT_PAGE_SIZE
        } else {
            page_size
        };
        let first = store
            .list(
                prefix,
                ListOptions {
                    at_revision,
                    start_after,
                    limit: page_size,
                },
            )
            .await?;
        Ok(RangeStream {
            store,
            prefix: prefix.to_string(),
            revision: first.revision,
            page_size,
            last_key: first.items.last().map(|kv| kv.key.clone()),
            more: first.more,
            page: first.items.into(),
        })
    }

    /// The revision every item is read at (the List's `resourceVersion`).
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// Whether keys remain that no page has returned yet.
    pub fn has_more(&self) -> bool {
        !self.page.is_empty() || self.more
    }

    /// The next page, in key order; `Ok(None)` once every key has been returned. The first call
    /// returns the page [`RangeStream::open`] fetched.
    pub async fn next_page(&mut self) -> Result<Option<Vec<KeyValue>>, StoreError> {
        if !self.page.is_empty() {
            return Ok(Some(std::mem::take(&mut self.page).into()));
        }
        if !self.more {
            return Ok(None);
        }
        let next = self
            .store
            .list(
                &self.prefix,
                ListOptions {
                    at_revision: Some(self.revision),
                    start_after: self.last_key.clone(),
                    limit: self.page_size,
                },
            )
            .await?;
        self.more = next.more;
        match next.items.last() {
            Some(kv) => self.last_key = Some(kv.key.clone()),
            // A backend that reports more but returns nothing would loop forever; stop instead.
            None => self.more = false,
        }
        if next.items.is_empty() {
            return Ok(None);
        }
        Ok(Some(next.items))
    }

    /// The next item; `Ok(None)` at the end.
    pub async fn next_item(&mut self) -> Result<Option<KeyValue>, StoreError> {
        if self.page.is_empty() {
            match self.next_page().await? {
                Some(page) => self.page = page.into(),
                None => return Ok(None),
            }
        }
        Ok(self.page.pop_front())
    }

    /// The items as a stream; after an error the stream ends.
    pub fn into_stream(self) -> impl Stream<Item = Result<KeyValue, StoreError>> + Send {
        futures::stream::unfold(Some(self), |state| async move {
            let mut this = state?;
            match this.next_item().await {
                Ok(Some(kv)) => Some((Ok(kv), Some(this))),
                Ok(None) => None,
                Err(err) => Some((Err(err), None)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bytes::Bytes;
    use futures::StreamExt;

    use super::*;
    use crate::{ListResult, Op, TxnResult, WatchStream};

    /// A store that serves a fixed, sorted key set in pages and records every `list` call, to
    /// check what the stream asks for (the contract suite runs it against the real backends).
    struct Pages {
        keys: Vec<String>,
        calls: Mutex<Vec<ListOptions>>,
    }

    #[async_trait::async_trait]
    impl Store for Pages {
        async fn get(&self, _: &str) -> Result<Option<KeyValue>, StoreError> {
            Ok(None)
        }
        async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StoreError> {
            self.calls.lock().unwrap().push(opts.clone());
            let rest: Vec<_> = self
                .keys
                .iter()
                .filter(|k| k.starts_with(prefix))
                .filter(|k| opts.start_after.as_ref().is_none_or(|s| *k > s))
                .collect();
            let n = if opts.limit == 0 {
                rest.len()
            } else {
                opts.limit.min(rest.len())
            };
            Ok(ListResult {
                items: rest[..n]
                    .iter()
                    .map(|k| KeyValue {
                        key: k.to_string(),
                        value: Bytes::new(),
                        create_revision: 2,
                        mod_revision: 2,
                    })
                    .collect(),
                revision: opts.at_revision.unwrap_or(7),
                more: n < rest.len(),
            })
        }
        async fn count(&self, _: &str) -> Result<u64, StoreError> {
            Ok(self.keys.len() as u64)
        }
        async fn txn(&self, _: Vec<Op>) -> Result<TxnResult, StoreError> {
            Err(StoreError::Unavailable("read-only".into()))
        }
        async fn watch(&self, _: &str, _: Revision) -> Result<WatchStream, StoreError> {
            Err(StoreError::Unavailable("read-only".into()))
        }
        async fn current_revision(&self) -> Result<Revision, StoreError> {
            Ok(7)
        }
        async fn compacted_revision(&self) -> Result<Revision, StoreError> {
            Ok(0)
        }
    }

    #[tokio::test]
    async fn pages_are_read_at_the_first_pages_revision_after_the_last_key() {
        let keys: Vec<String> = (0..10).map(|i| format!("/p/{i:02}")).collect();
        let store = Arc::new(Pages {
            keys: keys.clone(),
            calls: Mutex::new(Vec::new()),
        });
        let mut range = RangeStream::open(store.clone(), "/p/", None, 4)
            .await
            .unwrap();
        assert_eq!(range.revision(), 7);
        let mut sizes = Vec::new();
        while let Some(page) = range.next_page().await.unwrap() {
            sizes.push(page.len());
        }
        assert_eq!(sizes, [4, 4, 2]);
        assert!(range.next_page().await.unwrap().is_none());
        let calls = store.calls.lock().unwrap().clone();
        let asked: Vec<_> = calls
            .iter()
            .map(|c| (c.at_revision, c.start_after.clone(), c.limit))
            .collect();
        assert_eq!(
            asked,
            [
                (None, None, 4),
                (Some(7), Some("/p/03".to_string()), 4),
                (Some(7), Some("/p/07".to_string()), 4),
            ]
        );
    }

    #[tokio::test]
    async fn open_after_starts_past_the_key_and_reports_what_remains() {
        let keys: Vec<String> = (0..6).map(|i| format!("/p/{i:02}")).collect();
        let store = Arc::new(Pages {
            keys,
            calls: Mutex::new(Vec::new()),
        });
        let mut range = RangeStream::open_after(store, "/p/", Some(5), Some("/p/02".into()), 2)
            .await
            .unwrap();
        assert_eq!(range.revision(), 5);
        assert!(range.has_more());
        let first: Vec<String> = range
            .next_page()
            .await
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|kv| kv.key)
            .collect();
        assert_eq!(first, ["/p/03", "/p/04"]);
        assert!(range.has_more());
        assert_eq!(range.next_page().await.unwrap().unwrap().len(), 1);
        assert!(!range.has_more());
    }

    #[tokio::test]
    async fn the_item_stream_yields_every_key_once_in_order() {
        let keys: Vec<String> = (0..25).map(|i| format!("/p/{i:02}")).collect();
        let store = Arc::new(Pages {
            keys: keys.clone(),
            calls: Mutex::new(Vec::new()),
        });
        let got: Vec<String> = RangeStream::open(store, "/p/", None, 0)
            .await
            .unwrap()
            .into_stream()
            .map(|kv| kv.unwrap().key)
            .collect()
            .await;
        assert_eq!(got, keys);
        let empty = Arc::new(Pages {
            keys: Vec::new(),
            calls: Mutex::new(Vec::new()),
        });
        let mut range = RangeStream::open(empty, "/p/", None, 3).await.unwrap();
        assert!(range.next_item().await.unwrap().is_none());
    }
}
