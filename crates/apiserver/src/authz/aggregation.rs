//! The ClusterRole aggregation controller (kube-controller-manager `clusterroleaggregation`):
//! writes the resolved rules of each aggregated ClusterRole (`admin`, `edit`, `view`, or a user's)
//! into its stored `rules`, so `kubectl get clusterrole admin -o yaml` and `describe` show what
//! RBAC enforces. Enforcement does not wait for it: the RBAC cache resolves aggregation itself.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use skiff_store::{ListOptions, Op, Precondition, Store, StoreError};

use super::rbac::{PolicyRule, RBAC_GROUP, RbacAuthorizer};

/// Brings every stored aggregated ClusterRole's `rules` in line with `resolved`; returns how many
/// it rewrote. Writes carry the revision they were computed from, so a concurrent edit wins and
/// the next pass recomputes.
pub async fn reconcile_aggregated_roles(
    store: &dyn Store,
    cluster_id: &str,
    resolved: &[(String, Vec<PolicyRule>)],
) -> Result<usize, StoreError> {
    let prefix = format!("/k8s/{cluster_id}/{RBAC_GROUP}/clusterroles/");
    let list = store.list(&prefix, ListOptions::default()).await?;
    let mut written = 0;
    for kv in list.items {
        let Ok(mut obj) = serde_json::from_slice::<Value>(&kv.value) else {
            continue;
        };
        if obj.get("aggregationRule").is_none_or(Value::is_null) {
            continue;
        }
        let name = &kv.key[prefix.len()..];
        let Some((_, want)) = resolved.iter().find(|(n, _)| n == name) else {
            continue;
        };
        let have: Vec<PolicyRule> = obj
            .get("rules")
            .cloned()
            .and_then(|r| serde_json::from_value(r).ok())
            .unwrap_or_default();
        if have == *want {
            continue;
        }
        obj["rules"] = serde_json::to_value(want).unwrap_or(Value::Array(Vec::new()));
        let value = serde_json::to_vec(&obj).map_err(|e| StoreError::Io(e.to_string()))?;
        match store
            .txn(vec![Op::Put {
                key: kv.key.clone(),
                value: Bytes::from(value),
                precondition: Precondition::ModRevision(kv.mod_revision),
            }])
            .await
        {
            Ok(_) => written += 1,
            // Someone edited it meanwhile: their change comes back through the watch.
            Err(StoreError::PreconditionFailed { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

/// Reconciles after every RBAC change the cache applies, until the task is dropped.
pub async fn run_aggregation_controller(
    store: Arc<dyn Store>,
    cluster_id: String,
    rbac: Arc<RbacAuthorizer>,
) {
    let mut changes = rbac.subscribe();
    loop {
        if let Err(e) =
            reconcile_aggregated_roles(&*store, &cluster_id, &rbac.aggregated_rules()).await
        {
            tracing::warn!(error = %e, "clusterrole aggregation failed");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}
