//! Discovery documents: `/api`, `/apis`, `/apis/<g>`, and the `APIResourceList` of each group
//! version, built from the served versions (built-in kinds, their extra versions, established CRDs)
//! and the hooks (so a new kind or CRD appears with no extra line).

use serde_json::{Value, json};

use super::Api;
use crate::registry::strategy::ResourceInfo;

/// One row of an `APIResourceList`.
fn resource_entry(info: &ResourceInfo) -> Value {
    json!({
        "name": info.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": info.verbs,
        "shortNames": info.short_names,
        "categories": info.categories,
    })
}

/// Subresources served by the HTTP layer itself rather than a hook (`http/resource.rs`,
/// `registry/pod_exec.rs`): (core resource, subresource, kind, verbs), as upstream lists them.
const CONNECT_SUBRESOURCES: &[(&str, &str, &str, &[&str])] = &[
    ("pods", "log", "Pod", &["get"]),
    ("pods", "exec", "PodExecOptions", &["create", "get"]),
    ("pods", "attach", "PodAttachOptions", &["create", "get"]),
    (
        "pods",
        "portforward",
        "PodPortForwardOptions",
        &["create", "get"],
    ),
];

/// The [`CONNECT_SUBRESOURCES`] rows of a resource.
fn connect_subresources(
    info: &ResourceInfo,
) -> impl Iterator<
    Item = &'static (
        &'static str,
        &'static str,
        &'static str,
        &'static [&'static str],
    ),
> {
    let core = info.group.is_empty() && info.version == "v1";
    let plural = info.plural.clone();
    CONNECT_SUBRESOURCES
        .iter()
        .filter(move |(parent, ..)| core && *parent == plural)
}

fn prune_empty(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.retain(|_, x| !matches!(x, Value::Array(a) if a.is_empty()));
    }
    v
}

impl Api {
    /// Every (group, version) served, in kinds-table order, core first.
    pub(crate) fn group_versions(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let infos = self
            .registry
            .served_versions()
            .into_iter()
            .map(|s| s.info)
            .chain(self.create_only.iter().map(|h| h.info().clone()));
        for info in infos {
            let gv = (info.group.clone(), info.version.clone());
            if !out.contains(&gv) {
                out.push(gv);
            }
        }
        out
    }

    /// `/api`: `APIVersions`.
    pub(crate) fn api_versions(&self) -> Value {
        json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.server_address}],
        })
    }

    fn group_entry(group: &str, versions: &[String]) -> Value {
        let vs: Vec<Value> = versions
            .iter()
            .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
            .collect();
        let preferred = vs.first().cloned().unwrap_or(Value::Null);
        json!({"name": group, "versions": vs, "preferredVersion": preferred})
    }

    /// `/apis`: `APIGroupList`.
    pub(crate) fn api_group_list(&self) -> Value {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for (g, v) in self.group_versions() {
            if g.is_empty() {
                continue;
            }
            match groups.iter_mut().find(|(n, _)| *n == g) {
                Some((_, vs)) => vs.push(v),
                None => groups.push((g, vec![v])),
            }
        }
        let groups: Vec<Value> = groups
            .iter()
            .map(|(g, vs)| Self::group_entry(g, vs))
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `/apis/<g>`: `APIGroup`, or None when the group is not served.
    pub(crate) fn api_group(&self, group: &str) -> Option<Value> {
        let versions: Vec<String> = self
            .group_versions()
            .into_iter()
            .filter(|(g, _)| g == group)
            .map(|(_, v)| v)
            .collect();
        if versions.is_empty() || group.is_empty() {
            return None;
        }
        let mut e = Self::group_entry(group, &versions);
        e["kind"] = json!("APIGroup");
        e["apiVersion"] = json!("v1");
        Some(e)
    }

    /// `/api/v1`, `/apis/<g>/<v>`: `APIResourceList`, or None when not served.
    pub(crate) fn api_resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let mut resources = Vec::new();
        for served in self.registry.served_versions() {
            let info = &served.info;
            if info.group != group || info.version != version {
                continue;
            }
            resources.push(prune_empty(resource_entry(info)));
            if info.has_status {
                resources.push(json!({"name": format!("{}/status", info.plural), "singularName": "",
                    "namespaced": info.namespaced, "kind": info.kind, "verbs": ["get", "patch", "update"]}));
            }
            if info.scale.is_some() {
                resources.push(json!({"name": format!("{}/scale", info.plural), "singularName": "",
                    "namespaced": info.namespaced, "group": "autoscaling", "version": "v1", "kind": "Scale",
                    "verbs": ["get", "patch", "update"]}));
            }
            for (_, sub, kind, verbs) in connect_subresources(info) {
                resources.push(
                    json!({"name": format!("{}/{sub}", info.plural), "singularName": "",
                    "namespaced": info.namespaced, "kind": kind, "verbs": verbs}),
                );
            }
            for h in &self.subresources {
                let (parent, pgroup) = h.parent();
                if parent == info.plural && pgroup == info.group {
                    let (kind, g, v) = h.kind();
                    resources.push(
                        json!({"name": format!("{}/{}", info.plural, h.subresource()),
                        "singularName": "", "namespaced": info.namespaced, "group": g, "version": v,
                        "kind": kind, "verbs": ["create"]}),
                    );
                }
            }
        }
        for h in &self.create_only {
            let info = h.info();
            if info.group == group && info.version == version {
                let mut e = prune_empty(resource_entry(info));
                e["verbs"] = json!(h.verbs());
                resources.push(e);
            }
        }
        if resources.is_empty() {
            return None;
        }
        let gv = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        Some(
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
        )
    }
}

/// Content type of an aggregated discovery reply; client-go checks `g`, `v` and `as` on the
/// response before decoding it as an `APIGroupDiscoveryList`.
pub(crate) const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether the `Accept` header asks for `apidiscovery.k8s.io/v2` in JSON. kubectl 1.32 lists the
/// protobuf form first, then JSON, then plain JSON: we answer the JSON aggregated form whenever it
/// is listed anywhere, and the legacy documents otherwise (old clients, curl).
pub(crate) fn wants_aggregated(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            let mut parts = media.split(';').map(str::trim);
            if parts.next() != Some("application/json") {
                return false;
            }
            let (mut g, mut v, mut r#as) = (false, false, false);
            for p in parts {
                match p.split_once('=') {
                    Some(("g", "apidiscovery.k8s.io")) => g = true,
                    Some(("v", "v2")) => v = true,
                    Some(("as", "APIGroupDiscoveryList")) => r#as = true,
                    _ => {}
                }
            }
            g && v && r#as
        })
}

/// `{group, version, kind}` as `responseKind` spells it.
fn response_kind(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

impl Api {
    /// One `APIResourceDiscovery` per served resource of `group/version`, with its
    /// subresources nested (aggregated discovery does not list `pods/status` as a row).
    fn discovery_resources(&self, group: &str, version: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let get_patch_update = ["get", "patch", "update"];
        for served in self.registry.served_versions() {
            let info = &served.info;
            if info.group != group || info.version != version {
                continue;
            }
            let mut subs = Vec::new();
            if info.has_status {
                subs.push(json!({"subresource": "status",
                    "responseKind": response_kind("", "", &info.kind), "verbs": get_patch_update}));
            }
            if info.scale.is_some() {
                subs.push(json!({"subresource": "scale",
                    "responseKind": response_kind("autoscaling", "v1", "Scale"), "verbs": get_patch_update}));
            }
            for (_, sub, kind, verbs) in connect_subresources(info) {
                subs.push(json!({"subresource": sub,
                    "responseKind": response_kind("", "", kind), "verbs": verbs}));
            }
            for h in &self.subresources {
                let (parent, pgroup) = h.parent();
                if parent == info.plural && pgroup == info.group {
                    let (kind, g, v) = h.kind();
                    subs.push(json!({"subresource": h.subresource(),
                        "responseKind": response_kind(g, v, kind), "verbs": ["create"]}));
                }
            }
            out.push(Self::discovery_row(info, json!(info.verbs), subs));
        }
        for h in &self.create_only {
            let info = h.info();
            if info.group == group && info.version == version {
                out.push(Self::discovery_row(info, json!(h.verbs()), Vec::new()));
            }
        }
        out
    }

    fn discovery_row(info: &ResourceInfo, verbs: Value, subresources: Vec<Value>) -> Value {
        let scope = if info.namespaced {
            "Namespaced"
        } else {
            "Cluster"
        };
        prune_empty(json!({
            "resource": info.plural,
            "responseKind": response_kind("", "", &info.kind),
            "scope": scope,
            "singularResource": info.singular,
            "verbs": verbs,
            "shortNames": info.short_names,
            "categories": info.categories,
            "subresources": subresources,
        }))
    }

    /// `apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`: the core group alone for `/api`
    /// (`legacy`), every named group for `/apis`. Built per request from the served versions, so
    /// a CRD shows up (or goes) as soon as it is established (or deleted).
    #[doc(alias = "APIGroupDiscoveryList")]
    pub(crate) fn aggregated_discovery(&self, legacy: bool) -> Value {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for (g, v) in self.group_versions() {
            if g.is_empty() != legacy {
                continue;
            }
            match groups.iter_mut().find(|(n, _)| *n == g) {
                Some((_, vs)) => vs.push(v),
                None => groups.push((g, vec![v])),
            }
        }
        let items: Vec<Value> = groups
            .iter()
            .map(|(g, vs)| {
                let versions: Vec<Value> = vs
                    .iter()
                    .map(|v| {
                        json!({"version": v, "resources": self.discovery_resources(g, v),
                            "freshness": "Current"})
                    })
                    .collect();
                json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
            })
            .collect();
        json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {}, "items": items})
    }

    /// `/api` or `/apis`: the aggregated list when the client asks for it, else the legacy
    /// `APIVersions` / `APIGroupList`.
    pub(crate) fn discovery_root(&self, headers: &http::HeaderMap, legacy: bool) -> super::Reply {
        if wants_aggregated(headers) {
            let mut r =
                super::Reply::json(http::StatusCode::OK, &self.aggregated_discovery(legacy));
            r.content_type = AGGREGATED_CONTENT_TYPE;
            return r;
        }
        let v = if legacy {
            self.api_versions()
        } else {
            self.api_group_list()
        };
        super::Reply::json(http::StatusCode::OK, &v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::ACCEPT, v.parse().unwrap());
        h
    }

    #[test]
    fn accept_negotiation() {
        // kubectl 1.32's header.
        assert!(wants_aggregated(&accept(
            "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,\
             application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        )));
        assert!(wants_aggregated(&accept(
            "application/json; g=apidiscovery.k8s.io; v=v2; as=APIGroupDiscoveryList"
        )));
        assert!(!wants_aggregated(&accept("application/json")));
        assert!(!wants_aggregated(&accept(
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
        )));
        assert!(!wants_aggregated(&accept(
            "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        )));
        assert!(!wants_aggregated(&http::HeaderMap::new()));
    }
}
