//! The real kubectl (1.32) against a live server: discovery, Table output, create, get, patch,
//! apply (client- and server-side), scale, delete, watch, namespaces.
//! These use the test kinds of `support/kinds.rs`; `kubectl_builtin.rs` runs kubectl against the
//! real built-in kinds, including the `kubectl create <kind>` generators (protobuf bodies).

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use support::{TestServer, server};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

struct Kubectl {
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    cache: PathBuf,
}

impl Kubectl {
    fn new(s: &TestServer) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("config");
        let cfg = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: {}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: c\n  context:\n    cluster: t\n    user: u\n    namespace: default\ncurrent-context: c\n",
            s.base
        );
        std::fs::write(&kubeconfig, cfg).unwrap();
        let cache = dir.path().join("cache");
        Self {
            _dir: dir,
            kubeconfig,
            cache,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--request-timeout=10s")
            .args(args);
        c.env("KUBECACHEDIR", &self.cache)
            .env("HOME", self.cache.parent().unwrap_or(Path::new("/tmp")));
        c.kill_on_drop(true);
        c
    }

    /// Runs kubectl; returns (success, stdout, stderr).
    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = tokio::time::timeout(Duration::from_secs(30), self.cmd(args).output())
            .await
            .expect("kubectl finished within 30s")
            .expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args).await;
        assert!(ok, "kubectl {args:?} failed:\nstdout: {out}\nstderr: {err}");
        out
    }
}

#[tokio::test]
async fn kubectl_get_create_patch_delete() {
    let s = server().await;
    let k = Kubectl::new(&s);
    let out = k.ok(&["get", "namespaces"]).await;
    assert!(out.lines().next().unwrap().starts_with("NAME"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("kube-system") && l.contains("Active")),
        "{out}"
    );
    let out = k.ok(&["version", "-o", "json"]).await;
    assert!(out.contains("v1.32.0-eks-skiff"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("demo.yaml");
    std::fs::write(
        &f,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\ndata:\n  a: \"1\"\n",
    )
    .unwrap();
    let out = k.ok(&["create", "-f", f.to_str().unwrap()]).await;
    assert_eq!(out.trim(), "configmap/demo created");
    let out = k.ok(&["get", "cm", "demo", "-o", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["data"]["a"], "1");
    let out = k.ok(&["get", "configmaps"]).await;
    assert!(
        out.lines()
            .any(|l| l.starts_with("demo") && l.split_whitespace().nth(1) == Some("1")),
        "{out}"
    );
    let (ok, _, err) = k.run(&["create", "-f", f.to_str().unwrap()]).await;
    assert!(!ok);
    assert!(err.contains("configmaps \"demo\" already exists"), "{err}");

    let out = k
        .ok(&["patch", "cm", "demo", "-p", r#"{"data":{"b":"2"}}"#])
        .await;
    assert_eq!(out.trim(), "configmap/demo patched");
    let out = k
        .ok(&[
            "patch",
            "cm",
            "demo",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/data/a"}]"#,
        ])
        .await;
    assert_eq!(out.trim(), "configmap/demo patched");
    let out = k.ok(&["get", "cm", "demo", "-o", "jsonpath={.data}"]).await;
    assert_eq!(out, r#"{"b":"2"}"#);
    k.ok(&["label", "cm", "demo", "tier=web"]).await;
    let out = k.ok(&["get", "cm", "-l", "tier=web", "-o", "name"]).await;
    assert_eq!(out.trim(), "configmap/demo");
    let out = k
        .ok(&[
            "get",
            "cm",
            "--field-selector",
            "metadata.name=demo",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(out.trim(), "configmap/demo");

    let out = k.ok(&["delete", "cm", "demo"]).await;
    assert_eq!(out.trim(), "configmap \"demo\" deleted");
    let (ok, _, err) = k.run(&["get", "cm", "demo"]).await;
    assert!(
        !ok && err.contains("configmaps \"demo\" not found"),
        "{err}"
    );
    s.api.shutdown().await;
}

#[tokio::test]
async fn kubectl_apply_client_and_server_side() {
    let s = server().await;
    let k = Kubectl::new(&s);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("cm.yaml");
    std::fs::write(
        &f,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: \"1\"\n",
    )
    .unwrap();
    let fp = f.to_str().unwrap();
    let out = k.ok(&["apply", "-f", fp]).await;
    assert_eq!(out.trim(), "configmap/applied created");
    std::fs::write(
        &f,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: \"2\"\n",
    )
    .unwrap();
    let out = k.ok(&["apply", "-f", fp]).await;
    assert_eq!(out.trim(), "configmap/applied configured");
    let out = k.ok(&["apply", "-f", fp]).await;
    assert_eq!(out.trim(), "configmap/applied unchanged");
    let out = k
        .ok(&["get", "cm", "applied", "-o", "jsonpath={.data.a}"])
        .await;
    assert_eq!(out, "2");

    std::fs::write(
        &f,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  x: \"1\"\n",
    )
    .unwrap();
    let out = k.ok(&["apply", "--server-side", "-f", fp]).await;
    assert_eq!(out.trim(), "configmap/ssa serverside-applied");
    let out = k
        .ok(&[
            "get",
            "cm",
            "ssa",
            "-o",
            "jsonpath={.metadata.managedFields[0].manager}",
        ])
        .await;
    assert_eq!(out, "kubectl");
    s.api.shutdown().await;
}

#[tokio::test]
async fn kubectl_deployments_scale_and_namespaces() {
    let s = server().await;
    let k = Kubectl::new(&s);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("web.json");
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}});
    std::fs::write(&f, d.to_string()).unwrap();
    let out = k.ok(&["create", "-f", f.to_str().unwrap()]).await;
    assert_eq!(out.trim(), "deployment.apps/web created");
    let out = k.ok(&["scale", "deployment", "web", "--replicas=3"]).await;
    assert_eq!(out.trim(), "deployment.apps/web scaled");
    let out = k
        .ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])
        .await;
    assert_eq!(out, "3");
    let out = k.ok(&["api-resources", "--api-group=apps"]).await;
    assert!(
        out.lines().any(|l| l.starts_with("deployments")
            && l.contains("deploy")
            && l.contains("Deployment")),
        "{out}"
    );

    // kubectl 1.32 asks for aggregated discovery (one document per root) and gets it; a plain
    // `Accept` still gets the legacy APIGroupList.
    let aggregated = "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,\
                      application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let r = s
        .req("GET", "/apis", None, None, &[("accept", aggregated)])
        .await;
    assert_eq!(
        r.headers["content-type"],
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    assert_eq!(r.body["kind"], "APIGroupDiscoveryList");
    let apps = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "apps")
        .expect("apps group");
    let deployments = apps["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "deployments")
        .expect("deployments");
    assert_eq!(deployments["scope"], "Namespaced");
    assert_eq!(deployments["responseKind"]["kind"], "Deployment");
    let subs: Vec<&str> = deployments["subresources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subresource"].as_str().unwrap())
        .collect();
    assert!(
        subs.contains(&"status") && subs.contains(&"scale"),
        "{subs:?}"
    );
    let core = s
        .req("GET", "/api", None, None, &[("accept", aggregated)])
        .await;
    let core_items = core.body["items"].as_array().unwrap();
    assert!(
        core_items[0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["resource"] == "configmaps" && r["scope"] == "Namespaced"),
        "{}",
        core.text
    );
    let legacy = s.get("/apis").await;
    assert_eq!(legacy.body["kind"], "APIGroupList");

    let ns = dir.path().join("ns.yaml");
    std::fs::write(&ns, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: team\n").unwrap();
    let out = k.ok(&["create", "-f", ns.to_str().unwrap()]).await;
    assert_eq!(out.trim(), "namespace/team created\nconfigmap/x created");
    let out = k
        .ok(&["delete", "namespace", "team", "--timeout=20s"])
        .await;
    assert_eq!(out.trim(), "namespace \"team\" deleted");
    let (ok, _, _) = k.run(&["get", "namespace", "team"]).await;
    assert!(!ok, "namespace gone once kubectl returns");
    let (ok, _, err) = k.run(&["delete", "namespace", "default"]).await;
    assert!(
        !ok && err.contains("this namespace may not be deleted"),
        "{err}"
    );
    s.api.shutdown().await;
}

#[tokio::test]
async fn kubectl_get_watch_prints_new_objects() {
    let s = server().await;
    let k = Kubectl::new(&s);
    let mut child = k
        .cmd(&["get", "configmaps", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Give kubectl time to list and start watching, then create.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.post(
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"name": "watched"}, "data": {"a": "b"}}),
    )
    .await;
    let found = tokio::time::timeout(Duration::from_secs(15), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("watched") {
                return line;
            }
        }
        String::new()
    })
    .await
    .expect("kubectl printed the new object");
    assert!(found.split_whitespace().nth(1) == Some("1"), "{found}");
    let _ = child.kill().await;
    s.api.shutdown().await;
}
