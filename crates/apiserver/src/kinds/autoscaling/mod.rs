//! The `autoscaling` group (v2 served; v1 needs version conversion over one storage, not done yet).

pub mod horizontal_pod_autoscaler;
