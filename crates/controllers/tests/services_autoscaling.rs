//! The HorizontalPodAutoscaler and disruption controllers against a real API server registry:
//! a Deployment whose Running Pods report (simulated) CPU above target is scaled up through the
//! `scale` subresource with the HPA's status filled as `kubectl get hpa` reads it, and a
//! PodDisruptionBudget over the same Pods reports how many may be disrupted.

mod support;
use support::{eventually, kubectl_at};

use std::sync::Arc;

use serde_json::{Value, json};
use skiff_apiserver::client::RegistryClient;
use skiff_apiserver::server::{ClusterApiConfig, start};
use skiff_controllers::deployment::deployments;
use skiff_controllers::disruption::pod_disruption_budgets;
use skiff_controllers::horizontal_pod_autoscaler::horizontal_pod_autoscalers;
use skiff_controllers::horizontal_pod_autoscaler_metrics::CPU_USAGE_ANNOTATION;
use skiff_controllers::replicaset::pods;
use skiff_k8s_core::client::{ApiClient, ListOptions, PatchOptions, WriteOptions};
use skiff_k8s_core::patch::PatchType;

/// Plays the kubelet for the Deployment's Pods: Running, Ready, with a CPU usage annotation.
async fn run_pods(c: &dyn ApiClient, usage: &str) -> usize {
    let r = pods().in_namespace("default");
    let list = c.list(&r, &ListOptions::default()).await.unwrap().items;
    for (i, p) in list.iter().enumerate() {
        let name = p["metadata"]["name"].as_str().unwrap();
        let p = c
            .patch(
                &r,
                name,
                PatchType::Merge,
                json!({"metadata": {"annotations": {CPU_USAGE_ANNOTATION: usage}}}),
                &PatchOptions::default(),
            )
            .await
            .unwrap();
        let mut p = p;
        p["status"] = json!({"phase": "Running", "podIP": format!("10.2.0.{}", i + 1),
            "conditions": [{"type": "Ready", "status": "True",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
        c.update_status(&r, p, &WriteOptions::default())
            .await
            .unwrap();
    }
    list.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_scales_a_deployment_and_pdb_counts_its_pods() {
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
    c.create(
        &d_ref,
        json!({"metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx",
                        "resources": {"requests": {"cpu": "100m"}}}]}}}}),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    eventually("two pods", || async {
        let n = c
            .list(&pods().in_namespace("default"), &ListOptions::default())
            .await
            .unwrap()
            .items
            .len();
        (n == 2).then_some(Value::Null)
    })
    .await;
    assert_eq!(run_pods(c, "150m").await, 2);

    c.create(
        &pod_disruption_budgets().in_namespace("default"),
        json!({"metadata": {"name": "web"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    let pdb = eventually("pdb status", || async {
        let p = c
            .get(&pod_disruption_budgets().in_namespace("default"), "web")
            .await
            .unwrap();
        (p["status"]["currentHealthy"] == 2).then_some(p)
    })
    .await;
    assert_eq!(pdb["status"]["desiredHealthy"], 1);
    assert_eq!(pdb["status"]["disruptionsAllowed"], 1);
    assert_eq!(pdb["status"]["expectedPods"], 2);
    assert_eq!(pdb["status"]["conditions"][0]["reason"], "SufficientPods");

    c.create(
        &horizontal_pod_autoscalers().in_namespace("default"),
        json!({"metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 10,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 50}}}]}}),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    // 150 % against 50 %: three times the pods, within the default scale-up rate (max(2+4, 2×2)).
    let d = eventually("the deployment scaled to 6", || async {
        let d = c.get(&d_ref, "web").await.unwrap();
        (d["spec"]["replicas"] == 6).then_some(d)
    })
    .await;
    assert_eq!(d["metadata"]["name"], "web");
    let hpa = eventually("hpa status", || async {
        let h = c
            .get(&horizontal_pod_autoscalers().in_namespace("default"), "web")
            .await
            .unwrap();
        (h["status"]["desiredReplicas"] == 6).then_some(h)
    })
    .await;
    let s = &hpa["status"];
    assert_eq!(s["currentReplicas"], 2);
    assert_eq!(
        s["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
        150
    );
    assert!(s["lastScaleTime"].is_string());
    let reasons: Vec<_> = s["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}={}",
                c["type"].as_str().unwrap(),
                c["reason"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "AbleToScale=SucceededRescale",
            "ScalingActive=ValidMetricFound",
            "ScalingLimited=DesiredWithinRange"
        ]
    );
    let out = kubectl_at(api.local_addr, &["get", "hpa"]).await;
    let row: Vec<&str> = out
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    // NAME REFERENCE TARGETS(2 words) MINPODS MAXPODS REPLICAS AGE
    assert_eq!(
        row[..7],
        ["web", "Deployment/web", "cpu:", "150%/50%", "1", "10", "2"],
        "{out}"
    );
    let out = kubectl_at(api.local_addr, &["get", "pdb"]).await;
    assert!(
        out.lines().nth(1).unwrap_or_default().starts_with("web "),
        "{out}"
    );
    stop.send(true).unwrap();
    ctl.await.unwrap();
    api.shutdown().await;
}
