//! The legacy ServiceAccount token controller (kube-controller-manager `tokens_controller.go`):
//! a Secret of type `kubernetes.io/service-account-token` annotated with
//! `kubernetes.io/service-account.name` gets `data.token`, `data.ca.crt` and `data.namespace`.
//!
//! Writes go straight to the store with a revision precondition, so a concurrent edit of the
//! Secret is never overwritten: the controller re-reads and tries again.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use skiff_store::{EventKind, ListOptions, Op, Precondition, Store, StoreError};

use crate::authn::service_account_token::{LEGACY_ISSUER, TokenSigner};
use crate::authn::{get_object, object_key};
use crate::pki::ClusterPki;

pub const SECRET_TYPE: &str = "kubernetes.io/service-account-token";
pub const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
pub const SA_UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// The Secret with its token data filled in, or `None` when there is nothing to do: not a token
/// Secret, already complete, or annotated with another ServiceAccount uid (a recreated account;
/// upstream deletes such Secrets, we leave them unusable).
pub fn fill_service_account_token_secret(
    secret: &Value,
    service_account: &Value,
    signer: &TokenSigner,
    ca_cert_pem: &str,
) -> Result<Option<Value>, String> {
    if str_at(secret, "/type") != SECRET_TYPE {
        return Ok(None);
    }
    let annotations = secret.pointer("/metadata/annotations");
    let sa_name = annotations
        .and_then(|a| a.get(SA_NAME_ANNOTATION))
        .and_then(Value::as_str)
        .unwrap_or("");
    if sa_name.is_empty() || sa_name != str_at(service_account, "/metadata/name") {
        return Ok(None);
    }
    let sa_uid = str_at(service_account, "/metadata/uid");
    let annotated_uid = annotations
        .and_then(|a| a.get(SA_UID_ANNOTATION))
        .and_then(Value::as_str)
        .unwrap_or("");
    if !annotated_uid.is_empty() && annotated_uid != sa_uid {
        return Ok(None);
    }
    let data = secret.get("data");
    let has = |k: &str| {
        data.and_then(|d| d.get(k))
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    if has("token") && has("ca.crt") && has("namespace") && annotated_uid == sa_uid {
        return Ok(None);
    }
    let ns = str_at(secret, "/metadata/namespace");
    let name = str_at(secret, "/metadata/name");
    if ns.is_empty() || name.is_empty() {
        return Err("secret without namespace or name".into());
    }
    let mut out = secret.clone();
    let token = match data.and_then(|d| d.get("token")).and_then(Value::as_str) {
        // Keep an existing token: clients may already hold it.
        Some(t) if !t.is_empty() => t.to_string(),
        _ => b64(&signer
            .issue_legacy(ns, sa_name, sa_uid, name)
            .map_err(|e| e.0)?),
    };
    if !out.get("data").is_some_and(Value::is_object) {
        out["data"] = json!({});
    }
    out["data"]["token"] = json!(token);
    out["data"]["ca.crt"] = json!(b64(ca_cert_pem));
    out["data"]["namespace"] = json!(b64(ns));
    out["metadata"]["annotations"][SA_UID_ANNOTATION] = json!(sa_uid);
    Ok(Some(out))
}

/// Processes one Secret key: fill it if needed, retrying on a concurrent write.
async fn sync_secret(
    store: &dyn Store,
    cluster_id: &str,
    signer: &TokenSigner,
    ca_pem: &str,
    key: &str,
) -> Result<bool, String> {
    for _ in 0..5 {
        let Some((secret, rev)) = get_object(store, key).await? else {
            return Ok(false);
        };
        let ns = str_at(&secret, "/metadata/namespace");
        let Some(sa_name) = secret
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(SA_NAME_ANNOTATION))
            .and_then(Value::as_str)
        else {
            return Ok(false);
        };
        let sa_key = object_key(cluster_id, "", "serviceaccounts", Some(ns), sa_name);
        let Some((sa, _)) = get_object(store, &sa_key).await? else {
            // The account may be created later; its creation triggers another pass.
            return Ok(false);
        };
        let Some(filled) = fill_service_account_token_secret(&secret, &sa, signer, ca_pem)? else {
            return Ok(false);
        };
        let value = serde_json::to_vec(&filled).map_err(|e| e.to_string())?;
        match store
            .txn(vec![Op::Put {
                key: key.to_string(),
                value: Bytes::from(value),
                precondition: Precondition::ModRevision(rev),
            }])
            .await
        {
            Ok(_) => return Ok(true),
            Err(StoreError::PreconditionFailed { .. }) => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!("{key}: gave up after repeated conflicts"))
}

/// Fills every token Secret of the cluster now and whenever a Secret or ServiceAccount changes.
/// Runs until the task is dropped; relists after a watch is cut off.
pub async fn run_token_controller(store: Arc<dyn Store>, cluster_id: String, pki: Arc<ClusterPki>) {
    let signer = match TokenSigner::new(&pki, LEGACY_ISSUER) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "token controller cannot load the signing key");
            return;
        }
    };
    let secrets = format!("/k8s/{cluster_id}/core/secrets/");
    let accounts = format!("/k8s/{cluster_id}/core/serviceaccounts/");
    loop {
        let rev = match resync_all(
            &*store,
            &cluster_id,
            &signer,
            &pki.ca_cert_pem,
            &secrets,
            None,
        )
        .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "token controller list failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let (ws, wa) = match (
            store.watch(&secrets, rev).await,
            store.watch(&accounts, rev).await,
        ) {
            (Ok(a), Ok(b)) => (a, b),
            _ => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut events = futures::stream::select(ws, wa);
        while let Some(ev) = events.next().await {
            let Ok(ev) = ev else { break };
            if ev.kind != EventKind::Put {
                continue;
            }
            let result = if ev.kv.key.starts_with(&secrets) {
                sync_secret(&*store, &cluster_id, &signer, &pki.ca_cert_pem, &ev.kv.key)
                    .await
                    .map(|_| ())
            } else {
                // A ServiceAccount appeared or changed: revisit the Secrets of its namespace.
                let ns = ev.kv.key[accounts.len()..].split('/').next().unwrap_or("");
                resync_all(
                    &*store,
                    &cluster_id,
                    &signer,
                    &pki.ca_cert_pem,
                    &format!("{secrets}{ns}/"),
                    None,
                )
                .await
                .map(|_| ())
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, key = %ev.kv.key, "token controller sync failed");
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn resync_all(
    store: &dyn Store,
    cluster_id: &str,
    signer: &TokenSigner,
    ca_pem: &str,
    prefix: &str,
    at: Option<i64>,
) -> Result<i64, String> {
    let list = store
        .list(
            prefix,
            ListOptions {
                at_revision: at,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    for kv in &list.items {
        let is_token_secret = serde_json::from_slice::<Value>(&kv.value)
            .is_ok_and(|v| str_at(&v, "/type") == SECRET_TYPE);
        if is_token_secret
            && let Err(e) = sync_secret(store, cluster_id, signer, ca_pem, &kv.key).await
        {
            tracing::warn!(error = %e, key = %kv.key, "token controller sync failed");
        }
    }
    Ok(list.revision)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_token_ca_and_namespace_once() {
        let pki = ClusterPki::generate("c").unwrap();
        let signer = TokenSigner::new(&pki, LEGACY_ISSUER).unwrap();
        let sa = json!({"metadata": {"name": "test-a", "namespace": "default", "uid": "u-1"}});
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
            "metadata": {"name": "secret-sa-test-a", "namespace": "default",
                         "annotations": {SA_NAME_ANNOTATION: "test-a"}},
        });
        let filled = fill_service_account_token_secret(&secret, &sa, &signer, &pki.ca_cert_pem)
            .unwrap()
            .unwrap();
        let dec = |k: &str| {
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(filled["data"][k].as_str().unwrap())
                    .unwrap(),
            )
            .unwrap()
        };
        assert_eq!(dec("namespace"), "default");
        assert_eq!(dec("ca.crt"), pki.ca_cert_pem);
        let claims = signer.verify_signature(&dec("token")).unwrap().unwrap();
        assert_eq!(claims["sub"], "system:serviceaccount:default:test-a");
        assert_eq!(
            claims["kubernetes.io/serviceaccount/secret.name"],
            "secret-sa-test-a"
        );
        assert_eq!(filled["metadata"]["annotations"][SA_UID_ANNOTATION], "u-1");
        // Second pass: nothing to do.
        assert!(
            fill_service_account_token_secret(&filled, &sa, &signer, &pki.ca_cert_pem)
                .unwrap()
                .is_none()
        );
        // Recreated account (new uid): left alone.
        let sa2 = json!({"metadata": {"name": "test-a", "namespace": "default", "uid": "u-2"}});
        assert!(
            fill_service_account_token_secret(&filled, &sa2, &signer, &pki.ca_cert_pem)
                .unwrap()
                .is_none()
        );
        // Other secret types are ignored.
        let opaque = json!({"type": "Opaque", "metadata": {"name": "x", "namespace": "default"}});
        assert!(
            fill_service_account_token_secret(&opaque, &sa, &signer, &pki.ca_cert_pem)
                .unwrap()
                .is_none()
        );
    }
}
