//! Listener rules: CreateRule, DescribeRules, ModifyRule, DeleteRule, SetRulePriorities. Priorities
//! are unique per listener (1–50000); the default rule is the listener's default actions.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::Precondition;

use super::common::{
    arn, commit, error, key_of_arn, load_lb, load_listener, load_rule, new_hex_id, page, tags_of,
    validation,
};
use super::listeners::validate_actions;
use crate::context::RequestContext;
use crate::resources;

/// Conditions as AWS echoes them: `Values` and the field's `*Config` both present for host-header and
/// path-pattern; at most five values in all.
fn normalise_conditions(conditions: &Value) -> Result<Value, AwsError> {
    let list = conditions.as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return Err(validation("A rule must have at least one condition"));
    }
    let mut out = Vec::new();
    for mut c in list {
        let field = c["Field"].as_str().unwrap_or_default().to_string();
        let config = match field.as_str() {
            "host-header" => "HostHeaderConfig",
            "path-pattern" => "PathPatternConfig",
            "http-header" => "HttpHeaderConfig",
            "query-string" => "QueryStringConfig",
            "http-request-method" => "HttpRequestMethodConfig",
            "source-ip" => "SourceIpConfig",
            other => {
                return Err(validation(format!(
                    "Condition field '{other}' must be one of '[http-header, http-request-method, host-header, path-pattern, query-string, source-ip]'"
                )));
            }
        };
        let count = if field == "query-string" {
            c[config]["Values"].as_array().map_or(0, Vec::len)
        } else {
            let values = if c["Values"].is_array() {
                c["Values"].clone()
            } else {
                c[config]["Values"].clone()
            };
            let n = values.as_array().map_or(0, Vec::len);
            if matches!(field.as_str(), "host-header" | "path-pattern") {
                c["Values"] = values.clone();
            }
            if c[config].is_null() {
                c[config] = json!({"Values": values});
            }
            n
        };
        if count == 0 {
            return Err(validation(format!(
                "A '{field}' condition must have at least one value"
            )));
        }
        if count > 5 {
            return Err(validation("A rule can only have '5' condition values"));
        }
        out.push(c);
    }
    Ok(json!(out))
}

fn listener_dir(k: &str) -> String {
    k.replace("/elbv2/listener/", "/elbv2/rule/") + "/"
}

#[doc(alias = "CreateRule")]
pub async fn create_rule(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let l_arn = input["ListenerArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (listener, _) = load_listener(ctx, &l_arn).await?;
    let (lb, _) = load_lb(
        ctx,
        listener["LoadBalancerArn"].as_str().unwrap_or_default(),
    )
    .await?;
    if lb["Type"] == "network" {
        return Err(validation(
            "Rules are not supported for listeners of network load balancers",
        ));
    }
    let priority = input["Priority"].as_i64().unwrap_or(0);
    if !(1..=50000).contains(&priority) {
        return Err(validation("Priority must be between 1 and 50000"));
    }
    let dir = listener_dir(&key_of_arn(ctx, &l_arn).unwrap_or_default());
    let existing: Vec<Value> = resources::list(&*ctx.store, &dir).await?;
    if existing
        .iter()
        .any(|r| r["Priority"].as_str() == Some(priority.to_string().as_str()))
    {
        return Err(error(
            "PriorityInUse",
            format!("Priority '{priority}' is currently in use"),
        ));
    }
    if existing.len() > 100 {
        return Err(error(
            "TooManyRules",
            "The maximum number of rules per listener has been reached",
        ));
    }
    let conditions = normalise_conditions(&input["Conditions"])?;
    let actions = validate_actions(ctx, &input["Actions"], false).await?;
    let tail = l_arn
        .split_once(":listener/")
        .map(|x| x.1)
        .unwrap_or_default();
    let rid = new_hex_id();
    let rule = json!({
        "RuleArn": arn(ctx, &format!("listener-rule/{tail}/{rid}")),
        "Priority": priority.to_string(),
        "Conditions": conditions,
        "Actions": actions,
        "IsDefault": false,
        "_loadBalancerArn": listener["LoadBalancerArn"],
        "_tags": tags_of(&input)?,
    });
    commit(
        ctx,
        vec![resources::put_op(
            &format!("{dir}{rid}"),
            &rule,
            Precondition::MustNotExist,
        )],
    )
    .await?;
    Ok(json!({ "Rules": [rule] }))
}

/// Rules in priority order, default last (as AWS lists them).
fn sort_rules(rules: &mut [Value]) {
    rules.sort_by_key(|r| {
        r["Priority"]
            .as_str()
            .and_then(|p| p.parse::<i64>().ok())
            .unwrap_or(i64::MAX)
    });
}

#[doc(alias = "DescribeRules")]
pub async fn describe_rules(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let mut all = if let Some(l) = input["ListenerArn"].as_str() {
        load_listener(ctx, l).await?;
        resources::list(
            &*ctx.store,
            &listener_dir(&key_of_arn(ctx, l).unwrap_or_default()),
        )
        .await?
    } else if let Some(arns) = input["RuleArns"].as_array().filter(|a| !a.is_empty()) {
        let mut out = Vec::new();
        for a in arns {
            out.push(load_rule(ctx, a.as_str().unwrap_or_default()).await?.0);
        }
        out
    } else {
        return Err(validation(
            "You must specify either listener ARN or rule ARNs",
        ));
    };
    sort_rules(&mut all);
    page(all, &input, "Rules")
}

#[doc(alias = "ModifyRule")]
pub async fn modify_rule(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let arn = input["RuleArn"].as_str().unwrap_or_default().to_string();
    let (mut rule, rev) = load_rule(ctx, &arn).await?;
    if !input["Conditions"].is_null() {
        if rule["IsDefault"] == true {
            return Err(error(
                "OperationNotPermitted",
                "The conditions of a default rule cannot be modified",
            ));
        }
        rule["Conditions"] = normalise_conditions(&input["Conditions"])?;
    }
    if !input["Actions"].is_null() {
        rule["Actions"] = validate_actions(ctx, &input["Actions"], false).await?;
    }
    commit(
        ctx,
        vec![resources::put_op(
            &key_of_arn(ctx, &arn).unwrap_or_default(),
            &rule,
            Precondition::ModRevision(rev),
        )],
    )
    .await?;
    Ok(json!({ "Rules": [rule] }))
}

#[doc(alias = "DeleteRule")]
pub async fn delete_rule(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let arn = input["RuleArn"].as_str().unwrap_or_default().to_string();
    let (rule, rev) = load_rule(ctx, &arn).await?;
    if rule["IsDefault"] == true {
        return Err(error(
            "OperationNotPermitted",
            format!("Default rule '{arn}' cannot be deleted"),
        ));
    }
    commit(
        ctx,
        vec![skiff_store::Op::Delete {
            key: key_of_arn(ctx, &arn).unwrap_or_default(),
            precondition: Precondition::ModRevision(rev),
        }],
    )
    .await?;
    Ok(json!({}))
}

#[doc(alias = "SetRulePriorities")]
pub async fn set_rule_priorities(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let mut changed: Vec<(String, Value, skiff_store::Revision)> = Vec::new();
    for p in input["RulePriorities"].as_array().into_iter().flatten() {
        let arn = p["RuleArn"].as_str().unwrap_or_default().to_string();
        let priority = p["Priority"].as_i64().unwrap_or(0);
        if !(1..=50000).contains(&priority) {
            return Err(validation("Priority must be between 1 and 50000"));
        }
        let (mut rule, rev) = load_rule(ctx, &arn).await?;
        if rule["IsDefault"] == true {
            return Err(error(
                "OperationNotPermitted",
                format!("Default rule '{arn}' cannot have its priority changed"),
            ));
        }
        rule["Priority"] = json!(priority.to_string());
        changed.push((arn, rule, rev));
    }
    // The resulting set of priorities, per listener, must be unique.
    let mut out = Vec::new();
    let mut ops = Vec::new();
    for (arn, rule, rev) in &changed {
        let k = key_of_arn(ctx, arn).unwrap_or_default();
        let dir = k[..=k.rfind('/').unwrap_or(0)].to_string();
        let siblings: Vec<Value> = resources::list(&*ctx.store, &dir).await?;
        for s in siblings {
            let moved = changed
                .iter()
                .find(|(a, _, _)| s["RuleArn"] == a.as_str())
                .map(|c| &c.1);
            let s_priority = moved.map_or(&s["Priority"], |m| &m["Priority"]);
            if s["RuleArn"] != arn.as_str() && *s_priority == rule["Priority"] {
                return Err(error(
                    "PriorityInUse",
                    format!(
                        "Priority '{}' is currently in use",
                        rule["Priority"].as_str().unwrap_or_default()
                    ),
                ));
            }
        }
        ops.push(resources::put_op(&k, rule, Precondition::ModRevision(*rev)));
        out.push(rule.clone());
    }
    commit(ctx, ops).await?;
    Ok(json!({ "Rules": out }))
}
