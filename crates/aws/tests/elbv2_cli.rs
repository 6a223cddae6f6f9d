//! ELBv2 through the real aws CLI: an ALB, a target group with a registered instance, a listener
//! forwarding to it, a path rule, the errors the CLI prints (PriorityInUse, ResourceInUse,
//! DuplicateLoadBalancerName), and teardown.

mod support;

use support::{Gw, network, s};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_listener_rule_flow() {
    let g = Gw::start().await;
    let (vpc, subnets) = network(&g).await;
    let run = g
        .ok(&[
            "ec2",
            "run-instances",
            "--image-id",
            "ami-0123456789abcdef0",
            "--instance-type",
            "t3.micro",
            "--subnet-id",
            &subnets[0],
        ])
        .await;
    let instance = s(&run["Instances"][0]["InstanceId"]);

    let lb = g
        .ok(&[
            "elbv2",
            "create-load-balancer",
            "--name",
            "web",
            "--subnets",
            &subnets[0],
            &subnets[1],
        ])
        .await;
    let lb_arn = s(&lb["LoadBalancers"][0]["LoadBalancerArn"]);
    assert!(s(&lb["LoadBalancers"][0]["DNSName"]).ends_with(".us-east-1.elb.amazonaws.com"));
    let e = g
        .err(&[
            "elbv2",
            "create-load-balancer",
            "--name",
            "web",
            "--type",
            "network",
            "--subnets",
            &subnets[0],
        ])
        .await;
    assert!(e.contains("(DuplicateLoadBalancerName)"), "{e}");
    let d = g
        .ok(&["elbv2", "describe-load-balancers", "--names", "web"])
        .await;
    assert_eq!(d["LoadBalancers"][0]["State"]["Code"], "active");

    let tg = g
        .ok(&[
            "elbv2",
            "create-target-group",
            "--name",
            "web-tg",
            "--protocol",
            "HTTP",
            "--port",
            "80",
            "--vpc-id",
            &vpc,
        ])
        .await;
    let tg_arn = s(&tg["TargetGroups"][0]["TargetGroupArn"]);
    g.ok(&[
        "elbv2",
        "register-targets",
        "--target-group-arn",
        &tg_arn,
        "--targets",
        &format!("Id={instance}"),
    ])
    .await;
    let l = g
        .ok(&[
            "elbv2",
            "create-listener",
            "--load-balancer-arn",
            &lb_arn,
            "--protocol",
            "HTTP",
            "--port",
            "80",
            "--default-actions",
            &format!("Type=forward,TargetGroupArn={tg_arn}"),
        ])
        .await;
    let l_arn = s(&l["Listeners"][0]["ListenerArn"]);
    let h = g
        .ok(&[
            "elbv2",
            "describe-target-health",
            "--target-group-arn",
            &tg_arn,
        ])
        .await;
    assert_eq!(
        h["TargetHealthDescriptions"][0]["TargetHealth"]["State"],
        "initial"
    );
    assert_eq!(
        h["TargetHealthDescriptions"][0]["Target"]["Id"],
        instance.as_str()
    );

    let conditions = r#"[{"Field":"path-pattern","Values":["/api/*"]}]"#;
    let actions = format!(r#"[{{"Type":"forward","TargetGroupArn":"{tg_arn}"}}]"#);
    g.ok(&[
        "elbv2",
        "create-rule",
        "--listener-arn",
        &l_arn,
        "--priority",
        "5",
        "--conditions",
        conditions,
        "--actions",
        &actions,
    ])
    .await;
    let e = g
        .err(&[
            "elbv2",
            "create-rule",
            "--listener-arn",
            &l_arn,
            "--priority",
            "5",
            "--conditions",
            conditions,
            "--actions",
            &actions,
        ])
        .await;
    assert!(
        e.contains("(PriorityInUse)") && e.contains("Priority '5' is currently in use"),
        "{e}"
    );
    let rules = g
        .ok(&["elbv2", "describe-rules", "--listener-arn", &l_arn])
        .await;
    assert_eq!(rules["Rules"].as_array().unwrap().len(), 2);
    let attrs = g
        .ok(&[
            "elbv2",
            "describe-load-balancer-attributes",
            "--load-balancer-arn",
            &lb_arn,
        ])
        .await;
    assert!(
        attrs["Attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["Key"] == "idle_timeout.timeout_seconds" && a["Value"] == "60")
    );

    let e = g
        .err(&[
            "elbv2",
            "delete-target-group",
            "--target-group-arn",
            &tg_arn,
        ])
        .await;
    assert!(e.contains("(ResourceInUse)"), "{e}");
    g.ok(&[
        "elbv2",
        "delete-load-balancer",
        "--load-balancer-arn",
        &lb_arn,
    ])
    .await;
    g.ok(&[
        "elbv2",
        "delete-target-group",
        "--target-group-arn",
        &tg_arn,
    ])
    .await;
    let e = g
        .err(&["elbv2", "describe-target-groups", "--names", "web-tg"])
        .await;
    assert!(e.contains("(TargetGroupNotFound)"), "{e}");
    g.stop().await;
}
