//! Re-reads the config file on SIGHUP and when its content (or that of a
//! kubeconfig file it names) changed and then stayed unchanged for [`SETTLE`] (a mounted ConfigMap is replaced in
//! place: its symlinks are swapped, so the file is polled by content rather
//! than watched by inode), and hands the result to [`PoolService::reload`].
//! A changed reclaim job gets a new timer.

use super::reclaim_schedule::ReclaimSchedule;
use crate::config::{MAX_CONFIG_BYTES, Settings};
use crate::pool::PoolService;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, watch};

/// How often the file is read to see whether it changed.
pub const POLL: Duration = Duration::from_secs(2);
/// How long a changed file must stay as it is before it is applied: a file
/// being written (`slow-tool > config.yaml`, an editor saving in parts) is
/// never applied half-way. SIGHUP applies at once: the operator asked.
pub const SETTLE: Duration = Duration::from_secs(10);
/// How long a changed reclaim job waits for a running run before its new timer starts.
const SCHEDULE_HANDOVER: Duration = Duration::from_secs(10);

/// The reclaim timer, replaced when a reload changes the job.
pub type ScheduleSlot = Arc<Mutex<Option<ReclaimSchedule>>>;

/// The file's content hash (`None`: unreadable now, e.g. mid-swap). Only
/// the first [`MAX_CONFIG_BYTES`] + 1 bytes are read, as a reload would: a
/// file grown huge (or an endless one) costs one bounded read per poll, and
/// its reload is refused for its size.
async fn fingerprint(path: &Path) -> Option<[u8; 32]> {
    Some(Sha256::digest(bounded(path).await?).into())
}

async fn bounded(path: &Path) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt as _;
    let file = tokio::fs::File::open(path).await.ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .await
        .ok()?;
    Some(bytes)
}

/// The kubeconfig files the config in force names, in cluster order.
fn kubeconfig_paths(service: &PoolService) -> Vec<PathBuf> {
    service
        .settings()
        .clusters
        .iter()
        .filter_map(|c| c.kubeconfig.clone())
        .collect()
}

/// The config file's hash with those of the kubeconfig files the config in
/// force names: a kubeconfig rewritten in place (a Secret's rotated
/// credentials) is a change too, applied as one of the config is. An
/// unreadable kubeconfig counts as empty (its reload names the file).
async fn watched(service: &PoolService, path: &Path) -> Option<[u8; 32]> {
    let mut hash = Sha256::new();
    hash.update(fingerprint(path).await?);
    for kubeconfig in kubeconfig_paths(service) {
        hash.update(kubeconfig.as_os_str().as_encoded_bytes());
        hash.update(bounded(&kubeconfig).await.unwrap_or_default());
    }
    Some(hash.finalize().into())
}

/// Runs until `stop`.
pub async fn watch(
    service: PoolService,
    path: PathBuf,
    schedule: ScheduleSlot,
    stop: watch::Receiver<bool>,
) {
    watch_settling(service, path, schedule, stop, SETTLE).await;
}

/// [`watch`] with another settle time (tests).
pub async fn watch_settling(
    service: PoolService,
    path: PathBuf,
    schedule: ScheduleSlot,
    mut stop: watch::Receiver<bool>,
    settle: Duration,
) {
    let mut seen = watched(&service, &path).await;
    // A change not applied yet: its content, and since when it is so.
    let mut changing: Option<([u8; 32], tokio::time::Instant)> = None;
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
            let now = watched(&service, &path).await;
            let Some(now) = now.filter(|now| Some(*now) != seen) else {
                changing = None;
                continue;
            };
            match changing {
                Some((content, since)) if content == now => {
                    if since.elapsed() < settle {
                        continue;
                    }
                }
                _ => {
                    // Changed (again): applied once it stays so.
                    changing = Some((now, tokio::time::Instant::now()));
                    continue;
                }
            }
            "the config file changed and stayed so"
        };
        changing = None;
        seen = watched(&service, &path).await;
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
        let kubeconfigs = kubeconfig_paths(&service);
        let reloaded = service.reload(read).await;
        if kubeconfig_paths(&service) != kubeconfigs {
            // Other files are watched now: their content is the new baseline.
            seen = watched(&service, &path).await;
        }
        let Some(report) = reloaded else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    /// An endless file at the config's path (a FIFO fed without end) costs
    /// one bounded read: the poll returns rather than filling memory.
    #[tokio::test]
    async fn an_endless_file_is_read_only_to_the_size_bound() {
        let dir = std::env::temp_dir().join(format!("nspool-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("config.yaml");
        let _ = std::fs::remove_file(&fifo);
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo touches nothing else.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let writer_path = fifo.clone();
        let writer = std::thread::spawn(move || {
            let mut pipe = std::fs::OpenOptions::new()
                .write(true)
                .open(writer_path)
                .unwrap();
            let chunk = vec![b'a'; 1 << 20];
            let mut written = 0usize;
            // Ends when the reader closes its end (EPIPE).
            while pipe.write_all(&chunk).is_ok() {
                written += chunk.len();
            }
            written
        });
        let hash = tokio::time::timeout(Duration::from_secs(30), fingerprint(&fifo))
            .await
            .expect("a bounded read");
        assert!(hash.is_some());
        let written = writer.join().unwrap();
        // What the writer got in: the bound plus what the pipe buffered.
        assert!(written <= MAX_CONFIG_BYTES + (4 << 20), "{written}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
