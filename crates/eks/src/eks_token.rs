//! `aws eks get-token` authentication (aws-iam-authenticator's server side) and EKS access policies.
//!
//! A `k8s-aws-v1.` token is base64url of a presigned STS `GetCallerIdentity` URL. Real EKS sends it
//! to STS; we verify the SigV4 signature locally against the access key's secret (the gateway's
//! credential lookup), require the `x-k8s-aws-id` header to be signed and equal to this cluster's
//! name, and accept it for 15 minutes after `X-Amz-Date` whatever `X-Amz-Expires` says (the
//! authenticator's rule: the CLI presigns for 60 s but kubectl caches the token for 14 min).
//!
//! The caller's ARN (assumed-role ARNs canonicalised to the role ARN) is then mapped to a Kubernetes
//! user per the cluster's `authenticationMode`: EKS access entries (API), the creator's bootstrap
//! admin rights, and the `aws-auth` ConfigMap in kube-system (CONFIG_MAP). An unknown principal is a
//! 401. Access policies become RBAC: cluster-scoped ones are groups bound by the ClusterRoleBindings
//! [`ensure_access_policy_bindings`] maintains; namespace-scoped ones are honoured by
//! [`NamespacedAccessAuthorizer`], which re-asks RBAC with the policy's group only inside those namespaces.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use serde_json::{Value, json};
use skiff_apiserver::authn::token_hook::TokenAuthenticator;
use skiff_apiserver::authn::{AuthnError, UserInfo};
use skiff_apiserver::authz::rbac::RbacAuthorizer;
use skiff_apiserver::authz::{Attributes, Authorizer, Decision};
use skiff_store::{Op, Precondition, Store, StoreError};

use crate::cluster_dir::EksBinding;

/// Prefix of the bearer tokens `aws eks get-token` prints.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// How long after `X-Amz-Date` a token is accepted (aws-iam-authenticator's presign window).
pub const TOKEN_WINDOW_SECONDS: i64 = 15 * 60;
/// Group a cluster-scoped access policy grants; bound to the matching ClusterRole.
pub const ACCESS_POLICY_GROUP_PREFIX: &str = "skiff:eks-access-policy:";
/// User extra listing namespace-scoped associations as `<clusterrole>:<namespace>`.
pub const NAMESPACED_POLICIES_EXTRA: &str = "skiff.eks/namespaced-access-policies";
/// The ClusterRoles EKS access policies stand for, as (policy name, ClusterRole).
pub const ACCESS_POLICIES: &[(&str, &str)] = &[
    ("AmazonEKSClusterAdminPolicy", "cluster-admin"),
    ("AmazonEKSAdminPolicy", "admin"),
    ("AmazonEKSEditPolicy", "edit"),
    ("AmazonEKSViewPolicy", "view"),
];

/// The ClusterRole an access policy ARN (`arn:aws:eks::aws:cluster-access-policy/<Name>`) maps to.
pub fn cluster_role_for_policy(policy_arn: &str) -> Option<&'static str> {
    let name = policy_arn.rsplit('/').next()?;
    ACCESS_POLICIES
        .iter()
        .find(|(p, _)| *p == name)
        .map(|(_, role)| *role)
}

/// The group a cluster-scoped association with `role` grants.
pub fn policy_group(role: &str) -> String {
    format!("{ACCESS_POLICY_GROUP_PREFIX}{role}")
}

/// Create (if missing) one ClusterRoleBinding per access policy: group `skiff:eks-access-policy:<role>`
/// → ClusterRole `<role>`. Existing bindings are left alone.
pub async fn ensure_access_policy_bindings(
    store: &dyn Store,
    cluster_id: &str,
) -> Result<(), StoreError> {
    const RBAC: &str = "rbac.authorization.k8s.io";
    let now = jiff::Timestamp::now().to_string();
    let mut ops = Vec::new();
    for (_, role) in ACCESS_POLICIES {
        let name = format!("skiff:eks-access-policy:{role}");
        let key = format!("/k8s/{cluster_id}/{RBAC}/clusterrolebindings/{name}");
        if store.get(&key).await?.is_some() {
            continue;
        }
        let obj = json!({
            "apiVersion": format!("{RBAC}/v1"),
            "kind": "ClusterRoleBinding",
            "metadata": {
                "name": name,
                "uid": uuid::Uuid::new_v4().to_string(),
                "creationTimestamp": now,
                "labels": {"eks.amazonaws.com/component": "access-policy"},
            },
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": policy_group(role)}],
        });
        ops.push(Op::Put {
            key,
            value: serde_json::to_vec(&obj).unwrap_or_default().into(),
            precondition: Precondition::MustNotExist,
        });
    }
    if ops.is_empty() {
        return Ok(());
    }
    match store.txn(ops).await {
        // Someone created them between our read and write: they exist, which is all we want.
        Ok(_) | Err(StoreError::PreconditionFailed { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The verified content of a token, before mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsIdentity {
    /// The caller's ARN as STS reports it.
    pub arn: String,
    /// Assumed-role ARNs become `arn:aws:iam::<acct>:role/<name>`; others are unchanged.
    pub canonical_arn: String,
    pub account_id: String,
    pub user_id: String,
    pub access_key_id: String,
    /// Session name of an assumed role (empty otherwise).
    pub session_name: String,
}

/// `arn:aws:sts::<acct>:assumed-role/<role>/<session>` → (`arn:aws:iam::<acct>:role/<role>`,
/// session); role ARNs lose their path (EKS matches role principals without it); others unchanged.
pub fn canonicalize_arn(arn: &str) -> (String, String) {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() == 6 && parts[0] == "arn" {
        let (partition, service, account, resource) = (parts[1], parts[2], parts[4], parts[5]);
        if service == "sts"
            && let Some(rest) = resource.strip_prefix("assumed-role/")
            && let Some((role, session)) = rest.split_once('/')
        {
            return (
                format!("arn:{partition}:iam::{account}:role/{role}"),
                session.to_string(),
            );
        }
        if service == "iam"
            && let Some(rest) = resource.strip_prefix("role/")
        {
            let name = rest.rsplit('/').next().unwrap_or(rest);
            return (
                format!("arn:{partition}:iam::{account}:role/{name}"),
                String::new(),
            );
        }
    }
    (arn.to_string(), String::new())
}

fn unauthorized(msg: impl Into<String>) -> AuthnError {
    AuthnError(msg.into())
}

/// STS's own wording of a signature failure (STS speaks the query protocol).
fn sts_failure(e: &skiff_aws_model::sigv4::SigError) -> AuthnError {
    let aws = e.to_aws_error(skiff_aws_model::Protocol::Query);
    unauthorized(format!(
        "sts getCallerIdentity failed: {}: {}",
        aws.code, aws.message
    ))
}

/// The presigned URL inside a token.
pub fn decode_token(token: &str) -> Result<String, AuthnError> {
    let body = token
        .strip_prefix(TOKEN_PREFIX)
        .ok_or_else(|| unauthorized("token is not a k8s-aws-v1 token"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body.trim_end_matches('='))
        .map_err(|_| unauthorized("input token was not properly formatted: not base64url"))?;
    String::from_utf8(bytes)
        .map_err(|_| unauthorized("input token was not properly formatted: not UTF-8"))
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Verify a token's signature, cluster binding and age; `now` is the server's clock.
pub async fn verify_token(
    store: &dyn Store,
    cluster_name: &str,
    token: &str,
    now: jiff::Timestamp,
) -> Result<AwsIdentity, AuthnError> {
    let url = decode_token(token)?;
    let signed = query_param(&url, "X-Amz-SignedHeaders").unwrap_or_default();
    if !signed
        .split(';')
        .any(|h| h.eq_ignore_ascii_case("x-k8s-aws-id"))
    {
        return Err(unauthorized(
            "input token was not properly formatted: client did not sign the x-k8s-aws-id header in the pre-signed URL",
        ));
    }
    let date = query_param(&url, "X-Amz-Date").unwrap_or_default();
    let signed_at = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", &date)
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| unauthorized("input token was not properly formatted: bad X-Amz-Date"))?;
    let age = now.as_second() - signed_at.as_second();
    if age > TOKEN_WINDOW_SECONDS {
        return Err(unauthorized(
            "X-Amz-Date parameter is expired (15 minute expiration)",
        ));
    }
    if age < -TOKEN_WINDOW_SECONDS {
        return Err(unauthorized("X-Amz-Date parameter is in the future"));
    }
    let credential = query_param(&url, "X-Amz-Credential").unwrap_or_default();
    let akid = credential.split('/').next().unwrap_or_default();
    let (secret, caller) = skiff_aws::gateway::auth::lookup(store, akid, now)
        .await
        .map_err(|e| match e {
            skiff_aws::gateway::auth::AuthError::Sig(s) => sts_failure(&s),
            skiff_aws::gateway::auth::AuthError::Internal(m) => unauthorized(m),
        })?
        .ok_or_else(|| {
            unauthorized("sts getCallerIdentity failed: The security token included in the request is invalid.")
        })?;
    let mut headers = http::HeaderMap::new();
    let id = http::HeaderValue::from_str(cluster_name)
        .map_err(|_| unauthorized("cluster name is not a header value"))?;
    headers.insert("x-k8s-aws-id", id);
    // The window was checked above; verify as of the signing time so X-Amz-Expires (60 s from the
    // CLI) does not cut the authenticator's 15 minutes short.
    skiff_aws_model::sigv4::verify_presigned_get_caller_identity(
        &url,
        &headers,
        |_| Ok(secret),
        signed_at,
    )
    .map_err(|e| sts_failure(&e))?;
    let (canonical_arn, session_name) = canonicalize_arn(&caller.arn);
    Ok(AwsIdentity {
        arn: caller.arn,
        canonical_arn,
        account_id: caller.account_id,
        user_id: caller.user_id,
        access_key_id: caller.access_key_id,
        session_name,
    })
}

/// `{{AccountID}}`, `{{SessionName}}` (`@` → `-`, as the authenticator), `{{SessionNameRaw}}`,
/// `{{AccessKeyID}}` in a username or group template.
pub fn render_template(template: &str, id: &AwsIdentity) -> String {
    template
        .replace("{{AccountID}}", &id.account_id)
        .replace("{{SessionNameRaw}}", &id.session_name)
        .replace("{{SessionName}}", &id.session_name.replace('@', "-"))
        .replace("{{AccessKeyID}}", &id.access_key_id)
}

/// Where an entry's identity came from, for mapping.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    pub username: String,
    pub groups: Vec<String>,
    /// `<clusterrole>:<namespace>` for namespace-scoped access policy associations.
    pub namespaced: Vec<String>,
}

/// EKS's default username of an access entry: the assumed-role form for roles, the ARN otherwise.
fn default_username(canonical_arn: &str) -> String {
    if let Some((head, role)) = canonical_arn.split_once(":role/") {
        let head = head.replacen(":iam:", ":sts:", 1);
        return format!("{head}:assumed-role/{role}/{{{{SessionName}}}}");
    }
    canonical_arn.to_string()
}

/// Apply access policy associations (`[{policyArn, accessScope: {type, namespaces}}]`) to a mapping.
fn apply_policies(policies: &Value, m: &mut Mapping) {
    for p in policies.as_array().into_iter().flatten() {
        let Some(role) = p["policyArn"].as_str().and_then(cluster_role_for_policy) else {
            continue;
        };
        if p["accessScope"]["type"].as_str() == Some("namespace") {
            for ns in p["accessScope"]["namespaces"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(ns) = ns.as_str() {
                    m.namespaced.push(format!("{role}:{ns}"));
                }
            }
        } else {
            m.groups.push(policy_group(role));
        }
    }
}

/// The access entry of `canonical_arn` among a cluster's entry records (as
/// `skiff_aws::eks::list_access_entry_records` returns them, associations in `associatedAccessPolicies`).
pub fn map_access_entry(entries: &[Value], id: &AwsIdentity) -> Option<Mapping> {
    let entry = entries.iter().find(|e| {
        e["principalArn"]
            .as_str()
            .is_some_and(|p| canonicalize_arn(p).0 == id.canonical_arn)
    })?;
    let template = entry["username"]
        .as_str()
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| default_username(&id.canonical_arn));
    let mut m = Mapping {
        username: render_template(&template, id),
        groups: entry["kubernetesGroups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g.as_str().map(str::to_string))
            .collect(),
        namespaced: Vec::new(),
    };
    apply_policies(&entry["associatedAccessPolicies"], &mut m);
    Some(m)
}

/// `mapRoles` / `mapUsers` of the aws-auth ConfigMap (`data` member) for this identity.
pub fn map_aws_auth(data: &Value, id: &AwsIdentity) -> Option<Mapping> {
    for (member, arn_key) in [("mapRoles", "rolearn"), ("mapUsers", "userarn")] {
        let Some(text) = data[member].as_str() else {
            continue;
        };
        for item in crate::aws_auth::parse_map_list(text) {
            let Some(arn) = item.scalars.get(arn_key) else {
                continue;
            };
            if canonicalize_arn(arn).0 != id.canonical_arn {
                continue;
            }
            let template = item
                .scalars
                .get("username")
                .cloned()
                .unwrap_or_else(|| default_username(&id.canonical_arn));
            return Some(Mapping {
                username: render_template(&template, id),
                groups: item.groups.iter().map(|g| render_template(g, id)).collect(),
                namespaced: Vec::new(),
            });
        }
    }
    None
}

/// The `TokenAuthenticator` of one EKS cluster.
#[doc(alias = "aws-iam-authenticator")]
pub struct EksTokenAuthenticator {
    store: Arc<dyn Store>,
    binding: EksBinding,
    cluster_id: String,
    /// The `authenticator` control plane log (shipped when the cluster enables it).
    logs: crate::control_plane_logging::LogShipper,
}

impl EksTokenAuthenticator {
    /// Must be called inside a tokio runtime (it starts the authenticator log's flusher).
    pub fn new(store: Arc<dyn Store>, binding: EksBinding, cluster_id: &str) -> Self {
        let logs = crate::control_plane_logging::LogShipper::start(
            store.clone(),
            binding.clone(),
            cluster_id.to_string(),
        );
        Self {
            store,
            binding,
            cluster_id: cluster_id.to_string(),
            logs,
        }
    }

    /// The cluster's control plane log shipper (the API server's audit events share it).
    pub fn log_shipper(&self) -> crate::control_plane_logging::LogShipper {
        self.logs.clone()
    }

    /// One aws-iam-authenticator log line (its logrus text format).
    fn log(&self, level: &str, msg: &str, fields: &[(&str, String)]) {
        let mut line = format!(
            "time=\"{}\" level={level} msg=\"{msg}\"",
            jiff::Timestamp::now()
                .round(jiff::Unit::Second)
                .unwrap_or_else(|_| jiff::Timestamp::now())
        );
        for (k, v) in fields {
            line.push_str(&format!(" {k}={v:?}"));
        }
        self.logs
            .log(crate::control_plane_logging::LogType::Authenticator, line);
    }

    /// Map a verified identity to a user, or None when no entry, bootstrap grant or aws-auth row
    /// names it.
    pub async fn map(&self, id: &AwsIdentity) -> Result<Option<Mapping>, AuthnError> {
        let b = &self.binding;
        let internal =
            |e: String| unauthorized(format!("reading the cluster's access config: {e}"));
        let Some(cluster) =
            skiff_aws::eks::get_cluster(&*self.store, &b.account, &b.region, &b.name)
                .await
                .map_err(|e| internal(e.message))?
        else {
            return Err(unauthorized("the cluster no longer exists"));
        };
        if id.account_id != b.account {
            return Ok(None);
        }
        let mode = cluster["accessConfig"]["authenticationMode"]
            .as_str()
            .unwrap_or("API_AND_CONFIG_MAP");
        let api = mode.starts_with("API");
        let config_map = mode.ends_with("CONFIG_MAP");
        if api {
            let entries = skiff_aws::eks::list_access_entry_records(
                &*self.store,
                &b.account,
                &b.region,
                &b.name,
            )
            .await
            .map_err(|e| internal(e.message))?;
            if let Some(m) = map_access_entry(&entries, id) {
                return Ok(Some(m));
            }
        }
        // The creator is cluster-admin unless CreateCluster turned bootstrap off (any mode).
        if cluster["accessConfig"]["bootstrapClusterCreatorAdminPermissions"].as_bool()
            != Some(false)
            && let Some(creator) =
                skiff_aws::eks::cluster_creator(&*self.store, &b.account, &b.region, &b.name)
                    .await
                    .map_err(|e| internal(e.message))?
            && canonicalize_arn(&creator).0 == id.canonical_arn
        {
            return Ok(Some(Mapping {
                username: render_template(&default_username(&id.canonical_arn), id),
                groups: vec![policy_group("cluster-admin")],
                namespaced: Vec::new(),
            }));
        }
        if config_map {
            let key = format!(
                "/k8s/{}/core/configmaps/kube-system/aws-auth",
                self.cluster_id
            );
            if let Some(kv) = self
                .store
                .get(&key)
                .await
                .map_err(|e| internal(e.to_string()))?
                && let Ok(cm) = serde_json::from_slice::<Value>(&kv.value)
                && let Some(m) = map_aws_auth(&cm["data"], id)
            {
                return Ok(Some(m));
            }
        }
        Ok(None)
    }
}

#[async_trait::async_trait]
impl TokenAuthenticator for EksTokenAuthenticator {
    async fn authenticate_token(&self, token: &str) -> Result<Option<UserInfo>, AuthnError> {
        let id = match verify_token(
            &*self.store,
            &self.binding.name,
            token,
            jiff::Timestamp::now(),
        )
        .await
        {
            Ok(id) => id,
            Err(e) => {
                self.log("warning", "access denied", &[("error", e.to_string())]);
                return Err(e);
            }
        };
        let Some(m) = self.map(&id).await? else {
            tracing::info!(arn = %id.arn, cluster = %self.binding.name, "EKS token of an unmapped principal");
            self.log(
                "warning",
                "access denied",
                &[
                    ("arn", id.arn.clone()),
                    ("error", "ARN is not mapped".to_string()),
                    ("method", "POST".to_string()),
                    ("path", "/authenticate".to_string()),
                ],
            );
            return Err(unauthorized(format!(
                "ARN {} is not mapped to a user of this cluster",
                id.canonical_arn
            )));
        };
        let mut extra = BTreeMap::new();
        extra.insert("arn".to_string(), vec![id.arn.clone()]);
        extra.insert("canonicalArn".to_string(), vec![id.canonical_arn.clone()]);
        extra.insert("accessKeyId".to_string(), vec![id.access_key_id.clone()]);
        extra.insert("principalId".to_string(), vec![id.user_id.clone()]);
        if !id.session_name.is_empty() {
            extra.insert("sessionName".to_string(), vec![id.session_name.clone()]);
        }
        if !m.namespaced.is_empty() {
            extra.insert(NAMESPACED_POLICIES_EXTRA.to_string(), m.namespaced);
        }
        let uid = format!("aws-iam-authenticator:{}:{}", id.account_id, id.user_id);
        self.log(
            "info",
            "access granted",
            &[
                ("arn", id.arn.clone()),
                ("groups", format!("[{}]", m.groups.join(" "))),
                ("method", "POST".to_string()),
                ("path", "/authenticate".to_string()),
                ("uid", uid.clone()),
                ("username", m.username.clone()),
            ],
        );
        Ok(Some(UserInfo {
            name: m.username,
            uid,
            groups: m.groups,
            extra,
        }))
    }
}

/// Namespace-scoped access policies: inside a listed namespace, the request is re-asked of RBAC
/// with the policy's group added (bound cluster-wide, so only this authorizer ever adds it there).
pub struct NamespacedAccessAuthorizer {
    rbac: Arc<RbacAuthorizer>,
}

impl NamespacedAccessAuthorizer {
    pub fn new(rbac: Arc<RbacAuthorizer>) -> Self {
        Self { rbac }
    }
}

#[async_trait::async_trait]
impl Authorizer for NamespacedAccessAuthorizer {
    async fn authorize(&self, attrs: &Attributes) -> Decision {
        let no = || Decision::NoOpinion(String::new());
        if attrs.namespace.is_empty() {
            return no();
        }
        let Some(scoped) = attrs.user.extra.get(NAMESPACED_POLICIES_EXTRA) else {
            return no();
        };
        let groups: Vec<String> = scoped
            .iter()
            .filter_map(|s| s.split_once(':'))
            .filter(|(_, ns)| *ns == attrs.namespace)
            .map(|(role, _)| policy_group(role))
            .collect();
        if groups.is_empty() {
            return no();
        }
        let mut inner = attrs.clone();
        inner.user.groups.extend(groups);
        inner.user.extra.remove(NAMESPACED_POLICIES_EXTRA);
        match self.rbac.authorize(&inner).await {
            Decision::Allow => Decision::Allow,
            _ => no(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(arn: &str) -> AwsIdentity {
        let (canonical_arn, session_name) = canonicalize_arn(arn);
        AwsIdentity {
            arn: arn.into(),
            canonical_arn,
            account_id: "111122223333".into(),
            user_id: "AROAEXAMPLE:alice".into(),
            access_key_id: "ASIAEXAMPLE".into(),
            session_name,
        }
    }

    #[test]
    fn assumed_roles_canonicalise_to_the_role() {
        assert_eq!(
            canonicalize_arn("arn:aws:sts::111122223333:assumed-role/dev/alice@corp"),
            (
                "arn:aws:iam::111122223333:role/dev".into(),
                "alice@corp".into()
            )
        );
        assert_eq!(
            canonicalize_arn("arn:aws:iam::111122223333:role/team/dev").0,
            "arn:aws:iam::111122223333:role/dev"
        );
        assert_eq!(
            canonicalize_arn("arn:aws:iam::111122223333:user/bob").0,
            "arn:aws:iam::111122223333:user/bob"
        );
    }

    #[test]
    fn policy_arns_map_to_cluster_roles() {
        let p = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy";
        assert_eq!(cluster_role_for_policy(p), Some("view"));
        assert_eq!(
            cluster_role_for_policy(
                "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
            ),
            Some("cluster-admin")
        );
        assert_eq!(
            cluster_role_for_policy("arn:aws:iam::aws:policy/ReadOnlyAccess"),
            None
        );
    }

    #[test]
    fn access_entries_give_username_groups_and_scoped_policies() {
        let id = identity("arn:aws:sts::111122223333:assumed-role/dev/alice@corp");
        let entries = vec![
            json!({"principalArn": "arn:aws:iam::111122223333:user/other"}),
            json!({
                "principalArn": "arn:aws:iam::111122223333:role/dev",
                "kubernetesGroups": ["devs"],
                "associatedAccessPolicies": [
                    {"policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy",
                     "accessScope": {"type": "cluster"}},
                    {"policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy",
                     "accessScope": {"type": "namespace", "namespaces": ["team-a"]}},
                ],
            }),
        ];
        let m = map_access_entry(&entries, &id).unwrap();
        assert_eq!(
            m.username,
            "arn:aws:sts::111122223333:assumed-role/dev/alice-corp"
        );
        assert_eq!(m.groups, vec!["devs".to_string(), policy_group("view")]);
        assert_eq!(m.namespaced, vec!["edit:team-a".to_string()]);
        assert!(map_access_entry(&entries[..1], &id).is_none());
    }

    #[test]
    fn aws_auth_map_roles_and_users() {
        let id = identity("arn:aws:sts::111122223333:assumed-role/nodes/i-0abc");
        let data = json!({
            "mapRoles": "- rolearn: arn:aws:iam::111122223333:role/nodes\n  username: system:node:{{SessionName}}\n  groups:\n    - system:bootstrappers\n    - system:nodes\n",
            "mapUsers": "- userarn: arn:aws:iam::111122223333:user/bob\n  username: bob\n  groups: [\"system:masters\"]\n",
        });
        let m = map_aws_auth(&data, &id).unwrap();
        assert_eq!(m.username, "system:node:i-0abc");
        assert_eq!(m.groups, vec!["system:bootstrappers", "system:nodes"]);
        let bob = identity("arn:aws:iam::111122223333:user/bob");
        let m = map_aws_auth(&data, &bob).unwrap();
        assert_eq!(
            (m.username.as_str(), m.groups),
            ("bob", vec!["system:masters".to_string()])
        );
        assert!(map_aws_auth(&data, &identity("arn:aws:iam::111122223333:user/eve")).is_none());
    }

    #[test]
    fn malformed_tokens_are_refused_not_panicked_on() {
        assert!(decode_token("k8s-aws-v1.!!!").is_err());
        assert!(decode_token("eyJhbGciOi").is_err());
        let url = "https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15";
        let token = format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
        );
        assert_eq!(decode_token(&token).unwrap(), url);
    }
}
