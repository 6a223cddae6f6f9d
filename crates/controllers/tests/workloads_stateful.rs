//! The StatefulSet and DaemonSet controllers against a real API server registry (embedded store
//! in a tempdir), with the real kubectl 1.32 for `rollout status`, `rollout history` and `rollout
//! undo`. No kubelet runs here: a small task plays its part by marking Pods Running and Ready.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use skiff_apiserver::client::RegistryClient;
use skiff_apiserver::server::{ClusterApiConfig, RunningApi, start};
use skiff_controllers::daemonset::{daemonsets, nodes};
use skiff_controllers::replicaset::pods;
use skiff_controllers::runtime::{Clock, SystemClock};
use skiff_controllers::statefulset::{POD_INDEX_LABEL, POD_NAME_LABEL, pvcs, statefulsets};
use skiff_controllers::statefulset_history::controller_revisions;
use skiff_k8s_core::client::{ApiClient, DeleteOptions, ListOptions, WriteOptions};

async fn eventually<F, Fut>(what: &str, mut f: F) -> Value
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

struct Cluster {
    _dir: tempfile::TempDir,
    client: Arc<dyn ApiClient>,
    stop: tokio::sync::watch::Sender<bool>,
    api: RunningApi,
    kubeconfig: std::path::PathBuf,
}

impl Cluster {
    async fn start(clock: Arc<dyn Clock>) -> Self {
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

    async fn kubectl(&self, args: &[&str]) -> (bool, String) {
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

    async fn kubectl_ok(&self, args: &[&str]) -> String {
        let (ok, out) = self.kubectl(args).await;
        assert!(ok, "kubectl {args:?}: {out}");
        out
    }

    async fn list(&self, r: &skiff_k8s_core::client::ResourceRef) -> Vec<Value> {
        self.client
            .list(&r.clone().in_namespace("default"), &ListOptions::default())
            .await
            .unwrap()
            .items
    }

    #[allow(dead_code, reason = "kept in step with workloads_batch.rs")]
    async fn get(&self, r: &skiff_k8s_core::client::ResourceRef, name: &str) -> Option<Value> {
        self.client
            .get_opt(&r.clone().in_namespace("default"), name)
            .await
            .unwrap()
    }

    /// Plays the kubelet: every live Pod becomes Running and Ready.
    fn kubelet(&self) -> tokio::task::JoinHandle<()> {
        let c = self.client.clone();
        tokio::spawn(async move {
            let r = pods().in_namespace("default");
            loop {
                let Ok(list) = c.list(&r, &ListOptions::default()).await else {
                    return;
                };
                for mut p in list.items {
                    if p["status"]["phase"] == "Running"
                        || p["metadata"]["deletionTimestamp"].is_string()
                    {
                        continue;
                    }
                    let now = skiff_controllers::runtime::rfc3339(jiff::Timestamp::now());
                    p["status"]["phase"] = json!("Running");
                    p["status"]["conditions"] = json!([{"type": "Ready", "status": "True",
                        "lastTransitionTime": now}]);
                    let _ = c.update_status(&r, p, &WriteOptions::default()).await;
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        })
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.api.shutdown().await;
    }
}

fn names(items: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = items
        .iter()
        .map(|o| {
            o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    v.sort();
    v
}

fn images(items: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = items
        .iter()
        .map(|p| {
            p["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_ordered_pods_claims_and_kubectl_rollout() {
    let cl = Cluster::start(Arc::new(SystemClock)).await;
    let _kubelet = cl.kubelet();
    cl.client
        .create(
            &statefulsets().in_namespace("default"),
            json!({
                "metadata": {"name": "db"},
                "spec": {
                    "replicas": 3, "serviceName": "db",
                    "selector": {"matchLabels": {"app": "db"}},
                    "template": {"metadata": {"labels": {"app": "db"}},
                                 "spec": {"containers": [{"name": "c", "image": "pg:1"}]}},
                    "volumeClaimTemplates": [{"metadata": {"name": "data"},
                        "spec": {"accessModes": ["ReadWriteOnce"],
                                 "resources": {"requests": {"storage": "1Gi"}}}}],
                },
            }),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    let out = cl
        .kubectl_ok(&["rollout", "status", "statefulset/db", "--timeout=30s"])
        .await;
    // kubectl 1.32 reports this way whenever rollingUpdate is set, which defaulting always does.
    assert!(
        out.contains("partitioned roll out complete: 3 new pods have been updated"),
        "{out}"
    );
    let ps = cl.list(&pods()).await;
    assert_eq!(names(&ps), ["db-0", "db-1", "db-2"]);
    let p1 = ps.iter().find(|p| p["metadata"]["name"] == "db-1").unwrap();
    assert_eq!(p1["metadata"]["labels"][POD_NAME_LABEL], "db-1");
    assert_eq!(p1["metadata"]["labels"][POD_INDEX_LABEL], "1");
    assert_eq!(p1["spec"]["hostname"], "db-1");
    assert_eq!(p1["spec"]["subdomain"], "db");
    // OrderedReady: each Pod was created after the previous one was Ready.
    let created = |n: &str| {
        ps.iter().find(|p| p["metadata"]["name"] == n).unwrap()["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(created("db-0") <= created("db-1") && created("db-1") <= created("db-2"));
    assert_eq!(
        names(&cl.list(&pvcs()).await),
        ["data-db-0", "data-db-1", "data-db-2"]
    );

    cl.kubectl_ok(&["set", "image", "statefulset/db", "c=pg:2"])
        .await;
    let out = cl
        .kubectl_ok(&["rollout", "status", "statefulset/db", "--timeout=30s"])
        .await;
    assert!(
        out.contains("partitioned roll out complete: 3 new pods"),
        "{out}"
    );
    // Every Pod updated and ready: the update revision becomes the current one.
    eventually("currentRevision == updateRevision", || async {
        let st = cl
            .client
            .get(&statefulsets().in_namespace("default"), "db")
            .await
            .ok()?["status"]
            .clone();
        (st["updatedReplicas"] == 3
            && st["currentReplicas"] == 3
            && st["currentRevision"] == st["updateRevision"])
            .then_some(st)
    })
    .await;
    assert_eq!(images(&cl.list(&pods()).await), ["pg:2", "pg:2", "pg:2"]);
    let history = cl
        .kubectl_ok(&["rollout", "history", "statefulset/db"])
        .await;
    let revs: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revs, ["1", "2"], "{history}");

    cl.kubectl_ok(&["rollout", "undo", "statefulset/db"]).await;
    cl.kubectl_ok(&["rollout", "status", "statefulset/db", "--timeout=30s"])
        .await;
    eventually("pods back at pg:1", || async {
        let ps = cl.list(&pods()).await;
        (images(&ps) == ["pg:1", "pg:1", "pg:1"]).then_some(Value::Null)
    })
    .await;
    // The undone revision was renumbered, not duplicated.
    let revs = cl.list(&controller_revisions()).await;
    let mut numbers: Vec<i64> = revs
        .iter()
        .map(|r| r["revision"].as_i64().unwrap())
        .collect();
    numbers.sort();
    assert_eq!(numbers, [2, 3]);

    // Scale down: highest ordinals go, the claims stay (whenScaled: Retain by default).
    cl.kubectl_ok(&["scale", "statefulset/db", "--replicas=1"])
        .await;
    eventually("one pod left", || async {
        (names(&cl.list(&pods()).await) == ["db-0"]).then_some(Value::Null)
    })
    .await;
    assert_eq!(cl.list(&pvcs()).await.len(), 3);
    cl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_follows_nodes_and_rolls_out_with_kubectl() {
    let cl = Cluster::start(Arc::new(SystemClock)).await;
    let _kubelet = cl.kubelet();
    let node = |n: &str| json!({"metadata": {"name": n, "labels": {"kubernetes.io/os": "linux"}}});
    for n in ["n1", "n2"] {
        cl.client
            .create(&nodes(), node(n), &WriteOptions::default())
            .await
            .unwrap();
    }
    cl.client
        .create(
            &daemonsets().in_namespace("default"),
            json!({
                "metadata": {"name": "agent"},
                "spec": {
                    "selector": {"matchLabels": {"app": "agent"}},
                    "template": {"metadata": {"labels": {"app": "agent"}},
                                 "spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                          "containers": [{"name": "c", "image": "agent:1"}]}},
                },
            }),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    let out = cl
        .kubectl_ok(&["rollout", "status", "daemonset/agent", "--timeout=30s"])
        .await;
    assert!(
        out.contains("daemon set \"agent\" successfully rolled out"),
        "{out}"
    );
    let target = |p: &Value| {
        p.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchFields/0/values/0")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let targets = |ps: Vec<Value>| {
        let mut v: Vec<String> = ps.iter().map(target).collect();
        v.sort();
        v
    };
    assert_eq!(targets(cl.list(&pods()).await), ["n1", "n2"]);

    // A new node gets a pod; a removed node's pod goes.
    cl.client
        .create(&nodes(), node("n3"), &WriteOptions::default())
        .await
        .unwrap();
    cl.client
        .delete(&nodes(), "n1", &DeleteOptions::default())
        .await
        .unwrap();
    eventually("pods on n2 and n3", || async {
        (targets(cl.list(&pods()).await) == ["n2", "n3"]).then_some(Value::Null)
    })
    .await;

    cl.kubectl_ok(&["set", "image", "daemonset/agent", "c=agent:2"])
        .await;
    cl.kubectl_ok(&["rollout", "status", "daemonset/agent", "--timeout=30s"])
        .await;
    eventually("every pod at agent:2", || async {
        (images(&cl.list(&pods()).await) == ["agent:2", "agent:2"]).then_some(Value::Null)
    })
    .await;
    let ds = eventually("status settled", || async {
        let ds = cl
            .client
            .get(&daemonsets().in_namespace("default"), "agent")
            .await
            .ok()?;
        (ds["status"]["updatedNumberScheduled"] == 2 && ds["status"]["numberAvailable"] == 2)
            .then_some(ds)
    })
    .await;
    assert_eq!(ds["status"]["desiredNumberScheduled"], 2);
    assert_eq!(ds["status"]["numberMisscheduled"], 0);
    let history = cl
        .kubectl_ok(&["rollout", "history", "daemonset/agent"])
        .await;
    assert!(
        history.contains("1 ") && history.contains("2 "),
        "{history}"
    );

    // Undo applies revision 1's template back; the pods roll again.
    cl.kubectl_ok(&["rollout", "undo", "daemonset/agent"]).await;
    cl.kubectl_ok(&["rollout", "status", "daemonset/agent", "--timeout=30s"])
        .await;
    eventually("every pod back at agent:1", || async {
        (images(&cl.list(&pods()).await) == ["agent:1", "agent:1"]).then_some(Value::Null)
    })
    .await;
    cl.stop().await;
}
