//! The `networking.k8s.io/v1` group.

pub mod ingress;
pub mod ingress_class;
pub mod network_policy;
