//! Test kit for end-to-end tests: start the real `skiff` binary on free loopback ports with a fresh data
//! dir, wait until it is healthy, and drive the real clients (kubectl, aws CLI) against it.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the kit"
)]

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running `skiff up`; killed (SIGKILL) on drop.
pub struct Skiff {
    pub child: Child,
    pub data_dir: PathBuf,
    pub gateway: String,
    _tmp: Option<tempfile::TempDir>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Skiff {
    /// `skiff up` with a new temporary data dir and the given extra arguments.
    pub fn start(extra: &[&str]) -> Skiff {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut s = Skiff::start_in(&dir, extra);
        s._tmp = Some(tmp);
        s
    }

    /// `skiff up` on an existing data dir (restart tests).
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> Skiff {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_skiff"));
        cmd.arg("up")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(&listen)
            .arg("--cluster-port-base")
            .arg("0")
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("spawn skiff");
        let mut s = Skiff {
            child,
            data_dir: data_dir.to_path_buf(),
            gateway: format!("http://{listen}"),
            _tmp: None,
        };
        s.wait_healthy(Duration::from_secs(60));
        s
    }

    /// Poll `GET /_skiff/health` until 200; panics with skiff's stderr if it dies or times out.
    pub fn wait_healthy(&mut self, timeout: Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(e) = self.child.stderr.as_mut() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("skiff exited early ({status}):\n{err}");
            }
            let out = Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--max-time",
                    "2",
                ])
                .arg(format!("{}/_skiff/health", self.gateway))
                .output()
                .expect("curl is installed");
            if String::from_utf8_lossy(&out.stdout) == "200" {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "skiff did not become healthy in {timeout:?}"
            );
            #[allow(
                clippy::disallowed_methods,
                reason = "a plain test thread polling a child process"
            )]
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Write the admin kubeconfig of `cluster` to a file and return its path.
    pub fn kubeconfig(&self, cluster: &str) -> PathBuf {
        let out = Command::new(env!("CARGO_BIN_EXE_skiff"))
            .args(["kubeconfig", cluster, "--data-dir"])
            .arg(&self.data_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skiff kubeconfig failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = self.data_dir.join(format!("kubeconfig-{cluster}"));
        std::fs::write(&path, &out.stdout).unwrap();
        path
    }

    /// Run `aws` against the gateway as the root user in us-east-1.
    pub fn aws(&self, args: &[&str]) -> Output {
        Command::new("aws")
            .args(args)
            .env("AWS_ENDPOINT_URL", &self.gateway)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_PAGER", "")
            .output()
            .expect("aws CLI is installed")
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Skiff {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Run kubectl with a kubeconfig; never hangs (request timeout).
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--request-timeout=20s")
        .args(args)
        .output()
        .expect("kubectl is installed")
}

/// stdout of a command that must succeed.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// stderr of a command that must fail.
pub fn fails(out: Output) -> String {
    assert!(
        !out.status.success(),
        "command unexpectedly succeeded:\nstdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The shared/ folder beside the repository (seed scenarios).
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// stdout of an `aws` call that must succeed, trimmed (`--output text` answers).
pub fn text(skiff: &Skiff, args: &[&str]) -> String {
    ok(skiff.aws(args)).trim().to_string()
}

/// stdout of an `aws` call that must succeed, parsed as JSON.
pub fn json(skiff: &Skiff, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(skiff.aws(args))).unwrap()
}

/// `aws iam create-role` trusting `service` (`eks.amazonaws.com`, `ec2.amazonaws.com`); its ARN.
pub fn role(skiff: &Skiff, name: &str, service: &str) -> String {
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"{service}"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    text(
        skiff,
        &[
            "iam",
            "create-role",
            "--role-name",
            name,
            "--assume-role-policy-document",
            &trust,
            "--query",
            "Role.Arn",
            "--output",
            "text",
        ],
    )
}

/// Polls `check` every 100 ms for up to 60 s.
pub fn wait(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        #[expect(
            clippy::disallowed_methods,
            reason = "a plain test thread polling child processes"
        )]
        std::thread::sleep(Duration::from_millis(100));
    }
}
