//! `ServiceAccount`: a new Pod runs as a ServiceAccount that exists (`default` unless named), and
//! each container gets the projected `kube-api-access-xxxxx` volume (bound token, cluster CA,
//! namespace) mounted at `/var/run/secrets/kubernetes.io/serviceaccount`, as upstream 1.32 does;
//! the ServiceAccount's `imagePullSecrets` are copied when the pod names none.
//!
//! One departure: a missing `default` ServiceAccount does not refuse the pod (upstream: 403
//! `error looking up service account ns/default`), because the ServiceAccount controller creates
//! it a moment after the namespace and clusters without controllers (tests) have none.

use rand::Rng;
use serde_json::{Value, json};
use skiff_k8s_core::status::ApiError;

use super::{Operation, Request};
use crate::registry::Registry;

/// `DefaultAPITokenMountPath`.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Prefix of the projected volume's name (`ServiceAccountVolumeName`).
pub const VOLUME_PREFIX: &str = "kube-api-access-";
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// `utilrand.String(5)`: the alphabet upstream uses for generated suffixes (no vowels, no
/// look-alike digits).
fn suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `TokenVolumeSource`: bound token (3607 s, as upstream's extended first expiry), the cluster CA
/// from `kube-root-ca.crt`, and the namespace.
pub fn token_volume(name: &str) -> Value {
    json!({"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}}
    ]}})
}

/// Adds the token volume and a mount in every container that has nothing at the token path.
fn mount_token(spec: &mut Value) {
    let existing = spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .find(|n| n.starts_with(VOLUME_PREFIX))
        .map(String::from);
    let has_volume = existing.is_some();
    let volume = existing.unwrap_or_else(|| format!("{VOLUME_PREFIX}{}", suffix()));
    let mount = json!({"name": volume, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
    let mut needs_volume = false;
    for (_, c) in super::containers_mut(spec) {
        let Some(co) = c.as_object_mut() else {
            continue;
        };
        let mounts = co.entry("volumeMounts").or_insert_with(|| json!([]));
        let Some(list) = mounts.as_array_mut() else {
            continue;
        };
        let taken = list
            .iter()
            .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(TOKEN_MOUNT_PATH));
        if !taken {
            list.push(mount.clone());
            needs_volume = true;
        }
    }
    if needs_volume
        && !has_volume
        && let Some(o) = spec.as_object_mut()
    {
        let vols = o.entry("volumes").or_insert_with(|| json!([]));
        if let Some(v) = vols.as_array_mut() {
            v.push(token_volume(&volume));
        }
    }
}

/// `shouldAutomount`: the pod's `automountServiceAccountToken` wins over the ServiceAccount's.
fn should_automount(sa: Option<&Value>, spec: &Value) -> bool {
    if let Some(b) = spec
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
    {
        return b;
    }
    sa.and_then(|s| s.get("automountServiceAccountToken"))
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

pub async fn mutate(reg: &Registry, req: &Request<'_>, obj: &mut Value) -> Result<(), ApiError> {
    if !req.is("", "pods") || req.operation != Operation::Create {
        return Ok(());
    }
    if obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
    {
        return Ok(());
    }
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return Ok(());
    };
    let name = match spec.get("serviceAccountName").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => {
            spec["serviceAccountName"] = json!("default");
            "default".to_string()
        }
    };
    if spec.get("serviceAccount").is_none() {
        spec["serviceAccount"] = json!(name);
    }
    let sa = match reg.kind("", "serviceaccounts") {
        Some(kind) => match reg.get(&kind, Some(req.ns()), &name).await {
            Ok(sa) => Some(sa),
            Err(ApiError::NotFound { .. }) if name == "default" => None,
            Err(e @ ApiError::NotFound { .. }) => {
                return Err(req.forbidden(format!(
                    "error looking up service account {}/{name}: {}",
                    req.ns(),
                    e.message()
                )));
            }
            Err(e) => return Err(e),
        },
        None => None,
    };
    if should_automount(sa.as_ref(), spec) {
        mount_token(spec);
    }
    let pull = spec
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if !pull
        && let Some(secrets) = sa
            .as_ref()
            .and_then(|s| s.get("imagePullSecrets"))
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
    {
        let names: Vec<Value> = secrets
            .iter()
            .filter_map(|s| s.get("name"))
            .map(|n| json!({"name": n}))
            .collect();
        spec["imagePullSecrets"] = Value::Array(names);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_container_mounts_one_projected_volume() {
        let mut spec = json!({"containers": [{"name": "a"}, {"name": "b", "volumeMounts": [{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]}],
            "initContainers": [{"name": "i"}]});
        mount_token(&mut spec);
        let vols = spec["volumes"].as_array().unwrap();
        assert_eq!(vols.len(), 1);
        let vname = vols[0]["name"].as_str().unwrap();
        assert!(vname.starts_with(VOLUME_PREFIX) && vname.len() == VOLUME_PREFIX.len() + 5);
        assert_eq!(
            vols[0]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3607
        );
        assert_eq!(spec["containers"][0]["volumeMounts"][0]["name"], vname);
        assert_eq!(spec["containers"][0]["volumeMounts"][0]["readOnly"], true);
        assert_eq!(
            spec["containers"][1]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(spec["initContainers"][0]["volumeMounts"][0]["name"], vname);
        // A second pass (an existing volume) adds nothing.
        mount_token(&mut spec);
        assert_eq!(spec["volumes"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn automount_pod_setting_wins() {
        let sa_off = json!({"automountServiceAccountToken": false});
        assert!(!should_automount(Some(&sa_off), &json!({})));
        assert!(should_automount(
            Some(&sa_off),
            &json!({"automountServiceAccountToken": true})
        ));
        assert!(should_automount(None, &json!({})));
    }
}
