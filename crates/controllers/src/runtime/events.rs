//! Events as kube-controller-manager writes them (client-go's `EventRecorder`): a core/v1 Event
//! per (object, reason, message), repeats within ten minutes folded into the same Event with a
//! higher `count` and a new `lastTimestamp`, so `kubectl describe` and `kubectl get events` show
//! what upstream shows. Recording never fails the reconcile that asked for it: events are
//! best-effort upstream too, and they are written off the reconcile's path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use skiff_k8s_core::client::{ApiClient, PatchOptions, ResourceRef, WriteOptions};
use skiff_k8s_core::patch::PatchType;

use super::Clock;

/// How long a repeat is folded into the Event already written (client-go's aggregation window).
const FOLD_WINDOW_SECONDS: i64 = 600;
/// Added to an Event name's nanoseconds so names never collide.
static EVENT_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Keys remembered for folding; the oldest half is forgotten past this.
const MAX_REMEMBERED: usize = 4096;

/// `Normal` or `Warning`, as `Event.type` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

struct Written {
    name: String,
    namespace: String,
    count: i64,
    last: jiff::Timestamp,
}

/// Writes Events for one component (`replicaset-controller`, `deployment-controller`, …).
pub struct EventRecorder {
    client: Arc<dyn ApiClient>,
    component: &'static str,
    clock: Arc<dyn Clock>,
    written: Mutex<HashMap<String, Written>>,
}

fn events() -> ResourceRef {
    ResourceRef::new("", "v1", "events")
}

impl EventRecorder {
    pub fn new(
        client: Arc<dyn ApiClient>,
        component: &'static str,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        Arc::new(Self {
            client,
            component,
            clock,
            written: Mutex::new(HashMap::new()),
        })
    }

    /// Records `reason`/`message` about `object` (any object in wire shape) in the background.
    pub fn record(self: &Arc<Self>, object: &Value, kind: EventType, reason: &str, message: &str) {
        let this = self.clone();
        let (object, reason, message) = (object.clone(), reason.to_string(), message.to_string());
        tokio::spawn(async move {
            if let Err(e) = this.write(&object, kind, &reason, &message).await {
                tracing::debug!(component = this.component, %reason, error = %e, "event not recorded");
            }
        });
    }

    /// The Event write itself (awaitable, for tests).
    pub async fn write(
        &self,
        object: &Value,
        kind: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), skiff_k8s_core::status::ApiError> {
        let meta = &object["metadata"];
        let uid = meta["uid"].as_str().unwrap_or_default();
        let namespace = meta["namespace"].as_str().unwrap_or("default").to_string();
        let now = self.clock.now();
        let key = format!("{uid}\u{0}{reason}\u{0}{message}");
        let fold = {
            let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
            match written.get_mut(&key) {
                Some(w) if now.as_second() - w.last.as_second() < FOLD_WINDOW_SECONDS => {
                    w.count += 1;
                    w.last = now;
                    Some((w.name.clone(), w.namespace.clone(), w.count))
                }
                _ => None,
            }
        };
        if let Some((name, ns, count)) = fold {
            let patch = json!({"count": count, "lastTimestamp": now.to_string()});
            let folded = self
                .client
                .patch(
                    &events().in_namespace(&ns),
                    &name,
                    PatchType::Merge,
                    patch,
                    &PatchOptions::default(),
                )
                .await;
            if folded.is_ok() {
                return Ok(());
            }
            // The Event is gone (TTL, deleted): write a new one.
        }
        // The sequence keeps two Events about one object in the same instant (a fake clock, a
        // burst) apart, as client-go's recorder does with its own counter-free nanosecond names.
        let seq = u128::from(EVENT_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let name = format!(
            "{}.{:x}",
            meta["name"].as_str().unwrap_or_default(),
            (now.as_nanosecond() as u128).wrapping_add(seq)
        );
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {
                "apiVersion": object["apiVersion"],
                "kind": object["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
                "resourceVersion": meta["resourceVersion"],
            },
            "reason": reason,
            "message": message,
            "source": {"component": self.component},
            "firstTimestamp": now.to_string(),
            "lastTimestamp": now.to_string(),
            "count": 1,
            "type": kind.as_str(),
            "reportingComponent": self.component,
            "reportingInstance": "",
        });
        self.client
            .create(
                &events().in_namespace(&namespace),
                event,
                &WriteOptions::default(),
            )
            .await?;
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        if written.len() >= MAX_REMEMBERED {
            let cutoff = now.as_second() - FOLD_WINDOW_SECONDS;
            written.retain(|_, w| w.last.as_second() >= cutoff);
        }
        written.insert(
            key,
            Written {
                name,
                namespace,
                count: 1,
                last: now,
            },
        );
        Ok(())
    }
}

/// Controllers hold `Option<Arc<EventRecorder>>`: unit tests that assert an exact list of writes
/// build them without one, every other caller with one. This lets call sites record either way.
pub trait Recorder {
    fn event(&self, object: &Value, kind: EventType, reason: &str, message: &str);
}

impl Recorder for Option<Arc<EventRecorder>> {
    fn event(&self, object: &Value, kind: EventType, reason: &str, message: &str) {
        if let Some(r) = self {
            r.record(object, kind, reason, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::FakeClock;
    use crate::testing::FakeClient;

    fn rs() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-1", "namespace": "shop", "uid": "u1", "resourceVersion": "7"}})
    }

    #[tokio::test]
    async fn first_event_is_created_and_repeats_fold_into_it() {
        let client = Arc::new(FakeClient::default());
        let clock = FakeClock::new(jiff::Timestamp::from_second(1_700_000_000).unwrap());
        let rec = EventRecorder::new(client.clone(), "replicaset-controller", clock.clone());
        rec.write(
            &rs(),
            EventType::Normal,
            "SuccessfulCreate",
            "Created pod: web-1-abc",
        )
        .await
        .unwrap();
        let created = client.objects(&events());
        assert_eq!(created.len(), 1);
        let e = &created[0];
        assert_eq!(e["involvedObject"]["kind"], "ReplicaSet");
        assert_eq!(e["involvedObject"]["uid"], "u1");
        assert_eq!(e["source"]["component"], "replicaset-controller");
        assert_eq!(e["type"], "Normal");
        assert_eq!(e["count"], 1);
        assert!(
            e["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("web-1.")
        );

        clock.advance(std::time::Duration::from_secs(30));
        rec.write(
            &rs(),
            EventType::Normal,
            "SuccessfulCreate",
            "Created pod: web-1-abc",
        )
        .await
        .unwrap();
        let after = client.objects(&events());
        assert_eq!(after.len(), 1, "folded, not a second Event");
        assert_eq!(after[0]["count"], 2);

        // Past the window a new Event starts.
        clock.advance(std::time::Duration::from_secs(
            FOLD_WINDOW_SECONDS as u64 + 1,
        ));
        rec.write(
            &rs(),
            EventType::Normal,
            "SuccessfulCreate",
            "Created pod: web-1-abc",
        )
        .await
        .unwrap();
        assert_eq!(client.objects(&events()).len(), 2);
    }
}
