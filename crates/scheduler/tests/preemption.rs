//! Preemption against a real API server registry with the controllers running: a
//! PodDisruptionBudget steers the scheduler to the victim whose eviction it allows (even one of
//! higher priority), and the
//! victim is marked `DisruptionTarget` before it is deleted, as kube-scheduler does.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use skiff_apiserver::client::RegistryClient;
use skiff_apiserver::server::{ClusterApiConfig, start};
use skiff_k8s_core::client::{ApiClient, ResourceRef, WriteOptions};

async fn eventually<F, Fut, T>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..400 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

fn pod(name: &str, app: &str, cpu: &str, class: Option<&str>) -> Value {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "nginx",
            "resources": {"requests": {"cpu": cpu}}}]}});
    if let Some(c) = class {
        p["spec"]["priorityClassName"] = json!(c);
    }
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preemption_spares_the_pod_a_budget_protects_and_marks_the_victim() {
    let dir = tempfile::tempdir().unwrap();
    let store = skiff_store::open("embedded", dir.path()).await.unwrap();
    let api = start(
        store,
        ClusterApiConfig::new("c1", "127.0.0.1:0".parse().unwrap()),
    )
    .await
    .unwrap();
    let admin: Arc<dyn ApiClient> = Arc::new(RegistryClient::new(
        api.registry.clone(),
        "system:kube-controller-manager",
    ));
    let scheduler: Arc<dyn ApiClient> = Arc::new(RegistryClient::new(
        api.registry.clone(),
        "system:kube-scheduler",
    ));
    let c = admin.as_ref();
    let w = WriteOptions::default();
    for n in ["n1", "n2"] {
        c.create(
            &ResourceRef::new("", "v1", "nodes"),
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n,
                    "labels": {"kubernetes.io/hostname": n}},
                "status": {"capacity": {"cpu": "2", "memory": "4Gi", "pods": "10"},
                           "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "10"}}}),
            &w,
        )
        .await
        .unwrap();
    }
    for (class, value) in [("high", 1000), ("mid", 100)] {
        c.create(
            &ResourceRef::new("scheduling.k8s.io", "v1", "priorityclasses"),
            json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": class}, "value": value}),
            &w,
        )
        .await
        .unwrap();
    }
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let ctl = tokio::spawn(skiff_controllers::run_all(admin.clone(), shutdown.clone()));
    let sched = tokio::spawn(skiff_scheduler::run(scheduler, shutdown));

    let pods = ResourceRef::new("", "v1", "pods").in_namespace("default");
    // Without a budget db (priority 0) would be the victim rather than web (100).
    for (name, class) in [("db", None), ("web", Some("mid"))] {
        c.create(&pods, pod(name, name, "2", class), &w)
            .await
            .unwrap();
    }
    let pdbs = ResourceRef::new("policy", "v1", "poddisruptionbudgets").in_namespace("default");
    c.create(
        &pdbs,
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "db"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}}),
        &w,
    )
    .await
    .unwrap();
    // Both placed (one per node), and the budget computed: db may not be disrupted.
    let node_of_web = eventually("db and web bound, budget computed", || async {
        let db = c.get(&pods, "db").await.ok()?;
        let web = c.get(&pods, "web").await.ok()?;
        let pdb = c.get(&pdbs, "db").await.ok()?;
        let bound = |p: &Value| p["spec"]["nodeName"].as_str().map(String::from);
        let (_, web_node) = (bound(&db)?, bound(&web)?);
        (pdb["status"]["disruptionsAllowed"] == 0 && pdb["status"]["observedGeneration"] == 1)
            .then_some(web_node)
    })
    .await;
    // Give the scheduler's budget watch a moment after the status write.
    tokio::time::sleep(Duration::from_millis(200)).await;

    c.create(&pods, pod("vip", "vip", "1", Some("high")), &w)
        .await
        .unwrap();
    let vip = eventually("vip nominated", || async {
        let v = c.get(&pods, "vip").await.ok()?;
        v["status"]["nominatedNodeName"].is_string().then_some(v)
    })
    .await;
    assert_eq!(vip["status"]["nominatedNodeName"], node_of_web.as_str());
    let web = eventually("web marked and deleted", || async {
        let web = c.get(&pods, "web").await.ok()?;
        web["metadata"]["deletionTimestamp"]
            .is_string()
            .then_some(web)
    })
    .await;
    let cond = web["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "DisruptionTarget")
        .cloned()
        .expect("DisruptionTarget on the victim");
    assert_eq!(cond["status"], "True");
    assert_eq!(cond["reason"], "PreemptionByScheduler");
    assert_eq!(
        cond["message"],
        "default-scheduler: preempting to accommodate a higher priority pod"
    );
    let db = c.get(&pods, "db").await.unwrap();
    assert!(
        db["metadata"].get("deletionTimestamp").is_none(),
        "db spared"
    );

    stop.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), ctl).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), sched).await;
}
