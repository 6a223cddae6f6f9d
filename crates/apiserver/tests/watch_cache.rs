//! The watch cache (`registry/watch_cache.rs`) behind the API: many watchers with their own
//! selectors and namespaces see exactly their events in order, watches from a past revision are
//! replayed from the ring, compaction still answers 410, bookmarks carry the latest revision, and
//! a watcher that stops reading is cut off with a 410 instead of growing memory.

mod support;

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use skiff_apiserver::registry::WatchOptions;
use skiff_k8s_core::selector::Selector;
use skiff_store::{Op, Precondition, Store};
use support::{next_event, server};

fn cm(ns: &str, name: &str, app: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": app}}})
}

fn rv(v: &Value) -> i64 {
    v["metadata"]["resourceVersion"]
        .as_str()
        .expect("resourceVersion")
        .parse()
        .expect("number")
}

fn path(ns: &str) -> String {
    format!("/api/v1/namespaces/{ns}/configmaps")
}

#[tokio::test]
async fn many_watchers_each_see_exactly_their_events_in_order() {
    let s = server().await;
    for ns in ["a", "b"] {
        s.post("/api/v1/namespaces", &json!({"metadata": {"name": ns}}))
            .await;
    }
    let start = rv(&s.get(&path("a")).await.body);
    let q = format!("?watch=1&resourceVersion={start}");
    let mut everyone = Vec::new();
    for _ in 0..40 {
        everyone.push(s.watch(&format!("/api/v1/configmaps{q}"), &[]).await);
    }
    let mut only_a = s.watch(&format!("{}{q}", path("a")), &[]).await;
    let mut only_web = s
        .watch(
            &format!("/api/v1/configmaps{q}&labelSelector=app%3Dweb"),
            &[],
        )
        .await;
    let mut expected_all = Vec::new();
    for i in 0..30usize {
        let ns = if i.is_multiple_of(3) { "b" } else { "a" };
        let app = if i.is_multiple_of(2) { "web" } else { "db" };
        let r = s.post(&path(ns), &cm(ns, &format!("c{i}"), app)).await;
        assert_eq!(r.status.as_u16(), 201, "{}", r.text);
        expected_all.push((ns, format!("c{i}"), app, rv(&r.body)));
    }
    for w in &mut everyone {
        for (_, name, _, rev) in &expected_all {
            let ev = next_event(w).await;
            assert_eq!(ev["type"], "ADDED");
            assert_eq!(ev["object"]["metadata"]["name"], name.as_str());
            assert_eq!(rv(&ev["object"]), *rev);
        }
    }
    for (ns, name, _, _) in expected_all.iter().filter(|e| e.0 == "a") {
        let ev = next_event(&mut only_a).await;
        assert_eq!(ev["object"]["metadata"]["name"], name.as_str());
        assert_eq!(ev["object"]["metadata"]["namespace"], *ns);
    }
    for (_, name, _, _) in expected_all.iter().filter(|e| e.2 == "web") {
        assert_eq!(
            next_event(&mut only_web).await["object"]["metadata"]["name"],
            name.as_str()
        );
    }
    // Leaving the selector is a DELETED for the selector's watcher, a MODIFIED for the others.
    s.patch(
        &format!("{}/c2", path("a")),
        "application/merge-patch+json",
        &json!({"metadata": {"labels": {"app": "db"}}}),
    )
    .await;
    let ev = next_event(&mut only_web).await;
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("DELETED"), Some("c2"))
    );
    assert_eq!(next_event(&mut only_a).await["type"], "MODIFIED");
    // Nothing else arrived: no repeats.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), only_web.recv())
            .await
            .is_err()
    );
    s.api.shutdown().await;
}

#[tokio::test]
async fn a_watch_from_a_past_revision_is_replayed_then_follows() {
    let s = server().await;
    let p = path("default");
    // One watcher keeps the resource's cache running.
    let mut keeper = s
        .watch(&format!("{p}?watch=1&resourceVersion=1"), &[])
        .await;
    let mut revs = Vec::new();
    for i in 0..5 {
        revs.push(rv(&s
            .post(&p, &cm("default", &format!("r{i}"), "x"))
            .await
            .body));
    }
    for _ in 0..5 {
        next_event(&mut keeper).await;
    }
    let mut late = s
        .watch(&format!("{p}?watch=1&resourceVersion={}", revs[1]), &[])
        .await;
    for (i, want) in revs.iter().enumerate().skip(2) {
        let ev = next_event(&mut late).await;
        assert_eq!(ev["object"]["metadata"]["name"], format!("r{i}"));
        assert_eq!(rv(&ev["object"]), *want);
    }
    s.delete(&format!("{p}/r0")).await;
    let ev = next_event(&mut late).await;
    assert_eq!(ev["type"], "DELETED");
    assert_eq!(ev["object"]["metadata"]["name"], "r0");
    assert!(
        rv(&ev["object"]) > revs[4],
        "DELETED carries the deleting revision"
    );

    // Compacted past the start: 410, even though the cache still holds those events.
    s.store.compact_to(revs[3]);
    let mut old = s
        .watch(&format!("{p}?watch=1&resourceVersion={}", revs[1]), &[])
        .await;
    let ev = next_event(&mut old).await;
    assert_eq!(ev["type"], "ERROR");
    assert_eq!(ev["object"]["code"], 410);
    s.api.shutdown().await;
}

#[tokio::test]
async fn initial_events_end_with_a_bookmark_and_bookmarks_follow_the_latest_revision() {
    let s = server().await;
    let p = path("default");
    s.post(&p, &cm("default", "first", "x")).await;
    let mut w = s
        .watch(
            &format!("{p}?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&resourceVersion="),
            &[],
        )
        .await;
    assert_eq!(
        next_event(&mut w).await["object"]["metadata"]["name"],
        "first"
    );
    let bm = next_event(&mut w).await;
    assert_eq!(bm["type"], "BOOKMARK");
    assert_eq!(
        bm["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );

    // Periodic bookmarks (in-process, with a short interval) name the last revision delivered.
    let reg = s.api.registry.clone();
    let kind = reg.kind("", "configmaps").unwrap();
    let mut stream = reg
        .watch(
            &kind,
            Some("default"),
            WatchOptions {
                resource_version: Some(rv(&bm["object"]).to_string()),
                allow_bookmarks: true,
                bookmark_interval: Some(Duration::from_millis(300)),
                label_selector: Selector::parse("app=nobody").unwrap(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let written = rv(&s.post(&p, &cm("default", "second", "x")).await.body);
    let bm = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bm.type_, "BOOKMARK");
    assert_eq!(
        rv(&bm.object),
        written,
        "filtered-out events still advance bookmarks"
    );
    s.api.shutdown().await;
}

#[tokio::test]
async fn a_watcher_that_stops_reading_is_cut_off_with_410_and_others_are_not() {
    let s = server().await;
    let reg = s.api.registry.clone();
    let kind = reg.kind("", "configmaps").unwrap();
    let from = s.store.current_revision().await.unwrap();
    let opts = WatchOptions {
        resource_version: Some(from.to_string()),
        ..Default::default()
    };
    let mut slow = reg
        .watch(&kind, Some("default"), opts.clone())
        .await
        .unwrap();
    let mut fast = reg.watch(&kind, Some("default"), opts).await.unwrap();
    // Far more events than a watcher may lag behind (4,096), many per transaction.
    let total = 6_000usize;
    let mut seen = 0usize;
    for chunk in (0..total).collect::<Vec<_>>().chunks(200) {
        let ops = chunk
            .iter()
            .map(|i| Op::Put {
                key: format!("/k8s/test/core/configmaps/default/s{i:05}"),
                value: Bytes::from(cm("default", &format!("s{i:05}"), "x").to_string()),
                precondition: Precondition::None,
            })
            .collect();
        s.store.txn(ops).await.unwrap();
        // The fast watcher keeps up.
        while seen < chunk[chunk.len() - 1] + 1 {
            let ev = tokio::time::timeout(Duration::from_secs(5), fast.next())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(ev.type_, "ADDED");
            seen += 1;
        }
    }
    let mut delivered = 0;
    let last = loop {
        let ev = tokio::time::timeout(Duration::from_secs(5), slow.next())
            .await
            .expect("the slow watch ends instead of hanging");
        match ev {
            Some(ev) if ev.type_ == "ADDED" => delivered += 1,
            other => break other,
        }
    };
    let last = last.expect("an ERROR before the end");
    assert_eq!(last.type_, "ERROR");
    assert_eq!(last.object["code"], 410);
    assert!(delivered < total, "cut off after {delivered}");
    assert!(slow.next().await.is_none(), "then the stream ends");
    s.api.shutdown().await;
}
