//! The `aws-auth` ConfigMap's `mapRoles` / `mapUsers` values: YAML lists of small maps.
//!
//! Only the shape aws-auth uses is read (a block list of maps of scalars, `groups` as a block or
//! flow list), so no YAML library is pulled in; anything else in an item is ignored, as the
//! authenticator ignores unknown keys.

use std::collections::BTreeMap;

/// One `- rolearn: … / username: … / groups: […]` item.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapItem {
    pub scalars: BTreeMap<String, String>,
    pub groups: Vec<String>,
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    let s = match s.find(" #") {
        Some(i) if !s.starts_with('"') && !s.starts_with('\'') => s[..i].trim_end(),
        _ => s,
    };
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return s[1..s.len() - 1].to_string();
        }
    }
    s.to_string()
}

fn flow_list(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('[')?.strip_suffix(']')?;
    Some(
        inner
            .split(',')
            .map(unquote)
            .filter(|g| !g.is_empty())
            .collect(),
    )
}

/// Parse a `mapRoles`/`mapUsers` value. Malformed lines are skipped, never a panic.
pub fn parse_map_list(text: &str) -> Vec<MapItem> {
    let mut items: Vec<MapItem> = Vec::new();
    let mut item_indent = None::<usize>;
    let mut in_groups = false;
    for raw in text.lines() {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = raw.len() - trimmed.len();
        let (is_dash, body) = match trimmed.strip_prefix('-') {
            Some(rest) if rest.is_empty() || rest.starts_with(' ') => (true, rest.trim_start()),
            _ => (false, trimmed),
        };
        if is_dash && item_indent.is_none_or(|i| indent <= i) {
            // A new item of the top-level list.
            item_indent = Some(indent);
            in_groups = false;
            items.push(MapItem::default());
        } else if is_dash && in_groups {
            if let Some(item) = items.last_mut() {
                item.groups.push(unquote(body));
            }
            continue;
        }
        let Some(item) = items.last_mut() else {
            continue;
        };
        let Some((key, value)) = body.split_once(':') else {
            continue;
        };
        let key = key.trim().to_string();
        in_groups = false;
        if key == "groups" {
            match flow_list(value) {
                Some(list) => item.groups = list,
                None if value.trim().is_empty() => in_groups = true,
                None => item.groups = vec![unquote(value)],
            }
        } else {
            item.scalars.insert(key, unquote(value));
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_and_flow_lists_and_quotes() {
        let text = r#"
- rolearn: arn:aws:iam::1:role/a
  username: "system:node:{{EC2PrivateDNSName}}"
  groups:
  - system:bootstrappers
  - 'system:nodes'
-   userarn: arn:aws:iam::1:user/b   # admin
    groups: [system:masters, "ops"]
not yaml at all
"#;
        let items = parse_map_list(text);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].scalars["rolearn"], "arn:aws:iam::1:role/a");
        assert_eq!(
            items[0].scalars["username"],
            "system:node:{{EC2PrivateDNSName}}"
        );
        assert_eq!(items[0].groups, ["system:bootstrappers", "system:nodes"]);
        assert_eq!(items[1].scalars["userarn"], "arn:aws:iam::1:user/b");
        assert_eq!(items[1].groups, ["system:masters", "ops"]);
        assert!(parse_map_list("").is_empty());
        assert!(
            parse_map_list("groups:\n- x")
                .iter()
                .all(|i| i.scalars.is_empty())
        );
    }
}
