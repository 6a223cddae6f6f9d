//! Pod (`pods`, `po`): PodSpec defaults and validation shared with every pod template, the admission
//! defaults a bare Pod gets (service account, default tolerations, priority), the update rule that only
//! images, activeDeadlineSeconds and added tolerations may change, and upstream's STATUS printer.

use k8s_openapi::api::core::v1::Pod as Object;
use serde_json::{Map, Value, json};
use skiff_k8s_core::status::FieldError;

use crate::kinds::typed::{
    Kind, age_cell, age_column, arr, child_map, col, default_field, name_cell, name_column, s,
    sub_map,
};
use crate::kinds::validation::{
    self, dns1123_label, dns1123_subdomain, duplicate, invalid_each, not_supported,
};
use crate::registry::strategy::Column;

pub(crate) struct Pod;

impl Kind for Pod {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["po"];
    const CATEGORIES: &'static [&'static str] = &["all"];
    const STATUS: bool = true;

    fn defaults(obj: &mut Value) {
        let spec = child_map(obj, "spec");
        default_pod_spec(spec);
        // What the ServiceAccount, DefaultTolerationSeconds and Priority admission plugins add.
        default_field(spec, "serviceAccountName", "default");
        if let Some(sa) = spec.get("serviceAccountName").cloned() {
            default_field(spec, "serviceAccount", sa);
        }
        default_field(spec, "priority", 0);
        default_field(spec, "preemptionPolicy", "PreemptLowerPriority");
        let tolerations = spec
            .entry("tolerations")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(list) = tolerations.as_array_mut() {
            for key in [
                "node.kubernetes.io/not-ready",
                "node.kubernetes.io/unreachable",
            ] {
                let has = list.iter().any(|t| {
                    let k = t.get("key").and_then(Value::as_str);
                    let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
                    (k == Some(key) || k.is_none()) && (effect.is_empty() || effect == "NoExecute")
                });
                if !has {
                    list.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
                }
            }
        }
    }

    fn on_create(obj: &mut Value) {
        let qos = qos_class(obj.get("spec").unwrap_or(&Value::Null));
        obj["status"] = json!({"phase": "Pending", "qosClass": qos});
    }

    fn validate(obj: &Value) -> Vec<FieldError> {
        validate_pod_spec(obj.get("spec").unwrap_or(&Value::Null), "spec")
    }

    fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
        let (n, o) = (&new["spec"], &old["spec"]);
        let mut errs = Vec::new();
        // Tolerations may only be added to.
        let new_tol = arr(new, "/spec/tolerations");
        let tolerations_ok = arr(old, "/spec/tolerations")
            .iter()
            .all(|t| new_tol.contains(t));
        // Compare the spec with the mutable fields taken from the old one.
        let mut masked = n.clone();
        for list in ["containers", "initContainers"] {
            if let (Some(nc), Some(oc)) = (
                masked.get_mut(list).and_then(Value::as_array_mut),
                o.get(list).and_then(Value::as_array),
            ) && nc.len() == oc.len()
            {
                for (c, oc) in nc.iter_mut().zip(oc) {
                    if let Some(img) = oc.get("image") {
                        c["image"] = img.clone();
                    }
                }
            }
        }
        if let Some(m) = masked.as_object_mut() {
            for key in ["activeDeadlineSeconds", "tolerations"] {
                match o.get(key) {
                    Some(v) => {
                        m.insert(key.into(), v.clone());
                    }
                    None => {
                        m.remove(key);
                    }
                }
            }
        }
        if masked != *o || !tolerations_ok {
            errs.push(FieldError::forbidden(
                "spec",
                "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
            ));
        }
        errs
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col(
                "Ready",
                "string",
                "The aggregate readiness state of this pod for accepting traffic.",
                0,
            ),
            col(
                "Status",
                "string",
                "The aggregate status of the containers in this pod.",
                0,
            ),
            col(
                "Restarts",
                "string",
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
                0,
            ),
            age_column(),
            col("IP", "string", "The IP address assigned to this pod", 1),
            col("Node", "string", "The node that this pod is assigned to", 1),
            col(
                "Nominated Node",
                "string",
                "The node that this pod is nominated for",
                1,
            ),
            col(
                "Readiness Gates",
                "string",
                "The readiness gates of this pod",
                1,
            ),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let p = print_pod(obj, now);
        let none = |v: &str| Value::from(if v.is_empty() { "<none>" } else { v });
        let ip = arr(obj, "/status/podIPs")
            .first()
            .and_then(|v| v.get("ip"))
            .and_then(Value::as_str)
            .unwrap_or("");
        vec![
            name_cell(obj),
            Value::from(format!("{}/{}", p.ready, p.total)),
            Value::from(p.reason),
            Value::from(p.restarts),
            age_cell(obj, now),
            none(ip),
            none(s(obj, "/spec/nodeName")),
            none(s(obj, "/status/nominatedNodeName")),
            Value::from(readiness_gates(obj)),
        ]
    }

    /// Pods on a node wait for their kubelet; unscheduled or finished pods go at once.
    fn graceful_deletion_seconds(obj: &Value) -> Option<i64> {
        let phase = s(obj, "/status/phase");
        if s(obj, "/spec/nodeName").is_empty() || phase == "Succeeded" || phase == "Failed" {
            return None;
        }
        Some(
            obj.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(30),
        )
        .filter(|g| *g > 0)
    }

    fn field_value(obj: &Value, field: &str) -> Option<String> {
        let ptr = match field {
            "spec.nodeName" => "/spec/nodeName",
            "spec.restartPolicy" => "/spec/restartPolicy",
            "spec.schedulerName" => "/spec/schedulerName",
            "spec.serviceAccountName" => "/spec/serviceAccountName",
            "spec.hostNetwork" => {
                let v = obj.pointer("/spec/hostNetwork").and_then(Value::as_bool);
                return Some(v.unwrap_or(false).to_string());
            }
            "status.phase" => "/status/phase",
            "status.podIP" => "/status/podIP",
            "status.nominatedNodeName" => "/status/nominatedNodeName",
            _ => return None,
        };
        Some(s(obj, ptr).to_string())
    }
}

/// `SetDefaults_PodSpec` and the container/volume defaults under it; used by every pod template.
pub(crate) fn default_pod_spec(spec: &mut Map<String, Value>) {
    default_field(spec, "dnsPolicy", "ClusterFirst");
    default_field(spec, "restartPolicy", "Always");
    default_field(spec, "terminationGracePeriodSeconds", 30);
    default_field(spec, "securityContext", json!({}));
    default_field(spec, "schedulerName", "default-scheduler");
    default_field(spec, "enableServiceLinks", true);
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            cs.iter_mut().for_each(default_container);
        }
    }
    if let Some(vols) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        for v in vols.iter_mut().filter_map(Value::as_object_mut) {
            for src in ["secret", "configMap", "downwardAPI", "projected"] {
                if let Some(m) = v.get_mut(src).and_then(Value::as_object_mut) {
                    default_field(m, "defaultMode", 420);
                }
            }
            let has_source = v.keys().any(|k| k != "name");
            if !has_source {
                v.insert("emptyDir".into(), json!({}));
            }
            if let Some(m) = v.get_mut("hostPath").and_then(Value::as_object_mut) {
                default_field(m, "type", "");
            }
        }
    }
}

fn default_container(c: &mut Value) {
    let Some(c) = c.as_object_mut() else { return };
    let image = c.get("image").and_then(Value::as_str).unwrap_or("");
    default_field(c, "imagePullPolicy", pull_policy(image));
    default_field(c, "terminationMessagePath", "/dev/termination-log");
    default_field(c, "terminationMessagePolicy", "File");
    default_field(c, "resources", json!({}));
    if let Some(res) = c.get_mut("resources").and_then(Value::as_object_mut) {
        // Requests default to limits (SetDefaults_Pod), which also decides QoS.
        if let Some(limits) = res.get("limits").and_then(Value::as_object).cloned() {
            let req = sub_map(res, "requests");
            for (k, v) in limits {
                req.entry(k).or_insert(v);
            }
        }
    }
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            default_field(p, "protocol", "TCP");
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).and_then(Value::as_object_mut) {
            default_field(p, "timeoutSeconds", 1);
            default_field(p, "periodSeconds", 10);
            default_field(p, "successThreshold", 1);
            default_field(p, "failureThreshold", 3);
            if let Some(h) = p.get_mut("httpGet").and_then(Value::as_object_mut) {
                default_field(h, "scheme", "HTTP");
                default_field(h, "path", "/");
            }
        }
    }
    if let Some(env) = c.get_mut("env").and_then(Value::as_array_mut) {
        for e in env.iter_mut() {
            if let Some(f) = e
                .pointer_mut("/valueFrom/fieldRef")
                .and_then(Value::as_object_mut)
            {
                default_field(f, "apiVersion", "v1");
            }
        }
    }
}

/// `Always` for `:latest` or no tag, else `IfNotPresent` (digests count as a tag).
pub(crate) fn pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

/// `GetPodQOS` over requests and limits (after requests were defaulted from limits).
pub(crate) fn qos_class(spec: &Value) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    let containers = spec
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            spec.get("initContainers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
    for c in containers {
        let req = c.pointer("/resources/requests").and_then(Value::as_object);
        let lim = c.pointer("/resources/limits").and_then(Value::as_object);
        let nonzero = |m: Option<&Map<String, Value>>, k: &str| {
            m.and_then(|m| m.get(k)).is_some_and(|v| {
                let t = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                !t.trim_start_matches(['0', '.']).is_empty()
            })
        };
        for k in ["cpu", "memory"] {
            if nonzero(req, k) || nonzero(lim, k) {
                any = true;
            }
            if !nonzero(lim, k) {
                guaranteed = false;
            }
            if let (Some(r), Some(l)) = (req.and_then(|m| m.get(k)), lim.and_then(|m| m.get(k)))
                && r != l
            {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

/// `ValidatePodSpec` for the cases users hit; `path` is `spec` or `spec.template.spec`.
pub(crate) fn validate_pod_spec(spec: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut volumes = Vec::new();
    for (i, v) in spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = v.get("name").and_then(Value::as_str).unwrap_or("");
        let p = format!("{path}.volumes[{i}].name");
        if name.is_empty() {
            errs.push(FieldError::required(&p, ""));
        } else if volumes.contains(&name) {
            errs.push(duplicate(&p, Value::from(name)));
        } else {
            errs.extend(invalid_each(&p, name, dns1123_label(name)));
        }
        volumes.push(name);
    }
    let containers = spec.get("containers").and_then(Value::as_array);
    if containers.is_none_or(Vec::is_empty) {
        errs.push(FieldError::required(format!("{path}.containers"), ""));
    }
    let mut names: Vec<String> = Vec::new();
    for list in ["initContainers", "containers"] {
        for (i, c) in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            errs.extend(validate_container(
                c,
                &format!("{path}.{list}[{i}]"),
                &mut names,
                &volumes,
            ));
        }
    }
    let rp = spec.get("restartPolicy").unwrap_or(&Value::Null);
    if let Some(r) = rp.as_str()
        && !["Always", "OnFailure", "Never"].contains(&r)
    {
        errs.push(not_supported(
            &format!("{path}.restartPolicy"),
            rp,
            &["Always", "OnFailure", "Never"],
        ));
    }
    let dp = spec.get("dnsPolicy").unwrap_or(&Value::Null);
    let dns = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
    if let Some(d) = dp.as_str()
        && !dns.contains(&d)
    {
        errs.push(not_supported(&format!("{path}.dnsPolicy"), dp, &dns));
    }
    errs.extend(validation::non_negative(
        spec,
        "/terminationGracePeriodSeconds",
        &format!("{path}.terminationGracePeriodSeconds"),
    ));
    if let Some(a) = spec.get("activeDeadlineSeconds").and_then(Value::as_i64)
        && a <= 0
    {
        errs.push(FieldError::invalid(
            format!("{path}.activeDeadlineSeconds"),
            json!(a),
            "must be between 1 and 2147483647, inclusive",
        ));
    }
    for key in ["serviceAccountName", "nodeName"] {
        if let Some(n) = spec.get(key).and_then(Value::as_str)
            && !n.is_empty()
        {
            errs.extend(invalid_each(
                &format!("{path}.{key}"),
                n,
                dns1123_subdomain(n),
            ));
        }
    }
    errs
}

fn validate_container(
    c: &Value,
    path: &str,
    names: &mut Vec<String>,
    volumes: &[&str],
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = c.get("name").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else {
        let msgs = dns1123_label(name);
        if msgs.is_empty() && names.iter().any(|n| n == name) {
            errs.push(duplicate(&format!("{path}.name"), Value::from(name)));
        }
        errs.extend(invalid_each(&format!("{path}.name"), name, msgs));
        names.push(name.to_string());
    }
    if c.get("image")
        .and_then(Value::as_str)
        .is_none_or(|i| i.trim().is_empty())
    {
        errs.push(FieldError::required(format!("{path}.image"), ""));
    }
    let pp = c.get("imagePullPolicy").unwrap_or(&Value::Null);
    if let Some(p) = pp.as_str()
        && !PULL_POLICIES.contains(&p)
    {
        errs.push(not_supported(
            &format!("{path}.imagePullPolicy"),
            pp,
            PULL_POLICIES,
        ));
    }
    let mut port_names: Vec<&str> = Vec::new();
    for (i, p) in c
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let pp = format!("{path}.ports[{i}]");
        match p.get("containerPort").and_then(Value::as_i64) {
            None => errs.push(FieldError::required(format!("{pp}.containerPort"), "")),
            Some(n) if !(1..=65535).contains(&n) => errs.push(FieldError::invalid(
                format!("{pp}.containerPort"),
                json!(n),
                "must be between 1 and 65535, inclusive",
            )),
            _ => {}
        }
        if let Some(n) = p.get("hostPort").and_then(Value::as_i64)
            && n != 0
            && !(1..=65535).contains(&n)
        {
            errs.push(FieldError::invalid(
                format!("{pp}.hostPort"),
                json!(n),
                "must be between 1 and 65535, inclusive",
            ));
        }
        let proto = p.get("protocol").unwrap_or(&Value::Null);
        if let Some(pr) = proto.as_str()
            && !PROTOCOLS.contains(&pr)
        {
            errs.push(not_supported(&format!("{pp}.protocol"), proto, PROTOCOLS));
        }
        if let Some(n) = p.get("name").and_then(Value::as_str) {
            let msgs = iana_svc_name(n);
            if msgs.is_empty() && port_names.contains(&n) {
                errs.push(duplicate(&format!("{pp}.name"), Value::from(n)));
            }
            errs.extend(invalid_each(&format!("{pp}.name"), n, msgs));
            port_names.push(n);
        }
    }
    for (i, m) in c
        .get("volumeMounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = m.get("name").and_then(Value::as_str).unwrap_or("");
        let mp = format!("{path}.volumeMounts[{i}]");
        if name.is_empty() {
            errs.push(FieldError::required(format!("{mp}.name"), ""));
        } else if !volumes.contains(&name) {
            errs.push(FieldError {
                path: format!("{mp}.name"),
                kind: skiff_k8s_core::status::FieldErrorKind::NotFound,
                value: Some(Value::from(name)),
                detail: String::new(),
            });
        }
        if m.get("mountPath")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            errs.push(FieldError::required(format!("{mp}.mountPath"), ""));
        }
    }
    errs
}

/// `IsValidPortName` (IANA_SVC_NAME).
pub(crate) fn iana_svc_name(n: &str) -> Vec<String> {
    let mut out = Vec::new();
    if n.len() > 15 {
        out.push("must be no more than 15 characters".to_string());
    }
    if n.is_empty()
        || !n
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        out.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if n.contains("--") {
        out.push("must not contain consecutive hyphens".to_string());
    }
    if !n.chars().any(|c| c.is_ascii_lowercase()) {
        out.push("must contain at least one letter (a-z)".to_string());
    }
    if n.starts_with('-') || n.ends_with('-') {
        out.push("must not begin or end with a hyphen".to_string());
    }
    out
}

/// What `printPod` computes.
pub(crate) struct PodPrint {
    pub ready: usize,
    pub total: usize,
    pub reason: String,
    pub restarts: String,
}

fn finished_at(st: &Value) -> Option<jiff::Timestamp> {
    st.pointer("/lastState/terminated/finishedAt")
        .and_then(Value::as_str)
        .and_then(|t| t.parse().ok())
}

/// Upstream `printPod` (pkg/printers/internalversion): READY, STATUS and RESTARTS.
pub(crate) fn print_pod(pod: &Value, now: jiff::Timestamp) -> PodPrint {
    let init_specs = arr(pod, "/spec/initContainers");
    let restartable = |name: &str| {
        init_specs.iter().any(|c| {
            c.get("name").and_then(Value::as_str) == Some(name)
                && c.get("restartPolicy").and_then(Value::as_str) == Some("Always")
        })
    };
    let mut total = arr(pod, "/spec/containers").len();
    total += init_specs
        .iter()
        .filter(|c| c.get("restartPolicy").and_then(Value::as_str) == Some("Always"))
        .count();
    let mut ready = 0;
    let mut restarts = 0i64;
    let mut sidecar_restarts = 0i64;
    let mut last: Option<jiff::Timestamp> = None;
    let mut sidecar_last: Option<jiff::Timestamp> = None;
    let mut reason = s(pod, "/status/phase").to_string();
    if !s(pod, "/status/reason").is_empty() {
        reason = s(pod, "/status/reason").to_string();
    }
    let conds = arr(pod, "/status/conditions");
    let cond = |t: &str| {
        conds
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(t))
    };
    if cond("PodScheduled")
        .and_then(|c| c.get("reason"))
        .and_then(Value::as_str)
        == Some("SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }
    let inits = arr(pod, "/status/initContainerStatuses");
    let n_init = init_specs.len();
    let mut initializing = false;
    for (i, c) in inits.iter().enumerate() {
        let rc = c.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
        restarts += rc;
        let fin = finished_at(c);
        if fin > last {
            last = fin;
        }
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        let started = c.get("started").and_then(Value::as_bool) == Some(true);
        if restartable(name) {
            sidecar_restarts += rc;
            if fin > sidecar_last {
                sidecar_last = fin;
            }
            if started && c.get("ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
        }
        let term = c.pointer("/state/terminated");
        let waiting_reason = c
            .pointer("/state/waiting/reason")
            .and_then(Value::as_str)
            .unwrap_or("");
        if let Some(t) = term
            && t.get("exitCode").and_then(Value::as_i64).unwrap_or(0) == 0
        {
            continue;
        }
        if restartable(name) && started {
            continue;
        }
        if let Some(t) = term {
            let r = t.get("reason").and_then(Value::as_str).unwrap_or("");
            reason = if !r.is_empty() {
                format!("Init:{r}")
            } else if let Some(sig) = t.get("signal").and_then(Value::as_i64).filter(|s| *s != 0) {
                format!("Init:Signal:{sig}")
            } else {
                format!(
                    "Init:ExitCode:{}",
                    t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
                )
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{n_init}");
        }
        initializing = true;
        break;
    }
    let initialized = cond("Initialized")
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        == Some("True");
    if !initializing || initialized {
        restarts = sidecar_restarts;
        last = sidecar_last;
        let mut has_running = false;
        for c in arr(pod, "/status/containerStatuses").iter().rev() {
            restarts += c.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
            let fin = finished_at(c);
            if fin > last {
                last = fin;
            }
            let waiting = c
                .pointer("/state/waiting/reason")
                .and_then(Value::as_str)
                .unwrap_or("");
            let term = c.pointer("/state/terminated");
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if let Some(t) = term {
                let r = t.get("reason").and_then(Value::as_str).unwrap_or("");
                reason = if !r.is_empty() {
                    r.to_string()
                } else if let Some(sig) =
                    t.get("signal").and_then(Value::as_i64).filter(|s| *s != 0)
                {
                    format!("Signal:{sig}")
                } else {
                    format!(
                        "ExitCode:{}",
                        t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
                    )
                };
            } else if c.get("ready").and_then(Value::as_bool) == Some(true)
                && c.pointer("/state/running").is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = cond("Ready")
                .and_then(|c| c.get("status"))
                .and_then(Value::as_str)
                == Some("True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
        }
    }
    let deleting = pod
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null());
    let phase = s(pod, "/status/phase");
    if deleting && s(pod, "/status/reason") == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }
    let restarts = match last {
        Some(t) if restarts != 0 => format!(
            "{restarts} ({} ago)",
            crate::registry::human_duration((now.as_second() - t.as_second()).max(0))
        ),
        _ => restarts.to_string(),
    };
    PodPrint {
        ready,
        total,
        reason,
        restarts,
    }
}

fn readiness_gates(pod: &Value) -> String {
    let gates = arr(pod, "/spec/readinessGates");
    if gates.is_empty() {
        return "<none>".to_string();
    }
    let conds = arr(pod, "/status/conditions");
    let true_count = gates
        .iter()
        .filter(|g| {
            let t = g.get("conditionType");
            conds
                .iter()
                .find(|c| c.get("type") == t)
                .is_some_and(|c| c.get("status").and_then(Value::as_str) == Some("True"))
        })
        .count();
    format!("{true_count}/{}", gates.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;

    fn now() -> jiff::Timestamp {
        "2026-01-01T00:10:00Z".parse().unwrap()
    }

    fn created(st: &Typed<Pod>, mut v: Value) -> Value {
        v = st.canonicalize(v).unwrap().0;
        st.prepare_for_create(&mut v);
        v
    }

    #[test]
    fn defaults_match_upstream() {
        let st = Typed::<Pod>::new();
        let p = created(
            &st,
            json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"containers": [
            {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "nginx:1.27", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}),
        );
        let spec = &p["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["serviceAccountName"], "default");
        assert_eq!(spec["enableServiceLinks"], true);
        assert_eq!(spec["securityContext"], json!({}));
        assert_eq!(spec["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(spec["containers"][1]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(spec["containers"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(
            spec["containers"][0]["terminationMessagePath"],
            "/dev/termination-log"
        );
        assert_eq!(spec["containers"][1]["resources"]["requests"]["cpu"], "1");
        assert_eq!(spec["tolerations"].as_array().unwrap().len(), 2);
        assert_eq!(spec["tolerations"][0]["tolerationSeconds"], 300);
        assert_eq!(
            p["status"],
            json!({"phase": "Pending", "qosClass": "Burstable"})
        );
        assert!(st.validate(&p).is_empty(), "{:?}", st.validate(&p));
    }

    #[test]
    fn validation_causes() {
        let st = Typed::<Pod>::new();
        let e = st.validate(&json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {}}));
        assert_eq!(e, vec![FieldError::required("spec.containers", "")]);
        let e = st.validate(
            &json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"containers": [
            {"name": "Bad", "image": "x", "ports": [{"containerPort": 70000}]}, {"name": "ok"}]}}),
        );
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "spec.containers[0].name",
                "spec.containers[0].ports[0].containerPort",
                "spec.containers[1].image"
            ]
        );
        assert_eq!(e[1].detail, "must be between 1 and 65535, inclusive");
    }

    #[test]
    fn update_allows_image_only() {
        let st = Typed::<Pod>::new();
        let old = created(
            &st,
            json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"containers": [{"name": "a", "image": "x:1"}]}}),
        );
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("x:2");
        assert!(st.validate_update(&new, &old).is_empty());
        new["spec"]["restartPolicy"] = json!("Never");
        let e = st.validate_update(&new, &old);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].path, "spec");
    }

    #[test]
    fn status_column_follows_printer() {
        let st = Typed::<Pod>::new();
        let mut p = json!({"metadata": {"name": "p", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}], "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-01-01T00:07:00Z"}}}]}});
        let row = st.row(&p, now());
        assert_eq!(
            row[..5],
            [
                json!("p"),
                json!("1/2"),
                json!("CrashLoopBackOff"),
                json!("2 (3m ago)"),
                json!("10m")
            ]
        );
        assert_eq!(row[5], "10.0.0.5");
        assert_eq!(row[6], "<none>");
        p["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:09:00Z");
        assert_eq!(st.row(&p, now())[2], "Terminating");
        let init = json!({"metadata": {"name": "p"}, "spec": {"initContainers": [{"name": "i"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [{"name": "i", "restartCount": 0, "state": {"running": {}}}]}});
        assert_eq!(st.row(&init, now())[2], "Init:0/1");
        assert_eq!(
            st.field_value(&init, "status.phase").as_deref(),
            Some("Pending")
        );
        assert_eq!(st.field_value(&init, "spec.nodeName").as_deref(), Some(""));
        assert_eq!(st.field_value(&init, "spec.bogus"), None);
        assert_eq!(st.graceful_deletion_seconds(&init), None);
        let mut bound = init.clone();
        bound["spec"]["nodeName"] = json!("n1");
        bound["spec"]["terminationGracePeriodSeconds"] = json!(5);
        assert_eq!(st.graceful_deletion_seconds(&bound), Some(5));
    }
}
