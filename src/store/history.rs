//! The pool over time, from the event log: each pool namespace's state
//! before a moment, and the state changes in a span, both by index.

use super::{Result, Store};
use chrono::{DateTime, Utc};

/// The state an event leaves its namespace in, as SQL over `kind`.
const STATE_OF_KIND: &str = "case kind when 'claim' then 'held' when 'adopt' then 'held'
    when 'soft_delete' then 'soft_deleted' when 'retire' then 'retired' else 'free' end";
/// The events that change a namespace's state.
const STATE_KINDS: &str =
    "('claim', 'adopt', 'soft_delete', 'release', 'reclaim', 'add', 'restore', 'retire')";

/// The state-changing events with `$1 <= at < $2`.
const IN_SPAN: &str = "at >= $1 and at < $2 and namespace is not null and kind in";

/// A namespace's state after an event (or before a moment); `namespace` is
/// `<cluster id>/<name>`, so one name in two clusters is two namespaces.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StateChange {
    pub namespace: String,
    pub at: DateTime<Utc>,
    pub state: String,
}

impl Store {
    /// Each pool namespace's state as of `before` (its last state-changing
    /// event), one index lookup per namespace; none for namespaces with no
    /// event by then.
    pub async fn states_before(&self, before: DateTime<Utc>) -> Result<Vec<StateChange>> {
        Ok(sqlx::query_as(&format!(
            "select p.cluster_id || '/' || p.name as namespace, s.at, s.state
             from pool_namespaces p
             join lateral (
                 select at, {STATE_OF_KIND} as state from events e
                 where e.cluster_id = p.cluster_id and e.namespace = p.name and e.at < $1 and e.kind in {STATE_KINDS}
                 order by e.id desc limit 1
             ) s on true"
        ))
        .bind(before)
        .fetch_all(&mut *self.conn().await?)
        .await?)
    }

    /// The state changes with `from <= at < to` that the hourly points can
    /// see, in the order they happened: of each namespace's changes within
    /// one (UTC) hour, only the last, since the points sample whole hours.
    /// So the rows are at most the pool's size for each hour of the span,
    /// however fast Deployments come and go.
    pub async fn state_changes(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StateChange>> {
        Ok(sqlx::query_as(&format!(
            "select namespace, at, state from (
                 select distinct on (cluster_id, namespace, date_trunc('hour', at at time zone 'UTC'))
                        coalesce(cluster_id::text, '-') || '/' || namespace as namespace, at, id, {STATE_OF_KIND} as state
                 from events
                 where {IN_SPAN} {STATE_KINDS}
                 order by cluster_id, namespace, date_trunc('hour', at at time zone 'UTC'), id desc
             ) last_of_each_hour
             order by at, id"
        ))
        .bind(from)
        .bind(to)
        .fetch_all(&mut *self.conn().await?)
        .await?)
    }

    /// Every state change with `from <= at < to`, in order (what
    /// [`Self::state_changes`] condenses; the tests compare the two).
    pub async fn every_state_change(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StateChange>> {
        Ok(sqlx::query_as(&format!(
            "select coalesce(cluster_id::text, '-') || '/' || namespace as namespace, at, {STATE_OF_KIND} as state from events
             where {IN_SPAN} {STATE_KINDS} order by id"
        ))
        .bind(from)
        .bind(to)
        .fetch_all(&mut *self.conn().await?)
        .await?)
    }
}
