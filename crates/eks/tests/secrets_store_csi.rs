//! The Secrets Store CSI driver + AWS provider (issue 6) in a real EKS control plane: the CRDs are
//! installed, a pod's `SecretProviderClass` volume is mounted from Secrets Manager as its IRSA role
//! (IAM policies judged), the pod status and the synced Secret are written, and failures are the
//! kubelet's FailedMount events.

mod nodegroups_support;

use std::time::Duration;

use nodegroups_support::{Env, wait_for};
use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, ListOptions, ResourceRef, WriteOptions};

const GROUP: &str = "secrets-store.csi.x-k8s.io";

fn pod(name: &str, sa: &str, class: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": name, "namespace": "default"},
    "spec": {
        "serviceAccountName": sa,
        // Bound to a node no kubelet runs: the driver acts on bound pods only.
        "nodeName": "ip-10-0-1-5.ec2.internal",
        "containers": [{"name": "app", "image": "nginx", "volumeMounts": [
            {"name": "secrets-store-inline", "mountPath": "/mnt/secrets-store", "readOnly": true}]}],
        "volumes": [{"name": "secrets-store-inline", "csi": {
            "driver": "secrets-store.csi.k8s.io", "readOnly": true,
            "volumeAttributes": {"secretProviderClass": class}}}]
    }})
}

async fn create(client: &dyn ApiClient, r: &ResourceRef, obj: Value) -> Value {
    client
        .create(r, obj, &WriteOptions::default())
        .await
        .unwrap_or_else(|e| panic!("create {r:?}: {e:?}"))
}

async fn failed_mount_messages(client: &dyn ApiClient, pod: &str) -> Vec<String> {
    client
        .list(
            &ResourceRef::new("", "v1", "events").in_namespace("default"),
            &ListOptions::default(),
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == pod && e["reason"] == "FailedMount")
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn wait_failed_mount(client: &dyn ApiClient, pod: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(m) = failed_mount_messages(client, pod).await.pop() {
            return m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no FailedMount for {pod}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_provider_class_volumes_mount_secrets_manager_values_and_sync_a_secret() {
    let env = Env::start().await;
    env.cluster("csi", &[("10.0.1.0/24", "us-east-1a")]).await;
    let client = env.client("csi").await;
    let classes = ResourceRef::new(GROUP, "v1", "secretproviderclasses").in_namespace("default");
    let statuses =
        ResourceRef::new(GROUP, "v1", "secretproviderclasspodstatuses").in_namespace("default");
    let pods = ResourceRef::new("", "v1", "pods").in_namespace("default");
    let sas = ResourceRef::new("", "v1", "serviceaccounts").in_namespace("default");
    let secrets = ResourceRef::new("", "v1", "secrets").in_namespace("default");

    // The CRDs are installed by the driver's row.
    let c = client.clone();
    wait_for(
        "SecretProviderClass served",
        Duration::from_secs(20),
        || {
            let c = c.clone();
            let classes = classes.clone();
            async move { c.list(&classes, &ListOptions::default()).await.is_ok() }
        },
    )
    .await;

    // Secrets Manager value, and an IRSA role allowed to read it (and one that is not).
    let created = env
        .call(
            "secretsmanager",
            "CreateSecret",
            json!({"Name": "prod/db", "SecretString": "{\"username\":\"admin\",\"password\":\"hunter2\"}"}),
        )
        .await;
    let version = created["VersionId"].as_str().unwrap().to_string();
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Federated": "arn:aws:iam::000000000000:oidc-provider/x"},
        "Action": "sts:AssumeRoleWithWebIdentity"}]})
    .to_string();
    let mut roles = Vec::new();
    for name in ["db-reader", "no-perms"] {
        let r = env
            .call(
                "iam",
                "CreateRole",
                json!({"RoleName": name, "AssumeRolePolicyDocument": trust}),
            )
            .await;
        roles.push(r["Role"]["Arn"].as_str().unwrap().to_string());
    }
    env.call(
        "iam",
        "PutRolePolicy",
        json!({"RoleName": "db-reader", "PolicyName": "read", "PolicyDocument": json!({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            "Resource": "*"}]}).to_string()}),
    )
    .await;
    for (sa, role) in [("app", &roles[0]), ("noperm", &roles[1])] {
        create(
            &*client,
            &sas,
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa,
                "annotations": {"eks.amazonaws.com/role-arn": role}}}),
        )
        .await;
    }
    let objects = "- objectName: \"prod/db\"\n  objectType: \"secretsmanager\"\n  objectAlias: db\n  jmesPath:\n    - path: password\n      objectAlias: dbpassword\n";
    create(
        &*client,
        &classes,
        json!({"apiVersion": format!("{GROUP}/v1"), "kind": "SecretProviderClass",
            "metadata": {"name": "aws-secrets"},
            "spec": {"provider": "aws", "parameters": {"objects": objects},
                "secretObjects": [{"secretName": "db-creds", "type": "Opaque",
                    "labels": {"app": "web"},
                    "data": [{"objectName": "dbpassword", "key": "password"},
                             {"objectName": "db", "key": "json"}]}]}}),
    )
    .await;
    create(
        &*client,
        &classes,
        json!({"apiVersion": format!("{GROUP}/v1"), "kind": "SecretProviderClass",
            "metadata": {"name": "missing"},
            "spec": {"provider": "aws", "parameters": {"objects": "- {objectName: nope, objectType: secretsmanager}\n"}}}),
    )
    .await;

    // The happy path.
    let p = create(&*client, &pods, pod("web", "app", "aws-secrets")).await;
    let c = client.clone();
    wait_for("synced Secret", Duration::from_secs(20), || {
        let c = c.clone();
        let secrets = secrets.clone();
        async move { matches!(c.get_opt(&secrets, "db-creds").await, Ok(Some(_))) }
    })
    .await;
    let status = client
        .get(&statuses, "web-default-secrets-store-inline")
        .await
        .unwrap();
    assert_eq!(status["status"]["mounted"], true);
    assert_eq!(status["status"]["secretProviderClassName"], "aws-secrets");
    assert_eq!(status["status"]["podName"], "web");
    assert_eq!(
        status["metadata"]["ownerReferences"][0]["uid"],
        p["metadata"]["uid"]
    );
    let objs = status["status"]["objects"].as_array().unwrap();
    assert!(
        objs.iter()
            .any(|o| o["id"] == "db" && o["version"] == version.as_str())
    );
    assert!(objs.iter().any(|o| o["id"] == "dbpassword"));
    let synced = client.get(&secrets, "db-creds").await.unwrap();
    assert_eq!(
        synced["metadata"]["labels"]["secrets-store.csi.k8s.io/managed"],
        "true"
    );
    assert_eq!(synced["metadata"]["labels"]["app"], "web");
    assert_eq!(synced["data"]["password"], "aHVudGVyMg==");
    let owner = &synced["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "SecretProviderClassPodStatus");
    assert_eq!(owner["uid"], status["metadata"]["uid"]);
    assert!(failed_mount_messages(&*client, "web").await.is_empty());

    // A missing Secrets Manager secret, a missing class, a role without permission.
    create(&*client, &pods, pod("lost", "app", "missing")).await;
    let msg = wait_failed_mount(&*client, "lost").await;
    assert!(
        msg.starts_with("MountVolume.SetUp failed for volume \"secrets-store-inline\" : rpc error: code = Unknown desc = failed to mount secrets store objects for pod default/lost")
            && msg.contains("Failed to fetch secret from all regions. Verify secret exists and required permissions are granted for: nope")
            && msg.contains("ResourceNotFoundException"),
        "{msg}"
    );
    create(&*client, &pods, pod("noclass", "app", "absent")).await;
    let msg = wait_failed_mount(&*client, "noclass").await;
    assert!(
        msg.contains("secretproviderclasses.secrets-store.csi.x-k8s.io \"absent\" not found"),
        "{msg}"
    );
    create(&*client, &pods, pod("denied", "noperm", "aws-secrets")).await;
    let msg = wait_failed_mount(&*client, "denied").await;
    assert!(
        msg.contains("AccessDeniedException") && msg.contains("no-perms"),
        "{msg}"
    );
    assert!(
        client
            .get_opt(&statuses, "denied-default-secrets-store-inline")
            .await
            .unwrap()
            .is_none()
    );

    // Once the secret exists the retry mounts it (the kubelet's back-off).
    env.call(
        "secretsmanager",
        "CreateSecret",
        json!({"Name": "nope", "SecretString": "late"}),
    )
    .await;
    let c = client.clone();
    wait_for("retried mount", Duration::from_secs(30), || {
        let c = c.clone();
        let statuses = statuses.clone();
        async move {
            matches!(
                c.get_opt(&statuses, "lost-default-secrets-store-inline")
                    .await,
                Ok(Some(_))
            )
        }
    })
    .await;
}
