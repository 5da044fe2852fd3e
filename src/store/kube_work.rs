//! Kubernetes work as state on the pool rows: what is due, and what was done.

use super::{Result, Store};
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

/// One namespace with the Kubernetes work due on it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KubeWorkRow {
    pub name: String,
    pub managed: bool,
    pub holder_deployment_id: Option<Uuid>,
    pub holder_release: Option<String>,
    pub needs_apply: bool,
    pub needs_labels: bool,
    pub needs_check: bool,
    /// Released and not yet found clean, and its next check is due.
    pub needs_leftovers: bool,
    /// Pool labels to apply (their fingerprint differs from the last applied).
    pub needs_pool_labels: bool,
}

/// What kinds of work this replica's settings ask for.
pub struct WorkFilter<'a> {
    /// The cluster whose namespaces the work is on.
    pub cluster: Uuid,
    /// `Some(fingerprint)` when nspool applies RBAC (namespaces.create).
    pub apply: Option<&'a str>,
    /// Claim labels switched on.
    pub labels: bool,
    /// Verify namespaces last checked before this (or never).
    pub check_before: Option<DateTime<Utc>>,
    /// Skip namespaces whose retry or next leftover check has not come
    /// (false: a check by hand).
    pub respect_backoff: bool,
    /// Check releasing namespaces for leftovers (when their next check is due).
    pub leftovers: bool,
    /// `Some(fingerprint)`: pool labels are applied with the claim labels
    /// (verify mode, claim labels on) and due where the fingerprint differs.
    pub pool_labels: Option<&'a str>,
}

/// How long after a check that found leftovers the next one runs: 2 s,
/// doubling, at most 5 minutes (SQL, over the row's `leftover_checks`).
const NEXT_LEFTOVER_CHECK: &str = "p.leftovers_checked_at + least(interval '5 minutes',
    interval '2 seconds' * power(2, least(p.leftover_checks, 16)))";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClusterReportRow {
    pub checked_at: DateTime<Utc>,
    pub cluster_scoped: Value,
    pub stale: Value,
}

impl Store {
    /// Namespaces with work due, whose retry time (if any) has come.
    pub async fn kube_work(&self, filter: &WorkFilter<'_>, limit: i64) -> Result<Vec<KubeWorkRow>> {
        let sql = format!(
            "select * from (
                select p.name, p.managed, p.holder_deployment_id, d.release_name as holder_release,
                       ($1::text is not null and p.managed and p.retired_at is null
                            and p.rbac_applied is distinct from $1) as needs_apply,
                       ($2 and p.labels_holder is distinct from p.holder_deployment_id) as needs_labels,
                       ($3::timestamptz is not null and p.retired_at is null
                            and (p.rbac_checked_at is null or p.rbac_checked_at < $3)) as needs_check,
                       ($6 and p.releasing_since is not null
                            and (not $5 or p.leftovers_checked_at is null or {NEXT_LEFTOVER_CHECK} <= now()))
                           as needs_leftovers,
                       ($7::text is not null and p.retired_at is null
                            and p.labels_applied is distinct from $7) as needs_pool_labels
                from pool_namespaces p left join deployments d on d.id = p.holder_deployment_id
                where p.cluster_id = $8
                  and (not $5 or p.kube_next_attempt_at is null or p.kube_next_attempt_at <= now())
             ) w
             where needs_apply or needs_labels or needs_check or needs_leftovers or needs_pool_labels
             order by name limit $4"
        );
        let rows = sqlx::query_as(&sql)
            .bind(filter.apply)
            .bind(filter.labels)
            .bind(filter.check_before)
            .bind(limit)
            .bind(filter.respect_backoff)
            .bind(filter.leftovers)
            .bind(filter.pool_labels)
            .bind(filter.cluster)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        Ok(rows)
    }

    /// Everything nspool applies in namespace `name` is there as applied
    /// (the API server answered each apply with the object it stored): the
    /// namespace is ready, `ok`, and offered when free. The pool generation
    /// when that changed what is offered.
    pub async fn record_applied(
        &self,
        cluster: Uuid,
        name: &str,
        fingerprint: &str,
    ) -> Result<Option<i64>> {
        let generation = sqlx::query_scalar(
            "update pool_namespaces set rbac_applied = $2, rbac_applied_at = now(), rbac_state = 'ok',
                    rbac_missing = case when rbac_state = 'ok' then rbac_missing end
             where cluster_id = $3 and name = $1 returning nspool_own_generation(generation)",
        )
        .bind(name)
        .bind(fingerprint)
        .bind(cluster)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        Ok(generation.flatten())
    }

    /// Whether the namespaces must be seen ready in the cluster before they
    /// are offered: with Kubernetes, every namespace never seen (`unknown`)
    /// becomes `pending` and is applied or verified anew; without, `pending`
    /// ones are `unknown` again (offered unchecked, as always without a
    /// cluster). The pool generation when that changed what is offered.
    pub async fn require_readiness(&self, kubernetes: bool) -> Result<Option<i64>> {
        let mut conn = self.conn().await?;
        Ok(require_readiness(&mut conn, kubernetes).await?)
    }

    /// The namespace nspool applied is gone: the next pass applies it (and
    /// its Commander Role and RoleBindings) again.
    pub async fn forget_applied(&self, cluster: Uuid, name: &str) -> Result<()> {
        sqlx::query(
            "update pool_namespaces set rbac_applied = null where cluster_id = $2 and name = $1",
        )
        .bind(name)
        .bind(cluster)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    /// Records labels written for `holder`; a no-op when the holder changed
    /// meanwhile, so the next pass writes the newer labels.
    pub async fn record_labels(
        &self,
        cluster: Uuid,
        name: &str,
        holder: Option<Uuid>,
    ) -> Result<()> {
        sqlx::query(
            "update pool_namespaces set labels_holder = $2
             where cluster_id = $3 and name = $1 and holder_deployment_id is not distinct from $2",
        )
        .bind(name)
        .bind(holder)
        .bind(cluster)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    /// Stores a verification result with its time, and its event when the
    /// state changes; the pool generation when that changed what is offered.
    pub async fn record_check(
        &self,
        cluster: Uuid,
        name: &str,
        state: &str,
        missing: &Value,
    ) -> Result<Option<i64>> {
        let generation = sqlx::query_scalar(
            "with old as (select rbac_state from pool_namespaces where cluster_id = $4 and name = $1),
             u as (
                update pool_namespaces set rbac_state = $2, rbac_missing = $3, rbac_checked_at = now()
                where cluster_id = $4 and name = $1 returning name, nspool_own_generation(generation) as generation
             ), e as (
                insert into events (kind, cluster_id, namespace, actor, reason)
                select 'rbac_check', $4, u.name, 'kubernetes', $2 || case when jsonb_array_length($3) > 0
                       then ': cannot ' || (select string_agg(value, ', ') from jsonb_array_elements_text($3)) else '' end
                from u, old where old.rbac_state is distinct from $2
             )
             select generation from u",
        )
        .bind(name)
        .bind(state)
        .bind(missing)
        .bind(cluster)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        Ok(generation.flatten())
    }

    /// What a leftover check found. Nothing: the namespace is offered again,
    /// with a `clean` event (and the pool generation of that). Something:
    /// kept releasing, the list stored (an event when it changed), checked
    /// again later.
    pub async fn record_leftovers(
        &self,
        cluster: Uuid,
        name: &str,
        leftovers: &[String],
    ) -> Result<Option<i64>> {
        if leftovers.is_empty() {
            let generation: Option<Option<i64>> = sqlx::query_scalar(
                "with u as (
                    update pool_namespaces set releasing_since = null, leftovers = '[]',
                           leftovers_checked_at = now(), leftover_checks = 0
                    where cluster_id = $2 and name = $1 and releasing_since is not null
                    returning name, nspool_own_generation(generation) as generation
                 ), e as (
                    insert into events (kind, cluster_id, namespace, actor, reason)
                    select 'clean', $2, name, 'kubernetes', 'nothing left behind: offered again' from u
                 )
                 select generation from u",
            )
            .bind(name)
            .bind(cluster)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
            return Ok(generation.flatten());
        } else {
            sqlx::query(
                "with old as (select leftovers from pool_namespaces where cluster_id = $3 and name = $1),
                 u as (
                    update pool_namespaces set leftovers = $2, leftovers_checked_at = now(),
                           leftover_checks = leftover_checks + 1
                    where cluster_id = $3 and name = $1 and releasing_since is not null returning name
                 )
                 insert into events (kind, cluster_id, namespace, actor, reason)
                 select 'leftovers', $3, u.name, 'kubernetes',
                        'not offered while left behind: ' || (select string_agg(value, ', ') from jsonb_array_elements_text($2))
                 from u, old where old.leftovers is distinct from $2",
            )
            .bind(name)
            .bind(serde_json::json!(leftovers))
            .bind(cluster)
            .execute(&mut *self.conn().await?)
            .await?;
        }
        Ok(None)
    }

    /// Records the pool labels applied (their fingerprint).
    pub async fn record_pool_labels(
        &self,
        cluster: Uuid,
        name: &str,
        fingerprint: &str,
    ) -> Result<()> {
        sqlx::query(
            "update pool_namespaces set labels_applied = $2, labels_missing = null where cluster_id = $3 and name = $1",
        )
        .bind(name)
        .bind(fingerprint)
        .bind(cluster)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    /// Pool labels a verification found missing (empty: none).
    pub async fn record_labels_missing(
        &self,
        cluster: Uuid,
        name: &str,
        missing: &[String],
    ) -> Result<()> {
        sqlx::query(
            "update pool_namespaces set labels_missing = $2 where cluster_id = $3 and name = $1",
        )
        .bind(name)
        .bind((!missing.is_empty()).then(|| serde_json::json!(missing)))
        .bind(cluster)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    /// Work on `name` went through: no error, no pending retry.
    pub async fn clear_kube_error(&self, cluster: Uuid, name: &str) -> Result<()> {
        sqlx::query(
            "update pool_namespaces set kube_error = null, kube_error_at = null, kube_attempts = 0,
                    kube_next_attempt_at = null
             where cluster_id = $2 and name = $1 and (kube_error is not null or kube_attempts > 0)",
        )
        .bind(name)
        .bind(cluster)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    /// Records a Kubernetes failure and when to retry: 1 s, doubling, at most 5 min.
    /// The text is kept to [`super::MAX_ERROR_CHARS`] (an API server's message is anybody's length).
    pub async fn record_kube_error(&self, cluster: Uuid, name: &str, error: &str) -> Result<()> {
        sqlx::query(
            "update pool_namespaces set kube_error = left($2, 1024), kube_error_at = now(),
                    kube_attempts = kube_attempts + 1,
                    kube_next_attempt_at = now() + least(interval '5 minutes',
                        interval '1 second' * power(2, least(kube_attempts, 16)))
             where cluster_id = $3 and name = $1",
        )
        .bind(name)
        .bind(error)
        .bind(cluster)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    /// Everything re-applied and re-checked on the next pass.
    pub async fn request_resync(&self) -> Result<u64> {
        let done = sqlx::query(
            // The claim labels too: one stripped by hand is written again.
            "update pool_namespaces set rbac_applied = null, rbac_checked_at = null,
                    labels_holder = null, kube_next_attempt_at = null, kube_attempts = 0",
        )
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn save_cluster_report(
        &self,
        cluster: Uuid,
        cluster_scoped: &Value,
        stale: &Value,
    ) -> Result<()> {
        sqlx::query(
            "insert into rbac_cluster_report (cluster_id, checked_at, cluster_scoped, stale) values ($3, now(), $1, $2)
             on conflict (cluster_id) do update set checked_at = now(), cluster_scoped = $1, stale = $2",
        )
        .bind(cluster_scoped)
        .bind(stale)
        .bind(cluster)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    pub async fn cluster_report(&self, cluster: Uuid) -> Result<Option<ClusterReportRow>> {
        Ok(sqlx::query_as(
            "select checked_at, cluster_scoped, stale from rbac_cluster_report where cluster_id = $1",
        )
        .bind(cluster)
        .fetch_optional(&mut *self.conn().await?)
        .await?)
    }
}

/// [`Store::require_readiness`] on a connection of the caller's (the pool
/// sync runs it in its own transaction, so a namespace it adds is never
/// offered before it is seen).
pub(super) async fn require_readiness(
    conn: &mut sqlx::PgConnection,
    kubernetes: bool,
) -> sqlx::Result<Option<i64>> {
    let statement = if kubernetes {
        "update pool_namespaces set rbac_state = 'pending', rbac_applied = null, rbac_checked_at = null
         where rbac_state = 'unknown' returning nspool_own_generation(generation)"
    } else {
        "update pool_namespaces set rbac_state = 'unknown'
         where rbac_state = 'pending' returning nspool_own_generation(generation)"
    };
    if !kubernetes {
        // No worker checks any cluster now: an old answer would be shown as current.
        sqlx::query(
            "update clusters set reachable = null, checked_at = null, check_error = null
             where checked_at is not null",
        )
        .execute(&mut *conn)
        .await?;
    }
    let generations: Vec<Option<i64>> = sqlx::query_scalar(statement).fetch_all(conn).await?;
    Ok(generations.into_iter().flatten().max())
}
