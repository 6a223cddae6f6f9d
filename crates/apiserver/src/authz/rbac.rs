//! The RBAC authorizer (kube-apiserver `rbac.RBACAuthorizer`).
//!
//! Roles, ClusterRoles and their bindings are held in memory, fed by one store watch, so a decision
//! is a few map lookups and never a store read. Aggregated ClusterRoles (`aggregationRule`) are
//! resolved here, transitively, every time any ClusterRole changes: upstream's aggregation
//! controller writes the union into the aggregated role's `rules`; computing it in the cache gives
//! the same decisions without a write loop, and stays right when a labelled role is edited.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use skiff_store::{EventKind, ListOptions, Revision, Store};

use super::{Attributes, Authorizer, Decision};
use crate::authn::service_account_token::service_account_username;
use crate::authn::{SYSTEM_MASTERS, UserInfo};

pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// `rbacv1.PolicyRule`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    #[serde(
        default,
        rename = "nonResourceURLs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
}

fn has(list: &[String], want: &str) -> bool {
    list.iter().any(|x| x == "*" || x == want)
}

impl PolicyRule {
    /// `rbac.RuleAllows`.
    pub fn allows(&self, a: &Attributes) -> bool {
        if !has(&self.verbs, &a.verb) {
            return false;
        }
        if !a.resource_request {
            return self.non_resource_urls.iter().any(|u| {
                u == "*"
                    || *u == a.path
                    || u.strip_suffix('*').is_some_and(|p| a.path.starts_with(p))
            });
        }
        if !has(&self.api_groups, &a.api_group) {
            return false;
        }
        // `resource` or `resource/subresource`, compared without building the joined string:
        // this runs for every rule of every matching binding on every request.
        let is_combined = |r: &str| {
            if a.subresource.is_empty() {
                r == a.resource
            } else {
                r.strip_prefix(a.resource.as_str())
                    .and_then(|rest| rest.strip_prefix('/'))
                    == Some(a.subresource.as_str())
            }
        };
        let resource_ok = self.resources.iter().any(|r| {
            r == "*"
                || is_combined(r)
                || (!a.subresource.is_empty()
                    && r.strip_prefix("*/") == Some(a.subresource.as_str()))
        });
        resource_ok
            && (self.resource_names.is_empty()
                || (!a.name.is_empty() && self.resource_names.contains(&a.name)))
    }
}

/// `rbacv1.Subject`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subject {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleRef {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
}

#[derive(Clone, Debug)]
struct Binding {
    /// The binding's namespace (RoleBindings), for ServiceAccount subjects without one.
    namespace: String,
    role_ref: RoleRef,
    subjects: Vec<Subject>,
}

impl Binding {
    fn applies_to(&self, user: &UserInfo) -> bool {
        self.subjects.iter().any(|s| match s.kind.as_str() {
            "User" => s.name == user.name,
            "Group" => user.groups.contains(&s.name),
            "ServiceAccount" => {
                let ns = if s.namespace.is_empty() {
                    &self.namespace
                } else {
                    &s.namespace
                };
                !ns.is_empty() && user.name == service_account_username(ns, &s.name)
            }
            _ => false,
        })
    }
}

/// `metav1.LabelSelector` as aggregation rules use it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LabelSelector {
    #[serde(default)]
    match_labels: BTreeMap<String, String>,
    #[serde(default)]
    match_expressions: Vec<LabelRequirement>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct LabelRequirement {
    key: String,
    operator: String,
    #[serde(default)]
    values: Vec<String>,
}

impl LabelSelector {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let v = labels.get(&r.key);
                match r.operator.as_str() {
                    "In" => v.is_some_and(|v| r.values.contains(v)),
                    "NotIn" => v.is_none_or(|v| !r.values.contains(v)),
                    "Exists" => v.is_some(),
                    "DoesNotExist" => v.is_none(),
                    // An unknown operator selects nothing (upstream rejects it at validation).
                    _ => false,
                }
            })
    }
}

#[derive(Clone, Debug, Default)]
struct ClusterRoleEntry {
    labels: BTreeMap<String, String>,
    rules: Vec<PolicyRule>,
    /// Some = aggregated: its rules are the union of the selected roles' rules.
    selectors: Option<Vec<LabelSelector>>,
}

/// The in-memory RBAC policy of one cluster.
#[derive(Default)]
pub struct RbacState {
    /// namespace → name → rules (per-namespace maps: a request only looks at its namespace).
    roles: HashMap<String, HashMap<String, Arc<Vec<PolicyRule>>>>,
    cluster_roles: HashMap<String, ClusterRoleEntry>,
    /// Each ClusterRole's rules with aggregation resolved.
    effective: HashMap<String, Arc<Vec<PolicyRule>>>,
    /// namespace → name → binding.
    role_bindings: HashMap<String, HashMap<String, Binding>>,
    cluster_role_bindings: HashMap<String, Binding>,
}

fn rules_of(obj: &Value) -> Vec<PolicyRule> {
    obj.get("rules")
        .cloned()
        .and_then(|r| serde_json::from_value(r).ok())
        .unwrap_or_default()
}

fn binding_of(obj: &Value, namespace: &str) -> Option<Binding> {
    let role_ref: RoleRef = serde_json::from_value(obj.get("roleRef")?.clone()).ok()?;
    let subjects = obj
        .get("subjects")
        .cloned()
        .and_then(|s| serde_json::from_value(s).ok())
        .unwrap_or_default();
    Some(Binding {
        namespace: namespace.to_string(),
        role_ref,
        subjects,
    })
}

impl RbacState {
    /// Applies one stored object (`Some`) or its deletion (`None`). `resource` is the plural
    /// (`roles`, `rolebindings`, `clusterroles`, `clusterrolebindings`); `namespace` is empty for
    /// cluster-scoped ones.
    pub fn apply(&mut self, resource: &str, namespace: &str, name: &str, obj: Option<&Value>) {
        match resource {
            "roles" => match obj {
                Some(o) => {
                    self.roles
                        .entry(namespace.to_string())
                        .or_default()
                        .insert(name.to_string(), Arc::new(rules_of(o)));
                }
                None => {
                    if let Some(m) = self.roles.get_mut(namespace) {
                        m.remove(name);
                        if m.is_empty() {
                            self.roles.remove(namespace);
                        }
                    }
                }
            },
            "rolebindings" => match obj.and_then(|o| binding_of(o, namespace)) {
                Some(b) => {
                    self.role_bindings
                        .entry(namespace.to_string())
                        .or_default()
                        .insert(name.to_string(), b);
                }
                None => {
                    if let Some(m) = self.role_bindings.get_mut(namespace) {
                        m.remove(name);
                        if m.is_empty() {
                            self.role_bindings.remove(namespace);
                        }
                    }
                }
            },
            "clusterrolebindings" => match obj.and_then(|o| binding_of(o, "")) {
                Some(b) => {
                    self.cluster_role_bindings.insert(name.to_string(), b);
                }
                None => {
                    self.cluster_role_bindings.remove(name);
                }
            },
            "clusterroles" => {
                match obj {
                    Some(o) => {
                        let labels = o
                            .pointer("/metadata/labels")
                            .cloned()
                            .and_then(|l| serde_json::from_value(l).ok())
                            .unwrap_or_default();
                        let selectors = o
                            .pointer("/aggregationRule/clusterRoleSelectors")
                            .cloned()
                            .and_then(|s| serde_json::from_value(s).ok());
                        self.cluster_roles.insert(
                            name.to_string(),
                            ClusterRoleEntry {
                                labels,
                                rules: rules_of(o),
                                selectors,
                            },
                        );
                    }
                    None => {
                        self.cluster_roles.remove(name);
                    }
                }
                self.resolve_aggregation();
            }
            _ => {}
        }
    }

    /// Recomputes every ClusterRole's effective rules. Cheap (hundreds of roles) and only run when
    /// a ClusterRole changes, which is rare next to authorization checks.
    fn resolve_aggregation(&mut self) {
        let mut effective = HashMap::with_capacity(self.cluster_roles.len());
        for name in self.cluster_roles.keys() {
            let mut visiting = HashSet::new();
            let rules = self.resolve(name, &mut visiting);
            effective.insert(name.clone(), Arc::new(rules));
        }
        self.effective = effective;
    }

    fn resolve(&self, name: &str, visiting: &mut HashSet<String>) -> Vec<PolicyRule> {
        let Some(entry) = self.cluster_roles.get(name) else {
            return Vec::new();
        };
        let Some(selectors) = &entry.selectors else {
            return entry.rules.clone();
        };
        if !visiting.insert(name.to_string()) {
            // A cycle of aggregations contributes nothing more.
            return Vec::new();
        }
        let mut sources: Vec<&String> = self
            .cluster_roles
            .iter()
            .filter(|(n, e)| *n != name && selectors.iter().any(|s| s.matches(&e.labels)))
            .map(|(n, _)| n)
            .collect();
        sources.sort(); // deterministic rule order, as the controller's sorted list
        let mut out: Vec<PolicyRule> = Vec::new();
        for s in sources {
            for r in self.resolve(s, visiting) {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        visiting.remove(name);
        out
    }

    fn role_rules(&self, binding: &Binding) -> Option<&[PolicyRule]> {
        let rules = match binding.role_ref.kind.as_str() {
            "ClusterRole" => self.effective.get(&binding.role_ref.name),
            "Role" => self
                .roles
                .get(&binding.namespace)
                .and_then(|m| m.get(&binding.role_ref.name)),
            _ => None,
        };
        rules.map(|r| r.as_slice())
    }

    /// Calls `visit` with the rules that apply to `user` in `namespace` (cluster-wide bindings
    /// first); stops when `visit` returns true (`VisitRulesFor`).
    fn visit_rules(
        &self,
        user: &UserInfo,
        namespace: &str,
        mut visit: impl FnMut(&PolicyRule) -> bool,
    ) -> bool {
        for b in self.cluster_role_bindings.values() {
            if b.role_ref.kind == "ClusterRole"
                && b.applies_to(user)
                && let Some(rules) = self.role_rules(b)
                && rules.iter().any(&mut visit)
            {
                return true;
            }
        }
        if namespace.is_empty() {
            return false;
        }
        let Some(bindings) = self.role_bindings.get(namespace) else {
            return false;
        };
        for b in bindings.values() {
            if b.applies_to(user)
                && let Some(rules) = self.role_rules(b)
                && rules.iter().any(&mut visit)
            {
                return true;
            }
        }
        false
    }

    pub fn authorize(&self, a: &Attributes) -> Decision {
        if a.user.groups.iter().any(|g| g == SYSTEM_MASTERS) {
            return Decision::Allow;
        }
        let ns = if a.resource_request { &a.namespace } else { "" };
        if self.visit_rules(&a.user, ns, |r| r.allows(a)) {
            Decision::Allow
        } else {
            Decision::NoOpinion(String::new())
        }
    }

    /// The resolved rules of every aggregated ClusterRole (what upstream's aggregation controller
    /// writes into their `rules`).
    pub fn aggregated_rules(&self) -> Vec<(String, Vec<PolicyRule>)> {
        let mut out: Vec<(String, Vec<PolicyRule>)> = self
            .cluster_roles
            .iter()
            .filter(|(_, e)| e.selectors.is_some())
            .map(|(n, _)| {
                (
                    n.clone(),
                    self.effective
                        .get(n)
                        .map(|r| r.to_vec())
                        .unwrap_or_default(),
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Every rule that applies to `user` in `namespace` (for `SelfSubjectRulesReview`), deduplicated.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> Vec<PolicyRule> {
        let mut out: Vec<PolicyRule> = Vec::new();
        self.visit_rules(user, namespace, |r| {
            if !out.contains(r) {
                out.push(r.clone());
            }
            false
        });
        out
    }
}

/// Splits a store key under `/k8s/<id>/rbac.authorization.k8s.io/` into `(resource, ns, name)`.
fn parse_key<'a>(prefix: &str, key: &'a str) -> Option<(&'a str, &'a str, &'a str)> {
    let rest = key.strip_prefix(prefix)?;
    let mut parts = rest.split('/');
    let resource = parts.next()?;
    let a = parts.next()?;
    match (parts.next(), parts.next()) {
        (None, _) => Some((resource, "", a)),
        (Some(b), None) => Some((resource, a, b)),
        _ => None,
    }
}

/// The RBAC authorizer of one cluster, kept current by a store watch.
pub struct RbacAuthorizer {
    state: Arc<RwLock<RbacState>>,
    synced: tokio::sync::watch::Receiver<Revision>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for RbacAuthorizer {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

impl RbacAuthorizer {
    /// An authorizer over a fixed policy (tests, SubjectAccessReview over a snapshot).
    pub fn from_state(state: RbacState) -> Self {
        let (_tx, rx) = tokio::sync::watch::channel(0);
        Self {
            state: Arc::new(RwLock::new(state)),
            synced: rx,
            task: None,
        }
    }

    /// Lists the cluster's RBAC objects, then follows them with a watch (relisting if the watch is
    /// cut off). Returns once the initial list is loaded, so the first request already sees it.
    pub async fn start(
        store: Arc<dyn Store>,
        cluster_id: &str,
    ) -> Result<Self, skiff_store::StoreError> {
        let prefix = format!("/k8s/{cluster_id}/{RBAC_GROUP}/");
        let state = Arc::new(RwLock::new(RbacState::default()));
        let rev = relist(&*store, &prefix, &state).await?;
        let (tx, rx) = tokio::sync::watch::channel(rev);
        let task = tokio::spawn(follow(store, prefix, state.clone(), tx, rev));
        Ok(Self {
            state,
            synced: rx,
            task: Some(task),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, RbacState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the cache has applied every RBAC change up to `revision` (e.g. after writing a
    /// RoleBinding); false on timeout.
    pub async fn wait_for_revision(&self, revision: Revision, timeout: Duration) -> bool {
        let mut rx = self.synced.clone();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r >= revision))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The last store revision the cache has applied.
    pub fn synced_revision(&self) -> Revision {
        *self.synced.borrow()
    }

    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> Vec<PolicyRule> {
        self.read().rules_for(user, namespace)
    }

    /// See [`RbacState::aggregated_rules`].
    pub fn aggregated_rules(&self) -> Vec<(String, Vec<PolicyRule>)> {
        self.read().aggregated_rules()
    }

    /// A receiver that changes whenever the cache applies an RBAC change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Revision> {
        self.synced.clone()
    }

    pub fn decide(&self, attrs: &Attributes) -> Decision {
        self.read().authorize(attrs)
    }
}

async fn relist(
    store: &dyn Store,
    prefix: &str,
    state: &RwLock<RbacState>,
) -> Result<Revision, skiff_store::StoreError> {
    let list = store.list(prefix, ListOptions::default()).await?;
    let mut fresh = RbacState::default();
    let mut cluster_roles = Vec::new();
    for kv in &list.items {
        let Some((resource, ns, name)) = parse_key(prefix, &kv.key) else {
            continue;
        };
        let Ok(obj) = serde_json::from_slice::<Value>(&kv.value) else {
            continue;
        };
        if resource == "clusterroles" {
            // Resolve aggregation once at the end, not per role.
            cluster_roles.push((name.to_string(), obj));
        } else {
            fresh.apply(resource, ns, name, Some(&obj));
        }
    }
    for (name, obj) in cluster_roles {
        let entry = ClusterRoleEntry {
            labels: obj
                .pointer("/metadata/labels")
                .cloned()
                .and_then(|l| serde_json::from_value(l).ok())
                .unwrap_or_default(),
            rules: rules_of(&obj),
            selectors: obj
                .pointer("/aggregationRule/clusterRoleSelectors")
                .cloned()
                .and_then(|s| serde_json::from_value(s).ok()),
        };
        fresh.cluster_roles.insert(name, entry);
    }
    fresh.resolve_aggregation();
    *state.write().unwrap_or_else(|e| e.into_inner()) = fresh;
    Ok(list.revision)
}

async fn follow(
    store: Arc<dyn Store>,
    prefix: String,
    state: Arc<RwLock<RbacState>>,
    synced: tokio::sync::watch::Sender<Revision>,
    mut rev: Revision,
) {
    loop {
        match store.watch(&prefix, rev).await {
            Ok(mut stream) => {
                while let Some(ev) = stream.next().await {
                    let Ok(ev) = ev else {
                        // Compacted or cut off: fall through to a relist.
                        break;
                    };
                    if let Some((resource, ns, name)) = parse_key(&prefix, &ev.kv.key) {
                        let obj = match ev.kind {
                            EventKind::Put => serde_json::from_slice::<Value>(&ev.kv.value).ok(),
                            EventKind::Delete => None,
                        };
                        state.write().unwrap_or_else(|e| e.into_inner()).apply(
                            resource,
                            ns,
                            name,
                            obj.as_ref(),
                        );
                    }
                    rev = ev.kv.mod_revision;
                    synced.send_replace(rev);
                }
            }
            Err(e) => tracing::warn!(error = %e, "rbac watch failed; relisting"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        match relist(&*store, &prefix, &state).await {
            Ok(r) => {
                rev = r;
                synced.send_replace(rev);
            }
            Err(e) => tracing::warn!(error = %e, "rbac relist failed"),
        }
    }
}

#[async_trait::async_trait]
impl Authorizer for RbacAuthorizer {
    async fn authorize(&self, attrs: &Attributes) -> Decision {
        self.decide(attrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    fn res(
        u: &UserInfo,
        verb: &str,
        group: &str,
        resource: &str,
        ns: &str,
        name: &str,
    ) -> Attributes {
        let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
        Attributes {
            user: u.clone(),
            verb: verb.into(),
            resource_request: true,
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    fn non_res(u: &UserInfo, verb: &str, path: &str) -> Attributes {
        Attributes {
            user: u.clone(),
            verb: verb.into(),
            path: path.into(),
            ..Default::default()
        }
    }

    fn role(rules: Value) -> Value {
        json!({ "rules": rules })
    }

    fn binding(kind: &str, role: &str, subjects: Value) -> Value {
        json!({ "roleRef": { "apiGroup": RBAC_GROUP, "kind": kind, "name": role }, "subjects": subjects })
    }

    fn allowed(s: &RbacState, a: &Attributes) -> bool {
        s.authorize(a) == Decision::Allow
    }

    #[test]
    fn role_binding_is_namespace_scoped_and_cluster_role_binding_is_not() {
        let mut s = RbacState::default();
        s.apply(
            "clusterroles",
            "",
            "pod-reader",
            Some(&role(
                json!([{"verbs":["get","list"],"apiGroups":[""],"resources":["pods"]}]),
            )),
        );
        s.apply(
            "roles",
            "team",
            "cm-writer",
            Some(&role(
                json!([{"verbs":["create"],"apiGroups":[""],"resources":["configmaps"]}]),
            )),
        );
        s.apply(
            "rolebindings",
            "team",
            "b1",
            Some(&binding(
                "ClusterRole",
                "pod-reader",
                json!([{"kind":"User","name":"jane"}]),
            )),
        );
        s.apply(
            "rolebindings",
            "team",
            "b2",
            Some(&binding(
                "Role",
                "cm-writer",
                json!([{"kind":"Group","name":"devs"}]),
            )),
        );
        s.apply(
            "clusterrolebindings",
            "",
            "c1",
            Some(&binding(
                "ClusterRole",
                "pod-reader",
                json!([{"kind":"User","name":"ops"}]),
            )),
        );
        let jane = user("jane", &["devs"]);
        let ops = user("ops", &[]);
        let cases = [
            (res(&jane, "get", "", "pods", "team", "p"), true),
            (res(&jane, "list", "", "pods", "other", ""), false),
            (res(&jane, "delete", "", "pods", "team", "p"), false),
            (res(&jane, "create", "", "configmaps", "team", ""), true),
            (res(&jane, "create", "", "configmaps", "other", ""), false),
            (res(&ops, "list", "", "pods", "any", ""), true),
            (res(&ops, "list", "", "pods", "", ""), true),
            (res(&ops, "list", "apps", "pods", "any", ""), false),
            // A RoleBinding can't grant cluster-wide access.
            (res(&jane, "list", "", "pods", "", ""), false),
        ];
        for (i, (a, want)) in cases.iter().enumerate() {
            assert_eq!(allowed(&s, a), *want, "case {i}: {a:?}");
        }
        // A RoleBinding to a Role in another namespace grants nothing.
        s.apply(
            "rolebindings",
            "other",
            "b3",
            Some(&binding(
                "Role",
                "cm-writer",
                json!([{"kind":"User","name":"jane"}]),
            )),
        );
        assert!(!allowed(
            &s,
            &res(&jane, "create", "", "configmaps", "other", "")
        ));
        // Deleting the binding revokes.
        s.apply("rolebindings", "team", "b1", None);
        assert!(!allowed(&s, &res(&jane, "get", "", "pods", "team", "p")));
    }

    #[test]
    fn service_account_subjects_and_masters() {
        let mut s = RbacState::default();
        s.apply(
            "roles",
            "default",
            "r",
            Some(&role(
                json!([{"verbs":["list"],"apiGroups":[""],"resources":["pods"]}]),
            )),
        );
        // Subject namespace omitted: the binding's namespace applies.
        s.apply(
            "rolebindings",
            "default",
            "b",
            Some(&binding(
                "Role",
                "r",
                json!([{"kind":"ServiceAccount","name":"app"}]),
            )),
        );
        let sa = user(
            "system:serviceaccount:default:app",
            &["system:serviceaccounts"],
        );
        let other = user("system:serviceaccount:kube-system:app", &[]);
        assert!(allowed(&s, &res(&sa, "list", "", "pods", "default", "")));
        assert!(!allowed(
            &s,
            &res(&other, "list", "", "pods", "default", "")
        ));
        let root = user("kubernetes-admin", &["system:masters"]);
        assert!(allowed(
            &s,
            &res(&root, "delete", "x.io", "things", "ns", "n")
        ));
        assert!(allowed(&s, &non_res(&root, "get", "/anything")));
    }

    #[test]
    fn resource_names_wildcards_and_subresources() {
        let mut s = RbacState::default();
        s.apply("clusterroles", "", "r", Some(&role(json!([
            {"verbs":["get","update"],"apiGroups":[""],"resources":["configmaps"],"resourceNames":["cfg"]},
            {"verbs":["*"],"apiGroups":["apps"],"resources":["*"]},
            {"verbs":["get"],"apiGroups":[""],"resources":["pods/log"]},
            {"verbs":["get"],"apiGroups":["*"],"resources":["*/status"]},
        ]))));
        s.apply(
            "clusterrolebindings",
            "",
            "b",
            Some(&binding(
                "ClusterRole",
                "r",
                json!([{"kind":"User","name":"u"}]),
            )),
        );
        let u = user("u", &[]);
        let cases = [
            (res(&u, "get", "", "configmaps", "ns", "cfg"), true),
            (res(&u, "get", "", "configmaps", "ns", "other"), false),
            // A list has no name, so resourceNames rules never allow it.
            (res(&u, "list", "", "configmaps", "ns", ""), false),
            (
                res(&u, "deletecollection", "apps", "deployments", "ns", ""),
                true,
            ),
            (
                res(&u, "patch", "apps", "deployments/scale", "ns", "d"),
                true,
            ),
            (res(&u, "get", "", "pods/log", "ns", "p"), true),
            (res(&u, "get", "", "pods", "ns", "p"), false),
            (res(&u, "get", "", "pods/exec", "ns", "p"), false),
            (res(&u, "get", "batch", "jobs/status", "ns", "j"), true),
            (res(&u, "update", "batch", "jobs/status", "ns", "j"), false),
        ];
        for (i, (a, want)) in cases.iter().enumerate() {
            assert_eq!(allowed(&s, a), *want, "case {i}: {a:?}");
        }
    }

    #[test]
    fn non_resource_urls() {
        let mut s = RbacState::default();
        s.apply(
            "clusterroles",
            "",
            "d",
            Some(&role(
                json!([{"verbs":["get"],"nonResourceURLs":["/healthz","/apis/*"]}]),
            )),
        );
        s.apply(
            "clusterrolebindings",
            "",
            "b",
            Some(&binding(
                "ClusterRole",
                "d",
                json!([{"kind":"Group","name":"system:authenticated"}]),
            )),
        );
        let u = user("u", &["system:authenticated"]);
        assert!(allowed(&s, &non_res(&u, "get", "/healthz")));
        assert!(allowed(&s, &non_res(&u, "get", "/apis/apps/v1")));
        assert!(!allowed(&s, &non_res(&u, "post", "/healthz")));
        assert!(!allowed(&s, &non_res(&u, "get", "/metrics")));
        assert!(!allowed(
            &s,
            &non_res(&user("anon", &[]), "get", "/healthz")
        ));
        // Resource rules never match non-resource requests and vice versa.
        assert!(!allowed(&s, &res(&u, "get", "", "healthz", "", "")));
    }

    #[test]
    fn aggregation_is_transitive_and_follows_label_changes() {
        let mut s = RbacState::default();
        let agg = |sel: &str| json!({"aggregationRule":{"clusterRoleSelectors":[{"matchLabels":{sel:"true"}}]}});
        let mut edit = agg("to-edit");
        edit["metadata"] = json!({"labels":{"to-admin":"true"}});
        s.apply("clusterroles", "", "admin", Some(&agg("to-admin")));
        s.apply("clusterroles", "", "edit", Some(&edit));
        s.apply("clusterroles", "", "extra", Some(&json!({"metadata":{"labels":{"to-edit":"true"}},"rules":[{"verbs":["get"],"apiGroups":["x.io"],"resources":["widgets"]}]})));
        s.apply(
            "clusterrolebindings",
            "",
            "b",
            Some(&binding(
                "ClusterRole",
                "admin",
                json!([{"kind":"User","name":"u"}]),
            )),
        );
        let u = user("u", &[]);
        let a = res(&u, "get", "x.io", "widgets", "ns", "w");
        assert!(
            allowed(&s, &a),
            "admin aggregates edit which aggregates extra"
        );
        // Relabel `extra` away: the aggregated role loses the rule.
        s.apply("clusterroles", "", "extra", Some(&json!({"metadata":{"labels":{}},"rules":[{"verbs":["get"],"apiGroups":["x.io"],"resources":["widgets"]}]})));
        assert!(!allowed(&s, &a));
        // matchExpressions work too.
        s.apply("clusterroles", "", "admin", Some(&json!({"aggregationRule":{"clusterRoleSelectors":[{"matchExpressions":[{"key":"team","operator":"In","values":["a","b"]}]}]}})));
        s.apply("clusterroles", "", "team-b", Some(&json!({"metadata":{"labels":{"team":"b"}},"rules":[{"verbs":["get"],"apiGroups":["x.io"],"resources":["widgets"]}]})));
        assert!(allowed(&s, &a));
        s.apply("clusterroles", "", "team-b", None);
        assert!(!allowed(&s, &a));
        // A cycle does not hang.
        s.apply("clusterroles", "", "c1", Some(&json!({"metadata":{"labels":{"c":"1"}},"aggregationRule":{"clusterRoleSelectors":[{"matchLabels":{"c":"2"}}]}})));
        s.apply("clusterroles", "", "c2", Some(&json!({"metadata":{"labels":{"c":"2"}},"aggregationRule":{"clusterRoleSelectors":[{"matchLabels":{"c":"1"}}]}})));
    }

    #[test]
    fn keys_parse() {
        let p = "/k8s/c1/rbac.authorization.k8s.io/";
        assert_eq!(
            parse_key(p, "/k8s/c1/rbac.authorization.k8s.io/roles/ns/r"),
            Some(("roles", "ns", "r"))
        );
        assert_eq!(
            parse_key(p, "/k8s/c1/rbac.authorization.k8s.io/clusterroles/view"),
            Some(("clusterroles", "", "view"))
        );
        assert_eq!(
            parse_key(p, "/k8s/c2/rbac.authorization.k8s.io/clusterroles/view"),
            None
        );
    }

    #[test]
    fn rules_for_lists_cluster_and_namespace_rules() {
        let mut s = RbacState::default();
        s.apply(
            "clusterroles",
            "",
            "d",
            Some(&role(json!([{"verbs":["get"],"nonResourceURLs":["/api"]}]))),
        );
        s.apply(
            "clusterrolebindings",
            "",
            "b",
            Some(&binding(
                "ClusterRole",
                "d",
                json!([{"kind":"User","name":"u"}]),
            )),
        );
        s.apply(
            "roles",
            "ns",
            "r",
            Some(&role(
                json!([{"verbs":["list"],"apiGroups":[""],"resources":["pods"]}]),
            )),
        );
        s.apply(
            "rolebindings",
            "ns",
            "rb",
            Some(&binding("Role", "r", json!([{"kind":"User","name":"u"}]))),
        );
        let u = user("u", &[]);
        assert_eq!(s.rules_for(&u, "ns").len(), 2);
        assert_eq!(s.rules_for(&u, "other").len(), 1);
    }
}
