//! Pod stages as data (kwok's Stage idea, style.md practice 7): what a stage selects, how long it
//! waits, and the typed actions it takes. The YAML files live under `crates/nodes/stages/pod/` and
//! are embedded here; [`PROFILES`] is the one table that says which files make up each profile.
//!
//! A stage's selector always excludes pods being deleted unless it says `deleting: true`, so the
//! deletion stage cannot race a start-up stage. Selectors are ANDed; a profile's stages are tried
//! in table order and the first match wins (fault stages come first so they override the normal
//! path).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::sim::duration::{GoDuration, parse_go_duration};

/// A pod stage: selector + delay + next.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Stage {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default)]
    pub selector: Selector,
    #[serde(default)]
    pub delay: Delay,
    pub next: Next,
}

/// Which pods a stage applies to. Every field given must hold.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Selector {
    /// `status.phase` in this list (a pod without a phase is `Pending`); empty means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<String>,
    /// Whether `metadata.deletionTimestamp` is set; unset means `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleting: Option<bool>,
    /// Condition type → `True`, `False`, `Unknown` or `Absent`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub conditions: BTreeMap<String, String>,
    /// Kind of the controlling owner reference (`Job`, `ReplicaSet`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owner_kinds: Vec<String>,
    /// `spec.restartPolicy` (default `Always`) in this list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restart_policies: Vec<String>,
    /// Annotation key → `Exists` / `DoesNotExist`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, Presence>,
    /// Some main container is in this state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers: Option<ContainerMatch>,
    /// Whether the pod has `spec.readinessGates`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_gates: Option<bool>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum Presence {
    Exists,
    DoesNotExist,
}

/// A container state to look for.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerMatch {
    pub state: StateKind,
    /// The waiting/terminated reason, when it matters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The container's `ready` flag, when it matters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum StateKind {
    Waiting,
    Running,
    Terminated,
}

/// How long a stage waits once it matches. The base comes from the first source that applies:
/// the annotation, the readiness probes, the crash back-off, else `base`; `jitter` adds a
/// deterministic share of itself per pod (hash of uid and stage) so the same pod always gets the
/// same delay and thousands of pods do not move in lockstep.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Delay {
    #[serde(default)]
    pub base: GoDuration,
    #[serde(default)]
    pub jitter: GoDuration,
    /// An annotation holding a Go duration (`5s`, `1m30s`) that replaces `base` (and drops the jitter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_annotation: Option<String>,
    /// Wait the longest `readinessProbe.initialDelaySeconds` of the main containers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub readiness_probe: bool,
    /// Wait the kubelet's crash back-off for the container's restart count (10 s doubling to 5 min).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub crash_backoff: bool,
}

/// What a stage does.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Next {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The kubelet took the pod: `startTime` (if unset) and `hostIP`/`hostIPs` (value `node_ip`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub acknowledge: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_containers: Option<ContainerAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers: Option<ContainerAction>,
    /// Conditions set explicitly; `Initialized`, `ContainersReady` and `Ready` are derived from
    /// the containers after every stage, as the kubelet's status manager does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ConditionSet>,
    /// Events to emit, each for the containers whose transition it describes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventKind>,
    /// Delete the pod with grace period 0 after the status write.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete: bool,
}

/// The pod sandbox (network namespace) and its IP.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum SandboxAction {
    /// Assign the pod IP (value `pod_ip`; `node_ip` for hostNetwork pods), set `podIP`/`podIPs`
    /// and `PodReadyToStartContainers=True`.
    Create,
    /// Tear it down: `PodReadyToStartContainers=False` and the IP goes back to the network.
    Remove,
    /// Give the IP back without a status change (the pod is about to disappear).
    Release,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConditionSet {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The new state of a set of containers (init or main).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerAction {
    /// Only the containers currently in this state change; unset means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<ContainerMatch>,
    pub state: StateKind,
    /// Waiting or terminated reason (`ContainerCreating` reads `PodInitializing` for main
    /// containers while init containers are unfinished, as upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Exit code of a terminated state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<ExitCode>,
    /// For a running container that stops and waits (a crash): how its run ended, kept in
    /// `lastState.terminated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_state: Option<Exit>,
    #[serde(default)]
    pub ready: Readiness,
    /// The container is started again (`restartCount` + 1, a new container ID).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Exit {
    pub reason: String,
    pub exit_code: ExitCode,
}

/// A literal exit code, or one read from an annotation.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum ExitCode {
    Literal(i64),
    #[serde(rename_all = "camelCase")]
    FromAnnotation {
        from_annotation: String,
        default: i64,
    },
}

impl ExitCode {
    pub fn resolve(&self, pod: &Value) -> i64 {
        match self {
            ExitCode::Literal(n) => *n,
            ExitCode::FromAnnotation {
                from_annotation,
                default,
            } => annotation(pod, from_annotation)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(*default),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum Readiness {
    True,
    #[default]
    False,
    /// Ready at once unless the container has a `readinessProbe` (a later stage waits its
    /// `initialDelaySeconds`).
    UnlessProbed,
}

/// The kubelet events a stage can emit, with upstream reasons and wording (see `engine.rs`).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum EventKind {
    /// `Pulling` + `Pulled`, or `Pulled` "already present on machine", for containers that start.
    Pulled,
    /// `Created container: <name>` for containers that start.
    Created,
    /// `Started container <name>` for containers that start.
    Started,
    /// `Stopping container <name>` for running containers that stop.
    Killing,
    /// Warning `Back-off restarting failed container …` for containers entering CrashLoopBackOff.
    BackOff,
}

/// A stage file that does not parse.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum StageError {
    #[error("stage file {file}: {message}")]
    Parse { file: String, message: String },
    #[error("unknown pod stage profile {0:?} (known: general, fast)")]
    UnknownProfile(String),
}

/// An embedded stage file: (path under `stages/pod/`, YAML).
pub type StageFile = (&'static str, &'static str);

macro_rules! stage_file {
    ($path:literal) => {
        (
            $path,
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/stages/pod/", $path)),
        )
    };
}

/// Fault stages (opt-in by annotation, kwok chaos); first in every profile so they win.
const CHAOS: &[StageFile] = &[
    stage_file!("chaos/running-never-ready.yaml"),
    stage_file!("chaos/fail-never.yaml"),
    stage_file!("chaos/fail-restart.yaml"),
    stage_file!("chaos/crash-loop-never.yaml"),
    stage_file!("chaos/crash-loop.yaml"),
    stage_file!("chaos/restart.yaml"),
];

/// Stages shared by every profile (readiness, completion).
const COMMON: &[StageFile] = &[
    stage_file!("common/ready.yaml"),
    stage_file!("common/complete.yaml"),
    stage_file!("common/complete-annotated.yaml"),
    stage_file!("common/readiness-gates.yaml"),
];

/// The default profile: every step upstream shows (ContainerCreating, init containers, Running,
/// Ready) with kubelet events.
const GENERAL: &[StageFile] = &[
    stage_file!("general/delete.yaml"),
    stage_file!("general/create.yaml"),
    stage_file!("general/init-containers.yaml"),
    stage_file!("general/running.yaml"),
];

/// One write per pod to Running and no events: for thousands of nodes and 100k pods.
const FAST: &[StageFile] = &[
    stage_file!("fast/delete.yaml"),
    stage_file!("fast/running-never-ready.yaml"),
    stage_file!("fast/running.yaml"),
];

/// The profile table: name → stage files, in match order.
pub const PROFILES: &[(&str, &[&[StageFile]])] = &[
    ("general", &[CHAOS, GENERAL, COMMON]),
    ("fast", &[CHAOS, FAST, COMMON]),
];

/// The default profile's name.
pub const DEFAULT_PROFILE: &str = "general";

/// A parsed profile: its stages in match order.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: String,
    pub stages: Vec<Stage>,
}

impl Profile {
    /// One of the embedded [`PROFILES`].
    pub fn builtin(name: &str) -> Result<Profile, StageError> {
        let (_, groups) = PROFILES
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| StageError::UnknownProfile(name.to_string()))?;
        let files: Vec<(&str, &str)> = groups.iter().flat_map(|g| g.iter().copied()).collect();
        Profile::parse(name, &files)
    }

    /// A profile from `(file name, YAML)` pairs.
    pub fn parse(name: &str, files: &[(&str, &str)]) -> Result<Profile, StageError> {
        let stages = files
            .iter()
            .map(|(file, src)| {
                serde_saphyr::from_str::<Stage>(src).map_err(|e| StageError::Parse {
                    file: file.to_string(),
                    message: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Profile {
            name: name.to_string(),
            stages,
        })
    }

    /// The first stage whose selector holds for `pod`.
    pub fn select(&self, pod: &Value) -> Option<(usize, &Stage)> {
        self.stages
            .iter()
            .enumerate()
            .find(|(_, s)| s.selector.matches(pod))
    }
}

pub(crate) fn annotation<'a>(pod: &'a Value, key: &str) -> Option<&'a str> {
    pod.get("metadata")?.get("annotations")?.get(key)?.as_str()
}

pub(crate) fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .unwrap_or("Pending")
}

pub(crate) fn condition_status<'a>(pod: &'a Value, type_: &str) -> Option<&'a str> {
    pod.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))?
        .get("status")?
        .as_str()
}

pub(crate) fn is_deleting(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

pub(crate) fn controller_kind(pod: &Value) -> Option<&str> {
    let owners = pod.pointer("/metadata/ownerReferences")?.as_array()?;
    owners
        .iter()
        .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
        .or_else(|| owners.first())?
        .get("kind")?
        .as_str()
}

pub(crate) fn restart_policy(pod: &Value) -> &str {
    pod.pointer("/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("Always")
}

impl ContainerMatch {
    /// Whether one container status matches.
    pub fn matches_status(&self, status: &Value) -> bool {
        let key = match self.state {
            StateKind::Waiting => "waiting",
            StateKind::Running => "running",
            StateKind::Terminated => "terminated",
        };
        let Some(state) = status.get("state").and_then(|s| s.get(key)) else {
            return false;
        };
        if let Some(reason) = &self.reason
            && state.get("reason").and_then(Value::as_str) != Some(reason.as_str())
        {
            return false;
        }
        if let Some(ready) = self.ready
            && status
                .get("ready")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                != ready
        {
            return false;
        }
        true
    }
}

impl Selector {
    pub fn matches(&self, pod: &Value) -> bool {
        if is_deleting(pod) != self.deleting.unwrap_or(false) {
            return false;
        }
        if !self.phases.is_empty() && !self.phases.iter().any(|p| p == phase(pod)) {
            return false;
        }
        for (type_, want) in &self.conditions {
            let have = condition_status(pod, type_).unwrap_or("Absent");
            if have != want {
                return false;
            }
        }
        if !self.owner_kinds.is_empty() {
            let kind = controller_kind(pod).unwrap_or("");
            if !self.owner_kinds.iter().any(|k| k == kind) {
                return false;
            }
        }
        if !self.restart_policies.is_empty()
            && !self
                .restart_policies
                .iter()
                .any(|p| p == restart_policy(pod))
        {
            return false;
        }
        for (key, presence) in &self.annotations {
            let has = annotation(pod, key).is_some();
            if has != (*presence == Presence::Exists) {
                return false;
            }
        }
        if let Some(want) = self.readiness_gates {
            let has = pod
                .pointer("/spec/readinessGates")
                .and_then(Value::as_array)
                .is_some_and(|g| !g.is_empty());
            if has != want {
                return false;
            }
        }
        if let Some(m) = &self.containers {
            let any = pod
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .is_some_and(|l| l.iter().any(|c| m.matches_status(c)));
            if !any {
                return false;
            }
        }
        true
    }
}

/// The kubelet's crash back-off: 10 s, doubled per restart, at most 5 min
/// (`kubelet.go` `backOffPeriod`/`MaxContainerBackOff`).
pub fn crash_backoff(restart_count: u64) -> Duration {
    let secs = 10u64.saturating_mul(1u64 << restart_count.min(16));
    Duration::from_secs(secs.min(300))
}

impl Delay {
    /// The wait for `pod` in stage `stage_name`, before jitter.
    pub fn base_for(&self, pod: &Value) -> (Duration, bool) {
        if let Some(key) = &self.from_annotation
            && let Some(d) = annotation(pod, key).and_then(|v| parse_go_duration(v).ok())
        {
            return (d, false);
        }
        if self.readiness_probe {
            let secs = containers(pod, "containers")
                .filter_map(|c| c.pointer("/readinessProbe/initialDelaySeconds"))
                .filter_map(Value::as_u64)
                .max()
                .unwrap_or(0);
            return (self.base.0 + Duration::from_secs(secs), true);
        }
        if self.crash_backoff {
            let restarts = pod
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|c| {
                    c.pointer("/state/waiting/reason").and_then(Value::as_str)
                        == Some("CrashLoopBackOff")
                })
                .filter_map(|c| c.get("restartCount").and_then(Value::as_u64))
                .max()
                .unwrap_or(0);
            return (crash_backoff(restarts), false);
        }
        (self.base.0, true)
    }

    /// The wait including this pod's share of the jitter.
    pub fn for_pod(&self, pod: &Value, stage_name: &str) -> Duration {
        let (base, jitter) = self.base_for(pod);
        if !jitter || self.jitter.0.is_zero() {
            return base;
        }
        let uid = pod
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("");
        let h = crate::sim::hash::hash64(&[uid, stage_name], 0);
        let span = self.jitter.0.as_millis().max(1) as u64;
        base + Duration::from_millis(h % span)
    }
}

pub(crate) fn containers<'a>(pod: &'a Value, list: &str) -> impl Iterator<Item = &'a Value> {
    pod.get("spec")
        .and_then(|s| s.get(list))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_builtin_profile_parses() {
        for (name, _) in PROFILES {
            let p = Profile::builtin(name).unwrap();
            assert!(p.stages.len() > 5, "{name}");
            let mut names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), p.stages.len(), "stage names repeat in {name}");
        }
        assert_eq!(
            Profile::builtin("nope").unwrap_err(),
            StageError::UnknownProfile("nope".into())
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err =
            Profile::parse("x", &[("bad.yaml", "name: a\nnext: {}\nsurprise: 1\n")]).unwrap_err();
        assert!(matches!(err, StageError::Parse { ref file, .. } if file == "bad.yaml"));
    }

    #[test]
    fn selector_checks_each_field() {
        let s: Selector = serde_saphyr::from_str(
            "phases: [Running]\nownerKinds: [Job]\nrestartPolicies: [Never]\nconditions: {Ready: 'False'}\nannotations: {a: Exists, b: DoesNotExist}\n",
        )
        .unwrap();
        let mut pod = json!({
            "metadata": {"annotations": {"a": "1"},
                         "ownerReferences": [{"kind": "Job", "controller": true}]},
            "spec": {"restartPolicy": "Never"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]},
        });
        assert!(s.matches(&pod));
        pod["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert!(!s.matches(&pod), "deleting pods need deleting: true");
        pod["metadata"]["deletionTimestamp"] = Value::Null;
        pod["metadata"]["annotations"]["b"] = json!("x");
        assert!(!s.matches(&pod));
        pod["metadata"]["annotations"] = json!({"a": "1"});
        pod["spec"]["restartPolicy"] = json!("Always");
        assert!(!s.matches(&pod));
        pod["spec"]["restartPolicy"] = json!("Never");
        pod["status"]["conditions"][0]["status"] = json!("True");
        assert!(!s.matches(&pod));
        pod["status"]["conditions"] = json!([]);
        assert!(!s.matches(&pod), "Absent is not False");
    }

    #[test]
    fn delay_sources_and_deterministic_jitter() {
        let d: Delay = serde_saphyr::from_str(
            "base: 1s\njitter: 500ms\nfromAnnotation: skiff.dev/start-delay\n",
        )
        .unwrap();
        let pod = json!({"metadata": {"uid": "u1"}});
        let a = d.for_pod(&pod, "s");
        assert!(a >= Duration::from_secs(1) && a < Duration::from_millis(1500));
        assert_eq!(a, d.for_pod(&pod, "s"));
        let slow =
            json!({"metadata": {"uid": "u1", "annotations": {"skiff.dev/start-delay": "5s"}}});
        assert_eq!(d.for_pod(&slow, "s"), Duration::from_secs(5));
        let probe: Delay = serde_saphyr::from_str("readinessProbe: true\n").unwrap();
        let p = json!({"spec": {"containers": [
            {"readinessProbe": {"initialDelaySeconds": 3}}, {"readinessProbe": {"initialDelaySeconds": 7}}, {}]}});
        assert_eq!(probe.for_pod(&p, "r"), Duration::from_secs(7));
    }

    #[test]
    fn crash_backoff_doubles_to_five_minutes() {
        assert_eq!(crash_backoff(0), Duration::from_secs(10));
        assert_eq!(crash_backoff(1), Duration::from_secs(20));
        assert_eq!(crash_backoff(4), Duration::from_secs(160));
        assert_eq!(crash_backoff(5), Duration::from_secs(300));
        assert_eq!(crash_backoff(1000), Duration::from_secs(300));
    }
}
