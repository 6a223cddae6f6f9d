//! Security groups and their rules: Create/Delete/DescribeSecurityGroups, Authorize/Revoke
//! SecurityGroupIngress/Egress, DescribeSecurityGroupRules.
//!
//! Rules are kept as a flat list of `SecurityGroupRule`s (one peer each, with its `sgr-` id) in the
//! group's `_rules`; `IpPermissions` / `IpPermissionsEgress` are re-derived from it after every change,
//! grouped by protocol and port range as AWS groups them, so Describe and filters read one record.

use serde_json::{Map, Value, json};
use skiff_aws_model::AwsError;

use super::common::{self, Describe, Txn, array, opt_i64, opt_str, str_list};
use super::errors::{dependency, error, invalid_value, missing};
use super::{regions, tags};
use crate::context::RequestContext;
use crate::resources::new_id;

pub(crate) const DESCRIBE: Describe = Describe {
    kind: "security-group",
    id_field: "GroupId",
    ids_member: "GroupIds",
    id_prefix: "sg",
    not_found: "InvalidGroup.NotFound",
    malformed: "InvalidGroupId.Malformed",
    tags_field: "Tags",
    filters: &[
        ("description", "Description"),
        (
            "egress.ip-permission.cidr",
            "IpPermissionsEgress.IpRanges.CidrIp",
        ),
        (
            "egress.ip-permission.from-port",
            "IpPermissionsEgress.FromPort",
        ),
        (
            "egress.ip-permission.group-id",
            "IpPermissionsEgress.UserIdGroupPairs.GroupId",
        ),
        (
            "egress.ip-permission.ipv6-cidr",
            "IpPermissionsEgress.Ipv6Ranges.CidrIpv6",
        ),
        (
            "egress.ip-permission.prefix-list-id",
            "IpPermissionsEgress.PrefixListIds.PrefixListId",
        ),
        (
            "egress.ip-permission.protocol",
            "IpPermissionsEgress.IpProtocol",
        ),
        ("egress.ip-permission.to-port", "IpPermissionsEgress.ToPort"),
        ("group-id", "GroupId"),
        ("group-name", "GroupName"),
        ("ip-permission.cidr", "IpPermissions.IpRanges.CidrIp"),
        ("ip-permission.from-port", "IpPermissions.FromPort"),
        (
            "ip-permission.group-id",
            "IpPermissions.UserIdGroupPairs.GroupId",
        ),
        (
            "ip-permission.ipv6-cidr",
            "IpPermissions.Ipv6Ranges.CidrIpv6",
        ),
        (
            "ip-permission.prefix-list-id",
            "IpPermissions.PrefixListIds.PrefixListId",
        ),
        ("ip-permission.protocol", "IpPermissions.IpProtocol"),
        ("ip-permission.to-port", "IpPermissions.ToPort"),
        ("owner-id", "OwnerId"),
        ("vpc-id", "VpcId"),
    ],
    max_results: (5, 1000),
};

const RULE_FILTERS: &[(&str, &str)] = &[
    ("group-id", "GroupId"),
    ("security-group-rule-id", "SecurityGroupRuleId"),
];

/// Group names are unique per VPC. This index (`<vpc-id>/<name>` → group id) makes the check on
/// create one read instead of decoding every group of the region; it is written in the same
/// transaction as the group. Default groups are not indexed: the name `default` is reserved anyway.
const NAME_INDEX: &str = "security-group-name";
/// Marks that the index covers every group (stores written before the index existed are indexed once).
const NAME_INDEX_BUILT: (&str, &str) = ("security-group-name-index", "v1");

fn name_index_id(vpc_id: &str, name: &str) -> String {
    format!("{vpc_id}/{name}")
}

/// Index the groups of a store written before the name index existed. Callers hold the write lock.
async fn ensure_name_index(ctx: &RequestContext) -> Result<(), AwsError> {
    let (kind, id) = NAME_INDEX_BUILT;
    if common::load(ctx, kind, id).await?.is_some() {
        return Ok(());
    }
    let mut txn = Txn::new();
    for g in common::load_all(ctx, "security-group").await? {
        let (Some(vpc), Some(name)) = (g["VpcId"].as_str(), g["GroupName"].as_str()) else {
            continue;
        };
        if name != "default" {
            txn.put(
                ctx,
                NAME_INDEX,
                &name_index_id(vpc, name),
                &json!({"GroupId": g["GroupId"]}),
            );
        }
    }
    txn.put(ctx, kind, id, &json!({}));
    txn.commit(ctx).await
}

fn new_group(
    ctx: &RequestContext,
    vpc_id: &str,
    name: &str,
    description: &str,
    tags: Vec<Value>,
) -> Value {
    let id = new_id("sg");
    let mut sg = json!({
        "GroupId": id,
        "GroupName": name,
        "Description": description,
        "VpcId": vpc_id,
        "OwnerId": ctx.account_id,
        "SecurityGroupArn": common::arn(ctx, &format!("security-group/{id}")),
        "Tags": tags,
        "_rules": [],
    });
    let egress = rule(
        ctx,
        &sg,
        true,
        "-1",
        None,
        None,
        ("CidrIpv4", json!("0.0.0.0/0")),
        None,
    );
    sg["_rules"] = json!([egress]);
    render(&mut sg);
    sg
}

/// The `default` group of a new VPC: all traffic from members of itself, all traffic out.
pub(crate) fn build_default(ctx: &RequestContext, vpc_id: &str) -> Value {
    let mut sg = new_group(
        ctx,
        vpc_id,
        "default",
        "default VPC security group",
        Vec::new(),
    );
    let own = json!({"GroupId": sg["GroupId"], "UserId": ctx.account_id});
    let ingress = rule(
        ctx,
        &sg,
        false,
        "-1",
        None,
        None,
        ("ReferencedGroupInfo", own),
        None,
    );
    if let Some(rules) = sg["_rules"].as_array_mut() {
        rules.insert(0, ingress);
    }
    render(&mut sg);
    sg
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call site per rule source; a struct adds nothing"
)]
fn rule(
    ctx: &RequestContext,
    sg: &Value,
    egress: bool,
    proto: &str,
    from: Option<i64>,
    to: Option<i64>,
    (peer_member, peer): (&str, Value),
    description: Option<&str>,
) -> Value {
    let id = new_id("sgr");
    let mut r = json!({
        "SecurityGroupRuleId": id,
        "GroupId": sg["GroupId"],
        "GroupOwnerId": ctx.account_id,
        "IsEgress": egress,
        "IpProtocol": proto,
        "FromPort": from.unwrap_or(-1),
        "ToPort": to.unwrap_or(-1),
        "SecurityGroupRuleArn": common::arn(ctx, &format!("security-group-rule/{id}")),
        "Tags": [],
    });
    r[peer_member] = peer;
    if let Some(d) = description {
        r["Description"] = json!(d);
    }
    r
}

/// Protocol as AWS stores it: names for tcp/udp/icmp/icmpv6, `-1` for all, else the number.
fn normalize_protocol(p: &str) -> Result<String, AwsError> {
    let lower = p.to_ascii_lowercase();
    Ok(match lower.as_str() {
        "tcp" | "6" => "tcp".into(),
        "udp" | "17" => "udp".into(),
        "icmp" | "1" => "icmp".into(),
        "icmpv6" | "58" => "icmpv6".into(),
        "-1" | "all" => "-1".into(),
        n if n.parse::<u8>().is_ok() => n.into(),
        _ => {
            return Err(invalid_value(format!(
                "Invalid value '{p}' for IP protocol. Unknown protocol."
            )));
        }
    })
}

/// Identity of a rule for duplicate and revoke matching (description excluded, as on AWS).
fn identity(r: &Value) -> String {
    let peer = peer_text(r);
    format!(
        "{}|{}|{}|{}|{}",
        r["IsEgress"], r["IpProtocol"], r["FromPort"], r["ToPort"], peer
    )
}

fn peer_text(r: &Value) -> String {
    r["CidrIpv4"]
        .as_str()
        .or(r["CidrIpv6"].as_str())
        .or(r["PrefixListId"].as_str())
        .or(r["ReferencedGroupInfo"]["GroupId"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// AWS's wording of a rule in `InvalidPermission.Duplicate`.
fn describe_rule(r: &Value) -> String {
    let peer = peer_text(r);
    let proto = r["IpProtocol"].as_str().unwrap_or_default();
    if proto == "-1" {
        format!("peer: {peer}, ALL, ALLOW")
    } else {
        format!(
            "peer: {peer}, {}, from port: {}, to port: {}, ALLOW",
            proto.to_ascii_uppercase(),
            r["FromPort"],
            r["ToPort"]
        )
    }
}

/// Turn the input's `IpPermissions` (or the legacy top-level members) into rules, one per peer.
async fn rules_from_input(
    ctx: &RequestContext,
    sg: &Value,
    input: &Value,
    egress: bool,
) -> Result<Vec<Value>, AwsError> {
    let mut perms: Vec<Value> = array(input, "IpPermissions").to_vec();
    if perms.is_empty()
        && (opt_str(input, "IpProtocol").is_some() || opt_str(input, "CidrIp").is_some())
    {
        let mut p = json!({"IpProtocol": opt_str(input, "IpProtocol").unwrap_or("-1")});
        for m in ["FromPort", "ToPort"] {
            if let Some(v) = opt_i64(input, m) {
                p[m] = json!(v);
            }
        }
        if let Some(c) = opt_str(input, "CidrIp") {
            p["IpRanges"] = json!([{"CidrIp": c}]);
        }
        perms.push(p);
    }
    if perms.is_empty() {
        return Err(missing("IpPermissions"));
    }
    let mut out = Vec::new();
    for p in &perms {
        let proto =
            normalize_protocol(opt_str(p, "IpProtocol").ok_or_else(|| missing("IpProtocol"))?)?;
        let (from, to) = match proto.as_str() {
            "-1" => (None, None),
            "tcp" | "udp" => {
                let (Some(f), Some(t)) = (opt_i64(p, "FromPort"), opt_i64(p, "ToPort")) else {
                    return Err(invalid_value(
                        "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange",
                    ));
                };
                if !(0..=65535).contains(&f) || !(0..=65535).contains(&t) || f > t {
                    return Err(invalid_value(format!(
                        "Invalid value '{f}-{t}' for portRange. Must be between 0 and 65535 and from must not exceed to."
                    )));
                }
                (Some(f), Some(t))
            }
            _ => (opt_i64(p, "FromPort"), opt_i64(p, "ToPort")),
        };
        let mut peers: Vec<((&str, Value), Option<String>)> = Vec::new();
        for r in array(p, "IpRanges") {
            let c = opt_str(r, "CidrIp").ok_or_else(|| missing("CidrIp"))?;
            let net: ipnet::Ipv4Net = c.parse().map_err(|_| {
                error(
                    "InvalidPermission.Malformed",
                    &[("message", &format!("Invalid IPv4 CIDR '{c}'"))],
                )
            })?;
            peers.push((
                ("CidrIpv4", json!(net.to_string())),
                opt_str(r, "Description").map(str::to_string),
            ));
        }
        for r in array(p, "Ipv6Ranges") {
            let c = opt_str(r, "CidrIpv6").ok_or_else(|| missing("CidrIpv6"))?;
            let net: ipnet::Ipv6Net = c.parse().map_err(|_| {
                error(
                    "InvalidPermission.Malformed",
                    &[("message", &format!("Invalid IPv6 CIDR '{c}'"))],
                )
            })?;
            peers.push((
                ("CidrIpv6", json!(net.to_string())),
                opt_str(r, "Description").map(str::to_string),
            ));
        }
        for r in array(p, "PrefixListIds") {
            let id = opt_str(r, "PrefixListId").ok_or_else(|| missing("PrefixListId"))?;
            peers.push((
                ("PrefixListId", json!(id)),
                opt_str(r, "Description").map(str::to_string),
            ));
        }
        for r in array(p, "UserIdGroupPairs") {
            let gid = match (opt_str(r, "GroupId"), opt_str(r, "GroupName")) {
                (Some(g), _) => g.to_string(),
                (None, Some(name)) => by_name(ctx, name, sg["VpcId"].as_str()).await?["GroupId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                _ => return Err(missing("GroupId")),
            };
            if gid != sg["GroupId"] {
                common::load_or(ctx, "security-group", &gid, "InvalidGroup.NotFound").await?;
            }
            let info =
                json!({"GroupId": gid, "UserId": opt_str(r, "UserId").unwrap_or(&ctx.account_id)});
            peers.push((
                ("ReferencedGroupInfo", info),
                opt_str(r, "Description").map(str::to_string),
            ));
        }
        if peers.is_empty() {
            return Err(invalid_value(
                "The request must contain at least one of IpRanges, Ipv6Ranges, PrefixListIds or UserIdGroupPairs",
            ));
        }
        for (peer, desc) in peers {
            out.push(rule(
                ctx,
                sg,
                egress,
                &proto,
                from,
                to,
                peer,
                desc.as_deref(),
            ));
        }
    }
    Ok(out)
}

/// Re-derive `IpPermissions` and `IpPermissionsEgress` from `_rules`.
fn render(sg: &mut Value) {
    let rules = array(sg, "_rules").to_vec();
    for (egress, member) in [(false, "IpPermissions"), (true, "IpPermissionsEgress")] {
        let mut perms: Vec<Value> = Vec::new();
        for r in rules.iter().filter(|r| r["IsEgress"] == egress) {
            let idx = perms.iter().position(|p| {
                p["IpProtocol"] == r["IpProtocol"]
                    && p.get("FromPort").unwrap_or(&json!(-1)) == &r["FromPort"]
                    && p.get("ToPort").unwrap_or(&json!(-1)) == &r["ToPort"]
            });
            let idx = idx.unwrap_or_else(|| {
                let mut p = json!({"IpProtocol": r["IpProtocol"], "IpRanges": [], "Ipv6Ranges": [],
                                   "PrefixListIds": [], "UserIdGroupPairs": []});
                if r["IpProtocol"] != "-1" {
                    p["FromPort"] = r["FromPort"].clone();
                    p["ToPort"] = r["ToPort"].clone();
                }
                perms.push(p);
                perms.len() - 1
            });
            let (list, mut entry) = if let Some(c) = r["CidrIpv4"].as_str() {
                ("IpRanges", json!({"CidrIp": c}))
            } else if let Some(c) = r["CidrIpv6"].as_str() {
                ("Ipv6Ranges", json!({"CidrIpv6": c}))
            } else if let Some(c) = r["PrefixListId"].as_str() {
                ("PrefixListIds", json!({"PrefixListId": c}))
            } else {
                ("UserIdGroupPairs", r["ReferencedGroupInfo"].clone())
            };
            if let Some(d) = r.get("Description") {
                entry["Description"] = d.clone();
            }
            if let Some(l) = perms[idx][list].as_array_mut() {
                l.push(entry);
            }
        }
        sg[member] = Value::Array(perms);
    }
}

/// Find a group by name (in `vpc_id`, or the default VPC when none is given, as EC2-Classic names did).
async fn by_name(
    ctx: &RequestContext,
    name: &str,
    vpc_id: Option<&str>,
) -> Result<Value, AwsError> {
    let vpc = match vpc_id {
        Some(v) => Some(v.to_string()),
        None => regions::default_vpc_id(ctx).await?,
    };
    common::load_all(ctx, "security-group")
        .await?
        .into_iter()
        .find(|g| g["GroupName"] == name && vpc.as_deref().is_none_or(|v| g["VpcId"] == v))
        .ok_or_else(|| error("InvalidGroup.NotFound", &[("id", name)]))
}

/// The group an operation names by `GroupId` or `GroupName`.
async fn target_group(ctx: &RequestContext, input: &Value) -> Result<(Value, i64), AwsError> {
    let id = match (opt_str(input, "GroupId"), opt_str(input, "GroupName")) {
        (Some(id), _) => {
            if !common::well_formed(id, "sg") {
                return Err(error("InvalidGroupId.Malformed", &[("id", id)]));
            }
            id.to_string()
        }
        (None, Some(name)) => by_name(ctx, name, None).await?["GroupId"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        _ => return Err(missing("GroupId")),
    };
    common::load_or(ctx, "security-group", &id, "InvalidGroup.NotFound").await
}

#[doc(alias = "CreateSecurityGroup")]
pub(crate) async fn create_security_group(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let name = opt_str(&input, "GroupName")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("GroupName"))?;
    let description = opt_str(&input, "Description")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("GroupDescription"))?;
    if name == "default" {
        return Err(invalid_value(
            "Cannot use reserved security group name: default",
        ));
    }
    if name.starts_with("sg-") {
        return Err(invalid_value("Group names may not be in the format sg-*"));
    }
    if name.len() > 255 || description.len() > 255 {
        return Err(invalid_value(
            "Group name and description may be at most 255 characters",
        ));
    }
    let tags = tags::for_create(&input, "security-group")?;
    let _guard = common::write_lock(ctx).await;
    let vpc_id = match opt_str(&input, "VpcId") {
        Some(v) => {
            common::load_or(ctx, "vpc", v, "InvalidVpcID.NotFound").await?;
            v.to_string()
        }
        None => regions::default_vpc_id(ctx)
            .await?
            .ok_or_else(|| error("VPCIdNotSpecified", &[]))?,
    };
    ensure_name_index(ctx).await?;
    if common::load(ctx, NAME_INDEX, &name_index_id(&vpc_id, name))
        .await?
        .is_some()
    {
        return Err(error(
            "InvalidGroup.Duplicate",
            &[("name", name), ("vpc", &vpc_id)],
        ));
    }
    let sg = new_group(ctx, &vpc_id, name, description, tags);
    let mut txn = Txn::new();
    txn.create(
        ctx,
        "security-group",
        sg["GroupId"].as_str().unwrap_or_default(),
        &sg,
    );
    txn.create(
        ctx,
        NAME_INDEX,
        &name_index_id(&vpc_id, name),
        &json!({"GroupId": sg["GroupId"]}),
    );
    txn.commit(ctx).await?;
    Ok(
        json!({"GroupId": sg["GroupId"], "Tags": sg["Tags"], "SecurityGroupArn": sg["SecurityGroupArn"]}),
    )
}

#[doc(alias = "DescribeSecurityGroups")]
pub(crate) async fn describe_security_groups(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let names = str_list(&input, "GroupNames");
    let (mut items, next) = common::describe(ctx, &input, &DESCRIBE).await?;
    if !names.is_empty() {
        if let Some(missing) = names
            .iter()
            .find(|n| !items.iter().any(|g| g["GroupName"] == n.as_str()))
        {
            return Err(error("InvalidGroup.NotFound", &[("id", missing)]));
        }
        items.retain(|g| names.iter().any(|n| g["GroupName"] == n.as_str()));
    }
    Ok(common::listing("SecurityGroups", items, next))
}

#[doc(alias = "DeleteSecurityGroup")]
pub(crate) async fn delete_security_group(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let _guard = common::write_lock(ctx).await;
    let (sg, _) = target_group(ctx, &input).await?;
    let id = sg["GroupId"].as_str().unwrap_or_default().to_string();
    if sg["GroupName"] == "default" {
        return Err(error("CannotDelete", &[("id", &id)]));
    }
    let dependent = || dependency(format!("resource {id} has a dependent object"));
    for other in common::load_all(ctx, "security-group").await? {
        if other["GroupId"] != id.as_str()
            && array(&other, "_rules")
                .iter()
                .any(|r| r["ReferencedGroupInfo"]["GroupId"] == id.as_str())
        {
            return Err(dependent());
        }
    }
    for eni in common::load_all(ctx, "network-interface").await? {
        if array(&eni, "Groups")
            .iter()
            .any(|g| g["GroupId"] == id.as_str())
        {
            return Err(dependent());
        }
    }
    ensure_name_index(ctx).await?;
    let mut txn = Txn::new();
    txn.delete(ctx, "security-group", &id);
    txn.remove(
        ctx,
        NAME_INDEX,
        &name_index_id(
            sg["VpcId"].as_str().unwrap_or_default(),
            sg["GroupName"].as_str().unwrap_or_default(),
        ),
    );
    txn.commit(ctx).await?;
    Ok(json!({"Return": true, "GroupId": id}))
}

async fn authorize(ctx: &RequestContext, input: Value, egress: bool) -> Result<Value, AwsError> {
    let _guard = common::write_lock(ctx).await;
    let (mut sg, rev) = target_group(ctx, &input).await?;
    let new = rules_from_input(ctx, &sg, &input, egress).await?;
    let tags = tags::for_create(&input, "security-group-rule")?;
    let existing: Vec<String> = array(&sg, "_rules").iter().map(identity).collect();
    let mut seen = Vec::new();
    let mut added = Vec::new();
    for mut r in new {
        let id = identity(&r);
        if existing.contains(&id) || seen.contains(&id) {
            return Err(error(
                "InvalidPermission.Duplicate",
                &[("rule", &describe_rule(&r))],
            ));
        }
        seen.push(id);
        r["Tags"] = json!(tags);
        added.push(r);
    }
    if let Some(rules) = sg["_rules"].as_array_mut() {
        rules.extend(added.iter().cloned());
    }
    render(&mut sg);
    let group_id = sg["GroupId"].as_str().unwrap_or_default().to_string();
    let mut txn = Txn::new();
    txn.update(ctx, "security-group", &group_id, &sg, rev);
    txn.commit(ctx).await?;
    Ok(json!({"Return": true, "SecurityGroupRules": added}))
}

async fn revoke(ctx: &RequestContext, input: Value, egress: bool) -> Result<Value, AwsError> {
    let _guard = common::write_lock(ctx).await;
    let (mut sg, rev) = target_group(ctx, &input).await?;
    let rules = array(&sg, "_rules").to_vec();
    let ids = str_list(&input, "SecurityGroupRuleIds");
    let mut revoked: Vec<Value> = Vec::new();
    if !ids.is_empty() {
        for id in &ids {
            let r = rules
                .iter()
                .find(|r| r["SecurityGroupRuleId"] == id.as_str() && r["IsEgress"] == egress)
                .ok_or_else(|| error("InvalidSecurityGroupRuleId.NotFound", &[("id", id)]))?;
            revoked.push(r.clone());
        }
    } else {
        for wanted in rules_from_input(ctx, &sg, &input, egress).await? {
            let r = rules
                .iter()
                .find(|r| identity(r) == identity(&wanted))
                .ok_or_else(|| error("InvalidPermission.NotFound", &[]))?;
            revoked.push(r.clone());
        }
    }
    let gone: Vec<&Value> = revoked.iter().map(|r| &r["SecurityGroupRuleId"]).collect();
    if let Some(list) = sg["_rules"].as_array_mut() {
        list.retain(|r| !gone.contains(&&r["SecurityGroupRuleId"]));
    }
    render(&mut sg);
    let group_id = sg["GroupId"].as_str().unwrap_or_default().to_string();
    let mut txn = Txn::new();
    txn.update(ctx, "security-group", &group_id, &sg, rev);
    txn.commit(ctx).await?;
    let shown: Vec<Value> = revoked
        .iter()
        .map(|r| {
            let mut m: Map<String, Value> = Map::new();
            for k in [
                "SecurityGroupRuleId",
                "GroupId",
                "IsEgress",
                "IpProtocol",
                "FromPort",
                "ToPort",
                "CidrIpv4",
                "CidrIpv6",
                "PrefixListId",
                "Description",
            ] {
                if let Some(v) = r.get(k) {
                    m.insert(k.into(), v.clone());
                }
            }
            if let Some(g) = r["ReferencedGroupInfo"]["GroupId"].as_str() {
                m.insert("ReferencedSecurityGroupId".into(), json!(g));
            }
            Value::Object(m)
        })
        .collect();
    Ok(json!({"Return": true, "RevokedSecurityGroupRules": shown}))
}

#[doc(alias = "AuthorizeSecurityGroupIngress")]
pub(crate) async fn authorize_security_group_ingress(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    authorize(ctx, input, false).await
}

#[doc(alias = "AuthorizeSecurityGroupEgress")]
pub(crate) async fn authorize_security_group_egress(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    authorize(ctx, input, true).await
}

#[doc(alias = "RevokeSecurityGroupIngress")]
pub(crate) async fn revoke_security_group_ingress(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    revoke(ctx, input, false).await
}

#[doc(alias = "RevokeSecurityGroupEgress")]
pub(crate) async fn revoke_security_group_egress(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    revoke(ctx, input, true).await
}

#[doc(alias = "ModifySecurityGroupRules")]
pub(crate) async fn modify_security_group_rules(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let _guard = common::write_lock(ctx).await;
    let (mut sg, rev) = target_group(ctx, &input).await?;
    let updates = array(&input, "SecurityGroupRules").to_vec();
    if updates.is_empty() {
        return Err(missing("SecurityGroupRules"));
    }
    let mut rules = array(&sg, "_rules").to_vec();
    for u in &updates {
        let id = opt_str(u, "SecurityGroupRuleId").ok_or_else(|| missing("SecurityGroupRuleId"))?;
        let idx = rules
            .iter()
            .position(|r| r["SecurityGroupRuleId"] == id)
            .ok_or_else(|| error("InvalidSecurityGroupRuleId.NotFound", &[("id", id)]))?;
        let req = &u["SecurityGroupRule"];
        // Re-validate through the IpPermissions path so a modified rule obeys the same checks.
        let mut perm = json!({"IpProtocol": opt_str(req, "IpProtocol").unwrap_or("-1")});
        for m in ["FromPort", "ToPort"] {
            if let Some(v) = opt_i64(req, m) {
                perm[m] = json!(v);
            }
        }
        let desc = opt_str(req, "Description");
        let with_desc = |mut v: Value| {
            if let Some(d) = desc {
                v["Description"] = json!(d);
            }
            v
        };
        if let Some(c) = opt_str(req, "CidrIpv4") {
            perm["IpRanges"] = json!([with_desc(json!({"CidrIp": c}))]);
        } else if let Some(c) = opt_str(req, "CidrIpv6") {
            perm["Ipv6Ranges"] = json!([with_desc(json!({"CidrIpv6": c}))]);
        } else if let Some(p) = opt_str(req, "PrefixListId") {
            perm["PrefixListIds"] = json!([with_desc(json!({"PrefixListId": p}))]);
        } else if let Some(g) = opt_str(req, "ReferencedGroupId") {
            perm["UserIdGroupPairs"] = json!([with_desc(json!({"GroupId": g}))]);
        }
        let egress = rules[idx]["IsEgress"].as_bool().unwrap_or(false);
        let mut fresh =
            rules_from_input(ctx, &sg, &json!({"IpPermissions": [perm]}), egress).await?;
        let mut r = fresh.remove(0);
        r["SecurityGroupRuleId"] = rules[idx]["SecurityGroupRuleId"].clone();
        r["SecurityGroupRuleArn"] = rules[idx]["SecurityGroupRuleArn"].clone();
        r["Tags"] = rules[idx]["Tags"].clone();
        let clash = rules
            .iter()
            .enumerate()
            .any(|(i, other)| i != idx && identity(other) == identity(&r));
        if clash {
            return Err(error(
                "InvalidPermission.Duplicate",
                &[("rule", &describe_rule(&r))],
            ));
        }
        rules[idx] = r;
    }
    sg["_rules"] = Value::Array(rules);
    render(&mut sg);
    let group_id = sg["GroupId"].as_str().unwrap_or_default().to_string();
    let mut txn = Txn::new();
    txn.update(ctx, "security-group", &group_id, &sg, rev);
    txn.commit(ctx).await?;
    Ok(json!({"Return": true}))
}

#[doc(alias = "DescribeSecurityGroupRules")]
pub(crate) async fn describe_security_group_rules(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let filters = super::filters::parse(&input, RULE_FILTERS)?;
    let ids = str_list(&input, "SecurityGroupRuleIds");
    let mut rules: Vec<Value> = common::load_all(ctx, "security-group")
        .await?
        .iter()
        .flat_map(|g| array(g, "_rules").to_vec())
        .collect();
    for id in &ids {
        if !common::well_formed(id, "sgr") {
            return Err(error("InvalidSecurityGroupRuleId.Malformed", &[("id", id)]));
        }
        if !rules
            .iter()
            .any(|r| r["SecurityGroupRuleId"] == id.as_str())
        {
            return Err(error("InvalidSecurityGroupRuleId.NotFound", &[("id", id)]));
        }
    }
    rules.retain(|r| {
        (ids.is_empty() || ids.iter().any(|i| r["SecurityGroupRuleId"] == i.as_str()))
            && super::filters::matches(r, &filters, RULE_FILTERS, "Tags")
    });
    rules.sort_by(|a, b| {
        a["SecurityGroupRuleId"]
            .as_str()
            .cmp(&b["SecurityGroupRuleId"].as_str())
    });
    let (page, next) = super::pagination::page(rules, "SecurityGroupRuleId", &input, (5, 1000))?;
    Ok(common::listing("SecurityGroupRules", page, next))
}

/// `{GroupId, GroupName}` pairs for the given ids, as instances and interfaces list their groups.
/// Every group must be in `vpc_id`, as AWS requires of an interface's groups.
pub(crate) async fn group_refs(
    ctx: &RequestContext,
    ids: &[String],
    vpc_id: &str,
) -> Result<Vec<Value>, AwsError> {
    let mut out = Vec::new();
    for id in ids {
        let (sg, _) = common::load_or(ctx, "security-group", id, "InvalidGroup.NotFound").await?;
        if sg["VpcId"] != vpc_id {
            return Err(error(
                "InvalidParameter",
                &[(
                    "message",
                    &format!("Security group {id} and subnet belong to different networks."),
                )],
            ));
        }
        out.push(json!({"GroupId": id, "GroupName": sg["GroupName"]}));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_normalize_like_aws() {
        assert_eq!(normalize_protocol("TCP").unwrap(), "tcp");
        assert_eq!(normalize_protocol("6").unwrap(), "tcp");
        assert_eq!(normalize_protocol("all").unwrap(), "-1");
        assert_eq!(normalize_protocol("47").unwrap(), "47");
        assert_eq!(
            normalize_protocol("bogus").unwrap_err().code,
            "InvalidParameterValue"
        );
    }

    #[test]
    fn duplicate_wording() {
        let r = json!({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIpv4": "0.0.0.0/0"});
        assert_eq!(
            describe_rule(&r),
            "peer: 0.0.0.0/0, TCP, from port: 22, to port: 22, ALLOW"
        );
        let r = json!({"IpProtocol": "-1", "FromPort": -1, "ToPort": -1, "CidrIpv4": "10.0.0.0/8"});
        assert_eq!(describe_rule(&r), "peer: 10.0.0.0/8, ALL, ALLOW");
    }
}

#[cfg(test)]
mod dispatch_tests {
    use super::super::testing::{ctx, err, ok};
    use super::{NAME_INDEX, NAME_INDEX_BUILT, Txn, name_index_id};
    use serde_json::{Value, json};

    async fn vpc(c: &crate::context::RequestContext) -> String {
        let v = ok(c, "CreateVpc", json!({"CidrBlock": "10.0.0.0/16"})).await;
        v["Vpc"]["VpcId"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn rules_lifecycle_with_group_references() {
        let c = ctx();
        let vpc_id = vpc(&c).await;
        let web = ok(
            &c,
            "CreateSecurityGroup",
            json!({"GroupName": "web", "Description": "web", "VpcId": vpc_id}),
        )
        .await;
        let db = ok(
            &c,
            "CreateSecurityGroup",
            json!({"GroupName": "db", "Description": "db", "VpcId": vpc_id}),
        )
        .await;
        let (web, db) = (
            web["GroupId"].as_str().unwrap().to_string(),
            db["GroupId"].as_str().unwrap().to_string(),
        );
        let e = err(
            &c,
            "CreateSecurityGroup",
            json!({"GroupName": "web", "Description": "again", "VpcId": vpc_id}),
        )
        .await;
        assert_eq!(
            e.message,
            format!("The security group 'web' already exists for VPC '{vpc_id}'")
        );

        let ssh = json!({"GroupId": web, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
            "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "ssh"}]}]});
        let out = ok(&c, "AuthorizeSecurityGroupIngress", ssh.clone()).await;
        let rule_id = out["SecurityGroupRules"][0]["SecurityGroupRuleId"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(rule_id.starts_with("sgr-"));
        let e = err(&c, "AuthorizeSecurityGroupIngress", ssh.clone()).await;
        assert_eq!(e.code, "InvalidPermission.Duplicate");
        assert_eq!(
            e.message,
            "the specified rule \"peer: 0.0.0.0/0, TCP, from port: 22, to port: 22, ALLOW\" already exists"
        );
        ok(
            &c,
            "AuthorizeSecurityGroupIngress",
            json!({"GroupId": db, "IpPermissions": [{"IpProtocol": "tcp",
            "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": web}]}]}),
        )
        .await;

        let d = ok(
            &c,
            "DescribeSecurityGroups",
            json!({"Filters": [{"Name": "ip-permission.group-id", "Values": [web]}]}),
        )
        .await;
        assert_eq!(d["SecurityGroups"][0]["GroupId"], db.as_str());
        let perm = &d["SecurityGroups"][0]["IpPermissions"][0];
        assert_eq!(
            (
                perm["FromPort"].clone(),
                perm["UserIdGroupPairs"][0]["GroupId"].clone()
            ),
            (json!(5432), json!(web))
        );
        let rules = ok(
            &c,
            "DescribeSecurityGroupRules",
            json!({"Filters": [{"Name": "group-id", "Values": [web]}]}),
        )
        .await;
        let rules = rules["SecurityGroupRules"].as_array().unwrap();
        assert_eq!(rules.len(), 2, "ssh ingress and default egress");
        assert!(rules.iter().any(|r| r["IsEgress"] == true
            && r["IpProtocol"] == "-1"
            && r["CidrIpv4"] == "0.0.0.0/0"));

        let e = err(&c, "DeleteSecurityGroup", json!({"GroupId": web})).await;
        assert_eq!(
            (e.code.as_str(), e.message.clone()),
            (
                "DependencyViolation",
                format!("resource {web} has a dependent object")
            )
        );
        let revoked = ok(
            &c,
            "RevokeSecurityGroupIngress",
            json!({"GroupId": db, "IpPermissions": [{"IpProtocol": "tcp",
            "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": web}]}]}),
        )
        .await;
        assert_eq!(
            revoked["RevokedSecurityGroupRules"][0]["ReferencedSecurityGroupId"],
            web.as_str()
        );
        ok(
            &c,
            "RevokeSecurityGroupIngress",
            json!({"GroupId": web, "SecurityGroupRuleIds": [rule_id]}),
        )
        .await;
        let e = err(&c, "RevokeSecurityGroupIngress", ssh.clone()).await;
        assert_eq!(e.code, "InvalidPermission.NotFound");
        ok(&c, "DeleteSecurityGroup", json!({"GroupId": web})).await;

        let default = ok(&c, "DescribeSecurityGroups", json!({"Filters": [{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]})).await;
        let default_id = default["SecurityGroups"][0]["GroupId"]
            .as_str()
            .unwrap()
            .to_string();
        let e = err(&c, "DeleteSecurityGroup", json!({"GroupId": default_id})).await;
        assert_eq!(e.code, "CannotDelete");
        let self_ref: &Value =
            &default["SecurityGroups"][0]["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"];
        assert_eq!(self_ref, &json!(default_id));
    }

    #[tokio::test]
    async fn names_are_unique_per_vpc_and_free_again_after_delete() {
        let c = ctx();
        let a = vpc(&c).await;
        let create = |vpc: &str| json!({"GroupName": "web", "Description": "d", "VpcId": vpc});
        let g = ok(&c, "CreateSecurityGroup", create(&a)).await;
        let e = err(&c, "CreateSecurityGroup", create(&a)).await;
        assert_eq!(e.code, "InvalidGroup.Duplicate");
        let other = ok(&c, "CreateVpc", json!({"CidrBlock": "10.1.0.0/16"})).await;
        ok(
            &c,
            "CreateSecurityGroup",
            create(other["Vpc"]["VpcId"].as_str().unwrap()),
        )
        .await;
        ok(&c, "DeleteSecurityGroup", json!({"GroupId": g["GroupId"]})).await;
        ok(&c, "CreateSecurityGroup", create(&a)).await;
    }

    #[tokio::test]
    async fn groups_written_before_the_name_index_are_still_unique() {
        let c = ctx();
        let a = vpc(&c).await;
        ok(
            &c,
            "CreateSecurityGroup",
            json!({"GroupName": "old", "Description": "d", "VpcId": a}),
        )
        .await;
        // Forget the index, as a store from before it existed.
        let mut txn = Txn::new();
        txn.remove(&c, NAME_INDEX, &name_index_id(&a, "old"));
        txn.remove(&c, NAME_INDEX_BUILT.0, NAME_INDEX_BUILT.1);
        txn.commit(&c).await.unwrap();
        let e = err(
            &c,
            "CreateSecurityGroup",
            json!({"GroupName": "old", "Description": "d", "VpcId": a}),
        )
        .await;
        assert_eq!(e.code, "InvalidGroup.Duplicate");
    }

    #[tokio::test]
    async fn bad_ports_and_protocols_change_nothing() {
        let c = ctx();
        let vpc_id = vpc(&c).await;
        let g = ok(
            &c,
            "CreateSecurityGroup",
            json!({"GroupName": "g", "Description": "g", "VpcId": vpc_id}),
        )
        .await;
        let id = g["GroupId"].clone();
        let e = err(&c, "AuthorizeSecurityGroupIngress", json!({"GroupId": id, "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
            {"IpProtocol": "tcp", "FromPort": 90, "ToPort": 70, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]})).await;
        assert_eq!(e.code, "InvalidParameterValue");
        let d = ok(&c, "DescribeSecurityGroups", json!({"GroupIds": [id]})).await;
        assert!(
            d["SecurityGroups"][0]["IpPermissions"]
                .as_array()
                .unwrap()
                .is_empty(),
            "the valid half was not applied"
        );
        let e = err(
            &c,
            "CreateSecurityGroup",
            json!({"GroupName": "default", "Description": "x", "VpcId": vpc_id}),
        )
        .await;
        assert_eq!(e.code, "InvalidParameterValue");
        let e = err(
            &c,
            "DescribeSecurityGroups",
            json!({"GroupIds": ["sg-0123456789abcdef0"]}),
        )
        .await;
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            (
                "InvalidGroup.NotFound",
                "The security group 'sg-0123456789abcdef0' does not exist"
            )
        );
    }
}
