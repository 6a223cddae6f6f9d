//! VolumeBinding: a pod's PersistentVolumeClaims must exist; bound claims' PersistentVolumes
//! must allow the node (`spec.nodeAffinity`); unbound claims of a `WaitForFirstConsumer`
//! StorageClass need a node where a matching PV is available or the class may provision
//! (`allowedTopologies`). After the pod is placed the scheduler writes the chosen node into
//! those claims' `volume.kubernetes.io/selected-node` annotation ([`claims_to_select`]).
//!
//! Unbound claims of an `Immediate` class wait for the PV controller, as upstream.

use serde_json::Value;

use crate::cache::{Cache, NodeInfo};
use crate::framework::{CycleState, Plugin, Status};
use crate::model::{NodeSelectorTerm, PodInfo, array, str_at};

pub struct VolumeBinding;

/// The annotation the scheduler sets on a delayed-binding claim (upstream `AnnSelectedNode`).
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";

static KEY: &str = "VolumeBinding";

#[derive(Default)]
struct State {
    /// Node affinity of each bound PV (empty terms = no restriction).
    bound_terms: Vec<Vec<NodeSelectorTerm>>,
    /// Unbound delayed claims: (claim, its StorageClass).
    delayed: Vec<(Value, Value)>,
}

/// `spec.nodeAffinity.required.nodeSelectorTerms` of a PV.
pub fn pv_node_terms(pv: &Value) -> Vec<NodeSelectorTerm> {
    array(pv.pointer("/spec/nodeAffinity/required/nodeSelectorTerms"))
        .iter()
        .map(NodeSelectorTerm::parse)
        .collect()
}

fn terms_allow(terms: &[NodeSelectorTerm], node: &NodeInfo) -> bool {
    let spec = node.spec();
    terms.is_empty() || terms.iter().any(|t| t.matches(&spec.name, &spec.labels))
}

fn claim_class(pvc: &Value) -> &str {
    str_at(pvc.get("spec").unwrap_or(&Value::Null), "storageClassName")
}

fn storage_request(pvc: &Value) -> i64 {
    pvc.pointer("/spec/resources/requests/storage")
        .and_then(Value::as_str)
        .and_then(|s| skiff_k8s_core::quantity::Quantity::parse(s).ok())
        .map_or(0, |q| q.value())
}

/// Whether an unbound PV of the class can take the claim on this node.
fn static_pv_available(cache: &Cache, pvc: &Value, node: &NodeInfo) -> bool {
    let want = storage_request(pvc);
    let class = claim_class(pvc);
    cache.pvs.values().any(|pv| {
        let spec = pv.get("spec").unwrap_or(&Value::Null);
        str_at(spec, "storageClassName") == class
            && spec.get("claimRef").is_none_or(Value::is_null)
            && pv
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("Available")
                == "Available"
            && spec
                .pointer("/capacity/storage")
                .and_then(Value::as_str)
                .and_then(|s| skiff_k8s_core::quantity::Quantity::parse(s).ok())
                .is_some_and(|q| q.value() >= want)
            && terms_allow(&pv_node_terms(pv), node)
    })
}

fn provisioning_allowed(class: &Value, node: &NodeInfo) -> bool {
    if str_at(class, "provisioner") == "kubernetes.io/no-provisioner" {
        return false;
    }
    let terms = array(class.get("allowedTopologies"));
    let labels = &node.spec().labels;
    terms.is_empty()
        || terms.iter().any(|t| {
            array(t.get("matchLabelExpressions")).iter().all(|e| {
                labels
                    .get(str_at(e, "key"))
                    .is_some_and(|v| array(e.get("values")).iter().any(|x| x.as_str() == Some(v)))
            })
        })
}

fn is_delayed(cache: &Cache, pvc: &Value) -> Option<Value> {
    let class = cache.storage_classes.get(claim_class(pvc))?;
    (str_at(class, "volumeBindingMode") == "WaitForFirstConsumer").then(|| class.clone())
}

fn is_bound(pvc: &Value) -> bool {
    !str_at(pvc.get("spec").unwrap_or(&Value::Null), "volumeName").is_empty()
}

/// The claims (`namespace/name`) that get the selected-node annotation once the pod is placed:
/// unbound, delayed-binding, not annotated yet.
pub fn claims_to_select(pod: &PodInfo, cache: &Cache) -> Vec<String> {
    pod.pvcs
        .iter()
        .map(|c| format!("{}/{c}", pod.namespace))
        .filter(|k| {
            cache.pvcs.get(k).is_some_and(|pvc| {
                !is_bound(pvc)
                    && is_delayed(cache, pvc).is_some()
                    && pvc
                        .pointer("/metadata/annotations")
                        .and_then(|a| a.get(SELECTED_NODE))
                        .is_none()
            })
        })
        .collect()
}

impl Plugin for VolumeBinding {
    fn name(&self) -> &'static str {
        "VolumeBinding"
    }

    fn pre_filter(
        &self,
        pod: &PodInfo,
        cache: &Cache,
        state: &mut CycleState,
    ) -> Result<(), Status> {
        if pod.pvcs.is_empty() {
            return Ok(());
        }
        let mut st = State::default();
        for name in &pod.pvcs {
            let Some(pvc) = cache.pvcs.get(&format!("{}/{name}", pod.namespace)) else {
                return Err(Status::unresolvable(format!(
                    "persistentvolumeclaim \"{name}\" not found"
                )));
            };
            if pvc
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|v| !v.is_null())
            {
                return Err(Status::unresolvable(format!(
                    "persistentvolumeclaim \"{name}\" is being deleted"
                )));
            }
            if is_bound(pvc) {
                let pv_name = str_at(&pvc["spec"], "volumeName");
                match cache.pvs.get(pv_name) {
                    Some(pv) => st.bound_terms.push(pv_node_terms(pv)),
                    None => {
                        return Err(Status::unresolvable(format!(
                            "persistentvolume \"{pv_name}\" not found"
                        )));
                    }
                }
            } else if let Some(class) = is_delayed(cache, pvc) {
                st.delayed.push((pvc.clone(), class));
            } else {
                return Err(Status::unresolvable(
                    "pod has unbound immediate PersistentVolumeClaims",
                ));
            }
        }
        state.write(KEY, st);
        Ok(())
    }

    fn filter(
        &self,
        _: &PodInfo,
        node: &NodeInfo,
        cache: &Cache,
        state: &CycleState,
    ) -> Result<(), Status> {
        let Some(st) = state.read::<State>(KEY) else {
            return Ok(());
        };
        if !st.bound_terms.iter().all(|t| terms_allow(t, node)) {
            return Err(Status::unresolvable(
                "node(s) had volume node affinity conflict",
            ));
        }
        for (pvc, class) in &st.delayed {
            if !static_pv_available(cache, pvc, node) && !provisioning_allowed(class, node) {
                return Err(Status::unresolvable(
                    "node(s) didn't find available persistent volumes to bind",
                ));
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

    type PerNode = Vec<(String, Result<(), Status>)>;

    fn run(cache: &Cache, claims: &[&str]) -> Result<PerNode, Status> {
        let vols: Vec<Value> = claims
            .iter()
            .map(|c| json!({"name": c, "persistentVolumeClaim": {"claimName": c}}))
            .collect();
        let p = named_pod("p", json!({}), json!({"volumes": vols}));
        let mut st = CycleState::default();
        VolumeBinding.pre_filter(&p, cache, &mut st)?;
        let mut out: Vec<_> = cache
            .node_infos()
            .iter()
            .map(|n| (n.name.clone(), VolumeBinding.filter(&p, n, cache, &st)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn fixture() -> Cache {
        let mut c = cache_with(
            vec![
                json!({"metadata": {"name": "a", "labels": {"zone": "a"}}}),
                json!({"metadata": {"name": "b", "labels": {"zone": "b"}}}),
            ],
            vec![],
        );
        c.pvs.insert(
            "pv-a".into(),
            json!({"metadata": {"name": "pv-a"}, "spec": {
            "capacity": {"storage": "1Gi"}, "storageClassName": "local",
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "zone", "operator": "In", "values": ["a"]}]}]}}}}),
        );
        c.storage_classes.insert("local".into(), json!({"metadata": {"name": "local"},
            "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "WaitForFirstConsumer"}));
        c.storage_classes.insert(
            "gp3".into(),
            json!({"metadata": {"name": "gp3"},
            "provisioner": "ebs.csi.aws.com", "volumeBindingMode": "WaitForFirstConsumer",
            "allowedTopologies": [{"matchLabelExpressions": [{"key": "zone", "values": ["b"]}]}]}),
        );
        c.storage_classes.insert(
            "now".into(),
            json!({"metadata": {"name": "now"},
            "provisioner": "ebs.csi.aws.com", "volumeBindingMode": "Immediate"}),
        );
        let claim = |name: &str, class: &str, vol: &str| {
            json!({"metadata": {"name": name, "namespace": "default"},
                   "spec": {"storageClassName": class, "volumeName": vol,
                            "resources": {"requests": {"storage": "1Gi"}}}})
        };
        c.pvcs
            .insert("default/bound".into(), claim("bound", "local", "pv-a"));
        c.pvcs
            .insert("default/local".into(), claim("local", "local", ""));
        c.pvcs.insert("default/gp3".into(), claim("gp3", "gp3", ""));
        c.pvcs.insert("default/now".into(), claim("now", "now", ""));
        c
    }

    #[test]
    fn volume_binding_table() {
        let c = fixture();
        let conflict = Err(Status::unresolvable(
            "node(s) had volume node affinity conflict",
        ));
        let none = Err(Status::unresolvable(
            "node(s) didn't find available persistent volumes to bind",
        ));
        assert_eq!(
            run(&c, &["bound"]).unwrap(),
            vec![("a".into(), Ok(())), ("b".into(), conflict)]
        );
        assert_eq!(
            run(&c, &["local"]).unwrap(),
            vec![("a".into(), Ok(())), ("b".into(), none.clone())]
        );
        assert_eq!(
            run(&c, &["gp3"]).unwrap(),
            vec![("a".into(), none), ("b".into(), Ok(()))]
        );
        assert_eq!(
            run(&c, &["missing"]).unwrap_err(),
            Status::unresolvable("persistentvolumeclaim \"missing\" not found")
        );
        assert_eq!(
            run(&c, &["now"]).unwrap_err(),
            Status::unresolvable("pod has unbound immediate PersistentVolumeClaims")
        );
        let p = named_pod(
            "p",
            json!({}),
            json!({"volumes": [
            {"name": "x", "persistentVolumeClaim": {"claimName": "gp3"}},
            {"name": "y", "persistentVolumeClaim": {"claimName": "bound"}}]}),
        );
        assert_eq!(claims_to_select(&p, &c), vec!["default/gp3".to_string()]);
    }
}
