//! The `apiextensions.k8s.io/v1` group.

pub mod custom_resource_definition;
