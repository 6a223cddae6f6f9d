//! `--enforce-iam`: every signed call is judged by the caller's IAM policies before its handler
//! runs, as AWS does.
//!
//! The action is `<service prefix>:<Operation>` (`ec2:CreateVpc`). The resource is the ARN the
//! operation's input names, built from [`RESOURCE_ARNS`] (one row per input member that names a
//! resource: `RoleName` → `arn:aws:iam::<account>:role/<name>`); operations that name none are
//! judged against `*`, as AWS does for actions without resource-level permissions. Root, and the
//! few calls AWS never authorizes (`sts:GetCallerIdentity`, the unsigned STS calls), pass. A
//! refusal is the service's own error: `UnauthorizedOperation` for EC2, `AccessDenied` for the
//! query/XML services, `AccessDeniedException` for the JSON ones, with AWS's wording.

use serde_json::Value;
use skiff_aws_model::AwsError;

use crate::context::Caller;
use crate::policy::{ContextMap, evaluate::Decision, evaluate::is_allowed};
use skiff_store::Store;

/// (IAM service prefix, input member, ARN template). `{region}`, `{account}` and `{}` (the
/// member's value) are filled in; a value that already is an ARN is used as it is.
pub const RESOURCE_ARNS: &[(&str, &str, &str)] = &[
    ("iam", "RoleName", "arn:aws:iam::{account}:role/{}"),
    ("iam", "UserName", "arn:aws:iam::{account}:user/{}"),
    ("iam", "GroupName", "arn:aws:iam::{account}:group/{}"),
    ("iam", "PolicyArn", "{}"),
    (
        "iam",
        "InstanceProfileName",
        "arn:aws:iam::{account}:instance-profile/{}",
    ),
    ("sts", "RoleArn", "{}"),
    (
        "eks",
        "clusterName",
        "arn:aws:eks:{region}:{account}:cluster/{}",
    ),
    ("eks", "name", "arn:aws:eks:{region}:{account}:cluster/{}"),
    ("kms", "KeyId", "arn:aws:kms:{region}:{account}:key/{}"),
    (
        "secretsmanager",
        "SecretId",
        "arn:aws:secretsmanager:{region}:{account}:secret:{}",
    ),
    (
        "ecr",
        "repositoryName",
        "arn:aws:ecr:{region}:{account}:repository/{}",
    ),
    ("ec2", "VpcId", "arn:aws:ec2:{region}:{account}:vpc/{}"),
    (
        "ec2",
        "SubnetId",
        "arn:aws:ec2:{region}:{account}:subnet/{}",
    ),
    (
        "ec2",
        "InstanceId",
        "arn:aws:ec2:{region}:{account}:instance/{}",
    ),
    (
        "ec2",
        "VolumeId",
        "arn:aws:ec2:{region}:{account}:volume/{}",
    ),
    (
        "ec2",
        "GroupId",
        "arn:aws:ec2:{region}:{account}:security-group/{}",
    ),
    (
        "autoscaling",
        "AutoScalingGroupName",
        "arn:aws:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/{}",
    ),
    ("elasticloadbalancing", "LoadBalancerArn", "{}"),
    ("elasticloadbalancing", "TargetGroupArn", "{}"),
    ("elasticloadbalancing", "ListenerArn", "{}"),
    ("route53", "Id", "arn:aws:route53:::hostedzone/{}"),
    ("route53", "HostedZoneId", "arn:aws:route53:::hostedzone/{}"),
];

/// Calls AWS answers for anyone who signed, whatever their policies say.
const NEVER_AUTHORIZED: &[&str] = &["sts:GetCallerIdentity"];

/// The IAM service prefix of a gateway service (the signing name, except where IAM differs).
pub fn action_prefix(signing_name: &str) -> &str {
    match signing_name {
        "elbv2" => "elasticloadbalancing",
        other => other,
    }
}

/// The resource ARN the call addresses, or `*`.
pub fn resource_arn(prefix: &str, input: &Value, region: &str, account: &str) -> String {
    for (service, member, template) in RESOURCE_ARNS {
        if *service != prefix {
            continue;
        }
        let Some(value) = input.get(*member).and_then(Value::as_str) else {
            continue;
        };
        if value.starts_with("arn:") {
            return value.to_string();
        }
        // Route 53 ids arrive as `/hostedzone/Z…` or bare.
        let value = value.rsplit('/').next().unwrap_or(value);
        return template
            .replace("{region}", region)
            .replace("{account}", account)
            .replace("{}", value);
    }
    "*".to_string()
}

/// Is the root user (or the anonymous caller of an unsigned operation) making the call?
fn exempt(caller: &Caller, action: &str) -> bool {
    caller.arn.is_empty() || caller.arn.ends_with(":root") || NEVER_AUTHORIZED.contains(&action)
}

/// Judges the call; `Err` is the refusal in the protocol family's own code.
pub async fn authorize(
    store: &dyn Store,
    caller: &Caller,
    signing_name: &str,
    operation: &str,
    input: &Value,
    region: &str,
) -> Result<(), AwsError> {
    let prefix = action_prefix(signing_name);
    let action = format!("{prefix}:{operation}");
    if exempt(caller, &action) {
        return Ok(());
    }
    let resource = resource_arn(prefix, input, region, &caller.account_id);
    let context = ContextMap::new().with("aws:RequestedRegion", region);
    let decision = is_allowed(store, caller, &action, &resource, &context).await?;
    if decision.is_allowed() {
        return Ok(());
    }
    Err(refusal(prefix, caller, &action, &resource, decision))
}

/// AWS's words for a refusal, per protocol family.
fn refusal(
    prefix: &str,
    caller: &Caller,
    action: &str,
    resource: &str,
    decision: Decision,
) -> AwsError {
    let why = if decision == Decision::ExplicitDeny {
        "with an explicit deny in an identity-based policy".to_string()
    } else {
        format!("because no identity-based policy allows the {action} action")
    };
    let who = &caller.arn;
    match prefix {
        "ec2" => AwsError::new(
            "UnauthorizedOperation",
            format!("You are not authorized to perform this operation. User: {who} is not authorized to perform: {action} on resource: {resource} {why}"),
        )
        .with_status(403),
        "iam" | "sts" | "autoscaling" | "elasticloadbalancing" | "route53" => AwsError::new(
            "AccessDenied",
            format!("User: {who} is not authorized to perform: {action} on resource: {resource} {why}"),
        )
        .with_status(403),
        _ => AwsError::new(
            "AccessDeniedException",
            format!("User: {who} is not authorized to perform: {action} on resource: {resource} {why}"),
        )
        .with_status(403),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resource_arns_come_from_the_input_member_that_names_the_resource() {
        let arn = |p, v: Value| resource_arn(p, &v, "eu-west-1", "000000000000");
        assert_eq!(
            arn("iam", json!({"RoleName": "r"})),
            "arn:aws:iam::000000000000:role/r"
        );
        assert_eq!(
            arn("eks", json!({"name": "prod"})),
            "arn:aws:eks:eu-west-1:000000000000:cluster/prod"
        );
        assert_eq!(
            arn(
                "kms",
                json!({"KeyId": "arn:aws:kms:eu-west-1:000000000000:key/k"})
            ),
            "arn:aws:kms:eu-west-1:000000000000:key/k"
        );
        assert_eq!(
            arn("route53", json!({"Id": "/hostedzone/Z1"})),
            "arn:aws:route53:::hostedzone/Z1"
        );
        assert_eq!(arn("ec2", json!({"CidrBlock": "10.0.0.0/16"})), "*");
    }

    #[test]
    fn root_and_caller_identity_are_never_judged() {
        let root = crate::gateway::auth::root_caller("test");
        assert!(exempt(&root, "iam:CreateRole"));
        let user = Caller {
            arn: "arn:aws:iam::000000000000:user/alice".into(),
            user_id: "AIDA".into(),
            account_id: "000000000000".into(),
            access_key_id: "AKIA".into(),
        };
        assert!(exempt(&user, "sts:GetCallerIdentity"));
        assert!(!exempt(&user, "iam:CreateRole"));
    }

    #[test]
    fn refusals_use_each_protocol_family_s_code() {
        let user = Caller {
            arn: "arn:aws:iam::000000000000:user/alice".into(),
            user_id: "AIDA".into(),
            account_id: "000000000000".into(),
            access_key_id: "AKIA".into(),
        };
        let e = refusal("ec2", &user, "ec2:CreateVpc", "*", Decision::ImplicitDeny);
        assert_eq!((e.code.as_str(), e.status), ("UnauthorizedOperation", 403));
        assert!(
            e.message
                .contains("because no identity-based policy allows the ec2:CreateVpc action")
        );
        let e = refusal("iam", &user, "iam:CreateRole", "r", Decision::ExplicitDeny);
        assert_eq!(e.code, "AccessDenied");
        assert!(e.message.contains("explicit deny"));
        assert_eq!(
            refusal(
                "eks",
                &user,
                "eks:ListClusters",
                "*",
                Decision::ImplicitDeny
            )
            .code,
            "AccessDeniedException"
        );
    }
}
