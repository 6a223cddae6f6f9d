//! `skiff up`: open the store, restore every cluster, serve the AWS gateway (with each EKS cluster's
//! OIDC discovery under `/_skiff/oidc/`), reconcile EKS cluster records into running control planes
//! and nodegroups into instances and Nodes, wait for a signal.

use std::sync::Arc;

use anyhow::Context;
use skiff_aws::gateway::{GatewayConfig, GatewayState, router, serve_router};
use skiff_eks::cluster_lifecycle::ClusterLifecycle;
use skiff_eks::control_plane::ControlPlanes;
use skiff_eks::nodegroups::NodegroupReconciler;

use crate::cli::UpArgs;

pub fn run(args: UpArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("skiff")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: UpArgs) -> anyhow::Result<()> {
    let data_dir = args.data.resolve();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let store = skiff_store::open(&args.store, &data_dir)
        .await
        .with_context(|| {
            format!(
                "opening the store ({}) in {}",
                args.store,
                data_dir.display()
            )
        })?;

    // Models are parsed before the first request so the first EC2 call does not pay for them.
    tokio::task::spawn_blocking(skiff_aws_model::model::preload).await?;
    let state = GatewayState::new(
        store.clone(),
        GatewayConfig {
            listen: args.listen,
            any_credentials: args.any_credentials,
            enforce_iam: args.enforce_iam,
            // ECR registry blobs beside the store; repository URIs a client can push to.
            registry_dir: Some(data_dir.join("ecr")),
            reachable_registry_uris: true,
            ..GatewayConfig::default()
        },
    );
    let planes = Arc::new(ControlPlanes::new(
        store.clone(),
        data_dir.clone(),
        args.cluster_port_base,
    ));
    state.health.register("clusters", planes.clone());
    let app = router(state).merge(skiff_eks::oidc::router(store.clone()));
    // `/_skiff/netcheck` (`skiff netcheck`): NetworkPolicy and pod security group verdicts.
    let app = app.merge(skiff_aws::gateway::internal_routes::routes(Arc::new(
        skiff_eks::network_policy_service::NetcheckService::new(planes.clone(), store.clone()),
    )));
    let gateway = serve_router(app, args.listen).await?;

    planes.restore_all().await.context("restoring clusters")?;
    // `--demo` goes the way a user would on AWS: VPC, subnets, roles, EKS cluster `demo` (made
    // ACTIVE by the sync below), then nodegroup `demo-ng`, whose Nodes the nodegroup sync registers.
    if args.demo {
        skiff_eks::demo::ensure_cluster(store.clone())
            .await
            .map_err(|e| anyhow::anyhow!("creating the demo cluster: {e}"))?;
    }
    // Every EKS cluster record gets its control plane (restored ones were started above) before
    // health turns green; then the reconciler follows the store from the scan's revision.
    let lifecycle = ClusterLifecycle::new(store.clone(), planes.clone());
    let from = lifecycle.sync().await.context("reconciling EKS clusters")?;
    let reconciler = tokio::spawn(lifecycle.run(from));
    if args.demo {
        skiff_eks::demo::ensure_nodegroup(store.clone())
            .await
            .map_err(|e| anyhow::anyhow!("creating the demo nodegroup: {e}"))?;
    }
    // Nodegroups → Auto Scaling groups → instances → Nodes, re-synced on every start (instances are
    // records and Nodes objects, so nothing is made twice).
    let nodegroups = NodegroupReconciler::new(store.clone(), planes.clone());
    let ng_from = nodegroups
        .sync()
        .await
        .context("reconciling EKS nodegroups")?;
    let nodegroup_reconciler = tokio::spawn(nodegroups.run(ng_from));
    if args.demo {
        tracing::info!(
            "demo cluster ready: skiff kubeconfig demo > kc && kubectl --kubeconfig kc get nodes"
        );
    }
    planes.mark_started();
    tracing::info!(gateway = %gateway.local_addr, data_dir = %data_dir.display(), "skiff is up");
    let purger = tokio::spawn(purge_expired_credentials(store.clone()));

    shutdown_signal().await;
    tracing::info!("shutting down");
    purger.abort();
    reconciler.abort();
    nodegroup_reconciler.abort();
    planes.shutdown().await;
    gateway.shutdown().await?;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// STS session keys expire; their records are removed so the store does not grow without bound.
async fn purge_expired_credentials(store: Arc<dyn skiff_store::Store>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(300));
    loop {
        tick.tick().await;
        if let Err(e) =
            skiff_aws::sts::purge_expired_credentials(&*store, jiff::Timestamp::now()).await
        {
            tracing::warn!(error = %e, "purging expired STS credentials");
        }
    }
}
