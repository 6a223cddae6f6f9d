//! AssumeRoleForPodIdentity: a pod's projected ServiceAccount token (audience
//! `pods.eks.amazonaws.com`) for temporary credentials of the role its ServiceAccount is associated
//! with.
//!
//! The token is verified as EKS does, locally: RS256 against the JWKS the cluster's control plane
//! published for its OIDC issuer (`skiff_aws::sts::register_oidc_issuer_keys`), `iss` = the cluster's
//! issuer, `aud` ∋ `pods.eks.amazonaws.com`, not expired, `sub` =
//! `system:serviceaccount:<namespace>:<name>`. The association for that ServiceAccount
//! (`eks/pod_identity.rs`) names the role; the role's trust policy must allow the service principal
//! `pods.eks.amazonaws.com` `sts:AssumeRole` (and `sts:TagSession` unless the association disables
//! session tags), with the session tags EKS sets available as `aws:RequestTag/...` conditions.
//! Credentials are issued by STS's own [`crate::sts::issue`], so they sign like AssumeRole's.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use super::{EksAuthError, EksAuthResult};
use crate::context::RequestContext;
use crate::iam::roles;
use crate::policy::{ContextMap, EvalPrincipal, EvalRequest, PolicyDocument, evaluate};
use crate::resources;

/// The audience the pod identity webhook projects tokens for.
pub const AUDIENCE: &str = "pods.eks.amazonaws.com";
/// The service principal a role's trust policy names for EKS Pod Identity.
pub const SERVICE_PRINCIPAL: &str = "pods.eks.amazonaws.com";
/// How long the credentials last (the agent refreshes before they expire).
pub const SESSION_SECONDS: i64 = 6 * 3600;

fn invalid_token(msg: impl Into<String>) -> EksAuthError {
    EksAuthError::InvalidToken(msg.into())
}

/// Verify `token` against the issuer's published keys; the verified claims.
pub fn verify_token(token: &str, issuer: &str, jwks: &JwkSet) -> EksAuthResult<Value> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| invalid_token("The provided token is not a valid JWT"))?;
    if header.alg != Algorithm::RS256 {
        return Err(invalid_token(
            "The provided token must be signed with RS256",
        ));
    }
    let candidates: Vec<_> = match &header.kid {
        Some(kid) => jwks.find(kid).into_iter().collect(),
        None => jwks.keys.iter().collect(),
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 0;
    let mut last = invalid_token("Failed to verify the token signature");
    for jwk in candidates {
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        match jsonwebtoken::decode::<Value>(token, &key, &validation) {
            Ok(data) => return Ok(data.claims),
            Err(e) => {
                last = match e.kind() {
                    ErrorKind::ExpiredSignature => {
                        EksAuthError::ExpiredToken("The provided token has expired".into())
                    }
                    ErrorKind::InvalidAudience => {
                        invalid_token(format!("The provided token's audience is not {AUDIENCE}"))
                    }
                    ErrorKind::InvalidIssuer => {
                        invalid_token("The provided token was not issued by this cluster")
                    }
                    ErrorKind::MissingRequiredClaim(c) => {
                        invalid_token(format!("The provided token has no {c} claim"))
                    }
                    ErrorKind::InvalidSignature => last,
                    _ => invalid_token("The provided token is not a valid JWT"),
                };
            }
        }
    }
    Err(last)
}

/// `system:serviceaccount:<namespace>:<name>` → (namespace, name).
fn service_account(claims: &Value) -> EksAuthResult<(String, String)> {
    claims["sub"]
        .as_str()
        .and_then(|s| s.strip_prefix("system:serviceaccount:"))
        .and_then(|s| s.split_once(':'))
        .filter(|(ns, sa)| !ns.is_empty() && !sa.is_empty() && !sa.contains(':'))
        .map(|(ns, sa)| (ns.to_string(), sa.to_string()))
        .ok_or_else(|| invalid_token("The provided token's subject is not a service account"))
}

/// `eks-<cluster>-<pod>-<uuid>` cut to STS's 64 characters, as EKS names pod identity sessions.
fn session_name(cluster: &str, pod: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(*c))
            .collect()
    };
    let tail = uuid::Uuid::new_v4().simple().to_string();
    let mut name = format!("eks-{}-{}", clean(cluster), clean(pod));
    name.truncate(64 - tail.len() - 1);
    format!("{name}-{tail}")
}

#[doc(alias = "AssumeRoleForPodIdentity")]
pub async fn assume_role_for_pod_identity(
    ctx: &RequestContext,
    input: Value,
) -> EksAuthResult<Value> {
    let cluster_name = input["clusterName"]
        .as_str()
        .ok_or_else(|| EksAuthError::InvalidParameter("clusterName is required".into()))?;
    let token = input["token"]
        .as_str()
        .ok_or_else(|| EksAuthError::InvalidParameter("token is required".into()))?;
    let (cluster, _) = crate::eks::clusters::load_cluster(ctx, cluster_name)
        .await
        .map_err(|e| match e.code.as_str() {
            "ResourceNotFoundException" => EksAuthError::ResourceNotFound(e.message),
            _ => EksAuthError::Internal(e),
        })?;
    let issuer = cluster["identity"]["oidc"]["issuer"]
        .as_str()
        .unwrap_or_default();
    let jwks: JwkSet =
        resources::get::<Value>(&*ctx.store, &crate::sts::web_identity::jwks_key(issuer))
            .await?
            .and_then(|(v, _)| serde_json::from_value(v).ok())
            // The control plane publishes its keys when it starts; none yet means nothing verifies.
            .ok_or_else(|| invalid_token("Failed to verify the token signature"))?;
    let claims = verify_token(token, issuer, &jwks)?;
    let (namespace, sa) = service_account(&claims)?;
    let association = crate::eks::pod_identity::list_pod_identity_records(
        &*ctx.store,
        &ctx.account_id,
        &ctx.region,
        cluster_name,
    )
    .await?
    .into_iter()
    .find(|a| a["namespace"] == namespace.as_str() && a["serviceAccount"] == sa.as_str())
    .ok_or_else(|| {
        EksAuthError::ResourceNotFound(format!(
            "No Pod Identity Association found for service account {sa} in namespace {namespace} of cluster {cluster_name}"
        ))
    })?;
    let role_arn = association["roleArn"].as_str().unwrap_or_default();
    let denied = || {
        EksAuthError::AccessDenied(format!(
            "{SERVICE_PRINCIPAL} is not authorized to perform sts:AssumeRole on resource {role_arn}"
        ))
    };
    let role = roles::by_arn(&*ctx.store, role_arn)
        .await
        .map_err(|e| EksAuthError::Internal(e.into()))?
        .ok_or_else(denied)?;
    let trust = PolicyDocument::parse_str(&role.trust_policy).map_err(|_| denied())?;

    let pod = &claims["kubernetes.io"]["pod"];
    let pod_name = pod["name"].as_str().unwrap_or(&sa);
    let tags_on = !association["disableSessionTags"].as_bool().unwrap_or(false);
    let mut context = ContextMap::new();
    if tags_on {
        let tags = [
            (
                "eks-cluster-arn",
                cluster["arn"].as_str().unwrap_or_default(),
            ),
            ("eks-cluster-name", cluster_name),
            ("kubernetes-namespace", namespace.as_str()),
            ("kubernetes-service-account", sa.as_str()),
            ("kubernetes-pod-name", pod_name),
            (
                "kubernetes-pod-uid",
                pod["uid"].as_str().unwrap_or_default(),
            ),
        ];
        for (k, v) in tags {
            context.insert(&format!("aws:RequestTag/{k}"), v.to_string());
        }
        context.insert_many(
            "aws:TagKeys",
            tags.iter().map(|(k, _)| k.to_string()).collect(),
        );
    }
    let principal = EvalPrincipal::Service(SERVICE_PRINCIPAL.to_string());
    let actions: &[&str] = if tags_on {
        &["sts:AssumeRole", "sts:TagSession"]
    } else {
        &["sts:AssumeRole"]
    };
    for action in actions {
        let req = EvalRequest {
            principal: &principal,
            action,
            resource: &role.arn,
            context: &context,
        };
        if !evaluate(&req, &[], Some(&trust), None).is_allowed() {
            return Err(denied());
        }
    }

    let (account, _) = crate::sts::role_parts(&role.arn).ok_or_else(denied)?;
    let session = session_name(cluster_name, pod_name);
    let arn = format!(
        "arn:aws:sts::{account}:assumed-role/{}/{session}",
        role.role_name
    );
    let user_id = format!("{}:{session}", role.role_id);
    let creds = crate::sts::issue(ctx, account, &arn, &user_id, SESSION_SECONDS, Vec::new())
        .await
        .map_err(|e| EksAuthError::Internal(e.into()))?;
    roles::mark_used(ctx, &role, &ctx.region).await;
    Ok(json!({
        "subject": {"namespace": namespace, "serviceAccount": sa},
        "audience": AUDIENCE,
        "podIdentityAssociation": {
            "associationArn": association["associationArn"],
            "associationId": association["associationId"],
        },
        "assumedRoleUser": {"arn": arn, "assumeRoleId": user_id},
        "credentials": {
            "sessionToken": creds["SessionToken"],
            "secretAccessKey": creds["SecretAccessKey"],
            "accessKeyId": creds["AccessKeyId"],
            "expiration": creds["Expiration"],
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_must_name_a_service_account() {
        let ok = service_account(&json!({"sub": "system:serviceaccount:default:app"})).unwrap();
        assert_eq!(ok, ("default".to_string(), "app".to_string()));
        for bad in [
            "system:node:x",
            "system:serviceaccount:default",
            "system:serviceaccount::x",
        ] {
            assert!(service_account(&json!({ "sub": bad })).is_err(), "{bad}");
        }
        assert!(service_account(&json!({})).is_err());
    }

    #[test]
    fn session_names_fit_sts_limits() {
        let n = session_name(&"c".repeat(100), "pod/with:odd");
        assert_eq!(n.len(), 64);
        assert!(n.starts_with("eks-ccc"));
        assert!(
            n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
        );
        let short = session_name("demo", "web-1");
        assert!(short.starts_with("eks-demo-web-1-"), "{short}");
    }
}
