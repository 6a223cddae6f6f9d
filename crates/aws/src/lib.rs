//! # skiff-aws: the AWS gateway and its services
//!
//! One HTTP endpoint serves every service, routed by the SigV4 credential scope, `X-Amz-Target` and path.
//! Each service is a folder; each operation group a file; each service has one table that maps
//! operation names to handler functions. Handlers take and return `serde_json::Value`s shaped like the
//! botocore model's input/output shapes and persist through `skiff_store::Store` under
//! `/aws/<account>/<region>/<service>/<type>/<id>`.
//!
//! Must not depend on: the Kubernetes crates (`eks` reconciles our records, never the reverse).

pub mod context;
pub mod credentials;
pub mod resources;
