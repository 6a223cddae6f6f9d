//! Which lists of which built-in kinds merge, and on which key: the facts strategic merge patch and
//! server-side apply need, as data.
//!
//! Source: the `patchStrategy` / `patchMergeKey` struct tags and `+listType` / `+listMapKey` markers
//! of k8s.io/api (github.com/kubernetes/api at 10b39a39, `core/v1/types.go`, `apps/v1/types.go`,
//! `batch/v1/types.go`, `policy/v1`, `networking/v1`, `autoscaling/v2`, `certificates/v1`,
//! `storage/v1`, `admissionregistration/v1`, `flowcontrol/v1`) and `metav1.ObjectMeta` in
//! k8s.io/apimachinery. A field not listed here behaves as upstream's untagged fields: maps merge
//! key by key, lists are replaced whole (atomic). `tolerations`, `taints`, `containerStatuses`,
//! `readinessGates` are deliberately absent: upstream marks them `listType=atomic`.

/// How one field merges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Lists replace, maps merge (untagged fields).
    Default,
    /// `patchStrategy:"merge" patchMergeKey:"<key>"`: a list of objects keyed by `key`;
    /// `map_keys` are the `+listMapKey`s server-side apply uses (`containerPort`+`protocol`).
    MergeByKey {
        key: &'static str,
        map_keys: &'static [&'static str],
    },
    /// `patchStrategy:"merge"` on a list of scalars (`finalizers`, `podCIDRs`): a set.
    MergePrimitive,
    /// `patchStrategy:"replace"`: a map replaced whole (`PodDisruptionBudget.spec.selector`).
    Replace,
    /// `+structType=atomic` with no patch strategy (`LabelSelector`): strategic merge patch merges
    /// it like any map, server-side apply owns and replaces it as one value.
    AtomicStruct,
}

/// The patch facts of one Go struct: its fields that are not [`Strategy::Default`] or whose
/// element type has such fields.
#[derive(Debug)]
pub struct Schema {
    pub name: &'static str,
    pub fields: &'static [Field],
}

/// One field of a [`Schema`].
#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub strategy: Strategy,
    /// The struct (or list element struct) below this field, when it has facts of its own.
    pub elem: Option<&'static Schema>,
}

impl Schema {
    /// The facts of field `name`; unknown fields are [`Strategy::Default`] with no sub-schema.
    pub fn field(&self, name: &str) -> (Strategy, Option<&'static Schema>) {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map_or((Strategy::Default, None), |f| (f.strategy, f.elem))
    }
}

/// The schema of a struct with no tagged fields (CRD-like behaviour for sub-objects).
pub static EMPTY: Schema = Schema {
    name: "",
    fields: &[],
};

const fn merge(
    name: &'static str,
    key: &'static str,
    map_keys: &'static [&'static str],
    elem: Option<&'static Schema>,
) -> Field {
    Field {
        name,
        strategy: Strategy::MergeByKey { key, map_keys },
        elem,
    }
}
const fn nested(name: &'static str, elem: &'static Schema) -> Field {
    Field {
        name,
        strategy: Strategy::Default,
        elem: Some(elem),
    }
}
const fn set(name: &'static str) -> Field {
    Field {
        name,
        strategy: Strategy::MergePrimitive,
        elem: None,
    }
}
/// A `metav1.LabelSelector` field (`+structType=atomic`).
const fn atomic_struct(name: &'static str) -> Field {
    Field {
        name,
        strategy: Strategy::AtomicStruct,
        elem: None,
    }
}
const fn conditions() -> Field {
    merge("conditions", "type", &["type"], None)
}

pub static OBJECT_META: Schema = Schema {
    name: "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    fields: &[
        set("finalizers"),
        merge("ownerReferences", "uid", &["uid"], None),
    ],
};

pub static CONTAINER: Schema = Schema {
    name: "io.k8s.api.core.v1.Container",
    fields: &[
        merge(
            "ports",
            "containerPort",
            &["containerPort", "protocol"],
            None,
        ),
        merge("env", "name", &["name"], None),
        merge("volumeMounts", "mountPath", &["mountPath"], None),
        merge("volumeDevices", "devicePath", &["devicePath"], None),
    ],
};

pub static POD_SPEC: Schema = Schema {
    name: "io.k8s.api.core.v1.PodSpec",
    fields: &[
        // patchStrategy "merge,retainKeys": retainKeys only matters to the patch author (kubectl
        // emits `$retainKeys`), which the server honours wherever it appears.
        merge("volumes", "name", &["name"], None),
        merge("initContainers", "name", &["name"], Some(&CONTAINER)),
        merge("containers", "name", &["name"], Some(&CONTAINER)),
        merge("ephemeralContainers", "name", &["name"], Some(&CONTAINER)),
        merge("imagePullSecrets", "name", &["name"], None),
        merge("hostAliases", "ip", &["ip"], None),
        merge(
            "topologySpreadConstraints",
            "topologyKey",
            &["topologyKey", "whenUnsatisfiable"],
            None,
        ),
        merge("schedulingGates", "name", &["name"], None),
        merge("resourceClaims", "name", &["name"], None),
    ],
};

pub static POD_TEMPLATE_SPEC: Schema = Schema {
    name: "io.k8s.api.core.v1.PodTemplateSpec",
    fields: &[nested("metadata", &OBJECT_META), nested("spec", &POD_SPEC)],
};

static CONTAINER_STATUS: Schema = Schema {
    name: "io.k8s.api.core.v1.ContainerStatus",
    fields: &[
        merge("volumeMounts", "mountPath", &["mountPath"], None),
        merge("allocatedResourcesStatus", "name", &["name"], None),
    ],
};

static POD_STATUS: Schema = Schema {
    name: "io.k8s.api.core.v1.PodStatus",
    fields: &[
        conditions(),
        merge("hostIPs", "ip", &["ip"], None),
        merge("podIPs", "ip", &["ip"], None),
        merge("resourceClaimStatuses", "name", &["name"], None),
        // containerStatuses are atomic upstream; the element facts only serve nested merges.
        Field {
            name: "containerStatuses",
            strategy: Strategy::Default,
            elem: Some(&CONTAINER_STATUS),
        },
    ],
};

/// Status types whose only fact is `conditions` merged by `type`.
static CONDITIONS_STATUS: Schema = Schema {
    name: "status with conditions",
    fields: &[conditions()],
};

static POD: Schema = Schema {
    name: "io.k8s.api.core.v1.Pod",
    fields: &[
        nested("metadata", &OBJECT_META),
        nested("spec", &POD_SPEC),
        nested("status", &POD_STATUS),
    ],
};

static POD_TEMPLATE: Schema = Schema {
    name: "io.k8s.api.core.v1.PodTemplate",
    fields: &[
        nested("metadata", &OBJECT_META),
        nested("template", &POD_TEMPLATE_SPEC),
    ],
};

/// `spec` of Deployment/ReplicaSet/StatefulSet/DaemonSet/Job/ReplicationController: a pod template.
static WORKLOAD_SPEC: Schema = Schema {
    name: "workload spec",
    fields: &[
        nested("template", &POD_TEMPLATE_SPEC),
        atomic_struct("selector"),
    ],
};

static DEPLOYMENT_SPEC: Schema = Schema {
    name: "io.k8s.api.apps.v1.DeploymentSpec",
    // `strategy` is patchStrategy "retainKeys" (honoured through `$retainKeys`).
    fields: &[
        nested("template", &POD_TEMPLATE_SPEC),
        atomic_struct("selector"),
    ],
};

static WORKLOAD: Schema = Schema {
    name: "workload",
    fields: &[
        nested("metadata", &OBJECT_META),
        nested("spec", &WORKLOAD_SPEC),
        nested("status", &CONDITIONS_STATUS),
    ],
};

static DEPLOYMENT: Schema = Schema {
    name: "io.k8s.api.apps.v1.Deployment",
    fields: &[
        nested("metadata", &OBJECT_META),
        nested("spec", &DEPLOYMENT_SPEC),
        nested("status", &CONDITIONS_STATUS),
    ],
};

static JOB_TEMPLATE_SPEC: Schema = Schema {
    name: "io.k8s.api.batch.v1.JobTemplateSpec",
    fields: &[
        nested("metadata", &OBJECT_META),
        nested("spec", &WORKLOAD_SPEC),
    ],
};

static CRON_JOB_SPEC: Schema = Schema {
    name: "io.k8s.api.batch.v1.CronJobSpec",
    fields: &[nested("jobTemplate", &JOB_TEMPLATE_SPEC)],
};

static CRON_JOB: Schema = Schema {
    name: "io.k8s.api.batch.v1.CronJob",
    fields: &[
        nested("metadata", &OBJECT_META),
        nested("spec", &CRON_JOB_SPEC),
    ],
};

static SERVICE_SPEC: Schema = Schema {
    name: "io.k8s.api.core.v1.ServiceSpec",
    fields: &[merge("ports", "port", &["port", "protocol"], None)],
};

static SERVICE: Schema = Schema {
    name: "io.k8s.api.core.v1.Service",
    fields: &[
        nested("metadata", &OBJECT_META),
        nested("spec", &SERVICE_SPEC),
        nested("status", &CONDITIONS_STATUS),
    ],
};

static NODE_SPEC: Schema = Schema {
    name: "io.k8s.api.core.v1.NodeSpec",
    fields: &[set("podCIDRs")],
};

static NODE_STATUS: Schema = Schema {
    name: "io.k8s.api.core.v1.NodeStatus",
    fields: &[conditions(), merge("addresses", "type", &["type"], None)],
};

static NODE: Schema = Schema {
    name: "io.k8s.api.core.v1.Node",
    fields: &[
        nested("metadata", &OBJECT_META),
        nested("spec", &NODE_SPEC),
        nested("status", &NODE_STATUS),
    ],
};

static SERVICE_ACCOUNT: Schema = Schema {
    name: "io.k8s.api.core.v1.ServiceAccount",
    fields: &[
        nested("metadata", &OBJECT_META),
        merge("secrets", "name", &["name"], None),
    ],
};

static COMPONENT_STATUS: Schema = Schema {
    name: "io.k8s.api.core.v1.ComponentStatus",
    fields: &[nested("metadata", &OBJECT_META), conditions()],
};

/// Kinds whose only extra fact is `status.conditions` by `type` (PVC, Namespace, HPA v2,
/// PodDisruptionBudget status, CSR, Ingress-like, FlowSchema, …).
static WITH_STATUS_CONDITIONS: Schema = Schema {
    name: "object with status.conditions",
    fields: &[
        nested("metadata", &OBJECT_META),
        nested("status", &CONDITIONS_STATUS),
    ],
};

static PDB_SPEC: Schema = Schema {
    name: "io.k8s.api.policy.v1.PodDisruptionBudgetSpec",
    fields: &[Field {
        name: "selector",
        strategy: Strategy::Replace,
        elem: None,
    }],
};

static PDB: Schema = Schema {
    name: "io.k8s.api.policy.v1.PodDisruptionBudget",
    fields: &[
        nested("metadata", &OBJECT_META),
        nested("spec", &PDB_SPEC),
        nested("status", &CONDITIONS_STATUS),
    ],
};

static CSI_NODE_SPEC: Schema = Schema {
    name: "io.k8s.api.storage.v1.CSINodeSpec",
    fields: &[merge("drivers", "name", &["name"], None)],
};

static CSI_NODE: Schema = Schema {
    name: "io.k8s.api.storage.v1.CSINode",
    fields: &[
        nested("metadata", &OBJECT_META),
        nested("spec", &CSI_NODE_SPEC),
    ],
};

static WEBHOOK: Schema = Schema {
    name: "io.k8s.api.admissionregistration.v1.Webhook",
    fields: &[merge("matchConditions", "name", &["name"], None)],
};

static WEBHOOK_CONFIGURATION: Schema = Schema {
    name: "io.k8s.api.admissionregistration.v1.WebhookConfiguration",
    fields: &[
        nested("metadata", &OBJECT_META),
        merge("webhooks", "name", &["name"], Some(&WEBHOOK)),
    ],
};

/// Any built-in kind with no list facts beyond `metadata`.
static PLAIN: Schema = Schema {
    name: "object",
    fields: &[nested("metadata", &OBJECT_META)],
};

/// API groups served by kube-apiserver itself (not CRDs or aggregated APIs): strategic merge
/// patch is defined for their kinds only.
pub const BUILT_IN_GROUPS: &[&str] = &[
    "",
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "rbac.authorization.k8s.io",
    "networking.k8s.io",
    "storage.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "scheduling.k8s.io",
    "node.k8s.io",
    "certificates.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "resource.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "storagemigration.k8s.io",
];

/// Whether `PATCH` with `application/strategic-merge-patch+json` is accepted for this kind.
/// Custom resources answer 415 upstream, because their Go types carry no patch tags.
pub fn supports_strategic_merge(group: &str, _kind: &str) -> bool {
    BUILT_IN_GROUPS.contains(&group)
}

/// The patch facts of a built-in kind, or `None` for kinds strategic merge patch does not serve.
pub fn schema_for(group: &str, kind: &str) -> Option<&'static Schema> {
    if !supports_strategic_merge(group, kind) {
        return None;
    }
    Some(match (group, kind) {
        ("", "Pod") => &POD,
        ("", "PodTemplate") => &POD_TEMPLATE,
        ("", "ReplicationController") => &WORKLOAD,
        ("apps", "ReplicaSet" | "StatefulSet" | "DaemonSet") | ("batch", "Job") => &WORKLOAD,
        ("apps", "Deployment") => &DEPLOYMENT,
        ("batch", "CronJob") => &CRON_JOB,
        ("", "Service") => &SERVICE,
        ("", "Node") => &NODE,
        ("", "ServiceAccount") => &SERVICE_ACCOUNT,
        ("", "ComponentStatus") => &COMPONENT_STATUS,
        ("", "PersistentVolumeClaim" | "Namespace")
        | ("autoscaling", "HorizontalPodAutoscaler")
        | ("certificates.k8s.io", "CertificateSigningRequest")
        | ("networking.k8s.io", "ServiceCIDR")
        | ("flowcontrol.apiserver.k8s.io", "FlowSchema" | "PriorityLevelConfiguration")
        | ("resource.k8s.io", "ResourceClaim") => &WITH_STATUS_CONDITIONS,
        ("policy", "PodDisruptionBudget") => &PDB,
        ("storage.k8s.io", "CSINode") => &CSI_NODE,
        (
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration",
        ) => &WEBHOOK_CONFIGURATION,
        _ => &PLAIN,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_follow_upstream_tags() {
        let pod = schema_for("", "Pod").unwrap();
        let (_, spec) = pod.field("spec");
        let spec = spec.unwrap();
        let (s, c) = spec.field("containers");
        assert_eq!(
            s,
            Strategy::MergeByKey {
                key: "name",
                map_keys: &["name"]
            }
        );
        let (ports, _) = c.unwrap().field("ports");
        assert!(
            matches!(ports, Strategy::MergeByKey { key: "containerPort", map_keys } if map_keys == ["containerPort", "protocol"])
        );
        // Atomic upstream: no entry, so the default (replace) applies.
        assert_eq!(spec.field("tolerations").0, Strategy::Default);
        let meta = pod.field("metadata").1.unwrap();
        assert_eq!(meta.field("finalizers").0, Strategy::MergePrimitive);
        let dep = schema_for("apps", "Deployment").unwrap();
        let tmpl = dep.field("spec").1.unwrap().field("template").1.unwrap();
        assert!(std::ptr::eq(tmpl.field("spec").1.unwrap(), &POD_SPEC));
        let cj = schema_for("batch", "CronJob").unwrap();
        let pod_spec = cj
            .field("spec")
            .1
            .unwrap()
            .field("jobTemplate")
            .1
            .unwrap()
            .field("spec")
            .1
            .unwrap()
            .field("template")
            .1
            .unwrap()
            .field("spec")
            .1
            .unwrap();
        assert!(std::ptr::eq(pod_spec, &POD_SPEC));
        let svc = schema_for("", "Service").unwrap();
        assert!(matches!(
            svc.field("spec").1.unwrap().field("ports").0,
            Strategy::MergeByKey { key: "port", .. }
        ));
        assert!(matches!(
            schema_for("", "Node")
                .unwrap()
                .field("status")
                .1
                .unwrap()
                .field("addresses")
                .0,
            Strategy::MergeByKey { key: "type", .. }
        ));
    }

    #[test]
    fn crds_do_not_support_strategic_merge() {
        assert!(supports_strategic_merge("", "ConfigMap"));
        assert!(supports_strategic_merge("apps", "Deployment"));
        assert!(!supports_strategic_merge("example.com", "Widget"));
        assert!(schema_for("stable.example.com", "CronTab").is_none());
        assert!(schema_for("", "ConfigMap").is_some());
    }
}
