//! `authorization.k8s.io/v1` reviews: `kubectl auth can-i` posts a SelfSubjectAccessReview,
//! `can-i --list` a SelfSubjectRulesReview; webhooks and aggregated servers post
//! SubjectAccessReviews.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use super::{decode_body, review_info};
use crate::authn::UserInfo;
use crate::authz::rbac::RbacAuthorizer;
use crate::authz::{Attributes, Authorizer, Decision};
use crate::registry::hooks::{CreateOnlyResource, HookError, HookRequest};
use crate::registry::strategy::ResourceInfo;

pub const GROUP: &str = "authorization.k8s.io";

/// Which review this is; they share the evaluation and differ in whose attributes are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavor {
    SelfSubject,
    Subject,
    Local,
}

/// One of the three access reviews, asking `authorizer` (the server's whole authorizer chain).
pub struct AccessReview {
    info: ResourceInfo,
    flavor: Flavor,
    authorizer: Arc<dyn Authorizer>,
}

/// The three access reviews over one authorizer, ready to register.
pub fn access_reviews(authorizer: Arc<dyn Authorizer>) -> Vec<Arc<dyn CreateOnlyResource>> {
    vec![
        Arc::new(AccessReview::self_subject(authorizer.clone())),
        Arc::new(AccessReview::subject(authorizer.clone())),
        Arc::new(AccessReview::local(authorizer)),
    ]
}

impl AccessReview {
    #[doc(alias = "SelfSubjectAccessReview")]
    pub fn self_subject(authorizer: Arc<dyn Authorizer>) -> Self {
        Self {
            info: review_info(
                GROUP,
                "SelfSubjectAccessReview",
                "selfsubjectaccessreviews",
                false,
            ),
            flavor: Flavor::SelfSubject,
            authorizer,
        }
    }

    #[doc(alias = "SubjectAccessReview")]
    pub fn subject(authorizer: Arc<dyn Authorizer>) -> Self {
        Self {
            info: review_info(GROUP, "SubjectAccessReview", "subjectaccessreviews", false),
            flavor: Flavor::Subject,
            authorizer,
        }
    }

    #[doc(alias = "LocalSubjectAccessReview")]
    pub fn local(authorizer: Arc<dyn Authorizer>) -> Self {
        Self {
            info: review_info(
                GROUP,
                "LocalSubjectAccessReview",
                "localsubjectaccessreviews",
                true,
            ),
            flavor: Flavor::Local,
            authorizer,
        }
    }
}

fn s(v: &Value, ptr: &str) -> String {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// `spec.resourceAttributes` / `spec.nonResourceAttributes` → authorizer attributes (without the user).
pub fn attributes_from_spec(spec: &Value) -> Result<Attributes, Vec<FieldError>> {
    let ra = spec.get("resourceAttributes").filter(|v| !v.is_null());
    let nra = spec.get("nonResourceAttributes").filter(|v| !v.is_null());
    match (ra, nra) {
        (Some(_), Some(n)) => Err(vec![FieldError::invalid(
            "spec.nonResourceAttributes",
            n.clone(),
            "cannot be specified in combination with resourceAttributes",
        )]),
        (None, None) => Err(vec![FieldError::invalid(
            "spec.resourceAttributes",
            json!("null"),
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )]),
        (Some(r), None) => Ok(Attributes {
            verb: s(r, "/verb"),
            resource_request: true,
            api_group: s(r, "/group"),
            api_version: s(r, "/version"),
            resource: s(r, "/resource"),
            subresource: s(r, "/subresource"),
            namespace: s(r, "/namespace"),
            name: s(r, "/name"),
            ..Default::default()
        }),
        (None, Some(n)) => Ok(Attributes {
            verb: s(n, "/verb"),
            path: s(n, "/path"),
            ..Default::default()
        }),
    }
}

/// `status` of an access review for `decision`.
pub fn status_for(decision: &Decision) -> Value {
    match decision {
        Decision::Allow => json!({ "allowed": true }),
        Decision::Deny(reason) => json!({ "allowed": false, "denied": true, "reason": reason }),
        Decision::NoOpinion(reason) if reason.is_empty() => json!({ "allowed": false }),
        Decision::NoOpinion(reason) => json!({ "allowed": false, "reason": reason }),
    }
}

fn user_from_spec(spec: &Value) -> Result<UserInfo, Vec<FieldError>> {
    let name = s(spec, "/user");
    let groups: Vec<String> = spec
        .get("groups")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if name.is_empty() && groups.is_empty() {
        return Err(vec![FieldError::invalid(
            "spec.user",
            json!(""),
            "at least one of user or group must be specified",
        )]);
    }
    let extra: BTreeMap<String, Vec<String>> = spec
        .get("extra")
        .cloned()
        .and_then(|e| serde_json::from_value(e).ok())
        .unwrap_or_default();
    Ok(UserInfo {
        name,
        uid: s(spec, "/uid"),
        groups,
        extra,
    })
}

#[async_trait::async_trait]
impl CreateOnlyResource for AccessReview {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    async fn create(&self, req: &HookRequest<'_>, body: Value) -> Result<Value, HookError> {
        let mut body = decode_body(body, &self.info)?;
        let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
        let mut attrs = attributes_from_spec(&spec).map_err(HookError::Invalid)?;
        attrs.user = match self.flavor {
            Flavor::SelfSubject => req.user.clone(),
            Flavor::Subject | Flavor::Local => user_from_spec(&spec).map_err(HookError::Invalid)?,
        };
        if self.flavor == Flavor::Local {
            let ns = req.namespace.unwrap_or("");
            if !attrs.resource_request || attrs.namespace != ns {
                return Err(HookError::BadRequest(format!(
                    "spec.resourceAttributes.namespace must match namespace: {ns}"
                )));
            }
            body["metadata"]["namespace"] = json!(ns);
        }
        let decision = self.authorizer.authorize(&attrs).await;
        body["status"] = status_for(&decision);
        Ok(body)
    }
}

/// `SelfSubjectRulesReview`: the rules RBAC grants the caller in one namespace.
pub struct SelfSubjectRulesReview {
    info: ResourceInfo,
    rbac: Arc<RbacAuthorizer>,
}

impl SelfSubjectRulesReview {
    pub fn new(rbac: Arc<RbacAuthorizer>) -> Self {
        Self {
            info: review_info(
                GROUP,
                "SelfSubjectRulesReview",
                "selfsubjectrulesreviews",
                false,
            ),
            rbac,
        }
    }
}

#[async_trait::async_trait]
impl CreateOnlyResource for SelfSubjectRulesReview {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    async fn create(&self, req: &HookRequest<'_>, body: Value) -> Result<Value, HookError> {
        let mut body = decode_body(body, &self.info)?;
        let ns = s(&body, "/spec/namespace");
        if ns.is_empty() {
            return Err(HookError::BadRequest("no namespace on request".into()));
        }
        let mut resource_rules = Vec::new();
        let mut non_resource_rules = Vec::new();
        for r in self.rbac.rules_for(req.user, &ns) {
            if r.non_resource_urls.is_empty() {
                let mut o = json!({ "verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources });
                if !r.resource_names.is_empty() {
                    o["resourceNames"] = json!(r.resource_names);
                }
                resource_rules.push(o);
            } else {
                non_resource_rules
                    .push(json!({ "verbs": r.verbs, "nonResourceURLs": r.non_resource_urls }));
            }
        }
        body["status"] = json!({
            "resourceRules": resource_rules,
            "nonResourceRules": non_resource_rules,
            "incomplete": false,
        });
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_needs_exactly_one_kind_of_attributes() {
        let both =
            json!({"resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"path": "/x"}});
        let e = attributes_from_spec(&both).unwrap_err();
        assert_eq!(e[0].path, "spec.nonResourceAttributes");
        let none = attributes_from_spec(&json!({})).unwrap_err();
        assert_eq!(none[0].path, "spec.resourceAttributes");
        let a = attributes_from_spec(&json!({"resourceAttributes": {"verb": "get", "resource": "pods", "subresource": "log", "namespace": "ns"}})).unwrap();
        assert!(a.resource_request);
        assert_eq!(
            (
                a.resource.as_str(),
                a.subresource.as_str(),
                a.namespace.as_str()
            ),
            ("pods", "log", "ns")
        );
        let n = attributes_from_spec(
            &json!({"nonResourceAttributes": {"verb": "get", "path": "/healthz"}}),
        )
        .unwrap();
        assert!(!n.resource_request);
        assert_eq!(n.path, "/healthz");
    }

    #[test]
    fn subject_review_needs_user_or_group() {
        assert_eq!(user_from_spec(&json!({})).unwrap_err()[0].path, "spec.user");
        let u = user_from_spec(&json!({"groups": ["g"], "extra": {"k": ["v"]}})).unwrap();
        assert_eq!(u.groups, vec!["g"]);
        assert_eq!(u.extra["k"], vec!["v"]);
    }

    #[test]
    fn status_shapes() {
        assert_eq!(status_for(&Decision::Allow), json!({"allowed": true}));
        assert_eq!(
            status_for(&Decision::NoOpinion(String::new())),
            json!({"allowed": false})
        );
        assert_eq!(status_for(&Decision::Deny("no".into()))["denied"], true);
    }
}
