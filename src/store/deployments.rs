use super::pool::{OFFERED, pool_cordoned};
use super::{Result, Store};
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

/// A Deployment with the workspace it belongs to (one join, no N+1).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeploymentRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub label: String,
    pub description: Option<String>,
    pub release_name: String,
    pub namespace: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub executor: String,
    pub airflow_version: Option<String>,
    pub runtime_version: Option<String>,
    pub cloud_role: Option<String>,
    pub config: Option<Value>,
    pub dag_deployment: Option<Value>,
    pub triggerer_replicas: Option<i32>,
    pub cluster_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub workspace_label: String,
    pub workspace_description: Option<String>,
    pub workspace_created_at: DateTime<Utc>,
    pub workspace_updated_at: DateTime<Utc>,
}

/// Selected from a CTE or table aliased `d`, joined to `workspaces w`.
const SELECT_DEPLOYMENT: &str =
    "select d.id, d.workspace_id, d.label, d.description, d.release_name,
    d.namespace, d.type, d.executor, d.airflow_version, d.runtime_version, d.cloud_role, d.config,
    d.dag_deployment, d.triggerer_replicas, d.cluster_id, d.created_at, d.updated_at, d.deleted_at,
    w.label as workspace_label, w.description as workspace_description,
    w.created_at as workspace_created_at, w.updated_at as workspace_updated_at";

/// The columns of a hard-deleted row as `SELECT_DEPLOYMENT` and the event
/// read them from `d`, `deleted_at` being the deletion's time when it was live.
const HARD_DELETED: &str = "id, workspace_id, label, description, release_name, namespace, type,
    executor, airflow_version, runtime_version, cloud_role, config, dag_deployment,
    triggerer_replicas, cluster_id, created_at, updated_at,
    coalesce(deleted_at, now()) as deleted_at";

/// A Deployment written together with a change to what the pool offers:
/// `pool_generation` is the pool generation that change committed as (none
/// when the offered set did not change), for the writer to read its own write.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PoolChange {
    #[sqlx(flatten)]
    pub deployment: DeploymentRow,
    pub pool_generation: Option<i64>,
}

/// A statement whose CTEs end in `d`, the Deployment rows it changed: each
/// changed row gets its event (`kind`, `actor`, `reason` are SQL expressions,
/// usually parameters) in the same statement, and comes back with its workspace.
fn logged_change(ctes: &str, kind: &str, actor: &str, reason: &str) -> String {
    logged_change_with(ctes, kind, actor, reason, "")
}

/// [`logged_change`] whose CTEs also include `pool`, the pool rows it
/// changed (`returning generation`); the row carries their generation.
fn logged_pool_change(ctes: &str, kind: &str, actor: &str, reason: &str) -> String {
    logged_change_with(
        ctes,
        kind,
        actor,
        reason,
        ", (select max(generation) from pool) as pool_generation",
    )
}

fn logged_change_with(ctes: &str, kind: &str, actor: &str, reason: &str, extra: &str) -> String {
    format!(
        "with {ctes}, logged as (
            insert into events (kind, cluster_id, namespace, deployment_id, release_name, workspace_id, actor, reason)
            select {kind}, cluster_id, namespace, id, release_name, workspace_id, {actor}, {reason} from d
        )
        {SELECT_DEPLOYMENT}{extra} from d join workspaces w on w.id = d.workspace_id"
    )
}

/// Frees the pool namespace of the deleted Deployment `d` in the same
/// statement (the foreign key would too, but only after `returning`, which
/// then could not carry the pool generation). `check` (a boolean parameter):
/// the namespace is releasing, offered again once found clean.
fn free_held(check: &str) -> String {
    format!(
        "pool as (
            update pool_namespaces set holder_deployment_id = null,
                releasing_since = case when {check} then now() end,
                leftovers = null, leftovers_checked_at = null, leftover_checks = 0
            where holder_deployment_id in (select id from d)
            returning nspool_own_generation(generation) as generation
        )"
    )
}

/// A hard delete's event and whether its namespace is checked before it is offered again.
pub struct Release<'a> {
    /// The event: `release` or `reclaim`.
    pub kind: &'a str,
    pub actor: &'a str,
    pub reason: &'a str,
    /// Kubernetes checks released namespaces: it is releasing, not free.
    pub check_released: bool,
}

pub struct NewDeployment<'a> {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub label: &'a str,
    pub description: Option<&'a str>,
    pub release_name: &'a str,
    pub namespace: &'a str,
    pub kind: &'a str,
    pub executor: &'a str,
    pub airflow_version: Option<&'a str>,
    pub runtime_version: Option<&'a str>,
    pub cloud_role: Option<&'a str>,
    pub config: Option<&'a Value>,
    pub dag_deployment: Option<&'a Value>,
    pub triggerer_replicas: Option<i32>,
    pub cluster_id: Uuid,
    /// Claim `namespace` from the pool in the same statement.
    pub claim_from_pool: bool,
    pub actor: &'a str,
}

#[derive(Default)]
pub struct DeploymentUpdate<'a> {
    pub label: Option<&'a str>,
    pub description: Option<&'a str>,
    pub executor: Option<&'a str>,
    pub airflow_version: Option<&'a str>,
    pub runtime_version: Option<&'a str>,
    pub cloud_role: Option<&'a str>,
    /// Merged into the stored config (top-level keys replaced).
    pub config: Option<&'a Value>,
    pub dag_deployment: Option<&'a Value>,
    pub triggerer_replicas: Option<i32>,
}

pub struct ListFilter<'a> {
    pub workspace_id: Option<Uuid>,
    pub release_name: Option<&'a str>,
    /// Matches label or release name, case-insensitively.
    pub name: Option<&'a str>,
    /// Start after this Deployment (in the list's order).
    pub after: Option<Uuid>,
    pub limit: Option<i64>,
    pub offset: i64,
    /// Only this cluster's Deployments.
    pub cluster_id: Option<Uuid>,
}

impl Store {
    /// Inserts a Deployment, claiming its pool namespace in the same statement
    /// and logging the claim: one round trip, one transaction. `None` means
    /// the namespace was not free to claim (taken, retired, cordoned, not in
    /// the pool, or the pool is cordoned). The workspace's quota is the
    /// database's own check (`deployments_quota`): `Error::QuotaReached`.
    pub async fn insert_deployment(&self, new: &NewDeployment<'_>) -> Result<Option<PoolChange>> {
        let sql = logged_pool_change(
            &format!(
                "pool as (
                    update pool_namespaces set holder_deployment_id = $1, claimed_at = now()
                    where $16 and cluster_id = $15 and name = $6 and {OFFERED} and not {}
                    returning name, nspool_own_generation(generation) as generation
                ), target as (
                    select name from pool
                    union all
                    select $6::text where not $16
                ), d as (
                    insert into deployments (id, workspace_id, label, description, release_name, namespace,
                        type, executor, airflow_version, runtime_version, cloud_role, config,
                        dag_deployment, triggerer_replicas, cluster_id)
                    select $1, $2, $3, $4, $5, target.name, $7, $8, $9, $10, $11, $12, $13, $14, $15
                    from target
                    returning *
                )",
                pool_cordoned("$15")
            ),
            "'claim'",
            "$17",
            "null",
        );
        let mut tx = self.begin().await?;
        if new.claim_from_pool {
            super::cordons::claim_barrier(&mut tx, new.cluster_id).await?;
        }
        let row = sqlx::query_as(&sql)
            .bind(new.id)
            .bind(new.workspace_id)
            .bind(new.label)
            .bind(new.description)
            .bind(new.release_name)
            .bind(new.namespace)
            .bind(new.kind)
            .bind(new.executor)
            .bind(new.airflow_version)
            .bind(new.runtime_version)
            .bind(new.cloud_role)
            .bind(new.config)
            .bind(new.dag_deployment)
            .bind(new.triggerer_replicas)
            .bind(new.cluster_id)
            .bind(new.claim_from_pool)
            .bind(new.actor)
            .fetch_optional(&mut *tx)
            .await?;
        // Committed only once the row is read back whole: a failure after the
        // claim (a row that does not decode, a lost connection) leaves no claim.
        tx.commit().await?;
        Ok(row)
    }

    pub async fn deployment(&self, id: Uuid) -> Result<Option<DeploymentRow>> {
        let sql = format!(
            "{SELECT_DEPLOYMENT} from deployments d join workspaces w on w.id = d.workspace_id where d.id = $1"
        );
        Ok(sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&mut *self.conn().await?)
            .await?)
    }

    pub async fn deployments_by_id(&self, ids: &[Uuid]) -> Result<Vec<DeploymentRow>> {
        let sql = format!(
            "{SELECT_DEPLOYMENT} from deployments d join workspaces w on w.id = d.workspace_id where d.id = any($1)"
        );
        Ok(sqlx::query_as(&sql)
            .bind(ids)
            .fetch_all(&mut *self.conn().await?)
            .await?)
    }

    /// Live Deployments, newest first.
    pub async fn deployments(&self, filter: &ListFilter<'_>) -> Result<Vec<DeploymentRow>> {
        let sql = format!(
            "{SELECT_DEPLOYMENT} from deployments d join workspaces w on w.id = d.workspace_id
             where d.deleted_at is null
               and ($1::uuid is null or d.workspace_id = $1)
               and ($2::text is null or d.release_name = $2)
               and ($3::text is null or d.label ilike '%' || $3 || '%' or d.release_name ilike '%' || $3 || '%')
               and ($4::uuid is null or (d.created_at, d.id) < (select created_at, id from deployments where id = $4))
               and ($7::uuid is null or d.cluster_id = $7)
             order by d.created_at desc, d.id desc
             limit $5 offset $6"
        );
        // The name is matched as written: LIKE's wildcards (and its escape
        // character) in it are escaped, so "_" and "%" match only themselves.
        let pattern = filter.name.map(like_literal);
        let rows = sqlx::query_as(&sql)
            .bind(filter.workspace_id)
            .bind(filter.release_name)
            .bind(pattern)
            .bind(filter.after)
            .bind(filter.limit)
            .bind(filter.offset)
            .bind(filter.cluster_id)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        Ok(rows)
    }

    /// Updates a live Deployment; `None` when there is none with this id.
    pub async fn update_deployment(
        &self,
        id: Uuid,
        update: &DeploymentUpdate<'_>,
        actor: &str,
    ) -> Result<Option<DeploymentRow>> {
        let sql = logged_change(
            "d as (
                update deployments set
                    label = coalesce($2, label),
                    description = coalesce($3, description),
                    executor = coalesce($4, executor),
                    airflow_version = coalesce($5, airflow_version),
                    runtime_version = coalesce($6, runtime_version),
                    cloud_role = coalesce($7, cloud_role),
                    config = case when $8::jsonb is null then config
                                  else coalesce(config, '{}'::jsonb) || $8::jsonb end,
                    dag_deployment = coalesce($9, dag_deployment),
                    triggerer_replicas = coalesce($10, triggerer_replicas),
                    updated_at = now()
                where id = $1 and deleted_at is null
                returning *
            )",
            "'update'",
            "$11",
            "null",
        );
        let row = sqlx::query_as(&sql)
            .bind(id)
            .bind(update.label)
            .bind(update.description)
            .bind(update.executor)
            .bind(update.airflow_version)
            .bind(update.runtime_version)
            .bind(update.cloud_role)
            .bind(update.config)
            .bind(update.dag_deployment)
            .bind(update.triggerer_replicas)
            .bind(actor)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        Ok(row)
    }

    /// Soft-deletes a live Deployment; it keeps its namespace until reclaimed.
    pub async fn soft_delete_deployment(
        &self,
        id: Uuid,
        actor: &str,
        reason: &str,
    ) -> Result<Option<DeploymentRow>> {
        let sql = logged_change(
            "d as (
                update deployments set deleted_at = now(), updated_at = now()
                where id = $1 and deleted_at is null
                returning *
            )",
            "'soft_delete'",
            "$2",
            "$3",
        );
        let row = sqlx::query_as(&sql)
            .bind(id)
            .bind(actor)
            .bind(reason)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        Ok(row)
    }

    /// Deletes the row; the pool namespace it held is free in the same statement.
    /// `kind` is the event: `release` or `reclaim`. `workspace`: only a
    /// Deployment of this workspace (the caller's scope), `None`: any.
    /// The row comes back with `deleted_at` set: the time of this delete, or
    /// of its earlier soft delete (a deleted Deployment never answers null).
    pub async fn hard_delete_deployment(
        &self,
        id: Uuid,
        workspace: Option<Uuid>,
        release: Release<'_>,
    ) -> Result<Option<PoolChange>> {
        let sql = logged_pool_change(
            &format!(
                "d as (
                    delete from deployments where id = $1 and ($5::uuid is null or workspace_id = $5)
                    returning {HARD_DELETED}
                ), {}",
                free_held("$6")
            ),
            "$2",
            "$3",
            "$4",
        );
        let row = sqlx::query_as(&sql)
            .bind(id)
            .bind(release.kind)
            .bind(release.actor)
            .bind(release.reason)
            .bind(workspace)
            .bind(release.check_released)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        Ok(row)
    }

    /// Reclaims the oldest Deployment soft-deleted before `cutoff`, in its own
    /// transaction with its event, counted on run `run_id` in the same
    /// statement (so a run that dies mid-way has its real count). Rows
    /// another reclaimer holds are skipped, so concurrent runs never reclaim
    /// one Deployment twice. `None`: nothing left.
    pub async fn reclaim_one(
        &self,
        run_id: i64,
        cutoff: DateTime<Utc>,
        actor: &str,
        reason: &str,
        check_released: bool,
    ) -> Result<Option<PoolChange>> {
        let sql = logged_pool_change(
            &format!(
                "victim as (
                    select id from deployments where deleted_at < $1
                    order by deleted_at limit 1 for update skip locked
                ), d as (
                    delete from deployments where id in (select id from victim) returning *
                ), counted as (
                    update reclaim_runs set reclaimed = reclaimed + (select count(*) from d)
                    where id = $5
                ), {}",
                free_held("$4")
            ),
            "'reclaim'",
            "$2",
            "$3",
        );
        let row = sqlx::query_as(&sql)
            .bind(cutoff)
            .bind(actor)
            .bind(reason)
            .bind(check_released)
            .bind(run_id)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        Ok(row)
    }

    /// What a reclaim would free, oldest first (dry runs).
    pub async fn reclaimable(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DeploymentRow>> {
        let sql = format!(
            "{SELECT_DEPLOYMENT} from deployments d join workspaces w on w.id = d.workspace_id
             where d.deleted_at < $1 order by d.deleted_at limit $2"
        );
        let rows = sqlx::query_as(&sql)
            .bind(cutoff)
            .bind(limit)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        Ok(rows)
    }
}

/// `text` for a LIKE pattern that matches it literally (a backslash is LIKE's
/// default escape character in PostgreSQL).
pub(super) fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod like_tests {
    use super::like_literal;

    #[test]
    fn like_wildcards_match_only_themselves() {
        assert_eq!(like_literal("a_b%c\\d"), "a\\_b\\%c\\\\d");
        assert_eq!(like_literal("plain"), "plain");
    }
}
