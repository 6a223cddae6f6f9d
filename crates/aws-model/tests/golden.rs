//! Golden round trips against botocore (fixtures in `tests/golden/`, made by `gen.py`; see its docs):
//! requests serialised by botocore decode to the case's input; our encoded outputs and errors are
//! byte-identical to the ones botocore's parsers read back as the case's output.

use std::path::PathBuf;

use serde_json::{Value, json};
use skiff_aws_model::sigv4::{self, SigError, SigningSecret};
use skiff_aws_model::{
    AwsError, WireRequest, decode, encode_error, encode_output, scalar, service,
};

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(golden(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn headers_of(v: &Value) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for (k, x) in v.as_object().into_iter().flatten() {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            http::HeaderValue::from_str(x.as_str().unwrap_or_default()).expect("header value"),
        );
    }
    h
}

/// Equal up to representation: timestamps compare as instants, numbers as f64.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(x), Value::String(y)) if x != y => {
            x.contains('T')
                && matches!((scalar::parse_timestamp_text(x), scalar::parse_timestamp_text(y)), (Some(p), Some(q)) if p == q)
        }
        _ => a == b,
    }
}

#[test]
fn botocore_requests_decode_to_the_contract_input() {
    let cases = load("requests.json");
    for case in cases.as_array().expect("list") {
        let svc = service(case["service"].as_str().expect("service")).expect("model");
        let wire = &case["wire"];
        let headers = headers_of(&wire["headers"]);
        let req = WireRequest {
            method: wire["method"].as_str().expect("method"),
            path: wire["path"].as_str().expect("path"),
            query: wire["query"].as_str().expect("query"),
            headers: &headers,
            body: wire["body"].as_str().expect("body").as_bytes(),
        };
        let decoded = decode(svc, &req).unwrap_or_else(|e| panic!("{}: {e}", case["operation"]));
        assert_eq!(
            decoded.operation.name,
            case["operation"].as_str().expect("op")
        );
        assert!(
            same(&decoded.input, &case["input"]),
            "{}: decoded {} expected {}",
            case["operation"],
            decoded.input,
            case["input"]
        );
    }
}

/// Our encoding of every case: outputs, then errors.
fn encode_all() -> Vec<Value> {
    let mut out = Vec::new();
    for case in load("requests.json").as_array().expect("list") {
        let svc = service(case["service"].as_str().expect("service")).expect("model");
        let op = svc
            .operation(case["operation"].as_str().expect("op"))
            .expect("operation");
        let r = encode_output(svc, op, &case["output"], "req-golden");
        out.push(json!({"service": case["service"], "operation": case["operation"], "expected": case["output"],
            "status": r.status, "headers": r.headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "body": String::from_utf8(r.body).expect("utf8")}));
    }
    for e in load("errors.json").as_array().expect("list") {
        let svc = service(e["service"].as_str().expect("service")).expect("model");
        let err = AwsError::new(
            e["code"].as_str().expect("code"),
            e["message"].as_str().expect("message"),
        );
        let r = encode_error(svc, &err, "req-golden");
        out.push(json!({"service": e["service"], "expected": {"Code": err.code, "Message": err.message},
            "status": r.status, "headers": r.headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "body": String::from_utf8(r.body).expect("utf8")}));
    }
    out
}

#[test]
fn encoded_responses_are_what_botocore_parsed() {
    let ours = encode_all();
    if std::env::var_os("SKIFF_UPDATE_GOLDEN").is_some() {
        let text = serde_json::to_string_pretty(&ours).expect("json");
        std::fs::write(golden("encoded.json"), text + "\n").expect("write encoded.json");
        return;
    }
    let committed = load("responses.json");
    let committed = committed.as_array().expect("list");
    assert_eq!(
        committed.len(),
        ours.len(),
        "regenerate: see tests/golden/gen.py"
    );
    for (mine, theirs) in ours.iter().zip(committed) {
        let what = format!("{} {}", mine["service"], mine["operation"]);
        for k in ["status", "headers", "body"] {
            assert_eq!(
                mine[k], theirs[k],
                "{what}: {k} changed; regenerate the fixtures (gen.py)"
            );
        }
        let parsed = &theirs["botocore_parsed"];
        let expected = &mine["expected"];
        if mine.get("operation").is_some() {
            assert!(
                same(parsed, expected),
                "{what}: botocore parsed {parsed}, expected {expected}"
            );
        } else {
            assert_eq!(parsed["Code"], expected["Code"], "{what}");
            assert_eq!(parsed["Message"], expected["Message"], "{what}");
            // botocore reports the status as an int for some protocols and a string for others.
            let status = parsed["HTTPStatusCode"]
                .to_string()
                .trim_matches('"')
                .to_string();
            assert_eq!(status, mine["status"].to_string(), "{what}");
        }
    }
}

#[test]
fn botocore_signatures_verify_and_wrong_secrets_do_not() {
    for case in load("sigv4.json").as_array().expect("list") {
        let name = case["name"].as_str().expect("name");
        let wire = &case["wire"];
        let now: jiff::Timestamp = case["now"].as_str().expect("now").parse().expect("ts");
        let headers = headers_of(&wire["headers"]);
        let req = WireRequest {
            method: wire["method"].as_str().expect("method"),
            path: wire["path"].as_str().expect("path"),
            query: wire["query"].as_str().expect("query"),
            headers: &headers,
            body: wire["body"].as_str().expect("body").as_bytes(),
        };
        let auth = sigv4::parse(&req).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let (secret, token) = if auth.access_key_id == "ASIAEXAMPLE" {
            ("s3cr3t", Some("session-token".to_string()))
        } else {
            ("test", None)
        };
        let good = SigningSecret {
            secret_access_key: secret.into(),
            session_token: token.clone(),
        };
        assert_eq!(sigv4::verify(&req, &auth, &good, now), Ok(()), "{name}");
        let bad = SigningSecret {
            secret_access_key: "wrong".into(),
            session_token: token,
        };
        assert_eq!(
            sigv4::verify(&req, &auth, &bad, now),
            Err(SigError::SignatureMismatch),
            "{name}"
        );
    }
}

#[test]
fn eks_token_presigned_url_verifies() {
    let cases = load("sigv4.json");
    let case = cases
        .as_array()
        .expect("list")
        .iter()
        .find(|c| {
            c["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("presigned"))
        })
        .expect("presigned case");
    let url = case["wire"]["url"].as_str().expect("url");
    let mut h = http::HeaderMap::new();
    h.insert("x-k8s-aws-id", http::HeaderValue::from_static("demo"));
    let lookup = |akid: &str| {
        assert_eq!(akid, "test");
        Ok(SigningSecret {
            secret_access_key: "test".into(),
            session_token: None,
        })
    };
    let now: jiff::Timestamp = "2026-11-23T13:20:30Z".parse().expect("ts");
    let id = sigv4::verify_presigned_get_caller_identity(url, &h, lookup, now).expect("verifies");
    assert_eq!(
        (id.access_key_id.as_str(), id.region.as_str()),
        ("test", "us-east-1")
    );
    // The cluster id is signed: a token minted for another cluster does not verify here.
    h.insert("x-k8s-aws-id", http::HeaderValue::from_static("other"));
    assert_eq!(
        sigv4::verify_presigned_get_caller_identity(url, &h, lookup, now),
        Err(SigError::SignatureMismatch)
    );
    // 60 s expiry.
    h.insert("x-k8s-aws-id", http::HeaderValue::from_static("demo"));
    let late: jiff::Timestamp = "2026-11-23T13:21:01Z".parse().expect("ts");
    assert_eq!(
        sigv4::verify_presigned_get_caller_identity(url, &h, lookup, late),
        Err(SigError::Expired)
    );
    let unknown = |_: &str| Err(SigError::UnknownKey);
    assert_eq!(
        sigv4::verify_presigned_get_caller_identity(url, &h, unknown, now),
        Err(SigError::UnknownKey)
    );
}
