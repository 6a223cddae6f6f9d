//! The AWS Load Balancer Controller's Service half, built in: every `type: LoadBalancer` Service
//! of an EKS cluster (not claimed by another `loadBalancerClass`) gets a network load balancer,
//! one TCP/UDP target group and listener per port, and targets kept in step with the Nodes
//! (instance mode) or the ready and not-ready pod addresses (ip mode), whose health mirrors
//! readiness. The LB's DNS name goes to `status.loadBalancer.ingress[0].hostname`; the finalizer
//! `service.k8s.aws/resources` holds deletion until the LB, listeners and groups are gone.
//!
//! Everything is done through the ELBv2 and EC2 operations a user sees (`aws elbv2 describe-*`),
//! with the account and region of the cluster; resources are found again by their tags
//! (`elbv2.k8s.aws/cluster`, `service.k8s.aws/stack`), so the controller keeps no state of its own
//! and a restart or a scheme change (a new LB name) converges. [`run`] also starts
//! [`crate::external_dns`] on the same informers.

use skiff_controllers::runtime::SystemClock;
use skiff_controllers::runtime::events::{EventRecorder, EventType};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use skiff_aws::context::RequestContext;
use skiff_aws_model::AwsError;
use skiff_controllers::runtime::informer::{Cache, Change, key_of};
use skiff_controllers::runtime::queue::WorkQueue;
use skiff_controllers::runtime::reconcile::{self, Action, Error, Reconciler};
use skiff_k8s_core::client::{ApiClient, ResourceRef, WriteOptions};
use skiff_k8s_core::status::ApiError;
use skiff_store::Store;
use tokio::sync::watch;

use crate::cluster_dir::EksBinding;
use crate::load_balancer_model::{
    CLUSTER_TAG, FINALIZER, Health, RESOURCE_TAG, STACK_TAG, ServiceModel, Target, desired_targets,
    has_finalizer, is_deleting, pick_subnets, wants_nlb,
};

/// The identity the controller acts as, as the LBC's Helm chart installs it.
pub const CONTROLLER_USER: &str = "system:serviceaccount:kube-system:aws-load-balancer-controller";
/// The field manager and event source of its writes.
pub const NAME: &str = "service";
/// Look again this often even without changes (EC2 instance states move without an event).
const RESYNC: Duration = Duration::from_secs(300);

pub fn services() -> ResourceRef {
    ResourceRef::new("", "v1", "services")
}
pub fn endpoints() -> ResourceRef {
    ResourceRef::new("", "v1", "endpoints")
}
pub fn nodes() -> ResourceRef {
    ResourceRef::new("", "v1", "nodes")
}

/// Why a reconcile stopped.
#[derive(Debug, thiserror::Error)]
pub enum LbError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("{}: {}", .0.code, .0.message)]
    Aws(AwsError),
}

impl From<AwsError> for LbError {
    fn from(e: AwsError) -> Self {
        LbError::Aws(e)
    }
}

impl From<LbError> for Error {
    fn from(e: LbError) -> Self {
        match e {
            LbError::Api(a) => Error::Api(a),
            LbError::Aws(a) => Error::Invalid(format!("{}: {}", a.code, a.message)),
        }
    }
}

/// The AWS side of one cluster: whose account and region, which cluster name in tags.
#[derive(Clone)]
pub struct AwsScope {
    pub store: Arc<dyn Store>,
    pub binding: EksBinding,
}

impl AwsScope {
    /// A request context of the cluster's account and region, attributed to the LBC's role.
    pub fn ctx(&self) -> RequestContext {
        let mut ctx = crate::service_context::service_context(
            self.store.clone(),
            &self.binding.account,
            &self.binding.region,
        );
        ctx.caller.arn = format!(
            "arn:aws:sts::{}:assumed-role/AmazonEKSLoadBalancerControllerRole/aws-load-balancer-controller",
            self.binding.account
        );
        ctx
    }

    pub async fn call(&self, service: &str, op: &str, input: Value) -> Result<Value, AwsError> {
        skiff_aws::dispatch(&self.ctx(), service, op, input).await
    }
}

/// Runs the Service → NLB controller and ExternalDNS for one cluster until `shutdown` flips.
pub async fn run(
    client: Arc<dyn ApiClient>,
    store: Arc<dyn Store>,
    binding: EksBinding,
    shutdown: watch::Receiver<bool>,
) {
    let aws = AwsScope { store, binding };
    let mut informers = skiff_controllers::Informers::new(client.clone());
    let lb_queue = WorkQueue::new();
    let lb = Arc::new(LoadBalancerController::new(
        client.clone(),
        aws.clone(),
        informers.cache(services()),
        informers.cache(endpoints()),
        informers.cache(nodes()),
    ));
    {
        let q = lb_queue.clone();
        informers
            .get(services())
            .add_handler(Arc::new(move |c: &Change| q.add(&key_of(c.object()))));
        // Endpoints share their Service's key.
        let q = lb_queue.clone();
        informers
            .get(endpoints())
            .add_handler(Arc::new(move |c: &Change| q.add(&key_of(c.object()))));
        // A Node change that matters to targets (added, gone, readiness, providerID, exclusion
        // label) touches every LB; heartbeats alone do not.
        let q = lb_queue.clone();
        let svcs = lb.services.clone();
        let seen: std::sync::Mutex<BTreeMap<String, String>> = Default::default();
        informers
            .get(nodes())
            .add_handler(Arc::new(move |c: &Change| {
                let n = c.object();
                let print = match c {
                    Change::Deleted(_) => String::new(),
                    _ => node_fingerprint(n),
                };
                let before = seen
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key_of(n), print.clone());
                if before.as_deref() == Some(print.as_str()) {
                    return;
                }
                for s in svcs.list(None) {
                    if wants_nlb(&s) || has_finalizer(&s, FINALIZER) {
                        q.add(&key_of(&s));
                    }
                }
            }));
    }
    let dns_queue = WorkQueue::new();
    let dns = Arc::new(
        crate::external_dns::ExternalDns::new(aws.clone(), informers.cache(services()))
            .with_ingresses(informers.cache(crate::ingress_alb::ingresses())),
    );
    {
        let q = dns_queue.clone();
        informers
            .get(services())
            .add_handler(Arc::new(move |c: &Change| {
                q.add(&format!("service/{}", key_of(c.object())))
            }));
        let q = dns_queue.clone();
        informers
            .get(crate::ingress_alb::ingresses())
            .add_handler(Arc::new(move |c: &Change| {
                q.add(&format!("ingress/{}", key_of(c.object())))
            }));
    }
    // Ingress groups: an Ingress queues its group (and the one it left); any Service, Endpoints
    // or Node change may move a group's targets, so it queues every group.
    let ing_queue = WorkQueue::new();
    let ing_cache = informers.cache(crate::ingress_alb::ingresses());
    let ing = Arc::new(crate::ingress_alb::IngressController::new(
        lb.clone(),
        ing_cache.clone(),
    ));
    {
        let q = ing_queue.clone();
        let last: std::sync::Mutex<BTreeMap<String, String>> = Default::default();
        informers
            .get(crate::ingress_alb::ingresses())
            .add_handler(Arc::new(move |c: &Change| {
                let group = crate::ingress_alb::group_of(c.object());
                let before = last
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key_of(c.object()), group.clone());
                if let Some(b) = before.filter(|b| *b != group) {
                    q.add(&b);
                }
                q.add(&group);
            }));
        for r in [services(), endpoints(), nodes()] {
            let q = ing_queue.clone();
            let cache = ing_cache.clone();
            informers.get(r).add_handler(Arc::new(move |_: &Change| {
                for i in cache.list(None) {
                    q.add(&crate::ingress_alb::group_of(&i));
                }
            }));
        }
    }
    crate::ingress_alb::IngressController::ensure_ingress_class(&*client).await;
    let informer_tasks = informers.start(shutdown.clone()).await;
    let ing_task = tokio::spawn(reconcile::run(ing, ing_queue, 1, shutdown.clone()));
    let lb_task = tokio::spawn(reconcile::run(lb, lb_queue, 2, shutdown.clone()));
    let dns_task = tokio::spawn(reconcile::run(dns, dns_queue, 1, shutdown));
    let _ = lb_task.await;
    let _ = dns_task.await;
    let _ = ing_task.await;
    for t in informer_tasks {
        let _ = t.await;
    }
}

/// The reconciler of Services (keys `namespace/name`).
pub struct LoadBalancerController {
    pub(crate) client: Arc<dyn ApiClient>,
    pub(crate) aws: AwsScope,
    pub(crate) services: Cache,
    pub(crate) endpoints: Cache,
    pub(crate) nodes: Cache,
    /// Events, repeats folded into one with a count as client-go's recorder does.
    events: Arc<EventRecorder>,
}

pub(crate) fn arr(v: &Value, member: &str) -> Vec<Value> {
    v[member].as_array().cloned().unwrap_or_default()
}

/// The first element of a list member, `Null` when there is none.
pub(crate) fn first(v: &Value, member: &str) -> Value {
    v[member].get(0).cloned().unwrap_or(Value::Null)
}

pub(crate) fn s(v: &Value, member: &str) -> String {
    v[member].as_str().unwrap_or_default().to_string()
}

pub(crate) fn tags_json(tags: &[(&str, String)]) -> Value {
    json!(
        tags.iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect::<Vec<_>>()
    )
}

impl LoadBalancerController {
    pub fn new(
        client: Arc<dyn ApiClient>,
        aws: AwsScope,
        services: Cache,
        endpoints: Cache,
        nodes: Cache,
    ) -> Self {
        let events = EventRecorder::new(client.clone(), NAME, Arc::new(SystemClock));
        Self {
            client,
            aws,
            services,
            endpoints,
            nodes,
            events,
        }
    }

    pub(crate) fn cluster(&self) -> &str {
        &self.aws.binding.name
    }

    /// Every `(arn, tags)` of `kind` (`lb` or `tg`) tagged for this cluster and `stack`.
    pub(crate) async fn tagged(
        &self,
        kind: &str,
        stack_tag: &str,
        stack: &str,
    ) -> Result<Vec<(Value, String)>, LbError> {
        let (op, member, arn_member) = match kind {
            "lb" => ("DescribeLoadBalancers", "LoadBalancers", "LoadBalancerArn"),
            _ => ("DescribeTargetGroups", "TargetGroups", "TargetGroupArn"),
        };
        let mut all = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut input = json!({});
            if let Some(m) = &marker {
                input["Marker"] = json!(m);
            }
            let page = self.aws.call("elasticloadbalancing", op, input).await?;
            all.extend(arr(&page, member));
            match page["NextMarker"].as_str() {
                Some(m) => marker = Some(m.to_string()),
                None => break,
            }
        }
        let mut out = Vec::new();
        for chunk in all.chunks(20) {
            let arns: Vec<String> = chunk.iter().map(|r| s(r, arn_member)).collect();
            let tags = self
                .aws
                .call(
                    "elasticloadbalancing",
                    "DescribeTags",
                    json!({"ResourceArns": arns}),
                )
                .await?;
            for d in arr(&tags, "TagDescriptions") {
                let t = &d["Tags"];
                let has = |k: &str, v: &str| {
                    t.as_array()
                        .into_iter()
                        .flatten()
                        .any(|x| x["Key"] == k && x["Value"] == v)
                };
                if has(CLUSTER_TAG, self.cluster()) && has(stack_tag, stack) {
                    let arn = s(&d, "ResourceArn");
                    if let Some(r) = chunk.iter().find(|r| r[arn_member] == arn.as_str()) {
                        out.push((r.clone(), arn));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Deletes the LBs (and with them their listeners) of `stack` except `keep`, then its target
    /// groups not in `keep_groups`.
    pub(crate) async fn delete_stale(
        &self,
        stack_tag: &str,
        stack: &str,
        keep: Option<&str>,
        keep_groups: &BTreeSet<String>,
    ) -> Result<bool, LbError> {
        let mut changed = false;
        for (lb, arn) in self.tagged("lb", stack_tag, stack).await? {
            if Some(lb["LoadBalancerName"].as_str().unwrap_or_default()) != keep {
                self.aws
                    .call(
                        "elasticloadbalancing",
                        "DeleteLoadBalancer",
                        json!({"LoadBalancerArn": arn}),
                    )
                    .await?;
                changed = true;
            }
        }
        for (tg, arn) in self.tagged("tg", stack_tag, stack).await? {
            if !keep_groups.contains(tg["TargetGroupName"].as_str().unwrap_or_default()) {
                self.aws
                    .call(
                        "elasticloadbalancing",
                        "DeleteTargetGroup",
                        json!({"TargetGroupArn": arn}),
                    )
                    .await?;
                changed = true;
            }
        }
        Ok(changed)
    }

    /// Records an event about `svc` (any namespaced object: its `kind` and `apiVersion` are used).
    pub(crate) async fn event(&self, svc: &Value, kind: &str, reason: &str, message: &str) {
        let kind = if kind == "Warning" {
            EventType::Warning
        } else {
            EventType::Normal
        };
        if let Err(e) = self.events.write(svc, kind, reason, message).await {
            tracing::debug!(error = %e, "event not recorded");
        }
    }

    pub(crate) fn write_opts(&self) -> WriteOptions {
        WriteOptions {
            field_manager: Some("aws-load-balancer-controller".into()),
            dry_run: false,
        }
    }

    async fn set_finalizer(&self, svc: &Value, present: bool) -> Result<Value, LbError> {
        let mut svc = svc.clone();
        let mut list: Vec<Value> = svc["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        list.retain(|f| f != FINALIZER);
        if present {
            list.push(json!(FINALIZER));
        }
        svc["metadata"]["finalizers"] = json!(list);
        let ns = svc["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        Ok(self
            .client
            .update(&services().in_namespace(&ns), svc, &self.write_opts())
            .await?)
    }

    async fn set_hostname(&self, svc: &Value, hostname: Option<&str>) -> Result<bool, LbError> {
        let want = match hostname {
            Some(h) => json!({"ingress": [{"hostname": h}]}),
            None => json!({}),
        };
        let have = svc
            .pointer("/status/loadBalancer")
            .cloned()
            .unwrap_or(json!({}));
        if have == want || (hostname.is_none() && have["ingress"].is_null()) {
            return Ok(false);
        }
        let mut svc = svc.clone();
        svc["status"]["loadBalancer"] = want;
        let ns = svc["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        self.client
            .update_status(&services().in_namespace(&ns), svc, &self.write_opts())
            .await?;
        Ok(true)
    }

    /// The NLB of `model` in `subnets`, created or moved onto them.
    async fn ensure_load_balancer(
        &self,
        model: &ServiceModel,
        subnets: &[String],
    ) -> Result<(Value, bool), LbError> {
        let name = &model.load_balancer_name;
        match self
            .aws
            .call(
                "elasticloadbalancing",
                "DescribeLoadBalancers",
                json!({"Names": [name]}),
            )
            .await
        {
            Ok(out) => {
                let lb = first(&out, "LoadBalancers");
                let mut have: Vec<String> = arr(&lb, "AvailabilityZones")
                    .iter()
                    .map(|z| s(z, "SubnetId"))
                    .collect();
                have.sort();
                let mut want = subnets.to_vec();
                want.sort();
                if have != want {
                    self.aws
                        .call(
                            "elasticloadbalancing",
                            "SetSubnets",
                            json!({"LoadBalancerArn": lb["LoadBalancerArn"], "Subnets": want}),
                        )
                        .await?;
                    return Ok((lb, true));
                }
                Ok((lb, false))
            }
            Err(e) if e.code == "LoadBalancerNotFound" => {
                let tags = tags_json(&[
                    (CLUSTER_TAG, self.cluster().to_string()),
                    (STACK_TAG, model.stack()),
                    (RESOURCE_TAG, "LoadBalancer".to_string()),
                ]);
                let out = self
                    .aws
                    .call(
                        "elasticloadbalancing",
                        "CreateLoadBalancer",
                        json!({"Name": name, "Type": "network", "Scheme": model.scheme.as_str(),
                           "Subnets": subnets, "Tags": tags}),
                    )
                    .await?;
                Ok((first(&out, "LoadBalancers"), true))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn ensure_target_group(
        &self,
        model: &ServiceModel,
        port: &crate::load_balancer_model::PortModel,
        vpc: &str,
    ) -> Result<(String, bool), LbError> {
        let name = &port.target_group_name;
        match self
            .aws
            .call(
                "elasticloadbalancing",
                "DescribeTargetGroups",
                json!({"Names": [name]}),
            )
            .await
        {
            Ok(out) => Ok((s(&first(&out, "TargetGroups"), "TargetGroupArn"), false)),
            Err(e) if e.code == "TargetGroupNotFound" => {
                let tg_port = match model.target_type {
                    crate::load_balancer_model::TargetType::Instance => port.node_port,
                    crate::load_balancer_model::TargetType::Ip => port.target_port,
                }
                .unwrap_or(1);
                let tags = tags_json(&[
                    (CLUSTER_TAG, self.cluster().to_string()),
                    (STACK_TAG, model.stack()),
                    (RESOURCE_TAG, format!("{}:{}", model.stack(), port.port)),
                ]);
                let out = self
                    .aws
                    .call(
                        "elasticloadbalancing",
                        "CreateTargetGroup",
                        json!({"Name": name, "Protocol": port.protocol, "Port": tg_port,
                           "VpcId": vpc, "TargetType": model.target_type.as_str(),
                           "HealthCheckProtocol": "TCP", "Tags": tags}),
                    )
                    .await?;
                Ok((s(&first(&out, "TargetGroups"), "TargetGroupArn"), true))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// One listener per port forwarding to its group; listeners of removed ports go.
    async fn sync_listeners(
        &self,
        lb_arn: &str,
        model: &ServiceModel,
        groups: &BTreeMap<i64, String>,
    ) -> Result<bool, LbError> {
        let have = arr(
            &self
                .aws
                .call(
                    "elasticloadbalancing",
                    "DescribeListeners",
                    json!({"LoadBalancerArn": lb_arn}),
                )
                .await?,
            "Listeners",
        );
        let mut changed = false;
        for p in &model.ports {
            let Some(tg) = groups.get(&p.port) else {
                continue;
            };
            let actions = json!([{"Type": "forward", "TargetGroupArn": tg}]);
            match have.iter().find(|l| l["Port"] == p.port) {
                None => {
                    self.aws
                        .call(
                            "elasticloadbalancing",
                            "CreateListener",
                            json!({"LoadBalancerArn": lb_arn, "Protocol": p.protocol,
                               "Port": p.port, "DefaultActions": actions}),
                        )
                        .await?;
                    changed = true;
                }
                Some(l) => {
                    let current = l["DefaultActions"][0]["TargetGroupArn"].as_str();
                    if current != Some(tg.as_str()) || l["Protocol"] != p.protocol.as_str() {
                        self.aws
                            .call(
                                "elasticloadbalancing",
                                "ModifyListener",
                                json!({"ListenerArn": l["ListenerArn"], "Protocol": p.protocol,
                                   "Port": p.port, "DefaultActions": actions}),
                            )
                            .await?;
                        changed = true;
                    }
                }
            }
        }
        for l in &have {
            if !model.ports.iter().any(|p| l["Port"] == p.port) {
                self.aws
                    .call(
                        "elasticloadbalancing",
                        "DeleteListener",
                        json!({"ListenerArn": l["ListenerArn"]}),
                    )
                    .await?;
                changed = true;
            }
        }
        Ok(changed)
    }

    /// Registers missing targets, deregisters departed ones (they drain), and records each
    /// target's health as its readiness says.
    pub(crate) async fn sync_targets(
        &self,
        svc: &Value,
        tg_arn: &str,
        want: &[Target],
    ) -> Result<(), LbError> {
        let health = self
            .aws
            .call(
                "elasticloadbalancing",
                "DescribeTargetHealth",
                json!({"TargetGroupArn": tg_arn}),
            )
            .await?;
        // (id, port) → state, for every registered target.
        let have: BTreeMap<(String, i64), String> = arr(&health, "TargetHealthDescriptions")
            .iter()
            .map(|d| {
                (
                    (
                        s(&d["Target"], "Id"),
                        d["Target"]["Port"].as_i64().unwrap_or_default(),
                    ),
                    s(&d["TargetHealth"], "State"),
                )
            })
            .collect();
        let key = |t: &Target| (t.id.clone(), t.port);
        let missing: Vec<&Target> = want
            .iter()
            .filter(|t| have.get(&key(t)).is_none_or(|st| st == "draining"))
            .collect();
        let gone: Vec<Value> = have
            .iter()
            .filter(|((id, port), st)| {
                *st != "draining" && !want.iter().any(|t| &t.id == id && t.port == *port)
            })
            .map(|((id, port), _)| json!({"Id": id, "Port": port}))
            .collect();
        if !gone.is_empty() {
            self.aws
                .call(
                    "elasticloadbalancing",
                    "DeregisterTargets",
                    json!({"TargetGroupArn": tg_arn, "Targets": gone}),
                )
                .await?;
        }
        let mut registered: Vec<&Target> = Vec::new();
        if !missing.is_empty() {
            let all: Vec<Value> = missing
                .iter()
                .map(|t| json!({"Id": t.id, "Port": t.port}))
                .collect();
            match self
                .aws
                .call(
                    "elasticloadbalancing",
                    "RegisterTargets",
                    json!({"TargetGroupArn": tg_arn, "Targets": all}),
                )
                .await
            {
                Ok(_) => registered = missing.clone(),
                // One bad target (an instance EC2 no longer knows) must not hold the others back.
                Err(e) if e.code == "InvalidTarget" => {
                    for t in &missing {
                        match self
                            .aws
                            .call(
                                "elasticloadbalancing",
                                "RegisterTargets",
                                json!({"TargetGroupArn": tg_arn,
                                       "Targets": [{"Id": t.id, "Port": t.port}]}),
                            )
                            .await
                        {
                            Ok(_) => registered.push(t),
                            Err(e) => {
                                self.event(svc, "Warning", "FailedDeployModel", &e.message)
                                    .await;
                            }
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        for t in want {
            let fresh = registered.iter().any(|r| r.id == t.id && r.port == t.port);
            let state = if fresh {
                None
            } else {
                have.get(&key(t)).map(String::as_str)
            };
            let (want_state, reason, description) = match t.health {
                Health::Healthy => ("healthy", None, None),
                Health::Unhealthy => (
                    "unhealthy",
                    Some("Target.FailedHealthChecks"),
                    Some("Health checks failed"),
                ),
            };
            if !fresh && (state.is_none() || state == Some(want_state)) {
                continue;
            }
            skiff_aws::elbv2::set_target_health(
                &self.aws.ctx(),
                tg_arn,
                &t.id,
                Some(t.port),
                Some((want_state, reason, description)),
            )
            .await?;
        }
        Ok(())
    }

    pub(crate) async fn cluster_vpc(&self) -> Result<String, LbError> {
        let b = &self.aws.binding;
        let cluster = skiff_aws::eks::get_cluster(&*self.aws.store, &b.account, &b.region, &b.name)
            .await?
            .unwrap_or_default();
        Ok(cluster
            .pointer("/resourcesVpcConfig/vpcId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    /// Brings the AWS resources of `svc` to its model; returns whether anything changed.
    async fn deploy(&self, svc: &Value, model: &ServiceModel) -> Result<Option<bool>, LbError> {
        let vpc = self.cluster_vpc().await?;
        let subnets = arr(
            &self
                .aws
                .call(
                    "ec2",
                    "DescribeSubnets",
                    json!({"Filters": [{"Name": "vpc-id", "Values": [vpc]}]}),
                )
                .await?,
            "Subnets",
        );
        let picked = pick_subnets(&subnets, self.cluster(), model.scheme);
        if picked.is_empty() {
            self.event(
                svc,
                "Warning",
                "FailedBuildModel",
                &format!(
                    "Failed build model due to unable to resolve at least one subnet (0 match VPC and tags: [{}])",
                    model.scheme.role_tag()
                ),
            )
            .await;
            return Ok(None);
        }
        let (lb, mut changed) = self.ensure_load_balancer(model, &picked).await?;
        let lb_arn = s(&lb, "LoadBalancerArn");
        let mut groups = BTreeMap::new();
        for p in &model.ports {
            let (arn, created) = self.ensure_target_group(model, p, &vpc).await?;
            changed |= created;
            groups.insert(p.port, arn);
        }
        changed |= self.sync_listeners(&lb_arn, model, &groups).await?;
        let ns_key = format!("{}/{}", model.namespace, model.name);
        let endpoints = self.endpoints.get(&ns_key);
        let nodes = self.nodes.list(None);
        for p in &model.ports {
            let want = desired_targets(model, p, &nodes, endpoints.as_ref());
            if let Some(arn) = groups.get(&p.port) {
                self.sync_targets(svc, arn, &want).await?;
            }
        }
        let keep: BTreeSet<String> = model
            .ports
            .iter()
            .map(|p| p.target_group_name.clone())
            .collect();
        changed |= self
            .delete_stale(
                STACK_TAG,
                &model.stack(),
                Some(&model.load_balancer_name),
                &keep,
            )
            .await?;
        Ok(Some(changed))
    }

    async fn reconcile_service(&self, key: &str) -> Result<Action, LbError> {
        let Some((ns, name)) = key.split_once('/') else {
            return Ok(Action::AwaitChange);
        };
        // A fresh read: the finalizer and status writes need the current resourceVersion.
        let Some(mut svc) = self
            .client
            .get_opt(&services().in_namespace(ns), name)
            .await?
        else {
            return Ok(Action::AwaitChange);
        };
        let ours = has_finalizer(&svc, FINALIZER);
        if is_deleting(&svc) || !wants_nlb(&svc) {
            if ours {
                self.delete_stale(STACK_TAG, key, None, &BTreeSet::new())
                    .await?;
                let svc = self.set_finalizer(&svc, false).await?;
                if !is_deleting(&svc) {
                    self.set_hostname(&svc, None).await?;
                }
                self.event(
                    &svc,
                    "Normal",
                    "SuccessfullyReconciled",
                    "Successfully reconciled",
                )
                .await;
            }
            return Ok(Action::AwaitChange);
        }
        let model = match ServiceModel::build(self.cluster(), &svc) {
            Ok(m) => m,
            Err(msg) => {
                self.event(
                    &svc,
                    "Warning",
                    "FailedBuildModel",
                    &format!("Failed build model due to {msg}"),
                )
                .await;
                return Ok(Action::AwaitChange);
            }
        };
        if !ours {
            svc = self.set_finalizer(&svc, true).await?;
        }
        let changed = match self.deploy(&svc, &model).await {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(Action::Requeue(Duration::from_secs(30))),
            Err(e) => {
                let msg = e.to_string();
                self.event(
                    &svc,
                    "Warning",
                    "FailedDeployModel",
                    &format!("Failed deploy model due to {msg}"),
                )
                .await;
                return Err(e);
            }
        };
        let lb = self
            .aws
            .call(
                "elasticloadbalancing",
                "DescribeLoadBalancers",
                json!({"Names": [model.load_balancer_name]}),
            )
            .await?;
        let dns = s(&first(&lb, "LoadBalancers"), "DNSName");
        let status_changed = self.set_hostname(&svc, Some(&dns)).await?;
        if changed || status_changed {
            self.event(
                &svc,
                "Normal",
                "SuccessfullyReconciled",
                "Successfully reconciled",
            )
            .await;
        }
        Ok(Action::Requeue(RESYNC))
    }
}

/// What of a Node decides its targets: providerID, Ready, the exclusion label, deletion.
fn node_fingerprint(n: &Value) -> String {
    let ready = n
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .map(|c| c["status"].clone());
    json!([
        n.pointer("/spec/providerID"),
        ready,
        n.pointer("/metadata/labels")
            .and_then(|l| l.get(crate::load_balancer_model::EXCLUDE_NODE_LABEL))
            .is_some(),
        is_deleting(n),
    ])
    .to_string()
}

#[async_trait::async_trait]
impl Reconciler for LoadBalancerController {
    fn name(&self) -> &'static str {
        "aws-load-balancer-controller"
    }

    async fn reconcile(&self, key: &str) -> Result<Action, Error> {
        self.reconcile_service(key).await.map_err(Error::from)
    }
}
