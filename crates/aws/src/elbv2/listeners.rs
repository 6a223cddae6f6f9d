//! Listeners: CreateListener, DescribeListeners, ModifyListener, DeleteListener. A listener's default
//! actions live in its default rule (`IsDefault`), so DescribeRules and the target-group usage see them.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::attributes::default_listener_attributes;
use super::common::{
    arn, commit, error, key, key_of_arn, list_kind, load_lb, load_listener, load_tg, new_hex_id,
    page, tags_of, validation,
};
use crate::context::RequestContext;
use crate::resources;

/// Check and normalise actions as AWS echoes them: a forward with `TargetGroupArn` also carries the
/// equivalent `ForwardConfig`; `Order` is filled in; target groups must exist and suit the LB type.
pub(crate) async fn validate_actions(
    ctx: &RequestContext,
    actions: &Value,
    network: bool,
) -> Result<Value, AwsError> {
    let list = actions.as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return Err(validation("At least one action must be specified"));
    }
    let mut out = Vec::new();
    for (i, a) in list.into_iter().enumerate() {
        let mut a = a;
        match a["Type"].as_str().unwrap_or_default() {
            "forward" => {
                let arns = super::target_groups::forwarded(&json!([a.clone()]));
                if arns.is_empty() {
                    return Err(validation(
                        "A target group ARN must be specified for a forward action",
                    ));
                }
                for t in &arns {
                    let (tg, _) = load_tg(ctx, t).await?;
                    let tcp = matches!(
                        tg["Protocol"].as_str(),
                        Some("TCP" | "TLS" | "UDP" | "TCP_UDP")
                    );
                    if tcp != network && tg["TargetType"] != "lambda" && tg["TargetType"] != "alb" {
                        return Err(error(
                            "IncompatibleProtocols",
                            format!(
                                "The target group '{t}' uses the protocol {} which is not compatible with this load balancer",
                                tg["Protocol"].as_str().unwrap_or_default()
                            ),
                        ));
                    }
                }
                if a["ForwardConfig"].is_null() {
                    a["ForwardConfig"] = json!({"TargetGroups": [{"TargetGroupArn": arns[0], "Weight": 1}],
                        "TargetGroupStickinessConfig": {"Enabled": false}});
                } else if arns.len() == 1 && a["TargetGroupArn"].is_null() {
                    a["TargetGroupArn"] = json!(arns[0]);
                }
            }
            "fixed-response" if !network => {
                let code = a["FixedResponseConfig"]["StatusCode"]
                    .as_str()
                    .unwrap_or_default();
                if !(code.len() == 3
                    && (code.starts_with('2') || code.starts_with('4') || code.starts_with('5')))
                {
                    return Err(validation(
                        "A fixed-response action requires a 2XX, 4XX or 5XX status code",
                    ));
                }
            }
            "redirect" if !network => {
                let code = a["RedirectConfig"]["StatusCode"]
                    .as_str()
                    .unwrap_or_default();
                if !matches!(code, "HTTP_301" | "HTTP_302") {
                    return Err(validation(
                        "A redirect action requires the status code HTTP_301 or HTTP_302",
                    ));
                }
                let rc = &mut a["RedirectConfig"];
                for (m, d) in [
                    ("Protocol", "#{protocol}"),
                    ("Port", "#{port}"),
                    ("Host", "#{host}"),
                    ("Path", "/#{path}"),
                    ("Query", "#{query}"),
                ] {
                    if rc[m].is_null() {
                        rc[m] = json!(d);
                    }
                }
            }
            other => {
                return Err(error(
                    "InvalidLoadBalancerAction",
                    format!("The action type '{other}' is not valid for this load balancer"),
                ));
            }
        }
        if a["Order"].is_null() {
            a["Order"] = json!(i + 1);
        }
        out.push(a);
    }
    Ok(json!(out))
}

fn check_protocol(protocol: &str, network: bool, input: &Value) -> Result<(), AwsError> {
    let ok = if network {
        matches!(protocol, "TCP" | "TLS" | "UDP" | "TCP_UDP")
    } else {
        matches!(protocol, "HTTP" | "HTTPS")
    };
    if !ok {
        return Err(error(
            "UnsupportedProtocol",
            format!("Protocol '{protocol}' is not supported"),
        ));
    }
    if matches!(protocol, "HTTPS" | "TLS")
        && input["Certificates"]
            .as_array()
            .is_none_or(|c| c.is_empty())
    {
        return Err(validation(format!(
            "A certificate must be specified for {protocol} listeners"
        )));
    }
    Ok(())
}

#[doc(alias = "CreateListener")]
pub async fn create_listener(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let lb_arn = input["LoadBalancerArn"].as_str().unwrap_or_default();
    let (lb, _) = load_lb(ctx, lb_arn).await?;
    let network = lb["Type"] == "network";
    let protocol = input["Protocol"]
        .as_str()
        .unwrap_or(if network { "TCP" } else { "HTTP" });
    check_protocol(protocol, network, &input)?;
    let port = input["Port"].as_i64().unwrap_or(0);
    if !(1..=65535).contains(&port) {
        return Err(validation("Port must be between 1 and 65535"));
    }
    let lb_name = lb["LoadBalancerName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if list_kind(ctx, "listener", &format!("{lb_name}/"))
        .await?
        .iter()
        .any(|l| l["Port"] == port)
    {
        return Err(error(
            "DuplicateListener",
            format!("A listener already exists on this port for this load balancer '{lb_arn}'"),
        ));
    }
    let actions = validate_actions(ctx, &input["DefaultActions"], network).await?;
    // listener/app/<lb>/<lb id>/<id>
    let lb_tail = lb_arn
        .split_once(":loadbalancer/")
        .map(|x| x.1)
        .unwrap_or_default()
        .to_string();
    let lid = new_hex_id();
    let mut listener = json!({
        "ListenerArn": arn(ctx, &format!("listener/{lb_tail}/{lid}")),
        "LoadBalancerArn": lb_arn,
        "Port": port,
        "Protocol": protocol,
        "DefaultActions": actions,
        "_tags": tags_of(&input)?,
        "_attributes": default_listener_attributes(protocol),
    });
    if matches!(protocol, "HTTPS" | "TLS") {
        listener["Certificates"] = input["Certificates"].clone();
        listener["SslPolicy"] = json!(
            input["SslPolicy"]
                .as_str()
                .unwrap_or("ELBSecurityPolicy-TLS13-1-2-2021-06")
        );
    }
    if input["AlpnPolicy"].is_array() {
        listener["AlpnPolicy"] = input["AlpnPolicy"].clone();
    }
    let rid = new_hex_id();
    let rule = json!({
        "RuleArn": arn(ctx, &format!("listener-rule/{lb_tail}/{lid}/{rid}")),
        "Priority": "default",
        "Conditions": [],
        "Actions": listener["DefaultActions"],
        "IsDefault": true,
        "_loadBalancerArn": lb_arn,
        "_tags": [],
    });
    commit(
        ctx,
        vec![
            resources::put_op(
                &key(ctx, "listener", &format!("{lb_name}/{lid}")),
                &listener,
                skiff_store::Precondition::MustNotExist,
            ),
            resources::put_op(
                &key(ctx, "rule", &format!("{lb_name}/{lid}/{rid}")),
                &rule,
                skiff_store::Precondition::MustNotExist,
            ),
        ],
    )
    .await?;
    Ok(json!({ "Listeners": [listener] }))
}

#[doc(alias = "DescribeListeners")]
pub async fn describe_listeners(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let all = if let Some(lb_arn) = input["LoadBalancerArn"].as_str() {
        let (lb, _) = load_lb(ctx, lb_arn).await?;
        list_kind(
            ctx,
            "listener",
            &format!("{}/", lb["LoadBalancerName"].as_str().unwrap_or_default()),
        )
        .await?
    } else if let Some(arns) = input["ListenerArns"].as_array().filter(|a| !a.is_empty()) {
        let mut out = Vec::new();
        for a in arns {
            out.push(load_listener(ctx, a.as_str().unwrap_or_default()).await?.0);
        }
        out
    } else {
        return Err(validation(
            "You must specify either listener ARNs or a load balancer ARN",
        ));
    };
    let mut all = all;
    all.sort_by_key(|l| l["Port"].as_i64());
    page(all, &input, "Listeners")
}

#[doc(alias = "ModifyListener")]
pub async fn modify_listener(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let arn = input["ListenerArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (mut l, rev) = load_listener(ctx, &arn).await?;
    let (lb, _) = load_lb(ctx, l["LoadBalancerArn"].as_str().unwrap_or_default()).await?;
    let network = lb["Type"] == "network";
    if let Some(p) = input["Port"].as_i64() {
        let lb_name = lb["LoadBalancerName"].as_str().unwrap_or_default();
        if p != l["Port"].as_i64().unwrap_or(0)
            && list_kind(ctx, "listener", &format!("{lb_name}/"))
                .await?
                .iter()
                .any(|x| x["Port"] == p)
        {
            return Err(error(
                "DuplicateListener",
                "A listener already exists on this port for this load balancer",
            ));
        }
        l["Port"] = json!(p);
    }
    if let Some(p) = input["Protocol"].as_str() {
        let mut check = input.clone();
        if check["Certificates"].is_null() {
            check["Certificates"] = l["Certificates"].clone();
        }
        check_protocol(p, network, &check)?;
        l["Protocol"] = json!(p);
    }
    for m in ["Certificates", "SslPolicy", "AlpnPolicy"] {
        if !input[m].is_null() {
            l[m] = input[m].clone();
        }
    }
    let mut ops = Vec::new();
    if !input["DefaultActions"].is_null() {
        l["DefaultActions"] = validate_actions(ctx, &input["DefaultActions"], network).await?;
        let under = key_of_arn(ctx, &arn)
            .unwrap_or_default()
            .replace("/elbv2/listener/", "/elbv2/rule/")
            + "/";
        let rules = ctx
            .store
            .list(&under, skiff_store::ListOptions::default())
            .await
            .map_err(resources::internal)?;
        for kv in rules.items {
            let mut r: Value = serde_json::from_slice(&kv.value).unwrap_or_default();
            if r["IsDefault"] == true {
                r["Actions"] = l["DefaultActions"].clone();
                ops.push(resources::put_op(
                    &kv.key,
                    &r,
                    skiff_store::Precondition::ModRevision(kv.mod_revision),
                ));
            }
        }
    }
    ops.push(resources::put_op(
        &key_of_arn(ctx, &arn).unwrap_or_default(),
        &l,
        skiff_store::Precondition::ModRevision(rev),
    ));
    commit(ctx, ops).await?;
    Ok(json!({ "Listeners": [l] }))
}

#[doc(alias = "DeleteListener")]
pub async fn delete_listener(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let arn = input["ListenerArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (_, rev) = load_listener(ctx, &arn).await?;
    let k = key_of_arn(ctx, &arn).unwrap_or_default();
    let mut ops = vec![skiff_store::Op::Delete {
        key: k.clone(),
        precondition: skiff_store::Precondition::ModRevision(rev),
    }];
    let rules = ctx
        .store
        .list(
            &(k.replace("/elbv2/listener/", "/elbv2/rule/") + "/"),
            skiff_store::ListOptions::default(),
        )
        .await
        .map_err(resources::internal)?;
    ops.extend(rules.items.iter().map(|kv| resources::delete_op(&kv.key)));
    commit(ctx, ops).await?;
    Ok(json!({}))
}
