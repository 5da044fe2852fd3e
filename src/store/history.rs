//! The pool over time, from the event log: how many namespaces were free,
//! held or held by soft-deleted Deployments at the start of a window, and how
//! each hour in it changed those counts. One statement, whatever the history.

use super::{Result, Store};
use chrono::{DateTime, Utc};

/// A count at the window's start (`hour` is `None`) or a change in one hour.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StateChange {
    pub hour: Option<DateTime<Utc>>,
    pub state: String,
    pub delta: i64,
}

impl Store {
    /// The pool's state counts at `since`, then the hourly changes after it.
    pub async fn pool_history(&self, since: DateTime<Utc>) -> Result<Vec<StateChange>> {
        Ok(sqlx::query_as(
            "with transitions as (
                select namespace, at, id,
                       case kind when 'claim' then 'held' when 'adopt' then 'held'
                                 when 'soft_delete' then 'soft_deleted'
                                 when 'retire' then 'retired'
                                 else 'free' end as state
                from events
                where namespace is not null
                  and kind in ('claim', 'adopt', 'soft_delete', 'release', 'reclaim', 'add', 'restore', 'retire')
            ), ordered as (
                select at, state, lag(state) over (partition by namespace order by at, id) as prev
                from transitions
            ), at_start as (
                select state, count(*) as n
                from (select distinct on (namespace) namespace, state
                      from transitions where at < $1 order by namespace, at desc, id desc) s
                group by state
            ), changes as (
                select date_trunc('hour', at) as hour, state, 1 as delta from ordered where at >= $1
                union all
                select date_trunc('hour', at), prev, -1 from ordered where at >= $1 and prev is not null
            )
            select null::timestamptz as hour, state, n as delta from at_start
            union all
            select hour, state, sum(delta)::bigint from changes group by hour, state
            order by hour nulls first",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?)
    }
}
