//! Validation of the documents IAM accepts: permission policies (managed, inline, boundaries) and
//! trust policies (`AssumeRolePolicyDocument`), with IAM's `MalformedPolicyDocument` wording.

use super::common::{IamError, IamResult};
use crate::policy::{Matcher, PolicyDocument};

/// Size quotas (characters, whitespace included as IAM counts them).
pub const MANAGED_POLICY_MAX: usize = 6144;
pub const ROLE_INLINE_MAX: usize = 10240;
pub const USER_INLINE_MAX: usize = 2048;
pub const GROUP_INLINE_MAX: usize = 5120;
pub const TRUST_POLICY_MAX: usize = 2048;

fn malformed(msg: impl Into<String>) -> IamError {
    IamError::MalformedPolicyDocument(msg.into())
}

/// A permission policy: no `Principal`, every statement has actions and resources, and a Version.
pub fn validate_permissions(text: &str, quota_name: &str, max: usize) -> IamResult<PolicyDocument> {
    if text.chars().filter(|c| !c.is_whitespace()).count() > max {
        return Err(IamError::LimitExceeded(format!(
            "Cannot exceed quota for {quota_name}: {max}"
        )));
    }
    let doc = PolicyDocument::parse_str(text).map_err(|e| malformed(e.0))?;
    if doc.version.is_none() {
        return Err(malformed(
            "Policy document must be version 2012-10-17 or greater.",
        ));
    }
    for s in &doc.statements {
        if s.principal.is_some() {
            return Err(malformed("Policy document should not specify a principal."));
        }
        if s.action.is_none() {
            return Err(malformed("Policy statement must contain actions."));
        }
        if s.resource.is_none() {
            return Err(malformed("Policy statement must contain resources."));
        }
    }
    Ok(doc)
}

/// A role's trust policy: every statement names a principal, no resources, only STS assume actions.
pub fn validate_trust(text: &str) -> IamResult<PolicyDocument> {
    if text.chars().filter(|c| !c.is_whitespace()).count() > TRUST_POLICY_MAX {
        return Err(IamError::LimitExceeded(format!(
            "Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_MAX}"
        )));
    }
    let doc = PolicyDocument::parse_str(text).map_err(|e| malformed(e.0))?;
    for s in &doc.statements {
        if s.principal.is_none() {
            return Err(malformed("Missing required field Principal"));
        }
        if s.resource.is_some() {
            return Err(malformed("Has prohibited field Resource"));
        }
        match &s.action {
            None => return Err(malformed("Missing required field Action")),
            Some(Matcher::Is(actions)) => {
                for a in actions {
                    let lower = a.to_ascii_lowercase();
                    if !(lower == "*" || lower.starts_with("sts:")) {
                        return Err(malformed(
                            "AssumeRole policy may only specify STS AssumeRole actions.",
                        ));
                    }
                }
            }
            Some(Matcher::Not(_)) => {}
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

    fn msg(r: IamResult<PolicyDocument>) -> String {
        match r {
            Err(IamError::MalformedPolicyDocument(m) | IamError::LimitExceeded(m)) => m,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn permissions() {
        let ok = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"eks:*","Resource":"*"}]}"#;
        assert!(validate_permissions(ok, "PolicySize", MANAGED_POLICY_MAX).is_ok());
        let cases = [
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"eks:*","Resource":"*"}]}"#,
                "Policy document must be version 2012-10-17 or greater.",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
                "Policy statement must contain actions.",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*"}]}"#,
                "Policy statement must contain resources.",
            ),
            (TRUST, "Policy document should not specify a principal."),
            ("not json", "This policy contains invalid Json"),
        ];
        for (doc, want) in cases {
            assert_eq!(
                msg(validate_permissions(doc, "PolicySize", MANAGED_POLICY_MAX)),
                want
            );
        }
        let big = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::{}"}}]}}"#,
            "a".repeat(7000)
        );
        assert_eq!(
            msg(validate_permissions(&big, "PolicySize", MANAGED_POLICY_MAX)),
            "Cannot exceed quota for PolicySize: 6144"
        );
    }

    #[test]
    fn trust() {
        assert!(validate_trust(TRUST).is_ok());
        let cases = [
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}"#,
                "Missing required field Principal",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Resource":"*"}]}"#,
                "Has prohibited field Resource",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}]}"#,
                "AssumeRole policy may only specify STS AssumeRole actions.",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Bogus":"x"},"Action":"sts:AssumeRole"}]}"#,
                "Invalid principal in policy: Bogus",
            ),
        ];
        for (doc, want) in cases {
            assert_eq!(msg(validate_trust(doc)), want);
        }
    }
}
