//! The pool table made to match the config, in one transaction that
//! replicas starting together take in turn, and the notice that tells every
//! other replica what changed.

use super::{Result, Store};

/// What a pool sync changed, by namespace name.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PoolSyncReport {
    pub added: Vec<String>,
    pub restored: Vec<String>,
    pub retired: Vec<String>,
    pub adopted: Vec<String>,
}

/// The channel a pool sync tells every replica on.
pub const SYNC_CHANNEL: &str = "nspool_pool_sync";

/// A NOTIFY payload is at most 8000 bytes; names past this are counted only.
const NOTICE_BYTES: usize = 7_000;

/// A sync as another replica hears of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncNotice {
    /// Who synced (its actor and replica).
    pub by: String,
    pub report: PoolSyncReport,
    /// Names left out to keep the notice small.
    pub more: usize,
}

impl PoolSyncReport {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.restored.is_empty()
            && self.retired.is_empty()
            && self.adopted.is_empty()
    }

    /// This report as a notice from `actor` on `replica`, cut to fit a NOTIFY payload.
    pub fn notice(&self, actor: &str, replica: &str) -> String {
        let by = format!("{actor} on {replica}");
        let mut kept = PoolSyncReport::default();
        let mut more = 0;
        let mut size = by.len() + 100;
        for (from, into) in [
            (&self.added, &mut kept.added),
            (&self.restored, &mut kept.restored),
            (&self.retired, &mut kept.retired),
            (&self.adopted, &mut kept.adopted),
        ] {
            for name in from {
                if size + name.len() + 3 > NOTICE_BYTES {
                    more += 1;
                } else {
                    size += name.len() + 3;
                    into.push(name.clone());
                }
            }
        }
        serde_json::to_string(&SyncNotice {
            by,
            report: kept,
            more,
        })
        .unwrap_or_default()
    }
}

/// The pool as the config lists it: its clusters, and each name with its
/// cluster (an index into `clusters`), its config source and whether nspool
/// creates it (`namespaces.create`), side by side, and the fingerprint of
/// all of it (with the workspace quota).
#[derive(Debug, Clone, Copy)]
pub struct PoolListing<'a> {
    pub clusters: &'a [super::WantedCluster<'a>],
    pub cluster_index: &'a [i32],
    pub names: &'a [String],
    pub sources: &'a [&'a str],
    pub managed: &'a [bool],
    pub fingerprint: &'a str,
}

impl Store {
    /// Makes the cluster and pool tables match the config: clusters added or
    /// retired (one whose namespaces a Deployment holds is refused), new
    /// names added, removed names retired (never deleted), returning names
    /// restored, and Deployments that already sit in a pool namespace
    /// recorded as its holder. Replicas starting together serialise on a
    /// transaction-scoped advisory lock. Returns the clusters' ids, in the
    /// listing's order. Names in the report are `cluster/name` when the
    /// listing has more than one cluster.
    pub async fn sync_pool(
        &self,
        listing: &PoolListing<'_>,
        workspace_quota: Option<i32>,
        actor: &str,
        replica: &str,
        kubernetes: bool,
    ) -> Result<(Vec<uuid::Uuid>, PoolSyncReport)> {
        let PoolListing {
            clusters,
            cluster_index,
            names,
            sources,
            managed,
            fingerprint,
        } = *listing;
        let mut tx = self.begin().await?;
        sqlx::query("select pg_advisory_xact_lock(hashtext('nspool.pool_sync'))")
            .execute(&mut *tx)
            .await?;
        // Another live replica asks for the listing in force: this one's
        // would flip the pool under it (and its next sync flip it back).
        if let Some(replica) =
            super::replica_configs::holding_back(&mut tx, fingerprint, replica).await?
        {
            return Err(super::Error::HeldBack { replica });
        }
        // The config's default quota, read by the database's quota check.
        sqlx::query(
            "update pool_settings set workspace_quota = $1, updated_at = now()
             where workspace_quota is distinct from $1",
        )
        .bind(workspace_quota)
        .execute(&mut *tx)
        .await?;
        // Names are said with their cluster when more than one is (or was) served.
        let served_before: i64 =
            sqlx::query_scalar("select count(*) from clusters where retired_at is null")
                .fetch_one(&mut *tx)
                .await?;
        let ids = super::clusters::sync_clusters(&mut tx, clusters).await?;
        // Each listed name's cluster id, side by side with the names.
        let cluster_ids: Vec<uuid::Uuid> = cluster_index
            .iter()
            .map(|i| {
                usize::try_from(*i)
                    .ok()
                    .and_then(|i| ids.get(i))
                    .copied()
                    .unwrap_or_default()
            })
            .collect();
        let many = clusters.len() > 1 || served_before > 1;
        // Rows come back as (cluster name, namespace name).
        let shown = |rows: Vec<(String, String)>| {
            rows.into_iter()
                .map(|(k, n)| if many { format!("{k}/{n}") } else { n })
                .collect::<Vec<_>>()
        };
        let named = |change: &str, kind: &str, actor: &str, reason: &str| {
            format!(
                "with n as ({change}), e as (
                    insert into events (kind, cluster_id, namespace, actor, reason)
                    select '{kind}', cluster_id, name, {actor}, {reason} from n
                )
                select k.name, n.name from n join clusters k on k.id = n.cluster_id order by k.no, n.name"
            )
        };

        let added = sqlx::query_as(&named(
            "insert into pool_namespaces (cluster_id, name, source, managed)
             select * from unnest($5::uuid[], $1::text[], $2::text[], $4::bool[])
             on conflict (cluster_id, name) do nothing
             returning cluster_id, name",
            "add",
            "$3",
            "'listed in the config'",
        ))
        .bind(names)
        .bind(sources)
        .bind(actor)
        .bind(managed)
        .bind(&cluster_ids)
        .fetch_all(&mut *tx)
        .await?;

        let restored = sqlx::query_as(&named(
            // Not seen ready since it came back (its objects may have gone
            // or changed while it was retired): checked like one added.
            "update pool_namespaces p set retired_at = null,
                rbac_state = 'unknown', rbac_applied = null, rbac_checked_at = null
             from unnest($3::uuid[], $1::text[]) as s(cluster_id, name)
             where p.cluster_id = s.cluster_id and p.name = s.name and p.retired_at is not null
             returning p.cluster_id, p.name",
            "restore",
            "$2",
            "'listed in the config again'",
        ))
        .bind(names)
        .bind(actor)
        .bind(&cluster_ids)
        .fetch_all(&mut *tx)
        .await?;

        sqlx::query(
            "update pool_namespaces p set source = s.source, managed = s.managed
             from unnest($4::uuid[], $1::text[], $2::text[], $3::bool[]) as s(cluster_id, name, source, managed)
             where p.cluster_id = s.cluster_id and p.name = s.name
               and (p.source <> s.source or p.managed <> s.managed)",
        )
        .bind(names)
        .bind(sources)
        .bind(managed)
        .bind(&cluster_ids)
        .execute(&mut *tx)
        .await?;

        let retired = sqlx::query_as(&named(
            "update pool_namespaces p set retired_at = now()
             where p.retired_at is null and not exists (
                select 1 from unnest($3::uuid[], $1::text[]) as s(cluster_id, name)
                where s.cluster_id = p.cluster_id and s.name = p.name)
             returning p.cluster_id, p.name",
            "retire",
            "$2",
            "'no longer listed in the config; never deleted, not offered again'",
        ))
        .bind(names)
        .bind(actor)
        .bind(&cluster_ids)
        .fetch_all(&mut *tx)
        .await?;

        let adopted = sqlx::query_as(
            "with n as (
                update pool_namespaces p set holder_deployment_id = d.id, claimed_at = d.created_at
                from deployments d
                where d.cluster_id = p.cluster_id and d.namespace = p.name
                  and p.holder_deployment_id is null
                returning p.cluster_id, p.name, d.id, d.release_name, d.workspace_id
            ), e as (
                insert into events (kind, cluster_id, namespace, deployment_id, release_name, workspace_id, actor, reason)
                select 'adopt', cluster_id, name, id, release_name, workspace_id, $1,
                       'a Deployment already used this namespace when it joined the pool' from n
            )
            select k.name, n.name from n join clusters k on k.id = n.cluster_id order by k.no, n.name",
        )
        .bind(actor)
        .fetch_all(&mut *tx)
        .await?;

        // In the same transaction: with Kubernetes, a namespace added (or
        // listed again) is pending, never offered before it is seen ready.
        super::kube_work::require_readiness(&mut tx, kubernetes).await?;

        let report = PoolSyncReport {
            added: shown(added),
            restored: shown(restored),
            retired: shown(retired),
            adopted: shown(adopted),
        };
        super::replica_configs::record_in_force(&mut tx, fingerprint, replica).await?;
        // Other replicas log what this sync changed (delivered at commit).
        if !report.is_empty() {
            sqlx::query("select pg_notify($1, $2)")
                .bind(SYNC_CHANNEL)
                .bind(report.notice(actor, replica))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok((ids, report))
    }
}
