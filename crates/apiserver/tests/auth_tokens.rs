//! ServiceAccount JWTs, bootstrap tokens, TokenRequest, TokenReview and the token controller,
//! over an in-memory store.

mod auth_support;

use std::sync::Arc;
use std::time::Duration;

use auth_support::{CLUSTER, MemStore, key, object};
use base64::Engine;
use serde_json::{Value, json};
use skiff_apiserver::auth_apis::token_controller::{
    SA_NAME_ANNOTATION, SECRET_TYPE, run_token_controller,
};
use skiff_apiserver::auth_apis::token_request::TokenRequestHandler;
use skiff_apiserver::auth_apis::token_review::TokenReviewResource;
use skiff_apiserver::authn::bootstrap_token::BootstrapTokenAuthenticator;
use skiff_apiserver::authn::service_account_token::{
    BoundObject, BoundTokenSpec, ServiceAccountTokenAuthenticator, TokenSigner,
};
use skiff_apiserver::authn::{Authenticator, AuthnRequest, UserInfo};
use skiff_apiserver::pki::ClusterPki;
use skiff_apiserver::registry::hooks::{
    CreateOnlyResource, HookError, HookRequest, SubresourceHandler,
};

const ISSUER: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC";

struct Fixture {
    store: Arc<MemStore>,
    pki: ClusterPki,
    signer: Arc<TokenSigner>,
    authn: Arc<ServiceAccountTokenAuthenticator>,
}

async fn fixture() -> Fixture {
    let store = MemStore::new();
    let pki = ClusterPki::generate("c1").unwrap();
    let signer = Arc::new(TokenSigner::new(&pki, ISSUER).unwrap());
    let authn = Arc::new(ServiceAccountTokenAuthenticator::new(
        signer.clone(),
        store.clone(),
        CLUSTER,
        vec![ISSUER.to_string()],
    ));
    store
        .put_json(
            &key("serviceaccounts", Some("default"), "app"),
            &object("ServiceAccount", "default", "app", "sa-uid-1"),
        )
        .await;
    Fixture {
        store,
        pki,
        signer,
        authn,
    }
}

fn spec(audiences: &[&str], exp: i64, bound: Option<BoundObject>) -> BoundTokenSpec {
    BoundTokenSpec {
        namespace: "default".into(),
        service_account: "app".into(),
        service_account_uid: "sa-uid-1".into(),
        audiences: audiences.iter().map(|s| s.to_string()).collect(),
        expiration_seconds: exp,
        bound,
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn bearer(token: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    h
}

#[tokio::test]
async fn bound_token_verifies_then_expires() {
    let f = fixture().await;
    let (token, exp) = f
        .signer
        .issue_bound(&spec(&[ISSUER], 3600, None), now())
        .unwrap();
    assert_eq!(exp - now(), 3600);
    let v = f.authn.verify(&token, &[], now()).await.unwrap().unwrap();
    assert_eq!(v.user.name, "system:serviceaccount:default:app");
    assert_eq!(v.user.uid, "sa-uid-1");
    assert_eq!(
        v.user.groups,
        vec![
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ]
    );
    assert!(v.user.extra["authentication.kubernetes.io/credential-id"][0].starts_with("JTI="));
    assert_eq!(v.audiences, vec![ISSUER]);
    // Through the Authenticator trait too.
    let h = bearer(&token);
    let u = f
        .authn
        .authenticate(&AuthnRequest {
            headers: &h,
            peer_certificates: None,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.name, "system:serviceaccount:default:app");
    // One second past exp.
    let err = f.authn.verify(&token, &[], exp + 1).await.unwrap_err();
    assert_eq!(err.0, "Token has expired.");
}

#[tokio::test]
async fn wrong_key_wrong_audience_and_deleted_account_are_refused() {
    let f = fixture().await;
    let other = TokenSigner::new(&ClusterPki::generate("x").unwrap(), ISSUER).unwrap();
    let (forged, _) = other
        .issue_bound(&spec(&[ISSUER], 3600, None), now())
        .unwrap();
    assert!(f.authn.verify(&forged, &[], now()).await.is_err());

    let (sts, _) = f
        .signer
        .issue_bound(&spec(&["sts.amazonaws.com"], 3600, None), now())
        .unwrap();
    assert_eq!(
        f.authn.verify(&sts, &[], now()).await.unwrap_err().0,
        "Token audiences are invalid"
    );
    let v = f
        .authn
        .verify(&sts, &["sts.amazonaws.com".into()], now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.audiences, vec!["sts.amazonaws.com"]);

    let (token, _) = f
        .signer
        .issue_bound(&spec(&[ISSUER], 3600, None), now())
        .unwrap();
    // Recreated with another uid: old tokens die.
    f.store
        .put_json(
            &key("serviceaccounts", Some("default"), "app"),
            &object("ServiceAccount", "default", "app", "sa-uid-2"),
        )
        .await;
    assert_eq!(
        f.authn.verify(&token, &[], now()).await.unwrap_err().0,
        "service account token has been invalidated"
    );
    f.store
        .delete(&key("serviceaccounts", Some("default"), "app"))
        .await;
    assert!(f.authn.verify(&token, &[], now()).await.is_err());
    // Not a JWT at all: not ours.
    assert_eq!(
        f.authn.verify("k8s-aws-v1.xyz", &[], now()).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn pod_bound_token_dies_with_its_pod() {
    let f = fixture().await;
    f.store
        .put_json(
            &key("pods", Some("default"), "web"),
            &object("Pod", "default", "web", "pod-uid-1"),
        )
        .await;
    let bound = BoundObject {
        kind: "Pod".into(),
        name: "web".into(),
        uid: "pod-uid-1".into(),
    };
    let (token, _) = f
        .signer
        .issue_bound(&spec(&[ISSUER], 3600, Some(bound)), now())
        .unwrap();
    let v = f.authn.verify(&token, &[], now()).await.unwrap().unwrap();
    assert_eq!(
        v.user.extra["authentication.kubernetes.io/pod-name"],
        vec!["web"]
    );
    assert_eq!(
        v.user.extra["authentication.kubernetes.io/pod-uid"],
        vec!["pod-uid-1"]
    );
    f.store.delete(&key("pods", Some("default"), "web")).await;
    assert!(f.authn.verify(&token, &[], now()).await.is_err());
}

#[tokio::test]
async fn legacy_secret_token_lives_as_long_as_its_secret() {
    let f = fixture().await;
    let token = f
        .signer
        .issue_legacy("default", "app", "sa-uid-1", "app-token")
        .unwrap();
    let secret_key = key("secrets", Some("default"), "app-token");
    // Before the secret holds it: refused.
    assert!(f.authn.verify(&token, &[], now()).await.is_err());
    let mut secret = object("Secret", "default", "app-token", "s-1");
    secret["type"] = json!(SECRET_TYPE);
    secret["data"] = json!({ "token": base64::engine::general_purpose::STANDARD.encode(&token) });
    f.store.put_json(&secret_key, &secret).await;
    let v = f.authn.verify(&token, &[], now()).await.unwrap().unwrap();
    assert_eq!(v.user.name, "system:serviceaccount:default:app");
    // No expiry: still good in ten years.
    assert!(
        f.authn
            .verify(&token, &[], now() + 10 * 365 * 86400)
            .await
            .is_ok()
    );
    // Legacy tokens are only for the API's audiences.
    assert!(
        f.authn
            .verify(&token, &["sts.amazonaws.com".into()], now())
            .await
            .is_err()
    );
    f.store.delete(&secret_key).await;
    assert!(f.authn.verify(&token, &[], now()).await.is_err());
}

fn bootstrap_secret(id: &str, secret: &str, expiration: Option<&str>, groups: &str) -> Value {
    let b = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut data = json!({
        "token-id": b(id), "token-secret": b(secret),
        "usage-bootstrap-authentication": b("true"), "auth-extra-groups": b(groups),
    });
    if let Some(e) = expiration {
        data["expiration"] = json!(b(e));
    }
    json!({"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
           "metadata": {"name": format!("bootstrap-token-{id}"), "namespace": "kube-system"}, "data": data})
}

#[tokio::test]
async fn bootstrap_tokens() {
    let store = MemStore::new();
    let a = BootstrapTokenAuthenticator::new(store.clone(), CLUSTER);
    let k = key("secrets", Some("kube-system"), "bootstrap-token-abcdef");
    store
        .put_json(
            &k,
            &bootstrap_secret(
                "abcdef",
                "0123456789abcdef",
                Some("2099-01-01T00:00:00Z"),
                "system:bootstrappers:kubeadm:default-node-token",
            ),
        )
        .await;
    let t = jiff::Timestamp::now();
    let u = a
        .verify("abcdef.0123456789abcdef", t)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.name, "system:bootstrap:abcdef");
    assert_eq!(
        u.groups,
        vec![
            "system:bootstrappers",
            "system:bootstrappers:kubeadm:default-node-token",
            "system:authenticated"
        ]
    );
    assert!(a.verify("abcdef.0123456789abcdee", t).await.is_err());
    assert!(a.verify("zzzzzz.0123456789abcdef", t).await.is_err());
    assert_eq!(a.verify("not-a-bootstrap-token", t).await.unwrap(), None);
    // Expired.
    store
        .put_json(
            &k,
            &bootstrap_secret(
                "abcdef",
                "0123456789abcdef",
                Some("2000-01-01T00:00:00Z"),
                "",
            ),
        )
        .await;
    assert!(a.verify("abcdef.0123456789abcdef", t).await.is_err());
    // Extra groups outside system:bootstrappers: are refused.
    store
        .put_json(
            &k,
            &bootstrap_secret("abcdef", "0123456789abcdef", None, "system:masters"),
        )
        .await;
    assert!(a.verify("abcdef.0123456789abcdef", t).await.is_err());
}

fn user(name: &str) -> UserInfo {
    UserInfo {
        name: name.into(),
        groups: vec!["system:authenticated".into()],
        ..Default::default()
    }
}

#[tokio::test]
async fn token_request_issues_verifiable_bound_tokens() {
    let f = fixture().await;
    let h = TokenRequestHandler::new(
        f.signer.clone(),
        f.store.clone(),
        CLUSTER,
        vec![ISSUER.into()],
    );
    assert_eq!(h.parent(), ("serviceaccounts", ""));
    assert_eq!(h.subresource(), "token");
    let admin = user("admin");
    let req = HookRequest {
        user: &admin,
        namespace: Some("default"),
        name: Some("app"),
        dry_run: false,
    };
    let out = h
        .create(
            &req,
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}),
        )
        .await
        .unwrap();
    assert_eq!(out["spec"]["expirationSeconds"], 3600);
    assert_eq!(out["spec"]["audiences"], json!([ISSUER]));
    let token = out["status"]["token"].as_str().unwrap();
    let v = f.authn.verify(token, &[], now()).await.unwrap().unwrap();
    assert_eq!(v.user.name, "system:serviceaccount:default:app");
    let exp: jiff::Timestamp = out["status"]["expirationTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((exp.as_second() - now() - 3600).abs() <= 2);

    // Validation and not-found in upstream's shapes.
    let too_short = h
        .create(&req, json!({"spec": {"expirationSeconds": 60}}))
        .await
        .unwrap_err();
    assert!(
        matches!(too_short, HookError::Invalid(ref e) if e[0].path == "spec.expirationSeconds")
    );
    let missing = HookRequest {
        name: Some("ghost"),
        ..req
    };
    assert!(
        matches!(h.create(&missing, json!({})).await.unwrap_err(), HookError::NotFound { ref resource, ref name } if resource == "serviceaccounts" && name == "ghost")
    );

    // Bound to a pod of that account.
    let mut pod = object("Pod", "default", "web", "pod-uid-9");
    pod["spec"] = json!({"serviceAccountName": "app"});
    f.store
        .put_json(&key("pods", Some("default"), "web"), &pod)
        .await;
    let out = h
        .create(&req, json!({"spec": {"audiences": ["vault"], "expirationSeconds": 600, "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web"}}}))
        .await
        .unwrap();
    assert_eq!(out["spec"]["boundObjectRef"]["uid"], "pod-uid-9");
    let token = out["status"]["token"].as_str().unwrap();
    let v = f
        .authn
        .verify(token, &["vault".into()], now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        v.user.extra["authentication.kubernetes.io/pod-name"],
        vec!["web"]
    );
    let wrong_uid = h
        .create(&req, json!({"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": "other"}}}))
        .await;
    assert!(matches!(wrong_uid, Err(HookError::BadRequest(_))));
    let no_pod = h
        .create(
            &req,
            json!({"spec": {"boundObjectRef": {"kind": "Pod", "name": "nope"}}}),
        )
        .await;
    assert!(matches!(no_pod, Err(HookError::NotFound { .. })));
}

#[tokio::test]
async fn token_review_reports_user_or_error() {
    let f = fixture().await;
    let boot = Arc::new(BootstrapTokenAuthenticator::new(f.store.clone(), CLUSTER));
    let r = TokenReviewResource::new(Some(f.authn.clone()), vec![boot], vec![ISSUER.into()]);
    let admin = user("admin");
    let req = HookRequest {
        user: &admin,
        namespace: None,
        name: None,
        dry_run: false,
    };
    let (token, _) = f
        .signer
        .issue_bound(&spec(&[ISSUER], 3600, None), now())
        .unwrap();
    let out = r.create(&req, json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})).await.unwrap();
    assert_eq!(out["status"]["authenticated"], true);
    assert_eq!(
        out["status"]["user"]["username"],
        "system:serviceaccount:default:app"
    );
    assert_eq!(out["status"]["user"]["uid"], "sa-uid-1");
    assert_eq!(out["status"]["audiences"], json!([ISSUER]));

    let out = r
        .create(
            &req,
            json!({"spec": {"token": token, "audiences": ["other"]}}),
        )
        .await
        .unwrap();
    assert_eq!(out["status"].get("authenticated"), None);
    assert_eq!(out["status"]["error"], "Token audiences are invalid");

    let out = r
        .create(&req, json!({"spec": {"token": "garbage"}}))
        .await
        .unwrap();
    assert_eq!(out["status"].get("authenticated"), None);

    f.store
        .put_json(
            &key("secrets", Some("kube-system"), "bootstrap-token-abcdef"),
            &bootstrap_secret("abcdef", "0123456789abcdef", None, ""),
        )
        .await;
    let out = r
        .create(&req, json!({"spec": {"token": "abcdef.0123456789abcdef"}}))
        .await
        .unwrap();
    assert_eq!(out["status"]["user"]["username"], "system:bootstrap:abcdef");

    assert!(matches!(
        r.create(&req, json!({"spec": {}})).await,
        Err(HookError::BadRequest(_))
    ));
}

/// The seed notes' `secret-sa-test-a`: a token Secret created before its ServiceAccount gets
/// filled once the account appears, and the token it gets authenticates.
#[tokio::test]
async fn token_controller_fills_secrets() {
    let f = fixture().await;
    let pki = Arc::new(f.pki.clone());
    let task = tokio::spawn(run_token_controller(
        f.store.clone(),
        CLUSTER.to_string(),
        pki.clone(),
    ));
    let sk = key("secrets", Some("default"), "secret-sa-test-a");
    let mut secret = object("Secret", "default", "secret-sa-test-a", "s-uid");
    secret["type"] = json!(SECRET_TYPE);
    secret["metadata"]["annotations"] = json!({ SA_NAME_ANNOTATION: "test-a" });
    f.store.put_json(&sk, &secret).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        f.store.get_json(&sk).await.unwrap().get("data").is_none(),
        "no account yet"
    );
    f.store
        .put_json(
            &key("serviceaccounts", Some("default"), "test-a"),
            &object("ServiceAccount", "default", "test-a", "sa-a"),
        )
        .await;
    let mut filled = None;
    for _ in 0..100 {
        let s = f.store.get_json(&sk).await.unwrap();
        if s.pointer("/data/token").is_some() {
            filled = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    let s = filled.expect("controller filled the secret");
    let dec = |k: &str| {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(s["data"][k].as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(dec("namespace"), "default");
    assert_eq!(dec("ca.crt"), pki.ca_cert_pem);
    let v = f
        .authn
        .verify(&dec("token"), &[], now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.user.name, "system:serviceaccount:default:test-a");
}
