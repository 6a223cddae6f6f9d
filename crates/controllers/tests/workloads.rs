//! The controllers against a real API server registry (embedded store in a tempdir): the
//! Deployment → ReplicaSet → Pod chain, scaling, a rollout, and cascading deletion by the API
//! server's garbage collector. No scheduler or kubelet runs, so Pods stay Pending and never
//! become Ready: a rollout can surge new pods but cannot retire old ones past maxUnavailable.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use skiff_apiserver::client::RegistryClient;
use skiff_apiserver::server::{ClusterApiConfig, start};
use skiff_controllers::deployment::{REVISION_ANNOTATION, deployments};
use skiff_controllers::replicaset::{pods, replicasets};
use skiff_controllers::service_account::service_accounts;
use skiff_k8s_core::client::{ApiClient, DeleteOptions, ListOptions, PatchOptions, WriteOptions};
use skiff_k8s_core::patch::PatchType;

async fn eventually<F, Fut>(what: &str, mut f: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Value>>,
{
    for _ in 0..400 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn list(c: &dyn ApiClient, r: &skiff_k8s_core::client::ResourceRef) -> Vec<Value> {
    c.list(&r.clone().in_namespace("default"), &ListOptions::default())
        .await
        .unwrap()
        .items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_to_pods_scale_rollout_and_cascade() {
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
        "system:kube-controller-manager",
    ));
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let ctl = tokio::spawn(skiff_controllers::run_all(client.clone(), shutdown));
    let c = client.as_ref();
    let d_ref = deployments().in_namespace("default");

    // Every namespace gets its default ServiceAccount.
    eventually("default ServiceAccount", || async {
        c.get_opt(&service_accounts().in_namespace("kube-system"), "default")
            .await
            .unwrap()
    })
    .await;

    c.create(
        &d_ref,
        json!({
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}},
            },
        }),
        &WriteOptions::default(),
    )
    .await
    .unwrap();

    let rs = eventually("a ReplicaSet with 3 pods", || async {
        let rss = list(c, &replicasets()).await;
        let ps = list(c, &pods()).await;
        (rss.len() == 1 && ps.len() == 3 && rss[0]["status"]["replicas"] == 3)
            .then(|| rss[0].clone())
    })
    .await;
    let hash = rs["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(rs["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(rs["metadata"]["annotations"][REVISION_ANNOTATION], "1");
    for p in list(c, &pods()).await {
        let name = p["metadata"]["name"].as_str().unwrap();
        let suffix = name.strip_prefix(&format!("web-{hash}-")).unwrap();
        assert_eq!(suffix.len(), 5, "{name}");
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
        assert_eq!(
            p["metadata"]["ownerReferences"][0]["blockOwnerDeletion"],
            true
        );
        assert_eq!(p["metadata"]["labels"]["pod-template-hash"], hash.as_str());
    }
    let d = eventually("deployment status", || async {
        let d = c.get(&d_ref, "web").await.unwrap();
        (d["status"]["replicas"] == 3 && d["status"]["updatedReplicas"] == 3).then_some(d)
    })
    .await;
    assert_eq!(d["metadata"]["annotations"][REVISION_ANNOTATION], "1");
    assert_eq!(d["status"]["observedGeneration"], 1);
    // The events `kubectl describe` shows, in upstream's words.
    let rs_name = format!("web-{hash}");
    let events_ref = skiff_k8s_core::client::ResourceRef::new("", "v1", "events");
    eventually("ScalingReplicaSet and SuccessfulCreate events", || async {
        let evs = list(c, &events_ref).await;
        let scaled = evs.iter().any(|e| {
            e["reason"] == "ScalingReplicaSet"
                && e["involvedObject"]["kind"] == "Deployment"
                && e["message"] == format!("Scaled up replica set {rs_name} from 0 to 3").as_str()
                && e["source"]["component"] == "deployment-controller"
        });
        let created = evs
            .iter()
            .filter(|e| {
                e["reason"] == "SuccessfulCreate"
                    && e["involvedObject"]["name"] == rs_name.as_str()
                    && e["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with(&format!("Created pod: {rs_name}-")))
            })
            .count();
        (scaled && created == 3).then_some(Value::Null)
    })
    .await;
    assert_eq!(d["status"]["unavailableReplicas"], 3);

    // A deleted pod is replaced.
    let victim = list(c, &pods()).await[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    c.delete(
        &pods().in_namespace("default"),
        &victim,
        &DeleteOptions::default(),
    )
    .await
    .unwrap();
    eventually("a replacement pod", || async {
        let ps = list(c, &pods()).await;
        (ps.len() == 3 && ps.iter().all(|p| p["metadata"]["name"] != victim.as_str()))
            .then_some(Value::Null)
    })
    .await;

    // Scale to 5.
    c.patch(
        &d_ref,
        "web",
        PatchType::Merge,
        json!({"spec": {"replicas": 5}}),
        &PatchOptions::default(),
    )
    .await
    .unwrap();
    eventually("5 pods", || async {
        (list(c, &pods()).await.len() == 5).then_some(Value::Null)
    })
    .await;

    // New image: a second ReplicaSet at revision 2. With no pod ever Ready the rollout stops
    // where upstream's would: maxSurge (25% of 5, rounded up = 2) caps the total at 7, and
    // maxUnavailable (rounded down = 1) lets one unavailable old pod go, so old 4 + new 3.
    c.patch(
        &d_ref,
        "web",
        PatchType::Merge,
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}}),
        &PatchOptions::default(),
    )
    .await
    .unwrap();
    let (old, new) = eventually("a second ReplicaSet, settled", || async {
        let rss = list(c, &replicasets()).await;
        if rss.len() != 2 {
            return None;
        }
        let (new, old): (Vec<Value>, Vec<Value>) = rss
            .into_iter()
            .partition(|r| r["metadata"]["annotations"][REVISION_ANNOTATION] == "2");
        let (old, new) = (old.first()?.clone(), new.first()?.clone());
        let total = old["spec"]["replicas"].as_i64()? + new["spec"]["replicas"].as_i64()?;
        (total == 7 && list(c, &pods()).await.len() == 7).then(|| json!([old, new]))
    })
    .await
    .as_array()
    .map(|a| (a[0].clone(), a[1].clone()))
    .unwrap();
    assert_eq!(
        old["spec"]["replicas"], 4,
        "only maxUnavailable old pods retired"
    );
    assert_eq!(new["spec"]["replicas"], 3);
    let d = eventually("revision 2 on the deployment", || async {
        let d = c.get(&d_ref, "web").await.unwrap();
        (d["metadata"]["annotations"][REVISION_ANNOTATION] == "2"
            && d["status"]["updatedReplicas"] == 3)
            .then_some(d)
    })
    .await;
    let conds = d["status"]["conditions"].as_array().unwrap();
    let reason = |t: &str| {
        conds
            .iter()
            .find(|c| c["type"] == t)
            .map(|c| c["reason"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(
        reason("Available").as_deref(),
        Some("MinimumReplicasUnavailable")
    );
    assert!(
        matches!(
            reason("Progressing").as_deref(),
            Some("NewReplicaSetCreated" | "ReplicaSetUpdated")
        ),
        "{conds:?}"
    );

    // Delete the Deployment: the garbage collector removes ReplicaSets, then Pods.
    c.delete(&d_ref, "web", &DeleteOptions::default())
        .await
        .unwrap();
    eventually("cascade", || async {
        (list(c, &replicasets()).await.is_empty() && list(c, &pods()).await.is_empty())
            .then_some(Value::Null)
    })
    .await;

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), ctl)
        .await
        .expect("controllers stop on shutdown")
        .unwrap();
    api.shutdown().await;
}
