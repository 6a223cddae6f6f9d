//! The stage engine: a pure function from (pod, stage, context) to the status the kubelet would
//! post, the strategic-merge patch that gets it there, the events it would record and whether the
//! pod is deleted. No I/O and no clock: the caller passes `now`, the pod IP and the node's image
//! cache, so golden tests and the bench run it as is.
//!
//! What is derived here rather than written in stage files, because the kubelet's status manager
//! derives it too: `Initialized`, `ContainersReady` and `Ready` from the container statuses,
//! `PodScheduled=True`, container IDs (`containerd://` + 64 hex, stable per pod, container and
//! restart), normalised image names and image IDs, the `CrashLoopBackOff` message, and upstream's
//! event wording.

use std::collections::HashSet;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::sim::duration::format_go_duration;
use crate::sim::hash::{hash64, hex_id};
use crate::sim::stage::{
    ContainerAction, EventKind, Readiness, SandboxAction, Stage, StateKind, crash_backoff,
};

/// What the engine needs besides the pod and the stage.
pub struct PodContext<'a> {
    pub now: Timestamp,
    pub node_name: &'a str,
    /// The node's `InternalIP` (`node_ip`): `hostIP`, and `podIP` of hostNetwork pods.
    pub node_ip: &'a str,
    /// The IP the network gave the pod (`pod_ip`), needed when the stage creates the sandbox.
    pub pod_ip: Option<&'a str>,
    /// Whether the node already holds an image (decides `Pulling` vs "already present").
    pub image_present: &'a (dyn Fn(&str) -> bool + Sync),
    /// How long the stage waited; a pull event reports it as the pull time.
    pub waited: Duration,
}

/// One kubelet event about the pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodEvent {
    /// `Normal` or `Warning`.
    pub type_: &'static str,
    pub reason: &'static str,
    pub message: String,
    /// `spec.containers{nginx}`.
    pub field_path: String,
    /// How long before `now` it happened (a `Pulling` event dates from the start of the pull).
    pub ago: Duration,
}

/// The outcome of one stage on one pod.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub stage: String,
    /// The pod's whole new `status`.
    pub status: Value,
    /// `{"status": {…changed fields…}}` for a strategic-merge patch of `pods/status`, or `None`
    /// when nothing changes.
    pub patch: Option<Value>,
    pub events: Vec<PodEvent>,
    /// Delete with grace period 0 after the patch.
    pub delete: bool,
    /// Give the pod's IP back to the network.
    pub release_ip: bool,
    /// Images this transition pulled onto the node.
    pub pulled_images: Vec<String>,
}

impl Transition {
    /// True when applying it would change nothing (the runtime then waits for the pod to change).
    pub fn is_noop(&self) -> bool {
        self.patch.is_none() && self.events.is_empty() && !self.delete && !self.release_ip
    }
}

/// Whether the stage needs an IP from the network before [`apply`] (sandbox created for a pod
/// outside the host network).
pub fn needs_pod_ip(stage: &Stage, pod: &Value) -> bool {
    stage.next.sandbox == Some(SandboxAction::Create) && !host_network(pod)
}

pub(crate) fn host_network(pod: &Value) -> bool {
    pod.pointer("/spec/hostNetwork").and_then(Value::as_bool) == Some(true)
}

/// RFC 3339 at whole seconds, as `metav1.Time` serialises.
pub fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// Runs `stage` on `pod`.
pub fn apply(stage: &Stage, pod: &Value, ctx: &PodContext<'_>) -> Transition {
    let now = rfc3339(ctx.now);
    let old = pod.get("status").cloned().unwrap_or_else(|| json!({}));
    let mut status = match &old {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let next = &stage.next;
    let mut conds = Conditions::from_status(&status, &now);
    let mut release_ip = false;

    if let Some(p) = &next.phase {
        status.insert("phase".into(), json!(p));
    }
    if next.acknowledge {
        status.insert("hostIP".into(), json!(ctx.node_ip));
        status.insert("hostIPs".into(), json!([{"ip": ctx.node_ip}]));
        if status.get("startTime").is_none_or(Value::is_null) {
            status.insert("startTime".into(), json!(now));
        }
    }
    match next.sandbox {
        Some(SandboxAction::Create) => {
            let ip = if host_network(pod) {
                Some(ctx.node_ip)
            } else {
                ctx.pod_ip
            };
            if let Some(ip) = ip {
                status.insert("podIP".into(), json!(ip));
                status.insert("podIPs".into(), json!([{"ip": ip}]));
            }
            conds.set("PodReadyToStartContainers", "True", None, None);
        }
        Some(SandboxAction::Remove) => {
            conds.set("PodReadyToStartContainers", "False", None, None);
            release_ip = true;
        }
        Some(SandboxAction::Release) => release_ip = true,
        None => {}
    }

    let mut events = Vec::new();
    let mut pulled = Vec::new();
    let mut pulled_here: HashSet<String> = HashSet::new();
    let init_done_before = init_done(pod, &status);
    for (list, status_key, action) in [
        (
            "initContainers",
            "initContainerStatuses",
            next.init_containers.as_ref(),
        ),
        ("containers", "containerStatuses", next.containers.as_ref()),
    ] {
        let Some(action) = action else { continue };
        let specs: Vec<&Value> = crate::sim::stage::containers(pod, list).collect();
        if specs.is_empty() {
            continue;
        }
        let existing = status
            .get(status_key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut out = Vec::with_capacity(specs.len());
        for spec in specs {
            let name = str_at(spec, "/name");
            let mut cs = existing
                .iter()
                .find(|c| str_at(c, "/name") == name)
                .cloned()
                .unwrap_or_else(|| fresh_status(spec));
            if action.only.as_ref().is_none_or(|m| m.matches_status(&cs)) {
                let change = apply_container(
                    &mut cs,
                    spec,
                    action,
                    pod,
                    &now,
                    list == "containers" && !init_done_before,
                );
                let field_path = format!("spec.{list}{{{name}}}");
                container_events(
                    &mut events,
                    &mut pulled,
                    &mut pulled_here,
                    &next.events,
                    change,
                    spec,
                    pod,
                    &field_path,
                    ctx,
                );
            }
            out.push(cs);
        }
        status.insert(status_key.into(), Value::Array(out));
    }

    for c in &next.conditions {
        conds.set(&c.type_, &c.status, c.reason.as_deref(), None);
    }
    derive_conditions(pod, &status, &mut conds);
    status.insert("conditions".into(), conds.into_value());

    let status = Value::Object(status);
    let patch = diff_status(&old, &status);
    Transition {
        stage: stage.name.clone(),
        status,
        patch,
        events,
        delete: next.delete,
        release_ip,
        pulled_images: pulled,
    }
}

fn init_done(pod: &Value, status: &Map<String, Value>) -> bool {
    let specs: Vec<&Value> = crate::sim::stage::containers(pod, "initContainers").collect();
    if specs.is_empty() {
        return true;
    }
    let statuses = status
        .get("initContainerStatuses")
        .and_then(Value::as_array);
    specs.iter().all(|s| {
        statuses
            .into_iter()
            .flatten()
            .find(|c| str_at(c, "/name") == str_at(s, "/name"))
            .is_some_and(|c| c.pointer("/state/terminated/exitCode") == Some(&json!(0)))
    })
}

fn fresh_status(spec: &Value) -> Value {
    json!({
        "name": str_at(spec, "/name"),
        "image": str_at(spec, "/image"),
        "imageID": "",
        "lastState": {},
        "ready": false,
        "restartCount": 0,
        "started": false,
        "state": {"waiting": {"reason": "ContainerCreating"}},
    })
}

/// `nginx` → `docker.io/library/nginx:latest`, as containerd reports the image it ran.
pub fn normalize_image(image: &str) -> String {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let first = name.split('/').next().unwrap_or("");
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut full = if has_registry {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    let last = full.rsplit('/').next().unwrap_or("");
    if digest.is_none() && !last.contains(':') {
        full.push_str(":latest");
    }
    match digest {
        Some(d) => format!("{full}@{d}"),
        None => full,
    }
}

fn image_id(image: &str) -> String {
    let norm = normalize_image(image);
    if norm.contains('@') {
        return norm;
    }
    let repo = match norm.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => r.to_string(),
        _ => norm.clone(),
    };
    format!("{repo}@sha256:{}", hex_id(&["image", &norm], 64))
}

/// What happened to one container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    None,
    /// Began a run (running now, or an init container that ran to completion).
    Started,
    /// A running container stopped and stays stopped.
    Stopped,
    /// A running container stopped and waits in CrashLoopBackOff.
    Crashed,
}

fn apply_container(
    cs: &mut Value,
    spec: &Value,
    action: &ContainerAction,
    pod: &Value,
    now: &str,
    main_waiting_for_init: bool,
) -> Change {
    let name = str_at(spec, "/name").to_string();
    let uid = str_at(pod, "/metadata/uid");
    let was_running = cs.pointer("/state/running").is_some();
    let started_at = cs
        .pointer("/state/running/startedAt")
        .and_then(Value::as_str)
        .unwrap_or(now)
        .to_string();
    if action.restart {
        let n = cs.get("restartCount").and_then(Value::as_u64).unwrap_or(0);
        cs["restartCount"] = json!(n + 1);
    }
    let restarts = cs.get("restartCount").and_then(Value::as_u64).unwrap_or(0);
    let ready = match action.ready {
        Readiness::True => true,
        Readiness::False => false,
        Readiness::UnlessProbed => spec.get("readinessProbe").is_none_or(Value::is_null),
    };
    let image = str_at(spec, "/image");
    let ran = |cs: &mut Value| {
        let id = format!(
            "containerd://{}",
            hex_id(&[uid, &name, &restarts.to_string()], 64)
        );
        cs["containerID"] = json!(id);
        cs["image"] = json!(normalize_image(image));
        cs["imageID"] = json!(image_id(image));
        id
    };
    match action.state {
        StateKind::Running => {
            cs["ready"] = json!(ready);
            if was_running {
                // Still the same run (a readiness change): keep its ID and start time.
                return Change::None;
            }
            ran(cs);
            cs["state"] = json!({"running": {"startedAt": now}});
            cs["started"] = json!(true);
            Change::Started
        }
        StateKind::Terminated => {
            let fresh_run = !was_running && cs.get("containerID").is_none();
            let id = if fresh_run {
                ran(cs)
            } else {
                str_at(cs, "/containerID").to_string()
            };
            let exit = action.exit_code.as_ref().map_or(0, |e| e.resolve(pod));
            let reason = action
                .reason
                .clone()
                .unwrap_or_else(|| if exit == 0 { "Completed" } else { "Error" }.to_string());
            cs["state"] = json!({"terminated": {
                "containerID": id, "exitCode": exit, "reason": reason,
                "startedAt": started_at, "finishedAt": now,
            }});
            cs["started"] = json!(false);
            cs["ready"] = json!(ready);
            if was_running {
                Change::Stopped
            } else if fresh_run {
                Change::Started
            } else {
                Change::None
            }
        }
        StateKind::Waiting => {
            let mut reason = action
                .reason
                .clone()
                .unwrap_or_else(|| "ContainerCreating".into());
            if reason == "ContainerCreating" && main_waiting_for_init {
                reason = "PodInitializing".into();
            }
            let mut waiting = json!({"reason": reason});
            if reason == "CrashLoopBackOff" {
                let pod_name = str_at(pod, "/metadata/name");
                let ns = str_at(pod, "/metadata/namespace");
                waiting["message"] = json!(format!(
                    "back-off {} restarting failed container={name} pod={pod_name}_{ns}({uid})",
                    format_go_duration(crash_backoff(restarts))
                ));
            }
            let mut change = Change::None;
            if was_running && let Some(last) = &action.last_state {
                cs["lastState"] = json!({"terminated": {
                    "containerID": str_at(cs, "/containerID"),
                    "exitCode": last.exit_code.resolve(pod),
                    "reason": last.reason,
                    "startedAt": started_at,
                    "finishedAt": now,
                }});
                change = Change::Crashed;
            }
            cs["state"] = json!({"waiting": waiting});
            cs["started"] = json!(false);
            cs["ready"] = json!(ready);
            change
        }
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call site; bundling these into a struct would only rename them"
)]
fn container_events(
    out: &mut Vec<PodEvent>,
    pulled: &mut Vec<String>,
    pulled_here: &mut HashSet<String>,
    kinds: &[EventKind],
    change: Change,
    spec: &Value,
    pod: &Value,
    field_path: &str,
    ctx: &PodContext<'_>,
) {
    let name = str_at(spec, "/name");
    let image = str_at(spec, "/image");
    let ev = |type_, reason, message: String, ago| PodEvent {
        type_,
        reason,
        message,
        field_path: field_path.to_string(),
        ago,
    };
    for kind in kinds {
        match (kind, change) {
            (EventKind::Pulled, Change::Started) => {
                let always = str_at(spec, "/imagePullPolicy") == "Always";
                let present = pulled_here.contains(image) || (ctx.image_present)(image);
                if always || !present {
                    // The pull is the tail of the wait (a restart waits out its back-off first).
                    let uid = str_at(pod, "/metadata/uid");
                    let pull = Duration::from_millis(300 + hash64(&["pull", uid, name], 0) % 1000);
                    let pull = pull.min(ctx.waited);
                    let took = format_go_duration(pull);
                    // A deterministic stand-in for the image size the registry would report.
                    let size = 2_000_000 + hash64(&["size", image], 0) % 200_000_000;
                    out.push(ev(
                        "Normal",
                        "Pulling",
                        format!("Pulling image \"{image}\""),
                        pull,
                    ));
                    out.push(ev(
                        "Normal",
                        "Pulled",
                        format!(
                            "Successfully pulled image \"{image}\" in {took} ({took} including waiting). Image size: {size} bytes."
                        ),
                        Duration::ZERO,
                    ));
                    if pulled_here.insert(image.to_string()) {
                        pulled.push(image.to_string());
                    }
                } else {
                    out.push(ev(
                        "Normal",
                        "Pulled",
                        format!("Container image \"{image}\" already present on machine"),
                        Duration::ZERO,
                    ));
                }
            }
            (EventKind::Created, Change::Started) => out.push(ev(
                "Normal",
                "Created",
                format!("Created container: {name}"),
                Duration::ZERO,
            )),
            (EventKind::Started, Change::Started) => out.push(ev(
                "Normal",
                "Started",
                format!("Started container {name}"),
                Duration::ZERO,
            )),
            (EventKind::Killing, Change::Stopped) => out.push(ev(
                "Normal",
                "Killing",
                format!("Stopping container {name}"),
                Duration::ZERO,
            )),
            (EventKind::BackOff, Change::Crashed) => {
                let pod_name = str_at(pod, "/metadata/name");
                let ns = str_at(pod, "/metadata/namespace");
                let uid = str_at(pod, "/metadata/uid");
                out.push(ev(
                    "Warning",
                    "BackOff",
                    format!(
                        "Back-off restarting failed container {name} in pod {pod_name}_{ns}({uid})"
                    ),
                    Duration::ZERO,
                ));
            }
            _ => {}
        }
    }
}

/// The pod's conditions while a stage edits them: order kept, `lastTransitionTime` moved only
/// when the status flips.
struct Conditions {
    list: Vec<Value>,
    now: String,
}

/// Upstream's order of the kubelet-owned conditions in `status.conditions`.
const ORDER: [&str; 5] = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

impl Conditions {
    fn from_status(status: &Map<String, Value>, now: &str) -> Self {
        Conditions {
            list: status
                .get("conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            now: now.to_string(),
        }
    }

    fn get(&self, type_: &str) -> Option<&Value> {
        self.list.iter().find(|c| str_at(c, "/type") == type_)
    }

    fn set(&mut self, type_: &str, status: &str, reason: Option<&str>, message: Option<&str>) {
        let mut c = json!({"type": type_, "status": status});
        if type_ != "PodReadyToStartContainers" {
            c["lastProbeTime"] = Value::Null;
        }
        let keep_time = self
            .get(type_)
            .filter(|old| str_at(old, "/status") == status)
            .and_then(|old| old.get("lastTransitionTime").cloned());
        c["lastTransitionTime"] = keep_time.unwrap_or_else(|| json!(self.now));
        if let Some(r) = reason {
            c["reason"] = json!(r);
        }
        if let Some(m) = message {
            c["message"] = json!(m);
        }
        match self.list.iter_mut().find(|x| str_at(x, "/type") == type_) {
            Some(slot) => *slot = c,
            None => {
                self.list.push(c);
                let rank = |c: &Value| {
                    let t = str_at(c, "/type");
                    ORDER.iter().position(|o| *o == t).unwrap_or(ORDER.len())
                };
                self.list.sort_by_key(rank);
            }
        }
    }

    fn into_value(self) -> Value {
        Value::Array(self.list)
    }
}

/// `Initialized`, `ContainersReady`, `Ready` from the container statuses; `PodScheduled=True`.
fn derive_conditions(pod: &Value, status: &Map<String, Value>, conds: &mut Conditions) {
    let Some(main) = status.get("containerStatuses").and_then(Value::as_array) else {
        return;
    };
    let names = |list: &[&Value]| {
        let n: Vec<&str> = list.iter().map(|c| str_at(c, "/name")).collect();
        format!("[{}]", n.join(" "))
    };
    if crate::sim::stage::containers(pod, "initContainers")
        .next()
        .is_none()
        || init_done(pod, status)
    {
        conds.set("Initialized", "True", None, None);
    } else {
        let inits = status
            .get("initContainerStatuses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let incomplete: Vec<&Value> = inits
            .iter()
            .filter(|c| c.pointer("/state/terminated/exitCode") != Some(&json!(0)))
            .collect();
        conds.set(
            "Initialized",
            "False",
            Some("ContainersNotInitialized"),
            Some(&format!(
                "containers with incomplete status: {}",
                names(&incomplete)
            )),
        );
    }
    let finished = matches!(
        status.get("phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    let unready: Vec<&Value> = main
        .iter()
        .filter(|c| c.get("ready").and_then(Value::as_bool) != Some(true))
        .collect();
    for type_ in ["ContainersReady", "Ready"] {
        if finished {
            conds.set(type_, "False", Some("PodCompleted"), None);
        } else if !unready.is_empty() {
            conds.set(
                type_,
                "False",
                Some("ContainersNotReady"),
                Some(&format!(
                    "containers with unready status: {}",
                    names(&unready)
                )),
            );
        } else if type_ == "Ready"
            && let Some(msg) = unmet_readiness_gate(pod, conds)
        {
            conds.set(type_, "False", Some("ReadinessGatesNotReady"), Some(&msg));
        } else {
            conds.set(type_, "True", None, None);
        }
    }
    if conds.get("PodScheduled").is_none() {
        conds.set("PodScheduled", "True", None, None);
    }
}

/// The kubelet's message for the first `spec.readinessGates` entry whose condition is not True
/// (`status.go` `generatePodReadyCondition`), or `None` when all are met.
fn unmet_readiness_gate(pod: &Value, conds: &Conditions) -> Option<String> {
    let gates = pod.pointer("/spec/readinessGates")?.as_array()?;
    let mut missing = Vec::new();
    let mut not_true = Vec::new();
    for g in gates {
        let t = str_at(g, "/conditionType");
        match conds.get(t) {
            None => missing.push(format!(
                "corresponding condition of pod readiness gate \"{t}\" does not exist."
            )),
            Some(c) if str_at(c, "/status") != "True" => not_true.push(format!(
                "the status of pod readiness gate \"{t}\" is not \"True\", but {}",
                str_at(c, "/status")
            )),
            Some(_) => {}
        }
    }
    let all: Vec<String> = missing.into_iter().chain(not_true).collect();
    (!all.is_empty()).then(|| all.join(", "))
}

/// The strategic-merge patch from `old` to `new` status: changed top-level fields whole, and of
/// `conditions` only the entries that changed (merged by `type` on the server, as the kubelet's
/// status manager patches).
fn diff_status(old: &Value, new: &Value) -> Option<Value> {
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
        return Some(json!({ "status": new }));
    };
    let mut out = Map::new();
    for (k, v) in n {
        if o.get(k) == Some(v) {
            continue;
        }
        if k == "conditions" {
            let old_list = o.get(k).and_then(Value::as_array);
            let changed: Vec<Value> = v
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| !old_list.into_iter().flatten().any(|oc| oc == *c))
                .cloned()
                .collect();
            if !changed.is_empty() {
                out.insert(k.clone(), Value::Array(changed));
            }
            continue;
        }
        out.insert(k.clone(), v.clone());
    }
    (!out.is_empty()).then(|| json!({ "status": out }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_normalise_as_containerd_reports_them() {
        assert_eq!(normalize_image("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(
            normalize_image("nginx:1.27"),
            "docker.io/library/nginx:1.27"
        );
        assert_eq!(
            normalize_image("bitnami/redis"),
            "docker.io/bitnami/redis:latest"
        );
        assert_eq!(
            normalize_image("602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni:v1.19.0"),
            "602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni:v1.19.0"
        );
        assert_eq!(
            normalize_image("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        let id = image_id("nginx:1.27");
        assert!(id.starts_with("docker.io/library/nginx@sha256:"), "{id}");
        assert_eq!(id.len(), "docker.io/library/nginx@sha256:".len() + 64);
    }

    #[test]
    fn ready_follows_readiness_gates() {
        let profile = crate::sim::stage::Profile::builtin("general").unwrap();
        let gate = "target-health.elbv2.k8s.aws/tg";
        let mut pod = json!({
            "metadata": {"name": "p", "namespace": "d", "uid": "u"},
            "spec": {"readinessGates": [{"conditionType": gate}],
                     "containers": [{"name": "c", "image": "nginx"}]},
            "status": {"phase": "Running",
                       "containerStatuses": [{"name": "c", "ready": true, "restartCount": 0,
                                              "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}],
                       "conditions": [{"type": "ContainersReady", "status": "True"},
                                      {"type": gate, "status": "False"}]},
        });
        let present = |_: &str| true;
        let ctx = PodContext {
            now: "2026-01-01T00:01:00Z".parse().unwrap(),
            node_name: "n",
            node_ip: "10.0.0.1",
            pod_ip: None,
            image_present: &present,
            waited: Duration::ZERO,
        };
        let (_, stage) = profile.select(&pod).unwrap();
        assert_eq!(stage.name, "pod-readiness-gates");
        let t = apply(stage, &pod, &ctx);
        let ready = t.status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap()
            .clone();
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["reason"], "ReadinessGatesNotReady");
        assert_eq!(
            ready["message"],
            format!("the status of pod readiness gate \"{gate}\" is not \"True\", but False")
        );
        // The load balancer controller flips the gate: Ready follows on the next look.
        pod["status"] = t.status;
        for c in pod["status"]["conditions"].as_array_mut().unwrap() {
            if c["type"] == gate {
                c["status"] = json!("True");
            }
        }
        let t = apply(stage, &pod, &ctx);
        let patch = t.patch.unwrap();
        assert_eq!(patch["status"]["conditions"][0]["type"], "Ready");
        assert_eq!(patch["status"]["conditions"][0]["status"], "True");
        pod["status"] = t.status;
        assert!(apply(stage, &pod, &ctx).is_noop(), "settled: no write");
    }

    #[test]
    fn diff_sends_only_changed_conditions() {
        let old = json!({"phase": "Pending", "conditions": [
            {"type": "A", "status": "True"}, {"type": "B", "status": "False"}]});
        let new = json!({"phase": "Running", "conditions": [
            {"type": "A", "status": "True"}, {"type": "B", "status": "True"}]});
        assert_eq!(
            diff_status(&old, &new),
            Some(
                json!({"status": {"phase": "Running", "conditions": [{"type": "B", "status": "True"}]}})
            )
        );
        assert_eq!(diff_status(&new, &new), None);
    }
}
