//! ELBv2 through the operation table: the ALB + target group + listener + rule flow and its errors.

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

/// A VPC with two subnets in two zones, and one running instance in the first.
async fn network(c: &RequestContext) -> (String, Vec<String>, String) {
    let vpc = crate::ec2::dispatch(c, "CreateVpc", json!({"CidrBlock": "10.0.0.0/16"}))
        .await
        .unwrap();
    let vpc_id = vpc["Vpc"]["VpcId"].as_str().unwrap().to_string();
    let mut subnets = Vec::new();
    for (cidr, az) in [("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")] {
        let s = crate::ec2::dispatch(
            c,
            "CreateSubnet",
            json!({"VpcId": vpc_id, "CidrBlock": cidr, "AvailabilityZone": az}),
        )
        .await
        .unwrap();
        subnets.push(s["Subnet"]["SubnetId"].as_str().unwrap().to_string());
    }
    let req = crate::ec2::LaunchRequest {
        image_id: Some("ami-0123456789abcdef0".into()),
        instance_type: Some("t3.micro".into()),
        subnet_id: Some(subnets[0].clone()),
        count: 1,
        ..Default::default()
    };
    let i = crate::ec2::run_instances_internal(c, &req).await.unwrap();
    (
        vpc_id,
        subnets,
        i[0]["InstanceId"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn alb_target_group_listener_rule_flow() {
    let c = ctx();
    let (vpc, subnets, instance) = network(&c).await;
    let lb = ok(
        &c,
        "CreateLoadBalancer",
        json!({"Name": "web", "Subnets": subnets}),
    )
    .await;
    let lb = &lb["LoadBalancers"][0];
    assert_eq!(lb["State"]["Code"], "provisioning");
    assert_eq!(lb["Type"], "application");
    assert_eq!(lb["CanonicalHostedZoneId"], "Z35SXDOTRQ7X7K");
    assert!(
        lb["DNSName"].as_str().unwrap().starts_with("web-")
            && lb["DNSName"]
                .as_str()
                .unwrap()
                .ends_with(".us-east-1.elb.amazonaws.com")
    );
    assert_eq!(
        lb["SecurityGroups"].as_array().unwrap().len(),
        1,
        "the VPC's default group"
    );
    let lb_arn = lb["LoadBalancerArn"].as_str().unwrap().to_string();
    assert!(
        lb_arn.starts_with(
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/"
        )
    );
    let d = ok(&c, "DescribeLoadBalancers", json!({"Names": ["web"]})).await;
    assert_eq!(d["LoadBalancers"][0]["State"]["Code"], "active");
    let dup = call(
        &c,
        "CreateLoadBalancer",
        json!({"Name": "web", "Subnets": subnets, "Scheme": "internal"}),
    )
    .await
    .unwrap_err();
    assert_eq!(dup.code, "DuplicateLoadBalancerName");
    let one = call(
        &c,
        "CreateLoadBalancer",
        json!({"Name": "one", "Subnets": [subnets[0]]}),
    )
    .await
    .unwrap_err();
    assert_eq!(one.code, "InvalidConfigurationRequest");
    let nf = call(
        &c,
        "DescribeLoadBalancers",
        json!({"LoadBalancerArns": [lb_arn.replace("/web/", "/nope/")]}),
    )
    .await
    .unwrap_err();
    assert_eq!(nf.code, "LoadBalancerNotFound");

    let tg = ok(
        &c,
        "CreateTargetGroup",
        json!({"Name": "web-tg", "Protocol": "HTTP", "Port": 8080, "VpcId": vpc}),
    )
    .await;
    let tg = &tg["TargetGroups"][0];
    assert_eq!(
        (
            tg["HealthCheckPath"].as_str(),
            tg["Matcher"]["HttpCode"].as_str()
        ),
        (Some("/"), Some("200"))
    );
    let tg_arn = tg["TargetGroupArn"].as_str().unwrap().to_string();
    ok(
        &c,
        "RegisterTargets",
        json!({"TargetGroupArn": tg_arn, "Targets": [{"Id": instance}]}),
    )
    .await;
    let h = ok(
        &c,
        "DescribeTargetHealth",
        json!({"TargetGroupArn": tg_arn}),
    )
    .await;
    assert_eq!(
        h["TargetHealthDescriptions"][0]["TargetHealth"]["State"],
        "unused"
    );
    assert_eq!(h["TargetHealthDescriptions"][0]["Target"]["Port"], 8080);

    let l = ok(
        &c,
        "CreateListener",
        json!({"LoadBalancerArn": lb_arn, "Protocol": "HTTP", "Port": 80,
        "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg_arn}]}),
    )
    .await;
    let l_arn = l["Listeners"][0]["ListenerArn"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        l["Listeners"][0]["DefaultActions"][0]["ForwardConfig"]["TargetGroups"][0]["TargetGroupArn"],
        tg_arn.as_str()
    );
    let again = call(&c, "CreateListener", json!({"LoadBalancerArn": lb_arn, "Protocol": "HTTP", "Port": 80,
        "DefaultActions": [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}]})).await.unwrap_err();
    assert_eq!(again.code, "DuplicateListener");
    let https = call(
        &c,
        "CreateListener",
        json!({"LoadBalancerArn": lb_arn, "Protocol": "HTTPS", "Port": 443,
        "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg_arn}]}),
    )
    .await
    .unwrap_err();
    assert_eq!(https.code, "ValidationError");

    let h = ok(
        &c,
        "DescribeTargetHealth",
        json!({"TargetGroupArn": tg_arn}),
    )
    .await;
    assert_eq!(
        h["TargetHealthDescriptions"][0]["TargetHealth"]["State"],
        "initial"
    );
    super::set_target_health(&c, &tg_arn, &instance, None, Some(("healthy", None, None)))
        .await
        .unwrap();
    let h = ok(
        &c,
        "DescribeTargetHealth",
        json!({"TargetGroupArn": tg_arn}),
    )
    .await;
    assert_eq!(
        h["TargetHealthDescriptions"][0]["TargetHealth"]["State"],
        "healthy"
    );
    let tgs = ok(
        &c,
        "DescribeTargetGroups",
        json!({"LoadBalancerArn": lb_arn}),
    )
    .await;
    assert_eq!(tgs["TargetGroups"][0]["LoadBalancerArns"], json!([lb_arn]));

    let r = ok(&c, "CreateRule", json!({"ListenerArn": l_arn, "Priority": 10,
        "Conditions": [{"Field": "path-pattern", "Values": ["/api/*"]}],
        "Actions": [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain"}}]})).await;
    assert_eq!(
        r["Rules"][0]["Conditions"][0]["PathPatternConfig"]["Values"],
        json!(["/api/*"])
    );
    let taken = call(
        &c,
        "CreateRule",
        json!({"ListenerArn": l_arn, "Priority": 10,
        "Conditions": [{"Field": "host-header", "HostHeaderConfig": {"Values": ["a.example.com"]}}],
        "Actions": [{"Type": "forward", "TargetGroupArn": tg_arn}]}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (taken.code.as_str(), taken.message.as_str()),
        ("PriorityInUse", "Priority '10' is currently in use")
    );
    let rules = ok(&c, "DescribeRules", json!({"ListenerArn": l_arn})).await;
    let prios: Vec<&str> = rules["Rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Priority"].as_str().unwrap())
        .collect();
    assert_eq!(prios, ["10", "default"]);

    let busy = call(&c, "DeleteTargetGroup", json!({"TargetGroupArn": tg_arn}))
        .await
        .unwrap_err();
    assert_eq!(busy.code, "ResourceInUse");

    ok(&c, "ModifyLoadBalancerAttributes", json!({"LoadBalancerArn": lb_arn, "Attributes": [{"Key": "deletion_protection.enabled", "Value": "true"}]})).await;
    let bad = call(
        &c,
        "ModifyLoadBalancerAttributes",
        json!({"LoadBalancerArn": lb_arn, "Attributes": [{"Key": "nope", "Value": "1"}]}),
    )
    .await
    .unwrap_err();
    assert_eq!(bad.code, "ValidationError");
    let protected = call(&c, "DeleteLoadBalancer", json!({"LoadBalancerArn": lb_arn}))
        .await
        .unwrap_err();
    assert_eq!(protected.code, "OperationNotPermitted");
    ok(&c, "ModifyLoadBalancerAttributes", json!({"LoadBalancerArn": lb_arn, "Attributes": [{"Key": "deletion_protection.enabled", "Value": "false"}]})).await;

    ok(
        &c,
        "AddTags",
        json!({"ResourceArns": [lb_arn, tg_arn], "Tags": [{"Key": "env", "Value": "dev"}]}),
    )
    .await;
    let t = ok(&c, "DescribeTags", json!({"ResourceArns": [lb_arn]})).await;
    assert_eq!(
        t["TagDescriptions"][0]["Tags"],
        json!([{"Key": "env", "Value": "dev"}])
    );
    ok(
        &c,
        "RemoveTags",
        json!({"ResourceArns": [lb_arn], "TagKeys": ["env"]}),
    )
    .await;

    ok(&c, "DeleteLoadBalancer", json!({"LoadBalancerArn": lb_arn})).await;
    assert_eq!(
        call(&c, "DescribeListeners", json!({"ListenerArns": [l_arn]}))
            .await
            .unwrap_err()
            .code,
        "ListenerNotFound"
    );
    ok(
        &c,
        "DeregisterTargets",
        json!({"TargetGroupArn": tg_arn, "Targets": [{"Id": instance}]}),
    )
    .await;
    let h = ok(
        &c,
        "DescribeTargetHealth",
        json!({"TargetGroupArn": tg_arn}),
    )
    .await;
    assert_eq!(
        h["TargetHealthDescriptions"][0]["TargetHealth"]["State"],
        "draining"
    );
    ok(&c, "DeleteTargetGroup", json!({"TargetGroupArn": tg_arn})).await;
    assert_eq!(
        call(
            &c,
            "DescribeTargetGroups",
            json!({"TargetGroupArns": [tg_arn]})
        )
        .await
        .unwrap_err()
        .code,
        "TargetGroupNotFound"
    );
}

#[tokio::test]
async fn nlb_has_its_own_dns_zone_and_protocols() {
    let c = ctx();
    let (vpc, subnets, _) = network(&c).await;
    let lb = ok(
        &c,
        "CreateLoadBalancer",
        json!({"Name": "nlb", "Type": "network", "Scheme": "internal", "Subnets": [subnets[0]]}),
    )
    .await;
    let lb = &lb["LoadBalancers"][0];
    assert_eq!(lb["CanonicalHostedZoneId"], "Z26RNL4JYFTOTI");
    let dns = lb["DNSName"].as_str().unwrap();
    assert!(
        dns.starts_with("internal-nlb-") && dns.ends_with(".elb.us-east-1.amazonaws.com"),
        "{dns}"
    );
    let http_tg = ok(
        &c,
        "CreateTargetGroup",
        json!({"Name": "h", "Protocol": "HTTP", "Port": 80, "VpcId": vpc}),
    )
    .await;
    let bad = call(&c, "CreateListener", json!({"LoadBalancerArn": lb["LoadBalancerArn"], "Protocol": "TCP", "Port": 80,
        "DefaultActions": [{"Type": "forward", "TargetGroupArn": http_tg["TargetGroups"][0]["TargetGroupArn"]}]})).await.unwrap_err();
    assert_eq!(bad.code, "IncompatibleProtocols");
    let tcp = ok(
        &c,
        "CreateTargetGroup",
        json!({"Name": "t", "Protocol": "TCP", "Port": 80, "VpcId": vpc, "TargetType": "ip"}),
    )
    .await;
    assert_eq!(tcp["TargetGroups"][0]["HealthCheckProtocol"], "TCP");
    ok(&c, "CreateListener", json!({"LoadBalancerArn": lb["LoadBalancerArn"], "Protocol": "TCP", "Port": 80,
        "DefaultActions": [{"Type": "forward", "TargetGroupArn": tcp["TargetGroups"][0]["TargetGroupArn"]}]})).await;
    // A zero deregistration delay: a deregistered target is gone at once instead of draining.
    let tcp_arn = tcp["TargetGroups"][0]["TargetGroupArn"].clone();
    let attrs = ok(
        &c,
        "ModifyTargetGroupAttributes",
        json!({"TargetGroupArn": tcp_arn,
        "Attributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": "0"}]}),
    )
    .await;
    assert_eq!(
        attrs["Attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["Key"] == "deregistration_delay.timeout_seconds")
            .unwrap()["Value"],
        "0"
    );
    let bad = call(
        &c,
        "ModifyTargetGroupAttributes",
        json!({"TargetGroupArn": tcp_arn,
        "Attributes": [{"Key": "stickiness.enabled", "Value": "maybe"}]}),
    )
    .await
    .unwrap_err();
    assert_eq!(bad.code, "ValidationError");
    ok(
        &c,
        "RegisterTargets",
        json!({"TargetGroupArn": tcp_arn, "Targets": [{"Id": "10.0.1.50"}]}),
    )
    .await;
    let bad_ip = call(
        &c,
        "RegisterTargets",
        json!({"TargetGroupArn": tcp_arn, "Targets": [{"Id": "i-0123"}]}),
    )
    .await
    .unwrap_err();
    assert_eq!(bad_ip.code, "InvalidTarget");
    ok(
        &c,
        "DeregisterTargets",
        json!({"TargetGroupArn": tcp_arn, "Targets": [{"Id": "10.0.1.50"}]}),
    )
    .await;
    let h = ok(
        &c,
        "DescribeTargetHealth",
        json!({"TargetGroupArn": tcp_arn}),
    )
    .await;
    assert_eq!(h["TargetHealthDescriptions"], json!([]));
    let l = ok(
        &c,
        "DescribeListeners",
        json!({"LoadBalancerArn": lb["LoadBalancerArn"]}),
    )
    .await;
    let la = ok(
        &c,
        "DescribeListenerAttributes",
        json!({"ListenerArn": l["Listeners"][0]["ListenerArn"]}),
    )
    .await;
    assert_eq!(
        la["Attributes"],
        json!([{"Key": "tcp.idle_timeout.seconds", "Value": "350"}])
    );
    let dup_tg = call(
        &c,
        "CreateTargetGroup",
        json!({"Name": "t", "Protocol": "TCP", "Port": 81, "VpcId": vpc}),
    )
    .await
    .unwrap_err();
    assert_eq!(dup_tg.code, "DuplicateTargetGroupName");
}
