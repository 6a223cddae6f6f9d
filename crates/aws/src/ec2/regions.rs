//! Regions, availability zones and account attributes, and the per-region defaults every AWS account has.
//!
//! Decision (default VPC): real accounts have a default VPC `172.31.0.0/16` in every region, with a
//! default `/20` subnet per zone, an attached internet gateway and a `0.0.0.0/0` route to it. Tools
//! assume it (`aws ec2 run-instances` without a subnet, DescribeAccountAttributes `default-vpc`), and
//! EKS stacks that build their own VPC do not mind it. So it is created lazily, in one transaction,
//! on the first EC2 call in a region; deleting it afterwards is allowed, as on AWS, and it is not
//! recreated (a marker record remembers the region was initialised).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::common::{self, Txn, str_list};
use super::errors::error;
use super::{filters, internet_gateways, subnets, vpcs};
use crate::context::RequestContext;

/// Regions that need no opt-in, as DescribeRegions lists them.
pub(crate) const REGIONS: &[&str] = &[
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ca-central-1",
    "eu-central-1",
    "eu-north-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

/// Zone letters visible in a region (most accounts see these).
fn zone_letters(region: &str) -> &'static [char] {
    match region {
        "us-east-1" => &['a', 'b', 'c', 'd', 'e', 'f'],
        "us-west-1" => &['a', 'b'],
        "ap-northeast-1" => &['a', 'c', 'd'],
        "us-west-2" | "ap-northeast-2" | "eu-west-1" | "eu-central-1" => &['a', 'b', 'c', 'd'],
        _ => &['a', 'b', 'c'],
    }
}

/// `us-east-1` -> `use1`, `ap-northeast-1` -> `apne1`, `eu-central-1` -> `euc1` (zone id prefix).
fn zone_id_prefix(region: &str) -> String {
    let parts: Vec<&str> = region.split('-').collect();
    match parts.as_slice() {
        [geo, dir, num] => {
            let d = match *dir {
                "northeast" => "ne",
                "southeast" => "se",
                "northwest" => "nw",
                "southwest" => "sw",
                "central" => "c",
                other => &other[..1.min(other.len())],
            };
            format!("{geo}{d}{num}")
        }
        _ => region.replace('-', ""),
    }
}

/// The availability zones of a region: (name, id), in name order.
pub fn zones(region: &str) -> Vec<(String, String)> {
    let prefix = zone_id_prefix(region);
    zone_letters(region)
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("{region}{l}"), format!("{prefix}-az{}", i + 1)))
        .collect()
}

/// Zone id of a zone name in this region, when the zone exists.
pub fn zone_id(region: &str, zone: &str) -> Option<String> {
    zones(region)
        .into_iter()
        .find(|(n, _)| n == zone)
        .map(|(_, id)| id)
}

pub(crate) fn invalid_zone(region: &str, zone: &str) -> AwsError {
    let names: Vec<String> = zones(region).into_iter().map(|(n, _)| n).collect();
    error(
        "InvalidAvailabilityZone",
        &[("zone", zone), ("zones", &names.join(", "))],
    )
}

const DEFAULTS_KIND: &str = "region-defaults";

/// The per-region defaults record: default VPC (if any was made) and DHCP options id.
pub(crate) async fn defaults(ctx: &RequestContext) -> Result<Value, AwsError> {
    if let Some((v, _)) = common::load(ctx, DEFAULTS_KIND, "defaults").await? {
        return Ok(v);
    }
    let _guard = common::write_lock(ctx).await;
    if let Some((v, _)) = common::load(ctx, DEFAULTS_KIND, "defaults").await? {
        return Ok(v);
    }
    let dhcp = crate::resources::new_id("dopt");
    let cidr: Ipv4Net = "172.31.0.0/16".parse().expect("literal CIDR");
    let mut txn = Txn::new();
    let built = vpcs::build(ctx, cidr, "default", true, Vec::new(), &dhcp);
    let vpc_id = built.vpc["VpcId"].as_str().unwrap_or_default().to_string();
    let mut acl = built.acl.clone();
    for (i, (zone, _)) in zones(&ctx.region).iter().enumerate() {
        let base = u32::from(Ipv4Addr::new(172, 31, 0, 0)) + ((i as u32) << 12);
        let net = Ipv4Net::new(Ipv4Addr::from(base), 20).expect("prefix 20 is valid");
        let mut subnet = subnets::build(ctx, &vpc_id, net, zone, Vec::new());
        subnet["DefaultForAz"] = json!(true);
        subnet["MapPublicIpOnLaunch"] = json!(true);
        super::network_acls::associate_new_subnet(
            &mut acl,
            subnet["SubnetId"].as_str().unwrap_or_default(),
        );
        txn.create(
            ctx,
            "subnet",
            subnet["SubnetId"].as_str().unwrap_or_default(),
            &subnet,
        );
    }
    let igw = internet_gateways::build_attached(ctx, &vpc_id);
    let igw_id = igw["InternetGatewayId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut rtb = built.main_route_table.clone();
    if let Some(routes) = rtb["Routes"].as_array_mut() {
        routes.push(
            json!({"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": igw_id,
                           "Origin": "CreateRoute", "State": "active"}),
        );
    }
    txn.create(ctx, "vpc", &vpc_id, &built.vpc);
    txn.create(
        ctx,
        "route-table",
        rtb["RouteTableId"].as_str().unwrap_or_default(),
        &rtb,
    );
    txn.create(
        ctx,
        "security-group",
        built.sg["GroupId"].as_str().unwrap_or_default(),
        &built.sg,
    );
    txn.create(
        ctx,
        "network-acl",
        acl["NetworkAclId"].as_str().unwrap_or_default(),
        &acl,
    );
    txn.create(ctx, "internet-gateway", &igw_id, &igw);
    let record = json!({"DefaultVpcId": vpc_id, "DhcpOptionsId": dhcp});
    txn.create(ctx, DEFAULTS_KIND, "defaults", &record);
    txn.commit(ctx).await?;
    Ok(record)
}

/// The default VPC's id in this region, if it still exists.
///
/// Reads only: callers may hold the write lock, which [`defaults`] takes to create the VPC.
pub(crate) async fn default_vpc_id(ctx: &RequestContext) -> Result<Option<String>, AwsError> {
    let Some((d, _)) = common::load(ctx, DEFAULTS_KIND, "defaults").await? else {
        return Ok(None);
    };
    let Some(id) = d["DefaultVpcId"].as_str() else {
        return Ok(None);
    };
    Ok(common::load(ctx, "vpc", id).await?.map(|_| id.to_string()))
}

const REGION_FILTERS: &[(&str, &str)] = &[
    ("endpoint", "Endpoint"),
    ("region-name", "RegionName"),
    ("opt-in-status", "OptInStatus"),
];

#[doc(alias = "DescribeRegions")]
pub(crate) async fn describe_regions(
    _ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let filters = filters::parse(&input, REGION_FILTERS)?;
    let names = str_list(&input, "RegionNames");
    if let Some(bad) = names.iter().find(|n| !REGIONS.contains(&n.as_str())) {
        return Err(error("InvalidRegion", &[("name", bad)]));
    }
    let regions: Vec<Value> = REGIONS
        .iter()
        .filter(|r| names.is_empty() || names.iter().any(|n| n == *r))
        .map(|r| {
            json!({"RegionName": r, "Endpoint": format!("ec2.{r}.amazonaws.com"),
                   "OptInStatus": "opt-in-not-required"})
        })
        .filter(|r| filters::matches(r, &filters, REGION_FILTERS, "Tags"))
        .collect();
    Ok(json!({ "Regions": regions }))
}

const ZONE_FILTERS: &[(&str, &str)] = &[
    ("group-name", "GroupName"),
    ("message", "Messages.Message"),
    ("opt-in-status", "OptInStatus"),
    ("region-name", "RegionName"),
    ("state", "State"),
    ("zone-id", "ZoneId"),
    ("zone-name", "ZoneName"),
    ("zone-type", "ZoneType"),
];

#[doc(alias = "DescribeAvailabilityZones")]
pub(crate) async fn describe_availability_zones(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let filters = filters::parse(&input, ZONE_FILTERS)?;
    let names = str_list(&input, "ZoneNames");
    let ids = str_list(&input, "ZoneIds");
    let all = zones(&ctx.region);
    for n in &names {
        if !all.iter().any(|(z, _)| z == n) {
            return Err(error("InvalidZone.NotFound", &[("name", n)]));
        }
    }
    for n in &ids {
        if !all.iter().any(|(_, z)| z == n) {
            return Err(error("InvalidZone.NotFound", &[("name", n)]));
        }
    }
    let out: Vec<Value> = all
        .iter()
        .filter(|(n, id)| {
            (names.is_empty() && ids.is_empty()) || names.contains(n) || ids.contains(id)
        })
        .map(|(n, id)| {
            json!({"State": "available", "OptInStatus": "opt-in-not-required", "Messages": [],
                   "RegionName": ctx.region, "ZoneName": n, "ZoneId": id, "GroupName": ctx.region,
                   "NetworkBorderGroup": ctx.region, "ZoneType": "availability-zone"})
        })
        .filter(|z| filters::matches(z, &filters, ZONE_FILTERS, "Tags"))
        .collect();
    Ok(json!({ "AvailabilityZones": out }))
}

#[doc(alias = "DescribeAccountAttributes")]
pub(crate) async fn describe_account_attributes(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let default_vpc = default_vpc_id(ctx).await?.unwrap_or_else(|| "none".into());
    let all = [
        ("supported-platforms", vec!["VPC".to_string()]),
        ("default-vpc", vec![default_vpc]),
        ("max-instances", vec!["20".into()]),
        ("max-elastic-ips", vec!["5".into()]),
        ("vpc-max-elastic-ips", vec!["5".into()]),
        ("vpc-max-security-groups-per-interface", vec!["5".into()]),
    ];
    let wanted = str_list(&input, "AttributeNames");
    let out: Vec<Value> = all
        .iter()
        .filter(|(n, _)| wanted.is_empty() || wanted.iter().any(|w| w == n))
        .map(|(n, vals)| {
            json!({"AttributeName": n,
                   "AttributeValues": vals.iter().map(|v| json!({"AttributeValue": v})).collect::<Vec<_>>()})
        })
        .collect();
    Ok(json!({ "AccountAttributes": out }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_ids_follow_aws_naming() {
        assert_eq!(zone_id_prefix("us-east-1"), "use1");
        assert_eq!(zone_id_prefix("ap-northeast-1"), "apne1");
        assert_eq!(zone_id_prefix("eu-central-1"), "euc1");
        assert_eq!(zone_id_prefix("us-west-2"), "usw2");
        let z = zones("us-east-1");
        assert_eq!(z.len(), 6);
        assert_eq!(z[0], ("us-east-1a".to_string(), "use1-az1".to_string()));
        assert_eq!(
            zone_id("eu-west-1", "eu-west-1b").as_deref(),
            Some("euw1-az2")
        );
        assert_eq!(zone_id("eu-west-1", "eu-west-1z"), None);
    }
}
