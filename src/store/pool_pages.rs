//! The pool view a page at a time, for the dashboard: one page of namespaces
//! (by name) and how many match a search, so that a page costs the same on
//! a pool of 100,000 as on one of 10; and the pool cluster by cluster (its
//! counts by state, pool cordons, reachability) for the dashboard's summary
//! and `/metrics`.

use super::deployments::like_literal;
use super::pool::POOL_COLUMNS;
use super::{ClusterRow, PoolCordonRow, PoolNamespaceRow, PoolStateCounts, Result, Store};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// A search matches a namespace's name, or its holder's release name,
/// label, or workspace label, case-insensitively and as written (LIKE's
/// wildcards in it match only themselves).
const MATCHES: &str = "($1::text is null
    or p.name ilike '%' || $1 || '%'
    or exists (select 1 from deployments d join workspaces w on w.id = d.workspace_id
               where d.id = p.holder_deployment_id
                 and (d.release_name ilike '%' || $1 || '%' or d.label ilike '%' || $1 || '%'
                      or w.label ilike '%' || $1 || '%')))";

impl Store {
    /// At most `limit` namespaces matching `search` (all when `None`), by
    /// name, from the `offset`-th on.
    pub async fn pool_page(
        &self,
        cluster: Option<uuid::Uuid>,
        search: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<PoolNamespaceRow>> {
        let sql = format!(
            "select {POOL_COLUMNS} from pool_namespaces p join clusters k on k.id = p.cluster_id
             where ($4::uuid is null or p.cluster_id = $4) and {MATCHES}
             order by k.no, p.name limit $2 offset $3"
        );
        Ok(sqlx::query_as(&sql)
            .bind(search.map(like_literal))
            .bind(limit)
            .bind(offset)
            .bind(cluster)
            .fetch_all(&mut *self.conn().await?)
            .await?)
    }

    /// How many namespaces match `search` (all when `None`).
    pub async fn pool_matches(
        &self,
        cluster: Option<uuid::Uuid>,
        search: Option<&str>,
    ) -> Result<i64> {
        let sql = format!(
            "select count(*) from pool_namespaces p where ($2::uuid is null or p.cluster_id = $2) and {MATCHES}"
        );
        Ok(sqlx::query_scalar(&sql)
            .bind(search.map(like_literal))
            .bind(cluster)
            .fetch_one(&mut *self.conn().await?)
            .await?)
    }
}

/// Each cluster's namespaces by state: the whole pool's statement
/// (`pool.rs`, `POOL_STATE_COUNTS`) grouped by cluster, with the same states
/// and rules, so that the clusters' counts add up to the pool's (a test says so).
fn cluster_state_counts_sql() -> String {
    format!(
        "select p.cluster_id, {}
         from pool_namespaces p left join deployments d on d.id = p.holder_deployment_id
         group by p.cluster_id",
        super::pool::STATE_COUNT_COLUMNS
    )
}

const CLUSTER_ROWS: &str = "select id, no, name, retired_at, reachable, checked_at, check_error
     from clusters order by no";

#[derive(sqlx::FromRow)]
struct ClusterStateCountsRow {
    cluster_id: Uuid,
    #[sqlx(flatten)]
    counts: PoolStateCounts,
}

#[derive(sqlx::FromRow)]
struct ClusterCordonRow {
    cluster_id: Uuid,
    #[sqlx(flatten)]
    cordon: PoolCordonRow,
}

/// What `/metrics` reads of the clusters at a scrape: the database's clock
/// (what `checked_at` was written with, so a check's age needs no other
/// clock), every cluster row, and each cluster's counts by state (a cluster
/// with no namespace has no entry).
pub type ClusterScrape = (DateTime<Utc>, Vec<ClusterRow>, Vec<(Uuid, PoolStateCounts)>);

impl PoolStateCounts {
    /// No namespace in any state: a cluster whose pool is empty.
    pub fn empty() -> Self {
        Self {
            free: 0,
            held: 0,
            soft_deleted: 0,
            retired: 0,
            broken: 0,
            pending: 0,
            releasing: 0,
            cordoned: 0,
            oldest_releasing: None,
        }
    }
}

async fn counts_by_cluster(conn: &mut PgConnection) -> Result<Vec<(Uuid, PoolStateCounts)>> {
    let rows: Vec<ClusterStateCountsRow> = sqlx::query_as(&cluster_state_counts_sql())
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(|r| (r.cluster_id, r.counts)).collect())
}

impl Store {
    /// Each cluster's namespaces by state (one scan of the pool table); a
    /// cluster with no namespace has no entry.
    pub async fn cluster_state_counts(&self) -> Result<Vec<(Uuid, PoolStateCounts)>> {
        counts_by_cluster(&mut *self.conn().await?).await
    }

    /// Every cluster's pool cordon that holds now.
    pub async fn pool_cordons(&self) -> Result<Vec<(Uuid, PoolCordonRow)>> {
        let rows: Vec<ClusterCordonRow> = sqlx::query_as(
            "select cluster_id, reason, cordoned_by, cordoned_at, until from pool_cordon
             where until is null or until > now()",
        )
        .fetch_all(&mut *self.conn().await?)
        .await?;
        Ok(rows.into_iter().map(|r| (r.cluster_id, r.cordon)).collect())
    }

    /// The clusters' figures for `/metrics` in one transaction whose
    /// statements may each run `timeout` at most, like
    /// [`Store::scrape_figures`]' (set for this transaction only, so it holds
    /// through PgBouncer in transaction mode too).
    pub async fn scrape_cluster_figures(
        &self,
        timeout: std::time::Duration,
    ) -> Result<ClusterScrape> {
        let mut tx = self.begin().await?;
        let millis = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        sqlx::query("select set_config('statement_timeout', $1, true), set_config('lock_timeout', $1, true)")
            .bind(format!("{millis}ms"))
            .execute(&mut *tx)
            .await?;
        let now: DateTime<Utc> = sqlx::query_scalar("select now()")
            .fetch_one(&mut *tx)
            .await?;
        let clusters = sqlx::query_as(CLUSTER_ROWS).fetch_all(&mut *tx).await?;
        let counts = counts_by_cluster(&mut tx).await?;
        tx.commit().await?;
        Ok((now, clusters, counts))
    }
}
