//! Model constraints (`required`, `min`, `max`, `pattern`, `enum`) checked before a handler runs, and
//! the service's own wording for a violation.
//!
//! Query and JSON services answer like Coral does: `ValidationError` (query) / `ValidationException`
//! (json) with "1 validation error detected: Value null at 'roleName' failed to satisfy constraint:
//! Member must not be null". EC2 answers `MissingParameter` / `InvalidParameterValue` instead, naming the
//! wire parameter.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use regex::Regex;
use serde_json::Value;

use crate::AwsError;
use crate::model::{Protocol, ServiceModel, Shape, ShapeType};

#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    Required,
    MinLength(f64),
    MaxLength(f64),
    MinValue(f64),
    MaxValue(f64),
    Pattern(String),
    Enum(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// Coral-style path: lower-camel member names joined by `.` (`tags.1.member.key`).
    pub path: String,
    /// The member's own name as the model spells it (EC2 messages name it).
    pub member: String,
    pub value: Option<Value>,
    pub constraint: Constraint,
}

/// Every violation of `value` against the shape `shape_name`, in member order.
pub fn validate(model: &ServiceModel, shape_name: &str, value: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    if let Some(shape) = model.shape(shape_name) {
        check(model, shape, value, "", "", &mut out);
    }
    out
}

fn lower_camel(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn join(path: &str, seg: &str) -> String {
    if path.is_empty() {
        seg.to_string()
    } else {
        format!("{path}.{seg}")
    }
}

fn check(
    model: &ServiceModel,
    shape: &Shape,
    value: &Value,
    path: &str,
    member: &str,
    out: &mut Vec<Violation>,
) {
    let mut push = |constraint| {
        out.push(Violation {
            path: path.to_string(),
            member: member.to_string(),
            value: Some(value.clone()),
            constraint,
        })
    };
    match shape.kind {
        ShapeType::String => {
            if let Some(s) = value.as_str() {
                let len = s.chars().count() as f64;
                if let Some(min) = shape.min.filter(|m| len < *m) {
                    push(Constraint::MinLength(min));
                }
                if let Some(max) = shape.max.filter(|m| len > *m) {
                    push(Constraint::MaxLength(max));
                }
                if let Some(p) = &shape.pattern
                    && pattern(p).is_some_and(|re| !re.is_match(s))
                {
                    push(Constraint::Pattern(p.clone()));
                }
                if !shape.enum_values.is_empty() && !shape.enum_values.iter().any(|e| e == s) {
                    push(Constraint::Enum(shape.enum_values.clone()));
                }
            }
        }
        ShapeType::Integer | ShapeType::Long | ShapeType::Float | ShapeType::Double => {
            if let Some(n) = value.as_f64() {
                if let Some(min) = shape.min.filter(|m| n < *m) {
                    push(Constraint::MinValue(min));
                }
                if let Some(max) = shape.max.filter(|m| n > *m) {
                    push(Constraint::MaxValue(max));
                }
            }
        }
        ShapeType::Blob => {
            if let Some(s) = value.as_str() {
                // Lengths of blobs count decoded bytes.
                let len = (s.trim_end_matches('=').len() * 3 / 4) as f64;
                if let Some(min) = shape.min.filter(|m| len < *m) {
                    push(Constraint::MinLength(min));
                }
                if let Some(max) = shape.max.filter(|m| len > *m) {
                    push(Constraint::MaxLength(max));
                }
            }
        }
        ShapeType::List => {
            if let Some(items) = value.as_array() {
                let len = items.len() as f64;
                if let Some(min) = shape.min.filter(|m| len < *m) {
                    push(Constraint::MinLength(min));
                }
                if let Some(max) = shape.max.filter(|m| len > *m) {
                    push(Constraint::MaxLength(max));
                }
                if let Some(m) = shape.member.as_ref().and_then(|r| model.shape(&r.shape)) {
                    for (i, item) in items.iter().enumerate() {
                        let p = join(path, &format!("{}.member", i + 1));
                        check(model, m, item, &p, member, out);
                    }
                }
            }
        }
        ShapeType::Map => {
            if let Some(map) = value.as_object() {
                let len = map.len() as f64;
                if let Some(min) = shape.min.filter(|m| len < *m) {
                    push(Constraint::MinLength(min));
                }
                if let Some(max) = shape.max.filter(|m| len > *m) {
                    push(Constraint::MaxLength(max));
                }
                let key_shape = shape.key.as_ref().and_then(|r| model.shape(&r.shape));
                let value_shape = shape.value.as_ref().and_then(|r| model.shape(&r.shape));
                for (k, v) in map {
                    if let Some(ks) = key_shape {
                        check(
                            model,
                            ks,
                            &Value::String(k.clone()),
                            &join(path, "key"),
                            member,
                            out,
                        );
                    }
                    if let Some(vs) = value_shape {
                        check(
                            model,
                            vs,
                            v,
                            &join(path, &format!("{k}.member")),
                            member,
                            out,
                        );
                    }
                }
            }
        }
        ShapeType::Structure => {
            let obj = value.as_object();
            for (name, r) in &shape.members {
                let p = join(path, &lower_camel(name));
                match obj.and_then(|o| o.get(name)) {
                    Some(v) if !v.is_null() => {
                        if let Some(s) = model.shape(&r.shape) {
                            check(model, s, v, &p, name, out);
                        }
                    }
                    _ if shape.required.iter().any(|x| x == name) => out.push(Violation {
                        path: p,
                        member: name.clone(),
                        value: None,
                        constraint: Constraint::Required,
                    }),
                    _ => {}
                }
            }
        }
        ShapeType::Boolean | ShapeType::Timestamp => {}
    }
}

/// Compiled model patterns, cached; `None` for patterns the `regex` crate cannot express (Java
/// lookarounds), which are then not enforced rather than wrongly enforced.
fn pattern(p: &str) -> Option<Arc<Regex>> {
    static CACHE: LazyLock<Mutex<HashMap<String, Option<Arc<Regex>>>>> =
        LazyLock::new(Default::default);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(p.to_string())
        .or_insert_with(|| Regex::new(&format!("^(?:{p})$")).ok().map(Arc::new))
        .clone()
}

fn render_value(v: &Option<Value>) -> String {
    match v {
        None | Some(Value::Null) => "null".into(),
        Some(Value::String(s)) => format!("'{s}'"),
        Some(other) => format!("'{other}'"),
    }
}

fn num(f: f64) -> String {
    if f.fract() == 0.0 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

fn coral_constraint(c: &Constraint) -> String {
    match c {
        Constraint::Required => "Member must not be null".into(),
        Constraint::MinLength(m) => format!(
            "Member must have length greater than or equal to {}",
            num(*m)
        ),
        Constraint::MaxLength(m) => {
            format!("Member must have length less than or equal to {}", num(*m))
        }
        Constraint::MinValue(m) => format!(
            "Member must have value greater than or equal to {}",
            num(*m)
        ),
        Constraint::MaxValue(m) => {
            format!("Member must have value less than or equal to {}", num(*m))
        }
        Constraint::Pattern(p) => format!("Member must satisfy regular expression pattern: {p}"),
        Constraint::Enum(v) => format!("Member must satisfy enum value set: [{}]", v.join(", ")),
    }
}

/// The error a protocol answers for these violations (None when there are none).
pub fn to_error(model: &ServiceModel, violations: &[Violation]) -> Option<AwsError> {
    let first = violations.first()?;
    if model.protocol == Protocol::Ec2 {
        return Some(match &first.constraint {
            Constraint::Required => AwsError::new(
                "MissingParameter",
                format!("The request must contain the parameter {}", first.member),
            ),
            _ => AwsError::new(
                "InvalidParameterValue",
                format!(
                    "Value ({}) for parameter {} is invalid. {}",
                    first
                        .value
                        .as_ref()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                        .unwrap_or_default(),
                    lower_camel(&first.member),
                    coral_constraint(&first.constraint)
                ),
            ),
        });
    }
    let code = match model.protocol {
        Protocol::Query => "ValidationError",
        Protocol::RestXml => "InvalidInput",
        _ => "ValidationException",
    };
    let n = violations.len();
    let details: Vec<String> = violations
        .iter()
        .map(|v| {
            format!(
                "Value {} at '{}' failed to satisfy constraint: {}",
                render_value(&v.value),
                v.path,
                coral_constraint(&v.constraint)
            )
        })
        .collect();
    let plural = if n == 1 { "error" } else { "errors" };
    Some(AwsError::new(
        code,
        format!("{n} validation {plural} detected: {}", details.join("; ")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::service;
    use serde_json::json;

    #[test]
    fn missing_required_member_in_coral_words() {
        let iam = service("iam").expect("iam");
        let v = validate(iam, "GetRoleRequest", &json!({}));
        let err = to_error(iam, &v).expect("violation");
        assert_eq!(err.code, "ValidationError");
        assert_eq!(
            err.message,
            "1 validation error detected: Value null at 'roleName' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn length_pattern_and_enum() {
        let iam = service("iam").expect("iam");
        let long = "a".repeat(65);
        let v = validate(iam, "GetRoleRequest", &json!({"RoleName": long}));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].constraint, Constraint::MaxLength(64.0));
        let v = validate(iam, "GetRoleRequest", &json!({"RoleName": "bad name!"}));
        assert!(matches!(v[0].constraint, Constraint::Pattern(_)));
        let eks = service("eks").expect("eks");
        let v = validate(
            eks,
            "CreateNodegroupRequest",
            &json!({"clusterName": "c", "nodegroupName": "n", "subnets": ["s"], "nodeRole": "r", "capacityType": "CHEAP"}),
        );
        let err = to_error(eks, &v).expect("violation");
        assert_eq!(err.code, "ValidationException");
        assert!(err.message.contains("at 'capacityType' failed to satisfy constraint: Member must satisfy enum value set: [ON_DEMAND, SPOT, CAPACITY_BLOCK]"), "{}", err.message);
    }

    #[test]
    fn ec2_names_the_missing_parameter() {
        let ec2 = service("ec2").expect("ec2");
        let v = validate(ec2, "DeleteVpcRequest", &json!({}));
        let err = to_error(ec2, &v).expect("violation");
        assert_eq!(err.code, "MissingParameter");
        assert_eq!(err.message, "The request must contain the parameter VpcId");
    }

    #[test]
    fn valid_input_passes() {
        let iam = service("iam").expect("iam");
        assert!(validate(iam, "GetRoleRequest", &json!({"RoleName": "admin-role"})).is_empty());
    }
}
