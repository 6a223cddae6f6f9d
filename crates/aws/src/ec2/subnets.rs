//! Subnets: CreateSubnet, DescribeSubnets, DeleteSubnet, ModifySubnetAttribute, and the subnet's private
//! IPv4 address pool (network interfaces, instances, NAT gateways and later pod IPs draw from it).
//!
//! AWS reserves the first four addresses and the last one of every subnet, so a `/24` has 251 usable;
//! `AvailableIpAddressCount` is that minus the addresses in use (kept in the record's `_usedRanges`, see [`super::address_pool`]).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::address_pool::AddressPool;
use super::common::{self, Describe, Txn, opt_attr_bool, opt_str, req_str};
use super::errors::{dependency, error, invalid_value};
use super::{network_acls, regions, tags, vpcs};
use crate::context::RequestContext;
use crate::resources::new_id;

pub(crate) const DESCRIBE: Describe = Describe {
    kind: "subnet",
    id_field: "SubnetId",
    ids_member: "SubnetIds",
    id_prefix: "subnet",
    not_found: "InvalidSubnetID.NotFound",
    malformed: "InvalidSubnetID.Malformed",
    tags_field: "Tags",
    filters: &[
        ("availability-zone", "AvailabilityZone"),
        ("availabilityZone", "AvailabilityZone"),
        ("availability-zone-id", "AvailabilityZoneId"),
        ("available-ip-address-count", "AvailableIpAddressCount"),
        ("cidr", "CidrBlock"),
        ("cidr-block", "CidrBlock"),
        ("cidrBlock", "CidrBlock"),
        ("default-for-az", "DefaultForAz"),
        ("defaultForAz", "DefaultForAz"),
        (
            "ipv6-cidr-block-association.ipv6-cidr-block",
            "Ipv6CidrBlockAssociationSet.Ipv6CidrBlock",
        ),
        ("map-public-ip-on-launch", "MapPublicIpOnLaunch"),
        ("owner-id", "OwnerId"),
        ("state", "State"),
        ("subnet-arn", "SubnetArn"),
        ("subnet-id", "SubnetId"),
        ("vpc-id", "VpcId"),
    ],
    max_results: (5, 1000),
};

/// Usable addresses of a subnet (size minus AWS's five reserved).
fn usable(net: Ipv4Net) -> i64 {
    (1i64 << (32 - net.prefix_len())) - 5
}

/// Build (not store) a subnet record.
pub(crate) fn build(
    ctx: &RequestContext,
    vpc_id: &str,
    cidr: Ipv4Net,
    zone: &str,
    tags: Vec<Value>,
) -> Value {
    let id = new_id("subnet");
    json!({
        "SubnetId": id,
        "SubnetArn": common::arn(ctx, &format!("subnet/{id}")),
        "VpcId": vpc_id,
        "CidrBlock": cidr.to_string(),
        "AvailabilityZone": zone,
        "AvailabilityZoneId": regions::zone_id(&ctx.region, zone).unwrap_or_default(),
        "AvailableIpAddressCount": usable(cidr),
        "DefaultForAz": false,
        "MapPublicIpOnLaunch": false,
        "MapCustomerOwnedIpOnLaunch": false,
        "AssignIpv6AddressOnCreation": false,
        "EnableDns64": false,
        "Ipv6Native": false,
        "Ipv6CidrBlockAssociationSet": [],
        "OwnerId": ctx.account_id,
        "State": "available",
        "PrivateDnsNameOptionsOnLaunch": {
            "HostnameType": "ip-name",
            "EnableResourceNameDnsARecord": false,
            "EnableResourceNameDnsAAAARecord": false,
        },
        "Tags": tags,
        "_usedRanges": [],
    })
}

pub(crate) fn cidr_of(subnet: &Value) -> Option<Ipv4Net> {
    subnet["CidrBlock"].as_str()?.parse().ok()
}

/// Take `count` free addresses (lowest first) plus the `requested` ones from the subnet's pool.
/// Refuses addresses outside the subnet, reserved or in use, and a pool too small; on refusal the
/// subnet is unchanged.
pub(crate) fn allocate(
    subnet: &mut Value,
    count: usize,
    requested: &[Ipv4Addr],
) -> Result<Vec<Ipv4Addr>, AwsError> {
    let subnet_id = subnet["SubnetId"].as_str().unwrap_or_default().to_string();
    let net = cidr_of(subnet).ok_or_else(|| invalid_value("subnet has no IPv4 CIDR"))?;
    let mut pool = AddressPool::load(subnet);
    // AWS reserves the network address and the next three, and the broadcast address.
    let first = u32::from(net.network()) + 4;
    let last = u32::from(net.broadcast()).saturating_sub(1);
    let mut out = Vec::with_capacity(requested.len() + count);
    for ip in requested {
        let n = u32::from(*ip);
        if !net.contains(ip) || n < first || n > last {
            return Err(invalid_value(format!(
                "Address {ip} does not fall within the subnet's address range"
            )));
        }
        if !pool.insert(n) {
            return Err(error(
                "InvalidIPAddress.InUse.Private",
                &[("ip", &ip.to_string())],
            ));
        }
        out.push(*ip);
    }
    let Some(taken) = pool.take_lowest(count, first, last) else {
        return Err(error(
            "InsufficientFreeAddressesInSubnet",
            &[("id", &subnet_id)],
        ));
    };
    out.extend(taken.into_iter().map(Ipv4Addr::from));
    pool.store(subnet, usable(net));
    Ok(out)
}

/// Return addresses to the pool.
pub(crate) fn release(subnet: &mut Value, ips: &[String]) {
    let Some(net) = cidr_of(subnet) else { return };
    let mut pool = AddressPool::load(subnet);
    for ip in ips.iter().filter_map(|s| s.parse::<Ipv4Addr>().ok()) {
        pool.remove(u32::from(ip));
    }
    pool.store(subnet, usable(net));
}

#[doc(alias = "CreateSubnet")]
pub(crate) async fn create_subnet(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let vpc_id = req_str(&input, "VpcId")?;
    let cidr_text = req_str(&input, "CidrBlock")?;
    let cidr = vpcs::parse_cidr(cidr_text, "cidrBlock")?;
    let tags = tags::for_create(&input, "subnet")?;
    let zones = regions::zones(&ctx.region);
    let zone = match (
        opt_str(&input, "AvailabilityZone"),
        opt_str(&input, "AvailabilityZoneId"),
    ) {
        (Some(z), _) => {
            if !zones.iter().any(|(n, _)| n == z) {
                return Err(regions::invalid_zone(&ctx.region, z));
            }
            Some(z.to_string())
        }
        (None, Some(id)) => Some(
            zones
                .iter()
                .find(|(_, zid)| zid == id)
                .map(|(n, _)| n.clone())
                .ok_or_else(|| regions::invalid_zone(&ctx.region, id))?,
        ),
        (None, None) => None,
    };
    let _guard = common::write_lock(ctx).await;
    let (vpc, _) = common::load_or(ctx, "vpc", vpc_id, "InvalidVpcID.NotFound").await?;
    if !(16..=28).contains(&cidr.prefix_len())
        || !vpcs::cidrs(&vpc).iter().any(|v| v.contains(&cidr))
    {
        return Err(error("InvalidSubnet.Range", &[("cidr", cidr_text)]));
    }
    let siblings: Vec<Value> = common::load_all(ctx, "subnet")
        .await?
        .into_iter()
        .filter(|s| s["VpcId"] == vpc_id)
        .collect();
    for s in &siblings {
        if let Some(other) = cidr_of(s)
            && (other.contains(&cidr) || cidr.contains(&other))
        {
            return Err(error("InvalidSubnet.Conflict", &[("cidr", cidr_text)]));
        }
    }
    // No zone given: AWS picks one; the least used zone of this VPC spreads subnets like it does.
    let zone = zone.unwrap_or_else(|| {
        zones
            .iter()
            .min_by_key(|(n, _)| {
                siblings
                    .iter()
                    .filter(|s| s["AvailabilityZone"] == n.as_str())
                    .count()
            })
            .map(|(n, _)| n.clone())
            .unwrap_or_default()
    });
    let subnet = build(ctx, vpc_id, cidr, &zone, tags);
    let subnet_id = subnet["SubnetId"].as_str().unwrap_or_default();
    let acl_id = vpc["_default_network_acl"].as_str().unwrap_or_default();
    let mut txn = Txn::new();
    txn.create(ctx, "subnet", subnet_id, &subnet);
    if let Some((mut acl, rev)) = common::load(ctx, "network-acl", acl_id).await? {
        network_acls::associate_new_subnet(&mut acl, subnet_id);
        txn.update(ctx, "network-acl", acl_id, &acl, rev);
    }
    txn.commit(ctx).await?;
    Ok(json!({ "Subnet": common::public(&subnet) }))
}

#[doc(alias = "DescribeSubnets")]
pub(crate) async fn describe_subnets(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let (items, next) = common::describe(ctx, &input, &DESCRIBE).await?;
    Ok(common::listing("Subnets", items, next))
}

#[doc(alias = "DeleteSubnet")]
pub(crate) async fn delete_subnet(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let subnet_id = req_str(&input, "SubnetId")?;
    if !common::well_formed(subnet_id, "subnet") {
        return Err(error("InvalidSubnetID.Malformed", &[("id", subnet_id)]));
    }
    let _guard = common::write_lock(ctx).await;
    common::load_or(ctx, "subnet", subnet_id, "InvalidSubnetID.NotFound").await?;
    let deps = ["network-interface", "natgateway"];
    for kind in deps {
        if common::load_all(ctx, kind)
            .await?
            .iter()
            .any(|r| r["SubnetId"] == subnet_id)
        {
            return Err(dependency(format!(
                "The subnet '{subnet_id}' has dependencies and cannot be deleted."
            )));
        }
    }
    let mut txn = Txn::new();
    // The subnet's explicit associations go with it, as on AWS.
    for (kind, id_field) in [
        ("network-acl", "NetworkAclId"),
        ("route-table", "RouteTableId"),
    ] {
        for rec in common::load_all(ctx, kind).await? {
            let assoc = common::array(&rec, "Associations");
            if assoc.iter().any(|a| a["SubnetId"] == subnet_id) {
                let id = rec[id_field].as_str().unwrap_or_default().to_string();
                let (mut rec, rev) = common::load_or(ctx, kind, &id, "InvalidID").await?;
                if let Some(a) = rec["Associations"].as_array_mut() {
                    a.retain(|a| a["SubnetId"] != subnet_id);
                }
                txn.update(ctx, kind, &id, &rec, rev);
            }
        }
    }
    txn.delete(ctx, "subnet", subnet_id);
    txn.commit(ctx).await?;
    Ok(json!({}))
}

#[doc(alias = "ModifySubnetAttribute")]
pub(crate) async fn modify_subnet_attribute(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let subnet_id = req_str(&input, "SubnetId")?;
    let _guard = common::write_lock(ctx).await;
    let (mut subnet, rev) =
        common::load_or(ctx, "subnet", subnet_id, "InvalidSubnetID.NotFound").await?;
    let mut changed = false;
    for member in [
        "MapPublicIpOnLaunch",
        "AssignIpv6AddressOnCreation",
        "MapCustomerOwnedIpOnLaunch",
        "EnableDns64",
    ] {
        if let Some(v) = opt_attr_bool(&input, member) {
            if member == "AssignIpv6AddressOnCreation" && v {
                return Err(invalid_value(format!(
                    "Subnet {subnet_id} does not have an IPv6 CIDR block associated."
                )));
            }
            subnet[member] = json!(v);
            changed = true;
        }
    }
    for (member, field) in [
        (
            "EnableResourceNameDnsARecordOnLaunch",
            "EnableResourceNameDnsARecord",
        ),
        (
            "EnableResourceNameDnsAAAARecordOnLaunch",
            "EnableResourceNameDnsAAAARecord",
        ),
    ] {
        if let Some(v) = opt_attr_bool(&input, member) {
            subnet["PrivateDnsNameOptionsOnLaunch"][field] = json!(v);
            changed = true;
        }
    }
    if let Some(t) = opt_str(&input, "PrivateDnsHostnameTypeOnLaunch") {
        if !["ip-name", "resource-name"].contains(&t) {
            return Err(invalid_value(format!(
                "Value ({t}) for parameter PrivateDnsHostnameTypeOnLaunch is invalid."
            )));
        }
        subnet["PrivateDnsNameOptionsOnLaunch"]["HostnameType"] = json!(t);
        changed = true;
    }
    if !changed {
        return Err(error(
            "InvalidParameterCombination",
            &[("message", "No attributes specified.")],
        ));
    }
    let mut txn = Txn::new();
    txn.update(ctx, "subnet", subnet_id, &subnet, rev);
    txn.commit(ctx).await?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(cidr: &str) -> Value {
        json!({"SubnetId": "subnet-1", "CidrBlock": cidr, "_usedRanges": []})
    }

    #[test]
    fn allocation_skips_reserved_and_used_and_counts() {
        let mut s = subnet("10.0.1.0/28");
        let ips = allocate(&mut s, 2, &[]).unwrap();
        assert_eq!(
            ips,
            vec![Ipv4Addr::new(10, 0, 1, 4), Ipv4Addr::new(10, 0, 1, 5)]
        );
        assert_eq!(s["AvailableIpAddressCount"], 9);
        let e = allocate(&mut s, 0, &[Ipv4Addr::new(10, 0, 1, 5)]).unwrap_err();
        assert_eq!(e.code, "InvalidIPAddress.InUse");
        assert!(
            allocate(&mut s, 0, &[Ipv4Addr::new(10, 0, 1, 15)]).is_err(),
            "broadcast"
        );
        assert!(
            allocate(&mut s, 0, &[Ipv4Addr::new(10, 0, 1, 2)]).is_err(),
            "reserved"
        );
        let e = allocate(&mut s, 10, &[]).unwrap_err();
        assert_eq!(e.code, "InsufficientFreeAddressesInSubnet");
        assert_eq!(
            s["AvailableIpAddressCount"], 9,
            "a failed allocation changes nothing"
        );
        allocate(&mut s, 9, &[]).unwrap();
        assert_eq!(s["AvailableIpAddressCount"], 0);
        release(&mut s, &["10.0.1.4".to_string()]);
        assert_eq!(s["AvailableIpAddressCount"], 1);
        assert_eq!(
            allocate(&mut s, 1, &[]).unwrap(),
            vec![Ipv4Addr::new(10, 0, 1, 4)]
        );
    }
}

#[cfg(test)]
mod dispatch_tests {
    use super::super::testing::{ctx, err, ok};
    use serde_json::json;

    #[tokio::test]
    async fn range_conflict_zone_and_counts() {
        let c = ctx();
        let vpc = ok(&c, "CreateVpc", json!({"CidrBlock": "10.0.0.0/16"})).await;
        let vpc_id = vpc["Vpc"]["VpcId"].as_str().unwrap().to_string();
        let s = ok(
            &c,
            "CreateSubnet",
            json!({"VpcId": vpc_id, "CidrBlock": "10.0.1.0/24", "AvailabilityZone": "us-east-1b"}),
        )
        .await;
        assert_eq!(s["Subnet"]["AvailableIpAddressCount"], 251);
        assert_eq!(s["Subnet"]["AvailabilityZoneId"], "use1-az2");
        let e = err(
            &c,
            "CreateSubnet",
            json!({"VpcId": vpc_id, "CidrBlock": "10.0.1.0/25"}),
        )
        .await;
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            (
                "InvalidSubnet.Conflict",
                "The CIDR '10.0.1.0/25' conflicts with another subnet"
            )
        );
        let e = err(
            &c,
            "CreateSubnet",
            json!({"VpcId": vpc_id, "CidrBlock": "10.9.0.0/24"}),
        )
        .await;
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("InvalidSubnet.Range", "The CIDR '10.9.0.0/24' is invalid.")
        );
        let e = err(
            &c,
            "CreateSubnet",
            json!({"VpcId": vpc_id, "CidrBlock": "10.0.2.0/24", "AvailabilityZone": "us-east-1z"}),
        )
        .await;
        assert_eq!(e.code, "InvalidAvailabilityZone");
        let id = s["Subnet"]["SubnetId"].clone();
        ok(
            &c,
            "ModifySubnetAttribute",
            json!({"SubnetId": id, "MapPublicIpOnLaunch": {"Value": true}}),
        )
        .await;
        let d = ok(&c, "DescribeSubnets", json!({"Filters": [{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "map-public-ip-on-launch", "Values": ["true"]}]})).await;
        assert_eq!(d["Subnets"].as_array().unwrap().len(), 1);
        // The new subnet is associated with the VPC's default ACL.
        let acl = ok(
            &c,
            "DescribeNetworkAcls",
            json!({"Filters": [{"Name": "association.subnet-id", "Values": [id]}]}),
        )
        .await;
        assert_eq!(acl["NetworkAcls"][0]["IsDefault"], true);
        // An interface in the subnet blocks its deletion and uses an address.
        let eni = ok(&c, "CreateNetworkInterface", json!({"SubnetId": id})).await;
        let d = ok(&c, "DescribeSubnets", json!({"SubnetIds": [id]})).await;
        assert_eq!(d["Subnets"][0]["AvailableIpAddressCount"], 250);
        let e = err(&c, "DeleteSubnet", json!({"SubnetId": id})).await;
        assert_eq!(e.code, "DependencyViolation");
        ok(
            &c,
            "DeleteNetworkInterface",
            json!({"NetworkInterfaceId": eni["NetworkInterface"]["NetworkInterfaceId"]}),
        )
        .await;
        ok(&c, "DeleteSubnet", json!({"SubnetId": id})).await;
        let acl = ok(
            &c,
            "DescribeNetworkAcls",
            json!({"Filters": [{"Name": "association.subnet-id", "Values": [id]}]}),
        )
        .await;
        assert!(acl["NetworkAcls"].as_array().unwrap().is_empty());
    }
}
