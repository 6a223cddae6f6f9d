//! Log streams: CreateLogStream, DescribeLogStreams, DeleteLogStream.

use serde_json::{Value, json};
use skiff_store::Precondition;

use super::common::{
    LogStream, LogsError, LogsResult, STREAM_NOT_FOUND, check_stream_name, describe_stream,
    events_prefix, group_of, load_group, now_ms, offset_of, opt_bool, opt_i64, opt_str, req_str,
    stream_key, stream_prefix, token_of,
};
use crate::context::RequestContext;
use crate::resources;

#[doc(alias = "CreateLogStream")]
pub async fn create_log_stream(ctx: &RequestContext, input: Value) -> LogsResult<Value> {
    let group = req_str(&input, "logGroupName")?;
    let name = req_str(&input, "logStreamName")?;
    check_stream_name(name)?;
    load_group(ctx, group).await?;
    let stream = LogStream {
        group: group.to_string(),
        name: name.to_string(),
        created_ms: now_ms(),
        ..Default::default()
    };
    let op = resources::put_op(
        &stream_key(ctx, group, name),
        &stream,
        Precondition::MustNotExist,
    );
    match resources::commit(&*ctx.store, vec![op]).await {
        Ok(_) => Ok(json!({})),
        Err(None) => Err(LogsError::ResourceAlreadyExists(
            "The specified log stream already exists".into(),
        )),
        Err(Some(e)) => Err(e.into()),
    }
}

/// Every stream of a group, by name.
pub async fn all_streams(ctx: &RequestContext, group: &str) -> LogsResult<Vec<LogStream>> {
    let mut streams: Vec<LogStream> =
        resources::list(&*ctx.store, &stream_prefix(ctx, group)).await?;
    streams.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(streams)
}

#[doc(alias = "DescribeLogStreams")]
pub async fn describe_log_streams(ctx: &RequestContext, input: Value) -> LogsResult<Value> {
    let group = group_of(&input)?;
    load_group(ctx, &group).await?;
    let prefix = opt_str(&input, "logStreamNamePrefix");
    let by_time = match opt_str(&input, "orderBy").unwrap_or("LogStreamName") {
        "LogStreamName" => false,
        "LastEventTime" => true,
        other => {
            return Err(LogsError::InvalidParameter(format!(
                "1 validation error detected: Value '{other}' at 'orderBy' failed to satisfy constraint: Member must satisfy enum value set: [LogStreamName, LastEventTime]"
            )));
        }
    };
    if by_time && prefix.is_some() {
        return Err(LogsError::InvalidParameter(
            "Cannot order by LastEventTime with a logStreamNamePrefix.".into(),
        ));
    }
    let limit = opt_i64(&input, "limit").unwrap_or(50).clamp(1, 50) as usize;
    let mut streams: Vec<LogStream> = all_streams(ctx, &group)
        .await?
        .into_iter()
        .filter(|s| prefix.is_none_or(|p| s.name.starts_with(p)))
        .collect();
    if by_time {
        // Streams without events sort first, as their last event time is unset.
        streams.sort_by_key(|s| (s.last_event_ms.unwrap_or(0), s.name.clone()));
    }
    if opt_bool(&input, "descending").unwrap_or(false) {
        streams.reverse();
    }
    let start = offset_of(opt_str(&input, "nextToken"))?;
    let page: Vec<Value> = streams
        .iter()
        .skip(start)
        .take(limit)
        .map(|s| describe_stream(ctx, s))
        .collect();
    let mut out = json!({ "logStreams": page });
    if start + limit < streams.len() {
        out["nextToken"] = json!(token_of(start + limit));
    }
    Ok(out)
}

#[doc(alias = "DeleteLogStream")]
pub async fn delete_log_stream(ctx: &RequestContext, input: Value) -> LogsResult<Value> {
    let group = req_str(&input, "logGroupName")?;
    let name = req_str(&input, "logStreamName")?;
    load_group(ctx, group).await?;
    let key = stream_key(ctx, group, name);
    match resources::commit(&*ctx.store, vec![resources::delete_op(&key)]).await {
        Ok(_) => {}
        Err(None) => return Err(LogsError::ResourceNotFound(STREAM_NOT_FOUND.into())),
        Err(Some(e)) => return Err(e.into()),
    }
    super::groups::delete_under(ctx, &events_prefix(ctx, group, name)).await?;
    Ok(json!({}))
}
