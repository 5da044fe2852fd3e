//! The pool view a page at a time, for the dashboard: one page of namespaces
//! (by name) and how many match a search, so that a page costs the same on
//! a pool of 100,000 as on one of 10.

use super::deployments::like_literal;
use super::pool::POOL_COLUMNS;
use super::{PoolNamespaceRow, Result, Store};

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
