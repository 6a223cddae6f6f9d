//! The evaluation logic: explicit deny > allow > implicit deny, over identity policies, an optional
//! resource policy (a trust policy is one) and an optional permissions boundary.

use wildmatch::WildMatch;

use skiff_aws_model::AwsError;
use skiff_store::Store;

use super::{
    ContextMap, Effect, Matcher, PolicyDocument, PrincipalSpec, Statement, condition,
    substitute_variables,
};
use crate::context::Caller;

/// The outcome of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// A matching `Deny` statement: nothing can override it.
    ExplicitDeny,
    /// No statement allowed the request.
    ImplicitDeny,
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allow
    }
}

/// Who is asking, as `Principal` elements see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalPrincipal {
    /// An IAM identity: root, a user, or an assumed-role session. `role_arn` is the role's own ARN
    /// (with its path) for sessions, which is what trust and resource policies name.
    Aws {
        arn: String,
        account: String,
        role_arn: Option<String>,
    },
    /// An AWS service (`eks.amazonaws.com`).
    Service(String),
    /// A web identity federated through an IAM OIDC provider (the provider's ARN).
    Federated(String),
}

/// One request to authorize.
#[derive(Debug, Clone)]
pub struct EvalRequest<'a> {
    pub principal: &'a EvalPrincipal,
    pub action: &'a str,
    pub resource: &'a str,
    pub context: &'a ContextMap,
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn principal_matches(spec: &PrincipalSpec, who: &EvalPrincipal) -> bool {
    let PrincipalSpec::Typed(map) = spec else {
        return true;
    };
    map.iter().any(|(kind, values)| {
        values.iter().any(|v| match (kind.as_str(), who) {
            ("AWS", EvalPrincipal::Aws { .. }) if v == "*" => true,
            (
                "AWS",
                EvalPrincipal::Aws {
                    arn,
                    account,
                    role_arn,
                },
            ) => {
                if is_account_id(v) {
                    return v == account;
                }
                if let Some(acct) = v
                    .strip_prefix("arn:aws:iam::")
                    .and_then(|r| r.strip_suffix(":root"))
                {
                    return acct == account;
                }
                v == arn || role_arn.as_deref() == Some(v.as_str())
            }
            ("Service", EvalPrincipal::Service(s)) => v == "*" || v == s,
            ("Federated", EvalPrincipal::Federated(p)) => v == "*" || v == p,
            _ => false,
        })
    })
}

fn patterns_match(
    patterns: &[String],
    value: &str,
    ctx: &ContextMap,
    subst: bool,
    case_insensitive: bool,
) -> bool {
    patterns.iter().any(|p| {
        let p = if subst {
            match substitute_variables(p, ctx) {
                Some(p) => p,
                None => return false,
            }
        } else {
            p.clone()
        };
        if case_insensitive {
            WildMatch::new_case_insensitive(&p).matches(value)
        } else {
            WildMatch::new(&p).matches(value)
        }
    })
}

/// Does `s` apply to `req`? `as_resource_policy` requires a `Principal`/`NotPrincipal` to match.
fn applies(s: &Statement, req: &EvalRequest<'_>, subst: bool, as_resource_policy: bool) -> bool {
    let ctx = req.context;
    let action_ok = match &s.action {
        Some(Matcher::Is(p)) => patterns_match(p, req.action, ctx, false, true),
        Some(Matcher::Not(p)) => !patterns_match(p, req.action, ctx, false, true),
        None => false,
    };
    if !action_ok {
        return false;
    }
    let resource_ok = match &s.resource {
        Some(Matcher::Is(p)) => patterns_match(p, req.resource, ctx, subst, false),
        Some(Matcher::Not(p)) => !patterns_match(p, req.resource, ctx, subst, false),
        // Trust policies carry no Resource: the role itself is the resource.
        None => as_resource_policy,
    };
    if !resource_ok {
        return false;
    }
    let principal_ok = match &s.principal {
        Some((true, spec)) => principal_matches(spec, req.principal),
        Some((false, spec)) => !principal_matches(spec, req.principal),
        None => !as_resource_policy,
    };
    if !principal_ok {
        return false;
    }
    s.conditions.iter().all(|c| {
        let values: Vec<String> = if subst {
            c.values
                .iter()
                .filter_map(|v| substitute_variables(v, ctx))
                .collect()
        } else {
            c.values.clone()
        };
        condition::holds(c, &values, ctx)
    })
}

/// (any matching Deny, any matching Allow) for one document.
fn scan(doc: &PolicyDocument, req: &EvalRequest<'_>, as_resource_policy: bool) -> (bool, bool) {
    let subst = doc.substitutes_variables();
    let mut deny = false;
    let mut allow = false;
    for s in &doc.statements {
        if applies(s, req, subst, as_resource_policy) {
            match s.effect {
                Effect::Deny => deny = true,
                Effect::Allow => allow = true,
            }
        }
    }
    (deny, allow)
}

/// Evaluate a request against the caller's identity policies, the target's resource policy (a role's
/// trust policy for `sts:AssumeRole*`) and the caller's permissions boundary.
///
/// An identity allow counts only inside the boundary; a resource-policy allow stands on its own.
pub fn evaluate(
    req: &EvalRequest<'_>,
    identity: &[&PolicyDocument],
    resource: Option<&PolicyDocument>,
    boundary: Option<&PolicyDocument>,
) -> Decision {
    let mut identity_allow = false;
    for doc in identity {
        let (deny, allow) = scan(doc, req, false);
        if deny {
            return Decision::ExplicitDeny;
        }
        identity_allow |= allow;
    }
    let mut resource_allow = false;
    if let Some(doc) = resource {
        let (deny, allow) = scan(doc, req, true);
        if deny {
            return Decision::ExplicitDeny;
        }
        resource_allow = allow;
    }
    let mut within_boundary = true;
    if let Some(doc) = boundary {
        let (deny, allow) = scan(doc, req, false);
        if deny {
            return Decision::ExplicitDeny;
        }
        within_boundary = allow;
    }
    if (identity_allow && within_boundary) || resource_allow {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

/// The gateway's `--enforce-iam` check: may `caller` perform `action` on `resource`?
///
/// Root is always allowed (as on AWS). Users are judged by their attached and inline policies and
/// those of their groups; assumed-role sessions by their role's; both within their permissions
/// boundary. The global condition keys `aws:username`, `aws:userid`, `aws:PrincipalArn`,
/// `aws:PrincipalAccount`, `aws:CurrentTime` and `aws:EpochTime` are added to `context`.
pub async fn is_allowed(
    store: &dyn Store,
    caller: &Caller,
    action: &str,
    resource: &str,
    context: &ContextMap,
) -> Result<Decision, AwsError> {
    let Some(identity) = crate::iam::identity::load(store, caller).await? else {
        return Ok(Decision::Allow);
    };
    let mut ctx = context.clone();
    ctx.insert("aws:userid", caller.user_id.clone());
    ctx.insert("aws:PrincipalAccount", caller.account_id.clone());
    ctx.insert(
        "aws:PrincipalArn",
        identity
            .role_arn
            .clone()
            .unwrap_or_else(|| caller.arn.clone()),
    );
    if let Some(name) = &identity.user_name {
        ctx.insert("aws:username", name.clone());
    }
    let now = jiff::Timestamp::now();
    ctx.insert("aws:CurrentTime", now.to_string());
    ctx.insert("aws:EpochTime", now.as_second().to_string());
    let principal = EvalPrincipal::Aws {
        arn: caller.arn.clone(),
        account: caller.account_id.clone(),
        role_arn: identity.role_arn.clone(),
    };
    let req = EvalRequest {
        principal: &principal,
        action,
        resource,
        context: &ctx,
    };
    let docs: Vec<&PolicyDocument> = identity.policies.iter().collect();
    let decision = evaluate(&req, &docs, None, identity.boundary.as_ref());
    // Session policies (AssumeRole `Policy`/`PolicyArns`) narrow the session further: their union
    // must allow the request too.
    let session: Vec<PolicyDocument> = crate::sts::session_policies(store, &caller.access_key_id)
        .await?
        .iter()
        .filter_map(|t| PolicyDocument::parse_str(t).ok())
        .collect();
    if decision != Decision::Allow || session.is_empty() {
        return Ok(decision);
    }
    let session_refs: Vec<&PolicyDocument> = session.iter().collect();
    Ok(evaluate(&req, &session_refs, None, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> PolicyDocument {
        PolicyDocument::parse_str(text).unwrap()
    }

    fn user(name: &str) -> EvalPrincipal {
        EvalPrincipal::Aws {
            arn: format!("arn:aws:iam::000000000000:user/{name}"),
            account: "000000000000".into(),
            role_arn: None,
        }
    }

    const ALLOW_EC2: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:Describe*","Resource":"*"}]}"#;
    const DENY_VPCS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"ec2:DescribeVpcs","Resource":"*"}]}"#;
    const NOT_ACTION: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}"#;
    const HOME: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::home/${aws:username}/*"}]}"#;
    const HOME_2008: &str = r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::home/${aws:username}/*"}]}"#;
    const NOT_RESOURCE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","NotResource":"arn:aws:s3:::secret/*"}]}"#;
    const TRUST_EC2: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    const TRUST_ACCOUNT_EXT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"abc"}}}]}"#;
    const TRUST_NOT_BOB: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"},{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::000000000000:user/alice"},"Action":"sts:AssumeRole"}]}"#;

    #[test]
    fn table() {
        let alice = user("alice");
        let bob = user("bob");
        let ec2 = EvalPrincipal::Service("ec2.amazonaws.com".into());
        let ctx_alice = ContextMap::new().with("aws:username", "alice");
        let ext_ok = ContextMap::new().with("sts:ExternalId", "abc");
        let ext_bad = ContextMap::new().with("sts:ExternalId", "zzz");
        let none = ContextMap::new();
        type Case<'a> = (
            &'a str,
            &'a EvalPrincipal,
            &'a str,
            &'a str,
            &'a ContextMap,
            Vec<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
            Decision,
        );
        #[rustfmt::skip]
        let cases: Vec<Case<'_>> = vec![
            ("no policy", &alice, "ec2:DescribeVpcs", "*", &none, vec![], None, None, Decision::ImplicitDeny),
            ("wildcard action", &alice, "ec2:DescribeVpcs", "*", &none, vec![ALLOW_EC2], None, None, Decision::Allow),
            ("actions are case-insensitive", &alice, "EC2:describevpcs", "*", &none, vec![ALLOW_EC2], None, None, Decision::Allow),
            ("other service", &alice, "s3:GetObject", "*", &none, vec![ALLOW_EC2], None, None, Decision::ImplicitDeny),
            ("explicit deny wins", &alice, "ec2:DescribeVpcs", "*", &none, vec![ALLOW_EC2, DENY_VPCS], None, None, Decision::ExplicitDeny),
            ("deny only where it matches", &alice, "ec2:DescribeSubnets", "*", &none, vec![ALLOW_EC2, DENY_VPCS], None, None, Decision::Allow),
            ("NotAction allows others", &alice, "eks:CreateCluster", "*", &none, vec![NOT_ACTION], None, None, Decision::Allow),
            ("NotAction excludes", &alice, "iam:CreateUser", "*", &none, vec![NOT_ACTION], None, None, Decision::ImplicitDeny),
            ("variable matches", &alice, "s3:GetObject", "arn:aws:s3:::home/alice/f", &ctx_alice, vec![HOME], None, None, Decision::Allow),
            ("variable other user", &alice, "s3:GetObject", "arn:aws:s3:::home/bob/f", &ctx_alice, vec![HOME], None, None, Decision::ImplicitDeny),
            ("variable unresolved", &alice, "s3:GetObject", "arn:aws:s3:::home/alice/f", &none, vec![HOME], None, None, Decision::ImplicitDeny),
            ("2008 treats variables literally", &alice, "s3:GetObject", "arn:aws:s3:::home/alice/f", &ctx_alice, vec![HOME_2008], None, None, Decision::ImplicitDeny),
            ("NotResource allows others", &alice, "s3:GetObject", "arn:aws:s3:::pub/x", &none, vec![NOT_RESOURCE], None, None, Decision::Allow),
            ("NotResource excludes", &alice, "s3:GetObject", "arn:aws:s3:::secret/x", &none, vec![NOT_RESOURCE], None, None, Decision::ImplicitDeny),
            ("boundary limits", &alice, "ec2:DescribeVpcs", "*", &none, vec![NOT_ACTION], None, Some(HOME), Decision::ImplicitDeny),
            ("boundary permits", &alice, "ec2:DescribeVpcs", "*", &none, vec![NOT_ACTION], None, Some(ALLOW_EC2), Decision::Allow),
            ("boundary alone grants nothing", &alice, "ec2:DescribeVpcs", "*", &none, vec![], None, Some(ALLOW_EC2), Decision::ImplicitDeny),
            ("trust service", &ec2, "sts:AssumeRole", "arn:aws:iam::000000000000:role/r", &none, vec![], Some(TRUST_EC2), None, Decision::Allow),
            ("trust service, user", &alice, "sts:AssumeRole", "arn:aws:iam::000000000000:role/r", &none, vec![], Some(TRUST_EC2), None, Decision::ImplicitDeny),
            ("trust account + external id", &alice, "sts:AssumeRole", "arn:aws:iam::000000000000:role/r", &ext_ok, vec![], Some(TRUST_ACCOUNT_EXT), None, Decision::Allow),
            ("trust wrong external id", &alice, "sts:AssumeRole", "arn:aws:iam::000000000000:role/r", &ext_bad, vec![], Some(TRUST_ACCOUNT_EXT), None, Decision::ImplicitDeny),
            ("trust missing external id", &alice, "sts:AssumeRole", "arn:aws:iam::000000000000:role/r", &none, vec![], Some(TRUST_ACCOUNT_EXT), None, Decision::ImplicitDeny),
            ("NotPrincipal spares alice", &alice, "sts:AssumeRole", "arn:aws:iam::000000000000:role/r", &none, vec![], Some(TRUST_NOT_BOB), None, Decision::Allow),
            ("NotPrincipal denies bob", &bob, "sts:AssumeRole", "arn:aws:iam::000000000000:role/r", &none, vec![], Some(TRUST_NOT_BOB), None, Decision::ExplicitDeny),
            ("resource policy without trust action", &alice, "sts:TagSession", "arn:aws:iam::000000000000:role/r", &ext_ok, vec![], Some(TRUST_ACCOUNT_EXT), None, Decision::ImplicitDeny),
        ];
        for (name, who, action, resource, ctx, ids, res, bnd, want) in cases {
            let ids: Vec<PolicyDocument> = ids.into_iter().map(doc).collect();
            let refs: Vec<&PolicyDocument> = ids.iter().collect();
            let res = res.map(doc);
            let bnd = bnd.map(doc);
            let req = EvalRequest {
                principal: who,
                action,
                resource,
                context: ctx,
            };
            assert_eq!(
                evaluate(&req, &refs, res.as_ref(), bnd.as_ref()),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn role_session_matches_role_arn_and_other_account_does_not() {
        let trust = doc(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::000000000000:role/ops/admin"]},"Action":"sts:AssumeRole"}}"#,
        );
        let session = EvalPrincipal::Aws {
            arn: "arn:aws:sts::000000000000:assumed-role/admin/s1".into(),
            account: "000000000000".into(),
            role_arn: Some("arn:aws:iam::000000000000:role/ops/admin".into()),
        };
        let stranger = EvalPrincipal::Aws {
            arn: "arn:aws:iam::111111111111:user/admin".into(),
            account: "111111111111".into(),
            role_arn: None,
        };
        let ctx = ContextMap::new();
        for (who, want) in [
            (&session, Decision::Allow),
            (&stranger, Decision::ImplicitDeny),
        ] {
            let req = EvalRequest {
                principal: who,
                action: "sts:AssumeRole",
                resource: "arn:aws:iam::000000000000:role/x",
                context: &ctx,
            };
            assert_eq!(evaluate(&req, &[], Some(&trust), None), want);
        }
    }
}
