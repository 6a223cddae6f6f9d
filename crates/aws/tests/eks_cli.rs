//! EKS through the real aws CLI against the gateway on 127.0.0.1:0: create-cluster (and its
//! validation errors as the CLI prints them), describe-cluster reporting exactly what is recorded,
//! list-clusters, create-nodegroup once the (stand-in) EKS layer has marked the cluster ACTIVE,
//! delete-cluster refused while nodegroups remain, then deleted.

mod support;

use support::{Gw, network, s};

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_and_nodegroup_lifecycle() {
    let g = Gw::start().await;
    let role = s(&g
        .ok(&[
            "iam",
            "create-role",
            "--role-name",
            "eks-cluster",
            "--assume-role-policy-document",
            TRUST,
        ])
        .await["Role"]["Arn"]);
    let (_, subnets) = network(&g).await;
    let vpc_cfg = format!("subnetIds={},{}", subnets[0], subnets[1]);

    let e = g
        .err(&[
            "eks",
            "create-cluster",
            "--name",
            "demo",
            "--role-arn",
            &role,
            "--resources-vpc-config",
            &format!("subnetIds={},{}", subnets[0], subnets[2]),
        ])
        .await;
    assert!(
        e.contains("(InvalidParameterException)")
            && e.contains("Subnets specified must be in at least two different AZs"),
        "{e}"
    );
    let e = g
        .err(&[
            "eks",
            "create-cluster",
            "--name",
            "demo",
            "--role-arn",
            "arn:aws:iam::000000000000:role/missing",
            "--resources-vpc-config",
            &vpc_cfg,
        ])
        .await;
    assert!(e.contains("(InvalidParameterException)"), "{e}");

    let c = g
        .ok(&[
            "eks",
            "create-cluster",
            "--name",
            "demo",
            "--role-arn",
            &role,
            "--resources-vpc-config",
            &vpc_cfg,
            "--tags",
            "team=platform",
        ])
        .await;
    assert_eq!(c["cluster"]["status"], "CREATING");
    assert_eq!(
        c["cluster"]["kubernetesNetworkConfig"]["serviceIpv4Cidr"],
        "10.100.0.0/16"
    );
    assert_eq!(
        c["cluster"]["accessConfig"]["authenticationMode"],
        "API_AND_CONFIG_MAP"
    );
    assert!(c["cluster"]["createdAt"].is_string() || c["cluster"]["createdAt"].is_number());
    let sg = s(&c["cluster"]["resourcesVpcConfig"]["clusterSecurityGroupId"]);
    let groups = g
        .ok(&["ec2", "describe-security-groups", "--group-ids", &sg])
        .await;
    assert!(s(&groups["SecurityGroups"][0]["GroupName"]).starts_with("eks-cluster-sg-demo-"));

    let e = g
        .err(&[
            "eks",
            "create-cluster",
            "--name",
            "demo",
            "--role-arn",
            &role,
            "--resources-vpc-config",
            &vpc_cfg,
        ])
        .await;
    assert!(
        e.contains("(ResourceInUseException)")
            && e.contains("Cluster already exists with name: demo"),
        "{e}"
    );

    let d = g.ok(&["eks", "describe-cluster", "--name", "demo"]).await;
    assert_eq!(d["cluster"]["status"], "CREATING", "nothing fakes ACTIVE");
    assert!(
        d["cluster"]["identity"]["oidc"]["issuer"]
            .as_str()
            .unwrap()
            .starts_with("https://oidc.eks.us-east-1.amazonaws.com/id/")
    );
    assert_eq!(d["cluster"]["tags"]["team"], "platform");
    let e = g.err(&["eks", "describe-cluster", "--name", "nope"]).await;
    assert!(
        e.contains("(ResourceNotFoundException)") && e.contains("No cluster found for name: nope."),
        "{e}"
    );
    assert_eq!(
        g.ok(&["eks", "list-clusters"]).await["clusters"],
        serde_json::json!(["demo"])
    );

    let ng_args = [
        "eks",
        "create-nodegroup",
        "--cluster-name",
        "demo",
        "--nodegroup-name",
        "ng",
        "--node-role",
        &role,
        "--subnets",
        &subnets[0],
        &subnets[1],
        "--scaling-config",
        "minSize=1,maxSize=3,desiredSize=2",
        "--instance-types",
        "m5.large",
        "--labels",
        "tier=web",
        "--taints",
        "key=dedicated,value=web,effect=NO_SCHEDULE",
    ];
    let e = g.err(&ng_args).await;
    assert!(e.contains("not in ACTIVE status"), "{e}");
    // What the EKS layer does once the control plane answers.
    skiff_aws::eks::set_cluster_active(
        &*g._store,
        "000000000000",
        "us-east-1",
        "demo",
        "https://127.0.0.1:6443",
        "LS0tLS1CRUdJTg==",
    )
    .await
    .unwrap();
    let d = g.ok(&["eks", "describe-cluster", "--name", "demo"]).await;
    assert_eq!(
        (
            d["cluster"]["status"].as_str(),
            d["cluster"]["endpoint"].as_str()
        ),
        (Some("ACTIVE"), Some("https://127.0.0.1:6443"))
    );

    let ng = g.ok(&ng_args).await;
    assert_eq!(ng["nodegroup"]["status"], "CREATING");
    assert_eq!(ng["nodegroup"]["scalingConfig"]["desiredSize"], 2);
    assert_eq!(ng["nodegroup"]["taints"][0]["effect"], "NO_SCHEDULE");
    let e = g
        .err(&[
            "eks",
            "create-nodegroup",
            "--cluster-name",
            "demo",
            "--nodegroup-name",
            "ng2",
            "--node-role",
            &role,
            "--subnets",
            &subnets[0],
            "--scaling-config",
            "minSize=3,maxSize=2,desiredSize=2",
        ])
        .await;
    assert!(e.contains("(InvalidParameterException)"), "{e}");
    assert_eq!(
        g.ok(&["eks", "list-nodegroups", "--cluster-name", "demo"])
            .await["nodegroups"],
        serde_json::json!(["ng"])
    );

    let e = g.err(&["eks", "delete-cluster", "--name", "demo"]).await;
    assert!(
        e.contains("(ResourceInUseException)") && e.contains("Cluster has nodegroups attached"),
        "{e}"
    );
    assert_eq!(
        g.ok(&[
            "eks",
            "delete-nodegroup",
            "--cluster-name",
            "demo",
            "--nodegroup-name",
            "ng"
        ])
        .await["nodegroup"]["status"],
        "DELETING"
    );
    assert_eq!(
        g.ok(&["eks", "delete-cluster", "--name", "demo"]).await["cluster"]["status"],
        "DELETING"
    );
    assert_eq!(
        g.ok(&["eks", "list-clusters"]).await["clusters"],
        serde_json::json!([])
    );
    g.stop().await;
}
