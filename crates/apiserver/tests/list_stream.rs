//! Streamed LIST (`registry/list_stream.rs`, `http/list_stream.rs`): lists larger than one store
//! page come out whole and consistent, `limit`/`continue` page across store pages with selectors,
//! and the Table form kubectl asks for streams the same way.

mod support;

use bytes::Bytes;
use serde_json::{Value, json};
use skiff_store::{Op, Precondition, Store};
use support::server;

const P: &str = "/api/v1/namespaces/default/configmaps";
const TABLE: (&str, &str) = ("accept", "application/json;as=Table;v=v1;g=meta.k8s.io");

/// Writes `n` ConfigMaps straight into the store (many per transaction): the API's create path
/// is not what these tests are about, and 1,000 HTTP creates would dominate their time.
async fn seed(s: &support::TestServer, n: usize, label: impl Fn(usize) -> &'static str) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(250) {
        let ops = chunk
            .iter()
            .map(|i| {
                let name = format!("cm-{i:05}");
                let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name, "namespace": "default", "uid": format!("u{i}"),
                        "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"half": label(*i)}},
                    "data": {"i": i.to_string()}});
                Op::Put {
                    key: format!("/k8s/test/core/configmaps/default/{name}"),
                    value: Bytes::from(obj.to_string()),
                    precondition: Precondition::None,
                }
            })
            .collect();
        s.store.txn(ops).await.expect("seed");
    }
}

fn names(items: &Value) -> Vec<String> {
    items
        .as_array()
        .expect("array")
        .iter()
        .map(|o| {
            o.pointer("/metadata/name")
                .and_then(Value::as_str)
                .expect("name")
                .to_string()
        })
        .collect()
}

fn even_odd(i: usize) -> &'static str {
    if i.is_multiple_of(2) { "even" } else { "odd" }
}

#[tokio::test]
async fn a_list_longer_than_a_store_page_is_whole_sorted_and_at_one_revision() {
    let s = server().await;
    seed(&s, 1_234, even_odd).await;
    let rv_before = s.store.current_revision().await.unwrap();
    let r = s.get(P).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert_eq!(r.body["kind"], "ConfigMapList");
    assert_eq!(r.body["apiVersion"], "v1");
    assert_eq!(r.body["metadata"]["resourceVersion"], rv_before.to_string());
    assert!(r.body["metadata"].get("continue").is_none());
    let got = names(&r.body["items"]);
    let want: Vec<String> = (0..1_234).map(|i| format!("cm-{i:05}")).collect();
    assert_eq!(got, want);
    assert_eq!(
        r.body["items"][7]["metadata"]["resourceVersion"],
        r.body["items"][0]["metadata"]["resourceVersion"],
        "objects carry their own revision"
    );

    // A label selector filters item by item across pages.
    let r = s.get(&format!("{P}?labelSelector=half%3Dodd")).await;
    assert_eq!(names(&r.body["items"]).len(), 617);
    let r = s
        .get(&format!("{P}?fieldSelector=metadata.name%3Dcm-01200"))
        .await;
    assert_eq!(names(&r.body["items"]), ["cm-01200"]);
    s.api.shutdown().await;
}

#[tokio::test]
async fn limit_and_continue_page_with_selectors_and_ignore_later_writes() {
    let s = server().await;
    seed(&s, 1_100, even_odd).await;
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut rvs = Vec::new();
    let mut pages = 0;
    loop {
        let mut q = format!("{P}?limit=300&labelSelector=half%3Deven");
        if let Some(t) = &token {
            q.push_str(&format!("&continue={t}"));
        }
        let r = s.get(&q).await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.text);
        pages += 1;
        seen.extend(names(&r.body["items"]));
        rvs.push(r.body["metadata"]["resourceVersion"].clone());
        if pages == 1 {
            // Written after the first page: not part of this list.
            s.post(
                P,
                &json!({"metadata": {"name": "cm-00999a", "labels": {"half": "even"}}}),
            )
            .await;
        }
        match r.body["metadata"]["continue"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 2, "550 even items in pages of 300");
    assert_eq!(seen.len(), 550);
    let want: Vec<String> = (0..1_100)
        .filter(|i: &usize| i.is_multiple_of(2))
        .map(|i| format!("cm-{i:05}"))
        .collect();
    assert_eq!(seen, want);
    assert!(
        rvs.windows(2).all(|w| w[0] == w[1]),
        "one revision: {rvs:?}"
    );

    // A limit that ends exactly at the last item leaves no continue token.
    let r = s.get(&format!("{P}?limit=1101")).await;
    assert_eq!(names(&r.body["items"]).len(), 1_101);
    assert!(
        r.body["metadata"].get("continue").is_none(),
        "{}",
        r.body["metadata"]
    );
    let r = s.get(&format!("{P}?limit=1100")).await;
    assert!(r.body["metadata"]["continue"].is_string());
    s.api.shutdown().await;
}

#[tokio::test]
async fn the_table_form_streams_with_and_without_a_limit() {
    let s = server().await;
    seed(&s, 700, even_odd).await;
    let r = s.req("GET", P, None, None, &[TABLE]).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert_eq!(r.body["kind"], "Table");
    assert_eq!(r.body["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(r.body["columnDefinitions"][0]["name"], "Name");
    let rows = r.body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 700);
    assert_eq!(rows[699]["cells"][0], "cm-00699");
    assert_eq!(rows[0]["object"]["kind"], "PartialObjectMetadata");
    assert!(r.body["metadata"]["resourceVersion"].is_string());

    // kubectl's chunked form: limit=500, then the continue token.
    let r = s
        .req(
            "GET",
            &format!("{P}?limit=500&labelSelector=half%3Dodd"),
            None,
            None,
            &[TABLE],
        )
        .await;
    assert_eq!(r.body["rows"].as_array().unwrap().len(), 350);
    assert!(r.body["metadata"].get("continue").is_none());
    let r = s
        .req(
            "GET",
            &format!("{P}?limit=500&includeObject=Object"),
            None,
            None,
            &[TABLE],
        )
        .await;
    assert_eq!(r.body["rows"].as_array().unwrap().len(), 500);
    assert_eq!(r.body["rows"][3]["object"]["data"]["i"], "3");
    let tok = r.body["metadata"]["continue"].as_str().unwrap().to_string();
    let r = s
        .req(
            "GET",
            &format!("{P}?limit=500&continue={tok}"),
            None,
            None,
            &[TABLE],
        )
        .await;
    let rows = r.body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 200);
    assert_eq!(rows[0]["cells"][0], "cm-00500");
    s.api.shutdown().await;
}

#[tokio::test]
async fn errors_found_before_the_first_item_are_a_status() {
    let s = server().await;
    seed(&s, 10, even_odd).await;
    let r = s
        .get(&format!(
            "{P}?resourceVersion=999999&resourceVersionMatch=NotOlderThan"
        ))
        .await;
    assert_eq!(r.status.as_u16(), 504, "{}", r.text);
    let r = s.get(&format!("{P}?fieldSelector=spec.nope%3Dx")).await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.text);
    assert_eq!(r.body["message"], "field label not supported: spec.nope");
    let now = s.store.current_revision().await.unwrap();
    let tok = {
        let r = s.get(&format!("{P}?limit=2")).await;
        r.body["metadata"]["continue"].as_str().unwrap().to_string()
    };
    s.post(P, &json!({"metadata": {"name": "later"}})).await;
    s.store.compact_to(now + 1);
    let r = s.get(&format!("{P}?limit=2&continue={tok}")).await;
    assert_eq!(r.status.as_u16(), 410, "{}", r.text);
    assert_eq!(r.body["reason"], "Expired");
    s.api.shutdown().await;
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The memory figure of a streamed LIST on the embedded store (release: `skiff bench api
/// --list-pods N`). `SKIFF_BENCH_PODS=100000 cargo test -p skiff-apiserver --test list_stream --
/// --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
#[allow(
    clippy::disallowed_methods,
    reason = "the RSS sampler is a dedicated OS thread, not a runtime worker"
)]
async fn list_memory_figure() {
    use http_body_util::BodyExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let n: usize = std::env::var("SKIFF_BENCH_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let store = skiff_store::open("embedded", dir.path()).await.unwrap();
    // The built-in kinds (the test kit's own set has no pods).
    let cfg =
        skiff_apiserver::server::ClusterApiConfig::new("test", "127.0.0.1:0".parse().unwrap());
    let s = support::server_on_backend(store.clone(), cfg).await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": "default",
        "labels": {"app": "bench", "pod-template-hash": "5d8f7c9b6"}, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27", "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
            "terminationMessagePath": "/dev/termination-log", "imagePullPolicy": "IfNotPresent"}],
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
            "serviceAccountName": "default", "nodeName": "ip-10-0-1-23.ec2.internal"},
        "status": {"phase": "Running", "podIP": "10.0.1.45", "qosClass": "Burstable"}});
    for chunk in (0..n).collect::<Vec<_>>().chunks(1_000) {
        let ops = chunk
            .iter()
            .map(|i| {
                let mut p = pod.clone();
                p["metadata"]["name"] = format!("p-{i:06}").into();
                p["metadata"]["uid"] = format!("00000000-0000-0000-0000-{i:012}").into();
                Op::Put {
                    key: format!("/k8s/test/core/pods/default/p-{i:06}"),
                    value: Bytes::from(p.to_string()),
                    precondition: Precondition::None,
                }
            })
            .collect();
        store.txn(ops).await.unwrap();
    }
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<Bytes>>();
    for accept in ["application/json", TABLE.1] {
        let before = rss_kib();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let sampler = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(rss_kib());
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            peak
        });
        let t = std::time::Instant::now();
        let req = http::Request::get(format!("{}/api/v1/namespaces/default/pods", s.base))
            .header("accept", accept)
            .body(http_body_util::Full::new(Bytes::new()))
            .unwrap();
        let resp = client.request(req).await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let mut body = resp.into_body();
        let mut bytes = 0;
        while let Some(frame) = body.frame().await {
            bytes += frame.unwrap().into_data().map_or(0, |d| d.len());
        }
        let ms = t.elapsed().as_millis();
        stop.store(true, Ordering::Relaxed);
        let peak = sampler.join().unwrap();
        println!(
            "list {n} pods accept {accept}: {ms} ms, {bytes} bytes, peak extra RSS {:.1} MiB",
            peak.saturating_sub(before) as f64 / 1024.0
        );
    }
    s.api.shutdown().await;
}
