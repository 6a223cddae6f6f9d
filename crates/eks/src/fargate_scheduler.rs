//! The Fargate scheduler of one EKS cluster: Fargate profiles `CREATING` → `ACTIVE` and `DELETING` →
//! gone, and each pod the webhook ([`crate::fargate`]) handed to `fargate-scheduler` gets a VM of
//! its own: an ENI in one of its profile's subnets (whose address becomes the pod's IP), a Node
//! `fargate-ip-10-0-1-23.ec2.internal` sized to the pod (a Fargate vCPU/memory combination, written
//! on the pod as `CapacityProvisioned`), tainted `eks.amazonaws.com/compute-type=fargate:NoSchedule`,
//! run by the simulated kubelet, and the pod bound to it. When the pod is gone its Node and ENI go.
//!
//! The loop converges on every pod or Node event and on a short tick (profiles live in the AWS
//! store, not in the cluster): each pass lists the cluster's pods and Fargate Nodes once.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use skiff_aws::context::RequestContext;
use skiff_aws_model::AwsError;
use skiff_k8s_core::client::{
    ApiClient, DeleteOptions, ListOptions, PatchOptions, ResourceRef, WatchOptions, WriteOptions,
};
use skiff_k8s_core::patch::PatchType;
use skiff_k8s_core::status::ApiError;
use skiff_store::{Op, Precondition, Store};
use tokio::sync::watch;

use crate::cluster_dir::EksBinding;
use crate::fargate::{
    CAPACITY_ANNOTATION, COMPUTE_TYPE_LABEL, FARGATE_SCHEDULER, OVERHEAD_MIB, PROFILE_LABEL,
    capacity_text, fargate_size, pod_requests,
};
use crate::service_context::service_context;

/// The identity the Fargate scheduler writes as.
pub const USER: &str = "eks:fargate-scheduler";
/// Node annotation: the uid of the pod the Fargate Node was made for.
pub const POD_UID_ANNOTATION: &str = "skiff.dev/fargate-pod-uid";
/// Node annotation: the ENI of the Fargate Node.
pub const ENI_ANNOTATION: &str = "skiff.dev/fargate-eni";
/// ENI tag naming the pod (uid) it was made for, so a retried placement reuses it.
const ENI_POD_TAG: &str = "eks:fargate-pod-uid";
/// How often profiles are looked at when nothing happens in the cluster.
const TICK: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum FargateError {
    #[error("{0}")]
    Aws(#[from] AwsError),
    #[error("cluster API: {0}")]
    Api(#[from] ApiError),
    #[error("store: {0}")]
    Store(#[from] skiff_store::StoreError),
}

fn pods() -> ResourceRef {
    ResourceRef::new("", "v1", "pods")
}

fn nodes() -> ResourceRef {
    ResourceRef::new("", "v1", "nodes")
}

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

/// `fargate-ip-10-0-1-23.ec2.internal`.
pub fn node_name(region: &str, ip: Ipv4Addr) -> String {
    format!("fargate-{}", skiff_aws::ec2::private_dns_name(region, ip))
}

/// The scheduler of one cluster.
pub struct FargateScheduler {
    client: Arc<dyn ApiClient>,
    store: Arc<dyn Store>,
    binding: EksBinding,
    cluster_id: String,
    kubernetes_version: String,
}

/// Runs the Fargate scheduler until `shutdown` flips.
pub async fn run(
    client: Arc<dyn ApiClient>,
    store: Arc<dyn Store>,
    binding: EksBinding,
    cluster_id: String,
    kubernetes_version: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let sched = FargateScheduler {
        client,
        store,
        binding,
        cluster_id,
        kubernetes_version,
    };
    loop {
        let stream = sched.client.watch(&pods(), &WatchOptions::default()).await;
        let mut stream = match stream {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "fargate scheduler: watching pods");
                None
            }
        };
        loop {
            if let Err(e) = sched.reconcile().await {
                tracing::warn!(cluster = %sched.binding.name, error = %e, "fargate scheduler pass failed");
            }
            let ended = tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(TICK) => false,
                ev = async {
                    match stream.as_mut() {
                        Some(s) => s.next().await,
                        None => std::future::pending().await,
                    }
                } => ev.is_none(),
            };
            if *shutdown.borrow() {
                return;
            }
            if ended {
                break;
            }
        }
    }
}

impl FargateScheduler {
    fn ctx(&self) -> RequestContext {
        service_context(
            self.store.clone(),
            &self.binding.account,
            &self.binding.region,
        )
    }

    /// One pass: profiles, pending Fargate pods, Fargate Nodes whose pod is gone.
    pub async fn reconcile(&self) -> Result<(), FargateError> {
        let ctx = self.ctx();
        let b = &self.binding;
        let profiles = skiff_aws::eks::list_fargate_profile_records(
            &*self.store,
            &b.account,
            &b.region,
            &b.name,
        )
        .await?;
        let all_pods = self
            .client
            .list(&pods(), &ListOptions::default())
            .await?
            .items;
        let fargate_nodes = self
            .client
            .list(
                &nodes(),
                &ListOptions {
                    label_selector: Some(format!("{COMPUTE_TYPE_LABEL}=fargate")),
                    ..ListOptions::default()
                },
            )
            .await?
            .items;
        let mut deleting = BTreeSet::new();
        for p in &profiles {
            let name = s(p, "/fargateProfileName");
            match s(p, "/status") {
                "CREATING" => {
                    skiff_aws::eks::set_fargate_profile_status(
                        &*self.store,
                        &b.account,
                        &b.region,
                        &b.name,
                        name,
                        "ACTIVE",
                    )
                    .await?;
                    tracing::info!(cluster = %b.name, profile = name, "fargate profile active");
                }
                "DELETING" => {
                    deleting.insert(name.to_string());
                }
                _ => {}
            }
        }
        // A deleted profile's pods go with it (EKS deletes them), then the profile.
        for name in &deleting {
            let mut left = 0;
            for pod in all_pods.iter().filter(|p| s(p, &label_path()) == name) {
                left += 1;
                let (ns, pn) = (s(pod, "/metadata/namespace"), s(pod, "/metadata/name"));
                if pod["metadata"]["deletionTimestamp"].is_null() {
                    match self
                        .client
                        .delete(&pods().in_namespace(ns), pn, &DeleteOptions::default())
                        .await
                    {
                        Ok(_) | Err(ApiError::NotFound { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            if left == 0
                && !fargate_nodes
                    .iter()
                    .any(|n| s(n, &label_path()) == name.as_str())
            {
                skiff_aws::eks::fargate_profiles::forget_fargate_profile(
                    &*self.store,
                    &b.account,
                    &b.region,
                    &b.name,
                    name,
                )
                .await?;
                tracing::info!(cluster = %b.name, profile = %name, "fargate profile deleted");
            }
        }
        let live_uids: BTreeMap<&str, &Value> = all_pods
            .iter()
            .map(|p| (s(p, "/metadata/uid"), p))
            .collect();
        for node in &fargate_nodes {
            let uid = node["metadata"]["annotations"][POD_UID_ANNOTATION]
                .as_str()
                .unwrap_or_default();
            let gone = live_uids.get(uid).is_none_or(|p| {
                p["status"]["phase"] == "Succeeded" || p["status"]["phase"] == "Failed"
            });
            if gone {
                self.remove_node(&ctx, node).await?;
            }
        }
        for pod in &all_pods {
            if s(pod, "/spec/schedulerName") == FARGATE_SCHEDULER
                && s(pod, "/spec/nodeName").is_empty()
                && pod["metadata"]["deletionTimestamp"].is_null()
            {
                let profile = profiles
                    .iter()
                    .find(|p| s(p, "/fargateProfileName") == s(pod, &label_path()));
                match profile {
                    Some(p) if p["status"] == "ACTIVE" => {
                        if let Err(e) = self.place(&ctx, pod, p).await {
                            tracing::warn!(pod = s(pod, "/metadata/name"), error = %e, "fargate placement failed");
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Deletes a Fargate Node and its ENI.
    async fn remove_node(&self, ctx: &RequestContext, node: &Value) -> Result<(), FargateError> {
        let name = s(node, "/metadata/name");
        match self
            .client
            .delete(&nodes(), name, &DeleteOptions::default())
            .await
        {
            Ok(_) | Err(ApiError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let eni = node["metadata"]["annotations"][ENI_ANNOTATION]
            .as_str()
            .unwrap_or_default();
        if !eni.is_empty() {
            match skiff_aws::ec2::dispatch(
                ctx,
                "DeleteNetworkInterface",
                json!({"NetworkInterfaceId": eni}),
            )
            .await
            {
                Ok(_) => {}
                Err(e) if e.code.starts_with("InvalidNetworkInterfaceID") => {}
                Err(e) => return Err(e.into()),
            }
        }
        tracing::info!(cluster = %self.binding.name, node = name, "fargate node removed");
        Ok(())
    }

    /// The ENI made for the pod (made now when there is none), in one of the profile's subnets.
    async fn pod_eni(
        &self,
        ctx: &RequestContext,
        pod: &Value,
        profile: &Value,
    ) -> Result<Option<Value>, FargateError> {
        let uid = s(pod, "/metadata/uid");
        let found = skiff_aws::ec2::dispatch(
            ctx,
            "DescribeNetworkInterfaces",
            json!({"Filters": [{"Name": format!("tag:{ENI_POD_TAG}"), "Values": [uid]}]}),
        )
        .await?;
        if let Some(eni) = found["NetworkInterfaces"]
            .as_array()
            .and_then(|a| a.first())
        {
            return Ok(Some(eni.clone()));
        }
        let subnets: Vec<&str> = profile["subnets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if subnets.is_empty() {
            return Ok(None);
        }
        // Spread pods over the profile's subnets (and so its zones) by uid.
        let pick = uid
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
        let subnet = subnets[pick % subnets.len()];
        let ns = s(pod, "/metadata/namespace");
        let name = s(pod, "/metadata/name");
        let out = skiff_aws::ec2::dispatch(
            ctx,
            "CreateNetworkInterface",
            json!({"SubnetId": subnet,
                "Description": format!("[EKS] fargate pod {ns}/{name}"),
                "TagSpecifications": [{"ResourceType": "network-interface", "Tags": [
                    {"Key": "eks:cluster-name", "Value": self.binding.name},
                    {"Key": "eks:fargate-profile", "Value": profile["fargateProfileName"]},
                    {"Key": ENI_POD_TAG, "Value": uid}]}]}),
        )
        .await?;
        Ok(Some(out["NetworkInterface"].clone()))
    }

    /// Gives one pending Fargate pod its ENI, Node, capacity annotation and binding.
    async fn place(
        &self,
        ctx: &RequestContext,
        pod: &Value,
        profile: &Value,
    ) -> Result<(), FargateError> {
        let (cpu, mem) = pod_requests(pod);
        let ns = s(pod, "/metadata/namespace");
        let name = s(pod, "/metadata/name");
        let Some((cpu, mem)) = fargate_size(cpu, mem + OVERHEAD_MIB) else {
            tracing::warn!(pod = name, "pod requests exceed the largest Fargate size");
            return Ok(());
        };
        let Some(eni) = self.pod_eni(ctx, pod, profile).await? else {
            return Ok(());
        };
        let Ok(ip) = s(&eni, "/PrivateIpAddress").parse::<Ipv4Addr>() else {
            return Ok(());
        };
        let zone = s(&eni, "/AvailabilityZone");
        let eni_id = s(&eni, "/NetworkInterfaceId");
        let node = node_name(&self.binding.region, ip);
        let profile_name = s(profile, "/fargateProfileName");
        let built = self.build_node(
            &node,
            &ip.to_string(),
            zone,
            eni_id,
            profile_name,
            pod,
            (cpu, mem),
        );
        match self
            .client
            .create(&nodes(), built, &WriteOptions::default())
            .await
        {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        // The pod's IP is the ENI's: recorded where the VPC CNI looks, so the kubelet uses it.
        let key = crate::pod_network::pod_ip_key(
            &self.binding.account,
            &self.binding.region,
            &self.cluster_id,
            s(pod, "/metadata/uid"),
        );
        let record = json!({"ip": ip.to_string(), "eni": eni_id, "node": node, "fargate": true});
        self.store
            .txn(vec![Op::Put {
                key,
                value: serde_json::to_vec(&record).unwrap_or_default().into(),
                precondition: Precondition::None,
            }])
            .await?;
        let pods_ns = pods().in_namespace(ns);
        self.client
            .patch(
                &pods_ns,
                name,
                PatchType::Merge,
                json!({"metadata": {"annotations": {
                    CAPACITY_ANNOTATION: capacity_text(cpu, mem),
                    "Logging": "LoggingDisabled: LOGGING_CONFIGMAP_NOT_FOUND"}}}),
                &PatchOptions::default(),
            )
            .await?;
        self.client
            .create_subresource(
                &pods_ns,
                name,
                "binding",
                json!({"apiVersion": "v1", "kind": "Binding",
                    "metadata": {"name": name, "namespace": ns},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node}}),
                &WriteOptions::default(),
            )
            .await?;
        tracing::info!(cluster = %self.binding.name, pod = %format!("{ns}/{name}"), %node, "fargate pod placed");
        Ok(())
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one Node from its parts; a struct would only rename them"
    )]
    fn build_node(
        &self,
        name: &str,
        ip: &str,
        zone: &str,
        eni: &str,
        profile: &str,
        pod: &Value,
        (cpu, mem): (u64, u64),
    ) -> Value {
        let region = &self.binding.region;
        let now = jiff::Timestamp::now().to_string();
        let condition = |ty: &str, status: &str, reason: &str, message: &str| {
            json!({"type": ty, "status": status, "reason": reason, "message": message,
                   "lastHeartbeatTime": now, "lastTransitionTime": now})
        };
        let capacity = json!({"cpu": format!("{cpu}m"), "memory": format!("{mem}Mi"),
            "ephemeral-storage": "20Gi", "pods": "1"});
        let version = crate::node_object::kubelet_version(&self.kubernetes_version);
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {
                    "beta.kubernetes.io/arch": "amd64",
                    "beta.kubernetes.io/os": "linux",
                    COMPUTE_TYPE_LABEL: "fargate",
                    PROFILE_LABEL: profile,
                    "failure-domain.beta.kubernetes.io/region": region,
                    "failure-domain.beta.kubernetes.io/zone": zone,
                    "kubernetes.io/arch": "amd64",
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "topology.kubernetes.io/region": region,
                    "topology.kubernetes.io/zone": zone,
                },
                "annotations": {
                    skiff_nodes::NODE_AGENT_ANNOTATION: skiff_nodes::SIM_AGENT,
                    POD_UID_ANNOTATION: s(pod, "/metadata/uid"),
                    ENI_ANNOTATION: eni,
                    "node.alpha.kubernetes.io/ttl": "0",
                },
            },
            "spec": {
                "providerID": format!("aws:///{zone}/{}/{name}", uuid::Uuid::new_v4().simple()),
                "taints": [{"key": COMPUTE_TYPE_LABEL, "value": "fargate", "effect": "NoSchedule"}],
            },
            "status": {
                "capacity": capacity,
                "allocatable": capacity,
                "addresses": [
                    {"type": "InternalIP", "address": ip},
                    {"type": "InternalDNS", "address": name},
                    {"type": "Hostname", "address": name},
                ],
                "conditions": [
                    condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                    condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                    condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                    condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "architecture": "amd64",
                    "containerRuntimeVersion": "containerd://1.7.27",
                    "kernelVersion": "5.10.240-238.959.amzn2.x86_64",
                    "kubeProxyVersion": version,
                    "kubeletVersion": version,
                    "operatingSystem": "linux",
                    "osImage": "Amazon Linux 2",
                    "bootID": uuid::Uuid::new_v4().to_string(),
                    "machineID": "",
                    "systemUUID": "",
                },
            },
        })
    }
}

fn label_path() -> String {
    format!("/metadata/labels/{}", PROFILE_LABEL.replace('/', "~1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fargate_node_names_follow_eks() {
        let ip: Ipv4Addr = "10.0.1.23".parse().unwrap();
        assert_eq!(
            node_name("us-east-1", ip),
            "fargate-ip-10-0-1-23.ec2.internal"
        );
        assert_eq!(
            node_name("eu-west-1", ip),
            "fargate-ip-10-0-1-23.eu-west-1.compute.internal"
        );
        assert_eq!(
            label_path(),
            "/metadata/labels/eks.amazonaws.com~1fargate-profile"
        );
    }
}
