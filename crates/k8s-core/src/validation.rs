//! Name, label and metadata validation with apimachinery's exact wording
//! (`k8s.io/apimachinery/pkg/util/validation` and `api/validation/objectmeta.go`).
//!
//! The `is_*` functions return the list of problem messages (empty = valid), like Go's `IsDNS1123Label`;
//! callers wrap each into a [`FieldError::invalid`]. The checks are written by hand rather than with
//! regexes because they run on every write and the grammars are tiny.

use serde_json::Value;

use crate::status::FieldError;

pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
pub const DNS1035_LABEL_MAX_LENGTH: usize = 63;
pub const QUALIFIED_NAME_MAX_LENGTH: usize = 63;
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;
/// `TotalAnnotationSizeLimitB`: keys plus values, in bytes.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// `RegexError`: the message, the examples and the regex, punctuated exactly as upstream
/// (including its double space before " or ").
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut out = msg.to_string();
    if examples.is_empty() {
        out.push_str(" (regex used for validation is '");
    } else {
        out.push_str(" (e.g. ");
        for (i, ex) in examples.iter().enumerate() {
            if i > 0 {
                out.push_str(" or ");
            }
            out.push('\'');
            out.push_str(ex);
            out.push_str("', ");
        }
        out.push_str("regex used for validation is '");
    }
    out.push_str(fmt);
    out.push_str("')");
    out
}

/// `MaxLenError`.
pub fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// `EmptyError`.
pub const EMPTY_ERROR: &str = "must be non-empty";

fn lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn dns1123_label_ok(s: &[u8]) -> bool {
    !s.is_empty()
        && lower_alnum(s[0])
        && lower_alnum(s[s.len() - 1])
        && s.iter().all(|&b| lower_alnum(b) || b == b'-')
}

/// `IsDNS1123Label`.
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !dns1123_label_ok(value.as_bytes()) {
        errs.push(regex_error(
            DNS1123_LABEL_ERR,
            DNS1123_LABEL_FMT,
            &["my-name", "123-abc"],
        ));
    }
    errs
}

/// `IsDNS1123Subdomain`.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !value.split('.').all(|l| dns1123_label_ok(l.as_bytes())) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// `IsDNS1035Label` (Service names).
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1035_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1035_LABEL_MAX_LENGTH));
    }
    let b = value.as_bytes();
    if !(dns1123_label_ok(b) && b[0].is_ascii_lowercase()) {
        errs.push(regex_error(
            DNS1035_LABEL_ERR,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

fn qualified_name_ok(s: &[u8]) -> bool {
    !s.is_empty()
        && s[0].is_ascii_alphanumeric()
        && s[s.len() - 1].is_ascii_alphanumeric()
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// `IsQualifiedName`: `[prefix/]name`, used for label keys, annotation keys and finalizers.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {EMPTY_ERROR}"));
            } else {
                for m in is_dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {m}"));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {EMPTY_ERROR}"));
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!(
            "name part {}",
            max_len_error(QUALIFIED_NAME_MAX_LENGTH)
        ));
    }
    if !qualified_name_ok(name.as_bytes()) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `IsValidLabelValue`.
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !value.is_empty() && !qualified_name_ok(value.as_bytes()) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// `IsValidPortNum`.
pub fn is_valid_port_num(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec!["must be between 1 and 65535, inclusive".to_string()]
    }
}

/// `IsValidPortName` (IANA_SVC_NAME).
pub fn is_valid_port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push(max_len_error(15));
    }
    let b = port.as_bytes();
    if b.is_empty() || !b.iter().all(|&c| lower_alnum(c) || c == b'-') {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !b.iter().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".into());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens (-)".into());
    }
    if !b.is_empty() && (b[0] == b'-' || b[b.len() - 1] == b'-') {
        errs.push("must not begin or end with a hyphen (-)".into());
    }
    errs
}

/// `ValidatePathSegmentName` (RBAC objects and other names that only need to be a URL segment).
pub fn is_path_segment_name(value: &str, prefix: bool) -> Vec<String> {
    let mut errs = Vec::new();
    if !prefix && (value == "." || value == "..") {
        errs.push(format!("may not be '{value}'"));
    }
    for bad in ["/", "%"] {
        if value.contains(bad) {
            errs.push(format!("may not contain '{bad}'"));
        }
    }
    errs
}

/// Which rule a kind's `metadata.name` follows (its `ValidateNameFunc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// Most kinds (`NameIsDNSSubdomain`).
    Dns1123Subdomain,
    /// Namespaces, nodes' pods' hostnames… (`NameIsDNSLabel`).
    Dns1123Label,
    /// Services (`NameIsDNS1035Label`).
    Dns1035Label,
    /// RBAC kinds (`ValidatePathSegmentName`).
    PathSegment,
}

impl NameRule {
    /// Validates a name; `prefix` is true for `generateName`, whose trailing `-` is allowed
    /// (upstream `maskTrailingDash`).
    pub fn check(self, name: &str, prefix: bool) -> Vec<String> {
        let masked;
        let name = if prefix && self != NameRule::PathSegment && name.len() > 1 {
            if let Some(stripped) = name.strip_suffix('-') {
                masked = format!("{stripped}a");
                masked.as_str()
            } else {
                name
            }
        } else {
            name
        };
        match self {
            NameRule::Dns1123Subdomain => is_dns1123_subdomain(name),
            NameRule::Dns1123Label => is_dns1123_label(name),
            NameRule::Dns1035Label => is_dns1035_label(name),
            NameRule::PathSegment => is_path_segment_name(name, prefix),
        }
    }
}

fn str_map<'a>(
    meta: &'a Value,
    key: &str,
    path: &str,
    errs: &mut Vec<FieldError>,
) -> Vec<(&'a str, &'a str)> {
    let mut out = Vec::new();
    match meta.get(key) {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                match v.as_str() {
                    Some(v) => out.push((k.as_str(), v)),
                    None => errs.push(type_invalid(&format!("{path}.{k}"), v, "string")),
                }
            }
        }
        Some(other) => errs.push(type_invalid(path, other, "object")),
    }
    out
}

fn type_invalid(path: &str, v: &Value, want: &str) -> FieldError {
    FieldError {
        path: path.into(),
        kind: crate::status::FieldErrorKind::TypeInvalid,
        value: Some(v.clone()),
        detail: format!("must be of type {want}"),
    }
}

/// `ValidateLabels` under `path` (`metadata.labels`).
pub fn validate_labels(meta: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for (k, v) in str_map(meta, "labels", path, errs) {
        for m in is_qualified_name(k) {
            errs.push(FieldError::invalid(path, Value::from(k), m));
        }
        for m in is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, Value::from(v), m));
        }
    }
}

/// `ValidateAnnotations`: keys are qualified names (case-insensitive), total size ≤ 256 KiB.
pub fn validate_annotations(meta: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let mut size = 0usize;
    for (k, v) in str_map(meta, "annotations", path, errs) {
        for m in is_qualified_name(&k.to_ascii_lowercase()) {
            errs.push(FieldError::invalid(path, Value::from(k), m));
        }
        size += k.len() + v.len();
    }
    if size > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
}

/// Owner kinds that may never own anything (upstream `BannedOwners`).
const BANNED_OWNERS: &[(&str, &str, &str)] =
    &[("", "v1", "Event"), ("events.k8s.io", "v1", "Event")];

fn validate_owner_references(meta: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(refs) = meta.get("ownerReferences") else {
        return;
    };
    let refs = match refs {
        Value::Null => return,
        Value::Array(a) => a,
        other => {
            errs.push(type_invalid(path, other, "array"));
            return;
        }
    };
    let mut first_controller: Option<String> = None;
    for r in refs {
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
        let api_version = s("apiVersion");
        let (group, version) = match api_version.split('/').collect::<Vec<_>>().as_slice() {
            [v] => ("", *v),
            [g, v] => (*g, *v),
            _ => ("", ""),
        };
        if version.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.apiVersion"),
                api_version.into(),
                "version must not be empty",
            ));
        }
        if s("kind").is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.kind"),
                s("kind").into(),
                "kind must not be empty",
            ));
        }
        if s("name").is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.name"),
                s("name").into(),
                "name must not be empty",
            ));
        }
        if s("uid").is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.uid"),
                s("uid").into(),
                "uid must not be empty",
            ));
        }
        if BANNED_OWNERS.contains(&(group, version, s("kind"))) {
            let gvk = format!("{group}/{version}, Kind={}", s("kind"));
            errs.push(FieldError::invalid(
                path,
                r.clone(),
                format!("{gvk} is disallowed from being an owner"),
            ));
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let cur = format!("{}/{}", s("kind"), s("name"));
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    Value::Array(refs.clone()),
                    format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {cur}"
                    ),
                )),
                None => first_controller = Some(cur),
            }
        }
    }
}

fn validate_finalizers(meta: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(f) = meta.get("finalizers") else {
        return;
    };
    let list = match f {
        Value::Null => return,
        Value::Array(a) => a,
        other => {
            errs.push(type_invalid(path, other, "array"));
            return;
        }
    };
    let (mut orphan, mut foreground) = (false, false);
    for f in list {
        let Some(name) = f.as_str() else {
            errs.push(type_invalid(path, f, "string"));
            continue;
        };
        for m in is_qualified_name(name) {
            errs.push(FieldError::invalid(path, name.into(), m));
        }
        orphan |= name == "orphan";
        foreground |= name == "foregroundDeletion";
    }
    if orphan && foreground {
        errs.push(FieldError::invalid(
            path,
            f.clone(),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
}

/// `ValidateObjectMeta` over the JSON `metadata` object: name (or generateName) by `name_rule`,
/// namespace presence (`namespaced`), generation, labels, annotations, ownerReferences, finalizers.
/// Paths are prefixed with `metadata.`.
pub fn validate_object_meta(
    meta: &Value,
    namespaced: bool,
    name_rule: NameRule,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let s = |k: &str| meta.get(k).and_then(Value::as_str).unwrap_or_default();
    let generate_name = s("generateName");
    if !generate_name.is_empty() {
        for m in name_rule.check(generate_name, true) {
            errs.push(FieldError::invalid(
                "metadata.generateName",
                generate_name.into(),
                m,
            ));
        }
    }
    let name = s("name");
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for m in name_rule.check(name, false) {
            errs.push(FieldError::invalid("metadata.name", name.into(), m));
        }
    }
    let namespace = s("namespace");
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required("metadata.namespace", ""));
        } else {
            for m in is_dns1123_label(namespace) {
                errs.push(FieldError::invalid(
                    "metadata.namespace",
                    namespace.into(),
                    m,
                ));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    if let Some(g) = meta.get("generation").and_then(Value::as_i64)
        && g < 0
    {
        errs.push(FieldError::invalid(
            "metadata.generation",
            g.into(),
            "must be greater than or equal to 0",
        ));
    }
    validate_labels(meta, "metadata.labels", &mut errs);
    validate_annotations(meta, "metadata.annotations", &mut errs);
    validate_owner_references(meta, "metadata.ownerReferences", &mut errs);
    validate_finalizers(meta, "metadata.finalizers", &mut errs);
    errs
}

/// `ValidateObjectMetaUpdate`: identity fields are immutable, an update carries a
/// resourceVersion, and the mutable parts follow the create rules. Paths under `metadata.`.
pub fn validate_object_meta_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let immutable = [
        ("name", "field is immutable"),
        ("namespace", "field is immutable"),
        ("uid", "field is immutable"),
        ("creationTimestamp", "field is immutable"),
        (
            "deletionTimestamp",
            "field is immutable; may only be changed via deletion",
        ),
        (
            "deletionGracePeriodSeconds",
            "field is immutable; may only be changed via deletion",
        ),
    ];
    for (field, msg) in immutable {
        let (n, o) = (new.get(field), old.get(field));
        // An absent deletionTimestamp on a deleting object is filled in by the registry, not an error.
        let absent = |v: Option<&Value>| v.is_none_or(Value::is_null);
        if absent(n) && absent(o) || n == o {
            continue;
        }
        if field.starts_with("deletion") && absent(n) {
            continue;
        }
        errs.push(FieldError::invalid(
            format!("metadata.{field}"),
            n.cloned().unwrap_or(Value::Null),
            msg,
        ));
    }
    let rv = new
        .get("resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if rv.is_empty() {
        errs.push(FieldError::invalid(
            "metadata.resourceVersion",
            rv.into(),
            "must be specified for an update",
        ));
    }
    if let Some(g) = new.get("generation").and_then(Value::as_i64)
        && g < 0
    {
        errs.push(FieldError::invalid(
            "metadata.generation",
            g.into(),
            "must be greater than or equal to 0",
        ));
    }
    validate_labels(new, "metadata.labels", &mut errs);
    validate_annotations(new, "metadata.annotations", &mut errs);
    validate_owner_references(new, "metadata.ownerReferences", &mut errs);
    validate_finalizers(new, "metadata.finalizers", &mut errs);
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dns1123_label_table() {
        let good = [
            "a",
            "ab",
            "abc",
            "a1",
            "a-1",
            "a--1--2--b",
            "0",
            "01",
            "012",
            "1a",
            "1-a",
            "1--a--b--2",
        ];
        for v in good {
            assert!(is_dns1123_label(v).is_empty(), "{v}");
        }
        let long = "a".repeat(64);
        let bad = [
            "", "A", "ABC", "aBc", "A1", "A-1", "1-A", "-", "a-", "-a", "1-", "-1", "_", "a_",
            "_a", "a_b", "1_", "_1", "1_2", ".", "a.", ".a", "a.b", "1.", ".1", "1.2", " ", "a ",
            " a", "a b", "1 ", " 1", "1 2", &long,
        ];
        for v in bad {
            assert!(!is_dns1123_label(v).is_empty(), "{v:?}");
        }
        assert_eq!(
            is_dns1123_label("A")[0],
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        );
        assert_eq!(
            is_dns1123_label(&long),
            vec!["must be no more than 63 characters".to_string()]
        );
    }

    #[test]
    fn dns1123_subdomain_table() {
        for v in [
            "a",
            "a.b",
            "a.b.c",
            "1.a",
            "a-1.b-2",
            "0.0.0",
            "example.com",
        ] {
            assert!(is_dns1123_subdomain(v).is_empty(), "{v}");
        }
        let long = "a".repeat(254);
        for v in ["", "A", "a..b", ".a", "a.", "a.-b", "a_b", "a/b", &long] {
            assert!(!is_dns1123_subdomain(v).is_empty(), "{v:?}");
        }
        assert_eq!(
            is_dns1123_subdomain("Foo")[0],
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
    }

    #[test]
    fn dns1035_label_table() {
        for v in ["a", "ab", "a-1", "a--b"] {
            assert!(is_dns1035_label(v).is_empty(), "{v}");
        }
        for v in ["", "1a", "0", "A", "a-", "-a", "a.b"] {
            assert!(!is_dns1035_label(v).is_empty(), "{v:?}");
        }
        assert!(is_dns1035_label("1a")[0].starts_with("a DNS-1035 label must consist"));
        assert!(is_dns1035_label("1a")[0].contains("(e.g. 'my-name',  or 'abc-123', "));
    }

    #[test]
    fn qualified_name_table() {
        let good = [
            "simple",
            "now-with-dashes",
            "1-starts-with-num",
            "1234",
            "simple/simple",
            "now-with-dashes/simple",
            "now-with-dashes/now-with-dashes",
            "now.with.dots/simple",
            "now-with.dashes-and.dots/simple",
            "1-num.2-num/3-num",
            "1234/5678",
            "1.2.3.4/5678",
            "Uppercase_Is_OK_123",
            "example.com/Uppercase_Is_OK_123",
            "requests.storage-foo",
        ];
        for v in good {
            assert!(is_qualified_name(v).is_empty(), "{v}");
        }
        let bad = [
            "nospecialchars%^=@",
            "cantendwithadash-",
            "-cantstartwithadash-",
            "only/one/slash",
            "Example.com/abc",
            "example_com/abc",
            "example.com/",
            "/simple",
            &"a".repeat(64),
            "",
        ];
        for v in bad {
            assert!(!is_qualified_name(v).is_empty(), "{v:?}");
        }
        assert_eq!(
            is_qualified_name("example.com/"),
            vec![
                "name part must be non-empty".to_string(),
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".to_string()
            ]
        );
        assert!(is_qualified_name("a/b/c")[0].starts_with("a qualified name must consist"));
        assert!(is_qualified_name("/a")[0] == "prefix part must be non-empty");
    }

    #[test]
    fn label_values_and_ports() {
        for v in [
            "",
            "simple",
            "now-with-dashes",
            "1-starts-with-num",
            "end-with-num-1",
            "1234",
            &"a".repeat(63),
        ] {
            assert!(is_valid_label_value(v).is_empty(), "{v}");
        }
        for v in [
            "nospecialchars%^=@",
            "Tama-nui-te-rā.is.Māori.sun",
            "\\backslashes\\are\\bad",
            "-starts-with-dash",
            "ends-with-dash-",
            ".starts.with.dot",
            "ends.with.dot.",
            &"a".repeat(64),
        ] {
            assert!(!is_valid_label_value(v).is_empty(), "{v}");
        }
        assert!(is_valid_port_num(1).is_empty());
        assert!(is_valid_port_num(65535).is_empty());
        assert_eq!(
            is_valid_port_num(0),
            vec!["must be between 1 and 65535, inclusive"]
        );
        assert_eq!(is_valid_port_num(65536).len(), 1);
        assert!(is_valid_port_name("http").is_empty());
        assert!(is_valid_port_name("h-2").is_empty());
        assert_eq!(
            is_valid_port_name("1234"),
            vec!["must contain at least one letter (a-z)"]
        );
        assert_eq!(
            is_valid_port_name("a--b"),
            vec!["must not contain consecutive hyphens (-)"]
        );
        assert_eq!(
            is_valid_port_name("-ab"),
            vec!["must not begin or end with a hyphen (-)"]
        );
        assert_eq!(
            is_valid_port_name("abcdefghijklmnop"),
            vec!["must be no more than 15 characters"]
        );
        assert_eq!(is_valid_port_name("HTTP").len(), 2);
    }

    #[test]
    fn object_meta_update() {
        let old = json!({"name": "a", "namespace": "ns", "uid": "u1", "resourceVersion": "5", "creationTimestamp": "2026-01-01T00:00:00Z"});
        assert!(validate_object_meta_update(&old, &old).is_empty());
        let mut new = old.clone();
        new["name"] = json!("b");
        new["uid"] = json!("u2");
        new["resourceVersion"] = json!("");
        new["labels"] = json!({"k": "-"});
        let got: Vec<String> = validate_object_meta_update(&new, &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(
            got[0],
            "metadata.name: Invalid value: \"b\": field is immutable"
        );
        assert_eq!(
            got[1],
            "metadata.uid: Invalid value: \"u2\": field is immutable"
        );
        assert_eq!(
            got[2],
            "metadata.resourceVersion: Invalid value: \"\": must be specified for an update"
        );
        assert!(got[3].starts_with("metadata.labels: Invalid value: \"-\""));
        let mut deleting = old.clone();
        deleting["deletionTimestamp"] = json!("2026-02-02T00:00:00Z");
        let errs = validate_object_meta_update(&deleting, &old);
        assert_eq!(
            errs[0].detail,
            "field is immutable; may only be changed via deletion"
        );
    }

    #[test]
    fn object_meta() {
        let cases: Vec<(Value, bool, NameRule, Vec<&str>)> = vec![
            (
                json!({"name": "ok", "namespace": "default"}),
                true,
                NameRule::Dns1123Subdomain,
                vec![],
            ),
            (
                json!({"namespace": "default"}),
                true,
                NameRule::Dns1123Subdomain,
                vec!["metadata.name: Required value: name or generateName is required"],
            ),
            (
                json!({"name": "ok"}),
                true,
                NameRule::Dns1123Subdomain,
                vec!["metadata.namespace: Required value"],
            ),
            (
                json!({"name": "ok", "namespace": "x"}),
                false,
                NameRule::Dns1123Subdomain,
                vec!["metadata.namespace: Forbidden: not allowed on this type"],
            ),
            (
                json!({"name": "web-", "generateName": "web-"}),
                false,
                NameRule::Dns1123Subdomain,
                vec![
                    "metadata.name: Invalid value: \"web-\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                ],
            ),
            (
                json!({"name": "a.b"}),
                false,
                NameRule::Dns1035Label,
                vec!["metadata.name: Invalid value: \"a.b\": a DNS-1035 label"],
            ),
            (json!({"name": "a:b"}), false, NameRule::PathSegment, vec![]),
            (
                json!({"name": "a/b"}),
                false,
                NameRule::PathSegment,
                vec!["metadata.name: Invalid value: \"a/b\": may not contain '/'"],
            ),
            (
                json!({"name": "x", "generation": -1}),
                false,
                NameRule::Dns1123Subdomain,
                vec!["metadata.generation: Invalid value: -1: must be greater than or equal to 0"],
            ),
            (
                json!({"name": "x", "labels": {"a/b/c": "ok", "k": "-bad"}}),
                false,
                NameRule::Dns1123Subdomain,
                vec![
                    "metadata.labels: Invalid value: \"a/b/c\": a qualified name",
                    "metadata.labels: Invalid value: \"-bad\": a valid label must",
                ],
            ),
            (
                json!({"name": "x", "annotations": {"Example.COM/Key": "v"}}),
                false,
                NameRule::Dns1123Subdomain,
                vec![],
            ),
            (
                json!({"name": "x", "annotations": {"big": "v".repeat(TOTAL_ANNOTATION_SIZE_LIMIT)}}),
                false,
                NameRule::Dns1123Subdomain,
                vec!["metadata.annotations: Too long: may not be more than 262144 bytes"],
            ),
            (
                json!({"name": "x", "finalizers": ["kubernetes.io/pvc-protection", "bad name"]}),
                false,
                NameRule::Dns1123Subdomain,
                vec!["metadata.finalizers: Invalid value: \"bad name\": name part must consist"],
            ),
            (
                json!({"name": "x", "finalizers": ["orphan", "foregroundDeletion"]}),
                false,
                NameRule::Dns1123Subdomain,
                vec![
                    "metadata.finalizers: Invalid value: [\"orphan\",\"foregroundDeletion\"]: finalizer orphan and foregroundDeletion cannot be both set",
                ],
            ),
            (
                json!({"name": "x", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": true},
                                                      {"apiVersion": "", "kind": "ReplicaSet", "name": "rs2", "uid": "", "controller": true}]}),
                false,
                NameRule::Dns1123Subdomain,
                vec![
                    "metadata.ownerReferences.apiVersion: Invalid value: \"\": version must not be empty",
                    "metadata.ownerReferences.uid: Invalid value: \"\": uid must not be empty",
                    "metadata.ownerReferences: Invalid value: [",
                ],
            ),
        ];
        for (meta, namespaced, rule, want) in cases {
            let got: Vec<String> = validate_object_meta(&meta, namespaced, rule)
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(got.len(), want.len(), "{meta}: {got:?}");
            for (g, w) in got.iter().zip(&want) {
                assert!(g.starts_with(w), "{g:?} should start with {w:?}");
            }
        }
        let last = validate_object_meta(
            &json!({"name": "x", "ownerReferences": [{"apiVersion": "v1", "kind": "A", "name": "a", "uid": "1", "controller": true},
                                                      {"apiVersion": "v1", "kind": "B", "name": "b", "uid": "2", "controller": true}]}),
            false,
            NameRule::Dns1123Subdomain,
        );
        assert_eq!(last.len(), 1);
        assert!(
            last[0]
                .detail
                .ends_with("Found \"true\" in references for A/a and B/b")
        );
    }
}
