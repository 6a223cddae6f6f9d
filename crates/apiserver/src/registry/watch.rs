//! WATCH: from a resourceVersion, never missing or repeating an event; selector transitions become
//! ADDED/DELETED as the watch cache does; bookmarks; compacted revisions end the stream with an
//! ERROR event carrying a 410 `Status`.
//!
//! Events come from the resource's watch cache ([`watch_cache`]: one store watch per resource,
//! decoded once, shared by every watcher) when its ring reaches back to the start revision, and
//! from a store watch of their own otherwise (older revisions, the cache switched off).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use skiff_k8s_core::selector::{FieldSelector, Selector};
use skiff_k8s_core::status::ApiError;
use skiff_store::{EventKind, StoreError};
use tokio::sync::mpsc;

use super::list::{ListOptions, matches, parse_rv};
use super::strategy::Strategy;
use super::{Registry, api_version, store_error};

#[path = "watch_cache.rs"]
pub(crate) mod watch_cache;

pub use watch_cache::SharedObject;
use watch_cache::{CachedEvent, Subscription};

/// WATCH parameters.
#[derive(Clone, Debug, Default)]
pub struct WatchOptions {
    pub label_selector: Selector,
    pub field_selector: FieldSelector,
    /// `""`/`"0"`: synthetic ADDED events for the current state first, then changes.
    pub resource_version: Option<String>,
    pub allow_bookmarks: bool,
    /// `sendInitialEvents=true`: the initial state, then a bookmark marked `initial-events-end`.
    pub send_initial_events: Option<bool>,
    pub timeout: Option<Duration>,
    /// How often a bookmark is sent when allowed (upstream: about a minute).
    pub bookmark_interval: Option<Duration>,
}

/// One event of a watch, with `type` as the wire spells it.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchEventOut {
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`, `ERROR`.
    pub type_: &'static str,
    pub object: Value,
}

pub type WatchStream = Pin<Box<dyn Stream<Item = WatchEventOut> + Send>>;

/// One event of a watch whose object may be shared with other watchers (and its JSON encoded
/// once for all of them): what the HTTP layer writes.
#[derive(Clone, Debug)]
pub struct SharedWatchEvent {
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`, `ERROR`.
    pub type_: &'static str,
    pub object: Arc<SharedObject>,
}

pub type SharedWatchStream = Pin<Box<dyn Stream<Item = SharedWatchEvent> + Send>>;

const CHANNEL: usize = 256;

/// Where a watch's events come from.
enum Source {
    Cache(Subscription),
    Store(skiff_store::WatchStream),
}

impl Source {
    /// The next event; None when the store ended the watch.
    async fn next(&mut self) -> Option<Result<Arc<CachedEvent>, StoreError>> {
        match self {
            Source::Cache(sub) => Some(sub.next().await),
            Source::Store(s) => s
                .next()
                .await
                .map(|r| r.map(|ev| Arc::new(CachedEvent::from_store(ev)))),
        }
    }
}

impl Registry {
    /// Starts a watch. Errors found before the first event (bad resourceVersion) are returned;
    /// later ones (compaction) arrive as an ERROR event and end the stream.
    pub async fn watch(
        self: &Arc<Self>,
        kind: &Arc<dyn Strategy>,
        namespace: Option<&str>,
        opts: WatchOptions,
    ) -> Result<WatchStream, ApiError> {
        let shared = self.watch_shared(kind, namespace, opts).await?;
        Ok(Box::pin(shared.map(|ev| WatchEventOut {
            type_: ev.type_,
            object: ev.object.into_value(),
        })))
    }

    /// [`Registry::watch`] with objects shared between watchers: no copy per watcher, and the
    /// JSON of an event made once however many watchers send it.
    pub async fn watch_shared(
        self: &Arc<Self>,
        kind: &Arc<dyn Strategy>,
        namespace: Option<&str>,
        opts: WatchOptions,
    ) -> Result<SharedWatchStream, ApiError> {
        let rv = opts.resource_version.clone().unwrap_or_default();
        let initial = match opts.send_initial_events {
            Some(true) => {
                if !opts.allow_bookmarks {
                    return Err(ApiError::invalid(
                        "meta.k8s.io",
                        "ListOptions",
                        "",
                        vec![skiff_k8s_core::status::FieldError::forbidden(
                            "allowWatchBookmarks",
                            "allowWatchBookmarks must be set to true when sendInitialEvents is specified",
                        )],
                    ));
                }
                true
            }
            Some(false) => false,
            None => rv.is_empty() || rv == "0",
        };
        let start_rev = if rv.is_empty() || rv == "0" {
            None
        } else {
            Some(parse_rv(&rv)?)
        };
        let prefix = self.resource_prefix(kind.info(), namespace);
        // The cache covers the whole resource; it is fetched before the initial list so that the
        // list's revision is never older than the cache's start.
        let cacher =
            watch_cache::cacher_for(self.store(), &self.resource_prefix(kind.info(), None)).await;
        let (tx, rx) = mpsc::channel::<SharedWatchEvent>(CHANNEL);
        let kind = kind.clone();
        // Resolve the start revision before returning so an immediate error is a plain Status.
        let (initial_items, from) = if initial {
            let page = self
                .list(
                    &kind,
                    namespace,
                    &ListOptions {
                        label_selector: opts.label_selector.clone(),
                        field_selector: opts.field_selector.clone(),
                        resource_version: start_rev.map(|r| r.to_string()),
                        resource_version_match: start_rev.map(|_| "Exact".to_string()),
                        ..Default::default()
                    },
                )
                .await?;
            (page.items, page.resource_version)
        } else {
            let from = match start_rev {
                Some(r) => r,
                None => self.store().current_revision().await.map_err(store_error)?,
            };
            (Vec::new(), from)
        };
        // The cache never serves what the store itself would refuse as compacted.
        let subscription = match cacher {
            Some(c) => match self.store().compacted_revision().await {
                Ok(compacted) if from >= compacted => c.subscribe(from),
                _ => None,
            },
            None => None,
        };
        let source = match subscription {
            Some(sub) => Ok(Source::Cache(sub)),
            None => self.store().watch(&prefix, from).await.map(Source::Store),
        };
        tokio::spawn(async move {
            let info = kind.info().clone();
            let bookmark = |rev: i64, initial_end: bool| {
                let mut meta = json!({"resourceVersion": rev.to_string()});
                if initial_end {
                    meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
                }
                SharedWatchEvent {
                    type_: "BOOKMARK",
                    object: SharedObject::new(
                        json!({"kind": info.kind, "apiVersion": api_version(&info), "metadata": meta}),
                    ),
                }
            };
            for obj in initial_items {
                let ev = SharedWatchEvent {
                    type_: "ADDED",
                    object: SharedObject::new(obj),
                };
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
            if opts.send_initial_events == Some(true)
                && tx.send(bookmark(from, true)).await.is_err()
            {
                return;
            }
            let mut events = match source {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(error_event(&e)).await;
                    return;
                }
            };
            let deadline = opts.timeout.map(|t| tokio::time::Instant::now() + t);
            let mut last_rev = from;
            let interval = opts.bookmark_interval.unwrap_or(Duration::from_secs(60));
            let mut ticker =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            loop {
                let sleep_until = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => futures::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    _ = sleep_until => return,
                    _ = tx.closed() => return,
                    _ = ticker.tick(), if opts.allow_bookmarks => {
                        if tx.send(bookmark(last_rev, false)).await.is_err() {
                            return;
                        }
                    }
                    ev = events.next() => {
                        let ev = match ev {
                            None => return,
                            Some(Ok(ev)) => ev,
                            Some(Err(e)) => {
                                let _ = tx.send(error_event(&e)).await;
                                return;
                            }
                        };
                        last_rev = ev.rev;
                        // The cache carries every namespace; this watch may want one.
                        if !ev.key.starts_with(&prefix) {
                            continue;
                        }
                        match translate(&kind, &opts, &ev) {
                            Ok(Some(out)) => {
                                if tx.send(out).await.is_err() {
                                    return;
                                }
                            }
                            Ok(None) => {}
                            Err(e) => {
                                let _ = tx.send(status_event(&e)).await;
                                return;
                            }
                        }
                    }
                }
            }
        });
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }
}

fn status_event(e: &ApiError) -> SharedWatchEvent {
    SharedWatchEvent {
        type_: "ERROR",
        object: SharedObject::new(e.to_status()),
    }
}

fn error_event(e: &StoreError) -> SharedWatchEvent {
    let err = match e {
        StoreError::WatcherTooSlow => ApiError::Expired(
            "watch channel closed: the watcher fell too far behind; relist".into(),
        ),
        other => store_error(other.clone()),
    };
    status_event(&err)
}

/// A store event → the API event this watcher sees (None when it is outside the selectors).
fn translate(
    kind: &Arc<dyn Strategy>,
    opts: &WatchOptions,
    ev: &CachedEvent,
) -> Result<Option<SharedWatchEvent>, ApiError> {
    let everything = opts.label_selector.is_everything() && opts.field_selector.is_everything();
    let sel = |obj: &Value| matches(kind, obj, &opts.label_selector, &opts.field_selector);
    let object = ev.object.clone().map_err(ApiError::InternalError)?;
    let out = |type_| {
        Some(SharedWatchEvent {
            type_,
            object: object.clone(),
        })
    };
    match ev.kind {
        EventKind::Put => {
            if everything {
                return Ok(out(if ev.had_prev() { "MODIFIED" } else { "ADDED" }));
            }
            let now_in = sel(object.value())?;
            let was_in = match ev.prev() {
                Some(p) => sel(p.map_err(ApiError::InternalError)?)?,
                None => false,
            };
            Ok(match (was_in, now_in) {
                (true, true) => out("MODIFIED"),
                (false, true) => out("ADDED"),
                // Left the selector: the watcher is told it is gone, with its new state.
                (true, false) => out("DELETED"),
                (false, false) => None,
            })
        }
        EventKind::Delete => {
            if !everything && !sel(object.value())? {
                return Ok(None);
            }
            Ok(out("DELETED"))
        }
    }
}
