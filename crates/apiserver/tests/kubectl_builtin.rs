//! kubectl against the server with the real built-in kinds (`kinds::builtin()`) and OpenAPI, as
//! `skiff up` runs it: validation on, create/apply/get/scale/delete/watch on ConfigMaps,
//! Namespaces and Deployments.

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::server_with;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

struct Kubectl {
    dir: tempfile::TempDir,
}

impl Kubectl {
    fn new(base: &str) -> Self {
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

    async fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
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
        let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("kubectl finished within 30s")
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    async fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out, err) = self.run(args, stdin).await;
        assert!(ok, "kubectl {args:?} failed:\nstdout: {out}\nstderr: {err}");
        out
    }
}

const APP: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  mode: fast
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
";

#[tokio::test]
async fn kubectl_with_builtin_kinds_and_openapi() {
    let cfg =
        skiff_apiserver::server::ClusterApiConfig::new("builtin", "127.0.0.1:0".parse().unwrap());
    let s = server_with(cfg).await;
    let k = Kubectl::new(&s.base);
    let out = k.ok(&["get", "ns"], None).await;
    assert!(
        out.lines()
            .any(|l| l.starts_with("default") && l.contains("Active")),
        "{out}"
    );
    // The `kubernetes` Service's endpoints are this API server, as kube-apiserver publishes them.
    let addr = format!("127.0.0.1:{}", s.api.local_addr.port());
    let out = k
        .ok(
            &[
                "get",
                "endpoints",
                "kubernetes",
                "-o",
                "jsonpath={.subsets[0].addresses[0].ip}:{.subsets[0].ports[0].port}",
            ],
            None,
        )
        .await;
    assert_eq!(out, addr);
    let out = k
        .ok(
            &[
                "get",
                "endpointslices",
                "kubernetes",
                "-o",
                "jsonpath={.endpoints[0].addresses[0]}:{.ports[0].port}",
            ],
            None,
        )
        .await;
    assert_eq!(out, addr);

    let out = k.ok(&["apply", "-f", "-"], Some(APP)).await;
    assert_eq!(
        out.trim(),
        "namespace/shop created\nconfigmap/settings created\ndeployment.apps/web created"
    );
    let out = k
        .ok(
            &["apply", "-f", "-"],
            Some(&APP.replace("replicas: 2", "replicas: 4")),
        )
        .await;
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    let out = k
        .ok(
            &[
                "-n",
                "shop",
                "get",
                "deploy",
                "web",
                "-o",
                "jsonpath={.spec.replicas} {.metadata.generation}",
            ],
            None,
        )
        .await;
    assert_eq!(out, "4 2");
    let out = k
        .ok(
            &["-n", "shop", "scale", "deploy", "web", "--replicas=1"],
            None,
        )
        .await;
    assert_eq!(out.trim(), "deployment.apps/web scaled");
    let out = k.ok(&["-n", "shop", "get", "deployments"], None).await;
    assert!(out.lines().next().unwrap().starts_with("NAME"), "{out}");
    let out = k
        .ok(
            &[
                "-n",
                "shop",
                "get",
                "cm",
                "settings",
                "-o",
                "jsonpath={.data.mode}",
            ],
            None,
        )
        .await;
    assert_eq!(out, "fast");
    let out = k.ok(&["apply", "--server-side", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  namespace: shop\ndata:\n  a: \"1\"\n")).await;
    assert_eq!(out.trim(), "configmap/ssa serverside-applied");
    // Strict field validation from the server, as kubectl asks for it.
    let (ok, _, err) = k.run(&["apply", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n  namespace: shop\nbogus: 1\n")).await;
    assert!(!ok && err.contains("unknown field \"bogus\""), "{err}");

    // Watch prints a new object.
    let mut child = k
        .cmd(&["-n", "shop", "get", "configmaps", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    k.ok(
        &["-n", "shop", "create", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\n"),
    )
    .await;
    let seen = tokio::time::timeout(Duration::from_secs(15), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("late") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(seen, "kubectl get -w printed the new ConfigMap");
    let _ = child.kill().await;

    // The generators send protobuf bodies.
    let out = k
        .ok(
            &[
                "-n",
                "shop",
                "create",
                "configmap",
                "gen",
                "--from-literal=a=1",
            ],
            None,
        )
        .await;
    assert_eq!(out.trim(), "configmap/gen created");
    let out = k
        .ok(
            &["-n", "shop", "get", "cm", "gen", "-o", "jsonpath={.data.a}"],
            None,
        )
        .await;
    assert_eq!(out, "1");
    let out = k
        .ok(
            &[
                "-n",
                "shop",
                "create",
                "secret",
                "generic",
                "s",
                "--from-literal=p=x",
            ],
            None,
        )
        .await;
    assert_eq!(out.trim(), "secret/s created");
    let out = k
        .ok(
            &[
                "-n",
                "shop",
                "get",
                "secret",
                "s",
                "-o",
                "jsonpath={.data.p}",
            ],
            None,
        )
        .await;
    assert_eq!(out, "eA==");
    let out = k
        .ok(&["-n", "shop", "create", "serviceaccount", "robot"], None)
        .await;
    assert_eq!(out.trim(), "serviceaccount/robot created");
    let out = k
        .ok(
            &[
                "-n",
                "shop",
                "create",
                "deployment",
                "api",
                "--image=nginx",
                "--replicas=2",
                "--port=8080",
            ],
            None,
        )
        .await;
    assert_eq!(out.trim(), "deployment.apps/api created");
    let out = k.ok(&["-n", "shop", "get", "deploy", "api", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort}"], None).await;
    assert_eq!(out, "2 nginx 8080");
    let out = k
        .ok(
            &[
                "-n",
                "shop",
                "create",
                "service",
                "nodeport",
                "api",
                "--tcp=80:8080",
            ],
            None,
        )
        .await;
    assert_eq!(out.trim(), "service/api created");
    let out = k.ok(&["-n", "shop", "get", "svc", "api", "-o", "jsonpath={.spec.type} {.spec.ports[0].port} {.spec.ports[0].targetPort} {.spec.selector.app}"], None).await;
    assert_eq!(out, "NodePort 80 8080 api");
    let out = k
        .ok(
            &[
                "-n",
                "shop",
                "create",
                "role",
                "reader",
                "--verb=get,list",
                "--resource=pods",
            ],
            None,
        )
        .await;
    assert_eq!(out.trim(), "role.rbac.authorization.k8s.io/reader created");
    let out = k
        .ok(
            &[
                "-n",
                "shop",
                "get",
                "role",
                "reader",
                "-o",
                "jsonpath={.rules[0].verbs} {.rules[0].resources}",
            ],
            None,
        )
        .await;
    assert_eq!(out, r#"["get","list"] ["pods"]"#);
    let out = k
        .ok(
            &[
                "-n",
                "shop",
                "create",
                "rolebinding",
                "rb",
                "--role=reader",
                "--serviceaccount=shop:robot",
            ],
            None,
        )
        .await;
    assert_eq!(
        out.trim(),
        "rolebinding.rbac.authorization.k8s.io/rb created"
    );
    let out = k.ok(&["-n", "shop", "get", "rolebinding", "rb", "-o", "jsonpath={.roleRef.kind}/{.roleRef.name} {.subjects[0].kind}:{.subjects[0].namespace}:{.subjects[0].name}"], None).await;
    assert_eq!(out, "Role/reader ServiceAccount:shop:robot");
    let out = k.ok(&["create", "namespace", "scratch"], None).await;
    assert_eq!(out.trim(), "namespace/scratch created");

    let out = k
        .ok(&["delete", "namespace", "shop", "--timeout=20s"], None)
        .await;
    assert_eq!(out.trim(), "namespace \"shop\" deleted");
    let (ok, _, err) = k.run(&["-n", "shop", "get", "deploy", "web"], None).await;
    assert!(!ok && err.contains("not found"), "{err}");
    s.api.shutdown().await;
}

fn config_map(data: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\n  namespace: default\ndata:\n{data}"
    )
}

/// Server-side apply field ownership as kubectl shows it: a second manager changing `.data.x`
/// conflicts, `--force-conflicts` takes the field, fields a manager stops applying are pruned, and
/// a non-apply patch makes its manager an owner (`Update`) that appliers then conflict with.
#[tokio::test]
async fn kubectl_server_side_apply_conflicts_and_force() {
    let cfg = skiff_apiserver::server::ClusterApiConfig::new("ssa", "127.0.0.1:0".parse().unwrap());
    let s = server_with(cfg).await;
    let k = Kubectl::new(&s.base);
    let ssa = |manager: &'static str, force: bool| {
        let mut a = vec![
            "apply",
            "--server-side",
            "--field-manager",
            manager,
            "-f",
            "-",
        ];
        if force {
            a.push("--force-conflicts");
        }
        a
    };

    let out = k
        .ok(
            &ssa("alice", false),
            Some(&config_map("  x: \"1\"\n  w: \"1\"\n")),
        )
        .await;
    assert_eq!(out.trim(), "configmap/owned serverside-applied");

    let (ok, out, err) = k
        .run(&ssa("bob", false), Some(&config_map("  x: \"2\"\n")))
        .await;
    assert!(!ok, "conflicting apply succeeded: {out}");
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"alice\": .data.x"),
        "{err}"
    );
    let got = k
        .ok(&["get", "cm", "owned", "-o", "jsonpath={.data.x}"], None)
        .await;
    assert_eq!(got, "1", "a refused apply changed nothing");

    k.ok(&ssa("bob", true), Some(&config_map("  x: \"2\"\n")))
        .await;
    let managers = k
        .ok(
            &[
                "get",
                "cm",
                "owned",
                "-o",
                "jsonpath={.data.x} {range .metadata.managedFields[*]}{.manager}={.fieldsV1.f:data} {end}",
            ],
            None,
        )
        .await;
    assert_eq!(
        managers.trim(),
        "2 alice={\"f:w\":{}} bob={\"f:x\":{}}",
        "bob took .data.x from alice"
    );

    // bob stops applying x: it is his alone, so it goes; alice's w stays.
    k.ok(&ssa("bob", false), Some(&config_map("  z: \"1\"\n")))
        .await;
    let data = k
        .ok(&["get", "cm", "owned", "-o", "jsonpath={.data}"], None)
        .await;
    assert_eq!(data, "{\"w\":\"1\",\"z\":\"1\"}");

    // A merge patch makes carol the `Update` owner of z; bob's apply of z now conflicts with her.
    k.ok(
        &[
            "patch",
            "cm",
            "owned",
            "--type",
            "merge",
            "--field-manager",
            "carol",
            "-p",
            "{\"data\":{\"z\":\"9\"}}",
        ],
        None,
    )
    .await;
    let (ok, _, err) = k
        .run(&ssa("bob", false), Some(&config_map("  z: \"1\"\n")))
        .await;
    assert!(!ok);
    assert!(
        err.contains("conflict with \"carol\" using v1: .data.z"),
        "{err}"
    );
}

/// kubectl's typed `create` generators POST protobuf; kinds well beyond ConfigMaps and Secrets
/// arrive as the JSON objects kubectl would have sent, and a body that is not protobuf is a 400.
#[tokio::test]
async fn kubectl_create_generators_send_protobuf() {
    let cfg = skiff_apiserver::server::ClusterApiConfig::new("pb", "127.0.0.1:0".parse().unwrap());
    let s = server_with(cfg).await;
    let k = Kubectl::new(&s.base);
    k.ok(&["create", "priorityclass", "high", "--value=1000"], None)
        .await;
    k.ok(
        &["create", "service", "clusterip", "web", "--tcp=80:8080"],
        None,
    )
    .await;
    k.ok(
        &[
            "create",
            "cronjob",
            "tick",
            "--image=busybox",
            "--schedule=*/5 * * * *",
        ],
        None,
    )
    .await;
    let out = k
        .ok(
            &[
                "get",
                "priorityclass/high",
                "service/web",
                "cronjob/tick",
                "-o",
                "jsonpath={.items[0].value} {.items[1].spec.ports[0].targetPort} {.items[2].spec.schedule}",
            ],
            None,
        )
        .await;
    assert_eq!(out, "1000 8080 */5 * * * *");

    let r = s
        .req(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some("application/vnd.kubernetes.protobuf"),
            Some(bytes::Bytes::from_static(b"{\"kind\": \"ConfigMap\"}")),
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.text);
    assert_eq!(r.body["reason"], "BadRequest");
}

/// `kubectl diff`, `edit` and `describe`: the everyday read-modify-write loop.
#[tokio::test]
async fn kubectl_diff_edit_and_describe() {
    let cfg =
        skiff_apiserver::server::ClusterApiConfig::new("workflows", "127.0.0.1:0".parse().unwrap());
    let s = server_with(cfg).await;
    let k = Kubectl::new(&s.base);
    k.ok(&["apply", "-f", "-"], Some(APP)).await;

    // diff: nothing to show for the applied manifest (exit 0), a replica change shows (exit 1).
    let (same, out, err) = k.run(&["diff", "-f", "-"], Some(APP)).await;
    assert!(same, "no difference expected:\n{out}\n{err}");
    let changed = APP.replace("replicas: 2", "replicas: 3");
    let (same, out, err) = k.run(&["diff", "-f", "-"], Some(&changed)).await;
    assert!(!same && err.is_empty(), "exit 1 with a diff:\n{out}\n{err}");
    assert!(
        out.contains("-  replicas: 2") && out.contains("+  replicas: 3"),
        "{out}"
    );
    // The server-side dry run behind diff changed nothing.
    let replicas = k
        .ok(
            &[
                "-n",
                "shop",
                "get",
                "deploy",
                "web",
                "-o",
                "jsonpath={.spec.replicas}",
            ],
            None,
        )
        .await;
    assert_eq!(replicas, "2");

    // edit: the editor's change is sent back (a strategic merge patch built from the edit).
    let editor = k.dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i -e 's/replicas: 2/replicas: 4/' -e 's/mode: fast/mode: slow/' \"$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for target in ["deploy/web", "cm/settings"] {
        let out = k
            .cmd(&["-n", "shop", "edit", target])
            .env("KUBE_EDITOR", &editor)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "edit {target}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("edited"));
    }
    let got = k
        .ok(
            &[
                "-n",
                "shop",
                "get",
                "deploy/web",
                "cm/settings",
                "-o",
                "jsonpath={.items[0].spec.replicas} {.items[1].data.mode}",
            ],
            None,
        )
        .await;
    assert_eq!(got, "4 slow");
    // An edit that breaks validation is refused with the server's reason and changes nothing.
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/replicas: 4/replicas: -1/' \"$1\"\n",
    )
    .unwrap();
    let out = k
        .cmd(&["-n", "shop", "edit", "deploy/web"])
        .env("KUBE_EDITOR", &editor)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // kubectl reopens the editor with the server's causes as comments, then gives up unchanged.
    assert!(
        err.contains(r#"deployments.apps "web" is invalid"#),
        "{err}"
    );
    let replicas = k
        .ok(
            &[
                "-n",
                "shop",
                "get",
                "deploy",
                "web",
                "-o",
                "jsonpath={.spec.replicas}",
            ],
            None,
        )
        .await;
    assert_eq!(replicas, "4");

    // describe: the human summaries of the common kinds.
    let pod = "apiVersion: v1
kind: Pod
metadata:
  name: one
  namespace: shop
  labels: {app: web}
spec:
  containers:
  - name: c
    image: busybox:1.36
    resources:
      requests: {cpu: 100m}
";
    k.ok(&["apply", "-f", "-"], Some(pod)).await;
    k.ok(
        &["-n", "shop", "expose", "deploy/web", "--port", "80"],
        None,
    )
    .await;
    for (what, expect) in [
        (
            vec!["deploy", "web"],
            vec![
                "Name:",
                "web",
                "Replicas:",
                "4 desired",
                "StrategyType:",
                "RollingUpdate",
                "nginx:1.27",
            ],
        ),
        (
            vec!["pod", "one"],
            vec![
                "Name:",
                "one",
                "Namespace:",
                "shop",
                "busybox:1.36",
                "cpu:",
                "100m",
                "QoS Class:",
                "Burstable",
            ],
        ),
        (
            vec!["svc", "web"],
            vec![
                "Type:",
                "ClusterIP",
                "IP:",
                "10.100.",
                "Port:",
                "80/TCP",
                "Selector:",
                "app=web",
            ],
        ),
        (vec!["cm", "settings"], vec!["mode:", "slow"]),
        (vec!["ns", "shop"], vec!["Status:", "Active"]),
    ] {
        let mut args = vec!["-n", "shop", "describe"];
        args.extend(what.iter().copied());
        let out = k.ok(&args, None).await;
        for e in expect {
            assert!(out.contains(e), "describe {what:?} lacks {e:?}:\n{out}");
        }
    }
}

/// `kubectl top` reads metrics.k8s.io: Running pods report their simulated usage (annotation, else
/// half their requests), nodes the sum of their pods plus the node's own overhead; discovery lists
/// the group with get/list only, and a write to it is refused.
#[tokio::test]
async fn kubectl_top_reads_the_metrics_api() {
    let cfg =
        skiff_apiserver::server::ClusterApiConfig::new("metrics", "127.0.0.1:0".parse().unwrap());
    let s = server_with(cfg).await;
    let k = Kubectl::new(&s.base);
    k.ok(
        &["apply", "-f", "-"],
        Some(
            "apiVersion: v1
kind: Node
metadata:
  name: n1
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  annotations:
    skiff.dev/memory-usage: 96Mi
spec:
  nodeName: n1
  containers:
  - name: nginx
    image: nginx
    resources:
      requests: {cpu: 400m, memory: 128Mi}
---
apiVersion: v1
kind: Pod
metadata:
  name: idle
spec:
  nodeName: n1
  containers:
  - name: c
    image: busybox
",
        ),
    )
    .await;
    // No kubelet here: mark the pods Running as one would report them.
    for pod in ["web", "idle"] {
        k.ok(
            &[
                "patch",
                "pod",
                pod,
                "--subresource=status",
                "--type=merge",
                "-p",
                r#"{"status":{"phase":"Running"}}"#,
            ],
            None,
        )
        .await;
    }
    let out = k.ok(&["top", "pod", "--no-headers"], None).await;
    let web = out
        .lines()
        .find(|l| l.starts_with("web"))
        .unwrap_or_default();
    let cols: Vec<&str> = web.split_whitespace().collect();
    assert_eq!(cols, ["web", "200m", "96Mi"], "{out}");
    let out = k
        .ok(&["top", "pod", "web", "--containers", "--no-headers"], None)
        .await;
    assert!(out.contains("nginx") && out.contains("200m"), "{out}");
    let out = k.ok(&["top", "node", "--no-headers"], None).await;
    let cols: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(cols[0], "n1", "{out}");
    assert_eq!(
        cols[1], "240m",
        "40m overhead + 200m of web + 0 of idle: {out}"
    );
    let (ok, _, err) = k
        .run(
            &[
                "create",
                "-f",
                "-",
                "--raw",
                "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
            ],
            Some("{}"),
        )
        .await;
    assert!(!ok, "metrics are read-only");
    assert!(
        err.contains("MethodNotAllowed") || err.contains("not supported") || err.contains("405"),
        "{err}"
    );
    let out = k
        .ok(
            &[
                "api-resources",
                "--api-group=metrics.k8s.io",
                "-o",
                "wide",
                "--no-headers",
            ],
            None,
        )
        .await;
    assert!(
        out.lines()
            .any(|l| l.starts_with("pods") && l.contains("get,list")),
        "{out}"
    );
}

/// Every request kubectl makes reaches the audit sink as a `Metadata`-level audit.k8s.io/v1 Event
/// naming the verb, the object and the answer.
#[tokio::test]
async fn requests_are_audited() {
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Collect(Mutex<Vec<serde_json::Value>>);
    impl skiff_apiserver::audit::AuditSink for Collect {
        fn record(&self, event: serde_json::Value) {
            self.0.lock().unwrap().push(event);
        }
    }
    let sink = Arc::new(Collect::default());
    let mut cfg =
        skiff_apiserver::server::ClusterApiConfig::new("audited", "127.0.0.1:0".parse().unwrap());
    cfg.audit = Some(sink.clone());
    let s = server_with(cfg).await;
    let k = Kubectl::new(&s.base);
    k.ok(
        &["create", "configmap", "settings", "--from-literal=a=b"],
        None,
    )
    .await;
    let (ok, _, _) = k.run(&["get", "configmap", "missing"], None).await;
    assert!(!ok);
    let events = sink.0.lock().unwrap().clone();
    let create = events
        .iter()
        .find(|e| e["verb"] == "create" && e["objectRef"]["resource"] == "configmaps")
        .expect("the create is audited");
    assert_eq!(create["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(create["level"], "Metadata");
    assert_eq!(create["stage"], "ResponseComplete");
    assert_eq!(create["responseStatus"]["code"], 201);
    assert_eq!(create["objectRef"]["namespace"], "default");
    assert!(create["userAgent"].as_str().unwrap().starts_with("kubectl"));
    let missing = events
        .iter()
        .find(|e| e["verb"] == "get" && e["objectRef"]["name"] == "missing")
        .expect("the failed get is audited");
    assert_eq!(missing["responseStatus"]["code"], 404);
}
