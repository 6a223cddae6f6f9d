//! EC2 errors as data: `models/aws/errors/ec2.toml` holds code, HTTP status and message template for every
//! error the EC2 model does not describe (it describes none), so wording is fixed in one reviewed file.
//!
//! The file uses a tiny TOML subset (quoted table headers, `key = "string"`, `key = integer`), parsed here
//! so the crate needs no TOML dependency for forty lines of data.

use std::collections::HashMap;
use std::sync::LazyLock;

use skiff_aws_model::AwsError;

const DATA: &str = include_str!("../../../../models/aws/errors/ec2.toml");

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorSpec {
    /// Wire code (defaults to the table name).
    pub code: String,
    pub status: u16,
    pub message: String,
}

static SPECS: LazyLock<HashMap<String, ErrorSpec>> =
    LazyLock::new(|| parse(DATA).unwrap_or_default());

/// Parse the subset. Errors name the line so a bad edit fails the unit test loudly.
fn parse(text: &str) -> Result<HashMap<String, ErrorSpec>, String> {
    let mut out = HashMap::new();
    let mut current: Option<(String, ErrorSpec)> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("[\"") {
            let name = rest
                .strip_suffix("\"]")
                .ok_or(format!("line {}: bad table header", n + 1))?;
            if let Some((k, v)) = current.take() {
                out.insert(k, v);
            }
            current = Some((
                name.to_string(),
                ErrorSpec {
                    code: name.to_string(),
                    status: 400,
                    message: String::new(),
                },
            ));
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or(format!("line {}: expected key = value", n + 1))?;
        let (key, value) = (key.trim(), value.trim());
        let spec = &mut current
            .as_mut()
            .ok_or(format!("line {}: key outside a table", n + 1))?
            .1;
        match key {
            "status" => {
                spec.status = value
                    .parse()
                    .map_err(|_| format!("line {}: status must be an integer", n + 1))?
            }
            "message" => {
                spec.message = unquote(value).ok_or(format!("line {}: bad string", n + 1))?
            }
            "code" => spec.code = unquote(value).ok_or(format!("line {}: bad string", n + 1))?,
            "source" => {
                unquote(value).ok_or(format!("line {}: bad string", n + 1))?;
            }
            other => return Err(format!("line {}: unknown key {other}", n + 1)),
        }
    }
    if let Some((k, v)) = current.take() {
        out.insert(k, v);
    }
    Ok(out)
}

/// A basic TOML string: `"..."` with `\"` and `\\` escapes.
fn unquote(v: &str) -> Option<String> {
    let inner = v.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next()? {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                'n' => out.push('\n'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// The error named `name` in ec2.toml with `{placeholders}` filled from `args`.
pub(crate) fn error(name: &str, args: &[(&str, &str)]) -> AwsError {
    match SPECS.get(name) {
        Some(spec) => {
            let mut message = spec.message.clone();
            for (k, v) in args {
                message = message.replace(&format!("{{{k}}}"), v);
            }
            AwsError::new(spec.code.clone(), message).with_status(spec.status)
        }
        // A name missing from the data file is our bug; the unit test below keeps that from shipping.
        None => AwsError::new(name, name.to_string()),
    }
}

pub(crate) fn invalid_value(message: impl Into<String>) -> AwsError {
    error("InvalidParameterValue", &[("message", &message.into())])
}

pub(crate) fn missing(name: &str) -> AwsError {
    error("MissingParameter", &[("name", name)])
}

pub(crate) fn dependency(message: impl Into<String>) -> AwsError {
    error("DependencyViolation", &[("message", &message.into())])
}

pub(crate) fn not_found(code: &str, id: &str) -> AwsError {
    error(code, &[("id", id)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_file_parses_and_every_entry_has_a_message() {
        let specs = parse(DATA).expect("ec2.toml parses");
        assert!(specs.len() > 60, "{}", specs.len());
        for (name, spec) in &specs {
            assert!(!spec.message.is_empty(), "{name} has no message");
            assert!((400..600).contains(&spec.status), "{name}");
        }
    }

    #[test]
    fn dry_run_is_412_with_aws_wording() {
        let e = error("DryRunOperation", &[]);
        assert_eq!(e.status, 412);
        assert_eq!(
            e.message,
            "Request would have succeeded, but DryRun flag is set."
        );
    }

    #[test]
    fn placeholders_and_code_overrides() {
        let e = not_found("InvalidVpcID.NotFound", "vpc-1");
        assert_eq!(e.code, "InvalidVpcID.NotFound");
        assert_eq!(e.message, "The vpc ID 'vpc-1' does not exist");
        let e = error("InvalidIPAddress.InUse.Private", &[("ip", "10.0.0.5")]);
        assert_eq!(e.code, "InvalidIPAddress.InUse");
        let e = error("InvalidVpcID.Malformed", &[("id", "x")]);
        assert_eq!(e.message, "Invalid id: \"x\"");
    }

    #[test]
    fn parse_rejects_unknown_keys() {
        assert!(parse("[\"A\"]\nstatus = 400\nbogus = \"x\"\n").is_err());
        assert!(parse("status = 400\n").is_err());
    }
}
