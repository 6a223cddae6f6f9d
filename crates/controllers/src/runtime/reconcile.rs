//! The reconcile loop: workers pop keys, call [`Reconciler::reconcile`], and requeue according
//! to the [`Action`] returned, or with per-key backoff on error (kube-runtime's `Controller`).

use std::sync::Arc;
use std::time::Duration;

use skiff_k8s_core::status::ApiError;
use tokio::sync::watch;

use super::queue::WorkQueue;

/// What to do with a key after a successful reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Look again after this long even if nothing changes (waiting on time: minReadySeconds,
    /// progress deadlines).
    Requeue(Duration),
    /// Nothing to do until a watched object changes.
    AwaitChange,
}

/// Why a reconcile failed; the key is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed (conflicts on stale caches are the common, harmless case).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The object cannot be acted on as written (an invalid selector).
    #[error("{0}")]
    Invalid(String),
}

/// One controller's reconcile function.
#[async_trait::async_trait]
pub trait Reconciler: Send + Sync + 'static {
    /// The upstream controller name (`deployment-controller`), used in logs and as field manager.
    fn name(&self) -> &'static str;
    /// Brings the object at `key` (`namespace/name`) towards its desired state.
    async fn reconcile(&self, key: &str) -> Result<Action, Error>;
}

/// Runs `workers` workers over `queue` until `shutdown` flips.
pub async fn run(
    reconciler: Arc<dyn Reconciler>,
    queue: WorkQueue,
    workers: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tasks = Vec::new();
    for _ in 0..workers.max(1) {
        let r = reconciler.clone();
        let q = queue.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(key) = q.get().await {
                match r.reconcile(&key).await {
                    Ok(Action::AwaitChange) => q.forget(&key),
                    Ok(Action::Requeue(d)) => {
                        q.forget(&key);
                        q.add_after(&key, d);
                    }
                    Err(e) => {
                        tracing::debug!(controller = r.name(), %key, error = %e, "reconcile failed; retrying");
                        q.add_rate_limited(&key);
                    }
                }
                q.done(&key);
            }
        }));
    }
    let _ = shutdown.wait_for(|s| *s).await;
    queue.shut_down();
    for t in tasks {
        let _ = t.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Flaky {
        calls: Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl Reconciler for Flaky {
        fn name(&self) -> &'static str {
            "flaky"
        }
        async fn reconcile(&self, key: &str) -> Result<Action, Error> {
            let n = {
                let mut c = self.calls.lock().unwrap();
                c.push(key.to_string());
                c.len()
            };
            match n {
                1 => Err(Error::Api(ApiError::optimistic_lock("", "pods", key))),
                2 => Ok(Action::Requeue(Duration::from_secs(10))),
                _ => Ok(Action::AwaitChange),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn errors_retry_and_requeue_after_comes_back() {
        let r = Arc::new(Flaky {
            calls: Mutex::new(vec![]),
        });
        let q = WorkQueue::new();
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(run(r.clone(), q.clone(), 2, rx));
        q.add("ns/a");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            r.calls.lock().unwrap().len(),
            2,
            "retried after the conflict"
        );
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(r.calls.lock().unwrap().len(), 3, "requeued after 10s");
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert_eq!(r.calls.lock().unwrap().len(), 3, "awaits a change");
        tx.send(true).unwrap();
        task.await.unwrap();
    }
}
