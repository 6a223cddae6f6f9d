//! # skiff-apiserver: the Kubernetes API of one cluster
//!
//! HTTP (TLS, HTTP/2 and 1.1), discovery, OpenAPI, authentication (x509, ServiceAccount JWT, EKS token
//! hook), RBAC, admission, and a generic registry over a table of kinds, each kind's behaviour in one
//! strategy file under `kinds/`.
//!
//! Must not depend on: AWS crates, controllers, scheduler, nodes. Talks to storage only through
//! `skiff_store::Store`.
//!
//! Start at [`server::start`] (listener, TLS, bootstrap objects, in-process controllers), then
//! [`http::Api::serve`] (authn → authz → routing; the one `ApiError` → `Status` conversion is
//! [`http::error_response`]), then [`registry::Registry`] (the generic create/update/patch/delete/
//! list/watch every kind goes through; in-process clients call it directly).

pub mod admission;
pub mod audit;
pub mod auth_apis;
pub mod authn;
pub mod authz;
pub mod client;
pub mod http;
pub mod kinds;
pub mod metrics_api;
pub mod openapi;
pub mod pki;
pub mod registry;
pub mod server;
