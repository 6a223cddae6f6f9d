//! Shared kit of the workload integration tests: a real API server registry on an embedded store in
//! a tempdir, every controller running on an injected clock, the real kubectl pointed at it.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the kit"
)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use skiff_apiserver::client::RegistryClient;
use skiff_apiserver::server::{ClusterApiConfig, RunningApi, start};
use skiff_controllers::runtime::Clock;
use skiff_k8s_core::client::{ApiClient, ListOptions};

pub async fn eventually<F, Fut>(what: &str, mut f: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Value>>,
{
    for _ in 0..600 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

pub struct Cluster {
    pub _dir: tempfile::TempDir,
    pub client: Arc<dyn ApiClient>,
    pub stop: tokio::sync::watch::Sender<bool>,
    pub api: RunningApi,
    pub kubeconfig: std::path::PathBuf,
}

impl Cluster {
    pub async fn start(clock: Arc<dyn Clock>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = skiff_store::open("embedded", &dir.path().join("data"))
            .await
            .unwrap();
        let api = start(
            store,
            ClusterApiConfig::new("c1", "127.0.0.1:0".parse().unwrap()),
        )
        .await
        .unwrap();
        let client: Arc<dyn ApiClient> = Arc::new(RegistryClient::new(
            api.registry.clone(),
            "system:kube-controller-manager",
        ));
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        tokio::spawn(skiff_controllers::run_with_clock(
            client.clone(),
            clock,
            shutdown,
        ));
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: http://{}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: c\n  context:\n    cluster: t\n    user: u\n    namespace: default\ncurrent-context: c\n",
                api.local_addr
            ),
        )
        .unwrap();
        Cluster {
            _dir: dir,
            client,
            stop,
            api,
            kubeconfig,
        }
    }

    pub async fn kubectl(&self, args: &[&str]) -> (bool, String) {
        let home = self.kubeconfig.parent().unwrap();
        let out = tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env("HOME", home)
            .env("KUBECACHEDIR", home.join("cache"))
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(60), out)
            .await
            .expect("kubectl finished")
            .expect("kubectl runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// `kubectl get events` about one object, as `Type/Reason: message` lines, once `want` is
    /// among them (Events are written off the reconcile's path).
    pub async fn kubectl_events(&self, kind: &str, name: &str, want: &str) -> String {
        let selector = format!("involvedObject.kind={kind},involvedObject.name={name}");
        let template = r#"{range .items[*]}{.type}/{.reason}: {.message}{"\n"}{end}"#;
        let mut last = String::new();
        for _ in 0..100 {
            let (ok, out) = self
                .kubectl(&[
                    "get",
                    "events",
                    "--field-selector",
                    &selector,
                    "-o",
                    &format!("jsonpath={template}"),
                ])
                .await;
            if ok && out.lines().any(|l| l == want) {
                return out;
            }
            last = out;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no event {want:?} about {kind} {name}; saw:\n{last}");
    }

    pub async fn kubectl_ok(&self, args: &[&str]) -> String {
        let (ok, out) = self.kubectl(args).await;
        assert!(ok, "kubectl {args:?}: {out}");
        out
    }

    pub async fn list(&self, r: &skiff_k8s_core::client::ResourceRef) -> Vec<Value> {
        self.client
            .list(&r.clone().in_namespace("default"), &ListOptions::default())
            .await
            .unwrap()
            .items
    }

    pub async fn get(&self, r: &skiff_k8s_core::client::ResourceRef, name: &str) -> Option<Value> {
        self.client
            .get_opt(&r.clone().in_namespace("default"), name)
            .await
            .unwrap()
    }

    pub async fn stop(self) {
        self.stop.send(true).unwrap();
        self.api.shutdown().await;
    }
}

/// Runs the real kubectl against the API server's plain-HTTP listener; returns stdout.
pub async fn kubectl_at(addr: std::net::SocketAddr, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("kubeconfig");
    std::fs::write(
        &cfg,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: http://{addr}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: c\n  context:\n    cluster: t\n    user: u\n    namespace: default\ncurrent-context: c\n"
        ),
    )
    .unwrap();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&cfg)
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
