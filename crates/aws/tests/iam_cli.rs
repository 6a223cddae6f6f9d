//! IAM through the real aws CLI against the gateway on 127.0.0.1:0 (embedded store in a temporary
//! directory): roles with trust policies, AWS managed policies, access keys signing requests,
//! IAM's error codes as the CLI reports them.

mod support;
use support::Gw;

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const ACCOUNT_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_policies_and_conflicts() {
    let gw = Gw::start().await;
    let role = gw
        .aws(&[
            "iam",
            "create-role",
            "--role-name",
            "eks-cluster",
            "--assume-role-policy-document",
            TRUST,
        ])
        .await
        .expect("create-role");
    assert_eq!(
        role["Role"]["Arn"],
        "arn:aws:iam::000000000000:role/eks-cluster"
    );
    // botocore decodes the URL-encoded document back into JSON.
    assert_eq!(
        role["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "eks.amazonaws.com"
    );
    let policy = "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy";
    gw.aws(&[
        "iam",
        "attach-role-policy",
        "--role-name",
        "eks-cluster",
        "--policy-arn",
        policy,
    ])
    .await
    .expect("attach");
    let attached = gw
        .aws(&[
            "iam",
            "list-attached-role-policies",
            "--role-name",
            "eks-cluster",
        ])
        .await
        .expect("list attached");
    assert_eq!(attached["AttachedPolicies"][0]["PolicyArn"], policy);

    // The evaluator behind --enforce-iam, through the API.
    let sim = gw
        .aws(&[
            "iam",
            "simulate-principal-policy",
            "--policy-source-arn",
            "arn:aws:iam::000000000000:role/eks-cluster",
            "--action-names",
            "elasticloadbalancing:CreateLoadBalancer",
            "iam:CreateUser",
        ])
        .await
        .expect("simulate-principal-policy");
    assert_eq!(sim["EvaluationResults"][0]["EvalDecision"], "allowed");
    assert_eq!(sim["EvaluationResults"][1]["EvalDecision"], "implicitDeny");

    let err = gw
        .aws(&["iam", "delete-role", "--role-name", "eks-cluster"])
        .await
        .expect_err("delete-role refused");
    assert!(
        err.contains("(DeleteConflict)") && err.contains("must detach all policies first"),
        "{err}"
    );

    let err = gw
        .aws(&[
            "iam",
            "create-policy",
            "--policy-name",
            "bad",
            "--policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
        ])
        .await
        .expect_err("malformed refused");
    assert!(
        err.contains("(MalformedPolicyDocument)")
            && err.contains("Policy statement must contain actions."),
        "{err}"
    );

    let err = gw
        .aws(&["iam", "get-role", "--role-name", "nope"])
        .await
        .expect_err("missing");
    assert!(
        err.contains("(NoSuchEntity)") && err.contains("The role with name nope cannot be found."),
        "{err}"
    );

    let created = gw
        .aws(&["iam", "create-policy", "--policy-name", "s3-read", "--policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#])
        .await
        .expect("create-policy");
    let arn = created["Policy"]["Arn"].as_str().expect("arn").to_string();
    let version = gw
        .aws(&[
            "iam",
            "get-policy-version",
            "--policy-arn",
            &arn,
            "--version-id",
            "v1",
        ])
        .await
        .expect("get-policy-version");
    assert_eq!(
        version["PolicyVersion"]["Document"]["Statement"][0]["Action"],
        "s3:GetObject"
    );
    let listed = gw
        .aws(&["iam", "list-policies", "--scope", "Local"])
        .await
        .expect("list-policies");
    assert_eq!(listed["Policies"][0]["Arn"], arn.as_str());

    gw.aws(&[
        "iam",
        "detach-role-policy",
        "--role-name",
        "eks-cluster",
        "--policy-arn",
        policy,
    ])
    .await
    .expect("detach");
    gw.aws(&["iam", "delete-role", "--role-name", "eks-cluster"])
        .await
        .expect("delete-role");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_keys_and_assumed_roles_sign_requests() {
    let gw = Gw::start().await;
    gw.aws(&["iam", "create-user", "--user-name", "alice"])
        .await
        .expect("create-user");
    let key = gw
        .aws(&["iam", "create-access-key", "--user-name", "alice"])
        .await
        .expect("create-access-key");
    let id = key["AccessKey"]["AccessKeyId"]
        .as_str()
        .expect("id")
        .to_string();
    let secret = key["AccessKey"]["SecretAccessKey"]
        .as_str()
        .expect("secret")
        .to_string();
    let me = gw
        .aws_session((&id, &secret, None), &["sts", "get-caller-identity"])
        .await
        .expect("caller identity with the user's key");
    assert_eq!(me["Arn"], "arn:aws:iam::000000000000:user/alice");
    assert_eq!(me["Account"], "000000000000");
    assert!(me["UserId"].as_str().expect("user id").starts_with("AIDA"));

    let err = gw
        .aws(&["iam", "delete-user", "--user-name", "alice"])
        .await
        .expect_err("conflict");
    assert!(
        err.contains("(DeleteConflict)") && err.contains("must delete access keys first"),
        "{err}"
    );

    gw.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "admin",
        "--assume-role-policy-document",
        ACCOUNT_TRUST,
    ])
    .await
    .expect("create-role");
    let assumed = gw
        .aws_session(
            (&id, &secret, None),
            &[
                "sts",
                "assume-role",
                "--role-arn",
                "arn:aws:iam::000000000000:role/admin",
                "--role-session-name",
                "ci",
            ],
        )
        .await
        .expect("assume-role as alice (account trust)");
    let c = &assumed["Credentials"];
    let session = (
        c["AccessKeyId"].as_str().expect("id"),
        c["SecretAccessKey"].as_str().expect("secret"),
        Some(c["SessionToken"].as_str().expect("token")),
    );
    let me = gw
        .aws_session(session, &["sts", "get-caller-identity"])
        .await
        .expect("session identity");
    assert_eq!(me["Arn"], "arn:aws:sts::000000000000:assumed-role/admin/ci");
    let roles = gw
        .aws_session(session, &["iam", "list-roles"])
        .await
        .expect("session calls IAM");
    assert_eq!(roles["Roles"][0]["RoleName"], "admin");

    let err = gw
        .aws_session(
            (&id, &secret, None),
            &[
                "sts",
                "assume-role",
                "--role-arn",
                "arn:aws:iam::000000000000:role/missing",
                "--role-session-name",
                "ci",
            ],
        )
        .await
        .expect_err("no such role");
    assert!(err.contains("(AccessDenied)") && err.contains("User: arn:aws:iam::000000000000:user/alice is not authorized to perform: sts:AssumeRole"), "{err}");

    // A deleted key stops signing.
    gw.aws(&[
        "iam",
        "delete-access-key",
        "--user-name",
        "alice",
        "--access-key-id",
        &id,
    ])
    .await
    .expect("delete-access-key");
    assert!(
        gw.aws_session((&id, &secret, None), &["sts", "get-caller-identity"])
            .await
            .is_err()
    );
    gw.aws(&["iam", "delete-user", "--user-name", "alice"])
        .await
        .expect("delete-user");
    gw.stop().await;
}
