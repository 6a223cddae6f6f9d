//! REST protocols (rest-json for EKS, rest-xml for Route 53): a route table built from the model's
//! `requestUri` templates, and input members gathered from their `location` (uri label, querystring,
//! header, body).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use crate::AwsError;
use crate::model::{Operation, Protocol, ServiceModel, Shape, ShapeType};
use crate::scalar;

use super::WireRequest;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Label(String),
    /// `{Key+}`: the rest of the path, slashes included.
    Greedy(String),
}

#[derive(Debug)]
struct Route {
    operation: String,
    method: String,
    segments: Vec<Segment>,
    /// Literal query keys in the template (`?versioning`) that must be present.
    query_keys: Vec<String>,
}

impl Route {
    fn parse(op: &Operation) -> Self {
        let (path, query) = op
            .request_uri
            .split_once('?')
            .unwrap_or((&op.request_uri, ""));
        let segments = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(l) => match l.strip_suffix('+') {
                        Some(g) => Segment::Greedy(g.to_string()),
                        None => Segment::Label(l.to_string()),
                    },
                    None => Segment::Literal(s.to_string()),
                },
            )
            .collect();
        let query_keys = query
            .split('&')
            .filter(|q| !q.is_empty())
            .map(|q| q.split('=').next().unwrap_or_default().to_string())
            .collect();
        Self {
            operation: op.name.clone(),
            method: op.method.clone(),
            segments,
            query_keys,
        }
    }

    /// Ordering key: more literal segments first, then fewer greedy labels, then more query keys.
    fn specificity(&self) -> (usize, usize, usize) {
        let lits = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        let greedy = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Greedy(_)))
            .count();
        (lits, usize::MAX - greedy, self.query_keys.len())
    }

    /// The decoded label values when `path` matches.
    fn matches(&self, path: &[&str], query_keys: &[String]) -> Option<HashMap<String, String>> {
        if !self.query_keys.iter().all(|k| query_keys.contains(k)) {
            return None;
        }
        let mut labels = HashMap::new();
        let mut i = 0;
        for seg in &self.segments {
            match seg {
                Segment::Literal(l) => {
                    if path.get(i).map(|p| unescape(p)) != Some(l.clone()) {
                        return None;
                    }
                    i += 1;
                }
                Segment::Label(name) => {
                    let v = path.get(i)?;
                    labels.insert(name.clone(), unescape(v));
                    i += 1;
                }
                Segment::Greedy(name) => {
                    if i >= path.len() {
                        return None;
                    }
                    let rest: Vec<String> = path[i..].iter().map(|p| unescape(p)).collect();
                    labels.insert(name.clone(), rest.join("/"));
                    i = path.len();
                }
            }
        }
        (i == path.len()).then_some(labels)
    }
}

fn unescape(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

type Routes = Arc<Vec<Route>>;

fn routes(model: &ServiceModel) -> Routes {
    static TABLES: LazyLock<Mutex<HashMap<&'static str, Routes>>> = LazyLock::new(Default::default);
    let mut tables = TABLES.lock().unwrap_or_else(|e| e.into_inner());
    tables
        .entry(model.name)
        .or_insert_with(|| {
            let mut r: Vec<Route> = model.operations.values().map(Route::parse).collect();
            r.sort_by(|a, b| {
                b.specificity()
                    .cmp(&a.specificity())
                    .then_with(|| a.operation.cmp(&b.operation))
            });
            Arc::new(r)
        })
        .clone()
}

/// The protocol's answer to a path no operation matches.
fn unknown_operation(req: &WireRequest) -> AwsError {
    AwsError::new(
        "UnknownOperationException",
        format!("No operation matches {} {}", req.method, req.path),
    )
    .with_status(404)
}

/// Route the request and gather its input.
pub fn decode<'m>(
    model: &'m ServiceModel,
    req: &WireRequest,
) -> Result<(&'m Operation, Value), AwsError> {
    let path: Vec<&str> = req
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let query: Vec<(String, String)> = form_urlencoded::parse(req.query.as_bytes())
        .into_owned()
        .collect();
    let query_keys: Vec<String> = query.iter().map(|(k, _)| k.clone()).collect();
    let table = routes(model);
    let (route, labels) = table
        .iter()
        .filter(|r| r.method.eq_ignore_ascii_case(req.method))
        .find_map(|r| r.matches(&path, &query_keys).map(|l| (r, l)))
        .ok_or_else(|| unknown_operation(req))?;
    let op = model
        .operation(&route.operation)
        .ok_or_else(|| unknown_operation(req))?;
    let Some(shape) = op.input.as_ref().and_then(|r| model.shape(&r.shape)) else {
        return Ok((op, Value::Object(Map::new())));
    };
    let mut input = match model.protocol {
        Protocol::RestXml if !req.body.iter().all(u8::is_ascii_whitespace) => {
            let root = super::xml::parse(req.body)?;
            super::xml::struct_from_xml(model, shape, &root)?
        }
        Protocol::RestJson if !req.body.iter().all(u8::is_ascii_whitespace) => {
            let body: Value = serde_json::from_slice(req.body).map_err(|e| {
                AwsError::new(
                    "SerializationException",
                    format!("Could not parse request body into json: {e}"),
                )
            })?;
            super::json::from_wire(model, shape, &body, "", true)?
        }
        _ => Value::Object(Map::new()),
    };
    let Value::Object(obj) = &mut input else {
        return Ok((op, input));
    };
    bind_locations(model, shape, &labels, &query, req, obj)?;
    Ok((op, input))
}

fn bad_value(protocol: Protocol, name: &str, text: &str, expected: &str) -> AwsError {
    let code = if protocol == Protocol::RestXml {
        "InvalidInput"
    } else {
        "InvalidParameterException"
    };
    AwsError::new(
        code,
        format!("Invalid value '{text}' for {name}: expected {expected}"),
    )
}

fn bind_locations(
    model: &ServiceModel,
    shape: &Shape,
    labels: &HashMap<String, String>,
    query: &[(String, String)],
    req: &WireRequest,
    obj: &mut Map<String, Value>,
) -> Result<(), AwsError> {
    let bound_query: Vec<&str> = shape
        .members
        .iter()
        .filter(|(_, r)| r.location.as_deref() == Some("querystring"))
        .filter_map(|(n, r)| r.location_name.as_deref().or(Some(n.as_str())))
        .collect();
    for (name, r) in &shape.members {
        let Some(location) = r.location.as_deref() else {
            continue;
        };
        let Some(target) = model.shape(&r.shape) else {
            continue;
        };
        let wire = r.location_name.as_deref().unwrap_or(name);
        let scalar_of = |text: &str, kind: ShapeType| {
            scalar::from_text(kind, text)
                .map_err(|b| bad_value(model.protocol, wire, text, b.expected))
        };
        let value = match location {
            "uri" => labels
                .get(wire)
                .map(|t| scalar_of(t, target.kind))
                .transpose()?,
            "querystring" => match target.kind {
                ShapeType::List => {
                    let kind = target
                        .member
                        .as_ref()
                        .and_then(|m| model.shape(&m.shape))
                        .map_or(ShapeType::String, |s| s.kind);
                    let items = query
                        .iter()
                        .filter(|(k, _)| k == wire)
                        .map(|(_, v)| scalar_of(v, kind))
                        .collect::<Result<Vec<_>, _>>()?;
                    (!items.is_empty()).then_some(Value::Array(items))
                }
                // A querystring map takes every parameter no other member binds.
                ShapeType::Map => {
                    let m: Map<String, Value> = query
                        .iter()
                        .filter(|(k, _)| !bound_query.contains(&k.as_str()))
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect();
                    (!m.is_empty()).then_some(Value::Object(m))
                }
                kind => query
                    .iter()
                    .find(|(k, _)| k == wire)
                    .map(|(_, v)| scalar_of(v, kind))
                    .transpose()?,
            },
            "header" => match req.headers.get(wire).and_then(|h| h.to_str().ok()) {
                None => None,
                Some(text) => match target.kind {
                    ShapeType::List => Some(Value::Array(
                        text.split(',')
                            .map(|s| Value::String(s.trim().to_string()))
                            .collect(),
                    )),
                    kind => Some(scalar_of(text, kind)?),
                },
            },
            "headers" => {
                let prefix = wire.to_ascii_lowercase();
                let m: Map<String, Value> = req
                    .headers
                    .iter()
                    .filter_map(|(k, v)| {
                        let rest = k.as_str().strip_prefix(&prefix)?;
                        Some((
                            rest.to_string(),
                            Value::String(v.to_str().ok()?.to_string()),
                        ))
                    })
                    .collect();
                (!m.is_empty()).then_some(Value::Object(m))
            }
            _ => None,
        };
        if let Some(v) = value {
            obj.insert(name.clone(), v);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::service;
    use serde_json::json;

    fn req<'a>(
        method: &'a str,
        path: &'a str,
        query: &'a str,
        headers: &'a http::HeaderMap,
        body: &'a [u8],
    ) -> WireRequest<'a> {
        WireRequest {
            method,
            path,
            query,
            headers,
            body,
        }
    }

    #[test]
    fn eks_routes_labels_query_and_body() {
        let eks = service("eks").expect("eks");
        let h = http::HeaderMap::new();
        let (op, v) = decode(
            eks,
            &req("GET", "/clusters/demo/node-groups/ng%201", "", &h, b""),
        )
        .expect("routes");
        assert_eq!(op.name, "DescribeNodegroup");
        assert_eq!(v, json!({"clusterName": "demo", "nodegroupName": "ng 1"}));
        let (op, v) = decode(
            eks,
            &req("GET", "/clusters", "maxResults=5&include=all", &h, b""),
        )
        .expect("routes");
        assert_eq!(op.name, "ListClusters");
        assert_eq!(v, json!({"maxResults": 5, "include": ["all"]}));
        let (op, v) = decode(
            eks,
            &req(
                "POST",
                "/clusters",
                "",
                &h,
                br#"{"name":"demo","roleArn":"arn","resourcesVpcConfig":{"subnetIds":["s-1"]}}"#,
            ),
        )
        .expect("routes");
        assert_eq!(op.name, "CreateCluster");
        assert_eq!(v["resourcesVpcConfig"], json!({"subnetIds": ["s-1"]}));
        assert!(
            decode(eks, &req("PATCH", "/nowhere", "", &h, b""))
                .is_err_and(|e| e.code == "UnknownOperationException")
        );
    }

    #[test]
    fn route53_xml_body_and_trailing_slash() {
        let r53 = service("route53").expect("route53");
        let h = http::HeaderMap::new();
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch><Changes><Change><Action>UPSERT</Action><ResourceRecordSet><Name>a.example.com</Name><Type>A</Type><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>10.0.0.1</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>"#;
        let (op, v) = decode(
            r53,
            &req("POST", "/2013-04-01/hostedzone/Z1/rrset/", "", &h, body),
        )
        .expect("routes");
        assert_eq!(op.name, "ChangeResourceRecordSets");
        assert_eq!(
            v,
            json!({"HostedZoneId": "Z1", "ChangeBatch": {"Changes": [{"Action": "UPSERT", "ResourceRecordSet":
                {"Name": "a.example.com", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "10.0.0.1"}]}}]}})
        );
        let (op, _) = decode(
            r53,
            &req("GET", "/2013-04-01/hostedzone/Z1/rrset", "", &h, b""),
        )
        .expect("routes");
        assert_eq!(op.name, "ListResourceRecordSets");
    }
}
