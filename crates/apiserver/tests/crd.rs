//! CustomResourceDefinitions served end to end with the real kubectl (1.32) and over HTTP: a
//! cert-manager-like `Certificate` CRD written for these tests (two versions, status and scale
//! subresources, printer columns, short names, the `all` category, a structural schema with
//! defaults and constraints), and autoscaling/v1 HPAs over the v2 storage.

mod support;

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use skiff_apiserver::server::ClusterApiConfig;
use support::{TestServer, eventually, next_event, server_on, server_with};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: certificates.certs.skiff.dev
spec:
  group: certs.skiff.dev
  scope: Namespaced
  names:
    plural: certificates
    singular: certificate
    kind: Certificate
    listKind: CertificateList
    shortNames: [cert, certs]
    categories: [all]
  versions:
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
    additionalPrinterColumns:
    - name: Ready
      type: string
      jsonPath: .status.conditions[?(@.type=="Ready")].status
    - name: Secret
      type: string
      jsonPath: .spec.secretName
    - name: Issuer
      type: string
      jsonPath: .spec.issuerRef.name
      priority: 1
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    schema:
      openAPIV3Schema:
        description: A Certificate resource asks for a signed X.509 certificate kept in a Secret.
        type: object
        required: [spec]
        properties:
          spec:
            description: Desired state of the Certificate resource.
            type: object
            required: [secretName, issuerRef]
            properties:
              secretName:
                description: Name of the Secret resource that will hold the signed certificate.
                type: string
                pattern: '^[a-z0-9-]+$'
                maxLength: 63
              replicas:
                type: integer
                minimum: 0
                maximum: 10
                default: 1
              duration:
                type: string
                default: 2160h
              usages:
                type: array
                maxItems: 4
                items:
                  type: string
                  enum: [digital signature, key encipherment, server auth, client auth]
                x-kubernetes-list-type: set
              port:
                x-kubernetes-int-or-string: true
              issuerRef:
                type: object
                required: [name]
                properties:
                  name:
                    type: string
                    minLength: 1
                  kind:
                    type: string
                    default: Issuer
              extra:
                type: object
                x-kubernetes-preserve-unknown-fields: true
              listeners:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                items:
                  type: object
                  required: [name]
                  properties:
                    name: {type: string}
                    port: {type: integer}
          status:
            type: object
            properties:
              replicas:
                type: integer
              conditions:
                type: array
                items:
                  type: object
                  properties:
                    type: {type: string}
                    status: {type: string}
"#;

const CERT: &str = r#"
apiVersion: certs.skiff.dev/v1
kind: Certificate
metadata:
  name: web
  namespace: default
  labels: {app: web}
spec:
  secretName: web-tls
  issuerRef: {name: letsencrypt}
  usages: [server auth]
  port: https
  extra: {anything: {goes: 1}}
"#;

fn config() -> ClusterApiConfig {
    let mut cfg = support::config();
    cfg.kinds = skiff_apiserver::kinds::builtin();
    cfg
}

struct Kubectl {
    dir: tempfile::TempDir,
}

impl Kubectl {
    fn new(s: &TestServer) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cfg = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: {}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: c\n  context:\n    cluster: t\n    user: u\n    namespace: default\ncurrent-context: c\n",
            s.base
        );
        std::fs::write(dir.path().join("config"), cfg).unwrap();
        Self { dir }
    }

    /// Runs kubectl with `stdin`; a fresh discovery cache each time unless `keep_cache`.
    async fn run_in(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut c = Command::new("kubectl");
        c.arg("--kubeconfig")
            .arg(self.dir.path().join("config"))
            .arg("--request-timeout=10s")
            .args(args)
            .env("KUBECACHEDIR", self.dir.path().join("cache"))
            .env("HOME", self.dir.path())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = c.spawn().expect("kubectl runs (is it installed?)");
        if let Some(input) = stdin {
            let mut si = child.stdin.take().unwrap();
            si.write_all(input.as_bytes()).await.unwrap();
            drop(si);
        }
        let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("kubectl finished within 30s")
            .expect("kubectl output");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run_in(args, None).await;
        assert!(ok, "kubectl {args:?} failed:\nstdout: {out}\nstderr: {err}");
        out
    }

    async fn apply(&self, yaml: &str, extra: &[&str]) -> (bool, String, String) {
        let mut args = vec!["apply", "-f", "-"];
        args.extend_from_slice(extra);
        self.run_in(&args, Some(yaml)).await
    }

    /// A fresh discovery cache (kubectl caches discovery for minutes).
    fn forget_discovery(&self) {
        let _ = std::fs::remove_dir_all(self.dir.path().join("cache"));
    }
}

fn lines_with<'a>(out: &'a str, needle: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.contains(needle)).collect()
}

#[tokio::test]
async fn kubectl_drives_a_custom_resource_through_its_life() {
    let s = server_with(config()).await;
    let k = Kubectl::new(&s);
    let (ok, out, err) = k.apply(CRD, &[]).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(
            "customresourcedefinition.apiextensions.k8s.io/certificates.certs.skiff.dev created"
        ),
        "{out}"
    );
    let out = k.ok(&["get", "crd"]).await;
    assert!(
        out.lines()
            .any(|l| l.starts_with("certificates.certs.skiff.dev")),
        "{out}"
    );
    let out = k
        .ok(&["get", "crd", "certificates.certs.skiff.dev", "-o",
            "jsonpath={.status.conditions[?(@.type==\"Established\")].status} {.status.acceptedNames.kind} {.status.storedVersions}"])
        .await;
    assert_eq!(out, "True Certificate [\"v1\"]");

    // Discovery right after the CRD exists (fresh cache).
    k.forget_discovery();
    let out = k
        .ok(&["api-resources", "--api-group=certs.skiff.dev"])
        .await;
    let row = lines_with(&out, "certificates");
    assert_eq!(row.len(), 1, "{out}");
    let cols: Vec<&str> = row[0].split_whitespace().collect();
    assert_eq!(
        cols,
        [
            "certificates",
            "cert,certs",
            "certs.skiff.dev/v1",
            "true",
            "Certificate"
        ],
        "{out}"
    );

    // Create; defaults and pruning applied; short name and Table columns.
    let (ok, out, err) = k.apply(CERT, &[]).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("certificate.certs.skiff.dev/web created"),
        "{out}"
    );
    let out = k.ok(&["get", "cert", "web", "-o", "json"]).await;
    let obj: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(obj["spec"]["replicas"], 1, "{obj}");
    assert_eq!(obj["spec"]["duration"], "2160h");
    assert_eq!(obj["spec"]["issuerRef"]["kind"], "Issuer");
    assert_eq!(obj["spec"]["extra"]["anything"]["goes"], 1);
    assert_eq!(obj["metadata"]["generation"], 1);
    let out = k.ok(&["get", "certificates"]).await;
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "SECRET", "AGE"], "{out}");
    assert!(out.lines().nth(1).unwrap().starts_with("web "), "{out}");
    let out = k.ok(&["get", "cert", "-o", "wide"]).await;
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "READY", "SECRET", "ISSUER", "AGE"],
        "{out}"
    );
    assert!(out.contains("letsencrypt"), "{out}");
    let out = k.ok(&["get", "all"]).await;
    assert!(out.contains("certificate.certs.skiff.dev/web"), "{out}");
    let out = k.ok(&["get", "cert", "-l", "app=web", "-o", "name"]).await;
    assert_eq!(out.trim(), "certificate.certs.skiff.dev/web");
    let out = k
        .ok(&["get", "cert", "-l", "app=other", "-o", "name"])
        .await;
    assert_eq!(out.trim(), "");

    // Invalid objects are refused with upstream's causes.
    let bad = CERT
        .replace("name: web\n", "name: bad\n")
        .replace(
            "secretName: web-tls",
            "secretName: Web_TLS\n  replicas: \"three\"",
        )
        .replace(
            "usages: [server auth]",
            "usages: [server auth, code signing]",
        );
    let (ok, out, err) = k.apply(&bad, &[]).await;
    assert!(!ok, "{out}");
    for want in [
        r#"The Certificate "bad" is invalid"#,
        r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#,
        r#"spec.secretName: Invalid value: "Web_TLS": spec.secretName in body should match '^[a-z0-9-]+$'"#,
        r#"spec.usages[1]: Unsupported value: "code signing": supported values: "digital signature", "key encipherment", "server auth", "client auth""#,
    ] {
        assert!(err.contains(want), "missing {want}\nin: {err}");
    }
    let (ok, _, err) = k
        .apply(
            &CERT
                .replace("name: web\n", "name: nospec\n")
                .replace("  secretName: web-tls\n", ""),
            &[],
        )
        .await;
    assert!(
        !ok && err.contains("spec.secretName: Required value"),
        "{err}"
    );

    // explain reads the published schema.
    let out = k.ok(&["explain", "certificate.spec"]).await;
    assert!(
        out.contains("Desired state of the Certificate resource."),
        "{out}"
    );
    assert!(
        out.contains("secretName") && out.contains("-required-"),
        "{out}"
    );

    // Patches: merge and JSON work; strategic merge is refused for custom resources.
    k.ok(&[
        "patch",
        "cert",
        "web",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"secretName":"web-tls-2"}}"#,
    ])
    .await;
    let (ok, _, err) = k
        .run_in(
            &[
                "patch",
                "cert",
                "web",
                "--type",
                "strategic",
                "-p",
                r#"{"spec":{"duration":"1h"}}"#,
            ],
            None,
        )
        .await;
    assert!(!ok, "strategic patch must fail");
    assert!(
        err.contains("415")
            || err.contains("UnsupportedMediaType")
            || err.contains("unknown format"),
        "{err}"
    );
    let out = k
        .ok(&[
            "get",
            "cert",
            "web",
            "-o",
            "jsonpath={.spec.secretName} {.metadata.generation}",
        ])
        .await;
    assert_eq!(out, "web-tls-2 2");

    // Server-side apply with another manager, then scale through the scale subresource.
    let (ok, out, err) = k
        .apply(
            &CERT.replace("web-tls", "web-tls-3"),
            &["--server-side", "--force-conflicts"],
        )
        .await;
    assert!(ok, "{out}{err}");
    k.ok(&["scale", "cert", "web", "--replicas=3"]).await;
    let out = k
        .ok(&[
            "get",
            "cert",
            "web",
            "-o",
            "jsonpath={.spec.replicas} {.spec.secretName}",
        ])
        .await;
    assert_eq!(out, "3 web-tls-3");

    // The other served version: same object, its own apiVersion.
    let out = k
        .ok(&[
            "get",
            "certificates.v1beta1.certs.skiff.dev",
            "web",
            "-o",
            "json",
        ])
        .await;
    let beta: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(beta["apiVersion"], "certs.skiff.dev/v1beta1");
    assert_eq!(beta["spec"]["replicas"], 3);

    // Deleting the CRD deletes its custom resources and unpublishes it.
    k.ok(&[
        "delete",
        "crd",
        "certificates.certs.skiff.dev",
        "--wait=true",
        "--timeout=20s",
    ])
    .await;
    let r = s
        .get("/apis/certs.skiff.dev/v1/namespaces/default/certificates")
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let left = s.store_keys("/k8s/test/certs.skiff.dev/").await;
    assert!(left.is_empty(), "{left:?}");
    k.forget_discovery();
    let (ok, _, err) = k.run_in(&["get", "certificates"], None).await;
    assert!(
        !ok && err.contains("the server doesn't have a resource type \"certificates\""),
        "{err}"
    );
}

trait StoreKeys {
    async fn store_keys(&self, prefix: &str) -> Vec<String>;
}

impl StoreKeys for TestServer {
    async fn store_keys(&self, prefix: &str) -> Vec<String> {
        use skiff_store::Store;
        self.store
            .list(prefix, skiff_store::ListOptions::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|kv| kv.key)
            .collect()
    }
}

async fn create_crd(s: &TestServer) {
    let crd: Value = serde_saphyr::from_str(CRD).unwrap();
    let r = s
        .post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            &crd,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

fn cert(name: &str, ns: &str) -> Value {
    let mut v: Value = serde_saphyr::from_str(CERT).unwrap();
    v["metadata"]["name"] = json!(name);
    v["metadata"]["namespace"] = json!(ns);
    v
}

const CERTS: &str = "/apis/certs.skiff.dev/v1/namespaces/default/certificates";

#[tokio::test]
async fn custom_resources_over_http_status_watch_selectors_and_restart() {
    let store = std::sync::Arc::new(support::mem_store::MemStore::new());
    let s = server_on(store.clone(), config()).await;
    create_crd(&s).await;
    let mut watch = s.watch(&format!("{CERTS}?watch=true"), &[]).await;
    let r = s.post(CERTS, &cert("a", "default")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let ev = next_event(&mut watch).await;
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("a"))
    );
    // Unknown fields: pruned, reported with fieldValidation=Strict.
    let mut extra = cert("b", "default");
    extra["spec"]["bogus"] = json!(1);
    let r = s
        .req(
            "POST",
            &format!("{CERTS}?fieldValidation=Strict"),
            Some("application/json"),
            Some(Bytes::from(extra.to_string())),
            &[],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains(r#"unknown field "spec.bogus""#),
        "{}",
        r.text
    );
    let r = s.post(CERTS, &extra).await;
    assert_eq!(r.status, 201);
    assert!(r.body["spec"].get("bogus").is_none());

    // Status subresource: the main resource ignores status, /status ignores spec.
    let mut with_status = r.body.clone();
    with_status["status"] =
        json!({"replicas": 2, "conditions": [{"type": "Ready", "status": "True"}]});
    with_status["spec"]["secretName"] = json!("changed");
    let r = s.put(&format!("{CERTS}/b/status"), &with_status).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"]["replicas"], 2);
    assert_eq!(r.body["spec"]["secretName"], "web-tls");
    assert_eq!(r.body["metadata"]["generation"], 1);
    let mut main = r.body.clone();
    main["status"] = json!({"replicas": 9});
    let r = s.put(&format!("{CERTS}/b"), &main).await;
    assert_eq!(r.body["status"]["replicas"], 2);
    let r = s.get(&format!("{CERTS}/b/scale")).await;
    assert_eq!(
        (
            r.body["kind"].as_str(),
            r.body["status"]["replicas"].as_i64()
        ),
        (Some("Scale"), Some(2)),
        "{}",
        r.text
    );

    // Field selectors on metadata, across namespaces.
    let r = s
        .get("/apis/certs.skiff.dev/v1/certificates?fieldSelector=metadata.name%3Db")
        .await;
    let names: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b"]);
    assert_eq!(r.body["kind"], "CertificateList");
    let r = s
        .get("/apis/certs.skiff.dev/v1/certificates?fieldSelector=spec.secretName%3Dx")
        .await;
    assert_eq!(r.status, 400, "{}", r.text);

    // Strategic merge patch: 415 with the types a custom resource accepts.
    let r = s
        .patch(
            &format!("{CERTS}/a"),
            "application/strategic-merge-patch+json",
            &json!({"spec": {}}),
        )
        .await;
    assert_eq!(r.status, 415, "{}", r.text);
    // Merge patch through the non-storage version: converted in and out.
    let r = s
        .patch(
            "/apis/certs.skiff.dev/v1beta1/namespaces/default/certificates/a",
            "application/merge-patch+json",
            &json!({"metadata": {"labels": {"v": "beta"}}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["apiVersion"], "certs.skiff.dev/v1beta1");
    let ev = next_event(&mut watch).await;
    assert_eq!(ev["type"], "ADDED");
    let ev = next_event(&mut watch).await;
    assert_eq!(ev["type"], "MODIFIED");
    let stored = s.get(&format!("{CERTS}/a")).await;
    assert_eq!(stored.body["apiVersion"], "certs.skiff.dev/v1");
    assert_eq!(stored.body["metadata"]["labels"]["v"], "beta");

    // A storage-version change: objects stored as v1 are still served as each version asks.
    let crd_path =
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/certificates.certs.skiff.dev";
    let mut crd = s.get(crd_path).await.body;
    crd["spec"]["versions"][0]["storage"] = json!(true);
    crd["spec"]["versions"][1]["storage"] = json!(false);
    let r = s.put(crd_path, &crd).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["status"]["storedVersions"],
        json!(["v1", "v1beta1"]),
        "{}",
        r.text
    );
    let r = s.get(&format!("{CERTS}/a")).await;
    assert_eq!(r.body["apiVersion"], "certs.skiff.dev/v1", "{}", r.text);
    let r = s
        .get("/apis/certs.skiff.dev/v1beta1/namespaces/default/certificates/b")
        .await;
    assert_eq!(
        r.body["apiVersion"], "certs.skiff.dev/v1beta1",
        "{}",
        r.text
    );
    let r = s
        .patch(
            "/apis/certs.skiff.dev/v1beta1/namespaces/default/certificates/a",
            "application/merge-patch+json",
            &json!({"metadata": {"labels": {"after": "switch"}}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["apiVersion"], "certs.skiff.dev/v1beta1");
    let r = s
        .patch(
            &format!("{CERTS}/b"),
            "application/merge-patch+json",
            &json!({"metadata": {"labels": {"old": "object"}}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let _ = next_event(&mut watch).await;
    let _ = next_event(&mut watch).await;

    // Restart over the same store: the CRD and its resources are served again.
    s.api.shutdown().await;
    let s = server_on(store, config()).await;
    let r = s.get(&format!("{CERTS}/a")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s.get("/apis/certs.skiff.dev/v1").await;
    assert!(r.text.contains("certificates/scale"), "{}", r.text);
    // In-process clients see custom resources through the registry.
    let reg = s.api.registry.clone();
    let kind = reg
        .kind("certs.skiff.dev", "certificates")
        .expect("custom kind in the registry");
    assert_eq!(kind.info().kind, "Certificate");
    let r = s.req("DELETE", CERTS, None, None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s.get(CERTS).await;
    assert_eq!(r.body["items"], json!([]));
}

#[tokio::test]
async fn server_side_apply_merges_list_map_entries_of_two_managers() {
    let s = server_with(config()).await;
    create_crd(&s).await;
    let apply = |manager: &'static str, listener: Value| {
        let mut c = cert("lb", "default");
        c["spec"]["listeners"] = json!([listener]);
        let path = format!("{CERTS}/lb?fieldManager={manager}");
        let s = &s;
        async move {
            s.req(
                "PATCH",
                &path,
                Some("application/apply-patch+yaml"),
                Some(Bytes::from(c.to_string())),
                &[],
            )
            .await
        }
    };
    let r = apply("team-a", json!({"name": "http", "port": 80})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = apply("team-b", json!({"name": "https", "port": 443})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let names: Vec<&str> = r.body["spec"]["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["http", "https"], "{}", r.text);
    // Changing the other manager's entry is a conflict.
    let r = apply("team-b", json!({"name": "http", "port": 8080})).await;
    assert_eq!(r.status, 409, "{}", r.text);
}

#[tokio::test]
async fn deleting_a_crd_waits_for_custom_resource_finalizers() {
    let s = server_with(config()).await;
    create_crd(&s).await;
    let mut c = cert("held", "default");
    c["metadata"]["finalizers"] = json!(["example.com/hold"]);
    assert_eq!(s.post(CERTS, &c).await.status, 201);
    let r = s
        .delete(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/certificates.certs.skiff.dev",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.body["metadata"]["finalizers"]
            .to_string()
            .contains("customresourcecleanup.apiextensions.k8s.io"),
        "{}",
        r.text
    );
    // Terminating: creates refused, the held object is marked.
    let r = s.post(CERTS, &cert("new", "default")).await;
    assert_eq!(r.status, 405, "{}", r.text);
    eventually(|| async {
        s.get(&format!("{CERTS}/held")).await.body["metadata"]["deletionTimestamp"].is_string()
    })
    .await;
    let crd = s
        .get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/certificates.certs.skiff.dev")
        .await;
    assert_eq!(crd.status, 200);
    assert!(crd.text.contains("InstanceDeletionPending"), "{}", crd.text);
    // Releasing the object lets the CRD go.
    let r = s
        .patch(
            &format!("{CERTS}/held"),
            "application/merge-patch+json",
            &json!({"metadata": {"finalizers": null}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    eventually(|| async {
        s.get(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/certificates.certs.skiff.dev",
        )
        .await
        .status
            == 404
    })
    .await;
    assert_eq!(s.get(CERTS).await.status, 404);
}

#[tokio::test]
async fn crd_with_a_bad_schema_is_refused() {
    let s = server_with(config()).await;
    let mut crd: Value = serde_saphyr::from_str(CRD).unwrap();
    crd["spec"]["versions"][1]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["untyped"] =
        json!({"description": "no type"});
    let r = s
        .post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            &crd,
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(
        r.text.contains("properties[untyped].type: Required value"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn hpa_v1_is_served_over_the_v2_storage() {
    let s = server_with(config()).await;
    let k = Kubectl::new(&s);
    k.ok(&["create", "deployment", "web", "--image=nginx"])
        .await;
    k.ok(&[
        "autoscale",
        "deployment",
        "web",
        "--max=5",
        "--cpu-percent=50",
    ])
    .await;
    let out = k
        .ok(&[
            "get",
            "horizontalpodautoscalers.v1.autoscaling",
            "web",
            "-o",
            "json",
        ])
        .await;
    let v1: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50, "{v1}");
    let out = k
        .ok(&[
            "get",
            "horizontalpodautoscalers.v2.autoscaling",
            "web",
            "-o",
            "json",
        ])
        .await;
    let v2: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 50,
        "{v2}"
    );
    let out = k.ok(&["get", "hpa"]).await;
    assert!(out.contains("cpu: <unknown>/50%"), "{out}");
    // A v1 merge patch changes the CPU target of the stored v2 object.
    let r = s
        .patch(
            "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/web",
            "application/merge-patch+json",
            &json!({"spec": {"targetCPUUtilizationPercentage": 70}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["spec"]["targetCPUUtilizationPercentage"], 70);
    let r = s
        .get("/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web")
        .await;
    assert_eq!(
        r.body["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 70,
        "{}",
        r.text
    );
    let r = s.get("/apis/autoscaling").await;
    assert_eq!(r.body["preferredVersion"]["version"], "v2", "{}", r.text);
    assert_eq!(
        r.body["versions"].as_array().unwrap().len(),
        2,
        "{}",
        r.text
    );
    let r = s
        .get("/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers")
        .await;
    assert_eq!(
        (
            r.body["apiVersion"].as_str(),
            r.body["items"][0]["apiVersion"].as_str()
        ),
        (Some("autoscaling/v1"), Some("autoscaling/v1")),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn kubectl_watch_prints_custom_resource_rows() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let s = server_with(config()).await;
    create_crd(&s).await;
    let k = Kubectl::new(&s);
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(k.dir.path().join("config"))
        .args(["get", "certificates", "-w"])
        .env("KUBECACHEDIR", k.dir.path().join("cache"))
        .env("HOME", k.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Let kubectl list and start watching, then create and update.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(s.post(CERTS, &cert("watched", "default")).await.status, 201);
    let mut status = cert("watched", "default");
    status["status"] = json!({"conditions": [{"type": "Ready", "status": "True"}]});
    let r = s
        .patch(
            &format!("{CERTS}/watched/status"),
            "application/merge-patch+json",
            &json!({"status": status["status"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rows = tokio::time::timeout(Duration::from_secs(15), async {
        let mut rows = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("watched") {
                rows.push(line);
                if rows.len() == 2 {
                    break;
                }
            }
        }
        rows
    })
    .await
    .expect("kubectl printed both events");
    let cells: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| r.split_whitespace().collect())
        .collect();
    // A missing printer-column value is a null cell, which kubectl prints empty.
    assert_eq!(cells[0], ["watched", "web-tls", "0s"], "{rows:?}");
    assert_eq!(cells[1][..3], ["watched", "True", "web-tls"], "{rows:?}");
    let _ = child.kill().await;
}
