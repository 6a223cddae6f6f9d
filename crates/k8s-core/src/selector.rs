//! Label selectors (`-l 'app=web,tier in (a,b),!canary'`, `metav1.LabelSelector`) and field selectors
//! (`--field-selector spec.nodeName=n1`), parsed once and matched cheaply.
//!
//! Grammar, semantics and error wording follow apimachinery `labels/selector.go` and
//! `fields/selector.go`. A parsed selector is a short list of requirements whose values are sorted,
//! so matching one object is a few map lookups and string compares with no allocation: the API server
//! filters 150k-pod lists with these.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::status::FieldError;
use crate::validation::{is_qualified_name, is_valid_label_value};

/// A label selector operator (`selection.Operator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `=` or `==`.
    Equals,
    /// `!=`.
    NotEquals,
    /// `in (a,b)`.
    In,
    /// `notin (a,b)`.
    NotIn,
    /// bare `key`.
    Exists,
    /// `!key`.
    DoesNotExist,
    /// `key>n` (integer compare; node affinity's `Gt`).
    Gt,
    /// `key<n` (integer compare; node affinity's `Lt`).
    Lt,
}

/// One `key op values` term. `values` is sorted and de-duplicated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
    pub values: Vec<String>,
}

impl Requirement {
    /// `labels.NewRequirement`: validates the key and values and normalises the value set.
    pub fn new(key: &str, op: Op, values: Vec<String>) -> Result<Self, String> {
        let mut errs: Vec<FieldError> = Vec::new();
        for m in is_qualified_name(key) {
            errs.push(FieldError::invalid("key", key.into(), m));
        }
        let mut values = values;
        values.sort();
        values.dedup();
        match op {
            Op::In | Op::NotIn if values.is_empty() => errs.push(FieldError::invalid(
                "values",
                Value::Array(vec![]),
                "for 'in', 'notin' operators, values set can't be empty",
            )),
            Op::Equals | Op::NotEquals if values.len() != 1 => errs.push(FieldError::invalid(
                "values",
                Value::from(values.clone()),
                "exact-match compatibility requires one single value",
            )),
            Op::Exists | Op::DoesNotExist if !values.is_empty() => errs.push(FieldError::invalid(
                "values",
                Value::from(values.clone()),
                "values set must be empty for exists and does not exist",
            )),
            Op::Gt | Op::Lt if values.len() != 1 => errs.push(FieldError::invalid(
                "values",
                Value::from(values.clone()),
                "for 'Gt', 'Lt' operators, exactly one value is required",
            )),
            Op::Gt | Op::Lt if values[0].parse::<i64>().is_err() => errs.push(FieldError::invalid(
                "values[0]",
                Value::from(values[0].clone()),
                "for 'Gt', 'Lt' operators, the value must be an integer",
            )),
            _ => {}
        }
        for (i, v) in values.iter().enumerate() {
            for m in is_valid_label_value(v) {
                errs.push(FieldError::invalid(
                    format!("values[{i}]"),
                    v.as_str().into(),
                    m,
                ));
            }
        }
        if errs.is_empty() {
            Ok(Requirement {
                key: key.to_string(),
                op,
                values,
            })
        } else {
            let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
            Err(if msgs.len() == 1 {
                msgs[0].clone()
            } else {
                format!("[{}]", msgs.join(", "))
            })
        }
    }

    fn has(&self, v: &str) -> bool {
        // Value lists are tiny; a linear scan beats a binary search below ~8 entries.
        if self.values.len() <= 8 {
            self.values.iter().any(|x| x == v)
        } else {
            self.values.binary_search_by(|x| x.as_str().cmp(v)).is_ok()
        }
    }

    /// Whether a label set satisfies this term.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        let got = labels.label(&self.key);
        match self.op {
            Op::Equals | Op::In => got.is_some_and(|v| self.has(v)),
            Op::NotEquals | Op::NotIn => got.is_none_or(|v| !self.has(v)),
            Op::Exists => got.is_some(),
            Op::DoesNotExist => got.is_none(),
            Op::Gt | Op::Lt => {
                // A label that is not an integer never matches, as upstream.
                let (Some(got), Some(bound)) = (
                    got.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|v| v.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.op == Op::Gt {
                    got > bound
                } else {
                    got < bound
                }
            }
        }
    }
}

/// Something with labels: a `metadata.labels` JSON object, a map, or the object itself.
pub trait Labels {
    fn label(&self, key: &str) -> Option<&str>;
}

/// Map lookup that scans small maps instead of hashing: label sets and `metadata` have a handful
/// of keys, and SipHash costs more than a few short string compares.
fn small_get<'a>(m: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    if m.len() <= 8 {
        m.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
    } else {
        m.get(key)
    }
}

impl Labels for serde_json::Map<String, Value> {
    fn label(&self, key: &str) -> Option<&str> {
        small_get(self, key).and_then(Value::as_str)
    }
}

/// A `Value` is read as the labels object itself (`metadata.labels`); non-objects have no labels.
impl Labels for Value {
    fn label(&self, key: &str) -> Option<&str> {
        match self {
            Value::Object(m) => m.label(key),
            _ => None,
        }
    }
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl Labels for std::collections::HashMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// A parsed label selector. The empty selector matches everything; [`Selector::nothing`] (a `null`
/// `LabelSelector`) matches nothing.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Selector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

/// Tokens of the selector language (`labels.Token`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    End,
    Ident(String),
    In,
    NotIn,
    Eq,
    DoubleEq,
    NotEq,
    Bang,
    Open,
    Close,
    Comma,
    Gt,
    Lt,
}

impl Tok {
    fn literal(&self) -> &str {
        match self {
            Tok::End => "",
            Tok::Ident(s) => s,
            Tok::In => "in",
            Tok::NotIn => "notin",
            Tok::Eq => "=",
            Tok::DoubleEq => "==",
            Tok::NotEq => "!=",
            Tok::Bang => "!",
            Tok::Open => "(",
            Tok::Close => ")",
            Tok::Comma => ",",
            Tok::Gt => ">",
            Tok::Lt => "<",
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn lex(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if is_special(c) {
            let next = chars.get(i + 1).copied();
            let (tok, n) = match (c, next) {
                ('!', Some('=')) => (Tok::NotEq, 2),
                ('=', Some('=')) => (Tok::DoubleEq, 2),
                ('!', _) => (Tok::Bang, 1),
                ('=', _) => (Tok::Eq, 1),
                ('(', _) => (Tok::Open, 1),
                (')', _) => (Tok::Close, 1),
                (',', _) => (Tok::Comma, 1),
                ('>', _) => (Tok::Gt, 1),
                _ => (Tok::Lt, 1),
            };
            out.push(tok);
            i += n;
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && !is_special(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push(match word.as_str() {
                "in" => Tok::In,
                "notin" => Tok::NotIn,
                _ => Tok::Ident(word),
            });
        }
    }
    out.push(Tok::End);
    out
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    /// In a value position the keywords `in`/`notin` are plain identifiers.
    fn peek(&self, values: bool) -> Tok {
        to_ctx(self.toks[self.pos].clone(), values)
    }
    fn next(&mut self, values: bool) -> Tok {
        let t = self.peek(values);
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut reqs = Vec::new();
        loop {
            match self.peek(true) {
                Tok::End => return Ok(reqs),
                Tok::Ident(_) | Tok::Bang => {
                    reqs.push(self.requirement()?);
                    match self.next(true) {
                        Tok::End => return Ok(reqs),
                        Tok::Comma => {
                            let t = self.peek(true);
                            if !matches!(t, Tok::Ident(_) | Tok::Bang) {
                                return Err(format!(
                                    "found '{}', expected: identifier after ','",
                                    t.literal()
                                ));
                            }
                        }
                        t => {
                            return Err(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                t.literal()
                            ));
                        }
                    }
                }
                t => {
                    return Err(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        t.literal()
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let mut tok = self.next(true);
        let mut op = None;
        if tok == Tok::Bang {
            op = Some(Op::DoesNotExist);
            tok = self.next(true);
        }
        let Tok::Ident(key) = tok else {
            return Err(format!("found '{}', expected: identifier", tok.literal()));
        };
        if let Some(m) = is_qualified_name(&key).into_iter().next() {
            return Err(FieldError::invalid("key", key.as_str().into(), m).to_string());
        }
        if matches!(self.peek(true), Tok::End | Tok::Comma) {
            let op = op.unwrap_or(Op::Exists);
            return Requirement::new(&key, op, Vec::new());
        }
        if op == Some(Op::DoesNotExist) {
            let t = self.peek(true);
            return Err(format!(
                "found '{}', expected: ',' or 'end of string'",
                t.literal()
            ));
        }
        let op = match self.next(false) {
            Tok::In => Op::In,
            Tok::NotIn => Op::NotIn,
            Tok::Eq | Tok::DoubleEq => Op::Equals,
            Tok::NotEq => Op::NotEquals,
            Tok::Gt => Op::Gt,
            Tok::Lt => Op::Lt,
            t => {
                return Err(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    t.literal()
                ));
            }
        };
        let values = match op {
            Op::In | Op::NotIn => self.set_values()?,
            _ => self.exact_value()?,
        };
        Requirement::new(&key, op, values)
    }

    fn exact_value(&mut self) -> Result<Vec<String>, String> {
        match self.peek(true) {
            Tok::End | Tok::Comma => Ok(vec![String::new()]),
            _ => match self.next(true) {
                Tok::Ident(v) => Ok(vec![v]),
                t => Err(format!("found '{}', expected: identifier", t.literal())),
            },
        }
    }

    fn set_values(&mut self) -> Result<Vec<String>, String> {
        let t = self.next(true);
        if t != Tok::Open {
            return Err(format!("found '{}' expected: '('", t.literal()));
        }
        match self.peek(true) {
            Tok::Close => {
                self.next(true);
                Ok(vec![String::new()])
            }
            Tok::Ident(_) | Tok::Comma => {
                let vals = self.identifier_list()?;
                let t = self.next(true);
                if t != Tok::Close {
                    return Err(format!("found '{}', expected: ')'", t.literal()));
                }
                Ok(vals)
            }
            t => Err(format!(
                "found '{}', expected: ',', ')' or identifier",
                t.literal()
            )),
        }
    }

    fn identifier_list(&mut self) -> Result<Vec<String>, String> {
        let mut vals: Vec<String> = Vec::new();
        loop {
            match self.next(true) {
                Tok::Ident(v) => {
                    vals.push(v);
                    match self.peek(true) {
                        Tok::Comma => continue,
                        Tok::Close => return Ok(vals),
                        t => {
                            return Err(format!("found '{}', expected: ',' or ')'", t.literal()));
                        }
                    }
                }
                Tok::Comma => {
                    // "(,", ",)" and ",," each stand for the empty value.
                    if vals.is_empty() {
                        vals.push(String::new());
                    }
                    match self.peek(true) {
                        Tok::Close => {
                            vals.push(String::new());
                            return Ok(vals);
                        }
                        Tok::Comma => {
                            self.next(true);
                            vals.push(String::new());
                        }
                        _ => {}
                    }
                }
                t => {
                    return Err(format!(
                        "found '{}', expected: ',', or identifier",
                        t.literal()
                    ));
                }
            }
        }
    }
}

fn to_ctx(t: Tok, values: bool) -> Tok {
    match t {
        Tok::In if values => Tok::Ident("in".into()),
        Tok::NotIn if values => Tok::Ident("notin".into()),
        other => other,
    }
}

impl Selector {
    /// Matches every object (`labels.Everything()`).
    pub fn everything() -> Self {
        Self::default()
    }
    /// Matches no object (`labels.Nothing()`), what a `null` `LabelSelector` converts to.
    pub fn nothing() -> Self {
        Selector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// `labels.Parse`: the `?labelSelector=` / `kubectl -l` string form.
    #[doc(alias = "labels.Parse")]
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut p = Parser {
            toks: lex(s),
            pos: 0,
        };
        let mut requirements = p.parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Selector {
            requirements,
            nothing: false,
        })
    }

    /// `metav1.LabelSelectorAsSelector` over the JSON form (`{matchLabels, matchExpressions}`).
    /// `null` selects nothing; `{}` selects everything.
    pub fn from_label_selector(sel: &Value) -> Result<Self, String> {
        let obj = match sel {
            Value::Null => return Ok(Self::nothing()),
            Value::Object(o) => o,
            _ => return Err("label selector must be an object".into()),
        };
        let mut requirements = Vec::new();
        if let Some(ml) = obj.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in ml {
                let v = v
                    .as_str()
                    .ok_or_else(|| format!("matchLabels[{k}] must be a string"))?;
                requirements.push(Requirement::new(k, Op::Equals, vec![v.to_string()])?);
            }
        }
        if let Some(exprs) = obj.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
                let op_s = e
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let op = match op_s {
                    "In" => Op::In,
                    "NotIn" => Op::NotIn,
                    "Exists" => Op::Exists,
                    "DoesNotExist" => Op::DoesNotExist,
                    other => {
                        return Err(format!(
                            "{} is not a valid label selector operator",
                            crate::status::go_quote(other)
                        ));
                    }
                };
                let values = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                requirements.push(Requirement::new(key, op, values)?);
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Selector {
            requirements,
            nothing: false,
        })
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }
    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// If the selector pins `key` to one value (`key=v` or `key in (v)`), that value: lets callers
    /// use an index instead of a scan (`RequiresExactMatch`).
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        self.requirements.iter().find_map(|r| {
            (r.key == key && matches!(r.op, Op::Equals | Op::In) && r.values.len() == 1)
                .then(|| r.values[0].as_str())
        })
    }

    /// Whether the labels satisfy every requirement.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Matches an object by its `metadata.labels` (absent labels = empty set).
    pub fn matches_object(&self, obj: &Value) -> bool {
        static EMPTY: Value = Value::Null;
        let labels = match obj {
            Value::Object(o) => small_get(o, "metadata")
                .and_then(|m| m.as_object())
                .and_then(|m| small_get(m, "labels"))
                .unwrap_or(&EMPTY),
            _ => &EMPTY,
        };
        self.matches(labels)
    }
}

impl fmt::Display for Selector {
    /// The canonical string form (`Selector.String()`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match r.op {
                Op::Equals => write!(f, "{}={}", r.key, r.values[0])?,
                Op::NotEquals => write!(f, "{}!={}", r.key, r.values[0])?,
                Op::In => write!(f, "{} in ({})", r.key, r.values.join(","))?,
                Op::NotIn => write!(f, "{} notin ({})", r.key, r.values.join(","))?,
                Op::Exists => write!(f, "{}", r.key)?,
                Op::DoesNotExist => write!(f, "!{}", r.key)?,
                Op::Gt => write!(f, "{}>{}", r.key, r.values[0])?,
                Op::Lt => write!(f, "{}<{}", r.key, r.values[0])?,
            }
        }
        Ok(())
    }
}

/// `ValidateLabelSelector` for API objects (`spec.selector` of a Deployment), as field errors.
pub fn validate_label_selector(sel: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(obj) = sel.as_object() else {
        return errs;
    };
    if obj.contains_key("matchLabels") {
        crate::validation::validate_labels(
            &serde_json::json!({ "labels": obj["matchLabels"] }),
            &format!("{path}.matchLabels"),
            &mut errs,
        );
    }
    if let Some(exprs) = obj.get("matchExpressions").and_then(Value::as_array) {
        for (i, e) in exprs.iter().enumerate() {
            let p = format!("{path}.matchExpressions[{i}]");
            let n_values = e
                .get("values")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let op = e
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match op {
                "In" | "NotIn" if n_values == 0 => errs.push(FieldError::required(
                    format!("{p}.values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                )),
                "Exists" | "DoesNotExist" if n_values > 0 => errs.push(FieldError::forbidden(
                    format!("{p}.values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )),
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                other => errs.push(FieldError::invalid(
                    format!("{p}.operator"),
                    other.into(),
                    "not a valid selector operator",
                )),
            }
            let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
            for m in is_qualified_name(key) {
                errs.push(FieldError::invalid(format!("{p}.key"), key.into(), m));
            }
            if let Some(vals) = e.get("values").and_then(Value::as_array) {
                for (j, v) in vals.iter().enumerate() {
                    let v = v.as_str().unwrap_or_default();
                    for m in is_valid_label_value(v) {
                        errs.push(FieldError::invalid(format!("{p}.values[{j}]"), v.into(), m));
                    }
                }
            }
        }
    }
    errs
}

/// The value at a dotted path (`spec.nodeName`, `metadata.namespace`), for field-selector getters.
/// Uses the same small-map scan as label matching, which is several times faster than
/// `obj["spec"]["nodeName"]` on objects of a few keys.
pub fn object_field<'a>(obj: &'a Value, dotted: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for part in dotted.split('.') {
        cur = small_get(cur.as_object()?, part)?;
    }
    Some(cur)
}

/// A field selector term: `field=value`, `field==value` or `field!=value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    /// `false` for `=`/`==`, `true` for `!=`.
    pub negated: bool,
    /// The unescaped value.
    pub value: String,
}

/// A parsed field selector (`fields.ParseSelector`). Empty matches everything.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

fn unescape_field_value(v: &str) -> Result<String, String> {
    if !v.contains(['\\', '=', ',']) {
        return Ok(v.to_string());
    }
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n @ ('\\' | ',' | '=')) => out.push(n),
                Some(n) => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{n}"
                    ));
                }
                None => {
                    return Err("invalid field selector: invalid escape sequence: \\".into());
                }
            },
            '=' | ',' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {c}"
                ));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Splits on unescaped `sep` (a `\x` pair is never a separator).
fn split_unescaped(s: &str, sep: u8) -> Vec<&str> {
    let b = s.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == sep {
            parts.push(&s[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    parts.push(&s[start.min(s.len())..]);
    parts
}

impl FieldSelector {
    pub fn everything() -> Self {
        Self::default()
    }

    /// `fields.ParseSelector`.
    pub fn parse(selector: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for part in split_unescaped(selector, b',') {
            if part.is_empty() {
                continue;
            }
            let b = part.as_bytes();
            let mut found = None;
            let mut i = 0;
            while i < b.len() && found.is_none() {
                if b[i] == b'\\' {
                    i += 2;
                    continue;
                }
                for (op, negated) in [("!=", true), ("==", false), ("=", false)] {
                    // Bytes, not str: `i` may sit inside a multi-byte character after an escape.
                    if b[i..].starts_with(op.as_bytes()) {
                        found = Some((i, op.len(), negated));
                        break;
                    }
                }
                i += 1;
            }
            let Some((at, len, negated)) = found else {
                return Err(format!(
                    "invalid selector: '{selector}'; can't understand '{part}'"
                ));
            };
            requirements.push(FieldRequirement {
                field: part[..at].to_string(),
                negated,
                value: unescape_field_value(&part[at + len..])?,
            });
        }
        Ok(FieldSelector { requirements })
    }

    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }
    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }
    /// The field names used, so the caller can refuse unsupported ones with upstream's
    /// `field label not supported: <name>` (400).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.requirements.iter().map(|r| r.field.as_str())
    }
    /// The value `field` must equal, if pinned (`RequiresExactMatch`), for index lookups.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && !r.negated)
            .map(|r| r.value.as_str())
    }

    /// Evaluates against a field getter; a missing field reads as `""`, as in `fields.Set`.
    pub fn matches<F, S>(&self, get: F) -> bool
    where
        F: Fn(&str) -> Option<S>,
        S: AsRef<str>,
    {
        self.requirements.iter().all(|r| {
            let got = get(&r.field);
            let got = got.as_ref().map_or("", AsRef::as_ref);
            (got == r.value) != r.negated
        })
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let mut v = String::with_capacity(r.value.len());
            for c in r.value.chars() {
                if matches!(c, '\\' | ',' | '=') {
                    v.push('\\');
                }
                v.push(c);
            }
            write!(f, "{}{}{}", r.field, if r.negated { "!=" } else { "=" }, v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parse_valid_and_canonical() {
        let cases = [
            ("", ""),
            ("x=a", "x=a"),
            ("x==a", "x=a"),
            ("x=a,y!=b", "x=a,y!=b"),
            ("y!=b,x=a", "x=a,y!=b"),
            ("x in (a,b)", "x in (a,b)"),
            ("x in (b,a,a)", "x in (a,b)"),
            ("x notin (a)", "x notin (a)"),
            ("x", "x"),
            ("!x", "!x"),
            (" x = a , ! y ", "x=a,!y"),
            ("x=", "x="),
            ("x=,z= ", "x=,z="),
            ("x in ()", "x in ()"),
            ("x in (,a)", "x in (,a)"),
            ("x in (a,)", "x in (,a)"),
            ("in=notin", "in=notin"),
            ("x in (in,notin)", "x in (in,notin)"),
            ("example.com/app=web", "example.com/app=web"),
            ("x=a||y=b", "INVALID"),
        ];
        for (input, want) in cases {
            match Selector::parse(input) {
                Ok(s) => assert_eq!(s.to_string(), want, "{input}"),
                Err(e) => assert_eq!(want, "INVALID", "{input}: {e}"),
            }
        }
    }

    #[test]
    fn parse_errors_use_upstream_wording() {
        let cases = [
            ("x=a,", "found '', expected: identifier after ','"),
            ("x=a,,y=b", "found ',', expected: identifier after ','"),
            ("x y", "found 'y', expected: in, notin, =, ==, !=, gt, lt"),
            ("x in a", "found 'a' expected: '('"),
            ("x in (a", "found '', expected: ',' or ')'"),
            ("x=(", "found '(', expected: identifier"),
            ("!x=a", "found '=', expected: ',' or 'end of string'"),
            ("x=a b", "found 'b', expected: ',' or 'end of string'"),
            (
                "=a",
                "found '=', expected: !, identifier, or 'end of string'",
            ),
            ("x in (a b)", "found 'b', expected: ',' or ')'"),
        ];
        for (input, want) in cases {
            assert_eq!(Selector::parse(input).unwrap_err(), want, "{input}");
        }
        let e = Selector::parse("-x=a").unwrap_err();
        assert!(
            e.starts_with("key: Invalid value: \"-x\": name part must consist"),
            "{e}"
        );
        let e = Selector::parse("x=-a").unwrap_err();
        assert!(
            e.starts_with("values[0]: Invalid value: \"-a\": a valid label"),
            "{e}"
        );
        assert_eq!(
            Selector::parse("x>a").unwrap_err(),
            "values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
    }

    #[test]
    fn string_form_round_trips() {
        let terms = [
            "a=b",
            "a!=b",
            "a in (x,y)",
            "a notin (x)",
            "a",
            "!a",
            "k8s.io/n=v",
            "z==",
            "b in (,q)",
            "c>5",
            "c<2",
        ];
        for x in terms {
            for y in terms {
                let s = Selector::parse(&format!("{x},{y}")).unwrap();
                let again = Selector::parse(&s.to_string()).unwrap();
                assert_eq!(s, again, "{x},{y} -> {s}");
            }
        }
    }

    #[test]
    fn matching_table() {
        let set = labels(&[("x", "a"), ("y", "b"), ("z", ""), ("n", "4")]);
        let cases = [
            ("", true),
            ("x=a", true),
            ("x=b", false),
            ("x!=b", true),
            ("x!=a", false),
            ("w!=a", true),
            ("x in (a,c)", true),
            ("x in (c)", false),
            ("w in (a)", false),
            ("x notin (a)", false),
            ("w notin (a)", true),
            ("x", true),
            ("w", false),
            ("!w", true),
            ("!x", false),
            ("z=", true),
            ("z", true),
            ("n>3", true),
            ("n>4", false),
            ("n<5", true),
            ("n<4", false),
            ("x>1", false),
            ("w<1", false),
            ("x=a,y=b", true),
            ("x=a,y=c", false),
        ];
        for (sel, want) in cases {
            let s = Selector::parse(sel).unwrap();
            assert_eq!(s.matches(&set), want, "{sel}");
        }
        let obj = json!({"metadata": {"labels": {"app": "web"}}});
        assert!(Selector::parse("app=web").unwrap().matches_object(&obj));
        assert!(
            !Selector::parse("app")
                .unwrap()
                .matches_object(&json!({"metadata": {}}))
        );
        assert!(
            Selector::parse("!app")
                .unwrap()
                .matches_object(&json!({"metadata": {}}))
        );
        assert_eq!(
            Selector::parse("app in (web),b")
                .unwrap()
                .requires_exact_match("app"),
            Some("web")
        );
    }

    #[test]
    fn from_label_selector_json() {
        let s = Selector::from_label_selector(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["fe", "be"]},
                {"key": "canary", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        assert_eq!(s.to_string(), "app=web,!canary,tier in (be,fe)");
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "fe")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "fe"), ("canary", "1")])));
        assert!(
            Selector::from_label_selector(&json!({}))
                .unwrap()
                .is_everything()
        );
        let none = Selector::from_label_selector(&Value::Null).unwrap();
        assert!(none.is_nothing() && !none.matches(&labels(&[])));
        assert_eq!(
            Selector::from_label_selector(
                &json!({"matchExpressions": [{"key": "a", "operator": "Foo"}]})
            )
            .unwrap_err(),
            "\"Foo\" is not a valid label selector operator"
        );
        assert!(
            Selector::from_label_selector(
                &json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})
            )
            .unwrap_err()
            .contains("values set can't be empty")
        );
    }

    #[test]
    fn validate_label_selector_field_errors() {
        let errs = validate_label_selector(
            &json!({"matchLabels": {"a": "-x"}, "matchExpressions": [
                {"key": "k", "operator": "In"},
                {"key": "k", "operator": "Exists", "values": ["v"]},
                {"key": "k", "operator": "Gt", "values": ["1"]}
            ]}),
            "spec.selector",
        );
        let got: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(got[0].starts_with("spec.selector.matchLabels: Invalid value: \"-x\""));
        assert_eq!(
            got[1],
            "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
        );
        assert_eq!(
            got[2],
            "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
        );
        assert_eq!(
            got[3],
            "spec.selector.matchExpressions[2].operator: Invalid value: \"Gt\": not a valid selector operator"
        );
    }

    #[test]
    fn field_selectors() {
        let get = |f: &str| match f {
            "metadata.name" => Some("a,b=c".to_string()),
            "spec.nodeName" => Some("n1".to_string()),
            "status.phase" => Some("Running".to_string()),
            _ => None,
        };
        let cases = [
            ("", true),
            ("spec.nodeName=n1", true),
            ("spec.nodeName==n1", true),
            ("spec.nodeName!=n1", false),
            ("spec.nodeName=n2", false),
            ("spec.nodeName=n1,status.phase!=Pending", true),
            ("metadata.name=a\\,b\\=c", true),
            ("spec.unknown=", true),
            ("spec.unknown!=", false),
            ("spec.nodeName=n1,", true),
        ];
        for (sel, want) in cases {
            let s = FieldSelector::parse(sel).unwrap_or_else(|e| panic!("{sel}: {e}"));
            assert_eq!(s.matches(get), want, "{sel}");
        }
        let s = FieldSelector::parse("metadata.name=a\\,b\\=c,spec.nodeName!=x").unwrap();
        assert_eq!(s.to_string(), "metadata.name=a\\,b\\=c,spec.nodeName!=x");
        assert_eq!(s.requirements()[0].value, "a,b=c");
        assert_eq!(
            FieldSelector::parse("spec.nodeName").unwrap_err(),
            "invalid selector: 'spec.nodeName'; can't understand 'spec.nodeName'"
        );
        assert_eq!(
            FieldSelector::parse("a=b=c").unwrap_err(),
            "invalid field selector: unescaped character in value: ="
        );
        assert_eq!(
            FieldSelector::parse("a=b\\x").unwrap_err(),
            "invalid field selector: invalid escape sequence: \\x"
        );
        assert_eq!(
            FieldSelector::parse("spec.nodeName=n1")
                .unwrap()
                .requires_exact_match("spec.nodeName"),
            Some("n1")
        );
        // An escape before a multi-byte character neither panics nor hides the operator.
        assert_eq!(
            FieldSelector::parse("a\\é=b").unwrap().requirements()[0].value,
            "b"
        );
        assert!(FieldSelector::parse("é=\\é").is_err());
        let pod = json!({"spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let fs = FieldSelector::parse("spec.nodeName=n1,status.phase=Running").unwrap();
        assert!(fs.matches(|f| object_field(&pod, f).and_then(Value::as_str)));
        assert_eq!(object_field(&pod, "spec.nodeName.x"), None);
        assert_eq!(
            object_field(&pod, "status"),
            Some(&json!({"phase": "Running"}))
        );
        // &str getters work too.
        assert!(FieldSelector::parse("a=b").unwrap().matches(|_| Some("b")));
    }
}
