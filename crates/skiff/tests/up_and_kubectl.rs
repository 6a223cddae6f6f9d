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
