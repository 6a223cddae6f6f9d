//! Contract tests for Kubernetes protobuf request bodies: hand-encoded objects, bodies captured from a
//! real kubectl (fixtures), hostile input, and one live kubectl run against a throw-away listener.

use skiff_k8s_core::protobuf;

use protobuf::{ProtobufError, decode_body};
use serde_json::{Value, json};

/// A minimal protobuf encoder: just enough to build the bodies client-go sends.
#[derive(Default, Clone)]
struct Msg(Vec<u8>);

fn varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

impl Msg {
    fn new() -> Self {
        Self::default()
    }
    fn bytes(mut self, tag: u32, b: &[u8]) -> Self {
        varint(&mut self.0, u64::from(tag) << 3 | 2);
        varint(&mut self.0, b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    fn str(self, tag: u32, s: &str) -> Self {
        self.bytes(tag, s.as_bytes())
    }
    fn msg(self, tag: u32, m: Msg) -> Self {
        self.bytes(tag, &m.0)
    }
    fn int(mut self, tag: u32, v: i64) -> Self {
        varint(&mut self.0, u64::from(tag) << 3);
        varint(&mut self.0, v as u64);
        self
    }
    fn entry(self, tag: u32, k: &str, v: &str) -> Self {
        self.msg(tag, Msg::new().str(1, k).str(2, v))
    }
    fn entry_msg(self, tag: u32, k: &str, v: Msg) -> Self {
        self.msg(tag, Msg::new().str(1, k).msg(2, v))
    }
}

fn body(api_version: &str, kind: &str, raw: Msg) -> Vec<u8> {
    let unknown = Msg::new()
        .msg(1, Msg::new().str(1, api_version).str(2, kind))
        .bytes(2, &raw.0)
        .str(3, "")
        .str(4, "");
    let mut out = b"k8s\0".to_vec();
    out.extend(unknown.0);
    out
}

/// ObjectMeta the way Go writes it: every non-pointer string present even when empty, zero generation,
/// and the zero creationTimestamp as an empty message.
fn meta(name: &str, namespace: &str) -> Msg {
    Msg::new()
        .str(1, name)
        .str(2, "")
        .str(3, namespace)
        .str(4, "")
        .str(5, "")
        .str(6, "")
        .int(7, 0)
        .msg(8, Msg::new())
}

fn quantity(s: &str) -> Msg {
    Msg::new().str(1, s)
}

#[test]
fn config_map() {
    let raw = Msg::new()
        .msg(1, meta("cm", "default"))
        .entry(2, "a", "b")
        .entry(2, "empty", "");
    let got = decode_body(&body("v1", "ConfigMap", raw)).unwrap();
    assert_eq!(
        got,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "cm", "namespace": "default", "creationTimestamp": null},
               "data": {"a": "b", "empty": ""}})
    );
    // apiVersion and kind come first, as in the JSON kubectl sends.
    let keys: Vec<&String> = got.as_object().unwrap().keys().collect();
    assert_eq!(keys[..2], ["apiVersion", "kind"]);
}

#[test]
fn secret_bytes_are_base64() {
    let raw = Msg::new()
        .msg(1, meta("s", ""))
        .msg(2, Msg::new().str(1, "k").bytes(2, b"hello\xff"))
        .str(3, "Opaque")
        .entry(4, "plain", "text");
    let got = decode_body(&body("v1", "Secret", raw)).unwrap();
    assert_eq!(got["data"], json!({"k": "aGVsbG//"}));
    assert_eq!(got["stringData"], json!({"plain": "text"}));
    assert_eq!(got["type"], "Opaque");
}

#[test]
fn deployment_with_intstr_quantities_and_time() {
    // Container: name 1, image 2, ports 6 (ContainerPort: name 1, containerPort 3, protocol 4),
    // resources 8 (ResourceRequirements: limits 1, requests 2, maps of Quantity).
    let port = Msg::new()
        .str(1, "http")
        .int(2, 0)
        .int(3, 8080)
        .str(4, "TCP")
        .str(5, "");
    let resources = Msg::new()
        .entry_msg(1, "memory", quantity("128Mi"))
        .entry_msg(2, "cpu", quantity("100m"));
    let container = Msg::new()
        .str(1, "web")
        .str(2, "nginx:1.27")
        .msg(6, port)
        .msg(8, resources);
    let rolling = Msg::new()
        .msg(1, Msg::new().int(1, 0).int(2, 0)) // maxUnavailable: 0 (an int)
        .msg(2, Msg::new().int(1, 1).str(3, "25%")); // maxSurge: "25%"
    let spec = Msg::new()
        .int(1, 0) // replicas: 0, a pointer in Go: kept
        .msg(2, Msg::new().entry(1, "app", "web"))
        .msg(
            3,
            Msg::new()
                .msg(1, meta("", "").entry(11, "app", "web"))
                .msg(2, Msg::new().msg(2, container)),
        )
        .msg(4, Msg::new().str(1, "RollingUpdate").msg(2, rolling))
        .int(5, 0) // minReadySeconds: 0, omitempty: dropped
        .int(7, 0); // paused: false, omitempty: dropped
    let mut m = meta("web", "prod");
    m = m.msg(9, Msg::new().int(1, 1_767_323_045)); // deletionTimestamp
    let raw = Msg::new().msg(1, m).msg(2, spec).msg(3, Msg::new());
    let got = decode_body(&body("apps/v1", "Deployment", raw)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "prod", "creationTimestamp": null,
                          "deletionTimestamp": "2026-01-02T03:04:05Z"},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                    "spec": {"containers": [{
                        "name": "web", "image": "nginx:1.27",
                        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                        "resources": {"limits": {"memory": "128Mi"}, "requests": {"cpu": "100m"}}
                    }]}
                },
                "strategy": {"type": "RollingUpdate",
                             "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}}
            },
            "status": {}
        })
    );
}

#[test]
fn token_request() {
    let spec = Msg::new()
        .str(1, "https://kubernetes.default.svc")
        .str(1, "sts.amazonaws.com")
        .int(4, 3600)
        .msg(
            3,
            Msg::new()
                .str(1, "Pod")
                .str(2, "v1")
                .str(3, "p")
                .str(4, "uid-1"),
        );
    let raw = Msg::new()
        .msg(1, meta("", ""))
        .msg(2, spec)
        .msg(3, Msg::new().str(1, "").msg(2, Msg::new()));
    let got = decode_body(&body("authentication.k8s.io/v1", "TokenRequest", raw)).unwrap();
    assert_eq!(
        got["spec"],
        json!({"audiences": ["https://kubernetes.default.svc", "sts.amazonaws.com"],
               "expirationSeconds": 3600,
               "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "uid-1"}})
    );
    // status.token has no omitempty upstream, so Go writes "" and so do we.
    assert_eq!(
        got["status"],
        json!({"token": "", "expirationTimestamp": null})
    );
}

#[test]
fn self_subject_access_review() {
    let attrs = Msg::new()
        .str(1, "default")
        .str(2, "create")
        .str(3, "")
        .str(4, "")
        .str(5, "pods")
        .str(6, "")
        .str(7, "");
    let raw = Msg::new()
        .msg(1, meta("", ""))
        .msg(2, Msg::new().msg(1, attrs))
        .msg(3, Msg::new().int(1, 0).int(4, 0).str(2, "").str(3, ""));
    let got = decode_body(&body(
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        raw,
    ))
    .unwrap();
    assert_eq!(
        got["spec"],
        json!({"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}})
    );
    // status.allowed has no omitempty upstream: Go writes `false`, so do we.
    assert_eq!(got["status"], json!({"allowed": false}));
}

#[test]
fn raw_extension_and_duration_and_micro_time() {
    // events.k8s.io/v1 Event: eventTime is a MicroTime (field 2).
    let raw = Msg::new()
        .msg(1, meta("e", "default"))
        .msg(2, Msg::new().int(1, 1_767_323_045).int(2, 123_456_000))
        .str(4, "kubelet");
    let got = decode_body(&body("events.k8s.io/v1", "Event", raw)).unwrap();
    assert_eq!(got["eventTime"], "2026-01-02T03:04:05.123456Z");
    assert_eq!(got["reportingController"], "kubelet");

    // ControllerRevision.data is a RawExtension carrying JSON.
    let raw = Msg::new()
        .msg(1, meta("r", ""))
        .msg(2, Msg::new().bytes(1, br#"{"spec":{"x":1}}"#))
        .int(3, 2);
    let got = decode_body(&body("apps/v1", "ControllerRevision", raw)).unwrap();
    assert_eq!(got["data"], json!({"spec": {"x": 1}}));
    assert_eq!(got["revision"], 2);
}

#[test]
fn inline_embeddings_flatten_into_the_parent() {
    // Pod volume: name 1, VolumeSource (inline) 2 → configMap 19 → LocalObjectReference (inline) 1.
    let volume = Msg::new().str(1, "cfg").msg(
        2,
        Msg::new().msg(19, Msg::new().msg(1, Msg::new().str(1, "app-config"))),
    );
    // Env var from a secret key: SecretKeySelector's name comes from its inline LocalObjectReference.
    let env = Msg::new().str(1, "TOKEN").msg(
        3,
        Msg::new().msg(
            4,
            Msg::new()
                .msg(1, Msg::new().str(1, "creds"))
                .str(2, "token"),
        ),
    );
    let container = Msg::new().str(1, "app").str(2, "busybox").msg(7, env);
    let raw = Msg::new()
        .msg(1, meta("p", ""))
        .msg(2, Msg::new().msg(1, volume).msg(2, container));
    let got = decode_body(&body("v1", "Pod", raw)).unwrap();
    assert_eq!(
        got["spec"]["volumes"],
        json!([{"name": "cfg", "configMap": {"name": "app-config"}}])
    );
    assert_eq!(
        got["spec"]["containers"][0]["env"],
        json!([{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}])
    );
}

#[test]
fn crd_schema_unions_and_extension_names() {
    let schema = protobuf::Schema::builtin().unwrap();
    let props = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JsonSchemaProps";
    let tag = |name: &str| {
        schema
            .fields(props)
            .unwrap()
            .iter()
            .find(|f| f.name == name)
            .unwrap()
            .tag
    };
    let string_schema = Msg::new().str(tag("type"), "string");
    let open_api = Msg::new()
        .str(tag("type"), "object")
        .msg(tag("additionalProperties"), Msg::new().int(1, 0)) // OrBool: false
        .msg(tag("items"), Msg::new().msg(1, string_schema.clone())) // OrArray: one schema
        .msg(tag("default"), Msg::new().bytes(1, br#"{"a":[1,2]}"#)) // JSON
        .entry_msg(tag("properties"), "name", string_schema)
        .int(tag("x-kubernetes-preserve-unknown-fields"), 1)
        .str(tag("$ref"), "#/definitions/x");
    let version = Msg::new()
        .str(1, "v1")
        .int(2, 1)
        .int(3, 1)
        .msg(4, Msg::new().msg(1, open_api));
    let names = Msg::new()
        .str(1, "widgets")
        .str(2, "widget")
        .str(4, "Widget");
    let spec = Msg::new()
        .str(1, "example.com")
        .msg(3, names)
        .str(4, "Namespaced")
        .msg(7, version);
    let raw = Msg::new()
        .msg(1, meta("widgets.example.com", ""))
        .msg(2, spec);
    let got = decode_body(&body(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        raw,
    ))
    .unwrap();
    assert_eq!(
        got["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
        json!({"$ref": "#/definitions/x", "type": "object", "default": {"a": [1, 2]},
               "items": {"type": "string"}, "properties": {"name": {"type": "string"}},
               "additionalProperties": false, "x-kubernetes-preserve-unknown-fields": true})
    );
    assert_eq!(got["spec"]["versions"][0]["served"], true);
    assert_eq!(got["spec"]["names"]["kind"], "Widget");
}

#[test]
fn negative_int32_and_unknown_fields() {
    // Job spec.backoffLimit -1 (10-byte varint) and an unknown field 99 that must be skipped.
    let spec = Msg::new().int(7, -1).str(99, "future field");
    let raw = Msg::new().msg(1, meta("j", "")).msg(2, spec);
    let got = decode_body(&body("batch/v1", "Job", raw)).unwrap();
    assert_eq!(got["spec"], json!({"backoffLimit": -1}));
}

#[test]
fn hostile_input_is_an_error_not_a_panic() {
    let good = body(
        "v1",
        "ConfigMap",
        Msg::new().msg(1, meta("cm", "")).entry(2, "a", "b"),
    );
    // Every truncation of a valid body fails cleanly or decodes a prefix; none panics.
    for n in 0..good.len() {
        let _ = decode_body(&good[..n]);
    }
    // Every single-byte corruption likewise.
    for i in 4..good.len() {
        for b in [0x00, 0x07, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[i] = b;
            let _ = decode_body(&bad);
        }
    }
    // Random bodies behind the magic (a fixed-seed LCG, so failures reproduce).
    let mut seed: u64 = 0x5eed;
    for _ in 0..20_000 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = (seed >> 56) as usize;
        let mut junk = b"k8s\0".to_vec();
        for _ in 0..len {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            junk.push((seed >> 33) as u8);
        }
        let _ = decode_body(&junk);
    }
    // Random corruption inside a valid envelope's raw object.
    let prefix_len = body("v1", "ConfigMap", Msg::new()).len();
    for _ in 0..5_000 {
        let mut bad = good.clone();
        for _ in 0..3 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let at = prefix_len + (seed >> 40) as usize % (good.len() - prefix_len);
            bad[at] = (seed >> 20) as u8;
        }
        let _ = decode_body(&bad);
    }
    assert_eq!(decode_body(b"k8s\0\x0a\xff"), Err(ProtobufError::Truncated));
    assert_eq!(
        decode_body(b"k8s\0\x12\x05ab"),
        Err(ProtobufError::Truncated)
    );
    assert_eq!(
        decode_body(b"k8s\0\x12\x00"),
        Err(ProtobufError::MissingTypeMeta)
    );
    assert_eq!(
        decode_body(&body("v1", "NoSuchKind", Msg::new())),
        Err(ProtobufError::UnknownKind {
            api_version: "v1".into(),
            kind: "NoSuchKind".into()
        })
    );
    // A wrong wire type for a known field is rejected (ConfigMap.immutable is a varint).
    assert!(matches!(
        decode_body(&body("v1", "ConfigMap", Msg::new().str(4, "yes"))),
        Err(ProtobufError::WrongWireType { .. })
    ));
    // Deep nesting through a recursive message (JSONSchemaProps.not) far past the bound.
    let schema = protobuf::Schema::builtin().unwrap();
    let props = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JsonSchemaProps";
    let not = schema
        .fields(props)
        .unwrap()
        .iter()
        .find(|f| f.name == "not")
        .unwrap()
        .tag;
    let mut chain = Msg::new();
    for _ in 0..100 {
        chain = Msg::new().msg(not, chain);
    }
    let crd_validation = Msg::new().msg(1, chain);
    let version = Msg::new().str(1, "v1").msg(4, crd_validation);
    let spec = Msg::new().str(1, "g").msg(7, version);
    let r = decode_body(&body(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        Msg::new().msg(2, spec),
    ));
    assert_eq!(r, Err(ProtobufError::TooDeep));
}

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/protobuf")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Bodies a real kubectl v1.32.4 POSTed (captured with a listener like `live_kubectl_configmap`),
/// against the JSON `kubectl ... --dry-run=client -o json` prints for the same command.
#[test]
fn kubectl_captures_decode_to_the_json_kubectl_would_send() {
    let cases: [(&str, Value); 6] = [
        (
            "configmap.pb",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "x", "creationTimestamp": null}, "data": {"a": "b"}}),
        ),
        (
            "secret.pb",
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "s", "creationTimestamp": null}, "data": {"k": "aGVsbG8="}}),
        ),
        (
            "deployment.pb",
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "creationTimestamp": null, "labels": {"app": "web"}},
                   "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                            "template": {"metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                                         "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                                                  "resources": {}}]}},
                            "strategy": {}},
                   "status": {}}),
        ),
        (
            "namespace.pb",
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "ns1", "creationTimestamp": null}, "spec": {}, "status": {}}),
        ),
        (
            "token_request.pb",
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "metadata": {"creationTimestamp": null},
                   "spec": {"audiences": null, "expirationSeconds": null, "boundObjectRef": null},
                   "status": {"token": "", "expirationTimestamp": null}}),
        ),
        (
            "self_subject_access_review.pb",
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                   "metadata": {"creationTimestamp": null},
                   "spec": {"resourceAttributes": {"namespace": "default", "verb": "create",
                                                   "resource": "pods"}},
                   "status": {"allowed": false}}),
        ),
    ];
    for (file, want) in cases {
        let got = decode_body(&fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            got,
            want,
            "{file}: {}",
            serde_json::to_string(&got).unwrap()
        );
    }
}

/// `tests/fixtures/protobuf/kubectl/NAME.pb` is what kubectl v1.32.4 POSTed for a `kubectl create ...`
/// command and `NAME.json` what the same command prints with `--dry-run=client -o json`: the decoded
/// body must be exactly that JSON object (key order aside).
#[test]
fn kubectl_create_pairs_match_kubectl_json() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/protobuf/kubectl");
    let mut checked = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "pb") {
            continue;
        }
        let want: Value =
            serde_json::from_slice(&std::fs::read(path.with_extension("json")).unwrap()).unwrap();
        let got = decode_body(&std::fs::read(&path).unwrap()).unwrap();
        if got != want {
            failures.push(format!(
                "{}:\n got  {}\n want {}",
                path.display(),
                serde_json::to_string(&got).unwrap(),
                serde_json::to_string(&want).unwrap()
            ));
        }
        checked += 1;
    }
    assert!(
        checked >= 10,
        "only {checked} fixture pairs found in {}",
        dir.display()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Runs the installed kubectl against a throw-away listener on 127.0.0.1:0 and decodes what it POSTs.
/// Skipped when kubectl is not installed, except under CI where that fails.
#[test]
fn live_kubectl_configmap() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    if std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        // CI installs kubectl (.ci/run); there a missing kubectl is a failure, not a skip.
        assert!(
            std::env::var_os("CI").is_none(),
            "kubectl is required when CI is set"
        );
        eprintln!("kubectl not installed; skipping");
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || -> Option<(String, Vec<u8>)> {
        // kubectl may probe discovery first; answer everything 404 until a POST arrives.
        for _ in 0..20 {
            let (stream, _) = listener.accept().ok()?;
            let mut reader = BufReader::new(stream.try_clone().ok()?);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).ok()?;
            let (mut len, mut content_type) = (0usize, String::new());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).ok()? == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                } else if let Some(v) = lower.strip_prefix("content-type:") {
                    content_type = v.trim().to_string();
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).ok()?;
            let mut stream = stream;
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            if request_line.starts_with("QUIT") {
                return None;
            }
            if request_line.starts_with("POST") {
                return Some((content_type, body));
            }
        }
        None
    });
    let _ = std::process::Command::new("kubectl")
        .args([
            "--server",
            &format!("http://127.0.0.1:{port}"),
            "create",
            "configmap",
            "x",
            "--from-literal=a=b",
            "--request-timeout=5s",
        ])
        .env("KUBECONFIG", "/dev/null")
        .output()
        .unwrap();
    // If kubectl never POSTed, wake the listener so the test fails instead of hanging.
    if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
        let _ = s.write_all(b"QUIT / HTTP/1.1\r\n\r\n");
    }
    let (content_type, body) = server.join().unwrap().expect("kubectl POSTed nothing");
    assert_eq!(content_type, protobuf::CONTENT_TYPE);
    assert_eq!(
        decode_body(&body).unwrap(),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "x", "creationTimestamp": null}, "data": {"a": "b"}})
    );
}
