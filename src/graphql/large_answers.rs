//! Memory for the largest answers. One request's answer is bounded by its
//! budgets (`response_budget`), which grow with the pool so that one read of
//! the whole pool fits; but such an answer takes tens of MiB while it is
//! built, and the requests in flight times that would pass the Deployment's
//! memory limit. So an answer that grows past the fixed budget
//! ([`super::limits::MAX_RESPONSE_VALUES`], what any pool allows) first takes
//! one of a few permits, waiting a little for one; the rest of the answers,
//! and answers served from memory (`http::pool_reads`), never wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Answers larger than the fixed budget built at once. One whole
/// `poolNamespaces` of 100,000 namespaces takes ~160 MiB while it is built
/// (its rows, their views and the answer), so one at a time keeps the
/// largest pool inside the Deployment's memory limit (the README's figures).
pub const LARGE_ANSWERS: usize = 1;
/// How long a large answer waits for a permit before it is refused with
/// SERVICE_UNAVAILABLE and Retry-After (well inside the request timeout).
pub const LARGE_ANSWER_WAIT: Duration = Duration::from_secs(5);

/// The permits; clones share them.
#[derive(Clone)]
pub struct LargeAnswers(Arc<Semaphore>);

impl Default for LargeAnswers {
    fn default() -> Self {
        Self::new(LARGE_ANSWERS)
    }
}

impl LargeAnswers {
    pub fn new(permits: usize) -> Self {
        Self(Arc::new(Semaphore::new(permits)))
    }

    /// A permit, waiting at most `wait`; `None`: every permit stayed taken.
    pub async fn admit(&self, wait: Duration) -> Option<OwnedSemaphorePermit> {
        tokio::time::timeout(wait, self.0.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }

    /// Every free permit at once, if there are `count` (tests hold them to
    /// show what the next large answer gets).
    pub fn try_hold(&self, count: u32) -> Option<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_many_owned(count).ok()
    }

    pub fn available(&self) -> usize {
        self.0.available_permits()
    }
}

/// A held permit; when the answer is done with it, what the answer freed
/// goes back to the system (`crate::heap`), then the next may start.
struct Admitted {
    _permit: OwnedSemaphorePermit,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        crate::heap::give_back();
    }
}

/// One request's claim on a permit, shared by its answer budget and its
/// resolver runs: taken once, when either passes its fixed budget, and held
/// until the last clone is dropped (the transport's, after serializing).
#[derive(Clone)]
pub struct LargeAnswer {
    gate: LargeAnswers,
    permit: Arc<tokio::sync::Mutex<Option<Admitted>>>,
    admitted: Arc<AtomicBool>,
    busy: Arc<AtomicBool>,
}

impl LargeAnswer {
    pub fn new(gate: LargeAnswers) -> Self {
        Self {
            gate,
            permit: Arc::default(),
            admitted: Arc::default(),
            busy: Arc::default(),
        }
    }

    /// Whether this request holds a permit, waiting for one the first time.
    pub async fn admit(&self) -> bool {
        if self.admitted.load(Ordering::Acquire) {
            return true;
        }
        if self.busy.load(Ordering::Acquire) {
            return false;
        }
        let mut permit = self.permit.lock().await;
        if permit.is_none() && !self.busy.load(Ordering::Acquire) {
            *permit = self
                .gate
                .admit(LARGE_ANSWER_WAIT)
                .await
                .map(|permit| Admitted { _permit: permit });
            self.admitted.store(permit.is_some(), Ordering::Release);
            self.busy.store(permit.is_none(), Ordering::Release);
        }
        permit.is_some()
    }

    /// Whether the request found no permit in time.
    pub fn busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_permit_is_waited_for_and_then_refused() {
        let gate = LargeAnswers::new(1);
        let held = gate.admit(Duration::from_millis(10)).await;
        assert!(held.is_some());
        assert!(gate.admit(Duration::from_millis(10)).await.is_none());
        drop(held);
        assert!(gate.admit(Duration::from_millis(10)).await.is_some());
    }

    #[tokio::test]
    async fn a_request_takes_one_permit_for_all_its_parts() {
        let gate = LargeAnswers::new(1);
        let request = LargeAnswer::new(gate.clone());
        assert!(request.admit().await && request.clone().admit().await);
        assert_eq!(gate.available(), 0);
        drop(request);
        assert_eq!(gate.available(), 1);
    }
}
