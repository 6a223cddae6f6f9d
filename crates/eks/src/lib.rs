//! # skiff-eks: EKS clusters made real
//!
//! Starts, restores and stops one Kubernetes control plane per cluster (the API server of
//! `skiff-apiserver` on its own TLS port with its own CA), and — in later tranches — turns nodegroups into
//! instances and Nodes and runs the in-cluster AWS integrations.
//!
//! May depend on: `aws`, `apiserver`, `k8s-core`, `store` (and later `controllers`, `scheduler`, `nodes`).
//! Nothing depends on it but the binary: the AWS API never calls into clusters (design.md §3).
//!
//! Start at [`control_plane`] (one API server per cluster), then [`cluster_lifecycle`] (EKS records →
//! running planes, `ACTIVE`), [`eks_token`] (`aws eks get-token` authentication, access entries,
//! aws-auth) and [`oidc`] (each cluster's issuer discovery on the gateway).

pub mod aws_auth;
pub mod cluster_dir;
pub mod cluster_lifecycle;
pub mod control_plane;
pub mod eks_token;
pub mod kubeconfig;
pub mod oidc;
