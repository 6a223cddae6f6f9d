//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) → the JSON object the JSON
//! path would have received.
//!
//! kubectl and client-go 1.32+ send built-in kinds as protobuf (`kubectl create configmap`, `create
//! token`, `auth can-i`, `scale`, …). The API server works on `serde_json::Value`, so we decode once at
//! the edge with [`decode_body`] and everything after it is unchanged.
//!
//! Wire format: the 4-byte magic `k8s\0`, then a `runtime.Unknown` message: `typeMeta` (1) holding
//! `apiVersion` (1) and `kind` (2), `raw` (2) the object's own message, `contentEncoding` (3),
//! `contentType` (4). `raw` is decoded dynamically against `data/protobuf/schema.json`, a table of every
//! message's fields (tag, JSON name, kind, flags) that `cargo xtask protobuf-schema` derives from the
//! k8s-pb crate (tags and types), k8s-openapi (JSON names) and the Go struct tags (which zero values Go
//! serialises). Runtime needs nothing but that table.
//!
//! JSON shape rules, chosen to match what Go's `encoding/json` emits for the same object:
//! - well-known types: `resource.Quantity` → its string; `meta/v1.Time` → RFC 3339 seconds,
//!   `MicroTime` → with microseconds (an empty one is Go's zero time → `null`, as kubectl's JSON has
//!   `creationTimestamp: null`); `Duration` → Go duration string (`1h0m0s`); `intstr.IntOrString` →
//!   number or string; `runtime.RawExtension`,
//!   `FieldsV1` and apiextensions `JSON` → the embedded JSON; `JSONSchemaPropsOr{Bool,Array,StringArray}`
//!   → the schema, or the bool / array they carry instead;
//! - `bytes` → base64 (Secret `data`); maps (repeated key 1 / value 2 entries) → objects;
//! - Go writes every non-pointer scalar, so a zero on the wire is dropped unless the field keeps zeros
//!   (a pointer such as `replicas`, or no `omitempty`): `replicas: 0` survives, `generation: 0` does not;
//! - embedded messages are always emitted (`status: {}`), repeated fields only when non-empty; a nil
//!   pointer, slice or map without `omitempty` is absent on the wire and written as `null`, as Go does;
//! - a field with an empty JSON name is Go's `json:",inline"` embedding: its fields join the parent;
//! - unknown fields are skipped; hostile input (truncated varints, lengths past the end, deep nesting)
//!   yields a [`ProtobufError`], never a panic.

mod schema;
mod wire;

use serde_json::{Map, Value};

pub use schema::{Field, FieldKind, Schema};
use wire::{Reader, WireType};

/// The 4 bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// The media type that selects this decoder.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Nesting bound: real objects stay far below (a Pod is ~8 deep); hostile bodies stop here.
const MAX_DEPTH: usize = 64;

/// Why a protobuf body could not be turned into JSON. Every variant is a client error: the API server
/// answers it with a 400 `BadRequest` Status carrying this message (upstream reports an unregistered
/// kind the same way, `no kind "X" is registered for version "v"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    #[error(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    )]
    BadMagic,
    #[error("unexpected EOF")]
    Truncated,
    #[error("proto: integer overflow")]
    VarintOverflow,
    #[error("proto: illegal wireType {0}")]
    IllegalWireType(u8),
    #[error("proto: wrong wireType = {got} for field {field}")]
    WrongWireType { field: String, got: u8 },
    #[error("proto: invalid UTF-8 in field {0}")]
    InvalidUtf8(String),
    #[error("proto: message nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("no kind {kind:?} is registered for version {api_version:?} in scheme \"skiff\"")]
    UnknownKind { api_version: String, kind: String },
    #[error("object has no apiVersion or kind set in its protobuf envelope")]
    MissingTypeMeta,
    #[error("unsupported protobuf content encoding {0:?}")]
    UnsupportedEncoding(String),
    #[error("field {field} carries invalid embedded JSON: {reason}")]
    EmbeddedJson { field: String, reason: String },
    #[error("protobuf schema table is unreadable: {0}")]
    Schema(String),
}

/// Decode a whole request body (magic + `runtime.Unknown`) into the JSON object, with `apiVersion` and
/// `kind` set first as the JSON path has them.
pub fn decode_body(bytes: &[u8]) -> Result<Value, ProtobufError> {
    let schema = Schema::builtin()?;
    decode_body_with(schema, bytes)
}

/// [`decode_body`] against an explicit schema (tests, or a schema loaded from elsewhere).
pub fn decode_body_with(schema: &Schema, bytes: &[u8]) -> Result<Value, ProtobufError> {
    let rest = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or(ProtobufError::BadMagic)?;
    let envelope = read_unknown(rest)?;
    if !envelope.content_encoding.is_empty() {
        return Err(ProtobufError::UnsupportedEncoding(
            envelope.content_encoding,
        ));
    }
    if envelope.api_version.is_empty() || envelope.kind.is_empty() {
        return Err(ProtobufError::MissingTypeMeta);
    }
    let message = schema
        .message_for_kind(&envelope.api_version, &envelope.kind)
        .ok_or_else(|| ProtobufError::UnknownKind {
            api_version: envelope.api_version.clone(),
            kind: envelope.kind.clone(),
        })?;
    let body = decode_message(schema, message, envelope.raw, 0)?;
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::String(envelope.api_version));
    out.insert("kind".into(), Value::String(envelope.kind));
    if let Value::Object(fields) = body {
        for (k, v) in fields {
            if k != "apiVersion" && k != "kind" {
                out.insert(k, v);
            }
        }
    }
    Ok(Value::Object(out))
}

/// Whether a body looks like Kubernetes protobuf (for servers sniffing a missing Content-Type).
pub fn is_protobuf(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// The `runtime.Unknown` envelope, borrowed from the body.
#[doc(alias = "runtime.Unknown")]
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
}

fn read_unknown(bytes: &[u8]) -> Result<Envelope<'_>, ProtobufError> {
    let mut env = Envelope {
        api_version: String::new(),
        kind: String::new(),
        raw: &[],
        content_encoding: String::new(),
    };
    let mut r = Reader::new(bytes);
    while let Some((tag, wt)) = r.key()? {
        match (tag, wt) {
            (1, WireType::Len) => {
                let mut tm = Reader::new(r.bytes()?);
                while let Some((t, w)) = tm.key()? {
                    match (t, w) {
                        (1, WireType::Len) => {
                            env.api_version = utf8(tm.bytes()?, "typeMeta.apiVersion")?
                        }
                        (2, WireType::Len) => env.kind = utf8(tm.bytes()?, "typeMeta.kind")?,
                        _ => tm.skip(w)?,
                    }
                }
            }
            (2, WireType::Len) => env.raw = r.bytes()?,
            (3, WireType::Len) => env.content_encoding = utf8(r.bytes()?, "contentEncoding")?,
            _ => r.skip(wt)?,
        }
    }
    Ok(env)
}

fn utf8(bytes: &[u8], field: &str) -> Result<String, ProtobufError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtobufError::InvalidUtf8(field.to_string()))
}

const META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.";

/// One message → JSON, special-casing the types whose JSON form is not their protobuf shape.
fn decode_message(
    schema: &Schema,
    name: &str,
    bytes: &[u8],
    depth: usize,
) -> Result<Value, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep);
    }
    match name {
        "k8s.io.apimachinery.pkg.api.resource.Quantity" => {
            return Ok(Value::String(
                scalar_fields(bytes, name)?.string(1)?.unwrap_or_default(),
            ));
        }
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => {
            let f = scalar_fields(bytes, name)?;
            return Ok(if f.varint(1).unwrap_or(0) == 1 {
                Value::String(f.string(3)?.unwrap_or_default())
            } else {
                Value::from(f.varint(2).unwrap_or(0) as i32)
            });
        }
        "k8s.io.apimachinery.pkg.runtime.RawExtension" => {
            return embedded_json(scalar_fields(bytes, name)?.bytes(1), name);
        }
        _ => {}
    }
    if let Some(short) = name.strip_prefix(META) {
        match short {
            "Time" | "MicroTime" => {
                let f = scalar_fields(bytes, name)?;
                return Ok(format_time(f.varint(1), f.varint(2), short == "MicroTime"));
            }
            "Duration" => {
                let f = scalar_fields(bytes, name)?;
                return Ok(Value::String(go_duration(f.varint(1).unwrap_or(0) as i64)));
            }
            "FieldsV1" => return embedded_json(scalar_fields(bytes, name)?.bytes(1), name),
            _ => {}
        }
    }
    if name.starts_with("k8s.io.apiextensions_apiserver.")
        && let Some(v) = decode_schema_union(schema, name, bytes, depth)?
    {
        return Ok(v);
    }

    let fields = schema
        .fields(name)
        .ok_or_else(|| ProtobufError::Schema(format!("no message {name}")))?;
    // Values collected per field index, then emitted in declaration order (Go's struct order).
    let mut values: Vec<Option<Value>> = vec![None; fields.len()];
    let mut r = Reader::new(bytes);
    while let Some((tag, wt)) = r.key()? {
        let Some(idx) = fields.iter().position(|f| f.tag == tag) else {
            r.skip(wt)?;
            continue;
        };
        let field = &fields[idx];
        let slot = &mut values[idx];
        match &field.kind {
            FieldKind::Map(value_kind) => {
                expect(wt, WireType::Len, field)?;
                let (k, v) = decode_map_entry(schema, field, value_kind, r.bytes()?, depth)?;
                let obj = slot.get_or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = obj {
                    m.insert(k, v);
                }
            }
            kind if field.repeated => {
                let arr = slot.get_or_insert_with(|| Value::Array(Vec::new()));
                let Value::Array(items) = arr else { continue };
                if wt == WireType::Len && kind.is_varint() {
                    // Packed repeated numbers.
                    let mut packed = Reader::new(r.bytes()?);
                    while !packed.is_empty() {
                        items.push(varint_value(kind, packed.varint()?));
                    }
                } else {
                    items.push(decode_value(schema, field, kind, wt, &mut r, depth)?);
                }
            }
            kind => {
                let v = decode_value(schema, field, kind, wt, &mut r, depth)?;
                // Repeated occurrences of a singular message merge in protobuf; Go's generated code
                // keeps the last for scalars, which is what overwriting does.
                *slot = Some(v);
            }
        }
    }
    let mut out = Map::new();
    for (field, value) in fields.iter().zip(values) {
        let Some(value) = value else {
            if field.null_when_absent {
                out.insert(field.name.clone(), Value::Null);
            }
            continue;
        };
        if field.kind.is_scalar() && !field.repeated && !field.keep_zero && is_zero(&value) {
            continue;
        }
        if matches!(&value, Value::Array(a) if a.is_empty()) {
            continue;
        }
        // Go `json:",inline"` embedding (Volume's VolumeSource, IngressRule's IngressRuleValue, the
        // LocalObjectReference in key selectors): a proto field whose fields sit in the parent in JSON.
        if field.name.is_empty() {
            if let Value::Object(inner) = value {
                out.extend(inner);
            }
            continue;
        }
        out.insert(field.name.clone(), value);
    }
    Ok(Value::Object(out))
}

/// apiextensions' JSON-schema unions, whose JSON is one of their fields rather than an object:
/// `JSON` (raw 1) → the embedded JSON; `JSONSchemaPropsOrBool` (allows 1, schema 2) → schema or bool;
/// `JSONSchemaPropsOrArray` (schema 1, jsonSchemas 2) and `JSONSchemaPropsOrStringArray` (schema 1,
/// property 2) → schema or array. `None` for every other message.
fn decode_schema_union(
    schema: &Schema,
    name: &str,
    bytes: &[u8],
    depth: usize,
) -> Result<Option<Value>, ProtobufError> {
    let Some((package, short)) = name.rsplit_once('.') else {
        return Ok(None);
    };
    if short == "Json" {
        return embedded_json(scalar_fields(bytes, name)?.bytes(1), name).map(Some);
    }
    if !matches!(
        short,
        "JsonSchemaPropsOrBool" | "JsonSchemaPropsOrArray" | "JsonSchemaPropsOrStringArray"
    ) {
        return Ok(None);
    }
    let props = format!("{package}.JsonSchemaProps");
    let f = scalar_fields(bytes, name)?;
    let schema_tag = if short == "JsonSchemaPropsOrBool" {
        2
    } else {
        1
    };
    if let Some(raw) = f.bytes(schema_tag) {
        return decode_message(schema, &props, raw, depth + 1).map(Some);
    }
    Ok(Some(match short {
        "JsonSchemaPropsOrBool" => Value::Bool(f.varint(1).unwrap_or(0) != 0),
        "JsonSchemaPropsOrArray" => Value::Array(
            f.all_bytes(2)
                .map(|raw| decode_message(schema, &props, raw, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        _ => Value::Array(
            f.all_bytes(2)
                .map(|raw| utf8(raw, name).map(Value::String))
                .collect::<Result<_, _>>()?,
        ),
    }))
}

fn expect(got: WireType, want: WireType, field: &Field) -> Result<(), ProtobufError> {
    if got == want {
        Ok(())
    } else {
        Err(ProtobufError::WrongWireType {
            field: field.name.clone(),
            got: got as u8,
        })
    }
}

fn decode_value(
    schema: &Schema,
    field: &Field,
    kind: &FieldKind,
    wt: WireType,
    r: &mut Reader<'_>,
    depth: usize,
) -> Result<Value, ProtobufError> {
    Ok(match kind {
        FieldKind::String => {
            expect(wt, WireType::Len, field)?;
            Value::String(utf8(r.bytes()?, &field.name)?)
        }
        FieldKind::Bytes => {
            expect(wt, WireType::Len, field)?;
            Value::String(base64(r.bytes()?))
        }
        FieldKind::Int32 | FieldKind::Int64 | FieldKind::Bool => {
            expect(wt, WireType::Varint, field)?;
            varint_value(kind, r.varint()?)
        }
        FieldKind::Double => {
            expect(wt, WireType::Fixed64, field)?;
            let f = f64::from_bits(r.fixed64()?);
            serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
        FieldKind::Message(name) => {
            expect(wt, WireType::Len, field)?;
            decode_message(schema, name, r.bytes()?, depth + 1)?
        }
        FieldKind::Map(_) => {
            return Err(ProtobufError::Schema(format!(
                "map {} nested in a list",
                field.name
            )));
        }
    })
}

fn varint_value(kind: &FieldKind, v: u64) -> Value {
    match kind {
        FieldKind::Bool => Value::Bool(v != 0),
        // int32 is sign-extended to 64 bits on the wire; truncation recovers it.
        FieldKind::Int32 => Value::from(v as i32),
        _ => Value::from(v as i64),
    }
}

fn decode_map_entry(
    schema: &Schema,
    field: &Field,
    value_kind: &FieldKind,
    bytes: &[u8],
    depth: usize,
) -> Result<(String, Value), ProtobufError> {
    let mut key = String::new();
    let mut value = None;
    let mut r = Reader::new(bytes);
    while let Some((tag, wt)) = r.key()? {
        match tag {
            1 => {
                expect(wt, WireType::Len, field)?;
                key = utf8(r.bytes()?, &field.name)?;
            }
            2 => value = Some(decode_value(schema, field, value_kind, wt, &mut r, depth)?),
            _ => r.skip(wt)?,
        }
    }
    // A missing value is the value type's zero, as in Go.
    let value = value.unwrap_or_else(|| match value_kind {
        FieldKind::String | FieldKind::Bytes => Value::String(String::new()),
        FieldKind::Message(name) if name.ends_with(".Quantity") => Value::String(String::new()),
        FieldKind::Message(_) => Value::Object(Map::new()),
        _ => Value::from(0),
    });
    Ok((key, value))
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

/// The scalar fields of a small well-known message, last occurrence wins.
struct Scalars<'a> {
    name: &'a str,
    varints: Vec<(u32, u64)>,
    lens: Vec<(u32, &'a [u8])>,
}

impl<'a> Scalars<'a> {
    fn varint(&self, tag: u32) -> Option<u64> {
        self.varints
            .iter()
            .rev()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| *v)
    }
    fn bytes(&self, tag: u32) -> Option<&'a [u8]> {
        self.lens
            .iter()
            .rev()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| *v)
    }
    fn all_bytes(&self, tag: u32) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.lens
            .iter()
            .filter(move |(t, _)| *t == tag)
            .map(|(_, v)| *v)
    }
    fn string(&self, tag: u32) -> Result<Option<String>, ProtobufError> {
        self.bytes(tag).map(|b| utf8(b, self.name)).transpose()
    }
}

fn scalar_fields<'a>(bytes: &'a [u8], name: &'a str) -> Result<Scalars<'a>, ProtobufError> {
    let mut s = Scalars {
        name,
        varints: Vec::new(),
        lens: Vec::new(),
    };
    let mut r = Reader::new(bytes);
    while let Some((tag, wt)) = r.key()? {
        match wt {
            WireType::Varint => s.varints.push((tag, r.varint()?)),
            WireType::Len => s.lens.push((tag, r.bytes()?)),
            other => r.skip(other)?,
        }
    }
    Ok(s)
}

fn embedded_json(raw: Option<&[u8]>, field: &str) -> Result<Value, ProtobufError> {
    match raw {
        None | Some([]) => Ok(Value::Null),
        Some(raw) => serde_json::from_slice(raw).map_err(|e| ProtobufError::EmbeddedJson {
            field: field.to_string(),
            reason: e.to_string(),
        }),
    }
}

/// `metav1.Time` / `MicroTime` JSON: UTC RFC 3339, seconds (or microseconds). Go's zero time travels as
/// an empty message and comes back as `null`, as Go's JSON writes it.
fn format_time(seconds: Option<u64>, nanos: Option<u64>, micro: bool) -> Value {
    if seconds.is_none() && nanos.is_none() {
        return Value::Null;
    }
    let secs = seconds.unwrap_or(0) as i64;
    let nanos = (nanos.unwrap_or(0) as i32).clamp(0, 999_999_999);
    let Ok(ts) = jiff::Timestamp::new(secs, nanos) else {
        return Value::Null;
    };
    let dt = ts.to_zoned(jiff::tz::TimeZone::UTC);
    let text = if micro {
        dt.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
    } else {
        dt.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    };
    Value::String(text)
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `150ms`, `0s`.
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let neg = nanos < 0;
    let n = nanos.unsigned_abs();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if n < 1_000_000_000 {
        // Sub-second: the largest unit that keeps an integer part.
        let (unit, div) = if n < 1_000 {
            ("ns", 1)
        } else if n < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&fraction(n, div));
        out.push_str(unit);
        return out;
    }
    let hours = n / 3_600_000_000_000;
    let minutes = n / 60_000_000_000 % 60;
    let rest = n % 60_000_000_000;
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&fraction(rest, 1_000_000_000));
    out.push('s');
    out
}

/// `n / div` with Go's trailing-zero-free fraction.
fn fraction(n: u64, div: u64) -> String {
    let whole = n / div;
    let frac = n % div;
    if frac == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Standard base64 with padding, as Go's `encoding/json` writes `[]byte`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(150_000_000), "150ms");
        assert_eq!(go_duration(1_500), "1.5µs");
        assert_eq!(go_duration(-2_000_000_000), "-2s");
        assert_eq!(go_duration(3_723_000_000_000), "1h2m3s");
    }

    #[test]
    fn base64_matches_std_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"hello\xff"), "aGVsbG//");
    }

    #[test]
    fn times() {
        assert_eq!(
            format_time(Some(1_767_323_045), None, false),
            "2026-01-02T03:04:05Z"
        );
        assert_eq!(
            format_time(Some(1_767_323_045), Some(123_456_789), true),
            "2026-01-02T03:04:05.123456Z"
        );
        assert_eq!(format_time(None, None, false), Value::Null);
    }

    #[test]
    fn magic_is_checked() {
        assert_eq!(
            decode_body(b"{\"kind\":\"x\"}"),
            Err(ProtobufError::BadMagic)
        );
        assert_eq!(decode_body(b""), Err(ProtobufError::BadMagic));
        assert!(is_protobuf(b"k8s\0\x0a"));
    }

    #[test]
    fn builtin_schema_loads_and_knows_core_kinds() {
        let s = Schema::builtin().unwrap();
        assert_eq!(
            s.message_for_kind("v1", "ConfigMap"),
            Some("k8s.io.api.core.v1.ConfigMap")
        );
        assert_eq!(
            s.message_for_kind("apps/v1", "Deployment"),
            Some("k8s.io.api.apps.v1.Deployment")
        );
        assert!(s.message_for_kind("v1", "NoSuchKind").is_none());
        let pod_status = s.fields("k8s.io.api.core.v1.PodStatus").unwrap();
        assert!(pod_status.iter().any(|f| f.name == "hostIP"));
        assert!(pod_status.iter().any(|f| f.name == "podIPs" && f.repeated));
    }
}
