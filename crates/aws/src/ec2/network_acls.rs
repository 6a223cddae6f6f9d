//! Network ACLs: Create/Delete/DescribeNetworkAcls, Create/Delete/ReplaceNetworkAclEntry,
//! ReplaceNetworkAclAssociation.
//!
//! Every VPC has a default ACL (rule 100 allows everything both ways, the `*` rule 32767 denies); new
//! subnets are associated with it. A custom ACL starts with only the deny-all rules.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::common::{self, Describe, Txn, array, opt_bool, opt_i64, opt_str, req_str};
use super::errors::{dependency, error, invalid_value, missing};
use super::tags;
use crate::context::RequestContext;
use crate::resources::new_id;

pub(crate) const DESCRIBE: Describe = Describe {
    kind: "network-acl",
    id_field: "NetworkAclId",
    ids_member: "NetworkAclIds",
    id_prefix: "acl",
    not_found: "InvalidNetworkAclID.NotFound",
    malformed: "InvalidNetworkAclID.Malformed",
    tags_field: "Tags",
    filters: &[
        (
            "association.association-id",
            "Associations.NetworkAclAssociationId",
        ),
        ("association.network-acl-id", "Associations.NetworkAclId"),
        ("association.subnet-id", "Associations.SubnetId"),
        ("default", "IsDefault"),
        ("entry.cidr", "Entries.CidrBlock"),
        ("entry.egress", "Entries.Egress"),
        ("entry.icmp.code", "Entries.IcmpTypeCode.Code"),
        ("entry.icmp.type", "Entries.IcmpTypeCode.Type"),
        ("entry.ipv6-cidr", "Entries.Ipv6CidrBlock"),
        ("entry.port-range.from", "Entries.PortRange.From"),
        ("entry.port-range.to", "Entries.PortRange.To"),
        ("entry.protocol", "Entries.Protocol"),
        ("entry.rule-action", "Entries.RuleAction"),
        ("entry.rule-number", "Entries.RuleNumber"),
        ("network-acl-id", "NetworkAclId"),
        ("owner-id", "OwnerId"),
        ("vpc-id", "VpcId"),
    ],
    max_results: (5, 1000),
};

fn entry(rule: i64, action: &str, egress: bool) -> Value {
    json!({"RuleNumber": rule, "Protocol": "-1", "RuleAction": action, "Egress": egress,
           "CidrBlock": "0.0.0.0/0"})
}

/// Build (not store) an ACL; the default one allows everything.
pub(crate) fn build(
    ctx: &RequestContext,
    vpc_id: &str,
    is_default: bool,
    tags: Vec<Value>,
) -> Value {
    let mut entries = Vec::new();
    for egress in [true, false] {
        if is_default {
            entries.push(entry(100, "allow", egress));
        }
        entries.push(entry(32767, "deny", egress));
    }
    json!({"NetworkAclId": new_id("acl"), "VpcId": vpc_id, "IsDefault": is_default, "Entries": entries,
           "Associations": [], "OwnerId": ctx.account_id, "Tags": tags})
}

/// Associate a brand-new subnet with this (default) ACL.
pub(crate) fn associate_new_subnet(acl: &mut Value, subnet_id: &str) {
    let acl_id = acl["NetworkAclId"].clone();
    if let Some(list) = acl["Associations"].as_array_mut() {
        list.push(
            json!({"NetworkAclAssociationId": new_id("aclassoc"), "NetworkAclId": acl_id,
                         "SubnetId": subnet_id}),
        );
    }
}

#[doc(alias = "CreateNetworkAcl")]
pub(crate) async fn create_network_acl(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let vpc_id = req_str(&input, "VpcId")?;
    let tags = tags::for_create(&input, "network-acl")?;
    let _guard = common::write_lock(ctx).await;
    common::load_or(ctx, "vpc", vpc_id, "InvalidVpcID.NotFound").await?;
    let acl = build(ctx, vpc_id, false, tags);
    let mut txn = Txn::new();
    txn.create(
        ctx,
        "network-acl",
        acl["NetworkAclId"].as_str().unwrap_or_default(),
        &acl,
    );
    txn.commit(ctx).await?;
    Ok(json!({ "NetworkAcl": common::public(&acl) }))
}

#[doc(alias = "DescribeNetworkAcls")]
pub(crate) async fn describe_network_acls(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let (items, next) = common::describe(ctx, &input, &DESCRIBE).await?;
    Ok(common::listing("NetworkAcls", items, next))
}

#[doc(alias = "DeleteNetworkAcl")]
pub(crate) async fn delete_network_acl(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let id = req_str(&input, "NetworkAclId")?;
    let _guard = common::write_lock(ctx).await;
    let (acl, _) = common::load_or(ctx, "network-acl", id, "InvalidNetworkAclID.NotFound").await?;
    if acl["IsDefault"] == true {
        return Err(error(
            "InvalidParameterValue",
            &[(
                "message",
                &format!("cannot delete default network ACL {id}"),
            )],
        ));
    }
    if !array(&acl, "Associations").is_empty() {
        return Err(dependency(format!(
            "The network ACL '{id}' has dependencies and cannot be deleted."
        )));
    }
    let mut txn = Txn::new();
    txn.delete(ctx, "network-acl", id);
    txn.commit(ctx).await?;
    Ok(json!({}))
}

/// An entry as Create/ReplaceNetworkAclEntry describe it.
fn entry_from_input(input: &Value) -> Result<Value, AwsError> {
    let rule = opt_i64(input, "RuleNumber").ok_or_else(|| missing("RuleNumber"))?;
    if !(1..=32766).contains(&rule) {
        return Err(invalid_value(format!(
            "Value ({rule}) for parameter ruleNumber is invalid. The rule number must be between 1 and 32766."
        )));
    }
    let protocol = req_str(input, "Protocol")?;
    let protocol = match protocol.to_ascii_lowercase().as_str() {
        "all" | "-1" => "-1".to_string(),
        "tcp" => "6".to_string(),
        "udp" => "17".to_string(),
        "icmp" => "1".to_string(),
        n if n.parse::<u8>().is_ok() => n.to_string(),
        _ => {
            return Err(invalid_value(format!(
                "Value ({protocol}) for parameter protocol is invalid."
            )));
        }
    };
    let action = req_str(input, "RuleAction")?;
    if !["allow", "deny"].contains(&action) {
        return Err(invalid_value(format!(
            "Value ({action}) for parameter ruleAction is invalid."
        )));
    }
    let egress = opt_bool(input, "Egress").ok_or_else(|| missing("Egress"))?;
    let mut e =
        json!({"RuleNumber": rule, "Protocol": protocol, "RuleAction": action, "Egress": egress});
    match (opt_str(input, "CidrBlock"), opt_str(input, "Ipv6CidrBlock")) {
        (Some(c), None) => {
            let net: ipnet::Ipv4Net = c.parse().map_err(|_| {
                invalid_value(format!("Value ({c}) for parameter cidrBlock is invalid. This is not a valid CIDR block."))
            })?;
            e["CidrBlock"] = json!(net.trunc().to_string());
        }
        (None, Some(c)) => e["Ipv6CidrBlock"] = json!(c),
        _ => return Err(missing("CidrBlock")),
    }
    if ["6", "17"].contains(&protocol.as_str()) {
        let pr = input.get("PortRange").ok_or_else(|| missing("PortRange"))?;
        e["PortRange"] = json!({"From": opt_i64(pr, "From").unwrap_or(0), "To": opt_i64(pr, "To").unwrap_or(65535)});
    }
    if protocol == "1" {
        let it = input
            .get("IcmpTypeCode")
            .ok_or_else(|| missing("IcmpTypeCode"))?;
        e["IcmpTypeCode"] = json!({"Type": opt_i64(it, "Type").unwrap_or(-1), "Code": opt_i64(it, "Code").unwrap_or(-1)});
    }
    Ok(e)
}

fn position(acl: &Value, rule: &Value, egress: bool) -> Option<usize> {
    array(acl, "Entries")
        .iter()
        .position(|e| e["RuleNumber"] == *rule && e["Egress"] == egress)
}

/// Entries sorted by direction then rule number, as AWS lists them.
fn sort_entries(acl: &mut Value) {
    if let Some(list) = acl["Entries"].as_array_mut() {
        list.sort_by_key(|e| {
            (
                !e["Egress"].as_bool().unwrap_or(false),
                e["RuleNumber"].as_i64().unwrap_or(0),
            )
        });
    }
}

#[doc(alias = "CreateNetworkAclEntry")]
pub(crate) async fn create_network_acl_entry(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let id = req_str(&input, "NetworkAclId")?;
    let e = entry_from_input(&input)?;
    let _guard = common::write_lock(ctx).await;
    let (mut acl, rev) =
        common::load_or(ctx, "network-acl", id, "InvalidNetworkAclID.NotFound").await?;
    let egress = e["Egress"].as_bool().unwrap_or(false);
    if position(&acl, &e["RuleNumber"], egress).is_some() {
        return Err(error(
            "NetworkAclEntryAlreadyExists",
            &[("rule", &e["RuleNumber"].to_string())],
        ));
    }
    if let Some(list) = acl["Entries"].as_array_mut() {
        list.push(e);
    }
    sort_entries(&mut acl);
    let mut txn = Txn::new();
    txn.update(ctx, "network-acl", id, &acl, rev);
    txn.commit(ctx).await?;
    Ok(json!({}))
}

#[doc(alias = "ReplaceNetworkAclEntry")]
pub(crate) async fn replace_network_acl_entry(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let id = req_str(&input, "NetworkAclId")?;
    let e = entry_from_input(&input)?;
    let _guard = common::write_lock(ctx).await;
    let (mut acl, rev) =
        common::load_or(ctx, "network-acl", id, "InvalidNetworkAclID.NotFound").await?;
    let egress = e["Egress"].as_bool().unwrap_or(false);
    let idx = position(&acl, &e["RuleNumber"], egress)
        .ok_or_else(|| error("InvalidNetworkAclEntry.NotFound", &[]))?;
    acl["Entries"][idx] = e;
    let mut txn = Txn::new();
    txn.update(ctx, "network-acl", id, &acl, rev);
    txn.commit(ctx).await?;
    Ok(json!({}))
}

#[doc(alias = "DeleteNetworkAclEntry")]
pub(crate) async fn delete_network_acl_entry(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let id = req_str(&input, "NetworkAclId")?;
    let rule = json!(opt_i64(&input, "RuleNumber").ok_or_else(|| missing("RuleNumber"))?);
    let egress = opt_bool(&input, "Egress").ok_or_else(|| missing("Egress"))?;
    let _guard = common::write_lock(ctx).await;
    let (mut acl, rev) =
        common::load_or(ctx, "network-acl", id, "InvalidNetworkAclID.NotFound").await?;
    if rule == 32767 {
        return Err(invalid_value(
            "The rule number 32767 is reserved and cannot be deleted.",
        ));
    }
    let idx = position(&acl, &rule, egress)
        .ok_or_else(|| error("InvalidNetworkAclEntry.NotFound", &[]))?;
    if let Some(list) = acl["Entries"].as_array_mut() {
        list.remove(idx);
    }
    let mut txn = Txn::new();
    txn.update(ctx, "network-acl", id, &acl, rev);
    txn.commit(ctx).await?;
    Ok(json!({}))
}

#[doc(alias = "ReplaceNetworkAclAssociation")]
pub(crate) async fn replace_network_acl_association(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let assoc_id = req_str(&input, "AssociationId")?;
    let new_id_ = req_str(&input, "NetworkAclId")?;
    let _guard = common::write_lock(ctx).await;
    let old = common::load_all(ctx, "network-acl")
        .await?
        .into_iter()
        .find(|a| {
            array(a, "Associations")
                .iter()
                .any(|x| x["NetworkAclAssociationId"] == assoc_id)
        })
        .ok_or_else(|| error("InvalidAssociationID.NotFound", &[("id", assoc_id)]))?;
    let old_id = old["NetworkAclId"].as_str().unwrap_or_default().to_string();
    let (mut old, old_rev) =
        common::load_or(ctx, "network-acl", &old_id, "InvalidNetworkAclID.NotFound").await?;
    let subnet = array(&old, "Associations")
        .iter()
        .find(|x| x["NetworkAclAssociationId"] == assoc_id)
        .map(|x| x["SubnetId"].clone())
        .unwrap_or_default();
    let fresh = json!({"NetworkAclAssociationId": new_id("aclassoc"), "NetworkAclId": new_id_, "SubnetId": subnet});
    let mut txn = Txn::new();
    if old_id == new_id_ {
        if let Some(list) = old["Associations"].as_array_mut() {
            list.retain(|x| x["NetworkAclAssociationId"] != assoc_id);
            list.push(fresh.clone());
        }
        txn.update(ctx, "network-acl", &old_id, &old, old_rev);
    } else {
        let (mut new, new_rev) =
            common::load_or(ctx, "network-acl", new_id_, "InvalidNetworkAclID.NotFound").await?;
        if new["VpcId"] != old["VpcId"] {
            return Err(invalid_value(format!(
                "Network ACL {new_id_} and association {assoc_id} belong to different networks"
            )));
        }
        if let Some(list) = old["Associations"].as_array_mut() {
            list.retain(|x| x["NetworkAclAssociationId"] != assoc_id);
        }
        if let Some(list) = new["Associations"].as_array_mut() {
            list.push(fresh.clone());
        }
        txn.update(ctx, "network-acl", &old_id, &old, old_rev);
        txn.update(ctx, "network-acl", new_id_, &new, new_rev);
    }
    txn.commit(ctx).await?;
    Ok(json!({"NewAssociationId": fresh["NetworkAclAssociationId"]}))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{ctx, err, ok};
    use serde_json::json;

    #[tokio::test]
    async fn entries_and_association_replacement() {
        let c = ctx();
        let v = ok(&c, "CreateVpc", json!({"CidrBlock": "10.0.0.0/16"})).await;
        let vpc = v["Vpc"]["VpcId"].clone();
        let s = ok(
            &c,
            "CreateSubnet",
            json!({"VpcId": vpc, "CidrBlock": "10.0.0.0/24"}),
        )
        .await["Subnet"]["SubnetId"]
            .clone();
        let acl =
            ok(&c, "CreateNetworkAcl", json!({"VpcId": vpc})).await["NetworkAcl"]["NetworkAclId"]
                .clone();
        let entry = json!({"NetworkAclId": acl, "RuleNumber": 100, "Protocol": "tcp", "RuleAction": "allow",
                           "Egress": false, "CidrBlock": "0.0.0.0/0", "PortRange": {"From": 443, "To": 443}});
        ok(&c, "CreateNetworkAclEntry", entry.clone()).await;
        let e = err(&c, "CreateNetworkAclEntry", entry).await;
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            (
                "NetworkAclEntryAlreadyExists",
                "The network acl entry identified by 100 already exists."
            )
        );
        let d = ok(&c, "DescribeNetworkAcls", json!({"NetworkAclIds": [acl]})).await;
        let entries = d["NetworkAcls"][0]["Entries"].as_array().unwrap();
        assert!(
            entries
                .iter()
                .any(|e| e["Protocol"] == "6" && e["PortRange"]["From"] == 443)
        );
        let cur = ok(
            &c,
            "DescribeNetworkAcls",
            json!({"Filters": [{"Name": "association.subnet-id", "Values": [s]}]}),
        )
        .await;
        let assoc = cur["NetworkAcls"][0]["Associations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["SubnetId"] == s)
            .unwrap()["NetworkAclAssociationId"]
            .clone();
        ok(
            &c,
            "ReplaceNetworkAclAssociation",
            json!({"AssociationId": assoc, "NetworkAclId": acl}),
        )
        .await;
        assert_eq!(
            err(&c, "DeleteNetworkAcl", json!({"NetworkAclId": acl}))
                .await
                .code,
            "DependencyViolation"
        );
        ok(
            &c,
            "DeleteNetworkAclEntry",
            json!({"NetworkAclId": acl, "RuleNumber": 100, "Egress": false}),
        )
        .await;
        let e = err(
            &c,
            "DeleteNetworkAclEntry",
            json!({"NetworkAclId": acl, "RuleNumber": 100, "Egress": false}),
        )
        .await;
        assert_eq!(e.code, "InvalidNetworkAclEntry.NotFound");
        let default = cur["NetworkAcls"][0]["NetworkAclId"].clone();
        let e = err(&c, "DeleteNetworkAcl", json!({"NetworkAclId": default})).await;
        assert_eq!(e.code, "InvalidParameterValue");
    }
}
