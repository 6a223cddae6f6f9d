//! The default RBAC policy every cluster starts with (upstream `bootstrappolicy`): cluster-admin,
//! admin/edit/view with their aggregation labels, the `system:*` roles and their bindings.
//!
//! The rules are data (`bootstrap_policy.json`, written after upstream's `policy.go`); this file
//! turns them into ClusterRole and ClusterRoleBinding objects and creates the missing ones.

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use skiff_store::{ListOptions, Op, Precondition, Store, StoreError};

use super::rbac::{PolicyRule, RBAC_GROUP};

const POLICY: &str = include_str!("bootstrap_policy.json");

/// Annotation that lets the API server reconcile a default object on upgrade.
pub const AUTOUPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";
pub const BOOTSTRAPPING_LABEL: &str = "kubernetes.io/bootstrapping";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyFile {
    cluster_roles: Vec<RoleSpec>,
    cluster_role_bindings: Vec<BindingSpec>,
}

#[derive(Deserialize)]
struct RoleSpec {
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    /// Label that selects the roles aggregated into this one.
    #[serde(default)]
    aggregate: Option<String>,
    #[serde(default)]
    rules: Vec<PolicyRule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BindingSpec {
    name: String,
    role: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    service_accounts: Vec<(String, String)>,
}

fn expand_verbs(verbs: &[String]) -> Vec<String> {
    const READ: &[&str] = &["get", "list", "watch"];
    const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
    let mut out = Vec::new();
    for v in verbs {
        let set: Vec<&str> = match v.as_str() {
            "@read" => READ.to_vec(),
            "@write" => WRITE.to_vec(),
            "@readwrite" => READ.iter().chain(WRITE).copied().collect(),
            "@readupdate" => vec!["get", "list", "watch", "update", "patch"],
            other => vec![other],
        };
        out.extend(set.into_iter().map(str::to_string));
    }
    out
}

fn metadata(name: &str, extra_labels: &BTreeMap<String, String>) -> Value {
    let mut labels = extra_labels.clone();
    labels.insert(BOOTSTRAPPING_LABEL.into(), "rbac-defaults".into());
    json!({
        "name": name,
        "labels": labels,
        "annotations": { AUTOUPDATE_ANNOTATION: "true" },
    })
}

/// The default ClusterRoles, as API objects.
pub fn cluster_roles() -> Vec<Value> {
    let file: PolicyFile = parse();
    file.cluster_roles
        .into_iter()
        .map(|r| {
            let rules: Vec<PolicyRule> = r
                .rules
                .into_iter()
                .map(|mut p| {
                    p.verbs = expand_verbs(&p.verbs);
                    p
                })
                .collect();
            let mut obj = json!({
                "apiVersion": format!("{RBAC_GROUP}/v1"),
                "kind": "ClusterRole",
                "metadata": metadata(&r.name, &r.labels),
                "rules": rules,
            });
            if let Some(label) = r.aggregate {
                obj["aggregationRule"] =
                    json!({ "clusterRoleSelectors": [{ "matchLabels": { label: "true" } }] });
            }
            obj
        })
        .collect()
}

/// The default ClusterRoleBindings, as API objects.
pub fn cluster_role_bindings() -> Vec<Value> {
    let file: PolicyFile = parse();
    file.cluster_role_bindings
        .into_iter()
        .map(|b| {
            let mut subjects: Vec<Value> = Vec::new();
            subjects.extend(
                b.groups
                    .iter()
                    .map(|g| json!({"apiGroup": RBAC_GROUP, "kind": "Group", "name": g})),
            );
            subjects.extend(
                b.users
                    .iter()
                    .map(|u| json!({"apiGroup": RBAC_GROUP, "kind": "User", "name": u})),
            );
            subjects.extend(
                b.service_accounts
                    .iter()
                    .map(|(ns, n)| json!({"kind": "ServiceAccount", "name": n, "namespace": ns})),
            );
            let mut obj = json!({
                "apiVersion": format!("{RBAC_GROUP}/v1"),
                "kind": "ClusterRoleBinding",
                "metadata": metadata(&b.name, &BTreeMap::new()),
                "roleRef": { "apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": b.role },
            });
            // Upstream's system:node binding has no subjects (the Node authorizer took over).
            if !subjects.is_empty() {
                obj["subjects"] = Value::Array(subjects);
            }
            obj
        })
        .collect()
}

fn parse() -> PolicyFile {
    // The file is compiled in and covered by tests, so a parse failure is a build defect.
    #[allow(clippy::expect_used, reason = "embedded data, checked by tests")]
    serde_json::from_str(POLICY).expect("bootstrap_policy.json is valid")
}

/// Creates every default ClusterRole and ClusterRoleBinding that is missing from the cluster
/// (existing ones, even if edited, are left alone). Idempotent; returns how many it created.
pub async fn ensure_bootstrap_policy(
    store: &dyn Store,
    cluster_id: &str,
) -> Result<usize, StoreError> {
    let mut wanted: Vec<(String, Value)> = Vec::new();
    for (resource, objs) in [
        ("clusterroles", cluster_roles()),
        ("clusterrolebindings", cluster_role_bindings()),
    ] {
        for o in objs {
            let name = o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            wanted.push((
                format!("/k8s/{cluster_id}/{RBAC_GROUP}/{resource}/{name}"),
                o,
            ));
        }
    }
    // Two attempts: a concurrent creator (another process on the same etcd) may win the first.
    let mut last_err = None;
    for _ in 0..2 {
        let existing: HashSet<String> = store
            .list(
                &format!("/k8s/{cluster_id}/{RBAC_GROUP}/"),
                ListOptions::default(),
            )
            .await?
            .items
            .into_iter()
            .map(|kv| kv.key)
            .collect();
        let now = jiff::Timestamp::now().to_string();
        let ops: Vec<Op> = wanted
            .iter()
            .filter(|(k, _)| !existing.contains(k))
            .map(|(k, o)| {
                let mut o = o.clone();
                o["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
                o["metadata"]["creationTimestamp"] = json!(now);
                Op::Put {
                    key: k.clone(),
                    value: Bytes::from(serde_json::to_vec(&o).unwrap_or_default()),
                    precondition: Precondition::MustNotExist,
                }
            })
            .collect();
        if ops.is_empty() {
            return Ok(0);
        }
        let n = ops.len();
        match store.txn(ops).await {
            Ok(_) => return Ok(n),
            Err(e @ StoreError::PreconditionFailed { .. }) => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or(StoreError::Unavailable("bootstrap policy".into())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::UserInfo;
    use crate::authz::rbac::RbacState;
    use crate::authz::{Attributes, Decision};

    fn default_state() -> RbacState {
        let mut s = RbacState::default();
        for o in cluster_roles() {
            s.apply(
                "clusterroles",
                "",
                o["metadata"]["name"].as_str().unwrap(),
                Some(&o),
            );
        }
        for o in cluster_role_bindings() {
            s.apply(
                "clusterrolebindings",
                "",
                o["metadata"]["name"].as_str().unwrap(),
                Some(&o),
            );
        }
        s
    }

    fn can(s: &mut RbacState, role: &str, verb: &str, group: &str, resource: &str) -> bool {
        s.apply(
            "rolebindings",
            "ns",
            "probe",
            Some(&json!({"roleRef":{"kind":"ClusterRole","name":role},"subjects":[{"kind":"User","name":"probe"}]})),
        );
        let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
        let a = Attributes {
            user: UserInfo {
                name: "probe".into(),
                ..Default::default()
            },
            verb: verb.into(),
            resource_request: true,
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: "ns".into(),
            name: "x".into(),
            ..Default::default()
        };
        s.authorize(&a) == Decision::Allow
    }

    #[test]
    fn defaults_parse_and_carry_upstream_metadata() {
        let roles = cluster_roles();
        assert!(roles.len() >= 20);
        for r in roles.iter().chain(cluster_role_bindings().iter()) {
            assert_eq!(
                r["metadata"]["labels"][BOOTSTRAPPING_LABEL],
                "rbac-defaults"
            );
            assert_eq!(r["metadata"]["annotations"][AUTOUPDATE_ANNOTATION], "true");
        }
        let view = roles
            .iter()
            .find(|r| r["metadata"]["name"] == "view")
            .unwrap();
        assert_eq!(
            view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"],
            "true"
        );
        // No shorthand verb leaks into the objects.
        assert!(!serde_json::to_string(&roles).unwrap().contains("\"@"));
    }

    #[test]
    fn view_edit_admin_behave_as_upstream() {
        let mut s = default_state();
        assert!(can(&mut s, "view", "get", "", "pods"));
        assert!(can(&mut s, "view", "list", "apps", "deployments"));
        assert!(can(&mut s, "view", "get", "", "pods/log"));
        assert!(!can(&mut s, "view", "get", "", "secrets"));
        assert!(!can(&mut s, "view", "create", "", "pods"));
        assert!(can(&mut s, "edit", "create", "apps", "deployments"));
        assert!(can(&mut s, "edit", "get", "", "secrets"));
        assert!(can(&mut s, "edit", "create", "", "serviceaccounts/token"));
        assert!(!can(&mut s, "edit", "create", RBAC_GROUP, "rolebindings"));
        assert!(can(&mut s, "admin", "create", RBAC_GROUP, "rolebindings"));
        assert!(can(&mut s, "admin", "list", "", "pods"));
        assert!(can(
            &mut s,
            "cluster-admin",
            "delete",
            "anything.io",
            "widgets"
        ));
    }

    #[test]
    fn authenticated_users_get_discovery_and_self_reviews() {
        let s = default_state();
        let u = UserInfo {
            name: "u".into(),
            groups: vec!["system:authenticated".into()],
            ..Default::default()
        };
        let anon = UserInfo {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
            ..Default::default()
        };
        let nr = |u: &UserInfo, p: &str| Attributes {
            user: u.clone(),
            verb: "get".into(),
            path: p.into(),
            ..Default::default()
        };
        assert_eq!(s.authorize(&nr(&u, "/apis/apps/v1")), Decision::Allow);
        assert_eq!(s.authorize(&nr(&anon, "/version")), Decision::Allow);
        assert_ne!(s.authorize(&nr(&anon, "/apis")), Decision::Allow);
        let ssar = Attributes {
            user: u.clone(),
            verb: "create".into(),
            resource_request: true,
            api_group: "authorization.k8s.io".into(),
            resource: "selfsubjectaccessreviews".into(),
            ..Default::default()
        };
        assert_eq!(s.authorize(&ssar), Decision::Allow);
        let pods = Attributes {
            resource: "pods".into(),
            api_group: String::new(),
            verb: "list".into(),
            namespace: "default".into(),
            ..ssar
        };
        assert_ne!(s.authorize(&pods), Decision::Allow);
    }
}
