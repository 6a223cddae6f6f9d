//! A pod's whole life through a profile, without an API server: pick the stage, wait its delay
//! on a fake clock, apply it, repeat. The golden tests (`stages/pod/testdata/*.input.yaml` →
//! `*.output.yaml`) and the criterion bench run the stage engine through this.

use std::collections::HashSet;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::sim::duration::GoDuration;
use crate::sim::engine::{self, PodContext};
use crate::sim::stage::Profile;

/// A golden case.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Case {
    #[serde(default = "default_profile")]
    pub profile: String,
    pub node: CaseNode,
    /// What the pod network hands out.
    #[serde(rename = "podIP")]
    pub pod_ip: String,
    #[serde(default)]
    pub images_present: Vec<String>,
    /// Stop after this many steps (crash loops never end on their own).
    #[serde(default = "default_steps")]
    pub max_steps: usize,
    /// Mark the pod deleted (`deletionTimestamp`) after this many steps.
    #[serde(default)]
    pub delete_after_step: Option<usize>,
    pub pod: Value,
}

fn default_profile() -> String {
    crate::sim::stage::DEFAULT_PROFILE.into()
}
fn default_steps() -> usize {
    12
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseNode {
    pub name: String,
    pub ip: String,
}

/// One applied stage.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub stage: String,
    pub delay: GoDuration,
    /// Time since the trace began.
    pub at: GoDuration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not", rename = "releaseIP")]
    pub release_ip: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub delete: bool,
}

/// The start of every trace's fake clock.
pub const EPOCH: &str = "2026-01-01T00:00:00Z";

/// Runs `case` through `profile` until no stage matches, the pod is deleted or `max_steps`.
pub fn trace(profile: &Profile, case: &Case) -> Vec<Step> {
    let mut pod = case.pod.clone();
    let mut now: Timestamp = EPOCH.parse().unwrap_or(Timestamp::UNIX_EPOCH);
    let mut images: HashSet<String> = case.images_present.iter().cloned().collect();
    let mut steps = Vec::new();
    let mut elapsed = Duration::ZERO;
    while steps.len() < case.max_steps {
        if case.delete_after_step == Some(steps.len()) {
            pod["metadata"]["deletionTimestamp"] = json!(engine::rfc3339(now));
        }
        let Some((_, stage)) = profile.select(&pod) else {
            break;
        };
        let delay = stage.delay.for_pod(&pod, &stage.name);
        elapsed += delay;
        now = now
            .checked_add(jiff::SignedDuration::try_from(delay).unwrap_or_default())
            .unwrap_or(now);
        let present = images.clone();
        let image_present = |i: &str| present.contains(i);
        let ctx = PodContext {
            now,
            node_name: &case.node.name,
            node_ip: &case.node.ip,
            pod_ip: Some(&case.pod_ip),
            image_present: &image_present,
            waited: delay,
        };
        let t = engine::apply(stage, &pod, &ctx);
        images.extend(t.pulled_images.iter().cloned());
        steps.push(Step {
            stage: t.stage.clone(),
            delay: GoDuration(delay),
            at: GoDuration(elapsed),
            patch: t.patch.clone(),
            events: t
                .events
                .iter()
                .map(|e| {
                    let ago = if e.ago.is_zero() {
                        String::new()
                    } else {
                        format!(" ({} earlier)", GoDuration(e.ago))
                    };
                    format!(
                        "{} {} {}: {}{ago}",
                        e.type_, e.reason, e.field_path, e.message
                    )
                })
                .collect(),
            release_ip: t.release_ip,
            delete: t.delete,
        });
        if t.delete || t.is_noop() {
            break;
        }
        pod["status"] = t.status;
    }
    steps
}

/// Total simulated time of a trace.
pub fn duration(steps: &[Step]) -> Duration {
    steps.iter().map(|s| s.delay.0).sum()
}
