//! `POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token` (TokenRequest, `kubectl create
//! token`): a bound, expiring ServiceAccount token.

use std::sync::Arc;

use serde_json::{Value, json};
use skiff_k8s_core::status::{FieldError, FieldErrorKind};
use skiff_store::Store;

use crate::authn::service_account_token::{BoundObject, BoundTokenSpec, TokenSigner};
use crate::authn::{get_object, object_key};
use crate::registry::hooks::{HookError, HookRequest, SubresourceHandler};

/// Default `spec.expirationSeconds` (one hour, as upstream).
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// Upstream refuses anything shorter than ten minutes.
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
/// And anything longer than 2^32 seconds.
pub const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;

#[doc(alias = "TokenRequest")]
pub struct TokenRequestHandler {
    signer: Arc<TokenSigner>,
    store: Arc<dyn Store>,
    cluster_id: String,
    api_audiences: Vec<String>,
}

impl TokenRequestHandler {
    pub fn new(
        signer: Arc<TokenSigner>,
        store: Arc<dyn Store>,
        cluster_id: &str,
        api_audiences: Vec<String>,
    ) -> Self {
        Self {
            signer,
            store,
            cluster_id: cluster_id.to_string(),
            api_audiences,
        }
    }

    async fn live_object(
        &self,
        resource: &str,
        ns: &str,
        name: &str,
    ) -> Result<Option<Value>, HookError> {
        let key = object_key(&self.cluster_id, "", resource, Some(ns), name);
        Ok(get_object(&*self.store, &key)
            .await
            .map_err(HookError::Internal)?
            .map(|(v, _)| v)
            .filter(|v| v.pointer("/metadata/deletionTimestamp").is_none()))
    }
}

fn uid_of(v: &Value) -> String {
    v.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// `spec.boundObjectRef` as `(kind, name, uid)`.
type BoundRef = (String, String, String);

/// Validates `spec` (upstream `ValidateTokenRequest`) and returns `(audiences, expiration, boundRef)`.
fn validate_spec(spec: &Value) -> Result<(Vec<String>, i64, Option<BoundRef>), Vec<FieldError>> {
    let mut errs = Vec::new();
    let audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let exp = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => DEFAULT_EXPIRATION_SECONDS,
        Some(v) => match v.as_i64() {
            Some(n) if n < MIN_EXPIRATION_SECONDS => {
                errs.push(FieldError::invalid(
                    "spec.expirationSeconds",
                    v.clone(),
                    "may not specify a duration less than 10 minutes",
                ));
                n
            }
            Some(n) if n > MAX_EXPIRATION_SECONDS => {
                errs.push(FieldError::invalid(
                    "spec.expirationSeconds",
                    v.clone(),
                    "may not specify a duration larger than 2^32 seconds",
                ));
                n
            }
            Some(n) => n,
            None => {
                errs.push(FieldError::invalid(
                    "spec.expirationSeconds",
                    v.clone(),
                    "must be an integer",
                ));
                0
            }
        },
    };
    let bound = match spec.get("boundObjectRef").filter(|b| !b.is_null()) {
        None => None,
        Some(b) => {
            let kind = b
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let name = b
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let uid = b
                .get("uid")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let api_version = b.get("apiVersion").and_then(Value::as_str).unwrap_or("v1");
            if kind != "Pod" && kind != "Secret" {
                errs.push(FieldError {
                    path: "spec.boundObjectRef.kind".into(),
                    kind: FieldErrorKind::NotSupported(vec!["Pod".into(), "Secret".into()]),
                    value: Some(json!(kind)),
                    detail: String::new(),
                });
            }
            if api_version != "v1" {
                errs.push(FieldError {
                    path: "spec.boundObjectRef.apiVersion".into(),
                    kind: FieldErrorKind::NotSupported(vec!["v1".into()]),
                    value: Some(json!(api_version)),
                    detail: String::new(),
                });
            }
            if name.is_empty() {
                errs.push(FieldError::required("spec.boundObjectRef.name", ""));
            }
            Some((kind, name, uid))
        }
    };
    if errs.is_empty() {
        Ok((audiences, exp, bound))
    } else {
        Err(errs)
    }
}

#[async_trait::async_trait]
impl SubresourceHandler for TokenRequestHandler {
    fn parent(&self) -> (&str, &str) {
        ("serviceaccounts", "")
    }

    fn subresource(&self) -> &str {
        "token"
    }

    fn kind(&self) -> (&str, &str, &str) {
        ("TokenRequest", "authentication.k8s.io", "v1")
    }

    async fn create(&self, req: &HookRequest<'_>, body: Value) -> Result<Value, HookError> {
        let (Some(ns), Some(sa_name)) = (req.namespace, req.name) else {
            return Err(HookError::BadRequest(
                "a ServiceAccount namespace and name are required".into(),
            ));
        };
        if !body.is_object() {
            return Err(HookError::BadRequest(
                "the body must be a TokenRequest object".into(),
            ));
        }
        if let Some(k) = body.get("kind").and_then(Value::as_str)
            && k != "TokenRequest"
        {
            return Err(HookError::BadRequest(format!(
                "{k} cannot be handled as a TokenRequest"
            )));
        }
        let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
        let (mut audiences, exp, bound_ref) = validate_spec(&spec).map_err(HookError::Invalid)?;
        if audiences.is_empty() {
            audiences = self.api_audiences.clone();
        }
        let Some(sa) = self.live_object("serviceaccounts", ns, sa_name).await? else {
            return Err(HookError::NotFound {
                resource: "serviceaccounts".into(),
                name: sa_name.into(),
            });
        };
        let mut bound = None;
        if let Some((kind, name, uid)) = &bound_ref {
            let resource = if kind == "Pod" { "pods" } else { "secrets" };
            let Some(obj) = self.live_object(resource, ns, name).await? else {
                return Err(HookError::NotFound {
                    resource: resource.into(),
                    name: name.clone(),
                });
            };
            let live_uid = uid_of(&obj);
            if !uid.is_empty() && *uid != live_uid {
                return Err(HookError::BadRequest(format!(
                    "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
                )));
            }
            // A token bound to a pod must belong to the pod's own ServiceAccount.
            if kind == "Pod" {
                let pod_sa = obj
                    .pointer("/spec/serviceAccountName")
                    .and_then(Value::as_str)
                    .unwrap_or("default");
                if pod_sa != sa_name {
                    return Err(HookError::BadRequest(format!(
                        "cannot bind token for serviceaccount \"{sa_name}\" to pod running with different serviceaccount name."
                    )));
                }
            }
            bound = Some(BoundObject {
                kind: kind.clone(),
                name: name.clone(),
                uid: live_uid,
            });
        }
        let now = jiff::Timestamp::now();
        let spec_for_token = BoundTokenSpec {
            namespace: ns.to_string(),
            service_account: sa_name.to_string(),
            service_account_uid: uid_of(&sa),
            audiences: audiences.clone(),
            expiration_seconds: exp,
            bound: bound.clone(),
        };
        let (token, exp_at) = self
            .signer
            .issue_bound(&spec_for_token, now.as_second())
            .map_err(|e| HookError::Internal(e.0))?;
        let expiration = jiff::Timestamp::from_second(exp_at)
            .map(|t| t.to_string())
            .map_err(|e| HookError::Internal(e.to_string()))?;
        let bound_json = match &bound {
            Some(b) => json!({ "kind": b.kind, "apiVersion": "v1", "name": b.name, "uid": b.uid }),
            None => Value::Null,
        };
        Ok(json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": { "name": sa_name, "namespace": ns, "creationTimestamp": now.to_string() },
            "spec": { "audiences": audiences, "expirationSeconds": exp, "boundObjectRef": bound_json },
            "status": { "token": token, "expirationTimestamp": expiration },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiration_rules() {
        assert_eq!(validate_spec(&json!({})).unwrap().1, 3600);
        assert_eq!(
            validate_spec(&json!({"expirationSeconds": 600})).unwrap().1,
            600
        );
        let e = validate_spec(&json!({"expirationSeconds": 10})).unwrap_err();
        assert_eq!(e[0].path, "spec.expirationSeconds");
        assert_eq!(
            e[0].detail,
            "may not specify a duration less than 10 minutes"
        );
        assert!(validate_spec(&json!({"expirationSeconds": 1i64 << 33})).is_err());
        assert!(validate_spec(&json!({"expirationSeconds": "x"})).is_err());
    }

    #[test]
    fn bound_object_ref_rules() {
        let ok = validate_spec(
            &json!({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p"}}),
        )
        .unwrap();
        assert_eq!(ok.2.unwrap().0, "Pod");
        let e =
            validate_spec(&json!({"boundObjectRef": {"kind": "Node", "name": "n"}})).unwrap_err();
        assert_eq!(e[0].path, "spec.boundObjectRef.kind");
        let e = validate_spec(&json!({"boundObjectRef": {"kind": "Secret"}})).unwrap_err();
        assert_eq!(e[0].path, "spec.boundObjectRef.name");
    }
}
