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

impl Store {
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
