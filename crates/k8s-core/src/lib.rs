//! # skiff-k8s-core: Kubernetes API machinery with no I/O
//!
//! Label and field selectors, patches (JSON, merge, strategic), `metav1.Status` errors with field
//! causes, and the resource catalogue types. Pure functions over `serde_json::Value`.
//!
//! Must not depend on: any other skiff crate, tokio, HTTP, the store.
//!
//! Start at [`status`] for errors, [`selector`] for `-l`/`--field-selector`, [`patch`] for PATCH bodies.
pub mod status;
