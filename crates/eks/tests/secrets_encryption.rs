//! Secrets envelope encryption with KMS (issue 6): the store wrapper against a real embedded store
//! and the real KMS domain, and a real control plane whose Secrets land sealed in the store.

mod nodegroups_support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use nodegroups_support::{Env, root_ctx, wait_for};
use serde_json::{Value, json};
use skiff_eks::cluster_dir::EksBinding;
use skiff_eks::secrets_encryption::{EncryptedSecretsStore, cluster_record_key};
use skiff_k8s_core::client::{ResourceRef, WriteOptions};
use skiff_store::{EventKind, ListOptions, Op, Precondition, Store, StoreError};

const ACCOUNT: &str = "000000000000";

fn binding(name: &str) -> EksBinding {
    EksBinding {
        account: ACCOUNT.into(),
        region: "us-east-1".into(),
        name: name.into(),
        issuer: String::new(),
    }
}

async fn kms(store: &Arc<dyn Store>, op: &str, input: Value) -> Value {
    skiff_aws::dispatch(&root_ctx(store.clone()), "kms", op, input)
        .await
        .unwrap_or_else(|e| panic!("kms {op}: {e:?}"))
}

/// An EKS record as CreateCluster stores it, with (or without) a Secrets encryption key.
async fn put_record(store: &Arc<dyn Store>, name: &str, key_arn: Option<&str>) {
    let mut rec =
        json!({"name": name, "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/{name}-cluster")});
    if let Some(arn) = key_arn {
        rec["encryptionConfig"] = json!([{"resources": ["secrets"], "provider": {"keyArn": arn}}]);
    }
    store
        .txn(vec![Op::Put {
            key: cluster_record_key(&binding(name)),
            value: Bytes::from(rec.to_string()),
            precondition: Precondition::None,
        }])
        .await
        .unwrap();
}

fn put(key: &str, value: &str) -> Op {
    Op::Put {
        key: key.into(),
        value: Bytes::from(value.to_string()),
        precondition: Precondition::None,
    }
}

fn raw_has(value: &[u8], needle: &str) -> bool {
    value.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_sealed_at_rest_and_open_on_every_read_path() {
    let dir = tempfile::tempdir().unwrap();
    let raw = skiff_store::open("embedded", dir.path()).await.unwrap();
    let key = kms(&raw, "CreateKey", json!({"Description": "eks secrets"})).await;
    let key_arn = key["KeyMetadata"]["Arn"].as_str().unwrap().to_string();
    put_record(&raw, "c1", Some(&key_arn)).await;
    let store = EncryptedSecretsStore::new(raw.clone(), "cid", &binding("c1"));

    let secret = "/k8s/cid/core/secrets/default/s";
    let body = r#"{"kind":"Secret","data":{"password":"aHVudGVyMg=="},"stringData":"hunter2"}"#;
    let from = store.current_revision().await.unwrap();
    let mut watch = store.watch("/k8s/cid/", from).await.unwrap();
    store
        .txn(vec![
            put(secret, body),
            put("/k8s/cid/core/configmaps/default/c", "{\"plain\":1}"),
        ])
        .await
        .unwrap();

    // At rest: the KMS v2 envelope, no plaintext, and names the key; other kinds untouched.
    let at_rest = raw.get(secret).await.unwrap().unwrap().value;
    assert!(at_rest.starts_with(b"k8s:enc:kms:v2:aws-encryption-provider:"));
    assert!(!raw_has(&at_rest, "hunter2") && !raw_has(&at_rest, "aHVudGVyMg=="));
    assert!(raw_has(&at_rest, &key_arn));
    let cm = raw
        .get("/k8s/cid/core/configmaps/default/c")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cm.value, Bytes::from_static(b"{\"plain\":1}"));

    // Every read path answers the plaintext.
    assert_eq!(
        store.get(secret).await.unwrap().unwrap().value,
        body.as_bytes()
    );
    for prefix in ["/k8s/cid/core/secrets/", "/k8s/cid/"] {
        let page = store.list(prefix, ListOptions::default()).await.unwrap();
        let s = page.items.iter().find(|kv| kv.key == secret).unwrap();
        assert_eq!(s.value, body.as_bytes(), "list {prefix}");
    }
    let arc: Arc<dyn Store> = Arc::new(store.clone());
    let mut range = skiff_store::RangeStream::open(arc, "/k8s/cid/core/secrets/", None, 1)
        .await
        .unwrap();
    assert_eq!(
        range.next_item().await.unwrap().unwrap().value,
        body.as_bytes()
    );
    let ev = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let ev = if ev.kv.key == secret {
        ev
    } else {
        watch.next().await.unwrap().unwrap()
    };
    assert_eq!(ev.kv.value, body.as_bytes());

    // An update: the previous value comes back opened, in the txn result and the watch event.
    let body2 = r#"{"kind":"Secret","stringData":"correct horse"}"#;
    let res = store.txn(vec![put(secret, body2)]).await.unwrap();
    assert_eq!(res.previous[0].as_ref().unwrap().value, body.as_bytes());
    let ev = loop {
        let ev = watch.next().await.unwrap().unwrap();
        if ev.kv.key == secret {
            break ev;
        }
    };
    assert_eq!(ev.kind, EventKind::Put);
    assert_eq!(ev.kv.value, body2.as_bytes());
    assert_eq!(ev.prev.unwrap().value, body.as_bytes());
    // A refused precondition reports the current value opened.
    let err = store
        .txn(vec![Op::Put {
            key: secret.into(),
            value: Bytes::from_static(b"{}"),
            precondition: Precondition::MustNotExist,
        }])
        .await
        .unwrap_err();
    match err {
        StoreError::PreconditionFailed {
            current: Some(kv), ..
        } => {
            assert_eq!(kv.value, body2.as_bytes())
        }
        other => panic!("{other:?}"),
    }

    // A value moved to another key does not open (the key is authenticated).
    let sealed = raw.get(secret).await.unwrap().unwrap().value;
    raw.txn(vec![Op::Put {
        key: "/k8s/cid/core/secrets/default/copy".into(),
        value: sealed,
        precondition: Precondition::None,
    }])
    .await
    .unwrap();
    let err = store
        .get("/k8s/cid/core/secrets/default/copy")
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Io(ref m) if m.contains("failed to decrypt")),
        "{err}"
    );
    raw.txn(vec![Op::Delete {
        key: "/k8s/cid/core/secrets/default/copy".into(),
        precondition: Precondition::None,
    }])
    .await
    .unwrap();

    // A restart (new wrapper, empty DEK cache) opens the values again through KMS Decrypt.
    let restarted = EncryptedSecretsStore::new(raw.clone(), "cid", &binding("c1"));
    assert_eq!(
        restarted.get(secret).await.unwrap().unwrap().value,
        body2.as_bytes()
    );

    // A disabled key fails Secret reads and writes with an error naming KMS; other kinds still work.
    kms(&raw, "DisableKey", json!({"KeyId": key_arn})).await;
    for err in [
        restarted.get(secret).await.unwrap_err(),
        restarted
            .list("/k8s/cid/core/secrets/default/", ListOptions::default())
            .await
            .unwrap_err(),
        restarted.txn(vec![put(secret, "{}")]).await.unwrap_err(),
    ] {
        let msg = err.to_string();
        assert!(
            msg.contains("KMS DisabledException") && msg.contains(&key_arn),
            "{msg}"
        );
    }
    restarted
        .txn(vec![put("/k8s/cid/core/configmaps/default/d", "{}")])
        .await
        .unwrap();
    // The cluster-wide view (garbage collector) keeps working from its cached DEK.
    let all = restarted
        .list("/k8s/cid/", ListOptions::default())
        .await
        .unwrap();
    assert!(
        all.items
            .iter()
            .any(|kv| kv.key == secret && kv.value == body2.as_bytes())
    );
    // Enabled again, everything reads.
    kms(&raw, "EnableKey", json!({"KeyId": key_arn})).await;
    assert_eq!(
        restarted.get(secret).await.unwrap().unwrap().value,
        body2.as_bytes()
    );

    // Pending deletion is refused too.
    kms(
        &raw,
        "ScheduleKeyDeletion",
        json!({"KeyId": key_arn, "PendingWindowInDays": 7}),
    )
    .await;
    let msg = restarted.get(secret).await.unwrap_err().to_string();
    assert!(msg.contains("KMSInvalidStateException"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dek_is_cached_rotated_with_the_key_and_plaintext_is_kept_until_encryption_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let raw = skiff_store::open("embedded", dir.path()).await.unwrap();
    let key = kms(&raw, "CreateKey", json!({})).await;
    let key_arn = key["KeyMetadata"]["Arn"].as_str().unwrap().to_string();
    put_record(&raw, "c2", None).await;
    let store = EncryptedSecretsStore::new(raw.clone(), "cid2", &binding("c2"));
    let a = "/k8s/cid2/core/secrets/ns/a";
    let b = "/k8s/cid2/core/secrets/ns/b";
    store.txn(vec![put(a, "{\"v\":\"alpha\"}")]).await.unwrap();
    // No encryptionConfig yet: plaintext at rest, nothing to rewrite.
    assert!(raw_has(&raw.get(a).await.unwrap().unwrap().value, "alpha"));
    assert_eq!(store.encrypt_existing().await.unwrap(), 0);

    // AssociateEncryptionConfig: the record gains the key; existing Secrets are rewritten sealed.
    put_record(&raw, "c2", Some(&key_arn)).await;
    assert_eq!(store.encrypt_existing().await.unwrap(), 1);
    assert_eq!(store.encrypt_existing().await.unwrap(), 0);
    assert!(!raw_has(&raw.get(a).await.unwrap().unwrap().value, "alpha"));
    assert_eq!(
        store.get(a).await.unwrap().unwrap().value,
        b"{\"v\":\"alpha\"}".as_slice()
    );

    // One DEK serves many writes (one KMS GenerateDataKey): the same encrypted DEK in both.
    store.txn(vec![put(b, "{\"v\":\"beta\"}")]).await.unwrap();
    let dek_of = |v: &[u8]| {
        skiff_eks::secrets_encryption_envelope::Envelope::from_value(v)
            .unwrap()
            .1
            .encrypted_dek_source
    };
    let first = dek_of(&raw.get(a).await.unwrap().unwrap().value);
    assert_eq!(first, dek_of(&raw.get(b).await.unwrap().unwrap().value));
    // A KMS rotation makes the next write use a new DEK; old values still open.
    kms(&raw, "RotateKeyOnDemand", json!({"KeyId": key_arn})).await;
    store.txn(vec![put(b, "{\"v\":\"gamma\"}")]).await.unwrap();
    assert_ne!(first, dek_of(&raw.get(b).await.unwrap().unwrap().value));
    let restarted = EncryptedSecretsStore::new(raw.clone(), "cid2", &binding("c2"));
    let page = restarted
        .list("/k8s/cid2/core/secrets/", ListOptions::default())
        .await
        .unwrap();
    let values: Vec<&[u8]> = page.items.iter().map(|kv| kv.value.as_ref()).collect();
    assert_eq!(
        values,
        [
            b"{\"v\":\"alpha\"}".as_slice(),
            b"{\"v\":\"gamma\"}".as_slice()
        ]
    );
}

/// The whole path: CreateCluster with `encryptionConfig` → the control plane's API writes Secrets
/// sealed; a cluster without it keeps plaintext until the record gains a key, then the
/// re-encryption task seals what is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_with_encryption_config_stores_its_secrets_sealed() {
    let env = Env::start().await;
    let key = env.call("kms", "CreateKey", json!({})).await;
    let key_arn = key["KeyMetadata"]["Arn"].as_str().unwrap().to_string();
    // The plain cluster made by the kit, then the record given a key as AssociateEncryptionConfig does.
    env.cluster("plain", &[("10.0.1.0/24", "us-east-1a")]).await;
    let cluster = skiff_aws::eks::get_cluster(&*env.store, ACCOUNT, "us-east-1", "plain")
        .await
        .unwrap()
        .unwrap();
    let client = env.client("plain").await;
    let secrets = ResourceRef::new("", "v1", "secrets").in_namespace("default");
    client
        .create(
            &secrets,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                "stringData": {"password": "hunter2"}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    let id = env
        .planes
        .list()
        .await
        .into_iter()
        .find(|r| r.name == "plain")
        .unwrap()
        .id;
    let key_path = format!("/k8s/{id}/core/secrets/default/s");
    let at_rest = env.store.get(&key_path).await.unwrap().unwrap().value;
    assert!(
        raw_has(&at_rest, "aHVudGVyMg=="),
        "plaintext before a key is associated"
    );

    let mut rec = cluster.clone();
    rec["encryptionConfig"] = json!([{"resources": ["secrets"], "provider": {"keyArn": key_arn}}]);
    env.store
        .txn(vec![Op::Put {
            key: cluster_record_key(&binding("plain")),
            value: Bytes::from(rec.to_string()),
            precondition: Precondition::None,
        }])
        .await
        .unwrap();
    let store = env.store.clone();
    let kp = key_path.clone();
    wait_for(
        "existing Secret re-encrypted",
        Duration::from_secs(10),
        || {
            let (store, kp) = (store.clone(), kp.clone());
            async move {
                let v = store.get(&kp).await.unwrap().unwrap().value;
                v.starts_with(b"k8s:enc:kms:v2:")
            }
        },
    )
    .await;
    let at_rest = env.store.get(&key_path).await.unwrap().unwrap().value;
    assert!(!raw_has(&at_rest, "aHVudGVyMg==") && !raw_has(&at_rest, "hunter2"));
    let got = client.get(&secrets, "s").await.unwrap();
    assert_eq!(got["data"]["password"], "aHVudGVyMg==");

    // New Secrets (including the ones controllers write) are sealed from now on.
    client
        .create(
            &secrets,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t"},
                "data": {"token": "c2VjcmV0LXRva2Vu"}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    let t = env
        .store
        .get(&format!("/k8s/{id}/core/secrets/default/t"))
        .await
        .unwrap()
        .unwrap()
        .value;
    assert!(t.starts_with(b"k8s:enc:kms:v2:aws-encryption-provider:"));
    assert!(!raw_has(&t, "c2VjcmV0LXRva2Vu"));
    let listed = client
        .list(&secrets, &skiff_k8s_core::client::ListOptions::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);

    // A disabled key: the API answers 500 naming KMS for Secrets, other kinds still work.
    env.call("kms", "DisableKey", json!({"KeyId": key_arn}))
        .await;
    let err = client.get(&secrets, "s").await.unwrap_err();
    let status = err.to_status();
    assert_eq!(status["code"], 500, "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("KMS DisabledException"),
        "{status}"
    );
    client
        .create(
            &ResourceRef::new("", "v1", "configmaps").in_namespace("default"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "still-works"}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
}
