//! `eks-auth:AssumeRoleForPodIdentity` through boto3 (`boto3.client("eks-auth")`) against the
//! gateway: a cluster record whose OIDC issuer has published keys (as its control plane does), a Pod
//! Identity association, ServiceAccount tokens signed with the issuer's key; the credentials it hands
//! out then sign `sts get-caller-identity` as the assumed role. Refusals: wrong audience, expired,
//! forged, another issuer, no association, a role that does not trust `pods.eks.amazonaws.com`,
//! unknown cluster.

mod support;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use serde_json::{Value, json};
use support::{Gw, network, s};

const EKS_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const POD_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"],"Condition":{"StringEquals":{"aws:RequestTag/kubernetes-namespace":"default"}}}]}"#;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

struct Signer(KeyPair);

impl Signer {
    fn new() -> Self {
        Signer(KeyPair::generate(KeySize::Rsa2048).expect("rsa key"))
    }
    fn jwks(&self) -> Value {
        let pk = self.0.public_key();
        json!({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "k1",
            "n": b64(pk.modulus().big_endian_without_leading_zero()),
            "e": b64(pk.exponent().big_endian_without_leading_zero())}]})
    }
    fn token(&self, claims: &Value) -> String {
        let head = b64(json!({"alg": "RS256", "kid": "k1"}).to_string().as_bytes());
        let msg = format!("{head}.{}", b64(claims.to_string().as_bytes()));
        let mut sig = vec![0u8; self.0.public_modulus_len()];
        self.0
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                msg.as_bytes(),
                &mut sig,
            )
            .expect("sign");
        format!("{msg}.{}", b64(&sig))
    }
}

/// A projected pod identity token's claims, as the API server writes them.
fn claims(issuer: &str, ns: &str, sa: &str, aud: &str, exp_in: i64) -> Value {
    let now = jiff::Timestamp::now().as_second();
    json!({"iss": issuer, "sub": format!("system:serviceaccount:{ns}:{sa}"), "aud": [aud],
           "iat": now, "nbf": now, "exp": now + exp_in,
           "kubernetes.io": {"namespace": ns, "pod": {"name": "web-7d9f", "uid": "0b1c"},
                             "serviceaccount": {"name": sa, "uid": "5e6f"}}})
}

/// Each (cluster, token) through boto3's eks-auth client: the response, or `{"error": code}`.
async fn boto3(url: &str, calls: &[(&str, String)]) -> Vec<Value> {
    const SCRIPT: &str = r#"
import json, sys, boto3, botocore
calls = json.load(sys.stdin)
c = boto3.client("eks-auth", endpoint_url=sys.argv[1], region_name="us-east-1",
                 aws_access_key_id="test", aws_secret_access_key="test",
                 config=botocore.config.Config(retries={"max_attempts": 1}))
out = []
for cluster, token in calls:
    try:
        r = c.assume_role_for_pod_identity(clusterName=cluster, token=token)
        r.pop("ResponseMetadata", None)
        r["credentials"]["expiration"] = r["credentials"]["expiration"].isoformat()
        out.append(r)
    except botocore.exceptions.ClientError as e:
        out.append({"error": e.response["Error"]["Code"], "message": e.response["Error"].get("Message", ""),
                    "status": e.response["ResponseMetadata"]["HTTPStatusCode"]})
print(json.dumps(out))
"#;
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("python3")
        .args(["-c", SCRIPT, url])
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let input = serde_json::to_vec(&calls).unwrap();
    child.stdin.take().unwrap().write_all(&input).await.unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "boto3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json from the script")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_identity_tokens_become_role_credentials() {
    let g = Gw::start().await;
    let cluster_role = s(&g
        .ok(&[
            "iam",
            "create-role",
            "--role-name",
            "eks-cluster",
            "--assume-role-policy-document",
            EKS_TRUST,
        ])
        .await["Role"]["Arn"]);
    let app_role = s(&g
        .ok(&[
            "iam",
            "create-role",
            "--role-name",
            "app-s3",
            "--assume-role-policy-document",
            POD_TRUST,
        ])
        .await["Role"]["Arn"]);
    let (_, subnets) = network(&g).await;
    g.ok(&[
        "eks",
        "create-cluster",
        "--name",
        "prod",
        "--role-arn",
        &cluster_role,
        "--resources-vpc-config",
        &format!("subnetIds={},{}", subnets[0], subnets[1]),
    ])
    .await;
    let cluster = g.ok(&["eks", "describe-cluster", "--name", "prod"]).await;
    let issuer = s(&cluster["cluster"]["identity"]["oidc"]["issuer"]);
    let signer = Signer::new();
    // What the cluster's control plane does when it starts.
    skiff_aws::sts::register_oidc_issuer_keys(&*g._store, &issuer, signer.jwks())
        .await
        .expect("keys published");
    let assoc = g
        .ok(&[
            "eks",
            "create-pod-identity-association",
            "--cluster-name",
            "prod",
            "--namespace",
            "default",
            "--service-account",
            "app",
            "--role-arn",
            &app_role,
        ])
        .await;
    // An association in another namespace whose role's trust condition (namespace default) fails.
    g.ok(&[
        "eks",
        "create-pod-identity-association",
        "--cluster-name",
        "prod",
        "--namespace",
        "batch",
        "--service-account",
        "app",
        "--role-arn",
        &app_role,
    ])
    .await;

    let good = signer.token(&claims(
        &issuer,
        "default",
        "app",
        "pods.eks.amazonaws.com",
        600,
    ));
    let calls = vec![
        ("prod", good.clone()),
        (
            "prod",
            signer.token(&claims(&issuer, "default", "app", "sts.amazonaws.com", 600)),
        ),
        (
            "prod",
            signer.token(&claims(
                &issuer,
                "default",
                "app",
                "pods.eks.amazonaws.com",
                -60,
            )),
        ),
        (
            "prod",
            Signer::new().token(&claims(
                &issuer,
                "default",
                "app",
                "pods.eks.amazonaws.com",
                600,
            )),
        ),
        (
            "prod",
            signer.token(&claims(
                "https://oidc.eks.us-east-1.amazonaws.com/id/OTHER",
                "default",
                "app",
                "pods.eks.amazonaws.com",
                600,
            )),
        ),
        (
            "prod",
            signer.token(&claims(
                &issuer,
                "default",
                "other",
                "pods.eks.amazonaws.com",
                600,
            )),
        ),
        (
            "prod",
            signer.token(&claims(
                &issuer,
                "batch",
                "app",
                "pods.eks.amazonaws.com",
                600,
            )),
        ),
        ("nope", good.clone()),
    ];
    let out = boto3(&g.url(), &calls).await;

    let ok = &out[0];
    assert_eq!(
        ok["subject"],
        json!({"namespace": "default", "serviceAccount": "app"})
    );
    assert_eq!(ok["audience"], "pods.eks.amazonaws.com");
    assert_eq!(
        ok["podIdentityAssociation"]["associationArn"],
        assoc["association"]["associationArn"]
    );
    assert_eq!(
        ok["podIdentityAssociation"]["associationId"],
        assoc["association"]["associationId"]
    );
    let arn = s(&ok["assumedRoleUser"]["arn"]);
    assert!(
        arn.starts_with("arn:aws:sts::000000000000:assumed-role/app-s3/eks-prod-web-7d9f-"),
        "{arn}"
    );
    assert!(s(&ok["assumedRoleUser"]["assumeRoleId"]).starts_with("AROA"));
    let creds = &ok["credentials"];
    assert!(s(&creds["accessKeyId"]).starts_with("ASIA"));

    let code = |i: usize| {
        (
            out[i]["error"].as_str().unwrap_or("(none)").to_string(),
            out[i]["status"].as_i64().unwrap_or(0),
        )
    };
    assert_eq!(
        code(1),
        ("InvalidTokenException".into(), 400),
        "wrong audience: {}",
        out[1]
    );
    assert_eq!(
        code(2),
        ("ExpiredTokenException".into(), 400),
        "expired: {}",
        out[2]
    );
    assert_eq!(
        code(3),
        ("InvalidTokenException".into(), 400),
        "forged: {}",
        out[3]
    );
    assert_eq!(
        code(4),
        ("InvalidTokenException".into(), 400),
        "other issuer: {}",
        out[4]
    );
    assert_eq!(
        code(5),
        ("ResourceNotFoundException".into(), 404),
        "no association: {}",
        out[5]
    );
    assert_eq!(
        code(6),
        ("AccessDeniedException".into(), 400),
        "trust condition: {}",
        out[6]
    );
    assert_eq!(
        code(7),
        ("ResourceNotFoundException".into(), 404),
        "no cluster: {}",
        out[7]
    );

    // The credentials sign like any STS session.
    let who = g
        .aws_session(
            (
                &s(&creds["accessKeyId"]),
                &s(&creds["secretAccessKey"]),
                Some(&s(&creds["sessionToken"])),
            ),
            &["sts", "get-caller-identity"],
        )
        .await
        .expect("the pod identity credentials sign");
    assert_eq!(s(&who["Arn"]), arn);
    g.stop().await;
}
