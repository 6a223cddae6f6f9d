//! `GET /_skiff/health`: 200 once the store answers and every registered check passes (tests and
//! `skiff up` wait on it), 503 with the failing checks otherwise.

use std::sync::{Arc, RwLock};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::GatewayState;

/// A readiness condition another part of Skiff registers (the binary adds one per restored cluster).
#[async_trait::async_trait]
pub trait HealthCheck: Send + Sync + 'static {
    /// `Err(reason)` while not ready.
    async fn check(&self) -> Result<(), String>;
}

/// A named check.
type Named = (String, Arc<dyn HealthCheck>);

/// The registered checks, shared by clones.
#[derive(Clone, Default)]
pub struct HealthChecks {
    checks: Arc<RwLock<Vec<Named>>>,
}

impl HealthChecks {
    pub fn register(&self, name: impl Into<String>, check: Arc<dyn HealthCheck>) {
        let mut checks = self.checks.write().unwrap_or_else(|e| e.into_inner());
        checks.push((name.into(), check));
    }

    /// Remove a check (a deleted cluster no longer gates health).
    pub fn unregister(&self, name: &str) {
        let mut checks = self.checks.write().unwrap_or_else(|e| e.into_inner());
        checks.retain(|(n, _)| n != name);
    }

    fn snapshot(&self) -> Vec<Named> {
        self.checks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

pub async fn health(State(state): State<GatewayState>) -> (StatusCode, Json<Value>) {
    let mut results = Map::new();
    let mut ok = true;
    let store = match state.store.current_revision().await {
        Ok(rev) => json!({"ok": true, "revision": rev}),
        Err(e) => {
            ok = false;
            json!({"ok": false, "error": e.to_string()})
        }
    };
    results.insert("store".into(), store);
    for (name, check) in state.health.snapshot() {
        let r = match check.check().await {
            Ok(()) => json!({"ok": true}),
            Err(reason) => {
                ok = false;
                json!({"ok": false, "error": reason})
            }
        };
        results.insert(name, r);
    }
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"status": if ok { "ok" } else { "unavailable" }, "checks": results})),
    )
}
