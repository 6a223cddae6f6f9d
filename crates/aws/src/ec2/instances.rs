//! Instances: RunInstances, DescribeInstances, Terminate/Start/Stop/RebootInstances,
//! Modify/DescribeInstanceAttribute, DescribeInstanceStatus, and the domain functions AutoScaling calls
//! ([`run_instances_internal`], [`terminate_instances_internal`]).
//!
//! An instance owns a primary network interface (its private IP and DNS name come from there) and an
//! EBS root volume; both are separate records created in the RunInstances transaction, so
//! DescribeNetworkInterfaces / DescribeVolumes show them, and DescribeInstances assembles
//! `NetworkInterfaces` and `BlockDeviceMappings` from them. Lifecycle: RunInstances answers `pending`
//! and the instance reads back `running`; Stop answers `stopping` and reads back `stopped`; Terminate
//! answers `shutting-down`, frees the interface and delete-on-termination volumes, and the instance
//! reads back `terminated` for an hour, as on AWS.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::common::{
    self, Txn, array, opt_attr_bool, opt_bool, opt_i64, opt_str, req_str, str_list,
};
use super::errors::{error, invalid_value, missing};
use super::network_interfaces::{self, NewInterface};
use super::{
    filters, instance_types, launch_templates, pagination, regions, security_groups, tags, volumes,
};
use crate::context::RequestContext;
use crate::resources::new_id;

const FILTERS: &[(&str, &str)] = &[
    ("architecture", "Architecture"),
    ("availability-zone", "Placement.AvailabilityZone"),
    (
        "block-device-mapping.device-name",
        "BlockDeviceMappings.DeviceName",
    ),
    (
        "block-device-mapping.volume-id",
        "BlockDeviceMappings.Ebs.VolumeId",
    ),
    ("dns-name", "PublicDnsName"),
    ("group-id", "SecurityGroups.GroupId"),
    ("group-name", "SecurityGroups.GroupName"),
    ("iam-instance-profile.arn", "IamInstanceProfile.Arn"),
    ("image-id", "ImageId"),
    ("instance-id", "InstanceId"),
    ("instance-state-code", "State.Code"),
    ("instance-state-name", "State.Name"),
    ("instance-type", "InstanceType"),
    ("instance.group-id", "SecurityGroups.GroupId"),
    ("instance.group-name", "SecurityGroups.GroupName"),
    ("ip-address", "PublicIpAddress"),
    ("key-name", "KeyName"),
    ("launch-index", "AmiLaunchIndex"),
    ("launch-time", "LaunchTime"),
    (
        "network-interface.network-interface-id",
        "NetworkInterfaces.NetworkInterfaceId",
    ),
    ("network-interface.subnet-id", "NetworkInterfaces.SubnetId"),
    ("network-interface.vpc-id", "NetworkInterfaces.VpcId"),
    (
        "network-interface.addresses.private-ip-address",
        "NetworkInterfaces.PrivateIpAddresses.PrivateIpAddress",
    ),
    ("owner-id", "_owner_id"),
    ("private-dns-name", "PrivateDnsName"),
    ("private-ip-address", "PrivateIpAddress"),
    ("reservation-id", "_reservation_id"),
    ("root-device-type", "RootDeviceType"),
    ("subnet-id", "SubnetId"),
    ("tenancy", "Placement.Tenancy"),
    ("vpc-id", "VpcId"),
];

const STATUS_FILTERS: &[(&str, &str)] = &[
    ("availability-zone", "AvailabilityZone"),
    ("instance-state-code", "InstanceState.Code"),
    ("instance-state-name", "InstanceState.Name"),
    ("instance-status.status", "InstanceStatus.Status"),
    (
        "instance-status.reachability",
        "InstanceStatus.Details.Status",
    ),
    ("system-status.status", "SystemStatus.Status"),
    ("system-status.reachability", "SystemStatus.Details.Status"),
];

fn state(name: &str) -> Value {
    let code = match name {
        "pending" => 0,
        "running" => 16,
        "shutting-down" => 32,
        "terminated" => 48,
        "stopping" => 64,
        _ => 80,
    };
    json!({"Code": code, "Name": name})
}

fn public_dns(region: &str, ip: &str) -> String {
    let host = format!("ec2-{}", ip.replace('.', "-"));
    if region == "us-east-1" {
        format!("{host}.compute-1.amazonaws.com")
    } else {
        format!("{host}.{region}.compute.amazonaws.com")
    }
}

fn fresh_public_ip() -> String {
    use rand::Rng;
    let n: u32 =
        u32::from(Ipv4Addr::new(54, 160, 0, 0)) + rand::rng().random_range(1..(1 << 19) - 1);
    Ipv4Addr::from(n).to_string()
}

/// Members the request sets override the launch template's.
fn effective(input: &Value, template: &Value) -> Value {
    let mut out = template.clone();
    if !out.is_object() {
        out = json!({});
    }
    if let Value::Object(m) = input {
        for (k, v) in m {
            if k != "LaunchTemplate" && !v.is_null() {
                out[k] = v.clone();
            }
        }
    }
    out
}

/// The subnet an instance lands in: explicit, from the first network interface, or the default
/// subnet of the requested zone (else the first) of the default VPC.
async fn choose_subnet(ctx: &RequestContext, req: &Value) -> Result<String, AwsError> {
    if let Some(s) = opt_str(req, "SubnetId") {
        return Ok(s.to_string());
    }
    if let Some(s) = array(req, "NetworkInterfaces")
        .first()
        .and_then(|n| opt_str(n, "SubnetId"))
    {
        return Ok(s.to_string());
    }
    let vpc_id = regions::default_vpc_id(ctx)
        .await?
        .ok_or_else(|| error("VPCIdNotSpecified", &[]))?;
    let zone = req["Placement"]["AvailabilityZone"]
        .as_str()
        .filter(|z| !z.is_empty());
    let mut candidates: Vec<Value> = common::load_all(ctx, "subnet")
        .await?
        .into_iter()
        .filter(|s| s["VpcId"] == vpc_id.as_str() && s["DefaultForAz"] == true)
        .collect();
    candidates.sort_by(|a, b| {
        a["AvailabilityZone"]
            .as_str()
            .cmp(&b["AvailabilityZone"].as_str())
    });
    candidates
        .iter()
        .find(|s| zone.is_none_or(|z| s["AvailabilityZone"] == z))
        .and_then(|s| s["SubnetId"].as_str().map(str::to_string))
        .ok_or_else(|| {
            error(
                "MissingInput",
                &[(
                    "message",
                    &format!(
                        "No subnets found for the default VPC '{vpc_id}'. Please specify a subnet."
                    ),
                )],
            )
        })
}

fn valid_instance_type(t: &str) -> bool {
    instance_types::instance_type(t).is_some()
        || t.split_once('.').is_some_and(|(family, size)| {
            !family.is_empty()
                && !size.is_empty()
                && family
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && size
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// Tags a TagSpecifications list gives one resource type (launch templates use the same shape).
fn spec_tags(req: &Value, resource_type: &str) -> Result<Vec<Value>, AwsError> {
    tags::from_specs(
        req,
        resource_type,
        &[
            "instance",
            "volume",
            "network-interface",
            "spot-instances-request",
            "elastic-gpu",
        ],
    )
}

/// RunInstances' core, shared by the handler and [`run_instances_internal`]. Returns the
/// `Reservation` shape.
/// `system_tags` (`aws:`-prefixed, which clients may not set) come from AWS services such as AutoScaling.
async fn launch(
    ctx: &RequestContext,
    input: Value,
    system_tags: Vec<Value>,
) -> Result<Value, AwsError> {
    let template = match input.get("LaunchTemplate") {
        Some(spec) if spec.is_object() => Some(launch_templates::resolve(ctx, spec).await?),
        _ => None,
    };
    let req = effective(
        &input,
        template.as_ref().map(|t| &t.data).unwrap_or(&Value::Null),
    );
    let image_id = opt_str(&req, "ImageId")
        .ok_or_else(|| missing("ImageId"))?
        .to_string();
    if !common::well_formed(&image_id, "ami") {
        return Err(error("InvalidAMIID.Malformed", &[("id", &image_id)]));
    }
    let instance_type = opt_str(&req, "InstanceType")
        .unwrap_or("m1.small")
        .to_string();
    if !valid_instance_type(&instance_type) {
        return Err(error(
            "InvalidParameterValue.InstanceType",
            &[("name", &instance_type)],
        ));
    }
    let min = opt_i64(&input, "MinCount").ok_or_else(|| missing("MinCount"))?;
    let max = opt_i64(&input, "MaxCount").ok_or_else(|| missing("MaxCount"))?;
    if min < 1 {
        return Err(invalid_value(format!(
            "Value ({min}) for parameter minCount is invalid. Expected a value greater than or equal to 1."
        )));
    }
    if max < min {
        return Err(invalid_value(format!(
            "Value ({max}) for parameter maxCount is invalid. Expected a value greater than or equal to minCount ({min})."
        )));
    }
    let mut instance_tags = spec_tags(&req, "instance")?;
    let volume_tags = spec_tags(&req, "volume")?;
    let eni_tags = spec_tags(&req, "network-interface")?;
    if let Some(t) = &template {
        // AWS marks instances launched from a template with these system tags.
        instance_tags
            .push(json!({"Key": "aws:ec2launchtemplate:id", "Value": t.launch_template_id}));
        instance_tags
            .push(json!({"Key": "aws:ec2launchtemplate:version", "Value": t.version.to_string()}));
    }
    instance_tags.extend(system_tags);
    let primary_ni = array(&req, "NetworkInterfaces")
        .first()
        .cloned()
        .unwrap_or(Value::Null);

    // Domain callers (AutoScaling) do not pass through `dispatch`, which makes the region's defaults.
    regions::defaults(ctx).await?;
    let _guard = common::write_lock(ctx).await;
    let subnet_id = choose_subnet(ctx, &req).await?;
    let (mut subnet, subnet_rev) =
        common::load_or(ctx, "subnet", &subnet_id, "InvalidSubnetID.NotFound").await?;
    let vpc_id = subnet["VpcId"].as_str().unwrap_or_default().to_string();
    let zone = subnet["AvailabilityZone"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if let Some(z) = req["Placement"]["AvailabilityZone"].as_str()
        && !z.is_empty()
        && z != zone
    {
        return Err(invalid_value(format!(
            "The specified Availability Zone ({z}) does not match the subnet's Availability Zone ({zone})."
        )));
    }
    if let Some(k) = opt_str(&req, "KeyName")
        && !common::load_all(ctx, "key-pair")
            .await?
            .iter()
            .any(|p| p["KeyName"] == k)
    {
        return Err(error("InvalidKeyPair.NotFound", &[("name", k)]));
    }
    // Security groups: ids, names in the VPC, the interface's groups, else the VPC's default group.
    let mut group_ids = str_list(&req, "SecurityGroupIds");
    group_ids.extend(str_list(&primary_ni, "Groups"));
    let all_groups = common::load_all(ctx, "security-group").await?;
    for name in str_list(&req, "SecurityGroups") {
        let g = all_groups
            .iter()
            .find(|g| g["GroupName"] == name.as_str() && g["VpcId"] == vpc_id.as_str())
            .ok_or_else(|| error("InvalidGroup.NotFound", &[("id", &name)]))?;
        group_ids.push(g["GroupId"].as_str().unwrap_or_default().to_string());
    }
    if group_ids.is_empty() {
        let (vpc, _) = common::load_or(ctx, "vpc", &vpc_id, "InvalidVpcID.NotFound").await?;
        group_ids.push(
            vpc["_default_security_group"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    group_ids.dedup();
    let groups = security_groups::group_refs(ctx, &group_ids, &vpc_id).await?;

    // As many as the subnet holds, at least MinCount.
    let free = subnet["AvailableIpAddressCount"].as_i64().unwrap_or(0);
    if free < min {
        return Err(error(
            "InsufficientFreeAddressesInSubnet",
            &[("id", &subnet_id)],
        ));
    }
    let count = max.min(free) as usize;
    let requested_ip: Option<Ipv4Addr> = opt_str(&req, "PrivateIpAddress")
        .or_else(|| opt_str(&primary_ni, "PrivateIpAddress"))
        .map(|s| {
            s.parse().map_err(|_| {
                invalid_value(format!(
                    "Value ({s}) for parameter privateIpAddress is invalid."
                ))
            })
        })
        .transpose()?;
    if requested_ip.is_some() && count > 1 {
        return Err(invalid_value(
            "A private IP address can only be specified when launching one instance.",
        ));
    }
    let public_ip = match primary_ni
        .get("AssociatePublicIpAddress")
        .and_then(Value::as_bool)
    {
        Some(b) => b,
        None => subnet["MapPublicIpOnLaunch"] == true,
    };
    let reservation_id = new_id("r");
    let now = common::now();
    let mut txn = Txn::new();
    let mut instances = Vec::new();
    let mut enis_by_instance: HashMap<String, Vec<Value>> = HashMap::new();
    let mut vols_by_instance: HashMap<String, Vec<Value>> = HashMap::new();
    let cpu = instance_types::instance_type(&instance_type);
    for index in 0..count {
        let instance_id = new_id("i");
        let mut eni = network_interfaces::build(
            ctx,
            &mut subnet,
            NewInterface {
                description: opt_str(&primary_ni, "Description").unwrap_or(""),
                groups: groups.clone(),
                primary_ip: requested_ip,
                secondary_ips: Vec::new(),
                secondary_count: opt_i64(&primary_ni, "SecondaryPrivateIpAddressCount")
                    .unwrap_or(0)
                    .max(0) as usize,
                interface_type: "interface",
                tags: eni_tags.clone(),
            },
        )?;
        network_interfaces::attach(ctx, &mut eni, &instance_id, 0, &new_id("eni-attach"), true);
        let mut pip = None;
        if public_ip {
            let ip = fresh_public_ip();
            eni["Association"] = json!({"IpOwnerId": "amazon", "PublicIp": ip, "PublicDnsName": public_dns(&ctx.region, &ip)});
            pip = Some(ip);
        }
        // Root volume plus every EBS mapping the request or template lists.
        let mut mappings: Vec<Value> = array(&req, "BlockDeviceMappings").to_vec();
        if !mappings.iter().any(|m| m["DeviceName"] == "/dev/xvda") {
            mappings.insert(0, json!({"DeviceName": "/dev/xvda", "Ebs": {}}));
        }
        let mut vols = Vec::new();
        for m in &mappings {
            let Some(ebs) = m.get("Ebs") else { continue };
            let device = opt_str(m, "DeviceName").unwrap_or("/dev/xvda");
            let mut vol = volumes::build(
                ctx,
                &zone,
                opt_i64(ebs, "VolumeSize").unwrap_or(8),
                opt_str(ebs, "VolumeType").unwrap_or("gp3"),
                opt_i64(ebs, "Iops"),
                opt_i64(ebs, "Throughput"),
                opt_bool(ebs, "Encrypted").unwrap_or(false),
                opt_str(ebs, "SnapshotId").unwrap_or(""),
                volume_tags.clone(),
            )?;
            volumes::attach(
                &mut vol,
                &instance_id,
                device,
                opt_bool(ebs, "DeleteOnTermination").unwrap_or(true),
            );
            vols.push(vol);
        }
        let private_ip = eni["PrivateIpAddress"].clone();
        let mut inst = json!({
            "InstanceId": instance_id,
            "ImageId": image_id,
            "InstanceType": instance_type,
            "LaunchTime": now,
            "AmiLaunchIndex": index,
            "Placement": {"AvailabilityZone": zone, "GroupName": "", "Tenancy": req["Placement"]["Tenancy"].as_str().filter(|t| !t.is_empty()).unwrap_or("default")},
            "PrivateDnsName": eni["PrivateDnsName"],
            "PrivateIpAddress": private_ip,
            "PublicDnsName": pip.as_deref().map(|ip| public_dns(&ctx.region, ip)).unwrap_or_default(),
            "State": state("running"),
            "StateTransitionReason": "",
            "SubnetId": subnet_id,
            "VpcId": vpc_id,
            "Architecture": "x86_64",
            "ClientToken": opt_str(&input, "ClientToken").unwrap_or(""),
            "EbsOptimized": opt_bool(&req, "EbsOptimized").unwrap_or(false),
            "EnaSupport": true,
            "Hypervisor": "xen",
            "RootDeviceName": "/dev/xvda",
            "RootDeviceType": "ebs",
            "SecurityGroups": groups,
            "SourceDestCheck": true,
            "Tags": instance_tags,
            "VirtualizationType": "hvm",
        });
        let extra = json!({
            "Monitoring": {"State": if req["Monitoring"]["Enabled"] == true { "enabled" } else { "disabled" }},
            "CpuOptions": {"CoreCount": cpu.map(|c| (c.vcpus / 2).max(1)).unwrap_or(1), "ThreadsPerCore": if cpu.is_some_and(|c| c.vcpus >= 2) { 2 } else { 1 }},
            "MetadataOptions": {
                "State": "applied",
                "HttpTokens": req["MetadataOptions"]["HttpTokens"].as_str().unwrap_or("required"),
                "HttpPutResponseHopLimit": req["MetadataOptions"]["HttpPutResponseHopLimit"].as_i64().unwrap_or(2),
                "HttpEndpoint": req["MetadataOptions"]["HttpEndpoint"].as_str().unwrap_or("enabled"),
                "HttpProtocolIpv6": "disabled",
                "InstanceMetadataTags": req["MetadataOptions"]["InstanceMetadataTags"].as_str().unwrap_or("disabled"),
            },
            "PrivateDnsNameOptions": {"HostnameType": "ip-name", "EnableResourceNameDnsARecord": false, "EnableResourceNameDnsAAAARecord": false},
            "PlatformDetails": "Linux/UNIX",
            "UsageOperation": "RunInstances",
            "UsageOperationUpdateTime": now,
            "CurrentInstanceBootMode": "legacy-bios",
            "HibernationOptions": {"Configured": false},
            "EnclaveOptions": {"Enabled": false},
            "MaintenanceOptions": {"AutoRecovery": "default"},
            "CapacityReservationSpecification": {"CapacityReservationPreference": "open"},
            "_reservation_id": reservation_id,
            "_owner_id": ctx.account_id,
            "_primary_eni": eni["NetworkInterfaceId"],
            "_user_data": opt_str(&req, "UserData"),
            "_disable_api_termination": opt_bool(&req, "DisableApiTermination").unwrap_or(false),
            "_disable_api_stop": opt_bool(&req, "DisableApiStop").unwrap_or(false),
            "_shutdown_behavior": opt_str(&req, "InstanceInitiatedShutdownBehavior").unwrap_or("stop"),
        });
        if let Value::Object(m) = extra {
            for (k, v) in m {
                inst[k] = v;
            }
        }
        if let Some(k) = opt_str(&req, "KeyName") {
            inst["KeyName"] = json!(k);
        }
        if let Some(ip) = &pip {
            inst["PublicIpAddress"] = json!(ip);
        }
        if let Some(p) = req.get("IamInstanceProfile").filter(|p| p.is_object()) {
            let arn = opt_str(p, "Arn").map(str::to_string).unwrap_or_else(|| {
                format!(
                    "arn:aws:iam::{}:instance-profile/{}",
                    ctx.account_id,
                    opt_str(p, "Name").unwrap_or_default()
                )
            });
            inst["IamInstanceProfile"] =
                json!({"Arn": arn, "Id": format!("AIPA{}", &new_id("x")[2..].to_uppercase())});
        }
        txn.create(
            ctx,
            "network-interface",
            eni["NetworkInterfaceId"].as_str().unwrap_or_default(),
            &eni,
        );
        for v in &vols {
            txn.create(ctx, "volume", v["VolumeId"].as_str().unwrap_or_default(), v);
        }
        txn.create(ctx, "instance", &instance_id, &inst);
        enis_by_instance.insert(instance_id.clone(), vec![eni]);
        vols_by_instance.insert(instance_id.clone(), vols);
        instances.push(inst);
    }
    txn.update(ctx, "subnet", &subnet_id, &subnet, subnet_rev);
    txn.commit(ctx).await?;
    let shown: Vec<Value> = instances
        .iter()
        .map(|i| {
            let mut v = render(i, &enis_by_instance, &vols_by_instance);
            v["State"] = state("pending");
            v
        })
        .collect();
    Ok(
        json!({"ReservationId": reservation_id, "OwnerId": ctx.account_id, "Groups": [], "Instances": shown}),
    )
}

/// The `Instance` shape: stored record plus interfaces and block devices from their own records.
fn render(
    inst: &Value,
    enis: &HashMap<String, Vec<Value>>,
    vols: &HashMap<String, Vec<Value>>,
) -> Value {
    let id = inst["InstanceId"].as_str().unwrap_or_default();
    let mut out = common::public(inst);
    let mut nis: Vec<Value> = enis.get(id).cloned().unwrap_or_default();
    nis.sort_by_key(|e| e["Attachment"]["DeviceIndex"].as_i64().unwrap_or(0));
    out["NetworkInterfaces"] = Value::Array(
        nis.iter()
            .map(|e| {
                let mut ni = json!({
                    "Attachment": {
                        "AttachTime": e["Attachment"]["AttachTime"], "AttachmentId": e["Attachment"]["AttachmentId"],
                        "DeleteOnTermination": e["Attachment"]["DeleteOnTermination"],
                        "DeviceIndex": e["Attachment"]["DeviceIndex"], "Status": "attached", "NetworkCardIndex": 0,
                    },
                    "Description": e["Description"], "Groups": e["Groups"], "Ipv6Addresses": [],
                    "MacAddress": e["MacAddress"], "NetworkInterfaceId": e["NetworkInterfaceId"],
                    "OwnerId": e["OwnerId"], "PrivateDnsName": e["PrivateDnsName"],
                    "PrivateIpAddress": e["PrivateIpAddress"], "PrivateIpAddresses": e["PrivateIpAddresses"],
                    "SourceDestCheck": e["SourceDestCheck"], "Status": e["Status"], "SubnetId": e["SubnetId"],
                    "VpcId": e["VpcId"], "InterfaceType": e["InterfaceType"],
                });
                if let Some(a) = e.get("Association") {
                    ni["Association"] = a.clone();
                }
                ni
            })
            .collect(),
    );
    let mut bdms: Vec<Value> = vols
        .get(id)
        .map(|vs| {
            vs.iter()
                .filter_map(|v| {
                    let a = array(v, "Attachments").first()?;
                    Some(json!({"DeviceName": a["Device"], "Ebs": {
                        "AttachTime": a["AttachTime"], "DeleteOnTermination": a["DeleteOnTermination"],
                        "Status": "attached", "VolumeId": v["VolumeId"]}}))
                })
                .collect()
        })
        .unwrap_or_default();
    bdms.sort_by(|a, b| a["DeviceName"].as_str().cmp(&b["DeviceName"].as_str()));
    out["BlockDeviceMappings"] = Value::Array(bdms);
    out
}

/// Interfaces and volumes of every instance, for rendering.
async fn attachments(
    ctx: &RequestContext,
) -> Result<(HashMap<String, Vec<Value>>, HashMap<String, Vec<Value>>), AwsError> {
    let mut enis: HashMap<String, Vec<Value>> = HashMap::new();
    for e in common::load_all(ctx, "network-interface").await? {
        if let Some(i) = e["Attachment"]["InstanceId"].as_str() {
            enis.entry(i.to_string()).or_default().push(e);
        }
    }
    let mut vols: HashMap<String, Vec<Value>> = HashMap::new();
    for v in common::load_all(ctx, "volume").await? {
        if let Some(i) = v["Attachments"][0]["InstanceId"].as_str() {
            vols.entry(i.to_string()).or_default().push(v);
        }
    }
    Ok((enis, vols))
}

/// Terminated instances stay visible for an hour, as on AWS.
fn expired(inst: &Value) -> bool {
    let Some(at) = inst["_terminated_at"].as_str() else {
        return false;
    };
    at.parse::<jiff::Timestamp>().is_ok_and(|t| {
        jiff::Timestamp::now().duration_since(t) > jiff::SignedDuration::from_secs(3600)
    })
}

async fn visible_instances(ctx: &RequestContext, input: &Value) -> Result<Vec<Value>, AwsError> {
    let ids = str_list(input, "InstanceIds");
    for id in &ids {
        if !common::well_formed(id, "i") {
            return Err(error("InvalidInstanceID.Malformed", &[("id", id)]));
        }
    }
    let mut all: Vec<Value> = common::load_all(ctx, "instance")
        .await?
        .into_iter()
        .filter(|i| !expired(i))
        .collect();
    if !ids.is_empty() {
        let missing: Vec<&str> = ids
            .iter()
            .filter(|id| !all.iter().any(|i| i["InstanceId"] == id.as_str()))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(error(
                "InvalidInstanceID.NotFound",
                &[("id", &missing.join(", "))],
            ));
        }
        all.retain(|i| ids.iter().any(|id| i["InstanceId"] == id.as_str()));
    }
    Ok(all)
}

#[doc(alias = "RunInstances")]
pub(crate) async fn run_instances(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    launch(ctx, input, Vec::new()).await
}

#[doc(alias = "DescribeInstances")]
pub(crate) async fn describe_instances(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let filters = filters::parse(&input, FILTERS)?;
    let all = visible_instances(ctx, &input).await?;
    let (enis, vols) = attachments(ctx).await?;
    let matching: Vec<Value> = all
        .iter()
        .map(|i| {
            let mut r = render(i, &enis, &vols);
            r["_reservation_id"] = i["_reservation_id"].clone();
            r["_owner_id"] = i["_owner_id"].clone();
            r
        })
        .filter(|r| filters::matches(r, &filters, FILTERS, "Tags"))
        .collect();
    let (page, next) = pagination::page(matching, "InstanceId", &input, (5, 1000))?;
    // Group into reservations, in order of first appearance.
    let mut reservations: Vec<Value> = Vec::new();
    for inst in page {
        let rid = inst["_reservation_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let shown = common::public(&inst);
        match reservations.iter_mut().find(|r| r["ReservationId"] == rid.as_str()) {
            Some(r) => {
                if let Some(list) = r["Instances"].as_array_mut() {
                    list.push(shown);
                }
            }
            None => reservations.push(json!({"ReservationId": rid, "OwnerId": ctx.account_id, "Groups": [], "Instances": [shown]})),
        }
    }
    let mut out = json!({ "Reservations": reservations });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

fn transition(inst: &Value, current: &str) -> Value {
    json!({"InstanceId": inst["InstanceId"], "CurrentState": state(current), "PreviousState": inst["State"]})
}

/// Terminate: free the primary interface's addresses, delete delete-on-termination volumes, detach
/// the others, and keep the instance as `terminated`.
async fn terminate(ctx: &RequestContext, ids: &[String]) -> Result<Vec<Value>, AwsError> {
    let _guard = common::write_lock(ctx).await;
    let targets = visible_instances(ctx, &json!({ "InstanceIds": ids })).await?;
    for inst in &targets {
        if inst["_disable_api_termination"] == true {
            return Err(error(
                "OperationNotPermitted",
                &[(
                    "message",
                    &format!(
                        "The instance '{}' may not be terminated. Modify its 'disableApiTermination' instance attribute and try again.",
                        inst["InstanceId"].as_str().unwrap_or_default()
                    ),
                )],
            ));
        }
    }
    let mut txn = Txn::new();
    let mut out = Vec::new();
    let mut subnets_touched: HashMap<String, (Value, i64)> = HashMap::new();
    let (enis, vols) = attachments(ctx).await?;
    for inst in targets {
        let id = inst["InstanceId"].as_str().unwrap_or_default().to_string();
        if inst["State"]["Name"] == "terminated" {
            out.push(transition(&inst, "terminated"));
            continue;
        }
        out.push(transition(&inst, "shutting-down"));
        for eni in enis.get(&id).into_iter().flatten() {
            if eni["Attachment"]["DeleteOnTermination"] == true {
                let subnet_id = eni["SubnetId"].as_str().unwrap_or_default().to_string();
                if !subnets_touched.contains_key(&subnet_id) {
                    let s = common::load_or(ctx, "subnet", &subnet_id, "InvalidSubnetID.NotFound")
                        .await?;
                    subnets_touched.insert(subnet_id.clone(), s);
                }
                if let Some((subnet, _)) = subnets_touched.get_mut(&subnet_id) {
                    network_interfaces::delete_into(ctx, &mut txn, eni, subnet).await;
                }
            } else {
                let mut e = eni.clone();
                if let Some(m) = e.as_object_mut() {
                    m.remove("Attachment");
                }
                e["Status"] = json!("available");
                let eid = e["NetworkInterfaceId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let (_, rev) = common::load_or(
                    ctx,
                    "network-interface",
                    &eid,
                    "InvalidNetworkInterfaceID.NotFound",
                )
                .await?;
                txn.update(ctx, "network-interface", &eid, &e, rev);
            }
        }
        for v in vols.get(&id).into_iter().flatten() {
            let vid = v["VolumeId"].as_str().unwrap_or_default().to_string();
            if v["Attachments"][0]["DeleteOnTermination"] == true {
                txn.delete(ctx, "volume", &vid);
            } else {
                let (mut vol, rev) =
                    common::load_or(ctx, "volume", &vid, "InvalidVolume.NotFound").await?;
                vol["Attachments"] = json!([]);
                vol["State"] = json!("available");
                txn.update(ctx, "volume", &vid, &vol, rev);
            }
        }
        // Elastic IPs on the instance are disassociated, as on AWS.
        for eip in common::load_all(ctx, "elastic-ip").await? {
            if eip["InstanceId"] == id.as_str() {
                let aid = eip["AllocationId"].as_str().unwrap_or_default().to_string();
                let (mut e, rev) =
                    common::load_or(ctx, "elastic-ip", &aid, "InvalidAllocationID.NotFound")
                        .await?;
                if let Some(m) = e.as_object_mut() {
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
                txn.update(ctx, "elastic-ip", &aid, &e, rev);
            }
        }
        let (mut rec, rev) =
            common::load_or(ctx, "instance", &id, "InvalidInstanceID.NotFound").await?;
        rec["State"] = state("terminated");
        rec["StateTransitionReason"] = json!(format!("User initiated ({})", common::now()));
        rec["StateReason"] = json!({"Code": "Client.UserInitiatedShutdown", "Message": "Client.UserInitiatedShutdown: User initiated shutdown"});
        rec["_terminated_at"] = json!(jiff::Timestamp::now().to_string());
        if let Some(m) = rec.as_object_mut() {
            for k in [
                "PrivateIpAddress",
                "PrivateDnsName",
                "PublicIpAddress",
                "SubnetId",
                "VpcId",
            ] {
                m.remove(k);
            }
        }
        rec["PublicDnsName"] = json!("");
        txn.update(ctx, "instance", &id, &rec, rev);
    }
    // Long-terminated instances leave the store with this write.
    for old in common::load_all(ctx, "instance").await? {
        if expired(&old) {
            txn.delete(
                ctx,
                "instance",
                old["InstanceId"].as_str().unwrap_or_default(),
            );
        }
    }
    for (subnet_id, (subnet, rev)) in subnets_touched {
        txn.update(ctx, "subnet", &subnet_id, &subnet, rev);
    }
    txn.commit(ctx).await?;
    Ok(out)
}

#[doc(alias = "TerminateInstances")]
pub(crate) async fn terminate_instances(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let ids = str_list(&input, "InstanceIds");
    if ids.is_empty() {
        return Err(missing("InstanceId"));
    }
    Ok(json!({ "TerminatingInstances": terminate(ctx, &ids).await? }))
}

/// Stop or start: (allowed from, reported while moving, stored after, verb for the error).
async fn change_state(
    ctx: &RequestContext,
    input: &Value,
    from: &str,
    moving: &str,
    to: &str,
    verb: &str,
) -> Result<Vec<Value>, AwsError> {
    let ids = str_list(input, "InstanceIds");
    if ids.is_empty() {
        return Err(missing("InstanceId"));
    }
    let _guard = common::write_lock(ctx).await;
    let targets = visible_instances(ctx, input).await?;
    let mut txn = Txn::new();
    let mut out = Vec::new();
    for inst in targets {
        let id = inst["InstanceId"].as_str().unwrap_or_default().to_string();
        let current = inst["State"]["Name"].as_str().unwrap_or_default();
        if current == to {
            out.push(transition(&inst, to));
            continue;
        }
        if current != from {
            return Err(error(
                "IncorrectInstanceState",
                &[("id", &id), ("action", verb)],
            ));
        }
        if to == "stopped" && inst["_disable_api_stop"] == true {
            return Err(error(
                "OperationNotPermitted",
                &[(
                    "message",
                    &format!(
                        "The instance '{id}' may not be stopped. Modify its 'disableApiStop' instance attribute and try again."
                    ),
                )],
            ));
        }
        out.push(transition(&inst, moving));
        let (mut rec, rev) =
            common::load_or(ctx, "instance", &id, "InvalidInstanceID.NotFound").await?;
        rec["State"] = state(to);
        rec["StateTransitionReason"] = json!(if to == "stopped" {
            format!("User initiated ({})", common::now())
        } else {
            String::new()
        });
        txn.update(ctx, "instance", &id, &rec, rev);
    }
    txn.commit(ctx).await?;
    Ok(out)
}

#[doc(alias = "StopInstances")]
pub(crate) async fn stop_instances(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let out = change_state(ctx, &input, "running", "stopping", "stopped", "stopped").await?;
    Ok(json!({ "StoppingInstances": out }))
}

#[doc(alias = "StartInstances")]
pub(crate) async fn start_instances(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let out = change_state(ctx, &input, "stopped", "pending", "running", "started").await?;
    Ok(json!({ "StartingInstances": out }))
}

#[doc(alias = "RebootInstances")]
pub(crate) async fn reboot_instances(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    for inst in visible_instances(ctx, &input).await? {
        if inst["State"]["Name"] != "running" {
            let id = inst["InstanceId"].as_str().unwrap_or_default();
            return Err(error(
                "IncorrectInstanceState",
                &[("id", id), ("action", "rebooted")],
            ));
        }
    }
    Ok(json!({}))
}

/// (attribute name in DescribeInstanceAttribute, output member, where the value lives)
const ATTRIBUTES: &[(&str, &str)] = &[
    ("instanceType", "InstanceType"),
    ("userData", "UserData"),
    ("disableApiTermination", "DisableApiTermination"),
    ("disableApiStop", "DisableApiStop"),
    (
        "instanceInitiatedShutdownBehavior",
        "InstanceInitiatedShutdownBehavior",
    ),
    ("rootDeviceName", "RootDeviceName"),
    ("sourceDestCheck", "SourceDestCheck"),
    ("ebsOptimized", "EbsOptimized"),
    ("enaSupport", "EnaSupport"),
    ("groupSet", "Groups"),
    ("blockDeviceMapping", "BlockDeviceMappings"),
];

#[doc(alias = "DescribeInstanceAttribute")]
pub(crate) async fn describe_instance_attribute(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let id = req_str(&input, "InstanceId")?;
    let attribute = req_str(&input, "Attribute")?;
    let (_, member) = ATTRIBUTES
        .iter()
        .find(|(a, _)| *a == attribute)
        .ok_or_else(|| {
            invalid_value(format!(
                "Value ({attribute}) for parameter attribute is invalid. Unknown attribute."
            ))
        })?;
    let (inst, _) = common::load_or(ctx, "instance", id, "InvalidInstanceID.NotFound").await?;
    let (enis, vols) = attachments(ctx).await?;
    let shown = render(&inst, &enis, &vols);
    let value = match attribute {
        "instanceType" => json!({"Value": inst["InstanceType"]}),
        "userData" => match inst["_user_data"].as_str() {
            Some(u) => json!({"Value": u}),
            None => json!({}),
        },
        "disableApiTermination" => json!({"Value": inst["_disable_api_termination"]}),
        "disableApiStop" => json!({"Value": inst["_disable_api_stop"]}),
        "instanceInitiatedShutdownBehavior" => json!({"Value": inst["_shutdown_behavior"]}),
        "rootDeviceName" => json!({"Value": inst["RootDeviceName"]}),
        "sourceDestCheck" => json!({"Value": inst["SourceDestCheck"]}),
        "ebsOptimized" => json!({"Value": inst["EbsOptimized"]}),
        "enaSupport" => json!({"Value": inst["EnaSupport"]}),
        "groupSet" => inst["SecurityGroups"].clone(),
        _ => shown["BlockDeviceMappings"].clone(),
    };
    let mut out = json!({ "InstanceId": id });
    out[*member] = value;
    Ok(out)
}

#[doc(alias = "ModifyInstanceAttribute")]
pub(crate) async fn modify_instance_attribute(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let id = req_str(&input, "InstanceId")?.to_string();
    let id = id.as_str();
    let _guard = common::write_lock(ctx).await;
    let (mut inst, rev) =
        common::load_or(ctx, "instance", id, "InvalidInstanceID.NotFound").await?;
    let mut txn = Txn::new();
    // The `Attribute` + `Value` form names one attribute; map it onto the structured members.
    let mut input = input;
    if let (Some(attr), Some(value)) = (
        opt_str(&input, "Attribute").map(str::to_string),
        input.get("Value").cloned(),
    ) {
        let member = ATTRIBUTES
            .iter()
            .find(|(a, _)| *a == attr)
            .map(|(_, m)| *m)
            .ok_or_else(|| {
                invalid_value(format!(
                    "Value ({attr}) for parameter attribute is invalid."
                ))
            })?;
        input[member] = json!({ "Value": value });
    }
    let string_value = |m: &str| {
        input
            .get(m)
            .and_then(|v| v.get("Value").or(Some(v)))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mut changed = false;
    if let Some(t) = string_value("InstanceType") {
        if inst["State"]["Name"] != "stopped" {
            return Err(error(
                "IncorrectInstanceState",
                &[("id", id), ("action", "modified")],
            ));
        }
        if !valid_instance_type(&t) {
            return Err(error("InvalidParameterValue.InstanceType", &[("name", &t)]));
        }
        inst["InstanceType"] = json!(t);
        changed = true;
    }
    if let Some(u) = string_value("UserData") {
        if inst["State"]["Name"] != "stopped" {
            return Err(error(
                "IncorrectInstanceState",
                &[("id", id), ("action", "modified")],
            ));
        }
        inst["_user_data"] = json!(u);
        changed = true;
    }
    if let Some(b) = string_value("InstanceInitiatedShutdownBehavior") {
        if !["stop", "terminate"].contains(&b.as_str()) {
            return Err(invalid_value(format!(
                "Value ({b}) for parameter instanceInitiatedShutdownBehavior is invalid."
            )));
        }
        inst["_shutdown_behavior"] = json!(b);
        changed = true;
    }
    for (member, field) in [
        ("DisableApiTermination", "_disable_api_termination"),
        ("DisableApiStop", "_disable_api_stop"),
        ("EbsOptimized", "EbsOptimized"),
        ("EnaSupport", "EnaSupport"),
    ] {
        if let Some(v) = opt_attr_bool(&input, member) {
            inst[field] = json!(v);
            changed = true;
        }
    }
    let sdc = opt_attr_bool(&input, "SourceDestCheck");
    let groups = str_list(&input, "Groups");
    if sdc.is_some() || !groups.is_empty() {
        let eni_id = inst["_primary_eni"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (mut eni, erev) = common::load_or(
            ctx,
            "network-interface",
            &eni_id,
            "InvalidNetworkInterfaceID.NotFound",
        )
        .await?;
        if let Some(v) = sdc {
            inst["SourceDestCheck"] = json!(v);
            eni["SourceDestCheck"] = json!(v);
        }
        if !groups.is_empty() {
            let vpc_id = eni["VpcId"].as_str().unwrap_or_default().to_string();
            let refs = security_groups::group_refs(ctx, &groups, &vpc_id).await?;
            inst["SecurityGroups"] = json!(refs);
            eni["Groups"] = json!(refs);
        }
        txn.update(ctx, "network-interface", &eni_id, &eni, erev);
        changed = true;
    }
    if !changed {
        return Err(missing("Attribute"));
    }
    txn.update(ctx, "instance", id, &inst, rev);
    txn.commit(ctx).await?;
    Ok(json!({}))
}

#[doc(alias = "DescribeInstanceStatus")]
pub(crate) async fn describe_instance_status(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let filters = filters::parse(&input, STATUS_FILTERS)?;
    let include_all = opt_bool(&input, "IncludeAllInstances").unwrap_or(false);
    let statuses: Vec<Value> = visible_instances(ctx, &input)
        .await?
        .iter()
        .filter(|i| include_all || i["State"]["Name"] == "running")
        .map(|i| {
            let ok = i["State"]["Name"] == "running";
            let check = if ok {
                json!({"Status": "ok", "Details": [{"Name": "reachability", "Status": "passed"}]})
            } else {
                json!({"Status": "not-applicable"})
            };
            let zone = i["Placement"]["AvailabilityZone"]
                .as_str()
                .unwrap_or_default();
            json!({"InstanceId": i["InstanceId"], "AvailabilityZone": zone,
                   "AvailabilityZoneId": regions::zone_id(&ctx.region, zone).unwrap_or_default(),
                   "InstanceState": i["State"], "InstanceStatus": check, "SystemStatus": check,
                   "AttachedEbsStatus": check, "Events": []})
        })
        .filter(|s| filters::matches(s, &filters, STATUS_FILTERS, "Tags"))
        .collect();
    let (page, next) = pagination::page(statuses, "InstanceId", &input, (5, 1000))?;
    Ok(common::listing("InstanceStatuses", page, next))
}

// ---- domain functions for AutoScaling and EKS --------------------------------------------------

/// What AutoScaling asks for when it launches instances for a group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LaunchRequest {
    /// `{"LaunchTemplateId" | "LaunchTemplateName", "Version"}` (the LaunchTemplateSpecification shape).
    pub launch_template: Option<Value>,
    pub image_id: Option<String>,
    /// Overrides the template's (mixed-instances policies).
    pub instance_type: Option<String>,
    pub subnet_id: Option<String>,
    pub security_group_ids: Vec<String>,
    pub count: usize,
    /// Tags for the instances (and their volumes and interfaces), e.g. `aws:autoscaling:groupName`.
    pub tags: Vec<(String, String)>,
    pub user_data: Option<String>,
}

/// RunInstances for exactly `count` instances (MinCount = MaxCount = count); returns the `Instance`
/// shapes (state `pending`; they read back `running`).
#[doc(alias = "RunInstances")]
pub async fn run_instances_internal(
    ctx: &RequestContext,
    req: &LaunchRequest,
) -> Result<Vec<Value>, AwsError> {
    let (system, tags): (Vec<Value>, Vec<Value>) = req
        .tags
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .partition(|t| t["Key"].as_str().is_some_and(|k| k.starts_with("aws:")));
    let mut input = json!({"MinCount": req.count, "MaxCount": req.count});
    if let Some(t) = &req.launch_template {
        input["LaunchTemplate"] = t.clone();
    }
    for (member, value) in [
        ("ImageId", &req.image_id),
        ("InstanceType", &req.instance_type),
        ("SubnetId", &req.subnet_id),
        ("UserData", &req.user_data),
    ] {
        if let Some(v) = value {
            input[member] = json!(v);
        }
    }
    if !req.security_group_ids.is_empty() {
        input["SecurityGroupIds"] = json!(req.security_group_ids);
    }
    if !tags.is_empty() {
        // Tags given by the caller join (and override) the template's instance tags.
        let template_specs = match &req.launch_template {
            Some(spec) => {
                launch_templates::resolve(ctx, spec).await?.data["TagSpecifications"].clone()
            }
            None => Value::Null,
        };
        let mut specs = Vec::new();
        for rt in ["instance", "volume", "network-interface"] {
            let mut merged: Vec<Value> = array(
                &json!({"TagSpecifications": template_specs}),
                "TagSpecifications",
            )
            .iter()
            .filter(|s| s["ResourceType"] == rt)
            .flat_map(|s| array(s, "Tags").to_vec())
            .filter(|t| !tags.iter().any(|n| n["Key"] == t["Key"]))
            .collect();
            merged.extend(tags.iter().cloned());
            specs.push(json!({"ResourceType": rt, "Tags": merged}));
        }
        input["TagSpecifications"] = json!(specs);
    }
    let reservation = launch(ctx, input, system).await?;
    Ok(array(&reservation, "Instances").to_vec())
}

/// TerminateInstances; returns the `InstanceStateChange` shapes.
#[doc(alias = "TerminateInstances")]
pub async fn terminate_instances_internal(
    ctx: &RequestContext,
    instance_ids: &[String],
) -> Result<Vec<Value>, AwsError> {
    terminate(ctx, instance_ids).await
}

/// The `Instance` shapes of these instances (all visible ones when `instance_ids` is empty).
#[doc(alias = "DescribeInstances")]
pub async fn describe_instances_internal(
    ctx: &RequestContext,
    instance_ids: &[String],
) -> Result<Vec<Value>, AwsError> {
    let all = visible_instances(ctx, &json!({ "InstanceIds": instance_ids })).await?;
    let (enis, vols) = attachments(ctx).await?;
    Ok(all.iter().map(|i| render(i, &enis, &vols)).collect())
}

/// The stored instance records (public members: id, type, image, state, placement, addresses,
/// tags) of every visible instance, without assembling interfaces and block devices: what
/// AutoScaling and the EKS layer need to follow many instances cheaply.
#[doc(alias = "DescribeInstances")]
pub async fn instance_records(ctx: &RequestContext) -> Result<Vec<Value>, AwsError> {
    Ok(common::load_all(ctx, "instance")
        .await?
        .iter()
        .filter(|i| !expired(i))
        .map(common::public)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{ctx, err, ok};
    use super::*;

    async fn subnet(c: &RequestContext, cidr: &str) -> String {
        let v = ok(c, "CreateVpc", json!({"CidrBlock": "10.0.0.0/16"})).await;
        let s = ok(c, "CreateSubnet", json!({"VpcId": v["Vpc"]["VpcId"], "CidrBlock": cidr, "AvailabilityZone": "us-east-1a"})).await;
        s["Subnet"]["SubnetId"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn instance_records_are_the_described_instances_without_attachments() {
        let c = ctx();
        let subnet_id = subnet(&c, "10.0.1.0/24").await;
        let r = ok(
            &c,
            "RunInstances",
            json!({"ImageId": "ami-0123456789abcdef0", "InstanceType": "m5.large",
            "MinCount": 2, "MaxCount": 2, "SubnetId": subnet_id}),
        )
        .await;
        let recs = instance_records(&c).await.unwrap();
        assert_eq!(recs.len(), 2);
        let described = describe_instances_internal(&c, &[]).await.unwrap();
        for rec in &recs {
            let d = described
                .iter()
                .find(|d| d["InstanceId"] == rec["InstanceId"])
                .unwrap();
            for m in [
                "PrivateIpAddress",
                "PrivateDnsName",
                "InstanceType",
                "Placement",
                "State",
                "Tags",
            ] {
                assert_eq!(rec[m], d[m], "{m}");
            }
            assert!(rec.get("_reservation_id").is_none());
            assert!(rec.get("NetworkInterfaces").is_none());
        }
        let id = r["Instances"][0]["InstanceId"]
            .as_str()
            .unwrap()
            .to_string();
        terminate_instances_internal(&c, std::slice::from_ref(&id))
            .await
            .unwrap();
        let recs = instance_records(&c).await.unwrap();
        let gone = recs
            .iter()
            .find(|i| i["InstanceId"] == id.as_str())
            .unwrap();
        assert_eq!(gone["State"]["Name"], "terminated");
    }

    #[tokio::test]
    async fn run_describe_stop_start_terminate() {
        let c = ctx();
        let subnet_id = subnet(&c, "10.0.1.0/24").await;
        let r = ok(&c, "RunInstances", json!({"ImageId": "ami-0123456789abcdef0", "InstanceType": "m5.large",
            "MinCount": 2, "MaxCount": 2, "SubnetId": subnet_id,
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "node"}]}]})).await;
        let insts = r["Instances"].as_array().unwrap();
        assert_eq!(insts.len(), 2);
        assert_eq!(insts[0]["State"]["Name"], "pending");
        assert_eq!(insts[0]["PrivateIpAddress"], "10.0.1.4");
        assert_eq!(insts[1]["PrivateDnsName"], "ip-10-0-1-5.ec2.internal");
        assert_eq!(
            insts[0]["BlockDeviceMappings"][0]["DeviceName"],
            "/dev/xvda"
        );
        let id = insts[0]["InstanceId"].as_str().unwrap().to_string();

        let d = ok(
            &c,
            "DescribeInstances",
            json!({"Filters": [{"Name": "tag:Name", "Values": ["node"]},
            {"Name": "instance-state-name", "Values": ["running"]}]}),
        )
        .await;
        let res = d["Reservations"].as_array().unwrap();
        assert_eq!(res.len(), 1);
        assert_eq!(res[0]["ReservationId"], r["ReservationId"]);
        assert_eq!(res[0]["Instances"].as_array().unwrap().len(), 2);
        let me = res[0]["Instances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["InstanceId"] == id.as_str())
            .unwrap();
        let eni = me["NetworkInterfaces"][0]["NetworkInterfaceId"].clone();
        let enis = ok(
            &c,
            "DescribeNetworkInterfaces",
            json!({"Filters": [{"Name": "attachment.instance-id", "Values": [id]}]}),
        )
        .await;
        assert_eq!(enis["NetworkInterfaces"][0]["NetworkInterfaceId"], eni);
        let vols = ok(
            &c,
            "DescribeVolumes",
            json!({"Filters": [{"Name": "attachment.instance-id", "Values": [id]}]}),
        )
        .await;
        assert_eq!(vols["Volumes"][0]["State"], "in-use");
        let subnets = ok(&c, "DescribeSubnets", json!({"SubnetIds": [subnet_id]})).await;
        assert_eq!(subnets["Subnets"][0]["AvailableIpAddressCount"], 249);

        let s = ok(&c, "StopInstances", json!({"InstanceIds": [id]})).await;
        assert_eq!(
            s["StoppingInstances"][0]["CurrentState"]["Name"],
            "stopping"
        );
        ok(
            &c,
            "ModifyInstanceAttribute",
            json!({"InstanceId": id, "InstanceType": {"Value": "m5.xlarge"}}),
        )
        .await;
        let a = ok(
            &c,
            "DescribeInstanceAttribute",
            json!({"InstanceId": id, "Attribute": "instanceType"}),
        )
        .await;
        assert_eq!(a["InstanceType"]["Value"], "m5.xlarge");
        let s = ok(&c, "StartInstances", json!({"InstanceIds": [id]})).await;
        assert_eq!(s["StartingInstances"][0]["CurrentState"]["Code"], 0);
        let e = err(
            &c,
            "ModifyInstanceAttribute",
            json!({"InstanceId": id, "InstanceType": {"Value": "m5.large"}}),
        )
        .await;
        assert_eq!(e.code, "IncorrectInstanceState");

        let st = ok(&c, "DescribeInstanceStatus", json!({"InstanceIds": [id]})).await;
        assert_eq!(st["InstanceStatuses"][0]["InstanceStatus"]["Status"], "ok");

        let t = ok(&c, "TerminateInstances", json!({"InstanceIds": [id]})).await;
        assert_eq!(
            t["TerminatingInstances"][0]["CurrentState"]["Name"],
            "shutting-down"
        );
        let d = ok(&c, "DescribeInstances", json!({"InstanceIds": [id]})).await;
        assert_eq!(
            d["Reservations"][0]["Instances"][0]["State"]["Name"],
            "terminated"
        );
        let enis = ok(
            &c,
            "DescribeNetworkInterfaces",
            json!({"NetworkInterfaceIds": []}),
        )
        .await;
        assert!(
            !enis["NetworkInterfaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["NetworkInterfaceId"] == eni)
        );
        let vols = ok(
            &c,
            "DescribeVolumes",
            json!({"Filters": [{"Name": "attachment.instance-id", "Values": [id]}]}),
        )
        .await;
        assert!(
            vols["Volumes"].as_array().unwrap().is_empty(),
            "root volume deleted on termination"
        );
        let subnets = ok(&c, "DescribeSubnets", json!({"SubnetIds": [subnet_id]})).await;
        assert_eq!(
            subnets["Subnets"][0]["AvailableIpAddressCount"], 250,
            "address returned"
        );
        let e = err(&c, "StartInstances", json!({"InstanceIds": [id]})).await;
        assert_eq!(e.code, "IncorrectInstanceState");
        let e = err(
            &c,
            "DescribeInstances",
            json!({"InstanceIds": ["i-0123456789abcdef0"]}),
        )
        .await;
        assert_eq!(
            e.message,
            "The instance ID 'i-0123456789abcdef0' does not exist"
        );
    }

    #[tokio::test]
    async fn capacity_min_max_and_defaults() {
        let c = ctx();
        let subnet_id = subnet(&c, "10.0.2.0/28").await; // 11 usable
        let e = err(&c, "RunInstances", json!({"ImageId": "ami-12345678", "MinCount": 12, "MaxCount": 12, "SubnetId": subnet_id})).await;
        assert_eq!(e.code, "InsufficientFreeAddressesInSubnet");
        let r = ok(&c, "RunInstances", json!({"ImageId": "ami-12345678", "MinCount": 1, "MaxCount": 20, "SubnetId": subnet_id})).await;
        assert_eq!(
            r["Instances"].as_array().unwrap().len(),
            11,
            "as many as fit, at least MinCount"
        );
        let e = err(
            &c,
            "RunInstances",
            json!({"ImageId": "bogus", "MinCount": 1, "MaxCount": 1}),
        )
        .await;
        assert_eq!(e.code, "InvalidAMIID.Malformed");
        // No subnet: the default VPC's default subnet, with a public address.
        let r = ok(&c, "RunInstances", json!({"ImageId": "ami-12345678", "MinCount": 1, "MaxCount": 1, "InstanceType": "t3.micro"})).await;
        let i = &r["Instances"][0];
        assert!(
            i["PrivateIpAddress"]
                .as_str()
                .unwrap()
                .starts_with("172.31.")
        );
        assert!(i["PublicIpAddress"].is_string());
        assert!(
            i["PublicDnsName"]
                .as_str()
                .unwrap()
                .ends_with(".compute-1.amazonaws.com")
        );
    }

    #[tokio::test]
    async fn launch_templates_and_the_autoscaling_entry_points() {
        let c = ctx();
        let subnet_id = subnet(&c, "10.0.3.0/24").await;
        let lt = ok(&c, "CreateLaunchTemplate", json!({"LaunchTemplateName": "nodes", "LaunchTemplateData": {
            "ImageId": "ami-0abcdef1234567890", "InstanceType": "t3.medium", "UserData": "IyEvYmluL3NoCg==",
            "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 20, "VolumeType": "gp3"}}],
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "a"}]}]}})).await;
        let lt_id = lt["LaunchTemplate"]["LaunchTemplateId"]
            .as_str()
            .unwrap()
            .to_string();
        let v2 = ok(
            &c,
            "CreateLaunchTemplateVersion",
            json!({"LaunchTemplateId": lt_id, "SourceVersion": "1",
            "LaunchTemplateData": {"InstanceType": "m5.large"}}),
        )
        .await;
        assert_eq!(v2["LaunchTemplateVersion"]["VersionNumber"], 2);
        assert_eq!(
            v2["LaunchTemplateVersion"]["LaunchTemplateData"]["ImageId"], "ami-0abcdef1234567890",
            "inherited"
        );

        let launched = run_instances_internal(
            &c,
            &LaunchRequest {
                launch_template: Some(json!({"LaunchTemplateId": lt_id, "Version": "$Latest"})),
                subnet_id: Some(subnet_id.clone()),
                count: 3,
                tags: vec![("aws:autoscaling:groupName".into(), "ng".into())],
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(launched.len(), 3);
        let i = &launched[0];
        assert_eq!(i["InstanceType"], "m5.large");
        let tag = |k: &str| {
            i["Tags"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["Key"] == k)
                .map(|t| t["Value"].clone())
        };
        assert_eq!(tag("team"), Some(json!("a")));
        assert_eq!(tag("aws:autoscaling:groupName"), Some(json!("ng")));
        assert_eq!(tag("aws:ec2launchtemplate:version"), Some(json!("2")));
        let vol = i["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(describe_volume_size(&c, &vol).await, 20);

        let ids: Vec<String> = launched
            .iter()
            .map(|i| i["InstanceId"].as_str().unwrap().to_string())
            .collect();
        let t = terminate_instances_internal(&c, &ids[..2]).await.unwrap();
        assert_eq!(t.len(), 2);
        let all = describe_instances_internal(&c, &ids).await.unwrap();
        assert_eq!(
            all.iter()
                .filter(|i| i["State"]["Name"] == "running")
                .count(),
            1
        );

        let e = err(
            &c,
            "CreateLaunchTemplate",
            json!({"LaunchTemplateName": "nodes", "LaunchTemplateData": {}}),
        )
        .await;
        assert_eq!(e.code, "InvalidLaunchTemplateName.AlreadyExistsException");
        let e = err(
            &c,
            "DescribeLaunchTemplateVersions",
            json!({"LaunchTemplateId": lt_id, "Versions": ["9"]}),
        )
        .await;
        assert_eq!(e.code, "InvalidLaunchTemplateId.VersionNotFound");
        ok(
            &c,
            "ModifyLaunchTemplate",
            json!({"LaunchTemplateId": lt_id, "DefaultVersion": "2"}),
        )
        .await;
        let d = ok(
            &c,
            "DeleteLaunchTemplateVersions",
            json!({"LaunchTemplateId": lt_id, "Versions": ["2", "1"]}),
        )
        .await;
        assert_eq!(
            d["UnsuccessfullyDeletedLaunchTemplateVersions"][0]["ResponseError"]["Code"],
            "launchTemplateVersionIsDefaultVersion"
        );
        assert_eq!(
            d["SuccessfullyDeletedLaunchTemplateVersions"][0]["VersionNumber"],
            1
        );
        let v = ok(
            &c,
            "DescribeLaunchTemplateVersions",
            json!({"LaunchTemplateName": "nodes"}),
        )
        .await;
        assert_eq!(v["LaunchTemplateVersions"].as_array().unwrap().len(), 1);
        assert_eq!(v["LaunchTemplateVersions"][0]["DefaultVersion"], true);
    }

    #[tokio::test]
    async fn domain_launch_on_a_fresh_region_makes_its_defaults_first() {
        // No dispatch call before: the default VPC must be created without deadlocking on the lock.
        let c = super::super::testing::ctx_in(
            std::sync::Arc::new(super::super::testing::MemStore::default()),
            "eu-west-1",
        );
        let req = LaunchRequest {
            image_id: Some("ami-12345678".into()),
            instance_type: Some("t3.small".into()),
            count: 1,
            ..Default::default()
        };
        let launched = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            run_instances_internal(&c, &req),
        )
        .await
        .expect("no deadlock")
        .unwrap();
        let dns = launched[0]["PrivateDnsName"].as_str().unwrap();
        assert!(
            dns.starts_with("ip-172-31-") && dns.ends_with(".eu-west-1.compute.internal"),
            "{dns}"
        );
    }

    async fn describe_volume_size(c: &RequestContext, id: &str) -> i64 {
        super::super::volumes::describe_volume_internal(c, id)
            .await
            .unwrap()["Size"]
            .as_i64()
            .unwrap()
    }
}
