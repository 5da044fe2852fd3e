//! Dashboard pages rendered at once. A page is bounded by its page size
//! (`pool::DASHBOARD_PAGE_SIZE`), but each render still reads a page of rows,
//! the counts and the chart, and builds its HTML: a few of them at a time
//! keep the dashboard's memory a fixed amount whatever the number of open
//! tabs reloading every 15 s. The rest wait a little, then get 503 with
//! Retry-After (the page's own reload tries again).

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Dashboard pages rendered at once.
pub const DASHBOARD_RENDERS: usize = 4;
/// How long a page waits for a render permit.
pub const DASHBOARD_RENDER_WAIT: Duration = Duration::from_secs(2);

/// The permits; clones share them.
#[derive(Clone)]
pub struct Renders(Arc<Semaphore>);

impl Default for Renders {
    fn default() -> Self {
        Self(Arc::new(Semaphore::new(DASHBOARD_RENDERS)))
    }
}

impl Renders {
    /// A permit, waiting at most [`DASHBOARD_RENDER_WAIT`].
    pub async fn admit(&self) -> Option<OwnedSemaphorePermit> {
        tokio::time::timeout(DASHBOARD_RENDER_WAIT, self.0.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }

    /// `count` permits at once, if free (tests hold them all).
    pub fn try_hold(&self, count: u32) -> Option<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_many_owned(count).ok()
    }
}
