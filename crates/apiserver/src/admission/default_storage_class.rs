//! `DefaultStorageClass`: a new PersistentVolumeClaim with no `storageClassName` at all (an empty
//! string means "no class" and is kept) gets the default StorageClass: the one annotated
//! `storageclass.kubernetes.io/is-default-class: "true"`, the newest when several are.

use serde_json::{Value, json};
use skiff_k8s_core::status::ApiError;

use super::{Operation, Request};
use crate::registry::{ListOptions, Registry};

const DEFAULT_ANNOTATIONS: [&str; 2] = [
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];

fn is_default(sc: &Value) -> bool {
    DEFAULT_ANNOTATIONS.iter().any(|a| {
        sc.pointer("/metadata/annotations")
            .and_then(|m| m.get(*a))
            .and_then(Value::as_str)
            == Some("true")
    })
}

/// `GetDefaultClass`: among defaults, the newest; ties broken by name.
pub fn pick_default(classes: &[Value]) -> Option<String> {
    let name = |sc: &Value| {
        sc.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let created = |sc: &Value| {
        sc.pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    classes
        .iter()
        .filter(|sc| is_default(sc))
        .max_by(|a, b| {
            created(a)
                .cmp(&created(b))
                .then_with(|| name(b).cmp(&name(a)))
        })
        .map(name)
}

pub async fn mutate(reg: &Registry, req: &Request<'_>, obj: &mut Value) -> Result<(), ApiError> {
    if !req.is("", "persistentvolumeclaims") || req.operation != Operation::Create {
        return Ok(());
    }
    if obj
        .pointer("/spec/storageClassName")
        .is_some_and(|v| !v.is_null())
        || obj
            .pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
            .is_some()
    {
        return Ok(());
    }
    let Some(kind) = reg.kind("storage.k8s.io", "storageclasses") else {
        return Ok(());
    };
    let classes = reg.list(&kind, None, &ListOptions::default()).await?.items;
    if let Some(name) = pick_default(&classes)
        && let Some(spec) = obj
            .as_object_mut()
            .map(|o| o.entry("spec").or_insert_with(|| json!({})))
            .and_then(Value::as_object_mut)
    {
        spec.insert("storageClassName".into(), json!(name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_default_wins() {
        let sc = |n: &str, t: &str, d: bool| {
            json!({"metadata": {"name": n, "creationTimestamp": t,
                "annotations": {"storageclass.kubernetes.io/is-default-class": if d {"true"} else {"false"}}}})
        };
        let classes = vec![
            sc("gp2", "2026-01-01T00:00:00Z", true),
            sc("gp3", "2026-02-01T00:00:00Z", true),
            sc("io2", "2026-03-01T00:00:00Z", false),
        ];
        assert_eq!(pick_default(&classes).as_deref(), Some("gp3"));
        assert_eq!(pick_default(&classes[2..]), None);
    }
}
