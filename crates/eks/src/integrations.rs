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
    /// The control plane's id (its objects live under `/k8s/<cluster_id>/`).
    pub cluster_id: String,
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
    // The EFS CSI driver (access points for ReadWriteMany claims; no attach step).
    Integration {
        name: "efs-csi-controller",
        user: crate::efs_csi::CONTROLLER_USER,
        start: |c| {
            tokio::spawn(crate::efs_csi::run(
                c.client, c.store, c.binding, c.shutdown,
            ))
        },
    },
    // Control plane logging: the controllers' and scheduler's log lines to CloudWatch Logs.
    Integration {
        name: "control-plane-logging",
        user: crate::control_plane_logging::USER,
        start: |c| {
            tokio::spawn(crate::control_plane_logging::run(
                c.client,
                c.store,
                c.binding,
                c.cluster_id,
                c.shutdown,
            ))
        },
    },
    // EKS add-ons: the self-managed defaults (aws-node, kube-proxy, CoreDNS) and the add-on API's.
    Integration {
        name: "eks-addon-manager",
        user: crate::addons::ADDON_MANAGER_USER,
        start: |c| tokio::spawn(crate::addons::run(c.client, c.store, c.binding, c.shutdown)),
    },
    // The Cluster Autoscaler (auto-discovered Auto Scaling groups sized for pending pods).
    Integration {
        name: "cluster-autoscaler",
        user: crate::cluster_autoscaler::USER,
        start: |c| {
            tokio::spawn(crate::cluster_autoscaler::run(
                c.client, c.store, c.binding, c.shutdown,
            ))
        },
    },
    // The VPC resource controller's share: the SecurityGroupPolicy CRD (security groups for pods).
    Integration {
        name: "vpc-resource-controller",
        user: crate::pod_security_groups::CONTROLLER_USER,
        start: |c| tokio::spawn(crate::pod_security_groups::run(c.client, c.shutdown)),
    },
    // The Secrets Store CSI driver with the AWS provider (SecretProviderClass → Secrets Manager).
    Integration {
        name: "secrets-store-csi-driver",
        user: crate::secrets_store_csi::CONTROLLER_USER,
        start: |c| {
            tokio::spawn(crate::secrets_store_csi::run(
                c.client, c.store, c.binding, c.shutdown,
            ))
        },
    },
    // EKS on Fargate: profiles ACTIVE, and each selected pod its own Fargate Node and ENI.
    Integration {
        name: "fargate-scheduler",
        user: crate::fargate_scheduler::USER,
        start: |c| {
            tokio::spawn(crate::fargate_scheduler::run(
                c.client,
                c.store,
                c.binding,
                c.cluster_id,
                c.kubernetes_version,
                c.shutdown,
            ))
        },
    },
];
