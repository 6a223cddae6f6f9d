//! `Filter.N` as EC2 documents it: each filter is a name and values; a record matches when, for every
//! filter, one of its values matches one of the record's values at that name (`*` and `?` wildcards).
//! `tag:Key`, `tag-key` and `tag-value` work on every taggable resource.
//!
//! Each Describe lists its documented filter names with a dotted path into the stored record
//! (`"cidr-block-association.cidr-block" -> "CidrBlockAssociationSet.CidrBlock"`); arrays on the way are
//! flattened, and `a|b` unions two paths. An undocumented name is refused as AWS refuses it.

use serde_json::Value;
use skiff_aws_model::AwsError;
use wildmatch::WildMatch;

use super::errors::error;

pub(crate) struct Filter {
    name: String,
    patterns: Vec<WildMatch>,
}

/// Read `Filters` and check every name against the operation's table.
pub(crate) fn parse(input: &Value, table: &[(&str, &str)]) -> Result<Vec<Filter>, AwsError> {
    let mut out = Vec::new();
    for f in super::common::array(input, "Filters") {
        let name = f.get("Name").and_then(Value::as_str).unwrap_or_default();
        let known = name.starts_with("tag:")
            || name == "tag-key"
            || name == "tag-value"
            || table.iter().any(|(n, _)| *n == name);
        if !known {
            return Err(error("InvalidFilter", &[("name", name)]));
        }
        let patterns = super::common::str_list(f, "Values")
            .iter()
            .map(|v| WildMatch::new(v))
            .collect();
        out.push(Filter {
            name: name.to_string(),
            patterns,
        });
    }
    Ok(out)
}

/// Every value found at a dotted path, flattening arrays, rendered as EC2 compares them (text).
pub(crate) fn path_values(v: &Value, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for alt in path.split('|') {
        let parts: Vec<&str> = alt.split('.').collect();
        collect(v, &parts, &mut out);
    }
    out
}

fn collect(v: &Value, parts: &[&str], out: &mut Vec<String>) {
    match v {
        Value::Array(items) => {
            for item in items {
                collect(item, parts, out);
            }
        }
        _ if parts.is_empty() => match v {
            Value::String(s) => out.push(s.clone()),
            Value::Bool(b) => out.push(b.to_string()),
            Value::Number(n) => out.push(n.to_string()),
            _ => {}
        },
        Value::Object(m) => {
            if let Some(next) = m.get(parts[0]) {
                collect(next, &parts[1..], out);
            }
        }
        _ => {}
    }
}

fn tags(record: &Value, tags_field: &str) -> Vec<(String, String)> {
    super::common::array(record, tags_field)
        .iter()
        .map(|t| {
            (
                t["Key"].as_str().unwrap_or_default().to_string(),
                t["Value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub(crate) fn matches(
    record: &Value,
    filters: &[Filter],
    table: &[(&str, &str)],
    tags_field: &str,
) -> bool {
    filters.iter().all(|f| {
        let values: Vec<String> = if let Some(key) = f.name.strip_prefix("tag:") {
            tags(record, tags_field)
                .into_iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v)
                .collect()
        } else if f.name == "tag-key" {
            tags(record, tags_field)
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        } else if f.name == "tag-value" {
            tags(record, tags_field)
                .into_iter()
                .map(|(_, v)| v)
                .collect()
        } else {
            let path = table
                .iter()
                .find(|(n, _)| *n == f.name)
                .map(|(_, p)| *p)
                .unwrap_or_default();
            path_values(record, path)
        };
        f.patterns
            .iter()
            .any(|p| values.iter().any(|v| p.matches(v)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TABLE: &[(&str, &str)] = &[
        ("vpc-id", "VpcId"),
        (
            "cidr-block-association.cidr-block",
            "CidrBlockAssociationSet.CidrBlock",
        ),
        ("is-default", "IsDefault"),
    ];

    fn rec() -> Value {
        json!({"VpcId": "vpc-1", "IsDefault": false,
               "CidrBlockAssociationSet": [{"CidrBlock": "10.0.0.0/16"}, {"CidrBlock": "10.1.0.0/16"}],
               "Tags": [{"Key": "Name", "Value": "main-vpc"}]})
    }

    fn check(filters: Value) -> bool {
        let f = parse(&json!({ "Filters": filters }), TABLE).unwrap();
        matches(&rec(), &f, TABLE, "Tags")
    }

    #[test]
    fn paths_flatten_arrays_and_render_scalars() {
        assert_eq!(
            path_values(&rec(), "CidrBlockAssociationSet.CidrBlock"),
            vec!["10.0.0.0/16", "10.1.0.0/16"]
        );
        assert_eq!(path_values(&rec(), "IsDefault"), vec!["false"]);
        assert!(path_values(&rec(), "Nope.Deeper").is_empty());
    }

    #[test]
    fn values_or_names_and_wildcards() {
        assert!(check(
            json!([{"Name": "vpc-id", "Values": ["vpc-2", "vpc-1"]}])
        ));
        assert!(!check(json!([{"Name": "vpc-id", "Values": ["vpc-2"]}])));
        assert!(check(
            json!([{"Name": "cidr-block-association.cidr-block", "Values": ["10.1.*"]}])
        ));
        assert!(check(json!([{"Name": "is-default", "Values": ["false"]}])));
        assert!(!check(json!([
            {"Name": "vpc-id", "Values": ["vpc-1"]},
            {"Name": "is-default", "Values": ["true"]}
        ])));
    }

    #[test]
    fn tag_filters() {
        assert!(check(json!([{"Name": "tag:Name", "Values": ["main-?pc"]}])));
        assert!(!check(json!([{"Name": "tag:Other", "Values": ["*"]}])));
        assert!(check(json!([{"Name": "tag-key", "Values": ["Name"]}])));
        assert!(check(json!([{"Name": "tag-value", "Values": ["main*"]}])));
    }

    #[test]
    fn unknown_filter_is_refused_with_aws_wording() {
        let err = parse(
            &json!({"Filters": [{"Name": "colour", "Values": ["x"]}]}),
            TABLE,
        )
        .err()
        .unwrap();
        assert_eq!(err.code, "InvalidParameterValue");
        assert_eq!(err.message, "The filter 'colour' is invalid");
    }
}
