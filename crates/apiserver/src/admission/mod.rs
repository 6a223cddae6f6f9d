//! Admission: checks and mutations every write passes after the kind's defaults and before
//! validation (kube-apiserver's admission chain). One file per plugin, named as upstream.

pub mod namespace_lifecycle;
pub mod service_ip;
