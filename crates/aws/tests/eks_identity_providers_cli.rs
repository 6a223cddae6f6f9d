//! EKS OIDC identity provider configs through the real aws CLI: associate (validated, one per cluster,
//! recorded as a cluster update), describe, list, disassociate, and gone with the cluster.

mod support;

use support::{Gw, network, s};

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// `aws eks associate-identity-provider-config` for cluster `idp`.
async fn associate(g: &Gw, issuer: &str, name: &str) -> Result<serde_json::Value, String> {
    let oidc = format!(
        "identityProviderConfigName={name},issuerUrl={issuer},clientId=kubernetes,usernameClaim=email,groupsClaim=groups,groupsPrefix=oidc:"
    );
    g.aws(&[
        "eks",
        "associate-identity-provider-config",
        "--cluster-name",
        "idp",
        "--oidc",
        &oidc,
        "--tags",
        "team=auth",
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_identity_provider_configs() {
    let g = Gw::start().await;
    let role = s(&g
        .ok(&[
            "iam",
            "create-role",
            "--role-name",
            "eks",
            "--assume-role-policy-document",
            TRUST,
        ])
        .await["Role"]["Arn"]);
    let (_, subnets) = network(&g).await;
    g.ok(&[
        "eks",
        "create-cluster",
        "--name",
        "idp",
        "--role-arn",
        &role,
        "--resources-vpc-config",
        &format!("subnetIds={},{}", subnets[0], subnets[1]),
    ])
    .await;
    // A cluster that is not ACTIVE yet refuses.
    let e = associate(&g, "https://dex.example.com", "dex")
        .await
        .unwrap_err();
    assert!(e.contains("(ResourceInUseException)"), "{e}");
    skiff_aws::eks::set_cluster_active(
        &*g._store,
        "000000000000",
        "us-east-1",
        "idp",
        "https://127.0.0.1:6443",
        "LS0tLS1CRUdJTg==",
    )
    .await
    .unwrap();
    let e = associate(&g, "http://dex.example.com", "dex")
        .await
        .unwrap_err();
    assert!(
        e.contains("(InvalidParameterException)") && e.contains("https"),
        "{e}"
    );
    let out = associate(&g, "https://dex.example.com", "dex")
        .await
        .unwrap();
    assert_eq!(out["update"]["type"], "AssociateIdentityProviderConfig");
    assert_eq!(out["tags"]["team"], "auth");
    let update_id = s(&out["update"]["id"]);
    let e = associate(&g, "https://other.example.com", "other")
        .await
        .unwrap_err();
    assert!(e.contains("(ResourceInUseException)"), "{e}");

    let d = g
        .ok(&[
            "eks",
            "describe-identity-provider-config",
            "--cluster-name",
            "idp",
            "--identity-provider-config",
            "type=oidc,name=dex",
        ])
        .await;
    let oidc = &d["identityProviderConfig"]["oidc"];
    assert_eq!(oidc["issuerUrl"], "https://dex.example.com");
    assert_eq!(oidc["usernameClaim"], "email");
    assert_eq!(oidc["groupsPrefix"], "oidc:");
    assert_eq!(oidc["status"], "ACTIVE");
    assert!(
        s(&oidc["identityProviderConfigArn"])
            .starts_with("arn:aws:eks:us-east-1:000000000000:identityproviderconfig/idp/oidc/dex/")
    );
    let l = g
        .ok(&[
            "eks",
            "list-identity-provider-configs",
            "--cluster-name",
            "idp",
        ])
        .await;
    assert_eq!(
        l["identityProviderConfigs"],
        serde_json::json!([{"type": "oidc", "name": "dex"}])
    );
    let u = g
        .ok(&[
            "eks",
            "describe-update",
            "--name",
            "idp",
            "--update-id",
            &update_id,
        ])
        .await;
    assert_eq!(u["update"]["status"], "Successful");

    let e = g
        .err(&[
            "eks",
            "describe-identity-provider-config",
            "--cluster-name",
            "idp",
            "--identity-provider-config",
            "type=oidc,name=missing",
        ])
        .await;
    assert!(e.contains("(ResourceNotFoundException)"), "{e}");
    g.ok(&[
        "eks",
        "disassociate-identity-provider-config",
        "--cluster-name",
        "idp",
        "--identity-provider-config",
        "type=oidc,name=dex",
    ])
    .await;
    let l = g
        .ok(&[
            "eks",
            "list-identity-provider-configs",
            "--cluster-name",
            "idp",
        ])
        .await;
    assert_eq!(l["identityProviderConfigs"], serde_json::json!([]));
    g.stop().await;
}
