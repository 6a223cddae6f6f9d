//! Shared pieces of the ELBv2 handlers: errors by their wire codes, ARNs and store keys, record
//! loading, paging (`Marker`/`PageSize`).
//!
//! Keys: `lb/<name>`, `tg/<name>`, `listener/<lb name>/<listener id>`, `rule/<lb name>/<listener id>/<rule id>`;
//! every ARN carries what its key needs, so lookups by ARN are one read.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::{Precondition, Revision};

use crate::context::RequestContext;
use crate::resources;

/// An ELBv2 error by its wire code (`LoadBalancerNotFound`), status and fault from the model.
pub fn error(code: &str, message: impl Into<String>) -> AwsError {
    AwsError::modeled("elbv2", code, message)
}

pub fn validation(message: impl Into<String>) -> AwsError {
    AwsError::new("ValidationError", message)
}

pub fn lb_not_found() -> AwsError {
    error(
        "LoadBalancerNotFound",
        "One or more load balancers not found",
    )
}
pub fn tg_not_found() -> AwsError {
    error("TargetGroupNotFound", "One or more target groups not found")
}
pub fn listener_not_found() -> AwsError {
    error("ListenerNotFound", "One or more listeners not found")
}
pub fn rule_not_found() -> AwsError {
    error("RuleNotFound", "One or more rules not found")
}

/// 16 lowercase hex digits, the id part of ELB ARNs.
pub fn new_hex_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

pub fn arn(ctx: &RequestContext, resource: &str) -> String {
    format!(
        "arn:aws:elasticloadbalancing:{}:{}:{resource}",
        ctx.region, ctx.account_id
    )
}

pub fn key(ctx: &RequestContext, kind: &str, id: &str) -> String {
    resources::key(ctx, "elbv2", kind, id)
}

/// The resource part of an ARN of this account and region, split on `/`.
fn parts<'a>(ctx: &RequestContext, arn: &'a str) -> Option<Vec<&'a str>> {
    let prefix = format!(
        "arn:aws:elasticloadbalancing:{}:{}:",
        ctx.region, ctx.account_id
    );
    arn.strip_prefix(prefix.as_str())
        .map(|r| r.split('/').collect())
}

/// Store key of an LB/TG/listener/rule ARN (None when the ARN is not one of ours).
pub fn key_of_arn(ctx: &RequestContext, arn: &str) -> Option<String> {
    match parts(ctx, arn)?.as_slice() {
        ["loadbalancer", _, name, _] => Some(key(ctx, "lb", name)),
        ["targetgroup", name, _] => Some(key(ctx, "tg", name)),
        ["listener", _, lb, _, l] => Some(key(ctx, "listener", &format!("{lb}/{l}"))),
        ["listener-rule", _, lb, _, l, r] => Some(key(ctx, "rule", &format!("{lb}/{l}/{r}"))),
        _ => None,
    }
}

/// The record an ARN names, if it exists and is the same incarnation (the ARN member matches).
pub async fn load_arn(
    ctx: &RequestContext,
    arn: &str,
    arn_member: &str,
) -> Result<Option<(Value, Revision)>, AwsError> {
    let Some(k) = key_of_arn(ctx, arn) else {
        return Ok(None);
    };
    Ok(resources::get::<Value>(&*ctx.store, &k)
        .await?
        .filter(|(v, _)| v[arn_member] == arn))
}

pub async fn load_lb(ctx: &RequestContext, arn: &str) -> Result<(Value, Revision), AwsError> {
    load_arn(ctx, arn, "LoadBalancerArn")
        .await?
        .ok_or_else(lb_not_found)
}
pub async fn load_tg(ctx: &RequestContext, arn: &str) -> Result<(Value, Revision), AwsError> {
    load_arn(ctx, arn, "TargetGroupArn")
        .await?
        .ok_or_else(tg_not_found)
}
pub async fn load_listener(ctx: &RequestContext, arn: &str) -> Result<(Value, Revision), AwsError> {
    load_arn(ctx, arn, "ListenerArn")
        .await?
        .ok_or_else(listener_not_found)
}
pub async fn load_rule(ctx: &RequestContext, arn: &str) -> Result<(Value, Revision), AwsError> {
    load_arn(ctx, arn, "RuleArn")
        .await?
        .ok_or_else(rule_not_found)
}

pub async fn list_kind(
    ctx: &RequestContext,
    kind: &str,
    under: &str,
) -> Result<Vec<Value>, AwsError> {
    resources::list(&*ctx.store, &key(ctx, kind, under)).await
}

/// Write one record over `rev` (or create it with `None`).
pub async fn put(
    ctx: &RequestContext,
    k: &str,
    v: &Value,
    rev: Option<Revision>,
) -> Result<(), AwsError> {
    let pre = rev.map_or(Precondition::MustNotExist, Precondition::ModRevision);
    commit(ctx, vec![resources::put_op(k, v, pre)]).await
}

pub async fn commit(ctx: &RequestContext, ops: Vec<skiff_store::Op>) -> Result<(), AwsError> {
    resources::commit(&*ctx.store, ops)
        .await
        .map(|_| ())
        .map_err(|e| {
            e.unwrap_or_else(|| {
                AwsError::new(
                    "PriorRequestNotComplete",
                    "A prior request is still being processed; retry",
                )
                .with_status(400)
            })
        })
}

/// `Marker`/`PageSize` paging (PageSize 1..=400).
pub fn page(items: Vec<Value>, input: &Value, member: &str) -> Result<Value, AwsError> {
    let size = match input["PageSize"].as_i64() {
        None => 400,
        Some(n) if (1..=400).contains(&n) => n as usize,
        Some(n) => {
            return Err(validation(format!(
                "Page size '{n}' must be between 1 and 400"
            )));
        }
    };
    let start = match input["Marker"].as_str() {
        None => 0,
        Some(m) => m
            .parse::<usize>()
            .map_err(|_| validation(format!("Invalid marker '{m}'")))?,
    };
    let slice: Vec<Value> = items.iter().skip(start).take(size).cloned().collect();
    let mut out = json!({ member: slice });
    if start + slice.len() < items.len() {
        out["NextMarker"] = json!((start + slice.len()).to_string());
    }
    Ok(out)
}

/// Tags from a `Tags` list member, refusing duplicate keys and more than 50.
pub fn tags_of(input: &Value) -> Result<Vec<Value>, AwsError> {
    let tags: Vec<Value> = input["Tags"].as_array().cloned().unwrap_or_default();
    let mut keys: Vec<&str> = tags.iter().filter_map(|t| t["Key"].as_str()).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(error("DuplicateTagKeys", "Tag keys must be unique"));
    }
    if tags.len() > 50 {
        return Err(error(
            "TooManyTags",
            "The quota for the number of tags that can be assigned to a resource has been reached",
        ));
    }
    Ok(tags)
}

pub fn now() -> String {
    let ms = jiff::Timestamp::now().as_millisecond();
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// ELB names: 1–32 alphanumerics and hyphens, not starting or ending with a hyphen.
pub fn check_name(kind: &str, name: &str) -> Result<(), AwsError> {
    let ok = (1..=32).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        return Err(validation(format!(
            "{kind} name '{name}' cannot be longer than '32' characters, can contain only alphanumeric characters and hyphens, and cannot begin or end with a hyphen"
        )));
    }
    Ok(())
}
