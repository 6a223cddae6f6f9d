//! NAT gateways: CreateNatGateway, DescribeNatGateways, DeleteNatGateway.
//!
//! A NAT gateway owns a requester-managed interface in its subnet; a public one holds an Elastic IP
//! associated with that interface. CreateNatGateway answers `pending`, as AWS does; the gateway is
//! usable at once, so the next Describe reports `available` (what waiters poll for). Deletion removes
//! the record, the interface and the address association in one transaction; waiters treat the
//! then-missing gateway as deleted.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::common::{self, Describe, Txn, opt_str, req_str};
use super::errors::{error, invalid_value, missing};
use super::network_interfaces::{self, NewInterface};
use super::tags;
use crate::context::RequestContext;
use crate::resources::new_id;

pub(crate) const DESCRIBE: Describe = Describe {
    kind: "natgateway",
    id_field: "NatGatewayId",
    ids_member: "NatGatewayIds",
    id_prefix: "nat",
    not_found: "NatGatewayNotFound",
    malformed: "NatGatewayMalformed",
    tags_field: "Tags",
    filters: &[
        ("nat-gateway-id", "NatGatewayId"),
        ("state", "State"),
        ("subnet-id", "SubnetId"),
        ("vpc-id", "VpcId"),
    ],
    max_results: (5, 1000),
};

#[doc(alias = "CreateNatGateway")]
pub(crate) async fn create_nat_gateway(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let subnet_id = req_str(&input, "SubnetId")?;
    let connectivity = opt_str(&input, "ConnectivityType").unwrap_or("public");
    if !["public", "private"].contains(&connectivity) {
        return Err(invalid_value(format!(
            "Value ({connectivity}) for parameter ConnectivityType is invalid."
        )));
    }
    let allocation_id = opt_str(&input, "AllocationId");
    if connectivity == "public" && allocation_id.is_none() {
        return Err(missing("AllocationId"));
    }
    if connectivity == "private" && allocation_id.is_some() {
        return Err(invalid_value(
            "Private NAT gateways cannot have an Elastic IP address",
        ));
    }
    let tags = tags::for_create(&input, "natgateway")?;
    let _guard = common::write_lock(ctx).await;
    let (mut subnet, subnet_rev) =
        common::load_or(ctx, "subnet", subnet_id, "InvalidSubnetID.NotFound").await?;
    let eip = match allocation_id {
        Some(a) => {
            let (eip, rev) =
                common::load_or(ctx, "elastic-ip", a, "InvalidAllocationID.NotFound").await?;
            if eip.get("AssociationId").is_some() || eip["_nat_gateway"].is_string() {
                return Err(error(
                    "Resource.AlreadyAssociated",
                    &[(
                        "message",
                        &format!("Elastic IP address [{a}] is already associated"),
                    )],
                ));
            }
            Some((eip, rev))
        }
        None => None,
    };
    let nat_id = new_id("nat");
    let primary_ip = opt_str(&input, "PrivateIpAddress")
        .map(|s| {
            s.parse().map_err(|_| {
                invalid_value(format!(
                    "Value ({s}) for parameter PrivateIpAddress is invalid."
                ))
            })
        })
        .transpose()?;
    let eni = network_interfaces::build(
        ctx,
        &mut subnet,
        NewInterface {
            description: &format!("Interface for NAT Gateway {nat_id}"),
            groups: Vec::new(),
            primary_ip,
            secondary_ips: Vec::new(),
            secondary_count: 0,
            interface_type: "nat_gateway",
            tags: Vec::new(),
        },
    )?;
    let eni_id = eni["NetworkInterfaceId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let private_ip = eni["PrivateIpAddress"].clone();
    let mut address = json!({"NetworkInterfaceId": eni_id, "PrivateIp": private_ip, "IsPrimary": true,
                             "Status": "succeeded"});
    let mut txn = Txn::new();
    if let Some((mut eip, rev)) = eip {
        let assoc = new_id("eipassoc");
        address["AllocationId"] = eip["AllocationId"].clone();
        address["PublicIp"] = eip["PublicIp"].clone();
        address["AssociationId"] = json!(assoc);
        eip["AssociationId"] = json!(assoc);
        eip["NetworkInterfaceId"] = json!(eni_id);
        eip["NetworkInterfaceOwnerId"] = json!(ctx.account_id);
        eip["PrivateIpAddress"] = private_ip.clone();
        eip["_nat_gateway"] = json!(nat_id);
        let id = eip["AllocationId"].as_str().unwrap_or_default().to_string();
        txn.update(ctx, "elastic-ip", &id, &eip, rev);
    }
    let nat = json!({
        "NatGatewayId": nat_id,
        "SubnetId": subnet_id,
        "VpcId": subnet["VpcId"],
        "State": "available",
        "ConnectivityType": connectivity,
        "CreateTime": common::now(),
        "NatGatewayAddresses": [address],
        "Tags": tags,
        "_eni": eni_id,
    });
    txn.update(ctx, "subnet", subnet_id, &subnet, subnet_rev);
    txn.create(ctx, "network-interface", &eni_id, &eni);
    txn.create(ctx, "natgateway", &nat_id, &nat);
    txn.commit(ctx).await?;
    let mut out = common::public(&nat);
    out["State"] = json!("pending");
    Ok(json!({ "NatGateway": out }))
}

#[doc(alias = "DescribeNatGateways")]
pub(crate) async fn describe_nat_gateways(
    ctx: &RequestContext,
    mut input: Value,
) -> Result<Value, AwsError> {
    // This operation names its filter list `Filter`, unlike the others.
    if let Some(f) = input.get("Filter").cloned() {
        input["Filters"] = f;
    }
    let (items, next) = common::describe(ctx, &input, &DESCRIBE).await?;
    Ok(common::listing("NatGateways", items, next))
}

#[doc(alias = "DeleteNatGateway")]
pub(crate) async fn delete_nat_gateway(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let nat_id = req_str(&input, "NatGatewayId")?;
    if !common::well_formed(nat_id, "nat") {
        return Err(error("NatGatewayMalformed", &[("id", nat_id)]));
    }
    let _guard = common::write_lock(ctx).await;
    let (nat, _) = common::load_or(ctx, "natgateway", nat_id, "NatGatewayNotFound").await?;
    let mut txn = Txn::new();
    if let Some(eni_id) = nat["_eni"].as_str()
        && let Some((eni, _)) = common::load(ctx, "network-interface", eni_id).await?
    {
        let subnet_id = eni["SubnetId"].as_str().unwrap_or_default().to_string();
        let (mut subnet, rev) =
            common::load_or(ctx, "subnet", &subnet_id, "InvalidSubnetID.NotFound").await?;
        network_interfaces::delete_into(ctx, &mut txn, &eni, &mut subnet).await;
        txn.update(ctx, "subnet", &subnet_id, &subnet, rev);
    }
    for eip in common::load_all(ctx, "elastic-ip").await? {
        if eip["_nat_gateway"] == nat_id {
            let id = eip["AllocationId"].as_str().unwrap_or_default().to_string();
            let (mut eip, rev) =
                common::load_or(ctx, "elastic-ip", &id, "InvalidAllocationID.NotFound").await?;
            if let Some(m) = eip.as_object_mut() {
                for k in [
                    "AssociationId",
                    "NetworkInterfaceId",
                    "NetworkInterfaceOwnerId",
                    "PrivateIpAddress",
                    "_nat_gateway",
                ] {
                    m.remove(k);
                }
            }
            txn.update(ctx, "elastic-ip", &id, &eip, rev);
        }
    }
    txn.delete(ctx, "natgateway", nat_id);
    txn.commit(ctx).await?;
    Ok(json!({ "NatGatewayId": nat_id }))
}
