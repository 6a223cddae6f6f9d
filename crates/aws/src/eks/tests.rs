//! EKS through the operation table, against the in-memory test store, with the IAM role and EC2
//! subnets made through those services' own tables.

use serde_json::{Value, json};

use crate::context::RequestContext;
use crate::ec2::testing::ctx;

async fn call(
    c: &RequestContext,
    op: &str,
    input: Value,
) -> Result<Value, skiff_aws_model::AwsError> {
    super::dispatch(c, op, input).await
}

async fn ok(c: &RequestContext, op: &str, input: Value) -> Value {
    call(c, op, input)
        .await
        .unwrap_or_else(|e| panic!("{op}: {e}"))
}

/// A role and two subnets in two zones (plus one more in the first zone).
async fn fixture(c: &RequestContext) -> (String, Vec<String>) {
    let role = crate::iam::dispatch(c, "CreateRole", json!({"RoleName": "eks-role",
        "AssumeRolePolicyDocument": r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#}))
        .await
        .unwrap();
    let vpc = crate::ec2::dispatch(c, "CreateVpc", json!({"CidrBlock": "10.0.0.0/16"}))
        .await
        .unwrap();
    let mut subnets = Vec::new();
    for (cidr, az) in [
        ("10.0.1.0/24", "us-east-1a"),
        ("10.0.2.0/24", "us-east-1b"),
        ("10.0.3.0/24", "us-east-1a"),
    ] {
        let s = crate::ec2::dispatch(
            c,
            "CreateSubnet",
            json!({"VpcId": vpc["Vpc"]["VpcId"], "CidrBlock": cidr, "AvailabilityZone": az}),
        )
        .await
        .unwrap();
        subnets.push(s["Subnet"]["SubnetId"].as_str().unwrap().to_string());
    }
    (role["Role"]["Arn"].as_str().unwrap().to_string(), subnets)
}

#[tokio::test]
async fn create_cluster_records_creating_and_validates() {
    let c = ctx();
    let (role, subnets) = fixture(&c).await;
    let out = ok(
        &c,
        "CreateCluster",
        json!({"name": "demo", "roleArn": role,
        "resourcesVpcConfig": {"subnetIds": [subnets[0], subnets[1]]}, "tags": {"team": "a"}}),
    )
    .await;
    let cl = &out["cluster"];
    assert_eq!(cl["status"], "CREATING");
    assert_eq!(cl["version"], super::DEFAULT_VERSION);
    assert_eq!(cl["arn"], "arn:aws:eks:us-east-1:000000000000:cluster/demo");
    assert_eq!(
        cl["kubernetesNetworkConfig"]["serviceIpv4Cidr"],
        "10.100.0.0/16"
    );
    let issuer = cl["identity"]["oidc"]["issuer"].as_str().unwrap();
    let id = issuer
        .strip_prefix("https://oidc.eks.us-east-1.amazonaws.com/id/")
        .unwrap();
    assert!(
        id.len() == 32
            && id
                .chars()
                .all(|ch| ch.is_ascii_digit() || ch.is_ascii_uppercase())
    );
    assert!(
        cl.get("endpoint").is_none(),
        "no endpoint before the control plane exists"
    );
    assert!(cl.get("_creatorArn").is_none());
    let sg = cl["resourcesVpcConfig"]["clusterSecurityGroupId"]
        .as_str()
        .unwrap();
    let groups = crate::ec2::dispatch(&c, "DescribeSecurityGroups", json!({"GroupIds": [sg]}))
        .await
        .unwrap();
    assert!(
        groups["SecurityGroups"][0]["GroupName"]
            .as_str()
            .unwrap()
            .starts_with("eks-cluster-sg-demo-")
    );
    let ingress = &groups["SecurityGroups"][0]["IpPermissions"];
    assert_eq!(ingress[0]["IpProtocol"], "-1", "{ingress}");
    assert_eq!(
        ingress[0]["UserIdGroupPairs"][0]["GroupId"], sg,
        "{ingress}"
    );

    // Describe reports exactly what is recorded: still CREATING.
    let d = ok(&c, "DescribeCluster", json!({"name": "demo"})).await;
    assert_eq!(d["cluster"]["status"], "CREATING");

    let dup = call(
        &c,
        "CreateCluster",
        json!({"name": "demo", "roleArn": role,
        "resourcesVpcConfig": {"subnetIds": [subnets[0], subnets[1]]}}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (dup.code.as_str(), dup.status),
        ("ResourceInUseException", 409)
    );
    assert_eq!(dup.message, "Cluster already exists with name: demo");

    let one_az = call(
        &c,
        "CreateCluster",
        json!({"name": "x", "roleArn": role,
        "resourcesVpcConfig": {"subnetIds": [subnets[0], subnets[2]]}}),
    )
    .await
    .unwrap_err();
    assert_eq!(one_az.code, "InvalidParameterException");
    assert_eq!(
        one_az.message,
        "Subnets specified must be in at least two different AZs"
    );

    let no_role = call(
        &c,
        "CreateCluster",
        json!({"name": "x", "roleArn": "arn:aws:iam::000000000000:role/nope",
        "resourcesVpcConfig": {"subnetIds": [subnets[0], subnets[1]]}}),
    )
    .await
    .unwrap_err();
    assert_eq!(no_role.code, "InvalidParameterException");

    let no_subnet = call(
        &c,
        "CreateCluster",
        json!({"name": "x", "roleArn": role,
        "resourcesVpcConfig": {"subnetIds": [subnets[0], "subnet-0000000000000dead"]}}),
    )
    .await
    .unwrap_err();
    assert_eq!(no_subnet.code, "InvalidParameterException");
    assert!(
        no_subnet.message.contains("subnet-0000000000000dead"),
        "{}",
        no_subnet.message
    );

    let missing = call(&c, "DescribeCluster", json!({"name": "nope"}))
        .await
        .unwrap_err();
    assert_eq!(
        (missing.code.as_str(), missing.status),
        ("ResourceNotFoundException", 404)
    );
    assert_eq!(missing.message, "No cluster found for name: nope.");
}

#[tokio::test]
async fn nodegroups_need_an_active_cluster_and_block_deletion() {
    let c = ctx();
    let (role, subnets) = fixture(&c).await;
    ok(
        &c,
        "CreateCluster",
        json!({"name": "demo", "roleArn": role,
        "resourcesVpcConfig": {"subnetIds": [subnets[0], subnets[1]]}}),
    )
    .await;
    let ng = json!({"clusterName": "demo", "nodegroupName": "ng", "nodeRole": role, "subnets": [subnets[0], subnets[1]],
        "scalingConfig": {"minSize": 1, "maxSize": 3, "desiredSize": 2}, "instanceTypes": ["m5.large"],
        "taints": [{"key": "k", "value": "v", "effect": "NO_SCHEDULE"}], "labels": {"role": "x"}});
    let e = call(&c, "CreateNodegroup", ng.clone()).await.unwrap_err();
    assert_eq!(e.code, "InvalidRequestException");

    super::set_cluster_active(
        &*c.store,
        "000000000000",
        "us-east-1",
        "demo",
        "https://127.0.0.1:6443",
        "Q0E=",
    )
    .await
    .unwrap();
    let d = ok(&c, "DescribeCluster", json!({"name": "demo"})).await;
    assert_eq!(d["cluster"]["status"], "ACTIVE");
    assert_eq!(d["cluster"]["endpoint"], "https://127.0.0.1:6443");
    assert_eq!(d["cluster"]["certificateAuthority"]["data"], "Q0E=");

    let out = ok(&c, "CreateNodegroup", ng.clone()).await;
    assert_eq!(out["nodegroup"]["status"], "CREATING");
    assert_eq!(out["nodegroup"]["amiType"], "AL2023_x86_64_STANDARD");
    assert_eq!(out["nodegroup"]["capacityType"], "ON_DEMAND");
    let dup = call(&c, "CreateNodegroup", ng.clone()).await.unwrap_err();
    assert_eq!(dup.code, "ResourceInUseException");
    let mut bad = ng.clone();
    bad["nodegroupName"] = json!("ng2");
    bad["scalingConfig"] = json!({"minSize": 1, "maxSize": 3, "desiredSize": 4});
    assert_eq!(
        call(&c, "CreateNodegroup", bad).await.unwrap_err().code,
        "InvalidParameterException"
    );

    let list = ok(&c, "ListNodegroups", json!({"clusterName": "demo"})).await;
    assert_eq!(list["nodegroups"], json!(["ng"]));
    let busy = call(&c, "DeleteCluster", json!({"name": "demo"}))
        .await
        .unwrap_err();
    assert_eq!(
        (busy.code.as_str(), busy.message.as_str()),
        ("ResourceInUseException", "Cluster has nodegroups attached")
    );

    // The EKS layer reports the group up; a config update is then accepted and recorded.
    super::set_nodegroup_status(
        &*c.store,
        "000000000000",
        "us-east-1",
        "demo",
        "ng",
        "ACTIVE",
        &["eks-ng-1".into()],
    )
    .await
    .unwrap();
    let u = ok(
        &c,
        "UpdateNodegroupConfig",
        json!({"clusterName": "demo", "nodegroupName": "ng",
        "scalingConfig": {"desiredSize": 3}}),
    )
    .await;
    assert_eq!(u["update"]["status"], "InProgress");
    let d = ok(
        &c,
        "DescribeNodegroup",
        json!({"clusterName": "demo", "nodegroupName": "ng"}),
    )
    .await;
    assert_eq!(d["nodegroup"]["scalingConfig"]["desiredSize"], 3);
    assert_eq!(
        d["nodegroup"]["resources"]["autoScalingGroups"][0]["name"],
        "eks-ng-1"
    );

    let del = ok(
        &c,
        "DeleteNodegroup",
        json!({"clusterName": "demo", "nodegroupName": "ng"}),
    )
    .await;
    assert_eq!(del["nodegroup"]["status"], "DELETING");
    let gone = ok(&c, "DeleteCluster", json!({"name": "demo"})).await;
    assert_eq!(gone["cluster"]["status"], "DELETING");
    assert_eq!(
        call(&c, "DescribeCluster", json!({"name": "demo"}))
            .await
            .unwrap_err()
            .code,
        "ResourceNotFoundException"
    );
}

#[tokio::test]
async fn version_update_waits_for_the_eks_layer_and_tags_round_trip() {
    let c = ctx();
    let (role, subnets) = fixture(&c).await;
    let cl = ok(
        &c,
        "CreateCluster",
        json!({"name": "demo", "version": "1.32", "roleArn": role,
        "resourcesVpcConfig": {"subnetIds": [subnets[0], subnets[1]]}}),
    )
    .await;
    let busy = call(
        &c,
        "UpdateClusterVersion",
        json!({"name": "demo", "version": "1.33"}),
    )
    .await
    .unwrap_err();
    assert_eq!(busy.code, "ResourceInUseException");
    super::set_cluster_active(
        &*c.store,
        "000000000000",
        "us-east-1",
        "demo",
        "https://127.0.0.1:1",
        "x",
    )
    .await
    .unwrap();
    let skip = call(
        &c,
        "UpdateClusterVersion",
        json!({"name": "demo", "version": "1.34"}),
    )
    .await
    .unwrap_err();
    assert_eq!(skip.code, "InvalidParameterException");
    let u = ok(
        &c,
        "UpdateClusterVersion",
        json!({"name": "demo", "version": "1.33"}),
    )
    .await;
    let id = u["update"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        ok(&c, "DescribeCluster", json!({"name": "demo"})).await["cluster"]["status"],
        "UPDATING"
    );
    super::complete_update(&*c.store, "000000000000", "us-east-1", "demo", &id, true)
        .await
        .unwrap();
    let d = ok(&c, "DescribeCluster", json!({"name": "demo"})).await;
    assert_eq!(
        (
            d["cluster"]["status"].as_str(),
            d["cluster"]["version"].as_str()
        ),
        (Some("ACTIVE"), Some("1.33"))
    );
    let du = ok(
        &c,
        "DescribeUpdate",
        json!({"name": "demo", "updateId": id}),
    )
    .await;
    assert_eq!(du["update"]["status"], "Successful");
    let cfg = ok(&c, "UpdateClusterConfig", json!({"name": "demo", "logging": {"clusterLogging": [{"types": ["api"], "enabled": true}]}})).await;
    assert_eq!(cfg["update"]["status"], "Successful");
    let ids = ok(&c, "ListUpdates", json!({"name": "demo"})).await;
    assert_eq!(ids["updateIds"].as_array().unwrap().len(), 2);

    let arn = cl["cluster"]["arn"].as_str().unwrap();
    ok(
        &c,
        "TagResource",
        json!({"resourceArn": arn, "tags": {"a": "1", "b": "2"}}),
    )
    .await;
    ok(
        &c,
        "UntagResource",
        json!({"resourceArn": arn, "tagKeys": ["a"]}),
    )
    .await;
    let t = ok(&c, "ListTagsForResource", json!({"resourceArn": arn})).await;
    assert_eq!(t["tags"], json!({"b": "2"}));
    let nf = call(
        &c,
        "ListTagsForResource",
        json!({"resourceArn": "arn:aws:eks:us-east-1:000000000000:cluster/zzz"}),
    )
    .await
    .unwrap_err();
    assert_eq!(nf.code, "NotFoundException");
}

#[tokio::test]
async fn list_clusters_pages() {
    let c = ctx();
    let (role, subnets) = fixture(&c).await;
    for n in ["a", "b", "c"] {
        ok(&c, "CreateCluster", json!({"name": n, "roleArn": role, "resourcesVpcConfig": {"subnetIds": [subnets[0], subnets[1]]}})).await;
    }
    let p = ok(&c, "ListClusters", json!({"maxResults": 2})).await;
    assert_eq!(p["clusters"], json!(["a", "b"]));
    let p2 = ok(
        &c,
        "ListClusters",
        json!({"maxResults": 2, "nextToken": p["nextToken"]}),
    )
    .await;
    assert_eq!(p2["clusters"], json!(["c"]));
}

#[tokio::test]
async fn addons_and_access_entries() {
    let c = ctx();
    let (role, subnets) = fixture(&c).await;
    ok(&c, "CreateCluster", json!({"name": "demo", "roleArn": role, "resourcesVpcConfig": {"subnetIds": [subnets[0], subnets[1]]}})).await;

    // The creator's bootstrap entry, with cluster-admin.
    let entries = ok(&c, "ListAccessEntries", json!({"clusterName": "demo"})).await;
    assert_eq!(
        entries["accessEntries"],
        json!(["arn:aws:iam::000000000000:root"])
    );
    let pol = ok(
        &c,
        "ListAssociatedAccessPolicies",
        json!({"clusterName": "demo", "principalArn": "arn:aws:iam::000000000000:root"}),
    )
    .await;
    assert_eq!(
        pol["associatedAccessPolicies"][0]["policyArn"],
        "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    );

    let e = ok(
        &c,
        "CreateAccessEntry",
        json!({"clusterName": "demo", "principalArn": role, "kubernetesGroups": ["devs"]}),
    )
    .await;
    assert_eq!(
        e["accessEntry"]["username"],
        "arn:aws:sts::000000000000:assumed-role/eks-role/{{SessionName}}"
    );
    let dup = call(
        &c,
        "CreateAccessEntry",
        json!({"clusterName": "demo", "principalArn": role}),
    )
    .await
    .unwrap_err();
    assert_eq!(dup.code, "ResourceInUseException");
    let ghost = call(
        &c,
        "CreateAccessEntry",
        json!({"clusterName": "demo", "principalArn": "arn:aws:iam::000000000000:role/ghost"}),
    )
    .await
    .unwrap_err();
    assert_eq!(ghost.code, "InvalidParameterException");
    let bad_scope = call(&c, "AssociateAccessPolicy", json!({"clusterName": "demo", "principalArn": role,
        "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy", "accessScope": {"type": "namespace"}})).await.unwrap_err();
    assert_eq!(bad_scope.code, "InvalidParameterException");
    ok(&c, "AssociateAccessPolicy", json!({"clusterName": "demo", "principalArn": role,
        "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy", "accessScope": {"type": "namespace", "namespaces": ["app"]}})).await;
    let records = super::list_access_entry_records(&*c.store, "000000000000", "us-east-1", "demo")
        .await
        .unwrap();
    let mine = records
        .iter()
        .find(|r| r["principalArn"] == role.as_str())
        .unwrap();
    assert_eq!(
        mine["associatedAccessPolicies"][0]["accessScope"]["namespaces"],
        json!(["app"])
    );
    ok(&c, "DisassociateAccessPolicy", json!({"clusterName": "demo", "principalArn": role, "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"})).await;
    ok(
        &c,
        "DeleteAccessEntry",
        json!({"clusterName": "demo", "principalArn": role}),
    )
    .await;
    assert_eq!(
        call(
            &c,
            "DescribeAccessEntry",
            json!({"clusterName": "demo", "principalArn": role})
        )
        .await
        .unwrap_err()
        .code,
        "ResourceNotFoundException"
    );
    let policies = ok(&c, "ListAccessPolicies", json!({})).await;
    assert!(
        policies["accessPolicies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "AmazonEKSClusterAdminPolicy")
    );

    let a = ok(
        &c,
        "CreateAddon",
        json!({"clusterName": "demo", "addonName": "kube-proxy"}),
    )
    .await;
    assert_eq!(
        (
            a["addon"]["status"].as_str(),
            a["addon"]["addonVersion"].as_str()
        ),
        (Some("CREATING"), Some("v1.33.3-eksbuild.6"))
    );
    let bad = call(
        &c,
        "CreateAddon",
        json!({"clusterName": "demo", "addonName": "kube-proxy"}),
    )
    .await
    .unwrap_err();
    assert_eq!(bad.code, "ResourceInUseException");
    let unsupported = call(&c, "CreateAddon", json!({"clusterName": "demo", "addonName": "coredns", "addonVersion": "v1.10.1-eksbuild.18"})).await.unwrap_err();
    assert_eq!(unsupported.code, "InvalidParameterException");
    super::set_addon_status(
        &*c.store,
        "000000000000",
        "us-east-1",
        "demo",
        "kube-proxy",
        "ACTIVE",
    )
    .await
    .unwrap();
    let v = ok(
        &c,
        "DescribeAddonVersions",
        json!({"addonName": "coredns", "kubernetesVersion": "1.33"}),
    )
    .await;
    let versions: Vec<&str> = v["addons"][0]["addonVersions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["addonVersion"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["v1.12.3-eksbuild.1", "v1.12.1-eksbuild.2"]);
    let all = ok(&c, "DescribeAddonVersions", json!({})).await;
    assert_eq!(all["addons"].as_array().unwrap().len(), 5);

    let u = ok(
        &c,
        "UpdateAddon",
        json!({"clusterName": "demo", "addonName": "kube-proxy", "configurationValues": "{}"}),
    )
    .await;
    let id = u["update"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        ok(
            &c,
            "DescribeAddon",
            json!({"clusterName": "demo", "addonName": "kube-proxy"})
        )
        .await["addon"]["status"],
        "UPDATING"
    );
    let listed = ok(
        &c,
        "ListUpdates",
        json!({"name": "demo", "addonName": "kube-proxy"}),
    )
    .await;
    assert_eq!(listed["updateIds"], json!([id]));
    super::complete_update(&*c.store, "000000000000", "us-east-1", "demo", &id, true)
        .await
        .unwrap();
    assert_eq!(
        ok(
            &c,
            "DescribeAddon",
            json!({"clusterName": "demo", "addonName": "kube-proxy"})
        )
        .await["addon"]["status"],
        "ACTIVE"
    );
    assert_eq!(
        ok(&c, "ListAddons", json!({"clusterName": "demo"})).await["addons"],
        json!(["kube-proxy"])
    );
    assert_eq!(
        ok(
            &c,
            "DeleteAddon",
            json!({"clusterName": "demo", "addonName": "kube-proxy"})
        )
        .await["addon"]["status"],
        "DELETING"
    );
}

#[tokio::test]
async fn fargate_profiles_and_pod_identity() {
    let c = ctx();
    let (role, subnets) = fixture(&c).await;
    ok(&c, "CreateCluster", json!({"name": "demo", "roleArn": role, "resourcesVpcConfig": {"subnetIds": [subnets[0], subnets[1]]}})).await;
    let fp = json!({"clusterName": "demo", "fargateProfileName": "fp", "podExecutionRoleArn": role, "subnets": [subnets[0]],
        "selectors": [{"namespace": "serverless", "labels": {"app": "x"}}]});
    assert_eq!(
        ok(&c, "CreateFargateProfile", fp.clone()).await["fargateProfile"]["status"],
        "CREATING"
    );
    assert_eq!(
        call(&c, "CreateFargateProfile", fp).await.unwrap_err().code,
        "ResourceInUseException"
    );
    // A subnet routed to an internet gateway is public: Fargate refuses it.
    let ec2 = |op: &'static str, input: Value| {
        let c = c.clone();
        async move { crate::ec2::dispatch(&c, op, input).await.unwrap() }
    };
    let vpc =
        ec2("DescribeSubnets", json!({"SubnetIds": [subnets[1]]})).await["Subnets"][0]["VpcId"]
            .clone();
    let igw = ec2("CreateInternetGateway", json!({})).await["InternetGateway"]["InternetGatewayId"]
        .clone();
    ec2(
        "AttachInternetGateway",
        json!({"InternetGatewayId": igw, "VpcId": vpc}),
    )
    .await;
    let rtb =
        ec2("CreateRouteTable", json!({"VpcId": vpc})).await["RouteTable"]["RouteTableId"].clone();
    ec2(
        "CreateRoute",
        json!({"RouteTableId": rtb, "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": igw}),
    )
    .await;
    ec2(
        "AssociateRouteTable",
        json!({"RouteTableId": rtb, "SubnetId": subnets[1]}),
    )
    .await;
    let public = call(
        &c,
        "CreateFargateProfile",
        json!({"clusterName": "demo", "fargateProfileName": "pub", "podExecutionRoleArn": role,
        "subnets": [subnets[1]], "selectors": [{"namespace": "x"}]}),
    )
    .await
    .unwrap_err();
    assert_eq!(public.code, "InvalidParameterException");
    assert_eq!(
        public.message,
        format!(
            "Subnet {} provided in Fargate Profile is not a private subnet",
            subnets[1]
        )
    );
    let no_sel = call(&c, "CreateFargateProfile", json!({"clusterName": "demo", "fargateProfileName": "fp2", "podExecutionRoleArn": role, "selectors": []})).await.unwrap_err();
    assert_eq!(no_sel.code, "InvalidParameterException");
    assert_eq!(
        ok(&c, "ListFargateProfiles", json!({"clusterName": "demo"})).await["fargateProfileNames"],
        json!(["fp"])
    );
    let busy = call(&c, "DeleteCluster", json!({"name": "demo"}))
        .await
        .unwrap_err();
    assert_eq!(busy.code, "ResourceInUseException");
    assert_eq!(
        ok(
            &c,
            "DeleteFargateProfile",
            json!({"clusterName": "demo", "fargateProfileName": "fp"})
        )
        .await["fargateProfile"]["status"],
        "DELETING"
    );

    let a = ok(
        &c,
        "CreatePodIdentityAssociation",
        json!({"clusterName": "demo", "namespace": "app", "serviceAccount": "sa", "roleArn": role}),
    )
    .await;
    let id = a["association"]["associationId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(id.starts_with("a-") && id.len() == 19, "{id}");
    let dup = call(
        &c,
        "CreatePodIdentityAssociation",
        json!({"clusterName": "demo", "namespace": "app", "serviceAccount": "sa", "roleArn": role}),
    )
    .await
    .unwrap_err();
    assert_eq!(dup.message, format!("Association already exists: {id}"));
    let l = ok(
        &c,
        "ListPodIdentityAssociations",
        json!({"clusterName": "demo", "namespace": "app"}),
    )
    .await;
    assert_eq!(l["associations"][0]["associationId"], id.as_str());
    assert_eq!(
        ok(
            &c,
            "ListPodIdentityAssociations",
            json!({"clusterName": "demo", "namespace": "other"})
        )
        .await["associations"],
        json!([])
    );
    ok(
        &c,
        "DeletePodIdentityAssociation",
        json!({"clusterName": "demo", "associationId": id}),
    )
    .await;
    assert_eq!(
        call(
            &c,
            "DescribePodIdentityAssociation",
            json!({"clusterName": "demo", "associationId": id})
        )
        .await
        .unwrap_err()
        .code,
        "ResourceNotFoundException"
    );
}

#[tokio::test]
async fn encryption_config_needs_a_usable_key_and_is_associated_once() {
    let c = ctx();
    let (role, subnets) = fixture(&c).await;
    let vpc = json!({"subnetIds": [subnets[0], subnets[1]]});
    let bad = call(
        &c,
        "CreateCluster",
        json!({"name": "enc", "roleArn": role, "resourcesVpcConfig": vpc,
            "encryptionConfig": [{"resources": ["secrets"], "provider": {"keyArn": "arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000"}}]}),
    )
    .await
    .unwrap_err();
    assert_eq!(bad.code, "InvalidParameterException");
    let key = crate::kms::dispatch(&c, "CreateKey", json!({}))
        .await
        .unwrap();
    let arn = key["KeyMetadata"]["Arn"].as_str().unwrap().to_string();
    ok(
        &c,
        "CreateCluster",
        json!({"name": "enc", "roleArn": role, "resourcesVpcConfig": vpc}),
    )
    .await;
    super::set_cluster_active(
        &*c.store,
        "000000000000",
        "us-east-1",
        "enc",
        "https://127.0.0.1:6443",
        "Q0E=",
    )
    .await
    .unwrap();
    let config = json!([{"resources": ["secrets"], "provider": {"keyArn": arn}}]);
    let wrong = call(
        &c,
        "AssociateEncryptionConfig",
        json!({"clusterName": "enc", "encryptionConfig": [{"resources": ["configmaps"], "provider": {"keyArn": arn}}]}),
    )
    .await
    .unwrap_err();
    assert_eq!(wrong.code, "InvalidParameterException");
    let u = ok(
        &c,
        "AssociateEncryptionConfig",
        json!({"clusterName": "enc", "encryptionConfig": config}),
    )
    .await;
    assert_eq!(u["update"]["type"], "AssociateEncryptionConfig");
    let d = ok(&c, "DescribeCluster", json!({"name": "enc"})).await;
    assert_eq!(d["cluster"]["encryptionConfig"], config);
    let again = call(
        &c,
        "AssociateEncryptionConfig",
        json!({"clusterName": "enc", "encryptionConfig": config}),
    )
    .await
    .unwrap_err();
    assert_eq!(again.code, "InvalidParameterException");
}
