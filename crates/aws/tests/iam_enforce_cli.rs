//! `--enforce-iam` with the real aws CLI: a user's calls are judged by their policies, root's never.

mod support;

use skiff_aws::gateway::GatewayConfig;
use support::{Gw, s};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_iam_judges_users_by_their_policies() {
    let g = Gw::start_with(GatewayConfig {
        enforce_iam: true,
        ..GatewayConfig::default()
    })
    .await;
    g.ok(&["iam", "create-user", "--user-name", "alice"]).await;
    let key = g
        .ok(&["iam", "create-access-key", "--user-name", "alice"])
        .await;
    let id = s(&key["AccessKey"]["AccessKeyId"]);
    let secret = s(&key["AccessKey"]["SecretAccessKey"]);
    let alice = (id.as_str(), secret.as_str());

    // No policy: refused in each protocol family's own words; nothing is created.
    let e = g
        .aws_as(alice, &["ec2", "create-vpc", "--cidr-block", "10.0.0.0/16"])
        .await
        .expect_err("no policy allows ec2:CreateVpc");
    assert!(e.contains("UnauthorizedOperation"), "{e}");
    assert!(
        e.contains("is not authorized to perform: ec2:CreateVpc"),
        "{e}"
    );
    let vpcs = g.ok(&["ec2", "describe-vpcs"]).await;
    assert_eq!(
        vpcs["Vpcs"].as_array().map(Vec::len),
        Some(1),
        "only the default VPC"
    );
    let e = g
        .aws_as(alice, &["iam", "create-role", "--role-name", "r", "--assume-role-policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#])
        .await
        .expect_err("no policy allows iam:CreateRole");
    assert!(e.contains("AccessDenied"), "{e}");
    assert!(e.contains("arn:aws:iam::000000000000:role/r"), "{e}");
    let e = g
        .aws_as(alice, &["eks", "list-clusters"])
        .await
        .expect_err("no policy allows eks:ListClusters");
    assert!(e.contains("AccessDeniedException"), "{e}");
    // GetCallerIdentity needs no permission.
    let who = g
        .aws_as(alice, &["sts", "get-caller-identity"])
        .await
        .expect("always allowed");
    assert_eq!(s(&who["Arn"]), "arn:aws:iam::000000000000:user/alice");

    // A policy allowing EC2 describes and VPC creation, denying one VPC's deletion.
    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":["ec2:CreateVpc","ec2:Describe*","ec2:DeleteVpc"],"Resource":"*"},
        {"Effect":"Deny","Action":"ec2:DeleteVpc","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"}}}]}"#;
    g.ok(&[
        "iam",
        "put-user-policy",
        "--user-name",
        "alice",
        "--policy-name",
        "ec2",
        "--policy-document",
        policy,
    ])
    .await;
    let vpc = g
        .aws_as(alice, &["ec2", "create-vpc", "--cidr-block", "10.1.0.0/16"])
        .await
        .expect("allowed now");
    let vpc_id = s(&vpc["Vpc"]["VpcId"]);
    let e = g
        .aws_as(alice, &["ec2", "delete-vpc", "--vpc-id", &vpc_id])
        .await
        .expect_err("explicit deny wins");
    assert!(e.contains("with an explicit deny"), "{e}");
    assert!(e.contains(&format!("vpc/{vpc_id}")), "{e}");
    // Root is never judged.
    g.ok(&["ec2", "delete-vpc", "--vpc-id", &vpc_id]).await;
    g.stop().await;
}
