//! Record sets: ChangeResourceRecordSets, ListResourceRecordSets; and the domain functions
//! [`upsert_records`] / [`delete_records`] that ExternalDNS-style integrations call.
//!
//! A batch is validated against the zone as it would be after each earlier change in the same batch,
//! every failure is collected, and nothing is written unless all pass (Route 53 applies batches
//! atomically and lists every problem in one `InvalidChangeBatch`). Record sets are identified by
//! (name, type, SetIdentifier); weighted, latency, failover, geo and alias fields are kept as given.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::Store;

use super::common::{
    R53Error, R53Result, Zone, commit, in_zone, load, max_items, new_change, normalize_name,
    opt_str, req_str, reversed_labels, save_op,
};
use crate::context::{Caller, RequestContext};

fn set_id(r: &Value) -> Option<&str> {
    r["SetIdentifier"].as_str()
}

fn same_set(a: &Value, b: &Value) -> bool {
    a["Name"] == b["Name"] && a["Type"] == b["Type"] && set_id(a) == set_id(b)
}

/// `[name='x.', type='A']` (plus `set-identifier` when present), as Route 53 words it.
fn describe(r: &Value) -> String {
    let mut s = format!(
        "[name='{}', type='{}'",
        r["Name"].as_str().unwrap_or_default(),
        r["Type"].as_str().unwrap_or_default()
    );
    if let Some(id) = set_id(r) {
        s.push_str(&format!(", set-identifier='{id}'"));
    }
    s.push(']');
    s
}

/// Route 53's listing order: name by reversed labels, then type, then set identifier.
fn order_key(r: &Value) -> (Vec<String>, String, String) {
    (
        reversed_labels(r["Name"].as_str().unwrap_or_default()),
        r["Type"].as_str().unwrap_or_default().to_string(),
        set_id(r).unwrap_or_default().to_string(),
    )
}

/// Normalise names and check the shape of one record set; `Err` carries Route 53's message.
fn prepare(action: &str, rrs: &Value, zone: &Zone) -> Result<Value, String> {
    let mut r = rrs.clone();
    let name = normalize_name(r["Name"].as_str().unwrap_or_default());
    r["Name"] = json!(name);
    let rtype = r["Type"].as_str().unwrap_or_default().to_string();
    if let Some(alias) = r.get_mut("AliasTarget")
        && let Some(dns) = alias["DNSName"].as_str()
    {
        alias["DNSName"] = json!(normalize_name(dns));
    }
    if !in_zone(&name, &zone.name) {
        return Err(format!(
            "RRSet with DNS name {name} is not permitted in zone {}",
            zone.name
        ));
    }
    if action == "DELETE" {
        return Ok(r);
    }
    let has_alias = r.get("AliasTarget").is_some();
    let has_records = r
        .get("ResourceRecords")
        .is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty()));
    let has_ttl = r.get("TTL").is_some();
    let valid = if has_alias {
        !has_records && !has_ttl
    } else {
        has_records && has_ttl
    };
    if !valid {
        return Err(format!(
            "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or TrafficPolicyInstanceId], but found {} in Change with [Action={action}, Name={name}, Type={rtype}, SetIdentifier={}]",
            if has_alias { "more than one" } else { "none" },
            set_id(&r).unwrap_or("null")
        ));
    }
    for rec in r["ResourceRecords"].as_array().into_iter().flatten() {
        let v = rec["Value"].as_str().unwrap_or_default();
        let bad = match rtype.as_str() {
            "A" => v
                .parse::<Ipv4Addr>()
                .is_err()
                .then_some("ARRDATAIllegalIPv4Address (Value is not a valid IPv4 address)"),
            "AAAA" => v
                .parse::<Ipv6Addr>()
                .is_err()
                .then_some("AAAARRDATAIllegalIPv6Address (Value is not a valid IPv6 address)"),
            _ => None,
        };
        if let Some(why) = bad {
            return Err(format!(
                "Invalid Resource Record: 'FATAL problem: {why} encountered with '{v}''"
            ));
        }
    }
    Ok(r)
}

/// Apply `changes` to a copy of the zone's record sets; every failure is collected.
pub fn apply(zone: &Zone, changes: &[Value]) -> R53Result<Vec<Value>> {
    let mut sets = zone.rrsets.clone();
    let mut errors = Vec::new();
    for change in changes {
        let action = change["Action"].as_str().unwrap_or_default();
        let r = match prepare(action, &change["ResourceRecordSet"], zone) {
            Ok(r) => r,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let apex_required =
            r["Name"] == zone.name.as_str() && (r["Type"] == "SOA" || r["Type"] == "NS");
        let existing = sets.iter().position(|s| same_set(s, &r));
        let conflicts_cname = |sets: &[Value]| {
            sets.iter().any(|s| {
                s["Name"] == r["Name"]
                    && s["Type"] != r["Type"]
                    && (s["Type"] == "CNAME" || r["Type"] == "CNAME")
            })
        };
        match action {
            "CREATE" => {
                if existing.is_some() {
                    errors.push(format!("Tried to create resource record set {} but it already exists", describe(&r)));
                } else if conflicts_cname(&sets) {
                    errors.push(format!(
                        "RRSet of type CNAME with DNS name {} is not permitted as it conflicts with other records with the same DNS name in zone {}",
                        r["Name"].as_str().unwrap_or_default(), zone.name
                    ));
                } else {
                    sets.push(r);
                }
            }
            "UPSERT" => match existing {
                Some(i) => sets[i] = r,
                None if conflicts_cname(&sets) => errors.push(format!(
                    "RRSet of type CNAME with DNS name {} is not permitted as it conflicts with other records with the same DNS name in zone {}",
                    r["Name"].as_str().unwrap_or_default(), zone.name
                )),
                None => sets.push(r),
            },
            "DELETE" => match existing {
                None => errors.push(format!("Tried to delete resource record set {} but it was not found", describe(&r))),
                Some(_) if apex_required && r["Type"] == "SOA" => {
                    errors.push("A HostedZone must contain exactly one SOA record.".into())
                }
                Some(_) if apex_required => {
                    errors.push("A HostedZone must contain at least one NS record for the zone itself.".into())
                }
                Some(i) => {
                    // The values must match what is there (Route 53 compares the whole set).
                    let cur = &sets[i];
                    let same = ["TTL", "ResourceRecords", "AliasTarget", "Weight", "Region", "Failover"]
                        .iter()
                        .all(|f| r.get(*f).is_none() || r.get(*f) == cur.get(*f));
                    if same {
                        sets.remove(i);
                    } else {
                        errors.push(format!(
                            "Tried to delete resource record set {} but the values provided do not match the current values",
                            describe(&r)
                        ));
                    }
                }
            },
            other => errors.push(format!("Invalid action {other}")),
        }
    }
    if !errors.is_empty() {
        return Err(R53Error::InvalidChangeBatch(errors));
    }
    sets.sort_by_key(order_key);
    Ok(sets)
}

async fn change(ctx: &RequestContext, zone_id: &str, batch: &Value) -> R53Result<Value> {
    let (mut zone, rev) = load(ctx, zone_id).await?;
    let changes = batch["Changes"].as_array().cloned().unwrap_or_default();
    if changes.is_empty() {
        return Err(R53Error::InvalidChangeBatch(vec![
            "The request contains no changes.".into(),
        ]));
    }
    zone.rrsets = apply(&zone, &changes)?;
    let (info, change_op) = new_change(ctx, batch["Comment"].as_str());
    commit(ctx, vec![save_op(ctx, &zone, rev), change_op]).await?;
    Ok(info)
}

#[doc(alias = "ChangeResourceRecordSets")]
pub async fn change_resource_record_sets(ctx: &RequestContext, input: Value) -> R53Result<Value> {
    let info = change(ctx, req_str(&input, "HostedZoneId")?, &input["ChangeBatch"]).await?;
    Ok(json!({ "ChangeInfo": info }))
}

#[doc(alias = "ListResourceRecordSets")]
pub async fn list_resource_record_sets(ctx: &RequestContext, input: Value) -> R53Result<Value> {
    let (zone, _) = load(ctx, req_str(&input, "HostedZoneId")?).await?;
    let max = max_items(&input, 300, 300)?;
    let start_name = opt_str(&input, "StartRecordName").map(normalize_name);
    let start_type = opt_str(&input, "StartRecordType");
    if start_type.is_some() && start_name.is_none() {
        return Err(R53Error::InvalidInput(
            "The input is not valid: StartRecordType requires StartRecordName".into(),
        ));
    }
    let start = match &start_name {
        Some(n) => {
            let key = (
                reversed_labels(n),
                start_type.unwrap_or_default().to_string(),
                opt_str(&input, "StartRecordIdentifier")
                    .unwrap_or_default()
                    .to_string(),
            );
            zone.rrsets
                .iter()
                .position(|r| order_key(r) >= key)
                .unwrap_or(zone.rrsets.len())
        }
        None => 0,
    };
    let end = (start + max).min(zone.rrsets.len());
    let mut out = json!({
        "ResourceRecordSets": zone.rrsets[start..end],
        "IsTruncated": end < zone.rrsets.len(),
        "MaxItems": max.to_string(),
    });
    if let Some(next) = zone.rrsets.get(end) {
        out["NextRecordName"] = next["Name"].clone();
        out["NextRecordType"] = next["Type"].clone();
        if let Some(id) = set_id(next) {
            out["NextRecordIdentifier"] = json!(id);
        }
    }
    Ok(out)
}

fn system_ctx(store: &Arc<dyn Store>, account: &str) -> RequestContext {
    RequestContext {
        account_id: account.to_string(),
        region: "us-east-1".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        caller: Caller {
            arn: format!("arn:aws:iam::{account}:root"),
            user_id: account.to_string(),
            account_id: account.to_string(),
            access_key_id: String::new(),
        },
        store: store.clone(),
    }
}

/// UPSERT `records` (ResourceRecordSet shapes) into a zone in one batch; returns the ChangeInfo.
/// For in-process integrations (ExternalDNS) that act as the account.
pub async fn upsert_records(
    store: &Arc<dyn Store>,
    account: &str,
    zone_id: &str,
    records: Vec<Value>,
) -> Result<Value, AwsError> {
    let changes: Vec<Value> = records
        .into_iter()
        .map(|r| json!({"Action": "UPSERT", "ResourceRecordSet": r}))
        .collect();
    Ok(change(
        &system_ctx(store, account),
        zone_id,
        &json!({"Changes": changes}),
    )
    .await?)
}

/// DELETE `records` (as last upserted) from a zone in one batch; returns the ChangeInfo.
pub async fn delete_records(
    store: &Arc<dyn Store>,
    account: &str,
    zone_id: &str,
    records: Vec<Value>,
) -> Result<Value, AwsError> {
    let changes: Vec<Value> = records
        .into_iter()
        .map(|r| json!({"Action": "DELETE", "ResourceRecordSet": r}))
        .collect();
    Ok(change(
        &system_ctx(store, account),
        zone_id,
        &json!({"Changes": changes}),
    )
    .await?)
}
