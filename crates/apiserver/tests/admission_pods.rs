//! The pod admission plugins with the real kubectl: ServiceAccount (token volume), Priority,
//! PodSecurity (enforce refuses, warn warns), DefaultTolerationSeconds, DefaultStorageClass.

#[path = "admission_kit.rs"]
mod kit;
mod support;

use kit::Kubectl;
use serde_json::json;
use skiff_apiserver::server::ClusterApiConfig;
use support::{TestServer, server_with};

async fn server() -> TestServer {
    server_with(ClusterApiConfig::new("adm", "127.0.0.1:0".parse().unwrap())).await
}

#[tokio::test]
async fn service_account_tolerations_and_priority() {
    let s = server().await;
    let k = Kubectl::new(&s.base);
    k.ok(&["run", "web", "--image=nginx"], None).await;
    let pod = k.json(&["get", "pod", "web"]).await;
    let spec = &pod["spec"];
    assert_eq!(spec["serviceAccountName"], "default");
    let vol = &spec["volumes"][0];
    let vname = vol["name"].as_str().unwrap();
    assert!(
        vname.starts_with("kube-api-access-") && vname.len() == 21,
        "{vname}"
    );
    assert_eq!(
        vol["projected"]["sources"],
        json!([{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}}])
    );
    assert_eq!(
        spec["containers"][0]["volumeMounts"],
        json!([{"name": vname, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}])
    );
    let tolerations = spec["tolerations"].as_array().unwrap();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let t = tolerations.iter().find(|t| t["key"] == key).unwrap();
        assert_eq!(t["tolerationSeconds"], 300);
        assert_eq!(t["effect"], "NoExecute");
    }
    assert_eq!(spec["priority"], 0);

    // automountServiceAccountToken: false on the pod keeps it out.
    let no_token = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: quiet\nspec:\n  automountServiceAccountToken: false\n  containers:\n  - name: c\n    image: nginx\n";
    k.ok(&["apply", "-f", "-"], Some(no_token)).await;
    let pod = k.json(&["get", "pod", "quiet"]).await;
    assert!(pod["spec"].get("volumes").is_none(), "{pod}");
    // A named ServiceAccount must exist.
    let err = k
        .fails(
            &[
                "run",
                "x",
                "--image=nginx",
                "--overrides={\"spec\":{\"serviceAccountName\":\"ghost\"}}",
            ],
            None,
        )
        .await;
    assert!(
        err.contains("pods \"x\" is forbidden: error looking up service account default/ghost: serviceaccounts \"ghost\" not found"),
        "{err}"
    );

    // Built-in and user PriorityClasses.
    let out = k.ok(&["get", "priorityclasses"], None).await;
    assert!(
        out.contains("system-node-critical") && out.contains("2000001000"),
        "{out}"
    );
    let critical = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: crit\nspec:\n  priorityClassName: system-cluster-critical\n  containers:\n  - name: c\n    image: nginx\n";
    k.ok(&["apply", "-f", "-"], Some(critical)).await;
    assert_eq!(
        k.json(&["get", "pod", "crit"]).await["spec"]["priority"],
        2_000_000_000
    );
    let unknown = critical
        .replace("crit\n", "lost\n")
        .replace("system-cluster-critical", "gold");
    let err = k.fails(&["apply", "-f", "-"], Some(&unknown)).await;
    assert!(
        err.contains("pods \"lost\" is forbidden: no PriorityClass with name gold was found"),
        "{err}"
    );
    k.ok(
        &[
            "create",
            "priorityclass",
            "normal",
            "--value=1000",
            "--global-default=true",
        ],
        None,
    )
    .await;
    k.ok(&["run", "later", "--image=nginx"], None).await;
    let pod = k.json(&["get", "pod", "later"]).await;
    assert_eq!(pod["spec"]["priority"], 1000);
    assert_eq!(pod["spec"]["priorityClassName"], "normal");
}

#[tokio::test]
async fn pod_security_enforces_and_warns() {
    let s = server().await;
    let k = Kubectl::new(&s.base);
    k.ok(&["create", "namespace", "locked"], None).await;
    k.ok(
        &[
            "label",
            "namespace",
            "locked",
            "pod-security.kubernetes.io/enforce=restricted",
        ],
        None,
    )
    .await;
    let err = k
        .fails(&["run", "nginx", "--image=nginx", "-n", "locked"], None)
        .await;
    assert!(
        err.contains("pods \"nginx\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"nginx\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"nginx\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"nginx\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"nginx\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"),
        "{err}"
    );
    let good = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: good\n  namespace: locked\nspec:\n  securityContext:\n    runAsNonRoot: true\n    seccompProfile:\n      type: RuntimeDefault\n  containers:\n  - name: c\n    image: nginx\n    securityContext:\n      allowPrivilegeEscalation: false\n      capabilities:\n        drop: [\"ALL\"]\n";
    k.ok(&["apply", "-f", "-"], Some(good)).await;
    // A Deployment whose template violates is admitted with a warning.
    let (ok, _, err) = k
        .run(
            &["create", "deployment", "d", "--image=nginx", "-n", "locked"],
            None,
        )
        .await;
    assert!(ok, "{err}");
    assert!(
        err.contains("Warning: would violate PodSecurity \"restricted:latest\""),
        "{err}"
    );

    // warn=baseline: a privileged pod is admitted with the warning.
    k.ok(&["create", "namespace", "loose"], None).await;
    k.ok(
        &[
            "label",
            "namespace",
            "loose",
            "pod-security.kubernetes.io/warn=baseline",
        ],
        None,
    )
    .await;
    let privileged = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: root\n  namespace: loose\nspec:\n  hostNetwork: true\n  containers:\n  - name: c\n    image: nginx\n    securityContext:\n      privileged: true\n";
    let (ok, _, err) = k.run(&["apply", "-f", "-"], Some(privileged)).await;
    assert!(ok, "{err}");
    assert!(
        err.contains("Warning: would violate PodSecurity \"baseline:latest\": host namespaces (hostNetwork=true), privileged (container \"c\" must not set securityContext.privileged=true)"),
        "{err}"
    );
}

#[tokio::test]
async fn default_storage_class_fills_claims() {
    let s = server().await;
    let k = Kubectl::new(&s.base);
    let classes = "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: gp2\n  annotations:\n    storageclass.kubernetes.io/is-default-class: \"true\"\nprovisioner: ebs.csi.aws.com\n---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: io2\nprovisioner: ebs.csi.aws.com\n";
    k.ok(&["apply", "-f", "-"], Some(classes)).await;
    let claim = |name: &str, class: &str| {
        format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {name}\nspec:\n{class}  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n"
        )
    };
    k.ok(&["apply", "-f", "-"], Some(&claim("data", ""))).await;
    let pvc = k.json(&["get", "pvc", "data"]).await;
    assert_eq!(pvc["spec"]["storageClassName"], "gp2");
    k.ok(
        &["apply", "-f", "-"],
        Some(&claim("fast", "  storageClassName: io2\n")),
    )
    .await;
    assert_eq!(
        k.json(&["get", "pvc", "fast"]).await["spec"]["storageClassName"],
        "io2"
    );
    k.ok(
        &["apply", "-f", "-"],
        Some(&claim("none", "  storageClassName: \"\"\n")),
    )
    .await;
    assert_eq!(
        k.json(&["get", "pvc", "none"]).await["spec"]["storageClassName"],
        ""
    );
}
