//! SigV4 verification: `Authorization` headers and presigned query strings.
//!
//! Hand-rolled on hmac + sha2 + subtle (what s3s does, ~300 lines) rather than driving aws-sigv4's
//! signer backwards: the canonical request is short to state, and owning it lets us check what a
//! signer would not (skew, expiry, payload hash). The tests sign with an independent implementation
//! of the AWS documentation's example and with botocore-made fixtures (`tests/golden/`).
//!
//! Verification is split in two so the caller can look the key up asynchronously (the store is async):
//! [`parse`] finds the access key id and scope, [`verify`] checks the signature with the secret.

use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AwsError;
use crate::codec::WireRequest;
use crate::model::Protocol;

/// RFC 3986 unreserved characters stay; everything else is `%XX` (upper-case hex).
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
const PATH: &AsciiSet = &STRICT.remove(b'/');

/// How far a request's clock may be from ours.
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;
/// The longest `X-Amz-Expires` AWS accepts (7 days).
pub const MAX_PRESIGN_SECONDS: i64 = 604_800;
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Why a request is not authenticated. [`SigError::to_aws_error`] words it per protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigError {
    /// No `Authorization` header and no `X-Amz-Signature` parameter.
    Missing,
    /// Authorization present but malformed (missing parts, wrong algorithm, bad date).
    Incomplete(String),
    SignatureMismatch,
    /// Request time outside the 15-minute window: (request time, server time) as `X-Amz-Date` text.
    Skewed {
        request: String,
        server: String,
        future: bool,
    },
    /// Presigned URL past `X-Amz-Date + X-Amz-Expires`.
    Expired,
    /// No such access key, an inactive one, or a session token that does not match.
    UnknownKey,
    /// Temporary credentials past their expiration.
    ExpiredToken,
}

impl SigError {
    /// The error AWS answers, in the protocol's vocabulary (json services use `…Exception` codes).
    pub fn to_aws_error(&self, protocol: Protocol) -> AwsError {
        let json = matches!(protocol, Protocol::Json | Protocol::RestJson);
        let ec2 = protocol == Protocol::Ec2;
        let mismatch = "The request signature we calculated does not match the signature you provided. \
                        Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
        match self {
            Self::Missing if json => AwsError::new(
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            )
            .with_status(403),
            Self::Missing => AwsError::new(
                "MissingAuthenticationToken",
                "Request is missing Authentication Token",
            )
            .with_status(403),
            Self::Incomplete(m) if json => {
                AwsError::new("IncompleteSignatureException", m.clone()).with_status(403)
            }
            Self::Incomplete(m) => AwsError::new("IncompleteSignature", m.clone()).with_status(403),
            Self::SignatureMismatch if ec2 => AwsError::new(
                "AuthFailure",
                "AWS was not able to validate the provided access credentials",
            )
            .with_status(401),
            Self::SignatureMismatch if json => {
                AwsError::new("InvalidSignatureException", mismatch).with_status(403)
            }
            Self::SignatureMismatch => {
                AwsError::new("SignatureDoesNotMatch", mismatch).with_status(403)
            }
            Self::Skewed { .. } if ec2 => {
                AwsError::new("RequestExpired", "Request has expired.").with_status(400)
            }
            Self::Skewed {
                request,
                server,
                future,
            } => {
                let message = skew_message(request, server, *future);
                let code = if json {
                    "InvalidSignatureException"
                } else {
                    "SignatureDoesNotMatch"
                };
                AwsError::new(code, message).with_status(403)
            }
            Self::Expired => {
                AwsError::new("RequestExpired", "Request has expired.").with_status(400)
            }
            Self::UnknownKey if ec2 => AwsError::new(
                "AuthFailure",
                "AWS was not able to validate the provided access credentials",
            )
            .with_status(401),
            Self::UnknownKey if json => AwsError::new(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ),
            Self::UnknownKey => AwsError::new(
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            )
            .with_status(403),
            Self::ExpiredToken if json => AwsError::new(
                "ExpiredTokenException",
                "The security token included in the request is expired",
            ),
            Self::ExpiredToken => AwsError::new(
                "ExpiredToken",
                "The security token included in the request is expired",
            )
            .with_status(403),
        }
    }
}

fn skew_message(request: &str, server: &str, future: bool) -> String {
    let server_t = parse_amz_date(server);
    let shift = |secs: i64| {
        server_t
            .and_then(|t| t.checked_add(jiff::SignedDuration::from_secs(secs)).ok())
            .map(amz_date)
            .unwrap_or_default()
    };
    if future {
        format!(
            "Signature not yet current: {request} is still later than {} ({server} + 15 min.)",
            shift(MAX_SKEW_SECONDS)
        )
    } else {
        format!(
            "Signature expired: {request} is now earlier than {} ({server} - 15 min.)",
            shift(-MAX_SKEW_SECONDS)
        )
    }
}

/// What a request claims: who signed it, for which scope, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuth {
    pub access_key_id: String,
    /// Credential scope date (`20261123`).
    pub scope_date: String,
    pub region: String,
    /// The signing name (`sts`, `elasticloadbalancing`): the gateway routes query services on it.
    pub service: String,
    /// `X-Amz-Date` (`20261123T132500Z`).
    pub amz_date: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
    pub security_token: Option<String>,
    /// Presigned URL: `X-Amz-Expires` seconds.
    pub presigned_expires: Option<i64>,
}

/// The secret a lookup found for an access key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningSecret {
    pub secret_access_key: String,
    /// When set, the request must carry exactly this `X-Amz-Security-Token`.
    pub session_token: Option<String>,
}

fn header<'a>(req: &'a WireRequest, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            // `+` is a literal in SigV4 canonicalisation, not a space.
            (
                percent_decode_str(k).decode_utf8_lossy().into_owned(),
                percent_decode_str(v).decode_utf8_lossy().into_owned(),
            )
        })
        .collect()
}

fn parse_credential(cred: &str) -> Result<(String, String, String, String), SigError> {
    let parts: Vec<&str> = cred.split('/').collect();
    match parts.as_slice() {
        [akid, date, region, service, "aws4_request"] if !akid.is_empty() => Ok((
            akid.to_string(),
            date.to_string(),
            region.to_string(),
            service.to_string(),
        )),
        _ => Err(SigError::Incomplete(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            parts.get(2).copied().unwrap_or_default()
        ))),
    }
}

/// Read the claimed identity and scope of a request (header or presigned form).
pub fn parse(req: &WireRequest) -> Result<ParsedAuth, SigError> {
    if let Some(auth) = header(req, "authorization") {
        return parse_header(req, auth);
    }
    let q = query_pairs(req.query);
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if get("X-Amz-Signature").is_none() && get("X-Amz-Credential").is_none() {
        return Err(SigError::Missing);
    }
    let algorithm = get("X-Amz-Algorithm").unwrap_or_default();
    if algorithm != ALGORITHM {
        return Err(SigError::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'"
        )));
    }
    let missing = |n: &str| {
        SigError::Incomplete(format!(
            "AWS query-string parameters must include '{n}'. Re-examine the query-string parameters."
        ))
    };
    let cred = get("X-Amz-Credential").ok_or_else(|| missing("X-Amz-Credential"))?;
    let (access_key_id, scope_date, region, service) = parse_credential(&cred)?;
    let amz_date = get("X-Amz-Date").ok_or_else(|| missing("X-Amz-Date"))?;
    let signed = get("X-Amz-SignedHeaders").ok_or_else(|| missing("X-Amz-SignedHeaders"))?;
    let signature = get("X-Amz-Signature").ok_or_else(|| missing("X-Amz-Signature"))?;
    let expires = get("X-Amz-Expires")
        .ok_or_else(|| missing("X-Amz-Expires"))?
        .parse::<i64>()
        .map_err(|_| SigError::Incomplete("X-Amz-Expires should be a number".into()))?;
    if !(0..=MAX_PRESIGN_SECONDS).contains(&expires) {
        return Err(SigError::Incomplete(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800".into(),
        ));
    }
    Ok(ParsedAuth {
        access_key_id,
        scope_date,
        region,
        service,
        amz_date,
        signed_headers: signed.split(';').map(str::to_ascii_lowercase).collect(),
        signature,
        security_token: get("X-Amz-Security-Token"),
        presigned_expires: Some(expires),
    })
}

fn parse_header(req: &WireRequest, auth: &str) -> Result<ParsedAuth, SigError> {
    let Some(rest) = auth.strip_prefix(ALGORITHM) else {
        let alg = auth.split_whitespace().next().unwrap_or_default();
        return Err(SigError::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{alg}'"
        )));
    };
    let mut cred = None;
    let mut signed = None;
    let mut sig = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some((k, v)) = part.split_once('=') {
            match k.trim() {
                "Credential" => cred = Some(v.trim()),
                "SignedHeaders" => signed = Some(v.trim()),
                "Signature" => sig = Some(v.trim()),
                _ => {}
            }
        }
    }
    let need = |n: &str| {
        SigError::Incomplete(format!(
            "Authorization header requires '{n}' parameter. Authorization={auth}"
        ))
    };
    let (access_key_id, scope_date, region, service) =
        parse_credential(cred.ok_or_else(|| need("Credential"))?)?;
    let signed = signed.ok_or_else(|| need("SignedHeaders"))?;
    let signature = sig.ok_or_else(|| need("Signature"))?.to_string();
    let amz_date = match header(req, "x-amz-date") {
        Some(d) => d.to_string(),
        None => header(req, "date")
            .and_then(crate::scalar::parse_timestamp_text)
            .map(amz_date)
            .ok_or_else(|| {
                SigError::Incomplete(
                    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into(),
                )
            })?,
    };
    Ok(ParsedAuth {
        access_key_id,
        scope_date,
        region,
        service,
        amz_date,
        signed_headers: signed.split(';').map(str::to_ascii_lowercase).collect(),
        signature,
        security_token: header(req, "x-amz-security-token").map(str::to_string),
        presigned_expires: None,
    })
}

/// `20261123T132500Z`.
pub fn amz_date(t: jiff::Timestamp) -> String {
    t.strftime("%Y%m%dT%H%M%SZ").to_string()
}

fn parse_amz_date(s: &str) -> Option<jiff::Timestamp> {
    jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", s)
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        // HMAC takes keys of any length; unreachable, and an empty MAC never matches a signature.
        Err(_) => Vec::new(),
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn canonical_headers(req: &WireRequest, signed: &[String]) -> String {
    let mut out = String::new();
    for name in signed {
        let values: Vec<String> = req
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out
}

fn canonical_query(query: &str, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .into_iter()
        .filter(|(k, _)| !(presigned && k == "X-Amz-Signature"))
        .map(|(k, v)| {
            (
                utf8_percent_encode(&k, STRICT).to_string(),
                utf8_percent_encode(&v, STRICT).to_string(),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The signature a holder of `secret` would have produced for `req` under `auth`'s claims.
pub fn expected_signature(
    req: &WireRequest,
    auth: &ParsedAuth,
    secret: &str,
    payload_hash: &str,
) -> String {
    let path = if req.path.is_empty() { "/" } else { req.path };
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method.to_ascii_uppercase(),
        utf8_percent_encode(path, PATH),
        canonical_query(req.query, auth.presigned_expires.is_some()),
        canonical_headers(req, &auth.signed_headers),
        auth.signed_headers.join(";"),
        payload_hash
    );
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.scope_date, auth.region, auth.service
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{scope}\n{}",
        auth.amz_date,
        sha256_hex(canonical.as_bytes())
    );
    let k_date = hmac(
        format!("AWS4{secret}").as_bytes(),
        auth.scope_date.as_bytes(),
    );
    let k_region = hmac(&k_date, auth.region.as_bytes());
    let k_service = hmac(&k_region, auth.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    hex::encode(hmac(&k_signing, string_to_sign.as_bytes()))
}

/// Check the signature, clock window, payload hash and session token of a parsed request.
pub fn verify(
    req: &WireRequest,
    auth: &ParsedAuth,
    secret: &SigningSecret,
    now: jiff::Timestamp,
) -> Result<(), SigError> {
    if let Some(token) = &secret.session_token
        && auth.security_token.as_deref() != Some(token.as_str())
    {
        return Err(SigError::UnknownKey);
    }
    let t = parse_amz_date(&auth.amz_date).ok_or_else(|| {
        SigError::Incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{}'.",
            auth.amz_date
        ))
    })?;
    let skew = t.as_second() - now.as_second();
    let skewed = |future| SigError::Skewed {
        request: auth.amz_date.clone(),
        server: amz_date(now),
        future,
    };
    match auth.presigned_expires {
        None if skew > MAX_SKEW_SECONDS => return Err(skewed(true)),
        None if skew < -MAX_SKEW_SECONDS => return Err(skewed(false)),
        Some(_) if skew > MAX_SKEW_SECONDS => return Err(skewed(true)),
        Some(expires) if now.as_second() > t.as_second() + expires => {
            return Err(SigError::Expired);
        }
        _ => {}
    }
    let actual = sha256_hex(req.body);
    let candidates: Vec<String> =
        match (auth.presigned_expires, header(req, "x-amz-content-sha256")) {
            (None, Some(claimed)) if claimed == UNSIGNED_PAYLOAD => vec![claimed.to_string()],
            (None, Some(claimed)) if claimed.eq_ignore_ascii_case(&actual) => {
                vec![claimed.to_string()]
            }
            (None, Some(_)) => return Err(SigError::SignatureMismatch),
            (None, None) => vec![actual],
            // Presigned non-S3 requests hash the (empty) body; S3-style signers use UNSIGNED-PAYLOAD.
            (Some(_), _) => vec![actual, UNSIGNED_PAYLOAD.to_string()],
        };
    let given = auth.signature.to_ascii_lowercase();
    let ok = candidates.iter().any(|hash| {
        let expected = expected_signature(req, auth, &secret.secret_access_key, hash);
        bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
    });
    if ok {
        Ok(())
    } else {
        Err(SigError::SignatureMismatch)
    }
}

/// What a verified presigned `GetCallerIdentity` URL proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedIdentity {
    pub access_key_id: String,
    pub region: String,
}

/// Split an absolute URL into (host, path, query).
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let (authority, path_query) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => match rest.find('?') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        },
    };
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    Some((authority, if path.is_empty() { "/" } else { path }, query))
}

/// Verify a presigned STS `GetCallerIdentity` URL (the body of an EKS `k8s-aws-v1.` token):
/// `headers` are the extra signed headers the client added (`x-k8s-aws-id`); `host` comes from the
/// URL. `lookup` maps the URL's access key id to its secret (or the reason it has none).
pub fn verify_presigned_get_caller_identity(
    url: &str,
    headers: &http::HeaderMap,
    lookup: impl FnOnce(&str) -> Result<SigningSecret, SigError>,
    now: jiff::Timestamp,
) -> Result<PresignedIdentity, SigError> {
    let (host, path, query) = split_url(url)
        .ok_or_else(|| SigError::Incomplete(format!("not an absolute URL: {url}")))?;
    let mut all = headers.clone();
    let host_value =
        http::HeaderValue::from_str(host).map_err(|_| SigError::Incomplete("bad host".into()))?;
    all.insert(http::header::HOST, host_value);
    let req = WireRequest {
        method: "GET",
        path,
        query,
        headers: &all,
        body: b"",
    };
    let auth = parse(&req)?;
    let action_ok = query_pairs(query)
        .iter()
        .any(|(k, v)| k == "Action" && v == "GetCallerIdentity");
    if !action_ok || auth.service != "sts" || auth.presigned_expires.is_none() {
        return Err(SigError::Incomplete(
            "the URL is not a presigned sts:GetCallerIdentity request".into(),
        ));
    }
    let secret = lookup(&auth.access_key_id)?;
    verify(&req, &auth, &secret, now)?;
    Ok(PresignedIdentity {
        access_key_id: auth.access_key_id,
        region: auth.region,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AWS SigV4 test suite's `get-vanilla-query-order-key-case` case (documented inputs and result).
    #[test]
    fn aws_test_suite_vanilla_query() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "host",
            http::HeaderValue::from_static("example.amazonaws.com"),
        );
        h.insert(
            "x-amz-date",
            http::HeaderValue::from_static("20150830T123600Z"),
        );
        let req = WireRequest {
            method: "GET",
            path: "/",
            query: "Param2=value2&Param1=value1",
            headers: &h,
            body: b"",
        };
        let auth = ParsedAuth {
            access_key_id: "AKIDEXAMPLE".into(),
            scope_date: "20150830".into(),
            region: "us-east-1".into(),
            service: "service".into(),
            amz_date: "20150830T123600Z".into(),
            signed_headers: vec!["host".into(), "x-amz-date".into()],
            signature: String::new(),
            security_token: None,
            presigned_expires: None,
        };
        let sig = expected_signature(
            &req,
            &auth,
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            &sha256_hex(b""),
        );
        assert_eq!(
            sig,
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        );
    }

    fn signed_request(h: &mut http::HeaderMap, secret: &str, date: &str) -> ParsedAuth {
        h.insert("host", http::HeaderValue::from_static("127.0.0.1:4566"));
        h.insert("x-amz-date", http::HeaderValue::from_str(date).expect("hv"));
        let mut auth = ParsedAuth {
            access_key_id: "test".into(),
            scope_date: date[..8].into(),
            region: "us-east-1".into(),
            service: "sts".into(),
            amz_date: date.into(),
            signed_headers: vec!["host".into(), "x-amz-date".into()],
            signature: String::new(),
            security_token: None,
            presigned_expires: None,
        };
        let req = WireRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: h,
            body: b"Action=GetCallerIdentity",
        };
        auth.signature = expected_signature(&req, &auth, secret, &sha256_hex(req.body));
        let header = format!(
            "AWS4-HMAC-SHA256 Credential=test/{}/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature={}",
            &date[..8],
            auth.signature
        );
        h.insert(
            "authorization",
            http::HeaderValue::from_str(&header).expect("hv"),
        );
        auth
    }

    #[test]
    fn header_auth_round_trip_skew_and_wrong_secret() {
        let now: jiff::Timestamp = "2026-11-23T13:25:00Z".parse().expect("ts");
        let mut h = http::HeaderMap::new();
        signed_request(&mut h, "test", "20261123T132000Z");
        let req = WireRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &h,
            body: b"Action=GetCallerIdentity",
        };
        let auth = parse(&req).expect("parses");
        assert_eq!(
            (auth.service.as_str(), auth.region.as_str()),
            ("sts", "us-east-1")
        );
        let secret = SigningSecret {
            secret_access_key: "test".into(),
            session_token: None,
        };
        assert_eq!(verify(&req, &auth, &secret, now), Ok(()));
        let wrong = SigningSecret {
            secret_access_key: "nope".into(),
            session_token: None,
        };
        assert_eq!(
            verify(&req, &auth, &wrong, now),
            Err(SigError::SignatureMismatch)
        );
        let tampered = WireRequest {
            body: b"Action=GetCallerIdentitz",
            ..req
        };
        assert_eq!(
            verify(&tampered, &auth, &secret, now),
            Err(SigError::SignatureMismatch)
        );
        let later: jiff::Timestamp = "2026-11-23T13:40:01Z".parse().expect("ts");
        let err = verify(&req, &auth, &secret, later).expect_err("skewed");
        assert_eq!(
            err.to_aws_error(Protocol::Query).message,
            "Signature expired: 20261123T132000Z is now earlier than 20261123T132501Z (20261123T134001Z - 15 min.)"
        );
        let token = SigningSecret {
            secret_access_key: "test".into(),
            session_token: Some("tok".into()),
        };
        assert_eq!(verify(&req, &auth, &token, now), Err(SigError::UnknownKey));
    }

    #[test]
    fn missing_and_malformed_authorization() {
        let h = http::HeaderMap::new();
        let req = WireRequest {
            method: "GET",
            path: "/",
            query: "",
            headers: &h,
            body: b"",
        };
        assert_eq!(parse(&req), Err(SigError::Missing));
        let mut h = http::HeaderMap::new();
        h.insert(
            "authorization",
            http::HeaderValue::from_static("AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00"),
        );
        h.insert(
            "x-amz-date",
            http::HeaderValue::from_static("20261123T132000Z"),
        );
        let req = WireRequest { headers: &h, ..req };
        let err = parse(&req)
            .expect_err("incomplete")
            .to_aws_error(Protocol::Query);
        assert_eq!(err.code, "IncompleteSignature");
        assert!(
            err.message
                .starts_with("Authorization header requires 'Credential' parameter.")
        );
    }

    #[test]
    fn error_words_per_protocol() {
        assert_eq!(
            SigError::UnknownKey.to_aws_error(Protocol::Query).code,
            "InvalidClientTokenId"
        );
        assert_eq!(
            SigError::UnknownKey.to_aws_error(Protocol::Json).code,
            "UnrecognizedClientException"
        );
        assert_eq!(
            SigError::SignatureMismatch
                .to_aws_error(Protocol::Query)
                .code,
            "SignatureDoesNotMatch"
        );
        assert_eq!(
            SigError::Missing.to_aws_error(Protocol::RestJson).code,
            "MissingAuthenticationTokenException"
        );
    }
}
