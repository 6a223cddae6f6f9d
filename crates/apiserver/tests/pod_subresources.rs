//! `pods/binding` and `pods/eviction` over HTTP, through the in-process client (the scheduler's
//! path), and under `kubectl drain`.

#[path = "admission_kit.rs"]
mod kit;
mod support;

use std::sync::Arc;

use kit::Kubectl;
use serde_json::{Value, json};
use skiff_apiserver::client::RegistryClient;
use skiff_apiserver::server::ClusterApiConfig;
use skiff_k8s_core::client::{ApiClient, ResourceRef, WriteOptions};
use support::{TestServer, server_with};

async fn server() -> TestServer {
    server_with(ClusterApiConfig::new(
        "pods",
        "127.0.0.1:0".parse().unwrap(),
    ))
    .await
}

fn pods() -> ResourceRef {
    ResourceRef::new("", "v1", "pods").in_namespace("default")
}

fn client(s: &TestServer) -> RegistryClient {
    RegistryClient::new(Arc::clone(&s.api.registry), "system:kube-scheduler")
}

async fn make_pod(s: &TestServer, name: &str, labels: Value) {
    let r = s
        .post(
            "/api/v1/namespaces/default/pods",
            &json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "labels": labels},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

fn binding(name: &str, node: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node}})
}

/// What a kubelet would report: Running and Ready.
async fn set_running(c: &RegistryClient, name: &str) {
    let mut pod = c.get(&pods(), name).await.unwrap();
    pod["status"]["phase"] = json!("Running");
    pod["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}]);
    c.update_status(&pods(), pod, &WriteOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn binding_assigns_a_node_once() {
    let s = server().await;
    make_pod(&s, "web", json!({})).await;
    let r = s
        .post(
            "/api/v1/namespaces/default/pods/web/binding",
            &binding("web", "node-1"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["kind"], "Status");
    assert_eq!(r.body["status"], "Success");
    let pod = s.get("/api/v1/namespaces/default/pods/web").await.body;
    assert_eq!(pod["spec"]["nodeName"], "node-1");
    let sched = pod["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "PodScheduled")
        .unwrap();
    assert_eq!(sched["status"], "True");

    // The scheduler's in-process path answers the upstream 409.
    let c = client(&s);
    let e = c
        .create_subresource(
            &pods(),
            "web",
            "binding",
            binding("web", "node-2"),
            &WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), 409);
    assert_eq!(
        e.message(),
        "Operation cannot be fulfilled on pods/binding \"web\": pod web is already assigned to node \"node-1\""
    );
    // Over HTTP the same refusal (its code depends on the hook error mapping, see pod_binding.rs).
    let r = s
        .post(
            "/api/v1/namespaces/default/pods/web/binding",
            &binding("web", "node-2"),
        )
        .await;
    assert!(!r.status.is_success());
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("pod web is already assigned to node \"node-1\""),
        "{}",
        r.text
    );
    let still = s.get("/api/v1/namespaces/default/pods/web").await.body;
    assert_eq!(still["spec"]["nodeName"], "node-1");

    // Validation, name mismatch, missing pod.
    let r = s
        .post(
            "/api/v1/namespaces/default/pods/web/binding",
            &json!({"metadata": {"name": "web"}, "target": {"kind": "Pod"}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(
        r.body["message"],
        "Binding \"web\" is invalid: [target.kind: Unsupported value: \"Pod\": supported values: \"Node\", \"<empty>\", target.name: Required value]"
    );
    let r = s
        .post(
            "/api/v1/namespaces/default/pods/web/binding",
            &binding("other", "n"),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let e = c
        .create_subresource(
            &pods(),
            "ghost",
            "binding",
            binding("ghost", "n"),
            &WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), 404);
    let e = c
        .create_subresource(&pods(), "web", "exec", json!({}), &WriteOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), 405);
}

#[tokio::test]
async fn legacy_bindings_and_dry_run() {
    let s = server().await;
    make_pod(&s, "a", json!({})).await;
    let r = s
        .post(
            "/api/v1/namespaces/default/pods/a/binding?dryRun=All",
            &binding("a", "n1"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let pod = s.get("/api/v1/namespaces/default/pods/a").await.body;
    assert!(
        pod["spec"].get("nodeName").is_none(),
        "dry run bound: {pod}"
    );
    let r = s
        .post("/api/v1/namespaces/default/bindings", &binding("a", "n1"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let pod = s.get("/api/v1/namespaces/default/pods/a").await.body;
    assert_eq!(pod["spec"]["nodeName"], "n1");
}

#[tokio::test]
async fn discovery_lists_the_subresources() {
    let s = server().await;
    let core = s.get("/api/v1").await.body;
    let find = |n: &str| {
        core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .cloned()
    };
    let b = find("pods/binding").expect("pods/binding listed");
    assert_eq!(b["kind"], "Binding");
    assert_eq!(b["verbs"], json!(["create"]));
    let e = find("pods/eviction").expect("pods/eviction listed");
    assert_eq!(e["kind"], "Eviction");
    assert_eq!(e["group"], "policy");
    assert_eq!(e["version"], "v1");
    assert!(find("bindings").is_some());
    let log = find("pods/log").expect("pods/log listed");
    assert_eq!(
        (log["kind"].clone(), log["verbs"].clone()),
        (json!("Pod"), json!(["get"]))
    );
    assert_eq!(
        find("pods/exec").expect("pods/exec")["verbs"],
        json!(["create", "get"])
    );
    // The aggregated form (what kubectl 1.32 asks for) nests the same subresources under pods.
    let aggregated = s
        .req(
            "GET",
            "/api",
            None,
            None,
            &[(
                "accept",
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            )],
        )
        .await;
    let pods = aggregated.body["items"][0]["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "pods")
        .cloned()
        .expect("pods in aggregated discovery");
    let mut subs: Vec<&str> = pods["subresources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subresource"].as_str().unwrap())
        .collect();
    subs.sort_unstable();
    assert_eq!(
        subs,
        [
            "attach",
            "binding",
            "eviction",
            "exec",
            "log",
            "portforward",
            "status"
        ]
    );
    // kubectl still reads discovery cleanly and shows no subresource rows.
    let k = Kubectl::new(&s.base);
    let out = k.ok(&["api-resources"], None).await;
    assert!(out.lines().any(|l| l.starts_with("pods ")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("bindings ")), "{out}");
    assert!(!out.contains("pods/"), "{out}");
}

#[tokio::test]
async fn eviction_honours_the_disruption_budget() {
    let s = server().await;
    let c = client(&s);
    for n in ["web-1", "web-2"] {
        make_pod(&s, n, json!({"app": "web"})).await;
        set_running(&c, n).await;
    }
    make_pod(&s, "lonely", json!({"app": "other"})).await;
    set_running(&c, "lonely").await;
    let r = s
        .post(
            "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
            &json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": "pdb-1"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // What the disruption controller would write.
    let mut pdb = r.body.clone();
    pdb["status"] = json!({"observedGeneration": 1, "disruptionsAllowed": 1,
        "currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2});
    let r = s
        .put(
            "/apis/policy/v1/namespaces/default/poddisruptionbudgets/pdb-1/status",
            &pdb,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let eviction = |n: &str| {
        json!({"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": n, "namespace": "default"}, "deleteOptions": {"gracePeriodSeconds": 0}})
    };
    // No budget covers it: deleted.
    let r = s
        .post(
            "/api/v1/namespaces/default/pods/lonely/eviction",
            &eviction("lonely"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["status"], "Success");
    assert_eq!(
        s.get("/api/v1/namespaces/default/pods/lonely").await.status,
        404
    );
    // Dry run takes nothing.
    let r = s
        .post(
            "/api/v1/namespaces/default/pods/web-1/eviction?dryRun=All",
            &eviction("web-1"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let got = s
        .get("/apis/policy/v1/namespaces/default/poddisruptionbudgets/pdb-1")
        .await
        .body;
    assert_eq!(got["status"]["disruptionsAllowed"], 1);
    // One disruption allowed: web-1 goes, the budget records it.
    let r = s
        .post(
            "/api/v1/namespaces/default/pods/web-1/eviction",
            &eviction("web-1"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        s.get("/api/v1/namespaces/default/pods/web-1").await.status,
        404
    );
    let got = s
        .get("/apis/policy/v1/namespaces/default/poddisruptionbudgets/pdb-1")
        .await
        .body;
    assert_eq!(got["status"]["disruptionsAllowed"], 0);
    assert!(got["status"]["disruptedPods"]["web-1"].is_string(), "{got}");
    // None left: 429 for the in-process client, and web-2 stays.
    let e = c
        .create_subresource(
            &pods(),
            "web-2",
            "eviction",
            eviction("web-2"),
            &WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), 429);
    assert_eq!(
        e.message(),
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    let r = s
        .post(
            "/api/v1/namespaces/default/pods/web-2/eviction",
            &eviction("web-2"),
        )
        .await;
    assert!(!r.status.is_success());
    assert!(r.text.contains("disruption budget"), "{}", r.text);
    assert_eq!(
        s.get("/api/v1/namespaces/default/pods/web-2").await.status,
        200
    );
    // A pod that is not ready does not count against a budget that is healthy enough.
    let mut pod = c.get(&pods(), "web-2").await.unwrap();
    pod["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
    c.update_status(&pods(), pod, &WriteOptions::default())
        .await
        .unwrap();
    c.create_subresource(
        &pods(),
        "web-2",
        "eviction",
        eviction("web-2"),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        s.get("/api/v1/namespaces/default/pods/web-2").await.status,
        404
    );
}

#[tokio::test]
async fn kubectl_drain_evicts_a_nodes_pods() {
    let s = server().await;
    let k = Kubectl::new(&s.base);
    let r = s
        .post(
            "/api/v1/nodes",
            &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let c = client(&s);
    for n in ["a", "b"] {
        make_pod(&s, n, json!({"app": "drain"})).await;
        c.create_subresource(
            &pods(),
            n,
            "binding",
            binding(n, "node-1"),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    }
    make_pod(&s, "elsewhere", json!({})).await;
    let (ok, out, err) = k
        .run(
            &[
                "drain",
                "node-1",
                "--force",
                "--ignore-daemonsets",
                "--grace-period=0",
                "--timeout=30s",
            ],
            None,
        )
        .await;
    assert!(ok, "drain failed:\n{out}\n{err}");
    assert!(out.contains("node/node-1 cordoned"), "{out}");
    assert!(out.contains("pod/a evicted"), "{out}");
    assert!(out.contains("pod/b evicted"), "{out}");
    assert!(out.contains("node/node-1 drained"), "{out}");
    for n in ["a", "b"] {
        let path = format!("/api/v1/namespaces/default/pods/{n}");
        assert_eq!(s.get(&path).await.status, 404);
    }
    assert_eq!(
        s.get("/api/v1/namespaces/default/pods/elsewhere")
            .await
            .status,
        200
    );
    let node = s.get("/api/v1/nodes/node-1").await.body;
    assert_eq!(node["spec"]["unschedulable"], true);
}
