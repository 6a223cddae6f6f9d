//! Scalars between the wire's text forms and the handler contract's JSON forms (see the crate docs).

use serde_json::Value;

use crate::model::ShapeType;

/// Why a wire text could not become the shape's type (the codec words the error per protocol).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadScalar {
    pub expected: &'static str,
}

/// Parse a wire text (query parameter, URI label, header, XML text) into the contract's JSON form.
pub fn from_text(kind: ShapeType, text: &str) -> Result<Value, BadScalar> {
    match kind {
        ShapeType::String => Ok(Value::String(text.to_string())),
        ShapeType::Integer | ShapeType::Long => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| BadScalar {
                expected: "Integer",
            }),
        ShapeType::Float | ShapeType::Double => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or(BadScalar { expected: "Double" }),
        ShapeType::Boolean => match text.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(BadScalar {
                expected: "Boolean",
            }),
        },
        ShapeType::Timestamp => parse_timestamp_text(text)
            .map(|t| Value::String(rfc3339(t)))
            .ok_or(BadScalar {
                expected: "Timestamp",
            }),
        // Already base64 on the wire (query/XML) and in the contract.
        ShapeType::Blob => Ok(Value::String(text.to_string())),
        ShapeType::Structure | ShapeType::List | ShapeType::Map => Err(BadScalar {
            expected: "Structure",
        }),
    }
}

/// Accepts ISO 8601 / RFC 3339 (with or without fraction or zone), epoch seconds and RFC 7231 dates:
/// AWS servers accept every format on input whatever the protocol's default.
pub fn parse_timestamp_text(text: &str) -> Option<jiff::Timestamp> {
    let t = text.trim();
    if let Ok(ts) = t.parse::<jiff::Timestamp>() {
        return Some(ts);
    }
    if let Ok(secs) = t.parse::<f64>() {
        return epoch(secs);
    }
    if let Ok(dt) = t.parse::<jiff::civil::DateTime>() {
        return dt
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp());
    }
    if let Ok(z) = jiff::fmt::rfc2822::parse(t) {
        return Some(z.timestamp());
    }
    // RFC 7231 ends in "GMT", which RFC 2822 parsers may not accept.
    t.strip_suffix(" GMT")
        .and_then(|s| jiff::fmt::rfc2822::parse(&format!("{s} +0000")).ok())
        .map(|z| z.timestamp())
}

fn epoch(secs: f64) -> Option<jiff::Timestamp> {
    if !secs.is_finite() {
        return None;
    }
    jiff::Timestamp::from_millisecond((secs * 1000.0).round() as i64).ok()
}

/// A JSON timestamp in the contract (RFC 3339 string) or, leniently, epoch seconds.
pub fn timestamp_of(v: &Value) -> Option<jiff::Timestamp> {
    match v {
        Value::String(s) => parse_timestamp_text(s),
        Value::Number(n) => n.as_f64().and_then(epoch),
        _ => None,
    }
}

/// The contract's timestamp form: RFC 3339 in UTC, fraction only when there is one.
pub fn rfc3339(t: jiff::Timestamp) -> String {
    t.to_string()
}

/// ISO 8601 with milliseconds, what the query/ec2/rest-xml services render.
pub fn iso8601(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// RFC 7231 `Mon, 23 Nov 2026 13:25:00 GMT` (REST headers).
pub fn http_date(t: jiff::Timestamp) -> String {
    t.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Epoch seconds as a JSON number (json/rest-json bodies).
pub fn epoch_seconds(t: jiff::Timestamp) -> Value {
    let ms = t.as_millisecond();
    if ms % 1000 == 0 {
        Value::from(ms / 1000)
    } else {
        serde_json::Number::from_f64(ms as f64 / 1000.0).map_or(Value::Null, Value::Number)
    }
}

/// A scalar output value as text (XML body, header). `None` when the value is not a scalar.
pub fn to_text(
    kind: ShapeType,
    v: &Value,
    timestamp: fn(jiff::Timestamp) -> String,
) -> Option<String> {
    match (kind, v) {
        (ShapeType::Timestamp, v) => timestamp_of(v).map(timestamp),
        (_, Value::String(s)) => Some(s.clone()),
        (_, Value::Bool(b)) => Some(b.to_string()),
        (_, Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_wire_format() {
        for text in [
            "2026-11-23T13:25:00Z",
            "2026-11-23T13:25:00.000Z",
            "2026-11-23T13:25:00",
            "1795440300",
            "Mon, 23 Nov 2026 13:25:00 GMT",
        ] {
            assert_eq!(
                from_text(ShapeType::Timestamp, text),
                Ok(Value::String("2026-11-23T13:25:00Z".into())),
                "{text}"
            );
        }
        let t: jiff::Timestamp = "2026-11-23T13:25:00.5Z".parse().expect("ts");
        assert_eq!(iso8601(t), "2026-11-23T13:25:00.500Z");
        assert_eq!(http_date(t), "Mon, 23 Nov 2026 13:25:00 GMT");
        assert_eq!(epoch_seconds(t), serde_json::json!(1795440300.5));
    }

    #[test]
    fn typed_scalars_reject_garbage() {
        assert_eq!(from_text(ShapeType::Integer, "5"), Ok(Value::from(5)));
        assert!(from_text(ShapeType::Integer, "five").is_err());
        assert_eq!(from_text(ShapeType::Boolean, "True"), Ok(Value::Bool(true)));
        assert!(from_text(ShapeType::Boolean, "yes").is_err());
    }
}
