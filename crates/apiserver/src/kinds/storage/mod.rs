//! The `storage.k8s.io/v1` group.

pub mod csi_driver;
pub mod csi_node;
pub mod storage_class;
pub mod volume_attachment;
