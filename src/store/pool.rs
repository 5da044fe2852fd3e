use super::{Result, Store};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PoolNamespaceRow {
    pub cluster_id: Uuid,
    pub name: String,
    pub source: String,
    pub holder_deployment_id: Option<Uuid>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub added_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
    pub managed: bool,
    pub rbac_applied: Option<String>,
    pub labels_holder: Option<Uuid>,
    pub rbac_state: String,
    pub rbac_missing: Option<serde_json::Value>,
    pub rbac_checked_at: Option<DateTime<Utc>>,
    pub kube_error: Option<String>,
    pub kube_error_at: Option<DateTime<Utc>>,
    pub kube_next_attempt_at: Option<DateTime<Utc>>,
    pub releasing_since: Option<DateTime<Utc>>,
    pub leftovers: Option<serde_json::Value>,
    pub leftovers_checked_at: Option<DateTime<Utc>>,
    pub labels_missing: Option<serde_json::Value>,
    pub cordon_reason: Option<String>,
    pub cordoned_by: Option<String>,
    pub cordoned_at: Option<DateTime<Utc>>,
    pub cordon_until: Option<DateTime<Utc>>,
    /// When it last started or stopped being offered.
    pub offered_changed_at: DateTime<Utc>,
}

/// The whole pool's cordon: while it holds no claim passes.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PoolCordonRow {
    pub reason: String,
    pub cordoned_by: String,
    pub cordoned_at: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
}

/// What one cluster's pool offers clients: the offered names, and the pool
/// cordon that (while it holds) makes the offer empty.
#[derive(Debug, Clone)]
pub struct ClusterOffer {
    pub id: Uuid,
    /// The cluster's number in change notices.
    pub no: i32,
    pub names: Vec<String>,
    pub cordon: Option<PoolCordonRow>,
}

/// What every cluster's pool offers (clusters not retired, by number).
#[derive(Debug, Clone)]
pub struct PoolOffer {
    pub clusters: Vec<ClusterOffer>,
}

/// Who holds a pool namespace, to word a refused claim.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NamespaceHolder {
    pub name: String,
    pub retired_at: Option<DateTime<Utc>>,
    pub rbac_state: String,
    pub rbac_missing: Option<serde_json::Value>,
    pub deployment_id: Option<Uuid>,
    pub workspace_id: Option<Uuid>,
    pub release_name: Option<String>,
    pub label: Option<String>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub cordon_reason: Option<String>,
    pub cordoned_by: Option<String>,
    pub cordon_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HealthFigures {
    pub kube_errors: i64,
    pub last_reclaim: Option<DateTime<Utc>>,
    /// Live dashboard sessions.
    pub sessions: i64,
}

/// The pool's namespaces by state (each active namespace in exactly one).
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct PoolStateCounts {
    pub free: i64,
    pub held: i64,
    pub soft_deleted: i64,
    pub retired: i64,
    pub broken: i64,
    /// Free but not yet seen ready in the cluster (applied or verified).
    pub pending: i64,
    pub releasing: i64,
    /// Free but cordoned: not offered until uncordoned.
    pub cordoned: i64,
    /// Since when the longest-releasing namespace waits to be found clean.
    pub oldest_releasing: Option<DateTime<Utc>>,
}

impl PoolStateCounts {
    /// As metric labels.
    pub fn by_state(&self) -> [(&'static str, i64); 8] {
        [
            ("free", self.free),
            ("held", self.held),
            ("soft_deleted", self.soft_deleted),
            ("retired", self.retired),
            ("broken", self.broken),
            ("pending", self.pending),
            ("releasing", self.releasing),
            ("cordoned", self.cordoned),
        ]
    }
}

/// The pool in numbers, to say why none is free and how one comes back.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PoolSummary {
    pub active: i64,
    /// Free but not offered: verification found their RBAC broken or the namespace missing.
    pub broken: i64,
    /// Free but not offered: not yet seen ready in the cluster.
    pub pending: i64,
    /// Free but cordoned.
    pub cordoned: i64,
    pub held_live: i64,
    pub held_soft_deleted: i64,
    pub oldest_soft_delete: Option<DateTime<Utc>>,
}

pub(super) const POOL_COLUMNS: &str = "p.cluster_id, p.name, p.source, p.holder_deployment_id, p.claimed_at, p.added_at, p.retired_at, p.managed, p.rbac_applied, p.labels_holder, p.rbac_state, p.rbac_missing, p.rbac_checked_at, p.kube_error, p.kube_error_at, p.kube_next_attempt_at, p.releasing_since, p.leftovers, p.leftovers_checked_at, p.labels_missing, p.cordon_reason, p.cordoned_by, p.cordoned_at, p.cordon_until, p.offered_changed_at";

/// Offered: free, not retired, not releasing, not cordoned, and not known to
/// have broken RBAC (as the database's `nspool_offered`).
pub(super) const OFFERED: &str = "holder_deployment_id is null and retired_at is null
    and releasing_since is null and cordoned_at is null and rbac_state in ('unknown', 'ok')";

/// The pool cordon of the cluster `cluster` (an SQL expression) holds (no
/// end, or its end still ahead).
pub(super) fn pool_cordoned(cluster: &str) -> String {
    format!(
        "exists (select 1 from pool_cordon pc where pc.cluster_id = {cluster}
                 and (pc.until is null or pc.until > now()))"
    )
}

/// A statement whose CTE `n` changes pool rows (returning `cluster_id,
/// name`): each changed name gets a `kind` event (`actor` and `reason` are
/// SQL expressions); the names come back sorted.
pub(super) fn logged_names(change: &str, kind: &str, actor: &str, reason: &str) -> String {
    format!(
        "with n as ({change}), e as (
            insert into events (kind, cluster_id, namespace, actor, reason)
            select '{kind}', cluster_id, name, {actor}, {reason} from n
        )
        select name from n order by name"
    )
}

impl Store {
    /// Free, offered namespaces in name order (whatever the pool cordon): a scan of a partial index that
    /// holds only free rows, returned as one array row (one message to send and
    /// decode instead of one per name; `array(...)` keeps the index order where
    /// `array_agg(... order by)` would sort).
    pub async fn available_namespaces(&self, cluster: Uuid) -> Result<Vec<String>> {
        let sql = format!(
            "select array(select name from pool_namespaces where cluster_id = $1 and {OFFERED} order by name)"
        );
        Ok(sqlx::query_scalar(&sql)
            .bind(cluster)
            .fetch_one(&mut *self.conn().await?)
            .await?)
    }

    /// Frees a releasing namespace at once (`markNamespaceClean`); its event
    /// keeps who and why. `false`: it is not releasing.
    /// `None`: not releasing; `Some(generation)`: freed, and the generation
    /// to wait for when that changed what is offered.
    pub async fn mark_clean(
        &self,
        cluster: Uuid,
        name: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Option<Option<i64>>> {
        let generation = sqlx::query_scalar(
            "with u as (
                update pool_namespaces set releasing_since = null, leftover_checks = 0
                where cluster_id = $4 and name = $1 and releasing_since is not null
                returning name, nspool_own_generation(generation) as generation
             ), e as (
                insert into events (kind, cluster_id, namespace, actor, reason)
                select 'mark_clean', $4, name, $2, $3 from u
             )
             select generation from u",
        )
        .bind(name)
        .bind(actor)
        .bind(reason)
        .bind(cluster)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        Ok(generation)
    }

    /// Frees every releasing namespace (released namespaces are not checked
    /// any more), each with a `clean` event giving `reason`.
    pub async fn free_releasing(&self, actor: &str, reason: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(&logged_names(
            "update pool_namespaces set releasing_since = null, leftover_checks = 0
             where releasing_since is not null returning cluster_id, name",
            "clean",
            "$1",
            "$2",
        ))
        .bind(actor)
        .bind(reason)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        Ok(rows.into_iter().map(|(n,)| n).collect())
    }

    /// Sends `sync <marker>` on the pool channel: it reaches a listener after
    /// the notices of every transaction that committed before it.
    pub async fn notify_pool_marker(&self, channel: &str, marker: &str) -> Result<()> {
        sqlx::query("select pg_notify($1, 'sync ' || $2)")
            .bind(channel)
            .bind(marker)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    /// [`Self::notify_pool_marker`] on a session connection (the direct
    /// pool), so the listener's heartbeat is sent even while every request
    /// connection is busy.
    pub async fn notify_pool_marker_direct(&self, channel: &str, marker: &str) -> Result<()> {
        sqlx::query("select pg_notify($1, 'sync ' || $2)")
            .bind(channel)
            .bind(marker)
            .execute(&mut *self.direct.acquire().await?)
            .await?;
        Ok(())
    }

    /// What the pool offers clients now, in every cluster, as a count and a
    /// SHA-256 of `number/name` in that order, one per line (nothing of a
    /// cordoned cluster): to check a replica's copy against. On a session
    /// connection, so a busy replica still checks.
    pub async fn offered_digest(&self) -> Result<(i64, String)> {
        let sql = format!(
            "select count(*), encode(sha256(convert_to(coalesce(string_agg(o.no || '/' || o.name, E'\\n' order by o.no, o.name), ''), 'UTF8')), 'hex')
             from (
                select k.no, p.name from clusters k
                join lateral (select name from pool_namespaces p where p.cluster_id = k.id and {OFFERED}) p on true
                where k.retired_at is null and not {}
             ) o",
            pool_cordoned("k.id")
        );
        Ok(sqlx::query_as(&sql)
            .fetch_one(&mut *self.direct.acquire().await?)
            .await?)
    }

    /// Which of `names` (each with its cluster, side by side) a Deployment
    /// holds now (in the pool, not retired), as indexes into `names`.
    pub async fn held_among(&self, clusters: &[Uuid], names: &[String]) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "select s.i - 1 from unnest($2::uuid[], $1::text[]) with ordinality as s(cluster_id, name, i)
             join pool_namespaces p on p.cluster_id = s.cluster_id and p.name = s.name
             where p.holder_deployment_id is not null and p.retired_at is null
             order by s.i",
        )
        .bind(names)
        .bind(clusters)
        .fetch_all(&mut *self.conn().await?)
        .await?)
    }

    pub async fn namespace_holder(
        &self,
        cluster: Uuid,
        name: &str,
    ) -> Result<Option<NamespaceHolder>> {
        let row = sqlx::query_as(
            "select p.name, p.retired_at, p.rbac_state, p.rbac_missing,
                    d.id as deployment_id, d.workspace_id, d.release_name, d.label, d.deleted_at,
                    p.cordon_reason, p.cordoned_by, p.cordon_until
             from pool_namespaces p left join deployments d on d.id = p.holder_deployment_id
             where p.cluster_id = $2 and p.name = $1",
        )
        .bind(name)
        .bind(cluster)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        Ok(row)
    }

    /// One cluster's pool in numbers (`None`: every cluster's together).
    pub async fn pool_summary(&self, cluster: Option<Uuid>) -> Result<PoolSummary> {
        let row = sqlx::query_as(
            "select count(*) filter (where p.retired_at is null) as active,
                    count(*) filter (where p.retired_at is null and p.holder_deployment_id is null
                                     and p.rbac_state in ('broken', 'missing')) as broken,
                    count(*) filter (where p.retired_at is null and p.holder_deployment_id is null
                                     and p.rbac_state = 'pending') as pending,
                    count(*) filter (where p.retired_at is null and p.holder_deployment_id is null
                                     and p.cordoned_at is not null) as cordoned,
                    count(*) filter (where p.retired_at is null and d.id is not null and d.deleted_at is null) as held_live,
                    count(*) filter (where p.retired_at is null and d.deleted_at is not null) as held_soft_deleted,
                    min(d.deleted_at) filter (where p.retired_at is null) as oldest_soft_delete
             from pool_namespaces p left join deployments d on d.id = p.holder_deployment_id
             where $1::uuid is null or p.cluster_id = $1",
        )
        .bind(cluster)
        .fetch_one(&mut *self.conn().await?)
        .await?;
        Ok(row)
    }

    /// The pool's namespaces by state, for metrics: one scan of the pool table.
    pub async fn pool_state_counts(&self) -> Result<PoolStateCounts> {
        Ok(sqlx::query_as(&pool_state_counts_sql())
            .fetch_one(&mut *self.conn().await?)
            .await?)
    }

    /// What `/metrics` reads at each scrape: pool namespaces with a
    /// Kubernetes error waiting for a retry, when a real (not dry) reclaim
    /// run last finished without errors (any replica), and the pool counts.
    /// Each statement may run `timeout` at most (set for this transaction
    /// only, so it holds through PgBouncer in transaction mode too).
    pub async fn scrape_figures(
        &self,
        timeout: std::time::Duration,
    ) -> Result<(HealthFigures, PoolStateCounts)> {
        let mut tx = self.begin().await?;
        let millis = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        sqlx::query("select set_config('statement_timeout', $1, true), set_config('lock_timeout', $1, true)")
            .bind(format!("{millis}ms"))
            .execute(&mut *tx)
            .await?;
        let health = sqlx::query_as(HEALTH_FIGURES).fetch_one(&mut *tx).await?;
        let counts = sqlx::query_as(&pool_state_counts_sql())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((health, counts))
    }

    pub async fn pool_namespace(
        &self,
        cluster: Uuid,
        name: &str,
    ) -> Result<Option<PoolNamespaceRow>> {
        let sql = format!(
            "select {POOL_COLUMNS} from pool_namespaces p where p.cluster_id = $2 and p.name = $1"
        );
        Ok(sqlx::query_as(&sql)
            .bind(name)
            .bind(cluster)
            .fetch_optional(&mut *self.conn().await?)
            .await?)
    }

    /// Every pool row, or one cluster's, by cluster and name.
    pub async fn pool_namespaces(&self, cluster: Option<Uuid>) -> Result<Vec<PoolNamespaceRow>> {
        let sql = format!(
            "select {POOL_COLUMNS} from pool_namespaces p join clusters k on k.id = p.cluster_id
             where $1::uuid is null or p.cluster_id = $1 order by k.no, p.name"
        );
        Ok(sqlx::query_as(&sql)
            .bind(cluster)
            .fetch_all(&mut *self.conn().await?)
            .await?)
    }
}

/// The pool's namespaces by state (each active namespace in exactly one):
/// the columns of `PoolStateCounts`, over `pool_namespaces p` joined to its
/// holder `d`. The whole pool's counts and each cluster's use these same rules.
pub(super) const STATE_COUNT_COLUMNS: &str = "count(*) filter (where p.retired_at is null and p.holder_deployment_id is null
                                     and p.releasing_since is null and p.cordoned_at is null
                                     and p.rbac_state in ('unknown', 'ok')) as free,
                    count(*) filter (where p.retired_at is null and d.id is not null and d.deleted_at is null) as held,
                    count(*) filter (where p.retired_at is null and d.deleted_at is not null) as soft_deleted,
                    count(*) filter (where p.retired_at is not null) as retired,
                    count(*) filter (where p.retired_at is null and p.holder_deployment_id is null
                                     and p.releasing_since is null and p.cordoned_at is null
                                     and p.rbac_state in ('broken', 'missing')) as broken,
                    count(*) filter (where p.retired_at is null and p.holder_deployment_id is null
                                     and p.releasing_since is null and p.cordoned_at is null
                                     and p.rbac_state = 'pending') as pending,
                    count(*) filter (where p.retired_at is null and p.holder_deployment_id is null
                                     and p.releasing_since is null and p.cordoned_at is not null) as cordoned,
                    count(*) filter (where p.retired_at is null and p.holder_deployment_id is null
                                     and p.releasing_since is not null) as releasing,
                    min(p.releasing_since) filter (where p.retired_at is null and p.holder_deployment_id is null)
                        as oldest_releasing";

/// The whole pool's counts by state.
fn pool_state_counts_sql() -> String {
    format!(
        "select {STATE_COUNT_COLUMNS}
         from pool_namespaces p left join deployments d on d.id = p.holder_deployment_id"
    )
}

const HEALTH_FIGURES: &str = "select (select count(*) from pool_namespaces where retired_at is null and kube_error is not null) as kube_errors,
                    (select max(finished_at) from reclaim_runs
                     where finished_at is not null and errors is null and not dry_run) as last_reclaim,
                    (select count(*) from dashboard_sessions where expires_at > now()) as sessions";
