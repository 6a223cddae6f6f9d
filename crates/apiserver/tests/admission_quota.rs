//! LimitRanger and ResourceQuota with the real kubectl: the seed notes' `rq-1` and `lr-1` in
//! `nm-3`, count quotas with upstream's refusal, `must specify`, dry-run, deletes giving usage
//! back, and concurrent creates that must not over-admit.

#[path = "admission_kit.rs"]
mod kit;
mod support;

use std::sync::Arc;

use kit::Kubectl;
use serde_json::{Value, json};
use skiff_apiserver::client::RegistryClient;
use skiff_apiserver::server::ClusterApiConfig;
use skiff_k8s_core::client::{ApiClient, ResourceRef, WriteOptions};
use skiff_k8s_core::quantity::Quantity;
use support::{TestServer, server_with};

async fn server() -> TestServer {
    server_with(ClusterApiConfig::new(
        "quota",
        "127.0.0.1:0".parse().unwrap(),
    ))
    .await
}

/// The seed notes' objects (`seed-manifests.yaml`), as written there.
const NM3: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: nm-3
---
apiVersion: v1
kind: ResourceQuota
metadata:
  name: rq-1
  namespace: nm-3
spec:
  hard:
    requests.memory: 1Gi
    limits.memory: 1Gi
---
apiVersion: v1
kind: LimitRange
metadata:
  name: lr-1
  namespace: nm-3
spec:
  limits:
  - type: Container
    min:
      memory: 0.1Gi
    max:
      memory: 0.4Gi
    maxLimitRequestRatio:
      memory: 3
    defaultRequest:
      memory: 0.1Gi
    default:
      memory: 0.2Gi
";

fn q(v: &Value) -> Quantity {
    Quantity::parse(v.as_str().unwrap_or("0")).unwrap()
}

fn pod_yaml(name: &str, ns: &str, resources: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  containers:\n  - name: nginx\n    image: nginx\n{resources}"
    )
}

#[tokio::test]
async fn seed_limit_range_and_quota_behave_as_upstream() {
    let s = server().await;
    let k = Kubectl::new(&s.base);
    k.ok(&["apply", "-f", "-"], Some(NM3)).await;
    // The quota is counted at once (kubectl describe reads status).
    let rq = k.json(&["get", "quota", "rq-1", "-n", "nm-3"]).await;
    assert_eq!(rq["status"]["hard"]["requests.memory"], "1Gi");
    assert_eq!(rq["status"]["used"]["requests.memory"], "0");
    let describe = k
        .ok(&["describe", "quota", "rq-1", "-n", "nm-3"], None)
        .await;
    assert!(
        describe
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["requests.memory", "0", "1Gi"]),
        "{describe}"
    );

    // A pod without resources gets the LimitRange defaults and is charged.
    k.ok(&["run", "p1", "--image=nginx", "-n", "nm-3"], None)
        .await;
    let pod = k.json(&["get", "pod", "p1", "-n", "nm-3"]).await;
    let res = &pod["spec"]["containers"][0]["resources"];
    assert_eq!(
        q(&res["requests"]["memory"]),
        Quantity::parse("0.1Gi").unwrap()
    );
    assert_eq!(
        q(&res["limits"]["memory"]),
        Quantity::parse("0.2Gi").unwrap()
    );
    assert_eq!(
        pod["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: memory request for container p1; memory limit for container p1"
    );
    let rq = k.json(&["get", "quota", "rq-1", "-n", "nm-3"]).await;
    assert_eq!(
        q(&rq["status"]["used"]["requests.memory"]),
        Quantity::parse("0.1Gi").unwrap()
    );
    assert_eq!(
        q(&rq["status"]["used"]["limits.memory"]),
        Quantity::parse("0.2Gi").unwrap()
    );

    // Over the LimitRange's max: refused with upstream's words.
    let big = pod_yaml(
        "big",
        "nm-3",
        "    resources:\n      requests:\n        memory: 1Gi\n      limits:\n        memory: 1Gi\n",
    );
    let err = k.fails(&["apply", "-f", "-"], Some(&big)).await;
    assert!(
        err.contains("pods \"big\" is forbidden: maximum memory usage per Container is 429496729600m, but limit is 1Gi"),
        "{err}"
    );
    // Limit/request ratio over 3.
    let ratio = pod_yaml(
        "ratio",
        "nm-3",
        "    resources:\n      requests:\n        memory: 110Mi\n      limits:\n        memory: 400Mi\n",
    );
    let err = k.fails(&["apply", "-f", "-"], Some(&ratio)).await;
    assert!(
        err.contains(
            "memory max limit to request ratio per Container is 3, but provided ratio is 3.636364"
        ),
        "{err}"
    );

    // Fill the quota: each defaulted pod takes 0.2Gi of limits.memory, so four more fit and the
    // sixth is refused.
    for i in 2..=5 {
        k.ok(
            &["run", &format!("p{i}"), "--image=nginx", "-n", "nm-3"],
            None,
        )
        .await;
    }
    let err = k
        .fails(&["run", "p6", "--image=nginx", "-n", "nm-3"], None)
        .await;
    // `used` is whatever spelling the stored status has (here the sum of decimal spellings).
    assert!(
        err.contains("pods \"p6\" is forbidden: exceeded quota: rq-1, requested: limits.memory=214748364800m, used: limits.memory=1073741824, limited: limits.memory=1Gi"),
        "{err}"
    );
    // Deleting gives usage back.
    k.ok(
        &[
            "delete",
            "pod",
            "p1",
            "-n",
            "nm-3",
            "--grace-period=0",
            "--force",
        ],
        None,
    )
    .await;
    let rq = k.json(&["get", "quota", "rq-1", "-n", "nm-3"]).await;
    assert_eq!(
        q(&rq["status"]["used"]["limits.memory"]),
        Quantity::parse("0.8Gi").unwrap()
    );
    k.ok(&["run", "p6", "--image=nginx", "-n", "nm-3"], None)
        .await;
}

#[tokio::test]
async fn count_quotas_must_specify_and_dry_run() {
    let s = server().await;
    let k = Kubectl::new(&s.base);
    k.ok(&["create", "namespace", "q"], None).await;
    k.ok(
        &[
            "create",
            "quota",
            "rq-1",
            "-n",
            "q",
            "--hard=pods=2,count/deployments.apps=1,configmaps=1,services=1",
        ],
        None,
    )
    .await;
    k.ok(&["run", "a", "--image=nginx", "-n", "q"], None).await;
    // Server-side dry run is admitted but charges nothing.
    k.ok(
        &["run", "b", "--image=nginx", "-n", "q", "--dry-run=server"],
        None,
    )
    .await;
    let rq = k.json(&["get", "quota", "rq-1", "-n", "q"]).await;
    assert_eq!(rq["status"]["used"]["pods"], "1");
    k.ok(&["run", "b", "--image=nginx", "-n", "q"], None).await;
    let err = k
        .fails(&["run", "c", "--image=nginx", "-n", "q"], None)
        .await;
    assert!(
        err.contains("pods \"c\" is forbidden: exceeded quota: rq-1, requested: pods=1, used: pods=2, limited: pods=2"),
        "{err}"
    );
    // Object counts of other kinds, including count/<resource>.<group>.
    k.ok(
        &["create", "deployment", "d1", "--image=nginx", "-n", "q"],
        None,
    )
    .await;
    let err = k
        .fails(
            &["create", "deployment", "d2", "--image=nginx", "-n", "q"],
            None,
        )
        .await;
    assert!(
        err.contains("exceeded quota: rq-1, requested: count/deployments.apps=1, used: count/deployments.apps=1, limited: count/deployments.apps=1"),
        "{err}"
    );
    k.ok(&["create", "configmap", "c1", "-n", "q"], None).await;
    let err = k
        .fails(&["create", "configmap", "c2", "-n", "q"], None)
        .await;
    assert!(
        err.contains("requested: configmaps=1, used: configmaps=1, limited: configmaps=1"),
        "{err}"
    );
    let describe = k.ok(&["describe", "quota", "rq-1", "-n", "q"], None).await;
    assert!(
        describe
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["pods", "2", "2"]),
        "{describe}"
    );
    // Raising the limit recounts and lets the next pod in.
    k.ok(
        &[
            "patch",
            "quota",
            "rq-1",
            "-n",
            "q",
            "--type=merge",
            "-p",
            r#"{"spec":{"hard":{"pods":"3"}}}"#,
        ],
        None,
    )
    .await;
    let rq = k.json(&["get", "quota", "rq-1", "-n", "q"]).await;
    assert_eq!(rq["status"]["hard"]["pods"], "3");
    assert_eq!(rq["status"]["used"]["pods"], "2");
    assert_eq!(rq["status"]["used"]["count/deployments.apps"], "1");
    k.ok(&["run", "c", "--image=nginx", "-n", "q"], None).await;

    // A compute quota needs every container to state what it covers.
    k.ok(&["create", "namespace", "cpu"], None).await;
    k.ok(
        &[
            "create",
            "quota",
            "cpu-q",
            "-n",
            "cpu",
            "--hard=requests.cpu=1,limits.cpu=2",
        ],
        None,
    )
    .await;
    let err = k
        .fails(&["run", "nginx", "--image=nginx", "-n", "cpu"], None)
        .await;
    assert!(
        err.contains("pods \"nginx\" is forbidden: failed quota: cpu-q: must specify limits.cpu for: nginx; requests.cpu for: nginx"),
        "{err}"
    );
    let ok = pod_yaml(
        "nginx",
        "cpu",
        "    resources:\n      requests:\n        cpu: 500m\n      limits:\n        cpu: \"1\"\n",
    );
    k.ok(&["apply", "-f", "-"], Some(&ok)).await;
    let rq = k.json(&["get", "quota", "cpu-q", "-n", "cpu"]).await;
    assert_eq!(rq["status"]["used"]["requests.cpu"], "500m");
    assert_eq!(rq["status"]["used"]["limits.cpu"], "1");
}

#[tokio::test]
async fn concurrent_creates_do_not_over_admit() {
    let s = server().await;
    let c = Arc::new(RegistryClient::new(
        Arc::clone(&s.api.registry),
        "system:admin",
    ));
    let ns = ResourceRef::new("", "v1", "namespaces");
    c.create(
        &ns,
        json!({"metadata": {"name": "race"}}),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    let quotas = ResourceRef::new("", "v1", "resourcequotas").in_namespace("race");
    c.create(
        &quotas,
        json!({"metadata": {"name": "rq"}, "spec": {"hard": {"configmaps": "5"}}}),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    let cms = ResourceRef::new("", "v1", "configmaps").in_namespace("race");
    let mut tasks = Vec::new();
    for i in 0..20 {
        let c = Arc::clone(&c);
        let cms = cms.clone();
        tasks.push(tokio::spawn(async move {
            c.create(
                &cms,
                json!({"metadata": {"name": format!("cm-{i}")}}),
                &WriteOptions::default(),
            )
            .await
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => admitted += 1,
            Err(e) => {
                assert_eq!(e.code(), 403, "{e}");
                assert!(e.message().contains("exceeded quota: rq"), "{e}");
            }
        }
    }
    assert_eq!(admitted, 5);
    let rq = c.get(&quotas, "rq").await.unwrap();
    assert_eq!(rq["status"]["used"]["configmaps"], "5");
    let list = c.list(&cms, &Default::default()).await.unwrap();
    assert_eq!(list.items.len(), 5);
}

#[tokio::test]
async fn finished_pods_give_their_quota_back() {
    let s = server().await;
    let c = RegistryClient::new(Arc::clone(&s.api.registry), "system:admin");
    let quotas = ResourceRef::new("", "v1", "resourcequotas").in_namespace("default");
    c.create(
        &quotas,
        json!({"metadata": {"name": "rq"}, "spec": {"hard": {"pods": "1", "count/pods": "5"}}}),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    let pods = ResourceRef::new("", "v1", "pods").in_namespace("default");
    let pod = |n: &str| json!({"metadata": {"name": n}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let first = c
        .create(&pods, pod("job-1"), &WriteOptions::default())
        .await
        .unwrap();
    let e = c
        .create(&pods, pod("job-2"), &WriteOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), 403, "{e}");
    // The pod finishes: `pods` counts live pods only, `count/pods` every stored one.
    let mut done = first;
    done["status"]["phase"] = json!("Succeeded");
    c.update_status(&pods, done, &WriteOptions::default())
        .await
        .unwrap();
    let rq = c.get(&quotas, "rq").await.unwrap();
    assert_eq!(rq["status"]["used"]["pods"], "0");
    assert_eq!(rq["status"]["used"]["count/pods"], "1");
    c.create(&pods, pod("job-2"), &WriteOptions::default())
        .await
        .unwrap();
    let rq = c.get(&quotas, "rq").await.unwrap();
    assert_eq!(rq["status"]["used"]["pods"], "1");
    assert_eq!(rq["status"]["used"]["count/pods"], "2");
}
