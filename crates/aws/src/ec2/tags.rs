//! Tags: `TagSpecifications` on every create, and CreateTags / DeleteTags / DescribeTags across
//! resource types. Tags live inside each resource's record (`Tags`, or `TagSet` for network
//! interfaces, as the output shapes name them), so a Describe and its tag filters read one record.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::common::{self, Txn, array, opt_str, str_list};
use super::errors::{error, invalid_value, missing};
use super::filters;
use crate::context::RequestContext;

/// A taggable resource type: id prefix, store kind (= EC2 `ResourceType`), not-found code, tag member.
pub(crate) struct Taggable {
    pub prefix: &'static str,
    pub kind: &'static str,
    pub not_found: &'static str,
    pub tags_field: &'static str,
}

pub(crate) const TAGGABLE: &[Taggable] = &[
    t("vpc", "vpc", "InvalidVpcID.NotFound"),
    t("subnet", "subnet", "InvalidSubnetID.NotFound"),
    t("rtb", "route-table", "InvalidRouteTableID.NotFound"),
    t(
        "igw",
        "internet-gateway",
        "InvalidInternetGatewayID.NotFound",
    ),
    t(
        "eigw",
        "egress-only-internet-gateway",
        "InvalidEgressOnlyInternetGatewayId.NotFound",
    ),
    t("nat", "natgateway", "NatGatewayNotFound"),
    t("eipalloc", "elastic-ip", "InvalidAllocationID.NotFound"),
    t("sg", "security-group", "InvalidGroup.NotFound"),
    t("acl", "network-acl", "InvalidNetworkAclID.NotFound"),
    Taggable {
        prefix: "eni",
        kind: "network-interface",
        not_found: "InvalidNetworkInterfaceID.NotFound",
        tags_field: "TagSet",
    },
    t("key", "key-pair", "InvalidKeyPair.NotFound"),
    t("lt", "launch-template", "InvalidLaunchTemplateId.NotFound"),
    t("i", "instance", "InvalidInstanceID.NotFound"),
    t("vol", "volume", "InvalidVolume.NotFound"),
    t("snap", "snapshot", "InvalidSnapshot.NotFound"),
    t("vpce", "vpc-endpoint", "InvalidVpcEndpointId.NotFound"),
];

const fn t(prefix: &'static str, kind: &'static str, not_found: &'static str) -> Taggable {
    Taggable {
        prefix,
        kind,
        not_found,
        tags_field: "Tags",
    }
}

fn taggable_of(id: &str) -> Option<&'static Taggable> {
    let (prefix, _) = id.rsplit_once('-')?;
    TAGGABLE
        .iter()
        .find(|t| t.prefix == prefix && common::well_formed(id, t.prefix))
}

/// Validate one `Tag` list the way EC2 does (reserved `aws:` prefix, lengths).
fn check_tags(tags: &[Value]) -> Result<Vec<Value>, AwsError> {
    let mut out = Vec::new();
    for t in tags {
        let key = t.get("Key").and_then(Value::as_str).unwrap_or_default();
        let value = t.get("Value").and_then(Value::as_str).unwrap_or_default();
        if key.is_empty() {
            return Err(missing("Tag.Key"));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid_value(
                "Tag keys starting with 'aws:' are reserved for internal use",
            ));
        }
        if key.chars().count() > 128 {
            return Err(invalid_value(format!(
                "Tag key exceeds the maximum length of 128 characters: {key}"
            )));
        }
        if value.chars().count() > 256 {
            return Err(invalid_value(format!(
                "Tag value exceeds the maximum length of 256 characters: {value}"
            )));
        }
        out.push(json!({"Key": key, "Value": value}));
    }
    Ok(out)
}

/// Merge tags into a list, replacing values of existing keys (CreateTags semantics).
fn merge(existing: &mut Vec<Value>, new: Vec<Value>) -> Result<(), AwsError> {
    for t in new {
        match existing.iter_mut().find(|e| e["Key"] == t["Key"]) {
            Some(e) => *e = t,
            None => existing.push(t),
        }
    }
    if existing.len() > 50 {
        return Err(error("TagLimitExceeded", &[]));
    }
    Ok(())
}

/// The tags a create operation's `TagSpecifications` give a resource of `resource_type`. A
/// specification for a type the operation does not create is refused, as EC2 does.
pub(crate) fn from_specs(
    input: &Value,
    resource_type: &str,
    allowed: &[&str],
) -> Result<Vec<Value>, AwsError> {
    let mut out = Vec::new();
    for spec in array(input, "TagSpecifications") {
        let rt = opt_str(spec, "ResourceType").unwrap_or(resource_type);
        if !allowed.contains(&rt) && rt != resource_type {
            return Err(invalid_value(format!(
                "'{rt}' is not a valid taggable resource type for this operation."
            )));
        }
        if rt == resource_type {
            merge(&mut out, check_tags(array(spec, "Tags"))?)?;
        }
    }
    Ok(out)
}

/// [`from_specs`] for an operation that creates only `resource_type`.
pub(crate) fn for_create(input: &Value, resource_type: &str) -> Result<Vec<Value>, AwsError> {
    from_specs(input, resource_type, &[])
}

async fn load_tagged(
    ctx: &RequestContext,
    ids: &[String],
) -> Result<Vec<(&'static Taggable, String, Value, i64)>, AwsError> {
    let mut out = Vec::new();
    for id in ids {
        let t = taggable_of(id).ok_or_else(|| error("InvalidID", &[("id", id)]))?;
        let (rec, rev) = common::load_or(ctx, t.kind, id, t.not_found).await?;
        out.push((t, id.clone(), rec, rev));
    }
    Ok(out)
}

#[doc(alias = "CreateTags")]
pub(crate) async fn create_tags(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let ids = str_list(&input, "Resources");
    if ids.is_empty() {
        return Err(missing("ResourceId"));
    }
    let new = check_tags(array(&input, "Tags"))?;
    let _guard = common::write_lock(ctx).await;
    let mut txn = Txn::new();
    for (t, id, mut rec, rev) in load_tagged(ctx, &ids).await? {
        let mut tags = array(&rec, t.tags_field).to_vec();
        merge(&mut tags, new.clone())?;
        rec[t.tags_field] = Value::Array(tags);
        txn.update(ctx, t.kind, &id, &rec, rev);
    }
    txn.commit(ctx).await?;
    Ok(json!({}))
}

#[doc(alias = "DeleteTags")]
pub(crate) async fn delete_tags(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let ids = str_list(&input, "Resources");
    if ids.is_empty() {
        return Err(missing("ResourceId"));
    }
    // A tag without Value deletes the key whatever its value; with Value, only on a match.
    let wanted: Vec<(String, Option<String>)> = array(&input, "Tags")
        .iter()
        .map(|t| {
            (
                t["Key"].as_str().unwrap_or_default().to_string(),
                t.get("Value").and_then(Value::as_str).map(str::to_string),
            )
        })
        .collect();
    let _guard = common::write_lock(ctx).await;
    let mut txn = Txn::new();
    for (t, id, mut rec, rev) in load_tagged(ctx, &ids).await? {
        let mut tags = array(&rec, t.tags_field).to_vec();
        tags.retain(|tag| {
            let delete = wanted.is_empty()
                || wanted.iter().any(|(k, v)| {
                    tag["Key"] == *k.as_str()
                        && v.as_ref().is_none_or(|v| tag["Value"] == *v.as_str())
                });
            !delete
        });
        rec[t.tags_field] = Value::Array(tags);
        txn.update(ctx, t.kind, &id, &rec, rev);
    }
    txn.commit(ctx).await?;
    Ok(json!({}))
}

const DESCRIBE_TAGS_FILTERS: &[(&str, &str)] = &[
    ("key", "Key"),
    ("value", "Value"),
    ("resource-id", "ResourceId"),
    ("resource-type", "ResourceType"),
];

#[doc(alias = "DescribeTags")]
pub(crate) async fn describe_tags(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let filters = filters::parse(&input, DESCRIBE_TAGS_FILTERS)?;
    let mut rows = Vec::new();
    for t in TAGGABLE {
        for rec in common::load_all(ctx, t.kind).await? {
            let id_field = id_field_of(t.kind);
            let id = rec[id_field].as_str().unwrap_or_default().to_string();
            for tag in array(&rec, t.tags_field) {
                let row = json!({
                    "Key": tag["Key"], "Value": tag["Value"],
                    "ResourceId": id, "ResourceType": t.kind,
                    // Paging key: resource then tag key, unique per row.
                    "_page": format!("{id}\u{1}{}", tag["Key"].as_str().unwrap_or_default()),
                });
                if filters::matches(&row, &filters, DESCRIBE_TAGS_FILTERS, "_none") {
                    rows.push(row);
                }
            }
        }
    }
    rows.sort_by(|a, b| a["_page"].as_str().cmp(&b["_page"].as_str()));
    let (page, next) = super::pagination::page(rows, "_page", &input, (5, 1000))?;
    Ok(common::listing("Tags", page, next))
}

/// The record member holding the id, per kind.
pub(crate) fn id_field_of(kind: &str) -> &'static str {
    match kind {
        "vpc" => "VpcId",
        "subnet" => "SubnetId",
        "route-table" => "RouteTableId",
        "internet-gateway" => "InternetGatewayId",
        "egress-only-internet-gateway" => "EgressOnlyInternetGatewayId",
        "natgateway" => "NatGatewayId",
        "elastic-ip" => "AllocationId",
        "security-group" => "GroupId",
        "network-acl" => "NetworkAclId",
        "network-interface" => "NetworkInterfaceId",
        "key-pair" => "KeyPairId",
        "launch-template" => "LaunchTemplateId",
        "instance" => "InstanceId",
        "volume" => "VolumeId",
        "snapshot" => "SnapshotId",
        "vpc-endpoint" => "VpcEndpointId",
        _ => "Id",
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{ctx, err, ok};
    use serde_json::json;

    #[tokio::test]
    async fn create_delete_describe_across_types() {
        let c = ctx();
        let v = ok(&c, "CreateVpc", json!({"CidrBlock": "10.0.0.0/16"})).await;
        let vpc = v["Vpc"]["VpcId"].clone();
        let s = ok(
            &c,
            "CreateSubnet",
            json!({"VpcId": vpc, "CidrBlock": "10.0.0.0/24"}),
        )
        .await;
        let subnet = s["Subnet"]["SubnetId"].clone();
        ok(&c, "CreateTags", json!({"Resources": [vpc, subnet], "Tags": [{"Key": "env", "Value": "dev"}, {"Key": "Name", "Value": "x"}]})).await;
        ok(
            &c,
            "CreateTags",
            json!({"Resources": [vpc], "Tags": [{"Key": "env", "Value": "prod"}]}),
        )
        .await;
        let d = ok(
            &c,
            "DescribeTags",
            json!({"Filters": [{"Name": "key", "Values": ["env"]}]}),
        )
        .await;
        let tags = d["Tags"].as_array().unwrap();
        assert_eq!(tags.len(), 2);
        assert!(
            tags.iter().any(|t| t["ResourceId"] == vpc
                && t["Value"] == "prod"
                && t["ResourceType"] == "vpc")
        );
        let d = ok(
            &c,
            "DescribeSubnets",
            json!({"Filters": [{"Name": "tag:env", "Values": ["dev"]}]}),
        )
        .await;
        assert_eq!(d["Subnets"][0]["SubnetId"], subnet);
        ok(
            &c,
            "DeleteTags",
            json!({"Resources": [subnet], "Tags": [{"Key": "env", "Value": "other"}]}),
        )
        .await;
        ok(
            &c,
            "DeleteTags",
            json!({"Resources": [vpc], "Tags": [{"Key": "env"}]}),
        )
        .await;
        let d = ok(
            &c,
            "DescribeTags",
            json!({"Filters": [{"Name": "key", "Values": ["env"]}]}),
        )
        .await;
        assert_eq!(
            d["Tags"].as_array().unwrap().len(),
            1,
            "value mismatch keeps the subnet's tag"
        );
        let e = err(
            &c,
            "CreateTags",
            json!({"Resources": ["vpc-0123456789abcdef0"], "Tags": [{"Key": "a", "Value": "b"}]}),
        )
        .await;
        assert_eq!(e.code, "InvalidVpcID.NotFound");
        let e = err(
            &c,
            "CreateTags",
            json!({"Resources": ["nonsense"], "Tags": [{"Key": "a", "Value": "b"}]}),
        )
        .await;
        assert_eq!(e.code, "InvalidID");
        let e = err(
            &c,
            "CreateTags",
            json!({"Resources": [vpc], "Tags": [{"Key": "aws:x", "Value": "b"}]}),
        )
        .await;
        assert_eq!(e.code, "InvalidParameterValue");
        let e = err(&c, "CreateVpc", json!({"CidrBlock": "10.1.0.0/16", "TagSpecifications": [{"ResourceType": "subnet", "Tags": []}]})).await;
        assert_eq!(
            e.message,
            "'subnet' is not a valid taggable resource type for this operation."
        );
    }
}
