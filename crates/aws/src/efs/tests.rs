//! EFS through its operation table on an in-memory store, with EC2 underneath for mount targets.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use crate::context::RequestContext;
use crate::iam::test_support::root_ctx;

async fn efs(ctx: &RequestContext, op: &str, input: Value) -> Result<Value, AwsError> {
    super::dispatch(ctx, op, input).await
}

async fn ok(ctx: &RequestContext, op: &str, input: Value) -> Value {
    efs(ctx, op, input)
        .await
        .unwrap_or_else(|e| panic!("{op}: {e}"))
}

async fn err(ctx: &RequestContext, op: &str, input: Value) -> AwsError {
    efs(ctx, op, input).await.expect_err(op)
}

async fn ec2(ctx: &RequestContext, op: &str, input: Value) -> Value {
    crate::ec2::dispatch(ctx, op, input)
        .await
        .unwrap_or_else(|e| panic!("{op}: {e}"))
}

/// A VPC with subnets in us-east-1a (two) and us-east-1b: (vpc, [a1, a2, b]).
async fn network(ctx: &RequestContext) -> (String, Vec<String>) {
    let vpc = ec2(ctx, "CreateVpc", json!({"CidrBlock": "10.0.0.0/16"})).await["Vpc"]["VpcId"]
        .as_str()
        .unwrap()
        .to_string();
    let mut subnets = Vec::new();
    for (cidr, az) in [
        ("10.0.1.0/24", "us-east-1a"),
        ("10.0.2.0/24", "us-east-1a"),
        ("10.0.3.0/24", "us-east-1b"),
    ] {
        let s = ec2(
            ctx,
            "CreateSubnet",
            json!({"VpcId": vpc, "CidrBlock": cidr, "AvailabilityZone": az}),
        )
        .await;
        subnets.push(s["Subnet"]["SubnetId"].as_str().unwrap().to_string());
    }
    (vpc, subnets)
}

#[tokio::test]
async fn file_systems_mount_targets_and_access_points() {
    let ctx = root_ctx();
    let (vpc, subnets) = network(&ctx).await;
    let fs = ok(
        &ctx,
        "CreateFileSystem",
        json!({"CreationToken": "tok-1", "Encrypted": true, "Tags": [{"Key": "Name", "Value": "shared"}]}),
    )
    .await;
    let id = fs["FileSystemId"].as_str().unwrap().to_string();
    assert!(id.starts_with("fs-"), "{id}");
    assert_eq!(fs["LifeCycleState"], "available");
    assert_eq!(fs["Name"], "shared");
    assert_eq!(fs["ThroughputMode"], "bursting");
    assert_eq!(fs["PerformanceMode"], "generalPurpose");
    let again = err(&ctx, "CreateFileSystem", json!({"CreationToken": "tok-1"})).await;
    assert_eq!(
        (again.code.as_str(), again.status),
        ("FileSystemAlreadyExists", 409)
    );
    assert!(again.message.contains(&id));
    let bad = err(
        &ctx,
        "CreateFileSystem",
        json!({"CreationToken": "tok-2", "ThroughputMode": "provisioned"}),
    )
    .await;
    assert_eq!(bad.code, "BadRequest");

    let mt = ok(
        &ctx,
        "CreateMountTarget",
        json!({"FileSystemId": id, "SubnetId": subnets[0]}),
    )
    .await;
    assert_eq!(mt["VpcId"], vpc.as_str());
    assert_eq!(mt["AvailabilityZoneName"], "us-east-1a");
    let ip = mt["IpAddress"].as_str().unwrap();
    assert!(ip.starts_with("10.0.1."), "{ip}");
    let eni = ec2(
        &ctx,
        "DescribeNetworkInterfaces",
        json!({"NetworkInterfaceIds": [mt["NetworkInterfaceId"]]}),
    )
    .await;
    assert_eq!(eni["NetworkInterfaces"][0]["PrivateIpAddress"], ip);
    let same_zone = err(
        &ctx,
        "CreateMountTarget",
        json!({"FileSystemId": id, "SubnetId": subnets[1]}),
    )
    .await;
    assert_eq!(
        (same_zone.code.as_str(), same_zone.status),
        ("MountTargetConflict", 409)
    );
    let no_subnet = err(
        &ctx,
        "CreateMountTarget",
        json!({"FileSystemId": id, "SubnetId": "subnet-0123456789abcdef0"}),
    )
    .await;
    assert_eq!(no_subnet.code, "SubnetNotFound");
    ok(
        &ctx,
        "CreateMountTarget",
        json!({"FileSystemId": id, "SubnetId": subnets[2]}),
    )
    .await;
    let listed = ok(&ctx, "DescribeMountTargets", json!({"FileSystemId": id})).await;
    assert_eq!(listed["MountTargets"].as_array().unwrap().len(), 2);
    let d = ok(&ctx, "DescribeFileSystems", json!({"FileSystemId": id})).await;
    assert_eq!(d["FileSystems"][0]["NumberOfMountTargets"], 2);

    let ap = ok(
        &ctx,
        "CreateAccessPoint",
        json!({"FileSystemId": id, "ClientToken": "pvc-1",
               "PosixUser": {"Uid": 1000, "Gid": 1000},
               "RootDirectory": {"Path": "/dynamic/pvc-1", "CreationInfo": {"OwnerUid": 1000, "OwnerGid": 1000, "Permissions": "700"}}}),
    )
    .await;
    let ap_id = ap["AccessPointId"].as_str().unwrap().to_string();
    assert!(ap_id.starts_with("fsap-"));
    let dup = err(
        &ctx,
        "CreateAccessPoint",
        json!({"FileSystemId": id, "ClientToken": "pvc-1"}),
    )
    .await;
    assert_eq!(dup.code, "AccessPointAlreadyExists");
    let bad_path = err(
        &ctx,
        "CreateAccessPoint",
        json!({"FileSystemId": id, "ClientToken": "x", "RootDirectory": {"Path": "relative"}}),
    )
    .await;
    assert_eq!(bad_path.code, "BadRequest");

    ok(
        &ctx,
        "TagResource",
        json!({"ResourceId": ap_id, "Tags": [{"Key": "team", "Value": "a"}]}),
    )
    .await;
    let t = ok(&ctx, "ListTagsForResource", json!({"ResourceId": ap_id})).await;
    assert_eq!(t["Tags"], json!([{"Key": "team", "Value": "a"}]));

    ok(
        &ctx,
        "PutLifecycleConfiguration",
        json!({"FileSystemId": id, "LifecyclePolicies": [{"TransitionToIA": "AFTER_30_DAYS"}]}),
    )
    .await;
    let lc = ok(
        &ctx,
        "DescribeLifecycleConfiguration",
        json!({"FileSystemId": id}),
    )
    .await;
    assert_eq!(
        lc["LifecyclePolicies"][0]["TransitionToIA"],
        "AFTER_30_DAYS"
    );

    let in_use = err(&ctx, "DeleteFileSystem", json!({"FileSystemId": id})).await;
    assert_eq!(
        (in_use.code.as_str(), in_use.status),
        ("FileSystemInUse", 409)
    );
    for m in listed["MountTargets"].as_array().unwrap() {
        ok(
            &ctx,
            "DeleteMountTarget",
            json!({"MountTargetId": m["MountTargetId"]}),
        )
        .await;
        let gone = crate::ec2::dispatch(
            &ctx,
            "DescribeNetworkInterfaces",
            json!({"NetworkInterfaceIds": [m["NetworkInterfaceId"]]}),
        )
        .await;
        assert!(gone.is_err(), "the mount target's ENI goes with it");
    }
    ok(&ctx, "DeleteFileSystem", json!({"FileSystemId": id})).await;
    let nf = err(&ctx, "DescribeFileSystems", json!({"FileSystemId": id})).await;
    assert_eq!((nf.code.as_str(), nf.status), ("FileSystemNotFound", 404));
    let ap_gone = err(
        &ctx,
        "DescribeAccessPoints",
        json!({"AccessPointId": ap_id}),
    )
    .await;
    assert_eq!(ap_gone.code, "AccessPointNotFound");
}
