use super::{Result, Store};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    /// The cluster of the namespace (null: not about one cluster's namespace).
    pub cluster_id: Option<Uuid>,
    pub namespace: Option<String>,
    pub deployment_id: Option<Uuid>,
    pub release_name: Option<String>,
    pub workspace_id: Option<Uuid>,
    pub actor: String,
    pub reason: Option<String>,
}

const EVENT_COLUMNS: &str =
    "id, at, kind, cluster_id, namespace, deployment_id, release_name, workspace_id, actor, reason";

impl Store {
    /// One event about nspool itself (a config reload, say).
    pub async fn log_event(&self, kind: &str, actor: &str, reason: &str) -> Result<()> {
        sqlx::query("insert into events (kind, actor, reason) values ($1, $2, $3)")
            .bind(kind)
            .bind(actor)
            .bind(reason)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    /// The newest `last` events of each namespace (each with its cluster,
    /// side by side), newest first, in one query.
    pub async fn namespace_events(
        &self,
        clusters: &[Uuid],
        names: &[String],
        last: i64,
    ) -> Result<Vec<EventRow>> {
        let sql = format!(
            "select e.* from unnest($3::uuid[], $1::text[]) as n(cluster_id, name)
             cross join lateral (
                select {EVENT_COLUMNS} from events
                where cluster_id = n.cluster_id and namespace = n.name order by id desc limit $2
             ) e"
        );
        let rows = sqlx::query_as(&sql)
            .bind(names)
            .bind(last)
            .bind(clusters)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        Ok(rows)
    }

    /// The newest events, newest first: of one cluster (`cluster`), and of
    /// one namespace of it (`namespace`, which needs `cluster`), or all.
    pub async fn events(
        &self,
        cluster: Option<Uuid>,
        namespace: Option<&str>,
        last: i64,
    ) -> Result<Vec<EventRow>> {
        let sql = format!(
            "select {EVENT_COLUMNS} from events
             where ($3::uuid is null or cluster_id = $3) and ($1::text is null or namespace = $1)
             order by id desc limit $2"
        );
        let rows = sqlx::query_as(&sql)
            .bind(namespace)
            .bind(last)
            .bind(cluster)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        Ok(rows)
    }
}
