//! The in-process reclaim schedule (`astronomer.houston.cleanupDeployments`),
//! on tokio-cron-scheduler, in UTC. Every replica fires every tick; the tick's
//! row in `reclaim_runs` lets exactly one of them run it.

use crate::pool::PoolService;
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{RwLock, watch};
use tokio_cron_scheduler::{Job, JobScheduler};

pub struct ReclaimSchedule {
    scheduler: JobScheduler,
    /// Each running run holds a read guard; shutdown waits for the write guard.
    running: Arc<RwLock<()>>,
}

impl ReclaimSchedule {
    /// Starts the schedule; `None` when the job is disabled.
    pub async fn start(
        service: PoolService,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<Option<Self>> {
        let cleanup = service.settings().cleanup.clone();
        if !cleanup.enabled {
            tracing::info!(
                "reclaim job disabled (astronomer.houston.cleanupDeployments.enabled is false)"
            );
            return Ok(None);
        }
        let running = Arc::new(RwLock::new(()));
        let schedule = cleanup.schedule.clone();
        let job_running = running.clone();
        let job = Job::new_async(cleanup.schedule.as_str(), move |_id, _scheduler| {
            let service = service.clone();
            let stop = stop.clone();
            let running = job_running.clone();
            let schedule = schedule.clone();
            Box::pin(async move {
                let Some(tick) = schedule.tick_at_or_before(Utc::now()) else {
                    return;
                };
                if *stop.borrow() {
                    return;
                }
                let _guard = running.read().await;
                match service.run_scheduled_reclaim(tick, &stop).await {
                    Ok(Some(report)) => tracing::info!(
                        %tick,
                        reclaimed = report.count,
                        dry_run = report.dry_run,
                        stopped = report.stopped.as_deref().unwrap_or(""),
                        "reclaim run done"
                    ),
                    Ok(None) => tracing::debug!(%tick, "reclaim tick taken by another replica"),
                    Err(error) => tracing::warn!(%tick, %error, "reclaim run failed"),
                }
            })
        })?;
        let scheduler = JobScheduler::new().await?;
        scheduler.add(job).await?;
        scheduler.start().await?;
        tracing::info!(
            schedule = cleanup.schedule.as_str(),
            older_than_days = cleanup.older_than_days,
            dry_run = cleanup.dry_run,
            "reclaim job scheduled (UTC)"
        );
        Ok(Some(Self { scheduler, running }))
    }

    /// Stops firing, then waits up to `bound` for a running run to finish its batch.
    pub async fn shutdown(mut self, bound: Duration) {
        if let Err(error) = self.scheduler.shutdown().await {
            tracing::warn!(%error, "reclaim scheduler did not shut down cleanly");
        }
        if tokio::time::timeout(bound, self.running.write())
            .await
            .is_err()
        {
            tracing::warn!(
                "a reclaim run was still going at shutdown; its next Deployment is left for the next run"
            );
        }
    }
}
