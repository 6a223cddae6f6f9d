//! Service ClusterIP and NodePort allocation (kube-apiserver `registry/core/service/ipallocator`
//! and `portallocator`). State is in memory, rebuilt from the stored Services at start
//! ([`super::Registry::load`]); the store stays the truth.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::sync::Mutex;

use ipnet::Ipv4Net;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use super::strategy::ResourceInfo;

/// What one write allocated, so a failed write can give it back.
#[derive(Clone, Debug, Default)]
pub struct Allocation {
    pub ips: Vec<Ipv4Addr>,
    pub ports: Vec<u16>,
}

#[derive(Default)]
struct State {
    ips: HashSet<Ipv4Addr>,
    ports: HashSet<u16>,
    next_ip: u32,
    next_port: u16,
}

pub struct ServiceAllocator {
    net: Ipv4Net,
    ports: RangeInclusive<u16>,
    state: Mutex<State>,
}

fn is_service(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.plural == "services"
}

fn cluster_ips(svc: &Value) -> Vec<String> {
    let mut out: Vec<String> = svc
        .pointer("/spec/clusterIPs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if out.is_empty()
        && let Some(ip) = svc.pointer("/spec/clusterIP").and_then(Value::as_str)
        && !ip.is_empty()
    {
        out.push(ip.to_string());
    }
    out
}

fn node_ports(svc: &Value) -> Vec<u16> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
                .filter_map(|p| u16::try_from(p).ok())
                .collect()
        })
        .unwrap_or_default()
}

impl ServiceAllocator {
    pub fn new(cidr: &str, ports: RangeInclusive<u16>) -> Result<Self, String> {
        let net: Ipv4Net = cidr
            .parse()
            .map_err(|e| format!("invalid service CIDR {cidr:?}: {e}"))?;
        if net.prefix_len() > 28 {
            return Err(format!("service CIDR {cidr} is too small"));
        }
        Ok(Self {
            net: net.trunc(),
            ports,
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The first usable address: the `kubernetes` Service's ClusterIP.
    pub fn kubernetes_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.net.network()) + 1)
    }

    /// The tenth address, kept for kube-dns as EKS does (`10.100.0.10`).
    pub fn dns_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.net.network()) + 10)
    }

    /// Marks a stored Service's addresses and ports as used.
    pub fn observe(&self, svc: &Value) {
        let mut st = self.lock();
        for ip in cluster_ips(svc) {
            if let Ok(ip) = ip.parse() {
                st.ips.insert(ip);
            }
        }
        for p in node_ports(svc) {
            st.ports.insert(p);
        }
    }

    fn type_of(svc: &Value) -> &str {
        svc.pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
    }

    /// Fills `spec.clusterIP(s)` and node ports of a Service being created (`old` None) or
    /// updated, honouring requested values when free. Nothing is reserved on `dry_run` beyond
    /// this call (the caller releases).
    pub fn allocate(
        &self,
        svc: &mut Value,
        old: Option<&Value>,
        _dry_run: bool,
    ) -> Result<Allocation, Vec<FieldError>> {
        let mut st = self.lock();
        let mut alloc = Allocation::default();
        let mut errs = Vec::new();
        let ty = Self::type_of(svc).to_string();
        let old_ips = old.map(cluster_ips).unwrap_or_default();
        let old_ports = old.map(node_ports).unwrap_or_default();

        if ty != "ExternalName" {
            let requested = cluster_ips(svc);
            if requested.is_empty() {
                if let Some(ip) = old_ips.first() {
                    set_ip(svc, ip);
                } else if let Some(ip) = self.next_free_ip(&mut st) {
                    st.ips.insert(ip);
                    alloc.ips.push(ip);
                    set_ip(svc, &ip.to_string());
                } else {
                    errs.push(FieldError::internal(
                        "spec.clusterIPs",
                        "failed to allocate a serviceIP: range is full",
                    ));
                }
            } else if requested[0] != "None" && !old_ips.contains(&requested[0]) {
                let raw = requested[0].clone();
                let bad = |detail: String| {
                    FieldError::invalid("spec.clusterIPs[0]", json!([raw.clone()]), detail)
                };
                match raw.parse::<Ipv4Addr>() {
                    Err(_) => errs.push(bad(format!(
                        "failed to allocate IP {raw}: must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
                    ))),
                    Ok(ip) if !self.net.contains(&ip) || ip == self.net.network() || ip == self.net.broadcast() => {
                        errs.push(bad(format!(
                            "failed to allocate IP {raw}: the provided IP ({raw}) is not in the valid range. The range of valid IPs is {}",
                            self.net
                        )))
                    }
                    Ok(ip) if st.ips.contains(&ip) => errs.push(bad(format!(
                        "failed to allocate IP {raw}: provided IP is already allocated"
                    ))),
                    Ok(ip) => {
                        st.ips.insert(ip);
                        alloc.ips.push(ip);
                        set_ip(svc, &raw);
                    }
                }
            } else {
                set_ip(svc, &requested[0]);
            }
        }

        if ty == "NodePort" || ty == "LoadBalancer" {
            let n = svc
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0);
            for i in 0..n {
                let Some(port) = svc.pointer_mut(&format!("/spec/ports/{i}")) else {
                    continue;
                };
                let requested = port
                    .get("nodePort")
                    .and_then(Value::as_i64)
                    .filter(|p| *p != 0);
                match requested {
                    Some(p) => {
                        let Ok(p16) = u16::try_from(p) else {
                            errs.push(self.port_out_of_range(i, p));
                            continue;
                        };
                        if old_ports.contains(&p16) {
                            continue;
                        }
                        if !self.ports.contains(&p16) {
                            errs.push(self.port_out_of_range(i, p));
                        } else if st.ports.contains(&p16) {
                            errs.push(FieldError::invalid(
                                format!("spec.ports[{i}].nodePort"),
                                json!(p),
                                "provided port is already allocated",
                            ));
                        } else {
                            st.ports.insert(p16);
                            alloc.ports.push(p16);
                        }
                    }
                    None => match self.next_free_port(&mut st) {
                        Some(p) => {
                            st.ports.insert(p);
                            alloc.ports.push(p);
                            if let Some(o) = port.as_object_mut() {
                                o.insert("nodePort".into(), json!(p));
                            }
                        }
                        None => errs.push(FieldError::internal(
                            format!("spec.ports[{i}].nodePort"),
                            "failed to allocate a nodePort: range is full",
                        )),
                    },
                }
            }
        }
        if errs.is_empty() {
            Ok(alloc)
        } else {
            drop(st);
            self.release(&alloc);
            Err(errs)
        }
    }

    fn port_out_of_range(&self, i: usize, p: i64) -> FieldError {
        FieldError::invalid(
            format!("spec.ports[{i}].nodePort"),
            json!(p),
            format!(
                "provided port is not in the valid range. The range of valid ports is {}-{}",
                self.ports.start(),
                self.ports.end()
            ),
        )
    }

    fn next_free_ip(&self, st: &mut State) -> Option<Ipv4Addr> {
        let base = u32::from(self.net.network());
        let size = 1u32 << (32 - self.net.prefix_len());
        // Skip network, the kubernetes IP (1), kube-dns (10) and broadcast.
        for step in 0..size {
            let off = (st.next_ip + step) % size;
            if off <= 1 || off == 10 || off == size - 1 {
                continue;
            }
            let ip = Ipv4Addr::from(base + off);
            if !st.ips.contains(&ip) {
                st.next_ip = off + 1;
                return Some(ip);
            }
        }
        None
    }

    fn next_free_port(&self, st: &mut State) -> Option<u16> {
        let (lo, hi) = (*self.ports.start(), *self.ports.end());
        let span = u32::from(hi - lo) + 1;
        for step in 0..span {
            let p = lo + ((u32::from(st.next_port) + step) % span) as u16;
            if !st.ports.contains(&p) {
                st.next_port = (p - lo).wrapping_add(1);
                return Some(p);
            }
        }
        None
    }

    /// Gives back what a failed or dry-run write took.
    pub fn release(&self, a: &Allocation) {
        let mut st = self.lock();
        for ip in &a.ips {
            st.ips.remove(ip);
        }
        for p in &a.ports {
            st.ports.remove(p);
        }
    }

    /// After a committed update: node ports the Service no longer has are freed.
    pub fn commit_update(&self, _a: &Allocation, _old: &Value) {}

    /// A Service was deleted: its addresses and ports are free again.
    pub fn release_object(&self, info: &ResourceInfo, svc: &Value) {
        if !is_service(info) {
            return;
        }
        let mut st = self.lock();
        for ip in cluster_ips(svc) {
            if let Ok(ip) = ip.parse() {
                st.ips.remove(&ip);
            }
        }
        for p in node_ports(svc) {
            st.ports.remove(&p);
        }
    }
}

fn set_ip(svc: &mut Value, ip: &str) {
    if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("clusterIP".into(), json!(ip));
        spec.insert("clusterIPs".into(), json!([ip]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc() -> ServiceAllocator {
        ServiceAllocator::new("10.100.0.0/16", 30000..=32767).unwrap()
    }

    #[test]
    fn automatic_ips_skip_reserved_addresses() {
        let a = alloc();
        assert_eq!(a.kubernetes_ip().to_string(), "10.100.0.1");
        assert_eq!(a.dns_ip().to_string(), "10.100.0.10");
        let mut seen = Vec::new();
        for _ in 0..12 {
            let mut svc = json!({"spec": {"ports": [{"port": 80}]}});
            a.allocate(&mut svc, None, false).unwrap();
            seen.push(svc["spec"]["clusterIP"].as_str().unwrap().to_string());
        }
        assert!(!seen.contains(&"10.100.0.1".to_string()));
        assert!(!seen.contains(&"10.100.0.10".to_string()));
        assert_eq!(seen[0], "10.100.0.2");
    }

    #[test]
    fn requested_ip_and_node_port_conflicts_are_refused() {
        let a = alloc();
        let mut s1 = json!({"spec": {"type": "NodePort", "clusterIP": "10.100.0.10", "ports": [{"port": 80, "nodePort": 30008}]}});
        a.allocate(&mut s1, None, false).unwrap();
        let mut s2 = json!({"spec": {"type": "NodePort", "clusterIP": "10.100.0.10", "ports": [{"port": 80, "nodePort": 30008}]}});
        let errs = a.allocate(&mut s2, None, false).unwrap_err();
        let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(
            msgs.contains(
                &"spec.ports[0].nodePort: Invalid value: 30008: provided port is already allocated"
                    .to_string()
            ),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("provided IP is already allocated"))
        );
        let mut s3 = json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}});
        assert!(a.allocate(&mut s3, None, false).is_err());
        a.release_object(
            &ResourceInfo {
                group: String::new(),
                version: "v1".into(),
                kind: "Service".into(),
                plural: "services".into(),
                singular: "service".into(),
                namespaced: true,
                short_names: vec![],
                categories: vec![],
                verbs: vec![],
                has_status: true,
                scale: None,
            },
            &s1,
        );
        let mut s4 = json!({"spec": {"type": "NodePort", "clusterIP": "10.100.0.10", "ports": [{"port": 80, "nodePort": 30008}]}});
        assert!(a.allocate(&mut s4, None, false).is_ok());
    }
}
