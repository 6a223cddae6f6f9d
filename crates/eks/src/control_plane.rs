//! One Kubernetes control plane per cluster: start, restore on `skiff up`, stop.
//!
//! A cluster's identity (id, port, version) and PKI are files in the data dir
//! ([`crate::cluster_dir`]); its objects are in the shared store under `/k8s/<id>/`.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;

use skiff_apiserver::auth_apis::stack::AuthStack;
use skiff_apiserver::auth_apis::token_controller::run_token_controller;
use skiff_apiserver::authz::aggregation::run_aggregation_controller;
use skiff_apiserver::client::RegistryClient;
use skiff_apiserver::pki::ClusterPki;
use skiff_apiserver::server::{ClusterApiConfig, RunningApi, TlsConfig};
use skiff_store::Store;
use tokio::sync::Mutex;

use skiff_apiserver::authn::Authenticator;
use skiff_apiserver::authn::token_hook::PrefixedTokenAuthenticator;
use skiff_apiserver::authz::Authorizer;
use skiff_store::{ListOptions, Op, Precondition};

use crate::cluster_dir::{self, ClusterRecord, EksBinding};
use crate::eks_token::{self, EksTokenAuthenticator, NamespacedAccessAuthorizer};
use crate::pod_network::EksPodNetwork;
use skiff_k8s_core::client::ApiClient;

/// The Kubernetes version new clusters report (EKS's default track).
pub const DEFAULT_KUBERNETES_VERSION: &str = "1.33";
/// How many ports past `--cluster-port-base` are tried before giving up.
const PORT_SEARCH_SPAN: u16 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    #[error("cluster files: {0}")]
    Io(#[from] std::io::Error),
    #[error("cluster PKI: {0}")]
    Pki(String),
    #[error("starting the API server: {0}")]
    Start(String),
    #[error("no free port in {0}..{1}")]
    NoFreePort(u16, u16),
    #[error("cluster store objects: {0}")]
    Store(#[from] skiff_store::StoreError),
    #[error("publishing the OIDC issuer keys: {0}")]
    Oidc(String),
}

/// The identity the simulated kubelets write as (one agent serves every Node of a cluster; upstream
/// each kubelet is `system:node:<name>` in `system:nodes`).
pub const SIM_KUBELET_USER: &str = "system:node:skiff-sim";

/// Objects removed per transaction when a deleted cluster's objects are purged (bounded txns).
const PURGE_BATCH: usize = 500;

struct RunningCluster {
    record: ClusterRecord,
    ca_pem: String,
    api: RunningApi,
    background: Vec<tokio::task::JoinHandle<()>>,
    /// Tells the controllers (kube-controller-manager's share) to stop.
    stop_controllers: tokio::sync::watch::Sender<bool>,
}

/// Every running control plane of this process.
pub struct ControlPlanes {
    store: Arc<dyn Store>,
    data_dir: PathBuf,
    port_base: u16,
    running: Mutex<BTreeMap<String, RunningCluster>>,
    /// Set once `skiff up` has restored (and, with `--demo`, created) its clusters; health waits on it.
    started: std::sync::atomic::AtomicBool,
}

impl ControlPlanes {
    pub fn new(store: Arc<dyn Store>, data_dir: PathBuf, port_base: u16) -> Self {
        Self {
            store,
            data_dir,
            port_base,
            running: Mutex::new(BTreeMap::new()),
            started: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Start every cluster recorded in the data dir (on `skiff up`).
    pub async fn restore_all(&self) -> Result<(), ControlPlaneError> {
        for record in cluster_dir::list_records(&self.data_dir)? {
            self.start(record).await?;
        }
        Ok(())
    }

    /// The cluster `name`, created (new id, PKI, port) if it does not exist, and running.
    pub async fn ensure(&self, name: &str) -> Result<ClusterRecord, ControlPlaneError> {
        if let Some(running) = self.running.lock().await.get(name) {
            return Ok(running.record.clone());
        }
        let record = match cluster_dir::read_record(&self.data_dir, name)? {
            Some(r) => r,
            None => {
                self.create_files(name, DEFAULT_KUBERNETES_VERSION, None)
                    .await?
            }
        };
        self.start(record).await
    }

    /// The control plane of an EKS cluster record, created if needed (new id, PKI, port) and running.
    /// A plane left on disk by an earlier run is reused, so a restart keeps the port, CA and objects.
    pub async fn ensure_eks(
        &self,
        binding: &EksBinding,
        kubernetes_version: &str,
    ) -> Result<ClusterRecord, ControlPlaneError> {
        let name = binding.plane_name();
        if let Some(running) = self.running.lock().await.get(&name) {
            return Ok(running.record.clone());
        }
        let record = match cluster_dir::read_record(&self.data_dir, &name)? {
            Some(mut r) => {
                r.eks = Some(binding.clone());
                r
            }
            None => {
                self.create_files(&name, kubernetes_version, Some(binding.clone()))
                    .await?
            }
        };
        self.start(record).await
    }

    /// A new cluster's identity and PKI. Key generation is CPU work: off the async threads.
    async fn create_files(
        &self,
        name: &str,
        kubernetes_version: &str,
        eks: Option<EksBinding>,
    ) -> Result<ClusterRecord, ControlPlaneError> {
        let record = ClusterRecord {
            name: name.to_string(),
            id: uuid::Uuid::new_v4().simple().to_string(),
            port: 0,
            kubernetes_version: kubernetes_version.to_string(),
            created_at: jiff::Timestamp::now().to_string(),
            eks,
        };
        let dir = cluster_dir::pki_dir(&self.data_dir, name);
        let owned = name.to_string();
        tokio::task::spawn_blocking(move || {
            let pki =
                ClusterPki::generate(&owned).map_err(|e| ControlPlaneError::Pki(e.to_string()))?;
            pki.to_files(&dir)
                .map_err(|e| ControlPlaneError::Pki(e.to_string()))
        })
        .await
        .map_err(|e| ControlPlaneError::Start(e.to_string()))??;
        Ok(record)
    }

    /// The PEM CA of a running cluster (what `certificateAuthority.data` carries, base64-encoded).
    pub async fn ca_pem(&self, name: &str) -> Option<String> {
        self.running
            .lock()
            .await
            .get(name)
            .map(|c| c.ca_pem.clone())
    }

    /// An in-process client of the running cluster `name` acting as `user` (`system:node:<name>`
    /// for a kubelet registering its Node), or None when the cluster is not running.
    pub async fn client(&self, name: &str, user: &str) -> Option<Arc<dyn ApiClient>> {
        let running = self.running.lock().await;
        let cluster = running.get(name)?;
        let client: Arc<dyn ApiClient> =
            Arc::new(RegistryClient::new(cluster.api.registry.clone(), user));
        Some(client)
    }

    /// Every control plane recorded in the data dir that serves an EKS record, running or not.
    pub fn eks_records(&self) -> Result<Vec<ClusterRecord>, ControlPlaneError> {
        Ok(cluster_dir::list_records(&self.data_dir)?
            .into_iter()
            .filter(|r| r.eks.is_some())
            .collect())
    }

    /// Delete a cluster for good: stop its API, purge its objects from the store (in bounded
    /// batches), withdraw its OIDC issuer keys and remove its files. Absent clusters are a no-op.
    pub async fn remove(&self, name: &str) -> Result<(), ControlPlaneError> {
        let stopped = self.running.lock().await.remove(name);
        let record = match stopped {
            Some(cluster) => {
                let _ = cluster.stop_controllers.send(true);
                for t in &cluster.background {
                    t.abort();
                }
                cluster.api.shutdown().await;
                Some(cluster.record)
            }
            None => cluster_dir::read_record(&self.data_dir, name)?,
        };
        let Some(record) = record else {
            return Ok(());
        };
        purge_prefix(&*self.store, &format!("/k8s/{}/", record.id)).await?;
        if let Some(eks) = &record.eks {
            skiff_aws::sts::remove_oidc_issuer_keys(&*self.store, &eks.issuer)
                .await
                .map_err(|e| ControlPlaneError::Oidc(e.message.clone()))?;
        }
        match std::fs::remove_dir_all(cluster_dir::cluster_dir(&self.data_dir, name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Every cluster that should be running at start-up is: `/_skiff/health` may answer 200.
    pub fn mark_started(&self) {
        self.started
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Records of the running clusters.
    pub async fn list(&self) -> Vec<ClusterRecord> {
        self.running
            .lock()
            .await
            .values()
            .map(|r| r.record.clone())
            .collect()
    }

    /// Stop every control plane (clean shutdown; everything is already durable).
    pub async fn shutdown(&self) {
        let mut running = self.running.lock().await;
        for (_, cluster) in std::mem::take(&mut *running) {
            let _ = cluster.stop_controllers.send(true);
            for t in &cluster.background {
                t.abort();
            }
            cluster.api.shutdown().await;
        }
    }

    /// Pick the port: the recorded one when it is free, else the first free one from the base
    /// (0 = any free port), and persist it so kubeconfigs keep working across restarts.
    fn choose_port(&self, recorded: u16) -> Result<u16, ControlPlaneError> {
        let free = |p: u16| TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], p))).is_ok();
        if recorded != 0 && free(recorded) {
            return Ok(recorded);
        }
        if self.port_base == 0 {
            let l = TcpListener::bind("127.0.0.1:0")?;
            return Ok(l.local_addr()?.port());
        }
        let end = self.port_base.saturating_add(PORT_SEARCH_SPAN);
        (self.port_base..end)
            .find(|p| free(*p))
            .ok_or(ControlPlaneError::NoFreePort(self.port_base, end))
    }

    async fn start(&self, mut record: ClusterRecord) -> Result<ClusterRecord, ControlPlaneError> {
        let mut running = self.running.lock().await;
        if let Some(r) = running.get(&record.name) {
            return Ok(r.record.clone());
        }
        let pki = ClusterPki::load(
            &cluster_dir::pki_dir(&self.data_dir, &record.name),
            &record.name,
        )
        .map_err(|e| ControlPlaneError::Pki(e.to_string()))?;
        let pki = Arc::new(pki);
        record.port = self.choose_port(record.port)?;
        cluster_dir::write_record(&self.data_dir, &record)?;

        let id = record.id.clone();
        // EKS planes see Secrets through the KMS envelope wrapper (secrets_encryption.rs): sealed
        // while the EKS record has an `encryptionConfig`, plaintext otherwise.
        let (store, secrets_kms) = crate::secrets_encryption::store_for_plane(
            self.store.clone(),
            &id,
            record.eks.as_ref(),
        );
        // Authentication (client certificates, ServiceAccount and bootstrap tokens), RBAC with the
        // default policy, the review APIs and TokenRequest: one stack per cluster.
        // EKS clusters sign ServiceAccount tokens as their OIDC issuer (IRSA), and accept
        // `aws eks get-token` tokens mapped through access entries and aws-auth.
        let (issuer, extra_tokens, audit) = match &record.eks {
            Some(eks) if !eks.issuer.is_empty() => {
                eks_token::ensure_access_policy_bindings(&*store, &id).await?;
                let hook = Arc::new(EksTokenAuthenticator::new(store.clone(), eks.clone(), &id));
                // The `audit` control plane log: the API server's events through the same shipper.
                let audit: Arc<dyn skiff_apiserver::audit::AuditSink> =
                    Arc::new(hook.log_shipper());
                let prefixed: Arc<dyn Authenticator> = Arc::new(PrefixedTokenAuthenticator::new(
                    eks_token::TOKEN_PREFIX,
                    hook,
                ));
                // ID tokens of the cluster's associated OIDC identity provider, if any.
                let idp: Arc<dyn Authenticator> = Arc::new(
                    crate::oidc_identity_provider::IdentityProviderAuthenticator::new(
                        store.clone(),
                        &eks.account,
                        &eks.region,
                        &eks.name,
                    ),
                );
                (eks.issuer.clone(), vec![prefixed, idp], Some(audit))
            }
            _ => (
                format!("https://127.0.0.1:{}", record.port),
                Vec::new(),
                None,
            ),
        };
        let auth = AuthStack::build(store.clone(), &id, &pki, &issuer, extra_tokens)
            .await
            .map_err(|e| ControlPlaneError::Start(e.to_string()))?;
        if record.eks.as_ref().is_some_and(|e| !e.issuer.is_empty()) {
            skiff_aws::sts::register_oidc_issuer_keys(&*store, &issuer, auth.signer.jwks())
                .await
                .map_err(|e| ControlPlaneError::Oidc(e.message.clone()))?;
        }

        let mut cfg =
            ClusterApiConfig::new(id.clone(), SocketAddr::from(([127, 0, 0, 1], record.port)));
        cfg.kubernetes_version = record.kubernetes_version.clone();
        cfg.audit = audit;
        cfg.tls = Some(TlsConfig {
            serving_cert_pem: pki.serving_cert_pem.clone(),
            serving_key_pem: pki.serving_key_pem.clone(),
            client_ca_pem: pki.ca_cert_pem.clone(),
        });
        cfg.authenticators = auth.authenticators;
        cfg.authorizers = auth.authorizers;
        if let Some(eks) = &record.eks {
            let scoped: Arc<dyn Authorizer> =
                Arc::new(NamespacedAccessAuthorizer::new(auth.rbac.clone()));
            cfg.authorizers.push(scoped);
            // amazon-eks-pod-identity-webhook: IRSA and EKS Pod Identity env and token volumes.
            cfg.external_mutators
                .push(Arc::new(crate::irsa::PodIdentityWebhook::new(
                    store.clone(),
                    eks.clone(),
                )));
            // EKS on Fargate: pods a Fargate profile selects go to the fargate-scheduler.
            cfg.external_mutators
                .push(Arc::new(crate::fargate::FargateWebhook::new(
                    store.clone(),
                    eks.clone(),
                )));
        }
        cfg.create_only = auth.create_only;
        cfg.subresources = auth.subresources;

        let api = skiff_apiserver::server::start(store.clone(), cfg)
            .await
            .map_err(|e| ControlPlaneError::Start(e.to_string()))?;
        // Controllers write through the registry (strategies, admission, resourceVersion checks).
        let (stop_controllers, controllers_stopped) = tokio::sync::watch::channel(false);
        let controller_client = Arc::new(RegistryClient::new(
            api.registry.clone(),
            "system:kube-controller-manager",
        ));
        let mut background = vec![
            tokio::spawn(skiff_controllers::run_all(
                controller_client,
                controllers_stopped.clone(),
            )),
            tokio::spawn(run_token_controller(store.clone(), id.clone(), pki.clone())),
            tokio::spawn(
                skiff_apiserver::auth_apis::root_ca_publisher::run_root_ca_publisher(
                    store.clone(),
                    Arc::new(RegistryClient::new(
                        api.registry.clone(),
                        "system:serviceaccount:kube-system:root-ca-cert-publisher",
                    )),
                    id.clone(),
                    pki.ca_cert_pem.clone(),
                ),
            ),
            tokio::spawn(run_aggregation_controller(
                store.clone(),
                id.clone(),
                auth.rbac.clone(),
            )),
        ];
        if let Some(wrapper) = &secrets_kms {
            background.push(wrapper.spawn_reencryption(controllers_stopped.clone()));
        }
        // kube-scheduler and the kubelets of the cluster's nodes, next to the controllers.
        let scheduler_client = Arc::new(RegistryClient::new(
            api.registry.clone(),
            "system:kube-scheduler",
        ));
        background.push(tokio::spawn(skiff_scheduler::run(
            scheduler_client,
            controllers_stopped.clone(),
        )));
        // Pod IPs: ENI secondary addresses of the node's instance on EKS clusters (the VPC CNI);
        // a bare control plane has no instances, so its nodes hand out addresses from their podCIDR.
        let network: Arc<dyn skiff_nodes::PodNetwork> = match &record.eks {
            Some(e) => Arc::new(EksPodNetwork::new(
                store.clone(),
                &e.account,
                &e.region,
                &id,
            )),
            None => Arc::new(skiff_nodes::sim::CidrPodNetwork::new()),
        };
        let kubelet_client = Arc::new(RegistryClient::new(api.registry.clone(), SIM_KUBELET_USER));
        background.push(tokio::spawn(skiff_nodes::run_sim(
            kubelet_client,
            network,
            controllers_stopped.clone(),
        )));
        // The in-cluster AWS integrations (load balancers, EBS CSI, ...), one row each.
        if let Some(eks) = &record.eks {
            for integration in crate::integrations::INTEGRATIONS {
                let client = Arc::new(RegistryClient::new(api.registry.clone(), integration.user));
                tracing::debug!(cluster = %record.name, integration = integration.name, "starting");
                background.push((integration.start)(
                    crate::integrations::IntegrationContext {
                        client,
                        store: store.clone(),
                        binding: eks.clone(),
                        cluster_id: id.clone(),
                        kubernetes_version: record.kubernetes_version.clone(),
                        shutdown: controllers_stopped.clone(),
                    },
                ));
            }
        }
        tracing::info!(cluster = %record.name, addr = %api.local_addr, "control plane started");
        running.insert(
            record.name.clone(),
            RunningCluster {
                record: record.clone(),
                ca_pem: pki.ca_cert_pem.clone(),
                api,
                background,
                stop_controllers,
            },
        );
        Ok(record)
    }
}

/// Delete every key under `prefix`, `PURGE_BATCH` per transaction.
async fn purge_prefix(
    store: &dyn skiff_store::Store,
    prefix: &str,
) -> Result<(), ControlPlaneError> {
    loop {
        let page = store
            .list(
                prefix,
                ListOptions {
                    limit: PURGE_BATCH,
                    ..ListOptions::default()
                },
            )
            .await?;
        if page.items.is_empty() {
            return Ok(());
        }
        let ops = page
            .items
            .into_iter()
            .map(|kv| Op::Delete {
                key: kv.key,
                precondition: Precondition::None,
            })
            .collect();
        store.txn(ops).await?;
    }
}

/// `/_skiff/health`: every running cluster's API answers `/readyz`.
#[async_trait::async_trait]
impl skiff_aws::gateway::health::HealthCheck for ControlPlanes {
    async fn check(&self) -> Result<(), String> {
        if !self.started.load(std::sync::atomic::Ordering::Acquire) {
            return Err("clusters are still being restored".to_string());
        }
        let addrs: Vec<(String, SocketAddr)> = self
            .running
            .lock()
            .await
            .iter()
            .map(|(n, c)| (n.clone(), c.api.local_addr))
            .collect();
        for (name, addr) in addrs {
            tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("cluster {name} API at {addr} does not answer: {e}"))?;
        }
        Ok(())
    }
}
