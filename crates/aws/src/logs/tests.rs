//! CloudWatch Logs through its operation table on an in-memory store.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use crate::context::RequestContext;
use crate::iam::test_support::root_ctx;

async fn logs(ctx: &RequestContext, op: &str, input: Value) -> Result<Value, AwsError> {
    super::dispatch(ctx, op, input).await
}

async fn ok(ctx: &RequestContext, op: &str, input: Value) -> Value {
    logs(ctx, op, input)
        .await
        .unwrap_or_else(|e| panic!("{op}: {e}"))
}

async fn err(ctx: &RequestContext, op: &str, input: Value) -> AwsError {
    logs(ctx, op, input).await.expect_err(op)
}

fn now() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

#[tokio::test]
async fn groups_retention_tags_and_deletion() {
    let ctx = root_ctx();
    let g = "/aws/eks/prod/cluster";
    ok(
        &ctx,
        "CreateLogGroup",
        json!({"logGroupName": g, "tags": {"team": "a"}}),
    )
    .await;
    let dup = err(&ctx, "CreateLogGroup", json!({"logGroupName": g})).await;
    assert_eq!(dup.code, "ResourceAlreadyExistsException");
    assert_eq!(dup.status, 400);
    ok(
        &ctx,
        "CreateLogGroup",
        json!({"logGroupName": "/aws/lambda/x"}),
    )
    .await;
    let bad = err(&ctx, "CreateLogGroup", json!({"logGroupName": "has space"})).await;
    assert_eq!(bad.code, "InvalidParameterException");

    let r = err(
        &ctx,
        "PutRetentionPolicy",
        json!({"logGroupName": g, "retentionInDays": 2}),
    )
    .await;
    assert_eq!(r.code, "InvalidParameterException");
    ok(
        &ctx,
        "PutRetentionPolicy",
        json!({"logGroupName": g, "retentionInDays": 7}),
    )
    .await;

    let d = ok(
        &ctx,
        "DescribeLogGroups",
        json!({"logGroupNamePrefix": "/aws/eks/"}),
    )
    .await;
    let groups = d["logGroups"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["logGroupName"], g);
    assert_eq!(groups[0]["retentionInDays"], 7);
    assert_eq!(
        groups[0]["arn"],
        "arn:aws:logs:us-east-1:000000000000:log-group:/aws/eks/prod/cluster:*"
    );

    // Paging: one group per page, every group once.
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut input = json!({"limit": 1});
        if let Some(t) = &token {
            input["nextToken"] = json!(t);
        }
        let page = ok(&ctx, "DescribeLogGroups", input).await;
        for g in page["logGroups"].as_array().unwrap() {
            names.push(g["logGroupName"].as_str().unwrap().to_string());
        }
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(names, ["/aws/eks/prod/cluster", "/aws/lambda/x"]);

    let arn = "arn:aws:logs:us-east-1:000000000000:log-group:/aws/eks/prod/cluster";
    ok(
        &ctx,
        "TagResource",
        json!({"resourceArn": arn, "tags": {"env": "ci"}}),
    )
    .await;
    ok(
        &ctx,
        "UntagResource",
        json!({"resourceArn": arn, "tagKeys": ["team"]}),
    )
    .await;
    let t = ok(&ctx, "ListTagsForResource", json!({"resourceArn": arn})).await;
    assert_eq!(t["tags"], json!({"env": "ci"}));
    let t = ok(&ctx, "ListTagsLogGroup", json!({"logGroupName": g})).await;
    assert_eq!(t["tags"], json!({"env": "ci"}));

    ok(
        &ctx,
        "CreateLogStream",
        json!({"logGroupName": g, "logStreamName": "s"}),
    )
    .await;
    ok(&ctx, "DeleteLogGroup", json!({"logGroupName": g})).await;
    let gone = err(&ctx, "DeleteLogGroup", json!({"logGroupName": g})).await;
    assert_eq!(gone.code, "ResourceNotFoundException");
    assert_eq!(gone.message, "The specified log group does not exist.");
    // Recreated with the same name, it starts empty.
    ok(&ctx, "CreateLogGroup", json!({"logGroupName": g})).await;
    let s = ok(&ctx, "DescribeLogStreams", json!({"logGroupName": g})).await;
    assert_eq!(s["logStreams"], json!([]));
}

#[tokio::test]
async fn events_are_stored_read_and_filtered() {
    let ctx = root_ctx();
    let g = "app";
    ok(&ctx, "CreateLogGroup", json!({"logGroupName": g})).await;
    let missing = err(
        &ctx,
        "PutLogEvents",
        json!({"logGroupName": g, "logStreamName": "web", "logEvents": [{"timestamp": now(), "message": "x"}]}),
    )
    .await;
    assert_eq!(missing.message, "The specified log stream does not exist.");
    for s in ["web", "worker"] {
        ok(
            &ctx,
            "CreateLogStream",
            json!({"logGroupName": g, "logStreamName": s}),
        )
        .await;
    }
    let t0 = now() - 60_000;
    let put = ok(
        &ctx,
        "PutLogEvents",
        json!({"logGroupName": g, "logStreamName": "web", "logEvents": [
            {"timestamp": t0, "message": "GET / 200"},
            {"timestamp": t0 + 10, "message": "GET /x 503"},
            {"timestamp": t0 + 20, "message": "{\"level\":\"ERROR\",\"ms\":250}"},
        ]}),
    )
    .await;
    assert!(put["nextSequenceToken"].is_string());
    assert!(put.get("rejectedLogEventsInfo").is_none());
    // A second batch that is older than the first still reads back in time order.
    ok(
        &ctx,
        "PutLogEvents",
        json!({"logGroupName": g, "logStreamName": "web", "logEvents": [{"timestamp": t0 - 5, "message": "boot"}]}),
    )
    .await;
    let future = ok(
        &ctx,
        "PutLogEvents",
        json!({"logGroupName": g, "logStreamName": "worker", "logEvents": [
            {"timestamp": t0 + 15, "message": "job ERROR"},
            {"timestamp": now() + 3 * 3_600_000, "message": "from the future"},
        ]}),
    )
    .await;
    assert_eq!(
        future["rejectedLogEventsInfo"]["tooNewLogEventStartIndex"],
        1
    );
    let order = err(
        &ctx,
        "PutLogEvents",
        json!({"logGroupName": g, "logStreamName": "web", "logEvents": [
            {"timestamp": t0 + 2, "message": "b"}, {"timestamp": t0 + 1, "message": "a"}]}),
    )
    .await;
    assert_eq!(order.code, "InvalidParameterException");

    let all = ok(
        &ctx,
        "GetLogEvents",
        json!({"logGroupName": g, "logStreamName": "web", "startFromHead": true}),
    )
    .await;
    let msgs: Vec<&str> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        msgs,
        [
            "boot",
            "GET / 200",
            "GET /x 503",
            "{\"level\":\"ERROR\",\"ms\":250}"
        ]
    );

    // Forward paging two at a time ends on a repeated token, as botocore's paginators expect.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..5 {
        let mut input =
            json!({"logGroupName": g, "logStreamName": "web", "limit": 2, "startFromHead": true});
        if let Some(t) = &token {
            input["nextToken"] = json!(t);
        }
        let page = ok(&ctx, "GetLogEvents", input).await;
        for e in page["events"].as_array().unwrap() {
            seen.push(e["message"].as_str().unwrap().to_string());
        }
        let next = page["nextForwardToken"].as_str().unwrap().to_string();
        if token.as_deref() == Some(next.as_str()) {
            break;
        }
        token = Some(next);
    }
    assert_eq!(seen.len(), 4);
    // Without startFromHead the newest events come back.
    let tail = ok(
        &ctx,
        "GetLogEvents",
        json!({"logGroupName": g, "logStreamName": "web", "limit": 1}),
    )
    .await;
    assert_eq!(
        tail["events"][0]["message"],
        "{\"level\":\"ERROR\",\"ms\":250}"
    );

    let errors = ok(
        &ctx,
        "FilterLogEvents",
        json!({"logGroupName": g, "filterPattern": "?ERROR ?503"}),
    )
    .await;
    let hits: Vec<(&str, &str)> = errors["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["logStreamName"].as_str().unwrap(),
                e["message"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        hits,
        [
            ("web", "GET /x 503"),
            ("worker", "job ERROR"),
            ("web", "{\"level\":\"ERROR\",\"ms\":250}")
        ],
        "matches from both streams, interleaved by time"
    );
    let json_hits = ok(
        &ctx,
        "FilterLogEvents",
        json!({"logGroupName": g, "filterPattern": "{ $.ms > 200 }", "logStreamNames": ["web"]}),
    )
    .await;
    assert_eq!(json_hits["events"].as_array().unwrap().len(), 1);
    let bad = err(
        &ctx,
        "FilterLogEvents",
        json!({"logGroupName": g, "filterPattern": "{ $.ms > }"}),
    )
    .await;
    assert_eq!(bad.code, "InvalidParameterException");

    let streams = ok(
        &ctx,
        "DescribeLogStreams",
        json!({"logGroupName": g, "orderBy": "LastEventTime", "descending": true}),
    )
    .await;
    assert_eq!(streams["logStreams"][0]["logStreamName"], "web");
    assert_eq!(streams["logStreams"][0]["firstEventTimestamp"], t0 - 5);
    let conflict = err(
        &ctx,
        "DescribeLogStreams",
        json!({"logGroupName": g, "orderBy": "LastEventTime", "logStreamNamePrefix": "w"}),
    )
    .await;
    assert_eq!(conflict.code, "InvalidParameterException");
}

#[tokio::test]
async fn append_creates_what_it_needs() {
    let ctx = root_ctx();
    super::events::append(
        &ctx,
        "/aws/eks/c/cluster",
        "kube-apiserver-audit-1",
        vec![(now(), "b".into()), (now() - 10, "a".into())],
    )
    .await
    .unwrap();
    let got = ok(
        &ctx,
        "GetLogEvents",
        json!({"logGroupName": "/aws/eks/c/cluster", "logStreamName": "kube-apiserver-audit-1", "startFromHead": true}),
    )
    .await;
    assert_eq!(got["events"][0]["message"], "a");
    assert_eq!(got["events"][1]["message"], "b");
}
