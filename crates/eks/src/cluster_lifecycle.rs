//! The cluster reconciler: EKS cluster records in the store → running control planes.
//!
//! The EKS API handlers (`skiff_aws::eks`) only record clusters (`CREATING`); this loop watches those
//! records (`/aws/<account>/<region>/eks/cluster/<name>`) and, for each, starts the cluster's control
//! plane and reports `ACTIVE` with its endpoint and CA. A record that disappears (DeleteCluster
//! removes it at once) or turns `DELETING` has its control plane stopped and purged. On start-up
//! [`ClusterLifecycle::sync`] brings every recorded cluster back and removes planes whose record is
//! gone; [`ClusterLifecycle::run`] then follows the watch, relisting if it falls behind.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures::StreamExt;
use serde_json::Value;
use skiff_store::{EventKind, ListOptions, Revision, Store};

use crate::cluster_dir::EksBinding;
use crate::control_plane::{ControlPlaneError, ControlPlanes, DEFAULT_KUBERNETES_VERSION};

/// All AWS records live under this prefix; EKS clusters are the `eks/cluster/` keys in it.
const AWS_PREFIX: &str = "/aws/";
/// Page size of the start-up scan.
const SCAN_PAGE: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    ControlPlane(#[from] ControlPlaneError),
    #[error("store: {0}")]
    Store(#[from] skiff_store::StoreError),
    #[error("recording the cluster status: {0}")]
    Record(String),
}

/// (account, region, name) of an EKS cluster record key, or None for any other key.
pub fn parse_cluster_key(key: &str) -> Option<(&str, &str, &str)> {
    let rest = key.strip_prefix(AWS_PREFIX)?;
    let mut parts = rest.splitn(5, '/');
    let (account, region, service, kind, name) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    (service == "eks" && kind == "cluster" && !name.is_empty() && !name.contains('/'))
        .then_some((account, region, name))
}

/// Drives EKS cluster records to running control planes.
pub struct ClusterLifecycle {
    store: Arc<dyn Store>,
    planes: Arc<ControlPlanes>,
}

impl ClusterLifecycle {
    pub fn new(store: Arc<dyn Store>, planes: Arc<ControlPlanes>) -> Self {
        Self { store, planes }
    }

    /// Reconcile every EKS cluster record, and remove EKS control planes whose record is gone.
    /// Returns the revision the scan was made at (where [`run`](Self::run) resumes).
    pub async fn sync(&self) -> Result<Revision, LifecycleError> {
        let mut start_after = None;
        let mut at = None;
        let mut seen = BTreeSet::new();
        let mut records = Vec::new();
        loop {
            let page = self
                .store
                .list(
                    AWS_PREFIX,
                    ListOptions {
                        at_revision: at,
                        start_after: start_after.take(),
                        limit: SCAN_PAGE,
                    },
                )
                .await?;
            at = Some(page.revision);
            for kv in &page.items {
                if let Some((account, region, name)) = parse_cluster_key(&kv.key)
                    && let Ok(record) = serde_json::from_slice::<Value>(&kv.value)
                {
                    records.push((
                        account.to_string(),
                        region.to_string(),
                        name.to_string(),
                        record,
                    ));
                }
            }
            start_after = page.items.last().map(|kv| kv.key.clone());
            if !page.more || start_after.is_none() {
                break;
            }
        }
        for (account, region, name, record) in records {
            let binding = self.apply(&account, &region, &name, &record).await;
            if let Some(b) = binding {
                seen.insert(b.plane_name());
            }
        }
        for orphan in self.planes.eks_records()? {
            if !seen.contains(&orphan.name) {
                tracing::info!(cluster = %orphan.name, "EKS cluster record gone: removing its control plane");
                self.planes.remove(&orphan.name).await?;
            }
        }
        Ok(at.unwrap_or_default())
    }

    /// Follow the store from `from`: reconcile each changed cluster record. Relists (a full
    /// [`sync`](Self::sync)) when the watch ends or falls behind. Runs until aborted.
    pub async fn run(self, mut from: Revision) {
        loop {
            match self.store.watch(AWS_PREFIX, from).await {
                Ok(mut events) => {
                    while let Some(ev) = events.next().await {
                        let ev = match ev {
                            Ok(ev) => ev,
                            Err(e) => {
                                tracing::warn!(error = %e, "EKS cluster watch ended; relisting");
                                break;
                            }
                        };
                        from = ev.kv.mod_revision;
                        let Some((account, region, name)) = parse_cluster_key(&ev.kv.key) else {
                            continue;
                        };
                        match ev.kind {
                            EventKind::Put => {
                                if let Ok(record) = serde_json::from_slice::<Value>(&ev.kv.value) {
                                    self.apply(account, region, name, &record).await;
                                }
                            }
                            EventKind::Delete => {
                                let b = binding(account, region, name, &Value::Null);
                                if let Err(e) = self.planes.remove(&b.plane_name()).await {
                                    tracing::warn!(cluster = %name, error = %e, "removing a deleted cluster");
                                }
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "watching EKS clusters"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            match self.sync().await {
                Ok(rev) => from = rev,
                Err(e) => tracing::warn!(error = %e, "relisting EKS clusters"),
            }
        }
    }

    /// Reconcile one record; failures are logged and the record marked `FAILED` (the client sees it
    /// in DescribeCluster). Returns the binding when the cluster should have a plane.
    async fn apply(
        &self,
        account: &str,
        region: &str,
        name: &str,
        record: &Value,
    ) -> Option<EksBinding> {
        match self.reconcile(account, region, name, record).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(cluster = %name, error = %e, "EKS cluster reconcile failed");
                let _ = skiff_aws::eks::set_cluster_status(
                    &*self.store,
                    account,
                    region,
                    name,
                    "FAILED",
                )
                .await;
                None
            }
        }
    }

    async fn reconcile(
        &self,
        account: &str,
        region: &str,
        name: &str,
        record: &Value,
    ) -> Result<Option<EksBinding>, LifecycleError> {
        let b = binding(account, region, name, record);
        let status = record["status"].as_str().unwrap_or_default();
        match status {
            "DELETING" => {
                self.planes.remove(&b.plane_name()).await?;
                return Ok(None);
            }
            "FAILED" => return Ok(None),
            _ => {}
        }
        let version = record["version"]
            .as_str()
            .unwrap_or(DEFAULT_KUBERNETES_VERSION);
        let plane = self.planes.ensure_eks(&b, version).await?;
        let endpoint = format!("https://127.0.0.1:{}", plane.port);
        let ca = self
            .planes
            .ca_pem(&plane.name)
            .await
            .map(|pem| base64::engine::general_purpose::STANDARD.encode(pem))
            .unwrap_or_default();
        let current = (
            record["endpoint"].as_str().unwrap_or_default(),
            record["certificateAuthority"]["data"]
                .as_str()
                .unwrap_or_default(),
        );
        // CREATING → ACTIVE; an ACTIVE (or UPDATING) record is only rewritten when the port moved.
        if status == "CREATING" || current != (endpoint.as_str(), ca.as_str()) {
            let was = if status == "CREATING" {
                "ACTIVE"
            } else {
                status
            };
            skiff_aws::eks::set_cluster_active(&*self.store, account, region, name, &endpoint, &ca)
                .await
                .map_err(|e| LifecycleError::Record(e.message))?;
            if was != "ACTIVE" {
                skiff_aws::eks::set_cluster_status(&*self.store, account, region, name, was)
                    .await
                    .map_err(|e| LifecycleError::Record(e.message))?;
            }
            tracing::info!(cluster = %name, %endpoint, "EKS cluster active");
        }
        Ok(Some(b))
    }
}

fn binding(account: &str, region: &str, name: &str, record: &Value) -> EksBinding {
    EksBinding {
        account: account.to_string(),
        region: region.to_string(),
        name: name.to_string(),
        issuer: record["identity"]["oidc"]["issuer"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cluster_keys_parse() {
        assert_eq!(
            parse_cluster_key("/aws/000000000000/us-east-1/eks/cluster/prod"),
            Some(("000000000000", "us-east-1", "prod"))
        );
        assert_eq!(
            parse_cluster_key("/aws/0/us-east-1/eks/nodegroup/prod/ng"),
            None
        );
        assert_eq!(parse_cluster_key("/aws/0/us-east-1/eks/cluster/"), None);
        assert_eq!(parse_cluster_key("/aws/0/us-east-1/eks/cluster/a/b"), None);
        assert_eq!(parse_cluster_key("/aws/0/us-east-1/ec2/vpc/vpc-1"), None);
        assert_eq!(parse_cluster_key("/k8s/x/core/pods/a"), None);
    }
}
