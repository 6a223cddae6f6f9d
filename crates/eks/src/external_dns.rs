//! ExternalDNS, built in: a Service (or an Ingress, whose rule hosts count too) whose `external-dns.alpha.kubernetes.io/hostname` names
//! hosts (comma separated) and whose load balancer has a hostname gets, in the Route 53 hosted
//! zone with the longest matching suffix, an A alias to the load balancer (its canonical hosted
//! zone id and DNS name) and a TXT ownership record as ExternalDNS's TXT registry writes it
//! (`a-<host>`, `"heritage=external-dns,external-dns/owner=<cluster>,external-dns/resource=service/<ns>/<name>"`).
//!
//! Ownership is read back from the TXT records, so the reconciler keeps no state: records whose
//! TXT names this cluster and object but which the object no longer wants are deleted, and a name
//! already held by a record without our TXT is left alone, as ExternalDNS does.

use serde_json::{Value, json};
use skiff_controllers::runtime::informer::Cache;
use skiff_controllers::runtime::reconcile::{Action, Error, Reconciler};
use std::collections::BTreeMap;

use crate::load_balancer::{AwsScope, LbError};

pub const HOSTNAME_ANNOTATION: &str = "external-dns.alpha.kubernetes.io/hostname";
/// TTL of the TXT registry records (ExternalDNS's default).
const TXT_TTL: i64 = 300;

/// The hostnames an object asks for: lower case, without trailing dots, de-duplicated.
pub fn hostnames(obj: &Value) -> Vec<String> {
    let mut out: Vec<String> = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(HOSTNAME_ANNOTATION))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split(',')
        .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The hostnames of an Ingress: the annotation's plus its rules' hosts (ExternalDNS's ingress
/// source).
pub fn ingress_hostnames(ing: &Value) -> Vec<String> {
    let mut out = hostnames(ing);
    out.extend(
        ing.pointer("/spec/rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| r["host"].as_str())
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase()),
    );
    out.sort();
    out.dedup();
    out
}

/// The TXT registry value for `resource` (`service/<ns>/<name>`), quoted as Route 53 stores it.
pub fn ownership_value(owner: &str, resource: &str) -> String {
    format!("\"heritage=external-dns,external-dns/owner={owner},external-dns/resource={resource}\"")
}

/// `(owner, resource)` of a TXT registry value, if it is one.
pub fn parse_ownership(value: &str) -> Option<(String, String)> {
    let v = value.trim_matches('"');
    let mut fields = v.split(',');
    if fields.next()? != "heritage=external-dns" {
        return None;
    }
    let (mut owner, mut resource) = (None, String::new());
    for f in fields {
        if let Some(o) = f.strip_prefix("external-dns/owner=") {
            owner = Some(o.to_string());
        } else if let Some(r) = f.strip_prefix("external-dns/resource=") {
            resource = r.to_string();
        }
    }
    Some((owner?, resource))
}

/// The TXT registry's name for the A record at `host` (`a-` before the name, as ExternalDNS's
/// default new-format registry writes it).
pub fn txt_name(host: &str) -> String {
    format!("a-{host}.")
}

/// The zone (`(id, name without dot)`) whose name is the longest suffix of `host`.
pub fn zone_for<'a>(host: &str, zones: &'a [(String, String)]) -> Option<&'a (String, String)> {
    zones
        .iter()
        .filter(|(_, z)| host == z || host.ends_with(&format!(".{z}")))
        .max_by_key(|(_, z)| z.len())
}

/// Reconciles keys `service/<namespace>/<name>` (and `ingress/…` with [`ExternalDns::with_ingresses`]).
pub struct ExternalDns {
    aws: AwsScope,
    services: Cache,
    ingresses: Option<Cache>,
}

impl ExternalDns {
    pub fn new(aws: AwsScope, services: Cache) -> Self {
        Self {
            aws,
            services,
            ingresses: None,
        }
    }

    /// Also serve Ingresses (keys `ingress/<namespace>/<name>`).
    pub fn with_ingresses(mut self, ingresses: Cache) -> Self {
        self.ingresses = Some(ingresses);
        self
    }

    fn owner(&self) -> &str {
        &self.aws.binding.name
    }

    /// Every hosted zone of the account as `(bare id, name without the trailing dot)`.
    async fn zones(&self) -> Result<Vec<(String, String)>, LbError> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut input = json!({});
            if let Some(m) = &marker {
                input["Marker"] = json!(m);
            }
            let page = self.aws.call("route53", "ListHostedZones", input).await?;
            for z in page["HostedZones"].as_array().into_iter().flatten() {
                let id = z["Id"].as_str().unwrap_or_default();
                out.push((
                    skiff_aws::route53::common::bare_zone_id(id).to_string(),
                    z["Name"]
                        .as_str()
                        .unwrap_or_default()
                        .trim_end_matches('.')
                        .to_ascii_lowercase(),
                ));
            }
            match page["NextMarker"].as_str() {
                Some(m) if page["IsTruncated"] == true => marker = Some(m.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// The alias target of a load balancer hostname: ELBv2's canonical zone of that LB.
    async fn alias_zone(&self, dns: &str) -> Result<Option<String>, LbError> {
        let mut marker: Option<String> = None;
        loop {
            let mut input = json!({});
            if let Some(m) = &marker {
                input["Marker"] = json!(m);
            }
            let page = self
                .aws
                .call("elasticloadbalancing", "DescribeLoadBalancers", input)
                .await?;
            if let Some(lb) = page["LoadBalancers"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|lb| {
                    lb["DNSName"]
                        .as_str()
                        .is_some_and(|d| d.eq_ignore_ascii_case(dns))
                })
            {
                return Ok(lb["CanonicalHostedZoneId"].as_str().map(str::to_string));
            }
            match page["NextMarker"].as_str() {
                Some(m) => marker = Some(m.to_string()),
                None => return Ok(None),
            }
        }
    }

    async fn reconcile_key(&self, key: &str) -> Result<Action, LbError> {
        let (cache, kind, ns_name) = match key.split_once('/') {
            Some(("service", rest)) => (Some(&self.services), "service", rest),
            Some(("ingress", rest)) => (self.ingresses.as_ref(), "ingress", rest),
            _ => return Ok(Action::AwaitChange),
        };
        let resource = format!("{kind}/{ns_name}");
        let obj = cache
            .and_then(|c| c.get(ns_name))
            .filter(|o| o.pointer("/metadata/deletionTimestamp").is_none());
        let target = obj
            .as_ref()
            .and_then(|o| o.pointer("/status/loadBalancer/ingress/0/hostname"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let wanted: Vec<String> = match (&obj, &target) {
            (Some(o), Some(_)) if kind == "ingress" => ingress_hostnames(o),
            (Some(o), Some(_)) => hostnames(o),
            _ => Vec::new(),
        };
        let zones = self.zones().await?;
        let alias_zone = match &target {
            Some(t) if !wanted.is_empty() => self.alias_zone(t).await?,
            _ => None,
        };
        let ctx = self.aws.ctx();
        // Changes per zone id.
        let mut changes: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (zone_id, _) in &zones {
            let (zone, _) = skiff_aws::route53::common::load(&ctx, zone_id)
                .await
                .map_err(|e| LbError::Aws(e.into()))?;
            let txt_of = |name: &str| {
                zone.rrsets
                    .iter()
                    .find(|r| r["Type"] == "TXT" && r["Name"] == name)
                    .cloned()
            };
            let ownership = |r: &Value| {
                r["ResourceRecords"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v["Value"].as_str())
                    .find_map(parse_ownership)
            };
            // Records this object owns here but no longer wants.
            for txt in zone.rrsets.iter().filter(|r| r["Type"] == "TXT") {
                let Some((owner, res)) = ownership(txt) else {
                    continue;
                };
                let Some(host) = txt["Name"]
                    .as_str()
                    .and_then(|n| n.strip_prefix("a-"))
                    .map(|n| n.trim_end_matches('.').to_string())
                else {
                    continue;
                };
                if owner != self.owner() || res != resource || wanted.contains(&host) {
                    continue;
                }
                let zone_changes = changes.entry(zone_id.clone()).or_default();
                zone_changes.push(json!({"Action": "DELETE", "ResourceRecordSet": txt}));
                if let Some(a) = zone
                    .rrsets
                    .iter()
                    .find(|r| r["Type"] == "A" && r["Name"] == format!("{host}."))
                {
                    zone_changes.push(json!({"Action": "DELETE", "ResourceRecordSet": a}));
                }
            }
            // Records it wants in this zone.
            for host in &wanted {
                if zone_for(host, &zones).map(|z| &z.0) != Some(zone_id) {
                    continue;
                }
                let Some(target) = &target else { continue };
                let name = format!("{host}.");
                let existing_txt = txt_of(&txt_name(host));
                let owned = existing_txt
                    .as_ref()
                    .and_then(ownership)
                    .is_some_and(|(o, r)| o == self.owner() && r == resource);
                let taken = zone.rrsets.iter().any(|r| {
                    r["Name"] == name.as_str() && matches!(r["Type"].as_str(), Some("A" | "CNAME"))
                });
                if !owned && (taken || existing_txt.is_some()) {
                    tracing::info!(%host, "skipping: record exists and is not owned by this cluster");
                    continue;
                }
                let record = match &alias_zone {
                    Some(hz) => json!({"Name": name, "Type": "A", "AliasTarget": {
                        "HostedZoneId": hz, "DNSName": format!("{}.", target.trim_end_matches('.')),
                        "EvaluateTargetHealth": true}}),
                    None => json!({"Name": name, "Type": "CNAME", "TTL": TXT_TTL,
                        "ResourceRecords": [{"Value": target}]}),
                };
                let txt = json!({"Name": txt_name(host), "Type": "TXT", "TTL": TXT_TTL,
                    "ResourceRecords": [{"Value": ownership_value(self.owner(), &resource)}]});
                let current = zone
                    .rrsets
                    .iter()
                    .find(|r| r["Name"] == name.as_str() && r["Type"] == record["Type"]);
                let zone_changes = changes.entry(zone_id.clone()).or_default();
                if current != Some(&record) {
                    // An A record replacing our CNAME (or back) needs the old one gone first.
                    if let Some(old) = zone.rrsets.iter().find(|r| {
                        r["Name"] == name.as_str()
                            && matches!(r["Type"].as_str(), Some("A" | "CNAME"))
                            && r["Type"] != record["Type"]
                    }) {
                        zone_changes.push(json!({"Action": "DELETE", "ResourceRecordSet": old}));
                    }
                    zone_changes.push(json!({"Action": "UPSERT", "ResourceRecordSet": record}));
                }
                if existing_txt.as_ref() != Some(&txt) {
                    zone_changes.push(json!({"Action": "UPSERT", "ResourceRecordSet": txt}));
                }
            }
        }
        for (zone_id, list) in changes {
            if list.is_empty() {
                continue;
            }
            self.aws
                .call(
                    "route53",
                    "ChangeResourceRecordSets",
                    json!({"HostedZoneId": zone_id, "ChangeBatch": {
                        "Comment": "External-DNS", "Changes": list}}),
                )
                .await?;
        }
        // ExternalDNS re-checks on an interval (one minute by default); objects that want no
        // records wait for a change.
        Ok(if wanted.is_empty() {
            Action::AwaitChange
        } else {
            Action::Requeue(std::time::Duration::from_secs(60))
        })
    }
}

#[async_trait::async_trait]
impl Reconciler for ExternalDns {
    fn name(&self) -> &'static str {
        "external-dns"
    }

    async fn reconcile(&self, key: &str) -> Result<Action, Error> {
        self.reconcile_key(key).await.map_err(Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_are_split_trimmed_and_normalised() {
        let svc = json!({"metadata": {"annotations": {
            HOSTNAME_ANNOTATION: "Web.Example.com., api.example.com ,,web.example.com"}}});
        assert_eq!(hostnames(&svc), ["api.example.com", "web.example.com"]);
        assert!(hostnames(&json!({"metadata": {}})).is_empty());
    }

    #[test]
    fn ownership_round_trips_and_rejects_foreign_txt() {
        let v = ownership_value("prod", "service/default/web");
        assert_eq!(
            v,
            "\"heritage=external-dns,external-dns/owner=prod,external-dns/resource=service/default/web\""
        );
        assert_eq!(
            parse_ownership(&v),
            Some(("prod".into(), "service/default/web".into()))
        );
        assert_eq!(parse_ownership("\"v=spf1 -all\""), None);
        assert_eq!(parse_ownership("\"heritage=external-dns\""), None);
    }

    #[test]
    fn longest_suffix_zone_wins() {
        let zones = vec![
            ("Z1".to_string(), "example.com".to_string()),
            ("Z2".to_string(), "dev.example.com".to_string()),
            ("Z3".to_string(), "ample.com".to_string()),
        ];
        assert_eq!(zone_for("a.dev.example.com", &zones).unwrap().0, "Z2");
        assert_eq!(zone_for("example.com", &zones).unwrap().0, "Z1");
        assert_eq!(zone_for("a.example.com", &zones).unwrap().0, "Z1");
        assert!(zone_for("example.org", &zones).is_none());
        assert_eq!(txt_name("a.example.com"), "a-a.example.com.");
    }
}
