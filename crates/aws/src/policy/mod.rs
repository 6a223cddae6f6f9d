//! IAM policy documents: parsing into a typed form, and evaluation (`evaluate.rs`, `condition.rs`).
//!
//! The grammar is IAM's: `Version`, `Statement` (one object or an array), per statement `Sid`, `Effect`,
//! `Principal`/`NotPrincipal`, `Action`/`NotAction`, `Resource`/`NotResource`, `Condition`. Parsing
//! fails with the `MalformedPolicyDocument` wording IAM itself uses, so IAM's handlers can hand the
//! message through unchanged. Evaluation follows AWS's order: an explicit deny anywhere wins, then any
//! allow (identity policy within the permissions boundary, or a resource policy naming the principal),
//! otherwise the implicit deny.

pub mod condition;
pub mod evaluate;

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

pub use evaluate::{Decision, EvalPrincipal, EvalRequest, evaluate, is_allowed};

/// Versions IAM accepts. Policy variables are only substituted in `2012-10-17` documents.
pub const VERSION_2012: &str = "2012-10-17";
pub const VERSION_2008: &str = "2008-10-17";

/// Why a document was refused, in IAM's own words (the `MalformedPolicyDocument` message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

impl PolicyError {
    fn syntax() -> Self {
        Self("Syntax errors in policy.".into())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Principal`: `"*"` or a map of principal type (`AWS`, `Service`, `Federated`, `CanonicalUser`) to values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalSpec {
    Any,
    Typed(BTreeMap<String, Vec<String>>),
}

/// A pattern list that either must match (`Action`) or must not match (`NotAction`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    Is(Vec<String>),
    Not(Vec<String>),
}

/// One `Condition` entry: operator, key, the policy's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionClause {
    pub operator: condition::Operator,
    /// Condition keys are case-insensitive; kept lower-cased.
    pub key: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principal: Option<(bool, PrincipalSpec)>,
    pub action: Option<Matcher>,
    pub resource: Option<Matcher>,
    pub conditions: Vec<ConditionClause>,
}

impl Statement {
    /// True when this is `Principal` (false for `NotPrincipal`).
    pub fn has_principal(&self) -> bool {
        matches!(self.principal, Some((true, _)))
    }
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    pub version: Option<String>,
    pub statements: Vec<Statement>,
}

/// Evaluation-time values of condition keys (`aws:username`, `sts:ExternalId`, …). Keys are compared
/// case-insensitively (stored lower-cased); a key may carry several values (`aws:TagKeys`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextMap(HashMap<String, Vec<String>>);

impl ContextMap {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.insert(key, value);
        self
    }
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.0.insert(key.to_ascii_lowercase(), vec![value.into()]);
    }
    pub fn insert_many(&mut self, key: &str, values: Vec<String>) {
        self.0.insert(key.to_ascii_lowercase(), values);
    }
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.0.get(&key.to_ascii_lowercase()).map(Vec::as_slice)
    }
}

impl PolicyDocument {
    /// Parse a document's text (IAM answers `This policy contains invalid Json` for non-JSON).
    pub fn parse_str(text: &str) -> Result<Self, PolicyError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|_| PolicyError("This policy contains invalid Json".into()))?;
        Self::parse(&value)
    }

    pub fn parse(doc: &Value) -> Result<Self, PolicyError> {
        let obj = doc.as_object().ok_or_else(PolicyError::syntax)?;
        for key in obj.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(PolicyError::syntax());
            }
        }
        let version = match obj.get("Version") {
            None => None,
            Some(Value::String(v)) if v == VERSION_2012 || v == VERSION_2008 => Some(v.clone()),
            Some(_) => return Err(PolicyError::syntax()),
        };
        let raw_statements = match obj.get("Statement") {
            Some(Value::Array(items)) => items.iter().collect::<Vec<_>>(),
            Some(v @ Value::Object(_)) => vec![v],
            _ => return Err(PolicyError::syntax()),
        };
        let statements = raw_statements
            .into_iter()
            .map(parse_statement)
            .collect::<Result<Vec<_>, _>>()?;
        let mut sids = std::collections::HashSet::new();
        for s in &statements {
            if let Some(sid) = &s.sid
                && !sids.insert(sid.as_str())
            {
                return Err(PolicyError(
                    "Statement IDs (SID) in a single policy must be unique.".into(),
                ));
            }
        }
        Ok(Self {
            version,
            statements,
        })
    }

    /// Policy variables (`${aws:username}`) are only honoured in 2012-10-17 documents; older ones
    /// treat `${…}` as literal text.
    pub fn substitutes_variables(&self) -> bool {
        self.version.as_deref() == Some(VERSION_2012)
    }
}

fn string_list(v: &Value) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => Err(PolicyError::syntax()),
            })
            .collect(),
        _ => Err(PolicyError::syntax()),
    }
}

/// Condition values may be strings, numbers or booleans (`"aws:SecureTransport": true`).
fn condition_values(v: &Value) -> Result<Vec<String>, PolicyError> {
    let one = |i: &Value| match i {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(PolicyError::syntax()),
    };
    match v {
        Value::Array(items) => items.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

fn parse_principal(v: &Value) -> Result<PrincipalSpec, PolicyError> {
    match v {
        Value::String(s) if s == "*" => Ok(PrincipalSpec::Any),
        Value::Object(map) => {
            let mut out = BTreeMap::new();
            for (kind, values) in map {
                if !matches!(
                    kind.as_str(),
                    "AWS" | "Service" | "Federated" | "CanonicalUser"
                ) {
                    return Err(PolicyError(format!("Invalid principal in policy: {kind}")));
                }
                out.insert(kind.clone(), string_list(values)?);
            }
            Ok(PrincipalSpec::Typed(out))
        }
        _ => Err(PolicyError("Invalid principal in policy".into())),
    }
}

fn parse_statement(v: &Value) -> Result<Statement, PolicyError> {
    let obj = v.as_object().ok_or_else(PolicyError::syntax)?;
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        ) {
            return Err(PolicyError::syntax());
        }
    }
    let sid = match obj.get("Sid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(PolicyError::syntax()),
    };
    let effect = match obj.get("Effect") {
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        None => return Err(PolicyError("Missing required field Effect".into())),
        Some(_) => return Err(PolicyError::syntax()),
    };
    let principal = match (obj.get("Principal"), obj.get("NotPrincipal")) {
        (Some(_), Some(_)) => return Err(PolicyError::syntax()),
        (Some(p), None) => Some((true, parse_principal(p)?)),
        (None, Some(p)) => Some((false, parse_principal(p)?)),
        (None, None) => None,
    };
    let action = match (obj.get("Action"), obj.get("NotAction")) {
        (Some(_), Some(_)) => return Err(PolicyError::syntax()),
        (Some(a), None) => Some(Matcher::Is(string_list(a)?)),
        (None, Some(a)) => Some(Matcher::Not(string_list(a)?)),
        (None, None) => None,
    };
    if let Some(Matcher::Is(a) | Matcher::Not(a)) = &action {
        if a.is_empty() {
            return Err(PolicyError("Policy statement must contain actions.".into()));
        }
        for act in a {
            if act != "*" && act.split_once(':').is_none_or(|(v, _)| v.is_empty()) {
                return Err(PolicyError(
                    "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
                        .into(),
                ));
            }
        }
    }
    let resource = match (obj.get("Resource"), obj.get("NotResource")) {
        (Some(_), Some(_)) => return Err(PolicyError::syntax()),
        (Some(r), None) => Some(Matcher::Is(string_list(r)?)),
        (None, Some(r)) => Some(Matcher::Not(string_list(r)?)),
        (None, None) => None,
    };
    if let Some(Matcher::Is(rs) | Matcher::Not(rs)) = &resource {
        for r in rs {
            if r != "*" && !r.starts_with("arn:") {
                return Err(PolicyError(format!(
                    "Resource {r} must be in ARN format or \"*\"."
                )));
            }
        }
    }
    let mut conditions = Vec::new();
    match obj.get("Condition") {
        None => {}
        Some(Value::Object(ops)) => {
            for (op_name, block) in ops {
                let operator = condition::Operator::parse(op_name)
                    .ok_or_else(|| PolicyError(format!("Invalid Condition type : {op_name}.")))?;
                let block = block.as_object().ok_or_else(PolicyError::syntax)?;
                for (key, values) in block {
                    conditions.push(ConditionClause {
                        operator: operator.clone(),
                        key: key.to_ascii_lowercase(),
                        values: condition_values(values)?,
                    });
                }
            }
        }
        Some(_) => return Err(PolicyError::syntax()),
    }
    Ok(Statement {
        sid,
        effect,
        principal,
        action,
        resource,
        conditions,
    })
}

/// Replace `${key}` policy variables from the context. `${*}`, `${?}`, `${$}` are the escapes for
/// the literal characters; `${key, 'default'}` supplies a default. `None` when a variable has no
/// value: AWS then treats the element as not matching.
pub fn substitute_variables(text: &str, ctx: &ContextMap) -> Option<String> {
    if !text.contains("${") {
        return Some(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Some(out);
        };
        let inner = after[..end].trim();
        match inner {
            "*" | "?" | "$" => out.push_str(inner),
            _ => {
                let (name, default) = match inner.split_once(',') {
                    Some((n, d)) => (n.trim(), Some(d.trim().trim_matches('\'').to_string())),
                    None => (inner, None),
                };
                match ctx.get(name).and_then(|v| v.first()) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&default?),
                }
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_refuses_with_iam_wording() {
        let cases: &[(&str, &str)] = &[
            ("{oops", "This policy contains invalid Json"),
            (r#"{"Version":"2012-10-17"}"#, "Syntax errors in policy."),
            (
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Alow","Action":"s3:*","Resource":"*"}}"#,
                "Syntax errors in policy.",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":{"Action":"s3:*","Resource":"*"}}"#,
                "Missing required field Effect",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":[],"Resource":"*"}}"#,
                "Policy statement must contain actions.",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"GetObject","Resource":"*"}}"#,
                "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"bucket"}}"#,
                "Resource bucket must be in ARN format or \"*\".",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Sid":"a","Effect":"Allow","Action":"s3:*","Resource":"*"},{"Sid":"a","Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#,
                "Statement IDs (SID) in a single policy must be unique.",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqualz":{"a:b":"c"}}}}"#,
                "Invalid Condition type : StringEqualz.",
            ),
        ];
        for (doc, msg) in cases {
            let err = PolicyDocument::parse_str(doc).expect_err(doc);
            assert_eq!(err.0, *msg, "{doc}");
        }
    }

    #[test]
    fn parse_accepts_single_statement_and_lists() {
        let doc = PolicyDocument::parse_str(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["ec2:Describe*","s3:Get?bject"],"NotResource":"arn:aws:s3:::x","Condition":{"Bool":{"aws:SecureTransport":true},"NumericLessThan":{"s3:max-keys":10}}}}"#,
        )
        .unwrap();
        let s = &doc.statements[0];
        assert_eq!(s.effect, Effect::Allow);
        assert!(matches!(&s.resource, Some(Matcher::Not(r)) if r == &["arn:aws:s3:::x"]));
        assert_eq!(s.conditions.len(), 2);
        assert_eq!(s.conditions[0].key, "aws:securetransport");
        assert_eq!(s.conditions[0].values, vec!["true"]);
        assert_eq!(s.conditions[1].values, vec!["10"]);
    }

    #[test]
    fn variables_substitute_escape_and_default() {
        let ctx = ContextMap::new().with("aws:username", "alice");
        assert_eq!(
            substitute_variables("arn:aws:s3:::b/${aws:username}/*", &ctx).as_deref(),
            Some("arn:aws:s3:::b/alice/*")
        );
        assert_eq!(
            substitute_variables("a${*}b${?}${$}", &ctx).as_deref(),
            Some("a*b?$")
        );
        assert_eq!(substitute_variables("${aws:userid}", &ctx), None);
        assert_eq!(
            substitute_variables("${aws:userid, 'none'}", &ctx).as_deref(),
            Some("none")
        );
    }
}
