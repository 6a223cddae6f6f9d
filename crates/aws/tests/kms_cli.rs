//! KMS through the real aws CLI against the gateway on 127.0.0.1:0: create-key, aliases, and an
//! encrypt/decrypt round trip with binary blobs passed as `fileb://`.

mod support;

use support::Gw;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_key_encrypt_decrypt_round_trip() {
    let gw = Gw::start().await;
    let key = gw
        .aws(&["kms", "create-key", "--description", "cli test"])
        .await
        .expect("create-key");
    let key_id = key["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("key id")
        .to_string();
    assert_eq!(key["KeyMetadata"]["KeyState"], "Enabled");
    assert_eq!(key["KeyMetadata"]["KeySpec"], "SYMMETRIC_DEFAULT");
    gw.aws(&[
        "kms",
        "create-alias",
        "--alias-name",
        "alias/cli",
        "--target-key-id",
        &key_id,
    ])
    .await
    .expect("create-alias");

    let dir = std::env::temp_dir().join(format!("skiff-kms-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let plain = dir.join("plain.bin");
    let secret: Vec<u8> = (0u8..=255).collect();
    std::fs::write(&plain, &secret).expect("write plaintext");
    let enc = gw
        .aws(&[
            "kms",
            "encrypt",
            "--key-id",
            "alias/cli",
            "--plaintext",
            &format!("fileb://{}", plain.display()),
            "--encryption-context",
            "purpose=test",
        ])
        .await
        .expect("encrypt");
    assert!(enc["KeyId"].as_str().expect("arn").ends_with(&key_id));
    // The CLI prints the blob base64; hand it back as raw bytes, as users do.
    use base64::Engine;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(enc["CiphertextBlob"].as_str().expect("blob"))
        .expect("base64");
    let blob_file = dir.join("blob.bin");
    std::fs::write(&blob_file, &blob).expect("write blob");
    let blob_arg = format!("fileb://{}", blob_file.display());
    let dec = gw
        .aws(&[
            "kms",
            "decrypt",
            "--ciphertext-blob",
            &blob_arg,
            "--encryption-context",
            "purpose=test",
        ])
        .await
        .expect("decrypt");
    let back = base64::engine::general_purpose::STANDARD
        .decode(dec["Plaintext"].as_str().expect("plaintext"))
        .expect("base64");
    assert_eq!(back, secret);
    let err = gw
        .aws(&[
            "kms",
            "decrypt",
            "--ciphertext-blob",
            &blob_arg,
            "--encryption-context",
            "purpose=other",
        ])
        .await
        .expect_err("wrong context refused");
    assert!(err.contains("(InvalidCiphertextException)"), "{err}");

    gw.aws(&["kms", "disable-key", "--key-id", &key_id])
        .await
        .expect("disable");
    let err = gw
        .aws(&[
            "kms",
            "decrypt",
            "--ciphertext-blob",
            &blob_arg,
            "--encryption-context",
            "purpose=test",
        ])
        .await
        .expect_err("disabled key refused");
    assert!(err.contains("(DisabledException)"), "{err}");
    let del = gw
        .aws(&[
            "kms",
            "schedule-key-deletion",
            "--key-id",
            &key_id,
            "--pending-window-in-days",
            "7",
        ])
        .await
        .expect("schedule-key-deletion");
    assert_eq!(del["KeyState"], "PendingDeletion");
    let aliases = gw
        .aws(&["kms", "list-aliases"])
        .await
        .expect("list-aliases");
    assert_eq!(aliases["Aliases"][0]["AliasName"], "alias/cli");
    let _ = std::fs::remove_dir_all(&dir);
    gw.stop().await;
}
