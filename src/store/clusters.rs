//! The clusters nspool serves (migration `20261203000007_clusters`): made to
//! match the config inside the pool sync, and each one's Kubernetes
//! reachability as its worker last found it.

use super::{Result, Store};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// A cluster as the config names it: `id` nil for the one cluster of a
/// config without `nspool.clusterId` (the row of that name keeps its id).
#[derive(Debug, Clone)]
pub struct WantedCluster<'a> {
    pub id: Uuid,
    pub name: &'a str,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClusterRow {
    pub id: Uuid,
    pub no: i32,
    pub name: String,
    pub retired_at: Option<DateTime<Utc>>,
    pub reachable: Option<bool>,
    pub checked_at: Option<DateTime<Utc>>,
    pub check_error: Option<String>,
}

impl Store {
    /// The ids of `wanted`, as the database has them, without writing: a nil
    /// id is the row of its name (`None`: no such row yet).
    pub async fn cluster_ids(&self, wanted: &[WantedCluster<'_>]) -> Result<Vec<Option<Uuid>>> {
        let mut ids = Vec::with_capacity(wanted.len());
        let mut conn = self.conn().await?;
        for cluster in wanted {
            if !cluster.id.is_nil() {
                ids.push(Some(cluster.id));
                continue;
            }
            ids.push(single_cluster_id(&mut conn, cluster.name).await?);
        }
        Ok(ids)
    }

    /// Every cluster the database knows, in config order is the caller's
    /// business: here by number (the order they were added).
    pub async fn clusters(&self) -> Result<Vec<ClusterRow>> {
        Ok(sqlx::query_as(
            "select id, no, name, retired_at, reachable, checked_at, check_error
             from clusters order by no",
        )
        .fetch_all(&mut *self.conn().await?)
        .await?)
    }

    /// What the cluster's worker found when it last reached (or failed to
    /// reach) its API server.
    pub async fn record_reachability(&self, cluster: Uuid, error: Option<&str>) -> Result<()> {
        sqlx::query(
            "update clusters set reachable = $2::text is null, checked_at = now(),
                check_error = left($2, 1024)
             where id = $1",
        )
        .bind(cluster)
        .bind(error)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }
}

/// Inside the pool sync: the cluster rows made to match `wanted`, returning
/// their ids in its order. A row of a wanted name but another id that the
/// config no longer lists gives its name up; a cluster the config no longer
/// lists is retired, unless a Deployment holds one of its namespaces
/// (`Error::ClusterHeld`, naming them): nothing is written then.
pub(super) async fn sync_clusters(
    tx: &mut PgConnection,
    wanted: &[WantedCluster<'_>],
) -> Result<Vec<Uuid>> {
    let mut ids = Vec::with_capacity(wanted.len());
    for cluster in wanted {
        let id: Uuid = if cluster.id.is_nil() {
            match single_cluster_id(&mut *tx, cluster.name).await? {
                Some(id) => id,
                None => {
                    sqlx::query_scalar(
                        "insert into clusters (id, name) values (gen_random_uuid(), $1)
                         returning id",
                    )
                    .bind(cluster.name)
                    .fetch_one(&mut *tx)
                    .await?
                }
            }
        } else {
            cluster.id
        };
        ids.push(id);
    }
    let names: Vec<&str> = wanted.iter().map(|c| c.name).collect();
    // The one cluster given an id later (`nspool.clusterId`): the row of its
    // name takes it, and every row of the cluster follows (on update cascade).
    if wanted.len() == 1 && !wanted[0].id.is_nil() {
        sqlx::query(
            "update clusters set id = $1 where name = $2 and id <> $1
               and not exists (select 1 from clusters where id = $1)",
        )
        .bind(ids[0])
        .bind(names[0])
        .execute(&mut *tx)
        .await?;
    }
    let held: Vec<(String, String)> = sqlx::query_as(
        "select k.name, p.name from pool_namespaces p join clusters k on k.id = p.cluster_id
         where not (k.id = any($1)) and k.retired_at is null and p.holder_deployment_id is not null
         order by k.name, p.name limit 50",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    if !held.is_empty() {
        return Err(super::Error::ClusterHeld {
            namespaces: held.into_iter().map(|(k, n)| format!("{k}/{n}")).collect(),
        });
    }
    // Names wanted by another id are given up by rows the config dropped.
    sqlx::query(
        "update clusters set name = 'retired-' || no
         where name = any($2) and not (id = any($1))",
    )
    .bind(&ids)
    .bind(&names)
    .execute(&mut *tx)
    .await?;
    // Two clusters swapping names in one reload: each renamed row first
    // takes a name of its own number, so no two rows hold one name between.
    sqlx::query(
        "update clusters c set name = 'renaming-' || c.no
         from unnest($1::uuid[], $2::text[]) as w(id, name)
         where c.id = w.id and c.name <> w.name",
    )
    .bind(&ids)
    .bind(&names)
    .execute(&mut *tx)
    .await?;
    for (id, name) in ids.iter().zip(&names) {
        sqlx::query(
            "insert into clusters (id, name) values ($1, $2)
             on conflict (id) do update set name = excluded.name, retired_at = null
                where clusters.name <> excluded.name or clusters.retired_at is not null",
        )
        .bind(id)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "update clusters set retired_at = now() where not (id = any($1)) and retired_at is null",
    )
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    Ok(ids)
}

/// The row of the one cluster of a config without `nspool.clusterId`: the
/// cluster the database serves when it serves one (whatever its name: a
/// config that listed it under `nspool.clusters` and goes back to one
/// cluster keeps its id, its rows and cordons); among several, the one of
/// `name`, else the choice is the operator's (`Error::ClusterAmbiguous`);
/// among none, the retired row of `name`, else none (a new one is made).
async fn single_cluster_id(conn: &mut PgConnection, name: &str) -> Result<Option<Uuid>> {
    let live: Vec<(Uuid, String)> =
        sqlx::query_as("select id, name from clusters where retired_at is null order by no")
            .fetch_all(&mut *conn)
            .await?;
    match live.as_slice() {
        [(id, _)] => Ok(Some(*id)),
        [] => Ok(
            sqlx::query_scalar("select id from clusters where name = $1")
                .bind(name)
                .fetch_optional(&mut *conn)
                .await?,
        ),
        several => match several.iter().find(|(_, n)| n == name) {
            Some((id, _)) => Ok(Some(*id)),
            None => Err(super::Error::ClusterAmbiguous {
                clusters: several
                    .iter()
                    .take(64)
                    .map(|(id, name)| format!("{name} ({id})"))
                    .collect(),
            }),
        },
    }
}
