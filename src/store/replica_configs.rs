//! Which pool config each serving replica asks for (migration
//! `20261203000005_replica_configs`): heartbeats, and what the pool sync
//! reads to hold back a config that would flip the pool under another
//! replica.

use super::{Result, Store};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// A replica counts as live while its heartbeat is this recent.
pub const LIVE_SECONDS: f64 = 30.0;

/// One live replica's ask.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReplicaConfig {
    pub replica: String,
    pub wanted: String,
    pub in_force: bool,
    pub seen_at: DateTime<Utc>,
}

impl Store {
    /// This replica is alive and asks for the pool listing `wanted`.
    pub async fn replica_heartbeat(
        &self,
        replica: &str,
        wanted: &str,
        in_force: bool,
    ) -> Result<()> {
        sqlx::query(
            "insert into replica_configs (replica, wanted, in_force) values ($1, $2, $3)
             on conflict (replica) do update
                set wanted = excluded.wanted, in_force = excluded.in_force, seen_at = now()",
        )
        .bind(replica)
        .bind(wanted)
        .bind(in_force)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    /// A clean stop: this replica asks for nothing any more.
    pub async fn forget_replica(&self, replica: &str) -> Result<()> {
        sqlx::query("delete from replica_configs where replica = $1")
            .bind(replica)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    /// The live replicas and what they ask for; stale rows are removed.
    pub async fn live_replica_configs(&self) -> Result<Vec<ReplicaConfig>> {
        let mut conn = self.conn().await?;
        sqlx::query(
            "delete from replica_configs
             where seen_at < now() - make_interval(secs => $1 * 10)",
        )
        .bind(LIVE_SECONDS)
        .execute(&mut *conn)
        .await?;
        Ok(sqlx::query_as(
            "select replica, wanted, in_force, seen_at from replica_configs
             where seen_at > now() - make_interval(secs => $1)
             order by replica",
        )
        .bind(LIVE_SECONDS)
        .fetch_all(&mut *conn)
        .await?)
    }

    /// The pool listing in force (its fingerprint), if any sync recorded one.
    pub async fn pool_config_in_force(&self) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("select fingerprint from pool_config")
            .fetch_optional(&mut *self.conn().await?)
            .await?)
    }
}

/// Within the sync's transaction: another live replica that still asks for
/// the listing in force, when `fingerprint` differs from it (the sync is
/// then held back); `None` when the sync may go on.
pub(super) async fn holding_back(
    tx: &mut PgConnection,
    fingerprint: &str,
    replica: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "select r.replica from pool_config c
         join replica_configs r on r.wanted = c.fingerprint
         where c.fingerprint <> $1 and r.replica <> $2
           and r.seen_at > now() - make_interval(secs => $3)
         order by r.seen_at desc limit 1",
    )
    .bind(fingerprint)
    .bind(replica)
    .bind(LIVE_SECONDS)
    .fetch_optional(&mut *tx)
    .await?)
}

/// Within the sync's transaction: `fingerprint` is the listing in force now.
pub(super) async fn record_in_force(
    tx: &mut PgConnection,
    fingerprint: &str,
    replica: &str,
) -> Result<()> {
    sqlx::query(
        "insert into pool_config (fingerprint, applied_by) values ($1, $2)
         on conflict (id) do update set fingerprint = excluded.fingerprint,
                applied_by = excluded.applied_by, applied_at = now()
         where pool_config.fingerprint <> excluded.fingerprint",
    )
    .bind(fingerprint)
    .bind(replica)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
