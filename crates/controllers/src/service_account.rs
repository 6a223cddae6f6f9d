//! The ServiceAccount controller (`pkg/controller/serviceaccount`): every active namespace has a
//! `default` ServiceAccount; deleting it brings it back.

use std::sync::Arc;

use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, ResourceRef, WriteOptions};
use skiff_k8s_core::status::ApiError;

use crate::ownership::{self, is_deleting, str_at};
use crate::runtime::informer::{Cache, Change, key_of};
use crate::runtime::queue::WorkQueue;
use crate::runtime::reconcile::{Action, Error, Reconciler};

pub const NAME: &str = "service-account-controller";
pub const DEFAULT: &str = "default";

pub fn namespaces() -> ResourceRef {
    ResourceRef::new("", "v1", "namespaces")
}

pub fn service_accounts() -> ResourceRef {
    ResourceRef::new("", "v1", "serviceaccounts")
}

pub struct ServiceAccountController {
    client: Arc<dyn ApiClient>,
    namespaces: Cache,
    service_accounts: Cache,
}

impl ServiceAccountController {
    pub fn new(client: Arc<dyn ApiClient>, namespaces: Cache, service_accounts: Cache) -> Self {
        Self {
            client,
            namespaces,
            service_accounts,
        }
    }

    /// Namespaces are the work items.
    pub fn on_namespace(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| {
            if !matches!(c, Change::Deleted(_)) {
                queue.add(&key_of(c.object()));
            }
        }
    }

    /// A deleted `default` ServiceAccount queues its namespace.
    pub fn on_service_account(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| {
            if let Change::Deleted(sa) = c
                && ownership::name(sa) == DEFAULT
            {
                queue.add(ownership::namespace(sa));
            }
        }
    }
}

fn is_terminating(ns: &Value) -> bool {
    is_deleting(ns) || str_at(ns, "/status/phase") == "Terminating"
}

#[async_trait::async_trait]
impl Reconciler for ServiceAccountController {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &str) -> Result<Action, Error> {
        let Some(ns) = self.namespaces.get(key) else {
            return Ok(Action::AwaitChange);
        };
        if is_terminating(&ns)
            || self
                .service_accounts
                .get(&format!("{key}/{DEFAULT}"))
                .is_some()
        {
            return Ok(Action::AwaitChange);
        }
        let sa =
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": DEFAULT}});
        let opts = WriteOptions {
            field_manager: Some(NAME.into()),
            ..Default::default()
        };
        match self
            .client
            .create(&service_accounts().in_namespace(key), sa, &opts)
            .await
        {
            // The cache lagged behind a create: nothing to do.
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(Action::AwaitChange),
            // Namespace lifecycle admission refuses creates in a namespace being deleted.
            Err(ApiError::Forbidden { .. }) => Ok(Action::AwaitChange),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeClient;

    #[tokio::test]
    async fn creates_default_only_where_missing_and_active() {
        let fake = Arc::new(FakeClient::default());
        let c = ServiceAccountController::new(fake.clone(), Cache::default(), Cache::default());
        c.namespaces
            .insert(json!({"metadata": {"name": "a"}, "status": {"phase": "Active"}}));
        c.namespaces.insert(json!({"metadata": {"name": "b"}}));
        c.namespaces
            .insert(json!({"metadata": {"name": "gone"}, "status": {"phase": "Terminating"}}));
        c.service_accounts
            .insert(json!({"metadata": {"name": "default", "namespace": "b"}}));
        for k in ["a", "b", "gone", "missing"] {
            assert_eq!(c.reconcile(k).await.unwrap(), Action::AwaitChange);
        }
        assert_eq!(fake.writes(), ["create serviceaccounts a/default"]);
        // Already there though the cache has not seen it: AlreadyExists is success.
        assert_eq!(c.reconcile("a").await.unwrap(), Action::AwaitChange);
        assert_eq!(fake.writes().len(), 1);
    }
}
