//! # skiff-scheduler: kube-scheduler's default profile, in process
//!
//! Watches unscheduled Pods and Nodes (and PVCs, PVs, StorageClasses, Namespaces) through
//! [`ApiClient`] (the API server's registry in process), filters and scores nodes with one file
//! per plugin ([`plugins`], the table is [`plugins::default_profile`]), preempts lower-priority
//! pods when nothing fits ([`preemption`]), and binds through the `pods/binding` subresource, so
//! admission and RBAC apply as for kube-scheduler.
//!
//! State is incremental ([`cache::NodeInfo`] sums updated per pod event) and owned by one task
//! ([`scheduler::Scheduler`]); API writes run in spawned tasks so binding overlaps scheduling.
//!
//! Must not depend on: the API server, AWS crates, skiff-controllers. Start at [`run`].

pub mod cache;
pub mod framework;
pub mod model;
pub mod plugins;
pub mod preemption;
pub mod queue;
pub mod scheduler;
#[cfg(test)]
mod testutil;

use std::sync::Arc;

use skiff_k8s_core::client::ApiClient;
use tokio::sync::watch;

/// `spec.schedulerName` this scheduler serves (an empty name means it too).
pub const SCHEDULER_NAME: &str = "default-scheduler";

/// Runs the scheduler of one cluster until `shutdown` flips to true.
pub async fn run(client: Arc<dyn ApiClient>, shutdown: watch::Receiver<bool>) {
    scheduler::run(client, shutdown).await;
}
