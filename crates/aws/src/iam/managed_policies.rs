//! The AWS managed policies present in every account from the start (read-only,
//! `arn:aws:iam::aws:policy/<path><name>`). The documents are Skiff's own: sensible action lists for
//! what each policy is for, not AWS's text.

/// One AWS managed policy.
#[derive(Debug)]
pub struct ManagedPolicy {
    pub name: &'static str,
    /// `/`, `/service-role/`, `/aws-service-role/`.
    pub path: &'static str,
    pub description: &'static str,
    /// `(Effect, actions, resource)` statements; rendered into a 2012-10-17 document.
    pub statements: &'static [(&'static str, &'static [&'static str], &'static str)],
}

/// Fixed creation date reported for every AWS managed policy (they predate the account).
pub const CREATE_DATE: &str = "2015-02-06T18:40:00Z";

impl ManagedPolicy {
    pub fn arn(&self) -> String {
        format!("arn:aws:iam::aws:policy{}{}", self.path, self.name)
    }

    /// A stable `ANPA…` id derived from the name.
    pub fn id(&self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut out = String::from("ANPA");
        for i in 0..17u64 {
            for b in self.name.bytes() {
                h ^= u64::from(b) ^ i;
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            out.push(ALPHABET[(h % 32) as usize] as char);
        }
        out
    }

    pub fn document(&self) -> String {
        let statements: Vec<serde_json::Value> = self
            .statements
            .iter()
            .map(|(effect, actions, resource)| {
                serde_json::json!({"Effect": effect, "Action": actions, "Resource": resource})
            })
            .collect();
        serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string()
    }
}

const ALL: &str = "*";

/// Every AWS managed policy Skiff knows.
pub static POLICIES: &[ManagedPolicy] = &[
    ManagedPolicy {
        name: "AdministratorAccess",
        path: "/",
        description: "Provides full access to AWS services and resources.",
        statements: &[("Allow", &["*"], ALL)],
    },
    ManagedPolicy {
        name: "ReadOnlyAccess",
        path: "/",
        description: "Provides read-only access to AWS services and resources.",
        statements: &[(
            "Allow",
            &[
                "autoscaling:Describe*",
                "ec2:Describe*",
                "ec2:Get*",
                "ecr:BatchGet*",
                "ecr:Describe*",
                "ecr:Get*",
                "ecr:List*",
                "eks:Describe*",
                "eks:List*",
                "elasticloadbalancing:Describe*",
                "iam:Get*",
                "iam:List*",
                "kms:Describe*",
                "kms:Get*",
                "kms:List*",
                "route53:Get*",
                "route53:List*",
                "s3:Get*",
                "s3:List*",
                "secretsmanager:Describe*",
                "secretsmanager:List*",
                "sts:GetCallerIdentity",
            ],
            ALL,
        )],
    },
    ManagedPolicy {
        name: "AmazonEKSClusterPolicy",
        path: "/",
        description: "Provides Kubernetes the permissions it requires to manage resources on your behalf.",
        statements: &[(
            "Allow",
            &[
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:UpdateAutoScalingGroup",
                "ec2:AttachVolume",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:CreateRoute",
                "ec2:CreateSecurityGroup",
                "ec2:CreateTags",
                "ec2:CreateVolume",
                "ec2:DeleteRoute",
                "ec2:DeleteSecurityGroup",
                "ec2:DeleteVolume",
                "ec2:Describe*",
                "ec2:DetachVolume",
                "ec2:ModifyInstanceAttribute",
                "ec2:ModifyVolume",
                "ec2:RevokeSecurityGroupIngress",
                "elasticloadbalancing:*",
                "iam:CreateServiceLinkedRole",
                "kms:DescribeKey",
            ],
            ALL,
        )],
    },
    ManagedPolicy {
        name: "AmazonEKSServicePolicy",
        path: "/",
        description: "Allows Amazon EKS to manage clusters on your behalf.",
        statements: &[(
            "Allow",
            &[
                "ec2:CreateNetworkInterface",
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:Describe*",
                "ec2:ModifyNetworkInterfaceAttribute",
                "iam:ListAttachedRolePolicies",
                "route53:AssociateVPCWithHostedZone",
                "elasticloadbalancing:Describe*",
            ],
            ALL,
        )],
    },
    ManagedPolicy {
        name: "AmazonEKSWorkerNodePolicy",
        path: "/",
        description: "Allows Amazon EKS worker nodes to connect to Amazon EKS clusters.",
        statements: &[(
            "Allow",
            &[
                "ec2:DescribeInstances",
                "ec2:DescribeRouteTables",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeVolumes",
                "ec2:DescribeVpcs",
                "eks:DescribeCluster",
                "eks-auth:AssumeRoleForPodIdentity",
            ],
            ALL,
        )],
    },
    ManagedPolicy {
        name: "AmazonEKS_CNI_Policy",
        path: "/",
        description: "Provides the Amazon VPC CNI Plugin (amazon-vpc-cni-k8s) the permissions it requires to modify the IP address configuration on your EKS worker nodes.",
        statements: &[
            (
                "Allow",
                &[
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:AttachNetworkInterface",
                    "ec2:CreateNetworkInterface",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DescribeInstances",
                    "ec2:DescribeTags",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeSubnets",
                    "ec2:DetachNetworkInterface",
                    "ec2:ModifyNetworkInterfaceAttribute",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                ALL,
            ),
            (
                "Allow",
                &["ec2:CreateTags"],
                "arn:aws:ec2:*:*:network-interface/*",
            ),
        ],
    },
    ManagedPolicy {
        name: "AmazonEC2ContainerRegistryReadOnly",
        path: "/",
        description: "Provides read-only access to Amazon EC2 Container Registry repositories.",
        statements: &[(
            "Allow",
            &[
                "ecr:GetAuthorizationToken",
                "ecr:BatchCheckLayerAvailability",
                "ecr:GetDownloadUrlForLayer",
                "ecr:GetRepositoryPolicy",
                "ecr:DescribeRepositories",
                "ecr:ListImages",
                "ecr:DescribeImages",
                "ecr:BatchGetImage",
                "ecr:GetLifecyclePolicy",
                "ecr:GetLifecyclePolicyPreview",
                "ecr:ListTagsForResource",
                "ecr:DescribeImageScanFindings",
            ],
            ALL,
        )],
    },
    ManagedPolicy {
        name: "AmazonEBSCSIDriverPolicy",
        path: "/service-role/",
        description: "IAM Policy that allows the CSI driver service account to make calls to related services such as EC2 on your behalf.",
        statements: &[
            (
                "Allow",
                &[
                    "ec2:CreateSnapshot",
                    "ec2:AttachVolume",
                    "ec2:DetachVolume",
                    "ec2:ModifyVolume",
                    "ec2:DescribeAvailabilityZones",
                    "ec2:DescribeInstances",
                    "ec2:DescribeSnapshots",
                    "ec2:DescribeTags",
                    "ec2:DescribeVolumes",
                    "ec2:DescribeVolumesModifications",
                ],
                ALL,
            ),
            (
                "Allow",
                &["ec2:CreateTags", "ec2:DeleteTags"],
                "arn:aws:ec2:*:*:volume/*",
            ),
            (
                "Allow",
                &["ec2:CreateVolume", "ec2:DeleteVolume", "ec2:DeleteSnapshot"],
                ALL,
            ),
        ],
    },
    ManagedPolicy {
        name: "AmazonEKSVPCResourceController",
        path: "/",
        description: "Policy used by VPC Resource Controller to manage ENI and IPs for worker nodes.",
        statements: &[(
            "Allow",
            &[
                "ec2:CreateNetworkInterfacePermission",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
                "ec2:DescribeNetworkInterfaces",
                "ec2:CreateNetworkInterface",
                "ec2:DeleteNetworkInterface",
                "ec2:DescribeInstances",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
            ],
            ALL,
        )],
    },
    ManagedPolicy {
        name: "AmazonSSMManagedInstanceCore",
        path: "/",
        description: "The policy for Amazon EC2 Role to enable AWS Systems Manager service core functionality.",
        statements: &[(
            "Allow",
            &[
                "ssm:DescribeAssociation",
                "ssm:GetDeployablePatchSnapshotForInstance",
                "ssm:GetDocument",
                "ssm:DescribeDocument",
                "ssm:GetManifest",
                "ssm:GetParameter",
                "ssm:GetParameters",
                "ssm:ListAssociations",
                "ssm:ListInstanceAssociations",
                "ssm:PutInventory",
                "ssm:UpdateInstanceInformation",
                "ssmmessages:*",
                "ec2messages:*",
            ],
            ALL,
        )],
    },
    ManagedPolicy {
        name: "AmazonEKSLoadBalancingPolicy",
        path: "/",
        description: "Provides Amazon EKS Auto Mode the permissions to manage Elastic Load Balancing resources.",
        statements: &[(
            "Allow",
            &[
                "elasticloadbalancing:*",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeVpcs",
                "ec2:DescribeInstances",
                "ec2:CreateSecurityGroup",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:DeleteSecurityGroup",
                "ec2:CreateTags",
            ],
            ALL,
        )],
    },
    ManagedPolicy {
        name: "AmazonEKSComputePolicy",
        path: "/",
        description: "Provides Amazon EKS Auto Mode the permissions to manage EC2 instances for compute.",
        statements: &[(
            "Allow",
            &[
                "ec2:CreateFleet",
                "ec2:RunInstances",
                "ec2:CreateLaunchTemplate",
                "ec2:DeleteLaunchTemplate",
                "ec2:TerminateInstances",
                "ec2:CreateTags",
                "ec2:Describe*",
                "iam:PassRole",
                "iam:GetInstanceProfile",
            ],
            ALL,
        )],
    },
    ManagedPolicy {
        name: "AmazonEKSBlockStoragePolicy",
        path: "/",
        description: "Provides Amazon EKS Auto Mode the permissions to manage EBS volumes and snapshots.",
        statements: &[(
            "Allow",
            &[
                "ec2:CreateVolume",
                "ec2:DeleteVolume",
                "ec2:AttachVolume",
                "ec2:DetachVolume",
                "ec2:ModifyVolume",
                "ec2:CreateSnapshot",
                "ec2:DeleteSnapshot",
                "ec2:Describe*",
                "ec2:CreateTags",
            ],
            ALL,
        )],
    },
    ManagedPolicy {
        name: "AmazonEKSNetworkingPolicy",
        path: "/",
        description: "Provides Amazon EKS Auto Mode the permissions to manage network interfaces and IP addresses.",
        statements: &[(
            "Allow",
            &[
                "ec2:CreateNetworkInterface",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
                "ec2:AttachNetworkInterface",
                "ec2:DetachNetworkInterface",
                "ec2:Describe*",
                "ec2:CreateTags",
            ],
            ALL,
        )],
    },
    ManagedPolicy {
        name: "ElasticLoadBalancingFullAccess",
        path: "/",
        description: "Provides full access to Amazon ElasticLoadBalancing.",
        statements: &[(
            "Allow",
            &[
                "elasticloadbalancing:*",
                "ec2:DescribeAccountAttributes",
                "ec2:DescribeAddresses",
                "ec2:DescribeInternetGateways",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeVpcs",
                "ec2:DescribeInstances",
                "iam:CreateServiceLinkedRole",
            ],
            ALL,
        )],
    },
    ManagedPolicy {
        name: "AmazonRoute53FullAccess",
        path: "/",
        description: "Provides full access to all Amazon Route 53 via the AWS Management Console.",
        statements: &[(
            "Allow",
            &[
                "route53:*",
                "ec2:DescribeVpcs",
                "ec2:DescribeRegions",
                "elasticloadbalancing:DescribeLoadBalancers",
            ],
            ALL,
        )],
    },
    ManagedPolicy {
        name: "AmazonS3ReadOnlyAccess",
        path: "/",
        description: "Provides read only access to all buckets via the AWS Management Console.",
        statements: &[("Allow", &["s3:Get*", "s3:List*", "s3:Describe*"], ALL)],
    },
    ManagedPolicy {
        name: "AmazonEC2ContainerRegistryFullAccess",
        path: "/",
        description: "Provides administrative access to Amazon ECR resources.",
        statements: &[("Allow", &["ecr:*"], ALL)],
    },
    ManagedPolicy {
        name: "AmazonEC2FullAccess",
        path: "/",
        description: "Provides full access to Amazon EC2 via the AWS Management Console.",
        statements: &[
            (
                "Allow",
                &["ec2:*", "elasticloadbalancing:*", "autoscaling:*"],
                ALL,
            ),
            ("Allow", &["iam:CreateServiceLinkedRole"], ALL),
        ],
    },
    ManagedPolicy {
        name: "IAMFullAccess",
        path: "/",
        description: "Provides full access to IAM via the AWS Management Console.",
        statements: &[("Allow", &["iam:*"], ALL)],
    },
    ManagedPolicy {
        name: "AmazonEKSServiceRolePolicy",
        path: "/aws-service-role/",
        description: "Permissions used by the AWSServiceRoleForAmazonEKS service-linked role.",
        statements: &[(
            "Allow",
            &[
                "ec2:CreateNetworkInterface",
                "ec2:DeleteNetworkInterface",
                "ec2:Describe*",
                "ec2:ModifyNetworkInterfaceAttribute",
                "ec2:CreateTags",
                "iam:GetRole",
                "route53:AssociateVPCWithHostedZone",
                "logs:CreateLogGroup",
                "logs:PutRetentionPolicy",
            ],
            ALL,
        )],
    },
    ManagedPolicy {
        name: "AWSServiceRoleForAmazonEKSNodegroup",
        path: "/aws-service-role/",
        description: "Permissions used by the AWSServiceRoleForAmazonEKSNodegroup service-linked role.",
        statements: &[(
            "Allow",
            &[
                "autoscaling:*",
                "ec2:RunInstances",
                "ec2:TerminateInstances",
                "ec2:Describe*",
                "ec2:CreateLaunchTemplate",
                "ec2:DeleteLaunchTemplate",
                "ec2:CreateTags",
                "iam:PassRole",
                "iam:GetRole",
            ],
            ALL,
        )],
    },
    ManagedPolicy {
        name: "AutoScalingServiceRolePolicy",
        path: "/aws-service-role/",
        description: "Permissions used by the AWSServiceRoleForAutoScaling service-linked role.",
        statements: &[(
            "Allow",
            &[
                "ec2:RunInstances",
                "ec2:TerminateInstances",
                "ec2:Describe*",
                "ec2:CreateTags",
                "elasticloadbalancing:Register*",
                "elasticloadbalancing:Deregister*",
                "elasticloadbalancing:Describe*",
                "iam:PassRole",
            ],
            ALL,
        )],
    },
    ManagedPolicy {
        name: "AWSElasticLoadBalancingServiceRolePolicy",
        path: "/aws-service-role/",
        description: "Permissions used by the AWSServiceRoleForElasticLoadBalancing service-linked role.",
        statements: &[(
            "Allow",
            &[
                "ec2:Describe*",
                "ec2:CreateNetworkInterface",
                "ec2:DeleteNetworkInterface",
                "ec2:ModifyNetworkInterfaceAttribute",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            ALL,
        )],
    },
    ManagedPolicy {
        name: "AmazonEKSForFargateServiceRolePolicy",
        path: "/aws-service-role/",
        description: "Permissions used by the AWSServiceRoleForAmazonEKSForFargate service-linked role.",
        statements: &[(
            "Allow",
            &[
                "ec2:CreateNetworkInterface",
                "ec2:DeleteNetworkInterface",
                "ec2:Describe*",
                "ec2:CreateNetworkInterfacePermission",
            ],
            ALL,
        )],
    },
    ManagedPolicy {
        name: "AWSEC2SpotServiceRolePolicy",
        path: "/aws-service-role/",
        description: "Permissions used by the AWSServiceRoleForEC2Spot service-linked role.",
        statements: &[(
            "Allow",
            &[
                "ec2:DescribeInstances",
                "ec2:StartInstances",
                "ec2:StopInstances",
                "iam:PassRole",
            ],
            ALL,
        )],
    },
];

/// The AWS managed policy with this ARN.
pub fn by_arn(arn: &str) -> Option<&'static ManagedPolicy> {
    let rest = arn.strip_prefix("arn:aws:iam::aws:policy")?;
    POLICIES
        .iter()
        .find(|p| rest.strip_prefix(p.path).is_some_and(|name| name == p.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_document_is_a_valid_permission_policy() {
        for p in POLICIES {
            crate::iam::policy_document::validate_permissions(&p.document(), "PolicySize", 6144)
                .unwrap_or_else(|e| panic!("{}: {e}", p.name));
            assert_eq!(by_arn(&p.arn()).map(|x| x.name), Some(p.name));
            assert!(p.id().starts_with("ANPA") && p.id().len() == 21);
        }
        assert_eq!(
            by_arn("arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy").map(|p| p.name),
            Some("AmazonEBSCSIDriverPolicy")
        );
        assert!(by_arn("arn:aws:iam::aws:policy/AmazonEBSCSIDriverPolicy").is_none());
        let ids: std::collections::HashSet<String> = POLICIES.iter().map(|p| p.id()).collect();
        assert_eq!(ids.len(), POLICIES.len());
    }
}
