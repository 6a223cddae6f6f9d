//! KMS through its operation table on an in-memory store.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::context::RequestContext;
use crate::iam::test_support::root_ctx;

async fn kms(
    ctx: &RequestContext,
    op: &str,
    input: Value,
) -> Result<Value, skiff_aws_model::AwsError> {
    super::dispatch(ctx, op, input).await
}

async fn new_key(ctx: &RequestContext) -> String {
    let out = kms(ctx, "CreateKey", json!({"Description": "k"}))
        .await
        .unwrap();
    out["KeyMetadata"]["KeyId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn encrypt_decrypt_round_trip_binds_context_and_names_the_key() {
    let ctx = root_ctx();
    let id = new_key(&ctx).await;
    let pt = B64.encode(b"hello world");
    let enc = kms(
        &ctx,
        "Encrypt",
        json!({"KeyId": id, "Plaintext": pt, "EncryptionContext": {"a": "1"}}),
    )
    .await
    .unwrap();
    assert!(enc["KeyId"].as_str().unwrap().ends_with(&id));
    let blob = enc["CiphertextBlob"].clone();
    // No KeyId needed: the blob names its key.
    let dec = kms(
        &ctx,
        "Decrypt",
        json!({"CiphertextBlob": blob, "EncryptionContext": {"a": "1"}}),
    )
    .await
    .unwrap();
    assert_eq!(dec["Plaintext"], pt);
    let err = kms(
        &ctx,
        "Decrypt",
        json!({"CiphertextBlob": blob, "EncryptionContext": {"a": "2"}}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "InvalidCiphertextException");
    let err = kms(&ctx, "Decrypt", json!({"CiphertextBlob": blob}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "InvalidCiphertextException");
    let err = kms(&ctx, "Decrypt", json!({"CiphertextBlob": B64.encode(b"garbage-garbage-garbage-garbage-garbage-garbage-garbage-garbage-garbage")}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "InvalidCiphertextException");
    // A different named key is refused.
    let other = new_key(&ctx).await;
    let err = kms(
        &ctx,
        "Decrypt",
        json!({"CiphertextBlob": blob, "KeyId": other, "EncryptionContext": {"a": "1"}}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "IncorrectKeyException");
    // ReEncrypt moves it to the other key.
    let re = kms(&ctx, "ReEncrypt", json!({"CiphertextBlob": blob, "SourceEncryptionContext": {"a": "1"}, "DestinationKeyId": other}))
        .await
        .unwrap();
    let dec = kms(
        &ctx,
        "Decrypt",
        json!({"CiphertextBlob": re["CiphertextBlob"]}),
    )
    .await
    .unwrap();
    assert!(dec["KeyId"].as_str().unwrap().ends_with(&other));
    assert_eq!(dec["Plaintext"], pt);
}

#[tokio::test]
async fn data_keys_decrypt_to_their_plaintext() {
    let ctx = root_ctx();
    let id = new_key(&ctx).await;
    let dk = kms(
        &ctx,
        "GenerateDataKey",
        json!({"KeyId": id, "KeySpec": "AES_256"}),
    )
    .await
    .unwrap();
    assert_eq!(
        B64.decode(dk["Plaintext"].as_str().unwrap()).unwrap().len(),
        32
    );
    let dec = kms(
        &ctx,
        "Decrypt",
        json!({"CiphertextBlob": dk["CiphertextBlob"]}),
    )
    .await
    .unwrap();
    assert_eq!(dec["Plaintext"], dk["Plaintext"]);
    let wp = kms(
        &ctx,
        "GenerateDataKeyWithoutPlaintext",
        json!({"KeyId": id, "NumberOfBytes": 16}),
    )
    .await
    .unwrap();
    assert!(wp.get("Plaintext").is_none());
    let dec = kms(
        &ctx,
        "Decrypt",
        json!({"CiphertextBlob": wp["CiphertextBlob"]}),
    )
    .await
    .unwrap();
    assert_eq!(
        B64.decode(dec["Plaintext"].as_str().unwrap())
            .unwrap()
            .len(),
        16
    );
    let err = kms(&ctx, "GenerateDataKey", json!({"KeyId": id}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "ValidationException");
}

#[tokio::test]
async fn key_states_disable_and_schedule_deletion() {
    let ctx = root_ctx();
    let id = new_key(&ctx).await;
    kms(&ctx, "DisableKey", json!({"KeyId": id})).await.unwrap();
    let err = kms(
        &ctx,
        "Encrypt",
        json!({"KeyId": id, "Plaintext": B64.encode(b"x")}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "DisabledException");
    assert!(err.message.ends_with("is disabled."), "{}", err.message);
    kms(&ctx, "EnableKey", json!({"KeyId": id})).await.unwrap();
    let err = kms(
        &ctx,
        "ScheduleKeyDeletion",
        json!({"KeyId": id, "PendingWindowInDays": 6}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "ValidationException");
    let out = kms(
        &ctx,
        "ScheduleKeyDeletion",
        json!({"KeyId": id, "PendingWindowInDays": 7}),
    )
    .await
    .unwrap();
    assert_eq!(out["KeyState"], "PendingDeletion");
    let d = kms(&ctx, "DescribeKey", json!({"KeyId": id}))
        .await
        .unwrap();
    assert_eq!(d["KeyMetadata"]["KeyState"], "PendingDeletion");
    assert!(d["KeyMetadata"]["DeletionDate"].is_string());
    let err = kms(
        &ctx,
        "Encrypt",
        json!({"KeyId": id, "Plaintext": B64.encode(b"x")}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "KMSInvalidStateException");
    kms(&ctx, "CancelKeyDeletion", json!({"KeyId": id}))
        .await
        .unwrap();
    let d = kms(&ctx, "DescribeKey", json!({"KeyId": id}))
        .await
        .unwrap();
    assert_eq!(d["KeyMetadata"]["KeyState"], "Disabled");
    let err = kms(&ctx, "DescribeKey", json!({"KeyId": "alias/nope"}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "NotFoundException");
    assert_eq!(
        err.message,
        "Alias arn:aws:kms:us-east-1:000000000000:alias/nope is not found."
    );
    let err = kms(
        &ctx,
        "DescribeKey",
        json!({"KeyId": "11111111-2222-3333-4444-555555555555"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "NotFoundException");
}

#[tokio::test]
async fn aliases_follow_prefix_rules_and_resolve() {
    let ctx = root_ctx();
    let id = new_key(&ctx).await;
    let id2 = new_key(&ctx).await;
    kms(
        &ctx,
        "CreateAlias",
        json!({"AliasName": "alias/app", "TargetKeyId": id}),
    )
    .await
    .unwrap();
    let err = kms(
        &ctx,
        "CreateAlias",
        json!({"AliasName": "alias/app", "TargetKeyId": id}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "AlreadyExistsException");
    let err = kms(
        &ctx,
        "CreateAlias",
        json!({"AliasName": "app", "TargetKeyId": id}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "ValidationException");
    let err = kms(
        &ctx,
        "CreateAlias",
        json!({"AliasName": "alias/aws/ebs", "TargetKeyId": id}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "NotAuthorizedException");
    let d = kms(&ctx, "DescribeKey", json!({"KeyId": "alias/app"}))
        .await
        .unwrap();
    assert_eq!(d["KeyMetadata"]["KeyId"], id.as_str());
    kms(
        &ctx,
        "UpdateAlias",
        json!({"AliasName": "alias/app", "TargetKeyId": id2}),
    )
    .await
    .unwrap();
    let l = kms(&ctx, "ListAliases", json!({"KeyId": id2}))
        .await
        .unwrap();
    assert_eq!(l["Aliases"][0]["AliasName"], "alias/app");
    assert_eq!(
        kms(&ctx, "ListAliases", json!({"KeyId": id}))
            .await
            .unwrap()["Aliases"],
        json!([])
    );
    kms(&ctx, "DeleteAlias", json!({"AliasName": "alias/app"}))
        .await
        .unwrap();
    let err = kms(&ctx, "DeleteAlias", json!({"AliasName": "alias/app"}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "NotFoundException");
}

#[tokio::test]
async fn policy_rotation_tags_and_paging() {
    let ctx = root_ctx();
    let id = new_key(&ctx).await;
    let p = kms(&ctx, "GetKeyPolicy", json!({"KeyId": id}))
        .await
        .unwrap();
    let doc: Value = serde_json::from_str(p["Policy"].as_str().unwrap()).unwrap();
    assert_eq!(
        doc["Statement"][0]["Principal"]["AWS"],
        "arn:aws:iam::000000000000:root"
    );
    let err = kms(
        &ctx,
        "PutKeyPolicy",
        json!({"KeyId": id, "Policy": "{not json"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "MalformedPolicyDocumentException");
    assert_eq!(
        kms(&ctx, "GetKeyRotationStatus", json!({"KeyId": id}))
            .await
            .unwrap()["KeyRotationEnabled"],
        false
    );
    kms(&ctx, "EnableKeyRotation", json!({"KeyId": id}))
        .await
        .unwrap();
    assert_eq!(
        kms(&ctx, "GetKeyRotationStatus", json!({"KeyId": id}))
            .await
            .unwrap()["KeyRotationEnabled"],
        true
    );
    kms(&ctx, "TagResource", json!({"KeyId": id, "Tags": [{"TagKey": "a", "TagValue": "1"}, {"TagKey": "b", "TagValue": "2"}]})).await.unwrap();
    kms(
        &ctx,
        "UntagResource",
        json!({"KeyId": id, "TagKeys": ["a"]}),
    )
    .await
    .unwrap();
    let t = kms(&ctx, "ListResourceTags", json!({"KeyId": id}))
        .await
        .unwrap();
    assert_eq!(t["Tags"], json!([{"TagKey": "b", "TagValue": "2"}]));
    new_key(&ctx).await;
    new_key(&ctx).await;
    let p1 = kms(&ctx, "ListKeys", json!({"Limit": 2})).await.unwrap();
    assert_eq!(p1["Keys"].as_array().unwrap().len(), 2);
    assert_eq!(p1["Truncated"], true);
    let p2 = kms(
        &ctx,
        "ListKeys",
        json!({"Limit": 2, "Marker": p1["NextMarker"]}),
    )
    .await
    .unwrap();
    assert_eq!(p2["Keys"].as_array().unwrap().len(), 1);
    assert_eq!(p2["Truncated"], false);
}

#[tokio::test]
async fn domain_functions_round_trip() {
    let ctx = root_ctx();
    let id = new_key(&ctx).await;
    let mut c = std::collections::BTreeMap::new();
    c.insert("cluster".to_string(), "demo".to_string());
    let (blob, arn) = super::encrypt(&ctx, &id, b"secret", &c).await.unwrap();
    assert!(arn.ends_with(&id));
    let (pt, _) = super::decrypt(&ctx, &blob, &c).await.unwrap();
    assert_eq!(pt, b"secret");
    assert!(
        super::decrypt(&ctx, &blob, &Default::default())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn rotation_keeps_old_blobs_readable() {
    let ctx = root_ctx();
    let id = new_key(&ctx).await;
    let pt = B64.encode(b"before rotation");
    let old = kms(&ctx, "Encrypt", json!({"KeyId": id, "Plaintext": pt}))
        .await
        .unwrap();
    kms(&ctx, "RotateKeyOnDemand", json!({"KeyId": id}))
        .await
        .unwrap();
    let new = kms(&ctx, "Encrypt", json!({"KeyId": id, "Plaintext": pt}))
        .await
        .unwrap();
    for blob in [&old, &new] {
        let dec = kms(
            &ctx,
            "Decrypt",
            json!({"CiphertextBlob": blob["CiphertextBlob"]}),
        )
        .await
        .unwrap();
        assert_eq!(dec["Plaintext"], pt);
    }
    let r = kms(&ctx, "ListKeyRotations", json!({"KeyId": id}))
        .await
        .unwrap();
    assert_eq!(r["Rotations"][0]["RotationType"], "ON_DEMAND");
    // A blob naming a generation the key never had does not open.
    let mut raw = B64.decode(new["CiphertextBlob"].as_str().unwrap()).unwrap();
    raw[4 + 1 + 36 + 3] = 9;
    let err = kms(&ctx, "Decrypt", json!({"CiphertextBlob": B64.encode(raw)}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "InvalidCiphertextException");
}

#[tokio::test]
async fn data_keys_for_other_services_open_with_decrypt_and_follow_key_state() {
    use std::collections::BTreeMap;
    let ctx = root_ctx();
    let id = new_key(&ctx).await;
    let context = BTreeMap::from([("cluster".to_string(), "c1".to_string())]);
    let dk = super::generate_data_key_for(&ctx, &id, 32, &context)
        .await
        .unwrap();
    assert_eq!(dk.plaintext.len(), 32);
    assert!(dk.key_arn.ends_with(&id));
    assert!(!format!("{dk:?}").contains(&format!("{:?}", dk.plaintext)));
    let (plain, arn) = super::decrypt(&ctx, &dk.ciphertext_blob, &context)
        .await
        .unwrap();
    assert_eq!(plain, dk.plaintext);
    assert_eq!(arn, dk.key_arn);
    let err = super::generate_data_key_for(&ctx, &id, 0, &context)
        .await
        .unwrap_err();
    assert_eq!(err.code, "ValidationException");

    let status = super::key_status(&ctx, &id).await.unwrap();
    assert_eq!(status.generation, 0);
    kms(&ctx, "RotateKeyOnDemand", json!({"KeyId": id}))
        .await
        .unwrap();
    assert_eq!(super::key_status(&ctx, &id).await.unwrap().generation, 1);

    kms(&ctx, "DisableKey", json!({"KeyId": id})).await.unwrap();
    let err = super::key_status(&ctx, &id).await.unwrap_err();
    assert_eq!(err.code, "DisabledException");
    let err = super::generate_data_key_for(&ctx, &id, 32, &context)
        .await
        .unwrap_err();
    assert_eq!(err.code, "DisabledException");
    let err = super::decrypt(&ctx, &dk.ciphertext_blob, &context)
        .await
        .unwrap_err();
    assert_eq!(err.code, "DisabledException");
}
