//! WATCH over the store's watch: from a resourceVersion, never missing or repeating an event;
//! selector transitions become ADDED/DELETED as the watch cache does; bookmarks; compacted
//! revisions end the stream with an ERROR event carrying a 410 `Status`.

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
use super::{Registry, api_version, decode, set_resource_version, store_error};

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

const CHANNEL: usize = 256;

impl Registry {
    /// Starts a watch. Errors found before the first event (bad resourceVersion) are returned;
    /// later ones (compaction) arrive as an ERROR event and end the stream.
    pub async fn watch(
        self: &Arc<Self>,
        kind: &Arc<dyn Strategy>,
        namespace: Option<&str>,
        opts: WatchOptions,
    ) -> Result<WatchStream, ApiError> {
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
        let (tx, rx) = mpsc::channel::<WatchEventOut>(CHANNEL);
        let reg = self.clone();
        let kind = kind.clone();
        let ns = namespace.map(String::from);
        // Resolve the start revision before returning so an immediate error is a plain Status.
        let (initial_items, from) = if initial {
            let page = self
                .list(
                    &kind,
                    ns.as_deref(),
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
        let store_watch = self.store().watch(&prefix, from).await;
        tokio::spawn(async move {
            let info = kind.info().clone();
            let bookmark = |rev: i64, initial_end: bool| {
                let mut meta = json!({"resourceVersion": rev.to_string()});
                if initial_end {
                    meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
                }
                WatchEventOut {
                    type_: "BOOKMARK",
                    object: json!({"kind": info.kind, "apiVersion": api_version(&info), "metadata": meta}),
                }
            };
            for obj in initial_items {
                if tx
                    .send(WatchEventOut {
                        type_: "ADDED",
                        object: obj,
                    })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if opts.send_initial_events == Some(true)
                && tx.send(bookmark(from, true)).await.is_err()
            {
                return;
            }
            let mut events = match store_watch {
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
                        let Some(ev) = ev else { return };
                        let ev = match ev {
                            Ok(ev) => ev,
                            Err(e) => {
                                let _ = tx.send(error_event(&e)).await;
                                return;
                            }
                        };
                        last_rev = ev.kv.mod_revision;
                        match translate(&reg, &kind, &opts, ev) {
                            Ok(Some(out)) => {
                                if tx.send(out).await.is_err() {
                                    return;
                                }
                            }
                            Ok(None) => {}
                            Err(e) => {
                                let _ = tx.send(WatchEventOut { type_: "ERROR", object: e.to_status() }).await;
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

fn error_event(e: &StoreError) -> WatchEventOut {
    let err = match e {
        StoreError::WatcherTooSlow => ApiError::Expired(
            "watch channel closed: the watcher fell too far behind; relist".into(),
        ),
        other => store_error(other.clone()),
    };
    WatchEventOut {
        type_: "ERROR",
        object: err.to_status(),
    }
}

/// A store event → the API event this watcher sees (None when it is outside the selectors).
fn translate(
    _reg: &Registry,
    kind: &Arc<dyn Strategy>,
    opts: &WatchOptions,
    ev: skiff_store::WatchEvent,
) -> Result<Option<WatchEventOut>, ApiError> {
    let sel = |obj: &Value| matches(kind, obj, &opts.label_selector, &opts.field_selector);
    let rev = ev.kv.mod_revision;
    let prev = match &ev.prev {
        Some(p) => Some(decode(p)?),
        None => None,
    };
    match ev.kind {
        EventKind::Put => {
            let obj = decode(&ev.kv)?;
            let now_in = sel(&obj)?;
            let was_in = match &prev {
                Some(p) => sel(p)?,
                None => false,
            };
            Ok(match (was_in, now_in) {
                (true, true) => Some(WatchEventOut {
                    type_: "MODIFIED",
                    object: obj,
                }),
                (false, true) => Some(WatchEventOut {
                    type_: "ADDED",
                    object: obj,
                }),
                // Left the selector: the watcher is told it is gone, with its new state.
                (true, false) => Some(WatchEventOut {
                    type_: "DELETED",
                    object: obj,
                }),
                (false, false) => None,
            })
        }
        EventKind::Delete => {
            let Some(mut p) = prev else { return Ok(None) };
            if !sel(&p)? {
                return Ok(None);
            }
            set_resource_version(&mut p, rev);
            Ok(Some(WatchEventOut {
                type_: "DELETED",
                object: p,
            }))
        }
    }
}
