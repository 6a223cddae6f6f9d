//! # skiff-k8s-core: Kubernetes API machinery with no I/O
//!
//! Label and field selectors, patches (JSON, merge, strategic), server-side apply and
//! managedFields, `metav1.Status` errors with field causes, name/metadata validation, resource
//! quantities, and the in-process client trait. Pure functions over `serde_json::Value`, with
//! upstream's wording in every error because kubectl prints it verbatim.
//!
//! Must not depend on: any other skiff crate, tokio, HTTP, the store.
//!
//! Where to start:
//! - [`status`]: `ApiError` and its one conversion to a `Status` body (`to_status`, `code`).
//! - [`validation`]: DNS names, qualified names, label values, ports, `validate_object_meta`.
//! - [`selector`]: `-l` / `--field-selector` strings and `LabelSelector` objects.
//! - [`quantity`]: `100m`, `1Gi` arithmetic for requests and capacity.
//! - [`patch`]: PATCH bodies by content type; [`patch_meta`] holds the list-merge facts (data).
//! - [`apply`]: server-side apply, conflicts, `managedFields` for every write.
//! - [`protobuf`]: `application/vnd.kubernetes.protobuf` request bodies (kubectl 1.32+ sends them) to JSON.
//! - [`client`]: the `ApiClient` trait controllers, scheduler and node agents write through.
pub mod apply;
pub mod client;
pub mod patch;
pub mod patch_meta;
pub mod protobuf;
pub mod quantity;
pub mod selector;
pub mod simulated_usage;
pub mod status;
pub mod validation;
