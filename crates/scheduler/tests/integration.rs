//! The scheduler against a real API server registry (embedded store in a tempdir), with the
//! Deployment and ReplicaSet controllers making the pods: Nodes registered directly, every pod
//! bound and spread, an unschedulable pod reported in upstream's words (status condition and a
//! FailedScheduling Event) and scheduled once a fitting node appears.
//!
//! Binding goes through `ApiClient::create_subresource(pods, name, "binding")`. While the
//! registry client does not serve it yet (405), [`Recording`] records the target instead and
//! placements are read from the record; once it does, they are read from `spec.nodeName`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use skiff_apiserver::client::RegistryClient;
use skiff_apiserver::server::{ClusterApiConfig, start};
use skiff_k8s_core::client::{
    ApiClient, DeleteOptions, DeleteOutcome, ListOptions, ObjectList, PatchOptions, ResourceRef,
    WatchOptions, WatchStream, WriteOptions,
};
use skiff_k8s_core::patch::PatchType;
use skiff_k8s_core::status::ApiError;

/// Forwards everything; remembers bindings (pod key → node) and whether the server took them.
struct Recording {
    inner: Arc<dyn ApiClient>,
    bindings: Mutex<BTreeMap<String, String>>,
    served: Mutex<Option<bool>>,
}

#[async_trait::async_trait]
impl ApiClient for Recording {
    async fn get(&self, r: &ResourceRef, name: &str) -> Result<Value, ApiError> {
        self.inner.get(r, name).await
    }
    async fn list(&self, r: &ResourceRef, o: &ListOptions) -> Result<ObjectList, ApiError> {
        self.inner.list(r, o).await
    }
    async fn create(&self, r: &ResourceRef, v: Value, o: &WriteOptions) -> Result<Value, ApiError> {
        self.inner.create(r, v, o).await
    }
    async fn update(&self, r: &ResourceRef, v: Value, o: &WriteOptions) -> Result<Value, ApiError> {
        self.inner.update(r, v, o).await
    }
    async fn update_status(
        &self,
        r: &ResourceRef,
        v: Value,
        o: &WriteOptions,
    ) -> Result<Value, ApiError> {
        self.inner.update_status(r, v, o).await
    }
    async fn patch(
        &self,
        r: &ResourceRef,
        n: &str,
        t: PatchType,
        p: Value,
        o: &PatchOptions,
    ) -> Result<Value, ApiError> {
        self.inner.patch(r, n, t, p, o).await
    }
    async fn delete(
        &self,
        r: &ResourceRef,
        n: &str,
        o: &DeleteOptions,
    ) -> Result<DeleteOutcome, ApiError> {
        self.inner.delete(r, n, o).await
    }
    async fn watch(&self, r: &ResourceRef, o: &WatchOptions) -> Result<WatchStream, ApiError> {
        self.inner.watch(r, o).await
    }
    async fn create_subresource(
        &self,
        r: &ResourceRef,
        name: &str,
        sub: &str,
        body: Value,
        o: &WriteOptions,
    ) -> Result<Value, ApiError> {
        assert_eq!(sub, "binding");
        assert_eq!(body["kind"], "Binding");
        let node = body["target"]["name"].as_str().unwrap().to_string();
        let key = format!("{}/{name}", r.namespace.as_deref().unwrap_or(""));
        let res = self.inner.create_subresource(r, name, sub, body, o).await;
        let served = !matches!(res, Err(ApiError::MethodNotSupported { .. }));
        *self.served.lock().unwrap() = Some(served);
        if served {
            res?;
        }
        self.bindings.lock().unwrap().insert(key, node);
        Ok(json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201}))
    }
}

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

fn node(name: &str, zone: &str, extra_labels: Value) -> Value {
    let mut labels = json!({"topology.kubernetes.io/zone": zone, "kubernetes.io/hostname": name});
    for (k, v) in extra_labels.as_object().unwrap() {
        labels[k] = v.clone();
    }
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
           "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                      "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_pods_bound_and_spread_unschedulable_reported() {
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
    let rec = Arc::new(Recording {
        inner: Arc::new(RegistryClient::new(
            api.registry.clone(),
            "system:kube-scheduler",
        )),
        bindings: Mutex::new(BTreeMap::new()),
        served: Mutex::new(None),
    });
    let c = admin.as_ref();
    let nodes = ResourceRef::new("", "v1", "nodes");
    for (i, zone) in ["a", "a", "b", "b"].iter().enumerate() {
        c.create(
            &nodes,
            node(&format!("n{i}"), zone, json!({})),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    }
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let ctl = tokio::spawn(skiff_controllers::run_all(admin.clone(), shutdown.clone()));
    let sched = tokio::spawn(skiff_scheduler::run(rec.clone(), shutdown));

    let pods = ResourceRef::new("", "v1", "pods").in_namespace("default");
    c.create(
        &ResourceRef::new("apps", "v1", "deployments").in_namespace("default"),
        json!({"metadata": {"name": "web"}, "spec": {
            "replicas": 8,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                {"name": "c", "image": "nginx", "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}}}]}}}}),
        &WriteOptions::default(),
    )
    .await
    .unwrap();

    // Every pod placed, two per node.
    let placed = eventually("8 pods bound", || async {
        let items = c.list(&pods, &ListOptions::default()).await.unwrap().items;
        if items.len() != 8 {
            return None;
        }
        let served = *rec.served.lock().unwrap();
        let recorded = rec.bindings.lock().unwrap().clone();
        let mut placed = BTreeMap::new();
        for p in &items {
            let key = format!("default/{}", p["metadata"]["name"].as_str().unwrap());
            let node = if served == Some(true) {
                p["spec"]["nodeName"].as_str().map(String::from)
            } else {
                recorded.get(&key).cloned()
            };
            placed.insert(key, node?);
        }
        Some(placed)
    })
    .await;
    let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
    for n in placed.values() {
        *per_node.entry(n).or_default() += 1;
    }
    assert_eq!(
        per_node,
        BTreeMap::from([("n0", 2), ("n1", 2), ("n2", 2), ("n3", 2)]),
        "{placed:?}"
    );
    eprintln!(
        "pods/binding served by the registry client: {:?}",
        rec.served.lock().unwrap()
    );

    // Scheduled events for each pod.
    let events = ResourceRef::new("", "v1", "events").in_namespace("default");
    eventually("Scheduled events", || async {
        let evs = c
            .list(&events, &ListOptions::default())
            .await
            .unwrap()
            .items;
        let n = evs.iter().filter(|e| e["reason"] == "Scheduled").count();
        (n == 8).then_some(())
    })
    .await;
    let evs = c
        .list(&events, &ListOptions::default())
        .await
        .unwrap()
        .items;
    let one = evs.iter().find(|e| e["reason"] == "Scheduled").unwrap();
    let pod_name = one["involvedObject"]["name"].as_str().unwrap();
    assert_eq!(
        one["message"],
        format!(
            "Successfully assigned default/{pod_name} to {}",
            placed[&format!("default/{pod_name}")]
        )
    );
    assert_eq!(one["source"]["component"], "default-scheduler");
    assert_eq!(one["reportingComponent"], "default-scheduler");

    // A pod no node fits: condition and Warning event in upstream's words.
    c.create(
        &pods,
        json!({"metadata": {"name": "gpu"}, "spec": {"nodeSelector": {"accelerator": "gpu"},
               "containers": [{"name": "c", "image": "cuda"}]}}),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    let want = "0/4 nodes are available: 4 node(s) didn't match Pod's node affinity/selector. \
                preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling..";
    let cond = eventually("PodScheduled=False", || async {
        let p = c.get(&pods, "gpu").await.unwrap();
        p["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled").cloned())
    })
    .await;
    assert_eq!(cond["status"], "False");
    assert_eq!(cond["reason"], "Unschedulable");
    assert_eq!(cond["message"], want);
    let failed = eventually("FailedScheduling event", || async {
        let evs = c
            .list(&events, &ListOptions::default())
            .await
            .unwrap()
            .items;
        evs.into_iter().find(|e| e["reason"] == "FailedScheduling")
    })
    .await;
    assert_eq!(failed["type"], "Warning");
    assert_eq!(failed["message"], want);
    assert_eq!(failed["involvedObject"]["name"], "gpu");

    // A fitting node arrives: the parked pod is retried and placed there.
    c.create(
        &nodes,
        node("gpu-1", "b", json!({"accelerator": "gpu"})),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    eventually("gpu pod placed on gpu-1", || async {
        let served = *rec.served.lock().unwrap();
        let node = if served == Some(true) {
            c.get(&pods, "gpu").await.unwrap()["spec"]["nodeName"]
                .as_str()
                .map(String::from)
        } else {
            rec.bindings.lock().unwrap().get("default/gpu").cloned()
        };
        (node.as_deref() == Some("gpu-1")).then_some(())
    })
    .await;

    stop.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), sched).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), ctl).await;
}

/// Scheduling plus binding throughput through the real registry (embedded store, fsync per
/// write): `cargo test -p skiff-scheduler --release --test integration -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "throughput figure, run by hand"]
async fn binding_throughput() {
    const NODES: usize = 100;
    const PODS: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let store = skiff_store::open("embedded", dir.path()).await.unwrap();
    let api = start(
        store,
        ClusterApiConfig::new("c1", "127.0.0.1:0".parse().unwrap()),
    )
    .await
    .unwrap();
    let client: Arc<dyn ApiClient> = Arc::new(RegistryClient::new(
        api.registry.clone(),
        "system:kube-scheduler",
    ));
    let admin = RegistryClient::new(api.registry.clone(), "system:kube-controller-manager");
    let nodes = ResourceRef::new("", "v1", "nodes");
    for i in 0..NODES {
        admin
            .create(
                &nodes,
                node(&format!("n{i}"), ["a", "b", "c"][i % 3], json!({})),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
    }
    let pods = ResourceRef::new("", "v1", "pods").in_namespace("default");
    for i in 0..PODS {
        admin
            .create(
                &pods,
                json!({"metadata": {"name": format!("p{i}")}, "spec": {"containers": [
                {"name": "c", "image": "x", "resources": {"requests": {"cpu": "10m"}}}]}}),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
    }
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let t = std::time::Instant::now();
    let sched = tokio::spawn(skiff_scheduler::run(client, shutdown));
    loop {
        let items = admin
            .list(&pods, &ListOptions::default())
            .await
            .unwrap()
            .items;
        if items.iter().all(|p| p["spec"]["nodeName"].is_string()) {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(300), "not all bound");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dt = t.elapsed();
    eprintln!(
        "{PODS} pods on {NODES} nodes bound through the registry in {dt:?}: {:.0} pods/s",
        PODS as f64 / dt.as_secs_f64()
    );
    stop.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), sched).await;
}
