//! VolumeZone: a bound PersistentVolume labelled with a zone (`topology.kubernetes.io/zone`,
//! or the deprecated `failure-domain.beta.kubernetes.io/zone`; several zones joined by `__`)
//! only fits nodes in one of those zones.

use serde_json::Value;

use crate::cache::{Cache, NodeInfo};
use crate::framework::{CycleState, Plugin, Status};
use crate::model::{PodInfo, str_at};

pub struct VolumeZone;

static KEY: &str = "VolumeZone";
const ZONE_KEYS: [&str; 4] = [
    "topology.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/region",
];

impl Plugin for VolumeZone {
    fn name(&self) -> &'static str {
        "VolumeZone"
    }

    fn pre_filter(
        &self,
        pod: &PodInfo,
        cache: &Cache,
        state: &mut CycleState,
    ) -> Result<(), Status> {
        let mut wants: Vec<(&'static str, Vec<String>)> = Vec::new();
        for claim in &pod.pvcs {
            let Some(pvc) = cache.pvcs.get(&format!("{}/{claim}", pod.namespace)) else {
                continue;
            };
            let pv_name = str_at(pvc.get("spec").unwrap_or(&Value::Null), "volumeName");
            let Some(pv) = cache.pvs.get(pv_name) else {
                continue;
            };
            for key in ZONE_KEYS {
                if let Some(v) = pv
                    .pointer("/metadata/labels")
                    .and_then(|l| l.get(key))
                    .and_then(Value::as_str)
                {
                    wants.push((key, v.split("__").map(String::from).collect()));
                }
            }
        }
        if !wants.is_empty() {
            state.write(KEY, wants);
        }
        Ok(())
    }

    fn filter(
        &self,
        _: &PodInfo,
        node: &NodeInfo,
        _: &Cache,
        state: &CycleState,
    ) -> Result<(), Status> {
        let Some(wants) = state.read::<Vec<(&'static str, Vec<String>)>>(KEY) else {
            return Ok(());
        };
        let labels = &node.spec().labels;
        for (key, zones) in wants {
            // Nodes without the label are not refused (upstream treats them as zone-less).
            if let Some(v) = labels.get(*key)
                && !zones.iter().any(|z| z == v)
            {
                return Err(Status::unresolvable("node(s) had no available volume zone"));
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

    #[test]
    fn zone_labels_of_bound_pvs() {
        let z = "topology.kubernetes.io/zone";
        let mut c = cache_with(
            vec![
                json!({"metadata": {"name": "a", "labels": {z: "us-east-1a"}}}),
                json!({"metadata": {"name": "b", "labels": {z: "us-east-1b"}}}),
                json!({"metadata": {"name": "c", "labels": {z: "us-east-1c"}}}),
                json!({"metadata": {"name": "d"}}),
            ],
            vec![],
        );
        c.pvs.insert(
            "pv".into(),
            json!({"metadata": {"name": "pv", "labels": {z: "us-east-1a__us-east-1b"}}}),
        );
        c.pvcs.insert(
            "default/data".into(),
            json!({"metadata": {"name": "data"}, "spec": {"volumeName": "pv"}}),
        );
        let p = named_pod(
            "p",
            json!({}),
            json!({"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}),
        );
        let mut st = CycleState::default();
        VolumeZone.pre_filter(&p, &c, &mut st).unwrap();
        let mut got: Vec<(String, bool)> = c
            .node_infos()
            .iter()
            .map(|n| (n.name.clone(), VolumeZone.filter(&p, n, &c, &st).is_ok()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("a".into(), true),
                ("b".into(), true),
                ("c".into(), false),
                ("d".into(), true)
            ]
        );
        assert_eq!(
            VolumeZone.filter(&p, c.node("c").unwrap(), &c, &st),
            Err(Status::unresolvable("node(s) had no available volume zone"))
        );
    }
}
