//! Re-reads the config file on SIGHUP and when its content changes (a
//! mounted ConfigMap is replaced in place: its symlinks are swapped, so the
//! file is polled by content rather than watched by inode), and hands the
//! result to [`PoolService::reload`]. A changed reclaim job gets a new timer.

use super::reclaim_schedule::ReclaimSchedule;
use crate::config::Settings;
use crate::pool::PoolService;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, watch};

/// How often the file is read to see whether it changed.
pub const POLL: Duration = Duration::from_secs(2);
/// How long a changed reclaim job waits for a running run before its new timer starts.
const SCHEDULE_HANDOVER: Duration = Duration::from_secs(10);

/// The reclaim timer, replaced when a reload changes the job.
pub type ScheduleSlot = Arc<Mutex<Option<ReclaimSchedule>>>;

/// The file's content hash (`None`: unreadable now, e.g. mid-swap).
async fn fingerprint(path: &Path) -> Option<[u8; 32]> {
    let bytes = tokio::fs::read(path).await.ok()?;
    Some(Sha256::digest(&bytes).into())
}

/// Runs until `stop`.
pub async fn watch(
    service: PoolService,
    path: PathBuf,
    schedule: ScheduleSlot,
    mut stop: watch::Receiver<bool>,
) {
    let mut seen = fingerprint(&path).await;
    let mut hangup = hangup_signal();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let hung_up = tokio::select! {
            () = hangup.recv() => true,
            _ = tick.tick() => false,
            _ = stop.wait_for(|s| *s) => return,
        };
        let cause = if hung_up {
            "SIGHUP"
        } else {
            let now = fingerprint(&path).await;
            if now.is_none() || now == seen {
                continue;
            }
            "the config file changed"
        };
        seen = fingerprint(&path).await;
        tracing::info!(path = %path.display(), "{cause}: reloading the config");
        let read = {
            let file = path.clone();
            tokio::task::spawn_blocking(move || Settings::load(Some(&file)))
                .await
                .unwrap_or_else(|_| {
                    Err(crate::config::ConfigErrors::one(
                        path.display().to_string(),
                        "reading the file failed",
                    ))
                })
        };
        let Some(report) = service.reload(read).await else {
            continue;
        };
        if report.cleanup_changed {
            restart_schedule(&service, &schedule, stop.clone()).await;
        }
    }
}

async fn restart_schedule(service: &PoolService, slot: &ScheduleSlot, stop: watch::Receiver<bool>) {
    let mut slot = slot.lock().await;
    if let Some(old) = slot.take() {
        old.shutdown(SCHEDULE_HANDOVER).await;
    }
    match ReclaimSchedule::start(service.clone(), stop).await {
        Ok(new) => *slot = new,
        Err(error) => {
            tracing::error!(%error, "the reclaim job could not be scheduled after the reload; it runs again after a restart or the next good reload")
        }
    }
}

/// SIGHUP on Unix; never elsewhere.
struct Hangup(#[cfg(unix)] Option<tokio::signal::unix::Signal>);

fn hangup_signal() -> Hangup {
    #[cfg(unix)]
    {
        Hangup(tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok())
    }
    #[cfg(not(unix))]
    {
        Hangup()
    }
}

impl Hangup {
    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = self.0.as_mut() {
            signal.recv().await;
            return;
        }
        std::future::pending::<()>().await;
    }
}
