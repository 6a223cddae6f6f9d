//! Load balancer capacity reservations: DescribeCapacityReservation, ModifyCapacityReservation.
//!
//! A load balancer starts with no reservation (no `MinimumLoadBalancerCapacity`, no zonal states);
//! a reservation is recorded on the load balancer (`_capacity`) and reported `provisioned` in each
//! of its zones, since Skiff has no capacity to wait for. AWS allows a limited number of decreases
//! per day: `DecreaseRequestsRemaining` counts them down from 3.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::common::{key, load_lb, now, put, validation};
use crate::context::RequestContext;

/// Decreases AWS allows per day.
const DAILY_DECREASES: i64 = 3;

fn reservation(lb: &Value) -> Value {
    let cap = &lb["_capacity"];
    let mut out = json!({
        "DecreaseRequestsRemaining": cap["DecreaseRequestsRemaining"].as_i64().unwrap_or(DAILY_DECREASES),
        "CapacityReservationState": [],
    });
    if let Some(units) = cap["CapacityUnits"].as_i64() {
        out["MinimumLoadBalancerCapacity"] = json!({ "CapacityUnits": units });
        out["LastModifiedTime"] = cap["LastModifiedTime"].clone();
        out["CapacityReservationState"] = json!(
            lb["AvailabilityZones"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|z| json!({
                    "AvailabilityZone": z["ZoneName"],
                    "EffectiveCapacityUnits": units as f64 / lb["AvailabilityZones"].as_array().map_or(1, Vec::len).max(1) as f64,
                    "State": {"Code": "provisioned"},
                }))
                .collect::<Vec<_>>()
        );
    }
    out
}

#[doc(alias = "DescribeCapacityReservation")]
pub async fn describe_capacity_reservation(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let (lb, _) = load_lb(ctx, input["LoadBalancerArn"].as_str().unwrap_or_default()).await?;
    Ok(reservation(&lb))
}

#[doc(alias = "ModifyCapacityReservation")]
pub async fn modify_capacity_reservation(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let (mut lb, rev) = load_lb(ctx, input["LoadBalancerArn"].as_str().unwrap_or_default()).await?;
    let reset = input["ResetCapacityReservation"].as_bool() == Some(true);
    let units = input["MinimumLoadBalancerCapacity"]["CapacityUnits"].as_i64();
    let old_units = lb["_capacity"]["CapacityUnits"].as_i64();
    let mut remaining = lb["_capacity"]["DecreaseRequestsRemaining"]
        .as_i64()
        .unwrap_or(DAILY_DECREASES);
    let new_units = match (reset, units) {
        (true, None) => None,
        (false, Some(u)) if u > 0 => Some(u),
        (false, Some(_)) => return Err(validation("CapacityUnits must be greater than 0")),
        _ => {
            return Err(validation(
                "Exactly one of MinimumLoadBalancerCapacity and ResetCapacityReservation must be specified",
            ));
        }
    };
    if old_units.is_some_and(|o| new_units.is_none_or(|n| n < o)) {
        if remaining == 0 {
            return Err(AwsError::new(
                "CapacityDecreaseRequestsLimitExceededException",
                "You have reached the limit on the number of capacity decrease requests for this load balancer",
            ));
        }
        remaining -= 1;
    }
    lb["_capacity"] = json!({
        "CapacityUnits": new_units,
        "DecreaseRequestsRemaining": remaining,
        "LastModifiedTime": now(),
    });
    let name = lb["LoadBalancerName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    put(ctx, &key(ctx, "lb", &name), &lb, Some(rev)).await?;
    Ok(reservation(&lb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_reservation_reports_no_capacity_and_no_zones() {
        let lb = json!({"AvailabilityZones": [{"ZoneName": "us-east-1a"}]});
        let r = reservation(&lb);
        assert!(r.get("MinimumLoadBalancerCapacity").is_none());
        assert_eq!(r["CapacityReservationState"], json!([]));
        assert_eq!(r["DecreaseRequestsRemaining"], DAILY_DECREASES);
    }

    #[test]
    fn a_reservation_is_provisioned_in_every_zone() {
        let lb = json!({
            "AvailabilityZones": [{"ZoneName": "us-east-1a"}, {"ZoneName": "us-east-1b"}],
            "_capacity": {"CapacityUnits": 200, "DecreaseRequestsRemaining": 2, "LastModifiedTime": "t"},
        });
        let r = reservation(&lb);
        assert_eq!(r["MinimumLoadBalancerCapacity"]["CapacityUnits"], 200);
        assert_eq!(
            r["CapacityReservationState"][1]["State"]["Code"],
            "provisioned"
        );
        assert_eq!(
            r["CapacityReservationState"][0]["EffectiveCapacityUnits"],
            100.0
        );
        assert_eq!(r["DecreaseRequestsRemaining"], 2);
    }
}
