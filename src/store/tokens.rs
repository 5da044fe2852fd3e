use super::{Result, Store};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRow {
    pub id: Uuid,
    pub role: String,
    pub workspace_id: Option<Uuid>,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub(super) const TOKEN_COLUMNS: &str = "id, role, workspace_id, label, created_at, revoked_at";

impl Store {
    pub async fn create_token(
        &self,
        sha256: &[u8; 32],
        role: &str,
        workspace_id: Option<Uuid>,
        label: &str,
        actor: &str,
    ) -> Result<TokenRow> {
        let sql = format!(
            "with t as (
                insert into api_tokens (id, sha256, role, workspace_id, label) values ($1, $2, $3, $4, $5)
                returning {TOKEN_COLUMNS}
            ), e as (
                insert into events (kind, workspace_id, actor, reason)
                select 'token_create', workspace_id, $6, 'token ' || id || ' with role ' || role from t
            )
            select * from t"
        );
        let row = sqlx::query_as(&sql)
            .bind(Uuid::new_v4())
            .bind(&sha256[..])
            .bind(role)
            .bind(workspace_id)
            .bind(label)
            .bind(actor)
            .fetch_one(&mut *self.conn().await?)
            .await?;
        Ok(row)
    }

    /// Creates the first admin token only when there is no token at all;
    /// replicas starting together create at most one.
    pub async fn create_first_token(&self, sha256: &[u8; 32], label: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        sqlx::query("lock table api_tokens in share row exclusive mode")
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "insert into api_tokens (id, sha256, role, label)
             select $1, $2, 'SYSTEM_ADMIN', $3 where not exists (select 1 from api_tokens)",
        )
        .bind(Uuid::new_v4())
        .bind(&sha256[..])
        .bind(label)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(inserted == 1)
    }

    /// The one indexed lookup per request: a live token by its SHA-256.
    pub async fn token_by_hash(&self, sha256: &[u8; 32]) -> Result<Option<TokenRow>> {
        let sql = format!(
            "select {TOKEN_COLUMNS} from api_tokens where sha256 = $1 and revoked_at is null"
        );
        let mut tx = self.begin_bounded().await?;
        let row = sqlx::query_as(&sql)
            .bind(&sha256[..])
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn tokens(&self) -> Result<Vec<TokenRow>> {
        let sql = format!("select {TOKEN_COLUMNS} from api_tokens order by created_at, id");
        Ok(sqlx::query_as(&sql)
            .fetch_all(&mut *self.conn().await?)
            .await?)
    }

    /// Revokes a live token; `None` when there is no such live token.
    pub async fn revoke_token(&self, id: Uuid, actor: &str) -> Result<Option<TokenRow>> {
        let sql = format!(
            "with t as (
                update api_tokens set revoked_at = now() where id = $1 and revoked_at is null
                returning {TOKEN_COLUMNS}
            ), e as (
                insert into events (kind, workspace_id, actor, reason)
                select 'token_revoke', workspace_id, $2, 'token ' || id from t
            )
            select * from t"
        );
        let row = sqlx::query_as(&sql)
            .bind(id)
            .bind(actor)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        Ok(row)
    }
}
