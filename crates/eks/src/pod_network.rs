//! The Amazon VPC CNI's share of the kubelet for EKS nodes: pod IPs are secondary private IPv4
//! addresses of the instance's network interfaces, taken from the node's subnet through EC2's
//! domain functions, so `aws ec2 describe-network-interfaces` shows them.
//!
//! Like the CNI's IPAM daemon (ipamd), a node fills its primary interface first, then attaches
//! further interfaces (`aws-K8S-<instance>`, deleted with the instance) up to the instance type's
//! limit; a node with every interface full refuses with [`NetworkError::Exhausted`], which is why
//! `maxPods = ENIs × (IPv4 per ENI − 1) + 2` on EKS. The warm pool is not modelled: addresses are
//! taken one pod at a time.
//!
//! Which pod holds which address is recorded under `/aws/<account>/<region>/eks/pod-ip/<cluster-id>/<pod uid>`
//! so a pod asking again (or after a restart) gets the same IP and a deleted pod's IP is returned.

use std::net::Ipv4Addr;
use std::sync::Arc;

use serde_json::{Value, json};
use skiff_aws::context::RequestContext;
use skiff_aws_model::AwsError;
use skiff_nodes::{NetworkError, NodeRef, PodNetwork};
use skiff_store::{Op, Precondition, Store};

use crate::node_object::instance_of_provider_id;
use crate::service_context::service_context;

/// Pod IPs of one cluster's EKS nodes.
#[doc(alias = "amazon-vpc-cni")]
#[doc(alias = "ipamd")]
pub struct EksPodNetwork {
    store: Arc<dyn Store>,
    account: String,
    region: String,
    cluster_id: String,
    /// One assignment at a time per cluster: two pods of a node must not both attach interface 1.
    lock: tokio::sync::Mutex<()>,
}

fn other(e: impl std::fmt::Display) -> NetworkError {
    NetworkError::Other(e.to_string())
}

/// Where the address a pod holds is recorded (the Fargate scheduler records its pods' ENI addresses
/// here too, so the kubelet finds them the same way).
pub fn pod_ip_key(account: &str, region: &str, cluster_id: &str, pod_uid: &str) -> String {
    format!("/aws/{account}/{region}/eks/pod-ip/{cluster_id}/{pod_uid}")
}

impl EksPodNetwork {
    pub fn new(store: Arc<dyn Store>, account: &str, region: &str, cluster_id: &str) -> Self {
        Self {
            store,
            account: account.to_string(),
            region: region.to_string(),
            cluster_id: cluster_id.to_string(),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    fn ctx(&self) -> RequestContext {
        service_context(self.store.clone(), &self.account, &self.region)
    }

    fn key(&self, pod_uid: &str) -> String {
        pod_ip_key(&self.account, &self.region, &self.cluster_id, pod_uid)
    }

    async fn recorded(&self, pod_uid: &str) -> Result<Option<Value>, NetworkError> {
        let kv = self.store.get(&self.key(pod_uid)).await.map_err(other)?;
        Ok(kv.and_then(|kv| serde_json::from_slice(&kv.value).ok()))
    }

    /// The instance behind a node: its provider id, else the instance holding its InternalIP.
    async fn instance_id(
        &self,
        ctx: &RequestContext,
        node: &NodeRef,
    ) -> Result<String, NetworkError> {
        if let Some(id) = node
            .provider_id
            .as_deref()
            .and_then(instance_of_provider_id)
        {
            return Ok(id.to_string());
        }
        let ip = node.internal_ip.as_deref().ok_or_else(|| {
            NetworkError::Other(format!(
                "node {} has neither a providerID nor an InternalIP",
                node.name
            ))
        })?;
        let out = skiff_aws::ec2::dispatch(
            ctx,
            "DescribeInstances",
            json!({"Filters": [{"Name": "private-ip-address", "Values": [ip]}]}),
        )
        .await
        .map_err(other)?;
        out["Reservations"][0]["Instances"][0]["InstanceId"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| NetworkError::Other(format!("no EC2 instance has the address {ip}")))
    }

    /// The instance's interfaces, by device index.
    async fn interfaces(
        &self,
        ctx: &RequestContext,
        instance_id: &str,
    ) -> Result<Vec<Value>, NetworkError> {
        let out = skiff_aws::ec2::dispatch(
            ctx,
            "DescribeNetworkInterfaces",
            json!({"Filters": [{"Name": "attachment.instance-id", "Values": [instance_id]}]}),
        )
        .await
        .map_err(other)?;
        let mut enis: Vec<Value> = out["NetworkInterfaces"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        enis.sort_by_key(|e| e["Attachment"]["DeviceIndex"].as_i64().unwrap_or(0));
        Ok(enis)
    }

    /// Attach one more interface (as ipamd does when the attached ones are full), deleted with the
    /// instance. None when the instance type allows no more.
    async fn attach_interface(
        &self,
        ctx: &RequestContext,
        instance_id: &str,
        enis: &[Value],
    ) -> Result<Option<String>, NetworkError> {
        let Some(primary) = enis.first() else {
            return Ok(None);
        };
        let inst = skiff_aws::ec2::describe_instances_internal(ctx, &[instance_id.to_string()])
            .await
            .map_err(other)?;
        let itype = inst
            .first()
            .and_then(|i| i["InstanceType"].as_str())
            .and_then(skiff_aws::ec2::instance_type);
        let Some(t) = itype else { return Ok(None) };
        let per_card = t.maximum_network_interfaces / t.network_cards.max(1);
        if enis.len() as u32 >= per_card {
            return Ok(None);
        }
        let groups: Vec<Value> = primary["Groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g["GroupId"].as_str().map(|s| json!(s)))
            .collect();
        let created = skiff_aws::ec2::dispatch(
            ctx,
            "CreateNetworkInterface",
            json!({
                "SubnetId": primary["SubnetId"],
                "Groups": groups,
                "Description": format!("aws-K8S-{instance_id}"),
                "TagSpecifications": [{"ResourceType": "network-interface", "Tags": [
                    {"Key": "node.k8s.amazonaws.com/instance_id", "Value": instance_id},
                    {"Key": "cluster.k8s.amazonaws.com/name", "Value": self.cluster_id},
                ]}],
            }),
        )
        .await
        .map_err(|e| self.exhausted_or_other(e))?;
        let eni = created["NetworkInterface"]["NetworkInterfaceId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let device = enis
            .iter()
            .filter_map(|e| e["Attachment"]["DeviceIndex"].as_i64())
            .max()
            .unwrap_or(0)
            + 1;
        let attached = skiff_aws::ec2::dispatch(
            ctx,
            "AttachNetworkInterface",
            json!({"NetworkInterfaceId": eni, "InstanceId": instance_id, "DeviceIndex": device}),
        )
        .await
        .map_err(other)?;
        skiff_aws::ec2::dispatch(
            ctx,
            "ModifyNetworkInterfaceAttribute",
            json!({"NetworkInterfaceId": eni, "Attachment": {
                "AttachmentId": attached["AttachmentId"], "DeleteOnTermination": true}}),
        )
        .await
        .map_err(other)?;
        Ok(Some(eni))
    }

    fn exhausted_or_other(&self, e: AwsError) -> NetworkError {
        if e.code == "InsufficientFreeAddressesInSubnet" {
            NetworkError::Exhausted(e.message)
        } else {
            other(e)
        }
    }

    async fn assign_locked(&self, node: &NodeRef, pod_uid: &str) -> Result<String, NetworkError> {
        if let Some(r) = self.recorded(pod_uid).await? {
            return r["ip"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| NetworkError::Other("corrupt pod IP record".into()));
        }
        let ctx = self.ctx();
        let instance_id = self.instance_id(&ctx, node).await?;
        let mut enis = self.interfaces(&ctx, &instance_id).await?;
        let mut candidates: Vec<String> = enis
            .iter()
            .filter_map(|e| e["NetworkInterfaceId"].as_str().map(str::to_string))
            .collect();
        let mut i = 0;
        loop {
            if i == candidates.len() {
                match self.attach_interface(&ctx, &instance_id, &enis).await? {
                    Some(eni) => {
                        enis = self.interfaces(&ctx, &instance_id).await?;
                        candidates.push(eni);
                    }
                    None => {
                        return Err(NetworkError::Exhausted(format!(
                            "node {} ({instance_id}): every network interface holds its maximum of addresses",
                            node.name
                        )));
                    }
                }
            }
            let eni = candidates[i].clone();
            match skiff_aws::ec2::allocate_private_ips(&ctx, &eni, 1).await {
                Ok(ips) => {
                    let ip: Ipv4Addr = *ips
                        .first()
                        .ok_or_else(|| NetworkError::Other("EC2 assigned no address".into()))?;
                    let record = json!({"ip": ip.to_string(), "eni": eni, "instanceId": instance_id, "node": node.name});
                    self.store
                        .txn(vec![Op::Put {
                            key: self.key(pod_uid),
                            value: serde_json::to_vec(&record).map_err(other)?.into(),
                            precondition: Precondition::None,
                        }])
                        .await
                        .map_err(other)?;
                    return Ok(ip.to_string());
                }
                Err(e) if e.code == "PrivateIpAddressLimitExceeded" => i += 1,
                Err(e) => return Err(self.exhausted_or_other(e)),
            }
        }
    }
}

#[async_trait::async_trait]
impl PodNetwork for EksPodNetwork {
    async fn assign(&self, node: &NodeRef, pod_uid: &str) -> Result<String, NetworkError> {
        let _one = self.lock.lock().await;
        self.assign_locked(node, pod_uid).await
    }

    async fn release(&self, _node: &NodeRef, pod_uid: &str) {
        let _one = self.lock.lock().await;
        let Ok(Some(r)) = self.recorded(pod_uid).await else {
            return;
        };
        let (eni, ip) = (
            r["eni"].as_str().unwrap_or_default(),
            r["ip"].as_str().unwrap_or_default().to_string(),
        );
        let ctx = self.ctx();
        match skiff_aws::ec2::release_private_ips(&ctx, eni, std::slice::from_ref(&ip)).await {
            // The interface went with its instance: the address went back to the subnet then.
            Err(e) if e.code.starts_with("InvalidNetworkInterfaceID") => {}
            Err(e) => tracing::warn!(pod = %pod_uid, %ip, error = %e, "releasing a pod IP"),
            Ok(()) => {}
        }
        if let Err(e) = self
            .store
            .txn(vec![Op::Delete {
                key: self.key(pod_uid),
                precondition: Precondition::None,
            }])
            .await
        {
            tracing::warn!(pod = %pod_uid, error = %e, "forgetting a released pod IP");
        }
    }
}
