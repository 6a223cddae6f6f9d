//! Private zones' VPCs: AssociateVPCWithHostedZone, DisassociateVPCFromHostedZone.
//!
//! The VPC must exist; that is asked of EC2 through its public operation table (DescribeVpcs in the
//! VPC's region), never by reading EC2's records.

use serde_json::{Value, json};

use super::common::{R53Error, R53Result, commit, load, new_change, opt_str, req_str, save_op};
use crate::context::RequestContext;

/// `(VPCRegion, VPCId)` of an existing VPC; `VPCRegion` defaults to the caller's region.
pub async fn check_vpc(ctx: &RequestContext, vpc: &Value) -> R53Result<(String, String)> {
    let id = req_str(vpc, "VPCId")?.to_string();
    let region = opt_str(vpc, "VPCRegion").unwrap_or(&ctx.region).to_string();
    let mut in_region = ctx.clone();
    in_region.region = region.clone();
    match crate::ec2::dispatch(&in_region, "DescribeVpcs", json!({"VpcIds": [id]})).await {
        Ok(out) if out["Vpcs"].as_array().is_some_and(|v| !v.is_empty()) => Ok((region, id)),
        Ok(_) => Err(R53Error::InvalidVpcId(format!(
            "The VPC ID '{id}' is invalid."
        ))),
        Err(e) if e.code.starts_with("InvalidVpcID") => Err(R53Error::InvalidVpcId(format!(
            "The VPC ID '{id}' is invalid."
        ))),
        Err(e) => Err(R53Error::Internal(e)),
    }
}

#[doc(alias = "AssociateVPCWithHostedZone")]
pub async fn associate_vpc_with_hosted_zone(
    ctx: &RequestContext,
    input: Value,
) -> R53Result<Value> {
    let (mut zone, rev) = load(ctx, req_str(&input, "HostedZoneId")?).await?;
    if !zone.private {
        return Err(R53Error::PublicZoneVpcAssociation(
            "Public hosted zones can't be associated with VPCs".into(),
        ));
    }
    let vpc = check_vpc(ctx, &input["VPC"]).await?;
    if zone.vpcs.contains(&vpc) {
        return Err(R53Error::ConflictingDomainExists(format!(
            "The VPC {} is already associated with the hosted zone {}.",
            vpc.1, zone.id
        )));
    }
    zone.vpcs.push(vpc);
    let (change, change_op) = new_change(ctx, opt_str(&input, "Comment"));
    commit(ctx, vec![save_op(ctx, &zone, rev), change_op]).await?;
    Ok(json!({ "ChangeInfo": change }))
}

#[doc(alias = "DisassociateVPCFromHostedZone")]
pub async fn disassociate_vpc_from_hosted_zone(
    ctx: &RequestContext,
    input: Value,
) -> R53Result<Value> {
    let (mut zone, rev) = load(ctx, req_str(&input, "HostedZoneId")?).await?;
    let id = req_str(&input["VPC"], "VPCId")?;
    let region = opt_str(&input["VPC"], "VPCRegion").unwrap_or(&ctx.region);
    let Some(pos) = zone.vpcs.iter().position(|(r, v)| r == region && v == id) else {
        return Err(R53Error::VpcAssociationNotFound(
            "The specified VPC and hosted zone are not currently associated.".into(),
        ));
    };
    if zone.vpcs.len() == 1 {
        return Err(R53Error::LastVpcAssociation(
            "The VPC that you're trying to disassociate from the private hosted zone is the last VPC that is associated with the hosted zone. Amazon Route 53 doesn't support disassociating the last VPC from a hosted zone.".into(),
        ));
    }
    zone.vpcs.remove(pos);
    let (change, change_op) = new_change(ctx, opt_str(&input, "Comment"));
    commit(ctx, vec![save_op(ctx, &zone, rev), change_op]).await?;
    Ok(json!({ "ChangeInfo": change }))
}
