//! The five protocol codecs behind one interface: [`decode`] a wire request into the handler contract's
//! input `Value` (constraints checked), [`encode_output`] / [`encode_error`] into the wire response.
//!
//! Errors become wire errors here and nowhere else (one function per protocol in [`encode_error`]).

pub mod form;
pub mod json;
pub mod rest;
pub mod xml;

use serde_json::Value;

use crate::AwsError;
use crate::model::{Operation, Protocol, ServiceModel};
use crate::validate;

/// What the codecs read of an HTTP request (no I/O types: the gateway fills it from axum).
#[derive(Debug, Clone, Copy)]
pub struct WireRequest<'a> {
    pub method: &'a str,
    /// The raw (still percent-encoded) path.
    pub path: &'a str,
    /// The raw query string without `?`.
    pub query: &'a str,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
}

/// A response ready for the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A decoded request: which operation, and its input in the handler contract's form.
#[derive(Debug, Clone)]
pub struct Decoded<'m> {
    pub operation: &'m Operation,
    pub input: Value,
}

pub const EC2_NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// Decode and validate a request for `model`.
pub fn decode<'m>(model: &'m ServiceModel, req: &WireRequest) -> Result<Decoded<'m>, AwsError> {
    let Decoded { operation, input } = decode_unchecked(model, req)?;
    if let Some(r) = &operation.input {
        let violations = validate::validate(model, &r.shape, &input);
        if let Some(err) = validate::to_error(model, &violations) {
            return Err(err);
        }
    }
    Ok(Decoded { operation, input })
}

/// Decode without checking the model's constraints (types are still checked): for tools and tests
/// that feed generated values; the gateway always uses [`decode`].
pub fn decode_unchecked<'m>(
    model: &'m ServiceModel,
    req: &WireRequest,
) -> Result<Decoded<'m>, AwsError> {
    let (operation, input) = match model.protocol {
        Protocol::Query | Protocol::Ec2 => form::decode(model, &form::params(req.query, req.body))?,
        Protocol::Json => decode_json_rpc(model, req)?,
        Protocol::RestJson | Protocol::RestXml => rest::decode(model, req)?,
    };
    Ok(Decoded { operation, input })
}

/// The operation a JSON-RPC request names in `X-Amz-Target: Prefix.Operation`.
fn decode_json_rpc<'m>(
    model: &'m ServiceModel,
    req: &WireRequest,
) -> Result<(&'m Operation, Value), AwsError> {
    let target = req
        .headers
        .get("x-amz-target")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let op_name = target
        .split_once('.')
        .filter(|(prefix, _)| Some(*prefix) == model.target_prefix.as_deref())
        .map(|(_, op)| op);
    let op = op_name
        .and_then(|n| model.operation(n))
        .ok_or_else(|| AwsError::new("UnknownOperationException", ""))?;
    let body: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(req.body).map_err(|_| {
            AwsError::new(
                "SerializationException",
                "Start of structure or map found where not expected.",
            )
        })?
    };
    let input = match op.input.as_ref().and_then(|r| model.shape(&r.shape)) {
        Some(shape) => json::from_wire(model, shape, &body, "", false)?,
        None => Value::Object(Default::default()),
    };
    Ok((op, input))
}

fn xml_response(status: u16, body: String) -> WireResponse {
    WireResponse {
        status,
        headers: vec![("Content-Type".into(), "text/xml".into())],
        body: body.into_bytes(),
    }
}

/// Encode a handler's output for `op`.
pub fn encode_output(
    model: &ServiceModel,
    op: &Operation,
    output: &Value,
    request_id: &str,
) -> WireResponse {
    let shape = op.output.as_ref().and_then(|r| model.shape(&r.shape));
    match model.protocol {
        Protocol::Query => {
            let mut w = xml::XmlWriter::new(model);
            let ns = model.xml_namespace.as_deref().unwrap_or_default();
            w.out.push_str(&format!(
                "<{}Response xmlns=\"{}\">",
                op.name,
                xml::escape(ns)
            ));
            if let Some(shape) = shape {
                match &op.result_wrapper {
                    Some(wrapper) => {
                        w.open(wrapper);
                        w.members(shape, output, false);
                        w.close(wrapper);
                    }
                    None => w.members(shape, output, false),
                }
            }
            w.open("ResponseMetadata");
            w.text_element("RequestId", request_id);
            w.close("ResponseMetadata");
            w.close(&format!("{}Response", op.name));
            xml_response(200, w.out)
        }
        Protocol::Ec2 => {
            let mut w = xml::XmlWriter::new(model);
            w.out
                .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
            w.out
                .push_str(&format!("<{}Response xmlns=\"{EC2_NAMESPACE}\">", op.name));
            w.text_element("requestId", request_id);
            if let Some(shape) = shape {
                w.members(shape, output, false);
            }
            w.close(&format!("{}Response", op.name));
            xml_response(200, w.out)
        }
        Protocol::Json => {
            let body = shape.map_or(Value::Object(Default::default()), |s| {
                json::to_wire(model, s, output, false)
            });
            WireResponse {
                status: 200,
                headers: vec![("Content-Type".into(), json_content_type(model))],
                body: serde_json::to_vec(&body).unwrap_or_default(),
            }
        }
        Protocol::RestJson => {
            let (status, mut headers) = rest_response_meta(model, op, output);
            let body = shape.map_or(Value::Object(Default::default()), |s| {
                json::to_wire(model, s, output, true)
            });
            headers.push(("Content-Type".into(), "application/json".into()));
            WireResponse {
                status,
                headers,
                body: serde_json::to_vec(&body).unwrap_or_default(),
            }
        }
        Protocol::RestXml => {
            let (status, mut headers) = rest_response_meta(model, op, output);
            let mut body = String::new();
            if let Some(shape) =
                shape.filter(|s| s.members.iter().any(|(_, r)| r.location.is_none()))
            {
                let mut w = xml::XmlWriter::new(model);
                let root = shape.location_name.as_deref().unwrap_or(&shape.name);
                w.out
                    .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
                w.out
                    .push_str(&format!("<{root} xmlns=\"{}\">", rest_xml_namespace(model)));
                w.members(shape, output, true);
                w.close(root);
                body = w.out;
            }
            headers.push(("Content-Type".into(), "text/xml".into()));
            WireResponse {
                status,
                headers,
                body: body.into_bytes(),
            }
        }
    }
}

fn json_content_type(model: &ServiceModel) -> String {
    format!(
        "application/x-amz-json-{}",
        model.json_version.as_deref().unwrap_or("1.0")
    )
}

/// Route 53's namespace is not in its metadata; the operations' inputs carry it.
fn rest_xml_namespace(model: &ServiceModel) -> &str {
    model
        .operations
        .values()
        .find_map(|o| o.input.as_ref().and_then(|i| i.xml_namespace.as_deref()))
        .or(model.xml_namespace.as_deref())
        .unwrap_or_default()
}

/// Status code and header-bound members of a REST output.
fn rest_response_meta(
    model: &ServiceModel,
    op: &Operation,
    output: &Value,
) -> (u16, Vec<(String, String)>) {
    let mut status = op.response_code;
    let mut headers = Vec::new();
    let shape = op.output.as_ref().and_then(|r| model.shape(&r.shape));
    let (Some(shape), Some(obj)) = (shape, output.as_object()) else {
        return (status, headers);
    };
    for (name, r) in &shape.members {
        let Some(v) = obj.get(name).filter(|v| !v.is_null()) else {
            continue;
        };
        let Some(target) = model.shape(&r.shape) else {
            continue;
        };
        let wire = r.location_name.as_deref().unwrap_or(name);
        match r.location.as_deref() {
            Some("header") => {
                if let Some(t) = crate::scalar::to_text(target.kind, v, crate::scalar::http_date) {
                    headers.push((wire.to_string(), t));
                }
            }
            Some("headers") => {
                for (k, x) in v.as_object().into_iter().flatten() {
                    if let Some(t) = x.as_str() {
                        headers.push((format!("{wire}{k}"), t.to_string()));
                    }
                }
            }
            Some("statusCode") => {
                if let Some(s) = v.as_u64().and_then(|s| u16::try_from(s).ok()) {
                    status = s;
                }
            }
            _ => {}
        }
    }
    (status, headers)
}

/// Fill status and fault from the model's error shape when the handler left the defaults.
fn modeled(model: &ServiceModel, err: &AwsError) -> AwsError {
    let mut e = err.clone();
    if e.status == 400
        && let Some(shape) = model.error_shape(&err.code)
    {
        let t = shape.error.clone().unwrap_or_default();
        e.status = t.http_status.unwrap_or(400);
        e.sender_fault = t.sender_fault || !shape.fault;
    }
    e
}

/// Encode an error the way the protocol's clients parse it.
pub fn encode_error(model: &ServiceModel, err: &AwsError, request_id: &str) -> WireResponse {
    encode_error_for(model.protocol, Some(model), err, request_id)
}

/// [`encode_error`] before a service is known (or for a protocol only): the gateway's own errors.
pub fn encode_error_for(
    protocol: Protocol,
    model: Option<&ServiceModel>,
    err: &AwsError,
    request_id: &str,
) -> WireResponse {
    let e = model.map_or_else(|| err.clone(), |m| modeled(m, err));
    match protocol {
        Protocol::Query | Protocol::RestXml => {
            let ns = match (protocol, model) {
                (Protocol::Query, Some(m)) => m.xml_namespace.clone().unwrap_or_default(),
                (_, Some(m)) => rest_xml_namespace(m).to_string(),
                _ => String::new(),
            };
            let open = if ns.is_empty() {
                "<ErrorResponse>".to_string()
            } else {
                format!("<ErrorResponse xmlns=\"{}\">", xml::escape(&ns))
            };
            let body = format!(
                "{open}<Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
                if e.sender_fault { "Sender" } else { "Receiver" },
                xml::escape(&e.code),
                xml::escape(&e.message),
                xml::escape(request_id)
            );
            xml_response(e.status, body)
        }
        Protocol::Ec2 => {
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
                xml::escape(&e.code),
                xml::escape(&e.message),
                xml::escape(request_id)
            );
            xml_response(e.status, body)
        }
        Protocol::Json => {
            let body = serde_json::json!({"__type": e.code, "message": e.message});
            WireResponse {
                status: e.status,
                headers: vec![(
                    "Content-Type".into(),
                    model.map_or_else(
                        || "application/x-amz-json-1.1".to_string(),
                        json_content_type,
                    ),
                )],
                body: serde_json::to_vec(&body).unwrap_or_default(),
            }
        }
        Protocol::RestJson => WireResponse {
            status: e.status,
            headers: vec![
                ("X-Amzn-ErrorType".into(), e.code.clone()),
                ("Content-Type".into(), "application/json".into()),
            ],
            body: serde_json::to_vec(&serde_json::json!({"message": e.message}))
                .unwrap_or_default(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::service;
    use serde_json::json;

    #[test]
    fn query_output_wraps_result_and_lists() {
        let iam = service("iam").expect("iam");
        let op = iam.operation("ListRoleTags").expect("op");
        let r = encode_output(
            iam,
            op,
            &json!({"Tags": [{"Key": "a&b", "Value": "1"}], "IsTruncated": false}),
            "rid",
        );
        let body = String::from_utf8(r.body).expect("utf8");
        assert_eq!(
            body,
            "<ListRoleTagsResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><ListRoleTagsResult><Tags><member><Key>a&amp;b</Key><Value>1</Value></member></Tags><IsTruncated>false</IsTruncated></ListRoleTagsResult><ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></ListRoleTagsResponse>"
        );
    }

    #[test]
    fn ec2_output_uses_location_names_and_items() {
        let ec2 = service("ec2").expect("ec2");
        let op = ec2.operation("DescribeVpcs").expect("op");
        let r = encode_output(
            ec2,
            op,
            &json!({"Vpcs": [{"VpcId": "vpc-1", "IsDefault": true, "Tags": [{"Key": "k", "Value": "v"}]}]}),
            "rid",
        );
        let body = String::from_utf8(r.body).expect("utf8");
        assert!(body.contains("<DescribeVpcsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>rid</requestId><vpcSet><item>"), "{body}");
        assert!(
            body.contains("<vpcId>vpc-1</vpcId>")
                && body.contains("<tagSet><item><key>k</key><value>v</value></item></tagSet>"),
            "{body}"
        );
        assert!(body.contains("<isDefault>true</isDefault>"), "{body}");
    }

    #[test]
    fn errors_per_protocol() {
        let iam = service("iam").expect("iam");
        let r = encode_error(
            iam,
            &AwsError::new("EntityAlreadyExists", "Role with name r already exists."),
            "rid",
        );
        assert_eq!(r.status, 409);
        assert!(
            String::from_utf8_lossy(&r.body)
                .contains("<Type>Sender</Type><Code>EntityAlreadyExists</Code>")
        );
        let eks = service("eks").expect("eks");
        let r = encode_error(eks, &AwsError::new("ResourceInUseException", "busy"), "rid");
        assert_eq!(r.status, 409);
        assert!(
            r.headers
                .contains(&("X-Amzn-ErrorType".into(), "ResourceInUseException".into()))
        );
        let kms = service("kms").expect("kms");
        let r = encode_error(kms, &AwsError::new("NotFoundException", "no key"), "rid");
        assert_eq!(
            serde_json::from_slice::<Value>(&r.body).expect("json"),
            json!({"__type": "NotFoundException", "message": "no key"})
        );
        let ec2 = service("ec2").expect("ec2");
        let r = encode_error(
            ec2,
            &AwsError::new("InvalidVpcID.NotFound", "The vpc ID 'vpc-1' does not exist"),
            "rid",
        );
        assert!(
            String::from_utf8_lossy(&r.body)
                .contains("<Response><Errors><Error><Code>InvalidVpcID.NotFound</Code>")
        );
    }

    #[test]
    fn json_rpc_target_and_unknown_operation() {
        let kms = service("kms").expect("kms");
        let call = |target: &'static str, body: &'static [u8]| {
            let mut h = http::HeaderMap::new();
            h.insert("x-amz-target", http::HeaderValue::from_static(target));
            let req = WireRequest {
                method: "POST",
                path: "/",
                query: "",
                headers: &h,
                body,
            };
            decode(kms, &req).map(|d| (d.operation.name.clone(), d.input))
        };
        assert_eq!(
            call("TrentService.DescribeKey", br#"{"KeyId":"k"}"#).expect("decodes"),
            ("DescribeKey".to_string(), json!({"KeyId": "k"}))
        );
        assert!(
            call("TrentService.Nope", b"{}").is_err_and(|e| e.code == "UnknownOperationException")
        );
        assert!(
            call("TrentService.DescribeKey", b"{}").is_err_and(|e| e.code == "ValidationException")
        );
        assert!(
            call("TrentService.DescribeKey", b"{x")
                .is_err_and(|e| e.code == "SerializationException")
        );
    }
}
