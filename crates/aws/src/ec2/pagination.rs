//! `MaxResults` / `NextToken` over records in id order. The token is the last id returned, base64'd so
//! clients treat it as opaque; paging resumes strictly after it, so records created meanwhile with a
//! larger id show up and none is repeated.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use skiff_aws_model::AwsError;

use super::common::{opt_i64, opt_str};
use super::errors::{error, invalid_value};

pub(crate) fn encode(last_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(last_id.as_bytes())
}

fn decode(token: &str) -> Result<String, AwsError> {
    URL_SAFE_NO_PAD
        .decode(token.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| error("InvalidNextToken", &[("token", token)]))
}

/// The id a `NextToken` resumes after, if the input has one.
pub(crate) fn after(input: &Value) -> Result<Option<String>, AwsError> {
    opt_str(input, "NextToken").map(decode).transpose()
}

/// `MaxResults`, checked against the operation's documented bounds; `None` = everything.
pub(crate) fn limit(input: &Value, (min, max): (i64, i64)) -> Result<Option<usize>, AwsError> {
    let Some(limit) = opt_i64(input, "MaxResults") else {
        return Ok(None);
    };
    if limit < min || limit > max {
        return Err(invalid_value(format!(
            "Value ( {limit} ) for parameter maxResults is invalid. Expecting a value between {min} and {max}."
        )));
    }
    Ok(Some(limit as usize))
}

/// One page of `items` (sorted by `id_field`) as the input's `MaxResults`/`NextToken` ask.
pub(crate) fn page(
    mut items: Vec<Value>,
    id_field: &str,
    input: &Value,
    (min, max): (i64, i64),
) -> Result<(Vec<Value>, Option<String>), AwsError> {
    if let Some(after) = after(input)? {
        items.retain(|r| r[id_field].as_str().is_some_and(|id| id > after.as_str()));
    }
    let Some(limit) = limit(input, (min, max))? else {
        return Ok((items, None));
    };
    if items.len() <= limit {
        return Ok((items, None));
    }
    items.truncate(limit);
    let next = items.last().and_then(|r| r[id_field].as_str()).map(encode);
    Ok((items, next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn items(n: usize) -> Vec<Value> {
        (0..n).map(|i| json!({"Id": format!("x-{i:03}")})).collect()
    }

    #[test]
    fn pages_cover_everything_once() {
        let mut seen = Vec::new();
        let mut input = json!({"MaxResults": 5});
        loop {
            let (page, next) = page(items(12), "Id", &input, (5, 1000)).unwrap();
            seen.extend(
                page.into_iter()
                    .map(|v| v["Id"].as_str().unwrap().to_string()),
            );
            match next {
                Some(t) => input = json!({"MaxResults": 5, "NextToken": t}),
                None => break,
            }
        }
        assert_eq!(seen.len(), 12);
        assert_eq!(seen[11], "x-011");
    }

    #[test]
    fn bounds_and_bad_tokens() {
        assert!(page(items(3), "Id", &json!({"MaxResults": 1}), (5, 1000)).is_err());
        let e = page(items(3), "Id", &json!({"NextToken": "!!"}), (5, 1000)).unwrap_err();
        assert_eq!(e.code, "InvalidNextToken");
        let (all, next) = page(items(3), "Id", &json!({}), (5, 1000)).unwrap();
        assert_eq!((all.len(), next), (3, None));
    }
}
