//! End-to-end: the built-in AWS Load Balancer Controller and ExternalDNS (issue 6) with the real
//! aws CLI and kubectl: a VPC with subnets tagged for internal load balancers, a cluster and a
//! nodegroup; `kubectl apply` of a Deployment and a LoadBalancer Service → `kubectl get svc` shows
//! the NLB's hostname, and `aws elbv2 describe-load-balancers/target-groups/target-health` agree
//! (one instance target per node, on the NodePort, healthy); the ExternalDNS annotation puts an
//! alias in `aws route53 list-resource-record-sets`; `kubectl delete svc` returns once the
//! finalizer has removed the LB, and the records go with it.

mod support;

use serde_json::Value;
use support::{Skiff, json, kubectl, ok, role, text, wait};

const MANIFEST: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-type: external
    service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: instance
    external-dns.alpha.kubernetes.io/hostname: web.example.com
spec:
  type: LoadBalancer
  selector: {app: web}
  ports:
  - name: http
    port: 80
    targetPort: 8080
"#;

#[test]
fn load_balancer_service_to_nlb_and_dns_with_aws_cli_and_kubectl() {
    let skiff = Skiff::start(&[]);
    let vpc = text(
        &skiff,
        &[
            "ec2",
            "create-vpc",
            "--cidr-block",
            "10.0.0.0/16",
            "--query",
            "Vpc.VpcId",
            "--output",
            "text",
        ],
    );
    let mut subnets = Vec::new();
    for (cidr, az) in [("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")] {
        let id = text(
            &skiff,
            &[
                "ec2",
                "create-subnet",
                "--vpc-id",
                &vpc,
                "--cidr-block",
                cidr,
                "--availability-zone",
                az,
                "--query",
                "Subnet.SubnetId",
                "--output",
                "text",
            ],
        );
        ok(skiff.aws(&[
            "ec2",
            "create-tags",
            "--resources",
            &id,
            "--tags",
            "Key=kubernetes.io/role/internal-elb,Value=1",
            "Key=kubernetes.io/cluster/prod,Value=shared",
        ]));
        subnets.push(id);
    }
    let cluster_role = role(&skiff, "prod-cluster", "eks.amazonaws.com");
    let node_role = role(&skiff, "prod-node", "ec2.amazonaws.com");
    ok(skiff.aws(&[
        "eks",
        "create-cluster",
        "--name",
        "prod",
        "--role-arn",
        &cluster_role,
        "--resources-vpc-config",
        &format!("subnetIds={},{}", subnets[0], subnets[1]),
    ]));
    ok(skiff.aws(&["eks", "wait", "cluster-active", "--name", "prod"]));
    ok(skiff.aws(&[
        "eks",
        "create-nodegroup",
        "--cluster-name",
        "prod",
        "--nodegroup-name",
        "ng",
        "--node-role",
        &node_role,
        "--subnets",
        &subnets[0],
        &subnets[1],
        "--scaling-config",
        "minSize=1,maxSize=3,desiredSize=2",
    ]));
    ok(skiff.aws(&[
        "eks",
        "wait",
        "nodegroup-active",
        "--cluster-name",
        "prod",
        "--nodegroup-name",
        "ng",
    ]));
    let zone = text(
        &skiff,
        &[
            "route53",
            "create-hosted-zone",
            "--name",
            "example.com",
            "--caller-reference",
            "z1",
            "--query",
            "HostedZone.Id",
            "--output",
            "text",
        ],
    );
    let kc = skiff.kubeconfig("prod");
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("web.yaml");
    std::fs::write(&manifest, MANIFEST).unwrap();
    ok(kubectl(&kc, &["apply", "-f", manifest.to_str().unwrap()]));

    let mut hostname = String::new();
    wait("the Service's LB hostname", || {
        hostname = ok(kubectl(
            &kc,
            &[
                "get",
                "svc",
                "web",
                "-o",
                "jsonpath={.status.loadBalancer.ingress[0].hostname}",
            ],
        ));
        !hostname.is_empty()
    });
    let table = ok(kubectl(&kc, &["get", "svc", "web"]));
    assert!(table.contains(&hostname), "{table}");
    let node_port = ok(kubectl(
        &kc,
        &[
            "get",
            "svc",
            "web",
            "-o",
            "jsonpath={.spec.ports[0].nodePort}",
        ],
    ));

    let lbs = json(&skiff, &["elbv2", "describe-load-balancers"]);
    let lb = &lbs["LoadBalancers"][0];
    assert_eq!(lbs["LoadBalancers"].as_array().unwrap().len(), 1);
    assert_eq!(lb["DNSName"], hostname.as_str());
    assert_eq!(lb["Type"], "network");
    assert_eq!(lb["Scheme"], "internal");
    assert_eq!(lb["VpcId"], vpc.as_str());
    assert!(
        lb["LoadBalancerName"]
            .as_str()
            .unwrap()
            .starts_with("k8s-default-web-")
    );
    let lb_arn = lb["LoadBalancerArn"].as_str().unwrap().to_string();
    let tgs = json(
        &skiff,
        &[
            "elbv2",
            "describe-target-groups",
            "--load-balancer-arn",
            &lb_arn,
        ],
    );
    let tg = &tgs["TargetGroups"][0];
    assert_eq!(tg["TargetType"], "instance");
    assert_eq!(tg["Protocol"], "TCP");
    assert_eq!(tg["Port"].to_string(), node_port);
    let tg_arn = tg["TargetGroupArn"].as_str().unwrap().to_string();
    let listeners = json(
        &skiff,
        &[
            "elbv2",
            "describe-listeners",
            "--load-balancer-arn",
            &lb_arn,
        ],
    );
    assert_eq!(listeners["Listeners"][0]["Port"], 80);

    // One target per node, the node's instance on the NodePort, healthy while the node is Ready.
    let nodes: Value =
        serde_json::from_str(&ok(kubectl(&kc, &["get", "nodes", "-o", "json"]))).unwrap();
    let mut instances: Vec<String> = nodes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let p = n["spec"]["providerID"].as_str().unwrap();
            p.rsplit('/').next().unwrap().to_string()
        })
        .collect();
    instances.sort();
    assert_eq!(instances.len(), 2);
    let mut health = Value::Null;
    wait("two healthy targets", || {
        health = json(
            &skiff,
            &[
                "elbv2",
                "describe-target-health",
                "--target-group-arn",
                &tg_arn,
            ],
        );
        let d = health["TargetHealthDescriptions"].as_array().unwrap();
        let mut ids: Vec<String> = d
            .iter()
            .map(|t| t["Target"]["Id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids == instances && d.iter().all(|t| t["TargetHealth"]["State"] == "healthy")
    });
    for t in health["TargetHealthDescriptions"].as_array().unwrap() {
        assert_eq!(t["Target"]["Port"].to_string(), node_port);
    }
    let events = ok(kubectl(
        &kc,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=web",
        ],
    ));
    assert!(events.contains("SuccessfullyReconciled"), "{events}");

    // ExternalDNS: the alias to the NLB and its TXT owner record.
    let records = |skiff: &Skiff| {
        json(
            skiff,
            &[
                "route53",
                "list-resource-record-sets",
                "--hosted-zone-id",
                &zone,
            ],
        )["ResourceRecordSets"]
            .as_array()
            .unwrap()
            .clone()
    };
    wait("the alias record", || {
        records(&skiff).iter().any(|r| {
            r["Name"] == "web.example.com."
                && r["Type"] == "A"
                && r["AliasTarget"]["DNSName"] == format!("{hostname}.")
                && r["AliasTarget"]["HostedZoneId"] == lb["CanonicalHostedZoneId"]
        })
    });
    assert!(records(&skiff).iter().any(|r| {
        r["Name"] == "a-web.example.com."
            && r["Type"] == "TXT"
            && r["ResourceRecords"][0]["Value"]
                .as_str()
                .unwrap()
                .contains("external-dns/owner=prod")
    }));

    // kubectl delete waits on the finalizer: when it returns, the LB and group are gone.
    ok(kubectl(&kc, &["delete", "svc", "web", "--timeout=30s"]));
    let lbs = json(&skiff, &["elbv2", "describe-load-balancers"]);
    assert_eq!(lbs["LoadBalancers"], serde_json::json!([]));
    let tgs = json(&skiff, &["elbv2", "describe-target-groups"]);
    assert_eq!(tgs["TargetGroups"], serde_json::json!([]));
    wait("records removed", || {
        !records(&skiff)
            .iter()
            .any(|r| r["Name"].as_str().unwrap().contains("web.example.com"))
    });
}
