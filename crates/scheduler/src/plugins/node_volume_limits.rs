//! NodeVolumeLimits (the CSI limits filter): a node takes at most as many volumes of a CSI driver
//! as its CSINode says the driver can attach (`spec.drivers[].allocatable.count`; the EBS CSI
//! driver reports the instance type's figure, e.g. 25 on Nitro instances less the ENIs). A volume
//! the node already has attached for another pod does not count twice; a claim not bound yet
//! counts for its StorageClass's provisioner. Nodes without a limit for the driver take any number.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::cache::{Cache, NodeInfo};
use crate::framework::{CycleState, Plugin, Status};
use crate::model::PodInfo;

pub struct NodeVolumeLimits;

static KEY: &str = "NodeVolumeLimits";
/// Upstream's `ErrReasonMaxVolumeCountExceeded`.
pub const MAX_VOLUME_COUNT_EXCEEDED: &str = "node(s) exceed max volume count";

/// The CSI volumes of `pod` as (driver, unique volume id): bound claims by their PV's
/// `csi.volumeHandle`, unbound ones by the claim itself under the class's provisioner.
fn csi_volumes(pod: &PodInfo, cache: &Cache) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for claim in &pod.pvcs {
        let key = format!("{}/{claim}", pod.namespace);
        let Some(pvc) = cache.pvcs.get(&key) else {
            continue;
        };
        let volume = pvc
            .pointer("/spec/volumeName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(pv) = (!volume.is_empty())
            .then(|| cache.pvs.get(volume))
            .flatten()
        {
            if let Some(driver) = pv.pointer("/spec/csi/driver").and_then(Value::as_str) {
                let handle = pv
                    .pointer("/spec/csi/volumeHandle")
                    .and_then(Value::as_str)
                    .unwrap_or(volume);
                out.insert((driver.to_string(), handle.to_string()));
            }
            continue;
        }
        let class = pvc
            .pointer("/spec/storageClassName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(provisioner) = cache
            .storage_classes
            .get(class)
            .and_then(|c| c.get("provisioner"))
            .and_then(Value::as_str)
        {
            out.insert((provisioner.to_string(), format!("claim:{key}")));
        }
    }
    out
}

/// The node's per-driver attach limits from its CSINode.
fn limits(node: &str, cache: &Cache) -> BTreeMap<String, i64> {
    cache
        .csi_nodes
        .get(node)
        .and_then(|c| c.pointer("/spec/drivers"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| {
            let name = d.get("name")?.as_str()?;
            let count = d.pointer("/allocatable/count")?.as_i64()?;
            Some((name.to_string(), count))
        })
        .collect()
}

impl Plugin for NodeVolumeLimits {
    fn name(&self) -> &'static str {
        "NodeVolumeLimits"
    }

    fn pre_filter(
        &self,
        pod: &PodInfo,
        cache: &Cache,
        state: &mut CycleState,
    ) -> Result<(), Status> {
        let wanted = csi_volumes(pod, cache);
        if !wanted.is_empty() {
            state.write(KEY, wanted);
        }
        Ok(())
    }

    fn filter(
        &self,
        _: &PodInfo,
        node: &NodeInfo,
        cache: &Cache,
        state: &CycleState,
    ) -> Result<(), Status> {
        let Some(wanted) = state.read::<BTreeSet<(String, String)>>(KEY) else {
            return Ok(());
        };
        let limits = limits(&node.name, cache);
        if limits.is_empty() {
            return Ok(());
        }
        let attached: BTreeSet<(String, String)> = node
            .pods
            .iter()
            .filter(|p| !p.pvcs.is_empty())
            .flat_map(|p| csi_volumes(p, cache))
            .collect();
        for (driver, limit) in &limits {
            let new = wanted
                .iter()
                .filter(|v| v.0 == *driver && !attached.contains(*v))
                .count() as i64;
            if new == 0 {
                continue;
            }
            let have = attached.iter().filter(|v| v.0 == *driver).count() as i64;
            if have + new > *limit {
                return Err(Status::unschedulable(MAX_VOLUME_COUNT_EXCEEDED));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{cache_with, named_pod};
    use serde_json::json;

    fn with_claims(name: &str, claims: &[&str]) -> crate::model::PodRef {
        let volumes: Vec<Value> = claims
            .iter()
            .map(|c| json!({"name": c, "persistentVolumeClaim": {"claimName": c}}))
            .collect();
        named_pod(name, json!({}), json!({"volumes": volumes}))
    }

    fn bound(c: &mut Cache, claim: &str, handle: &str) {
        c.pvcs.insert(
            format!("default/{claim}"),
            json!({"metadata": {"name": claim}, "spec": {"volumeName": format!("pv-{claim}")}}),
        );
        c.pvs.insert(
            format!("pv-{claim}"),
            json!({"metadata": {"name": format!("pv-{claim}")},
                "spec": {"csi": {"driver": "ebs.csi.aws.com", "volumeHandle": handle}}}),
        );
    }

    #[test]
    fn the_csinode_count_caps_attached_ebs_volumes() {
        let mut c = cache_with(
            vec![
                json!({"metadata": {"name": "full"}}),
                json!({"metadata": {"name": "roomy"}}),
                json!({"metadata": {"name": "unlimited"}}),
            ],
            vec![],
        );
        for (node, count) in [("full", 2), ("roomy", 3)] {
            c.csi_nodes.insert(
                node.into(),
                json!({"metadata": {"name": node}, "spec": {"drivers": [
                    {"name": "ebs.csi.aws.com", "nodeID": "i-1", "allocatable": {"count": count}}]}}),
            );
        }
        bound(&mut c, "a", "vol-a");
        bound(&mut c, "b", "vol-b");
        bound(&mut c, "new", "vol-new");
        for node in ["full", "roomy", "unlimited"] {
            c.add_pod(
                with_claims(&format!("old-{node}"), &["a", "b"]),
                node,
                false,
            );
        }
        let p = with_claims("p", &["new"]);
        let mut st = CycleState::default();
        NodeVolumeLimits.pre_filter(&p, &c, &mut st).unwrap();
        let verdict = |n: &str| NodeVolumeLimits.filter(&p, c.node(n).unwrap(), &c, &st);
        assert_eq!(
            verdict("full"),
            Err(Status::unschedulable(MAX_VOLUME_COUNT_EXCEEDED))
        );
        assert_eq!(verdict("roomy"), Ok(()));
        assert_eq!(verdict("unlimited"), Ok(()));

        // A volume already attached there (shared claim) needs no new slot.
        let sharer = with_claims("sharer", &["a"]);
        let mut st = CycleState::default();
        NodeVolumeLimits.pre_filter(&sharer, &c, &mut st).unwrap();
        assert_eq!(
            NodeVolumeLimits.filter(&sharer, c.node("full").unwrap(), &c, &st),
            Ok(())
        );

        // An unbound claim counts under its class's provisioner.
        c.storage_classes.insert(
            "gp2".into(),
            json!({"metadata": {"name": "gp2"}, "provisioner": "ebs.csi.aws.com"}),
        );
        c.pvcs.insert(
            "default/fresh".into(),
            json!({"metadata": {"name": "fresh"}, "spec": {"storageClassName": "gp2"}}),
        );
        let fresh = with_claims("fresh-pod", &["fresh"]);
        let mut st = CycleState::default();
        NodeVolumeLimits.pre_filter(&fresh, &c, &mut st).unwrap();
        assert!(
            NodeVolumeLimits
                .filter(&fresh, c.node("full").unwrap(), &c, &st)
                .is_err()
        );
    }
}
