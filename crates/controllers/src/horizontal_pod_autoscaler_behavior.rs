//! `spec.behavior` of a HorizontalPodAutoscaler (`normalizeDesiredReplicasWithBehaviors`):
//! stabilization windows over past recommendations, then the scale-up/scale-down policies that
//! cap how many replicas may be added or removed per period, then min/max. The history it needs
//! (recommendations, scale events) is kept per HPA in memory, as upstream keeps it.

use serde_json::Value;

/// The outcome: replicas to set and the reasons behind the `AbleToScale` and `ScalingLimited`
/// conditions.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalized {
    pub replicas: i64,
    /// `AbleToScale` reason and message (stabilization).
    pub able: (&'static str, &'static str),
    /// `ScalingLimited`: limited?, reason, message.
    pub limited: (bool, &'static str, &'static str),
}

/// What one HPA remembers between syncs.
#[derive(Default, Debug)]
pub struct History {
    initialized: bool,
    recommendations: Vec<(jiff::Timestamp, i64)>,
    /// Replicas added (up) or removed (down) per rescale.
    up_events: Vec<(jiff::Timestamp, i64)>,
    down_events: Vec<(jiff::Timestamp, i64)>,
}

struct Rules {
    window: i64,
    select: String,
    policies: Vec<(String, i64, i64)>,
}

fn rules(behavior: &Value, dir: &str) -> Rules {
    let r = behavior.get(dir).cloned().unwrap_or(Value::Null);
    let default_window = if dir == "scaleDown" { 300 } else { 0 };
    Rules {
        window: r
            .get("stabilizationWindowSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(default_window),
        select: r
            .get("selectPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Max")
            .to_string(),
        policies: r
            .get("policies")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|p| {
                        (
                            p.get("type")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                            p.get("value").and_then(Value::as_i64).unwrap_or(0),
                            p.get("periodSeconds").and_then(Value::as_i64).unwrap_or(15),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn change_in_period(events: &[(jiff::Timestamp, i64)], now: jiff::Timestamp, secs: i64) -> i64 {
    let cutoff = now - jiff::SignedDuration::from_secs(secs);
    events
        .iter()
        .filter(|(t, _)| *t > cutoff)
        .map(|(_, n)| n)
        .sum()
}

impl History {
    /// Records that the target was rescaled from `from` to `to` at `now`.
    pub fn record_scale(&mut self, now: jiff::Timestamp, from: i64, to: i64) {
        match to.cmp(&from) {
            std::cmp::Ordering::Greater => self.up_events.push((now, to - from)),
            std::cmp::Ordering::Less => self.down_events.push((now, from - to)),
            std::cmp::Ordering::Equal => {}
        }
    }

    /// `stabilizeRecommendationWithBehaviors` then `convertDesiredReplicasWithBehaviorRate`.
    pub fn normalize(
        &mut self,
        behavior: &Value,
        now: jiff::Timestamp,
        current: i64,
        proposed: i64,
        min: i64,
        max: i64,
    ) -> Normalized {
        let up = rules(behavior, "scaleUp");
        let down = rules(behavior, "scaleDown");
        // A new HPA starts as if it had recommended the current size
        // (`maybeInitScaleDownStabilizationWindow`), so it cannot scale down on first sight.
        if !self.initialized {
            self.initialized = true;
            if down.window > 0 {
                self.recommendations.push((now, current));
            }
        }
        let up_cutoff = now - jiff::SignedDuration::from_secs(up.window);
        let down_cutoff = now - jiff::SignedDuration::from_secs(down.window);
        let (mut up_rec, mut down_rec) = (proposed, proposed);
        for (t, r) in &self.recommendations {
            if *t > up_cutoff {
                up_rec = up_rec.min(*r);
            }
            if *t > down_cutoff {
                down_rec = down_rec.max(*r);
            }
        }
        let mut stabilized = current.max(up_rec);
        stabilized = stabilized.min(down_rec);
        let keep = now - jiff::SignedDuration::from_secs(up.window.max(down.window));
        self.recommendations.retain(|(t, _)| *t > keep);
        self.recommendations.push((now, proposed));
        let longest = up
            .policies
            .iter()
            .chain(&down.policies)
            .map(|p| p.2)
            .max()
            .unwrap_or(0);
        let ev_keep = now - jiff::SignedDuration::from_secs(longest);
        self.up_events.retain(|(t, _)| *t > ev_keep);
        self.down_events.retain(|(t, _)| *t > ev_keep);

        let able = if stabilized == proposed {
            ("ReadyForNewScale", "recommended size matches current size")
        } else if stabilized > proposed {
            (
                "ScaleDownStabilized",
                "recent recommendations were higher than current one, applying the highest recent recommendation",
            )
        } else {
            (
                "ScaleUpStabilized",
                "recent recommendations were lower than current one, applying the lowest recent recommendation",
            )
        };
        let (replicas, reason, message) =
            self.rate_limit(&up, &down, now, current, stabilized, min, max);
        Normalized {
            replicas,
            able,
            limited: (replicas != stabilized, reason, message),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn rate_limit(
        &self,
        up: &Rules,
        down: &Rules,
        now: jiff::Timestamp,
        current: i64,
        desired: i64,
        min: i64,
        max: i64,
    ) -> (i64, &'static str, &'static str) {
        let added = |secs| change_in_period(&self.up_events, now, secs);
        let removed = |secs| change_in_period(&self.down_events, now, secs);
        if desired > current {
            let limit = if up.select == "Disabled" {
                current
            } else {
                let mut acc: Option<i64> = None;
                for (kind, value, period) in &up.policies {
                    let start = current - added(*period) + removed(*period);
                    let proposed = if kind == "Pods" {
                        start + value
                    } else {
                        (start as f64 * (1.0 + *value as f64 / 100.0)).ceil() as i64
                    };
                    acc = Some(match (acc, up.select.as_str()) {
                        (None, _) => proposed,
                        (Some(a), "Min") => a.min(proposed),
                        (Some(a), _) => a.max(proposed),
                    });
                }
                acc.unwrap_or(i64::MAX)
            }
            .max(current);
            let (allowed, reason, message) = if max > limit {
                (
                    limit,
                    "ScaleUpLimit",
                    "the desired replica count is increasing faster than the maximum scale rate",
                )
            } else {
                (
                    max,
                    "TooManyReplicas",
                    "the desired replica count is more than the maximum replica count",
                )
            };
            if desired > allowed {
                return (allowed, reason, message);
            }
        } else if desired < current {
            let limit = if down.select == "Disabled" {
                current
            } else {
                let mut acc: Option<i64> = None;
                for (kind, value, period) in &down.policies {
                    let start = current - added(*period) + removed(*period);
                    let proposed = if kind == "Pods" {
                        start - value
                    } else {
                        (start as f64 * (1.0 - *value as f64 / 100.0)) as i64
                    };
                    // "Min" means the smallest change, which for scale-down is the most replicas.
                    acc = Some(match (acc, down.select.as_str()) {
                        (None, _) => proposed,
                        (Some(a), "Min") => a.max(proposed),
                        (Some(a), _) => a.min(proposed),
                    });
                }
                acc.unwrap_or(i64::MIN)
            }
            .min(current);
            let (allowed, reason, message) = if min < limit {
                (
                    limit,
                    "ScaleDownLimit",
                    "the desired replica count is decreasing faster than the maximum scale rate",
                )
            } else {
                (
                    min,
                    "TooFewReplicas",
                    "the desired replica count is less than the minimum replica count",
                )
            };
            if desired < allowed {
                return (allowed, reason, message);
            }
        }
        (
            desired,
            "DesiredWithinRange",
            "the desired count is within the acceptable range",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_secs(s)
    }

    /// The API server's defaults.
    fn defaults() -> Value {
        json!({"scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                             {"type": "Percent", "value": 100, "periodSeconds": 15}]},
               "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}})
    }

    #[test]
    fn scale_up_is_capped_by_the_larger_policy_per_period() {
        let mut h = History::default();
        // From 2: Pods policy allows 6, Percent 4 → Max picks 6.
        let n = h.normalize(&defaults(), t(0), 2, 20, 1, 50);
        assert_eq!(n.replicas, 6);
        assert!(n.limited.0);
        assert_eq!(n.limited.1, "ScaleUpLimit");
        h.record_scale(t(0), 2, 6);
        // Within the same 15 s period the budget counts from 2 again: nothing more.
        let n = h.normalize(&defaults(), t(5), 6, 20, 1, 50);
        assert_eq!(n.replicas, 6);
        // After the period: from 6, Percent allows 12.
        let n = h.normalize(&defaults(), t(20), 6, 20, 1, 50);
        assert_eq!(n.replicas, 12);
        let n = h.normalize(&defaults(), t(40), 12, 60, 1, 20);
        assert_eq!((n.replicas, n.limited.1), (20, "TooManyReplicas"));
    }

    #[test]
    fn scale_down_waits_out_the_stabilization_window() {
        let mut h = History::default();
        let n = h.normalize(&defaults(), t(0), 10, 10, 1, 20);
        assert_eq!((n.replicas, n.limited.0), (10, false));
        // A lower recommendation inside 300 s is held back by the earlier higher one.
        let n = h.normalize(&defaults(), t(60), 10, 3, 1, 20);
        assert_eq!(n.replicas, 10);
        assert_eq!(n.able.0, "ScaleDownStabilized");
        // Once the high one ages out, the scale-down happens.
        let n = h.normalize(&defaults(), t(301), 10, 3, 1, 20);
        assert_eq!(n.replicas, 3);
        assert_eq!(n.able.0, "ReadyForNewScale");
    }

    #[test]
    fn disabled_and_min_select_policies() {
        let mut h = History::default();
        let b = json!({"scaleUp": {"selectPolicy": "Disabled", "policies": []},
            "scaleDown": {"stabilizationWindowSeconds": 0, "selectPolicy": "Min",
                "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60},
                             {"type": "Percent", "value": 50, "periodSeconds": 60}]}});
        let n = h.normalize(&b, t(0), 4, 8, 1, 10);
        assert_eq!((n.replicas, n.limited.1), (4, "ScaleUpLimit"));
        // Min of the two (change of 1 vs 2) → remove 1.
        let n = h.normalize(&b, t(1), 4, 1, 1, 10);
        assert_eq!((n.replicas, n.limited.1), (3, "ScaleDownLimit"));
    }
}
