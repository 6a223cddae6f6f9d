//! The simulated kubelet against a real API server registry (embedded store in a tempdir), through
//! the in-process client: Nodes annotated `skiff.dev/node-agent: sim` become Ready and hold
//! renewed Leases; pods bound to them reach Running with IPs from the node's podCIDR and kubelet
//! events; a Job's pod Succeeds; a deleted pod is stopped and removed and its IP returned; a
//! stopped node stops renewing; a Node without the annotation is left alone.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use skiff_apiserver::client::RegistryClient;
use skiff_apiserver::server::{ClusterApiConfig, start};
use skiff_k8s_core::client::{ApiClient, DeleteOptions, ListOptions, ResourceRef, WriteOptions};
use skiff_nodes::sim::{CidrPodNetwork, SimConfig, spawn_sim};

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

fn nodes() -> ResourceRef {
    ResourceRef::new("", "v1", "nodes")
}
fn pods() -> ResourceRef {
    ResourceRef::new("", "v1", "pods").in_namespace("default")
}
fn leases() -> ResourceRef {
    ResourceRef::new("coordination.k8s.io", "v1", "leases").in_namespace("kube-node-lease")
}

fn node(name: &str, sim: bool, cidr: &str) -> Value {
    let mut n = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "10.0.1.5"}, {"type": "Hostname", "address": name}],
            "capacity": {"cpu": "2", "memory": "8Gi", "pods": "29"},
        },
    });
    if sim {
        n["metadata"]["annotations"] = json!({"skiff.dev/node-agent": "sim"});
    }
    n
}

fn pod(name: &str, node: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"nodeName": node, "containers": [{"name": "nginx", "image": "nginx:1.27"}]},
    })
}

fn cond<'a>(obj: &'a Value, t: &str) -> Option<&'a str> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == t)?
        .get("status")?
        .as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_nodes_run_pods_through_their_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let store = skiff_store::open("embedded", dir.path()).await.unwrap();
    let api = start(
        store,
        ClusterApiConfig::new("c1", "127.0.0.1:0".parse().unwrap()),
    )
    .await
    .unwrap();
    let client: Arc<dyn ApiClient> =
        Arc::new(RegistryClient::new(api.registry.clone(), "system:node:sim"));
    let c = client.as_ref();
    let w = WriteOptions::default();
    c.create(&nodes(), node("n1", true, "10.244.1.0/24"), &w)
        .await
        .unwrap();
    c.create(&nodes(), node("other", false, "10.244.2.0/24"), &w)
        .await
        .unwrap();

    let network = Arc::new(CidrPodNetwork::new());
    let config = SimConfig {
        lease_renew_interval: Duration::from_millis(300),
        ..SimConfig::default()
    };
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let (handle, task) = spawn_sim(client.clone(), network.clone(), config, shutdown);

    // The node is Ready with what a kubelet reports, and holds a Lease.
    let n1 = eventually("n1 Ready", || async {
        let n = c.get(&nodes(), "n1").await.unwrap();
        (cond(&n, "Ready") == Some("True")).then_some(n)
    })
    .await;
    let ready = n1["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
    assert_eq!(ready["reason"], "KubeletReady");
    assert_eq!(ready["message"], "kubelet is posting ready status");
    assert_eq!(cond(&n1, "MemoryPressure"), Some("False"));
    assert!(
        n1["status"]["nodeInfo"]["containerRuntimeVersion"]
            .as_str()
            .unwrap()
            .starts_with("containerd://")
    );
    assert_eq!(
        n1["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"],
        10250
    );
    assert_eq!(n1["status"]["addresses"][0]["address"], "10.0.1.5", "kept");
    let lease = eventually("n1 lease", || async {
        c.get_opt(&leases(), "n1").await.unwrap()
    })
    .await;
    assert_eq!(lease["spec"]["holderIdentity"], "n1");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 40);
    assert_eq!(lease["metadata"]["ownerReferences"][0]["kind"], "Node");
    let first_renew = lease["spec"]["renewTime"].clone();
    eventually("lease renewed", || async {
        let l = c.get(&leases(), "n1").await.unwrap();
        (l["spec"]["renewTime"] != first_renew).then_some(l)
    })
    .await;
    // Once posted, the status is not rewritten until the 5-minute report (no write loop).
    let rv = c.get(&nodes(), "n1").await.unwrap()["metadata"]["resourceVersion"].clone();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        c.get(&nodes(), "n1").await.unwrap()["metadata"]["resourceVersion"],
        rv
    );
    // The foreign node gets nothing.
    assert_eq!(c.get_opt(&leases(), "other").await.unwrap(), None);

    // A pod bound to n1 runs, with an IP from n1's podCIDR; one bound to the other node waits.
    c.create(&pods(), pod("web", "n1"), &w).await.unwrap();
    c.create(&pods(), pod("elsewhere", "other"), &w)
        .await
        .unwrap();
    let web = eventually("web Running and Ready", || async {
        let p = c.get(&pods(), "web").await.unwrap();
        (p["status"]["phase"] == "Running" && cond(&p, "Ready") == Some("True")).then_some(p)
    })
    .await;
    let ip = web["status"]["podIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.244.1."), "{ip}");
    assert_eq!(web["status"]["podIPs"][0]["ip"], ip.as_str());
    assert_eq!(web["status"]["hostIP"], "10.0.1.5");
    assert_eq!(web["status"]["qosClass"], "BestEffort");
    assert!(web["status"]["startTime"].is_string());
    let cs = &web["status"]["containerStatuses"][0];
    assert!(
        cs["containerID"]
            .as_str()
            .unwrap()
            .starts_with("containerd://")
    );
    assert_eq!(
        cs["containerID"].as_str().unwrap().len(),
        "containerd://".len() + 64
    );
    assert_eq!(cs["image"], "docker.io/library/nginx:1.27");
    assert_eq!(cs["ready"], true);
    assert_eq!(cs["started"], true);
    assert_eq!(cs["restartCount"], 0);
    assert!(cs["state"]["running"]["startedAt"].is_string());
    for t in [
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
        "PodScheduled",
    ] {
        assert_eq!(cond(&web, t), Some("True"), "{t}");
    }
    assert_eq!(network.assigned("n1"), 1);
    let elsewhere = c.get(&pods(), "elsewhere").await.unwrap();
    assert_eq!(elsewhere["status"]["phase"], "Pending");
    assert!(elsewhere["status"].get("containerStatuses").is_none());

    // Kubelet events, in upstream words.
    let events = eventually("web events", || async {
        let list = c
            .list(
                &ResourceRef::new("", "v1", "events").in_namespace("default"),
                &ListOptions {
                    field_selector: Some("involvedObject.name=web".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        (list.items.len() >= 4).then(|| Value::Array(list.items))
    })
    .await;
    let reasons: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    for r in ["Pulling", "Pulled", "Created", "Started"] {
        assert!(reasons.contains(&r), "{r} in {reasons:?}");
    }
    let created = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["reason"] == "Created")
        .unwrap();
    assert_eq!(created["message"], "Created container: nginx");
    assert_eq!(created["source"]["component"], "kubelet");
    assert_eq!(created["source"]["host"], "n1");
    assert_eq!(
        created["involvedObject"]["fieldPath"],
        "spec.containers{nginx}"
    );

    // A Job's pod Succeeds (after the default second) and gives its IP back.
    let job = c
        .create(
            &ResourceRef::new("batch", "v1", "jobs").in_namespace("default"),
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
                   "spec": {"template": {"spec": {"restartPolicy": "Never",
                            "containers": [{"name": "pi", "image": "perl:5.34.0"}]}}}}),
            &w,
        )
        .await
        .unwrap();
    let mut job_pod = pod("pi-abcde", "n1");
    job_pod["spec"]["restartPolicy"] = json!("Never");
    job_pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "batch/v1", "kind": "Job",
        "name": "pi", "uid": job["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}]);
    c.create(&pods(), job_pod, &w).await.unwrap();
    let done = eventually("job pod Succeeded", || async {
        let p = c.get(&pods(), "pi-abcde").await.unwrap();
        (p["status"]["phase"] == "Succeeded").then_some(p)
    })
    .await;
    let term = &done["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(term["exitCode"], 0);
    assert_eq!(term["reason"], "Completed");
    assert_eq!(cond(&done, "Ready"), Some("False"));
    eventually("job pod IP released", || async {
        (network.assigned("n1") == 1).then_some(Value::Null)
    })
    .await;

    // Deleting a bound pod: the kubelet stops it and removes it with grace 0.
    let outcome = c
        .delete(&pods(), "web", &DeleteOptions::default())
        .await
        .unwrap();
    assert!(matches!(
        outcome,
        skiff_k8s_core::client::DeleteOutcome::Pending(_)
    ));
    eventually("web removed", || async {
        c.get_opt(&pods(), "web")
            .await
            .unwrap()
            .is_none()
            .then_some(Value::Null)
    })
    .await;
    eventually("web IP released", || async {
        (network.assigned("n1") == 0).then_some(Value::Null)
    })
    .await;
    let killing = c
        .list(
            &ResourceRef::new("", "v1", "events").in_namespace("default"),
            &ListOptions {
                field_selector: Some("involvedObject.name=web,reason=Killing".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(killing.items.len(), 1);
    assert_eq!(killing.items[0]["message"], "Stopping container nginx");

    // A stopped node stops renewing its Lease; started again, it renews.
    handle.stop_node("n1");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let frozen = c.get(&leases(), "n1").await.unwrap()["spec"]["renewTime"].clone();
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        c.get(&leases(), "n1").await.unwrap()["spec"]["renewTime"],
        frozen,
        "a stopped node must not renew"
    );
    // Its pods wait too.
    c.create(&pods(), pod("while-down", "n1"), &w)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting = c.get(&pods(), "while-down").await.unwrap();
    assert!(waiting["status"].get("containerStatuses").is_none());
    handle.start_node("n1");
    eventually("lease renewed after start", || async {
        let l = c.get(&leases(), "n1").await.unwrap();
        (l["spec"]["renewTime"] != frozen).then_some(l)
    })
    .await;
    eventually("pod runs after the node is back", || async {
        let p = c.get(&pods(), "while-down").await.unwrap();
        (p["status"]["phase"] == "Running").then_some(p)
    })
    .await;

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("sim stops on shutdown")
        .unwrap();
}

/// The `fast` profile and the fault annotations through the registry: one write to Running (init
/// containers Completed, hostNetwork on the node IP), a readiness probe's delay, `skiff.dev/fail`
/// with restartPolicy Never ending Failed with the code, and a crash loop restarting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_profile_and_fault_annotations() {
    let dir = tempfile::tempdir().unwrap();
    let store = skiff_store::open("embedded", dir.path()).await.unwrap();
    let api = start(
        store,
        ClusterApiConfig::new("c2", "127.0.0.1:0".parse().unwrap()),
    )
    .await
    .unwrap();
    let client: Arc<dyn ApiClient> =
        Arc::new(RegistryClient::new(api.registry.clone(), "system:node:sim"));
    let c = client.as_ref();
    let w = WriteOptions::default();
    c.create(&nodes(), node("n1", true, "10.244.7.0/24"), &w)
        .await
        .unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let config = SimConfig {
        profile: "fast".into(),
        ..SimConfig::default()
    };
    let (_handle, task) = spawn_sim(
        client.clone(),
        Arc::new(CidrPodNetwork::new()),
        config,
        shutdown,
    );

    // A cordoned node still runs what is bound to it.
    let mut cordoned = node("cordoned", true, "10.244.8.0/24");
    cordoned["spec"]["unschedulable"] = json!(true);
    c.create(&nodes(), cordoned, &w).await.unwrap();
    c.create(&pods(), pod("on-cordoned", "cordoned"), &w)
        .await
        .unwrap();
    let mut host = pod("agent", "n1");
    host["spec"]["hostNetwork"] = json!(true);
    host["spec"]["initContainers"] = json!([{"name": "init", "image": "busybox"}]);
    c.create(&pods(), host, &w).await.unwrap();
    let mut probed = pod("probed", "n1");
    probed["spec"]["containers"][0]["readinessProbe"] =
        json!({"httpGet": {"path": "/", "port": 80}, "initialDelaySeconds": 1});
    c.create(&pods(), probed, &w).await.unwrap();
    let mut failing = pod("failing", "n1");
    failing["spec"]["restartPolicy"] = json!("Never");
    failing["metadata"]["annotations"] =
        json!({"skiff.dev/fail": "3", "skiff.dev/fail-after": "100ms"});
    c.create(&pods(), failing, &w).await.unwrap();
    let mut crashing = pod("crashing", "n1");
    crashing["metadata"]["annotations"] = json!({"skiff.dev/crash-loop": "true"});
    c.create(&pods(), crashing, &w).await.unwrap();

    let agent = eventually("hostNetwork pod Running", || async {
        let p = c.get(&pods(), "agent").await.unwrap();
        (p["status"]["phase"] == "Running").then_some(p)
    })
    .await;
    assert_eq!(agent["status"]["podIP"], "10.0.1.5", "the node's IP");
    assert_eq!(
        agent["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );
    assert_eq!(cond(&agent, "Ready"), Some("True"));

    let on_cordoned = eventually("pod on a cordoned node Running", || async {
        let p = c.get(&pods(), "on-cordoned").await.unwrap();
        (p["status"]["phase"] == "Running").then_some(p)
    })
    .await;
    assert!(
        on_cordoned["status"]["podIP"]
            .as_str()
            .unwrap()
            .starts_with("10.244.8.")
    );

    let probed = eventually("probed pod Running", || async {
        let p = c.get(&pods(), "probed").await.unwrap();
        (p["status"]["phase"] == "Running").then_some(p)
    })
    .await;
    assert_eq!(
        cond(&probed, "Ready"),
        Some("False"),
        "probe delay not over"
    );
    assert!(
        probed["status"]["podIP"]
            .as_str()
            .unwrap()
            .starts_with("10.244.7.")
    );
    eventually("probed pod Ready after initialDelaySeconds", || async {
        let p = c.get(&pods(), "probed").await.unwrap();
        (cond(&p, "Ready") == Some("True")).then_some(p)
    })
    .await;

    let failed = eventually("failing pod Failed", || async {
        let p = c.get(&pods(), "failing").await.unwrap();
        (p["status"]["phase"] == "Failed").then_some(p)
    })
    .await;
    let term = &failed["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(term["exitCode"], 3);
    assert_eq!(term["reason"], "Error");

    let crashing = eventually("crash loop", || async {
        let p = c.get(&pods(), "crashing").await.unwrap();
        (p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff")
            .then_some(p)
    })
    .await;
    let cs = &crashing["status"]["containerStatuses"][0];
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 1);
    assert!(
        cs["state"]["waiting"]["message"]
            .as_str()
            .unwrap()
            .starts_with("back-off 10s restarting failed container=nginx pod=crashing_default(")
    );
    assert_eq!(crashing["status"]["phase"], "Running");
    assert_eq!(cond(&crashing, "Ready"), Some("False"));

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("sim stops on shutdown")
        .unwrap();
}
