//! The table of built-in kinds: one strategy file per kind under its API group folder, each a [`typed::Kind`]
//! impl turned into a [`Strategy`] by [`typed::Typed`]. Adding a kind = a new file + one line below.

use std::sync::Arc;

use crate::registry::strategy::Strategy;

pub mod apiextensions;
pub mod apps;
pub mod autoscaling;
pub mod batch;
pub mod coordination;
pub mod core;
pub mod discovery;
pub mod events;
pub mod networking;
pub mod policy;
pub mod rbac;
pub mod scheduling;
pub mod storage;
pub(crate) mod typed;
pub(crate) mod validation;

use schemars::{Schema, SchemaGenerator};
use typed::{Kind, Typed};

use crate::registry::Served;
use crate::registry::strategy::ResourceInfo;

/// Built-in kinds served in more than one version: the extra versions as conversions over the stored
/// kind found in `kinds` (autoscaling/v1 HorizontalPodAutoscaler over v2).
pub fn alternate_versions(kinds: &[Arc<dyn Strategy>]) -> Vec<Served> {
    kinds
        .iter()
        .filter(|k| {
            let i = k.info();
            i.group == "autoscaling" && i.plural == "horizontalpodautoscalers" && i.version == "v2"
        })
        .map(|hpa| autoscaling::horizontal_pod_autoscaler_v1::served(hpa.clone()))
        .collect()
}

/// Registers a kind's schema (and everything it references) in the generator; returns its `$ref`.
pub(crate) type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<K: Kind>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<K::Object>()
}

/// The one table: each kind once, giving both the strategies and the OpenAPI schemas.
macro_rules! kinds {
    ($($kind:ty),* $(,)?) => {
        /// Every built-in kind the server serves, in discovery order.
        pub fn builtin() -> Vec<Arc<dyn Strategy>> {
            vec![$(Arc::new(Typed::<$kind>::new()) as Arc<dyn Strategy>),*]
        }

        /// Each built-in kind's facts with the function that registers its schema (for `openapi`).
        pub(crate) fn schemas() -> Vec<(ResourceInfo, SchemaFn)> {
            vec![$((Typed::<$kind>::new().info().clone(), schema_of::<$kind> as SchemaFn)),*]
        }
    };
}

kinds![
    core::config_map::ConfigMap,
    core::endpoints::Endpoints,
    core::event::Event,
    core::limit_range::LimitRange,
    core::namespace::Namespace,
    core::node::Node,
    core::persistent_volume_claim::PersistentVolumeClaim,
    core::persistent_volume::PersistentVolume,
    core::pod::Pod,
    core::pod_template::PodTemplate,
    core::replication_controller::ReplicationController,
    core::resource_quota::ResourceQuota,
    core::secret::Secret,
    core::service_account::ServiceAccount,
    core::service::Service,
    apps::controller_revision::ControllerRevision,
    apps::daemon_set::DaemonSet,
    apps::deployment::Deployment,
    apps::replica_set::ReplicaSet,
    apps::stateful_set::StatefulSet,
    batch::cron_job::CronJob,
    batch::job::Job,
    autoscaling::horizontal_pod_autoscaler::HorizontalPodAutoscaler,
    networking::ingress_class::IngressClass,
    networking::ingress::Ingress,
    networking::network_policy::NetworkPolicy,
    rbac::cluster_role_binding::ClusterRoleBinding,
    rbac::cluster_role::ClusterRole,
    rbac::role_binding::RoleBinding,
    rbac::role::Role,
    storage::csi_driver::CsiDriver,
    storage::csi_node::CsiNode,
    storage::storage_class::StorageClass,
    storage::volume_attachment::VolumeAttachment,
    policy::pod_disruption_budget::PodDisruptionBudget,
    scheduling::priority_class::PriorityClass,
    coordination::lease::Lease,
    discovery::endpoint_slice::EndpointSlice,
    events::event::Event,
    apiextensions::custom_resource_definition::CustomResourceDefinition,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// `kubectl api-resources` on Kubernetes 1.33, for the kinds served here.
    const UPSTREAM: &[(&str, &str, &str, &str, bool)] = &[
        ("configmaps", "cm", "v1", "ConfigMap", true),
        ("endpoints", "ep", "v1", "Endpoints", true),
        ("events", "ev", "v1", "Event", true),
        ("limitranges", "limits", "v1", "LimitRange", true),
        ("namespaces", "ns", "v1", "Namespace", false),
        ("nodes", "no", "v1", "Node", false),
        (
            "persistentvolumeclaims",
            "pvc",
            "v1",
            "PersistentVolumeClaim",
            true,
        ),
        ("persistentvolumes", "pv", "v1", "PersistentVolume", false),
        ("pods", "po", "v1", "Pod", true),
        ("podtemplates", "", "v1", "PodTemplate", true),
        (
            "replicationcontrollers",
            "rc",
            "v1",
            "ReplicationController",
            true,
        ),
        ("resourcequotas", "quota", "v1", "ResourceQuota", true),
        ("secrets", "", "v1", "Secret", true),
        ("serviceaccounts", "sa", "v1", "ServiceAccount", true),
        ("services", "svc", "v1", "Service", true),
        (
            "customresourcedefinitions",
            "crd,crds",
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            false,
        ),
        (
            "controllerrevisions",
            "",
            "apps/v1",
            "ControllerRevision",
            true,
        ),
        ("daemonsets", "ds", "apps/v1", "DaemonSet", true),
        ("deployments", "deploy", "apps/v1", "Deployment", true),
        ("replicasets", "rs", "apps/v1", "ReplicaSet", true),
        ("statefulsets", "sts", "apps/v1", "StatefulSet", true),
        (
            "horizontalpodautoscalers",
            "hpa",
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            true,
        ),
        ("cronjobs", "cj", "batch/v1", "CronJob", true),
        ("jobs", "", "batch/v1", "Job", true),
        ("leases", "", "coordination.k8s.io/v1", "Lease", true),
        (
            "endpointslices",
            "",
            "discovery.k8s.io/v1",
            "EndpointSlice",
            true,
        ),
        ("events", "ev", "events.k8s.io/v1", "Event", true),
        (
            "ingressclasses",
            "",
            "networking.k8s.io/v1",
            "IngressClass",
            false,
        ),
        ("ingresses", "ing", "networking.k8s.io/v1", "Ingress", true),
        (
            "networkpolicies",
            "netpol",
            "networking.k8s.io/v1",
            "NetworkPolicy",
            true,
        ),
        (
            "poddisruptionbudgets",
            "pdb",
            "policy/v1",
            "PodDisruptionBudget",
            true,
        ),
        (
            "clusterrolebindings",
            "",
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            false,
        ),
        (
            "clusterroles",
            "",
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            false,
        ),
        (
            "rolebindings",
            "",
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            true,
        ),
        ("roles", "", "rbac.authorization.k8s.io/v1", "Role", true),
        (
            "priorityclasses",
            "pc",
            "scheduling.k8s.io/v1",
            "PriorityClass",
            false,
        ),
        ("csidrivers", "", "storage.k8s.io/v1", "CSIDriver", false),
        ("csinodes", "", "storage.k8s.io/v1", "CSINode", false),
        (
            "storageclasses",
            "sc",
            "storage.k8s.io/v1",
            "StorageClass",
            false,
        ),
        (
            "volumeattachments",
            "",
            "storage.k8s.io/v1",
            "VolumeAttachment",
            false,
        ),
    ];

    #[test]
    fn table_matches_api_resources() {
        let all = builtin();
        assert_eq!(all.len(), UPSTREAM.len());
        for (plural, short, api_version, kind, namespaced) in UPSTREAM {
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            let st = all
                .iter()
                .find(|s| s.info().plural == *plural && s.info().group == group)
                .unwrap_or_else(|| panic!("{plural}.{group} missing"));
            let info = st.info();
            assert_eq!(
                (info.version.as_str(), info.kind.as_str(), info.namespaced),
                (version, *kind, *namespaced),
                "{plural}"
            );
            assert_eq!(info.short_names.join(","), *short, "{plural}");
            assert_eq!(info.singular, kind.to_ascii_lowercase());
            let cols = st.columns();
            let row = st.row(
                &serde_json::json!({"metadata": {"name": "x"}}),
                jiff::Timestamp::now(),
            );
            assert_eq!(cols.len(), row.len(), "{plural} columns vs cells");
        }
        let all_cat: Vec<&str> = all
            .iter()
            .filter(|s| s.info().categories.contains(&"all".to_string()))
            .map(|s| s.info().plural.as_str())
            .collect();
        assert_eq!(all_cat.len(), 10, "{all_cat:?}");
    }
}
