//! Hosted zones: CreateHostedZone, GetHostedZone, ListHostedZones, ListHostedZonesByName,
//! DeleteHostedZone, GetHostedZoneCount.
//!
//! Like Route 53, a zone is born with its apex NS record (the delegation set's four name servers) and
//! SOA record; they are the "required" record sets DeleteHostedZone ignores.

use serde_json::{Value, json};
use skiff_store::Precondition;

use super::common::{
    R53Error, R53Result, Zone, bare_zone_id, caller_ref_key, commit, load, max_items, new_change,
    new_id, normalize_name, opt_str, req_str, reversed_labels, valid_domain, zone_key,
};
use super::vpc_associations::check_vpc;
use crate::context::RequestContext;
use crate::resources;

/// Four name servers in the four awsdns top-level domains, as a delegation set has.
fn name_servers() -> Vec<String> {
    use rand::Rng;
    let mut rng = rand::rng();
    ["com", "net", "org", "co.uk"]
        .iter()
        .map(|tld| {
            format!(
                "ns-{}.awsdns-{:02}.{tld}",
                rng.random_range(0..2048),
                rng.random_range(0..64)
            )
        })
        .collect()
}

fn required_records(zone_name: &str, servers: &[String]) -> Vec<Value> {
    let ns = json!({
        "Name": zone_name, "Type": "NS", "TTL": 172800,
        "ResourceRecords": servers.iter().map(|s| json!({"Value": format!("{s}.")})).collect::<Vec<_>>(),
    });
    let soa = json!({
        "Name": zone_name, "Type": "SOA", "TTL": 900,
        "ResourceRecords": [{"Value": format!("{}. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400", servers[0])}],
    });
    vec![ns, soa]
}

#[doc(alias = "CreateHostedZone")]
pub async fn create_hosted_zone(ctx: &RequestContext, input: Value) -> R53Result<Value> {
    let raw_name = req_str(&input, "Name")?;
    let caller_reference = req_str(&input, "CallerReference")?;
    let name = normalize_name(raw_name);
    if !valid_domain(&name) {
        return Err(R53Error::InvalidDomainName(format!(
            "{raw_name} is not a valid domain name."
        )));
    }
    let config = input.get("HostedZoneConfig").cloned().unwrap_or(json!({}));
    let vpc = input.get("VPC").filter(|v| v.get("VPCId").is_some());
    let private = vpc.is_some() || config["PrivateZone"].as_bool().unwrap_or(false);
    if private && vpc.is_none() {
        return Err(R53Error::InvalidInput(
            "When you're creating a private hosted zone (when you specify true for PrivateZone), you must also specify values for VPCId and VPCRegion.".into(),
        ));
    }
    let mut vpcs = Vec::new();
    if let Some(v) = vpc {
        vpcs.push(check_vpc(ctx, v).await?);
    }
    let servers = name_servers();
    let zone = Zone {
        id: new_id('Z'),
        rrsets: required_records(&name, &servers),
        name,
        caller_reference: caller_reference.to_string(),
        comment: config["Comment"].as_str().map(str::to_string),
        private,
        vpcs,
        name_servers: servers,
        tags: Vec::new(),
    };
    let (change, change_op) = new_change(ctx, None);
    let ops = vec![
        resources::put_op(&zone_key(ctx, &zone.id), &zone, Precondition::MustNotExist),
        resources::put_op(
            &caller_ref_key(ctx, caller_reference),
            &zone.id,
            Precondition::MustNotExist,
        ),
        change_op,
    ];
    match resources::commit(&*ctx.store, ops).await {
        Ok(_) => {}
        Err(None) => {
            return Err(R53Error::HostedZoneAlreadyExists(
                "A hosted zone has already been created with the specified caller reference."
                    .into(),
            ));
        }
        Err(Some(e)) => return Err(e.into()),
    }
    let mut out = json!({
        "HostedZone": zone.hosted_zone(),
        "ChangeInfo": change,
        "Location": format!("https://route53.amazonaws.com/2013-04-01/hostedzone/{}", zone.id),
    });
    if zone.private {
        out["VPC"] = zone.vpcs()[0].clone();
    } else {
        out["DelegationSet"] = zone.delegation_set();
    }
    Ok(out)
}

#[doc(alias = "GetHostedZone")]
pub async fn get_hosted_zone(ctx: &RequestContext, input: Value) -> R53Result<Value> {
    let (zone, _) = load(ctx, req_str(&input, "Id")?).await?;
    let mut out = json!({ "HostedZone": zone.hosted_zone() });
    if zone.private {
        out["VPCs"] = zone.vpcs();
    } else {
        out["DelegationSet"] = zone.delegation_set();
    }
    Ok(out)
}

async fn all_zones(ctx: &RequestContext) -> R53Result<Vec<Zone>> {
    let prefix = resources::prefix_of(&zone_key(ctx, "Z"));
    Ok(resources::list(&*ctx.store, &prefix).await?)
}

#[doc(alias = "ListHostedZones")]
pub async fn list_hosted_zones(ctx: &RequestContext, input: Value) -> R53Result<Value> {
    let max = max_items(&input, 100, 100)?;
    let want_private = match opt_str(&input, "HostedZoneType") {
        Some("PrivateHostedZone") => Some(true),
        _ => None,
    };
    let zones: Vec<Zone> = all_zones(ctx)
        .await?
        .into_iter()
        .filter(|z| want_private.is_none_or(|p| z.private == p))
        .collect();
    let start = match opt_str(&input, "Marker") {
        Some(m) => {
            let m = bare_zone_id(m);
            zones
                .iter()
                .position(|z| z.id.as_str() >= m)
                .unwrap_or(zones.len())
        }
        None => 0,
    };
    let end = (start + max).min(zones.len());
    let mut out = json!({
        "HostedZones": zones[start..end].iter().map(Zone::hosted_zone).collect::<Vec<_>>(),
        "IsTruncated": end < zones.len(),
        "MaxItems": max.to_string(),
    });
    if let Some(m) = opt_str(&input, "Marker") {
        out["Marker"] = json!(m);
    }
    if end < zones.len() {
        out["NextMarker"] = json!(zones[end].id);
    }
    Ok(out)
}

#[doc(alias = "ListHostedZonesByName")]
pub async fn list_hosted_zones_by_name(ctx: &RequestContext, input: Value) -> R53Result<Value> {
    let max = max_items(&input, 100, 100)?;
    let mut zones = all_zones(ctx).await?;
    zones.sort_by(|a, b| {
        reversed_labels(&a.name)
            .cmp(&reversed_labels(&b.name))
            .then(a.id.cmp(&b.id))
    });
    let dns = opt_str(&input, "DNSName").map(normalize_name);
    let zone_id = opt_str(&input, "HostedZoneId").map(|z| bare_zone_id(z).to_string());
    if zone_id.is_some() && dns.is_none() {
        return Err(R53Error::InvalidInput(
            "The DNSName must be specified if HostedZoneId is specified.".into(),
        ));
    }
    let start = match &dns {
        Some(d) => {
            let key = reversed_labels(d);
            zones
                .iter()
                .position(|z| {
                    let zk = reversed_labels(&z.name);
                    zk > key || (zk == key && zone_id.as_ref().is_none_or(|id| z.id >= *id))
                })
                .unwrap_or(zones.len())
        }
        None => 0,
    };
    let end = (start + max).min(zones.len());
    let mut out = json!({
        "HostedZones": zones[start..end].iter().map(Zone::hosted_zone).collect::<Vec<_>>(),
        "IsTruncated": end < zones.len(),
        "MaxItems": max.to_string(),
    });
    if let Some(d) = &dns {
        out["DNSName"] = json!(d);
    }
    if let Some(z) = &zone_id {
        out["HostedZoneId"] = json!(z);
    }
    if end < zones.len() {
        out["NextDNSName"] = json!(zones[end].name);
        out["NextHostedZoneId"] = json!(zones[end].id);
    }
    Ok(out)
}

#[doc(alias = "GetHostedZoneCount")]
pub async fn get_hosted_zone_count(ctx: &RequestContext, _input: Value) -> R53Result<Value> {
    Ok(json!({ "HostedZoneCount": all_zones(ctx).await?.len() }))
}

#[doc(alias = "DeleteHostedZone")]
pub async fn delete_hosted_zone(ctx: &RequestContext, input: Value) -> R53Result<Value> {
    let (zone, rev) = load(ctx, req_str(&input, "Id")?).await?;
    let non_required = zone
        .rrsets
        .iter()
        .any(|r| !(r["Name"] == zone.name.as_str() && (r["Type"] == "NS" || r["Type"] == "SOA")));
    if non_required {
        return Err(R53Error::HostedZoneNotEmpty(
            "The specified hosted zone contains non-required resource record sets and so cannot be deleted.".into(),
        ));
    }
    let (change, change_op) = new_change(ctx, None);
    let ops = vec![
        skiff_store::Op::Delete {
            key: zone_key(ctx, &zone.id),
            precondition: Precondition::ModRevision(rev),
        },
        skiff_store::Op::Delete {
            key: caller_ref_key(ctx, &zone.caller_reference),
            precondition: Precondition::None,
        },
        change_op,
    ];
    commit(ctx, ops).await?;
    Ok(json!({ "ChangeInfo": change }))
}
