//! The default [`PodNetwork`] for clusters without the EKS layer (tests, `skiff up --demo`): each
//! node hands out addresses from its `spec.podCIDR`, or from a /24 derived from its name when it
//! has none (the host-local IPAM plugin's model). The EKS layer replaces it with ENI secondary IPs.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Mutex;

use ipnet::Ipv4Net;

use crate::sim::hash::hash64;
use crate::{NetworkError, NodeRef, PodNetwork};

/// Per-node pools, one lock for all (assignments are a few map operations; the lock is never held
/// across an await).
#[derive(Default)]
#[doc(alias = "host-local")]
pub struct CidrPodNetwork {
    nodes: Mutex<HashMap<String, Pool>>,
}

struct Pool {
    net: Ipv4Net,
    /// Next never-used host offset.
    next: u32,
    free: Vec<Ipv4Addr>,
    by_pod: HashMap<String, Ipv4Addr>,
    /// Addresses in use (to skip ones claimed through `observe_pod_ip`).
    in_use: HashSet<Ipv4Addr>,
}

impl Pool {
    fn new(net: Ipv4Net) -> Self {
        Pool {
            net,
            // .0 is the network and .1 the bridge gateway, as host-local leaves them.
            next: 2,
            free: Vec::new(),
            by_pod: HashMap::new(),
            in_use: HashSet::new(),
        }
    }

    fn size(&self) -> u32 {
        1u32.checked_shl(32 - u32::from(self.net.prefix_len()))
            .unwrap_or(0)
    }
}

/// The /24 a node without `spec.podCIDR` gets: inside 10.128.0.0/10, chosen by its name.
pub fn derived_cidr(node_name: &str) -> Ipv4Net {
    let h = (hash64(&[node_name], 7) % (1 << 14)) as u32;
    let base = u32::from(Ipv4Addr::new(10, 128, 0, 0)) + (h << 8);
    Ipv4Net::new(Ipv4Addr::from(base), 24).unwrap_or_default()
}

impl CidrPodNetwork {
    pub fn new() -> Self {
        Self::default()
    }

    /// Addresses currently held by pods on `node`.
    pub fn assigned(&self, node: &str) -> usize {
        self.lock().get(node).map_or(0, |p| p.by_pod.len())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pool>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl PodNetwork for CidrPodNetwork {
    async fn assign(&self, node: &NodeRef, pod_uid: &str) -> Result<String, NetworkError> {
        let mut nodes = self.lock();
        let pool = nodes
            .entry(node.name.clone())
            .or_insert_with(|| Pool::new(derived_cidr(&node.name)));
        if let Some(ip) = pool.by_pod.get(pod_uid) {
            return Ok(ip.to_string());
        }
        let ip = loop {
            if let Some(ip) = pool.free.pop() {
                if pool.in_use.contains(&ip) {
                    continue;
                }
                break ip;
            }
            // Leave the broadcast address out.
            if pool.next + 1 >= pool.size() {
                return Err(NetworkError::Exhausted(format!(
                    "no free address in {} on node {}",
                    pool.net, node.name
                )));
            }
            let ip = Ipv4Addr::from(u32::from(pool.net.network()) + pool.next);
            pool.next += 1;
            if !pool.in_use.contains(&ip) {
                break ip;
            }
        };
        pool.by_pod.insert(pod_uid.to_string(), ip);
        pool.in_use.insert(ip);
        Ok(ip.to_string())
    }

    async fn release(&self, node: &NodeRef, pod_uid: &str) {
        let mut nodes = self.lock();
        if let Some(pool) = nodes.get_mut(&node.name)
            && let Some(ip) = pool.by_pod.remove(pod_uid)
        {
            pool.in_use.remove(&ip);
            pool.free.push(ip);
        }
    }

    fn observe_pod_ip(&self, node: &NodeRef, pod_uid: &str, ip: &str) {
        let Ok(ip) = ip.parse::<Ipv4Addr>() else {
            return;
        };
        let mut nodes = self.lock();
        let pool = nodes
            .entry(node.name.clone())
            .or_insert_with(|| Pool::new(derived_cidr(&node.name)));
        if !pool.net.contains(&ip) || pool.by_pod.contains_key(pod_uid) || pool.in_use.contains(&ip)
        {
            return;
        }
        pool.by_pod.insert(pod_uid.to_string(), ip);
        pool.in_use.insert(ip);
    }

    fn observe_node(&self, node: &NodeRef, pod_cidr: Option<&str>) {
        let net = pod_cidr
            .and_then(|c| c.parse::<Ipv4Net>().ok())
            .map(|n| n.trunc())
            .unwrap_or_else(|| derived_cidr(&node.name));
        let mut nodes = self.lock();
        match nodes.get(&node.name) {
            Some(p) if p.net == net => {}
            // A pool already in use keeps its addresses (a podCIDR is immutable once set).
            Some(p) if !p.by_pod.is_empty() => {}
            _ => {
                nodes.insert(node.name.clone(), Pool::new(net));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;

    fn node(name: &str) -> NodeRef {
        NodeRef {
            name: name.into(),
            provider_id: None,
            internal_ip: None,
        }
    }

    #[tokio::test]
    async fn assigns_from_pod_cidr_idempotently_and_reuses_released() {
        let net = CidrPodNetwork::new();
        let n = node("n1");
        net.observe_node(&n, Some("10.244.3.0/24"));
        let a = net.assign(&n, "u1").await.unwrap();
        assert_eq!(a, "10.244.3.2");
        assert_eq!(net.assign(&n, "u1").await.unwrap(), a, "same pod, same IP");
        let b = net.assign(&n, "u2").await.unwrap();
        assert_eq!(b, "10.244.3.3");
        net.release(&n, "u1").await;
        net.release(&n, "u1").await;
        assert_eq!(net.assigned("n1"), 1);
        assert_eq!(net.assign(&n, "u3").await.unwrap(), a);
    }

    #[tokio::test]
    async fn derived_cidr_is_stable_and_exhaustion_is_typed() {
        assert_eq!(derived_cidr("ip-10-0-1-5"), derived_cidr("ip-10-0-1-5"));
        assert!(
            Ipv4Net::new(Ipv4Addr::new(10, 128, 0, 0), 10)
                .unwrap()
                .contains(&derived_cidr("x"))
        );
        let net = CidrPodNetwork::new();
        let n = node("small");
        net.observe_node(&n, Some("10.0.0.0/29"));
        // /29: 8 addresses minus network, gateway and broadcast.
        for i in 0..5 {
            net.assign(&n, &format!("p{i}")).await.unwrap();
        }
        let err = net.assign(&n, "p5").await.unwrap_err();
        assert!(matches!(err, NetworkError::Exhausted(_)));
        assert!(
            err.to_string()
                .starts_with("failed to assign an IP address to container")
        );
    }

    #[tokio::test]
    async fn addresses_found_on_running_pods_are_not_handed_out_again() {
        let net = CidrPodNetwork::new();
        let n = node("n1");
        net.observe_node(&n, Some("10.244.3.0/24"));
        net.observe_pod_ip(&n, "old", "10.244.3.2");
        net.observe_pod_ip(&n, "elsewhere", "192.168.0.9");
        assert_eq!(net.assign(&n, "old").await.unwrap(), "10.244.3.2");
        assert_eq!(net.assign(&n, "new").await.unwrap(), "10.244.3.3");
        net.release(&n, "old").await;
        assert_eq!(net.assign(&n, "newer").await.unwrap(), "10.244.3.2");
        assert_eq!(net.assigned("n1"), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_assignments_never_collide() {
        let net = Arc::new(CidrPodNetwork::new());
        let mut tasks = Vec::new();
        for t in 0..8 {
            let net = net.clone();
            tasks.push(tokio::spawn(async move {
                let mut ips = Vec::new();
                for i in 0..25 {
                    ips.push(net.assign(&node("n"), &format!("{t}-{i}")).await.unwrap());
                }
                ips
            }));
        }
        let mut all = HashSet::new();
        for t in tasks {
            for ip in t.await.unwrap() {
                assert!(all.insert(ip), "duplicate");
            }
        }
        assert_eq!(all.len(), 200);
    }
}
