//! Keeps this replica's pool snapshot and token cache in step with every
//! replica's writes: one LISTEN connection (straight to PostgreSQL: through
//! PgBouncer in transaction mode a LISTEN is lost), then a load of the
//! snapshot, then every notice applied in order. A gap, an unreadable
//! notice or a lost connection drops what is in memory (reads go to the
//! database) until the listener is back and has loaded again.

use super::PoolService;
use super::snapshot::{Applied, Message};
use sqlx::postgres::{PgListener, PgNotification};
use std::time::Duration;
use tokio::sync::watch;

pub const POOL_CHANNEL: &str = "nspool_pool";
pub const TOKENS_CHANNEL: &str = "nspool_tokens";

/// Waits between attempts to get the listener back (doubling up to the last).
const RETRY: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(2),
    Duration::from_secs(5),
];

/// How often the listener proves its connection alive: a marker sent
/// through the pool must come back on the LISTEN connection within
/// [`HEARTBEAT_LOST`], else the connection counts as lost (a connection that
/// died without a word would otherwise leave the copy stale).
const HEARTBEAT: Duration = Duration::from_secs(2);
/// Three beats: a busy database is not a lost connection.
const HEARTBEAT_LOST: Duration = Duration::from_secs(6);
/// How often the copy is compared with the database, whatever changed it (a
/// `pg_restore`, a write with triggers off): a difference seen twice,
/// [`COPY_RECHECK`] apart, loads the copy again. So a copy that differs is
/// healed within about half a minute.
pub const COPY_CHECK: Duration = Duration::from_secs(20);
const COPY_RECHECK: Duration = Duration::from_secs(3);

/// Why one listening session ended.
enum Ended {
    Stopped,
    Lost(String),
}

impl PoolService {
    /// Runs until `stop` turns true.
    pub async fn listen(&self, mut stop: watch::Receiver<bool>) {
        let mut failures = 0usize;
        loop {
            if *stop.borrow() {
                break;
            }
            // The session itself watches `stop`, so a stop never cuts a
            // statement short (a connection dropped mid-statement is a
            // broken pipe in the server's log) and the LISTEN ends cleanly.
            let ended = self.listening_session(&mut failures, &mut stop).await;
            self.snapshot.drop_all();
            self.tokens.set_live(false);
            match ended {
                Ended::Stopped => break,
                Ended::Lost(error) => {
                    let wait = RETRY[failures.min(RETRY.len() - 1)];
                    failures += 1;
                    tracing::warn!(%error, retry_in = ?wait, "pool listener lost its connection; reading the pool and tokens from the database meanwhile");
                    self.metrics.listener_reconnect();
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {},
                        _ = stop.wait_for(|s| *s) => break,
                    }
                }
            }
        }
    }

    async fn listening_session(
        &self,
        failures: &mut usize,
        stop: &mut watch::Receiver<bool>,
    ) -> Ended {
        let mut listener = match PgListener::connect_with(self.store.direct()).await {
            Ok(listener) => listener,
            Err(error) => return Ended::Lost(error.to_string()),
        };
        if let Err(error) = listener
            .listen_all([POOL_CHANNEL, TOKENS_CHANNEL, crate::store::SYNC_CHANNEL])
            .await
        {
            return Ended::Lost(error.to_string());
        }
        // Listening from here on: nothing committed from now is missed.
        self.tokens.set_live(true);
        if let Err(error) = self.load_snapshot().await {
            return Ended::Lost(error);
        }
        *failures = 0;
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The heartbeat marker sent and not yet seen back, and when.
        let mut awaited: Option<(String, tokio::time::Instant)> = None;
        // When a heartbeat was last sent (or the session began).
        let mut last_sent = tokio::time::Instant::now();
        let mut check =
            tokio::time::interval_at(tokio::time::Instant::now() + COPY_CHECK, COPY_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A difference seen once, to be seen again before the copy is reloaded.
        let mut recheck: Option<tokio::time::Instant> = None;
        loop {
            let recheck_due = async {
                match recheck {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let notice = tokio::select! {
                () = async { let _ = stop.wait_for(|s| *s).await; } => {
                    // No notification is sent to this connection any more.
                    let _ = tokio::time::timeout(HEARTBEAT, listener.unlisten_all()).await;
                    return Ended::Stopped;
                }
                _ = check.tick() => {
                    if self.copy_differs().await {
                        recheck = Some(tokio::time::Instant::now() + COPY_RECHECK);
                    }
                    continue;
                }
                () = recheck_due => {
                    recheck = None;
                    if self.copy_differs().await {
                        tracing::warn!("this replica's pool copy differs from the database (a write that bypassed the change notices?); loading it again");
                        self.metrics.copy_repaired();
                        if let Err(error) = self.load_snapshot().await {
                            return Ended::Lost(error);
                        }
                    }
                    continue;
                }
                notice = listener.try_recv() => notice,
                () = self.snapshot.reload_requested() => {
                    if let Err(error) = self.load_snapshot().await {
                        return Ended::Lost(error);
                    }
                    continue;
                }
                _ = beat.tick() => {
                    match &awaited {
                        Some((_, sent)) if sent.elapsed() > HEARTBEAT_LOST => {
                            return Ended::Lost(format!("no heartbeat back within {HEARTBEAT_LOST:?}"));
                        }
                        Some(_) => {}
                        None => {
                            let marker = format!("beat-{}", uuid::Uuid::new_v4().simple());
                            // On a session connection: busy request
                            // connections never keep the beat from going out.
                            match self.store.notify_pool_marker_direct(POOL_CHANNEL, &marker).await {
                                Ok(()) => {
                                    awaited = Some((marker, tokio::time::Instant::now()));
                                    last_sent = tokio::time::Instant::now();
                                }
                                // Unchecked for longer than a lost beat: the
                                // copy cannot be trusted, whatever the cause.
                                Err(_) if last_sent.elapsed() > HEARTBEAT_LOST => {
                                    return Ended::Lost(format!("no heartbeat sent within {HEARTBEAT_LOST:?}"));
                                }
                                Err(error) => {
                                    tracing::debug!(%error, "the heartbeat could not be sent; the next beat tries again");
                                }
                            }
                        }
                    }
                    continue;
                }
            };
            match notice {
                Ok(Some(notice)) => {
                    if let Some(marker) = notice.payload().strip_prefix("sync ")
                        && awaited.as_ref().is_some_and(|(m, _)| m == marker)
                    {
                        awaited = None;
                        continue;
                    }
                    if let Err(error) = self.take_notice(&notice).await {
                        return Ended::Lost(error);
                    }
                }
                Ok(None) => return Ended::Lost("the connection was closed".into()),
                Err(error) => return Ended::Lost(error.to_string()),
            }
        }
    }

    async fn take_notice(&self, notice: &PgNotification) -> Result<(), String> {
        match notice.channel() {
            crate::store::SYNC_CHANNEL => {
                self.log_others_sync(notice.payload());
                Ok(())
            }
            TOKENS_CHANNEL => {
                let mut hash = [0u8; 32];
                match hex::decode_to_slice(notice.payload(), &mut hash) {
                    Ok(()) => self.tokens.evict(&hash),
                    // Not ours to read: forget every token rather than guess.
                    Err(_) => self.tokens.set_live(true),
                }
                Ok(())
            }
            _ => {
                let applied = match Message::parse(notice.payload()) {
                    Some(message) => self.snapshot.apply(&message),
                    // Not a notice nspool writes: trust nothing in memory.
                    None => {
                        self.snapshot.drop_all();
                        Applied::Reload
                    }
                };
                if applied == Applied::Reload {
                    self.metrics.snapshot_reload();
                    self.load_snapshot().await?;
                }
                Ok(())
            }
        }
    }

    /// Another replica's pool sync (its start, or a reload): said in this
    /// replica's log too, so whoever reads one replica's log sees the pool
    /// change under it.
    fn log_others_sync(&self, payload: &str) {
        let Ok(notice) = serde_json::from_str::<crate::store::SyncNotice>(payload) else {
            return;
        };
        if notice.by.ends_with(&format!(" on {}", self.instance)) {
            return;
        }
        let report = &notice.report;
        tracing::info!(
            by = %notice.by,
            added = ?report.added,
            restored = ?report.restored,
            retired = ?report.retired,
            adopted = ?report.adopted,
            more = notice.more,
            "another replica synced the pool to its config"
        );
    }

    /// Whether the copy, while it serves, differs from what the database
    /// offers now (a read that fails says nothing: the heartbeat watches the
    /// connection).
    async fn copy_differs(&self) -> bool {
        let Some((mine_count, mine)) = self.snapshot.digest() else {
            return false;
        };
        let Ok((count, digest)) = self.store.offered_digest().await else {
            return false;
        };
        mine_count != count || mine != digest
    }

    /// Reads the offered set and the pool cordon, then sends the marker from
    /// which the copy serves.
    async fn load_snapshot(&self) -> Result<(), String> {
        let read_at = std::time::Instant::now();
        let offer = self
            .store
            .pool_offer(None)
            .await
            .map_err(|e| e.to_string())?;
        tracing::debug!(
            offered = offer.clusters.iter().map(|c| c.names.len()).sum::<usize>(),
            clusters = offer.clusters.len(),
            "pool snapshot loaded"
        );
        let marker = uuid::Uuid::new_v4().simple().to_string();
        let clusters = offer
            .clusters
            .into_iter()
            .map(|c| super::snapshot::LoadedCluster {
                id: c.id,
                no: c.no,
                cordoned: c.cordon.is_some(),
                names: c.names,
            })
            .collect();
        self.snapshot.load(clusters, read_at, marker.clone());
        self.store
            .notify_pool_marker(POOL_CHANNEL, &marker)
            .await
            .map_err(|e| e.to_string())
    }
}
