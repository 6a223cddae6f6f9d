//! The in-cluster AWS integrations every EKS cluster runs (what users install as add-ons or Helm
//! charts on real EKS), wired in one table: each row names the identity it writes as and how it
//! starts. `control_plane` starts every row for an EKS-backed cluster, next to the controllers.

use std::sync::Arc;

use skiff_k8s_core::client::ApiClient;
use skiff_store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster_dir::EksBinding;

/// What an integration gets when its cluster's control plane starts.
pub struct IntegrationContext {
    /// An in-process client acting as the row's `user` (strategies, admission, RBAC all apply).
    pub client: Arc<dyn ApiClient>,
    /// The shared store, for calls into AWS domain functions.
    pub store: Arc<dyn Store>,
    /// The EKS cluster this control plane serves.
    pub binding: EksBinding,
    /// The cluster's Kubernetes version (`1.33`).
    pub kubernetes_version: String,
    /// Flips to `true` when the control plane stops.
    pub shutdown: watch::Receiver<bool>,
}

/// One in-cluster integration.
pub struct Integration {
    /// Shown in logs.
    pub name: &'static str,
    /// The Kubernetes user it acts as (its ServiceAccount on real EKS).
    pub user: &'static str,
    /// Spawns it; the task ends when `shutdown` flips.
    pub start: fn(IntegrationContext) -> JoinHandle<()>,
}

/// Every integration, in start order.
pub const INTEGRATIONS: &[Integration] = &[
    // The AWS Load Balancer Controller (Services → NLBs, Ingresses → ALBs) and ExternalDNS.
    Integration {
        name: "aws-load-balancer-controller",
        user: crate::load_balancer::CONTROLLER_USER,
        start: |c| {
            tokio::spawn(crate::load_balancer::run(
                c.client, c.store, c.binding, c.shutdown,
            ))
        },
    },
    // The EBS CSI driver (controller half and node registration).
    Integration {
        name: "ebs-csi-controller",
        user: crate::ebs_csi::CONTROLLER_USER,
        start: |c| {
            tokio::spawn(crate::ebs_csi::run(
                c.client,
                c.store,
                c.binding,
                c.kubernetes_version,
                c.shutdown,
            ))
        },
    },
];
