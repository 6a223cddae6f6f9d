//! The Endpoints controller (`pkg/controller/endpoint`): for every Service with a selector, an
//! Endpoints object of the same name listing the matching Pods' IPs, ready ones under `addresses`
//! and the others under `notReadyAddresses` (all under `addresses` with
//! `publishNotReadyAddresses`), with the ports each Pod resolves the Service's ports to, packed
//! into subsets of identical port sets. Services without a selector (the `kubernetes` Service
//! among them) keep the endpoints someone else writes.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use skiff_k8s_core::client::{ApiClient, DeleteOptions, WriteOptions};
use skiff_k8s_core::status::ApiError;

use crate::endpoints_pods::{
    endpoint_labels, endpoint_ports, endpoints, hostname_for, managed_selector, pod_ips, pods_for,
    publishes_not_ready, refers_to, services_selecting, should_be_in_endpoints, target_ref,
};
use crate::ownership::{self, str_at};
use crate::replicaset::is_pod_ready;
use crate::runtime::events::{EventRecorder, EventType, Recorder};
use crate::runtime::informer::{Cache, Change, key_of};
use crate::runtime::queue::WorkQueue;
use crate::runtime::reconcile::{Action, Error, Reconciler};

pub const NAME: &str = "endpoints-controller";

/// At most this many addresses per Endpoints object (`maxCapacity`); the rest is dropped and the
/// object annotated, pointing readers at EndpointSlices.
pub const MAX_CAPACITY: usize = 1000;
pub const OVER_CAPACITY_ANNOTATION: &str = "endpoints.kubernetes.io/over-capacity";

pub struct EndpointsController {
    client: Arc<dyn ApiClient>,
    services: Cache,
    pods: Cache,
    endpoints: Cache,
    /// `FailedToCreateEndpoint`/`FailedToUpdateEndpoint` Events; none in unit tests that assert writes.
    events: Option<Arc<EventRecorder>>,
}

impl EndpointsController {
    pub fn new(client: Arc<dyn ApiClient>, services: Cache, pods: Cache, endpoints: Cache) -> Self {
        Self {
            client,
            services,
            pods,
            endpoints,
            events: None,
        }
    }

    /// Records events as upstream's `endpoint-controller` does.
    pub fn with_events(mut self, events: Arc<EventRecorder>) -> Self {
        self.events = Some(events);
        self
    }

    /// Services are the work items.
    pub fn on_service(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| queue.add(&key_of(c.object()))
    }

    /// A Pod change queues the Services selecting it now and those whose Endpoints list it (it
    /// may have stopped matching).
    pub fn on_pod(&self, queue: WorkQueue) -> impl Fn(&Change) + Send + Sync + use<> {
        let services = self.services.clone();
        let eps = self.endpoints.clone();
        move |c| {
            let pod = c.object();
            for k in services_selecting(&services, pod) {
                queue.add(&k);
            }
            for e in eps.list(Some(ownership::namespace(pod))) {
                if lists_pod(&e, pod) {
                    queue.add(&key_of(&e));
                }
            }
        }
    }

    /// Someone else's edit to a managed Endpoints object is undone.
    pub fn on_endpoints(queue: WorkQueue) -> impl Fn(&Change) + Send + Sync {
        move |c| queue.add(&key_of(c.object()))
    }
}

/// Registers the informer handlers and builds the controller (the [`crate::CONTROLLERS`] entry).
pub fn setup(
    inf: &mut crate::Informers,
    client: Arc<dyn ApiClient>,
    clock: Arc<dyn crate::runtime::Clock>,
    q: WorkQueue,
) -> Arc<dyn Reconciler> {
    let pods = crate::replicaset::pods();
    // Upstream's recorder names itself `endpoint-controller`.
    let events = EventRecorder::new(client.clone(), "endpoint-controller", clock);
    let c = EndpointsController::new(
        client,
        inf.cache(crate::endpoints_pods::services()),
        inf.cache(pods.clone()),
        inf.cache(endpoints()),
    )
    .with_events(events);
    inf.get(crate::endpoints_pods::services())
        .add_handler(Arc::new(EndpointsController::on_service(q.clone())));
    inf.get(pods).add_handler(Arc::new(c.on_pod(q.clone())));
    inf.get(endpoints())
        .add_handler(Arc::new(EndpointsController::on_endpoints(q)));
    Arc::new(c)
}

fn lists_pod(endpoints: &Value, pod: &Value) -> bool {
    endpoints
        .get("subsets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|s| ["addresses", "notReadyAddresses"].map(|f| s.get(f)))
        .filter_map(|a| a.and_then(Value::as_array))
        .flatten()
        .any(|a| a.get("targetRef").is_some_and(|r| refers_to(r, pod)))
}

/// The subsets of `svc` over `pods` (`RepackSubsets`): one subset per distinct port set,
/// addresses sorted by IP. Returns the subsets and whether addresses were dropped.
pub fn desired_subsets(svc: &Value, pods: &[Value]) -> (Vec<Value>, bool) {
    let tolerate = publishes_not_ready(svc);
    /// One subset in the making.
    #[derive(Default)]
    struct Group {
        ports: Vec<Value>,
        ready: Vec<Value>,
        not_ready: Vec<Value>,
    }
    // Keyed by the port set's canonical JSON.
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let mut total = 0usize;
    let mut truncated = false;
    let mut ordered: Vec<&Value> = pods
        .iter()
        .filter(|p| should_be_in_endpoints(p, tolerate))
        .collect();
    // Ready addresses survive truncation first.
    ordered.sort_by_key(|p| !(tolerate || is_pod_ready(p)));
    for pod in ordered {
        let has_ports = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        let mut ports = endpoint_ports(svc, pod);
        if has_ports && ports.is_empty() {
            continue;
        }
        if total >= MAX_CAPACITY {
            truncated = true;
            break;
        }
        total += 1;
        ports.sort_by(|a, b| {
            (str_at(a, "/name"), a["port"].as_i64()).cmp(&(str_at(b, "/name"), b["port"].as_i64()))
        });
        let mut addr = json!({"ip": pod_ips(pod)[0], "targetRef": target_ref(pod)});
        if let Some(h) = hostname_for(pod, svc) {
            addr["hostname"] = json!(h);
        }
        if let Some(n) = pod.pointer("/spec/nodeName").and_then(Value::as_str)
            && !n.is_empty()
        {
            addr["nodeName"] = json!(n);
        }
        let key = Value::Array(ports.clone()).to_string();
        let g = groups.entry(key).or_insert_with(|| Group {
            ports,
            ..Default::default()
        });
        if tolerate || is_pod_ready(pod) {
            g.ready.push(addr);
        } else {
            g.not_ready.push(addr);
        }
    }
    let by_ip = |a: &Value, b: &Value| str_at(a, "/ip").cmp(str_at(b, "/ip"));
    let subsets = groups
        .into_values()
        .map(
            |Group {
                 ports,
                 mut ready,
                 mut not_ready,
             }| {
                ready.sort_by(by_ip);
                not_ready.sort_by(by_ip);
                let mut s = Map::new();
                if !ready.is_empty() {
                    s.insert("addresses".into(), Value::Array(ready));
                }
                if !not_ready.is_empty() {
                    s.insert("notReadyAddresses".into(), Value::Array(not_ready));
                }
                if !ports.is_empty() {
                    s.insert("ports".into(), Value::Array(ports));
                }
                Value::Object(s)
            },
        )
        .collect();
    (subsets, truncated)
}

fn subsets_of(e: &Value) -> Vec<Value> {
    e.get("subsets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

#[async_trait::async_trait]
impl Reconciler for EndpointsController {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, key: &str) -> Result<Action, Error> {
        let (ns, name) = key.split_once('/').unwrap_or(("", key));
        let r = endpoints().in_namespace(ns);
        let Some(svc) = self.services.get(key) else {
            // The Service is gone: so are its endpoints (upstream deletes unconditionally; the
            // `kubernetes` Service is never deleted).
            if self.endpoints.get(key).is_some() {
                match self
                    .client
                    .delete(&r, name, &DeleteOptions::default())
                    .await
                {
                    Ok(_) | Err(ApiError::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok(Action::AwaitChange);
        };
        let Some(sel) = managed_selector(&svc) else {
            return Ok(Action::AwaitChange);
        };
        if ownership::is_deleting(&svc) {
            return Ok(Action::AwaitChange);
        }
        let pods = pods_for(&self.pods, &svc, &sel);
        let (subsets, truncated) = desired_subsets(&svc, &pods);
        let labels = endpoint_labels(&svc);
        let current = self.endpoints.get(key);
        let mut annotations = current
            .as_ref()
            .and_then(|e| e.pointer("/metadata/annotations"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if truncated {
            annotations.insert(OVER_CAPACITY_ANNOTATION.into(), json!("truncated"));
        } else {
            annotations.remove(OVER_CAPACITY_ANNOTATION);
        }
        let opts = WriteOptions {
            field_manager: Some(NAME.into()),
            ..Default::default()
        };
        match current {
            Some(cur) => {
                let map_at = |p: &str| {
                    cur.pointer(p)
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default()
                };
                let same = subsets_of(&cur) == subsets
                    && map_at("/metadata/labels") == labels
                    && map_at("/metadata/annotations") == annotations;
                if same {
                    return Ok(Action::AwaitChange);
                }
                let mut upd = cur.clone();
                upd["metadata"]["labels"] = Value::Object(labels);
                upd["metadata"]["annotations"] = Value::Object(annotations);
                upd["subsets"] = Value::Array(subsets);
                if let Err(e) = self.client.update(&r, upd.clone(), &opts).await {
                    self.events.event(
                        &upd,
                        EventType::Warning,
                        "FailedToUpdateEndpoint",
                        &format!("Failed to update endpoint {ns}/{name}: {}", e.message()),
                    );
                    return Err(e.into());
                }
            }
            None => {
                let mut meta = json!({"name": name, "namespace": ns, "labels": labels});
                if !annotations.is_empty() {
                    meta["annotations"] = Value::Object(annotations);
                }
                let obj = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": meta,
                    "subsets": subsets});
                match self.client.create(&r, obj.clone(), &opts).await {
                    Ok(_) => {}
                    // The cache has not seen it yet; the watch event brings us back.
                    Err(ApiError::AlreadyExists { .. }) => {}
                    Err(e) => {
                        self.events.event(
                            &obj,
                            EventType::Warning,
                            "FailedToCreateEndpoint",
                            &format!(
                                "Failed to create endpoint for service {ns}/{name}: {}",
                                e.message()
                            ),
                        );
                        return Err(e.into());
                    }
                }
            }
        }
        Ok(Action::AwaitChange)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeClient;

    pub(crate) fn web_service() -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid", "labels": {"app": "web"}},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.100.0.9",
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                          {"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"}]}})
    }

    pub(crate) fn pod(name: &str, ip: &str, ready: bool, http_port: Option<i64>) -> Value {
        let ports = match http_port {
            Some(p) => json!([{"name": "http", "containerPort": p}]),
            None => json!([]),
        };
        json!({"metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": ports}]},
            "status": {"phase": "Running", "podIP": ip,
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    fn setup() -> (Arc<FakeClient>, EndpointsController) {
        let fake = Arc::new(FakeClient::default());
        let c = EndpointsController::new(
            fake.clone(),
            Cache::default(),
            Cache::default(),
            Cache::default(),
        );
        (fake, c)
    }

    #[tokio::test]
    async fn a_failed_update_is_reported_on_the_endpoints() {
        let (fake, c) = setup();
        let c = c.with_events(EventRecorder::new(
            fake.clone(),
            "endpoint-controller",
            crate::runtime::FakeClock::new("2026-01-01T00:00:00Z".parse().unwrap()),
        ));
        c.services.insert(web_service());
        c.pods.insert(pod("a", "10.0.0.1", true, Some(8080)));
        let stored = fake.seed(
            &endpoints(),
            json!({"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": "web", "namespace": "ns"}, "subsets": []}),
        );
        // The cache lags behind a write made elsewhere: the update is refused as stale.
        let mut stale = stored.clone();
        stale["metadata"]["resourceVersion"] = json!("0");
        c.endpoints.insert(stale);
        assert!(c.reconcile("ns/web").await.is_err());
        let evs = fake.events().await;
        assert_eq!(evs.len(), 1);
        assert_eq!(
            (evs[0].0.as_str(), evs[0].1.as_str()),
            ("Warning", "FailedToUpdateEndpoint")
        );
        assert!(
            evs[0]
                .2
                .starts_with("Failed to update endpoint ns/web: Operation cannot be fulfilled"),
            "{}",
            evs[0].2
        );
    }

    #[tokio::test]
    async fn ready_and_not_ready_pods_with_named_ports_packed_by_port_set() {
        let (fake, c) = setup();
        c.services.insert(web_service());
        c.pods.insert(pod("b", "10.0.0.2", true, Some(8080)));
        c.pods.insert(pod("a", "10.0.0.1", true, Some(8080)));
        c.pods.insert(pod("c", "10.0.0.3", false, Some(8080)));
        // No port named http: only the numeric 9090 resolves, so it sits in its own subset.
        c.pods.insert(pod("d", "10.0.0.4", true, None));
        let mut other = pod("x", "10.0.0.9", true, Some(8080));
        other["metadata"]["labels"]["app"] = json!("other");
        c.pods.insert(other);
        let mut no_ip = pod("y", "", true, Some(8080));
        no_ip["status"]["podIP"] = json!("");
        c.pods.insert(no_ip);

        assert_eq!(c.reconcile("ns/web").await.unwrap(), Action::AwaitChange);
        assert_eq!(fake.writes(), ["create endpoints ns/web"]);
        let e = fake.object(&endpoints(), "ns/web").unwrap();
        assert_eq!(e["metadata"]["labels"], json!({"app": "web"}));
        let subsets = e["subsets"].as_array().unwrap();
        assert_eq!(subsets.len(), 2);
        let full = subsets
            .iter()
            .find(|s| s["ports"].as_array().unwrap().len() == 2)
            .unwrap();
        let ips: Vec<_> = full["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["ip"].as_str().unwrap())
            .collect();
        assert_eq!(ips, ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(full["notReadyAddresses"][0]["ip"], "10.0.0.3");
        assert_eq!(
            full["ports"],
            json!([{"name": "http", "port": 8080, "protocol": "TCP"},
                   {"name": "metrics", "port": 9090, "protocol": "TCP"}])
        );
        assert_eq!(
            full["addresses"][0]["targetRef"],
            json!({"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"})
        );
        assert_eq!(full["addresses"][0]["nodeName"], "n1");
        let partial = subsets
            .iter()
            .find(|s| s["ports"].as_array().unwrap().len() == 1)
            .unwrap();
        assert_eq!(partial["addresses"][0]["ip"], "10.0.0.4");

        // Unchanged world: no write.
        c.endpoints
            .insert(fake.object(&endpoints(), "ns/web").unwrap());
        c.reconcile("ns/web").await.unwrap();
        assert_eq!(fake.writes().len(), 1);
    }

    #[tokio::test]
    async fn publish_not_ready_headless_without_ports_and_deletion() {
        let (fake, c) = setup();
        let mut svc = web_service();
        svc["spec"]["clusterIP"] = json!("None");
        svc["spec"]["publishNotReadyAddresses"] = json!(true);
        svc["spec"]["ports"] = json!([]);
        c.services.insert(svc);
        let mut p = pod("a", "10.0.0.1", false, None);
        p["spec"]["hostname"] = json!("a");
        p["spec"]["subdomain"] = json!("web");
        c.pods.insert(p);
        c.reconcile("ns/web").await.unwrap();
        let e = fake.object(&endpoints(), "ns/web").unwrap();
        assert_eq!(
            e["subsets"],
            json!([{"addresses": [{"ip": "10.0.0.1", "hostname": "a", "nodeName": "n1",
                "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"}}]}])
        );
        assert_eq!(
            e["metadata"]["labels"]["service.kubernetes.io/headless"],
            ""
        );

        // Service deleted: its Endpoints go.
        c.endpoints.insert(e);
        let c = EndpointsController::new(fake.clone(), Cache::default(), c.pods, c.endpoints);
        c.reconcile("ns/web").await.unwrap();
        assert_eq!(
            fake.writes(),
            ["create endpoints ns/web", "delete endpoints ns/web"]
        );
    }

    #[tokio::test]
    async fn selectorless_and_kubernetes_services_are_left_alone() {
        let (fake, c) = setup();
        c.services.insert(
            json!({"metadata": {"name": "kubernetes", "namespace": "default"},
            "spec": {"ports": [{"name": "https", "port": 443}]}}),
        );
        c.endpoints.insert(
            json!({"metadata": {"name": "kubernetes", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "127.0.0.1"}]}]}),
        );
        c.services
            .insert(json!({"metadata": {"name": "manual", "namespace": "ns"},
            "spec": {"ports": [{"port": 80}]}}));
        c.reconcile("default/kubernetes").await.unwrap();
        c.reconcile("ns/manual").await.unwrap();
        assert!(fake.writes().is_empty());
    }

    #[tokio::test]
    async fn a_pod_that_stops_matching_queues_the_service_listing_it() {
        let (fake, c) = setup();
        c.services.insert(web_service());
        let p = pod("a", "10.0.0.1", true, Some(8080));
        c.pods.insert(p.clone());
        c.reconcile("ns/web").await.unwrap();
        c.endpoints
            .insert(fake.object(&endpoints(), "ns/web").unwrap());
        let q = WorkQueue::new();
        let h = c.on_pod(q.clone());
        let mut relabelled = p;
        relabelled["metadata"]["labels"] = json!({"app": "other"});
        h(&Change::Modified(relabelled.clone()));
        assert_eq!(q.len(), 1);
        c.pods.insert(relabelled);
        c.reconcile("ns/web").await.unwrap();
        assert_eq!(
            fake.writes(),
            ["create endpoints ns/web", "update endpoints ns/web"]
        );
        let e = fake.object(&endpoints(), "ns/web").unwrap();
        assert_eq!(e["subsets"], json!([]));
    }
}
