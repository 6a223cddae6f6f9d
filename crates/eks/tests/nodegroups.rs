//! Contract of the nodegroup reconciler (issue 4, "Nodegroups and nodes") against a real store and
//! a real control plane: CreateNodegroup → Auto Scaling group → EC2 instances → Ready Nodes →
//! ACTIVE; scaling and label/taint updates reach the Nodes; an instance terminated through EC2 loses
//! its Node and is replaced; a restart re-syncs without duplicates; pod IPs are ENI secondary
//! addresses up to maxPods; DeleteNodegroup drains everything and the tombstone goes.

mod nodegroups_support;

use std::time::Duration;

use nodegroups_support::{Env, wait_for};
use serde_json::{Value, json};
use skiff_eks::pod_network::EksPodNetwork;
use skiff_nodes::{NetworkError, NodeRef, PodNetwork};

const T: Duration = Duration::from_secs(30);

fn label<'a>(node: &'a Value, key: &str) -> &'a str {
    node["metadata"]["labels"][key].as_str().unwrap_or_default()
}

async fn instances_of(env: &Env, ng: &str) -> Vec<Value> {
    let out = env
        .call(
            "ec2",
            "DescribeInstances",
            json!({"Filters": [{"Name": "tag:eks:nodegroup-name", "Values": [ng]},
                               {"Name": "instance-state-name", "Values": ["running", "pending"]}]}),
        )
        .await;
    out["Reservations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["Instances"].as_array().unwrap().clone())
        .collect()
}

async fn wait_nodes(env: &Env, n: usize) {
    wait_for(&format!("{n} nodes"), T, || async move {
        env.nodes("prod").await.len() == n
    })
    .await;
}

async fn wait_status(env: &Env, status: &str) -> Value {
    wait_for(&format!("nodegroup {status}"), T, || async move {
        env.nodegroup("prod", "ng")
            .await
            .is_some_and(|n| n["status"] == status)
    })
    .await;
    env.nodegroup("prod", "ng").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodegroup_becomes_nodes_scales_heals_restarts_and_drains() {
    let mut env = Env::start().await;
    let (subnets, node_role) = env
        .cluster(
            "prod",
            &[("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")],
        )
        .await;
    let created = env
        .call(
            "eks",
            "CreateNodegroup",
            json!({"clusterName": "prod", "nodegroupName": "ng", "nodeRole": node_role,
                   "subnets": subnets, "instanceTypes": ["t3.medium"],
                   "scalingConfig": {"minSize": 1, "maxSize": 6, "desiredSize": 3},
                   "labels": {"team": "a"},
                   "taints": [{"key": "dedicated", "value": "ml", "effect": "NO_SCHEDULE"}]}),
        )
        .await;
    assert_eq!(created["nodegroup"]["status"], "CREATING");
    let ng = wait_status(&env, "ACTIVE").await;
    let asg = ng["resources"]["autoScalingGroups"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let uuid = ng["nodegroupArn"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    assert_eq!(asg, format!("eks-ng-{uuid}"));

    // The Auto Scaling group, with EKS's tags.
    let g = env
        .call(
            "autoscaling",
            "DescribeAutoScalingGroups",
            json!({"AutoScalingGroupNames": [asg]}),
        )
        .await;
    let g = &g["AutoScalingGroups"][0];
    assert_eq!(g["DesiredCapacity"], 3);
    let tag = |k: &str| {
        g["Tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["Key"] == k)
            .map(|t| t["Value"].as_str().unwrap().to_string())
    };
    assert_eq!(tag("eks:cluster-name").as_deref(), Some("prod"));
    assert_eq!(tag("eks:nodegroup-name").as_deref(), Some("ng"));
    assert_eq!(
        tag("k8s.io/cluster-autoscaler/enabled").as_deref(),
        Some("true")
    );
    assert_eq!(
        tag("k8s.io/cluster-autoscaler/prod").as_deref(),
        Some("owned")
    );
    assert_eq!(tag("kubernetes.io/cluster/prod").as_deref(), Some("owned"));

    // Its instances: in the nodegroup's subnets, t3.medium, with the instance profile.
    let insts = instances_of(&env, "ng").await;
    assert_eq!(insts.len(), 3);
    for i in &insts {
        assert!(subnets.contains(&i["SubnetId"].as_str().unwrap().to_string()));
        assert_eq!(i["InstanceType"], "t3.medium");
        assert_eq!(
            i["IamInstanceProfile"]["Arn"],
            format!("arn:aws:iam::000000000000:instance-profile/eks-{uuid}")
        );
    }

    // One Ready Node per instance, named and labelled as on EKS.
    let nodes = env.nodes("prod").await;
    assert_eq!(nodes.len(), 3);
    for i in &insts {
        let name = i["PrivateDnsName"].as_str().unwrap();
        assert!(name.ends_with(".ec2.internal"), "{name}");
        let n = nodes
            .iter()
            .find(|n| n["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no node {name}"));
        assert_eq!(
            n["spec"]["providerID"],
            format!(
                "aws:///{}/{}",
                i["Placement"]["AvailabilityZone"].as_str().unwrap(),
                i["InstanceId"].as_str().unwrap()
            )
        );
        assert_eq!(label(n, "eks.amazonaws.com/nodegroup"), "ng");
        assert_eq!(label(n, "node.kubernetes.io/instance-type"), "t3.medium");
        assert_eq!(label(n, "team"), "a");
        assert_eq!(
            label(n, "topology.kubernetes.io/zone"),
            i["Placement"]["AvailabilityZone"].as_str().unwrap()
        );
        assert_eq!(
            label(n, "eks.amazonaws.com/nodegroup-image"),
            i["ImageId"].as_str().unwrap()
        );
        assert_eq!(
            n["spec"]["taints"],
            json!([{"key": "dedicated", "value": "ml", "effect": "NoSchedule"}])
        );
        assert_eq!(n["status"]["capacity"]["pods"], "17");
        assert_eq!(n["status"]["allocatable"]["cpu"], "1930m");
        assert_eq!(
            n["status"]["addresses"][0]["address"],
            i["PrivateIpAddress"]
        );
    }

    // Scale to 5 and change labels: the update completes when the Nodes match.
    let u = env
        .call(
            "eks",
            "UpdateNodegroupConfig",
            json!({"clusterName": "prod", "nodegroupName": "ng",
                   "scalingConfig": {"desiredSize": 5},
                   "labels": {"addOrUpdateLabels": {"env": "prod"}, "removeLabels": ["team"]}}),
        )
        .await;
    let update_id = u["update"]["id"].as_str().unwrap().to_string();
    wait_nodes(&env, 5).await;
    wait_status(&env, "ACTIVE").await;
    let d = env
        .call(
            "eks",
            "DescribeUpdate",
            json!({"name": "prod", "nodegroupName": "ng", "updateId": update_id}),
        )
        .await;
    assert_eq!(d["update"]["status"], "Successful");
    for n in env.nodes("prod").await {
        assert_eq!(label(&n, "env"), "prod");
        assert_eq!(
            label(&n, "team"),
            "",
            "removed label still on {}",
            n["metadata"]["name"]
        );
    }

    // An instance terminated through EC2 loses its Node and AutoScaling replaces it.
    let victim = instances_of(&env, "ng").await[0]["InstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    env.call(
        "ec2",
        "TerminateInstances",
        json!({"InstanceIds": [victim.clone()]}),
    )
    .await;
    wait_for(
        "the terminated instance's Node to go and a replacement's to come",
        T,
        || {
            let (env, victim) = (&env, victim.clone());
            async move {
                let nodes = env.nodes("prod").await;
                nodes.len() == 5
                    && !nodes.iter().any(|n| {
                        n["spec"]["providerID"]
                            .as_str()
                            .unwrap_or_default()
                            .ends_with(&victim)
                    })
                    && instances_of(env, "ng").await.len() == 5
            }
        },
    )
    .await;

    // Restart: the same instances and Nodes come back, nothing twice.
    let before: Vec<String> = env
        .nodes("prod")
        .await
        .iter()
        .map(|n| n["metadata"]["uid"].as_str().unwrap().to_string())
        .collect();
    env.restart().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = env.nodes("prod").await;
    assert_eq!(after.len(), 5);
    for n in &after {
        assert!(before.contains(&n["metadata"]["uid"].as_str().unwrap().to_string()));
    }
    assert_eq!(instances_of(&env, "ng").await.len(), 5);

    // Pod IPs: secondary addresses of the node's interfaces, 15 on a t3.medium (3 ENIs × 5).
    let node = &after[0];
    let node_ref = NodeRef {
        name: node["metadata"]["name"].as_str().unwrap().to_string(),
        provider_id: node["spec"]["providerID"].as_str().map(str::to_string),
        internal_ip: node["status"]["addresses"][0]["address"]
            .as_str()
            .map(str::to_string),
    };
    let cluster_id = skiff_eks::cluster_dir::read_record(env.dir.path(), "prod")
        .unwrap()
        .unwrap()
        .id;
    let net = EksPodNetwork::new(env.store.clone(), "000000000000", "us-east-1", &cluster_id);
    let mut ips = Vec::new();
    for i in 0..15 {
        ips.push(net.assign(&node_ref, &format!("pod-{i}")).await.unwrap());
    }
    assert_eq!(
        net.assign(&node_ref, "pod-3").await.unwrap(),
        ips[3],
        "same pod, same IP"
    );
    let mut unique = ips.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 15);
    match net.assign(&node_ref, "pod-15").await {
        Err(NetworkError::Exhausted(_)) => {}
        other => panic!("expected exhaustion, got {other:?}"),
    }
    let instance =
        skiff_eks::node_object::instance_of_provider_id(node_ref.provider_id.as_deref().unwrap())
            .unwrap()
            .to_string();
    let enis = env
        .call(
            "ec2",
            "DescribeNetworkInterfaces",
            json!({"Filters": [{"Name": "attachment.instance-id", "Values": [instance]}]}),
        )
        .await;
    let enis = enis["NetworkInterfaces"].as_array().unwrap();
    assert_eq!(enis.len(), 3);
    let held: Vec<String> = enis
        .iter()
        .flat_map(|e| e["PrivateIpAddresses"].as_array().unwrap().clone())
        .filter(|a| a["Primary"] == false)
        .map(|a| a["PrivateIpAddress"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(held.len(), 15);
    for ip in &ips {
        assert!(held.contains(ip), "{ip} not on the node's interfaces");
    }
    net.release(&node_ref, "pod-0").await;
    assert_eq!(net.assign(&node_ref, "pod-15").await.unwrap(), ips[0]);

    // Delete: DELETING, then instances terminated, Nodes, group and record gone.
    let del = env
        .call(
            "eks",
            "DeleteNodegroup",
            json!({"clusterName": "prod", "nodegroupName": "ng"}),
        )
        .await;
    assert_eq!(del["nodegroup"]["status"], "DELETING");
    wait_for("the nodegroup to be gone", T, || async {
        env.nodegroup("prod", "ng").await.is_none()
    })
    .await;
    assert!(env.nodes("prod").await.is_empty());
    assert!(instances_of(&env, "ng").await.is_empty());
    let g = env
        .call(
            "autoscaling",
            "DescribeAutoScalingGroups",
            json!({"AutoScalingGroupNames": [asg]}),
        )
        .await;
    assert_eq!(g["AutoScalingGroups"], json!([]));
    let lts = env.call("ec2", "DescribeLaunchTemplates", json!({})).await;
    assert!(
        !lts["LaunchTemplates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["LaunchTemplateName"] == format!("eks-{uuid}")),
        "the EKS launch template is left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_launch_template_and_scale_in_through_autoscaling() {
    let env = Env::start().await;
    let (subnets, node_role) = env
        .cluster(
            "prod",
            &[("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")],
        )
        .await;
    let subnets = &subnets[..1];
    let subnet = env
        .call("ec2", "DescribeSubnets", json!({"SubnetIds": [subnets[0]]}))
        .await;
    let vpc = subnet["Subnets"][0]["VpcId"].clone();
    let sg = env
        .call(
            "ec2",
            "DescribeSecurityGroups",
            json!({"Filters": [{"Name": "group-name", "Values": ["default"]},
                               {"Name": "vpc-id", "Values": [vpc]}]}),
        )
        .await;
    let sg = sg["SecurityGroups"][0]["GroupId"]
        .as_str()
        .unwrap()
        .to_string();
    env.call(
        "ec2",
        "CreateLaunchTemplate",
        json!({"LaunchTemplateName": "mine", "LaunchTemplateData": {
            "InstanceType": "m5.large", "SecurityGroupIds": [sg],
            "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 50}}],
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "owner", "Value": "me"}]}]}}),
    )
    .await;
    env.call(
        "eks",
        "CreateNodegroup",
        json!({"clusterName": "prod", "nodegroupName": "ng", "nodeRole": node_role,
               "subnets": subnets, "launchTemplate": {"name": "mine"},
               "scalingConfig": {"minSize": 0, "maxSize": 4, "desiredSize": 2}}),
    )
    .await;
    let ng = wait_status(&env, "ACTIVE").await;
    let insts = instances_of(&env, "ng").await;
    assert_eq!(insts.len(), 2);
    for i in &insts {
        assert_eq!(i["InstanceType"], "m5.large");
        assert_eq!(i["SecurityGroups"][0]["GroupId"], sg.as_str());
        assert!(
            i["Tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["Key"] == "owner")
        );
    }
    let nodes = env.nodes("prod").await;
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0]["status"]["capacity"]["pods"], "29");

    // cluster-autoscaler's way: the group's desired capacity, not the nodegroup's.
    let asg = ng["resources"]["autoScalingGroups"][0]["name"].clone();
    env.call(
        "autoscaling",
        "SetDesiredCapacity",
        json!({"AutoScalingGroupName": asg, "DesiredCapacity": 1}),
    )
    .await;
    wait_nodes(&env, 1).await;
    assert_eq!(instances_of(&env, "ng").await.len(), 1);
    // describe-nodegroup follows the group, and a later config update keeps that size.
    let ng = env.nodegroup("prod", "ng").await.unwrap();
    assert_eq!(ng["scalingConfig"]["desiredSize"], 1, "{ng}");
    env.call(
        "eks",
        "UpdateNodegroupConfig",
        json!({"clusterName": "prod", "nodegroupName": "ng", "scalingConfig": {"maxSize": 4}}),
    )
    .await;
    let ng = wait_status(&env, "ACTIVE").await;
    assert_eq!(
        (
            ng["scalingConfig"]["desiredSize"].clone(),
            ng["scalingConfig"]["maxSize"].clone()
        ),
        (json!(1), json!(4))
    );
    assert_eq!(instances_of(&env, "ng").await.len(), 1);
}
