//! Reclaim: hard-delete Deployments soft-deleted long enough ago, freeing
//! their namespaces. The body is a plain function; the schedule that calls it
//! lives in `jobs`. Runs never overlap (one unfinished run: a unique index),
//! each scheduled tick runs once across replicas (its row in `reclaim_runs`),
//! each run holds a lease on its row (`reclaim_lease`: a run whose replica
//! died is taken over and finished), and each Deployment is reclaimed in its
//! own transaction with its event and the run's count, so a run stopped
//! anywhere leaves nothing half-done and its count true.

use super::reclaim_lease::{self, RUN_LEASE, RunLease};
use super::records::{ReclaimRun, all};
use super::{Error, PoolService, Progress, Result, Silent};
use crate::domain::roles::Level;
use crate::domain::{Action, Caller};
use crate::store::{DeploymentRow, NewRun, RunStart};
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

/// What run to start: a tick's, or one by hand (`tick: None`).
struct NewRunOf {
    tick: Option<DateTime<Utc>>,
    older_than_days: u32,
    dry_run: bool,
}

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
        progress.say("waiting for a running reclaim run");
        let run = NewRunOf {
            tick: None,
            older_than_days,
            dry_run,
        };
        let Some(lease) = self.start_run(&run, MANUAL_LOCK_WAIT).await? else {
            return Err(Error::Conflict(format!(
                "Another reclaim run kept going for {} s; try again later",
                MANUAL_LOCK_WAIT.as_secs()
            )));
        };
        self.run_reclaim(
            &lease,
            older_than_days,
            dry_run,
            actor,
            &never_stop(),
            progress,
        )
        .await
    }

    /// The scheduled run of `tick`; `None` when another replica has that tick.
    pub async fn run_scheduled_reclaim(
        &self,
        tick: DateTime<Utc>,
        stop: &watch::Receiver<bool>,
    ) -> Result<Option<ReclaimReport>> {
        let settings = self.settings();
        let cleanup = &settings.cleanup;
        let run = NewRunOf {
            tick: Some(tick),
            older_than_days: cleanup.older_than_days,
            dry_run: cleanup.dry_run,
        };
        let Some(lease) = self.start_run(&run, SCHEDULED_LOCK_WAIT).await? else {
            return Ok(None);
        };
        self.run_reclaim(
            &lease,
            cleanup.older_than_days,
            cleanup.dry_run,
            "reclaim-job",
            stop,
            &Silent,
        )
        .await
        .map(Some)
    }

    /// Takes over a run whose replica died (its lease expired) and finishes
    /// it; `None` when there is none. Every replica that serves checks
    /// (`jobs::reclaim_takeover`), so the rest of a killed run is done
    /// within a minute, not at the next tick.
    pub async fn resume_dead_reclaim_run(
        &self,
        stop: &watch::Receiver<bool>,
    ) -> Result<Option<ReclaimReport>> {
        let holder = reclaim_lease::holder();
        let began = tokio::time::Instant::now();
        let Some(run) = self
            .store
            .take_over_dead_run(&holder, &replica_name(), RUN_LEASE.duration)
            .await?
        else {
            return Ok(None);
        };
        tracing::warn!(
            run_id = run.id,
            reclaimed = run.reclaimed,
            "a reclaim run's replica stopped renewing its lease; this replica finishes the run"
        );
        let lease = RunLease::hold(self.store.clone(), run.id, holder, began);
        let older_than_days = u32::try_from(run.older_than_days).unwrap_or_default();
        let actor = if run.trigger == "schedule" {
            "reclaim-job"
        } else {
            "reclaim-takeover"
        };
        self.run_reclaim(&lease, older_than_days, run.dry_run, actor, stop, &Silent)
            .await
            .map(Some)
    }

    /// Starts a run holding its lease: waits up to `wait` while another run
    /// is unfinished (taking over one whose lease expired). `None`: the
    /// tick is another replica's, or the wait ran out (a tick is then
    /// recorded as skipped).
    async fn start_run(&self, run: &NewRunOf, wait: StdDuration) -> Result<Option<RunLease>> {
        let holder = reclaim_lease::holder();
        let replica = replica_name();
        let new = NewRun {
            tick: run.tick,
            replica: &replica,
            older_than_days: run.older_than_days,
            dry_run: run.dry_run,
            holder: &holder,
            lease: RUN_LEASE.duration,
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let began = tokio::time::Instant::now();
            match self.store.start_run(&new).await? {
                RunStart::Started(id) => {
                    return Ok(Some(RunLease::hold(self.store.clone(), id, holder, began)));
                }
                RunStart::TickTaken => return Ok(None),
                RunStart::Busy if tokio::time::Instant::now() >= deadline => {
                    if run.tick.is_some() {
                        let why = "skipped: another reclaim run went on too long";
                        self.store.skip_tick(&new, why).await?;
                    }
                    return Ok(None);
                }
                RunStart::Busy => tokio::time::sleep(StdDuration::from_millis(200)).await,
            }
        }
    }

    async fn run_reclaim(
        &self,
        lease: &RunLease,
        older_than_days: u32,
        dry_run: bool,
        actor: &str,
        stop: &watch::Receiver<bool>,
        progress: &dyn Progress,
    ) -> Result<ReclaimReport> {
        let run_id = lease.id;
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
                .finish_run(
                    run_id,
                    &lease.holder,
                    None,
                    Some(&serde_json::Value::Array(listed)),
                )
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
                if !lease.held() {
                    // Another replica may take the run over now: stop here.
                    report.stopped =
                        Some("stopped: this replica could not renew the run's lease".into());
                    break 'batches;
                }
                match self
                    .store
                    .reclaim_one(run_id, cutoff, actor, &reason, self.checks_released())
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
            .finish_run(run_id, &lease.holder, report.stopped.as_deref(), None)
            .await;
        let outcome = match (&finished, &report.stopped) {
            (Err(_), _) | (Ok(None), _) => "failed",
            (Ok(Some(_)), Some(_)) => "stopped",
            (Ok(Some(_)), None) => "ok",
        };
        self.metrics
            .reclaim_run(outcome, u64::try_from(report.count).unwrap_or(u64::MAX));
        if finished?.is_none() {
            tracing::warn!(
                run_id,
                "the reclaim run was taken over by another replica (its lease had expired); that replica finishes it"
            );
        }
        self.kube_wake.wake_workers();
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
