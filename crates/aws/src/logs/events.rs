//! Log events: PutLogEvents, GetLogEvents, FilterLogEvents, and [`append`] for Skiff's own writers
//! (EKS control plane logging).
//!
//! Each accepted batch is one record written in the same transaction as its stream's counters, so an
//! acknowledged PutLogEvents is durable and a reader never sees counters without their events.
//! Readers merge a stream's batches by timestamp (batches may arrive out of order across calls).

use serde_json::{Value, json};
use skiff_store::Precondition;

use super::common::{
    Event, EventBatch, LogStream, LogsError, LogsResult, STREAM_NOT_FOUND, batch_key,
    events_prefix, group_of, load_group, load_stream, now_ms, offset_of, opt_bool, opt_i64,
    opt_str, req_str, sequence_token, stream_key, token_of,
};
use super::filter_pattern;
use crate::context::RequestContext;
use crate::resources;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Per-event overhead AWS counts toward the 1 MiB batch limit.
const EVENT_OVERHEAD: usize = 26;
const MAX_BATCH_BYTES: usize = 1_048_576;
const MAX_BATCH_EVENTS: usize = 10_000;
const MAX_EVENT_BYTES: usize = 1_048_550;

/// What PutLogEvents accepted and rejected.
#[derive(Debug, Default, PartialEq)]
pub struct Accepted {
    pub too_new_start: Option<usize>,
    pub too_old_end: Option<usize>,
    pub expired_end: Option<usize>,
    pub range: std::ops::Range<usize>,
}

/// The checks AWS makes on a batch, and which events it keeps (`events` are `(timestamp, message)`).
pub fn judge(
    events: &[(i64, String)],
    now: i64,
    retention_days: Option<i64>,
) -> LogsResult<Accepted> {
    if events.is_empty() || events.len() > MAX_BATCH_EVENTS {
        return Err(LogsError::InvalidParameter(format!(
            "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length between 1 and {MAX_BATCH_EVENTS}"
        )));
    }
    let size: usize = events.iter().map(|(_, m)| m.len() + EVENT_OVERHEAD).sum();
    if size > MAX_BATCH_BYTES {
        return Err(LogsError::InvalidParameter(format!(
            "Upload too large: {size} bytes exceeds limit of {MAX_BATCH_BYTES}"
        )));
    }
    if let Some((_, m)) = events.iter().find(|(_, m)| m.len() > MAX_EVENT_BYTES) {
        return Err(LogsError::InvalidParameter(format!(
            "Log event too large: {} bytes exceeds limit of {MAX_EVENT_BYTES}",
            m.len()
        )));
    }
    if events.windows(2).any(|w| w[1].0 < w[0].0) {
        return Err(LogsError::InvalidParameter(
            "Log events in a single PutLogEvents request must be in chronological order.".into(),
        ));
    }
    if events[events.len() - 1].0 - events[0].0 > DAY_MS {
        return Err(LogsError::InvalidParameter(
            "The batch of log events in a single PutLogEvents request cannot span more than 24 hours."
                .into(),
        ));
    }
    let too_new_start = events.iter().position(|(t, _)| *t > now + 2 * HOUR_MS);
    let too_old_end = events.iter().rposition(|(t, _)| *t < now - 14 * DAY_MS);
    let expired_end =
        retention_days.and_then(|d| events.iter().rposition(|(t, _)| *t < now - d * DAY_MS));
    let start = too_old_end.max(expired_end).map_or(0, |i| i + 1);
    let end = too_new_start.unwrap_or(events.len()).max(start);
    Ok(Accepted {
        too_new_start,
        too_old_end,
        expired_end,
        range: start..end,
    })
}

/// Store accepted events as one batch and move the stream's counters, retrying on a concurrent batch.
async fn store_batch(
    ctx: &RequestContext,
    group: &str,
    stream: &str,
    events: Vec<(i64, String)>,
) -> LogsResult<LogStream> {
    let ingestion = now_ms();
    let events: Vec<Event> = events
        .into_iter()
        .map(|(timestamp, message)| Event {
            timestamp,
            message,
            ingestion,
        })
        .collect();
    loop {
        let (mut s, rev) = load_stream(ctx, group, stream).await?;
        if events.is_empty() {
            return Ok(s);
        }
        let first = events[0].timestamp;
        let last = events[events.len() - 1].timestamp;
        s.first_event_ms = Some(s.first_event_ms.map_or(first, |f| f.min(first)));
        s.last_event_ms = Some(s.last_event_ms.map_or(last, |l| l.max(last)));
        s.last_ingestion_ms = Some(ingestion);
        s.stored_bytes += events.iter().map(|e| e.message.len() as u64).sum::<u64>();
        let seq = s.batches;
        s.batches += 1;
        let batch = EventBatch {
            seq,
            events: events.clone(),
        };
        let ops = vec![
            resources::put_op(
                &stream_key(ctx, group, stream),
                &s,
                Precondition::ModRevision(rev),
            ),
            resources::put_op(
                &batch_key(ctx, group, stream, seq),
                &batch,
                Precondition::MustNotExist,
            ),
        ];
        match resources::commit(&*ctx.store, ops).await {
            Ok(_) => return Ok(s),
            Err(None) => continue,
            Err(Some(e)) => return Err(e.into()),
        }
    }
}

#[doc(alias = "PutLogEvents")]
pub async fn put_log_events(ctx: &RequestContext, input: Value) -> LogsResult<Value> {
    let group = req_str(&input, "logGroupName")?;
    let stream = req_str(&input, "logStreamName")?;
    let events: Vec<(i64, String)> = input
        .get("logEvents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            (
                opt_i64(e, "timestamp").unwrap_or(0),
                opt_str(e, "message").unwrap_or_default().to_string(),
            )
        })
        .collect();
    let (g, _) = load_group(ctx, group).await?;
    load_stream(ctx, group, stream).await?;
    let verdict = judge(&events, now_ms(), g.retention_days)?;
    let kept = events[verdict.range.clone()].to_vec();
    let s = store_batch(ctx, group, stream, kept).await?;
    let mut out = json!({ "nextSequenceToken": sequence_token(s.batches) });
    let mut rejected = serde_json::Map::new();
    if let Some(i) = verdict.too_new_start {
        rejected.insert("tooNewLogEventStartIndex".into(), json!(i));
    }
    if let Some(i) = verdict.too_old_end {
        rejected.insert("tooOldLogEventEndIndex".into(), json!(i));
    }
    if let Some(i) = verdict.expired_end {
        rejected.insert("expiredLogEventEndIndex".into(), json!(i));
    }
    if !rejected.is_empty() {
        out["rejectedLogEventsInfo"] = Value::Object(rejected);
    }
    Ok(out)
}

/// Append events for Skiff's own writers (EKS control plane logs), creating the group and stream when
/// missing, as the EKS service does. Events out of order are sorted; none are judged too old.
pub async fn append(
    ctx: &RequestContext,
    group: &str,
    stream: &str,
    mut events: Vec<(i64, String)>,
) -> LogsResult<()> {
    if load_group(ctx, group).await.is_err() {
        let created = super::groups::create_log_group(ctx, json!({ "logGroupName": group })).await;
        if let Err(e) = created
            && !matches!(e, LogsError::ResourceAlreadyExists(_))
        {
            return Err(e);
        }
    }
    if load_stream(ctx, group, stream).await.is_err() {
        let created = super::streams::create_log_stream(
            ctx,
            json!({ "logGroupName": group, "logStreamName": stream }),
        )
        .await;
        if let Err(e) = created
            && !matches!(e, LogsError::ResourceAlreadyExists(_))
        {
            return Err(e);
        }
    }
    events.sort_by_key(|(t, _)| *t);
    for chunk in events.chunks(MAX_BATCH_EVENTS) {
        store_batch(ctx, group, stream, chunk.to_vec()).await?;
    }
    Ok(())
}

/// A stream's events in timestamp order (ties in arrival order), minus those past the retention.
pub async fn stream_events(
    ctx: &RequestContext,
    group: &str,
    stream: &str,
    retention_days: Option<i64>,
) -> LogsResult<Vec<Event>> {
    let batches: Vec<EventBatch> =
        resources::list(&*ctx.store, &events_prefix(ctx, group, stream)).await?;
    let oldest = retention_days.map(|d| now_ms() - d * DAY_MS);
    let mut events: Vec<Event> = batches
        .into_iter()
        .flat_map(|b| b.events)
        .filter(|e| oldest.is_none_or(|o| e.timestamp >= o))
        .collect();
    events.sort_by_key(|e| e.timestamp);
    Ok(events)
}

fn in_window(e: &Event, start: Option<i64>, end: Option<i64>) -> bool {
    start.is_none_or(|s| e.timestamp >= s) && end.is_none_or(|t| e.timestamp < t)
}

/// GetLogEvents' tokens: `f/<n>` reads forward from event n, `b/<n>` backward from before event n.
fn parse_position(token: &str) -> LogsResult<(bool, usize)> {
    let bad = || LogsError::InvalidParameter("The specified nextToken is invalid.".into());
    let (dir, n) = token.split_once('/').ok_or_else(bad)?;
    let n = n.parse().map_err(|_| bad())?;
    match dir {
        "f" => Ok((true, n)),
        "b" => Ok((false, n)),
        _ => Err(bad()),
    }
}

fn position(forward: bool, n: usize) -> String {
    format!("{}/{n:056}", if forward { 'f' } else { 'b' })
}

#[doc(alias = "GetLogEvents")]
pub async fn get_log_events(ctx: &RequestContext, input: Value) -> LogsResult<Value> {
    let group = group_of(&input)?;
    let stream = req_str(&input, "logStreamName")?;
    let (g, _) = load_group(ctx, &group).await?;
    load_stream(ctx, &group, stream).await?;
    let (start, end) = (opt_i64(&input, "startTime"), opt_i64(&input, "endTime"));
    let events: Vec<Event> = stream_events(ctx, &group, stream, g.retention_days)
        .await?
        .into_iter()
        .filter(|e| in_window(e, start, end))
        .collect();
    let limit = opt_i64(&input, "limit").unwrap_or(10_000).clamp(1, 10_000) as usize;
    let n = events.len();
    let (from, to) = match opt_str(&input, "nextToken") {
        Some(t) => match parse_position(t)? {
            (true, k) => (k.min(n), (k + limit).min(n)),
            (false, k) => (k.min(n).saturating_sub(limit), k.min(n)),
        },
        None if opt_bool(&input, "startFromHead").unwrap_or(false) => (0, limit.min(n)),
        None => (n.saturating_sub(limit), n),
    };
    let page: Vec<Value> = events[from..to]
        .iter()
        .map(|e| json!({"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion}))
        .collect();
    Ok(json!({
        "events": page,
        "nextForwardToken": position(true, to),
        "nextBackwardToken": position(false, from),
    }))
}

#[doc(alias = "FilterLogEvents")]
pub async fn filter_log_events(ctx: &RequestContext, input: Value) -> LogsResult<Value> {
    let group = group_of(&input)?;
    let (g, _) = load_group(ctx, &group).await?;
    let names: Option<Vec<String>> =
        input
            .get("logStreamNames")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            });
    let prefix = opt_str(&input, "logStreamNamePrefix");
    if names.is_some() && prefix.is_some() {
        return Err(LogsError::InvalidParameter(
            "logStreamNames and logStreamNamePrefix are mutually exclusive.".into(),
        ));
    }
    let pattern = filter_pattern::parse(opt_str(&input, "filterPattern").unwrap_or(""))?;
    let streams: Vec<String> = match names {
        Some(names) => {
            for n in &names {
                if resources::get::<LogStream>(&*ctx.store, &stream_key(ctx, &group, n))
                    .await?
                    .is_none()
                {
                    return Err(LogsError::ResourceNotFound(STREAM_NOT_FOUND.into()));
                }
            }
            names
        }
        None => super::streams::all_streams(ctx, &group)
            .await?
            .into_iter()
            .map(|s| s.name)
            .filter(|n| prefix.is_none_or(|p| n.starts_with(p)))
            .collect(),
    };
    let (start, end) = (opt_i64(&input, "startTime"), opt_i64(&input, "endTime"));
    let mut found: Vec<(i64, usize, usize, Event)> = Vec::new();
    for (si, name) in streams.iter().enumerate() {
        let events = stream_events(ctx, &group, name, g.retention_days).await?;
        for (ei, e) in events.into_iter().enumerate() {
            if in_window(&e, start, end) && pattern.matches(&e.message) {
                found.push((e.timestamp, si, ei, e));
            }
        }
    }
    found.sort_by_key(|(t, si, ei, _)| (*t, *si, *ei));
    let limit = opt_i64(&input, "limit").unwrap_or(10_000).clamp(1, 10_000) as usize;
    let skip = offset_of(opt_str(&input, "nextToken"))?;
    let page: Vec<Value> = found
        .iter()
        .skip(skip)
        .take(limit)
        .map(|(t, si, ei, e)| {
            json!({
                "logStreamName": streams[*si],
                "timestamp": t,
                "message": e.message,
                "ingestionTime": e.ingestion,
                "eventId": format!("{:020}{:018}{:018}", t.max(&0), si, ei),
            })
        })
        .collect();
    let searched: Vec<Value> = streams
        .iter()
        .map(|s| json!({"logStreamName": s, "searchedCompletely": true}))
        .collect();
    let mut out = json!({ "events": page, "searchedLogStreams": searched });
    if skip + limit < found.len() {
        out["nextToken"] = json!(token_of(skip + limit));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evs(ts: &[i64]) -> Vec<(i64, String)> {
        ts.iter().map(|t| (*t, format!("m{t}"))).collect()
    }

    #[test]
    fn batches_are_judged_as_aws_does() {
        let now = 100 * DAY_MS;
        let ok = judge(&evs(&[now - 10, now]), now, None).unwrap();
        assert_eq!(ok.range, 0..2);
        assert!(judge(&evs(&[now, now - 1]), now, None).is_err(), "order");
        assert!(
            judge(&evs(&[now - 2 * DAY_MS, now]), now, None).is_err(),
            "span"
        );
        assert!(judge(&[], now, None).is_err(), "empty");
        let old = judge(
            &evs(&[now - 15 * DAY_MS, now - 15 * DAY_MS + 1, now]),
            now,
            None,
        );
        let old = old.unwrap_err();
        assert!(old.to_string().contains("24 hours"), "{old}");
        let mixed = judge(
            &evs(&[
                now - 14 * DAY_MS - 5,
                now - 2 * DAY_MS + 10,
                now + 3 * HOUR_MS,
            ]),
            now,
            Some(1),
        );
        assert!(mixed.is_err(), "still spans more than 24 hours");
        let r = judge(&evs(&[now - DAY_MS - 10, now - 10]), now, Some(1)).unwrap();
        assert_eq!(r.expired_end, Some(0));
        assert_eq!(r.range, 1..2);
        let r = judge(&evs(&[now - HOUR_MS, now, now + 3 * HOUR_MS]), now, Some(1)).unwrap();
        assert_eq!((r.expired_end, r.too_new_start), (None, Some(2)));
        assert_eq!(r.range, 0..2);
        let too_big = vec![(now, "x".repeat(MAX_BATCH_BYTES))];
        assert!(judge(&too_big, now, None).is_err());
    }

    #[test]
    fn positions_round_trip() {
        assert_eq!(parse_position(&position(true, 7)).unwrap(), (true, 7));
        assert_eq!(parse_position(&position(false, 0)).unwrap(), (false, 0));
        assert!(parse_position("x/1").is_err());
        assert!(parse_position("f/abc").is_err());
    }
}
