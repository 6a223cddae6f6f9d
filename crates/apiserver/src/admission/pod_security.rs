//! `PodSecurity`: the Pod Security Standards per namespace, from the labels
//! `pod-security.kubernetes.io/{enforce,warn,audit}` (levels `privileged`, `baseline`,
//! `restricted`). A Pod violating the `enforce` level is refused with upstream's message
//! (`violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (...)`); the
//! `warn` level, and either level for workload templates (Deployments, Jobs, …), answer with
//! `Warning:` headers (`would violate PodSecurity ...`) and admit. `audit` writes no audit log here.

use serde_json::Value;
use skiff_k8s_core::status::ApiError;

use super::{Operation, Request};
use crate::registry::Registry;

const LABEL: &str = "pod-security.kubernetes.io/";

/// Capabilities the baseline level lets a container add.
const BASELINE_CAPS: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Volume types the restricted level allows.
const RESTRICTED_VOLUMES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    fn parse(s: &str) -> Option<Level> {
        match s {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// `container "a"` / `containers "a", "b"`.
fn containers_phrase(prefix: &str, names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    let word = if names.len() == 1 {
        "container"
    } else {
        "containers"
    };
    format!("{prefix}{word} {}", quoted.join(", "))
}

fn all_containers(spec: &Value) -> Vec<&Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|l| spec.get(*l).and_then(Value::as_array).into_iter().flatten())
        .collect()
}

fn cname(c: &Value) -> String {
    c.get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Every failed check of `level` on a pod spec, as `"<check> (<detail>)"`, ordered by upstream's
/// check IDs.
pub fn check(spec: &Value, level: Level) -> Vec<String> {
    let mut out: Vec<(&str, String)> = Vec::new();
    if level == Level::Privileged {
        return Vec::new();
    }
    let containers = all_containers(spec);
    let sc = |c: &Value, f: &str| c.pointer(&format!("/securityContext/{f}")).cloned();

    // Baseline.
    let host: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .iter()
        .filter(|k| spec.get(**k).and_then(Value::as_bool) == Some(true))
        .map(|k| format!("{k}=true"))
        .collect();
    if !host.is_empty() {
        out.push((
            "hostNamespaces",
            format!("host namespaces ({})", host.join(", ")),
        ));
    }
    let privileged: Vec<String> = containers
        .iter()
        .filter(|c| sc(c, "privileged").and_then(|v| v.as_bool()) == Some(true))
        .map(|c| cname(c))
        .collect();
    if !privileged.is_empty() {
        out.push((
            "privileged",
            format!(
                "privileged ({} must not set securityContext.privileged=true)",
                containers_phrase("", &privileged)
            ),
        ));
    }
    let host_paths: Vec<String> = spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("hostPath").is_some())
        .map(|v| format!("{:?}", v.get("name").and_then(Value::as_str).unwrap_or("")))
        .collect();
    if !host_paths.is_empty() {
        let word = if host_paths.len() == 1 {
            "volume"
        } else {
            "volumes"
        };
        out.push((
            "hostPathVolumes",
            format!("hostPath volumes ({word} {})", host_paths.join(", ")),
        ));
    }
    let mut host_ports = Vec::new();
    for c in &containers {
        let ports: Vec<String> = c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("hostPort").and_then(Value::as_i64))
            .filter(|p| *p != 0)
            .map(|p| p.to_string())
            .collect();
        if !ports.is_empty() {
            let word = if ports.len() == 1 {
                "hostPort"
            } else {
                "hostPorts"
            };
            host_ports.push(format!(
                "container {:?} uses {word} {}",
                cname(c),
                ports.join(", ")
            ));
        }
    }
    if !host_ports.is_empty() {
        out.push(("hostPorts", format!("hostPort ({})", host_ports.join("; "))));
    }
    let added = |c: &Value| -> Vec<String> {
        c.pointer("/securityContext/capabilities/add")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect()
    };
    if level == Level::Baseline {
        let mut bad = Vec::new();
        for c in &containers {
            let caps: Vec<String> = added(c)
                .into_iter()
                .filter(|a| !BASELINE_CAPS.contains(&a.as_str()))
                .map(|a| format!("{a:?}"))
                .collect();
            if !caps.is_empty() {
                bad.push(format!(
                    "container {:?} must not include {} in securityContext.capabilities.add",
                    cname(c),
                    caps.join(", ")
                ));
            }
        }
        if !bad.is_empty() {
            out.push((
                "capabilities_baseline",
                format!("non-default capabilities ({})", bad.join("; ")),
            ));
        }
    }

    if level == Level::Restricted {
        let escalating: Vec<String> = containers
            .iter()
            .filter(|c| sc(c, "allowPrivilegeEscalation").and_then(|v| v.as_bool()) != Some(false))
            .map(|c| cname(c))
            .collect();
        if !escalating.is_empty() {
            out.push((
                "allowPrivilegeEscalation",
                format!(
                    "allowPrivilegeEscalation != false ({} must set securityContext.allowPrivilegeEscalation=false)",
                    containers_phrase("", &escalating)
                ),
            ));
        }
        let mut cap_msgs = Vec::new();
        let not_dropping: Vec<String> = containers
            .iter()
            .filter(|c| {
                !c.pointer("/securityContext/capabilities/drop")
                    .and_then(Value::as_array)
                    .is_some_and(|d| d.iter().any(|x| x.as_str() == Some("ALL")))
            })
            .map(|c| cname(c))
            .collect();
        if !not_dropping.is_empty() {
            cap_msgs.push(format!(
                "{} must set securityContext.capabilities.drop=[\"ALL\"]",
                containers_phrase("", &not_dropping)
            ));
        }
        for c in &containers {
            let caps: Vec<String> = added(c)
                .into_iter()
                .filter(|a| a != "NET_BIND_SERVICE")
                .map(|a| format!("{a:?}"))
                .collect();
            if !caps.is_empty() {
                cap_msgs.push(format!(
                    "container {:?} must not include {} in securityContext.capabilities.add",
                    cname(c),
                    caps.join(", ")
                ));
            }
        }
        if !cap_msgs.is_empty() {
            out.push((
                "capabilities_restricted",
                format!("unrestricted capabilities ({})", cap_msgs.join("; ")),
            ));
        }
        let bad_volumes: Vec<String> = spec
            .get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| {
                let o = v.as_object()?;
                let t = o.keys().find(|k| *k != "name")?;
                (!RESTRICTED_VOLUMES.contains(&t.as_str())).then(|| {
                    format!(
                        "volume {:?} uses restricted volume type {t:?}",
                        o.get("name").and_then(Value::as_str).unwrap_or("")
                    )
                })
            })
            .collect();
        if !bad_volumes.is_empty() {
            out.push((
                "restrictedVolumes",
                format!("restricted volume types ({})", bad_volumes.join("; ")),
            ));
        }
        let pod_non_root = spec
            .pointer("/securityContext/runAsNonRoot")
            .and_then(Value::as_bool);
        let non_root_missing: Vec<String> = containers
            .iter()
            .filter(|c| {
                let own = sc(c, "runAsNonRoot").and_then(|v| v.as_bool());
                own != Some(true) && !(own.is_none() && pod_non_root == Some(true))
            })
            .map(|c| cname(c))
            .collect();
        if !non_root_missing.is_empty() {
            let who = if pod_non_root == Some(true) {
                containers_phrase("", &non_root_missing)
            } else {
                containers_phrase("pod or ", &non_root_missing)
            };
            out.push((
                "runAsNonRoot",
                format!("runAsNonRoot != true ({who} must set securityContext.runAsNonRoot=true)"),
            ));
        }
        let ok_profile = |v: Option<Value>| {
            v.as_ref()
                .and_then(|p| p.get("type"))
                .and_then(Value::as_str)
                .is_some_and(|t| t == "RuntimeDefault" || t == "Localhost")
        };
        let pod_profile = ok_profile(spec.pointer("/securityContext/seccompProfile").cloned());
        let no_profile: Vec<String> = containers
            .iter()
            .filter(|c| {
                let own = sc(c, "seccompProfile");
                if own.is_some() {
                    !ok_profile(own)
                } else {
                    !pod_profile
                }
            })
            .map(|c| cname(c))
            .collect();
        if !no_profile.is_empty() {
            let who = if pod_profile {
                containers_phrase("", &no_profile)
            } else {
                containers_phrase("pod or ", &no_profile)
            };
            out.push((
                "seccompProfile_restricted",
                format!(
                    "seccompProfile ({who} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
                ),
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(b.0));
    out.into_iter().map(|(_, m)| m).collect()
}

/// (level, version) of one mode from the namespace's labels.
fn mode(ns: &Value, which: &str) -> Option<(Level, String)> {
    let labels = ns.pointer("/metadata/labels")?.as_object()?;
    let level = Level::parse(labels.get(&format!("{LABEL}{which}"))?.as_str()?)?;
    let version = labels
        .get(&format!("{LABEL}{which}-version"))
        .and_then(Value::as_str)
        .unwrap_or("latest")
        .to_string();
    Some((level, version))
}

/// The pod spec a request carries: a Pod's, or a workload's template.
fn pod_spec<'a>(req: &Request<'_>, obj: &'a Value) -> Option<(&'a Value, bool)> {
    if !req.info.group.is_empty() && req.info.group != "apps" && req.info.group != "batch" {
        return None;
    }
    match (req.info.group.as_str(), req.info.plural.as_str()) {
        ("", "pods") => obj.get("spec").map(|s| (s, true)),
        ("", "podtemplates") => obj.pointer("/template/spec").map(|s| (s, false)),
        ("", "replicationcontrollers")
        | ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets")
        | ("batch", "jobs") => obj.pointer("/spec/template/spec").map(|s| (s, false)),
        ("batch", "cronjobs") => obj
            .pointer("/spec/jobTemplate/spec/template/spec")
            .map(|s| (s, false)),
        _ => None,
    }
}

/// Refuses a Pod that violates the enforced level; returns the warnings to send.
pub async fn validate(
    reg: &Registry,
    req: &Request<'_>,
    obj: &Value,
) -> Result<Vec<String>, ApiError> {
    if req.operation != Operation::Create || !req.subresource.is_empty() {
        return Ok(Vec::new());
    }
    let Some((spec, is_pod)) = pod_spec(req, obj) else {
        return Ok(Vec::new());
    };
    let Some(ns_kind) = reg.kind("", "namespaces") else {
        return Ok(Vec::new());
    };
    let ns = match reg.get(&ns_kind, None, req.ns()).await {
        Ok(n) => n,
        Err(ApiError::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let enforce = mode(&ns, "enforce");
    let warn = mode(&ns, "warn");
    let mut warnings = Vec::new();
    if let Some((level, version)) = &enforce {
        let failed = check(spec, *level);
        if !failed.is_empty() {
            let text = format!(
                "PodSecurity \"{}:{version}\": {}",
                level.name(),
                failed.join(", ")
            );
            if is_pod {
                return Err(req.forbidden(format!("violates {text}")));
            }
            warnings.push(format!("would violate {text}"));
        }
    }
    if let Some((level, version)) = &warn {
        let failed = check(spec, *level);
        let same_as_enforce = enforce
            .as_ref()
            .is_some_and(|(l, v)| l == level && v == version);
        // A workload already warned for the same level and version is not warned twice.
        if !failed.is_empty() && (!same_as_enforce || is_pod) {
            warnings.push(format!(
                "would violate PodSecurity \"{}:{version}\": {}",
                level.name(),
                failed.join(", ")
            ));
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn restricted_message_matches_upstream() {
        let spec = json!({"containers": [{"name": "nginx", "image": "nginx"}]});
        assert_eq!(
            check(&spec, Level::Restricted).join(", "),
            "allowPrivilegeEscalation != false (container \"nginx\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"nginx\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"nginx\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"nginx\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        );
        assert!(check(&spec, Level::Baseline).is_empty());
        let good = json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "nginx", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]});
        assert!(check(&good, Level::Restricted).is_empty());
    }

    #[test]
    fn baseline_refuses_host_access() {
        let spec = json!({"hostNetwork": true, "volumes": [{"name": "data", "hostPath": {"path": "/"}}],
            "containers": [{"name": "a", "securityContext": {"privileged": true}, "ports": [{"containerPort": 80, "hostPort": 80}]},
                           {"name": "b", "securityContext": {"privileged": true, "capabilities": {"add": ["NET_ADMIN", "CHOWN"]}}}]});
        assert_eq!(
            check(&spec, Level::Baseline),
            vec![
                "non-default capabilities (container \"b\" must not include \"NET_ADMIN\" in securityContext.capabilities.add)",
                "host namespaces (hostNetwork=true)",
                "hostPath volumes (volume \"data\")",
                "hostPort (container \"a\" uses hostPort 80)",
                "privileged (containers \"a\", \"b\" must not set securityContext.privileged=true)",
            ]
        );
        assert!(check(&spec, Level::Privileged).is_empty());
    }
}
