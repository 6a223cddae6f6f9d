//! `meta.k8s.io/v1` Table output (`kubectl get`): columns and cells from the kind's strategy,
//! `rows[].object` as PartialObjectMetadata unless `includeObject=Object`.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::registry::strategy::Strategy;

/// `includeObject`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    #[default]
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: &str) -> Self {
        match s {
            "None" => Self::None,
            "Object" => Self::Object,
            _ => Self::Metadata,
        }
    }
}

/// Does this Accept header ask for a Table (`application/json;as=Table;v=v1;g=meta.k8s.io`)?
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|mt| {
        let params: Vec<&str> = mt.split(';').map(str::trim).collect();
        params.contains(&"as=Table")
            && params.contains(&"g=meta.k8s.io")
            && (params.contains(&"v=v1") || params.contains(&"v=v1beta1"))
    })
}

fn row(
    kind: &Arc<dyn Strategy>,
    obj: &Value,
    include: IncludeObject,
    now: jiff::Timestamp,
) -> Value {
    let cells = kind.row(obj, now);
    let object = match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Object => obj.clone(),
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    };
    if object.is_null() {
        json!({"cells": cells})
    } else {
        json!({"cells": cells, "object": object})
    }
}

/// The `columnDefinitions` of a kind's Table.
pub fn columns(kind: &Arc<dyn Strategy>) -> Vec<Value> {
    kind.columns()
        .iter()
        .map(|c| json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority}))
        .collect()
}

/// The Table rows of `items` (a streamed list writes them a page at a time).
pub fn rows(
    kind: &Arc<dyn Strategy>,
    items: &[Value],
    include: IncludeObject,
    now: jiff::Timestamp,
) -> Vec<Value> {
    items.iter().map(|o| row(kind, o, include, now)).collect()
}

/// A Table of `items`. `with_columns` is false for watch events after the first.
pub fn table(
    kind: &Arc<dyn Strategy>,
    items: &[Value],
    include: IncludeObject,
    resource_version: Option<String>,
    continue_token: Option<String>,
    with_columns: bool,
) -> Value {
    let now = jiff::Timestamp::now();
    let columns = if with_columns {
        columns(kind)
    } else {
        Vec::new()
    };
    let rows = rows(kind, items, include, now);
    let mut meta = serde_json::Map::new();
    if let Some(rv) = resource_version {
        meta.insert("resourceVersion".into(), rv.into());
    }
    if let Some(c) = continue_token {
        meta.insert("continue".into(), c.into());
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": columns, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_accept_header_asks_for_a_table() {
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json"));
        assert!(!wants_table(
            "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
        ));
    }
}
