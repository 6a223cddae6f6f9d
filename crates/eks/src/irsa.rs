//! IAM roles for service accounts (amazon-eks-pod-identity-webhook), built in.
//!
//! On EKS a mutating webhook rewrites every new pod whose ServiceAccount carries
//! `eks.amazonaws.com/role-arn`: each container gets `AWS_ROLE_ARN`, `AWS_WEB_IDENTITY_TOKEN_FILE`
//! and the region variables, and the pod gets the projected `aws-iam-token` volume (a
//! ServiceAccount token for `sts.amazonaws.com`) mounted where the SDKs look. The token is signed by
//! the cluster's OIDC issuer, so `sts:AssumeRoleWithWebIdentity` verifies it against the keys the
//! control plane published (`skiff_aws::sts::web_identity`). The same webhook also serves EKS Pod
//! Identity: pods of a ServiceAccount with a pod identity association get the container-credentials
//! variables and the `eks-pod-identity-token` volume.
//!
//! [`mutate_pod`] and [`inject_pod_identity`] are pure functions over the pod; [`PodIdentityWebhook`]
//! is the admission adapter that finds the ServiceAccount and associations and calls them.

use std::sync::Arc;

use serde_json::{Value, json};
use skiff_k8s_core::status::ApiError;
use skiff_store::Store;

use crate::cluster_dir::EksBinding;

/// ServiceAccount annotation naming the role to assume.
pub const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// ServiceAccount annotation overriding the token audience.
pub const AUDIENCE_ANNOTATION: &str = "eks.amazonaws.com/audience";
/// ServiceAccount annotation: `"true"` / `"false"` for `AWS_STS_REGIONAL_ENDPOINTS=regional`.
pub const REGIONAL_STS_ANNOTATION: &str = "eks.amazonaws.com/sts-regional-endpoints";
/// ServiceAccount (or pod) annotation: the token's lifetime in seconds.
pub const TOKEN_EXPIRATION_ANNOTATION: &str = "eks.amazonaws.com/token-expiration";
/// Pod annotation: comma-separated container names left untouched.
pub const SKIP_CONTAINERS_ANNOTATION: &str = "eks.amazonaws.com/skip-containers";

/// The audience STS expects by default.
pub const DEFAULT_AUDIENCE: &str = "sts.amazonaws.com";
/// The webhook's default token lifetime (`--token-expiration`).
pub const DEFAULT_EXPIRATION: i64 = 86400;
/// The shortest lifetime the webhook accepts; shorter annotations are raised to it (as upstream).
pub const MIN_EXPIRATION: i64 = 3600;
/// The IRSA volume and where it is mounted.
pub const IRSA_VOLUME: &str = "aws-iam-token";
pub const IRSA_MOUNT_PATH: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
pub const IRSA_TOKEN_FILE: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";

/// EKS Pod Identity: the agent's credentials endpoint, token audience, volume and mount.
pub const POD_IDENTITY_URI: &str = "http://169.254.170.23/v1/credentials";
pub const POD_IDENTITY_AUDIENCE: &str = "pods.eks.amazonaws.com";
pub const POD_IDENTITY_VOLUME: &str = "eks-pod-identity-token";
pub const POD_IDENTITY_MOUNT_PATH: &str = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount";
pub const POD_IDENTITY_TOKEN_FILE: &str =
    "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token";

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"]["annotations"][key].as_str()
}

/// The token lifetime: the pod's annotation, else the ServiceAccount's, else the default; values
/// that do not parse fall back to the default and short ones are raised to [`MIN_EXPIRATION`].
fn expiration(pod: &Value, sa: &Value) -> i64 {
    annotation(pod, TOKEN_EXPIRATION_ANNOTATION)
        .or_else(|| annotation(sa, TOKEN_EXPIRATION_ANNOTATION))
        .and_then(|s| s.trim().parse::<i64>().ok())
        .map(|s| s.max(MIN_EXPIRATION))
        .unwrap_or(DEFAULT_EXPIRATION)
}

fn skipped(pod: &Value) -> Vec<String> {
    annotation(pod, SKIP_CONTAINERS_ANNOTATION)
        .map(|s| {
            s.split(',')
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Adds `volume` unless the pod already has one of that name (a re-admitted or hand-written pod).
fn add_volume(spec: &mut Value, volume: Value) {
    let name = volume["name"].clone();
    if !spec["volumes"].is_array() {
        spec["volumes"] = json!([]);
    }
    if let Some(list) = spec["volumes"].as_array_mut()
        && !list.iter().any(|v| v["name"] == name)
    {
        list.push(volume);
    }
}

/// Adds env vars and a mount to every container and init container not skipped. A variable the
/// container already sets is kept: the user's value wins, as upstream.
fn patch_containers(spec: &mut Value, skip: &[String], env: &[(&str, String)], mount: &Value) {
    for member in ["initContainers", "containers"] {
        let Some(list) = spec.get_mut(member).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in list {
            let name = c["name"].as_str().unwrap_or_default();
            if skip.iter().any(|s| s == name) {
                continue;
            }
            if !c["env"].is_array() {
                c["env"] = json!([]);
            }
            if let Some(vars) = c["env"].as_array_mut() {
                for (k, v) in env {
                    if !vars.iter().any(|e| e["name"] == *k) {
                        vars.push(json!({"name": k, "value": v}));
                    }
                }
            }
            if !c["volumeMounts"].is_array() {
                c["volumeMounts"] = json!([]);
            }
            if let Some(mounts) = c["volumeMounts"].as_array_mut()
                && !mounts
                    .iter()
                    .any(|m| m["name"] == mount["name"] || m["mountPath"] == mount["mountPath"])
            {
                mounts.push(mount.clone());
            }
        }
    }
}

/// The IRSA mutation of `pod` for its ServiceAccount `sa` in `region`. Returns whether the pod
/// was changed (false when the ServiceAccount names no role).
#[doc(alias = "amazon-eks-pod-identity-webhook")]
pub fn mutate_pod(pod: &mut Value, sa: &Value, region: &str) -> bool {
    let Some(role_arn) = annotation(sa, ROLE_ARN_ANNOTATION).filter(|r| !r.trim().is_empty())
    else {
        return false;
    };
    let role_arn = role_arn.trim().to_string();
    let audience = annotation(sa, AUDIENCE_ANNOTATION)
        .filter(|a| !a.is_empty())
        .unwrap_or(DEFAULT_AUDIENCE)
        .to_string();
    // EKS runs the webhook with regional endpoints on; the annotation can turn them off.
    let regional = annotation(sa, REGIONAL_STS_ANNOTATION).is_none_or(|v| v != "false");
    let seconds = expiration(pod, sa);
    let skip = skipped(pod);

    let mut env = Vec::new();
    if regional {
        env.push(("AWS_STS_REGIONAL_ENDPOINTS", "regional".to_string()));
    }
    env.push(("AWS_DEFAULT_REGION", region.to_string()));
    env.push(("AWS_REGION", region.to_string()));
    env.push(("AWS_ROLE_ARN", role_arn));
    env.push(("AWS_WEB_IDENTITY_TOKEN_FILE", IRSA_TOKEN_FILE.to_string()));
    let mount = json!({"name": IRSA_VOLUME, "mountPath": IRSA_MOUNT_PATH, "readOnly": true});
    let volume = json!({"name": IRSA_VOLUME, "projected": {"sources": [{"serviceAccountToken": {
        "audience": audience, "expirationSeconds": seconds, "path": "token"}}]}});
    let spec = &mut pod["spec"];
    patch_containers(spec, &skip, &env, &mount);
    add_volume(spec, volume);
    true
}

/// The EKS Pod Identity mutation: the container-credentials variables and the
/// `eks-pod-identity-token` volume (for a ServiceAccount with an association).
pub fn inject_pod_identity(pod: &mut Value, region: &str) {
    let skip = skipped(pod);
    let env = [
        ("AWS_STS_REGIONAL_ENDPOINTS", "regional".to_string()),
        ("AWS_DEFAULT_REGION", region.to_string()),
        ("AWS_REGION", region.to_string()),
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            POD_IDENTITY_URI.to_string(),
        ),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            POD_IDENTITY_TOKEN_FILE.to_string(),
        ),
    ];
    let mount = json!({"name": POD_IDENTITY_VOLUME, "mountPath": POD_IDENTITY_MOUNT_PATH, "readOnly": true});
    let volume = json!({"name": POD_IDENTITY_VOLUME, "projected": {"sources": [{"serviceAccountToken": {
        "audience": POD_IDENTITY_AUDIENCE, "expirationSeconds": DEFAULT_EXPIRATION,
        "path": POD_IDENTITY_VOLUME}}]}});
    let spec = &mut pod["spec"];
    patch_containers(spec, &skip, &env, &mount);
    add_volume(spec, volume);
}

/// How the adapter reads a ServiceAccount during admission (the API server passes its registry).
#[async_trait::async_trait]
pub trait ServiceAccountLookup: Send + Sync {
    async fn service_account(&self, namespace: &str, name: &str)
    -> Result<Option<Value>, ApiError>;
}

/// ServiceAccounts read through a cluster client (tests, out-of-process callers).
pub struct ClientLookup<'a>(pub &'a dyn skiff_k8s_core::client::ApiClient);

#[async_trait::async_trait]
impl ServiceAccountLookup for ClientLookup<'_> {
    async fn service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, ApiError> {
        let r = skiff_k8s_core::client::ResourceRef::new("", "v1", "serviceaccounts")
            .in_namespace(namespace);
        self.0.get_opt(&r, name).await
    }
}

/// Inside the API server's admission chain the ServiceAccount comes from the registry itself.
#[async_trait::async_trait]
impl ServiceAccountLookup for skiff_apiserver::registry::Registry {
    async fn service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, ApiError> {
        let Some(kind) = self.kind("", "serviceaccounts") else {
            return Ok(None);
        };
        match self.get(&kind, Some(namespace), name).await {
            Ok(sa) => Ok(Some(sa)),
            Err(ApiError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The webhook of one EKS cluster: region for the env, the store and cluster for Pod Identity.
#[derive(Clone)]
pub struct PodIdentityWebhook {
    pub store: Arc<dyn Store>,
    pub binding: EksBinding,
}

impl PodIdentityWebhook {
    pub fn new(store: Arc<dyn Store>, binding: EksBinding) -> Self {
        Self { store, binding }
    }

    /// Mutates a pod being created in `namespace`. Pods whose ServiceAccount does not exist (yet)
    /// pass unchanged, as the webhook's cache miss does upstream.
    pub async fn admit_pod(
        &self,
        lookup: &dyn ServiceAccountLookup,
        namespace: &str,
        pod: &mut Value,
    ) -> Result<(), ApiError> {
        let sa_name = pod["spec"]["serviceAccountName"]
            .as_str()
            .or_else(|| pod["spec"]["serviceAccount"].as_str())
            .unwrap_or("default")
            .to_string();
        if let Some(sa) = lookup.service_account(namespace, &sa_name).await? {
            mutate_pod(pod, &sa, &self.binding.region);
        }
        let associations = skiff_aws::eks::pod_identity::list_pod_identity_records(
            &*self.store,
            &self.binding.account,
            &self.binding.region,
            &self.binding.name,
        )
        .await
        .map_err(|e| ApiError::InternalError(format!("{}: {}", e.code, e.message)))?;
        if associations
            .iter()
            .any(|a| a["namespace"] == namespace && a["serviceAccount"] == sa_name.as_str())
        {
            inject_pod_identity(pod, &self.binding.region);
        }
        Ok(())
    }
}

/// The webhook in the API server's admission chain: pods being created pass through
/// [`PodIdentityWebhook::admit_pod`], where upstream's MutatingWebhookConfiguration would send them.
#[async_trait::async_trait]
impl skiff_apiserver::admission::ExternalMutator for PodIdentityWebhook {
    async fn mutate(
        &self,
        reg: &skiff_apiserver::registry::Registry,
        req: &skiff_apiserver::admission::Request<'_>,
        obj: &mut Value,
    ) -> Result<(), ApiError> {
        if req.operation == skiff_apiserver::admission::Operation::Create && req.is("", "pods") {
            self.admit_pod(reg, req.ns(), obj).await
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::000000000000:role/s3-reader";

    fn sa(annotations: Value) -> Value {
        json!({"metadata": {"name": "s3-reader", "namespace": "default", "annotations": annotations}})
    }

    fn pod(annotations: Value) -> Value {
        json!({"metadata": {"name": "p", "annotations": annotations}, "spec": {
            "serviceAccountName": "s3-reader",
            "initContainers": [{"name": "init"}],
            "containers": [{"name": "app", "env": [{"name": "AWS_REGION", "value": "mine"}]},
                           {"name": "sidecar"}]}})
    }

    fn env_of(c: &Value) -> Vec<(String, String)> {
        c["env"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["name"].as_str().unwrap().to_string(),
                    e["value"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn get(env: &[(String, String)], k: &str) -> Option<String> {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn table_of_service_account_and_pod_annotations() {
        struct Case {
            name: &'static str,
            sa: Value,
            pod: Value,
            changed: bool,
            audience: &'static str,
            seconds: i64,
            regional: bool,
            skipped: &'static [&'static str],
        }
        let cases = [
            Case {
                name: "no role: untouched",
                sa: sa(json!({})),
                pod: pod(json!({})),
                changed: false,
                audience: "",
                seconds: 0,
                regional: false,
                skipped: &[],
            },
            Case {
                name: "defaults",
                sa: sa(json!({ROLE_ARN_ANNOTATION: ROLE})),
                pod: pod(json!({})),
                changed: true,
                audience: "sts.amazonaws.com",
                seconds: 86400,
                regional: true,
                skipped: &[],
            },
            Case {
                name: "audience, expiration and regional endpoints off",
                sa: sa(
                    json!({ROLE_ARN_ANNOTATION: ROLE, AUDIENCE_ANNOTATION: "custom",
                    TOKEN_EXPIRATION_ANNOTATION: "7200", REGIONAL_STS_ANNOTATION: "false"}),
                ),
                pod: pod(json!({})),
                changed: true,
                audience: "custom",
                seconds: 7200,
                regional: false,
                skipped: &[],
            },
            Case {
                name: "short expiration is raised; pod annotation wins; skip-containers",
                sa: sa(json!({ROLE_ARN_ANNOTATION: ROLE, TOKEN_EXPIRATION_ANNOTATION: "9000"})),
                pod: pod(
                    json!({TOKEN_EXPIRATION_ANNOTATION: "60", SKIP_CONTAINERS_ANNOTATION: "sidecar, init"}),
                ),
                changed: true,
                audience: "sts.amazonaws.com",
                seconds: 3600,
                regional: true,
                skipped: &["sidecar", "init"],
            },
        ];
        for case in cases {
            let mut p = case.pod.clone();
            assert_eq!(
                mutate_pod(&mut p, &case.sa, "eu-west-1"),
                case.changed,
                "{}",
                case.name
            );
            if !case.changed {
                assert_eq!(p, case.pod, "{}", case.name);
                continue;
            }
            let vol = &p["spec"]["volumes"][0];
            assert_eq!(vol["name"], IRSA_VOLUME, "{}", case.name);
            let tok = &vol["projected"]["sources"][0]["serviceAccountToken"];
            assert_eq!(tok["audience"], case.audience, "{}", case.name);
            assert_eq!(tok["expirationSeconds"], case.seconds, "{}", case.name);
            assert_eq!(tok["path"], "token");
            let all: Vec<&Value> = p["spec"]["initContainers"]
                .as_array()
                .unwrap()
                .iter()
                .chain(p["spec"]["containers"].as_array().unwrap())
                .collect();
            for c in all {
                let name = c["name"].as_str().unwrap();
                let env = env_of(c);
                if case.skipped.contains(&name) {
                    assert!(get(&env, "AWS_ROLE_ARN").is_none(), "{}: {name}", case.name);
                    assert!(c.get("volumeMounts").is_none(), "{}: {name}", case.name);
                    continue;
                }
                assert_eq!(get(&env, "AWS_ROLE_ARN").as_deref(), Some(ROLE));
                assert_eq!(
                    get(&env, "AWS_WEB_IDENTITY_TOKEN_FILE").as_deref(),
                    Some(IRSA_TOKEN_FILE)
                );
                assert_eq!(
                    get(&env, "AWS_DEFAULT_REGION").as_deref(),
                    Some("eu-west-1")
                );
                // The user's own AWS_REGION is kept.
                let want_region = if name == "app" { "mine" } else { "eu-west-1" };
                assert_eq!(get(&env, "AWS_REGION").as_deref(), Some(want_region));
                assert_eq!(
                    get(&env, "AWS_STS_REGIONAL_ENDPOINTS").is_some(),
                    case.regional,
                    "{}",
                    case.name
                );
                assert_eq!(
                    c["volumeMounts"],
                    json!([{"name": IRSA_VOLUME, "mountPath": IRSA_MOUNT_PATH, "readOnly": true}])
                );
            }
        }
    }

    #[test]
    fn mutation_is_idempotent() {
        let sa = sa(json!({ROLE_ARN_ANNOTATION: ROLE}));
        let mut once = pod(json!({}));
        mutate_pod(&mut once, &sa, "us-east-1");
        let mut twice = once.clone();
        mutate_pod(&mut twice, &sa, "us-east-1");
        assert_eq!(once, twice);
    }

    #[test]
    fn pod_identity_adds_container_credentials() {
        let mut p = pod(json!({}));
        inject_pod_identity(&mut p, "us-west-2");
        let env = env_of(&p["spec"]["containers"][1]);
        assert_eq!(
            get(&env, "AWS_CONTAINER_CREDENTIALS_FULL_URI").as_deref(),
            Some("http://169.254.170.23/v1/credentials")
        );
        assert_eq!(
            get(&env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").as_deref(),
            Some(POD_IDENTITY_TOKEN_FILE)
        );
        let tok = &p["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"];
        assert_eq!(tok["audience"], "pods.eks.amazonaws.com");
        assert_eq!(tok["path"], "eks-pod-identity-token");
    }
}
