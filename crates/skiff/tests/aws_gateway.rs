//! End-to-end: the AWS gateway of `skiff up` with the real aws CLI (issue "AWS gateway").

mod support;

use support::{Skiff, fails, ok};

#[test]
fn caller_identity_vpc_and_subnet_with_the_aws_cli() {
    let skiff = Skiff::start(&[]);
    let who = ok(skiff.aws(&[
        "sts",
        "get-caller-identity",
        "--query",
        "Arn",
        "--output",
        "text",
    ]));
    assert_eq!(who.trim(), "arn:aws:iam::000000000000:root");

    let vpc = ok(skiff.aws(&[
        "ec2",
        "create-vpc",
        "--cidr-block",
        "10.0.0.0/16",
        "--query",
        "Vpc.VpcId",
        "--output",
        "text",
    ]));
    let vpc = vpc.trim();
    assert!(vpc.starts_with("vpc-") && vpc.len() == 21, "{vpc}");
    ok(skiff.aws(&[
        "ec2",
        "create-subnet",
        "--vpc-id",
        vpc,
        "--cidr-block",
        "10.0.1.0/24",
        "--availability-zone",
        "us-east-1a",
    ]));
    let err = fails(skiff.aws(&[
        "ec2",
        "create-subnet",
        "--vpc-id",
        vpc,
        "--cidr-block",
        "10.0.1.0/25",
    ]));
    assert!(err.contains("InvalidSubnet.Conflict"), "{err}");
    let err = fails(skiff.aws(&["ec2", "delete-vpc", "--vpc-id", vpc]));
    assert!(err.contains("DependencyViolation"), "{err}");
}

#[test]
fn wrong_secret_is_refused_with_signature_does_not_match() {
    let skiff = Skiff::start(&[]);
    let out = std::process::Command::new("aws")
        .args(["sts", "get-caller-identity"])
        .env("AWS_ENDPOINT_URL", &skiff.gateway)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "wrong")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    let err = fails(out);
    assert!(err.contains("SignatureDoesNotMatch"), "{err}");
}

#[test]
fn aws_resources_survive_kill_9_and_restart() {
    let mut skiff = Skiff::start(&[]);
    ok(skiff.aws(&["iam", "create-role", "--role-name", "keep-me", "--assume-role-policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#]));
    skiff.kill9();
    let dir = skiff.data_dir.clone();
    let restarted = Skiff::start_in(&dir, &[]);
    let arn = ok(restarted.aws(&[
        "iam",
        "get-role",
        "--role-name",
        "keep-me",
        "--query",
        "Role.Arn",
        "--output",
        "text",
    ]));
    assert_eq!(arn.trim(), "arn:aws:iam::000000000000:role/keep-me");
    drop(skiff);
}
