//! Which cluster a request means, and the clusters as operators see them.
//! A request names a cluster by id (`clusterId`, the astro CLI's
//! `--cluster-id`) or an operator by name (`--cluster NAME`); without one a
//! claim goes to the default cluster (the first listed), while a read of the
//! free namespaces needs one as soon as there are several.

use super::{Error, PoolService, Result};
use crate::config::{ClusterSettings, Settings};
use crate::domain::Caller;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// "prod (3f2b…), staging (9c1d…)": what an error lists for the caller to pick.
pub fn known_clusters(settings: &Settings) -> String {
    settings
        .clusters
        .iter()
        .map(|c| format!("{} ({})", c.name, c.id))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The cluster `id` names, or the default one without an id.
pub fn cluster_or_default(settings: &Settings, id: Option<Uuid>) -> Result<&ClusterSettings> {
    match id {
        None => Ok(settings.default_cluster()),
        Some(id) => settings.cluster(id).ok_or_else(|| {
            Error::BadInput(format!(
                "No cluster has the id {id}; nspool serves: {}",
                known_clusters(settings)
            ))
        }),
    }
}

/// [`cluster_or_default`] for a caller who may not have a token (`appConfig`
/// answers anyone): an unknown id is refused without listing the clusters.
pub fn cluster_or_default_for_anyone(
    settings: &Settings,
    id: Option<Uuid>,
) -> Result<&ClusterSettings> {
    match id {
        None => Ok(settings.default_cluster()),
        Some(id) => settings
            .cluster(id)
            .ok_or_else(|| Error::BadInput(format!("No cluster has the id {id}"))),
    }
}

/// The cluster `id` names; without one, the only cluster, or an error that
/// lists them when there are several (a read must not guess).
pub fn cluster_required(settings: &Settings, id: Option<Uuid>) -> Result<&ClusterSettings> {
    if id.is_none() && settings.clusters.len() > 1 {
        return Err(Error::BadInput(format!(
            "nspool serves several clusters: give clusterId, one of {}",
            known_clusters(settings)
        )));
    }
    cluster_or_default(settings, id)
}

/// The cluster named `name` (an operator's `--cluster NAME`); without a
/// name, the only cluster, or an error listing them.
pub fn cluster_by_name<'a>(
    settings: &'a Settings,
    name: Option<&str>,
) -> Result<&'a ClusterSettings> {
    match name {
        None if settings.clusters.len() > 1 => Err(Error::BadInput(format!(
            "nspool serves several clusters: give --cluster, one of {}",
            known_clusters(settings)
        ))),
        None => Ok(settings.default_cluster()),
        Some(name) => settings.cluster_named(name).ok_or_else(|| {
            Error::BadInput(format!(
                "No cluster is named \"{}\"; nspool serves: {}",
                crate::domain::text::excerpt(name),
                known_clusters(settings)
            ))
        }),
    }
}

/// One cluster as the `clusters` query and the dashboard show it.
#[derive(Debug, Clone)]
pub struct ClusterView {
    pub id: Uuid,
    pub name: String,
    pub is_default: bool,
    pub free: i64,
    pub held: i64,
    pub soft_deleted: i64,
    pub pending: i64,
    pub broken: i64,
    pub releasing: i64,
    pub cordoned: i64,
    pub retired: i64,
    /// Whether its Kubernetes worker last reached the API server (`None`:
    /// never checked, or Kubernetes is off).
    pub reachable: Option<bool>,
    pub checked_at: Option<DateTime<Utc>>,
    pub check_error: Option<String>,
}

impl PoolService {
    /// The id of the cluster `id` names; without one, the only cluster's (an
    /// error listing them when there are several).
    pub(crate) fn cluster_id_required(&self, id: Option<Uuid>) -> Result<Uuid> {
        Ok(cluster_required(&self.settings(), id)?.id)
    }

    /// The id of the cluster `id` names, listed in the config or removed
    /// from it (a removed cluster's namespaces stay, retired, with their
    /// history and cordons: they are read and acted on by its id); without
    /// one, the only cluster's (an error listing them when there are several).
    pub(crate) async fn cluster_id_known(&self, id: Option<Uuid>) -> Result<Uuid> {
        if let Some(id) = id
            && self.settings().cluster(id).is_none()
            && self.store.clusters().await?.iter().any(|c| c.id == id)
        {
            return Ok(id);
        }
        self.cluster_id_required(id)
    }

    /// [`cluster_by_name`] that also knows the clusters removed from the
    /// config by the name they had (an operator's `--cluster NAME` on
    /// `nspool pool`).
    pub async fn cluster_id_named(&self, name: Option<&str>) -> Result<Uuid> {
        let settings = self.settings();
        match cluster_by_name(&settings, name) {
            Ok(cluster) => Ok(cluster.id),
            Err(unknown) => {
                let Some(name) = name else {
                    return Err(unknown);
                };
                match self.store.clusters().await?.iter().find(|c| c.name == name) {
                    Some(removed) => Ok(removed.id),
                    None => Err(unknown),
                }
            }
        }
    }

    /// Every cluster of the config, in its order, with its counts and
    /// Kubernetes reachability (system viewers and up).
    pub async fn clusters(&self, caller: &Caller) -> Result<Vec<ClusterView>> {
        caller.authorize(crate::domain::Action::System(
            crate::domain::roles::Level::Viewer,
        ))?;
        let settings = self.settings();
        let rows = self.store.clusters().await?;
        let counts = self.store.cluster_state_counts().await?;
        Ok(settings
            .clusters
            .iter()
            .enumerate()
            .map(|(i, cluster)| {
                let row = rows.iter().find(|r| r.id == cluster.id);
                let count = counts
                    .iter()
                    .find(|(id, _)| *id == cluster.id)
                    .map(|(_, counts)| counts);
                let n = |f: fn(&crate::store::PoolStateCounts) -> i64| count.map(f).unwrap_or(0);
                ClusterView {
                    id: cluster.id,
                    name: cluster.name.clone(),
                    is_default: i == 0,
                    free: n(|c| c.free),
                    held: n(|c| c.held),
                    soft_deleted: n(|c| c.soft_deleted),
                    pending: n(|c| c.pending),
                    broken: n(|c| c.broken),
                    releasing: n(|c| c.releasing),
                    cordoned: n(|c| c.cordoned),
                    retired: n(|c| c.retired),
                    reachable: row.and_then(|r| r.reachable),
                    checked_at: row.and_then(|r| r.checked_at),
                    check_error: row.and_then(|r| r.check_error.clone()),
                }
            })
            .collect())
    }
}
