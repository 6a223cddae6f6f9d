//! ClusterIP and NodePort assignment for Services (upstream does it in the Service REST storage;
//! here it is an admission step so the registry stays generic). The allocator itself is
//! [`crate::registry::service_allocator`].

use crate::registry::strategy::ResourceInfo;

/// True for core/v1 Services.
pub fn applies(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.plural == "services"
}
