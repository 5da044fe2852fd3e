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
            let ended = tokio::select! {
                ended = self.listening_session(&mut failures) => ended,
                _ = stop.wait_for(|s| *s) => Ended::Stopped,
            };
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

    async fn listening_session(&self, failures: &mut usize) -> Ended {
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
        loop {
            let notice = tokio::select! {
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
                            match self.store.notify_pool_marker(POOL_CHANNEL, &marker).await {
                                Ok(()) => awaited = Some((marker, tokio::time::Instant::now())),
                                // Every pooled connection is busy (requests
                                // waiting on the database): that says nothing
                                // of the LISTEN connection, and dropping the
                                // copy now would send every read to the busy
                                // database. The next beat tries again.
                                Err(crate::store::Error::Unavailable(sqlx::Error::PoolTimedOut)) => {
                                    tracing::debug!("no pooled connection for the heartbeat; skipped");
                                }
                                Err(error) => return Ended::Lost(error.to_string()),
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

    /// Reads the offered set and the pool cordon, then sends the marker from
    /// which the copy serves.
    async fn load_snapshot(&self) -> Result<(), String> {
        let read_at = std::time::Instant::now();
        let offer = self.store.pool_offer().await.map_err(|e| e.to_string())?;
        tracing::debug!(
            offered = offer.names.len(),
            pool_cordoned = offer.cordon.is_some(),
            "pool snapshot loaded"
        );
        let marker = uuid::Uuid::new_v4().simple().to_string();
        self.snapshot
            .load(offer.names, offer.cordon.is_some(), read_at, marker.clone());
        self.store
            .notify_pool_marker(POOL_CHANNEL, &marker)
            .await
            .map_err(|e| e.to_string())
    }
}
