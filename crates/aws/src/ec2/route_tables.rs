//! Route tables: Create/Delete/DescribeRouteTables, Create/Delete/ReplaceRoute, Associate/Disassociate/
//! ReplaceRouteTableAssociation.
//!
//! Every VPC has one main route table (association with `Main: true`); subnets without an explicit
//! association use it. Each VPC CIDR block has a `local` route that cannot be removed.

use ipnet::Ipv4Net;
use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::common::{self, Describe, Txn, opt_str, req_str};
use super::errors::{dependency, error, invalid_value};
use super::tags;
use crate::context::RequestContext;
use crate::resources::new_id;

pub(crate) const DESCRIBE: Describe = Describe {
    kind: "route-table",
    id_field: "RouteTableId",
    ids_member: "RouteTableIds",
    id_prefix: "rtb",
    not_found: "InvalidRouteTableID.NotFound",
    malformed: "InvalidRouteTableID.Malformed",
    tags_field: "Tags",
    filters: &[
        ("association.gateway-id", "Associations.GatewayId"),
        (
            "association.route-table-association-id",
            "Associations.RouteTableAssociationId",
        ),
        ("association.route-table-id", "Associations.RouteTableId"),
        ("association.subnet-id", "Associations.SubnetId"),
        ("association.main", "Associations.Main"),
        ("owner-id", "OwnerId"),
        ("route-table-id", "RouteTableId"),
        (
            "route.destination-cidr-block",
            "Routes.DestinationCidrBlock",
        ),
        (
            "route.destination-ipv6-cidr-block",
            "Routes.DestinationIpv6CidrBlock",
        ),
        (
            "route.destination-prefix-list-id",
            "Routes.DestinationPrefixListId",
        ),
        (
            "route.egress-only-internet-gateway-id",
            "Routes.EgressOnlyInternetGatewayId",
        ),
        ("route.gateway-id", "Routes.GatewayId"),
        ("route.instance-id", "Routes.InstanceId"),
        ("route.nat-gateway-id", "Routes.NatGatewayId"),
        ("route.transit-gateway-id", "Routes.TransitGatewayId"),
        ("route.origin", "Routes.Origin"),
        ("route.state", "Routes.State"),
        (
            "route.vpc-peering-connection-id",
            "Routes.VpcPeeringConnectionId",
        ),
        ("vpc-id", "VpcId"),
    ],
    max_results: (5, 100),
};

fn association(rtb_id: &str, main: bool) -> Value {
    json!({"Main": main, "RouteTableAssociationId": new_id("rtbassoc"), "RouteTableId": rtb_id,
           "AssociationState": {"State": "associated"}})
}

/// Build (not store) a route table with a local route per CIDR.
pub(crate) fn build(
    ctx: &RequestContext,
    vpc_id: &str,
    cidrs: &[Ipv4Net],
    main: bool,
    tags: Vec<Value>,
) -> Value {
    let id = new_id("rtb");
    let mut rtb = json!({
        "RouteTableId": id,
        "VpcId": vpc_id,
        "OwnerId": ctx.account_id,
        "Routes": [],
        "Associations": if main { vec![association(&id, true)] } else { Vec::new() },
        "PropagatingVgws": [],
        "Tags": tags,
    });
    for c in cidrs {
        add_local_route(&mut rtb, *c);
    }
    rtb
}

pub(crate) fn add_local_route(rtb: &mut Value, cidr: Ipv4Net) {
    if let Some(routes) = rtb["Routes"].as_array_mut() {
        routes.push(
            json!({"DestinationCidrBlock": cidr.to_string(), "GatewayId": "local",
                           "Origin": "CreateRouteTable", "State": "active"}),
        );
    }
}

#[doc(alias = "CreateRouteTable")]
pub(crate) async fn create_route_table(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let vpc_id = req_str(&input, "VpcId")?;
    let tags = tags::for_create(&input, "route-table")?;
    let _guard = common::write_lock(ctx).await;
    let (vpc, _) = common::load_or(ctx, "vpc", vpc_id, "InvalidVpcID.NotFound").await?;
    let rtb = build(ctx, vpc_id, &super::vpcs::cidrs(&vpc), false, tags);
    let mut txn = Txn::new();
    txn.create(
        ctx,
        "route-table",
        rtb["RouteTableId"].as_str().unwrap_or_default(),
        &rtb,
    );
    txn.commit(ctx).await?;
    Ok(json!({ "RouteTable": common::public(&rtb) }))
}

#[doc(alias = "DescribeRouteTables")]
pub(crate) async fn describe_route_tables(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let (items, next) = common::describe(ctx, &input, &DESCRIBE).await?;
    Ok(common::listing("RouteTables", items, next))
}

#[doc(alias = "DeleteRouteTable")]
pub(crate) async fn delete_route_table(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let id = req_str(&input, "RouteTableId")?;
    let _guard = common::write_lock(ctx).await;
    let (rtb, _) = common::load_or(ctx, "route-table", id, "InvalidRouteTableID.NotFound").await?;
    if !common::array(&rtb, "Associations").is_empty() {
        return Err(dependency(format!(
            "The routeTable '{id}' has dependencies and cannot be deleted."
        )));
    }
    let mut txn = Txn::new();
    txn.delete(ctx, "route-table", id);
    txn.commit(ctx).await?;
    Ok(json!({}))
}

const TARGETS: &[&str] = &[
    "GatewayId",
    "NatGatewayId",
    "NetworkInterfaceId",
    "InstanceId",
    "VpcPeeringConnectionId",
    "EgressOnlyInternetGatewayId",
    "TransitGatewayId",
    "LocalGatewayId",
    "CarrierGatewayId",
    "VpcEndpointId",
];

/// Check the route's single target exists in the table's VPC and return the route's target members.
async fn resolve_target(
    ctx: &RequestContext,
    input: &Value,
    vpc_id: &str,
    rtb_id: &str,
) -> Result<Vec<(String, Value)>, AwsError> {
    let given: Vec<(&str, &str)> = TARGETS
        .iter()
        .filter_map(|t| opt_str(input, t).map(|v| (*t, v)))
        .collect();
    let [(member, id)] = given.as_slice() else {
        return Err(error(
            "InvalidParameterCombination",
            &[(
                "message",
                "The request must contain exactly one of gatewayId, natGatewayId, networkInterfaceId, vpcPeeringConnectionId, egressOnlyInternetGatewayId, transitGatewayId, localGatewayId, carrierGatewayId, instanceId or vpcEndpointId",
            )],
        ));
    };
    let different = || {
        invalid_value(format!(
            "route table {rtb_id} and network gateway {id} belong to different networks"
        ))
    };
    let mut out = vec![(member.to_string(), json!(id))];
    match *member {
        "GatewayId" if id.starts_with("igw-") => {
            let (igw, _) = common::load_or(
                ctx,
                "internet-gateway",
                id,
                "InvalidInternetGatewayID.NotFound",
            )
            .await?;
            if !common::array(&igw, "Attachments")
                .iter()
                .any(|a| a["VpcId"] == vpc_id)
            {
                return Err(different());
            }
        }
        "GatewayId" if id.starts_with("vpce-") => {
            common::load_or(ctx, "vpc-endpoint", id, "InvalidVpcEndpointId.NotFound").await?;
        }
        "GatewayId" => return Err(error("InvalidGatewayID.NotFound", &[("id", id)])),
        "NatGatewayId" => {
            let (nat, _) = common::load_or(ctx, "natgateway", id, "NatGatewayNotFound").await?;
            if nat["VpcId"] != *vpc_id {
                return Err(different());
            }
        }
        "EgressOnlyInternetGatewayId" => {
            common::load_or(
                ctx,
                "egress-only-internet-gateway",
                id,
                "InvalidEgressOnlyInternetGatewayId.NotFound",
            )
            .await?;
        }
        "NetworkInterfaceId" => {
            let (eni, _) = common::load_or(
                ctx,
                "network-interface",
                id,
                "InvalidNetworkInterfaceID.NotFound",
            )
            .await?;
            if eni["VpcId"] != *vpc_id {
                return Err(different());
            }
        }
        "InstanceId" => {
            let (inst, _) =
                common::load_or(ctx, "instance", id, "InvalidInstanceID.NotFound").await?;
            out.push(("InstanceOwnerId".into(), json!(ctx.account_id)));
            if let Some(eni) = inst["NetworkInterfaces"][0]["NetworkInterfaceId"].as_str() {
                out.push(("NetworkInterfaceId".into(), json!(eni)));
            }
        }
        // Peering, transit and carrier gateways are not modelled: accept well-formed ids, as a
        // route to them would exist on AWS, and let the route show as active.
        _ => {}
    }
    Ok(out)
}

fn destination(input: &Value) -> Result<(&'static str, String), AwsError> {
    if let Some(c) = opt_str(input, "DestinationCidrBlock") {
        let net: Ipv4Net = c.parse().map_err(|_| {
            invalid_value(format!("Value ({c}) for parameter destinationCidrBlock is invalid. This is not a valid CIDR block."))
        })?;
        return Ok(("DestinationCidrBlock", net.trunc().to_string()));
    }
    if let Some(c) = opt_str(input, "DestinationIpv6CidrBlock") {
        return Ok(("DestinationIpv6CidrBlock", c.to_string()));
    }
    if let Some(c) = opt_str(input, "DestinationPrefixListId") {
        return Ok(("DestinationPrefixListId", c.to_string()));
    }
    Err(super::errors::missing("destinationCidrBlock"))
}

fn find_route(rtb: &Value, member: &str, dest: &str) -> Option<usize> {
    common::array(rtb, "Routes")
        .iter()
        .position(|r| r[member] == dest)
}

#[doc(alias = "CreateRoute")]
pub(crate) async fn create_route(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let rtb_id = req_str(&input, "RouteTableId")?;
    let (member, dest) = destination(&input)?;
    let _guard = common::write_lock(ctx).await;
    let (mut rtb, rev) =
        common::load_or(ctx, "route-table", rtb_id, "InvalidRouteTableID.NotFound").await?;
    let vpc_id = rtb["VpcId"].as_str().unwrap_or_default().to_string();
    let target = resolve_target(ctx, &input, &vpc_id, rtb_id).await?;
    if find_route(&rtb, member, &dest).is_some() {
        return Err(error("RouteAlreadyExists", &[("destination", &dest)]));
    }
    let mut route = json!({ member: dest, "Origin": "CreateRoute", "State": "active" });
    for (k, v) in target {
        route[k] = v;
    }
    if let Some(routes) = rtb["Routes"].as_array_mut() {
        routes.push(route);
    }
    let mut txn = Txn::new();
    txn.update(ctx, "route-table", rtb_id, &rtb, rev);
    txn.commit(ctx).await?;
    Ok(common::return_true())
}

#[doc(alias = "ReplaceRoute")]
pub(crate) async fn replace_route(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let rtb_id = req_str(&input, "RouteTableId")?;
    let (member, dest) = destination(&input)?;
    let _guard = common::write_lock(ctx).await;
    let (mut rtb, rev) =
        common::load_or(ctx, "route-table", rtb_id, "InvalidRouteTableID.NotFound").await?;
    let vpc_id = rtb["VpcId"].as_str().unwrap_or_default().to_string();
    let target = resolve_target(ctx, &input, &vpc_id, rtb_id).await?;
    let idx = find_route(&rtb, member, &dest)
        .ok_or_else(|| error("InvalidRoute.NotFound", &[("destination", &dest)]))?;
    let mut route = json!({ member: dest, "Origin": "CreateRoute", "State": "active" });
    for (k, v) in target {
        route[k] = v;
    }
    rtb["Routes"][idx] = route;
    let mut txn = Txn::new();
    txn.update(ctx, "route-table", rtb_id, &rtb, rev);
    txn.commit(ctx).await?;
    Ok(json!({}))
}

#[doc(alias = "DeleteRoute")]
pub(crate) async fn delete_route(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let rtb_id = req_str(&input, "RouteTableId")?;
    let (member, dest) = destination(&input)?;
    let _guard = common::write_lock(ctx).await;
    let (mut rtb, rev) =
        common::load_or(ctx, "route-table", rtb_id, "InvalidRouteTableID.NotFound").await?;
    let idx = find_route(&rtb, member, &dest)
        .ok_or_else(|| error("InvalidRoute.NotFound", &[("destination", &dest)]))?;
    if rtb["Routes"][idx]["GatewayId"] == "local" {
        return Err(error(
            "InvalidRoute.InvalidState",
            &[("destination", &dest)],
        ));
    }
    if let Some(routes) = rtb["Routes"].as_array_mut() {
        routes.remove(idx);
    }
    let mut txn = Txn::new();
    txn.update(ctx, "route-table", rtb_id, &rtb, rev);
    txn.commit(ctx).await?;
    Ok(json!({}))
}

/// The route table holding an association id, with its revision.
async fn by_association(ctx: &RequestContext, assoc_id: &str) -> Result<(Value, i64), AwsError> {
    for rtb in common::load_all(ctx, "route-table").await? {
        if common::array(&rtb, "Associations")
            .iter()
            .any(|a| a["RouteTableAssociationId"] == assoc_id)
        {
            let id = rtb["RouteTableId"].as_str().unwrap_or_default().to_string();
            return common::load_or(ctx, "route-table", &id, "InvalidRouteTableID.NotFound").await;
        }
    }
    Err(error("InvalidAssociationID.NotFound", &[("id", assoc_id)]))
}

#[doc(alias = "AssociateRouteTable")]
pub(crate) async fn associate_route_table(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let rtb_id = req_str(&input, "RouteTableId")?;
    let _guard = common::write_lock(ctx).await;
    let (mut rtb, rev) =
        common::load_or(ctx, "route-table", rtb_id, "InvalidRouteTableID.NotFound").await?;
    let mut assoc = association(rtb_id, false);
    let (member, target) = match (opt_str(&input, "SubnetId"), opt_str(&input, "GatewayId")) {
        (Some(s), None) => {
            let (subnet, _) = common::load_or(ctx, "subnet", s, "InvalidSubnetID.NotFound").await?;
            if subnet["VpcId"] != rtb["VpcId"] {
                return Err(invalid_value(format!(
                    "Route table {rtb_id} and subnet {s} belong to different networks"
                )));
            }
            ("SubnetId", s)
        }
        (None, Some(g)) => {
            common::load_or(
                ctx,
                "internet-gateway",
                g,
                "InvalidInternetGatewayID.NotFound",
            )
            .await?;
            ("GatewayId", g)
        }
        _ => {
            return Err(error(
                "InvalidParameterCombination",
                &[(
                    "message",
                    "Exactly one of subnetId or gatewayId must be specified.",
                )],
            ));
        }
    };
    for other in common::load_all(ctx, "route-table").await? {
        if let Some(a) = common::array(&other, "Associations")
            .iter()
            .find(|a| a[member] == target)
        {
            return Err(error(
                "Resource.AlreadyAssociated",
                &[(
                    "message",
                    &format!(
                        "the specified association for route table {rtb_id} conflicts with an existing association {}",
                        a["RouteTableAssociationId"].as_str().unwrap_or_default()
                    ),
                )],
            ));
        }
    }
    assoc[member] = json!(target);
    if let Some(list) = rtb["Associations"].as_array_mut() {
        list.push(assoc.clone());
    }
    let mut txn = Txn::new();
    txn.update(ctx, "route-table", rtb_id, &rtb, rev);
    txn.commit(ctx).await?;
    Ok(
        json!({"AssociationId": assoc["RouteTableAssociationId"], "AssociationState": {"State": "associated"}}),
    )
}

#[doc(alias = "DisassociateRouteTable")]
pub(crate) async fn disassociate_route_table(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let assoc_id = req_str(&input, "AssociationId")?;
    let _guard = common::write_lock(ctx).await;
    let (mut rtb, rev) = by_association(ctx, assoc_id).await?;
    let rtb_id = rtb["RouteTableId"].as_str().unwrap_or_default().to_string();
    if let Some(list) = rtb["Associations"].as_array_mut() {
        if list
            .iter()
            .any(|a| a["RouteTableAssociationId"] == assoc_id && a["Main"] == true)
        {
            return Err(invalid_value(format!(
                "cannot disassociate the main route table association {assoc_id}"
            )));
        }
        list.retain(|a| a["RouteTableAssociationId"] != assoc_id);
    }
    let mut txn = Txn::new();
    txn.update(ctx, "route-table", &rtb_id, &rtb, rev);
    txn.commit(ctx).await?;
    Ok(json!({}))
}

#[doc(alias = "ReplaceRouteTableAssociation")]
pub(crate) async fn replace_route_table_association(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let assoc_id = req_str(&input, "AssociationId")?;
    let new_rtb_id = req_str(&input, "RouteTableId")?;
    let _guard = common::write_lock(ctx).await;
    let (mut old, old_rev) = by_association(ctx, assoc_id).await?;
    let old_id = old["RouteTableId"].as_str().unwrap_or_default().to_string();
    let old_assoc = common::array(&old, "Associations")
        .iter()
        .find(|a| a["RouteTableAssociationId"] == assoc_id)
        .cloned()
        .unwrap_or_default();
    let mut new_assoc = association(new_rtb_id, old_assoc["Main"] == true);
    for m in ["SubnetId", "GatewayId"] {
        if let Some(v) = old_assoc.get(m) {
            new_assoc[m] = v.clone();
        }
    }
    let mut txn = Txn::new();
    if old_id == new_rtb_id {
        if let Some(list) = old["Associations"].as_array_mut() {
            list.retain(|a| a["RouteTableAssociationId"] != assoc_id);
            list.push(new_assoc.clone());
        }
        txn.update(ctx, "route-table", &old_id, &old, old_rev);
    } else {
        let (mut new, new_rev) = common::load_or(
            ctx,
            "route-table",
            new_rtb_id,
            "InvalidRouteTableID.NotFound",
        )
        .await?;
        if new["VpcId"] != old["VpcId"] {
            return Err(invalid_value(format!(
                "Route table {new_rtb_id} and association {assoc_id} belong to different networks"
            )));
        }
        if let Some(list) = old["Associations"].as_array_mut() {
            list.retain(|a| a["RouteTableAssociationId"] != assoc_id);
        }
        if let Some(list) = new["Associations"].as_array_mut() {
            list.push(new_assoc.clone());
        }
        txn.update(ctx, "route-table", &old_id, &old, old_rev);
        txn.update(ctx, "route-table", new_rtb_id, &new, new_rev);
        if new_assoc["Main"] == true {
            let vpc_id = new["VpcId"].as_str().unwrap_or_default().to_string();
            let (mut vpc, rev) =
                common::load_or(ctx, "vpc", &vpc_id, "InvalidVpcID.NotFound").await?;
            vpc["_main_route_table"] = json!(new_rtb_id);
            txn.update(ctx, "vpc", &vpc_id, &vpc, rev);
        }
    }
    txn.commit(ctx).await?;
    Ok(
        json!({"NewAssociationId": new_assoc["RouteTableAssociationId"],
              "AssociationState": {"State": "associated"}}),
    )
}

#[cfg(test)]
mod tests {
    use super::super::testing::{ctx, err, ok};
    use serde_json::json;

    #[tokio::test]
    async fn public_and_private_routing_with_nat_and_eip() {
        let c = ctx();
        let vpc = ok(&c, "CreateVpc", json!({"CidrBlock": "10.0.0.0/16"})).await;
        let vpc_id = vpc["Vpc"]["VpcId"].as_str().unwrap().to_string();
        let public = ok(
            &c,
            "CreateSubnet",
            json!({"VpcId": vpc_id, "CidrBlock": "10.0.0.0/24"}),
        )
        .await["Subnet"]["SubnetId"]
            .clone();
        let private = ok(
            &c,
            "CreateSubnet",
            json!({"VpcId": vpc_id, "CidrBlock": "10.0.1.0/24"}),
        )
        .await["Subnet"]["SubnetId"]
            .clone();
        let igw = ok(&c, "CreateInternetGateway", json!({})).await["InternetGateway"]["InternetGatewayId"].clone();

        let rt = ok(&c, "CreateRouteTable", json!({"VpcId": vpc_id})).await["RouteTable"]["RouteTableId"].clone();
        // Not attached yet: a route to it is refused.
        let e = err(
            &c,
            "CreateRoute",
            json!({"RouteTableId": rt, "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": igw}),
        )
        .await;
        assert_eq!(e.code, "InvalidParameterValue");
        ok(
            &c,
            "AttachInternetGateway",
            json!({"InternetGatewayId": igw, "VpcId": vpc_id}),
        )
        .await;
        let e = err(
            &c,
            "AttachInternetGateway",
            json!({"InternetGatewayId": igw, "VpcId": vpc_id}),
        )
        .await;
        assert_eq!(e.code, "Resource.AlreadyAssociated");
        ok(
            &c,
            "CreateRoute",
            json!({"RouteTableId": rt, "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": igw}),
        )
        .await;
        let e = err(
            &c,
            "CreateRoute",
            json!({"RouteTableId": rt, "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": igw}),
        )
        .await;
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            (
                "RouteAlreadyExists",
                "The route identified by 0.0.0.0/0 already exists."
            )
        );
        let assoc = ok(
            &c,
            "AssociateRouteTable",
            json!({"RouteTableId": rt, "SubnetId": public}),
        )
        .await;
        assert!(
            assoc["AssociationId"]
                .as_str()
                .unwrap()
                .starts_with("rtbassoc-")
        );
        let e = err(
            &c,
            "AssociateRouteTable",
            json!({"RouteTableId": rt, "SubnetId": public}),
        )
        .await;
        assert_eq!(e.code, "Resource.AlreadyAssociated");
        let e = err(&c, "DeleteRouteTable", json!({"RouteTableId": rt})).await;
        assert_eq!(e.code, "DependencyViolation");

        // NAT gateway in the public subnet with an Elastic IP; private table routes through it.
        let e = err(&c, "CreateNatGateway", json!({"SubnetId": public})).await;
        assert_eq!(e.code, "MissingParameter");
        let eip = ok(&c, "AllocateAddress", json!({"Domain": "vpc"})).await;
        let nat = ok(
            &c,
            "CreateNatGateway",
            json!({"SubnetId": public, "AllocationId": eip["AllocationId"]}),
        )
        .await;
        assert_eq!(nat["NatGateway"]["State"], "pending");
        assert_eq!(
            nat["NatGateway"]["NatGatewayAddresses"][0]["PublicIp"],
            eip["PublicIp"]
        );
        let nat_id = nat["NatGateway"]["NatGatewayId"].clone();
        let d = ok(
            &c,
            "DescribeNatGateways",
            json!({"Filter": [{"Name": "state", "Values": ["available"]}]}),
        )
        .await;
        assert_eq!(d["NatGateways"][0]["NatGatewayId"], nat_id);
        let e = err(
            &c,
            "ReleaseAddress",
            json!({"AllocationId": eip["AllocationId"]}),
        )
        .await;
        assert_eq!(e.code, "InvalidIPAddress.InUse");
        let prt = ok(&c, "CreateRouteTable", json!({"VpcId": vpc_id})).await["RouteTable"]["RouteTableId"].clone();
        ok(&c, "CreateRoute", json!({"RouteTableId": prt, "DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": nat_id})).await;
        ok(
            &c,
            "AssociateRouteTable",
            json!({"RouteTableId": prt, "SubnetId": private}),
        )
        .await;
        let d = ok(
            &c,
            "DescribeRouteTables",
            json!({"Filters": [{"Name": "route.nat-gateway-id", "Values": [nat_id]}]}),
        )
        .await;
        assert_eq!(d["RouteTables"][0]["Associations"][0]["SubnetId"], private);
        let e = err(&c, "DeleteSubnet", json!({"SubnetId": public})).await;
        assert_eq!(
            e.code, "DependencyViolation",
            "the NAT gateway's interface lives there"
        );

        // Replace the main association, then tear down.
        let main = ok(&c, "DescribeRouteTables", json!({"Filters": [{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main", "Values": ["true"]}]})).await;
        let main_assoc =
            main["RouteTables"][0]["Associations"][0]["RouteTableAssociationId"].clone();
        let e = err(
            &c,
            "DisassociateRouteTable",
            json!({"AssociationId": main_assoc}),
        )
        .await;
        assert_eq!(e.code, "InvalidParameterValue");
        let r = ok(
            &c,
            "ReplaceRouteTableAssociation",
            json!({"AssociationId": main_assoc, "RouteTableId": rt}),
        )
        .await;
        let main = ok(&c, "DescribeRouteTables", json!({"Filters": [{"Name": "association.main", "Values": ["true"]}, {"Name": "vpc-id", "Values": [vpc_id]}]})).await;
        assert_eq!(main["RouteTables"][0]["RouteTableId"], rt);
        ok(&c, "ReplaceRouteTableAssociation", json!({"AssociationId": r["NewAssociationId"], "RouteTableId": main_assoc_table(&main_assoc, &c).await})).await;
        ok(&c, "DeleteNatGateway", json!({"NatGatewayId": nat_id})).await;
        ok(
            &c,
            "ReleaseAddress",
            json!({"AllocationId": eip["AllocationId"]}),
        )
        .await;
        let e = err(
            &c,
            "DeleteRoute",
            json!({"RouteTableId": rt, "DestinationCidrBlock": "10.0.0.0/16"}),
        )
        .await;
        assert_eq!(e.code, "InvalidRoute.InvalidState");
        ok(
            &c,
            "DeleteRoute",
            json!({"RouteTableId": rt, "DestinationCidrBlock": "0.0.0.0/0"}),
        )
        .await;
    }

    /// The table that was main before: any table of the VPC other than the current main one with no routes but local.
    async fn main_assoc_table(
        _assoc: &serde_json::Value,
        c: &crate::context::RequestContext,
    ) -> serde_json::Value {
        let all = ok(c, "DescribeRouteTables", json!({})).await;
        all["RouteTables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| {
                t["Associations"].as_array().unwrap().is_empty()
                    && t["Routes"].as_array().unwrap().len() == 1
            })
            .map(|t| t["RouteTableId"].clone())
            .unwrap()
    }
}
