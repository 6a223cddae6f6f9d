//! The StatefulSet controller (`pkg/controller/statefulset`): Pods with stable identities
//! `<set>-<ordinal>` (hostname, `spec.serviceName` subdomain, the `statefulset.kubernetes.io/pod-name`
//! and `apps.kubernetes.io/pod-index` labels), one PersistentVolumeClaim per
//! volumeClaimTemplate and ordinal (`<template>-<set>-<ordinal>`), created in order and waiting
//! for readiness (`OrderedReady`) or all at once (`Parallel`), removed highest ordinal first.
//! Template changes become ControllerRevisions; `RollingUpdate` replaces Pods from the highest
//! ordinal down to `partition`, at most `maxUnavailable` at a time; `OnDelete` waits for the user.
//! `persistentVolumeClaimRetentionPolicy` hands PVCs to the garbage collector through owner
//! references (the set for `whenDeleted: Delete`, the condemned Pod for `whenScaled: Delete`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, DeleteOptions, PatchOptions, ResourceRef, WriteOptions};
use skiff_k8s_core::patch::PatchType;
use skiff_k8s_core::status::ApiError;

use crate::job_mutation_cache::MutationCache;
use crate::ownership::{self, claim, controller_key, is_deleting, new_controller_ref, str_at};
use crate::replicaset::{is_pod_available, is_pod_ready, pods};
use crate::runtime::Clock;
use crate::runtime::events::{EventRecorder, EventType, Recorder};
use crate::runtime::informer::{Cache, Change, key_of};
use crate::runtime::queue::WorkQueue;
use crate::runtime::reconcile::{Action, Error, Reconciler};
use crate::statefulset_history::{self as history, REVISION_LABEL, controller_revisions};

pub const NAME: &str = "statefulset-controller";
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

pub fn statefulsets() -> ResourceRef {
    ResourceRef::new("apps", "v1", "statefulsets")
}

pub fn pvcs() -> ResourceRef {
    ResourceRef::new("", "v1", "persistentvolumeclaims")
}

fn wopts() -> WriteOptions {
    WriteOptions {
        field_manager: Some(NAME.into()),
        ..Default::default()
    }
}

/// The ordinal of a Pod named `<set>-<n>` (`getParentNameAndOrdinal`).
pub fn ordinal_of(set_name: &str, pod: &Value) -> Option<i64> {
    let (parent, n) = ownership::name(pod).rsplit_once('-')?;
    if parent != set_name || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// `<template>-<set>-<ordinal>`.
pub fn claim_name(template: &str, set: &str, ordinal: i64) -> String {
    format!("{template}-{set}-{ordinal}")
}

fn running_and_ready(p: &Value) -> bool {
    str_at(p, "/status/phase") == "Running" && is_pod_ready(p)
}

fn failed(p: &Value) -> bool {
    str_at(p, "/status/phase") == "Failed"
}

fn revision_of(p: &Value) -> &str {
    history::pod_revision_label(p)
}

/// maxUnavailable against `replicas` (int or percentage rounded down), at least 1.
fn max_unavailable(set: &Value, replicas: i64) -> i64 {
    let v = set.pointer("/spec/updateStrategy/rollingUpdate/maxUnavailable");
    let n = match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(1),
        Some(Value::String(s)) => s
            .strip_suffix('%')
            .and_then(|p| p.parse::<i64>().ok())
            .map_or(1, |p| p * replicas / 100),
        _ => 1,
    };
    n.max(1)
}

pub struct StatefulSetController {
    client: Arc<dyn ApiClient>,
    sets: Cache,
    pods: Cache,
    revisions: Cache,
    pvcs: Cache,
    written: MutationCache,
    clock: Arc<dyn Clock>,
    /// `SuccessfulCreate`/`SuccessfulDelete` Events on the set; none in unit tests that assert writes.
    events: Option<Arc<EventRecorder>>,
}

impl StatefulSetController {
    pub fn new(
        client: Arc<dyn ApiClient>,
        sets: Cache,
        pods: Cache,
        revisions: Cache,
        pvcs: Cache,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client,
            sets,
            pods,
            revisions,
            pvcs,
            written: MutationCache::new(),
            clock,
            events: None,
        }
    }

    /// Records events as upstream's `StatefulPodControl` does.
    pub fn with_events(mut self, events: Arc<EventRecorder>) -> Self {
        self.events = Some(events);
        self
    }

    /// `recordPodEvent`: `SuccessfulCreate` "create Pod web-0 in StatefulSet web successful", or
    /// `FailedCreate` with the error.
    fn pod_event(&self, set: &Value, verb: &str, pod: &str, err: Option<&ApiError>) {
        let set_name = ownership::name(set);
        let title = format!("{}{}", verb[..1].to_uppercase(), &verb[1..]);
        match err {
            None => self.events.event(
                set,
                EventType::Normal,
                &format!("Successful{title}"),
                &format!("{verb} Pod {pod} in StatefulSet {set_name} successful"),
            ),
            Some(e) => self.events.event(
                set,
                EventType::Warning,
                &format!("Failed{title}"),
                &format!(
                    "{verb} Pod {pod} in StatefulSet {set_name} failed error: {}",
                    e.message()
                ),
            ),
        }
    }

    pub fn on_set(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| queue.add(&key_of(c.object()))
    }

    /// Pods and revisions queue their set; orphan Pods queue every set that could adopt them.
    pub fn on_owned(&self, queue: WorkQueue) -> impl Fn(&Change) + Send + Sync + use<> {
        let sets = self.sets.clone();
        move |c| {
            let o = c.object();
            match controller_key(o, "StatefulSet") {
                Some(k) => queue.add(&k),
                None if !matches!(c, Change::Deleted(_)) => {
                    for s in sets.list(Some(ownership::namespace(o))) {
                        if ownership::selector_of(&s).is_ok_and(|sel| sel.matches_object(o)) {
                            queue.add(&key_of(&s));
                        }
                    }
                }
                None => {}
            }
        }
    }

    /// The Pod for `ordinal` at `revision` (`newVersionedStatefulSetPod`): the revision's
    /// template, the identity, and the claims' volumes.
    fn new_pod(set: &Value, revision: &Value, ordinal: i64) -> Value {
        let set_name = ownership::name(set);
        let name = format!("{set_name}-{ordinal}");
        let tmpl = revision
            .pointer("/data/spec/template")
            .cloned()
            .unwrap_or_else(|| set["spec"]["template"].clone());
        let mut labels = tmpl
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or(json!({}));
        labels[POD_NAME_LABEL] = json!(name);
        labels[POD_INDEX_LABEL] = json!(ordinal.to_string());
        labels[REVISION_LABEL] = json!(ownership::name(revision));
        let mut spec = tmpl.get("spec").cloned().unwrap_or(json!({}));
        spec["hostname"] = json!(name);
        if let Some(svc) = set
            .pointer("/spec/serviceName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            spec["subdomain"] = json!(svc);
        }
        let templates = set
            .pointer("/spec/volumeClaimTemplates")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !templates.is_empty() {
            let mut vols: Vec<Value> = spec
                .get("volumes")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for t in &templates {
                let tn = str_at(t, "/metadata/name");
                vols.retain(|v| str_at(v, "/name") != tn);
                vols.push(json!({"name": tn, "persistentVolumeClaim": {
                    "claimName": claim_name(tn, set_name, ordinal)}}));
            }
            spec["volumes"] = Value::Array(vols);
        }
        let mut meta = json!({
            "name": name,
            "namespace": ownership::namespace(set),
            "labels": labels,
            "ownerReferences": [new_controller_ref(set, "apps/v1", "StatefulSet")],
        });
        if let Some(a) = tmpl.pointer("/metadata/annotations") {
            meta["annotations"] = a.clone();
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
    }

    /// Creates the missing claims of `ordinal` (`createPersistentVolumeClaims`).
    async fn ensure_claims(&self, set: &Value, ordinal: i64) -> Result<(), ApiError> {
        let ns = ownership::namespace(set);
        let set_name = ownership::name(set);
        let delete_with_set = str_at(
            set,
            "/spec/persistentVolumeClaimRetentionPolicy/whenDeleted",
        ) == "Delete";
        for t in set
            .pointer("/spec/volumeClaimTemplates")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = claim_name(str_at(t, "/metadata/name"), set_name, ordinal);
            if self.pvcs.get(&format!("{ns}/{name}")).is_some() {
                continue;
            }
            let mut labels = t.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
            if let Some(m) = set
                .pointer("/spec/selector/matchLabels")
                .and_then(Value::as_object)
            {
                for (k, v) in m {
                    labels[k] = v.clone();
                }
            }
            let mut meta = json!({"name": name, "namespace": ns, "labels": labels});
            if let Some(a) = t.pointer("/metadata/annotations") {
                meta["annotations"] = a.clone();
            }
            if delete_with_set {
                let mut r = new_controller_ref(set, "apps/v1", "StatefulSet");
                r["controller"] = json!(false);
                meta["ownerReferences"] = json!([r]);
            }
            let claim = json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": meta,
                "spec": t.get("spec").cloned().unwrap_or(json!({})),
            });
            let pod = format!("{set_name}-{ordinal}");
            match self
                .client
                .create(&pvcs().in_namespace(ns), claim, &wopts())
                .await
            {
                Ok(_) => self.events.event(
                    set,
                    EventType::Normal,
                    "SuccessfulCreate",
                    &format!("create Claim {name} Pod {pod} in StatefulSet {set_name} success"),
                ),
                Err(ApiError::AlreadyExists { .. }) => {}
                Err(e) => {
                    self.events.event(
                        set,
                        EventType::Warning,
                        "FailedCreate",
                        &format!(
                            "create Claim {name} for Pod {pod} in StatefulSet {set_name} failed error: {}",
                            e.message()
                        ),
                    );
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// `whenScaled: Delete`: the condemned Pod becomes an owner of its claims, so the garbage
    /// collector removes them with it.
    async fn hand_claims_to_pod(
        &self,
        set: &Value,
        pod: &Value,
        ordinal: i64,
    ) -> Result<(), ApiError> {
        if str_at(set, "/spec/persistentVolumeClaimRetentionPolicy/whenScaled") != "Delete" {
            return Ok(());
        }
        let ns = ownership::namespace(set);
        for t in set
            .pointer("/spec/volumeClaimTemplates")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = claim_name(str_at(t, "/metadata/name"), ownership::name(set), ordinal);
            let Some(c) = self.pvcs.get(&format!("{ns}/{name}")) else {
                continue;
            };
            let mut refs: Vec<Value> = c
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if refs
                .iter()
                .any(|r| str_at(r, "/uid") == ownership::uid(pod))
            {
                continue;
            }
            refs.push(
                json!({"apiVersion": "v1", "kind": "Pod", "name": ownership::name(pod),
                             "uid": ownership::uid(pod), "controller": false,
                             "blockOwnerDeletion": true}),
            );
            let patch = json!({"metadata": {"ownerReferences": refs,
                "resourceVersion": str_at(&c, "/metadata/resourceVersion")}});
            let opts = PatchOptions {
                field_manager: Some(NAME.into()),
                ..Default::default()
            };
            match self
                .client
                .patch(
                    &pvcs().in_namespace(ns),
                    &name,
                    PatchType::Merge,
                    patch,
                    &opts,
                )
                .await
            {
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn delete_pod(&self, set: &Value, p: &Value) -> Result<(), ApiError> {
        let opts = DeleteOptions {
            precondition_uid: Some(ownership::uid(p).to_string()),
            ..Default::default()
        };
        match self
            .client
            .delete(
                &pods().in_namespace(ownership::namespace(p)),
                ownership::name(p),
                &opts,
            )
            .await
        {
            Ok(_) => {
                self.pod_event(set, "delete", ownership::name(p), None);
                Ok(())
            }
            Err(ApiError::NotFound { .. }) => Ok(()),
            Err(e) => {
                self.pod_event(set, "delete", ownership::name(p), Some(&e));
                Err(e)
            }
        }
    }

    /// Creates the claims, then the Pod; the Pod as created, for status.
    async fn create_pod(
        &self,
        set: &Value,
        rev: &Value,
        ordinal: i64,
        created: &mut Vec<Value>,
    ) -> Result<(), ApiError> {
        self.ensure_claims(set, ordinal).await?;
        let pod = Self::new_pod(set, rev, ordinal);
        let pod_name = ownership::name(&pod).to_string();
        match self
            .client
            .create(
                &pods().in_namespace(ownership::namespace(set)),
                pod,
                &wopts(),
            )
            .await
        {
            Ok(p) => {
                self.pod_event(set, "create", &pod_name, None);
                created.push(p);
                Ok(())
            }
            Err(ApiError::AlreadyExists { .. }) => Ok(()),
            Err(e) => {
                self.pod_event(set, "create", &pod_name, Some(&e));
                Err(e)
            }
        }
    }

    /// One pass over the replicas (`updateStatefulSet`); the Pods it created go to `created`
    /// so status counts them at once, as upstream's does.
    async fn sync_pods(
        &self,
        set: &Value,
        owned: &[Value],
        current: &Value,
        update: &Value,
        created: &mut Vec<Value>,
    ) -> Result<(), ApiError> {
        let set_name = ownership::name(set);
        let start = set["spec"]["ordinals"]["start"].as_i64().unwrap_or(0);
        let replicas = set["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
        let monotonic = str_at(set, "/spec/podManagementPolicy") != "Parallel";
        let rolling = str_at(set, "/spec/updateStrategy/type") != "OnDelete";
        let partition = set
            .pointer("/spec/updateStrategy/rollingUpdate/partition")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let min_ready = set["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        let now = self.clock.now();
        let healthy = |p: &Value| {
            running_and_ready(p) && is_pod_available(p, min_ready, now) && !is_deleting(p)
        };
        let mut slots: Vec<Option<&Value>> = vec![None; replicas as usize];
        let mut condemned: Vec<(i64, &Value)> = Vec::new();
        for p in owned {
            match ordinal_of(set_name, p) {
                Some(o) if o >= start && o < start + replicas => {
                    slots[(o - start) as usize] = Some(p)
                }
                Some(o) => condemned.push((o, p)),
                None => {}
            }
        }
        condemned.sort_by_key(|(o, _)| -o);
        // The revision a new Pod gets: below the partition it stays at the current one.
        let rev_for = |ord: i64| {
            if rolling && ord - start < partition {
                current
            } else {
                update
            }
        };

        // Create and replace, lowest ordinal first.
        let mut first_unhealthy = None;
        for (i, slot) in slots.iter().enumerate() {
            let ord = start + i as i64;
            match slot {
                None => {
                    self.create_pod(set, rev_for(ord), ord, created).await?;
                    if monotonic {
                        return Ok(());
                    }
                }
                Some(p) if failed(p) && !is_deleting(p) => {
                    // A failed Pod is deleted and recreated with the same identity.
                    self.delete_pod(set, p).await?;
                    if monotonic {
                        return Ok(());
                    }
                }
                Some(p) => {
                    if !is_deleting(p) {
                        self.ensure_claims(set, ord).await?;
                    }
                    if !healthy(p) {
                        first_unhealthy.get_or_insert(ord);
                        if monotonic {
                            return Ok(());
                        }
                    }
                }
            }
        }
        // Scale down, highest ordinal first; OrderedReady one at a time with every remaining Pod
        // healthy.
        for (ord, p) in &condemned {
            if is_deleting(p) {
                if monotonic {
                    return Ok(());
                }
                continue;
            }
            if monotonic && first_unhealthy.is_some() {
                return Ok(());
            }
            self.hand_claims_to_pod(set, p, *ord).await?;
            self.delete_pod(set, p).await?;
            if monotonic {
                return Ok(());
            }
        }
        if !rolling {
            return Ok(());
        }
        // Rolling update: from the top down to the partition, at most maxUnavailable Pods down.
        let update_name = ownership::name(update);
        let budget = max_unavailable(set, replicas);
        let mut unavailable = slots
            .iter()
            .skip(partition.max(0) as usize)
            .filter(|s| s.is_none_or(|p| !healthy(p)))
            .count() as i64;
        for (i, slot) in slots.iter().enumerate().rev() {
            if (i as i64) < partition {
                break;
            }
            let Some(p) = slot else { continue };
            if revision_of(p) != update_name && !is_deleting(p) {
                if unavailable >= budget {
                    break;
                }
                let was_healthy = healthy(p);
                self.delete_pod(set, p).await?;
                if was_healthy {
                    unavailable += 1;
                }
            } else if monotonic && !healthy(p) && budget == 1 {
                // Ordered one at a time: wait for the replacement to become ready.
                break;
            }
        }
        Ok(())
    }

    fn status(&self, set: &Value, owned: &[Value], current: &str, update: &str) -> Value {
        let min_ready = set["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        let now = self.clock.now();
        let live: Vec<&Value> = owned.iter().filter(|p| !is_deleting(p)).collect();
        let count = |f: &dyn Fn(&Value) -> bool| live.iter().filter(|p| f(p)).count() as i64;
        let replicas = count(&|_| true);
        let ready = count(&running_and_ready);
        let available = count(&|p| running_and_ready(p) && is_pod_available(p, min_ready, now));
        let mut current_name = current.to_string();
        let mut current_replicas = count(&|p| revision_of(p) == current);
        let updated = count(&|p| revision_of(p) == update);
        let want = set["spec"]["replicas"].as_i64().unwrap_or(1);
        // completeRollingUpdate: every Pod updated and ready makes the update revision current.
        if updated == replicas && ready == replicas && replicas == want {
            current_name = update.to_string();
            current_replicas = updated;
        }
        let mut st = set.get("status").cloned().unwrap_or(json!({}));
        if !st.is_object() {
            st = json!({});
        }
        st["observedGeneration"] = set["metadata"]["generation"].clone();
        st["replicas"] = json!(replicas);
        st["readyReplicas"] = json!(ready);
        st["availableReplicas"] = json!(available);
        st["currentReplicas"] = json!(current_replicas);
        st["updatedReplicas"] = json!(updated);
        st["currentRevision"] = json!(current_name);
        st["updateRevision"] = json!(update);
        if st.get("collisionCount").is_none() {
            st["collisionCount"] = json!(0);
        }
        st
    }
}

/// The [`crate::CONTROLLERS`] entry's setup.
pub fn setup(
    inf: &mut crate::Informers,
    client: Arc<dyn ApiClient>,
    clock: Arc<dyn Clock>,
    q: WorkQueue,
) -> Arc<dyn Reconciler> {
    let client_for_events = client.clone();
    let c = StatefulSetController::new(
        client,
        inf.cache(statefulsets()),
        inf.cache(pods()),
        inf.cache(controller_revisions()),
        inf.cache(pvcs()),
        clock.clone(),
    )
    .with_events(EventRecorder::new(client_for_events, NAME, clock));
    inf.get(statefulsets())
        .add_handler(Arc::new(StatefulSetController::on_set(q.clone())));
    inf.get(pods()).add_handler(Arc::new(c.on_owned(q.clone())));
    inf.get(controller_revisions())
        .add_handler(Arc::new(c.on_owned(q)));
    Arc::new(c)
}

#[async_trait::async_trait]
impl Reconciler for StatefulSetController {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &str) -> Result<Action, Error> {
        let Some(set) = self.written.newest(key, self.sets.get(key)) else {
            return Ok(Action::AwaitChange);
        };
        if is_deleting(&set) {
            return Ok(Action::AwaitChange);
        }
        let ns = ownership::namespace(&set).to_string();
        let selector = ownership::selector_of(&set).map_err(Error::Invalid)?;
        let set_ref = new_controller_ref(&set, "apps/v1", "StatefulSet");
        // Only Pods named like ours are ours to adopt (`isMemberOf`).
        let candidates: Vec<Value> = self
            .pods
            .list(Some(&ns))
            .into_iter()
            .filter(|p| {
                ordinal_of(ownership::name(&set), p).is_some()
                    || controller_key(p, "StatefulSet").is_some()
            })
            .collect();
        let owned = claim(
            self.client.as_ref(),
            &pods().in_namespace(&ns),
            &set,
            set_ref.clone(),
            &selector,
            candidates,
            NAME,
        )
        .await?;
        let revs = claim(
            self.client.as_ref(),
            &controller_revisions().in_namespace(&ns),
            &set,
            set_ref,
            &selector,
            self.revisions.list(Some(&ns)),
            NAME,
        )
        .await?;
        let revs = history::owned(&set, revs);
        let update = match history::update_revision(
            self.client.as_ref(),
            &set,
            "apps/v1",
            "StatefulSet",
            &revs,
            NAME,
        )
        .await
        {
            Ok(r) => r,
            Err(e) if history::is_collision(&e) => {
                let mut ns_set = set.clone();
                let n = set
                    .pointer("/status/collisionCount")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                ns_set["status"]["collisionCount"] = json!(n + 1);
                self.client
                    .update_status(&statefulsets().in_namespace(&ns), ns_set, &wopts())
                    .await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let current_name = str_at(&set, "/status/currentRevision");
        let current = revs
            .iter()
            .find(|r| ownership::name(r) == current_name)
            .cloned()
            .unwrap_or_else(|| update.clone());
        let mut created = Vec::new();
        let sync_err = self
            .sync_pods(&set, &owned, &current, &update, &mut created)
            .await
            .err();
        let mut now_owned = owned.clone();
        now_owned.extend(created);
        let status = self.status(
            &set,
            &now_owned,
            ownership::name(&current),
            ownership::name(&update),
        );
        if set.get("status") != Some(&status) {
            let mut ns_set = set.clone();
            ns_set["status"] = status.clone();
            let w = self
                .client
                .update_status(&statefulsets().in_namespace(&ns), ns_set, &wopts())
                .await?;
            self.written.wrote(key, &w);
        }
        let mut all_revs = revs;
        if !all_revs
            .iter()
            .any(|r| ownership::uid(r) == ownership::uid(&update))
        {
            all_revs.push(update.clone());
        }
        let limit = set["spec"]["revisionHistoryLimit"].as_i64().unwrap_or(10);
        let mut keep = vec![ownership::name(&current), ownership::name(&update)];
        keep.extend(now_owned.iter().map(history::pod_revision_label));
        history::truncate(self.client.as_ref(), &all_revs, &keep, limit).await?;
        if let Some(e) = sync_err {
            return Err(e.into());
        }
        let min_ready = set["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        if min_ready > 0 && status["readyReplicas"] != status["availableReplicas"] {
            return Ok(Action::Requeue(Duration::from_secs(min_ready as u64)));
        }
        Ok(Action::AwaitChange)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::FakeClock;
    use crate::testing::FakeClient;

    const T0: &str = "2026-01-01T00:00:00Z";

    struct Kit {
        fake: Arc<FakeClient>,
        c: StatefulSetController,
    }

    fn set(spec: Value) -> Value {
        let mut s = json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "ns", "uid": "set-uid", "generation": 1},
            "spec": {
                "replicas": 3, "serviceName": "db", "podManagementPolicy": "OrderedReady",
                "revisionHistoryLimit": 10,
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}},
                             "spec": {"containers": [{"name": "c", "image": "pg:1"}]}},
            },
        });
        for (k, v) in spec.as_object().unwrap() {
            s["spec"][k] = v.clone();
        }
        s
    }

    impl Kit {
        fn new(spec: Value) -> Self {
            let fake = Arc::new(FakeClient::default());
            fake.seed(&statefulsets(), set(spec));
            let c = StatefulSetController::new(
                fake.clone(),
                Cache::default(),
                Cache::default(),
                Cache::default(),
                Cache::default(),
                FakeClock::new(T0.parse().unwrap()),
            );
            let mut k = Kit { fake, c };
            k.sync();
            k
        }
        fn sync(&mut self) {
            let fill = |r: &ResourceRef| {
                let c = Cache::default();
                for o in self.fake.objects(r) {
                    c.insert(o);
                }
                c
            };
            self.c.sets = fill(&statefulsets());
            self.c.pods = fill(&pods());
            self.c.revisions = fill(&controller_revisions());
            self.c.pvcs = fill(&pvcs());
        }
        async fn run(&mut self) {
            self.c.reconcile("ns/db").await.unwrap();
            self.sync();
        }
        fn pods(&self) -> Vec<String> {
            self.fake
                .objects(&pods())
                .iter()
                .map(|p| ownership::name(p).to_string())
                .collect()
        }
        fn ready(&mut self, name: &str) {
            let mut p = self.fake.object(&pods(), &format!("ns/{name}")).unwrap();
            p["status"] = json!({"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": T0}]});
            self.fake.seed(&pods(), p);
            self.sync();
        }
        fn all_ready(&mut self) {
            for n in self.pods() {
                self.ready(&n);
            }
        }
        fn set(&self) -> Value {
            self.fake.object(&statefulsets(), "ns/db").unwrap()
        }
        fn edit(&mut self, f: impl FnOnce(&mut Value)) {
            let mut s = self.set();
            f(&mut s);
            s["metadata"]["generation"] = json!(s["metadata"]["generation"].as_i64().unwrap() + 1);
            self.fake.seed(&statefulsets(), s);
            self.sync();
        }
    }

    #[tokio::test]
    async fn ordered_ready_creates_one_pod_at_a_time_with_identity_and_claims() {
        let tpl = json!([{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}}]);
        let mut k = Kit::new(json!({"volumeClaimTemplates": tpl}));
        k.run().await;
        let w = k.fake.writes();
        assert_eq!(
            w,
            [
                "create controllerrevisions ns/".to_string()
                    + ownership::name(&k.fake.objects(&controller_revisions())[0]),
                "create persistentvolumeclaims ns/data-db-0".into(),
                "create pods ns/db-0".into(),
                "update_status statefulsets ns/db".into(),
            ]
        );
        let p = k.fake.object(&pods(), "ns/db-0").unwrap();
        assert_eq!(p["metadata"]["labels"][POD_NAME_LABEL], "db-0");
        assert_eq!(p["metadata"]["labels"][POD_INDEX_LABEL], "0");
        assert_eq!(p["spec"]["hostname"], "db-0");
        assert_eq!(p["spec"]["subdomain"], "db");
        assert_eq!(
            p["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "data-db-0"
        );
        let pvc = k.fake.object(&pvcs(), "ns/data-db-0").unwrap();
        assert_eq!(pvc["metadata"]["labels"]["app"], "db");
        // db-1 waits for db-0 to be Running and Ready.
        k.run().await;
        assert_eq!(k.pods(), ["db-0"]);
        k.ready("db-0");
        k.run().await;
        assert_eq!(k.pods(), ["db-0", "db-1"]);
        let st = k.set()["status"].clone();
        assert_eq!(
            (st["replicas"].as_i64(), st["readyReplicas"].as_i64()),
            (Some(2), Some(1))
        );
        assert_eq!(st["currentRevision"], st["updateRevision"]);
    }

    #[tokio::test]
    async fn pod_and_claim_events_use_upstreams_words() {
        let tpl = json!([{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}}]);
        let mut k = Kit::new(json!({"volumeClaimTemplates": tpl, "replicas": 1}));
        let clock = FakeClock::new(T0.parse().unwrap());
        k.c.events = Some(EventRecorder::new(k.fake.clone(), NAME, clock));
        k.run().await;
        k.edit(|s| s["spec"]["replicas"] = json!(0));
        k.run().await;
        let n = |r: &str, m: &str| ("Normal".to_string(), r.to_string(), m.to_string());
        assert_eq!(
            k.fake.events().await,
            [
                n(
                    "SuccessfulCreate",
                    "create Claim data-db-0 Pod db-0 in StatefulSet db success"
                ),
                n(
                    "SuccessfulCreate",
                    "create Pod db-0 in StatefulSet db successful"
                ),
                n(
                    "SuccessfulDelete",
                    "delete Pod db-0 in StatefulSet db successful"
                ),
            ]
        );
        let e = &k.fake.objects(&ResourceRef::new("", "v1", "events"))[0];
        assert_eq!(e["involvedObject"]["kind"], "StatefulSet");
        assert_eq!(e["source"]["component"], "statefulset-controller");
    }

    #[tokio::test]
    async fn parallel_creates_all_and_scales_down_from_the_top() {
        let mut k = Kit::new(json!({"podManagementPolicy": "Parallel"}));
        k.run().await;
        assert_eq!(k.pods(), ["db-0", "db-1", "db-2"]);
        k.edit(|s| s["spec"]["replicas"] = json!(1));
        k.run().await;
        assert_eq!(k.pods(), ["db-0"]);
        let w = k.fake.writes();
        let dels: Vec<_> = w.iter().filter(|w| w.starts_with("delete")).collect();
        assert_eq!(dels, ["delete pods ns/db-2", "delete pods ns/db-1"]);
    }

    #[tokio::test]
    async fn ordered_scale_down_waits_and_whenscaled_delete_hands_claims_to_the_pod() {
        let tpl = json!([{"metadata": {"name": "data"}, "spec": {}}]);
        let mut k = Kit::new(json!({"replicas": 2, "volumeClaimTemplates": tpl,
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Delete"}}));
        k.run().await;
        k.ready("db-0");
        k.run().await;
        k.ready("db-1");
        k.edit(|s| s["spec"]["replicas"] = json!(0));
        k.run().await;
        assert_eq!(k.pods(), ["db-0"], "one at a time, highest first");
        let pvc = k.fake.object(&pvcs(), "ns/data-db-1").unwrap();
        assert_eq!(pvc["metadata"]["ownerReferences"][0]["kind"], "Pod");
        assert_eq!(pvc["metadata"]["ownerReferences"][0]["name"], "db-1");
        k.run().await;
        assert!(k.pods().is_empty());
    }

    #[tokio::test]
    async fn rolling_update_goes_top_down_to_the_partition_and_completes() {
        let mut k = Kit::new(json!({"podManagementPolicy": "Parallel"}));
        k.run().await;
        k.all_ready();
        k.run().await;
        let r1 = k.set()["status"]["updateRevision"]
            .as_str()
            .unwrap()
            .to_string();
        k.edit(|s| {
            s["spec"]["template"]["spec"]["containers"][0]["image"] = json!("pg:2");
            s["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(1);
        });
        k.run().await;
        let st = k.set()["status"].clone();
        let r2 = st["updateRevision"].as_str().unwrap().to_string();
        assert_ne!(r1, r2);
        assert_eq!(st["currentRevision"], r1.as_str());
        assert_eq!(k.pods(), ["db-0", "db-1"], "db-2 replaced first");
        k.run().await;
        let p2 = k.fake.object(&pods(), "ns/db-2").unwrap();
        assert_eq!(p2["metadata"]["labels"][REVISION_LABEL], r2.as_str());
        assert_eq!(p2["spec"]["containers"][0]["image"], "pg:2");
        k.ready("db-2");
        k.run().await;
        k.run().await;
        k.ready("db-1");
        k.run().await;
        // db-0 is below the partition and stays at the old revision.
        let p0 = k.fake.object(&pods(), "ns/db-0").unwrap();
        assert_eq!(p0["metadata"]["labels"][REVISION_LABEL], r1.as_str());
        let st = k.set()["status"].clone();
        assert_eq!(st["updatedReplicas"], 2);
        assert_eq!(st["currentRevision"], r1.as_str());
        // Partition 0: the last one goes and the update revision becomes current.
        k.edit(|s| s["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(0));
        k.run().await;
        k.run().await;
        k.ready("db-0");
        k.run().await;
        let st = k.set()["status"].clone();
        assert_eq!(st["currentRevision"], r2.as_str());
        assert_eq!(st["updatedReplicas"], 3);
        assert_eq!(st["currentReplicas"], 3);
        assert_eq!(k.fake.objects(&controller_revisions()).len(), 2);
    }

    #[tokio::test]
    async fn on_delete_leaves_pods_until_deleted_and_failed_pods_are_recreated() {
        let mut k = Kit::new(json!({"replicas": 1, "updateStrategy": {"type": "OnDelete"}}));
        k.run().await;
        k.ready("db-0");
        k.edit(|s| s["spec"]["template"]["spec"]["containers"][0]["image"] = json!("pg:2"));
        k.run().await;
        let p = k.fake.object(&pods(), "ns/db-0").unwrap();
        assert_eq!(
            p["spec"]["containers"][0]["image"], "pg:1",
            "OnDelete keeps it"
        );
        let mut p = p;
        p["status"]["phase"] = json!("Failed");
        k.fake.seed(&pods(), p);
        k.sync();
        k.run().await;
        assert!(k.pods().is_empty(), "failed pod deleted");
        k.run().await;
        let p = k.fake.object(&pods(), "ns/db-0").unwrap();
        assert_eq!(p["spec"]["containers"][0]["image"], "pg:2");
    }

    #[tokio::test]
    async fn when_deleted_delete_makes_the_set_an_owner_of_its_claims() {
        let tpl = json!([{"metadata": {"name": "data", "labels": {"tier": "db"}}, "spec": {}}]);
        let mut k = Kit::new(json!({"replicas": 1, "volumeClaimTemplates": tpl,
            "ordinals": {"start": 5},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"}}));
        k.run().await;
        assert_eq!(k.pods(), ["db-5"], "ordinals.start");
        let pvc = k.fake.object(&pvcs(), "ns/data-db-5").unwrap();
        let r = &pvc["metadata"]["ownerReferences"][0];
        assert_eq!(
            (r["kind"].as_str(), r["controller"].as_bool()),
            (Some("StatefulSet"), Some(false))
        );
        assert_eq!(pvc["metadata"]["labels"]["tier"], "db");
        assert_eq!(pvc["metadata"]["labels"]["app"], "db");
    }

    #[test]
    fn ordinals_and_max_unavailable() {
        let p = |n: &str| json!({"metadata": {"name": n}});
        assert_eq!(ordinal_of("db", &p("db-12")), Some(12));
        assert_eq!(ordinal_of("db", &p("db-x")), None);
        assert_eq!(ordinal_of("db", &p("dbx-1")), None);
        assert_eq!(ordinal_of("db", &p("db-")), None);
        let s = json!({"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": "50%"}}}});
        assert_eq!(max_unavailable(&s, 5), 2);
        assert_eq!(max_unavailable(&json!({}), 5), 1);
    }
}
