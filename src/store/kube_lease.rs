//! The Kubernetes worker's lease (migration `20261203000002_kube_lease`):
//! taken or renewed in one statement, only by its holder or once expired.

use super::{Result, Store};
use chrono::{DateTime, Utc};
use std::time::Duration;
use uuid::Uuid;

impl Store {
    /// Takes or renews the lease for `holder` for `lease`: `true` when
    /// `holder` holds it now (it did, or the last holder's lease expired).
    pub async fn take_kube_lease(
        &self,
        cluster: Uuid,
        holder: &str,
        lease: Duration,
    ) -> Result<bool> {
        let held: Option<String> = sqlx::query_scalar(
            "insert into kube_lease (cluster_id, holder, expires_at)
             values ($3, $1, now() + make_interval(secs => $2))
             on conflict (cluster_id) do update
                set holder = excluded.holder,
                    acquired_at = case when kube_lease.holder = excluded.holder
                                       then kube_lease.acquired_at else now() end,
                    renewed_at = now(), expires_at = excluded.expires_at
                where kube_lease.holder = excluded.holder or kube_lease.expires_at < now()
             returning holder",
        )
        .bind(holder)
        .bind(lease.as_secs_f64())
        .bind(cluster)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        Ok(held.is_some())
    }

    /// Gives the lease up at once (a clean stop), if `holder` holds it.
    pub async fn release_kube_lease(&self, cluster: Uuid, holder: &str) -> Result<()> {
        sqlx::query("delete from kube_lease where cluster_id = $2 and holder = $1")
            .bind(holder)
            .bind(cluster)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    /// Who holds the lease, and until when (`None`: nobody ever took it).
    pub async fn kube_lease(&self, cluster: Uuid) -> Result<Option<(String, DateTime<Utc>)>> {
        Ok(
            sqlx::query_as("select holder, expires_at from kube_lease where cluster_id = $1")
                .bind(cluster)
                .fetch_optional(&mut *self.conn().await?)
                .await?,
        )
    }
}
