//! Route 53 through its operation table on an in-memory store.

use serde_json::{Value, json};

use crate::context::RequestContext;
use crate::iam::test_support::root_ctx;

async fn r53(
    ctx: &RequestContext,
    op: &str,
    input: Value,
) -> Result<Value, skiff_aws_model::AwsError> {
    super::dispatch(ctx, op, input).await
}

async fn zone(ctx: &RequestContext, name: &str) -> String {
    let z = r53(
        ctx,
        "CreateHostedZone",
        json!({"Name": name, "CallerReference": name}),
    )
    .await
    .unwrap();
    z["HostedZone"]["Id"]
        .as_str()
        .unwrap()
        .trim_start_matches("/hostedzone/")
        .to_string()
}

fn a(name: &str, ip: &str) -> Value {
    json!({"Name": name, "Type": "A", "TTL": 300, "ResourceRecords": [{"Value": ip}]})
}

fn batch(id: &str, changes: Vec<(&str, Value)>) -> Value {
    json!({"HostedZoneId": id, "ChangeBatch": {"Changes": changes.into_iter()
        .map(|(a, r)| json!({"Action": a, "ResourceRecordSet": r})).collect::<Vec<_>>()}})
}

#[tokio::test]
async fn zones_are_born_with_ns_and_soa_and_caller_reference_is_idempotent() {
    let ctx = root_ctx();
    let z = r53(
        &ctx,
        "CreateHostedZone",
        json!({"Name": "Example.com", "CallerReference": "r1"}),
    )
    .await
    .unwrap();
    assert_eq!(z["HostedZone"]["Name"], "example.com.");
    assert_eq!(
        z["DelegationSet"]["NameServers"].as_array().unwrap().len(),
        4
    );
    assert_eq!(z["ChangeInfo"]["Status"], "PENDING");
    let id = z["HostedZone"]["Id"].as_str().unwrap().to_string();
    assert!(id.starts_with("/hostedzone/Z"));
    let err = r53(
        &ctx,
        "CreateHostedZone",
        json!({"Name": "other.com", "CallerReference": "r1"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "HostedZoneAlreadyExists");
    let l = r53(&ctx, "ListResourceRecordSets", json!({"HostedZoneId": id}))
        .await
        .unwrap();
    let types: Vec<&str> = l["ResourceRecordSets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["NS", "SOA"]);
    let ch = r53(&ctx, "GetChange", json!({"Id": z["ChangeInfo"]["Id"]}))
        .await
        .unwrap();
    assert_eq!(ch["ChangeInfo"]["Status"], "INSYNC");
    let err = r53(&ctx, "GetHostedZone", json!({"Id": "ZNOPE"}))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code.as_str(), err.message.as_str()),
        ("NoSuchHostedZone", "No hosted zone found with ID: ZNOPE")
    );
    // Deleting the zone is allowed with only NS and SOA left.
    r53(&ctx, "DeleteHostedZone", json!({"Id": id}))
        .await
        .unwrap();
    // The caller reference is free again.
    r53(
        &ctx,
        "CreateHostedZone",
        json!({"Name": "example.com", "CallerReference": "r1"}),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn change_batches_are_validated_like_route53() {
    let ctx = root_ctx();
    let id = zone(&ctx, "example.com").await;
    r53(
        &ctx,
        "ChangeResourceRecordSets",
        batch(&id, vec![("CREATE", a("www.example.com", "10.0.0.1"))]),
    )
    .await
    .unwrap();
    let err = r53(
        &ctx,
        "ChangeResourceRecordSets",
        batch(
            &id,
            vec![
                ("CREATE", a("www.example.com", "10.0.0.1")),
                ("DELETE", a("gone.example.com", "10.0.0.1")),
                ("CREATE", a("x.other.com", "10.0.0.1")),
            ],
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "InvalidChangeBatch");
    assert_eq!(
        err.message,
        "[Tried to create resource record set [name='www.example.com.', type='A'] but it already exists, Tried to delete resource record set [name='gone.example.com.', type='A'] but it was not found, RRSet with DNS name x.other.com. is not permitted in zone example.com.]"
    );
    let err = r53(
        &ctx,
        "ChangeResourceRecordSets",
        batch(
            &id,
            vec![("CREATE", json!({"Name": "n.example.com", "Type": "A"}))],
        ),
    )
    .await
    .unwrap_err();
    assert!(
        err.message.contains("Expected exactly one of [AliasTarget"),
        "{}",
        err.message
    );
    let err = r53(
        &ctx,
        "ChangeResourceRecordSets",
        batch(&id, vec![("CREATE", a("bad.example.com", "999.1.1.1"))]),
    )
    .await
    .unwrap_err();
    assert!(
        err.message.contains("ARRDATAIllegalIPv4Address"),
        "{}",
        err.message
    );
    // A failed batch writes nothing.
    let err = r53(
        &ctx,
        "ChangeResourceRecordSets",
        batch(
            &id,
            vec![
                ("CREATE", a("ok.example.com", "10.0.0.2")),
                ("CREATE", a("www.example.com", "10.0.0.1")),
            ],
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "InvalidChangeBatch");
    let l = r53(&ctx, "ListResourceRecordSets", json!({"HostedZoneId": id}))
        .await
        .unwrap();
    assert_eq!(l["ResourceRecordSets"].as_array().unwrap().len(), 3);
    // UPSERT replaces; DELETE with the current values removes; the apex SOA cannot go.
    r53(
        &ctx,
        "ChangeResourceRecordSets",
        batch(&id, vec![("UPSERT", a("www.example.com", "10.0.0.9"))]),
    )
    .await
    .unwrap();
    let err = r53(
        &ctx,
        "ChangeResourceRecordSets",
        batch(&id, vec![("DELETE", a("www.example.com", "10.0.0.1"))]),
    )
    .await
    .unwrap_err();
    assert!(err.message.contains("do not match"), "{}", err.message);
    let err = r53(&ctx, "DeleteHostedZone", json!({"Id": id}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "HostedZoneNotEmpty");
    r53(
        &ctx,
        "ChangeResourceRecordSets",
        batch(&id, vec![("DELETE", a("www.example.com", "10.0.0.9"))]),
    )
    .await
    .unwrap();
    let soa = r53(&ctx, "ListResourceRecordSets", json!({"HostedZoneId": id}))
        .await
        .unwrap()["ResourceRecordSets"][1]
        .clone();
    let err = r53(
        &ctx,
        "ChangeResourceRecordSets",
        batch(&id, vec![("DELETE", soa)]),
    )
    .await
    .unwrap_err();
    assert!(err.message.contains("exactly one SOA"), "{}", err.message);
}

#[tokio::test]
async fn listing_order_paging_alias_and_weighted_records() {
    let ctx = root_ctx();
    let id = zone(&ctx, "example.com").await;
    let alias = json!({"Name": "app.example.com", "Type": "A", "AliasTarget": {"HostedZoneId": "Z35SXDOTRQ7X7K", "DNSName": "LB-1.elb.amazonaws.com", "EvaluateTargetHealth": true}});
    let w1 = json!({"Name": "w.example.com", "Type": "CNAME", "SetIdentifier": "one", "Weight": 10, "TTL": 60, "ResourceRecords": [{"Value": "a.example.net"}]});
    let w2 = json!({"Name": "w.example.com", "Type": "CNAME", "SetIdentifier": "two", "Weight": 90, "TTL": 60, "ResourceRecords": [{"Value": "b.example.net"}]});
    r53(
        &ctx,
        "ChangeResourceRecordSets",
        batch(
            &id,
            vec![
                ("CREATE", a("b.a.example.com", "10.0.0.1")),
                ("CREATE", alias),
                ("CREATE", w2),
                ("CREATE", w1),
                ("CREATE", a("*.example.com", "10.0.0.3")),
            ],
        ),
    )
    .await
    .unwrap();
    let l = r53(&ctx, "ListResourceRecordSets", json!({"HostedZoneId": id}))
        .await
        .unwrap();
    let names: Vec<String> = l["ResourceRecordSets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["Name"].as_str().unwrap(),
                r["Type"].as_str().unwrap(),
                r["SetIdentifier"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "example.com. NS -",
            "example.com. SOA -",
            "\\052.example.com. A -",
            "b.a.example.com. A -",
            "app.example.com. A -",
            "w.example.com. CNAME one",
            "w.example.com. CNAME two",
        ]
    );
    assert_eq!(
        l["ResourceRecordSets"][4]["AliasTarget"]["DNSName"],
        "lb-1.elb.amazonaws.com."
    );
    assert_eq!(l["ResourceRecordSets"][6]["Weight"], 90);
    let p1 = r53(
        &ctx,
        "ListResourceRecordSets",
        json!({"HostedZoneId": id, "MaxItems": "6"}),
    )
    .await
    .unwrap();
    assert_eq!(p1["IsTruncated"], true);
    assert_eq!(p1["NextRecordName"], "w.example.com.");
    assert_eq!(p1["NextRecordIdentifier"], "two");
    let p2 = r53(&ctx, "ListResourceRecordSets", json!({"HostedZoneId": id, "MaxItems": "6",
        "StartRecordName": p1["NextRecordName"], "StartRecordType": p1["NextRecordType"], "StartRecordIdentifier": p1["NextRecordIdentifier"]})).await.unwrap();
    assert_eq!(p2["ResourceRecordSets"].as_array().unwrap().len(), 1);
    assert_eq!(p2["IsTruncated"], false);
    // A CNAME cannot sit beside other types.
    let err = r53(
        &ctx,
        "ChangeResourceRecordSets",
        batch(&id, vec![("CREATE", a("w.example.com", "10.0.0.1"))]),
    )
    .await
    .unwrap_err();
    assert!(
        err.message.contains("conflicts with other records"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn zones_by_name_tags_and_private_zones() {
    let ctx = root_ctx();
    for n in ["b.com", "a.b.com", "a.com"] {
        zone(&ctx, n).await;
    }
    let l = r53(&ctx, "ListHostedZonesByName", json!({})).await.unwrap();
    let names: Vec<&str> = l["HostedZones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a.com.", "b.com.", "a.b.com."]);
    let l = r53(
        &ctx,
        "ListHostedZonesByName",
        json!({"DNSName": "b.com", "MaxItems": "1"}),
    )
    .await
    .unwrap();
    assert_eq!(l["HostedZones"][0]["Name"], "b.com.");
    assert_eq!(l["NextDNSName"], "a.b.com.");
    let p = r53(&ctx, "ListHostedZones", json!({"MaxItems": "2"}))
        .await
        .unwrap();
    let rest = r53(&ctx, "ListHostedZones", json!({"Marker": p["NextMarker"]}))
        .await
        .unwrap();
    assert_eq!(
        p["HostedZones"].as_array().unwrap().len() + rest["HostedZones"].as_array().unwrap().len(),
        3
    );

    let id = zone(&ctx, "tagged.com").await;
    r53(&ctx, "ChangeTagsForResource", json!({"ResourceType": "hostedzone", "ResourceId": id, "AddTags": [{"Key": "k", "Value": "v"}]})).await.unwrap();
    let t = r53(
        &ctx,
        "ListTagsForResource",
        json!({"ResourceType": "hostedzone", "ResourceId": id}),
    )
    .await
    .unwrap();
    assert_eq!(
        t["ResourceTagSet"]["Tags"],
        json!([{"Key": "k", "Value": "v"}])
    );

    let vpc = |cidr: &str| crate::ec2::dispatch(&ctx, "CreateVpc", json!({"CidrBlock": cidr}));
    let v1 = vpc("10.0.0.0/16").await.unwrap()["Vpc"]["VpcId"]
        .as_str()
        .unwrap()
        .to_string();
    let v2 = vpc("10.1.0.0/16").await.unwrap()["Vpc"]["VpcId"]
        .as_str()
        .unwrap()
        .to_string();
    let err = r53(&ctx, "CreateHostedZone", json!({"Name": "int.local", "CallerReference": "p0", "VPC": {"VPCRegion": "us-east-1", "VPCId": "vpc-0000000000000000f"}})).await.unwrap_err();
    assert_eq!(err.code, "InvalidVPCId");
    let z = r53(&ctx, "CreateHostedZone", json!({"Name": "int.local", "CallerReference": "p1", "VPC": {"VPCRegion": "us-east-1", "VPCId": v1}})).await.unwrap();
    assert_eq!(z["HostedZone"]["Config"]["PrivateZone"], true);
    let pid = z["HostedZone"]["Id"].as_str().unwrap().to_string();
    let err = r53(
        &ctx,
        "DisassociateVPCFromHostedZone",
        json!({"HostedZoneId": pid, "VPC": {"VPCRegion": "us-east-1", "VPCId": v1}}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "LastVPCAssociation");
    r53(
        &ctx,
        "AssociateVPCWithHostedZone",
        json!({"HostedZoneId": pid, "VPC": {"VPCRegion": "us-east-1", "VPCId": v2}}),
    )
    .await
    .unwrap();
    r53(
        &ctx,
        "DisassociateVPCFromHostedZone",
        json!({"HostedZoneId": pid, "VPC": {"VPCRegion": "us-east-1", "VPCId": v1}}),
    )
    .await
    .unwrap();
    let g = r53(&ctx, "GetHostedZone", json!({"Id": pid}))
        .await
        .unwrap();
    assert_eq!(g["VPCs"], json!([{"VPCRegion": "us-east-1", "VPCId": v2}]));
    let err = r53(
        &ctx,
        "AssociateVPCWithHostedZone",
        json!({"HostedZoneId": id, "VPC": {"VPCRegion": "us-east-1", "VPCId": v2}}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "PublicZoneVPCAssociation");
}

#[tokio::test]
async fn upsert_records_domain_function() {
    let ctx = root_ctx();
    let id = zone(&ctx, "example.com").await;
    let info = super::upsert_records(
        &ctx.store,
        &ctx.account_id,
        &id,
        vec![a("svc.example.com", "10.0.0.7")],
    )
    .await
    .unwrap();
    assert_eq!(info["Status"], "PENDING");
    super::upsert_records(
        &ctx.store,
        &ctx.account_id,
        &id,
        vec![a("svc.example.com", "10.0.0.8")],
    )
    .await
    .unwrap();
    let l = r53(&ctx, "ListResourceRecordSets", json!({"HostedZoneId": id, "StartRecordName": "svc.example.com", "StartRecordType": "A", "MaxItems": "1"})).await.unwrap();
    assert_eq!(
        l["ResourceRecordSets"][0]["ResourceRecords"][0]["Value"],
        "10.0.0.8"
    );
    super::delete_records(
        &ctx.store,
        &ctx.account_id,
        &id,
        vec![a("svc.example.com", "10.0.0.8")],
    )
    .await
    .unwrap();
    let l = r53(&ctx, "ListResourceRecordSets", json!({"HostedZoneId": id}))
        .await
        .unwrap();
    assert_eq!(l["ResourceRecordSets"].as_array().unwrap().len(), 2);
}
