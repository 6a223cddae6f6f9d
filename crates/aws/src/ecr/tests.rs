//! ECR through its operation table on an in-memory store.

use serde_json::{Value, json};

use crate::context::RequestContext;
use crate::iam::test_support::root_ctx;

async fn ecr(
    ctx: &RequestContext,
    op: &str,
    input: Value,
) -> Result<Value, skiff_aws_model::AwsError> {
    super::dispatch(ctx, op, input).await
}

fn manifest(n: u32) -> String {
    json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
           "config": {"size": 10, "digest": format!("sha256:{:064x}", n)},
           "layers": [{"size": 100, "digest": format!("sha256:{:064x}", n + 1)}]})
    .to_string()
}

#[tokio::test]
async fn repositories_create_describe_delete() {
    let ctx = root_ctx();
    let r = ecr(
        &ctx,
        "CreateRepository",
        json!({"repositoryName": "team/app"}),
    )
    .await
    .unwrap();
    assert_eq!(
        r["repository"]["repositoryUri"],
        "000000000000.dkr.ecr.us-east-1.amazonaws.com/team/app"
    );
    let err = ecr(
        &ctx,
        "CreateRepository",
        json!({"repositoryName": "team/app"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "RepositoryAlreadyExistsException");
    let err = ecr(
        &ctx,
        "DescribeRepositories",
        json!({"repositoryNames": ["nope"]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "RepositoryNotFoundException");
    ecr(
        &ctx,
        "PutImage",
        json!({"repositoryName": "team/app", "imageManifest": manifest(1), "imageTag": "v1"}),
    )
    .await
    .unwrap();
    let err = ecr(
        &ctx,
        "DeleteRepository",
        json!({"repositoryName": "team/app"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "RepositoryNotEmptyException");
    ecr(
        &ctx,
        "DeleteRepository",
        json!({"repositoryName": "team/app", "force": true}),
    )
    .await
    .unwrap();
    assert_eq!(
        ecr(&ctx, "DescribeRepositories", json!({})).await.unwrap()["repositories"],
        json!([])
    );
}

#[tokio::test]
async fn tags_move_when_mutable_and_are_refused_when_immutable() {
    let ctx = root_ctx();
    ecr(&ctx, "CreateRepository", json!({"repositoryName": "app"}))
        .await
        .unwrap();
    let m1 = manifest(1);
    let p = ecr(
        &ctx,
        "PutImage",
        json!({"repositoryName": "app", "imageManifest": m1, "imageTag": "latest"}),
    )
    .await
    .unwrap();
    assert_eq!(
        p["image"]["imageId"]["imageDigest"],
        super::images::digest_of(m1.as_bytes())
    );
    let err = ecr(
        &ctx,
        "PutImage",
        json!({"repositoryName": "app", "imageManifest": m1, "imageTag": "latest"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "ImageAlreadyExistsException");
    ecr(
        &ctx,
        "PutImage",
        json!({"repositoryName": "app", "imageManifest": manifest(5), "imageTag": "latest"}),
    )
    .await
    .unwrap();
    let untagged = ecr(
        &ctx,
        "ListImages",
        json!({"repositoryName": "app", "filter": {"tagStatus": "UNTAGGED"}}),
    )
    .await
    .unwrap();
    assert_eq!(
        untagged["imageIds"],
        json!([{"imageDigest": super::images::digest_of(m1.as_bytes())}])
    );
    ecr(
        &ctx,
        "PutImageTagMutability",
        json!({"repositoryName": "app", "imageTagMutability": "IMMUTABLE"}),
    )
    .await
    .unwrap();
    let err = ecr(
        &ctx,
        "PutImage",
        json!({"repositoryName": "app", "imageManifest": manifest(9), "imageTag": "latest"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "ImageTagAlreadyExistsException");
    let d = ecr(
        &ctx,
        "DescribeImages",
        json!({"repositoryName": "app", "imageIds": [{"imageTag": "latest"}]}),
    )
    .await
    .unwrap();
    assert_eq!(d["imageDetails"][0]["imageSizeInBytes"], 110);
    let err = ecr(
        &ctx,
        "DescribeImages",
        json!({"repositoryName": "app", "imageIds": [{"imageTag": "nope"}]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "ImageNotFoundException");
}

#[tokio::test]
async fn batch_get_delete_and_paging() {
    let ctx = root_ctx();
    ecr(&ctx, "CreateRepository", json!({"repositoryName": "app"}))
        .await
        .unwrap();
    for (n, tag) in [(1, "a"), (3, "b"), (5, "c")] {
        ecr(
            &ctx,
            "PutImage",
            json!({"repositoryName": "app", "imageManifest": manifest(n), "imageTag": tag}),
        )
        .await
        .unwrap();
    }
    let g = ecr(
        &ctx,
        "BatchGetImage",
        json!({"repositoryName": "app", "imageIds": [{"imageTag": "a"}, {"imageTag": "zz"}]}),
    )
    .await
    .unwrap();
    assert_eq!(g["images"][0]["imageManifest"], manifest(1));
    assert_eq!(g["failures"][0]["failureCode"], "ImageNotFound");
    let p1 = ecr(
        &ctx,
        "ListImages",
        json!({"repositoryName": "app", "maxResults": 2}),
    )
    .await
    .unwrap();
    assert_eq!(p1["imageIds"].as_array().unwrap().len(), 2);
    let p2 = ecr(
        &ctx,
        "ListImages",
        json!({"repositoryName": "app", "maxResults": 2, "nextToken": p1["nextToken"]}),
    )
    .await
    .unwrap();
    assert_eq!(p2["imageIds"].as_array().unwrap().len(), 1);
    let d = ecr(
        &ctx,
        "BatchDeleteImage",
        json!({"repositoryName": "app", "imageIds": [{"imageTag": "a"}, {"imageTag": "nope"}]}),
    )
    .await
    .unwrap();
    assert_eq!(d["imageIds"][0]["imageTag"], "a");
    assert_eq!(
        d["failures"][0]["failureReason"],
        "Requested image not found"
    );
    assert_eq!(
        ecr(&ctx, "ListImages", json!({"repositoryName": "app"}))
            .await
            .unwrap()["imageIds"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn policies_tags_and_auth() {
    let ctx = root_ctx();
    let r = ecr(
        &ctx,
        "CreateRepository",
        json!({"repositoryName": "app", "tags": [{"Key": "a", "Value": "1"}]}),
    )
    .await
    .unwrap();
    let arn = r["repository"]["repositoryArn"].clone();
    let err = ecr(&ctx, "GetLifecyclePolicy", json!({"repositoryName": "app"}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "LifecyclePolicyNotFoundException");
    let bad = json!({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan"}, "action": {"type": "expire"}}]}).to_string();
    let err = ecr(
        &ctx,
        "PutLifecyclePolicy",
        json!({"repositoryName": "app", "lifecyclePolicyText": bad}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "InvalidParameterException");
    let good = json!({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14}, "action": {"type": "expire"}}]}).to_string();
    ecr(
        &ctx,
        "PutLifecyclePolicy",
        json!({"repositoryName": "app", "lifecyclePolicyText": good}),
    )
    .await
    .unwrap();
    assert_eq!(
        ecr(&ctx, "GetLifecyclePolicy", json!({"repositoryName": "app"}))
            .await
            .unwrap()["lifecyclePolicyText"],
        good.as_str()
    );
    let err = ecr(
        &ctx,
        "SetRepositoryPolicy",
        json!({"repositoryName": "app", "policyText": "nope"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "InvalidParameterException");
    ecr(
        &ctx,
        "TagResource",
        json!({"resourceArn": arn, "tags": [{"Key": "b", "Value": "2"}]}),
    )
    .await
    .unwrap();
    ecr(
        &ctx,
        "UntagResource",
        json!({"resourceArn": arn, "tagKeys": ["a"]}),
    )
    .await
    .unwrap();
    assert_eq!(
        ecr(&ctx, "ListTagsForResource", json!({"resourceArn": arn}))
            .await
            .unwrap()["tags"],
        json!([{"Key": "b", "Value": "2"}])
    );
    let t = ecr(&ctx, "GetAuthorizationToken", json!({})).await.unwrap();
    let data = &t["authorizationData"][0];
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data["authorizationToken"].as_str().unwrap())
        .unwrap();
    let text = String::from_utf8(decoded).unwrap();
    let password = text.strip_prefix("AWS:").unwrap();
    assert_eq!(
        data["proxyEndpoint"],
        "https://000000000000.dkr.ecr.us-east-1.amazonaws.com"
    );
    assert!(
        super::auth::verify_token(&ctx, password)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        super::auth::verify_token(&ctx, "forged")
            .await
            .unwrap()
            .is_none()
    );
}
