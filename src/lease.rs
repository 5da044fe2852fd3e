//! Leases in PostgreSQL, as client-go's leader election holds a Lease
//! object: the holder renews every `retry` and trusts its hold only until
//! `renew_deadline` after its last renewal began, which is shorter than the
//! lease, so it has stopped before another replica may take the lease over.
//! A holder that crashes, is cut off, or whose database connection hangs
//! stops renewing: within `duration` (plus one `retry`) another takes over.
//! Used by the Kubernetes worker (`kube::lease`) and reclaim runs
//! (`pool::reclaim_lease`); what is leased is theirs.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// A lease's timing (client-go's defaults).
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

/// A holder's hold on a lease, as far as it may trust it.
#[derive(Debug, Clone, Default)]
pub struct Leadership {
    valid_until: Arc<Mutex<Option<Instant>>>,
}

impl Leadership {
    /// Held since an attempt that began at `began` (a lease just taken).
    pub fn held_since(began: Instant, timing: LeaseTiming) -> Self {
        let leadership = Self::default();
        leadership.set(Some(began + timing.renew_deadline));
        leadership
    }

    /// Whether the holder may act on what is leased now.
    pub fn held(&self) -> bool {
        self.slot().is_some_and(|until| Instant::now() < until)
    }

    /// Stops trusting the hold at once (a clean stop, before the lease is
    /// handed back: the holder must not still believe it holds the lease
    /// when another replica has taken it).
    pub fn give_up(&self) {
        self.set(None);
    }

    fn slot(&self) -> Option<Instant> {
        *self.valid_until.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, until: Option<Instant>) {
        *self.valid_until.lock().unwrap_or_else(|e| e.into_inner()) = until;
    }

    /// One attempt to take or renew (`attempt`: true when held now). A failed
    /// or hung attempt changes nothing: the hold runs out by itself. `what`
    /// names the lease in the log.
    pub async fn try_with<E: std::fmt::Display>(
        &self,
        attempt: impl Future<Output = Result<bool, E>>,
        timing: LeaseTiming,
        what: &str,
    ) -> bool {
        let began = Instant::now();
        match tokio::time::timeout(timing.retry, attempt).await {
            Ok(Ok(true)) => {
                self.set(Some(began + timing.renew_deadline));
                true
            }
            Ok(Ok(false)) => {
                self.set(None);
                false
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "could not renew the {what} lease");
                self.held()
            }
            Err(_) => {
                tracing::warn!(
                    "renewing the {what} lease took longer than {} ms",
                    timing.retry.as_millis()
                );
                self.held()
            }
        }
    }
}
