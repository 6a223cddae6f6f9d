//! # skiff-controllers: the in-process controllers of one cluster
//!
//! kube-controller-manager's loops that make workloads run: ReplicaSets create and delete Pods,
//! Deployments roll ReplicaSets, StatefulSets, DaemonSets, Jobs and CronJobs run their pods,
//! Services get Endpoints and EndpointSlices, claims bind to volumes, silent nodes are tainted and
//! drained, PodDisruptionBudgets and HPAs keep their status, every namespace gets a `default`
//! ServiceAccount. Controllers write
//! through the API rules, not around them: every read comes from an informer cache fed by
//! [`ApiClient::watch`], every write goes through [`ApiClient`] (the API server's registry
//! in-process, `skiff_apiserver::client::RegistryClient`), so strategies, admission and
//! resourceVersion checks apply. Garbage collection of dependents is the API server's
//! (`registry::garbage_collector`), driven by the owner references written here.
//!
//! Must not depend on: the API server, AWS crates. Start at [`CONTROLLERS`] (the one table),
//! [`run_all`], then [`runtime`] (informer, queue, reconcile loop), then one file per controller.

pub mod cronjob;
pub mod cronjob_schedule;
pub mod daemonset;
pub mod daemonset_eligibility;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpoints_pods;
pub mod endpointslice;
pub mod horizontal_pod_autoscaler;
pub mod horizontal_pod_autoscaler_behavior;
pub mod horizontal_pod_autoscaler_metrics;
pub mod job;
pub mod job_indexes;
pub mod job_mutation_cache;
pub mod job_per_index;
pub mod job_pod_failure_policy;
pub mod node_lifecycle;
pub mod node_lifecycle_taint_eviction;
pub mod ownership;
pub mod pod_gc;
pub mod pv_binder;
pub mod pv_binder_protection;
pub mod replicaset;
pub mod runtime;
pub mod service_account;
pub mod statefulset;
pub mod statefulset_history;
pub mod testing;

use std::collections::HashMap;
use std::sync::Arc;

use skiff_k8s_core::client::{ApiClient, ResourceRef};
use tokio::sync::watch;

use runtime::Clock;
use runtime::events::EventRecorder;
use runtime::informer::{Cache, Informer};
use runtime::queue::WorkQueue;
use runtime::reconcile::{self, Reconciler};

/// Shared informers, one per resource, handed to each controller's setup so Pods are watched
/// once however many controllers read them (client-go's `SharedInformerFactory`).
pub struct Informers {
    client: Arc<dyn ApiClient>,
    by_resource: HashMap<String, Informer>,
}

impl Informers {
    pub fn new(client: Arc<dyn ApiClient>) -> Self {
        Self {
            client,
            by_resource: HashMap::new(),
        }
    }

    /// The informer of `r` (all namespaces), created on first use.
    pub fn get(&mut self, r: ResourceRef) -> &mut Informer {
        let key = format!("{}/{}/{}", r.group, r.version, r.resource);
        let client = self.client.clone();
        self.by_resource
            .entry(key)
            .or_insert_with(|| Informer::new(client, r))
    }

    pub fn cache(&mut self, r: ResourceRef) -> Cache {
        self.get(r).cache()
    }

    /// Starts every informer; resolves once all caches have synced (or shutdown was asked for).
    pub async fn start(
        self,
        mut shutdown: watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut synced = Vec::new();
        let mut tasks = Vec::new();
        for (_, inf) in self.by_resource {
            synced.push(inf.synced());
            tasks.push(tokio::spawn(inf.run(shutdown.clone())));
        }
        for mut s in synced {
            tokio::select! {
                _ = s.wait_for(|v| *v) => {}
                _ = shutdown.wait_for(|v| *v) => break,
            }
        }
        tasks
    }
}

/// Registers a controller's informer handlers and builds its reconciler; keys go to the queue.
pub type Setup =
    fn(&mut Informers, Arc<dyn ApiClient>, Arc<dyn Clock>, WorkQueue) -> Arc<dyn Reconciler>;

/// One controller: its upstream name, workers, and setup (register informer handlers, build
/// the reconciler).
pub struct ControllerSpec {
    pub name: &'static str,
    pub workers: usize,
    pub setup: Setup,
}

/// The controllers of a cluster, in start order. Upstream's default worker counts (`--concurrent-*-syncs`).
pub const CONTROLLERS: &[ControllerSpec] = &[
    ControllerSpec {
        name: replicaset::NAME,
        workers: 5,
        setup: |inf, client, clock, q| {
            let rs = inf.cache(replicaset::replicasets());
            let pods = inf.cache(replicaset::pods());
            let events = EventRecorder::new(client.clone(), replicaset::NAME, clock.clone());
            let c =
                replicaset::ReplicaSetController::new(client, rs, pods, clock).with_events(events);
            inf.get(replicaset::replicasets()).add_handler(Arc::new(
                replicaset::ReplicaSetController::on_replicaset(q.clone()),
            ));
            inf.get(replicaset::pods())
                .add_handler(Arc::new(c.on_pod(q)));
            Arc::new(c)
        },
    },
    ControllerSpec {
        name: deployment::NAME,
        workers: 5,
        setup: |inf, client, clock, q| {
            let ds = inf.cache(deployment::deployments());
            let rs = inf.cache(replicaset::replicasets());
            let pods = inf.cache(replicaset::pods());
            let events = EventRecorder::new(client.clone(), deployment::NAME, clock.clone());
            let c = deployment::DeploymentController::new(client, ds, rs, pods, clock)
                .with_events(events);
            inf.get(deployment::deployments()).add_handler(Arc::new(
                deployment::DeploymentController::on_deployment(q.clone()),
            ));
            inf.get(replicaset::replicasets())
                .add_handler(Arc::new(c.on_replicaset(q.clone())));
            inf.get(replicaset::pods())
                .add_handler(Arc::new(c.on_pod(q)));
            Arc::new(c)
        },
    },
    ControllerSpec {
        name: service_account::NAME,
        workers: 1,
        setup: |inf, client, _clock, q| {
            let ns = inf.cache(service_account::namespaces());
            let sas = inf.cache(service_account::service_accounts());
            inf.get(service_account::namespaces()).add_handler(Arc::new(
                service_account::ServiceAccountController::on_namespace(q.clone()),
            ));
            inf.get(service_account::service_accounts())
                .add_handler(Arc::new(
                    service_account::ServiceAccountController::on_service_account(q),
                ));
            Arc::new(service_account::ServiceAccountController::new(
                client, ns, sas,
            ))
        },
    },
    ControllerSpec {
        name: job::NAME,
        workers: 5,
        setup: job::setup,
    },
    ControllerSpec {
        name: cronjob::NAME,
        workers: 5,
        setup: cronjob::setup,
    },
    ControllerSpec {
        name: statefulset::NAME,
        workers: 5,
        setup: statefulset::setup,
    },
    ControllerSpec {
        name: endpoints::NAME,
        workers: 5,
        setup: endpoints::setup,
    },
    ControllerSpec {
        name: endpointslice::NAME,
        workers: 5,
        setup: endpointslice::setup,
    },
    ControllerSpec {
        name: pv_binder::NAME,
        workers: 1,
        setup: pv_binder::setup,
    },
    ControllerSpec {
        name: pv_binder_protection::PVC_NAME,
        workers: 1,
        setup: pv_binder_protection::setup_pvc,
    },
    ControllerSpec {
        name: pv_binder_protection::PV_NAME,
        workers: 1,
        setup: pv_binder_protection::setup_pv,
    },
    ControllerSpec {
        name: node_lifecycle::NAME,
        workers: 1,
        setup: node_lifecycle::setup,
    },
    ControllerSpec {
        name: node_lifecycle_taint_eviction::NAME,
        workers: 1,
        setup: node_lifecycle_taint_eviction::setup,
    },
    ControllerSpec {
        name: disruption::NAME,
        workers: 1,
        setup: disruption::setup,
    },
    ControllerSpec {
        name: horizontal_pod_autoscaler::NAME,
        workers: 5,
        setup: horizontal_pod_autoscaler::setup,
    },
    ControllerSpec {
        name: pod_gc::NAME,
        workers: 1,
        setup: pod_gc::setup,
    },
    ControllerSpec {
        name: daemonset::NAME,
        workers: 2,
        setup: daemonset::setup,
    },
];

/// Runs every controller in [`CONTROLLERS`] with the wall clock until `shutdown` flips to true.
pub async fn run_all(client: Arc<dyn ApiClient>, shutdown: watch::Receiver<bool>) {
    run_with_clock(client, Arc::new(runtime::SystemClock), shutdown).await
}

/// [`run_all`] with an injected clock.
pub async fn run_with_clock(
    client: Arc<dyn ApiClient>,
    clock: Arc<dyn Clock>,
    shutdown: watch::Receiver<bool>,
) {
    let mut informers = Informers::new(client.clone());
    let mut loops = Vec::new();
    for spec in CONTROLLERS {
        let q = WorkQueue::new();
        let r = (spec.setup)(&mut informers, client.clone(), clock.clone(), q.clone());
        loops.push((r, q, spec.workers));
    }
    // Handlers queue keys during the initial list; workers start once every cache is full.
    let informer_tasks = informers.start(shutdown.clone()).await;
    let mut tasks: Vec<_> = loops
        .into_iter()
        .map(|(r, q, w)| tokio::spawn(reconcile::run(r, q, w, shutdown.clone())))
        .collect();
    tasks.extend(informer_tasks);
    for t in tasks {
        let _ = t.await;
    }
}
