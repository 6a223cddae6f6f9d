//! `/healthz`, `/livez`, `/readyz` with `?verbose` and per-check paths (`/readyz/etcd`).

use http::StatusCode;

use super::{Api, Reply, not_found_path};
use skiff_k8s_core::status::ApiError;

impl Api {
    pub(crate) async fn health(
        &self,
        which: &str,
        only: Option<&str>,
        verbose: bool,
    ) -> Result<Reply, ApiError> {
        // `etcd` is the store: it answers when its revision can be read.
        let store_ok = self.registry.store().current_revision().await.is_ok();
        let checks: [(&str, bool); 3] = [("ping", true), ("log", true), ("etcd", store_ok)];
        if let Some(name) = only {
            let Some((_, ok)) = checks.iter().find(|(n, _)| *n == name) else {
                return Err(not_found_path());
            };
            return Ok(if *ok {
                Reply::text(StatusCode::OK, "ok".into())
            } else {
                Reply::text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("internal server error: {name} check failed"),
                )
            });
        }
        let all_ok = checks.iter().all(|(_, ok)| *ok);
        if !verbose && all_ok {
            return Ok(Reply::text(StatusCode::OK, "ok".into()));
        }
        let mut out = String::new();
        for (n, ok) in checks {
            if ok {
                out.push_str(&format!("[+]{n} ok\n"));
            } else {
                out.push_str(&format!("[-]{n} failed: reason withheld\n"));
            }
        }
        if all_ok {
            out.push_str(&format!("{which} check passed\n"));
            Ok(Reply::text(StatusCode::OK, out))
        } else {
            out.push_str(&format!("{which} check failed\n"));
            Ok(Reply::text(StatusCode::INTERNAL_SERVER_ERROR, out))
        }
    }
}
