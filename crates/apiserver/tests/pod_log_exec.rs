//! `kubectl logs` and `kubectl exec`/`port-forward` against pods of simulated nodes: the log is
//! the container's lifecycle as the kubelet recorded it (status and Events, written here as the
//! simulated kubelet writes them), the streaming subresources are refused with a 400 that says why.

#[path = "admission_kit.rs"]
mod kit;
mod support;

use std::sync::Arc;
use std::time::Duration;

use kit::Kubectl;
use serde_json::{Value, json};
use skiff_apiserver::client::RegistryClient;
use skiff_apiserver::server::ClusterApiConfig;
use skiff_k8s_core::client::{ApiClient, ResourceRef, WriteOptions};
use support::{TestServer, server_with};

async fn server() -> TestServer {
    server_with(ClusterApiConfig::new(
        "logs",
        "127.0.0.1:0".parse().unwrap(),
    ))
    .await
}

fn pods() -> ResourceRef {
    ResourceRef::new("", "v1", "pods").in_namespace("default")
}

fn kubelet(s: &TestServer) -> RegistryClient {
    RegistryClient::new(Arc::clone(&s.api.registry), "system:node:node-1")
}

/// A bound two-container pod; returns its uid.
async fn make_pod(s: &TestServer, name: &str) -> String {
    let r = s
        .post(
            "/api/v1/namespaces/default/pods",
            &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"nodeName": "node-1", "containers": [
                    {"name": "web", "image": "nginx"}, {"name": "side", "image": "busybox"}]}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["metadata"]["uid"].as_str().unwrap().to_string()
}

async fn set_statuses(c: &RegistryClient, name: &str, statuses: Value) {
    let mut pod = c.get(&pods(), name).await.unwrap();
    pod["status"]["phase"] = json!("Running");
    pod["status"]["containerStatuses"] = statuses;
    c.update_status(&pods(), pod, &WriteOptions::default())
        .await
        .unwrap();
}

async fn kubelet_event(
    c: &RegistryClient,
    pod: &str,
    uid: &str,
    reason: &str,
    msg: &str,
    at: &str,
) {
    let ev = json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{pod}.{}-{}", reason.to_lowercase(), at.replace([':', '.'], "-").to_lowercase())},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": pod, "namespace": "default",
                           "uid": uid, "fieldPath": "spec.containers{web}"},
        "reason": reason, "message": msg, "type": "Normal", "count": 1,
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": at, "lastTimestamp": at});
    c.create(
        &ResourceRef::new("", "v1", "events").in_namespace("default"),
        ev,
        &WriteOptions::default(),
    )
    .await
    .unwrap();
}

fn running(started: &str, restarts: i64, last: Value) -> Value {
    json!([
        {"name": "web", "image": "docker.io/library/nginx:latest", "restartCount": restarts,
         "containerID": "containerd://c2", "ready": true,
         "state": {"running": {"startedAt": started}}, "lastState": last},
        {"name": "side", "image": "docker.io/library/busybox:latest", "restartCount": 0,
         "ready": false, "state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {}}
    ])
}

#[tokio::test]
async fn kubectl_logs_shows_the_recorded_lifecycle() {
    let s = server().await;
    let k = Kubectl::new(&s.base);
    let c = kubelet(&s);
    let uid = make_pod(&s, "app").await;
    kubelet_event(
        &c,
        "app",
        &uid,
        "Pulled",
        "Container image \"nginx\" already present on machine",
        "2026-01-01T00:00:01Z",
    )
    .await;
    kubelet_event(
        &c,
        "app",
        &uid,
        "Created",
        "Created container: web",
        "2026-01-01T00:00:01Z",
    )
    .await;
    kubelet_event(
        &c,
        "app",
        &uid,
        "Started",
        "Started container web",
        "2026-01-01T00:00:02Z",
    )
    .await;
    set_statuses(
        &c,
        "app",
        running(
            "2026-01-01T00:00:10Z",
            1,
            json!({"terminated": {"exitCode": 137, "reason": "OOMKilled",
                "containerID": "containerd://c1",
                "startedAt": "2026-01-01T00:00:02Z", "finishedAt": "2026-01-01T00:00:09Z"}}),
        ),
    )
    .await;

    // kubectl 1.32 picks the first container itself (and says so); the API answers upstream's
    // 400 to a client that does not.
    let (ok, out, err) = k.run(&["logs", "app"], None).await;
    assert!(
        ok && err.contains("Defaulted container \"web\" out of: web, side"),
        "{err}"
    );
    assert!(out.contains("Started container web"), "{out}");
    let r = s.get("/api/v1/namespaces/default/pods/app/log").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["message"],
        "a container name must be specified for pod app, choose one of: [web side]"
    );
    let err = k.fails(&["logs", "app", "-c", "nope"], None).await;
    assert!(
        err.contains("container nope is not valid for pod app"),
        "{err}"
    );
    let err = k.fails(&["logs", "app", "-c", "side"], None).await;
    assert!(
        err.contains("Error from server (BadRequest): container \"side\" in pod \"app\" is waiting to start: ContainerCreating"),
        "{err}"
    );

    // The current run: started after the OOM kill, still running.
    let out = k.ok(&["logs", "app", "-c", "web"], None).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "kubelet: Started: Started container web", "{out}");
    assert!(lines[1].starts_with("skiff: container web (containerd://c2, image docker.io/library/nginx:latest) is simulated on node node-1"), "{out}");
    assert_eq!(lines.len(), 2, "{out}");

    // The previous run: its events and how it ended.
    let out = k
        .ok(
            &["logs", "app", "-c", "web", "--previous", "--timestamps"],
            None,
        )
        .await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "2026-01-01T00:00:01Z kubelet: Pulled: Container image \"nginx\" already present on machine",
        "{out}"
    );
    assert_eq!(
        lines.last().unwrap(),
        &"2026-01-01T00:00:09Z skiff: container web exited with code 137 (OOMKilled)"
    );
    let out = k
        .ok(&["logs", "app", "-c", "web", "-p", "--tail=1"], None)
        .await;
    assert_eq!(
        out,
        "skiff: container web exited with code 137 (OOMKilled)\n"
    );

    // A pod not yet bound has an empty log, as upstream.
    let r = s
        .post(
            "/api/v1/namespaces/default/pods",
            &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pending"},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]}}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(k.ok(&["logs", "pending"], None).await, "");
    let err = k.fails(&["logs", "ghost"], None).await;
    assert!(err.contains("pods \"ghost\" not found"), "{err}");
}

#[tokio::test]
async fn kubectl_logs_follow_ends_when_the_container_exits() {
    let s = server().await;
    let k = Kubectl::new(&s.base);
    let c = kubelet(&s);
    make_pod(&s, "job").await;
    set_statuses(&c, "job", running("2026-01-01T00:00:10Z", 0, json!({}))).await;
    let follower = {
        let k = Kubectl::new(&s.base);
        tokio::spawn(async move { k.ok(&["logs", "job", "-c", "web", "-f"], None).await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!follower.is_finished(), "follow waits for the container");
    let mut pod = c.get(&pods(), "job").await.unwrap();
    pod["status"]["containerStatuses"][0]["state"] = json!({"terminated": {"exitCode": 0,
        "reason": "Completed", "containerID": "containerd://c2",
        "startedAt": "2026-01-01T00:00:10Z", "finishedAt": "2026-01-01T00:00:11Z"}});
    c.update_status(&pods(), pod, &WriteOptions::default())
        .await
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(20), follower)
        .await
        .expect("follow ends once the container exits")
        .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"kubelet: Started: Started container web"),
        "{out}"
    );
    assert_eq!(
        lines.last(),
        Some(&"skiff: container web exited with code 0 (Completed)"),
        "{out}"
    );
    assert_eq!(lines.len(), 3, "each line once: {out}");
    drop(k);
}

#[tokio::test]
async fn exec_attach_and_port_forward_are_refused_with_the_reason() {
    let s = server().await;
    let k = Kubectl::new(&s.base);
    let c = kubelet(&s);
    make_pod(&s, "app").await;
    set_statuses(&c, "app", running("2026-01-01T00:00:10Z", 0, json!({}))).await;
    let err = k
        .fails(&["exec", "app", "-c", "web", "--", "ls"], None)
        .await;
    assert!(
        err.contains("Error from server (BadRequest): pod app runs on simulated node node-1: Skiff's simulated kubelet starts no containers, so there is no process to exec into"),
        "{err}"
    );
    let err = k
        .fails(&["port-forward", "pod/app", "18080:80"], None)
        .await;
    assert!(
        err.contains("error upgrading connection: pod app runs on simulated node node-1")
            && err.contains("nothing listens on the pod's ports to forward to"),
        "{err}"
    );

    // Over plain HTTP: the upstream-shaped Status.
    for sub in [
        "exec?container=web&command=ls",
        "attach?container=web",
        "portforward",
    ] {
        let r = s
            .post(
                &format!("/api/v1/namespaces/default/pods/app/{sub}"),
                &json!({}),
            )
            .await;
        assert_eq!(r.status, 400, "{sub}: {}", r.text);
        assert_eq!(r.body["kind"], "Status");
        assert_eq!(r.body["reason"], "BadRequest");
        assert_eq!(r.body["code"], 400);
    }
    let r = s
        .get("/api/v1/namespaces/default/pods/app/exec?container=db&command=ls")
        .await;
    assert_eq!(r.body["message"], "container db is not valid for pod app");
    let r = s
        .get("/api/v1/namespaces/default/pods/nope/exec?command=ls")
        .await;
    assert_eq!(r.status, 404);
}
