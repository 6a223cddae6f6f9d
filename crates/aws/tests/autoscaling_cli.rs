//! AutoScaling through the real aws CLI: a group launches real EC2 instances (seen by
//! `ec2 describe-instances` with the `aws:autoscaling:groupName` tag), set-desired-capacity scales,
//! terminate-instance-in-auto-scaling-group replaces, activities use AWS's wording.

mod support;

use support::{Gw, network, s};

async fn group_instances(g: &Gw) -> Vec<String> {
    let out = g
        .ok(&[
            "ec2",
            "describe-instances",
            "--filters",
            "Name=tag:aws:autoscaling:groupName,Values=web",
            "Name=instance-state-name,Values=pending,running",
            "--query",
            "Reservations[].Instances[].InstanceId",
        ])
        .await;
    let mut ids: Vec<String> = out.as_array().unwrap().iter().map(s).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_scales_with_real_instances() {
    let g = Gw::start().await;
    let (_, subnets) = network(&g).await;
    g.ok(&[
        "ec2",
        "create-launch-template",
        "--launch-template-name",
        "web-lt",
        "--launch-template-data",
        r#"{"ImageId":"ami-0123456789abcdef0","InstanceType":"t3.small"}"#,
    ])
    .await;
    let zone_ids = format!("{},{}", subnets[0], subnets[1]);
    let e = g
        .err(&[
            "autoscaling",
            "create-auto-scaling-group",
            "--auto-scaling-group-name",
            "web",
            "--launch-template",
            "LaunchTemplateName=web-lt,Version=$Latest",
            "--min-size",
            "1",
            "--max-size",
            "2",
            "--desired-capacity",
            "5",
            "--vpc-zone-identifier",
            &zone_ids,
        ])
        .await;
    assert!(
        e.contains("(ValidationError)")
            && e.contains(
                "Desired capacity:5 must be between the specified min size:1 and max size:2"
            ),
        "{e}"
    );

    g.ok(&[
        "autoscaling",
        "create-auto-scaling-group",
        "--auto-scaling-group-name",
        "web",
        "--launch-template",
        "LaunchTemplateName=web-lt,Version=$Latest",
        "--min-size",
        "1",
        "--max-size",
        "4",
        "--desired-capacity",
        "2",
        "--vpc-zone-identifier",
        &zone_ids,
    ])
    .await;
    assert_eq!(group_instances(&g).await.len(), 2);
    let d = g
        .ok(&[
            "autoscaling",
            "describe-auto-scaling-groups",
            "--auto-scaling-group-names",
            "web",
        ])
        .await;
    let grp = &d["AutoScalingGroups"][0];
    assert_eq!(grp["Instances"].as_array().unwrap().len(), 2);
    assert_eq!(
        grp["AvailabilityZones"],
        serde_json::json!(["us-east-1a", "us-east-1b"])
    );

    g.ok(&[
        "autoscaling",
        "set-desired-capacity",
        "--auto-scaling-group-name",
        "web",
        "--desired-capacity",
        "3",
    ])
    .await;
    assert_eq!(group_instances(&g).await.len(), 3);

    let victim = group_instances(&g).await[0].clone();
    let a = g
        .ok(&[
            "autoscaling",
            "terminate-instance-in-auto-scaling-group",
            "--instance-id",
            &victim,
            "--no-should-decrement-desired-capacity",
        ])
        .await;
    assert_eq!(
        s(&a["Activity"]["Description"]),
        format!("Terminating EC2 instance: {victim}")
    );
    let now = group_instances(&g).await;
    assert_eq!(now.len(), 3);
    assert!(!now.contains(&victim));

    let acts = g
        .ok(&[
            "autoscaling",
            "describe-scaling-activities",
            "--auto-scaling-group-name",
            "web",
        ])
        .await;
    let launches = acts["Activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["Description"]
                .as_str()
                .unwrap()
                .starts_with("Launching a new EC2 instance: i-")
        })
        .count();
    assert_eq!(launches, 4);

    let e = g
        .err(&[
            "autoscaling",
            "delete-auto-scaling-group",
            "--auto-scaling-group-name",
            "web",
        ])
        .await;
    assert!(e.contains("(ResourceInUse)"), "{e}");
    g.ok(&[
        "autoscaling",
        "delete-auto-scaling-group",
        "--auto-scaling-group-name",
        "web",
        "--force-delete",
    ])
    .await;
    assert!(group_instances(&g).await.is_empty());
    g.stop().await;
}
