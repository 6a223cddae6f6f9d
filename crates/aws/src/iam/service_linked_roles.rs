//! Service-linked roles: CreateServiceLinkedRole, DeleteServiceLinkedRole,
//! GetServiceLinkedRoleDeletionStatus.
//!
//! Each service has a fixed role name, path `/aws-service-role/<service>/`, a trust policy for the
//! service principal and its AWS policy attached. Only AWS may change such a role afterwards
//! (`UnmodifiableEntity` from the role and policy operations).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use skiff_store::Precondition;

use super::common::*;
use super::roles::{self, RoleRecord};
use crate::context::RequestContext;
use crate::resources;

/// (service principal, role name, AWS policy, description).
pub static SERVICES: &[(&str, &str, &str, &str)] = &[
    (
        "eks.amazonaws.com",
        "AWSServiceRoleForAmazonEKS",
        "arn:aws:iam::aws:policy/aws-service-role/AmazonEKSServiceRolePolicy",
        "Allows Amazon EKS to call AWS services on your behalf.",
    ),
    (
        "eks-nodegroup.amazonaws.com",
        "AWSServiceRoleForAmazonEKSNodegroup",
        "arn:aws:iam::aws:policy/aws-service-role/AWSServiceRoleForAmazonEKSNodegroup",
        "This policy allows Amazon EKS to create and manage Nodegroups",
    ),
    (
        "eks-fargate.amazonaws.com",
        "AWSServiceRoleForAmazonEKSForFargate",
        "arn:aws:iam::aws:policy/aws-service-role/AmazonEKSForFargateServiceRolePolicy",
        "This role allows Amazon EKS to manage Fargate resources on your behalf.",
    ),
    (
        "autoscaling.amazonaws.com",
        "AWSServiceRoleForAutoScaling",
        "arn:aws:iam::aws:policy/aws-service-role/AutoScalingServiceRolePolicy",
        "Default Service-Linked Role enables access to AWS Services and Resources used or managed by Auto Scaling",
    ),
    (
        "elasticloadbalancing.amazonaws.com",
        "AWSServiceRoleForElasticLoadBalancing",
        "arn:aws:iam::aws:policy/aws-service-role/AWSElasticLoadBalancingServiceRolePolicy",
        "Allows ELB to call AWS services on your behalf.",
    ),
    (
        "spot.amazonaws.com",
        "AWSServiceRoleForEC2Spot",
        "arn:aws:iam::aws:policy/aws-service-role/AWSEC2SpotServiceRolePolicy",
        "Default EC2 Spot Service Linked Role",
    ),
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeletionTask {
    task_id: String,
    role_name: String,
}

#[doc(alias = "CreateServiceLinkedRole")]
pub async fn create_service_linked_role(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let service = req_str(&input, "AWSServiceName")?;
    let Some((_, base, policy_arn, default_desc)) = SERVICES.iter().find(|(s, ..)| *s == service)
    else {
        return Err(IamError::InvalidInput(format!(
            "Unrecognized service principal: {service}"
        )));
    };
    let name = match opt_str(&input, "CustomSuffix") {
        Some(suffix) => {
            check_name("CustomSuffix", suffix, 64)?;
            format!("{base}_{suffix}")
        }
        None => base.to_string(),
    };
    let path = format!("/aws-service-role/{service}/");
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
    })
    .to_string();
    let desc = opt_str(&input, "Description").unwrap_or(default_desc);
    let mut role = roles::new_record(ctx, &name, &path, &trust, Some(desc.to_string()));
    role.attached_policies.push(policy_arn.to_string());
    let taken = || {
        IamError::InvalidInput(format!(
            "Service role name {name} has been taken in this account, please try a different suffix."
        ))
    };
    if find::<RoleRecord>(&*ctx.store, &ctx.account_id, &name)
        .await?
        .is_some()
    {
        return Err(taken());
    }
    commit(ctx, vec![create_op(&ctx.account_id, &role)])
        .await
        .map_err(|e| match e {
            IamError::ConcurrentModification(_) => taken(),
            other => other,
        })?;
    Ok(json!({ "Role": role.to_wire(true) }))
}

#[doc(alias = "DeleteServiceLinkedRole")]
pub async fn delete_service_linked_role(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let name = req_str(&input, "RoleName")?;
    let (role, rev) = load::<RoleRecord>(ctx, name).await?;
    if !role.is_service_linked() {
        return Err(IamError::InvalidInput(format!(
            "Role {name} is not a service-linked role."
        )));
    }
    let service = role
        .path
        .trim_start_matches("/aws-service-role/")
        .trim_end_matches('/');
    let task_id = format!(
        "task/aws-service-role/{service}/{}/{}",
        role.role_name,
        uuid::Uuid::new_v4()
    );
    let task = DeletionTask {
        task_id: task_id.clone(),
        role_name: role.role_name.clone(),
    };
    // The role goes at once; the task record lets GetServiceLinkedRoleDeletionStatus answer.
    commit(
        ctx,
        vec![
            skiff_store::Op::Delete {
                key: entity_key::<RoleRecord>(&ctx.account_id, &role.role_name),
                precondition: Precondition::ModRevision(rev),
            },
            resources::put_op(
                &task_key(&ctx.account_id, &task_id),
                &task,
                Precondition::None,
            ),
        ],
    )
    .await?;
    Ok(json!({ "DeletionTaskId": task_id }))
}

fn task_key(account: &str, task_id: &str) -> String {
    iam_key(account, "slr-deletion", &encode_document(task_id))
}

#[doc(alias = "GetServiceLinkedRoleDeletionStatus")]
pub async fn get_service_linked_role_deletion_status(
    ctx: &RequestContext,
    input: Value,
) -> IamResult<Value> {
    let id = req_str(&input, "DeletionTaskId")?;
    match resources::get::<DeletionTask>(&*ctx.store, &task_key(&ctx.account_id, id)).await? {
        Some(_) => Ok(json!({ "Status": "SUCCEEDED" })),
        None => Err(IamError::NoSuchEntity(format!(
            "Deletion task {id} cannot be found."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::iam::test_support::*;

    #[tokio::test]
    async fn eks_service_linked_role() {
        let ctx = root_ctx();
        let out = iam(
            &ctx,
            "CreateServiceLinkedRole",
            json!({"AWSServiceName": "eks.amazonaws.com"}),
        )
        .await
        .unwrap();
        assert_eq!(out["Role"]["RoleName"], "AWSServiceRoleForAmazonEKS");
        assert_eq!(out["Role"]["Path"], "/aws-service-role/eks.amazonaws.com/");
        assert_eq!(
            out["Role"]["Arn"],
            "arn:aws:iam::000000000000:role/aws-service-role/eks.amazonaws.com/AWSServiceRoleForAmazonEKS"
        );
        let e = iam(
            &ctx,
            "CreateServiceLinkedRole",
            json!({"AWSServiceName": "eks.amazonaws.com"}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "InvalidInput");
        let att = iam(
            &ctx,
            "ListAttachedRolePolicies",
            json!({"RoleName": "AWSServiceRoleForAmazonEKS"}),
        )
        .await
        .unwrap();
        assert_eq!(
            att["AttachedPolicies"][0]["PolicyName"],
            "AmazonEKSServiceRolePolicy"
        );
        let e = iam(
            &ctx,
            "DeleteRole",
            json!({"RoleName": "AWSServiceRoleForAmazonEKS"}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "UnmodifiableEntity");
        let e = iam(&ctx, "DetachRolePolicy", json!({"RoleName": "AWSServiceRoleForAmazonEKS", "PolicyArn": "arn:aws:iam::aws:policy/aws-service-role/AmazonEKSServiceRolePolicy"})).await.unwrap_err();
        assert_eq!(e.code, "UnmodifiableEntity");
        let e = iam(
            &ctx,
            "CreateServiceLinkedRole",
            json!({"AWSServiceName": "nope.amazonaws.com"}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "InvalidInput");
        let del = iam(
            &ctx,
            "DeleteServiceLinkedRole",
            json!({"RoleName": "AWSServiceRoleForAmazonEKS"}),
        )
        .await
        .unwrap();
        let st = iam(
            &ctx,
            "GetServiceLinkedRoleDeletionStatus",
            json!({"DeletionTaskId": del["DeletionTaskId"]}),
        )
        .await
        .unwrap();
        assert_eq!(st["Status"], "SUCCEEDED");
        assert_eq!(
            iam(
                &ctx,
                "GetRole",
                json!({"RoleName": "AWSServiceRoleForAmazonEKS"})
            )
            .await
            .unwrap_err()
            .code,
            "NoSuchEntity"
        );
    }
}
