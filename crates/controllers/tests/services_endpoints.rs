//! The service and storage controllers against a real API server registry (embedded store in a
//! tempdir): a Service with ready and unready Pods gets the right Endpoints and EndpointSlice, a
//! Pod turning ready moves, a selector-less Service is left alone, and a PVC binds to the
//! smallest matching PV with both sides annotated and the protection finalizers in place.

mod support;
use support::{Cluster, eventually, kubectl_at};

use std::sync::Arc;

use serde_json::{Value, json};
use skiff_controllers::endpoints_pods::{endpoint_slices, endpoints, services};
use skiff_controllers::pv_binder::{
    BIND_COMPLETED, BOUND_BY_CONTROLLER, persistent_volume_claims, persistent_volumes,
};
use skiff_controllers::pv_binder_protection::{PV_FINALIZER, PVC_FINALIZER};
use skiff_controllers::replicaset::pods;
use skiff_controllers::runtime::SystemClock;
use skiff_k8s_core::client::{ApiClient, ListOptions, ResourceRef, WriteOptions};

async fn make_pod(c: &dyn ApiClient, name: &str, ip: &str, ready: bool) {
    let r = pods().in_namespace("default");
    let p = c
        .create(
            &r,
            json!({"metadata": {"name": name, "labels": {"app": "web"}},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx",
                    "ports": [{"name": "http", "containerPort": 8080}]}]}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    set_ready(c, p, ip, ready).await;
}

async fn set_ready(c: &dyn ApiClient, mut p: Value, ip: &str, ready: bool) {
    p["status"] = json!({"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]});
    c.update_status(&pods().in_namespace("default"), p, &WriteOptions::default())
        .await
        .unwrap();
}

fn slice_ready(s: &Value) -> Vec<(String, bool)> {
    s["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["addresses"][0].as_str().unwrap_or_default().to_string(),
                e["conditions"]["ready"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

async fn list(c: &dyn ApiClient, r: ResourceRef) -> Vec<Value> {
    c.list(&r, &ListOptions::default()).await.unwrap().items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_with_pods_gets_endpoints_and_slices() {
    let cl = Cluster::start(Arc::new(SystemClock)).await;
    let c = cl.client.as_ref();
    c.create(
        &services().in_namespace("default"),
        json!({"metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    make_pod(c, "web-a", "10.1.0.1", true).await;
    make_pod(c, "web-b", "10.1.0.2", false).await;

    let e = eventually("endpoints with one ready, one not ready", || async {
        let e = c
            .get_opt(&endpoints().in_namespace("default"), "web")
            .await
            .unwrap()?;
        let s = &e["subsets"][0];
        (s["addresses"].as_array().map(Vec::len) == Some(1)
            && s["notReadyAddresses"].as_array().map(Vec::len) == Some(1))
        .then_some(e)
    })
    .await;
    let s = &e["subsets"][0];
    assert_eq!(s["addresses"][0]["ip"], "10.1.0.1");
    assert_eq!(s["addresses"][0]["targetRef"]["name"], "web-a");
    assert_eq!(s["notReadyAddresses"][0]["ip"], "10.1.0.2");
    assert_eq!(
        s["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );

    let slice = eventually("one slice with both endpoints", || async {
        let slices = list(c, endpoint_slices().in_namespace("default")).await;
        let mine: Vec<_> = slices
            .into_iter()
            .filter(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == "web")
            .collect();
        (mine.len() == 1 && slice_ready(&mine[0]).len() == 2).then(|| mine[0].clone())
    })
    .await;
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Service");
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice_ready(&slice),
        [("10.1.0.1".into(), true), ("10.1.0.2".into(), false)]
    );

    // web-b turns ready: both controllers follow.
    let b = c
        .get(&pods().in_namespace("default"), "web-b")
        .await
        .unwrap();
    set_ready(c, b, "10.1.0.2", true).await;
    eventually("both addresses ready", || async {
        let e = c
            .get(&endpoints().in_namespace("default"), "web")
            .await
            .unwrap();
        (e["subsets"][0]["addresses"].as_array().map(Vec::len) == Some(2)).then_some(e)
    })
    .await;
    eventually("both slice endpoints ready", || async {
        let slices = list(c, endpoint_slices().in_namespace("default")).await;
        slices.into_iter().find(|s| {
            s["metadata"]["labels"]["kubernetes.io/service-name"] == "web"
                && slice_ready(s) == [("10.1.0.1".into(), true), ("10.1.0.2".into(), true)]
        })
    })
    .await;

    let out = kubectl_at(cl.api.local_addr, &["get", "endpoints,endpointslices"]).await;
    let lines: Vec<&str> = out.lines().collect();
    let ep = lines
        .iter()
        .find(|l| l.starts_with("endpoints/web "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(ep.contains("10.1.0.1:8080,10.1.0.2:8080"), "{out}");
    let slice = lines
        .iter()
        .find(|l| l.starts_with("endpointslice.discovery.k8s.io/web-"))
        .unwrap_or_else(|| panic!("{out}"));
    let cols: Vec<&str> = slice.split_whitespace().collect();
    assert_eq!(cols[1..4], ["IPv4", "8080", "10.1.0.1,10.1.0.2"], "{out}");

    // The `kubernetes` Service has no selector: its endpoints are the API server's own, and the
    // endpoints controller leaves them as the API server wrote them.
    let k = c
        .get(&endpoints().in_namespace("default"), "kubernetes")
        .await
        .unwrap();
    assert_eq!(k["subsets"][0]["addresses"][0]["ip"], "127.0.0.1", "{k}");
    assert!(k["metadata"]["ownerReferences"].is_null(), "{k}");
    cl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pvc_binds_to_the_smallest_matching_pv() {
    let cl = Cluster::start(Arc::new(SystemClock)).await;
    let c = cl.client.as_ref();
    for (name, size) in [("pv-big", "10Gi"), ("pv-fit", "2Gi"), ("pv-small", "1Gi")] {
        c.create(
            &persistent_volumes(),
            json!({"metadata": {"name": name},
                "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "manual", "hostPath": {"path": format!("/data/{name}")}}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    }
    // Only Available volumes are offered (upstream skips the others to avoid conflicts).
    eventually("three available volumes", || async {
        let pvs = list(c, persistent_volumes()).await;
        pvs.iter()
            .all(|v| v["status"]["phase"] == "Available")
            .then_some(Value::Null)
    })
    .await;
    c.create(
        &persistent_volume_claims().in_namespace("default"),
        json!({"metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "manual",
                "resources": {"requests": {"storage": "1500Mi"}}}}),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    let claim = eventually("a bound claim", || async {
        let pvc = c
            .get(&persistent_volume_claims().in_namespace("default"), "data")
            .await
            .unwrap();
        (pvc["status"]["phase"] == "Bound"
            && pvc["metadata"]["finalizers"] == json!([PVC_FINALIZER]))
        .then_some(pvc)
    })
    .await;
    assert_eq!(claim["spec"]["volumeName"], "pv-fit");
    assert_eq!(claim["metadata"]["annotations"][BIND_COMPLETED], "yes");
    assert_eq!(claim["status"]["capacity"]["storage"], "2Gi");
    let pv = eventually("a bound volume", || async {
        let pv = c.get(&persistent_volumes(), "pv-fit").await.unwrap();
        (pv["status"]["phase"] == "Bound" && pv["metadata"]["finalizers"] == json!([PV_FINALIZER]))
            .then_some(pv)
    })
    .await;
    assert_eq!(pv["spec"]["claimRef"]["name"], "data");
    assert_eq!(pv["spec"]["claimRef"]["uid"], claim["metadata"]["uid"]);
    assert_eq!(pv["metadata"]["annotations"][BOUND_BY_CONTROLLER], "yes");
    let small = c.get(&persistent_volumes(), "pv-small").await.unwrap();
    assert_eq!(small["status"]["phase"], "Available");

    let out = kubectl_at(cl.api.local_addr, &["get", "pvc"]).await;
    let row: Vec<&str> = out
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    // NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS
    assert_eq!(
        row[..6],
        ["data", "Bound", "pv-fit", "2Gi", "RWO", "manual"],
        "{out}"
    );
    let out = kubectl_at(cl.api.local_addr, &["get", "pv", "pv-fit"]).await;
    let row: Vec<&str> = out
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    // NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM
    assert_eq!(
        row[..6],
        ["pv-fit", "2Gi", "RWO", "Retain", "Bound", "default/data"],
        "{out}"
    );

    // Deleting the claim releases the retained volume once the finalizer lets it go.
    c.delete(
        &persistent_volume_claims().in_namespace("default"),
        "data",
        &Default::default(),
    )
    .await
    .unwrap();
    eventually("a released volume", || async {
        let pv = c.get(&persistent_volumes(), "pv-fit").await.unwrap();
        (pv["status"]["phase"] == "Released").then_some(pv)
    })
    .await;
    cl.stop().await;
}
