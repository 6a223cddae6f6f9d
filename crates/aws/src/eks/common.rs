//! Shared pieces of the EKS handlers: the error constructor (EKS's modelled codes), member readers,
//! store keys and time stamps. EKS speaks rest-json with camelCase member names.

use serde_json::{Map, Value, json};
use skiff_aws_model::AwsError;
use skiff_store::{Precondition, Revision, Store};

use crate::resources;

/// An EKS error with the status the model gives that code (`ResourceInUseException` → 409).
pub fn error(code: &str, message: impl Into<String>) -> AwsError {
    AwsError::modeled("eks", code, message)
}

pub fn invalid(message: impl Into<String>) -> AwsError {
    error("InvalidParameterException", message)
}

pub fn not_found(message: impl Into<String>) -> AwsError {
    error("ResourceNotFoundException", message)
}

pub fn in_use(message: impl Into<String>) -> AwsError {
    error("ResourceInUseException", message)
}

/// A required string member (the codec has checked presence; an empty string is still refused).
pub fn req_str<'a>(input: &'a Value, member: &str) -> Result<&'a str, AwsError> {
    match input[member].as_str() {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(invalid(format!("{member} must be specified"))),
    }
}

pub fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Now as RFC 3339 with milliseconds (the codec renders epoch seconds with fractions, as EKS does).
pub fn now() -> String {
    let ms = jiff::Timestamp::now().as_millisecond();
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Key of an EKS record without a request context (the EKS layer calls domain functions with these).
pub fn key_in(account: &str, region: &str, kind: &str, id: &str) -> String {
    format!("/aws/{account}/{region}/eks/{kind}/{id}")
}

pub async fn load(store: &dyn Store, key: &str) -> Result<Option<(Value, Revision)>, AwsError> {
    resources::get::<Value>(store, key).await
}

/// Write one record guarded by `precondition`; a lost race is a `ResourceInUseException` with `conflict`.
pub async fn save(
    store: &dyn Store,
    key: &str,
    record: &Value,
    precondition: Precondition,
    conflict: &str,
) -> Result<(), AwsError> {
    resources::commit(store, vec![resources::put_op(key, record, precondition)])
        .await
        .map(|_| ())
        .map_err(|e| e.unwrap_or_else(|| in_use(conflict.to_string())))
}

/// Tags from a `tags` map member, checked against EKS's limits (50 tags, key ≤ 128, value ≤ 256,
/// no `aws:` prefix).
pub fn tags_of(input: &Value) -> Result<Map<String, Value>, AwsError> {
    let Some(tags) = input["tags"].as_object() else {
        return Ok(Map::new());
    };
    if tags.len() > 50 {
        return Err(invalid(
            "The number of tags must be less than or equal to 50",
        ));
    }
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 || k.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid(format!("Tag key {k} is not valid")));
        }
        if v.as_str().is_none_or(|s| s.len() > 256) {
            return Err(invalid(format!("Tag value for key {k} is not valid")));
        }
    }
    Ok(tags.clone())
}

/// Page a sorted list of names: `maxResults` (1..=100, default 100) and an opaque `nextToken` that is
/// the last name returned.
pub fn page_names(names: Vec<String>, input: &Value, member: &str) -> Result<Value, AwsError> {
    let max = match input["maxResults"].as_i64() {
        None => 100,
        Some(n) if (1..=100).contains(&n) => n as usize,
        Some(_) => {
            return Err(invalid(
                "maxResults must be greater than or equal to 1 and less than or equal to 100",
            ));
        }
    };
    let start = match input["nextToken"].as_str() {
        Some(t) => names
            .iter()
            .position(|n| n.as_str() > t)
            .unwrap_or(names.len()),
        None => 0,
    };
    let slice: Vec<String> = names.iter().skip(start).take(max).cloned().collect();
    let mut out = json!({ member: slice });
    if start + slice.len() < names.len() {
        out["nextToken"] = json!(slice.last());
    }
    Ok(out)
}

/// A record with the private members (leading `_`) removed; the encoder drops unknown members too,
/// this keeps domain readers and tests honest.
pub fn public(record: &Value) -> Value {
    match record {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('_'))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_walks_every_name_once() {
        let names: Vec<String> = (0..5).map(|i| format!("c{i}")).collect();
        let p1 = page_names(names.clone(), &json!({"maxResults": 2}), "clusters").unwrap();
        assert_eq!(p1["clusters"], json!(["c0", "c1"]));
        let p2 = page_names(
            names.clone(),
            &json!({"maxResults": 2, "nextToken": p1["nextToken"]}),
            "clusters",
        )
        .unwrap();
        assert_eq!(p2["clusters"], json!(["c2", "c3"]));
        let p3 = page_names(names, &json!({"nextToken": "c3"}), "clusters").unwrap();
        assert_eq!(p3["clusters"], json!(["c4"]));
        assert!(p3.get("nextToken").is_none());
    }

    #[test]
    fn aws_prefixed_tags_are_refused() {
        assert!(tags_of(&json!({"tags": {"aws:x": "y"}})).is_err());
        assert_eq!(tags_of(&json!({"tags": {"a": "b"}})).unwrap().len(), 1);
    }
}
