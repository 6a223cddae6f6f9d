//! ControllerRevisions (`pkg/controller/history`), shared by the StatefulSet and DaemonSet
//! controllers: one revision per distinct pod template, named `<owner>-<hash>`, holding the
//! strategic-merge patch `{"spec":{"template":{…,"$patch":"replace"}}}` that `kubectl rollout
//! undo` applies back onto the owner, numbered by `revision`; Pods carry the revision's name in
//! the `controller-revision-hash` label.

use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, DeleteOptions, ResourceRef, WriteOptions};
use skiff_k8s_core::status::ApiError;

use crate::deployment::pod_template_hash;
use crate::ownership::{self, new_controller_ref, str_at};
use crate::runtime::reconcile::Error;

/// The Pod label naming the revision a Pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// The revision's label carrying its hash (`ControllerRevisionHashLabel`).
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

pub fn controller_revisions() -> ResourceRef {
    ResourceRef::new("apps", "v1", "controllerrevisions")
}

/// The revision data of an owner's current template (`getPatch`).
pub fn patch_of(owner: &Value) -> Value {
    let mut t = owner
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(json!({}));
    if let Some(m) = t.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

pub fn number(rev: &Value) -> i64 {
    rev.get("revision").and_then(Value::as_i64).unwrap_or(0)
}

/// The revisions `owner` controls, oldest first.
pub fn owned(owner: &Value, candidates: Vec<Value>) -> Vec<Value> {
    let uid = ownership::uid(owner);
    let mut v: Vec<Value> = candidates
        .into_iter()
        .filter(|r| ownership::controller_ref(r).and_then(|c| c.get("uid")?.as_str()) == Some(uid))
        .collect();
    v.sort_by_key(|r| (number(r), ownership::name(r).to_string()));
    v
}

/// The revision for `owner`'s current template: an equal one is reused (renumbered to be the
/// newest if it is not), else one is created. A name taken by different data bumps
/// `status.collisionCount` (written through `bump_collision`) and fails so the caller retries.
pub async fn update_revision(
    client: &dyn ApiClient,
    owner: &Value,
    api_version: &str,
    kind: &str,
    revisions: &[Value],
    manager: &str,
) -> Result<Value, Error> {
    let ns = ownership::namespace(owner);
    let r = controller_revisions().in_namespace(ns);
    let data = patch_of(owner);
    let next = revisions.iter().map(number).max().unwrap_or(0) + 1;
    let opts = WriteOptions {
        field_manager: Some(manager.into()),
        ..Default::default()
    };
    if let Some(eq) = revisions
        .iter()
        .rev()
        .find(|r| r.get("data") == Some(&data))
    {
        if number(eq) == next - 1 {
            return Ok(eq.clone());
        }
        let mut eq = eq.clone();
        eq["revision"] = json!(next);
        return Ok(client.update(&r, eq, &opts).await?);
    }
    let collision = owner
        .pointer("/status/collisionCount")
        .and_then(Value::as_i64);
    let hash = pod_template_hash(&data, collision);
    let mut labels = owner
        .pointer("/spec/template/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    labels[HASH_LABEL] = json!(hash);
    let rev = json!({
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {
            "name": format!("{}-{hash}", ownership::name(owner)),
            "namespace": ns,
            "labels": labels,
            "ownerReferences": [new_controller_ref(owner, api_version, kind)],
        },
        "data": data,
        "revision": next,
    });
    match client.create(&r, rev, &opts).await {
        Ok(v) => Ok(v),
        Err(ApiError::AlreadyExists { name, .. }) => {
            let existing = client.get(&r, &name).await?;
            let ours = ownership::controller_ref(&existing).and_then(|c| c.get("uid")?.as_str())
                == Some(ownership::uid(owner));
            if ours && existing.get("data") == Some(&data) {
                let mut e = existing;
                e["revision"] = json!(next);
                return Ok(client.update(&r, e, &opts).await?);
            }
            Err(Error::Invalid(format!(
                "controllerrevision {name:?} exists with other data; collisionCount must grow"
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// The `controller-revision-hash` label of a Pod.
pub fn pod_revision_label(p: &Value) -> &str {
    str_at(p, &format!("/metadata/labels/{REVISION_LABEL}"))
}

/// Deletes the oldest revisions beyond `limit` that are not in `keep` (the current and update
/// revisions, and those live Pods still use), by name.
pub async fn truncate(
    client: &dyn ApiClient,
    revisions: &[Value],
    keep: &[&str],
    limit: i64,
) -> Result<(), ApiError> {
    let history: Vec<&Value> = revisions
        .iter()
        .filter(|r| !keep.contains(&ownership::name(r)))
        .collect();
    let excess = history.len() as i64 - limit.max(0);
    for r in history.iter().take(excess.max(0) as usize) {
        let res = controller_revisions().in_namespace(ownership::namespace(r));
        match client
            .delete(&res, ownership::name(r), &DeleteOptions::default())
            .await
        {
            Ok(_) | Err(ApiError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether `status.collisionCount` should grow: the error `update_revision` returns for it.
pub fn is_collision(e: &Error) -> bool {
    matches!(e, Error::Invalid(m) if m.contains("collisionCount"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeClient;

    fn owner(image: &str) -> Value {
        json!({"metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
               "spec": {"template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "c", "image": image}]}}}})
    }

    #[tokio::test]
    async fn creates_reuses_and_renumbers_revisions() {
        let fake = FakeClient::default();
        let r1 = update_revision(&fake, &owner("a"), "apps/v1", "StatefulSet", &[], "m")
            .await
            .unwrap();
        assert_eq!(number(&r1), 1);
        assert_eq!(r1["data"]["spec"]["template"]["$patch"], "replace");
        let hash = r1["metadata"]["labels"][HASH_LABEL].as_str().unwrap();
        assert_eq!(r1["metadata"]["name"], format!("web-{hash}"));
        let same = update_revision(
            &fake,
            &owner("a"),
            "apps/v1",
            "StatefulSet",
            std::slice::from_ref(&r1),
            "m",
        )
        .await
        .unwrap();
        assert_eq!(same["metadata"]["name"], r1["metadata"]["name"]);
        let r2 = update_revision(
            &fake,
            &owner("b"),
            "apps/v1",
            "StatefulSet",
            std::slice::from_ref(&r1),
            "m",
        )
        .await
        .unwrap();
        assert_eq!(number(&r2), 2);
        // Rolling back to "a" renumbers its revision to 3 rather than creating another.
        let back = update_revision(
            &fake,
            &owner("a"),
            "apps/v1",
            "StatefulSet",
            &[r1.clone(), r2.clone()],
            "m",
        )
        .await
        .unwrap();
        assert_eq!(
            (back["metadata"]["name"].clone(), number(&back)),
            (r1["metadata"]["name"].clone(), 3)
        );
        let all = owned(&owner("a"), fake.objects(&controller_revisions()));
        assert_eq!(all.len(), 2);
        truncate(&fake, &all, &[ownership::name(&back)], 0)
            .await
            .unwrap();
        assert_eq!(fake.objects(&controller_revisions()).len(), 1);
    }
}
