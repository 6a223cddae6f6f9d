//! AutoScaling through the operation table: instances are real EC2 instances.

use serde_json::{Value, json};

use crate::context::RequestContext;
use crate::ec2::testing::ctx;

async fn ok(c: &RequestContext, op: &str, input: Value) -> Value {
    super::dispatch(c, op, input)
        .await
        .unwrap_or_else(|e| panic!("{op}: {e}"))
}

async fn subnets_and_template(c: &RequestContext) -> String {
    let vpc = crate::ec2::dispatch(c, "CreateVpc", json!({"CidrBlock": "10.0.0.0/16"}))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (cidr, az) in [("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")] {
        let s = crate::ec2::dispatch(
            c,
            "CreateSubnet",
            json!({"VpcId": vpc["Vpc"]["VpcId"], "CidrBlock": cidr, "AvailabilityZone": az}),
        )
        .await
        .unwrap();
        ids.push(s["Subnet"]["SubnetId"].as_str().unwrap().to_string());
    }
    crate::ec2::dispatch(
        c,
        "CreateLaunchTemplate",
        json!({"LaunchTemplateName": "lt-nodes",
        "LaunchTemplateData": {"ImageId": "ami-0123456789abcdef0", "InstanceType": "t3.micro"}}),
    )
    .await
    .unwrap();
    ids.join(",")
}

async fn running(c: &RequestContext, group: &str) -> Vec<Value> {
    crate::ec2::describe_instances_internal(c, &[])
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i["State"]["Name"] == "running" || i["State"]["Name"] == "pending")
        .filter(|i| {
            i["Tags"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| t["Key"] == "aws:autoscaling:groupName" && t["Value"] == group)
        })
        .collect()
}

#[tokio::test]
async fn group_launches_scales_and_replaces() {
    let c = ctx();
    let subnets = subnets_and_template(&c).await;
    let bad = super::dispatch(&c, "CreateAutoScalingGroup", json!({"AutoScalingGroupName": "g", "MinSize": 3, "MaxSize": 1,
        "LaunchTemplate": {"LaunchTemplateName": "lt-nodes", "Version": "$Latest"}, "VPCZoneIdentifier": subnets})).await.unwrap_err();
    assert_eq!(bad.code, "ValidationError");
    assert_eq!(
        bad.message,
        "Max bound, 1, must be greater than or equal to min bound, 3"
    );

    ok(&c, "CreateAutoScalingGroup", json!({"AutoScalingGroupName": "g", "MinSize": 1, "MaxSize": 5, "DesiredCapacity": 2,
        "LaunchTemplate": {"LaunchTemplateName": "lt-nodes", "Version": "$Latest"}, "VPCZoneIdentifier": subnets,
        "Tags": [{"Key": "team", "Value": "a", "PropagateAtLaunch": true}]})).await;
    let insts = running(&c, "g").await;
    assert_eq!(insts.len(), 2);
    let mut zones: Vec<&str> = insts
        .iter()
        .map(|i| i["Placement"]["AvailabilityZone"].as_str().unwrap())
        .collect();
    zones.sort();
    assert_eq!(
        zones,
        ["us-east-1a", "us-east-1b"],
        "spread over the subnets' zones"
    );
    assert!(
        insts[0]["Tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["Key"] == "team")
    );
    let dup = super::dispatch(
        &c,
        "CreateAutoScalingGroup",
        json!({"AutoScalingGroupName": "g", "MinSize": 1, "MaxSize": 1,
        "LaunchTemplate": {"LaunchTemplateName": "lt-nodes"}, "VPCZoneIdentifier": subnets}),
    )
    .await
    .unwrap_err();
    assert_eq!(dup.code, "AlreadyExists");

    ok(
        &c,
        "SetDesiredCapacity",
        json!({"AutoScalingGroupName": "g", "DesiredCapacity": 4}),
    )
    .await;
    assert_eq!(running(&c, "g").await.len(), 4);
    ok(
        &c,
        "SetDesiredCapacity",
        json!({"AutoScalingGroupName": "g", "DesiredCapacity": 1}),
    )
    .await;
    assert_eq!(running(&c, "g").await.len(), 1);
    let over = super::dispatch(
        &c,
        "SetDesiredCapacity",
        json!({"AutoScalingGroupName": "g", "DesiredCapacity": 9}),
    )
    .await
    .unwrap_err();
    assert_eq!(over.code, "ValidationError");

    // Terminate without decrement: replaced.
    let victim = running(&c, "g").await[0]["InstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    let a = ok(
        &c,
        "TerminateInstanceInAutoScalingGroup",
        json!({"InstanceId": victim, "ShouldDecrementDesiredCapacity": false}),
    )
    .await;
    assert_eq!(
        a["Activity"]["Description"],
        format!("Terminating EC2 instance: {victim}")
    );
    let now = running(&c, "g").await;
    assert_eq!(now.len(), 1);
    assert_ne!(now[0]["InstanceId"], victim.as_str());

    // Terminated through EC2: reconcile replaces it.
    let id = now[0]["InstanceId"].as_str().unwrap().to_string();
    crate::ec2::terminate_instances_internal(&c, std::slice::from_ref(&id))
        .await
        .unwrap();
    super::reconcile_group(&c, "g", "a health check")
        .await
        .unwrap();
    let after = running(&c, "g").await;
    assert_eq!(after.len(), 1);
    assert_ne!(after[0]["InstanceId"], id.as_str());

    let acts = ok(
        &c,
        "DescribeScalingActivities",
        json!({"AutoScalingGroupName": "g"}),
    )
    .await;
    let descs: Vec<&str> = acts["Activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["Description"].as_str().unwrap())
        .collect();
    assert!(
        descs[0].starts_with("Launching a new EC2 instance: i-"),
        "{descs:?}"
    );
    assert_eq!(
        descs.iter().filter(|d| d.starts_with("Launching")).count(),
        6
    );

    let asi = ok(&c, "DescribeAutoScalingInstances", json!({})).await;
    assert_eq!(asi["AutoScalingInstances"][0]["AutoScalingGroupName"], "g");
    assert_eq!(
        asi["AutoScalingInstances"][0]["LifecycleState"],
        "InService"
    );

    let busy = super::dispatch(
        &c,
        "DeleteAutoScalingGroup",
        json!({"AutoScalingGroupName": "g"}),
    )
    .await
    .unwrap_err();
    assert_eq!(busy.code, "ResourceInUse");
    ok(
        &c,
        "DeleteAutoScalingGroup",
        json!({"AutoScalingGroupName": "g", "ForceDelete": true}),
    )
    .await;
    assert!(running(&c, "g").await.is_empty());
    let d = ok(
        &c,
        "DescribeAutoScalingGroups",
        json!({"AutoScalingGroupNames": ["g"]}),
    )
    .await;
    assert_eq!(d["AutoScalingGroups"], json!([]));
}

#[tokio::test]
async fn tags_round_trip() {
    let c = ctx();
    let subnets = subnets_and_template(&c).await;
    ok(
        &c,
        "CreateAutoScalingGroup",
        json!({"AutoScalingGroupName": "g", "MinSize": 0, "MaxSize": 1,
        "LaunchTemplate": {"LaunchTemplateName": "lt-nodes"}, "VPCZoneIdentifier": subnets}),
    )
    .await;
    ok(&c, "CreateOrUpdateTags", json!({"Tags": [{"ResourceId": "g", "ResourceType": "auto-scaling-group", "Key": "k", "Value": "v", "PropagateAtLaunch": true}]})).await;
    let t = ok(
        &c,
        "DescribeTags",
        json!({"Filters": [{"Name": "auto-scaling-group", "Values": ["g"]}]}),
    )
    .await;
    assert_eq!(t["Tags"][0]["Key"], "k");
    ok(
        &c,
        "DeleteTags",
        json!({"Tags": [{"ResourceId": "g", "ResourceType": "auto-scaling-group", "Key": "k"}]}),
    )
    .await;
    let t = ok(&c, "DescribeTags", json!({})).await;
    assert_eq!(t["Tags"], json!([]));
    let missing = super::dispatch(
        &c,
        "SetDesiredCapacity",
        json!({"AutoScalingGroupName": "nope", "DesiredCapacity": 1}),
    )
    .await
    .unwrap_err();
    assert_eq!(missing.code, "ValidationError");
}

#[tokio::test]
async fn launches_are_batched_one_reservation_per_subnet() {
    let c = ctx();
    let subnets = subnets_and_template(&c).await;
    ok(&c, "CreateAutoScalingGroup", json!({"AutoScalingGroupName": "big", "MinSize": 0, "MaxSize": 20, "DesiredCapacity": 10,
        "LaunchTemplate": {"LaunchTemplateName": "lt-nodes", "Version": "$Latest"}, "VPCZoneIdentifier": subnets})).await;
    let insts = running(&c, "big").await;
    assert_eq!(insts.len(), 10);
    let per_zone = |z: &str| {
        insts
            .iter()
            .filter(|i| i["Placement"]["AvailabilityZone"] == z)
            .count()
    };
    assert_eq!((per_zone("us-east-1a"), per_zone("us-east-1b")), (5, 5));
    let d = crate::ec2::dispatch(&c, "DescribeInstances", json!({}))
        .await
        .unwrap();
    let reservations = d["Reservations"].as_array().unwrap();
    assert_eq!(reservations.len(), 2, "one RunInstances per subnet");
    // Scaling out from 10 to 13 keeps the zones balanced (7/6) in two more batches.
    ok(
        &c,
        "SetDesiredCapacity",
        json!({"AutoScalingGroupName": "big", "DesiredCapacity": 13}),
    )
    .await;
    let insts = running(&c, "big").await;
    let mut counts = [0, 0];
    for i in &insts {
        counts[usize::from(i["Placement"]["AvailabilityZone"] == "us-east-1b")] += 1;
    }
    counts.sort();
    assert_eq!(counts, [6, 7]);
}
