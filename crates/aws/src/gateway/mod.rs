//! The AWS gateway: one HTTP endpoint (`127.0.0.1:4566` by default) for every service.
//!
//! A request goes: [`router`] picks the service (`X-Amz-Target`, SigV4 credential scope, path) →
//! [`auth`] verifies the signature and names the caller → `skiff_aws_model::decode` turns the wire
//! request into the handler contract's input → [`crate::dispatch`] runs the handler → the model's
//! codec writes the answer. Every error on the way is rendered in the protocol's own form.
//!
//! The binary builds the [`router`] (which serves `/metrics` itself, [`metrics`]) and may merge its own
//! routes (OIDC discovery) before
//! serving it with [`serve_router`]; [`serve`] does both for the plain case.

pub mod auth;
pub mod enforce;
pub mod health;
pub mod internal_routes;
pub mod metrics;
pub mod router;

use std::net::SocketAddr;
use std::sync::Arc;

use skiff_store::Store;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use health::{HealthCheck, HealthChecks};
pub use router::router;

/// AWS answers 413 above this (the largest request any of our services accepts).
pub const DEFAULT_BODY_LIMIT: usize = 3 * 1024 * 1024;

/// How the gateway listens and authenticates.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// `127.0.0.1:4566` by default; port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// Accept any access key as the root of the default account, LocalStack style; stored keys
    /// (IAM/STS-issued) keep their identity and are still verified.
    pub any_credentials: bool,
    /// `--enforce-iam`: judge every signed call by the caller's IAM policies ([`enforce`]).
    pub enforce_iam: bool,
    /// Request bodies above this get 413 (ECR registry uploads stream to disk and are exempt).
    pub body_limit: usize,
    /// Where the ECR registry keeps blobs (`<dir>/blobs/sha256/…`); `None`: `/v2/` answers
    /// `UNSUPPORTED`. `skiff up` passes `<data-dir>/ecr`.
    pub registry_dir: Option<std::path::PathBuf>,
    /// ECR `repositoryUri`/`proxyEndpoint` name the host the API call came in on
    /// (`127.0.0.1:4566/<name>`, which a client can push to) instead of AWS's
    /// `<account>.dkr.ecr.<region>.amazonaws.com/<name>` (which does not resolve here). `docs/ecr.md`.
    pub reachable_registry_uris: bool,
    /// ECR registry housekeeping: abandoned-upload expiry and blob garbage collection ages.
    pub registry_gc: crate::ecr::registry_gc::GcConfig,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 4566)),
            any_credentials: false,
            enforce_iam: false,
            body_limit: DEFAULT_BODY_LIMIT,
            registry_dir: None,
            reachable_registry_uris: false,
            registry_gc: crate::ecr::registry_gc::GcConfig::default(),
        }
    }
}

/// What every request handler shares.
#[derive(Clone)]
pub struct GatewayState {
    pub store: Arc<dyn Store>,
    pub config: GatewayConfig,
    pub health: HealthChecks,
    /// Request counters and latencies served at `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// The ECR registry's blob files, shared by `/v2/` and the ECR layer API (`registry_dir`).
    pub registry_blobs: Option<Arc<crate::ecr::registry_blobs::Blobs>>,
}

impl GatewayState {
    /// Starts the registry's housekeeping task when `config.registry_dir` is set (so it needs a
    /// Tokio runtime then).
    pub fn new(store: Arc<dyn Store>, config: GatewayConfig) -> Self {
        let registry_blobs = config.registry_dir.clone().map(|dir| {
            let blobs = Arc::new(crate::ecr::registry_blobs::Blobs::new(dir));
            crate::ecr::registry_gc::spawn(
                store.clone(),
                Arc::downgrade(&blobs),
                config.registry_gc.clone(),
            );
            blobs
        });
        Self {
            store,
            config,
            health: HealthChecks::default(),
            metrics: Arc::default(),
            registry_blobs,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("gateway server failed: {0}")]
    Serve(#[from] std::io::Error),
    #[error("gateway task panicked or was cancelled: {0}")]
    Join(String),
}

/// A gateway serving in the background.
pub struct RunningGateway {
    pub local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningGateway {
    /// Stop accepting, let in-flight requests finish, and wait for the server to end.
    pub async fn shutdown(mut self) -> Result<(), GatewayError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(r) => r.map_err(GatewayError::Serve),
            Err(e) => Err(GatewayError::Join(e.to_string())),
        }
    }
}

/// Serve the AWS gateway alone on `cfg.listen`.
pub async fn serve(
    store: Arc<dyn Store>,
    cfg: GatewayConfig,
) -> Result<RunningGateway, GatewayError> {
    let listen = cfg.listen;
    // Parse the models now: the first EC2 call should not pay for the 1 MB model.
    tokio::task::spawn_blocking(skiff_aws_model::model::preload)
        .await
        .map_err(|e| GatewayError::Join(e.to_string()))?;
    serve_router(router(GatewayState::new(store, cfg)), listen).await
}

/// Serve any router (the gateway's, with the binary's routes merged) on `listen`.
pub async fn serve_router(
    app: axum::Router,
    listen: SocketAddr,
) -> Result<RunningGateway, GatewayError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| GatewayError::Bind {
            addr: listen,
            source,
        })?;
    let local_addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(%local_addr, "AWS gateway listening");
    Ok(RunningGateway {
        local_addr,
        stop: Some(stop),
        task,
    })
}
