//! The Deployment controller (`pkg/controller/deployment`): one ReplicaSet per pod template,
//! named `<deployment>-<pod-template-hash>`, rolled by the RollingUpdate (maxSurge /
//! maxUnavailable) or Recreate strategy, numbered by the `deployment.kubernetes.io/revision`
//! annotation, with `Available`/`Progressing` conditions carrying upstream's reasons.
//!
//! Not yet: proportional scaling of several live ReplicaSets during a rollout (a scale during a
//! rollout goes to the new ReplicaSet), `paused`, and the deprecated `rollbackTo`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, DeleteOptions, ResourceRef, WriteOptions};
use skiff_k8s_core::status::ApiError;

use crate::ownership::{self, claim, controller_key, is_deleting, new_controller_ref, str_at};
use crate::replicaset::replicasets;
use crate::runtime::events::{EventRecorder, EventType};
use crate::runtime::informer::{Cache, Change, key_of};
use crate::runtime::queue::WorkQueue;
use crate::runtime::reconcile::{Action, Error, Reconciler};
use crate::runtime::{Clock, parse_time, rfc3339};

pub const NAME: &str = "deployment-controller";
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

pub fn deployments() -> ResourceRef {
    ResourceRef::new("apps", "v1", "deployments")
}

/// `rand.SafeEncodeString`'s alphabet: no vowels, no look-alike characters.
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn fnv32a(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// The `pod-template-hash` of a template: FNV-32a over the template (upstream hashes Go's spew
/// dump; we hash the canonical JSON, so values differ from a real cluster's but are stable), plus
/// `collisionCount` when set, then safe-encoded.
pub fn pod_template_hash(template: &Value, collision_count: Option<i64>) -> String {
    let mut bytes = serde_json::to_vec(template).unwrap_or_default();
    if let Some(c) = collision_count {
        bytes.extend_from_slice(&(c as u32).to_le_bytes());
    }
    fnv32a(&bytes)
        .to_string()
        .bytes()
        .map(|b| SAFE_ALPHABET[b as usize % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// A ReplicaSet's template with the hash label removed (`EqualIgnoreHash`).
fn template_without_hash(rs: &Value) -> Value {
    let mut t = rs.pointer("/spec/template").cloned().unwrap_or(Value::Null);
    if let Some(l) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove(POD_TEMPLATE_HASH_LABEL);
    }
    t
}

fn replicas(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn status_i64(obj: &Value, field: &str) -> i64 {
    obj.pointer(&format!("/status/{field}"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn revision(rs: &Value) -> i64 {
    str_at(
        rs,
        &format!(
            "/metadata/annotations/{}",
            REVISION_ANNOTATION.replace('/', "~1")
        ),
    )
    .parse()
    .unwrap_or(0)
}

/// An intOrString against `total`: percentages round up for surge, down for unavailability.
fn scaled(v: Option<&Value>, total: i64, round_up: bool) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) if round_up => (p * total + 99) / 100,
            Some(p) => p * total / 100,
            None => 0,
        },
        _ => {
            if round_up {
                (25 * total + 99) / 100
            } else {
                25 * total / 100
            }
        }
    }
}

fn is_recreate(d: &Value) -> bool {
    str_at(d, "/spec/strategy/type") == "Recreate"
}

/// (maxSurge, maxUnavailable) in pods (`ResolveFenceposts`); both zero would deadlock, so
/// unavailability becomes 1. Recreate has neither.
pub fn fenceposts(d: &Value) -> (i64, i64) {
    if is_recreate(d) {
        return (0, 0);
    }
    let ru = d.pointer("/spec/strategy/rollingUpdate");
    let total = replicas(d);
    let surge = scaled(ru.and_then(|r| r.get("maxSurge")), total, true);
    let unavailable = scaled(ru.and_then(|r| r.get("maxUnavailable")), total, false);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// Sets a condition as `SetDeploymentCondition` does: same status and reason is no change; a
/// status change moves lastTransitionTime; the condition goes to the end of the list.
fn set_condition(status: &mut Value, ty: &str, st: &str, reason: &str, message: &str, now: &str) {
    let mut conds: Vec<Value> = status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let current = conds
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ty))
        .cloned();
    let mut transition = now.to_string();
    if let Some(c) = &current {
        if str_at(c, "/status") == st && str_at(c, "/reason") == reason {
            return;
        }
        if str_at(c, "/status") == st {
            transition = str_at(c, "/lastTransitionTime").to_string();
        }
    }
    conds.retain(|c| c.get("type").and_then(Value::as_str) != Some(ty));
    conds.push(json!({
        "type": ty, "status": st,
        "lastUpdateTime": now, "lastTransitionTime": transition,
        "reason": reason, "message": message,
    }));
    status["conditions"] = Value::Array(conds);
}

fn condition<'a>(status: &'a Value, ty: &str) -> Option<&'a Value> {
    status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ty))
}

pub struct DeploymentController {
    /// `ScalingReplicaSet` events; none in unit tests that assert writes.
    events: Option<Arc<EventRecorder>>,
    client: Arc<dyn ApiClient>,
    deployments: Cache,
    replicasets: Cache,
    pods: Cache,
    clock: Arc<dyn Clock>,
}

fn wopts() -> WriteOptions {
    WriteOptions {
        field_manager: Some(NAME.into()),
        ..Default::default()
    }
}

impl DeploymentController {
    pub fn new(
        client: Arc<dyn ApiClient>,
        deployments: Cache,
        replicasets: Cache,
        pods: Cache,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client,
            events: None,
            deployments,
            replicasets,
            pods,
            clock,
        }
    }

    /// Records events as upstream's controller does.
    pub fn with_events(mut self, events: Arc<EventRecorder>) -> Self {
        self.events = Some(events);
        self
    }

    /// `Scaled up replica set web-7c5d from 1 to 3` on the Deployment, as upstream words it.
    fn record_scaling(&self, d: &Value, rs: &str, from: i64, to: i64) {
        if let Some(ev) = &self.events
            && from != to
        {
            let way = if to > from { "up" } else { "down" };
            let msg = format!("Scaled {way} replica set {rs} from {from} to {to}");
            ev.record(d, EventType::Normal, "ScalingReplicaSet", &msg);
        }
    }

    pub fn on_deployment(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| queue.add(&key_of(c.object()))
    }

    /// ReplicaSet changes queue their Deployment; orphans queue every Deployment that could adopt.
    pub fn on_replicaset(&self, queue: WorkQueue) -> impl Fn(&Change) + Send + Sync + use<> {
        let ds = self.deployments.clone();
        move |c| {
            let rs = c.object();
            match controller_key(rs, "Deployment") {
                Some(k) => queue.add(&k),
                None if !matches!(c, Change::Deleted(_)) => {
                    for d in ds.list(Some(ownership::namespace(rs))) {
                        if ownership::selector_of(&d).is_ok_and(|s| s.matches_object(rs)) {
                            queue.add(&key_of(&d));
                        }
                    }
                }
                None => {}
            }
        }
    }

    /// Pod deletions let a Recreate rollout continue once the old pods are gone.
    pub fn on_pod(&self, queue: WorkQueue) -> impl Fn(&Change) + Send + Sync + use<> {
        let rss = self.replicasets.clone();
        move |c| {
            if let Change::Deleted(p) = c
                && let Some(rs_key) = controller_key(p, "ReplicaSet")
                && let Some(rs) = rss.get(&rs_key)
                && let Some(d) = controller_key(&rs, "Deployment")
            {
                queue.add(&d);
            }
        }
    }

    /// Sets spec.replicas (and the replica annotations) of a ReplicaSet from the cache; a stale
    /// cache fails with a conflict and the Deployment is retried.
    async fn scale(&self, d: &Value, rs: &Value, to: i64) -> Result<Value, ApiError> {
        let (surge, _) = fenceposts(d);
        let from = replicas(rs);
        let mut rs = rs.clone();
        rs["spec"]["replicas"] = json!(to);
        let ann = &mut rs["metadata"]["annotations"];
        if !ann.is_object() {
            *ann = json!({});
        }
        ann[DESIRED_REPLICAS_ANNOTATION] = json!(replicas(d).to_string());
        ann[MAX_REPLICAS_ANNOTATION] = json!((replicas(d) + surge).to_string());
        let updated = self
            .client
            .update(
                &replicasets().in_namespace(ownership::namespace(&rs)),
                rs,
                &wopts(),
            )
            .await?;
        self.record_scaling(d, ownership::name(&updated), from, to);
        Ok(updated)
    }

    /// Replicas a new ReplicaSet may have now (`NewRSNewReplicas`).
    fn new_rs_replicas(d: &Value, all: &[Value], new_rs: Option<&Value>) -> i64 {
        if is_recreate(d) {
            return replicas(d);
        }
        let (surge, _) = fenceposts(d);
        let current: i64 = all.iter().map(replicas).sum();
        let max_total = replicas(d) + surge;
        let new_now = new_rs.map_or(0, replicas);
        if current >= max_total {
            return new_now;
        }
        new_now + (max_total - current).min(replicas(d) - new_now).max(0)
    }

    /// Finds or creates the ReplicaSet of the current template and keeps its revision the
    /// highest. Returns it and whether it was created now.
    async fn new_replicaset(
        &self,
        d: &mut Value,
        new_rs: Option<Value>,
        olds: &[Value],
        all: &[Value],
    ) -> Result<(Value, bool), Error> {
        let ns = ownership::namespace(d).to_string();
        let next_rev = olds.iter().map(revision).max().unwrap_or(0) + 1;
        let rs = match new_rs {
            Some(rs) => {
                if revision(&rs) < next_rev {
                    let mut rs = rs;
                    rs["metadata"]["annotations"][REVISION_ANNOTATION] =
                        json!(next_rev.to_string());
                    self.client
                        .update(&replicasets().in_namespace(&ns), rs, &wopts())
                        .await?
                } else {
                    rs
                }
            }
            None => {
                let collision = d.pointer("/status/collisionCount").and_then(Value::as_i64);
                let hash = pod_template_hash(&d["spec"]["template"], collision);
                let mut template = d["spec"]["template"].clone();
                template["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] = json!(hash);
                let mut selector = d["spec"]["selector"].clone();
                selector["matchLabels"][POD_TEMPLATE_HASH_LABEL] = json!(hash);
                let (surge, _) = fenceposts(d);
                let rs = json!({
                    "apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {
                        "name": format!("{}-{hash}", ownership::name(d)),
                        "namespace": ns,
                        "labels": template["metadata"]["labels"],
                        "annotations": {
                            REVISION_ANNOTATION: next_rev.to_string(),
                            DESIRED_REPLICAS_ANNOTATION: replicas(d).to_string(),
                            MAX_REPLICAS_ANNOTATION: (replicas(d) + surge).to_string(),
                        },
                        "ownerReferences": [new_controller_ref(d, "apps/v1", "Deployment")],
                    },
                    "spec": {
                        "replicas": Self::new_rs_replicas(d, all, None),
                        "minReadySeconds": d["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
                        "selector": selector,
                        "template": template,
                    },
                });
                match self
                    .client
                    .create(&replicasets().in_namespace(&ns), rs, &wopts())
                    .await
                {
                    Ok(rs) => {
                        self.record_scaling(d, ownership::name(&rs), 0, replicas(&rs));
                        self.set_revision(d, next_rev).await?;
                        return Ok((rs, true));
                    }
                    Err(ApiError::AlreadyExists { name, .. }) => {
                        // A different template hashed to the same name: count the collision so
                        // the next hash differs (`collisionCount`).
                        let existing = self
                            .client
                            .get(&replicasets().in_namespace(&ns), &name)
                            .await?;
                        let ours = controller_ref_uid(&existing) == Some(ownership::uid(d));
                        if ours && template_without_hash(&existing) == d["spec"]["template"] {
                            return Ok((existing, false));
                        }
                        let mut bumped = d.clone();
                        bumped["status"]["collisionCount"] = json!(collision.unwrap_or(0) + 1);
                        *d = self
                            .client
                            .update_status(&deployments().in_namespace(&ns), bumped, &wopts())
                            .await?;
                        return Err(Error::Invalid(format!(
                            "hash collision for ReplicaSet {name:?}; retrying with collisionCount"
                        )));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        self.set_revision(d, revision(&rs).max(next_rev)).await?;
        Ok((rs, false))
    }

    async fn set_revision(&self, d: &mut Value, rev: i64) -> Result<(), ApiError> {
        if revision(d) == rev {
            return Ok(());
        }
        let mut nd = d.clone();
        if !nd["metadata"]["annotations"].is_object() {
            nd["metadata"]["annotations"] = json!({});
        }
        nd["metadata"]["annotations"][REVISION_ANNOTATION] = json!(rev.to_string());
        *d = self
            .client
            .update(
                &deployments().in_namespace(ownership::namespace(d)),
                nd,
                &wopts(),
            )
            .await?;
        Ok(())
    }

    /// One rolling step: grow the new ReplicaSet within maxSurge, shrink old ones within
    /// maxUnavailable (`rolloutRolling`). Returns whether anything was scaled.
    async fn roll(&self, d: &Value, new_rs: &Value, olds: &[Value]) -> Result<bool, Error> {
        let want = replicas(d);
        let mut all: Vec<Value> = olds.to_vec();
        all.push(new_rs.clone());
        // reconcileNewReplicaSet
        let new_now = replicas(new_rs);
        if new_now > want {
            self.scale(d, new_rs, want).await?;
            return Ok(true);
        }
        if new_now < want {
            let to = Self::new_rs_replicas(d, &all, Some(new_rs));
            if to != new_now {
                self.scale(d, new_rs, to).await?;
                return Ok(true);
            }
        }
        // reconcileOldReplicaSets
        let old_pods: i64 = olds.iter().map(replicas).sum();
        if old_pods == 0 {
            return Ok(false);
        }
        let (_, max_unavailable) = fenceposts(d);
        let all_pods: i64 = all.iter().map(replicas).sum();
        let min_available = want - max_unavailable;
        let new_unavailable = replicas(new_rs) - status_i64(new_rs, "availableReplicas");
        let mut budget = all_pods - min_available - new_unavailable;
        if budget <= 0 {
            return Ok(false);
        }
        let mut olds: Vec<&Value> = olds.iter().filter(|r| replicas(r) > 0).collect();
        olds.sort_by_key(|r| str_at(r, "/metadata/creationTimestamp").to_string());
        let mut scaled_any = false;
        // First the old pods that are not available anyway (`cleanupUnhealthyReplicas`).
        let mut after: Vec<(Value, i64)> = Vec::new();
        for rs in olds {
            let unhealthy = replicas(rs) - status_i64(rs, "availableReplicas");
            let cut = unhealthy.min(budget).max(0);
            let mut current = replicas(rs);
            if cut > 0 {
                current -= cut;
                budget -= cut;
                self.scale(d, rs, current).await?;
                scaled_any = true;
                after.push((rs.clone(), current));
            } else {
                after.push((rs.clone(), current));
            }
        }
        // Then healthy ones, keeping minAvailable (`scaleDownOldReplicaSetsForRollingUpdate`).
        let available: i64 = all.iter().map(|r| status_i64(r, "availableReplicas")).sum();
        let mut allowed = available - min_available;
        if !scaled_any && allowed > 0 {
            for (rs, current) in after {
                if allowed <= 0 {
                    break;
                }
                let cut = current.min(allowed);
                if cut > 0 {
                    self.scale(d, &rs, current - cut).await?;
                    allowed -= cut;
                    scaled_any = true;
                }
            }
        }
        Ok(scaled_any)
    }

    /// Recreate: every old pod gone before the new ReplicaSet grows (`rolloutRecreate`).
    async fn recreate(
        &self,
        d: &mut Value,
        new_rs: Option<Value>,
        olds: &[Value],
        all: &[Value],
    ) -> Result<Option<(Value, bool)>, Error> {
        let mut scaled = false;
        for rs in olds.iter().filter(|r| replicas(r) > 0) {
            self.scale(d, rs, 0).await?;
            scaled = true;
        }
        let old_uids: Vec<&str> = olds.iter().map(ownership::uid).collect();
        let old_pods_running = self
            .pods
            .list(Some(ownership::namespace(d)))
            .iter()
            .any(|p| {
                str_at(p, "/status/phase") != "Succeeded"
                    && str_at(p, "/status/phase") != "Failed"
                    && controller_ref_uid(p).is_some_and(|u| old_uids.contains(&u))
            });
        if scaled || old_pods_running {
            return Ok(new_rs.map(|r| (r, false)));
        }
        let (rs, created) = self.new_replicaset(d, new_rs, olds, all).await?;
        if replicas(&rs) != replicas(d) {
            let rs = self.scale(d, &rs, replicas(d)).await?;
            return Ok(Some((rs, created)));
        }
        Ok(Some((rs, created)))
    }

    /// Deletes fully scaled-down old ReplicaSets beyond `revisionHistoryLimit`, oldest first.
    async fn cleanup(&self, d: &Value, olds: &[Value]) -> Result<(), ApiError> {
        let limit = d["spec"]["revisionHistoryLimit"].as_i64().unwrap_or(10);
        let mut idle: Vec<&Value> = olds
            .iter()
            .filter(|r| replicas(r) == 0 && status_i64(r, "replicas") == 0 && !is_deleting(r))
            .collect();
        let excess = idle.len() as i64 - limit;
        if excess <= 0 {
            return Ok(());
        }
        idle.sort_by_key(|r| revision(r));
        for rs in idle.into_iter().take(excess as usize) {
            let opts = DeleteOptions {
                precondition_uid: Some(ownership::uid(rs).to_string()),
                ..Default::default()
            };
            match self
                .client
                .delete(
                    &replicasets().in_namespace(ownership::namespace(rs)),
                    ownership::name(rs),
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

    /// Computes status and conditions (`syncRolloutStatus`); returns the new status and, while
    /// the rollout is unfinished, when to look at the progress deadline again.
    fn rollout_status(
        &self,
        d: &Value,
        new_rs: Option<&Value>,
        all: &[Value],
        created: bool,
    ) -> (Value, Option<Duration>) {
        let now = self.clock.now();
        let now_s = rfc3339(now);
        let want = replicas(d);
        let sum = |f: &str| all.iter().map(|r| status_i64(r, f)).sum::<i64>();
        let prev = d.get("status").cloned().unwrap_or(json!({}));
        let mut st = prev.clone();
        st["observedGeneration"] = d["metadata"]["generation"].clone();
        st["replicas"] = json!(sum("replicas"));
        st["updatedReplicas"] = json!(new_rs.map_or(0, |r| status_i64(r, "replicas")));
        st["readyReplicas"] = json!(sum("readyReplicas"));
        st["availableReplicas"] = json!(sum("availableReplicas"));
        st["unavailableReplicas"] = json!((want - sum("availableReplicas")).max(0));
        let (_, max_unavailable) = fenceposts(d);
        if sum("availableReplicas") >= want - max_unavailable {
            set_condition(
                &mut st,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                &now_s,
            );
        } else {
            set_condition(
                &mut st,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                &now_s,
            );
        }
        let Some(rs) = new_rs else {
            return (st, None);
        };
        let rs_name = ownership::name(rs);
        let complete = status_i64(&st, "updatedReplicas") == want
            && status_i64(&st, "replicas") == want
            && status_i64(&st, "availableReplicas") == want;
        let progressed = ["updatedReplicas", "readyReplicas", "availableReplicas"]
            .iter()
            .any(|f| status_i64(&st, f) > status_i64(&prev, f))
            || status_i64(&st, "replicas") - status_i64(&st, "updatedReplicas")
                < status_i64(&prev, "replicas") - status_i64(&prev, "updatedReplicas");
        let deadline = d["spec"]["progressDeadlineSeconds"].as_i64().unwrap_or(600);
        if complete {
            set_condition(
                &mut st,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                &format!("ReplicaSet {rs_name:?} has successfully progressed."),
                &now_s,
            );
            return (st, None);
        }
        if created {
            set_condition(
                &mut st,
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                &format!("Created new replica set {rs_name:?}"),
                &now_s,
            );
        } else if progressed {
            // Progress renews lastUpdateTime even with the same reason.
            if let Some(c) = condition(&st, "Progressing").cloned()
                && str_at(&c, "/reason") == "ReplicaSetUpdated"
            {
                let conds = st["conditions"].as_array_mut().expect("set above");
                for x in conds.iter_mut().filter(|x| x["type"] == "Progressing") {
                    x["lastUpdateTime"] = json!(now_s);
                }
            } else {
                set_condition(
                    &mut st,
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    &format!("ReplicaSet {rs_name:?} is progressing."),
                    &now_s,
                );
            }
        } else if condition(&st, "Progressing").is_none() {
            set_condition(
                &mut st,
                "Progressing",
                "True",
                "FoundNewReplicaSet",
                &format!("Found new replica set {rs_name:?}"),
                &now_s,
            );
        }
        let last = condition(&st, "Progressing")
            .map(|c| str_at(c, "/lastUpdateTime"))
            .and_then(parse_time)
            .unwrap_or(now);
        let until = last
            .checked_add(jiff::SignedDuration::from_secs(deadline))
            .unwrap_or(now);
        if until <= now {
            set_condition(
                &mut st,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                &format!("ReplicaSet {rs_name:?} has timed out progressing."),
                &now_s,
            );
            return (st, None);
        }
        let left = until.duration_since(now).as_secs().max(1) as u64;
        (st, Some(Duration::from_secs(left)))
    }
}

fn controller_ref_uid(obj: &Value) -> Option<&str> {
    ownership::controller_ref(obj)?
        .get("uid")
        .and_then(Value::as_str)
}

#[async_trait::async_trait]
impl Reconciler for DeploymentController {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &str) -> Result<Action, Error> {
        let Some(mut d) = self.deployments.get(key) else {
            return Ok(Action::AwaitChange);
        };
        let ns = ownership::namespace(&d).to_string();
        let selector = ownership::selector_of(&d).map_err(Error::Invalid)?;
        if selector.is_nothing() {
            // Upstream refuses a selector that selects everything rather than adopt it all.
            return Ok(Action::AwaitChange);
        }
        let candidates = self.replicasets.list(Some(&ns));
        let owned = claim(
            self.client.as_ref(),
            &replicasets().in_namespace(&ns),
            &d,
            new_controller_ref(&d, "apps/v1", "Deployment"),
            &selector,
            candidates,
            NAME,
        )
        .await?;
        let template = d["spec"]["template"].clone();
        let mut sorted = owned.clone();
        sorted.sort_by_key(|r| str_at(r, "/metadata/creationTimestamp").to_string());
        let new_rs = sorted
            .iter()
            .find(|r| template_without_hash(r) == template)
            .cloned();
        let new_uid = new_rs.as_ref().map(|r| ownership::uid(r).to_string());
        let olds: Vec<Value> = owned
            .iter()
            .filter(|r| Some(ownership::uid(r).to_string()) != new_uid)
            .cloned()
            .collect();

        let (new_rs, created) = if is_deleting(&d) {
            (new_rs, false)
        } else if is_recreate(&d) {
            match self.recreate(&mut d, new_rs, &olds, &owned).await? {
                Some((rs, c)) => (Some(rs), c),
                None => (None, false),
            }
        } else {
            let (rs, created) = self.new_replicaset(&mut d, new_rs, &olds, &owned).await?;
            let scaled = self.roll(&d, &rs, &olds).await?;
            let complete = !scaled
                && replicas(&rs) == replicas(&d)
                && status_i64(&rs, "availableReplicas") == replicas(&d)
                && olds.iter().all(|r| replicas(r) == 0);
            if complete {
                self.cleanup(&d, &olds).await?;
            }
            (Some(rs), created)
        };

        let mut all = olds.clone();
        if let Some(rs) = &new_rs
            && !all.iter().any(|r| ownership::uid(r) == ownership::uid(rs))
        {
            all.push(rs.clone());
        }
        let (status, recheck) = self.rollout_status(&d, new_rs.as_ref(), &all, created);
        if d.get("status") != Some(&status) {
            let mut nd = d.clone();
            nd["status"] = status;
            self.client
                .update_status(&deployments().in_namespace(&ns), nd, &wopts())
                .await?;
        }
        Ok(recheck.map_or(Action::AwaitChange, Action::Requeue))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::FakeClock;
    use crate::testing::FakeClient;

    fn deploy(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns", "generation": 1},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "c", "image": image}]}},
            },
        })
    }

    fn controller(fake: &Arc<FakeClient>) -> DeploymentController {
        DeploymentController::new(
            fake.clone(),
            Cache::default(),
            Cache::default(),
            Cache::default(),
            FakeClock::new("2026-01-01T00:00:00Z".parse().unwrap()),
        )
    }

    #[test]
    fn fenceposts_round_like_upstream() {
        assert_eq!(fenceposts(&deploy(10, "x")), (3, 2));
        assert_eq!(fenceposts(&deploy(1, "x")), (1, 0));
        let mut d = deploy(3, "x");
        d["spec"]["strategy"]["rollingUpdate"] = json!({"maxSurge": 0, "maxUnavailable": "0%"});
        assert_eq!(fenceposts(&d), (0, 1));
        let h = pod_template_hash(&d["spec"]["template"], None);
        assert!(h.bytes().all(|b| SAFE_ALPHABET.contains(&b)));
        assert_ne!(h, pod_template_hash(&d["spec"]["template"], Some(1)));
    }

    #[tokio::test]
    async fn first_sync_creates_the_replicaset_and_marks_revision_1() {
        let fake = Arc::new(FakeClient::default());
        let c = controller(&fake);
        c.deployments
            .insert(fake.seed(&deployments(), deploy(3, "nginx:1")));
        let action = c.reconcile("ns/web").await.unwrap();
        let hash = pod_template_hash(&deploy(3, "nginx:1")["spec"]["template"], None);
        assert_eq!(
            fake.writes(),
            [
                format!("create replicasets ns/web-{hash}"),
                "update deployments ns/web".into(),
                "update_status deployments ns/web".into(),
            ]
        );
        assert_eq!(action, Action::Requeue(Duration::from_secs(600)));
        let rs = fake
            .object(&replicasets(), &format!("ns/web-{hash}"))
            .unwrap();
        assert_eq!(rs["spec"]["replicas"], 3);
        assert_eq!(
            rs["spec"]["selector"]["matchLabels"][POD_TEMPLATE_HASH_LABEL],
            json!(hash)
        );
        assert_eq!(
            rs["spec"]["template"]["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL],
            json!(hash)
        );
        assert_eq!(rs["metadata"]["annotations"][REVISION_ANNOTATION], "1");
        assert_eq!(rs["metadata"]["ownerReferences"][0]["kind"], "Deployment");
        let d = fake.object(&deployments(), "ns/web").unwrap();
        assert_eq!(d["metadata"]["annotations"][REVISION_ANNOTATION], "1");
        let conds = d["status"]["conditions"].as_array().unwrap();
        assert_eq!(conds[0]["type"], "Available");
        assert_eq!(conds[0]["reason"], "MinimumReplicasUnavailable");
        assert_eq!(conds[1]["reason"], "NewReplicaSetCreated");
        assert_eq!(
            conds[1]["message"],
            format!("Created new replica set \"web-{hash}\"")
        );
    }

    #[tokio::test]
    async fn a_new_template_surges_then_scales_old_down_within_max_unavailable() {
        let fake = Arc::new(FakeClient::default());
        let c = controller(&fake);
        let d1 = deploy(4, "nginx:1");
        let h1 = pod_template_hash(&d1["spec"]["template"], None);
        let mut old = json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": format!("web-{h1}"), "namespace": "ns",
                         "creationTimestamp": "2026-01-01T00:00:00Z",
                         "annotations": {REVISION_ANNOTATION: "1"}},
            "spec": {"replicas": 4, "template": d1["spec"]["template"].clone()},
            "status": {"replicas": 4, "readyReplicas": 4, "availableReplicas": 4},
        });
        old["spec"]["template"]["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] = json!(h1);
        old["metadata"]["labels"] = old["spec"]["template"]["metadata"]["labels"].clone();
        let mut d2 = deploy(4, "nginx:2");
        d2["metadata"]["annotations"] = json!({REVISION_ANNOTATION: "1"});
        let d = fake.seed(&deployments(), d2);
        old["metadata"]["ownerReferences"] =
            json!([new_controller_ref(&d, "apps/v1", "Deployment")]);
        c.replicasets.insert(fake.seed(&replicasets(), old));
        c.deployments.insert(d);
        c.reconcile("ns/web").await.unwrap();
        let h2 = pod_template_hash(&deploy(4, "nginx:2")["spec"]["template"], None);
        // 25% surge of 4 = 1 new pod; 25% unavailable = 1 old pod can go at once.
        assert_eq!(
            fake.writes(),
            [
                format!("create replicasets ns/web-{h2}"),
                "update deployments ns/web".into(),
                format!("update replicasets ns/web-{h1}"),
                "update_status deployments ns/web".into(),
            ]
        );
        let new = fake
            .object(&replicasets(), &format!("ns/web-{h2}"))
            .unwrap();
        assert_eq!(new["spec"]["replicas"], 1);
        assert_eq!(new["metadata"]["annotations"][REVISION_ANNOTATION], "2");
        let old = fake
            .object(&replicasets(), &format!("ns/web-{h1}"))
            .unwrap();
        assert_eq!(old["spec"]["replicas"], 3);
        let d = fake.object(&deployments(), "ns/web").unwrap();
        assert_eq!(d["metadata"]["annotations"][REVISION_ANNOTATION], "2");
        assert_eq!(d["status"]["updatedReplicas"], 0);
        assert_eq!(d["status"]["availableReplicas"], 4);
    }

    #[tokio::test]
    async fn recreate_scales_old_to_zero_and_waits_for_its_pods() {
        let fake = Arc::new(FakeClient::default());
        let c = controller(&fake);
        let mut dd = deploy(2, "nginx:2");
        dd["spec"]["strategy"] = json!({"type": "Recreate"});
        let d = fake.seed(&deployments(), dd);
        let mut old = json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-old", "namespace": "ns", "labels": {"app": "web"},
                         "ownerReferences": [new_controller_ref(&d, "apps/v1", "Deployment")]},
            "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {}}},
        });
        old = fake.seed(&replicasets(), old);
        c.pods
            .insert(json!({"metadata": {"name": "p", "namespace": "ns",
            "ownerReferences": [new_controller_ref(&old, "apps/v1", "ReplicaSet")]},
            "status": {"phase": "Running"}}));
        c.replicasets.insert(old);
        c.deployments.insert(d);
        c.reconcile("ns/web").await.unwrap();
        assert_eq!(
            fake.writes(),
            [
                "update replicasets ns/web-old",
                "update_status deployments ns/web"
            ]
        );
        assert!(
            fake.objects(&replicasets())
                .iter()
                .all(|r| r["metadata"]["name"] == "web-old"),
            "no new ReplicaSet while old pods run"
        );
    }
}
