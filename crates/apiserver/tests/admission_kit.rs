//! Shared by the admission and pod-subresource tests (`#[path]`-included): the real kubectl
//! against a server of built-in kinds. As a test target of its own it holds no tests.
#![allow(dead_code, reason = "each including test file uses a different part")]

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// kubectl with its own kubeconfig and cache, pointed at `base`.
pub struct Kubectl {
    dir: tempfile::TempDir,
}

impl Kubectl {
    pub fn new(base: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cfg = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: {base}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: c\n  context:\n    cluster: t\n    user: u\n    namespace: default\ncurrent-context: c\n"
        );
        std::fs::write(dir.path().join("config"), cfg).unwrap();
        Self { dir }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.arg("--kubeconfig")
            .arg(self.dir.path().join("config"))
            .arg("--request-timeout=10s")
            .args(args);
        c.env("KUBECACHEDIR", self.dir.path().join("cache"))
            .env("HOME", self.dir.path());
        c.kill_on_drop(true);
        c
    }

    /// Runs kubectl (stdin optional); returns (success, stdout, stderr).
    pub async fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut c = self.cmd(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("kubectl runs");
        if let Some(input) = stdin {
            use tokio::io::AsyncWriteExt;
            let mut s = child.stdin.take().unwrap();
            s.write_all(input.as_bytes()).await.unwrap();
        } else {
            drop(child.stdin.take());
        }
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("kubectl finished within 60s")
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    /// Runs kubectl and insists on success; returns stdout.
    pub async fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out, err) = self.run(args, stdin).await;
        assert!(ok, "kubectl {args:?} failed:\nstdout: {out}\nstderr: {err}");
        out
    }

    /// Runs kubectl and insists on failure; returns stderr.
    pub async fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out, err) = self.run(args, stdin).await;
        assert!(
            !ok,
            "kubectl {args:?} should fail:\nstdout: {out}\nstderr: {err}"
        );
        err
    }

    /// `kubectl get … -o json`, parsed.
    pub async fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a, None).await).expect("kubectl printed JSON")
    }
}
