//! Route 53 (rest-xml) through the real aws CLI against the gateway on 127.0.0.1:0: a hosted zone,
//! a change batch, listing, and Route 53's InvalidChangeBatch wording.

mod support;

use support::Gw;

fn batch(action: &str, name: &str, ip: &str) -> String {
    serde_json::json!({"Changes": [{"Action": action, "ResourceRecordSet":
        {"Name": name, "Type": "A", "TTL": 300, "ResourceRecords": [{"Value": ip}]}}]})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosted_zone_change_batch_and_listing() {
    let gw = Gw::start().await;
    let zone = gw
        .aws(&[
            "route53",
            "create-hosted-zone",
            "--name",
            "example.com",
            "--caller-reference",
            "cli-1",
            "--hosted-zone-config",
            "Comment=test",
        ])
        .await
        .expect("create-hosted-zone");
    let id = zone["HostedZone"]["Id"].as_str().expect("id").to_string();
    assert!(id.starts_with("/hostedzone/Z"), "{id}");
    assert_eq!(zone["HostedZone"]["Name"], "example.com.");
    assert_eq!(
        zone["DelegationSet"]["NameServers"]
            .as_array()
            .expect("ns")
            .len(),
        4
    );
    let err = gw
        .aws(&[
            "route53",
            "create-hosted-zone",
            "--name",
            "example.com",
            "--caller-reference",
            "cli-1",
        ])
        .await
        .expect_err("same caller reference");
    assert!(err.contains("(HostedZoneAlreadyExists)"), "{err}");

    let change = gw
        .aws(&[
            "route53",
            "change-resource-record-sets",
            "--hosted-zone-id",
            &id,
            "--change-batch",
            &batch("CREATE", "www.example.com", "10.0.0.1"),
        ])
        .await
        .expect("change-resource-record-sets");
    assert_eq!(change["ChangeInfo"]["Status"], "PENDING");
    let change_id = change["ChangeInfo"]["Id"]
        .as_str()
        .expect("change id")
        .to_string();
    let status = gw
        .aws(&["route53", "get-change", "--id", &change_id])
        .await
        .expect("get-change");
    assert_eq!(status["ChangeInfo"]["Status"], "INSYNC");
    let err = gw
        .aws(&[
            "route53",
            "change-resource-record-sets",
            "--hosted-zone-id",
            &id,
            "--change-batch",
            &batch("CREATE", "www.example.com", "10.0.0.1"),
        ])
        .await
        .expect_err("duplicate create");
    assert!(
        err.contains("(InvalidChangeBatch)")
            && err.contains("Tried to create resource record set [name='www.example.com.', type='A'] but it already exists"),
        "{err}"
    );

    let sets = gw
        .aws(&[
            "route53",
            "list-resource-record-sets",
            "--hosted-zone-id",
            &id,
        ])
        .await
        .expect("list-resource-record-sets");
    let listed: Vec<(String, String)> = sets["ResourceRecordSets"]
        .as_array()
        .expect("sets")
        .iter()
        .map(|r| {
            (
                r["Name"].as_str().unwrap_or_default().into(),
                r["Type"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("example.com.".to_string(), "NS".to_string()),
            ("example.com.".into(), "SOA".into()),
            ("www.example.com.".into(), "A".into()),
        ]
    );
    assert_eq!(
        sets["ResourceRecordSets"][2]["ResourceRecords"][0]["Value"],
        "10.0.0.1"
    );

    let zones = gw
        .aws(&["route53", "list-hosted-zones-by-name"])
        .await
        .expect("list by name");
    assert_eq!(zones["HostedZones"][0]["Config"]["Comment"], "test");
    let err = gw
        .aws(&["route53", "delete-hosted-zone", "--id", &id])
        .await
        .expect_err("not empty");
    assert!(err.contains("(HostedZoneNotEmpty)"), "{err}");
    gw.aws(&[
        "route53",
        "change-resource-record-sets",
        "--hosted-zone-id",
        &id,
        "--change-batch",
        &batch("DELETE", "www.example.com", "10.0.0.1"),
    ])
    .await
    .expect("delete record");
    gw.aws(&[
        "route53",
        "change-tags-for-resource",
        "--resource-type",
        "hostedzone",
        "--resource-id",
        id.trim_start_matches("/hostedzone/"),
        "--add-tags",
        "Key=env,Value=dev",
    ])
    .await
    .expect("tags");
    let tags = gw
        .aws(&[
            "route53",
            "list-tags-for-resource",
            "--resource-type",
            "hostedzone",
            "--resource-id",
            id.trim_start_matches("/hostedzone/"),
        ])
        .await
        .expect("list tags");
    assert_eq!(tags["ResourceTagSet"]["Tags"][0]["Key"], "env");
    gw.aws(&["route53", "delete-hosted-zone", "--id", &id])
        .await
        .expect("delete-hosted-zone");
    let err = gw
        .aws(&["route53", "get-hosted-zone", "--id", &id])
        .await
        .expect_err("gone");
    assert!(err.contains("(NoSuchHostedZone)"), "{err}");
    gw.stop().await;
}
