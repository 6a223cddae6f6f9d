//! The structural schema of a custom resource version (`openAPIV3Schema`) applied to objects as
//! apiextensions-apiserver does: pruning of unknown fields, defaulting, then validation with
//! kube-openapi's wording turned into `field.Error`s (`spec.replicas: Invalid value: "string":
//! spec.replicas in body must be of type integer: "string"`).
//!
//! Schemas are plain JSON (`serde_json::Value`): the CRD's own document, read where needed, so the
//! stored CRD is the single source of truth. The root's `apiVersion`, `kind` and `metadata` are the
//! registry's business (type meta and `ObjectMeta` rules) and are neither pruned nor validated here.

use serde_json::{Map, Value, json};
use skiff_k8s_core::status::{FieldError, FieldErrorKind, go_quote};

/// Root fields that belong to the object envelope rather than to the schema.
const ENVELOPE: [&str; 3] = ["apiVersion", "kind", "metadata"];

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// The schema of `properties[key]`, or of `additionalProperties` when it is a schema; `Some(None)`
/// when the key is allowed but unconstrained; `None` when the key is unknown (pruned).
fn property_schema<'a>(schema: &'a Value, key: &str) -> Option<Option<&'a Value>> {
    if let Some(p) = schema.get("properties").and_then(|p| p.get(key)) {
        return Some(Some(p));
    }
    match schema.get("additionalProperties") {
        Some(Value::Bool(true)) => Some(None),
        Some(s @ Value::Object(_)) => Some(Some(s)),
        _ if flag(schema, "x-kubernetes-preserve-unknown-fields") => Some(None),
        _ => None,
    }
}

/// The fields of `ObjectMeta`: a custom resource's `metadata` is decoded as one, so anything else
/// there is dropped like an unknown field.
const OBJECT_META_FIELDS: [&str; 16] = [
    "annotations",
    "creationTimestamp",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
    "finalizers",
    "generateName",
    "generation",
    "labels",
    "managedFields",
    "name",
    "namespace",
    "ownerReferences",
    "resourceVersion",
    "selfLink",
    "uid",
    "clusterName",
];

/// Drops fields the schema does not know (and `null`s of non-nullable fields, which upstream prunes
/// before defaulting); returns the dropped paths for `fieldValidation` warnings.
pub fn prune(obj: &mut Value, schema: &Value) -> Vec<String> {
    let mut dropped = Vec::new();
    if let Some(map) = obj.as_object_mut() {
        prune_map(map, schema, "", true, &mut dropped);
        prune_meta(map, "", &mut dropped);
    }
    dropped
}

fn prune_meta(map: &mut Map<String, Value>, path: &str, dropped: &mut Vec<String>) {
    if let Some(Value::Object(meta)) = map.get_mut("metadata") {
        let unknown: Vec<String> = meta
            .keys()
            .filter(|k| !OBJECT_META_FIELDS.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in unknown {
            meta.remove(&k);
            dropped.push(format!("{}.{k}", child_path(path, "metadata")));
        }
    }
}

fn prune_map(
    map: &mut Map<String, Value>,
    schema: &Value,
    path: &str,
    root: bool,
    dropped: &mut Vec<String>,
) {
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        if root && ENVELOPE.contains(&key.as_str()) {
            continue;
        }
        let p = child_path(path, &key);
        match property_schema(schema, &key) {
            None => {
                map.remove(&key);
                dropped.push(p);
            }
            Some(None) => {}
            Some(Some(sub)) => {
                let Some(v) = map.get_mut(&key) else {
                    continue;
                };
                if v.is_null() && !flag(sub, "nullable") {
                    map.remove(&key);
                    continue;
                }
                prune_value(v, sub, &p, dropped);
            }
        }
    }
}

fn prune_value(v: &mut Value, schema: &Value, path: &str, dropped: &mut Vec<String>) {
    match v {
        Value::Object(m) if !has_type(schema, "array") => {
            let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
            let declares =
                schema.get("properties").is_some() || schema.get("additionalProperties").is_some();
            // An object with neither properties nor preserve-unknown-fields keeps nothing upstream,
            // except when it is int-or-string/embedded (never an object then) or untyped.
            if preserve && !declares {
                return;
            }
            if !declares && !has_type(schema, "object") {
                return;
            }
            // An embedded object (`x-kubernetes-embedded-resource`) keeps its type and object meta.
            let embedded = flag(schema, "x-kubernetes-embedded-resource");
            prune_map(m, schema, path, embedded, dropped);
            if embedded {
                prune_meta(m, path, dropped);
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, it) in items.iter_mut().enumerate() {
                    prune_value(it, item_schema, &format!("{path}[{i}]"), dropped);
                }
            }
        }
        _ => {}
    }
}

fn has_type(schema: &Value, t: &str) -> bool {
    schema.get("type").and_then(Value::as_str) == Some(t)
}

/// Fills `default`s of absent fields, depth first, as the structural defaulting algorithm does
/// (defaults of an object's properties apply once the object exists, including when it was itself
/// just defaulted).
pub fn apply_defaults(obj: &mut Value, schema: &Value) {
    default_value(obj, schema);
}

fn default_value(v: &mut Value, schema: &Value) {
    match v {
        Value::Object(m) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (key, sub) in props {
                    let absent = m
                        .get(key)
                        .is_none_or(|x| x.is_null() && !flag(sub, "nullable"));
                    if absent && let Some(d) = sub.get("default") {
                        m.insert(key.clone(), d.clone());
                    }
                    if let Some(child) = m.get_mut(key) {
                        default_value(child, sub);
                    }
                }
            }
            if let Some(extra @ Value::Object(_)) = schema.get("additionalProperties") {
                let declared = schema.get("properties").and_then(Value::as_object);
                for (key, child) in m.iter_mut() {
                    if declared.is_none_or(|d| !d.contains_key(key)) {
                        default_value(child, extra);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for it in items {
                    default_value(it, item_schema);
                }
            }
        }
        _ => {}
    }
}

/// Validates the object (envelope excluded) against the schema.
pub fn validate(obj: &Value, schema: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(map) = obj.as_object() else {
        errs.push(type_error("", obj, "object"));
        return errs;
    };
    let mut body = map.clone();
    for k in ENVELOPE {
        body.remove(k);
    }
    let mut root_schema = schema.clone();
    if let Some(req) = root_schema
        .get_mut("required")
        .and_then(Value::as_array_mut)
    {
        req.retain(|r| !r.as_str().is_some_and(|r| ENVELOPE.contains(&r)));
    }
    validate_object(&body, &root_schema, "", &mut errs);
    errs
}

/// JSON type name as kube-openapi reports it.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Name used in messages: the path, or `body` for the root.
fn in_body(path: &str) -> String {
    if path.is_empty() {
        "body".to_string()
    } else {
        path.to_string()
    }
}

fn type_error(path: &str, v: &Value, want: &str) -> FieldError {
    let actual = type_name(v);
    FieldError {
        path: path.to_string(),
        kind: FieldErrorKind::TypeInvalid,
        value: Some(json!(actual)),
        detail: format!(
            "{} in body must be of type {want}: {}",
            in_body(path),
            go_quote(actual)
        ),
    }
}

fn type_matches(v: &Value, want: &str) -> bool {
    match (want, v) {
        ("object", Value::Object(_))
        | ("array", Value::Array(_))
        | ("string", Value::String(_))
        | ("boolean", Value::Bool(_)) => true,
        ("number", Value::Number(_)) => true,
        ("integer", Value::Number(n)) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn validate_value(v: &Value, schema: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if v.is_null() {
        if !flag(schema, "nullable")
            && let Some(t) = schema.get("type").and_then(Value::as_str)
        {
            errs.push(type_error(path, v, t));
        }
        return;
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !matches!(v, Value::String(_)) && !type_matches(v, "integer") {
            errs.push(type_error(path, v, "integer,string"));
            return;
        }
    } else if let Some(t) = schema.get("type").and_then(Value::as_str)
        && !type_matches(v, t)
    {
        errs.push(type_error(path, v, t));
        return;
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(v)
    {
        let supported: Vec<String> = options
            .iter()
            .map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_string))
            .collect();
        let refs: Vec<&str> = supported.iter().map(String::as_str).collect();
        errs.push(FieldError::not_supported(path, v.clone(), &refs));
    }
    match v {
        Value::String(s) => validate_string(s, v, schema, path, errs),
        Value::Number(_) => validate_number(v, schema, path, errs),
        Value::Array(items) => validate_array(items, v, schema, path, errs),
        Value::Object(m) => validate_object(m, schema, path, errs),
        _ => {}
    }
    for sub in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        validate_value(v, sub, path, errs);
    }
    for (key, need) in [("anyOf", 1usize), ("oneOf", 1)] {
        let Some(alts) = schema.get(key).and_then(Value::as_array) else {
            continue;
        };
        let passing = alts
            .iter()
            .filter(|alt| {
                let mut e = Vec::new();
                validate_value(v, alt, path, &mut e);
                e.is_empty()
            })
            .count();
        let ok = if key == "oneOf" {
            passing == need
        } else {
            passing >= need
        };
        if !ok {
            let what = if key == "oneOf" { "oneOf" } else { "anyOf" };
            errs.push(FieldError::invalid(
                path,
                v.clone(),
                format!("{} in body must validate {what}", in_body(path)),
            ));
        }
    }
}

fn validate_string(s: &str, v: &Value, schema: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let chars = s.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && chars < min
    {
        errs.push(FieldError::invalid(
            path,
            v.clone(),
            format!(
                "{} in body should be at least {min} chars long",
                in_body(path)
            ),
        ));
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && chars > max
    {
        errs.push(FieldError::too_long(path, max as usize));
    }
    if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
        match compiled(p) {
            Ok(re) if !re.is_match(s) => errs.push(FieldError::invalid(
                path,
                v.clone(),
                format!("{} in body should match '{p}'", in_body(path)),
            )),
            Ok(_) => {}
            // The CRD was accepted with this pattern; a pattern our engine cannot compile is reported
            // rather than silently passing.
            Err(e) => errs.push(FieldError::internal(path, format!("pattern {p}: {e}"))),
        }
    }
    if schema.get("format").and_then(Value::as_str) == Some("date-time")
        && s.parse::<jiff::Timestamp>().is_err()
    {
        errs.push(FieldError::invalid(
            path,
            v.clone(),
            format!(
                "{} in body must be of type date-time: {}",
                in_body(path),
                go_quote(s)
            ),
        ));
    }
}

/// Patterns compiled once: every object of a CRD is checked against the same few.
fn compiled(pattern: &str) -> Result<regex::Regex, regex::Error> {
    static CACHE: std::sync::Mutex<Vec<(String, regex::Regex)>> = std::sync::Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, re)) = cache.iter().find(|(p, _)| p == pattern) {
        return Ok(re.clone());
    }
    let re = regex::Regex::new(pattern)?;
    // Bounded: a process serves few distinct patterns; past the bound the oldest go.
    if cache.len() >= 1024 {
        cache.remove(0);
    }
    cache.push((pattern.to_string(), re.clone()));
    Ok(re)
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// `%v` of a bound: integers without a fraction.
fn show(n: &Value) -> String {
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Some(f) => f.to_string(),
        None => n.to_string(),
    }
}

fn validate_number(v: &Value, schema: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let x = num(v);
    let at = in_body(path);
    if let Some(min) = schema.get("minimum") {
        let exclusive = flag(schema, "exclusiveMinimum");
        if (exclusive && x <= num(min)) || (!exclusive && x < num(min)) {
            let rel = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            errs.push(FieldError::invalid(
                path,
                v.clone(),
                format!("{at} in body should be {rel} {}", show(min)),
            ));
        }
    }
    if let Some(max) = schema.get("maximum") {
        let exclusive = flag(schema, "exclusiveMaximum");
        if (exclusive && x >= num(max)) || (!exclusive && x > num(max)) {
            let rel = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            errs.push(FieldError::invalid(
                path,
                v.clone(),
                format!("{at} in body should be {rel} {}", show(max)),
            ));
        }
    }
    if let Some(m) = schema.get("multipleOf").filter(|m| num(m) > 0.0) {
        let q = x / num(m);
        if (q - q.round()).abs() > 1e-9 {
            errs.push(FieldError::invalid(
                path,
                v.clone(),
                format!("{at} in body should be a multiple of {}", show(m)),
            ));
        }
    }
}

fn validate_array(
    items: &[Value],
    v: &Value,
    schema: &Value,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && (items.len() as u64) < min
    {
        errs.push(FieldError::invalid(
            path,
            v.clone(),
            format!("{} in body should have at least {min} items", in_body(path)),
        ));
    }
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && (items.len() as u64) > max
    {
        errs.push(FieldError::too_many(path, items.len(), max as usize));
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, it) in items.iter().enumerate() {
            validate_value(it, item_schema, &format!("{path}[{i}]"), errs);
        }
    }
    // `x-kubernetes-list-type`: sets hold unique scalars, maps unique key tuples.
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => {
            for (i, it) in items.iter().enumerate() {
                if items[..i].contains(it) {
                    errs.push(FieldError::duplicate(format!("{path}[{i}]"), it.clone()));
                }
            }
        }
        Some("map") => {
            let keys: Vec<&str> = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let tuple = |it: &Value| -> Value {
                let m: Map<String, Value> = keys
                    .iter()
                    .filter_map(|k| it.get(*k).map(|x| (k.to_string(), x.clone())))
                    .collect();
                Value::Object(m)
            };
            for (i, it) in items.iter().enumerate() {
                let t = tuple(it);
                if items[..i].iter().any(|o| tuple(o) == t) {
                    errs.push(FieldError::duplicate(format!("{path}[{i}]"), t));
                }
            }
        }
        _ => {}
    }
}

fn validate_object(m: &Map<String, Value>, schema: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for r in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !m.contains_key(r) {
            errs.push(FieldError::required(child_path(path, r), ""));
        }
    }
    if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
        && (m.len() as u64) < min
    {
        errs.push(FieldError::invalid(
            path,
            Value::Object(m.clone()),
            format!(
                "{} in body should have at least {min} properties",
                in_body(path)
            ),
        ));
    }
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
        && (m.len() as u64) > max
    {
        errs.push(FieldError::too_many(path, m.len(), max as usize));
    }
    for (key, val) in m {
        if let Some(Some(sub)) = property_schema(schema, key) {
            validate_value(val, sub, &child_path(path, key), errs);
        }
    }
}

/// Structural-schema checks a CRD's schema must pass to be accepted (the subset that matters for
/// serving: every node typed unless int-or-string or preserve-unknown-fields, and defaults valid).
pub fn check_structural(schema: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(m) = schema.as_object() else {
        return;
    };
    let typed = m
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty());
    let exempt = flag(schema, "x-kubernetes-int-or-string")
        || flag(schema, "x-kubernetes-preserve-unknown-fields");
    if !typed && !exempt && !path.ends_with("openAPIV3Schema") {
        errs.push(FieldError::required(
            format!("{path}.type"),
            "must not be empty for specified object fields",
        ));
    }
    if let Some(props) = m.get("properties").and_then(Value::as_object) {
        for (k, sub) in props {
            check_structural(sub, &format!("{path}.properties[{k}]"), errs);
        }
    }
    if let Some(items) = m.get("items") {
        check_structural(items, &format!("{path}.items"), errs);
    }
    if let Some(add @ Value::Object(_)) = m.get("additionalProperties") {
        check_structural(add, &format!("{path}.additionalProperties"), errs);
    }
    if let Some(p) = m.get("pattern").and_then(Value::as_str)
        && let Err(e) = regex::Regex::new(p)
    {
        errs.push(FieldError::invalid(
            format!("{path}.pattern"),
            json!(p),
            format!("must be a valid regular expression, but isn't: {e}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["secretName"], "properties": {
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                "secretName": {"type": "string", "minLength": 1, "maxLength": 20, "pattern": "^[a-z-]+$"},
                "mode": {"type": "string", "enum": ["A", "B"]},
                "port": {"x-kubernetes-int-or-string": true},
                "dnsNames": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "issuer": {"type": "object", "default": {}, "properties": {"kind": {"type": "string", "default": "Issuer"}}},
                "note": {"type": "string", "nullable": true},
            }},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
        }})
    }

    #[test]
    fn prune_drops_unknown_but_keeps_preserved_and_maps() {
        let mut o = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a", "junk": 1}, "bogus": 1,
            "spec": {"secretName": "s", "extra": true, "free": {"any": {"thing": 1}}, "labels": {"a": "b"}}});
        let dropped = prune(&mut o, &schema());
        assert_eq!(dropped, ["bogus", "spec.extra", "metadata.junk"]);
        assert_eq!(o["spec"]["free"]["any"]["thing"], 1);
        assert_eq!(o["spec"]["labels"]["a"], "b");
        assert_eq!(o["metadata"]["name"], "a");
    }

    #[test]
    fn defaults_fill_nested_objects() {
        let mut o = json!({"spec": {"secretName": "s"}});
        apply_defaults(&mut o, &schema());
        assert_eq!(o["spec"]["replicas"], 1);
        assert_eq!(o["spec"]["issuer"]["kind"], "Issuer");
        assert!(o.get("status").is_none());
    }

    #[test]
    fn errors_use_upstream_wording() {
        let o = json!({"spec": {"replicas": "three", "secretName": "Bad_Name", "mode": "C",
            "port": true, "dnsNames": ["a", "a", "b"], "labels": {"x": 1}}});
        let msgs: Vec<String> = validate(&o, &schema())
            .iter()
            .map(ToString::to_string)
            .collect();
        let want = [
            r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#,
            r#"spec.secretName: Invalid value: "Bad_Name": spec.secretName in body should match '^[a-z-]+$'"#,
            r#"spec.mode: Unsupported value: "C": supported values: "A", "B""#,
            r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#,
            "spec.dnsNames: Too many: 3: must have at most 2 items",
            r#"spec.dnsNames[1]: Duplicate value: "a""#,
            r#"spec.labels.x: Invalid value: "integer": spec.labels.x in body must be of type string: "integer""#,
        ];
        for w in want {
            assert!(msgs.iter().any(|m| m == w), "missing {w}\n in {msgs:#?}");
        }
        assert_eq!(msgs.len(), want.len(), "{msgs:#?}");
        let o = json!({"spec": {"replicas": 0, "secretName": "", "dnsNames": []}});
        let msgs: Vec<String> = validate(&o, &schema())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(msgs.contains(&"spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1".to_string()), "{msgs:#?}");
        assert!(msgs.contains(&r#"spec.secretName: Invalid value: "": spec.secretName in body should be at least 1 chars long"#.to_string()), "{msgs:#?}");
        assert!(msgs.contains(&"spec.dnsNames: Invalid value: []: spec.dnsNames in body should have at least 1 items".to_string()) || msgs.iter().any(|m| m.starts_with("spec.dnsNames: Invalid value")), "{msgs:#?}");
        let msgs: Vec<String> = validate(&json!({"spec": {}}), &schema())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(msgs, vec!["spec.secretName: Required value".to_string()]);
        let mut msgs: Vec<String> = validate(&json!({"spec": {"secretName": "abcdefghijklmnopqrstuvwxyz", "replicas": 11, "note": null}}), &schema())
            .iter().map(ToString::to_string).collect();
        msgs.sort();
        assert_eq!(msgs, vec![
            "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10".to_string(),
            "spec.secretName: Too long: may not be more than 20 bytes".to_string(),
        ]);
    }

    #[test]
    fn structural_check_requires_types() {
        let mut errs = Vec::new();
        check_structural(
            &json!({"type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}}}),
            "spec.versions[0].schema.openAPIV3Schema",
            &mut errs,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].path,
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].type"
        );
    }
}
