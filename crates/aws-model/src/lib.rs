//! # skiff-aws-model: the AWS wire layer
//!
//! The botocore service models (documentation stripped, gzipped under `models/aws/`) are embedded and
//! interpreted at start-up. Five protocol codecs (query, ec2, json 1.0/1.1, rest-json, rest-xml) turn a
//! wire request into a `serde_json::Value` shaped like the operation's input shape, and an output
//! `Value` or an [`AwsError`] into the protocol's response. SigV4 verification lives here too.
//!
//! Must not depend on: any other skiff crate, the store, any service semantics.

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
