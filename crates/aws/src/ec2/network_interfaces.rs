//! Network interfaces: Create/Delete/DescribeNetworkInterfaces, Attach/DetachNetworkInterface,
//! Assign/UnassignPrivateIpAddresses, ModifyNetworkInterfaceAttribute.
//!
//! Interfaces own their addresses: every private IP comes from the subnet's pool
//! ([`super::subnets::allocate`]) in the same transaction that records it on the interface, so two
//! interfaces never share an address. Pod IPs (design.md §6) are secondary addresses taken through
//! [`allocate_private_ips`], which is why `aws ec2 describe-network-interfaces` shows them.

use std::net::Ipv4Addr;

use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::common::{
    self, Describe, Txn, array, opt_attr_bool, opt_i64, opt_str, req_str, str_list,
};
use super::errors::{error, invalid_value, missing};
use super::{instance_types, security_groups, subnets, tags};
use crate::context::RequestContext;
use crate::resources::new_id;

pub(crate) const DESCRIBE: Describe = Describe {
    kind: "network-interface",
    id_field: "NetworkInterfaceId",
    ids_member: "NetworkInterfaceIds",
    id_prefix: "eni",
    not_found: "InvalidNetworkInterfaceID.NotFound",
    malformed: "InvalidNetworkInterfaceID.Malformed",
    tags_field: "TagSet",
    filters: &[
        (
            "addresses.private-ip-address",
            "PrivateIpAddresses.PrivateIpAddress",
        ),
        ("addresses.primary", "PrivateIpAddresses.Primary"),
        ("attachment.attachment-id", "Attachment.AttachmentId"),
        ("attachment.instance-id", "Attachment.InstanceId"),
        ("attachment.instance-owner-id", "Attachment.InstanceOwnerId"),
        ("attachment.device-index", "Attachment.DeviceIndex"),
        ("attachment.status", "Attachment.Status"),
        (
            "attachment.delete-on-termination",
            "Attachment.DeleteOnTermination",
        ),
        ("availability-zone", "AvailabilityZone"),
        ("description", "Description"),
        ("group-id", "Groups.GroupId"),
        ("group-name", "Groups.GroupName"),
        ("interface-type", "InterfaceType"),
        ("mac-address", "MacAddress"),
        ("network-interface-id", "NetworkInterfaceId"),
        ("owner-id", "OwnerId"),
        (
            "private-ip-address",
            "PrivateIpAddress|PrivateIpAddresses.PrivateIpAddress",
        ),
        ("private-dns-name", "PrivateDnsName"),
        ("requester-managed", "RequesterManaged"),
        ("source-dest-check", "SourceDestCheck"),
        ("status", "Status"),
        ("subnet-id", "SubnetId"),
        ("vpc-id", "VpcId"),
    ],
    max_results: (5, 1000),
};

/// `ip-10-0-1-23.ec2.internal` in us-east-1, `ip-10-0-1-23.<region>.compute.internal` elsewhere.
pub fn private_dns_name(region: &str, ip: Ipv4Addr) -> String {
    let host = format!("ip-{}", ip.to_string().replace('.', "-"));
    if region == "us-east-1" {
        format!("{host}.ec2.internal")
    } else {
        format!("{host}.{region}.compute.internal")
    }
}

fn mac() -> String {
    use rand::Rng;
    let b: [u8; 5] = rand::rng().random();
    // 02: locally administered unicast, as AWS's MACs are.
    format!(
        "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4]
    )
}

fn address(region: &str, ip: Ipv4Addr, primary: bool) -> Value {
    json!({"Primary": primary, "PrivateIpAddress": ip.to_string(), "PrivateDnsName": private_dns_name(region, ip)})
}

/// What a new interface needs besides its subnet.
pub(crate) struct NewInterface<'a> {
    pub description: &'a str,
    pub groups: Vec<Value>,
    pub primary_ip: Option<Ipv4Addr>,
    pub secondary_ips: Vec<Ipv4Addr>,
    pub secondary_count: usize,
    pub interface_type: &'a str,
    pub tags: Vec<Value>,
}

/// Build (not store) an interface, taking its addresses from `subnet` (which the caller stores too).
pub(crate) fn build(
    ctx: &RequestContext,
    subnet: &mut Value,
    spec: NewInterface<'_>,
) -> Result<Value, AwsError> {
    let mut requested: Vec<Ipv4Addr> = spec.primary_ip.into_iter().collect();
    requested.extend(spec.secondary_ips.iter().copied());
    let extra = spec.secondary_count + usize::from(spec.primary_ip.is_none());
    let mut ips = subnets::allocate(subnet, extra, &requested)?;
    // The primary is the requested one, else the first allocated.
    if spec.primary_ip.is_none() {
        let first = ips.remove(requested.len());
        ips.insert(0, first);
    }
    let primary = ips[0];
    let addresses: Vec<Value> = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| address(&ctx.region, *ip, i == 0))
        .collect();
    let zone = subnet["AvailabilityZone"].as_str().unwrap_or_default();
    Ok(json!({
        "NetworkInterfaceId": new_id("eni"),
        "SubnetId": subnet["SubnetId"],
        "VpcId": subnet["VpcId"],
        "AvailabilityZone": zone,
        "AvailabilityZoneId": subnet["AvailabilityZoneId"],
        "Description": spec.description,
        "Groups": spec.groups,
        "InterfaceType": spec.interface_type,
        "Ipv6Addresses": [],
        "MacAddress": mac(),
        "OwnerId": ctx.account_id,
        "PrivateDnsName": private_dns_name(&ctx.region, primary),
        "PrivateIpAddress": primary.to_string(),
        "PrivateIpAddresses": addresses,
        "RequesterManaged": spec.interface_type != "interface",
        "SourceDestCheck": true,
        "Status": "available",
        "TagSet": spec.tags,
    }))
}

/// All private addresses of an interface.
pub(crate) fn addresses(eni: &Value) -> Vec<String> {
    array(eni, "PrivateIpAddresses")
        .iter()
        .filter_map(|a| a["PrivateIpAddress"].as_str().map(str::to_string))
        .collect()
}

fn parse_ip(s: &str) -> Result<Ipv4Addr, AwsError> {
    s.parse().map_err(|_| {
        invalid_value(format!(
            "Value ({s}) for parameter privateIpAddress is invalid."
        ))
    })
}

#[doc(alias = "CreateNetworkInterface")]
pub(crate) async fn create_network_interface(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let subnet_id = req_str(&input, "SubnetId")?;
    let tags = tags::for_create(&input, "network-interface")?;
    let mut primary_ip = opt_str(&input, "PrivateIpAddress")
        .map(parse_ip)
        .transpose()?;
    let mut secondary_ips = Vec::new();
    for a in array(&input, "PrivateIpAddresses") {
        let ip =
            parse_ip(opt_str(a, "PrivateIpAddress").ok_or_else(|| missing("PrivateIpAddress"))?)?;
        if a["Primary"] == true && primary_ip.is_none() {
            primary_ip = Some(ip);
        } else if Some(ip) != primary_ip {
            secondary_ips.push(ip);
        }
    }
    let secondary_count = opt_i64(&input, "SecondaryPrivateIpAddressCount").unwrap_or(0);
    if secondary_count < 0 {
        return Err(invalid_value(
            "SecondaryPrivateIpAddressCount must be positive",
        ));
    }
    let interface_type = opt_str(&input, "InterfaceType").unwrap_or("interface");
    let _guard = common::write_lock(ctx).await;
    let (mut subnet, subnet_rev) =
        common::load_or(ctx, "subnet", subnet_id, "InvalidSubnetID.NotFound").await?;
    let mut group_ids = str_list(&input, "Groups");
    if group_ids.is_empty() {
        let vpc_id = subnet["VpcId"].as_str().unwrap_or_default();
        let (vpc, _) = common::load_or(ctx, "vpc", vpc_id, "InvalidVpcID.NotFound").await?;
        group_ids.push(
            vpc["_default_security_group"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    let vpc_id = subnet["VpcId"].as_str().unwrap_or_default().to_string();
    let groups = security_groups::group_refs(ctx, &group_ids, &vpc_id).await?;
    let eni = build(
        ctx,
        &mut subnet,
        NewInterface {
            description: opt_str(&input, "Description").unwrap_or(""),
            groups,
            primary_ip,
            secondary_ips,
            secondary_count: secondary_count as usize,
            interface_type,
            tags,
        },
    )?;
    let mut txn = Txn::new();
    txn.update(ctx, "subnet", subnet_id, &subnet, subnet_rev);
    txn.create(
        ctx,
        "network-interface",
        eni["NetworkInterfaceId"].as_str().unwrap_or_default(),
        &eni,
    );
    txn.commit(ctx).await?;
    Ok(json!({ "NetworkInterface": common::public(&eni) }))
}

#[doc(alias = "DescribeNetworkInterfaces")]
pub(crate) async fn describe_network_interfaces(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let (items, next) = common::describe(ctx, &input, &DESCRIBE).await?;
    Ok(common::listing("NetworkInterfaces", items, next))
}

/// Remove an interface and return its addresses to the subnet, inside `txn`.
pub(crate) async fn delete_into(
    ctx: &RequestContext,
    txn: &mut Txn,
    eni: &Value,
    subnet: &mut Value,
) {
    subnets::release(subnet, &addresses(eni));
    txn.delete(
        ctx,
        "network-interface",
        eni["NetworkInterfaceId"].as_str().unwrap_or_default(),
    );
}

#[doc(alias = "DeleteNetworkInterface")]
pub(crate) async fn delete_network_interface(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let id = req_str(&input, "NetworkInterfaceId")?;
    if !common::well_formed(id, "eni") {
        return Err(error("InvalidNetworkInterfaceID.Malformed", &[("id", id)]));
    }
    let _guard = common::write_lock(ctx).await;
    let (eni, _) = common::load_or(
        ctx,
        "network-interface",
        id,
        "InvalidNetworkInterfaceID.NotFound",
    )
    .await?;
    if eni.get("Attachment").is_some() || eni["RequesterManaged"] == true {
        return Err(error("InvalidNetworkInterface.InUse", &[("id", id)]));
    }
    let subnet_id = eni["SubnetId"].as_str().unwrap_or_default().to_string();
    let (mut subnet, rev) =
        common::load_or(ctx, "subnet", &subnet_id, "InvalidSubnetID.NotFound").await?;
    let mut txn = Txn::new();
    delete_into(ctx, &mut txn, &eni, &mut subnet).await;
    txn.update(ctx, "subnet", &subnet_id, &subnet, rev);
    txn.commit(ctx).await?;
    Ok(json!({}))
}

#[doc(alias = "AttachNetworkInterface")]
pub(crate) async fn attach_network_interface(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let id = req_str(&input, "NetworkInterfaceId")?;
    let instance_id = req_str(&input, "InstanceId")?;
    let device_index = opt_i64(&input, "DeviceIndex").ok_or_else(|| missing("DeviceIndex"))?;
    let _guard = common::write_lock(ctx).await;
    let (mut eni, rev) = common::load_or(
        ctx,
        "network-interface",
        id,
        "InvalidNetworkInterfaceID.NotFound",
    )
    .await?;
    let (inst, _) =
        common::load_or(ctx, "instance", instance_id, "InvalidInstanceID.NotFound").await?;
    if eni.get("Attachment").is_some() {
        return Err(error("InvalidNetworkInterface.InUse", &[("id", id)]));
    }
    if inst["Placement"]["AvailabilityZone"] != eni["AvailabilityZone"] {
        return Err(invalid_value(format!(
            "The network interface {id} and instance {instance_id} are in different availability zones"
        )));
    }
    let attached: Vec<Value> = common::load_all(ctx, "network-interface")
        .await?
        .into_iter()
        .filter(|e| e["Attachment"]["InstanceId"] == instance_id)
        .collect();
    if attached
        .iter()
        .any(|e| e["Attachment"]["DeviceIndex"] == device_index)
    {
        return Err(invalid_value(format!(
            "Instance '{instance_id}' already has an interface attached at device index '{device_index}'."
        )));
    }
    let itype = inst["InstanceType"].as_str().unwrap_or_default();
    if let Some(t) = instance_types::instance_type(itype)
        && attached.len() as u32 >= t.maximum_network_interfaces
    {
        return Err(error(
            "AttachmentLimitExceeded",
            &[(
                "message",
                &format!(
                    "Interface count {} exceeds the limit for {itype}",
                    attached.len() + 1
                ),
            )],
        ));
    }
    let attachment_id = new_id("eni-attach");
    attach(
        ctx,
        &mut eni,
        instance_id,
        device_index,
        &attachment_id,
        false,
    );
    let mut txn = Txn::new();
    txn.update(ctx, "network-interface", id, &eni, rev);
    txn.commit(ctx).await?;
    Ok(json!({"AttachmentId": attachment_id, "NetworkCardIndex": 0}))
}

/// Mark an interface attached to an instance.
pub(crate) fn attach(
    ctx: &RequestContext,
    eni: &mut Value,
    instance_id: &str,
    device_index: i64,
    attachment_id: &str,
    delete_on_termination: bool,
) {
    eni["Attachment"] = json!({
        "AttachTime": common::now(), "AttachmentId": attachment_id,
        "DeleteOnTermination": delete_on_termination, "DeviceIndex": device_index,
        "NetworkCardIndex": 0, "InstanceId": instance_id, "InstanceOwnerId": ctx.account_id,
        "Status": "attached",
    });
    eni["Status"] = json!("in-use");
}

#[doc(alias = "DetachNetworkInterface")]
pub(crate) async fn detach_network_interface(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let attachment_id = req_str(&input, "AttachmentId")?;
    let _guard = common::write_lock(ctx).await;
    let eni = common::load_all(ctx, "network-interface")
        .await?
        .into_iter()
        .find(|e| e["Attachment"]["AttachmentId"] == attachment_id)
        .ok_or_else(|| error("InvalidAttachmentID.NotFound", &[("id", attachment_id)]))?;
    if eni["Attachment"]["DeviceIndex"] == 0 {
        return Err(error(
            "OperationNotPermitted",
            &[(
                "message",
                "The network interface at device index 0 cannot be detached.",
            )],
        ));
    }
    let id = eni["NetworkInterfaceId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (mut eni, rev) = common::load_or(
        ctx,
        "network-interface",
        &id,
        "InvalidNetworkInterfaceID.NotFound",
    )
    .await?;
    if let Some(m) = eni.as_object_mut() {
        m.remove("Attachment");
    }
    eni["Status"] = json!("available");
    let mut txn = Txn::new();
    txn.update(ctx, "network-interface", &id, &eni, rev);
    txn.commit(ctx).await?;
    Ok(json!({}))
}

/// How many addresses this interface may hold: the attached instance type's IPv4-per-ENI figure.
async fn address_limit(ctx: &RequestContext, eni: &Value) -> Result<Option<usize>, AwsError> {
    let Some(instance_id) = eni["Attachment"]["InstanceId"].as_str() else {
        return Ok(None);
    };
    let Some((inst, _)) = common::load(ctx, "instance", instance_id).await? else {
        return Ok(None);
    };
    Ok(
        instance_types::instance_type(inst["InstanceType"].as_str().unwrap_or_default())
            .map(|t| t.ipv4_addresses_per_interface as usize),
    )
}

/// Take `count` more secondary addresses (or the `requested` ones) for an interface, atomically.
async fn assign(
    ctx: &RequestContext,
    eni_id: &str,
    count: usize,
    requested: &[Ipv4Addr],
) -> Result<Vec<Ipv4Addr>, AwsError> {
    let (mut eni, rev) = common::load_or(
        ctx,
        "network-interface",
        eni_id,
        "InvalidNetworkInterfaceID.NotFound",
    )
    .await?;
    let subnet_id = eni["SubnetId"].as_str().unwrap_or_default().to_string();
    let (mut subnet, subnet_rev) =
        common::load_or(ctx, "subnet", &subnet_id, "InvalidSubnetID.NotFound").await?;
    let current = addresses(&eni).len();
    if let Some(limit) = address_limit(ctx, &eni).await?
        && current + count + requested.len() > limit
    {
        return Err(error("PrivateIpAddressLimitExceeded", &[]));
    }
    let ips = subnets::allocate(&mut subnet, count, requested)?;
    if let Some(list) = eni["PrivateIpAddresses"].as_array_mut() {
        list.extend(ips.iter().map(|ip| address(&ctx.region, *ip, false)));
    }
    let mut txn = Txn::new();
    txn.update(ctx, "network-interface", eni_id, &eni, rev);
    txn.update(ctx, "subnet", &subnet_id, &subnet, subnet_rev);
    txn.commit(ctx).await?;
    Ok(ips)
}

/// Secondary private IPv4 addresses for an interface, from its subnet, without overlap; the caller
/// (the EKS VPC CNI model) uses them as pod IPs. Honors the instance type's per-interface limit.
#[doc(alias = "AssignPrivateIpAddresses")]
pub async fn allocate_private_ips(
    ctx: &RequestContext,
    eni_id: &str,
    count: usize,
) -> Result<Vec<Ipv4Addr>, AwsError> {
    let _guard = common::write_lock(ctx).await;
    assign(ctx, eni_id, count, &[]).await
}

/// Give secondary addresses back (pod deleted). Unknown addresses are refused, nothing changes.
#[doc(alias = "UnassignPrivateIpAddresses")]
pub async fn release_private_ips(
    ctx: &RequestContext,
    eni_id: &str,
    ips: &[String],
) -> Result<(), AwsError> {
    let _guard = common::write_lock(ctx).await;
    unassign(ctx, eni_id, ips).await
}

async fn unassign(ctx: &RequestContext, eni_id: &str, ips: &[String]) -> Result<(), AwsError> {
    let (mut eni, rev) = common::load_or(
        ctx,
        "network-interface",
        eni_id,
        "InvalidNetworkInterfaceID.NotFound",
    )
    .await?;
    let held = array(&eni, "PrivateIpAddresses").to_vec();
    for ip in ips {
        match held.iter().find(|a| a["PrivateIpAddress"] == ip.as_str()) {
            None => {
                return Err(invalid_value(format!(
                    "Some of the specified addresses are not assigned to interface {eni_id}"
                )));
            }
            Some(a) if a["Primary"] == true => {
                return Err(invalid_value(format!(
                    "The primary address {ip} cannot be unassigned"
                )));
            }
            _ => {}
        }
    }
    let subnet_id = eni["SubnetId"].as_str().unwrap_or_default().to_string();
    let (mut subnet, subnet_rev) =
        common::load_or(ctx, "subnet", &subnet_id, "InvalidSubnetID.NotFound").await?;
    subnets::release(&mut subnet, ips);
    if let Some(list) = eni["PrivateIpAddresses"].as_array_mut() {
        list.retain(|a| !ips.iter().any(|ip| a["PrivateIpAddress"] == ip.as_str()));
    }
    let mut txn = Txn::new();
    txn.update(ctx, "network-interface", eni_id, &eni, rev);
    txn.update(ctx, "subnet", &subnet_id, &subnet, subnet_rev);
    txn.commit(ctx).await
}

#[doc(alias = "AssignPrivateIpAddresses")]
pub(crate) async fn assign_private_ip_addresses(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let eni_id = req_str(&input, "NetworkInterfaceId")?;
    let requested: Vec<Ipv4Addr> = str_list(&input, "PrivateIpAddresses")
        .iter()
        .map(|s| parse_ip(s))
        .collect::<Result<_, _>>()?;
    let count = opt_i64(&input, "SecondaryPrivateIpAddressCount").unwrap_or(0);
    if count < 0 || (count == 0 && requested.is_empty()) {
        return Err(missing("SecondaryPrivateIpAddressCount"));
    }
    let _guard = common::write_lock(ctx).await;
    let ips = assign(ctx, eni_id, count as usize, &requested).await?;
    Ok(json!({"NetworkInterfaceId": eni_id,
              "AssignedPrivateIpAddresses": ips.iter().map(|ip| json!({"PrivateIpAddress": ip.to_string()})).collect::<Vec<_>>()}))
}

#[doc(alias = "UnassignPrivateIpAddresses")]
pub(crate) async fn unassign_private_ip_addresses(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let eni_id = req_str(&input, "NetworkInterfaceId")?;
    let ips = str_list(&input, "PrivateIpAddresses");
    if ips.is_empty() {
        return Err(missing("PrivateIpAddresses"));
    }
    let _guard = common::write_lock(ctx).await;
    unassign(ctx, eni_id, &ips).await?;
    Ok(json!({}))
}

#[doc(alias = "ModifyNetworkInterfaceAttribute")]
pub(crate) async fn modify_network_interface_attribute(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let id = req_str(&input, "NetworkInterfaceId")?;
    let _guard = common::write_lock(ctx).await;
    let (mut eni, rev) = common::load_or(
        ctx,
        "network-interface",
        id,
        "InvalidNetworkInterfaceID.NotFound",
    )
    .await?;
    if let Some(v) = opt_attr_bool(&input, "SourceDestCheck") {
        eni["SourceDestCheck"] = json!(v);
    }
    if let Some(d) = input
        .get("Description")
        .and_then(|d| d.get("Value").or(Some(d)))
        .and_then(Value::as_str)
    {
        eni["Description"] = json!(d);
    }
    let groups = str_list(&input, "Groups");
    if !groups.is_empty() {
        let vpc_id = eni["VpcId"].as_str().unwrap_or_default().to_string();
        let refs = security_groups::group_refs(ctx, &groups, &vpc_id).await?;
        eni["Groups"] = Value::Array(refs);
    }
    if let Some(a) = input.get("Attachment")
        && let Some(v) = a.get("DeleteOnTermination").and_then(Value::as_bool)
    {
        if eni.get("Attachment").is_none() {
            return Err(invalid_value(format!(
                "The network interface {id} is not attached"
            )));
        }
        eni["Attachment"]["DeleteOnTermination"] = json!(v);
    }
    let mut txn = Txn::new();
    txn.update(ctx, "network-interface", id, &eni, rev);
    txn.commit(ctx).await?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{ctx, err, ok};
    use super::*;

    #[tokio::test]
    async fn secondary_addresses_for_pods_respect_the_instance_type() {
        let c = ctx();
        // t3.medium: 6 addresses per interface.
        let r = ok(&c, "RunInstances", json!({"ImageId": "ami-12345678", "MinCount": 1, "MaxCount": 1, "InstanceType": "t3.medium"})).await;
        let eni = r["Instances"][0]["NetworkInterfaces"][0]["NetworkInterfaceId"]
            .as_str()
            .unwrap()
            .to_string();
        let ips = allocate_private_ips(&c, &eni, 5).await.unwrap();
        assert_eq!(ips.len(), 5);
        let e = allocate_private_ips(&c, &eni, 1).await.unwrap_err();
        assert_eq!(e.code, "PrivateIpAddressLimitExceeded");
        let d = ok(&c, "DescribeNetworkInterfaces", json!({"Filters": [{"Name": "addresses.private-ip-address", "Values": [ips[2].to_string()]}]})).await;
        assert_eq!(
            d["NetworkInterfaces"][0]["PrivateIpAddresses"]
                .as_array()
                .unwrap()
                .len(),
            6
        );
        release_private_ips(&c, &eni, &[ips[0].to_string()])
            .await
            .unwrap();
        let again = allocate_private_ips(&c, &eni, 1).await.unwrap();
        assert_eq!(again, vec![ips[0]], "the freed address is reused first");
        let primary = d["NetworkInterfaces"][0]["PrivateIpAddress"]
            .as_str()
            .unwrap()
            .to_string();
        let e = release_private_ips(&c, &eni, &[primary]).await.unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_allocations_never_share_an_address() {
        let c = ctx();
        let r = ok(&c, "RunInstances", json!({"ImageId": "ami-12345678", "MinCount": 4, "MaxCount": 4, "InstanceType": "m5.4xlarge"})).await;
        let enis: Vec<String> = r["Instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                i["NetworkInterfaces"][0]["NetworkInterfaceId"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        let mut tasks = Vec::new();
        for round in 0..5 {
            for eni in &enis {
                let (c, eni) = (c.clone(), eni.clone());
                tasks.push(tokio::spawn(async move {
                    allocate_private_ips(&c, &eni, 1 + round % 3).await
                }));
            }
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap().unwrap());
        }
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "every address handed out once");
        let d = ok(
            &c,
            "DescribeNetworkInterfaces",
            json!({"NetworkInterfaceIds": enis}),
        )
        .await;
        let held: usize = d["NetworkInterfaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["PrivateIpAddresses"].as_array().unwrap().len() - 1)
            .sum();
        assert_eq!(held, n, "the interfaces record exactly what was handed out");
    }

    #[tokio::test]
    async fn explicit_addresses_conflict_and_interfaces_in_use() {
        let c = ctx();
        let v = ok(&c, "CreateVpc", json!({"CidrBlock": "10.0.0.0/16"})).await;
        let s = ok(
            &c,
            "CreateSubnet",
            json!({"VpcId": v["Vpc"]["VpcId"], "CidrBlock": "10.0.5.0/24"}),
        )
        .await;
        let sid = s["Subnet"]["SubnetId"].clone();
        let a = ok(&c, "CreateNetworkInterface", json!({"SubnetId": sid, "PrivateIpAddress": "10.0.5.50", "SecondaryPrivateIpAddressCount": 2})).await;
        let ni = &a["NetworkInterface"];
        assert_eq!(ni["PrivateIpAddress"], "10.0.5.50");
        assert_eq!(ni["PrivateIpAddresses"][1]["PrivateIpAddress"], "10.0.5.4");
        assert_eq!(ni["Groups"][0]["GroupName"], "default");
        let e = err(
            &c,
            "CreateNetworkInterface",
            json!({"SubnetId": sid, "PrivateIpAddress": "10.0.5.50"}),
        )
        .await;
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("InvalidIPAddress.InUse", "Address 10.0.5.50 is in use.")
        );
        let assigned = ok(&c, "AssignPrivateIpAddresses", json!({"NetworkInterfaceId": ni["NetworkInterfaceId"], "SecondaryPrivateIpAddressCount": 1})).await;
        assert_eq!(
            assigned["AssignedPrivateIpAddresses"][0]["PrivateIpAddress"],
            "10.0.5.6"
        );
        ok(&c, "UnassignPrivateIpAddresses", json!({"NetworkInterfaceId": ni["NetworkInterfaceId"], "PrivateIpAddresses": ["10.0.5.6"]})).await;
        let r = ok(
            &c,
            "RunInstances",
            json!({"ImageId": "ami-12345678", "MinCount": 1, "MaxCount": 1, "SubnetId": sid}),
        )
        .await;
        let primary = r["Instances"][0]["NetworkInterfaces"][0]["NetworkInterfaceId"].clone();
        let e = err(
            &c,
            "DeleteNetworkInterface",
            json!({"NetworkInterfaceId": primary}),
        )
        .await;
        assert_eq!(e.code, "InvalidNetworkInterface.InUse");
        let att = ok(&c, "AttachNetworkInterface", json!({"NetworkInterfaceId": ni["NetworkInterfaceId"], "InstanceId": r["Instances"][0]["InstanceId"], "DeviceIndex": 1})).await;
        let e = err(
            &c,
            "DeleteNetworkInterface",
            json!({"NetworkInterfaceId": ni["NetworkInterfaceId"]}),
        )
        .await;
        assert_eq!(e.code, "InvalidNetworkInterface.InUse");
        ok(
            &c,
            "DetachNetworkInterface",
            json!({"AttachmentId": att["AttachmentId"]}),
        )
        .await;
        ok(
            &c,
            "DeleteNetworkInterface",
            json!({"NetworkInterfaceId": ni["NetworkInterfaceId"]}),
        )
        .await;
    }
}
