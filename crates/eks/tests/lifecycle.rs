//! Contract of the cluster reconciler against a real store: an EKS record in `CREATING` gets a running
//! control plane and turns `ACTIVE` with its endpoint and CA; its issuer keys are published and served;
//! deleting the record stops the API and purges its objects and files; a restart restores it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use skiff_eks::cluster_lifecycle::ClusterLifecycle;
use skiff_eks::control_plane::ControlPlanes;
use skiff_store::{Op, Precondition, Store};

const KEY: &str = "/aws/000000000000/us-east-1/eks/cluster/prod";
const ISSUER: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF";

/// The record as the EKS API's CreateCluster leaves it (the members the reconciler reads).
fn creating_record() -> Value {
    json!({
        "name": "prod",
        "arn": "arn:aws:eks:us-east-1:000000000000:cluster/prod",
        "version": "1.33",
        "status": "CREATING",
        "identity": {"oidc": {"issuer": ISSUER}},
        "accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP", "bootstrapClusterCreatorAdminPermissions": true},
        "_creatorArn": "arn:aws:iam::000000000000:root",
    })
}

async fn put(store: &dyn Store, key: &str, v: &Value) {
    store
        .txn(vec![Op::Put {
            key: key.into(),
            value: serde_json::to_vec(v).unwrap().into(),
            precondition: Precondition::None,
        }])
        .await
        .unwrap();
}

async fn record(store: &dyn Store) -> Option<Value> {
    store
        .get(KEY)
        .await
        .unwrap()
        .map(|kv| serde_json::from_slice(&kv.value).unwrap())
}

async fn wait_for<F: Fn(&Option<Value>) -> bool>(
    store: &dyn Store,
    what: &str,
    f: F,
) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = record(store).await;
        if f(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_becomes_active_then_delete_purges_and_restart_restores() {
    let dir = tempfile::tempdir().unwrap();
    let store = skiff_store::open("embedded", dir.path()).await.unwrap();
    let planes = Arc::new(ControlPlanes::new(
        store.clone(),
        dir.path().to_path_buf(),
        0,
    ));
    let lifecycle = ClusterLifecycle::new(store.clone(), planes.clone());
    let from = lifecycle.sync().await.unwrap();
    let task = tokio::spawn(lifecycle.run(from));

    let started = Instant::now();
    put(&*store, KEY, &creating_record()).await;
    let active = wait_for(&*store, "ACTIVE", |r| {
        r.as_ref().is_some_and(|r| r["status"] == "ACTIVE")
    })
    .await
    .unwrap();
    eprintln!("CREATING → ACTIVE in {:?}", started.elapsed());
    let endpoint = active["endpoint"].as_str().unwrap().to_string();
    let port: u16 = endpoint
        .strip_prefix("https://127.0.0.1:")
        .unwrap()
        .parse()
        .unwrap();
    let ca = base64::engine::general_purpose::STANDARD
        .decode(active["certificateAuthority"]["data"].as_str().unwrap())
        .unwrap();
    assert!(
        String::from_utf8(ca)
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let files = dir.path().join("clusters/prod/cluster.json");
    let rec: Value = serde_json::from_slice(&std::fs::read(&files).unwrap()).unwrap();
    assert_eq!(rec["eks"]["issuer"], ISSUER);
    let id = rec["id"].as_str().unwrap().to_string();
    let jwks_key = skiff_aws::sts::web_identity::jwks_key(ISSUER);
    assert!(
        store.get(&jwks_key).await.unwrap().is_some(),
        "issuer keys not published"
    );

    // A restart (new ControlPlanes on the same dir and store) brings it back on the same port.
    task.abort();
    planes.shutdown().await;
    let planes = Arc::new(ControlPlanes::new(
        store.clone(),
        dir.path().to_path_buf(),
        0,
    ));
    planes.restore_all().await.unwrap();
    let lifecycle = ClusterLifecycle::new(store.clone(), planes.clone());
    let from = lifecycle.sync().await.unwrap();
    assert_eq!(
        record(&*store).await.unwrap()["endpoint"],
        endpoint.as_str()
    );
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let task = tokio::spawn(lifecycle.run(from));

    // DeleteCluster removes the record: the plane stops, its objects, keys and files go.
    assert!(store.count(&format!("/k8s/{id}/")).await.unwrap() > 0);
    store
        .txn(vec![Op::Delete {
            key: KEY.into(),
            precondition: Precondition::None,
        }])
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.count(&format!("/k8s/{id}/")).await.unwrap() > 0 || files.exists() {
        assert!(Instant::now() < deadline, "deleted cluster not purged");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
    );
    assert!(
        store.get(&jwks_key).await.unwrap().is_none(),
        "issuer keys left behind"
    );
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_deleted_while_down_is_purged_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = skiff_store::open("embedded", dir.path()).await.unwrap();
    let planes = Arc::new(ControlPlanes::new(
        store.clone(),
        dir.path().to_path_buf(),
        0,
    ));
    put(&*store, KEY, &creating_record()).await;
    ClusterLifecycle::new(store.clone(), planes.clone())
        .sync()
        .await
        .unwrap();
    assert_eq!(record(&*store).await.unwrap()["status"], "ACTIVE");
    planes.shutdown().await;

    store
        .txn(vec![Op::Delete {
            key: KEY.into(),
            precondition: Precondition::None,
        }])
        .await
        .unwrap();
    let planes = Arc::new(ControlPlanes::new(
        store.clone(),
        dir.path().to_path_buf(),
        0,
    ));
    planes.restore_all().await.unwrap();
    ClusterLifecycle::new(store.clone(), planes.clone())
        .sync()
        .await
        .unwrap();
    assert!(planes.list().await.is_empty());
    assert!(!dir.path().join("clusters/prod").exists());
}
