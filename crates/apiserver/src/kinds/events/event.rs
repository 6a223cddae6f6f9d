//! Event (`events`, `ev`, events.k8s.io/v1): the newer event shape (`regarding`, `note`,
//! `reportingController`), printed with the same columns as core events.

use k8s_openapi::api::events::v1::Event as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use crate::kinds::typed::{Kind, col, i, s};
use crate::registry::strategy::Column;

pub(crate) struct Event;

impl Kind for Event {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["ev"];

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if obj.get("eventTime").is_none_or(Value::is_null) {
            errs.push(FieldError::required("eventTime", ""));
        }
        for f in [
            "reportingController",
            "reportingInstance",
            "action",
            "reason",
        ] {
            if s(obj, &format!("/{f}")).is_empty() {
                errs.push(FieldError::required(f, ""));
            }
        }
        let ty = s(obj, "/type");
        if ty != "Normal" && ty != "Warning" {
            errs.push(FieldError::invalid(
                "type",
                json!(ty),
                "has invalid value: ".to_string() + ty,
            ));
        }
        errs
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
                "The object that this event is about.",
                0,
            ),
            col(
                "Message",
                "string",
                "A human-readable description of the status of this operation.",
                0,
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
        let last = since("/series/lastObservedTime")
            .or_else(|| since("/deprecatedLastTimestamp"))
            .or_else(|| since("/eventTime"))
            .unwrap_or_else(|| "<unknown>".into());
        let count = if obj.get("series").is_some_and(|v| !v.is_null()) {
            i(obj, "/series/count")
        } else {
            i(obj, "/deprecatedCount").max(1)
        };
        vec![
            json!(last),
            json!(s(obj, "/type")),
            json!(s(obj, "/reason")),
            json!(format!(
                "{}/{}",
                s(obj, "/regarding/kind").to_ascii_lowercase(),
                s(obj, "/regarding/name")
            )),
            json!(s(obj, "/note")),
            json!(count.to_string()),
            json!(s(obj, "/metadata/name")),
        ]
    }

    fn field_value(obj: &Value, field: &str) -> Option<String> {
        let v = match field {
            "regarding.kind" => s(obj, "/regarding/kind"),
            "regarding.namespace" => s(obj, "/regarding/namespace"),
            "regarding.name" => s(obj, "/regarding/name"),
            "regarding.uid" => s(obj, "/regarding/uid"),
            "reason" => s(obj, "/reason"),
            "reportingController" => s(obj, "/reportingController"),
            "type" => s(obj, "/type"),
            _ => return None,
        };
        Some(v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;

    #[test]
    fn rules_and_row() {
        let st = Typed::<Event>::new();
        let ev = json!({"metadata": {"name": "e"}, "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "skiff/scheduler", "reportingInstance": "s-1",
            "action": "Binding", "reason": "Scheduled", "type": "Normal", "note": "ok", "regarding": {"kind": "Pod", "name": "web"}});
        assert!(st.validate(&ev).is_empty(), "{:?}", st.validate(&ev));
        let row = st.row(&ev, "2026-01-01T00:00:05Z".parse().unwrap());
        assert_eq!(
            row[..5],
            [
                json!("5s"),
                json!("Normal"),
                json!("Scheduled"),
                json!("pod/web"),
                json!("ok")
            ]
        );
        assert_eq!(st.info().group, "events.k8s.io");
    }
}
