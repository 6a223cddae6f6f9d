//! The `policy/v1` group.

pub mod pod_disruption_budget;
