//! Query and EC2 request decoding: form parameters (`Action`, `Version`, `Member.N`, EC2 `.N`,
//! `entry.N.key/value`, dotted nesting) walked along the input shape.
//!
//! Decoding is shape-directed: we look up the names the model says a client would send, rather than
//! parsing every key into a tree, so unknown parameters cost nothing and lists keep their index order.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::AwsError;
use crate::model::{MemberRef, Operation, Protocol, ServiceModel, Shape, ShapeType};
use crate::scalar;

pub type Params = BTreeMap<String, String>;

/// Form parameters from the query string and (for `application/x-www-form-urlencoded` bodies) the body.
pub fn params(query: &str, body: &[u8]) -> Params {
    let mut p: Params = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    p.extend(form_urlencoded::parse(body).into_owned());
    p
}

/// Find the operation named by `Action` and decode its input.
pub fn decode<'m>(
    model: &'m ServiceModel,
    params: &Params,
) -> Result<(&'m Operation, Value), AwsError> {
    let action = params
        .get("Action")
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            AwsError::new(
                "MissingAction",
                "The request must contain the parameter Action",
            )
        })?;
    // ELB classic (2012-06-01) shares ELBv2's signing name and action names: a request for another
    // API version must not be read with this model.
    if let Some(v) = params
        .get("Version")
        .filter(|v| !v.is_empty() && **v != model.api_version)
    {
        return Err(AwsError::new(
            "InvalidAction",
            format!("Could not find operation {action} for version {v}"),
        ));
    }
    let op = model
        .operation(action)
        .ok_or_else(|| invalid_action(model, action))?;
    let ec2 = model.protocol == Protocol::Ec2;
    let input = match op.input.as_ref().and_then(|r| model.shape(&r.shape)) {
        Some(shape) => decode_struct(model, shape, "", params, ec2)?
            .unwrap_or_else(|| Value::Object(Map::new())),
        None => Value::Object(Map::new()),
    };
    Ok((op, input))
}

/// The protocol's answer to an action the model does not know.
pub fn invalid_action(model: &ServiceModel, action: &str) -> AwsError {
    if model.protocol == Protocol::Ec2 {
        AwsError::new(
            "InvalidAction",
            format!("The action {action} is not valid for this web service."),
        )
    } else {
        AwsError::new(
            "InvalidAction",
            format!(
                "Could not find operation {action} for version {}",
                model.api_version
            ),
        )
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The name a client sends for a structure member (botocore's `_get_serialized_name`).
fn wire_name(name: &str, r: &MemberRef, target: &Shape, ec2: bool) -> String {
    let location_name = r
        .location_name
        .as_deref()
        .or(target.location_name.as_deref());
    if ec2 {
        if let Some(q) = &r.query_name {
            return q.clone();
        }
        return location_name.map_or_else(|| name.to_string(), capitalize);
    }
    location_name.unwrap_or(name).to_string()
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Does any parameter equal `key` or start with `key.`?
fn present(params: &Params, key: &str) -> bool {
    params.contains_key(key)
        || params
            .range(format!("{key}.")..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&format!("{key}.")))
}

/// The list indices present under `prefix.` (`Filter.1...`, `Filter.2...`), in numeric order.
fn indices(params: &Params, prefix: &str) -> BTreeSet<usize> {
    let start = format!("{prefix}.");
    params
        .range(start.clone()..)
        .take_while(|(k, _)| k.starts_with(&start))
        .filter_map(|(k, _)| k[start.len()..].split('.').next()?.parse::<usize>().ok())
        .collect()
}

fn decode_struct(
    model: &ServiceModel,
    shape: &Shape,
    prefix: &str,
    params: &Params,
    ec2: bool,
) -> Result<Option<Value>, AwsError> {
    let mut out = Map::new();
    for (name, r) in &shape.members {
        let Some(target) = model.shape(&r.shape) else {
            continue;
        };
        let key = join(prefix, &wire_name(name, r, target, ec2));
        if let Some(v) = decode_value(model, r, target, &key, params, ec2)? {
            out.insert(name.clone(), v);
        }
    }
    Ok(
        (!out.is_empty() || (!prefix.is_empty() && params.contains_key(prefix)))
            .then_some(Value::Object(out)),
    )
}

fn decode_value(
    model: &ServiceModel,
    r: &MemberRef,
    shape: &Shape,
    key: &str,
    params: &Params,
    ec2: bool,
) -> Result<Option<Value>, AwsError> {
    match shape.kind {
        ShapeType::Structure => {
            if !present(params, key) {
                return Ok(None);
            }
            decode_struct(model, shape, key, params, ec2)
        }
        ShapeType::List => {
            let Some(mr) = &shape.member else { return Ok(None) };
            let Some(member_shape) = model.shape(&mr.shape) else { return Ok(None) };
            let list_prefix = if ec2 || r.flattened || shape.flattened {
                key.to_string()
            } else {
                join(key, mr.location_name.as_deref().unwrap_or("member"))
            };
            let idx = indices(params, &list_prefix);
            if idx.is_empty() {
                // `Foo=` with no members: the query protocol's explicit empty list.
                return Ok(params.get(key).filter(|v| v.is_empty()).map(|_| Value::Array(vec![])));
            }
            let mut items = Vec::with_capacity(idx.len());
            for i in idx {
                let item_key = format!("{list_prefix}.{i}");
                if let Some(v) = decode_value(model, mr, member_shape, &item_key, params, ec2)? {
                    items.push(v);
                }
            }
            Ok(Some(Value::Array(items)))
        }
        ShapeType::Map => {
            let (Some(kr), Some(vr)) = (&shape.key, &shape.value) else { return Ok(None) };
            let (Some(ks), Some(vs)) = (model.shape(&kr.shape), model.shape(&vr.shape)) else {
                return Ok(None);
            };
            let entry_prefix = if r.flattened || shape.flattened { key.to_string() } else { join(key, "entry") };
            let key_name = kr.location_name.as_deref().unwrap_or("key");
            let value_name = vr.location_name.as_deref().unwrap_or("value");
            let idx = indices(params, &entry_prefix);
            if idx.is_empty() {
                return Ok(None);
            }
            let mut out = Map::new();
            for i in idx {
                let k = decode_value(model, kr, ks, &format!("{entry_prefix}.{i}.{key_name}"), params, ec2)?;
                let v = decode_value(model, vr, vs, &format!("{entry_prefix}.{i}.{value_name}"), params, ec2)?;
                if let Some(Value::String(k)) = k {
                    out.insert(k, v.unwrap_or(Value::Null));
                }
            }
            Ok(Some(Value::Object(out)))
        }
        kind => match params.get(key) {
            None => Ok(None),
            Some(text) => scalar::from_text(kind, text).map(Some).map_err(|bad| {
                if ec2 {
                    AwsError::new(
                        "InvalidParameterValue",
                        format!("Value ({text}) for parameter {key} is invalid. Expected: '{}'.", bad.expected),
                    )
                } else {
                    AwsError::new(
                        "ValidationError",
                        format!(
                            "1 validation error detected: Value '{text}' at '{key}' failed to satisfy constraint: Member must be a valid {}",
                            bad.expected
                        ),
                    )
                }
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::service;
    use serde_json::json;

    fn p(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ec2_lists_nesting_and_types() {
        let ec2 = service("ec2").expect("ec2");
        let params = p(&[
            ("Action", "CreateVpc"),
            ("Version", "2016-11-15"),
            ("CidrBlock", "10.0.0.0/16"),
            ("AmazonProvidedIpv6CidrBlock", "true"),
            ("TagSpecification.1.ResourceType", "vpc"),
            ("TagSpecification.1.Tag.2.Key", "b"),
            ("TagSpecification.1.Tag.2.Value", "2"),
            ("TagSpecification.1.Tag.1.Key", "a"),
            ("TagSpecification.1.Tag.1.Value", "1"),
        ]);
        let (op, v) = decode(ec2, &params).expect("decodes");
        assert_eq!(op.name, "CreateVpc");
        assert_eq!(
            v,
            json!({"CidrBlock": "10.0.0.0/16", "AmazonProvidedIpv6CidrBlock": true,
                "TagSpecifications": [{"ResourceType": "vpc", "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}]})
        );
    }

    #[test]
    fn query_member_lists_and_maps() {
        let iam = service("iam").expect("iam");
        let params = p(&[
            ("Action", "CreateRole"),
            ("RoleName", "r"),
            ("AssumeRolePolicyDocument", "{}"),
            ("MaxSessionDuration", "3600"),
            ("Tags.member.1.Key", "k"),
            ("Tags.member.1.Value", "v"),
        ]);
        let (_, v) = decode(iam, &params).expect("decodes");
        assert_eq!(
            v,
            json!({"RoleName": "r", "AssumeRolePolicyDocument": "{}", "MaxSessionDuration": 3600,
                "Tags": [{"Key": "k", "Value": "v"}]})
        );
        let sts = service("sts").expect("sts");
        assert!(decode(sts, &p(&[("Action", "Nope")])).is_err_and(|e| e.code == "InvalidAction"));
        assert!(decode(sts, &p(&[])).is_err_and(|e| e.code == "MissingAction"));
        let elb = service("elbv2").expect("elbv2");
        let classic = p(&[
            ("Action", "DescribeLoadBalancers"),
            ("Version", "2012-06-01"),
        ]);
        assert!(decode(elb, &classic).is_err_and(|e| e.message
            == "Could not find operation DescribeLoadBalancers for version 2012-06-01"));
        let bad = decode(
            iam,
            &p(&[("Action", "CreateRole"), ("MaxSessionDuration", "x")]),
        );
        assert!(bad.is_err_and(|e| e.code == "ValidationError"));
    }
}
