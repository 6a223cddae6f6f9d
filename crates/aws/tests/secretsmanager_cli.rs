//! Secrets Manager through the real aws CLI against the gateway on 127.0.0.1:0: create, get, put
//! (staging labels move), list, delete with a recovery window, restore.

mod support;

use support::Gw;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_put_list_delete_restore() {
    let gw = Gw::start().await;
    let created = gw
        .aws(&[
            "secretsmanager",
            "create-secret",
            "--name",
            "app/db",
            "--secret-string",
            "s3cr3t",
            "--tags",
            "Key=team,Value=core",
        ])
        .await
        .expect("create-secret");
    let arn = created["ARN"].as_str().expect("arn").to_string();
    assert!(
        arn.starts_with("arn:aws:secretsmanager:us-east-1:000000000000:secret:app/db-"),
        "{arn}"
    );
    let err = gw
        .aws(&[
            "secretsmanager",
            "create-secret",
            "--name",
            "app/db",
            "--secret-string",
            "x",
        ])
        .await
        .expect_err("duplicate refused");
    assert!(err.contains("(ResourceExistsException)"), "{err}");

    let got = gw
        .aws(&["secretsmanager", "get-secret-value", "--secret-id", &arn])
        .await
        .expect("get");
    assert_eq!(got["SecretString"], "s3cr3t");
    assert_eq!(got["VersionStages"], serde_json::json!(["AWSCURRENT"]));
    gw.aws(&[
        "secretsmanager",
        "put-secret-value",
        "--secret-id",
        "app/db",
        "--secret-string",
        "n3w",
    ])
    .await
    .expect("put");
    let cur = gw
        .aws(&[
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            "app/db",
        ])
        .await
        .expect("get");
    assert_eq!(cur["SecretString"], "n3w");
    let prev = gw
        .aws(&[
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            "app/db",
            "--version-stage",
            "AWSPREVIOUS",
        ])
        .await
        .expect("get previous");
    assert_eq!(prev["SecretString"], "s3cr3t");

    let listed = gw
        .aws(&[
            "secretsmanager",
            "list-secrets",
            "--filters",
            "Key=tag-key,Values=team",
        ])
        .await
        .expect("list");
    assert_eq!(listed["SecretList"][0]["Name"], "app/db");
    assert_eq!(listed["SecretList"][0]["Tags"][0]["Value"], "core");

    let deleted = gw
        .aws(&[
            "secretsmanager",
            "delete-secret",
            "--secret-id",
            "app/db",
            "--recovery-window-in-days",
            "7",
        ])
        .await
        .expect("delete");
    assert!(deleted["DeletionDate"].is_number() || deleted["DeletionDate"].is_string());
    let err = gw
        .aws(&[
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            "app/db",
        ])
        .await
        .expect_err("deleted secret refused");
    assert!(
        err.contains("(InvalidRequestException)") && err.contains("marked for deletion"),
        "{err}"
    );
    let described = gw
        .aws(&["secretsmanager", "describe-secret", "--secret-id", "app/db"])
        .await
        .expect("describe");
    assert!(described.get("DeletedDate").is_some());
    gw.aws(&["secretsmanager", "restore-secret", "--secret-id", "app/db"])
        .await
        .expect("restore");
    let back = gw
        .aws(&[
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            "app/db",
        ])
        .await
        .expect("get");
    assert_eq!(back["SecretString"], "n3w");
    gw.aws(&[
        "secretsmanager",
        "delete-secret",
        "--secret-id",
        "app/db",
        "--force-delete-without-recovery",
    ])
    .await
    .expect("force delete");
    let err = gw
        .aws(&["secretsmanager", "describe-secret", "--secret-id", "app/db"])
        .await
        .expect_err("gone");
    assert!(
        err.contains("(ResourceNotFoundException)")
            && err.contains("Secrets Manager can't find the specified secret."),
        "{err}"
    );
    gw.stop().await;
}
