//! Condition operators: parsing `ForAnyValue:StringLikeIfExists` into its parts and testing one
//! condition clause against the request context.
//!
//! Semantics follow the IAM reference: a key missing from the context fails a positive operator and
//! satisfies a negated one (`StringNotEquals`), `…IfExists` makes a missing key pass, several policy
//! values are ORed (NORed for negated operators), `ForAnyValue:` needs one request value to pass,
//! `ForAllValues:` needs every one to (and passes on an empty or missing key).

use std::net::IpAddr;

use ipnet::IpNet;
use wildmatch::WildMatch;

use super::{ConditionClause, ContextMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    ArnLike,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    ForAnyValue,
    ForAllValues,
}

/// A parsed operator name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub base: Base,
    /// `StringNotEquals`, `NumericNotEquals`, `DateNotEquals`, `NotIpAddress`, `ArnNotEquals`/`ArnNotLike`.
    pub negated: bool,
    pub if_exists: bool,
    pub set: Option<SetQualifier>,
}

impl Operator {
    /// `None` for a name IAM does not know.
    pub fn parse(name: &str) -> Option<Self> {
        let (set, rest) = if let Some(r) = name.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), r)
        } else if let Some(r) = name.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::ForAllValues), r)
        } else {
            (None, name)
        };
        let (if_exists, rest) = match rest.strip_suffix("IfExists") {
            Some(r) if r != "Null" => (true, r),
            _ => (false, rest),
        };
        use Base::*;
        let (base, negated) = match rest {
            "StringEquals" => (StringEquals, false),
            "StringNotEquals" => (StringEquals, true),
            "StringEqualsIgnoreCase" => (StringEqualsIgnoreCase, false),
            "StringNotEqualsIgnoreCase" => (StringEqualsIgnoreCase, true),
            "StringLike" => (StringLike, false),
            "StringNotLike" => (StringLike, true),
            "NumericEquals" => (NumericEquals, false),
            "NumericNotEquals" => (NumericEquals, true),
            "NumericLessThan" => (NumericLessThan, false),
            "NumericLessThanEquals" => (NumericLessThanEquals, false),
            "NumericGreaterThan" => (NumericGreaterThan, false),
            "NumericGreaterThanEquals" => (NumericGreaterThanEquals, false),
            "DateEquals" => (DateEquals, false),
            "DateNotEquals" => (DateEquals, true),
            "DateLessThan" => (DateLessThan, false),
            "DateLessThanEquals" => (DateLessThanEquals, false),
            "DateGreaterThan" => (DateGreaterThan, false),
            "DateGreaterThanEquals" => (DateGreaterThanEquals, false),
            "Bool" => (Bool, false),
            "BinaryEquals" => (BinaryEquals, false),
            "IpAddress" => (IpAddress, false),
            "NotIpAddress" => (IpAddress, true),
            // IAM treats ArnEquals like ArnLike: both take wildcards per ARN component.
            "ArnEquals" | "ArnLike" => (ArnLike, false),
            "ArnNotEquals" | "ArnNotLike" => (ArnLike, true),
            "Null" => (Null, false),
            _ => return None,
        };
        Some(Self {
            base,
            negated,
            if_exists,
            set,
        })
    }
}

/// Does `clause` hold for `ctx`? Policy values have already had variables substituted.
pub fn holds(clause: &ConditionClause, policy_values: &[String], ctx: &ContextMap) -> bool {
    let op = &clause.operator;
    let request = ctx.get(&clause.key);
    if op.base == Base::Null {
        let absent = request.is_none_or(|v| v.is_empty());
        return policy_values.iter().any(|p| match p.as_str() {
            "true" => absent,
            "false" => !absent,
            _ => false,
        });
    }
    let request = match request {
        Some(v) if !v.is_empty() => v,
        _ => {
            return match op.set {
                Some(SetQualifier::ForAllValues) => true,
                Some(SetQualifier::ForAnyValue) => op.if_exists,
                None => op.if_exists || op.negated,
            };
        }
    };
    // One request value against the policy's values: positive ops OR, negated ops NOR.
    let value_passes = |rv: &str| {
        let any = policy_values.iter().any(|pv| matches_one(op.base, rv, pv));
        any != op.negated
    };
    match op.set {
        Some(SetQualifier::ForAllValues) => request.iter().all(|rv| value_passes(rv)),
        Some(SetQualifier::ForAnyValue) => request.iter().any(|rv| value_passes(rv)),
        None if op.negated => request.iter().all(|rv| value_passes(rv)),
        None => request.iter().any(|rv| value_passes(rv)),
    }
}

fn parse_date(s: &str) -> Option<jiff::Timestamp> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Some(t);
    }
    if let Ok(secs) = s.parse::<i64>() {
        return jiff::Timestamp::from_second(secs).ok();
    }
    // `2026-01-01` alone means midnight UTC.
    s.parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
}

fn arn_like(value: &str, pattern: &str) -> bool {
    let v: Vec<&str> = value.splitn(6, ':').collect();
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    if p.len() == 1 && p[0] == "*" {
        return true;
    }
    v.len() == 6 && p.len() == 6 && v.iter().zip(&p).all(|(v, p)| WildMatch::new(p).matches(v))
}

/// The un-negated comparison of one request value with one policy value.
fn matches_one(base: Base, rv: &str, pv: &str) -> bool {
    use Base::*;
    let num = |f: fn(f64, f64) -> bool| match (rv.parse::<f64>(), pv.parse::<f64>()) {
        (Ok(a), Ok(b)) => f(a, b),
        _ => false,
    };
    let date =
        |f: fn(jiff::Timestamp, jiff::Timestamp) -> bool| match (parse_date(rv), parse_date(pv)) {
            (Some(a), Some(b)) => f(a, b),
            _ => false,
        };
    match base {
        StringEquals => rv == pv,
        StringEqualsIgnoreCase => rv.eq_ignore_ascii_case(pv),
        StringLike => WildMatch::new(pv).matches(rv),
        NumericEquals => num(|a, b| a == b),
        NumericLessThan => num(|a, b| a < b),
        NumericLessThanEquals => num(|a, b| a <= b),
        NumericGreaterThan => num(|a, b| a > b),
        NumericGreaterThanEquals => num(|a, b| a >= b),
        DateEquals => date(|a, b| a == b),
        DateLessThan => date(|a, b| a < b),
        DateLessThanEquals => date(|a, b| a <= b),
        DateGreaterThan => date(|a, b| a > b),
        DateGreaterThanEquals => date(|a, b| a >= b),
        Bool => rv.eq_ignore_ascii_case(pv),
        BinaryEquals => rv == pv,
        IpAddress => {
            let Ok(ip) = rv.parse::<IpAddr>() else {
                return false;
            };
            match pv.parse::<IpNet>() {
                Ok(net) => net.contains(&ip),
                Err(_) => pv.parse::<IpAddr>().is_ok_and(|p| p == ip),
            }
        }
        ArnLike => arn_like(rv, pv),
        Null => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clause(op: &str, key: &str, values: &[&str]) -> ConditionClause {
        ConditionClause {
            operator: Operator::parse(op).unwrap(),
            key: key.to_ascii_lowercase(),
            values: values.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn check(op: &str, values: &[&str], ctx: &ContextMap) -> bool {
        let c = clause(op, "k:v", values);
        holds(&c, &c.values, ctx)
    }

    #[test]
    fn operator_names() {
        let op = Operator::parse("ForAnyValue:StringNotLikeIfExists").unwrap();
        assert_eq!(op.base, Base::StringLike);
        assert!(op.negated && op.if_exists);
        assert_eq!(op.set, Some(SetQualifier::ForAnyValue));
        assert!(Operator::parse("StringEqualz").is_none());
        assert!(Operator::parse("Null").is_some());
    }

    #[test]
    fn table() {
        let one = |v: &str| ContextMap::new().with("K:V", v);
        let many = |v: &[&str]| {
            let mut c = ContextMap::new();
            c.insert_many("k:v", v.iter().map(|s| s.to_string()).collect());
            c
        };
        let none = ContextMap::new();
        #[rustfmt::skip]
        let cases: Vec<(&str, Vec<&str>, ContextMap, bool)> = vec![
            ("StringEquals", vec!["a"], one("a"), true),
            ("StringEquals", vec!["a"], one("A"), false),
            ("StringEquals", vec!["x", "a"], one("a"), true),
            ("StringEquals", vec!["a"], none.clone(), false),
            ("StringEqualsIfExists", vec!["a"], none.clone(), true),
            ("StringNotEquals", vec!["a"], one("b"), true),
            ("StringNotEquals", vec!["a", "b"], one("b"), false),
            ("StringNotEquals", vec!["a"], none.clone(), true),
            ("StringEqualsIgnoreCase", vec!["abc"], one("ABC"), true),
            ("StringLike", vec!["system:serviceaccount:kube-system:*"], one("system:serviceaccount:kube-system:aws-node"), true),
            ("StringLike", vec!["a?c"], one("abc"), true),
            ("StringLike", vec!["a?c"], one("abbc"), false),
            ("StringNotLike", vec!["dev-*"], one("prod-1"), true),
            ("NumericLessThan", vec!["10"], one("9"), true),
            ("NumericLessThan", vec!["10"], one("10"), false),
            ("NumericLessThanEquals", vec!["10"], one("10"), true),
            ("NumericGreaterThan", vec!["10"], one("ten"), false),
            ("NumericNotEquals", vec!["3"], one("4"), true),
            ("DateGreaterThan", vec!["2026-01-01T00:00:00Z"], one("2026-06-01T00:00:00Z"), true),
            ("DateLessThan", vec!["2026-01-01"], one("1767225599"), true),
            ("DateEquals", vec!["1767225600"], one("2026-01-01T00:00:00Z"), true),
            ("Bool", vec!["true"], one("true"), true),
            ("Bool", vec!["true"], one("false"), false),
            ("IpAddress", vec!["10.0.0.0/8"], one("10.1.2.3"), true),
            ("IpAddress", vec!["10.0.0.0/8"], one("192.168.0.1"), false),
            ("NotIpAddress", vec!["10.0.0.0/8"], one("192.168.0.1"), true),
            ("IpAddress", vec!["2001:db8::/32"], one("2001:db8::1"), true),
            ("ArnLike", vec!["arn:aws:iam::*:role/eks-*"], one("arn:aws:iam::000000000000:role/eks-node"), true),
            ("ArnEquals", vec!["arn:aws:iam::111111111111:role/x"], one("arn:aws:iam::000000000000:role/x"), false),
            ("ArnNotLike", vec!["arn:aws:iam::*:role/eks-*"], one("arn:aws:iam::000000000000:user/bob"), true),
            ("ArnLike", vec!["arn:aws:iam::*:role/x"], one("not-an-arn"), false),
            ("Null", vec!["true"], none.clone(), true),
            ("Null", vec!["true"], one("x"), false),
            ("Null", vec!["false"], one("x"), true),
            ("ForAnyValue:StringEquals", vec!["a"], many(&["b", "a"]), true),
            ("ForAnyValue:StringEquals", vec!["a"], many(&["b", "c"]), false),
            ("ForAnyValue:StringEquals", vec!["a"], none.clone(), false),
            ("ForAllValues:StringEquals", vec!["a", "b"], many(&["b", "a"]), true),
            ("ForAllValues:StringEquals", vec!["a", "b"], many(&["a", "c"]), false),
            ("ForAllValues:StringEquals", vec!["a"], none.clone(), true),
            ("ForAllValues:StringNotEquals", vec!["x"], many(&["a", "b"]), true),
            ("ForAnyValue:StringNotEquals", vec!["a"], many(&["a", "b"]), true),
            ("StringNotEquals", vec!["a"], many(&["a", "b"]), false),
        ];
        for (op, values, ctx, want) in cases {
            assert_eq!(check(op, &values, &ctx), want, "{op} {values:?} {ctx:?}");
        }
    }
}
