//! The DaemonSet controller (`pkg/controller/daemon`): one Pod per eligible node (see
//! [`crate::daemonset_eligibility`]), pinned by required node affinity on `metadata.name` so the
//! scheduler binds it (upstream since 1.12), with the daemon tolerations added. New nodes get a
//! Pod; Pods leave nodes that are gone, no longer match, or taint them out (NoExecute). Template
//! changes become ControllerRevisions (Pods carry the hash in `controller-revision-hash`);
//! `RollingUpdate` replaces Pods within `maxUnavailable`, or surges new ones first within
//! `maxSurge`; `OnDelete` waits for the user. Status carries the desired, current, ready,
//! available, updated and misscheduled counts `kubectl rollout status` reads.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, DeleteOptions, ResourceRef, WriteOptions};
use skiff_k8s_core::status::ApiError;

use crate::daemonset_eligibility::{self as elig, Verdict};
use crate::job_mutation_cache::MutationCache;
use crate::ownership::{self, claim, controller_key, is_deleting, new_controller_ref, str_at};
use crate::replicaset::{is_pod_available, is_pod_ready, pods};
use crate::runtime::Clock;
use crate::runtime::events::{EventRecorder, EventType, Recorder};
use crate::runtime::expectations::Expectations;
use crate::runtime::informer::{Cache, Change, key_of};
use crate::runtime::queue::WorkQueue;
use crate::runtime::reconcile::{Action, Error, Reconciler};
use crate::statefulset_history::{
    self as history, HASH_LABEL, REVISION_LABEL, controller_revisions,
};

pub const NAME: &str = "daemonset-controller";
/// The deprecated label upstream still sets with the DaemonSet's generation.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

pub fn daemonsets() -> ResourceRef {
    ResourceRef::new("apps", "v1", "daemonsets")
}

pub fn nodes() -> ResourceRef {
    ResourceRef::new("", "v1", "nodes")
}

fn wopts() -> WriteOptions {
    WriteOptions {
        field_manager: Some(NAME.into()),
        ..Default::default()
    }
}

/// An intOrString against `total`, percentages rounded up (`GetScaledValueFromIntOrPercent`
/// with roundUp, as the DaemonSet controller calls it).
fn scaled(v: Option<&Value>, total: i64, default: i64) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(default),
        Some(Value::String(s)) => s
            .strip_suffix('%')
            .and_then(|p| p.parse::<i64>().ok())
            .map_or(default, |p| (p * total + 99) / 100),
        _ => default,
    }
}

/// (maxSurge, maxUnavailable) in pods; both zero would stall, so unavailability becomes 1.
pub fn fenceposts(ds: &Value, desired: i64) -> (i64, i64) {
    let ru = ds.pointer("/spec/updateStrategy/rollingUpdate");
    let surge = scaled(ru.and_then(|r| r.get("maxSurge")), desired, 0);
    let unavailable = scaled(ru.and_then(|r| r.get("maxUnavailable")), desired, 1);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

fn created_at(p: &Value) -> String {
    str_at(p, "/metadata/creationTimestamp").to_string()
}

pub struct DaemonSetController {
    client: Arc<dyn ApiClient>,
    sets: Cache,
    pods: Cache,
    nodes: Cache,
    revisions: Cache,
    expectations: Arc<Expectations>,
    /// Per `<set>/<node>`: failed Pods in a row and when the last was deleted, so a Pod that
    /// keeps failing is recreated with growing delays (`failedPodsBackoff`, 1 s to 15 min).
    failed_backoff: Mutex<HashMap<String, (u32, jiff::Timestamp)>>,
    written: MutationCache,
    clock: Arc<dyn Clock>,
    /// Pod control's `SuccessfulCreate`/`SuccessfulDelete`, `FailedDaemonPod`; none in unit
    /// tests that assert writes.
    events: Option<Arc<EventRecorder>>,
}

const FAILED_BACKOFF_BASE: Duration = Duration::from_secs(1);
const FAILED_BACKOFF_MAX: Duration = Duration::from_secs(900);

/// What one sync decided: nodes to create a Pod on, Pods to delete.
#[derive(Default)]
struct Plan<'a> {
    create_on: Vec<String>,
    delete: Vec<&'a Value>,
    /// A node waits out its failed-Pod backoff: look again then.
    requeue: Option<Duration>,
}

impl DaemonSetController {
    pub fn new(
        client: Arc<dyn ApiClient>,
        sets: Cache,
        pods: Cache,
        nodes: Cache,
        revisions: Cache,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client,
            sets,
            pods,
            nodes,
            revisions,
            expectations: Arc::new(Expectations::new(clock.clone())),
            failed_backoff: Mutex::new(HashMap::new()),
            written: MutationCache::new(),
            clock,
            events: None,
        }
    }

    /// Records events as upstream's controller does.
    pub fn with_events(mut self, events: Arc<EventRecorder>) -> Self {
        self.events = Some(events);
        self
    }

    /// Time left before a Pod may be created again on `node` after failures.
    fn backoff_left(&self, id: &str, now: jiff::Timestamp) -> Option<Duration> {
        let map = self
            .failed_backoff
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let (n, at) = *map.get(id)?;
        let delay = FAILED_BACKOFF_BASE
            .saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(20)))
            .min(FAILED_BACKOFF_MAX);
        let until = at
            .checked_add(jiff::SignedDuration::try_from(delay).ok()?)
            .ok()?;
        let left = until.duration_since(now);
        (left > jiff::SignedDuration::ZERO).then(|| left.unsigned_abs())
    }

    pub fn on_set(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| queue.add(&key_of(c.object()))
    }

    /// Pods queue their DaemonSet (observing expectations); orphans queue sets that could adopt.
    pub fn on_pod(&self, queue: WorkQueue) -> impl Fn(&Change) + Send + Sync + use<> {
        let exp = self.expectations.clone();
        let sets = self.sets.clone();
        move |c| {
            let pod = c.object();
            let pod_key = key_of(pod);
            match controller_key(pod, "DaemonSet") {
                Some(owner) => {
                    match c {
                        Change::Added(p) if !is_deleting(p) => exp.creation_observed(&owner),
                        Change::Deleted(_) => exp.deletion_observed(&owner, &pod_key),
                        _ if is_deleting(pod) => exp.deletion_observed(&owner, &pod_key),
                        _ => {}
                    }
                    queue.add(&owner);
                }
                None if !matches!(c, Change::Deleted(_)) => {
                    for s in sets.list(Some(ownership::namespace(pod))) {
                        if ownership::selector_of(&s).is_ok_and(|sel| sel.matches_object(pod)) {
                            queue.add(&key_of(&s));
                        }
                    }
                }
                None => {}
            }
        }
    }

    /// A node added, removed, or changed in what placement reads (labels, taints, deletion)
    /// queues every DaemonSet; status heartbeats do not (`shouldIgnoreNodeUpdate`), or thousands
    /// of kubelets would keep every DaemonSet resyncing.
    pub fn on_node(&self, queue: WorkQueue) -> impl Fn(&Change) + Send + Sync + use<> {
        let sets = self.sets.clone();
        let seen: Mutex<HashMap<String, Value>> = Mutex::new(HashMap::new());
        move |c| {
            let n = c.object();
            let name = ownership::name(n).to_string();
            let print = json!([
                n.pointer("/metadata/labels"),
                n.pointer("/spec/taints"),
                n.pointer("/spec/unschedulable"),
                n.pointer("/metadata/deletionTimestamp")
            ]);
            {
                let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                if let Change::Deleted(_) = c {
                    seen.remove(&name);
                } else if seen.insert(name, print.clone()).as_ref() == Some(&print) {
                    return;
                }
            }
            for s in sets.list(None) {
                queue.add(&key_of(&s));
            }
        }
    }

    pub fn on_revision(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| {
            if let Some(k) = controller_key(c.object(), "DaemonSet") {
                queue.add(&k);
            }
        }
    }

    fn new_pod(ds: &Value, node: &str, hash: &str) -> Value {
        let tmpl = &ds["spec"]["template"];
        let mut labels = tmpl
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or(json!({}));
        labels[REVISION_LABEL] = json!(hash);
        labels[TEMPLATE_GENERATION_LABEL] = json!(
            ds["metadata"]["generation"]
                .as_i64()
                .unwrap_or(1)
                .to_string()
        );
        let mut spec = tmpl.get("spec").cloned().unwrap_or(json!({}));
        spec["tolerations"] = Value::Array(elig::with_daemon_tolerations(&spec));
        elig::pin_to_node(&mut spec, node);
        let mut meta = json!({
            "generateName": format!("{}-", ownership::name(ds)),
            "namespace": ownership::namespace(ds),
            "labels": labels,
            "ownerReferences": [new_controller_ref(ds, "apps/v1", "DaemonSet")],
        });
        if let Some(a) = tmpl.pointer("/metadata/annotations") {
            meta["annotations"] = a.clone();
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
    }

    /// `manage` + `rollingUpdate`: which nodes need a Pod and which Pods must go.
    fn plan<'a>(
        &self,
        key: &str,
        ds: &Value,
        verdicts: &BTreeMap<String, Verdict>,
        by_node: &BTreeMap<String, Vec<&'a Value>>,
        hash: &str,
    ) -> Plan<'a> {
        let min_ready = ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        let now = self.clock.now();
        let available = |p: &Value| is_pod_available(p, min_ready, now);
        let desired = verdicts.values().filter(|v| v.should_run).count() as i64;
        let (max_surge, max_unavailable) = fenceposts(ds, desired);
        let rolling = str_at(ds, "/spec/updateStrategy/type") != "OnDelete";
        let mut plan = Plan::default();

        // Pods pinned to nodes that no longer exist.
        for (node, ps) in by_node {
            if !verdicts.contains_key(node) {
                plan.delete.extend(ps.iter().filter(|p| !is_deleting(p)));
            }
        }
        for (node, v) in verdicts {
            let ps: &[&Value] = by_node.get(node).map_or(&[], Vec::as_slice);
            let id = format!("{key}/{node}");
            if v.should_run && ps.is_empty() {
                match self.backoff_left(&id, now) {
                    Some(left) => {
                        plan.requeue = Some(plan.requeue.map_or(left, |r| r.min(left)));
                    }
                    None => plan.create_on.push(node.clone()),
                }
            } else if v.should_continue {
                let mut running: Vec<&Value> = Vec::new();
                for p in ps.iter().filter(|p| !is_deleting(p)) {
                    if str_at(p, "/status/phase") == "Failed" {
                        self.events.event(
                            ds,
                            EventType::Warning,
                            "FailedDaemonPod",
                            &format!(
                                "Found failed daemon pod {}/{} on node {node}, will try to kill it",
                                ownership::namespace(p),
                                ownership::name(p)
                            ),
                        );
                        // Replaced once the deletion is seen and the node's backoff has passed.
                        let mut map = self
                            .failed_backoff
                            .lock()
                            .unwrap_or_else(|e| e.into_inner());
                        let e = map.entry(id.clone()).or_insert((0, now));
                        *e = (e.0.saturating_add(1), now);
                        plan.delete.push(p);
                    } else {
                        if is_pod_ready(p) {
                            self.failed_backoff
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .remove(&id);
                        }
                        running.push(p);
                    }
                }
                running.sort_by_key(|p| created_at(p));
                if max_surge == 0 || !rolling {
                    plan.delete.extend(running.iter().skip(1));
                } else {
                    // During a surge a node may hold one old and one new Pod.
                    let (new, old): (Vec<&Value>, Vec<&Value>) = running
                        .iter()
                        .partition(|p| history::pod_revision_label(p) == hash);
                    plan.delete.extend(new.iter().skip(1));
                    plan.delete.extend(old.iter().skip(1));
                }
            } else {
                plan.delete.extend(ps.iter().filter(|p| !is_deleting(p)));
            }
        }
        if !rolling {
            return plan;
        }
        // rollingUpdate over nodes holding exactly one old and/or one new live Pod.
        let mut num_unavailable = 0;
        let mut num_surge = 0;
        let mut allowed: Vec<&Value> = Vec::new();
        let mut candidates: Vec<&Value> = Vec::new();
        let mut allowed_nodes: Vec<String> = Vec::new();
        let mut candidate_nodes: Vec<String> = Vec::new();
        for (node, v) in verdicts {
            if !v.should_continue {
                continue;
            }
            let live: Vec<&Value> = by_node
                .get(node)
                .map(|ps| {
                    ps.iter()
                        .filter(|p| !is_deleting(p) && str_at(p, "/status/phase") != "Failed")
                        .copied()
                        .collect()
                })
                .unwrap_or_default();
            let (new, old): (Vec<&Value>, Vec<&Value>) = live
                .iter()
                .partition(|p| history::pod_revision_label(p) == hash);
            if new.len() > 1 || old.len() > 1 {
                continue;
            }
            let (new, old) = (new.first().copied(), old.first().copied());
            if max_surge == 0 {
                match (old, new) {
                    (None, None) | (Some(_), Some(_)) => num_unavailable += 1,
                    (None, Some(n)) => {
                        if !available(n) {
                            num_unavailable += 1;
                        }
                    }
                    (Some(o), None) => {
                        if !available(o) {
                            allowed.push(o);
                        } else if num_unavailable < max_unavailable {
                            candidates.push(o);
                        }
                    }
                }
            } else {
                match (old, new) {
                    (None, _) => {}
                    (Some(o), None) => {
                        if !available(o) {
                            allowed_nodes.push(node.clone());
                        } else if num_surge < max_surge {
                            candidate_nodes.push(node.clone());
                        }
                    }
                    (Some(o), Some(n)) => {
                        if available(n) {
                            allowed.push(o);
                        } else {
                            num_surge += 1;
                        }
                    }
                }
            }
        }
        if max_surge == 0 {
            let room = (max_unavailable - num_unavailable).clamp(0, candidates.len() as i64);
            allowed.extend(candidates.into_iter().take(room as usize));
        } else {
            let room = (max_surge - num_surge).clamp(0, candidate_nodes.len() as i64);
            allowed_nodes.extend(candidate_nodes.into_iter().take(room as usize));
            plan.create_on.extend(allowed_nodes);
        }
        for p in allowed {
            if !plan
                .delete
                .iter()
                .any(|d| ownership::uid(d) == ownership::uid(p))
            {
                plan.delete.push(p);
            }
        }
        plan
    }

    /// Creates (slow start: 1, 2, 4, …) then deletes, under expectations (`syncNodes`).
    async fn execute(
        &self,
        key: &str,
        ds: &Value,
        hash: &str,
        plan: Plan<'_>,
    ) -> Result<(), ApiError> {
        if plan.create_on.is_empty() && plan.delete.is_empty() {
            return Ok(());
        }
        let r = pods().in_namespace(ownership::namespace(ds));
        self.expectations.expect(
            key,
            plan.create_on.len() as i64,
            plan.delete.iter().map(|p| key_of(p)).collect(),
        );
        let mut first_err = None;
        let (mut done, mut batch) = (0, 1);
        let total = plan.create_on.len();
        while done < total && first_err.is_none() {
            let size = batch.min(total - done);
            for node in &plan.create_on[done..done + size] {
                match self
                    .client
                    .create(&r, Self::new_pod(ds, node, hash), &wopts())
                    .await
                {
                    Ok(p) => self.events.event(
                        ds,
                        EventType::Normal,
                        "SuccessfulCreate",
                        &format!("Created pod: {}", ownership::name(&p)),
                    ),
                    Err(e) => {
                        self.events.event(
                            ds,
                            EventType::Warning,
                            "FailedCreate",
                            &format!("Error creating: {}", e.message()),
                        );
                        self.expectations.creation_observed(key);
                        first_err.get_or_insert(e);
                    }
                }
            }
            done += size;
            batch *= 2;
        }
        for _ in done..total {
            self.expectations.creation_observed(key);
        }
        for p in &plan.delete {
            let opts = DeleteOptions {
                precondition_uid: Some(ownership::uid(p).to_string()),
                ..Default::default()
            };
            match self.client.delete(&r, ownership::name(p), &opts).await {
                Ok(_) => self.events.event(
                    ds,
                    EventType::Normal,
                    "SuccessfulDelete",
                    &format!("Deleted pod: {}", ownership::name(p)),
                ),
                Err(e) => {
                    self.expectations.deletion_observed(key, &key_of(p));
                    if !matches!(e, ApiError::NotFound { .. }) {
                        self.events.event(
                            ds,
                            EventType::Warning,
                            "FailedDelete",
                            &format!("Error deleting: {}", e.message()),
                        );
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// `updateDaemonSetStatus`: counts over the oldest live Pod of each node.
    fn status(
        &self,
        ds: &Value,
        verdicts: &BTreeMap<String, Verdict>,
        by_node: &BTreeMap<String, Vec<&Value>>,
        hash: &str,
    ) -> Value {
        let min_ready = ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        let now = self.clock.now();
        let (mut desired, mut current, mut ready, mut avail, mut updated, mut mis) =
            (0, 0, 0, 0, 0, 0);
        for (node, v) in verdicts {
            let mut ps: Vec<&Value> = by_node
                .get(node)
                .map(|ps| {
                    ps.iter()
                        .filter(|p| {
                            !(is_deleting(p)
                                && matches!(str_at(p, "/status/phase"), "Succeeded" | "Failed"))
                        })
                        .copied()
                        .collect()
                })
                .unwrap_or_default();
            ps.sort_by_key(|p| created_at(p));
            if v.should_run {
                desired += 1;
                let Some(p) = ps.first() else { continue };
                current += 1;
                if is_pod_ready(p) {
                    ready += 1;
                    if is_pod_available(p, min_ready, now) {
                        avail += 1;
                    }
                }
                if history::pod_revision_label(p) == hash {
                    updated += 1;
                }
            } else if !ps.is_empty() {
                mis += 1;
            }
        }
        let mut st = ds.get("status").cloned().unwrap_or(json!({}));
        if !st.is_object() {
            st = json!({});
        }
        st["observedGeneration"] = ds["metadata"]["generation"].clone();
        st["desiredNumberScheduled"] = json!(desired);
        st["currentNumberScheduled"] = json!(current);
        st["numberReady"] = json!(ready);
        st["numberAvailable"] = json!(avail);
        st["updatedNumberScheduled"] = json!(updated);
        st["numberMisscheduled"] = json!(mis);
        let m = st.as_object_mut().expect("object above");
        if desired - avail > 0 {
            m.insert("numberUnavailable".into(), json!(desired - avail));
        } else {
            m.remove("numberUnavailable");
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
    let events_client = client.clone();
    let c = DaemonSetController::new(
        client,
        inf.cache(daemonsets()),
        inf.cache(pods()),
        inf.cache(nodes()),
        inf.cache(controller_revisions()),
        clock.clone(),
    )
    .with_events(EventRecorder::new(events_client, NAME, clock));
    inf.get(daemonsets())
        .add_handler(Arc::new(DaemonSetController::on_set(q.clone())));
    inf.get(pods()).add_handler(Arc::new(c.on_pod(q.clone())));
    inf.get(nodes()).add_handler(Arc::new(c.on_node(q.clone())));
    inf.get(controller_revisions())
        .add_handler(Arc::new(DaemonSetController::on_revision(q)));
    Arc::new(c)
}

#[async_trait::async_trait]
impl Reconciler for DaemonSetController {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &str) -> Result<Action, Error> {
        let Some(ds) = self.written.newest(key, self.sets.get(key)) else {
            self.expectations.forget(key);
            return Ok(Action::AwaitChange);
        };
        if is_deleting(&ds) {
            return Ok(Action::AwaitChange);
        }
        let ns = ownership::namespace(&ds).to_string();
        let selector = ownership::selector_of(&ds).map_err(Error::Invalid)?;
        let ds_ref = new_controller_ref(&ds, "apps/v1", "DaemonSet");
        let owned = claim(
            self.client.as_ref(),
            &pods().in_namespace(&ns),
            &ds,
            ds_ref.clone(),
            &selector,
            self.pods.list(Some(&ns)),
            NAME,
        )
        .await?;
        let revs = claim(
            self.client.as_ref(),
            &controller_revisions().in_namespace(&ns),
            &ds,
            ds_ref,
            &selector,
            self.revisions.list(Some(&ns)),
            NAME,
        )
        .await?;
        let revs = history::owned(&ds, revs);
        let update = match history::update_revision(
            self.client.as_ref(),
            &ds,
            "apps/v1",
            "DaemonSet",
            &revs,
            NAME,
        )
        .await
        {
            Ok(r) => r,
            Err(e) if history::is_collision(&e) => {
                let mut nds = ds.clone();
                let n = ds
                    .pointer("/status/collisionCount")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                nds["status"]["collisionCount"] = json!(n + 1);
                self.client
                    .update_status(&daemonsets().in_namespace(&ns), nds, &wopts())
                    .await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let hash = str_at(
            &update,
            &format!("/metadata/labels/{}", HASH_LABEL.replace('/', "~1")),
        )
        .to_string();

        let tmpl_spec = ds
            .pointer("/spec/template/spec")
            .cloned()
            .unwrap_or(json!({}));
        let verdicts: BTreeMap<String, Verdict> = self
            .nodes
            .list(None)
            .iter()
            .filter(|n| !is_deleting(n))
            .map(|n| {
                (
                    ownership::name(n).to_string(),
                    elig::evaluate(&tmpl_spec, n),
                )
            })
            .collect();
        let mut by_node: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        for p in &owned {
            if let Some(n) = elig::target_node(p) {
                by_node.entry(n).or_default().push(p);
            }
        }
        let mut sync_err = None;
        let mut requeue = None;
        if self.expectations.satisfied(key) {
            let plan = self.plan(key, &ds, &verdicts, &by_node, &hash);
            requeue = plan.requeue;
            sync_err = self.execute(key, &ds, &hash, plan).await.err();
        }
        let status = self.status(&ds, &verdicts, &by_node, &hash);
        if ds.get("status") != Some(&status) {
            let mut nds = ds.clone();
            nds["status"] = status.clone();
            let w = self
                .client
                .update_status(&daemonsets().in_namespace(&ns), nds, &wopts())
                .await?;
            self.written.wrote(key, &w);
        }
        let in_use: Vec<&str> = owned.iter().map(history::pod_revision_label).collect();
        let mut keep = vec![ownership::name(&update)];
        keep.extend(
            revs.iter()
                .filter(|r| {
                    in_use.contains(&str_at(
                        r,
                        &format!("/metadata/labels/{}", HASH_LABEL.replace('/', "~1")),
                    ))
                })
                .map(ownership::name),
        );
        let mut all = revs.clone();
        if !all
            .iter()
            .any(|r| ownership::uid(r) == ownership::uid(&update))
        {
            all.push(update.clone());
        }
        let limit = ds["spec"]["revisionHistoryLimit"].as_i64().unwrap_or(10);
        history::truncate(self.client.as_ref(), &all, &keep, limit).await?;
        if let Some(e) = sync_err {
            return Err(e.into());
        }
        let min_ready = ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        if min_ready > 0 && status["numberReady"] != status["numberAvailable"] {
            let d = Duration::from_secs(min_ready as u64);
            requeue = Some(requeue.map_or(d, |r| r.min(d)));
        }
        Ok(requeue.map_or(Action::AwaitChange, Action::Requeue))
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
        c: DaemonSetController,
        tick: u32,
    }

    impl Kit {
        fn new(spec: Value, node_names: &[&str]) -> Self {
            let fake = Arc::new(FakeClient::default());
            let mut ds = json!({
                "apiVersion": "apps/v1", "kind": "DaemonSet",
                "metadata": {"name": "agent", "namespace": "kube-system", "uid": "ds-uid", "generation": 1},
                "spec": {
                    "revisionHistoryLimit": 10,
                    "updateStrategy": {"type": "RollingUpdate",
                                       "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                    "selector": {"matchLabels": {"app": "agent"}},
                    "template": {"metadata": {"labels": {"app": "agent"}},
                                 "spec": {"containers": [{"name": "c", "image": "agent:1"}]}},
                },
            });
            for (k, v) in spec.as_object().unwrap() {
                ds["spec"][k] = v.clone();
            }
            fake.seed(&daemonsets(), ds);
            for n in node_names {
                fake.seed(&nodes(), json!({"metadata": {"name": n, "labels": {}}}));
            }
            let c = DaemonSetController::new(
                fake.clone(),
                Cache::default(),
                Cache::default(),
                Cache::default(),
                Cache::default(),
                FakeClock::new(T0.parse().unwrap()),
            );
            let mut k = Kit { fake, c, tick: 0 };
            k.sync();
            k
        }
        fn sync(&mut self) {
            let q = WorkQueue::new();
            let handler = self.c.on_pod(q);
            let fill = |r: &ResourceRef| {
                let c = Cache::default();
                for o in self.fake.objects(r) {
                    c.insert(o);
                }
                c
            };
            let old = std::mem::take(&mut self.c.pods);
            let fresh = fill(&pods());
            for p in fresh.list(None) {
                handler(&Change::Added(p));
            }
            for p in old.list(None) {
                if fresh.get(&key_of(&p)).is_none() {
                    handler(&Change::Deleted(p));
                }
            }
            self.c.pods = fresh;
            self.c.sets = fill(&daemonsets());
            self.c.nodes = fill(&nodes());
            self.c.revisions = fill(&controller_revisions());
        }
        async fn run(&mut self) {
            self.c.reconcile("kube-system/agent").await.unwrap();
            // Creation times order the Pods, as the API server's clock would.
            for mut p in self.fake.objects(&pods()) {
                if p["metadata"].get("creationTimestamp").is_none() {
                    self.tick += 1;
                    p["metadata"]["creationTimestamp"] =
                        json!(format!("2026-01-01T00:00:{:02}Z", self.tick));
                    self.fake.seed(&pods(), p);
                }
            }
            self.sync();
        }
        fn placement(&self) -> Vec<(String, String)> {
            let mut v: Vec<_> = self
                .fake
                .objects(&pods())
                .iter()
                .map(|p| {
                    (
                        elig::target_node(p).unwrap_or_default(),
                        p["spec"]["containers"][0]["image"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect();
            v.sort();
            v
        }
        fn ready_all(&mut self) {
            for mut p in self.fake.objects(&pods()) {
                let node = elig::target_node(&p).unwrap();
                p["spec"]["nodeName"] = json!(node);
                p["status"] = json!({"phase": "Running", "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": T0}]});
                self.fake.seed(&pods(), p);
            }
            self.sync();
        }
        fn ds(&self) -> Value {
            self.fake
                .object(&daemonsets(), "kube-system/agent")
                .unwrap()
        }
        fn edit(&mut self, f: impl FnOnce(&mut Value)) {
            let mut s = self.ds();
            f(&mut s);
            s["metadata"]["generation"] = json!(s["metadata"]["generation"].as_i64().unwrap() + 1);
            self.fake.seed(&daemonsets(), s);
            self.sync();
        }
    }

    fn a(n: &str, img: &str) -> (String, String) {
        (n.to_string(), img.to_string())
    }

    #[tokio::test]
    async fn a_pinned_pod_per_node_with_daemon_tolerations() {
        let mut k = Kit::new(json!({}), &["n1", "n2"]);
        k.run().await;
        assert_eq!(k.placement(), [a("n1", "agent:1"), a("n2", "agent:1")]);
        let p = &k.fake.objects(&pods())[0];
        assert!(str_at(p, "/metadata/name").starts_with("agent-"));
        assert_eq!(str_at(p, "/spec/nodeName"), "", "the scheduler binds it");
        let tol: Vec<&str> = p["spec"]["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["key"].as_str().unwrap())
            .collect();
        assert!(tol.contains(&"node.kubernetes.io/unschedulable"), "{tol:?}");
        assert!(
            !p["metadata"]["labels"][REVISION_LABEL]
                .as_str()
                .unwrap()
                .is_empty()
        );
        // Status counts what the cache shows, as upstream's lister-based status does.
        assert_eq!(k.ds()["status"]["currentNumberScheduled"], 0);
        k.run().await;
        let st = k.ds()["status"].clone();
        assert_eq!(st["desiredNumberScheduled"], 2);
        assert_eq!(st["currentNumberScheduled"], 2);
        assert_eq!(st["numberUnavailable"], 2);
        k.ready_all();
        k.run().await;
        let st = k.ds()["status"].clone();
        assert_eq!(
            (st["numberReady"].as_i64(), st["numberAvailable"].as_i64()),
            (Some(2), Some(2))
        );
        assert_eq!(st["updatedNumberScheduled"], 2);
        assert!(st.get("numberUnavailable").is_none());
    }

    #[tokio::test]
    async fn nodes_come_and_go_and_taints_evict() {
        let mut k = Kit::new(
            json!({"template": {"metadata": {"labels": {"app": "agent"}},
            "spec": {"nodeSelector": {"role": "edge"}, "containers": [{"name": "c", "image": "agent:1"}]}}}),
            &[],
        );
        for n in ["e1", "e2"] {
            k.fake.seed(
                &nodes(),
                json!({"metadata": {"name": n, "labels": {"role": "edge"}}}),
            );
        }
        k.fake.seed(
            &nodes(),
            json!({"metadata": {"name": "core", "labels": {"role": "core"}}}),
        );
        k.sync();
        k.run().await;
        assert_eq!(k.placement(), [a("e1", "agent:1"), a("e2", "agent:1")]);
        // e1 gets a NoExecute taint; e2 leaves.
        k.fake.seed(
            &nodes(),
            json!({"metadata": {"name": "e1", "labels": {"role": "edge"}},
            "spec": {"taints": [{"key": "maintenance", "effect": "NoExecute"}]}}),
        );
        k.fake
            .delete(&nodes(), "e2", &DeleteOptions::default())
            .await
            .unwrap();
        k.sync();
        k.run().await;
        assert!(k.placement().is_empty());
        let st = k.ds()["status"].clone();
        assert_eq!(st["desiredNumberScheduled"], 0);
        // A NoSchedule taint keeps a running pod but counts it misscheduled... for new pods only.
        k.fake.seed(
            &nodes(),
            json!({"metadata": {"name": "e1", "labels": {"role": "edge"}}}),
        );
        k.sync();
        k.run().await;
        assert_eq!(k.placement(), [a("e1", "agent:1")]);
        k.fake.seed(
            &nodes(),
            json!({"metadata": {"name": "e1", "labels": {"role": "core"}}}),
        );
        k.sync();
        k.run().await;
        assert!(k.placement().is_empty(), "no longer matches the selector");
    }

    #[tokio::test]
    async fn rolling_update_within_max_unavailable() {
        let mut k = Kit::new(json!({}), &["n1", "n2", "n3"]);
        k.run().await;
        k.ready_all();
        k.run().await;
        k.edit(|d| d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("agent:2"));
        k.run().await;
        assert_eq!(k.placement().len(), 2, "one old pod deleted");
        k.run().await;
        let imgs: Vec<String> = k.placement().into_iter().map(|(_, i)| i).collect();
        assert_eq!(imgs.iter().filter(|i| *i == "agent:2").count(), 1);
        // The new pod is not available yet: nothing more goes.
        k.run().await;
        assert_eq!(k.placement().len(), 3);
        for _ in 0..3 {
            k.ready_all();
            k.run().await;
            k.run().await;
        }
        assert_eq!(
            k.placement(),
            [a("n1", "agent:2"), a("n2", "agent:2"), a("n3", "agent:2")]
        );
        k.ready_all();
        k.run().await;
        let st = k.ds()["status"].clone();
        assert_eq!(st["updatedNumberScheduled"], 3);
        assert_eq!(st["numberAvailable"], 3);
        assert_eq!(k.fake.objects(&controller_revisions()).len(), 2);
    }

    #[tokio::test]
    async fn surge_creates_the_new_pod_before_deleting_the_old() {
        let mut k = Kit::new(
            json!({"updateStrategy": {"type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}}),
            &["n1", "n2"],
        );
        k.run().await;
        k.ready_all();
        k.run().await;
        k.edit(|d| d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("agent:2"));
        k.run().await;
        assert_eq!(
            k.placement(),
            [a("n1", "agent:1"), a("n1", "agent:2"), a("n2", "agent:1")]
        );
        // n1's new pod is available: its old one retires and the surge moves on to n2.
        k.ready_all();
        k.run().await;
        assert_eq!(
            k.placement(),
            [a("n1", "agent:2"), a("n2", "agent:1"), a("n2", "agent:2")]
        );
        k.ready_all();
        k.run().await;
        assert_eq!(k.placement(), [a("n1", "agent:2"), a("n2", "agent:2")]);
    }

    #[tokio::test]
    async fn on_delete_keeps_old_pods() {
        let mut k = Kit::new(json!({"updateStrategy": {"type": "OnDelete"}}), &["n1"]);
        k.run().await;
        k.ready_all();
        k.edit(|d| d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("agent:2"));
        k.run().await;
        assert_eq!(k.placement(), [a("n1", "agent:1")]);
        assert_eq!(k.ds()["status"]["updatedNumberScheduled"], 0);
        let p = &k.fake.objects(&pods())[0];
        k.fake
            .delete(
                &pods().in_namespace("kube-system"),
                ownership::name(p),
                &DeleteOptions::default(),
            )
            .await
            .unwrap();
        k.sync();
        k.run().await;
        assert_eq!(k.placement(), [a("n1", "agent:2")]);
    }

    #[tokio::test]
    async fn pod_events_and_failed_daemon_pods_use_upstreams_words() {
        let mut k = Kit::new(json!({}), &["n1"]);
        let clock = FakeClock::new(T0.parse().unwrap());
        k.c.events = Some(EventRecorder::new(k.fake.clone(), NAME, clock));
        k.run().await;
        let mut p = k.fake.objects(&pods())[0].clone();
        let name = ownership::name(&p).to_string();
        p["status"]["phase"] = json!("Failed");
        k.fake.seed(&pods(), p);
        k.sync();
        k.run().await;
        let n = |t: &str, r: &str, m: String| (t.to_string(), r.to_string(), m);
        assert_eq!(
            k.fake.events().await,
            [
                n("Normal", "SuccessfulCreate", format!("Created pod: {name}")),
                n(
                    "Warning",
                    "FailedDaemonPod",
                    format!(
                        "Found failed daemon pod kube-system/{name} on node n1, will try to kill it"
                    )
                ),
                n("Normal", "SuccessfulDelete", format!("Deleted pod: {name}")),
            ]
        );
    }

    #[tokio::test]
    async fn failed_pods_are_replaced_after_a_growing_backoff() {
        let mut k = Kit::new(json!({}), &["n1"]);
        let clock = FakeClock::new(T0.parse().unwrap());
        k.c.clock = clock.clone();
        k.run().await;
        for (round, wait) in [(1, 1), (2, 2), (3, 4)] {
            let mut p = k.fake.objects(&pods())[0].clone();
            p["status"]["phase"] = json!("Failed");
            k.fake.seed(&pods(), p);
            k.sync();
            k.run().await;
            assert!(
                k.placement().is_empty(),
                "round {round}: failed pod deleted"
            );
            let a = k.c.reconcile("kube-system/agent").await.unwrap();
            k.sync();
            assert_eq!(
                a,
                Action::Requeue(Duration::from_secs(wait)),
                "round {round}"
            );
            assert!(k.placement().is_empty(), "round {round}: waits");
            clock.advance(Duration::from_secs(wait));
            k.run().await;
            assert_eq!(k.placement().len(), 1, "round {round}: replaced");
        }
    }

    #[test]
    fn node_heartbeats_do_not_queue_daemonsets() {
        let k = Kit::new(json!({}), &[]);
        k.c.sets
            .insert(json!({"metadata": {"name": "agent", "namespace": "kube-system"}}));
        let q = WorkQueue::new();
        let h = k.c.on_node(q.clone());
        let node = |hb: &str, label: &str| {
            json!({"metadata": {"name": "n1", "labels": {"l": label}},
            "status": {"conditions": [{"type": "Ready", "lastHeartbeatTime": hb}]}})
        };
        h(&Change::Added(node("t1", "a")));
        assert_eq!(q.len(), 1);
        let _ = futures::executor::block_on(q.get());
        q.done("kube-system/agent");
        h(&Change::Modified(node("t2", "a")));
        assert!(q.is_empty(), "heartbeat only");
        h(&Change::Modified(node("t3", "b")));
        assert_eq!(q.len(), 1, "labels changed");
    }

    #[test]
    fn fenceposts_round_up() {
        let d = json!({"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": "10%", "maxSurge": 0}}}});
        assert_eq!(fenceposts(&d, 15), (0, 2));
        let d = json!({"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}}});
        assert_eq!(fenceposts(&d, 15), (0, 1));
    }
}
