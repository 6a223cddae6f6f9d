//! EKS on Fargate: which pods a Fargate profile takes, the admission webhook that hands them to the
//! `fargate-scheduler`, and the Fargate sizes a pod is rounded up to.
//!
//! On EKS a mutating webhook looks at every pod created: when a profile of the cluster that is
//! `ACTIVE` selects it (its namespace, and every label of the selector), the pod gets
//! `spec.schedulerName: fargate-scheduler` and the label `eks.amazonaws.com/fargate-profile`, so the
//! default scheduler leaves it alone. The Fargate scheduler ([`crate::fargate_scheduler`]) then
//! gives it a micro-VM of its own: a Node `fargate-ip-…` sized to the pod's requests (plus 256 MB
//! for the kubelet and friends) rounded up to a Fargate vCPU/memory combination.
//!
//! Selector namespaces and label values accept EKS's wildcards `*` and `?`.

use std::sync::Arc;

use serde_json::{Value, json};
use skiff_k8s_core::status::ApiError;
use skiff_store::Store;

use crate::cluster_dir::EksBinding;

/// The scheduler name Fargate pods carry.
pub const FARGATE_SCHEDULER: &str = "fargate-scheduler";
/// Label naming the profile that selected a pod (on the pod and on its Node).
pub const PROFILE_LABEL: &str = "eks.amazonaws.com/fargate-profile";
/// Label and taint key marking Fargate Nodes (`eks.amazonaws.com/compute-type: fargate`).
pub const COMPUTE_TYPE_LABEL: &str = "eks.amazonaws.com/compute-type";
/// The annotation telling what Fargate provisioned for the pod (`0.25vCPU 0.5GB`).
pub const CAPACITY_ANNOTATION: &str = "CapacityProvisioned";
/// Memory Fargate adds to a pod's requests for the Kubernetes components on its VM (MiB).
pub const OVERHEAD_MIB: u64 = 256;

/// EKS's wildcard match: `*` any run of characters, `?` one character.
pub fn wildcard_match(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    // Iterative matcher with backtracking to the last `*`.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < v.len() {
        if i < p.len() && (p[i] == '?' || p[i] == v[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// Whether one profile selector takes a pod in `namespace` with `labels`.
pub fn selector_matches(selector: &Value, namespace: &str, labels: &Value) -> bool {
    let Some(ns) = selector["namespace"].as_str() else {
        return false;
    };
    if !wildcard_match(ns, namespace) {
        return false;
    }
    selector["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, want)| {
            labels[k]
                .as_str()
                .is_some_and(|have| wildcard_match(want.as_str().unwrap_or_default(), have))
        })
}

/// The `ACTIVE` profile that takes the pod, if any: profiles in name order, first match wins (EKS
/// picks one at random when several match; the order here keeps it reproducible).
pub fn matching_profile<'a>(
    profiles: &'a [Value],
    namespace: &str,
    labels: &Value,
) -> Option<&'a Value> {
    let mut active: Vec<&Value> = profiles
        .iter()
        .filter(|p| p["status"] == "ACTIVE")
        .collect();
    active.sort_by(|a, b| {
        a["fargateProfileName"]
            .as_str()
            .cmp(&b["fargateProfileName"].as_str())
    });
    active.into_iter().find(|p| {
        p["selectors"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| selector_matches(s, namespace, labels))
    })
}

/// Fargate's vCPU / memory combinations: (millicores, memory choices in MiB).
const SIZES: &[(u64, &[u64])] = &[
    (250, &[512, 1024, 2048]),
    (500, &[1024, 2048, 3072, 4096]),
    (1000, &[2048, 3072, 4096, 5120, 6144, 7168, 8192]),
    (
        2000,
        &[
            4096, 5120, 6144, 7168, 8192, 9216, 10240, 11264, 12288, 13312, 14336, 15360, 16384,
        ],
    ),
];

/// The smallest Fargate configuration holding `cpu_millis` and `memory_mib` (the pod's requests
/// plus [`OVERHEAD_MIB`]), as (millicores, MiB); None above 16 vCPU / 120 GB.
pub fn fargate_size(cpu_millis: u64, memory_mib: u64) -> Option<(u64, u64)> {
    for (cpu, mems) in SIZES {
        if *cpu < cpu_millis {
            continue;
        }
        if let Some(m) = mems.iter().find(|m| **m >= memory_mib) {
            return Some((*cpu, *m));
        }
    }
    // 4 vCPU: 8–30 GB by 1 GB; 8 vCPU: 16–60 GB by 4 GB; 16 vCPU: 32–120 GB by 8 GB.
    for (cpu, lo, hi, step) in [(4000, 8, 30, 1), (8000, 16, 60, 4), (16000, 32, 120, 8)] {
        if cpu < cpu_millis {
            continue;
        }
        let mut gb = lo;
        while gb <= hi {
            if gb * 1024 >= memory_mib {
                return Some((cpu, gb * 1024));
            }
            gb += step;
        }
    }
    None
}

/// `0.25vCPU 0.5GB`, as the `CapacityProvisioned` annotation writes a size.
pub fn capacity_text(cpu_millis: u64, memory_mib: u64) -> String {
    let trim = |x: f64| {
        let s = format!("{x:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    format!(
        "{}vCPU {}GB",
        trim(cpu_millis as f64 / 1000.0),
        trim(memory_mib as f64 / 1024.0)
    )
}

/// Parses a CPU quantity (`250m`, `1`, `0.5`) into millicores.
pub fn cpu_millis(q: &str) -> u64 {
    if let Some(m) = q.strip_suffix('m') {
        return m.parse::<f64>().map_or(0, |v| v.ceil() as u64);
    }
    q.parse::<f64>().map_or(0, |v| (v * 1000.0).ceil() as u64)
}

/// Parses a memory quantity (`512Mi`, `1Gi`, `1G`, `1000000`) into MiB, rounded up.
pub fn memory_mib(q: &str) -> u64 {
    const UNITS: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    let (num, mult) = UNITS
        .iter()
        .find_map(|(u, m)| q.strip_suffix(u).map(|n| (n, *m)))
        .unwrap_or((q, 1.0));
    num.parse::<f64>()
        .map_or(0, |v| (v * mult / 1048576.0).ceil() as u64)
}

/// The pod's effective requests as the scheduler counts them: the sum over containers, or the
/// largest init container if bigger. (millicores, MiB)
pub fn pod_requests(pod: &Value) -> (u64, u64) {
    let sum = |list: &Value| {
        list.as_array()
            .into_iter()
            .flatten()
            .fold((0, 0), |(c, m), ctr| {
                let r = &ctr["resources"]["requests"];
                (
                    c + r["cpu"].as_str().map_or(0, cpu_millis),
                    m + r["memory"].as_str().map_or(0, memory_mib),
                )
            })
    };
    let (c, m) = sum(&pod["spec"]["containers"]);
    let (ic, im) = pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|ctr| sum(&json!([ctr])))
        .fold((0, 0), |(a, b), (x, y)| (a.max(x), b.max(y)));
    (c.max(ic), m.max(im))
}

/// The Fargate admission webhook of one EKS cluster.
pub struct FargateWebhook {
    store: Arc<dyn Store>,
    binding: EksBinding,
}

impl FargateWebhook {
    pub fn new(store: Arc<dyn Store>, binding: EksBinding) -> Self {
        Self { store, binding }
    }

    /// Hands the pod to the Fargate scheduler when an `ACTIVE` profile selects it. Pods that name
    /// a scheduler of their own are left alone, as EKS does.
    pub async fn admit_pod(&self, namespace: &str, pod: &mut Value) -> Result<(), ApiError> {
        let scheduler = pod["spec"]["schedulerName"].as_str().unwrap_or_default();
        if !scheduler.is_empty() && scheduler != "default-scheduler" {
            return Ok(());
        }
        let profiles = skiff_aws::eks::list_fargate_profile_records(
            &*self.store,
            &self.binding.account,
            &self.binding.region,
            &self.binding.name,
        )
        .await
        .map_err(|e| ApiError::InternalError(format!("reading Fargate profiles: {e}")))?;
        if profiles.is_empty() {
            return Ok(());
        }
        let labels = pod["metadata"]["labels"].clone();
        let Some(profile) = matching_profile(&profiles, namespace, &labels) else {
            return Ok(());
        };
        let name = profile["fargateProfileName"].as_str().unwrap_or_default();
        if !pod["spec"].is_object() {
            return Ok(());
        }
        pod["spec"]["schedulerName"] = json!(FARGATE_SCHEDULER);
        if !pod["metadata"]["labels"].is_object() {
            pod["metadata"]["labels"] = json!({});
        }
        pod["metadata"]["labels"][PROFILE_LABEL] = json!(name);
        Ok(())
    }
}

#[async_trait::async_trait]
impl skiff_apiserver::admission::ExternalMutator for FargateWebhook {
    async fn mutate(
        &self,
        _reg: &skiff_apiserver::registry::Registry,
        req: &skiff_apiserver::admission::Request<'_>,
        obj: &mut Value,
    ) -> Result<(), ApiError> {
        if req.operation == skiff_apiserver::admission::Operation::Create && req.is("", "pods") {
            self.admit_pod(req.namespace.unwrap_or("default"), obj)
                .await
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_eks() {
        assert!(wildcard_match("serverless", "serverless"));
        assert!(!wildcard_match("serverless", "serverless-2"));
        assert!(wildcard_match("prod-*", "prod-web"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(wildcard_match("*-web-*", "x-web-y"));
        assert!(!wildcard_match("*-web-*", "x-api-y"));
    }

    #[test]
    fn profiles_select_by_namespace_and_every_label() {
        let profiles = vec![
            json!({"fargateProfileName": "b", "status": "ACTIVE",
                "selectors": [{"namespace": "serverless"}]}),
            json!({"fargateProfileName": "a", "status": "ACTIVE",
                "selectors": [{"namespace": "apps", "labels": {"tier": "web", "env": "p*"}}]}),
            json!({"fargateProfileName": "c", "status": "CREATING",
                "selectors": [{"namespace": "pending"}]}),
        ];
        let pick = |ns: &str, labels: Value| {
            matching_profile(&profiles, ns, &labels)
                .map(|p| p["fargateProfileName"].as_str().unwrap().to_string())
        };
        assert_eq!(pick("serverless", json!({})).as_deref(), Some("b"));
        assert_eq!(
            pick("apps", json!({"tier": "web", "env": "prod"})).as_deref(),
            Some("a")
        );
        assert_eq!(pick("apps", json!({"tier": "web"})), None);
        assert_eq!(pick("default", json!({})), None);
        // Not ACTIVE yet: not selected.
        assert_eq!(pick("pending", json!({})), None);
    }

    #[test]
    fn sizes_round_up_to_fargate_combinations() {
        // Nothing requested: the 256 MB overhead still needs the smallest VM.
        assert_eq!(fargate_size(0, OVERHEAD_MIB), Some((250, 512)));
        assert_eq!(fargate_size(250, 512 + OVERHEAD_MIB), Some((250, 1024)));
        assert_eq!(fargate_size(300, 1024), Some((500, 1024)));
        assert_eq!(fargate_size(500, 4097), Some((1000, 5120)));
        assert_eq!(fargate_size(1000, 9000), Some((2000, 9216)));
        assert_eq!(fargate_size(3000, 1024), Some((4000, 8192)));
        assert_eq!(fargate_size(4000, 31 * 1024), Some((8000, 32 * 1024)));
        assert_eq!(fargate_size(16000, 120 * 1024), Some((16000, 120 * 1024)));
        assert_eq!(fargate_size(17000, 1024), None);
        assert_eq!(capacity_text(250, 512), "0.25vCPU 0.5GB");
        assert_eq!(capacity_text(1000, 2048), "1vCPU 2GB");
        assert_eq!(capacity_text(500, 1024), "0.5vCPU 1GB");
    }

    #[test]
    fn requests_sum_containers_and_take_the_largest_init() {
        let pod = json!({"spec": {
            "initContainers": [{"resources": {"requests": {"cpu": "2", "memory": "64Mi"}}}],
            "containers": [
                {"resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}},
                {"resources": {"requests": {"cpu": "0.5", "memory": "1Gi"}}},
                {"name": "none"}]}});
        assert_eq!(pod_requests(&pod), (2000, 1536));
        assert_eq!(memory_mib("1G"), 954);
        assert_eq!(cpu_millis("1500m"), 1500);
    }
}
