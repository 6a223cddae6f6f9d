//! The embedded botocore models, parsed once into the small typed subset the codecs interpret.
//!
//! Only the traits these ten services use are kept (see `crates.md`, "AWS protocol layer"): member
//! `location`/`locationName`/`queryName`/`flattened`, `resultWrapper`, `xmlNamespace`, error traits and
//! the constraints. A model is parsed on first use of its service (EC2's 1.1 MB takes the longest),
//! so a gateway that never sees an EC2 call never pays for it.

use std::collections::HashMap;
use std::io::Read;
use std::sync::OnceLock;

use serde_json::Value;

/// The wire protocol a service speaks (botocore `metadata.protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    #[doc(alias = "awsQuery")]
    Query,
    #[doc(alias = "ec2Query")]
    Ec2,
    /// JSON 1.0/1.1 with `X-Amz-Target`.
    #[doc(alias = "awsJson1_1")]
    Json,
    #[doc(alias = "restJson1")]
    RestJson,
    #[doc(alias = "restXml")]
    RestXml,
}

impl Protocol {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "query" => Self::Query,
            "ec2" => Self::Ec2,
            "json" => Self::Json,
            "rest-json" => Self::RestJson,
            "rest-xml" => Self::RestXml,
            _ => return None,
        })
    }
}

/// A reference to a shape with the traits the referring member adds.
#[derive(Clone, Debug, Default)]
pub struct MemberRef {
    pub shape: String,
    /// `uri`, `querystring`, `header`, `headers`, `statusCode` (REST protocols); None = body.
    pub location: Option<String>,
    pub location_name: Option<String>,
    /// EC2 request name override.
    pub query_name: Option<String>,
    pub flattened: bool,
    pub xml_namespace: Option<String>,
    pub idempotency_token: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShapeType {
    Structure,
    List,
    Map,
    String,
    Integer,
    Long,
    Float,
    Double,
    Boolean,
    Timestamp,
    Blob,
}

/// The error trait of an exception shape.
#[derive(Clone, Debug, Default)]
pub struct ErrorTrait {
    pub code: Option<String>,
    pub http_status: Option<u16>,
    pub sender_fault: bool,
}

#[derive(Clone, Debug)]
pub struct Shape {
    pub name: String,
    pub kind: ShapeType,
    /// Structure members in model order (XML output follows it).
    pub members: Vec<(String, MemberRef)>,
    pub required: Vec<String>,
    pub member: Option<MemberRef>,
    pub key: Option<MemberRef>,
    pub value: Option<MemberRef>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub pattern: Option<String>,
    pub enum_values: Vec<String>,
    pub flattened: bool,
    pub location_name: Option<String>,
    pub exception: bool,
    pub error: Option<ErrorTrait>,
    pub fault: bool,
}

impl Shape {
    pub fn member(&self, name: &str) -> Option<&MemberRef> {
        self.members.iter().find(|(n, _)| n == name).map(|(_, m)| m)
    }
}

#[derive(Clone, Debug)]
pub struct Operation {
    pub name: String,
    pub method: String,
    pub request_uri: String,
    pub response_code: u16,
    pub input: Option<MemberRef>,
    pub output: Option<MemberRef>,
    /// Query protocol: the element wrapping the output members (`GetUserResult`).
    pub result_wrapper: Option<String>,
    pub errors: Vec<String>,
    /// Operations callable without a signature (`AssumeRoleWithWebIdentity`, `authtype: none`).
    pub unsigned: bool,
}

/// One service model.
#[derive(Debug)]
pub struct ServiceModel {
    /// botocore's folder name (`elbv2`).
    pub name: &'static str,
    pub api_version: String,
    pub protocol: Protocol,
    /// SigV4 service name (`elasticloadbalancing` for ELBv2).
    pub signing_name: String,
    pub target_prefix: Option<String>,
    pub json_version: Option<String>,
    pub xml_namespace: Option<String>,
    pub operations: HashMap<String, Operation>,
    pub shapes: HashMap<String, Shape>,
}

impl ServiceModel {
    pub fn operation(&self, name: &str) -> Option<&Operation> {
        self.operations.get(name)
    }

    pub fn shape(&self, name: &str) -> Option<&Shape> {
        self.shapes.get(name)
    }

    /// The exception shape whose wire code (or shape name) is `code`.
    pub fn error_shape(&self, code: &str) -> Option<&Shape> {
        self.shapes.values().find(|s| {
            s.exception
                && (s.error.as_ref().and_then(|e| e.code.as_deref()) == Some(code)
                    || s.name == code)
        })
    }

    /// Parse a (gzipped) botocore `service-2.json`.
    pub fn from_gzip(name: &'static str, bytes: &[u8]) -> Result<Self, String> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_string(&mut text)
            .map_err(|e| format!("{name}: gunzip: {e}"))?;
        let doc: Value = serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))?;
        Self::from_json(name, &doc)
    }

    pub fn from_json(name: &'static str, doc: &Value) -> Result<Self, String> {
        let meta = &doc["metadata"];
        let s = |v: &Value| v.as_str().map(str::to_string);
        let protocol = meta["protocol"]
            .as_str()
            .and_then(Protocol::parse)
            .ok_or_else(|| format!("{name}: unsupported protocol {}", meta["protocol"]))?;
        let signing_name = s(&meta["signingName"])
            .or_else(|| s(&meta["endpointPrefix"]))
            .ok_or_else(|| format!("{name}: no signing name"))?;
        let mut operations = HashMap::new();
        for (op_name, op) in doc["operations"].as_object().into_iter().flatten() {
            let http = &op["http"];
            operations.insert(
                op_name.clone(),
                Operation {
                    name: op_name.clone(),
                    method: s(&http["method"]).unwrap_or_else(|| "POST".into()),
                    request_uri: s(&http["requestUri"]).unwrap_or_else(|| "/".into()),
                    response_code: http["responseCode"].as_u64().map_or(200, |c| c as u16),
                    input: op.get("input").map(member_ref),
                    output: op.get("output").map(member_ref),
                    result_wrapper: s(&op["output"]["resultWrapper"]),
                    errors: op["errors"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|e| s(&e["shape"]))
                        .collect(),
                    unsigned: op["authtype"] == "none"
                        || op["auth"]
                            .as_array()
                            .is_some_and(|a| a.iter().any(|x| x == "smithy.api#noAuth")),
                },
            );
        }
        let mut shapes = HashMap::new();
        for (shape_name, sh) in doc["shapes"].as_object().into_iter().flatten() {
            shapes.insert(shape_name.clone(), shape(shape_name, sh)?);
        }
        Ok(Self {
            name,
            api_version: s(&meta["apiVersion"]).unwrap_or_default(),
            protocol,
            signing_name,
            target_prefix: s(&meta["targetPrefix"]),
            json_version: s(&meta["jsonVersion"]),
            xml_namespace: s(&meta["xmlNamespace"]),
            operations,
            shapes,
        })
    }
}

fn member_ref(v: &Value) -> MemberRef {
    let s = |k: &str| v[k].as_str().map(str::to_string);
    MemberRef {
        shape: s("shape").unwrap_or_default(),
        location: s("location"),
        location_name: s("locationName"),
        query_name: s("queryName"),
        flattened: v["flattened"].as_bool().unwrap_or(false),
        xml_namespace: v["xmlNamespace"]["uri"].as_str().map(str::to_string),
        idempotency_token: v["idempotencyToken"].as_bool().unwrap_or(false),
    }
}

fn shape(name: &str, v: &Value) -> Result<Shape, String> {
    let kind = match v["type"].as_str().unwrap_or_default() {
        "structure" => ShapeType::Structure,
        "list" => ShapeType::List,
        "map" => ShapeType::Map,
        "string" => ShapeType::String,
        "integer" => ShapeType::Integer,
        "long" => ShapeType::Long,
        "float" => ShapeType::Float,
        "double" => ShapeType::Double,
        "boolean" => ShapeType::Boolean,
        "timestamp" => ShapeType::Timestamp,
        "blob" => ShapeType::Blob,
        other => return Err(format!("shape {name}: unsupported type {other:?}")),
    };
    let error = v.get("error").map(|e| ErrorTrait {
        code: e["code"].as_str().map(str::to_string),
        http_status: e["httpStatusCode"].as_u64().map(|c| c as u16),
        sender_fault: e["senderFault"].as_bool().unwrap_or(false),
    });
    Ok(Shape {
        name: name.to_string(),
        kind,
        members: v["members"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, m)| (k.clone(), member_ref(m)))
            .collect(),
        required: v["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(str::to_string))
            .collect(),
        member: v.get("member").map(member_ref),
        key: v.get("key").map(member_ref),
        value: v.get("value").map(member_ref),
        min: v["min"].as_f64(),
        max: v["max"].as_f64(),
        pattern: v["pattern"].as_str().map(str::to_string),
        enum_values: v["enum"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(str::to_string))
            .collect(),
        flattened: v["flattened"].as_bool().unwrap_or(false),
        location_name: v["locationName"].as_str().map(str::to_string),
        exception: v["exception"].as_bool().unwrap_or(false),
        error,
        fault: v["fault"].as_bool().unwrap_or(false),
    })
}

/// The embedded models: botocore folder name and gzipped bytes.
static EMBEDDED: &[(&str, &[u8])] = &[
    (
        "ec2",
        include_bytes!("../../../models/aws/ec2/2016-11-15/service-2.json.gz"),
    ),
    (
        "eks",
        include_bytes!("../../../models/aws/eks/2017-11-01/service-2.json.gz"),
    ),
    (
        "iam",
        include_bytes!("../../../models/aws/iam/2010-05-08/service-2.json.gz"),
    ),
    (
        "sts",
        include_bytes!("../../../models/aws/sts/2011-06-15/service-2.json.gz"),
    ),
    (
        "autoscaling",
        include_bytes!("../../../models/aws/autoscaling/2011-01-01/service-2.json.gz"),
    ),
    (
        "elbv2",
        include_bytes!("../../../models/aws/elbv2/2015-12-01/service-2.json.gz"),
    ),
    (
        "route53",
        include_bytes!("../../../models/aws/route53/2013-04-01/service-2.json.gz"),
    ),
    (
        "ecr",
        include_bytes!("../../../models/aws/ecr/2015-09-21/service-2.json.gz"),
    ),
    (
        "kms",
        include_bytes!("../../../models/aws/kms/2014-11-01/service-2.json.gz"),
    ),
    (
        "secretsmanager",
        include_bytes!("../../../models/aws/secretsmanager/2017-10-17/service-2.json.gz"),
    ),
    (
        "eks-auth",
        include_bytes!("../../../models/aws/eks-auth/2023-11-26/service-2.json.gz"),
    ),
    (
        "logs",
        include_bytes!("../../../models/aws/logs/2014-03-28/service-2.json.gz"),
    ),
    (
        "efs",
        include_bytes!("../../../models/aws/efs/2015-02-01/service-2.json.gz"),
    ),
];

/// Every service's routing facts, known without parsing the big models: what the gateway needs to
/// pick a service from a request.
#[derive(Clone, Copy, Debug)]
pub struct ServiceInfo {
    pub name: &'static str,
    pub signing_name: &'static str,
    pub protocol: Protocol,
    pub target_prefix: Option<&'static str>,
    /// Query/ec2 `Version` parameter (ELBv1 and ELBv2 share a signing name).
    pub api_version: &'static str,
}

/// Routing facts per service; `tests::service_table_matches_models` keeps it equal to the models.
pub const SERVICES: &[ServiceInfo] = &[
    info("ec2", "ec2", Protocol::Ec2, None, "2016-11-15"),
    info("eks", "eks", Protocol::RestJson, None, "2017-11-01"),
    info("iam", "iam", Protocol::Query, None, "2010-05-08"),
    info("sts", "sts", Protocol::Query, None, "2011-06-15"),
    info(
        "autoscaling",
        "autoscaling",
        Protocol::Query,
        None,
        "2011-01-01",
    ),
    info(
        "elbv2",
        "elasticloadbalancing",
        Protocol::Query,
        None,
        "2015-12-01",
    ),
    info("route53", "route53", Protocol::RestXml, None, "2013-04-01"),
    info(
        "ecr",
        "ecr",
        Protocol::Json,
        Some("AmazonEC2ContainerRegistry_V20150921"),
        "2015-09-21",
    ),
    info(
        "kms",
        "kms",
        Protocol::Json,
        Some("TrentService"),
        "2014-11-01",
    ),
    info(
        "secretsmanager",
        "secretsmanager",
        Protocol::Json,
        Some("secretsmanager"),
        "2017-10-17",
    ),
    // EKS Pod Identity's credential exchange (the Pod Identity Agent's one call).
    info(
        "eks-auth",
        "eks-auth",
        Protocol::RestJson,
        None,
        "2023-11-26",
    ),
    // CloudWatch Logs: EKS control plane logs land here (`/aws/eks/<cluster>/cluster`).
    info(
        "logs",
        "logs",
        Protocol::Json,
        Some("Logs_20140328"),
        "2014-03-28",
    ),
    // EFS: file systems for ReadWriteMany volumes through the EFS CSI driver.
    info(
        "efs",
        "elasticfilesystem",
        Protocol::RestJson,
        None,
        "2015-02-01",
    ),
];

const fn info(
    name: &'static str,
    signing_name: &'static str,
    protocol: Protocol,
    target_prefix: Option<&'static str>,
    api_version: &'static str,
) -> ServiceInfo {
    ServiceInfo {
        name,
        signing_name,
        protocol,
        target_prefix,
        api_version,
    }
}

/// One lazily parsed model per embedded service (same order as `EMBEDDED`).
static MODELS: [OnceLock<ServiceModel>; SERVICES.len()] =
    [const { OnceLock::new() }; SERVICES.len()];

/// The model of a service by botocore folder name (`ec2`, `elbv2`, ...).
pub fn service(name: &str) -> Option<&'static ServiceModel> {
    let idx = EMBEDDED.iter().position(|(n, _)| *n == name)?;
    let (name, bytes) = EMBEDDED[idx];
    Some(MODELS.get(idx)?.get_or_init(|| {
        // The bytes are ours and checked by the tests below: a failure here is a build defect.
        ServiceModel::from_gzip(name, bytes)
            .unwrap_or_else(|e| panic!("embedded model is corrupt: {e}"))
    }))
}

/// Routing facts by SigV4 signing name (`elasticloadbalancing` → ELBv2).
pub fn service_by_signing_name(signing_name: &str) -> Option<&'static ServiceInfo> {
    SERVICES.iter().find(|s| s.signing_name == signing_name)
}

/// Routing facts by JSON `X-Amz-Target` prefix (`TrentService` → KMS).
pub fn service_by_target_prefix(prefix: &str) -> Option<&'static ServiceInfo> {
    SERVICES.iter().find(|s| s.target_prefix == Some(prefix))
}

/// Parse every model now (the gateway does this at start-up so the first request is not slow).
pub fn preload() {
    for (name, _) in EMBEDDED {
        let _ = service(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_table_matches_models() {
        for info in SERVICES {
            let m = service(info.name).expect("embedded");
            assert_eq!(m.signing_name, info.signing_name, "{}", info.name);
            assert_eq!(m.protocol, info.protocol, "{}", info.name);
            assert_eq!(
                m.target_prefix.as_deref(),
                info.target_prefix,
                "{}",
                info.name
            );
            assert_eq!(m.api_version, info.api_version, "{}", info.name);
        }
        assert_eq!(SERVICES.len(), EMBEDDED.len());
    }

    #[test]
    fn every_shape_reference_resolves() {
        for (name, _) in EMBEDDED {
            let m = service(name).expect("embedded");
            let refs = m.shapes.values().flat_map(|s| {
                s.members
                    .iter()
                    .map(|(_, r)| r)
                    .chain(s.member.iter())
                    .chain(s.key.iter())
                    .chain(s.value.iter())
            });
            for r in refs {
                assert!(m.shapes.contains_key(&r.shape), "{name}: {}", r.shape);
            }
        }
    }

    #[test]
    fn error_traits_and_wrappers_are_read() {
        let iam = service("iam").expect("iam");
        let e = iam.error_shape("EntityAlreadyExists").expect("modelled");
        assert_eq!(e.error.as_ref().and_then(|e| e.http_status), Some(409));
        assert_eq!(
            iam.operation("GetUser")
                .and_then(|o| o.result_wrapper.as_deref()),
            Some("GetUserResult")
        );
        let sts = service("sts").expect("sts");
        assert!(
            sts.operation("AssumeRoleWithWebIdentity")
                .expect("op")
                .unsigned
        );
        assert!(!sts.operation("GetCallerIdentity").expect("op").unsigned);
    }
}
