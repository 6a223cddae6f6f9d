//! Shared by the nodegroup contract tests and the nodegroup benchmark: a real embedded store, the
//! cluster and nodegroup reconcilers, and an EKS cluster with its VPC made through the AWS domain.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use skiff_aws::context::RequestContext;
use skiff_eks::cluster_lifecycle::ClusterLifecycle;
use skiff_eks::control_plane::ControlPlanes;
use skiff_eks::nodegroups::NodegroupReconciler;
use skiff_k8s_core::client::{ApiClient, ListOptions, ResourceRef};
use skiff_store::Store;

pub struct Env {
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    pub planes: Arc<ControlPlanes>,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
    pub ctx: RequestContext,
}

impl Env {
    pub async fn start() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = skiff_store::open("embedded", dir.path()).await.unwrap();
        let mut env = Env {
            planes: Arc::new(ControlPlanes::new(
                store.clone(),
                dir.path().to_path_buf(),
                0,
            )),
            ctx: root_ctx(store.clone()),
            store,
            dir,
            tasks: Vec::new(),
        };
        env.start_reconcilers().await;
        env
    }

    /// Both reconcilers: sync (as `skiff up` does), then follow the store.
    pub async fn start_reconcilers(&mut self) {
        let lifecycle = ClusterLifecycle::new(self.store.clone(), self.planes.clone());
        let from = lifecycle.sync().await.unwrap();
        self.tasks.push(tokio::spawn(lifecycle.run(from)));
        let nodegroups = NodegroupReconciler::new(self.store.clone(), self.planes.clone());
        let from = nodegroups.sync().await.unwrap();
        self.tasks.push(tokio::spawn(nodegroups.run(from)));
    }

    /// What a `skiff up` restart does: stop everything, then start on the same store and files.
    pub async fn restart(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        self.planes.shutdown().await;
        self.planes = Arc::new(ControlPlanes::new(
            self.store.clone(),
            self.dir.path().to_path_buf(),
            0,
        ));
        self.planes.restore_all().await.unwrap();
        self.start_reconcilers().await;
    }

    pub async fn call(&self, service: &str, op: &str, input: Value) -> Value {
        skiff_aws::dispatch(&self.ctx, service, op, input)
            .await
            .unwrap_or_else(|e| panic!("{service} {op}: {e:?}"))
    }

    /// VPC with one subnet per (cidr, zone), roles, and an ACTIVE cluster `name`. Returns the subnet
    /// ids and the node role's ARN.
    pub async fn cluster(&self, name: &str, subnets: &[(&str, &str)]) -> (Vec<String>, String) {
        let vpc = self
            .call("ec2", "CreateVpc", json!({"CidrBlock": "10.0.0.0/16"}))
            .await;
        let vpc = vpc["Vpc"]["VpcId"].as_str().unwrap().to_string();
        let mut ids = Vec::new();
        for (cidr, az) in subnets {
            let s = self
                .call(
                    "ec2",
                    "CreateSubnet",
                    json!({"VpcId": vpc, "CidrBlock": cidr, "AvailabilityZone": az}),
                )
                .await;
            ids.push(s["Subnet"]["SubnetId"].as_str().unwrap().to_string());
        }
        // EKS wants subnets in two zones: a second zone's subnet is added for the cluster only
        // when the caller gave one zone (the returned ids stay the caller's).
        let mut cluster_subnets = ids.clone();
        let zones: std::collections::BTreeSet<&str> = subnets.iter().map(|s| s.1).collect();
        if zones.len() < 2 {
            let az = if zones.contains("us-east-1f") {
                "us-east-1e"
            } else {
                "us-east-1f"
            };
            let s = self
                .call(
                    "ec2",
                    "CreateSubnet",
                    json!({"VpcId": vpc, "CidrBlock": "10.0.250.0/24", "AvailabilityZone": az}),
                )
                .await;
            cluster_subnets.push(s["Subnet"]["SubnetId"].as_str().unwrap().to_string());
        }
        let trust = |svc: &str| {
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": svc}, "Action": "sts:AssumeRole"}]})
            .to_string()
        };
        let role = self
            .call(
                "iam",
                "CreateRole",
                json!({"RoleName": format!("{name}-cluster"), "AssumeRolePolicyDocument": trust("eks.amazonaws.com")}),
            )
            .await;
        let node_role = self
            .call(
                "iam",
                "CreateRole",
                json!({"RoleName": format!("{name}-node"), "AssumeRolePolicyDocument": trust("ec2.amazonaws.com")}),
            )
            .await;
        self.call(
            "eks",
            "CreateCluster",
            json!({"name": name, "roleArn": role["Role"]["Arn"],
                   "resourcesVpcConfig": {"subnetIds": cluster_subnets}}),
        )
        .await;
        let store = self.store.clone();
        let name = name.to_string();
        wait_for("cluster ACTIVE", Duration::from_secs(30), || {
            let (store, name) = (store.clone(), name.clone());
            async move {
                skiff_aws::eks::get_cluster(&*store, "000000000000", "us-east-1", &name)
                    .await
                    .unwrap()
                    .is_some_and(|c| c["status"] == "ACTIVE")
            }
        })
        .await;
        (ids, node_role["Role"]["Arn"].as_str().unwrap().to_string())
    }

    pub async fn nodegroup(&self, cluster: &str, name: &str) -> Option<Value> {
        skiff_aws::eks::dispatch(
            &self.ctx,
            "DescribeNodegroup",
            json!({"clusterName": cluster, "nodegroupName": name}),
        )
        .await
        .ok()
        .map(|v| v["nodegroup"].clone())
    }

    pub async fn nodes(&self, cluster: &str) -> Vec<Value> {
        let Some(client) = self.planes.client(cluster, "test").await else {
            return Vec::new();
        };
        client
            .list(
                &ResourceRef::new("", "v1", "nodes"),
                &ListOptions::default(),
            )
            .await
            .unwrap()
            .items
    }

    pub async fn client(&self, cluster: &str) -> Arc<dyn ApiClient> {
        self.planes.client(cluster, "test").await.unwrap()
    }
}

/// The default account's root user in us-east-1.
pub fn root_ctx(store: Arc<dyn Store>) -> RequestContext {
    let mut c = skiff_eks::service_context::service_context(store, "000000000000", "us-east-1");
    c.caller.arn = "arn:aws:iam::000000000000:root".into();
    c.caller.user_id = "000000000000".into();
    c
}

/// Poll `check` every 10 ms until it holds; panics after `timeout`.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
