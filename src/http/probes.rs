//! `/readyz` and `/metrics` are outside the request caps (probes must answer
//! under load) and need no token, so their database reads are budgeted here
//! instead: one read at a time per probe, shared by every probe that asks
//! while it runs, and its outcome kept for [`FRESH_FOR`]. However many
//! clients poll them, probes hold at most one database connection each and
//! cost the database at most about one statement a second.

use crate::domain::budget::PROBE_TIMEOUT;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long a probe's database outcome answers later probes.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// One probe's database look and its last outcome.
pub struct SharedLook<T> {
    last: Mutex<Option<(Instant, T)>>,
}

impl<T> Default for SharedLook<T> {
    fn default() -> Self {
        Self {
            last: Mutex::new(None),
        }
    }
}

impl<T: Clone> SharedLook<T> {
    /// The outcome of a look at most [`FRESH_FOR`] old, else of `look` run
    /// now (callers meanwhile wait for it, not run their own). `None`: the
    /// look under way did not finish within [`PROBE_TIMEOUT`] of this call.
    /// `looked` is told each time the database is really asked.
    pub async fn get<F, Fut>(&self, look: F, looked: impl FnOnce()) -> Option<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let mut last = tokio::time::timeout(PROBE_TIMEOUT, self.last.lock())
            .await
            .ok()?;
        if let Some((at, outcome)) = last.as_ref()
            && at.elapsed() < FRESH_FOR
        {
            return Some(outcome.clone());
        }
        looked();
        let outcome = look().await;
        *last = Some((Instant::now(), outcome.clone()));
        Some(outcome)
    }
}

/// The probes' looks, one per probe.
#[derive(Default)]
pub struct Probes {
    /// `/readyz`: its status and text.
    pub ready: SharedLook<(axum::http::StatusCode, String)>,
    /// `/metrics`: the pool figures it reads (written into the gauges).
    pub figures: SharedLook<()>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn many_probes_at_once_share_one_look() {
        let shared = Arc::new(SharedLook::<u32>::default());
        let looks = Arc::new(AtomicUsize::new(0));
        let mut probes = Vec::new();
        for _ in 0..100 {
            let (shared, looks) = (shared.clone(), looks.clone());
            probes.push(tokio::spawn(async move {
                shared
                    .get(
                        || async {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            7
                        },
                        || {
                            looks.fetch_add(1, Ordering::Relaxed);
                        },
                    )
                    .await
            }));
        }
        for probe in probes {
            assert_eq!(probe.await.unwrap(), Some(7));
        }
        assert_eq!(looks.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_look_leaves_the_others_answered_in_time() {
        let shared = Arc::new(SharedLook::<u32>::default());
        let stuck = shared.clone();
        tokio::spawn(async move { stuck.get(std::future::pending::<u32>, || {}).await });
        tokio::task::yield_now().await;
        let started = tokio::time::Instant::now();
        assert_eq!(shared.get(|| async { 1 }, || {}).await, None);
        assert!(started.elapsed() <= PROBE_TIMEOUT + Duration::from_millis(10));
    }
}
