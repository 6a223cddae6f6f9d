//! The Job and CronJob controllers against a real API server registry (embedded store in a
//! tempdir), with the real kubectl 1.32 for `wait --for=condition=complete` and `create job
//! --from=cronjob/…`. No kubelet runs here: a small task plays its part by patching Pod phases.

mod support;
use support::{Cluster, eventually};

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use skiff_controllers::cronjob::cronjobs;
use skiff_controllers::job::{TRACKING_FINALIZER, jobs};
use skiff_controllers::replicaset::pods;
use skiff_controllers::runtime::{Clock, FakeClock, SystemClock};
use skiff_k8s_core::client::{ListOptions, PatchOptions, WriteOptions};
use skiff_k8s_core::patch::PatchType;

/// Plays the kubelet: Pods the `verdict` names a phase for are moved to it.
fn kubelet(
    cl: &Cluster,
    verdict: fn(&Value) -> Option<&'static str>,
) -> tokio::task::JoinHandle<()> {
    let c = cl.client.clone();
    tokio::spawn(async move {
        let r = pods().in_namespace("default");
        loop {
            let Ok(list) = c.list(&r, &ListOptions::default()).await else {
                return;
            };
            let mut updates = Vec::new();
            for mut p in list.items {
                let phase = p["status"]["phase"].as_str().unwrap_or_default();
                if matches!(phase, "Succeeded" | "Failed") {
                    continue;
                }
                if let Some(to) = verdict(&p) {
                    p["status"]["phase"] = json!(to);
                    updates.push(p);
                }
            }
            // Concurrent, as many kubelets would be.
            futures::future::join_all(updates.into_iter().map(|p| {
                let (c, r) = (&c, &r);
                async move { c.update_status(r, p, &WriteOptions::default()).await }
            }))
            .await;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    })
}

fn job_name_of(p: &Value) -> &str {
    p["metadata"]["labels"]["batch.kubernetes.io/job-name"]
        .as_str()
        .unwrap_or_default()
}

fn reasons(j: &Value) -> Vec<String> {
    j["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["status"] == "True")
        .map(|c| {
            format!(
                "{}/{}",
                c["type"].as_str().unwrap(),
                c["reason"].as_str().unwrap()
            )
        })
        .collect()
}

fn job(name: &str, spec: Value) -> Value {
    let mut j = json!({
        "metadata": {"name": name},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
                 "containers": [{"name": "main", "image": "busybox"}]}}},
    });
    for (k, v) in spec.as_object().unwrap() {
        j["spec"][k] = v.clone();
    }
    j
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_complete_fail_and_expire_with_kubectl_wait() {
    let cl = Cluster::start(Arc::new(SystemClock)).await;
    let jr = jobs().in_namespace("default");
    let _kubelet = kubelet(&cl, |p| match job_name_of(p) {
        "pi" | "short" | "idx" => Some("Succeeded"),
        "bad" => Some("Failed"),
        _ => None,
    });
    for (name, spec) in [
        ("pi", json!({"completions": 3, "parallelism": 2})),
        ("bad", json!({"backoffLimit": 0})),
        ("short", json!({"ttlSecondsAfterFinished": 0})),
        (
            "idx",
            json!({"completionMode": "Indexed", "completions": 3, "parallelism": 3}),
        ),
    ] {
        cl.client
            .create(&jr, job(name, spec), &WriteOptions::default())
            .await
            .unwrap();
    }

    cl.kubectl_ok(&[
        "wait",
        "--for=condition=complete",
        "job/pi",
        "--timeout=30s",
    ])
    .await;
    let pi = cl.get(&jobs(), "pi").await.unwrap();
    assert_eq!(pi["status"]["succeeded"], 3);
    assert_eq!(pi["status"]["active"], 0);
    assert!(pi["status"]["completionTime"].is_string());
    assert_eq!(
        reasons(&pi),
        [
            "SuccessCriteriaMet/CompletionsReached",
            "Complete/CompletionsReached"
        ]
    );
    let pods_of_pi: Vec<Value> = cl
        .list(&pods())
        .await
        .into_iter()
        .filter(|p| job_name_of(p) == "pi")
        .collect();
    assert_eq!(pods_of_pi.len(), 3);
    for p in &pods_of_pi {
        let fins = p["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(!fins.contains(&json!(TRACKING_FINALIZER)), "{p}");
    }
    let table = cl.kubectl_ok(&["get", "job", "pi"]).await;
    assert!(
        table.contains("Complete") && table.contains("3/3"),
        "{table}"
    );

    // Indexed: one Pod per index, with the index as annotation, label, hostname and env.
    cl.kubectl_ok(&[
        "wait",
        "--for=condition=complete",
        "job/idx",
        "--timeout=30s",
    ])
    .await;
    let idx = cl.get(&jobs(), "idx").await.unwrap();
    assert_eq!(idx["status"]["completedIndexes"], "0-2");
    let mut hosts: Vec<String> = cl
        .list(&pods())
        .await
        .iter()
        .filter(|p| job_name_of(p) == "idx")
        .map(|p| {
            let i = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                .as_str()
                .unwrap();
            assert_eq!(
                p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"],
                i
            );
            assert_eq!(
                p["spec"]["containers"][0]["env"][0]["name"],
                "JOB_COMPLETION_INDEX"
            );
            p["spec"]["hostname"].as_str().unwrap().to_string()
        })
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["idx-0", "idx-1", "idx-2"]);

    cl.kubectl_ok(&["wait", "--for=condition=failed", "job/bad", "--timeout=30s"])
        .await;
    cl.kubectl_events(
        "Job",
        "bad",
        "Warning/BackoffLimitExceeded: Job has reached the specified backoff limit",
    )
    .await;
    let pi_events = cl
        .kubectl_events("Job", "pi", "Normal/Completed: Job completed")
        .await;
    assert_eq!(
        pi_events
            .lines()
            .filter(|l| l.starts_with("Normal/SuccessfulCreate: Created pod: pi-"))
            .count(),
        3,
        "{pi_events}"
    );
    let bad = cl.get(&jobs(), "bad").await.unwrap();
    assert_eq!(bad["status"]["failed"], 1);
    assert_eq!(
        reasons(&bad),
        [
            "FailureTarget/BackoffLimitExceeded",
            "Failed/BackoffLimitExceeded"
        ]
    );

    // A running Job deleted by kubectl: its Pods lose the tracking finalizer and go with it.
    cl.client
        .create(
            &jr,
            job("hang", json!({"parallelism": 2, "completions": 2})),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    eventually("two running pods", || async {
        let n = cl
            .list(&pods())
            .await
            .iter()
            .filter(|p| job_name_of(p) == "hang")
            .count();
        (n == 2).then_some(Value::Null)
    })
    .await;
    cl.kubectl_ok(&["delete", "job", "hang", "--wait=false"])
        .await;
    eventually("the deleted job's pods gone", || async {
        let left = cl
            .list(&pods())
            .await
            .iter()
            .any(|p| job_name_of(p) == "hang");
        (!left && cl.get(&jobs(), "hang").await.is_none()).then_some(Value::Null)
    })
    .await;

    // ttlSecondsAfterFinished: 0 deletes the finished Job and, in the foreground, its Pods.
    eventually("the expired job and its pods gone", || async {
        let gone = cl.get(&jobs(), "short").await.is_none();
        let pods_left = cl
            .list(&pods())
            .await
            .iter()
            .any(|p| job_name_of(p) == "short");
        (gone && !pods_left).then_some(Value::Null)
    })
    .await;
    cl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cronjob_schedules_on_the_injected_clock_and_kubectl_creates_from_it() {
    let clock = FakeClock::new(jiff::Timestamp::now());
    let cl = Cluster::start(clock.clone()).await;
    let _kubelet = kubelet(&cl, |_| Some("Succeeded"));
    let cr = cronjobs().in_namespace("default");
    cl.client
        .create(
            &cr,
            json!({
                "metadata": {"name": "tick"},
                "spec": {"schedule": "* * * * *", "concurrencyPolicy": "Forbid",
                         "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never",
                             "containers": [{"name": "c", "image": "busybox"}]}}}}},
            }),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    // Nothing is due until the clock passes the next minute.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(cl.list(&jobs()).await.is_empty());
    clock.advance(Duration::from_secs(61));
    // Any change queues the CronJob (the controller's own requeue sleeps real time).
    cl.client
        .patch(
            &cr,
            "tick",
            PatchType::Merge,
            json!({"metadata": {"labels": {"poke": "1"}}}),
            &PatchOptions::default(),
        )
        .await
        .unwrap();
    let j = eventually("a scheduled job", || async {
        cl.list(&jobs()).await.into_iter().next()
    })
    .await;
    let name = j["metadata"]["name"].as_str().unwrap().to_string();
    let minutes: i64 = name.strip_prefix("tick-").unwrap().parse().unwrap();
    let now_min = clock.now().as_second() / 60;
    assert!(minutes <= now_min && minutes >= now_min - 1, "{name}");
    assert_eq!(j["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    let cj = eventually("lastSuccessfulTime", || async {
        let cj = cl.get(&cronjobs(), "tick").await?;
        (cj["status"]["lastSuccessfulTime"].is_string() && cj["status"].get("active").is_none())
            .then_some(cj)
    })
    .await;
    assert_eq!(
        cj["status"]["lastScheduleTime"].as_str().unwrap(),
        skiff_controllers::runtime::rfc3339(jiff::Timestamp::from_second(minutes * 60).unwrap())
    );
    let table = cl.kubectl_ok(&["get", "cronjob", "tick"]).await;
    assert!(table.contains("* * * * *"), "{table}");

    // `kubectl create job --from=cronjob/…` is just a Job; the Job controller runs it.
    cl.kubectl_ok(&["create", "job", "manual", "--from=cronjob/tick"])
        .await;
    cl.kubectl_ok(&[
        "wait",
        "--for=condition=complete",
        "job/manual",
        "--timeout=30s",
    ])
    .await;
    let manual = cl.get(&jobs(), "manual").await.unwrap();
    assert_eq!(
        manual["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    cl.stop().await;
}
