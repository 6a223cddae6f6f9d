//! The CronJob controller (`pkg/controller/cronjob`, v2): creates a Job named
//! `<cronjob>-<scheduled minutes since the epoch>` at each scheduled time, honouring
//! `concurrencyPolicy` (Allow/Forbid/Replace), `startingDeadlineSeconds`, `suspend` and
//! `timeZone`; keeps `status.active`, `lastScheduleTime`, `lastSuccessfulTime`; deletes finished
//! Jobs beyond `successfulJobsHistoryLimit`/`failedJobsHistoryLimit`. Time comes from the
//! injected clock and the controller requeues itself for the next activation, so nothing polls.
//!
//! Without `timeZone` schedules run in UTC (kube-controller-manager's images run in UTC).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use skiff_k8s_core::client::{
    ApiClient, DeleteOptions, PropagationPolicy, ResourceRef, WriteOptions,
};
use skiff_k8s_core::status::ApiError;

use crate::cronjob_schedule::{self, Schedule};
use crate::job::{condition, jobs};
use crate::job_mutation_cache::MutationCache;
use crate::ownership::{self, controller_key, is_deleting, new_controller_ref, str_at};
use crate::runtime::events::{EventRecorder, EventType, Recorder};
use crate::runtime::informer::{Cache, Change, key_of};
use crate::runtime::queue::WorkQueue;
use crate::runtime::reconcile::{Action, Error, Reconciler};
use crate::runtime::{Clock, parse_time, rfc3339};

pub const NAME: &str = "cronjob-controller";
/// Set on each created Job: the scheduled time it stands for (1.28+).
pub const SCHEDULED_TIMESTAMP_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// Upstream gives up counting missed activations past this many and starts the latest.
const MAX_MISSED: usize = 100;

pub fn cronjobs() -> ResourceRef {
    ResourceRef::new("batch", "v1", "cronjobs")
}

fn wopts() -> WriteOptions {
    WriteOptions {
        field_manager: Some(NAME.into()),
        ..Default::default()
    }
}

/// The Job name for a scheduled time (`getJobName`).
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// The latest activation in `(earliest, now]` and whether more than one was missed
/// (`mostRecentScheduleTime`).
fn most_recent(
    s: &Schedule,
    tz: &TimeZone,
    earliest: Timestamp,
    now: Timestamp,
) -> (Option<Timestamp>, usize) {
    let mut last: Option<Timestamp> = None;
    let mut prev: Option<Timestamp> = None;
    let mut n = 0;
    let mut at = earliest;
    while let Some(t) = s.next(at, tz) {
        if t > now {
            return (last, n);
        }
        prev = last;
        last = Some(t);
        n += 1;
        at = t;
        if n > MAX_MISSED {
            break;
        }
    }
    let (Some(last_t), Some(prev_t)) = (last, prev) else {
        return (last, n);
    };
    // Too many missed: only the latest matters. Look back from `now` over a window of a few
    // intervals, doubling it until an activation turns up, so a year of minutely misses costs a
    // handful of steps rather than half a million.
    let mut span = last_t
        .duration_since(prev_t)
        .max(jiff::SignedDuration::from_secs(60))
        * 2;
    loop {
        let probe = now.checked_sub(span).unwrap_or(last_t).max(last_t);
        let mut found = None;
        let mut p = probe;
        while let Some(t) = s.next(p, tz) {
            if t > now {
                break;
            }
            found = Some(t);
            p = t;
        }
        if found.is_some() || probe == last_t {
            return (found.or(last), n);
        }
        span *= 2;
    }
}

fn job_finished(j: &Value) -> Option<&'static str> {
    if condition(j, "Complete").is_some() {
        Some("Complete")
    } else if condition(j, "Failed").is_some() {
        Some("Failed")
    } else {
        None
    }
}

fn job_ref(j: &Value) -> Value {
    json!({
        "kind": "Job", "apiVersion": "batch/v1",
        "namespace": ownership::namespace(j), "name": ownership::name(j),
        "uid": ownership::uid(j), "resourceVersion": str_at(j, "/metadata/resourceVersion"),
    })
}

pub struct CronJobController {
    client: Arc<dyn ApiClient>,
    cronjobs: Cache,
    jobs: Cache,
    written: MutationCache,
    clock: Arc<dyn Clock>,
    /// Events as upstream's controller writes them; none in unit tests that assert writes.
    events: Option<Arc<EventRecorder>>,
}

impl CronJobController {
    pub fn new(
        client: Arc<dyn ApiClient>,
        cronjobs: Cache,
        jobs: Cache,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client,
            cronjobs,
            jobs,
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

    pub fn on_cronjob(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| queue.add(&key_of(c.object()))
    }

    /// Job changes queue their CronJob (a finished Job updates `active` and the history).
    pub fn on_job(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| {
            if let Some(k) = controller_key(c.object(), "CronJob") {
                queue.add(&k);
            }
        }
    }

    /// Deletes a Job (`deleteJob`): `SuccessfulDelete` "Deleted job …" on the CronJob.
    async fn delete_job(&self, cj: &Value, j: &Value) -> Result<(), ApiError> {
        let opts = DeleteOptions {
            propagation_policy: Some(PropagationPolicy::Background),
            precondition_uid: Some(ownership::uid(j).to_string()),
            ..Default::default()
        };
        match self
            .client
            .delete(
                &jobs().in_namespace(ownership::namespace(j)),
                ownership::name(j),
                &opts,
            )
            .await
        {
            Ok(_) => {
                self.events.event(
                    cj,
                    EventType::Normal,
                    "SuccessfulDelete",
                    &format!("Deleted job {}", ownership::name(j)),
                );
                Ok(())
            }
            Err(ApiError::NotFound { .. }) => Ok(()),
            Err(e) => {
                self.events.event(
                    cj,
                    EventType::Warning,
                    "FailedDelete",
                    &format!("Deleted job: {}", e.message()),
                );
                Err(e)
            }
        }
    }

    /// Deletes the oldest finished Jobs past the history limits.
    async fn cleanup(&self, cj: &Value, owned: &[Value]) -> Result<(), ApiError> {
        for (state, field, default) in [
            ("Complete", "successfulJobsHistoryLimit", 3),
            ("Failed", "failedJobsHistoryLimit", 1),
        ] {
            let limit = cj["spec"][field].as_i64().unwrap_or(default).max(0) as usize;
            let mut done: Vec<&Value> = owned
                .iter()
                .filter(|j| job_finished(j) == Some(state) && !is_deleting(j))
                .collect();
            if done.len() <= limit {
                continue;
            }
            done.sort_by_key(|j| {
                (
                    str_at(j, "/status/startTime").to_string(),
                    str_at(j, "/metadata/creationTimestamp").to_string(),
                    ownership::name(j).to_string(),
                )
            });
            let excess = done.len() - limit;
            for j in &done[..excess] {
                self.delete_job(cj, j).await?;
            }
        }
        Ok(())
    }
}

/// The [`crate::CONTROLLERS`] entry's setup: CronJob and Job informer handlers, the reconciler.
pub fn setup(
    inf: &mut crate::Informers,
    client: Arc<dyn ApiClient>,
    clock: Arc<dyn Clock>,
    q: WorkQueue,
) -> Arc<dyn Reconciler> {
    let events = EventRecorder::new(client.clone(), NAME, clock.clone());
    let c = CronJobController::new(client, inf.cache(cronjobs()), inf.cache(jobs()), clock)
        .with_events(events);
    inf.get(cronjobs())
        .add_handler(Arc::new(CronJobController::on_cronjob(q.clone())));
    inf.get(jobs())
        .add_handler(Arc::new(CronJobController::on_job(q)));
    Arc::new(c)
}

#[async_trait::async_trait]
impl Reconciler for CronJobController {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &str) -> Result<Action, Error> {
        let Some(cj) = self.written.newest(key, self.cronjobs.get(key)) else {
            return Ok(Action::AwaitChange);
        };
        let ns = ownership::namespace(&cj).to_string();
        let now = self.clock.now();
        let uid = ownership::uid(&cj);
        let owned: Vec<Value> = self
            .jobs
            .list(Some(&ns))
            .into_iter()
            .filter(|j| {
                ownership::controller_ref(j).and_then(|r| r.get("uid")?.as_str()) == Some(uid)
            })
            .collect();

        // Bring `status.active` and `lastSuccessfulTime` in line with the Jobs.
        let mut status = cj.get("status").cloned().unwrap_or(json!({}));
        if !status.is_object() {
            status = json!({});
        }
        let active: Vec<Value> = status
            .get("active")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        // A Job missing from a lagging cache is looked up before it leaves `active`.
        let mut kept = Vec::with_capacity(active.len());
        for r in active {
            let job = match owned
                .iter()
                .find(|j| ownership::uid(j) == str_at(&r, "/uid"))
            {
                Some(j) => Some(j.clone()),
                None => self
                    .client
                    .get_opt(&jobs().in_namespace(&ns), str_at(&r, "/name"))
                    .await?
                    .filter(|j| ownership::uid(j) == str_at(&r, "/uid")),
            };
            match job.as_ref().map(|j| (j, job_finished(j))) {
                Some((_, None)) => kept.push(r),
                Some((j, Some(state))) => self.events.event(
                    &cj,
                    EventType::Normal,
                    "SawCompletedJob",
                    &format!(
                        "Saw completed job: {}, condition: {state}",
                        ownership::name(j)
                    ),
                ),
                None => self.events.event(
                    &cj,
                    EventType::Normal,
                    "MissingJob",
                    &format!("Active job went missing: {}", str_at(&r, "/name")),
                ),
            }
        }
        let mut active = kept;
        for j in &owned {
            if job_finished(j).is_none()
                && !is_deleting(j)
                && !active
                    .iter()
                    .any(|r| str_at(r, "/uid") == ownership::uid(j))
            {
                self.events.event(
                    &cj,
                    EventType::Warning,
                    "UnexpectedJob",
                    &format!(
                        "Saw a job that the controller did not create or forgot: {}",
                        ownership::name(j)
                    ),
                );
                active.push(job_ref(j));
            }
            if job_finished(j) == Some("Complete")
                && let Some(done) = j.pointer("/status/completionTime").and_then(Value::as_str)
            {
                let newer = status
                    .get("lastSuccessfulTime")
                    .and_then(Value::as_str)
                    .and_then(parse_time)
                    .is_none_or(|t| parse_time(done).is_some_and(|d| d > t));
                if newer {
                    status["lastSuccessfulTime"] = json!(done);
                }
            }
        }
        let mut action = Action::AwaitChange;
        let mut err = None;

        let schedule = cronjob_schedule::parse(str_at(&cj, "/spec/schedule"));
        let tz = match str_at(&cj, "/spec/timeZone") {
            "" => Ok(TimeZone::UTC),
            name => TimeZone::get(name).map_err(|e| e.to_string()),
        };
        let suspended = cj["spec"]["suspend"].as_bool() == Some(true);
        if let (Ok(s), Ok(tz), false, false) = (&schedule, &tz, suspended, is_deleting(&cj)) {
            let created = cj
                .pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .and_then(parse_time)
                .unwrap_or(now);
            let mut earliest = status
                .get("lastScheduleTime")
                .and_then(Value::as_str)
                .and_then(parse_time)
                .unwrap_or(created);
            let deadline = cj["spec"]["startingDeadlineSeconds"].as_i64();
            if let Some(d) = deadline
                && let Ok(floor) = now.checked_sub(jiff::SignedDuration::from_secs(d))
            {
                earliest = earliest.max(floor);
            }
            let (latest, missed) = most_recent(s, tz, earliest, now);
            if missed > MAX_MISSED {
                tracing::warn!(cronjob = %key, "too many missed start times; starting the latest");
                self.events.event(
                    &cj,
                    EventType::Warning,
                    "TooManyMissedTimes",
                    "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
                );
            }
            if let Some(at) = latest {
                let too_late = deadline.is_some_and(|d| {
                    at.checked_add(jiff::SignedDuration::from_secs(d))
                        .is_ok_and(|until| until < now)
                });
                let name = job_name(ownership::name(&cj), at);
                let exists = owned.iter().any(|j| ownership::name(j) == name)
                    || active.iter().any(|r| str_at(r, "/name") == name);
                let policy = str_at(&cj, "/spec/concurrencyPolicy");
                let forbidden = policy == "Forbid" && !active.is_empty();
                if too_late && !exists {
                    self.events.event(
                        &cj,
                        EventType::Warning,
                        "MissSchedule",
                        &format!(
                            "Missed scheduled time to start a job: {}",
                            at.strftime("%a, %d %b %Y %H:%M:%S +0000")
                        ),
                    );
                } else if forbidden && !exists {
                    self.events.event(
                        &cj,
                        EventType::Normal,
                        "JobAlreadyActive",
                        "Not starting job because prior execution is running and concurrency policy is Forbid",
                    );
                }
                if !too_late && !exists && !forbidden {
                    if policy == "Replace" {
                        for r in std::mem::take(&mut active) {
                            if let Some(j) = owned
                                .iter()
                                .find(|j| ownership::uid(j) == str_at(&r, "/uid"))
                                && let Err(e) = self.delete_job(&cj, j).await
                            {
                                err.get_or_insert(e);
                            }
                        }
                    }
                    match self.create_job(&cj, &name, at, tz).await {
                        Ok(j) => {
                            self.events.event(
                                &cj,
                                EventType::Normal,
                                "SuccessfulCreate",
                                &format!("Created job {}", ownership::name(&j)),
                            );
                            active.push(job_ref(&j));
                            status["lastScheduleTime"] = json!(rfc3339(at));
                        }
                        Err(e) => {
                            self.events.event(
                                &cj,
                                EventType::Warning,
                                "FailedCreate",
                                &format!("Error creating job: {}", e.message()),
                            );
                            err.get_or_insert(e);
                        }
                    }
                }
            }
            if let Some(next) = s.next(now, tz) {
                // A little past the minute so the clock has surely reached it (upstream: +100ms).
                let wait = next.duration_since(now).unsigned_abs() + Duration::from_millis(100);
                action = Action::Requeue(wait);
            }
        } else if let Err(e) = &schedule {
            tracing::warn!(cronjob = %key, error = %e, "unparseable schedule");
            self.events.event(
                &cj,
                EventType::Warning,
                "InvalidSchedule",
                &format!("invalid schedule: {} : {e}", str_at(&cj, "/spec/schedule")),
            );
        } else if let Err(e) = &tz {
            tracing::warn!(cronjob = %key, error = %e, "unknown time zone");
            self.events.event(
                &cj,
                EventType::Warning,
                "UnknownTimeZone",
                &format!(
                    "invalid timeZone: {}: {e}",
                    skiff_k8s_core::status::go_quote(str_at(&cj, "/spec/timeZone"))
                ),
            );
        }

        status["active"] = Value::Array(active);
        if status["active"].as_array().is_some_and(Vec::is_empty) {
            status.as_object_mut().map(|m| m.remove("active"));
        }
        if cj.get("status").cloned().unwrap_or(json!({})) != status {
            let mut ncj = cj.clone();
            ncj["status"] = status;
            let w = self
                .client
                .update_status(&cronjobs().in_namespace(&ns), ncj, &wopts())
                .await?;
            self.written.wrote(key, &w);
        }
        if let Err(e) = self.cleanup(&cj, &owned).await {
            err.get_or_insert(e);
        }
        match err {
            Some(e) => Err(e.into()),
            None => Ok(action),
        }
    }
}

impl CronJobController {
    /// The Job for activation `at` (`getJobFromTemplate2`); an existing Job of that name that we
    /// own is taken as already created.
    async fn create_job(
        &self,
        cj: &Value,
        name: &str,
        at: Timestamp,
        tz: &TimeZone,
    ) -> Result<Value, ApiError> {
        let ns = ownership::namespace(cj);
        let tmpl = &cj["spec"]["jobTemplate"];
        let mut annotations = tmpl
            .pointer("/metadata/annotations")
            .cloned()
            .unwrap_or(json!({}));
        annotations[SCHEDULED_TIMESTAMP_ANNOTATION] = json!(
            at.to_zoned(tz.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string()
                .replace("+00:00", "Z")
        );
        let job = json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {
                "name": name, "namespace": ns,
                "labels": tmpl.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                "annotations": annotations,
                "ownerReferences": [new_controller_ref(cj, "batch/v1", "CronJob")],
            },
            "spec": tmpl.get("spec").cloned().unwrap_or(json!({})),
        });
        let r = jobs().in_namespace(ns);
        match self.client.create(&r, job, &wopts()).await {
            Err(ApiError::AlreadyExists { .. }) => {
                let existing = self.client.get(&r, name).await?;
                let ours = ownership::controller_ref(&existing)
                    .and_then(|r| r.get("uid")?.as_str())
                    == Some(ownership::uid(cj));
                if ours {
                    Ok(existing)
                } else {
                    Err(ApiError::already_exists("batch", "jobs", name))
                }
            }
            other => other,
        }
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
        clock: Arc<FakeClock>,
        c: CronJobController,
    }

    impl Kit {
        fn new(spec: Value) -> Self {
            let fake = Arc::new(FakeClient::default());
            let mut cj = json!({
                "apiVersion": "batch/v1", "kind": "CronJob",
                "metadata": {"name": "tick", "namespace": "ns", "uid": "cj-uid",
                             "creationTimestamp": T0},
                "spec": {"schedule": "*/5 * * * *", "concurrencyPolicy": "Allow", "suspend": false,
                         "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                         "jobTemplate": {"metadata": {"labels": {"app": "tick"}},
                                         "spec": {"template": {"spec": {"restartPolicy": "Never",
                                             "containers": [{"name": "c", "image": "busybox"}]}}}}},
            });
            for (k, v) in spec.as_object().unwrap() {
                cj["spec"][k] = v.clone();
            }
            fake.seed(&cronjobs(), cj);
            let clock = FakeClock::new(T0.parse().unwrap());
            let c = CronJobController::new(
                fake.clone(),
                Cache::default(),
                Cache::default(),
                clock.clone(),
            );
            let mut k = Kit { fake, clock, c };
            k.sync();
            k
        }
        fn sync(&mut self) {
            self.c.cronjobs = Cache::default();
            self.c
                .cronjobs
                .insert(self.fake.object(&cronjobs(), "ns/tick").unwrap());
            self.c.jobs = Cache::default();
            for j in self.fake.objects(&jobs()) {
                self.c.jobs.insert(j);
            }
        }
        async fn run(&mut self) -> Action {
            let a = self.c.reconcile("ns/tick").await.unwrap();
            self.sync();
            a
        }
        fn cj(&self) -> Value {
            self.fake.object(&cronjobs(), "ns/tick").unwrap()
        }
        fn job_names(&self) -> Vec<String> {
            self.fake
                .objects(&jobs())
                .iter()
                .map(|j| ownership::name(j).to_string())
                .collect()
        }
        fn finish(&mut self, name: &str, state: &str) {
            let mut j = self.fake.object(&jobs(), &format!("ns/{name}")).unwrap();
            let now = rfc3339(self.clock.now());
            j["status"] =
                json!({"startTime": now, "conditions": [{"type": state, "status": "True"}]});
            if state == "Complete" {
                j["status"]["completionTime"] = json!(now);
            }
            self.fake.seed(&jobs(), j);
            self.sync();
        }
        fn advance_min(&self, m: u64) {
            self.clock.advance(Duration::from_secs(60 * m));
        }
    }

    #[tokio::test]
    async fn creates_a_job_per_activation_named_by_minutes() {
        let mut k = Kit::new(json!({}));
        let a = k.run().await;
        assert_eq!(a, Action::Requeue(Duration::from_millis(300_100)));
        assert!(k.job_names().is_empty(), "nothing due at creation time");
        k.advance_min(5);
        k.run().await;
        // 2026-01-01T00:05Z is 29,453,765 minutes after the epoch.
        assert_eq!(k.job_names(), ["tick-29453765"]);
        let j = k.fake.object(&jobs(), "ns/tick-29453765").unwrap();
        assert_eq!(j["metadata"]["labels"]["app"], "tick");
        assert_eq!(j["metadata"]["ownerReferences"][0]["kind"], "CronJob");
        assert_eq!(
            j["metadata"]["annotations"][SCHEDULED_TIMESTAMP_ANNOTATION],
            "2026-01-01T00:05:00Z"
        );
        let cj = k.cj();
        assert_eq!(cj["status"]["lastScheduleTime"], "2026-01-01T00:05:00Z");
        assert_eq!(cj["status"]["active"][0]["name"], "tick-29453765");
        // Run again at the same minute: no second Job.
        k.run().await;
        assert_eq!(k.job_names().len(), 1);
        k.finish("tick-29453765", "Complete");
        k.run().await;
        let cj = k.cj();
        assert!(cj["status"].get("active").is_none());
        assert_eq!(cj["status"]["lastSuccessfulTime"], "2026-01-01T00:05:00Z");
    }

    #[tokio::test]
    async fn events_follow_each_job_through_its_life() {
        let mut k =
            Kit::new(json!({"concurrencyPolicy": "Forbid", "successfulJobsHistoryLimit": 0}));
        k.c.events = Some(EventRecorder::new(k.fake.clone(), NAME, k.clock.clone()));
        k.advance_min(5);
        k.run().await;
        k.advance_min(5);
        k.run().await;
        k.finish("tick-29453765", "Complete");
        k.run().await;
        let n = |t: &str, r: &str, m: &str| (t.to_string(), r.to_string(), m.to_string());
        assert_eq!(
            k.fake.events().await,
            [
                n("Normal", "SuccessfulCreate", "Created job tick-29453765"),
                n(
                    "Normal",
                    "JobAlreadyActive",
                    "Not starting job because prior execution is running and concurrency policy is Forbid"
                ),
                n(
                    "Normal",
                    "SawCompletedJob",
                    "Saw completed job: tick-29453765, condition: Complete"
                ),
                n("Normal", "SuccessfulCreate", "Created job tick-29453770"),
                n("Normal", "SuccessfulDelete", "Deleted job tick-29453765"),
            ]
        );
    }

    #[tokio::test]
    async fn a_job_it_did_not_start_is_reported_and_adopted_into_active() {
        let mut k = Kit::new(json!({}));
        k.c.events = Some(EventRecorder::new(k.fake.clone(), NAME, k.clock.clone()));
        k.fake.seed(
            &jobs(),
            json!({"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": "stray", "namespace": "ns", "uid": "stray-uid",
                    "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
                        "name": "tick", "uid": "cj-uid", "controller": true}]},
                "spec": {}}),
        );
        k.sync();
        k.run().await;
        assert_eq!(k.cj()["status"]["active"][0]["name"], "stray");
        let evs = k.fake.events().await;
        assert_eq!(
            evs,
            [(
                "Warning".to_string(),
                "UnexpectedJob".to_string(),
                "Saw a job that the controller did not create or forgot: stray".to_string()
            )]
        );
    }

    #[tokio::test]
    async fn forbid_skips_while_running_and_replace_swaps() {
        let mut k = Kit::new(json!({"concurrencyPolicy": "Forbid"}));
        k.advance_min(5);
        k.run().await;
        k.advance_min(5);
        k.run().await;
        assert_eq!(k.job_names().len(), 1, "forbidden while the first runs");
        let mut cj = k.cj();
        cj["spec"]["concurrencyPolicy"] = json!("Replace");
        k.fake.seed(&cronjobs(), cj);
        k.sync();
        k.advance_min(5);
        k.run().await;
        assert_eq!(k.job_names(), ["tick-29453775"], "the old one was replaced");
        let w = k.fake.writes();
        assert!(
            w.contains(&"delete jobs ns/tick-29453765".to_string()),
            "{w:?}"
        );
    }

    #[tokio::test]
    async fn starting_deadline_and_suspend_skip_activations() {
        let mut k = Kit::new(json!({"startingDeadlineSeconds": 30, "suspend": true}));
        k.advance_min(5);
        k.run().await;
        assert!(k.job_names().is_empty(), "suspended");
        let mut cj = k.cj();
        cj["spec"]["suspend"] = json!(false);
        k.fake.seed(&cronjobs(), cj);
        k.sync();
        k.clock.advance(Duration::from_secs(31));
        k.run().await;
        assert!(k.job_names().is_empty(), "00:05 missed by more than 30s");
        // 00:10:01: the 00:10 activation is within the deadline.
        k.clock.advance(Duration::from_secs(270));
        k.run().await;
        assert_eq!(k.job_names(), ["tick-29453770"]);
    }

    #[tokio::test]
    async fn history_limits_delete_the_oldest_finished_jobs() {
        let mut k = Kit::new(json!({"successfulJobsHistoryLimit": 1, "failedJobsHistoryLimit": 0}));
        for _ in 0..3 {
            k.advance_min(5);
            k.run().await;
        }
        let names = k.job_names();
        assert_eq!(names.len(), 3);
        k.finish(&names[0], "Complete");
        k.finish(&names[1], "Complete");
        k.finish(&names[2], "Failed");
        k.run().await;
        assert_eq!(k.job_names(), [names[1].clone()]);
    }

    #[tokio::test]
    async fn time_zone_field_moves_the_activation() {
        let mut k = Kit::new(json!({"schedule": "0 9 * * *", "timeZone": "Asia/Tokyo"}));
        // 09:00 in Tokyo is 00:00 UTC: due a day after creation.
        let a = k.run().await;
        assert_eq!(a, Action::Requeue(Duration::from_millis(86_400_100)));
        k.advance_min(24 * 60);
        k.run().await;
        let j = &k.fake.objects(&jobs())[0];
        assert_eq!(
            j["metadata"]["annotations"][SCHEDULED_TIMESTAMP_ANNOTATION],
            "2026-01-02T09:00:00+09:00"
        );
    }

    #[test]
    fn a_year_of_missed_activations_finds_the_latest_quickly() {
        let s = cronjob_schedule::parse("*/7 * * * 1-5").unwrap();
        let t0: Timestamp = T0.parse().unwrap();
        // Saturday 2027-01-02 10:00: the latest activation is Friday 23:56 (minutes 0, 7, …, 56).
        let now: Timestamp = "2027-01-02T10:00:00Z".parse().unwrap();
        let (last, n) = most_recent(&s, &TimeZone::UTC, t0, now);
        assert_eq!(last.unwrap().to_string(), "2027-01-01T23:56:00Z");
        assert!(n > MAX_MISSED);
    }

    #[test]
    fn counts_missed_activations() {
        let s = cronjob_schedule::parse("* * * * *").unwrap();
        let t0: Timestamp = T0.parse().unwrap();
        let now = t0
            .checked_add(jiff::SignedDuration::from_secs(3600 * 5))
            .unwrap();
        let (last, n) = most_recent(&s, &TimeZone::UTC, t0, now);
        assert_eq!(last, Some(now));
        assert!(n > MAX_MISSED);
        assert_eq!(job_name("x", now), "x-29454060");
    }
}
