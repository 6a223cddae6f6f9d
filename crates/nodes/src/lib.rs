//! # skiff-nodes: node agents
//!
//! The simulated kubelet (`sim`, kwok-style): for every Node that names it as its agent it keeps
//! the Node Ready (status heartbeats and `kube-node-lease` Leases) and walks the Pods bound to it
//! through stages described as data. Pod IPs come from a [`PodNetwork`] the caller provides
//! (the EKS layer hands out secondary IPs of the instance's ENIs, as the VPC CNI does).
//!
//! How it is built (`docs/sim-kubelet.md` is the user's guide):
//! - [`sim::stage`]: stage files (`crates/nodes/stages/pod/<profile>/*.yaml`) and the profile table;
//! - [`sim::engine`]: the pure stage engine (pod + stage + context → status patch, events, delete);
//! - [`sim::node`]: Node status, `nodeInfo` and the `kube-node-lease` Lease;
//! - [`sim::timer`]: one keyed timer heap for every pod stage, lease renewal and status report;
//! - [`sim::ip_allocation`]: the default [`PodNetwork`] ([`sim::CidrPodNetwork`]);
//! - [`sim::runtime`]: one task per cluster: Node and Pod watches, timers, bounded concurrent writes;
//! - [`sim::trace`]: a pod's whole life on a fake clock (golden tests in `stages/pod/testdata/`, bench).
//!
//! Must not depend on: the API server, AWS crates. Start at [`run_sim`] / [`sim::spawn_sim`].

use std::sync::Arc;

use skiff_k8s_core::client::ApiClient;
use tokio::sync::watch;

/// Annotation on a Node naming the agent that runs it; the simulated kubelet takes the Nodes
/// whose value is [`SIM_AGENT`].
pub const NODE_AGENT_ANNOTATION: &str = "skiff.dev/node-agent";
/// The value of [`NODE_AGENT_ANNOTATION`] for simulated nodes.
pub const SIM_AGENT: &str = "sim";

/// The node a pod IP is asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRef {
    pub name: String,
    /// `aws:///us-east-1a/i-0123…` for EKS nodes.
    pub provider_id: Option<String>,
    /// The Node's `InternalIP` address.
    pub internal_ip: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum NetworkError {
    /// No address left (the VPC CNI's "failed to assign an IP address to container").
    #[error("failed to assign an IP address to container: {0}")]
    Exhausted(String),
    #[error("pod network: {0}")]
    Other(String),
}

/// Where pod IPs come from (the CNI's share of the kubelet's work).
#[async_trait::async_trait]
pub trait PodNetwork: Send + Sync + 'static {
    /// An IP for the pod with `pod_uid` on `node`; the same pod asking again gets the same IP.
    async fn assign(&self, node: &NodeRef, pod_uid: &str) -> Result<String, NetworkError>;
    /// Gives the pod's IP back (pod deleted or finished).
    async fn release(&self, node: &NodeRef, pod_uid: &str);
    /// Called whenever the simulated kubelet sees one of its Nodes (new or changed), with the
    /// Node's `spec.podCIDR`; networks that carve pod IPs from it prepare their pool here.
    fn observe_node(&self, node: &NodeRef, pod_cidr: Option<&str>) {
        let _ = (node, pod_cidr);
    }
    /// Called when the simulated kubelet finds a pod that already holds `ip` (a restart of Skiff
    /// with pods running), so the address is not handed out twice.
    fn observe_pod_ip(&self, node: &NodeRef, pod_uid: &str, ip: &str) {
        let _ = (node, pod_uid, ip);
    }
}

pub mod sim;

/// Runs the simulated kubelets of one cluster until `shutdown` flips to true.
pub async fn run_sim(
    client: Arc<dyn ApiClient>,
    network: Arc<dyn PodNetwork>,
    shutdown: watch::Receiver<bool>,
) {
    let (_handle, task) = sim::spawn_sim(client, network, sim::SimConfig::default(), shutdown);
    // The runtime ends only on shutdown; a panic inside it is a bug worth surfacing in logs.
    if let Err(e) = task.await {
        tracing::error!(error = %e, "simulated kubelet task failed");
    }
}
