//! Starting one cluster's API server: listener (TLS with optional-but-verified client
//! certificates, ALPN h2 + http/1.1; or plain HTTP for tests), the registry, the system
//! namespaces, the `kubernetes` Service and the built-in PriorityClasses, the pod subresources
//! (`binding`, `eviction`), and the in-process controllers that live here for now (garbage
//! collector, namespace lifecycle).

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use serde_json::json;
use skiff_k8s_core::status::ApiError;
use skiff_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admission::priority;
use crate::authn::Authenticator;
use crate::authz::Authorizer;
use crate::http::Api;
use crate::registry::eviction::PodEviction;
use crate::registry::garbage_collector::GarbageCollector;
use crate::registry::hooks::{CreateOnlyResource, SubresourceHandler};
use crate::registry::pod_binding::{LegacyBindings, PodBinding};
use crate::registry::strategy::Strategy;
use crate::registry::{Registry, WriteOptions, namespace_lifecycle};

/// Serving certificate and the CA client certificates are checked against (PEM).
#[derive(Clone, Debug)]
pub struct TlsConfig {
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    /// Client certificates are optional, but when sent they must chain to this CA.
    pub client_ca_pem: String,
}

/// Everything one cluster's API server needs.
#[derive(Clone)]
pub struct ClusterApiConfig {
    /// Store prefix `/k8s/<cluster_id>/`.
    pub cluster_id: String,
    /// `1.32`: `/version` reports `v1.32.0-eks-skiff`.
    pub kubernetes_version: String,
    pub listen: SocketAddr,
    /// None = plain HTTP (tests).
    pub tls: Option<TlsConfig>,
    pub authenticators: Vec<Arc<dyn Authenticator>>,
    /// Empty = every request allowed (tests without RBAC).
    pub authorizers: Vec<Arc<dyn Authorizer>>,
    pub create_only: Vec<Arc<dyn CreateOnlyResource>>,
    pub subresources: Vec<Arc<dyn SubresourceHandler>>,
    /// Service ClusterIP range (EKS default `10.100.0.0/16`).
    pub service_cidr: String,
    pub node_port_range: std::ops::RangeInclusive<u16>,
    /// The kinds served; `kinds::builtin()` by default.
    pub kinds: Vec<Arc<dyn Strategy>>,
    /// Mutating admission after the built-in plugins (mutating webhooks' place).
    pub external_mutators: Vec<Arc<dyn crate::admission::ExternalMutator>>,
    /// Where each request's audit event goes (EKS: the `audit` control plane log).
    pub audit: Option<Arc<dyn crate::audit::AuditSink>>,
}

impl ClusterApiConfig {
    /// Defaults: built-in kinds, EKS's service CIDR, NodePorts 30000-32767, no TLS, no auth.
    pub fn new(cluster_id: impl Into<String>, listen: SocketAddr) -> Self {
        Self {
            cluster_id: cluster_id.into(),
            kubernetes_version: "1.32".into(),
            listen,
            tls: None,
            authenticators: Vec::new(),
            authorizers: Vec::new(),
            create_only: Vec::new(),
            subresources: Vec::new(),
            service_cidr: "10.100.0.0/16".into(),
            node_port_range: 30000..=32767,
            kinds: crate::kinds::builtin(),
            external_mutators: Vec::new(),
            audit: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("initial objects: {0}")]
    Bootstrap(#[from] ApiError),
}

/// A running server; dropping it does not stop it, [`RunningApi::shutdown`] does.
pub struct RunningApi {
    pub local_addr: SocketAddr,
    /// The registry, for in-process clients (controllers, the EKS layer).
    pub registry: Arc<Registry>,
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningApi {
    /// Stops accepting, ends open connections and the controllers, and waits for them.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

fn tls_acceptor(tls: &TlsConfig) -> Result<tokio_rustls::TlsAcceptor, StartError> {
    let err = |e: &dyn std::fmt::Display| StartError::Tls(e.to_string());
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(tls.serving_cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| err(&e))?;
    let key = PrivateKeyDer::from_pem_slice(tls.serving_key_pem.as_bytes()).map_err(|e| err(&e))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(tls.client_ca_pem.as_bytes()) {
        roots.add(ca.map_err(|e| err(&e))?).map_err(|e| err(&e))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
        .allow_unauthenticated()
        .build()
        .map_err(|e| err(&e))?;
    let mut cfg = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| err(&e))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// Creates what every cluster has: the system namespaces and the `kubernetes` Service.
async fn bootstrap(reg: &Registry, local_addr: SocketAddr) -> Result<(), ApiError> {
    namespace_lifecycle::ensure_system_namespaces(reg).await?;
    if let Some(svc) = reg.kind("", "services") {
        let ip = reg.services().kubernetes_ip().to_string();
        let obj = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip], "sessionAffinity": "None",
                "ports": [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": local_addr.port()}]}});
        let opts = WriteOptions {
            field_manager: "kube-apiserver".into(),
            ..Default::default()
        };
        match reg.create(&svc, Some("default"), obj, &opts).await {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
        publish_kubernetes_endpoints(reg, local_addr, &opts).await?;
    }
    // The built-in PriorityClasses, as kube-apiserver's scheduling post-start hook makes them.
    if let Some(pc) = reg.kind("scheduling.k8s.io", "priorityclasses") {
        let opts = WriteOptions {
            field_manager: "kube-apiserver".into(),
            ..Default::default()
        };
        for obj in priority::system_class_objects() {
            match reg.create(&pc, None, obj, &opts).await {
                Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// The `kubernetes` Service's Endpoints and EndpointSlice: this API server's address, as
/// kube-apiserver's endpoint reconciler writes them (the endpoints controllers leave them alone).
/// Rewritten on every start because the port may change.
async fn publish_kubernetes_endpoints(
    reg: &Registry,
    local_addr: SocketAddr,
    opts: &WriteOptions,
) -> Result<(), ApiError> {
    let ip = local_addr.ip().to_string();
    let port = local_addr.port();
    let objects = [
        (
            reg.kind("", "endpoints"),
            json!({"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": "kubernetes", "namespace": "default",
                    "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
                "subsets": [{"addresses": [{"ip": ip}],
                    "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]}),
        ),
        (
            reg.kind("discovery.k8s.io", "endpointslices"),
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "kubernetes", "namespace": "default",
                    "labels": {"kubernetes.io/service-name": "kubernetes"}},
                "addressType": if local_addr.is_ipv4() { "IPv4" } else { "IPv6" },
                "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}),
        ),
    ];
    for (kind, mut obj) in objects {
        let Some(kind) = kind else { continue };
        match reg.get(&kind, Some("default"), "kubernetes").await {
            Ok(existing) => {
                obj["metadata"]["resourceVersion"] =
                    existing["metadata"]["resourceVersion"].clone();
                reg.update(&kind, Some("default"), "kubernetes", obj, "", opts)
                    .await?;
            }
            Err(ApiError::NotFound { .. }) => {
                match reg.create(&kind, Some("default"), obj, opts).await {
                    Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The configured create-only resources and subresources plus the pod subresources every API
/// server has (`pods/binding`, `pods/eviction`, the legacy `bindings`), unless the configuration
/// serves its own under the same name or the kinds have no pods.
#[allow(
    clippy::type_complexity,
    reason = "the two lists the HTTP layer takes, as they are"
)]
fn pod_subresources(
    registry: &Arc<Registry>,
    cfg: &ClusterApiConfig,
) -> (
    Vec<Arc<dyn CreateOnlyResource>>,
    Vec<Arc<dyn SubresourceHandler>>,
) {
    let mut create_only = cfg.create_only.clone();
    let mut subresources = cfg.subresources.clone();
    if registry.kind("", "pods").is_none() {
        return (create_only, subresources);
    }
    let ours: [Arc<dyn SubresourceHandler>; 2] = [
        Arc::new(PodBinding::new(registry.clone())),
        Arc::new(PodEviction::new(registry.clone())),
    ];
    for h in ours {
        if !subresources
            .iter()
            .any(|s| s.parent() == h.parent() && s.subresource() == h.subresource())
        {
            subresources.push(h);
        }
    }
    if !create_only
        .iter()
        .any(|c| c.info().group.is_empty() && c.info().plural == "bindings")
    {
        create_only.push(Arc::new(LegacyBindings::new(registry.clone())));
    }
    // metrics.k8s.io (what metrics-server serves on EKS), unless the caller brings its own.
    if registry.kind("", "nodes").is_some()
        && !create_only
            .iter()
            .any(|c| c.info().group == crate::metrics_api::GROUP)
    {
        create_only.push(Arc::new(crate::metrics_api::PodMetricsResource::new(
            registry.clone(),
        )));
        create_only.push(Arc::new(crate::metrics_api::NodeMetricsResource::new(
            registry.clone(),
        )));
    }
    (create_only, subresources)
}

/// Starts serving. Returns once the listener is bound and the initial objects exist.
pub async fn start(store: Arc<dyn Store>, cfg: ClusterApiConfig) -> Result<RunningApi, StartError> {
    let registry = Arc::new(
        Registry::new(
            store,
            &cfg.cluster_id,
            cfg.kinds.clone(),
            &cfg.service_cidr,
            cfg.node_port_range.clone(),
        )
        .map_err(StartError::Config)?
        .with_external_mutators(cfg.external_mutators.clone()),
    );
    registry.load().await?;
    let acceptor = cfg.tls.as_ref().map(tls_acceptor).transpose()?;
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: cfg.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: cfg.listen,
        source,
    })?;
    bootstrap(&registry, local_addr).await?;

    let (create_only, subresources) = pod_subresources(&registry, &cfg);
    let api = Arc::new(Api {
        registry: registry.clone(),
        authenticators: cfg.authenticators.clone(),
        authorizers: cfg.authorizers.clone(),
        create_only,
        subresources,
        server_address: local_addr.to_string(),
        version: version_document(&cfg.kubernetes_version),
        audit: cfg.audit.clone(),
    });
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let tasks = vec![
        GarbageCollector::new(registry.clone()).spawn(shutdown_rx.clone()),
        namespace_lifecycle::spawn(registry.clone(), shutdown_rx.clone()),
        tokio::spawn(accept_loop(listener, acceptor, api, shutdown_rx)),
    ];
    Ok(RunningApi {
        local_addr,
        registry,
        shutdown_tx,
        tasks,
    })
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    api: Arc<Api>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (tcp, _) = tokio::select! {
            _ = shutdown.changed() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let api = api.clone();
        let acceptor = acceptor.clone();
        let mut conn_shutdown = shutdown.clone();
        conns.spawn(async move {
            match acceptor {
                None => serve_conn(TokioIo::new(tcp), api, None, &mut conn_shutdown).await,
                Some(acc) => {
                    let tls = match acc.accept(tcp).await {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                    };
                    let peer: Option<Arc<Vec<CertificateDer<'static>>>> = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .map(|c| Arc::new(c.iter().map(|d| d.clone().into_owned()).collect()));
                    serve_conn(TokioIo::new(tls), api, peer, &mut conn_shutdown).await
                }
            }
        });
        // Reap finished connections so the set does not grow without bound.
        while conns.try_join_next().is_some() {}
    }
    conns.shutdown().await;
}

async fn serve_conn<I>(
    io: I,
    api: Arc<Api>,
    peer: Option<Arc<Vec<CertificateDer<'static>>>>,
    shutdown: &mut watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let api = api.clone();
        let peer = peer.clone();
        async move {
            let r = api.serve(req, peer.as_deref().map(Vec::as_slice)).await;
            Ok::<_, std::convert::Infallible>(r)
        }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(io, svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            // Watches never end by themselves: give in-flight requests a moment, then drop.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), conn.as_mut()).await;
        }
    }
}

/// `/version` (`version.Info`), with the EKS-style git version.
pub fn version_document(kubernetes_version: &str) -> serde_json::Value {
    let mut it = kubernetes_version.split('.');
    let major = it.next().unwrap_or("1");
    let minor = it.next().unwrap_or("32");
    json!({
        "major": major,
        "minor": minor,
        "gitVersion": format!("v{major}.{minor}.0-eks-skiff"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-11-23T00:00:00Z",
        "goVersion": "go1.23.6",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}
