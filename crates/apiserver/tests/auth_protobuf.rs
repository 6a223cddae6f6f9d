//! The protobuf request bodies kubectl 1.32 really sends for `auth whoami`, `auth can-i`,
//! `auth can-i --list` and `create token --bound-object-kind Pod` (captured from kubectl against a
//! recording HTTP server), decoded by the one decoder the HTTP layer uses
//! (`skiff_k8s_core::protobuf::decode_body`) into the JSON the handlers take.

use skiff_k8s_core::protobuf::decode_body as decode;

#[test]
fn whoami() {
    let v = decode(include_bytes!(
        "auth_support/kubectl_1_32/self_subject_review.bin"
    ))
    .unwrap();
    assert_eq!(v["apiVersion"], "authentication.k8s.io/v1");
    assert_eq!(v["kind"], "SelfSubjectReview");
}

#[test]
fn can_i_list_pods() {
    let v = decode(include_bytes!(
        "auth_support/kubectl_1_32/self_subject_access_review.bin"
    ))
    .unwrap();
    assert_eq!(v["kind"], "SelfSubjectAccessReview");
    let ra = &v["spec"]["resourceAttributes"];
    assert_eq!(ra["namespace"], "default");
    assert_eq!(ra["verb"], "list");
    assert_eq!(ra["resource"], "pods");
}

#[test]
fn can_i_list_everything() {
    let v = decode(include_bytes!(
        "auth_support/kubectl_1_32/self_subject_rules_review.bin"
    ))
    .unwrap();
    assert_eq!(v["kind"], "SelfSubjectRulesReview");
    assert_eq!(v["spec"]["namespace"], "default");
}

#[test]
fn create_token_bound_to_a_pod() {
    let v = decode(include_bytes!(
        "auth_support/kubectl_1_32/token_request.bin"
    ))
    .unwrap();
    assert_eq!(v["kind"], "TokenRequest");
    assert_eq!(v["spec"]["boundObjectRef"]["kind"], "Pod");
    assert_eq!(v["spec"]["boundObjectRef"]["apiVersion"], "v1");
    assert_eq!(v["spec"]["boundObjectRef"]["name"], "web");
    // A nil pointer without `omitempty`: Go's JSON has `null`, which the handler reads as the default.
    assert_eq!(v["spec"]["expirationSeconds"], serde_json::Value::Null);
}

#[test]
fn not_protobuf_is_an_error() {
    assert!(decode(b"{\"kind\": \"TokenRequest\"}").is_err());
    assert!(decode(&[b'k', b'8', b's', 0, 0x0a, 0xff]).is_err());
}
