//! Elastic IPs: AllocateAddress, DescribeAddresses, AssociateAddress, DisassociateAddress,
//! ReleaseAddress. Public addresses come from 3.208.0.0/12-style Amazon space, drawn at random and
//! kept unique per region; an association points at an interface (an instance's primary one when
//! given an instance).

use std::net::Ipv4Addr;

use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::common::{self, Describe, Txn, opt_bool, opt_str, str_list};
use super::errors::{error, invalid_value, missing};
use super::tags;
use crate::context::RequestContext;
use crate::resources::new_id;

pub(crate) const DESCRIBE: Describe = Describe {
    kind: "elastic-ip",
    id_field: "AllocationId",
    ids_member: "AllocationIds",
    id_prefix: "eipalloc",
    not_found: "InvalidAllocationID.NotFound",
    malformed: "InvalidAllocationID.Malformed",
    tags_field: "Tags",
    filters: &[
        ("allocation-id", "AllocationId"),
        ("association-id", "AssociationId"),
        ("domain", "Domain"),
        ("instance-id", "InstanceId"),
        ("network-border-group", "NetworkBorderGroup"),
        ("network-interface-id", "NetworkInterfaceId"),
        ("network-interface-owner-id", "NetworkInterfaceOwnerId"),
        ("private-ip-address", "PrivateIpAddress"),
        ("public-ip", "PublicIp"),
    ],
    max_results: (5, 1000),
};

/// A public address not yet used in this region (3.208.0.0/12 is Amazon space in us-east-1).
fn fresh_public_ip(taken: &[Value]) -> Ipv4Addr {
    use rand::Rng;
    let mut rng = rand::rng();
    loop {
        let n: u32 = u32::from(Ipv4Addr::new(3, 208, 0, 0)) + rng.random_range(1..(1 << 20) - 1);
        let ip = Ipv4Addr::from(n);
        if !taken
            .iter()
            .any(|a| a["PublicIp"] == ip.to_string().as_str())
            && ip.octets()[3] != 0
        {
            return ip;
        }
    }
}

/// Build (not store) a new address record.
pub(crate) fn build(ctx: &RequestContext, taken: &[Value], tags: Vec<Value>) -> Value {
    json!({
        "AllocationId": new_id("eipalloc"),
        "PublicIp": fresh_public_ip(taken).to_string(),
        "Domain": "vpc",
        "PublicIpv4Pool": "amazon",
        "NetworkBorderGroup": ctx.region,
        "Tags": tags,
    })
}

#[doc(alias = "AllocateAddress")]
pub(crate) async fn allocate_address(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    if let Some(d) = opt_str(&input, "Domain")
        && d != "vpc"
        && d != "standard"
    {
        return Err(invalid_value(format!(
            "Value ({d}) for parameter domain is invalid."
        )));
    }
    let tags = tags::for_create(&input, "elastic-ip")?;
    let _guard = common::write_lock(ctx).await;
    let all = common::load_all(ctx, "elastic-ip").await?;
    let eip = build(ctx, &all, tags);
    let mut txn = Txn::new();
    txn.create(
        ctx,
        "elastic-ip",
        eip["AllocationId"].as_str().unwrap_or_default(),
        &eip,
    );
    txn.commit(ctx).await?;
    Ok(
        json!({"AllocationId": eip["AllocationId"], "PublicIp": eip["PublicIp"], "Domain": "vpc",
              "PublicIpv4Pool": "amazon", "NetworkBorderGroup": ctx.region}),
    )
}

#[doc(alias = "DescribeAddresses")]
pub(crate) async fn describe_addresses(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let public_ips = str_list(&input, "PublicIps");
    let (mut items, _) = common::describe(ctx, &input, &DESCRIBE).await?;
    if !public_ips.is_empty() {
        if let Some(missing) = public_ips
            .iter()
            .find(|ip| !items.iter().any(|a| a["PublicIp"] == ip.as_str()))
        {
            return Err(error("InvalidAddress.NotFound", &[("ip", missing)]));
        }
        items.retain(|a| public_ips.iter().any(|ip| a["PublicIp"] == ip.as_str()));
    }
    // DescribeAddresses does not page.
    Ok(common::listing("Addresses", items, None))
}

/// The address an operation names by `AllocationId` or `PublicIp`.
async fn target(ctx: &RequestContext, input: &Value) -> Result<(Value, i64), AwsError> {
    if let Some(id) = opt_str(input, "AllocationId") {
        return common::load_or(ctx, "elastic-ip", id, "InvalidAllocationID.NotFound").await;
    }
    let ip = opt_str(input, "PublicIp").ok_or_else(|| missing("AllocationId"))?;
    let found = common::load_all(ctx, "elastic-ip")
        .await?
        .into_iter()
        .find(|a| a["PublicIp"] == ip)
        .ok_or_else(|| error("InvalidAddress.NotFound", &[("ip", ip)]))?;
    let id = found["AllocationId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    common::load_or(ctx, "elastic-ip", &id, "InvalidAllocationID.NotFound").await
}

fn clear_association(eip: &mut Value) {
    if let Some(m) = eip.as_object_mut() {
        for k in [
            "AssociationId",
            "InstanceId",
            "NetworkInterfaceId",
            "NetworkInterfaceOwnerId",
            "PrivateIpAddress",
        ] {
            m.remove(k);
        }
    }
}

#[doc(alias = "AssociateAddress")]
pub(crate) async fn associate_address(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let _guard = common::write_lock(ctx).await;
    let (mut eip, rev) = target(ctx, &input).await?;
    let allocation_id = eip["AllocationId"].as_str().unwrap_or_default().to_string();
    let (eni_id, instance_id) = match (
        opt_str(&input, "NetworkInterfaceId"),
        opt_str(&input, "InstanceId"),
    ) {
        (Some(eni), _) => {
            let (eni, _) = common::load_or(
                ctx,
                "network-interface",
                eni,
                "InvalidNetworkInterfaceID.NotFound",
            )
            .await?;
            (
                eni["NetworkInterfaceId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                eni["Attachment"]["InstanceId"].as_str().map(str::to_string),
            )
        }
        (None, Some(i)) => {
            let (inst, _) =
                common::load_or(ctx, "instance", i, "InvalidInstanceID.NotFound").await?;
            let eni = inst["_primary_eni"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (eni, Some(i.to_string()))
        }
        _ => return Err(missing("InstanceId")),
    };
    let (eni, _) = common::load_or(
        ctx,
        "network-interface",
        &eni_id,
        "InvalidNetworkInterfaceID.NotFound",
    )
    .await?;
    let private_ip = opt_str(&input, "PrivateIpAddress")
        .map(str::to_string)
        .unwrap_or_else(|| {
            eni["PrivateIpAddress"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        });
    if !super::network_interfaces::addresses(&eni).contains(&private_ip) {
        return Err(invalid_value(format!(
            "The private IP address {private_ip} is not assigned to interface {eni_id}"
        )));
    }
    let allow = opt_bool(&input, "AllowReassociation").unwrap_or(false);
    if let Some(existing) = eip["AssociationId"].as_str()
        && !allow
    {
        return Err(error(
            "Resource.AlreadyAssociated.Address",
            &[("id", &allocation_id), ("association", existing)],
        ));
    }
    let mut txn = Txn::new();
    // Another address on the same interface address moves off it, as AWS does.
    for other in common::load_all(ctx, "elastic-ip").await? {
        if other["AllocationId"] != allocation_id.as_str()
            && other["NetworkInterfaceId"] == eni_id.as_str()
            && other["PrivateIpAddress"] == private_ip.as_str()
        {
            let id = other["AllocationId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let (mut o, r) =
                common::load_or(ctx, "elastic-ip", &id, "InvalidAllocationID.NotFound").await?;
            clear_association(&mut o);
            txn.update(ctx, "elastic-ip", &id, &o, r);
        }
    }
    let association_id = new_id("eipassoc");
    clear_association(&mut eip);
    eip["AssociationId"] = json!(association_id);
    eip["NetworkInterfaceId"] = json!(eni_id);
    eip["NetworkInterfaceOwnerId"] = json!(ctx.account_id);
    eip["PrivateIpAddress"] = json!(private_ip);
    if let Some(i) = instance_id {
        eip["InstanceId"] = json!(i);
    }
    txn.update(ctx, "elastic-ip", &allocation_id, &eip, rev);
    txn.commit(ctx).await?;
    Ok(json!({ "AssociationId": association_id }))
}

#[doc(alias = "DisassociateAddress")]
pub(crate) async fn disassociate_address(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let _guard = common::write_lock(ctx).await;
    let (mut eip, rev) = match opt_str(&input, "AssociationId") {
        Some(assoc) => {
            let found = common::load_all(ctx, "elastic-ip")
                .await?
                .into_iter()
                .find(|a| a["AssociationId"] == assoc)
                .ok_or_else(|| error("InvalidAssociationID.NotFound", &[("id", assoc)]))?;
            let id = found["AllocationId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            common::load_or(ctx, "elastic-ip", &id, "InvalidAllocationID.NotFound").await?
        }
        None => target(ctx, &input).await?,
    };
    if eip["_nat_gateway"].is_string() {
        return Err(error(
            "AuthFailure",
            &[(
                "message",
                "You do not have permission to access the specified resource.",
            )],
        ));
    }
    clear_association(&mut eip);
    let id = eip["AllocationId"].as_str().unwrap_or_default().to_string();
    let mut txn = Txn::new();
    txn.update(ctx, "elastic-ip", &id, &eip, rev);
    txn.commit(ctx).await?;
    Ok(json!({}))
}

#[doc(alias = "ReleaseAddress")]
pub(crate) async fn release_address(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let _guard = common::write_lock(ctx).await;
    let (eip, _) = target(ctx, &input).await?;
    if eip.get("AssociationId").is_some() || eip["_nat_gateway"].is_string() {
        return Err(error(
            "InvalidIPAddress.InUse",
            &[("ip", eip["PublicIp"].as_str().unwrap_or_default())],
        ));
    }
    let mut txn = Txn::new();
    txn.delete(
        ctx,
        "elastic-ip",
        eip["AllocationId"].as_str().unwrap_or_default(),
    );
    txn.commit(ctx).await?;
    Ok(json!({}))
}

#[doc(alias = "DescribeAddressesAttribute")]
pub(crate) async fn describe_addresses_attribute(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    if let Some(a) = opt_str(&input, "Attribute")
        && a != "domain-name"
    {
        return Err(invalid_value(format!(
            "Value ({a}) for parameter attribute is invalid."
        )));
    }
    let (items, next) = common::describe(ctx, &input, &DESCRIBE).await?;
    // No reverse DNS records are set in Skiff, so no PtrRecord, as for a fresh AWS address.
    let rows = items
        .iter()
        .map(|a| json!({"AllocationId": a["AllocationId"], "PublicIp": a["PublicIp"]}))
        .collect();
    Ok(common::listing("Addresses", rows, next))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{ctx, err, ok};
    use serde_json::json;

    #[tokio::test]
    async fn associate_with_an_instance_then_release() {
        let c = ctx();
        let r = ok(
            &c,
            "RunInstances",
            json!({"ImageId": "ami-12345678", "MinCount": 1, "MaxCount": 1}),
        )
        .await;
        let inst = r["Instances"][0]["InstanceId"].clone();
        let eip = ok(&c, "AllocateAddress", json!({"Domain": "vpc",
            "TagSpecifications": [{"ResourceType": "elastic-ip", "Tags": [{"Key": "Name", "Value": "ip"}]}]})).await;
        let a = ok(
            &c,
            "AssociateAddress",
            json!({"AllocationId": eip["AllocationId"], "InstanceId": inst}),
        )
        .await;
        let d = ok(
            &c,
            "DescribeAddresses",
            json!({"Filters": [{"Name": "instance-id", "Values": [inst]}]}),
        )
        .await;
        assert_eq!(d["Addresses"][0]["AssociationId"], a["AssociationId"]);
        assert_eq!(
            d["Addresses"][0]["PrivateIpAddress"],
            r["Instances"][0]["PrivateIpAddress"]
        );
        let e = err(
            &c,
            "AssociateAddress",
            json!({"AllocationId": eip["AllocationId"], "InstanceId": inst}),
        )
        .await;
        assert_eq!(e.code, "Resource.AlreadyAssociated");
        let e = err(
            &c,
            "ReleaseAddress",
            json!({"AllocationId": eip["AllocationId"]}),
        )
        .await;
        assert_eq!(
            e.message,
            format!("Address {} is in use.", eip["PublicIp"].as_str().unwrap())
        );
        ok(
            &c,
            "DisassociateAddress",
            json!({"AssociationId": a["AssociationId"]}),
        )
        .await;
        let attr = ok(
            &c,
            "DescribeAddressesAttribute",
            json!({"AllocationIds": [eip["AllocationId"]], "Attribute": "domain-name"}),
        )
        .await;
        assert_eq!(attr["Addresses"][0]["PublicIp"], eip["PublicIp"]);
        ok(
            &c,
            "ReleaseAddress",
            json!({"AllocationId": eip["AllocationId"]}),
        )
        .await;
        let e = err(
            &c,
            "DescribeAddresses",
            json!({"AllocationIds": [eip["AllocationId"]]}),
        )
        .await;
        assert_eq!(e.code, "InvalidAllocationID.NotFound");
    }
}
