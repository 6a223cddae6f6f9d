//! The HorizontalPodAutoscaler controller (`pkg/controller/podautoscaler`, autoscaling/v2):
//! every sync period it reads the target's replicas and selector, computes the replicas each
//! Resource metric (CPU or memory, Utilization or AverageValue) asks for from the Pods' usage
//! ([`horizontal_pod_autoscaler_metrics`](crate::horizontal_pod_autoscaler_metrics)), takes the
//! largest, applies `spec.behavior` and the replica bounds
//! ([`horizontal_pod_autoscaler_behavior`](crate::horizontal_pod_autoscaler_behavior)), writes
//! the new count through the target's `scale` subresource, and reports `currentMetrics`,
//! `currentReplicas`/`desiredReplicas`, `lastScaleTime` and the `AbleToScale`, `ScalingActive`
//! and `ScalingLimited` conditions with upstream's reasons and messages (the `kubectl get hpa`
//! TARGETS column is printed from `currentMetrics`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, PatchOptions, ResourceRef, WriteOptions};
use skiff_k8s_core::patch::PatchType;
use skiff_k8s_core::quantity::{Format, Quantity};
use skiff_k8s_core::selector::Selector;
use skiff_k8s_core::status::ApiError;

use crate::horizontal_pod_autoscaler_behavior::History;
use crate::horizontal_pod_autoscaler_metrics::{
    MetricsSource, SimulatedMetrics, Target, resource_replicas,
};
use crate::ownership::{self, str_at};
use crate::runtime::events::{EventRecorder, EventType, Recorder};
use crate::runtime::informer::{Cache, Change, key_of};
use crate::runtime::queue::WorkQueue;
use crate::runtime::reconcile::{Action, Error, Reconciler};
use crate::runtime::{Clock, rfc3339};

pub const NAME: &str = "horizontal-pod-autoscaler-controller";

/// `--horizontal-pod-autoscaler-sync-period`.
pub const SYNC_PERIOD: Duration = Duration::from_secs(15);

#[doc(alias = "autoscaling/v2")]
pub fn horizontal_pod_autoscalers() -> ResourceRef {
    ResourceRef::new("autoscaling", "v2", "horizontalpodautoscalers")
}

/// The resource behind a `scaleTargetRef` (the kinds with a `scale` subresource Skiff serves).
pub fn scale_target(api_version: &str, kind: &str) -> Option<ResourceRef> {
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let (version, resource) = match (group, kind) {
        ("apps", "Deployment") => ("v1", "deployments"),
        ("apps", "ReplicaSet") => ("v1", "replicasets"),
        ("apps", "StatefulSet") => ("v1", "statefulsets"),
        ("", "ReplicationController") => ("v1", "replicationcontrollers"),
        _ => return None,
    };
    Some(ResourceRef::new(group, version, resource))
}

pub struct HpaController {
    client: Arc<dyn ApiClient>,
    hpas: Cache,
    pods: Cache,
    clock: Arc<dyn Clock>,
    metrics: Arc<dyn MetricsSource>,
    sync_period: Duration,
    history: Mutex<HashMap<String, History>>,
    /// `SuccessfulRescale`/`FailedRescale` Events; none in unit tests that assert writes.
    events: Option<Arc<EventRecorder>>,
}

/// What the metrics ask for: replicas, `currentMetrics`, and which metric decided.
struct Computed {
    replicas: i64,
    metrics: Vec<Value>,
    what: String,
}

/// Why no replica count came out, with the metrics that did.
struct MetricsFailure {
    metrics: Vec<Value>,
    message: String,
    reason: &'static str,
}

/// The conditions of one sync, in upstream's order.
struct Conditions {
    able: (&'static str, &'static str, String),
    active: Option<(&'static str, &'static str, String)>,
    limited: Option<(&'static str, &'static str, String)>,
}

impl HpaController {
    pub fn new(
        client: Arc<dyn ApiClient>,
        hpas: Cache,
        pods: Cache,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client,
            hpas,
            pods,
            clock,
            metrics: Arc::new(SimulatedMetrics),
            sync_period: SYNC_PERIOD,
            history: Mutex::new(HashMap::new()),
            events: None,
        }
    }

    /// Records events as upstream's controller does.
    pub fn with_events(mut self, events: Arc<EventRecorder>) -> Self {
        self.events = Some(events);
        self
    }

    /// Another source of Pod usage (a real metrics pipeline).
    pub fn with_metrics(mut self, metrics: Arc<dyn MetricsSource>) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn with_sync_period(mut self, d: Duration) -> Self {
        self.sync_period = d;
        self
    }

    /// New HPAs and spec changes are synced at once; the controller's own status writes are not
    /// (the sync period brings it back).
    pub fn on_hpa(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| {
            let h = c.object();
            let fresh =
                h.pointer("/metadata/generation") != h.pointer("/status/observedGeneration");
            if matches!(c, Change::Added(_)) || fresh {
                queue.add(&key_of(h));
            }
        }
    }

    /// The replicas the metrics ask for, with `currentMetrics` and the `ScalingActive` message.
    fn compute(
        &self,
        hpa: &Value,
        pods: &[Value],
        current: i64,
    ) -> Result<Computed, MetricsFailure> {
        let specs = hpa
            .pointer("/spec/metrics")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut best: Option<(i64, String)> = None;
        let mut statuses = Vec::new();
        let mut first_err: Option<(String, &'static str)> = None;
        for m in &specs {
            if str_at(m, "/type") != "Resource" {
                first_err.get_or_insert((
                    format!(
                        "the HPA was unable to compute the replica count: metric type {:?} is not served by Skiff's metrics source",
                        str_at(m, "/type")
                    ),
                    "FailedGetExternalMetric",
                ));
                statuses.push(json!({"type": ""}));
                continue;
            }
            let name = str_at(m, "/resource/name");
            let t = &m["resource"]["target"];
            let target = match str_at(t, "/type") {
                "Utilization" => t
                    .get("averageUtilization")
                    .and_then(Value::as_i64)
                    .map(Target::Utilization),
                "AverageValue" => t
                    .get("averageValue")
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .and_then(|s| Quantity::parse(&s).ok())
                    .map(|q| Target::AverageValue(q.milli_value())),
                _ => None,
            };
            let Some(target) = target else {
                first_err.get_or_insert((
                    format!("the HPA was unable to compute the replica count: invalid target for {name} resource metric"),
                    "FailedGetResourceMetric",
                ));
                statuses.push(json!({"type": ""}));
                continue;
            };
            match resource_replicas(self.metrics.as_ref(), pods, name, target, current) {
                Ok(p) => {
                    let mut cur = json!({"averageValue":
                        Quantity::from_milli(p.average, Format::DecimalSi).to_string()});
                    if let Some(u) = p.utilization {
                        cur["averageUtilization"] = json!(u);
                    }
                    statuses.push(json!({"type": "Resource",
                        "resource": {"name": name, "current": cur}}));
                    let what = match target {
                        Target::Utilization(_) => {
                            format!("{name} resource utilization (percentage of request)")
                        }
                        Target::AverageValue(_) => format!("{name} resource"),
                    };
                    if best.as_ref().is_none_or(|(r, _)| p.replicas > *r) {
                        best = Some((p.replicas, what));
                    }
                }
                Err(e) => {
                    first_err.get_or_insert((
                        format!("the HPA was unable to compute the replica count: failed to get {name} utilization: {e}"),
                        "FailedGetResourceMetric",
                    ));
                    statuses.push(json!({"type": ""}));
                }
            }
        }
        match (best, first_err) {
            // A failing metric may not cause a scale-down (upstream: only scale up past errors).
            (Some((replicas, what)), Some(_)) if replicas > current => Ok(Computed {
                replicas,
                metrics: statuses,
                what,
            }),
            (Some((replicas, what)), None) => Ok(Computed {
                replicas,
                metrics: statuses,
                what,
            }),
            (_, Some((message, reason))) => Err(MetricsFailure {
                metrics: statuses,
                message,
                reason,
            }),
            (None, None) => Err(MetricsFailure {
                metrics: statuses,
                message: "the HPA was unable to compute the replica count: no metrics".into(),
                reason: "FailedGetResourceMetric",
            }),
        }
    }

    fn conditions(&self, hpa: &Value, c: Conditions) -> Value {
        let now = rfc3339(self.clock.now());
        let prev = hpa
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let cond = |kind: &str, status: &str, reason: &str, message: &str| {
            let since = prev
                .iter()
                .find(|p| str_at(p, "/type") == kind && str_at(p, "/status") == status)
                .map(|p| p["lastTransitionTime"].clone())
                .unwrap_or(json!(now));
            json!({"type": kind, "status": status, "reason": reason, "message": message,
                "lastTransitionTime": since})
        };
        let mut out = vec![cond("AbleToScale", c.able.0, c.able.1, &c.able.2)];
        for (kind, v) in [("ScalingActive", c.active), ("ScalingLimited", c.limited)] {
            match v {
                Some((status, reason, msg)) => out.push(cond(kind, status, reason, &msg)),
                // Not evaluated this time: keep what was there.
                None => out.extend(prev.iter().find(|p| str_at(p, "/type") == kind).cloned()),
            }
        }
        Value::Array(out)
    }

    async fn write_status(&self, hpa: &Value, status: Value) -> Result<(), ApiError> {
        if hpa.get("status") == Some(&status) {
            return Ok(());
        }
        let mut upd = hpa.clone();
        upd["status"] = status;
        let opts = WriteOptions {
            field_manager: Some(NAME.into()),
            ..Default::default()
        };
        let r = horizontal_pod_autoscalers().in_namespace(ownership::namespace(hpa));
        match self.client.update_status(&r, upd, &opts).await {
            Ok(_) | Err(ApiError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[async_trait::async_trait]
impl Reconciler for HpaController {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &str) -> Result<Action, Error> {
        let Some(hpa) = self.hpas.get(key) else {
            self.history
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(key);
            return Ok(Action::AwaitChange);
        };
        let again = Action::Requeue(self.sync_period);
        let ns = ownership::namespace(&hpa).to_string();
        let mut status = hpa
            .get("status")
            .cloned()
            .filter(Value::is_object)
            .unwrap_or(json!({}));
        status["observedGeneration"] = hpa
            .pointer("/metadata/generation")
            .cloned()
            .unwrap_or(json!(1));
        let tref = hpa
            .pointer("/spec/scaleTargetRef")
            .cloned()
            .unwrap_or(json!({}));
        let (kind, tname) = (str_at(&tref, "/kind"), str_at(&tref, "/name"));
        let failed_scale = |msg: String| Conditions {
            able: ("False", "FailedGetScale", msg),
            active: None,
            limited: None,
        };
        let target_res = scale_target(str_at(&tref, "/apiVersion"), kind);
        let target = match &target_res {
            None => Err(format!(
                "the HPA controller was unable to get the target's current scale: no matches for kind {kind:?} in group {:?}",
                str_at(&tref, "/apiVersion")
                    .rsplit_once('/')
                    .map_or("", |(g, _)| g)
            )),
            Some(r) => match self.client.get(&r.clone().in_namespace(&ns), tname).await {
                Ok(t) => Ok(t),
                Err(e) => Err(format!(
                    "the HPA controller was unable to get the target's current scale: {}",
                    e.message()
                )),
            },
        };
        let target = match target {
            Ok(t) => t,
            Err(msg) => {
                status["conditions"] = self.conditions(&hpa, failed_scale(msg));
                self.write_status(&hpa, status).await?;
                return Ok(again);
            }
        };
        let current = target
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let min = hpa
            .pointer("/spec/minReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let max = hpa
            .pointer("/spec/maxReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(min);
        let now = self.clock.now();

        // Upstream's `rescaleReason`, the tail of the `SuccessfulRescale` message.
        let mut rescale_reason = String::new();
        let (desired, conds, metrics) = if current == 0 && min != 0 {
            let c = Conditions {
                able: (
                    "True",
                    "SucceededGetScale",
                    "the HPA controller was able to get the target's current scale".into(),
                ),
                active: Some((
                    "False",
                    "ScalingDisabled",
                    "scaling is disabled since the replica count of the target is zero".into(),
                )),
                limited: None,
            };
            (0, c, vec![])
        } else if current > max || current < min {
            rescale_reason = if current > max {
                "Current number of replicas above Spec.MaxReplicas".into()
            } else {
                "Current number of replicas below Spec.MinReplicas".into()
            };
            let (d, reason, msg) = if current > max {
                (
                    max,
                    "TooManyReplicas",
                    "the desired replica count is more than the maximum replica count",
                )
            } else {
                (
                    min,
                    "TooFewReplicas",
                    "the desired replica count is less than the minimum replica count",
                )
            };
            let c = Conditions {
                able: (
                    "True",
                    "SucceededRescale",
                    format!("the HPA controller was able to update the target scale to {d}"),
                ),
                active: None,
                limited: Some(("True", reason, msg.into())),
            };
            (d, c, vec![])
        } else {
            let selector = target
                .pointer("/spec/selector")
                .map(Selector::from_label_selector)
                .unwrap_or_else(|| Err("selector is required".into()));
            let sel = match selector {
                Ok(s) if !s.is_everything() => s,
                _ => {
                    status["currentReplicas"] = json!(current);
                    status["conditions"] = self.conditions(
                        &hpa,
                        Conditions {
                            able: (
                                "True",
                                "SucceededGetScale",
                                "the HPA controller was able to get the target's current scale"
                                    .into(),
                            ),
                            active: Some((
                                "False",
                                "InvalidSelector",
                                "the HPA target's scale is missing a selector".into(),
                            )),
                            limited: None,
                        },
                    );
                    self.write_status(&hpa, status).await?;
                    return Ok(again);
                }
            };
            let pods: Vec<Value> = self
                .pods
                .list(Some(&ns))
                .into_iter()
                .filter(|p| sel.matches_object(p))
                .collect();
            match self.compute(&hpa, &pods, current) {
                Err(MetricsFailure {
                    metrics,
                    message: msg,
                    reason,
                }) => {
                    status["currentReplicas"] = json!(current);
                    status["currentMetrics"] = json!(metrics);
                    status["conditions"] = self.conditions(
                        &hpa,
                        Conditions {
                            able: (
                                "True",
                                "SucceededGetScale",
                                "the HPA controller was able to get the target's current scale"
                                    .into(),
                            ),
                            active: Some(("False", reason, msg)),
                            limited: None,
                        },
                    );
                    self.write_status(&hpa, status).await?;
                    return Ok(again);
                }
                Ok(Computed {
                    replicas: proposed,
                    metrics,
                    what,
                }) => {
                    let behavior = hpa
                        .pointer("/spec/behavior")
                        .cloned()
                        .unwrap_or(Value::Null);
                    let n = self
                        .history
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(key.to_string())
                        .or_default()
                        .normalize(&behavior, now, current, proposed, min, max);
                    rescale_reason = if n.replicas > current {
                        format!("{what} above target")
                    } else {
                        "All metrics below target".into()
                    };
                    let c = Conditions {
                        able: ("True", n.able.0, n.able.1.into()),
                        active: Some((
                            "True",
                            "ValidMetricFound",
                            format!(
                                "the HPA was able to successfully calculate a replica count from {what}"
                            ),
                        )),
                        limited: Some((
                            if n.limited.0 { "True" } else { "False" },
                            n.limited.1,
                            n.limited.2.into(),
                        )),
                    };
                    (n.replicas, c, metrics)
                }
            }
        };
        let mut conds = conds;
        if desired != current {
            let r = target_res
                .unwrap_or_else(|| ResourceRef::new("", "v1", ""))
                .in_namespace(&ns);
            let opts = PatchOptions {
                field_manager: Some(NAME.into()),
                subresource: Some("scale".into()),
                ..Default::default()
            };
            if let Err(e) = self
                .client
                .patch(
                    &r,
                    tname,
                    PatchType::Merge,
                    json!({"spec": {"replicas": desired}}),
                    &opts,
                )
                .await
            {
                self.events.event(
                    &hpa,
                    EventType::Warning,
                    "FailedRescale",
                    &format!(
                        "New size: {desired}; reason: {rescale_reason}; error: {}",
                        e.message()
                    ),
                );
                status["conditions"] = self.conditions(
                    &hpa,
                    Conditions {
                        able: (
                            "False",
                            "FailedUpdateScale",
                            format!(
                                "the HPA controller was unable to update the target scale: {}",
                                e.message()
                            ),
                        ),
                        active: conds.active,
                        limited: conds.limited,
                    },
                );
                self.write_status(&hpa, status).await?;
                return Err(e.into());
            }
            self.history
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key.to_string())
                .or_default()
                .record_scale(now, current, desired);
            self.events.event(
                &hpa,
                EventType::Normal,
                "SuccessfulRescale",
                &format!("New size: {desired}; reason: {rescale_reason}"),
            );
            conds.able = (
                "True",
                "SucceededRescale",
                format!("the HPA controller was able to update the target scale to {desired}"),
            );
            status["lastScaleTime"] = json!(rfc3339(now));
        }
        status["currentReplicas"] = json!(current);
        status["desiredReplicas"] = json!(desired);
        status["currentMetrics"] = json!(metrics);
        status["conditions"] = self.conditions(&hpa, conds);
        self.write_status(&hpa, status).await?;
        Ok(again)
    }
}

/// Registers the informer handlers and builds the controller (the [`crate::CONTROLLERS`] entry).
pub fn setup(
    inf: &mut crate::Informers,
    client: Arc<dyn ApiClient>,
    clock: Arc<dyn Clock>,
    q: WorkQueue,
) -> Arc<dyn Reconciler> {
    // Upstream's recorder names itself `horizontal-pod-autoscaler`.
    let events = EventRecorder::new(client.clone(), "horizontal-pod-autoscaler", clock.clone());
    let c = HpaController::new(
        client,
        inf.cache(horizontal_pod_autoscalers()),
        inf.cache(crate::replicaset::pods()),
        clock,
    )
    .with_events(events);
    inf.get(horizontal_pod_autoscalers())
        .add_handler(Arc::new(HpaController::on_hpa(q)));
    Arc::new(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::horizontal_pod_autoscaler_metrics::CPU_USAGE_ANNOTATION;
    use crate::runtime::FakeClock;
    use crate::testing::FakeClient;

    fn deployments() -> ResourceRef {
        ResourceRef::new("apps", "v1", "deployments")
    }

    fn hpa(metrics: Value) -> Value {
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "ns", "generation": 1},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 10, "metrics": metrics,
                "behavior": {"scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                    "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                 {"type": "Percent", "value": 100, "periodSeconds": 15}]},
                    "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}}}})
    }

    fn cpu(target: i64) -> Value {
        json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": target}}}])
    }

    fn pod(name: &str, usage: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns", "labels": {"app": "web"},
                "annotations": {CPU_USAGE_ANNOTATION: usage}},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "200m"}}}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})
    }

    fn world(
        replicas: i64,
        h: Value,
        pods: &[Value],
    ) -> (Arc<FakeClient>, HpaController, Arc<FakeClock>) {
        let fake = Arc::new(FakeClient::default());
        fake.seed(
            &deployments(),
            json!({"metadata": {"name": "web", "namespace": "ns"},
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}}}),
        );
        let h = fake.seed(&horizontal_pod_autoscalers(), h);
        let clock = FakeClock::new("2026-01-01T00:00:00Z".parse().unwrap());
        let c = HpaController::new(
            fake.clone(),
            Cache::default(),
            Cache::default(),
            clock.clone(),
        );
        c.hpas.insert(h);
        for p in pods {
            c.pods.insert(p.clone());
        }
        (fake, c, clock)
    }

    fn status(fake: &FakeClient) -> Value {
        fake.object(&horizontal_pod_autoscalers(), "ns/web")
            .unwrap()["status"]
            .clone()
    }

    fn condition(s: &Value, kind: &str) -> (String, String) {
        let c = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == kind)
            .unwrap();
        (
            c["status"].as_str().unwrap().into(),
            c["reason"].as_str().unwrap().into(),
        )
    }

    #[tokio::test]
    async fn scales_up_on_cpu_utilization_through_the_scale_subresource() {
        // 2 pods at 150 % of their 200m request against a 50 % target → 6.
        let (fake, c, _) = world(2, hpa(cpu(50)), &[pod("a", "300m"), pod("b", "300m")]);
        assert_eq!(
            c.reconcile("ns/web").await.unwrap(),
            Action::Requeue(SYNC_PERIOD)
        );
        assert_eq!(
            fake.writes(),
            [
                "patch/scale deployments ns/web",
                "update_status horizontalpodautoscalers ns/web"
            ]
        );
        let d = fake.object(&deployments(), "ns/web").unwrap();
        assert_eq!(d["spec"]["replicas"], 6);
        let s = status(&fake);
        assert_eq!(
            (&s["currentReplicas"], &s["desiredReplicas"]),
            (&json!(2), &json!(6))
        );
        assert_eq!(
            s["currentMetrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "current": {"averageUtilization": 150, "averageValue": "300m"}}}])
        );
        assert_eq!(s["lastScaleTime"], "2026-01-01T00:00:00Z");
        assert_eq!(
            condition(&s, "AbleToScale"),
            ("True".into(), "SucceededRescale".into())
        );
        assert_eq!(
            condition(&s, "ScalingActive"),
            ("True".into(), "ValidMetricFound".into())
        );
        assert_eq!(
            condition(&s, "ScalingLimited"),
            ("False".into(), "DesiredWithinRange".into())
        );
        let active = s["conditions"][1]["message"].as_str().unwrap();
        assert_eq!(
            active,
            "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"
        );
    }

    #[tokio::test]
    async fn a_rescale_records_upstreams_event() {
        let (fake, c, clock) = world(1, hpa(cpu(50)), &[pod("a", "400m")]);
        let c = c.with_events(EventRecorder::new(
            fake.clone(),
            "horizontal-pod-autoscaler",
            clock,
        ));
        c.reconcile("ns/web").await.unwrap();
        let evs = fake.events().await;
        assert_eq!(
            evs,
            [(
                "Normal".to_string(),
                "SuccessfulRescale".to_string(),
                "New size: 4; reason: cpu resource utilization (percentage of request) above target"
                    .to_string()
            )]
        );
        let e = &fake.objects(&ResourceRef::new("", "v1", "events"))[0];
        assert_eq!(e["source"]["component"], "horizontal-pod-autoscaler");
    }

    #[tokio::test]
    async fn scale_down_is_stabilized_and_rate_limits_cap_scale_up() {
        // 4 pods at 10 % against 50 %: wants 1, but the 300 s window holds it at 4.
        let pods: Vec<Value> = (0..4).map(|i| pod(&format!("p{i}"), "20m")).collect();
        let (fake, c, clock) = world(4, hpa(cpu(50)), &pods);
        c.reconcile("ns/web").await.unwrap();
        assert_eq!(
            fake.writes(),
            ["update_status horizontalpodautoscalers ns/web"]
        );
        let s = status(&fake);
        assert_eq!(s["desiredReplicas"], 4);
        assert_eq!(condition(&s, "AbleToScale").1, "ScaleDownStabilized");
        // Once the window has passed, only low recommendations remain.
        c.hpas.insert(
            fake.object(&horizontal_pod_autoscalers(), "ns/web")
                .unwrap(),
        );
        clock.advance(Duration::from_secs(301));
        c.reconcile("ns/web").await.unwrap();
        let d = fake.object(&deployments(), "ns/web").unwrap();
        assert_eq!(d["spec"]["replicas"], 1);

        // Hot pods far above target: 1 → at most 5 per 15 s (Pods 4 beats Percent 100 %).
        let (fake, c, _) = world(1, hpa(cpu(10)), &[pod("a", "200m")]);
        c.reconcile("ns/web").await.unwrap();
        assert_eq!(
            fake.object(&deployments(), "ns/web").unwrap()["spec"]["replicas"],
            5
        );
        assert_eq!(
            condition(&status(&fake), "ScalingLimited"),
            ("True".into(), "ScaleUpLimit".into())
        );
    }

    #[tokio::test]
    async fn memory_average_value_and_failures() {
        let mem = json!([{"type": "Resource", "resource": {"name": "memory",
            "target": {"type": "AverageValue", "averageValue": "100Mi"}}}]);
        let mut p = pod("a", "1m");
        p["metadata"]["annotations"]["skiff.dev/memory-usage"] = json!("300Mi");
        let (fake, c, _) = world(1, hpa(mem), &[p]);
        c.reconcile("ns/web").await.unwrap();
        assert_eq!(
            fake.object(&deployments(), "ns/web").unwrap()["spec"]["replicas"],
            3
        );
        let s = status(&fake);
        assert_eq!(
            s["currentMetrics"][0]["resource"]["current"],
            json!({"averageValue": "314572800"})
        );

        // No request for a Utilization target: ScalingActive False, no scale.
        let mut bare = pod("a", "300m");
        bare["spec"]["containers"][0]["resources"] = json!({});
        let (fake, c, _) = world(2, hpa(cpu(50)), &[bare]);
        c.reconcile("ns/web").await.unwrap();
        assert_eq!(
            fake.writes(),
            ["update_status horizontalpodautoscalers ns/web"]
        );
        let s = status(&fake);
        assert_eq!(
            condition(&s, "ScalingActive"),
            ("False".into(), "FailedGetResourceMetric".into())
        );
        let msg = s["conditions"][1]["message"].as_str().unwrap();
        assert!(
            msg.ends_with("missing request for cpu in container c of Pod a"),
            "{msg}"
        );

        // Missing target: AbleToScale False.
        let mut h = hpa(cpu(50));
        h["spec"]["scaleTargetRef"]["name"] = json!("nope");
        let (fake, c, _) = world(2, h, &[]);
        c.reconcile("ns/web").await.unwrap();
        let s = status(&fake);
        assert_eq!(
            condition(&s, "AbleToScale"),
            ("False".into(), "FailedGetScale".into())
        );
        assert_eq!(
            s["conditions"][0]["message"],
            "the HPA controller was unable to get the target's current scale: deployments.apps \"nope\" not found"
        );
    }

    #[tokio::test]
    async fn zero_replicas_disable_scaling_and_bounds_apply_first() {
        let (fake, c, _) = world(0, hpa(cpu(50)), &[]);
        c.reconcile("ns/web").await.unwrap();
        let s = status(&fake);
        assert_eq!(
            condition(&s, "ScalingActive"),
            ("False".into(), "ScalingDisabled".into())
        );
        assert_eq!(s["desiredReplicas"], 0);
        let (fake, c, _) = world(15, hpa(cpu(50)), &[]);
        c.reconcile("ns/web").await.unwrap();
        assert_eq!(
            fake.object(&deployments(), "ns/web").unwrap()["spec"]["replicas"],
            10
        );
        assert_eq!(
            condition(&status(&fake), "ScalingLimited"),
            ("True".into(), "TooManyReplicas".into())
        );
    }
}
