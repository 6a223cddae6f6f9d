//! VPCs: CreateVpc, DescribeVpcs, DeleteVpc, Modify/DescribeVpcAttribute, Associate/DisassociateVpcCidrBlock.
//!
//! Like AWS, every VPC is born with a main route table (one `local` route per CIDR block), a `default`
//! security group and a default network ACL, all in the same transaction as the VPC.

use ipnet::Ipv4Net;
use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::common::{self, Describe, Txn, opt_attr_bool, opt_str, req_str};
use super::errors::{dependency, error, invalid_value};
use super::{network_acls, route_tables, security_groups, tags};
use crate::context::RequestContext;
use crate::resources::new_id;

pub(crate) const DESCRIBE: Describe = Describe {
    kind: "vpc",
    id_field: "VpcId",
    ids_member: "VpcIds",
    id_prefix: "vpc",
    not_found: "InvalidVpcID.NotFound",
    malformed: "InvalidVpcID.Malformed",
    tags_field: "Tags",
    filters: &[
        ("cidr", "CidrBlock"),
        (
            "cidr-block-association.cidr-block",
            "CidrBlockAssociationSet.CidrBlock",
        ),
        (
            "cidr-block-association.association-id",
            "CidrBlockAssociationSet.AssociationId",
        ),
        (
            "cidr-block-association.state",
            "CidrBlockAssociationSet.CidrBlockState.State",
        ),
        ("dhcp-options-id", "DhcpOptionsId"),
        (
            "ipv6-cidr-block-association.ipv6-cidr-block",
            "Ipv6CidrBlockAssociationSet.Ipv6CidrBlock",
        ),
        ("is-default", "IsDefault"),
        ("owner-id", "OwnerId"),
        ("state", "State"),
        ("vpc-id", "VpcId"),
    ],
    max_results: (5, 1000),
};

/// A new VPC and the three resources AWS creates with it.
pub(crate) struct NewVpc {
    pub vpc: Value,
    pub main_route_table: Value,
    pub sg: Value,
    pub acl: Value,
}

/// Parse and check an IPv4 CIDR the way CreateVpc / CreateSubnet do.
pub(crate) fn parse_cidr(cidr: &str, param: &str) -> Result<Ipv4Net, AwsError> {
    let bad = || {
        invalid_value(format!(
            "Value ({cidr}) for parameter {param} is invalid. This is not a valid CIDR block."
        ))
    };
    let net: Ipv4Net = cidr.parse().map_err(|_| bad())?;
    if net.network() != net.addr() {
        return Err(bad());
    }
    Ok(net)
}

fn cidr_association(cidr: Ipv4Net, state: &str) -> Value {
    json!({"AssociationId": new_id("vpc-cidr-assoc"), "CidrBlock": cidr.to_string(),
           "CidrBlockState": {"State": state}})
}

/// Build (not store) a VPC with its main route table, default security group and default ACL.
pub(crate) fn build(
    ctx: &RequestContext,
    cidr: Ipv4Net,
    tenancy: &str,
    is_default: bool,
    tags: Vec<Value>,
    dhcp_options_id: &str,
) -> NewVpc {
    let vpc_id = new_id("vpc");
    let main_route_table = route_tables::build(ctx, &vpc_id, &[cidr], true, Vec::new());
    let sg = security_groups::build_default(ctx, &vpc_id);
    let acl = network_acls::build(ctx, &vpc_id, true, Vec::new());
    let vpc = json!({
        "VpcId": vpc_id,
        "CidrBlock": cidr.to_string(),
        "State": "available",
        "DhcpOptionsId": dhcp_options_id,
        "InstanceTenancy": tenancy,
        "IsDefault": is_default,
        "OwnerId": ctx.account_id,
        "CidrBlockAssociationSet": [cidr_association(cidr, "associated")],
        "Ipv6CidrBlockAssociationSet": [],
        "Tags": tags,
        "BlockPublicAccessStates": {"InternetGatewayBlockMode": "off"},
        "_attrs": {
            "enableDnsSupport": true,
            "enableDnsHostnames": is_default,
            "enableNetworkAddressUsageMetrics": false,
        },
        "_main_route_table": main_route_table["RouteTableId"],
        "_default_security_group": sg["GroupId"],
        "_default_network_acl": acl["NetworkAclId"],
    });
    NewVpc {
        vpc,
        main_route_table,
        sg,
        acl,
    }
}

/// The VPC's associated IPv4 CIDR blocks.
pub(crate) fn cidrs(vpc: &Value) -> Vec<Ipv4Net> {
    common::array(vpc, "CidrBlockAssociationSet")
        .iter()
        .filter(|a| a["CidrBlockState"]["State"] == "associated")
        .filter_map(|a| a["CidrBlock"].as_str()?.parse().ok())
        .collect()
}

#[doc(alias = "CreateVpc")]
pub(crate) async fn create_vpc(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let cidr_text = req_str(&input, "CidrBlock")?;
    let cidr = parse_cidr(cidr_text, "cidrBlock")?;
    if !(16..=28).contains(&cidr.prefix_len()) {
        return Err(error("InvalidVpc.Range", &[("cidr", cidr_text)]));
    }
    let tenancy = opt_str(&input, "InstanceTenancy").unwrap_or("default");
    if !["default", "dedicated", "host"].contains(&tenancy) {
        return Err(invalid_value(format!(
            "Value ({tenancy}) for parameter instanceTenancy is invalid."
        )));
    }
    let tags = tags::for_create(&input, "vpc")?;
    let dhcp = super::regions::defaults(ctx).await?["DhcpOptionsId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let built = build(ctx, cidr, tenancy, false, tags, &dhcp);
    let mut txn = Txn::new();
    let id = built.vpc["VpcId"].as_str().unwrap_or_default();
    txn.create(ctx, "vpc", id, &built.vpc);
    store_companions(ctx, &mut txn, &built);
    txn.commit(ctx).await?;
    // AWS answers `pending`; the VPC is usable at once, so Describe shows `available`.
    let mut out = common::public(&built.vpc);
    out["State"] = json!("pending");
    Ok(json!({ "Vpc": out }))
}

fn store_companions(ctx: &RequestContext, txn: &mut Txn, built: &NewVpc) {
    let rtb = &built.main_route_table;
    txn.create(
        ctx,
        "route-table",
        rtb["RouteTableId"].as_str().unwrap_or_default(),
        rtb,
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
        built.acl["NetworkAclId"].as_str().unwrap_or_default(),
        &built.acl,
    );
}

#[doc(alias = "DescribeVpcs")]
pub(crate) async fn describe_vpcs(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let (items, next) = common::describe(ctx, &input, &DESCRIBE).await?;
    Ok(common::listing("Vpcs", items, next))
}

/// Records of `kind` whose `VpcId` (at `path`) is this VPC.
async fn in_vpc(
    ctx: &RequestContext,
    kind: &str,
    path: &str,
    vpc_id: &str,
) -> Result<Vec<Value>, AwsError> {
    Ok(common::load_all(ctx, kind)
        .await?
        .into_iter()
        .filter(|r| {
            super::filters::path_values(r, path)
                .iter()
                .any(|v| v == vpc_id)
        })
        .collect())
}

#[doc(alias = "DeleteVpc")]
pub(crate) async fn delete_vpc(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let vpc_id = req_str(&input, "VpcId")?;
    if !common::well_formed(vpc_id, "vpc") {
        return Err(error("InvalidVpcID.Malformed", &[("id", vpc_id)]));
    }
    let _guard = common::write_lock(ctx).await;
    let (vpc, _) = common::load_or(ctx, "vpc", vpc_id, "InvalidVpcID.NotFound").await?;
    let has_deps = || {
        dependency(format!(
            "The vpc '{vpc_id}' has dependencies and cannot be deleted."
        ))
    };
    let blocking = [
        ("subnet", "VpcId"),
        ("internet-gateway", "Attachments.VpcId"),
        ("egress-only-internet-gateway", "Attachments.VpcId"),
        ("natgateway", "VpcId"),
        ("vpc-endpoint", "VpcId"),
        ("network-interface", "VpcId"),
    ];
    for (kind, path) in blocking {
        if !in_vpc(ctx, kind, path, vpc_id).await?.is_empty() {
            return Err(has_deps());
        }
    }
    let main_rtb = vpc["_main_route_table"].as_str().unwrap_or_default();
    let default_sg = vpc["_default_security_group"].as_str().unwrap_or_default();
    let default_acl = vpc["_default_network_acl"].as_str().unwrap_or_default();
    let mut txn = Txn::new();
    for (kind, own, id_field) in [
        ("route-table", main_rtb, "RouteTableId"),
        ("security-group", default_sg, "GroupId"),
        ("network-acl", default_acl, "NetworkAclId"),
    ] {
        for r in in_vpc(ctx, kind, "VpcId", vpc_id).await? {
            let id = r[id_field].as_str().unwrap_or_default();
            if id != own {
                return Err(has_deps());
            }
            txn.delete(ctx, kind, id);
        }
    }
    txn.delete(ctx, "vpc", vpc_id);
    txn.commit(ctx).await?;
    Ok(json!({}))
}

const ATTRIBUTES: &[(&str, &str)] = &[
    ("enableDnsSupport", "EnableDnsSupport"),
    ("enableDnsHostnames", "EnableDnsHostnames"),
    (
        "enableNetworkAddressUsageMetrics",
        "EnableNetworkAddressUsageMetrics",
    ),
];

#[doc(alias = "DescribeVpcAttribute")]
pub(crate) async fn describe_vpc_attribute(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let vpc_id = req_str(&input, "VpcId")?;
    let attribute = req_str(&input, "Attribute")?;
    let (_, member) = ATTRIBUTES
        .iter()
        .find(|(a, _)| *a == attribute)
        .ok_or_else(|| {
            invalid_value(format!(
                "Value ({attribute}) for parameter attribute is invalid. Unknown attribute."
            ))
        })?;
    let (vpc, _) = common::load_or(ctx, "vpc", vpc_id, "InvalidVpcID.NotFound").await?;
    let value = vpc["_attrs"][attribute].as_bool().unwrap_or(false);
    let mut out = json!({ "VpcId": vpc_id });
    out[*member] = json!({ "Value": value });
    Ok(out)
}

#[doc(alias = "ModifyVpcAttribute")]
pub(crate) async fn modify_vpc_attribute(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let vpc_id = req_str(&input, "VpcId")?;
    let changes: Vec<(&str, bool)> = ATTRIBUTES
        .iter()
        .filter_map(|(attr, member)| opt_attr_bool(&input, member).map(|v| (*attr, v)))
        .collect();
    // AWS takes exactly one attribute per call.
    if changes.len() != 1 {
        return Err(error(
            "InvalidParameterCombination",
            &[(
                "message",
                "Exactly one attribute must be specified per request.",
            )],
        ));
    }
    let _guard = common::write_lock(ctx).await;
    let (mut vpc, rev) = common::load_or(ctx, "vpc", vpc_id, "InvalidVpcID.NotFound").await?;
    let (attr, value) = changes[0];
    if attr == "enableDnsHostnames" && value && vpc["_attrs"]["enableDnsSupport"] == false {
        return Err(invalid_value(
            "Cannot enable DNS hostnames for a VPC without DNS support enabled.",
        ));
    }
    vpc["_attrs"][attr] = json!(value);
    let mut txn = Txn::new();
    txn.update(ctx, "vpc", vpc_id, &vpc, rev);
    txn.commit(ctx).await?;
    Ok(json!({}))
}

#[doc(alias = "AssociateVpcCidrBlock")]
pub(crate) async fn associate_vpc_cidr_block(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let vpc_id = req_str(&input, "VpcId")?;
    let cidr_text = req_str(&input, "CidrBlock")?;
    let cidr = parse_cidr(cidr_text, "cidrBlock")?;
    if !(16..=28).contains(&cidr.prefix_len()) {
        return Err(error("InvalidVpc.Range", &[("cidr", cidr_text)]));
    }
    let _guard = common::write_lock(ctx).await;
    let (mut vpc, rev) = common::load_or(ctx, "vpc", vpc_id, "InvalidVpcID.NotFound").await?;
    let existing = cidrs(&vpc);
    if let Some(other) = existing
        .iter()
        .find(|c| c.contains(&cidr) || cidr.contains(*c))
    {
        return Err(error(
            "CidrConflict",
            &[(
                "message",
                &format!(
                    "The CIDR '{cidr}' conflicts with another CIDR block '{other}' of the VPC '{vpc_id}'."
                ),
            )],
        ));
    }
    if existing.len() >= 5 {
        return Err(error(
            "CidrLimitExceeded",
            &[(
                "message",
                &format!("This network '{vpc_id}' has met its maximum number of allowed CIDRs: 5"),
            )],
        ));
    }
    let assoc = cidr_association(cidr, "associated");
    if let Some(set) = vpc["CidrBlockAssociationSet"].as_array_mut() {
        set.push(assoc.clone());
    }
    let mut txn = Txn::new();
    txn.update(ctx, "vpc", vpc_id, &vpc, rev);
    // Every route table of the VPC routes the new block locally.
    for rtb in in_vpc(ctx, "route-table", "VpcId", vpc_id).await? {
        let (mut rtb, rev) = common::load_or(
            ctx,
            "route-table",
            rtb["RouteTableId"].as_str().unwrap_or_default(),
            "InvalidRouteTableID.NotFound",
        )
        .await?;
        route_tables::add_local_route(&mut rtb, cidr);
        let id = rtb["RouteTableId"].as_str().unwrap_or_default().to_string();
        txn.update(ctx, "route-table", &id, &rtb, rev);
    }
    txn.commit(ctx).await?;
    let mut shown = assoc;
    shown["CidrBlockState"]["State"] = json!("associating");
    Ok(json!({"VpcId": vpc_id, "CidrBlockAssociation": shown}))
}

#[doc(alias = "DisassociateVpcCidrBlock")]
pub(crate) async fn disassociate_vpc_cidr_block(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let assoc_id = req_str(&input, "AssociationId")?;
    let _guard = common::write_lock(ctx).await;
    let vpc = common::load_all(ctx, "vpc")
        .await?
        .into_iter()
        .find(|v| {
            common::array(v, "CidrBlockAssociationSet")
                .iter()
                .any(|a| a["AssociationId"] == assoc_id)
        })
        .ok_or_else(|| {
            error(
                "InvalidVpcCidrBlockAssociationID.NotFound",
                &[("id", assoc_id)],
            )
        })?;
    let vpc_id = vpc["VpcId"].as_str().unwrap_or_default().to_string();
    let (mut vpc, rev) = common::load_or(ctx, "vpc", &vpc_id, "InvalidVpcID.NotFound").await?;
    let set = common::array(&vpc, "CidrBlockAssociationSet").to_vec();
    let idx = set
        .iter()
        .position(|a| a["AssociationId"] == assoc_id)
        .unwrap_or(0);
    let cidr: Ipv4Net = set[idx]["CidrBlock"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(|_| {
            error(
                "InvalidVpcCidrBlockAssociationID.NotFound",
                &[("id", assoc_id)],
            )
        })?;
    if vpc["CidrBlock"] == cidr.to_string().as_str() {
        return Err(error(
            "OperationNotPermitted",
            &[(
                "message",
                &format!(
                    "The vpc CIDR block with association ID {assoc_id} may not be disassociated. It is the primary IPv4 CIDR block of the VPC"
                ),
            )],
        ));
    }
    for s in in_vpc(ctx, "subnet", "VpcId", &vpc_id).await? {
        if let Some(net) = s["CidrBlock"]
            .as_str()
            .and_then(|c| c.parse::<Ipv4Net>().ok())
            && cidr.contains(&net)
        {
            return Err(dependency(format!(
                "The vpc CIDR block with association ID {assoc_id} may not be disassociated. It has dependencies."
            )));
        }
    }
    let mut removed = set[idx].clone();
    let mut remaining = set;
    remaining.remove(idx);
    vpc["CidrBlockAssociationSet"] = Value::Array(remaining);
    let mut txn = Txn::new();
    txn.update(ctx, "vpc", &vpc_id, &vpc, rev);
    for rtb in in_vpc(ctx, "route-table", "VpcId", &vpc_id).await? {
        let id = rtb["RouteTableId"].as_str().unwrap_or_default().to_string();
        let (mut rtb, rev) =
            common::load_or(ctx, "route-table", &id, "InvalidRouteTableID.NotFound").await?;
        if let Some(routes) = rtb["Routes"].as_array_mut() {
            routes.retain(|r| {
                !(r["GatewayId"] == "local"
                    && r["DestinationCidrBlock"] == cidr.to_string().as_str())
            });
        }
        txn.update(ctx, "route-table", &id, &rtb, rev);
    }
    txn.commit(ctx).await?;
    removed["CidrBlockState"]["State"] = json!("disassociating");
    Ok(json!({"VpcId": vpc_id, "CidrBlockAssociation": removed}))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{ctx, err, ok};
    use serde_json::json;

    #[tokio::test]
    async fn filtered_pages_cover_every_match_once_across_store_pages() {
        let c = ctx();
        for i in 0..600 {
            let team = if i % 3 == 0 { "a" } else { "b" };
            ok(
                &c,
                "CreateVpc",
                json!({"CidrBlock": format!("10.{}.{}.0/24", i / 250, i % 250),
                       "TagSpecifications": [{"ResourceType": "vpc", "Tags": [{"Key": "team", "Value": team}]}]}),
            )
            .await;
        }
        let mut seen = Vec::new();
        let mut input =
            json!({"MaxResults": 70, "Filters": [{"Name": "tag:team", "Values": ["a"]}]});
        loop {
            let out = ok(&c, "DescribeVpcs", input.clone()).await;
            let page = out["Vpcs"].as_array().unwrap();
            assert!(page.len() <= 70);
            seen.extend(
                page.iter()
                    .map(|v| v["VpcId"].as_str().unwrap().to_string()),
            );
            match out["NextToken"].as_str() {
                Some(t) => input["NextToken"] = json!(t),
                None => break,
            }
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(seen, unique, "ids in order, none repeated");
        assert_eq!(seen.len(), 200);
        let two = ok(&c, "DescribeVpcs", json!({"VpcIds": [seen[5], seen[1]]})).await;
        let ids: Vec<&str> = two["Vpcs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["VpcId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![seen[1].as_str(), seen[5].as_str()]);
    }

    #[tokio::test]
    async fn create_vpc_brings_main_table_default_group_and_acl() {
        let c = ctx();
        let out = ok(&c, "CreateVpc", json!({"CidrBlock": "10.0.0.0/16",
            "TagSpecifications": [{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "main"}]}]})).await;
        let vpc = &out["Vpc"];
        let id = vpc["VpcId"].as_str().unwrap();
        assert!(super::common::well_formed(id, "vpc"), "{id}");
        assert_eq!(vpc["State"], "pending");
        assert_eq!(vpc["Tags"][0]["Value"], "main");
        assert!(vpc.get("_attrs").is_none(), "bookkeeping never leaves");

        let f = |name: &str, v: &str| json!([{"Name": name, "Values": [v]}, {"Name": "vpc-id", "Values": [id]}]);
        let rt = ok(
            &c,
            "DescribeRouteTables",
            json!({"Filters": f("association.main", "true")}),
        )
        .await;
        assert_eq!(rt["RouteTables"].as_array().unwrap().len(), 1);
        assert_eq!(rt["RouteTables"][0]["Routes"][0]["GatewayId"], "local");
        let sg = ok(
            &c,
            "DescribeSecurityGroups",
            json!({"Filters": f("group-name", "default")}),
        )
        .await;
        assert_eq!(
            sg["SecurityGroups"][0]["IpPermissionsEgress"][0]["IpRanges"][0]["CidrIp"],
            "0.0.0.0/0"
        );
        let acl = ok(
            &c,
            "DescribeNetworkAcls",
            json!({"Filters": f("default", "true")}),
        )
        .await;
        assert_eq!(
            acl["NetworkAcls"][0]["Entries"].as_array().unwrap().len(),
            4
        );

        let got = ok(
            &c,
            "DescribeVpcs",
            json!({"Filters": [{"Name": "tag:Name", "Values": ["ma*"]}]}),
        )
        .await;
        assert_eq!(got["Vpcs"].as_array().unwrap().len(), 1);
        assert_eq!(got["Vpcs"][0]["State"], "available");
        let attr = ok(
            &c,
            "DescribeVpcAttribute",
            json!({"VpcId": id, "Attribute": "enableDnsHostnames"}),
        )
        .await;
        assert_eq!(attr["EnableDnsHostnames"]["Value"], false);
        ok(
            &c,
            "ModifyVpcAttribute",
            json!({"VpcId": id, "EnableDnsHostnames": {"Value": true}}),
        )
        .await;
        let attr = ok(
            &c,
            "DescribeVpcAttribute",
            json!({"VpcId": id, "Attribute": "enableDnsHostnames"}),
        )
        .await;
        assert_eq!(attr["EnableDnsHostnames"]["Value"], true);
    }

    #[tokio::test]
    async fn default_vpc_exists_with_a_subnet_per_zone() {
        let c = ctx();
        let vpcs = ok(
            &c,
            "DescribeVpcs",
            json!({"Filters": [{"Name": "is-default", "Values": ["true"]}]}),
        )
        .await;
        let vpc = &vpcs["Vpcs"][0];
        assert_eq!(vpc["CidrBlock"], "172.31.0.0/16");
        let subnets = ok(
            &c,
            "DescribeSubnets",
            json!({"Filters": [{"Name": "default-for-az", "Values": ["true"]}]}),
        )
        .await;
        let subnets = subnets["Subnets"].as_array().unwrap();
        assert_eq!(subnets.len(), 6);
        assert!(subnets.iter().any(|s| s["CidrBlock"] == "172.31.0.0/20" && s["AvailabilityZone"] == "us-east-1a"));
        assert!(
            subnets
                .iter()
                .all(|s| s["AvailableIpAddressCount"] == 4091 && s["MapPublicIpOnLaunch"] == true)
        );
        let attrs = ok(
            &c,
            "DescribeAccountAttributes",
            json!({"AttributeNames": ["default-vpc"]}),
        )
        .await;
        assert_eq!(
            attrs["AccountAttributes"][0]["AttributeValues"][0]["AttributeValue"],
            vpc["VpcId"]
        );
        let igw = ok(
            &c,
            "DescribeInternetGateways",
            json!({"Filters": [{"Name": "attachment.vpc-id", "Values": [vpc["VpcId"]]}]}),
        )
        .await;
        assert_eq!(igw["InternetGateways"].as_array().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn errors_are_aws_shaped() {
        let c = ctx();
        let e = err(&c, "CreateVpc", json!({"CidrBlock": "10.0.0.0/8"})).await;
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("InvalidVpc.Range", "The CIDR '10.0.0.0/8' is invalid.")
        );
        let e = err(&c, "CreateVpc", json!({"CidrBlock": "10.0.0.1/16"})).await;
        assert_eq!(e.code, "InvalidParameterValue");
        let e = err(&c, "CreateVpc", json!({})).await;
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            (
                "MissingParameter",
                "The request must contain the parameter CidrBlock"
            )
        );
        let e = err(
            &c,
            "DescribeVpcs",
            json!({"VpcIds": ["vpc-0123456789abcdef0"]}),
        )
        .await;
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            (
                "InvalidVpcID.NotFound",
                "The vpc ID 'vpc-0123456789abcdef0' does not exist"
            )
        );
        let e = err(&c, "DescribeVpcs", json!({"VpcIds": ["nope"]})).await;
        assert_eq!(e.code, "InvalidVpcID.Malformed");
        let e = err(
            &c,
            "CreateVpc",
            json!({"CidrBlock": "10.0.0.0/16", "DryRun": true}),
        )
        .await;
        assert_eq!((e.code.as_str(), e.status), ("DryRunOperation", 412));
        let vpcs = ok(&c, "DescribeVpcs", json!({})).await;
        assert_eq!(
            vpcs["Vpcs"].as_array().unwrap().len(),
            1,
            "dry run and failures created nothing"
        );
        let e = err(
            &c,
            "DescribeVpcs",
            json!({"Filters": [{"Name": "color", "Values": ["x"]}]}),
        )
        .await;
        assert_eq!(e.message, "The filter 'color' is invalid");
    }

    #[tokio::test]
    async fn delete_vpc_refuses_with_dependencies_then_cleans_up() {
        let c = ctx();
        let vpc = ok(&c, "CreateVpc", json!({"CidrBlock": "10.1.0.0/16"})).await;
        let id = vpc["Vpc"]["VpcId"].as_str().unwrap().to_string();
        let subnet = ok(
            &c,
            "CreateSubnet",
            json!({"VpcId": id, "CidrBlock": "10.1.1.0/24"}),
        )
        .await;
        let e = err(&c, "DeleteVpc", json!({"VpcId": id})).await;
        assert_eq!(e.code, "DependencyViolation");
        assert_eq!(
            e.message,
            format!("The vpc '{id}' has dependencies and cannot be deleted.")
        );
        ok(
            &c,
            "DeleteSubnet",
            json!({"SubnetId": subnet["Subnet"]["SubnetId"]}),
        )
        .await;
        let igw = ok(&c, "CreateInternetGateway", json!({})).await;
        let igw_id = igw["InternetGateway"]["InternetGatewayId"].clone();
        ok(
            &c,
            "AttachInternetGateway",
            json!({"InternetGatewayId": igw_id, "VpcId": id}),
        )
        .await;
        assert_eq!(
            err(&c, "DeleteVpc", json!({"VpcId": id})).await.code,
            "DependencyViolation"
        );
        ok(
            &c,
            "DetachInternetGateway",
            json!({"InternetGatewayId": igw_id, "VpcId": id}),
        )
        .await;
        ok(&c, "DeleteVpc", json!({"VpcId": id})).await;
        let rts = ok(
            &c,
            "DescribeRouteTables",
            json!({"Filters": [{"Name": "vpc-id", "Values": [id]}]}),
        )
        .await;
        assert!(
            rts["RouteTables"].as_array().unwrap().is_empty(),
            "main table went with the VPC"
        );
        let sgs = ok(
            &c,
            "DescribeSecurityGroups",
            json!({"Filters": [{"Name": "vpc-id", "Values": [id]}]}),
        )
        .await;
        assert!(sgs["SecurityGroups"].as_array().unwrap().is_empty());
    }

    #[tokio::test]
    async fn secondary_cidr_blocks() {
        let c = ctx();
        let vpc = ok(&c, "CreateVpc", json!({"CidrBlock": "10.2.0.0/16"})).await;
        let id = vpc["Vpc"]["VpcId"].as_str().unwrap().to_string();
        let e = err(
            &c,
            "AssociateVpcCidrBlock",
            json!({"VpcId": id, "CidrBlock": "10.2.128.0/17"}),
        )
        .await;
        assert_eq!(e.code, "CidrConflict");
        let a = ok(
            &c,
            "AssociateVpcCidrBlock",
            json!({"VpcId": id, "CidrBlock": "100.64.0.0/16"}),
        )
        .await;
        ok(
            &c,
            "CreateSubnet",
            json!({"VpcId": id, "CidrBlock": "100.64.0.0/24"}),
        )
        .await;
        let rts = ok(
            &c,
            "DescribeRouteTables",
            json!({"Filters": [{"Name": "vpc-id", "Values": [id]}]}),
        )
        .await;
        assert_eq!(rts["RouteTables"][0]["Routes"].as_array().unwrap().len(), 2);
        let assoc = a["CidrBlockAssociation"]["AssociationId"].clone();
        let e = err(
            &c,
            "DisassociateVpcCidrBlock",
            json!({"AssociationId": assoc}),
        )
        .await;
        assert_eq!(e.code, "DependencyViolation");
        let primary = vpc["Vpc"]["CidrBlockAssociationSet"][0]["AssociationId"].clone();
        let e = err(
            &c,
            "DisassociateVpcCidrBlock",
            json!({"AssociationId": primary}),
        )
        .await;
        assert_eq!(e.code, "OperationNotPermitted");
    }

    #[tokio::test]
    async fn paging_visits_every_vpc_once() {
        let c = ctx();
        for i in 0..7 {
            ok(
                &c,
                "CreateVpc",
                json!({"CidrBlock": format!("10.{}.0.0/16", 10 + i)}),
            )
            .await;
        }
        let mut seen = Vec::new();
        let mut input = json!({"MaxResults": 5});
        loop {
            let page = ok(&c, "DescribeVpcs", input.clone()).await;
            seen.extend(
                page["Vpcs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v["VpcId"].clone()),
            );
            match page.get("NextToken") {
                Some(t) => input = json!({"MaxResults": 5, "NextToken": t}),
                None => break,
            }
        }
        assert_eq!(seen.len(), 8, "seven plus the default VPC");
        seen.dedup();
        assert_eq!(seen.len(), 8);
    }
}
