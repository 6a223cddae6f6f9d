//! # skiff-aws-model: the AWS wire layer
//!
//! The botocore service models (documentation stripped, gzipped under `models/aws/`) are embedded and
//! interpreted at start-up. Five protocol codecs (query, ec2, json 1.0/1.1, rest-json, rest-xml) turn a
//! wire request into a `serde_json::Value` shaped like the operation's input shape, and an output
//! `Value` or an [`AwsError`] into the protocol's response. SigV4 verification lives here too.
//!
//! Must not depend on: any other skiff crate, the store, any service semantics.
//!
//! ## The handler contract (what every service handler receives and returns)
//!
//! Handlers are `async fn(&RequestContext, Value) -> Result<Value, AwsError>`. The codecs guarantee,
//! for every protocol alike (a handler never knows which wire format the client spoke):
//!
//! **Input** is a JSON object shaped like the operation's *input shape*, keyed by the model's
//! **member names** (never the wire names: not `queryName`, not `locationName`, not the lower-case
//! EC2 form), e.g. EC2 `CreateVpc`:
//! `{"CidrBlock": "10.0.0.0/16", "TagSpecifications": [{"ResourceType": "vpc", "Tags": [{"Key": "k", "Value": "v"}]}]}`.
//! - Scalars are converted to the model's type, whatever the wire carried (query strings, URI labels,
//!   headers): `integer`/`long` → JSON integer, `float`/`double` → JSON number, `boolean` → `true`/`false`,
//!   `string`/enum → string.
//! - `timestamp` → RFC 3339 string in UTC (`"2026-11-23T13:25:00Z"`), whatever the wire format
//!   (ISO 8601, epoch seconds, RFC 7231).
//! - `blob` → standard base64 string (padding kept), exactly the bytes the client sent.
//! - `list` → JSON array (wire `Member.N`, EC2 `.N`, flattened or `<member>`-wrapped alike);
//!   `map` → JSON object; `structure` → JSON object.
//! - Members the client did not send are **absent** (never `null`). A list the client sent empty
//!   (query `Foo=`, JSON `[]`) is `[]`: "clear all" operations need to see it.
//! - Constraints (`required`, `min`, `max`, `pattern`, `enum`) are checked before the handler runs and
//!   answered in the service's own words; a handler may rely on required members being present and typed.
//!
//! **Output** is a JSON object shaped like the operation's *output shape*, keyed by member names:
//! `{"Vpc": {"VpcId": "vpc-0a1b…", "CidrBlock": "10.0.0.0/16", "Tags": [{"Key": "k", "Value": "v"}]}}`.
//! - Lists are plain JSON arrays; the codec adds `<item>` / `<member>` / flattened wrapping.
//! - Timestamps are RFC 3339 strings (the codec renders ISO 8601 for query/ec2/rest-xml, epoch seconds
//!   for json/rest-json); blobs are base64 strings; integers/booleans as JSON numbers/booleans
//!   (strings such as `"true"`/`"5"` are accepted too and rendered as-is).
//! - Omit members with no value (don't emit `null`); unknown members (not in the shape) are dropped by
//!   the encoder, so handlers may keep private fields in records without leaking them.
//! - Operations with no output shape return `{}` (`Value::Object` empty) or `Value::Null`.
//! - REST protocols: members the model binds to `header`/`statusCode`/`payload` are taken from the same
//!   object (e.g. Route 53 `Location` header), the HTTP status from the model's `http.responseCode`.
//!
//! **Errors** are [`AwsError`] `{code, message, status, sender_fault}`; the codec renders them in the
//! protocol's own form (query `<ErrorResponse>`, EC2 `<Response><Errors>`, json `__type`, rest-json
//! `X-Amzn-ErrorType`, rest-xml `<ErrorResponse>`). Use the model's error codes; for modelled errors
//! [`AwsError::modeled`] fills status and fault from the model's error shape.

pub mod codec;
pub mod model;
pub mod scalar;
pub mod sigv4;
pub mod validate;

pub use codec::{Decoded, WireRequest, WireResponse, decode, encode_error, encode_output};
pub use model::{
    Operation, Protocol, ServiceInfo, ServiceModel, service, service_by_signing_name,
    service_by_target_prefix,
};

/// An AWS error as a handler returns it; the protocol codec turns it into the service's own error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// The error code clients match on (`InvalidVpcID.NotFound`, `NoSuchEntity`, `ResourceInUseException`).
    pub code: String,
    pub message: String,
    /// HTTP status (400 unless the service documents another).
    pub status: u16,
    /// Query protocol `<Type>`: true = Sender, false = Receiver.
    pub sender_fault: bool,
}

impl AwsError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            status: 400,
            sender_fault: true,
        }
    }
    /// An error the service's model declares: status and fault come from the model's error shape
    /// (`EntityAlreadyExists` → 409 for IAM). Unknown codes keep 400/Sender. `service` is botocore's
    /// folder name (`iam`, `eks`).
    pub fn modeled(service: &str, code: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = Self::new(code, message);
        if let Some(shape) = model::service(service).and_then(|m| m.error_shape(&e.code)) {
            let t = shape.error.clone().unwrap_or_default();
            e.status = t.http_status.unwrap_or(400);
            e.sender_fault = !shape.fault;
        }
        e
    }
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        if status >= 500 {
            self.sender_fault = false;
        }
        self
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AwsError {}
