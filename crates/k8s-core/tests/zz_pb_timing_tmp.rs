#[path = "../src/protobuf/mod.rs"]
#[allow(dead_code)]
mod protobuf;
#[test]
fn timing() {
    let t = std::time::Instant::now();
    protobuf::Schema::builtin().unwrap();
    let load = t.elapsed();
    let body = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/protobuf/kubectl/deployment_port.pb")).unwrap();
    let t = std::time::Instant::now();
    for _ in 0..10_000 { protobuf::decode_body(&body).unwrap(); }
    eprintln!("schema load {:?}; decode deployment ({} bytes) {:?}/op", load, body.len(), t.elapsed() / 10_000);
}
