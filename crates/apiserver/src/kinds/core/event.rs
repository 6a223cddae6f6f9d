//! Event (`events`, `ev`, core/v1): the LAST SEEN/TYPE/REASON/OBJECT/MESSAGE printer and the
//! `involvedObject.*`, `reason`, `type`, `source` field selectors.

use k8s_openapi::api::core::v1::Event as Object;
use serde_json::Value;
use skiff_k8s_core::status::FieldError;

use crate::kinds::typed::{Kind, col, i, s};
use crate::registry::strategy::Column;

pub(crate) struct Event;

impl Kind for Event {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["ev"];

    fn validate(obj: &Value) -> Vec<FieldError> {
        let ns = s(obj, "/metadata/namespace");
        let ino = s(obj, "/involvedObject/namespace");
        if !ino.is_empty() && ns != ino {
            return vec![FieldError::invalid(
                "involvedObject.namespace",
                Value::from(ino),
                "does not match event.namespace",
            )];
        }
        Vec::new()
    }

    fn columns() -> Vec<Column> {
        vec![
            col(
                "Last Seen",
                "string",
                "Time when this Event was last seen",
                0,
            ),
            col(
                "Type",
                "string",
                "Type of this event (Normal, Warning), new types could be added in the future.",
                0,
            ),
            col(
                "Reason",
                "string",
                "This should be a short, machine understandable string that gives the reason for this event being generated.",
                0,
            ),
            col(
                "Object",
                "string",
                "The object that this event is about. Mapped from event.involvedObject.",
                0,
            ),
            col(
                "Subobject",
                "string",
                "Subobject of the object that this event is about",
                1,
            ),
            col(
                "Source",
                "string",
                "The component reporting this event. Should be a short machine understandable string.",
                1,
            ),
            col(
                "Message",
                "string",
                "A human-readable description of the status of this operation.",
                0,
            ),
            col(
                "First Seen",
                "string",
                "Time when this Event was first seen",
                1,
            ),
            col(
                "Count",
                "string",
                "Number of times this Event has occurred",
                1,
            ),
            col("Name", "string", "Name of this event", 1),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let since = |ptr: &str| {
            obj.pointer(ptr)
                .and_then(Value::as_str)
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .map(|t| crate::registry::human_duration((now.as_second() - t.as_second()).max(0)))
        };
        let first = since("/firstTimestamp").or_else(|| since("/eventTime"));
        let mut last = since("/lastTimestamp").or_else(|| first.clone());
        let mut count = i(obj, "/count");
        if obj.get("series").is_some_and(|v| !v.is_null()) {
            last = since("/series/lastObservedTime");
            count = i(obj, "/series/count");
        } else if count == 0 {
            count = 1;
        }
        let unknown = || "<unknown>".to_string();
        let object = format!(
            "{}/{}",
            s(obj, "/involvedObject/kind").to_ascii_lowercase(),
            s(obj, "/involvedObject/name")
        );
        vec![
            Value::from(last.unwrap_or_else(unknown)),
            Value::from(s(obj, "/type")),
            Value::from(s(obj, "/reason")),
            Value::from(object),
            Value::from(s(obj, "/involvedObject/fieldPath")),
            Value::from(event_source(obj)),
            Value::from(s(obj, "/message").trim()),
            Value::from(first.unwrap_or_else(unknown)),
            Value::from(count.to_string()),
            Value::from(s(obj, "/metadata/name")),
        ]
    }

    fn field_value(obj: &Value, field: &str) -> Option<String> {
        let v = match field {
            "involvedObject.kind" => s(obj, "/involvedObject/kind"),
            "involvedObject.namespace" => s(obj, "/involvedObject/namespace"),
            "involvedObject.name" => s(obj, "/involvedObject/name"),
            "involvedObject.uid" => s(obj, "/involvedObject/uid"),
            "involvedObject.apiVersion" => s(obj, "/involvedObject/apiVersion"),
            "involvedObject.resourceVersion" => s(obj, "/involvedObject/resourceVersion"),
            "involvedObject.fieldPath" => s(obj, "/involvedObject/fieldPath"),
            "reason" => s(obj, "/reason"),
            "reportingComponent" => s(obj, "/reportingComponent"),
            "source" => s(obj, "/source/component"),
            "type" => s(obj, "/type"),
            _ => return None,
        };
        Some(v.to_string())
    }
}

/// Upstream `formatEventSource`: `component, host`, falling back to the reporting controller.
fn event_source(obj: &Value) -> String {
    let (c, h) = (s(obj, "/source/component"), s(obj, "/source/host"));
    let (c, h) = if c.is_empty() && h.is_empty() {
        (s(obj, "/reportingComponent"), s(obj, "/reportingInstance"))
    } else {
        (c, h)
    };
    if h.is_empty() {
        c.to_string()
    } else {
        format!("{c}, {h}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;
    use serde_json::json;

    #[test]
    fn row_and_fields() {
        let st = Typed::<Event>::new();
        let ev = json!({"metadata": {"name": "web.1", "namespace": "d"}, "type": "Normal", "reason": "Scheduled", "message": "Successfully assigned d/web to n1",
            "involvedObject": {"kind": "Pod", "name": "web", "namespace": "d"}, "source": {"component": "default-scheduler"},
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:30Z", "count": 2});
        let row = st.row(&ev, "2026-01-01T00:01:00Z".parse().unwrap());
        assert_eq!(
            row[..4],
            [
                json!("30s"),
                json!("Normal"),
                json!("Scheduled"),
                json!("pod/web")
            ]
        );
        assert_eq!(row[6], "Successfully assigned d/web to n1");
        assert_eq!(row[8], "2");
        assert_eq!(st.columns().len(), row.len());
        assert_eq!(
            st.field_value(&ev, "involvedObject.name").as_deref(),
            Some("web")
        );
        assert_eq!(
            st.field_value(&ev, "source").as_deref(),
            Some("default-scheduler")
        );
        assert!(st.validate(&ev).is_empty());
    }
}
