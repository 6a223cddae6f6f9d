//! Contract of the built-in AWS Load Balancer Controller and ExternalDNS (issue 6) against a real
//! store and a real control plane, through the in-process client and the AWS domain (no HTTP):
//! a LoadBalancer Service becomes an NLB in the tagged subnets with a target group and listener per
//! port, instance targets follow the Nodes and their readiness, the hostname reaches the Service's
//! status; ExternalDNS writes an alias and its TXT owner record and leaves foreign records alone;
//! switching to ip targets and internet-facing replaces the LB; deletion waits on the finalizer
//! until everything in AWS is gone.

mod nodegroups_support;

use std::time::Duration;

use nodegroups_support::{Env, wait_for};
use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, DeleteOptions, ResourceRef, WriteOptions};

const T: Duration = Duration::from_secs(30);

fn services() -> ResourceRef {
    ResourceRef::new("", "v1", "services").in_namespace("default")
}

async fn tag(env: &Env, id: &str, tags: &[(&str, &str)]) {
    let tags: Vec<Value> = tags
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    env.call(
        "ec2",
        "CreateTags",
        json!({"Resources": [id], "Tags": tags}),
    )
    .await;
}

async fn instance(env: &Env, subnet: &str) -> String {
    let r = env
        .call(
            "ec2",
            "RunInstances",
            json!({"ImageId": "ami-0123456789abcdef0", "MinCount": 1, "MaxCount": 1,
                   "InstanceType": "t3.medium", "SubnetId": subnet}),
        )
        .await;
    r["Instances"][0]["InstanceId"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn node(client: &dyn ApiClient, name: &str, instance: &str, ready: bool) {
    let nodes = ResourceRef::new("", "v1", "nodes");
    if client.get_opt(&nodes, name).await.unwrap().is_none() {
        client
            .create(
                &nodes,
                json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                       "spec": {"providerID": format!("aws:///us-east-1a/{instance}")}}),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
    }
    // The node lifecycle controller writes Nodes too: retry on conflicts.
    for _ in 0..50 {
        let mut n = client.get(&nodes, name).await.unwrap();
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        n["status"]["conditions"] = json!([{"type": "Ready", "status": if ready {"True"} else {"False"},
            "reason": "KubeletReady", "message": "", "lastHeartbeatTime": now,
            "lastTransitionTime": now}]);
        match client
            .update_status(&nodes, n, &WriteOptions::default())
            .await
        {
            Ok(_) => return,
            Err(skiff_k8s_core::status::ApiError::Conflict { .. }) => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    panic!("node {name} kept conflicting");
}

async fn service(client: &dyn ApiClient) -> Option<Value> {
    client.get_opt(&services(), "web").await.unwrap()
}

async fn wait_hostname(env: &Env, client: &dyn ApiClient, not: &str) -> String {
    let _ = env;
    let deadline = std::time::Instant::now() + T;
    loop {
        let host = service(client)
            .await
            .and_then(|s| {
                s.pointer("/status/loadBalancer/ingress/0/hostname")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .filter(|h| h != not);
        if let Some(h) = host {
            return h;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no hostname; events: {:#?}",
            events(client)
                .await
                .iter()
                .map(|e| format!("{} {}", e["reason"], e["message"]))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn lbs(env: &Env) -> Vec<Value> {
    env.call("elasticloadbalancing", "DescribeLoadBalancers", json!({}))
        .await["LoadBalancers"]
        .as_array()
        .unwrap()
        .clone()
}

async fn tgs(env: &Env) -> Vec<Value> {
    env.call("elasticloadbalancing", "DescribeTargetGroups", json!({}))
        .await["TargetGroups"]
        .as_array()
        .unwrap()
        .clone()
}

/// `(id, port, state)` of every target of the only target group.
async fn health(env: &Env) -> Vec<(String, i64, String)> {
    let Some(tg) = tgs(env).await.into_iter().next() else {
        return Vec::new();
    };
    let h = env
        .call(
            "elasticloadbalancing",
            "DescribeTargetHealth",
            json!({"TargetGroupArn": tg["TargetGroupArn"]}),
        )
        .await;
    let mut out: Vec<(String, i64, String)> = h["TargetHealthDescriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["Target"]["Id"].as_str().unwrap().to_string(),
                d["Target"]["Port"].as_i64().unwrap(),
                d["TargetHealth"]["State"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

async fn records(env: &Env, zone: &str) -> Vec<Value> {
    env.call(
        "route53",
        "ListResourceRecordSets",
        json!({"HostedZoneId": zone}),
    )
    .await["ResourceRecordSets"]
        .as_array()
        .unwrap()
        .clone()
}

async fn events(client: &dyn ApiClient) -> Vec<Value> {
    client
        .list(
            &ResourceRef::new("", "v1", "events").in_namespace("default"),
            &Default::default(),
        )
        .await
        .unwrap()
        .items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_becomes_nlb_with_targets_dns_and_clean_deletion() {
    let env = Env::start().await;
    let (subnets, _) = env
        .cluster(
            "prod",
            &[
                ("10.0.1.0/24", "us-east-1a"),
                ("10.0.2.0/24", "us-east-1b"),
                ("10.0.3.0/24", "us-east-1a"),
                ("10.0.4.0/24", "us-east-1b"),
            ],
        )
        .await;
    // Private subnets for internal LBs, public ones for internet-facing, one claimed by another
    // cluster (never picked).
    tag(
        &env,
        &subnets[0],
        &[("kubernetes.io/role/internal-elb", "1")],
    )
    .await;
    tag(
        &env,
        &subnets[1],
        &[("kubernetes.io/role/internal-elb", "1")],
    )
    .await;
    tag(
        &env,
        &subnets[2],
        &[
            ("kubernetes.io/role/elb", "1"),
            ("kubernetes.io/cluster/prod", "shared"),
        ],
    )
    .await;
    tag(
        &env,
        &subnets[3],
        &[
            ("kubernetes.io/role/elb", "1"),
            ("kubernetes.io/cluster/other", "owned"),
        ],
    )
    .await;
    let i1 = instance(&env, &subnets[0]).await;
    let i2 = instance(&env, &subnets[1]).await;
    let client = env.client("prod").await;
    let client = &*client;
    node(client, "n1", &i1, true).await;
    node(client, "n2", &i2, true).await;

    // Another implementation's class: not ours, no finalizer, no LB.
    client
        .create(
            &services(),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "theirs"},
                   "spec": {"type": "LoadBalancer", "loadBalancerClass": "example.com/lb",
                            "ports": [{"port": 80}]}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    let created = std::time::Instant::now();
    client
        .create(
            &services(),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                   "spec": {"type": "LoadBalancer",
                            "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    let host = wait_hostname(&env, client, "").await;
    eprintln!("service → NLB hostname in {:?}", created.elapsed());
    let svc = service(client).await.unwrap();
    assert_eq!(
        svc["metadata"]["finalizers"],
        json!(["service.k8s.aws/resources"])
    );
    let node_port = svc["spec"]["ports"][0]["nodePort"].as_i64().unwrap();

    let all = lbs(&env).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let lb = &all[0];
    assert_eq!(lb["DNSName"], host.as_str());
    assert!(host.starts_with("internal-k8s-default-web-"), "{host}");
    assert_eq!(lb["Type"], "network");
    assert_eq!(lb["Scheme"], "internal");
    let mut zones: Vec<&str> = lb["AvailabilityZones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["SubnetId"].as_str().unwrap())
        .collect();
    zones.sort();
    let mut private = vec![subnets[0].as_str(), subnets[1].as_str()];
    private.sort();
    assert_eq!(zones, private);
    let tags = env
        .call(
            "elasticloadbalancing",
            "DescribeTags",
            json!({"ResourceArns": [lb["LoadBalancerArn"]]}),
        )
        .await;
    let tags = &tags["TagDescriptions"][0]["Tags"];
    for (k, v) in [
        ("elbv2.k8s.aws/cluster", "prod"),
        ("service.k8s.aws/stack", "default/web"),
        ("service.k8s.aws/resource", "LoadBalancer"),
    ] {
        assert!(
            tags.as_array()
                .unwrap()
                .iter()
                .any(|t| t["Key"] == k && t["Value"] == v),
            "{k} in {tags}"
        );
    }
    let groups = tgs(&env).await;
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["Protocol"], "TCP");
    assert_eq!(groups[0]["TargetType"], "instance");
    assert_eq!(groups[0]["Port"], node_port);
    let listeners = env
        .call(
            "elasticloadbalancing",
            "DescribeListeners",
            json!({"LoadBalancerArn": lb["LoadBalancerArn"]}),
        )
        .await;
    assert_eq!(listeners["Listeners"][0]["Port"], 80);
    assert_eq!(listeners["Listeners"][0]["Protocol"], "TCP");
    assert_eq!(
        listeners["Listeners"][0]["DefaultActions"][0]["TargetGroupArn"],
        groups[0]["TargetGroupArn"]
    );
    let mut want = vec![
        (i1.clone(), node_port, "healthy".to_string()),
        (i2.clone(), node_port, "healthy".to_string()),
    ];
    want.sort();
    assert_eq!(health(&env).await, want);
    assert!(
        events(client).await.iter().any(
            |e| e["reason"] == "SuccessfullyReconciled" && e["involvedObject"]["name"] == "web"
        )
    );
    // A Service the model cannot be built for gets the LBC's warning and no finalizer.
    client
        .create(
            &services(),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bad",
                       "annotations": {"service.beta.kubernetes.io/aws-load-balancer-scheme": "public"}},
                   "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    wait_for("FailedBuildModel", T, || async {
        events(client).await.iter().any(|e| {
            e["reason"] == "FailedBuildModel"
                && e["type"] == "Warning"
                && e["involvedObject"]["name"] == "bad"
                && e["message"] == "Failed build model due to unknown scheme: public"
        })
    })
    .await;
    let bad = client.get(&services(), "bad").await.unwrap();
    assert!(bad["metadata"]["finalizers"].is_null());
    let theirs = client.get(&services(), "theirs").await.unwrap();
    assert!(theirs["metadata"]["finalizers"].is_null());
    assert!(theirs["status"]["loadBalancer"]["ingress"].is_null());

    // A Node going NotReady fails its health checks.
    node(client, "n2", &i2, false).await;
    wait_for("n2 unhealthy", T, || async {
        health(&env)
            .await
            .iter()
            .any(|(id, _, st)| id == &i2 && st == "unhealthy")
    })
    .await;

    // ExternalDNS: an alias plus its TXT owner record; a name someone else holds is left alone.
    let zone = env
        .call(
            "route53",
            "CreateHostedZone",
            json!({"Name": "example.com", "CallerReference": "z1"}),
        )
        .await["HostedZone"]["Id"]
        .as_str()
        .unwrap()
        .trim_start_matches("/hostedzone/")
        .to_string();
    let foreign = json!({"Name": "taken.example.com.", "Type": "A", "TTL": 60,
                         "ResourceRecords": [{"Value": "192.0.2.1"}]});
    env.call(
        "route53",
        "ChangeResourceRecordSets",
        json!({"HostedZoneId": zone, "ChangeBatch": {"Changes": [
            {"Action": "CREATE", "ResourceRecordSet": foreign}]}}),
    )
    .await;
    let mut svc = service(client).await.unwrap();
    svc["metadata"]["annotations"] = json!({
        "external-dns.alpha.kubernetes.io/hostname": "web.example.com,taken.example.com"});
    client
        .update(&services(), svc, &WriteOptions::default())
        .await
        .unwrap();
    wait_for("alias record", T, || async {
        records(&env, &zone)
            .await
            .iter()
            .any(|r| r["Name"] == "a-web.example.com.")
    })
    .await;
    let rs = records(&env, &zone).await;
    let alias = rs
        .iter()
        .find(|r| r["Name"] == "web.example.com." && r["Type"] == "A")
        .unwrap();
    assert_eq!(alias["AliasTarget"]["DNSName"], format!("{host}."));
    assert_eq!(
        alias["AliasTarget"]["HostedZoneId"],
        lb["CanonicalHostedZoneId"]
    );
    let txt = rs
        .iter()
        .find(|r| r["Name"] == "a-web.example.com." && r["Type"] == "TXT")
        .unwrap();
    assert_eq!(
        txt["ResourceRecords"][0]["Value"],
        "\"heritage=external-dns,external-dns/owner=prod,external-dns/resource=service/default/web\""
    );
    let taken: Vec<&Value> = rs
        .iter()
        .filter(|r| r["Name"].as_str().unwrap().contains("taken"))
        .collect();
    assert_eq!(
        taken,
        [&foreign],
        "foreign record untouched, no TXT claimed"
    );

    // ip targets, internet-facing: a new LB in the public subnet, the old one and its group gone;
    // targets are the Endpoints' addresses, health from readiness.
    client
        .create(
            &ResourceRef::new("", "v1", "endpoints").in_namespace("default"),
            json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"},
                   "subsets": [{"ports": [{"name": "http", "port": 8080}],
                                "addresses": [{"ip": "10.0.1.10"}],
                                "notReadyAddresses": [{"ip": "10.0.1.11"}]}]}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    let mut svc = service(client).await.unwrap();
    svc["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-scheme"] =
        json!("internet-facing");
    svc["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"] =
        json!("ip");
    client
        .update(&services(), svc, &WriteOptions::default())
        .await
        .unwrap();
    let public_host = wait_hostname(&env, client, &host).await;
    assert!(public_host.starts_with("k8s-default-web-"), "{public_host}");
    wait_for("old LB and group gone", T, || async {
        lbs(&env).await.len() == 1 && tgs(&env).await.len() == 1
    })
    .await;
    let lb2 = lbs(&env).await.remove(0);
    assert_eq!(lb2["Scheme"], "internet-facing");
    assert_eq!(lb2["AvailabilityZones"][0]["SubnetId"], subnets[2].as_str());
    assert_eq!(tgs(&env).await[0]["TargetType"], "ip");
    wait_for("ip targets", T, || async {
        health(&env).await
            == [
                ("10.0.1.10".to_string(), 8080, "healthy".to_string()),
                ("10.0.1.11".to_string(), 8080, "unhealthy".to_string()),
            ]
    })
    .await;
    wait_for("alias follows the new LB", T, || async {
        records(&env, &zone).await.iter().any(|r| {
            r["Name"] == "web.example.com."
                && r["AliasTarget"]["DNSName"] == format!("{public_host}.")
        })
    })
    .await;
    // A pod leaving the endpoints drains.
    let eps = ResourceRef::new("", "v1", "endpoints").in_namespace("default");
    let mut e = client.get(&eps, "web").await.unwrap();
    e["subsets"][0]["notReadyAddresses"] = json!([]);
    client
        .update(&eps, e, &WriteOptions::default())
        .await
        .unwrap();
    wait_for("draining", T, || async {
        health(&env)
            .await
            .iter()
            .any(|(id, _, st)| id == "10.0.1.11" && st == "draining")
    })
    .await;

    // Turning a Service into a NodePort one releases its LB, finalizer and status.
    client
        .create(
            &services(),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "second"},
                   "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    wait_for("second LB", T, || async { lbs(&env).await.len() == 2 }).await;
    wait_for("second hostname", T, || async {
        client.get(&services(), "second").await.unwrap()["status"]["loadBalancer"]["ingress"]
            .is_array()
    })
    .await;
    let mut second = client.get(&services(), "second").await.unwrap();
    second["spec"]["type"] = json!("NodePort");
    second["spec"]
        .as_object_mut()
        .unwrap()
        .remove("allocateLoadBalancerNodePorts");
    client
        .update(&services(), second, &WriteOptions::default())
        .await
        .unwrap();
    wait_for("second released", T, || async {
        let s = client.get(&services(), "second").await.unwrap();
        s["metadata"]["finalizers"]
            .as_array()
            .is_none_or(|f| f.is_empty())
            && s["status"]["loadBalancer"]["ingress"].is_null()
            && lbs(&env).await.len() == 1
            && tgs(&env).await.len() == 1
    })
    .await;

    // Delete: the finalizer holds the Service until the LB and group are gone; DNS follows.
    client
        .delete(&services(), "web", &DeleteOptions::default())
        .await
        .unwrap();
    wait_for("service gone", T, || async {
        service(client).await.is_none()
    })
    .await;
    assert!(lbs(&env).await.is_empty());
    assert!(tgs(&env).await.is_empty());
    wait_for("records gone", T, || async {
        !records(&env, &zone)
            .await
            .iter()
            .any(|r| r["Name"].as_str().unwrap().contains("web.example.com"))
    })
    .await;
    assert!(
        records(&env, &zone).await.contains(&foreign),
        "foreign record kept"
    );
}

fn ingresses() -> ResourceRef {
    ResourceRef::new("networking.k8s.io", "v1", "ingresses").in_namespace("default")
}

async fn rules_of_listener(env: &Env, lb_arn: &Value) -> (Value, Vec<Value>) {
    let l = env
        .call(
            "elasticloadbalancing",
            "DescribeListeners",
            json!({"LoadBalancerArn": lb_arn}),
        )
        .await["Listeners"][0]
        .clone();
    let rules = env
        .call(
            "elasticloadbalancing",
            "DescribeRules",
            json!({"ListenerArn": l["ListenerArn"]}),
        )
        .await["Rules"]
        .as_array()
        .unwrap()
        .clone();
    (l, rules)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_group_shares_one_alb_with_rules_per_path_and_cleans_up() {
    let env = Env::start().await;
    let (subnets, _) = env
        .cluster(
            "prod",
            &[("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")],
        )
        .await;
    for s in &subnets {
        tag(&env, s, &[("kubernetes.io/role/internal-elb", "1")]).await;
    }
    let i1 = instance(&env, &subnets[0]).await;
    let client = env.client("prod").await;
    let client = &*client;
    node(client, "n1", &i1, true).await;
    let zone = env
        .call(
            "route53",
            "CreateHostedZone",
            json!({"Name": "example.com", "CallerReference": "z-ing"}),
        )
        .await["HostedZone"]["Id"]
        .as_str()
        .unwrap()
        .trim_start_matches("/hostedzone/")
        .to_string();
    let class = client
        .get(
            &ResourceRef::new("networking.k8s.io", "v1", "ingressclasses"),
            "alb",
        )
        .await
        .unwrap();
    assert_eq!(class["spec"]["controller"], "ingress.k8s.aws/alb");
    for name in ["api", "web"] {
        client
            .create(
                &services(),
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                       "spec": {"type": "NodePort", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
    }
    client
        .create(
            &ingresses(),
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                   "metadata": {"name": "a", "annotations": {"alb.ingress.kubernetes.io/group.name": "shared"}},
                   "spec": {"ingressClassName": "alb", "rules": [{"host": "a.example.com", "http": {"paths": [
                       {"path": "/api", "pathType": "Prefix",
                        "backend": {"service": {"name": "api", "port": {"number": 80}}}}]}}]}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    client
        .create(
            &ingresses(),
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                   "metadata": {"name": "b", "annotations": {"alb.ingress.kubernetes.io/group.name": "shared",
                                                              "kubernetes.io/ingress.class": "alb"}},
                   "spec": {"rules": [{"http": {"paths": [
                       {"path": "/", "pathType": "Prefix",
                        "backend": {"service": {"name": "web", "port": {"name": "http"}}}}]}}]}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    wait_for("both ingresses have the ALB hostname", T, || async {
        let a = client.get(&ingresses(), "a").await.unwrap();
        let b = client.get(&ingresses(), "b").await.unwrap();
        let ha = &a["status"]["loadBalancer"]["ingress"][0]["hostname"];
        ha.is_string() && ha == &b["status"]["loadBalancer"]["ingress"][0]["hostname"]
    })
    .await;
    let all = lbs(&env).await;
    assert_eq!(all.len(), 1);
    let lb = &all[0];
    assert_eq!(lb["Type"], "application");
    assert_eq!(lb["Scheme"], "internal");
    assert!(
        lb["LoadBalancerName"]
            .as_str()
            .unwrap()
            .starts_with("k8s-shared-")
    );
    let a = client.get(&ingresses(), "a").await.unwrap();
    assert_eq!(
        a["status"]["loadBalancer"]["ingress"][0]["hostname"],
        lb["DNSName"]
    );
    assert_eq!(
        a["metadata"]["finalizers"],
        json!(["ingress.k8s.aws/resources"])
    );
    let groups = tgs(&env).await;
    assert_eq!(groups.len(), 2);
    assert!(
        groups
            .iter()
            .all(|g| g["Protocol"] == "HTTP" && g["TargetType"] == "instance")
    );
    let (listener, rules) = rules_of_listener(&env, &lb["LoadBalancerArn"]).await;
    assert_eq!(listener["Port"], 80);
    assert_eq!(listener["Protocol"], "HTTP");
    assert_eq!(listener["DefaultActions"][0]["Type"], "fixed-response");
    let conditions: Vec<Value> = rules
        .iter()
        .filter(|r| r["IsDefault"] == false)
        .map(|r| {
            json!(
                r["Conditions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| json!([c["Field"], c["Values"]]))
                    .collect::<Vec<_>>()
            )
        })
        .collect();
    assert_eq!(
        conditions,
        [
            json!([
                ["host-header", ["a.example.com"]],
                ["path-pattern", ["/api", "/api/*"]]
            ]),
            json!([["path-pattern", ["/*"]]]),
        ]
    );
    // ExternalDNS takes Ingress rule hosts: an alias to the ALB (its ALB zone), owned by ingress a.
    wait_for("ingress alias", T, || async {
        records(&env, &zone).await.iter().any(|r| {
            r["Name"] == "a.example.com."
                && r["AliasTarget"]["HostedZoneId"] == lb["CanonicalHostedZoneId"]
                && r["AliasTarget"]["DNSName"] == format!("{}.", lb["DNSName"].as_str().unwrap())
        })
    })
    .await;
    assert!(records(&env, &zone).await.iter().any(|r| {
        r["Name"] == "a-a.example.com."
            && r["ResourceRecords"][0]["Value"]
                .as_str()
                .unwrap()
                .ends_with("external-dns/resource=ingress/default/a\"")
    }));
    wait_for("instance target healthy", T, || async {
        health_of(&env, &groups[0]).await == [(i1.clone(), "healthy".to_string())]
    })
    .await;

    // One member leaves: its rule and group go, the ALB stays for the other.
    client
        .delete(&ingresses(), "a", &DeleteOptions::default())
        .await
        .unwrap();
    wait_for("ingress a gone with its group", T, || async {
        client.get_opt(&ingresses(), "a").await.unwrap().is_none() && tgs(&env).await.len() == 1
    })
    .await;
    let (_, rules) = rules_of_listener(&env, &lb["LoadBalancerArn"]).await;
    assert_eq!(rules.len(), 2, "one rule plus the default");
    wait_for("ingress a's records gone", T, || async {
        !records(&env, &zone)
            .await
            .iter()
            .any(|r| r["Name"].as_str().unwrap().contains("a.example.com"))
    })
    .await;
    assert_eq!(lbs(&env).await.len(), 1);
    // The last member leaves: the ALB and groups go.
    client
        .delete(&ingresses(), "b", &DeleteOptions::default())
        .await
        .unwrap();
    wait_for("ALB gone", T, || async {
        client.get_opt(&ingresses(), "b").await.unwrap().is_none()
            && lbs(&env).await.is_empty()
            && tgs(&env).await.is_empty()
    })
    .await;
}

async fn health_of(env: &Env, tg: &Value) -> Vec<(String, String)> {
    let h = env
        .call(
            "elasticloadbalancing",
            "DescribeTargetHealth",
            json!({"TargetGroupArn": tg["TargetGroupArn"]}),
        )
        .await;
    h["TargetHealthDescriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["Target"]["Id"].as_str().unwrap().to_string(),
                d["TargetHealth"]["State"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
