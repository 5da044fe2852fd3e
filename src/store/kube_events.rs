//! The event log entries still to be told to Kubernetes, and what came of
//! each try (migration `20261202000002_kube_events`).

use super::{Result, Store};
use chrono::{DateTime, Utc};

/// Tries per entry before it is given up (a namespace without the
/// `nspool-events` binding, say: each try is a warning in the log). With
/// the backoff below they span the hour an entry may be posted in, so an API
/// server down for minutes loses no Event.
pub const MAX_ATTEMPTS: i32 = 16;
/// The wait after a first failed try; it doubles with each try, up to
/// [`MAX_RETRY_WAIT_SECONDS`].
pub const FIRST_RETRY_WAIT_SECONDS: i32 = 5;
pub const MAX_RETRY_WAIT_SECONDS: i32 = 300;

/// One log entry about a pool namespace, with what the namespace's previous
/// RBAC check said (to tell a repair from a first check).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LoggedEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub namespace: String,
    pub release_name: Option<String>,
    pub actor: String,
    pub reason: Option<String>,
    pub previous_reason: Option<String>,
}

impl Store {
    /// Up to `limit` entries of `kinds`, younger than an hour, not posted,
    /// tried fewer than [`MAX_ATTEMPTS`] times and not waiting out their
    /// backoff (5 s after a first failure, doubling, at most 5 minutes),
    /// oldest first.
    /// Only entries about `cluster`'s namespaces.
    pub async fn events_to_post(
        &self,
        cluster: uuid::Uuid,
        kinds: &[&str],
        limit: i64,
    ) -> Result<Vec<LoggedEvent>> {
        Ok(sqlx::query_as(
            "select e.id, e.at, e.kind, e.namespace, e.release_name, e.actor, e.reason,
                    case when e.kind = 'rbac_check' then (
                        select p.reason from events p
                        where p.cluster_id = e.cluster_id and p.namespace = e.namespace and p.kind = 'rbac_check' and p.id < e.id
                        order by p.id desc limit 1
                    ) end as previous_reason
             from events e left join kube_event_posts t on t.event_id = e.id
             where e.at > now() - interval '1 hour' and e.namespace is not null and e.cluster_id = $6
               and e.kind = any($1)
               and t.posted_at is null and coalesce(t.attempts, 0) < $2
               and (t.event_id is null
                    or t.attempted_at <= now() - make_interval(secs => least(
                           $4::float8 * power(2, t.attempts - 1), $5::float8)))
             order by e.id limit $3",
        )
        .bind(kinds)
        .bind(MAX_ATTEMPTS)
        .bind(limit)
        .bind(f64::from(FIRST_RETRY_WAIT_SECONDS))
        .bind(f64::from(MAX_RETRY_WAIT_SECONDS))
        .bind(cluster)
        .fetch_all(&mut *self.conn().await?)
        .await?)
    }

    /// What came of posting entry `id`: posted (`error` none) or one more
    /// failed try, its text kept to [`super::MAX_ERROR_CHARS`].
    pub async fn record_event_post(&self, id: i64, error: Option<&str>) -> Result<()> {
        sqlx::query(
            "insert into kube_event_posts (event_id, posted_at, error)
             values ($1, case when $2::text is null then now() end, left($2, 1024))
             on conflict (event_id) do update
                set attempts = kube_event_posts.attempts + 1, attempted_at = now(),
                    posted_at = excluded.posted_at, error = excluded.error",
        )
        .bind(id)
        .bind(error)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    /// Forgets tries of entries too old to be posted any more.
    pub async fn forget_old_event_posts(&self) -> Result<u64> {
        Ok(sqlx::query(
            "delete from kube_event_posts where attempted_at < now() - interval '2 hours'",
        )
        .execute(&mut *self.conn().await?)
        .await?
        .rows_affected())
    }
}
