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
pub mod gateway;
pub mod policy;
pub mod resources;

pub mod autoscaling;
pub mod ec2;
pub mod ecr;
pub mod efs;
pub mod eks;
pub mod eks_auth;
pub mod elbv2;
pub mod iam;
pub mod kms;
pub mod logs;
pub mod route53;
pub mod secretsmanager;
pub mod sts;

use serde_json::Value;
use skiff_aws_model::AwsError;

/// The service table: signing name (SigV4 credential scope service) to that service's operation table.
pub async fn dispatch(
    ctx: &context::RequestContext,
    service: &str,
    operation: &str,
    input: Value,
) -> Result<Value, AwsError> {
    match service {
        "ec2" => ec2::dispatch(ctx, operation, input).await,
        "eks" => eks::dispatch(ctx, operation, input).await,
        "iam" => iam::dispatch(ctx, operation, input).await,
        "sts" => sts::dispatch(ctx, operation, input).await,
        "autoscaling" => autoscaling::dispatch(ctx, operation, input).await,
        "elasticloadbalancing" => elbv2::dispatch(ctx, operation, input).await,
        "route53" => route53::dispatch(ctx, operation, input).await,
        "ecr" => ecr::dispatch(ctx, operation, input).await,
        "kms" => kms::dispatch(ctx, operation, input).await,
        "secretsmanager" => secretsmanager::dispatch(ctx, operation, input).await,
        "eks-auth" => eks_auth::dispatch(ctx, operation, input).await,
        "logs" => logs::dispatch(ctx, operation, input).await,
        "elasticfilesystem" => efs::dispatch(ctx, operation, input).await,
        other => Err(AwsError::new(
            "UnknownService",
            format!("Skiff does not serve the service '{other}'"),
        )),
    }
}

/// A recognised operation we do not implement yet: the service's own "not implemented" shape
/// (LocalStack answers the same), never canned data.
pub fn not_implemented(service: &str, operation: &str) -> AwsError {
    AwsError::new(
        "NotImplemented",
        format!("The operation {operation} of service {service} is not implemented by Skiff yet"),
    )
    .with_status(501)
}
