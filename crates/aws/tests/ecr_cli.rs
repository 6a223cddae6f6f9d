//! ECR through the real aws CLI against the gateway on 127.0.0.1:0: an IMMUTABLE repository refuses
//! a second push of the same tag, images list and describe, authorization tokens.

mod support;

use support::Gw;

const MANIFEST_1: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7023,"digest":"sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":32654,"digest":"sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f"}]}"#;
const MANIFEST_2: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7000,"digest":"sha256:a5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"},"layers":[]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immutable_repository_refuses_a_second_push() {
    let gw = Gw::start().await;
    let repo = gw
        .aws(&[
            "ecr",
            "create-repository",
            "--repository-name",
            "team/app",
            "--image-tag-mutability",
            "IMMUTABLE",
        ])
        .await
        .expect("create-repository");
    assert_eq!(
        repo["repository"]["repositoryUri"],
        "000000000000.dkr.ecr.us-east-1.amazonaws.com/team/app"
    );
    assert_eq!(repo["repository"]["imageTagMutability"], "IMMUTABLE");
    let pushed = gw
        .aws(&[
            "ecr",
            "put-image",
            "--repository-name",
            "team/app",
            "--image-tag",
            "v1",
            "--image-manifest",
            MANIFEST_1,
        ])
        .await
        .expect("put-image");
    let digest = pushed["image"]["imageId"]["imageDigest"]
        .as_str()
        .expect("digest")
        .to_string();
    use sha2::Digest;
    assert_eq!(
        digest,
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(MANIFEST_1)))
    );
    let err = gw
        .aws(&[
            "ecr",
            "put-image",
            "--repository-name",
            "team/app",
            "--image-tag",
            "v1",
            "--image-manifest",
            MANIFEST_2,
        ])
        .await
        .expect_err("second push refused");
    assert!(err.contains("(ImageTagAlreadyExistsException)"), "{err}");

    let images = gw
        .aws(&["ecr", "list-images", "--repository-name", "team/app"])
        .await
        .expect("list-images");
    assert_eq!(
        images["imageIds"],
        serde_json::json!([{"imageDigest": digest, "imageTag": "v1"}])
    );
    let described = gw
        .aws(&["ecr", "describe-images", "--repository-name", "team/app"])
        .await
        .expect("describe-images");
    assert_eq!(
        described["imageDetails"][0]["imageSizeInBytes"],
        7023 + 32654
    );
    let err = gw
        .aws(&["ecr", "delete-repository", "--repository-name", "team/app"])
        .await
        .expect_err("not empty");
    assert!(err.contains("(RepositoryNotEmptyException)"), "{err}");
    let token = gw
        .aws(&["ecr", "get-authorization-token"])
        .await
        .expect("token");
    assert_eq!(
        token["authorizationData"][0]["proxyEndpoint"],
        "https://000000000000.dkr.ecr.us-east-1.amazonaws.com"
    );
    gw.aws(&[
        "ecr",
        "delete-repository",
        "--repository-name",
        "team/app",
        "--force",
    ])
    .await
    .expect("force delete");
    let err = gw
        .aws(&[
            "ecr",
            "describe-repositories",
            "--repository-names",
            "team/app",
        ])
        .await
        .expect_err("gone");
    assert!(err.contains("(RepositoryNotFoundException)"), "{err}");
    gw.stop().await;
}
