//! End-to-end: `skiff netcheck` (issue 6) with the real aws CLI and kubectl. A VPC, a cluster with a
//! nodegroup, two security groups (the database's admits only members of the client's group on
//! 5432), pods, NetworkPolicies (deny all ingress, then allow the client to web's named port and
//! anyone to the database) and SecurityGroupPolicies giving the client and the database their
//! groups. `skiff netcheck` must print the deciding policy, rule and security group rule and exit
//! 0 / 1 / 2; the gateway's `/_skiff/netcheck` answers the same in JSON.

mod support;

use std::process::{Command, Output};

use support::{Skiff, kubectl, ok, role, text, wait};

const MANIFEST: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: client, labels: {app: client}}
spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Pod
metadata: {name: other, labels: {app: other}}
spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec: {containers: [{name: web, image: nginx, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db, labels: {app: db}}
spec: {containers: [{name: db, image: postgres, ports: [{containerPort: 5432}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: http}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all}
spec: {podSelector: {}, policyTypes: [Ingress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {matchLabels: {app: client}}}], ports: [{port: http}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-db}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{ports: [{port: 5432}]}]
"#;

fn netcheck(skiff: &Skiff, args: &[&str]) -> (i32, String, String) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_skiff"))
        .arg("netcheck")
        .args(args)
        .env("AWS_ENDPOINT_URL", &skiff.gateway)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn create_group(skiff: &Skiff, vpc: &str, name: &str) -> String {
    text(
        skiff,
        &[
            "ec2",
            "create-security-group",
            "--group-name",
            name,
            "--description",
            name,
            "--vpc-id",
            vpc,
            "--query",
            "GroupId",
            "--output",
            "text",
        ],
    )
}

#[test]
fn netcheck_judges_network_policies_and_pod_security_groups() {
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
        subnets.push(text(
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
        ));
    }
    let cluster_role = role(&skiff, "nc-cluster", "eks.amazonaws.com");
    let node_role = role(&skiff, "nc-node", "ec2.amazonaws.com");
    ok(skiff.aws(&[
        "eks",
        "create-cluster",
        "--name",
        "nc",
        "--role-arn",
        &cluster_role,
        "--resources-vpc-config",
        &format!("subnetIds={},{}", subnets[0], subnets[1]),
    ]));
    ok(skiff.aws(&["eks", "wait", "cluster-active", "--name", "nc"]));
    ok(skiff.aws(&[
        "eks",
        "create-nodegroup",
        "--cluster-name",
        "nc",
        "--nodegroup-name",
        "ng",
        "--node-role",
        &node_role,
        "--subnets",
        &subnets[0],
        &subnets[1],
        "--scaling-config",
        "minSize=1,maxSize=2,desiredSize=2",
    ]));
    ok(skiff.aws(&[
        "eks",
        "wait",
        "nodegroup-active",
        "--cluster-name",
        "nc",
        "--nodegroup-name",
        "ng",
    ]));

    // The database's group admits members of the client's group on 5432 only.
    let sg_client = create_group(&skiff, &vpc, "client");
    let sg_db = create_group(&skiff, &vpc, "db");
    ok(skiff.aws(&[
        "ec2",
        "authorize-security-group-ingress",
        "--group-id",
        &sg_db,
        "--protocol",
        "tcp",
        "--port",
        "5432",
        "--source-group",
        &sg_client,
    ]));
    // As EKS's guide for security groups for pods says: let the pods' group into the cluster
    // security group (the nodes' groups), or they cannot reach pods on node ENIs.
    let cluster_sg = text(
        &skiff,
        &[
            "eks",
            "describe-cluster",
            "--name",
            "nc",
            "--query",
            "cluster.resourcesVpcConfig.clusterSecurityGroupId",
            "--output",
            "text",
        ],
    );
    ok(skiff.aws(&[
        "ec2",
        "authorize-security-group-ingress",
        "--group-id",
        &cluster_sg,
        "--protocol",
        "-1",
        "--source-group",
        &sg_client,
    ]));

    let kc = skiff.kubeconfig("nc");
    // EKS installs the SecurityGroupPolicy CRD in every cluster.
    wait("the SecurityGroupPolicy CRD", || {
        kubectl(
            &kc,
            &["get", "crd", "securitygrouppolicies.vpcresources.k8s.aws"],
        )
        .status
        .success()
    });
    let manifest = format!(
        "{MANIFEST}---\napiVersion: vpcresources.k8s.aws/v1beta1\nkind: SecurityGroupPolicy\n\
         metadata: {{name: client-sg}}\nspec: {{podSelector: {{matchLabels: {{app: client}}}}, \
         securityGroups: {{groupIds: [{sg_client}]}}}}\n---\napiVersion: vpcresources.k8s.aws/v1beta1\n\
         kind: SecurityGroupPolicy\nmetadata: {{name: db-sg}}\nspec: {{podSelector: {{matchLabels: \
         {{app: db}}}}, securityGroups: {{groupIds: [{sg_db}]}}}}\n"
    );
    let path = skiff.data_dir.join("netcheck.yaml");
    std::fs::write(&path, manifest).unwrap();
    ok(kubectl(&kc, &["apply", "-f", path.to_str().unwrap()]));
    ok(kubectl(
        &kc,
        &[
            "wait",
            "--for=condition=Ready",
            "pod",
            "--all",
            "--timeout=120s",
        ],
    ));

    // NetworkPolicy: the client may reach web's named port; nobody else may.
    let (code, out, err) = netcheck(&skiff, &["--cluster", "nc", "client", "web:8080"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("ALLOWED default/client -> default/web:8080/TCP\n"),
        "{out}"
    );
    assert!(
        out.contains("ingress: allowed by default/allow-client ingress rule 0"),
        "{out}"
    );
    assert!(
        out.contains("egress: no policy selects the pod (not isolated)"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "ingress: allowed by {cluster_sg} ingress rule sgr-"
        )),
        "the client's branch ENI reaches web through the cluster security group: {out}"
    );

    let (code, out, _) = netcheck(&skiff, &["--cluster", "nc", "default/other", "web:8080"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("DENIED default/other -> default/web:8080/TCP\n"),
        "{out}"
    );
    assert!(
        out.contains("ingress: isolated for ingress by default/allow-client, default/deny-all; no rule allows"),
        "{out}"
    );

    // Through the Service: port 80 is judged as the endpoint's targetPort 8080.
    let (code, out, _) = netcheck(&skiff, &["--cluster", "nc", "client", "svc/default/web:80"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("-> default/web ("), "{out}");
    assert!(out.contains("):8080: allowed"), "{out}");

    // Security groups for pods: NetworkPolicy allows both, the database's group only the client.
    let (code, out, _) = netcheck(&skiff, &["--cluster", "nc", "client", "db:5432"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ingress: allowed by default/allow-db ingress rule 0"),
        "{out}"
    );
    assert!(out.contains("security groups: allowed"), "{out}");
    assert!(
        out.contains(&format!(
            "destination groups {sg_db} from SecurityGroupPolicy default/db-sg"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("ingress: allowed by {sg_db} ingress rule sgr-")),
        "{out}"
    );

    let (code, out, _) = netcheck(&skiff, &["--cluster", "nc", "other", "db:5432"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("ingress: allowed by default/allow-db ingress rule 0"),
        "{out}"
    );
    assert!(out.contains("security groups: denied"), "{out}");
    assert!(
        out.contains(&format!("ingress: no ingress rule of {sg_db}")),
        "{out}"
    );
    assert!(
        out.contains("from node ip-"),
        "the other pod counts with its node's groups: {out}"
    );

    // Errors exit 2 with the reason.
    let (code, _, err) = netcheck(&skiff, &["--cluster", "nc", "ghost", "web:80"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("pods \"ghost\" not found in namespace \"default\""),
        "{err}"
    );
    let (code, _, err) = netcheck(&skiff, &["--cluster", "nope", "client", "web:80"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cluster \"nope\" (region us-east-1) not found"),
        "{err}"
    );
    let (code, _, err) = netcheck(&skiff, &["--cluster", "nc", "client", "web"]);
    assert_eq!(code, 2);
    assert!(err.contains("expected TO:PORT"), "{err}");

    // The API answer names the deciding policy and rule index.
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .arg(format!(
            "{}/_skiff/netcheck?cluster=nc&from=default/client&to=default/web&port=8080",
            skiff.gateway
        ))
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    let (json, status) = body.rsplit_once('\n').unwrap();
    assert_eq!(status, "200", "{body}");
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["allowed"], true);
    assert_eq!(
        v["paths"][0]["ingress"]["allowedBy"],
        serde_json::json!([{"policy": "default/allow-client", "rule": 0}])
    );
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .arg(format!(
            "{}/_skiff/netcheck?cluster=nc&from=default/ghost&to=default/web&port=8080",
            skiff.gateway
        ))
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(body.ends_with("\n404"), "{body}");
    assert!(body.contains("pods \\\"ghost\\\" not found"), "{body}");
}
