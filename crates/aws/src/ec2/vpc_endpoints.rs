//! VPC endpoints: Create/Describe/Modify/DeleteVpcEndpoints.
//!
//! Gateway endpoints (S3, DynamoDB) add a prefix-list route to each listed route table; interface
//! endpoints own one requester-managed interface per subnet, with addresses from that subnet. All of it
//! changes in the endpoint's transaction.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::common::{self, Describe, Txn, array, opt_bool, opt_str, req_str, str_list};
use super::errors::{error, invalid_value};
use super::network_interfaces::{self, NewInterface};
use super::{security_groups, tags};
use crate::context::RequestContext;
use crate::resources::new_id;

const DESCRIBE: Describe = Describe {
    kind: "vpc-endpoint",
    id_field: "VpcEndpointId",
    ids_member: "VpcEndpointIds",
    id_prefix: "vpce",
    not_found: "InvalidVpcEndpointId.NotFound",
    malformed: "InvalidVpcEndpointId.Malformed",
    tags_field: "Tags",
    filters: &[
        ("ip-address-type", "IpAddressType"),
        ("service-name", "ServiceName"),
        ("vpc-id", "VpcId"),
        ("vpc-endpoint-id", "VpcEndpointId"),
        ("vpc-endpoint-state", "State"),
        ("vpc-endpoint-type", "VpcEndpointType"),
    ],
    max_results: (5, 1000),
};

const DEFAULT_POLICY: &str = r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#;

/// A stable prefix list id per service and region (AWS's are fixed per region too).
fn prefix_list_id(service_name: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(service_name.as_bytes());
    format!("pl-{}", hex::encode(&h[..4]))
}

fn route_for(endpoint_id: &str, service_name: &str) -> Value {
    json!({"DestinationPrefixListId": prefix_list_id(service_name), "GatewayId": endpoint_id,
           "Origin": "CreateRoute", "State": "active"})
}

/// Add or remove the endpoint's route in each table, inside `txn`.
async fn routes(
    ctx: &RequestContext,
    txn: &mut Txn,
    endpoint: &Value,
    tables: &[String],
    add: bool,
) -> Result<(), AwsError> {
    let id = endpoint["VpcEndpointId"].as_str().unwrap_or_default();
    let service = endpoint["ServiceName"].as_str().unwrap_or_default();
    for t in tables {
        let (mut rtb, rev) =
            common::load_or(ctx, "route-table", t, "InvalidRouteTableID.NotFound").await?;
        if rtb["VpcId"] != endpoint["VpcId"] {
            return Err(invalid_value(format!(
                "The route table {t} is not in VPC {}",
                endpoint["VpcId"].as_str().unwrap_or_default()
            )));
        }
        if let Some(list) = rtb["Routes"].as_array_mut() {
            list.retain(|r| r["GatewayId"] != id);
            if add {
                list.push(route_for(id, service));
            }
        }
        txn.update(ctx, "route-table", t, &rtb, rev);
    }
    Ok(())
}

/// Create one endpoint interface per subnet, inside `txn`; returns the interface ids.
async fn interfaces(
    ctx: &RequestContext,
    txn: &mut Txn,
    endpoint_id: &str,
    subnet_ids: &[String],
    groups: &[Value],
) -> Result<Vec<String>, AwsError> {
    let mut ids = Vec::new();
    for s in subnet_ids {
        let (mut subnet, rev) =
            common::load_or(ctx, "subnet", s, "InvalidSubnetID.NotFound").await?;
        let eni = network_interfaces::build(
            ctx,
            &mut subnet,
            NewInterface {
                description: &format!("VPC Endpoint Interface {endpoint_id}"),
                groups: groups.to_vec(),
                primary_ip: None,
                secondary_ips: Vec::new(),
                secondary_count: 0,
                interface_type: "vpc_endpoint",
                tags: Vec::new(),
            },
        )?;
        let id = eni["NetworkInterfaceId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        txn.update(ctx, "subnet", s, &subnet, rev);
        txn.create(ctx, "network-interface", &id, &eni);
        ids.push(id);
    }
    Ok(ids)
}

#[doc(alias = "CreateVpcEndpoint")]
pub(crate) async fn create_vpc_endpoint(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let vpc_id = req_str(&input, "VpcId")?;
    let service = req_str(&input, "ServiceName")?;
    let kind = opt_str(&input, "VpcEndpointType").unwrap_or("Gateway");
    let prefix = format!("com.amazonaws.{}.", ctx.region);
    let short = service.strip_prefix(&prefix).unwrap_or_default();
    if short.is_empty() {
        return Err(error("InvalidServiceName", &[("name", service)]));
    }
    if kind == "Gateway" && !["s3", "dynamodb"].contains(&short) {
        return Err(invalid_value(format!(
            "The Vpc Endpoint Service '{service}' does not support endpoint type Gateway"
        )));
    }
    if !["Gateway", "Interface"].contains(&kind) {
        return Err(invalid_value(format!(
            "Value ({kind}) for parameter VpcEndpointType is invalid."
        )));
    }
    let tags = tags::for_create(&input, "vpc-endpoint")?;
    let _guard = common::write_lock(ctx).await;
    let (vpc, _) = common::load_or(ctx, "vpc", vpc_id, "InvalidVpcID.NotFound").await?;
    let id = new_id("vpce");
    let mut txn = Txn::new();
    let route_tables = str_list(&input, "RouteTableIds");
    let subnet_ids = str_list(&input, "SubnetIds");
    let mut group_ids = str_list(&input, "SecurityGroupIds");
    let mut endpoint = json!({
        "VpcEndpointId": id, "VpcEndpointType": kind, "VpcId": vpc_id, "ServiceName": service,
        "State": "available", "PolicyDocument": opt_str(&input, "PolicyDocument").unwrap_or(DEFAULT_POLICY),
        "RouteTableIds": [], "SubnetIds": [], "Groups": [], "IpAddressType": "ipv4",
        "PrivateDnsEnabled": false, "RequesterManaged": false, "NetworkInterfaceIds": [], "DnsEntries": [],
        "CreationTimestamp": common::now(), "Tags": tags, "OwnerId": ctx.account_id,
    });
    if kind == "Gateway" {
        routes(ctx, &mut txn, &endpoint, &route_tables, true).await?;
        endpoint["RouteTableIds"] = json!(route_tables);
    } else {
        if group_ids.is_empty() {
            group_ids.push(
                vpc["_default_security_group"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        let groups = security_groups::group_refs(ctx, &group_ids, vpc_id).await?;
        for s in &subnet_ids {
            let (subnet, _) = common::load_or(ctx, "subnet", s, "InvalidSubnetID.NotFound").await?;
            if subnet["VpcId"] != vpc_id {
                return Err(invalid_value(format!(
                    "The subnet ID '{s}' is not in VPC '{vpc_id}'"
                )));
            }
        }
        let enis = interfaces(ctx, &mut txn, &id, &subnet_ids, &groups).await?;
        let dns = format!(
            "{id}-{}.{short}.{}.vpce.amazonaws.com",
            &new_id("x")[2..10],
            ctx.region
        );
        endpoint["SubnetIds"] = json!(subnet_ids);
        endpoint["NetworkInterfaceIds"] = json!(enis);
        endpoint["Groups"] = json!(
            groups
                .iter()
                .map(|g| json!({"GroupId": g["GroupId"], "GroupName": g["GroupName"]}))
                .collect::<Vec<_>>()
        );
        endpoint["PrivateDnsEnabled"] =
            json!(opt_bool(&input, "PrivateDnsEnabled").unwrap_or(true));
        endpoint["DnsEntries"] = json!([{"DnsName": dns, "HostedZoneId": "Z7HUB22UULQXV"}]);
        endpoint["DnsOptions"] = json!({"DnsRecordIpType": "ipv4"});
    }
    txn.create(ctx, "vpc-endpoint", &id, &endpoint);
    txn.commit(ctx).await?;
    let mut out = common::public(&endpoint);
    out["State"] = json!("pending");
    Ok(json!({ "VpcEndpoint": out }))
}

#[doc(alias = "DescribeVpcEndpoints")]
pub(crate) async fn describe_vpc_endpoints(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let (items, next) = common::describe(ctx, &input, &DESCRIBE).await?;
    Ok(common::listing("VpcEndpoints", items, next))
}

/// Remove an endpoint's routes and interfaces, inside `txn`.
async fn teardown(ctx: &RequestContext, txn: &mut Txn, endpoint: &Value) -> Result<(), AwsError> {
    let tables = common::str_list(endpoint, "RouteTableIds");
    let existing: Vec<String> = {
        let mut v = Vec::new();
        for t in tables {
            if common::load(ctx, "route-table", &t).await?.is_some() {
                v.push(t);
            }
        }
        v
    };
    routes(ctx, txn, endpoint, &existing, false).await?;
    for eni_id in common::str_list(endpoint, "NetworkInterfaceIds") {
        if let Some((eni, _)) = common::load(ctx, "network-interface", &eni_id).await? {
            let subnet_id = eni["SubnetId"].as_str().unwrap_or_default().to_string();
            let (mut subnet, rev) =
                common::load_or(ctx, "subnet", &subnet_id, "InvalidSubnetID.NotFound").await?;
            network_interfaces::delete_into(ctx, txn, &eni, &mut subnet).await;
            txn.update(ctx, "subnet", &subnet_id, &subnet, rev);
        }
    }
    Ok(())
}

#[doc(alias = "DeleteVpcEndpoints")]
pub(crate) async fn delete_vpc_endpoints(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let ids = str_list(&input, "VpcEndpointIds");
    if ids.is_empty() {
        return Err(super::errors::missing("VpcEndpointId"));
    }
    let _guard = common::write_lock(ctx).await;
    let mut unsuccessful = Vec::new();
    // Each endpoint is its own transaction: AWS reports per-endpoint failures, not all-or-nothing.
    for id in &ids {
        let Some((endpoint, _)) = common::load(ctx, "vpc-endpoint", id).await? else {
            let e = error("InvalidVpcEndpointId.NotFound", &[("id", id)]);
            unsuccessful
                .push(json!({"ResourceId": id, "Error": {"Code": e.code, "Message": e.message}}));
            continue;
        };
        let mut txn = Txn::new();
        teardown(ctx, &mut txn, &endpoint).await?;
        txn.delete(ctx, "vpc-endpoint", id);
        txn.commit(ctx).await?;
    }
    Ok(json!({ "Unsuccessful": unsuccessful }))
}

#[doc(alias = "ModifyVpcEndpoint")]
pub(crate) async fn modify_vpc_endpoint(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let id = req_str(&input, "VpcEndpointId")?;
    let _guard = common::write_lock(ctx).await;
    let (mut endpoint, rev) =
        common::load_or(ctx, "vpc-endpoint", id, "InvalidVpcEndpointId.NotFound").await?;
    let mut txn = Txn::new();
    let add_rt = str_list(&input, "AddRouteTableIds");
    let remove_rt = str_list(&input, "RemoveRouteTableIds");
    if !add_rt.is_empty() || !remove_rt.is_empty() {
        if endpoint["VpcEndpointType"] != "Gateway" {
            return Err(invalid_value(
                "Route tables apply to Gateway endpoints only",
            ));
        }
        routes(ctx, &mut txn, &endpoint, &add_rt, true).await?;
        routes(ctx, &mut txn, &endpoint, &remove_rt, false).await?;
        let mut tables = common::str_list(&endpoint, "RouteTableIds");
        tables.retain(|t| !remove_rt.contains(t));
        tables.extend(
            add_rt
                .into_iter()
                .filter(|t| !tables.contains(t))
                .collect::<Vec<_>>(),
        );
        endpoint["RouteTableIds"] = json!(tables);
    }
    let add_sn = str_list(&input, "AddSubnetIds");
    if !add_sn.is_empty() {
        let groups: Vec<Value> = array(&endpoint, "Groups").to_vec();
        let enis = interfaces(ctx, &mut txn, id, &add_sn, &groups).await?;
        let mut subnets = common::str_list(&endpoint, "SubnetIds");
        subnets.extend(add_sn);
        let mut all = common::str_list(&endpoint, "NetworkInterfaceIds");
        all.extend(enis);
        endpoint["SubnetIds"] = json!(subnets);
        endpoint["NetworkInterfaceIds"] = json!(all);
    }
    let remove_sn = str_list(&input, "RemoveSubnetIds");
    if !remove_sn.is_empty() {
        let mut keep = Vec::new();
        for eni_id in common::str_list(&endpoint, "NetworkInterfaceIds") {
            let Some((eni, _)) = common::load(ctx, "network-interface", &eni_id).await? else {
                continue;
            };
            let subnet_id = eni["SubnetId"].as_str().unwrap_or_default().to_string();
            if remove_sn.contains(&subnet_id) {
                let (mut subnet, srev) =
                    common::load_or(ctx, "subnet", &subnet_id, "InvalidSubnetID.NotFound").await?;
                network_interfaces::delete_into(ctx, &mut txn, &eni, &mut subnet).await;
                txn.update(ctx, "subnet", &subnet_id, &subnet, srev);
            } else {
                keep.push(eni_id);
            }
        }
        let mut subnets = common::str_list(&endpoint, "SubnetIds");
        subnets.retain(|s| !remove_sn.contains(s));
        endpoint["SubnetIds"] = json!(subnets);
        endpoint["NetworkInterfaceIds"] = json!(keep);
    }
    if let Some(p) = opt_str(&input, "PolicyDocument") {
        endpoint["PolicyDocument"] = json!(p);
    }
    if opt_bool(&input, "ResetPolicy") == Some(true) {
        endpoint["PolicyDocument"] = json!(DEFAULT_POLICY);
    }
    if let Some(b) = opt_bool(&input, "PrivateDnsEnabled") {
        endpoint["PrivateDnsEnabled"] = json!(b);
    }
    txn.update(ctx, "vpc-endpoint", id, &endpoint, rev);
    txn.commit(ctx).await?;
    Ok(json!({ "Return": true }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{ctx, err, ok};
    use serde_json::json;

    #[tokio::test]
    async fn gateway_and_interface_endpoints() {
        let c = ctx();
        let v = ok(&c, "CreateVpc", json!({"CidrBlock": "10.0.0.0/16"})).await;
        let vpc = v["Vpc"]["VpcId"].clone();
        let rt =
            ok(&c, "CreateRouteTable", json!({"VpcId": vpc})).await["RouteTable"]["RouteTableId"]
                .clone();
        let s = ok(
            &c,
            "CreateSubnet",
            json!({"VpcId": vpc, "CidrBlock": "10.0.0.0/24"}),
        )
        .await["Subnet"]["SubnetId"]
            .clone();
        let gw = ok(&c, "CreateVpcEndpoint", json!({"VpcId": vpc, "ServiceName": "com.amazonaws.us-east-1.s3", "RouteTableIds": [rt]})).await;
        let gw_id = gw["VpcEndpoint"]["VpcEndpointId"].clone();
        let routes = ok(&c, "DescribeRouteTables", json!({"RouteTableIds": [rt]})).await;
        assert!(
            routes["RouteTables"][0]["Routes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["GatewayId"] == gw_id)
        );
        let e = err(
            &c,
            "CreateVpcEndpoint",
            json!({"VpcId": vpc, "ServiceName": "com.amazonaws.us-east-1.ecr.api"}),
        )
        .await;
        assert_eq!(
            e.code, "InvalidParameterValue",
            "ECR has no gateway endpoint"
        );
        let ifc = ok(
            &c,
            "CreateVpcEndpoint",
            json!({"VpcId": vpc, "ServiceName": "com.amazonaws.us-east-1.ecr.api",
            "VpcEndpointType": "Interface", "SubnetIds": [s]}),
        )
        .await;
        assert_eq!(
            ifc["VpcEndpoint"]["NetworkInterfaceIds"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let d = ok(
            &c,
            "DescribeVpcEndpoints",
            json!({"Filters": [{"Name": "vpc-endpoint-type", "Values": ["Interface"]}]}),
        )
        .await;
        assert_eq!(d["VpcEndpoints"][0]["State"], "available");
        assert_eq!(
            err(&c, "DeleteVpc", json!({"VpcId": vpc})).await.code,
            "DependencyViolation"
        );
        let del = ok(&c, "DeleteVpcEndpoints", json!({"VpcEndpointIds": [gw_id, ifc["VpcEndpoint"]["VpcEndpointId"], "vpce-0123456789abcdef0"]})).await;
        assert_eq!(
            del["Unsuccessful"][0]["Error"]["Code"],
            "InvalidVpcEndpointId.NotFound"
        );
        let routes = ok(&c, "DescribeRouteTables", json!({"RouteTableIds": [rt]})).await;
        assert_eq!(
            routes["RouteTables"][0]["Routes"].as_array().unwrap().len(),
            1
        );
        let subnet = ok(&c, "DescribeSubnets", json!({"SubnetIds": [s]})).await;
        assert_eq!(
            subnet["Subnets"][0]["AvailableIpAddressCount"], 251,
            "endpoint interface released its address"
        );
    }
}
