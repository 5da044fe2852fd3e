//! Drift found by the Kubernetes drift watch, recorded on the pool rows.

use super::{Result, Store};
use chrono::{DateTime, Utc};

/// A namespace whose objects drifted, taken off the "applied" list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Drifted {
    pub name: String,
    /// The pool generation, when this changed what is offered.
    pub generation: Option<i64>,
}

/// What the drift watch found about some namespaces' objects.
pub struct DriftFound<'a> {
    pub cluster: uuid::Uuid,
    pub names: &'a [String],
    /// The fingerprint nspool applies now: only rows applied with it drift
    /// (a row applied with an older config is due for its apply anyway).
    pub fingerprint: &'a str,
    /// Only rows applied before this (a fresh list's start: what was
    /// applied after it may be missing from the list without being gone).
    pub applied_before: Option<DateTime<Utc>>,
    /// The Namespace itself is gone: its claim labels go on again too.
    pub namespace_gone: bool,
    /// For the event log: "Role/deployment-commander-role deleted".
    pub what: &'a str,
}

/// A held namespace (`p`, its holder `d`) whose claim labels were written
/// for that holder (`labels_holder`) but are seen (`s`) naming another or
/// none. Only those: a released namespace whose labels are still to be
/// removed is due for its write anyway, and labels someone else put on a
/// free namespace are theirs (nspool's apply cannot take them off).
const CLAIM_LABELS_LOST: &str = "p.retired_at is null and p.labels_holder = p.holder_deployment_id
    and (s.deployment_id is distinct from p.holder_deployment_id::text
         or s.release is distinct from d.release_name)";

impl Store {
    /// Marks the namespaces as not applied and not ready (not offered while
    /// free) until the worker applies them again, with a `drift` event each,
    /// in one statement. Returns the rows it marked.
    pub async fn record_drift(&self, found: &DriftFound<'_>) -> Result<Vec<Drifted>> {
        let rows = sqlx::query_as(
            "with marked as (
                update pool_namespaces set rbac_applied = null, rbac_state = 'pending',
                       labels_holder = case when $4 then null else labels_holder end
                where cluster_id = $6 and name = any($1) and managed and retired_at is null and rbac_applied = $2
                  and ($3::timestamptz is null or rbac_applied_at < $3)
                returning name, holder_deployment_id, nspool_own_generation(generation) as generation
             ), logged as (
                insert into events (kind, cluster_id, namespace, deployment_id, actor, reason)
                select 'drift', $6, name, holder_deployment_id, 'nspool', $5 from marked
             )
             select name, generation from marked",
        )
        .bind(found.names)
        .bind(found.fingerprint)
        .bind(found.applied_before)
        .bind(found.namespace_gone)
        .bind(found.what)
        .bind(found.cluster)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        Ok(rows)
    }

    /// Namespaces applied with `fingerprint` before `before` that are not in
    /// `seen` (a fresh list of one kind of object), at most `limit`.
    pub async fn applied_but_unseen(
        &self,
        cluster: uuid::Uuid,
        fingerprint: &str,
        before: DateTime<Utc>,
        seen: &[String],
        limit: i64,
    ) -> Result<Vec<String>> {
        let names = sqlx::query_scalar(
            // An anti-join (not `<> all`): a list of 100,000 names stays linear.
            "select p.name from pool_namespaces p
             where p.cluster_id = $5 and p.managed and p.retired_at is null and p.rbac_applied = $1
               and p.rbac_applied_at < $2
               and not exists (select 1 from unnest($3::text[]) s(name) where s.name = p.name)
             order by p.name limit $4",
        )
        .bind(fingerprint)
        .bind(before)
        .bind(seen)
        .bind(limit)
        .bind(cluster)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        Ok(names)
    }

    /// Of the claim labels seen (`names[i]` carries `deployment_ids[i]` and
    /// `releases[i]`), the namespaces whose labels were written for their
    /// holder and no longer name it: stripped or edited out of band. A read
    /// only: the watch asks the API server again before it acts (an event
    /// it delivers may predate the labels' write).
    pub async fn claim_labels_differ(
        &self,
        cluster: uuid::Uuid,
        names: &[String],
        deployment_ids: &[Option<String>],
        releases: &[Option<String>],
    ) -> Result<Vec<String>> {
        let sql = format!(
            "select p.name from pool_namespaces p
             join unnest($2::text[], $3::text[], $4::text[]) s(name, deployment_id, release)
               on s.name = p.name
             join deployments d on d.id = p.holder_deployment_id
             where p.cluster_id = $1 and {CLAIM_LABELS_LOST}
             order by p.name"
        );
        Ok(sqlx::query_scalar(&sql)
            .bind(cluster)
            .bind(names)
            .bind(deployment_ids)
            .bind(releases)
            .fetch_all(&mut *self.conn().await?)
            .await?)
    }

    /// Namespace `name` (its claim labels seen afresh) still misses the
    /// labels written for its holder: they are marked unwritten, so the
    /// worker's next pass writes them again, with a `drift` event, in one
    /// statement; `false` when they match by now.
    pub async fn record_claim_labels_lost(
        &self,
        cluster: uuid::Uuid,
        name: &str,
        (deployment_id, release): (Option<&str>, Option<&str>),
        what: &str,
    ) -> Result<bool> {
        let sql = format!(
            "with s(name, deployment_id, release) as (select $2::text, $3::text, $4::text),
             marked as (
                update pool_namespaces p set labels_holder = null
                from s, deployments d
                where p.cluster_id = $1 and p.name = s.name and d.id = p.holder_deployment_id
                  and {CLAIM_LABELS_LOST}
                returning p.name, p.holder_deployment_id
             ), logged as (
                insert into events (kind, cluster_id, namespace, deployment_id, actor, reason)
                select 'drift', $1, name, holder_deployment_id, 'nspool', $5 from marked
             )
             select count(*) from marked"
        );
        let marked: i64 = sqlx::query_scalar(&sql)
            .bind(cluster)
            .bind(name)
            .bind(deployment_id)
            .bind(release)
            .bind(what)
            .fetch_one(&mut *self.conn().await?)
            .await?;
        Ok(marked > 0)
    }

    /// The database's clock (what `rbac_applied_at` is written with).
    pub async fn database_now(&self) -> Result<DateTime<Utc>> {
        Ok(sqlx::query_scalar("select now()")
            .fetch_one(&mut *self.conn().await?)
            .await?)
    }
}
