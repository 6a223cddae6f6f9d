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
