//! STS through boto3 against the gateway on 127.0.0.1:0: IRSA's AssumeRoleWithWebIdentity (an
//! unsigned call carrying a JWT that Skiff verifies against the issuer keys registered in the
//! store), GetSessionToken, and the issued credentials signing further calls.

use std::path::PathBuf;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use serde_json::{Value, json};
use skiff_aws::gateway::{self, GatewayConfig, RunningGateway};
use skiff_store::Store;

const ISSUER: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/TESTCLUSTER";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A service-account token as a cluster's issuer would sign it.
fn token(key: &KeyPair, sub: &str) -> String {
    let now = jiff::Timestamp::now().as_second();
    let head = b64(json!({"alg": "RS256", "kid": "sa-key"})
        .to_string()
        .as_bytes());
    let body = b64(json!({"iss": ISSUER, "sub": sub, "aud": ["sts.amazonaws.com"], "iat": now, "exp": now + 600})
        .to_string()
        .as_bytes());
    let msg = format!("{head}.{body}");
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        msg.as_bytes(),
        &mut sig,
    )
    .expect("sign");
    format!("{msg}.{}", b64(&sig))
}

fn jwks(key: &KeyPair) -> Value {
    let pk = key.public_key();
    json!({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "sa-key",
        "n": b64(pk.modulus().big_endian_without_leading_zero()),
        "e": b64(pk.exponent().big_endian_without_leading_zero())}]})
}

const SCRIPT: &str = r#"
import json, os, sys
import boto3, botocore
from botocore.config import Config
url = os.environ["SKIFF_URL"]
cfg = Config(retries={"max_attempts": 1})
def client(svc, **creds):
    return boto3.client(svc, endpoint_url=url, region_name="us-east-1", config=cfg,
                        aws_access_key_id=creds.get("id", "test"),
                        aws_secret_access_key=creds.get("secret", "test"),
                        aws_session_token=creds.get("token"))
iam, sts = client("iam"), client("sts")
out = {}
prov = iam.create_open_id_connect_provider(Url=os.environ["ISSUER"], ClientIDList=["sts.amazonaws.com"])
arn = prov["OpenIDConnectProviderArn"]
host = os.environ["ISSUER"][len("https://"):]
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Federated": arn},
         "Action": "sts:AssumeRoleWithWebIdentity",
         "Condition": {"StringEquals": {host + ":sub": "system:serviceaccount:kube-system:ebs-csi-controller-sa",
                                        host + ":aud": "sts.amazonaws.com"}}}]}
iam.create_role(RoleName="ebs-csi", AssumeRolePolicyDocument=json.dumps(trust))
iam.attach_role_policy(RoleName="ebs-csi", PolicyArn="arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy")
role_arn = "arn:aws:iam::000000000000:role/ebs-csi"
r = sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="pod-1", WebIdentityToken=os.environ["GOOD"])
out["web"] = {"arn": r["AssumedRoleUser"]["Arn"], "sub": r["SubjectFromWebIdentityToken"], "aud": r["Audience"]}
c = r["Credentials"]
me = client("sts", id=c["AccessKeyId"], secret=c["SecretAccessKey"], token=c["SessionToken"]).get_caller_identity()
out["web_identity"] = me["Arn"]
try:
    sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="pod-2", WebIdentityToken=os.environ["OTHER_SA"])
    out["other_sa"] = "allowed"
except botocore.exceptions.ClientError as e:
    out["other_sa"] = e.response["Error"]["Code"]
try:
    sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="pod-3", WebIdentityToken="garbage")
    out["garbage"] = "allowed"
except botocore.exceptions.ClientError as e:
    out["garbage"] = e.response["Error"]["Code"]
iam.create_user(UserName="bob")
k = iam.create_access_key(UserName="bob")["AccessKey"]
t = client("sts", id=k["AccessKeyId"], secret=k["SecretAccessKey"]).get_session_token(DurationSeconds=900)["Credentials"]
out["session_token"] = client("sts", id=t["AccessKeyId"], secret=t["SecretAccessKey"], token=t["SessionToken"]).get_caller_identity()["Arn"]
print(json.dumps(out))
"#;

struct Gw {
    gw: RunningGateway,
    store: Arc<dyn Store>,
    dir: PathBuf,
}

async fn start() -> Gw {
    let dir = std::env::temp_dir().join(format!("skiff-sts-cli-{}", uuid::Uuid::new_v4()));
    let store = skiff_store::open("embedded", &dir).await.expect("store");
    let cfg = GatewayConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        ..GatewayConfig::default()
    };
    let gw = gateway::serve(store.clone(), cfg).await.expect("gateway");
    Gw { gw, store, dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_web_identity_and_session_tokens() {
    let g = start().await;
    let key = KeyPair::generate(KeySize::Rsa2048).expect("rsa key");
    skiff_aws::sts::register_oidc_issuer_keys(&*g.store, ISSUER, jwks(&key))
        .await
        .expect("register keys");
    let out = tokio::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .env("SKIFF_URL", format!("http://{}", g.gw.local_addr))
        .env("ISSUER", ISSUER)
        .env(
            "GOOD",
            token(
                &key,
                "system:serviceaccount:kube-system:ebs-csi-controller-sa",
            ),
        )
        .env("OTHER_SA", token(&key, "system:serviceaccount:default:app"))
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .await
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "boto3 script failed: {stderr}");
    let r: Value = serde_json::from_slice(&out.stdout).expect("script prints JSON");
    assert_eq!(
        r["web"]["arn"],
        "arn:aws:sts::000000000000:assumed-role/ebs-csi/pod-1"
    );
    assert_eq!(
        r["web"]["sub"],
        "system:serviceaccount:kube-system:ebs-csi-controller-sa"
    );
    assert_eq!(r["web"]["aud"], "sts.amazonaws.com");
    assert_eq!(
        r["web_identity"],
        "arn:aws:sts::000000000000:assumed-role/ebs-csi/pod-1"
    );
    assert_eq!(r["other_sa"], "AccessDenied");
    assert_eq!(r["garbage"], "InvalidIdentityToken");
    assert_eq!(r["session_token"], "arn:aws:iam::000000000000:user/bob");
    g.gw.shutdown().await.expect("shutdown");
    let _ = std::fs::remove_dir_all(&g.dir);
}
