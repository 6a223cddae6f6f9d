//! Every operation of every embedded model, round-tripped against botocore (fixtures made by
//! `tests/golden/sweep.py`; see its docs for regenerating).

use std::io::Read;
use std::path::PathBuf;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use skiff_aws_model::codec::decode_unchecked;
use skiff_aws_model::{WireRequest, encode_output, scalar, service};

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn load_gz(name: &str) -> Vec<Value> {
    let file = std::fs::File::open(golden(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .expect("gunzip");
    serde_json::from_str(&text).expect("json")
}

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
            matches!((scalar::parse_timestamp_text(x), scalar::parse_timestamp_text(y)), (Some(p), Some(q)) if p == q)
        }
        _ => a == b,
    }
}

fn headers_of(v: &Value) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for (k, x) in v.as_object().into_iter().flatten() {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(x.as_str().unwrap_or_default()),
        ) {
            h.append(name, value);
        }
    }
    h
}

#[test]
fn every_operation_decodes_what_botocore_sends() {
    let rows = load_gz("sweep-requests.json.gz");
    assert_eq!(rows.len(), 1481);
    let mut failures = Vec::new();
    for row in &rows {
        let svc = service(row["service"].as_str().expect("service")).expect("model");
        let wire = &row["wire"];
        let headers = headers_of(&wire["headers"]);
        let req = WireRequest {
            method: wire["method"].as_str().expect("method"),
            path: wire["path"].as_str().expect("path"),
            query: wire["query"].as_str().expect("query"),
            headers: &headers,
            body: wire["body"].as_str().expect("body").as_bytes(),
        };
        let what = format!("{}.{}", row["service"], row["operation"]);
        match decode_unchecked(svc, &req) {
            Ok(d) if d.operation.name != row["operation"].as_str().unwrap_or_default() => {
                failures.push(format!("{what}: routed to {}", d.operation.name))
            }
            Ok(d) if !same(&d.input, &row["input"]) => failures.push(format!(
                "{what}: decoded {} expected {}",
                d.input, row["input"]
            )),
            Ok(_) => {}
            Err(e) => failures.push(format!("{what}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn every_operation_encodes_what_botocore_parses() {
    let rows = load_gz("sweep-requests.json.gz");
    let mut encoded = Vec::new();
    for row in &rows {
        let svc = service(row["service"].as_str().expect("service")).expect("model");
        let op = svc
            .operation(row["operation"].as_str().expect("op"))
            .expect("operation");
        let r = encode_output(svc, op, &row["output"], "req-sweep");
        encoded.push(json!({"service": row["service"], "operation": row["operation"], "expected": row["output"],
            "status": r.status, "headers": r.headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "body": String::from_utf8(r.body).expect("utf8")}));
    }
    if std::env::var_os("SKIFF_UPDATE_GOLDEN").is_some() {
        let text = serde_json::to_string(&encoded).expect("json");
        std::fs::write(golden("sweep-encoded.json"), text).expect("write");
        return;
    }
    let accepted = load_gz("sweep-responses.json.gz");
    assert_eq!(accepted.len(), encoded.len(), "regenerate with sweep.py");
    let mut failures = Vec::new();
    for (mine, theirs) in encoded.iter().zip(&accepted) {
        let what = format!("{}.{}", mine["service"], mine["operation"]);
        let hash = hex::encode(Sha256::digest(
            mine["body"].as_str().unwrap_or_default().as_bytes(),
        ));
        if theirs["ok"] != true {
            failures.push(format!(
                "{what}: botocore did not parse our encoding back to the output"
            ));
        } else if theirs["sha256"] != hash.as_str() {
            failures.push(format!(
                "{what}: encoding changed since botocore checked it; rerun sweep.py"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
