use super::{Result, Store};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use std::time::Duration;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReclaimRunRow {
    pub id: i64,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub trigger: String,
    pub replica: String,
    pub older_than_days: i32,
    pub dry_run: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub reclaimed: i32,
    pub errors: Option<String>,
    pub would_reclaim: Option<Value>,
}

const RUN_COLUMNS: &str =
    "id, scheduled_for, trigger, replica, older_than_days, dry_run, started_at,
    finished_at, reclaimed, errors, would_reclaim";

/// A session advisory lock held on a connection of its own. Dropping it
/// (also while unwinding from a panic) closes that connection, and the server
/// releases the lock.
pub struct HeldLock {
    connection: PgConnection,
}

impl HeldLock {
    /// Whether the lock's connection still answers (the lock is held while it does).
    pub async fn alive(&mut self) -> bool {
        self.connection.ping().await.is_ok()
    }
}

/// Keeps reclaim runs from overlapping.
pub type ReclaimLock = HeldLock;

/// The advisory lock key of reclaim runs (`hashtext('nspool.reclaim')` would
/// do, but a constant reads plainly in `pg_locks`).
const RECLAIM_LOCK_KEY: i64 = 0x6e73_706f_6f6c_0001;

impl Store {
    /// Claims a scheduled tick; `None` when another replica already has it.
    pub async fn claim_scheduled_run(
        &self,
        tick: DateTime<Utc>,
        replica: &str,
        older_than_days: u32,
        dry_run: bool,
    ) -> Result<Option<i64>> {
        let id = sqlx::query_scalar(
            "insert into reclaim_runs (scheduled_for, trigger, replica, older_than_days, dry_run)
             values ($1, 'schedule', $2, $3, $4)
             on conflict (scheduled_for) do nothing
             returning id",
        )
        .bind(tick)
        .bind(replica)
        .bind(older_than_days as i32)
        .bind(dry_run)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        Ok(id)
    }

    pub async fn start_manual_run(
        &self,
        replica: &str,
        older_than_days: u32,
        dry_run: bool,
    ) -> Result<i64> {
        let id = sqlx::query_scalar(
            "insert into reclaim_runs (trigger, replica, older_than_days, dry_run)
             values ('manual', $1, $2, $3) returning id",
        )
        .bind(replica)
        .bind(older_than_days as i32)
        .bind(dry_run)
        .fetch_one(&mut *self.conn().await?)
        .await?;
        Ok(id)
    }

    pub async fn finish_run(
        &self,
        id: i64,
        reclaimed: usize,
        errors: Option<&str>,
        would_reclaim: Option<&Value>,
    ) -> Result<()> {
        sqlx::query(
            "update reclaim_runs set finished_at = now(), reclaimed = $2, errors = $3, would_reclaim = $4
             where id = $1",
        )
        .bind(id)
        .bind(reclaimed as i32)
        .bind(errors)
        .bind(would_reclaim)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    pub async fn reclaim_runs(&self, last: i64) -> Result<Vec<ReclaimRunRow>> {
        let sql = format!(
            "select {RUN_COLUMNS} from reclaim_runs order by started_at desc, id desc limit $1"
        );
        Ok(sqlx::query_as(&sql)
            .bind(last)
            .fetch_all(&mut *self.conn().await?)
            .await?)
    }

    /// Waits up to `wait` for the reclaim lock; `None` when it stayed taken.
    pub async fn reclaim_lock(&self, wait: Duration) -> Result<Option<ReclaimLock>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(lock) = self.try_session_lock(RECLAIM_LOCK_KEY).await? {
                return Ok(Some(lock));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Tries a session advisory lock on a direct connection of its own
    /// (through PgBouncer in transaction mode it would be lost at once).
    pub(super) async fn try_session_lock(&self, key: i64) -> Result<Option<HeldLock>> {
        let mut connection = self.direct.acquire().await?.detach();
        let got: bool = sqlx::query_scalar("select pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut connection)
            .await?;
        if got {
            Ok(Some(HeldLock { connection }))
        } else {
            let _ = connection.close().await;
            Ok(None)
        }
    }
}
