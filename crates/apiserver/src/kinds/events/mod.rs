//! The `events.k8s.io/v1` group.

pub mod event;
