//! Secrets Manager through its operation table on an in-memory store.

use serde_json::{Value, json};

use crate::context::RequestContext;
use crate::iam::test_support::root_ctx;

async fn sm(
    ctx: &RequestContext,
    op: &str,
    input: Value,
) -> Result<Value, skiff_aws_model::AwsError> {
    super::dispatch(ctx, op, input).await
}

#[tokio::test]
async fn staging_labels_move_on_put() {
    let ctx = root_ctx();
    let c = sm(
        &ctx,
        "CreateSecret",
        json!({"Name": "db/pass", "SecretString": "one"}),
    )
    .await
    .unwrap();
    let arn = c["ARN"].as_str().unwrap();
    let suffix = arn.rsplit('-').next().unwrap();
    assert_eq!(suffix.len(), 6);
    assert!(arn.starts_with("arn:aws:secretsmanager:us-east-1:000000000000:secret:db/pass-"));
    let v1 = c["VersionId"].as_str().unwrap().to_string();
    let p = sm(
        &ctx,
        "PutSecretValue",
        json!({"SecretId": "db/pass", "SecretString": "two"}),
    )
    .await
    .unwrap();
    let v2 = p["VersionId"].as_str().unwrap().to_string();
    let cur = sm(&ctx, "GetSecretValue", json!({"SecretId": arn}))
        .await
        .unwrap();
    assert_eq!(cur["SecretString"], "two");
    let prev = sm(
        &ctx,
        "GetSecretValue",
        json!({"SecretId": "db/pass", "VersionStage": "AWSPREVIOUS"}),
    )
    .await
    .unwrap();
    assert_eq!(prev["SecretString"], "one");
    assert_eq!(prev["VersionId"], v1.as_str());
    let d = sm(&ctx, "DescribeSecret", json!({"SecretId": "db/pass"}))
        .await
        .unwrap();
    assert_eq!(d["VersionIdsToStages"][&v2], json!(["AWSCURRENT"]));
    assert_eq!(d["VersionIdsToStages"][&v1], json!(["AWSPREVIOUS"]));
    sm(
        &ctx,
        "PutSecretValue",
        json!({"SecretId": "db/pass", "SecretString": "three"}),
    )
    .await
    .unwrap();
    let d = sm(&ctx, "DescribeSecret", json!({"SecretId": "db/pass"}))
        .await
        .unwrap();
    assert!(
        d["VersionIdsToStages"].get(&v1).is_none(),
        "v1 is deprecated now"
    );
    let err = sm(
        &ctx,
        "GetSecretValue",
        json!({"SecretId": "db/pass", "VersionId": "nope"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "ResourceNotFoundException");
    // ClientRequestToken: idempotent for the same value, refused for another.
    let tok = "0123456789abcdef0123456789abcdef";
    let a = sm(
        &ctx,
        "PutSecretValue",
        json!({"SecretId": "db/pass", "SecretString": "x", "ClientRequestToken": tok}),
    )
    .await
    .unwrap();
    let b = sm(
        &ctx,
        "PutSecretValue",
        json!({"SecretId": "db/pass", "SecretString": "x", "ClientRequestToken": tok}),
    )
    .await
    .unwrap();
    assert_eq!(a["VersionId"], b["VersionId"]);
    let err = sm(
        &ctx,
        "PutSecretValue",
        json!({"SecretId": "db/pass", "SecretString": "y", "ClientRequestToken": tok}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "ResourceExistsException");
}

#[tokio::test]
async fn errors_use_aws_wording() {
    let ctx = root_ctx();
    let err = sm(&ctx, "DescribeSecret", json!({"SecretId": "nope"}))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code.as_str(), err.message.as_str()),
        (
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret."
        )
    );
    sm(
        &ctx,
        "CreateSecret",
        json!({"Name": "s", "SecretString": "v"}),
    )
    .await
    .unwrap();
    let err = sm(
        &ctx,
        "CreateSecret",
        json!({"Name": "s", "SecretString": "v"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "ResourceExistsException");
    let err = sm(
        &ctx,
        "CreateSecret",
        json!({"Name": "t", "SecretString": "v", "SecretBinary": "AA=="}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "InvalidParameterException");
    let err = sm(
        &ctx,
        "DeleteSecret",
        json!({"SecretId": "s", "RecoveryWindowInDays": 3}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "InvalidParameterException");
    let err = sm(
        &ctx,
        "DeleteSecret",
        json!({"SecretId": "s", "RecoveryWindowInDays": 7, "ForceDeleteWithoutRecovery": true}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "InvalidParameterException");
}

#[tokio::test]
async fn delete_restore_and_force_delete() {
    let ctx = root_ctx();
    sm(
        &ctx,
        "CreateSecret",
        json!({"Name": "s", "SecretString": "v"}),
    )
    .await
    .unwrap();
    let d = sm(
        &ctx,
        "DeleteSecret",
        json!({"SecretId": "s", "RecoveryWindowInDays": 7}),
    )
    .await
    .unwrap();
    assert!(d["DeletionDate"].is_string());
    let err = sm(&ctx, "GetSecretValue", json!({"SecretId": "s"}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "InvalidRequestException");
    assert_eq!(
        err.message,
        "You can't perform this operation on the secret because it was marked for deletion."
    );
    assert_eq!(
        sm(&ctx, "ListSecrets", json!({})).await.unwrap()["SecretList"],
        json!([])
    );
    let l = sm(&ctx, "ListSecrets", json!({"IncludePlannedDeletion": true}))
        .await
        .unwrap();
    assert_eq!(l["SecretList"].as_array().unwrap().len(), 1);
    sm(&ctx, "RestoreSecret", json!({"SecretId": "s"}))
        .await
        .unwrap();
    assert_eq!(
        sm(&ctx, "GetSecretValue", json!({"SecretId": "s"}))
            .await
            .unwrap()["SecretString"],
        "v"
    );
    sm(
        &ctx,
        "DeleteSecret",
        json!({"SecretId": "s", "ForceDeleteWithoutRecovery": true}),
    )
    .await
    .unwrap();
    let err = sm(&ctx, "GetSecretValue", json!({"SecretId": "s"}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "ResourceNotFoundException");
}

#[tokio::test]
async fn list_filters_and_paging() {
    let ctx = root_ctx();
    for n in ["prod/a", "prod/b", "dev/a"] {
        sm(&ctx, "CreateSecret", json!({"Name": n, "SecretString": "v", "Tags": [{"Key": "env", "Value": n.split('/').next().unwrap()}]})).await.unwrap();
    }
    let l = sm(
        &ctx,
        "ListSecrets",
        json!({"Filters": [{"Key": "name", "Values": ["prod/"]}]}),
    )
    .await
    .unwrap();
    assert_eq!(l["SecretList"].as_array().unwrap().len(), 2);
    let l = sm(
        &ctx,
        "ListSecrets",
        json!({"Filters": [{"Key": "tag-value", "Values": ["!prod"]}]}),
    )
    .await
    .unwrap();
    assert_eq!(l["SecretList"][0]["Name"], "dev/a");
    let p1 = sm(&ctx, "ListSecrets", json!({"MaxResults": 2}))
        .await
        .unwrap();
    assert_eq!(p1["SecretList"].as_array().unwrap().len(), 2);
    let p2 = sm(
        &ctx,
        "ListSecrets",
        json!({"MaxResults": 2, "NextToken": p1["NextToken"]}),
    )
    .await
    .unwrap();
    assert_eq!(p2["SecretList"].as_array().unwrap().len(), 1);
    assert!(p2.get("NextToken").is_none());
    sm(
        &ctx,
        "UntagResource",
        json!({"SecretId": "dev/a", "TagKeys": ["env"]}),
    )
    .await
    .unwrap();
    assert!(
        sm(&ctx, "DescribeSecret", json!({"SecretId": "dev/a"}))
            .await
            .unwrap()
            .get("Tags")
            .is_none()
    );
}

#[tokio::test]
async fn kms_sealed_values_round_trip() {
    let ctx = root_ctx();
    let key = crate::kms::dispatch(&ctx, "CreateKey", json!({}))
        .await
        .unwrap();
    let key_id = key["KeyMetadata"]["KeyId"].as_str().unwrap();
    sm(
        &ctx,
        "CreateSecret",
        json!({"Name": "k", "SecretString": "hidden", "KmsKeyId": key_id}),
    )
    .await
    .unwrap();
    // The stored record holds no plaintext.
    let raw = ctx
        .store
        .get(&super::common::secret_key(&ctx, "k"))
        .await
        .unwrap()
        .unwrap();
    assert!(!String::from_utf8_lossy(&raw.value).contains("hidden"));
    assert_eq!(
        sm(&ctx, "GetSecretValue", json!({"SecretId": "k"}))
            .await
            .unwrap()["SecretString"],
        "hidden"
    );
    sm(
        &ctx,
        "PutSecretValue",
        json!({"SecretId": "k", "SecretBinary": "AAEC"}),
    )
    .await
    .unwrap();
    assert_eq!(
        sm(&ctx, "GetSecretValue", json!({"SecretId": "k"}))
            .await
            .unwrap()["SecretBinary"],
        "AAEC"
    );
    crate::kms::dispatch(&ctx, "DisableKey", json!({"KeyId": key_id}))
        .await
        .unwrap();
    assert!(
        sm(&ctx, "GetSecretValue", json!({"SecretId": "k"}))
            .await
            .is_err()
    );
    let err = sm(
        &ctx,
        "CreateSecret",
        json!({"Name": "bad", "SecretString": "v", "KmsKeyId": "alias/none"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "InvalidParameterException");
}
