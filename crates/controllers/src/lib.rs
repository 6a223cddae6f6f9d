//! # skiff-controllers: the in-process controllers of one cluster
//!
//! kube-controller-manager's loops that make workloads run: ReplicaSets create and delete Pods,
//! Deployments roll ReplicaSets, every namespace gets a `default` ServiceAccount. Controllers write
//! through the API rules, not around them: every read comes from an informer cache fed by
//! [`ApiClient::watch`], every write goes through [`ApiClient`] (the API server's registry
//! in-process), so strategies, admission and resourceVersion checks apply.
//!
//! Must not depend on: the API server, AWS crates. Start at [`runtime`] (informer, queue,
//! reconcile loop), then one file per controller.

pub mod ownership;
pub mod runtime;
pub mod testing;
