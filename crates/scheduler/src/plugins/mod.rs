//! The default profile: every plugin, in upstream's filter order, with its score weight. This
//! table is the index of the scheduler: one line per plugin, one file per plugin.

pub mod balanced_allocation;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod node_volume_limits;
pub mod pod_topology_spread;
pub mod taint_toleration;
pub mod volume_binding;
pub mod volume_zone;

use crate::framework::{Entry, Plugin, Profile};

fn e(plugin: impl Plugin + 'static, weight: i64) -> Entry {
    Entry {
        plugin: Box::new(plugin),
        weight,
    }
}

/// kube-scheduler's `default-scheduler` profile (weights as upstream's `getDefaultPlugins`).
pub fn default_profile() -> Profile {
    Profile::new(vec![
        e(node_unschedulable::NodeUnschedulable, 0),
        e(node_name::NodeName, 0),
        e(taint_toleration::TaintToleration, 3),
        e(node_affinity::NodeAffinity, 2),
        e(node_ports::NodePorts, 0),
        e(node_resources_fit::NodeResourcesFit, 1),
        e(node_volume_limits::NodeVolumeLimits, 0),
        e(volume_binding::VolumeBinding, 0),
        e(volume_zone::VolumeZone, 0),
        e(pod_topology_spread::PodTopologySpread, 2),
        e(inter_pod_affinity::InterPodAffinity, 2),
        e(balanced_allocation::BalancedAllocation, 1),
    ])
}
