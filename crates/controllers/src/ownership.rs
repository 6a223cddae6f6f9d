//! Owner references shared by the controllers: the controller reference, and claiming objects by
//! selector (`ControllerRefManager`: adopt orphans that match, release owned ones that no longer
//! match), written as merge patches guarded by the object's resourceVersion.

use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, PatchOptions, ResourceRef};
use skiff_k8s_core::patch::PatchType;
use skiff_k8s_core::selector::Selector;
use skiff_k8s_core::status::ApiError;

pub fn str_at<'a>(obj: &'a Value, ptr: &str) -> &'a str {
    obj.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

pub fn uid(obj: &Value) -> &str {
    str_at(obj, "/metadata/uid")
}

pub fn name(obj: &Value) -> &str {
    str_at(obj, "/metadata/name")
}

pub fn namespace(obj: &Value) -> &str {
    str_at(obj, "/metadata/namespace")
}

pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// The owner reference with `controller: true`, if any.
pub fn controller_ref(obj: &Value) -> Option<&Value> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
}

/// The `namespace/name` of `obj`'s controller when it is of `kind`.
pub fn controller_key(obj: &Value, kind: &str) -> Option<String> {
    let r = controller_ref(obj)?;
    (r.get("kind").and_then(Value::as_str) == Some(kind))
        .then(|| format!("{}/{}", namespace(obj), str_at(r, "/name")))
}

/// A controller reference to `owner` (`metav1.NewControllerRef`): blockOwnerDeletion so
/// foreground deletion of the owner waits for its dependents.
pub fn new_controller_ref(owner: &Value, api_version: &str, kind: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Keeps the candidates `owner` controls and that match `selector`; adopts matching orphans and
/// releases owned objects that stopped matching. Returns the objects now owned (post-patch).
pub async fn claim(
    client: &dyn ApiClient,
    resource: &ResourceRef,
    owner: &Value,
    owner_ref: Value,
    selector: &Selector,
    candidates: Vec<Value>,
    manager: &str,
) -> Result<Vec<Value>, ApiError> {
    let owner_uid = uid(owner);
    let mut owned = Vec::new();
    let opts = PatchOptions {
        field_manager: Some(manager.to_string()),
        ..Default::default()
    };
    for c in candidates {
        let matches = selector.matches_object(&c);
        let refs: Vec<Value> = c
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let new_refs = match controller_ref(&c) {
            Some(r) if r.get("uid").and_then(Value::as_str) == Some(owner_uid) => {
                if matches {
                    owned.push(c);
                    continue;
                }
                if is_deleting(owner) {
                    continue;
                }
                // Release: drop our reference, keep the others.
                refs.into_iter()
                    .filter(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid))
                    .collect::<Vec<_>>()
            }
            Some(_) => continue,
            None => {
                if !matches || is_deleting(owner) || is_deleting(&c) {
                    continue;
                }
                let mut refs = refs;
                refs.push(owner_ref.clone());
                refs
            }
        };
        let adopting = new_refs.len()
            > c["metadata"]["ownerReferences"]
                .as_array()
                .map_or(0, Vec::len);
        let patch = json!({"metadata": {
            "ownerReferences": new_refs,
            "resourceVersion": str_at(&c, "/metadata/resourceVersion"),
        }});
        match client
            .patch(resource, name(&c), PatchType::Merge, patch, &opts)
            .await
        {
            Ok(o) if adopting => owned.push(o),
            Ok(_) | Err(ApiError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(owned)
}

/// `spec.selector` as a [`Selector`]; an empty selector selects nothing for controllers
/// (upstream refuses to act on it rather than grab every object in the namespace).
pub fn selector_of(obj: &Value) -> Result<Selector, String> {
    let sel = Selector::from_label_selector(obj.pointer("/spec/selector").unwrap_or(&Value::Null))?;
    if sel.is_everything() {
        return Ok(Selector::nothing());
    }
    Ok(sel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeClient;

    #[tokio::test]
    async fn adopts_matching_orphans_and_releases_mismatches() {
        let fake = FakeClient::default();
        let pods = ResourceRef::new("", "v1", "pods").in_namespace("ns");
        let owner = json!({"metadata": {"name": "rs", "uid": "u1"}});
        let r = new_controller_ref(&owner, "apps/v1", "ReplicaSet");
        let orphan = fake.seed(
            &pods,
            json!({"metadata": {"name": "a", "labels": {"app": "x"}}}),
        );
        let stray = fake.seed(
            &pods,
            json!({"metadata": {"name": "b", "labels": {"app": "y"}, "ownerReferences": [r.clone()]}}),
        );
        let foreign = fake.seed(
            &pods,
            json!({"metadata": {"name": "c", "labels": {"app": "x"},
                "ownerReferences": [{"uid": "other", "controller": true}]}}),
        );
        let sel = Selector::parse("app=x").unwrap();
        let owned = claim(
            &fake,
            &pods,
            &owner,
            r,
            &sel,
            vec![orphan, stray, foreign],
            "m",
        )
        .await
        .unwrap();
        assert_eq!(owned.len(), 1);
        assert_eq!(controller_ref(&owned[0]).unwrap()["uid"], "u1");
        assert_eq!(fake.writes(), ["patch pods ns/a", "patch pods ns/b"]);
        let b = fake.object(&pods, "ns/b").unwrap();
        assert_eq!(b["metadata"]["ownerReferences"], json!([]));
        assert_eq!(
            controller_key(&owned[0], "ReplicaSet").as_deref(),
            Some("ns/rs")
        );
    }
}
