//! `k8s-aws-v1.` token verification refusals (the accepting path is covered end to end with the real
//! `aws eks get-token` in `crates/skiff/tests/eks_cli.rs`).

use base64::Engine;
use skiff_eks::eks_token::{TOKEN_PREFIX, verify_token};

fn token(url: &str) -> String {
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
    )
}

fn url(akid: &str, date: &str, signed: &str) -> String {
    format!(
        "http://127.0.0.1:4566/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Credential={akid}%2F{}%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires=60\
         &X-Amz-SignedHeaders={signed}&X-Amz-Signature={}",
        &date[..8],
        "0".repeat(64)
    )
}

#[tokio::test]
async fn refusals_name_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = skiff_store::open("embedded", dir.path()).await.unwrap();
    let now = jiff::Timestamp::now();
    let date = skiff_aws_model::sigv4::amz_date(now);
    let check = |u: String| {
        let store = store.clone();
        async move {
            verify_token(&*store, "prod", &token(&u), now)
                .await
                .unwrap_err()
                .0
        }
    };

    let e = check(url("test", &date, "host")).await;
    assert!(e.contains("x-k8s-aws-id"), "{e}");
    let old = skiff_aws_model::sigv4::amz_date(now - jiff::SignedDuration::from_secs(16 * 60));
    let e = check(url("test", &old, "host%3Bx-k8s-aws-id")).await;
    assert!(e.contains("15 minute expiration"), "{e}");
    let e = check(url("AKIANOSUCHKEY", &date, "host%3Bx-k8s-aws-id")).await;
    assert!(
        e.contains("security token included in the request is invalid"),
        "{e}"
    );
    let e = check(url("test", &date, "host%3Bx-k8s-aws-id")).await;
    assert!(e.contains("SignatureDoesNotMatch"), "{e}");
    let e = check("not a url".to_string()).await;
    assert!(e.contains("not properly formatted"), "{e}");
    let e = verify_token(&*store, "prod", "k8s-aws-v1.%%%", now)
        .await
        .unwrap_err()
        .0;
    assert!(e.contains("not properly formatted"), "{e}");
}
