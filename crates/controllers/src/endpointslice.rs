//! The EndpointSlice controller (`pkg/controller/endpointslice`): for every Service with a
//! selector, EndpointSlices (labelled `kubernetes.io/service-name` and
//! `endpointslice.kubernetes.io/managed-by`, owned by the Service) holding one endpoint per
//! matching Pod with `ready`/`serving`/`terminating` conditions, node, zone and target, grouped by
//! address family and resolved port set, at most [`MAX_ENDPOINTS_PER_SLICE`] per slice.
//!
//! Placement keeps churn low as upstream's reconciler does: an endpoint stays in the slice that
//! holds it, new endpoints fill slices with room before new slices are made, and a Service with
//! no endpoints keeps one empty placeholder slice. Slices of a deleted Service go with it through
//! the garbage collector (owner reference).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use skiff_k8s_core::client::{ApiClient, DeleteOptions, WriteOptions};
use skiff_k8s_core::status::ApiError;

use crate::endpoints_pods::{
    endpoint_labels, endpoint_ports, endpoint_slices, family_of, hostname_for, managed_selector,
    pod_ips, pods_for, publishes_not_ready, refers_to, services_selecting, should_be_in_endpoints,
    target_ref,
};
use crate::ownership::{self, new_controller_ref, str_at};
use crate::replicaset::is_pod_ready;
use crate::runtime::informer::{Cache, Change, key_of};
use crate::runtime::queue::WorkQueue;
use crate::runtime::reconcile::{Action, Error, Reconciler};

pub const NAME: &str = "endpointslice-controller";
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// The `managed-by` value of this controller's slices.
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// Topology-aware routing opt-in (`service.kubernetes.io/topology-mode: Auto`).
pub const TOPOLOGY_MODE_ANNOTATION: &str = "service.kubernetes.io/topology-mode";

pub struct EndpointSliceController {
    client: Arc<dyn ApiClient>,
    services: Cache,
    pods: Cache,
    slices: Cache,
    nodes: Cache,
    max_per_slice: usize,
}

impl EndpointSliceController {
    pub fn new(
        client: Arc<dyn ApiClient>,
        services: Cache,
        pods: Cache,
        slices: Cache,
        nodes: Cache,
    ) -> Self {
        Self {
            client,
            services,
            pods,
            slices,
            nodes,
            max_per_slice: MAX_ENDPOINTS_PER_SLICE,
        }
    }

    /// The same controller with another slice capacity (`--max-endpoints-per-slice`).
    pub fn with_max_endpoints_per_slice(mut self, n: usize) -> Self {
        self.max_per_slice = n.max(1);
        self
    }

    pub fn on_service(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| queue.add(&key_of(c.object()))
    }

    /// Queues the Services selecting the Pod now and those whose slices hold it.
    pub fn on_pod(&self, queue: WorkQueue) -> impl Fn(&Change) + Send + Sync + use<> {
        let services = self.services.clone();
        let slices = self.slices.clone();
        move |c| {
            let pod = c.object();
            for k in services_selecting(&services, pod) {
                queue.add(&k);
            }
            for s in slices.list(Some(ownership::namespace(pod))) {
                if endpoints_of(&s)
                    .iter()
                    .any(|e| e.get("targetRef").is_some_and(|r| refers_to(r, pod)))
                {
                    queue.add(&service_key(&s));
                }
            }
        }
    }

    /// A change to one of our slices (someone edited or deleted it) queues its Service.
    pub fn on_slice(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| {
            let s = c.object();
            if str_at(s, &format!("/metadata/labels/{}", escape(MANAGED_BY_LABEL)))
                == CONTROLLER_NAME
            {
                queue.add(&service_key(s));
            }
        }
    }

    /// A node's zone label feeds endpoints' `zone`: when it changes (not on every heartbeat),
    /// requeue the Services of the Pods on that node.
    pub fn on_node(&self, queue: WorkQueue) -> impl Fn(&Change) + Send + Sync + use<> {
        let services = self.services.clone();
        let pods = self.pods.clone();
        let zones: std::sync::Mutex<BTreeMap<String, String>> = Default::default();
        move |c| {
            let node = ownership::name(c.object()).to_string();
            let zone = match c {
                Change::Deleted(_) => None,
                _ => Some(node_zone(c.object()).to_string()),
            };
            {
                let mut z = zones.lock().unwrap_or_else(|e| e.into_inner());
                let before = match &zone {
                    Some(v) => z.insert(node.clone(), v.clone()),
                    None => z.remove(&node),
                };
                if before == zone {
                    return;
                }
            }
            for p in pods.list(None) {
                if str_at(&p, "/spec/nodeName") == node {
                    for k in services_selecting(&services, &p) {
                        queue.add(&k);
                    }
                }
            }
        }
    }

    /// One endpoint per (Pod, family) for `svc` (`podToEndpoint`), keyed by slice group.
    fn desired(&self, svc: &Value, pods: &[Value]) -> BTreeMap<(String, String), Vec<Value>> {
        let families: Vec<String> = svc
            .pointer("/spec/ipFamilies")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .filter(|v: &Vec<String>| !v.is_empty())
            .unwrap_or_else(|| vec!["IPv4".into()]);
        let tolerate = publishes_not_ready(svc);
        let hints = wants_zone_hints(svc);
        let has_ports = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        let mut groups: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
        for pod in pods {
            if !should_be_in_endpoints(pod, true) {
                continue;
            }
            let mut ports = endpoint_ports(svc, pod);
            if has_ports && ports.is_empty() {
                continue;
            }
            ports.sort_by(|a, b| str_at(a, "/name").cmp(str_at(b, "/name")));
            let ports_key = Value::Array(ports).to_string();
            let serving = is_pod_ready(pod);
            let terminating = ownership::is_deleting(pod);
            // Never ready while terminating, unless not-ready addresses are published.
            let ready = tolerate || (serving && !terminating);
            for family in &families {
                let Some(ip) = pod_ips(pod).into_iter().find(|ip| family_of(ip) == family) else {
                    continue;
                };
                let mut e = json!({
                    "addresses": [ip],
                    "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
                    "targetRef": target_ref(pod),
                });
                if let Some(h) = hostname_for(pod, svc) {
                    e["hostname"] = json!(h);
                }
                let node = str_at(pod, "/spec/nodeName");
                if !node.is_empty() {
                    e["nodeName"] = json!(node);
                    let zone = self
                        .nodes
                        .get(node)
                        .map(|n| node_zone(&n).to_string())
                        .unwrap_or_default();
                    if !zone.is_empty() {
                        e["zone"] = json!(zone);
                        if hints {
                            e["hints"] = json!({"forZones": [{"name": zone}]});
                        }
                    }
                }
                groups
                    .entry((family.clone(), ports_key.clone()))
                    .or_default()
                    .push(e);
            }
        }
        for eps in groups.values_mut() {
            eps.sort_by(|a, b| str_at(a, "/targetRef/name").cmp(str_at(b, "/targetRef/name")));
        }
        groups
    }
}

/// Registers the informer handlers and builds the controller (the [`crate::CONTROLLERS`] entry).
pub fn setup(
    inf: &mut crate::Informers,
    client: Arc<dyn ApiClient>,
    _clock: Arc<dyn crate::runtime::Clock>,
    q: WorkQueue,
) -> Arc<dyn Reconciler> {
    use crate::endpoints_pods::{nodes, services};
    let pods = crate::replicaset::pods();
    let c = EndpointSliceController::new(
        client,
        inf.cache(services()),
        inf.cache(pods.clone()),
        inf.cache(endpoint_slices()),
        inf.cache(nodes()),
    );
    inf.get(services())
        .add_handler(Arc::new(EndpointSliceController::on_service(q.clone())));
    inf.get(pods).add_handler(Arc::new(c.on_pod(q.clone())));
    inf.get(endpoint_slices())
        .add_handler(Arc::new(EndpointSliceController::on_slice(q.clone())));
    inf.get(nodes()).add_handler(Arc::new(c.on_node(q)));
    Arc::new(c)
}

/// JSON pointer escaping of a map key (`/` → `~1`).
fn escape(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

fn node_zone(node: &Value) -> &str {
    str_at(node, &format!("/metadata/labels/{}", escape(ZONE_LABEL)))
}

/// The Service of a slice, from its service-name label.
fn service_key(slice: &Value) -> String {
    format!(
        "{}/{}",
        ownership::namespace(slice),
        str_at(
            slice,
            &format!("/metadata/labels/{}", escape(SERVICE_NAME_LABEL))
        )
    )
}

fn endpoints_of(slice: &Value) -> Vec<Value> {
    slice
        .get("endpoints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Zone hints are filled for `topology-mode: Auto` (or the older `topology-aware-hints`
/// annotation) and `trafficDistribution: PreferClose`, each endpoint hinted to its own zone.
fn wants_zone_hints(svc: &Value) -> bool {
    let ann = |k: &str| str_at(svc, &format!("/metadata/annotations/{}", escape(k))).to_string();
    ann(TOPOLOGY_MODE_ANNOTATION).eq_ignore_ascii_case("auto")
        || ann("service.kubernetes.io/topology-aware-hints").eq_ignore_ascii_case("auto")
        || str_at(svc, "/spec/trafficDistribution") == "PreferClose"
}

/// An endpoint's identity across reconciles: its Pod and address.
fn endpoint_id(e: &Value) -> (String, String) {
    (
        str_at(e, "/targetRef/name").to_string(),
        str_at(e, "/addresses/0").to_string(),
    )
}

fn slice_group(s: &Value) -> (String, String) {
    let mut ports = s
        .get("ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    ports.sort_by(|a, b| str_at(a, "/name").cmp(str_at(b, "/name")));
    (
        str_at(s, "/addressType").to_string(),
        Value::Array(ports).to_string(),
    )
}

/// The planned writes, in upstream's order: creates, updates, deletes.
#[derive(Debug, Default)]
struct Plan {
    create: Vec<Value>,
    update: Vec<Value>,
    delete: Vec<Value>,
}

impl EndpointSliceController {
    fn plan(&self, svc: &Value, existing: Vec<Value>, pods: &[Value]) -> Plan {
        let desired = self.desired(svc, pods);
        let mut labels = endpoint_labels(svc);
        labels.insert(SERVICE_NAME_LABEL.into(), json!(ownership::name(svc)));
        labels.insert(MANAGED_BY_LABEL.into(), json!(CONTROLLER_NAME));
        let owner = new_controller_ref(svc, "v1", "Service");
        let template = |family: &str, ports: &Value| {
            let meta = json!({
                "generateName": slice_prefix(ownership::name(svc)),
                "namespace": ownership::namespace(svc),
                "labels": labels.clone(),
                "ownerReferences": [owner.clone()],
            });
            let mut s = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": meta, "addressType": family, "endpoints": []});
            if ports.as_array().is_some_and(|p| !p.is_empty()) {
                s["ports"] = ports.clone();
            }
            s
        };
        let mut plan = Plan::default();
        let mut by_group: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
        for s in existing {
            by_group.entry(slice_group(&s)).or_default().push(s);
        }
        if desired.is_empty() {
            // One empty placeholder slice stands for "no endpoints" (upstream keeps it so
            // consumers can tell a synced empty Service from an unsynced one).
            let family = svc
                .pointer("/spec/ipFamilies/0")
                .and_then(Value::as_str)
                .unwrap_or("IPv4")
                .to_string();
            let mut all: Vec<Value> = by_group.into_values().flatten().collect();
            all.sort_by(|a, b| ownership::name(a).cmp(ownership::name(b)));
            let keep = all.iter().position(|s| {
                endpoints_of(s).is_empty()
                    && s.get("ports").is_none_or(is_empty_array)
                    && str_at(s, "/addressType") == family
            });
            match keep {
                Some(i) => {
                    let s = all.remove(i);
                    if let Some(u) = relabel(&s, &labels, &owner) {
                        plan.update.push(u);
                    }
                }
                None => plan.create.push(template(&family, &json!([]))),
            }
            plan.delete = all;
            return plan;
        }
        for (group, eps) in desired {
            let mut slices = by_group.remove(&group).unwrap_or_default();
            slices.sort_by(|a, b| ownership::name(a).cmp(ownership::name(b)));
            let want: BTreeMap<(String, String), Value> =
                eps.into_iter().map(|e| (endpoint_id(&e), e)).collect();
            let mut placed: HashSet<(String, String)> = HashSet::new();
            // Keep endpoints where they are, refreshed; drop those no longer wanted.
            let mut working: Vec<(Value, Vec<Value>, bool)> = slices
                .into_iter()
                .map(|s| {
                    let kept: Vec<Value> = endpoints_of(&s)
                        .iter()
                        .filter_map(|e| {
                            let id = endpoint_id(e);
                            (!placed.contains(&id))
                                .then(|| want.get(&id).cloned())
                                .flatten()
                                .inspect(|_| {
                                    placed.insert(id);
                                })
                        })
                        .take(self.max_per_slice)
                        .collect();
                    let changed = kept != endpoints_of(&s);
                    (s, kept, changed)
                })
                .collect();
            let mut fresh: Vec<Value> = want
                .iter()
                .filter(|(id, _)| !placed.contains(*id))
                .map(|(_, e)| e.clone())
                .collect();
            // Fill slices with room, fullest first (fewer, fuller slices).
            working.sort_by_key(|(_, kept, _)| std::cmp::Reverse(kept.len()));
            for (_, kept, changed) in working.iter_mut() {
                while kept.len() < self.max_per_slice && !fresh.is_empty() {
                    kept.push(fresh.remove(0));
                    *changed = true;
                }
            }
            for (s, kept, changed) in working {
                if kept.is_empty() {
                    plan.delete.push(s);
                    continue;
                }
                let relabelled = relabel(&s, &labels, &owner);
                if changed || relabelled.is_some() {
                    let mut u = relabelled.unwrap_or(s);
                    u["endpoints"] = Value::Array(kept);
                    plan.update.push(u);
                }
            }
            let ports: Value = serde_json::from_str(&group.1).unwrap_or(json!([]));
            for chunk in fresh.chunks(self.max_per_slice) {
                let mut s = template(&group.0, &ports);
                s["endpoints"] = Value::Array(chunk.to_vec());
                plan.create.push(s);
            }
        }
        // Slices of groups nothing belongs to any more.
        plan.delete.extend(by_group.into_values().flatten());
        plan
    }
}

fn is_empty_array(v: &Value) -> bool {
    v.as_array().is_none_or(Vec::is_empty)
}

/// The slice with our labels and owner reference when either drifted.
fn relabel(s: &Value, labels: &Map<String, Value>, owner: &Value) -> Option<Value> {
    let cur_labels = s
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let owned = s
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|r| r["uid"] == owner["uid"]));
    if &cur_labels == labels && owned {
        return None;
    }
    let mut u = s.clone();
    u["metadata"]["labels"] = Value::Object(labels.clone());
    if !owned {
        u["metadata"]["ownerReferences"] = json!([owner]);
    }
    Some(u)
}

/// `<service>-`, cut so a generated name stays within 63 characters.
fn slice_prefix(service: &str) -> String {
    let base: String = service.chars().take(57).collect();
    format!("{base}-")
}

#[async_trait::async_trait]
impl Reconciler for EndpointSliceController {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &str) -> Result<Action, Error> {
        let (ns, name) = key.split_once('/').unwrap_or(("", key));
        let Some(svc) = self.services.get(key) else {
            // Owner references hand the slices to the garbage collector.
            return Ok(Action::AwaitChange);
        };
        if ownership::is_deleting(&svc) {
            return Ok(Action::AwaitChange);
        }
        let mine = |s: &Value| {
            str_at(
                s,
                &format!("/metadata/labels/{}", escape(SERVICE_NAME_LABEL)),
            ) == name
                && str_at(s, &format!("/metadata/labels/{}", escape(MANAGED_BY_LABEL)))
                    == CONTROLLER_NAME
        };
        let existing: Vec<Value> = self
            .slices
            .list(Some(ns))
            .into_iter()
            .filter(|s| mine(s) && !ownership::is_deleting(s))
            .collect();
        let Some(sel) = managed_selector(&svc) else {
            // A Service that lost its selector (or became ExternalName): its slices are ours to remove.
            for s in existing {
                self.delete(ns, &s).await?;
            }
            return Ok(Action::AwaitChange);
        };
        let pods = pods_for(&self.pods, &svc, &sel);
        let plan = self.plan(&svc, existing, &pods);
        let r = endpoint_slices().in_namespace(ns);
        let opts = WriteOptions {
            field_manager: Some(NAME.into()),
            ..Default::default()
        };
        for s in plan.create {
            self.client.create(&r, s, &opts).await?;
        }
        for s in plan.update {
            self.client.update(&r, s, &opts).await?;
        }
        for s in plan.delete {
            self.delete(ns, &s).await?;
        }
        Ok(Action::AwaitChange)
    }
}

impl EndpointSliceController {
    async fn delete(&self, ns: &str, s: &Value) -> Result<(), ApiError> {
        let opts = DeleteOptions {
            precondition_uid: Some(ownership::uid(s).to_string()),
            ..Default::default()
        };
        match self
            .client
            .delete(
                &endpoint_slices().in_namespace(ns),
                ownership::name(s),
                &opts,
            )
            .await
        {
            Ok(_) | Err(ApiError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeClient;

    fn svc() -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid", "labels": {"tier": "fe"}},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.100.0.9", "ipFamilies": ["IPv4"],
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}})
    }

    fn pod(name: &str, ip: &str, ready: bool) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c",
                "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": ip,
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    /// One reconcile of `ns/web` with caches showing `svc`, `pods` and the fake's slices.
    async fn run(fake: &Arc<FakeClient>, max: usize, svc: &Value, pods: &[Value]) {
        let cache = |items: Vec<Value>| {
            let c = Cache::default();
            items.into_iter().for_each(|i| c.insert(i));
            c
        };
        let node = json!({"metadata": {"name": "n1",
            "labels": {"topology.kubernetes.io/zone": "us-east-1a"}}});
        let c = EndpointSliceController::new(
            fake.clone(),
            cache(vec![svc.clone()]),
            cache(pods.to_vec()),
            cache(fake.objects(&endpoint_slices())),
            cache(vec![node]),
        )
        .with_max_endpoints_per_slice(max);
        assert_eq!(c.reconcile("ns/web").await.unwrap(), Action::AwaitChange);
    }

    #[tokio::test]
    async fn conditions_zone_labels_owner_and_terminating_pods() {
        let fake = Arc::new(FakeClient::default());
        let mut t = pod("c", "10.0.0.3", true);
        t["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        let pods = [pod("a", "10.0.0.1", true), pod("b", "10.0.0.2", false), t];
        run(&fake, 100, &svc(), &pods).await;
        assert_eq!(fake.writes(), ["create endpointslices ns/web-00001"]);
        let s = fake.object(&endpoint_slices(), "ns/web-00001").unwrap();
        assert_eq!(s["addressType"], "IPv4");
        assert_eq!(
            s["metadata"]["labels"],
            json!({"tier": "fe", SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: CONTROLLER_NAME})
        );
        assert_eq!(s["metadata"]["ownerReferences"][0]["kind"], "Service");
        assert_eq!(s["metadata"]["ownerReferences"][0]["uid"], "svc-uid");
        assert_eq!(
            s["ports"],
            json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
        );
        let eps = s["endpoints"].as_array().unwrap();
        assert_eq!(
            eps[0],
            json!({"addresses": ["10.0.0.1"], "nodeName": "n1", "zone": "us-east-1a",
                "conditions": {"ready": true, "serving": true, "terminating": false},
                "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"}})
        );
        assert_eq!(
            eps[1]["conditions"],
            json!({"ready": false, "serving": false, "terminating": false})
        );
        assert_eq!(
            eps[2]["conditions"],
            json!({"ready": false, "serving": true, "terminating": true})
        );
        // Nothing changed: no write.
        run(&fake, 100, &svc(), &pods).await;
        assert_eq!(fake.writes().len(), 1);
    }

    #[tokio::test]
    async fn splits_at_capacity_keeps_placement_and_falls_back_to_a_placeholder() {
        let fake = Arc::new(FakeClient::default());
        let mut pods = vec![
            pod("a", "10.0.0.1", true),
            pod("b", "10.0.0.2", true),
            pod("c", "10.0.0.3", true),
        ];
        run(&fake, 2, &svc(), &pods).await;
        assert_eq!(
            fake.writes(),
            [
                "create endpointslices ns/web-00001",
                "create endpointslices ns/web-00002"
            ]
        );
        // "a" leaves, "d" arrives: "d" takes the free place, nothing else moves.
        pods.remove(0);
        pods.push(pod("d", "10.0.0.4", true));
        run(&fake, 2, &svc(), &pods).await;
        let names = |s: &Value| -> Vec<String> {
            endpoints_of(s)
                .iter()
                .map(|e| str_at(e, "/targetRef/name").to_string())
                .collect()
        };
        let s1 = fake.object(&endpoint_slices(), "ns/web-00001").unwrap();
        let s2 = fake.object(&endpoint_slices(), "ns/web-00002").unwrap();
        assert_eq!(names(&s1), ["b", "d"]);
        assert_eq!(names(&s2), ["c"]);
        assert_eq!(fake.writes()[2..], ["update endpointslices ns/web-00001"]);

        // Every pod gone: one empty placeholder remains.
        run(&fake, 2, &svc(), &[]).await;
        let left = fake.objects(&endpoint_slices());
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(left[0]["endpoints"], json!([]));
        assert!(left[0].get("ports").is_none());
        assert_eq!(
            fake.writes()[3..],
            [
                "create endpointslices ns/web-00004",
                "delete endpointslices ns/web-00001",
                "delete endpointslices ns/web-00002"
            ]
        );
    }

    #[test]
    fn only_zone_changes_of_a_node_queue_its_services() {
        let c = EndpointSliceController::new(
            Arc::new(FakeClient::default()),
            Cache::default(),
            Cache::default(),
            Cache::default(),
            Cache::default(),
        );
        c.services.insert(svc());
        c.pods.insert(pod("a", "10.0.0.1", true));
        let q = WorkQueue::new();
        let h = c.on_node(q.clone());
        let node = |zone: &str, beat: &str| {
            json!({"metadata": {"name": "n1", "labels": {ZONE_LABEL: zone}},
                "status": {"conditions": [{"type": "Ready", "lastHeartbeatTime": beat}]}})
        };
        let drain = |q: &WorkQueue| {
            futures::executor::block_on(async {
                while !q.is_empty() {
                    let k = q.get().await.unwrap();
                    q.done(&k);
                }
            })
        };
        h(&Change::Added(node("a", "t1")));
        assert_eq!(q.len(), 1);
        drain(&q);
        h(&Change::Modified(node("a", "t2")));
        assert!(q.is_empty(), "a heartbeat changes nothing");
        h(&Change::Modified(node("b", "t3")));
        assert_eq!(q.len(), 1, "a new zone requeues web");
    }

    #[tokio::test]
    async fn publish_not_ready_and_zone_hints() {
        let fake = Arc::new(FakeClient::default());
        let mut s = svc();
        s["spec"]["publishNotReadyAddresses"] = json!(true);
        s["spec"]["trafficDistribution"] = json!("PreferClose");
        run(&fake, 100, &s, &[pod("a", "10.0.0.1", false)]).await;
        let s = fake.object(&endpoint_slices(), "ns/web-00001").unwrap();
        let e = &s["endpoints"][0];
        assert_eq!(
            e["conditions"],
            json!({"ready": true, "serving": false, "terminating": false})
        );
        assert_eq!(e["hints"], json!({"forZones": [{"name": "us-east-1a"}]}));
    }
}
