//! Application and network load balancers: CreateLoadBalancer, DescribeLoadBalancers,
//! DeleteLoadBalancer, SetSecurityGroups, SetSubnets.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::attributes::default_lb_attributes;
use super::common::{
    arn, check_name, commit, error, key, lb_not_found, list_kind, load_lb, new_hex_id, now, page,
    put, tags_of, validation,
};
use crate::context::RequestContext;
use crate::resources;

/// Route 53 hosted zone of the region's load balancer DNS names (ALB/CLB zone, NLB zone).
pub fn canonical_hosted_zone_id(region: &str, network: bool) -> &'static str {
    let (alb, nlb) = match region {
        "us-east-1" => ("Z35SXDOTRQ7X7K", "Z26RNL4JYFTOTI"),
        "us-east-2" => ("Z3AADJGX6KTTL2", "ZLMOA37VPKANP"),
        "us-west-1" => ("Z368ELLRRE2KJ0", "Z24FKFUX50B4VW"),
        "us-west-2" => ("Z1H1FL5HABSF5", "Z18D5FSROUN65G"),
        "eu-west-1" => ("Z32O12XQLNTSW2", "Z2IFOLAFXWLO4F"),
        "eu-west-2" => ("ZHURV8PSTC4K8", "ZD4D7Y8KGAS4G"),
        "eu-central-1" => ("Z215JYRZR1TBD5", "Z3F0SRJ5LGBH90"),
        "ap-south-1" => ("ZP97RAFLXTNZK", "ZVDDRBQ08TROA"),
        "ap-southeast-1" => ("Z1LMS91P8CMLE5", "ZKVM4W9LS7TM"),
        "ap-southeast-2" => ("Z1GM3OXH4ZPM65", "ZCT6FZBF4DROD"),
        "ap-northeast-1" => ("Z14GRHDCWA56QT", "Z31USIVHYNEOWT"),
        _ => ("Z35SXDOTRQ7X7K", "Z26RNL4JYFTOTI"),
    };
    if network { nlb } else { alb }
}

/// `AvailabilityZones` of the subnets (one per zone), through EC2's DescribeSubnets; and the VPC.
async fn zones_of(
    ctx: &RequestContext,
    input: &Value,
    network: bool,
) -> Result<(Vec<Value>, String), AwsError> {
    let mut ids: Vec<String> = input["Subnets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    ids.extend(
        input["SubnetMappings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["SubnetId"].as_str().map(str::to_string)),
    );
    if ids.is_empty() {
        return Err(validation("At least one subnet must be specified"));
    }
    let out = crate::ec2::dispatch(ctx, "DescribeSubnets", json!({"SubnetIds": ids}))
        .await
        .map_err(|e| {
            let id = ids
                .iter()
                .find(|i| e.message.contains(i.as_str()))
                .cloned()
                .unwrap_or_default();
            error(
                "SubnetNotFound",
                format!("The subnet ID '{id}' is not valid"),
            )
        })?;
    let subnets: Vec<Value> = out["Subnets"].as_array().cloned().unwrap_or_default();
    let vpc = subnets[0]["VpcId"].as_str().unwrap_or_default().to_string();
    if subnets.iter().any(|s| s["VpcId"] != vpc.as_str()) {
        return Err(error(
            "InvalidSubnet",
            "All subnets must belong to the same VPC",
        ));
    }
    let mut zones: Vec<Value> = Vec::new();
    for s in &subnets {
        if zones.iter().any(|z| z["ZoneName"] == s["AvailabilityZone"]) {
            return Err(error(
                "InvalidConfigurationRequest",
                "A load balancer cannot be attached to multiple subnets in the same Availability Zone",
            ));
        }
        zones.push(json!({"ZoneName": s["AvailabilityZone"], "SubnetId": s["SubnetId"], "LoadBalancerAddresses": []}));
    }
    if !network && zones.len() < 2 {
        return Err(error(
            "InvalidConfigurationRequest",
            "At least two subnets in two different Availability Zones must be specified",
        ));
    }
    zones.sort_by(|a, b| a["ZoneName"].as_str().cmp(&b["ZoneName"].as_str()));
    Ok((zones, vpc))
}

/// Security groups must exist in the LB's VPC; an ALB without any gets the VPC's default group.
async fn security_groups(
    ctx: &RequestContext,
    input: &Value,
    vpc: &str,
    network: bool,
) -> Result<Vec<String>, AwsError> {
    let given: Vec<String> = input["SecurityGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    if given.is_empty() {
        if network {
            return Ok(Vec::new());
        }
        let d = crate::ec2::dispatch(
            ctx,
            "DescribeSecurityGroups",
            json!({"Filters": [
            {"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]}),
        )
        .await?;
        return Ok(d["SecurityGroups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g["GroupId"].as_str().map(str::to_string))
            .collect());
    }
    let d = crate::ec2::dispatch(ctx, "DescribeSecurityGroups", json!({"GroupIds": given}))
        .await
        .map_err(|_| {
            error(
                "InvalidSecurityGroup",
                "One or more security groups are invalid",
            )
        })?;
    if d["SecurityGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|g| g["VpcId"] != vpc)
    {
        return Err(error(
            "InvalidSecurityGroup",
            "One or more security groups are invalid",
        ));
    }
    Ok(given)
}

#[doc(alias = "CreateLoadBalancer")]
pub async fn create_load_balancer(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let name = input["Name"].as_str().unwrap_or_default();
    check_name("Load balancer", name)?;
    if name.starts_with("internal-") {
        return Err(validation(
            "Load balancer name cannot begin with 'internal-'",
        ));
    }
    let lb_type = input["Type"].as_str().unwrap_or("application");
    if lb_type == "gateway" {
        return Err(crate::not_implemented(
            "elasticloadbalancing",
            "CreateLoadBalancer (Type=gateway)",
        ));
    }
    let network = lb_type == "network";
    let scheme = input["Scheme"].as_str().unwrap_or("internet-facing");
    let (zones, vpc) = zones_of(ctx, &input, network).await?;
    let k = key(ctx, "lb", name);
    if let Some((existing, _)) = resources::get::<Value>(&*ctx.store, &k).await? {
        // CreateLoadBalancer is idempotent for identical settings, as on AWS.
        if existing["Type"] == lb_type
            && existing["Scheme"] == scheme
            && existing["AvailabilityZones"] == json!(zones)
        {
            return Ok(json!({ "LoadBalancers": [existing] }));
        }
        return Err(error(
            "DuplicateLoadBalancerName",
            format!(
                "A load balancer with the same name '{name}' exists, but with different settings"
            ),
        ));
    }
    let sgs = security_groups(ctx, &input, &vpc, network).await?;
    let id = new_hex_id();
    let short = if network { "net" } else { "app" };
    let internal = if scheme == "internal" {
        "internal-"
    } else {
        ""
    };
    let dns = if network {
        format!("{internal}{name}-{id}.elb.{}.amazonaws.com", ctx.region)
    } else {
        format!(
            "{internal}{name}-{}.{}.elb.amazonaws.com",
            rand::random::<u32>() % 2_000_000_000,
            ctx.region
        )
    };
    let mut lb = json!({
        "LoadBalancerArn": arn(ctx, &format!("loadbalancer/{short}/{name}/{id}")),
        "DNSName": dns,
        "CanonicalHostedZoneId": canonical_hosted_zone_id(&ctx.region, network),
        "CreatedTime": now(),
        "LoadBalancerName": name,
        "Scheme": scheme,
        "VpcId": vpc,
        // Nothing further to provision in Skiff: the stored state is active, the create answer
        // says provisioning as AWS's does.
        "State": {"Code": "active"},
        "Type": lb_type,
        "AvailabilityZones": zones,
        "IpAddressType": input["IpAddressType"].as_str().unwrap_or("ipv4"),
        "_tags": tags_of(&input)?,
        "_attributes": default_lb_attributes(network),
    });
    if !sgs.is_empty() {
        lb["SecurityGroups"] = json!(sgs);
    }
    put(ctx, &k, &lb, None).await.map_err(|_| {
        error(
            "DuplicateLoadBalancerName",
            format!(
                "A load balancer with the same name '{name}' exists, but with different settings"
            ),
        )
    })?;
    lb["State"] = json!({"Code": "provisioning"});
    Ok(json!({ "LoadBalancers": [lb] }))
}

#[doc(alias = "DescribeLoadBalancers")]
pub async fn describe_load_balancers(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let mut all = list_kind(ctx, "lb", "").await?;
    if let Some(arns) = input["LoadBalancerArns"]
        .as_array()
        .filter(|a| !a.is_empty())
    {
        if arns
            .iter()
            .any(|a| !all.iter().any(|lb| lb["LoadBalancerArn"] == *a))
        {
            return Err(lb_not_found());
        }
        all.retain(|lb| arns.contains(&lb["LoadBalancerArn"]));
    }
    if let Some(names) = input["Names"].as_array().filter(|a| !a.is_empty()) {
        if names
            .iter()
            .any(|n| !all.iter().any(|lb| lb["LoadBalancerName"] == *n))
        {
            return Err(error(
                "LoadBalancerNotFound",
                format!(
                    "Load balancers '[{}]' not found",
                    names
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        all.retain(|lb| names.contains(&lb["LoadBalancerName"]));
    }
    page(all, &input, "LoadBalancers")
}

#[doc(alias = "DeleteLoadBalancer")]
pub async fn delete_load_balancer(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let lb_arn = input["LoadBalancerArn"].as_str().unwrap_or_default();
    // Deleting an LB that is already gone succeeds, as on AWS.
    let Some((lb, rev)) = super::common::load_arn(ctx, lb_arn, "LoadBalancerArn").await? else {
        return Ok(json!({}));
    };
    if lb["_attributes"]["deletion_protection.enabled"] == "true" {
        return Err(error(
            "OperationNotPermitted",
            format!(
                "Load balancer '{lb_arn}' cannot be deleted because deletion protection is enabled"
            ),
        ));
    }
    let name = lb["LoadBalancerName"].as_str().unwrap_or_default();
    let mut ops = vec![skiff_store::Op::Delete {
        key: key(ctx, "lb", name),
        precondition: skiff_store::Precondition::ModRevision(rev),
    }];
    for kind in ["listener", "rule"] {
        let page = ctx
            .store
            .list(
                &key(ctx, kind, &format!("{name}/")),
                skiff_store::ListOptions::default(),
            )
            .await
            .map_err(resources::internal)?;
        ops.extend(page.items.iter().map(|kv| resources::delete_op(&kv.key)));
    }
    commit(ctx, ops).await?;
    Ok(json!({}))
}

#[doc(alias = "SetSecurityGroups")]
pub async fn set_security_groups(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let (mut lb, rev) = load_lb(ctx, input["LoadBalancerArn"].as_str().unwrap_or_default()).await?;
    let network = lb["Type"] == "network";
    let vpc = lb["VpcId"].as_str().unwrap_or_default().to_string();
    let sgs = security_groups(ctx, &input, &vpc, true).await?;
    if !network && sgs.is_empty() {
        return Err(validation(
            "An application load balancer must have at least one security group",
        ));
    }
    lb["SecurityGroups"] = json!(sgs);
    let name = lb["LoadBalancerName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    put(ctx, &key(ctx, "lb", &name), &lb, Some(rev)).await?;
    Ok(json!({ "SecurityGroupIds": sgs }))
}

#[doc(alias = "SetSubnets")]
pub async fn set_subnets(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let (mut lb, rev) = load_lb(ctx, input["LoadBalancerArn"].as_str().unwrap_or_default()).await?;
    let network = lb["Type"] == "network";
    let (zones, vpc) = zones_of(ctx, &input, network).await?;
    if lb["VpcId"] != vpc.as_str() {
        return Err(error(
            "InvalidSubnet",
            "Subnets must belong to the load balancer's VPC",
        ));
    }
    lb["AvailabilityZones"] = json!(zones);
    let name = lb["LoadBalancerName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    put(ctx, &key(ctx, "lb", &name), &lb, Some(rev)).await?;
    Ok(json!({ "AvailabilityZones": zones, "IpAddressType": lb["IpAddressType"] }))
}
