//! Request bodies of the auth APIs in Kubernetes' protobuf encoding.
//!
//! kubectl's typed clients (`auth whoami`, `auth can-i`, `create token`) POST
//! `application/vnd.kubernetes.protobuf`, and kubectl 1.32 does not fall back to JSON on 415. These
//! few messages are small, so they are decoded here from their field tables (after upstream's
//! `generated.proto`) into the same JSON the handlers take; answers can stay JSON, which the
//! clients also accept.

use serde_json::{Map, Value, json};

/// Media type kubectl sends for built-in kinds.
pub const PROTOBUF_MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
/// `k8s\0`: the prefix of every protobuf-encoded Kubernetes object.
const MAGIC: &[u8] = b"k8s\x00";

#[derive(Clone, Copy)]
enum Ty {
    Str,
    Strs,
    I64,
    Msg(&'static [Field]),
    /// `map<string, ExtraValue>`.
    Extra,
}

type Field = (u64, &'static str, Ty);

const OBJECT_META: &[Field] = &[
    (1, "name", Ty::Str),
    (2, "generateName", Ty::Str),
    (3, "namespace", Ty::Str),
];
const RESOURCE_ATTRIBUTES: &[Field] = &[
    (1, "namespace", Ty::Str),
    (2, "verb", Ty::Str),
    (3, "group", Ty::Str),
    (4, "version", Ty::Str),
    (5, "resource", Ty::Str),
    (6, "subresource", Ty::Str),
    (7, "name", Ty::Str),
];
const NON_RESOURCE_ATTRIBUTES: &[Field] = &[(1, "path", Ty::Str), (2, "verb", Ty::Str)];
const SSAR_SPEC: &[Field] = &[
    (1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRIBUTES)),
    (2, "nonResourceAttributes", Ty::Msg(NON_RESOURCE_ATTRIBUTES)),
];
const SAR_SPEC: &[Field] = &[
    (1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRIBUTES)),
    (2, "nonResourceAttributes", Ty::Msg(NON_RESOURCE_ATTRIBUTES)),
    (3, "user", Ty::Str),
    (4, "groups", Ty::Strs),
    (5, "extra", Ty::Extra),
    (6, "uid", Ty::Str),
];
const SSRR_SPEC: &[Field] = &[(1, "namespace", Ty::Str)];
const TOKEN_REVIEW_SPEC: &[Field] = &[(1, "token", Ty::Str), (2, "audiences", Ty::Strs)];
const BOUND_OBJECT_REF: &[Field] = &[
    (1, "kind", Ty::Str),
    (2, "apiVersion", Ty::Str),
    (3, "name", Ty::Str),
    (4, "uid", Ty::Str),
];
const TOKEN_REQUEST_SPEC: &[Field] = &[
    (1, "audiences", Ty::Strs),
    (3, "boundObjectRef", Ty::Msg(BOUND_OBJECT_REF)),
    (4, "expirationSeconds", Ty::I64),
];

/// Top-level field tables: metadata = 1, spec = 2 (status is the server's to fill).
fn object_fields(kind: &str) -> Option<&'static [Field]> {
    const fn with_spec(spec: &'static [Field]) -> [Field; 2] {
        [
            (1, "metadata", Ty::Msg(OBJECT_META)),
            (2, "spec", Ty::Msg(spec)),
        ]
    }
    static SSAR: [Field; 2] = with_spec(SSAR_SPEC);
    static SAR: [Field; 2] = with_spec(SAR_SPEC);
    static SSRR: [Field; 2] = with_spec(SSRR_SPEC);
    static TR: [Field; 2] = with_spec(TOKEN_REVIEW_SPEC);
    static TREQ: [Field; 2] = with_spec(TOKEN_REQUEST_SPEC);
    static SSR: [Field; 1] = [(1, "metadata", Ty::Msg(OBJECT_META))];
    Some(match kind {
        "SelfSubjectAccessReview" => &SSAR,
        "SubjectAccessReview" | "LocalSubjectAccessReview" => &SAR,
        "SelfSubjectRulesReview" => &SSRR,
        "TokenReview" => &TR,
        "TokenRequest" => &TREQ,
        "SelfSubjectReview" => &SSR,
        _ => return None,
    })
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.buf.split_first().ok_or("truncated varint")?;
            self.buf = rest;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = usize::try_from(self.varint()?).map_err(|_| "length overflow")?;
        if n > self.buf.len() {
            return Err("truncated field".into());
        }
        let (b, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(b)
    }

    fn skip(&mut self, wire: u64) -> Result<(), String> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => self.take(8),
            2 => self.bytes().map(|_| ()),
            5 => self.take(4),
            w => Err(format!("unsupported wire type {w}")),
        }
    }

    fn take(&mut self, n: usize) -> Result<(), String> {
        if n > self.buf.len() {
            return Err("truncated field".into());
        }
        self.buf = &self.buf[n..];
        Ok(())
    }

    /// Each `(field number, wire type)` and the reader positioned at its value.
    fn next_key(&mut self) -> Result<Option<(u64, u64)>, String> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let k = self.varint()?;
        Ok(Some((k >> 3, k & 7)))
    }
}

fn utf8(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "invalid UTF-8 in string field".to_string())
}

fn decode_message(buf: &[u8], fields: &[Field]) -> Result<Value, String> {
    let mut r = Reader { buf };
    let mut out = Map::new();
    while let Some((num, wire)) = r.next_key()? {
        let Some(&(_, name, ty)) = fields.iter().find(|f| f.0 == num) else {
            r.skip(wire)?;
            continue;
        };
        let expect = |want: u64| {
            if wire == want {
                Ok(())
            } else {
                Err(format!("field {name}: wire type {wire}, expected {want}"))
            }
        };
        match ty {
            Ty::Str => {
                expect(2)?;
                out.insert(name.into(), json!(utf8(r.bytes()?)?));
            }
            Ty::Strs => {
                expect(2)?;
                let s = utf8(r.bytes()?)?;
                match out.entry(name).or_insert_with(|| json!([])) {
                    Value::Array(a) => a.push(json!(s)),
                    _ => return Err(format!("field {name} repeated inconsistently")),
                }
            }
            Ty::I64 => {
                expect(0)?;
                // int64 is two's complement in a varint.
                out.insert(name.into(), json!(r.varint()? as i64));
            }
            Ty::Msg(sub) => {
                expect(2)?;
                out.insert(name.into(), decode_message(r.bytes()?, sub)?);
            }
            Ty::Extra => {
                expect(2)?;
                // A map entry: key = 1 (string), value = 2 (ExtraValue { repeated string items = 1 }).
                const ENTRY: &[Field] = &[
                    (1, "key", Ty::Str),
                    (2, "value", Ty::Msg(&[(1, "items", Ty::Strs)])),
                ];
                let e = decode_message(r.bytes()?, ENTRY)?;
                let key = e
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let items = e
                    .pointer("/value/items")
                    .cloned()
                    .unwrap_or_else(|| json!([]));
                match out.entry(name).or_insert_with(|| json!({})) {
                    Value::Object(m) => {
                        m.insert(key, items);
                    }
                    _ => return Err(format!("field {name} repeated inconsistently")),
                }
            }
        }
    }
    Ok(Value::Object(out))
}

/// Decodes a protobuf request body (`k8s\0` + `runtime.Unknown`) of one of the auth APIs' kinds
/// into its JSON form, with `apiVersion` and `kind` from the envelope. Errors name what is wrong;
/// an unsupported kind is an error too (the caller answers 415).
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or("protobuf body without the k8s envelope prefix")?;
    const TYPE_META: &[Field] = &[(1, "apiVersion", Ty::Str), (2, "kind", Ty::Str)];
    let mut r = Reader { buf: rest };
    let (mut type_meta, mut raw) = (json!({}), None);
    while let Some((num, wire)) = r.next_key()? {
        match (num, wire) {
            (1, 2) => type_meta = decode_message(r.bytes()?, TYPE_META)?,
            (2, 2) => raw = Some(r.bytes()?),
            (3, 2) => {
                if !r.bytes()?.is_empty() {
                    return Err("compressed protobuf bodies are not supported".into());
                }
            }
            _ => r.skip(wire)?,
        }
    }
    let kind = type_meta.get("kind").and_then(Value::as_str).unwrap_or("");
    let fields =
        object_fields(kind).ok_or_else(|| format!("no protobuf decoder for kind {kind:?}"))?;
    let mut obj = decode_message(raw.unwrap_or_default(), fields)?;
    obj["apiVersion"] = type_meta.get("apiVersion").cloned().unwrap_or(Value::Null);
    obj["kind"] = json!(kind);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    fn bytes_field(n: u64, b: &[u8], out: &mut Vec<u8>) {
        varint(n << 3 | 2, out);
        varint(b.len() as u64, out);
        out.extend_from_slice(b);
    }
    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let mut tm = Vec::new();
        bytes_field(1, api_version.as_bytes(), &mut tm);
        bytes_field(2, kind.as_bytes(), &mut tm);
        let mut out = MAGIC.to_vec();
        bytes_field(1, &tm, &mut out);
        bytes_field(2, raw, &mut out);
        bytes_field(3, b"", &mut out);
        bytes_field(4, b"", &mut out);
        out
    }

    #[test]
    fn decodes_a_self_subject_access_review() {
        let mut ra = Vec::new();
        bytes_field(1, b"default", &mut ra);
        bytes_field(2, b"create", &mut ra);
        bytes_field(3, b"apps", &mut ra);
        bytes_field(5, b"deployments", &mut ra);
        let mut spec = Vec::new();
        bytes_field(1, &ra, &mut spec);
        let mut raw = Vec::new();
        bytes_field(1, b"", &mut raw); // empty ObjectMeta
        bytes_field(2, &spec, &mut raw);
        let v = decode(&envelope(
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview",
            &raw,
        ))
        .unwrap();
        assert_eq!(v["kind"], "SelfSubjectAccessReview");
        assert_eq!(v["apiVersion"], "authorization.k8s.io/v1");
        assert_eq!(
            v["spec"]["resourceAttributes"],
            json!({"namespace": "default", "verb": "create", "group": "apps", "resource": "deployments"})
        );
    }

    #[test]
    fn decodes_a_token_request_and_subject_review_extras() {
        let mut bound = Vec::new();
        bytes_field(1, b"Pod", &mut bound);
        bytes_field(3, b"web", &mut bound);
        let mut spec = Vec::new();
        bytes_field(1, b"vault", &mut spec);
        bytes_field(1, b"sts", &mut spec);
        bytes_field(3, &bound, &mut spec);
        varint(4 << 3, &mut spec);
        varint(1200, &mut spec);
        let mut raw = Vec::new();
        bytes_field(2, &spec, &mut raw);
        let v = decode(&envelope("authentication.k8s.io/v1", "TokenRequest", &raw)).unwrap();
        assert_eq!(v["spec"]["audiences"], json!(["vault", "sts"]));
        assert_eq!(v["spec"]["expirationSeconds"], 1200);
        assert_eq!(
            v["spec"]["boundObjectRef"],
            json!({"kind": "Pod", "name": "web"})
        );

        let mut items = Vec::new();
        bytes_field(1, b"a", &mut items);
        let mut entry = Vec::new();
        bytes_field(1, b"k", &mut entry);
        bytes_field(2, &items, &mut entry);
        let mut spec = Vec::new();
        bytes_field(3, b"jane", &mut spec);
        bytes_field(4, b"devs", &mut spec);
        bytes_field(5, &entry, &mut spec);
        let mut raw = Vec::new();
        bytes_field(2, &spec, &mut raw);
        let v = decode(&envelope(
            "authorization.k8s.io/v1",
            "SubjectAccessReview",
            &raw,
        ))
        .unwrap();
        assert_eq!(
            v["spec"],
            json!({"user": "jane", "groups": ["devs"], "extra": {"k": ["a"]}})
        );
    }

    #[test]
    fn refuses_garbage_without_panicking() {
        assert!(decode(b"{}").is_err());
        assert!(decode(&envelope("v1", "Pod", b"")).is_err());
        let mut bad = envelope("authentication.k8s.io/v1", "TokenReview", b"");
        bad.extend_from_slice(&[0x12, 0xff, 0xff, 0xff, 0xff, 0x0f]); // raw with a huge length
        assert!(decode(&bad).is_err());
        assert!(decode(&[b'k', b'8', b's', 0, 0x80]).is_err());
        let v = decode(&envelope(
            "authentication.k8s.io/v1",
            "SelfSubjectReview",
            b"",
        ))
        .unwrap();
        assert_eq!(v["kind"], "SelfSubjectReview");
    }
}
