//! # skiff-eks: EKS clusters made real
//!
//! Starts, restores and stops one Kubernetes control plane per cluster (the API server of
//! `skiff-apiserver` on its own TLS port with its own CA), and — in later tranches — turns nodegroups into
//! instances and Nodes and runs the in-cluster AWS integrations.
//!
//! May depend on: `aws`, `apiserver`, `k8s-core`, `store` (and later `controllers`, `scheduler`, `nodes`).
//! Nothing depends on it but the binary: the AWS API never calls into clusters (design.md §3).
//!
//! Start at [`control_plane`].

pub mod cluster_dir;
pub mod control_plane;
pub mod kubeconfig;
