//! Describe/Modify attributes of load balancers, target groups and listeners. Each kind has a fixed
//! set of keys with AWS's defaults; an unknown key is refused as AWS refuses it.

use serde_json::{Map, Value, json};
use skiff_aws_model::AwsError;

use super::common::{key, load_lb, load_listener, load_tg, put, validation};
use crate::context::RequestContext;

pub fn default_lb_attributes(network: bool) -> Value {
    if network {
        json!({
            "deletion_protection.enabled": "false",
            "load_balancing.cross_zone.enabled": "false",
            "access_logs.s3.enabled": "false",
            "access_logs.s3.bucket": "",
            "access_logs.s3.prefix": "",
            "dns_record.client_routing_policy": "any_availability_zone",
            "zonal_shift.config.enabled": "false",
            "ipv6.deny_all_igw_traffic": "true",
        })
    } else {
        json!({
            "deletion_protection.enabled": "false",
            "load_balancing.cross_zone.enabled": "true",
            "idle_timeout.timeout_seconds": "60",
            "client_keep_alive.seconds": "3600",
            "routing.http2.enabled": "true",
            "access_logs.s3.enabled": "false",
            "access_logs.s3.bucket": "",
            "access_logs.s3.prefix": "",
            "connection_logs.s3.enabled": "false",
            "health_check_logs.s3.enabled": "false",
            "health_check_logs.s3.bucket": "",
            "health_check_logs.s3.prefix": "",
            "connection_logs.s3.bucket": "",
            "connection_logs.s3.prefix": "",
            "routing.http.desync_mitigation_mode": "defensive",
            "routing.http.drop_invalid_header_fields.enabled": "false",
            "routing.http.preserve_host_header.enabled": "false",
            "routing.http.x_amzn_tls_version_and_cipher_suite.enabled": "false",
            "routing.http.xff_client_port.enabled": "false",
            "routing.http.xff_header_processing.mode": "append",
            "waf.fail_open.enabled": "false",
            "zonal_shift.config.enabled": "false",
            "ipv6.deny_all_igw_traffic": "true",
        })
    }
}

pub fn default_tg_attributes(protocol: &str, target_type: &str) -> Value {
    let mut attrs = tg_protocol_attributes(protocol, target_type);
    // Every target group kind reports the health-failover thresholds.
    for (k, v) in [
        (
            "target_group_health.dns_failover.minimum_healthy_targets.count",
            "1",
        ),
        (
            "target_group_health.dns_failover.minimum_healthy_targets.percentage",
            "off",
        ),
        (
            "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
            "1",
        ),
        (
            "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
            "off",
        ),
    ] {
        attrs[k] = json!(v);
    }
    if target_type == "lambda" {
        attrs["lambda.multi_value_headers.enabled"] = json!("false");
    }
    attrs
}

fn tg_protocol_attributes(protocol: &str, target_type: &str) -> Value {
    match protocol {
        "TCP" | "TLS" | "UDP" | "TCP_UDP" => json!({
            "deregistration_delay.timeout_seconds": "300",
            "deregistration_delay.connection_termination.enabled": "false",
            "proxy_protocol_v2.enabled": "false",
            "preserve_client_ip.enabled": if target_type == "ip" && protocol == "TCP" { "false" } else { "true" },
            "stickiness.enabled": "false",
            "stickiness.type": "source_ip",
            "load_balancing.cross_zone.enabled": "use_load_balancer_configuration",
            "target_health_state.unhealthy.connection_termination.enabled": "true",
        }),
        _ => json!({
            "deregistration_delay.timeout_seconds": "300",
            "stickiness.enabled": "false",
            "stickiness.type": "lb_cookie",
            "stickiness.lb_cookie.duration_seconds": "86400",
            "stickiness.app_cookie.cookie_name": "",
            "stickiness.app_cookie.duration_seconds": "86400",
            "load_balancing.algorithm.type": "round_robin",
            "load_balancing.algorithm.anomaly_mitigation": "off",
            "load_balancing.cross_zone.enabled": "use_load_balancer_configuration",
            "slow_start.duration_seconds": "0",
        }),
    }
}

pub fn default_listener_attributes(protocol: &str) -> Value {
    match protocol {
        "TCP" => json!({"tcp.idle_timeout.seconds": "350"}),
        // The header-rewrite keys an ALB listener reports (terraform reads and writes them all).
        "HTTP" | "HTTPS" => {
            let mut m = serde_json::Map::new();
            m.insert("routing.http.response.server.enabled".into(), json!("true"));
            for h in [
                "strict_transport_security",
                "access_control_allow_origin",
                "access_control_allow_methods",
                "access_control_allow_headers",
                "access_control_allow_credentials",
                "access_control_expose_headers",
                "access_control_max_age",
                "content_security_policy",
                "x_content_type_options",
                "x_frame_options",
            ] {
                m.insert(format!("routing.http.response.{h}.header_value"), json!(""));
            }
            for h in [
                "x_amzn_mtls_clientcert_serial_number",
                "x_amzn_mtls_clientcert_issuer",
                "x_amzn_mtls_clientcert_subject",
                "x_amzn_mtls_clientcert_validity",
                "x_amzn_mtls_clientcert_leaf",
                "x_amzn_mtls_clientcert",
                "x_amzn_tls_version",
                "x_amzn_tls_cipher_suite",
            ] {
                m.insert(format!("routing.http.request.{h}.header_name"), json!(""));
            }
            Value::Object(m)
        }
        _ => json!({}),
    }
}

fn as_list(attrs: &Value) -> Value {
    let list: Vec<Value> = attrs
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    json!(list)
}

/// Apply `Attributes` onto `current`; every key must be one the kind knows.
fn apply(current: &mut Value, input: &Value, what: &str) -> Result<Value, AwsError> {
    let known: Map<String, Value> = current.as_object().cloned().unwrap_or_default();
    let mut changed = Vec::new();
    for a in input["Attributes"].as_array().into_iter().flatten() {
        let k = a["Key"].as_str().unwrap_or_default();
        if !known.contains_key(k) {
            return Err(validation(format!(
                "{what} attribute key '{k}' is not recognized"
            )));
        }
        let v = a["Value"].as_str().unwrap_or_default().to_string();
        if k.ends_with(".enabled")
            && !matches!(v.as_str(), "true" | "false")
            && !k.starts_with("load_balancing.cross_zone")
        {
            return Err(validation(format!(
                "{what} attribute '{k}' value '{v}' is not valid; use 'true' or 'false'"
            )));
        }
        if (k.ends_with("_seconds") || k.ends_with(".seconds")) && v.parse::<u64>().is_err() {
            return Err(validation(format!(
                "{what} attribute '{k}' value '{v}' must be a number of seconds"
            )));
        }
        current[k] = json!(v);
        changed.push(json!({"Key": k, "Value": v}));
    }
    Ok(json!(changed))
}

#[doc(alias = "DescribeLoadBalancerAttributes")]
pub async fn describe_load_balancer_attributes(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let (lb, _) = load_lb(ctx, input["LoadBalancerArn"].as_str().unwrap_or_default()).await?;
    Ok(json!({ "Attributes": as_list(&lb["_attributes"]) }))
}

#[doc(alias = "ModifyLoadBalancerAttributes")]
pub async fn modify_load_balancer_attributes(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let (mut lb, rev) = load_lb(ctx, input["LoadBalancerArn"].as_str().unwrap_or_default()).await?;
    let mut attrs = lb["_attributes"].clone();
    apply(&mut attrs, &input, "Load balancer")?;
    lb["_attributes"] = attrs.clone();
    let name = lb["LoadBalancerName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    put(ctx, &key(ctx, "lb", &name), &lb, Some(rev)).await?;
    Ok(json!({ "Attributes": as_list(&attrs) }))
}

#[doc(alias = "DescribeTargetGroupAttributes")]
pub async fn describe_target_group_attributes(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let (tg, _) = load_tg(ctx, input["TargetGroupArn"].as_str().unwrap_or_default()).await?;
    Ok(json!({ "Attributes": as_list(&tg["_attributes"]) }))
}

#[doc(alias = "ModifyTargetGroupAttributes")]
pub async fn modify_target_group_attributes(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let (mut tg, rev) = load_tg(ctx, input["TargetGroupArn"].as_str().unwrap_or_default()).await?;
    let mut attrs = tg["_attributes"].clone();
    apply(&mut attrs, &input, "Target group")?;
    tg["_attributes"] = attrs.clone();
    let name = tg["TargetGroupName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    put(ctx, &key(ctx, "tg", &name), &tg, Some(rev)).await?;
    Ok(json!({ "Attributes": as_list(&attrs) }))
}

#[doc(alias = "DescribeListenerAttributes")]
pub async fn describe_listener_attributes(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let (l, _) = load_listener(ctx, input["ListenerArn"].as_str().unwrap_or_default()).await?;
    Ok(json!({ "Attributes": as_list(&l["_attributes"]) }))
}

#[doc(alias = "ModifyListenerAttributes")]
pub async fn modify_listener_attributes(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let arn = input["ListenerArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (mut l, rev) = load_listener(ctx, &arn).await?;
    let mut attrs = l["_attributes"].clone();
    apply(&mut attrs, &input, "Listener")?;
    l["_attributes"] = attrs.clone();
    let k = super::common::key_of_arn(ctx, &arn).unwrap_or_default();
    put(ctx, &k, &l, Some(rev)).await?;
    Ok(json!({ "Attributes": as_list(&attrs) }))
}
