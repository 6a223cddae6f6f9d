//! `k8s-aws-v1.` token verification refusals (the accepting path is covered end to end with the real
//! `aws eks get-token` in `crates/skiff/tests/eks_cli.rs`).

use base64::Engine;
mod nodegroups_support;

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

/// Control plane logging: with `authenticator`, `scheduler` and `controllerManager` enabled, a
/// refused token and the scheduler's and controllers' Events land in CloudWatch Logs under
/// `/aws/eks/<cluster>/cluster`, each in its component's stream; a disabled type ships nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_logs_reach_cloudwatch_logs() {
    use serde_json::json;
    use skiff_apiserver::authn::token_hook::TokenAuthenticator;
    use skiff_eks::control_plane_logging::{LogType, log_group};
    use skiff_k8s_core::client::{ResourceRef, WriteOptions};
    use std::time::Duration;

    let env = nodegroups_support::Env::start().await;
    env.cluster("prod", &[("10.0.1.0/24", "us-east-1a")]).await;
    env.call(
        "eks",
        "UpdateClusterConfig",
        json!({"name": "prod", "logging": {"clusterLogging": [
            {"types": ["authenticator", "scheduler", "controllerManager"], "enabled": true},
            {"types": ["api", "audit"], "enabled": false}]}}),
    )
    .await;
    let record = env
        .call("eks", "DescribeCluster", json!({"name": "prod"}))
        .await;
    let binding = skiff_eks::cluster_dir::EksBinding {
        account: "000000000000".into(),
        region: "us-east-1".into(),
        name: "prod".into(),
        issuer: record["cluster"]["identity"]["oidc"]["issuer"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    };
    let authn =
        skiff_eks::eks_token::EksTokenAuthenticator::new(env.store.clone(), binding, "prod");
    assert!(authn.authenticate_token("k8s-aws-v1.%%%").await.is_err());

    let client = env.client("prod").await;
    let events = ResourceRef::new("", "v1", "events").in_namespace("default");
    for (name, component, reason) in [
        ("e1", "default-scheduler", "Scheduled"),
        ("e2", "replicaset-controller", "SuccessfulCreate"),
        ("e3", "kubelet", "Pulled"),
    ] {
        client
            .create(
                &events,
                json!({"apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": name, "namespace": "default"},
                    "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-1", "apiVersion": "v1"},
                    "reason": reason, "message": format!("{reason} happened"), "type": "Normal",
                    "source": {"component": component}}),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
    }

    let group = log_group("prod");
    // Streams are named after the control plane's id: find them by their component prefix.
    let messages = |t: LogType| {
        let env = &env;
        let group = group.clone();
        async move {
            let out = skiff_aws::dispatch(
                &env.ctx,
                "logs",
                "FilterLogEvents",
                json!({"logGroupName": group, "logStreamNamePrefix": format!("{}-", t.stream_prefix())}),
            )
            .await;
            out.map(|v| {
                v["events"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["message"].as_str().map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (auth, sched, cm) = loop {
        let auth = messages(LogType::Authenticator).await;
        let sched = messages(LogType::Scheduler).await;
        let cm = messages(LogType::ControllerManager).await;
        if !auth.is_empty() && !sched.is_empty() && !cm.is_empty() {
            break (auth, sched, cm);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "logs not shipped: {auth:?} {sched:?} {cm:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        auth[0].contains("level=warning msg=\"access denied\""),
        "{auth:?}"
    );
    assert!(
        sched.iter().any(|m| m.contains("reason=\"Scheduled\"")),
        "{sched:?}"
    );
    assert!(
        cm.iter().any(|m| m.contains("reason=\"SuccessfulCreate\"")),
        "{cm:?}"
    );
    assert!(
        !sched.iter().chain(&cm).any(|m| m.contains("Pulled")),
        "kubelet events are not control plane logs"
    );
    let streams = env
        .call("logs", "DescribeLogStreams", json!({"logGroupName": group}))
        .await;
    assert_eq!(
        streams["logStreams"].as_array().unwrap().len(),
        3,
        "no api/audit streams while those types are disabled: {streams}"
    );
}

/// The root CA publisher: every namespace, old and new, gets `kube-root-ca.crt` with the cluster
/// CA; a deleted or edited copy is put back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_ca_is_published_in_every_namespace() {
    use serde_json::json;
    use skiff_k8s_core::client::{DeleteOptions, ResourceRef, WriteOptions};
    use std::time::Duration;

    let env = nodegroups_support::Env::start().await;
    env.cluster("prod", &[("10.0.1.0/24", "us-east-1a")]).await;
    let client = env.client("prod").await;
    let cms = |ns: &str| ResourceRef::new("", "v1", "configmaps").in_namespace(ns);
    let record = env
        .call("eks", "DescribeCluster", json!({"name": "prod"}))
        .await;
    let ca = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(
                record["cluster"]["certificateAuthority"]["data"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap(),
    )
    .unwrap();
    client
        .create(
            &ResourceRef::new("", "v1", "namespaces"),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    let published = |ns: &'static str| {
        let client = client.clone();
        let ca = ca.clone();
        async move {
            for _ in 0..150 {
                if let Ok(Some(cm)) = client.get_opt(&cms(ns), "kube-root-ca.crt").await
                    && cm["data"]["ca.crt"] == ca.as_str()
                {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        }
    };
    for ns in ["default", "kube-system", "shop"] {
        assert!(published(ns).await, "kube-root-ca.crt in {ns}");
    }
    client
        .delete(&cms("shop"), "kube-root-ca.crt", &DeleteOptions::default())
        .await
        .unwrap();
    assert!(published("shop").await, "put back after a delete");
    let mut cm = client
        .get(&cms("default"), "kube-root-ca.crt")
        .await
        .unwrap();
    cm["data"]["ca.crt"] = json!("tampered");
    client
        .update(&cms("default"), cm, &WriteOptions::default())
        .await
        .unwrap();
    assert!(published("default").await, "corrected after an edit");
}
