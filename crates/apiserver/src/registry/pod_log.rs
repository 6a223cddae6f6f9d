//! `pods/log` for pods on Skiff's simulated nodes. No container process exists, so there is no
//! application output to return; what a simulated container does have is a lifecycle, recorded
//! by the simulated kubelet in the pod's container statuses (started, exited with code, restarted)
//! and in its container Events (`Pulling`, `Created`, `Started`, `Killing`, …). This answers
//! `kubectl logs` with those records as log lines, honest rather than invented, and keeps
//! upstream's rules around them: the API server's container choice and errors (`LogLocation`),
//! the kubelet's choice of container instance (current, last terminated, `--previous`) and its
//! errors, and `follow`, `tailLines`, `timestamps`, `sinceSeconds`/`sinceTime`, `limitBytes`.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use jiff::Timestamp;
use serde_json::Value;
use skiff_k8s_core::selector::FieldSelector;
use skiff_k8s_core::status::{ApiError, FieldError};

use super::{ListOptions, Registry, WatchOptions};

/// The body of a log answer: chunks of text, ending when the log does (or, with `follow`, when
/// the container stops or the pod goes away).
pub type LogStream = Pin<Box<dyn Stream<Item = Bytes> + Send>>;

/// How often a follower re-reads the records when no pod change woke it (the kubelet's Events
/// land just after the status write they belong to).
const FOLLOW_TICK: Duration = Duration::from_millis(500);

/// `core/v1.PodLogOptions` from the query string.
#[doc(alias = "PodLogOptions")]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogOptions {
    pub container: Option<String>,
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<i64>,
    pub since_seconds: Option<i64>,
    pub since_time: Option<Timestamp>,
    pub limit_bytes: Option<i64>,
}

impl LogOptions {
    /// Parses and validates as upstream's `ValidatePodLogOptions` (422 with its wording).
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, ApiError> {
        let flag = |k: &str| matches!(get(k), Some("true" | "1"));
        let int = |k: &str| -> Result<Option<i64>, ApiError> {
            match get(k) {
                None | Some("") => Ok(None),
                Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                    ApiError::BadRequest(format!(
                        "strconv.ParseInt: parsing {}: invalid syntax",
                        skiff_k8s_core::status::go_quote(v)
                    ))
                }),
            }
        };
        let since_time = match get("sinceTime") {
            None | Some("") => None,
            Some(v) => Some(v.parse::<Timestamp>().map_err(|_| {
                ApiError::BadRequest(format!(
                    "parsing time {} as \"2006-01-02T15:04:05Z07:00\": cannot parse",
                    skiff_k8s_core::status::go_quote(v)
                ))
            })?),
        };
        let opts = LogOptions {
            container: get("container").filter(|c| !c.is_empty()).map(String::from),
            follow: flag("follow"),
            previous: flag("previous"),
            timestamps: flag("timestamps"),
            tail_lines: int("tailLines")?,
            since_seconds: int("sinceSeconds")?,
            since_time,
            limit_bytes: int("limitBytes")?,
        };
        let mut causes = Vec::new();
        if let Some(t) = opts.tail_lines
            && t < 0
        {
            causes.push(FieldError::invalid(
                "tailLines",
                t.into(),
                "must be greater than or equal to 0",
            ));
        }
        if let Some(b) = opts.limit_bytes
            && b < 1
        {
            causes.push(FieldError::invalid(
                "limitBytes",
                b.into(),
                "must be greater than 0",
            ));
        }
        if opts.since_seconds.is_some() && opts.since_time.is_some() {
            causes.push(FieldError::forbidden(
                "",
                "at most one of `sinceTime` or `sinceSeconds` may be specified",
            ));
        }
        if let Some(s) = opts.since_seconds
            && s < 1
        {
            causes.push(FieldError::invalid(
                "sinceSeconds",
                s.into(),
                "must be greater than 0",
            ));
        }
        if causes.is_empty() {
            Ok(opts)
        } else {
            Err(ApiError::invalid("", "PodLogOptions", "", causes))
        }
    }
}

/// One log line: when it happened and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub at: Timestamp,
    pub text: String,
}

/// What one container instance's records say.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub lines: Vec<LogLine>,
    /// The instance has exited: a follower stops after these lines.
    pub finished: bool,
}

/// Which container of `pod` the request means, as the API server's `LogLocation` decides.
pub fn choose_container(pod: &Value, asked: Option<&str>) -> Result<String, ApiError> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let names = |key: &str| -> Vec<String> {
        pod["spec"][key]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (main, init) = (names("containers"), names("initContainers"));
    match asked {
        Some(c) => {
            let ephemeral = names("ephemeralContainers");
            if main.iter().chain(&init).chain(&ephemeral).any(|n| n == c) {
                Ok(c.to_string())
            } else {
                Err(ApiError::BadRequest(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
        }
        None => match main.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(ApiError::BadRequest(format!(
                "a container name must be specified for pod {name}"
            ))),
            _ => {
                let mut msg = format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    main.join(" ")
                );
                if !init.is_empty() {
                    msg += &format!(" or one of the init containers: [{}]", init.join(" "));
                }
                Err(ApiError::BadRequest(msg))
            }
        },
    }
}

fn ts(v: &Value) -> Option<Timestamp> {
    v.as_str().and_then(|s| s.parse().ok())
}

/// The status of `container` (main, init or ephemeral) and its spec path segment.
fn container_status<'a>(pod: &'a Value, container: &str) -> Option<(&'a Value, &'static str)> {
    [
        ("containerStatuses", "containers"),
        ("initContainerStatuses", "initContainers"),
        ("ephemeralContainerStatuses", "ephemeralContainers"),
    ]
    .into_iter()
    .find_map(|(key, spec)| {
        pod["status"][key]
            .as_array()?
            .iter()
            .find(|s| s["name"] == container)
            .map(|s| (s, spec))
    })
}

/// One run of a container, as its status records it.
struct Instance<'a> {
    state: &'a Value,
    /// Events after this belong to a later run.
    not_before: Option<Timestamp>,
}

/// The kubelet's `validateContainerLogStatus`: which run's log is read, or its error (400).
fn pick_instance<'a>(
    status: &'a Value,
    pod_name: &str,
    container: &str,
    previous: bool,
) -> Result<Instance<'a>, ApiError> {
    let state = &status["state"];
    let last = &status["lastState"]["terminated"];
    let last_id = last["containerID"].as_str().unwrap_or_default();
    let restarts = status["restartCount"].as_i64().unwrap_or(0);
    // A crash-looping container's earlier runs share the event stream: bound the last run's
    // window by its own start when there were runs before it.
    let last_instance = || Instance {
        state: last,
        not_before: (restarts > 1).then(|| ts(&last["startedAt"])).flatten(),
    };
    let terminated_err = || {
        ApiError::BadRequest(format!(
            "container \"{container}\" in pod \"{pod_name}\" is terminated"
        ))
    };
    if previous {
        if last.is_object() && !last_id.is_empty() {
            return Ok(last_instance());
        }
        return Err(ApiError::BadRequest(format!(
            "previous terminated container \"{container}\" in pod \"{pod_name}\" not found"
        )));
    }
    let after_last = ts(&last["finishedAt"]);
    if state["running"].is_object() {
        return Ok(Instance {
            state: &state["running"],
            not_before: after_last,
        });
    }
    if state["terminated"].is_object() {
        if state["terminated"]["containerID"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
        {
            return Ok(Instance {
                state: &state["terminated"],
                not_before: after_last,
            });
        }
        if !last_id.is_empty() {
            return Ok(last_instance());
        }
        return Err(terminated_err());
    }
    if last.is_object() {
        if last_id.is_empty() {
            return Err(terminated_err());
        }
        return Ok(last_instance());
    }
    let reason = match state["waiting"]["reason"].as_str() {
        Some("ErrImagePull") => "image can't be pulled".to_string(),
        Some("ErrImagePullBackOff" | "ImagePullBackOff") => {
            "trying and failing to pull image".to_string()
        }
        Some(r) => r.to_string(),
        None => {
            return Err(ApiError::BadRequest(format!(
                "container \"{container}\" in pod \"{pod_name}\" is waiting to start - no logs yet"
            )));
        }
    };
    Err(ApiError::BadRequest(format!(
        "container \"{container}\" in pod \"{pod_name}\" is waiting to start: {reason}"
    )))
}

/// The log of `container` in `pod`: the chosen run's kubelet Events (those naming the container's
/// field path, within the run's time window) and its status transitions, in time order.
pub fn render(
    pod: &Value,
    events: &[Value],
    container: &str,
    previous: bool,
) -> Result<Rendered, ApiError> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
    let Some((status, spec_key)) = container_status(pod, container) else {
        return Err(ApiError::BadRequest(format!(
            "container \"{container}\" in pod \"{pod_name}\" is not available"
        )));
    };
    let run = pick_instance(status, pod_name, container, previous)?;
    let started = ts(&run.state["startedAt"]);
    let finished = ts(&run.state["finishedAt"]);
    let field_path = format!("spec.{spec_key}{{{container}}}");
    // (time, order within the same instant, text): events first, in the order they were written
    // (their resourceVersion), then what the status says.
    let mut lines: Vec<(Timestamp, u64, String)> = Vec::new();
    let mut saw_started_event = false;
    for e in events {
        if e["involvedObject"]["fieldPath"].as_str() != Some(field_path.as_str()) {
            continue;
        }
        let Some(at) = ts(&e["lastTimestamp"])
            .or_else(|| ts(&e["eventTime"]))
            .or_else(|| ts(&e["firstTimestamp"]))
        else {
            continue;
        };
        if run.not_before.is_some_and(|nb| at <= nb) || finished.is_some_and(|f| at > f) {
            continue;
        }
        let reason = e["reason"].as_str().unwrap_or_default();
        saw_started_event |= reason == "Started";
        let kind = e["type"].as_str().unwrap_or("Normal");
        let message = e["message"].as_str().unwrap_or_default();
        let text = if kind == "Warning" {
            format!("kubelet: {reason} (Warning): {message}")
        } else {
            format!("kubelet: {reason}: {message}")
        };
        let written = e["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|rv| rv.parse::<u64>().ok())
            .unwrap_or(0);
        lines.push((at, written.min(u64::MAX - 4), text));
    }
    if let Some(at) = started {
        if !saw_started_event {
            lines.push((
                at,
                u64::MAX - 3,
                format!("kubelet: Started: Started container {container}"),
            ));
        }
        let id = run.state["containerID"]
            .as_str()
            .or_else(|| status["containerID"].as_str())
            .unwrap_or_default();
        let image = status["image"].as_str().unwrap_or_default();
        lines.push((
            at,
            u64::MAX - 2,
            format!(
                "skiff: container {container} ({id}, image {image}) is simulated on node {node}: \
                 no process runs, so there is no application output"
            ),
        ));
    }
    if let Some(at) = finished {
        let code = run.state["exitCode"].as_i64().unwrap_or(0);
        let reason = run.state["reason"].as_str().unwrap_or("Completed");
        let mut text = format!("skiff: container {container} exited with code {code} ({reason})");
        if let Some(m) = run.state["message"].as_str().filter(|m| !m.is_empty()) {
            text += &format!(": {m}");
        }
        lines.push((at, u64::MAX - 1, text));
    }
    // A run's lifecycle has a fixed order (pull, create, start, run, exit), whatever second each
    // step's timestamp fell in: the status and the Events are written at different moments, so
    // their clocks alone would order a finished log differently from the followed one.
    let phase = |text: &str| -> u8 {
        let reason = text
            .strip_prefix("kubelet: ")
            .and_then(|r| r.split([':', ' ']).next())
            .unwrap_or("");
        match reason {
            "Pulling" => 0,
            "Pulled" | "Failed" | "ErrImagePull" | "ImagePullBackOff" => 1,
            "Created" => 2,
            "Started" => 3,
            _ if text.starts_with("skiff: container ")
                && text.contains(" is simulated on node ") =>
            {
                4
            }
            _ if text.starts_with("skiff: container ") && text.contains(" exited with code ") => 6,
            _ => 5,
        }
    };
    lines.sort_by_key(|a| (phase(&a.2), a.0, a.1));
    Ok(Rendered {
        lines: lines
            .into_iter()
            .map(|(at, _, text)| LogLine { at, text })
            .collect(),
        finished: finished.is_some(),
    })
}

/// The lines as the wire carries them: `sinceSeconds`/`sinceTime` first, then `tailLines`, each
/// line prefixed with its RFC 3339 time when `timestamps` is asked for.
pub fn format_lines(lines: &[LogLine], opts: &LogOptions, now: Timestamp) -> Vec<String> {
    let since = opts.since_time.or_else(|| {
        opts.since_seconds
            .and_then(|s| now.checked_sub(jiff::SignedDuration::from_secs(s)).ok())
    });
    let kept: Vec<&LogLine> = lines
        .iter()
        .filter(|l| since.is_none_or(|s| l.at >= s))
        .collect();
    let skip = match opts.tail_lines {
        Some(t) => kept.len().saturating_sub(usize::try_from(t).unwrap_or(0)),
        None => 0,
    };
    kept[skip..].iter().map(|l| line_text(l, opts)).collect()
}

fn line_text(l: &LogLine, opts: &LogOptions) -> String {
    if opts.timestamps {
        format!("{} {}\n", l.at, l.text)
    } else {
        format!("{}\n", l.text)
    }
}

/// Cuts `text` so at most `budget` more bytes go out (upstream's `limitBytes` may split a line).
fn within_budget(text: String, budget: &mut Option<u64>) -> Option<Bytes> {
    match budget {
        None => Some(Bytes::from(text)),
        Some(0) => None,
        Some(left) => {
            let bytes = Bytes::from(text);
            let take = bytes.len().min(*left as usize);
            *left -= take as u64;
            Some(bytes.slice(..take))
        }
    }
}

async fn kubelet_events(reg: &Registry, ns: &str, uid: &str) -> Result<Vec<Value>, ApiError> {
    let Some(kind) = reg.kind("", "events") else {
        return Ok(Vec::new());
    };
    let field_selector =
        FieldSelector::parse(&format!("involvedObject.uid={uid}")).map_err(ApiError::BadRequest)?;
    let page = reg
        .list(
            &kind,
            Some(ns),
            &ListOptions {
                field_selector,
                ..Default::default()
            },
        )
        .await?;
    Ok(page.items)
}

/// Answers `GET …/pods/{name}/log`.
#[doc(alias = "LogREST")]
pub async fn pod_log(
    reg: &Arc<Registry>,
    ns: &str,
    name: &str,
    opts: LogOptions,
) -> Result<LogStream, ApiError> {
    let pods = reg
        .kind("", "pods")
        .ok_or_else(|| ApiError::not_found("", "pods", name))?;
    let pod = reg.get(&pods, Some(ns), name).await?;
    let container = choose_container(&pod, opts.container.as_deref())?;
    // Not bound yet: upstream has no kubelet to ask and answers with an empty log.
    if pod["spec"]["nodeName"]
        .as_str()
        .unwrap_or_default()
        .is_empty()
    {
        return Ok(Box::pin(futures::stream::empty()));
    }
    let uid = pod["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let events = kubelet_events(reg, ns, &uid).await?;
    let first = render(&pod, &events, &container, opts.previous)?;
    let mut budget = opts.limit_bytes.map(|b| b.max(0) as u64);
    let initial = format_lines(&first.lines, &opts, Timestamp::now());
    let mut head = Vec::new();
    for l in initial {
        if let Some(b) = within_budget(l, &mut budget) {
            head.push(b);
        }
    }
    let head = futures::stream::iter(head);
    if !opts.follow || opts.previous || first.finished || budget == Some(0) {
        return Ok(Box::pin(head));
    }
    let seen: HashSet<String> = first.lines.iter().map(line_key).collect();
    let follower = Follower {
        reg: reg.clone(),
        ns: ns.to_string(),
        name: name.to_string(),
        uid,
        container,
        opts,
        seen,
        budget,
        done: false,
        watch: None,
    };
    let tail = futures::stream::unfold(follower, |mut f| async move {
        let chunk = f.next_chunk().await?;
        Some((chunk, f))
    });
    Ok(Box::pin(head.chain(tail)))
}

fn l_key_sep() -> &'static str {
    "\u{0}"
}

fn line_key(l: &LogLine) -> String {
    format!("{}{}{}", l.at, l_key_sep(), l.text)
}

/// `follow=true`: re-reads the records when the pod changes (or every tick) and sends the lines
/// not sent yet, until the run exits, the pod is gone or replaced, or `limitBytes` is spent.
struct Follower {
    reg: Arc<Registry>,
    ns: String,
    name: String,
    uid: String,
    container: String,
    opts: LogOptions,
    seen: HashSet<String>,
    budget: Option<u64>,
    done: bool,
    watch: Option<super::watch::WatchStream>,
}

impl Follower {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if self.done {
                return None;
            }
            if self.watch.is_none() {
                self.watch = pod_watch(&self.reg, &self.ns, &self.name).await;
            }
            match &mut self.watch {
                Some(w) => {
                    tokio::select! {
                        ev = w.next() => {
                            if ev.is_none() {
                                self.watch = None;
                            }
                        }
                        _ = tokio::time::sleep(FOLLOW_TICK) => {}
                    }
                }
                None => tokio::time::sleep(FOLLOW_TICK).await,
            }
            let pods = self.reg.kind("", "pods")?;
            let pod = match self.reg.get(&pods, Some(&self.ns), &self.name).await {
                Ok(p) if p["metadata"]["uid"] == self.uid.as_str() => p,
                _ => return None,
            };
            let events = kubelet_events(&self.reg, &self.ns, &self.uid)
                .await
                .unwrap_or_default();
            let Ok(now) = render(&pod, &events, &self.container, false) else {
                return None;
            };
            self.done = now.finished;
            let fresh: Vec<&LogLine> = now
                .lines
                .iter()
                .filter(|l| self.seen.insert(line_key(l)))
                .collect();
            if fresh.is_empty() {
                continue;
            }
            let text: String = fresh.iter().map(|l| line_text(l, &self.opts)).collect();
            let out = within_budget(text, &mut self.budget);
            if self.budget == Some(0) {
                self.done = true;
            }
            return out;
        }
    }
}

/// Changes to one pod; `None` when the watch cannot start (the follower then just ticks).
async fn pod_watch(reg: &Arc<Registry>, ns: &str, name: &str) -> Option<super::watch::WatchStream> {
    let pods = reg.kind("", "pods")?;
    let field_selector = FieldSelector::parse(&format!("metadata.name={name}")).ok()?;
    reg.watch(
        &pods,
        Some(ns),
        WatchOptions {
            field_selector,
            send_initial_events: Some(false),
            ..Default::default()
        },
    )
    .await
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn pod(status: Value) -> Value {
        json!({"metadata": {"name": "web-0", "namespace": "default", "uid": "u1"},
               "spec": {"nodeName": "n1", "containers": [{"name": "nginx"}, {"name": "side"}],
                        "initContainers": [{"name": "setup"}]},
               "status": status})
    }

    fn event(reason: &str, message: &str, at: &str, container: &str) -> Value {
        json!({"involvedObject": {"kind": "Pod", "uid": "u1",
                                  "fieldPath": format!("spec.containers{{{container}}}")},
               "reason": reason, "message": message, "type": "Normal",
               "firstTimestamp": at, "lastTimestamp": at})
    }

    fn running() -> Value {
        json!({"containerStatuses": [{"name": "nginx", "restartCount": 0,
            "image": "docker.io/library/nginx:latest", "containerID": "containerd://abc",
            "state": {"running": {"startedAt": "2026-01-01T00:00:02Z"}}}]})
    }

    #[test]
    fn container_choice_and_errors_are_upstreams() {
        let p = pod(running());
        assert_eq!(
            choose_container(&p, None).unwrap_err().message(),
            "a container name must be specified for pod web-0, choose one of: [nginx side] \
             or one of the init containers: [setup]"
        );
        let e = choose_container(&p, Some("redis")).unwrap_err();
        assert_eq!(e.code(), 400);
        assert_eq!(e.message(), "container redis is not valid for pod web-0");
        assert_eq!(choose_container(&p, Some("setup")).unwrap(), "setup");
    }

    #[test]
    fn running_container_shows_its_events_and_what_the_simulation_means() {
        let evs = [
            event(
                "Pulling",
                "Pulling image \"nginx\"",
                "2026-01-01T00:00:01Z",
                "nginx",
            ),
            event(
                "Created",
                "Created container: nginx",
                "2026-01-01T00:00:02Z",
                "nginx",
            ),
            event(
                "Started",
                "Started container nginx",
                "2026-01-01T00:00:02Z",
                "nginx",
            ),
            event(
                "Started",
                "Started container side",
                "2026-01-01T00:00:02Z",
                "side",
            ),
        ];
        let r = render(&pod(running()), &evs, "nginx", false).unwrap();
        assert!(!r.finished);
        let texts: Vec<&str> = r.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts[0], "kubelet: Pulling: Pulling image \"nginx\"");
        assert_eq!(texts[1], "kubelet: Created: Created container: nginx");
        assert_eq!(texts[2], "kubelet: Started: Started container nginx");
        assert!(texts[3].starts_with("skiff: container nginx (containerd://abc"));
        assert!(texts[3].contains("no application output"));
        assert_eq!(texts.len(), 4, "the other container's events are not here");
    }

    #[test]
    fn waiting_and_previous_errors_are_the_kubelets() {
        let waiting = json!({"containerStatuses": [{"name": "nginx", "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}}}]});
        assert_eq!(
            render(&pod(waiting), &[], "nginx", false)
                .unwrap_err()
                .message(),
            "container \"nginx\" in pod \"web-0\" is waiting to start: ContainerCreating"
        );
        assert_eq!(
            render(&pod(running()), &[], "nginx", true)
                .unwrap_err()
                .message(),
            "previous terminated container \"nginx\" in pod \"web-0\" not found"
        );
        assert_eq!(
            render(&pod(running()), &[], "setup", false)
                .unwrap_err()
                .message(),
            "container \"setup\" in pod \"web-0\" is not available"
        );
    }

    #[test]
    fn previous_run_and_crash_loop_read_the_last_terminated_run() {
        let looping = json!({"containerStatuses": [{"name": "nginx", "restartCount": 1,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                "containerID": "containerd://old",
                "startedAt": "2026-01-01T00:00:02Z", "finishedAt": "2026-01-01T00:00:05Z"}}}]});
        let evs = [
            event(
                "Started",
                "Started container nginx",
                "2026-01-01T00:00:02Z",
                "nginx",
            ),
            event(
                "BackOff",
                "Back-off restarting failed container nginx in pod web-0_default(u1)",
                "2026-01-01T00:00:06Z",
                "nginx",
            ),
        ];
        for previous in [false, true] {
            let r = render(&pod(looping.clone()), &evs, "nginx", previous).unwrap();
            assert!(r.finished);
            let last = r.lines.last().unwrap();
            assert_eq!(
                last.text,
                "skiff: container nginx exited with code 1 (Error)"
            );
            assert_eq!(last.at, t("2026-01-01T00:00:05Z"));
            assert!(r.lines.iter().all(|l| !l.text.contains("Back-off")));
        }
    }

    #[test]
    fn tail_since_and_timestamps_shape_the_output() {
        let lines = vec![
            LogLine {
                at: t("2026-01-01T00:00:01Z"),
                text: "a".into(),
            },
            LogLine {
                at: t("2026-01-01T00:00:02.5Z"),
                text: "b".into(),
            },
            LogLine {
                at: t("2026-01-01T00:00:03Z"),
                text: "c".into(),
            },
        ];
        let now = t("2026-01-01T00:00:04Z");
        let o = |f: fn(&mut LogOptions)| {
            let mut o = LogOptions::default();
            f(&mut o);
            format_lines(&lines, &o, now).concat()
        };
        assert_eq!(o(|_| {}), "a\nb\nc\n");
        assert_eq!(o(|o| o.tail_lines = Some(2)), "b\nc\n");
        assert_eq!(o(|o| o.tail_lines = Some(0)), "");
        assert_eq!(o(|o| o.since_seconds = Some(2)), "b\nc\n");
        assert_eq!(
            o(|o| {
                o.timestamps = true;
                o.tail_lines = Some(1);
            }),
            "2026-01-01T00:00:03Z c\n"
        );
        assert_eq!(
            o(|o| o.timestamps = true).lines().nth(1).unwrap(),
            "2026-01-01T00:00:02.5Z b"
        );
        let mut budget = Some(3);
        assert_eq!(within_budget("abcdef".into(), &mut budget).unwrap(), "abc");
        assert!(within_budget("x".into(), &mut budget).is_none());
    }

    #[test]
    fn options_are_validated_as_upstream() {
        let q = |pairs: &'static [(&'static str, &'static str)]| {
            LogOptions::parse(move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| *v))
        };
        let o = q(&[
            ("container", "nginx"),
            ("follow", "true"),
            ("tailLines", "10"),
        ])
        .unwrap();
        assert_eq!(o.container.as_deref(), Some("nginx"));
        assert!(o.follow);
        assert_eq!(o.tail_lines, Some(10));
        let e = q(&[("tailLines", "-1")]).unwrap_err();
        assert_eq!(e.code(), 422);
        assert!(
            e.message()
                .contains("tailLines: Invalid value: -1: must be greater than or equal to 0"),
            "{}",
            e.message()
        );
        let e = q(&[("sinceSeconds", "5"), ("sinceTime", "2026-01-01T00:00:00Z")]).unwrap_err();
        assert!(
            e.message()
                .contains("at most one of `sinceTime` or `sinceSeconds` may be specified")
        );
        assert_eq!(q(&[("limitBytes", "0")]).unwrap_err().code(), 422);
        assert_eq!(q(&[("tailLines", "x")]).unwrap_err().code(), 400);
    }
}
