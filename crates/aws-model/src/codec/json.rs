//! JSON bodies (json 1.1 and rest-json): wire names ↔ member names, epoch-second timestamps ↔ RFC 3339,
//! type checks on input (`SerializationException`, what Coral answers for a mistyped body).

use serde_json::{Map, Value};

use crate::AwsError;
use crate::model::{ServiceModel, Shape, ShapeType};
use crate::scalar;

fn mistyped(path: &str, expected: &str) -> AwsError {
    AwsError::new(
        "SerializationException",
        format!("Unexpected value for '{path}': expected {expected}"),
    )
}

/// A request body value → the contract's form. `body_only` skips REST-bound members.
pub fn from_wire(
    model: &ServiceModel,
    shape: &Shape,
    v: &Value,
    path: &str,
    body_only: bool,
) -> Result<Value, AwsError> {
    match shape.kind {
        ShapeType::Structure => {
            let obj = v.as_object().ok_or_else(|| mistyped(path, "a structure"))?;
            let mut out = Map::new();
            for (name, r) in &shape.members {
                if body_only && r.location.is_some() {
                    continue;
                }
                let wire = r.location_name.as_deref().unwrap_or(name);
                let Some(val) = obj.get(wire).filter(|x| !x.is_null()) else {
                    continue;
                };
                let Some(target) = model.shape(&r.shape) else {
                    continue;
                };
                out.insert(name.clone(), from_wire(model, target, val, wire, false)?);
            }
            Ok(Value::Object(out))
        }
        ShapeType::List => {
            let items = v.as_array().ok_or_else(|| mistyped(path, "a list"))?;
            let Some(ms) = shape.member.as_ref().and_then(|m| model.shape(&m.shape)) else {
                return Ok(Value::Array(vec![]));
            };
            items
                .iter()
                .filter(|x| !x.is_null())
                .map(|x| from_wire(model, ms, x, path, false))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        ShapeType::Map => {
            let obj = v.as_object().ok_or_else(|| mistyped(path, "a map"))?;
            let Some(vs) = shape.value.as_ref().and_then(|m| model.shape(&m.shape)) else {
                return Ok(Value::Object(Map::new()));
            };
            let mut out = Map::new();
            for (k, x) in obj {
                if !x.is_null() {
                    out.insert(k.clone(), from_wire(model, vs, x, path, false)?);
                }
            }
            Ok(Value::Object(out))
        }
        ShapeType::String | ShapeType::Blob => v
            .as_str()
            .map(|s| Value::String(s.to_string()))
            .ok_or_else(|| mistyped(path, "a string")),
        ShapeType::Boolean => v
            .as_bool()
            .map(Value::Bool)
            .ok_or_else(|| mistyped(path, "a boolean")),
        ShapeType::Integer | ShapeType::Long => v
            .as_i64()
            .map(Value::from)
            .ok_or_else(|| mistyped(path, "an integer")),
        ShapeType::Float | ShapeType::Double => {
            if v.is_number() {
                Ok(v.clone())
            } else {
                Err(mistyped(path, "a number"))
            }
        }
        ShapeType::Timestamp => scalar::timestamp_of(v)
            .map(|t| Value::String(scalar::rfc3339(t)))
            .ok_or_else(|| mistyped(path, "a timestamp")),
    }
}

/// An output value in the contract's form → the JSON body. Unknown and null members are dropped.
pub fn to_wire(model: &ServiceModel, shape: &Shape, v: &Value, body_only: bool) -> Value {
    match shape.kind {
        ShapeType::Structure => {
            let mut out = Map::new();
            let Some(obj) = v.as_object() else {
                return Value::Object(out);
            };
            for (name, r) in &shape.members {
                if body_only && r.location.is_some() {
                    continue;
                }
                let Some(val) = obj.get(name).filter(|x| !x.is_null()) else {
                    continue;
                };
                let Some(target) = model.shape(&r.shape) else {
                    continue;
                };
                let wire = r.location_name.as_deref().unwrap_or(name);
                out.insert(wire.to_string(), to_wire(model, target, val, false));
            }
            Value::Object(out)
        }
        ShapeType::List => {
            let ms = shape.member.as_ref().and_then(|m| model.shape(&m.shape));
            match (v.as_array(), ms) {
                (Some(items), Some(ms)) => {
                    Value::Array(items.iter().map(|x| to_wire(model, ms, x, false)).collect())
                }
                _ => Value::Array(vec![]),
            }
        }
        ShapeType::Map => {
            let vs = shape.value.as_ref().and_then(|m| model.shape(&m.shape));
            match (v.as_object(), vs) {
                (Some(obj), Some(vs)) => Value::Object(
                    obj.iter()
                        .map(|(k, x)| (k.clone(), to_wire(model, vs, x, false)))
                        .collect(),
                ),
                _ => Value::Object(Map::new()),
            }
        }
        ShapeType::Timestamp => scalar::timestamp_of(v).map_or(Value::Null, scalar::epoch_seconds),
        // Handlers may hand numbers and booleans over as strings; clients need the JSON type.
        ShapeType::Integer
        | ShapeType::Long
        | ShapeType::Float
        | ShapeType::Double
        | ShapeType::Boolean => match v {
            Value::String(s) => scalar::from_text(shape.kind, s).unwrap_or_else(|_| v.clone()),
            _ => v.clone(),
        },
        ShapeType::String | ShapeType::Blob => v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::service;
    use serde_json::json;

    #[test]
    fn round_trip_with_timestamps_and_type_checks() {
        let sm = service("secretsmanager").expect("sm");
        let shape = sm.shape("DescribeSecretResponse").expect("shape");
        let out = json!({"Name": "s", "CreatedDate": "2026-11-23T13:25:00Z", "Tags": [{"Key": "k", "Value": "v"}], "Private": 1});
        let wire = to_wire(sm, shape, &out, false);
        assert_eq!(
            wire,
            json!({"Name": "s", "Tags": [{"Key": "k", "Value": "v"}], "CreatedDate": 1795440300})
        );
        let back = from_wire(sm, shape, &wire, "", false).expect("decodes");
        assert_eq!(
            back,
            json!({"Name": "s", "Tags": [{"Key": "k", "Value": "v"}], "CreatedDate": "2026-11-23T13:25:00Z"})
        );
        let input = sm.shape("GetSecretValueRequest").expect("shape");
        let err = from_wire(sm, input, &json!({"SecretId": 5}), "", false).expect_err("mistyped");
        assert_eq!(err.code, "SerializationException");
    }
}
