//! End-to-end: `skiff up --demo`, `skiff kubeconfig demo`, then the real kubectl against the demo
//! control plane (issue "Kubernetes API server that kubectl accepts").

mod support;

use support::{Skiff, fails, kubectl, ok};

#[test]
fn demo_cluster_answers_kubectl_over_tls_with_the_admin_certificate() {
    let skiff = Skiff::start(&["--demo"]);
    let kc = skiff.kubeconfig("demo");

    let ns = ok(kubectl(&kc, &["get", "ns", "-o", "name"]));
    for want in [
        "namespace/default",
        "namespace/kube-system",
        "namespace/kube-public",
        "namespace/kube-node-lease",
    ] {
        assert!(ns.contains(want), "missing {want} in:\n{ns}");
    }
    let version = ok(kubectl(&kc, &["version", "-o", "json"]));
    assert!(version.contains("\"serverVersion\""), "{version}");

    let resources = ok(kubectl(&kc, &["api-resources", "-o", "name"]));
    for want in [
        "pods",
        "deployments.apps",
        "clusterroles.rbac.authorization.k8s.io",
    ] {
        assert!(
            resources.lines().any(|l| l == want),
            "api-resources lacks {want}:\n{resources}"
        );
    }
    assert!(ok(kubectl(&kc, &["auth", "can-i", "create", "deployments"])).trim() == "yes");
}

#[test]
fn apply_get_patch_delete_a_configmap() {
    let skiff = Skiff::start(&["--demo"]);
    let kc = skiff.kubeconfig("demo");
    let manifest = skiff.data_dir.join("cm.yaml");
    std::fs::write(&manifest, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\n  labels: {tier: web}\ndata:\n  mode: blue\n").unwrap();
    let path = manifest.to_str().unwrap();

    assert!(ok(kubectl(&kc, &["apply", "-f", path])).contains("configmap/app-config created"));
    assert!(ok(kubectl(&kc, &["apply", "-f", path])).contains("configmap/app-config unchanged"));
    let got = ok(kubectl(
        &kc,
        &[
            "get",
            "cm",
            "-l",
            "tier=web",
            "-o",
            "jsonpath={.items[0].data.mode}",
        ],
    ));
    assert_eq!(got, "blue");
    ok(kubectl(
        &kc,
        &[
            "patch",
            "cm",
            "app-config",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"mode":"green"}}"#,
        ],
    ));
    let got = ok(kubectl(
        &kc,
        &["get", "cm", "app-config", "-o", "jsonpath={.data.mode}"],
    ));
    assert_eq!(got, "green");
    ok(kubectl(&kc, &["delete", "cm", "app-config"]));
    let err = fails(kubectl(&kc, &["get", "cm", "app-config"]));
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
}

#[test]
fn objects_and_resource_versions_survive_kill_9_and_restart() {
    let mut skiff = Skiff::start(&["--demo"]);
    let kc = skiff.kubeconfig("demo");
    let manifest = skiff.data_dir.join("ns.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: durable\n",
    )
    .unwrap();
    ok(kubectl(&kc, &["apply", "-f", manifest.to_str().unwrap()]));
    let rv = ok(kubectl(
        &kc,
        &[
            "get",
            "ns",
            "durable",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
    ));

    skiff.kill9();
    let dir = skiff.data_dir.clone();
    let restarted = Skiff::start_in(&dir, &[]);
    let kc = restarted.kubeconfig("demo");
    let rv_after = ok(kubectl(
        &kc,
        &[
            "get",
            "ns",
            "durable",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
    ));
    assert_eq!(rv, rv_after);
    drop(skiff);
}

#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "a plain test thread polling for controller results"
)]
fn seed_manifests_apply_and_their_objects_behave() {
    let skiff = Skiff::start(&["--demo"]);
    let kc = skiff.kubeconfig("demo");
    let scenarios = support::shared_dir().join("scenarios");
    let namespaces = scenarios.join("namespaces.yaml");
    let seeds = scenarios.join("seed-manifests.yaml");
    ok(kubectl(
        &kc,
        &[
            "apply",
            "-f",
            namespaces.to_str().unwrap(),
            "-f",
            seeds.to_str().unwrap(),
        ],
    ));

    // NodePort 30008 is kept, and a second Service asking for it is refused.
    let port = ok(kubectl(
        &kc,
        &[
            "get",
            "svc",
            "myapp-nodeport",
            "-o",
            "jsonpath={.spec.ports[0].nodePort}",
        ],
    ));
    assert_eq!(port, "30008");
    let second = skiff.data_dir.join("second.yaml");
    std::fs::write(
        &second,
        "apiVersion: v1\nkind: Service\nmetadata: {name: second-nodeport}\nspec:\n  type: NodePort\n  selector: {app: x}\n  ports: [{port: 80, nodePort: 30008}]\n",
    )
    .unwrap();
    let err = fails(kubectl(&kc, &["apply", "-f", second.to_str().unwrap()]));
    assert!(err.contains("provided port is already allocated"), "{err}");

    // The ClusterIP comes from the EKS service CIDR.
    let ip = ok(kubectl(
        &kc,
        &[
            "get",
            "svc",
            "myapp-service",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ],
    ));
    assert!(ip.starts_with("10.100."), "{ip}");

    // The legacy token Secret is filled in by the token controller.
    let mut token = String::new();
    for _ in 0..100 {
        token = ok(kubectl(
            &kc,
            &[
                "get",
                "secret",
                "secret-sa-test-a",
                "-o",
                "jsonpath={.data.token}",
            ],
        ));
        if !token.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!token.is_empty(), "secret-sa-test-a has no token");

    // The ReplicaSet controller creates the three pods (Pending until a scheduler exists).
    let mut pods = String::new();
    for _ in 0..100 {
        pods = ok(kubectl(
            &kc,
            &["get", "pods", "-l", "app=test-replicaset", "-o", "name"],
        ));
        if pods.lines().count() == 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(pods.lines().count(), 3, "{pods}");
}
