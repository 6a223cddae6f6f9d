//! `SelfSubjectReview` (authentication.k8s.io/v1): `kubectl auth whoami`.

use serde_json::Value;

use super::{decode_body, review_info, user_info_json};
use crate::registry::hooks::{CreateOnlyResource, HookError, HookRequest};
use crate::registry::strategy::ResourceInfo;

#[doc(alias = "SelfSubjectReview")]
pub struct SelfSubjectReviewResource {
    info: ResourceInfo,
}

impl Default for SelfSubjectReviewResource {
    fn default() -> Self {
        Self {
            info: review_info(
                "authentication.k8s.io",
                "SelfSubjectReview",
                "selfsubjectreviews",
                false,
            ),
        }
    }
}

#[async_trait::async_trait]
impl CreateOnlyResource for SelfSubjectReviewResource {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    async fn create(&self, req: &HookRequest<'_>, body: Value) -> Result<Value, HookError> {
        let mut body = decode_body(body, &self.info)?;
        body["status"] = serde_json::json!({ "userInfo": user_info_json(req.user) });
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::UserInfo;

    #[tokio::test]
    async fn echoes_the_caller() {
        let user = UserInfo {
            name: "kubernetes-admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            ..Default::default()
        };
        let req = HookRequest {
            user: &user,
            namespace: None,
            name: None,
            dry_run: false,
        };
        let out = SelfSubjectReviewResource::default()
            .create(&req, serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}))
            .await
            .unwrap();
        assert_eq!(out["status"]["userInfo"]["username"], "kubernetes-admin");
        assert_eq!(out["status"]["userInfo"]["groups"][0], "system:masters");
        assert!(out["status"]["userInfo"].get("uid").is_none());
        assert!(matches!(
            SelfSubjectReviewResource::default()
                .create(&req, serde_json::json!({"kind": "Pod"}))
                .await,
            Err(HookError::BadRequest(_))
        ));
    }
}
