//! The request context EKS's own AWS calls run under (nodegroup → Auto Scaling group → instances,
//! the VPC CNI's addresses): the account's EKS service-linked role, as on AWS, where CloudTrail shows
//! these calls made by `AWSServiceRoleForAmazonEKSNodegroup`.

use std::sync::Arc;

use skiff_aws::context::{Caller, RequestContext};
use skiff_store::Store;

/// The role session EKS's calls are attributed to.
pub const SERVICE_ROLE: &str = "AWSServiceRoleForAmazonEKSNodegroup";

/// A context for calling AWS domain functions of `account` in `region` as EKS.
pub fn service_context(store: Arc<dyn Store>, account: &str, region: &str) -> RequestContext {
    RequestContext {
        account_id: account.to_string(),
        region: region.to_string(),
        request_id: uuid::Uuid::new_v4().to_string(),
        caller: Caller {
            arn: format!("arn:aws:sts::{account}:assumed-role/{SERVICE_ROLE}/EKS"),
            user_id: "AROASKIFFEKSNODEGROUP:EKS".to_string(),
            account_id: account.to_string(),
            access_key_id: String::new(),
        },
        store,
    }
}
