//! The StatefulSet and DaemonSet controllers against a real API server registry (embedded store
//! in a tempdir), with the real kubectl 1.32 for `rollout status`, `rollout history` and `rollout
//! undo`. No kubelet runs here: a small task plays its part by marking Pods Running and Ready.

mod support;
use support::{Cluster, eventually};

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use skiff_controllers::daemonset::{daemonsets, nodes};
use skiff_controllers::replicaset::pods;
use skiff_controllers::runtime::SystemClock;
use skiff_controllers::statefulset::{POD_INDEX_LABEL, POD_NAME_LABEL, pvcs, statefulsets};
use skiff_controllers::statefulset_history::controller_revisions;
use skiff_k8s_core::client::{DeleteOptions, ListOptions, WriteOptions};

/// Plays the kubelet: every live Pod becomes Running and Ready.
fn kubelet(cl: &Cluster) -> tokio::task::JoinHandle<()> {
    let c = cl.client.clone();
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
    let _kubelet = kubelet(&cl);
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
    let events = cl
        .kubectl_events(
            "StatefulSet",
            "db",
            "Normal/SuccessfulCreate: create Pod db-2 in StatefulSet db successful",
        )
        .await;
    for want in [
        "Normal/SuccessfulCreate: create Claim data-db-0 Pod db-0 in StatefulSet db success",
        "Normal/SuccessfulCreate: create Pod db-0 in StatefulSet db successful",
    ] {
        assert!(events.lines().any(|l| l == want), "{want}\n{events}");
    }
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
    let _kubelet = kubelet(&cl);
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
