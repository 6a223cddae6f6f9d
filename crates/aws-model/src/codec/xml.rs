//! XML for the query, ec2 and rest-xml protocols: a small writer driven by the output shape, and a
//! tree reader (quick-xml events) for rest-xml request bodies.

use serde_json::{Map, Value};

use crate::AwsError;
use crate::model::{MemberRef, ServiceModel, Shape, ShapeType};
use crate::scalar;

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

/// Writes output shapes as XML elements, following the model's member order and names.
pub struct XmlWriter<'m> {
    pub model: &'m ServiceModel,
    pub out: String,
}

impl<'m> XmlWriter<'m> {
    pub fn new(model: &'m ServiceModel) -> Self {
        Self {
            model,
            out: String::with_capacity(512),
        }
    }

    pub fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    pub fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    pub fn text_element(&mut self, name: &str, text: &str) {
        self.open(name);
        self.out.push_str(&escape(text));
        self.close(name);
    }

    /// The members of a structure value, in model order; `body_only` skips REST-bound members.
    pub fn members(&mut self, shape: &Shape, v: &Value, body_only: bool) {
        let Some(obj) = v.as_object() else { return };
        for (name, r) in &shape.members {
            if body_only && r.location.is_some() {
                continue;
            }
            let Some(val) = obj.get(name).filter(|x| !x.is_null()) else {
                continue;
            };
            let Some(target) = self.model.shape(&r.shape) else {
                continue;
            };
            let el = r
                .location_name
                .as_deref()
                .or(target.location_name.as_deref())
                .unwrap_or(name);
            self.value(el, r, target, val);
        }
    }

    fn value(&mut self, name: &str, r: &MemberRef, shape: &Shape, v: &Value) {
        match shape.kind {
            ShapeType::Structure => {
                self.open(name);
                self.members(shape, v, false);
                self.close(name);
            }
            ShapeType::List => {
                let Some(items) = v.as_array() else { return };
                let Some(mr) = &shape.member else { return };
                let Some(ms) = self.model.shape(&mr.shape) else {
                    return;
                };
                if r.flattened || shape.flattened {
                    let item_name = mr.location_name.as_deref().unwrap_or(name);
                    for item in items {
                        self.value(item_name, mr, ms, item);
                    }
                } else {
                    let item_name = mr.location_name.as_deref().unwrap_or("member");
                    self.open(name);
                    for item in items {
                        self.value(item_name, mr, ms, item);
                    }
                    self.close(name);
                }
            }
            ShapeType::Map => {
                let Some(map) = v.as_object() else { return };
                let (Some(kr), Some(vr)) = (&shape.key, &shape.value) else {
                    return;
                };
                let (Some(ks), Some(vs)) =
                    (self.model.shape(&kr.shape), self.model.shape(&vr.shape))
                else {
                    return;
                };
                let key_name = kr.location_name.as_deref().unwrap_or("key");
                let value_name = vr.location_name.as_deref().unwrap_or("value");
                let flat = r.flattened || shape.flattened;
                if !flat {
                    self.open(name);
                }
                for (k, val) in map {
                    self.open(if flat { name } else { "entry" });
                    self.value(key_name, kr, ks, &Value::String(k.clone()));
                    self.value(value_name, vr, vs, val);
                    self.close(if flat { name } else { "entry" });
                }
                if !flat {
                    self.close(name);
                }
            }
            kind => {
                if let Some(text) = scalar::to_text(kind, v, scalar::iso8601) {
                    self.text_element(name, &text);
                }
            }
        }
    }
}

/// A parsed XML element: local name, text and child elements (namespaces and attributes dropped —
/// no request shape in these models binds an attribute).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
}

fn malformed(detail: impl std::fmt::Display) -> AwsError {
    AwsError::new(
        "MalformedXML",
        format!(
            "The XML you provided was not well-formed or did not validate against our published schema: {detail}"
        ),
    )
}

/// Parse a document into its root element.
pub fn parse(body: &[u8]) -> Result<Element, AwsError> {
    use quick_xml::events::Event;
    let text = std::str::from_utf8(body).map_err(malformed)?;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let local = |raw: &str| -> String { raw.rsplit(':').next().unwrap_or_default().to_string() };
    loop {
        match reader.read_event().map_err(malformed)? {
            Event::Start(e) => stack.push(Element {
                name: local(e.name().as_ref()),
                ..Default::default()
            }),
            Event::Empty(e) => {
                let el = Element {
                    name: local(e.name().as_ref()),
                    ..Default::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return Ok(el),
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| malformed("unbalanced end tag"))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return Ok(el),
                }
            }
            Event::Text(t) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(malformed)? {
                    Some(c) => c,
                    None => match r.xml10_content().as_ref() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => return Err(malformed(format!("unknown entity &{other};"))),
                    },
                };
                if let Some(el) = stack.last_mut() {
                    el.text.push(resolved);
                }
            }
            Event::Eof => return Err(malformed("unexpected end of document")),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
}

/// Convert the children of `el` into a structure value (body members only).
pub fn struct_from_xml(
    model: &ServiceModel,
    shape: &Shape,
    el: &Element,
) -> Result<Value, AwsError> {
    let mut out = Map::new();
    for (name, r) in &shape.members {
        if r.location.is_some() {
            continue;
        }
        let Some(target) = model.shape(&r.shape) else {
            continue;
        };
        let wire = r
            .location_name
            .as_deref()
            .or(target.location_name.as_deref())
            .unwrap_or(name);
        if target.kind == ShapeType::List && (r.flattened || target.flattened) {
            let Some(mr) = &target.member else { continue };
            let Some(ms) = model.shape(&mr.shape) else {
                continue;
            };
            let items: Result<Vec<Value>, AwsError> = el
                .children_named(wire)
                .map(|c| from_xml(model, ms, c, name))
                .collect();
            let items = items?;
            if !items.is_empty() {
                out.insert(name.clone(), Value::Array(items));
            }
            continue;
        }
        if let Some(child) = el.children_named(wire).next() {
            out.insert(name.clone(), from_xml(model, target, child, name)?);
        }
    }
    Ok(Value::Object(out))
}

fn from_xml(
    model: &ServiceModel,
    shape: &Shape,
    el: &Element,
    member: &str,
) -> Result<Value, AwsError> {
    match shape.kind {
        ShapeType::Structure => struct_from_xml(model, shape, el),
        ShapeType::List => {
            let Some(mr) = &shape.member else {
                return Ok(Value::Array(vec![]));
            };
            let Some(ms) = model.shape(&mr.shape) else {
                return Ok(Value::Array(vec![]));
            };
            let item = mr.location_name.as_deref().unwrap_or("member");
            el.children_named(item)
                .map(|c| from_xml(model, ms, c, member))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        ShapeType::Map => {
            let (Some(kr), Some(vr)) = (&shape.key, &shape.value) else {
                return Ok(Value::Object(Map::new()));
            };
            let Some(vs) = model.shape(&vr.shape) else {
                return Ok(Value::Object(Map::new()));
            };
            let kn = kr.location_name.as_deref().unwrap_or("key");
            let vn = vr.location_name.as_deref().unwrap_or("value");
            let mut out = Map::new();
            for entry in el.children_named("entry") {
                let k = entry
                    .children_named(kn)
                    .next()
                    .map(|k| k.text.clone())
                    .unwrap_or_default();
                let v = match entry.children_named(vn).next() {
                    Some(v) => from_xml(model, vs, v, member)?,
                    None => Value::Null,
                };
                out.insert(k, v);
            }
            Ok(Value::Object(out))
        }
        kind => scalar::from_text(kind, &el.text).map_err(|bad| {
            AwsError::new(
                "InvalidInput",
                format!(
                    "Invalid value '{}' for {member}: expected {}",
                    el.text, bad.expected
                ),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entities_cdata_and_namespaces() {
        let el = parse(br#"<?xml version="1.0"?><r:A xmlns:r="x"><B>a &amp; b&#33;</B><C><![CDATA[<x>]]></C><D/></r:A>"#)
            .expect("parses");
        assert_eq!(el.name, "A");
        assert_eq!(el.children[0].text, "a & b!");
        assert_eq!(el.children[1].text, "<x>");
        assert_eq!(el.children[2].name, "D");
        assert!(parse(b"<A><B></A>").is_err());
        assert!(parse(b"<A>").is_err());
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;"
        );
    }
}
