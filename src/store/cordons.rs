//! Cordons: one namespace, or the whole pool, kept out of what is offered.
//! Each change and its event are one statement; a change of what is offered
//! comes back with its pool generation, for the writer to read its own write.

use super::pool::{ClusterOffer, PoolCordonRow, PoolOffer, pool_cordoned};
use super::{Result, Store};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The advisory lock (two keys: a class, and the cluster's id hashed) that
/// orders a cluster's claims and its pool cordon (`$1`: the cluster id).
const CORDON_LOCK: &str = "hashtext('nspool.pool_cordon'), hashtext($1::text)";

/// Before a claim's statement, in its transaction: waits while the
/// cluster's pool cordon is being written, so the claim's statement (its
/// snapshot taken after) sees a cordon that committed meanwhile. Shared:
/// claims never wait for each other here. Transaction-scoped, so it holds
/// through PgBouncer in transaction mode.
pub(super) async fn claim_barrier(tx: &mut sqlx::PgConnection, cluster: Uuid) -> Result<()> {
    sqlx::query(&format!(
        "select pg_advisory_xact_lock_shared({CORDON_LOCK})"
    ))
    .bind(cluster)
    .execute(tx)
    .await?;
    Ok(())
}

/// What a cordon or uncordon of one namespace changed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CordonChange {
    /// The pool generation the change committed as (none when what is
    /// offered did not change: a held namespace, say).
    pub generation: Option<i64>,
}

/// A cluster's offer and its pool cordon's columns (null when it does not hold).
#[derive(sqlx::FromRow)]
struct OfferRow {
    id: Uuid,
    no: i32,
    names: Vec<String>,
    reason: Option<String>,
    cordoned_by: Option<String>,
    cordoned_at: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

/// What the expiry sweep lifted.
#[derive(Debug, Clone, Default)]
pub struct ExpiredCordons {
    pub namespaces: Vec<String>,
    /// Clusters whose pool cordon ended.
    pub pools: Vec<Uuid>,
}

impl Store {
    /// Cordons `name` (again: the reason, actor and end are replaced).
    /// `None`: no such namespace in the pool, or it is retired.
    pub async fn cordon_namespace(
        &self,
        cluster: Uuid,
        name: &str,
        reason: &str,
        until: Option<DateTime<Utc>>,
        actor: &str,
    ) -> Result<Option<CordonChange>> {
        Ok(sqlx::query_as(
            "with u as (
                update pool_namespaces
                set cordon_reason = $2, cordoned_by = $4, cordoned_at = now(), cordon_until = $3
                where cluster_id = $5 and name = $1 and retired_at is null
                returning name, nspool_own_generation(generation) as generation
             ), e as (
                insert into events (kind, cluster_id, namespace, actor, reason)
                select 'cordon', $5, name, $4,
                       $2 || case when $3::timestamptz is null then ''
                                  else ' (until ' || to_char($3::timestamptz at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') || ')' end
                from u
             )
             select generation from u",
        )
        .bind(name)
        .bind(reason)
        .bind(until)
        .bind(actor)
        .bind(cluster)
        .fetch_optional(&mut *self.conn().await?)
        .await?)
    }

    /// Lifts the cordon of `name`. `None`: not a cordoned pool namespace.
    pub async fn uncordon_namespace(
        &self,
        cluster: Uuid,
        name: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Option<CordonChange>> {
        Ok(sqlx::query_as(
            "with u as (
                update pool_namespaces
                set cordon_reason = null, cordoned_by = null, cordoned_at = null, cordon_until = null
                where cluster_id = $4 and name = $1 and cordoned_at is not null
                returning name, nspool_own_generation(generation) as generation
             ), e as (
                insert into events (kind, cluster_id, namespace, actor, reason) select 'uncordon', $4, name, $2, $3 from u
             )
             select generation from u",
        )
        .bind(name)
        .bind(actor)
        .bind(reason)
        .bind(cluster)
        .fetch_optional(&mut *self.conn().await?)
        .await?)
    }

    /// Cordons the whole pool (again: reason, actor and end replaced). The
    /// generation is the reload every replica makes of its copy.
    ///
    /// A barrier of the cluster's own: it first takes the cluster's cordon
    /// lock (a transaction-scoped advisory lock) exclusively, which waits for
    /// every claim in that cluster under way (each holds it shared: see
    /// [`claim_barrier`]) to end, and holds new ones back until the cordon
    /// is committed; their claim statement takes its snapshot after the
    /// lock, so it sees the cordon. No claim in the cluster passes once this
    /// has answered; claims in other clusters never wait for it.
    pub async fn cordon_pool(
        &self,
        cluster: Uuid,
        reason: &str,
        until: Option<DateTime<Utc>>,
        actor: &str,
    ) -> Result<i64> {
        let mut tx = self.begin().await?;
        sqlx::query(&format!("select pg_advisory_xact_lock({CORDON_LOCK})"))
            .bind(cluster)
            .execute(&mut *tx)
            .await?;
        let generation = sqlx::query_scalar(
            "with c as (
                insert into pool_cordon (cluster_id, reason, cordoned_by, until) values ($4, $1, $3, $2)
                on conflict (cluster_id) do update
                    set reason = excluded.reason, cordoned_by = excluded.cordoned_by,
                        cordoned_at = now(), until = excluded.until
                returning reason
             ), e as (
                insert into events (kind, cluster_id, actor, reason) select 'cordon_pool', $4, $3, reason from c
             )
             select nspool_pool_generation()",
        )
        .bind(reason)
        .bind(until)
        .bind(actor)
        .bind(cluster)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(generation)
    }

    /// Lifts the pool cordon. `None`: the pool was not cordoned.
    pub async fn uncordon_pool(
        &self,
        cluster: Uuid,
        actor: &str,
        reason: &str,
    ) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "with c as (
                delete from pool_cordon where cluster_id = $3 returning cluster_id
             ), e as (
                insert into events (kind, cluster_id, actor, reason) select 'uncordon_pool', cluster_id, $1, $2 from c
             )
             select nspool_pool_generation() from c",
        )
        .bind(actor)
        .bind(reason)
        .bind(cluster)
        .fetch_optional(&mut *self.conn().await?)
        .await?)
    }

    /// The pool cordon, while it holds.
    pub async fn pool_cordon(&self, cluster: Uuid) -> Result<Option<PoolCordonRow>> {
        Ok(sqlx::query_as(
            "select reason, cordoned_by, cordoned_at, until from pool_cordon
             where cluster_id = $1 and (until is null or until > now())",
        )
        .bind(cluster)
        .fetch_optional(&mut *self.conn().await?)
        .await?)
    }

    /// Every cluster's offered names and pool cordon, read in one statement
    /// (one snapshot): what the in-memory copy loads. `cluster`: that one
    /// cluster only (a read that cannot use the copy).
    pub async fn pool_offer(&self, cluster: Option<Uuid>) -> Result<PoolOffer> {
        let sql = format!(
            "select k.id, k.no,
                    array(select name from pool_namespaces p where p.cluster_id = k.id and {}
                          order by name) as names,
                    c.reason, c.cordoned_by, c.cordoned_at, c.until
             from clusters k
             left join pool_cordon c on c.cluster_id = k.id and {}
             where k.retired_at is null and ($1::uuid is null or k.id = $1)
             order by k.no",
            super::pool::OFFERED,
            pool_cordoned("k.id"),
        );
        let rows: Vec<OfferRow> = sqlx::query_as(&sql)
            .bind(cluster)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        let clusters = rows
            .into_iter()
            .map(|row| {
                let cordon = match (row.reason, row.cordoned_by, row.cordoned_at) {
                    (Some(reason), Some(cordoned_by), Some(cordoned_at)) => Some(PoolCordonRow {
                        reason,
                        cordoned_by,
                        cordoned_at,
                        until: row.until,
                    }),
                    _ => None,
                };
                ClusterOffer {
                    id: row.id,
                    no: row.no,
                    names: row.names,
                    cordon,
                }
            })
            .collect();
        Ok(PoolOffer { clusters })
    }

    /// Lifts every cordon whose end has passed, each with its event.
    pub async fn expire_cordons(&self, actor: &str) -> Result<ExpiredCordons> {
        let mut tx = self.begin().await?;
        let namespaces: Vec<(String,)> = sqlx::query_as(
            "with u as (
                update pool_namespaces
                set cordon_reason = null, cordoned_by = null, cordoned_at = null, cordon_until = null
                where cordon_until <= now()
                returning cluster_id, name
             ), e as (
                insert into events (kind, cluster_id, namespace, actor, reason)
                select 'uncordon', cluster_id, name, $1, 'the cordon''s end (until) passed' from u
             )
             select name from u order by name",
        )
        .bind(actor)
        .fetch_all(&mut *tx)
        .await?;
        let pools: Vec<Uuid> = sqlx::query_scalar(
            "with c as (
                delete from pool_cordon where until <= now() returning cluster_id
             ), e as (
                insert into events (kind, cluster_id, actor, reason)
                select 'uncordon_pool', cluster_id, $1, 'the cordon''s end (until) passed' from c
             )
             select cluster_id from c",
        )
        .bind(actor)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ExpiredCordons {
            namespaces: namespaces.into_iter().map(|(n,)| n).collect(),
            pools,
        })
    }
}
