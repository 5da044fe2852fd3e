use super::{Result, Store};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WorkspaceRow {
    pub id: Uuid,
    pub label: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A live token bound to a workspace, shown as the workspace's role binding.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoleBindingRow {
    pub workspace_id: Uuid,
    pub token_id: Uuid,
    pub role: String,
    pub label: String,
}

/// A workspace's quota (its own, else the config's default; `None`: no
/// limit) and how many namespaces its Deployments hold, live or soft-deleted.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct HoldingsRow {
    pub workspace_id: Uuid,
    pub quota: Option<i32>,
    pub held: i64,
}

impl Store {
    /// Sets (or with `None` clears) a workspace's own quota, with its event.
    /// `None` back: no such workspace.
    pub async fn set_workspace_quota(
        &self,
        id: Uuid,
        quota: Option<i32>,
        actor: &str,
    ) -> Result<Option<WorkspaceRow>> {
        let row = sqlx::query_as(
            "with w as (
                update workspaces set namespace_quota = $2, updated_at = now() where id = $1
                returning id, label, description, created_at, updated_at
            ), e as (
                insert into events (kind, workspace_id, actor, reason)
                select 'workspace_quota', id, $3,
                       case when $2::integer is null then 'no quota of its own'
                            else 'at most ' || $2::integer || ' namespaces' end
                from w
            )
            select * from w",
        )
        .bind(id)
        .bind(quota)
        .bind(actor)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        Ok(row)
    }

    /// Quotas and holdings of many workspaces in one query (the GraphQL loader's batch).
    pub async fn holdings(&self, workspace_ids: &[Uuid]) -> Result<Vec<HoldingsRow>> {
        Ok(sqlx::query_as(
            "select w.id as workspace_id, coalesce(w.namespace_quota, s.workspace_quota) as quota,
                    (select count(*) from deployments d where d.workspace_id = w.id) as held
             from workspaces w left join pool_settings s on s.id
             where w.id = any($1)",
        )
        .bind(workspace_ids)
        .fetch_all(&mut *self.conn().await?)
        .await?)
    }

    pub async fn create_workspace(
        &self,
        label: &str,
        description: Option<&str>,
        actor: &str,
    ) -> Result<WorkspaceRow> {
        let row = sqlx::query_as(
            "with w as (
                insert into workspaces (id, label, description) values ($1, $2, $3)
                returning id, label, description, created_at, updated_at
            ), e as (
                insert into events (kind, workspace_id, actor) select 'workspace_create', id, $4 from w
            )
            select * from w",
        )
        .bind(Uuid::new_v4())
        .bind(label)
        .bind(description)
        .bind(actor)
        .fetch_one(&mut *self.conn().await?)
        .await?;
        Ok(row)
    }

    pub async fn workspace(&self, id: Uuid) -> Result<Option<WorkspaceRow>> {
        let row = sqlx::query_as(
            "select id, label, description, created_at, updated_at from workspaces where id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        Ok(row)
    }

    /// Workspaces in creation order; `only` limits to one, `limit` `None` is all.
    pub async fn workspaces(
        &self,
        only: Option<Uuid>,
        limit: Option<i64>,
        offset: i64,
    ) -> Result<Vec<WorkspaceRow>> {
        let rows = sqlx::query_as(
            "select id, label, description, created_at, updated_at from workspaces
             where $1::uuid is null or id = $1
             order by created_at, id limit $2 offset $3",
        )
        .bind(only)
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        Ok(rows)
    }

    /// Role bindings of many workspaces in one query (the GraphQL loader's batch).
    pub async fn role_bindings(&self, workspace_ids: &[Uuid]) -> Result<Vec<RoleBindingRow>> {
        let rows = sqlx::query_as(
            "select workspace_id, id as token_id, role, label from api_tokens
             where workspace_id = any($1) and revoked_at is null
             order by created_at, id",
        )
        .bind(workspace_ids)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        Ok(rows)
    }
}
