//! route53: the operation table. One file per operation group; each arm names the handler.
//!
//! Global: records live under `/aws/<account>/global/route53/…`. Handlers return
//! [`common::R53Error`]; this table is the one place it becomes the wire error. In-process callers
//! (ExternalDNS) use [`record_sets::upsert_records`] / [`record_sets::delete_records`].

pub mod changes;
pub mod common;
pub mod hosted_zones;
pub mod record_sets;
pub mod tags;
pub mod vpc_associations;

pub use record_sets::{delete_records, upsert_records};

use serde_json::Value;
use skiff_aws_model::AwsError;

use crate::context::RequestContext;

/// Route one route53 operation to its handler.
pub async fn dispatch(
    ctx: &RequestContext,
    operation: &str,
    input: Value,
) -> Result<Value, AwsError> {
    use hosted_zones as hz;
    use record_sets as rs;
    use vpc_associations as va;
    let result = match operation {
        // hosted_zones.rs
        "CreateHostedZone" => hz::create_hosted_zone(ctx, input).await,
        "GetHostedZone" => hz::get_hosted_zone(ctx, input).await,
        "ListHostedZones" => hz::list_hosted_zones(ctx, input).await,
        "ListHostedZonesByName" => hz::list_hosted_zones_by_name(ctx, input).await,
        "GetHostedZoneCount" => hz::get_hosted_zone_count(ctx, input).await,
        "DeleteHostedZone" => hz::delete_hosted_zone(ctx, input).await,
        // vpc_associations.rs
        "AssociateVPCWithHostedZone" => va::associate_vpc_with_hosted_zone(ctx, input).await,
        "DisassociateVPCFromHostedZone" => va::disassociate_vpc_from_hosted_zone(ctx, input).await,
        // record_sets.rs
        "ChangeResourceRecordSets" => rs::change_resource_record_sets(ctx, input).await,
        "ListResourceRecordSets" => rs::list_resource_record_sets(ctx, input).await,
        // changes.rs
        "GetChange" => changes::get_change(ctx, input).await,
        // tags.rs
        "ChangeTagsForResource" => tags::change_tags_for_resource(ctx, input).await,
        "ListTagsForResource" => tags::list_tags_for_resource(ctx, input).await,
        _ => return Err(crate::not_implemented("route53", operation)),
    };
    result.map_err(AwsError::from)
}

#[cfg(test)]
mod tests;
