//! Completion indexes of Indexed Jobs: the `status.completedIndexes` interval notation
//! (`"0-2,5,7-9"`) and the index a Pod carries.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::ownership::str_at;

/// Annotation and label holding an Indexed Job pod's index (the label since 1.28).
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// Parses `"1,3-5"`; malformed parts are skipped (the controller rewrites the field anyway).
pub fn parse(s: &str) -> BTreeSet<i64> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i64>(), b.parse::<i64>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(v) = part.parse() {
                    out.insert(v);
                }
            }
        }
    }
    out
}

/// Formats indexes as sorted intervals, as upstream writes them.
pub fn format(set: &BTreeSet<i64>) -> String {
    let mut parts = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

/// The index of a Pod of an Indexed Job (annotation first, then label); `None` when missing or
/// not a non-negative number.
pub fn of_pod(pod: &Value) -> Option<i64> {
    let key = COMPLETION_INDEX.replace('/', "~1");
    [
        format!("/metadata/annotations/{key}"),
        format!("/metadata/labels/{key}"),
    ]
    .iter()
    .map(|p| str_at(pod, p))
    .find(|v| !v.is_empty())
    .and_then(|v| v.parse::<i64>().ok())
    .filter(|v| *v >= 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_interval_notation() {
        let s = parse("0-2,5,7-9");
        assert_eq!(s.iter().copied().collect::<Vec<_>>(), [0, 1, 2, 5, 7, 8, 9]);
        assert_eq!(format(&s), "0-2,5,7-9");
        assert_eq!(format(&parse("3,x,1-")), "3");
        assert_eq!(format(&BTreeSet::new()), "");
        let p = json!({"metadata": {"labels": {COMPLETION_INDEX: "4"}}});
        assert_eq!(of_pod(&p), Some(4));
        assert_eq!(of_pod(&json!({"metadata": {}})), None);
    }
}
