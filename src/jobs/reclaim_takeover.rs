//! Finishing reclaim runs whose replica died: every serving replica looks
//! every [`TAKEOVER_EVERY`] for an unfinished run whose lease expired, takes
//! it over and finishes it (its row keeps counting). With the run's lease of
//! 15 s, the rest of a killed run is done within about 20 s, not at the next
//! tick. Runs even with the job disabled: a run by hand (`nspool reclaim`)
//! killed mid-way is finished the same way.

use crate::pool::PoolService;
use std::time::Duration;
use tokio::sync::watch;

/// How often a replica looks for a dead run.
pub const TAKEOVER_EVERY: Duration = Duration::from_secs(5);

/// Looks until `stop`.
pub async fn watch(service: PoolService, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        match service.resume_dead_reclaim_run(&stop).await {
            Ok(Some(report)) => tracing::info!(
                run_id = report.run_id,
                reclaimed = report.count,
                stopped = report.stopped.as_deref().unwrap_or(""),
                "finished a reclaim run taken over from a replica that stopped"
            ),
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "could not look for a dead reclaim run"),
        }
        tokio::select! {
            () = tokio::time::sleep(TAKEOVER_EVERY) => {},
            _ = stop.changed() => {},
        }
    }
}
