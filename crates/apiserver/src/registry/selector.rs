//! Label and field selectors in their string form (`a=b,c!=d,e in (x,y),!f`, `metadata.name=x`).
//!
//! Written here because `skiff-k8s-core` has no selector parser yet; when it lands, this file becomes
//! a thin adapter. Grammar and messages follow apimachinery `labels/selector.go` and `fields/selector.go`.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    NotEq,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    reqs: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses `kubectl -l` syntax. The error text is what the 400 BadRequest carries.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            reqs.push(parse_requirement(part)?);
        }
        Ok(Self { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Does an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        self.reqs.iter().all(|r| {
            let v = labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str);
            match r.op {
                Op::Eq | Op::In => v.is_some_and(|v| r.values.iter().any(|x| x == v)),
                Op::NotEq | Op::NotIn => v.is_none_or(|v| r.values.iter().all(|x| x != v)),
                Op::Exists => v.is_some(),
                Op::DoesNotExist => v.is_none(),
                Op::Gt | Op::Lt => {
                    let (Some(v), Some(bound)) = (
                        v.and_then(|v| v.parse::<i64>().ok()),
                        r.values.first().and_then(|b| b.parse::<i64>().ok()),
                    ) else {
                        return false;
                    };
                    if r.op == Op::Gt { v > bound } else { v < bound }
                }
            }
        })
    }

    /// A `metav1.LabelSelector` object (`matchLabels` + `matchExpressions`) in string form, as
    /// `metav1.FormatLabelSelector` renders it for the Scale subresource's `status.selector`.
    pub fn format_object(sel: &Value) -> String {
        let mut parts = Vec::new();
        if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
            let sorted: BTreeMap<_, _> = m.iter().collect();
            for (k, v) in sorted {
                parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
            }
        }
        if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
                let vals: Vec<&str> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                match e
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                {
                    "In" => parts.push(format!("{key} in ({})", vals.join(","))),
                    "NotIn" => parts.push(format!("{key} notin ({})", vals.join(","))),
                    "Exists" => parts.push(key.to_string()),
                    "DoesNotExist" => parts.push(format!("!{key}")),
                    _ => {}
                }
            }
        }
        parts.join(",")
    }
}

/// Splits on commas that are not inside `( … )`.
fn split_top_level(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn check_key(key: &str) -> Result<(), String> {
    let errs = skiff_k8s_core::validation::is_qualified_name(key);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!("unable to parse requirement: {}", errs.join("; ")))
    }
}

fn check_value(v: &str) -> Result<(), String> {
    let errs = skiff_k8s_core::validation::is_valid_label_value(v);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "unable to parse requirement: values[0]: Invalid value: {}: {}",
            skiff_k8s_core::status::go_quote(v),
            errs.join("; ")
        ))
    }
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        check_key(key)?;
        return Ok(Requirement {
            key: key.into(),
            op: Op::DoesNotExist,
            values: vec![],
        });
    }
    // Set-based: `key in (a,b)` / `key notin (a,b)`.
    for (word, op) in [(" notin ", Op::NotIn), (" in ", Op::In)] {
        if let Some(idx) = part.find(word) {
            let key = part[..idx].trim();
            let rest = part[idx + word.len()..].trim();
            let inner = rest
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("found '{rest}', expected: '('"))?;
            check_key(key)?;
            let values: Vec<String> = inner
                .split(',')
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect();
            for v in &values {
                check_value(v)?;
            }
            if values.is_empty() && op == Op::In {
                return Err("for 'in', 'notin' operators, values set can't be empty".into());
            }
            return Ok(Requirement {
                key: key.into(),
                op,
                values,
            });
        }
    }
    for (tok, op) in [
        ("!=", Op::NotEq),
        ("==", Op::Eq),
        ("=", Op::Eq),
        (">", Op::Gt),
        ("<", Op::Lt),
    ] {
        if let Some(idx) = part.find(tok) {
            let key = part[..idx].trim();
            let value = part[idx + tok.len()..].trim();
            check_key(key)?;
            if matches!(op, Op::Gt | Op::Lt) {
                if value.parse::<i64>().is_err() {
                    return Err("unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer".to_string());
                }
            } else {
                check_value(value)?;
            }
            return Ok(Requirement {
                key: key.into(),
                op,
                values: vec![value.into()],
            });
        }
    }
    check_key(part)?;
    Ok(Requirement {
        key: part.into(),
        op: Op::Exists,
        values: vec![],
    })
}

/// A parsed field selector: `field=value`, `field==value`, `field!=value`, comma-separated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// (field, value, negated)
    reqs: Vec<(String, String, bool)>,
}

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (field, value, neg) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, false)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            reqs.push((field.trim().to_string(), value.trim().to_string(), neg));
        }
        Ok(Self { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// The fields this selector names (to check each is supported before listing).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.reqs.iter().map(|(f, _, _)| f.as_str())
    }

    /// Matches using `value_of(field)`; an unsupported field never matches (checked earlier).
    pub fn matches(&self, value_of: impl Fn(&str) -> Option<String>) -> bool {
        self.reqs.iter().all(|(f, v, neg)| {
            let actual = value_of(f).unwrap_or_default();
            (actual == *v) != *neg
        })
    }

    /// The name an equality on `metadata.name` pins, letting a list read one key.
    pub fn exact_name(&self) -> Option<&str> {
        self.reqs
            .iter()
            .find(|(f, _, neg)| f == "metadata.name" && !neg)
            .map(|(_, v, _)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn label_selector_equality_set_and_existence() {
        let l = labels(json!({"app": "web", "tier": "front", "n": "5"}));
        let cases = [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app=db", false),
            ("app in (db,web)", true),
            ("app notin (db,web)", false),
            ("tier", true),
            ("!tier", false),
            ("!missing", true),
            ("app=web,tier=front", true),
            ("app=web,tier=back", false),
            ("n>4", true),
            ("n<4", false),
            ("missing!=x", true),
            ("", true),
        ];
        for (sel, want) in cases {
            let s = LabelSelector::parse(sel).unwrap();
            assert_eq!(s.matches(Some(&l)), want, "{sel}");
        }
    }

    #[test]
    fn label_selector_rejects_bad_values() {
        assert!(LabelSelector::parse("app=we b").is_err());
        assert!(LabelSelector::parse("a in b").is_err());
        assert!(LabelSelector::parse("n>x").is_err());
    }

    #[test]
    fn field_selector_parses_and_matches() {
        let s = FieldSelector::parse("metadata.name=a,status.phase!=Running").unwrap();
        assert_eq!(s.exact_name(), Some("a"));
        let m = |f: &str| match f {
            "metadata.name" => Some("a".to_string()),
            "status.phase" => Some("Pending".to_string()),
            _ => None,
        };
        assert!(s.matches(m));
        assert!(FieldSelector::parse("nonsense").is_err());
    }

    #[test]
    fn format_label_selector_object() {
        let sel = json!({"matchLabels": {"b": "2", "a": "1"}, "matchExpressions": [{"key": "c", "operator": "In", "values": ["x", "y"]}]});
        assert_eq!(LabelSelector::format_object(&sel), "a=1,b=2,c in (x,y)");
    }
}
