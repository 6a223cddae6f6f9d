//! Internet gateways (Create/Delete/Describe, Attach/Detach) and egress-only internet gateways
//! (Create/Delete/Describe; created attached to one VPC, as AWS does).

use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::common::{self, Describe, Txn, req_str};
use super::errors::{dependency, error};
use super::tags;
use crate::context::RequestContext;
use crate::resources::new_id;

pub(crate) const DESCRIBE: Describe = Describe {
    kind: "internet-gateway",
    id_field: "InternetGatewayId",
    ids_member: "InternetGatewayIds",
    id_prefix: "igw",
    not_found: "InvalidInternetGatewayID.NotFound",
    malformed: "InvalidInternetGatewayID.Malformed",
    tags_field: "Tags",
    filters: &[
        ("attachment.state", "Attachments.State"),
        ("attachment.vpc-id", "Attachments.VpcId"),
        ("internet-gateway-id", "InternetGatewayId"),
        ("owner-id", "OwnerId"),
    ],
    max_results: (5, 1000),
};

pub(crate) const DESCRIBE_EGRESS_ONLY: Describe = Describe {
    kind: "egress-only-internet-gateway",
    id_field: "EgressOnlyInternetGatewayId",
    ids_member: "EgressOnlyInternetGatewayIds",
    id_prefix: "eigw",
    not_found: "InvalidEgressOnlyInternetGatewayId.NotFound",
    malformed: "InvalidEgressOnlyInternetGatewayId.Malformed",
    tags_field: "Tags",
    filters: &[],
    max_results: (5, 255),
};

fn build(ctx: &RequestContext, tags: Vec<Value>) -> Value {
    json!({"InternetGatewayId": new_id("igw"), "OwnerId": ctx.account_id, "Attachments": [], "Tags": tags})
}

/// An internet gateway already attached to `vpc_id` (the default VPC's).
pub(crate) fn build_attached(ctx: &RequestContext, vpc_id: &str) -> Value {
    let mut igw = build(ctx, Vec::new());
    igw["Attachments"] = json!([{"State": "available", "VpcId": vpc_id}]);
    igw
}

#[doc(alias = "CreateInternetGateway")]
pub(crate) async fn create_internet_gateway(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let igw = build(ctx, tags::for_create(&input, "internet-gateway")?);
    let mut txn = Txn::new();
    txn.create(
        ctx,
        "internet-gateway",
        igw["InternetGatewayId"].as_str().unwrap_or_default(),
        &igw,
    );
    txn.commit(ctx).await?;
    Ok(json!({ "InternetGateway": common::public(&igw) }))
}

#[doc(alias = "DescribeInternetGateways")]
pub(crate) async fn describe_internet_gateways(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let (items, next) = common::describe(ctx, &input, &DESCRIBE).await?;
    Ok(common::listing("InternetGateways", items, next))
}

#[doc(alias = "DeleteInternetGateway")]
pub(crate) async fn delete_internet_gateway(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let id = req_str(&input, "InternetGatewayId")?;
    let _guard = common::write_lock(ctx).await;
    let (igw, _) = common::load_or(
        ctx,
        "internet-gateway",
        id,
        "InvalidInternetGatewayID.NotFound",
    )
    .await?;
    if !common::array(&igw, "Attachments").is_empty() {
        return Err(dependency(format!(
            "The internetGateway '{id}' has dependencies and cannot be deleted."
        )));
    }
    let mut txn = Txn::new();
    txn.delete(ctx, "internet-gateway", id);
    txn.commit(ctx).await?;
    Ok(json!({}))
}

#[doc(alias = "AttachInternetGateway")]
pub(crate) async fn attach_internet_gateway(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let id = req_str(&input, "InternetGatewayId")?;
    let vpc_id = req_str(&input, "VpcId")?;
    let _guard = common::write_lock(ctx).await;
    let (mut igw, rev) = common::load_or(
        ctx,
        "internet-gateway",
        id,
        "InvalidInternetGatewayID.NotFound",
    )
    .await?;
    common::load_or(ctx, "vpc", vpc_id, "InvalidVpcID.NotFound").await?;
    if let Some(a) = common::array(&igw, "Attachments").first() {
        return Err(error(
            "Resource.AlreadyAssociated",
            &[(
                "message",
                &format!(
                    "resource {id} is already attached to network {}",
                    a["VpcId"].as_str().unwrap_or_default()
                ),
            )],
        ));
    }
    // A VPC takes one internet gateway.
    for other in common::load_all(ctx, "internet-gateway").await? {
        if common::array(&other, "Attachments")
            .iter()
            .any(|a| a["VpcId"] == vpc_id)
        {
            return Err(error(
                "Resource.AlreadyAssociated",
                &[(
                    "message",
                    &format!("Network {vpc_id} already has an internet gateway attached"),
                )],
            ));
        }
    }
    igw["Attachments"] = json!([{"State": "available", "VpcId": vpc_id}]);
    let mut txn = Txn::new();
    txn.update(ctx, "internet-gateway", id, &igw, rev);
    txn.commit(ctx).await?;
    Ok(json!({}))
}

#[doc(alias = "DetachInternetGateway")]
pub(crate) async fn detach_internet_gateway(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let id = req_str(&input, "InternetGatewayId")?;
    let vpc_id = req_str(&input, "VpcId")?;
    let _guard = common::write_lock(ctx).await;
    let (mut igw, rev) = common::load_or(
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
        return Err(error("Gateway.NotAttached", &[("id", id), ("vpc", vpc_id)]));
    }
    // AWS refuses while public addresses in the VPC still depend on the gateway.
    for eip in common::load_all(ctx, "elastic-ip").await? {
        if let Some(eni) = eip["NetworkInterfaceId"].as_str()
            && let Some((eni, _)) = common::load(ctx, "network-interface", eni).await?
            && eni["VpcId"] == vpc_id
        {
            return Err(dependency(format!(
                "Network {vpc_id} has some mapped public address(es). Please unmap those public address(es) before detaching the gateway."
            )));
        }
    }
    igw["Attachments"] = json!([]);
    let mut txn = Txn::new();
    txn.update(ctx, "internet-gateway", id, &igw, rev);
    txn.commit(ctx).await?;
    Ok(json!({}))
}

#[doc(alias = "CreateEgressOnlyInternetGateway")]
pub(crate) async fn create_egress_only_internet_gateway(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let vpc_id = req_str(&input, "VpcId")?;
    let tags = tags::for_create(&input, "egress-only-internet-gateway")?;
    let _guard = common::write_lock(ctx).await;
    common::load_or(ctx, "vpc", vpc_id, "InvalidVpcID.NotFound").await?;
    let eigw = json!({"EgressOnlyInternetGatewayId": new_id("eigw"),
                      "Attachments": [{"State": "attached", "VpcId": vpc_id}], "Tags": tags});
    let mut txn = Txn::new();
    txn.create(
        ctx,
        "egress-only-internet-gateway",
        eigw["EgressOnlyInternetGatewayId"]
            .as_str()
            .unwrap_or_default(),
        &eigw,
    );
    txn.commit(ctx).await?;
    Ok(json!({ "EgressOnlyInternetGateway": common::public(&eigw) }))
}

#[doc(alias = "DescribeEgressOnlyInternetGateways")]
pub(crate) async fn describe_egress_only_internet_gateways(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let (items, next) = common::describe(ctx, &input, &DESCRIBE_EGRESS_ONLY).await?;
    Ok(common::listing("EgressOnlyInternetGateways", items, next))
}

#[doc(alias = "DeleteEgressOnlyInternetGateway")]
pub(crate) async fn delete_egress_only_internet_gateway(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let id = req_str(&input, "EgressOnlyInternetGatewayId")?;
    let _guard = common::write_lock(ctx).await;
    common::load_or(
        ctx,
        "egress-only-internet-gateway",
        id,
        "InvalidEgressOnlyInternetGatewayId.NotFound",
    )
    .await?;
    let mut txn = Txn::new();
    txn.delete(ctx, "egress-only-internet-gateway", id);
    txn.commit(ctx).await?;
    Ok(json!({ "ReturnCode": true }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{ctx, err, ok};
    use serde_json::json;

    #[tokio::test]
    async fn attach_detach_and_egress_only() {
        let c = ctx();
        let v = ok(&c, "CreateVpc", json!({"CidrBlock": "10.0.0.0/16"})).await;
        let vpc = v["Vpc"]["VpcId"].clone();
        let igw = ok(&c, "CreateInternetGateway", json!({})).await["InternetGateway"]["InternetGatewayId"].clone();
        let e = err(
            &c,
            "DetachInternetGateway",
            json!({"InternetGatewayId": igw, "VpcId": vpc}),
        )
        .await;
        assert_eq!(e.code, "Gateway.NotAttached");
        ok(
            &c,
            "AttachInternetGateway",
            json!({"InternetGatewayId": igw, "VpcId": vpc}),
        )
        .await;
        let d = ok(&c, "DescribeInternetGateways", json!({"Filters": [{"Name": "attachment.state", "Values": ["available"]}, {"Name": "attachment.vpc-id", "Values": [vpc]}]})).await;
        assert_eq!(d["InternetGateways"][0]["InternetGatewayId"], igw);
        let e = err(
            &c,
            "DeleteInternetGateway",
            json!({"InternetGatewayId": igw}),
        )
        .await;
        assert_eq!(
            e.message,
            format!(
                "The internetGateway '{}' has dependencies and cannot be deleted.",
                igw.as_str().unwrap()
            )
        );
        ok(
            &c,
            "DetachInternetGateway",
            json!({"InternetGatewayId": igw, "VpcId": vpc}),
        )
        .await;
        ok(
            &c,
            "DeleteInternetGateway",
            json!({"InternetGatewayId": igw}),
        )
        .await;
        let e = err(
            &c,
            "DescribeInternetGateways",
            json!({"InternetGatewayIds": [igw]}),
        )
        .await;
        assert_eq!(e.code, "InvalidInternetGatewayID.NotFound");

        let eigw = ok(&c, "CreateEgressOnlyInternetGateway", json!({"VpcId": vpc})).await;
        let id = eigw["EgressOnlyInternetGateway"]["EgressOnlyInternetGatewayId"].clone();
        assert_eq!(
            eigw["EgressOnlyInternetGateway"]["Attachments"][0]["State"],
            "attached"
        );
        assert_eq!(
            err(&c, "DeleteVpc", json!({"VpcId": vpc})).await.code,
            "DependencyViolation"
        );
        ok(
            &c,
            "DeleteEgressOnlyInternetGateway",
            json!({"EgressOnlyInternetGatewayId": id}),
        )
        .await;
        ok(&c, "DeleteVpc", json!({"VpcId": vpc})).await;
    }
}
