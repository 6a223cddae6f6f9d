//! # skiff-eks: EKS clusters made real
//!
//! Starts, restores and stops one Kubernetes control plane per cluster (the API server of
//! `skiff-apiserver` on its own TLS port with its own CA, its controllers, scheduler and simulated
//! kubelets), turns managed nodegroups into Auto Scaling groups, EC2 instances and Nodes, and hands
//! pods VPC addresses, and runs the in-cluster AWS integrations EKS users install (the AWS Load
//! Balancer Controller, ExternalDNS, the EBS CSI driver, the pod identity webhook).
//!
//! May depend on: `aws`, `apiserver`, `k8s-core`, `store`, `controllers`, `scheduler`, `nodes`.
//! Nothing depends on it but the binary: the AWS API never calls into clusters (design.md §3).
//!
//! Start at [`control_plane`] (one API server per cluster), then [`cluster_lifecycle`] (EKS records →
//! running planes, `ACTIVE`), [`eks_token`] (`aws eks get-token` authentication, access entries,
//! aws-auth) and [`oidc`] (each cluster's issuer discovery on the gateway). Nodes: [`nodegroups`]
//! (nodegroup → Auto Scaling group → instances → Nodes), [`node_object`] (what a Node of an EKS
//! instance looks like), [`pod_network`] (pod IPs as ENI secondary addresses), [`demo`]
//! (`skiff up --demo`). Integrations: [`load_balancer`] (Services → NLBs; rules in
//! [`load_balancer_model`]), [`ingress_alb`] (Ingresses → ALBs), [`external_dns`] (Route 53 records),
//! [`ebs_csi`] (PVCs → EBS volumes, attach/detach), [`irsa`] (IRSA and Pod Identity at admission); [`network_policy`] (NetworkPolicy evaluation for `skiff netcheck`, served by
//! [`network_policy_service`], security groups for pods in [`pod_security_groups`]); [`addons`] (the self-managed aws-node/kube-proxy/CoreDNS and the
//! add-on API's add-ons, objects as data in [`addons_manifests`]); [`integrations`] is the table that starts them.

pub mod addons;
pub mod addons_manifests;
pub mod aws_auth;
pub mod cluster_autoscaler;
pub mod cluster_autoscaler_model;
pub mod cluster_dir;
pub mod cluster_lifecycle;
pub mod control_plane;
pub mod control_plane_logging;
pub mod demo;
pub mod drain;
pub mod ebs_csi;
pub mod efs_csi;
pub mod eks_token;
pub mod external_dns;
pub mod fargate;
pub mod fargate_scheduler;
pub mod ingress_alb;
pub mod integrations;
pub mod irsa;
pub mod kubeconfig;
pub mod load_balancer;
pub mod load_balancer_model;
pub mod network_policy;
pub mod network_policy_service;
pub mod node_object;
pub mod nodegroup_update;
pub mod nodegroups;
pub mod oidc;
pub mod oidc_identity_provider;
pub mod pod_network;
pub mod pod_security_groups;
pub mod secrets_encryption;
pub mod secrets_encryption_envelope;
pub mod secrets_store_csi;
pub mod secrets_store_csi_provider;
pub mod service_context;
