//! Reclaim: hard-delete Deployments soft-deleted long enough ago, freeing
//! their namespaces. The body is a plain function; the schedule that calls it
//! lives in `jobs`. Runs never overlap (an advisory lock), each scheduled tick
//! runs once across replicas (its row in `reclaim_runs`), and each Deployment
//! is reclaimed in its own transaction with its event, so a run stopped
//! anywhere leaves nothing half-done.

use super::records::{ReclaimRun, all};
use super::{Error, PoolService, Progress, Result, Silent};
use crate::domain::roles::Level;
use crate::domain::{Action, Caller};
use crate::store::DeploymentRow;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration as StdDuration;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct ReclaimedDeployment {
    pub release_name: String,
    pub namespace: String,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<DeploymentRow> for ReclaimedDeployment {
    fn from(row: DeploymentRow) -> Self {
        Self {
            release_name: row.release_name,
            namespace: row.namespace,
            deleted_at: row.deleted_at,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReclaimReport {
    pub run_id: i64,
    pub cutoff: DateTime<Utc>,
    pub dry_run: bool,
    /// How many were freed (or, in a dry run, would be).
    pub count: usize,
    /// The first [`LISTED`] of them.
    pub deployments: Vec<ReclaimedDeployment>,
    /// Set when the run stopped early (shutdown, database error).
    pub stopped: Option<String>,
}

/// How many reclaimed Deployments a report lists (it counts all of them).
pub const LISTED: usize = 10_000;
/// Deployments reclaimed between two looks at the stop signal and a yield.
const BATCH: usize = 200;
/// How long a manual run waits for a running one before giving up.
pub const MANUAL_LOCK_WAIT: StdDuration = StdDuration::from_secs(120);
/// How long a scheduled run waits for a running one (a manual run, say).
const SCHEDULED_LOCK_WAIT: StdDuration = StdDuration::from_secs(600);

/// A stop signal that never fires, for runs by hand: with its sender gone,
/// the value stays `false` (runs only ever read it, never wait on it).
pub fn never_stop() -> watch::Receiver<bool> {
    watch::channel(false).1
}

/// The name this process records on the runs it does.
pub fn replica_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}", std::process::id())
}

impl PoolService {
    /// A run by hand (`nspool reclaim`, `reclaimDeployments`): waits a bounded
    /// time for a running run, then does its own.
    pub async fn reclaim(
        &self,
        caller: &Caller,
        older_than_days: u32,
        dry_run: bool,
    ) -> Result<ReclaimReport> {
        self.reclaim_showing(caller, older_than_days, dry_run, Arc::new(Silent))
            .await
    }

    /// [`Self::reclaim`], telling `progress` each Deployment it reclaims.
    pub async fn reclaim_showing(
        &self,
        caller: &Caller,
        older_than_days: u32,
        dry_run: bool,
        progress: Arc<dyn Progress>,
    ) -> Result<ReclaimReport> {
        caller.authorize(Action::System(Level::Admin))?;
        let max = crate::config::MAX_OLDER_THAN_DAYS;
        if older_than_days > max {
            return Err(Error::BadInput(format!(
                "olderThanDays must be between 0 and {max} (100 years); got {older_than_days}"
            )));
        }
        // The run is its own task: a request that times out or a client that
        // goes away does not cut it short, and its run row is always finished.
        let service = self.clone();
        let actor = caller.actor();
        let run = tokio::spawn(async move {
            service
                .manual_run(older_than_days, dry_run, &actor, progress.as_ref())
                .await
        });
        match run.await {
            Ok(report) => report,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(Error::Conflict(
                "The reclaim run was stopped by a shutdown; reclaimRuns shows how far it got"
                    .into(),
            )),
        }
    }

    async fn manual_run(
        &self,
        older_than_days: u32,
        dry_run: bool,
        actor: &str,
        progress: &dyn Progress,
    ) -> Result<ReclaimReport> {
        progress.say("waiting for the reclaim lock");
        let Some(lock) = self.store.reclaim_lock(MANUAL_LOCK_WAIT).await? else {
            return Err(Error::Conflict(format!(
                "Another reclaim run kept going for {} s; try again later",
                MANUAL_LOCK_WAIT.as_secs()
            )));
        };
        let run_id = self
            .store
            .start_manual_run(&replica_name(), older_than_days, dry_run)
            .await?;
        let report = self
            .run_reclaim(
                run_id,
                older_than_days,
                dry_run,
                actor,
                &never_stop(),
                progress,
            )
            .await;
        drop(lock);
        report
    }

    /// The scheduled run of `tick`; `None` when another replica has that tick.
    pub async fn run_scheduled_reclaim(
        &self,
        tick: DateTime<Utc>,
        stop: &watch::Receiver<bool>,
    ) -> Result<Option<ReclaimReport>> {
        let settings = self.settings();
        let cleanup = &settings.cleanup;
        let Some(run_id) = self
            .store
            .claim_scheduled_run(
                tick,
                &replica_name(),
                cleanup.older_than_days,
                cleanup.dry_run,
            )
            .await?
        else {
            return Ok(None);
        };
        let Some(lock) = self.store.reclaim_lock(SCHEDULED_LOCK_WAIT).await? else {
            let why = "skipped: another reclaim run held the lock too long";
            self.store.finish_run(run_id, 0, Some(why), None).await?;
            return Ok(None);
        };
        let report = self
            .run_reclaim(
                run_id,
                cleanup.older_than_days,
                cleanup.dry_run,
                "reclaim-job",
                stop,
                &Silent,
            )
            .await;
        drop(lock);
        report.map(Some)
    }

    async fn run_reclaim(
        &self,
        run_id: i64,
        older_than_days: u32,
        dry_run: bool,
        actor: &str,
        stop: &watch::Receiver<bool>,
        progress: &dyn Progress,
    ) -> Result<ReclaimReport> {
        progress.say(if dry_run { "listing" } else { "reclaiming" });
        // Bounded by MAX_OLDER_THAN_DAYS at every entry; checked all the same.
        let cutoff = Duration::try_days(i64::from(older_than_days))
            .and_then(|days| Utc::now().checked_sub_signed(days))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let mut report = ReclaimReport {
            run_id,
            cutoff,
            dry_run,
            count: 0,
            deployments: Vec::new(),
            stopped: None,
        };
        if dry_run {
            let rows = self.store.reclaimable(cutoff, LISTED as i64).await?;
            report.count = rows.len();
            report.deployments = rows.into_iter().map(Into::into).collect();
            let listed: Vec<_> = report
                .deployments
                .iter()
                .map(|d| json!({"releaseName": d.release_name, "namespace": d.namespace}))
                .collect();
            self.store
                .finish_run(run_id, 0, None, Some(&serde_json::Value::Array(listed)))
                .await?;
            return Ok(report);
        }
        let reason = format!("soft-deleted more than {older_than_days} days ago");
        let mut last_generation = None;
        'batches: loop {
            for _ in 0..BATCH {
                if *stop.borrow() {
                    report.stopped = Some("stopped by shutdown; the next run goes on".into());
                    break 'batches;
                }
                match self
                    .store
                    .reclaim_one(cutoff, actor, &reason, self.checks_released())
                    .await
                {
                    Ok(Some(reclaimed)) => {
                        last_generation = last_generation.max(reclaimed.pool_generation);
                        let row = reclaimed.deployment;
                        report.count += 1;
                        progress.advance(1);
                        if report.deployments.len() < LISTED {
                            report.deployments.push(row.into());
                        }
                    }
                    Ok(None) => break 'batches,
                    Err(error) => {
                        tracing::warn!(%error, run_id, "reclaim run stopped by a database error");
                        report.stopped = Some(format!("stopped by a database error: {error}"));
                        break 'batches;
                    }
                }
            }
            // Let claims and other work in between batches.
            tokio::task::yield_now().await;
        }
        self.read_own_write(last_generation).await;
        let finished = self
            .store
            .finish_run(run_id, report.count, report.stopped.as_deref(), None)
            .await;
        let outcome = match (&finished, &report.stopped) {
            (Err(_), _) => "failed",
            (Ok(_), Some(_)) => "stopped",
            (Ok(_), None) => "ok",
        };
        self.metrics
            .reclaim_run(outcome, u64::try_from(report.count).unwrap_or(u64::MAX));
        finished?;
        self.kube_wake.notify_one();
        Ok(report)
    }

    /// The reclaim job's settings (system viewer or more).
    pub fn reclaim_job(&self, caller: &Caller) -> Result<crate::config::CleanupSettings> {
        caller.authorize(Action::System(Level::Viewer))?;
        Ok(self.settings().cleanup.clone())
    }

    pub async fn reclaim_runs(&self, caller: &Caller, last: i64) -> Result<Vec<ReclaimRun>> {
        caller.authorize(Action::System(Level::Viewer))?;
        Ok(all(self.store.reclaim_runs(last).await?))
    }
}
