//! Contract of the pod identity webhook adapter (issue 6) against a real control plane and store:
//! the ServiceAccount is read through the cluster's client, Pod Identity associations from the EKS
//! records, and the pod comes out as amazon-eks-pod-identity-webhook leaves it.

mod nodegroups_support;

use nodegroups_support::Env;
use serde_json::{Value, json};
use skiff_eks::irsa::{self, ClientLookup, PodIdentityWebhook};
use skiff_k8s_core::client::{ResourceRef, WriteOptions};

fn env_value(c: &Value, name: &str) -> Option<String> {
    c["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str().map(str::to_string))
}

fn pod(sa: &str) -> Value {
    json!({"metadata": {"name": "p", "namespace": "default"},
        "spec": {"serviceAccountName": sa, "containers": [{"name": "app", "image": "aws-cli"}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_injects_irsa_and_pod_identity_from_cluster_state() {
    let env = Env::start().await;
    let (_, node_role) = env
        .cluster(
            "prod",
            &[("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")],
        )
        .await;
    let client = env.client("prod").await;
    let sas = ResourceRef::new("", "v1", "serviceaccounts").in_namespace("default");
    let role = "arn:aws:iam::000000000000:role/s3-reader";
    for (name, annotations) in [
        ("s3-reader", json!({irsa::ROLE_ARN_ANNOTATION: role})),
        ("plain", json!({})),
        ("agent", json!({})),
    ] {
        client
            .create(
                &sas,
                json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": name, "annotations": annotations}}),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
    }
    env.call(
        "eks",
        "CreatePodIdentityAssociation",
        json!({"clusterName": "prod", "namespace": "default", "serviceAccount": "agent",
            "roleArn": node_role}),
    )
    .await;
    let cluster = skiff_aws::eks::get_cluster(&*env.store, "000000000000", "us-east-1", "prod")
        .await
        .unwrap()
        .unwrap();
    let hook = PodIdentityWebhook::new(
        env.store.clone(),
        skiff_eks::cluster_dir::EksBinding {
            account: "000000000000".into(),
            region: "us-east-1".into(),
            name: "prod".into(),
            issuer: cluster["identity"]["oidc"]["issuer"]
                .as_str()
                .unwrap()
                .into(),
        },
    );

    let mut p = pod("s3-reader");
    hook.admit_pod(&ClientLookup(&*client), "default", &mut p)
        .await
        .unwrap();
    let c = &p["spec"]["containers"][0];
    assert_eq!(env_value(c, "AWS_ROLE_ARN").as_deref(), Some(role));
    assert_eq!(
        env_value(c, "AWS_WEB_IDENTITY_TOKEN_FILE").as_deref(),
        Some(irsa::IRSA_TOKEN_FILE)
    );
    assert_eq!(env_value(c, "AWS_REGION").as_deref(), Some("us-east-1"));
    assert!(env_value(c, "AWS_CONTAINER_CREDENTIALS_FULL_URI").is_none());
    assert_eq!(p["spec"]["volumes"][0]["name"], irsa::IRSA_VOLUME);

    let mut p = pod("agent");
    hook.admit_pod(&ClientLookup(&*client), "default", &mut p)
        .await
        .unwrap();
    let c = &p["spec"]["containers"][0];
    assert_eq!(
        env_value(c, "AWS_CONTAINER_CREDENTIALS_FULL_URI").as_deref(),
        Some(irsa::POD_IDENTITY_URI)
    );
    assert!(env_value(c, "AWS_ROLE_ARN").is_none());
    assert_eq!(p["spec"]["volumes"][0]["name"], irsa::POD_IDENTITY_VOLUME);

    // No role, no association, or no such ServiceAccount: untouched.
    for sa in ["plain", "missing"] {
        let mut p = pod(sa);
        hook.admit_pod(&ClientLookup(&*client), "default", &mut p)
            .await
            .unwrap();
        assert_eq!(p, pod(sa), "{sa}");
    }
}
