//! The answer behind `GET /_skiff/netcheck` and `skiff netcheck`: read a running EKS cluster's
//! pods, namespaces, NetworkPolicies, Services and SecurityGroupPolicies through its in-process
//! client, judge the query with [`crate::network_policy::evaluate`], and add the EC2 security
//! group verdict ([`crate::pod_security_groups`]) to every path with a pod that has security
//! groups for pods. Implements the gateway's injected
//! [`Netcheck`](skiff_aws::gateway::internal_routes::Netcheck).
//!
//! Security groups are judged only on paths where a pod has a SecurityGroupPolicy (its branch ENI);
//! the other end then counts with its node's groups (the instance's), as on EKS. Paths between
//! pods on node ENIs are judged by NetworkPolicy alone: EKS's cluster security group lets a
//! cluster's nodes talk to each other.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{Value, json};
use skiff_aws::gateway::internal_routes::{InternalRouteError, Netcheck, NetcheckRequest};
use skiff_k8s_core::client::{ApiClient, ListOptions, ResourceRef};
use skiff_k8s_core::status::ApiError;
use skiff_store::Store;

use crate::control_plane::ControlPlanes;
use crate::network_policy::{self, Inventory, NetcheckError, PeerRef, Protocol, Query, Verdict};
use crate::pod_security_groups::{self, RulesByGroup, SgEnd};

/// The identity the check reads as (reads only).
pub const READER_USER: &str = "system:serviceaccount:kube-system:skiff-netcheck";
/// The region assumed when the query names none (the gateway's default).
const DEFAULT_REGION: &str = "us-east-1";

/// Answers netchecks for the clusters of one `skiff up`.
pub struct NetcheckService {
    planes: Arc<ControlPlanes>,
    store: Arc<dyn Store>,
}

impl NetcheckService {
    pub fn new(planes: Arc<ControlPlanes>, store: Arc<dyn Store>) -> Self {
        Self { planes, store }
    }

    /// Judge `query` in the EKS cluster `cluster` (of `region`, default us-east-1, any account).
    pub async fn check(
        &self,
        cluster: &str,
        region: Option<&str>,
        query: &Query,
    ) -> Result<Verdict, NetcheckError> {
        let region = region.unwrap_or(DEFAULT_REGION);
        let record = self
            .planes
            .list()
            .await
            .into_iter()
            .filter(|r| {
                r.eks
                    .as_ref()
                    .is_some_and(|e| e.name == cluster && e.region == region)
            })
            .min_by_key(|r| {
                r.eks
                    .as_ref()
                    .map(|e| e.account.clone())
                    .unwrap_or_default()
                    != skiff_aws::credentials::DEFAULT_ACCOUNT_ID
            })
            .ok_or_else(|| {
                NetcheckError::ClusterNotFound(format!("{cluster:?} (region {region})"))
            })?;
        let Some(binding) = record.eks.clone() else {
            return Err(NetcheckError::ClusterNotFound(cluster.to_string()));
        };
        let client = self
            .planes
            .client(&record.name, READER_USER)
            .await
            .ok_or_else(|| NetcheckError::ClusterNotFound(cluster.to_string()))?;
        let objects = read_cluster(&*client).await?;
        let mut verdict = network_policy::evaluate(&objects.inventory, query)?;
        let ctx = crate::service_context::service_context(
            self.store.clone(),
            &binding.account,
            &binding.region,
        );
        add_security_groups(&ctx, &objects, &mut verdict, query).await?;
        Ok(verdict)
    }
}

/// What a check reads from a cluster.
pub struct ClusterObjects {
    pub inventory: Inventory,
    pub security_group_policies: Vec<Value>,
    pub service_accounts: Vec<Value>,
    pub nodes: Vec<Value>,
}

async fn list(client: &dyn ApiClient, r: ResourceRef) -> Result<Vec<Value>, NetcheckError> {
    match client.list(&r, &ListOptions::default()).await {
        Ok(l) => Ok(l.items),
        // The SecurityGroupPolicy CRD may still be on its way in a cluster that just started.
        Err(ApiError::NotFound { .. }) => Ok(Vec::new()),
        Err(e) => Err(NetcheckError::Internal(format!(
            "listing {}: {e}",
            r.resource
        ))),
    }
}

/// Read every object a check needs, across namespaces.
pub async fn read_cluster(client: &dyn ApiClient) -> Result<ClusterObjects, NetcheckError> {
    let core = |res: &str| ResourceRef::new("", "v1", res);
    Ok(ClusterObjects {
        inventory: Inventory {
            pods: list(client, core("pods")).await?,
            namespaces: list(client, core("namespaces")).await?,
            network_policies: list(
                client,
                ResourceRef::new("networking.k8s.io", "v1", "networkpolicies"),
            )
            .await?,
            services: list(client, core("services")).await?,
        },
        security_group_policies: list(client, pod_security_groups::security_group_policies())
            .await?,
        service_accounts: list(client, core("serviceaccounts")).await?,
        nodes: list(client, core("nodes")).await?,
    })
}

/// The pod of `info` (`ns/name`) in the inventory.
fn pod_named<'a>(objects: &'a ClusterObjects, name: &str) -> Option<&'a Value> {
    let (ns, n) = name.split_once('/')?;
    objects.inventory.pods.iter().find(|p| {
        p["metadata"]["namespace"].as_str() == Some(ns) && p["metadata"]["name"].as_str() == Some(n)
    })
}

/// The groups a pod sends through: its SecurityGroupPolicies' (branch ENI) or its node's.
/// `instance_groups` maps an instance id to its groups. None when the pod is on no known instance.
fn sg_end(
    objects: &ClusterObjects,
    pod: &Value,
    instance_groups: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Option<SgEnd> {
    let ip = pod["status"]["podIP"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let node_name = pod["spec"]["nodeName"].as_str().map(String::from);
    let host_network = pod["spec"]["hostNetwork"].as_bool() == Some(true);
    if !host_network
        && let Some((names, groups)) = pod_security_groups::groups_for_pod(
            pod,
            &objects.security_group_policies,
            &objects.service_accounts,
        )
    {
        return Some(SgEnd {
            ip,
            groups,
            origin: format!("SecurityGroupPolicy {}", names.join(", ")),
            branch: true,
            node: node_name,
        });
    }
    let node = objects
        .nodes
        .iter()
        .find(|n| n["metadata"]["name"].as_str() == node_name.as_deref())?;
    let instance =
        crate::node_object::instance_of_provider_id(node["spec"]["providerID"].as_str()?)?;
    Some(SgEnd {
        ip,
        groups: instance_groups(instance)?,
        origin: format!(
            "node {} (instance {instance})",
            node_name.as_deref().unwrap_or_default()
        ),
        branch: false,
        node: node_name,
    })
}

/// Add the security group verdict to every path where a pod has security groups for pods.
async fn add_security_groups(
    ctx: &skiff_aws::context::RequestContext,
    objects: &ClusterObjects,
    verdict: &mut Verdict,
    query: &Query,
) -> Result<(), NetcheckError> {
    let has_branch = |name: &str| {
        pod_named(objects, name).is_some_and(|p| {
            p["spec"]["hostNetwork"].as_bool() != Some(true)
                && pod_security_groups::groups_for_pod(
                    p,
                    &objects.security_group_policies,
                    &objects.service_accounts,
                )
                .is_some()
        })
    };
    let needed = verdict.paths.iter().any(|p| {
        (p.source.kind == "pod" && has_branch(&p.source.name))
            || (p.destination.kind == "pod" && has_branch(&p.destination.name))
    });
    if !needed {
        return Ok(());
    }
    let aws = |e: skiff_aws_model::AwsError| NetcheckError::Internal(format!("EC2: {}", e.message));
    let instances = skiff_aws::ec2::instances::instance_records(ctx)
        .await
        .map_err(aws)?;
    let instance_groups = |id: &str| -> Option<Vec<String>> {
        let inst = instances
            .iter()
            .find(|i| i["InstanceId"].as_str() == Some(id))?;
        Some(
            inst["SecurityGroups"]
                .as_array()?
                .iter()
                .filter_map(|g| g["GroupId"].as_str().map(String::from))
                .collect(),
        )
    };
    let mut ends = Vec::new();
    for p in &verdict.paths {
        let end_of = |info: &network_policy::EndpointInfo| {
            (info.kind == "pod")
                .then(|| pod_named(objects, &info.name))
                .flatten()
                .and_then(|pod| sg_end(objects, pod, &instance_groups))
        };
        ends.push((end_of(&p.source), end_of(&p.destination)));
    }
    let groups: BTreeSet<String> = ends
        .iter()
        .flat_map(|(s, d)| s.iter().chain(d.iter()))
        .flat_map(|e| e.groups.iter().cloned())
        .collect();
    let mut rules = RulesByGroup::new();
    if !groups.is_empty() {
        let out = skiff_aws::dispatch(
            ctx,
            "ec2",
            "DescribeSecurityGroupRules",
            json!({"Filters": [{"Name": "group-id", "Values": groups}], "MaxResults": 1000}),
        )
        .await
        .map_err(aws)?;
        for r in out["SecurityGroupRules"].as_array().into_iter().flatten() {
            let g = r["GroupId"].as_str().unwrap_or_default().to_string();
            rules.entry(g).or_default().push(r.clone());
        }
    }
    let ip = |info: &network_policy::EndpointInfo| {
        info.ip.as_deref().and_then(|s| s.parse::<IpAddr>().ok())
    };
    for (p, (src, dst)) in verdict.paths.iter_mut().zip(ends) {
        let branch =
            src.as_ref().is_some_and(|e| e.branch) || dst.as_ref().is_some_and(|e| e.branch);
        if !branch {
            continue;
        }
        p.security_groups = pod_security_groups::evaluate(
            src.as_ref(),
            ip(&p.source),
            dst.as_ref(),
            ip(&p.destination),
            p.port,
            query.protocol,
            &rules,
        );
    }
    verdict.recompute();
    Ok(())
}

/// Parse the wire request into a query (peers and protocol in the CLI's syntax).
pub fn parse_query(req: &NetcheckRequest) -> Result<Query, NetcheckError> {
    let protocol = Protocol::parse(&req.protocol).ok_or_else(|| {
        NetcheckError::BadRequest(format!(
            "unsupported protocol {:?}: expected TCP, UDP or SCTP",
            req.protocol
        ))
    })?;
    Ok(Query {
        from: PeerRef::parse(&req.from)?,
        to: PeerRef::parse(&req.to)?,
        port: req.port,
        protocol,
    })
}

#[async_trait::async_trait]
impl Netcheck for NetcheckService {
    async fn netcheck(&self, req: NetcheckRequest) -> Result<Value, InternalRouteError> {
        let to_route = |e: NetcheckError| InternalRouteError::new(e.status(), e.to_string());
        let query = parse_query(&req).map_err(to_route)?;
        let verdict = self
            .check(&req.cluster, req.region.as_deref(), &query)
            .await
            .map_err(to_route)?;
        serde_json::to_value(&verdict)
            .map_err(|e| InternalRouteError::new(500, format!("encoding the verdict: {e}")))
    }
}
