//! The Job controller (`pkg/controller/job`) and the TTL-after-finished step
//! (`pkg/controller/ttlafterfinished`): runs Pods until `completions` succeed (NonIndexed) or every
//! index in `0..completions` has a succeeded Pod (Indexed), at most `parallelism` at a time;
//! retries failures with exponential backoff until `backoffLimit`; honours
//! `activeDeadlineSeconds`, `podFailurePolicy` and `suspend`; deletes finished Jobs after
//! `ttlSecondsAfterFinished`.
//!
//! Pods are counted exactly once through the `batch.kubernetes.io/job-tracking` finalizer, as
//! upstream: a finished Pod's UID first goes to `status.uncountedTerminatedPods`, then its
//! finalizer is removed, then it moves into `succeeded`/`failed`. A crash between any two steps
//! neither loses nor doubles a count. Terminal conditions come in two steps as in 1.31+:
//! `FailureTarget`/`SuccessCriteriaMet` first, `Failed`/`Complete` once no Pod is left running.
//!
//! Indexed Jobs' `backoffLimitPerIndex`/`maxFailedIndexes` and `successPolicy` are in
//! `job_per_index.rs`. Events as upstream: `SuccessfulCreate`/`SuccessfulDelete` per Pod,
//! `Completed`, the failure reason (`BackoffLimitExceeded`, `DeadlineExceeded`, …), `Suspended`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use skiff_k8s_core::client::{
    ApiClient, DeleteOptions, PatchOptions, PropagationPolicy, ResourceRef, WriteOptions,
};
use skiff_k8s_core::patch::PatchType;
use skiff_k8s_core::status::ApiError;

use crate::job_indexes::{self, COMPLETION_INDEX};
use crate::job_mutation_cache::MutationCache;
use crate::job_per_index::{self as per_index, INDEX_FAILURE_COUNT, INDEX_IGNORED_FAILURE_COUNT};
use crate::job_pod_failure_policy::{self as pfp, PolicyAction};
use crate::ownership::{self, claim, controller_key, is_deleting, new_controller_ref, str_at};
use crate::replicaset::{is_pod_ready, pods};
use crate::runtime::events::{EventRecorder, EventType, Recorder};
use crate::runtime::expectations::Expectations;
use crate::runtime::informer::{Cache, Change, key_of};
use crate::runtime::queue::WorkQueue;
use crate::runtime::reconcile::{Action, Error, Reconciler};
use crate::runtime::{Clock, parse_time, rfc3339};

pub const NAME: &str = "job-controller";

/// The finalizer that keeps a finished Pod around until the Job has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";

/// First retry delay after a failed Pod, doubling per failure since the last success, capped
/// (`DefaultJobPodFailureBackOff`, `MaxJobPodFailureBackOff`).
const BACKOFF_BASE: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(600);

/// At most this many pods are created or deleted per sync (upstream `burstReplicas`).
const BURST: usize = 500;

pub fn jobs() -> ResourceRef {
    ResourceRef::new("batch", "v1", "jobs")
}

fn wopts() -> WriteOptions {
    WriteOptions {
        field_manager: Some(NAME.into()),
        ..Default::default()
    }
}

fn has_finalizer(p: &Value) -> bool {
    p.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|v| v.as_str() == Some(TRACKING_FINALIZER)))
}

fn pod_succeeded(p: &Value) -> bool {
    str_at(p, "/status/phase") == "Succeeded"
}

/// Failed, or being deleted before it succeeded (`isPodFailed`: orphaned and evicted Pods may
/// never reach the Failed phase), unless `podReplacementPolicy: Failed` asks to wait for the
/// phase.
fn pod_failed(p: &Value, only_failed: bool) -> bool {
    let phase = str_at(p, "/status/phase");
    phase == "Failed" || (!only_failed && is_deleting(p) && phase != "Succeeded")
}

/// The value of `spec.managedBy` that means this controller (1.30+); any other leaves the Job
/// to an external controller.
pub const MANAGED_BY_SELF: &str = "kubernetes.io/job-controller";

/// The True condition of `ty`, if any.
pub fn condition<'a>(job: &'a Value, ty: &str) -> Option<&'a Value> {
    job.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| str_at(c, "/type") == ty && str_at(c, "/status") == "True")
}

/// Complete or Failed: nothing more to run.
pub fn is_finished(job: &Value) -> bool {
    condition(job, "Complete").is_some() || condition(job, "Failed").is_some()
}

/// Sets a Job condition (`batch.JobCondition`, with lastProbeTime); returns whether it changed.
fn set_condition(status: &mut Value, ty: &str, st: &str, reason: &str, msg: &str, now: &str) {
    let mut conds: Vec<Value> = status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(c) = conds.iter_mut().find(|c| str_at(c, "/type") == ty) {
        if str_at(c, "/status") == st && str_at(c, "/reason") == reason {
            return;
        }
        if str_at(c, "/status") != st {
            c["lastTransitionTime"] = json!(now);
        }
        c["status"] = json!(st);
        c["reason"] = json!(reason);
        c["message"] = json!(msg);
        c["lastProbeTime"] = json!(now);
    } else {
        conds.push(json!({
            "type": ty, "status": st, "lastProbeTime": now, "lastTransitionTime": now,
            "reason": reason, "message": msg,
        }));
    }
    status["conditions"] = Value::Array(conds);
}

fn i64_at(v: &Value, ptr: &str) -> Option<i64> {
    v.pointer(ptr).and_then(Value::as_i64)
}

fn uid_list(status: &Value, which: &str) -> Vec<String> {
    status
        .pointer(&format!("/uncountedTerminatedPods/{which}"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Delete order for surplus active Pods: unscheduled, then not ready, then newest first.
fn surplus_order(a: &&Value, b: &&Value) -> std::cmp::Ordering {
    let scheduled = |p: &Value| !str_at(p, "/spec/nodeName").is_empty();
    scheduled(a)
        .cmp(&scheduled(b))
        .then(is_pod_ready(a).cmp(&is_pod_ready(b)))
        .then_with(|| {
            str_at(b, "/metadata/creationTimestamp").cmp(str_at(a, "/metadata/creationTimestamp"))
        })
}

/// Failures since the last success and when the last one was counted (upstream's
/// `backoffRecord`, kept in memory as upstream does).
#[derive(Clone, Copy, Debug, Default)]
struct BackoffRecord {
    failures: u32,
    last: Option<jiff::Timestamp>,
}

impl BackoffRecord {
    /// Time left before a replacement Pod may be created.
    fn remaining(&self, now: jiff::Timestamp) -> Option<Duration> {
        let last = self.last?;
        if self.failures == 0 {
            return None;
        }
        let delay = BACKOFF_BASE
            .saturating_mul(2u32.saturating_pow(self.failures.saturating_sub(1).min(20)))
            .min(BACKOFF_MAX);
        let until = last
            .checked_add(jiff::SignedDuration::try_from(delay).ok()?)
            .ok()?;
        let left = until.duration_since(now);
        (left > jiff::SignedDuration::ZERO).then(|| left.unsigned_abs())
    }
}

pub struct JobController {
    client: Arc<dyn ApiClient>,
    jobs: Cache,
    pods: Cache,
    expectations: Arc<Expectations>,
    /// UIDs of Pods whose finalizer we removed after counting them; a lagging Pod cache still
    /// showing the finalizer must not count them twice (upstream's finalizer expectations).
    counted: Arc<Mutex<HashSet<String>>>,
    backoff: Mutex<HashMap<String, BackoffRecord>>,
    written: MutationCache,
    clock: Arc<dyn Clock>,
    /// Pod and verdict Events; none in unit tests that assert writes.
    events: Option<Arc<EventRecorder>>,
}

impl JobController {
    pub fn new(
        client: Arc<dyn ApiClient>,
        jobs: Cache,
        pods: Cache,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client,
            jobs,
            pods,
            expectations: Arc::new(Expectations::new(clock.clone())),
            counted: Arc::new(Mutex::new(HashSet::new())),
            backoff: Mutex::new(HashMap::new()),
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

    pub fn on_job(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| queue.add(&key_of(c.object()))
    }

    /// Pod changes queue the owning Job (a deleted Job's key too, so its Pods lose the
    /// finalizer), record expectations, and forget counted UIDs once their finalizer is gone.
    pub fn on_pod(&self, queue: WorkQueue) -> impl Fn(&Change) + Send + Sync + use<> {
        let exp = self.expectations.clone();
        let counted = self.counted.clone();
        let jobs = self.jobs.clone();
        move |c| {
            let pod = c.object();
            let pod_key = key_of(pod);
            if matches!(c, Change::Deleted(_)) || !has_finalizer(pod) {
                counted
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(ownership::uid(pod));
            }
            match controller_key(pod, "Job") {
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
                    for j in jobs.list(Some(ownership::namespace(pod))) {
                        if ownership::selector_of(&j).is_ok_and(|s| s.matches_object(pod)) {
                            queue.add(&key_of(&j));
                        }
                    }
                }
                None => {}
            }
        }
    }

    /// Removes the tracking finalizer; `Ok(true)` when it is gone (or the Pod is).
    async fn remove_finalizer(&self, pod: &Value) -> Result<bool, ApiError> {
        let rest: Vec<Value> = pod
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|f| {
                f.iter()
                    .filter(|v| v.as_str() != Some(TRACKING_FINALIZER))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let patch = json!({"metadata": {
            "finalizers": rest,
            "resourceVersion": str_at(pod, "/metadata/resourceVersion"),
        }});
        let opts = PatchOptions {
            field_manager: Some(NAME.into()),
            ..Default::default()
        };
        let r = pods().in_namespace(ownership::namespace(pod));
        match self
            .client
            .patch(&r, ownership::name(pod), PatchType::Merge, patch, &opts)
            .await
        {
            Ok(_) | Err(ApiError::NotFound { .. }) => {
                self.counted
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(ownership::uid(pod).to_string());
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    /// Pods of a Job that is gone or going keep no tracking finalizer (`ns/name` of the Job, and
    /// its UID when known so a same-named successor's Pods are left alone).
    async fn release_pods(&self, key: &str, uid: Option<&str>) -> Result<(), ApiError> {
        let (ns, _) = key.split_once('/').unwrap_or(("", key));
        let mut first_err = None;
        for p in self.pods.list(Some(ns)) {
            let mine = controller_key(&p, "Job").as_deref() == Some(key)
                && uid.is_none_or(|u| {
                    ownership::controller_ref(&p).and_then(|r| r.get("uid")?.as_str()) == Some(u)
                });
            if mine
                && has_finalizer(&p)
                && let Err(e) = self.remove_finalizer(&p).await
            {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn pod_for(
        job: &Value,
        index: Option<i64>,
        failures: &BTreeMap<i64, per_index::IndexFailures>,
    ) -> Value {
        let name = ownership::name(job);
        let tmpl = &job["spec"]["template"];
        let mut meta = json!({
            "generateName": match index {
                Some(i) => format!("{name}-{i}-"),
                None => format!("{name}-"),
            },
            "namespace": ownership::namespace(job),
            "ownerReferences": [new_controller_ref(job, "batch/v1", "Job")],
            "finalizers": [TRACKING_FINALIZER],
            "labels": tmpl.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
            "annotations": tmpl.pointer("/metadata/annotations").cloned().unwrap_or(json!({})),
        });
        let mut spec = tmpl.get("spec").cloned().unwrap_or(json!({}));
        if let Some(i) = index {
            meta["annotations"][COMPLETION_INDEX] = json!(i.to_string());
            meta["labels"][COMPLETION_INDEX] = json!(i.to_string());
            if per_index::limit(job).is_some() {
                let f = failures.get(&i).cloned().unwrap_or_default();
                meta["annotations"][INDEX_FAILURE_COUNT] = json!(f.counted.to_string());
                if f.ignored > 0 {
                    meta["annotations"][INDEX_IGNORED_FAILURE_COUNT] = json!(f.ignored.to_string());
                }
            }
            if str_at(&spec, "/hostname").is_empty() {
                spec["hostname"] = json!(format!("{name}-{i}"));
            }
            // The index reaches the containers through the downward API, as upstream injects it.
            let env = json!({"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                "fieldPath": format!("metadata.annotations['{COMPLETION_INDEX}']")}}});
            for list in ["initContainers", "containers"] {
                if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
                    for c in cs {
                        if !c["env"].is_array() {
                            c["env"] = json!([]);
                        }
                        if let Some(e) = c["env"].as_array_mut()
                            && !e.iter().any(|v| v["name"] == "JOB_COMPLETION_INDEX")
                        {
                            e.push(env.clone());
                        }
                    }
                }
            }
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
    }

    /// Creates the Pods (slow start: 1, 2, 4, …) and deletes the victims, under expectations.
    async fn manage(
        &self,
        key: &str,
        job: &Value,
        create: Vec<Option<i64>>,
        delete: Vec<&Value>,
        failures: &BTreeMap<i64, per_index::IndexFailures>,
    ) -> Result<(usize, usize), ApiError> {
        if create.is_empty() && delete.is_empty() {
            return Ok((0, 0));
        }
        let ns = ownership::namespace(job);
        let r = pods().in_namespace(ns);
        self.expectations.expect(
            key,
            create.len() as i64,
            delete.iter().map(|p| key_of(p)).collect(),
        );
        let mut first_err = None;
        let mut deleted = 0;
        let results = futures::future::join_all(delete.iter().map(|p| {
            let opts = DeleteOptions {
                precondition_uid: Some(ownership::uid(p).to_string()),
                ..Default::default()
            };
            let r = &r;
            async move { self.client.delete(r, ownership::name(p), &opts).await }
        }))
        .await;
        for (p, res) in delete.iter().zip(results) {
            match res {
                Ok(_) => {
                    deleted += 1;
                    self.events.event(
                        job,
                        EventType::Normal,
                        "SuccessfulDelete",
                        &format!("Deleted pod: {}", ownership::name(p)),
                    );
                }
                Err(e) => {
                    self.expectations.deletion_observed(key, &key_of(p));
                    if !matches!(e, ApiError::NotFound { .. }) {
                        self.events.event(
                            job,
                            EventType::Warning,
                            "FailedDelete",
                            &format!("Error deleting: {}", e.message()),
                        );
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
        let (mut done, mut batch, mut created) = (0, 1, 0);
        let total = create.len();
        while done < total && first_err.is_none() {
            let size = batch.min(total - done);
            // Each slow-start batch is sent at once, as upstream's goroutines do.
            let results = futures::future::join_all(create[done..done + size].iter().map(|idx| {
                let r = &r;
                async move {
                    self.client
                        .create(r, Self::pod_for(job, *idx, failures), &wopts())
                        .await
                }
            }))
            .await;
            for res in results {
                match res {
                    Ok(p) => {
                        created += 1;
                        self.events.event(
                            job,
                            EventType::Normal,
                            "SuccessfulCreate",
                            &format!("Created pod: {}", ownership::name(&p)),
                        );
                    }
                    Err(e) => {
                        self.events.event(
                            job,
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
        first_err.map_or(Ok((created, deleted)), Err)
    }

    /// TTL-after-finished: deletes the Job (foreground, so its Pods go first) once
    /// `ttlSecondsAfterFinished` passed since it finished.
    async fn expire(&self, job: &Value) -> Result<Action, Error> {
        let Some(ttl) = i64_at(job, "/spec/ttlSecondsAfterFinished") else {
            return Ok(Action::AwaitChange);
        };
        let finished = job
            .pointer("/status/completionTime")
            .and_then(Value::as_str)
            .or_else(|| {
                condition(job, "Failed")
                    .or_else(|| condition(job, "Complete"))
                    .and_then(|c| c.get("lastTransitionTime")?.as_str())
            })
            .and_then(parse_time);
        let Some(at) = finished else {
            return Ok(Action::AwaitChange);
        };
        let expires = at
            .checked_add(jiff::SignedDuration::from_secs(ttl))
            .unwrap_or(at);
        let left = expires.duration_since(self.clock.now());
        if left > jiff::SignedDuration::ZERO {
            return Ok(Action::Requeue(left.unsigned_abs()));
        }
        let opts = DeleteOptions {
            propagation_policy: Some(PropagationPolicy::Foreground),
            precondition_uid: Some(ownership::uid(job).to_string()),
            ..Default::default()
        };
        match self
            .client
            .delete(
                &jobs().in_namespace(ownership::namespace(job)),
                ownership::name(job),
                &opts,
            )
            .await
        {
            Ok(_) | Err(ApiError::NotFound { .. }) => Ok(Action::AwaitChange),
            Err(e) => Err(e.into()),
        }
    }

    fn record_backoff(&self, key: &str, successes: usize, failures: usize, now: jiff::Timestamp) {
        let mut b = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
        let r = b.entry(key.to_string()).or_default();
        if successes > 0 {
            *r = BackoffRecord::default();
        }
        if failures > 0 {
            r.failures = r.failures.saturating_add(failures as u32);
            r.last = Some(now);
        }
    }

    fn backoff_left(&self, key: &str, now: jiff::Timestamp) -> Option<Duration> {
        self.backoff
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .and_then(|r| r.remaining(now))
    }
}

/// The [`crate::CONTROLLERS`] entry's setup: Job and Pod informer handlers, the reconciler.
pub fn setup(
    inf: &mut crate::Informers,
    client: Arc<dyn ApiClient>,
    clock: Arc<dyn Clock>,
    q: WorkQueue,
) -> Arc<dyn Reconciler> {
    let events = EventRecorder::new(client.clone(), NAME, clock.clone());
    let c =
        JobController::new(client, inf.cache(jobs()), inf.cache(pods()), clock).with_events(events);
    inf.get(jobs())
        .add_handler(Arc::new(JobController::on_job(q.clone())));
    inf.get(pods()).add_handler(Arc::new(c.on_pod(q)));
    Arc::new(c)
}

#[async_trait::async_trait]
impl Reconciler for JobController {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &str) -> Result<Action, Error> {
        let Some(job) = self.written.newest(key, self.jobs.get(key)) else {
            self.expectations.forget(key);
            self.backoff
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(key);
            self.release_pods(key, None).await?;
            return Ok(Action::AwaitChange);
        };
        if job
            .pointer("/spec/managedBy")
            .and_then(Value::as_str)
            .is_some_and(|m| m != MANAGED_BY_SELF)
        {
            return Ok(Action::AwaitChange);
        }
        if is_deleting(&job) || is_finished(&job) {
            self.release_pods(key, Some(ownership::uid(&job))).await?;
            return if is_deleting(&job) {
                Ok(Action::AwaitChange)
            } else {
                self.expire(&job).await
            };
        }
        let ns = ownership::namespace(&job).to_string();
        let now = self.clock.now();
        let now_s = rfc3339(now);
        let selector = ownership::selector_of(&job).map_err(Error::Invalid)?;
        let needs_sync = self.expectations.satisfied(key);
        let owned = claim(
            self.client.as_ref(),
            &pods().in_namespace(&ns),
            &job,
            new_controller_ref(&job, "batch/v1", "Job"),
            &selector,
            self.pods.list(Some(&ns)),
            NAME,
        )
        .await?;
        let indexed = str_at(&job, "/spec/completionMode") == "Indexed";
        let only_failed = str_at(&job, "/spec/podReplacementPolicy") == "Failed";
        let completions = i64_at(&job, "/spec/completions");
        let parallelism = i64_at(&job, "/spec/parallelism").unwrap_or(1).max(0);
        let mut status = job.get("status").cloned().unwrap_or(json!({}));
        if !status.is_object() {
            status = json!({});
        }
        let mut job = job;

        // 1. Finished Pods still carrying the finalizer: record their UIDs as uncounted.
        let mut unc_s = uid_list(&status, "succeeded");
        let mut unc_f = uid_list(&status, "failed");
        let before = (unc_s.len(), unc_f.len());
        let counted = self
            .counted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut policy_failure: Option<String> = None;
        let mut to_release: Vec<&Value> = Vec::new();
        for p in &owned {
            let uid = ownership::uid(p).to_string();
            if !has_finalizer(p) || counted.contains(&uid) {
                continue;
            }
            let (ok, failed) = (pod_succeeded(p), pod_failed(p, only_failed));
            if !ok && !failed {
                continue;
            }
            to_release.push(p);
            if unc_s.contains(&uid) || unc_f.contains(&uid) {
                continue;
            }
            if ok {
                unc_s.push(uid);
                continue;
            }
            let verdict = (str_at(p, "/status/phase") == "Failed")
                .then(|| pfp::evaluate(&job, p))
                .flatten();
            match verdict {
                Some(PolicyAction::Ignore) => continue,
                Some(PolicyAction::FailJob(msg)) => {
                    policy_failure.get_or_insert(msg);
                }
                _ => {}
            }
            unc_f.push(uid);
        }
        if (unc_s.len(), unc_f.len()) != before {
            status["uncountedTerminatedPods"] = json!({"succeeded": unc_s, "failed": unc_f});
            let mut nj = job.clone();
            nj["status"] = status.clone();
            job = self
                .client
                .update_status(&jobs().in_namespace(&ns), nj, &wopts())
                .await?;
            self.written.wrote(key, &job);
        }

        // 2. Remove their finalizers; 3. move what is released into the counts.
        let mut released: HashSet<&str> = HashSet::new();
        let mut release_err = None;
        // Concurrent, like upstream's parallel patches: the store's group commit batches them.
        let results =
            futures::future::join_all(to_release.iter().map(|p| self.remove_finalizer(p))).await;
        for (p, res) in to_release.iter().zip(results) {
            match res {
                Ok(_) => {
                    released.insert(ownership::uid(p));
                }
                Err(e) => {
                    release_err.get_or_insert(e);
                }
            }
        }
        let by_uid: HashMap<&str, &Value> = owned.iter().map(|p| (ownership::uid(p), p)).collect();
        let settled = |u: &String| {
            released.contains(u.as_str())
                || by_uid.get(u.as_str()).is_none_or(|p| !has_finalizer(p))
        };
        let mut completed = job_indexes::parse(str_at(&status, "/completedIndexes"));
        let (new_s, keep_s): (Vec<String>, Vec<String>) = unc_s.into_iter().partition(settled);
        let (new_f, keep_f): (Vec<String>, Vec<String>) = unc_f.into_iter().partition(settled);
        for u in &new_s {
            if let Some(i) = by_uid.get(u.as_str()).and_then(|p| job_indexes::of_pod(p))
                && completions.is_some_and(|c| i < c)
            {
                completed.insert(i);
            }
        }
        let succeeded = i64_at(&status, "/succeeded").unwrap_or(0) + new_s.len() as i64;
        let failed = i64_at(&status, "/failed").unwrap_or(0) + new_f.len() as i64;
        self.record_backoff(key, new_s.len(), new_f.len(), now);
        status["succeeded"] = json!(succeeded);
        status["failed"] = json!(failed);
        status["uncountedTerminatedPods"] = json!({});
        if !keep_s.is_empty() {
            status["uncountedTerminatedPods"]["succeeded"] = json!(keep_s);
        }
        if !keep_f.is_empty() {
            status["uncountedTerminatedPods"]["failed"] = json!(keep_f);
        }
        if indexed {
            status["completedIndexes"] = json!(job_indexes::format(&completed));
        }
        // Per-index budgets: failures counted on each index's Pods, indexes past theirs failed.
        let limit_per_index = per_index::limit(&job);
        let index_failures = if limit_per_index.is_some() {
            per_index::failures(&job, &owned, |p| pod_failed(p, only_failed))
        } else {
            BTreeMap::new()
        };
        let failed_indexes = match limit_per_index {
            Some(l) => {
                let f = per_index::failed_indexes(&status, &index_failures, l, &completed);
                status["failedIndexes"] = json!(job_indexes::format(&f));
                f
            }
            None => BTreeSet::new(),
        };
        let pending_count = keep_s.len() + keep_f.len();

        let active: Vec<&Value> = owned
            .iter()
            .filter(|p| !pod_succeeded(p) && !pod_failed(p, only_failed) && !is_deleting(p))
            .collect();
        let terminating = owned
            .iter()
            .filter(|p| {
                is_deleting(p) && !matches!(str_at(p, "/status/phase"), "Succeeded" | "Failed")
            })
            .count();
        let suspended = job["spec"]["suspend"].as_bool() == Some(true);

        // 4. Has the Job reached a verdict?
        let mut failure = condition(&job, "FailureTarget").map(|c| {
            (
                str_at(c, "/reason").to_string(),
                str_at(c, "/message").to_string(),
            )
        });
        let mut success: Option<(String, String)> =
            condition(&job, "SuccessCriteriaMet").map(|c| {
                (
                    str_at(c, "/reason").to_string(),
                    str_at(c, "/message").to_string(),
                )
            });
        let backoff_limit = i64_at(&job, "/spec/backoffLimit").unwrap_or(6);
        // Resuming restarts the activeDeadlineSeconds clock; a Job starts when first unsuspended.
        let resumed = !suspended && condition(&job, "Suspended").is_some();
        let recorded = status
            .get("startTime")
            .and_then(Value::as_str)
            .and_then(parse_time);
        let start = match (resumed, recorded, suspended) {
            (true, _, _) => Some(now),
            (false, Some(t), _) => Some(t),
            (false, None, false) => Some(now),
            (false, None, true) => None,
        };
        let mut deadline_left = None;
        if failure.is_none() && success.is_none() {
            let restarts: i64 = if str_at(&job, "/spec/template/spec/restartPolicy") == "OnFailure"
            {
                active
                    .iter()
                    .flat_map(|p| {
                        ["initContainerStatuses", "containerStatuses"]
                            .into_iter()
                            .filter_map(|l| p.pointer(&format!("/status/{l}"))?.as_array())
                            .flatten()
                    })
                    .filter_map(|cs| cs.get("restartCount")?.as_i64())
                    .sum()
            } else {
                0
            };
            let past_restarts = restarts > 0 && (backoff_limit == 0 || restarts >= backoff_limit);
            let completions_n = completions.unwrap_or(0);
            if let Some(msg) = policy_failure {
                failure = Some(("PodFailurePolicy".into(), msg));
            } else if limit_per_index.is_some()
                && i64_at(&job, "/spec/maxFailedIndexes")
                    .is_some_and(|m| failed_indexes.len() as i64 > m)
            {
                failure = Some((
                    "MaxFailedIndexesExceeded".into(),
                    "Job has exceeded the specified maximal number of failed indexes".into(),
                ));
            } else if limit_per_index.is_some()
                && !failed_indexes.is_empty()
                && (completed.len() + failed_indexes.len()) as i64 >= completions_n
            {
                failure = Some(("FailedIndexes".into(), "Job has failed indexes".into()));
            } else if limit_per_index.is_none() && (failed > backoff_limit || past_restarts) {
                failure = Some((
                    "BackoffLimitExceeded".into(),
                    "Job has reached the specified backoff limit".into(),
                ));
            } else if let (Some(ads), Some(t), false) = (
                i64_at(&job, "/spec/activeDeadlineSeconds"),
                start,
                suspended,
            ) {
                let left = t
                    .checked_add(jiff::SignedDuration::from_secs(ads))
                    .unwrap_or(t)
                    .duration_since(now);
                if left <= jiff::SignedDuration::ZERO {
                    failure = Some((
                        "DeadlineExceeded".into(),
                        "Job was active longer than specified deadline".into(),
                    ));
                } else {
                    deadline_left = Some(left.unsigned_abs());
                }
            }
            if failure.is_none() {
                let reached = match completions {
                    Some(c) if indexed => completed.len() as i64 >= c,
                    Some(c) => succeeded >= c,
                    None => succeeded > 0 && active.is_empty(),
                };
                success = if reached {
                    Some((
                        "CompletionsReached".into(),
                        "Reached expected number of succeeded pods".into(),
                    ))
                } else {
                    per_index::success_policy(&job, &completed)
                        .map(|msg| ("SuccessPolicy".to_string(), msg))
                };
            }
        }

        let mut manage_err = None;
        let mut active_now = active.len() as i64;
        let mut requeue = deadline_left;
        if let Some((reason, msg)) = &failure {
            set_condition(&mut status, "FailureTarget", "True", reason, msg, &now_s);
        } else if let Some((reason, msg)) = &success {
            set_condition(
                &mut status,
                "SuccessCriteriaMet",
                "True",
                reason,
                msg,
                &now_s,
            );
        }
        if failure.is_some() || success.is_some() {
            // Whatever still runs is stopped; the verdict is final once it has terminated.
            if needs_sync && !active.is_empty() {
                match self
                    .manage(key, &job, vec![], active.clone(), &index_failures)
                    .await
                {
                    Ok((_, d)) => active_now -= d as i64,
                    Err(e) => manage_err = Some(e),
                }
            }
            if active.is_empty() && terminating == 0 && pending_count == 0 {
                // The verdict is final: upstream's `recordJobFinished` events.
                if let Some((reason, msg)) = &failure {
                    set_condition(&mut status, "Failed", "True", reason, msg, &now_s);
                    self.events.event(&job, EventType::Warning, reason, msg);
                } else if let Some((reason, msg)) = &success {
                    set_condition(&mut status, "Complete", "True", reason, msg, &now_s);
                    status["completionTime"] = json!(now_s);
                    self.events
                        .event(&job, EventType::Normal, "Completed", "Job completed");
                }
            }
        } else if suspended {
            if condition(&job, "Suspended").is_none_or(|c| str_at(c, "/status") != "True") {
                self.events
                    .event(&job, EventType::Normal, "Suspended", "Job suspended");
            }
            set_condition(
                &mut status,
                "Suspended",
                "True",
                "JobSuspended",
                "Job suspended",
                &now_s,
            );
            if needs_sync && !active.is_empty() {
                match self
                    .manage(key, &job, vec![], active.clone(), &index_failures)
                    .await
                {
                    Ok((_, d)) => active_now -= d as i64,
                    Err(e) => manage_err = Some(e),
                }
            }
        } else {
            if resumed {
                self.events
                    .event(&job, EventType::Normal, "Resumed", "Job resumed");
                set_condition(
                    &mut status,
                    "Suspended",
                    "False",
                    "JobResumed",
                    "Job resumed",
                    &now_s,
                );
            }
            if let Some(t) = start {
                status["startTime"] = json!(rfc3339(t));
            }
            if needs_sync {
                // Under `podReplacementPolicy: Failed` a terminating Pod still holds its place.
                let held: Vec<&Value> = if only_failed {
                    owned
                        .iter()
                        .filter(|p| is_deleting(p) && !pod_succeeded(p) && !pod_failed(p, true))
                        .collect()
                } else {
                    Vec::new()
                };
                let (create, delete) = if indexed {
                    let busy: BTreeSet<i64> =
                        held.iter().filter_map(|p| job_indexes::of_pod(p)).collect();
                    // A failed index is as done as a completed one: no more Pods for it.
                    let done: BTreeSet<i64> = completed.union(&failed_indexes).copied().collect();
                    plan_indexed(&active, &done, &busy, completions.unwrap_or(0), parallelism)
                } else {
                    let want = match completions {
                        None if succeeded > 0 => active.len() as i64,
                        None => parallelism,
                        Some(c) => parallelism.min(c - succeeded).max(0),
                    };
                    let have = active.len() as i64;
                    let mut victims = active.clone();
                    victims.sort_by(surplus_order);
                    victims.truncate((have - want).max(0) as usize);
                    let room = want - have - held.len() as i64;
                    (vec![None; room.max(0) as usize], victims)
                };
                let mut create = create;
                create.truncate(BURST);
                if limit_per_index.is_some() {
                    // Each index backs off on its own failures (`getPodCreationInfoForIndependentIndexes`).
                    let mut wait: Option<Duration> = None;
                    create.retain(|idx| {
                        let left = idx.and_then(|i| {
                            let n = index_failures.get(&i).map_or(0, |f| f.counted);
                            let last = last_failure(&owned, i)?;
                            BackoffRecord {
                                failures: n as u32,
                                last: Some(last),
                            }
                            .remaining(now)
                        });
                        if let Some(l) = left {
                            wait = Some(wait.map_or(l, |w: Duration| w.min(l)));
                        }
                        left.is_none()
                    });
                    if let Some(l) = wait {
                        requeue = Some(requeue.map_or(l, |r| r.min(l)));
                    }
                } else if !create.is_empty()
                    && let Some(left) = self.backoff_left(key, now)
                {
                    create.clear();
                    requeue = Some(requeue.map_or(left, |r| r.min(left)));
                }
                match self
                    .manage(key, &job, create, delete, &index_failures)
                    .await
                {
                    Ok((c, d)) => active_now += c as i64 - d as i64,
                    Err(e) => manage_err = Some(e),
                }
            }
        }

        status["active"] = json!(active_now.max(0));
        status["ready"] = json!(active.iter().filter(|p| is_pod_ready(p)).count());
        status["terminating"] = json!(terminating);
        if job.get("status") != Some(&status) {
            let mut nj = job.clone();
            nj["status"] = status;
            let written = self
                .client
                .update_status(&jobs().in_namespace(&ns), nj, &wopts())
                .await?;
            self.written.wrote(key, &written);
        }
        if let Some(e) = release_err.or(manage_err) {
            return Err(e.into());
        }
        Ok(requeue.map_or(Action::AwaitChange, Action::Requeue))
    }
}

/// When index `i` last failed: the latest finish time among its failed Pods' containers (or
/// their deletion time), which starts that index's back-off.
fn last_failure(pods: &[Value], i: i64) -> Option<jiff::Timestamp> {
    pods.iter()
        .filter(|p| job_indexes::of_pod(p) == Some(i) && str_at(p, "/status/phase") == "Failed")
        .filter_map(|p| {
            let finished = ["initContainerStatuses", "containerStatuses"]
                .into_iter()
                .filter_map(|l| p.pointer(&format!("/status/{l}"))?.as_array())
                .flatten()
                .filter_map(|cs| cs.pointer("/state/terminated/finishedAt")?.as_str())
                .filter_map(parse_time)
                .max();
            finished.or_else(|| {
                p.pointer("/metadata/deletionTimestamp")
                    .and_then(Value::as_str)
                    .and_then(parse_time)
            })
        })
        .max()
}

/// Pods to create (by index) and to delete for an Indexed Job: at most `parallelism` running,
/// one per index, none for completed or out-of-range indexes, nor for `busy` ones (held by a
/// terminating Pod); lowest pending indexes first.
fn plan_indexed<'a>(
    active: &[&'a Value],
    completed: &BTreeSet<i64>,
    busy: &BTreeSet<i64>,
    completions: i64,
    parallelism: i64,
) -> (Vec<Option<i64>>, Vec<&'a Value>) {
    let mut delete = Vec::new();
    let mut by_index: BTreeMap<i64, &'a Value> = BTreeMap::new();
    for p in active {
        match job_indexes::of_pod(p) {
            Some(i) if i < completions && !completed.contains(&i) && !by_index.contains_key(&i) => {
                by_index.insert(i, p);
            }
            _ => delete.push(*p),
        }
    }
    let want = parallelism.min(completions - completed.len() as i64).max(0) as usize;
    while by_index.len() > want {
        if let Some((_, p)) = by_index.pop_last() {
            delete.push(p);
        }
    }
    let create = (0..completions)
        .filter(|i| !completed.contains(i) && !by_index.contains_key(i) && !busy.contains(i))
        .take(want.saturating_sub(by_index.len() + busy.len()))
        .map(Some)
        .collect();
    (create, delete)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::FakeClock;
    use crate::testing::FakeClient;

    const T0: &str = "2026-01-01T00:00:00Z";

    fn job(spec: Value) -> Value {
        let mut j = json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "ns", "uid": "job-uid"},
            "spec": {
                "parallelism": 1, "completions": 1, "backoffLimit": 6,
                "completionMode": "NonIndexed", "suspend": false,
                "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "job-uid"}},
                "template": {"metadata": {"labels": {"batch.kubernetes.io/controller-uid": "job-uid"}},
                             "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "perl"}]}},
            },
        });
        for (k, v) in spec.as_object().unwrap() {
            j["spec"][k] = v.clone();
        }
        j
    }

    struct Kit {
        fake: Arc<FakeClient>,
        clock: Arc<FakeClock>,
        c: JobController,
    }

    impl Kit {
        fn new(spec: Value) -> Self {
            let fake = Arc::new(FakeClient::default());
            let clock = FakeClock::new(T0.parse().unwrap());
            fake.seed(&jobs(), job(spec));
            let c = JobController::new(
                fake.clone(),
                Cache::default(),
                Cache::default(),
                clock.clone(),
            );
            let mut k = Kit { fake, clock, c };
            k.sync();
            k
        }
        /// Makes the caches what the server holds, as the informers would (their handlers also
        /// observe the expectations and forget counted UIDs).
        fn sync(&mut self) {
            let q = WorkQueue::new();
            let handler = self.c.on_pod(q);
            let old = std::mem::take(&mut self.c.pods);
            let fresh = Cache::default();
            for p in self.fake.objects(&pods()) {
                let known = old.get(&key_of(&p)).is_some();
                fresh.insert(p.clone());
                handler(&if known {
                    Change::Modified(p)
                } else {
                    Change::Added(p)
                });
            }
            for p in old.list(None) {
                if fresh.get(&key_of(&p)).is_none() {
                    handler(&Change::Deleted(p));
                }
            }
            self.c.pods = fresh;
            self.c.jobs = Cache::default();
            if let Some(j) = self.fake.object(&jobs(), "ns/pi") {
                self.c.jobs.insert(j);
            }
        }
        async fn run(&mut self) -> Action {
            let a = self.c.reconcile("ns/pi").await.unwrap();
            self.sync();
            a
        }
        fn job(&self) -> Value {
            self.fake.object(&jobs(), "ns/pi").unwrap()
        }
        fn pod_names(&self) -> Vec<String> {
            self.fake
                .objects(&pods())
                .iter()
                .map(|p| ownership::name(p).to_string())
                .collect()
        }
        fn finish(&self, name: &str, phase: &str) {
            let mut p = self.fake.object(&pods(), &format!("ns/{name}")).unwrap();
            p["status"]["phase"] = json!(phase);
            self.fake.seed(&pods(), p);
        }
        fn writes_since(&self, n: usize) -> Vec<String> {
            self.fake.writes()[n..].to_vec()
        }
    }

    fn cond<'a>(j: &'a Value, ty: &str) -> (&'a str, &'a str) {
        let c = j["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
            .unwrap_or(&Value::Null);
        (str_at(c, "/status"), str_at(c, "/reason"))
    }

    #[tokio::test]
    async fn creates_parallel_pods_with_the_tracking_finalizer() {
        let mut k = Kit::new(json!({"completions": 3, "parallelism": 2}));
        assert_eq!(k.run().await, Action::AwaitChange);
        assert_eq!(
            k.fake.writes(),
            [
                "create pods ns/pi-00002",
                "create pods ns/pi-00003",
                "update_status jobs ns/pi"
            ]
        );
        let p = k.fake.object(&pods(), "ns/pi-00002").unwrap();
        assert_eq!(p["metadata"]["finalizers"], json!([TRACKING_FINALIZER]));
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "Job");
        assert_eq!(
            p["metadata"]["labels"]["batch.kubernetes.io/controller-uid"],
            "job-uid"
        );
        let j = k.job();
        assert_eq!(j["status"]["active"], 2);
        assert_eq!(j["status"]["startTime"], T0);
        assert_eq!(j["status"]["uncountedTerminatedPods"], json!({}));
        // Settled: a second pass writes nothing.
        let n = k.fake.writes().len();
        k.run().await;
        assert_eq!(k.writes_since(n), Vec::<String>::new());
    }

    #[tokio::test]
    async fn counts_a_succeeded_pod_once_then_completes() {
        let mut k = Kit::new(json!({}));
        k.run().await;
        k.finish("pi-00002", "Succeeded");
        k.sync();
        let n = k.fake.writes().len();
        k.run().await;
        assert_eq!(
            k.writes_since(n),
            [
                "update_status jobs ns/pi",
                "patch pods ns/pi-00002",
                "update_status jobs ns/pi"
            ]
        );
        let p = k.fake.object(&pods(), "ns/pi-00002").unwrap();
        assert_eq!(p["metadata"]["finalizers"], json!([]));
        let j = k.job();
        assert_eq!(j["status"]["succeeded"], 1);
        assert_eq!(j["status"]["active"], 0);
        assert_eq!(
            cond(&j, "SuccessCriteriaMet"),
            ("True", "CompletionsReached")
        );
        assert_eq!(cond(&j, "Complete"), ("True", "CompletionsReached"));
        assert_eq!(j["status"]["completionTime"], T0);
        // Finished: nothing more, even from a pod cache that still shows the finalizer.
        let n = k.fake.writes().len();
        k.run().await;
        assert_eq!(k.writes_since(n), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_stale_pod_cache_never_counts_twice() {
        let mut k = Kit::new(json!({"completions": 2}));
        k.run().await;
        k.finish("pi-00002", "Succeeded");
        k.sync();
        let stale = k.c.pods.clone();
        k.c.reconcile("ns/pi").await.unwrap();
        // The Job is fresh, the Pod cache is not: it still shows the finalizer.
        k.c.pods = stale;
        k.c.jobs.insert(k.job());
        k.c.reconcile("ns/pi").await.unwrap();
        assert_eq!(k.job()["status"]["succeeded"], 1);
    }

    /// The live (unfinished, undeleted) Pod of index `i`.
    fn live_of(k: &Kit, i: i64) -> Option<Value> {
        k.fake.objects(&pods()).into_iter().find(|p| {
            job_indexes::of_pod(p) == Some(i)
                && !pod_succeeded(p)
                && str_at(p, "/status/phase") != "Failed"
                && !is_deleting(p)
        })
    }

    fn cond_message(j: &Value, ty: &str) -> String {
        j["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
            .map(|c| str_at(c, "/message").to_string())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn events_name_each_pod_and_the_verdict() {
        let n = |t: &str, r: &str, m: &str| (t.to_string(), r.to_string(), m.to_string());
        let mut k = Kit::new(json!({"backoffLimit": 0}));
        k.c.events = Some(EventRecorder::new(k.fake.clone(), NAME, k.clock.clone()));
        k.run().await;
        let pod = k.pod_names()[0].clone();
        k.finish(&pod, "Failed");
        k.sync();
        k.run().await;
        assert_eq!(cond(&k.job(), "Failed"), ("True", "BackoffLimitExceeded"));
        assert_eq!(
            k.fake.events().await,
            [
                n("Normal", "SuccessfulCreate", &format!("Created pod: {pod}")),
                n(
                    "Warning",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit"
                ),
            ]
        );

        let mut k = Kit::new(json!({}));
        k.c.events = Some(EventRecorder::new(k.fake.clone(), NAME, k.clock.clone()));
        k.run().await;
        let pod = k.pod_names()[0].clone();
        k.finish(&pod, "Succeeded");
        k.sync();
        k.run().await;
        assert_eq!(
            k.fake.events().await.last().unwrap(),
            &n("Normal", "Completed", "Job completed")
        );
    }

    #[tokio::test]
    async fn backoff_limit_per_index_fails_an_index_and_then_the_job() {
        let mut k = Kit::new(json!({"completionMode": "Indexed", "completions": 3,
            "parallelism": 3, "backoffLimitPerIndex": 1, "backoffLimit": 2147483647}));
        k.run().await;
        let p0 = live_of(&k, 0).unwrap();
        assert_eq!(p0["metadata"]["annotations"][INDEX_FAILURE_COUNT], "0");
        assert_eq!(k.job()["status"]["failedIndexes"], "");
        // First failure of index 0: within its budget, replaced with the count carried on.
        k.finish(ownership::name(&p0), "Failed");
        k.sync();
        k.run().await;
        let again = live_of(&k, 0).expect("index 0 retried");
        assert_eq!(again["metadata"]["annotations"][INDEX_FAILURE_COUNT], "1");
        assert_eq!(k.job()["status"]["failedIndexes"], "");
        // Second failure: past the budget of 1; index 0 is failed and not retried.
        k.finish(ownership::name(&again), "Failed");
        k.sync();
        k.run().await;
        assert!(live_of(&k, 0).is_none());
        assert_eq!(k.job()["status"]["failedIndexes"], "0");
        assert!(
            cond(&k.job(), "FailureTarget").0.is_empty(),
            "others still run"
        );
        for i in [1, 2] {
            let p = live_of(&k, i).unwrap();
            k.finish(ownership::name(&p), "Succeeded");
        }
        k.sync();
        k.run().await;
        let j = k.job();
        assert_eq!(j["status"]["completedIndexes"], "1-2");
        assert_eq!(j["status"]["failed"], 2);
        assert_eq!(cond(&j, "Failed"), ("True", "FailedIndexes"));
        assert_eq!(cond_message(&j, "Failed"), "Job has failed indexes");
    }

    #[tokio::test]
    async fn fail_index_rule_and_max_failed_indexes_fail_the_job_early() {
        let mut k = Kit::new(json!({"completionMode": "Indexed", "completions": 4,
            "parallelism": 2, "backoffLimitPerIndex": 3, "maxFailedIndexes": 0,
            "podFailurePolicy": {"rules": [{"action": "FailIndex",
                "onExitCodes": {"operator": "In", "values": [42]}}]}}));
        k.run().await;
        let mut p0 = live_of(&k, 0).unwrap();
        p0["status"] = json!({"phase": "Failed", "containerStatuses": [
            {"name": "main", "state": {"terminated": {"exitCode": 42}}}]});
        k.fake.seed(&pods(), p0);
        k.sync();
        k.run().await;
        let j = k.job();
        assert_eq!(j["status"]["failedIndexes"], "0");
        assert_eq!(
            cond(&j, "FailureTarget"),
            ("True", "MaxFailedIndexesExceeded")
        );
        assert_eq!(
            cond_message(&j, "FailureTarget"),
            "Job has exceeded the specified maximal number of failed indexes"
        );
        assert!(live_of(&k, 1).is_none(), "the rest is stopped");
    }

    #[tokio::test]
    async fn success_policy_completes_before_every_index_ran() {
        let mut k = Kit::new(json!({"completionMode": "Indexed", "completions": 5,
            "parallelism": 2, "successPolicy": {"rules": [
                {"succeededIndexes": "0-3", "succeededCount": 1}]}}));
        k.run().await;
        let p1 = live_of(&k, 1).unwrap();
        k.finish(ownership::name(&p1), "Succeeded");
        k.sync();
        k.run().await;
        let j = k.job();
        assert_eq!(cond(&j, "SuccessCriteriaMet"), ("True", "SuccessPolicy"));
        assert_eq!(
            cond_message(&j, "SuccessCriteriaMet"),
            "Matched rules at index 0"
        );
        assert!(live_of(&k, 0).is_none(), "index 0's Pod is stopped");
        // Once nothing runs the Job is Complete with the same reason.
        for _ in 0..3 {
            k.sync();
            k.run().await;
        }
        let j = k.job();
        assert_eq!(cond(&j, "Complete"), ("True", "SuccessPolicy"));
        assert_eq!(j["status"]["completedIndexes"], "1");
    }

    #[tokio::test]
    async fn failures_back_off_exponentially_then_exceed_the_limit() {
        let mut k = Kit::new(json!({"backoffLimit": 1}));
        k.run().await;
        k.finish("pi-00002", "Failed");
        k.sync();
        let a = k.run().await;
        assert_eq!(a, Action::Requeue(Duration::from_secs(10)), "10s backoff");
        assert_eq!(k.job()["status"]["failed"], 1);
        assert_eq!(k.pod_names(), ["pi-00002"], "no replacement yet");
        k.clock.advance(Duration::from_secs(10));
        k.run().await;
        let names = k.pod_names();
        assert_eq!(names.len(), 2, "{names:?}");
        k.finish(&names[1], "Failed");
        k.sync();
        k.run().await;
        let j = k.job();
        assert_eq!(j["status"]["failed"], 2);
        assert_eq!(cond(&j, "FailureTarget"), ("True", "BackoffLimitExceeded"));
        assert_eq!(cond(&j, "Failed"), ("True", "BackoffLimitExceeded"));
        let msg = j["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Failed")
            .unwrap()["message"]
            .clone();
        assert_eq!(msg, "Job has reached the specified backoff limit");
        assert!(j["status"].get("completionTime").is_none());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let t: jiff::Timestamp = T0.parse().unwrap();
        let r = |failures| BackoffRecord {
            failures,
            last: Some(t),
        };
        assert_eq!(r(1).remaining(t), Some(Duration::from_secs(10)));
        assert_eq!(r(3).remaining(t), Some(Duration::from_secs(40)));
        assert_eq!(r(12).remaining(t), Some(Duration::from_secs(600)));
        assert_eq!(r(0).remaining(t), None);
    }

    #[tokio::test]
    async fn indexed_jobs_run_one_pod_per_index_and_track_completed_indexes() {
        let mut k =
            Kit::new(json!({"completionMode": "Indexed", "completions": 3, "parallelism": 2}));
        k.run().await;
        let ps = k.fake.objects(&pods());
        let idx: Vec<_> = ps.iter().filter_map(job_indexes::of_pod).collect();
        assert_eq!(idx, [0, 1]);
        let p1 = ps
            .iter()
            .find(|p| job_indexes::of_pod(p) == Some(1))
            .unwrap();
        assert!(ownership::name(p1).starts_with("pi-1-"));
        assert_eq!(p1["spec"]["hostname"], "pi-1");
        assert_eq!(p1["metadata"]["labels"][COMPLETION_INDEX], "1");
        assert_eq!(
            p1["spec"]["containers"][0]["env"][0]["name"],
            "JOB_COMPLETION_INDEX"
        );
        k.finish(ownership::name(p1), "Succeeded");
        k.sync();
        k.run().await;
        let j = k.job();
        assert_eq!(j["status"]["completedIndexes"], "1");
        let idx: BTreeSet<_> = k
            .fake
            .objects(&pods())
            .iter()
            .filter(|p| !pod_succeeded(p))
            .filter_map(job_indexes::of_pod)
            .collect();
        assert_eq!(idx, BTreeSet::from([0, 2]));
        for p in k.fake.objects(&pods()) {
            if !pod_succeeded(&p) {
                k.finish(ownership::name(&p), "Succeeded");
            }
        }
        k.sync();
        k.run().await;
        let j = k.job();
        assert_eq!(j["status"]["completedIndexes"], "0-2");
        assert_eq!(cond(&j, "Complete").0, "True");
    }

    #[tokio::test]
    async fn active_deadline_stops_the_pods_and_fails_the_job() {
        let mut k = Kit::new(json!({"activeDeadlineSeconds": 30}));
        assert_eq!(k.run().await, Action::Requeue(Duration::from_secs(30)));
        k.clock.advance(Duration::from_secs(31));
        let n = k.fake.writes().len();
        k.run().await;
        assert_eq!(
            k.writes_since(n),
            ["delete pods ns/pi-00002", "update_status jobs ns/pi"]
        );
        let j = k.job();
        assert_eq!(cond(&j, "FailureTarget"), ("True", "DeadlineExceeded"));
        assert_eq!(cond(&j, "Failed"), ("", ""), "waits for the pod to go");
        k.run().await;
        let j = k.job();
        assert_eq!(cond(&j, "Failed"), ("True", "DeadlineExceeded"));
    }

    #[tokio::test]
    async fn suspend_deletes_pods_and_resume_restarts_the_clock() {
        let mut k = Kit::new(json!({"completions": 2, "parallelism": 2}));
        k.run().await;
        let mut j = k.job();
        j["spec"]["suspend"] = json!(true);
        k.fake.seed(&jobs(), j);
        k.sync();
        k.run().await;
        assert!(k.pod_names().is_empty());
        let j = k.job();
        assert_eq!(cond(&j, "Suspended"), ("True", "JobSuspended"));
        assert_eq!(j["status"]["active"], 0);
        k.clock.advance(Duration::from_secs(60));
        let mut j = k.job();
        j["spec"]["suspend"] = json!(false);
        k.fake.seed(&jobs(), j);
        k.sync();
        k.run().await;
        let j = k.job();
        assert_eq!(k.pod_names().len(), 2);
        let c = j["status"]["conditions"].as_array().unwrap()[0].clone();
        assert_eq!(
            (c["status"].as_str(), c["reason"].as_str()),
            (Some("False"), Some("JobResumed"))
        );
        assert_eq!(j["status"]["startTime"], "2026-01-01T00:01:00Z");
    }

    #[tokio::test]
    async fn pod_failure_policy_fails_the_job_or_ignores_the_failure() {
        let rules = json!({"rules": [
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        ]});
        let mut k = Kit::new(json!({"podFailurePolicy": rules}));
        k.run().await;
        let mut p = k.fake.object(&pods(), "ns/pi-00002").unwrap();
        p["status"] = json!({"phase": "Failed", "conditions": [{"type": "DisruptionTarget", "status": "True"}]});
        k.fake.seed(&pods(), p);
        k.sync();
        k.run().await;
        let j = k.job();
        assert_eq!(j["status"]["failed"], 0, "ignored");
        let names = k.pod_names();
        assert_eq!(names.len(), 2, "replaced without backoff: {names:?}");
        let mut p = k.fake.object(&pods(), &format!("ns/{}", names[1])).unwrap();
        p["status"] = json!({"phase": "Failed", "containerStatuses": [
            {"name": "main", "state": {"terminated": {"exitCode": 42}}}]});
        k.fake.seed(&pods(), p);
        k.sync();
        k.run().await;
        let j = k.job();
        assert_eq!(cond(&j, "Failed"), ("True", "PodFailurePolicy"));
        assert_eq!(j["status"]["failed"], 1);
    }

    #[tokio::test]
    async fn replacement_policy_failed_waits_for_terminating_pods() {
        let mut k = Kit::new(json!({"podReplacementPolicy": "Failed"}));
        k.run().await;
        let mut p = k.fake.object(&pods(), "ns/pi-00002").unwrap();
        p["metadata"]["deletionTimestamp"] = json!(T0);
        k.fake.seed(&pods(), p);
        k.sync();
        k.run().await;
        assert_eq!(
            k.pod_names(),
            ["pi-00002"],
            "no replacement while it terminates"
        );
        let j = k.job();
        assert_eq!(
            (
                j["status"]["active"].as_i64(),
                j["status"]["terminating"].as_i64()
            ),
            (Some(0), Some(1))
        );
        k.finish("pi-00002", "Failed");
        k.sync();
        k.run().await;
        assert_eq!(k.job()["status"]["failed"], 1);
    }

    #[tokio::test]
    async fn jobs_managed_by_another_controller_are_left_alone() {
        let mut k = Kit::new(json!({"managedBy": "example.com/queue"}));
        k.run().await;
        assert!(k.fake.writes().is_empty());
    }

    #[tokio::test]
    async fn ttl_after_finished_deletes_the_job_in_the_foreground() {
        let mut k = Kit::new(json!({"ttlSecondsAfterFinished": 100}));
        k.run().await;
        k.finish("pi-00002", "Succeeded");
        k.sync();
        k.run().await;
        assert_eq!(k.run().await, Action::Requeue(Duration::from_secs(100)));
        k.clock.advance(Duration::from_secs(100));
        k.run().await;
        assert_eq!(k.fake.writes().last().unwrap(), "delete jobs ns/pi");
        assert!(k.fake.object(&jobs(), "ns/pi").is_none());
    }

    #[tokio::test]
    async fn a_deleted_job_releases_its_pods() {
        let mut k = Kit::new(json!({}));
        k.run().await;
        k.c.jobs = Cache::default();
        k.c.reconcile("ns/pi").await.unwrap();
        assert_eq!(k.fake.writes().last().unwrap(), "patch pods ns/pi-00002");
        let p = k.fake.object(&pods(), "ns/pi-00002").unwrap();
        assert_eq!(p["metadata"]["finalizers"], json!([]));
    }
}
