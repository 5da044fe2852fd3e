//! Who does the Kubernetes work: one replica at a time, holding a lease in
//! PostgreSQL as client-go's leader election holds a Lease object. The
//! holder renews it every `retry`; it trusts its hold only until
//! `renew_deadline` after its last renewal began, which is shorter than the
//! lease, so it has stopped before another replica may take the lease over.
//! A replica that crashes, is cut off, or whose database connection hangs
//! stops renewing: within `duration` (plus one `retry`) another takes over.

use crate::store::Store;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The lease's timing (client-go's defaults).
#[derive(Debug, Clone, Copy)]
pub struct LeaseTiming {
    /// How long a lease lasts after its last renewal.
    pub duration: Duration,
    /// How long the holder trusts its hold after a renewal began.
    pub renew_deadline: Duration,
    /// How often the holder renews, and a follower tries to take over; also
    /// how long one attempt may take.
    pub retry: Duration,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        }
    }
}

/// This replica's hold on the lease, as far as it may trust it.
#[derive(Debug, Clone, Default)]
pub struct Leadership {
    valid_until: Arc<Mutex<Option<Instant>>>,
}

impl Leadership {
    /// Whether this replica may do Kubernetes work now.
    pub fn held(&self) -> bool {
        self.slot().is_some_and(|until| Instant::now() < until)
    }

    fn slot(&self) -> Option<Instant> {
        *self.valid_until.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, until: Option<Instant>) {
        *self.valid_until.lock().unwrap_or_else(|e| e.into_inner()) = until;
    }

    /// One attempt to take or renew the lease for `holder`. A failed or
    /// hung attempt changes nothing: the hold runs out by itself.
    pub async fn try_once(&self, store: &Store, holder: &str, timing: LeaseTiming) -> bool {
        let began = Instant::now();
        match tokio::time::timeout(timing.retry, store.take_kube_lease(holder, timing.duration))
            .await
        {
            Ok(Ok(true)) => {
                self.set(Some(began + timing.renew_deadline));
                true
            }
            Ok(Ok(false)) => {
                self.set(None);
                false
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "could not renew the Kubernetes lease");
                self.held()
            }
            Err(_) => {
                tracing::warn!(
                    "renewing the Kubernetes lease took longer than {} ms",
                    timing.retry.as_millis()
                );
                self.held()
            }
        }
    }
}
