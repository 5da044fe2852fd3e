use super::{Result, Store};
use chrono::{DateTime, Utc};
use serde_json::Value;
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
    /// How often another replica took the run over (its replica had died).
    pub taken_over: i32,
}

const RUN_COLUMNS: &str =
    "id, scheduled_for, trigger, replica, older_than_days, dry_run, started_at,
    finished_at, reclaimed, errors, would_reclaim, taken_over";

/// Why a run could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStart {
    Started(i64),
    /// Another replica has this scheduled tick.
    TickTaken,
    /// Another run is unfinished (and its lease is live, or it is taken over).
    Busy,
}

/// A run to start, with the lease its replica takes on it.
pub struct NewRun<'a> {
    /// The scheduled tick (`None`: a run by hand).
    pub tick: Option<DateTime<Utc>>,
    pub replica: &'a str,
    pub older_than_days: u32,
    pub dry_run: bool,
    pub holder: &'a str,
    pub lease: Duration,
}

impl Store {
    /// Starts a run holding its lease, unless another run is unfinished (the
    /// unique index `reclaim_runs_one_running`) or the tick is taken.
    pub async fn start_run(&self, run: &NewRun<'_>) -> Result<RunStart> {
        let mut conn = self.conn().await?;
        let id: Option<i64> = sqlx::query_scalar(
            // The `where` spares an attempt that would conflict its row (and
            // an id): a waiting run asks every 200 ms. The unique indexes
            // still decide a race.
            "insert into reclaim_runs (scheduled_for, trigger, replica, older_than_days, dry_run,
                                       holder, lease_expires_at)
             select $1, case when $1 is null then 'manual' else 'schedule' end, $2, $3, $4,
                    $5, now() + make_interval(secs => $6)
             where not exists (select 1 from reclaim_runs where finished_at is null)
               and ($1::timestamptz is null
                    or not exists (select 1 from reclaim_runs where scheduled_for = $1))
             on conflict do nothing
             returning id",
        )
        .bind(run.tick)
        .bind(run.replica)
        .bind(run.older_than_days as i32)
        .bind(run.dry_run)
        .bind(run.holder)
        .bind(run.lease.as_secs_f64())
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(id) = id {
            return Ok(RunStart::Started(id));
        }
        let taken: bool = sqlx::query_scalar(
            "select exists (select 1 from reclaim_runs where scheduled_for = $1)",
        )
        .bind(run.tick)
        .fetch_one(&mut *conn)
        .await?;
        Ok(if taken {
            RunStart::TickTaken
        } else {
            RunStart::Busy
        })
    }

    /// Records a tick that did not run (another run went on too long), as
    /// a finished row, so no other replica runs it either; `false` when
    /// another replica has the tick.
    pub async fn skip_tick(&self, run: &NewRun<'_>, why: &str) -> Result<bool> {
        let done = sqlx::query(
            "insert into reclaim_runs (scheduled_for, trigger, replica, older_than_days, dry_run,
                                       finished_at, errors)
             values ($1, 'schedule', $2, $3, $4, now(), $5)
             on conflict do nothing",
        )
        .bind(run.tick)
        .bind(run.replica)
        .bind(run.older_than_days as i32)
        .bind(run.dry_run)
        .bind(why)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Renews run `id`'s lease for `holder`: `false` when it is not theirs
    /// any more (taken over, or finished).
    pub async fn renew_run_lease(&self, id: i64, holder: &str, lease: Duration) -> Result<bool> {
        let renewed: Option<i64> = sqlx::query_scalar(
            "update reclaim_runs set lease_expires_at = now() + make_interval(secs => $3)
             where id = $1 and holder = $2 and finished_at is null returning id",
        )
        .bind(id)
        .bind(holder)
        .bind(lease.as_secs_f64())
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        Ok(renewed.is_some())
    }

    /// Takes over the unfinished run whose lease expired (its replica died
    /// or was cut off), if there is one: `holder` holds it now.
    pub async fn take_over_dead_run(
        &self,
        holder: &str,
        replica: &str,
        lease: Duration,
    ) -> Result<Option<ReclaimRunRow>> {
        let sql = format!(
            "update reclaim_runs
                set holder = $1, replica = $2, taken_over = taken_over + 1,
                    lease_expires_at = now() + make_interval(secs => $3)
              where finished_at is null and (lease_expires_at is null or lease_expires_at < now())
              returning {RUN_COLUMNS}"
        );
        Ok(sqlx::query_as(&sql)
            .bind(holder)
            .bind(replica)
            .bind(lease.as_secs_f64())
            .fetch_optional(&mut *self.conn().await?)
            .await?)
    }

    /// Finishes run `id` if `holder` still holds it; the count is the row's
    /// own (each reclaim added to it in its statement). `None` when the run
    /// was not `holder`'s any more.
    pub async fn finish_run(
        &self,
        id: i64,
        holder: &str,
        errors: Option<&str>,
        would_reclaim: Option<&Value>,
    ) -> Result<Option<i32>> {
        Ok(sqlx::query_scalar(
            "update reclaim_runs set finished_at = now(), errors = $3, would_reclaim = $4,
                    lease_expires_at = null
             where id = $1 and holder = $2 and finished_at is null
             returning reclaimed",
        )
        .bind(id)
        .bind(holder)
        .bind(errors)
        .bind(would_reclaim)
        .fetch_optional(&mut *self.conn().await?)
        .await?)
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
}
