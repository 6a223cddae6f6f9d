//! The `autoscaling` group: HorizontalPodAutoscaler stored as v2, also served as v1 through a
//! conversion (`horizontal_pod_autoscaler_v1`).

pub mod horizontal_pod_autoscaler;
pub mod horizontal_pod_autoscaler_v1;
