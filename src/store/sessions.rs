//! Dashboard sessions: a session id's hash → the live token that signed in.

use super::tokens::TOKEN_COLUMNS;
use super::{Result, Store, TokenRow};
use chrono::{DateTime, Utc};
use uuid::Uuid;

impl Store {
    /// Stores a session and drops expired ones, in one statement.
    pub async fn create_session(
        &self,
        sha256: &[u8; 32],
        token_id: Uuid,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "with pruned as (delete from dashboard_sessions where expires_at < now())
             insert into dashboard_sessions (sha256, token_id, expires_at) values ($1, $2, $3)",
        )
        .bind(&sha256[..])
        .bind(token_id)
        .bind(expires_at)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    /// The live token behind an unexpired session.
    pub async fn session_token(&self, sha256: &[u8; 32]) -> Result<Option<TokenRow>> {
        let sql = format!(
            "select {} from dashboard_sessions s join api_tokens t on t.id = s.token_id
             where s.sha256 = $1 and s.expires_at > now() and t.revoked_at is null",
            TOKEN_COLUMNS
                .split(", ")
                .map(|c| format!("t.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut tx = self.begin_bounded().await?;
        let row = sqlx::query_as(&sql)
            .bind(&sha256[..])
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn delete_session(&self, sha256: &[u8; 32]) -> Result<()> {
        sqlx::query("delete from dashboard_sessions where sha256 = $1")
            .bind(&sha256[..])
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }
}
